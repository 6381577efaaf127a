// SPDX-License-Identifier: Apache-2.0
/*
 * gammad run --manifests DIR | --kubeconfig PATH | --in-cluster [--cgroup PATH] [--pin-dir PATH] [--node-name NAME] [--zone ZONE]
 *            [--resync SECONDS] [--map-size NAME=ENTRIES]... [--no-sockmap]
 *            [--once] [-v] [--metrics-addr IP:PORT|off] [--uplink IFACE]... [--no-tc]
 *            [--hairpin-addr IP]... [--engine-port PORT] [--handover-wait]
 *            [--engine-threads N] [--no-http-engine] [--reset-removed-tcp]
 *            [--sockmap [--sockmap-cap BYTES]] [--kernel-http [--kernel-http-idle SECONDS]
 *            [--kernel-http-ahead POOLS]]
 *
 * The agent: load the manifests in DIR, translate, build the map image and
 * reconcile the (pinned) data-path maps with it (image_apply.h); map pod
 * cgroups under --cgroup to their namespace ids and register this node's
 * pod IPs as local endpoints. With --once, exit leaving everything pinned.
 * Otherwise watch DIR with inotify and reconcile on every change, and every
 * --resync seconds with the last image (pods started since get their class).
 * With --kubeconfig or --in-cluster the objects come from the API server
 * instead (agent_kube.h) and route statuses are written to the routes.
 * The TC path (tc_attach.h) is attached to the host side of every local
 * pod's veth, found from the host routes and followed through rtnetlink,
 * and to every --uplink. Every translation writes the route conditions to
 * DIR/.gammad-status.json
 * (status_file.h); while running, /metrics, /healthz and /readyz are served
 * on --metrics-addr (metrics_http.h). The HTTP engine (agent_engine_start)
 * runs unless --no-http-engine, --once or --no-sockmap keep every port at L4.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "datapath/cgroup.h"
#include "datapath/datapath.h"
#include "datapath/netmon.h"
#include "engine/engine.h"
#include "image/image.h"
#include "image/image_apply.h"
#include "input/dirwatch.h"
#include "agent.h"
#include "agent_khttp.h"
#include "agent_snap.h"
#include "agent_kube.h"
#include "cmd.h"
#include "handover.h"
#include "metrics_http.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

#define RESYNC_DEFAULT_S 10

/* --sockmap-cap: bytes, with an optional K or M (binary) suffix. */
static int parse_cap(const char *arg, uint32_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (end == arg || errno || arg[0] == '-')
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (*end || v < (64u << 10) || v > (1024u << 20))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}
#define METRICS_ADDR_DEFAULT "127.0.0.1:9464"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gammad run --manifests DIR [--cgroup PATH] [--pin-dir PATH]\n"
		"                  [--node-name NAME] [--zone ZONE] [--resync SECONDS]\n"
		"                  [--map-size NAME=ENTRIES]... [--no-sockmap] [--once] [-v]\n"
		"                  [--metrics-addr IP:PORT|off] [--uplink IFACE]... [--no-tc]\n"
		"                  [--hairpin-addr IP]... [--engine-port PORT] [--handover-wait]\n"
		"                  [--engine-threads N] [--no-http-engine] [--reset-removed-tcp]\n"
		"                  [--kernel-http [--kernel-http-idle SECONDS]\n"
		"                  [--kernel-http-ahead POOLS]]\n"
		"                  [--sockmap [--sockmap-cap BYTES]]\n"
		"                  [--state-dir DIR]\n"
		"       gammad run --kubeconfig PATH | --in-cluster [--kube-context NAME]\n"
		"                  [--lease-namespace NS] [--lease-duration SECONDS]\n"
		"                  [--watch-timeout SECONDS] [--all-pods] [--no-status]\n"
		"                  [--no-watch-list] [the options above but --manifests]\n"
		"\n"
		"Translate the manifests in DIR and reconcile the data-path maps pinned\n"
		"under --pin-dir (default " DP_PIN_DIR_DEFAULT ") with the result, with the\n"
		"hooks attached to --cgroup (default: the cgroup2 mount root), whose pod\n"
		"cgroups are mapped to their namespaces. --node-name: only pods with this\n"
		"spec.nodeName are local (same-node redirect, internalTrafficPolicy Local,\n"
		"PreferSameNode); default: every pod. --zone: this node's\n"
		"topology.kubernetes.io/zone, for trafficDistribution (PreferClose,\n"
		"PreferSameZone); default: none.\n"
		"--once: apply, exit 0, keep everything pinned. Otherwise apply every\n"
		"change of DIR (inotify) and resync every --resync seconds (default %d).\n"
		"--once keeps the image it applied in --state-dir (default " AGENT_STATE_DIR ",\n"
		"one file per pin dir): the next --once with the same manifests (path, inode,\n"
		"mtime, size, content), options and gammad skips parsing and translating;\n"
		"the apply still compares every entry with the kernel. The running agent\n"
		"keeps it too, and its restart serves that image (\"adopted and serving\")\n"
		"before it parses and translates.\n"
		"--sockmap: the same-node socket redirect (off by default): connections\n"
		"between two pods of this node go socket to socket (sockhash, sk_msg)\n"
		"instead of TCP over the veths, and so do the HTTP engine's connections\n"
		"(a pod's to the agent's loopback listener, the agent's to the backend pod)\n"
		"when the agent runs under --cgroup (not with --kernel-http). WARNING: such\n"
		"a socket does not behave as TCP to its application (kernel tcp_bpf): a\n"
		"blocking read() can fail with EAGAIN (after a signal, after its own\n"
		"shutdown(SHUT_WR)), MSG_WAITALL and SO_RCVLOWAT return short reads,\n"
		"splice() from it misses data, and close() with unread data sends FIN,\n"
		"not RST. Only for applications known to cope\n"
		"(non-blocking I/O with EAGAIN retries, no splice, no MSG_WAITALL).\n"
		"--sockmap-cap: bytes a redirected socket may find unread at its peer\n"
		"before it moves to TCP for good (default 4M; K and M suffixes, 64K to\n"
		"1024M): the kernel does not bound the peer's queue, TCP's flow control does.\n"
		"--no-sockmap: no sockops and sk_msg programs at all (hence no HTTP engine).\n"
		"--map-size: entries of a map (frontends, consumers, cgroups, selectors,\n"
		"alias-slots, backends, endpoints, local-endpoints, svc-ports, routes,\n"
		"revnat, sockets, objects, conntrack, pods, affinity,\n"
		"origdst); a pinned map of another size is replaced by\n"
		"one of the new size holding the same entries. endpoints-per-service: endpoints\n"
		"one Service port uses at most (default %d; more are a warning, the first\n"
		"by address are used).\n"
		"An endpoint removed by an apply releases what points at it: connected UDP\n"
		"sockets that connect() sent to it get ECONNABORTED (their next connect picks\n"
		"a live endpoint), the TC path's UDP flows to it are forgotten.\n"
		"--reset-removed-tcp: abort established TCP connections to it too (RST);\n"
		"default: they are left alone, as kube-proxy does.\n"
		"--metrics-addr: serve /metrics, /healthz, /readyz (default %s; \"off\"\n"
		"disables; not served with --once).\n"
		"The TC path translates packets connect() never saw: it is attached to\n"
		"the host side of every local pod's veth (from the host routes, followed\n"
		"as pods come and go) and to every --uplink (traffic from other nodes).\n"
		"--no-tc: connect-time routing only.\n"
		"--hairpin-addr: the source a pod sees when the TC path sends its own\n"
		"connection to a ClusterIP back to itself (one per family; default\n"
		"169.254.7.1 and 100::7:1). Pods must route it to their interface (a\n"
		"default route does); it should lead nowhere else.\n"
		"The HTTP engine (on by default): TCP connections to a Service port whose\n"
		"routes for the client's namespace have HTTP rules go to the agent's HTTP\n"
		"engine, which applies every rule per request, through a listener the agent\n"
		"holds in every managed pod's netns on loopback --engine-port (default %d);\n"
		"getpeername() still shows the ClusterIP. To restart or upgrade, start the\n"
		"new agent (same --pin-dir, --engine-port) while the old one runs: it takes\n"
		"over the listeners and, at their request boundaries, the connections; the\n"
		"old one exits (--handover-wait: it waits for SIGTERM instead, for\n"
		"supervisors that restart what exits).\n"
		"--engine-threads N: the engine's event loops (default: one per CPU the\n"
		"agent may run on); each accepts, proxies and pools upstreams on its own.\n"
		"--no-http-engine: no engine; those ports get the L4 union of their\n"
		"routes' backends (logged once, with the ports). --once and --no-sockmap\n"
		"run no engine either (it lives in the running agent, and its steering\n"
		"needs the sockops program) and do the same. --http-engine: the default,\n"
		"accepted for older command lines.\n"
		"Kubernetes mode: --kubeconfig PATH (its current-context, or --kube-context)\n"
		"or --in-cluster (the pod's service account) instead of --manifests: list and\n"
		"watch Namespaces, Services, EndpointSlices, Pods (with --node-name only this\n"
		"node's, unless --all-pods), HTTPRoutes, GRPCRoutes, TCPRoutes and\n"
		"ReferenceGrants, apply every change, and write route statuses from the one\n"
		"agent holding the Lease gammad-status-writer in --lease-namespace (default:\n"
		"the config's namespace; --lease-duration default 15 s; --no-status: never).\n"
		"--watch-timeout: a watch's timeoutSeconds (default: 300..599 at random).\n"
		"--no-watch-list: paginated lists only (no streaming list).\n"
		"--kernel-http (experimental, off by default; needs the HTTP engine): serve\n"
		"HTTP/1.1 requests in the kernel (issue 13): each class's HTTP rules go into\n"
		"the kernel HTTP tables (gammad_kh*) with every apply, and the data path's\n"
		"programs (bpf/khttp.bpf.c, pinned beside the others) parse, match, edit and\n"
		"forward requests over upstreams the agent keeps connected from each pod's\n"
		"netns; what the kernel cannot do exactly goes to the engine (gammactl stats:\n"
		"kernel HTTP). A kernel without what the path needs (6.18+) is logged once\n"
		"and the engine serves every request. With --sockmap too, an upstream to a\n"
		"pod of this node is paired with that pod's accepted socket: requests go\n"
		"into it and its responses to the client socket to socket, no TCP (the\n"
		"backend's socket then reads as --sockmap's WARNING says); without\n"
		"--sockmap the upstreams carry the bytes over TCP. While the pools a node\n"
		"could need (pod netns x endpoints of kernel-served routes) number at most\n"
		"--kernel-http-ahead (default 64; 0: never), each is made at the apply with 8\n"
		"upstreams, idles down to 1 and stays; beyond that, upstreams are made at a\n"
		"pod's first request to an endpoint (that request is the engine's) and\n"
		"closed when unused for --kernel-http-idle (default 30 s).\n",
		RESYNC_DEFAULT_S, TR_MAX_ENDPOINTS, METRICS_ADDR_DEFAULT,
		GAMMAD_ENGINE_PORT_DEFAULT);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A fingerprint of DIR's tree: names, sizes, mtimes. */
static uint64_t dir_fingerprint(const char *path, int depth)
{
	struct dirent **ents;
	uint64_t h = 0;
	int n;

	if (depth > 16)
		return 0;
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return (uint64_t)-errno;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		struct stat sb;

		if (ents[i]->d_name[0] == '.') {
			free(ents[i]);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
		if (!stat(sub, &sb)) {
			uint64_t v[3] = { (uint64_t)sb.st_size, (uint64_t)sb.st_mtim.tv_sec,
					  (uint64_t)sb.st_mtim.tv_nsec };

			h = hash_bytes(sub, strlen(sub), h);
			h = hash_bytes(v, sizeof(v), h);
			if (S_ISDIR(sb.st_mode))
				h ^= dir_fingerprint(sub, depth + 1) * 31;
		}
		free(ents[i]);
	}
	free(ents);
	return h;
}

/* agent_snap_keep's quiet(): no event of the manifests waits. */
static bool dir_quiet(void *ctx)
{
	struct pollfd p = { .fd = dirwatch_fd(ctx), .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* The snapshot is kept once the manifests were quiet this long after a commit. */
#define SNAP_QUIET_MS 200

/*
 * Poll the manifests (inotify), links and routes (rtnetlink) and the resync
 * timer. w and fp were taken before the first apply, so a change made
 * while it ran is not missed.
 */
static int watch_loop(struct agent *a, struct dirwatch *w, uint64_t fp, int resync_s)
{
	double next_resync = now_ms() + resync_s * 1e3;
	struct pollfd fds[4];
	int ret = 0, nl;

	nl = netmon_open();
	if (nl < 0)
		pr_warn("link and route events: %s (pods are followed every --resync only)",
			strerror(-nl));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fds[0] = (struct pollfd){ .fd = dirwatch_fd(w), .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = nl, .events = POLLIN };
	while (!stop) {
		double left = next_resync - now_ms();
		int n;

		/* a successor agent (handover.h); poll skips -1 */
		fds[2] = (struct pollfd){ .fd = handover_poll_fd(a->ho_next), .events = POLLIN };
		/* the kernel HTTP path's upstream pools (agent_khttp.h) */
		fds[3] = (struct pollfd){ .fd = agent_kh_fd(a), .events = POLLIN };
		n = poll(fds, 4, left <= 0 ? 0 : a->snap_dirty && left > SNAP_QUIET_MS ?
			 SNAP_QUIET_MS : (int)left + 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			pr_err("watch %s: %s", a->dir, strerror(-ret));
			break;
		}
		if (!n && a->snap_dirty)	/* quiet since the last commit */
			agent_snap_keep(a, dir_quiet, w);
		if (fds[3].revents)
			agent_kh_run(a);
		if (fds[2].revents &&
		    handover_serve(a->ho_next, a->steer, a->engine_port) == 1) {
			a->handed_over = true;	/* the successor applies from now on */
			break;
		}
		if (fds[0].revents && dirwatch_wait(w, 0) > 0) {
			uint64_t now = dir_fingerprint(a->dir, 0);

			/* Our own status file and editors' dot-files change nothing. */
			if (now != fp) {
				fp = now;
				agent_apply_dir(a);	/* errors logged; keep running */
			}
		}
		if (nl >= 0 && fds[1].revents && netmon_settle(nl) > 0)
			agent_resync(a, false);	/* a pod came or went */
		if (now_ms() >= next_resync) {
			agent_resync(a, true);
			next_resync = now_ms() + resync_s * 1e3;
		}
	}
	if (nl >= 0)
		close(nl);
	/* Leaving (SIGTERM): the snapshot, unless a change is still waiting (its events read here). */
	if (stop && !a->handed_over && a->snap_dirty) {
		while (dirwatch_wait(w, 0) > 0)
			;
		if (dir_fingerprint(a->dir, 0) == fp)
			agent_snap_keep(a, dir_quiet, w);
	}
	return stop || a->handed_over ? 0 : ret;
}

/* A successor took over (either mode): its connections drain from here, then exit or wait. */
static void handed_over(struct agent *a, bool handover_wait)
{
	/*
	 * The successor serves /metrics and /explain on the same address
	 * (SO_REUSEPORT): scrapes landing here would show this agent's
	 * counters and tables, which stopped being the node's.
	 */
	metrics_server_stop(a->metrics);
	a->metrics = NULL;
	handover_drain(a->ho_next, a->steer, a->engine);
	/*
	 * A supervisor that restarts what exits (a DaemonSet's container)
	 * would start this agent again, which would take everything back.
	 */
	if (handover_wait)
		pr_info("handed over: waiting for SIGTERM (--handover-wait)");
	while (handover_wait && !stop)
		poll(NULL, 0, 1000);
}

/* --uplink NAME: the interface must exist at start; it is found by name every pass. */
static int add_uplink(struct agent *a, const char *name)
{
	if (!if_nametoindex(name)) {
		fprintf(stderr, "gammad run: --uplink %s: no such interface\n", name);
		return -ENODEV;
	}
	if (a->nr_uplinks == AGENT_MAX_UPLINKS) {
		fprintf(stderr, "gammad run: --uplink %s: at most %d uplinks\n", name,
			AGENT_MAX_UPLINKS);
		return -E2BIG;
	}
	a->uplinks[a->nr_uplinks++] = name;
	return 0;
}

/* --hairpin-addr IP: one address per family, checked before anything is loaded. */
static int parse_hairpin(const char *s, struct tc_dp_opts *to, struct in_addr *a4,
			 struct in6_addr *a6)
{
	int family = inet_pton(AF_INET, s, a4) == 1 ? AF_INET :
		     inet_pton(AF_INET6, s, a6) == 1 ? AF_INET6 : 0;

	if (!family || !tc_hairpin_addr_ok(family, family == AF_INET ? (void *)a4 : (void *)a6)) {
		fprintf(stderr, "gammad run: --hairpin-addr %s: expected a unicast IPv4 or "
			"IPv6 address (not loopback, unspecified, IPv6 link-local)\n", s);
		return -EINVAL;
	}
	if ((family == AF_INET && to->hairpin4) || (family == AF_INET6 && to->hairpin6)) {
		fprintf(stderr, "gammad run: --hairpin-addr %s: one address per family\n", s);
		return -EINVAL;
	}
	if (family == AF_INET)
		to->hairpin4 = a4;
	else
		to->hairpin6 = a6;
	return 0;
}

static int parse_seconds(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 86400)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifests", required_argument, NULL, 'm' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "zone", required_argument, NULL, 'z' },
		{ "resync", required_argument, NULL, 'r' },
		{ "map-size", required_argument, NULL, 's' },
		{ "once", no_argument, NULL, 'o' },
		{ "no-sockmap", no_argument, NULL, 'S' },
		{ "metrics-addr", required_argument, NULL, 'M' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "no-tc", no_argument, NULL, 'T' },
		{ "hairpin-addr", required_argument, NULL, 'H' },
		{ "reset-removed-tcp", no_argument, NULL, 'R' },
		{ "http-engine", no_argument, NULL, 'E' },
		{ "no-http-engine", no_argument, NULL, 'N' },
		{ "kernel-http", no_argument, NULL, 'K' },
		{ "handover-wait", no_argument, NULL, 'W' },
		{ "engine-port", required_argument, NULL, 'P' },
		{ "engine-threads", required_argument, NULL, 267 },
		{ "kubeconfig", required_argument, NULL, 256 },
		{ "in-cluster", no_argument, NULL, 257 },
		{ "kube-context", required_argument, NULL, 258 },
		{ "lease-namespace", required_argument, NULL, 259 },
		{ "lease-duration", required_argument, NULL, 260 },
		{ "watch-timeout", required_argument, NULL, 261 },
		{ "all-pods", no_argument, NULL, 262 },
		{ "no-status", no_argument, NULL, 263 },
		{ "no-watch-list", no_argument, NULL, 264 },
		{ "sockmap-cap", required_argument, NULL, 265 },
		{ "state-dir", required_argument, NULL, 266 },
		{ "sockmap", no_argument, NULL, 268 },
		{ "kernel-http-idle", required_argument, NULL, 269 },
		{ "kernel-http-ahead", required_argument, NULL, 270 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_dir = DP_PIN_DIR_DEFAULT, *metrics_addr = METRICS_ADDR_DEFAULT;
	const char *state_dir = AGENT_STATE_DIR;
	char snap_path[4200];
	struct agent a = { 0 };
	int resync_s = RESYNC_DEFAULT_S;
	struct dp_opts o = { 0 };
	bool once = false, no_tc = false, http_engine = false, engine_port_set = false;
	bool handover_wait = false, no_http_engine = false;
	int engine_port = GAMMAD_ENGINE_PORT_DEFAULT;
	struct dirwatch w = { .fd = -1 };
	struct tc_dp_opts to = { .pin_dir = pin_dir, .redirect = true };
	struct in_addr hp4;
	struct in6_addr hp6;
	struct agent_kube_opts ko = { 0 };
	struct agent_kube ak;
	bool kube = false, all_pods = false;
	uint64_t fp = 0;
	char cg2[4096], msg[512];
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+m:c:p:n:z:r:s:oM:u:TH:RENKP:Wvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			a.dir = optarg;
			break;
		case 'c':
			a.opts.cgroup_root = optarg;
			break;
		case 'p':
			pin_dir = optarg;
			break;
		case 'n':
			a.opts.node_name = optarg;
			a.tr.node_name = optarg;
			break;
		case 'z':
			a.tr.zone = optarg;
			break;
		case 'r':
			if (parse_seconds(optarg, &resync_s)) {
				fprintf(stderr, "gammad run: --resync %s: expected whole seconds "
					"from 1 to 86400\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (dp_sizes_parse(&o.sizes, optarg, msg, sizeof(msg))) {
				fprintf(stderr, "gammad run: --map-size %s\n", msg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			once = true;
			break;
		case 'S':
			o.no_sockmap = true;
			break;
		case 'M':
			metrics_addr = optarg;
			break;
		case 'u':
			if (add_uplink(&a, optarg))
				return EXIT_USAGE;
			break;
		case 'T':
			no_tc = true;
			break;
		case 'H':
			if (parse_hairpin(optarg, &to, &hp4, &hp6))
				return EXIT_USAGE;
			break;
		case 'R':
			a.reset_removed_tcp = true;
			break;
		case 'E':
			http_engine = true;	/* asked for explicitly: no quiet L4 */
			break;
		case 'N':
			no_http_engine = true;
			break;
		case 'K':
			a.kernel_http = true;
			break;
		case 'W':
			handover_wait = true;
			break;
		case 'P': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (end == optarg || *end || v < 1 || v > 65535) {
				fprintf(stderr, "gammad run: --engine-port %s: expected a port "
					"from 1 to 65535\n", optarg);
				return EXIT_USAGE;
			}
			engine_port = (int)v;
			engine_port_set = true;
			break;
		}
		case 267: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (end == optarg || *end || v < 1 || v > ENGINE_THREADS_MAX) {
				fprintf(stderr, "gammad run: --engine-threads %s: expected 1 to %d\n",
					optarg, ENGINE_THREADS_MAX);
				return EXIT_USAGE;
			}
			a.engine_threads = (unsigned int)v;
			break;
		}
		case 256:
			ko.kubeconfig = optarg;
			kube = true;
			break;
		case 257:
			kube = true;
			break;
		case 258:
			ko.context = optarg;
			break;
		case 259:
			ko.lease_namespace = optarg;
			break;
		case 260:
		case 261:
			if (parse_seconds(optarg, opt == 260 ? &ko.lease_duration_s :
						   &ko.watch_timeout_s) ||
			    (opt == 260 && ko.lease_duration_s < 3)) {
				fprintf(stderr, "gammad run: --%s %s: expected whole seconds "
					"from %d to 86400\n", opt == 260 ? "lease-duration" :
					"watch-timeout", optarg, opt == 260 ? 3 : 1);
				return EXIT_USAGE;
			}
			break;
		case 262:
			all_pods = true;
			break;
		case 263:
			ko.no_status = true;
			break;
		case 264:
			ko.no_watch_list = true;
			break;
		case 265:
			if (parse_cap(optarg, &o.sockmap_cap)) {
				fprintf(stderr, "gammad run: --sockmap-cap %s: expected bytes from "
					"64K to 1024M (K and M suffixes)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 266:
			state_dir = optarg;
			break;
		case 268:
			o.sock_redirect = true;
			break;
		case 269: {
			char *end;
			double v = strtod(optarg, &end);

			if (*end || !(v >= 0.05 && v <= 86400)) {
				fprintf(stderr, "gammad run: --kernel-http-idle %s: expected seconds "
					"from 0.05 to 86400\n", optarg);
				return EXIT_USAGE;
			}
			a.kh_idle_ms = (unsigned int)(v * 1000);
			break;
		}
		case 270: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			/* each pool starts with 8 of the GAMMAD_KH_SLOTS_MAX upstream slots */
			if (*end || !*optarg || v > GAMMAD_KH_SLOTS_MAX / 8) {
				fprintf(stderr, "gammad run: --kernel-http-ahead %s: expected pools "
					"from 0 to %d\n", optarg, GAMMAD_KH_SLOTS_MAX / 8);
				return EXIT_USAGE;
			}
			a.kh_ahead = (unsigned int)v;
			a.kh_ahead_set = true;
			break;
		}
		case 'v':
			log_threshold = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!a.dir == !kube || optind != argc) {
		if (a.dir && kube)
			fprintf(stderr, "gammad run: --manifests or the API server "
				"(--kubeconfig, --in-cluster), not both\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (kube) {
		/* Pods are a node's own unless asked for all (what that costs: agent_kube.h). */
		ko.node_name = all_pods ? NULL : a.opts.node_name;
		a.dir = ko.kubeconfig ? ko.kubeconfig : "in-cluster";
	}
	/* Before anything is loaded or attached: a typo must not leave hooks behind. */
	if (no_tc && a.nr_uplinks) {
		fprintf(stderr, "gammad run: --uplink needs the TC path (drop --no-tc)\n");
		return EXIT_USAGE;
	}
	if (no_tc && (to.hairpin4 || to.hairpin6)) {
		fprintf(stderr, "gammad run: --hairpin-addr needs the TC path (drop --no-tc)\n");
		return EXIT_USAGE;
	}
	if (http_engine && no_http_engine) {
		fprintf(stderr, "gammad run: --http-engine and --no-http-engine: pick one\n");
		return EXIT_USAGE;
	}
	if ((engine_port_set || handover_wait || a.engine_threads) &&
	    (no_http_engine || once || o.no_sockmap)) {
		fprintf(stderr, "gammad run: --%s needs the HTTP engine (drop --%s)\n",
			engine_port_set ? "engine-port" : handover_wait ? "handover-wait" :
			"engine-threads",
			no_http_engine ? "no-http-engine" : once ? "once" : "no-sockmap");
		return EXIT_USAGE;
	}
	if (o.sock_redirect && o.no_sockmap) {
		fprintf(stderr, "gammad run: --sockmap and --no-sockmap: pick one\n");
		return EXIT_USAGE;
	}
	if (o.sockmap_cap && !o.sock_redirect) {
		fprintf(stderr, "gammad run: --sockmap-cap needs the socket redirect "
			"(--sockmap)\n");
		return EXIT_USAGE;
	}
	if (http_engine && o.no_sockmap) {
		fprintf(stderr, "gammad run: --http-engine needs the sockops program, which "
			"records each steered connection's origin (drop --no-sockmap)\n");
		return EXIT_USAGE;
	}
	if (http_engine && once) {
		fprintf(stderr, "gammad run: --http-engine needs a running agent (drop --once): "
			"its listeners live in the agent\n");
		return EXIT_USAGE;
	}
	/*
	 * The default. --once cannot hold listeners and --no-sockmap loses the
	 * origin records: both apply HTTP ports at L4 and say so (agent.c).
	 */
	http_engine = !no_http_engine && !once && !o.no_sockmap;
	if (!http_engine)
		a.l4_http_why = no_http_engine ? "--no-http-engine" : once ? "--once" :
				"--no-sockmap";
	if (!kube && access(a.dir, R_OK)) {
		fprintf(stderr, "gammad run: --manifests %s: %s\n", a.dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (!a.opts.cgroup_root) {
		ret = cgroup2_mount_path(cg2, sizeof(cg2));
		if (ret) {
			pr_err("cgroup2 mount: %s", strerror(-ret));
			return EXIT_FATAL;
		}
		a.opts.cgroup_root = cg2;
	}
	/*
	 * The hooks attach to cgroup v2 only; a v1 or tmpfs path would fail
	 * later with an errno that names nothing (EOVERFLOW from its id).
	 */
	ret = cgroup2_dir_check(a.opts.cgroup_root);
	if (ret) {
		fprintf(stderr, "gammad run: --cgroup %s: %s\n", a.opts.cgroup_root,
			ret == -ENOTDIR ? "not a directory of the cgroup v2 mount "
					  "(see `mount -t cgroup2`)" : strerror(-ret));
		return EXIT_USAGE;
	}
	/*
	 * Before anything is loaded: an agent running on this pin dir hands
	 * its engine's sockets over (handover.h), or we must not run beside it.
	 */
	if (!once && strcmp(metrics_addr, "off") && metrics_addr_check(metrics_addr))
		return EXIT_FATAL;	/* before a running agent is asked */
	if (!once) {
		ret = handover_take(pin_dir, http_engine ? (uint16_t)engine_port : 0,
				    http_engine && a.kernel_http, &a.ho_prev);
		if (ret == -EBUSY)
			pr_err("an agent runs on pin dir %s: stop it first (a restart beside the "
			       "running agent hands over only with the HTTP engine on both)", pin_dir);
		if (ret && ret != -ENOENT)
			return EXIT_FATAL;
	}
	a.tr.max_endpoints = o.sizes.endpoints_per_service;
	if (!kube && !agent_snap_path(state_dir, pin_dir, snap_path, sizeof(snap_path)))
		a.snapshot = snap_path;
	/* A one-shot parses and translates while the BPF objects load (agent.h). */
	if (once && !kube)
		agent_prefetch_start(&a);
	/*
	 * The agent watches first (what changes during the first apply is
	 * seen), then scans the manifests while the BPF objects load (agent.h).
	 */
	if (!once && !kube) {
		ret = dirwatch_open(&w, a.dir);
		if (ret)
			return EXIT_FATAL;
		fp = dir_fingerprint(a.dir, 0);
		a.watch = &w;
		a.incremental = true;
		if (agent_adopt_start(&a))	/* else the scan starts once the snapshot is in */
			agent_scan_start(&a);
	}
	o.pin_dir = pin_dir;
	o.cgroup = a.opts.cgroup_root;
	o.engine_port = (uint16_t)engine_port;
	o.tc_follows = !no_tc;	/* a layout upgrade switches the TC links too */
	o.no_engine_redirect = a.kernel_http;	/* its programs own the steered sockets */
	ret = dp_open(&o, &a.dp);
	if (ret) {
		pr_err("data path (pin dir %s, cgroup %s): %s", pin_dir, a.opts.cgroup_root,
		       strerror(-ret));
		agent_free(&a);	/* joins the prefetch */
		dirwatch_close(&w);
		return EXIT_FATAL;
	}
	if (dp_adopted(a.dp))
		pr_info("adopted the data path pinned in %s: reconciling without a flush", pin_dir);
	if (o.sock_redirect)
		pr_warn("same-node socket redirect on (--sockmap): sockets between local pods "
			"read through the kernel's tcp_bpf, not TCP (spurious EAGAIN on blocking "
			"reads, short MSG_WAITALL reads, no splice; see --help)");
	a.pin_dir = pin_dir;
	if (!no_tc) {
		to.pin_dir = pin_dir;
		ret = tc_dp_open(a.dp, &to, &a.tc);
		if (ret) {
			pr_err("TC data path (pin dir %s): %s", pin_dir, strerror(-ret));
			agent_free(&a);	/* joins the prefetch */
			dp_close(a.dp);
			dirwatch_close(&w);
			return EXIT_FATAL;
		}
	}
	if (!once) {
		ret = dp_release_open(a.dp, &a.release);
		if (ret)
			pr_warn("socket iterators (bpf_sock_destroy, kernel 6.5+): %s; sockets of "
				"removed endpoints are not released, only TC flows", strerror(-ret));
	}
	if (!once && strcmp(metrics_addr, "off") &&
	    metrics_server_start(metrics_addr, pin_dir, &a.metrics)) {
		agent_free(&a);
		dp_close(a.dp);
		dirwatch_close(&w);
		return EXIT_FATAL;
	}
	agent_kh_open(&a, http_engine);	/* before the engine: it learns what the kernel serves */
	if (http_engine && agent_engine_start(&a, (uint16_t)engine_port)) {
		metrics_server_stop(a.metrics);
		agent_free(&a);
		dp_close(a.dp);
		dirwatch_close(&w);
		return EXIT_FATAL;
	}
	if (kube) {
		/* Events into image/pipeline.h, as the manifests' changes below. */
		a.incremental = !once;
		ko.slim_store = a.incremental;	/* the pipeline's model holds the objects */
		ret = agent_kube_open(&ak, &ko);
		if (!ret) {
			a.kube = &ak;
			ret = agent_kube_loop(&a, resync_s, once);
			agent_kube_close(&ak);	/* the Lease first: another writer takes over */
			a.kube = NULL;
		}
		if (a.handed_over) {
			signal(SIGINT, on_signal);	/* ours again, for --handover-wait */
			signal(SIGTERM, on_signal);
			handed_over(&a, handover_wait);
		}
		metrics_server_stop(a.metrics);
		agent_free(&a);
		dp_close(a.dp);
		return ret ? EXIT_FATAL : 0;
	}
	/* The manifests through image/pipeline.h; a one-shot gains nothing from its caches. */
	a.incremental = !once;
	/*
	 * A restart serves the snapshot's image, verified, before it builds the
	 * rest (agent.h). A SIGTERM from here on stops the agent after the
	 * first apply, which keeps the snapshot on the way out.
	 */
	if (!once) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		agent_adopt(&a);
	}
	a.opts.full = true;	/* clean what an earlier agent left */
	ret = agent_apply_dir(&a);
	a.opts.full = false;
	if (!ret && http_engine)
		ret = agent_engine_ready(&a);
	if (!ret && !once)
		if (!handover_listen(pin_dir, &a.ho_next))	/* failure logged: no handover */
			agent_kh_handover(&a);
	if (!once && !ret)
		ret = watch_loop(&a, &w, fp, resync_s);
	if (a.handed_over)
		handed_over(&a, handover_wait);
	if (!once)
		dirwatch_close(&w);
	metrics_server_stop(a.metrics);
	agent_free(&a);
	dp_close(a.dp);
	return ret ? EXIT_FATAL : 0;
}
