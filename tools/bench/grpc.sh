#!/usr/bin/env bash
# make bench, gRPC part: unary calls (GrpcEcho/Echo) with h2load, direct to one
# echo pod against through the HTTP engine (bench h2engine: a GRPCRoute that
# splits every call 50/50 over 2 echo backends), interleaved repetitions on
# loopback. Rows: calls/s and p50 per mode (medians), the ratio to direct,
# the per-call split the engine made, and the CPU each side spent per call
# (h2load, the echo pods, the engine: a 2-CPU machine cannot hide a proxy's
# cost, see tools/bench/README.md). Writes bench/results/grpc-<UTC
# timestamp>.md and grpc-latest.md. Args: --quick (fewer calls and reps).
# GRPC_THREADS=N: the engine's event loops (default one per CPU).
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

command -v /usr/bin/time >/dev/null || { log "grpc bench: no /usr/bin/time (time): skipped"; exit 0; }
"$BUILD/echo" serve --port=$PORT_B0 --pod b0 --namespace bench >/dev/null 2>&1 & E0=$!; PIDS+=($E0)
"$BUILD/echo" serve --port=$PORT_B1 --pod b1 --namespace bench >/dev/null 2>&1 & E1=$!; PIDS+=($E1)
wait_port $PORT_B0; wait_port $PORT_B1
"$BUILD/bench" h2engine --listen $PORT_ENGINE --backend 127.0.0.1:$PORT_B0 \
	--backend 127.0.0.1:$PORT_B1 ${GRPC_THREADS:+--threads $GRPC_THREADS} >"$W/engine.out" 2>&1 &
ENGINE=$!; PIDS+=($ENGINE)
THREADS="${GRPC_THREADS:-$(nproc)} event loops"
wait_port $PORT_ENGINE
printf '\0\0\0\0\0' > "$W/empty"	# EchoRequest {} in gRPC framing

RAW=$W/raw.csv
: > "$RAW"
HZ=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' /proc/"$p"/stat))); done; echo $t; }
run() { # REP MODE PORT
	local out calls_s p50 ok e0 g0 cpu
	e0=$(ticks $E0 $E1) g0=$(ticks $ENGINE)
	out=$(/usr/bin/time -f '%U %S' -o "$W/time" h2load -n "$CALLS" -c $CONNS -m $STREAMS -t 1 \
		--log-file="$W/req.log" -H 'content-type: application/grpc' -H 'te: trailers' \
		-d "$W/empty" "http://127.0.0.1:$3$METHOD" 2>&1) || { log "h2load failed: $out"; return; }
	# CPU us per call: h2load, the echo pods, the engine
	cpu=$(awk -v c="$CALLS" -v hz="$HZ" -v e=$(($(ticks $E0 $E1) - e0)) -v g=$(($(ticks $ENGINE) - g0)) \
		'{ printf "%.2f,%.2f,%.2f", ($1 + $2) * 1e6 / c, e * 1e6 / hz / c, g * 1e6 / hz / c }' "$W/time")
	ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
	[ "$ok" = "$CALLS" ] || log "$2: only $ok of $CALLS calls succeeded"
	calls_s=$(awk '/^finished in/ { print $4 }' <<<"$out")
	p50=$(awk -F'\t' '{ print $3 }' "$W/req.log" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "$1,$2,$calls_s,$p50,$cpu" >> "$RAW"
	log "rep $1 $2: $calls_s calls/s, p50 $p50 us, CPU us/call h2load,echo,engine $cpu"
}
for rep in $(seq $REPS); do
	if [ $((rep % 2)) = 1 ]; then run "$rep" direct $PORT_B0; run "$rep" gammad-2be $PORT_ENGINE
	else run "$rep" gammad-2be $PORT_ENGINE; run "$rep" direct $PORT_B0; fi
done
kill "$ENGINE"; wait "$ENGINE" 2>/dev/null || true
SPLIT=$(grep '^calls' "$W/engine.out" || echo "calls ?")

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F, -v m="$1" -v c="$2" '$2 == m { print $c }' "$RAW" | median; }
median_f() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
colf() { awk -F, -v m="$1" -v c="$2" '$2 == m { print $c }' "$RAW" | median_f; }
D_CPS=$(col direct 3) D_P50=$(col direct 4) G_CPS=$(col gammad-2be 3) G_P50=$(col gammad-2be 4)
D_CL=$(colf direct 5) D_BE=$(colf direct 6) G_CL=$(colf gammad-2be 5) G_BE=$(colf gammad-2be 6) G_PX=$(colf gammad-2be 7)
# What the CPUs allow: direct spends D_CL + D_BE per call, a proxy adds its own.
CAP=$(awk -v d="$D_CL" -v b="$D_BE" -v p="$G_PX" 'BEGIN { if (d + b + p > 0) printf "%.2f", (d + b) / (d + b + p); else print "-" }')
RATIO=$(awk -v g="$G_CPS" -v d="$D_CPS" 'BEGIN { if (d > 0) printf "%.2f", g / d; else print "-" }')
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
{
	echo "# gRPC unary calls (h2load), $(date -u +%F)"
	echo
	echo "$REPS interleaved repetitions of $CALLS calls, h2load -c $CONNS -m $STREAMS, loopback,"
	echo "$(nproc) CPUs shared with other jobs. direct: h2load to one echo pod. gammad-2be: h2load"
	echo "to the HTTP engine in-process (bench h2engine, no kernel steering), a GRPCRoute"
	echo "balancing every call over 2 echo pods ($SPLIT), $THREADS. Medians; CPU in us per"
	echo "call (user + system, from /proc and time(1))."
	echo
	echo "| mode | calls/s | p50 (us) | calls/s vs direct | CPU h2load | CPU echo pods | CPU proxy |"
	echo "|---|---|---|---|---|---|---|"
	echo "| direct | $D_CPS | $D_P50 | 1.00 | $D_CL | $D_BE | - |"
	echo "| gammad-2be | $G_CPS | $G_P50 | $RATIO | $G_CL | $G_BE | $G_PX |"
	echo
	echo "With every CPU busy, calls/s through a proxy can reach at most (client + echo) /"
	echo "(client + echo + proxy) of direct's, with direct's CPU per call: $CAP here. direct"
	echo "runs one h2load and one single-threaded echo pod, about one CPU each; the proxy's"
	echo "CPU per call comes on top."
} > "$OUTDIR/grpc-$STAMP.md"
cp "$OUTDIR/grpc-$STAMP.md" "$OUTDIR/grpc-latest.md"
cat "$OUTDIR/grpc-$STAMP.md"
