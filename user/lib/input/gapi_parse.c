// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gapi_int.h"

int gp_str(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	   const char *parent, bool required, size_t max_len, char **out)
{
	char path[KF_PATH_MAX];
	const char *s;
	int ret;

	*out = NULL;
	ret = kf_str(c, map, key, parent, required, &s);
	if (ret)
		return ret;
	if (strlen(s) > max_len)
		return kf_error(c, ymap_get(c->d, map, key), kf_join(path, sizeof(path), parent,
				"%s", key), "longer than %zu characters", max_len);
	/*
	 * No Gateway API string may hold a control character (the CRDs' patterns
	 * and HTTP itself forbid them; a tab inside a header value is HTTP's own).
	 */
	ret = kf_check_text(c, ymap_get(c->d, map, key),
			    kf_join(path, sizeof(path), parent, "%s", key), s);
	if (ret)
		return ret;
	return kf_strdup(out, s);
}

int gp_list(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, size_t max, yaml_node_t **seq, size_t *nr)
{
	char path[KF_PATH_MAX];
	int ret;

	*nr = 0;
	ret = kf_seq(c, map, key, parent, false, seq);
	if (ret)
		return ret;
	*nr = yseq_len(*seq);
	if (*nr > max)
		return kf_error(c, *seq, kf_join(path, sizeof(path), parent, "%s", key),
				"has %zu items, at most %zu allowed", *nr, max);
	return 0;
}

int gp_item_map(const struct kf_ctx *c, const yaml_node_t *seq, size_t i,
		const char *parent, const char *key, char *path, size_t path_len,
		yaml_node_t **out)
{
	char got[96];

	kf_join(path, path_len, parent, "%s[%zu]", key, i);
	*out = yseq_at(c->d, seq, i);
	if (!*out || (*out)->type != YAML_MAPPING_NODE)
		return kf_error(c, *out ? *out : seq, path, "must be a mapping, got %s",
				kf_describe(*out, got, sizeof(got)));
	return 0;
}

int gp_alloc(void **out, size_t n, size_t size)
{
	*out = NULL;
	if (!n)
		return 0;
	*out = calloc(n, size);
	return *out ? 0 : -ENOMEM;
}

int gp_enum(const struct kf_ctx *c, const yaml_node_t *map, const char *key,
	    const char *parent, const char *const *names, size_t nr_names,
	    int *out)
{
	char path[KF_PATH_MAX];
	const char *s;
	int ret;

	ret = kf_str(c, map, key, parent, false, &s);
	if (ret)
		return ret;
	for (size_t i = 0; i < nr_names; i++) {
		if (names[i] && !strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return kf_error(c, ymap_get(c->d, map, key), kf_join(path, sizeof(path), parent,
			"%s", key), "unsupported value \"%.64s\"", s);
}
