/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reconcile the data-path maps (datapath.h) with a map image (image.h).
 *
 * The kernel is the only state: every apply reads the object table
 * (gammad_obj_v1) and the route maps, so a restarted agent runs exactly the
 * same code as a running one and nothing is flushed. Per image object:
 *
 *  - endpoint sets and selectors are content-addressed: an unchanged one
 *    keeps its id, a new one gets a fresh id (a live one is never edited);
 *  - a backend keeps its id (and counters) for as long as it exists; a new
 *    endpoint set is published by one update of its entry;
 *  - a frontend keeps its svc_port_id; when its table changes, the consumer
 *    entries go under a fresh table_gen and one update of the frontend
 *    entry flips every class at once (the generation flip);
 *  - then dp_sync(), and whatever no frontend reaches any more is deleted,
 *    found by walking the kernel's own maps from the frontends: this also
 *    cleans what a crashed agent or a failed apply left behind.
 *
 * Every id is recorded in the object table before it is written (content
 * hash 0 until complete), so an agent killed at any point leaves no id that
 * the next one could hand out twice.
 *
 * A caller that keeps an ia_state and knows what changed (ia_delta) gets an
 * apply proportional to the change: what the last whole apply read is kept
 * up to date by every write and retire, and only the delta's frontends and
 * what they reach are compared and written.
 */
#ifndef GAMMAD_IMAGE_APPLY_H
#define GAMMAD_IMAGE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/datapath.h"
#include "datapath/host_routes.h"
#include "image.h"

struct ia_opts {
	const char *cgroup_root;	/* walked for pod cgroups; NULL: none */
	const char *node_name;		/* pods of this node are local; NULL: all */
	/*
	 * The node's host routes: the interface of a local pod's route is
	 * the host side of its veth (TC delivery). NULL: no interfaces.
	 */
	const struct host_routes *routes;
	/*
	 * Retire even when this apply changed nothing: the first apply of a
	 * process and resyncs, which also clean what others left behind.
	 */
	bool full;
	/*
	 * Leave what this apply made unreachable (old table generations,
	 * selectors, backends, endpoint sets no frontend reaches) for a later
	 * apply's retire walk, unless full. Nothing reads it, its ids stay
	 * taken, and an identical object is still reused: only map room waits.
	 * For a stream of small changes (image/pipeline.h), where that walk
	 * over every map is most of the cost.
	 */
	bool defer_retire;
	/*
	 * Called for every pod cgroup found in this apply (the pods whose
	 * connect()s the data path classifies), with the cgroup's path;
	 * NULL: not called. The agent follows pods with it (HTTP engine).
	 */
	void (*pod_cgroup)(void *ctx, const struct img_pod *pod, const char *path);
	void *pod_cgroup_ctx;
	/*
	 * The kernel HTTP tables of img (image_khttp.h), written and published
	 * with it; NULL: every kernel HTTP entry is retired.
	 */
	const struct ia_kh_set *khttp;
	/*
	 * What the last apply left (ia_state_new()), kept by the caller from
	 * one apply to the next: with it and a delta an apply touches only
	 * what the delta names. NULL: every apply reads the kernel whole.
	 */
	struct ia_state *state;
	/*
	 * What changed in img since the last apply with the same state (NULL:
	 * unknown, compare everything). Taken only when state holds a
	 * complete apply, and not with full: otherwise the apply compares the
	 * whole image and the state starts over from what it read.
	 */
	const struct ia_delta *delta;
	/*
	 * One update per entry, as before batching (datapath.h); for tests
	 * that compare the two.
	 */
	bool single_writes;
};

/*
 * A change set from one image to the next, as image/pipeline.h knows it:
 * the frontends whose tables or anything they reach (selectors, backends,
 * endpoint sets, kernel HTTP tables) may differ, by img_frontend.id; those
 * of them gone from the image, by their kernel key; the selectors the
 * touched frontends named before (a shared selector's name may move to
 * another frontend's route); whether the pod tables changed (then the pod
 * cgroup walk and the pod IP maps are reconciled too). Entries the delta
 * does not reach are taken to be what the last apply left: one missed
 * here is missed in the kernel until a full apply.
 */
struct ia_delta {
	const uint64_t *frontends;
	size_t nr_frontends;
	const struct gammad_fe_key *gone;
	size_t nr_gone;
	const uint64_t *old_selectors;
	size_t nr_old_selectors;
	bool clients;
};

/*
 * The state an apply leaves for the next (ia_opts.state): the object table
 * indexed and the ids in use, read once by a whole apply and kept by every
 * write since. Invalid until a whole apply succeeds; any failed apply or
 * ia_state_reset() makes the next one whole again.
 */
int ia_state_new(struct ia_state **out);
void ia_state_free(struct ia_state *s);
void ia_state_reset(struct ia_state *s);
bool ia_state_valid(const struct ia_state *s);

/* What an apply did: "written" counts entries changed in the kernel. */
struct ia_kh_set;
struct ia_state;
struct ia_delta;

struct ia_stats {
	size_t frontends;		/* in the image */
	size_t frontends_flipped;	/* new or changed route table */
	size_t frontends_removed;
	size_t selectors_written, backends_written, endpoint_sets_written;
	size_t cgroups, cgroups_written;	/* pod cgroups found / changed */
	size_t local_eps, local_eps_written;
	size_t pods, pods_written;	/* pod IPs for the TC path's client class */
	size_t retired;			/* stale kernel entries deleted */
	size_t kh_tables, kh_tables_written;	/* kernel HTTP class tables */
	bool delta;			/* applied a delta, not the whole image */
	bool clients;			/* the pod cgroups were walked, pod maps reconciled */
};

/* Nonzero when the apply changed anything the data path reads. */
size_t ia_stats_changes(const struct ia_stats *s);

/*
 * Reconcile the maps with img. On error (logged once, with the object's
 * name) every frontend still points at a complete table, old or new, and
 * the next apply picks up from what is in the kernel.
 */
int ia_apply(struct dp *dp, const struct img *img, const struct ia_opts *opts,
	     struct ia_stats *stats);

/* UID of a pod cgroup directory name (pod<UID>, *-pod<UID_>.slice), or -ENOENT. */
int ia_pod_uid_from_dir(const char *name, char *uid, size_t len);

#endif
