// SPDX-License-Identifier: Apache-2.0
/* The kernel HTTP path's upstream pools: see khttp_pool.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include "base/log.h"
#include "datapath/netns_sock.h"
#include "gammad/maps.h"
#include "khttp_pool.h"

#define RB_TAG		(~0ULL)
#define TIMER_TAG	(~1ULL)
/* a pool whose upstream failed to connect is not tried again sooner (connects block) */
#define RETRY_MS	1000
/*
 * ... doubled per failure in a row up to 64 s when no client asks (the
 * sweep): a pool made ahead to an endpoint that does not answer would
 * otherwise block the loop for the connect's 1 s timeout every second.
 */
#define RETRY_SHIFT_MAX	6
/*
 * Free upstreams a pool made ahead keeps when idle: its first request
 * after an idle time is the kernel's (a pool that idled out would make it
 * a miss again, which is what pools ahead are for); one socket per pool at
 * rest, bounded by the caller's bound on pools ahead.
 */
#define AHEAD_FLOOR	1

struct kh_slot_u {
	int fd;			/* -1: not armed */
	int pool;
	uint64_t cookie;
	uint64_t srv;		/* the same-node server socket's cookie, 0: none (TCP) */
	bool relayed;		/* slow client: the caller reads it (no hang-up handling) */
	bool retiring;		/* out of its pool's list: closed by a sweep once free */
	uint64_t seen_owner;	/* owner and req_seq at the last sweep: a change is use */
	uint32_t seen_seq;
	uint64_t used_ms;	/* last use seen (or armed) */
};

struct kh_pool_u {
	struct gammad_kh_pool_key key;
	struct gammad_kh_pool val;
	int netns_fd;		/* ours (dup), -1: the caller's netns */
	struct sockaddr_storage ep;
	socklen_t len;
	unsigned int want;	/* free upstreams to keep */
	unsigned int retiring;	/* its slots out of the list, not closed yet */
	uint64_t claimed_ms;	/* a new claim seen last (a miss, an event, a sweep) */
	uint64_t decay_ms;	/* want halved last */
	uint64_t fail_ms;	/* an upstream failed to connect last, 0: never */
	unsigned int fails;	/* refills that failed in a row (RETRY_SHIFT_MAX) */
	bool retry;		/* a refill failed or waited out fail_ms: the sweep refills */
	bool ahead;		/* kh_pools_ahead: idles down to AHEAD_FLOOR free, never out */
	/* the address the netns routes to ep from (srv_expect), 0: ask again */
	struct sockaddr_storage src;
	socklen_t src_len;
};

struct kh_pools {
	struct kh_pool_opts o;
	int ep;
	int tfd;		/* the sweep's timer (idle_ms), -1: none */
	struct ring_buffer *rb;
	struct kh_slot_u *slots;
	uint32_t next_slot;
	uint32_t *free_ids;		/* slot ids of deleted pools, for reuse */
	uint32_t nr_free;
	struct kh_pool_u *pools;
	size_t nr_pools, cap;
	int actions;
};

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int pool_socket(const struct kh_pool_u *pl, int type)
{
	int fd;

	if (pl->netns_fd >= 0)
		return netns_socket(pl->netns_fd, pl->ep.ss_family, type | SOCK_CLOEXEC, 0);
	fd = socket(pl->ep.ss_family, type | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

/*
 * n TCP sockets inside netns_fd (-1: ours) into fds, with one thread hop
 * there (netns_sockets): a hop per socket made a pool of 8 wait for 9 new
 * threads, each of which may wait for a CPU on a busy node. n or -errno.
 */
static int ns_sockets(int netns_fd, int family, int *fds, int n)
{
	if (netns_fd >= 0)
		return netns_sockets(netns_fd, family, SOCK_STREAM | SOCK_CLOEXEC, 0, fds, n);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0) {
			int err = -errno;

			while (i-- > 0)
				close(fds[i]);
			return err;
		}
	}
	return n;
}

/* ... in the pool's netns, for one batch of upstreams */
static int pool_sockets(struct kh_pool_u *pl, int *fds, int n)
{
	pl->src_len = 0;	/* srv_expect asks once for these */
	return ns_sockets(pl->netns_fd, pl->ep.ss_family, fds, n);
}

/* The sockhash key (bpf/lib/sockmap.h) of the socket with addresses l and r. */
static void sock_key(struct gammad_sock_key *k, const struct sockaddr_storage *l,
		     const struct sockaddr_storage *r)
{
	memset(k, 0, sizeof(*k));
	k->family = l->ss_family;
	if (l->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)l, *b = (const void *)r;

		memcpy(k->local, &a->sin_addr, 4);
		memcpy(k->remote, &b->sin_addr, 4);
		k->local_port = a->sin_port;
		k->remote_port = b->sin_port;
	} else {
		const struct sockaddr_in6 *a = (const void *)l, *b = (const void *)r;

		memcpy(k->local, &a->sin6_addr, 16);
		memcpy(k->remote, &b->sin6_addr, 16);
		k->local_port = a->sin6_port;
		k->remote_port = b->sin6_port;
	}
}

/* Out of the same-node sockhash (khttp_pool.h, map_sockh). */
static void sockh_leave(const struct kh_pools *p, int fd)
{
	struct gammad_sock_key k;
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);

	if (p->o.map_sockh <= 0 || getsockname(fd, (struct sockaddr *)&l, &ll) ||
	    getpeername(fd, (struct sockaddr *)&r, &rl))
		return;
	sock_key(&k, &l, &r);
	bpf_map_delete_elem(p->o.map_sockh, &k);	/* ENOENT: not between local pods */
}

/* Is the pool's endpoint a pod of this node (khttp_pool.h, map_lep)? */
static bool pool_local(const struct kh_pools *p, const struct kh_pool_u *pl)
{
	struct gammad_lep_key k = { .family = pl->key.family };
	struct gammad_lep_val v;

	if (p->o.map_lep <= 0)
		return true;
	memcpy(k.addr, pl->key.addr, sizeof(k.addr));
	return !bpf_map_lookup_elem(p->o.map_lep, &k, &v);
}

/*
 * Before connect(): bind fd to the address the netns routes to the
 * endpoint from (a UDP socket's connect() tells it) and record the tuple
 * the backend's accepted socket will see, for slot s (khttp_pool.h,
 * map_svk). 0, or -errno: then the slot is not paired.
 */
static int srv_expect(const struct kh_pools *p, struct kh_pool_u *pl, int fd, uint32_t s,
		      struct gammad_sock_key *key)
{
	struct gammad_kh_srv rec = { .slot = s };
	struct sockaddr_storage src;
	socklen_t len = sizeof(src);
	int u, err = 0;

	/* asked once per batch of upstreams (a socket in the netns is a thread hop) */
	if (!pl->src_len) {
		u = pool_socket(pl, SOCK_DGRAM);
		if (u < 0)
			return u;
		if (connect(u, (const struct sockaddr *)&pl->ep, pl->len) ||
		    getsockname(u, (struct sockaddr *)&pl->src, &len))
			err = -errno;
		close(u);
		if (err)
			return err;
		pl->src_len = len;
	}
	src = pl->src;
	if (src.ss_family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	len = src.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (bind(fd, (struct sockaddr *)&src, len) ||
	    getsockname(fd, (struct sockaddr *)&src, &len))
		return -errno;
	sock_key(key, &pl->ep, &src);	/* as the server socket sees it: the endpoint is local */
	return bpf_map_update_elem(p->o.map_svk, key, &rec, BPF_ANY) ? -errno : 0;
}

/*
 * After connect(): the server socket's cookie once the kernel paired it
 * (its PASSIVE_ESTABLISHED normally ran before connect() returned; a few
 * ms at most), else 0. A record the kernel completed goes (the cookie is
 * the kernel's last write to it); one it did not stays for the LRU to
 * age out, so a late kernel write can never land in a reused element (a
 * socket paired that late is never published: its slot says 0).
 */
static uint64_t srv_paired(const struct kh_pools *p, const struct gammad_sock_key *key)
{
	struct gammad_kh_srv rec = { 0 };

	for (int i = 0; i < 50; i++) {
		if (bpf_map_lookup_elem(p->o.map_svk, key, &rec))
			return 0;
		if (rec.cookie) {
			bpf_map_delete_elem(p->o.map_svk, key);
			return rec.cookie;
		}
		usleep(100);
	}
	return 0;
}

static void srv_unpair(const struct kh_pools *p, uint32_t s)
{
	uint64_t none = 0;

	if (p->o.map_svs > 0)
		bpf_map_update_elem(p->o.map_svs, &s, &none, BPF_ANY);
}

/*
 * Connect a new upstream into slot s of pool pi and publish it free: fd, a
 * TCP socket made in the pool's netns (pool_sockets; -1: made here).
 */
static int slot_arm(struct kh_pools *p, uint32_t s, int pi, int fd)
{
	struct kh_pool_u *pl = &p->pools[pi];
	struct gammad_kh_slot sv = { .owner = GAMMAD_KH_OWNER_FREE, .pool = pl->key };
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLHUP, .data.u64 = s };
	socklen_t clen = sizeof(uint64_t);
	struct timeval tmo = { 1, 0 }, none = { 0, 0 };
	struct gammad_sock_key key;
	uint64_t cookie = 0, srv = 0, v;
	bool pair;
	int err;

	if (fd < 0)
		fd = pool_socket(pl, SOCK_STREAM);
	if (fd < 0)
		return fd;
	pair = p->o.map_svk > 0 && p->o.map_svs > 0 && pool_local(p, pl) &&
	       !srv_expect(p, pl, fd, s, &key);
	/* a blocking connect in the agent's loop: bounded (a pod that does not answer) */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
	if (connect(fd, (const struct sockaddr *)&pl->ep, pl->len) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none)) ||
	    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (pair)
		srv = srv_paired(p, &key);
	sockh_leave(p, fd);
	v = (uint64_t)fd;
	/* socket, cookie and server first, the free owner last: it publishes the slot */
	if (bpf_map_update_elem(p->o.map_up, &s, &v, BPF_ANY) ||
	    (p->o.map_svs > 0 && bpf_map_update_elem(p->o.map_svs, &s, &srv, BPF_ANY)) ||
	    bpf_map_update_elem(p->o.map_upc, &cookie, &s, BPF_ANY) ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) ||
	    bpf_map_update_elem(p->o.map_slot, &s, &sv, BPF_ANY)) {
		err = -errno;
		bpf_map_delete_elem(p->o.map_upc, &cookie);
		close(fd);
		return err;
	}
	p->slots[s] = (struct kh_slot_u){ .fd = fd, .pool = pi, .cookie = cookie, .srv = srv,
					  .seen_owner = GAMMAD_KH_OWNER_FREE, .used_ms = now_ms() };
	return 0;
}

/* Out of the sockhash first (a claim then fails over to the engine), then closed. */
static void slot_disarm(struct kh_pools *p, uint32_t s)
{
	struct kh_slot_u *u = &p->slots[s];

	if (u->fd < 0)
		return;
	srv_unpair(p, s);
	bpf_map_delete_elem(p->o.map_up, &s);
	bpf_map_delete_elem(p->o.map_upc, &u->cookie);
	epoll_ctl(p->ep, EPOLL_CTL_DEL, u->fd, NULL);
	close(u->fd);
	u->fd = -1;
}

/*
 * A retiring slot nobody holds: closed, its id free. Written dead first, so
 * a client that still names it claims anew.
 */
static void slot_reap(struct kh_pools *p, uint32_t s)
{
	struct kh_slot_u *u = &p->slots[s];
	struct gammad_kh_slot sv = { .owner = GAMMAD_KH_OWNER_DEAD };

	bpf_map_update_elem(p->o.map_slot, &s, &sv, BPF_ANY);
	slot_disarm(p, s);
	u->retiring = false;
	p->pools[u->pool].retiring--;
	p->free_ids[p->nr_free++] = s;
	p->actions++;
}

static void slot_rearm(struct kh_pools *p, uint32_t s)
{
	int pi = p->slots[s].pool, err;

	if (p->slots[s].retiring) {
		slot_reap(p, s);	/* on its way out anyway */
		return;
	}
	slot_disarm(p, s);
	p->pools[pi].src_len = 0;
	err = slot_arm(p, s, pi, -1);
	if (err)
		pr_warn("kernel HTTP: upstream slot %u not re-armed: %s (the engine serves its "
			"share until the next event)", s, strerror(-err));
	p->actions++;
}

static int pool_write(struct kh_pools *p, int pi)
{
	struct kh_pool_u *pl = &p->pools[pi];

	return bpf_map_update_elem(p->o.map_pool, &pl->key, &pl->val, BPF_ANY) ? -errno : 0;
}

/* One more slot for pool pi, with fd (pool_sockets; taken: closed on failure). */
static int pool_grow(struct kh_pools *p, int pi, int fd)
{
	struct kh_pool_u *pl = &p->pools[pi];
	uint32_t s;
	int err;

	if (pl->val.nr >= GAMMAD_KH_POOL_MAX || (!p->nr_free && p->next_slot >= GAMMAD_KH_SLOTS_MAX)) {
		close(fd);
		return -ENOSPC;
	}
	s = p->nr_free ? p->free_ids[--p->nr_free] : p->next_slot++;
	err = slot_arm(p, s, pi, fd);
	if (err) {
		p->free_ids[p->nr_free++] = s;
		pl->fail_ms = now_ms();
		pl->fails++;
		pl->retry = true;	/* the sweep tries again after RETRY_MS (doubled) */
		return err;
	}
	pl->fails = 0;
	pl->val.slots[pl->val.nr++] = s;
	p->actions++;
	return pool_write(p, pi);
}

static unsigned int pool_free(struct kh_pools *p, int pi)
{
	const struct kh_pool_u *pl = &p->pools[pi];
	struct gammad_kh_slot sv;
	unsigned int n = 0;

	for (uint32_t i = 0; i < pl->val.nr; i++)
		if (!bpf_map_lookup_elem(p->o.map_slot, &pl->val.slots[i], &sv) &&
		    sv.owner == GAMMAD_KH_OWNER_FREE)
			n++;
	return n;
}

/* Pool pi grown by n upstreams, their sockets made together. 0 or the first -errno. */
static int pool_grow_n(struct kh_pools *p, int pi, unsigned int n)
{
	int fds[GAMMAD_KH_POOL_MAX], err = 0, got;

	if (n > GAMMAD_KH_POOL_MAX)
		n = GAMMAD_KH_POOL_MAX;
	got = n ? pool_sockets(&p->pools[pi], fds, (int)n) : 0;
	if (got < 0) {
		/* as a failed connect: the sweep tries again after RETRY_MS */
		p->pools[pi].fail_ms = now_ms();
		p->pools[pi].retry = true;
		return got;
	}
	/* the first that fails stops the rest (an endpoint that refuses refuses them all) */
	for (int j = 0; j < got; j++) {
		if (err)
			close(fds[j]);
		else
			err = pool_grow(p, pi, fds[j]);
	}
	return err;
}

/*
 * Grow pool pi to want free upstreams, not while its endpoint refused
 * lately: RETRY_MS, doubled per failure in a row unless a client asked
 * (a miss or a claim: an endpoint that came up late is used again within
 * a second, as before pools were made ahead).
 */
static void pool_refill(struct kh_pools *p, int pi, bool asked)
{
	struct kh_pool_u *pl = &p->pools[pi];
	unsigned int nfree;
	unsigned int shift = asked ? 0 : pl->fails > RETRY_SHIFT_MAX ? RETRY_SHIFT_MAX :
			     pl->fails ? pl->fails - 1 : 0;

	if (pl->fail_ms && now_ms() - pl->fail_ms < (uint64_t)RETRY_MS << shift) {
		pl->retry = true;
		return;
	}
	pl->retry = false;
	nfree = pool_free(p, pi);
	if (nfree < pl->want)
		pool_grow_n(p, pi, pl->want - nfree);
}

/* A claim took the last free upstreams, or found none: more are wanted. */
static void pool_more(struct kh_pools *p, int pi)
{
	struct kh_pool_u *pl = &p->pools[pi];

	pl->claimed_ms = now_ms();
	/* one that idled down to nothing starts again as a new pool */
	if (pl->want < p->o.per_pool)
		pl->want = pl->want ? pl->want * 2 : p->o.start;
	if (pl->want > p->o.per_pool)
		pl->want = p->o.per_pool;
	pool_refill(p, pi, true);
}

static int pool_find(const struct kh_pools *p, const struct gammad_kh_pool_key *k)
{
	for (size_t i = 0; i < p->nr_pools; i++)
		if (!memcmp(&p->pools[i].key, k, sizeof(*k)))
			return (int)i;
	return -1;
}

/* A claim found no pool for k, or no free upstream in it (GAMMAD_KH_EV_MISS). */
static void on_miss(struct kh_pools *p, const struct gammad_kh_pool_key *k)
{
	struct gammad_kh_pool cur;
	int pi = pool_find(p, k);

	if (pi < 0) {
		if (p->o.miss)
			p->o.miss(p->o.ctx, k);	/* the caller's to make (kh_pools_add) */
		return;
	}
	/*
	 * The claim found no pool: the map must name what this one holds (a
	 * write that failed would leave free upstreams no claim can see, and
	 * every miss of it ignored).
	 */
	if (p->pools[pi].val.nr && bpf_map_lookup_elem(p->o.map_pool, k, &cur) && errno == ENOENT)
		pool_write(p, pi);
	/* one burst of misses grows it once: the first has free ones made */
	if (!pool_free(p, pi))
		pool_more(p, pi);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct kh_pools *p = ctx;
	const struct gammad_kh_event *ev = data;

	if (len >= sizeof(*ev) && ev->kind == GAMMAD_KH_EV_MISS) {
		on_miss(p, &ev->pool);
		return 0;
	}
	if (len < sizeof(*ev) || ev->slot >= GAMMAD_KH_SLOTS_MAX || p->slots[ev->slot].fd < 0)
		return 0;
	if (ev->kind == GAMMAD_KH_EV_DEAD) {
		struct gammad_kh_slot sv;

		/* still dead: a hang-up may have re-armed it since, and it may be claimed */
		if (!bpf_map_lookup_elem(p->o.map_slot, &ev->slot, &sv) &&
		    sv.owner == GAMMAD_KH_OWNER_DEAD)
			slot_rearm(p, ev->slot);
	} else if (ev->kind == GAMMAD_KH_EV_SLOW) {
		struct gammad_kh_slot sv;
		struct kh_slot_u *u = &p->slots[ev->slot];

		/*
		 * Its bytes stay on the upstream for the caller to relay. It stays
		 * in the sockhash (leaving it would drop what its psock holds) and
		 * bound until its client leaves (dead: re-armed as any other); a
		 * hang-up is the caller's to read as EOF.
		 */
		if (bpf_map_lookup_elem(p->o.map_slot, &ev->slot, &sv) || u->relayed ||
		    sv.owner == GAMMAD_KH_OWNER_FREE || sv.owner == GAMMAD_KH_OWNER_DEAD)
			return 0;
		u->relayed = true;
		epoll_ctl(p->ep, EPOLL_CTL_DEL, u->fd, NULL);
		p->actions++;
		if (p->o.slow)
			p->o.slow(p->o.ctx, sv.owner, ev->slot, u->fd);
	} else if (ev->kind == GAMMAD_KH_EV_CUT) {
		struct gammad_kh_slot sv;

		/*
		 * A response head that needed edits could not have them and
		 * nothing more of it reaches the client: reset it (never an
		 * unedited head, never a cut response that looks whole).
		 */
		if (p->slots[ev->slot].relayed || bpf_map_lookup_elem(p->o.map_slot, &ev->slot, &sv) ||
		    !(sv.flags & GAMMAD_KH_SLOT_CUT))
			return 0;
		if (sv.owner != GAMMAD_KH_OWNER_FREE && sv.owner != GAMMAD_KH_OWNER_DEAD && p->o.cut)
			p->o.cut(p->o.ctx, sv.owner);
		slot_rearm(p, ev->slot);
	} else if (ev->kind == GAMMAD_KH_EV_CLAIMED) {
		/* want free again (doubled): a burst of new clients finds upstreams waiting */
		pool_more(p, p->slots[ev->slot].pool);
	}
	return 0;
}

/*
 * Wait until the receive path that brought upstream s's FIN is done with
 * that segment. tcp_data_queue() calls tcp_fin(), whose wake-up is our
 * hang-up, before tcp_data_ready() runs the sk_skb verdict on the bytes of
 * the same segment (a server that writes its answer and closes at once
 * sends them together). Before that verdict the slot's framing is not
 * final (a small close-delimited response may not even be marked CLOSE:
 * taken for a cut one, its client reset) and the socket must stay in the
 * sockhash (leaving it restores sk_data_ready: those bytes would stay on
 * the upstream, the client's response cut short yet ended with a FIN).
 * The softirq (or the process whose release_sock() runs the backlog)
 * holds the socket's lock through the verdict; TCP_INFO takes that lock
 * (lock_sock_fast), so after it every byte before the FIN is framed and
 * queued at the client.
 */
static void fin_settled(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
}

/* The backend closed upstream s: its client may be waiting for the rest. */
static void on_hangup(struct kh_pools *p, uint32_t s)
{
	struct gammad_kh_slot sv;

	if (p->slots[s].relayed)
		return;	/* the caller reads its EOF */
	fin_settled(p->slots[s].fd);
	srv_unpair(p, s);	/* a half-closed server socket takes no more requests */
	bpf_map_delete_elem(p->o.map_up, &s);
	if (!bpf_map_lookup_elem(p->o.map_slot, &s, &sv) && sv.owner != GAMMAD_KH_OWNER_FREE &&
	    sv.owner != GAMMAD_KH_OWNER_DEAD && (sv.flags & GAMMAD_KH_SLOT_CLOSE)) {
		/* its response ran to this close: it is whole, the client's side ends too */
		if (p->o.eof)
			p->o.eof(p->o.ctx, sv.owner);
	} else if (!bpf_map_lookup_elem(p->o.map_slot, &s, &sv) && sv.owner != GAMMAD_KH_OWNER_FREE &&
		   sv.owner != GAMMAD_KH_OWNER_DEAD) {
		bool between = sv.req_seq == sv.r.resp_seq && sv.r.state == GAMMAD_KH_RS_STATUS &&
			       !sv.r.k && !(sv.flags & GAMMAD_KH_SLOT_UNFRAMED);

		/* between responses: a quiet detach, the next request claims anew */
		if (!between && p->o.cut)
			p->o.cut(p->o.ctx, sv.owner);
	}
	slot_rearm(p, s);
}

/*
 * Pool pi at a sweep: what its slots did since the last one (a change of
 * owner or request count is use; a new owner, or a free slot that served
 * requests, a new claim), want halved after idle_ms without a new claim (0
 * when nothing is in use either), and free upstreams beyond want that
 * nobody used for idle_ms out of the list, the last ones first (claims
 * take the lowest free one). They are closed at the next sweep.
 */
static void pool_shrink(struct kh_pools *p, int pi, uint64_t now)
{
	struct kh_pool_u *pl = &p->pools[pi];
	struct gammad_kh_slot sv;
	bool idle[GAMMAD_KH_POOL_MAX] = { false }, out[GAMMAD_KH_POOL_MAX] = { false };
	struct gammad_kh_pool nv = { 0 };
	unsigned int nfree = 0, busy = 0, excess;
	uint32_t nr = pl->val.nr;

	for (uint32_t i = 0; i < nr; i++) {
		struct kh_slot_u *u = &p->slots[pl->val.slots[i]];

		if (bpf_map_lookup_elem(p->o.map_slot, &pl->val.slots[i], &sv)) {
			busy++;
			continue;
		}
		if (sv.owner != u->seen_owner || sv.req_seq != u->seen_seq) {
			if ((sv.owner != u->seen_owner && sv.owner != GAMMAD_KH_OWNER_FREE &&
			     sv.owner != GAMMAD_KH_OWNER_DEAD) ||
			    (sv.owner == GAMMAD_KH_OWNER_FREE && sv.req_seq != u->seen_seq))
				pl->claimed_ms = now;
			u->used_ms = now;
			u->seen_owner = sv.owner;
			u->seen_seq = sv.req_seq;
		}
		if (sv.owner == GAMMAD_KH_OWNER_DEAD) {
			slot_rearm(p, pl->val.slots[i]);	/* its event was lost (a full ring) */
			busy++;
			continue;
		}
		if (sv.owner != GAMMAD_KH_OWNER_FREE) {
			busy++;
			continue;
		}
		nfree++;
		idle[i] = now - u->used_ms >= p->o.idle_ms;
	}
	if (now - pl->claimed_ms >= p->o.idle_ms && now - pl->decay_ms >= p->o.idle_ms) {
		pl->want = busy ? pl->want / 2 : 0;
		if (pl->ahead && pl->want < AHEAD_FLOOR)
			pl->want = AHEAD_FLOOR;
		pl->decay_ms = now;
	}
	excess = nfree > pl->want ? nfree - pl->want : 0;
	for (uint32_t i = nr; i-- > 0 && excess;)
		if (idle[i]) {
			out[i] = true;
			excess--;
		}
	for (uint32_t i = 0; i < nr; i++)
		if (!out[i])
			nv.slots[nv.nr++] = pl->val.slots[i];
	if (nv.nr == nr)
		return;
	/* no claim finds them from here on */
	if (nv.nr ? bpf_map_update_elem(p->o.map_pool, &pl->key, &nv, BPF_ANY) :
		    bpf_map_delete_elem(p->o.map_pool, &pl->key) && errno != ENOENT)
		return;
	for (uint32_t i = 0; i < nr; i++)
		if (out[i]) {
			p->slots[pl->val.slots[i]].retiring = true;
			pl->retiring++;
		}
	pl->val = nv;
	p->actions++;
}

/* Pool pi goes (no slot of it armed any more). */
static void pool_remove(struct kh_pools *p, size_t pi)
{
	size_t last = p->nr_pools - 1;

	bpf_map_delete_elem(p->o.map_pool, &p->pools[pi].key);	/* ENOENT: gone already */
	if (p->pools[pi].netns_fd >= 0)
		close(p->pools[pi].netns_fd);
	if (pi != last) {
		p->pools[pi] = p->pools[last];
		/* every slot, armed or not: one whose re-arm failed is still in its list */
		for (uint32_t s = 0; s < p->next_slot; s++)
			if (p->slots[s].pool == (int)last)
				p->slots[s].pool = (int)pi;
	}
	p->nr_pools--;
	p->actions++;
}

static void pools_sweep(struct kh_pools *p)
{
	uint64_t now = now_ms();
	struct gammad_kh_slot sv;

	/*
	 * Taken out of their list at an earlier sweep: a claim that read the
	 * old list ended long since; one that took the slot holds it until
	 * its client lets go (free, or dead: its event reaps it at once).
	 */
	for (uint32_t s = 0; s < p->next_slot; s++)
		if (p->slots[s].fd >= 0 && p->slots[s].retiring &&
		    (bpf_map_lookup_elem(p->o.map_slot, &s, &sv) ||
		     sv.owner == GAMMAD_KH_OWNER_FREE || sv.owner == GAMMAD_KH_OWNER_DEAD))
			slot_reap(p, s);
	for (size_t pi = 0; pi < p->nr_pools; pi++) {
		/* a refill that failed, or a miss refused meanwhile (fail_ms): tried again */
		if (p->pools[pi].retry)
			pool_refill(p, (int)pi, false);
		pool_shrink(p, (int)pi, now);
	}
	/* no upstream left and no claim for idle_ms: the next miss makes it again */
	for (size_t pi = p->nr_pools; pi-- > 0;)
		if (!p->pools[pi].val.nr && !p->pools[pi].retiring && !p->pools[pi].ahead &&
		    now - p->pools[pi].claimed_ms >= p->o.idle_ms)
			pool_remove(p, pi);
}

/*
 * Pools an earlier agent left in the pinned map name slots whose sockets
 * went with it and whose ids this one arms for other pools: gone before
 * the first pool is written.
 */
static void pools_flush(struct kh_pools *p)
{
	struct gammad_kh_pool_key k;

	while (!bpf_map_get_next_key(p->o.map_pool, NULL, &k))
		if (bpf_map_delete_elem(p->o.map_pool, &k))
			break;
}

struct kh_pools *kh_pools_new(const struct kh_pool_opts *o)
{
	struct kh_pools *p = calloc(1, sizeof(*p));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = RB_TAG };

	if (!p)
		return NULL;
	p->o = *o;
	p->tfd = -1;
	if (!p->o.per_pool || p->o.per_pool > GAMMAD_KH_POOL_MAX)
		p->o.per_pool = 2;
	if (!p->o.start || p->o.start > p->o.per_pool)
		p->o.start = p->o.per_pool;
	p->slots = calloc(GAMMAD_KH_SLOTS_MAX, sizeof(*p->slots));
	p->free_ids = calloc(GAMMAD_KH_SLOTS_MAX, sizeof(*p->free_ids));
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!p->slots || !p->free_ids || p->ep < 0)
		goto fail;
	for (uint32_t s = 0; s < GAMMAD_KH_SLOTS_MAX; s++)
		p->slots[s].fd = -1;
	if (!p->o.adopt)
		pools_flush(p);
	p->rb = ring_buffer__new(o->map_events, on_event, p, NULL);
	if (!p->rb || epoll_ctl(p->ep, EPOLL_CTL_ADD, ring_buffer__epoll_fd(p->rb), &ev))
		goto fail;
	if (p->o.idle_ms) {
		/* a sweep every quarter of the idle time (20 ms .. 1 s) */
		unsigned int ms = p->o.idle_ms / 4 < 20 ? 20 : p->o.idle_ms / 4 > 1000 ? 1000 :
			p->o.idle_ms / 4;
		struct itimerspec it = { .it_interval = { ms / 1000, ms % 1000 * 1000000L } };
		struct epoll_event tev = { .events = EPOLLIN, .data.u64 = TIMER_TAG };

		it.it_value = it.it_interval;
		p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (p->tfd < 0 || timerfd_settime(p->tfd, 0, &it, NULL) ||
		    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &tev))
			goto fail;
	}
	return p;
fail:
	kh_pools_free(p);
	return NULL;
}

void kh_pools_free(struct kh_pools *p)
{
	if (!p)
		return;
	for (uint32_t s = 0; p->slots && s < p->next_slot; s++)
		slot_disarm(p, s);
	for (size_t i = 0; i < p->nr_pools; i++) {
		bpf_map_delete_elem(p->o.map_pool, &p->pools[i].key);
		if (p->pools[i].netns_fd >= 0)
			close(p->pools[i].netns_fd);
	}
	ring_buffer__free(p->rb);
	if (p->ep >= 0)
		close(p->ep);
	if (p->tfd >= 0)
		close(p->tfd);
	free(p->pools);
	free(p->slots);
	free(p->free_ids);
	free(p);
}

/*
 * A pool of ep from netns_fd, without slots yet, as the last of p->pools
 * (*pi); -EEXIST: kept already. sock: a socket made in netns_fd, for its
 * netns cookie (-1: one is made here).
 */
static int kh_pools_add_empty(struct kh_pools *p, int netns_fd, const struct sockaddr *ep,
			      socklen_t len, int sock, int *pi)
{
	struct kh_pool_u *pl;
	uint64_t cookie = 0;
	int fd, err;

	if (len > sizeof(pl->ep) || (ep->sa_family != AF_INET && ep->sa_family != AF_INET6))
		return -EINVAL;
	if (p->nr_pools == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct kh_pool_u *np = realloc(p->pools, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		p->pools = np;
		p->cap = cap;
	}
	*pi = (int)p->nr_pools;
	pl = &p->pools[*pi];
	memset(pl, 0, sizeof(*pl));
	memcpy(&pl->ep, ep, len);
	pl->len = len;
	pl->netns_fd = netns_fd >= 0 ? dup(netns_fd) : -1;
	if (netns_fd >= 0 && pl->netns_fd < 0)
		return -errno;
	/* the pool's key: the netns cookie BPF sees for the client's sockets */
	fd = sock >= 0 ? sock : pool_socket(pl, SOCK_DGRAM);
	err = fd < 0 ? fd : sock_netns_cookie(fd, &cookie);
	if (fd >= 0 && fd != sock)
		close(fd);
	if (err)
		goto fail;
	pl->key.netns_cookie = cookie;
	pl->key.family = ep->sa_family;
	if (ep->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ep;

		memcpy(pl->key.addr, &a->sin_addr, 4);
		pl->key.port = a->sin_port;
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ep;

		memcpy(pl->key.addr, &a->sin6_addr, 16);
		pl->key.port = a->sin6_port;
	}
	for (size_t i = 0; i < p->nr_pools; i++)
		if (!memcmp(&p->pools[i].key, &pl->key, sizeof(pl->key))) {
			err = -EEXIST;
			goto fail;
		}
	pl->want = p->o.start;
	pl->claimed_ms = pl->decay_ms = now_ms();
	p->nr_pools++;
	return 0;
fail:
	if (pl->netns_fd >= 0)
		close(pl->netns_fd);
	return err;
}

/* Undo kh_pools_add_empty (no slot armed yet). */
static void pool_drop_last(struct kh_pools *p)
{
	struct kh_pool_u *pl = &p->pools[--p->nr_pools];

	if (pl->netns_fd >= 0)
		close(pl->netns_fd);
}

int kh_pools_add(struct kh_pools *p, int netns_fd, const struct sockaddr *ep, socklen_t len)
{
	int fds[GAMMAD_KH_POOL_MAX], n = (int)p->o.start, err, pi;

	if (ep->sa_family != AF_INET && ep->sa_family != AF_INET6)
		return -EINVAL;
	/* its start upstreams' sockets, the first one naming the netns cookie too */
	n = ns_sockets(netns_fd, ep->sa_family, fds, n);
	if (n < 0)
		return n;
	err = kh_pools_add_empty(p, netns_fd, ep, len, fds[0], &pi);
	/* kept (no upstream) when a connect fails: a miss or the sweep tries again */
	for (int i = 0; i < n; i++) {
		if (err)
			close(fds[i]);
		else
			err = pool_grow(p, pi, fds[i]);
	}
	return err == -EEXIST ? 0 : err;	/* -EEXIST: kept already */
}

/* The pool key of ep from the netns with cookie netns_cookie. */
static int pool_key(struct gammad_kh_pool_key *k, uint64_t netns_cookie, const struct sockaddr *ep)
{
	memset(k, 0, sizeof(*k));
	k->netns_cookie = netns_cookie;
	k->family = ep->sa_family;
	if (ep->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ep;

		memcpy(k->addr, &a->sin_addr, 4);
		k->port = a->sin_port;
	} else if (ep->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ep;

		memcpy(k->addr, &a->sin6_addr, 16);
		k->port = a->sin6_port;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Pool pi goes now: out of the map first (no new claim), then every upstream of it. */
static void pool_del_at(struct kh_pools *p, size_t pi)
{
	struct kh_pool_u *pl = &p->pools[pi];

	bpf_map_delete_elem(p->o.map_pool, &pl->key);
	for (uint32_t s = 0; s < p->next_slot; s++) {
		struct gammad_kh_slot sv;

		if (p->slots[s].fd < 0 || p->slots[s].pool != (int)pi)
			continue;
		if (!bpf_map_lookup_elem(p->o.map_slot, &s, &sv) && sv.owner != GAMMAD_KH_OWNER_FREE &&
		    sv.owner != GAMMAD_KH_OWNER_DEAD && sv.req_seq != sv.r.resp_seq && p->o.cut)
			p->o.cut(p->o.ctx, sv.owner);
		/* dead to a client still bound to it: its next request claims anew */
		sv = (struct gammad_kh_slot){ .owner = GAMMAD_KH_OWNER_DEAD };
		bpf_map_update_elem(p->o.map_slot, &s, &sv, BPF_ANY);
		slot_disarm(p, s);
		p->slots[s].retiring = false;
		p->free_ids[p->nr_free++] = s;
	}
	pl->val.nr = 0;
	pl->retiring = 0;
	pool_remove(p, pi);
}

int kh_pools_del(struct kh_pools *p, uint64_t netns_cookie, const struct sockaddr *ep,
		 socklen_t len)
{
	struct gammad_kh_pool_key k;
	size_t pi;

	if (len < sizeof(struct sockaddr_in) || pool_key(&k, netns_cookie, ep))
		return -EINVAL;
	for (pi = 0; pi < p->nr_pools; pi++)
		if (!memcmp(&p->pools[pi].key, &k, sizeof(k)))
			break;
	if (pi == p->nr_pools)
		return -ENOENT;
	pool_del_at(p, pi);
	return 0;
}

void kh_pools_ahead_begin(struct kh_pools *p)
{
	for (size_t pi = 0; pi < p->nr_pools; pi++)
		p->pools[pi].ahead = false;
}

int kh_pools_ahead(struct kh_pools *p, int netns_fd, uint64_t netns_cookie,
		   const struct sockaddr *ep, socklen_t len)
{
	struct gammad_kh_pool_key k;
	struct kh_pool_u *pl;
	int err = 0, pi;

	if (len < sizeof(struct sockaddr_in) || pool_key(&k, netns_cookie, ep))
		return -EINVAL;
	pi = pool_find(p, &k);
	if (pi < 0) {
		/* kept when a connect failed: the sweep tries again (an endpoint not up yet) */
		err = kh_pools_add(p, netns_fd, ep, len);
		pi = pool_find(p, &k);
		if (pi < 0)
			return err ? err : -ENOENT;
	}
	pl = &p->pools[pi];
	pl->ahead = true;
	/* one that idled down to nothing (on demand until now): its floor again */
	if (pl->want < AHEAD_FLOOR) {
		pl->want = AHEAD_FLOOR;
		pool_refill(p, pi, false);
	}
	return 0;
}

size_t kh_pools_prune(struct kh_pools *p, bool (*keep)(void *ctx, const struct gammad_kh_pool_key *k),
		      void *ctx)
{
	size_t n = 0;

	for (size_t pi = p->nr_pools; pi-- > 0;)
		if (!keep(ctx, &p->pools[pi].key)) {
			pool_del_at(p, pi);
			n++;
		}
	return n;
}

socklen_t kh_pool_key_addr(const struct gammad_kh_pool_key *k, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (k->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = k->port;
		memcpy(&a->sin_addr, k->addr, 4);
		return sizeof(*a);
	}
	if (k->family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = k->port;
		memcpy(&a->sin6_addr, k->addr, 16);
		return sizeof(*a);
	}
	return 0;
}

size_t kh_pools_upstreams(const struct kh_pools *p)
{
	size_t n = 0;

	for (uint32_t s = 0; s < p->next_slot; s++)
		n += p->slots[s].fd >= 0;
	return n;
}

size_t kh_pools_count(const struct kh_pools *p)
{
	return p->nr_pools;
}

int kh_pools_fd(const struct kh_pools *p)
{
	return p->ep;
}

int kh_pools_run(struct kh_pools *p)
{
	struct epoll_event evs[64];
	int n;

	p->actions = 0;
	n = epoll_wait(p->ep, evs, 64, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == RB_TAG) {
			ring_buffer__consume(p->rb);
		} else if (evs[i].data.u64 == TIMER_TAG) {
			uint64_t ticks;

			if (read(p->tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				pools_sweep(p);
		}
		else if (evs[i].data.u64 < GAMMAD_KH_SLOTS_MAX &&
			 p->slots[evs[i].data.u64].fd >= 0)
			on_hangup(p, (uint32_t)evs[i].data.u64);
	}
	return p->actions;
}

int kh_pools_slot_fd(const struct kh_pools *p, uint32_t slot)
{
	return slot < GAMMAD_KH_SLOTS_MAX ? p->slots[slot].fd : -1;
}

uint64_t kh_pools_slot_srv(const struct kh_pools *p, uint32_t slot)
{
	return slot < GAMMAD_KH_SLOTS_MAX && p->slots[slot].fd >= 0 ? p->slots[slot].srv : 0;
}

/* ---- restarts: the pools go to a successor agent (khttp_pool.h) ---------- */

int kh_pools_each_slot(const struct kh_pools *p, int (*fn)(void *ctx, uint32_t slot, int fd),
		       void *ctx)
{
	for (uint32_t s = 0; s < p->next_slot; s++) {
		int err;

		/* a relayed one is the caller's (its client lags): not handed over */
		if (p->slots[s].fd < 0 || p->slots[s].relayed)
			continue;
		err = fn(ctx, s, p->slots[s].fd);
		if (err)
			return err;
	}
	return 0;
}

void kh_pools_release(struct kh_pools *p)
{
	if (!p)
		return;
	/* our copies only: the successor holds the same sockets, the maps are its */
	for (uint32_t s = 0; s < p->next_slot; s++)
		if (p->slots[s].fd >= 0)
			close(p->slots[s].fd);
	for (size_t i = 0; i < p->nr_pools; i++)
		if (p->pools[i].netns_fd >= 0)
			close(p->pools[i].netns_fd);
	p->next_slot = 0;
	p->nr_pools = 0;
	kh_pools_free(p);
}

/* Slot s of pool pi with the predecessor's socket fd (ours now): as it was. */
static int slot_take(struct kh_pools *p, uint32_t s, int pi, int fd)
{
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLHUP, .data.u64 = s };
	socklen_t clen = sizeof(uint64_t);
	uint64_t cookie = 0, srv = 0;
	uint32_t at;

	/* the socket the kernel has for this slot, no other */
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen))
		return -errno;
	if (bpf_map_lookup_elem(p->o.map_upc, &cookie, &at) || at != s)
		return -ESTALE;
	if (p->o.map_svs > 0 && bpf_map_lookup_elem(p->o.map_svs, &s, &srv))
		srv = 0;
	/* a hang-up while nobody watched is reported at once */
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	p->slots[s] = (struct kh_slot_u){ .fd = fd, .pool = pi, .cookie = cookie, .srv = srv,
					  .seen_owner = GAMMAD_KH_OWNER_FREE, .used_ms = now_ms() };
	return 0;
}

/*
 * Slot s of pool pi came without its socket: as after the backend's
 * hang-up, a client between responses claims anew, one in the middle of a
 * response is cut; armed again.
 */
static void slot_lost(struct kh_pools *p, uint32_t s, int pi)
{
	struct gammad_kh_slot sv;

	if (!bpf_map_lookup_elem(p->o.map_slot, &s, &sv) && sv.owner != GAMMAD_KH_OWNER_FREE &&
	    sv.owner != GAMMAD_KH_OWNER_DEAD && sv.req_seq != sv.r.resp_seq && p->o.cut)
		p->o.cut(p->o.ctx, sv.owner);
	sv = (struct gammad_kh_slot){ .owner = GAMMAD_KH_OWNER_DEAD };
	bpf_map_update_elem(p->o.map_slot, &s, &sv, BPF_ANY);
	p->slots[s] = (struct kh_slot_u){ .fd = -1, .pool = pi };
	slot_rearm(p, s);
}

int kh_pools_adopt(struct kh_pools *p, int netns_fd, const struct sockaddr *ep, socklen_t len,
		   int *fds)
{
	struct kh_pool_u *pl;
	uint32_t j = 0;
	int err, pi;

	err = kh_pools_add_empty(p, netns_fd, ep, len, -1, &pi);
	if (err)
		return err;
	pl = &p->pools[pi];
	if (bpf_map_lookup_elem(p->o.map_pool, &pl->key, &pl->val)) {
		err = -errno;
		pool_drop_last(p);
		return err;
	}
	for (uint32_t i = 0; i < pl->val.nr && i < GAMMAD_KH_POOL_MAX; i++) {
		uint32_t s = pl->val.slots[i];
		int fd;

		if (s >= GAMMAD_KH_SLOTS_MAX || p->slots[s].fd >= 0)
			continue;	/* not a slot of ours to take */
		pl->val.slots[j++] = s;
		if (s >= p->next_slot)
			p->next_slot = s + 1;
		fd = fds[s];
		fds[s] = -1;
		err = fd >= 0 ? slot_take(p, s, pi, fd) : -ENOENT;
		if (!err)
			continue;
		if (fd >= 0)
			close(fd);
		slot_lost(p, s, pi);
	}
	pl->val.nr = j;
	return pool_write(p, pi);
}

void kh_pools_adopt_done(struct kh_pools *p, int *fds)
{
	struct gammad_kh_pool_key k, next;
	bool *used = calloc(GAMMAD_KH_SLOTS_MAX, sizeof(*used));
	struct gammad_kh_pool v;
	void *kp = NULL;

	if (!used)
		return;
	for (size_t i = 0; i < p->nr_pools; i++)
		for (uint32_t j = 0; j < p->pools[i].val.nr; j++)
			used[p->pools[i].val.slots[j]] = true;
	/* pinned pools nobody adopted (their netns went): gone, their slots dead */
	while (!bpf_map_get_next_key(p->o.map_pool, kp, &next)) {
		bool ours = false;

		k = next;
		kp = &k;
		for (size_t i = 0; i < p->nr_pools && !ours; i++)
			ours = !memcmp(&p->pools[i].key, &k, sizeof(k));
		if (ours || bpf_map_lookup_elem(p->o.map_pool, &k, &v))
			continue;
		for (uint32_t j = 0; j < v.nr && j < GAMMAD_KH_POOL_MAX; j++) {
			struct gammad_kh_slot dead = { .owner = GAMMAD_KH_OWNER_DEAD };
			uint32_t s = v.slots[j];

			if (s >= GAMMAD_KH_SLOTS_MAX || used[s])
				continue;
			bpf_map_update_elem(p->o.map_slot, &s, &dead, BPF_ANY);
			bpf_map_delete_elem(p->o.map_up, &s);
		}
		if (!bpf_map_delete_elem(p->o.map_pool, &k))
			kp = NULL;	/* deleted: from the start again */
	}
	/* sockets of no adopted pool: their cookies leave the map, they close */
	for (uint32_t s = 0; s < GAMMAD_KH_SLOTS_MAX; s++) {
		socklen_t clen = sizeof(uint64_t);
		uint64_t cookie;

		if (fds[s] < 0)
			continue;
		if (!getsockopt(fds[s], SOL_SOCKET, SO_COOKIE, &cookie, &clen))
			bpf_map_delete_elem(p->o.map_upc, &cookie);
		close(fds[s]);
		fds[s] = -1;
	}
	for (uint32_t s = p->next_slot; s-- > 0;)
		if (!used[s])
			p->free_ids[p->nr_free++] = s;
	free(used);
}
