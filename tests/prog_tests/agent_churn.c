// SPDX-License-Identifier: Apache-2.0
/*
 * Issue 4 acceptance, the agent under traffic: a client in the echo-v1 pod
 * opens one connection after another to the echo ClusterIP while the routes
 * change under it (weights flipped 10 times) and while the agent is killed
 * with SIGKILL and started again. Every connection must succeed and must
 * have gone to a backend that was valid when it connected.
 *
 * Validity comes from a timeline: config k is written at write[k] and the
 * agent's "applied" line for it is seen at applied[k]. Config k may be live
 * from write[k] until applied[k+1]; a connection whose connect() ran in
 * [t_start, t_conn] may have gone to any config live during that window,
 * and nowhere else. The echo Service also selects echo-v3, which no config
 * ever sends to: only a connection that escaped the routes reaches it.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"

#define MAX_CONFIGS 16
#define MAX_CONNS 300000
#define HOLD_MS 300
#define FLIPS 10
/* Outside what the lab allocates (it counts up from 10.96.0.10). */
#define GONE_IP "10.96.0.200"

/* echo-v3: a third pod behind Service echo that no route ever names. */
static const char extra_manifest[] =
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata: {name: echo-v3, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  selector: {matchLabels: {app: echo, version: v3}}\n"
	"  template:\n"
	"    metadata: {labels: {app: echo, version: v3}}\n"
	"    spec:\n"
	"      containers:\n"
	"      - name: echo\n"
	"        args: [--tcp=9090, --port=8080]\n";

/* echo:80 -> echo-v1 (A: 100/0) or echo-v2 (B: 0/100). */
#define FLIP_ROUTE(w1, w2)							\
	"apiVersion: gateway.networking.k8s.io/v1\n"				\
	"kind: HTTPRoute\n"							\
	"metadata: {name: echo-flip, namespace: " MESH_NS "}\n"			\
	"spec:\n"								\
	"  parentRefs:\n"							\
	"  - {group: \"\", kind: Service, name: echo, port: 80}\n"		\
	"  rules:\n"								\
	"  - backendRefs:\n"							\
	"    - {name: echo-v1, port: 80, weight: " #w1 "}\n"			\
	"    - {name: echo-v2, port: 80, weight: " #w2 "}\n"

static const char route_a[] = FLIP_ROUTE(100, 0);
static const char route_b[] = FLIP_ROUTE(0, 100);

/* The consumer namespace's own route for echo:80: echo-v2. */
static const char consumer_route[] =
	CONSUMER_ROUTE_YAML;

struct timeline {
	int n;
	int64_t write_us[MAX_CONFIGS], applied_us[MAX_CONFIGS];
	const char *pod[MAX_CONFIGS];	/* the one valid backend pod of config k */
};

struct churn {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *v1, *v2, *v3;
	struct mc_place at;
	char ip[INET6_ADDRSTRLEN];
	const char *route;		/* in routes.yaml now: route_a or route_b */
};

static const char *other_route(const struct churn *c)
{
	return c->route == route_a ? route_b : route_a;
}

static const char *route_pod(const struct churn *c, const char *route)
{
	return route == route_a ? c->v1->name : c->v2->name;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Config 0: what the agent applied already. */
static void tl_begin(struct timeline *tl, const struct churn *c)
{
	memset(tl, 0, sizeof(*tl));
	tl->pod[0] = route_pod(c, c->route);
	tl->write_us[0] = INT64_MIN;
	tl->applied_us[0] = INT64_MIN;
	tl->n = 1;
}

/* The next config, the other route: written now; with wait, its "applied" line awaited. */
static bool tl_change(struct timeline *tl, struct churn *c, bool wait)
{
	const char *route = other_route(c);
	int k = tl->n, ret;

	if (!ASSERT_LT(k, MAX_CONFIGS, "configs"))
		return false;
	tl->pod[k] = route_pod(c, route);
	tl->write_us[k] = mono_us();
	tl->applied_us[k] = INT64_MAX;
	tl->n++;
	if (wait)
		ret = agent_env_update(&c->ag, "routes.yaml", route);
	else
		ret = agent_env_write(&c->ag, "routes.yaml", route);
	if (!ASSERT_OK(ret, wait ? "agent applied the change" : "write routes.yaml"))
		return false;
	c->route = route;
	if (wait)
		tl->applied_us[k] = c->ag.last_applied_us;
	return true;
}

/* The next config: file `name` written (text NULL: removed), its only valid pod `pod`. */
static bool tl_file(struct timeline *tl, struct churn *c, const char *name, const char *text,
		    const char *pod)
{
	int k = tl->n;

	if (!ASSERT_LT(k, MAX_CONFIGS, "configs"))
		return false;
	tl->pod[k] = pod;
	tl->write_us[k] = mono_us();
	tl->applied_us[k] = INT64_MAX;
	tl->n++;
	if (!ASSERT_OK(agent_env_update(&c->ag, name, text), "agent applied the change"))
		return false;
	tl->applied_us[k] = c->ag.last_applied_us;
	return true;
}

/* Config k was possibly live during [write[k], applied[k+1]]. */
static bool tl_valid(const struct timeline *tl, const struct mc_result *r)
{
	for (int k = 0; k < tl->n; k++) {
		int64_t from = k ? tl->write_us[k] : INT64_MIN;
		int64_t to = k + 1 < tl->n ? tl->applied_us[k + 1] : INT64_MAX;

		if (from <= r->t_conn_us && to >= r->t_start_us && !strcmp(r->pod, tl->pod[k]))
			return true;
	}
	return false;
}

/*
 * Every connection answered by a backend valid at its connect time; in every
 * window where only config k can be live (applied[k] .. write[k+1]) at
 * least one connection was made (so each change was both made and served).
 */
static void tl_check(const struct timeline *tl, const struct mc_result *res, size_t n)
{
	size_t bad = 0, errors = 0, stable[MAX_CONFIGS] = { 0 };
	int64_t t0 = n ? res[0].t_start_us : 0, max_gap = 0;

	for (size_t i = 0; i < n; i++) {
		const struct mc_result *r = &res[i];

		if (i && r->t_start_us - res[i - 1].t_conn_us > max_gap)
			max_gap = r->t_start_us - res[i - 1].t_conn_us;
		if (r->err) {
			if (errors++ < 10)
				test__printf("  connection %zu at +%lld us: %s: %s\n", i,
					     (long long)(r->t_start_us - t0), r->step,
					     strerror(-r->err));
			continue;
		}
		if (!tl_valid(tl, r)) {
			if (bad++ < 10)
				test__printf("  connection %zu at +%lld..%lld us went to %s: not valid then\n",
					     i, (long long)(r->t_start_us - t0),
					     (long long)(r->t_conn_us - t0), r->pod);
			continue;
		}
		for (int k = 0; k < tl->n; k++) {
			int64_t to = k + 1 < tl->n ? tl->write_us[k + 1] : INT64_MAX;

			stable[k] += r->t_start_us >= tl->applied_us[k] && r->t_conn_us <= to;
		}
	}
	for (int k = 0; k < tl->n; k++)
		test__printf("  config %d (%s): written +%lld us, applied +%lld us, %zu connections while alone\n",
			     k, tl->pod[k], k ? (long long)(tl->write_us[k] - t0) : 0LL,
			     k ? (long long)(tl->applied_us[k] - t0) : 0LL, stable[k]);
	test__printf("  %zu connections, %zu failed, %zu to a backend not valid at connect time, longest pause between two %lld us\n",
		     n, errors, bad, (long long)max_gap);
	ASSERT_GT(n, 0, "connections made");
	ASSERT_LT(n, MAX_CONNS, "the loop ran until stopped (raise MAX_CONNS)");
	ASSERT_EQ(errors, 0, "no connection failed");
	ASSERT_EQ(bad, 0, "every connection went to a backend valid at its connect time");
	for (int k = 0; k < tl->n; k++)
		ASSERT_GT(stable[k], 0, "each config served on its own");
}

/*
 * An established connection (to echo:9090, a port no route touches) that
 * ping-pongs through everything the subtest does: not one exchange may fail.
 */
static void pingpong_check(struct mc_loop *pp)
{
	size_t n = mc_loop_stop(pp), errors = mc_count_errors(pp->res, n);

	test__printf("  long-lived connection: %zu exchanges, %zu failed, pod %s\n", n, errors,
		     n ? pp->res[0].pod : "-");
	for (size_t i = 0; i < n && i < 3; i++)
		if (pp->res[i].err)
			test__printf("  exchange %zu: %s: %s\n", i, pp->res[i].step,
				     strerror(-pp->res[i].err));
	ASSERT_GT(n, 10, "exchanges on the long-lived connection");
	ASSERT_EQ(errors, 0, "the long-lived connection never failed");
	if (n)
		ASSERT_EQ(mc_count_pod(pp->res, n, pp->res[0].pod), n - errors,
			  "one pod for the whole connection");
	mc_loop_free(pp);
}

/* 4. Weights flip 10 times under a connection loop. */
/* A long-lived ping-pong connection and a loop of new HTTP connections. */
static bool start_traffic(struct churn *c, struct mc_loop *l, struct mc_loop *pp)
{
	if (!ASSERT_OK(mc_loop_start(pp, &c->at, c->ip, 9090, MC_PINGPONG, 100000),
		       "long-lived connection"))
		return false;
	if (!ASSERT_OK(mc_loop_start(l, &c->at, c->ip, 80, MC_HTTP, MAX_CONNS), "client loop")) {
		mc_loop_free(pp);
		return false;
	}
	return true;
}

static void subtest_flips(struct churn *c)
{
	struct timeline tl = { 0 };
	struct mc_loop l, pp;
	size_t n;

	tl_begin(&tl, c);
	if (!start_traffic(c, &l, &pp))
		return;
	sleep_ms(HOLD_MS);
	for (int i = 1; i <= FLIPS; i++) {
		if (!tl_change(&tl, c, true))
			break;
		sleep_ms(HOLD_MS);
	}
	n = mc_loop_stop(&l);
	tl_check(&tl, l.res, n);
	ASSERT_EQ(mc_count_pod(l.res, n, c->v3->name), 0, "echo-v3 (never routed to) got nothing");
	mc_loop_free(&l);
	pingpong_check(&pp);
}

/*
 * Issue 4: a 70/30 split over 1,000 new connections lands within +-5%; a
 * weight-0 backend (echo-v3) never gets a connection.
 */
static void subtest_split(struct churn *c)
{
	static const char split[] =
		"apiVersion: gateway.networking.k8s.io/v1\n"
		"kind: HTTPRoute\n"
		"metadata: {name: echo-flip, namespace: " MESH_NS "}\n"
		"spec:\n"
		"  parentRefs:\n"
		"  - {group: \"\", kind: Service, name: echo, port: 80}\n"
		"  rules:\n"
		"  - backendRefs:\n"
		"    - {name: echo-v1, port: 80, weight: 70}\n"
		"    - {name: echo-v2, port: 80, weight: 30}\n"
		"    - {name: echo-v3, port: 80, weight: 0}\n";
	static const char v3_service[] =
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: echo-v3, namespace: " MESH_NS "}\n"
		"spec:\n"
		"  clusterIP: 10.96.0.201\n"
		"  selector: {app: echo, version: v3}\n"
		"  ports:\n"
		"  - {name: http, port: 80, targetPort: 8080, protocol: TCP}\n"
		"---\n"
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata:\n"
		"  name: echo-v3-x1\n"
		"  namespace: " MESH_NS "\n"
		"  labels: {kubernetes.io/service-name: echo-v3}\n"
		"addressType: IPv4\n"
		"endpoints:\n"
		"- addresses: [%s]\n"
		"  conditions: {ready: true, serving: true, terminating: false}\n"
		"  targetRef: {kind: Pod, namespace: " MESH_NS ", name: %s}\n"
		"ports:\n"
		"- {name: http, port: 8080, protocol: TCP}\n";
	char text[2048];
	struct mc_loop l;
	size_t n, v1, v2;

	/* echo-v3 as a Service of its own, so that a route can name it with weight 0. */
	snprintf(text, sizeof(text), v3_service, c->v3->ip4, c->v3->name);
	if (!ASSERT_OK(agent_env_write(&c->ag, "v3.yaml", text), "write v3.yaml") ||
	    !ASSERT_OK(agent_env_update(&c->ag, "routes.yaml", split), "agent applied 70/30/0"))
		goto out;
	c->route = NULL;
	n = mc_run(&l, &c->at, c->ip, 80, MC_HTTP, 1000);
	v1 = mc_count_pod(l.res, n, c->v1->name);
	v2 = mc_count_pod(l.res, n, c->v2->name);
	test__printf("  1000 connections: echo-v1 %zu, echo-v2 %zu, echo-v3 %zu, failed %zu\n", v1, v2,
		     mc_count_pod(l.res, n, c->v3->name), mc_count_errors(l.res, n));
	ASSERT_EQ(n, 1000, "connections made");
	ASSERT_EQ(mc_count_errors(l.res, n), 0, "no connection failed");
	ASSERT_EQ(mc_count_pod(l.res, n, c->v3->name), 0, "weight 0: no connection");
	ASSERT_GE(v1, 650, "echo-v1 >= 65%");
	ASSERT_LE(v1, 750, "echo-v1 <= 75%");
	ASSERT_EQ(v1 + v2, n, "only the weighted backends");
	mc_loop_free(&l);
out:
	/* Back to the A route, and without the extra Service. */
	agent_env_write(&c->ag, "v3.yaml", NULL);
	if (ASSERT_OK(agent_env_update(&c->ag, "routes.yaml", route_a), "back to route A"))
		c->route = route_a;
}

/*
 * 4b. The consumer namespace's own route comes and goes 10 times under a
 * connection loop from its pod: echo-v1 (the producer route) without it,
 * echo-v2 with it.
 */
static void subtest_consumer_flips(struct churn *c)
{
	const struct lab_pod_info *cons = lab_env_find(&c->lab, CONSUMER_NS, "echo-v1");
	struct timeline tl = { 0 };
	struct mc_place at;
	struct mc_loop l;
	size_t n;

	if (!ASSERT_OK_PTR(cons, "consumer pod"))
		return;
	at = (struct mc_place){ .cgroup = cons->container_cgroup, .netns = cons->netns };
	/* The producer route to echo-v1 first, outside the timeline. */
	if (c->route != route_a && !tl_change(&tl, c, true))
		return;
	tl_begin(&tl, c);
	if (!ASSERT_OK(mc_loop_start(&l, &at, c->ip, 80, MC_HTTP, MAX_CONNS), "client loop"))
		return;
	sleep_ms(HOLD_MS);
	for (int i = 1; i <= FLIPS; i++) {
		if (!tl_file(&tl, c, "consumer.yaml", i % 2 ? consumer_route : NULL,
			     i % 2 ? c->v2->name : c->v1->name))
			break;
		sleep_ms(HOLD_MS);
	}
	n = mc_loop_stop(&l);
	tl_check(&tl, l.res, n);
	ASSERT_EQ(mc_count_pod(l.res, n, c->v3->name), 0, "echo-v3 (never routed to) got nothing");
	mc_loop_free(&l);
	if (tl.n != FLIPS + 1)	/* stopped half way: no consumer route for what follows */
		agent_env_update(&c->ag, "consumer.yaml", NULL);
}

/*
 * 5. kill -9 the agent under a connection loop: the pinned state keeps
 * routing; a change written while no agent runs is applied by the next
 * one, and so is a change made after it started.
 */
static void subtest_kill9(struct churn *c)
{
	struct timeline tl = { 0 };
	int64_t t_kill, t_restart = INT64_MAX, t_kill2 = INT64_MAX, t_end2 = 0;
	struct mc_loop l, pp;
	size_t n, down = 0, across = 0;

	tl_begin(&tl, c);
	if (!start_traffic(c, &l, &pp))
		return;
	sleep_ms(HOLD_MS);
	t_kill = mono_us();
	agent_env_kill(&c->ag, SIGKILL);
	sleep_ms(HOLD_MS);

	/* Config 1 written with no agent running: the restarted one must apply it. */
	if (!tl_change(&tl, c, false))
		goto out;
	sleep_ms(HOLD_MS);
	t_restart = mono_us();
	if (!ASSERT_OK(agent_env_start(&c->ag), "restarted agent applied"))
		goto out;
	tl.applied_us[1] = c->ag.last_applied_us;
	sleep_ms(HOLD_MS);
	/* A change made after the restart. */
	if (!tl_change(&tl, c, true))
		goto out;
	sleep_ms(HOLD_MS);
	/*
	 * Killed and restarted on unchanged manifests: the config stays, so
	 * every connection across this restart must go to its backend (a
	 * restart that flushed or rewrote in place would show here).
	 */
	t_kill2 = mono_us();
	agent_env_kill(&c->ag, SIGKILL);
	sleep_ms(HOLD_MS);
	if (ASSERT_OK(agent_env_start(&c->ag), "second restart applied"))
		sleep_ms(HOLD_MS);
	t_end2 = mono_us();
out:
	n = mc_loop_stop(&l);
	tl_check(&tl, l.res, n);
	for (size_t i = 0; i < n; i++) {
		down += l.res[i].t_start_us > t_kill && l.res[i].t_conn_us < t_restart;
		across += l.res[i].t_start_us > t_kill2 && l.res[i].t_conn_us < t_end2;
	}
	test__printf("  %zu connections while no agent ran, %zu across the second restart\n", down,
		     across);
	ASSERT_GT(down, 0, "connections made while no agent ran");
	ASSERT_GT(across, 0, "connections made across the second restart");
	ASSERT_EQ(mc_count_pod(l.res, n, c->v3->name), 0, "echo-v3 (never routed to) got nothing");
	mc_loop_free(&l);
	pingpong_check(&pp);
}

/* A Service of the test's own, with its EndpointSlice: echo-gone -> the echo-v1 pod. */
static void gone_manifest(const struct churn *c, char *buf, size_t len)
{
	snprintf(buf, len,
		 "apiVersion: v1\n"
		 "kind: Service\n"
		 "metadata: {name: echo-gone, namespace: " MESH_NS "}\n"
		 "spec:\n"
		 "  clusterIP: " GONE_IP "\n"
		 "  selector: {app: echo, version: v1}\n"
		 "  ports:\n"
		 "  - {name: http, port: 80, targetPort: 8080, protocol: TCP}\n"
		 "---\n"
		 "apiVersion: discovery.k8s.io/v1\n"
		 "kind: EndpointSlice\n"
		 "metadata:\n"
		 "  name: echo-gone-x1\n"
		 "  namespace: " MESH_NS "\n"
		 "  labels: {kubernetes.io/service-name: echo-gone}\n"
		 "addressType: IPv4\n"
		 "endpoints:\n"
		 "- addresses: [%s]\n"
		 "  conditions: {ready: true, serving: true, terminating: false}\n"
		 "  targetRef: {kind: Pod, namespace: " MESH_NS ", name: %s}\n"
		 "ports:\n"
		 "- {name: http, port: 8080, protocol: TCP}\n",
		 c->v1->ip4, c->v1->name);
}

/*
 * A Service deleted while no agent runs: the restarted agent must remove
 * its frontend (stale state goes), and leave every other Service served.
 */
static void subtest_restart_removes_stale(struct churn *c)
{
	const struct mc_place at_short = { .cgroup = c->at.cgroup, .netns = c->at.netns,
					   .timeout_ms = 1000 };
	char text[2048];
	struct mc_loop l;
	size_t n;

	gone_manifest(c, text, sizeof(text));
	if (!ASSERT_OK(agent_env_update(&c->ag, "gone.yaml", text), "agent applied echo-gone"))
		return;
	n = mc_run(&l, &c->at, GONE_IP, 80, MC_HTTP, 5);
	ASSERT_EQ(mc_count_pod(l.res, n, c->v1->name), 5, "echo-gone served by echo-v1");
	mc_loop_free(&l);

	agent_env_kill(&c->ag, SIGKILL);
	if (!ASSERT_OK(agent_env_write(&c->ag, "gone.yaml", NULL), "remove echo-gone") ||
	    !ASSERT_OK(agent_env_start(&c->ag), "restarted agent applied"))
		return;
	/* No frontend any more: the ClusterIP is the host's blackhole again. */
	n = mc_run(&l, &at_short, GONE_IP, 80, MC_HTTP, 2);
	ASSERT_EQ(n, 2, "connections tried");
	ASSERT_EQ(mc_count_errors(l.res, n), n, "echo-gone no longer served after the restart");
	mc_loop_free(&l);
	/* Nor after the restarted agent's next apply (which reuses the old id range). */
	if (!ASSERT_OK(agent_env_update(&c->ag, "ns.yaml",
					"apiVersion: v1\nkind: Namespace\nmetadata: {name: churn-extra}\n"),
		       "one more apply"))
		return;
	n = mc_run(&l, &at_short, GONE_IP, 80, MC_HTTP, 2);
	ASSERT_EQ(mc_count_errors(l.res, n), n, "echo-gone not served after the next apply");
	mc_loop_free(&l);
	n = mc_run(&l, &c->at, c->ip, 80, MC_HTTP, 10);
	ASSERT_EQ(mc_count_errors(l.res, n), 0, "echo still served");
	ASSERT_EQ(mc_count_pod(l.res, n, route_pod(c, c->route)), n, "echo by its route");
	mc_loop_free(&l);
}

void test_agent_churn(void)
{
	const char *manifests = test_shared_path("gateway-api/conformance/mesh/manifests.yaml");
	char extra[PATH_MAX + 32], args[2 * PATH_MAX + 64], ips[2][INET6_ADDRSTRLEN];
	static const char *const l4_args[] = { "--no-http-engine", NULL };
	struct churn c = { 0 };
	char *out = NULL;
	FILE *f;
	int ret;

	if (!manifests) {
		test__skip("no shared gateway-api/conformance/mesh/manifests.yaml");
		return;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return;
	}
	if (lab_env_start(&c.lab, NULL))
		goto cleanup;
	snprintf(extra, sizeof(extra), "%s/extra.yaml", c.lab.dir);
	f = fopen(extra, "we");
	if (!ASSERT_OK_PTR(f, "write extra.yaml"))
		goto cleanup;
	fputs(extra_manifest, f);
	fclose(f);
	snprintf(args, sizeof(args), "%s %s", manifests, extra);
	ret = lab_env_up(&c.lab, args, &out);
	if (!ASSERT_EQ(ret, 0, "lab up")) {
		test__printf("%s", out ? out : "");
		goto cleanup;
	}
	c.v1 = lab_env_find(&c.lab, MESH_NS, "echo-v1");
	c.v2 = lab_env_find(&c.lab, MESH_NS, "echo-v2");
	c.v3 = lab_env_find(&c.lab, MESH_NS, "echo-v3");
	if (!ASSERT_OK_PTR(c.v1, "echo-v1 pod") || !ASSERT_OK_PTR(c.v2, "echo-v2 pod") ||
	    !ASSERT_OK_PTR(c.v3, "echo-v3 pod"))
		goto cleanup;
	if (!ASSERT_GE(lab_env_cluster_ips(&c.lab, MESH_NS, "echo", ips, 2), 1, "echo ClusterIP"))
		goto cleanup;
	strcpy(c.ip, ips[0]);
	c.route = route_a;
	c.at = (struct mc_place){ .cgroup = c.v1->container_cgroup, .netns = c.v1->netns };
	/*
	 * The L4 path on purpose: a connection's backend is decided at
	 * connect(), which the timeline checks, and survives kill -9. With the
	 * HTTP engine each request is decided in the agent and a kill -9 cuts
	 * the requests in flight (engine_restart covers that path).
	 */
	if (!ASSERT_OK(agent_env_init(&c.ag, &c.lab), "agent manifests dir"))
		goto cleanup;
	c.ag.args = l4_args;
	if (!ASSERT_OK(agent_env_write(&c.ag, "routes.yaml", route_a), "routes.yaml") ||
	    !ASSERT_OK(agent_env_start(&c.ag), "gammad run: first apply"))
		goto cleanup;

	if (test__start_subtest("split_70_30_weight_0"))
		subtest_split(&c);
	if (test__start_subtest("weight_flips_under_traffic"))
		subtest_flips(&c);
	if (test__start_subtest("consumer_route_flips_under_traffic"))
		subtest_consumer_flips(&c);
	if (test__start_subtest("kill9_restart_under_traffic"))
		subtest_kill9(&c);
	if (test__start_subtest("restart_removes_stale"))
		subtest_restart_removes_stale(&c);
cleanup:
	free(out);
	agent_env_fini(&c.ag);
	lab_env_fini(&c.lab);
}
