// SPDX-License-Identifier: Apache-2.0
/*
 * The reflectors (kube/kube_watch.h) against the test API server
 * (tests/lib/kube_apiserver.py, every response chunked at random places)
 * and against the recorded traffic of real API servers (shared/k8s-replays,
 * Kubernetes 1.32 to 1.35): pagination and an expired continue token,
 * streaming lists and the fallback when refused, bookmarks, an ERROR 410 in
 * the stream and HTTP 410, 429 with Retry-After, watches the server closes,
 * objects deleted while the server was away, CRDs not installed. No kernel.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "input/model.h"
#include "kube/kube_doc.h"
#include "kube/kube_watch.h"
#include "lib/kube_env.h"
#include "lib/lab_env.h"
#include "test_progs.h"

struct env {
	struct kube_server ks;
	struct kube_config cfg;
	struct kube_client *k;
	struct kube_watch *w;
	char server[64];
	size_t deleted[KUBE_RES_COUNT];	/* delete events wait_count() drained (slim) */
};

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int env_start(struct env *e, const char *server_args)
{
	kube_server_init(&e->ks);
	if (!ASSERT_OK(kube_server_start(&e->ks, server_args), "test API server"))
		return -1;
	snprintf(e->server, sizeof(e->server), "http://127.0.0.1:%u", e->ks.port);
	e->cfg.server = e->server;
	e->cfg.token = "test-token";
	return ASSERT_OK(kube_client_new(&e->cfg, &e->k), "client") ? 0 : -1;
}

static int watch_start(struct env *e, const struct kube_watch_opts *o)
{
	struct kube_watch_opts def = { .watch_timeout_s = 30, .backoff_initial_ms = 100,
				       .backoff_max_ms = 1000 };

	def = o ? *o : def;
	/*
	 * GAMMAD_TEST_KUBE_SLIM=1: the reflectors as the agent runs them with the
	 * incremental pipeline (kube_watch_opts.slim); the replays then fail at
	 * kube_watch_fill_model(), which a slim store refuses.
	 */
	def.slim = getenv("GAMMAD_TEST_KUBE_SLIM") != NULL;
	return ASSERT_OK(kube_watch_start(e->k, &def, &e->w), "watch start") ? 0 : -1;
}

static void env_stop(struct env *e)
{
	kube_watch_stop(e->w);
	e->w = NULL;
	kube_client_free(e->k);
	e->k = NULL;
	if (e->ks.dir[0] && e->ks.pid) {
		char *log = NULL;

		kube_server_req(&e->ks, "GET", "/_test/log", NULL, &log);
		/* the end: what a failed check was waiting for */
		test__printf("server requests%s: %s\n", log && strlen(log) > 4000 ? " (the last 4000 bytes)" : "",
			     log ? log + (strlen(log) > 4000 ? strlen(log) - 4000 : 0) : "");
		free(log);
	}
	kube_server_stop(&e->ks);
}

/* Wait (up to ms) until resource r holds n objects and everything is synced. */
static void note_delete(void *ctx, const struct kube_event *ev)
{
	struct env *e = ctx;

	if (ev->type == KUBE_EV_DELETE)
		e->deleted[ev->res]++;
}

static bool wait_count(struct env *e, enum kube_res r, size_t n, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		/* A slim store's lists wait for drains once 1,024 events ahead. */
		if (getenv("GAMMAD_TEST_KUBE_SLIM"))
			kube_watch_drain(e->w, note_delete, e);
		if (kube_watch_synced(e->w) && kube_watch_count(e->w, r) == n)
			return true;
		nap_ms(20);
	}
	test__printf("%s: %zu objects, want %zu (synced %d)\n", kube_res_name(r),
		     kube_watch_count(e->w, r), n, kube_watch_synced(e->w));
	return false;
}

static struct kube_watch_stats stats(struct env *e)
{
	struct kube_watch_stats st;

	kube_watch_get_stats(e->w, &st);
	return st;
}

static int synth(struct env *e, int services, int endpoints, int routes)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"services\": %d, \"endpoints\": %d, \"routes\": %d, "
		 "\"ns\": \"bench\"}", services, endpoints, routes);
	return kube_server_post(&e->ks, "/_test/synth", body, NULL) == 200 ? 0 : -1;
}

static int ctl(struct env *e, const char *path, const char *body)
{
	int st = kube_server_post(&e->ks, path, body, NULL);

	if (st < 200 || st > 299)
		test__printf("POST %s %s: %d\n", path, body, st);
	return st >= 200 && st <= 299 ? 0 : -1;
}

#define SVC_JSON(name)								\
	"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"" name \
	"\", \"namespace\": \"bench\"}, \"spec\": {\"clusterIP\": \"10.200.0.1\", "	\
	"\"ports\": [{\"port\": 80}]}}"

/* ---- recorded traffic ------------------------------------------------------- */

struct counter {
	size_t events, bookmarks_end;
	const char *last_type;
};

static int count_event(void *ctx, json_t *v)
{
	struct counter *c = ctx;
	const char *type = json_string_value(json_object_get(v, "type"));
	const char *end = json_string_value(json_object_get(json_object_get(json_object_get(
		json_object_get(v, "object"), "metadata"), "annotations"),
		"k8s.io/initial-events-end"));

	c->events++;
	if (type && !strcmp(type, "BOOKMARK") && end && !strcmp(end, "true"))
		c->bookmarks_end++;
	return 0;
}

/* The body of the first entry whose request_url holds url_part. */
static const char *replay_body(json_t *file, const char *url_part)
{
	json_t *e;
	size_t i;

	json_array_foreach(file, i, e) {
		const char *u = json_string_value(json_object_get(e, "request_url"));

		if (u && strstr(u, url_part))
			return json_string_value(json_object_get(e, "response_body"));
	}
	return NULL;
}

/* Feed body in pieces of 1..max bytes (a fixed sequence); how many values came out. */
static int frame_all(const char *body, size_t max, struct counter *c)
{
	struct kube_framer f = { 0 };
	size_t len = strlen(body), off = 0, step = 1;
	int ret = 0;

	while (off < len && !ret) {
		size_t n = step % max + 1;

		if (n > len - off)
			n = len - off;
		ret = kube_framer_feed(&f, body + off, n, count_event, c);
		off += n;
		step = step * 7 + 3;
	}
	kube_framer_free(&f);
	return ret;
}

/*
 * Values cut inside a literal (tr|ue), an escape (\\u00|e9), a UTF-8
 * sequence, a number and a string, at every position: each cut in two, and
 * the whole fed a byte at a time.
 */
static void test_framer_cuts(void)
{
	static const char stream[] =
		"{\"type\":\"ADDED\",\"object\":{\"a\":true,\"b\":false,\"c\":null,"
		"\"d\":\"caf\\u00e9\",\"e\":\"caf\xc3\xa9 \xf0\x9f\x9a\x80\",\"f\":-12.5e3}}"
		"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\","
		"\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}\n"
		"  {\"type\":\"DELETED\",\"object\":{\"x\":[1,[2,[3]],{\"y\":\"}\"}]}}";
	size_t len = strlen(stream);
	struct counter c;

	for (size_t cut = 0; cut <= len; cut++) {
		struct kube_framer f = { 0 };
		int ret;

		c = (struct counter){ 0 };
		ret = kube_framer_feed(&f, stream, cut, count_event, &c);
		if (!ret)
			ret = kube_framer_feed(&f, stream + cut, len - cut, count_event, &c);
		kube_framer_free(&f);
		if (!ASSERT_OK(ret, "framed") || !ASSERT_EQ(c.events, 3, "three values") ||
		    !ASSERT_EQ(c.bookmarks_end, 1, "the bookmark")) {
			test__printf("cut at %zu\n", cut);
			return;
		}
	}
	c = (struct counter){ 0 };
	ASSERT_OK(frame_all(stream, 1, &c), "a byte at a time");
	ASSERT_EQ(c.events, 3, "three values, byte by byte");
	/* Bytes that are no JSON end the stream with -EINVAL. */
	{
		struct kube_framer f = { 0 };

		c = (struct counter){ 0 };
		ASSERT_EQ(kube_framer_feed(&f, "{\"a\":1}{\"b\":fx}\n", 16, count_event, &c),
			  -EINVAL, "bad JSON");
		ASSERT_EQ(c.events, 1, "the value before it");
		kube_framer_free(&f);
	}
}

static void replay_version(const char *ver)
{
	char path[512], *lit = NULL, *body = NULL;
	json_t *list_file = NULL, *watch_file = NULL, *stream_file = NULL;
	const char *list_body, *watch_body, *stream_body;
	struct env e = { 0 };
	struct counter c;
	struct model m;
	struct diag dg = { 0 };

	snprintf(path, sizeof(path), "k8s-replays/%s/pod-list.json", ver);
	if (!test_shared_path(path)) {
		test__skip("no %s", path);
		return;
	}
	list_file = json_load_file(test_shared_path(path), 0, NULL);
	snprintf(path, sizeof(path), "k8s-replays/%s/watch_event-watch_pods.json", ver);
	watch_file = json_load_file(test_shared_path(path), 0, NULL);
	snprintf(path, sizeof(path),
		 "k8s-replays/%s/watch_event-watch_pods_without_initial_events.json", ver);
	stream_file = json_load_file(test_shared_path(path), 0, NULL);
	if (!ASSERT_OK_PTR(list_file, "pod-list.json") || !ASSERT_OK_PTR(watch_file, "watch") ||
	    !ASSERT_OK_PTR(stream_file, "streaming watch"))
		goto out;
	list_body = replay_body(list_file, "/pods");
	watch_body = replay_body(watch_file, "watch=true");
	stream_body = replay_body(stream_file, "sendInitialEvents=true");
	if (!ASSERT_OK_PTR(list_body, "list body") || !ASSERT_OK_PTR(watch_body, "watch body") ||
	    !ASSERT_OK_PTR(stream_body, "stream body"))
		goto out;

	/* Framing: the recorded streams cut at every kind of place. */
	for (size_t max = 1; max <= 4096; max *= 4) {
		c = (struct counter){ 0 };
		ASSERT_OK(frame_all(watch_body, max, &c), "frame watch");
		ASSERT_EQ(c.events, 5, "watch events");
		c = (struct counter){ 0 };
		ASSERT_OK(frame_all(stream_body, max, &c), "frame stream");
		ASSERT_EQ(c.events, 9, "streamed events");
		ASSERT_EQ(c.bookmarks_end, 1, "initial-events-end bookmark");
	}

	/* Served: the recorded LIST and streaming WATCH of pods. */
	if (env_start(&e, NULL))
		goto out;
	lit = kube_json_str(stream_body);
	if (asprintf(&body, "{\"match\": \"/api/v1/pods?watch\", \"status\": 200, \"body\": %s}",
		     lit) < 0)
		body = NULL;
	ASSERT_OK(ctl(&e, "/_test/canned", body), "canned stream");
	free(lit);
	free(body);
	lit = kube_json_str(list_body);
	if (asprintf(&body, "{\"match\": \"/api/v1/pods?limit\", \"status\": 200, \"body\": %s}",
		     lit) < 0)
		body = NULL;
	ASSERT_OK(ctl(&e, "/_test/canned", body), "canned list");
	for (int mode = 0; mode < 2; mode++) {
		struct kube_watch_opts o = { .watch_timeout_s = 30, .backoff_initial_ms = 100,
					     .watch_list = mode ? KUBE_WATCH_LIST_OFF :
							   KUBE_WATCH_LIST_AUTO };

		if (watch_start(&e, &o))
			break;
		ASSERT_TRUE(wait_count(&e, KUBE_PODS, 8, 10000), mode ? "listed pods" :
			    "streamed pods");
		if (mode)
			ASSERT_GE(stats(&e).pages, 1, "pages");
		else
			ASSERT_GE(stats(&e).stream_lists, 1, "streamed lists");
		model_init(&m);
		ASSERT_OK(kube_watch_fill_model(e.w, &m, &dg), "fill model");
		ASSERT_EQ(m.pods.nr, 8, "pods in the model");
		ASSERT_EQ(dg.nr_errors, 0, "no parse errors");
		for (size_t i = 0; i < dg.nr; i++)
			test__printf("%s\n", dg.entries[i].msg);
		model_free(&m);
		diag_free(&dg);
		kube_watch_stop(e.w);
		e.w = NULL;
	}
out:
	free(lit);
	free(body);
	env_stop(&e);
	json_decref(list_file);
	json_decref(watch_file);
	json_decref(stream_file);
}

static void test_replays(void)
{
	static const char *const versions[] = { "v1-32", "v1-33", "v1-34", "v1-35" };

	for (size_t i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "replay_%s", versions[i]);
		if (test__start_subtest(name))
			replay_version(versions[i]);
	}
}

/* ---- the test API server ------------------------------------------------------ */

static void test_pagination(void)
{
	struct kube_watch_opts o = { .page_limit = 100, .watch_timeout_s = 30,
				     .backoff_initial_ms = 100,
				     .watch_list = KUBE_WATCH_LIST_OFF };
	struct env e = { 0 };

	if (env_start(&e, NULL) || !ASSERT_OK(synth(&e, 1234, 1234, 0), "synth"))
		goto out;
	/* The first continue token has expired: the list starts over, whole. */
	if (!ASSERT_OK(ctl(&e, "/_test/expire-continue", "{\"count\": 1}"), "expire") ||
	    watch_start(&e, &o))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 1234, 15000), "every service");
	ASSERT_TRUE(wait_count(&e, KUBE_SLICES, 1234, 15000), "every slice");
	ASSERT_EQ(stats(&e).expired_continues, 1, "one expired continue token");
	/* 13 pages each for services and slices, one more for the restarted one. */
	ASSERT_GE(stats(&e).pages, 26, "pages");
out:
	env_stop(&e);
}

static void test_streaming_list(void)
{
	struct env e = { 0 };

	for (int refused = 0; refused < 2; refused++) {
		if (env_start(&e, refused ? "--no-watch-list" : NULL) ||
		    !ASSERT_OK(synth(&e, 300, 300, 30), "synth") || watch_start(&e, NULL))
			break;
		ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 300, 15000), "services");
		ASSERT_TRUE(wait_count(&e, KUBE_HTTPROUTES, 30, 15000), "routes");
		if (refused) {
			ASSERT_EQ(stats(&e).stream_lists, 0, "no streamed list");
			ASSERT_EQ(stats(&e).lists, KUBE_RES_COUNT, "paginated lists instead");
		} else {
			ASSERT_EQ(stats(&e).stream_lists, KUBE_RES_COUNT, "every list streamed");
		}
		/* Changes after the list arrive on the same stream. */
		ASSERT_OK(ctl(&e, "/api/v1/namespaces/bench/services", SVC_JSON("late")), "add");
		ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 301, 5000), "the new service");
		env_stop(&e);
	}
	env_stop(&e);
}

/* The watch's resourceVersion follows bookmarks: a rewatch starts from the last one. */
static void test_bookmarks(void)
{
	struct env e = { 0 };
	struct kube_watch_stats st;
	char *log = NULL, want[64], *body = NULL;
	int rv;

	if (env_start(&e, "--bookmark-s 0.2") || !ASSERT_OK(synth(&e, 10, 10, 0), "synth") ||
	    watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 10, 10000), "services");
	/* Other resources move the server's resourceVersion; services' bookmarks carry it. */
	ASSERT_OK(ctl(&e, "/api/v1/namespaces", "{\"metadata\": {\"name\": \"other\"}}"), "ns");
	nap_ms(800);
	st = stats(&e);
	ASSERT_GE(st.bookmarks, 3, "bookmarks seen");
	if (!ASSERT_EQ(kube_server_req(&e.ks, "GET", "/_test/stats", NULL, &body), 200, "stats"))
		goto out;
	rv = atoi(strstr(body, "\"rv\": ") + 6);
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": \"close\"}"),
		  "close");
	nap_ms(500);
	kube_server_req(&e.ks, "GET", "/_test/log", NULL, &log);
	snprintf(want, sizeof(want), "&resourceVersion=%d", rv);
	ASSERT_OK_PTR(strstr(log ? log : "", want), "rewatch from the bookmark's version");
	ASSERT_EQ(stats(&e).relists, 0, "no relist");
out:
	free(log);
	free(body);
	env_stop(&e);
}

/* Watches of a resource the server accepted so far (each sees the actions posted after it), -1 on error. */
static int server_watches_of(struct env *e, const char *plural)
{
	char *body = NULL;
	json_t *st = NULL;
	int n = -1;

	if (kube_server_req(&e->ks, "GET", "/_test/stats", NULL, &body) == 200 &&
	    (st = json_loads(body, 0, NULL)))
		n = (int)json_integer_value(json_object_get(json_object_get(st, "watches_of"),
							    plural));
	json_decref(st);
	free(body);
	return n;
}

/* An ERROR 410 in the stream, and a watch refused with HTTP 410: both list again. */
static void test_gone(void)
{
	struct env e = { 0 };
	uint64_t lists;
	int watches;

	if (env_start(&e, NULL) || !ASSERT_OK(synth(&e, 20, 20, 0), "synth") ||
	    watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 20, 10000), "services");
	lists = stats(&e).lists;
	watches = server_watches_of(&e, "services");
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": "
		      "\"error410\"}"), "ERROR 410");
	/*
	 * The relist is itself a watch request (a streamed list): the HTTP 410
	 * is armed only once it is done and open on the server. Armed earlier,
	 * the 410 answers the relist (the same relist, not a second one) and
	 * the close below finds no watch to end.
	 */
	for (int t = 0; t < 5000 && (stats(&e).relists < 1 || stats(&e).lists <= lists ||
				     server_watches_of(&e, "services") <= watches); t += 20)
		nap_ms(20);
	ASSERT_EQ(stats(&e).relists, 1, "relisted after ERROR 410");
	ASSERT_GE(stats(&e).watch_errors, 1, "ERROR event seen");
	ASSERT_GT(stats(&e).lists, lists, "the relist done");
	ASSERT_GT(server_watches_of(&e, "services"), watches, "watching again");
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": "
		      "\"http410\"}"), "next watch HTTP 410");
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": "
		      "\"close\"}"), "close");
	for (int t = 0; t < 5000 && stats(&e).relists < 2; t += 20)
		nap_ms(20);
	ASSERT_EQ(stats(&e).relists, 2, "relisted after HTTP 410");
	ASSERT_OK(ctl(&e, "/api/v1/namespaces/bench/services", SVC_JSON("after")), "add");
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 21, 5000), "watching again");
out:
	env_stop(&e);
}

static void test_retry_after(void)
{
	struct env e = { 0 };
	struct timespec t0, t1;
	double s;

	if (env_start(&e, NULL) || !ASSERT_OK(synth(&e, 5, 5, 0), "synth"))
		goto out;
	/* Two 429s with Retry-After: 1, then a 503 without: backoff. */
	ASSERT_OK(ctl(&e, "/_test/fault", "{\"match\": \"/api/v1/services\", \"status\": 429, "
		      "\"retry_after\": 1, \"count\": 2}"), "429s");
	ASSERT_OK(ctl(&e, "/_test/fault", "{\"match\": \"/api/v1/services\", \"status\": 503, "
		      "\"count\": 1}"), "503");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 5, 15000), "services");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ASSERT_GE(stats(&e).retry_afters, 2, "Retry-After seen");
	ASSERT_GE(stats(&e).backoffs, 3, "waited three times");
	/* Retry-After is waited for: not before 2 s. */
	ASSERT_GE((int)(s * 10), 20, "waited the Retry-After (tenths of s)");
out:
	env_stop(&e);
}

/* A watch the server ends is started again from where it was, without a list. */
static void test_server_closed(void)
{
	struct kube_watch_opts o = { .watch_timeout_s = 1, .backoff_initial_ms = 100 };
	struct env e = { 0 };
	uint64_t watches;

	if (env_start(&e, NULL) || !ASSERT_OK(synth(&e, 5, 5, 0), "synth") ||
	    watch_start(&e, &o))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 5, 10000), "services");
	watches = stats(&e).watches;
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": \"close\"}"),
		  "close");
	nap_ms(2500);	/* and the server's timeoutSeconds=1 ends the others */
	ASSERT_GE(stats(&e).watches, watches + KUBE_RES_COUNT, "watched again");
	ASSERT_EQ(stats(&e).relists, 0, "no relist");
	ASSERT_EQ(stats(&e).lists, KUBE_RES_COUNT, "listed once");
	ASSERT_OK(ctl(&e, "/api/v1/namespaces/bench/services", SVC_JSON("after")), "add");
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 6, 5000), "still watching");
out:
	env_stop(&e);
}

struct deletes {
	size_t services, routes;
};

static void count_deletes(void *ctx, const struct kube_event *ev)
{
	struct deletes *d = ctx;

	if (ev->type != KUBE_EV_DELETE)
		return;
	if (ev->res == KUBE_SERVICES)
		d->services++;
	if (ev->res == KUBE_HTTPROUTES)
		d->routes++;
}

/*
 * The API port goes away; meanwhile objects are deleted and the history is
 * compacted: back, the watch is too old, the relist finds them gone and
 * says so as delete events. Nothing was dropped while away.
 */
static void test_deleted_while_away(void)
{
	struct env e = { 0 };
	struct deletes d = { 0 };

	if (env_start(&e, NULL) || !ASSERT_OK(synth(&e, 10, 10, 4), "synth") ||
	    watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 10, 10000), "services");
	kube_watch_drain(e.w, NULL, NULL);
	ASSERT_OK(ctl(&e, "/_test/down", "{\"seconds\": 2}"), "down");
	nap_ms(300);
	ASSERT_EQ(kube_server_req(&e.ks, "DELETE", "/api/v1/namespaces/bench/services/svc-00003",
				  NULL, NULL), 200, "delete service");
	ASSERT_EQ(kube_server_req(&e.ks, "DELETE", "/apis/gateway.networking.k8s.io/v1/"
				  "namespaces/bench/httproutes/route-00001", NULL, NULL), 200,
		  "delete route");
	ASSERT_OK(ctl(&e, "/_test/compact", "{}"), "compact");
	nap_ms(500);
	ASSERT_EQ(kube_watch_count(e.w, KUBE_SERVICES), 10, "kept while away");
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 9, 15000), "service gone after");
	ASSERT_TRUE(wait_count(&e, KUBE_HTTPROUTES, 3, 5000), "route gone after");
	kube_watch_drain(e.w, count_deletes, &d);
	d.services += e.deleted[KUBE_SERVICES];
	d.routes += e.deleted[KUBE_HTTPROUTES];
	ASSERT_EQ(d.services, 1, "one service delete event");
	ASSERT_EQ(d.routes, 1, "one route delete event");
	ASSERT_GE(stats(&e).relists, 2, "relisted (services, routes)");
out:
	env_stop(&e);
}

/* Gateway API not installed: one look per served version, then quiet. */
static void test_missing_crds(void)
{
	struct env e = { 0 };
	char *log = NULL;
	int n = 0;

	if (env_start(&e, "--absent httproutes,grpcroutes,tcproutes,referencegrants") ||
	    !ASSERT_OK(synth(&e, 3, 3, 0), "synth") || watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 3, 10000), "services, synced");
	ASSERT_EQ(kube_watch_count(e.w, KUBE_HTTPROUTES), 0, "no routes");
	nap_ms(2000);
	kube_server_req(&e.ks, "GET", "/_test/log", NULL, &log);
	for (char *p = log; p && (p = strstr(p, "/httproutes")); p++)
		n++;
	ASSERT_LE(n, 2, "httproutes asked once per served version (v1, v1beta1)");
	ASSERT_GE(n, 1, "httproutes asked");
out:
	free(log);
	env_stop(&e);
}

/*
 * deploy/ applies cleanly: kubectl's client-side dry run against the test
 * API server (discovery and GETs; it has no OpenAPI schema, so without
 * --validate, which a real API server gives).
 */
static void test_deploy_dry_run(void)
{
	struct env e = { 0 };
	char *out = NULL, deploy[4096], crds[4096];
	int ret, n = 0;

	/* test_bin() returns one buffer: copy each path */
	snprintf(deploy, sizeof(deploy), "%s", test_bin("../deploy"));
	snprintf(crds, sizeof(crds), "%s", test_bin("../deploy/gateway-api"));
	if (access("/usr/bin/kubectl", X_OK)) {
		test__skip("no kubectl");
		return;
	}
	if (env_start(&e, NULL))
		goto out;
	ret = lab_run_capture(&out, "KUBECONFIG=%s kubectl apply --dry-run=client "
			      "--validate=false -f %s -f %s 2>&1", e.ks.kubeconfig, deploy, crds);
	test__printf("%s\n", out ? out : "");
	ASSERT_EQ(ret, 0, "kubectl apply --dry-run=client exit status");
	for (char *p = out; p && (p = strstr(p, "created (dry run)")); p++)
		n++;
	ASSERT_EQ(n, 11, "namespace, daemonset, serviceaccount, 4 RBAC objects, 4 CRDs");
	ASSERT_OK_PTR(strstr(out ? out : "", "httproutes.gateway.networking.k8s.io created"),
		      "the HTTPRoute CRD");
out:
	free(out);
	env_stop(&e);
}

/* ---- TLS, in-cluster config, tokens, client certificates ---------------------- */

static int sh(const char *fmt, const char *a, const char *b, const char *c, const char *d)
{
	char *out = NULL;
	int ret = lab_run_capture(&out, fmt, a, b, c, d);

	if (ret)
		test__printf("%s\n", out ? out : "");
	free(out);
	return ret;
}

static int make_certs(const char *dir)
{
	char *out = NULL;
	int ret;

	ret = lab_run_capture(&out,
		"cd %s && "
		"openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
		"-keyout ca.key -out ca.crt && "
		"openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver "
		"-keyout server.key -out server.csr && "
		"printf 'subjectAltName=IP:127.0.0.1,IP:::1\\n' > san.ext && "
		"openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		"-days 2 -extfile san.ext -out server.crt && "
		"openssl req -newkey rsa:2048 -nodes -subj /CN=system:node:a "
		"-keyout client.key -out client.csr && "
		"openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		"-days 2 -out client.crt && mkdir sa && cp ca.crt sa/ca.crt && "
		"echo gammad-system > sa/namespace && echo token-one > sa/token && "
		"echo token-one > server-token 2>&1", dir);
	if (ret)
		test__printf("openssl: %s\n", out ? out : "");
	free(out);
	return ret;
}

/*
 * In a pod: KUBERNETES_SERVICE_HOST ::1 (a bracketed IPv6 URL), HTTPS with the
 * service account's CA and token. The token rotates under a running client:
 * the next request gets 401, re-reads the token, goes on.
 */
static void test_in_cluster_tls(void)
{
	char dir[64] = "/tmp/gammad-kube-tls-XXXXXX", args[1024], path[256], msg[256];
	struct kube_watch_opts o = { .watch_timeout_s = 30, .backoff_initial_ms = 100 };
	struct env e = { 0 };
	char port[16];

	if (!mkdtemp(dir) || !ASSERT_OK(make_certs(dir), "certificates"))
		goto out;
	snprintf(args, sizeof(args), "--host ::1 --tls-cert %s/server.crt --tls-key %s/server.key "
		 "--token-file %s/server-token", dir, dir, dir);
	kube_server_init(&e.ks);
	if (!ASSERT_OK(kube_server_start(&e.ks, args), "HTTPS API server on ::1"))
		goto out;
	snprintf(port, sizeof(port), "%u", e.ks.port);
	setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	snprintf(path, sizeof(path), "%s/sa", dir);
	if (!ASSERT_OK(kube_config_in_cluster(&e.cfg, path, msg, sizeof(msg)), msg))
		goto out;
	snprintf(path, sizeof(path), "https://[::1]:%u", e.ks.port);
	ASSERT_STREQ(e.cfg.server, path, "bracketed IPv6 server");
	ASSERT_STREQ(e.cfg.namespace, "gammad-system", "the pod's namespace");
	if (!ASSERT_OK(kube_client_new(&e.cfg, &e.k), "client") ||
	    !ASSERT_OK(synth(&e, 7, 7, 2), "synth") || watch_start(&e, &o))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 7, 10000), "listed over HTTPS");
	ASSERT_TRUE(wait_count(&e, KUBE_HTTPROUTES, 2, 10000), "routes too");
	/* The kubelet rotates the token; the server wants the new one now. */
	ASSERT_OK(sh("echo token-two > %s/sa/token.new && mv %s/sa/token.new %s/sa/token && "
		     "echo token-two > %s/server-token", dir, dir, dir, dir), "rotate");
	ASSERT_OK(ctl(&e, "/_test/watch", "{\"resource\": \"services\", \"action\": \"close\"}"),
		  "close the watch");
	ASSERT_OK(ctl(&e, "/api/v1/namespaces/bench/services", SVC_JSON("after-rotation")), "add");
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 8, 10000), "watching with the new token");
out:
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	env_stop(&e);
	kube_config_free(&e.cfg);
	if (strchr(dir, 'X') == NULL)
		sh("rm -rf %s%s%s%s", dir, "", "", "");
}

/* A kubeconfig with https, certificate-authority-data and a client certificate (data). */
static void test_kubeconfig_client_cert(void)
{
	char dir[64] = "/tmp/gammad-kube-tls-XXXXXX", args[1024], path[256], msg[256];
	struct env e = { 0 };
	char *out = NULL;

	if (!mkdtemp(dir) || !ASSERT_OK(make_certs(dir), "certificates"))
		goto out;
	snprintf(args, sizeof(args), "--tls-cert %s/server.crt --tls-key %s/server.key "
		 "--client-ca %s/ca.crt", dir, dir, dir);
	kube_server_init(&e.ks);
	if (!ASSERT_OK(kube_server_start(&e.ks, args), "HTTPS API server wanting client certs"))
		goto out;
	ASSERT_OK(lab_run_capture(&out, "cd %s && { echo 'apiVersion: v1'; echo 'kind: Config'; "
		"echo 'current-context: c'; echo 'clusters:'; echo '- name: k'; echo '  cluster:'; "
		"echo '    server: https://127.0.0.1:%u/'; "
		"echo \"    certificate-authority-data: $(base64 -w0 ca.crt)\"; "
		"echo 'users:'; echo '- name: u'; echo '  user:'; "
		"echo \"    client-certificate-data: $(base64 -w0 client.crt)\"; "
		"echo \"    client-key-data: $(base64 -w0 client.key)\"; "
		"echo 'contexts:'; echo '- name: c'; echo '  context: {cluster: k, user: u}'; "
		"} > kubeconfig", dir, e.ks.port), "kubeconfig");
	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	if (!ASSERT_OK(kube_config_load(&e.cfg, path, NULL, msg, sizeof(msg)), msg))
		goto out;
	snprintf(path, sizeof(path), "https://127.0.0.1:%u", e.ks.port);
	ASSERT_STREQ(e.cfg.server, path, "server without the trailing slash");
	ASSERT_OK_PTR(e.cfg.cert.data, "client certificate decoded");
	if (!ASSERT_OK(kube_client_new(&e.cfg, &e.k), "client") ||
	    !ASSERT_OK(synth(&e, 4, 4, 0), "synth") || watch_start(&e, NULL))
		goto out;
	ASSERT_TRUE(wait_count(&e, KUBE_SERVICES, 4, 10000), "listed with a client certificate");
out:
	free(out);
	env_stop(&e);
	kube_config_free(&e.cfg);
	if (strchr(dir, 'X') == NULL)
		sh("rm -rf %s%s%s%s", dir, "", "", "");
}

void test_kube_watch(void)
{
	if (test__start_subtest("framer_cuts"))
		test_framer_cuts();
	test_replays();
	if (test__start_subtest("pagination"))
		test_pagination();
	if (test__start_subtest("streaming_list"))
		test_streaming_list();
	if (test__start_subtest("bookmarks"))
		test_bookmarks();
	if (test__start_subtest("gone_410"))
		test_gone();
	if (test__start_subtest("retry_after_429"))
		test_retry_after();
	if (test__start_subtest("server_closed_watch"))
		test_server_closed();
	if (test__start_subtest("deleted_while_away"))
		test_deleted_while_away();
	if (test__start_subtest("missing_crds"))
		test_missing_crds();
	if (test__start_subtest("deploy_dry_run"))
		test_deploy_dry_run();
	if (test__start_subtest("in_cluster_tls"))
		test_in_cluster_tls();
	if (test__start_subtest("kubeconfig_client_cert"))
		test_kubeconfig_client_cert();
}
