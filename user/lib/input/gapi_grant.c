// SPDX-License-Identifier: Apache-2.0
/*
 * ReferenceGrant. Mesh backendRefs need no grant, so the translator does not
 * consult these yet; they are parsed and validated so that a bad one is
 * reported and so that later consumers find them in the model.
 */
#include <errno.h>
#include <string.h>

#include "gapi_int.h"

static int parse_entry(const struct kf_ctx *c, const yaml_node_t *item, const char *path,
		       bool from, char **group, char **kind, char **third)
{
	int ret;

	ret = gp_str(c, item, "group", path, true, K8S_NAME_MAX, group);
	if (!ret)
		ret = gp_str(c, item, "kind", path, true, 63, kind);
	if (!ret)
		ret = gp_str(c, item, from ? "namespace" : "name", path, from,
			     from ? K8S_LABEL_NAME_MAX : K8S_NAME_MAX, third);
	return ret == -ENOENT ? 0 : ret;
}

static int parse_side(const struct kf_ctx *c, const yaml_node_t *spec, bool from,
		      struct gapi_reference_grant *g)
{
	const char *key = from ? "from" : "to";
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t n;
	int ret;

	ret = gp_list(c, spec, key, "spec", GAPI_MAX_GRANT_ENTRIES, &seq, &n);
	if (ret == -ENOENT || (!ret && !n))
		return kf_error(c, spec, from ? "spec.from" : "spec.to",
				"at least one entry is required");
	if (!ret)
		ret = from ? gp_alloc((void **)&g->from, n, sizeof(*g->from)) :
			     gp_alloc((void **)&g->to, n, sizeof(*g->to));
	for (size_t i = 0; !ret && i < n; i++) {
		ret = gp_item_map(c, seq, i, "spec", key, path, sizeof(path), &item);
		if (ret)
			break;
		if (from) {
			struct gapi_grant_from *f = &g->from[g->nr_from++];

			ret = parse_entry(c, item, path, true, &f->group, &f->kind,
					  &f->namespace);
		} else {
			struct gapi_grant_to *t = &g->to[g->nr_to++];

			ret = parse_entry(c, item, path, false, &t->group, &t->kind, &t->name);
		}
	}
	return ret;
}

int gapi_parse_reference_grant(const struct ydoc *d, struct diag *dg,
			       struct gapi_reference_grant *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *spec;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = k8s_parse_meta(d, d->root, true, dg, &out->meta);
	if (ret)
		return ret;
	ret = kf_map(&c, d->root, "spec", "", true, &spec);
	if (!ret)
		ret = parse_side(&c, spec, true, out);
	if (!ret)
		ret = parse_side(&c, spec, false, out);
	if (ret)
		gapi_reference_grant_free(out);
	return ret;
}
