/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes mode of the agent (`gammad run --kubeconfig PATH` or
 * `--in-cluster`): the model comes from the API server (kube/kube_watch.h)
 * instead of --manifests, and the route statuses go back to it
 * (kube/kube_status.h) instead of the status file.
 *
 * Events reach the agent through one function, agent_kube_event(). Without
 * the HTTP engine (a->incremental) each one goes into the incremental
 * pipeline (image/pipeline.h) as it is drained: parsed into its model
 * object (kube_event_model()) and pl_event()'d; a commit follows when the
 * events pause for AGENT_KUBE_INCR_QUIET_MS (AGENT_KUBE_INCR_MAX_DELAY_MS
 * at most), translating only the Service ports they touch. Route statuses
 * need a whole translation: only the elected writer makes one, at most
 * every AGENT_KUBE_STATUS_DELAY_MS, after the kernel serves the change.
 * With the engine (which takes a whole translation) an event marks the
 * model dirty, and a debounced pass (quiet for AGENT_KUBE_QUIET_MS, or
 * AGENT_KUBE_MAX_DELAY_MS after the first change) rebuilds the model from
 * the store and applies it whole. No pass runs before every resource was
 * listed once: the pinned maps of an earlier agent keep serving until the
 * model is complete, and an API server that goes away changes nothing
 * until it is back.
 */
#ifndef GAMMAD_AGENT_KUBE_H
#define GAMMAD_AGENT_KUBE_H

#include <stdbool.h>

#include "input/model.h"
#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "kube/kube_status.h"
#include "kube/kube_watch.h"
#include "translate/translate.h"

#define AGENT_KUBE_QUIET_MS 50
#define AGENT_KUBE_MAX_DELAY_MS 500
#define AGENT_KUBE_INCR_QUIET_MS 3
#define AGENT_KUBE_INCR_MAX_DELAY_MS 30
#define AGENT_KUBE_STATUS_DELAY_MS 1000

struct agent;

struct agent_kube_opts {
	const char *kubeconfig;		/* NULL: in-cluster */
	const char *context;		/* NULL: current-context */
	const char *sa_dir;		/* in-cluster: NULL for the default */
	const char *node_name;		/* Pods of this node only; NULL: every Pod */
	const char *lease_namespace;	/* NULL: the config's namespace */
	int lease_duration_s;		/* 0: 15 */
	int watch_timeout_s;		/* 0: client-go's random 5..10 min */
	bool no_watch_list;		/* paginated lists only */
	bool no_status;			/* never write route statuses */
	bool slim_store;		/* the pipeline keeps the objects (kube_watch_opts.slim) */
};

struct agent_kube {
	struct kube_config cfg;
	struct kube_client *k;
	struct kube_watch *w;
	struct kube_status *st;		/* NULL: --no-status */
	bool dirty;			/* events since the last pass */
	double first_dirty_ms, last_event_ms;
	size_t events;
	double start_ms;
	bool first_done;
	bool engine_ready;		/* --http-engine accepts (after a pass) */
	/* the incremental pipeline's side (a->pl) */
	size_t events_fed;		/* since the last commit's log line */
	struct strmap errors;		/* "res:ns/name" of objects with input errors -> count */
	size_t nr_errors;		/* their sum: what a whole load would count */
	bool status_pending;		/* statuses wait for the writer's translation */
	double status_at_ms;
};

int agent_kube_open(struct agent_kube *ak, const struct agent_kube_opts *o);
void agent_kube_close(struct agent_kube *ak);
/* Every resource was listed once: a pass may run. */
bool agent_kube_ready(struct agent_kube *ak);
/* The store into m (agent.c's load step in this mode). */
int agent_kube_fill(struct agent_kube *ak, struct model *m, struct diag *dg);
/* A translation's statuses, for the elected writer. */
void agent_kube_statuses(struct agent_kube *ak, const struct tr_result *r);
/*
 * A commit of the events fed to a->pl (agent_pl_commit(), as file mode's);
 * statuses are then due. -EAGAIN before every resource was listed once.
 */
int agent_kube_commit(struct agent *a);
/* Until SIGINT/SIGTERM: events, link changes, resync every resync_s. */
int agent_kube_loop(struct agent *a, int resync_s, bool once);

#endif
