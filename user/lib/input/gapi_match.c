// SPDX-License-Identifier: Apache-2.0
/* HTTPRouteMatch and GRPCRouteMatch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gapi_int.h"

static const char *const match_type_names[] = {
	[MATCH_EXACT] = "Exact",
	[MATCH_PREFIX] = "PathPrefix",
	[MATCH_REGEX] = "RegularExpression",
};

const char *gapi_match_type_name(enum gapi_match_type type)
{
	return type <= MATCH_REGEX ? match_type_names[type] : "?";
}

/* Exact and RegularExpression only (headers, query params, gRPC methods). */
static const char *const kv_type_names[] = {
	[MATCH_EXACT] = "Exact",
	[MATCH_PREFIX] = NULL,
	[MATCH_REGEX] = "RegularExpression",
};

static const char *const http_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

static int parse_kv(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
		    size_t max_value, struct gapi_kv_match *out)
{
	int type = MATCH_EXACT, ret;

	ret = gp_enum(c, map, "type", path, kv_type_names, 3, &type);
	if (ret && ret != -ENOENT)
		return ret;
	out->type = type;
	ret = gp_str(c, map, "name", path, true, 256, &out->name);
	if (!ret)
		ret = gp_str(c, map, "value", path, true, max_value, &out->value);
	return ret;
}

static int parse_kv_list(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
			 const char *parent, size_t max_items, size_t max_value,
			 struct gapi_kv_match **out, size_t *nr)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = gp_list(c, map, key, parent, max_items, &seq, &n);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)out, n, sizeof(**out));
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		ret = gp_item_map(c, seq, i, parent, key, path, sizeof(path), &item);
		if (!ret)
			ret = parse_kv(c, item, path, max_value, &(*out)[(*nr)++]);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_path(const struct kf_ctx *c, const yaml_node_t *match, const char *mpath,
		      struct gapi_match *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *p = NULL;
	int type = MATCH_PREFIX, ret;

	out->path_type = MATCH_PREFIX;
	ret = kf_map(c, match, "path", mpath, false, &p);
	if (ret == -ENOENT)
		return kf_strdup(&out->path, "/");
	if (ret)
		return ret;
	kf_join(path, sizeof(path), mpath, "path");
	ret = gp_enum(c, p, "type", path, match_type_names, 3, &type);
	if (ret && ret != -ENOENT)
		return ret;
	out->path_type = type;
	ret = gp_str(c, p, "value", path, false, GAPI_MAX_PATH_LEN, &out->path);
	if (ret == -ENOENT)
		return kf_strdup(&out->path, "/");
	if (ret)
		return ret;
	if (type != MATCH_REGEX && out->path[0] != '/')
		return kf_error(c, ymap_get(c->d, p, "value"), kf_join(path, sizeof(path),
				mpath, "path.value"), "must be an absolute path");
	return 0;
}

static int parse_http_match(const struct kf_ctx *c, const yaml_node_t *match,
			    const char *mpath, struct gapi_match *out)
{
	int method, ret;

	ret = parse_path(c, match, mpath, out);
	if (ret)
		return ret;
	ret = gp_enum(c, match, "method", mpath, http_methods,
		      sizeof(http_methods) / sizeof(http_methods[0]), &method);
	if (!ret)
		ret = kf_strdup(&out->method, http_methods[method]);
	if (ret && ret != -ENOENT)
		return ret;
	ret = parse_kv_list(c, match, "headers", mpath, GAPI_MAX_HEADER_MATCHES,
			    GAPI_MAX_HEADER_VALUE_LEN, &out->headers, &out->nr_headers);
	if (!ret)
		ret = parse_kv_list(c, match, "queryParams", mpath, GAPI_MAX_QUERY_MATCHES,
				    1024, &out->query, &out->nr_query);
	return ret;
}

static int parse_grpc_match(const struct kf_ctx *c, const yaml_node_t *match,
			    const char *mpath, struct gapi_match *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *m;
	int type = MATCH_EXACT, ret;

	ret = kf_map(c, match, "method", mpath, false, &m);
	if (!ret) {
		kf_join(path, sizeof(path), mpath, "method");
		ret = gp_enum(c, m, "type", path, kv_type_names, 3, &type);
		out->grpc_type = type;
		if (!ret || ret == -ENOENT)
			ret = gp_str(c, m, "service", path, false, 1024, &out->grpc_service);
		if (!ret || ret == -ENOENT)
			ret = gp_str(c, m, "method", path, false, 1024, &out->grpc_method);
		if (ret == -ENOENT && !out->grpc_service && !out->grpc_method)
			return kf_error(c, m, path, "one of service or method is required");
	}
	if (ret && ret != -ENOENT)
		return ret;
	return parse_kv_list(c, match, "headers", mpath, GAPI_MAX_HEADER_MATCHES,
			     GAPI_MAX_HEADER_VALUE_LEN, &out->headers, &out->nr_headers);
}

int gp_parse_matches(const struct kf_ctx *c, const yaml_node_t *rule, const char *rpath,
		     enum gapi_route_kind kind, struct gapi_rule *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t nr;
	int ret;

	ret = gp_list(c, rule, "matches", rpath, GAPI_MAX_MATCHES, &seq, &nr);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)&out->matches, nr, sizeof(*out->matches));
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		struct gapi_match *m = &out->matches[out->nr_matches++];

		ret = gp_item_map(c, seq, i, rpath, "matches", path, sizeof(path), &item);
		if (ret)
			return ret;
		m->line = ynode_line(item);
		if (kind == ROUTE_GRPC)
			ret = parse_grpc_match(c, item, path, m);
		else
			ret = parse_http_match(c, item, path, m);
		if (ret)
			return ret;
	}
	return 0;
}
