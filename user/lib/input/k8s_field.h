/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed field getters that report. Where yaml_doc.h getters only return a
 * code, these also say why, once, through diag: "file:line: path: message",
 * with the line of the offending value (or of its parent map when the key
 * is missing). Every getter returns 0, -ENOENT when the key is absent and
 * not required (nothing reported), or -EINVAL after reporting.
 *
 * Paths are built by the caller with kf_join(): "spec.ports[1].port".
 */
#ifndef GAMMAD_K8S_FIELD_H
#define GAMMAD_K8S_FIELD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/diag.h"
#include "yaml_doc.h"

#define KF_PATH_MAX 256

struct kf_ctx {
	const struct ydoc *d;
	struct diag *dg;
};

/* Report an error about node n (or its line) at path; always returns -EINVAL. */
int kf_error(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Report a warning; the value is ignored, parsing goes on. */
void kf_warn(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* How a node looks in a message: "\"http\"", "a mapping", "a list", "null". */
const char *kf_describe(const yaml_node_t *n, char *buf, size_t len);

/* buf = parent + "." + printf(fmt) (or only the latter when parent is empty). */
const char *kf_join(char *buf, size_t len, const char *parent, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int kf_str(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, const char **out);
int kf_int(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, long long min, long long max,
	   long long *out);
int kf_bool(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, bool required, bool *out);
int kf_map(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, yaml_node_t **out);
int kf_seq(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, yaml_node_t **out);

struct k8s_labels;
/*
 * A string map (labels, annotations, selectors) at path. strict checks label
 * key and value syntax; annotations are free text. k8s_get_string_map() reads
 * the optional map under key and leaves *out empty when it is absent.
 */
int k8s_parse_string_map(const struct kf_ctx *c, const yaml_node_t *map,
			 const char *path, bool strict, struct k8s_labels *out);
int k8s_get_string_map(const struct kf_ctx *c, const yaml_node_t *parent_map,
		       const char *key, const char *parent, bool strict,
		       struct k8s_labels *out);

/*
 * The first control character of s (other than a tab), or 0. No field we
 * keep and print may hold one: it would forge lines in every text output.
 */
int kf_control_char(const char *s);
/* Report s at n/path if it holds a control character; 0 or -EINVAL. */
int kf_check_text(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
		  const char *s);

/* Duplicate a string into *dst (NULL stays NULL); -ENOMEM on failure. */
int kf_strdup(char **dst, const char *src);

#endif
