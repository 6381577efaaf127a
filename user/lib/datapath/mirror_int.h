/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The route maps' in-memory mirror (mirror.c): tables by map fd and name.
 * datapath.c owns one per data path and makes the dp_* calls of datapath.h
 * from these; the mirror itself knows nothing of struct dp.
 */
#ifndef GAMMAD_MIRROR_INT_H
#define GAMMAD_MIRROR_INT_H

#include <stdbool.h>
#include <stddef.h>

struct dp_mirror;
struct map_dump;

/* The maps mirrored: mirror_nr_maps() names, in the order mirror_load() takes fds. */
size_t mirror_nr_maps(void);
const char *mirror_map_name(size_t i);
/* Read every mirrored map (fds[i] of mirror_map_name(i)) from the kernel. */
int mirror_load(const int *fds, struct dp_mirror **out);
void mirror_free(struct dp_mirror *m);
bool mirror_has(struct dp_mirror *m, const char *name);
/* A write or delete the kernel took; maps not mirrored are ignored. -ENOMEM: drop the mirror. */
int mirror_put(struct dp_mirror *m, int fd, const void *key, const void *val);
void mirror_delete(struct dp_mirror *m, int fd, const void *key);
/* -ENOENT: not a mirrored map. */
int mirror_dump(struct dp_mirror *m, const char *name, struct map_dump *d);
/* mirror_dump() without the copy: d points into m until its next change. */
int mirror_view(struct dp_mirror *m, const char *name, struct map_dump *d);
int mirror_lookup(struct dp_mirror *m, const char *name, const void *key, void *val);
/* Entries the kernel holds differently from the mirror (both sides' extra keys too). */
int mirror_drift(struct dp_mirror *m, size_t *drift);

#endif
