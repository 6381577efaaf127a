#!/usr/bin/env bash
# Kubernetes mode at scale: the test API server (tests/lib/kube_apiserver.py)
# holds SERVICES Services with one EndpointSlice each (ENDPOINTS endpoints in
# all) and ROUTES HTTPRoutes; one agent (gammad run --kubeconfig, --no-tc,
# its own cgroup and pin dir) lists and applies them. Prints the time to the
# first apply (from the agent's start), the agent's peak and current memory,
# and change-to-served of one route change (PATCH sent -> the agent's apply
# done, the kernel written), REPS times.
#
# usage: sudo flock /tmp/gammad-lab.lock tools/bench/kube_scale.sh
#        [SERVICES=10000 ENDPOINTS=100000 ROUTES=10000 REPS=5 WATCH_LIST=1
#         AGENT_ARGS="--no-http-engine" LOG_OUT=FILE (keeps the agent's log)
#         GAMMAD=PATH (another build of the agent, for before/after runs)]
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-100000}
ROUTES=${ROUTES:-10000}
REPS=${REPS:-5}
WATCH_LIST=${WATCH_LIST:-1}
AGENT_ARGS=${AGENT_ARGS:-}
PORT=${PORT:-18543}
CPORT=${CPORT:-18544}
GAMMAD=${GAMMAD:-build/gammad}

tmp=$(mktemp -d /tmp/gammad-kube-scale-XXXXXX)
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	     if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
cg=$cg2/gammad-kube-scale
pin=/sys/fs/bpf/gammad-kube-scale
srv= agent=
cleanup() {
	[ -n "${LOG_OUT:-}" ] && cp "$tmp/agent.log" "$LOG_OUT" 2>/dev/null
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
	[ -n "$srv" ] && kill "$srv" 2>/dev/null || true
	build/gammad uninstall --pin-dir "$pin" >/dev/null 2>&1 || true
	rmdir "$cg" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkdir -p "$cg"

cat > "$tmp/kubeconfig" <<EOC
apiVersion: v1
kind: Config
current-context: t
clusters: [{name: t, cluster: {server: "http://127.0.0.1:$PORT"}}]
users: [{name: u, user: {token: bench}}]
contexts: [{name: t, context: {cluster: t, user: u, namespace: kube-system}}]
EOC
python3 tests/lib/kube_apiserver.py --port "$PORT" --control-port "$CPORT" \
	$([ "$WATCH_LIST" = 1 ] || echo --no-watch-list) --bookmark-s 60 > "$tmp/server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -qs "ready on" "$tmp/server.log" && break; sleep 0.1; done
t=$(date +%s.%N)
curl -sf -X POST "http://127.0.0.1:$CPORT/_test/synth" \
	-d "{\"services\": $SERVICES, \"endpoints\": $ENDPOINTS, \"routes\": $ROUTES}" >/dev/null
echo "objects made in the test API server in $(echo "$(date +%s.%N) - $t" | bc) s"

"$GAMMAD" run --kubeconfig "$tmp/kubeconfig" --cgroup "$cg" --pin-dir "$pin" \
	--no-tc --metrics-addr off --node-name node-a --resync 3600 \
	--map-size endpoints=262144 --map-size backends=65536 --map-size frontends=65536 \
	--map-size selectors=65536 --map-size svc-ports=65536 \
	$([ "$WATCH_LIST" = 1 ] || echo --no-watch-list) $AGENT_ARGS > "$tmp/agent.log" 2>&1 &
agent=$!
for _ in $(seq 1200); do grep -q 'kube: first apply' "$tmp/agent.log" && break; sleep 0.1; done
grep -E 'kube: first apply| applied ' "$tmp/agent.log" | head -2
grep -q 'kube: first apply' "$tmp/agent.log" || { tail -20 "$tmp/agent.log"; exit 1; }
sleep 2
grep -E 'VmHWM|VmRSS' "/proc/$agent/status" | tr -s ' \t' ' '

# One route change at a time: PATCH at t0, done when the agent's next apply is logged.
for i in $(seq "$REPS"); do
	n=$(grep -c ' applied ' "$tmp/agent.log")
	t0=$(date +%s%N)
	curl -sf -X PATCH -H 'Content-Type: application/merge-patch+json' \
		"http://127.0.0.1:$CPORT/apis/gateway.networking.k8s.io/v1/namespaces/bench/httproutes/route-00007" \
		-d "{\"spec\": {\"rules\": [{\"matches\": [{\"path\": {\"type\": \"PathPrefix\", \"value\": \"/change-$i\"}}], \"backendRefs\": [{\"name\": \"svc-00007\", \"port\": 80}]}]}}" >/dev/null
	for _ in $(seq 6000); do [ "$(grep -c ' applied ' "$tmp/agent.log")" -gt "$n" ] && break; sleep 0.01; done
	line=$(grep ' applied ' "$tmp/agent.log" | tail -1)
	ts=$(echo "$line" | cut -d' ' -f1)
	t1=$(date -d "$ts" +%s%N)
	echo "change $i: served $(( (t1 - t0) / 1000000 )) ms after the PATCH ($(echo "$line" | grep -o 'in [0-9.]* ms' | head -1) apply)"
done
grep -E 'VmHWM|VmRSS' "/proc/$agent/status" | tr -s ' \t' ' '
