// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl reads weights back from the alias table exactly: a selector
 * written with weights 1:2:4 over three backends shows shares 1/7, 2/7 and
 * 4/7 (each slot gives threshold/total to its primary and the rest to its
 * alias, divided by the number of slots). No object table here: ids are
 * shown, and a Service is found by ClusterIP (IPv4 or IPv6, any spelling).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/dp_fixture.h"
#include "lib/lab_env.h"
#include "lib/ops.h"

void test_gammactl_shares(void)
{
	static const uint32_t weights[3] = { 1, 2, 4 };
	struct ydoc_set set = { 0 };
	struct gammad_fe_key key;
	struct dp_fixture fx;
	const yaml_node_t *r, *b;
	const struct ydoc *d;
	char *out = NULL;
	int ret;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (access(test_bin("gammactl"), X_OK)) {
		test__skip("build/gammactl not built");
		return;
	}
	if (!ASSERT_OK(fx_setup(&fx, 3, false), "fixture"))
		goto out;
	fx_key(&key, "198.19.4.1", IPPROTO_TCP);
	if (!ASSERT_OK(fx_publish(&fx, &key, 1, weights, 500), "publish 1:2:4"))
		goto out;
	ret = lab_run_capture(&out, "%s --pin-dir %s --json routes 2>/dev/null",
			      test_bin("gammactl"), fx.pin_dir);
	if (!ASSERT_EQ(ret, 0, "gammactl routes") || !ASSERT_OK(ops_json(out, &set), "JSON"))
		goto out;
	d = &set.docs[0];
	r = ymap_get(d, d->root, "routes");
	if (!ASSERT_EQ(yseq_len(r), 1, "one class"))
		goto out;
	r = yseq_at(d, r, 0);
	ASSERT_STREQ(ops_jstr(d, r, "service.address"), "198.19.4.1", "ClusterIP");
	ASSERT_NULL(ops_jstr(d, r, "service.name"), "no object table: no name");
	b = ymap_get(d, r, "backends");
	if (!ASSERT_EQ(yseq_len(b), 3, "three backends"))
		goto out;
	for (size_t i = 0; i < 3; i++) {
		const yaml_node_t *n = yseq_at(d, b, i);
		unsigned long long num = 0, den = 0;
		long id = strtol(ops_jstr(d, n, "id") ?: "0", NULL, 10);

		if (!ASSERT_TRUE(id >= 500 && id < 503, "backend id"))
			continue;
		sscanf(ops_jstr(d, n, "share") ?: "", "%llu/%llu", &num, &den);
		ASSERT_GT(den, 0, "denominator");
		/* num/den == w/7 exactly */
		ASSERT_EQ(num * 7, den * weights[id - 500], "exact share");
	}
	free(out);
	out = NULL;
	ret = lab_run_capture(&out, "%s --pin-dir %s endpoints 198.19.4.1:%d",
			      test_bin("gammactl"), fx.pin_dir, FX_PORT);
	ASSERT_EQ(ret, 0, "endpoints by ClusterIP:port");
	ASSERT_HAS_SUBSTR(out, "198.18.3.2:8080", "third pod");
	free(out);
	out = NULL;
	ret = lab_run_capture(&out, "%s --pin-dir %s routes", test_bin("gammactl"), fx.pin_dir);
	ASSERT_HAS_SUBSTR(out, "57.14%", "4/7 as a percentage");
	ASSERT_HAS_SUBSTR(out, "14.29%", "1/7 as a percentage");
	free(out);
	out = NULL;
	/* IPv6: a ClusterIP in any spelling, endpoints in brackets. */
	fx_key(&key, "fd00:19::1", IPPROTO_TCP);
	if (ASSERT_OK(fx_publish(&fx, &key, 2, weights, 600), "publish IPv6")) {
		ret = lab_run_capture(&out, "%s --pin-dir %s endpoints '[fd00:19:0:0::1]:%d'",
				      test_bin("gammactl"), fx.pin_dir, FX_PORT);
		ASSERT_EQ(ret, 0, "endpoints by IPv6 ClusterIP");
		ASSERT_HAS_SUBSTR(out, "[fd00:18:1::2]:8080", "IPv6 endpoint");
	}
out:
	ydoc_set_free(&set);
	free(out);
	fx_teardown(&fx);
}
