// SPDX-License-Identifier: Apache-2.0
/* The elected route status writer: see kube_status.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/log.h"
#include "translate/status.h"
#include "kube_status.h"

#define LEASE_PATH "/apis/coordination.k8s.io/v1/namespaces/%s/leases"
#define STATUS_RESYNC_S 30	/* the leader checks every route this often */
#define STATUS_MAX_TRIES 5	/* 409s on one route before it waits for the next pass */

struct kube_status {
	struct kube_client *k;
	struct kube_watch *w;
	struct kube_status_opts o;
	char identity[256], lease_ns[256], lease_name[256];
	volatile int stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool leading;			/* lock */
	json_t *desired;		/* lock: the last publish, an array of JSON texts */
	unsigned int desired_gen;	/* lock: publishes so far */
	unsigned int leader_gen;	/* lock: times leadership was won */
	pthread_t lease_thread, status_thread;
	bool lease_started, status_started;
	/* lease thread only */
	struct kube_conn lease_conn;
	char observed_rv[128];
	char observed_holder[256];
	double observed_at;		/* CLOCK_MONOTONIC s when the record last changed */
	double last_renew;		/* CLOCK_MONOTONIC s of our last successful renew */
	/* status thread only */
	struct kube_conn status_conn;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* RFC 3339 with microseconds (metav1.MicroTime), or seconds (metav1.Time). */
static void now_rfc3339(char *buf, size_t len, bool micro)
{
	struct timeval tv;
	struct tm tm;
	char base[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(buf, len, "%s.%06ldZ", base, (long)tv.tv_usec);
	else
		snprintf(buf, len, "%sZ", base);
}

static bool nap(struct kube_status *s, double sec)
{
	struct timespec ts;
	long ns = (long)((sec - (long)sec) * 1e9);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (long)sec;
	ts.tv_nsec += ns;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	/* One wait: a publish or a change of leadership wakes us early. */
	pthread_mutex_lock(&s->lock);
	if (!s->stop)
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	pthread_mutex_unlock(&s->lock);
	return !s->stop;
}

static void set_leading(struct kube_status *s, bool on, const char *why)
{
	pthread_mutex_lock(&s->lock);
	if (s->leading != on) {
		s->leading = on;
		if (on)
			s->leader_gen++;
		pthread_cond_broadcast(&s->cond);
		pr_info("kube: status writer: %s lease %s/%s as %s%s%s", on ? "holding" : "lost the",
			s->lease_ns, s->lease_name, s->identity, why ? ": " : "", why ? why : "");
	}
	pthread_mutex_unlock(&s->lock);
}

bool kube_status_leading(struct kube_status *s)
{
	bool on;

	pthread_mutex_lock(&s->lock);
	on = s->leading;
	pthread_mutex_unlock(&s->lock);
	return on;
}

/* ---- the Lease ------------------------------------------------------------- */

static json_t *lease_spec(struct kube_status *s, const json_t *old_spec, bool release)
{
	const char *holder = json_string_value(json_object_get(old_spec, "holderIdentity"));
	json_int_t transitions = json_integer_value(json_object_get(old_spec, "leaseTransitions"));
	const char *acquired = json_string_value(json_object_get(old_spec, "acquireTime"));
	bool ours = holder && !strcmp(holder, s->identity);
	char now[64];

	now_rfc3339(now, sizeof(now), true);
	if (release)	/* as client-go releases: nobody, for a second */
		return json_pack("{s:s, s:i, s:s, s:s, s:I}", "holderIdentity", "",
				 "leaseDurationSeconds", 1, "acquireTime", now, "renewTime", now,
				 "leaseTransitions", transitions);
	return json_pack("{s:s, s:i, s:s, s:s, s:I}", "holderIdentity", s->identity,
			 "leaseDurationSeconds", s->o.lease_duration_s, "acquireTime",
			 ours && acquired ? acquired : now, "renewTime", now, "leaseTransitions",
			 ours || !old_spec ? transitions : transitions + 1);
}

/* client-go's tryAcquireOrRenew: true when we hold the Lease now. */
static bool try_acquire_or_renew(struct kube_status *s, bool release)
{
	char path[1024], *body;
	struct kube_resp resp;
	json_t *lease, *spec, *nspec;
	const char *holder, *rv;
	json_int_t duration;
	int ret;

	snprintf(path, sizeof(path), LEASE_PATH "/%s", s->lease_ns, s->lease_name);
	ret = kube_do(&s->lease_conn, "GET", path, NULL, NULL, &resp);
	if (ret || (resp.status != 200 && resp.status != 404)) {
		if (!ret)
			pr_warn("kube: lease %s/%s: GET: HTTP %ld", s->lease_ns, s->lease_name,
				resp.status);
		kube_resp_free(&resp);
		return false;
	}
	if (resp.status == 404) {
		kube_resp_free(&resp);
		if (release)
			return false;
		nspec = lease_spec(s, NULL, false);
		lease = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion",
				  "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
				  s->lease_name, "namespace", s->lease_ns, "spec", nspec);
		body = lease ? json_dumps(lease, JSON_COMPACT) : NULL;
		json_decref(lease);
		if (!body)
			return false;
		snprintf(path, sizeof(path), LEASE_PATH, s->lease_ns);
		ret = kube_do(&s->lease_conn, "POST", path, "application/json", body, &resp);
		free(body);
		kube_resp_free(&resp);
		if (!ret && resp.status == 201) {
			s->observed_at = mono();
			return true;
		}
		return false;
	}
	lease = json_loadb(resp.body, resp.len, 0, NULL);
	kube_resp_free(&resp);
	if (!lease)
		return false;
	spec = json_object_get(lease, "spec");
	holder = json_string_value(json_object_get(spec, "holderIdentity"));
	rv = json_string_value(json_object_get(json_object_get(lease, "metadata"),
					       "resourceVersion"));
	duration = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
	/* The record changed: when, by our clock (no comparing clocks with the writer). */
	if (strcmp(rv ? rv : "", s->observed_rv) ||
	    strcmp(holder ? holder : "", s->observed_holder)) {
		snprintf(s->observed_rv, sizeof(s->observed_rv), "%s", rv ? rv : "");
		snprintf(s->observed_holder, sizeof(s->observed_holder), "%s",
			 holder ? holder : "");
		s->observed_at = mono();
	}
	if (release ? !holder || strcmp(holder, s->identity) :
	    holder && *holder && strcmp(holder, s->identity) &&
	    s->observed_at + (double)(duration > 0 ? duration : s->o.lease_duration_s) > mono()) {
		json_decref(lease);
		return false;	/* someone else's, and alive */
	}
	nspec = lease_spec(s, spec, release);
	if (!nspec || json_object_set_new(lease, "spec", nspec)) {
		json_decref(lease);
		return false;
	}
	body = json_dumps(lease, JSON_COMPACT);
	json_decref(lease);
	if (!body)
		return false;
	snprintf(path, sizeof(path), LEASE_PATH "/%s", s->lease_ns, s->lease_name);
	ret = kube_do(&s->lease_conn, "PUT", path, "application/json", body, &resp);
	free(body);
	if (!ret && resp.status == 200) {
		json_t *got = json_loadb(resp.body, resp.len, 0, NULL);
		const char *nrv = json_string_value(json_object_get(json_object_get(got, "metadata"),
								    "resourceVersion"));

		snprintf(s->observed_rv, sizeof(s->observed_rv), "%s", nrv ? nrv : "");
		snprintf(s->observed_holder, sizeof(s->observed_holder), "%s",
			 release ? "" : s->identity);
		s->observed_at = mono();
		json_decref(got);
		kube_resp_free(&resp);
		return true;
	}
	if (!ret && resp.status != 409)
		pr_warn("kube: lease %s/%s: PUT: HTTP %ld", s->lease_ns, s->lease_name,
			resp.status);
	kube_resp_free(&resp);
	return false;
}

static void *lease_main(void *arg)
{
	struct kube_status *s = arg;

	while (!s->stop) {
		bool leading = kube_status_leading(s);

		if (try_acquire_or_renew(s, false)) {
			s->last_renew = mono();
			set_leading(s, true, NULL);
		} else if (leading && mono() - s->last_renew > s->o.renew_deadline_s) {
			set_leading(s, false, "not renewed within the renew deadline");
		} else if (leading && *s->observed_holder &&
			   strcmp(s->observed_holder, s->identity)) {
			set_leading(s, false, "another agent holds it");
		}
		nap(s, s->o.retry_period_s);
	}
	if (kube_status_leading(s)) {
		static const int never = 0;

		/* Release with a connection that is not stopped. */
		s->lease_conn.stop = &never;
		if (try_acquire_or_renew(s, true))
			pr_info("kube: status writer: released lease %s/%s", s->lease_ns,
				s->lease_name);
		set_leading(s, false, "stopping");
	}
	return NULL;
}

/* ---- statuses --------------------------------------------------------------- */

/*
 * desired holds each route's entry as its JSON text, parsed again by the
 * writer one route at a time: at 10k routes the documents were 26 MB, two
 * of them while the next replaced the last, against about 3 MB of text.
 */
int kube_status_publish(struct kube_status *s, const struct tr_result *r)
{
	json_t *all = json_array();
	char *txt;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_routes; i++) {
		const struct tr_route_status *rs = &r->routes[i];
		const struct gapi_route *route = rs->route;
		enum kube_res res = kube_route_res(route->kind);
		json_t *parents = json_array(), *e;

		if (res == KUBE_RES_COUNT || !parents) {
			json_decref(parents);
			continue;	/* a kind we do not watch (TLSRoute) */
		}
		for (size_t p = 0; p < rs->nr_parents; p++) {
			const struct tr_parent_status *ps = &rs->parents[p];
			json_t *conds = json_array();

			for (size_t c = 0; conds && c < ps->nr_conditions; c++) {
				const struct tr_condition *cd = &ps->conditions[c];

				json_array_append_new(conds, json_pack(
					"{s:s, s:s, s:s, s:s, s:I}", "type", cd->type, "status",
					cd->status ? "True" : "False", "reason", cd->reason,
					"message", cd->message ? cd->message : "",
					"observedGeneration", (json_int_t)route->meta.generation));
			}
			json_array_append_new(parents, json_pack("{s:I, s:o*}", "index",
				(json_int_t)(ps->ref - route->parents), "conditions", conds));
		}
		e = json_pack("{s:i, s:s, s:s, s:o}", "res", (int)res, "namespace",
			      route->meta.namespace, "name", route->meta.name, "parents", parents);
		txt = e ? json_dumps(e, JSON_COMPACT) : NULL;
		json_decref(e);
		if (!txt || json_array_append_new(all, json_string_nocheck(txt))) {
			free(txt);
			json_decref(all);
			return -ENOMEM;
		}
		free(txt);
	}
	pthread_mutex_lock(&s->lock);
	json_decref(s->desired);
	s->desired = all;
	s->desired_gen++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* A condition of an existing entry by type, for its lastTransitionTime. */
static const json_t *old_condition(const json_t *old_entry, const char *type)
{
	const json_t *c;
	size_t i;

	json_array_foreach(json_object_get(old_entry, "conditions"), i, c)
		if (json_is_string(json_object_get(c, "type")) &&
		    !strcmp(json_string_value(json_object_get(c, "type")), type))
			return c;
	return NULL;
}

static bool same_parent_ref(const json_t *a, const json_t *b)
{
	static const char *const keys[] = { "group", "kind", "namespace", "name", "sectionName",
					    "port" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);

		if ((x || y) && (!x || !y || !json_equal(x, y)))
			return false;
	}
	return true;
}

/*
 * status.parents as it should be: the others' entries as they are, then
 * ours for the desired parentRefs. NULL when the route's spec no longer has
 * the parentRef indexes the translation gave (it changed since).
 */
static json_t *wanted_parents(const json_t *obj, const json_t *want)
{
	const json_t *refs = json_object_get(json_object_get(obj, "spec"), "parentRefs");
	const json_t *old = json_object_get(json_object_get(obj, "status"), "parents");
	json_t *out = json_array(), *e, *p;
	char now[64];
	size_t i;

	if (!out)
		return NULL;
	now_rfc3339(now, sizeof(now), false);
	json_array_foreach(old, i, e) {
		const char *cn = json_string_value(json_object_get(e, "controllerName"));

		if (!cn || strcmp(cn, TR_CONTROLLER_NAME))
			json_array_append(out, e);
	}
	json_array_foreach(json_object_get(want, "parents"), i, p) {
		json_int_t idx = json_integer_value(json_object_get(p, "index"));
		const json_t *ref = json_array_get(refs, (size_t)idx);
		const json_t *prev = NULL, *c;
		json_t *conds = json_array(), *entry;
		size_t j;

		if (!ref) {
			json_decref(conds);
			json_decref(out);
			return NULL;
		}
		json_array_foreach(old, j, e) {
			const char *cn = json_string_value(json_object_get(e, "controllerName"));

			if (cn && !strcmp(cn, TR_CONTROLLER_NAME) &&
			    same_parent_ref(json_object_get(e, "parentRef"), ref))
				prev = e;
		}
		json_array_foreach(json_object_get(p, "conditions"), j, c) {
			json_t *nc = json_deep_copy(c);
			const json_t *oc = old_condition(prev, json_string_value(
							     json_object_get(c, "type")));
			const json_t *ot = json_object_get(oc, "lastTransitionTime");

			if (!nc)
				continue;
			/* The time the status last flipped, not the time we last wrote. */
			if (oc && ot && json_equal(json_object_get(oc, "status"),
						   json_object_get(c, "status")))
				json_object_set(nc, "lastTransitionTime", (json_t *)ot);
			else
				json_object_set_new(nc, "lastTransitionTime", json_string(now));
			json_array_append_new(conds, nc);
		}
		entry = json_pack("{s:O, s:s, s:o}", "parentRef", ref, "controllerName",
				  TR_CONTROLLER_NAME, "conditions", conds);
		if (!entry || json_array_append_new(out, entry)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Does what is there differ from what we want, other than in times we keep? */
static bool needs_write(const json_t *obj, const json_t *wanted)
{
	const json_t *old = json_object_get(json_object_get(obj, "status"), "parents");

	if (!old)
		return json_array_size(wanted) > 0;
	return !json_equal(old, wanted);
}

/*
 * The body of a PUT of the status subresource, as text: what the API server
 * reads of it (apiVersion and kind, which must be the URL's; name and
 * namespace; uid and resourceVersion, the preconditions) and the status
 * with parents in place of the old (wanted is taken). Nothing else: a
 * status update keeps the stored object and takes only its status (for a
 * custom resource the server copies the stored object and sets the
 * status), so the store need not hold the rest of the route (kube_watch's
 * slim routes). NULL without memory.
 */
static char *status_body(const json_t *obj, json_t *wanted)
{
	static const char *const meta[] = { "name", "namespace", "uid", "resourceVersion" };
	const json_t *om = json_object_get(obj, "metadata");
	json_t *body = json_object(), *md = json_object();
	json_t *status = json_copy(json_object_get(obj, "status"));
	bool ok = body && md;
	char *txt = NULL;

	if (!json_is_object(status)) {
		json_decref(status);
		status = json_object();
	}
	for (size_t i = 0; ok && i < sizeof(meta) / sizeof(meta[0]); i++) {
		json_t *v = json_object_get(om, meta[i]);

		ok = !v || !json_object_set(md, meta[i], v);
	}
	ok = ok && status && !json_object_set_new(status, "parents", json_incref(wanted)) &&
	     !json_object_set(body, "apiVersion", json_object_get(obj, "apiVersion")) &&
	     !json_object_set(body, "kind", json_object_get(obj, "kind")) &&
	     !json_object_set(body, "metadata", md) && !json_object_set(body, "status", status);
	if (ok)
		txt = json_dumps(body, JSON_COMPACT);
	json_decref(wanted);
	json_decref(status);
	json_decref(md);
	json_decref(body);
	return txt;
}

/* One route: 1 written, 0 nothing to do, negative errno. */
static int write_route(struct kube_status *s, const json_t *want)
{
	enum kube_res res = (enum kube_res)json_integer_value(json_object_get(want, "res"));
	const char *ns = json_string_value(json_object_get(want, "namespace"));
	const char *name = json_string_value(json_object_get(want, "name"));
	json_t *obj = kube_watch_get(s->w, res, ns, name);
	char path[1200];
	int ret = -EAGAIN;

	if (!obj)
		return 0;	/* deleted since */
	if (kube_res_object_path(s->w, res, ns, name, path, sizeof(path) - 8)) {
		json_decref(obj);
		return -ENAMETOOLONG;
	}
	strcat(path, "/status");
	for (int tries = 0; tries < STATUS_MAX_TRIES && !s->stop; tries++) {
		json_t *wanted = wanted_parents(obj, want);
		struct kube_resp resp;
		char *body;

		if (!wanted) {
			ret = 0;	/* the spec changed since: the next translation says */
			break;
		}
		if (!needs_write(obj, wanted)) {
			json_decref(wanted);
			ret = 0;
			break;
		}
		body = status_body(obj, wanted);
		if (!body) {
			ret = -ENOMEM;
			break;
		}
		ret = kube_do(&s->status_conn, "PUT", path, "application/json", body, &resp);
		free(body);
		if (!ret && resp.status == 200) {
			kube_resp_free(&resp);
			ret = 1;
			break;
		}
		if (!ret && resp.status == 404) {
			kube_resp_free(&resp);
			ret = 0;
			break;
		}
		if (ret || resp.status != 409) {
			pr_warn("kube: status of %s %s/%s: %s%ld %.200s", kube_res_name(res), ns, name,
				ret ? "" : "HTTP ", ret ? (long)ret : resp.status,
				resp.body ? resp.body : resp.err);
			kube_resp_free(&resp);
			ret = -EIO;
			break;
		}
		kube_resp_free(&resp);
		/* 409: someone wrote since; read the route again and redo ours. */
		ret = kube_do(&s->status_conn, "GET", path, NULL, NULL, &resp);
		json_decref(obj);
		obj = !ret && resp.status == 200 ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
		kube_resp_free(&resp);
		if (!obj) {
			ret = -EIO;
			break;
		}
		ret = -EAGAIN;
	}
	json_decref(obj);
	return ret;
}

static void *status_main(void *arg)
{
	struct kube_status *s = arg;
	unsigned int done_gen = 0, done_leader = 0;
	double next_full = 0;

	while (!s->stop) {
		json_t *desired = NULL;
		unsigned int gen, lgen;
		bool leading;
		size_t written = 0, failed = 0, i;
		json_t *want, *txt;

		pthread_mutex_lock(&s->lock);
		leading = s->leading;
		gen = s->desired_gen;
		lgen = s->leader_gen;
		if (leading && s->desired &&
		    (gen != done_gen || lgen != done_leader || mono() >= next_full))
			desired = json_incref(s->desired);
		pthread_mutex_unlock(&s->lock);
		if (!desired) {
			nap(s, 1);
			continue;
		}
		json_array_foreach(desired, i, txt) {
			int ret;

			if (s->stop || !kube_status_leading(s))
				break;
			want = json_loads(json_string_value(txt), 0, NULL);
			ret = want ? write_route(s, want) : -ENOMEM;
			json_decref(want);
			if (ret > 0)
				written++;
			else if (ret < 0)
				failed++;
		}
		json_decref(desired);
		if (written || failed)
			pr_info("kube: status writer: %zu route statuses written, %zu failed",
				written, failed);
		done_gen = gen;
		done_leader = lgen;
		next_full = mono() + (failed ? 5 : STATUS_RESYNC_S);
	}
	return NULL;
}

int kube_status_start(struct kube_client *k, struct kube_watch *w,
		      const struct kube_status_opts *o, struct kube_status **out)
{
	struct kube_status *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->k = k;
	s->w = w;
	s->o = *o;
	if (!s->o.lease_duration_s)
		s->o.lease_duration_s = 15;
	if (!s->o.renew_deadline_s)
		s->o.renew_deadline_s = 10;
	if (!s->o.retry_period_s)
		s->o.retry_period_s = 2;
	snprintf(s->identity, sizeof(s->identity), "%s", o->identity);
	snprintf(s->lease_ns, sizeof(s->lease_ns), "%s", o->lease_namespace);
	snprintf(s->lease_name, sizeof(s->lease_name), "%s",
		 o->lease_name ? o->lease_name : "gammad-status-writer");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	ret = kube_conn_init(&s->lease_conn, k, &s->stop);
	if (!ret)
		ret = kube_conn_init(&s->status_conn, k, &s->stop);
	if (!ret)
		ret = -pthread_create(&s->lease_thread, NULL, lease_main, s);
	s->lease_started = !ret;
	if (!ret)
		ret = -pthread_create(&s->status_thread, NULL, status_main, s);
	s->status_started = !ret;
	if (ret) {
		kube_status_stop(s);
		return ret;
	}
	*out = s;
	return 0;
}

void kube_status_stop(struct kube_status *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->status_started)
		pthread_join(s->status_thread, NULL);
	if (s->lease_started)
		pthread_join(s->lease_thread, NULL);
	kube_conn_fini(&s->lease_conn);
	kube_conn_fini(&s->status_conn);
	json_decref(s->desired);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
