/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object store: every object loaded from manifests, owned here and
 * indexed by namespace/name. Objects are kept in load order; a second object
 * with the same kind and namespace/name is reported (with where the first
 * one was) and dropped, so the first definition wins.
 *
 * EndpointSlices are also indexed by the Service they belong to (label
 * kubernetes.io/service-name), which is how the translator finds endpoints.
 */
#ifndef GAMMAD_MODEL_H
#define GAMMAD_MODEL_H

#include "base/hashmap.h"
#include "gapi.h"
#include "k8s.h"

/* A growable array of owned object pointers with a namespace/name index. */
struct model_set {
	void **items;
	size_t nr, cap;
	struct strmap by_name;	/* "ns/name" (or "name") -> item */
};

struct model_slices {
	struct k8s_endpoint_slice **items;
	size_t nr, cap;
};

struct model {
	struct model_set namespaces;	/* struct k8s_namespace */
	struct model_set services;	/* struct k8s_service */
	struct model_set pods;		/* struct k8s_pod */
	struct model_set deployments;	/* struct k8s_deployment */
	struct model_set slices;	/* struct k8s_endpoint_slice */
	struct model_set routes[ROUTE_KIND_COUNT];	/* struct gapi_route */
	struct model_set grants;	/* struct gapi_reference_grant */
	struct strmap slices_by_service;	/* "ns/svc" -> struct model_slices */
	/*
	 * NULL: model_apply_event() frees what it replaces or deletes. Set:
	 * it hands the object (its enum model_kind, the object) to retire,
	 * which frees it later with model_object_free(): translations made
	 * before may still point into it (image/pipeline.h).
	 */
	void (*retire)(void *ctx, int kind, void *obj);
	void *retire_ctx;
};

/* Longest "namespace/name" key plus its terminator. */
#define MODEL_KEY_MAX (2 * K8S_NAME_MAX + 2)

void model_init(struct model *m);
void model_free(struct model *m);

/*
 * Take ownership of a parsed object (heap-allocated). Returns 0, -EEXIST
 * after reporting a duplicate (the object is freed), or -ENOMEM (freed too).
 */
int model_add_namespace(struct model *m, struct k8s_namespace *o, struct diag *dg);
int model_add_service(struct model *m, struct k8s_service *o, struct diag *dg);
int model_add_pod(struct model *m, struct k8s_pod *o, struct diag *dg);
int model_add_deployment(struct model *m, struct k8s_deployment *o, struct diag *dg);
int model_add_endpoint_slice(struct model *m, struct k8s_endpoint_slice *o, struct diag *dg);
int model_add_route(struct model *m, struct gapi_route *o, struct diag *dg);
int model_add_grant(struct model *m, struct gapi_reference_grant *o, struct diag *dg);

const struct k8s_namespace *model_namespace(const struct model *m, const char *name);
const struct k8s_service *model_service(const struct model *m, const char *ns,
					const char *name);
const struct gapi_route *model_route(const struct model *m, enum gapi_route_kind kind,
				     const char *ns, const char *name);
/* EndpointSlices of a Service, or NULL when it has none. */
const struct model_slices *model_service_slices(const struct model *m, const char *ns,
						const char *name);

/*
 * One object change, as a Kubernetes watch delivers it (ADDED and MODIFIED
 * are both MODEL_PUT) or as a changed manifest file gives it.
 */
enum model_kind {
	MODEL_NAMESPACE, MODEL_SERVICE, MODEL_POD, MODEL_DEPLOYMENT, MODEL_ENDPOINT_SLICE,
	MODEL_ROUTE, MODEL_GRANT, MODEL_KIND_COUNT,
};

enum model_op { MODEL_PUT, MODEL_DELETE };

struct model_event {
	enum model_op op;
	enum model_kind kind;
	enum gapi_route_kind route_kind;	/* MODEL_ROUTE (PUT: taken from obj) */
	/* MODEL_DELETE: which object (namespace NULL for a Namespace); PUT: from obj */
	const char *namespace, *name;
	/*
	 * MODEL_PUT: a heap object as its parser fills it (struct k8s_service
	 * for MODEL_SERVICE, struct gapi_route for MODEL_ROUTE, ...). The model
	 * owns it from the call on, also when the call fails.
	 */
	void *obj;
};

/*
 * Apply one event: PUT adds the object or replaces the one of the same kind
 * and namespace/name (freed; unlike loading, the newer one wins), DELETE
 * removes and frees it. Pointers into a replaced or deleted object are
 * invalid afterwards (a translation of the model included). Returns 0,
 * -ENOENT (DELETE of an object the model does not have), -EINVAL or
 * -ENOMEM (the model is unchanged then).
 */
int model_apply_event(struct model *m, const struct model_event *ev, struct diag *dg);
/* The object of kind at namespace/name (route_kind for MODEL_ROUTE), or NULL. */
const void *model_find(const struct model *m, enum model_kind kind,
		       enum gapi_route_kind route_kind, const char *ns, const char *name);

/*
 * Move every object of m out as MODEL_PUT events, kind by kind (the order
 * of enum model_kind) and in load order within a kind; m is left empty.
 * *evs is malloc'd (NULL when none); each event owns its object.
 */
int model_take_events(struct model *m, struct model_event **evs, size_t *nr);
/* Free an object of kind as its parser made it (the struct too). */
void model_object_free(enum model_kind kind, void *obj);
/* Free events that were not applied (their objects). */
void model_events_free(struct model_event *evs, size_t nr);

/*
 * A view: a model that holds objects another model owns (a part of it, to
 * translate only that part). model_view_add() adds one (an object already
 * there is skipped: 0); model_view_free() frees the indexes, not the
 * objects. Never model_free() a view.
 */
int model_view_add(struct model *view, enum model_kind kind, void *obj);
void model_view_free(struct model *view);

/* "ns/name" into buf (MODEL_KEY_MAX bytes). */
const char *model_key(char *buf, const char *ns, const char *name);

#endif
