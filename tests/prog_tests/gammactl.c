// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl against a running agent: the scenario of tests/lib/ops.h on the
 * data path fixture, known traffic from two pods' cgroups, then every
 * command's JSON checked against that traffic, `explain` checked against
 * what real connections did for ten source/destination/request cases, and
 * the errors an operator gets for bad input.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/hello.h"
#include "lib/lab_env.h"
#include "lib/ops.h"

#define EP_A "198.18.1.2:8080"
#define EP_B "198.18.2.2:8080"

struct tally {
	int web_ok, web_default_ok, web_client_ok;	/* to 198.19.7.1 */
	int orphan_fail;
	int ids[256];
};

struct xcase {
	const char *pod;		/* ns/name */
	bool cli;			/* from the client/cli cgroup, else app/srv */
	const char *vip;
	const char *request;		/* NULL: a plain connection */
	const char *want_rule;		/* "ns/name#rule" the request gets, or NULL */
	int n;
};

static const struct xcase cases[] = {
	{ "client/cli", true, "198.19.7.1", NULL, NULL, 60 },
	{ "app/srv", false, "198.19.7.1", NULL, NULL, 200 },
	{ "client/cli", true, "198.19.7.2", NULL, NULL, 30 },
	{ "app/srv", false, "198.19.7.2", NULL, NULL, 30 },
	{ "client/cli", true, "198.19.7.3", NULL, NULL, 30 },
	{ "app/srv", false, "198.19.7.3", NULL, NULL, 30 },
	{ "client/cli", true, "198.19.7.4", NULL, NULL, 20 },
	{ "app/srv", false, "198.19.7.4", NULL, NULL, 20 },
	{ "app/srv", false, "198.19.7.1", "GET /v2/items HTTP/1.1", "app/web-split#0", 60 },
	{ "client/cli", true, "198.19.7.1", "GET /", "client/web-client#0", 30 },
};

static char ctl_cmd[PATH_MAX * 3];

/* gammactl with the env's pin dir and manifests; stdout only. */
static int ctl(struct ops_env *e, char **out, const char *args)
{
	return lab_run_capture(out, "%s --pin-dir %s --manifests %s %s 2>/dev/null",
			       test_bin("gammactl"), e->fx.pin_dir, e->manifests, args);
}

/* Outcome key -> server id: 'A', 'B', or 0 for a refused connection. */
static int outcome_id(const char *key)
{
	return !strcmp(key, EP_A) ? 'A' : !strcmp(key, EP_B) ? 'B' : 0;
}

static void run_case(struct ops_env *e, const struct xcase *c, struct tally *t)
{
	const char *cg = c->cli ? e->cg_cli : e->cg_srv;
	double share[256] = { 0 };
	struct ydoc_set set = { 0 };
	struct hello_job *j;
	yaml_node_t *kb;
	char *out = NULL;
	int ret;

	snprintf(ctl_cmd, sizeof(ctl_cmd), "--json explain %s %s:80%s%s%s", c->pod, c->vip,
		 c->request ? " '" : "", c->request ? c->request : "", c->request ? "'" : "");
	ret = ctl(e, &out, ctl_cmd);
	test__printf("gammactl %s -> %d\n%s\n", ctl_cmd, ret, out ? out : "");
	if (!ASSERT_EQ(ret, 0, "explain exit status") || !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	ASSERT_STREQ(ops_jstr(&set.docs[0], NULL, "kernel.available"), "true", "kernel read");
	ASSERT_STREQ(ops_jstr(&set.docs[0], NULL, "kernel.agrees"), "true",
		     "kernel tables agree with the translation");
	/* The source pod's cgroup is the one the agent mapped to its namespace. */
	ASSERT_EQ(ops_jnum(&set.docs[0], NULL, "kernel.namespaceCgroups"), 1,
		  "one pod cgroup of the source namespace mapped");
	if (c->want_rule) {
		char rule[256];

		snprintf(rule, sizeof(rule), "%s/%s#%s",
			 ops_jstr(&set.docs[0], NULL, "request.rule.namespace") ?: "-",
			 ops_jstr(&set.docs[0], NULL, "request.rule.name") ?: "-",
			 ops_jstr(&set.docs[0], NULL, "request.rule.rule") ?: "-");
		ASSERT_STREQ(rule, c->want_rule, "rule of the request");
		ASSERT_STREQ(ops_jstr(&set.docs[0], NULL, "request.status"), "200", "status");
		/* these routes are all the kernel's HTTP matcher can serve exactly */
		ASSERT_STREQ(ops_jstr(&set.docs[0], NULL, "class.kernelHTTP.exact"), "true",
			     "kernel HTTP table");
	}
	/* What the kernel will do, per outcome. */
	kb = ymap_path(&set.docs[0], set.docs[0].root, "l4.backends");
	for (size_t i = 0; kb && i < yseq_len(kb); i++) {
		const yaml_node_t *b = yseq_at(&set.docs[0], kb, i);
		const char *key = ops_jstr(&set.docs[0], b, "endpoints");

		share[outcome_id(key ?: "")] += ops_jnum(&set.docs[0], b, "percent") / 100.0;
	}
	j = ops_hellos(cg, c->vip, c->n);
	if (!ASSERT_OK_PTR(j, "hellos"))
		goto out;
	test__printf("  real: A=%d B=%d failed=%d\n", j->ids['A'], j->ids['B'], j->fail);
	/* Every real outcome was predicted; every likely predicted one happened. */
	ASSERT_EQ(j->ids['A'] && share['A'] == 0, 0, "answers from A only if explained");
	ASSERT_EQ(j->ids['B'] && share['B'] == 0, 0, "answers from B only if explained");
	ASSERT_EQ(j->fail && share[0] == 0, 0, "refused only if explained");
	ASSERT_EQ(share['A'] >= 0.3 && !j->ids['A'], 0, "explained A answered");
	ASSERT_EQ(share['B'] >= 0.3 && !j->ids['B'], 0, "explained B answered");
	ASSERT_EQ(share[0] >= 0.999 && j->fail != c->n, 0, "explained refusal refused all");
	if (share['A'] > 0.5 && share['A'] < 0.7 && c->n >= 200) {
		ASSERT_GE(j->ids['A'], c->n * 45 / 100, "60% share: at least 45%");
		ASSERT_LE(j->ids['A'], c->n * 75 / 100, "60% share: at most 75%");
	}
	t->ids['A'] += j->ids['A'];
	t->ids['B'] += j->ids['B'];
	if (!strcmp(c->vip, "198.19.7.1")) {
		t->web_ok += j->ok;
		if (c->cli)
			t->web_client_ok += j->ok;
		else
			t->web_default_ok += j->ok;
	}
	if (!strcmp(c->vip, "198.19.7.4"))
		t->orphan_fail += j->fail;
	hello_job_free(j);
out:
	ydoc_set_free(&set);
	free(out);
}

/* The element of array `key` whose field `field` is `value`, or NULL. */
static const yaml_node_t *find_in(const struct ydoc *d, const yaml_node_t *arr,
				  const char *field, const char *value)
{
	for (size_t i = 0; arr && i < yseq_len(arr); i++) {
		const yaml_node_t *n = yseq_at(d, arr, i);
		const char *v = ops_jstr(d, n, field);

		if (v && !strcmp(v, value))
			return n;
	}
	return NULL;
}

/* First string of array `key` of n, or NULL. */
static const char *first_of(const struct ydoc *d, const yaml_node_t *n, const char *key)
{
	const yaml_node_t *a = ymap_get(d, n, key);

	return a && yseq_len(a) ? ynode_str(yseq_at(d, a, 0)) : NULL;
}

static void check_services(struct ops_env *e, const struct tally *t)
{
	struct ydoc_set set = { 0 };
	const yaml_node_t *web, *cls;
	const struct ydoc *d;
	char *out = NULL;

	if (!ASSERT_EQ(ctl(e, &out, "--json services"), 0, "services") ||
	    !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	d = &set.docs[0];
	ASSERT_EQ(yseq_len(ymap_get(d, d->root, "services")), 4, "four Service ports");
	web = find_in(d, ymap_get(d, d->root, "services"), "name", "web");
	if (!ASSERT_OK_PTR(web, "app/web listed"))
		goto out;
	ASSERT_STREQ(ops_jstr(d, web, "namespace"), "app", "namespace");
	ASSERT_STREQ(ops_jstr(d, web, "address"), "198.19.7.1", "ClusterIP");
	ASSERT_STREQ(ops_jstr(d, web, "portName"), "http", "port name");
	cls = ymap_get(d, web, "classes");
	if (ASSERT_EQ(yseq_len(cls), 2, "default + one consumer class")) {
		ASSERT_NULL(ops_jstr(d, yseq_at(d, cls, 0), "clientNamespace"), "default first");
		ASSERT_STREQ(ops_jstr(d, yseq_at(d, cls, 0), "route.name"), "web-split",
			     "producer route");
		ASSERT_STREQ(ops_jstr(d, yseq_at(d, cls, 1), "clientNamespace"), "client",
			     "consumer namespace by name");
		ASSERT_STREQ(ops_jstr(d, yseq_at(d, cls, 1), "route.name"), "web-client",
			     "consumer route");
	}
	ASSERT_EQ(ops_jnum(d, web, "counters.connects"), t->web_ok, "web connects");
	web = find_in(d, ymap_get(d, d->root, "services"), "name", "orphan");
	if (ASSERT_OK_PTR(web, "app/orphan listed"))
		ASSERT_EQ(ops_jnum(d, web, "counters.refused"), t->orphan_fail, "orphan refused");
out:
	ydoc_set_free(&set);
	free(out);
}

static void check_routes(struct ops_env *e)
{
	struct ydoc_set set = { 0 };
	const yaml_node_t *r, *b;
	const struct ydoc *d;
	char *out = NULL;

	if (!ASSERT_EQ(ctl(e, &out, "--json routes app/web-split"), 0, "routes app/web-split") ||
	    !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	d = &set.docs[0];
	r = ymap_get(d, d->root, "routes");
	if (!ASSERT_EQ(yseq_len(r), 1, "one class uses the route"))
		goto out;
	r = yseq_at(d, r, 0);
	ASSERT_STREQ(ops_jstr(d, r, "service.name"), "web", "on app/web");
	b = find_in(d, ymap_get(d, r, "backends"), "name", "web-v1");
	if (ASSERT_OK_PTR(b, "web-v1 backend")) {
		/* The kernel's L4 union of the two rules: v1 3/5, v2 1/5 + 1/5. */
		ASSERT_EQ(round(ops_jnum(d, b, "percent") * 100), 6000, "web-v1 60%");
		ASSERT_STREQ(first_of(d, b, "endpoints"), EP_A, "web-v1 endpoint");
	}
	b = find_in(d, ymap_get(d, r, "backends"), "name", "web-v2");
	if (ASSERT_OK_PTR(b, "web-v2 backend"))
		ASSERT_EQ(round(ops_jnum(d, b, "percent") * 100), 4000, "web-v2 40%");
out:
	ydoc_set_free(&set);
	free(out);
}

static void check_stats(struct ops_env *e, const struct tally *t)
{
	struct ydoc_set set = { 0 };
	const yaml_node_t *n;
	const struct ydoc *d;
	char *out = NULL;

	if (!ASSERT_EQ(ctl(e, &out, "--json stats"), 0, "stats") ||
	    !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	d = &set.docs[0];
	n = find_in(d, ymap_get(d, d->root, "backends"), "name", "web-v1");
	if (ASSERT_OK_PTR(n, "backend web-v1"))
		ASSERT_EQ(ops_jnum(d, n, "connects"), t->ids['A'], "web-v1 = answers of A");
	n = find_in(d, ymap_get(d, d->root, "backends"), "name", "web-v2");
	if (ASSERT_OK_PTR(n, "backend web-v2"))
		ASSERT_EQ(ops_jnum(d, n, "connects"), t->ids['B'], "web-v2 = answers of B");
	n = find_in(d, ymap_get(d, d->root, "routes"), "route.name", "web-split");
	if (ASSERT_OK_PTR(n, "route web-split"))
		ASSERT_EQ(ops_jnum(d, n, "connects"), t->web_default_ok, "producer route count");
	n = find_in(d, ymap_get(d, d->root, "routes"), "route.name", "web-client");
	if (ASSERT_OK_PTR(n, "route web-client"))
		ASSERT_EQ(ops_jnum(d, n, "connects"), t->web_client_ok, "consumer route count");
	ASSERT_EQ(ops_jnum(d, NULL, "drops.backend_unresolved"), t->orphan_fail,
		  "drops by reason: unresolved backend");
	n = find_in(d, ymap_get(d, d->root, "maps"), "name", "gammad_fe_v1");
	if (ASSERT_OK_PTR(n, "fill of the frontend map"))
		ASSERT_EQ(ops_jnum(d, n, "entries"), 4, "four frontends");
	free(out);
	out = NULL;
	/* --watch: one compact JSON document per interval. */
	if (ASSERT_EQ(ctl(e, &out, "--json stats --watch --interval 0.2 --count 2"), 0, "watch")) {
		int lines = 0;

		for (char *p = out; p && *p; p++)
			lines += *p == '\n';
		ASSERT_EQ(lines, 2, "two samples");
	}
	free(out);
	out = NULL;
	/* Tables: the second sample shows what grew since the first (nothing). */
	if (ASSERT_EQ(ctl(e, &out, "stats --watch --interval 0.2 --count 2"), 0, "watch table")) {
		const char *second = strstr(out ?: "", "DELTA");

		ASSERT_OK_PTR(second, "delta column in the second sample");
		ASSERT_HAS_SUBSTR(second, "+0", "no traffic in between");
		ASSERT_HAS_SUBSTR(out, "app/web-v1:80", "backends by name");
	}
out:
	ydoc_set_free(&set);
	free(out);
}

static void check_endpoints_status(struct ops_env *e)
{
	struct ydoc_set set = { 0 };
	int ret;
	const yaml_node_t *r;
	const struct ydoc *d;
	char *out = NULL;

	if (ASSERT_EQ(ctl(e, &out, "--json endpoints app/web-v1"), 0, "endpoints") &&
	    ASSERT_OK(ops_json(out, &set), "JSON")) {
		d = &set.docs[0];
		r = ymap_get(d, d->root, "backends");
		if (ASSERT_EQ(yseq_len(r), 1, "one backend"))
			ASSERT_STREQ(first_of(d, yseq_at(d, r, 0), "endpoints"), EP_A, "pod A");
	}
	ydoc_set_free(&set);
	free(out);
	out = NULL;
	if (ASSERT_EQ(ctl(e, &out, "--json status"), 0, "status") &&
	    ASSERT_OK(ops_json(out, &set), "JSON")) {
		const yaml_node_t *c;

		d = &set.docs[0];
		r = find_in(d, ymap_get(d, d->root, "routes"), "name", "orphan-broken");
		c = r ? ymap_path(d, r, "parents") : NULL;
		c = c && yseq_len(c) ? ymap_get(d, yseq_at(d, c, 0), "conditions") : NULL;
		c = find_in(d, c, "type", "ResolvedRefs");
		if (ASSERT_OK_PTR(c, "ResolvedRefs of orphan-broken")) {
			ASSERT_STREQ(ops_jstr(d, c, "status"), "False", "not resolved");
			ASSERT_STREQ(ops_jstr(d, c, "reason"), "BackendNotFound", "reason");
		}
	}
	ydoc_set_free(&set);
	free(out);
	out = NULL;
	/* Human tables name Services and routes, not ids. */
	ret = ctl(e, &out, "services");
	test__printf("gammactl services:\n%s", out ? out : "");
	if (ASSERT_EQ(ret, 0, "services table")) {
		ASSERT_HAS_SUBSTR(out, "app/web:80", "Service name");
		ASSERT_HAS_SUBSTR(out, "client/web-client", "consumer route name");
	}
	free(out);
}

static void check_errors(struct ops_env *e)
{
	char *out = NULL;
	int ret;

	ret = lab_run_capture(&out, "%s --pin-dir /sys/fs/bpf/gammad-no-such-dir services",
			      test_bin("gammactl"));
	ASSERT_EQ(ret, 1, "missing pin dir fails");
	ASSERT_HAS_SUBSTR(out, "/sys/fs/bpf/gammad-no-such-dir", "names the pin dir");
	free(out);
	ret = lab_run_capture(&out, "%s --pin-dir %s endpoints app/ghost", test_bin("gammactl"),
			      e->fx.pin_dir);
	ASSERT_EQ(ret, 1, "unknown Service fails");
	ASSERT_HAS_SUBSTR(out, "no Service app/ghost", "names the Service");
	free(out);
	ret = lab_run_capture(&out, "%s --pin-dir %s --manifests %s explain app/srv 1.2.3:80",
			      test_bin("gammactl"), e->fx.pin_dir, e->manifests);
	ASSERT_EQ(ret, 2, "bad address is a usage error");
	ASSERT_HAS_SUBSTR(out, "destination 1.2.3:80", "names the address");
	free(out);
	ret = lab_run_capture(&out, "%s --pin-dir %s --manifests %s explain app/ghost 198.19.7.1:80",
			      test_bin("gammactl"), e->fx.pin_dir, e->manifests);
	ASSERT_EQ(ret, 1, "unknown pod fails");
	ASSERT_HAS_SUBSTR(out, "no Pod app/ghost", "names the pod");
	free(out);
	ret = lab_run_capture(&out, "%s --pin-dir %s --manifests %s explain app/srv 198.19.9.9:80",
			      test_bin("gammactl"), e->fx.pin_dir, e->manifests);
	ASSERT_EQ(ret, 1, "unknown Service address fails");
	ASSERT_HAS_SUBSTR(out, "no Service has ClusterIP 198.19.9.9", "names the address");
	free(out);
	/* The status file names the manifests: enough for explain. */
	ret = lab_run_capture(&out, "%s --pin-dir %s --status-file %s/.gammad-status.json "
			      "explain client/cli 198.19.7.1:80", test_bin("gammactl"),
			      e->fx.pin_dir, e->manifests);
	ASSERT_EQ(ret, 0, "explain through the status file");
	ASSERT_HAS_SUBSTR(out, "consumer routes of namespace client", "class");
	free(out);
	ret = lab_run_capture(&out, "%s explain app/srv 198.19.7.1:80", test_bin("gammactl"));
	ASSERT_EQ(ret, 2, "explain without manifests");
	ASSERT_HAS_SUBSTR(out, "--manifests", "says what is missing");
	free(out);
	ret = lab_run_capture(&out, "%s status", test_bin("gammactl"));
	ASSERT_EQ(ret, 2, "status without manifests");
	free(out);
	ret = lab_run_capture(&out, "%s --pin-dir %s routes app/nosuch", test_bin("gammactl"),
			      e->fx.pin_dir);
	ASSERT_EQ(ret, 1, "unknown route fails");
	ASSERT_HAS_SUBSTR(out, "no route or Service app/nosuch", "names the route");
	free(out);
}

void test_gammactl(void)
{
	struct tally t = { 0 };
	struct ops_env e;
	int ret;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (access(test_bin("gammactl"), X_OK) || access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammactl or build/gammad not built");
		return;
	}
	ret = ops_env_setup(&e);
	if (!ASSERT_OK(ret, "scenario with the agent running"))
		goto out;
	if (test__start_subtest("explain_agrees_with_connections"))
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			run_case(&e, &cases[i], &t);
	if (test__start_subtest("services_json"))
		check_services(&e, &t);
	if (test__start_subtest("routes_json"))
		check_routes(&e);
	if (test__start_subtest("stats_json"))
		check_stats(&e, &t);
	if (test__start_subtest("endpoints_and_status"))
		check_endpoints_status(&e);
	if (test__start_subtest("errors"))
		check_errors(&e);
	if (test__start_subtest("status_file_does_not_reapply"))
		ASSERT_EQ(ops_agent_log_count(&e.agent, " applied "), 1,
			  "the agent's own status file triggered no apply");
out:
	if (e.agent.pid)
		test__printf("agent log: %s\n", e.agent.log);
	ops_env_teardown(&e);
}
