// SPDX-License-Identifier: Apache-2.0
/* One pass of the node agent: see agent.h. */
#include <errno.h>
#include <stdatomic.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "base/log.h"
#include "datapath/tc_sync.h"
#include "image/pipeline.h"
#include "input/dirwatch.h"
#include "input/manifest.h"
#include "translate/translate.h"
#include "translate/translate_eval.h"
#include "view/status_file.h"
#include "agent.h"
#include "agent_khttp.h"
#include "agent_kube.h"
#include "agent_snap.h"
#include "engine/engine.h"
#include "handover.h"
#include "metrics_http.h"
#include "steer.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ", N kernel HTTP class tables (M written)" when --kernel-http wrote any. */
static const char *kh_note(const struct ia_stats *s)
{
	static char buf[96];

	if (!s->kh_tables)
		return "";
	snprintf(buf, sizeof(buf), "; %zu kernel HTTP class tables (%zu written)", s->kh_tables,
		 s->kh_tables_written);
	return buf;
}

static void log_apply(const char *what, const char *dir, double ms, const struct ia_stats *s,
		      size_t input_errors)
{
	pr_info("%s %s in %.1f ms: %zu frontends (%zu flipped, %zu removed), written %zu "
		"selectors, %zu backends, %zu endpoint sets; %zu pod cgroups (%zu changed), "
		"%zu local endpoints (%zu new), %zu pod IPs (%zu written); %zu stale entries "
		"retired (%zu input errors)%s",
		what, dir, ms, s->frontends, s->frontends_flipped, s->frontends_removed,
		s->selectors_written, s->backends_written, s->endpoint_sets_written, s->cgroups,
		s->cgroups_written, s->local_eps, s->local_eps_written, s->pods, s->pods_written,
		s->retired, input_errors, kh_note(s));
}

/*
 * One translation with the model it points into: the HTTP engine holds it
 * until the last request that started on it is done (engine_set_tables).
 */
struct agent_tables {
	struct tr_result res;	/* first: the engine gets &res */
	struct model m;
	/*
	 * Not NULL: res is a copy of the pipeline's tables (pipeline.h), which
	 * own what it points to and hold the model objects; m is empty.
	 */
	struct pl_tables *pt;
};

/* engine_opts.release_tables (any thread), and ours when no engine took the tables. */
static void release_tables(void *ctx, struct tr_result *res)
{
	struct agent_tables *t = (struct agent_tables *)res;

	(void)ctx;
	if (t->pt) {
		pl_tables_put(t->pt);
		free(t);
		return;
	}
	tr_result_free(&t->res);
	model_free(&t->m);
	free(t);
}

/*
 * The engine serves the pipeline's tables of its last commit: the Service
 * ports the commit re-translated are new, the others the same objects as
 * before. Old connections finish their request on the tables they started
 * with (engine_set_tables), which keep what they point into.
 */
static void engine_tables_from_pl(struct agent *a)
{
	struct pl_tables *pt = a->engine ? pl_tables_get(a->pl) : NULL;
	struct agent_tables *t;
	int err;

	if (!pt || pl_tables_gen(pt) == a->engine_tables_gen) {
		pl_tables_put(pt);
		return;		/* the engine has these already */
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		pl_tables_put(pt);
		pr_err("http engine: new tables of %s: %s", a->dir, strerror(ENOMEM));
		return;
	}
	t->res = *pl_tables_result(pt);
	t->pt = pt;
	a->engine_tables_gen = pl_tables_gen(pt);
	/* The engine owns t from here on, also when this fails. */
	err = engine_set_tables(a->engine, &t->res);
	if (err)
		pr_err("http engine: new tables of %s: %s", a->dir, strerror(-err));
}

/*
 * Without the engine (--no-http-engine, --once, --no-sockmap: a->l4_http_why),
 * HTTPRoute and GRPCRoute rules are not applied per request: say so once,
 * naming the Service ports whose TCP connections get the L4 union of their
 * backends.
 */
static void note_l4_http(struct agent *a, const struct tr_result *r)
{
	char list[1024];
	size_t n = 0, len = 0;

	if (!a->l4_http_why || a->l4_http_noted)
		return;
	list[0] = '\0';
	for (size_t i = 0; i < r->nr_ports; i++) {
		const struct tr_port *p = &r->ports[i];
		bool http = false;

		/* the classes img_build_opts() would mark for the engine */
		for (size_t k = 0; k < p->nr_classes && !http; k++)
			http = (p->classes[k].kind == ROUTE_HTTP ||
				p->classes[k].kind == ROUTE_GRPC) && p->classes[k].nr_entries;
		if (!http)
			continue;
		if (len < sizeof(list) - 1) {
			int w = snprintf(list + len, sizeof(list) - len, "%s%s/%s:%u", n ? ", " : "",
					 p->svc->meta.namespace, p->svc->meta.name, p->port->port);

			len = w < 0 ? sizeof(list) - 1 : len + (size_t)w;
		}
		n++;
	}
	if (!n)
		return;	/* nothing to say yet: the next apply may have HTTP rules */
	a->l4_http_noted = true;
	pr_info("HTTP engine off (%s): per-request HTTPRoute and GRPCRoute rules need a running "
		"agent with the engine; %zu Service ports take the L4 union of their routes' "
		"backends: %s%s",
		a->l4_http_why, n, list, len >= sizeof(list) - 1 ? "..." : "");
}

/*
 * The route status file (9 MB of JSON at 10k routes) is written on a
 * thread beside the rest of the pass (the image, the apply): same content,
 * same temp file + rename (status_file.h), joined before the pass's
 * "applied" line, so whoever waits for that line finds the file.
 */
struct status_job {
	pthread_t th;
	bool running;
	const char *dir;
	const struct tr_result *res;
	const struct diag *dg;
};

static void *status_main(void *arg)
{
	struct status_job *j = arg;

	status_file_write(j->dir, j->res, j->dg);
	return NULL;
}

static void status_start(struct status_job *j, const char *dir, const struct tr_result *res,
			 const struct diag *dg)
{
	*j = (struct status_job){ .dir = dir, .res = res, .dg = dg };
	j->running = !pthread_create(&j->th, NULL, status_main, j);
	if (!j->running)
		status_file_write(dir, res, dg);	/* no thread: now */
}

static void status_join(struct status_job *j)
{
	if (j->running)
		pthread_join(j->th, NULL);
	j->running = false;
}

/*
 * What load_image() made that outlives it: the translation and its
 * diagnostics, which the status file being written reads (no engine took
 * them). loaded_release() after the apply.
 */
struct loaded {
	struct agent_tables *t;	/* NULL: nothing held */
	struct diag dg;
	struct status_job status;
};

static void loaded_release(struct loaded *l)
{
	status_join(&l->status);
	if (l->t)
		release_tables(NULL, &l->t->res);
	l->t = NULL;
	diag_free(&l->dg);
}

/*
 * Manifests -> image; diagnostics at debug level (`gammad translate` shows
 * them). With an engine, it gets the translation too; without, l keeps it
 * (the status file may still be being written).
 */
static int load_image(struct agent *a, const struct img_opts *io, struct img *img,
		      size_t *input_errors, struct ia_kh_set *kh, struct loaded *l)
{
	const char *dir = a->dir;
	struct agent_kube *kube = a->kube;
	const struct tr_opts *tr = &a->tr;
	struct engine *engine = a->engine;
	struct agent_tables *t = calloc(1, sizeof(*t));
	struct diag *dg = &l->dg;
	int ret, err;

	memset(l, 0, sizeof(*l));
	if (!t)
		return -ENOMEM;
	model_init(&t->m);
	ret = kube ? agent_kube_fill(kube, &t->m, dg) : manifest_load_path(&t->m, dir, dg);
	if (ret) {
		pr_err("manifests %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	for (size_t i = 0; i < dg->nr; i++)
		pr_debug("%s", dg->entries[i].msg);
	*input_errors = dg->nr_errors;
	ret = translate_opts(&t->m, tr, dg, &t->res);
	if (ret) {
		pr_err("translate %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	l->t = t;
	if (kube)
		agent_kube_statuses(kube, &t->res);	/* to the routes, by the elected writer */
	else
		status_start(&l->status, dir, &t->res, dg);	/* route conditions beside the manifests */
	note_l4_http(a, &t->res);
	ret = img_build_opts(&t->m, &t->res, io, img);
	if (ret)
		pr_err("image of %s: %s", dir, strerror(-ret));
	/* Before the engine owns the translation; without tables the engine has it all. */
	if (!ret && kh && (err = ia_kh_build(img, &t->res, kh)))
		pr_err("kernel HTTP tables of %s: %s (the engine serves every class)", dir,
		       strerror(-err));
	if (!ret && engine) {
		/* The engine owns t from here on, also when this fails. */
		status_join(&l->status);
		l->t = NULL;
		err = engine_set_tables(engine, &t->res);
		if (err)
			pr_err("http engine: new tables of %s: %s", dir, strerror(-err));
	}
	if (ret)
		loaded_release(l);
	return ret;
out_model:
	model_free(&t->m);
	free(t);
	diag_free(dg);
	return ret;
}

/* Which pods are local and behind which veth: the host routes, read fresh. */
static void read_routes(struct agent *a)
{
	int err;

	host_routes_free(&a->routes);
	err = host_routes_read(&a->routes);
	if (err)
		pr_warn("host routes: %s (no pod is reached through TC delivery this pass)",
			strerror(-err));
	a->opts.routes = &a->routes;
}

/* After every pass: the TC attachments, and the kernel HTTP path's pools (agent_khttp.h). */
static void sync_tc(struct agent *a)
{
	int uplinks[AGENT_MAX_UPLINKS];
	struct tc_sync_stats st;
	size_t n = 0;

	agent_kh_sync(a);
	if (!a->tc)
		return;
	/* Resolved every pass: a recreated uplink has a new ifindex. */
	for (size_t i = 0; i < a->nr_uplinks; i++) {
		unsigned int ifindex = if_nametoindex(a->uplinks[i]);

		if (ifindex)
			uplinks[n++] = (int)ifindex;
		else
			pr_warn("tc: uplink %s: no such interface now", a->uplinks[i]);
	}
	if (tc_sync(a->tc, a->dp, a->pin_dir, uplinks, n, !a->tc_refreshed, &st))
		return;		/* logged with the interface */
	if (st.attached || st.detached || !a->tc_refreshed)
		pr_info("tc: %zu pod veths and %zu uplinks carry the TC path (%zu attached, "
			"%zu detached)", st.pods, st.uplinks, st.attached, st.detached);
	a->tc_refreshed = true;
}

/*
 * Endpoints the last apply removed release what still points at them:
 * connected sockets translated to them, the TC path's UDP flows
 * (sock_release.h). Right after the apply, so the next connect already
 * picks from the new endpoints.
 */
static void release_pairs(struct agent *a, const struct img_reach *rm, size_t n)
{
	struct dp_release_stats st;
	struct gammad_rel_key *rel;
	double t0 = now_ms();
	int ret;

	rel = calloc(n, sizeof(*rel));
	if (!rel)
		return;
	for (size_t i = 0; i < n; i++)
		dp_rel_key(&rel[i], rm[i].addr.family, rm[i].addr.addr, rm[i].port,
			   rm[i].protocol, rm[i].ep.addr.addr, rm[i].ep.port);
	ret = dp_release(a->release, a->dp, rel, n, a->reset_removed_tcp, &st);
	if (ret)
		pr_err("release of %zu removed endpoints: %s", n, strerror(-ret));
	pr_info("released %zu (Service port, endpoint) pairs in %.1f ms: %zu UDP and %zu TCP "
		"sockets destroyed in %zu network namespaces, %zu TC UDP flows removed%s",
		n, now_ms() - t0, st.udp, st.tcp, st.netns, st.ct_flows,
		a->release ? "" : " (no socket iterators on this kernel)");
	free(rel);
}

static void release_removed(struct agent *a, const struct img *old, const struct img *new)
{
	struct img_reach *rm = NULL;
	size_t n = 0;
	int ret;

	ret = img_removed_endpoints(old, new, &rm, &n);
	if (ret)
		pr_err("removed endpoints: %s", strerror(-ret));
	if (!ret && n)
		release_pairs(a, rm, n);
	free(rm);
}

/* With the engine, an apply's pod walk follows the pods' listeners (steer.h). */
static void steer_begin(struct agent *a)
{
	if (!a->steer)
		return;
	a->opts.pod_cgroup = steer_pod_cgroup;
	a->opts.pod_cgroup_ctx = a->steer;
	steer_pass_begin(a->steer);
}

/* ia_apply, following the pods' engine listeners when the HTTP engine is on. */
static int apply(struct agent *a, const struct img *img, struct ia_stats *s)
{
	int ret;

	if (!a->steer)
		return ia_apply(a->dp, img, &a->opts, s);
	steer_set_namespaces(a->steer, img);
	steer_begin(a);
	ret = ia_apply(a->dp, img, &a->opts, s);
	steer_pass_end(a->steer, ret == 0);
	return ret;
}

/*
 * Route statuses beside the manifests, from a full translation of the
 * pipeline's model, with every file's diagnostics (the cache keeps them)
 * and the walk's (walk, may be NULL).
 */
/* The translation the statuses are written from, with its diagnostics; 0 or -errno. */
struct status_tr {
	struct diag dg;
	struct tr_result res;
	int ret;
};

static void status_translate(struct agent *a, const struct diag *walk, struct status_tr *t)
{
	memset(&t->dg, 0, sizeof(t->dg));
	manifest_cache_diag(a->mc, &t->dg);
	if (walk)
		diag_append(&t->dg, walk);
	t->ret = translate_opts(pl_model(a->pl), &a->tr, &t->dg, &t->res);
}

/* The file from t (then freed); status_stale follows. */
static void status_commit(struct agent *a, struct status_tr *t)
{
	a->status_stale = true;	/* until written */
	if (!t->ret) {
		status_file_write(a->dir, &t->res, &t->dg);
		tr_result_free(&t->res);
		a->status_stale = false;
	}
	diag_free(&t->dg);
}

static void write_statuses(struct agent *a, const struct diag *walk)
{
	struct status_tr t;

	status_translate(a, walk, &t);
	status_commit(a, &t);
}

/* Errors in the manifests as a whole load would count them. */
static size_t input_errors(struct agent *a, const struct diag *walk)
{
	struct diag dg = { 0 };
	size_t n;

	manifest_cache_diag(a->mc, &dg);
	n = dg.nr_errors + walk->nr_errors;
	for (size_t i = 0; i < dg.nr; i++)
		pr_debug("%s", dg.entries[i].msg);
	diag_free(&dg);
	return n;
}

/*
 * pl_opts.before_apply: the class names of the image about to be applied,
 * for the engine's origins; with --kernel-http its tables, encoded from the
 * pipeline's translation of every port (pl_tables), once per new tables
 * and only for the ports translated again since (pl_kh_update).
 */
static void dir_committed(struct agent *a, void *ctx, const struct pl_stats *st);
static void dir_status_start(struct agent *a);

static int pl_before_apply(void *ctx, const struct img *img, struct ia_opts *o)
{
	struct agent *a = ctx;
	struct pl_tables *pt;
	int err;

	/* The model is final for this commit: the statuses' translation runs beside the apply. */
	if (a->pl_committed == dir_committed)
		dir_status_start(a);

	if (a->steer)
		steer_set_namespaces(a->steer, img);
	o->khttp = NULL;
	if (!a->kernel_http || !a->engine)
		return 0;
	pt = pl_tables_get(a->pl);
	if (pt && (err = pl_kh_update(&a->kh, &a->kh_gen, img, pt)))
		pr_err("kernel HTTP tables of %s: %s (the engine serves every class)", a->dir,
		       strerror(-err));
	pl_tables_put(pt);
	o->khttp = a->kh_gen ? &a->kh : NULL;
	return 0;
}

int agent_pl_commit(struct agent *a, size_t input_errors, struct pl_stats *st)
{
	const struct img_reach *rm;
	double t0 = now_ms();
	size_t n;
	int ret;

	read_routes(a);
	steer_begin(a);
	pl_set_ia_opts(a->pl, &a->opts);
	ret = pl_commit(a->pl, st);
	/* Listeners of pods the walk did not see close only after a whole walk. */
	if (a->steer)
		steer_pass_end(a->steer, ret == 0 && st->applied);
	a->dir_failed = ret != 0;
	if (ret) {
		pr_err("apply %s failed after %.1f ms: %s (the data path keeps a complete "
		       "table per Service port; retrying at the next change or resync)",
		       a->dir, now_ms() - t0, strerror(-ret));
		return ret;
	}
	engine_tables_from_pl(a);
	agent_kh_sync(a);	/* before "applied": misses from then on make pools of its endpoints */
	a->generation++;
	pr_info("control plane: %zu files parsed, %s translation of %zu Services in %.1f ms, "
		"apply %.1f ms", a->mc ? manifest_cache_parsed(a->mc) : 0,
		st->full ? "full" : "incremental", st->services, st->translate_ms, st->apply_ms);
	/* The caller's statuses and metrics first: who waits for "applied" finds them. */
	if (a->pl_committed)
		a->pl_committed(a, a->pl_committed_ctx, st);
	log_apply("applied", a->dir, now_ms() - t0, &st->apply, input_errors);
	pl_removed_endpoints(a->pl, &rm, &n);
	if (n && a->release)
		release_pairs(a, rm, n);
	sync_tc(a);
	return 0;
}

int agent_pl_start(struct agent *a)
{
	/* With the engine, selectors of HTTP classes steer to it (as load_image's img_opts). */
	struct pl_opts po = { .tr = a->tr, .img = { .http_engine = a->steer != NULL },
			      .ia = a->opts, .before_apply = pl_before_apply, .ctx = a };
	int ret;

	ret = pl_new(a->dp, &po, &a->pl);
	if (ret)
		pr_err("control plane: %s", strerror(-ret));
	return ret;
}

/*
 * agent_scan_start(): the first scan of the manifests (reading and parsing
 * every file) on a thread while the caller opens the data path and starts
 * the engine; the first apply_dir_incremental() takes its cache and events.
 */
struct agent_scan {
	pthread_t th;
	const char *dir;
	struct manifest_cache *mc;
	struct model_event *evs;
	size_t nr;
	struct diag dg;
	int ret;
	/*
	 * Started beside agent_adopt(): the scan runs at a low priority until
	 * the adopt is done (scan_renice), so that on a busy machine it takes
	 * what the adopt leaves, not its CPU.
	 */
	_Atomic bool low;
	_Atomic pid_t tid;	/* set (after nice0) once the thread lowered itself */
	int nice0;
};

#define SCAN_LOW_NICE 10

static void *scan_main(void *arg)
{
	struct agent_scan *sc = arg;

	if (atomic_load(&sc->low)) {
		pid_t tid = (pid_t)syscall(SYS_gettid);

		/* The thread starts with the process's nice value: back to that later. */
		sc->nice0 = getpriority(PRIO_PROCESS, (id_t)tid);
		atomic_store(&sc->tid, tid);
		setpriority(PRIO_PROCESS, (id_t)tid, sc->nice0 + SCAN_LOW_NICE);
		/* scan_renice() came before the tid was there: back now */
		if (!atomic_load(&sc->low))
			setpriority(PRIO_PROCESS, (id_t)tid, sc->nice0);
	}

	sc->ret = manifest_cache_new(&sc->mc);
	if (!sc->ret)
		sc->ret = manifest_cache_scan(sc->mc, sc->dir, &sc->evs, &sc->nr, &sc->dg);
	return NULL;
}

static int scan_start(struct agent *a, bool low)
{
	struct agent_scan *sc;
	int err;

	if (a->scan || a->mc || !a->incremental || a->kube)
		return -EINVAL;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->dir = a->dir;
	atomic_store(&sc->low, low);
	err = pthread_create(&sc->th, NULL, scan_main, sc);
	if (err) {
		free(sc);
		return -err;	/* the first pass scans itself */
	}
	a->scan = sc;
	return 0;
}

int agent_scan_start(struct agent *a)
{
	return scan_start(a, false);
}

/* The adopt is done: the scan (if any) at the normal priority again. */
static void scan_renice(struct agent *a)
{
	struct agent_scan *sc = a->scan;
	pid_t tid;

	if (!sc || !atomic_exchange(&sc->low, false))
		return;
	tid = atomic_load(&sc->tid);
	/* Lowering a nice value needs CAP_SYS_NICE: the agent is root (BPF). */
	if (tid && setpriority(PRIO_PROCESS, (id_t)tid, sc->nice0))
		pr_debug("scan priority: %s", strerror(errno));
}

/* The scan's result (joined, a->mc set), or NULL when none is running. */
static struct agent_scan *scan_take(struct agent *a)
{
	struct agent_scan *sc = a->scan;

	if (!sc)
		return NULL;
	pthread_join(sc->th, NULL);
	a->scan = NULL;
	if (sc->mc && !a->mc)
		a->mc = sc->mc;
	else
		manifest_cache_free(sc->mc);
	sc->mc = NULL;
	return sc;
}

static void scan_free(struct agent_scan *sc)
{
	if (!sc)
		return;
	model_events_free(sc->evs, sc->nr);
	manifest_cache_free(sc->mc);
	diag_free(&sc->dg);
	free(sc);
}

/* What changed in DIR, as events into the pipeline (the whole tree when it must be). */
static int feed_changes(struct agent *a, struct diag *dg, bool *full, size_t *changes)
{
	struct agent_scan *sc = scan_take(a);
	struct model_event *evs = NULL;
	size_t nr = 0;
	int ret;

	*full = false;
	*changes = 0;
	if (sc) {
		/* Scanned already, into the cache that is a->mc now. */
		ret = sc->ret;
		evs = sc->evs;
		nr = sc->nr;
		sc->evs = NULL;
		sc->nr = 0;
		diag_append(dg, &sc->dg);
		scan_free(sc);
		if (!a->mc && !ret)
			ret = -ENOMEM;
	} else {
		ret = manifest_cache_scan(a->mc, a->dir, &evs, &nr, dg);
	}
	/* The snapshot's key is then the scan's digest (agent_snap_keep). */
	a->snap_scanned = !ret;
	if (ret == -EAGAIN) {
		struct model m;

		/* An object in two files: the loader's first-wins order decides. */
		*full = true;
		model_init(&m);
		ret = manifest_load_path(&m, a->dir, dg);
		if (!ret)
			pl_replace(a->pl, &m);
		model_free(&m);
		return ret;
	}
	*changes = nr + manifest_cache_parsed(a->mc);	/* a parsed file may bring diagnostics only */
	for (size_t i = 0; i < nr && !ret; i++) {
		int err = pl_event(a->pl, &evs[i], dg);

		evs[i].obj = NULL;	/* the pipeline's now, also on error */
		if (err && err != -ENOENT)
			ret = err;
	}
	model_events_free(evs, nr);	/* the objects of events not applied */
	return ret;
}

/*
 * Without the engine: the per-file cache gives what changed, the pipeline
 * translates only what that touches and writes only what differs.
 */
/* What the manifests' commit needs for its statuses and metrics count (pl_committed). */
struct dir_commit {
	double t0;
	struct diag *dg;
	size_t errors, changes;
	bool full;
	/* the statuses' translation on a thread beside the apply (dir_status_start) */
	struct agent *a;
	pthread_t th;
	bool status_started;
	struct status_tr status;
	bool statuses_kept;	/* the adopted status file stays (apply_dir_incremental) */
};

static void *dir_status_main(void *arg)
{
	struct dir_commit *dc = arg;

	status_translate(dc->a, dc->dg, &dc->status);
	return NULL;
}

/*
 * From pl_before_apply: the model (and the cache's and the walk's
 * diagnostics) no longer change in this commit, and the apply reads only
 * the image, so the translation the route statuses need runs on a thread
 * while the apply writes the kernel. The file is written from it only
 * once the commit succeeded (dir_committed), as before.
 */
static void dir_status_start(struct agent *a)
{
	struct dir_commit *dc = a->pl_committed_ctx;

	dc->a = a;
	if (dc->status_started || dc->statuses_kept ||
	    !(dc->full || dc->changes || a->status_stale))
		return;
	dc->status_started = !pthread_create(&dc->th, NULL, dir_status_main, dc);
}

/* The statuses' translation joined: true when there was one (in dc->status). */
static bool dir_status_join(struct dir_commit *dc)
{
	if (!dc->status_started)
		return false;
	pthread_join(dc->th, NULL);
	dc->status_started = false;
	return true;
}

static void dir_committed(struct agent *a, void *ctx, const struct pl_stats *st)
{
	struct dir_commit *dc = ctx;
	double applied_ms = now_ms() - dc->t0;

	/* Statuses need the whole translation: written once the kernel serves the change. */
	if (dir_status_join(dc))
		status_commit(a, &dc->status);
	else if (!dc->statuses_kept && (st->full || dc->full || dc->changes || a->status_stale))
		write_statuses(a, dc->dg);
	/* Counted once the statuses are out too: a reader of the generation sees both. */
	metrics_server_note_apply(a->metrics, 0, applied_ms, dc->errors);
}

static int apply_dir_incremental(struct agent *a)
{
	double t0 = now_ms();
	struct diag dg = { 0 };
	struct dir_commit dc = { .t0 = t0, .dg = &dg };
	struct pl_stats st;
	size_t errors, changes;
	/* Only the pass right after the adopt: later ones follow events the loop read. */
	bool adopted = a->statuses_adopted;
	bool full;
	int ret;

	a->statuses_adopted = false;
	if (!a->pl && (ret = agent_pl_start(a)))
		return ret;
	if (!a->mc && !a->scan && (ret = manifest_cache_new(&a->mc))) {
		pr_err("control plane: %s", strerror(-ret));
		return ret;
	}
	ret = feed_changes(a, &dg, &full, &changes);
	for (size_t i = 0; i < dg.nr; i++)
		pr_debug("%s", dg.entries[i].msg);
	errors = ret ? dg.nr_errors : input_errors(a, &dg);
	if (ret) {
		pr_err("manifests %s: %s", a->dir, strerror(-ret));
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, errors);
		diag_free(&dg);
		a->dir_failed = true;
		/*
		 * Cache and model may disagree now: the next pass loads everything
		 * anew, into an emptied model (the engine may hold the pipeline's tables).
		 */
		{
			struct model empty;

			model_init(&empty);
			pl_replace(a->pl, &empty);
		}
		manifest_cache_free(a->mc);
		a->mc = NULL;
		return ret;
	}
	dc.errors = errors;
	dc.changes = changes;
	dc.full = full;
	/*
	 * The first commit after agent_adopt(): when nothing below DIR changed
	 * since the watch opened (before the snapshot's digest), the scan read
	 * what the snapshot was made of, and the status file the snapshot
	 * noted holds what a translation would write again.
	 */
	if (adopted && !a->status_stale && a->watch &&
	    poll(&(struct pollfd){ .fd = dirwatch_fd(a->watch), .events = POLLIN }, 1, 0) == 0)
		dc.statuses_kept = true;
	a->pl_committed = dir_committed;
	a->pl_committed_ctx = &dc;
	ret = agent_pl_commit(a, errors, &st);
	a->pl_committed = NULL;
	a->pl_committed_ctx = NULL;
	if (!ret) {
		/*
		 * The snapshot follows once the manifests are quiet
		 * (agent_snap_keep); the adopted one is still right.
		 */
		a->snap_dirty = !dc.statuses_kept;
		a->last_input_errors = errors;
	}
	/* A failed commit: the statuses' translation is dropped, not written. */
	if (dir_status_join(&dc)) {
		if (!dc.status.ret)
			tr_result_free(&dc.status.res);
		diag_free(&dc.status.dg);
	}
	if (ret)
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, errors);
	diag_free(&dg);
	return ret;
}

/* The input of a whole pass: the snapshot's image, or the manifests translated. */
struct pass_input {
	int ret;
	bool from_snap;
	uint64_t snap_key;
	size_t input_errors;
	struct img img;
	struct loaded l;
};

static void pass_load(struct agent *a, const struct img_opts *io, struct ia_kh_set *khs,
		      struct pass_input *in)
{
	/* --once without the engine: a snapshot of the same input stands for the translation. */
	if (a->snapshot && !a->engine && !a->kube && !khs)
		in->from_snap = agent_snap_load(a, &in->snap_key, &in->img, &in->input_errors);
	in->ret = in->from_snap ? 0 : load_image(a, io, &in->img, &in->input_errors, khs, &in->l);
}

/*
 * agent_prefetch_start(): the first pass's input, loaded on a thread while
 * the caller loads the BPF objects (dp_open, mostly the kernel's work on
 * one CPU); agent_apply_dir() takes it.
 */
struct agent_prefetch {
	pthread_t th;
	struct agent *a;
	struct pass_input in;
};

static void *prefetch_main(void *arg)
{
	struct agent_prefetch *p = arg;
	struct img_opts io = { 0 };

	pass_load(p->a, &io, NULL, &p->in);
	return NULL;
}

int agent_prefetch_start(struct agent *a)
{
	struct agent_prefetch *p;
	int err;

	/* What the thread reads of a must be final: no engine, no API server, no pipeline. */
	if (a->prefetch || a->engine || a->steer || a->kube || a->incremental || a->kernel_http)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->a = a;
	err = pthread_create(&p->th, NULL, prefetch_main, p);
	if (err) {
		free(p);
		return -err;	/* the first pass loads it itself */
	}
	a->prefetch = p;
	return 0;
}

/* The prefetched input (joined), or false when there is none. */
static bool prefetch_take(struct agent *a, struct pass_input *in)
{
	struct agent_prefetch *p = a->prefetch;

	if (!p)
		return false;
	pthread_join(p->th, NULL);
	*in = p->in;
	free(p);
	a->prefetch = NULL;
	return true;
}

int agent_apply_dir(struct agent *a)
{
	struct img_opts io = { .http_engine = a->steer != NULL };
	bool kh = a->kernel_http && a->engine;

	if (a->kernel_http && !a->engine && !a->kh_warned) {
		pr_warn("--kernel-http needs the HTTP engine: no kernel HTTP tables are written");
		a->kh_warned = true;
	}
	if (a->kube && a->pl)
		return agent_kube_commit(a);	/* the watch's events are in a->pl already */
	if (a->incremental)
		return apply_dir_incremental(a);
	double t0 = now_ms();
	struct ia_kh_set khs = { 0 };
	struct pass_input in = { 0 };
	struct ia_stats s;
	int ret;

	/* Never from a partial store: what an earlier agent pinned serves meanwhile. */
	if (a->kube && !agent_kube_ready(a->kube))
		return -EAGAIN;
	if (!prefetch_take(a, &in))
		pass_load(a, &io, kh ? &khs : NULL, &in);
	/* Names as before the prefetch: what follows is one pass. */
	size_t input_errors = in.input_errors;
	uint64_t snap_key = in.snap_key;
	bool from_snap = in.from_snap;
	struct loaded l = in.l;
	struct img img = in.img;

	ret = in.ret;
	a->dir_failed = ret != 0;
	if (ret) {
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, input_errors);
		return ret;
	}
	read_routes(a);
	/*
	 * A one-shot over an adopted data path reads the route maps from the
	 * kernel once (the mirror): the apply's id load and its retire walk
	 * both read them whole. Into fresh maps, keeping a copy of every write
	 * would cost more than the two reads of what this apply wrote.
	 */
	if (a->snapshot && dp_adopted(a->dp) && !dp_mirror_on(a->dp) &&
	    (ret = dp_mirror_load(a->dp)))
		pr_warn("map mirror: %s (the apply reads the kernel)", strerror(-ret));
	a->opts.khttp = kh ? &khs : NULL;
	ret = apply(a, &img, &s);
	a->opts.khttp = kh ? &a->kh : NULL;
	if (ret) {
		ia_kh_set_free(&khs);
		pr_err("apply %s failed after %.1f ms: %s (the data path keeps a complete "
		       "table per Service port; retrying at the next change or resync)",
		       a->dir, now_ms() - t0, strerror(-ret));
		img_free(&img);
		loaded_release(&l);
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, input_errors);
		a->dir_failed = true;
		return ret;
	}
	a->generation++;
	/* The status file is out before "applied", and before the snapshot notes it. */
	loaded_release(&l);
	metrics_server_note_apply(a->metrics, 0, now_ms() - t0, input_errors);
	log_apply("applied", a->dir, now_ms() - t0, &s, input_errors);
	if (snap_key && !from_snap)
		agent_snap_save(a, snap_key, &img, input_errors);
	if (a->have_img) {
		release_removed(a, &a->img, &img);
		img_free(&a->img);
	}
	a->img = img;
	a->have_img = true;
	ia_kh_set_free(&a->kh);
	a->kh = khs;
	sync_tc(a);
	return 0;
}

/* agent_adopt_start(): the snapshot, loaded on a thread while the data path opens. */
struct agent_adopt {
	pthread_t th;
	struct agent *a;
	bool ok;
	uint64_t key;
	size_t input_errors;
	struct img img;
};

static void *adopt_main(void *arg)
{
	struct agent_adopt *p = arg;

	p->ok = agent_snap_load(p->a, &p->key, &p->img, &p->input_errors);
	return NULL;
}

static bool adopt_usable(const struct agent *a)
{
	/* The API server and --kernel-http have no snapshot. */
	return a->snapshot && a->incremental && !a->kube && !a->kernel_http;
}

int agent_adopt_start(struct agent *a)
{
	struct agent_adopt *p;
	int err;

	if (a->adopt || !adopt_usable(a))
		return -EINVAL;
	if (access(a->snapshot, R_OK))
		return -errno;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->a = a;
	err = pthread_create(&p->th, NULL, adopt_main, p);
	if (err) {
		free(p);
		return -err;
	}
	a->adopt = p;
	return 0;
}

/* The loaded snapshot (joined): true with *img set, to free. */
static bool adopt_take(struct agent *a, struct img *img, size_t *input_errors)
{
	struct agent_adopt *p = a->adopt;
	bool ok;

	if (!p)
		return false;
	pthread_join(p->th, NULL);
	a->adopt = NULL;
	ok = p->ok;
	*img = p->img;
	*input_errors = p->input_errors;
	free(p);
	return ok;
}

int agent_adopt(struct agent *a)
{
	double t0 = now_ms(), t_snap, t_mirror;
	size_t input_errors = 0;
	struct ia_stats s;
	struct img img;
	uint64_t key;
	bool ok;
	int ret;

	if (a->adopt)
		ok = adopt_take(a, &img, &input_errors);
	else
		ok = adopt_usable(a) && !access(a->snapshot, R_OK) &&
		     agent_snap_load(a, &key, &img, &input_errors);
	/* Fresh maps are a cold start: the first apply writes them. */
	if (ok && !dp_adopted(a->dp)) {
		img_free(&img);
		ok = false;
	}
	/*
	 * The first scan waited for the snapshot (agent_adopt_start): it runs
	 * beside the apply, below it while it lasts.
	 */
	if (a->incremental && !a->kube && !a->scan && !a->mc)
		scan_start(a, ok);
	if (!ok)
		return -ENOENT;	/* logged when it was there but not usable */
	t_snap = now_ms();
	read_routes(a);
	if (!dp_mirror_on(a->dp) && (ret = dp_mirror_load(a->dp)))
		pr_warn("map mirror: %s (the apply reads the kernel)", strerror(-ret));
	t_mirror = now_ms();
	/*
	 * No engine listeners yet (a->opts.pod_cgroup is unset until the
	 * first commit): connections take the L4 path, or the agent we
	 * replace keeps accepting, until the engine has tables. Not full:
	 * what an earlier agent left beside the image (a half-done apply) is
	 * retired by the first full pass; the adopt only makes sure the
	 * kernel serves the image, and writes nothing when it does.
	 */
	ret = ia_apply(a->dp, &img, &a->opts, &s);
	img_free(&img);
	scan_renice(a);
	if (ret) {
		pr_err("adopt %s failed after %.1f ms: %s (the first apply reconciles the "
		       "manifests)", a->dir, now_ms() - t0, strerror(-ret));
		return ret;
	}
	pr_debug("adopt: %.1f ms waiting for the snapshot, %.1f ms reading the maps, %.1f ms "
		 "comparing", t_snap - t0, t_mirror - t_snap, now_ms() - t_mirror);
	log_apply("adopted and serving", a->dir, now_ms() - t0, &s, input_errors);
	a->statuses_adopted = true;
	return 0;
}

void agent_resync(struct agent *a, bool full)
{
	double t0 = now_ms();
	struct ia_stats s;
	int ret;

	if (a->pl) {
		if (a->dir_failed) {
			agent_apply_dir(a);
			return;
		}
		read_routes(a);
		steer_begin(a);
		pl_set_ia_opts(a->pl, &a->opts);
		ret = pl_resync(a->pl, full, &s);
		if (a->steer)
			steer_pass_end(a->steer, ret == 0);
		if (!ret)
			engine_tables_from_pl(a);	/* the resync may have committed */
		if (ret)
			pr_err("resync %s: %s", a->dir, strerror(-ret));
		else if (ia_stats_changes(&s))
			log_apply("resynced", a->dir, now_ms() - t0, &s, 0);
		if (full && a->status_stale && !a->kube)
			write_statuses(a, NULL);
		sync_tc(a);
		return;
	}
	if (!a->have_img || a->dir_failed) {
		agent_apply_dir(a);	/* the manifests, not an image older than them */
		return;
	}
	read_routes(a);
	a->opts.full = full;
	ret = apply(a, &a->img, &s);
	a->opts.full = false;
	if (ret)
		pr_err("resync %s: %s", a->dir, strerror(-ret));
	else if (ia_stats_changes(&s))
		log_apply("resynced", a->dir, now_ms() - t0, &s, 0);
	sync_tc(a);
}

/* metrics_server_set_extra: the engine's series after the rest. */
static int render_engine_metrics(void *ctx, FILE *out)
{
	return engine_metrics_render(ctx, out);
}

/* metrics_server_set_explain: a query to an origin and a request for engine_explain(). */
static int explain_engine(void *ctx, const struct explain_query *q, FILE *out)
{
	struct ev_header hdrs[EXPLAIN_HEADERS_MAX];
	char names[EXPLAIN_HEADERS_MAX][128];
	struct engine_origin o = { .vport = (uint16_t)q->port };
	struct ev_request req = { .method = q->method ? q->method : "GET",
				  .target = q->target ? q->target : "/",
				  .scheme = "http", .host = q->host, .port = (uint16_t)q->port };

	if (ip_addr_parse(q->vip, &o.vip) || strlen(q->ns) >= sizeof(o.client_ns))
		return -EINVAL;
	snprintf(o.client_ns, sizeof(o.client_ns), "%s", q->ns);
	snprintf(o.client_pod, sizeof(o.client_pod), "%s/(explain)", q->ns);
	for (size_t i = 0; i < q->nr_headers; i++) {
		const char *colon = strchr(q->headers[i], ':');

		if (!colon || colon == q->headers[i] || colon - q->headers[i] >= 128)
			return -EINVAL;
		snprintf(names[i], sizeof(names[i]), "%.*s", (int)(colon - q->headers[i]),
			 q->headers[i]);
		hdrs[i] = (struct ev_header){ names[i], colon + 1 + strspn(colon + 1, " \t") };
	}
	req.headers = hdrs;
	req.nr_headers = q->nr_headers;
	return engine_explain(ctx, &o, &req, out);
}

int agent_engine_start(struct agent *a, uint16_t port)
{
	struct engine_opts eo = { .upstream_socket = steer_upstream_socket,
				  .release_tables = release_tables,
				  .backend_id = steer_backend_id, .threads = a->engine_threads };
	int err;

	/* sessionAffinity in the kernel's table, shared with connect() */
	eo.affinity_fd = dp_map_fd(a->dp, GAMMAD_MAP_AFFINITY);
	if (eo.affinity_fd < 0)
		return eo.affinity_fd;

	err = steer_new(a->dp, port, &a->steer);
	if (err)
		return err;
	eo.ctx = a->steer;
	if (a->kh_dp) {
		eo.kernel_claim = steer_kernel_claim;
		eo.kernel_pending = steer_kernel_pending;
		eo.kernel_returnable = steer_kernel_returnable;
		eo.kernel_return = steer_kernel_return;
		eo.kernel_state = steer_kernel_state;
		eo.kernel_resp = steer_kernel_resp;
	}
	a->engine = engine_new(&eo);
	if (!a->engine) {
		pr_err("http engine: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	steer_set_engine(a->steer, a->engine);
	a->engine_port = port;
	metrics_server_set_extra(a->metrics, render_engine_metrics, a->engine);
	metrics_server_set_explain(a->metrics, explain_engine, a->engine);
	err = engine_start(a->engine);
	if (err)
		return err;
	if (a->ho_prev)
		handover_adopt(a->ho_prev, a->steer);	/* taken before the load (cmd_run.c) */
	err = steer_prune_engns(a->steer);
	if (err)
		pr_warn("http engine: stale netns entries: %s", strerror(-err));
	return agent_kh_start(a);
}

int agent_engine_ready(struct agent *a)
{
	int err = steer_start(a->steer);

	if (err)
		return err;
	pr_info("http engine: on, %u event loops, listeners on loopback port %u in every "
		"managed pod", engine_threads(a->engine), a->engine_port);
	/* We accept too now: the old agent may stop. */
	if (a->ho_prev)
		handover_go(a->ho_prev, a->engine);
	return 0;
}

void agent_free(struct agent *a)
{
	/* Nothing more from the agent we replaced (its thread adopts into the engine). */
	handover_free(a->ho_prev);
	a->ho_prev = NULL;
	/* Listeners first: nothing new reaches the engine while it stops. */
	steer_free(a->steer);
	a->steer = NULL;
	if (a->engine) {
		metrics_server_set_extra(a->metrics, NULL, NULL);
		metrics_server_set_explain(a->metrics, NULL, NULL);
		engine_stop(a->engine);
		engine_free(a->engine);
		a->engine = NULL;
	}
	/* After the engine: kernel-served clients are reset through it. */
	agent_kh_free(a);
	/* After the engine: it may be giving connections to our successor. */
	handover_free(a->ho_next);
	a->ho_next = NULL;
	scan_free(scan_take(a));	/* a scan nobody took: joined, dropped */
	{
		struct img img;
		size_t n;

		if (adopt_take(a, &img, &n))	/* a snapshot nobody adopted */
			img_free(&img);
	}
	/* A prefetch nobody took (the data path failed to open): joined, dropped. */
	{
		struct pass_input in;

		if (prefetch_take(a, &in) && !in.ret) {
			loaded_release(&in.l);
			img_free(&in.img);
		}
	}
	if (a->have_img)
		img_free(&a->img);
	a->have_img = false;
	pl_free(a->pl);
	a->pl = NULL;
	manifest_cache_free(a->mc);
	a->mc = NULL;
	ia_kh_set_free(&a->kh);
	host_routes_free(&a->routes);
	tc_dp_close(a->tc);
	a->tc = NULL;
	dp_release_close(a->release);
	a->release = NULL;
}
