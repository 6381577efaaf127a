// SPDX-License-Identifier: Apache-2.0
/*
 * The TC data path end to end through the agent, on the lab. The lab is up
 * with a mesh of its own (below): Service tce/svc, dual-stack, with an HTTP
 * port split 70/30 between the pods of tce-a and tce-b by an HTTPRoute, a
 * TCP line port and a UDP port on both; namespace tce-fe has a consumer
 * route sending its clients to tce-b only. `gammad run --uplink` runs as a
 * daemon with the hooks on the lab's cgroup root and the TC programs on
 * every pod veth and on the uplink.
 *
 * Clients that connect() never sees:
 *  - processes in a pod's netns but in the test's own cgroup (outside
 *    --cgroup), forked into the netns (tests/lib/mesh_client.c);
 *  - a "remote node": netns gtce<pid>-r behind a veth pair whose host end
 *    (gtce<pid>u) is the --uplink, with 10.244.200.2 and fd00:10:244::c8:2
 *    (pod-range subnets of their own, routed by the host to the uplink).
 *
 *   pods (glab-*) ─ host veths ─┐ host: TC on every pod veth + gtce<pid>u
 *   remote 10.244.200.2 ─ gtce<pid>u ┘   ClusterIPs blackholed by the lab
 *
 * Only the TC path can take them to a ClusterIP (the lab blackholes the
 * Service ranges on the host), so every answer is the TC path's work; the
 * per-CPU counters gammad_tcst_v1 say how many packets it translated.
 *
 * Hairpin: a process in tce-a's netns outside --cgroup calls Service
 * tce/hp (80/20 tce-a/tce-b by an HTTPRoute), svc (UDP, 50/50) and svc-a
 * (tce-a only): every connection the TC path sends back to tce-a itself
 * must be answered, from the ClusterIP, while tce-a's server sees the
 * node's hairpin address (the lab routes it, as a default route would).
 *
 * Subtests run in order and share the lab and the agent; the last ones
 * kill and restart the agent, remove and remake veths, and uninstall.
 * Two subtests guard bugs they found: udp_same_port_clusterip_then_pod_*
 * (a stale reverse conntrack entry of a UDP flow to the ClusterIP must not
 * rewrite the replies of a later direct flow from the same port) and
 * uplink_recreated_reattached (--uplink is found by name every pass).
 */
#include <arpa/inet.h>
#include <math.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/tc_maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "lib/netns.h"
#include "test_progs.h"

#define NS		"tce"
#define FE_NS		"tce-fe"
#define VIP4		"10.96.77.10"
#define VIP6		"fd00:10:96::770a"
#define HTTP_PORT	80
#define LINE_PORT	9000
#define UDP_PORT	53
#define HP_VIP4		"10.96.77.13"	/* tce/hp: 80/20 tce-a/tce-b */
#define HP_VIP6		"fd00:10:96::770d"
#define A_VIP4		"10.96.77.11"	/* tce/svc-a: tce-a only */
#define A_VIP6		"fd00:10:96::770b"
#define HAIRPIN4	"169.254.7.1"	/* gammad's default hairpin addresses */
#define HAIRPIN6	"100::7:1"
/* the remote node's subnets: inside the pod ranges, so pods' routes reach them */
#define REMOTE4		"10.244.200.2"
#define REMOTE4_GW	"10.244.200.1"
#define REMOTE4_NET	"10.244.200.0/24"
#define REMOTE6		"fd00:10:244::c8:2"
#define REMOTE6_GW	"fd00:10:244::c8:1"
#define REMOTE6_NET	"fd00:10:244::c8:0/112"

static const char manifests_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: " NS "}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " FE_NS "}\n"
#define BACKEND(v)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: tce-" v ", namespace: " NS "}\n"		\
	"spec:\n  replicas: 1\n"					\
	"  selector:\n    matchLabels: {app: tce, version: " v "}\n"	\
	"  template:\n    metadata:\n      labels: {app: tce, version: " v "}\n" \
	"    spec:\n      containers:\n        - name: echo\n"		\
	"          image: example/echo\n"				\
	"          args: [\"--tcp=9090\"]\n"				\
	"          ports:\n"						\
	"            - {name: http, containerPort: 8080}\n"		\
	"            - {name: line, containerPort: 9090}\n"		\
	"            - {name: dns, containerPort: 5353, protocol: UDP}\n"
	BACKEND("a")
	BACKEND("b")
#define CLIENT(name, ns)						\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: " name ", namespace: " ns "}\n"		\
	"spec:\n  selector:\n    matchLabels: {app: " name "}\n"	\
	"  template:\n    metadata:\n      labels: {app: " name "}\n"	\
	"    spec:\n      containers:\n        - name: c\n"		\
	"          image: example/client\n"				\
	"          ports:\n            - {containerPort: 8080}\n"
	CLIENT("client", NS)
	CLIENT("fe-client", FE_NS)
#define SERVICE(name, sel, ip4, ip6, extra)				\
	"---\napiVersion: v1\nkind: Service\n"				\
	"metadata: {name: " name ", namespace: " NS "}\n"		\
	"spec:\n  selector: " sel "\n"					\
	"  ipFamilyPolicy: RequireDualStack\n"				\
	"  clusterIP: " ip4 "\n  clusterIPs: [" ip4 ", \"" ip6 "\"]\n"	\
	"  ports:\n    - {name: http, port: 80, targetPort: http}\n" extra
#define L4_PORTS							\
		"    - {name: line, port: 9000, targetPort: 9090}\n"		\
		"    - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n"	\
		/* nobody listens on these target ports: RST, ICMP port unreachable */ \
		"    - {name: dead-tcp, port: 9001, targetPort: 9191}\n"		\
		"    - {name: dead-udp, port: 54, targetPort: 5454, protocol: UDP}\n"
	SERVICE("svc", "{app: tce}", VIP4, VIP6, L4_PORTS)
	SERVICE("svc-a", "{app: tce, version: a}", A_VIP4, A_VIP6, L4_PORTS)
	SERVICE("svc-b", "{app: tce, version: b}", "10.96.77.12", "fd00:10:96::770c", "")
	SERVICE("hp", "{app: tce}", HP_VIP4, HP_VIP6, "")
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: hp-split, namespace: " NS "}\n"
	"spec:\n  parentRefs:\n    - {group: \"\", kind: Service, name: hp, port: 80}\n"
	"  rules:\n    - backendRefs:\n"
	"        - {name: svc-a, port: 80, weight: 80}\n"
	"        - {name: svc-b, port: 80, weight: 20}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: split, namespace: " NS "}\n"
	"spec:\n  parentRefs:\n    - {group: \"\", kind: Service, name: svc, port: 80}\n"
	"  rules:\n    - backendRefs:\n"
	"        - {name: svc-a, port: 80, weight: 70}\n"
	"        - {name: svc-b, port: 80, weight: 30}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: canary, namespace: " FE_NS "}\n"
	"spec:\n  parentRefs:\n"
	"    - {group: \"\", kind: Service, name: svc, namespace: " NS ", port: 80}\n"
	"  rules:\n    - backendRefs:\n"
	"        - {name: svc-b, namespace: " NS ", port: 80}\n";

struct tce_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *a, *b, *client, *fe;
	char remote[32];	/* netns of the remote node */
	char uplink[IFNAMSIZ];	/* its veth's host end, the --uplink */
	bool remote_up;
	const char *args[8];	/* gammad run: --uplink IFACE ... */
};

/* ---- counters and pins ------------------------------------------------- */

/* gammad_tcst_v1 summed over CPUs, read from the pin (the agent may be dead). */
static int tc_counters(const char *pin_dir, __u64 out[GAMMAD_TC_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	char path[128];
	__u64 *v;

	memset(out, 0, sizeof(__u64) * GAMMAD_TC_MAX);
	if (ncpu <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, GAMMAD_MAP_TC_STATS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		err = -ENOMEM;
	for (__u32 r = 0; v && r < GAMMAD_TC_MAX; r++) {
		if (bpf_map_lookup_elem(fd, &r, v)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[r] += v[c];
	}
	free(v);
	close(fd);
	return err;
}

static void print_delta(const __u64 *before, const __u64 *after)
{
	for (int r = 0; r < GAMMAD_TC_MAX; r++)
		if (after[r] != before[r])
			test__printf("  tc %-14s +%llu\n", dp_tc_reason_name(r),
				     (unsigned long long)(after[r] - before[r]));
}

#define DELTA(r) ((long long)(after[r] - before[r]))

static bool link_pinned(const char *pin_dir, const char *ifname)
{
	unsigned int idx = if_nametoindex(ifname);
	char path[PATH_MAX];
	struct stat st;

	if (!idx)
		return false;
	snprintf(path, sizeof(path), "%s/link_tc_%u", pin_dir, idx);
	return !stat(path, &st);
}

static bool wait_for_uplink(struct tce_env *e, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 50; t++) {
		if (link_pinned(e->ag.pin_dir, e->uplink))
			return true;
		nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
	}
	return link_pinned(e->ag.pin_dir, e->uplink);
}

/* Every lab pod's veth and the uplink have their TC link, every pod IP is in the pod map. */
static bool tc_ready(struct tce_env *e, bool print)
{
	bool ok = true;

	for (size_t i = 0; i < e->lab.nr_pods; i++)
		if (!link_pinned(e->ag.pin_dir, e->lab.pods[i].veth)) {
			if (print)
				test__printf("no TC link on %s (pod %s)\n", e->lab.pods[i].veth,
					     e->lab.pods[i].name);
			ok = false;
		}
	if (!link_pinned(e->ag.pin_dir, e->uplink)) {
		if (print)
			test__printf("no TC link on the uplink %s\n", e->uplink);
		ok = false;
	}
	if (pinned_entries(e->ag.pin_dir, GAMMAD_MAP_POD) < (long)(2 * e->lab.nr_pods)) {
		if (print)
			test__printf("%s: %ld entries, want %zu (every pod's IPv4 and IPv6)\n",
				     GAMMAD_MAP_POD, pinned_entries(e->ag.pin_dir, GAMMAD_MAP_POD),
				     2 * e->lab.nr_pods);
		ok = false;
	}
	return ok;
}

static int agent_start_tc(struct tce_env *e)
{
	struct timespec ts = { 0, 100 * 1000000L };
	int i = 0, ret;

	e->args[i++] = "--uplink";
	e->args[i++] = e->uplink;
	e->args[i++] = "--metrics-addr";
	e->args[i++] = "off";
	/*
	 * The TC path and the connect-time path it must leave alone, with the
	 * HTTP ports at L4: connect_time_not_translated counts one connection
	 * per request through the pod veths, which the engine's pooled upstream
	 * connections are not (agent_steer covers the engine with TC attached).
	 */
	e->args[i++] = "--no-http-engine";
	e->args[i++] = "-v";
	e->args[i] = NULL;
	e->ag.args = e->args;
	ret = agent_env_start(&e->ag);
	if (ret)
		return ret;
	/* the TC links may come a moment after the first apply */
	for (i = 0; i < 100 && !tc_ready(e, false); i++)
		nanosleep(&ts, NULL);
	return tc_ready(e, true) ? 0 : -ETIMEDOUT;
}

/* ---- the remote node --------------------------------------------------- */

static int remote_link_up(struct tce_env *e);

static int remote_up(struct tce_env *e)
{
	int pid = (int)getpid();

	netns_cleanup_stale("gtce");
	xsnprintf(e->remote, sizeof(e->remote), "gtce%d-r", pid);
	xsnprintf(e->uplink, sizeof(e->uplink), "gtce%du", pid);
	if (netns_add(e->remote))
		return -EIO;
	e->remote_up = true;
	if (sys_run("ip netns exec %s sysctl -qw net.ipv6.conf.all.accept_dad=0 "
		    "net.ipv6.conf.default.accept_dad=0", e->remote))
		return -EIO;
	return remote_link_up(e);
}

/* The uplink veth pair, its addresses and routes on both sides. */
static int remote_link_up(struct tce_env *e)
{
	if (sys_run("ip link add %s type veth peer name eth0 netns %s", e->uplink, e->remote) ||
	    sys_run("sysctl -qw net.ipv6.conf.%s.accept_dad=0", e->uplink) ||
	    /* host end: one address, no prefix route; the subnet's route is added by hand */
	    sys_run("ip addr add " REMOTE4_GW "/32 dev %s", e->uplink) ||
	    sys_run("ip addr add " REMOTE6_GW "/128 dev %s nodad", e->uplink) ||
	    sys_run("ip link set %s up", e->uplink) ||
	    sys_run("ip route add " REMOTE4_NET " dev %s", e->uplink) ||
	    sys_run("ip -6 route add " REMOTE6_NET " dev %s", e->uplink) ||
	    sys_run("ip -n %s addr add " REMOTE4 "/24 dev eth0", e->remote) ||
	    sys_run("ip -n %s addr add " REMOTE6 "/112 dev eth0 nodad", e->remote) ||
	    sys_run("ip -n %s link set eth0 up", e->remote) ||
	    /* another node routes the Service ranges and this node's pod CIDR here */
	    sys_run("ip -n %s route add 10.96.0.0/16 via " REMOTE4_GW, e->remote) ||
	    sys_run("ip -n %s -6 route add fd00:10:96::/112 via " REMOTE6_GW, e->remote) ||
	    sys_run("ip -n %s route add 10.244.0.0/16 via " REMOTE4_GW, e->remote) ||
	    sys_run("ip -n %s -6 route add fd00:10:244::/64 via " REMOTE6_GW, e->remote))
		return -EIO;
	return 0;
}

static void remote_down(struct tce_env *e)
{
	if (!e->remote_up)
		return;
	/* the routes go with the link, the link with its peer's netns; by hand anyway */
	sys_run("ip route del " REMOTE4_NET " dev %s 2>/dev/null", e->uplink);
	sys_run("ip -6 route del " REMOTE6_NET " dev %s 2>/dev/null", e->uplink);
	sys_run("ip link del %s 2>/dev/null", e->uplink);
	netns_del(e->remote);
	e->remote_up = false;
}

/* ---- clients ----------------------------------------------------------- */

/* In netns, in the test's own cgroup: outside --cgroup, connect() translation never sees it. */
static struct mc_place outside(const char *netns)
{
	return (struct mc_place){ .netns = netns, .timeout_ms = 3000 };
}

/*
 * n requests of proto to vip:port from `at`: every one answered by tce-a or
 * tce-b with the ClusterIP as its peer (TCP: getpeername; UDP sendto: the
 * reply's recvfrom source); tce-a's share in *a. False when it broke down.
 */
static bool run_clients(struct tce_env *e, const struct mc_place *at, const char *vip, int port,
			enum mc_proto proto, size_t n, size_t *a, size_t *b)
{
	char peer[80];
	struct mc_loop l;
	size_t got, errors;
	bool ok;

	mc_addr_port(peer, sizeof(peer), vip, port);
	/* a few first: a broken path fails fast rather than n timeouts */
	got = mc_run(&l, at, vip, port, proto, n < 5 ? n : 5);
	errors = mc_count_errors(l.res, got);
	mc_loop_free(&l);
	if (!ASSERT_EQ(errors, 0, "first requests answered"))
		return false;
	got = mc_run(&l, at, vip, port, proto, n);
	errors = mc_count_errors(l.res, got);
	*a = mc_count_pod(l.res, got, e->a->name);
	*b = mc_count_pod(l.res, got, e->b->name);
	ok = ASSERT_EQ(got, n, "requests made");
	ok &= ASSERT_EQ(errors, 0, "every request answered");
	ok &= ASSERT_EQ(*a + *b, n, "answered by tce-a or tce-b only");
	ok &= ASSERT_EQ(mc_count_peer(l.res, got, peer), n, "the peer is the ClusterIP");
	test__printf("%s %s x%zu from %s: a=%zu b=%zu errors=%zu\n",
		     proto == MC_HTTP ? "http" : proto == MC_LINE ? "tcp" : "udp", peer, n,
		     at->netns ? at->netns : "host", *a, *b, errors);
	mc_loop_free(&l);
	return ok;
}

/* n requests: pct percent to tce-a, the rest to tce-b, within +-tol percent. */
static void expect_share(struct tce_env *e, const struct mc_place *at, const char *vip,
			 int port, enum mc_proto proto, size_t n, int pct, int tol)
{
	size_t a = 0, b = 0;
	/*
	 * Each flow picks its endpoint at random: the count is binomial. A
	 * bound under 4.5 standard deviations fails a correct data path once in
	 * a few hundred runs (554 of 1,000 at 50 +- 5 was seen), so the bound is
	 * never tighter than that; a wrong weight is still far outside it.
	 */
	double sd = sqrt((double)n * pct / 100.0 * (100 - pct) / 100.0);
	size_t slack = (size_t)((double)n * tol / 100.0);

	if (slack < (size_t)(4.5 * sd + 0.5))
		slack = (size_t)(4.5 * sd + 0.5);
	if (!run_clients(e, at, vip, port, proto, n, &a, &b))
		return;
	test__printf("%s:%d: tce-a %zu of %zu (expected %d%% +- %zu)\n", vip, port, a, n, pct, slack);
	ASSERT_GE(a + slack, n * pct / 100, "tce-a share >= expected - slack");
	ASSERT_LE(a, n * pct / 100 + slack, "tce-a share <= expected + slack");
}

/* n new HTTP connections: 70/30 between tce-a and tce-b within +-tol percent. */
static void expect_split(struct tce_env *e, const struct mc_place *at, const char *vip,
			 size_t n, int tol)
{
	expect_share(e, at, vip, HTTP_PORT, MC_HTTP, n, 70, tol);
}

/* The TCP line port and the UDP port (connected and sendto/recvfrom), both pods seen. */
static void expect_l4(struct tce_env *e, const struct mc_place *at, const char *vip, size_t n)
{
	size_t a = 0, b = 0;

	if (run_clients(e, at, vip, LINE_PORT, MC_LINE, n, &a, &b))
		ASSERT_TRUE(a && b, "TCP line port: both endpoints answer");
	if (run_clients(e, at, vip, UDP_PORT, MC_UDP, n, &a, &b))
		ASSERT_TRUE(a && b, "UDP connected: both endpoints answer");
	if (run_clients(e, at, vip, UDP_PORT, MC_UDP_SENDTO, n, &a, &b))
		ASSERT_TRUE(a && b, "UDP sendto: both endpoints answer");
}

/* ---- subtests ---------------------------------------------------------- */

static bool self_under(const char *cg)
{
	char line[PATH_MAX], *rel = strstr(cg, "/gammad-lab");
	bool under = false;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && rel && fgets(line, sizeof(line), f))
		under |= strstr(line, rel) != NULL;
	if (f)
		fclose(f);
	return !f || under;
}

/*
 * The split and the L4 protocols from `at` to vip, with the TC counters
 * before and after: every connection a flow, translated both ways, no
 * miss and no rewrite error. False when the counters cannot be read.
 */
static bool split_through_tc(struct tce_env *e, struct mc_place *at, const char *vip,
			     __u64 *before, __u64 *after)
{
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return false;
	expect_split(e, at, vip, 1000, 5);
	expect_l4(e, at, vip, 50);
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return false;
	print_delta(before, after);
	/* 1,000 + 5 HTTP, 55 line, 110 UDP flows */
	ASSERT_GE(DELTA(GAMMAD_TC_NEW_FLOW), 1150, "a conntrack flow per connection");
	/* SYN, ACK, request, FIN, ACK: several packets each way per connection */
	ASSERT_GE(DELTA(GAMMAD_TC_XLATE), 3000, "ClusterIP -> endpoint");
	ASSERT_GE(DELTA(GAMMAD_TC_REV_XLATE), 3000, "endpoint -> ClusterIP");
	ASSERT_EQ(DELTA(GAMMAD_TC_NO_ENDPOINT), 0, "no miss");
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
	return true;
}

/* A process in a pod's netns outside --cgroup: IPv4, 70/30 over 1,000 connections. */
static void subtest_unmanaged(struct tce_env *e, const char *vip)
{
	struct mc_place at = outside(e->client->netns);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_FALSE(self_under(e->ag.cgroup), "test process outside --cgroup"))
		return;
	if (!split_through_tc(e, &at, vip, before, after))
		return;
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_PEER), 3000, "delivered into the pods' netns");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_FULL), 0, "conntrack not full");
	ASSERT_EQ(DELTA(GAMMAD_TC_FAMILY), 0, "no endpoint of the other family");
}

/* tce-fe's consumer route holds on the TC path too: the client's namespace from gammad_pod_v1. */
static void subtest_consumer(struct tce_env *e)
{
	struct mc_place at = outside(e->fe->netns);
	size_t a = 0, b = 0;

	if (run_clients(e, &at, VIP4, HTTP_PORT, MC_HTTP, 100, &a, &b))
		ASSERT_EQ(b, 100, "IPv4: every tce-fe client to tce-b (consumer route)");
	if (run_clients(e, &at, VIP6, HTTP_PORT, MC_HTTP, 100, &a, &b))
		ASSERT_EQ(b, 100, "IPv6: every tce-fe client to tce-b (consumer route)");
}

/* Another node's client through the uplink, answered by the local pods, from the ClusterIP. */
static void subtest_remote(struct tce_env *e, const char *vip)
{
	struct mc_place at = outside(e->remote);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!split_through_tc(e, &at, vip, before, after))
		return;
	/* requests straight into the pods, replies out by the uplink (not a local pod) */
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_PEER), 3000, "requests into the pods' netns");
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_NEIGH), 3000, "replies through the uplink");
	ASSERT_EQ(DELTA(GAMMAD_TC_FIB_MISS), 0, "the FIB knows the way back");
}

/* A client inside --cgroup is rewritten at connect(): TC sees only pod IPs, translates nothing. */
static void subtest_connect_time(struct tce_env *e)
{
	/*
	 * From tce-fe's pod: its earlier TC flows were TCP only. The client
	 * pod's UDP flows to the ClusterIP leave REV entries a connect-time
	 * datagram on the same source port would run into (see the
	 * udp_same_port_* subtests): that is another failure, tested there.
	 */
	struct mc_place at = { .cgroup = e->fe->container_cgroup, .netns = e->fe->netns,
			       .timeout_ms = 3000 };
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	size_t a = 0, b = 0;

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	run_clients(e, &at, VIP4, HTTP_PORT, MC_HTTP, 200, &a, &b);
	run_clients(e, &at, VIP6, HTTP_PORT, MC_HTTP, 100, &a, &b);
	run_clients(e, &at, VIP4, UDP_PORT, MC_UDP, 50, &a, &b);
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	/* the TC programs saw these packets (pod IP to pod IP) and let them pass */
	ASSERT_GE(DELTA(GAMMAD_TC_PASS), 3 * 300, "packets seen and passed");
	ASSERT_EQ(DELTA(GAMMAD_TC_NEW_FLOW), 0, "no TC flow");
	ASSERT_EQ(DELTA(GAMMAD_TC_XLATE), 0, "no TC translation");
	ASSERT_EQ(DELTA(GAMMAD_TC_REV_XLATE), 0, "no TC reverse translation");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "no mid-flow ClusterIP packet");
}


static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	nanosleep(&ts, NULL);
}

/* ifindex gammad_pod_v1 holds for a pod IP (0: not local), -1: no entry. */
static long pod_map_ifindex(const char *pin_dir, int family, const char *ip)
{
	struct gammad_pod_key k = { .family = family };
	struct gammad_pod_val v;
	char path[128];
	int fd, err;

	inet_pton(family, ip, k.addr);
	snprintf(path, sizeof(path), "%s/%s", pin_dir, GAMMAD_MAP_POD);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	err = bpf_map_lookup_elem(fd, &k, &v);
	close(fd);
	return err ? -1 : (long)v.ifindex;
}

static bool wait_for(bool (*cond)(struct tce_env *, const void *), struct tce_env *e,
		     const void *arg, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 50; t++) {
		if (cond(e, arg))
			return true;
		sleep_ms(50);
	}
	return cond(e, arg);
}

static bool pin_gone(struct tce_env *e, const void *arg)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/link_tc_%u", e->ag.pin_dir, *(const unsigned int *)arg);
	return stat(path, &st) != 0;
}

static bool veth_followed(struct tce_env *e, const void *arg)
{
	const struct lab_pod_info *p = arg;
	long idx = if_nametoindex(p->veth);

	return idx && link_pinned(e->ag.pin_dir, p->veth) &&
	       pod_map_ifindex(e->ag.pin_dir, AF_INET, p->ip4) == idx &&
	       pod_map_ifindex(e->ag.pin_dir, AF_INET6, p->ip6) == idx;
}

/* The pod's network as the lab wires it (tools/lab/netns.c), on a new veth of the same name. */
static int veth_rewire(const struct lab_pod_info *p)
{
	const char *v = p->veth, *ns = p->netns;

	return sys_run("ip link add %s address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns %s",
		       v, ns) ||
	       sys_run("sysctl -qw net/ipv4/conf/%s/proxy_arp=1 net/ipv6/conf/%s/accept_dad=0", v, v) ||
	       sys_run("ip link set %s up", v) ||
	       sys_run("ip addr add fe80::1/64 dev %s nodad", v) ||
	       sys_run("ip route add %s/32 dev %s", p->ip4, v) ||
	       sys_run("ip -6 route add %s/128 dev %s", p->ip6, v) ||
	       sys_run("ip -n %s addr add %s/32 dev eth0", ns, p->ip4) ||
	       sys_run("ip -n %s addr add %s/128 dev eth0 nodad", ns, p->ip6) ||
	       sys_run("ip -n %s link set eth0 up", ns) ||
	       sys_run("ip -n %s route add 169.254.1.1 dev eth0 scope link", ns) ||
	       sys_run("ip -n %s neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 "
		       "nud permanent", ns) ||
	       sys_run("ip -n %s route add 10.244.0.0/16 via 169.254.1.1 dev eth0 src %s", ns,
		       p->ip4) ||
	       sys_run("ip -n %s route add 10.96.0.0/16 via 169.254.1.1 dev eth0 src %s", ns,
		       p->ip4) ||
	       sys_run("ip -n %s -6 route add fd00:10:244::/64 via fe80::1 dev eth0 src %s", ns,
		       p->ip6) ||
	       sys_run("ip -n %s -6 route add fd00:10:96::/112 via fe80::1 dev eth0 src %s", ns,
		       p->ip6) ||
	       sys_run("ip -n %s route add " HAIRPIN4 " via 169.254.1.1 dev eth0 src %s", ns,
		       p->ip4) ||
	       sys_run("ip -n %s -6 route add " HAIRPIN6 " via fe80::1 dev eth0 src %s", ns,
		       p->ip6) ? -EIO : 0;
}

/*
 * The agent follows veths: tce-b's veth goes away (its link is unpinned),
 * comes back with another ifindex (attached, gammad_pod_v1 updated), and
 * the TC path delivers into it again.
 */
static void subtest_veth_churn(struct tce_env *e)
{
	struct mc_place fe = outside(e->fe->netns), pod = outside(e->client->netns);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	unsigned int old = if_nametoindex(e->b->veth);
	size_t a = 0, b = 0;

	if (!ASSERT_NEQ(old, 0, "tce-b veth") ||
	    !ASSERT_TRUE(link_pinned(e->ag.pin_dir, e->b->veth), "tce-b veth attached") ||
	    !ASSERT_EQ(pod_map_ifindex(e->ag.pin_dir, AF_INET, e->b->ip4), old,
		       "gammad_pod_v1: tce-b's veth"))
		return;
	if (!ASSERT_OK(sys_run("ip link del %s", e->b->veth), "delete tce-b's veth"))
		return;
	ASSERT_TRUE(wait_for(pin_gone, e, &old, 15000), "link of the vanished veth unpinned");
	if (!ASSERT_OK(veth_rewire(e->b), "tce-b's veth made again"))
		return;
	test__printf("tce-b veth %s: ifindex %u -> %u\n", e->b->veth, old,
		     if_nametoindex(e->b->veth));
	if (!ASSERT_TRUE(wait_for(veth_followed, e, e->b, 15000),
			 "new veth attached and in gammad_pod_v1")) {
		test__printf("pod map: %ld, want %u\n",
			     pod_map_ifindex(e->ag.pin_dir, AF_INET, e->b->ip4),
			     if_nametoindex(e->b->veth));
		tc_ready(e, true);
		return;
	}
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	/* tce-fe's clients all go to tce-b: delivered into the new veth's peer */
	if (run_clients(e, &fe, VIP4, HTTP_PORT, MC_HTTP, 100, &a, &b))
		ASSERT_EQ(b, 100, "tce-fe clients reach tce-b through its new veth");
	if (run_clients(e, &fe, VIP6, HTTP_PORT, MC_HTTP, 100, &a, &b))
		ASSERT_EQ(b, 100, "IPv6: tce-fe clients reach tce-b through its new veth");
	expect_split(e, &pod, VIP4, 400, 10);
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_PEER), 3 * 400, "delivered with redirect_peer");
	ASSERT_EQ(DELTA(GAMMAD_TC_NO_ENDPOINT), 0, "no miss");
}

/* Results a PING/PONG loop has made so far, waiting until it has at least n (or timeout). */
static size_t pongs_reach(struct mc_loop *l, size_t n, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 10 && mc_loop_count(l) < n; t++)
		sleep_ms(10);
	return mc_loop_count(l);
}

/*
 * kill -9 of the agent: long-lived TCP connections through the TC path (a
 * pod's, IPv4; the remote node's, IPv6) keep exchanging, and new flows are
 * translated, from pods and from the remote node.
 */
static void subtest_kill9(struct tce_env *e)
{
	struct mc_place pod = outside(e->client->netns), remote = outside(e->remote);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	struct mc_loop p4 = {}, p6 = {};
	bool s4 = false, s6 = false;
	size_t n4, n6, a, b;

	s4 = ASSERT_OK(mc_loop_start(&p4, &pod, VIP4, LINE_PORT, MC_PINGPONG, 100000), "pinger");
	s6 = ASSERT_OK(mc_loop_start(&p6, &remote, VIP6, LINE_PORT, MC_PINGPONG, 100000),
		       "pinger");
	if (!s4 || !s6)
		goto out;
	n4 = pongs_reach(&p4, 50, 10000);
	n6 = pongs_reach(&p6, 50, 10000);
	if (!ASSERT_GE(n4, 50, "IPv4 long-lived connection exchanges") ||
	    !ASSERT_GE(n6, 50, "IPv6 long-lived connection (remote node) exchanges"))
		goto out;
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		goto out;

	agent_env_kill(&e->ag, SIGKILL);
	ASSERT_EQ(e->ag.pid, 0, "agent killed");
	n4 = mc_loop_count(&p4);
	n6 = mc_loop_count(&p6);
	/* the connections go on: 200 more exchanges each (2 ms apart) */
	ASSERT_GE(pongs_reach(&p4, n4 + 200, 10000), n4 + 200, "IPv4 connection goes on after kill -9");
	ASSERT_GE(pongs_reach(&p6, n6 + 200, 10000), n6 + 200, "IPv6 connection goes on after kill -9");
	/* and new flows, from the pod and from the remote node, both families */
	expect_split(e, &pod, VIP4, 400, 10);
	expect_split(e, &pod, VIP6, 400, 10);
	expect_split(e, &remote, VIP4, 400, 10);
	expect_split(e, &remote, VIP6, 400, 10);
	run_clients(e, &pod, VIP4, UDP_PORT, MC_UDP_SENDTO, 20, &a, &b);
	run_clients(e, &remote, VIP6, UDP_PORT, MC_UDP_SENDTO, 20, &a, &b);
	ASSERT_TRUE(link_pinned(e->ag.pin_dir, e->client->veth), "pod veth link still pinned");
	ASSERT_TRUE(link_pinned(e->ag.pin_dir, e->uplink), "uplink link still pinned");
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		goto out;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_NEW_FLOW), 800 + 40, "new flows after the kill");
	ASSERT_GE(DELTA(GAMMAD_TC_XLATE), 3 * 800, "translation after the kill");
	ASSERT_GE(DELTA(GAMMAD_TC_REV_XLATE), 3 * 800, "reverse translation after the kill");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "established flows kept their entries");
out:
	/* every exchange of both connections answered, before and after the kill */
	if (s4) {
		n4 = mc_loop_stop(&p4);
		ASSERT_EQ(mc_count_errors(p4.res, n4), 0, "IPv4 long-lived: no exchange failed");
		test__printf("IPv4 long-lived: %zu exchanges with %s\n", n4, n4 ? p4.res[0].pod : "");
		mc_loop_free(&p4);
	}
	if (s6) {
		n6 = mc_loop_stop(&p6);
		ASSERT_EQ(mc_count_errors(p6.res, n6), 0, "IPv6 long-lived: no exchange failed");
		test__printf("IPv6 long-lived: %zu exchanges with %s\n", n6, n6 ? p6.res[0].pod : "");
		mc_loop_free(&p6);
	}
}

/*
 * A new agent after the kill -9 adopts the pinned links (programs replaced
 * in place): a long-lived connection made before goes on through the
 * restart, new flows are translated; a veth made again while no agent ran
 * is attached, the link of the old one unpinned.
 */
static void subtest_restart(struct tce_env *e)
{
	struct mc_place pod = outside(e->client->netns), remote = outside(e->remote);
	struct mc_place fe = outside(e->fe->netns);
	struct mc_loop p4 = {};
	size_t n, a = 0, b = 0;
	unsigned int old;

	if (!ASSERT_OK(mc_loop_start(&p4, &pod, VIP4, LINE_PORT, MC_PINGPONG, 100000), "pinger"))
		return;
	if (!ASSERT_GE(pongs_reach(&p4, 50, 10000), 50, "long-lived connection exchanges"))
		goto out;
	agent_env_kill(&e->ag, SIGKILL);	/* none left running by the kill -9 subtest */
	/*
	 * A pod restarted while no agent ran (tce-fe's client: not on the
	 * long-lived connection's path): its old veth's link is left pinned.
	 */
	old = if_nametoindex(e->fe->veth);
	if (!ASSERT_OK(sys_run("ip link del %s", e->fe->veth), "delete fe-client's veth") ||
	    !ASSERT_OK(veth_rewire(e->fe), "fe-client's veth made again"))
		goto out;
	if (!ASSERT_OK(agent_start_tc(e), "restarted agent: applied, TC links, pod map"))
		goto out;
	ASSERT_TRUE(veth_followed(e, e->fe), "fe-client's new veth attached by the new agent");
	ASSERT_TRUE(wait_for(pin_gone, e, &old, 5000), "the old veth's link unpinned");
	if (run_clients(e, &fe, VIP4, HTTP_PORT, MC_HTTP, 20, &a, &b))
		ASSERT_EQ(b, 20, "fe-client through its new veth: consumer route to tce-b");
	n = mc_loop_count(&p4);
	ASSERT_GE(pongs_reach(&p4, n + 200, 10000), n + 200, "connection goes on after the restart");
	expect_split(e, &pod, VIP4, 400, 10);
	expect_split(e, &remote, VIP6, 400, 10);
out:
	n = mc_loop_stop(&p4);
	ASSERT_EQ(mc_count_errors(p4.res, n), 0, "long-lived: no exchange failed");
	mc_loop_free(&p4);
}

/*
 * The uplink vanishes (a NIC, bond or VLAN taken down and deleted): the
 * agent must go on following pod veths. Then tce-a's veth is made again
 * (a pod restart): it must be attached like any new veth.
 */
static void subtest_uplink_gone(struct tce_env *e)
{
	struct mc_place pod = outside(e->client->netns);
	unsigned int up = if_nametoindex(e->uplink);

	if (!ASSERT_NEQ(up, 0, "uplink") ||
	    !ASSERT_OK(sys_run("ip link del %s", e->uplink), "uplink deleted"))
		return;
	sleep_ms(500);
	if (!ASSERT_OK(sys_run("ip link del %s", e->a->veth), "delete tce-a's veth") ||
	    !ASSERT_OK(veth_rewire(e->a), "tce-a's veth made again"))
		return;
	test__printf("uplink %s (ifindex %u) gone; tce-a veth %s now ifindex %u\n", e->uplink, up,
		     e->a->veth, if_nametoindex(e->a->veth));
	if (!ASSERT_TRUE(wait_for(veth_followed, e, e->a, 15000),
			 "new veth of tce-a attached while the uplink is gone")) {
		char *out = NULL;

		lab_run_capture(&out, "grep 'tc: ' %s | tail -n 8", e->ag.log);
		test__printf("agent's last tc: lines\n%s", out ? out : "");
		free(out);
		ASSERT_FALSE(wait_for(pin_gone, e, &up, 10), "stale uplink link left pinned");
		return;
	}
	expect_split(e, &pod, VIP4, 400, 10);
}

/* The uplink made again under the same name: attached again, the remote node served again. */
static void subtest_uplink_back(struct tce_env *e)
{
	struct mc_place remote = outside(e->remote);
	size_t a = 0, b = 0;

	if (if_nametoindex(e->uplink))
		sys_run("ip link del %s", e->uplink);
	if (!ASSERT_OK(remote_link_up(e), "uplink made again"))
		return;
	if (!ASSERT_TRUE(wait_for_uplink(e, 15000), "--uplink attached again by name")) {
		char *out = NULL;

		lab_run_capture(&out, "grep 'tc: ' %s | tail -n 8", e->ag.log);
		test__printf("agent's last tc: lines\n%s", out ? out : "");
		free(out);
	}
	run_clients(e, &remote, VIP4, HTTP_PORT, MC_HTTP, 20, &a, &b);
}

/* gammad uninstall: the TC links go with the rest, the ClusterIP leads nowhere again. */
static void subtest_uninstall(struct tce_env *e)
{
	struct mc_place pod = outside(e->client->netns);
	char *out = NULL;
	struct mc_loop l;
	size_t n;
	int ret;

	agent_env_kill(&e->ag, SIGKILL);
	ret = lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"), e->ag.pin_dir);
	if (!ASSERT_EQ(ret, 0, "gammad uninstall"))
		test__printf("%s", out ? out : "");
	free(out);
	ASSERT_NEQ(access(e->ag.pin_dir, F_OK), 0, "pin dir removed");
	for (size_t i = 0; i < e->lab.nr_pods; i++)
		ASSERT_FALSE(link_pinned(e->ag.pin_dir, e->lab.pods[i].veth), "no link pinned");
	/* no program left on the veths: nothing translates */
	pod.timeout_ms = 1000;
	n = mc_run(&l, &pod, VIP4, HTTP_PORT, MC_HTTP, 3);
	ASSERT_EQ(mc_count_errors(l.res, n), n, "ClusterIP unreachable after uninstall");
	mc_loop_free(&l);
	lab_run_capture(&out, "bpftool net show dev %s 2>&1", e->client->veth);
	test__printf("bpftool net show dev %s:\n%s", e->client->veth, out ? out : "");
	ASSERT_TRUE(out && !strstr(out, "gammad"), "no gammad program on the client's veth");
	free(out);
}

/*
 * One source port, two flows one after the other from a pod outside
 * --cgroup: first to the ClusterIP (translated by TC, answered by pod X),
 * then straight to pod X's IP and target port. The second is not a Service
 * flow: its reply must come from pod X's address, not from the ClusterIP.
 */
struct port_reuse {
	char vip[64], ip[2][64], pod[2][256];	/* tce-a, tce-b: IP and name */
	int port;
	/* results */
	int step;				/* last step reached */
	char via_vip_from[80], via_vip_pod[256];
	char direct_to[80], direct_from[80];
};

static int udp_once(int family, int sport, const char *ip, int port, char *from, size_t flen,
		    char *reply, size_t rlen)
{
	struct sockaddr_storage dst = {}, src = {}, got;
	struct timeval tv = { 2, 0 };
	socklen_t glen = sizeof(got), dlen;
	int one = 1, fd, ret = -1;
	ssize_t n;

	if (family == AF_INET6) {
		struct sockaddr_in6 *d = (void *)&dst, *l = (void *)&src;

		d->sin6_family = l->sin6_family = AF_INET6;
		d->sin6_port = htons(port);
		l->sin6_port = htons(sport);
		inet_pton(AF_INET6, ip, &d->sin6_addr);
		dlen = sizeof(*d);
	} else {
		struct sockaddr_in *d = (void *)&dst, *l = (void *)&src;

		d->sin_family = l->sin_family = AF_INET;
		d->sin_port = htons(port);
		l->sin_port = htons(sport);
		inet_pton(AF_INET, ip, &d->sin_addr);
		dlen = sizeof(*d);
	}
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    bind(fd, (struct sockaddr *)&src, dlen) ||
	    sendto(fd, "TEST", 4, 0, (struct sockaddr *)&dst, dlen) != 4)
		goto out;
	n = recvfrom(fd, reply, rlen - 1, 0, (struct sockaddr *)&got, &glen);
	if (n <= 0)
		goto out;
	reply[n] = 0;
	if (family == AF_INET6) {
		struct sockaddr_in6 *g = (void *)&got;
		char a[64];

		inet_ntop(AF_INET6, &g->sin6_addr, a, sizeof(a));
		snprintf(from, flen, "[%s]:%d", a, ntohs(g->sin6_port));
	} else {
		struct sockaddr_in *g = (void *)&got;
		char a[64];

		inet_ntop(AF_INET, &g->sin_addr, a, sizeof(a));
		snprintf(from, flen, "%s:%d", a, ntohs(g->sin_port));
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int port_reuse_run(void *arg)
{
	struct port_reuse *r = arg;
	int family = strchr(r->vip, ':') ? AF_INET6 : AF_INET, x;
	char reply[2048];

	if (udp_once(family, r->port, r->vip, UDP_PORT, r->via_vip_from,
		     sizeof(r->via_vip_from), reply, sizeof(reply)))
		return 0;
	r->step = 1;
	x = strstr(reply, r->pod[0]) ? 0 : strstr(reply, r->pod[1]) ? 1 : -1;
	if (x < 0)
		return 0;
	snprintf(r->via_vip_pod, sizeof(r->via_vip_pod), "%s", r->pod[x]);
	mc_addr_port(r->direct_to, sizeof(r->direct_to), r->ip[x], 5353);
	r->step = 2;
	if (udp_once(family, r->port, r->ip[x], 5353, r->direct_from, sizeof(r->direct_from),
		     reply, sizeof(reply)))
		return 0;
	r->step = 3;
	return 0;
}

static void subtest_udp_port_reuse(struct tce_env *e, bool v6)
{
	struct port_reuse *r = shared_alloc(sizeof(*r));
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	char want[80];

	if (!ASSERT_OK_PTR(r, "shared"))
		return;
	memset(r, 0, sizeof(*r));
	snprintf(r->vip, sizeof(r->vip), "%s", v6 ? VIP6 : VIP4);
	snprintf(r->ip[0], sizeof(r->ip[0]), "%s", v6 ? e->a->ip6 : e->a->ip4);
	snprintf(r->ip[1], sizeof(r->ip[1]), "%s", v6 ? e->b->ip6 : e->b->ip4);
	snprintf(r->pod[0], sizeof(r->pod[0]), "%s", e->a->name);
	snprintf(r->pod[1], sizeof(r->pod[1]), "%s", e->b->name);
	r->port = 47000 + (v6 ? 1 : 0) + (int)(getpid() % 500) * 2;
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		goto out;
	if (!ASSERT_OK(child_run(NULL, e->client->netns, port_reuse_run, r, 20000), "client"))
		goto out;
	tc_counters(e->ag.pin_dir, after);
	print_delta(before, after);
	test__printf("port %d: to %s:53 answered by %s from %s; then to %s answered from %s\n",
		     r->port, r->vip, r->via_vip_pod, r->via_vip_from, r->direct_to,
		     r->direct_from);
	mc_addr_port(want, sizeof(want), r->vip, UDP_PORT);
	if (!ASSERT_GE(r->step, 2, "ClusterIP answered by a tce pod") ||
	    !ASSERT_STREQ(r->via_vip_from, want, "first reply from the ClusterIP"))
		goto out;
	ASSERT_EQ(r->step, 3, "direct datagram answered");
	ASSERT_STREQ(r->direct_from, r->direct_to,
		     "reply to the direct datagram from the pod, not from the ClusterIP");
out:
	shared_free(r, sizeof(*r));
}

/*
 * Errors come back through the translation: a TCP RST and an ICMP port
 * unreachable from an endpoint with no listener reach the client as the
 * ClusterIP's (ECONNREFUSED on connect() and on a connected UDP socket:
 * the kernel matches the ICMP quote to the socket, so it must be
 * translated back), from a pod and from the remote node.
 */
static void expect_refused(const struct mc_place *at, const char *vip, int port,
			   enum mc_proto proto, size_t n)
{
	struct mc_loop l;
	size_t got, refused = 0;

	got = mc_run(&l, at, vip, port, proto, n);
	for (size_t i = 0; i < got; i++)
		refused += l.res[i].err == -ECONNREFUSED;
	ASSERT_EQ(got, n, "requests made");
	ASSERT_EQ(refused, n, "every one refused (not timed out)");
	mc_loop_free(&l);
}

static void subtest_refused(struct tce_env *e, bool v6)
{
	struct mc_place pod = outside(e->client->netns), remote = outside(e->remote);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	const char *vip = v6 ? VIP6 : VIP4;

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	/*
	 * 4 datagrams from each client: the kernel lets a pod send a burst of
	 * 6 ICMP errors to one peer, then 1 per second (icmp_ratelimit); a
	 * lost error here must be the TC path's, not the rate limit's.
	 */
	expect_refused(&pod, vip, 9001, MC_LINE, 10);
	expect_refused(&pod, vip, 54, MC_UDP, 4);
	expect_refused(&remote, vip, 9001, MC_LINE, 10);
	expect_refused(&remote, vip, 54, MC_UDP, 4);
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_ICMP_XLATE), 8, "ICMP errors translated back");
	ASSERT_GE(DELTA(GAMMAD_TC_CLOSED), 20, "RSTs end their flows");
}

/*
 * Segments larger than the MTU: a 120 kB request body leaves the client
 * as GSO packets (veths offload), which the TC path rewrites and redirects
 * whole; every request must be answered, from a pod and from the remote
 * node, both families.
 */
static void subtest_large(struct tce_env *e)
{
	const char *from[] = { e->client->netns, e->remote };
	const char *vips[] = { VIP4, "[" VIP6 "]" };
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	for (int i = 0; i < 2; i++) {
		for (int f = 0; f < 2; f++) {
			char *out = NULL;
			int ret;

			ret = lab_run_capture(&out, "ip netns exec %s %s client http://%s:80/ "
					      "--method=POST --body=$(head -c 120000 /dev/zero | "
					      "tr \\\\0 x) --count=20 --new-conn --timeout=5",
					      from[i], test_bin("echo"), vips[f]);
			test__printf("120 kB bodies to %s from %s: %d\n%s\n", vips[f], from[i], ret,
				     out ? out : "");
			ASSERT_EQ(ret, 0, "echo client exit status");
			ASSERT_HAS_SUBSTR(out, "status=200 count=20", "every large request answered");
			ASSERT_HAS_SUBSTR(out, "errors=0", "no error");
			free(out);
		}
	}
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "no mid-flow miss");
}

/* ---- hairpin ----------------------------------------------------------- */

/*
 * tce-a's own connections through the TC path, with the counters: every
 * packet of a connection sent back to tce-a is a hairpin translation, and
 * nothing is missed or dropped.
 */
static bool hairpin_counters(struct tce_env *e, const __u64 *before, size_t min)
{
	__u64 after[GAMMAD_TC_MAX];

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return false;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_HAIRPIN), min, "hairpin translations");
	ASSERT_EQ(DELTA(GAMMAD_TC_NO_ENDPOINT), 0, "no miss");
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "no mid-flow miss");
	ASSERT_EQ(DELTA(GAMMAD_TC_FIB_MISS), 0, "delivered, not left to the stack");
	return true;
}

/*
 * A process in tce-a's netns, outside --cgroup, calls its own Service with
 * the 80/20 route: 1,000 connections, 0 errors, 80/20 within +-5%, the
 * ClusterIP as the peer of every one (run_clients).
 */
static void subtest_hairpin(struct tce_env *e, const char *vip)
{
	struct mc_place at = outside(e->a->netns);
	__u64 before[GAMMAD_TC_MAX];

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	expect_share(e, &at, vip, HTTP_PORT, MC_HTTP, 1000, 80, 5);
	/* SYN, ACK, request, FIN, ACK one way, as many back: >= 6 per hairpin connection */
	hairpin_counters(e, before, 6 * 750);
}

/* gammactl stats shows the hairpin counter as the kernel holds it, in text and JSON. */
static void subtest_hairpin_stats(struct tce_env *e)
{
	__u64 now[GAMMAD_TC_MAX];
	char *out = NULL, want[64];
	int ret;

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, now), "counters") ||
	    !ASSERT_GT(now[GAMMAD_TC_HAIRPIN], 0, "hairpins counted"))
		return;
	ret = lab_run_capture(&out, "%s stats --pin-dir %s", test_bin("gammactl"), e->ag.pin_dir);
	ASSERT_EQ(ret, 0, "gammactl stats");
	ASSERT_HAS_SUBSTR(out, "TC PATH", "stats: TC path section");
	ASSERT_TRUE(out && strstr(out, "\nhairpin "), "stats: a hairpin row");
	test__printf("%s", out ? out : "");
	free(out);
	ret = lab_run_capture(&out, "%s stats --json --pin-dir %s", test_bin("gammactl"),
			      e->ag.pin_dir);
	ASSERT_EQ(ret, 0, "gammactl stats --json");
	/* the agent is idle (no client runs): the counter stands still */
	snprintf(want, sizeof(want), "\"hairpin\": %llu",
		 (unsigned long long)now[GAMMAD_TC_HAIRPIN]);
	ASSERT_HAS_SUBSTR(out, want, "stats --json: tc.hairpin");
	free(out);
}

/*
 * UDP (GAMMA has no UDP route: svc's dns port is tce-a and tce-b, 50/50):
 * 1,000 datagrams from unconnected sockets, every reply's source the
 * ClusterIP (recvfrom), and connected sockets; both families.
 */
static void subtest_hairpin_udp(struct tce_env *e)
{
	struct mc_place at = outside(e->a->netns);
	__u64 before[GAMMAD_TC_MAX];

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	expect_share(e, &at, VIP4, UDP_PORT, MC_UDP_SENDTO, 1000, 50, 5);
	expect_share(e, &at, VIP6, UDP_PORT, MC_UDP_SENDTO, 1000, 50, 5);
	expect_share(e, &at, VIP4, UDP_PORT, MC_UDP, 400, 50, 10);
	expect_share(e, &at, VIP6, UDP_PORT, MC_UDP, 400, 50, 10);
	/* a datagram and its reply per hairpin flow */
	hairpin_counters(e, before, 2 * 1000);
}

/*
 * svc-a has only tce-a: from tce-a every connection is a hairpin. A TCP
 * RST and an ICMP port unreachable from tce-a's own stack reach its client
 * socket as the ClusterIP's (ECONNREFUSED, not a timeout).
 */
static void subtest_hairpin_refused(struct tce_env *e)
{
	struct mc_place at = outside(e->a->netns);
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, before), "counters"))
		return;
	/* 4 datagrams per family: within the pod's burst of ICMP errors to one peer */
	expect_refused(&at, A_VIP4, 9001, MC_LINE, 10);
	expect_refused(&at, A_VIP6, 9001, MC_LINE, 10);
	expect_refused(&at, A_VIP4, 54, MC_UDP, 4);
	expect_refused(&at, A_VIP6, 54, MC_UDP, 4);
	if (!ASSERT_OK(tc_counters(e->ag.pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_ICMP_XLATE), 8, "ICMP errors translated back");
	ASSERT_GE(DELTA(GAMMAD_TC_CLOSED), 20, "RSTs end their flows");
	/* SYN and RST of 20 connections, 8 datagrams and their errors */
	ASSERT_GE(DELTA(GAMMAD_TC_HAIRPIN), 2 * 20 + 2 * 8, "hairpin translations");
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
}

/* Established TCP connections in tce-a's netns whose peer is the hairpin address. */
static int hairpin_peers(struct tce_env *e, const char *hairpin)
{
	bool v6 = strchr(hairpin, ':');
	char *out = NULL;
	int n = -1;

	if (!lab_run_capture(&out, "ip netns exec %s ss -Htn state established dst %s%s%s | wc -l",
			     e->a->netns, v6 ? "[" : "", hairpin, v6 ? "]" : ""))
		n = atoi(out);
	free(out);
	return n;
}

/*
 * Long-lived hairpin connections (tce-a to svc-a's line port, both
 * families) go on through an agent kill -9 and a restart: the conntrack
 * entries are pinned and the new program uses the same hairpin address.
 * tce-a's server side sees the hairpin address as its peer meanwhile.
 */
static void subtest_hairpin_restart(struct tce_env *e)
{
	struct mc_place at = outside(e->a->netns);
	struct mc_loop p4 = {}, p6 = {};
	bool s4, s6;
	size_t n4, n6;

	s4 = ASSERT_OK(mc_loop_start(&p4, &at, A_VIP4, LINE_PORT, MC_PINGPONG, 100000), "pinger");
	s6 = ASSERT_OK(mc_loop_start(&p6, &at, A_VIP6, LINE_PORT, MC_PINGPONG, 100000), "pinger");
	if (!s4 || !s6)
		goto out;
	if (!ASSERT_GE(pongs_reach(&p4, 50, 10000), 50, "IPv4 hairpin connection exchanges") ||
	    !ASSERT_GE(pongs_reach(&p6, 50, 10000), 50, "IPv6 hairpin connection exchanges"))
		goto out;
	ASSERT_GE(hairpin_peers(e, HAIRPIN4), 1, "tce-a's server sees " HAIRPIN4);
	ASSERT_GE(hairpin_peers(e, HAIRPIN6), 1, "tce-a's server sees " HAIRPIN6);

	agent_env_kill(&e->ag, SIGKILL);
	ASSERT_EQ(e->ag.pid, 0, "agent killed");
	n4 = mc_loop_count(&p4);
	n6 = mc_loop_count(&p6);
	ASSERT_GE(pongs_reach(&p4, n4 + 200, 10000), n4 + 200, "IPv4 hairpin goes on after kill -9");
	ASSERT_GE(pongs_reach(&p6, n6 + 200, 10000), n6 + 200, "IPv6 hairpin goes on after kill -9");

	if (!ASSERT_OK(agent_start_tc(e), "restarted agent"))
		goto out;
	n4 = mc_loop_count(&p4);
	n6 = mc_loop_count(&p6);
	ASSERT_GE(pongs_reach(&p4, n4 + 200, 10000), n4 + 200, "IPv4 hairpin goes on after restart");
	ASSERT_GE(pongs_reach(&p6, n6 + 200, 10000), n6 + 200, "IPv6 hairpin goes on after restart");
	/* and new hairpin connections are made by the new agent's program */
	expect_share(e, &at, A_VIP4, LINE_PORT, MC_LINE, 20, 100, 0);
out:
	if (s4) {
		n4 = mc_loop_stop(&p4);
		ASSERT_EQ(mc_count_errors(p4.res, n4), 0, "IPv4 hairpin: no exchange failed");
		ASSERT_EQ(mc_count_pod(p4.res, n4, e->a->name), n4, "IPv4: tce-a answered itself");
		test__printf("IPv4 hairpin: %zu exchanges\n", n4);
		mc_loop_free(&p4);
	}
	if (s6) {
		n6 = mc_loop_stop(&p6);
		ASSERT_EQ(mc_count_errors(p6.res, n6), 0, "IPv6 hairpin: no exchange failed");
		ASSERT_EQ(mc_count_pod(p6.res, n6, e->a->name), n6, "IPv6: tce-a answered itself");
		test__printf("IPv6 hairpin: %zu exchanges\n", n6);
		mc_loop_free(&p6);
	}
}

/* ---- setup ------------------------------------------------------------- */

/* Before the agent the ClusterIP leads nowhere; the remote node reaches the pods. */
static void check_topology(struct tce_env *e)
{
	char cmd[256], *out = NULL;

	snprintf(cmd, sizeof(cmd), "%s client --tcp " VIP4 ":9000 --timeout=1", test_bin("echo"));
	ASSERT_NEQ(lab_run_capture(&out, "ip netns exec %s %s", e->client->netns, cmd), 0,
		   "no Service before the agent");
	free(out);
	ASSERT_NEQ(lab_run_capture(&out, "ip netns exec %s %s", e->remote, cmd), 0,
		   "no Service from the remote node before the agent");
	free(out);
	snprintf(cmd, sizeof(cmd), "%s client --tcp %s:9090 --timeout=2", test_bin("echo"),
		 e->a->ip4);
	ASSERT_EQ(lab_run_capture(&out, "ip netns exec %s %s", e->remote, cmd), 0,
		  "remote node reaches a pod IP");
	free(out);
	snprintf(cmd, sizeof(cmd), "%s client --tcp [%s]:9090 --timeout=2", test_bin("echo"),
		 e->a->ip6);
	ASSERT_EQ(lab_run_capture(&out, "ip netns exec %s %s", e->remote, cmd), 0,
		  "remote node reaches a pod IPv6");
	free(out);
}

static int env_setup(struct tce_env *e)
{
	char path[PATH_MAX], *out = NULL;
	int ret;

	if (lab_env_write(&e->lab, "tce.yaml", manifests_yaml, path) ||
	    lab_env_up_checked(&e->lab, path))
		return -1;
	e->a = lab_env_find(&e->lab, NS, "tce-a");
	e->b = lab_env_find(&e->lab, NS, "tce-b");
	e->client = lab_env_find(&e->lab, NS, "client");
	e->fe = lab_env_find(&e->lab, FE_NS, "fe-client");
	if (!ASSERT_OK_PTR(e->a, "tce-a pod") || !ASSERT_OK_PTR(e->b, "tce-b pod") ||
	    !ASSERT_OK_PTR(e->client, "client pod") || !ASSERT_OK_PTR(e->fe, "fe-client pod"))
		return -1;
	if (!ASSERT_OK(agent_env_init(&e->ag, &e->lab), "agent_env_init"))
		return -1;
	/* agent_env gives the agent cluster.yaml; the lab wrote the HTTPRoutes beside it */
	ret = agent_env_lab_routes(&e->ag, &e->lab, &out);
	if (!ASSERT_OK(ret, "routes.yaml for the agent"))
		return -1;
	ASSERT_HAS_SUBSTR(out, "name: canary", "the HTTPRoutes in routes.yaml");
	free(out);
	if (!ASSERT_OK(remote_up(e), "remote node"))
		return -1;
	check_topology(e);
	if (!ASSERT_OK(agent_start_tc(e), "gammad run --uplink: applied, TC links, pod map"))
		return -1;
	/* the agent says what it attached, on lines with "tc:" */
	lab_run_capture(&out, "grep 'tc: ' %s", e->ag.log);
	ASSERT_HAS_SUBSTR(out, e->uplink, "a tc: log line names the uplink");
	ASSERT_HAS_SUBSTR(out, e->b->veth, "a tc: log line names a pod veth");
	free(out);
	return 0;
}

static void env_teardown(struct tce_env *e)
{
	char *out = NULL;
	int ret;

	/* kill -9, uninstall (dp_uninstall), the log shown on failure */
	agent_env_kill(&e->ag, SIGKILL);
	if (e->ag.pin_dir[0]) {
		ret = lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"),
				      e->ag.pin_dir);
		ASSERT_EQ(ret, 0, "gammad uninstall");
		free(out);
	}
	agent_env_fini(&e->ag);
	remote_down(e);
	lab_env_fini(&e->lab);
}

void test_agent_tc(void)
{
	struct tce_env e = {};

	/* lab up comes later: the manifest file goes in the lab's temp dir */
	if (lab_env_start(&e.lab, NULL))
		goto cleanup;
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		goto cleanup;
	}
	if (env_setup(&e))
		goto cleanup;

	if (test__start_subtest("unmanaged_client_ipv4"))
		subtest_unmanaged(&e, VIP4);
	if (test__start_subtest("unmanaged_client_ipv6"))
		subtest_unmanaged(&e, VIP6);
	if (test__start_subtest("unmanaged_consumer_route"))
		subtest_consumer(&e);
	if (test__start_subtest("remote_node_ipv4"))
		subtest_remote(&e, VIP4);
	if (test__start_subtest("remote_node_ipv6"))
		subtest_remote(&e, VIP6);
	if (test__start_subtest("refused_ipv4"))
		subtest_refused(&e, false);
	if (test__start_subtest("refused_ipv6"))
		subtest_refused(&e, true);
	if (test__start_subtest("large_requests_gso"))
		subtest_large(&e);
	if (test__start_subtest("connect_time_not_translated"))
		subtest_connect_time(&e);
	if (test__start_subtest("udp_same_port_clusterip_then_pod_ipv4"))
		subtest_udp_port_reuse(&e, false);
	if (test__start_subtest("udp_same_port_clusterip_then_pod_ipv6"))
		subtest_udp_port_reuse(&e, true);
	if (test__start_subtest("hairpin_ipv4"))
		subtest_hairpin(&e, HP_VIP4);
	if (test__start_subtest("hairpin_ipv6"))
		subtest_hairpin(&e, HP_VIP6);
	if (test__start_subtest("hairpin_stats"))
		subtest_hairpin_stats(&e);
	if (test__start_subtest("hairpin_udp"))
		subtest_hairpin_udp(&e);
	if (test__start_subtest("hairpin_refused"))
		subtest_hairpin_refused(&e);
	if (test__start_subtest("hairpin_survives_kill9_restart"))
		subtest_hairpin_restart(&e);
	if (test__start_subtest("veth_churn_followed"))
		subtest_veth_churn(&e);
	if (test__start_subtest("kill9_existing_and_new_flows"))
		subtest_kill9(&e);
	if (test__start_subtest("restart_adopts_links_and_flows"))
		subtest_restart(&e);
	if (test__start_subtest("uplink_gone_pods_still_followed"))
		subtest_uplink_gone(&e);
	if (test__start_subtest("uplink_recreated_reattached"))
		subtest_uplink_back(&e);
	if (test__start_subtest("uninstall_detaches"))
		subtest_uninstall(&e);
cleanup:
	env_teardown(&e);
}
