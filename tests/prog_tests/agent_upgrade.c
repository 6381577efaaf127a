// SPDX-License-Identifier: Apache-2.0
/*
 * An upgrade across map layouts under a connection loop (issue 16): two
 * real builds, build/gammad and build/next/gammad, the same code with the
 * test-only next layout (include/gammad/layout_next.h: gammad_be_v2 ->
 * _v3, gammad_ct_v1 -> _v2, gammad_svcst_v1 -> _v2, fields reordered).
 *
 * The lab runs Service upg/svc (80: HTTPRoute 70/30 to svc-a/svc-b; 9000:
 * a line protocol), two client pods, and a consumer namespace whose route
 * sends its clients to svc-b. build/gammad runs (L4, TC on the pod veths),
 * then while these run without a pause:
 *
 *   connect-time: new HTTP connections from the client pod, from the
 *                 consumer pod, and one long-lived connection (sockmap:
 *                 the agents run with --sockmap);
 *   TC path:      new HTTP connections and one long-lived connection from
 *                 the tc-client pod's netns outside --cgroup (conntrack)
 *
 * The TC path's loops have a pod address of their own: from one address,
 * a flow to the ClusterIP and a connect-time one to the endpoint get their
 * ports picked apart (per destination) yet can share a tuple once the TC
 * path DNATs, which it does not resolve (no source-port rewrite:
 * docs/ARCHITECTURE.md, "Tuple clashes on the TC path"). Sharing the
 * client pod, about 1 run in 10 lost a connection of either kind to such a
 * clash.
 *
 * the subtests, in order, stop the old agent and:
 *   failed_midway_keeps_old_layout  next build, its conntrack fill made to
 *                                   fail: it exits, says why once, old pins
 *                                   serve, no new pin is left
 *   interrupted_after_fill          next build exits after filling (a crash):
 *                                   both layouts pinned, the old one serving
 *   upgrade_under_load              next build: rolls the leftover back,
 *                                   upgrades; old pins gone, routes as
 *                                   before, counters continued
 *   downgrade_refused               build/gammad again: refuses the newer
 *                                   layout, touches nothing
 * and at the end every connection of every loop succeeded. Each agent that
 * exits (failed, interrupted, refused) changes no pin (but the interrupted
 * one's next-layout maps), link program, sk_msg attachment or route.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/datapath.h"
#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "test_progs.h"

#define NS	"upg"
#define FE_NS	"upg-fe"
#define VIP	"10.96.78.10"
#define NEXT	"next/gammad"

static const char manifests_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: " NS "}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " FE_NS "}\n"
#define BACKEND(v)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: upg-" v ", namespace: " NS "}\n"		\
	"spec:\n  replicas: 1\n"					\
	"  selector:\n    matchLabels: {app: upg, version: " v "}\n"	\
	"  template:\n    metadata:\n      labels: {app: upg, version: " v "}\n" \
	"    spec:\n      containers:\n        - name: echo\n"		\
	"          image: example/echo\n"				\
	"          args: [\"--tcp=9090\"]\n"				\
	"          ports:\n"						\
	"            - {name: http, containerPort: 8080}\n"		\
	"            - {name: line, containerPort: 9090}\n"
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
	CLIENT("tc-client", NS)
	CLIENT("fe-client", FE_NS)
#define SERVICE(name, sel, ip)						\
	"---\napiVersion: v1\nkind: Service\n"				\
	"metadata: {name: " name ", namespace: " NS "}\n"		\
	"spec:\n  selector: " sel "\n  clusterIP: " ip "\n"		\
	"  ports:\n    - {name: http, port: 80, targetPort: http}\n"	\
	"    - {name: line, port: 9000, targetPort: line}\n"
	SERVICE("svc", "{app: upg}", VIP)
	SERVICE("svc-a", "{app: upg, version: a}", "10.96.78.11")
	SERVICE("svc-b", "{app: upg, version: b}", "10.96.78.12")
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

/* The maps the next layout changes, old and new names. */
static const char *const old_maps[] = { "gammad_be_v2", "gammad_ct_v1", "gammad_svcst_v1" };
static const char *const new_maps[] = { "gammad_be_v3", "gammad_ct_v2", "gammad_svcst_v2" };
#define NR_CHANGED 3

enum { L_CT_HTTP, L_CT_CONSUMER, L_CT_LONG, L_TC_HTTP, L_TC_LONG, NR_LOOPS };
static const char *const loop_name[NR_LOOPS] = {
	"connect-time HTTP", "connect-time consumer route", "connect-time long-lived",
	"TC path HTTP", "TC path long-lived",
};

struct upg_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *a, *b, *client, *tc, *fe;
	struct mc_loop loops[NR_LOOPS];
	bool running[NR_LOOPS];
	const char *args[8];
	char routes_before[65536];
	unsigned long long svc_connects_before, tc_before;
	size_t ct_before;	/* connect-time HTTP results when the counters were read */
	int64_t t_loops;	/* when the loops started */
	int64_t t_upg[2];	/* the upgrade started, applied */
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool pinned(const struct upg_env *e, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", e->ag.pin_dir, name);
	return !access(path, F_OK);
}

/* Every pod veth carries a TC link. */
static bool tc_ready(const struct upg_env *e)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < e->lab.nr_pods; i++) {
		snprintf(path, sizeof(path), "%s/link_tc_%u", e->ag.pin_dir,
			 if_nametoindex(e->lab.pods[i].veth));
		if (access(path, F_OK))
			return false;
	}
	return true;
}

/* gammactl of a build ("gammactl" or "next/gammactl") on the agent's pins; its output. */
static int gammactl(const struct upg_env *e, const char *bin, const char *args, char **out)
{
	return lab_run_capture(out, "%s --pin-dir %s %s", test_bin(bin), e->ag.pin_dir, args);
}

/*
 * What the kernel routes by, as gammactl reads it: frontends, classes,
 * backends with their shares and endpoints, without the counters.
 */
static int routes(const struct upg_env *e, const char *bin, char *buf, size_t len)
{
	char *out = NULL, cmd[128];
	int ret;

	snprintf(cmd, sizeof(cmd), "routes --json | sed -E 's/\"connects\": ?[0-9]+/\"connects\":_/g'");
	ret = gammactl(e, bin, cmd, &out);
	snprintf(buf, len, "%s", out ? out : "");
	free(out);
	return ret;
}

/* Connections counted for Service port upg/svc:80 (gammad_svcst_*), and TC translations. */
static int counters(const struct upg_env *e, const char *bin, unsigned long long *svc,
		    unsigned long long *tc)
{
	char *out = NULL;
	int ret;

	*svc = *tc = 0;
	ret = gammactl(e, bin, "stats --json | python3 -c 'import json, sys; d = json.load(sys.stdin); "
		       "print(sum(s[\"counters\"][\"connects\"] for s in d[\"services\"] "
		       "if s[\"name\"] == \"svc\" and s[\"port\"] == 80), "
		       "sum(d.get(\"tc\", {}).values()), "
		       "\"upgrade_wait\", d.get(\"tc\", {}).get(\"upgrade_wait\", 0), "
		       "\"switch_hold\", d.get(\"tc\", {}).get(\"switch_hold\", 0))'", &out);
	if (!ret && out)
		sscanf(out, "%llu %llu", svc, tc);
	test__printf("%s stats: %s", bin, out ? out : "");
	free(out);
	return ret;
}

/*
 * Half-open connections the endpoints' stacks dropped on a RST
 * (TcpExtEmbryonicRsts of both netns): what a client sends when a SYN-ACK
 * reaches it untranslated, from the endpoint's address.
 */
static int endpoint_embryonic_rsts(const struct upg_env *e, unsigned long long *sum)
{
	const struct lab_pod_info *pods[] = { e->a, e->b };
	unsigned long long v;
	int err = 0;

	*sum = 0;
	for (int i = 0; i < 2 && !err; i++) {
		char *out = NULL;

		err = lab_run_capture(&out, "ip netns exec %s awk '/^TcpExt:/ { if (!h) { "
				      "split($0, k); h = 1 } else { split($0, v); for (i in k) "
				      "if (k[i] == \"EmbryonicRsts\") print v[i] } }' /proc/net/netstat",
				      pods[i]->netns);
		if (!err && (!out || sscanf(out, "%llu", &v) != 1))
			err = -EINVAL;
		if (!err)
			*sum += v;
		free(out);
	}
	return err;
}

static int loops_start(struct upg_env *e)
{
	struct mc_place in_client = { .cgroup = e->client->container_cgroup,
				      .netns = e->client->netns, .timeout_ms = 3000 };
	struct mc_place in_fe = { .cgroup = e->fe->container_cgroup, .netns = e->fe->netns,
				  .timeout_ms = 3000 };
	/*
	 * in the tc-client's netns, in the test's own cgroup: only the TC path
	 * sees it, and no connect-time flow from that address shares its tuples
	 */
	struct mc_place outside = { .netns = e->tc->netns, .timeout_ms = 3000 };
	const struct { const struct mc_place *at; int port; enum mc_proto proto; } l[NR_LOOPS] = {
		[L_CT_HTTP] = { &in_client, 80, MC_HTTP },
		[L_CT_CONSUMER] = { &in_fe, 80, MC_HTTP },
		[L_CT_LONG] = { &in_client, 9000, MC_PINGPONG },
		[L_TC_HTTP] = { &outside, 80, MC_HTTP },
		[L_TC_LONG] = { &outside, 9000, MC_PINGPONG },
	};

	e->t_loops = mono_us();
	for (int i = 0; i < NR_LOOPS; i++) {
		if (!ASSERT_OK(mc_loop_start(&e->loops[i], l[i].at, VIP, l[i].port, l[i].proto,
					     200000), loop_name[i]))
			return -1;
		e->running[i] = true;
	}
	/* every loop has got answers before anything changes */
	for (int t = 0; t < 500; t++) {
		bool all = true;

		for (int i = 0; i < NR_LOOPS; i++)
			all &= mc_loop_count(&e->loops[i]) >= 20;
		if (all)
			return 0;
		sleep_ms(10);
	}
	for (int i = 0; i < NR_LOOPS; i++)
		test__printf("%s: %zu results\n", loop_name[i], mc_loop_count(&e->loops[i]));
	return -ETIMEDOUT;
}

/* Every loop makes progress now (n more results each within a few seconds). */
static void loops_progress(struct upg_env *e, const char *when)
{
	size_t start[NR_LOOPS];

	for (int i = 0; i < NR_LOOPS; i++)
		start[i] = mc_loop_count(&e->loops[i]);
	for (int t = 0; t < 500; t++) {
		bool all = true;

		for (int i = 0; i < NR_LOOPS; i++)
			all &= mc_loop_count(&e->loops[i]) >= start[i] + 20;
		if (all)
			return;
		sleep_ms(10);
	}
	for (int i = 0; i < NR_LOOPS; i++)
		ASSERT_GE(mc_loop_count(&e->loops[i]), start[i] + 20, when);
}

/* printf at buf + *off, never past len (*off counts on: the caller sees the overflow) */
static void put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*off < len ? buf + *off : NULL, *off < len ? len - *off : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n;
}

static bool new_layout_pin(const char *name)
{
	for (int i = 0; i < NR_CHANGED; i++)
		if (!strcmp(name, new_maps[i]))
			return true;
	return false;
}

/*
 * What serves, as the kernel holds it: every pin (but the next layout's
 * maps when skip_new), the program of every pinned link, the sk_msg
 * programs of both sockhashes, and the routes gammactl of bin reads.
 */
static int served_state(const struct upg_env *e, const char *bin, bool skip_new, char *buf,
			size_t len)
{
	static const char *const sockhashes[] = { GAMMAD_MAP_SOCKHASH, GAMMAD_MAP_ENGINE_SOCKHASH };
	struct dirent **names;
	char path[PATH_MAX];
	size_t off = 0;
	int n, err = 0;

	n = scandir(e->ag.pin_dir, &names, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		struct bpf_link_info info = {};
		__u32 il = sizeof(info);
		int fd;

		if (name[0] == '.' || (skip_new && new_layout_pin(name)))
			continue;
		put(buf, len, &off, "%s", name);
		snprintf(path, sizeof(path), "%s/%s", e->ag.pin_dir, name);
		if (!strncmp(name, "link_", 5) && (fd = bpf_obj_get(path)) >= 0) {
			if (!bpf_obj_get_info_by_fd(fd, &info, &il))
				put(buf, len, &off, " prog %u", info.prog_id);
			close(fd);
		}
		put(buf, len, &off, "\n");
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	for (size_t i = 0; i < sizeof(sockhashes) / sizeof(sockhashes[0]); i++) {
		__u32 ids[4] = {}, cnt = 4;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", e->ag.pin_dir, sockhashes[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			return -errno;
		if (bpf_prog_query(fd, BPF_SK_MSG_VERDICT, 0, NULL, ids, &cnt))
			err = -errno;
		close(fd);
		put(buf, len, &off, "%s sk_msg %u progs %u\n", sockhashes[i], cnt, ids[0]);
	}
	if (!err && off < len)
		err = routes(e, bin, buf + off, len - off);
	return err ?: off < len ? 0 : -ENOSPC;
}

/*
 * Start an agent of bin (ctl: the gammactl of the layout pinned), which
 * must exit before applying, having changed nothing that serves (skip_new:
 * but its own pins of the next layout); its log must say why (if given).
 */
static void start_expect_exit(struct upg_env *e, const char *bin, const char *ctl, bool skip_new,
			      const char *why)
{
	static char before[65536 + 8192], after[65536 + 8192];
	int logged = why ? agent_env_log_count(&e->ag, why) : 0;

	if (!ASSERT_OK(served_state(e, ctl, skip_new, before, sizeof(before)), "state before"))
		return;
	e->ag.bin = bin;
	ASSERT_EQ(agent_env_start(&e->ag), -ESRCH, "the agent exits without applying");
	if (why)
		ASSERT_EQ(agent_env_log_count(&e->ag, why), logged + 1, why);
	if (ASSERT_OK(served_state(e, ctl, skip_new, after, sizeof(after)), "state after"))
		ASSERT_STREQ(after, before, "pins, links, sk_msg and routes untouched");
}

static void subtest_failed_midway(struct upg_env *e)
{
	setenv("GAMMAD_TEST_LAYOUT_FAIL", "gammad_ct_v1", 1);
	start_expect_exit(e, NEXT, "gammactl", false, "the old layout keeps serving");
	unsetenv("GAMMAD_TEST_LAYOUT_FAIL");
	for (int i = 0; i < NR_CHANGED; i++) {
		ASSERT_TRUE(pinned(e, old_maps[i]), old_maps[i]);
		ASSERT_FALSE(pinned(e, new_maps[i]), new_maps[i]);
	}
	loops_progress(e, "the old layout serves after a failed upgrade");
}

static void subtest_interrupted(struct upg_env *e)
{
	setenv("GAMMAD_TEST_LAYOUT_EXIT", "filled", 1);
	start_expect_exit(e, NEXT, "gammactl", true, NULL);	/* a crash says nothing */
	unsetenv("GAMMAD_TEST_LAYOUT_EXIT");
	for (int i = 0; i < NR_CHANGED; i++) {
		ASSERT_TRUE(pinned(e, old_maps[i]), old_maps[i]);
		ASSERT_TRUE(pinned(e, new_maps[i]), new_maps[i]);
	}
	loops_progress(e, "the old layout serves after an interrupted upgrade");
}

static void subtest_upgrade(struct upg_env *e)
{
	static char after[65536];
	unsigned long long svc = 0, tc = 0;
	unsigned long long rsts_before = 0, rsts = 0;
	unsigned int tc_if, ep_if;
	size_t ct_now;
	int ret;

	e->ag.bin = NEXT;
	/*
	 * 300 ms between each catch-up and its switch and between the switch
	 * and the commit's copy, as a loaded machine may take: the flows in
	 * flight at the switch meet the new programs before their entries are
	 * copied (bpf/lib/ct.h gammad_ctold_v1). Without that slot 4 of 9
	 * runs lost a request; a flow between its SYN and its reply survives
	 * either way, so this is likely, not certain, to catch it.
	 */
	setenv("GAMMAD_TEST_LAYOUT_PAUSE_MS", "300", 1);
	/*
	 * 150 ms between two TC links' switches, the tc-client's link before
	 * an endpoint's (by ifindex, up or down): the TC loop's new
	 * connections meet its pod's link switched and an endpoint's not
	 * (bpf/tc.bpf.c tc_switching). The window stays under the client's
	 * first SYN retransmission (1 s). Without the hold, the first such
	 * connection's SYN-ACK passed untranslated and the client reset the
	 * endpoint's half-open socket in 7 of 8 runs; no request failed (its
	 * SYN resent 1 s later, after the switch, made the connection).
	 */
	setenv("GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS", "150", 1);
	tc_if = if_nametoindex(e->tc->veth);
	ep_if = if_nametoindex(e->a->veth);
	if (if_nametoindex(e->b->veth) < ep_if)
		ep_if = if_nametoindex(e->b->veth);
	if (tc_if > ep_if)
		setenv("GAMMAD_TEST_LAYOUT_LINK_ORDER", "down", 1);
	test__printf("TC links switch %s: tc-client ifindex %u, endpoint %u\n",
		     tc_if > ep_if ? "down" : "up", tc_if, ep_if);
	ASSERT_OK(endpoint_embryonic_rsts(e, &rsts_before), "EmbryonicRsts before");
	e->t_upg[0] = mono_us();
	test__printf("upgrade starts %.3f s after the loops\n", (e->t_upg[0] - e->t_loops) / 1e6);
	ret = agent_env_start(&e->ag);
	unsetenv("GAMMAD_TEST_LAYOUT_PAUSE_MS");
	unsetenv("GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS");
	unsetenv("GAMMAD_TEST_LAYOUT_LINK_ORDER");
	if (!ASSERT_OK(ret, "build/next/gammad applied"))
		return;
	e->t_upg[1] = mono_us();
	test__printf("upgrade applied %.3f s after the loops\n", (e->t_upg[1] - e->t_loops) / 1e6);
	/* the client's stack reset no SYN-ACK: none passed untranslated */
	sleep_ms(300);
	if (ASSERT_OK(endpoint_embryonic_rsts(e, &rsts), "EmbryonicRsts after"))
		ASSERT_EQ(rsts - rsts_before, 0, "half-open connections reset at the endpoints");
	ASSERT_EQ(agent_env_log_count(&e->ag, "building it again from"), NR_CHANGED,
		  "the interrupted upgrade's leftovers rebuilt");
	ASSERT_EQ(agent_env_log_count(&e->ag, "map layout upgraded"), NR_CHANGED,
		  "three maps upgraded");
	ASSERT_GE(agent_env_log_count(&e->ag, "attachments switched to the new programs"), 1,
		  "TC attachments switched");
	for (int i = 0; i < NR_CHANGED; i++) {
		ASSERT_FALSE(pinned(e, old_maps[i]), old_maps[i]);
		ASSERT_TRUE(pinned(e, new_maps[i]), new_maps[i]);
	}
	loops_progress(e, "every loop goes on after the upgrade");
	if (ASSERT_OK(routes(e, "next/gammactl", after, sizeof(after)), "routes after"))
		ASSERT_STREQ(after, e->routes_before, "the kernel routes as before");
	ct_now = mc_loop_count(&e->loops[L_CT_HTTP]);
	if (ASSERT_OK(counters(e, "next/gammactl", &svc, &tc), "counters after")) {
		/* every connect() since the first reading counted once at least */
		ASSERT_GE(svc, e->svc_connects_before + (ct_now - e->ct_before) / 2,
			  "Service port counters continued");
		ASSERT_GT(tc, e->tc_before, "TC counters continued");
	}
}

static void subtest_downgrade(struct upg_env *e)
{
	agent_env_kill(&e->ag, SIGTERM);
	start_expect_exit(e, NULL, "next/gammactl", false, "is a newer map layout than this gammad");
	for (int i = 0; i < NR_CHANGED; i++) {
		ASSERT_FALSE(pinned(e, old_maps[i]), old_maps[i]);
		ASSERT_TRUE(pinned(e, new_maps[i]), new_maps[i]);
	}
	loops_progress(e, "the newer layout serves after a refused downgrade");
}

static int env_setup(struct upg_env *e)
{
	char path[PATH_MAX];
	int i = 0;

	if (lab_env_write(&e->lab, "upg.yaml", manifests_yaml, path) ||
	    lab_env_up_checked(&e->lab, path))
		return -1;
	e->a = lab_env_find(&e->lab, NS, "upg-a");
	e->b = lab_env_find(&e->lab, NS, "upg-b");
	e->client = lab_env_find(&e->lab, NS, "client");
	e->tc = lab_env_find(&e->lab, NS, "tc-client");
	e->fe = lab_env_find(&e->lab, FE_NS, "fe-client");
	if (!ASSERT_OK_PTR(e->a, "upg-a pod") || !ASSERT_OK_PTR(e->b, "upg-b pod") ||
	    !ASSERT_OK_PTR(e->client, "client pod") || !ASSERT_OK_PTR(e->tc, "tc-client pod") ||
	    !ASSERT_OK_PTR(e->fe, "fe-client pod"))
		return -1;
	if (!ASSERT_OK(agent_env_init(&e->ag, &e->lab), "agent_env_init"))
		return -1;
	if (!ASSERT_OK(agent_env_lab_routes(&e->ag, &e->lab, NULL), "routes.yaml for the agent"))
		return -1;
	e->args[i++] = "--metrics-addr";
	e->args[i++] = "off";
	e->args[i++] = "--no-http-engine";	/* L4: a restart is stop, start */
	e->args[i++] = "--sockmap";		/* the long-lived connection through the sockhash */
	e->args[i] = NULL;
	e->ag.args = e->args;
	if (!ASSERT_OK(agent_env_start(&e->ag), "build/gammad applied"))
		return -1;
	for (i = 0; i < 100 && !tc_ready(e); i++)
		sleep_ms(100);
	if (!ASSERT_TRUE(tc_ready(e), "TC links on every pod veth"))
		return -1;
	for (i = 0; i < NR_CHANGED; i++)
		if (!ASSERT_TRUE(pinned(e, old_maps[i]), old_maps[i]))
			return -1;
	if (!ASSERT_OK(loops_start(e), "every loop answered"))
		return -1;
	if (!ASSERT_OK(routes(e, "gammactl", e->routes_before, sizeof(e->routes_before)),
		       "routes before") ||
	    !ASSERT_HAS_SUBSTR(e->routes_before, "svc-b", "routes read"))
		return -1;
	e->ct_before = mc_loop_count(&e->loops[L_CT_HTTP]);
	if (!ASSERT_OK(counters(e, "gammactl", &e->svc_connects_before, &e->tc_before),
		       "counters before") ||
	    !ASSERT_GT(e->svc_connects_before, 0, "connects counted"))
		return -1;
	/* L4 agents hand nothing over: the old one stops, the kernel routes on */
	agent_env_kill(&e->ag, SIGTERM);
	return 0;
}

/* Every connection of every loop succeeded; the routes held throughout. */
static void loops_check(struct upg_env *e)
{
	for (int i = 0; i < NR_LOOPS; i++) {
		const struct mc_result *r;
		size_t n;

		if (!e->running[i])
			continue;
		n = mc_loop_stop(&e->loops[i]);
		e->running[i] = false;
		r = e->loops[i].res;
		test__printf("%s: %zu results, %zu failed\n", loop_name[i], n,
			     mc_count_errors(r, n));
		if (e->t_upg[1])
			test__printf("  (the upgrade ran %.3f to %.3f s after the loop)\n",
				     (e->t_upg[0] - e->t_loops) / 1e6,
				     (e->t_upg[1] - e->t_loops) / 1e6);
		for (size_t j = 0; j < n; j++)
			if (r[j].err)
				test__printf("  failed: started %.3f s after the loop, %s: %s\n",
					     (r[j].t_start_us - e->t_loops) / 1e6, r[j].step,
					     strerror(-r[j].err));
		ASSERT_GT(n, 100, loop_name[i]);
		ASSERT_EQ(mc_count_errors(r, n), 0, loop_name[i]);
		if (i == L_CT_CONSUMER)
			ASSERT_EQ(mc_count_pod(r, n, e->b->name), n,
				  "consumer route: every connection to svc-b");
		if (i == L_CT_HTTP || i == L_TC_HTTP) {
			size_t a = mc_count_pod(r, n, e->a->name);

			ASSERT_EQ(a + mc_count_pod(r, n, e->b->name), n, "answered by a or b");
			/* 70/30: far from both 0 and 100 % */
			ASSERT_GT(a * 100, n * 55, "svc-a's share");
			ASSERT_LT(a * 100, n * 85, "svc-a's share");
		}
	}
}

void test_agent_upgrade(void)
{
	struct upg_env e = {};

	if (lab_env_start(&e.lab, NULL))
		goto cleanup;
	if (access(test_bin("gammad"), X_OK) || access(test_bin(NEXT), X_OK) ||
	    access(test_bin("next/gammactl"), X_OK)) {
		test__skip("build/next not built (make layout-next; make test builds it)");
		goto cleanup;
	}
	if (env_setup(&e))
		goto cleanup;
	if (test__start_subtest("failed_midway_keeps_old_layout"))
		subtest_failed_midway(&e);
	if (test__start_subtest("interrupted_after_fill"))
		subtest_interrupted(&e);
	if (test__start_subtest("upgrade_under_load"))
		subtest_upgrade(&e);
	if (test__start_subtest("downgrade_refused"))
		subtest_downgrade(&e);
	if (test__start_subtest("no_connection_failed"))
		loops_check(&e);
cleanup:
	for (int i = 0; i < NR_LOOPS; i++) {
		if (e.running[i])
			mc_loop_stop(&e.loops[i]);
		mc_loop_free(&e.loops[i]);
	}
	unsetenv("GAMMAD_TEST_LAYOUT_FAIL");
	unsetenv("GAMMAD_TEST_LAYOUT_EXIT");
	unsetenv("GAMMAD_TEST_LAYOUT_PAUSE_MS");
	unsetenv("GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS");
	unsetenv("GAMMAD_TEST_LAYOUT_LINK_ORDER");
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}
