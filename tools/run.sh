#!/usr/bin/env bash
# make run: the bundled example (deploy/examples) in the lab.
#
# Brings up the lab (pods as network namespaces in kubelet-style cgroups,
# each running the echo server), prints what gammad's translation makes of
# the example's routes, then shows live traffic between pods until Ctrl-C,
# which tears everything down.
#
# The agent's run mode (writing the translation into the kernel's maps) is
# the next step of the L4 data-path issue; until it lands, traffic here goes
# to pod IPs, and the route tables are shown as gammad computes them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
EXAMPLES=${EXAMPLES:-deploy/examples}

work=$(mktemp -d /tmp/gammad-run.XXXXXX)
export GAMMAD_LAB_STATE=$work/lab

teardown() {
	trap - EXIT INT TERM
	echo
	echo "run: tearing down the lab"
	"$BUILD/lab" down >/dev/null || echo "run: lab down failed; run '$BUILD/lab down --state $GAMMAD_LAB_STATE'" >&2
	rm -rf "$work"
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "run: bringing up the lab from $EXAMPLES"
"$BUILD/lab" up --out "$work/manifests" "$EXAMPLES"
echo
"$BUILD/lab" pods
echo
echo "run: what gammad makes of the routes (gammad translate):"
"$BUILD/gammad" translate "$work/manifests" || true
echo

# pod_name NS DEPLOYMENT: first pod of that deployment ("NS/NAME").
pod_name() {
	"$BUILD/lab" pods | awk -v p="$1/$2-" 'index($1, p) == 1 { print $1; exit }'
}

client=$(pod_name shop storefront)
targets=$("$BUILD/lab" pods | awk 'index($1, "shop/reviews-") == 1 { print $2 }')
echo "run: $client calls every reviews pod by IP every 3 s (Ctrl-C to stop)"
while :; do
	for ip in $targets; do
		"$BUILD/lab" exec "$client" -- "$PWD/$BUILD/echo" client "http://$ip:8080/reviews" \
			--count=5 --new-conn || echo "run: request to $ip failed"
	done
	sleep 3
done
