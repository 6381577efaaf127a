// SPDX-License-Identifier: Apache-2.0
/* parentRefs: which Service ports a route attaches to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

static int reject(struct tr_parent_state *st, const char *reason, char *msg)
{
	st->reject_reason = reason;
	st->reject_message = msg;
	return msg ? 0 : -ENOMEM;
}

static int add_binding(struct tr_ctx *c, struct tr_route_info *info, size_t parent,
		       size_t port, const char *svc_ns)
{
	const char *route_ns = info->route->meta.namespace;

	if (c->nr_bindings == c->cap_bindings) {
		size_t cap = c->cap_bindings ? c->cap_bindings * 2 : 64;
		void *b = realloc(c->bindings, cap * sizeof(*c->bindings));

		if (!b)
			return -ENOMEM;
		c->bindings = b;
		c->cap_bindings = cap;
	}
	c->bindings[c->nr_bindings++] = (struct tr_binding){
		.info = info,
		.parent = parent,
		.port = port,
		.class_ns = strcmp(route_ns, svc_ns) ? route_ns : NULL,
	};
	info->parents[parent].nr_bound++;
	return 0;
}

static bool port_selected(const struct gapi_parent_ref *p, const struct k8s_service_port *sp)
{
	if (p->port && p->port != sp->port)
		return false;
	if (p->section_name && (!sp->name || strcmp(p->section_name, sp->name)))
		return false;
	return true;
}

/* A parent that names its port explicitly may name a non-TCP one: say so. */
static int bind_ports(struct tr_ctx *c, struct tr_route_info *info, size_t parent,
		      const struct k8s_service *svc)
{
	const struct gapi_parent_ref *p = &info->route->parents[parent];
	struct tr_parent_state *st = &info->parents[parent];
	bool explicit = p->port || p->section_name;
	const struct k8s_service_port *non_tcp = NULL;
	char key[MODEL_KEY_MAX + 16];
	struct tr_port *port;
	int ret;

	for (size_t i = 0; i < svc->nr_ports; i++) {
		const struct k8s_service_port *sp = &svc->ports[i];

		if (!port_selected(p, sp))
			continue;
		if (sp->protocol != L4_TCP) {
			non_tcp = sp;
			continue;
		}
		snprintf(key, sizeof(key), "%s/%s/%u/%u", svc->meta.namespace, svc->meta.name,
			 sp->port, sp->protocol);
		port = strmap_get(&c->res->port_index, key);
		if (!port)
			continue;	/* over the Service limit: reported there */
		ret = add_binding(c, info, parent, port - c->res->ports, svc->meta.namespace);
		if (ret)
			return ret;
	}
	if (st->nr_bound)
		return 0;
	if (explicit && non_tcp)
		return reject(st, "UnsupportedValue",
			      tr_strdupf("Service %s/%s port %u is %s; routes attach to TCP ports",
					 p->namespace, p->name, non_tcp->port,
					 l4_proto_name(non_tcp->protocol)));
	if (p->port && p->section_name)
		return reject(st, "NoMatchingParent",
			      tr_strdupf("Service %s/%s has no port %u named \"%s\"",
					 p->namespace, p->name, p->port, p->section_name));
	if (p->port)
		return reject(st, "NoMatchingParent",
			      tr_strdupf("Service %s/%s has no port %u", p->namespace, p->name,
					 p->port));
	if (p->section_name)
		return reject(st, "NoMatchingParent",
			      tr_strdupf("Service %s/%s has no port named \"%s\"", p->namespace,
					 p->name, p->section_name));
	return reject(st, "NoMatchingParent",
		      tr_strdupf("Service %s/%s has no TCP port", p->namespace, p->name));
}

static int bind_parent(struct tr_ctx *c, struct tr_route_info *info, size_t parent)
{
	const struct gapi_parent_ref *p = &info->route->parents[parent];
	struct tr_parent_state *st = &info->parents[parent];
	const struct k8s_service *svc;

	/* Gateways (and anything of their group) belong to a gateway controller. */
	if (!strcmp(p->group, GAPI_GROUP)) {
		st->not_ours = true;
		return 0;
	}
	if (!k8s_group_is_core(p->group) || strcmp(p->kind, "Service"))
		return reject(st, "UnsupportedValue",
			      tr_strdupf("parentRef kind %s%s%s is not supported; mesh routes attach to a Service (group \"\")",
					 p->group, *p->group ? "/" : "", p->kind));
	svc = model_service(c->m, p->namespace, p->name);
	if (!svc)
		return reject(st, "NoMatchingParent",
			      tr_strdupf("Service %s/%s not found", p->namespace, p->name));
	if (svc->type == SVC_HEADLESS || svc->type == SVC_EXTERNAL_NAME)
		return reject(st, "UnsupportedValue",
			      tr_strdupf("Service %s/%s is %s and cannot be a parent", p->namespace,
					 p->name, svc->type == SVC_HEADLESS ? "headless" :
					 "an ExternalName Service"));
	return bind_ports(c, info, parent, svc);
}

int tr_bind_parents(struct tr_ctx *c, struct tr_route_info *info)
{
	const struct gapi_route *route = info->route;
	int ret;

	info->parents = calloc(route->nr_parents ? route->nr_parents : 1,
			       sizeof(*info->parents));
	if (!info->parents)
		return -ENOMEM;
	for (size_t i = 0; i < route->nr_parents; i++) {
		ret = bind_parent(c, info, i);
		if (ret)
			return ret;
	}
	return 0;
}
