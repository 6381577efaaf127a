// SPDX-License-Identifier: Apache-2.0
/*
 * EndpointSlices as the EndpointSlice controller writes them: per Service
 * and address family, the selected pods with their conditions, and the
 * Service ports resolved to pod ports. A named targetPort is resolved per
 * pod against its container port names; pods that resolve differently (or
 * not at all) end up in different slices, as in Kubernetes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "input/k8s_field.h"
#include "lab.h"

#define MAX_SVC_PORTS 128

/* The ports of one pod for one Service; 0 marks a name the pod does not have. */
struct resolved_ports {
	uint16_t port[MAX_SVC_PORTS];
};

static uint16_t resolve_port(const struct k8s_service_port *sp, const struct lab_pod *p)
{
	if (!sp->target_port_name)
		return sp->target_port;
	for (size_t i = 0; i < p->spec->nr_containers; i++) {
		const struct k8s_container *c = &p->spec->containers[i];

		for (size_t j = 0; j < c->nr_ports; j++)
			if (c->ports[j].name && !strcmp(c->ports[j].name, sp->target_port_name) &&
			    c->ports[j].protocol == sp->protocol)
				return c->ports[j].port;
	}
	return 0;
}

static void resolve_ports(const struct k8s_service *s, const struct lab_pod *p,
			  struct resolved_ports *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < s->nr_ports && i < MAX_SVC_PORTS; i++)
		out->port[i] = resolve_port(&s->ports[i], p);
}

static bool selects(const struct k8s_service *s, const struct lab_pod *p)
{
	return s->selector.nr && !strcmp(s->meta.namespace, p->namespace) &&
	       k8s_labels_match(&s->selector, &p->labels);
}

static int slice_meta(const struct k8s_service *s, uint8_t family, int group,
		      struct k8s_endpoint_slice *out)
{
	char key[600], suffix[6], name[K8S_NAME_MAX + 1];
	struct k8s_label *l;

	snprintf(key, sizeof(key), "%s/%s/%d/%d", s->meta.namespace, s->meta.name, family, group);
	lab_kube_suffix(lab_hash(key, 6), suffix, sizeof(suffix));
	snprintf(name, sizeof(name), "%.57s-%s", s->meta.name, suffix);
	out->address_family = family;
	out->meta.name = strdup(name);
	out->meta.namespace = strdup(s->meta.namespace);
	out->service_name = strdup(s->meta.name);
	out->meta.labels.items = l = calloc(2, sizeof(*l));
	if (!out->meta.name || !out->meta.namespace || !out->service_name || !l)
		return -ENOMEM;
	out->meta.labels.nr = 2;
	l[0].key = strdup("kubernetes.io/service-name");
	l[0].value = strdup(s->meta.name);
	l[1].key = strdup("endpointslice.kubernetes.io/managed-by");
	l[1].value = strdup("endpointslice-controller.k8s.io");
	return l[0].key && l[0].value && l[1].key && l[1].value ? 0 : -ENOMEM;
}

static int slice_ports(const struct k8s_service *s, const struct resolved_ports *rp,
		       struct k8s_endpoint_slice *out)
{
	out->ports = calloc(s->nr_ports + 1, sizeof(*out->ports));
	if (!out->ports)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_ports && i < MAX_SVC_PORTS; i++) {
		struct k8s_endpoint_port *ep = &out->ports[out->nr_ports];

		if (!rp->port[i])
			continue;
		out->nr_ports++;
		ep->port = rp->port[i];
		ep->protocol = s->ports[i].protocol;
		/* The controller writes the Service port's name, "" when unnamed. */
		ep->name = strdup(s->ports[i].name ? s->ports[i].name : "");
		if (!ep->name || kf_strdup(&ep->app_protocol, s->ports[i].app_protocol))
			return -ENOMEM;
	}
	return 0;
}

static int add_endpoint(const struct lab_model *m, const struct lab_pod *p, uint8_t family,
			struct k8s_endpoint_slice *out)
{
	struct k8s_endpoint *ep = &out->endpoints[out->nr_endpoints++];

	ep->addresses = calloc(1, sizeof(*ep->addresses));
	if (!ep->addresses)
		return -ENOMEM;
	ep->addresses[0] = family == AF_INET ? p->ip4 : p->ip6;
	ep->nr_addresses = 1;
	ep->ready = ep->serving = p->ready;
	ep->terminating = false;
	ep->node_name = strdup(m->node_name);
	ep->target_kind = strdup("Pod");
	ep->target_namespace = strdup(p->namespace);
	ep->target_name = strdup(p->name);
	ep->target_uid = strdup(p->uid);
	return ep->node_name && ep->target_kind && ep->target_namespace && ep->target_name &&
	       ep->target_uid ? 0 : -ENOMEM;
}

static struct k8s_endpoint_slice *new_slice(struct lab_model *m)
{
	struct k8s_endpoint_slice *s = realloc(m->slices, (m->nr_slices + 1) * sizeof(*s));

	if (!s)
		return NULL;
	m->slices = s;
	return memset(&s[m->nr_slices++], 0, sizeof(*s));
}

/* One slice per distinct port resolution among the selected pods. */
static int service_family_slices(struct lab_model *m, const struct k8s_service *s,
				 uint8_t family)
{
	struct resolved_ports *rp = calloc(m->nr_pods + 1, sizeof(*rp)), group;
	bool *done = calloc(m->nr_pods + 1, sizeof(*done));
	int ret = rp && done ? 0 : -ENOMEM, nr_groups = 0;

	for (size_t i = 0; !ret && i < m->nr_pods; i++)
		if (selects(s, &m->pods[i]))
			resolve_ports(s, &m->pods[i], &rp[i]);
		else
			done[i] = true;
	for (size_t i = 0; !ret && (i < m->nr_pods || !nr_groups); i++) {
		struct k8s_endpoint_slice *out;

		if (i < m->nr_pods && done[i])
			continue;
		/* A Service that selects nothing still gets one empty slice. */
		group = i < m->nr_pods ? rp[i] : (struct resolved_ports){ 0 };
		if (i >= m->nr_pods)
			for (size_t k = 0; k < s->nr_ports && k < MAX_SVC_PORTS; k++)
				group.port[k] = s->ports[k].target_port;
		out = new_slice(m);
		ret = out ? slice_meta(s, family, nr_groups++, out) : -ENOMEM;
		if (!ret)
			ret = slice_ports(s, &group, out);
		if (!ret)
			out->endpoints = calloc(m->nr_pods + 1, sizeof(*out->endpoints));
		if (!ret && !out->endpoints)
			ret = -ENOMEM;
		for (size_t j = i; !ret && j < m->nr_pods; j++) {
			if (done[j] || memcmp(&rp[j], &group, sizeof(group)))
				continue;
			done[j] = true;
			ret = add_endpoint(m, &m->pods[j], family, out);
		}
		if (i >= m->nr_pods)
			break;
	}
	free(rp);
	free(done);
	return ret;
}

int lab_build_endpoint_slices(struct lab_model *m)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < m->nr_services; i++) {
		const struct k8s_service *s = &m->services[i];

		/* Without a selector, endpoints are the user's business, as in Kubernetes. */
		if (!s->selector.nr || s->type == SVC_EXTERNAL_NAME)
			continue;
		if (s->nr_ports > MAX_SVC_PORTS) {
			diag_report(&m->diag, LOG_ERROR, s->meta.loc.file, s->meta.loc.line,
				    "spec.ports", "more than %d ports", MAX_SVC_PORTS);
			return -E2BIG;
		}
		for (size_t f = 0; !ret && f < s->nr_ip_families; f++)
			ret = service_family_slices(m, s, s->ip_families[f]);
	}
	return ret;
}
