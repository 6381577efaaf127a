// SPDX-License-Identifier: Apache-2.0
/*
 * Which endpoints a Service port uses on this node, as kube-proxy picks
 * them: internalTrafficPolicy Local, trafficDistribution with hints or
 * zones, the terminating fallback, several slices merged, the endpoint cap;
 * and what gammad leaves alone (headless, ExternalName, NodePort,
 * LoadBalancer and externalIPs addresses get no frontend).
 * Table-driven: manifests, the node (and zone) translating, and the exact
 * endpoint list, policy and state of Service app/s port 80.
 */
#include <string.h>
#include <sys/socket.h>

#include "image/image.h"
#include "lib/translate_fixture.h"
#include "test_progs.h"

#define SVC_HEAD(extra)							\
	"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: app}\n"	\
	"spec:\n  clusterIP: 10.96.5.1\n" extra				\
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
#define SLICE_HEAD(name)						\
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"	\
	"metadata: {name: " name ", namespace: app, labels: {kubernetes.io/service-name: s}}\n" \
	"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
/* an endpoint line: address and the rest of its mapping */
#define EP(ip, rest) "- {addresses: [" ip "]" rest "}\n"
#define TERMINATING ", conditions: {ready: false, serving: true, terminating: true}"
#define NOT_SERVING ", conditions: {ready: false, serving: false, terminating: true}"
#define NOT_READY ", conditions: {ready: false}"

struct policy_case {
	const char *name;
	const char *yaml;
	const char *node, *zone;	/* the node translating; NULL: not given */
	uint32_t max;			/* endpoints-per-service; 0: default */
	const char *want;		/* endpoints, "10.0.0.1 10.0.0.2" ("" none) */
	const char *policy;		/* tr_ep_policy_str() */
	const char *diag;		/* a diagnostic that must be there, or NULL */
};

static const struct policy_case cases[] = {
	/* internalTrafficPolicy: Local */
	{ "local_other_node_refused",
	  SVC_HEAD("  internalTrafficPolicy: Local\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n3"),
	  "n1", NULL, 0, "", "local", NULL },
	{ "local_one_local",
	  SVC_HEAD("  internalTrafficPolicy: Local\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n1")
	  EP("10.0.0.3", ", nodeName: n1" NOT_READY),
	  "n1", NULL, 0, "10.0.0.2", "local", NULL },
	{ "local_without_node_name_all_local",
	  SVC_HEAD("  internalTrafficPolicy: Local\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n1"),
	  NULL, NULL, 0, "10.0.0.1 10.0.0.2", "local", NULL },
	{ "local_terminating_fallback_stays_local",
	  SVC_HEAD("  internalTrafficPolicy: Local\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n1" TERMINATING),
	  "n1", NULL, 0, "10.0.0.2", "local,terminating", NULL },
	{ "local_ignores_topology",
	  SVC_HEAD("  internalTrafficPolicy: Local\n  trafficDistribution: PreferClose\n")
	  SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n1, zone: b") EP("10.0.0.2", ", nodeName: n2, zone: a"),
	  "n1", "a", 0, "10.0.0.1", "local", NULL },
	{ "cluster_policy_explicit",
	  SVC_HEAD("  internalTrafficPolicy: Cluster\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2"),
	  "n1", NULL, 0, "10.0.0.1", "", NULL },
	/* trafficDistribution */
	{ "prefer_close_hints",
	  SVC_HEAD("  trafficDistribution: PreferClose\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: a, hints: {forZones: [{name: b}]}")
	  EP("10.0.0.2", ", zone: b, hints: {forZones: [{name: a}, {name: c}]}")
	  EP("10.0.0.3", ", zone: a, hints: {forZones: [{name: a}]}"),
	  "n1", "a", 0, "10.0.0.2 10.0.0.3", "zone", NULL },
	{ "prefer_close_zone_without_hints",
	  SVC_HEAD("  trafficDistribution: PreferClose\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b") EP("10.0.0.2", ", zone: a") EP("10.0.0.3", ", zone: a"),
	  "n1", "a", 0, "10.0.0.2 10.0.0.3", "zone", NULL },
	{ "prefer_same_zone_only_ready",
	  SVC_HEAD("  trafficDistribution: PreferSameZone\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b") EP("10.0.0.2", ", zone: a" NOT_READY)
	  EP("10.0.0.3", ", zone: a" TERMINATING),
	  "n1", "a", 0, "10.0.0.1", "topology-all", NULL },
	{ "prefer_close_no_zone_match_all",
	  SVC_HEAD("  trafficDistribution: PreferClose\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b") EP("10.0.0.2", ", zone: c"),
	  "n1", "a", 0, "10.0.0.1 10.0.0.2", "topology-all", NULL },
	{ "prefer_close_zone_unknown_all",
	  SVC_HEAD("  trafficDistribution: PreferClose\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b") EP("10.0.0.2", ", zone: a"),
	  "n1", NULL, 0, "10.0.0.1 10.0.0.2", "topology-all", NULL },
	{ "hints_without_traffic_distribution_ignored",
	  SVC_HEAD("") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b, hints: {forZones: [{name: b}]}")
	  EP("10.0.0.2", ", zone: a, hints: {forZones: [{name: a}]}"),
	  "n1", "a", 0, "10.0.0.1 10.0.0.2", "", NULL },
	{ "prefer_same_node_hints",
	  SVC_HEAD("  trafficDistribution: PreferSameNode\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2, zone: a, hints: {forNodes: [{name: n1}]}")
	  EP("10.0.0.2", ", nodeName: n1, zone: a, hints: {forNodes: [{name: n2}]}")
	  EP("10.0.0.3", ", nodeName: n3, zone: b"),
	  "n1", "a", 0, "10.0.0.1", "node", NULL },
	{ "prefer_same_node_node_name",
	  SVC_HEAD("  trafficDistribution: PreferSameNode\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n1"),
	  "n1", NULL, 0, "10.0.0.2", "node", NULL },
	{ "prefer_same_node_falls_back_to_zone",
	  SVC_HEAD("  trafficDistribution: PreferSameNode\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", nodeName: n2, zone: a") EP("10.0.0.2", ", nodeName: n3, zone: b"),
	  "n1", "a", 0, "10.0.0.1", "zone", NULL },
	{ "unknown_traffic_distribution_warned",
	  SVC_HEAD("  trafficDistribution: PreferFar\n") SLICE_HEAD("s-1")
	  EP("10.0.0.1", ", zone: b") EP("10.0.0.2", ", zone: a"),
	  "n1", "a", 0, "10.0.0.1 10.0.0.2", "", "spec.trafficDistribution" },
	/* terminating fallback */
	{ "terminating_fallback",
	  SVC_HEAD("") SLICE_HEAD("s-1")
	  EP("10.0.0.1", TERMINATING) EP("10.0.0.2", NOT_SERVING) EP("10.0.0.3", TERMINATING)
	  EP("10.0.0.4", NOT_READY),
	  "n1", NULL, 0, "10.0.0.1 10.0.0.3", "terminating", NULL },
	{ "terminating_fallback_ends_with_a_ready_one",
	  SVC_HEAD("") SLICE_HEAD("s-1")
	  EP("10.0.0.1", TERMINATING) EP("10.0.0.3", TERMINATING) EP("10.0.0.5", ""),
	  "n1", NULL, 0, "10.0.0.5", "", NULL },
	{ "not_serving_is_no_fallback",
	  SVC_HEAD("") SLICE_HEAD("s-1") EP("10.0.0.1", NOT_SERVING),
	  "n1", NULL, 0, "", "", NULL },
	/* several slices */
	{ "slices_merged_duplicates_once",
	  SVC_HEAD("") SLICE_HEAD("s-1") EP("10.0.0.2", "") EP("10.0.0.1", "")
	  SLICE_HEAD("s-2") EP("10.0.0.2", "") EP("10.0.0.3", ""),
	  "n1", NULL, 0, "10.0.0.1 10.0.0.2 10.0.0.3", "", NULL },
	{ "duplicate_ready_in_one_slice_wins",
	  SVC_HEAD("") SLICE_HEAD("s-1") EP("10.0.0.1", TERMINATING)
	  SLICE_HEAD("s-2") EP("10.0.0.1", "") EP("10.0.0.2", TERMINATING),
	  "n1", NULL, 0, "10.0.0.1", "", NULL },
	/* the cap: the first by address, a warning */
	{ "endpoints_per_service_cap",
	  SVC_HEAD("") SLICE_HEAD("s-1") EP("10.0.0.3", "") EP("10.0.0.1", "") EP("10.0.0.2", ""),
	  "n1", NULL, 2, "10.0.0.1 10.0.0.2", "", "more than 2 usable endpoints" },
};

static void endpoints_string(const struct tr_endpoint_set *set, char *buf, size_t len)
{
	char a[64];
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; set && i < set->nr && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%s", i ? " " : "",
			      ip_addr_str(&set->items[i].addr, a, sizeof(a)));
}

static void run_case(const struct policy_case *c)
{
	const struct tr_port *p;
	char got[512], pol[96];
	struct tfx f;

	tfx_init(&f);
	f.opts = (struct tr_opts){ .node_name = c->node, .zone = c->zone,
				   .max_endpoints = c->max };
	if (!ASSERT_OK(tfx_load(&f, "case.yaml", c->yaml), "load") ||
	    !ASSERT_OK(tfx_translate(&f), "translate"))
		goto out;
	p = tr_find_port(&f.res, "app", "s", 80);
	if (!ASSERT_OK_PTR(p, "port app/s:80"))
		goto out;
	endpoints_string(p->self.endpoints, got, sizeof(got));
	ASSERT_STREQ(got, c->want, "endpoints");
	ASSERT_STREQ(tr_ep_policy_str(p->self.endpoints->policy, pol, sizeof(pol)), c->policy,
		     "policy");
	ASSERT_EQ(p->self.state, c->want[0] ? TR_BACKEND_OK : TR_BACKEND_NO_ENDPOINTS, "state");
	ASSERT_EQ(p->self.endpoints->truncated, c->max != 0, "truncated");
	if (c->diag)
		ASSERT_OK_PTR(diag_find(&f.dg, c->diag), c->diag);
out:
	tfx_free(&f);
}

void test_translate_svc_policy(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test__start_subtest(cases[i].name))
			run_case(&cases[i]);
}

/*
 * A route's backendRef keeps that Service's own policy: the backend's
 * endpoints are what a plain client of the backend Service gets here.
 */
void test_translate_svc_policy_route_backend(void)
{
	static const char yaml[] =
		SVC_HEAD("  internalTrafficPolicy: Local\n") SLICE_HEAD("s-1")
		EP("10.0.0.1", ", nodeName: n2") EP("10.0.0.2", ", nodeName: n1")
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: front, namespace: app}\n"
		"spec:\n  clusterIP: 10.96.5.2\n  ports: [{name: http, port: 80}]\n"
		"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: r, namespace: app}\n"
		"spec:\n  parentRefs: [{group: \"\", kind: Service, name: front, port: 80}]\n"
		"  rules: [{backendRefs: [{name: s, port: 80}]}]\n";
	const struct tr_class *cls;
	char got[128];
	struct tfx f;

	tfx_init(&f);
	f.opts.node_name = "n1";
	if (!ASSERT_OK(tfx_load(&f, "case.yaml", yaml), "load") ||
	    !ASSERT_OK(tfx_translate(&f), "translate"))
		goto out;
	cls = tfx_class(&f, "app", "front", 80, NULL);
	if (!ASSERT_OK_PTR(cls, "class") || !ASSERT_EQ(cls->l4.nr, 1, "backends"))
		goto out;
	endpoints_string(cls->l4.items[0].backend->endpoints, got, sizeof(got));
	ASSERT_STREQ(got, "10.0.0.2", "backend endpoints");
	ASSERT_EQ(cls->l4.items[0].backend->endpoints->policy, TR_EP_LOCAL, "backend policy");
out:
	tfx_free(&f);
}

/*
 * What gammad leaves to kube-proxy or the node: only ClusterIPs get a
 * frontend. Headless and ExternalName Services have none; a NodePort /
 * LoadBalancer Service with externalIPs gets its ClusterIP only, so a
 * connect() to a node IP:nodePort, an external IP or a load balancer
 * address is never rewritten. The image carries the endpoint policy.
 */
void test_translate_svc_untouched(void)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: app}\n"
		"spec:\n  type: LoadBalancer\n  clusterIP: 10.96.5.3\n"
		"  externalIPs: [192.0.2.10]\n  internalTrafficPolicy: Local\n"
		"  ports: [{name: http, port: 80, nodePort: 30080}]\n"
		"status:\n  loadBalancer:\n    ingress: [{ip: 192.0.2.20}]\n"
		"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: lb-1, namespace: app, labels: {kubernetes.io/service-name: lb}}\n"
		"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
		EP("10.0.0.1", ", nodeName: n1")
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: np, namespace: app}\n"
		"spec:\n  type: NodePort\n  clusterIP: 10.96.5.4\n"
		"  ports: [{name: http, port: 80, nodePort: 30081}]\n"
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: app}\n"
		"spec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n"
		"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: hl-1, namespace: app, labels: {kubernetes.io/service-name: hl}}\n"
		"addressType: IPv4\nports: [{name: http, port: 80}]\nendpoints:\n"
		EP("10.0.0.5", "")
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: en, namespace: app}\n"
		"spec:\n  type: ExternalName\n  externalName: example.com\n";
	struct img img = { 0 };
	bool have_img = false;
	char a[64], got[256] = "";
	size_t n = 0;
	struct tfx f;

	tfx_init(&f);
	f.opts.node_name = "n1";
	if (!ASSERT_OK(tfx_load(&f, "case.yaml", yaml), "load") ||
	    !ASSERT_OK(tfx_translate(&f), "translate"))
		goto out;
	ASSERT_NULL(tr_find_port(&f.res, "app", "hl", 80), "headless: no port");
	ASSERT_NULL(tr_find_port(&f.res, "app", "en", 80), "ExternalName: no port");
	if (!ASSERT_OK(img_build(&f.m, &f.res, &img), "image"))
		goto out;
	have_img = true;
	for (size_t i = 0; i < img.nr_frontends; i++)
		n += snprintf(got + n, sizeof(got) - n, "%s%s:%u", i ? " " : "",
			      ip_addr_str(&img.frontends[i].addr, a, sizeof(a)),
			      img.frontends[i].port);
	/* in id order: look for each */
	ASSERT_EQ(img.nr_frontends, 2, "frontends: the two ClusterIPs only");
	ASSERT_HAS_SUBSTR(got, "10.96.5.3:80", "LoadBalancer ClusterIP");
	ASSERT_HAS_SUBSTR(got, "10.96.5.4:80", "NodePort ClusterIP");
	ASSERT_NULL(strstr(got, "192.0.2."), "no externalIP or load balancer address");
	for (size_t i = 0; i < img.nr_backends; i++)
		if (!strcmp(img.backends[i].name, "lb"))
			ASSERT_EQ(img.backends[i].policy, TR_EP_LOCAL, "image: lb policy");
out:
	if (have_img)
		img_free(&img);
	tfx_free(&f);
}

/* Service app/s with n endpoints 10.1.x.y, per slices of 100, the last
 * `dups` of each slice repeated at the head of the next. */
static char *big_service(size_t n, size_t dups)
{
	size_t cap = 256 + n * 48 + (n / 100 + 1) * (256 + dups * 48), len = 0;
	char *y = malloc(cap);

	if (!y)
		return NULL;
	len += snprintf(y + len, cap - len, "%s", SVC_HEAD(""));
	for (size_t i = 0; i < n; i++) {
		if (i % 100 == 0) {
			len += snprintf(y + len, cap - len,
					"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
					"metadata: {name: s-%zu, namespace: app, labels: {kubernetes.io/service-name: s}}\n"
					"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n",
					i / 100);
			for (size_t d = i >= dups ? i - dups : i; d < i; d++)
				len += snprintf(y + len, cap - len, "- {addresses: [10.1.%zu.%zu]}\n",
						d / 250, d % 250 + 1);
		}
		len += snprintf(y + len, cap - len, "- {addresses: [10.1.%zu.%zu]}\n", i / 250,
				i % 250 + 1);
	}
	return y;
}

/*
 * Kubernetes' scalability thresholds: 5,000 endpoints per Service over many
 * slices are all used (duplicates between slices once); over the default of
 * 16,384 the first 16,384 are used, with a warning and a note in the
 * ResolvedRefs condition of a route that sends there.
 */
void test_translate_svc_endpoints_scale(void)
{
	static const char route[] =
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: front, namespace: app}\n"
		"spec:\n  clusterIP: 10.96.5.2\n  ports: [{name: http, port: 80}]\n"
		"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: r, namespace: app}\n"
		"spec:\n  parentRefs: [{group: \"\", kind: Service, name: front, port: 80}]\n"
		"  rules: [{backendRefs: [{name: s, port: 80}]}]\n";
	const struct tr_parent_status *ps;
	const struct tr_condition *cond;
	const struct tr_port *p;
	char *y = NULL;
	struct tfx f;

	tfx_init(&f);
	y = big_service(5000, 10);
	if (!ASSERT_OK_PTR(y, "yaml") || !ASSERT_OK(tfx_load(&f, "big.yaml", y), "load 5,000") ||
	    !ASSERT_OK(tfx_translate(&f), "translate"))
		goto out;
	p = tr_find_port(&f.res, "app", "s", 80);
	if (ASSERT_OK_PTR(p, "port")) {
		ASSERT_EQ(p->self.endpoints->nr, 5000, "5,000 endpoints over 50 slices, once each");
		ASSERT_FALSE(p->self.endpoints->truncated, "not truncated");
	}
	tfx_free(&f);
	free(y);

	tfx_init(&f);
	y = big_service(20000, 0);
	if (!ASSERT_OK_PTR(y, "yaml") || !ASSERT_OK(tfx_load(&f, "big.yaml", y), "load 20,000") ||
	    !ASSERT_OK(tfx_load(&f, "route.yaml", route), "route") ||
	    !ASSERT_OK(tfx_translate(&f), "translate"))
		goto out;
	p = tr_find_port(&f.res, "app", "s", 80);
	if (ASSERT_OK_PTR(p, "port")) {
		ASSERT_EQ(p->self.endpoints->nr, TR_MAX_ENDPOINTS, "the default cap");
		ASSERT_EQ(TR_MAX_ENDPOINTS, 16384, "the default is 16,384");
		ASSERT_TRUE(p->self.endpoints->truncated, "truncated");
	}
	ASSERT_OK_PTR(diag_find(&f.dg, "more than 16384 usable endpoints"), "a warning");
	ps = tfx_parent(&f, ROUTE_HTTP, "app", "r", 0);
	cond = ps ? tr_condition(ps, "ResolvedRefs") : NULL;
	if (ASSERT_OK_PTR(cond, "ResolvedRefs")) {
		ASSERT_TRUE(cond->status, "ResolvedRefs stays True");
		ASSERT_HAS_SUBSTR(cond->message, "more endpoints than the 16384 used",
				  "the condition says so");
	}
out:
	free(y);
	tfx_free(&f);
}
