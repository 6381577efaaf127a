/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by image_apply*.c: the id allocator and the apply context. */
#ifndef GAMMAD_IMAGE_APPLY_INT_H
#define GAMMAD_IMAGE_APPLY_INT_H

#include <stdbool.h>

#include "datapath/map_dump.h"
#include "image_apply.h"

/* An object of the object table whose content is complete. */
struct ia_known {
	uint64_t ident, hash;
	uint32_t id, ref;
};

/*
 * Per kind: the complete objects, open addressing by ident (an ident may
 * have several: contents of one object over time, until retired; id 0:
 * empty), and the ids in use.
 */
struct ia_kind {
	struct ia_known *known;
	size_t nr_known, cap_known;	/* cap_known: 0 or a power of two */
	uint64_t *used;			/* bitmap of ids 0..limit-1 in use */
	uint32_t limit;
	uint32_t cursor;		/* next-fit allocation */
};

/*
 * What the route maps hold, read at the start of an apply: an object is
 * only reused when its entries are really there (an agent killed inside a
 * retire, or someone with bpftool, may have removed them).
 */
struct ia_present {
	uint64_t *ids;		/* id << 32 | value, sorted */
	size_t nr;
};

/* What ia_apply() keeps from one apply to the next (image_apply.h). */
struct ia_state {
	bool valid;
	bool khttp;		/* the last apply had kernel HTTP tables */
	struct ia_kind kinds[GAMMAD_OBJ_KIND_MAX];
	/*
	 * Selector (img_selector.id) -> hash of the names its kernel selector
	 * was written with (the route of the class it is named after): a
	 * delta finds the frontends to switch when that class changes.
	 */
	struct ia_u64map *sel_names;
};

struct ia_ctx {
	struct dp *dp;
	const struct img *img;
	struct ia_stats *stats;
	struct ia_kind kinds[GAMMAD_OBJ_KIND_MAX];
	struct ia_state *state;			/* NULL: none kept */
	const struct ia_delta *delta;		/* NULL: the whole image */
	bool *fe_touched, *sel_touched;		/* with a delta: per image index */
	struct gammad_be_val be_scratch;	/* ia_backend_entry() with a delta */
	bool unsure;				/* a retire left an entry it meant to delete */
	uint32_t *ep_ids, *be_ids, *sel_ids;	/* kernel id per image index */
	const struct img_class **sel_users;	/* per selector: the class naming it */
	bool *be_needed, *ep_needed;		/* per image index: an alias slot reaches it */
	struct ia_present sel_present;		/* selector id -> nr_slots */
	struct ia_present ep_present;		/* ep_set -> entries in the map */
	struct map_dump be_dump;		/* backend entries */
	struct ia_kh *kh;			/* kernel HTTP tables (image_khttp.c) */
};

/* Read the object table and mark every id the kernel maps use. */
int ia_ids_load(struct ia_ctx *c);
void ia_ids_free(struct ia_ctx *c);
/* The complete object (kind, ident) with content hash, or NULL. */
const struct ia_known *ia_known_exact(const struct ia_ctx *c, uint32_t kind,
				      uint64_t ident, uint64_t hash);
/* Any complete object (kind, ident), or NULL. */
const struct ia_known *ia_known_ident(const struct ia_ctx *c, uint32_t kind, uint64_t ident);
/* Value recorded for id (nr_slots, endpoint count), or -1 when absent. */
long ia_present_get(const struct ia_present *p, uint32_t id);
/* nr_slots of selector id in the kernel, -1 when absent. */
long ia_selector_present(struct ia_ctx *c, uint32_t id);
/* Does endpoint set id have exactly its nr entries in the kernel? */
bool ia_endpoints_present(struct ia_ctx *c, uint32_t id, uint32_t nr);
/* The kernel's backend entry of id, or NULL. */
const struct gammad_be_val *ia_backend_entry(const struct ia_ctx *c, uint32_t id);

/* A free id of kind, marked used; -ENOSPC names the full table. */
int ia_id_alloc(struct ia_ctx *c, uint32_t kind, uint32_t *id);

/* Record (kind, id) as being written (hash 0); v's hash is kept for later. */
int ia_obj_begin(struct ia_ctx *c, uint32_t kind, uint32_t id, struct gammad_obj_val *v);
/* Record (kind, id) complete (dp_obj_put), and in the index of known objects. */
int ia_obj_put(struct ia_ctx *c, uint32_t kind, uint32_t id, const struct gammad_obj_val *v);
/* The retire deleted object (kind, id) of ident: no longer known, its id free. */
void ia_obj_forget(struct ia_ctx *c, uint32_t kind, uint32_t id, uint64_t ident);

/* The state's index and ids for this apply (a delta), and back after it. */
void ia_state_take(struct ia_ctx *c);
void ia_state_keep(struct ia_ctx *c, bool ok);

/* u64 -> u64, for the state (open addressing, key 0 unused). */
struct ia_u64map;
int ia_u64map_put(struct ia_u64map **m, uint64_t key, uint64_t val);
bool ia_u64map_get(const struct ia_u64map *m, uint64_t key, uint64_t *val);
void ia_u64map_free(struct ia_u64map *m);

/*
 * Publish every frontend whose table changed (consumer entries under a new
 * table_gen, then one update of the frontend) and delete the frontends the
 * image no longer has. Needs c->sel_ids.
 */
int ia_frontends_apply(struct ia_ctx *c);

/* Pod cgroups -> namespace ids and local endpoints, stale entries removed. */
int ia_clients_apply(struct ia_ctx *c, const struct ia_opts *opts);

/* After dp_sync(): delete every entry no frontend reaches any more. */
int ia_retire(struct ia_ctx *c);

/*
 * Kernel HTTP tables (image_khttp.c), each step beside its L4 one:
 * prepare after ia_ids_load (their backends get ids too), write after the
 * selectors, classes under the new generation in publish, then the retire
 * walk after the consumers' (gen_live: is a table_gen live; be_add: a
 * backend a live table names).
 */
struct ia_kh_set;
int ia_kh_prepare(struct ia_ctx *c, const struct ia_kh_set *set);
int ia_kh_write(struct ia_ctx *c);
uint64_t ia_kh_frontend_hash(const struct ia_ctx *c, const struct img_frontend *f, uint64_t h);
int ia_kh_classes_write(struct ia_ctx *c, const struct img_frontend *f, uint32_t gen);
int ia_kh_retire(struct ia_ctx *c, bool (*gen_live)(void *, uint32_t),
		 int (*be_add)(void *, uint32_t), void *arg);
bool ia_kh_table_live(const struct ia_ctx *c, uint32_t tab);
void ia_kh_free(struct ia_ctx *c);

/* Dump the map `name` of the data path. */
int ia_dump(const struct ia_ctx *c, const char *name, struct map_dump *d);

#endif
