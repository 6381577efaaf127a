// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
}

const char *model_key(char *buf, const char *ns, const char *name)
{
	size_t a = ns ? strlen(ns) : 0, b = name ? strlen(name) : 0;

	/* Hot in every load and lookup: copied, not formatted; cut like snprintf. */
	if (a > MODEL_KEY_MAX - 2)
		a = MODEL_KEY_MAX - 2;
	if (a + 1 + b > MODEL_KEY_MAX - 1)
		b = MODEL_KEY_MAX - 2 - a;
	memcpy(buf, ns ? ns : "", a);
	buf[a] = '/';
	memcpy(buf + a + 1, name ? name : "", b);
	buf[a + 1 + b] = 0;
	return buf;
}

static int set_append(struct model_set *s, void *item)
{
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void **items = realloc(s->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		s->items = items;
		s->cap = cap;
	}
	s->items[s->nr++] = item;
	return 0;
}

/*
 * Index then append; on a duplicate report it against the newcomer's
 * location, naming the first one's. The caller frees what was not taken.
 */
static int set_add(struct model_set *s, const char *kind, const struct k8s_meta *meta,
		   void *item, struct diag *dg)
{
	char key[MODEL_KEY_MAX];
	void *old = NULL;
	int ret;

	model_key(key, meta->namespace, meta->name);
	ret = strmap_put(&s->by_name, key, item, &old);
	if (ret == -EEXIST) {
		const struct k8s_meta *first = old;	/* meta is every object's first member */

		diag_report(dg, LOG_ERROR, meta->loc.file, meta->loc.line, "metadata.name",
			    "duplicate %s %s (first defined at %s:%d), ignored", kind, key,
			    first->loc.file ? first->loc.file : "?", first->loc.line);
		return ret;
	}
	if (ret)
		return ret;
	return set_append(s, item);
}

#define DEFINE_ADD(fn, type, field, kind, free_fn)				\
int fn(struct model *m, type *o, struct diag *dg)				\
{										\
	int ret = set_add(&m->field, kind, &o->meta, o, dg);			\
										\
	if (ret) {								\
		free_fn(o);							\
		free(o);							\
	}									\
	return ret;								\
}

DEFINE_ADD(model_add_namespace, struct k8s_namespace, namespaces, "Namespace",
	   k8s_namespace_free)
DEFINE_ADD(model_add_service, struct k8s_service, services, "Service", k8s_service_free)
DEFINE_ADD(model_add_pod, struct k8s_pod, pods, "Pod", k8s_pod_free)
DEFINE_ADD(model_add_deployment, struct k8s_deployment, deployments, "Deployment",
	   k8s_deployment_free)
DEFINE_ADD(model_add_grant, struct gapi_reference_grant, grants, "ReferenceGrant",
	   gapi_reference_grant_free)

int model_add_route(struct model *m, struct gapi_route *o, struct diag *dg)
{
	int ret = set_add(&m->routes[o->kind], gapi_kind_name(o->kind), &o->meta, o, dg);

	if (ret) {
		gapi_route_free(o);
		free(o);
	}
	return ret;
}

static int index_slice(struct model *m, struct k8s_endpoint_slice *o)
{
	char key[MODEL_KEY_MAX];
	struct model_slices *list;
	int ret;

	model_key(key, o->meta.namespace, o->service_name);
	list = strmap_get(&m->slices_by_service, key);
	if (!list) {
		list = calloc(1, sizeof(*list));
		if (!list)
			return -ENOMEM;
		ret = strmap_put(&m->slices_by_service, key, list, NULL);
		if (ret) {
			free(list);
			return ret;
		}
	}
	if (list->nr == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 2;
		void *items = realloc(list->items, cap * sizeof(*list->items));

		if (!items)
			return -ENOMEM;
		list->items = items;
		list->cap = cap;
	}
	list->items[list->nr++] = o;
	return 0;
}

int model_add_endpoint_slice(struct model *m, struct k8s_endpoint_slice *o, struct diag *dg)
{
	int ret = set_add(&m->slices, "EndpointSlice", &o->meta, o, dg);

	if (ret) {
		k8s_endpoint_slice_free(o);
		free(o);
		return ret;
	}
	/* A slice without its service label belongs to no Service. */
	return o->service_name ? index_slice(m, o) : 0;
}

static void set_free(struct model_set *s, void (*free_fn)(void *))
{
	for (size_t i = 0; i < s->nr; i++) {
		free_fn(s->items[i]);
		free(s->items[i]);
	}
	free(s->items);
	strmap_free(&s->by_name);
}

/* Typed destructors behind a void * signature (no function-pointer casts). */
#define DEFINE_FREE_VOID(name, type, fn)	\
static void name(void *o)			\
{						\
	fn((type *)o);				\
}

DEFINE_FREE_VOID(namespace_free_void, struct k8s_namespace, k8s_namespace_free)
DEFINE_FREE_VOID(service_free_void, struct k8s_service, k8s_service_free)
DEFINE_FREE_VOID(pod_free_void, struct k8s_pod, k8s_pod_free)
DEFINE_FREE_VOID(deployment_free_void, struct k8s_deployment, k8s_deployment_free)
DEFINE_FREE_VOID(slice_free_void, struct k8s_endpoint_slice, k8s_endpoint_slice_free)
DEFINE_FREE_VOID(route_free_void, struct gapi_route, gapi_route_free)
DEFINE_FREE_VOID(grant_free_void, struct gapi_reference_grant, gapi_reference_grant_free)

void model_free(struct model *m)
{
	struct strmap_slot *slot;

	set_free(&m->namespaces, namespace_free_void);
	set_free(&m->services, service_free_void);
	set_free(&m->pods, pod_free_void);
	set_free(&m->deployments, deployment_free_void);
	set_free(&m->slices, slice_free_void);
	for (int k = 0; k < ROUTE_KIND_COUNT; k++)
		set_free(&m->routes[k], route_free_void);
	set_free(&m->grants, grant_free_void);
	strmap_for_each(&m->slices_by_service, slot) {
		struct model_slices *list = slot->value;

		free(list->items);
		free(list);
	}
	strmap_free(&m->slices_by_service);
	memset(m, 0, sizeof(*m));
}

static void *set_get(const struct model_set *s, const char *ns, const char *name)
{
	char key[MODEL_KEY_MAX];

	return strmap_get(&s->by_name, model_key(key, ns, name));
}

const struct k8s_namespace *model_namespace(const struct model *m, const char *name)
{
	return set_get(&m->namespaces, NULL, name);
}

const struct k8s_service *model_service(const struct model *m, const char *ns,
					const char *name)
{
	return set_get(&m->services, ns, name);
}

const struct gapi_route *model_route(const struct model *m, enum gapi_route_kind kind,
				     const char *ns, const char *name)
{
	return set_get(&m->routes[kind], ns, name);
}

const struct model_slices *model_service_slices(const struct model *m, const char *ns,
						const char *name)
{
	char key[MODEL_KEY_MAX];

	return strmap_get(&m->slices_by_service, model_key(key, ns, name));
}

/* ---- object events -------------------------------------------------------- */

static struct model_set *event_set(struct model *m, enum model_kind kind,
				   enum gapi_route_kind route_kind)
{
	switch (kind) {
	case MODEL_NAMESPACE: return &m->namespaces;
	case MODEL_SERVICE: return &m->services;
	case MODEL_POD: return &m->pods;
	case MODEL_DEPLOYMENT: return &m->deployments;
	case MODEL_ENDPOINT_SLICE: return &m->slices;
	case MODEL_ROUTE:
		return (unsigned int)route_kind < ROUTE_KIND_COUNT ? &m->routes[route_kind] : NULL;
	case MODEL_GRANT: return &m->grants;
	default: return NULL;
	}
}

static void free_object(enum model_kind kind, void *o)
{
	switch (kind) {
	case MODEL_NAMESPACE: k8s_namespace_free(o); break;
	case MODEL_SERVICE: k8s_service_free(o); break;
	case MODEL_POD: k8s_pod_free(o); break;
	case MODEL_DEPLOYMENT: k8s_deployment_free(o); break;
	case MODEL_ENDPOINT_SLICE: k8s_endpoint_slice_free(o); break;
	case MODEL_ROUTE: gapi_route_free(o); break;
	case MODEL_GRANT: gapi_reference_grant_free(o); break;
	default: return;
	}
	free(o);
}

const void *model_find(const struct model *m, enum model_kind kind,
		       enum gapi_route_kind route_kind, const char *ns, const char *name)
{
	struct model_set *s = event_set((struct model *)m, kind, route_kind);

	return s ? set_get(s, kind == MODEL_NAMESPACE ? NULL : ns, name) : NULL;
}

/* Take a slice out of its Service's list (the list stays, maybe empty). */
static void unindex_slice(struct model *m, const struct k8s_endpoint_slice *o)
{
	char key[MODEL_KEY_MAX];
	struct model_slices *list;

	if (!o->service_name)
		return;
	list = strmap_get(&m->slices_by_service, model_key(key, o->meta.namespace,
							       o->service_name));
	for (size_t i = 0; list && i < list->nr; i++)
		if (list->items[i] == o) {
			memmove(&list->items[i], &list->items[i + 1],
				(list->nr - i - 1) * sizeof(list->items[0]));
			list->nr--;
			return;
		}
}

static long set_index(const struct model_set *s, const void *item)
{
	for (size_t i = 0; i < s->nr; i++)
		if (s->items[i] == item)
			return (long)i;
	return -1;
}

/* What an event replaced or deleted: freed, or to the model's retire hook. */
static void retire_object(struct model *m, enum model_kind kind, void *o)
{
	if (m->retire)
		m->retire(m->retire_ctx, (int)kind, o);
	else
		free_object(kind, o);
}

static int event_put(struct model *m, struct model_set *s, enum model_kind kind, void *obj,
		     struct diag *dg)
{
	const struct k8s_meta *meta = obj;	/* meta is every object's first member */
	char key[MODEL_KEY_MAX];
	void *old;
	long at;
	int ret;

	model_key(key, meta->namespace, meta->name);
	old = strmap_get(&s->by_name, key);
	if (!old) {
		ret = set_add(s, "object", meta, obj, dg);
		if (!ret && kind == MODEL_ENDPOINT_SLICE && ((struct k8s_endpoint_slice *)obj)->service_name) {
			ret = index_slice(m, obj);
			if (ret) {	/* undo: the model stays as it was */
				strmap_del(&s->by_name, key);
				s->nr--;
			}
		}
		if (ret)
			free_object(kind, obj);
		return ret;
	}
	/* In place: the newer object takes the older one's load position. */
	at = set_index(s, old);
	if (kind == MODEL_ENDPOINT_SLICE && ((struct k8s_endpoint_slice *)obj)->service_name) {
		/* Grow the new Service's list before anything changes. */
		ret = index_slice(m, obj);
		if (ret) {
			free_object(kind, obj);
			return ret;
		}
	}
	if (kind == MODEL_ENDPOINT_SLICE)
		unindex_slice(m, old);
	strmap_set(&s->by_name, key, obj);
	s->items[at] = obj;
	retire_object(m, kind, old);
	return 0;
}

int model_apply_event(struct model *m, const struct model_event *ev, struct diag *dg)
{
	enum gapi_route_kind rk = ev->route_kind;
	char key[MODEL_KEY_MAX];
	struct model_set *s;
	void *old;
	long at;

	if (ev->op == MODEL_PUT) {
		if (!ev->obj)
			return -EINVAL;
		if (ev->kind == MODEL_ROUTE)
			rk = ((const struct gapi_route *)ev->obj)->kind;
		s = event_set(m, ev->kind, rk);
		if (!s || !((const struct k8s_meta *)ev->obj)->name) {
			if (s || (ev->kind >= 0 && ev->kind < MODEL_KIND_COUNT))
				free_object(ev->kind, ev->obj);
			return -EINVAL;
		}
		return event_put(m, s, ev->kind, ev->obj, dg);
	}
	s = event_set(m, ev->kind, rk);
	if (!s || !ev->name)
		return -EINVAL;
	model_key(key, ev->kind == MODEL_NAMESPACE ? NULL : ev->namespace, ev->name);
	old = strmap_del(&s->by_name, key);
	if (!old)
		return -ENOENT;
	at = set_index(s, old);
	memmove(&s->items[at], &s->items[at + 1], (s->nr - (size_t)at - 1) * sizeof(s->items[0]));
	s->nr--;
	if (ev->kind == MODEL_ENDPOINT_SLICE)
		unindex_slice(m, old);
	retire_object(m, ev->kind, old);
	return 0;
}

/* ---- views ----------------------------------------------------------------- */

int model_view_add(struct model *view, enum model_kind kind, void *obj)
{
	const struct k8s_meta *meta = obj;
	enum gapi_route_kind rk = kind == MODEL_ROUTE ? ((struct gapi_route *)obj)->kind : 0;
	struct model_set *s = event_set(view, kind, rk);
	char key[MODEL_KEY_MAX];
	int ret;

	if (!s)
		return -EINVAL;
	ret = strmap_put(&s->by_name, model_key(key, meta->namespace, meta->name), obj, NULL);
	if (ret)
		return ret == -EEXIST ? 0 : ret;
	ret = set_append(s, obj);
	if (!ret && kind == MODEL_ENDPOINT_SLICE && ((struct k8s_endpoint_slice *)obj)->service_name)
		ret = index_slice(view, obj);
	return ret;
}

void model_view_free(struct model *view)
{
	struct strmap_slot *slot;
	struct model_set *sets[] = { &view->namespaces, &view->services, &view->pods,
				     &view->deployments, &view->slices, &view->grants };

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		free(sets[i]->items);
		strmap_free(&sets[i]->by_name);
	}
	for (int k = 0; k < ROUTE_KIND_COUNT; k++) {
		free(view->routes[k].items);
		strmap_free(&view->routes[k].by_name);
	}
	strmap_for_each(&view->slices_by_service, slot) {
		struct model_slices *list = slot->value;

		free(list->items);
		free(list);
	}
	strmap_free(&view->slices_by_service);
	memset(view, 0, sizeof(*view));
}

/* ---- a model as events ------------------------------------------------------ */

int model_take_events(struct model *m, struct model_event **evs, size_t *nr)
{
	struct model_set *sets[MODEL_KIND_COUNT + ROUTE_KIND_COUNT];
	enum model_kind kinds[MODEL_KIND_COUNT + ROUTE_KIND_COUNT];
	struct model_event *out;
	size_t n = 0, total = 0, k = 0;

	for (int kind = 0; kind < MODEL_KIND_COUNT; kind++) {
		if (kind == MODEL_ROUTE) {
			for (int r = 0; r < ROUTE_KIND_COUNT; r++) {
				sets[n] = &m->routes[r];
				kinds[n++] = MODEL_ROUTE;
			}
			continue;
		}
		sets[n] = event_set(m, kind, 0);
		kinds[n++] = kind;
	}
	for (size_t i = 0; i < n; i++)
		total += sets[i]->nr;
	out = total ? calloc(total, sizeof(*out)) : NULL;
	if (total && !out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < sets[i]->nr; j++) {
			out[k] = (struct model_event){ .op = MODEL_PUT, .kind = kinds[i],
						       .obj = sets[i]->items[j] };
			if (kinds[i] == MODEL_ROUTE)
				out[k].route_kind = ((struct gapi_route *)out[k].obj)->kind;
			k++;
		}
		sets[i]->nr = 0;	/* the events own them now */
	}
	model_free(m);
	*evs = out;
	*nr = total;
	return 0;
}

void model_object_free(enum model_kind kind, void *obj)
{
	if (obj)
		free_object(kind, obj);
}

void model_events_free(struct model_event *evs, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (evs[i].op == MODEL_PUT && evs[i].obj)
			free_object(evs[i].kind, evs[i].obj);
	free(evs);
}
