// SPDX-License-Identifier: Apache-2.0
/*
 * Bad input: each case loads a document next to a good route and expects one
 * diagnostic naming file:line: field, the bad object dropped, and the good
 * route still served.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "test_progs.h"
#include "lib/translate_fixture.h"
#include "translate_cases.h"

#define GOOD HR("good", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))

struct input_case {
	const char *name;
	const char *yaml;		/* loaded as "case.yaml" after the base */
	const char *diag;		/* expected diagnostic substring, NULL: none */
	size_t http_routes;		/* HTTPRoutes in the model afterwards */
};

#define ICASE(n, y, d, nr) { .name = n, .yaml = y, .diag = d, .http_routes = nr }

static const struct input_case cases[] = {
	ICASE("malformed_yaml", "a: [b\n", "case.yaml:2:", 0),
	ICASE("weight_out_of_range",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "1000001")),
	      "case.yaml:16: spec.rules[0].backendRefs[0].weight: must be an integer in 0..1000000", 1),
	ICASE("negative_weight",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "-1")),
	      "spec.rules[0].backendRefs[0].weight", 1),
	ICASE("parent_port_out_of_range",
	      GOOD HR("bad", "app") PARENT_PORT("70000") "  rules:\n" RULE_ANY(BE("b1")),
	      "case.yaml:14: spec.parentRefs[0].port: must be an integer in 1..65535", 1),
	ICASE("backend_port_zero",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: b1, port: 0}"),
	      "spec.rules[0].backendRefs[0].port", 1),
	ICASE("backend_port_required",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: b1}"),
	      "port is required for a Service reference", 1),
	ICASE("weight_wrong_type",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: b1, port: 80, weight: \"5\"}"),
	      "spec.rules[0].backendRefs[0].weight: must be an integer", 1),
	ICASE("rules_wrong_type", GOOD HR("bad", "app") PARENT_A80 "  rules: nope\n",
	      "spec.rules: must be a list", 1),
	ICASE("too_many_rules",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n"
	      RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1"))
	      RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1"))
	      RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1"))
	      RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1")) RULE_ANY(BE("b1"))
	      RULE_ANY(BE("b1")), "spec.rules: has 17 items, at most 16 allowed", 1),
	ICASE("name_too_long",
	      GOOD "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: "
	      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	      "  namespace: app\nspec:\n" PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")),
	      "metadata.name", 1),
	ICASE("backend_name_too_long",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE_ANY("{port: 80, name: "
	      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}"),
	      "spec.rules[0].backendRefs[0].name: longer than 253 characters", 1),
	ICASE("duplicate_route", GOOD GOOD, "duplicate HTTPRoute app/good (first defined at case.yaml:2)",
	      1),
	ICASE("path_not_absolute",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("relative"), BE("b1")),
	      "spec.rules[0].matches[0].path.value: must be an absolute path", 1),
	ICASE("unknown_match_type",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n"
	      RULE("{path: {type: Glob, value: /x}}", BE("b1")),
	      "spec.rules[0].matches[0].path.type: unsupported value \"Glob\"", 1),
	ICASE("bad_redirect_status",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestRedirect, "
	      "requestRedirect: {statusCode: 304}}]\n", "statusCode must be 301, 302, 303, 307 or 308",
	      1),
	ICASE("filter_body_missing",
	      GOOD HR("bad", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestHeaderModifier}]\n",
	      "spec.rules[0].filters[0].requestHeaderModifier: required", 1),
	ICASE("document_not_a_mapping", GOOD "---\n- a\n- b\n", "document must be a mapping", 1),
	ICASE("missing_kind", GOOD "---\napiVersion: v1\nmetadata: {name: x}\n",
	      "apiVersion and kind must be strings", 1),
	ICASE("unknown_kind_ignored",
	      GOOD "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", NULL, 1),
	ICASE("unserved_version",
	      GOOD ROUTE_HEAD("HTTPRoute", "v1alpha1", "old", "app", "") PARENT_A80 "  rules:\n"
	      RULE_ANY(BE("b1")), "is not served", 1),
	ICASE("unknown_fields_pruned",
	      GOOD HR("extra", "app") PARENT_A80 "  bogus: {x: 1}\n  rules:\n"
	      "  - unknownField: 3\n    backendRefs: [" BE("b1") "]\n", NULL, 2),
	ICASE("json_input",
	      "{\"apiVersion\": \"gateway.networking.k8s.io/v1\", \"kind\": \"HTTPRoute\","
	      " \"metadata\": {\"name\": \"j\", \"namespace\": \"app\"}, \"spec\": {\"parentRefs\":"
	      " [{\"group\": \"\", \"kind\": \"Service\", \"name\": \"a\"}], \"rules\":"
	      " [{\"backendRefs\": [{\"name\": \"b1\", \"port\": 80}]}]}}", NULL, 1),
	ICASE("list_kind",
	      "apiVersion: v1\nkind: List\nitems:\n"
	      "- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
	      "  metadata: {name: l1, namespace: app}\n  spec: {parentRefs: [{group: \"\", kind: Service, name: a}], rules: [{backendRefs: [" BE("b1") "]}]}\n"
	      "- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
	      "  metadata: {name: l2, namespace: app}\n  spec: {rules: [{backendRefs: [" BE("b1") "]}]}\n",
	      NULL, 2),
	ICASE("bad_service_does_not_stop_routes",
	      GOOD "---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: app}\n"
	      "spec:\n  ports: [{port: 99999}]\n", "spec.ports[0].port", 1),
	ICASE("grpc_method_needs_field",
	      GOOD GR("g", "app") PARENT_PORT("9000") "  rules:\n"
	      "  - matches: [{method: {type: Exact}}]\n", "one of service or method is required", 1),
	ICASE("reference_grant_loads",
	      GOOD "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
	      "metadata: {name: g, namespace: other}\nspec:\n"
	      "  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: app}]\n"
	      "  to: [{group: \"\", kind: Service}]\n", NULL, 1),
	ICASE("reference_grant_needs_to",
	      GOOD "---\napiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\n"
	      "metadata: {name: g, namespace: other}\nspec:\n"
	      "  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: app}]\n",
	      "spec.to: at least one entry is required", 1),
};

static void run_case(const struct input_case *c)
{
	const struct diag_entry *e;
	struct tfx f;

	if (!ASSERT_OK(tfx_setup(&f, c->yaml), "setup"))
		goto out;
	if (c->diag) {
		e = diag_find(&f.dg, c->diag);
		if (!ASSERT_OK_PTR(e, "diagnostic"))
			for (size_t i = 0; i < f.dg.nr; i++)
				test__printf("  got: %s\n", f.dg.entries[i].msg);
		ASSERT_LE(f.dg.nr, 1, "reported once");
	} else {
		ASSERT_EQ(f.dg.nr_errors, 0, "no errors");
	}
	ASSERT_EQ(f.m.routes[ROUTE_HTTP].nr, c->http_routes, "HTTPRoutes kept");
	if (c->http_routes)
		ASSERT_STREQ(tfx_outcome(tfx_class(&f, "app", "a", 80, NULL), "GET /", 0),
			     "200 app/b1:80", "still served");
out:
	tfx_free(&f);
}

void test_translate_input(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test__start_subtest(cases[i].name))
			run_case(&cases[i]);
}

/* Directories: walked in order; a symlink cycle is walked once (each real directory once). */
void test_translate_input_dir_cycle(void)
{
	char dir[] = "/tmp/gammad-cycle-XXXXXX", path[128];
	struct tfx f;
	FILE *out;

	tfx_init(&f);
	if (!ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp"))
		return;
	snprintf(path, sizeof(path), "%s/route.yaml", dir);
	out = fopen(path, "w");
	if (ASSERT_OK_PTR(out, "write")) {
		fputs(GOOD, out);
		fclose(out);
	}
	snprintf(path, sizeof(path), "%s/loop", dir);
	ASSERT_OK(symlink(".", path), "symlink");
	ASSERT_OK(tfx_load(&f, "base.yaml", tfx_base_yaml), "base");
	ASSERT_OK(manifest_load_path(&f.m, dir, &f.dg), "load dir");
	ASSERT_EQ(f.m.routes[ROUTE_HTTP].nr, 1, "route loaded once");
	ASSERT_EQ(f.dg.nr, 0, "no copies read, nothing to report");
	ASSERT_ERR(manifest_load_path(&f.m, "/nonexistent/x.yaml", &f.dg), "missing path");
	unlink(path);
	snprintf(path, sizeof(path), "%s/route.yaml", dir);
	unlink(path);
	rmdir(dir);
	tfx_free(&f);
}

/* A file over the size limit is rejected as a whole, with its name. */
void test_translate_input_gigantic(void)
{
	size_t len = YDOC_MAX_FILE_BYTES + 1;
	char *buf = malloc(len);
	struct tfx f;

	tfx_init(&f);
	if (!ASSERT_OK_PTR(buf, "alloc"))
		return;
	memset(buf, '#', len);
	ASSERT_OK(manifest_load_buf(&f.m, "huge.yaml", buf, len, &f.dg), "load");
	ASSERT_OK_PTR(diag_find(&f.dg, "huge.yaml:1: file too large"), "reported");
	free(buf);
	tfx_free(&f);
}
