// SPDX-License-Identifier: Apache-2.0
/* The object table: see objtab.h. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "log.h"
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

static int obj_fd(struct dp *dp)
{
	int fd = dp_map_fd(dp, GAMMAD_MAP_OBJECTS);

	if (fd < 0)
		pr_err("map %s: %s", GAMMAD_MAP_OBJECTS, strerror(-fd));
	return fd;
}

int objtab_put(struct dp *dp, const struct gammad_obj_key *k, const struct gammad_obj_val *v)
{
	int fd = obj_fd(dp);

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		int err = -errno;

		pr_err("object %s %u (%s/%s): %s", objtab_kind_name(k->kind), k->id,
		       v->namespace, v->name, strerror(-err));
		return err;
	}
	return 0;
}

int objtab_del(struct dp *dp, const struct gammad_obj_key *k)
{
	int fd = obj_fd(dp);

	if (fd < 0)
		return fd;
	if (bpf_map_delete_elem(fd, k) && errno != ENOENT) {
		int err = -errno;

		pr_err("object %s %u: %s", objtab_kind_name(k->kind), k->id, strerror(-err));
		return err;
	}
	return 0;
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
	};

	return kind < GAMMAD_OBJ_KIND_MAX && names[kind] ? names[kind] : "unknown";
}
