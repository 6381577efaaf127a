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
	snprintf(buf, MODEL_KEY_MAX, "%s/%s", ns ? ns : "", name ? name : "");
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
