/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One pass of the node agent (`gammad run`): translate the manifests and
 * reconcile the kernel with them (image_apply.h), with this node's host
 * routes telling which pods are local and which veth leads into each, then
 * keep the TC programs attached to exactly those veths and the uplinks
 * (tc_sync.h). The watch loop (cmd_run.c) decides when a pass runs.
 */
#ifndef GAMMAD_AGENT_H
#define GAMMAD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath/datapath.h"
#include "datapath/host_routes.h"
#include "datapath/sock_release.h"
#include "datapath/tc_attach.h"
#include "image/image.h"
#include "image/image_apply.h"
#include "image/image_khttp.h"

#define AGENT_MAX_UPLINKS 8

struct metrics_server;
struct steer;
struct engine;
struct agent_kube;
struct agent_prefetch;
struct agent_scan;
struct agent_adopt;
struct dirwatch;
struct pl_stats;
struct agent_kh;

struct agent {
	struct dp *dp;
	struct tc_dp *tc;		/* NULL: no TC path (--no-tc) */
	const char *dir, *pin_dir;
	struct ia_opts opts;
	struct tr_opts tr;		/* this node and zone, endpoints per Service */
	struct host_routes routes;	/* read before every pass */
	const char *uplinks[AGENT_MAX_UPLINKS];	/* by name: an uplink may be recreated */
	size_t nr_uplinks;
	bool tc_refreshed;		/* our programs replaced the pinned ones */
	struct img img;			/* last image applied without error */
	bool have_img;
	bool dir_failed;		/* DIR's last apply failed: resync retries DIR */
	unsigned int generation;	/* applies that changed the kernel */
	struct metrics_server *metrics;	/* NULL: not served */
	struct dp_release *release;	/* socket iterators; NULL: kernel < 6.5 */
	bool reset_removed_tcp;		/* also abort TCP sockets of removed endpoints */
	/*
	 * The incremental pipeline (image/pipeline.h) fed by the manifests'
	 * per-file cache; a change reads, parses and translates only what it
	 * touches, and the HTTP engine gets the pipeline's tables. NULL until
	 * the first apply. Only when incremental is set (cmd_run: a manifests
	 * directory, not --once); other sources of the model take the
	 * whole-pass path.
	 */
	bool incremental;
	struct pl *pl;
	struct manifest_cache *mc;
	bool status_stale;		/* route statuses wait for a full translation */
	/* agent_pl_commit(): after a successful commit, before its "applied" line */
	void (*pl_committed)(struct agent *a, void *ctx, const struct pl_stats *st);
	void *pl_committed_ctx;
	/* the HTTP engine: per-pod listeners and the engine (NULL: off) */
	struct steer *steer;
	struct engine *engine;
	uint16_t engine_port;
	unsigned int engine_threads;	/* --engine-threads, 0: one per CPU */
	/* restarts (handover.h): from the agent we replaced, to our successor */
	struct handover *ho_prev, *ho_next;
	bool handed_over;		/* a successor took over: stop applying */
	/* Kubernetes mode (agent_kube.h): the model from the API server; NULL: DIR */
	struct agent_kube *kube;
	/* engine off: why (logged once with the HTTP ports left at L4), NULL: on */
	const char *l4_http_why;
	bool l4_http_noted;
	/*
	 * The image snapshot file (agent_snap.h), NULL: none. --once keeps
	 * it after every pass; the running agent adopts from it at start
	 * (agent_adopt) and keeps it once the manifests are quiet.
	 */
	const char *snapshot;
	bool snap_dirty;		/* committed since the running agent's last save */
	bool snap_scanned;		/* the last commit's input: a->mc's scan (its digest) */
	/*
	 * Adopted: the route status file is the snapshot's, as written; the
	 * first commit rewrites it only if DIR changed since the watch opened.
	 */
	bool statuses_adopted;
	struct dirwatch *watch;		/* cmd_run's watch of DIR, NULL: none */
	size_t last_input_errors;	/* of the last commit, for its snapshot */
	/* --kernel-http: the kernel HTTP tables of img (with the engine only) */
	bool kernel_http, kh_warned;
	struct ia_kh_set kh;
	uint64_t kh_gen;		/* the pipeline's tables kh was built from, 0: none */
	/* the kernel HTTP data path running (agent_khttp.h); NULL: the engine serves all */
	struct dp_kh *kh_dp;
	struct agent_kh *khp;		/* its upstream pools */
	unsigned int kh_idle_ms;	/* --kernel-http-idle: unused upstreams closed after (0: 30 s) */
	/* --kernel-http-ahead: pools made ahead while they number at most this (unset: 64) */
	unsigned int kh_ahead;
	bool kh_ahead_set;
	uint64_t engine_tables_gen;	/* the pipeline's tables the engine has, 0: none */
	struct agent_prefetch *prefetch;	/* agent_prefetch_start(), NULL: none */
	struct agent_scan *scan;	/* agent_scan_start(), NULL: none */
	struct agent_adopt *adopt;	/* agent_adopt_start(), NULL: none */
};

/*
 * Translate DIR (or, in Kubernetes mode, the API server's objects) and
 * reconcile; errors are logged, the data path stays whole.
 */
int agent_apply_dir(struct agent *a);
/*
 * A whole pass without engine or API server (--once): its input (the
 * snapshot, or manifests parsed and translated, the status file written
 * beside) loaded on a thread from now on, while the caller opens the data
 * path; the next agent_apply_dir() takes it. a->dir, tr, snapshot and the
 * fields load_image reads must not change until then. 0 or -errno (then
 * agent_apply_dir() loads it itself).
 */
int agent_prefetch_start(struct agent *a);
/*
 * The incremental agent on a manifests directory: the first scan (every
 * file read and parsed) on a thread from now on, while the caller opens
 * the data path and starts the engine; the first agent_apply_dir() takes
 * it. Start it after the directory watch, so a change during the scan is
 * seen. a->dir must not change until then. 0 or -errno (then the first
 * apply scans itself).
 */
int agent_scan_start(struct agent *a);
/*
 * The work of one commit of the incremental pipeline (a->pl, fed with
 * pl_event() by the caller: the manifests' file cache, or the Kubernetes
 * watch): host routes read, pl_commit() with the pods' engine listeners
 * following the apply's pod walk, the HTTP engine given the pipeline's
 * tables, a->pl_committed (when set), the "applied" line, the (Service
 * port, endpoint) pairs it removed released, the TC programs synced. Route
 * statuses and the metrics' apply count stay the caller's (they differ by
 * source): in a->pl_committed, they are done before the "applied" line
 * that tests wait for. 0 or -errno (logged; a->dir_failed set).
 */
int agent_pl_commit(struct agent *a, size_t input_errors, struct pl_stats *st);
/*
 * a->pl made for agent_pl_commit(): this node's translation options, the
 * engine's selector marks and the apply hook (class names for the steer,
 * --kernel-http tables). 0 or -errno (logged).
 */
int agent_pl_start(struct agent *a);
/*
 * A restart of the running agent (manifests, not --kernel-http) over its
 * pinned maps: when the snapshot's key matches (agent_snap.h: the
 * manifests, the options, gammad), its image is applied as --once does
 * (every entry compared with the kernel, nothing written when they agree;
 * the pod walk without the engine's listeners) and "adopted and serving"
 * is logged. The kernel serves the adopted state from then on, while the
 * first agent_apply_dir() builds the model, the translation, the engine's
 * tables and the pipeline (which then finds nothing to write when nothing
 * changed). Call after agent_engine_start(), before the first
 * agent_apply_dir(). 0 when adopted, -ENOENT when there was nothing to
 * adopt (no snapshot, another key, fresh maps), another -errno on error
 * (logged; the first apply reconciles everything as without).
 */
int agent_adopt(struct agent *a);
/*
 * agent_adopt()'s snapshot (the manifests' digest, the file read and
 * checked) on a thread from now on, while the caller opens the data path;
 * the first scan of the manifests (agent_scan_start) waits for agent_adopt(),
 * so that it does not take the CPU the adopt needs. 0 or -errno (no
 * snapshot file: then start the scan now).
 */
int agent_adopt_start(struct agent *a);
/*
 * The last image again (DIR when there is none yet or DIR last failed): new pods, gone
 * veths, drift. full: also retire leftovers when nothing changed.
 */
void agent_resync(struct agent *a, bool full);
/*
 * The HTTP engine: the engine and the per-pod listeners on loopback `port`
 * (steer.h), with those taken from the agent we replace (a->ho_prev,
 * handover.h); call before the first apply, which marks the selectors.
 */
int agent_engine_start(struct agent *a, uint16_t port);
/*
 * After the first apply (the engine has its tables): accept, tell the agent
 * we replace to hand its connections over, listen for a successor.
 */
int agent_engine_ready(struct agent *a);
void agent_free(struct agent *a);

#endif
