// SPDX-License-Identifier: Apache-2.0
/* Kubernetes mode of the agent: see agent_kube.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "datapath/netmon.h"
#include "image/pipeline.h"
#include "agent.h"
#include "agent_kube.h"
#include "agent_khttp.h"
#include "handover.h"
#include "metrics_http.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int agent_kube_open(struct agent_kube *ak, const struct agent_kube_opts *o)
{
	struct kube_watch_opts wo = {
		.node_name = o->node_name,
		.watch_timeout_s = o->watch_timeout_s,
		.watch_list = o->no_watch_list ? KUBE_WATCH_LIST_OFF : KUBE_WATCH_LIST_AUTO,
		.slim = o->slim_store,
	};
	char msg[512], identity[256];
	int ret;

	*ak = (struct agent_kube){ .start_ms = now_ms() };
	ret = o->kubeconfig ? kube_config_load(&ak->cfg, o->kubeconfig, o->context, msg, sizeof(msg))
			    : kube_config_in_cluster(&ak->cfg, o->sa_dir, msg, sizeof(msg));
	if (ret) {
		pr_err("kube: %s", ret == -ENOMEM ? strerror(ENOMEM) : msg);
		return ret;
	}
	ret = kube_client_new(&ak->cfg, &ak->k);
	if (!ret)
		ret = kube_watch_start(ak->k, &wo, &ak->w);
	if (ret) {
		pr_err("kube: %s", strerror(-ret));
		agent_kube_close(ak);
		return ret;
	}
	pr_info("kube: watching %s (%s)%s%s", ak->cfg.server, ak->cfg.source,
		o->node_name ? ", pods of node " : ", every pod",
		o->node_name ? o->node_name : "");
	if (o->no_status)
		return 0;
	/* Unique per process, as client-go's hostname_uuid: a restarted agent is new. */
	srand((unsigned int)(time(NULL) ^ getpid()));
	snprintf(identity, sizeof(identity), "%s_%08x%08x", o->node_name ? o->node_name : "gammad",
		 (unsigned int)rand(), (unsigned int)getpid());
	ret = kube_status_start(ak->k, ak->w, &(struct kube_status_opts){
			.identity = identity,
			.lease_namespace = o->lease_namespace ? o->lease_namespace :
							       ak->cfg.namespace,
			.lease_duration_s = o->lease_duration_s,
			.renew_deadline_s = o->lease_duration_s ? o->lease_duration_s * 2 / 3 : 0,
		}, &ak->st);
	if (ret) {
		pr_err("kube: status writer: %s", strerror(-ret));
		agent_kube_close(ak);
	}
	return ret;
}

void agent_kube_close(struct agent_kube *ak)
{
	strmap_free(&ak->errors);
	ak->nr_errors = 0;
	kube_status_stop(ak->st);	/* releases the Lease while the client works */
	ak->st = NULL;
	kube_watch_stop(ak->w);
	ak->w = NULL;
	kube_client_free(ak->k);
	ak->k = NULL;
	kube_config_free(&ak->cfg);
}

bool agent_kube_ready(struct agent_kube *ak)
{
	return ak->w && kube_watch_synced(ak->w);
}

int agent_kube_fill(struct agent_kube *ak, struct model *m, struct diag *dg)
{
	return kube_watch_fill_model(ak->w, m, dg);
}

void agent_kube_statuses(struct agent_kube *ak, const struct tr_result *r)
{
	int err;

	if (!ak->st)
		return;
	err = kube_status_publish(ak->st, r);
	if (err)
		pr_err("kube: route statuses: %s", strerror(-err));
}

/* The pipeline's model changed: statuses are due (the writer translates them later). */
static void statuses_due(struct agent_kube *ak)
{
	if (!ak->st || ak->status_pending)
		return;		/* --no-status, or due already (at most one per delay) */
	ak->status_pending = true;
	/* The first right away; then changes gather for a while. */
	ak->status_at_ms = now_ms() + (ak->first_done ? AGENT_KUBE_STATUS_DELAY_MS : 0);
}

int agent_kube_commit(struct agent *a)
{
	struct agent_kube *ak = a->kube;
	double t0 = now_ms();
	struct pl_stats st;
	int ret;

	/* Never from a partial store: what an earlier agent pinned serves meanwhile. */
	if (!agent_kube_ready(ak))
		return -EAGAIN;
	pr_debug("kube: a commit of %zu events", ak->events_fed);
	ak->events_fed = 0;
	ret = agent_pl_commit(a, ak->nr_errors, &st);
	metrics_server_note_apply(a->metrics, ret, now_ms() - t0, ak->nr_errors);
	if (!ret)
		statuses_due(ak);
	return ret;
}

/* The input errors of one object as of its last version (none once deleted). */
static void note_errors(struct agent_kube *ak, const struct kube_event *kev, size_t n)
{
	char key[KUBE_EVENT_BUF + 32];
	uintptr_t old;

	snprintf(key, sizeof(key), "%s:%s", kube_res_name(kev->res), kev->key);
	old = (uintptr_t)strmap_get(&ak->errors, key);
	if (old == n)
		return;
	if (!n)
		strmap_del(&ak->errors, key);
	else if (old)
		strmap_set(&ak->errors, key, (void *)(uintptr_t)n);
	else if (strmap_put(&ak->errors, key, (void *)(uintptr_t)n, NULL))
		return;		/* ENOMEM: only the count is off */
	ak->nr_errors = ak->nr_errors - old + n;
}

/*
 * One object change into the pipeline: only the model and the set of
 * touched Services change here; the commit translates and writes.
 */
static void feed_event(struct agent *a, struct agent_kube *ak, const struct kube_event *kev)
{
	char buf[KUBE_EVENT_BUF];
	struct model_event ev;
	struct diag dg = { 0 };
	int ret;

	ret = kube_event_model(kev, &ev, buf, &dg);
	if (!ret) {
		ret = pl_event(a->pl, &ev, &dg);	/* owns ev.obj from here on */
		if (ret == -ENOENT)
			ret = 0;	/* a delete of what the parsers dropped */
	}
	for (size_t i = 0; i < dg.nr; i++)
		pr_debug("%s", dg.entries[i].msg);
	note_errors(ak, kev, kev->type == KUBE_EV_PUT ? dg.nr_errors : 0);
	if (ret)
		pr_err("kube: %s %s: %s (the next commit translates everything)",
		       kube_res_name(kev->res), kev->key, strerror(-ret));
	diag_free(&dg);
	ak->events_fed++;
}

/*
 * THE SEAM: one object change from the API server (add, change or delete
 * of one object). It goes into the incremental pipeline now (the engine's
 * tables follow its commits too); with --once there is no pipeline and the
 * pass rebuilds the model whole.
 */
static void agent_kube_event(void *ctx, const struct kube_event *ev)
{
	struct agent *a = ctx;
	struct agent_kube *ak = a->kube;
	double t = now_ms();

	if (a->pl)
		feed_event(a, ak, ev);

	if (!ak->dirty)
		ak->first_dirty_ms = t;
	ak->dirty = true;
	ak->last_event_ms = t;
	ak->events++;
	pr_debug("kube: %s %s %s", ev->type == KUBE_EV_PUT ? "put" : "delete",
		 kube_res_name(ev->res), ev->key);
}

static double quiet_ms(const struct agent *a)
{
	return a->pl ? AGENT_KUBE_INCR_QUIET_MS : AGENT_KUBE_QUIET_MS;
}

static double max_delay_ms(const struct agent *a)
{
	return a->pl ? AGENT_KUBE_INCR_MAX_DELAY_MS : AGENT_KUBE_MAX_DELAY_MS;
}

/* A pass is due: the first once synced, then when changes settled. */
static bool pass_due(struct agent *a, struct agent_kube *ak, double t)
{
	if (!agent_kube_ready(ak))
		return false;
	if (!ak->first_done)
		return true;
	return ak->dirty && (t - ak->last_event_ms >= quiet_ms(a) ||
			     t - ak->first_dirty_ms >= max_delay_ms(a));
}

/*
 * The statuses of the pipeline's model, by the elected writer only (a whole
 * translation; the others skip it and translate once they lead).
 */
static void publish_statuses(struct agent *a, struct agent_kube *ak)
{
	struct diag dg = { 0 };
	struct tr_result res;
	double t0 = now_ms();
	int ret;

	if (!ak->status_pending || !a->pl || now_ms() < ak->status_at_ms ||
	    !kube_status_leading(ak->st))
		return;
	ret = translate_opts(pl_model(a->pl), &a->tr, &dg, &res);
	diag_free(&dg);
	if (ret) {
		pr_err("kube: route statuses: translate: %s", strerror(-ret));
		ak->status_at_ms = now_ms() + AGENT_KUBE_STATUS_DELAY_MS;
		return;
	}
	agent_kube_statuses(ak, &res);
	tr_result_free(&res);
	ak->status_pending = false;
	pr_debug("kube: route statuses translated in %.1f ms", now_ms() - t0);
}

static int run_pass(struct agent *a, struct agent_kube *ak, bool once)
{
	size_t events = ak->events;
	int ret;

	ak->dirty = false;
	ak->events = 0;
	a->opts.full = !ak->first_done;	/* the first cleans what an earlier agent left */
	ret = agent_apply_dir(a);
	a->opts.full = false;
	if (!ak->first_done) {
		struct kube_watch_stats st;
		const struct model *m = a->pl ? pl_model(a->pl) : NULL;

		kube_watch_get_stats(ak->w, &st);
		pr_info("kube: first apply %.0f ms after start (%zu services, %zu endpoint "
			"slices, %zu pods, %zu httproutes; %llu lists in %llu pages, %llu "
			"streamed; applied %zu services, %zu endpoint slices)%s",
			now_ms() - ak->start_ms,
			kube_watch_count(ak->w, KUBE_SERVICES), kube_watch_count(ak->w, KUBE_SLICES),
			kube_watch_count(ak->w, KUBE_PODS), kube_watch_count(ak->w, KUBE_HTTPROUTES),
			(unsigned long long)st.lists, (unsigned long long)st.pages,
			(unsigned long long)st.stream_lists, m ? m->services.nr : 0,
			m ? m->slices.nr : 0, ret ? " failed" : "");
		ak->first_done = true;
	} else {
		pr_debug("kube: pass for %zu events", events);
	}
	/* The engine has its tables: accept (and the agent we replaced stops). */
	if (!ret && a->engine && !ak->engine_ready) {
		ret = agent_engine_ready(a);
		ak->engine_ready = !ret;
	}
	/* Serving: a successor may take over from here on (handover.h). */
	if (!ret && !a->ho_next && !once)
		if (!handover_listen(a->pin_dir, &a->ho_next))	/* failure logged: no handover */
			agent_kh_handover(a);
	return ret;
}

int agent_kube_loop(struct agent *a, int resync_s, bool once)
{
	struct agent_kube *ak = a->kube;
	double next_resync = now_ms() + resync_s * 1e3;
	struct pollfd fds[4];
	int nl = -1, ret = 0;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!once) {
		nl = netmon_open();
		if (nl < 0)
			pr_warn("link and route events: %s (pods are followed every --resync only)",
				strerror(-nl));
	}
	/* Events go into the pipeline from the first one on (not with --once). */
	if (a->incremental && !a->pl && (ret = agent_pl_start(a)))
		return ret;
	fds[0] = (struct pollfd){ .fd = kube_watch_fd(ak->w), .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = nl, .events = POLLIN };
	while (!stop) {
		double t = now_ms(), left = next_resync - t;
		int n, timeout;

		if (ak->dirty && ak->first_done) {
			double q = quiet_ms(a) - (t - ak->last_event_ms);
			double m = max_delay_ms(a) - (t - ak->first_dirty_ms);

			left = q < m ? q : m;
		} else if (!ak->first_done) {
			left = 100;	/* look for the end of the first lists */
		}
		if (ak->status_pending) {
			/*
			 * Due at status_at_ms; past it we are not leading (or
			 * a commit comes first): look again in a second, as
			 * leadership may come.
			 */
			double s = ak->status_at_ms - t;

			if (s <= 0)
				s = 1000;
			if (s < left)
				left = s;
		}
		timeout = left > 0 ? (int)left + 1 : 0;
		/* a successor agent (handover.h); poll skips -1 */
		fds[2] = (struct pollfd){ .fd = handover_poll_fd(a->ho_next), .events = POLLIN };
		/* the kernel HTTP path's upstream pools (agent_khttp.h) */
		fds[3] = (struct pollfd){ .fd = agent_kh_fd(a), .events = POLLIN };
		n = poll(fds, 4, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			pr_err("kube: poll: %s", strerror(-ret));
			break;
		}
		if (fds[3].revents)
			agent_kh_run(a);
		if (fds[2].revents &&
		    handover_serve(a->ho_next, a->steer, a->engine_port) == 1) {
			a->handed_over = true;	/* the successor applies from now on */
			break;
		}
		if (fds[0].revents)
			kube_watch_drain(ak->w, agent_kube_event, a);
		t = now_ms();
		if (pass_due(a, ak, t)) {
			/*
			 * A list queues its objects and then marks itself synced (one
			 * lock): drained before we saw it synced, they may not all be in
			 * the pipeline yet. The first pass must not write a partial store
			 * (Services without their EndpointSlices: no endpoints).
			 */
			if (!ak->first_done)
				kube_watch_drain(ak->w, agent_kube_event, a);
			ret = run_pass(a, ak, once);
			if (once)
				break;
			next_resync = now_ms() + resync_s * 1e3;
		}
		if (ak->status_pending && !ak->dirty)
			publish_statuses(a, ak);
		if (nl >= 0 && fds[1].revents && netmon_settle(nl) > 0 && ak->first_done)
			agent_resync(a, false);	/* a pod came or went */
		if (ak->first_done && now_ms() >= next_resync) {
			agent_resync(a, true);
			next_resync = now_ms() + resync_s * 1e3;
		}
	}
	if (nl >= 0)
		close(nl);
	return stop || a->handed_over ? 0 : ret;
}
