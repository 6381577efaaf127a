#!/usr/bin/env bash
# make bench, gRPC part: unary calls (GrpcEcho/Echo) with h2load, direct to one
# echo pod against through the HTTP engine (bench h2engine: a GRPCRoute that
# splits every call 50/50 over 2 echo backends), interleaved repetitions on
# loopback. Rows: calls/s and p50 per mode (medians), the ratio to direct,
# and the per-call split the engine made. Writes bench/results/grpc-<UTC
# timestamp>.md and grpc-latest.md. Args: --quick (fewer calls and reps).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUTDIR=${OUTDIR:-$ROOT/bench/results}
CALLS=100000 REPS=3
for a in "$@"; do [ "$a" = --quick ] && CALLS=20000 REPS=2; done
CONNS=4 STREAMS=16	# h2load: 4 connections, 16 calls in flight on each
PORT_ENGINE=27070 PORT_B0=27071 PORT_B1=27072
METHOD=/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
command -v h2load >/dev/null || { log "grpc bench: no h2load (nghttp2-client): skipped"; exit 0; }
W=$(mktemp -d /tmp/gammad-grpc-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

wait_port() { # PORT
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	log "grpc bench: nothing listens on $1"; exit 1
}

"$BUILD/echo" serve --port=$PORT_B0 --pod b0 --namespace bench >/dev/null 2>&1 & PIDS+=($!)
"$BUILD/echo" serve --port=$PORT_B1 --pod b1 --namespace bench >/dev/null 2>&1 & PIDS+=($!)
wait_port $PORT_B0; wait_port $PORT_B1
"$BUILD/bench" h2engine --listen $PORT_ENGINE --backend 127.0.0.1:$PORT_B0 \
	--backend 127.0.0.1:$PORT_B1 >"$W/engine.out" 2>&1 & ENGINE=$!; PIDS+=($ENGINE)
wait_port $PORT_ENGINE
printf '\0\0\0\0\0' > "$W/empty"	# EchoRequest {} in gRPC framing

RAW=$W/raw.csv
: > "$RAW"
run() { # REP MODE PORT
	local out calls_s p50 ok
	out=$(h2load -n "$CALLS" -c $CONNS -m $STREAMS -t 1 --log-file="$W/req.log" \
		-H 'content-type: application/grpc' -H 'te: trailers' -d "$W/empty" \
		"http://127.0.0.1:$3$METHOD" 2>&1) || { log "h2load failed: $out"; return; }
	ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
	[ "$ok" = "$CALLS" ] || log "$2: only $ok of $CALLS calls succeeded"
	calls_s=$(awk '/^finished in/ { print $4 }' <<<"$out")
	p50=$(awk -F'\t' '{ print $3 }' "$W/req.log" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "$1,$2,$calls_s,$p50" >> "$RAW"
	log "rep $1 $2: $calls_s calls/s, p50 $p50 us"
}
for rep in $(seq $REPS); do
	if [ $((rep % 2)) = 1 ]; then run "$rep" direct $PORT_B0; run "$rep" gammad-2be $PORT_ENGINE
	else run "$rep" gammad-2be $PORT_ENGINE; run "$rep" direct $PORT_B0; fi
done
kill "$ENGINE"; wait "$ENGINE" 2>/dev/null || true
SPLIT=$(grep '^calls' "$W/engine.out" || echo "calls ?")

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F, -v m="$1" -v c="$2" '$2 == m { print $c }' "$RAW" | median; }
D_CPS=$(col direct 3) D_P50=$(col direct 4) G_CPS=$(col gammad-2be 3) G_P50=$(col gammad-2be 4)
RATIO=$(awk -v g="$G_CPS" -v d="$D_CPS" 'BEGIN { if (d > 0) printf "%.2f", g / d; else print "-" }')
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
{
	echo "# gRPC unary calls (h2load), $(date -u +%F)"
	echo
	echo "$REPS interleaved repetitions of $CALLS calls, h2load -c $CONNS -m $STREAMS, loopback,"
	echo "$(nproc) CPUs shared with other jobs. direct: h2load to one echo pod. gammad-2be: h2load"
	echo "to the HTTP engine in-process (bench h2engine, no kernel steering), a GRPCRoute"
	echo "balancing every call over 2 echo pods ($SPLIT). Medians."
	echo
	echo "| mode | calls/s | p50 (us) | calls/s vs direct |"
	echo "|---|---|---|---|"
	echo "| direct | $D_CPS | $D_P50 | 1.00 |"
	echo "| gammad-2be | $G_CPS | $G_P50 | $RATIO |"
} > "$OUTDIR/grpc-$STAMP.md"
cp "$OUTDIR/grpc-$STAMP.md" "$OUTDIR/grpc-latest.md"
cat "$OUTDIR/grpc-$STAMP.md"
