// SPDX-License-Identifier: Apache-2.0
/* Backends: a backendRef -> Service port -> its ready endpoints. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

char *tr_strdupf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

const struct k8s_service_port *tr_service_port_by_number(const struct k8s_service *svc,
							 uint16_t port)
{
	const struct k8s_service_port *udp = NULL;

	/* The same number may exist for TCP and UDP: the route kinds want TCP. */
	for (size_t i = 0; i < svc->nr_ports; i++) {
		if (svc->ports[i].port != port)
			continue;
		if (svc->ports[i].protocol == L4_TCP)
			return &svc->ports[i];
		udp = &svc->ports[i];
	}
	return udp;
}

static bool same_port_name(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static int endpoint_cmp(const void *pa, const void *pb)
{
	const struct tr_endpoint *a = pa, *b = pb;
	int d = (int)a->addr.family - (int)b->addr.family;

	if (d)
		return d;
	d = memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr));
	if (d)
		return d;
	return (int)a->port - (int)b->port;
}

/*
 * An endpoint address of the Service port as this node sees it: its
 * conditions and where it is. An address in two slices (one endpoint being
 * moved between slices) is one candidate with both entries' conditions.
 */
struct ep_cand {
	struct tr_endpoint ep;
	bool ready;		/* conditions.ready */
	bool terminating;	/* serving and terminating, not ready: the fallback */
	bool local;		/* nodeName is this node (internalTrafficPolicy) */
	bool same_node;		/* hints.forNodes (or nodeName) name this node */
	bool same_zone;		/* hints.forZones (or zone) name this node's zone */
};

struct cand_list {
	struct ep_cand *items;
	size_t nr, cap;
};

static int cand_cmp(const void *pa, const void *pb)
{
	return endpoint_cmp(&((const struct ep_cand *)pa)->ep, &((const struct ep_cand *)pb)->ep);
}

static bool on_node(const char *node, const struct k8s_endpoint *ep)
{
	return ep->node_name && !strcmp(ep->node_name, node);
}

/*
 * Hints are what the EndpointSlice controller wrote for trafficDistribution;
 * an endpoint without them is placed by its own nodeName and zone, so
 * hand-written slices (file mode) need no hints.
 */
static void place(const struct tr_opts *o, const struct k8s_endpoint *ep, struct ep_cand *c)
{
	c->local = !o->node_name || on_node(o->node_name, ep);
	if (o->node_name)
		c->same_node = ep->hint_nodes.nr ? k8s_strings_has(&ep->hint_nodes, o->node_name)
						 : on_node(o->node_name, ep);
	if (o->zone)
		c->same_zone = ep->hint_zones.nr ? k8s_strings_has(&ep->hint_zones, o->zone)
						 : ep->zone && !strcmp(ep->zone, o->zone);
}

static int push_cand(struct cand_list *l, const struct tr_opts *o, const struct ip_addr *a,
		     uint16_t port, const struct k8s_endpoint *ep)
{
	struct ep_cand *c;

	if (l->nr == l->cap) {
		size_t n = l->cap ? l->cap * 2 : 4;
		void *items = realloc(l->items, n * sizeof(*l->items));

		if (!items)
			return -ENOMEM;
		l->items = items;
		l->cap = n;
	}
	c = &l->items[l->nr++];
	*c = (struct ep_cand){
		.ep = { .addr = *a, .port = port, .target_name = ep->target_name,
			.node_name = ep->node_name },
		.ready = ep->ready,
		.terminating = !ep->ready && ep->serving && ep->terminating,
	};
	place(o, ep, c);
	return 0;
}

/* Add the usable (ready, or serving and terminating) endpoints of one slice. */
static int add_slice(struct cand_list *l, const struct tr_opts *o,
		     const struct k8s_endpoint_slice *s, const struct k8s_service_port *sp)
{
	const struct k8s_endpoint_port *port = NULL;
	int ret;

	for (size_t i = 0; i < s->nr_ports && !port; i++)
		if (same_port_name(s->ports[i].name, sp->name) &&
		    s->ports[i].protocol == sp->protocol && s->ports[i].port)
			port = &s->ports[i];
	if (!port || !s->address_family)
		return 0;
	for (size_t i = 0; i < s->nr_endpoints; i++) {
		const struct k8s_endpoint *ep = &s->endpoints[i];

		if (!ep->ready && !(ep->serving && ep->terminating))
			continue;
		for (size_t j = 0; j < ep->nr_addresses; j++) {
			ret = push_cand(l, o, &ep->addresses[j], port->port, ep);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Sort and merge duplicates: an address is counted once. */
static void merge_cands(struct cand_list *l)
{
	size_t n = 0;

	if (l->nr)
		qsort(l->items, l->nr, sizeof(*l->items), cand_cmp);
	for (size_t i = 0; i < l->nr; i++) {
		struct ep_cand *c = &l->items[i], *prev = n ? &l->items[n - 1] : NULL;

		if (prev && !cand_cmp(prev, c)) {
			prev->ready |= c->ready;
			prev->terminating = !prev->ready && (prev->terminating || c->terminating);
			prev->local |= c->local;
			prev->same_node |= c->same_node;
			prev->same_zone |= c->same_zone;
			continue;
		}
		l->items[n++] = *c;
	}
	l->nr = n;
}

/* Which candidates a connection may use; the set's policy bits say why. */
struct ep_pick {
	bool terminating;	/* the serving-and-terminating ones, not the ready ones */
	bool local, same_node, same_zone;	/* and only those */
};

static bool picked(const struct ep_cand *c, struct ep_pick p)
{
	return (p.terminating ? c->terminating : c->ready) && (!p.local || c->local) &&
	       (!p.same_node || c->same_node) && (!p.same_zone || c->same_zone);
}

static bool any_picked(const struct cand_list *l, struct ep_pick p)
{
	for (size_t i = 0; i < l->nr; i++)
		if (picked(&l->items[i], p))
			return true;
	return false;
}

/*
 * kube-proxy's choice (pkg/proxy/topology.go, CategorizeEndpoints):
 *  - internalTrafficPolicy Local: this node's ready endpoints, else this
 *    node's serving-and-terminating ones, else none (refused);
 *  - otherwise the ready endpoints, narrowed by trafficDistribution to
 *    those for this node (PreferSameNode) or else this zone (PreferClose,
 *    PreferSameZone, and PreferSameNode's fallback) when there are any;
 *  - no ready endpoint at all: the serving-and-terminating ones, so a
 *    rolling update of a small Deployment does not refuse connections. The
 *    fallback ends as soon as one endpoint is ready again.
 */
static struct ep_pick choose(const struct cand_list *l, const struct k8s_service *svc,
			     unsigned int *policy)
{
	enum k8s_traffic_dist dist = svc->traffic_distribution;
	struct ep_pick ready = { 0 }, term = { .terminating = true };
	struct ep_pick node = { .same_node = true }, zone = { .same_zone = true };

	*policy = 0;
	if (svc->internal_traffic_policy == TRAFFIC_POLICY_LOCAL) {
		*policy = TR_EP_LOCAL;
		ready.local = term.local = true;
		if (any_picked(l, ready))
			return ready;
		if (any_picked(l, term))
			*policy |= TR_EP_TERMINATING;
		return term;
	}
	if (!any_picked(l, ready)) {
		if (any_picked(l, term))
			*policy = TR_EP_TERMINATING;
		return term;
	}
	if (dist == TRAFFIC_DIST_NONE)
		return ready;
	if (dist == TRAFFIC_DIST_PREFER_SAME_NODE && any_picked(l, node)) {
		*policy = TR_EP_NODE;
		return node;
	}
	if (any_picked(l, zone)) {
		*policy = TR_EP_ZONE;
		return zone;
	}
	*policy = TR_EP_TOPOLOGY_ALL;
	return ready;
}

static int build_set(struct tr_ctx *c, const struct k8s_service *svc,
		     const struct k8s_service_port *sp, struct tr_endpoint_set *set)
{
	const struct model_slices *slices;
	struct cand_list l = { 0 };
	struct ep_pick pick;
	size_t n = 0;
	int ret = 0;

	set->svc = svc;
	set->port = sp;
	slices = model_service_slices(c->m, svc->meta.namespace, svc->meta.name);
	for (size_t i = 0; !ret && slices && i < slices->nr; i++)
		ret = add_slice(&l, &c->opts, slices->items[i], sp);
	if (ret) {
		free(l.items);
		return ret;
	}
	merge_cands(&l);
	pick = choose(&l, svc, &set->policy);
	set->nr_candidates = l.nr;
	set->items = calloc(l.nr ? l.nr : 1, sizeof(*set->items));
	if (!set->items) {
		free(l.items);
		return -ENOMEM;
	}
	/* In address order: the cap keeps the same endpoints on every node. */
	for (size_t i = 0; i < l.nr; i++) {
		if (!picked(&l.items[i], pick))
			continue;
		if (n == c->opts.max_endpoints) {
			set->truncated = true;
			break;
		}
		set->items[n++] = l.items[i].ep;
	}
	set->nr = n;
	free(l.items);
	if (set->truncated)
		diag_report(c->dg, LOG_WARN, svc->meta.loc.file, svc->meta.loc.line, NULL,
			    "Service %s/%s port %u has more than %u usable endpoints; the first %u (by address) are used (raise --map-size endpoints-per-service)",
			    svc->meta.namespace, svc->meta.name, sp->port, c->opts.max_endpoints,
			    c->opts.max_endpoints);
	return 0;
}

const char *tr_ep_policy_str(unsigned int policy, char *buf, size_t len)
{
	static const char *const words[] = {
		"local", "zone", "node", "terminating", "topology-all",
	};
	size_t n = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]) && n < len; i++)
		if (policy & (1u << i))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", words[i]);
	return buf;
}

const struct tr_endpoint_set *tr_endpoint_set_get(struct tr_ctx *c,
						  const struct k8s_service *svc,
						  const struct k8s_service_port *sp)
{
	char key[MODEL_KEY_MAX + 16];
	struct tr_endpoint_set *set;

	snprintf(key, sizeof(key), "%s/%s/%u/%u", svc->meta.namespace, svc->meta.name,
		 sp->port, sp->protocol);
	set = strmap_get(&c->res->endpoint_sets, key);
	if (set)
		return set;
	set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	if (build_set(c, svc, sp, set) || strmap_put(&c->res->endpoint_sets, key, set, NULL)) {
		free(set->items);
		free(set);
		return NULL;
	}
	return set;
}

static int unresolved(struct tr_backend *out, const char **reason, char **message,
		      const char *why, char *msg)
{
	out->state = TR_BACKEND_UNRESOLVED;
	*reason = why;
	*message = msg;
	return msg ? 0 : -ENOMEM;
}

int tr_resolve_backend(struct tr_ctx *c, const struct gapi_backend_ref *ref,
		       struct tr_backend *out, const char **reason, char **message)
{
	const struct k8s_service_port *sp;
	const struct k8s_service *svc;

	*reason = NULL;
	*message = NULL;
	out->ref = ref;
	out->namespace = ref->namespace;
	out->name = ref->name;
	out->port = ref->port;
	out->weight = ref->weight;
	if (!k8s_group_is_core(ref->group) || strcmp(ref->kind, "Service"))
		return unresolved(out, reason, message, "InvalidKind",
				  tr_strdupf("backendRef %s/%s: kind %s%s%s is not supported, only Service",
					     ref->namespace, ref->name, ref->group,
					     *ref->group ? "/" : "", ref->kind));
	svc = model_service(c->m, ref->namespace, ref->name);
	if (!svc)
		return unresolved(out, reason, message, "BackendNotFound",
				  tr_strdupf("Service %s/%s not found", ref->namespace,
					     ref->name));
	if (svc->type == SVC_EXTERNAL_NAME)
		return unresolved(out, reason, message, "BackendNotFound",
				  tr_strdupf("Service %s/%s is an ExternalName Service",
					     ref->namespace, ref->name));
	sp = tr_service_port_by_number(svc, ref->port);
	if (!sp)
		return unresolved(out, reason, message, "BackendNotFound",
				  tr_strdupf("Service %s/%s has no port %u", ref->namespace,
					     ref->name, ref->port));
	if (sp->protocol != L4_TCP)
		return unresolved(out, reason, message, "UnsupportedProtocol",
				  tr_strdupf("Service %s/%s port %u is %s, routes need TCP",
					     ref->namespace, ref->name, ref->port,
					     l4_proto_name(sp->protocol)));
	out->endpoints = tr_endpoint_set_get(c, svc, sp);
	if (!out->endpoints)
		return -ENOMEM;
	out->affinity_timeout = svc->affinity_timeout;
	out->state = out->endpoints->nr ? TR_BACKEND_OK : TR_BACKEND_NO_ENDPOINTS;
	return 0;
}
