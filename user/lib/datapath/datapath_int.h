/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by datapath*.c. */
#ifndef GAMMAD_DATAPATH_INT_H
#define GAMMAD_DATAPATH_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"

struct bpf_map;

/* A pinned map being replaced by a bigger or smaller one. */
struct dp_resize {
	struct bpf_map *map;		/* the new map, of the first object */
	int old_fd;
	uint32_t old_size, new_size;
	char path[PATH_MAX];
};

#define DP_MAX_RESIZES 32

struct dp {
	char pin_dir[PATH_MAX / 2];	/* room for "/<name>" in a PATH_MAX path */
	struct sock_addr_bpf *sa;
	struct sockops_bpf *so;		/* NULL with no_sockmap */
	int cg_fd;
	uint64_t cg_id;
	int sync_outer_fd, sync_inner_fd;
	bool adopted;
	bool sa_loaded;		/* sock_addr loaded: its maps are ours */
	int nr_cpus;
	struct dp_sizes sizes;		/* as configured, for dp_adopt_maps() */
	struct dp_resize resizes[DP_MAX_RESIZES];
	int nr_resizes;
	struct dp_mirror *mirror;	/* NULL: every read goes to the kernel */
};


/*
 * Before load: the pinned map at path has old_size entries, the
 * configuration wants new_size. Maps whose entries can be copied get a new
 * unpinned map of new_size; the others keep old_size (a warning).
 */
int dp_resize_plan(struct dp *dp, struct bpf_map *m, const char *path, uint32_t old_size,
		   uint32_t new_size);
/* After the first object's load: copy, then pin the new maps in place of the old. */
int dp_resize_finish(struct dp *dp);
/* Close what a failed open left. */
void dp_resize_release(struct dp *dp);

#endif
