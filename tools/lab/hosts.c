// SPDX-License-Identifier: Apache-2.0
/*
 * /etc/netns/<netns>/hosts: `ip netns exec` bind-mounts it over /etc/hosts,
 * so commands run in a pod resolve Service names as cluster DNS would
 * (svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local; the short name only
 * within the Service's own namespace). Headless Services are left out: a
 * hosts file cannot return their many endpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

static void service_lines(FILE *f, const struct k8s_service *s, const char *pod_ns)
{
	const char *ns = s->meta.namespace, *name = s->meta.name;
	char ip[INET6_ADDRSTRLEN];
	bool local = !strcmp(ns, pod_ns);

	for (size_t i = 0; i < s->nr_cluster_ips; i++)
		fprintf(f, "%s\t%s%s%s.%s %s.%s.svc %s.%s.svc.cluster.local\n",
			ip_addr_str(&s->cluster_ips[i], ip, sizeof(ip)),
			local ? name : "", local ? " " : "", name, ns, name, ns, name, ns);
}

static int pod_hosts_text(const struct lab_model *m, const struct lab_pod *p,
			  char **text, size_t *len)
{
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];
	FILE *f = open_memstream(text, len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "# written by gammad lab for pod %s/%s\n"
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		"%s\t%s\n%s\t%s\n",
		p->namespace, p->name, ip_addr_str(&p->ip4, ip4, sizeof(ip4)), p->name,
		ip_addr_str(&p->ip6, ip6, sizeof(ip6)), p->name);
	for (size_t i = 0; i < m->nr_services; i++)
		service_lines(f, &m->services[i], p->namespace);
	return fclose(f) ? -errno : 0;
}

int lab_write_hosts(const struct lab_model *m)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *text;
	size_t len;
	int ret = 0;

	for (size_t i = 0; !ret && i < m->nr_pods; i++) {
		const struct lab_pod *p = &m->pods[i];

		snprintf(dir, sizeof(dir), LAB_ETC_NETNS "/%s", p->netns);
		snprintf(path, sizeof(path), "%s/hosts", dir);
		ret = mkdir_p(dir, 0755);
		if (!ret)
			ret = pod_hosts_text(m, p, &text, &len);
		if (!ret) {
			ret = write_file_atomic(path, text, len);
			free(text);
		}
		if (ret)
			pr_err("pod %s/%s: cannot write %s: %s", p->namespace, p->name, path,
			       strerror(-ret));
	}
	return ret;
}

void lab_hosts_purge(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(LAB_ETC_NETNS);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, LAB_NETNS_PREFIX, strlen(LAB_NETNS_PREFIX)))
			continue;
		snprintf(path, sizeof(path), LAB_ETC_NETNS "/%s", e->d_name);
		rm_rf(path);
	}
	closedir(d);
	/* /etc/netns is iproute2's; remove it only if the lab left it empty. */
	rmdir(LAB_ETC_NETNS);
}
