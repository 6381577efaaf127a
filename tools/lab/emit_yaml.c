// SPDX-License-Identifier: Apache-2.0
/*
 * The output a control plane would serve: cluster.yaml (Namespaces, Services
 * with their cluster IPs, Pods with their IPs and Ready condition, and
 * EndpointSlices) and routes.yaml (every other document, as written).
 * Both are replaced atomically: an agent watches the directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lab.h"
#include "yaml_writer.h"

static void write_string_map(struct yw *w, const char *key, const struct k8s_labels *l)
{
	if (!l->nr)
		return;
	yw_key_map(w, key);
	for (size_t i = 0; i < l->nr; i++)
		yw_kv_str(w, l->items[i].key, l->items[i].value);
	yw_map_end(w);
}

static void write_head(struct yw *w, const char *api, const char *kind)
{
	yw_doc_start(w);
	yw_map_start(w);
	yw_kv_str(w, "apiVersion", api);
	yw_kv_str(w, "kind", kind);
}

static void write_tail(struct yw *w)
{
	yw_map_end(w);
	yw_doc_end(w);
}

/* metadata: name, namespace, uid (made up if the manifest had none), labels, annotations */
static void write_meta(struct yw *w, const char *ns, const char *name, const char *uid,
		       const struct k8s_labels *labels, const struct k8s_labels *annotations)
{
	yw_key_map(w, "metadata");
	yw_kv_str(w, "name", name);
	if (ns)
		yw_kv_str(w, "namespace", ns);
	yw_kv_str(w, "uid", uid);
	if (labels)
		write_string_map(w, "labels", labels);
	if (annotations)
		write_string_map(w, "annotations", annotations);
}

static const char *object_uid(const char *kind, const struct k8s_meta *meta, char buf[37])
{
	char seed[600];

	if (meta->uid)
		return meta->uid;
	snprintf(seed, sizeof(seed), "%s/%s/%s", kind, meta->namespace ? meta->namespace : "",
		 meta->name);
	lab_uuid(seed, buf);
	return buf;
}

/* ---- Namespace ------------------------------------------------------------ */

static void write_namespace(struct yw *w, const struct k8s_namespace *ns)
{
	char uid[37];

	write_head(w, "v1", "Namespace");
	write_meta(w, NULL, ns->meta.name, object_uid("Namespace", &ns->meta, uid), NULL, NULL);
	yw_key_map(w, "labels");
	yw_kv_str(w, "kubernetes.io/metadata.name", ns->meta.name);
	for (size_t i = 0; i < ns->meta.labels.nr; i++)
		if (strcmp(ns->meta.labels.items[i].key, "kubernetes.io/metadata.name"))
			yw_kv_str(w, ns->meta.labels.items[i].key, ns->meta.labels.items[i].value);
	yw_map_end(w);
	yw_map_end(w);
	write_tail(w);
}

/* ---- Service -------------------------------------------------------------- */

static const char *service_type_name(enum k8s_service_type t)
{
	switch (t) {
	case SVC_NODE_PORT:
		return "NodePort";
	case SVC_LOAD_BALANCER:
		return "LoadBalancer";
	case SVC_EXTERNAL_NAME:
		return "ExternalName";
	default:
		return "ClusterIP";
	}
}

static void write_service_ips(struct yw *w, const struct k8s_service *s)
{
	char ip[INET6_ADDRSTRLEN];

	if (s->type == SVC_EXTERNAL_NAME)
		return;
	if (s->type == SVC_HEADLESS) {
		yw_kv_str(w, "clusterIP", "None");
		yw_key_seq(w, "clusterIPs", false);
		yw_str(w, "None");
		yw_seq_end(w);
	} else if (s->nr_cluster_ips) {
		yw_kv_str(w, "clusterIP", ip_addr_str(&s->cluster_ips[0], ip, sizeof(ip)));
		yw_key_seq(w, "clusterIPs", false);
		for (size_t i = 0; i < s->nr_cluster_ips; i++)
			yw_str(w, ip_addr_str(&s->cluster_ips[i], ip, sizeof(ip)));
		yw_seq_end(w);
	}
	yw_key_seq(w, "ipFamilies", false);
	for (size_t i = 0; i < s->nr_ip_families; i++)
		yw_str(w, s->ip_families[i] == AF_INET6 ? "IPv6" : "IPv4");
	yw_seq_end(w);
	yw_kv_str(w, "ipFamilyPolicy", s->ip_family_policy ? s->ip_family_policy : "SingleStack");
}

static void write_service_port(struct yw *w, const struct k8s_service_port *p)
{
	yw_map_start(w);
	if (p->name)
		yw_kv_str(w, "name", p->name);
	yw_kv_int(w, "port", p->port);
	yw_kv_str(w, "protocol", l4_proto_name(p->protocol));
	if (p->app_protocol)
		yw_kv_str(w, "appProtocol", p->app_protocol);
	if (p->target_port_name)
		yw_kv_str(w, "targetPort", p->target_port_name);
	else
		yw_kv_int(w, "targetPort", p->target_port);
	yw_map_end(w);
}

static void write_service(struct yw *w, const struct k8s_service *s)
{
	char uid[37];

	write_head(w, "v1", "Service");
	write_meta(w, s->meta.namespace, s->meta.name, object_uid("Service", &s->meta, uid),
		   &s->meta.labels, &s->meta.annotations);
	yw_map_end(w);
	yw_key_map(w, "spec");
	yw_kv_str(w, "type", service_type_name(s->type));
	write_service_ips(w, s);
	write_string_map(w, "selector", &s->selector);
	if (s->nr_ports) {
		yw_key_seq(w, "ports", false);
		for (size_t i = 0; i < s->nr_ports; i++)
			write_service_port(w, &s->ports[i]);
		yw_seq_end(w);
	}
	yw_map_end(w);
	write_tail(w);
}

/* ---- Pod ------------------------------------------------------------------ */

static void write_container(struct yw *w, const struct k8s_container *c)
{
	yw_map_start(w);
	yw_kv_str(w, "name", c->name);
	yw_kv_str(w, "image", "gammad-lab/echo");
	if (c->nr_args) {
		yw_key_seq(w, "args", false);
		for (size_t i = 0; i < c->nr_args; i++)
			yw_str(w, c->args[i]);
		yw_seq_end(w);
	}
	if (c->nr_ports) {
		yw_key_seq(w, "ports", false);
		for (size_t i = 0; i < c->nr_ports; i++) {
			yw_map_start(w);
			if (c->ports[i].name)
				yw_kv_str(w, "name", c->ports[i].name);
			yw_kv_int(w, "containerPort", c->ports[i].port);
			yw_kv_str(w, "protocol", l4_proto_name(c->ports[i].protocol));
			yw_map_end(w);
		}
		yw_seq_end(w);
	}
	yw_map_end(w);
}

static void write_pod_status(struct yw *w, const struct lab_pod *p)
{
	static const char *const conditions[] = { "Initialized", "Ready", "ContainersReady",
						  "PodScheduled" };
	char ip[INET6_ADDRSTRLEN];

	yw_key_map(w, "status");
	yw_kv_str(w, "phase", "Running");
	yw_kv_str(w, "podIP", ip_addr_str(&p->ip4, ip, sizeof(ip)));
	yw_key_seq(w, "podIPs", false);
	yw_map_start(w);
	yw_kv_str(w, "ip", ip_addr_str(&p->ip4, ip, sizeof(ip)));
	yw_map_end(w);
	yw_map_start(w);
	yw_kv_str(w, "ip", ip_addr_str(&p->ip6, ip, sizeof(ip)));
	yw_map_end(w);
	yw_seq_end(w);
	yw_key_seq(w, "conditions", false);
	for (size_t i = 0; i < sizeof(conditions) / sizeof(conditions[0]); i++) {
		bool ok = p->ready || (i != 1 && i != 2);

		yw_map_start(w);
		yw_kv_str(w, "type", conditions[i]);
		yw_kv_str(w, "status", ok ? "True" : "False");
		yw_map_end(w);
	}
	yw_seq_end(w);
	yw_map_end(w);
}

static void write_pod(struct yw *w, const struct lab_pod *p, const char *node)
{
	write_head(w, "v1", "Pod");
	write_meta(w, p->namespace, p->name, p->uid, &p->labels, &p->annotations);
	if (p->owner) {
		/* The lab has no ReplicaSets: the Deployment is named as the owner. */
		yw_key_seq(w, "ownerReferences", false);
		yw_map_start(w);
		yw_kv_str(w, "apiVersion", "apps/v1");
		yw_kv_str(w, "kind", "Deployment");
		yw_kv_str(w, "name", p->owner);
		yw_map_end(w);
		yw_seq_end(w);
	}
	yw_map_end(w);
	yw_key_map(w, "spec");
	yw_kv_str(w, "nodeName", node);
	yw_key_seq(w, "containers", false);
	for (size_t i = 0; i < p->spec->nr_containers; i++)
		write_container(w, &p->spec->containers[i]);
	yw_seq_end(w);
	yw_map_end(w);
	write_pod_status(w, p);
	write_tail(w);
}

/* ---- EndpointSlice -------------------------------------------------------- */

static void write_endpoint(struct yw *w, const struct k8s_endpoint *ep)
{
	char ip[INET6_ADDRSTRLEN];

	yw_map_start(w);
	yw_key_seq(w, "addresses", false);
	for (size_t i = 0; i < ep->nr_addresses; i++)
		yw_str(w, ip_addr_str(&ep->addresses[i], ip, sizeof(ip)));
	yw_seq_end(w);
	yw_key_map(w, "conditions");
	yw_kv_bool(w, "ready", ep->ready);
	yw_kv_bool(w, "serving", ep->serving);
	yw_kv_bool(w, "terminating", ep->terminating);
	yw_map_end(w);
	yw_kv_str(w, "nodeName", ep->node_name);
	yw_key_map(w, "targetRef");
	yw_kv_str(w, "kind", ep->target_kind);
	yw_kv_str(w, "namespace", ep->target_namespace);
	yw_kv_str(w, "name", ep->target_name);
	yw_kv_str(w, "uid", ep->target_uid);
	yw_map_end(w);
	yw_map_end(w);
}

static void write_slice(struct yw *w, const struct k8s_endpoint_slice *s)
{
	char uid[37];

	write_head(w, "discovery.k8s.io/v1", "EndpointSlice");
	write_meta(w, s->meta.namespace, s->meta.name, object_uid("EndpointSlice", &s->meta, uid),
		   &s->meta.labels, NULL);
	yw_map_end(w);
	yw_kv_str(w, "addressType", s->address_family == AF_INET6 ? "IPv6" : "IPv4");
	yw_key_seq(w, "endpoints", false);
	for (size_t i = 0; i < s->nr_endpoints; i++)
		write_endpoint(w, &s->endpoints[i]);
	yw_seq_end(w);
	yw_key_seq(w, "ports", false);
	for (size_t i = 0; i < s->nr_ports; i++) {
		yw_map_start(w);
		yw_kv_str(w, "name", s->ports[i].name ? s->ports[i].name : "");
		yw_kv_int(w, "port", s->ports[i].port);
		yw_kv_str(w, "protocol", l4_proto_name(s->ports[i].protocol));
		if (s->ports[i].app_protocol)
			yw_kv_str(w, "appProtocol", s->ports[i].app_protocol);
		yw_map_end(w);
	}
	yw_seq_end(w);
	write_tail(w);
}

int lab_write_cluster_yaml(const struct lab_model *m, const char *path)
{
	struct yw w;
	char *text;
	size_t len;
	int ret = yw_init(&w);

	if (ret)
		return ret;
	for (size_t i = 0; i < m->nr_namespaces; i++)
		write_namespace(&w, &m->namespaces[i]);
	for (size_t i = 0; i < m->nr_services; i++)
		write_service(&w, &m->services[i]);
	for (size_t i = 0; i < m->nr_pods; i++)
		write_pod(&w, &m->pods[i], m->node_name);
	for (size_t i = 0; i < m->nr_slices; i++)
		write_slice(&w, &m->slices[i]);
	ret = yw_finish(&w, &text, &len);
	if (ret)
		return ret;
	ret = write_file_atomic(path, text, len);
	free(text);
	return ret;
}

/* Each passed-through document keeps its text; a comment says where it came from. */
int lab_write_routes_yaml(const struct lab_model *m, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < m->nr_passthrough; i++)
		fprintf(f, "---\n# from %s:%d\n%s\n", m->passthrough[i].file, m->passthrough[i].line,
			m->passthrough[i].text);
	if (fclose(f))
		return -ENOMEM;
	ret = write_file_atomic(path, text ? text : "", len);
	free(text);
	return ret;
}
