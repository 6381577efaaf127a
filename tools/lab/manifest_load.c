// SPDX-License-Identifier: Apache-2.0
/*
 * Reading manifests: files and directories of multi-document YAML. The kinds
 * the lab builds (Namespace, Service, Pod, Deployment) are parsed into the
 * model; every other document is kept as its source text for routes.yaml.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "input/k8s_field.h"
#include "lab.h"

/* Grow an array of n elements by one; *arr may move. */
static void *grow(void *arr, size_t n, size_t size)
{
	return realloc(arr, (n + 1) * size);
}

/* Byte offset of the start of 0-based line `line` in buf. */
static size_t line_offset(const char *buf, size_t len, size_t line)
{
	size_t off = 0;

	while (line && off < len) {
		if (buf[off++] == '\n')
			line--;
	}
	return off;
}

/*
 * The source text of a document, by lines: libyaml's mark.index counts
 * characters, not bytes, so it cannot slice UTF-8 text; lines can.
 */
static char *doc_source_text(const struct ydoc *d, const char *buf, size_t len)
{
	const yaml_mark_t *start = &d->root->start_mark, *end = &d->root->end_mark;
	size_t from = line_offset(buf, len, start->line);
	size_t to = line_offset(buf, len, end->line + (end->column ? 1 : 0));

	if (len - from >= 3 && !strncmp(buf + from, "---", 3))
		from += 3;
	while (to > from && (buf[to - 1] == '\n' || buf[to - 1] == ' ' || buf[to - 1] == '\t'))
		to--;
	return strndup(buf + from, to - from);
}

static int add_passthrough(struct lab_model *m, const struct ydoc *d, const char *buf,
			   size_t len)
{
	struct lab_passthrough *p = grow(m->passthrough, m->nr_passthrough, sizeof(*p));

	if (!p)
		return -ENOMEM;
	m->passthrough = p;
	p = &p[m->nr_passthrough];
	p->file = strdup(d->file);
	p->line = ynode_line(d->root);
	p->text = doc_source_text(d, buf, len);
	if (!p->file || !p->text) {
		free(p->file);
		free(p->text);
		return -ENOMEM;
	}
	m->nr_passthrough++;
	return 0;
}

/* Parse into a new slot of one of the model's arrays; the slot is kept only on success. */
#define PARSE_INTO(arr, nr, parser, d, dg) ({					\
	typeof(arr) __a = grow(arr, nr, sizeof(*(arr)));			\
	int __ret = __a ? 0 : -ENOMEM;						\
	if (__a) {								\
		(arr) = __a;							\
		__ret = parser(d, dg, &(arr)[nr]);				\
		if (!__ret)							\
			(nr)++;							\
	}									\
	__ret;									\
})

static bool in_service_range(const char *s)
{
	static const uint8_t net6[14] = { 0xfd, 0x00, 0x00, 0x10, 0x00, 0x96 };
	struct ip_addr a;

	if (ip_addr_parse(s, &a))
		return true;	/* "None", "": not an address */
	if (a.family == AF_INET)
		return a.addr[0] == 10 && a.addr[1] == 96;
	return !memcmp(a.addr, net6, sizeof(net6));
}

/*
 * Cluster IPs set in a manifest must be in the lab's service ranges: only
 * those are blackholed, so a wrong translation cannot send traffic away.
 */
static int check_service_ranges(struct lab_model *m, const struct ydoc *d)
{
	struct kf_ctx c = { .d = d, .dg = &m->diag };
	yaml_node_t *ip = ymap_path(d, d->root, "spec.clusterIP");
	yaml_node_t *ips = ymap_path(d, d->root, "spec.clusterIPs");
	char path[KF_PATH_MAX];

	if (ynode_str(ip) && !in_service_range(ynode_str(ip)))
		return kf_error(&c, ip, "spec.clusterIP", "%s is outside the lab's service ranges %s and %s",
				ynode_str(ip), LAB_SVC_NET4, LAB_SVC_NET6);
	for (size_t i = 0; i < yseq_len(ips); i++) {
		const char *s = ynode_str(yseq_at(d, ips, i));

		snprintf(path, sizeof(path), "spec.clusterIPs[%zu]", i);
		if (s && !in_service_range(s))
			return kf_error(&c, yseq_at(d, ips, i), path,
					"%s is outside the lab's service ranges %s and %s", s,
					LAB_SVC_NET4, LAB_SVC_NET6);
	}
	return 0;
}

static int load_doc(struct lab_model *m, const struct ydoc *d, const char *buf, size_t len)
{
	struct kf_ctx c = { .d = d, .dg = &m->diag };
	const char *api, *kind;
	int ret;

	if (d->root->type != YAML_MAPPING_NODE)
		return kf_error(&c, d->root, NULL, "a manifest must be a mapping with apiVersion and kind");
	ret = kf_str(&c, d->root, "apiVersion", NULL, true, &api);
	if (!ret)
		ret = kf_str(&c, d->root, "kind", NULL, true, &kind);
	if (ret)
		return ret;
	if (!strcmp(api, "v1") && !strcmp(kind, "Namespace"))
		return PARSE_INTO(m->namespaces, m->nr_namespaces, k8s_parse_namespace, d, &m->diag);
	if (!strcmp(api, "v1") && !strcmp(kind, "Service")) {
		ret = PARSE_INTO(m->services, m->nr_services, k8s_parse_service, d, &m->diag);
		return ret ? ret : check_service_ranges(m, d);
	}
	if (!strcmp(api, "v1") && !strcmp(kind, "Pod"))
		return PARSE_INTO(m->bare_pods, m->nr_bare_pods, k8s_parse_pod, d, &m->diag);
	if (!strcmp(api, "apps/v1") && !strcmp(kind, "Deployment"))
		return PARSE_INTO(m->deployments, m->nr_deployments, k8s_parse_deployment, d,
				  &m->diag);
	return add_passthrough(m, d, buf, len);
}

static int load_file(struct lab_model *m, const char *path)
{
	struct ydoc_error yerr = { 0 };
	struct ydoc_set set;
	char *buf;
	size_t len;
	int ret;

	ret = read_file(path, &buf, &len);
	if (ret) {
		diag_report(&m->diag, LOG_ERROR, path, 0, NULL, "cannot read: %s", strerror(-ret));
		return ret;
	}
	ret = ydoc_load_buf(path, buf, len, &set, &yerr);
	if (ret) {
		/* yerr.msg already reads "file:line:col: problem". */
		diag_report(&m->diag, LOG_ERROR, NULL, 0, NULL, "%s", yerr.msg);
		free(buf);
		return ret;
	}
	for (size_t i = 0; !ret && i < set.nr_docs; i++)
		ret = load_doc(m, &set.docs[i], buf, len);
	ydoc_set_free(&set);
	free(buf);
	return ret;
}

static int is_manifest_name(const struct dirent *e)
{
	return e->d_name[0] != '.' &&
	       (!fnmatch("*.yaml", e->d_name, 0) || !fnmatch("*.yml", e->d_name, 0) ||
		!fnmatch("*.json", e->d_name, 0));
}

/* A directory: its *.yaml, *.yml and *.json files in name order, like kubectl -f DIR. */
static int load_dir(struct lab_model *m, const char *dir)
{
	struct dirent **names;
	char path[PATH_MAX];
	int n, ret = 0;

	n = scandir(dir, &names, is_manifest_name, alphasort);
	if (n < 0) {
		ret = -errno;
		diag_report(&m->diag, LOG_ERROR, dir, 0, NULL, "cannot read directory: %s",
			    strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		if (!ret) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			ret = load_file(m, path);
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int lab_load_manifests(struct lab_model *m, char *const *paths, int nr_paths)
{
	struct stat st;
	int ret = 0;

	for (int i = 0; !ret && i < nr_paths; i++) {
		if (stat(paths[i], &st)) {
			ret = -errno;
			diag_report(&m->diag, LOG_ERROR, paths[i], 0, NULL, "%s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			ret = load_dir(m, paths[i]);
		} else {
			ret = load_file(m, paths[i]);
		}
	}
	return ret;
}
