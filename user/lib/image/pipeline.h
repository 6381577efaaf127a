/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The incremental control plane: a model kept current by object events (a
 * Kubernetes watch, or the files of a manifests directory that changed),
 * the image of its translation, and the kernel reconciled with it.
 *
 *   pl_new()                  once, on an open data path
 *   pl_replace(pl, &model)    a whole model: cold start, a resync of the
 *                             manifests (the next commit translates all)
 *   pl_event(pl, &ev) ...     object changes, as they arrive (cheap: only
 *                             the model and a set of touched Services)
 *   pl_commit(pl, &stats)     re-translates only the Service ports the
 *                             events since the last commit can affect,
 *                             splices their entries into the image, and
 *                             writes the difference to the kernel
 *
 * What an event touches: a Service or its EndpointSlices: that Service and
 * every Service port with a route to it; a route (old and new version):
 * the Services of its parentRefs; a Namespace, Pod, Deployment or
 * ReferenceGrant: everything (they are rare, or only change pod tables).
 *
 * Applies read the route maps from an in-memory mirror (datapath.h) that
 * the first commit reads from the kernel; reconcile-from-kernel stays the
 * restart path. An event commit's apply writes only what its merge
 * changed (ia_delta); the first commit, pl_replace, resyncs and the commit
 * after a failed apply compare the whole image. A commit whose apply fails
 * leaves the kernel consistent (image_apply.h) and is retried by the next one. pl_resync(full) audits
 * the mirror against the kernel and repairs drift.
 *
 * Not thread-safe: one thread calls all of these.
 */
#ifndef GAMMAD_PIPELINE_H
#define GAMMAD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "datapath/datapath.h"
#include "input/model.h"
#include "translate/translate.h"
#include "image.h"
#include "image_apply.h"

struct pl;

struct pl_opts {
	struct tr_opts tr;	/* this node and zone */
	struct img_opts img;
	struct ia_opts ia;	/* cgroup root, node name, host routes */
	/*
	 * Called by every commit and resync right before its ia_apply(), with
	 * the image it applies and a copy of the apply options to adjust for
	 * that apply (the pod walk's callback, kernel HTTP tables). -errno
	 * fails the commit before the kernel is touched. NULL: none.
	 */
	int (*before_apply)(void *ctx, const struct img *img, struct ia_opts *o);
	void *ctx;
};

struct pl_stats {
	bool full;		/* translated everything (first commit, pl_replace, a rare kind) */
	size_t services;	/* Services re-translated */
	size_t frontends_changed;	/* frontends whose image entry changed */
	double translate_ms, apply_ms;
	bool applied;		/* ia_apply() ran to its end: every pod cgroup was walked */
	struct ia_stats apply;
};

/* dp stays the caller's; opts is copied (the pointers in it must outlive pl). */
int pl_new(struct dp *dp, const struct pl_opts *opts, struct pl **out);
void pl_free(struct pl *pl);

/* Take over a whole model (*m is left empty): the next commit translates everything. */
void pl_replace(struct pl *pl, struct model *m);
/* One object change (model_apply_event()), remembered for the next commit. */
int pl_event(struct pl *pl, const struct model_event *ev, struct diag *dg);
/* Nonzero when events wait for a commit. */
bool pl_pending(const struct pl *pl);
/* Translate what the events touched and reconcile the kernel with it. */
int pl_commit(struct pl *pl, struct pl_stats *stats);
/*
 * The reconcile of the last image again (pods came or went). full: first
 * the audit, the kernel's route maps against the mirror the applies read
 * (datapath.h), counted in pl_drift() and reloaded, then a reconcile that
 * also retires leftovers: drift is repaired.
 */
int pl_resync(struct pl *pl, bool full, struct ia_stats *stats);
/* Kernel entries all audits so far found changed behind the mirror's back. */
uint64_t pl_drift(const struct pl *pl);

/* The apply options from the next commit on (host routes move, say). */
void pl_set_ia_opts(struct pl *pl, const struct ia_opts *o);
/*
 * (Service port, endpoint) pairs the last commit's image no longer has
 * (img_removed_endpoints()): what connections may still point at. Valid
 * until the next commit.
 */
void pl_removed_endpoints(const struct pl *pl, const struct img_reach **out, size_t *nr);

/*
 * The HTTP engine's tables: the translation of every Service port of the
 * last commit's image, as a tr_result with ports only (no route statuses;
 * tr_find_port() searches). A commit re-translates only D's Services: the
 * ports of the others are the same tr_port (classes, rules, endpoints
 * shared, not copied) as in the tables before. pl_tables_get() takes a
 * reference (NULL before the first commit that translated); what it points
 * into, model objects included, stays valid until pl_tables_put(), which
 * any thread may call; the pipeline frees at its next commit or resync what
 * nobody holds. Every reference is put before pl_free().
 */
struct pl_tables;
struct pl_tables *pl_tables_get(struct pl *pl);
const struct tr_result *pl_tables_result(const struct pl_tables *t);
/* Tables made by this pipeline so far when t was made (1 for the first). */
uint64_t pl_tables_gen(const struct pl_tables *t);
/*
 * The tables generation whose commit translated port i of t: a port of a
 * generation up to g is the same tr_port in t as in the tables of g (a
 * commit that re-translates a port makes it new), so what was derived from
 * it then still holds (the kernel HTTP tables, agent.c).
 */
uint64_t pl_tables_port_gen(const struct pl_tables *t, size_t i);
void pl_tables_put(struct pl_tables *t);

/*
 * The kernel HTTP classes of t for img, the image its commit applies, kept
 * across commits in *set, built from the tables of generation *gen (0:
 * none). Only the ports the commits since translated again are encoded
 * (pl_tables_port_gen, ia_kh_rebuild); the others keep their items. On an
 * error *set is empty, *gen 0.
 */
struct ia_kh_set;
int pl_kh_update(struct ia_kh_set *set, uint64_t *gen, const struct img *img,
		 const struct pl_tables *t);

/* Read-only views, valid until the next pl_event/pl_replace/pl_commit. */
const struct model *pl_model(const struct pl *pl);
const struct img *pl_image(const struct pl *pl);	/* NULL before the first commit */

#endif
