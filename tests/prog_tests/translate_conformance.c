// SPDX-License-Identifier: Apache-2.0
/*
 * The Gateway API mesh conformance suite, run against the translator: for
 * every test of conformance/mesh-expectations.yaml, load the base manifests,
 * one synthesized ready endpoint per Deployment (the suite's pods), and the
 * test's route manifests; then evaluate each case's request as its client and
 * check status code, backend, headers, redirect and weight shares. Also:
 * every YAML under conformance/ and crds/ loads without a crash.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "test_progs.h"
#include "lib/mesh_conf.h"
#include "lib/translate_fixture.h"

#define CONF MESH_CONF_DIR

/* Request headers of the case, as the evaluator takes them. */
static size_t case_headers(const struct ydoc *d, const yaml_node_t *req,
			   struct ev_header *h, size_t max)
{
	yaml_node_t *map = ymap_get(d, req, "headers"), *k, *v;
	size_t n = 0;

	ymap_for_each(d, map, k, v) {
		if (n < max)
			h[n++] = (struct ev_header){ ynode_str(k), ynode_str(v) };
	}
	return n;
}

/* All values of a header joined with ",", as the echo server reports them. */
static void joined_header(const struct ev_headers *h, const char *name, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < h->nr && n < len; i++)
		if (!strcasecmp(h->items[i].name, name))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", h->items[i].value);
}

static void check_headers(const struct ydoc *d, const yaml_node_t *expect, const char *key,
			  const char *absent_key, const struct ev_headers *got,
			  const char *what)
{
	yaml_node_t *map = ymap_get(d, expect, key), *k, *v, *absent;
	char buf[512];

	ymap_for_each(d, map, k, v) {
		joined_header(got, ynode_str(k), buf, sizeof(buf));
		if (!ASSERT_STREQ(buf, ynode_str(v), what))
			test__printf("  header %s\n", ynode_str(k));
	}
	absent = ymap_get(d, expect, absent_key);
	for (size_t i = 0; i < yseq_len(absent); i++) {
		const char *name = ynode_str(yseq_at(d, absent, i));

		if (!ASSERT_NULL(ev_header_get(got, name), what))
			test__printf("  header %s must be absent\n", name);
	}
}

/* Every endpoint of the backend is a pod whose name starts with prefix. */
static bool backend_is(const struct tr_backend *b, const char *prefix)
{
	if (!b || !b->endpoints || !b->endpoints->nr)
		return false;
	for (size_t i = 0; i < b->endpoints->nr; i++) {
		const char *pod = b->endpoints->items[i].target_name;

		if (!pod || strncmp(pod, prefix, strlen(prefix)))
			return false;
	}
	return true;
}

static void check_redirect(const struct ydoc *d, const yaml_node_t *expect,
			   const struct ev_result *r)
{
	yaml_node_t *rd = ymap_get(d, expect, "redirect");
	const char *s;
	char port[8];

	if (!rd || r->status < 300 || r->status > 399)
		return;
	if ((s = mesh_conf_str(d, rd, "scheme")))
		ASSERT_STREQ(r->redirect.scheme, s, "redirect scheme");
	if ((s = mesh_conf_str(d, rd, "host")))
		ASSERT_STREQ(r->redirect.host, s, "redirect host");
	if ((s = mesh_conf_str(d, rd, "path")))
		ASSERT_STREQ(r->redirect.path, s, "redirect path");
	snprintf(port, sizeof(port), "%u", r->redirect.port);
	if ((s = mesh_conf_str(d, rd, "port")))
		ASSERT_STREQ(port, s, "redirect port");
}

static void check_result(const struct ydoc *d, const char *test, const yaml_node_t *c,
			 const struct ev_result *r)
{
	yaml_node_t *expect = ymap_get(d, c, "expect");
	const char *backend = mesh_conf_str(d, expect, "backend");
	const char *path = mesh_conf_str(d, expect, "backend_request.path");

	if (!ASSERT_TRUE(mesh_conf_status_expected(d, expect, r->status), "status code"))
		test__printf("  got %d\n", r->status);
	if (backend && !ASSERT_TRUE(backend_is(r->backend, backend), "backend"))
		test__printf("  want %s, got %s\n", backend, r->backend ? r->backend->name : "-");
	if (path && r->status == 200 && !mesh_conf_skip_path_check(test, mesh_conf_int(d, c, "index")))
		ASSERT_STREQ(r->target, path, "backend request path");
	check_headers(d, ymap_get(d, expect, "backend_request") ?: expect, "headers",
		      "absent_headers", &r->request_headers, "backend request header");
	check_headers(d, expect, "response_headers", "absent_response_headers",
		      &r->response_headers, "response header");
	check_redirect(d, expect, r);
}

/* A request to a pod IP is never routed: it reaches that pod as sent. */
static void check_pod_request(const struct ydoc *d, const yaml_node_t *c,
			      const struct mesh_conf_target *t)
{
	const char *backend = mesh_conf_str(d, ymap_get(d, c, "expect"), "backend");

	ASSERT_TRUE(mesh_conf_status_expected(d, ymap_get(d, c, "expect"), 200), "pod status");
	if (backend)
		ASSERT_STREQ(t->svc, backend, "pod backend");
	ASSERT_NULL(ymap_path(d, c, "expect.response_headers"), "no route filters on pods");
}

static const struct tr_class *case_class(struct tfx *f, const struct mesh_conf_target *t,
					 const char *client_ns)
{
	const struct tr_class *cls = tfx_class(f, t->ns, t->svc, t->port, client_ns);

	if (!ASSERT_OK_PTR(cls, "service port"))
		test__printf("  %s/%s:%u\n", t->ns, t->svc, t->port);
	return cls;
}

/* Evaluate once per backend with weight (draw = its offset), check each. */
static void run_case(struct tfx *f, const struct ydoc *d, const char *test,
		     const char *client, const yaml_node_t *c)
{
	yaml_node_t *req = ymap_get(d, c, "request");
	const char *ns = mesh_conf_client_ns(mesh_conf_str(d, c, "client") ?: client);
	struct ev_request r = { 0 };
	struct ev_header h[16];
	const struct tr_class *cls;
	struct ev_result res;
	struct mesh_conf_target t;
	uint64_t draw = 0;

	mesh_conf_case_target(d, req, ns, &t);
	if (t.pod) {
		check_pod_request(d, c, &t);
		return;
	}
	cls = case_class(f, &t, ns);
	if (!cls)
		return;
	r.method = mesh_conf_str(d, req, "method");
	r.target = mesh_conf_str(d, req, "path");
	r.nr_headers = case_headers(d, req, h, 16);
	r.headers = h;
	r.host = t.svc;
	r.port = t.port;
	do {
		if (!ASSERT_OK(ev_evaluate(cls, &r, draw, &res), "evaluate"))
			return;
		check_result(d, test, c, &res);
		draw += res.backend ? res.backend->weight : 1;
		ev_result_free(&res);
	} while (res.entry && draw < res.entry->rule->total_weight);
}

static double backend_share(const struct tr_rule *r, const char *name)
{
	uint64_t w = 0;

	for (size_t i = 0; i < r->nr_backends; i++)
		if (!strcmp(r->backends[i].name, name))
			w += r->backends[i].weight;
	return r->total_weight ? (double)w / r->total_weight : 0;
}

static void run_weight_check(struct tfx *f, const struct ydoc *d, const char *client,
			     const yaml_node_t *test)
{
	yaml_node_t *wc = ymap_get(d, test, "weight_check"), *k, *v;
	yaml_node_t *c0 = yseq_at(d, ymap_get(d, test, "cases"), 0);
	yaml_node_t *req = ymap_get(d, c0, "request");
	const char *ns = mesh_conf_client_ns(client);
	const struct tr_entry *e;
	const struct tr_class *cls;
	struct ev_request r = { .target = mesh_conf_str(d, req, "path") };
	struct mesh_conf_target t;

	if (!wc)
		return;
	mesh_conf_case_target(d, req, ns, &t);
	cls = case_class(f, &t, ns);
	e = cls ? ev_match(cls, &r) : NULL;
	if (!ASSERT_OK_PTR(e, "weighted rule"))
		return;
	ymap_for_each(d, ymap_get(d, wc, "expected_distribution"), k, v) {
		double want = strtod(ynode_str(v), NULL);
		double got = backend_share(e->rule, ynode_str(k));

		if (!ASSERT_TRUE(fabs(got - want) < 1e-9, "weight share"))
			test__printf("  %s: want %.3f got %.3f\n", ynode_str(k), want, got);
	}
	/* Every backend with traffic is one the distribution expects. */
	for (size_t i = 0; i < e->rule->nr_backends; i++)
		if (e->rule->backends[i].weight)
			ASSERT_OK_PTR(ymap_path(d, wc, "expected_distribution") ?
				      ymap_get(d, ymap_get(d, wc, "expected_distribution"),
					       e->rule->backends[i].name) : NULL,
				      "expected backend");
}

static void run_test(const struct ydoc *d, const yaml_node_t *test)
{
	const char *name = mesh_conf_str(d, test, "shortName");
	const char *client = mesh_conf_str(d, test, "client");
	yaml_node_t *cases = ymap_get(d, test, "cases");
	struct tfx f;

	if (!test__start_subtest(name))
		return;
	tfx_init(&f);
	if (ASSERT_OK(mesh_conf_load_test(&f, d, test), "load and translate")) {
		ASSERT_EQ(f.dg.nr_errors, 0, "diagnostics");
		for (size_t i = 0; i < f.dg.nr; i++)
			test__printf("  %s\n", f.dg.entries[i].msg);
		for (size_t i = 0; i < yseq_len(cases); i++)
			run_case(&f, d, name, client, yseq_at(d, cases, i));
		run_weight_check(&f, d, client, test);
	}
	tfx_free(&f);
}

void test_translate_conformance(void)
{
	const struct ydoc *d;
	struct ydoc_set set;
	yaml_node_t *tests;
	size_t nr_tests = mesh_conf_load(&set, &d, &tests);

	if (!nr_tests)
		return;
	for (size_t i = 0; i < nr_tests; i++)
		run_test(d, yseq_at(d, tests, i));
	ydoc_set_free(&set);
}

/* Every YAML file under dir (recursively) loads and translates without a crash. */
static void load_tree(const char *dir, size_t *nr_files)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char path[1024];
		struct stat st;
		struct tfx f;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && !stat(path, &st)) {
			if (S_ISDIR(st.st_mode)) {
				load_tree(path, nr_files);
			} else if (strstr(path, ".yaml")) {
				tfx_init(&f);
				ASSERT_OK(manifest_load_path(&f.m, path, &f.dg), path);
				ASSERT_OK(tfx_translate(&f), path);
				tfx_free(&f);
				(*nr_files)++;
			}
		}
		free(names[i]);
	}
	free(names);
}

void test_translate_shared_yaml(void)
{
	size_t nr_files = 0;

	if (!env.shared_dir) {
		test__skip("no shared dir");
		return;
	}
	load_tree(test_shared_path("gateway-api"), &nr_files);
	ASSERT_GT(nr_files, 30, "yaml files");
}
