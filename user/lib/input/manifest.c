// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"

typedef int (*load_fn)(struct model *m, const struct ydoc *d, struct diag *dg);

struct kind_handler {
	const char *group;	/* "" for the core group */
	const char *versions;	/* served versions, space separated */
	const char *kind;
	load_fn load;
};

/*
 * One loader per kind: allocate, parse, hand over to the model. A parse
 * error has been reported by the parser; the model reports duplicates.
 */
#define DEFINE_LOADER(fn, type, parse, free_fn, add)			\
static int fn(struct model *m, const struct ydoc *d, struct diag *dg)	\
{									\
	type *o = calloc(1, sizeof(*o));				\
	int ret;							\
									\
	if (!o)								\
		return -ENOMEM;						\
	ret = parse(d, dg, o);						\
	if (ret) {							\
		free(o);						\
		return ret;						\
	}								\
	return add(m, o, dg);						\
}

DEFINE_LOADER(load_namespace, struct k8s_namespace, k8s_parse_namespace,
	      k8s_namespace_free, model_add_namespace)
DEFINE_LOADER(load_service, struct k8s_service, k8s_parse_service, k8s_service_free,
	      model_add_service)
DEFINE_LOADER(load_pod, struct k8s_pod, k8s_parse_pod, k8s_pod_free, model_add_pod)
DEFINE_LOADER(load_deployment, struct k8s_deployment, k8s_parse_deployment,
	      k8s_deployment_free, model_add_deployment)
DEFINE_LOADER(load_slice, struct k8s_endpoint_slice, k8s_parse_endpoint_slice,
	      k8s_endpoint_slice_free, model_add_endpoint_slice)
DEFINE_LOADER(load_grant, struct gapi_reference_grant, gapi_parse_reference_grant,
	      gapi_reference_grant_free, model_add_grant)

static int load_route(struct model *m, const struct ydoc *d, struct diag *dg,
		      enum gapi_route_kind kind)
{
	struct gapi_route *o = calloc(1, sizeof(*o));
	int ret;

	if (!o)
		return -ENOMEM;
	ret = gapi_parse_route(d, kind, dg, o);
	if (ret) {
		free(o);
		return ret;
	}
	return model_add_route(m, o, dg);
}

#define DEFINE_ROUTE_LOADER(fn, kind)					\
static int fn(struct model *m, const struct ydoc *d, struct diag *dg)	\
{									\
	return load_route(m, d, dg, kind);				\
}

DEFINE_ROUTE_LOADER(load_http_route, ROUTE_HTTP)
DEFINE_ROUTE_LOADER(load_grpc_route, ROUTE_GRPC)
DEFINE_ROUTE_LOADER(load_tls_route, ROUTE_TLS)
DEFINE_ROUTE_LOADER(load_tcp_route, ROUTE_TCP)

/* The versions the Gateway API v1.6 CRDs serve (standard and experimental). */
static const struct kind_handler handlers[] = {
	{ "", "v1", "Namespace", load_namespace },
	{ "", "v1", "Service", load_service },
	{ "", "v1", "Pod", load_pod },
	{ "apps", "v1", "Deployment", load_deployment },
	{ "discovery.k8s.io", "v1", "EndpointSlice", load_slice },
	{ GAPI_GROUP, "v1 v1beta1", "HTTPRoute", load_http_route },
	{ GAPI_GROUP, "v1", "GRPCRoute", load_grpc_route },
	{ GAPI_GROUP, "v1 v1alpha2 v1alpha3", "TLSRoute", load_tls_route },
	{ GAPI_GROUP, "v1 v1alpha2", "TCPRoute", load_tcp_route },
	{ GAPI_GROUP, "v1 v1beta1", "ReferenceGrant", load_grant },
};

static bool version_served(const char *versions, const char *version)
{
	size_t n = strlen(version);

	for (const char *p = versions; (p = strstr(p, version)); p += n)
		if ((p == versions || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
	return false;
}

/* Split "group/version" (or "version" for the core group). */
static void split_api_version(const char *api, char *group, size_t len, const char **version)
{
	const char *slash = strrchr(api, '/');

	if (!slash) {
		group[0] = 0;
		*version = api;
		return;
	}
	snprintf(group, len, "%.*s", (int)(slash - api), api);
	*version = slash + 1;
}

static int load_doc(struct model *m, const struct ydoc *d, struct diag *dg, int depth);

/* kind: List (kubectl get -o yaml): each item is a document of its own. */
static int load_list(struct model *m, const struct ydoc *d, struct diag *dg, int depth)
{
	yaml_node_t *items = ymap_get(d, d->root, "items");
	int ret = 0;

	if (depth >= MANIFEST_MAX_DEPTH) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), "items",
			    "Lists nested deeper than %d, ignored", MANIFEST_MAX_DEPTH);
		return 0;
	}
	for (size_t i = 0; i < yseq_len(items) && ret != -ENOMEM; i++) {
		struct ydoc item = *d;

		item.root = yseq_at(d, items, i);
		ret = load_doc(m, &item, dg, depth + 1);
	}
	return ret == -ENOMEM ? ret : 0;
}

static int dispatch(struct model *m, const struct ydoc *d, struct diag *dg,
		    const char *api, const char *kind)
{
	char group[256];
	const char *version;

	split_api_version(api, group, sizeof(group), &version);
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		const struct kind_handler *h = &handlers[i];

		if (strcmp(h->kind, kind) || strcmp(h->group, group))
			continue;
		if (!version_served(h->versions, version)) {
			diag_report(dg, LOG_WARN, d->file, ynode_line(d->root), "apiVersion",
				    "%s %s is not served (served: %s), ignored", api, kind,
				    h->versions);
			return 0;
		}
		return h->load(m, d, dg);
	}
	pr_debug("%s:%d: %s %s: unknown kind, ignored", d->file, ynode_line(d->root), api,
		 kind);
	return 0;
}

static int load_doc(struct model *m, const struct ydoc *d, struct diag *dg, int depth)
{
	const char *api, *kind;

	if (!d->root || ynode_is_null(d->root))
		return 0;
	if (d->root->type != YAML_MAPPING_NODE) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), NULL,
			    "document must be a mapping, ignored");
		return 0;
	}
	if (yget_str(d, d->root, "apiVersion", &api) || yget_str(d, d->root, "kind", &kind)) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), "apiVersion",
			    "apiVersion and kind must be strings, document ignored");
		return 0;
	}
	if (!strcmp(kind, "List") && !strcmp(api, "v1"))
		return load_list(m, d, dg, depth);
	return dispatch(m, d, dg, api, kind);
}

/*
 * Documents are parsed and dispatched one at a time, so memory holds one
 * document tree, never a whole file's; a syntax error ends the file there,
 * and the documents before it stay loaded.
 */
static int load_stream(struct model *m, const char *name, yaml_parser_t *parser,
		       struct diag *dg)
{
	struct ydoc d = { .file = name };
	int ret = 0;

	while (ret != -ENOMEM) {
		if (!yaml_parser_load(parser, &d.doc)) {
			diag_report(dg, LOG_ERROR, name, (int)parser->problem_mark.line + 1, NULL,
				    "column %zu: %s%s%s; rest of the file ignored",
				    parser->problem_mark.column + 1,
				    parser->problem ? parser->problem : "malformed YAML",
				    parser->context ? " " : "", parser->context ? parser->context : "");
			break;
		}
		d.root = yaml_document_get_root_node(&d.doc);
		if (!d.root) {
			/* An empty document is how libyaml signals the end. */
			yaml_document_delete(&d.doc);
			if (parser->stream_end_produced)
				break;
			continue;
		}
		ret = load_doc(m, &d, dg, 0);
		yaml_document_delete(&d.doc);
		d.index++;
	}
	return ret == -ENOMEM ? ret : 0;
}

static bool too_large(const char *name, size_t len, struct diag *dg)
{
	if (len <= YDOC_MAX_FILE_BYTES)
		return false;
	diag_report(dg, LOG_ERROR, name, 1, NULL, "file too large (%zu bytes, limit %u), ignored",
		    len, YDOC_MAX_FILE_BYTES);
	return true;
}

int manifest_load_buf(struct model *m, const char *name, const void *buf, size_t len,
		      struct diag *dg)
{
	yaml_parser_t parser;
	int ret;

	if (too_large(name, len, dg))
		return 0;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, buf, len);
	ret = load_stream(m, name, &parser, dg);
	yaml_parser_delete(&parser);
	return ret;
}

static int load_file(struct model *m, const char *path, struct diag *dg)
{
	yaml_parser_t parser;
	struct stat st;
	FILE *f;
	int ret;

	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st)) {
		diag_report(dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		if (f)
			fclose(f);
		return 0;
	}
	if (too_large(path, st.st_size, dg) || !yaml_parser_initialize(&parser)) {
		fclose(f);
		return st.st_size > YDOC_MAX_FILE_BYTES ? 0 : -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	ret = load_stream(m, path, &parser, dg);
	yaml_parser_delete(&parser);
	fclose(f);
	return ret;
}

static bool is_manifest_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return name[0] != '.' && dot &&
	       (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int load_any(struct model *m, const char *path, struct diag *dg, int depth);

static int load_dir(struct model *m, const char *path, struct diag *dg, int depth)
{
	struct dirent **names;
	int n, ret = 0;

	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		ret = -errno;
		diag_report(dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char child[4096];
		struct stat st;

		if (name[0] == '.' || ret == -ENOMEM)
			goto next;
		snprintf(child, sizeof(child), "%s/%s", path, name);
		if (stat(child, &st))
			goto next;
		if (S_ISDIR(st.st_mode))
			ret = load_any(m, child, dg, depth + 1);
		else if (S_ISREG(st.st_mode) && is_manifest_name(name))
			ret = load_file(m, child, dg);
next:
		free(names[i]);
	}
	free(names);
	return ret == -ENOMEM ? ret : 0;
}

static int load_any(struct model *m, const char *path, struct diag *dg, int depth)
{
	struct stat st;

	if (stat(path, &st)) {
		int ret = -errno;

		diag_report(dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(m, path, dg);
	if (depth >= MANIFEST_MAX_DEPTH) {
		diag_report(dg, LOG_ERROR, path, 0, NULL,
			    "directories nested deeper than %d (a symlink cycle?), skipped",
			    MANIFEST_MAX_DEPTH);
		return 0;
	}
	return load_dir(m, path, dg, depth);
}

int manifest_load_path(struct model *m, const char *path, struct diag *dg)
{
	return load_any(m, path, dg, 0);
}
