// SPDX-License-Identifier: Apache-2.0
/*
 * Planning `lab up`: checks that span documents (duplicates, address ranges),
 * expands Deployments into pods and hands out names, UIDs and addresses the
 * way a control plane would, deterministically. Nothing here touches the
 * machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lab.h"

static int dup_error(struct lab_model *m, const char *kind, const struct k8s_meta *a,
		     const struct k8s_meta *b)
{
	diag_report(&m->diag, LOG_ERROR, b->loc.file, b->loc.line, NULL,
		    "duplicate %s %s%s%s (first defined at %s:%d)", kind,
		    b->namespace ? b->namespace : "", b->namespace ? "/" : "", b->name,
		    a->loc.file, a->loc.line);
	return -EEXIST;
}

static bool same_object(const struct k8s_meta *a, const struct k8s_meta *b)
{
	return !strcmp(a->name, b->name) &&
	       !strcmp(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "");
}

/* O(n^2) is fine: a lab has tens of objects, not thousands. */
#define CHECK_UNIQUE(m, arr, nr, kind) ({					\
	int __ret = 0;								\
	for (size_t __i = 0; !__ret && __i < (nr); __i++)			\
		for (size_t __j = 0; !__ret && __j < __i; __j++)		\
			if (same_object(&(arr)[__j].meta, &(arr)[__i].meta))	\
				__ret = dup_error(m, kind, &(arr)[__j].meta,	\
						  &(arr)[__i].meta);		\
	__ret;									\
})

static int check_unique(struct lab_model *m)
{
	int ret = CHECK_UNIQUE(m, m->namespaces, m->nr_namespaces, "Namespace");

	if (!ret)
		ret = CHECK_UNIQUE(m, m->services, m->nr_services, "Service");
	if (!ret)
		ret = CHECK_UNIQUE(m, m->deployments, m->nr_deployments, "Deployment");
	if (!ret)
		ret = CHECK_UNIQUE(m, m->bare_pods, m->nr_bare_pods, "Pod");
	return ret;
}

static bool namespace_known(const struct lab_model *m, const char *ns)
{
	for (size_t i = 0; i < m->nr_namespaces; i++)
		if (!strcmp(m->namespaces[i].meta.name, ns))
			return true;
	return false;
}

/* A namespace used but not declared is created, as `kubectl create ns` would be. */
static int ensure_namespace(struct lab_model *m, const struct k8s_meta *user)
{
	struct k8s_namespace *arr, *ns;

	if (namespace_known(m, user->namespace))
		return 0;
	if (strcmp(user->namespace, "default"))
		diag_report(&m->diag, LOG_WARN, user->loc.file, user->loc.line, "metadata.namespace",
			    "namespace \"%s\" is not declared; creating it", user->namespace);
	arr = realloc(m->namespaces, (m->nr_namespaces + 1) * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	m->namespaces = arr;
	ns = &arr[m->nr_namespaces];
	memset(ns, 0, sizeof(*ns));
	ns->meta.name = strdup(user->namespace);
	ns->meta.loc.file = strdup(user->loc.file);
	ns->meta.loc.line = user->loc.line;
	if (!ns->meta.name || !ns->meta.loc.file) {
		k8s_namespace_free(ns);
		return -ENOMEM;
	}
	m->nr_namespaces++;
	return 0;
}

static int ensure_namespaces(struct lab_model *m)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < m->nr_services; i++)
		ret = ensure_namespace(m, &m->services[i].meta);
	for (size_t i = 0; !ret && i < m->nr_deployments; i++)
		ret = ensure_namespace(m, &m->deployments[i].meta);
	for (size_t i = 0; !ret && i < m->nr_bare_pods; i++)
		ret = ensure_namespace(m, &m->bare_pods[i].meta);
	return ret;
}

/* ---- pods ----------------------------------------------------------------- */

struct lab_pod *lab_find_pod(struct lab_model *m, const char *ns, const char *name)
{
	for (size_t i = 0; i < m->nr_pods; i++)
		if (!strcmp(m->pods[i].namespace, ns) && !strcmp(m->pods[i].name, name))
			return &m->pods[i];
	return NULL;
}

static bool annotated_not_ready(const struct k8s_labels *a)
{
	const char *v = k8s_label_get(a, LAB_READY_ANNOTATION);

	return v && !strcmp(v, "false");
}

static int pod_init(struct lab_pod *p, const struct k8s_meta *owner, const char *name,
		    const char *uid, const struct k8s_pod_spec *spec,
		    const struct k8s_labels *labels, const struct k8s_labels *annotations)
{
	p->namespace = strdup(owner->namespace);
	p->name = strdup(name);
	p->uid = strdup(uid);
	p->loc.file = strdup(owner->loc.file);
	p->loc.line = owner->loc.line;
	p->spec = spec;
	p->ready = !annotated_not_ready(annotations);
	if (!p->namespace || !p->name || !p->uid || !p->loc.file ||
	    k8s_labels_copy(&p->labels, labels) || k8s_labels_copy(&p->annotations, annotations))
		return -ENOMEM;
	lab_pod_netns(p->namespace, p->name, p->netns, sizeof(p->netns));
	lab_pod_veth(p->namespace, p->name, p->veth);
	p->nr_containers = spec->nr_containers;
	p->containers = calloc(spec->nr_containers, sizeof(*p->containers));
	if (!p->containers)
		return -ENOMEM;
	for (size_t i = 0; i < spec->nr_containers; i++) {
		p->containers[i].spec = &spec->containers[i];
		p->containers[i].name = strdup(spec->containers[i].name);
		if (!p->containers[i].name)
			return -ENOMEM;
	}
	return 0;
}

/* Kubelet's pods carry pod-template-hash, the middle part of their name. */
static int add_template_hash(struct lab_pod *p, const char *pod_name)
{
	size_t len = strlen(pod_name);
	struct k8s_label *items;

	if (len < 17)
		return -EINVAL;
	items = realloc(p->labels.items, (p->labels.nr + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	p->labels.items = items;
	items[p->labels.nr].key = strdup("pod-template-hash");
	items[p->labels.nr].value = strndup(pod_name + len - 16, 10);
	if (!items[p->labels.nr].key || !items[p->labels.nr].value) {
		free(items[p->labels.nr].key);
		free(items[p->labels.nr].value);
		return -ENOMEM;
	}
	p->labels.nr++;
	return 0;
}

static int add_deployment_pods(struct lab_model *m, const struct k8s_deployment *d)
{
	char name[K8S_NAME_MAX + 1], seed[600], uid[37];
	int ret;

	for (int i = 0; i < d->replicas; i++) {
		struct lab_pod *p = &m->pods[m->nr_pods];

		lab_pod_name(d->meta.namespace, d->meta.name, i, name, sizeof(name));
		snprintf(seed, sizeof(seed), "pod/%s/%s", d->meta.namespace, name);
		lab_uuid(seed, uid);
		m->nr_pods++;	/* counted first so a half-built pod is freed */
		ret = pod_init(p, &d->meta, name, uid, &d->template, &d->template.labels,
			       &d->template.annotations);
		if (!ret)
			ret = add_template_hash(p, name);
		if (ret)
			return ret;
		p->owner = strdup(d->meta.name);
		if (!p->owner)
			return -ENOMEM;
	}
	return 0;
}

static int add_bare_pod(struct lab_model *m, const struct k8s_pod *bp)
{
	struct lab_pod *p = &m->pods[m->nr_pods];
	char seed[600], uid[37];

	if (lab_find_pod(m, bp->meta.namespace, bp->meta.name)) {
		diag_report(&m->diag, LOG_ERROR, bp->meta.loc.file, bp->meta.loc.line,
			    "metadata.name", "duplicate Pod %s/%s (a Deployment's pod has this name)",
			    bp->meta.namespace, bp->meta.name);
		return -EEXIST;
	}
	snprintf(seed, sizeof(seed), "pod/%s/%s", bp->meta.namespace, bp->meta.name);
	lab_uuid(seed, uid);
	m->nr_pods++;
	return pod_init(p, &bp->meta, bp->meta.name, bp->meta.uid ? bp->meta.uid : uid,
			&bp->spec, &bp->meta.labels, &bp->meta.annotations);
}

static size_t count_pods(const struct lab_model *m)
{
	size_t n = m->nr_bare_pods;

	for (size_t i = 0; i < m->nr_deployments; i++)
		n += m->deployments[i].replicas;
	return n;
}

/* Host part n of a pod: 10.244.x.y and fd00:10:244::n, skipping .0 and .255. */
static void pod_addresses(struct lab_pod *p, unsigned int *next)
{
	unsigned int n = *next;

	while ((n & 0xff) == 0 || (n & 0xff) == 0xff)
		n++;
	*next = n + 1;
	p->ip4.family = AF_INET;
	p->ip4.addr[0] = 10;
	p->ip4.addr[1] = 244;
	p->ip4.addr[2] = n >> 8;
	p->ip4.addr[3] = n & 0xff;
	inet_pton(AF_INET6, "fd00:10:244::", p->ip6.addr);
	p->ip6.family = AF_INET6;
	p->ip6.addr[14] = n >> 8;
	p->ip6.addr[15] = n & 0xff;
}

static int expand_pods(struct lab_model *m)
{
	size_t total = count_pods(m);
	unsigned int next = LAB_FIRST_POD_HOST;
	int ret = 0;

	if (total > LAB_MAX_PODS) {
		diag_report(&m->diag, LOG_ERROR, NULL, 0, NULL,
			    "%zu pods requested; a lab runs at most %d", total, LAB_MAX_PODS);
		return -E2BIG;
	}
	m->pods = calloc(total + 1, sizeof(*m->pods));
	if (!m->pods)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < m->nr_deployments; i++)
		ret = add_deployment_pods(m, &m->deployments[i]);
	for (size_t i = 0; !ret && i < m->nr_bare_pods; i++)
		ret = add_bare_pod(m, &m->bare_pods[i]);
	for (size_t i = 0; !ret && i < m->nr_pods; i++)
		pod_addresses(&m->pods[i], &next);
	return ret;
}

/* ---- cluster IPs ---------------------------------------------------------- */

static bool cluster_ip_used(const struct lab_model *m, const struct ip_addr *a)
{
	for (size_t i = 0; i < m->nr_services; i++)
		for (size_t j = 0; j < m->services[i].nr_cluster_ips; j++)
			if (!memcmp(&m->services[i].cluster_ips[j], a, sizeof(*a)))
				return true;
	return false;
}

/* Manifest-given cluster IPs must be unique (their range is checked at load). */
static int check_cluster_ips(struct lab_model *m)
{
	char buf[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < m->nr_services; i++) {
		const struct k8s_service *s = &m->services[i];

		for (size_t j = 0; j < s->nr_cluster_ips; j++) {
			const struct ip_addr *a = &s->cluster_ips[j];

			for (size_t k = 0; k < i; k++) {
				for (size_t l = 0; l < m->services[k].nr_cluster_ips; l++) {
					if (memcmp(&m->services[k].cluster_ips[l], a, sizeof(*a)))
						continue;
					diag_report(&m->diag, LOG_ERROR, s->meta.loc.file, s->meta.loc.line,
						    "spec.clusterIP", "%s is already the cluster IP of Service %s/%s",
						    ip_addr_str(a, buf, sizeof(buf)),
						    m->services[k].meta.namespace, m->services[k].meta.name);
					return -EEXIST;
				}
			}
		}
	}
	return 0;
}

static int alloc_cluster_ip(struct lab_model *m, uint8_t family, unsigned int *next,
			    struct ip_addr *out)
{
	for (; *next < 0xffff; (*next)++) {
		memset(out, 0, sizeof(*out));
		out->family = family;
		if (family == AF_INET) {
			out->addr[0] = 10;
			out->addr[1] = 96;
		} else {
			inet_pton(AF_INET6, "fd00:10:96::", out->addr);
		}
		out->addr[family == AF_INET ? 2 : 14] = *next >> 8;
		out->addr[family == AF_INET ? 3 : 15] = *next & 0xff;
		if ((*next & 0xff) != 0xff && (*next & 0xff) && !cluster_ip_used(m, out)) {
			(*next)++;
			return 0;
		}
	}
	return -ENOSPC;
}

static bool has_family(const uint8_t *fams, size_t n, uint8_t f)
{
	for (size_t i = 0; i < n; i++)
		if (fams[i] == f)
			return true;
	return false;
}

/* The families a Service ends up with, in order, as the API server decides them. */
static size_t service_families(const struct k8s_service *s, uint8_t out[2])
{
	const char *policy = s->ip_family_policy ? s->ip_family_policy : "SingleStack";
	size_t n = 0;

	for (size_t i = 0; i < s->nr_ip_families; i++)
		out[n++] = s->ip_families[i];
	for (size_t i = 0; i < s->nr_cluster_ips && n < 2; i++)
		if (!has_family(out, n, s->cluster_ips[i].family))
			out[n++] = s->cluster_ips[i].family;
	if (!n)
		out[n++] = AF_INET;
	if (n == 1 && strcmp(policy, "SingleStack"))
		out[n++] = out[0] == AF_INET ? AF_INET6 : AF_INET;
	return n;
}

static int assign_service_ips(struct lab_model *m, struct k8s_service *s,
			      unsigned int next[2])
{
	struct ip_addr ips[2];
	uint8_t fams[2];
	size_t n = service_families(s, fams);
	int ret;

	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t j = 0; j < s->nr_cluster_ips; j++) {
			if (s->cluster_ips[j].family == fams[i]) {
				ips[i] = s->cluster_ips[j];
				found = true;
			}
		}
		if (found || s->type == SVC_HEADLESS || s->type == SVC_EXTERNAL_NAME)
			continue;
		ret = alloc_cluster_ip(m, fams[i], &next[fams[i] == AF_INET6], &ips[i]);
		if (ret) {
			diag_report(&m->diag, LOG_ERROR, s->meta.loc.file, s->meta.loc.line, NULL,
				    "Service %s/%s: the service range is full", s->meta.namespace,
				    s->meta.name);
			return ret;
		}
	}
	memcpy(s->ip_families, fams, sizeof(fams));
	s->nr_ip_families = n;
	if (s->type != SVC_HEADLESS && s->type != SVC_EXTERNAL_NAME) {
		memcpy(s->cluster_ips, ips, n * sizeof(ips[0]));
		s->nr_cluster_ips = n;
	}
	return 0;
}

static int assign_cluster_ips(struct lab_model *m)
{
	unsigned int next[2] = { LAB_FIRST_SVC_HOST, LAB_FIRST_SVC_HOST };
	int ret = check_cluster_ips(m);

	for (size_t i = 0; !ret && i < m->nr_services; i++)
		ret = assign_service_ips(m, &m->services[i], next);
	return ret;
}

/* ---- the whole plan ------------------------------------------------------- */

static int find_server(struct lab_model *m, const struct lab_opts *opts)
{
	char self[PATH_MAX];
	ssize_t n;

	if (opts->server) {
		snprintf(m->server, sizeof(m->server), "%s", opts->server);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 8);
		if (n < 0)
			return -errno;
		self[n] = 0;
		strcpy(strrchr(self, '/'), "/echo");
		snprintf(m->server, sizeof(m->server), "%s", self);
	}
	if (access(m->server, X_OK)) {
		diag_report(&m->diag, LOG_ERROR, m->server, 0, NULL,
			    "the echo server is missing or not executable (build it: make build/echo)");
		return -ENOENT;
	}
	return 0;
}

int lab_plan(struct lab_model *m, const struct lab_opts *opts)
{
	int ret;

	m->systemd_cgroups = opts->systemd_cgroups;
	snprintf(m->node_name, sizeof(m->node_name), "%s",
		 opts->node_name ? opts->node_name : LAB_DEFAULT_NODE);
	if (!k8s_is_dns1123_subdomain(m->node_name)) {
		diag_report(&m->diag, LOG_ERROR, NULL, 0, "--node-name",
			    "\"%s\" is not a valid node name", m->node_name);
		return -EINVAL;
	}
	if (opts->out_dir)
		snprintf(m->out_dir, sizeof(m->out_dir), "%s", opts->out_dir);
	else
		snprintf(m->out_dir, sizeof(m->out_dir), "%s/manifests", opts->state_dir);
	ret = check_unique(m);
	if (!ret)
		ret = ensure_namespaces(m);
	if (!ret)
		ret = expand_pods(m);
	if (!ret)
		ret = assign_cluster_ips(m);
	if (!ret)
		ret = lab_cgroup_root(opts, m->cgroup_root, sizeof(m->cgroup_root));
	if (!ret)
		ret = lab_cgroup_plan(m);
	if (!ret)
		ret = lab_build_endpoint_slices(m);
	if (!ret)
		ret = find_server(m, opts);
	return ret;
}

static void pod_free(struct lab_pod *p)
{
	free(p->namespace);
	free(p->name);
	free(p->uid);
	free(p->owner);
	free(p->loc.file);
	k8s_labels_free(&p->labels);
	k8s_labels_free(&p->annotations);
	for (size_t i = 0; i < p->nr_containers; i++)
		free(p->containers[i].name);
	free(p->containers);
}

void lab_model_free(struct lab_model *m)
{
	for (size_t i = 0; i < m->nr_namespaces; i++)
		k8s_namespace_free(&m->namespaces[i]);
	for (size_t i = 0; i < m->nr_services; i++)
		k8s_service_free(&m->services[i]);
	for (size_t i = 0; i < m->nr_deployments; i++)
		k8s_deployment_free(&m->deployments[i]);
	for (size_t i = 0; i < m->nr_bare_pods; i++)
		k8s_pod_free(&m->bare_pods[i]);
	for (size_t i = 0; i < m->nr_passthrough; i++) {
		free(m->passthrough[i].file);
		free(m->passthrough[i].text);
	}
	for (size_t i = 0; i < m->nr_pods; i++)
		pod_free(&m->pods[i]);
	for (size_t i = 0; i < m->nr_slices; i++)
		k8s_endpoint_slice_free(&m->slices[i]);
	free(m->namespaces);
	free(m->services);
	free(m->deployments);
	free(m->bare_pods);
	free(m->passthrough);
	free(m->pods);
	free(m->slices);
	diag_free(&m->diag);
	memset(m, 0, sizeof(*m));
}
