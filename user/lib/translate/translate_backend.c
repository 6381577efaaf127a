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

static int push_endpoint(struct tr_endpoint_set *set, size_t *cap, const struct ip_addr *a,
			 uint16_t port, const struct k8s_endpoint *ep)
{
	if (set->nr == *cap) {
		size_t n = *cap ? *cap * 2 : 4;
		void *items = realloc(set->items, n * sizeof(*set->items));

		if (!items)
			return -ENOMEM;
		set->items = items;
		*cap = n;
	}
	set->items[set->nr++] = (struct tr_endpoint){
		.addr = *a, .port = port,
		.target_name = ep->target_name, .node_name = ep->node_name,
	};
	return 0;
}

/* Add the ready endpoints of one slice for the given Service port. */
static int add_slice(struct tr_endpoint_set *set, size_t *cap,
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

		if (!ep->ready)
			continue;
		for (size_t j = 0; j < ep->nr_addresses; j++) {
			ret = push_endpoint(set, cap, &ep->addresses[j], port->port, ep);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Sort, drop duplicates (an address may be in two slices), cap at the limit. */
static void normalize_set(struct tr_endpoint_set *set)
{
	size_t n = 0;

	if (!set->nr)
		return;
	qsort(set->items, set->nr, sizeof(*set->items), endpoint_cmp);
	for (size_t i = 0; i < set->nr; i++)
		if (!n || endpoint_cmp(&set->items[n - 1], &set->items[i]))
			set->items[n++] = set->items[i];
	set->nr = n;
	if (set->nr > TR_MAX_ENDPOINTS) {
		set->nr = TR_MAX_ENDPOINTS;
		set->truncated = true;
	}
}

static int build_set(struct tr_ctx *c, const struct k8s_service *svc,
		     const struct k8s_service_port *sp, struct tr_endpoint_set *set)
{
	const struct model_slices *slices;
	size_t cap = 0;
	int ret;

	set->svc = svc;
	set->port = sp;
	slices = model_service_slices(c->m, svc->meta.namespace, svc->meta.name);
	for (size_t i = 0; slices && i < slices->nr; i++) {
		ret = add_slice(set, &cap, slices->items[i], sp);
		if (ret)
			return ret;
	}
	normalize_set(set);
	if (set->truncated)
		diag_report(c->dg, LOG_WARN, svc->meta.loc.file, svc->meta.loc.line, NULL,
			    "Service %s/%s port %u has more than %d ready endpoints; the first %d (by address) are used",
			    svc->meta.namespace, svc->meta.name, sp->port, TR_MAX_ENDPOINTS,
			    TR_MAX_ENDPOINTS);
	return 0;
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
	if (*ref->group || strcmp(ref->kind, "Service"))
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
	out->state = out->endpoints->nr ? TR_BACKEND_OK : TR_BACKEND_NO_ENDPOINTS;
	return 0;
}
