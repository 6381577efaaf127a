/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by datapath*.c. */
#ifndef GAMMAD_DATAPATH_INT_H
#define GAMMAD_DATAPATH_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"

struct bpf_map;
struct bpf_object;

/* A pinned map being replaced by a bigger or smaller one. */
struct dp_resize {
	struct bpf_map *map;		/* the new map, of the first object */
	int old_fd;
	uint32_t old_size, new_size;
	char path[PATH_MAX];
};

#define DP_MAX_RESIZES 32

/*
 * What the programs write into a map while an upgrade runs, which decides
 * what is carried over after the switch (layout.c).
 */
enum dp_layout_live {
	DP_LIVE_AGENT,		/* route tables: only the agent writes, and it waits */
	DP_LIVE_DATAPATH,	/* conntrack, affinity: entries missing are copied again */
	DP_LIVE_COUNTERS,	/* per-CPU counters: what was counted since is added */
};

struct dp_layout;

/* A pinned map of the previous layout being moved into this build's map. */
struct dp_migration {
	const struct dp_layout *layout;	/* registry entry (layout.c) */
	struct bpf_map *map;		/* the new map, of the first object */
	int old_fd;
	int type;			/* enum bpf_map_type */
	uint32_t key_size, val_size;	/* of the new map */
	uint32_t old_entries;		/* max_entries of the old map */
	bool adopted;			/* switched before a restart: only the commit is left */
	size_t filled;
	void *snap;			/* DP_LIVE_COUNTERS: old values as copied */
	uint32_t snap_nr;
	char old_path[PATH_MAX], path[PATH_MAX];
};

#define DP_MAX_MIGRATIONS 16

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
	struct dp_migration migrations[DP_MAX_MIGRATIONS];
	int nr_migrations;		/* layout upgrades not yet committed */
	int ct_old_slot_fd;		/* the TC programs' gammad_ctold_v1 while it holds the old conntrack map */
	bool tc_follows;		/* dp_opts: the TC links are switched too (layout.c) */
	struct dp_wq *wq;		/* dp_batch_begin(): writes queued (wq.c); NULL: written now */
};

/*
 * Stages of the write queue (wq.c), written in this order: the publication
 * order of datapath.h, with the object table's begin markers (hash 0)
 * before what they announce and its final entries after it, and a
 * frontend's object (which names the table it points at) after the flip.
 */
enum dp_wq_stage {
	DP_WQ_OBJ_BEGIN,
	DP_WQ_COUNTERS,
	DP_WQ_EP,
	DP_WQ_BE,
	DP_WQ_ALIAS,
	DP_WQ_SEL,
	DP_WQ_KH,		/* kernel HTTP records: entries, rules, alias slots, rule backends */
	DP_WQ_KH_TAB,		/* kernel HTTP table entries (publish their records) */
	DP_WQ_DATA,		/* consumer tables, kernel HTTP classes and the rest */
	DP_WQ_OBJ,
	DP_WQ_FE,
	DP_WQ_OBJ_FE,
	DP_WQ_NR
};

/* What a flush reports (wq.c knows nothing of struct dp). */
struct wq_hooks {
	void (*taken)(void *ctx, int fd, const void *key, const void *val);	/* the mirror */
	void (*full)(int fd);	/* -E2BIG/-ENOSPC: "map X is full ... --map-size" */
};

struct dp_wq *wq_new(int nr_cpus, const struct wq_hooks *hooks, void *ctx);
void wq_free(struct dp_wq *q);
/* Queue a write (key and value copied); 0 or -errno. */
int wq_put(struct dp_wq *q, enum dp_wq_stage st, int fd, const void *k, const void *v);
/* Write the queue, stage by stage; 0 or the first -errno (the rest dropped). */
int wq_flush(struct dp_wq *q);


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

/* The map-in-map dp_sync() updates (sync.c). */
int dp_sync_init(struct dp *dp);

/*
 * Layout upgrades (layout.c). Before load: a map of the registry whose
 * previous layout is pinned is planned (1; the new map gets its pin path
 * and size), 0 when there is nothing to do (also when an interrupted
 * upgrade is only left to commit). Before load, too: a pinned map of a
 * newer layout than obj's is refused (-EPROTO). After the first object's
 * load: fill the new maps (on failure their pins go, nothing switched).
 * After every program is switched: commit (old pins go, what the old
 * programs wrote meanwhile is carried over).
 */
int dp_layout_refuse_newer(const struct dp *dp, struct bpf_object *obj);
int dp_layout_plan(struct dp *dp, struct bpf_map *m, const char *path, uint32_t want);
int dp_layout_fill(struct dp *dp);
/* An upgrade was planned in dp_open (its TC links must switch too). */
bool dp_layout_pending(const struct dp *dp);
/* Right before programs switch: what the old ones wrote since the fill. */
void dp_layout_catch_up(struct dp *dp);
/* TEST ONLY (next-layout build): GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS between two TC links' switches */
void dp_layout_test_link_pause(void);
/* TEST ONLY: GAMMAD_TEST_LAYOUT_LINK_ORDER=down, the TC links switch by descending ifindex */
bool dp_layout_test_links_down(void);
int dp_layout_commit(struct dp *dp);
void dp_layout_release(struct dp *dp);
/*
 * The conntrack map's upgrade under way (not rolled forward): the old map's
 * fd, else -1. The TC programs load with it as their gammad_ctold_v1
 * template and hold it in slot_fd from before the switch (bpf/lib/ct.h);
 * the commit empties the slot after its last copy.
 */
int dp_layout_ct_old(const struct dp *dp);
void dp_layout_ct_slot(struct dp *dp, int slot_fd);

/*
 * datapath.c, for the other objects of the data path (datapath_khttp.c):
 * attach a cgroup program through the pinned link <pin_dir>/link_<name
 * without "gammad_"> (adopting it), detach and unpin such a link, and give
 * every map of obj its pin path under the pin dir (shared maps adopted,
 * the object's own pinned at load).
 */
struct bpf_program;
int dp_attach_cgroup_prog(struct dp *dp, struct bpf_program *p);
int dp_detach_pinned_link(const struct dp *dp, const char *hook);
int dp_pin_all_maps(struct dp *dp, struct bpf_object *obj);

/* pin_info.c: the program a pinned link or program of ours runs; 0 if none. */
uint32_t dp_pinned_prog_id(const char *path);

#endif
