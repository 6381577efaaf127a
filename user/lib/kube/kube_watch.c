// SPDX-License-Identifier: Apache-2.0
/* Reflectors and the store of API objects: see kube_watch.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "kube_doc.h"
#include "kube_watch.h"

#define KUBE_MAX_VERSIONS 3
/*
 * Slim: a listed object waits in the queue until the caller drains it; a
 * reflector this many objects ahead of the caller waits (take_now). At 10k
 * EndpointSlices a streamed list ran ahead by nearly all of them: about
 * 90 MB of parsed JSON at once, resident in the reflector's malloc arena
 * after it was freed.
 */
#define KUBE_QUEUE_AHEAD 1024
#define INITIAL_EVENTS_END "k8s.io/initial-events-end"

struct res_desc {
	const char *name;		/* the resource (plural) */
	const char *group;		/* "" core */
	const char *versions[KUBE_MAX_VERSIONS];	/* tried in order; a CRD may serve any */
	const char *kind;
	bool namespaced, crd;
	int route_kind;			/* enum gapi_route_kind, -1 */
};

static const struct res_desc descs[KUBE_RES_COUNT] = {
	[KUBE_NAMESPACES] = { "namespaces", "", { "v1" }, "Namespace", false, false, -1 },
	[KUBE_SERVICES] = { "services", "", { "v1" }, "Service", true, false, -1 },
	[KUBE_SLICES] = { "endpointslices", "discovery.k8s.io", { "v1" }, "EndpointSlice",
			  true, false, -1 },
	[KUBE_PODS] = { "pods", "", { "v1" }, "Pod", true, false, -1 },
	[KUBE_HTTPROUTES] = { "httproutes", GAPI_GROUP, { "v1", "v1beta1" }, "HTTPRoute",
			      true, true, ROUTE_HTTP },
	[KUBE_GRPCROUTES] = { "grpcroutes", GAPI_GROUP, { "v1" }, "GRPCRoute", true, true,
			      ROUTE_GRPC },
	[KUBE_TCPROUTES] = { "tcproutes", GAPI_GROUP, { "v1", "v1alpha2" }, "TCPRoute", true,
			     true, ROUTE_TCP },
	[KUBE_GRANTS] = { "referencegrants", GAPI_GROUP, { "v1", "v1beta1" }, "ReferenceGrant",
			  true, true, -1 },
};

const char *kube_res_name(enum kube_res r)
{
	return r < KUBE_RES_COUNT ? descs[r].name : "?";
}

int kube_res_route_kind(enum kube_res r)
{
	return r < KUBE_RES_COUNT ? descs[r].route_kind : -1;
}

enum kube_res kube_route_res(enum gapi_route_kind kind)
{
	for (int r = 0; r < KUBE_RES_COUNT; r++)
		if (descs[r].route_kind == (int)kind)
			return (enum kube_res)r;
	return KUBE_RES_COUNT;
}

static const enum model_kind model_kinds[KUBE_RES_COUNT] = {
	[KUBE_NAMESPACES] = MODEL_NAMESPACE,
	[KUBE_SERVICES] = MODEL_SERVICE,
	[KUBE_SLICES] = MODEL_ENDPOINT_SLICE,
	[KUBE_PODS] = MODEL_POD,
	[KUBE_HTTPROUTES] = MODEL_ROUTE,
	[KUBE_GRPCROUTES] = MODEL_ROUTE,
	[KUBE_TCPROUTES] = MODEL_ROUTE,
	[KUBE_GRANTS] = MODEL_GRANT,
};

int kube_event_model(const struct kube_event *kev, struct model_event *ev, char *buf,
		     struct diag *dg)
{
	const struct res_desc *d = &descs[kev->res];
	char *name = buf, *ns = NULL, *slash, diag_name[KUBE_EVENT_BUF];
	size_t len = strlen(kev->key);

	if (len >= MODEL_KEY_MAX)
		len = MODEL_KEY_MAX - 1;	/* longer than any valid name: dropped anyway */
	memcpy(buf, kev->key, len);
	buf[len] = 0;
	if (d->namespaced && (slash = strchr(buf, '/'))) {
		*slash = 0;
		ns = buf;
		name = slash + 1;
	}
	snprintf(diag_name, sizeof(diag_name), "api:%s/%s", d->kind, kev->key);
	return kube_doc_event(model_kinds[kev->res],
			      d->route_kind < 0 ? 0 : (enum gapi_route_kind)d->route_kind,
			      kev->type == KUBE_EV_PUT, kev->obj, ns, name, diag_name, ev, dg);
}

struct queued {
	enum kube_res res;
	enum kube_event_type type;
	char *key;
	json_t *obj;
};

struct reflector {
	struct kube_watch *w;
	enum kube_res res;
	const struct res_desc *d;
	pthread_t thread;
	bool started;
	struct kube_conn conn;
	int version;			/* index into d->versions in use */
	char rv[128];			/* last resourceVersion seen; "" : list first */
	bool need_list;
	bool watch_list_refused;
	bool absent_logged;
	unsigned int fails;		/* consecutive failures: the backoff's exponent */
	uint64_t rng;
	/* a list in progress (paginated, or the initial events of a stream) */
	json_t *fresh;
	struct kube_framer fr;		/* the stream being framed */
	bool initial_done;		/* the stream's initial events ended */
	unsigned int quick_relists;	/* relists without a watch event between */
	int stream_result;		/* what the last event asked for */
};

struct kube_watch {
	struct kube_client *k;
	struct kube_watch_opts o;
	char field_selector[512];	/* escaped, for Pods; "" none */
	volatile int stop;
	pthread_mutex_t lock;		/* everything below, and the stats */
	pthread_cond_t cond;		/* stop, for the threads' sleeps; a drain done */
	json_t *objs[KUBE_RES_COUNT];	/* key -> object */
	bool synced[KUBE_RES_COUNT];
	struct queued *queue;
	size_t nr_queue, cap_queue;
	size_t draining;		/* events the caller's drain holds */
	int efd;
	struct kube_watch_stats st;
	struct reflector refl[KUBE_RES_COUNT];
};

enum step {
	STEP_OK,		/* go on: watch from rv */
	STEP_RELIST,		/* 410: list again, now */
	STEP_RETRY,		/* wait the backoff (or retry_after) */
	STEP_ABSENT,		/* no such resource: wait absent_retry_s */
	STEP_STOP,
};

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: jitter only, no need for more */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/* Sleep ms unless stopped; false when stopped. */
static bool nap(struct kube_watch *w, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&w->lock);
	return !w->stop;
}

static long backoff_ms(struct reflector *r)
{
	const struct kube_watch_opts *o = &r->w->o;
	double ms = o->backoff_initial_ms;

	for (unsigned int i = 1; i < r->fails && ms < o->backoff_max_ms; i++)
		ms *= 2;
	if (ms > o->backoff_max_ms)
		ms = o->backoff_max_ms;
	/* +-50%: agents that lost the server together do not come back together */
	ms *= 0.5 + (double)(rng_next(&r->rng) % 1000) / 1000.0;
	return (long)ms;
}

static const char *version_of(const struct reflector *r)
{
	return r->d->versions[r->version];
}

static int base_path(const struct reflector *r, char *buf, size_t len)
{
	int n;

	if (*r->d->group)
		n = snprintf(buf, len, "/apis/%s/%s/%s", r->d->group, version_of(r), r->d->name);
	else
		n = snprintf(buf, len, "/api/%s/%s", version_of(r), r->d->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int kube_res_object_path(const struct kube_watch *w, enum kube_res res, const char *ns,
			 const char *name, char *buf, size_t len)
{
	const struct reflector *r = &w->refl[res];
	int n;

	if (*r->d->group)
		n = snprintf(buf, len, "/apis/%s/%s/namespaces/%s/%s/%s", r->d->group,
			     version_of(r), ns, r->d->name, name);
	else
		n = snprintf(buf, len, "/api/%s/namespaces/%s/%s/%s", version_of(r), ns,
			     r->d->name, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);

	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* "ns/name" (or "name") of obj into buf; NULL without a name. */
static const char *obj_key(const struct reflector *r, const json_t *obj, char *buf, size_t len)
{
	const char *name = str_at(obj, "metadata", "name");
	const char *ns = str_at(obj, "metadata", "namespace");

	if (!name || !*name)
		return NULL;
	if (r->d->namespaced)
		snprintf(buf, len, "%s/%s", ns ? ns : "default", name);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}

/*
 * Make a listed object look like a watched one (LIST items of built-in
 * kinds carry no apiVersion/kind) and drop managedFields, which nobody here
 * reads and which is often half an object's size.
 */
static void normalize(const struct reflector *r, json_t *obj)
{
	char api[128];

	if (*r->d->group)
		snprintf(api, sizeof(api), "%s/%s", r->d->group, version_of(r));
	else
		snprintf(api, sizeof(api), "%s", version_of(r));
	if (!json_is_string(json_object_get(obj, "apiVersion")))
		json_object_set_new(obj, "apiVersion", json_string(api));
	if (!json_is_string(json_object_get(obj, "kind")))
		json_object_set_new(obj, "kind", json_string(r->d->kind));
	json_object_del(json_object_get(obj, "metadata"), "managedFields");
}

/* ---- the store and the queue (w->lock held) -------------------------------- */

static void enqueue(struct kube_watch *w, enum kube_res res, enum kube_event_type type,
		    const char *key, json_t *obj)
{
	struct queued *q;

	if (w->nr_queue == w->cap_queue) {
		size_t cap = w->cap_queue ? 2 * w->cap_queue : 256;

		q = realloc(w->queue, cap * sizeof(*q));
		if (!q) {
			pr_err("kube: event queue: %s (the next list repairs the store)",
			       strerror(ENOMEM));
			return;
		}
		w->queue = q;
		w->cap_queue = cap;
	}
	q = &w->queue[w->nr_queue];
	q->key = strdup(key);
	if (!q->key)
		return;
	q->res = res;
	q->type = type;
	q->obj = json_incref(obj);
	if (!w->nr_queue++) {
		uint64_t one = 1;

		if (write(w->efd, &one, sizeof(one)) < 0)
			pr_debug("kube: eventfd: %s", strerror(errno));
	}
}

/* An entry slim_route() made (a whole object always has an apiVersion: normalize()). */
static bool is_slim_route(const json_t *e)
{
	return json_is_string(json_object_get(e, "route")) && !json_object_get(e, "apiVersion");
}

/* Slim: a hash of a route's spec as canonical text; false without memory. */
static bool spec_hash(const json_t *obj, uint64_t *out)
{
	const json_t *spec = json_object_get(obj, "spec");
	char *txt;

	if (!spec) {
		*out = hash_large("", 0, 0);
		return true;
	}
	txt = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!txt)
		return false;
	*out = hash_large(txt, strlen(txt), 0);
	free(txt);
	return true;
}

/*
 * A route whose spec, labels, annotations and generation are unchanged
 * changed only its status (most likely our own write): stored, but no event,
 * so a status write does not cause a translation. old may be a slim entry
 * (slim_route()): its spec is a hash then.
 */
static bool status_only(const struct reflector *r, const json_t *old, const json_t *obj)
{
	static const char *const meta[] = { "generation", "labels", "annotations",
					    "deletionTimestamp" };
	const json_t *om = json_object_get(old, "metadata"), *nm = json_object_get(obj, "metadata");
	uint64_t h;

	if (r->d->route_kind < 0)
		return false;
	if (is_slim_route(old) ?
	    !spec_hash(obj, &h) ||
	    (uint64_t)json_integer_value(json_object_get(old, "specHash")) != h :
		       !json_equal(json_object_get(old, "spec"), json_object_get(obj, "spec")))
		return false;
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
		const json_t *a = json_object_get(om, meta[i]), *b = json_object_get(nm, meta[i]);

		if ((a || b) && (!a || !b || !json_equal(a, b)))
			return false;
	}
	return true;
}

/* Set key of to to from's key, if from has it; false without memory. */
static bool copy_key(json_t *to, const json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);

	return !v || !json_object_set(to, key, v);
}

/*
 * Slim: a route as the store keeps it, only what is read back from it:
 *   metadata   resourceVersion (a relist compares it), and what
 *              status_only() compares as it is: generation, labels,
 *              annotations, deletionTimestamp
 *   specHash   the spec, for status_only(): a hash of its canonical text
 *              (the API server bumps generation on every spec change of a
 *              custom resource; the hash is for one that would not)
 *   route      the status writer's part as one compact JSON text, parsed
 *              when it writes (kube_watch_get()): apiVersion, kind, name,
 *              namespace, uid, resourceVersion, spec.parentRefs and the
 *              status, whole
 * At 10k routes the whole objects were 34 MB of jansson nodes. NULL without
 * memory (the caller keeps the whole object then).
 */
static json_t *slim_route(const json_t *obj)
{
	static const char *const meta[] = { "resourceVersion", "generation", "labels",
					    "annotations", "deletionTimestamp" };
	static const char *const route_meta[] = { "name", "namespace", "uid", "resourceVersion" };
	const json_t *om = json_object_get(obj, "metadata");
	json_t *e = json_object(), *md = json_object(), *route = json_object();
	json_t *rmd = json_object(), *spec = json_object();
	uint64_t h;
	char *txt = NULL;
	bool ok = e && md && route && rmd && spec && spec_hash(obj, &h);

	for (size_t i = 0; ok && i < sizeof(meta) / sizeof(meta[0]); i++)
		ok = copy_key(md, om, meta[i]);
	for (size_t i = 0; ok && i < sizeof(route_meta) / sizeof(route_meta[0]); i++)
		ok = copy_key(rmd, om, route_meta[i]);
	ok = ok && copy_key(route, obj, "apiVersion") && copy_key(route, obj, "kind") &&
	     !json_object_set(route, "metadata", rmd) &&
	     copy_key(spec, json_object_get(obj, "spec"), "parentRefs") &&
	     !json_object_set(route, "spec", spec) && copy_key(route, obj, "status");
	if (ok)
		txt = json_dumps(route, JSON_COMPACT);
	ok = txt && !json_object_set(e, "metadata", md) &&
	     !json_object_set_new(e, "specHash", json_integer((json_int_t)h)) &&
	     !json_object_set_new(e, "route", json_string_nocheck(txt));
	free(txt);
	json_decref(md);
	json_decref(route);
	json_decref(rmd);
	json_decref(spec);
	if (!ok) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static const char *rv_of(const json_t *obj);

static void store_put(struct reflector *r, const char *key, json_t *obj)
{
	struct kube_watch *w = r->w;
	json_t *old = json_object_get(w->objs[r->res], key), *slim;
	bool quiet = old && status_only(r, old, obj);

	/*
	 * Slim: what the object itself says reaches the caller in the event;
	 * the store keeps what a relist compares (at 10k Services the kept
	 * EndpointSlices alone were a hundred MB): the resourceVersion as a
	 * string, not an object around it (a third of the size); of a route
	 * what the status writer and status_only() read back.
	 */
	if (w->o.slim && r->d->route_kind < 0)
		json_object_set_new(w->objs[r->res], key, json_string(rv_of(obj) ? rv_of(obj) : ""));
	else if (w->o.slim && (slim = slim_route(obj)))
		json_object_set_new(w->objs[r->res], key, slim);
	else
		json_object_set(w->objs[r->res], key, obj);
	if (!quiet)
		enqueue(w, r->res, KUBE_EV_PUT, key, obj);
}

static void store_delete(struct reflector *r, const char *key)
{
	struct kube_watch *w = r->w;
	json_t *old = json_object_get(w->objs[r->res], key);

	if (!old)
		return;
	/* Queued first: key may be the store's own, which the delete frees (store_replace). */
	json_incref(old);
	enqueue(w, r->res, KUBE_EV_DELETE, key, old);
	json_object_del(w->objs[r->res], key);
	json_decref(old);
}

/* A slim store's entry is the resourceVersion itself. */
static const char *rv_of(const json_t *obj)
{
	return json_is_string(obj) ? json_string_value(obj) :
				     str_at(obj, "metadata", "resourceVersion");
}

/*
 * A complete list replaces the store: new and changed objects are put,
 * what the list lacks was deleted while we were not watching.
 */
static void store_replace(struct reflector *r, json_t *fresh)
{
	struct kube_watch *w = r->w;
	json_t *cur = w->objs[r->res], *obj, *old;
	const char *key;
	void *tmp;
	size_t gone = 0;

	pthread_mutex_lock(&w->lock);
	json_object_foreach_safe(cur, tmp, key, obj) {
		if (!json_object_get(fresh, key)) {
			store_delete(r, key);
			gone++;
		}
	}
	json_object_foreach(fresh, key, obj) {
		const char *a, *b;

		if (json_is_null(obj))
			continue;	/* slim: stored as it came (take_now) */
		old = json_object_get(cur, key);
		a = old ? rv_of(old) : NULL;
		b = rv_of(obj);
		if (old && a && b && !strcmp(a, b))
			continue;	/* unchanged since we saw it */
		store_put(r, key, obj);
	}
	if (!w->synced[r->res] || gone)
		pr_info("kube: %s: %zu objects (rv %s)%s", r->d->name, json_object_size(fresh),
			r->rv, gone ? ", some deleted while not watched" : "");
	if (gone)
		pr_info("kube: %s: %zu deleted while not watched", r->d->name, gone);
	w->synced[r->res] = true;
	pthread_mutex_unlock(&w->lock);
}

/* ---- LIST ---------------------------------------------------------------- */

/* What a non-200 answer means for the loop. */
static enum step bad_status(struct reflector *r, const char *what, const struct kube_resp *resp)
{
	struct kube_watch *w = r->w;

	if (resp->status == 410)
		return STEP_RELIST;
	if (resp->status == 429 || resp->status >= 500 || !resp->status) {
		pthread_mutex_lock(&w->lock);
		if (resp->retry_after_s > 0)
			w->st.retry_afters++;
		pthread_mutex_unlock(&w->lock);
		pr_warn("kube: %s %s: %s%s%ld%s", r->d->name, what,
			resp->status ? "HTTP " : "", resp->status ? "" : resp->err,
			resp->status, resp->retry_after_s > 0 ? " (Retry-After)" : "");
		return STEP_RETRY;
	}
	pr_err("kube: %s %s: HTTP %ld: %.300s", r->d->name, what, resp->status,
	       resp->body ? resp->body : "");
	return STEP_RETRY;
}

/* 404 of a CRD's resource: the next served version, or absent. */
static enum step not_found(struct reflector *r)
{
	if (r->version + 1 < KUBE_MAX_VERSIONS && r->d->versions[r->version + 1]) {
		r->version++;
		return STEP_RELIST;
	}
	r->version = 0;
	return STEP_ABSENT;
}

/*
 * Slim: a listed object goes to the store and the caller now, not when the
 * list is complete (the caller parses it while the list goes on, and no
 * whole list of objects is held); the list keeps only its key, for the
 * deletes at its end (store_replace).
 */
static int take_now(struct reflector *r, const char *key, json_t *obj)
{
	struct kube_watch *w = r->w;
	const char *a, *b;
	json_t *old;

	if (json_object_set_new(r->fresh, key, json_null()))
		return -ENOMEM;
	pthread_mutex_lock(&w->lock);
	while (w->nr_queue + w->draining >= KUBE_QUEUE_AHEAD && !w->stop)
		pthread_cond_wait(&w->cond, &w->lock);
	old = json_object_get(w->objs[r->res], key);
	a = old ? rv_of(old) : NULL;
	b = rv_of(obj);
	if (!old || !a || !b || strcmp(a, b))
		store_put(r, key, obj);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int take_items(struct reflector *r, json_t *list)
{
	json_t *items = json_object_get(list, "items"), *it;
	char key[600];
	size_t i;

	json_array_foreach(items, i, it) {
		if (!json_is_object(it) || !obj_key(r, it, key, sizeof(key)))
			continue;
		normalize(r, it);
		if (r->w->o.slim ? take_now(r, key, it) : json_object_set(r->fresh, key, it))
			return -ENOMEM;
	}
	return 0;
}

static enum step list(struct reflector *r, int *retry_after)
{
	struct kube_watch *w = r->w;
	char base[256], path[8192], esc[4096];
	char cont[4096] = "";
	size_t pages = 0;
	enum step st = STEP_OK;

	if (base_path(r, base, sizeof(base)))
		return STEP_RETRY;
	json_decref(r->fresh);
	r->fresh = json_object();
	if (!r->fresh)
		return STEP_RETRY;
	for (;;) {
		struct kube_resp resp;
		json_error_t jerr;
		json_t *doc;
		const char *c;
		int ret;

		snprintf(path, sizeof(path), "%s?limit=%d%s%s%s%s", base, w->o.page_limit,
			 r->res == KUBE_PODS && *w->field_selector ? "&fieldSelector=" : "",
			 r->res == KUBE_PODS ? w->field_selector : "", *cont ? "&continue=" : "",
			 *cont ? (kube_query_escape(cont, esc, sizeof(esc)) ?: "") : "");
		ret = kube_do(&r->conn, "GET", path, NULL, NULL, &resp);
		if (ret == -ECANCELED) {
			kube_resp_free(&resp);
			return STEP_STOP;
		}
		if (ret || resp.status != 200) {
			if (!ret && resp.status == 404 && r->d->crd) {
				kube_resp_free(&resp);
				return not_found(r);
			}
			if (!ret && resp.status == 410 && *cont) {
				/* The continue token expired: start the list over, whole. */
				pr_info("kube: %s: continue token expired (410) after %zu pages: "
					"listing again from the start", r->d->name, pages);
				pthread_mutex_lock(&w->lock);
				w->st.expired_continues++;
				pthread_mutex_unlock(&w->lock);
				kube_resp_free(&resp);
				json_object_clear(r->fresh);
				cont[0] = 0;
				pages = 0;
				continue;
			}
			st = bad_status(r, "list", &resp);
			if (st == STEP_RELIST)
				st = STEP_RETRY;	/* a 410 without continue: plain retry */
			*retry_after = resp.retry_after_s;
			kube_resp_free(&resp);
			return st;
		}
		doc = json_loadb(resp.body, resp.len, 0, &jerr);
		kube_resp_free(&resp);
		if (!doc) {
			pr_err("kube: %s list: bad JSON at %d:%d: %s", r->d->name, jerr.line,
			       jerr.column, jerr.text);
			return STEP_RETRY;
		}
		ret = take_items(r, doc);
		pages++;
		c = str_at(doc, "metadata", "continue");
		snprintf(cont, sizeof(cont), "%s", c ? c : "");
		if (!*cont) {
			const char *rv = str_at(doc, "metadata", "resourceVersion");

			snprintf(r->rv, sizeof(r->rv), "%s", rv ? rv : "");
		}
		json_decref(doc);
		if (ret)
			return STEP_RETRY;
		if (!*cont)
			break;
		if (w->stop)
			return STEP_STOP;
	}
	pthread_mutex_lock(&w->lock);
	w->st.lists++;
	w->st.pages += pages;
	pthread_mutex_unlock(&w->lock);
	store_replace(r, r->fresh);
	json_decref(r->fresh);
	r->fresh = NULL;
	r->absent_logged = false;
	return STEP_OK;
}

/* ---- WATCH ---------------------------------------------------------------- */

static void set_rv(struct reflector *r, const json_t *obj)
{
	const char *rv = rv_of(obj);

	if (rv && *rv)
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
}

/* One watch event. Returns 0 to go on, or a step to end the stream with. */
static int on_event(struct reflector *r, json_t *ev)
{
	struct kube_watch *w = r->w;
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	char key[600];

	if (!type || !json_is_object(obj)) {
		pr_warn("kube: %s watch: an event without type or object, ignored", r->d->name);
		return 0;
	}
	if (!strcmp(type, "ERROR")) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));

		pthread_mutex_lock(&w->lock);
		w->st.watch_errors++;
		pthread_mutex_unlock(&w->lock);
		pr_info("kube: %s watch: ERROR %" JSON_INTEGER_FORMAT " %s: %s", r->d->name, code,
			code == 410 ? "(resourceVersion too old): listing again" : "",
			msg ? msg : "");
		return code == 410 || code == 0 ? 1 + STEP_RELIST : 1 + STEP_RETRY;
	}
	if (!strcmp(type, "BOOKMARK")) {
		const char *end = str_at(json_object_get(obj, "metadata"), "annotations",
					 INITIAL_EVENTS_END);

		set_rv(r, obj);
		r->quick_relists = 0;
		pthread_mutex_lock(&w->lock);
		w->st.bookmarks++;
		pthread_mutex_unlock(&w->lock);
		if (end && !strcmp(end, "true") && r->fresh) {
			/* The streamed list is complete: it replaces the store. */
			pthread_mutex_lock(&w->lock);
			w->st.lists++;
			w->st.stream_lists++;
			pthread_mutex_unlock(&w->lock);
			store_replace(r, r->fresh);
			json_decref(r->fresh);
			r->fresh = NULL;
			r->initial_done = true;
			r->need_list = false;	/* from here on a plain watch, resumable */
			r->absent_logged = false;
		}
		return 0;
	}
	if (!obj_key(r, obj, key, sizeof(key)))
		return 0;
	normalize(r, obj);
	set_rv(r, obj);
	if (r->fresh) {		/* still the initial events of a streamed list */
		if (!strcmp(type, "DELETED")) {
			json_object_del(r->fresh, key);
			if (w->o.slim) {	/* taken already: gone again */
				pthread_mutex_lock(&w->lock);
				store_delete(r, key);
				pthread_mutex_unlock(&w->lock);
			}
		} else if (w->o.slim ? take_now(r, key, obj) : json_object_set(r->fresh, key, obj)) {
			return 1 + STEP_RETRY;
		}
		return 0;
	}
	r->quick_relists = 0;
	pthread_mutex_lock(&w->lock);
	w->st.events++;
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
		store_put(r, key, obj);
	else if (!strcmp(type, "DELETED"))
		store_delete(r, key);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * A value that failed to decode only because the bytes ran out: jansson says
 * "premature end" for an open object, but reports a literal ("tr"), an
 * escape ("\\u00") or a UTF-8 sequence cut at the end as invalid there.
 */
static bool cut_short(const json_error_t *err, size_t avail)
{
	enum json_error_code code = json_error_code(err);

	return code == json_error_premature_end_of_input || (size_t)err->position >= avail ||
	       (code == json_error_invalid_utf8 && avail - (size_t)err->position < 4);
}

/*
 * Decode one value from the front (jansson stops after it with
 * JSON_DISABLE_EOF_CHECK). A value cut short waits for more bytes; only a
 * piece holding a '}' can complete it (an event is an object), so pieces
 * without one are only appended: a huge event that trickles in is not
 * decoded again for every piece.
 */
int kube_framer_feed(struct kube_framer *f, const char *data, size_t n,
		     int (*fn)(void *ctx, json_t *v), void *ctx)
{
	size_t off = 0;
	int ret = 0;

	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		char *b;

		while (cap < f->len + n)
			cap *= 2;
		b = realloc(f->buf, cap);
		if (!b)
			return -ENOMEM;
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	if (f->pending && !memchr(data, '}', n))
		return 0;
	f->pending = false;
	while (off < f->len && !ret) {
		json_error_t err;
		json_t *v;

		while (off < f->len && is_space(f->buf[off]))
			off++;
		if (off == f->len)
			break;
		v = json_loadb(f->buf + off, f->len - off, JSON_DISABLE_EOF_CHECK, &err);
		if (!v) {
			if (!cut_short(&err, f->len - off)) {
				snprintf(f->err, sizeof(f->err), "%s", err.text);
				return -EINVAL;
			}
			f->pending = true;
			break;
		}
		off += (size_t)err.position;
		ret = fn(ctx, v);
		json_decref(v);
	}
	memmove(f->buf, f->buf + off, f->len - off);
	f->len -= off;
	return ret;
}

void kube_framer_reset(struct kube_framer *f)
{
	f->len = 0;
	f->pending = false;
}

void kube_framer_free(struct kube_framer *f)
{
	free(f->buf);
	*f = (struct kube_framer){ 0 };
}

static int on_framed(void *ctx, json_t *ev)
{
	return on_event(ctx, ev);
}

static int on_stream_data(void *ctx, const char *data, size_t n)
{
	struct reflector *r = ctx;
	int ret = kube_framer_feed(&r->fr, data, n, on_framed, r);

	if (ret == -EINVAL)
		pr_warn("kube: %s watch: bad JSON in the stream (%s): watching again",
			r->d->name, r->fr.err);
	return ret < 0 ? 1 + STEP_RETRY : ret;
}

static int watch_timeout(struct reflector *r)
{
	if (r->w->o.watch_timeout_s)
		return r->w->o.watch_timeout_s;
	return 300 + (int)(rng_next(&r->rng) % 300);	/* client-go: [5, 10) min */
}

/* A watch from r->rv, or (stream) a streamed list followed by a watch. */
static enum step watch(struct reflector *r, bool stream, int *retry_after)
{
	struct kube_watch *w = r->w;
	char base[256], path[8192], esc[256];
	struct kube_resp resp;
	int timeout = watch_timeout(r), ret;
	enum step st;

	if (base_path(r, base, sizeof(base)))
		return STEP_RETRY;
	kube_framer_reset(&r->fr);
	r->initial_done = false;
	/* Events go to r->fresh only while a streamed list is incomplete. */
	json_decref(r->fresh);
	r->fresh = stream ? json_object() : NULL;
	if (stream && !r->fresh)
		return STEP_RETRY;
	snprintf(path, sizeof(path),
		 "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d%s%s%s%s%s", base, timeout,
		 stream ? "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
			  "&resourceVersion=" : "&resourceVersion=",
		 stream ? "" : (kube_query_escape(r->rv, esc, sizeof(esc)) ?: ""),
		 r->res == KUBE_PODS && *w->field_selector ? "&fieldSelector=" : "",
		 r->res == KUBE_PODS ? w->field_selector : "", "");
	pthread_mutex_lock(&w->lock);
	w->st.watches++;
	pthread_mutex_unlock(&w->lock);
	ret = kube_stream(&r->conn, path, timeout + 30, on_stream_data, r, &resp);
	if (ret == -ECANCELED) {
		kube_resp_free(&resp);
		return STEP_STOP;
	}
	if (ret > 0) {			/* an event ended the stream */
		kube_resp_free(&resp);
		return (enum step)(ret - 1);
	}
	if (!resp.status) {		/* no answer: refused, unreachable, timed out */
		pr_info("kube: %s %s: %s: trying again", r->d->name,
			stream ? "streaming list" : "watch", resp.err);
		kube_resp_free(&resp);
		return STEP_RETRY;
	}
	if (resp.status != 200) {
		if (resp.status == 404 && r->d->crd) {
			kube_resp_free(&resp);
			return not_found(r);
		}
		if (stream && resp.status >= 400 && resp.status < 500 && resp.status != 429 &&
		    resp.status != 410) {
			pr_info("kube: %s: streaming list refused (HTTP %ld): paginated lists "
				"from now on", r->d->name, resp.status);
			r->watch_list_refused = true;
			kube_resp_free(&resp);
			return STEP_RELIST;
		}
		st = bad_status(r, stream ? "streaming list" : "watch", &resp);
		*retry_after = resp.retry_after_s;
		kube_resp_free(&resp);
		return st;
	}
	kube_resp_free(&resp);
	if (ret == -EIO) {		/* broken in the middle */
		pr_info("kube: %s %s: %s: trying again", r->d->name,
			stream && !r->initial_done ? "streaming list" : "watch", resp.err);
		return STEP_RETRY;
	}
	if (stream && !r->initial_done && ret == 0) {
		/* Ended cleanly before its initial events did: not this server's feature. */
		pr_info("kube: %s: streaming list ended before %s: paginated lists from now on",
			r->d->name, INITIAL_EVENTS_END);
		r->watch_list_refused = true;
		json_decref(r->fresh);
		r->fresh = NULL;
		return STEP_RELIST;
	}
	if (stream && !r->initial_done)
		return STEP_RETRY;	/* our clock ran out first: a new try, still streamed */
	/* Closed by the server or by our clock: watch on from where we are. */
	pr_debug("kube: %s watch ended (%s): watching again from rv %s", r->d->name,
		 ret == -ETIMEDOUT ? "client timeout" : "closed", r->rv);
	return STEP_OK;
}

/* ---- the loop --------------------------------------------------------------- */

static void mark_absent(struct reflector *r)
{
	struct kube_watch *w = r->w;
	json_t *empty = json_object();

	if (!r->absent_logged)
		pr_warn("kube: %s.%s is not served (CRD not installed?): no %ss, L4 service "
			"only for them; looking again every %d s", r->d->name, r->d->group,
			r->d->kind, w->o.absent_retry_s);
	r->absent_logged = true;
	/* Like an empty list: what was there (a CRD deleted) is gone. */
	if (empty)
		store_replace(r, empty);
	json_decref(empty);
}

static void *reflector_main(void *arg)
{
	struct reflector *r = arg;
	struct kube_watch *w = r->w;

	r->need_list = true;
	while (!w->stop) {
		int retry_after = -1;
		bool stream = r->need_list && w->o.watch_list == KUBE_WATCH_LIST_AUTO &&
			      !r->watch_list_refused;
		enum step st;
		long ms;

		if (r->need_list && !stream)
			st = list(r, &retry_after);
		else
			st = watch(r, stream, &retry_after);
		switch (st) {
		case STEP_OK:
			r->need_list = false;
			r->fails = 0;
			break;
		case STEP_RELIST:
			/* A watch (or the watch part of a streamed list) said 410. */
			if (!r->need_list || r->initial_done) {
				pthread_mutex_lock(&w->lock);
				w->st.relists++;
				pthread_mutex_unlock(&w->lock);
			}
			r->need_list = true;
			r->initial_done = false;
			/*
			 * A list whose watch is too old at once, again and again, is
			 * a server in trouble: back off as client-go's BackoffUntil.
			 */
			if (r->quick_relists++) {
				r->fails++;
				nap(w, backoff_ms(r));
			}
			break;
		case STEP_ABSENT:
			mark_absent(r);
			r->need_list = true;
			nap(w, w->o.absent_retry_s * 1000L);
			break;
		case STEP_RETRY:
			r->fails++;
			ms = retry_after > 0 ? retry_after * 1000L : backoff_ms(r);
			pthread_mutex_lock(&w->lock);
			w->st.backoffs++;
			pthread_mutex_unlock(&w->lock);
			pr_debug("kube: %s: waiting %ld ms", r->d->name, ms);
			nap(w, ms);
			break;
		case STEP_STOP:
			break;
		}
	}
	return NULL;
}

int kube_watch_start(struct kube_client *k, const struct kube_watch_opts *o,
		     struct kube_watch **out)
{
	struct kube_watch *w = calloc(1, sizeof(*w));
	int ret = 0;

	if (!w)
		return -ENOMEM;
	w->k = k;
	w->o = *o;
	if (!w->o.page_limit)
		w->o.page_limit = 500;
	if (!w->o.backoff_initial_ms)
		w->o.backoff_initial_ms = 800;
	if (!w->o.backoff_max_ms)
		w->o.backoff_max_ms = 30000;
	if (!w->o.absent_retry_s)
		w->o.absent_retry_s = 60;
	if (o->node_name) {
		char sel[400];

		snprintf(sel, sizeof(sel), "spec.nodeName=%s", o->node_name);
		if (!kube_query_escape(sel, w->field_selector, sizeof(w->field_selector))) {
			free(w);
			return -ENAMETOOLONG;
		}
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		ret = -errno;
		goto fail;
	}
	for (int i = 0; i < KUBE_RES_COUNT; i++) {
		struct reflector *r = &w->refl[i];

		w->objs[i] = json_object();
		if (!w->objs[i]) {
			ret = -ENOMEM;
			goto fail;
		}
		r->w = w;
		r->res = (enum kube_res)i;
		r->d = &descs[i];
		r->rng = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() << 16 ^
			 (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
		ret = kube_conn_init(&r->conn, k, &w->stop);
		if (ret)
			goto fail;
	}
	for (int i = 0; i < KUBE_RES_COUNT; i++) {
		ret = -pthread_create(&w->refl[i].thread, NULL, reflector_main, &w->refl[i]);
		if (ret)
			goto fail;
		w->refl[i].started = true;
	}
	*out = w;
	return 0;
fail:
	kube_watch_stop(w);
	return ret;
}

void kube_watch_stop(struct kube_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < KUBE_RES_COUNT; i++) {
		struct reflector *r = &w->refl[i];

		if (r->started)
			pthread_join(r->thread, NULL);
		kube_conn_fini(&r->conn);
		json_decref(r->fresh);
		kube_framer_free(&r->fr);
		json_decref(w->objs[i]);
	}
	for (size_t i = 0; i < w->nr_queue; i++) {
		free(w->queue[i].key);
		json_decref(w->queue[i].obj);
	}
	free(w->queue);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int kube_watch_fd(const struct kube_watch *w)
{
	return w->efd;
}

bool kube_watch_synced(const struct kube_watch *w)
{
	bool all = true;

	pthread_mutex_lock((pthread_mutex_t *)&w->lock);
	for (int i = 0; i < KUBE_RES_COUNT; i++)
		all &= w->synced[i];
	pthread_mutex_unlock((pthread_mutex_t *)&w->lock);
	return all;
}

size_t kube_watch_drain(struct kube_watch *w, void (*fn)(void *ctx, const struct kube_event *ev),
			void *ctx)
{
	struct queued *q;
	uint64_t v;
	size_t n;

	pthread_mutex_lock(&w->lock);
	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("kube: eventfd: %s", strerror(errno));
	q = w->queue;
	n = w->nr_queue;
	w->queue = NULL;
	w->nr_queue = w->cap_queue = 0;
	w->draining = n;
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		struct kube_event ev = { q[i].res, q[i].type, q[i].key, q[i].obj };

		if (fn)
			fn(ctx, &ev);
		free(q[i].key);
		json_decref(q[i].obj);
	}
	free(q);
	/* A reflector ahead of us (take_now) goes on. */
	pthread_mutex_lock(&w->lock);
	w->draining = 0;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return n;
}

int kube_watch_fill_model(struct kube_watch *w, struct model *m, struct diag *dg)
{
	json_t *snap[KUBE_RES_COUNT] = { 0 };
	int ret = 0;

	if (w->o.slim)
		return -EINVAL;	/* the objects are not kept */

	/* A shallow copy under the lock; the objects themselves never change. */
	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < KUBE_RES_COUNT; i++)
		snap[i] = json_copy(w->objs[i]);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < KUBE_RES_COUNT && !ret; i++) {
		const char *key;
		json_t *obj;

		if (!snap[i]) {
			ret = -ENOMEM;
			break;
		}
		json_object_foreach(snap[i], key, obj) {
			char name[700];

			snprintf(name, sizeof(name), "api:%s/%s", descs[i].kind, key);
			ret = kube_doc_load(m, obj, name, dg);
			if (ret)
				break;
		}
	}
	for (int i = 0; i < KUBE_RES_COUNT; i++)
		json_decref(snap[i]);
	return ret;
}

json_t *kube_watch_get(struct kube_watch *w, enum kube_res r, const char *ns, const char *name)
{
	char key[600];
	json_t *obj;

	if (descs[r].namespaced)
		snprintf(key, sizeof(key), "%s/%s", ns, name);
	else
		snprintf(key, sizeof(key), "%s", name);
	pthread_mutex_lock(&w->lock);
	obj = json_incref(json_object_get(w->objs[r], key));
	pthread_mutex_unlock(&w->lock);
	if (is_slim_route(obj)) {
		json_t *route = json_loads(json_string_value(json_object_get(obj, "route")), 0,
					   NULL);

		json_decref(obj);
		return route;
	}
	return obj;
}

size_t kube_watch_count(struct kube_watch *w, enum kube_res r)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = json_object_size(w->objs[r]);
	pthread_mutex_unlock(&w->lock);
	return n;
}

void kube_watch_get_stats(struct kube_watch *w, struct kube_watch_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->st;
	pthread_mutex_unlock(&w->lock);
}
