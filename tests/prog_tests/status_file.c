// SPDX-License-Identifier: Apache-2.0
/*
 * The route status file: the conditions of accepted, conflicted,
 * not-matching-parent and unresolved-backend routes land in
 * DIR/.gammad-status.json, the file is replaced whole, the manifest loader
 * ignores it, and `gammactl status` shows it.
 */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "input/manifest.h"
#include "lib/lab_env.h"
#include "lib/ops.h"
#include "lib/translate_fixture.h"
#include "view/status_file.h"
#include "test_progs.h"
#include "translate_cases.h"

static const char routes_yaml[] =
	HR("ok", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b1"))
	TCPR("loser", "app") PARENT_A80 "  rules:\n" RULE_ANY(BE("b2"))
	HR("nomatch", "app") PARENT_PORT("82") "  rules:\n" RULE_ANY(BE("b1"))
	HR("unres", "app") PARENT_PORT("81") "  rules:\n" RULE_ANY(BE("nosuch"));

/* "Status:Reason" of a condition of route kind/name's first parent, or "absent". */
static const char *cond(const struct ydoc *d, const char *kind, const char *name,
			const char *type)
{
	static char buf[128];
	const yaml_node_t *routes = ymap_get(d, d->root, "routes");

	for (size_t i = 0; i < yseq_len(routes); i++) {
		const yaml_node_t *r = yseq_at(d, routes, i), *p, *cs;

		if (strcmp(ops_jstr(d, r, "kind") ?: "", kind) ||
		    strcmp(ops_jstr(d, r, "name") ?: "", name))
			continue;
		p = ymap_get(d, r, "parents");
		cs = p && yseq_len(p) ? ymap_get(d, yseq_at(d, p, 0), "conditions") : NULL;
		for (size_t k = 0; cs && k < yseq_len(cs); k++) {
			const yaml_node_t *c = yseq_at(d, cs, k);

			if (strcmp(ops_jstr(d, c, "type") ?: "", type))
				continue;
			snprintf(buf, sizeof(buf), "%s:%s", ops_jstr(d, c, "status") ?: "?",
				 ops_jstr(d, c, "reason") ?: "?");
			return buf;
		}
	}
	return "absent";
}

static int count_entries(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

void test_status_file(void)
{
	char dir[] = "/tmp/gammad-status-XXXXXX", path[PATH_MAX];
	struct ydoc_set set = { 0 };
	struct diag dg = { 0 };
	const struct ydoc *d;
	struct model m;
	struct tfx f;
	char *out = NULL;
	int ret;

	if (!ASSERT_OK(tfx_setup(&f, routes_yaml), "translate") ||
	    !ASSERT_OK_PTR(mkdtemp(dir), "temp dir")) {
		tfx_free(&f);
		return;
	}
	if (!ASSERT_OK(status_file_write(dir, &f.res, &f.dg), "write"))
		goto out;
	ASSERT_OK(status_file_path(dir, path, sizeof(path)), "path");
	ASSERT_EQ(count_entries(dir), 1, "one file, no temporary left");
	/* A second apply replaces the file whole. */
	ASSERT_OK(status_file_write(dir, &f.res, &f.dg), "rewrite");
	ASSERT_EQ(count_entries(dir), 1, "still one file");
	free(out);
	ret = lab_run_capture(&out, "cat %s", path);
	if (!ASSERT_EQ(ret, 0, "read") || !ASSERT_OK(ops_json(out, &set), "valid JSON"))
		goto out;
	d = &set.docs[0];
	ASSERT_STREQ(ops_jstr(d, NULL, "apiVersion"), "gammad.io/status/v1", "apiVersion");
	if (test__start_subtest("accepted")) {
		ASSERT_STREQ(cond(d, "HTTPRoute", "ok", "Accepted"), "True:Accepted", "Accepted");
		ASSERT_STREQ(cond(d, "HTTPRoute", "ok", "ResolvedRefs"), "True:ResolvedRefs",
			     "ResolvedRefs");
	}
	if (test__start_subtest("conflicted")) {
		ASSERT_STREQ(cond(d, "TCPRoute", "loser", "Accepted"), "False:Conflicted", "Accepted");
		ASSERT_STREQ(cond(d, "TCPRoute", "loser", "ResolvedRefs"), "True:ResolvedRefs",
			     "ResolvedRefs");
	}
	if (test__start_subtest("not_matching_parent"))
		ASSERT_STREQ(cond(d, "HTTPRoute", "nomatch", "Accepted"), "False:NoMatchingParent",
			     "Accepted");
	if (test__start_subtest("unresolved_backend")) {
		ASSERT_STREQ(cond(d, "HTTPRoute", "unres", "Accepted"), "True:Accepted", "Accepted");
		ASSERT_STREQ(cond(d, "HTTPRoute", "unres", "ResolvedRefs"), "False:BackendNotFound",
			     "ResolvedRefs");
	}
	if (test__start_subtest("parent_ref_and_controller")) {
		const yaml_node_t *r = ymap_get(d, d->root, "routes"), *p = NULL;

		for (size_t i = 0; i < yseq_len(r); i++)
			if (!strcmp(ops_jstr(d, yseq_at(d, r, i), "name") ?: "", "nomatch"))
				p = ymap_get(d, yseq_at(d, r, i), "parents");
		if (ASSERT_OK_PTR(p, "parents of nomatch") && ASSERT_EQ(yseq_len(p), 1, "one")) {
			p = yseq_at(d, p, 0);
			ASSERT_STREQ(ops_jstr(d, p, "parentRef.kind"), "Service", "kind");
			ASSERT_STREQ(ops_jstr(d, p, "parentRef.name"), "a", "name");
			ASSERT_STREQ(ops_jstr(d, p, "parentRef.port"), "82", "port");
			ASSERT_STREQ(ops_jstr(d, p, "controllerName"), "gammad.io/mesh", "controller");
		}
	}
	if (test__start_subtest("unwritable_dir"))
		ASSERT_EQ(status_file_write("/nonexistent-gammad-dir", &f.res, &f.dg), -ENOENT,
			  "error returned, not fatal");
	if (test__start_subtest("loader_ignores_it")) {
		model_init(&m);
		ASSERT_OK(manifest_load_path(&m, dir, &dg), "load the dir");
		ASSERT_EQ(dg.nr, 0, "no diagnostics");
		ASSERT_EQ(m.services.nr + m.routes[ROUTE_HTTP].nr, 0, "nothing loaded");
		model_free(&m);
		diag_free(&dg);
	}
	if (test__start_subtest("gammactl_status") && !access(test_bin("gammactl"), X_OK)) {
		free(out);
		ret = lab_run_capture(&out, "%s --manifests %s status", test_bin("gammactl"), dir);
		ASSERT_EQ(ret, 0, "gammactl status");
		ASSERT_HAS_SUBSTR(out, "TCPRoute app/loser", "route");
		ASSERT_HAS_SUBSTR(out, "False Conflicted", "conflicted");
		ASSERT_HAS_SUBSTR(out, "False NoMatchingParent", "no matching parent");
		ASSERT_HAS_SUBSTR(out, "False BackendNotFound", "unresolved");
		ASSERT_HAS_SUBSTR(out, "Service app/a:82", "parent");
		free(out);
		ret = lab_run_capture(&out, "%s --manifests %s/nowhere status", test_bin("gammactl"),
				      dir);
		ASSERT_EQ(ret, 1, "missing manifests dir");
	}
out:
	ydoc_set_free(&set);
	free(out);
	if (status_file_path(dir, path, sizeof(path)) == 0)
		unlink(path);
	rmdir(dir);
	tfx_free(&f);
}
