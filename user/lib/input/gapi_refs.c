// SPDX-License-Identifier: Apache-2.0
/*
 * References to other objects: a route's parentRefs and the backendRefs of
 * its rules and of its RequestMirror filters.
 */
#include <errno.h>
#include <string.h>

#include "gapi_int.h"

/* Optional string with a default. */
static int str_or_default(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
			  const char *parent, size_t max_len, const char *dflt, char **out)
{
	int ret = gp_str(c, map, key, parent, false, max_len, out);

	if (ret == -ENOENT)
		return kf_strdup(out, dflt);
	return ret;
}

static int opt_port(const struct kf_ctx *c, const yaml_node_t *map, const char *parent,
		    uint16_t *out)
{
	long long v;
	int ret = kf_int(c, map, "port", parent, false, 1, 65535, &v);

	*out = 0;
	if (ret == -ENOENT)
		return 0;
	if (!ret)
		*out = (uint16_t)v;
	return ret;
}

int gp_parse_backend_ref(const struct kf_ctx *c, const yaml_node_t *map,
			 const char *path, const char *route_ns, bool with_weight,
			 struct gapi_backend_ref *out)
{
	long long weight = 1;
	int ret;

	out->line = ynode_line(map);
	out->weight = 1;
	ret = str_or_default(c, map, "group", path, K8S_NAME_MAX, "", &out->group);
	if (!ret)
		ret = str_or_default(c, map, "kind", path, 63, "Service", &out->kind);
	if (!ret)
		ret = str_or_default(c, map, "namespace", path, K8S_LABEL_NAME_MAX, route_ns,
				     &out->namespace);
	if (!ret)
		ret = gp_str(c, map, "name", path, true, K8S_NAME_MAX, &out->name);
	if (!ret)
		ret = opt_port(c, map, path, &out->port);
	if (ret)
		return ret;
	if (!out->port && !*out->group && !strcmp(out->kind, "Service"))
		return kf_error(c, map, path, "port is required for a Service reference");
	if (with_weight) {
		ret = kf_int(c, map, "weight", path, false, 0, GAPI_MAX_WEIGHT, &weight);
		if (ret && ret != -ENOENT)
			return ret;
		out->weight = (uint32_t)weight;
	}
	return 0;
}

int gp_parse_parent_ref(const struct kf_ctx *c, const yaml_node_t *map,
			const char *path, const char *route_ns,
			struct gapi_parent_ref *out)
{
	int ret;

	out->line = ynode_line(map);
	ret = str_or_default(c, map, "group", path, K8S_NAME_MAX, GAPI_GROUP, &out->group);
	if (!ret)
		ret = str_or_default(c, map, "kind", path, 63, "Gateway", &out->kind);
	if (!ret)
		ret = str_or_default(c, map, "namespace", path, K8S_LABEL_NAME_MAX, route_ns,
				     &out->namespace);
	if (!ret)
		ret = gp_str(c, map, "name", path, true, K8S_NAME_MAX, &out->name);
	if (!ret)
		ret = gp_str(c, map, "sectionName", path, false, K8S_NAME_MAX,
			     &out->section_name);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret)
		ret = opt_port(c, map, path, &out->port);
	return ret;
}
