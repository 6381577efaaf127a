// SPDX-License-Identifier: Apache-2.0
/*
 * Resizing pinned maps on adoption (datapath_int.h). A map's size is fixed
 * at creation, so a new size is a new map: it is created unpinned with the
 * new programs, filled with the old map's entries, and pinned in place of
 * the old one before any program is attached. Until the links switch to
 * the new programs, the old programs keep using the old maps, whose
 * contents are the same. Counters written by the old programs in between
 * are lost; route entries are only written by the agent, which is here.
 *
 * Copyable: hash maps (route tables, reverse NAT, objects) and arrays
 * (counters). Not copyable: the sockhash (sockets cannot be moved from
 * another process's view) and socket storage (no size).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "datapath_int.h"
#include "map_dump.h"

static bool copyable(enum bpf_map_type t)
{
	switch (t) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return true;
	default:
		return false;
	}
}

int dp_resize_plan(struct dp *dp, struct bpf_map *m, const char *path, uint32_t old_size,
		   uint32_t new_size)
{
	struct dp_resize *r;
	int err;

	if (!copyable(bpf_map__type(m)) || dp->nr_resizes == DP_MAX_RESIZES) {
		pr_warn("datapath: %s keeps its pinned size %u (configured %u): its entries "
			"cannot be moved to a new map", path, old_size, new_size);
		return bpf_map__set_max_entries(m, old_size);
	}
	r = &dp->resizes[dp->nr_resizes];
	r->old_fd = bpf_obj_get(path);
	if (r->old_fd < 0)
		return -errno;
	r->map = m;
	r->old_size = old_size;
	r->new_size = new_size;
	snprintf(r->path, sizeof(r->path), "%s", path);
	dp->nr_resizes++;
	/* Not pinned at load: libbpf would otherwise reuse the old map. */
	err = bpf_map__set_pin_path(m, NULL);
	return err ?: bpf_map__set_max_entries(m, new_size);
}

static int copy_hash(const struct dp_resize *r, int new_fd)
{
	struct map_dump d;
	int err = map_dump_read(r->old_fd, &d);

	if (err)
		return err;
	if (d.nr > r->new_size) {
		pr_err("datapath: %s holds %zu entries, more than the configured %u",
		       r->path, d.nr, r->new_size);
		err = -E2BIG;
	}
	for (size_t i = 0; i < d.nr && !err; i++)
		if (bpf_map_update_elem(new_fd, map_dump_key(&d, i), map_dump_val(&d, i), BPF_ANY))
			err = -errno;
	map_dump_free(&d);
	return err;
}

/* Arrays: the first min(old, new) slots; per-CPU values one per possible CPU. */
static int copy_array(const struct dp_resize *r, int new_fd, bool percpu, int nr_cpus)
{
	size_t size = (bpf_map__value_size(r->map) + 7) & ~(size_t)7;
	uint32_t n = r->old_size < r->new_size ? r->old_size : r->new_size;
	void *buf = calloc(percpu ? (size_t)nr_cpus : 1, size);
	int err = buf ? 0 : -ENOMEM;

	for (uint32_t k = 0; k < n && !err; k++)
		if (bpf_map_lookup_elem(r->old_fd, &k, buf) ||
		    bpf_map_update_elem(new_fd, &k, buf, BPF_ANY))
			err = -errno;
	free(buf);
	return err;
}

static int migrate(struct dp *dp, const struct dp_resize *r)
{
	enum bpf_map_type t = bpf_map__type(r->map);
	int new_fd = bpf_map__fd(r->map);
	int err;

	if (t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY)
		err = copy_array(r, new_fd, t == BPF_MAP_TYPE_PERCPU_ARRAY, dp->nr_cpus);
	else
		err = copy_hash(r, new_fd);
	if (err)
		return err;
	if (unlink(r->path))
		return -errno;
	err = bpf_map__pin(r->map, r->path);
	if (err)
		return err;
	pr_info("datapath: %s resized from %u to %u entries", r->path, r->old_size, r->new_size);
	return 0;
}

int dp_resize_finish(struct dp *dp)
{
	int err = 0;

	for (int i = 0; i < dp->nr_resizes && !err; i++) {
		err = migrate(dp, &dp->resizes[i]);
		if (err)
			pr_err("datapath: resize %s: %s", dp->resizes[i].path, strerror(-err));
	}
	dp_resize_release(dp);
	return err;
}

void dp_resize_release(struct dp *dp)
{
	for (int i = 0; i < dp->nr_resizes; i++)
		if (dp->resizes[i].old_fd >= 0)
			close(dp->resizes[i].old_fd);
	dp->nr_resizes = 0;
}
