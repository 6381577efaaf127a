#!/usr/bin/env bash
# Install exactly what gammad needs from Debian's registry, mount bpffs and
# find the cgroup v2 mount. Idempotent: a second run only checks.
set -euo pipefail

# Build: compilers and BPF tooling. Run: iproute2 for the lab.
# Fuzz: libFuzzer and the sanitizer runtimes for clang-19.
PACKAGES=(
	clang-19 llvm-19 libclang-rt-19-dev libfuzzer-19-dev
	libbpf-dev bpftool libelf-dev zlib1g-dev libyaml-dev libpcre2-dev libmicrohttpd-dev pkg-config
	libhttp-parser-dev libnghttp2-dev nghttp2-client
	libcurl4-openssl-dev libjansson-dev python3 python3-yaml openssl
	make gcc libc6-dev iproute2 procps
	wrk iperf3 haproxy ipvsadm gnuplot-nox iptables
)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages ${missing[*]}; run 'make deps' as root" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bpffs: gammad pins maps and links under /sys/fs/bpf/gammad.
if ! mount -t bpf | grep -q ' /sys/fs/bpf '; then
	if [ "$(id -u)" -eq 0 ]; then
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf
		echo "deps: mounted bpffs at /sys/fs/bpf"
	else
		echo "deps: bpffs is not mounted at /sys/fs/bpf (needs root)" >&2
	fi
fi

# cgroup v2: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on
# hybrid ones; the programs find it from mountinfo the same way.
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	     if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
if [ -z "$cg2" ]; then
	echo "deps: no cgroup v2 mount found; gammad attaches to a cgroup v2 hierarchy" >&2
	exit 1
fi
echo "deps: ok (cgroup v2 at $cg2)"
