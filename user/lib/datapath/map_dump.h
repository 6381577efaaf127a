/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read a whole (non per-CPU) BPF hash map into memory in a few syscalls,
 * with BPF_MAP_LOOKUP_BATCH, falling back to get_next_key + lookup where
 * the kernel has no batch support for the map type; and write many
 * entries the same way (BPF_MAP_UPDATE_BATCH, else one by one).
 */
#ifndef GAMMAD_MAP_DUMP_H
#define GAMMAD_MAP_DUMP_H

#include <stdbool.h>
#include <stddef.h>

struct map_dump {
	void *keys;		/* nr keys of key_size bytes */
	void *vals;		/* nr values of val_size bytes */
	size_t nr;
	size_t key_size, val_size;
	bool borrowed;		/* keys and vals are someone else's (dp_map_view) */
};

#define map_dump_key(d, i) ((void *)((char *)(d)->keys + (i) * (d)->key_size))
#define map_dump_val(d, i) ((void *)((char *)(d)->vals + (i) * (d)->val_size))

/* Every entry of the map behind fd; 0 or a negative errno. */
int map_dump_read(int fd, struct map_dump *out);
void map_dump_free(struct map_dump *d);

/* Entries per BPF_MAP_UPDATE_BATCH of map_write_many() (bounds one syscall's work). */
#define MAP_WRITE_CHUNK 1024

/*
 * Write n entries (keys: n * ksz bytes, vals: n * vsz, vsz a per-CPU map's
 * whole value) to the map behind fd, in order, BPF_ANY: in chunks of
 * MAP_WRITE_CHUNK with BPF_MAP_UPDATE_BATCH; where the kernel or the map
 * type refuses batches (EINVAL, ENOTSUPP, EOPNOTSUPP) the rest one by one,
 * with the same result. *taken: how many the kernel took (always a
 * prefix), also on an error. 0 or -errno; an error other than a full map
 * (E2BIG, ENOSPC: the caller's to report) is logged with the map's name.
 */
int map_write_many(int fd, const void *keys, const void *vals, size_t ksz, size_t vsz,
		   size_t n, size_t *taken);

#endif
