#!/usr/bin/env bash
# make run: the bundled example (deploy/examples) in the lab, routed by gammad.
#
# Brings up the lab (pods as network namespaces in kubelet-style cgroups,
# each running the echo server), prints what gammad's translation makes of
# the example's routes, starts the agent (with its HTTP engine) on the lab's
# cgroup, and then shows, every few seconds, which pods answer requests to
# the reviews ClusterIP from the shop namespace (producer route: 80/20 per
# request on one keep-alive connection, "end-user: jason" to reviews-v2,
# /old-reviews redirected) and from the frontend namespace (its consumer
# route, all to reviews-v2). Ctrl-C tears everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
EXAMPLES=${EXAMPLES:-deploy/examples}
PIN_DIR=${PIN_DIR:-/sys/fs/bpf/gammad-run}

work=$(mktemp -d /tmp/gammad-run.XXXXXX)
export GAMMAD_LAB_STATE=$work/lab
agent=

teardown() {
	trap - EXIT INT TERM
	echo
	echo "run: tearing down"
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	"$BUILD/gammad" uninstall --pin-dir "$PIN_DIR" || true
	"$BUILD/lab" down >/dev/null || echo "run: lab down failed; run '$BUILD/lab down --state $GAMMAD_LAB_STATE'" >&2
	rm -rf "$work"
}
trap teardown EXIT
trap 'exit 130' INT TERM

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	     if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
lab_cgroup=$cg2/gammad-lab

echo "run: bringing up the lab from $EXAMPLES"
"$BUILD/lab" up --out "$work/manifests" --cgroup-parent "$lab_cgroup" "$EXAMPLES"
echo
"$BUILD/lab" pods
echo
echo "run: what gammad makes of the routes (gammad translate):"
"$BUILD/gammad" translate "$work/manifests" || true
echo

echo "run: starting gammad on $lab_cgroup (maps pinned under $PIN_DIR)"
# The HTTP engine is on by default: shop/reviews' HTTPRoute applies per request.
"$BUILD/gammad" run --manifests "$work/manifests" --cgroup "$lab_cgroup" --pin-dir "$PIN_DIR" &
agent=$!
for _ in $(seq 50); do
	[ -e "$PIN_DIR/gammad_fe_v1" ] && break
	sleep 0.1
done
sleep 1

# pod_name NS DEPLOYMENT: first pod of that deployment ("NS/NAME").
pod_name() {
	"$BUILD/lab" pods | awk -v p="$1/$2-" 'index($1, p) == 1 { print $1; exit }'
}
vip=$("$BUILD/gammad" translate "$work/manifests" 2>/dev/null |
	awk '$1 == "Service" && $2 == "shop/reviews" && $4 == "80" { print $NF; exit }')
[ -n "$vip" ] || { echo "run: no ClusterIP for shop/reviews in cluster.yaml" >&2; exit 1; }

# client POD WHAT ARGS...: echo client from inside a pod, titled.
client() {
	local pod=$1 what=$2
	shift 2
	echo "--- from $pod: $what"
	"$BUILD/lab" exec "$pod" -- "$PWD/$BUILD/echo" client "$@" ||
		echo "run: requests from $pod failed"
}

shop=$(pod_name shop storefront)
web=$(pod_name frontend web)
echo "run: requests to reviews ($vip:80) every 5 s (Ctrl-C to stop)"
while :; do
	client "$shop" "100 requests on one keep-alive connection (80/20 per request)" \
		"http://$vip/reviews/1" --count=100
	client "$shop" "100 requests with end-user: jason (header route)" \
		"http://$vip/reviews/1" -H end-user:jason --count=100
	client "$shop" "GET /old-reviews/1 (redirect)" "http://$vip/old-reviews/1" |
		grep -E '^(---|StatusCode|ResponseHeader=Location)'
	client "$web" "100 requests (consumer route of namespace frontend)" \
		"http://$vip/reviews/1" --count=100
	sleep 5
done
