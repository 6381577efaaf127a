/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by translate*.c and status.c; not a public API. */
#ifndef GAMMAD_TRANSLATE_INT_H
#define GAMMAD_TRANSLATE_INT_H

#include "translate.h"

/* Where one parentRef ended up. */
struct tr_parent_state {
	const char *reject_reason;	/* Accepted=False reason from binding, or NULL */
	char *reject_message;
	size_t nr_bound;		/* Service ports it binds */
	size_t nr_in_effect;		/* ... where its rules are in a table */
	size_t nr_conflicted;		/* ... lost to a route kind of higher rank */
	size_t nr_over_limit;		/* ... dropped because the table was full */
	bool not_ours;			/* a Gateway parent: another controller's */
};

/* Everything known about one route after rules and parentRefs are processed. */
struct tr_route_info {
	const struct gapi_route *route;
	struct tr_rule *rules;
	size_t nr_valid_rules;
	const char *refs_reason;	/* ResolvedRefs=False reason, or NULL */
	char *refs_message;
	struct tr_parent_state *parents;
};

enum tr_binding_result { BINDING_IN_EFFECT, BINDING_CONFLICTED, BINDING_OVER_LIMIT };

/* A route bound to a Service port through one of its parentRefs. */
struct tr_binding {
	struct tr_route_info *info;
	size_t parent;			/* index in route->parents */
	size_t port;			/* index in result->ports */
	const char *class_ns;		/* NULL: producer route */
	enum tr_binding_result result;
};

struct tr_ctx {
	const struct model *m;
	struct tr_opts opts;		/* max_endpoints filled in */
	struct diag *dg;
	struct tr_result *res;
	struct tr_route_info *infos;	/* in the order of res->routes */
	size_t nr_infos;
	struct tr_binding *bindings;
	size_t nr_bindings, cap_bindings;
};

/* translate_backend.c */
const struct tr_endpoint_set *tr_endpoint_set_get(struct tr_ctx *c,
						  const struct k8s_service *svc,
						  const struct k8s_service_port *port);
const struct k8s_service_port *tr_service_port_by_number(const struct k8s_service *svc,
							 uint16_t port);
/* Resolve a backendRef; when it does not resolve, set reason and an allocated message. */
int tr_resolve_backend(struct tr_ctx *c, const struct gapi_backend_ref *ref,
		       struct tr_backend *out, const char **reason, char **message);

/* translate_rule.c */
int tr_build_rules(struct tr_ctx *c, struct tr_route_info *info);
void tr_rules_free(struct tr_rule *rules, size_t nr);
bool tr_match_is_catch_all(const struct gapi_match *m);

/* translate_bind.c */
int tr_bind_parents(struct tr_ctx *c, struct tr_route_info *info);

/* translate_order.c */
int tr_route_cmp(const struct gapi_route *a, const struct gapi_route *b);
void tr_sort_entries(struct tr_entry *e, size_t nr, enum gapi_route_kind kind);

/* translate_class.c */
int tr_build_classes(struct tr_ctx *c);
int tr_build_l4(struct tr_class *cls);

/* status.c */
int tr_build_statuses(struct tr_ctx *c);

/* printf into a new string; NULL on allocation failure. */
char *tr_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
