#!/usr/bin/env bash
# make run: the bundled example (deploy/examples) in the lab, routed by gammad.
#
# Brings up the lab (pods as network namespaces in kubelet-style cgroups,
# each running the echo server), prints what gammad's translation makes of
# the example's routes, starts the agent on the lab's cgroup, and then shows
# which pods answer connections to the reviews ClusterIP: from the shop
# namespace (producer route, 80/20) and from the frontend namespace (its
# consumer route, all to reviews-v2). Ctrl-C tears everything down.
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

echo "run: 100 new connections to reviews ($vip:80) every 5 s from each client (Ctrl-C to stop)"
while :; do
	for client in "$(pod_name shop storefront)" "$(pod_name frontend web)"; do
		echo "--- from $client"
		"$BUILD/lab" exec "$client" -- "$PWD/$BUILD/echo" client "http://$vip/" \
			--count=100 --new-conn || echo "run: requests from $client failed"
	done
	sleep 5
done
