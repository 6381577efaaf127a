/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GAMMA translation: model -> the effective routing table of every Service
 * port for every class of client, and the status of every route.
 *
 * The rules, as GEP-1294 and the Gateway API mesh docs state them:
 *  - A route binds to a Service through a parentRef {group: "", kind:
 *    Service}; `port` binds one Service port, `sectionName` the named port,
 *    neither all ports (only TCP ports: the route kinds are all TCP-based).
 *  - Producer routes (in the Service's namespace) apply to all clients;
 *    consumer routes (in another namespace) apply only to clients in their
 *    own namespace and, for them, replace the producer routes of that port.
 *    So a port has a default class and one class per consumer namespace.
 *  - Within a class, kinds rank GRPCRoute > HTTPRoute > TLSRoute > TCPRoute;
 *    routes of a losing kind are not Accepted on that port (Conflicted).
 *  - The rules of all winning routes of a class form one table, one entry
 *    per match, ordered by the HTTPRoute (or GRPCRoute) precedence rules.
 *  - A backendRef resolves to the endpoints of the Service port it names,
 *    never through that Service's own routes.
 *  - A port without routes behaves like plain Kubernetes: its own endpoints.
 *
 * The result points into the model; keep the model alive while using it.
 */
#ifndef GAMMAD_TRANSLATE_H
#define GAMMAD_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "input/model.h"

/* Translation limits; exceeding one is a diagnostic or a route condition. */
#define TR_MAX_SERVICES 65536
#define TR_MAX_ENDPOINTS 16384		/* per Service port, default of tr_opts */
#define TR_MAX_ENTRIES 1024		/* table entries per Service port and class */
#define TR_MAX_CLASSES 256		/* consumer namespaces per Service port */

#define TR_CONTROLLER_NAME "gammad.io/mesh"

enum tr_backend_state {
	TR_BACKEND_OK,
	TR_BACKEND_UNRESOLVED,		/* HTTP 500 for its share; ECONNREFUSED at L4 */
	TR_BACKEND_NO_ENDPOINTS,	/* HTTP 503 for its share; ECONNREFUSED at L4 */
};

/*
 * Where the translation runs: which endpoints of a Service port a client on
 * this node uses depends on the node (internalTrafficPolicy: Local,
 * PreferSameNode) and its zone (PreferClose, PreferSameZone).
 */
struct tr_opts {
	const char *node_name;		/* NULL: every endpoint is on this node */
	const char *zone;		/* NULL: this node's zone is unknown */
	uint32_t max_endpoints;		/* per Service port; 0: TR_MAX_ENDPOINTS */
};

/*
 * The policy in force for one Service port's endpoint set: which rule chose
 * the endpoints (kube-proxy's, see translate_backend.c). Bits 8-15 are left
 * for load-balancing settings of the Service (session affinity).
 */
#define TR_EP_LOCAL (1u << 0)		/* internalTrafficPolicy Local: this node's only */
#define TR_EP_ZONE (1u << 1)		/* trafficDistribution: this zone's only */
#define TR_EP_NODE (1u << 2)		/* PreferSameNode: this node's only */
#define TR_EP_TERMINATING (1u << 3)	/* no ready endpoint: serving+terminating ones */
#define TR_EP_TOPOLOGY_ALL (1u << 4)	/* trafficDistribution set, none close: all */

struct tr_endpoint {
	struct ip_addr addr;
	uint16_t port;
	const char *target_name;	/* pod name from targetRef, may be NULL */
	const char *node_name;		/* may be NULL */
};

/* Ready endpoints of one Service port, sorted by (family, address, port). */
struct tr_endpoint_set {
	const struct k8s_service *svc;
	const struct k8s_service_port *port;
	struct tr_endpoint *items;
	size_t nr;
	bool truncated;			/* more than max_endpoints were chosen */
	unsigned int policy;		/* TR_EP_* */
	size_t nr_candidates;		/* endpoints the slices hold for this port */
};

struct tr_backend {
	const struct gapi_backend_ref *ref;	/* NULL: a port's own endpoints */
	const char *namespace, *name;
	uint16_t port;
	uint32_t weight;
	enum tr_backend_state state;
	const struct tr_endpoint_set *endpoints;	/* NULL when unresolved */
	/*
	 * The backend Service's sessionAffinity ClientIP timeout in seconds
	 * (0: None). It holds wherever the Service is a backend: on its own
	 * ports and as a route's backendRef alike.
	 */
	uint32_t affinity_timeout;
};

/* A rule of a route, validated and with its backends resolved. */
struct tr_rule {
	const struct gapi_route *route;
	const struct gapi_rule *rule;
	size_t index;				/* in route->rules */
	bool valid;
	const char *invalid_reason;		/* status reason when !valid */
	char *invalid_message;
	struct tr_backend *backends;
	size_t nr_backends;
	uint64_t total_weight;
	const struct gapi_filter *redirect;	/* RequestRedirect, or NULL */
	const struct gapi_filter *rewrite;	/* URLRewrite, or NULL */
	bool userspace_only;			/* regex matches: no kernel matcher */
};

/* One row of an effective table: a rule under one of its matches. */
struct tr_entry {
	const struct tr_rule *rule;
	const struct gapi_match *match;		/* NULL: matches every request */
	size_t match_index;
};

/* L4 selector flags. */
#define TR_L4_L7_UNENFORCED (1u << 0)	/* union of rules that differ by L7 matches */
#define TR_L4_NO_ROUTE (1u << 1)	/* plain Kubernetes: the port's own endpoints */
#define TR_L4_SCALED (1u << 2)		/* union weights scaled to the kernel's 32-bit total */

struct tr_l4_item {
	const struct tr_backend *backend;
	uint64_t weight;
};

/* What a connection gets when only L4 is enforced. */
struct tr_l4 {
	struct tr_l4_item *items;
	size_t nr;
	uint64_t total_weight;
	unsigned int flags;
};

struct tr_class {
	const char *client_namespace;	/* NULL: all clients without a class of their own */
	enum gapi_route_kind kind;	/* ROUTE_KIND_COUNT: no route */
	struct tr_entry *entries;
	size_t nr_entries;
	bool needs_l7;			/* entries need request matching or filters */
	struct tr_l4 l4;
};

struct tr_port {
	const struct k8s_service *svc;
	const struct k8s_service_port *port;
	struct tr_backend self;		/* the port's own endpoints (no-route behaviour) */
	struct tr_class *classes;	/* [0] is the default class */
	size_t nr_classes;
};

struct tr_condition {
	const char *type;		/* Accepted, ResolvedRefs, PartiallyInvalid */
	bool status;
	const char *reason;
	char *message;
};

struct tr_parent_status {
	const struct gapi_parent_ref *ref;
	struct tr_condition conditions[3];
	size_t nr_conditions;
};

struct tr_route_status {
	const struct gapi_route *route;
	struct tr_parent_status *parents;	/* only parentRefs of kind Service */
	size_t nr_parents;
};

struct tr_result {
	struct tr_port *ports;		/* sorted by namespace, name, port, protocol */
	size_t nr_ports;
	struct tr_route_status *routes;	/* sorted by kind, namespace, name */
	size_t nr_routes;
	/* internals */
	struct tr_rule **rules;		/* per route, in the order of routes[] */
	size_t *nr_rules;		/* of rules[i]: freeing reads no model object */
	struct strmap endpoint_sets;	/* "ns/name/port/proto" -> tr_endpoint_set */
	struct strmap port_index;	/* same key -> tr_port */
	struct tr_track *track;		/* per-port lifetimes (tr_result_track) */
};

int translate(const struct model *m, struct diag *dg, struct tr_result *out);
/* translate() for a node: opts may be NULL (every endpoint local, no zone). */
int translate_opts(const struct model *m, const struct tr_opts *opts, struct diag *dg,
		   struct tr_result *out);
/* "local,zone,terminating" words of TR_EP_* bits, "" for none, in buf. */
const char *tr_ep_policy_str(unsigned int policy, char *buf, size_t len);
void tr_result_free(struct tr_result *r);
/*
 * Free r's route statuses (routes[] keeps its entries, without parents)
 * and its port index: for a result only its ports are read from later
 * (the incremental pipeline's kept translations). tr_find_port() then
 * searches; tr_result_free() frees the rest.
 */
void tr_result_drop_statuses(struct tr_result *r);
/*
 * Per-port lifetimes, for a result whose ports stop being read one by one
 * (the incremental pipeline keeps a commit's translation while some of its
 * ports are still the engine's): tr_result_track() counts what each port
 * reaches (endpoint sets, the rules of routes) and frees what none reaches
 * (the endpoint sets' index goes too: lookups by key end with the
 * translation); tr_result_port_done() frees port i's classes and whatever
 * no other port still reached now reaches. Port i's svc, port and self stay
 * (self.endpoints dangles). tr_result_free() frees the rest.
 */
int tr_result_track(struct tr_result *r);
void tr_result_port_done(struct tr_result *r, size_t i);

/*
 * The TCP Service port ns/name:port; by index, or by a binary search of
 * ports when the result has no index (a result assembled from parts).
 */
const struct tr_port *tr_find_port(const struct tr_result *r, const char *ns,
				   const char *name, uint16_t port);
/* The order of tr_result.ports: namespace, name, port, protocol. */
int tr_port_cmp(const struct tr_port *a, const struct tr_port *b);
/* The class a client in client_ns gets on this port (the default when none). */
const struct tr_class *tr_port_class(const struct tr_port *p, const char *client_ns);
const struct tr_route_status *tr_find_route(const struct tr_result *r,
					    enum gapi_route_kind kind, const char *ns,
					    const char *name);
/* A condition of a parent status by type, or NULL. */
const struct tr_condition *tr_condition(const struct tr_parent_status *p, const char *type);

#endif
