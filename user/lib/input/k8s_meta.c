// SPDX-License-Identifier: Apache-2.0
/* Object metadata, labels, names, addresses and times: the pieces every kind shares. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "k8s.h"
#include "k8s_field.h"

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool is_alnum(char ch)
{
	return isascii((unsigned char)ch) && isalnum((unsigned char)ch);
}

/* One DNS-1123 label of n characters starting at s. */
static bool is_label_run(const char *s, size_t n)
{
	if (!n || n > K8S_LABEL_NAME_MAX || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool k8s_is_dns1123_label(const char *s)
{
	return s && is_label_run(s, strlen(s));
}

bool k8s_is_dns1123_subdomain(const char *s)
{
	const char *dot;

	if (!s || !*s || strlen(s) > K8S_NAME_MAX)
		return false;
	for (;;) {
		dot = strchr(s, '.');
		if (!is_label_run(s, dot ? (size_t)(dot - s) : strlen(s)))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

bool k8s_is_port_name(const char *s)
{
	bool letter = false;
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
		letter |= s[i] >= 'a' && s[i] <= 'z';
	}
	return letter;
}

/* Qualified name: <= 63 of [-_.A-Za-z0-9] with alphanumeric ends. */
static bool is_qualified_name(const char *s, size_t n)
{
	if (!n || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

bool k8s_is_label_key(const char *s)
{
	const char *slash;
	char prefix[K8S_NAME_MAX + 1];

	if (!s)
		return false;
	slash = strchr(s, '/');
	if (!slash)
		return is_qualified_name(s, strlen(s));
	if ((size_t)(slash - s) > K8S_NAME_MAX)
		return false;
	memcpy(prefix, s, slash - s);
	prefix[slash - s] = 0;
	return k8s_is_dns1123_subdomain(prefix) &&
	       is_qualified_name(slash + 1, strlen(slash + 1));
}

bool k8s_is_label_value(const char *s)
{
	return s && (!*s || is_qualified_name(s, strlen(s)));
}

int k8s_parse_protocol(const char *s, uint8_t *out)
{
	if (!strcmp(s, "TCP"))
		*out = L4_TCP;
	else if (!strcmp(s, "UDP"))
		*out = L4_UDP;
	else if (!strcmp(s, "SCTP"))
		*out = L4_SCTP;
	else
		return -EINVAL;
	return 0;
}

const char *l4_proto_name(uint8_t proto)
{
	switch (proto) {
	case L4_TCP:
		return "TCP";
	case L4_UDP:
		return "UDP";
	case L4_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

void k8s_labels_free(struct k8s_labels *l)
{
	for (size_t i = 0; i < l->nr; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

static int labels_add(struct k8s_labels *l, const char *key, const char *value)
{
	struct k8s_label *items = l->items;

	/* Capacity doubles at powers of two: 100k labels cost no 100k copies. */
	if (!(l->nr & (l->nr - 1))) {
		items = realloc(l->items, (l->nr ? l->nr * 2 : 1) * sizeof(*items));
		if (!items)
			return -ENOMEM;
	}
	l->items = items;
	items[l->nr].key = strdup(key);
	items[l->nr].value = strdup(value);
	if (!items[l->nr].key || !items[l->nr].value) {
		free(items[l->nr].key);
		free(items[l->nr].value);
		return -ENOMEM;
	}
	l->nr++;
	return 0;
}

int k8s_labels_copy(struct k8s_labels *dst, const struct k8s_labels *src)
{
	int ret;

	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->nr; i++) {
		ret = labels_add(dst, src->items[i].key, src->items[i].value);
		if (ret) {
			k8s_labels_free(dst);
			return ret;
		}
	}
	dst->sorted = src->sorted;
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct k8s_label *)a)->key, ((const struct k8s_label *)b)->key);
}

const char *k8s_label_get(const struct k8s_labels *l, const char *key)
{
	if (l->sorted) {
		struct k8s_label want = { .key = (char *)key };
		const struct k8s_label *got = l->nr ? bsearch(&want, l->items, l->nr,
							      sizeof(want), label_cmp) : NULL;

		return got ? got->value : NULL;
	}
	for (size_t i = 0; i < l->nr; i++)
		if (!strcmp(l->items[i].key, key))
			return l->items[i].value;
	return NULL;
}

bool k8s_labels_match(const struct k8s_labels *selector, const struct k8s_labels *labels)
{
	for (size_t i = 0; i < selector->nr; i++) {
		const char *v = k8s_label_get(labels, selector->items[i].key);

		if (!v || strcmp(v, selector->items[i].value))
			return false;
	}
	return true;
}

/*
 * A string map (labels, annotations, selector). Label syntax is checked only
 * when strict: annotation values are free text.
 */
int k8s_parse_string_map(const struct kf_ctx *c, const yaml_node_t *map,
			 const char *path, bool strict, struct k8s_labels *out)
{
	char kpath[KF_PATH_MAX], got[96];
	yaml_node_t *k, *v;
	int ret;

	memset(out, 0, sizeof(*out));
	ymap_for_each(c->d, map, k, v) {
		const char *key = ynode_str(k), *value = v ? ynode_str(v) : NULL;

		kf_join(kpath, sizeof(kpath), path, "%s", key ? key : "?");
		if (!key || (strict ? !k8s_is_label_key(key) : !*key)) {
			ret = kf_error(c, k, kpath, "invalid key %s", kf_describe(k, got, sizeof(got)));
			goto err;
		}
		if (v && v->type != YAML_SCALAR_NODE) {
			ret = kf_error(c, v, kpath, "must be a string, got %s",
				       kf_describe(v, got, sizeof(got)));
			goto err;
		}
		if (!value)
			value = "";
		if (strict && !k8s_is_label_value(value)) {
			ret = kf_error(c, v, kpath,
				       "invalid label value %s: at most 63 of [-_.A-Za-z0-9], starting and ending alphanumeric",
				       kf_describe(v, got, sizeof(got)));
			goto err;
		}
		/* Duplicate keys never get here: the YAML composer refuses them. */
		ret = labels_add(out, key, value);
		if (ret)
			goto err;
	}
	if (out->nr)
		qsort(out->items, out->nr, sizeof(*out->items), label_cmp);
	out->sorted = true;
	return 0;
err:
	k8s_labels_free(out);
	return ret;
}

/* Optional string map under key; an absent one stays empty. */
int k8s_get_string_map(const struct kf_ctx *c, const yaml_node_t *parent_map,
		       const char *key, const char *parent, bool strict,
		       struct k8s_labels *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *map;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = kf_map(c, parent_map, key, parent, false, &map);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	return k8s_parse_string_map(c, map, kf_join(path, sizeof(path), parent, "%s", key),
				    strict, out);
}

void k8s_meta_free(struct k8s_meta *m)
{
	free(m->namespace);
	free(m->name);
	free(m->uid);
	free(m->loc.file);
	k8s_labels_free(&m->labels);
	k8s_labels_free(&m->annotations);
	memset(m, 0, sizeof(*m));
}

static int parse_meta_names(const struct kf_ctx *c, const yaml_node_t *meta,
			    bool namespaced, struct k8s_meta *out)
{
	const char *name, *ns = "default", *uid = NULL;
	int ret;

	ret = kf_str(c, meta, "name", "metadata", true, &name);
	if (ret)
		return ret;
	if (!k8s_is_dns1123_subdomain(name))
		return kf_error(c, ymap_get(c->d, meta, "name"), "metadata.name",
				"invalid name \"%s\": must be lower-case alphanumerics, '-' or '.', at most %d characters",
				name, K8S_NAME_MAX);
	if (namespaced) {
		ret = kf_str(c, meta, "namespace", "metadata", false, &ns);
		if (ret == -ENOENT)
			ns = "default";
		else if (ret)
			return ret;
		else if (!k8s_is_dns1123_label(ns))
			return kf_error(c, ymap_get(c->d, meta, "namespace"), "metadata.namespace",
					"invalid namespace \"%s\": must be a DNS-1123 label (lower-case alphanumerics and '-', at most %d characters)",
					ns, K8S_LABEL_NAME_MAX);
	}
	ret = kf_str(c, meta, "uid", "metadata", false, &uid);
	if (ret && ret != -ENOENT)
		return ret;
	if (kf_strdup(&out->name, name) || (namespaced && kf_strdup(&out->namespace, ns)) ||
	    kf_strdup(&out->uid, uid))
		return -ENOMEM;
	return 0;
}

static int parse_meta_times(const struct kf_ctx *c, const yaml_node_t *meta,
			    struct k8s_meta *out)
{
	const char *ts;
	int ret;

	ret = kf_int(c, meta, "generation", "metadata", false, 0, INT64_MAX, &out->generation);
	if (ret && ret != -ENOENT)
		return ret;
	ret = kf_str(c, meta, "creationTimestamp", "metadata", false, &ts);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (k8s_parse_time(ts, &out->creation_time))
		return kf_error(c, ymap_get(c->d, meta, "creationTimestamp"),
				"metadata.creationTimestamp",
				"must be an RFC 3339 time such as 2024-01-02T03:04:05Z, got \"%s\"", ts);
	return 0;
}

int k8s_parse_meta(const struct ydoc *d, const yaml_node_t *root, bool namespaced,
		   struct diag *dg, struct k8s_meta *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *meta;
	int ret;

	memset(out, 0, sizeof(*out));
	out->loc.line = ynode_line(root);
	if (kf_strdup(&out->loc.file, d->file))
		return -ENOMEM;
	if (!root || root->type != YAML_MAPPING_NODE) {
		ret = kf_error(&c, root, NULL, "document must be a mapping");
		goto err;
	}
	ret = kf_map(&c, root, "metadata", NULL, true, &meta);
	if (!ret)
		ret = parse_meta_names(&c, meta, namespaced, out);
	if (!ret)
		ret = parse_meta_times(&c, meta, out);
	if (!ret)
		ret = k8s_get_string_map(&c, meta, "labels", "metadata", true, &out->labels);
	if (!ret)
		ret = k8s_get_string_map(&c, meta, "annotations", "metadata", false,
					 &out->annotations);
	if (ret)
		goto err;
	return 0;
err:
	k8s_meta_free(out);
	return ret;
}

/* "+HH:MM", "-HH:MM" or "Z" to seconds east of UTC. */
static int parse_offset(const char *s, long *out)
{
	int hh, mm, n = 0;

	if (!strcmp(s, "Z") || !strcmp(s, "z")) {
		*out = 0;
		return 0;
	}
	if ((s[0] != '+' && s[0] != '-') ||
	    sscanf(s + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || s[1 + n] || n != 5 ||
	    hh > 23 || mm > 59)
		return -EINVAL;
	*out = (hh * 3600L + mm * 60L) * (s[0] == '-' ? -1 : 1);
	return 0;
}

int k8s_parse_time(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	long offset;
	int n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (parse_offset(s, &offset))
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm) - offset;
	return 0;
}

bool k8s_group_is_core(const char *group)
{
	return !group || !*group || !strcmp(group, "core");
}
