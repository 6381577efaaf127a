/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The objects gammad reads from the API server, kept current the way
 * client-go's reflector keeps an informer's store, one thread per resource:
 *
 *   LIST     paginated (limit/continue); an expired continue token (410)
 *            starts the list over. The list replaces the store: what is
 *            gone was deleted while we were away and becomes a delete event.
 *   WATCH    from the list's resourceVersion, allowWatchBookmarks, a
 *            server timeoutSeconds (random in [5, 10) min unless set) and
 *            a client timeout 30 s later; events are back-to-back JSON
 *            values framed whatever the chunk boundaries. A watch the
 *            server ends is started again from the last resourceVersion
 *            seen (bookmarks move it); an ERROR event or HTTP 410 (too old)
 *            lists again.
 *   STREAM   with watch_list, the list itself is a watch with
 *            sendInitialEvents=true, complete at the BOOKMARK annotated
 *            k8s.io/initial-events-end; a server that refuses it (4xx) or
 *            ends it early gets paginated lists from then on.
 *   BACKOFF  429 and 5xx wait Retry-After when given; otherwise, and on
 *            transport errors, capped exponential backoff with jitter
 *            (800 ms doubling to 30 s, +-50%), reset by a success.
 *
 * A Gateway API resource whose CRD is not installed (404 on every served
 * version) is logged once and looked for again every absent_retry_s: routes
 * are then simply absent (L4 only), without a retry storm.
 *
 * Nothing is ever dropped because the API server is unreachable: the store
 * keeps the last state until a list says otherwise.
 *
 * Pods are only this node's (fieldSelector spec.nodeName) unless
 * node_name is NULL.
 */
#ifndef GAMMAD_KUBE_WATCH_H
#define GAMMAD_KUBE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "input/model.h"
#include "kube_client.h"

enum kube_res {
	KUBE_NAMESPACES,
	KUBE_SERVICES,
	KUBE_SLICES,
	KUBE_PODS,
	KUBE_HTTPROUTES,
	KUBE_GRPCROUTES,
	KUBE_TCPROUTES,
	KUBE_GRANTS,
	KUBE_RES_COUNT,
};

struct kube_watch;

/* "services", "httproutes", ... */
const char *kube_res_name(enum kube_res r);
/* The Gateway API kind of a route resource, -1 for others. */
int kube_res_route_kind(enum kube_res r);
/* The resource of a route kind. */
enum kube_res kube_route_res(enum gapi_route_kind kind);
/* "/apis/gateway.networking.k8s.io/v1/namespaces/NS/httproutes/NAME" for the version in use. */
int kube_res_object_path(const struct kube_watch *w, enum kube_res r, const char *ns,
			 const char *name, char *buf, size_t len);

enum kube_watch_list_mode {
	KUBE_WATCH_LIST_AUTO,	/* try it, fall back to LIST when refused */
	KUBE_WATCH_LIST_OFF,
};

struct kube_watch_opts {
	const char *node_name;	/* Pods of this node only; NULL: every Pod */
	int page_limit;		/* LIST page size; 0: 500 */
	int watch_timeout_s;	/* timeoutSeconds of a watch; 0: random 300..599 */
	int backoff_initial_ms;	/* 0: 800 */
	int backoff_max_ms;	/* 0: 30000 */
	int absent_retry_s;	/* 0: 60 */
	enum kube_watch_list_mode watch_list;
	/*
	 * The store keeps of routes what the status writer reads back
	 * (kube_watch_get(): apiVersion, kind, name, namespace, uid,
	 * resourceVersion, spec.parentRefs, status) and what tells a status
	 * write from a change (generation, labels, annotations, a hash of the
	 * spec); of the others only their resourceVersion, which is all a
	 * relist compares. For a caller that keeps what it needs from the
	 * events' objects (the incremental pipeline): kube_watch_fill_model()
	 * is refused then, and a delete event's object is only what the store
	 * kept (not the object). A
	 * list's objects are then stored (and their events queued) page by
	 * page as they arrive, not when the list is complete: the caller
	 * parses them while the list goes on (and must drain meanwhile: a
	 * reflector 1,024 events ahead of the drains waits for one); the
	 * deletes come at its end.
	 */
	bool slim;
};

enum kube_event_type {
	KUBE_EV_PUT,		/* added or changed: obj is the new object */
	KUBE_EV_DELETE,		/* obj is the last state known */
};

struct kube_event {
	enum kube_res res;
	enum kube_event_type type;
	const char *key;	/* "ns/name", or "name" for Namespaces */
	const json_t *obj;
};

/*
 * kev as a model event for the incremental pipeline (kube_doc_event()):
 * the names ev points to live in buf (KUBE_EVENT_BUF bytes). 0 or -ENOMEM.
 */
#define KUBE_EVENT_BUF (MODEL_KEY_MAX + 80)
int kube_event_model(const struct kube_event *kev, struct model_event *ev, char *buf,
		     struct diag *dg);

struct kube_watch_stats {
	uint64_t lists, pages, relists, expired_continues, watches, events, bookmarks,
		 watch_errors, backoffs, retry_afters, stream_lists;
};

/* Start one reflector thread per resource. k must outlive w. */
int kube_watch_start(struct kube_client *k, const struct kube_watch_opts *o,
		     struct kube_watch **out);
/* Stop the threads (within a second) and free everything. */
void kube_watch_stop(struct kube_watch *w);

/* Readable (an eventfd) while events wait for kube_watch_drain(). */
int kube_watch_fd(const struct kube_watch *w);
/* Every resource was listed once (or found absent): the model is whole. */
bool kube_watch_synced(const struct kube_watch *w);
/* Hand the waiting events to fn in their order; returns how many. */
size_t kube_watch_drain(struct kube_watch *w, void (*fn)(void *ctx, const struct kube_event *ev),
			void *ctx);
/*
 * Every object of the store into m (input's parsers; what they reject is
 * in dg). Returns 0, -ENOMEM, or -EINVAL for a slim store.
 */
int kube_watch_fill_model(struct kube_watch *w, struct model *m, struct diag *dg);
/*
 * A reference to the stored object (json_decref it), or NULL. Of a slim
 * store's route only what the status writer reads (see slim above).
 */
json_t *kube_watch_get(struct kube_watch *w, enum kube_res r, const char *ns, const char *name);
/* Objects stored now, per resource and in all. */
size_t kube_watch_count(struct kube_watch *w, enum kube_res r);
void kube_watch_get_stats(struct kube_watch *w, struct kube_watch_stats *out);

/*
 * Back-to-back JSON values (a watch's events) from bytes cut anywhere: feed
 * the pieces as they come, fn gets each whole value (borrowed). Returns 0,
 * fn's non-zero return, -EINVAL on bytes that are no JSON (err says why),
 * -ENOMEM.
 */
struct kube_framer {
	char *buf;
	size_t len, cap;
	bool pending;		/* the front value is cut short */
	char err[160];
};

int kube_framer_feed(struct kube_framer *f, const char *data, size_t n,
		     int (*fn)(void *ctx, json_t *v), void *ctx);
void kube_framer_reset(struct kube_framer *f);
void kube_framer_free(struct kube_framer *f);

#endif
