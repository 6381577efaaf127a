/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read a whole (non per-CPU) BPF hash map into memory in a few syscalls,
 * with BPF_MAP_LOOKUP_BATCH, falling back to get_next_key + lookup where
 * the kernel has no batch support for the map type.
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

#endif
