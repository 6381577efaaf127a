// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_field.h"

static void vreport(const struct kf_ctx *c, enum log_level level, const yaml_node_t *n,
		    const char *path, const char *fmt, va_list ap)
{
	char text[768];

	vsnprintf(text, sizeof(text), fmt, ap);
	diag_report(c->dg, level, c->d->file, ynode_line(n), path && *path ? path : NULL,
		    "%s", text);
}

int kf_error(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, LOG_ERROR, n, path, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void kf_warn(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, LOG_WARN, n, path, fmt, ap);
	va_end(ap);
}

const char *kf_describe(const yaml_node_t *n, char *buf, size_t len)
{
	if (!n || ynode_is_null(n))
		return "null";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		/* Long values are cut: the line number already finds them. */
		snprintf(buf, len, "\"%.64s%s\"", (const char *)n->data.scalar.value,
			 strlen((const char *)n->data.scalar.value) > 64 ? "..." : "");
		return buf;
	}
}

/* Append src to buf (n bytes used of len), cut to fit; returns the new n. */
static size_t append(char *buf, size_t len, size_t n, const char *src)
{
	size_t l = strlen(src);

	if (n + l >= len)
		l = len - n - 1;
	memcpy(buf + n, src, l);
	buf[n + l] = 0;
	return n + l;
}

/*
 * Every field getter joins its path up front, for the message it may need:
 * millions of times in a large load, so the common shapes ("name", "%s")
 * are copied, not formatted.
 */
const char *kf_join(char *buf, size_t len, const char *parent, const char *fmt, ...)
{
	va_list ap;
	size_t n = 0;

	buf[0] = 0;
	if (parent && *parent) {
		n = append(buf, len, 0, parent);
		n = append(buf, len, n, ".");
	}
	va_start(ap, fmt);
	if (!strchr(fmt, '%'))
		append(buf, len, n, fmt);
	else if (!strcmp(fmt, "%s"))
		append(buf, len, n, va_arg(ap, const char *));
	else
		vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	return buf;
}

/* Common start of every getter: find the value, handle absence. */
static int lookup(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
		  const char *path, bool required, yaml_node_t **out)
{
	*out = ymap_get(c->d, map, key);
	if (!ynode_is_null(*out))
		return 0;
	if (required)
		return kf_error(c, *out ? *out : map, path, "required");
	return -ENOENT;
}

int kf_str(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, const char **out)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *n;
	int ret;

	kf_join(path, sizeof(path), parent, "%s", key);
	ret = lookup(c, map, key, path, required, &n);
	if (ret)
		return ret;
	if (n->type != YAML_SCALAR_NODE)
		return kf_error(c, n, path, "must be a string, got %s",
				kf_describe(n, got, sizeof(got)));
	*out = (const char *)n->data.scalar.value;
	return 0;
}

int kf_int(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, long long min, long long max,
	   long long *out)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *n;
	int ret;

	kf_join(path, sizeof(path), parent, "%s", key);
	ret = lookup(c, map, key, path, required, &n);
	if (ret)
		return ret;
	/* A quoted "80" is a string to the API server, not a number. */
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    ydoc_int(c->d, (const char *)n->data.scalar.value, min, max, out))
		return kf_error(c, n, path, "must be an integer in %lld..%lld, got %s",
				min, max, kf_describe(n, got, sizeof(got)));
	return 0;
}

int kf_bool(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, bool required, bool *out)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *n;
	int ret;

	kf_join(path, sizeof(path), parent, "%s", key);
	ret = lookup(c, map, key, path, required, &n);
	if (ret)
		return ret;
	if (yget_bool(c->d, map, key, out))
		return kf_error(c, n, path, "must be true or false, got %s",
				kf_describe(n, got, sizeof(got)));
	return 0;
}

static int get_typed(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
		     const char *parent, bool required, yaml_node_type_t type,
		     const char *what, yaml_node_t **out)
{
	char path[KF_PATH_MAX], got[96];
	yaml_node_t *n;
	int ret;

	kf_join(path, sizeof(path), parent, "%s", key);
	ret = lookup(c, map, key, path, required, &n);
	if (ret)
		return ret;
	if (n->type != type)
		return kf_error(c, n, path, "must be %s, got %s", what,
				kf_describe(n, got, sizeof(got)));
	*out = n;
	return 0;
}

int kf_map(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, yaml_node_t **out)
{
	return get_typed(c, map, key, parent, required, YAML_MAPPING_NODE, "a mapping", out);
}

int kf_seq(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, yaml_node_t **out)
{
	return get_typed(c, map, key, parent, required, YAML_SEQUENCE_NODE, "a list", out);
}

int kf_control_char(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return *p;
	return 0;
}

int kf_check_text(const struct kf_ctx *c, const yaml_node_t *n, const char *path,
		  const char *s)
{
	int ch = kf_control_char(s);

	if (!ch)
		return 0;
	return kf_error(c, n, path, "contains a control character (\\x%02x), not allowed", ch);
}

int kf_strdup(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}
