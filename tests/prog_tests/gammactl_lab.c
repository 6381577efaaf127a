// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl on the lab: deploy/examples/shop.yaml through `gammad run
 * --once`, known traffic from a pod of each namespace, then
 *  - `gammactl --json explain` for each source pod and Service agrees with
 *    the kernel and with what the connections really reached;
 *  - `gammactl --json stats` counts exactly the connections each backend
 *    and route answered.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/lab_env.h"
#include "lib/ops.h"

#define MAX_PODS 16

struct answers {
	char pod[MAX_PODS][256];
	int count[MAX_PODS];
	int nr, errors;
};

/* n new connections from `from` to ip:80; who answered. */
static int call(struct lab_env *lab, const struct lab_pod_info *from, const char *ip, int n,
		struct answers *a)
{
	char *out = NULL, *line, *save = NULL;
	int ret, c;

	memset(a, 0, sizeof(*a));
	a->errors = -1;
	ret = lab_env_exec(lab, from, &out, "%s client http://%s:80/ --count=%d --new-conn",
			   test_bin("echo"), ip, n);
	test__printf("from %s to %s: %d\n%s\n", from->name, ip, ret, out ? out : "");
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[256];

		if (sscanf(line, "pod=%255s count=%d", name, &c) == 2 && a->nr < MAX_PODS) {
			snprintf(a->pod[a->nr], sizeof(a->pod[0]), "%s", name);
			a->count[a->nr++] = c;
		} else if (sscanf(line, "errors=%d", &c) == 1) {
			a->errors = c;
		}
	}
	free(out);
	return ret;
}

static const struct lab_pod_info *pod_by_ip(const struct lab_env *lab, const char *ip)
{
	for (size_t i = 0; i < lab->nr_pods; i++)
		if (!strcmp(lab->pods[i].ip4, ip))
			return &lab->pods[i];
	return NULL;
}

/* Does the explained outcome key ("ip:port,ip:port") contain the pod? */
static bool key_has_pod(const struct lab_env *lab, const char *key, const char *pod)
{
	char buf[1024], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", key);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const struct lab_pod_info *p;
		char *colon = strrchr(tok, ':');

		if (colon)
			*colon = 0;
		p = pod_by_ip(lab, tok);
		if (p && !strcmp(p->name, pod))
			return true;
	}
	return false;
}

static bool cluster_ip(struct lab_env *lab, const char *svc, char *ip, size_t len)
{
	char *out = NULL;

	ip[0] = 0;
	lab_run_capture(&out, "%s translate %s | awk '$1 == \"Service\" && $2 == \"shop/%s\" && "
			"$4 == \"80\" { print $NF; exit }'", test_bin("gammad"), lab->out, svc);
	if (out)
		sscanf(out, "%63s", ip);
	free(out);
	(void)len;
	return ip[0] != 0;
}

/* explain from pod to ip:80 and check it against n real connections. */
static void explain_case(struct lab_env *lab, const char *pin_dir, const struct lab_pod_info *from,
			 const char *ip, int n, int *answered)
{
	struct ydoc_set set = { 0 };
	const struct ydoc *d;
	const yaml_node_t *bs;
	struct answers a;
	char *out = NULL;
	int ret;

	ret = lab_run_capture(&out, "%s --pin-dir %s --manifests %s --json explain %s/%s %s:80 "
			      "2>/dev/null", test_bin("gammactl"), pin_dir, lab->out, from->ns,
			      from->name, ip);
	test__printf("explain %s/%s %s:80 -> %d\n%s\n", from->ns, from->name, ip, ret,
		     out ? out : "");
	if (!ASSERT_EQ(ret, 0, "explain") || !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	d = &set.docs[0];
	ASSERT_STREQ(ops_jstr(d, NULL, "kernel.agrees"), "true", "kernel agrees");
	bs = ymap_path(d, d->root, "l4.backends");
	if (!ASSERT_OK(call(lab, from, ip, n, &a), "echo client") ||
	    !ASSERT_EQ(a.errors, 0, "every connection answered"))
		goto out;
	for (int i = 0; i < a.nr; i++) {
		bool explained = false;

		for (size_t k = 0; bs && k < yseq_len(bs); k++)
			explained |= ops_jnum(d, yseq_at(d, bs, k), "percent") > 0 &&
				     key_has_pod(lab, ops_jstr(d, yseq_at(d, bs, k), "endpoints") ?: "",
						 a.pod[i]);
		if (!ASSERT_TRUE(explained, "the answering pod was explained"))
			test__printf("unexplained answer from %s\n", a.pod[i]);
		*answered += a.count[i];
	}
	/* Every backend with a fair share answered at least once. */
	for (size_t k = 0; bs && k < yseq_len(bs); k++) {
		const yaml_node_t *b = yseq_at(d, bs, k);
		bool seen = false;

		if (ops_jnum(d, b, "percent") < 15)
			continue;
		for (int i = 0; i < a.nr; i++)
			seen |= key_has_pod(lab, ops_jstr(d, b, "endpoints") ?: "", a.pod[i]);
		ASSERT_TRUE(seen, "explained backend answered");
	}
out:
	ydoc_set_free(&set);
	free(out);
}

/* Answers per backend name from `gammactl --json stats`. */
static double stat_of(const struct ydoc *d, const char *arr, const char *field, const char *name)
{
	const yaml_node_t *a = ymap_get(d, d->root, arr);

	for (size_t i = 0; a && i < yseq_len(a); i++)
		if (!strcmp(ops_jstr(d, yseq_at(d, a, i), field) ?: "", name))
			return ops_jnum(d, yseq_at(d, a, i), "connects");
	return -1;
}

void test_gammactl_lab(void)
{
	const struct lab_pod_info *storefront, *web;
	char manifests[PATH_MAX], pin_dir[64], root[PATH_MAX], ip[3][64], *out = NULL, *k;
	static const char *const svcs[3] = { "reviews", "reviews-v1", "reviews-v2" };
	int total[3][2] = { { 0 } }, ret;
	struct ydoc_set set = { 0 };
	struct lab_env lab;

	if (access(test_bin("gammactl"), X_OK)) {
		test__skip("build/gammactl not built");
		return;
	}
	snprintf(manifests, sizeof(manifests), "%s/deploy/examples/shop.yaml", env.src_dir);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/gammad-ctl-%d", (int)getpid());
	if (lab_env_start(&lab, manifests))
		goto cleanup;
	storefront = lab_env_find(&lab, "shop", "storefront");
	web = lab_env_find(&lab, "frontend", "web");
	if (!ASSERT_OK_PTR(storefront, "storefront pod") || !ASSERT_OK_PTR(web, "web pod"))
		goto cleanup;
	snprintf(root, sizeof(root), "%s", storefront->cgroup);
	k = strstr(root, "/kubepods");
	if (!ASSERT_OK_PTR(k, "kubepods in the pod cgroup"))
		goto cleanup;
	*k = 0;
	free(out);
	ret = lab_run_capture(&out, "%s run --once --manifests %s --cgroup %s --pin-dir %s",
			      test_bin("gammad"), lab.out, root, pin_dir);
	test__printf("gammad run: %d\n%s", ret, out ? out : "");
	if (!ASSERT_EQ(ret, 0, "gammad run --once"))
		goto cleanup;
	for (int i = 0; i < 3; i++)
		if (!ASSERT_TRUE(cluster_ip(&lab, svcs[i], ip[i], sizeof(ip[i])), svcs[i]))
			goto cleanup;

	if (test__start_subtest("explain_agrees_with_connections")) {
		/* Six cases: two client classes x three Services. */
		for (int i = 0; i < 3; i++) {
			explain_case(&lab, pin_dir, storefront, ip[i], i ? 20 : 200, &total[i][0]);
			explain_case(&lab, pin_dir, web, ip[i], i ? 20 : 100, &total[i][1]);
		}
	}
	if (test__start_subtest("stats_count_the_connections")) {
		double v1, v2, split, canary;
		const struct ydoc *d;

		free(out);
		ret = lab_run_capture(&out, "%s --pin-dir %s --json stats 2>/dev/null",
				      test_bin("gammactl"), pin_dir);
		if (!ASSERT_EQ(ret, 0, "stats") || !ASSERT_OK(ops_json(out, &set), "JSON"))
			goto cleanup;
		d = &set.docs[0];
		v1 = stat_of(d, "backends", "name", "reviews-v1");
		v2 = stat_of(d, "backends", "name", "reviews-v2");
		split = stat_of(d, "routes", "route.name", "reviews-split");
		canary = stat_of(d, "routes", "route.name", "reviews-canary-for-frontend");
		/* Every connection of the cases above went to reviews-v1 or reviews-v2. */
		ASSERT_EQ(v1 + v2, total[0][0] + total[0][1] + total[1][0] + total[1][1] +
			  total[2][0] + total[2][1], "backend counters = answered connections");
		ASSERT_EQ(split, total[0][0], "producer route = storefront's reviews connections");
		ASSERT_EQ(canary, total[0][1], "consumer route = web's reviews connections");
		ASSERT_GE(v2, total[0][1] + total[2][0] + total[2][1], "reviews-v2 at least");
	}
cleanup:
	ydoc_set_free(&set);
	free(out);
	lab_agent_uninstall(pin_dir);
	lab_env_fini(&lab);
}
