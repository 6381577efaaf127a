// SPDX-License-Identifier: Apache-2.0
/*
 * L4 selectors, the map image (stable ids, content addressing, minimal
 * diffs) and the JSON output.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "base/json_writer.h"
#include "image/image.h"
#include "lib/translate_fixture.h"
#include "translate/translate_output.h"
#include "test_progs.h"
#include "translate_cases.h"

struct l4_case {
	const char *name;
	const char *yaml;
	const char *want;		/* "b1:70 b2:30" in order */
	unsigned int flags;
	bool needs_l7;
};

static const struct l4_case l4_cases[] = {
	{ .name = "no_route", .yaml = "", .want = "a:1", .flags = TR_L4_NO_ROUTE },
	{ .name = "plain_rule", .yaml = HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE_ANY(BEW("b1", "70") ", " BEW("b2", "30")), .want = "b1:70 b2:30" },
	{ .name = "same_backends_all_rules", .yaml = HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/x"), BE("b1")) RULE(PREFIX("/y"), BE("b1")), .want = "b1:1",
	  .needs_l7 = true },
	{ .name = "union_of_rules", .yaml = HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/x"), BEW("b1", "2")) RULE(PREFIX("/y"), BEW("b1", "3") ", " BE("b2")),
	  .want = "b1:5 b2:1", .flags = TR_L4_L7_UNENFORCED, .needs_l7 = true },
	{ .name = "catch_all_first", .yaml = TCPR("t", "app") PARENT_A80 "  rules:\n"
	  RULE_ANY(BE("b3")), .want = "b3:1" },
	{ .name = "filters_need_l7", .yaml = HR("r", "app") PARENT_A80 "  rules:\n"
	  "  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: a, value: b}]}}]\n"
	  "    backendRefs: [" BE("b2") "]\n", .want = "b2:1", .needs_l7 = true },
	{ .name = "grpc_weights_pure_l4", .yaml = GR("g", "app") PARENT_A80 "  rules:\n"
	  RULE_ANY(BEW("b1", "7") ", " BEW("b2", "3")), .want = "b1:7 b2:3" },
};

static void l4_string(const struct tr_l4 *l4, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < l4->nr && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%s:%llu", i ? " " : "",
			      l4->items[i].backend->name,
			      (unsigned long long)l4->items[i].weight);
}

void test_translate_l4(void)
{
	for (size_t i = 0; i < sizeof(l4_cases) / sizeof(l4_cases[0]); i++) {
		const struct l4_case *c = &l4_cases[i];
		const struct tr_class *cls;
		struct tfx f;
		char got[256];

		if (!test__start_subtest(c->name))
			continue;
		if (ASSERT_OK(tfx_setup(&f, c->yaml), "setup")) {
			cls = tfx_class(&f, "app", "a", 80, NULL);
			if (ASSERT_OK_PTR(cls, "class")) {
				l4_string(&cls->l4, got, sizeof(got));
				ASSERT_STREQ(got, c->want, "l4 backends");
				ASSERT_EQ(cls->l4.flags, c->flags, "l4 flags");
				ASSERT_EQ(cls->needs_l7, c->needs_l7, "needs L7");
			}
		}
		tfx_free(&f);
	}
}

static int build(struct tfx *f, const char *yaml, struct img *img)
{
	int ret = tfx_setup(f, yaml);

	return ret ? ret : img_build(&f->m, &f->res, img);
}

#define ROUTE_A HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/x"), BE("b1")) \
	RULE_ANY(BE("b2"))
#define ROUTE_B1 "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n" \
	"metadata: {name: rb, namespace: app}\nspec:\n" \
	"  parentRefs: [{group: \"\", kind: Service, name: b1}]\n  rules:\n" RULE_ANY(BE("b3"))

static const struct img_frontend *frontend(const struct img *img, const char *svc,
					   uint16_t port)
{
	for (size_t i = 0; i < img->nr_frontends; i++)
		if (!strcmp(img->frontends[i].svc_name, svc) && img->frontends[i].port == port)
			return &img->frontends[i];
	return NULL;
}

void test_translate_image_deterministic(void)
{
	struct tfx f1, f2;
	struct img a, b;
	struct img_diff d = { 0 };

	if (!ASSERT_OK(build(&f1, ROUTE_A ROUTE_B1, &a), "first") ||
	    !ASSERT_OK(build(&f2, ROUTE_B1 ROUTE_A, &b), "second"))
		return;
	ASSERT_OK(img_diff(&a, &b, &d), "diff");
	ASSERT_EQ(d.nr, 0, "identical images");
	/* a: 4 TCP/UDP ports; b1, b2, b3, bempty: 1; o: 1 */
	ASSERT_EQ(a.nr_frontends, 9, "frontends");
	ASSERT_NEQ(frontend(&a, "a", 80)->classes[0].rule_table, 0, "rule table");
	ASSERT_EQ(frontend(&a, "a", 81)->classes[0].rule_table, 0, "no rule table");
	img_diff_free(&d);
	img_free(&a);
	img_free(&b);
	tfx_free(&f1);
	tfx_free(&f2);
}

/* Changing one route changes its frontend and new content entries only. */
void test_translate_image_diff_one_route(void)
{
	struct tfx f1, f2;
	struct img a, b;
	struct img_diff d = { 0 };

	if (!ASSERT_OK(build(&f1, ROUTE_A ROUTE_B1, &a), "first") ||
	    !ASSERT_OK(build(&f2, ROUTE_A HR("rb", "app")
			     "  parentRefs: [{group: \"\", kind: Service, name: b1}]\n  rules:\n"
			     RULE_ANY(BE("b2")), &b), "second"))
		return;
	ASSERT_OK(img_diff(&a, &b, &d), "diff");
	ASSERT_EQ(d.counts[IMG_FRONTENDS][IMG_CHANGED], 1, "one frontend changed");
	ASSERT_EQ(d.counts[IMG_FRONTENDS][IMG_ADDED], 0, "no frontend added");
	ASSERT_EQ(d.counts[IMG_BACKENDS][IMG_CHANGED], 0, "backends unchanged");
	ASSERT_EQ(d.counts[IMG_NAMESPACES][IMG_CHANGED] + d.counts[IMG_NAMESPACES][IMG_ADDED], 0,
		  "namespaces unchanged");
	ASSERT_EQ(d.counts[IMG_SELECTORS][IMG_ADDED], 0, "b2's selector existed already");
	ASSERT_EQ(d.counts[IMG_SELECTORS][IMG_REMOVED], 1, "the b3 route selector is gone");
	ASSERT_NEQ(frontend(&a, "b1", 80)->generation, frontend(&b, "b1", 80)->generation,
		   "new generation");
	ASSERT_EQ(frontend(&a, "a", 80)->generation, frontend(&b, "a", 80)->generation,
		  "other frontend untouched");
	img_diff_free(&d);
	img_free(&a);
	img_free(&b);
	tfx_free(&f1);
	tfx_free(&f2);
}

/* New endpoints change one backend (and its endpoint set), no frontend. */
void test_translate_image_diff_endpoints(void)
{
	struct tfx f1, f2;
	struct img a, b;
	struct img_diff d = { 0 };

	if (!ASSERT_OK(build(&f1, ROUTE_A, &a), "first") ||
	    !ASSERT_OK(build(&f2, ROUTE_A "---\napiVersion: discovery.k8s.io/v1\n"
			     "kind: EndpointSlice\nmetadata: {name: b2-2, namespace: app, labels: "
			     "{kubernetes.io/service-name: b2}}\naddressType: IPv4\n"
			     "endpoints: [{addresses: [10.0.2.2]}]\n"
			     "ports: [{name: http, port: 8080}]\n", &b), "second"))
		return;
	ASSERT_OK(img_diff(&a, &b, &d), "diff");
	ASSERT_EQ(d.counts[IMG_FRONTENDS][IMG_CHANGED], 0, "frontends unchanged");
	ASSERT_EQ(d.counts[IMG_BACKENDS][IMG_CHANGED], 1, "b2 changed");
	ASSERT_EQ(d.counts[IMG_ENDPOINT_SETS][IMG_ADDED], 1, "new endpoint set");
	ASSERT_EQ(d.counts[IMG_ENDPOINT_SETS][IMG_REMOVED], 1, "old endpoint set");
	img_diff_free(&d);
	img_free(&a);
	img_free(&b);
	tfx_free(&f1);
	tfx_free(&f2);
}

/* Namespace ids are stable, nonzero, and consumer classes carry theirs. */
void test_translate_image_namespaces(void)
{
	struct tfx f1, f2;
	struct img a, b;
	const struct img_frontend *fe;

	if (!ASSERT_OK(build(&f1, HR("c", "client") PARENT_A80 "  rules:\n"
			     RULE_ANY("{name: b1, namespace: app, port: 80}"), &a), "first") ||
	    !ASSERT_OK(build(&f2, "apiVersion: v1\nkind: Namespace\nmetadata: {name: zzz}\n", &b),
		       "second"))
		return;
	ASSERT_NEQ(img_ns_id(&a, "client"), 0, "nonzero");
	ASSERT_EQ(img_ns_id(&a, "client"), img_ns_id(&b, "client"), "stable id");
	ASSERT_EQ(img_ns_id(&a, "app"), img_ns_id(&b, "app"), "stable id app");
	ASSERT_NEQ(img_ns_id(&a, "app"), img_ns_id(&a, "client"), "distinct");
	fe = frontend(&a, "a", 80);
	if (ASSERT_OK_PTR(fe, "frontend") && ASSERT_EQ(fe->nr_classes, 2, "classes")) {
		ASSERT_EQ(fe->classes[0].ns_id, 0, "default class");
		ASSERT_EQ(fe->classes[1].ns_id, img_ns_id(&a, "client"), "consumer class");
	}
	img_free(&a);
	img_free(&b);
	tfx_free(&f1);
	tfx_free(&f2);
}

/* Identical L4 content is one selector; backends flag their failures. */
void test_translate_image_content(void)
{
	struct tfx f;
	struct img img;
	size_t unresolved = 0, empty = 0;

	if (!ASSERT_OK(build(&f, HR("r", "app") PARENT_A "  rules:\n"
			     RULE_ANY(BE("b1") ", " BE("missing") ", " BE("bempty")), &img), "build"))
		return;
	ASSERT_EQ(frontend(&img, "a", 80)->classes[0].l4_selector,
		  frontend(&img, "a", 81)->classes[0].l4_selector, "shared selector");
	for (size_t i = 0; i < img.nr_backends; i++) {
		unresolved += !!(img.backends[i].flags & IMG_BACKEND_UNRESOLVED);
		empty += !!(img.backends[i].flags & IMG_BACKEND_NO_ENDPOINTS);
	}
	ASSERT_EQ(unresolved, 1, "unresolved backend");
	ASSERT_EQ(empty, 1, "backend without endpoints");
	img_free(&img);
	tfx_free(&f);
}

static char *json_of(void (*fn)(struct json_writer *w))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct json_writer w;

	jw_init(&w, out, false);
	fn(&w);
	ASSERT_OK(jw_finish(&w), "finish");
	fclose(out);
	return buf;
}

static void write_escapes(struct json_writer *w)
{
	jw_obj_begin(w);
	jw_kstr(w, "s", "q\"b\\n\n\x01t\té");
	jw_key(w, "a");
	jw_arr_begin(w);
	jw_int(w, -1);
	jw_bool(w, true);
	jw_null(w);
	jw_arr_end(w);
	jw_key(w, "e");
	jw_obj_begin(w);
	jw_obj_end(w);
	jw_obj_end(w);
}

void test_translate_json_writer(void)
{
	char *s = json_of(write_escapes);

	ASSERT_STREQ(s, "{\"s\":\"q\\\"b\\\\n\\n\\u0001t\\té\",\"a\":[-1,true,null],\"e\":{}}",
		     "json");
	free(s);
}

/* The translate JSON is valid (libyaml reads it back) and carries statuses. */
void test_translate_json_output(void)
{
	struct ydoc_set set;
	struct ydoc_error err;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	struct tfx f;

	if (!ASSERT_OK(tfx_setup(&f, ROUTE_HEAD("HTTPRoute", "v1", "r", "app", ", generation: 7")
				 PARENT_A80 "  rules:\n" RULE(PREFIX("/x"), BE("b1"))), "setup"))
		return;
	out = open_memstream(&buf, &len);
	ASSERT_OK(tr_write_json(out, &f.res, &f.dg, true), "write");
	fclose(out);
	if (ASSERT_OK(ydoc_load_buf("out.json", buf, len, &set, &err), "parse back")) {
		yaml_node_t *cond = ymap_path(&set.docs[0], set.docs[0].root, "routes");

		ASSERT_EQ(yseq_len(cond), 1, "routes");
		ydoc_set_free(&set);
	}
	ASSERT_HAS_SUBSTR(buf, "\"observedGeneration\": 7", "observedGeneration");
	ASSERT_HAS_SUBSTR(buf, "\"controllerName\": \"gammad.io/mesh\"", "controllerName");
	ASSERT_HAS_SUBSTR(buf, "\"value\": \"/x\"", "match");
	free(buf);
	tfx_free(&f);
}

/* Dual stack: one frontend per ClusterIP, each class's backends of its family. */
void test_translate_image_dual_stack(void)
{
	static const char yaml[] =
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: d, namespace: app}\n"
		"spec:\n  clusterIPs: [10.96.5.1, \"fd00::5:1\"]\n"
		"  ports: [{name: http, port: 80}]\n"
		"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: d4, namespace: app, labels: {kubernetes.io/service-name: d}}\n"
		"addressType: IPv4\nendpoints: [{addresses: [10.0.5.1]}]\n"
		"ports: [{name: http, port: 8080}]\n"
		"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: d6, namespace: app, labels: {kubernetes.io/service-name: d}}\n"
		"addressType: IPv6\nendpoints: [{addresses: [\"fd00::a:1\"]}, {addresses: [\"fd00::a:2\"]}]\n"
		"ports: [{name: http, port: 8080}]\n";
	size_t v4 = 0, v6 = 0, eps6 = 0;
	struct tfx f;
	struct img img;

	if (!ASSERT_OK(build(&f, yaml, &img), "build"))
		return;
	for (size_t i = 0; i < img.nr_frontends; i++) {
		if (strcmp(img.frontends[i].svc_name, "d"))
			continue;
		v4 += img.frontends[i].addr.family == AF_INET;
		v6 += img.frontends[i].addr.family == AF_INET6;
	}
	ASSERT_EQ(v4, 1, "IPv4 frontend");
	ASSERT_EQ(v6, 1, "IPv6 frontend");
	for (size_t i = 0; i < img.nr_backends; i++) {
		const struct img_backend *b = &img.backends[i];

		if (strcmp(b->name, "d") || b->family != AF_INET6)
			continue;
		for (size_t j = 0; j < img.nr_endpoint_sets; j++)
			if (img.endpoint_sets[j].id == b->endpoint_set)
				eps6 = img.endpoint_sets[j].nr;
	}
	ASSERT_EQ(eps6, 2, "IPv6 endpoints");
	img_free(&img);
	tfx_free(&f);
}

static uint32_t class_selector_flags(const struct img *img, const char *svc, uint16_t port,
				     size_t cls)
{
	const struct img_frontend *fe = frontend(img, svc, port);

	if (!fe || cls >= fe->nr_classes)
		return ~0u;
	for (size_t i = 0; i < img->nr_selectors; i++)
		if (img->selectors[i].id == fe->classes[cls].l4_selector)
			return img->selectors[i].flags;
	return ~0u;
}

/*
 * --http-engine: the L4 selector of a class with HTTPRoute rules is marked
 * for the engine; TCPRoute, GRPCRoute (not yet) and route-less ports are not.
 * Without the option the image is exactly the one img_build() makes.
 */
void test_translate_image_http_engine(void)
{
	static const char yaml[] =
		HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/x"), BE("b1")) RULE_ANY(BE("b2"))
		"---\n" TCPR("t", "app") PARENT_PORT("81") "  rules:\n" RULE_ANY(BE("b3"))
		"---\n" GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b1"));
	struct img_opts on = { .http_engine = true };
	struct img plain, with, off;
	struct img_diff d = { 0 };
	struct tfx f;

	if (!ASSERT_OK(tfx_setup(&f, yaml), "setup"))
		goto out_f;
	if (!ASSERT_OK(img_build(&f.m, &f.res, &plain), "plain"))
		goto out_f;
	if (!ASSERT_OK(img_build_opts(&f.m, &f.res, &on, &with), "with the engine"))
		goto out_plain;
	if (!ASSERT_OK(img_build_opts(&f.m, &f.res, &(struct img_opts){ 0 }, &off), "off"))
		goto out_with;
	ASSERT_TRUE(class_selector_flags(&with, "a", 80, 0) & IMG_SELECTOR_HTTP_ENGINE,
		    "HTTPRoute port: to the engine");
	ASSERT_FALSE(class_selector_flags(&with, "a", 81, 0) & IMG_SELECTOR_HTTP_ENGINE,
		     "TCPRoute port: L4");
	ASSERT_TRUE(class_selector_flags(&with, "a", 9000, 0) & IMG_SELECTOR_HTTP_ENGINE,
		    "GRPCRoute port: to the engine (calls are balanced one by one)");
	ASSERT_FALSE(class_selector_flags(&with, "b1", 80, 0) & IMG_SELECTOR_HTTP_ENGINE,
		     "no route: L4");
	ASSERT_FALSE(class_selector_flags(&plain, "a", 80, 0) & IMG_SELECTOR_HTTP_ENGINE,
		     "img_build: never");
	ASSERT_OK(img_diff(&plain, &off, &d), "diff");
	ASSERT_EQ(d.nr, 0, "option off: the same image");
	img_diff_free(&d);
	ASSERT_OK(img_diff(&plain, &with, &d), "diff");
	ASSERT_GT(d.nr, 0, "option on: the HTTP class's selector differs");
	img_diff_free(&d);
	img_free(&off);
out_with:
	img_free(&with);
out_plain:
	img_free(&plain);
out_f:
	tfx_free(&f);
}
