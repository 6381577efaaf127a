// SPDX-License-Identifier: Apache-2.0
/*
 * Parsers for Namespace, Service, Pod, Deployment and EndpointSlice. Each
 * stops at the first bad value, reports it once (file:line: field: why) and
 * frees what it had built, so a caller only ever sees whole objects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "k8s.h"
#include "k8s_field.h"

#define MAX_REPLICAS 10000

static int check_kind(const struct kf_ctx *c, const char *want)
{
	const char *kind;
	int ret = kf_str(c, c->d->root, "kind", NULL, false, &kind);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (strcmp(kind, want))
		return kf_error(c, ymap_get(c->d, c->d->root, "kind"), "kind",
				"expected %s, got \"%s\"", want, kind);
	return 0;
}

/* Objects start alike: metadata, then the kind, then a required spec. */
static int parse_head(const struct kf_ctx *c, const char *kind, bool namespaced,
		      struct k8s_meta *meta, yaml_node_t **spec)
{
	int ret = k8s_parse_meta(c->d, c->d->root, namespaced, c->dg, meta);

	if (ret)
		return ret;
	ret = check_kind(c, kind);
	if (!ret && spec)
		ret = kf_map(c, c->d->root, "spec", NULL, true, spec);
	return ret;
}

static int get_protocol(const struct kf_ctx *c, const yaml_node_t *map, const char *parent,
			uint8_t *out)
{
	char path[KF_PATH_MAX];
	const char *s;
	int ret = kf_str(c, map, "protocol", parent, false, &s);

	*out = L4_TCP;
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (k8s_parse_protocol(s, out))
		return kf_error(c, ymap_get(c->d, map, "protocol"),
				kf_join(path, sizeof(path), parent, "protocol"),
				"must be TCP, UDP or SCTP, got \"%s\"", s);
	return 0;
}

static int get_port(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
		    const char *parent, bool required, uint16_t *out)
{
	long long v;
	int ret = kf_int(c, map, key, parent, required, 1, 65535, &v);

	if (!ret)
		*out = (uint16_t)v;
	return ret;
}

/* Optional string copied into *out; absent leaves NULL. */
static int dup_opt_str(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
		       const char *parent, char **out)
{
	const char *s;
	int ret = kf_str(c, map, key, parent, false, &s);

	*out = NULL;
	if (ret == -ENOENT)
		return 0;
	if (!ret) {
		char path[KF_PATH_MAX];

		ret = kf_check_text(c, ymap_get(c->d, map, key),
				    kf_join(path, sizeof(path), parent, "%s", key), s);
	}
	return ret ? ret : kf_strdup(out, s);
}

/* A list item must be a mapping; name it parent[i] in messages. */
static int seq_map_item(const struct kf_ctx *c, const yaml_node_t *seq, size_t i,
			const char *seq_path, char *path, size_t len, yaml_node_t **out)
{
	char got[96];

	*out = yseq_at(c->d, seq, i);
	snprintf(path, len, "%s[%zu]", seq_path, i);
	if (!*out || (*out)->type != YAML_MAPPING_NODE)
		return kf_error(c, *out ? *out : seq, path, "must be a mapping, got %s",
				kf_describe(*out, got, sizeof(got)));
	return 0;
}

/* ---- Namespace ------------------------------------------------------------ */

int k8s_parse_namespace(const struct ydoc *d, struct diag *dg, struct k8s_namespace *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_head(&c, "Namespace", false, &out->meta, NULL);
	if (!ret && !k8s_is_dns1123_label(out->meta.name))
		ret = kf_error(&c, ymap_path(d, d->root, "metadata.name"), "metadata.name",
			       "invalid namespace name \"%s\": must be a DNS-1123 label (lower-case alphanumerics and '-', at most %d characters)",
			       out->meta.name, K8S_LABEL_NAME_MAX);
	if (ret)
		k8s_namespace_free(out);
	return ret;
}

void k8s_namespace_free(struct k8s_namespace *o)
{
	k8s_meta_free(&o->meta);
}

/* ---- Service -------------------------------------------------------------- */

static int parse_service_type(const struct kf_ctx *c, const yaml_node_t *spec,
			      struct k8s_service *out)
{
	static const char *const names[] = {
		[SVC_CLUSTER_IP] = "ClusterIP", [SVC_NODE_PORT] = "NodePort",
		[SVC_LOAD_BALANCER] = "LoadBalancer", [SVC_EXTERNAL_NAME] = "ExternalName",
	};
	const char *type;
	int ret = kf_str(c, spec, "type", "spec", false, &type);

	out->type = SVC_CLUSTER_IP;
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i] && !strcmp(type, names[i])) {
			out->type = i;
			return 0;
		}
	}
	return kf_error(c, ymap_get(c->d, spec, "type"), "spec.type",
			"must be ClusterIP, NodePort, LoadBalancer or ExternalName, got \"%s\"",
			type);
}

static int add_cluster_ip(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
			  const char *s, struct k8s_service *out)
{
	struct ip_addr a;

	if (ip_addr_parse(s, &a))
		return kf_error(c, n, path, "must be an IP address or \"None\", got \"%s\"", s);
	for (size_t i = 0; i < out->nr_cluster_ips; i++) {
		if (out->cluster_ips[i].family == a.family) {
			if (!memcmp(&out->cluster_ips[i], &a, sizeof(a)))
				return 0;	/* clusterIP repeated as clusterIPs[0] */
			return kf_error(c, n, path,
					"\"%s\" is a second address of the same family; clusterIPs holds at most one IPv4 and one IPv6",
					s);
		}
	}
	if (out->nr_cluster_ips == 2)
		return kf_error(c, n, path, "at most two cluster IPs");
	out->cluster_ips[out->nr_cluster_ips++] = a;
	return 0;
}

/* "None" makes a headless Service; "" means "assign one", like the API server. */
static int take_cluster_ip(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
			   const char *s, struct k8s_service *out)
{
	if (!*s)
		return 0;
	if (strcmp(s, "None"))
		return add_cluster_ip(c, n, path, s, out);
	if (out->type != SVC_CLUSTER_IP && out->type != SVC_HEADLESS)
		return kf_error(c, n, path, "\"None\" is only valid for type ClusterIP");
	out->type = SVC_HEADLESS;
	return 0;
}

static int parse_cluster_ips(const struct kf_ctx *c, const yaml_node_t *spec,
			     struct k8s_service *out)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *seq = NULL, *n;
	const char *s;
	int ret;

	ret = kf_str(c, spec, "clusterIP", "spec", false, &s);
	if (!ret)
		ret = take_cluster_ip(c, ymap_get(c->d, spec, "clusterIP"), "spec.clusterIP", s, out);
	if (ret && ret != -ENOENT)
		return ret;
	ret = kf_seq(c, spec, "clusterIPs", "spec", false, &seq);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (out->nr_cluster_ips && yseq_len(seq) &&
	    strcmp(ynode_str(yseq_at(c->d, seq, 0)) ?: "", ynode_str(ymap_get(c->d, spec, "clusterIP"))))
		return kf_error(c, seq, "spec.clusterIPs[0]", "must equal spec.clusterIP");
	for (size_t i = 0; i < yseq_len(seq); i++) {
		n = yseq_at(c->d, seq, i);
		snprintf(path, sizeof(path), "spec.clusterIPs[%zu]", i);
		s = ynode_str(n);
		if (!s || n->type != YAML_SCALAR_NODE)
			return kf_error(c, n, path, "must be a string, got %s",
					kf_describe(n, got, sizeof(got)));
		ret = take_cluster_ip(c, n, path, s, out);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_ip_families(const struct kf_ctx *c, const yaml_node_t *spec,
			     struct k8s_service *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq = NULL, *n;
	const char *s;
	int ret;

	ret = kf_seq(c, spec, "ipFamilies", "spec", false, &seq);
	if (ret == -ENOENT)
		ret = 0;
	for (size_t i = 0; !ret && i < yseq_len(seq); i++) {
		uint8_t fam;

		n = yseq_at(c->d, seq, i);
		s = ynode_str(n);
		snprintf(path, sizeof(path), "spec.ipFamilies[%zu]", i);
		if (s && !strcmp(s, "IPv4"))
			fam = AF_INET;
		else if (s && !strcmp(s, "IPv6"))
			fam = AF_INET6;
		else
			return kf_error(c, n, path, "must be IPv4 or IPv6");
		if (out->nr_ip_families == 2 ||
		    (out->nr_ip_families && out->ip_families[0] == fam))
			return kf_error(c, n, path, "at most one IPv4 and one IPv6");
		if (i < out->nr_cluster_ips && out->cluster_ips[i].family != fam)
			return kf_error(c, n, path, "does not match the family of spec.clusterIPs[%zu]", i);
		out->ip_families[out->nr_ip_families++] = fam;
	}
	if (ret)
		return ret;
	ret = kf_str(c, spec, "ipFamilyPolicy", "spec", false, &s);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (strcmp(s, "SingleStack") && strcmp(s, "PreferDualStack") && strcmp(s, "RequireDualStack"))
		return kf_error(c, ymap_get(c->d, spec, "ipFamilyPolicy"), "spec.ipFamilyPolicy",
				"must be SingleStack, PreferDualStack or RequireDualStack, got \"%s\"", s);
	return kf_strdup(&out->ip_family_policy, s);
}

static int parse_target_port(const struct kf_ctx *c, const yaml_node_t *map,
			     const char *parent, struct k8s_service_port *p)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *n = ymap_get(c->d, map, "targetPort");
	long long v;

	if (ynode_is_null(n)) {
		p->target_port = p->port;	/* the API server defaults it to port */
		return 0;
	}
	kf_join(path, sizeof(path), parent, "targetPort");
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    !ydoc_int(c->d, (const char *)n->data.scalar.value, 1, 65535, &v)) {
		p->target_port = (uint16_t)v;
		return 0;
	}
	if (n->type == YAML_SCALAR_NODE && k8s_is_port_name(ynode_str(n)))
		return kf_strdup(&p->target_port_name, ynode_str(n));
	return kf_error(c, n, path,
			"must be a port number in 1..65535 or a container port name, got %s",
			kf_describe(n, got, sizeof(got)));
}

static int parse_service_port(const struct kf_ctx *c, const yaml_node_t *map,
			      const char *path, struct k8s_service_port *p)
{
	char fpath[KF_PATH_MAX];
	int ret;

	ret = dup_opt_str(c, map, "name", path, &p->name);
	if (!ret && p->name && !k8s_is_dns1123_label(p->name))
		ret = kf_error(c, ymap_get(c->d, map, "name"), kf_join(fpath, sizeof(fpath), path, "name"),
			       "invalid port name \"%s\": must be a DNS-1123 label", p->name);
	if (!ret)
		ret = get_port(c, map, "port", path, true, &p->port);
	if (!ret)
		ret = get_protocol(c, map, path, &p->protocol);
	if (!ret)
		ret = dup_opt_str(c, map, "appProtocol", path, &p->app_protocol);
	if (!ret)
		ret = parse_target_port(c, map, path, p);
	return ret;
}

/* Names are required with several ports and must be unique, as are port/protocol pairs. */
static int check_service_port(const struct kf_ctx *c, const yaml_node_t *item,
			      const char *path, const struct k8s_service *svc, size_t i)
{
	const struct k8s_service_port *p = &svc->ports[i];
	char fpath[KF_PATH_MAX];

	if (!p->name && svc->nr_ports > 1)
		return kf_error(c, item, kf_join(fpath, sizeof(fpath), path, "name"),
				"required when a Service has more than one port");
	for (size_t j = 0; j < i; j++) {
		const struct k8s_service_port *q = &svc->ports[j];

		if (p->name && q->name && !strcmp(p->name, q->name))
			return kf_error(c, item, kf_join(fpath, sizeof(fpath), path, "name"),
					"duplicate port name \"%s\" (also spec.ports[%zu])", p->name, j);
		if (p->port == q->port && p->protocol == q->protocol)
			return kf_error(c, item, kf_join(fpath, sizeof(fpath), path, "port"),
					"duplicate port %u/%s (also spec.ports[%zu])", p->port,
					l4_proto_name(p->protocol), j);
	}
	return 0;
}

static int parse_service_ports(const struct kf_ctx *c, const yaml_node_t *spec,
			       struct k8s_service *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = kf_seq(c, spec, "ports", "spec", false, &seq);
	if (ret == -EINVAL)
		return ret;
	n = ret ? 0 : yseq_len(seq);
	if (!n) {
		if (out->type == SVC_HEADLESS || out->type == SVC_EXTERNAL_NAME)
			return 0;
		return kf_error(c, ret ? spec : seq, "spec.ports", "required: at least one port");
	}
	out->ports = calloc(n, sizeof(*out->ports));
	if (!out->ports)
		return -ENOMEM;
	out->nr_ports = n;
	for (size_t i = 0; i < n; i++) {
		ret = seq_map_item(c, seq, i, "spec.ports", path, sizeof(path), &item);
		if (!ret)
			ret = parse_service_port(c, item, path, &out->ports[i]);
		if (!ret)
			ret = check_service_port(c, item, path, out, i);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Which endpoints this node's clients use. Values the API server would not
 * accept are warned about and ignored: kube-proxy then treats the Service as
 * having neither field, and so do we.
 */
static int parse_traffic_fields(const struct kf_ctx *c, const yaml_node_t *spec,
				struct k8s_service *out)
{
	static const char *const dists[] = {
		[TRAFFIC_DIST_PREFER_CLOSE] = "PreferClose",
		[TRAFFIC_DIST_PREFER_SAME_ZONE] = "PreferSameZone",
		[TRAFFIC_DIST_PREFER_SAME_NODE] = "PreferSameNode",
	};
	const char *s;
	int ret;

	ret = kf_str(c, spec, "internalTrafficPolicy", "spec", false, &s);
	if (ret == -EINVAL)
		return ret;
	if (!ret) {
		if (!strcmp(s, "Local"))
			out->internal_traffic_policy = TRAFFIC_POLICY_LOCAL;
		else if (strcmp(s, "Cluster"))
			kf_warn(c, ymap_get(c->d, spec, "internalTrafficPolicy"),
				"spec.internalTrafficPolicy",
				"must be Cluster or Local, got \"%s\"; Cluster is used", s);
	}
	ret = kf_str(c, spec, "trafficDistribution", "spec", false, &s);
	if (ret == -EINVAL)
		return ret;
	if (ret)
		return 0;
	for (size_t i = 1; i < sizeof(dists) / sizeof(dists[0]); i++) {
		if (!strcmp(s, dists[i])) {
			out->traffic_distribution = i;
			return 0;
		}
	}
	kf_warn(c, ymap_get(c->d, spec, "trafficDistribution"), "spec.trafficDistribution",
		"must be PreferClose, PreferSameZone or PreferSameNode, got \"%s\"; ignored", s);
	return 0;
}

/*
 * spec.sessionAffinity None | ClientIP, and its timeout. The API server
 * rejects a timeout outside 1..86400 and a sessionAffinityConfig beside
 * None; so do we.
 */
static int parse_session_affinity(const struct kf_ctx *c, const yaml_node_t *spec,
				  struct k8s_service *out)
{
	const char *path = "spec.sessionAffinityConfig.clientIP";
	yaml_node_t *cfg = NULL, *cip = NULL;
	long long t = K8S_AFFINITY_TIMEOUT_DEFAULT;
	const char *s = "None";
	int ret;

	ret = kf_str(c, spec, "sessionAffinity", "spec", false, &s);
	if (ret && ret != -ENOENT)
		return ret;
	if (strcmp(s, "None") && strcmp(s, "ClientIP"))
		return kf_error(c, ymap_get(c->d, spec, "sessionAffinity"), "spec.sessionAffinity",
				"must be None or ClientIP, got \"%s\"", s);
	ret = kf_map(c, spec, "sessionAffinityConfig", "spec", false, &cfg);
	if (ret == -ENOENT)
		cfg = NULL;
	else if (ret)
		return ret;
	if (cfg && !strcmp(s, "None"))
		return kf_error(c, cfg, "spec.sessionAffinityConfig",
				"must not be set when spec.sessionAffinity is None");
	if (cfg) {
		ret = kf_map(c, cfg, "clientIP", "spec.sessionAffinityConfig", false, &cip);
		if (ret && ret != -ENOENT)
			return ret;
	}
	if (cip) {
		ret = kf_int(c, cip, "timeoutSeconds", path, false, 1, K8S_AFFINITY_TIMEOUT_MAX, &t);
		if (ret == -ENOENT)
			t = K8S_AFFINITY_TIMEOUT_DEFAULT;
		else if (ret)
			return ret;
	}
	out->affinity_timeout = strcmp(s, "ClientIP") ? 0 : (uint32_t)t;
	return 0;
}

static int check_service_name(const struct kf_ctx *c, const struct k8s_service *s)
{
	const char *name = s->meta.name;

	/* Service names are DNS-1035 labels: they become DNS names. */
	if (k8s_is_dns1123_label(name) && name[0] >= 'a' && name[0] <= 'z')
		return 0;
	return kf_error(c, ymap_path(c->d, c->d->root, "metadata.name"), "metadata.name",
			"invalid Service name \"%s\": must start with a letter, then lower-case alphanumerics or '-', at most %d characters",
			name, K8S_LABEL_NAME_MAX);
}

int k8s_parse_service(const struct ydoc *d, struct diag *dg, struct k8s_service *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *spec;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_head(&c, "Service", true, &out->meta, &spec);
	if (!ret)
		ret = check_service_name(&c, out);
	if (!ret)
		ret = parse_service_type(&c, spec, out);
	if (!ret)
		ret = parse_cluster_ips(&c, spec, out);
	if (!ret)
		ret = parse_ip_families(&c, spec, out);
	if (!ret)
		ret = k8s_get_string_map(&c, spec, "selector", "spec", true, &out->selector);
	if (!ret)
		ret = parse_service_ports(&c, spec, out);
	if (!ret)
		ret = parse_traffic_fields(&c, spec, out);
	if (!ret)
		ret = parse_session_affinity(&c, spec, out);
	if (ret)
		k8s_service_free(out);
	return ret;
}

void k8s_service_free(struct k8s_service *o)
{
	k8s_meta_free(&o->meta);
	free(o->ip_family_policy);
	k8s_labels_free(&o->selector);
	for (size_t i = 0; i < o->nr_ports; i++) {
		free(o->ports[i].name);
		free(o->ports[i].app_protocol);
		free(o->ports[i].target_port_name);
	}
	free(o->ports);
	memset(o, 0, sizeof(*o));
}

/* ---- Pod spec (Pod and Deployment template) ------------------------------- */

static int parse_args(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
		      struct k8s_container *ct)
{
	char apath[KF_PATH_MAX], got[96];
	yaml_node_t *seq = NULL, *n;
	int ret = kf_seq(c, map, "args", path, false, &seq);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	ct->args = calloc(yseq_len(seq) + 1, sizeof(*ct->args));
	if (!ct->args)
		return -ENOMEM;
	for (size_t i = 0; i < yseq_len(seq); i++) {
		n = yseq_at(c->d, seq, i);
		if (!n || n->type != YAML_SCALAR_NODE)
			return kf_error(c, n ? n : seq, kf_join(apath, sizeof(apath), path, "args[%zu]", i),
					"must be a string, got %s", kf_describe(n, got, sizeof(got)));
		ct->args[i] = strdup((const char *)n->data.scalar.value);
		if (!ct->args[i])
			return -ENOMEM;
		ct->nr_args++;
	}
	return 0;
}

static int parse_container_port(const struct kf_ctx *c, const yaml_node_t *map,
				const char *path, struct k8s_container_port *p)
{
	char fpath[KF_PATH_MAX];
	int ret = get_port(c, map, "containerPort", path, true, &p->port);

	if (!ret)
		ret = get_protocol(c, map, path, &p->protocol);
	if (!ret)
		ret = dup_opt_str(c, map, "name", path, &p->name);
	if (!ret && p->name && !k8s_is_port_name(p->name))
		ret = kf_error(c, ymap_get(c->d, map, "name"), kf_join(fpath, sizeof(fpath), path, "name"),
			       "invalid port name \"%s\": at most 15 lower-case alphanumerics or '-', with a letter",
			       p->name);
	return ret;
}

static bool port_name_used(const struct k8s_pod_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nr_containers; i++)
		for (size_t j = 0; j < spec->containers[i].nr_ports; j++)
			if (spec->containers[i].ports[j].name &&
			    !strcmp(spec->containers[i].ports[j].name, name))
				return true;
	return false;
}

static bool port_name_in(const struct k8s_container *ct, size_t nr, const char *name)
{
	for (size_t j = 0; j < nr; j++)
		if (ct->ports[j].name && !strcmp(ct->ports[j].name, name))
			return true;
	return false;
}

static int parse_container_ports(const struct kf_ctx *c, const yaml_node_t *map,
				 const char *path, struct k8s_pod_spec *spec,
				 struct k8s_container *ct)
{
	char ppath[KF_PATH_MAX], seq_path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	int ret = kf_seq(c, map, "ports", path, false, &seq);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	ct->ports = calloc(yseq_len(seq) + 1, sizeof(*ct->ports));
	if (!ct->ports)
		return -ENOMEM;
	kf_join(seq_path, sizeof(seq_path), path, "ports");
	for (size_t i = 0; i < yseq_len(seq); i++) {
		struct k8s_container_port *p = &ct->ports[i];

		ret = seq_map_item(c, seq, i, seq_path, ppath, sizeof(ppath), &item);
		ct->nr_ports++;	/* counted first so a half-built port is freed */
		if (!ret)
			ret = parse_container_port(c, item, ppath, p);
		if (ret)
			return ret;
		/* Named targetPorts resolve by name across the whole pod. */
		if (p->name && (port_name_used(spec, p->name) || port_name_in(ct, i, p->name)))
			return kf_error(c, ymap_get(c->d, item, "name"),
					kf_join(seq_path, sizeof(seq_path), ppath, "name"),
					"duplicate port name \"%s\" in this pod", p->name);
	}
	return 0;
}

static int parse_container(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			   struct k8s_pod_spec *spec, struct k8s_container *ct)
{
	char fpath[KF_PATH_MAX];
	int ret = dup_opt_str(c, map, "name", path, &ct->name);

	if (!ret && !ct->name)
		ret = kf_error(c, map, kf_join(fpath, sizeof(fpath), path, "name"), "required");
	if (!ret && !k8s_is_dns1123_label(ct->name))
		ret = kf_error(c, ymap_get(c->d, map, "name"), kf_join(fpath, sizeof(fpath), path, "name"),
			       "invalid container name \"%s\": must be a DNS-1123 label", ct->name);
	for (size_t i = 0; !ret && i < spec->nr_containers; i++)
		if (!strcmp(spec->containers[i].name, ct->name))
			ret = kf_error(c, ymap_get(c->d, map, "name"), kf_join(fpath, sizeof(fpath), path, "name"),
				       "duplicate container name \"%s\"", ct->name);
	if (!ret)
		ret = parse_args(c, map, path, ct);
	if (!ret)
		ret = parse_container_ports(c, map, path, spec, ct);
	return ret;
}

static void container_free(struct k8s_container *ct)
{
	free(ct->name);
	for (size_t i = 0; i < ct->nr_args; i++)
		free(ct->args[i]);
	free(ct->args);
	for (size_t i = 0; i < ct->nr_ports; i++)
		free(ct->ports[i].name);
	free(ct->ports);
	memset(ct, 0, sizeof(*ct));
}

static void pod_spec_free(struct k8s_pod_spec *s)
{
	k8s_labels_free(&s->labels);
	k8s_labels_free(&s->annotations);
	for (size_t i = 0; i < s->nr_containers; i++)
		container_free(&s->containers[i]);
	free(s->containers);
	free(s->node_name);
	memset(s, 0, sizeof(*s));
}

static int parse_pod_spec(const struct kf_ctx *c, const yaml_node_t *spec, const char *path,
			  struct k8s_pod_spec *out)
{
	char seq_path[KF_PATH_MAX], cpath[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	int ret;

	ret = kf_seq(c, spec, "containers", path, true, &seq);
	if (!ret && !yseq_len(seq))
		ret = kf_error(c, seq, kf_join(cpath, sizeof(cpath), path, "containers"),
			       "at least one container is required");
	if (ret)
		return ret;
	out->containers = calloc(yseq_len(seq), sizeof(*out->containers));
	if (!out->containers)
		return -ENOMEM;
	kf_join(seq_path, sizeof(seq_path), path, "containers");
	for (size_t i = 0; i < yseq_len(seq); i++) {
		struct k8s_container ct = { 0 };

		ret = seq_map_item(c, seq, i, seq_path, cpath, sizeof(cpath), &item);
		if (!ret)
			ret = parse_container(c, item, cpath, out, &ct);
		if (ret) {
			container_free(&ct);
			return ret;
		}
		out->containers[out->nr_containers++] = ct;
	}
	return dup_opt_str(c, spec, "nodeName", path, &out->node_name);
}

/* ---- Pod ------------------------------------------------------------------ */

static int add_pod_ip(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
		      const char *s, struct k8s_pod *out)
{
	struct ip_addr a;

	if (ip_addr_parse(s, &a))
		return kf_error(c, n, path, "must be an IP address, got \"%s\"", s);
	for (size_t i = 0; i < out->nr_pod_ips; i++)
		if (!memcmp(&out->pod_ips[i], &a, sizeof(a)))
			return 0;	/* podIP repeated as podIPs[0] */
	if (out->nr_pod_ips == 2)
		return kf_error(c, n, path, "at most two pod IPs");
	out->pod_ips[out->nr_pod_ips++] = a;
	return 0;
}

static int parse_pod_ips(const struct kf_ctx *c, const yaml_node_t *status, struct k8s_pod *out)
{
	char path[KF_PATH_MAX], ipath[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	const char *s;
	int ret;

	ret = kf_str(c, status, "podIP", "status", false, &s);
	if (!ret)
		ret = add_pod_ip(c, ymap_get(c->d, status, "podIP"), "status.podIP", s, out);
	if (ret && ret != -ENOENT)
		return ret;
	ret = kf_seq(c, status, "podIPs", "status", false, &seq);
	if (ret == -ENOENT)
		return 0;
	for (size_t i = 0; !ret && i < yseq_len(seq); i++) {
		ret = seq_map_item(c, seq, i, "status.podIPs", path, sizeof(path), &item);
		if (!ret)
			ret = kf_str(c, item, "ip", path, true, &s);
		if (!ret)
			ret = add_pod_ip(c, ymap_get(c->d, item, "ip"),
					 kf_join(ipath, sizeof(ipath), path, "ip"), s, out);
	}
	return ret;
}

static int parse_pod_ready(const struct kf_ctx *c, const yaml_node_t *status, struct k8s_pod *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	const char *type, *st;
	int ret = kf_seq(c, status, "conditions", "status", false, &seq);

	if (ret == -ENOENT)
		return 0;
	for (size_t i = 0; !ret && i < yseq_len(seq); i++) {
		ret = seq_map_item(c, seq, i, "status.conditions", path, sizeof(path), &item);
		if (!ret)
			ret = kf_str(c, item, "type", path, true, &type);
		if (!ret)
			ret = kf_str(c, item, "status", path, true, &st);
		if (!ret && !strcmp(type, "Ready"))
			out->ready = !strcmp(st, "True");
	}
	return ret;
}

int k8s_parse_pod(const struct ydoc *d, struct diag *dg, struct k8s_pod *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *spec, *status = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_head(&c, "Pod", true, &out->meta, &spec);
	if (!ret)
		ret = parse_pod_spec(&c, spec, "spec", &out->spec);
	if (!ret) {
		ret = kf_map(&c, d->root, "status", NULL, false, &status);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (!ret && status)
		ret = parse_pod_ips(&c, status, out);
	if (!ret && status)
		ret = parse_pod_ready(&c, status, out);
	if (ret)
		k8s_pod_free(out);
	return ret;
}

void k8s_pod_free(struct k8s_pod *o)
{
	k8s_meta_free(&o->meta);
	pod_spec_free(&o->spec);
	memset(o, 0, sizeof(*o));
}

/* ---- Deployment ----------------------------------------------------------- */

static int parse_selector(const struct kf_ctx *c, const yaml_node_t *spec,
			  struct k8s_deployment *out)
{
	yaml_node_t *sel;
	int ret = kf_map(c, spec, "selector", "spec", true, &sel);

	if (ret)
		return ret;
	if (ymap_get(c->d, sel, "matchExpressions"))
		kf_warn(c, ymap_get(c->d, sel, "matchExpressions"), "spec.selector.matchExpressions",
			"not supported, ignored");
	ret = k8s_get_string_map(c, sel, "matchLabels", "spec.selector", true, &out->match_labels);
	if (!ret && !out->match_labels.nr)
		ret = kf_error(c, sel, "spec.selector.matchLabels", "required: at least one label");
	return ret;
}

static int parse_template(const struct kf_ctx *c, const yaml_node_t *spec,
			  struct k8s_deployment *out)
{
	yaml_node_t *tmpl, *meta = NULL, *pspec;
	int ret = kf_map(c, spec, "template", "spec", true, &tmpl);

	if (!ret) {
		ret = kf_map(c, tmpl, "metadata", "spec.template", false, &meta);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (!ret && meta)
		ret = k8s_get_string_map(c, meta, "labels", "spec.template.metadata", true,
					 &out->template.labels);
	if (!ret && meta)
		ret = k8s_get_string_map(c, meta, "annotations", "spec.template.metadata", false,
					 &out->template.annotations);
	if (!ret)
		ret = kf_map(c, tmpl, "spec", "spec.template", true, &pspec);
	if (!ret)
		ret = parse_pod_spec(c, pspec, "spec.template.spec", &out->template);
	if (!ret && !k8s_labels_match(&out->match_labels, &out->template.labels))
		ret = kf_error(c, ymap_path(c->d, spec, "selector"), "spec.selector",
			       "does not match spec.template.metadata.labels: the Deployment would select none of its pods");
	return ret;
}

int k8s_parse_deployment(const struct ydoc *d, struct diag *dg, struct k8s_deployment *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *spec;
	long long replicas = 1;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_head(&c, "Deployment", true, &out->meta, &spec);
	if (!ret) {
		ret = kf_int(&c, spec, "replicas", "spec", false, 0, MAX_REPLICAS, &replicas);
		if (ret == -ENOENT)
			ret = 0;
		out->replicas = (int)replicas;
	}
	if (!ret)
		ret = parse_selector(&c, spec, out);
	if (!ret)
		ret = parse_template(&c, spec, out);
	if (ret)
		k8s_deployment_free(out);
	return ret;
}

void k8s_deployment_free(struct k8s_deployment *o)
{
	k8s_meta_free(&o->meta);
	k8s_labels_free(&o->match_labels);
	pod_spec_free(&o->template);
	memset(o, 0, sizeof(*o));
}

/* ---- EndpointSlice -------------------------------------------------------- */

static int parse_address_type(const struct kf_ctx *c, struct k8s_endpoint_slice *out)
{
	const char *s;
	int ret = kf_str(c, c->d->root, "addressType", NULL, true, &s);

	if (ret)
		return ret;
	if (!strcmp(s, "IPv4"))
		out->address_family = AF_INET;
	else if (!strcmp(s, "IPv6"))
		out->address_family = AF_INET6;
	else if (!strcmp(s, "FQDN"))
		out->address_family = 0;
	else
		return kf_error(c, ymap_get(c->d, c->d->root, "addressType"), "addressType",
				"must be IPv4, IPv6 or FQDN, got \"%s\"", s);
	return 0;
}

static int parse_endpoint_addresses(const struct kf_ctx *c, const yaml_node_t *map,
				    const char *path, uint8_t family, struct k8s_endpoint *ep)
{
	char apath[KF_PATH_MAX];
	yaml_node_t *seq = NULL, *n;
	int ret = kf_seq(c, map, "addresses", path, true, &seq);

	if (!ret && !yseq_len(seq))
		ret = kf_error(c, seq, kf_join(apath, sizeof(apath), path, "addresses"),
			       "at least one address is required");
	if (!ret && yseq_len(seq) > K8S_MAX_ENDPOINT_ADDRESSES)
		ret = kf_error(c, seq, kf_join(apath, sizeof(apath), path, "addresses"),
			       "has %zu items, at most %d allowed", yseq_len(seq),
			       K8S_MAX_ENDPOINT_ADDRESSES);
	/* FQDN endpoints carry names, not addresses: nothing to route to. */
	if (ret || !family)
		return ret;
	ep->addresses = calloc(yseq_len(seq), sizeof(*ep->addresses));
	if (!ep->addresses)
		return -ENOMEM;
	for (size_t i = 0; i < yseq_len(seq); i++) {
		struct ip_addr *a = &ep->addresses[ep->nr_addresses];

		n = yseq_at(c->d, seq, i);
		kf_join(apath, sizeof(apath), path, "addresses[%zu]", i);
		if (ip_addr_parse(ynode_str(n), a) || a->family != family)
			return kf_error(c, n, apath, "must be an %s address, got \"%s\"",
					family == AF_INET ? "IPv4" : "IPv6", ynode_str(n) ?: "");
		ep->nr_addresses++;
	}
	return 0;
}

static int parse_endpoint_conditions(const struct kf_ctx *c, const yaml_node_t *map,
				     const char *path, struct k8s_endpoint *ep)
{
	char cpath[KF_PATH_MAX];
	yaml_node_t *cond;
	int ret;

	/* discovery.k8s.io/v1: a nil ready or serving means true. */
	ep->ready = ep->serving = true;
	ep->terminating = false;
	ret = kf_map(c, map, "conditions", path, false, &cond);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	kf_join(cpath, sizeof(cpath), path, "conditions");
	ret = kf_bool(c, cond, "ready", cpath, false, &ep->ready);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret && (ret = kf_bool(c, cond, "serving", cpath, false, &ep->serving)) == -ENOENT)
		ret = 0;
	if (!ret && (ret = kf_bool(c, cond, "terminating", cpath, false, &ep->terminating)) == -ENOENT)
		ret = 0;
	return ret;
}

static int parse_target_ref(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			    struct k8s_endpoint *ep)
{
	char rpath[KF_PATH_MAX];
	yaml_node_t *ref;
	int ret = kf_map(c, map, "targetRef", path, false, &ref);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	kf_join(rpath, sizeof(rpath), path, "targetRef");
	ret = dup_opt_str(c, ref, "kind", rpath, &ep->target_kind);
	if (!ret)
		ret = dup_opt_str(c, ref, "namespace", rpath, &ep->target_namespace);
	if (!ret)
		ret = dup_opt_str(c, ref, "name", rpath, &ep->target_name);
	if (!ret)
		ret = dup_opt_str(c, ref, "uid", rpath, &ep->target_uid);
	return ret;
}

void k8s_strings_free(struct k8s_strings *l)
{
	for (size_t i = 0; i < l->nr; i++)
		free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

bool k8s_strings_has(const struct k8s_strings *l, const char *s)
{
	for (size_t i = 0; s && i < l->nr; i++)
		if (!strcmp(l->items[i], s))
			return true;
	return false;
}

/* hints.<key>: [{name: ...}, ...] (forZones, forNodes) into *out. */
static int parse_hint_names(const struct kf_ctx *c, const yaml_node_t *hints, const char *hpath,
			    const char *key, struct k8s_strings *out)
{
	char path[KF_PATH_MAX], lpath[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	const char *name;
	int ret = kf_seq(c, hints, key, hpath, false, &seq);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	out->items = calloc(yseq_len(seq) + 1, sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;
	kf_join(lpath, sizeof(lpath), hpath, "%s", key);
	for (size_t i = 0; i < yseq_len(seq); i++) {
		ret = seq_map_item(c, seq, i, lpath, path, sizeof(path), &item);
		if (!ret)
			ret = kf_str(c, item, "name", path, true, &name);
		if (ret)
			return ret;
		out->items[out->nr] = strdup(name);
		if (!out->items[out->nr])
			return -ENOMEM;
		out->nr++;
	}
	return 0;
}

/* zone and hints: what topology-aware routing (trafficDistribution) reads. */
static int parse_endpoint_topology(const struct kf_ctx *c, const yaml_node_t *map,
				   const char *path, struct k8s_endpoint *ep)
{
	char hpath[KF_PATH_MAX];
	yaml_node_t *hints;
	int ret = dup_opt_str(c, map, "zone", path, &ep->zone);

	if (ret)
		return ret;
	ret = kf_map(c, map, "hints", path, false, &hints);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	kf_join(hpath, sizeof(hpath), path, "hints");
	ret = parse_hint_names(c, hints, hpath, "forZones", &ep->hint_zones);
	if (!ret)
		ret = parse_hint_names(c, hints, hpath, "forNodes", &ep->hint_nodes);
	return ret;
}

static int parse_endpoint(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			  uint8_t family, struct k8s_endpoint *ep)
{
	int ret = parse_endpoint_addresses(c, map, path, family, ep);

	if (!ret)
		ret = parse_endpoint_conditions(c, map, path, ep);
	if (!ret)
		ret = dup_opt_str(c, map, "nodeName", path, &ep->node_name);
	if (!ret)
		ret = parse_target_ref(c, map, path, ep);
	if (!ret)
		ret = parse_endpoint_topology(c, map, path, ep);
	return ret;
}

static void endpoint_free(struct k8s_endpoint *ep)
{
	free(ep->addresses);
	free(ep->node_name);
	free(ep->target_kind);
	free(ep->target_namespace);
	free(ep->target_name);
	free(ep->target_uid);
	free(ep->zone);
	k8s_strings_free(&ep->hint_zones);
	k8s_strings_free(&ep->hint_nodes);
	memset(ep, 0, sizeof(*ep));
}

static int parse_endpoints(const struct kf_ctx *c, struct k8s_endpoint_slice *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	int ret = kf_seq(c, c->d->root, "endpoints", NULL, false, &seq);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	/* The API server's limit; past it a slice is someone's amplifier, not a slice. */
	if (yseq_len(seq) > K8S_MAX_SLICE_ENDPOINTS)
		return kf_error(c, seq, "endpoints", "has %zu items, at most %d allowed",
				yseq_len(seq), K8S_MAX_SLICE_ENDPOINTS);
	out->endpoints = calloc(yseq_len(seq) + 1, sizeof(*out->endpoints));
	if (!out->endpoints)
		return -ENOMEM;
	for (size_t i = 0; i < yseq_len(seq); i++) {
		struct k8s_endpoint *ep = &out->endpoints[out->nr_endpoints];

		ret = seq_map_item(c, seq, i, "endpoints", path, sizeof(path), &item);
		if (!ret)
			ret = parse_endpoint(c, item, path, out->address_family, ep);
		if (ret) {
			endpoint_free(ep);
			return ret;
		}
		out->nr_endpoints++;
	}
	return 0;
}

static int parse_slice_port(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			    struct k8s_endpoint_port *p)
{
	/* A missing port means "all ports" (0); a missing name means the unnamed port. */
	int ret = get_port(c, map, "port", path, false, &p->port);

	if (ret == -ENOENT)
		ret = 0;
	if (!ret)
		ret = get_protocol(c, map, path, &p->protocol);
	if (!ret)
		ret = dup_opt_str(c, map, "name", path, &p->name);
	if (!ret)
		ret = dup_opt_str(c, map, "appProtocol", path, &p->app_protocol);
	return ret;
}

static int parse_slice_ports(const struct kf_ctx *c, struct k8s_endpoint_slice *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	int ret = kf_seq(c, c->d->root, "ports", NULL, false, &seq);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	out->ports = calloc(yseq_len(seq) + 1, sizeof(*out->ports));
	if (!out->ports)
		return -ENOMEM;
	for (size_t i = 0; i < yseq_len(seq); i++) {
		ret = seq_map_item(c, seq, i, "ports", path, sizeof(path), &item);
		out->nr_ports++;	/* counted first so a half-built port is freed */
		if (!ret)
			ret = parse_slice_port(c, item, path, &out->ports[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int k8s_parse_endpoint_slice(const struct ydoc *d, struct diag *dg,
			     struct k8s_endpoint_slice *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	const char *svc;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_head(&c, "EndpointSlice", true, &out->meta, NULL);
	if (!ret)
		ret = parse_address_type(&c, out);
	if (!ret && (svc = k8s_label_get(&out->meta.labels, "kubernetes.io/service-name")))
		ret = kf_strdup(&out->service_name, svc);
	if (!ret)
		ret = parse_endpoints(&c, out);
	if (!ret)
		ret = parse_slice_ports(&c, out);
	if (ret)
		k8s_endpoint_slice_free(out);
	return ret;
}

void k8s_endpoint_slice_free(struct k8s_endpoint_slice *o)
{
	k8s_meta_free(&o->meta);
	free(o->service_name);
	for (size_t i = 0; i < o->nr_endpoints; i++)
		endpoint_free(&o->endpoints[i]);
	free(o->endpoints);
	for (size_t i = 0; i < o->nr_ports; i++) {
		free(o->ports[i].name);
		free(o->ports[i].app_protocol);
	}
	free(o->ports);
	memset(o, 0, sizeof(*o));
}
