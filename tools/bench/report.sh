#!/usr/bin/env bash
# report.sh RAW.csv OUT_STEM MACHINE REPS QUICK HAVE_IPVS
# RAW: rep,mode,metric,value. Writes OUT_STEM.csv (per mode and metric:
# n, median, min, max, ratio of medians to direct), OUT_STEM.md (tables and
# the targets) and OUT_STEM.png (gnuplot).
set -euo pipefail
raw=$1 stem=$2 machine=$3 reps=$4 quick=$5 have_ipvs=$6

# ---- summary CSV -----------------------------------------------------------------
awk -F, 'NR > 1 && $4 != "" {
	key = $2 SUBSEP $3
	if (!(key in n)) { order[++nk] = key }
	v[key, ++n[key]] = $4
	if (!($2 in seen)) { seen[$2] = 1; modes[++nm] = $2 }
}
function median(key, k, i, j, t, a) {
	k = n[key]
	for (i = 1; i <= k; i++) a[i] = v[key, i] + 0
	for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	lo[key] = a[1]; hi[key] = a[k]
	return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	print "mode,metric,n,median,min,max,ratio_to_direct"
	for (i = 1; i <= nk; i++) med[order[i]] = median(order[i])
	for (i = 1; i <= nk; i++) {
		split(order[i], p, SUBSEP)
		d = ("direct" SUBSEP p[2])
		r = (d in med && med[d] > 0) ? sprintf("%.3f", med[order[i]] / med[d]) : ""
		printf "%s,%s,%d,%.2f,%.2f,%.2f,%s\n", p[1], p[2], n[order[i]], med[order[i]], lo[order[i]], hi[order[i]], r
	}
}' "$raw" > "$stem.csv"

# ---- Markdown ------------------------------------------------------------------
have_tc=0
[ -f bpf/tc.bpf.c ] && have_tc=1
awk -F, -v machine="$machine" -v reps="$reps" -v quick="$quick" -v ipvs="$have_ipvs" -v tc="$have_tc" '
NR == 1 { next }
{
	m = $1; k = $2
	if (!(m in seen)) { seen[m] = 1; modes[++nm] = m }
	med[m, k] = $4; lo[m, k] = $5; hi[m, k] = $6; rat[m, k] = $7; has[m, k] = 1
}
function cell(m, k, fmt) {
	if (!has[m, k]) return "-"
	return sprintf(fmt " (" fmt "-" fmt ")", med[m, k], lo[m, k], hi[m, k])
}
function ratio(m, k) { return has[m, k] && rat[m, k] != "" ? sprintf("%.2fx", rat[m, k]) : "-" }
function name(m, s) {
	s = m
	if (m == "direct") return "direct to the pod IP | -"
	if (m == "direct-remote") return "direct to a pod on the remote node | -"
	if (m == "gammad-ct-remote") return "gammad connect-time -> remote node pod | 10"
	if (m ~ /^gammad-ct-/) { sub(/^gammad-ct-/, "", s); return "gammad connect-time" svcs(s) }
	if (m ~ /^gammad-aff-/) { sub(/^gammad-aff-/, "", s); return "gammad connect-time, sessionAffinity ClientIP" svcs(s) }
	if (m ~ /^gammad-sk-/) { sub(/^gammad-sk-/, "", s); return "gammad connect-time + socket redirect" svcs(s) }
	if (m ~ /^gammad-tc-/) { sub(/^gammad-tc-/, "", s); return "gammad TC path only (per-packet DNAT, redirect_peer)" svcs(s) }
	if (m ~ /^iptables-/) { sub(/^iptables-/, "", s); return "kube-proxy iptables DNAT" svcs(s) }
	if (m ~ /^ipvs-/) { sub(/^ipvs-/, "", s); return "IPVS (ipvsadm, NAT)" svcs(s) }
	if (m == "haproxy-tcp") return "haproxy per node, L4 (mode tcp) | -"
	if (m == "haproxy-http") return "haproxy per node, L7 (mode http) | -"
	if (m == "gammad-http") return "gammad HTTP engine (HTTPRoute, per request) | 10"
	if (m == "gammad-khttp") return "gammad kernel HTTP path (--kernel-http, per request) | 10"
	if (m == "gammad-khttp-sk") return "gammad kernel HTTP path, same-node server sockets (--kernel-http --sockmap) | 10"
	if (m == "gammad-khttp-remote") return "gammad kernel HTTP path -> remote node pod | 10"
	return m " | -"
}
function svcs(s, be) {
	be = (s ~ /-2be$/) ? ", 2 backends" : (s ~ /-10be$/) ? ", 10 backends" : ""
	sub(/-[0-9]+be$/, "", s)
	return be " | " s
}
function pick(m, k) { return has[m, k] ? med[m, k] : -1 }
function verdict(ok) { return ok ? "met" : "**missed**" }
END {
	printf "# gammad benchmark\n\n"
	printf "Machine: %s. %s run, %d interleaved repetitions per mode; every cell is the median (min-max) of the repetitions, ratios are of medians to `direct` in the same run.\n\n", machine, quick ? "Quick (`--quick`)" : "Full", reps
	printf "Workload: HTTP/1.1 with 64-byte requests and 64-byte responses (`build/bench serve`): ping-pong latency over one keep-alive connection (20,000 round trips; 10,000 with `--quick`), new connections/s (connect, 1 request, close, one at a time), wrk -t1 -c16 keep-alive req/s, iperf3 single stream (not in `--quick`). Every Service row reaches one backend, b0, the same server `direct` talks to, unless it says 2 or 10 backends (then spread over that many pods on the same node; iperf3 always uses the 1-backend Service). CPU/request: user+sys of client, servers and proxy (getrusage, /proc/PID/stat); softirq time outside those processes is not counted. Proxy CPU/request: utime+stime of the proxy process alone (haproxy, or the gammad agent holding the HTTP engine) over the wrk run, per request wrk counted. The HTTP engine row: `gammad run --http-engine` with an HTTPRoute on its Service, pinned to the same CPUs as the pods and haproxy; haproxy runs `nbthread 1` like the one event-loop thread of the engine.\n\n"
	print "| mode | Services | p50 us | p99 us | p50 x direct | new conn/s | x direct | wrk req/s | x direct | iperf3 Gbit/s | x direct | CPU us/req | CPU us/conn | proxy CPU us/req |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nm; i++) {
		m = modes[i]
		if (m ~ /^(control|cp)-/) continue
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name(m),
			cell(m, "p50_us", "%.1f"), cell(m, "p99_us", "%.1f"), ratio(m, "p50_us"),
			cell(m, "cps", "%.0f"), ratio(m, "cps"), cell(m, "wrk_rps", "%.0f"), ratio(m, "wrk_rps"),
			cell(m, "gbps", "%.2f"), ratio(m, "gbps"), cell(m, "cpu_us", "%.1f"), cell(m, "cpu_conn_us", "%.1f"),
			cell(m, "proxy_cpu_us", "%.1f")
		if (m == "gammad-sk-10" && !has["gammad-tc-10", "p50_us"])
			print "| gammad TC path (per-packet DNAT) | - | " (tc ? "not in this run" : "not built yet") " | | | | | | | | | | | |"
	}
	if (!ipvs)
		print "| IPVS (ipvsadm, NAT) | 10 / 1,000 / 10,000 | n/a: this kernel is built without CONFIG_IP_VS | | | | | | | | | | | |"
	print ""
	print "## Control plane"
	print ""
	print "| measurement | median (min-max) |"
	print "|---|---|"
	for (i = 1; i <= nm; i++) {
		m = modes[i]
		if (m ~ /^control-/) {
			s = m; sub(/^control-/, "", s)
			printf "| manifest change -> kernel serving it, %s Services (`gammad run` watching, inotify) | %s ms |\n", s, cell(m, "change_ms", "%.1f")
		}
		if (m ~ /^cpk-/) {
			split(m, p, "-")
			sz = sprintf("%s Services / %s routes / %s endpoints", p[3], p[4], p[5])
			k = p[2] == "on" ? "with --kernel-http" : "without --kernel-http"
			printf "| running agent (`gammad run`) %s, %s: first apply into an empty pin dir (logged apply; to \"applied\") | %s ms; %s ms |\n", k, sz, cell(m, "first_apply_ms", "%.0f"), cell(m, "first_applied_ms", "%.0f")
			printf "| same, the weight of one route changed (file renamed) -> \"applied\" (logged apply; logged total; wall) | %s ms; %s ms; %s ms |\n", cell(m, "change_apply_ms", "%.1f"), cell(m, "change_applied_ms", "%.0f"), cell(m, "change_wall_ms", "%.0f")
		}
		if (m ~ /^cp-/) {
			split(m, p, "-")
			sz = sprintf("%s Services / %s routes / %s endpoints", p[2], p[3], p[4])
			printf "| cold start: `gammad run --once`, %s, empty pin dir, no snapshot (load BPF, parse, translate, apply) | %s ms, peak RSS %.1f MiB |\n", sz, cell(m, "cold_ms", "%.0f"), med[m, "cold_rss_mb"]
			printf "| restart with nothing to change: `gammad run --once` again (image snapshot, pinned maps adopted, nothing to write) | %s ms, peak RSS %.1f MiB |\n", cell(m, "warm_ms", "%.0f"), med[m, "warm_rss_mb"]
			if (has[m, "run_adopt_ms"]) {
				printf "| restart with nothing to change: the running agent (`gammad run`, HTTP engine on), exec -> \"adopted and serving\" (snapshot checked against the pinned maps) | %s ms |\n", cell(m, "run_adopt_ms", "%.0f")
				printf "| same, exec -> HTTP engine listening (model, translation, engine tables, pipeline built) | %s ms |\n", cell(m, "run_ready_ms", "%.0f")
			}
			printf "| `gammad translate --bench` parse+translate+image only, %s | %.0f ms |\n", sz, med[m, "translate_only_ms"]
			cpm = m
		}
	}
	print ""
	print "## Targets"
	print ""
	print "| target | measured | verdict |"
	print "|---|---|---|"
	d50 = pick("direct", "p50_us"); c50 = pick("gammad-ct-10", "p50_us")
	dw = pick("direct", "wrk_rps"); cw = pick("gammad-ct-10", "wrk_rps")
	if (d50 > 0 && c50 > 0 && dw > 0 && cw > 0) {
		r1 = d50 / c50; r2 = cw / dw
		printf "| connect-time routing >= 0.97x direct (latency, req/s) | latency %.3fx (direct p50 / gammad p50), wrk req/s %.3fx | %s |\n", r1, r2, verdict(r1 >= 0.97 && r2 >= 0.97)
	}
	s50 = pick("gammad-sk-10", "p50_us")
	if (d50 > 0 && s50 > 0)
		printf "| same-node redirect p50 <= 0.6x direct | %.2fx (%.1f vs %.1f us) | %s |\n", s50 / d50, s50, d50, verdict(s50 / d50 <= 0.6)
	g = pick("gammad-ct-10000", "cps"); t = pick("iptables-10000", "cps")
	if (g > 0 && t > 0)
		printf "| 10k Services: gammad new conn/s >= 1.5x iptables | %.2fx (%.0f vs %.0f /s) | %s |\n", g / t, g, t, verdict(g / t >= 1.5)
	g = pick("gammad-ct-10000-10be", "cps"); t = pick("iptables-10000-10be", "cps")
	if (g > 0 && t > 0)
		printf "| same, Service with 10 backends | %.2fx (%.0f vs %.0f /s) | %s |\n", g / t, g, t, verdict(g / t >= 1.5)
	a = pick("gammad-ct-10", "cps"); b = pick("gammad-ct-10000", "cps")
	a2 = pick("gammad-ct-10", "p50_us"); b2 = pick("gammad-ct-10000", "p50_us")
	if (a > 0 && b > 0 && a2 > 0 && b2 > 0)
		printf "| gammad flat from 10 to 10k Services (within 5%%) | new conn/s %+.1f%%, p50 %+.1f%% | %s |\n", (b / a - 1) * 100, (b2 / a2 - 1) * 100, verdict((b / a - 1) ^ 2 <= 0.0025 && (b2 / a2 - 1) ^ 2 <= 0.0025)
	# session affinity on against off, at the largest scale measured
	for (k = 0; k < 2; k++) {
		sfx = k ? "-10be" : ""
		a = pick("gammad-aff-10000" sfx, "cps"); b = pick("gammad-ct-10000" sfx, "cps"); sc = "10k"
		if (!(a > 0 && b > 0)) { a = pick("gammad-aff-1000" sfx, "cps"); b = pick("gammad-ct-1000" sfx, "cps"); sc = "1,000 (quick)" }
		if (a > 0 && b > 0)
			printf "| session affinity on >= 0.9x off (new conn/s, %s Services%s) | %.2fx (%.0f vs %.0f /s) | %s |\n", sc, k ? ", 10 backends" : "", a / b, a, b, verdict(a / b >= 0.9)
	}
	# issue 12: the engine against haproxy mode http, same CPUs, same thread count
	e50 = pick("gammad-http", "p50_us"); h50 = pick("haproxy-http", "p50_us")
	ew = pick("gammad-http", "wrk_rps"); hw = pick("haproxy-http", "wrk_rps")
	if (e50 > 0 && h50 > 0 && ew > 0 && hw > 0)
		printf "| HTTP engine p50 and wrk req/s at least haproxy mode http | p50 %.2fx (%.1f vs %.1f us; haproxy / engine), req/s %.2fx (%.0f vs %.0f) | %s |\n", h50 / e50, e50, h50, ew / hw, ew, hw, verdict(e50 <= h50 && ew >= hw)
	# issue 13: the kernel HTTP path against direct TCP to the pod and haproxy mode http
	# (and with --sockmap: same-node server sockets, gammad-khttp-sk)
	d50 = pick("direct", "p50_us"); dw = pick("direct", "wrk_rps"); dc = pick("direct", "cps")
	split("gammad-khttp gammad-khttp-sk", km, " ")
	for (i = 1; i <= 2; i++) {
		kt = km[i] == "gammad-khttp" ? "kernel HTTP" : "kernel HTTP --sockmap"
		k50 = pick(km[i], "p50_us"); kw = pick(km[i], "wrk_rps"); kc = pick(km[i], "cps")
		if (k50 > 0 && d50 > 0)
			printf "| %s same-node keep-alive p50 <= 0.8x direct | %.2fx (%.1f vs %.1f us) | %s |\n", kt, k50 / d50, k50, d50, verdict(k50 <= 0.8 * d50)
		if (kw > 0 && dw > 0 && hw > 0)
			printf "| %s wrk req/s >= 1.2x direct and >= 2.5x haproxy http | %.2fx direct, %.2fx haproxy (%.0f vs %.0f, %.0f) | %s |\n", kt, kw / dw, kw / hw, kw, dw, hw, verdict(kw >= 1.2 * dw && kw >= 2.5 * hw)
		if (kc > 0 && dc > 0)
			printf "| %s new conn/s >= 0.8x direct | %.2fx (%.0f vs %.0f /s) | %s |\n", kt, kc / dc, kc, dc, verdict(kc >= 0.8 * dc)
	}
	kr = pick("gammad-khttp-remote", "p50_us"); dr = pick("direct-remote", "p50_us")
	if (kr > 0 && dr > 0)
		printf "| kernel HTTP remote-node p50 <= 1.15x direct (to the remote pod) | %.2fx (%.1f vs %.1f us) | %s |\n", kr / dr, kr, dr, verdict(kr <= 1.15 * dr)
	c = pick("control-10", "change_ms")
	if (c > 0)
		printf "| change-to-served < 50 ms | %.1f ms (10 Services) | %s |\n", c, verdict(c < 50)
	if (cpm != "" && has[cpm, "cold_ms"]) {
		split(cpm, p, "-")
		printf "| translate+apply 10k/10k/100k < 1 s | %.0f ms cold, %.0f ms re-apply (measured at %s/%s/%s) | %s |\n", med[cpm, "cold_ms"], med[cpm, "warm_ms"], p[2], p[3], p[4], (p[2] == 10000 && p[4] == 100000) ? verdict(med[cpm, "cold_ms"] < 1000) : "quick run: not the target size"
		printf "| restart with nothing to change 10k/10k/100k < 300 ms | %.0f ms (measured at %s/%s/%s) | %s |\n", med[cpm, "warm_ms"], p[2], p[3], p[4], (p[2] == 10000 && p[4] == 100000) ? verdict(med[cpm, "warm_ms"] < 300) : "quick run: not the target size"
		if (has[cpm, "run_adopt_ms"])
			printf "| running agent restart adopting with nothing to change 10k/10k/100k < 300 ms | %.0f ms to \"adopted and serving\", engine listening at %.0f ms (measured at %s/%s/%s) | %s |\n", med[cpm, "run_adopt_ms"], med[cpm, "run_ready_ms"], p[2], p[3], p[4], (p[2] == 10000 && p[4] == 100000) ? verdict(med[cpm, "run_adopt_ms"] < 300) : "quick run: not the target size"
	}
	print ""
	print "![latency and throughput per mode](" chart ")"
}' chart="$(basename "$stem").png" "$stem.csv" > "$stem.md"

# ---- chart ---------------------------------------------------------------------
dat=$stem.dat
awk -F, 'NR > 1 && $1 !~ /^(control|cp)-/ {
	if (!($1 in seen)) { seen[$1] = 1; modes[++nm] = $1 }
	med[$1, $2] = $4; lo[$1, $2] = $5; hi[$1, $2] = $6
}
function f(m, k) { return (m SUBSEP k) in med ? sprintf("%s %s %s", med[m, k], lo[m, k], hi[m, k]) : "0 0 0" }
function g(m, k, d) { return (m SUBSEP k) in med ? sprintf("%s %s %s", med[m, k] / d, lo[m, k] / d, hi[m, k] / d) : "0 0 0" }
END {
	for (i = 1; i <= nm; i++)
		printf "\"%s\" %s %s %s %s %s\n", modes[i], f(modes[i], "p50_us"), f(modes[i], "p99_us"),
			g(modes[i], "cps", 1000), g(modes[i], "wrk_rps", 1000), f(modes[i], "gbps")
}' "$stem.csv" > "$dat"
gnuplot <<EOF || echo "report: gnuplot failed" >&2
set terminal pngcairo size 1400,1100 noenhanced font ",10"
set output "$stem.png"
set multiplot layout 3,1 title "gammad benchmark: median of interleaved repetitions, bars min-max"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set xtics rotate by -25 scale 0
set grid ytics
set key top left
set yrange [0:*]
set ylabel "us"
set title "request/response latency (64 B, keep-alive)"
plot "$dat" using 2:3:4:xtic(1) title "p50", "" using 5:6:7 title "p99"
set ylabel "thousands/s"
set title "new connections/s (connect, 1 request, close) and wrk keep-alive req/s"
plot "$dat" using 8:9:10:xtic(1) title "new conn/s", "" using 11:12:13 title "wrk req/s"
set ylabel "Gbit/s"
set title "bulk throughput (iperf3, 1 stream)"
plot "$dat" using 14:15:16:xtic(1) title "iperf3"
unset multiplot
EOF
rm -f "$dat"
