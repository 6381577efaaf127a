// SPDX-License-Identifier: Apache-2.0
/*
 * The route status writer (kube/kube_status.h) on the reflectors' store
 * (kube/kube_watch.h), against the test API server (tests/lib/
 * kube_apiserver.py, whose PUT of a status subresource takes the status
 * only, as a real API server's does, and refuses a body whose apiVersion,
 * kind, name or namespace is not the URL's). No kernel.
 *
 *  write_back_whole / write_back_slim (kube_watch_opts.slim, as the running
 *  agent's store): after the writer's pass each route on the server is the
 *  route before, field for field (spec, labels, annotations, another
 *  controller's status entry, a status field we do not know), with our
 *  status.parents[] entry added as the writer wrote it before the slim
 *  store (the literal below: parentRef as the route spells it, the
 *  conditions, observedGeneration); the first PUT meets a 409 and is done
 *  again from a fresh read; the same translation published again writes
 *  nothing; only status subresources are written.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube_doc.h"
#include "kube/kube_status.h"
#include "kube/kube_watch.h"
#include "lib/kube_env.h"
#include "test_progs.h"

#define ROUTES "/apis/gateway.networking.k8s.io/v1/namespaces/app/httproutes/"

static const char scenario_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: app}\n"
	"spec: {clusterIP: 10.96.7.1, ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: web-v1, namespace: app}\n"
	"spec: {clusterIP: 10.96.7.2, ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n"
	/* Labels, annotations, rules, another controller's entry and a status field of its own. */
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata:\n  name: shared\n  namespace: app\n  labels: {team: a, tier: web}\n"
	"  annotations: {example.com/note: \"keep me\"}\n"
	"spec:\n  parentRefs: [{group: core, kind: Service, name: web, port: 80},"
	" {name: some-gateway}]\n"
	"  hostnames: [web.example]\n"
	"  rules:\n  - matches: [{path: {type: PathPrefix, value: /v1}, headers: [{name: x-a,"
	" value: b}]}]\n"
	"    backendRefs: [{name: web-v1, port: 80, weight: 3}]\n"
	"  - backendRefs: [{name: web, port: 80}]\n"
	"status:\n  parents:\n  - parentRef: {name: some-gateway}\n"
	"    controllerName: example.com/gateway\n"
	"    conditions: [{type: Accepted, status: 'True', reason: Accepted, message: theirs,"
	" observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z'}]\n"
	"  example.com/extra: {kept: true}\n---\n"
	/* No status yet; its backend does not exist. */
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: broken, namespace: app}\n"
	"spec:\n  parentRefs: [{group: \"\", kind: Service, name: web-v1}]\n"
	"  rules:\n  - backendRefs: [{name: missing, port: 80}]\n";

/*
 * What the writer added before the slim store (measured on 4570562 with this
 * test): our entry per route, lastTransitionTime taken out (a time).
 */
static const char ours_shared[] =
	"{\"parentRef\": {\"group\": \"core\", \"kind\": \"Service\", \"name\": \"web\", "
	"\"port\": 80}, \"controllerName\": \"gammad.io/mesh\", \"conditions\": ["
	"{\"type\": \"Accepted\", \"status\": \"True\", \"reason\": \"Accepted\", "
	"\"message\": \"in effect on 1 of 1 Service port(s)\", \"observedGeneration\": 1}, "
	"{\"type\": \"ResolvedRefs\", \"status\": \"True\", \"reason\": \"ResolvedRefs\", "
	"\"message\": \"all references resolved\", \"observedGeneration\": 1}]}";
static const char ours_broken[] =
	"{\"parentRef\": {\"group\": \"\", \"kind\": \"Service\", \"name\": \"web-v1\"}, "
	"\"controllerName\": \"gammad.io/mesh\", \"conditions\": ["
	"{\"type\": \"Accepted\", \"status\": \"True\", \"reason\": \"Accepted\", "
	"\"message\": \"in effect on 1 of 1 Service port(s)\", \"observedGeneration\": 1}, "
	"{\"type\": \"ResolvedRefs\", \"status\": \"False\", \"reason\": \"BackendNotFound\", "
	"\"message\": \"Service app/missing not found\", \"observedGeneration\": 1}]}";

static const char *const objects[] = {
	"/api/v1/namespaces/app", "/api/v1/namespaces/app/services/web",
	"/api/v1/namespaces/app/services/web-v1", ROUTES "shared", ROUTES "broken",
};

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static json_t *req_json(struct kube_server *ks, const char *method, const char *path)
{
	char *body = NULL;
	json_t *v = NULL;

	if (kube_server_req(ks, method, path, NULL, &body) == 200)
		v = json_loads(body, 0, NULL);
	free(body);
	return v;
}

static json_int_t stat_of(struct kube_server *ks, const char *name)
{
	json_t *st = req_json(ks, "GET", "/_test/stats");
	json_int_t v = json_integer_value(json_object_get(st, name));

	json_decref(st);
	return v;
}

/* Our entry of route, or NULL. */
static json_t *our_entry(json_t *route)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(route, "status"), "parents"), i, e) {
		const char *cn = json_string_value(json_object_get(e, "controllerName"));

		if (cn && !strcmp(cn, "gammad.io/mesh"))
			return e;
	}
	return NULL;
}

/* The store holds route name at the server's resourceVersion. */
static bool stored_current(struct kube_server *ks, struct kube_watch *w, const char *name)
{
	char path[256];
	json_t *srv, *got;
	bool same;

	snprintf(path, sizeof(path), ROUTES "%s", name);
	srv = req_json(ks, "GET", path);
	got = kube_watch_get(w, KUBE_HTTPROUTES, "app", name);
	same = srv && got &&
	       json_equal(json_object_get(json_object_get(srv, "metadata"), "resourceVersion"),
			  json_object_get(json_object_get(got, "metadata"), "resourceVersion"));
	json_decref(srv);
	json_decref(got);
	return same;
}

/* Wait for our entry in every route; the routes as they are then. */
static bool wait_written(struct kube_server *ks, json_t **shared, json_t **broken)
{
	for (int t = 0; t < 10000; t += 100) {
		*shared = req_json(ks, "GET", ROUTES "shared");
		*broken = req_json(ks, "GET", ROUTES "broken");
		if (our_entry(*shared) && our_entry(*broken))
			return true;
		json_decref(*shared);
		json_decref(*broken);
		*shared = *broken = NULL;
		nap_ms(100);
	}
	return false;
}

/*
 * after is before with our entry (want, lastTransitionTime aside) appended
 * to status.parents, and a new resourceVersion.
 */
static void check_route(const char *name, json_t *before, json_t *after, const char *want)
{
	json_t *exp = json_deep_copy(before), *got = json_deep_copy(after);
	json_t *ours = our_entry(got), *c, *parents, *want_v = json_loads(want, 0, NULL);
	size_t i;
	char *a, *b;

	if (!ASSERT_OK_PTR(exp, "copy") || !ASSERT_OK_PTR(got, "copy") ||
	    !ASSERT_OK_PTR(want_v, "expected entry"))
		goto out;
	json_array_foreach(json_object_get(ours, "conditions"), i, c) {
		ASSERT_TRUE(json_is_string(json_object_get(c, "lastTransitionTime")),
			    "lastTransitionTime set");
		json_object_del(c, "lastTransitionTime");
	}
	ASSERT_NEQ(strcmp(json_string_value(json_object_get(json_object_get(before, "metadata"),
							    "resourceVersion")) ?: "",
			  json_string_value(json_object_get(json_object_get(after, "metadata"),
							    "resourceVersion")) ?: ""), 0,
		   "written");
	json_object_del(json_object_get(exp, "metadata"), "resourceVersion");
	json_object_del(json_object_get(got, "metadata"), "resourceVersion");
	if (!json_is_object(json_object_get(exp, "status")))
		json_object_set_new(exp, "status", json_object());
	parents = json_object_get(json_object_get(exp, "status"), "parents");
	if (!parents) {
		parents = json_array();
		json_object_set_new(json_object_get(exp, "status"), "parents", parents);
	}
	json_array_append(parents, want_v);
	a = json_dumps(exp, JSON_SORT_KEYS | JSON_COMPACT);
	b = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
	if (!ASSERT_TRUE(json_equal(exp, got), name))
		test__printf("%s: want %s\n%s: got  %s\n", name, a, name, b);
	free(a);
	free(b);
out:
	json_decref(want_v);
	json_decref(exp);
	json_decref(got);
}

static void test_write_back(bool slim)
{
	struct kube_watch_opts wo = { .watch_timeout_s = 30, .backoff_initial_ms = 100,
				      .backoff_max_ms = 1000, .slim = slim };
	struct kube_server ks;
	struct kube_config cfg = { .token = "test-token" };
	struct kube_client *k = NULL;
	struct kube_watch *w = NULL;
	struct kube_status *st = NULL;
	json_t *before_shared = NULL, *before_broken = NULL, *shared = NULL, *broken = NULL;
	json_t *log = NULL, *e;
	struct diag dg = { 0 };
	struct tr_result res = { 0 };
	struct model m;
	bool translated = false;
	json_int_t puts;
	char server[64], *log_txt = NULL;
	size_t i;
	int conflicts = 0;

	model_init(&m);
	kube_server_init(&ks);
	if (!ASSERT_OK(kube_server_start(&ks, NULL), "test API server") ||
	    !ASSERT_OK(kube_server_load_yaml(&ks, scenario_yaml), "scenario"))
		goto out;
	before_shared = req_json(&ks, "GET", ROUTES "shared");
	before_broken = req_json(&ks, "GET", ROUTES "broken");
	if (!ASSERT_OK_PTR(before_shared, "shared") || !ASSERT_OK_PTR(before_broken, "broken"))
		goto out;
	snprintf(server, sizeof(server), "http://127.0.0.1:%u", ks.port);
	cfg.server = server;
	if (!ASSERT_OK(kube_client_new(&cfg, &k), "client") ||
	    !ASSERT_OK(kube_watch_start(k, &wo, &w), "watch"))
		goto out;
	for (int t = 0; t < 10000 && !(kube_watch_synced(w) &&
				       kube_watch_count(w, KUBE_HTTPROUTES) == 2); t += 20) {
		kube_watch_drain(w, NULL, NULL);	/* a slim list waits for drains */
		nap_ms(20);
	}
	if (!ASSERT_EQ(kube_watch_count(w, KUBE_HTTPROUTES), 2, "routes listed"))
		goto out;

	/* The translation of the objects as the API server has them, as the agent's. */
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		json_t *o = req_json(&ks, "GET", objects[i]);

		if (!ASSERT_OK_PTR(o, objects[i]) ||
		    !ASSERT_OK(kube_doc_load(&m, o, objects[i], &dg), objects[i])) {
			json_decref(o);
			goto out;
		}
		json_decref(o);
	}
	if (!ASSERT_OK(translate(&m, &dg, &res), "translate"))
		goto out;
	translated = true;

	/* The first status write of shared meets a 409: read again, retry. */
	ASSERT_EQ(kube_server_post(&ks, "/_test/fault", "{\"match\": \"/httproutes/shared/status\", "
				   "\"method\": \"PUT\", \"status\": 409, \"count\": 1}", NULL),
		  200, "409 fault");
	if (!ASSERT_OK(kube_status_start(k, w, &(struct kube_status_opts){
			.identity = "test-writer", .lease_namespace = "app" }, &st),
		       "status writer") ||
	    !ASSERT_OK(kube_status_publish(st, &res), "publish"))
		goto out;
	if (!ASSERT_TRUE(wait_written(&ks, &shared, &broken), "statuses written")) {
		char *l = NULL, *a = NULL, *b = NULL;

		kube_server_req(&ks, "GET", "/_test/log", NULL, &l);
		kube_server_req(&ks, "GET", ROUTES "shared", NULL, &a);
		kube_server_req(&ks, "GET", ROUTES "broken", NULL, &b);
		test__printf("server requests: %s\nshared: %s\nbroken: %s\n", l, a, b);
		free(l);
		free(a);
		free(b);
		goto out;
	}
	check_route("shared", before_shared, shared, ours_shared);
	check_route("broken", before_broken, broken, ours_broken);

	/* The same translation again: what the store holds says it is done. */
	puts = stat_of(&ks, "status_puts");
	for (int t = 0; t < 10000 && !(stored_current(&ks, w, "shared") &&
				       stored_current(&ks, w, "broken")); t += 20) {
		kube_watch_drain(w, NULL, NULL);
		nap_ms(20);
	}
	ASSERT_TRUE(stored_current(&ks, w, "shared") && stored_current(&ks, w, "broken"),
		    "the store has the routes as written");
	ASSERT_OK(kube_status_publish(st, &res), "publish again");
	for (int t = 0; t < 2000; t += 20) {
		kube_watch_drain(w, NULL, NULL);
		nap_ms(20);
	}
	ASSERT_EQ(stat_of(&ks, "status_puts"), puts, "nothing written again");

	/* Only status subresources were written, and nothing was refused. */
	if (kube_server_req(&ks, "GET", "/_test/log", NULL, &log_txt) == 200)
		log = json_loads(log_txt, 0, NULL);
	json_array_foreach(log, i, e) {
		const char *method = json_string_value(json_array_get(e, 0));
		const char *path = json_string_value(json_array_get(e, 1));
		json_int_t code = json_integer_value(json_array_get(e, 2));

		if (!method || !path || !strstr(path, "/httproutes"))
			continue;
		if (strcmp(method, "GET"))
			ASSERT_TRUE(!strcmp(method, "PUT") && strstr(path, "/status"), path);
		ASSERT_TRUE(code == 200 || code == 409, path);
		conflicts += code == 409;
	}
	ASSERT_EQ(conflicts, 1, "the injected 409 seen");
out:
	kube_status_stop(st);
	kube_watch_stop(w);
	kube_client_free(k);
	kube_server_stop(&ks);
	if (translated)
		tr_result_free(&res);
	model_free(&m);
	diag_free(&dg);
	json_decref(before_shared);
	json_decref(before_broken);
	json_decref(shared);
	json_decref(broken);
	json_decref(log);
	free(log_txt);
}

void test_kube_status(void)
{
	if (test__start_subtest("write_back_whole"))
		test_write_back(false);
	if (test__start_subtest("write_back_slim"))
		test_write_back(true);
}
