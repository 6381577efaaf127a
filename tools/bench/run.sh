#!/usr/bin/env bash
# make bench [BENCH_ARGS="--quick --reps N --cpus LIST|all"]: gammad against direct pod to
# pod, kube-proxy-style iptables DNAT, IPVS and haproxy, in one run,
# interleaved. See tools/bench/README.md for the topology and the method.
#
# Everything this script makes is named gbench* (network namespaces, links,
# iptables chains inside its own node namespace), pinned under
# /sys/fs/bpf/gammad-bench, and in the cgroup <cgroup2>/gbench; all of it is
# removed on exit, on failure and on Ctrl-C. The host's own interfaces,
# routes and iptables rules are never touched: the "node" of the benchmark
# is a network namespace of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
BENCH=$ROOT/$BUILD/bench
GAMMAD=$ROOT/$BUILD/gammad
PIN=/sys/fs/bpf/gammad-bench
OUTDIR=${OUTDIR:-$ROOT/bench/results}

QUICK=0
REPS=5
# Every pod process and haproxy on one CPU (taskset): on a shared machine
# that keeps other jobs' scheduling out of the ratios. --cpus all: no pinning.
BENCH_CPUS=${BENCH_CPUS:-$([ "$(nproc)" -ge 2 ] && echo 1 || echo all)}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--cpus) BENCH_CPUS=$2; shift ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "bench: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	REPS=${QUICK_REPS:-2}
	RR_COUNT=10000 SECS=0.5 WRK_SECS=1 IPERF_SECS=1 SCALES="10 1000"
	CP_SCALE="1000 1000 10000" CHANGES=3
else
	RR_COUNT=20000 SECS=2 WRK_SECS=2 IPERF_SECS=2 SCALES="10 1000 10000"
	CP_SCALE="10000 10000 100000" CHANGES=5
fi

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
for t in "$BENCH" "$GAMMAD"; do [ -x "$t" ] || { echo "bench: $t not built" >&2; exit 1; }; done
for t in iptables-restore wrk iperf3 haproxy gnuplot; do
	command -v $t >/dev/null || { echo "bench: $t missing (make deps)" >&2; exit 1; }
done

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	     if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
CG=$cg2/gbench
NODE=gbench-node
NODE_IP=10.250.255.1		# haproxy listens here (on the node's lo)
NBE=10				# backend pods b0..b9
WORK=$(mktemp -d /tmp/gbench.XXXXXX)
PIDS=()

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

# ---- cleanup -------------------------------------------------------------------
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	log "cleaning up"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	"$GAMMAD" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
	rm -rf "$PIN" 2>/dev/null || true
	# Whatever still runs in our cgroups or namespaces (a client cut short).
	if [ -d "$CG" ]; then
		find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		sleep 0.2
		find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	fi
	for ns in $(ip netns list | awk '$1 ~ /^gbench-/ { print $1 }'); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	cp_blackholes del
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- topology --------------------------------------------------------------------
# node (netns gbench-node): routes between pods, blackholes the ClusterIP
# range, runs iptables/IPVS/haproxy. Pods: gbench-client (10.250.0.2) and
# gbench-b0..b9 (10.250.0.10+i), each a netns with eth0 (a /32) on a veth to
# the node, static neighbours, routes only to the pod, Service and uplink
# ranges, and a kubelet-style cgroup <cg>/kubepods/besteffort/pod<UID>/c.
# Remote node: gbench-remote on the uplink (10.252.0.2), pod IP 10.250.1.10.
POD_NAMES=(client)
for i in $(seq 0 $((NBE - 1))); do POD_NAMES+=("b$i"); done
declare -A POD_IP POD_UID POD_IDX
pod_ip() { [ "$1" = client ] && echo 10.250.0.2 || echo "10.250.0.$((10 + ${1#b}))"; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup_topology() {
	# A crashed earlier run leaves its namespaces: remove them first.
	for ns in $(ip netns list | awk '$1 ~ /^gbench-/ { print $1 }'); do
		ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns"
	done
	"$GAMMAD" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
	ip netns add $NODE
	ip -n $NODE link set lo up
	nsx $NODE sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65000"
	ip -n $NODE addr add $NODE_IP/32 dev lo	# no CONFIG_DUMMY needed
	ip -n $NODE route add blackhole 10.251.0.0/16
	local idx=0
	for pod in "${POD_NAMES[@]}"; do
		local ns=gbench-$pod ip hex
		ip=$(pod_ip "$pod"); hex=$(printf %02x $idx)
		POD_IP[$pod]=$ip POD_IDX[$pod]=$idx
		POD_UID[$pod]=$(printf '6762656e-6368-4000-8000-0000000000%02x' $idx)
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip -n $NODE link add "gbench-h$idx" address "02:00:00:00:ff:$hex" type veth \
			peer name eth0 address "02:00:00:00:00:$hex" netns "$ns"
		ip -n $NODE link set "gbench-h$idx" up
		ip -n "$ns" addr add "$ip/32" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
		for net in 10.250.0.0/16 10.251.0.0/16 10.252.0.0/16; do
			ip -n "$ns" route add $net via 169.254.1.1 dev eth0
		done
		ip -n "$ns" neigh add 169.254.1.1 lladdr "02:00:00:00:ff:$hex" dev eth0 nud permanent
		ip -n $NODE route add "$ip/32" dev "gbench-h$idx"
		ip -n $NODE neigh add "$ip" lladdr "02:00:00:00:00:$hex" dev "gbench-h$idx" nud permanent
		nsx "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
		mkdir -p "$CG/kubepods/besteffort/pod${POD_UID[$pod]}/c"
		idx=$((idx + 1))
	done
	# The remote node, on the uplink side.
	ip netns add gbench-remote
	ip -n gbench-remote link set lo up
	ip -n $NODE link add gbench-up type veth peer name eth0 netns gbench-remote
	ip -n $NODE addr add 10.252.0.1/24 dev gbench-up
	ip -n $NODE link set gbench-up up
	ip -n gbench-remote addr add 10.252.0.2/24 dev eth0
	ip -n gbench-remote addr add 10.250.1.10/32 dev lo
	ip -n gbench-remote link set eth0 up
	ip -n gbench-remote route add 10.250.0.0/16 via 10.252.0.1
	ip -n $NODE route add 10.250.1.0/24 via 10.252.0.2
}

# podrun POD CMD...: CMD in the pod's network namespace and cgroup.
# --cpus LIST: every pod process and haproxy run on these CPUs only.
PIN_CPUS=()
[ "$BENCH_CPUS" != all ] && PIN_CPUS=(taskset -c "$BENCH_CPUS")
podrun() {
	local pod=$1; shift
	# Join the cgroup first: `ip netns exec` remounts /sys without it.
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh \
		"$CG/kubepods/besteffort/pod${POD_UID[$pod]}/c" "${PIN_CPUS[@]}" \
		ip netns exec "gbench-$pod" "$@"
}
# bg CMD...: CMD in the background with $! its own pid (a function run with
# & would leave $! the forked shell's: /proc/PID/stat then counts nothing).
bg() { ( if declare -F "$1" >/dev/null; then "$@"; else exec "$@"; fi ) & }
podrun_exec() { local pod=$1; shift; exec sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh \
	"$CG/kubepods/besteffort/pod${POD_UID[$pod]}/c" "${PIN_CPUS[@]}" ip netns exec "gbench-$pod" "$@"; }

SERVER_PIDS=
start_servers() {
	local pids=()
	for i in $(seq 0 $((NBE - 1))); do
		bg podrun_exec "b$i" "$BENCH" serve --http 8080 --id 9000 --name "b$i"
		PIDS+=($!); pids+=($!)
	done
	podrun b0 iperf3 -s -p 5201 >/dev/null 2>&1 &
	PIDS+=($!)
	# The client pod's "pause container": the HTTP engine finds a pod's
	# netns through a process in its cgroup, and the measuring clients come
	# and go.
	podrun client sleep infinity &
	PIDS+=($!)
	# Pinned as the pods are: unpinned, it ran on either CPU and the remote
	# rows' p50 jumped between ~16 us (same CPU) and ~55 us (a cross-CPU
	# wake-up per round trip) from one repetition to the next.
	bg "${PIN_CPUS[@]}" ip netns exec gbench-remote "$BENCH" serve --http 8080 --id 9000 --name remote
	PIDS+=($!)
	SERVER_PIDS=$(IFS=,; echo "${pids[*]}")
	cat > "$WORK/haproxy.cfg" <<-EOF
	global
	    nbthread 1
	    maxconn 8000
	defaults
	    timeout connect 2s
	    timeout client 30s
	    timeout server 30s
	listen l4
	    bind $NODE_IP:8080
	    mode tcp
	    server b0 $(pod_ip b0):8080
	listen l4bulk
	    bind $NODE_IP:5201
	    mode tcp
	    server b0 $(pod_ip b0):5201
	listen l7
	    bind $NODE_IP:8081
	    mode http
	    http-reuse always
	    server b0 $(pod_ip b0):8080
	EOF
	bg ip netns exec $NODE "${PIN_CPUS[@]}" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1
	PIDS+=($!)
	HAPROXY_PID=$!
	sleep 0.5
	# The ping-pong servers must answer before anything is measured.
	for i in $(seq 0 $((NBE - 1))); do
		for _ in $(seq 50); do
			podrun client "$BENCH" rr --addr "$(pod_ip b$i):8080" --count 10 --warmup 0 \
				>/dev/null 2>&1 && break
			sleep 0.1
		done
	done
	kill -0 $HAPROXY_PID || { cat "$WORK/haproxy.log" >&2; exit 1; }
}

# ---- manifests -------------------------------------------------------------------
# Real Services (namespace bench): svc10 -> b0..b9, svc2 -> b0,b1, svc1 -> b0
# (iperf3 opens two connections: they must meet one server), svcr -> the
# remote node's pod, svcchg -> b0 or b1 (the change-to-served test).
MAN=$WORK/manifests
eps_yaml() { # PORTNAME PORT IP...
	local pn=$1 port=$2; shift 2
	echo "ports: [{name: $pn, port: $port}]"
	echo "endpoints:"
	for ip in "$@"; do echo "- {addresses: [$ip], conditions: {ready: true}, nodeName: node-a}"; done
}
svc_yaml() { # NAME VIP IPS...
	local name=$1 vip=$2; shift 2
	cat <<-EOF
	---
	apiVersion: v1
	kind: Service
	metadata: {name: $name, namespace: bench}
	spec:
	  clusterIP: $vip
	  selector: {app: $name}${AFFINITY:+
	  sessionAffinity: ClientIP}
	  ports: [{name: http, port: 8080, targetPort: 8080}, {name: id, port: 9000, targetPort: 9000}, {name: bulk, port: 5201, targetPort: 5201}]
	EOF
	for pn in http:8080 id:9000 bulk:5201; do
		printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
		printf 'metadata: {name: %s-%s, namespace: bench, labels: {kubernetes.io/service-name: %s}}\n' \
			"$name" "${pn%%:*}" "$name"
		echo "addressType: IPv4"
		eps_yaml "${pn%%:*}" "${pn#*:}" "$@"
	done
}
SVC_REAL=4	# svc10 svc2 svc1 svcr (svcchg only in the change test)
write_manifests() { # FILL_SERVICES
	mkdir -p "$MAN"
	{
		printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n'
		for pod in "${POD_NAMES[@]}"; do
			cat <<-EOF
			---
			apiVersion: v1
			kind: Pod
			metadata: {name: $pod, namespace: bench, uid: ${POD_UID[$pod]}, labels: {app: $pod}}
			spec: {nodeName: node-a, containers: [{name: c, image: bench}]}
			status: {phase: Running, podIP: ${POD_IP[$pod]}, podIPs: [{ip: ${POD_IP[$pod]}}],
			  conditions: [{type: Ready, status: "True"}]}
			EOF
		done
		local all=() two=()
		for i in $(seq 0 $((NBE - 1))); do all+=("$(pod_ip b$i)"); done
		svc_yaml svc10 10.251.0.10 "${all[@]}"
		svc_yaml svc2 10.251.0.2 "${all[0]}" "${all[1]}"
		svc_yaml svc1 10.251.0.1 "${all[0]}"
		sed 's/nodeName: node-a/nodeName: node-r/' <(svc_yaml svcr 10.251.0.20 10.250.1.10)
	} > "$MAN/real.yaml"
	if [ "$1" -gt 0 ]; then
		"$BENCH" gen fill --services "$1" --eps 2 > "$MAN/fill.yaml"
	else
		rm -f "$MAN/fill.yaml"
	fi
}

# ---- data path modes -----------------------------------------------------------
DP_STATE=
AGENT_PID=
dp_off() {
	[ "$DP_STATE" = off ] && return 0
	if [ -n "$AGENT_PID" ]; then
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
		AGENT_PID=
		cat "$WORK/agent.log" >>"$WORK/gammad.log"
	fi
	rm -f "$MAN/http.yaml"
	"$GAMMAD" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
	DP_STATE=off
}
dp_gammad() { # sk|nosk|aff SERVICES (aff: nosk, the real Services with sessionAffinity ClientIP)
	local want="$1/$2"
	[ "$DP_STATE" = "$want" ] && return 0
	dp_off
	AFFINITY=$([ "$1" = aff ] && echo 1) write_manifests $(($2 - SVC_REAL))
	local extra=()
	# The socket redirect is opt-in (--sockmap); the other rows load no sockops at all.
	if [ "$1" = sk ]; then extra=(--sockmap); else extra=(--no-sockmap); fi
	"$GAMMAD" run --once --manifests "$MAN" --cgroup "$CG" --pin-dir "$PIN" \
		--node-name node-a --no-tc "${extra[@]}" >>"$WORK/gammad.log" 2>&1 ||
		{ tail -5 "$WORK/gammad.log" >&2; exit 1; }
	DP_STATE=$want
}

# The HTTP engine: a running `gammad run --http-engine` (it needs the agent,
# not --once) in the node's netns (its /metrics stays there; nsenter, not
# `ip netns exec`, which would remount /sys without bpffs and cgroup2),
# pinned to the CPUs of the pods and haproxy. svch (10.251.0.40 -> b0) has
# an HTTPRoute, so every request is decided by the engine and proxied over
# its pooled upstream connections from the client pod's netns.
dp_http() { # [--kernel-http [--sockmap]]: issue 13, requests served by the kernel HTTP path
	local want="http $*"
	[ "$DP_STATE" = "$want" ] && return 0
	dp_off
	write_manifests $((10 - SVC_REAL))
	# svchr (10.251.0.41): the same route to the remote node's pod (the -remote row).
	{
		svc_yaml svch 10.251.0.40 "$(pod_ip b0)"
		sed 's/nodeName: node-a/nodeName: node-r/' <(svc_yaml svchr 10.251.0.41 10.250.1.10)
		for r in svch svchr; do
			cat <<-EOF
			---
			apiVersion: gateway.networking.k8s.io/v1
			kind: HTTPRoute
			metadata: {name: $r, namespace: bench}
			spec:
			  parentRefs: [{group: "", kind: Service, name: $r, port: 8080}]
			  rules:
			  - matches: [{path: {type: PathPrefix, value: /}}]
			    backendRefs: [{name: $r, port: 8080}]
			EOF
		done
	} > "$MAN/http.yaml"
	nsenter --net=/run/netns/$NODE "${PIN_CPUS[@]}" "$GAMMAD" run --manifests "$MAN" \
		--cgroup "$CG" --pin-dir "$PIN" --node-name node-a --no-tc --http-engine "$@" \
		>"$WORK/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=($AGENT_PID)
	DP_STATE=$want
	# Served once the client pod's listener is up and a request goes through.
	for _ in $(seq 100); do
		grep -q 'pod bench/client: listening' "$WORK/agent.log" &&
			podrun client "$BENCH" rr --addr 10.251.0.40:8080 --count 10 --warmup 0 \
				>/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$WORK/agent.log" >&2
	exit 1
}

# TC path only: the agent's tables with its cgroup hooks on an empty cgroup
# (no pod is under it), the TC programs on the node side of every pod veth.
dp_tc() { # SERVICES
	local want="tc/$1" pods=() idx=0
	[ "$DP_STATE" = "$want" ] && return 0
	dp_off
	write_manifests $(($1 - SVC_REAL))
	mkdir -p "$CG/tc"
	"$GAMMAD" run --once --manifests "$MAN" --cgroup "$CG/tc" --pin-dir "$PIN" \
		--node-name node-a --no-sockmap --no-tc >>"$WORK/gammad.log" 2>&1 ||
		{ tail -5 "$WORK/gammad.log" >&2; exit 1; }
	for pod in "${POD_NAMES[@]}"; do pods+=(--pod "${POD_IP[$pod]},gbench-h${POD_IDX[$pod]}"); done
	"$BENCH" tc --pin-dir "$PIN" --cgroup "$CG/tc" --netns $NODE "${pods[@]}" >>"$WORK/gammad.log" 2>&1 ||
		{ tail -5 "$WORK/gammad.log" >&2; exit 1; }
	DP_STATE=$want
}

IPT_STATE=
ipt_svc_args() {
	local all=() two
	for i in $(seq 0 $((NBE - 1))); do all+=("$(pod_ip b$i):8080"); done
	two="${all[0]}+${all[1]}"
	echo --svc "bench/svc10,10.251.0.10,8080,$(IFS=+; echo "${all[*]}")" \
		--svc "bench/svc2,10.251.0.2,8080,$two" \
		--svc "bench/svc1,10.251.0.1,8080,$(pod_ip b0):8080" \
		--svc "bench/svc1,10.251.0.1,5201,$(pod_ip b0):5201"
}
ipt_load() { # SERVICES
	[ "$IPT_STATE" = "$1" ] && return 0
	# shellcheck disable=SC2046
	"$BENCH" gen ipt --services $(($1 - SVC_REAL + 1)) --eps 2 $(ipt_svc_args) > "$WORK/ipt.rules"
	nsx $NODE iptables-restore < "$WORK/ipt.rules"
	IPT_STATE=$1
}
ipt_clear() {
	[ -z "$IPT_STATE" ] && return 0
	printf '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n' |
		nsx $NODE iptables-restore
	IPT_STATE=
}

HAVE_IPVS=0
# IPVS needs CONFIG_IP_VS; without it the IPVS rows say so.
[ -e /proc/net/ip_vs ] || modprobe ip_vs 2>/dev/null || true
[ -e /proc/net/ip_vs ] && HAVE_IPVS=1
IPVS_STATE=
ipvs_load() { # SERVICES
	[ "$IPVS_STATE" = "$1" ] && return 0
	ipvs_clear
	{
		echo "-A -t 10.251.0.10:8080 -s rr"
		for i in $(seq 0 $((NBE - 1))); do echo "-a -t 10.251.0.10:8080 -r $(pod_ip b$i):8080 -m"; done
		echo "-A -t 10.251.0.2:8080 -s rr"
		echo "-a -t 10.251.0.2:8080 -r $(pod_ip b0):8080 -m"
		echo "-a -t 10.251.0.2:8080 -r $(pod_ip b1):8080 -m"
		echo "-A -t 10.251.0.1:8080 -s rr"
		echo "-a -t 10.251.0.1:8080 -r $(pod_ip b0):8080 -m"
		echo "-A -t 10.251.0.1:5201 -s rr"
		echo "-a -t 10.251.0.1:5201 -r $(pod_ip b0):5201 -m"
		"$BENCH" gen fill --services $(($1 - SVC_REAL)) --eps 2 | awk '
			/clusterIP:/ { vip = $2; print "-A -t " vip ":8080 -s rr" }
			/addresses:/ { gsub(/[\[\],]/, "", $3); print "-a -t " vip ":8080 -r " $3 ":8080 -m" }'
	} > "$WORK/ipvs.rules"
	awk '$1 == "-A" { split($3, a, ":"); print "address add " a[1] "/32 dev lo" }' \
		"$WORK/ipvs.rules" | ip -n $NODE -batch -
	nsx $NODE ipvsadm -R < "$WORK/ipvs.rules"
	IPVS_STATE=$1
}
ipvs_clear() {
	[ -z "$IPVS_STATE" ] && return 0
	nsx $NODE ipvsadm -C || true
	ip -n $NODE -batch - < <(awk '$1 == "-A" { split($3, a, ":"); print "address del " a[1] "/32 dev lo" }' "$WORK/ipvs.rules") || true
	IPVS_STATE=
}

# mode_setup MODE: the data path of MODE; sets ADDR (ping-pong, wrk), BULK
# (iperf3, - for none) and CPIDS (whose CPU time counts, - for none).
mode_setup() {
	local m=$1 n
	case $m in
	direct|direct-remote|haproxy-*) ipt_clear; ipvs_clear; dp_off ;;
	gammad-http)	ipt_clear; ipvs_clear; dp_http ;;
	gammad-khttp|gammad-khttp-remote) ipt_clear; ipvs_clear; dp_http --kernel-http ;;
	gammad-khttp-sk) ipt_clear; ipvs_clear; dp_http --kernel-http --sockmap ;;
	gammad-ct-remote) ipt_clear; ipvs_clear; dp_gammad nosk 10 ;;
	gammad-ct-*)	n=${m#gammad-ct-}; ipt_clear; ipvs_clear; dp_gammad nosk "${n%%-*}" ;;
	gammad-sk-*)	n=${m#gammad-sk-}; ipt_clear; ipvs_clear; dp_gammad sk "${n%%-*}" ;;
	gammad-aff-*)	n=${m#gammad-aff-}; ipt_clear; ipvs_clear; dp_gammad aff "${n%%-*}" ;;
	gammad-tc-*)	n=${m#gammad-tc-}; ipt_clear; ipvs_clear; dp_tc "${n%%-*}" ;;
	iptables-*)	n=${m#iptables-}; ipvs_clear; dp_off; ipt_load "${n%%-*}" ;;
	ipvs-*)		n=${m#ipvs-}; ipt_clear; dp_off; ipvs_load "${n%%-*}" ;;
	*) echo "bench: unknown mode $m" >&2; exit 1 ;;
	esac
	read -r ADDR BULK CPIDS PROXY <<<"$(mode_addrs "$m")"
}
# mode_addrs MODE: ADDR BULK CPIDS PROXY (the proxy's pid, - for none).
mode_addrs() {
	local m=$1
	case $m in
	direct)		echo "$(pod_ip b0):8080 $(pod_ip b0):5201 $SERVER_PIDS -" ;;
	direct-remote)	echo "10.250.1.10:8080 - - -" ;;
	gammad-ct-remote) echo "10.251.0.20:8080 - - -" ;;
	gammad-khttp-remote) echo "10.251.0.41:8080 - $AGENT_PID $AGENT_PID" ;;
	gammad-http|gammad-khttp*) echo "10.251.0.40:8080 - $SERVER_PIDS,$AGENT_PID $AGENT_PID" ;;
	haproxy-tcp)	echo "$NODE_IP:8080 $NODE_IP:5201 $SERVER_PIDS,$HAPROXY_PID $HAPROXY_PID" ;;
	haproxy-http)	echo "$NODE_IP:8081 - $SERVER_PIDS,$HAPROXY_PID $HAPROXY_PID" ;;
	*-2be)		echo "10.251.0.2:8080 10.251.0.1:5201 $SERVER_PIDS -" ;;
	*-10be)		echo "10.251.0.10:8080 10.251.0.1:5201 $SERVER_PIDS -" ;;
	*)		echo "10.251.0.1:8080 10.251.0.1:5201 $SERVER_PIDS -" ;;
	esac
}

# ---- one repetition of one mode ------------------------------------------------
RAW=$WORK/raw.csv
echo "rep,mode,metric,value" > "$RAW"
rec() { echo "$1,$2,$3,$4" >> "$RAW"; }
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
# utime+stime of PID (all its threads) in clock ticks; the command name may
# hold spaces, so fields are counted after its closing parenthesis.
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK)

measure() { # REP MODE
	local rep=$1 m=$2 addr bulk pids out proxy t0=
	mode_setup "$m"
	addr=$ADDR bulk=$BULK pids=$CPIDS proxy=$PROXY
	[ "$pids" = - ] && pids=
	if out=$(podrun client "$BENCH" rr --addr "$addr" --count "$RR_COUNT" --cpu-pids "$pids"); then
		rec "$rep" "$m" p50_us "$(kv "$out" p50_us)"
		rec "$rep" "$m" p99_us "$(kv "$out" p99_us)"
		rec "$rep" "$m" cpu_us "$(kv "$out" cpu_us)"
	else log "$m: rr failed"; fi
	if out=$(podrun client "$BENCH" crr --addr "$addr" --seconds "$SECS" --cpu-pids "$pids"); then
		rec "$rep" "$m" cps "$(kv "$out" cps)"
		rec "$rep" "$m" cpu_conn_us "$(kv "$out" cpu_us)"
	else log "$m: crr failed"; fi
	[ "$proxy" != - ] && t0=$(proc_ticks "$proxy")
	if out=$(podrun client wrk -t1 -c16 -d"${WRK_SECS}s" "http://$addr/" 2>&1); then
		rec "$rep" "$m" wrk_rps "$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
		# The proxy process alone (haproxy, gammad's engine): utime+stime
		# over the wrk run per request wrk counted.
		[ -n "$t0" ] && rec "$rep" "$m" proxy_cpu_us "$(awk -v t0="$t0" -v t1="$(proc_ticks "$proxy")" \
			-v hz="$CLK_TCK" '/ requests in / { printf "%.2f", (t1 - t0) * 1e6 / hz / $1 }' <<<"$out")"
	else log "$m: wrk failed: $out"; fi
	if [ "$bulk" != - ] && [ "$QUICK" = 0 ]; then	# --quick: no iperf3, for time
		if out=$(podrun client iperf3 -c "${bulk%:*}" -p "${bulk#*:}" -t "$IPERF_SECS" -J 2>&1); then
			rec "$rep" "$m" gbps "$(awk '/"sum_received"/ { f = 1 }
				f && /"bits_per_second"/ { gsub(/,/, "", $2); printf "%.2f", $2 / 1e9; exit }' <<<"$out")"
		else log "$m: iperf3 failed"; fi
	fi
	# BENCH_AFTER='cmd': run after every mode (development: counters, maps).
	if [ -n "${BENCH_AFTER:-}" ]; then eval "$BENCH_AFTER" >&2 || true; fi
}

# ---- control plane ---------------------------------------------------------------
change_test() { # SERVICES: manifest change -> the kernel serving it, with a watching agent
	local n=$1 agent to from
	dp_off; ipt_clear; ipvs_clear
	write_manifests $((n - SVC_REAL))
	svc_yaml svcchg 10.251.0.30 "$(pod_ip b0)" > "$MAN/chg.yaml"
	"$GAMMAD" run --manifests "$MAN" --cgroup "$CG" --pin-dir "$PIN" --node-name node-a \
		--metrics-addr off --no-tc >>"$WORK/gammad.log" 2>&1 &
	agent=$!; PIDS+=($agent)
	for _ in $(seq 100); do
		podrun client "$BENCH" rr --addr 10.251.0.30:8080 --count 1 --warmup 0 >/dev/null 2>&1 && break
		sleep 0.1
	done
	from=b0
	for i in $(seq "$CHANGES"); do
		to=$([ $from = b0 ] && echo b1 || echo b0)
		svc_yaml svcchg 10.251.0.30 "$(pod_ip $to)" > "$MAN/.chg.yaml.new"
		out=$(podrun client "$BENCH" change --addr 10.251.0.30:9000 --expect $to \
			--src "$MAN/.chg.yaml.new" --dst "$MAN/chg.yaml" --timeout-ms 10000) ||
			{ log "change test failed"; break; }
		rec "$i" "control-$n" change_ms "$(kv "$out" change_ms)"
		from=$to
		sleep 0.3
	done
	kill $agent; wait $agent 2>/dev/null || true
	rm -f "$MAN/chg.yaml"
	"$GAMMAD" uninstall --pin-dir "$PIN" >/dev/null 2>&1 || true
	DP_STATE=off
}

cp_apply() { # services routes endpoints: translate+apply wall time and peak RSS
	local s=$1 r=$2 e=$3 dir=$WORK/cp out sizes
	mkdir -p "$dir"
	"$BENCH" gen cp --services "$s" --routes "$r" --endpoints "$e" > "$dir/cluster.yaml"
	sizes=(--map-size endpoints=262144 --map-size alias-slots=262144 --map-size backends=65536
	       --map-size frontends=65536 --map-size selectors=65536 --map-size consumers=65536
	       --map-size svc-ports=65536 --map-size routes=65536 --map-size objects=524288)
	dp_off
	# The running agent (`gammad run`, HTTP engine on: the DaemonSet's mode)
	# on a pin dir, state dir and manifests copy of its own (--once's
	# status file beside the manifests would not be the one its snapshot
	# noted): a first start leaves the pinned maps and, on SIGTERM, its
	# image snapshot; every "run" below is its restart with nothing to change.
	local rpin=$PIN-run rstate=$WORK/state-run rdir=$WORK/cp-run
	mkdir -p "$rdir" && cp "$dir/cluster.yaml" "$rdir/"
	run_agent() { # [--until NAME=TEXT]...
		"$BENCH" runstat "$@" --until ready="http engine: on" --timeout-ms 120000 -- \
			"$GAMMAD" run --manifests "$rdir" --cgroup "$CG" --pin-dir "$rpin" \
			--state-dir "$rstate" --no-tc --metrics-addr off "${sizes[@]}"
	}
	"$GAMMAD" uninstall --pin-dir "$rpin" --state-dir "$rstate" >/dev/null 2>&1 || true
	run_agent >/dev/null 2>&1 || log "cp running agent: first start failed"
	# CP_REPS times, interleaved: cold (empty pin dir, no image snapshot:
	# uninstall removes both), then the restart with nothing to change (the
	# snapshot --once kept, the pinned maps adopted), then the running
	# agent's restart: exec -> "adopted and serving" (the snapshot's image
	# checked against the pinned maps: the kernel serves it), exec -> "http
	# engine: on" (model, translation, engine tables and pipeline built, the
	# listeners taken). Medians of CP_REPS.
	for rep in $(seq "${CP_REPS:-5}"); do
		"$GAMMAD" uninstall --pin-dir "$PIN" --state-dir "$WORK/state" >/dev/null 2>&1 || true
		for what in cold warm; do
			out=$("$BENCH" runstat -- "$GAMMAD" run --once --manifests "$dir" --cgroup "$CG" \
				--pin-dir "$PIN" --state-dir "$WORK/state" --no-tc "${sizes[@]}" 2>&1 >/dev/null) ||
				{ log "cp apply ($what) failed: $(tail -3 <<<"$out")"; continue; }
			out=$(grep wall_ms= <<<"$out")
			rec "$rep" "cp-$s-$r-$e" "${what}_ms" "$(kv "$out" wall_ms)"
			rec "$rep" "cp-$s-$r-$e" "${what}_rss_mb" "$(awk -v k="$(kv "$out" maxrss_kb)" 'BEGIN { printf "%.1f", k / 1024 }')"
		done
		out=$(run_agent --until adopted="adopted and serving" 2>&1 >/dev/null) ||
			{ log "cp running agent restart failed: $(grep -E 'snapshot|error' <<<"$out" | tail -3)"; continue; }
		out=$(grep wall_ms= <<<"$out")
		rec "$rep" "cp-$s-$r-$e" run_adopt_ms "$(kv "$out" adopted_ms)"
		rec "$rep" "cp-$s-$r-$e" run_ready_ms "$(kv "$out" ready_ms)"
	done
	"$GAMMAD" uninstall --pin-dir "$PIN" --state-dir "$WORK/state" >/dev/null 2>&1 || true
	"$GAMMAD" uninstall --pin-dir "$rpin" --state-dir "$rstate" >/dev/null 2>&1 || true
	rm -rf "$rdir"
	DP_STATE=off
	out=$("$GAMMAD" translate --bench --services "$s" --routes "$r" --endpoints "$e" 2>&1) || true
	rec 1 "cp-$s-$r-$e" translate_only_ms \
		"$(awk '/^(parse|translate|image) / { t += $2 } END { printf "%.1f", t * 1000 }' <<<"$out")"
}

# The addresses of `bench gen cp` (user/lib/input/synth_cluster.c: ClusterIPs
# 10.96.0.0+, endpoints 10.128.0.0+) dropped on the host while an agent with
# --kernel-http runs in the host netns: its upstream pools connect to
# endpoint addresses, and no SYN may leave the machine. add | del.
CP_BLACKHOLES=(10.96.0.0/12 10.128.0.0/9)
CP_BH_SET=0
cp_blackholes() {
	local r
	if [ "$1" = add ]; then
		for r in "${CP_BLACKHOLES[@]}"; do ip route add blackhole "$r"; done
		CP_BH_SET=1
	elif [ "$CP_BH_SET" = 1 ]; then
		for r in "${CP_BLACKHOLES[@]}"; do ip route del blackhole "$r" 2>/dev/null || true; done
		CP_BH_SET=0
	fi
}

cp_khttp() { # services routes endpoints: the running agent without and with --kernel-http
	local s=$1 r=$2 e=$3 dir=$WORK/cpk pin=$PIN-cpk state=$WORK/state-cpk agent log t0 out
	local sizes=(--map-size endpoints=262144 --map-size alias-slots=262144 --map-size backends=65536
	       --map-size frontends=65536 --map-size selectors=65536 --map-size consumers=65536
	       --map-size svc-ports=65536 --map-size routes=65536 --map-size objects=524288)
	# route-0 in a file of its own: the change rewrites that file alone.
	mkdir -p "$dir"
	"$BENCH" gen cp --services "$s" --routes "$r" --endpoints "$e" |
		awk -v d="$dir" 'BEGIN { RS = "---\n"; ORS = "---\n" }
			/name: route-0, namespace: ns-0}/ { print > (d "/route0.yaml"); next }
			{ print > (d "/cluster.yaml") }'
	applied() { grep -cE '^[^ ]+ info  applied .* in [0-9.]+ ms' "$log"; }
	# "apply N ms" of the control plane line after the Nth "applied"
	apply_ms() { grep -oE 'control plane: .* apply [0-9.]+ ms' "$log" | sed -n "$1p" |
		awk '{ print $(NF - 1) }'; }
	applied_ms() { grep -oE 'info  applied .* in [0-9.]+ ms' "$log" | sed -n "$1p" |
		awk '{ print $(NF - 1) }'; }
	cp_blackholes add
	# CP_REPS times, interleaved: a first start into an empty pin dir (cold:
	# the whole image applied, "applied" logged), then route-0's weight
	# changed (the incremental commit: "applied in" logged, and the wall time
	# from the file's rename to that line).
	for rep in $(seq "${CP_REPS:-5}"); do
		for kh in off on; do
			local m="cpk-$kh-$s-$r-$e" flag=()
			[ "$kh" = on ] && flag=(--kernel-http)
			"$GAMMAD" uninstall --pin-dir "$pin" --state-dir "$state" >/dev/null 2>&1 || true
			sed -i 's/weight: 80}/weight: 90}/' "$dir/route0.yaml"
			log=$WORK/cpk-$kh.log
			"$GAMMAD" run --manifests "$dir" --cgroup "$CG" --pin-dir "$pin" --state-dir "$state" \
				--no-tc --metrics-addr off "${sizes[@]}" "${flag[@]}" >"$log" 2>&1 &
			agent=$!; PIDS+=($agent)
			t0=$(date +%s%N)
			while [ "$(applied)" -lt 1 ] && kill -0 $agent 2>/dev/null; do sleep 0.05; done
			rec "$rep" "$m" first_apply_ms "$(apply_ms 1)"
			rec "$rep" "$m" first_applied_ms "$(applied_ms 1)"
			sleep 2
			sed 's/weight: 90}/weight: 80}/' "$dir/route0.yaml" > "$dir/.route0.new"
			t0=$(date +%s%N)
			mv "$dir/.route0.new" "$dir/route0.yaml"
			while [ "$(applied)" -lt 2 ] && kill -0 $agent 2>/dev/null &&
			      [ $(($(date +%s%N) - t0)) -lt 120000000000 ]; do sleep 0.02; done
			if [ "$(applied)" -ge 2 ]; then
				rec "$rep" "$m" change_wall_ms "$((($(date +%s%N) - t0) / 1000000))"
				rec "$rep" "$m" change_apply_ms "$(apply_ms 2)"
				rec "$rep" "$m" change_applied_ms "$(applied_ms 2)"
			else
				log "cp kernel-http $kh: the change was not applied: $(tail -2 "$log")"
			fi
			kill $agent; wait $agent 2>/dev/null || true
		done
	done
	"$GAMMAD" uninstall --pin-dir "$pin" --state-dir "$state" >/dev/null 2>&1 || true
	cp_blackholes del
	rm -rf "$dir"
}

# ---- main ----------------------------------------------------------------------
MODES=(direct)
for s in $SCALES; do MODES+=("gammad-ct-$s"); done
MODES+=(gammad-sk-10)
# Session affinity on against off (gammad-ct-*), connect time: --quick at
# 1,000 Services, the full run at 10,000 (one endpoint and ten).
if [ "$QUICK" = 1 ]; then MODES+=(gammad-aff-1000 gammad-aff-1000-10be gammad-ct-1000-10be)
else MODES+=(gammad-aff-10000 gammad-aff-10000-10be); fi
# The TC path (bpf/tc.bpf.c) when this tree has it; `gammad run` does not drive it yet.
HAVE_TC=0
[ -f bpf/tc.bpf.c ] && HAVE_TC=1 && MODES+=(gammad-tc-10)
[ "$HAVE_TC" = 1 ] && [ "$QUICK" = 0 ] && MODES+=(gammad-tc-10000)
[ "$QUICK" = 1 ] || MODES+=(gammad-sk-10000 gammad-ct-10000-2be gammad-ct-10000-10be
	gammad-sk-10000-10be direct-remote gammad-ct-remote gammad-khttp-remote)
for s in $SCALES; do MODES+=("iptables-$s"); done
[ "$QUICK" = 1 ] || MODES+=(iptables-10000-2be iptables-10000-10be)
if [ "$HAVE_IPVS" = 1 ]; then for s in $SCALES; do MODES+=("ipvs-$s"); done; fi
MODES+=(haproxy-tcp gammad-http gammad-khttp gammad-khttp-sk haproxy-http)
# BENCH_MODES="direct gammad-sk-10 ...": only these (while developing).
[ -n "${BENCH_MODES:-}" ] && read -r -a MODES <<<"$BENCH_MODES"

# BENCH_CP_ONLY="cp_khttp": only these control-plane steps (no topology, no
# data path), at CP_SCALE; their raw rows go to stdout.
if [ -n "${BENCH_CP_ONLY:-}" ]; then
	mkdir -p "$CG"
	for step in $BENCH_CP_ONLY; do
		case $step in
		cp_khttp|cp_apply) log "control plane: $step"; $step $CP_SCALE ;;
		*) echo "bench: unknown control-plane step $step" >&2; exit 2 ;;
		esac
	done
	cat "$RAW"
	exit 0
fi
log "bench: topology (netns gbench-*, cgroup $CG, pin dir $PIN)"
mkdir -p "$CG"
setup_topology
start_servers
T0=$(date +%s)
for rep in $(seq "$REPS"); do
	# Interleaved: every repetition runs every mode, starting one mode later.
	n=${#MODES[@]}
	for k in $(seq 0 $((n - 1))); do
		m=${MODES[$(((k + rep - 1) % n))]}
		log "rep $rep/$REPS: $m"
		measure "$rep" "$m"
	done
done
log "control plane"
[ -n "${BENCH_NO_CP:-}" ] || {
change_test 10
[ "$QUICK" = 1 ] || change_test 10000
# shellcheck disable=SC2086
cp_apply $CP_SCALE
# shellcheck disable=SC2086
cp_khttp $CP_SCALE
}
log "data path done in $(($(date +%s) - T0)) s; writing results"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
MACHINE="$([ "$BENCH_CPUS" != all ] && echo "pods and haproxy pinned to CPU $BENCH_CPUS (taskset) of ")$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME")"
"$ROOT/tools/bench/report.sh" "$RAW" "$OUTDIR/$STAMP" "$MACHINE" "$REPS" "$QUICK" "$HAVE_IPVS"
cp "$OUTDIR/$STAMP.md" "$OUTDIR/latest.md"
cp "$OUTDIR/$STAMP.csv" "$OUTDIR/latest.csv"
[ -f "$OUTDIR/$STAMP.png" ] && cp "$OUTDIR/$STAMP.png" "$OUTDIR/latest.png"
cp "$RAW" "$OUTDIR/$STAMP.raw.csv"
cat "$OUTDIR/$STAMP.md"
log "results: $OUTDIR/$STAMP.{md,csv,png}"
