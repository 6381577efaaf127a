// SPDX-License-Identifier: Apache-2.0
/* HTTPRouteFilter and GRPCRouteFilter. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gapi_int.h"

static const char *const filter_names[] = {
	[FILTER_REQUEST_HEADER] = "RequestHeaderModifier",
	[FILTER_RESPONSE_HEADER] = "ResponseHeaderModifier",
	[FILTER_REQUEST_REDIRECT] = "RequestRedirect",
	[FILTER_URL_REWRITE] = "URLRewrite",
	[FILTER_REQUEST_MIRROR] = "RequestMirror",
	[FILTER_EXTENSION_REF] = "ExtensionRef",
	[FILTER_CORS] = "CORS",
	[FILTER_EXTERNAL_AUTH] = "ExternalAuth",
	[FILTER_UNKNOWN] = NULL,
};

const char *gapi_filter_type_name(enum gapi_filter_type type)
{
	return type < FILTER_UNKNOWN ? filter_names[type] : "Unknown";
}

static int parse_headers(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
			 const char *parent, struct gapi_header **out, size_t *nr)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = gp_list(c, map, key, parent, GAPI_MAX_HEADER_MODS, &seq, &n);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)out, n, sizeof(**out));
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		struct gapi_header *h = &(*out)[(*nr)++];

		ret = gp_item_map(c, seq, i, parent, key, path, sizeof(path), &item);
		if (!ret)
			ret = gp_str(c, item, "name", path, true, 256, &h->name);
		if (!ret)
			ret = gp_str(c, item, "value", path, true, GAPI_MAX_HEADER_VALUE_LEN,
				     &h->value);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_header_mod(const struct kf_ctx *c, const yaml_node_t *map,
			    const char *path, struct gapi_header_mod *out)
{
	char ipath[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = parse_headers(c, map, "set", path, &out->set, &out->nr_set);
	if (!ret)
		ret = parse_headers(c, map, "add", path, &out->add, &out->nr_add);
	if (!ret)
		ret = gp_list(c, map, "remove", path, GAPI_MAX_HEADER_MODS, &seq, &n);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)&out->remove, n, sizeof(*out->remove));
	for (size_t i = 0; !ret && i < n; i++) {
		const char *s = ynode_str(item = yseq_at(c->d, seq, i));

		kf_join(ipath, sizeof(ipath), path, "remove[%zu]", i);
		if (!s || strlen(s) > 256)
			return kf_error(c, item ? item : seq, ipath,
					"must be a header name of at most 256 characters");
		ret = kf_check_text(c, item, ipath, s);
		if (!ret)
			ret = kf_strdup(&out->remove[out->nr_remove++], s);
	}
	return ret;
}

static int parse_path_mod(const struct kf_ctx *c, const yaml_node_t *map,
			  const char *parent, struct gapi_path_mod *out)
{
	static const char *const types[] = { NULL, "ReplaceFullPath", "ReplacePrefixMatch" };
	char path[KF_PATH_MAX];
	yaml_node_t *p;
	int type, ret;

	ret = kf_map(c, map, "path", parent, false, &p);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	kf_join(path, sizeof(path), parent, "path");
	ret = gp_enum(c, p, "type", path, types, 3, &type);
	if (ret == -ENOENT)
		return kf_error(c, p, path, "type is required");
	if (ret)
		return ret;
	out->type = type;
	ret = gp_str(c, p, type == PATH_MOD_FULL ? "replaceFullPath" : "replacePrefixMatch",
		     path, true, GAPI_MAX_PATH_LEN, &out->value);
	if (!ret && out->value[0] != '/')
		return kf_error(c, p, path, "replacement must be an absolute path");
	return ret;
}

static int opt_hostname(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			char **out)
{
	int ret = gp_str(c, map, "hostname", path, false, K8S_NAME_MAX, out);

	return ret == -ENOENT ? 0 : ret;
}

static int parse_redirect(const struct kf_ctx *c, const yaml_node_t *map,
			  const char *path, struct gapi_redirect *out)
{
	static const char *const schemes[] = { "http", "https" };
	long long v;
	int scheme, ret;

	out->status_code = 302;
	ret = gp_enum(c, map, "scheme", path, schemes, 2, &scheme);
	if (!ret)
		ret = kf_strdup(&out->scheme, schemes[scheme]);
	if (ret && ret != -ENOENT)
		return ret;
	ret = opt_hostname(c, map, path, &out->hostname);
	if (!ret)
		ret = parse_path_mod(c, map, path, &out->path);
	if (ret)
		return ret;
	ret = kf_int(c, map, "port", path, false, 1, 65535, &v);
	if (!ret)
		out->port = (uint16_t)v;
	else if (ret != -ENOENT)
		return ret;
	ret = kf_int(c, map, "statusCode", path, false, 301, 308, &v);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (v != 301 && v != 302 && v != 303 && v != 307 && v != 308)
		return kf_error(c, ymap_get(c->d, map, "statusCode"), path,
				"statusCode must be 301, 302, 303, 307 or 308, got %lld", v);
	out->status_code = (uint16_t)v;
	return 0;
}

static int parse_mirror(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
			const char *route_ns, struct gapi_mirror *out)
{
	char bpath[KF_PATH_MAX];
	yaml_node_t *b, *frac;
	long long num, den = 100;
	int ret;

	out->percent = 100;
	ret = kf_map(c, map, "backendRef", path, true, &b);
	if (ret)
		return ret;
	out->backend = calloc(1, sizeof(*out->backend));
	if (!out->backend)
		return -ENOMEM;
	kf_join(bpath, sizeof(bpath), path, "backendRef");
	ret = gp_parse_backend_ref(c, b, bpath, route_ns, false, out->backend);
	if (ret)
		return ret;
	ret = kf_int(c, map, "percent", path, false, 0, 100, &num);
	if (!ret)
		out->percent = (uint32_t)num;
	if (ret != -ENOENT)
		return ret;
	ret = kf_map(c, map, "fraction", path, false, &frac);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	kf_join(bpath, sizeof(bpath), path, "fraction");
	ret = kf_int(c, frac, "numerator", bpath, true, 0, 1 << 30, &num);
	if (!ret)
		ret = kf_int(c, frac, "denominator", bpath, false, 1, 1 << 30, &den);
	if (ret && ret != -ENOENT)
		return ret;
	if (num > den)
		return kf_error(c, frac, bpath, "numerator must not exceed denominator");
	out->percent = (uint32_t)(num * 100 / den);
	return 0;
}

/* The configuration block of a filter: requestHeaderModifier etc. */
static int parse_filter_body(const struct kf_ctx *c, const yaml_node_t *item,
			     const char *fpath, const char *route_ns,
			     struct gapi_filter *f)
{
	static const char *const keys[] = {
		[FILTER_REQUEST_HEADER] = "requestHeaderModifier",
		[FILTER_RESPONSE_HEADER] = "responseHeaderModifier",
		[FILTER_REQUEST_REDIRECT] = "requestRedirect",
		[FILTER_URL_REWRITE] = "urlRewrite",
		[FILTER_REQUEST_MIRROR] = "requestMirror",
	};
	char path[KF_PATH_MAX];
	yaml_node_t *body;
	int ret;

	if (f->type > FILTER_REQUEST_MIRROR)
		return 0;	/* kept by type only; the translator rejects them */
	ret = kf_map(c, item, keys[f->type], fpath, true, &body);
	if (ret)
		return ret;
	kf_join(path, sizeof(path), fpath, "%s", keys[f->type]);
	switch (f->type) {
	case FILTER_REQUEST_HEADER:
	case FILTER_RESPONSE_HEADER:
		return parse_header_mod(c, body, path, &f->header_mod);
	case FILTER_REQUEST_REDIRECT:
		return parse_redirect(c, body, path, &f->redirect);
	case FILTER_URL_REWRITE:
		ret = opt_hostname(c, body, path, &f->rewrite.hostname);
		return ret ? ret : parse_path_mod(c, body, path, &f->rewrite.path);
	default:
		return parse_mirror(c, body, path, route_ns, &f->mirror);
	}
}

static int parse_filter(const struct kf_ctx *c, const yaml_node_t *item, const char *fpath,
			const char *route_ns, struct gapi_filter *f)
{
	int ret;

	f->line = ynode_line(item);
	ret = gp_str(c, item, "type", fpath, true, 64, &f->type_name);
	if (ret)
		return ret;
	f->type = FILTER_UNKNOWN;
	for (int t = 0; t < FILTER_UNKNOWN; t++)
		if (!strcmp(filter_names[t], f->type_name))
			f->type = t;
	return parse_filter_body(c, item, fpath, route_ns, f);
}

int gp_parse_filters(const struct kf_ctx *c, const yaml_node_t *map, const char *parent,
		     const char *route_ns, struct gapi_filter **out, size_t *nr)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = gp_list(c, map, "filters", parent, GAPI_MAX_FILTERS, &seq, &n);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)out, n, sizeof(**out));
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		ret = gp_item_map(c, seq, i, parent, "filters", path, sizeof(path), &item);
		if (!ret)
			ret = parse_filter(c, item, path, route_ns, &(*out)[(*nr)++]);
		if (ret)
			return ret;
	}
	return 0;
}
