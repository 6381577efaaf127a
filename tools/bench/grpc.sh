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
# As root, also the real agent (`gammad run`, network namespaces gpgrpc-*,
# cgroup <cgroup2>/gpgrpc, pins /sys/fs/bpf/gammad-grpcbench, all removed on
# exit): pods-direct (h2load in a client pod to one echo pod), agent and
# agent-sockmap (the ClusterIP of a GRPCRoute 50/50 over two echo pods,
# through the agent's HTTP engine, without and with --sockmap), and
# pods-direct-sockmap (pods-direct with the --sockmap agent running: the
# direct calls redirected too). GRPC_AGENT=0 skips them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUTDIR=${OUTDIR:-$ROOT/bench/results}
CALLS=100000 REPS=3
for a in "$@"; do [ "$a" = --quick ] && CALLS=20000 REPS=2; done
CONNS=4 STREAMS=16	# h2load: 4 connections, 16 calls in flight on each
PORT_ENGINE=27070 PORT_B0=27071 PORT_B1=27072
METHOD=/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo
GRPC_AGENT=${GRPC_AGENT:-$([ "$(id -u)" -eq 0 ] && echo 1 || echo 0)}

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
command -v h2load >/dev/null || { log "grpc bench: no h2load (nghttp2-client): skipped"; exit 0; }
W=$(mktemp -d /tmp/gammad-grpc-bench.XXXXXX)
PIDS=()
# The agent rows' topology (removed by cleanup).
PIN=/sys/fs/bpf/gammad-grpcbench
NSP=gpgrpc
CG=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	    if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)/gpgrpc
AGENT=
cleanup() {
	set +e
	[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$GRPC_AGENT" = 1 ]; then
		"$BUILD/gammad" uninstall --pin-dir "$PIN" >/dev/null 2>&1
		for ns in $(ip netns list | awk -v p="^$NSP-" '$1 ~ p { print $1 }'); do
			ip netns pids "$ns" | xargs -r kill -9 2>/dev/null
			ip netns del "$ns"
		done
		[ -d "$CG" ] && find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
		sleep 0.2
		[ -d "$CG" ] && find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
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

# ---- the real agent: pods in network namespaces, as tools/bench/run.sh ----------
# Node netns $NSP-node routes between the pods' veths; pods client (10.249.0.2),
# b0 and b1 (10.249.0.10, .11), each in a kubelet-style cgroup under $CG. The
# agent runs in the node's netns (hostNetwork, as deploy/daemonset.yaml) and in
# a cgroup under the one its hooks attach to, as a DaemonSet pod is under the
# cgroup2 root (the default --cgroup): its own sockets pass its sockops too.
VIP=10.249.100.20
pod_ip() { case $1 in client) echo 10.249.0.2 ;; b0) echo 10.249.0.10 ;; b1) echo 10.249.0.11 ;; esac; }
pod_uid() { printf '67727063-6265-4e63-8000-0000000000%02x' "$2"; }
podcg() { echo "$CG/kubepods/besteffort/pod$(pod_uid "$1" "$2")/c"; }
POD_CG=()
setup_pods() {
	local idx=0 ns ip hex
	for ns in $(ip netns list | awk -v p="^$NSP-" '$1 ~ p { print $1 }'); do ip netns del "$ns"; done
	"$BUILD/gammad" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
	ip netns add $NSP-node
	ip -n $NSP-node link set lo up
	ip netns exec $NSP-node sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
	ip -n $NSP-node route add blackhole 10.249.100.0/24
	mkdir -p "$CG/agent"
	for pod in client b0 b1; do
		ns=$NSP-$pod ip=$(pod_ip $pod) hex=$(printf %02x $idx)
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip -n $NSP-node link add "$NSP-h$idx" address "02:00:00:00:fe:$hex" type veth \
			peer name eth0 address "02:00:00:00:fd:$hex" netns "$ns"
		ip -n $NSP-node link set "$NSP-h$idx" up
		ip -n "$ns" addr add "$ip/32" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
		ip -n "$ns" route add 10.249.0.0/16 via 169.254.1.1 dev eth0
		ip -n "$ns" neigh add 169.254.1.1 lladdr "02:00:00:00:fe:$hex" dev eth0 nud permanent
		ip -n $NSP-node route add "$ip/32" dev "$NSP-h$idx"
		ip -n $NSP-node neigh add "$ip" lladdr "02:00:00:00:fd:$hex" dev "$NSP-h$idx" nud permanent
		mkdir -p "$(podcg $pod $idx)"
		POD_CG[$idx]=$(podcg $pod $idx)
		idx=$((idx + 1))
	done
	mkdir -p "$W/man"
	{
		printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n'
		idx=0
		for pod in client b0 b1; do
			cat <<-YAML
			---
			apiVersion: v1
			kind: Pod
			metadata: {name: $pod, namespace: bench, uid: $(pod_uid $pod $idx), labels: {app: $pod}}
			spec: {nodeName: node-a, containers: [{name: c, image: bench}]}
			status: {phase: Running, podIP: $(pod_ip $pod), podIPs: [{ip: $(pod_ip $pod)}],
			  conditions: [{type: Ready, status: "True"}]}
			YAML
			idx=$((idx + 1))
		done
		for s in g:$VIP: b0:10.249.100.21:$(pod_ip b0) b1:10.249.100.22:$(pod_ip b1); do
			IFS=: read -r name vip ep <<<"$s"
			cat <<-YAML
			---
			apiVersion: v1
			kind: Service
			metadata: {name: $name, namespace: bench}
			spec: {clusterIP: $vip, ports: [{name: grpc, port: 7070, appProtocol: grpc}]}
			YAML
			[ -n "$ep" ] && cat <<-YAML
			---
			apiVersion: discovery.k8s.io/v1
			kind: EndpointSlice
			metadata: {name: $name-1, namespace: bench, labels: {kubernetes.io/service-name: $name}}
			addressType: IPv4
			endpoints:
			- {addresses: ["$ep"], conditions: {ready: true}, nodeName: node-a}
			ports: [{name: grpc, port: 7070}]
			YAML
		done
		cat <<-YAML
		---
		apiVersion: gateway.networking.k8s.io/v1
		kind: GRPCRoute
		metadata: {name: split, namespace: bench}
		spec:
		  parentRefs: [{group: "", kind: Service, name: g, port: 7070}]
		  rules:
		  - backendRefs: [{name: b0, port: 7070}, {name: b1, port: 7070}]
		YAML
	} > "$W/man/bench.yaml"
}
# inpod IDX POD CMD...: CMD in the pod's cgroup (joined first: `ip netns exec`
# remounts /sys without it) and netns. INPOD_EXEC=1: exec'd, so that a
# background `inpod ... &` leaves $! the command's own pid (its CPU in /proc).
inpod() {
	local idx=$1 pod=$2; shift 2
	${INPOD_EXEC:+exec} sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "${POD_CG[$idx]}" \
		ip netns exec "$NSP-$pod" "$@"
}
agent_start() { # [--sockmap]
	: > "$W/agent.log"
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$CG/agent" \
		nsenter --net=/run/netns/$NSP-node "$BUILD/gammad" run --manifests "$W/man" \
		--cgroup "$CG" --pin-dir "$PIN" --node-name node-a --no-tc --metrics-addr off \
		${GRPC_THREADS:+--engine-threads $GRPC_THREADS} "$@" >"$W/agent.log" 2>&1 3>&- &
	AGENT=$!
	for _ in $(seq 200); do
		grep -q 'pod bench/client: listening' "$W/agent.log" &&
			inpod 0 client h2load -n 10 -c 1 -H 'content-type: application/grpc' -H 'te: trailers' \
				-d "$W/empty" "http://$VIP:7070$METHOD" 2>/dev/null | grep -q '10 succeeded' &&
			return 0
		kill -0 "$AGENT" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$W/agent.log" >&2
	log "grpc bench: the agent does not serve"; exit 1
}
agent_stop() {
	[ -n "$AGENT" ] || return 0
	kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true
	AGENT=
	"$BUILD/gammad" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
}
MODES=(direct gammad-2be)
if [ "$GRPC_AGENT" = 1 ]; then
	setup_pods
	INPOD_EXEC=1 inpod 0 client sleep infinity 3>&- & PIDS+=($!)	# the client pod's "pause container"
	INPOD_EXEC=1 inpod 1 b0 "$BUILD/echo" serve --port=7070 --pod b0 --namespace bench >/dev/null 2>&1 3>&- &
	P0=$!; PIDS+=($P0)
	INPOD_EXEC=1 inpod 2 b1 "$BUILD/echo" serve --port=7070 --pod b1 --namespace bench >/dev/null 2>&1 3>&- &
	P1=$!; PIDS+=($P1)
	sleep 0.3
	MODES+=(pods-direct agent pods-direct-sockmap agent-sockmap)
fi

RAW=$W/raw.csv
: > "$RAW"
HZ=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do t=$((t + $(sed 's/.*) //' /proc/"$p"/stat | awk '{ print $12 + $13 }'))); done; echo $t; }
# TCP segments the client pod's netns sent (its own Tcp OutSegs counter).
segs() { ip netns exec $NSP-client awk '$1 == "Tcp:" { if (h) { print $12; exit } h = 1 }' /proc/net/snmp; }
run() { # REP MODE
	local out calls_s p50 ok e0 g0 s0=0 s1=0 cpu url pre=() echos=($E0 $E1) proxy=$ENGINE
	case $2 in
	direct)		url=http://127.0.0.1:$PORT_B0 ;;
	gammad-2be)	url=http://127.0.0.1:$PORT_ENGINE ;;
	pods-direct)	url=http://$(pod_ip b0):7070 pre=(inpod 0 client) echos=($P0 $P1) proxy= ;;
	agent)		agent_start; url=http://$VIP:7070 pre=(inpod 0 client) echos=($P0 $P1) proxy=$AGENT ;;
	agent-sockmap)	agent_start --sockmap; url=http://$VIP:7070 pre=(inpod 0 client) echos=($P0 $P1)
			proxy=$AGENT ;;
	pods-direct-sockmap) agent_start --sockmap; url=http://$(pod_ip b0):7070 pre=(inpod 0 client)
			echos=($P0 $P1) proxy= ;;
	esac
	[ "${pre[*]}" ] && s0=$(segs)
	e0=$(ticks "${echos[@]}") g0=$([ -n "$proxy" ] && ticks $proxy || echo 0)
	out=$("${pre[@]}" /usr/bin/time -f '%U %S' -o "$W/time" h2load -n "$CALLS" -c $CONNS -m $STREAMS -t 1 \
		--log-file="$W/req.log" -H 'content-type: application/grpc' -H 'te: trailers' \
		-d "$W/empty" "$url$METHOD" 2>&1) || { log "h2load failed: $out"; agent_stop; return; }
	[ "${pre[*]}" ] && s1=$(segs)
	# CPU us per call: h2load, the echo pods, the engine
	cpu=$(awk -v c="$CALLS" -v hz="$HZ" -v e=$(($(ticks "${echos[@]}") - e0)) \
		-v g=$([ -n "$proxy" ] && echo $(($(ticks $proxy) - g0)) || echo 0) \
		'{ printf "%.2f,%.2f,%.2f", ($1 + $2) * 1e6 / c, e * 1e6 / hz / c, g * 1e6 / hz / c }' "$W/time")
	agent_stop
	ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
	[ "$ok" = "$CALLS" ] || log "$2: only $ok of $CALLS calls succeeded"
	calls_s=$(awk '/^finished in/ { print $4 }' <<<"$out")
	p50=$(awk -F'\t' '{ print $3 }' "$W/req.log" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	segs_call=$(awk -v a="$s0" -v b="$s1" -v c="$CALLS" 'BEGIN { printf "%.2f", (b - a) / c }')
	echo "$1,$2,$calls_s,$p50,$cpu,$segs_call" >> "$RAW"
	log "rep $1 $2: $calls_s calls/s, p50 $p50 us, CPU us/call h2load,echo,proxy $cpu, client pod TCP segments/call $segs_call"
}
for rep in $(seq $REPS); do
	# Interleaved; every other repetition in reverse order.
	order=("${MODES[@]}")
	[ $((rep % 2)) = 0 ] && order=($(printf '%s\n' "${MODES[@]}" | tac))
	for m in "${order[@]}"; do run "$rep" "$m"; done
done
kill "$ENGINE"; wait "$ENGINE" 2>/dev/null || true
SPLIT=$(grep '^calls' "$W/engine.out" || echo "calls ?")

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F, -v m="$1" -v c="$2" '$2 == m { print $c }' "$RAW" | median; }
median_f() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
colf() { awk -F, -v m="$1" -v c="$2" '$2 == m { print $c }' "$RAW" | median_f; }
# row MODE BASE: the table row of MODE, its calls/s against BASE's, and the
# bound the CPUs put on that ratio: direct spends client + echo per call, a
# proxy adds its own, (client + echo) / (client + echo + proxy) with BASE's.
row() {
	local cps p50 cl be px ratio cap
	cps=$(col "$1" 3) p50=$(col "$1" 4) cl=$(colf "$1" 5) be=$(colf "$1" 6) px=$(colf "$1" 7)
	ratio=$(awk -v g="$cps" -v d="$(col "$2" 3)" 'BEGIN { if (d > 0) printf "%.2f", g / d; else print "-" }')
	cap=$(awk -v d="$(colf "$2" 5)" -v b="$(colf "$2" 6)" -v p="$px" \
		'BEGIN { if (p > 0) printf "%.2f", (d + b) / (d + b + p); else print "-" }')
	[ "$1" = "$2" ] && px=- cap=-
	echo "| $1 | $cps | $p50 | $ratio ($2) | $cap | $cl | $be | $px | $([ "$(colf "$1" 8)" = 0.00 ] && echo - || colf "$1" 8) |"
}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
{
	echo "# gRPC unary calls (h2load), $(date -u +%F)"
	echo
	echo "$REPS interleaved repetitions of $CALLS calls, h2load -c $CONNS -m $STREAMS,"
	echo "$(nproc) CPUs shared with other jobs. direct: h2load to one echo pod on loopback. gammad-2be: h2load"
	echo "to the HTTP engine in-process on loopback (bench h2engine, no kernel steering), a GRPCRoute"
	echo "balancing every call over 2 echo pods ($SPLIT), $THREADS."
	if [ "$GRPC_AGENT" = 1 ]; then
		echo "pods-direct: h2load in a client pod (network namespace, veth) to one echo pod."
		echo "agent, agent-sockmap: h2load in the client pod to the ClusterIP of a GRPCRoute 50/50"
		echo "over 2 echo pods, through the real agent (gammad run, its HTTP engine, ${GRPC_THREADS:-$(nproc)} event loops),"
		echo "without and with --sockmap, the agent in a cgroup under the one its hooks attach to."
		echo "pods-direct-sockmap: pods-direct with the --sockmap agent running (redirected too)."
	fi
	echo "Medians; CPU in us per call (user + system, from /proc and time(1)); segments:"
	echo "TCP segments per call sent in the client pod's netns (its Tcp OutSegs; loopback included)."
	echo
	echo "| mode | calls/s | p50 (us) | calls/s vs | bound | CPU h2load | CPU echo pods | CPU proxy | segments |"
	echo "|---|---|---|---|---|---|---|---|---|"
	row direct direct
	row gammad-2be direct
	if [ "$GRPC_AGENT" = 1 ]; then
		row pods-direct pods-direct
		row agent pods-direct
		row pods-direct-sockmap pods-direct-sockmap
		row agent-sockmap pods-direct-sockmap
	fi
	echo
	echo "bound: with every CPU busy, calls/s through a proxy can reach at most (client + echo) /"
	echo "(client + echo + proxy) of its direct row's, with direct's CPU per call: direct runs"
	echo "one h2load and one single-threaded echo pod, about one CPU each; the proxy's CPU per"
	echo "call comes on top."
} > "$OUTDIR/grpc-$STAMP.md"
cp "$OUTDIR/grpc-$STAMP.md" "$OUTDIR/grpc-latest.md"
cat "$OUTDIR/grpc-$STAMP.md"
