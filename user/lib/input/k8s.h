/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes core objects as gammad reads them: Namespace, Service, Pod,
 * Deployment, EndpointSlice. Parsed from YAML documents (yaml_doc.h) into
 * plain structs that own their strings. Fields the API server would prune
 * are ignored; values of the wrong type are reported through diag with
 * file, line and field, and the object is dropped.
 *
 * The Gateway API objects live in gapi.h; manifest.h loads files and
 * directories and dispatches documents by apiVersion/kind.
 */
#ifndef GAMMAD_K8S_H
#define GAMMAD_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/ip_addr.h"
#include "yaml_doc.h"

/* Kubernetes name limits (DNS-1123 label / subdomain). */
#define K8S_NAME_MAX 253
#define K8S_LABEL_NAME_MAX 63
/* EndpointSlice limits the API server enforces (endpoints, addresses of one). */
#define K8S_MAX_SLICE_ENDPOINTS 1000
#define K8S_MAX_ENDPOINT_ADDRESSES 100

enum l4_proto { L4_TCP = 6, L4_UDP = 17, L4_SCTP = 132 };

/* Where an object came from, for diagnostics and statuses. */
struct src_loc {
	char *file;
	int line;
};

struct k8s_label {
	char *key;
	char *value;
};

struct k8s_labels {
	struct k8s_label *items;
	size_t nr;
	bool sorted;		/* by key (as parsed): lookups are binary searches */
};

struct k8s_meta {
	char *namespace;	/* "default" when a namespaced object omits it */
	char *name;
	char *uid;		/* may be NULL */
	long long generation;	/* 0 when absent */
	int64_t creation_time;	/* seconds since the epoch; 0 when absent */
	struct k8s_labels labels;
	struct src_loc loc;
	struct k8s_labels annotations;	/* metadata.annotations */
};

struct k8s_strings {
	char **items;
	size_t nr;
};

/* s is one of l's strings. */
bool k8s_strings_has(const struct k8s_strings *l, const char *s);
void k8s_strings_free(struct k8s_strings *l);

struct k8s_namespace {
	struct k8s_meta meta;
};

enum k8s_service_type {
	SVC_CLUSTER_IP,
	SVC_HEADLESS,		/* clusterIP: None */
	SVC_NODE_PORT,
	SVC_LOAD_BALANCER,
	SVC_EXTERNAL_NAME,
};

struct k8s_service_port {
	char *name;		/* may be NULL for a single unnamed port */
	uint16_t port;
	uint8_t protocol;	/* enum l4_proto, default TCP */
	char *app_protocol;	/* may be NULL */
	/* targetPort: a number, or a name resolved against container ports */
	uint16_t target_port;	/* 0 when target_port_name is set */
	char *target_port_name;
};

/* spec.internalTrafficPolicy */
enum k8s_traffic_policy {
	TRAFFIC_POLICY_CLUSTER,		/* default: every endpoint */
	TRAFFIC_POLICY_LOCAL,		/* only endpoints on this node */
};

/* spec.trafficDistribution */
enum k8s_traffic_dist {
	TRAFFIC_DIST_NONE,
	TRAFFIC_DIST_PREFER_CLOSE,	/* same zone first (an alias of PreferSameZone) */
	TRAFFIC_DIST_PREFER_SAME_ZONE,
	TRAFFIC_DIST_PREFER_SAME_NODE,	/* same node first, then same zone */
};

struct k8s_service {
	struct k8s_meta meta;
	enum k8s_service_type type;
	struct ip_addr cluster_ips[2];	/* spec.clusterIPs (or clusterIP) */
	size_t nr_cluster_ips;
	uint8_t ip_families[2];		/* spec.ipFamilies as AF_*, may be empty */
	size_t nr_ip_families;
	char *ip_family_policy;		/* SingleStack, PreferDualStack, RequireDualStack */
	struct k8s_labels selector;	/* empty: no selector (manual endpoints) */
	struct k8s_service_port *ports;
	size_t nr_ports;
	/* Which endpoints a connection from this node may use. */
	enum k8s_traffic_policy internal_traffic_policy;
	enum k8s_traffic_dist traffic_distribution;
	/*
	 * spec.sessionAffinity ClientIP: seconds a client keeps its endpoint
	 * after its last connection (sessionAffinityConfig.clientIP.timeoutSeconds,
	 * default K8S_AFFINITY_TIMEOUT_DEFAULT); 0: None.
	 */
	uint32_t affinity_timeout;
};

#define K8S_AFFINITY_TIMEOUT_DEFAULT 10800	/* 3 h, the API server's default */
#define K8S_AFFINITY_TIMEOUT_MAX 86400		/* the API server's validation limit */

struct k8s_container_port {
	char *name;		/* may be NULL */
	uint16_t port;
	uint8_t protocol;
};

struct k8s_container {
	char *name;
	char **args;
	size_t nr_args;
	struct k8s_container_port *ports;
	size_t nr_ports;
};

struct k8s_pod_spec {
	struct k8s_labels labels;	/* template.metadata.labels (Deployment) */
	struct k8s_container *containers;
	size_t nr_containers;
	char *node_name;
	struct k8s_labels annotations;	/* template.metadata.annotations (Deployment) */
};

struct k8s_pod {
	struct k8s_meta meta;
	struct k8s_pod_spec spec;
	struct ip_addr pod_ips[2];	/* status.podIPs (or podIP) */
	size_t nr_pod_ips;
	bool ready;			/* status.conditions Ready=True */
};

struct k8s_deployment {
	struct k8s_meta meta;
	int replicas;				/* default 1 */
	struct k8s_labels match_labels;		/* spec.selector.matchLabels */
	struct k8s_pod_spec template;
};

struct k8s_endpoint {
	struct ip_addr *addresses;
	size_t nr_addresses;
	bool ready, serving, terminating;	/* conditions; ready/serving default true */
	char *node_name;
	char *target_kind, *target_namespace, *target_name, *target_uid;
	char *zone;				/* may be NULL */
	struct k8s_strings hint_zones;		/* hints.forZones[].name */
	struct k8s_strings hint_nodes;		/* hints.forNodes[].name */
};

struct k8s_endpoint_port {
	char *name;
	uint16_t port;
	uint8_t protocol;
	char *app_protocol;
};

struct k8s_endpoint_slice {
	struct k8s_meta meta;
	char *service_name;		/* label kubernetes.io/service-name */
	uint8_t address_family;		/* addressType IPv4/IPv6 as AF_*, 0 for FQDN */
	struct k8s_endpoint *endpoints;
	size_t nr_endpoints;
	struct k8s_endpoint_port *ports;
	size_t nr_ports;
};

/*
 * Parsers: fill *out from one document's root. Return 0, or a negative errno
 * after reporting the reason (file:line: field: message) through diag; on
 * error *out is left freed.
 */
int k8s_parse_namespace(const struct ydoc *d, struct diag *dg, struct k8s_namespace *out);
int k8s_parse_service(const struct ydoc *d, struct diag *dg, struct k8s_service *out);
int k8s_parse_pod(const struct ydoc *d, struct diag *dg, struct k8s_pod *out);
int k8s_parse_deployment(const struct ydoc *d, struct diag *dg, struct k8s_deployment *out);
int k8s_parse_endpoint_slice(const struct ydoc *d, struct diag *dg,
			     struct k8s_endpoint_slice *out);

void k8s_namespace_free(struct k8s_namespace *o);
void k8s_service_free(struct k8s_service *o);
void k8s_pod_free(struct k8s_pod *o);
void k8s_deployment_free(struct k8s_deployment *o);
void k8s_endpoint_slice_free(struct k8s_endpoint_slice *o);

/* Shared pieces, also used by the Gateway API parsers. */
int k8s_parse_meta(const struct ydoc *d, const yaml_node_t *root, bool namespaced,
		   struct diag *dg, struct k8s_meta *out);
void k8s_meta_free(struct k8s_meta *m);
const char *k8s_label_get(const struct k8s_labels *l, const char *key);
/* Every selector label is present with the same value in labels. */
bool k8s_labels_match(const struct k8s_labels *selector, const struct k8s_labels *labels);
/* RFC 3339 "2024-01-02T03:04:05Z" (fraction and offset allowed) to epoch seconds. */
int k8s_parse_time(const char *s, int64_t *out);

/* Name rules of the API server. */
bool k8s_is_dns1123_label(const char *s);	/* [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63 */
bool k8s_is_dns1123_subdomain(const char *s);	/* labels joined by '.', <= 253 */
bool k8s_is_port_name(const char *s);		/* IANA_SVC_NAME: <= 15, a letter, no "--" */
bool k8s_is_label_key(const char *s);		/* [prefix/]name */
bool k8s_is_label_value(const char *s);		/* "" or <= 63 of [-_.A-Za-z0-9], alnum ends */
/*
 * An API group naming the core group: "" as the API writes it, or "core",
 * which Gateway API references also use for it (a parentRef or backendRef
 * group "core" means the same as "").
 */
bool k8s_group_is_core(const char *group);
/* "TCP", "UDP", "SCTP" to enum l4_proto; -EINVAL otherwise. */
int k8s_parse_protocol(const char *s, uint8_t *out);
/* enum l4_proto to "TCP", "UDP", "SCTP" ("?" for anything else). */
const char *l4_proto_name(uint8_t proto);

void k8s_labels_free(struct k8s_labels *l);
int k8s_labels_copy(struct k8s_labels *dst, const struct k8s_labels *src);

#endif
