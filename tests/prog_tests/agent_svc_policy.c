// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes Service semantics end to end, on the lab, through the agent
 * (`gammad run --node-name lab-node --zone zone-a`), dual-stack Services
 * checked over IPv4 and IPv6 on both paths a client of a ClusterIP takes:
 *  - connect time: a client in the client pod's container cgroup and netns;
 *  - TC: a client in the client pod's netns but in the test's own cgroup,
 *    outside --cgroup, so only the TC program on the pod's veth translates.
 *
 * The lab runs pods only (svp-a, svp-b, svp-c: echo servers; client); the
 * Services have no selector, and the test writes their EndpointSlices with
 * the lab's pod IPs and the conditions, nodeName, zone and hints each step
 * needs, as an EndpointSlice controller on a cluster of several nodes would:
 *  - local:       internalTrafficPolicy Local; every endpoint on another
 *                 node: refused (connect time: ECONNREFUSED; TC: dropped),
 *                 then one endpoint on this node: served by it only;
 *  - zone:        trafficDistribution PreferClose with hints.forZones:
 *                 only the endpoints hinted for zone-a;
 *  - terminating: no ready endpoint: the serving-and-terminating ones, and
 *                 as one is ready again only it; a connection opened during
 *                 the fallback goes on across that change;
 *  - untouched:   a headless Service's pod IP and a Service's externalIP
 *                 reach exactly that pod; gammactl shows no frontend for
 *                 them, and the policy of the others.
 */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/tc_maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "test_progs.h"

#define NS		"svp"
#define NODE		"lab-node"	/* the lab's node: every lab pod is on it */
#define ZONE		"zone-a"
#define VIP_LOC		"10.96.78.10"
#define VIP_ZON		"10.96.78.11"
#define VIP_TRM		"10.96.78.12"
#define VIP_EXT		"10.96.78.13"
#define VIP6_LOC	"fd00:10:96::780a"
#define VIP6_ZON	"fd00:10:96::780b"
#define VIP6_TRM	"fd00:10:96::780c"
#define HTTP_PORT	80
#define LINE_PORT	9000
#define N		20	/* connections per check */

static const char manifests_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: " NS "}\n"
#define BACKEND(v)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: svp-" v ", namespace: " NS "}\n"		\
	"spec:\n  replicas: 1\n"					\
	"  selector:\n    matchLabels: {app: svp-" v "}\n"		\
	"  template:\n    metadata:\n      labels: {app: svp-" v "}\n"	\
	"    spec:\n      containers:\n        - name: echo\n"		\
	"          image: example/echo\n"				\
	"          args: [\"--tcp=9090\"]\n"				\
	"          ports:\n"						\
	"            - {name: http, containerPort: 8080}\n"		\
	"            - {name: line, containerPort: 9090}\n"
	BACKEND("a")
	BACKEND("b")
	BACKEND("c")
	"---\napiVersion: apps/v1\nkind: Deployment\n"
	"metadata: {name: client, namespace: " NS "}\n"
	"spec:\n  selector:\n    matchLabels: {app: client}\n"
	"  template:\n    metadata:\n      labels: {app: client}\n"
	"    spec:\n      containers:\n        - name: c\n"
	"          image: example/client\n"
	"          ports:\n            - {containerPort: 8080}\n";

struct svp_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *a, *b, *c, *client;
	const char *args[10];
};

enum path { CONNECT_TIME, TC, NR_PATHS };
static const char *const path_name[NR_PATHS] = { "connect-time", "tc" };

static struct mc_place place(const struct svp_env *e, enum path p)
{
	if (p == CONNECT_TIME)
		return (struct mc_place){ .cgroup = e->client->container_cgroup,
					  .netns = e->client->netns, .timeout_ms = 3000 };
	/* the test's own cgroup: connect() translation never sees it */
	return (struct mc_place){ .netns = e->client->netns, .timeout_ms = 1500 };
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- manifests the test writes ------------------------------------------ */

/* One EndpointSlice of Service `name` for a family; eps: "- {...}\n" lines. */
static char *slice_yaml(const char *name, int v6, const char *eps)
{
	char *s = NULL;

	if (asprintf(&s,
		     "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: %s-%d, namespace: " NS ", labels: {kubernetes.io/service-name: %s}}\n"
		     "addressType: IPv%d\n"
		     "ports: [{name: http, port: 8080}, {name: line, port: 9090}]\n"
		     "endpoints:\n%s",
		     name, v6 ? 6 : 4, name, v6 ? 6 : 4, eps) < 0)
		return NULL;
	return s;
}

#define PORTS "[{name: http, port: 80, targetPort: 8080}, {name: line, port: 9000, targetPort: 9090}]"

/* One endpoint line: the pod's address of a family, its pod name, and more fields. */
static const char *ep(char *buf, size_t len, const struct lab_pod_info *p, int v6,
		      const char *rest)
{
	snprintf(buf, len, "- {addresses: [\"%s\"], targetRef: {kind: Pod, namespace: " NS
		 ", name: %s}%s}\n", v6 ? p->ip6 : p->ip4, p->name, rest);
	return buf;
}

#define TERMINATING ", conditions: {ready: false, serving: true, terminating: true}"
#define NOT_READY ", conditions: {ready: false, serving: false}"

/* The ClusterIPs of the Services the test writes. */
static const char *vip_of(const char *name, int v6)
{
	if (!strcmp(name, "loc"))
		return v6 ? VIP6_LOC : VIP_LOC;
	if (!strcmp(name, "zon"))
		return v6 ? VIP6_ZON : VIP_ZON;
	return v6 ? VIP6_TRM : VIP_TRM;
}

/*
 * Write NAME.yaml: dual-stack Service NAME (its ClusterIPs, spec lines) and
 * a slice per family of svp-a, svp-b, svp-c with those extra fields each
 * (NULL: not in the slice); wait: until the agent applied it.
 */
static int write_service(struct svp_env *e, bool wait, const char *name, const char *spec,
			 const char *ra, const char *rb, const char *rc)
{
	char a[512], b[512], c[512], eps[1600], file[64];
	char *y = NULL, *sl[2] = {};
	int ret = -ENOMEM;

	for (int v6 = 0; v6 < 2; v6++) {
		snprintf(eps, sizeof(eps), "%s%s%s", ra ? ep(a, sizeof(a), e->a, v6, ra) : "",
			 rb ? ep(b, sizeof(b), e->b, v6, rb) : "",
			 rc ? ep(c, sizeof(c), e->c, v6, rc) : "");
		sl[v6] = slice_yaml(name, v6, eps);
	}
	if (sl[0] && sl[1] &&
	    asprintf(&y, "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: " NS "}\n"
		     "spec:\n  ipFamilyPolicy: RequireDualStack\n"
		     "  clusterIP: %s\n  clusterIPs: [%s, \"%s\"]\n%s  ports: " PORTS "\n%s%s",
		     name, vip_of(name, 0), vip_of(name, 0), vip_of(name, 1), spec, sl[0],
		     sl[1]) >= 0) {
		snprintf(file, sizeof(file), "%s.yaml", name);
		ret = wait ? agent_env_update(&e->ag, file, y) : agent_env_write(&e->ag, file, y);
		free(y);
	}
	free(sl[0]);
	free(sl[1]);
	return ret;
}

/* ---- checks ------------------------------------------------------------- */

/* n HTTP connections to ip:port on path p; counts per pod a, b, c; false: broke down. */
static bool serve(struct svp_env *e, enum path p, const char *ip, int port, size_t cnt[3])
{
	struct mc_place at = place(e, p);
	struct mc_loop l;
	size_t got, errors;

	got = mc_run(&l, &at, ip, port, MC_HTTP, N);
	errors = mc_count_errors(l.res, got);
	cnt[0] = mc_count_pod(l.res, got, e->a->name);
	cnt[1] = mc_count_pod(l.res, got, e->b->name);
	cnt[2] = mc_count_pod(l.res, got, e->c->name);
	test__printf("%s %s:%d x%zu: a=%zu b=%zu c=%zu errors=%zu\n", path_name[p], ip, port,
		     got, cnt[0], cnt[1], cnt[2], errors);
	mc_loop_free(&l);
	return ASSERT_EQ(got, N, "connections made") && ASSERT_EQ(errors, 0, "every one answered");
}

/* gammad_tcst_v1[reason] summed over CPUs. */
static __u64 tc_counter(const struct svp_env *e, __u32 reason)
{
	int ncpu = libbpf_num_possible_cpus(), fd;
	__u64 *v, sum = 0;
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", e->ag.pin_dir, GAMMAD_MAP_TC_STATS);
	fd = bpf_obj_get(path);
	if (fd < 0 || ncpu <= 0)
		return 0;
	v = calloc(ncpu, sizeof(*v));
	if (v && !bpf_map_lookup_elem(fd, &reason, v))
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	close(fd);
	return sum;
}

/*
 * Every connection refused, as kube-proxy drops them: at connect time
 * connect() fails with ECONNREFUSED at once; on the TC path the SYN is
 * dropped (counted as no endpoint) and the client times out.
 */
static void refused(struct svp_env *e, enum path p, const char *ip, int port)
{
	struct mc_place at = place(e, p);
	size_t n = p == TC ? 2 : N, got;
	__u64 before = tc_counter(e, GAMMAD_TC_NO_ENDPOINT);
	struct mc_loop l;

	got = mc_run(&l, &at, ip, port, MC_HTTP, n);
	ASSERT_EQ(got, n, "connections tried");
	ASSERT_EQ(mc_count_errors(l.res, got), n, "every one refused");
	for (size_t i = 0; p == CONNECT_TIME && i < got; i++)
		if (!ASSERT_EQ(l.res[i].err, -ECONNREFUSED, "connect: ECONNREFUSED"))
			break;
	if (p == TC)
		ASSERT_GE(tc_counter(e, GAMMAD_TC_NO_ENDPOINT) - before, n,
			  "TC dropped the SYNs: no endpoint");
	mc_loop_free(&l);
}

/*
 * gammactl services: the row of Service svp/NAME:80 holds want and not
 * `absent` (NULL: no check); want NULL: there is no such row.
 */
static void gammactl_row(struct svp_env *e, const char *name, const char *want,
			 const char *absent)
{
	char *out = NULL;

	lab_run_capture(&out, "%s --pin-dir %s services | grep '^" NS "/%s:80 ' || true",
			test_bin("gammactl"), e->ag.pin_dir, name);
	if (out)
		test__printf("gammactl services: %s", out);
	if (absent)
		ASSERT_NULL(strstr(out ? out : "", absent), "gammactl services POLICY: not");
	if (want)
		ASSERT_HAS_SUBSTR(out ? out : "", want, "gammactl services POLICY");
	else
		ASSERT_STREQ(out ? out : "", "", "gammactl services: no frontend");
	free(out);
}

/*
 * gammactl explain translates as the client pod's node (its spec.nodeName,
 * the agent's --node-name) and zone: it agrees with the kernel endpoint for
 * endpoint (exit 0) and names the policy.
 */
static void explain_agrees(struct svp_env *e, const char *name, const char *policy)
{
	char want[128], *out = NULL;
	int ret;

	ret = lab_run_capture(&out, "%s --pin-dir %s --manifests %s --zone " ZONE
			      " explain " NS "/%s %s:80", test_bin("gammactl"), e->ag.pin_dir,
			      e->ag.dir, e->client->name, vip_of(name, 0));
	snprintf(want, sizeof(want), "endpoints    " NS "/%s:80: %s (node " NODE ", zone " ZONE ")",
		 name, policy);
	if (!ASSERT_EQ(ret, 0, "gammactl explain: the kernel agrees"))
		test__printf("%s", out ? out : "");
	ASSERT_HAS_SUBSTR(out ? out : "", want, "gammactl explain names the policy");
	free(out);
}

/* ---- subtests ----------------------------------------------------------- */

static void subtest_local(struct svp_env *e)
{
	size_t cnt[3];

	if (!ASSERT_OK(write_service(e, true, "loc", "  internalTrafficPolicy: Local\n",
				     ", nodeName: node-2", ", nodeName: node-3", NULL),
		       "loc: endpoints on other nodes"))
		return;
	gammactl_row(e, "loc", "local", NULL);
	for (enum path p = 0; p < NR_PATHS; p++)
		for (int v6 = 0; v6 < 2; v6++)
			refused(e, p, vip_of("loc", v6), HTTP_PORT);
	if (!ASSERT_OK(write_service(e, true, "loc", "  internalTrafficPolicy: Local\n",
				     ", nodeName: node-2", ", nodeName: " NODE, NULL),
		       "loc: svp-b on this node"))
		return;
	for (enum path p = 0; p < NR_PATHS; p++)
		for (int v6 = 0; v6 < 2; v6++)
			if (serve(e, p, vip_of("loc", v6), HTTP_PORT, cnt))
				ASSERT_EQ(cnt[1], N, "served by the local endpoint only");
	explain_agrees(e, "loc", "local");
}

static void subtest_zone(struct svp_env *e)
{
	size_t cnt[3];

	/* the hints say where: svp-a is in zone-a but hinted for zone-b */
	if (!ASSERT_OK(write_service(e, true, "zon", "  trafficDistribution: PreferClose\n",
				     ", zone: zone-a, hints: {forZones: [{name: zone-b}]}",
				     ", zone: zone-b, hints: {forZones: [{name: " ZONE "}]}",
				     ", zone: zone-a, hints: {forZones: [{name: " ZONE "}]}"),
		       "zon: hints"))
		return;
	gammactl_row(e, "zon", "zone", NULL);
	explain_agrees(e, "zon", "zone");
	for (enum path p = 0; p < NR_PATHS; p++)
		for (int v6 = 0; v6 < 2; v6++)
			if (serve(e, p, vip_of("zon", v6), HTTP_PORT, cnt)) {
				ASSERT_EQ(cnt[0], 0, "svp-a (hinted for zone-b) gets nothing");
				ASSERT_EQ(cnt[1] + cnt[2], N,
					  "served by the endpoints hinted for zone-a");
			}
}

static size_t pongs_reach(struct mc_loop *l, size_t n, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 10 && mc_loop_count(l) < n; t++)
		sleep_ms(10);
	return mc_loop_count(l);
}

static void subtest_terminating(struct svp_env *e)
{
	struct mc_loop pp[NR_PATHS] = {};
	struct mc_place at[NR_PATHS];
	bool started[NR_PATHS] = {};
	size_t cnt[3], n;

	/* a rolling update: the old pods terminate, the new one is not ready yet */
	if (!ASSERT_OK(write_service(e, true, "trm", "", TERMINATING, TERMINATING, NOT_READY),
		       "trm: no ready endpoint"))
		return;
	gammactl_row(e, "trm", "terminating", NULL);
	for (enum path p = 0; p < NR_PATHS; p++) {
		for (int v6 = 0; v6 < 2; v6++)
			if (serve(e, p, vip_of("trm", v6), HTTP_PORT, cnt))
				ASSERT_EQ(cnt[0] + cnt[1], N, "served by the terminating endpoints");
		/* a connection opened now, on a terminating endpoint, must outlive the change */
		at[p] = place(e, p);
		started[p] = ASSERT_OK(mc_loop_start(&pp[p], &at[p], VIP_TRM, LINE_PORT,
						     MC_PINGPONG, 100000), "long-lived connection");
		if (started[p])
			ASSERT_GE(pongs_reach(&pp[p], 20, 10000), 20, "exchanges before the change");
	}
	/* the new pod is ready: the fallback ends */
	if (ASSERT_OK(write_service(e, true, "trm", "", TERMINATING, TERMINATING, ""),
		      "trm: svp-c ready")) {
		gammactl_row(e, "trm", NS "/trm:80", "terminating");
		for (enum path p = 0; p < NR_PATHS; p++)
			for (int v6 = 0; v6 < 2; v6++)
				if (serve(e, p, vip_of("trm", v6), HTTP_PORT, cnt))
					ASSERT_EQ(cnt[2], N, "served by the ready endpoint only");
	}
	for (enum path p = 0; p < NR_PATHS; p++) {
		if (!started[p])
			continue;
		n = mc_loop_count(&pp[p]);
		ASSERT_GE(pongs_reach(&pp[p], n + 50, 10000), n + 50,
			  "the connection goes on after the change");
		n = mc_loop_stop(&pp[p]);
		test__printf("%s long-lived connection: %zu exchanges, pod %s\n", path_name[p], n,
			     n ? pp[p].res[0].pod : "-");
		ASSERT_EQ(mc_count_errors(pp[p].res, n), 0, "the connection never failed");
		if (n)
			ASSERT_EQ(mc_count_pod(pp[p].res, n, pp[p].res[0].pod), n,
				  "one terminating pod for the whole connection");
		if (n && strcmp(pp[p].res[0].pod, e->a->name))
			ASSERT_STREQ(pp[p].res[0].pod, e->b->name, "on a terminating endpoint");
		mc_loop_free(&pp[p]);
	}
}

static void subtest_untouched(struct svp_env *e)
{
	char *hl = NULL, spec[256], ext[160], a[512];
	size_t cnt[3];

	/* headless: DNS hands out pod IPs; externalIPs: the node's business */
	snprintf(ext, sizeof(ext), "  externalIPs: [%s]\n", e->c->ip4);
	if (asprintf(&hl, "apiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: " NS "}\n"
		     "spec:\n  clusterIP: None\n  ports: " PORTS "\n"
		     "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: hl-1, namespace: " NS ", labels: {kubernetes.io/service-name: hl}}\n"
		     "addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n%s",
		     ep(a, sizeof(a), e->a, 0, "")) < 0)
		return;
	ASSERT_OK(agent_env_write(&e->ag, "hl.yaml", hl), "hl.yaml");
	free(hl);
	/* ext: ClusterIP port 8080 to svp-a, externalIP = svp-c's address */
	snprintf(spec, sizeof(spec), "  clusterIP: " VIP_EXT "\n%s", ext);
	{
		char *y, eps[600];

		snprintf(eps, sizeof(eps), "%s", ep(a, sizeof(a), e->a, 0, ""));
		if (asprintf(&y, "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: " NS "}\n"
			     "spec:\n  type: NodePort\n%s  ports: [{name: http, port: 8080, nodePort: 30080}]\n"
			     "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			     "metadata: {name: ext-1, namespace: " NS ", labels: {kubernetes.io/service-name: ext}}\n"
			     "addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n%s",
			     spec, eps) < 0)
			return;
		ASSERT_OK(agent_env_update(&e->ag, "ext.yaml", y), "ext.yaml applied");
		free(y);
	}
	gammactl_row(e, "hl", NULL, NULL);
	for (enum path p = 0; p < NR_PATHS; p++) {
		if (serve(e, p, VIP_EXT, 8080, cnt))
			ASSERT_EQ(cnt[0], N, "the ClusterIP of ext is served (svp-a)");
		if (serve(e, p, e->c->ip4, 8080, cnt))
			ASSERT_EQ(cnt[2], N, "the externalIP reaches svp-c untouched");
		if (serve(e, p, e->a->ip4, 8080, cnt))
			ASSERT_EQ(cnt[0], N, "the headless Service's pod IP reaches svp-a");
	}
}

/* ---- set-up ------------------------------------------------------------- */

static bool link_pinned(const char *pin_dir, const char *ifname)
{
	unsigned int idx = if_nametoindex(ifname);
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/link_tc_%u", pin_dir, idx);
	return idx && !stat(path, &st);
}

static int env_setup(struct svp_env *e)
{
	char path[PATH_MAX];
	int i = 0;

	if (lab_env_write(&e->lab, "svp.yaml", manifests_yaml, path) ||
	    lab_env_up_checked(&e->lab, path))
		return -1;
	e->a = lab_env_find(&e->lab, NS, "svp-a");
	e->b = lab_env_find(&e->lab, NS, "svp-b");
	e->c = lab_env_find(&e->lab, NS, "svp-c");
	e->client = lab_env_find(&e->lab, NS, "client");
	if (!ASSERT_OK_PTR(e->a, "svp-a") || !ASSERT_OK_PTR(e->b, "svp-b") ||
	    !ASSERT_OK_PTR(e->c, "svp-c") || !ASSERT_OK_PTR(e->client, "client"))
		return -1;
	if (!ASSERT_OK(agent_env_init(&e->ag, &e->lab), "agent_env_init"))
		return -1;
	/* every Service the subtests use, so the first apply has them all */
	if (write_service(e, false, "loc", "  internalTrafficPolicy: Local\n", "", "", "") ||
	    write_service(e, false, "zon", "", "", "", "") ||
	    write_service(e, false, "trm", "", "", "", ""))
		return -1;
	e->args[i++] = "--node-name";
	e->args[i++] = NODE;
	e->args[i++] = "--zone";
	e->args[i++] = ZONE;
	e->args[i++] = "--metrics-addr";
	e->args[i++] = "off";
	e->args[i++] = "-v";
	e->args[i] = NULL;
	e->ag.args = e->args;
	if (!ASSERT_OK(agent_env_start(&e->ag), "gammad run"))
		return -1;
	/* the TC path needs the program on the client's veth */
	for (i = 0; i < 100 && !link_pinned(e->ag.pin_dir, e->client->veth); i++)
		sleep_ms(100);
	return ASSERT_TRUE(link_pinned(e->ag.pin_dir, e->client->veth), "TC on the client's veth")
	       ? 0 : -1;
}

void test_agent_svc_policy(void)
{
	struct svp_env e = {};

	if (lab_env_start(&e.lab, NULL))
		goto cleanup;
	if (access(test_bin("gammad"), X_OK) || access(test_bin("gammactl"), X_OK)) {
		test__skip("build/gammad or build/gammactl not built");
		goto cleanup;
	}
	if (env_setup(&e))
		goto cleanup;
	if (test__start_subtest("local_only"))
		subtest_local(&e);
	if (test__start_subtest("zone_hints"))
		subtest_zone(&e);
	if (test__start_subtest("terminating_fallback"))
		subtest_terminating(&e);
	if (test__start_subtest("untouched"))
		subtest_untouched(&e);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}
