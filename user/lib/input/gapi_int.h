/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the Gateway API parsers (gapi_*.c); not a public API.
 * Each returns 0, -ENOENT when an optional field is absent (nothing
 * reported), -EINVAL after reporting, or -ENOMEM.
 */
#ifndef GAMMAD_GAPI_INT_H
#define GAMMAD_GAPI_INT_H

#include "gapi.h"
#include "k8s_field.h"

/* Duplicate a string field of at most max_len bytes into *out. */
int gp_str(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, size_t max_len, char **out);
/* A list of at most max items; *nr is its length (0 when absent). */
int gp_list(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, size_t max, yaml_node_t **seq, size_t *nr);
/* Item i of seq, which must be a mapping; path gets "parent.key[i]". */
int gp_item_map(const struct kf_ctx *c, const yaml_node_t *seq, size_t i,
		const char *parent, const char *key, char *path, size_t path_len,
		yaml_node_t **out);
/* Allocate n zeroed elements (n may be 0: returns 0 with *out NULL). */
int gp_alloc(void **out, size_t n, size_t size);
/* One of a fixed set of names; *out is the index. */
int gp_enum(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, const char *const *names, size_t nr_names,
	    int *out);

/* A parentRef: defaults group gateway.networking.k8s.io, kind Gateway. */
int gp_parse_parent_ref(const struct kf_ctx *c, const yaml_node_t *map,
			const char *path, const char *route_ns,
			struct gapi_parent_ref *out);
/* A backendRef (of a rule, with its weight, or of a filter): kind Service by default. */
int gp_parse_backend_ref(const struct kf_ctx *c, const yaml_node_t *map,
			 const char *path, const char *route_ns, bool with_weight,
			 struct gapi_backend_ref *out);
int gp_parse_filters(const struct kf_ctx *c, const yaml_node_t *map, const char *path,
		     const char *route_ns, struct gapi_filter **out, size_t *nr);
int gp_parse_matches(const struct kf_ctx *c, const yaml_node_t *rule, const char *path,
		     enum gapi_route_kind kind, struct gapi_rule *out);

void gp_backend_ref_free(struct gapi_backend_ref *b);
void gp_filters_free(struct gapi_filter *f, size_t nr);
void gp_match_free(struct gapi_match *m);

#endif
