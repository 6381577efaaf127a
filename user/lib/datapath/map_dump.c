// SPDX-License-Identifier: Apache-2.0
/* Whole-map reads and many-entry writes: see map_dump.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "map_dump.h"

/* The kernel's "operation not supported" for a missing batch op (not in libc). */
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

/*
 * Buffers grow with what the map holds, not with its capacity: a map
 * sized for 200,000 entries holding 1,000 costs a few pages, not megabytes
 * of page faults on every read.
 */
#define DUMP_FIRST_CAP 1024

static int grow(struct map_dump *d, size_t *cap, size_t max)
{
	size_t n = *cap ? *cap * 2 : DUMP_FIRST_CAP;
	void *k, *v;

	if (n > max)
		n = max;
	if (n <= *cap)
		return -E2BIG;
	k = realloc(d->keys, n * d->key_size);
	if (!k)
		return -ENOMEM;
	d->keys = k;
	v = realloc(d->vals, n * d->val_size);
	if (!v)
		return -ENOMEM;
	d->vals = v;
	*cap = n;
	return 0;
}

static int read_one_by_one(int fd, struct map_dump *d, size_t *cap, size_t max)
{
	void *prev = NULL;
	int err;

	d->nr = 0;
	for (;;) {
		void *k;

		if (d->nr == *cap && (err = grow(d, cap, max)))
			return err == -E2BIG ? 0 : err;
		k = map_dump_key(d, d->nr);
		if (bpf_map_get_next_key(fd, prev, k))
			return errno == ENOENT ? 0 : -errno;
		prev = k;
		/* Deleted since get_next_key: skip it, keep walking from it. */
		if (bpf_map_lookup_elem(fd, k, map_dump_val(d, d->nr)))
			continue;
		d->nr++;
	}
}

static int read_batched(int fd, struct map_dump *d, size_t *cap, size_t max)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	/* The batch cursor is opaque: a bucket index for hash maps. */
	__u64 in[8], out[8];
	void *cursor = NULL;

	d->nr = 0;
	for (;;) {
		__u32 count;
		int err;

		if (*cap - d->nr < DUMP_FIRST_CAP / 2 && *cap < max && (err = grow(d, cap, max)))
			return err;
		count = (__u32)(*cap - d->nr);
		err = bpf_map_lookup_batch(fd, cursor, out, map_dump_key(d, d->nr),
					   map_dump_val(d, d->nr), &count, &opts);
		err = err ? -errno : 0;
		d->nr += count;
		if (err == -ENOENT)
			return 0;
		/* One bucket holds more than the room left: make room, same cursor. */
		if (err == -ENOSPC && *cap < max) {
			err = grow(d, cap, max);
			if (err)
				return err;
			continue;
		}
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
	size_t cap = 0, max;
	int err;

	memset(out, 0, sizeof(*out));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	out->key_size = info.key_size;
	out->val_size = info.value_size;
	/* One spare slot: a batch may report ENOSPC with exactly the entries left. */
	max = (size_t)info.max_entries + 1;
	err = grow(out, &cap, max);
	if (!err)
		err = read_batched(fd, out, &cap, max);
	if (err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP)
		err = read_one_by_one(fd, out, &cap, max);
	if (err)
		map_dump_free(out);
	return err;
}

void map_dump_free(struct map_dump *d)
{
	if (!d->borrowed) {
		free(d->keys);
		free(d->vals);
	}
	memset(d, 0, sizeof(*d));
}

/* ---- writes ----------------------------------------------------------------- */

static bool batch_refused(int err)
{
	return err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP;
}

static void write_failed(int fd, size_t n, size_t taken, int err)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (err == -E2BIG || err == -ENOSPC)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		snprintf(info.name, sizeof(info.name), "fd %d", fd);
	pr_err("datapath: write %zu entries to map %s: %s (%zu written)", n, info.name,
	       strerror(-err), taken);
}

int map_write_many(int fd, const void *keys, const void *vals, size_t ksz, size_t vsz,
		   size_t n, size_t *taken)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	const char *k = keys, *v = vals;
	bool single = false;
	size_t done = 0;
	int err = 0;

	while (done < n && !err) {
		__u32 count = n - done < MAP_WRITE_CHUNK ? (__u32)(n - done) : MAP_WRITE_CHUNK;

		if (single) {
			count = 1;
			if (bpf_map_update_elem(fd, k + done * ksz, v + done * vsz, BPF_ANY))
				err = -errno, count = 0;
		} else if (bpf_map_update_batch(fd, k + done * ksz, v + done * vsz, &count, &opts)) {
			err = -errno;
			if (count > n - done)
				count = 0;	/* never trust more than was asked */
			/*
			 * Refused (a kernel or map type without the batch op), or an
			 * entry the kernel rejected: one by one from there says which
			 * and writes exactly what single updates would.
			 */
			if (batch_refused(err)) {
				single = true;
				err = 0;
			}
		} else if (!count) {
			err = -EIO;	/* no progress: never spin */
		}
		done += count;
	}
	*taken = done;
	if (err)
		write_failed(fd, n, done, err);
	return err;
}
