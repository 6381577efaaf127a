// SPDX-License-Identifier: Apache-2.0
/*
 * The agent in Kubernetes mode (gammad run --kubeconfig) against the test
 * API server (tests/lib/kube_apiserver.py) on the data path fixture:
 *
 *  serve_and_down  the ops scenario (tests/lib/ops.h) from the API server;
 *                  hellos reach pods through ClusterIPs; route statuses are
 *                  written (another controller's entry kept, a 409 retried,
 *                  parentRef group "core"); the API server goes away for
 *                  GAMMAD_TEST_KUBE_DOWN_S seconds (default 30, the issue's
 *                  outage): the data path keeps serving, no pass runs;
 *                  a Service deleted meanwhile is gone from the maps after.
 *  incremental     --no-http-engine (and incremental_engine: with the
 *                  engine): route and EndpointSlice changes go
 *                  through the incremental pipeline (the log's commits) and
 *                  traffic follows them.
 *  handover        a new agent beside the running one takes the engine's
 *                  listeners (handover.h), the Lease and the applies; the
 *                  old one (--handover-wait) waits for SIGTERM, exits 0.
 *  election        two agents as two nodes (own cgroup, pin dir,
 *                  --node-name): one holds the Lease and writes statuses;
 *                  the holder killed -9, the other takes over within the
 *                  lease duration and writes.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datapath/cgroup.h"
#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/dp_fixture.h"
#include "lib/hello.h"
#include "lib/kube_env.h"
#include "lib/netns.h"
#include "lib/ops.h"
#include "test_progs.h"

#define LEASE_S 6
#define WEB_SPLIT "/apis/gateway.networking.k8s.io/v1/namespaces/app/httproutes/web-split"

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double mono_s(void)
{
	return mono_us() / 1e6;
}

/* hellos from cgroup cg to vip:80: how many were answered. */
static int hellos_ok(const char *cg, const char *vip, int n)
{
	struct hello_job *j = ops_hellos(cg, vip, n);
	int ok;

	if (!j)
		return -1;
	ok = j->ok;
	hello_job_free(j);
	return ok;
}

static json_t *get_json(struct kube_server *ks, const char *path)
{
	char *body = NULL;
	json_t *v = NULL;

	if (kube_server_req(ks, "GET", path, NULL, &body) == 200)
		v = json_loads(body, 0, NULL);
	free(body);
	return v;
}

/* status.parents of a route as text, for messages; "" when none. */
static const json_t *parents_of(const json_t *route)
{
	return json_object_get(json_object_get(route, "status"), "parents");
}

/* Our entry's condition type's status/reason of route path; 0 when found. */
static int our_condition(struct kube_server *ks, const char *path, const char *type,
			 char *status, char *reason, long long *observed, int *others)
{
	json_t *r = get_json(ks, path), *e, *c;
	size_t i, j;
	int ret = -ENOENT;

	*others = 0;
	json_array_foreach(parents_of(r), i, e) {
		const char *cn = json_string_value(json_object_get(e, "controllerName"));

		if (!cn || strcmp(cn, "gammad.io/mesh")) {
			(*others)++;
			continue;
		}
		json_array_foreach(json_object_get(e, "conditions"), j, c) {
			if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", type))
				continue;
			snprintf(status, 16, "%s", json_string_value(json_object_get(c, "status")) ?: "");
			snprintf(reason, 64, "%s", json_string_value(json_object_get(c, "reason")) ?: "");
			*observed = json_integer_value(json_object_get(c, "observedGeneration"));
			ret = 0;
		}
	}
	json_decref(r);
	return ret;
}

static bool wait_condition(struct kube_server *ks, const char *path, const char *type,
			   const char *want_status, const char *want_reason,
			   long long want_gen, int ms)
{
	char status[16] = "", reason[64] = "";
	long long gen = 0;
	int others = 0;

	for (int t = 0; t <= ms; t += 100) {
		if (!our_condition(ks, path, type, status, reason, &gen, &others) &&
		    !strcmp(status, want_status) && !strcmp(reason, want_reason) &&
		    (!want_gen || gen == want_gen))
			return true;
		nap_ms(100);
	}
	test__printf("%s %s: status %s reason %s observedGeneration %lld, want %s %s %lld\n",
		     path, type, status, reason, gen, want_status, want_reason, want_gen);
	return false;
}

/* A route with another controller's status entry, and a parentRef of group "core". */
static const char other_route_yaml[] =
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: shared, namespace: app}\n"
	"spec:\n  parentRefs: [{group: core, kind: Service, name: web, port: 80},"
	" {name: some-gateway}]\n"
	"  rules:\n  - backendRefs: [{name: web-v1, port: 80}]\n"
	"status:\n  parents:\n  - parentRef: {name: some-gateway}\n"
	"    controllerName: example.com/gateway\n"
	"    conditions: [{type: Accepted, status: 'True', reason: Accepted, message: theirs,"
	" observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z'}]\n";

/* The data path fixture with the client and server pod cgroups, the API server with the scenario. */
struct kube_env {
	struct dp_fixture fx;
	struct kube_server ks;
	char cg_cli[4200], cg_srv[4200], dir[64];
};

static int kenv_setup(struct kube_env *e)
{
	memset(e, 0, sizeof(*e));
	kube_server_init(&e->ks);
	if (!ASSERT_OK(fx_setup(&e->fx, 2, false), "fixture"))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "/tmp/gammad-kube-agent-XXXXXX");
	if (!ASSERT_OK_PTR(mkdtemp(e->dir), "temp dir")) {
		e->dir[0] = 0;
		return -1;
	}
	snprintf(e->cg_cli, sizeof(e->cg_cli), "%s/pod%s", e->fx.cg, OPS_CLI_UID);
	snprintf(e->cg_srv, sizeof(e->cg_srv), "%s/pod%s", e->fx.cg, OPS_SRV_UID);
	if (!ASSERT_OK(mkdir(e->cg_cli, 0755), "client pod cgroup") ||
	    !ASSERT_OK(mkdir(e->cg_srv, 0755), "server pod cgroup"))
		return -1;
	if (!ASSERT_OK(kube_server_start(&e->ks, NULL), "API server") ||
	    !ASSERT_OK(kube_server_load_yaml(&e->ks, ops_scenario_yaml), "scenario"))
		return -1;
	return 0;
}

static void kenv_teardown(struct kube_env *e)
{
	kube_server_stop(&e->ks);
	if (e->dir[0])
		sys_run("rm -rf '%s'", e->dir);
	fx_teardown(&e->fx);	/* also the pod cgroups below its cgroup */
}

static void test_serve_and_down(void)
{
	const char *down_env = getenv("GAMMAD_TEST_KUBE_DOWN_S");
	int down_s = down_env ? atoi(down_env) : 30;
	const char *args[] = { "--resync", "2", NULL };
	struct kube_env e;
	struct dp_fixture *fx = &e.fx;
	struct kube_server *ks = &e.ks;
	struct kube_agent ag = { 0 };
	char log[4096], body[128], *cg_cli = e.cg_cli;
	long fe_before;
	int applied, others = 0;
	double t0;

	if (down_s < 1)
		down_s = 10;
	if (kenv_setup(&e) ||
	    !ASSERT_OK(kube_server_load_yaml(ks, other_route_yaml), "shared route"))
		goto out;
	snprintf(log, sizeof(log), "%s/agent.log", e.dir);
	/* The first status write of web-split meets a 409: read again, retry. */
	ASSERT_EQ(kube_server_post(ks, "/_test/fault", "{\"match\": \"/httproutes/web-split/"
				   "status\", \"method\": \"PUT\", \"status\": 409, \"count\": 1}",
				   NULL), 200, "409 fault");
	t0 = mono_s();
	if (!ASSERT_OK(kube_agent_start(&ag, ks, fx->cg, fx->pin_dir, log, args, true),
		       "agent applied"))
		goto out;
	test__printf("first apply %.2f s after start\n", mono_s() - t0);

	/* Served: web-v1 is pod A, web-v2 pod B. */
	ASSERT_EQ(hellos_ok(cg_cli, "198.19.7.2", 10), 10, "web-v1 answers");
	ASSERT_EQ(hellos_ok(cg_cli, "198.19.7.3", 10), 10, "web-v2 answers");

	/* Statuses, by the one (elected) writer. */
	ASSERT_TRUE(wait_condition(ks, WEB_SPLIT, "Accepted", "True", "Accepted", 1, 10000),
		    "web-split Accepted (after a 409)");
	ASSERT_TRUE(wait_condition(ks, "/apis/gateway.networking.k8s.io/v1/namespaces/app/"
				   "httproutes/orphan-broken", "ResolvedRefs", "False",
				   "BackendNotFound", 1, 10000), "orphan-broken unresolved");
	ASSERT_TRUE(wait_condition(ks, "/apis/gateway.networking.k8s.io/v1/namespaces/app/"
				   "httproutes/shared", "Accepted", "True", "Accepted", 1, 10000),
		    "shared Accepted on its group core parentRef");
	{
		char st[16], rs[64];
		long long g;

		our_condition(ks, "/apis/gateway.networking.k8s.io/v1/namespaces/app/httproutes/"
			      "shared", "Accepted", st, rs, &g, &others);
		ASSERT_EQ(others, 1, "the gateway controller's entry kept");
	}

	/* The API server goes away; a Service is deleted meanwhile. */
	fe_before = pinned_entries(fx->pin_dir, GAMMAD_MAP_FRONTEND);
	applied = kube_agent_count(&ag, " applied ");
	snprintf(body, sizeof(body), "{\"seconds\": %d}", down_s);
	t0 = mono_s();
	ASSERT_EQ(kube_server_post(ks, "/_test/down", body, NULL), 200, "down");
	nap_ms(500);
	ASSERT_EQ(kube_server_req(ks, "DELETE", "/api/v1/namespaces/app/services/web-v2", NULL,
				  NULL), 200, "delete web-v2 while away");
	ASSERT_EQ(kube_server_post(ks, "/_test/compact", "{}", NULL), 200, "compact");
	while (mono_s() - t0 < down_s - 1.5) {
		ASSERT_EQ(hellos_ok(cg_cli, "198.19.7.3", 3), 3, "web-v2 still served while away");
		nap_ms(1000);
	}
	ASSERT_EQ(pinned_entries(fx->pin_dir, GAMMAD_MAP_FRONTEND), fe_before,
		  "frontends kept while away");
	ASSERT_EQ(kube_agent_count(&ag, " applied "), applied, "no pass while away");
	/* Back: relisted, the deleted Service is gone. */
	ASSERT_OK(kube_agent_wait(&ag, " applied ", applied + 1, (down_s + 20) * 1000),
		  "applied after the API server is back");
	test__printf("applied %.2f s after the API port went down for %d s\n", mono_s() - t0,
		     down_s);
	ASSERT_LT(pinned_entries(fx->pin_dir, GAMMAD_MAP_FRONTEND), fe_before,
		  "web-v2's frontend removed");
	ASSERT_EQ(hellos_ok(cg_cli, "198.19.7.2", 5), 5, "web-v1 still answers");
	ASSERT_GE(kube_agent_count(&ag, "deleted while not watched"), 1, "logged as such");
out:
	kube_agent_fini(&ag);
	kenv_teardown(&e);
}

/* hellos from cg to vip:80: how many pod ('A' or 'B') answered, -1: none ran. */
static int hellos_from(const char *cg, const char *vip, int n, char pod)
{
	struct hello_job *j = ops_hellos(cg, vip, n);
	int got = j ? j->ids[(unsigned char)pod] : -1;

	hello_job_free(j);
	return got;
}

/*
 * PATCH path with body, wait for the agent's next log line what (counted
 * before the PATCH), then for the traffic: 10 hellos from the client to
 * vip until pod answers them all, up to 5 s, since the route statuses the
 * agents write come back as watch events and commit too, so the line
 * counted may be such a commit's, before the change's. How many of the
 * last 10 pod answered.
 */
static int patch_then_hellos(struct kube_env *e, struct kube_agent *ag, const char *what,
			     const char *path, const char *body, const char *vip, char pod)
{
	int seen = kube_agent_count(ag, what), got = -1;

	if (!ASSERT_EQ(kube_server_req(&e->ks, "PATCH", path, body, NULL), 200, path) ||
	    !ASSERT_OK(kube_agent_wait(ag, what, seen + 1, 10000), what))
		return -1;
	for (int i = 0; i < 50; i++) {
		got = hellos_from(e->cg_cli, vip, 10, pod);
		if (got == 10)
			break;
		nap_ms(100);
	}
	return got;
}

#define WEB_CLIENT "/apis/gateway.networking.k8s.io/v1/namespaces/client/httproutes/web-client"
#define WEB_V1_SLICE "/apis/discovery.k8s.io/v1/namespaces/app/endpointslices/web-v1-1"
#define WEB_V1_TO_B "{\"endpoints\": [{\"addresses\": [\"198.18.2.2\"], " \
		    "\"conditions\": {\"ready\": true}}]}"

/*
 * With the HTTP engine (the default) and without it, each change goes
 * through the incremental pipeline: the log says "incremental translation"
 * of one Service per change (never "full" after the first), and traffic
 * follows a consumer route's new backend and an EndpointSlice's new
 * endpoint (with the engine, the route's connections reach the engine's
 * listener, which passes the non-HTTP hellos to the route's backends).
 */
/*
 * The first apply wrote the whole store: every Service and EndpointSlice the
 * lists brought was in the pipeline's model (the log line gives both counts).
 * A pass before the last list's events were drained applied Services without
 * their slices (no endpoints for a moment after every start).
 */
static void check_first_apply_whole(const char *log)
{
	size_t svc = 0, sl = 0, pods, routes, a_svc = 1, a_sl = 1;
	unsigned long long lists, pages, streamed;
	char buf[65536], *line;
	double ms;
	FILE *f = fopen(log, "r");
	size_t n;

	if (!ASSERT_OK_PTR(f, "agent log"))
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	line = strstr(buf, "kube: first apply ");
	if (!ASSERT_OK_PTR(line, "first apply logged"))
		return;
	ASSERT_EQ(sscanf(line, "kube: first apply %lf ms after start (%zu services, %zu endpoint "
			 "slices, %zu pods, %zu httproutes; %llu lists in %llu pages, %llu "
			 "streamed; applied %zu services, %zu endpoint slices)", &ms, &svc, &sl,
			 &pods, &routes, &lists, &pages, &streamed, &a_svc, &a_sl), 10,
		  "first apply line");
	ASSERT_EQ(a_svc, svc, "first apply: every listed Service");
	ASSERT_EQ(a_sl, sl, "first apply: every listed EndpointSlice");
	ASSERT_GT(sl, 0, "slices listed");
}

static void test_incremental(bool engine)
{
	const char *l4_args[] = { "--no-http-engine", "--resync", "3600", NULL };
	const char *engine_args[] = { "--resync", "3600", NULL };
	const char **args = engine ? engine_args : l4_args;
	struct kube_env e;
	struct kube_agent ag = { 0 };
	char log[4096];

	if (kenv_setup(&e))
		goto out;
	snprintf(log, sizeof(log), "%s/agent.log", e.dir);
	if (!ASSERT_OK(kube_agent_start(&ag, &e.ks, e.fx.cg, e.fx.pin_dir, log, args, true),
		       "agent applied"))
		goto out;
	check_first_apply_whole(log);
	ASSERT_EQ(kube_agent_count(&ag, "full translation"), 1, "the first commit is full");
	/* The client namespace's consumer route: web -> web-v2 (pod B). */
	ASSERT_EQ(hellos_from(e.cg_cli, "198.19.7.1", 10, 'B'), 10,
		  "web: pod B for the client namespace");
	ASSERT_EQ(patch_then_hellos(&e, &ag, "incremental translation", WEB_CLIENT,
				    "{\"spec\": {\"rules\": [{\"backendRefs\": [{\"name\": "
				    "\"web-v1\", \"namespace\": \"app\", \"port\": 80}]}]}}",
				    "198.19.7.1", 'A'), 10, "web: pod A after the route change");
	ASSERT_EQ(patch_then_hellos(&e, &ag, "incremental translation", WEB_V1_SLICE, WEB_V1_TO_B,
				    "198.19.7.2", 'B'), 10, "web-v1: pod B after the slice change");
	ASSERT_EQ(hellos_from(e.cg_cli, "198.19.7.1", 10, 'B'), 10, "web (to web-v1): pod B too");
	ASSERT_EQ(kube_agent_count(&ag, "full translation"), 1, "no whole pass after the first");
out:
	kube_agent_fini(&ag);
	kenv_teardown(&e);
}

/* Wait up to ms for pid to exit; its wait status, or -1. */
static int wait_exit(pid_t pid, int ms)
{
	int status;

	for (int t = 0; t < ms; t += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		nap_ms(20);
	}
	return -1;
}

/*
 * A new agent beside a running one (the restart of a DaemonSet pod, which
 * surges): the old one hands its engine listeners over, stops applying and
 * (--handover-wait) waits for SIGTERM, releasing the Lease; the new one
 * serves, writes statuses and follows changes.
 */
static void test_handover(void)
{
	const char *args[] = { "--resync", "3600", "--handover-wait", NULL };
	struct kube_env e;
	struct kube_agent old = { 0 }, new = { 0 };
	char log_old[4096], log_new[4096];
	int old_applied, status;

	if (kenv_setup(&e))
		goto out;
	snprintf(log_old, sizeof(log_old), "%s/old.log", e.dir);
	snprintf(log_new, sizeof(log_new), "%s/new.log", e.dir);
	if (!ASSERT_OK(kube_agent_start(&old, &e.ks, e.fx.cg, e.fx.pin_dir, log_old, args, true),
		       "old agent applied") ||
	    !ASSERT_OK(kube_agent_wait(&old, "status writer: holding lease", 1, 10000),
		       "old agent writes statuses"))
		goto out;
	ASSERT_EQ(hellos_ok(e.cg_cli, "198.19.7.2", 10), 10, "web-v1 answers");
	if (!ASSERT_OK(kube_agent_start(&new, &e.ks, e.fx.cg, e.fx.pin_dir, log_new, args, true),
		       "new agent applied"))
		goto out;
	ASSERT_OK(kube_agent_wait(&new, "took the listeners of", 1, 10000), "listeners taken");
	ASSERT_OK(kube_agent_wait(&old, "waiting for SIGTERM", 1, 10000), "old: handed over");
	ASSERT_OK(kube_agent_wait(&new, "status writer: holding lease", 1, 20000),
		  "the new agent writes statuses (the old one released the Lease)");
	old_applied = kube_agent_count(&old, " applied ");
	ASSERT_EQ(hellos_ok(e.cg_cli, "198.19.7.2", 10), 10, "web-v1 answers after the handover");
	/* A change after the handover: only the new agent applies it. */
	ASSERT_EQ(patch_then_hellos(&e, &new, " applied ", WEB_V1_SLICE, WEB_V1_TO_B, "198.19.7.2",
				    'B'), 10, "web-v1: pod B after the change");
	ASSERT_EQ(kube_agent_count(&old, " applied "), old_applied, "the old agent applies nothing");
	ASSERT_EQ(wait_exit(old.pid, 200), -1, "the old agent waits");
	kill(old.pid, SIGTERM);
	status = wait_exit(old.pid, 10000);
	if (status)
		kill(old.pid, SIGKILL), waitpid(old.pid, NULL, 0);
	old.pid = 0;
	ASSERT_EQ(status, 0, "SIGTERM: the old agent exits 0");
	ASSERT_EQ(hellos_ok(e.cg_cli, "198.19.7.2", 10), 10, "web-v1 answers after it exited");
out:
	kube_agent_fini(&new);
	kube_agent_fini(&old);
	kenv_teardown(&e);
}

/* ---- two nodes, one writer ----------------------------------------------------- */

struct node {
	char cg[4200], pin[128], log[4096], name[32];
	struct kube_agent ag;
	bool cg_made;
};

static int node_start(struct node *n, struct kube_server *ks, const char *root, const char *dir,
		      char id)
{
	const char *args[] = { "--node-name", n->name, "--lease-duration", "6", NULL };

	snprintf(n->name, sizeof(n->name), "node-%c", id);
	snprintf(n->cg, sizeof(n->cg), "%s/gammad-kube-test-%d-%c", root, getpid(), id);
	snprintf(n->pin, sizeof(n->pin), "/sys/fs/bpf/gammad-kube-test-%d-%c", getpid(), id);
	snprintf(n->log, sizeof(n->log), "%s/agent-%c.log", dir, id);
	if (mkdir(n->cg, 0755))
		return -errno;
	n->cg_made = true;
	return kube_agent_start(&n->ag, ks, n->cg, n->pin, n->log, args, true);
}

static void node_fini(struct node *n)
{
	kube_agent_fini(&n->ag);
	if (n->cg_made)
		rmdir(n->cg);
	n->cg_made = false;
}

static const char *lease_holder(struct kube_server *ks, char *buf, size_t len)
{
	json_t *l = get_json(ks, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
			     "gammad-status-writer");
	const char *h = json_string_value(json_object_get(json_object_get(l, "spec"),
							  "holderIdentity"));

	snprintf(buf, len, "%s", h ? h : "");
	json_decref(l);
	return buf;
}

static void test_election(void)
{
	struct kube_server ks;
	struct node nodes[2] = { 0 };
	char root[4096], dir[64] = "", holder[256];
	struct node *leader = NULL, *other = NULL;
	double t0, took;
	int holding;

	kube_server_init(&ks);
	if (!ASSERT_OK(cgroup2_mount_path(root, sizeof(root)), "cgroup2"))
		return;
	snprintf(dir, sizeof(dir), "/tmp/gammad-kube-nodes-XXXXXX");
	if (!ASSERT_OK_PTR(mkdtemp(dir), "temp dir")) {
		dir[0] = 0;
		goto out;
	}
	if (!ASSERT_OK(kube_server_start(&ks, NULL), "API server") ||
	    !ASSERT_OK(kube_server_load_yaml(&ks, ops_scenario_yaml), "scenario"))
		goto out;
	for (int i = 0; i < 2; i++)
		if (!ASSERT_OK(node_start(&nodes[i], &ks, root, dir, (char)('a' + i)), "agent"))
			goto out;
	/* One of them holds the Lease. */
	for (int t = 0; t < 10000 && !leader; t += 100) {
		for (int i = 0; i < 2; i++)
			if (kube_agent_count(&nodes[i].ag, "status writer: holding lease"))
				leader = &nodes[i], other = &nodes[1 - i];
		nap_ms(100);
	}
	if (!ASSERT_OK_PTR(leader, "a leader"))
		goto out;
	nap_ms(2500);	/* a few retry periods: the other must not take it too */
	holding = kube_agent_count(&nodes[0].ag, "holding lease") +
		  kube_agent_count(&nodes[1].ag, "holding lease");
	ASSERT_EQ(holding, 1, "exactly one holder");
	lease_holder(&ks, holder, sizeof(holder));
	ASSERT_EQ(strncmp(holder, leader->name, strlen(leader->name)), 0, "the Lease names it");
	ASSERT_TRUE(wait_condition(&ks, WEB_SPLIT, "Accepted", "True", "Accepted", 1, 10000),
		    "the leader writes statuses");
	ASSERT_EQ(kube_agent_count(&other->ag, "route statuses written"), 0, "the other writes none");

	/* The leader dies without releasing: the other waits out the lease, then leads. */
	kube_agent_kill(&leader->ag, SIGKILL);
	t0 = mono_s();
	ASSERT_OK(kube_agent_wait(&other->ag, "status writer: holding lease", 1,
				  (LEASE_S + 10) * 1000), "the other takes over");
	took = mono_s() - t0;
	test__printf("took over %.2f s after the leader was killed (lease %d s)\n", took, LEASE_S);
	/* Within the lease duration plus one retry period (2 s) and slack. */
	ASSERT_LE((int)took, LEASE_S + 2 + 1, "within the lease");
	ASSERT_GE((int)(took * 10), (LEASE_S - 2) * 10, "not before the lease ran out");
	/* And writes: a spec change gets a new observedGeneration. */
	ASSERT_EQ(kube_server_req(&ks, "PATCH", WEB_SPLIT, "{\"spec\": {\"rules\": [{"
				  "\"backendRefs\": [{\"name\": \"web-v1\", \"port\": 80}]}]}}",
				  NULL), 200, "change web-split");
	ASSERT_TRUE(wait_condition(&ks, WEB_SPLIT, "Accepted", "True", "Accepted", 2, 10000),
		    "the new leader writes observedGeneration 2");
out:
	for (int i = 0; i < 2; i++)
		node_fini(&nodes[i]);
	kube_server_stop(&ks);
	if (dir[0])
		sys_run("rm -rf '%s'", dir);
}

void test_kube_agent(void)
{
	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (test__start_subtest("serve_and_down"))
		test_serve_and_down();
	if (test__start_subtest("election"))
		test_election();
	if (test__start_subtest("incremental"))
		test_incremental(false);
	if (test__start_subtest("incremental_engine"))
		test_incremental(true);
	if (test__start_subtest("handover"))
		test_handover();
}
