// SPDX-License-Identifier: Apache-2.0
/*
 * Table-driven request cases: manifests + a request from a client namespace
 * to Service app/a, and the exact outcome "<status> <backend ns/name:port>"
 * ("-" when no backend is chosen). Covers matching, precedence, weights,
 * consumer/producer classes, parentRef ports and route kinds.
 */
#include "test_progs.h"
#include "lib/translate_fixture.h"
#include "translate_cases.h"

struct eval_case {
	const char *name;
	const char *yaml;
	const char *request;		/* "GET /x" */
	const char *want;		/* "200 app/b1:80" */
	const char *client_ns;		/* NULL: a client in app */
	uint16_t port;			/* of Service a; 0: 80 */
	const char *headers[4];
	uint64_t draw;			/* weighted pick */
};

#define CASE(n, y, req, w, ...) \
	{ .name = n, .yaml = y, .request = req, .want = w, __VA_ARGS__ }

static const struct eval_case cases[] = {
	CASE("no_route_plain_kubernetes", "", "GET /", "200 app/a:80" ),
	CASE("no_route_other_port", "", "GET /", "200 app/a:81", .port = 81 ),
	CASE("simple_route", HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")),
	  "GET /anything", "200 app/b1:80" ),
	CASE("exact_beats_prefix",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/foo"), BE("b1"))
	  RULE(EXACT("/foo"), BE("b2")), "GET /foo", "200 app/b2:80" ),
	CASE("exact_beats_longer_prefix",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/foo/bar/baz"), BE("b1"))
	  RULE(EXACT("/foo/bar/baz"), BE("b2")), "GET /foo/bar/baz", "200 app/b2:80" ),
	CASE("exact_needs_equal_path",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(EXACT("/foo"), BE("b2")),
	  "GET /foo/", "404 -" ),
	CASE("longest_prefix_wins",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/foo"), BE("b1"))
	  RULE(PREFIX("/foo/bar"), BE("b2")), "GET /foo/bar/baz", "200 app/b2:80" ),
	CASE("shorter_prefix_still_matches",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/foo"), BE("b1"))
	  RULE(PREFIX("/foo/bar"), BE("b2")), "GET /foo/baz", "200 app/b1:80" ),
	CASE("prefix_on_element_boundary",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/v2"), BE("b2")),
	  "GET /v2example", "404 -" ),
	CASE("prefix_matches_itself",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/v2"), BE("b2")),
	  "GET /v2", "200 app/b2:80" ),
	CASE("prefix_trailing_slash_ignored",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/v2/"), BE("b2")),
	  "GET /v2", "200 app/b2:80" ),
	CASE("prefix_ignores_query",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/v2"), BE("b2")),
	  "GET /v2?x=/y", "200 app/b2:80" ),
	CASE("method_match_beats_none",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/"), BE("b1"))
	  RULE("{path: {type: PathPrefix, value: /}, method: POST}", BE("b2")),
	  "POST /", "200 app/b2:80" ),
	CASE("method_mismatch_falls_through",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/"), BE("b1"))
	  RULE("{method: POST}", BE("b2")), "GET /", "200 app/b1:80" ),
	CASE("longer_prefix_beats_method",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE("{method: GET}", BE("b1"))
	  RULE(PREFIX("/x"), BE("b2")), "GET /x", "200 app/b2:80" ),
	CASE("more_headers_win",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{headers: [{name: a, value: \"1\"}]}", BE("b1"))
	  RULE("{headers: [{name: a, value: \"1\"}, {name: b, value: \"2\"}]}", BE("b2")),
	  "GET /", "200 app/b2:80", .headers = { "a: 1", "b: 2" } ),
	CASE("header_name_case_insensitive",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{headers: [{name: X-Version, value: two}]}", BE("b2")),
	  "GET /", "200 app/b2:80", .headers = { "x-version: two" } ),
	CASE("header_value_case_sensitive",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{headers: [{name: X-Version, value: two}]}", BE("b2")),
	  "GET /", "404 -", .headers = { "x-version: Two" } ),
	CASE("more_query_params_win",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{queryParams: [{name: a, value: \"1\"}]}", BE("b1"))
	  RULE("{queryParams: [{name: a, value: \"1\"}, {name: b, value: \"2\"}]}", BE("b2")),
	  "GET /?b=2&a=1", "200 app/b2:80" ),
	CASE("headers_beat_query_params",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{queryParams: [{name: a, value: \"1\"}, {name: b, value: \"2\"}]}", BE("b1"))
	  RULE("{headers: [{name: h, value: \"1\"}]}", BE("b2")),
	  "GET /?a=1&b=2", "200 app/b2:80", .headers = { "h: 1" } ),
	CASE("query_value_exact",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{queryParams: [{name: animal, value: whale}]}", BE("b1")),
	  "GET /?animal=whaledolphin", "404 -" ),
	CASE("matches_are_ored",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(EXACT("/a") ", " EXACT("/b"), BE("b2")),
	  "GET /b", "200 app/b2:80" ),
	CASE("match_conditions_are_anded",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{path: {type: PathPrefix, value: /p}, headers: [{name: h, value: v}]}", BE("b2")),
	  "GET /p", "404 -" ),
	CASE("oldest_route_wins",
	  HR_AT("newer", "app", "2024-02-01T00:00:00Z") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR_AT("older", "app", "2024-01-01T00:00:00Z") PARENT_A80 "  rules:\n" RULE_ANY(BE("b2")),
	  "GET /", "200 app/b2:80" ),
	CASE("alphabetical_name_breaks_tie",
	  HR_AT("zeta", "app", "2024-01-01T00:00:00Z") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR_AT("alpha", "app", "2024-01-01T00:00:00Z") PARENT_A80 "  rules:\n" RULE_ANY(BE("b2")),
	  "GET /", "200 app/b2:80" ),
	CASE("precedence_before_age",
	  HR_AT("old", "app", "2020-01-01T00:00:00Z") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR_AT("new", "app", "2024-01-01T00:00:00Z") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/x"), BE("b2")), "GET /x", "200 app/b2:80" ),
	CASE("first_rule_breaks_tie",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/x"), BE("b3"))
	  RULE(PREFIX("/x"), BE("b2")), "GET /x", "200 app/b3:80" ),
	CASE("no_rule_matches_404",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/only"), BE("b1")),
	  "GET /other", "404 -" ),
	CASE("rule_without_matches_matches_all",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b3")), "DELETE /a/b?c=d",
	  "200 app/b3:80" ),
	CASE("regex_path",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{path: {type: RegularExpression, value: \"/u/[0-9]+\"}}", BE("b2")),
	  "GET /u/42", "200 app/b2:80" ),
	CASE("regex_path_is_whole_match",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{path: {type: RegularExpression, value: \"/u/[0-9]+\"}}", BE("b2")),
	  "GET /u/42/x", "404 -" ),
	CASE("regex_header",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE("{headers: [{type: RegularExpression, name: v, value: \"v[12]\"}]}", BE("b2")),
	  "GET /", "200 app/b2:80", .headers = { "v: v2" } ),
	CASE("weight_share_first",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "70") ", " BEW("b2", "30")),
	  "GET /", "200 app/b1:80", .draw = 69 ),
	CASE("weight_share_second",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "70") ", " BEW("b2", "30")),
	  "GET /", "200 app/b2:80", .draw = 70 ),
	CASE("weight_zero_gets_nothing",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "0") ", " BEW("b2", "1")),
	  "GET /", "200 app/b2:80", .draw = 0 ),
	CASE("weight_default_is_one",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1") ", " BE("b2")),
	  "GET /", "200 app/b2:80", .draw = 1 ),
	CASE("weight_max",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "1000000") ", " BEW("b2", "1")),
	  "GET /", "200 app/b2:80", .draw = 1000000 ),
	CASE("all_weights_zero_500",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "0")), "GET /", "500 -" ),
	CASE("no_backend_refs_500",
	  HR("r", "app") PARENT_A80 "  rules:\n  - matches: [" PREFIX("/") "]\n", "GET /", "500 -" ),
	CASE("unresolved_backend_500_share",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("missing") ", " BE("b1")),
	  "GET /", "500 app/missing:80", .draw = 0 ),
	CASE("unresolved_backend_others_served",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("missing") ", " BE("b1")),
	  "GET /", "200 app/b1:80", .draw = 1 ),
	CASE("backend_without_endpoints_503",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("bempty")), "GET /", "503 app/bempty:80" ),
	CASE("backend_wrong_kind_500",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  RULE_ANY("{group: example.com, kind: Thing, name: t, port: 80}"), "GET /", "500 app/t:80" ),
	CASE("cross_namespace_backend_no_grant",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY("{name: o, namespace: other, port: 80}"),
	  "GET /", "200 other/o:80" ),
	CASE("backend_not_routed_again",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	  "metadata: {name: b1-route, namespace: app}\nspec:\n"
	  "  parentRefs: [{group: \"\", kind: Service, name: b1}]\n  rules:\n" RULE_ANY(BE("b2")),
	  "GET /", "200 app/b1:80" ),
	CASE("redirect_302_default",
	  HR("r", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestRedirect, "
	  "requestRedirect: {hostname: example.org}}]\n", "GET /", "302 -" ),
	CASE("redirect_301",
	  HR("r", "app") PARENT_A80 "  rules:\n  - filters: [{type: RequestRedirect, "
	  "requestRedirect: {statusCode: 301}}]\n", "GET /", "301 -" ),
	CASE("hostnames_ignored",
	  HR("r", "app") PARENT_A80 "  hostnames: [nowhere.example]\n  rules:\n" RULE_ANY(BE("b2")),
	  "GET /", "200 app/b2:80", .headers = { "Host: a.app" } ),
	CASE("dropped_rule_not_served",
	  HR("r", "app") PARENT_A80 "  rules:\n"
	  "  - matches: [" PREFIX("/bad") "]\n    filters: [{type: RequestRedirect, requestRedirect: {}},"
	  " {type: URLRewrite, urlRewrite: {hostname: x}}]\n"
	  RULE(PREFIX("/"), BE("b1")), "GET /bad", "200 app/b1:80" ),
	/* Producer and consumer routes. */
	CASE("producer_route_applies_to_all",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")), "GET /", "200 app/b1:80",
	  .client_ns = "client" ),
	CASE("consumer_route_for_its_namespace",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR("c", "client") PARENT_A80 "  rules:\n" RULE_ANY("{name: b2, namespace: app, port: 80}"),
	  "GET /", "200 app/b2:80", .client_ns = "client" ),
	CASE("consumer_route_not_for_others",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR("c", "client") PARENT_A80 "  rules:\n" RULE_ANY("{name: b2, namespace: app, port: 80}"),
	  "GET /", "200 app/b1:80", .client_ns = "other" ),
	CASE("consumer_route_not_for_producer_ns",
	  HR("c", "client") PARENT_A80 "  rules:\n" RULE_ANY("{name: b2, namespace: app, port: 80}"),
	  "GET /", "200 app/a:80" ),
	CASE("consumer_replaces_producer_entirely",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE(PREFIX("/x"), BE("b1"))
	  HR("c", "client") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/y"), "{name: b2, namespace: app, port: 80}"),
	  "GET /x", "404 -", .client_ns = "client" ),
	CASE("consumer_routes_merge_in_group",
	  HR("c1", "client") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/y"), "{name: b2, namespace: app, port: 80}")
	  HR("c2", "client") PARENT_A80 "  rules:\n"
	  RULE(PREFIX("/z"), "{name: b3, namespace: app, port: 80}"),
	  "GET /z", "200 app/b3:80", .client_ns = "client" ),
	/* parentRef ports. */
	CASE("port_binds_that_port_only",
	  HR("r", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1")), "GET /", "200 app/a:81",
	  .port = 81 ),
	CASE("section_name_binds_named_port",
	  HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: a, sectionName: admin}]\n"
	  "  rules:\n" RULE_ANY(BE("b1")), "GET /", "200 app/b1:80", .port = 81 ),
	CASE("section_name_leaves_other_ports",
	  HR("r", "app") "  parentRefs: [{group: \"\", kind: Service, name: a, sectionName: admin}]\n"
	  "  rules:\n" RULE_ANY(BE("b1")), "GET /", "200 app/a:80" ),
	CASE("no_port_binds_all_ports",
	  HR("r", "app") PARENT_A "  rules:\n" RULE_ANY(BE("b1")), "GET /", "200 app/b1:80",
	  .port = 81 ),
	/* Route kinds on one port. */
	CASE("grpc_beats_http",
	  HR("h", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b1"))
	  GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b2")),
	  "POST /", "200 app/b2:80", .port = 9000 ),
	CASE("http_beats_tcp",
	  TCPR("t", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  HR("h", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b2")), "GET /", "200 app/b2:80" ),
	CASE("tls_beats_tcp",
	  TCPR("t", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	  TLSR("s", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b3")), "GET /", "200 app/b3:80" ),
	CASE("tcp_route_weights",
	  TCPR("t", "app") PARENT_A80 "  rules:\n" RULE_ANY(BEW("b1", "1") ", " BEW("b2", "3")),
	  "GET /", "200 app/b2:80", .draw = 2 ),
	CASE("grpc_no_matches_all",
	  GR("g", "app") PARENT_PORT("9000") "  rules:\n" RULE_ANY(BE("b1")), "POST /", "200 app/b1:80",
	  .port = 9000 ),
};

static void run_case(const struct eval_case *c)
{
	const struct tr_class *cls;
	struct ev_result r;
	struct tfx f;
	char got[256];

	if (!ASSERT_OK(tfx_setup(&f, c->yaml), "setup"))
		goto out;
	for (size_t i = 0; i < f.dg.nr; i++)
		test__printf("  diag: %s\n", f.dg.entries[i].msg);
	ASSERT_EQ(f.dg.nr_errors, 0, "input errors");
	cls = tfx_class(&f, "app", "a", c->port ? c->port : 80, c->client_ns ? c->client_ns : "app");
	if (!ASSERT_OK_PTR(cls, "class"))
		goto out;
	if (!ASSERT_OK(tfx_eval(cls, c->request, c->headers, c->draw, &r), "evaluate"))
		goto out;
	if (r.backend)
		snprintf(got, sizeof(got), "%d %s/%s:%u", r.status, r.backend->namespace,
			 r.backend->name, r.backend->port);
	else
		snprintf(got, sizeof(got), "%d -", r.status);
	ev_result_free(&r);
	ASSERT_STREQ(got, c->want, c->name);
out:
	tfx_free(&f);
}

/* ev_pick_l4: the draw lands by the union's weights, as the kernel's connect-time pick. */
static void pick_l4(void)
{
	struct tr_backend b[3] = { 0 };
	struct tr_l4_item items[] = { { &b[0], 3 }, { &b[1], 0 }, { &b[2], 1 } };
	struct tr_l4 l4 = { .items = items, .nr = 3, .total_weight = 4 };

	ASSERT_EQ(ev_pick_l4(&l4, 0), &b[0], "draw 0");
	ASSERT_EQ(ev_pick_l4(&l4, 2), &b[0], "draw 2");
	ASSERT_EQ(ev_pick_l4(&l4, 3), &b[2], "draw 3: weight 0 is never picked");
	ASSERT_EQ(ev_pick_l4(&l4, 7), &b[2], "draw wraps");
	items[0].weight = items[2].weight = 0;
	ASSERT_NULL(ev_pick_l4(&l4, 1), "all weights 0");
	l4.nr = 0;
	ASSERT_NULL(ev_pick_l4(&l4, 1), "empty");
}

void test_translate_eval(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test__start_subtest(cases[i].name))
			run_case(&cases[i]);
	if (test__start_subtest("pick_l4"))
		pick_l4();
}
