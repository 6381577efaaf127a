// SPDX-License-Identifier: Apache-2.0
/* The object table: see objtab.h. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "objtab.h"

void objtab_key(struct gammad_obj_key *k, enum gammad_obj_kind kind, uint32_t id)
{
	memset(k, 0, sizeof(*k));
	k->kind = kind;
	k->id = id;
}

bool objtab_set_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	bool cut = n >= size;

	if (cut)
		n = size - 1;
	memset(dst, 0, size);
	if (n)
		memcpy(dst, src, n);
	return cut;
}

/* The writer is the data path's (dp_obj_put): one place logs and counts. */
int objtab_put(struct dp *dp, const struct gammad_obj_key *k, const struct gammad_obj_val *v)
{
	return dp_obj_put(dp, k->kind, k->id, v);
}

int objtab_del(struct dp *dp, const struct gammad_obj_key *k)
{
	return dp_obj_delete(dp, k->kind, k->id);
}

int objtab_get(int map_fd, const struct gammad_obj_key *k, struct gammad_obj_val *v)
{
	return bpf_map_lookup_elem(map_fd, k, v) ? -errno : 0;
}

int objtab_foreach(int map_fd,
		   int (*fn)(const struct gammad_obj_key *, const struct gammad_obj_val *, void *),
		   void *ctx)
{
	struct gammad_obj_key key, next;
	struct gammad_obj_val val;
	void *prev = NULL;
	int ret;

	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(map_fd, &key, &val))
			continue;
		ret = fn(&key, &val, ctx);
		if (ret)
			return ret;
	}
	return errno == ENOENT ? 0 : -errno;
}

const char *objtab_kind_name(uint32_t kind)
{
	static const char *const names[GAMMAD_OBJ_KIND_MAX] = {
		[GAMMAD_OBJ_FRONTEND] = "frontend",
		[GAMMAD_OBJ_TABLE] = "table",
		[GAMMAD_OBJ_SELECTOR] = "selector",
		[GAMMAD_OBJ_BACKEND] = "backend",
		[GAMMAD_OBJ_ENDPOINT_SET] = "endpoint_set",
		[GAMMAD_OBJ_NAMESPACE] = "namespace",
		[GAMMAD_OBJ_KH_TABLE] = "kh_table",
	};

	return kind < GAMMAD_OBJ_KIND_MAX && names[kind] ? names[kind] : "unknown";
}
