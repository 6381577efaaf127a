// SPDX-License-Identifier: Apache-2.0
/* HTTP/1.1 in the kernel, run by the agent: see agent_khttp.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "datapath/netns_sock.h"
#include "engine/engine.h"
#include "khttp/khttp.h"
#include "khttp/khttp_backlog.h"
#include "khttp/khttp_pool.h"
#include "agent.h"
#include "agent_khttp.h"
#include "handover.h"
#include "steer.h"

/* Free upstreams a busy pool keeps ahead of the next claims. */
#define KH_PER_POOL 8
/*
 * Free upstreams of a pool its first miss makes: as many as a busy pool
 * keeps. Fewer sent the connections of a burst at a cold pool to the
 * engine for good (agent_http_kernel/keepalive_10k: 8 of 10 connections
 * with 2); a pool idles down to none anyway.
 */
#define KH_START KH_PER_POOL
/* An upstream unused that long is closed (--kernel-http-idle). */
#define KH_IDLE_MS_DEFAULT 30000
/*
 * Pools made ahead at a pass while the pools a pass could need (pod netns
 * x endpoints of kernel rule backends) number at most this
 * (--kernel-http-ahead): 64 pools are 512 upstream connects at the pass
 * and 64 sockets at rest. 10,000 Services needed about 2,000 pools, which
 * took minutes of the agent's loop: beyond the bound, on demand.
 */
#define KH_AHEAD_DEFAULT 64

struct kh_ep {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct agent_kh {
	struct kh_pools *pools;
	struct kh_backlog *backlog;	/* NULL: slow readers reset, not relayed */
	/* the endpoints kernel rule backends name, at the last pass: a miss makes pools of them */
	struct kh_ep *eps;
	size_t nr_eps;
	size_t ahead;		/* pools made ahead at the last pass (logged when it changes) */
	uint64_t own_cookie;	/* the agent's own netns: its pools on demand only */
	bool on_demand;		/* the last pass needed more pools than the bound */
	bool warned, slow_noted;
};

void agent_kh_open(struct agent *a, bool engine)
{
	char why[256];
	int err;

	if (!a->kernel_http || !engine) {
		/* an earlier run's registrations would only cost a program run per message */
		err = dp_kh_detach(a->dp);
		if (err)
			pr_warn("kernel HTTP data path: unpin the sockops link of an earlier run: %s",
				strerror(-err));
		return;
	}
	if (kh_path_probe(why, sizeof(why))) {
		pr_warn("kernel HTTP data path: off: %s: the HTTP engine serves every request",
			why);
		dp_kh_detach(a->dp);
		return;
	}
	err = dp_kh_open(a->dp, &a->kh_dp);
	if (err) {
		pr_warn("kernel HTTP data path: off: the programs do not attach here (%s): the "
			"HTTP engine serves every request", strerror(-err));
		a->kh_dp = NULL;
		dp_kh_detach(a->dp);
		return;
	}
	pr_info("kernel HTTP data path: on (%s); requests whose rules the kernel can encode are "
		"served there, the rest by the HTTP engine", why);
}

/* The kernel lost a client's upstream mid-response: the engine resets the client. */
static void kh_cut(void *ctx, uint64_t client_cookie)
{
	struct agent *a = ctx;

	engine_kernel_reset(a->engine, client_cookie);
}

/* A close-delimited response ended: the engine ends the client's side after it. */
static void kh_eof(void *ctx, uint64_t client_cookie)
{
	struct agent *a = ctx;

	engine_kernel_eof(a->engine, client_cookie);
}

/*
 * A client lags beyond the kernel's in-flight cap: the rest of its
 * response waits on the upstream under TCP's flow control, and the engine
 * relays it (engine_kernel_relay: once the kernel's bytes are all queued
 * at the client, which the backlog iterator tells). Without that iterator
 * the client is reset (bounded memory kept; it sees a reset, never a cut
 * response that looks whole).
 */
static void kh_slow(void *ctx, uint64_t client_cookie, uint32_t slot, int upstream_fd)
{
	struct agent *a = ctx;
	int err = -EOPNOTSUPP;

	if (a->khp->backlog)
		err = engine_kernel_relay(a->engine, client_cookie, slot, upstream_fd);
	if (!err)
		return;
	if (!a->khp->slow_noted)
		pr_warn("kernel HTTP data path: a client lags beyond the in-flight cap and its "
			"upstream cannot be relayed (%s): reset (logged once)", strerror(-err));
	a->khp->slow_noted = true;
	engine_kernel_reset(a->engine, client_cookie);
}

static void kh_adopt(struct agent *a, int *fds);
static void kh_miss(void *ctx, const struct gammad_kh_pool_key *key);

int agent_kh_start(struct agent *a)
{
	struct kh_pool_opts po = { .per_pool = KH_PER_POOL, .start = KH_START,
				   .idle_ms = a->kh_idle_ms ? a->kh_idle_ms : KH_IDLE_MS_DEFAULT,
				   .miss = kh_miss, .cut = kh_cut,
				   .eof = kh_eof, .slow = kh_slow, .ctx = a };
	/* a predecessor's pools (handover.h): adopted, not flushed */
	int *fds = handover_kh_fds(a->ho_prev);
	struct agent_kh *k;
	int err, fd;

	if (!a->kh_dp || !a->steer)
		return 0;
	po.adopt = fds != NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	po.map_up = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_UP);
	po.map_upc = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_UPC);
	po.map_slot = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_SLOT);
	po.map_pool = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_POOL);
	po.map_events = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_EVENTS);
	po.map_sockh = dp_map_fd(a->dp, GAMMAD_MAP_SOCKHASH);
	/*
	 * Same-node server sockets: only under --sockmap (their tcp_bpf reads,
	 * README "Why opt-in"). Every slot's pairing is written either way (0:
	 * none), so an earlier run's pinned pairings never outlive it.
	 */
	po.map_svs = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_SRV_SLOT);
	if (dp_kh_samenode(a->dp)) {
		po.map_svk = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_SRV_KEY);
		po.map_lep = dp_map_fd(a->dp, GAMMAD_MAP_LOCAL_EP);
	}
	err = kh_backlog_open(&k->backlog);
	if (err)
		pr_warn("kernel HTTP data path: the sockmap backlog iterator does not load (%s): "
			"slow readers are reset, not relayed", strerror(-err));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sock_netns_cookie(fd, &k->own_cookie))
		k->own_cookie = 0;
	if (fd >= 0)
		close(fd);
	k->pools = kh_pools_new(&po);
	if (!k->pools) {
		kh_backlog_free(k->backlog);
		free(k);
		pr_err("kernel HTTP data path: upstream pools: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	steer_set_khttp(a->steer, &(struct steer_kh_fds){
		.ck = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_CK),
		.ag = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_AGENT),
		.fm = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_FIRST),
		.ho = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_HANDOVER),
		.ret = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_RETURN),
		.slot = po.map_slot,
		.sre = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_SLOT_EDITS),
		.rb = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_RB),
		.backlog = k->backlog,
	});
	a->khp = k;
	if (fds)
		kh_adopt(a, fds);
	return 0;
}

/* ---- restarts (handover.h) ------------------------------------------------ */

/* The netns the steering took over, to find a pinned pool's by its cookie. */
struct kh_adopt_ns {
	uint64_t cookie;
	int fd;
};

/*
 * The socket address of an endpoint as the maps keep it (family, address
 * bytes, port in network order); 0 for a family that is neither.
 */
static socklen_t endpoint_sockaddr(uint8_t family, const uint8_t *addr, uint16_t port,
				   struct sockaddr_storage *ss)
{
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = port;
		memcpy(&s4->sin_addr, addr, 4);
		return sizeof(*s4);
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		memcpy(&s6->sin6_addr, addr, 16);
		return sizeof(*s6);
	}
	return 0;
}

static void adopt_ns_find(void *ctx, int netns_fd, uint64_t cookie)
{
	struct kh_adopt_ns *f = ctx;

	if (f->fd < 0 && cookie == f->cookie)
		f->fd = dup(netns_fd);	/* the steer's may close once its lock is released */
}

/*
 * The pools the agent we replace left pinned, with its upstream sockets
 * (fds by slot): every pool of a netns the steering took over is ours as
 * it was, slots, owners, responses in flight and all; agent_kh_sync keeps
 * or closes them as any other.
 */
static void kh_adopt(struct agent *a, int *fds)
{
	struct agent_kh *k = a->khp;
	int fd = dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_POOL);
	struct gammad_kh_pool_key key, next;
	size_t nr = 0, lost = 0;
	void *kp = NULL;

	while (fd >= 0 && !bpf_map_get_next_key(fd, kp, &next)) {
		struct kh_adopt_ns f = { .cookie = next.netns_cookie, .fd = -1 };
		struct sockaddr_storage ss = { 0 };
		socklen_t len;
		int err;

		key = next;
		kp = &key;
		len = endpoint_sockaddr(key.family, key.addr, key.port, &ss);
		if (!len)
			continue;
		steer_each_netns(a->steer, adopt_ns_find, &f);
		if (f.fd < 0)
			continue;	/* its pod went: kh_pools_adopt_done drops it */
		err = kh_pools_adopt(k->pools, f.fd, (struct sockaddr *)&ss, len, fds);
		close(f.fd);
		if (err) {
			lost++;
			continue;
		}
		nr++;
	}
	kh_pools_adopt_done(k->pools, fds);
	pr_info("kernel HTTP data path: adopted %zu upstream pools of the agent we replace%s", nr,
		lost ? " (some not: their clients' next requests go to the engine)" : "");
}

/* handover_kh_each_fn: our upstream sockets to the successor. */
static int kh_send_slot(void *ctx, uint32_t slot, int fd)
{
	return handover_kh_send(ctx, slot, fd);
}

static int kh_export(void *ctx, struct handover *h)
{
	struct agent *a = ctx;

	return a->khp ? kh_pools_each_slot(a->khp->pools, kh_send_slot, h) : 0;
}

/* One slot's response in flight (kh_idle): -EBUSY stops the walk. */
static int kh_slot_busy(void *ctx, uint32_t slot, int fd)
{
	struct agent *a = ctx;
	struct gammad_kh_slot sv;

	(void)fd;
	if (bpf_map_lookup_elem(dp_kh_map_fd(a->kh_dp, GAMMAD_MAP_KH_SLOT), &slot, &sv))
		return 0;
	if (sv.owner == GAMMAD_KH_OWNER_FREE || sv.owner == GAMMAD_KH_OWNER_DEAD ||
	    (sv.flags & (GAMMAD_KH_SLOT_CUT | GAMMAD_KH_SLOT_UNFRAMED)))
		return 0;	/* nothing it owes, or nothing we could wait for */
	return sv.req_seq != sv.r.resp_seq || sv.r.state != GAMMAD_KH_RS_STATUS || sv.r.k ?
		       -EBUSY : 0;
}

/*
 * handover_kh_idle_fn: does the kernel owe any client of ours the rest of a
 * response? A successor without the path gets our clients once it does not
 * (their upstreams close with us). An unframed response (close-delimited)
 * is not waited for: it ends when its upstream closes, which is with us.
 */
static bool kh_idle(void *ctx)
{
	struct agent *a = ctx;

	return !a->khp || !kh_pools_each_slot(a->khp->pools, kh_slot_busy, a);
}

void agent_kh_handover(struct agent *a)
{
	if (a->khp)
		handover_set_kh(a->ho_next, kh_export, kh_idle, a);
}

/*
 * ---- which pools: of the endpoints of the kernel tables' backends and
 * the pods' netns; ahead while few, else on demand ----
 */

struct kh_eps {
	struct kh_ep *v;
	size_t nr, cap;
	uint32_t *be;		/* backends the rule backends name */
	size_t nr_be, cap_be;
};

static bool grow(void **p, size_t *cap, size_t nr, size_t size)
{
	size_t c = *cap ? *cap * 2 : 16;
	void *n;

	if (nr < *cap)
		return true;
	n = realloc(*p, c * size);
	if (!n)
		return false;
	*p = n;
	*cap = c;
	return true;
}

static int be_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int ep_cmp(const void *a, const void *b)
{
	const struct kh_ep *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(&x->ss, &y->ss, x->len);
}

/* Sorted v[nr] of size bytes each, duplicates dropped: how many are left. */
static size_t sort_unique(void *v, size_t nr, size_t size, int (*cmp)(const void *, const void *))
{
	char *b = v;
	size_t n = 0;

	if (!nr)
		return 0;
	qsort(v, nr, size, cmp);
	for (size_t i = 1; i < nr; i++)
		if (cmp(b + n * size, b + i * size))
			memcpy(b + ++n * size, b + i * size, size);
	return n + 1;
}

static int eps_add_backend(struct agent *a, struct kh_eps *e, uint32_t be_id)
{
	struct gammad_be_val bv;

	if (dp_map_lookup(a->dp, GAMMAD_MAP_BACKEND, &be_id, &bv))
		return 0;	/* retired meanwhile */
	for (uint32_t i = 0; i < bv.nr_endpoints; i++) {
		struct gammad_ep_key ek = { .ep_set = bv.ep_set, .idx = i };
		struct gammad_ep_val ev;
		struct sockaddr_storage ss = { 0 };
		socklen_t len;

		if (dp_map_lookup(a->dp, GAMMAD_MAP_ENDPOINT, &ek, &ev))
			continue;
		len = endpoint_sockaddr(ev.family, ev.addr, ev.port, &ss);
		if (!len)
			continue;
		if (!grow((void **)&e->v, &e->cap, e->nr, sizeof(*e->v)))
			return -ENOMEM;
		e->v[e->nr++] = (struct kh_ep){ ss, len };
	}
	return 0;
}

/*
 * Every endpoint a rule backend of a kernel table can draw, sorted, each
 * once (eps_has). Sorted, not looked up in what was collected so far: at
 * 10,000 Services (100,000 endpoints) that search took about 20 s per
 * pass, between the apply and "applied".
 */
static int eps_collect(struct agent *a, struct kh_eps *e)
{
	int fd = dp_map_fd(a->dp, GAMMAD_MAP_KH_RB);
	struct gammad_kh_key key, next;
	struct gammad_kh_rb *rb = malloc(sizeof(*rb));
	void *k = NULL;
	int err = 0;

	if (fd < 0 || !rb) {
		free(rb);
		return fd < 0 ? fd : -ENOMEM;
	}
	while (!err && !bpf_map_get_next_key(fd, k, &next)) {
		key = next;
		k = &key;
		if (bpf_map_lookup_elem(fd, &key, rb))
			continue;	/* retired between the two calls */
		if (rb->status != 200 || !rb->be_id)
			continue;
		if (!grow((void **)&e->be, &e->cap_be, e->nr_be, sizeof(*e->be)))
			err = -ENOMEM;
		else
			e->be[e->nr_be++] = rb->be_id;
	}
	free(rb);
	e->nr_be = sort_unique(e->be, e->nr_be, sizeof(*e->be), be_cmp);
	for (size_t i = 0; !err && i < e->nr_be; i++)
		err = eps_add_backend(a, e, e->be[i]);
	e->nr = sort_unique(e->v, e->nr, sizeof(*e->v), ep_cmp);
	return err;
}

static bool eps_has(const struct kh_ep *v, size_t nr, const struct sockaddr_storage *ss,
		    socklen_t len)
{
	struct kh_ep want = { .len = len };

	memcpy(&want.ss, ss, len);
	return nr && bsearch(&want, v, nr, sizeof(*v), ep_cmp);
}

/* The steering's netns with a cookie: its fd (dup), or -1. */
struct kh_ns_find {
	uint64_t cookie;
	int fd;
};

static void ns_find(void *ctx, int netns_fd, uint64_t cookie)
{
	struct kh_ns_find *f = ctx;

	if (f->fd < 0 && cookie == f->cookie)
		f->fd = dup(netns_fd);	/* the steer's may close once its lock is released */
}

/*
 * A client found no pool for (its netns, an endpoint): made here when the
 * steering listens in that netns and a kernel rule backend names the
 * endpoint (as of the last pass). That request went to the engine.
 */
static void kh_miss(void *ctx, const struct gammad_kh_pool_key *key)
{
	struct agent *a = ctx;
	struct agent_kh *k = a->khp;
	struct kh_ns_find f = { .cookie = key->netns_cookie, .fd = -1 };
	struct sockaddr_storage ss;
	socklen_t len = kh_pool_key_addr(key, &ss);
	int err;

	if (!k || !len || !eps_has(k->eps, k->nr_eps, &ss, len))
		return;
	steer_each_netns(a->steer, ns_find, &f);
	if (f.fd < 0)
		return;
	err = kh_pools_add(k->pools, f.fd, (const struct sockaddr *)&ss, len);
	close(f.fd);
	if (err && !k->warned)
		pr_warn("kernel HTTP data path: an upstream pool: %s (the engine serves its "
			"requests; tried again at a later miss; logged once)", strerror(-err));
	k->warned |= err != 0;
}

struct kh_cookies {
	uint64_t *v;
	size_t nr, cap;
};

static void cookie_add(void *ctx, int netns_fd, uint64_t cookie)
{
	struct kh_cookies *c = ctx;

	(void)netns_fd;
	if (grow((void **)&c->v, &c->cap, c->nr, sizeof(*c->v)))
		c->v[c->nr++] = cookie;
}

struct kh_keep {
	const struct agent_kh *k;
	const struct kh_cookies *ns;
};

/* A pool stays while its netns is steered and a kernel rule backend names its endpoint. */
static bool pool_keep(void *ctx, const struct gammad_kh_pool_key *key)
{
	const struct kh_keep *kp = ctx;
	struct sockaddr_storage ss;
	socklen_t len = kh_pool_key_addr(key, &ss);
	bool ns = false;

	for (size_t i = 0; i < kp->ns->nr && !ns; i++)
		ns = kp->ns->v[i] == key->netns_cookie;
	return ns && len && eps_has(kp->k->eps, kp->k->nr_eps, &ss, len);
}

struct kh_ns {
	uint64_t cookie;
	int fd;
};

struct kh_nss {
	struct kh_ns *v;
	size_t nr, cap;
	uint64_t skip;		/* the agent's own netns */
};

static void nss_add(void *ctx, int netns_fd, uint64_t cookie)
{
	struct kh_nss *n = ctx;
	int fd;

	if (cookie == n->skip || !grow((void **)&n->v, &n->cap, n->nr, sizeof(*n->v)))
		return;
	fd = dup(netns_fd);	/* the steer's may close once its lock is released */
	if (fd >= 0)
		n->v[n->nr++] = (struct kh_ns){ cookie, fd };
}

/*
 * Pools ahead (KH_AHEAD_DEFAULT): every (pod netns, endpoint) pool is
 * made now when they number at most the bound, so a first request is the
 * kernel's; they idle down to one free upstream and stay (khttp_pool.h).
 * More than that and every pool is on demand: those made ahead earlier
 * idle out as the others. Not in the agent's own netns (clients without a
 * pod, on demand): the node's own routes to pods may drop its SYNs (the
 * lab's do), and each such connect blocked the loop for its 1 s timeout.
 * ns: the steered netns now.
 */
static void pools_ahead(struct agent *a, const struct kh_cookies *ns)
{
	struct agent_kh *k = a->khp;
	size_t bound = a->kh_ahead_set ? a->kh_ahead : KH_AHEAD_DEFAULT;
	size_t nr_ns = 0, need, made = 0;
	struct kh_nss n = { .skip = k->own_cookie };
	int err;

	for (size_t i = 0; i < ns->nr; i++)
		nr_ns += ns->v[i] != k->own_cookie;
	need = nr_ns * k->nr_eps;

	kh_pools_ahead_begin(k->pools);
	if (need > bound || !need) {
		if (need > bound && !k->on_demand)
			pr_info("kernel HTTP data path: pools on demand (%zu pod netns x %zu "
				"endpoints need %zu pools, more than --kernel-http-ahead %zu)",
				nr_ns, k->nr_eps, need, bound);
		k->on_demand = need > bound;
		k->ahead = 0;
		return;
	}
	steer_each_netns(a->steer, nss_add, &n);
	for (size_t ni = 0; ni < n.nr; ni++) {
		for (size_t ei = 0; ei < k->nr_eps; ei++) {
			err = kh_pools_ahead(k->pools, n.v[ni].fd, n.v[ni].cookie,
					     (const struct sockaddr *)&k->eps[ei].ss, k->eps[ei].len);
			made += !err;
			if (err && !k->warned)
				pr_warn("kernel HTTP data path: an upstream pool ahead: %s (the "
					"engine serves its requests; tried again at the next pass; "
					"logged once)", strerror(-err));
			k->warned |= err != 0;
		}
		close(n.v[ni].fd);
	}
	if (made != k->ahead || k->on_demand)
		pr_info("kernel HTTP data path: %zu upstream pools made ahead (%zu pod netns x "
			"%zu endpoints, at most --kernel-http-ahead %zu)", made, n.nr, k->nr_eps,
			bound);
	k->ahead = made;
	k->on_demand = false;
	free(n.v);
}

void agent_kh_sync(struct agent *a)
{
	struct agent_kh *k = a->khp;
	struct kh_eps e = { 0 };
	struct kh_cookies ns = { 0 };
	size_t gone;
	int err;

	if (!k)
		return;
	err = eps_collect(a, &e);
	if (err) {
		pr_warn("kernel HTTP data path: endpoints of the kernel tables: %s (pools kept "
			"as they are)", strerror(-err));
		free(e.v);
		free(e.be);
		return;
	}
	free(k->eps);
	k->eps = e.v;
	k->nr_eps = e.nr;
	free(e.be);
	/* pools of what went, closed here; made ahead while few, else at a first miss */
	steer_each_netns(a->steer, cookie_add, &ns);
	gone = kh_pools_prune(k->pools, pool_keep, &(struct kh_keep){ k, &ns });
	if (gone)
		pr_info("kernel HTTP data path: %zu upstream pools (%zu closed: their endpoint "
			"or pod went)", kh_pools_count(k->pools), gone);
	pools_ahead(a, &ns);
	free(ns.v);
}

int agent_kh_fd(const struct agent *a)
{
	return a->khp ? kh_pools_fd(a->khp->pools) : -1;
}

void agent_kh_run(struct agent *a)
{
	int n;

	if (!a->khp)
		return;
	n = kh_pools_run(a->khp->pools);
	if (n < 0)
		pr_warn("kernel HTTP data path: upstream pools: %s", strerror(-n));
}

void agent_kh_free(struct agent *a)
{
	if (a->khp) {
		/* handed over: the sockets and the maps are the successor's now */
		if (a->handed_over && handover_kh_given(a->ho_next))
			kh_pools_release(a->khp->pools);
		else
			kh_pools_free(a->khp->pools);
		kh_backlog_free(a->khp->backlog);
		free(a->khp->eps);
		free(a->khp);
		a->khp = NULL;
	}
	dp_kh_close(a->kh_dp);
	a->kh_dp = NULL;
}
