// SPDX-License-Identifier: Apache-2.0
/*
 * Table-driven route status cases: manifests, a route and parentRef, and the
 * exact "Status:Reason" of Accepted, ResolvedRefs and PartiallyInvalid.
 */
#include "lib/translate_fixture.h"
#include "translate/status.h"
#include "test_progs.h"
#include "translate_cases.h"

struct status_case {
	const char *name;
	const char *yaml;
	enum gapi_route_kind kind;
	const char *route;		/* namespace/name */
	const char *accepted, *resolved, *partial;	/* "absent" when not set */
	const char *message;		/* substring of a condition message, or NULL */
	size_t parent;
};

#define SCASE(n, y, k, r, acc, res, part, ...) \
	{ .name = n, .yaml = y, .kind = k, .route = r, .accepted = acc, .resolved = res, \
	  .partial = part, __VA_ARGS__ }
#define OK_RESOLVED "True:ResolvedRefs"

static const struct status_case cases[] = {
	SCASE("accepted", HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP,
	      "app/r", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("service_missing",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: nope}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:NoMatchingParent",
	      OK_RESOLVED, "absent", .message = "app/nope not found"),
	SCASE("port_missing", HR("r", "app") PARENT_PORT("82") "  rules:\n" RULE_ANY(BE("b1")),
	      ROUTE_HTTP, "app/r", "False:NoMatchingParent", OK_RESOLVED, "absent",
	      .message = "no port 82"),
	SCASE("section_missing",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: a, sectionName: nope}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:NoMatchingParent",
	      OK_RESOLVED, "absent"),
	SCASE("port_and_section_must_agree",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: a, port: 80, sectionName: admin}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:NoMatchingParent",
	      OK_RESOLVED, "absent"),
	SCASE("port_and_section_agree",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: a, port: 81, sectionName: admin}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "True:Accepted", OK_RESOLVED,
	      "absent"),
	SCASE("parent_kind_unsupported",
	      HR("r", "app") "  parentRefs: [{group: apps, kind: Deployment, name: a}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:UnsupportedValue",
	      OK_RESOLVED, "absent"),
	SCASE("parent_headless",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: headless}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:UnsupportedValue",
	      OK_RESOLVED, "absent", .message = "headless"),
	SCASE("parent_external_name",
	      HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: ext}]\n"
	      "  rules:\n" RULE_ANY(BE("b1")), ROUTE_HTTP, "app/r", "False:UnsupportedValue",
	      OK_RESOLVED, "absent"),
	SCASE("parent_udp_port", HR("r", "app") PARENT_PORT("53") "  rules:\n" RULE_ANY(BE("b1")),
	      ROUTE_HTTP, "app/r", "False:UnsupportedValue", OK_RESOLVED, "absent",
	      .message = "UDP"),
	SCASE("conflicted_http_loses_to_grpc",
	      HR("h", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b1"))
	      GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b2")), ROUTE_HTTP,
	      "app/h", "False:Conflicted", OK_RESOLVED, "absent"),
	SCASE("grpc_winner_accepted",
	      HR("h", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b1"))
	      GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b2")), ROUTE_GRPC,
	      "app/g", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("conflicted_tcp_loses_to_tls",
	      TCPR("t", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	      TLSR("s", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b2")), ROUTE_TCP, "app/t",
	      "False:Conflicted", OK_RESOLVED, "absent"),
	SCASE("conflict_is_per_class",
	      HR("h", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	      TCPR("t", "client") PARENT_A80 "  rules:\n" RULE_ANY("{name: b2, namespace: app, port: 80}"),
	      ROUTE_TCP, "client/t", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("accepted_where_not_conflicted",
	      HR("h", "app") PARENT_A "  rules:\n" RULE_ANY(BE("b1"))
	      GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b2")), ROUTE_HTTP,
	      "app/h", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("incompatible_filters_all_rules",
	      HR("r", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestRedirect, "
	      "requestRedirect: {}}, {type: URLRewrite, urlRewrite: {hostname: x}}]\n", ROUTE_HTTP,
	      "app/r", "False:IncompatibleFilters", OK_RESOLVED, "absent"),
	SCASE("duplicate_filter_type",
	      HR("r", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestHeaderModifier, "
	      "requestHeaderModifier: {set: [{name: a, value: b}]}}, {type: RequestHeaderModifier, "
	      "requestHeaderModifier: {remove: [a]}}]\n    backendRefs: [" BE("b1") "]\n",
	      ROUTE_HTTP, "app/r", "False:IncompatibleFilters", OK_RESOLVED, "absent"),
	SCASE("partially_invalid",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/"), BE("b1"))
	      "  - filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}]\n",
	      ROUTE_HTTP, "app/r", "True:Accepted", OK_RESOLVED, "True:UnsupportedValue",
	      .message = "Dropped Rule 1"),
	SCASE("unsupported_filter_only_rule",
	      HR("r", "app") PARENT_A80 "  rules:\n"
	      "  - filters: [{type: CORS, cors: {}}]\n", ROUTE_HTTP, "app/r",
	      "False:UnsupportedValue", OK_RESOLVED, "absent"),
	SCASE("invalid_regex_dropped",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/"), BE("b1"))
	      RULE("{path: {type: RegularExpression, value: \"([\"}}", BE("b2")), ROUTE_HTTP,
	      "app/r", "True:Accepted", OK_RESOLVED, "True:UnsupportedValue",
	      .message = "invalid regular expression"),
	SCASE("prefix_rewrite_needs_prefix_match",
	      HR("r", "app") PARENT_A80 "  rules:\n  - matches: [" EXACT("/x") "]\n"
	      "    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, "
	      "replacePrefixMatch: /y}}}]\n    backendRefs: [" BE("b1") "]\n", ROUTE_HTTP, "app/r",
	      "False:IncompatibleFilters", OK_RESOLVED, "absent"),
	SCASE("duplicate_rule_name",
	      HR("r", "app") PARENT_A80 "  rules:\n  - name: x\n    backendRefs: [" BE("b1") "]\n"
	      "  - name: x\n    backendRefs: [" BE("b2") "]\n", ROUTE_HTTP, "app/r",
	      "True:Accepted", OK_RESOLVED, "True:UnsupportedValue"),
	SCASE("backend_invalid_kind",
	      HR("r", "app") PARENT_A80 "  rules:\n"
	      RULE_ANY("{group: example.com, kind: Thing, name: t, port: 80}"), ROUTE_HTTP, "app/r",
	      "True:Accepted", "False:InvalidKind", "absent"),
	SCASE("backend_not_found", HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("missing")),
	      ROUTE_HTTP, "app/r", "True:Accepted", "False:BackendNotFound", "absent",
	      .message = "app/missing not found"),
	SCASE("backend_port_not_found",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: b1, port: 81}"), ROUTE_HTTP,
	      "app/r", "True:Accepted", "False:BackendNotFound", "absent", .message = "no port 81"),
	SCASE("backend_udp_port",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: a, port: 53}"), ROUTE_HTTP,
	      "app/r", "True:Accepted", "False:UnsupportedProtocol", "absent"),
	SCASE("backend_external_name",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("ext")), ROUTE_HTTP, "app/r",
	      "True:Accepted", "False:BackendNotFound", "absent"),
	SCASE("backend_no_endpoints_resolves",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("bempty")), ROUTE_HTTP, "app/r",
	      "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("cross_namespace_backend_resolves",
	      HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: o, namespace: other, port: 80}"),
	      ROUTE_HTTP, "app/r", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("consumer_route_accepted",
	      HR("c", "client") PARENT_A80 "  rules:\n" RULE_ANY("{name: b1, namespace: app, port: 80}"),
	      ROUTE_HTTP, "client/c", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("second_parent_has_own_status",
	      HR("r", "app") "  parentRefs:\n  - {group: \"\", kind: Service, name: a, port: 80}\n"
	      "  - {group: \"\", kind: Service, name: gone}\n  rules:\n" RULE_ANY(BE("b1")),
	      ROUTE_HTTP, "app/r", "False:NoMatchingParent", OK_RESOLVED, "absent", .parent = 1),
	SCASE("tls_route_accepted", TLSR("s", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")),
	      ROUTE_TLS, "app/s", "True:Accepted", OK_RESOLVED, "absent"),
	SCASE("tls_route_v1", ROUTE_HEAD("TLSRoute", "v1", "s", "app", "") PARENT_A80
	      "  hostnames: [s.example]\n  rules:\n" RULE_ANY(BE("b1")), ROUTE_TLS, "app/s",
	      "True:Accepted", OK_RESOLVED, "absent"),
};

static void run_case(const struct status_case *c)
{
	char ns[64], *slash;
	const struct tr_parent_status *p;
	struct tfx f;
	bool found = false;

	snprintf(ns, sizeof(ns), "%s", c->route);
	slash = strchr(ns, '/');
	*slash = 0;
	if (!ASSERT_OK(tfx_setup(&f, c->yaml), "setup"))
		goto out;
	ASSERT_EQ(f.dg.nr_errors, 0, "input errors");
	p = tfx_parent(&f, c->kind, ns, slash + 1, c->parent);
	if (!ASSERT_OK_PTR(p, "parent status"))
		goto out;
	ASSERT_STREQ(tfx_cond(p, STATUS_ACCEPTED), c->accepted, "Accepted");
	ASSERT_STREQ(tfx_cond(p, STATUS_RESOLVED_REFS), c->resolved, "ResolvedRefs");
	ASSERT_STREQ(tfx_cond(p, STATUS_PARTIALLY_INVALID), c->partial, "PartiallyInvalid");
	for (size_t i = 0; c->message && i < p->nr_conditions; i++)
		found |= strstr(p->conditions[i].message, c->message) != NULL;
	if (c->message && !ASSERT_TRUE(found, "message"))
		for (size_t i = 0; i < p->nr_conditions; i++)
			test__printf("  %s\n", p->conditions[i].message);
out:
	tfx_free(&f);
}

void test_translate_status(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test__start_subtest(cases[i].name))
			run_case(&cases[i]);
}

/* A Gateway parentRef belongs to a gateway controller: no status from us. */
void test_translate_status_gateway_parent(void)
{
	struct tfx f;
	const struct tr_route_status *rs;

	if (!ASSERT_OK(tfx_setup(&f, HR("r", "app") "  parentRefs: [{name: gw}]\n  rules:\n"
				 RULE_ANY(BE("b1"))), "setup"))
		goto out;
	rs = tr_find_route(&f.res, ROUTE_HTTP, "app", "r");
	if (ASSERT_OK_PTR(rs, "route"))
		ASSERT_EQ(rs->nr_parents, 0, "parents reported");
out:
	tfx_free(&f);
}

/* Too many rules on one port and class: the routes that do not fit are not Accepted. */
void test_translate_status_rule_limit(void)
{
	size_t routes = TR_MAX_ENTRIES / GAPI_MAX_RULES + 1;
	char *yaml = NULL, name[32];
	size_t len = 0;
	FILE *out = open_memstream(&yaml, &len);
	const struct tr_parent_status *p;
	const struct tr_class *cls;
	struct tfx f;

	for (size_t r = 0; r < routes; r++) {
		fprintf(out, HR("r%03zu", "app") PARENT_A80 "  rules:\n", r);
		for (int i = 0; i < GAPI_MAX_RULES; i++)
			fprintf(out, RULE(EXACT("/r%zu/%d"), BE("b1")), r, i);
	}
	fclose(out);
	if (!ASSERT_OK(tfx_setup(&f, yaml), "setup"))
		goto out;
	cls = tfx_class(&f, "app", "a", 80, NULL);
	if (ASSERT_OK_PTR(cls, "class"))
		ASSERT_EQ(cls->nr_entries, TR_MAX_ENTRIES, "entries");
	p = tfx_parent(&f, ROUTE_HTTP, "app", "r000", 0);
	ASSERT_STREQ(tfx_cond(p, STATUS_ACCEPTED), "True:Accepted", "first route");
	snprintf(name, sizeof(name), "r%03zu", routes - 1);
	p = tfx_parent(&f, ROUTE_HTTP, "app", name, 0);
	ASSERT_STREQ(tfx_cond(p, STATUS_ACCEPTED), "False:UnsupportedValue", "last route");
out:
	free(yaml);
	tfx_free(&f);
}
