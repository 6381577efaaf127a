// SPDX-License-Identifier: Apache-2.0
/* Whole-map reads: see map_dump.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "map_dump.h"

/* The kernel's "operation not supported" for a missing batch op (not in libc). */
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

static int read_one_by_one(int fd, struct map_dump *d, size_t cap)
{
	void *prev = NULL;

	d->nr = 0;
	while (d->nr < cap) {
		void *k = map_dump_key(d, d->nr);

		if (bpf_map_get_next_key(fd, prev, k))
			return errno == ENOENT ? 0 : -errno;
		prev = k;
		/* Deleted since get_next_key: skip it, keep walking from it. */
		if (bpf_map_lookup_elem(fd, k, map_dump_val(d, d->nr)))
			continue;
		d->nr++;
	}
	return 0;
}

static int read_batched(int fd, struct map_dump *d, size_t cap)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	/* The batch cursor is opaque: a bucket index for hash maps. */
	__u64 in[8], out[8];
	void *cursor = NULL;

	d->nr = 0;
	for (;;) {
		__u32 count = (__u32)(cap - d->nr);
		int err;

		if (!count)
			return 0;
		err = bpf_map_lookup_batch(fd, cursor, out, map_dump_key(d, d->nr),
					   map_dump_val(d, d->nr), &count, &opts);
		err = err ? -errno : 0;
		d->nr += count;
		if (err == -ENOENT)
			return 0;
		if (err)
			return err;
		memcpy(in, out, sizeof(in));
		cursor = in;
	}
}

int map_dump_read(int fd, struct map_dump *out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	size_t cap;
	int err;

	memset(out, 0, sizeof(*out));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	out->key_size = info.key_size;
	out->val_size = info.value_size;
	/* One spare slot: a batch may report ENOSPC with exactly cap left. */
	cap = (size_t)info.max_entries + 1;
	out->keys = calloc(cap, out->key_size);
	out->vals = calloc(cap, out->val_size);
	if (!out->keys || !out->vals) {
		map_dump_free(out);
		return -ENOMEM;
	}
	err = read_batched(fd, out, cap);
	if (err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP)
		err = read_one_by_one(fd, out, cap);
	if (err)
		map_dump_free(out);
	return err;
}

void map_dump_free(struct map_dump *d)
{
	free(d->keys);
	free(d->vals);
	memset(d, 0, sizeof(*d));
}
