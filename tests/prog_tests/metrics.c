// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's HTTP endpoint: scraped over a plain socket after known
 * traffic on the scenario of tests/lib/ops.h, /metrics must carry the
 * per Service / route / backend counters under their Gateway API names,
 * the drop reasons, the map fill levels and the apply metrics; /healthz
 * and /readyz answer 200 once the first apply is done.
 */
#include <stdlib.h>
#include <unistd.h>

#include "lib/hello.h"
#include "lib/lab_env.h"
#include "lib/ops.h"
#include "view/metrics.h"
#include "test_progs.h"

#define WEB_LABELS "namespace=\"app\",service=\"web\",port=\"80\",port_name=\"http\"," \
	"protocol=\"TCP\",address=\"198.19.7.1\""
#define ORPHAN_LABELS "namespace=\"app\",service=\"orphan\",port=\"80\",port_name=\"http\"," \
	"protocol=\"TCP\",address=\"198.19.7.4\""

static void check_value(const char *scrape, const char *series, double want)
{
	double got = ops_prom_value(scrape, series);

	if (!ASSERT_EQ((long long)got, (long long)want, series))
		test__printf("series %s: got %g, want %g\n", series, got, want);
}

static void scrape_checks(struct ops_env *e, int web_default, int web_client, int a, int b,
			  int refused)
{
	char *body = NULL, series[512];
	int status;

	if (!ASSERT_OK(ops_http_get(e->agent.metrics_port, "/metrics", &status, &body), "GET"))
		return;
	test__printf("%s", body);
	ASSERT_EQ(status, 200, "/metrics status");
	check_value(body, "gammad_up", 1);
	check_value(body, "gammad_ready", 1);
	check_value(body, "gammad_datapath_up", 1);
	check_value(body, "gammad_apply_generation", 1);
	check_value(body, "gammad_apply_errors_total", 0);
	check_value(body, "gammad_input_errors", 0);
	ASSERT_GT(ops_prom_value(body, "gammad_last_apply_duration_seconds") * 1e6, 0,
		  "apply duration (us)");
	ASSERT_GT(ops_prom_value(body, "gammad_last_apply_timestamp_seconds"), 1.6e9,
		  "apply time");
	check_value(body, "gammad_service_connects_total{" WEB_LABELS "}", web_default + web_client);
	check_value(body, "gammad_service_refused_total{" ORPHAN_LABELS "}", refused);
	check_value(body, "gammad_service_connects_total{" ORPHAN_LABELS "}", 0);
	check_value(body, "gammad_backend_connects_total{namespace=\"app\",service=\"web-v1\","
		    "port=\"80\",backend=\"app/web-v1:80\"}", a);
	check_value(body, "gammad_backend_connects_total{namespace=\"app\",service=\"web-v2\","
		    "port=\"80\",backend=\"app/web-v2:80\"}", b);
	check_value(body, "gammad_backend_endpoints{namespace=\"app\",service=\"web-v1\","
		    "port=\"80\",backend=\"app/web-v1:80\"}", 1);
	ASSERT_HAS_SUBSTR(body, "gammad_route_connects_total{namespace=\"app\",route=\"web-split\"",
			  "producer route series");
	ASSERT_HAS_SUBSTR(body, "gammad_route_connects_total{namespace=\"client\","
			  "route=\"web-client\"", "consumer route series");
	/* The route series carry the selector id: find them by prefix. */
	for (const char *p = body; (p = strstr(p, "gammad_route_connects_total{")); p++) {
		long long v;

		if (sscanf(strchr(p, '}') + 1, " %lld", &v) != 1)
			continue;
		if (!strncmp(p, "gammad_route_connects_total{namespace=\"app\",route=\"web-split\"",
			     62)) {
			const char *eol = strchr(p, '\n'), *svc;

			ASSERT_EQ(v, web_default, "web-split connects");
			svc = strstr(p, "service=\"app/web\",port=\"80\"");
			ASSERT_TRUE(svc && (!eol || svc < eol), "route labelled with its Service port");
		}
		if (!strncmp(p, "gammad_route_connects_total{namespace=\"client\",route=\"web-client\"",
			     66))
			ASSERT_EQ(v, web_client, "web-client connects");
	}
	check_value(body, "gammad_drops_total{reason=\"backend_unresolved\"}", refused);
	check_value(body, "gammad_map_entries{map=\"gammad_fe_v1\"}", 4);
	check_value(body, "gammad_map_entries{map=\"gammad_cons_v1\"}", 1);
	snprintf(series, sizeof(series), "gammad_map_max_entries{map=\"gammad_fe_v1\"}");
	ASSERT_GT(ops_prom_value(body, series), 4, "frontend map capacity");
	ASSERT_HAS_SUBSTR(body, "# TYPE gammad_service_connects_total counter", "TYPE lines");
	free(body);
}

void test_metrics(void)
{
	struct hello_job *j;
	struct ops_env e;
	int web_default = 0, web_client = 0, a = 0, b = 0, refused = 0, status;
	char *body = NULL;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return;
	}
	if (!ASSERT_OK(ops_env_setup(&e), "scenario with the agent running"))
		goto out;
	if (!ASSERT_GT(e.agent.metrics_port, 0, "metrics port logged"))
		goto out;

	if (test__start_subtest("healthz_readyz")) {
		if (ASSERT_OK(ops_http_get(e.agent.metrics_port, "/healthz", &status, &body), "GET"))
			ASSERT_EQ(status, 200, "/healthz");
		free(body);
		if (ASSERT_OK(ops_http_get(e.agent.metrics_port, "/readyz", &status, &body), "GET"))
			ASSERT_EQ(status, 200, "/readyz after the first apply");
		free(body);
		if (ASSERT_OK(ops_http_get(e.agent.metrics_port, "/nope", &status, &body), "GET"))
			ASSERT_EQ(status, 404, "unknown path");
		free(body);
		body = NULL;
	}
	if (test__start_subtest("counters_after_traffic")) {
		/* Known traffic: default class, consumer class, refused. */
		j = ops_hellos(e.cg_srv, "198.19.7.1", 100);
		if (ASSERT_OK_PTR(j, "hellos srv->web")) {
			web_default = j->ok;
			a += j->ids['A'];
			b += j->ids['B'];
			ASSERT_EQ(j->ok, 100, "all answered");
			hello_job_free(j);
		}
		j = ops_hellos(e.cg_cli, "198.19.7.1", 40);
		if (ASSERT_OK_PTR(j, "hellos cli->web")) {
			web_client = j->ok;
			a += j->ids['A'];
			b += j->ids['B'];
			ASSERT_EQ(j->ids['B'], 40, "consumer class to web-v2");
			hello_job_free(j);
		}
		j = ops_hellos(e.cg_cli, "198.19.7.4", 15);
		if (ASSERT_OK_PTR(j, "hellos cli->orphan")) {
			refused = j->fail;
			ASSERT_EQ(j->fail, 15, "unresolved backend refused");
			hello_job_free(j);
		}
		scrape_checks(&e, web_default, web_client, a, b, refused);
	}
	if (test__start_subtest("reapply_on_change")) {
		/* A manifest with an error: the agent re-applies, metrics and status say so. */
		double gen = 0;

		ASSERT_OK(ops_write_file(e.manifests, "bad.yaml",
					 "apiVersion: v1\nkind: Service\n"
					 "metadata: {name: bad, namespace: app}\n"
					 "spec: {ports: [{port: 99999}]}\n"), "write bad.yaml");
		for (int i = 0; i < 100 && gen < 2; i++) {
			usleep(100 * 1000);
			if (!ops_http_get(e.agent.metrics_port, "/metrics", &status, &body))
				gen = ops_prom_value(body, "gammad_apply_generation");
			if (gen < 2) {
				free(body);
				body = NULL;
			}
		}
		if (ASSERT_EQ(gen, 2, "second apply after the change")) {
			check_value(body, "gammad_input_errors", 1);
			check_value(body, "gammad_apply_errors_total", 0);
		}
		free(body);
		body = NULL;
		if (ASSERT_EQ(lab_run_capture(&body, "%s --manifests %s status",
					      test_bin("gammactl"), e.manifests), 0, "status")) {
			ASSERT_HAS_SUBSTR(body, "1 input error(s)", "status file counts it");
			ASSERT_HAS_SUBSTR(body, "bad.yaml:4", "and names the line");
		}
		free(body);
		body = NULL;
	}
	if (test__start_subtest("bad_metrics_addr")) {
		int ret = lab_run_capture(&body, "%s run --manifests %s --cgroup %s --pin-dir %s "
					  "--metrics-addr nonsense", test_bin("gammad"),
					  e.manifests, e.fx.cg, e.fx.pin_dir);

		ASSERT_EQ(ret, 3, "a bad address is fatal");
		ASSERT_HAS_SUBSTR(body, "metrics address nonsense", "names the address");
		free(body);
		body = NULL;
	}
out:
	ops_env_teardown(&e);
}

/* The exposition without a kernel: agent metrics only, and label escaping. */
void test_metrics_render(void)
{
	struct metrics_agent a = { .ready = false, .generation = 0, .apply_errors = 2 };
	struct dpv_frontend fe = { .port = 80, .proto = "TCP", .named = true };
	struct dpv v = { .fes = &fe, .nr_fes = 1 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!ASSERT_OK_PTR(f, "memstream"))
		return;
	ASSERT_OK(metrics_render(f, NULL, &a), "render without a data path");
	fclose(f);
	ASSERT_EQ(ops_prom_value(buf, "gammad_datapath_up"), 0, "data path down");
	ASSERT_EQ(ops_prom_value(buf, "gammad_ready"), 0, "not ready before the first apply");
	ASSERT_EQ(ops_prom_value(buf, "gammad_apply_errors_total"), 2, "apply errors");
	ASSERT_NULL(strstr(buf, "gammad_service_connects_total{"), "no data-path series");
	free(buf);
	buf = NULL;

	snprintf(fe.svc_ns, sizeof(fe.svc_ns), "app");
	snprintf(fe.svc_name, sizeof(fe.svc_name), "we\"b\\x");
	snprintf(fe.addr, sizeof(fe.addr), "10.0.0.1");
	fe.stats.connects = 7;
	f = open_memstream(&buf, &len);
	if (!ASSERT_OK_PTR(f, "memstream"))
		return;
	ASSERT_OK(metrics_render(f, &v, &a), "render a view");
	fclose(f);
	ASSERT_EQ(ops_prom_value(buf, "gammad_service_connects_total{namespace=\"app\","
				 "service=\"we\\\"b\\\\x\",port=\"80\",port_name=\"\","
				 "protocol=\"TCP\",address=\"10.0.0.1\"}"), 7, "escaped labels");
	free(buf);
}
