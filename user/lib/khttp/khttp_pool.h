/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upstream pools of the kernel HTTP data path, the agent's side
 * (bpf/lib/khttp_path.h does the BPF side): per (client netns, endpoint)
 * upstream sockets connected ahead of time from inside the client pod's
 * netns (the backend sees the pod's address), each one a slot of
 * gammad_khslot_v1 with its socket in gammad_khup_v1, so the client's
 * sk_msg program can claim one per request. Made ahead (kh_pools_ahead)
 * or on demand (idle_ms > 0):
 *  - a claim that finds no pool, or no free slot in one that can grow
 *    (GAMMAD_KH_EV_MISS), makes the pool (the miss callback: the caller
 *    decides and calls kh_pools_add with start free upstreams) or grows
 *    it; that request is the engine's;
 *  - a pool keeps "want" free upstreams: doubled (up to per_pool) by a
 *    miss or a claim under the mark, halved after idle_ms without a new
 *    claim, 0 when none of its upstreams is in use either;
 *  - free upstreams beyond want that nobody used for idle_ms are closed:
 *    out of the pool's list first, closed at the next sweep (a claim that
 *    read the old list has ended by then; one that took the slot keeps it
 *    until its client lets go); a pool left with no upstream is removed.
 * Kept whole from the ring buffer gammad_khev_v1 and the sockets' own hang-ups:
 *  - a slot given up dead (its client left mid-response) is closed and
 *    armed again in place, never left for BPF to skip over;
 *  - a claim that leaves the pool with fewer than GAMMAD_KH_POOL_LOW free
 *    slots (the BPF side tells only then, not on every claim) refills it
 *    to per_pool free (up to GAMMAD_KH_POOL_MAX slots);
 *  - an upstream the backend closed is taken out of the sockhash first (a
 *    claim then fails over to the engine instead of writing into a closed
 *    connection; only once the segment that brought the FIN has been
 *    through the sk_skb verdict, whose run the hang-up's wake-up precedes)
 *    and armed again; if its client was waiting for a response
 *    the cut callback names that client, whose connection the caller resets;
 *    if that response was close-delimited (GAMMAD_KH_SLOT_CLOSE) it is whole:
 *    the eof callback names the client, whose side the caller shuts down
 *    for writing (a FIN, as the engine closes after such a response) once
 *    what the kernel redirected to it has left its sockmap ingress queue;
 *  - a slot whose client lags beyond the in-flight cap (GAMMAD_KH_EV_SLOW)
 *    is the caller's to relay: the slow callback gives its socket (still
 *    in the sockhash, its bytes kept there by the sk_skb program, where
 *    TCP's window holds the backend); the caller reads it and writes to
 *    the client over TCP once the client's ingress queue is empty. It is
 *    re-armed when its client leaves.
 * Connects are blocking (loopback and pod networks answer at once; 1 s at
 * most, and a pool whose endpoint failed is tried again after 1 s: by the
 * sweep doubled per failure in a row, up to 64 s); the sockets of a batch of upstreams
 * are made in the pool's netns with one thread hop (netns_sockets). One
 * thread owns a kh_pools.
 */
#ifndef GAMMAD_KHTTP_POOL_H
#define GAMMAD_KHTTP_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct gammad_kh_pool_key;

struct kh_pools;

struct kh_pool_opts {
	int map_up, map_upc, map_slot, map_pool, map_events;	/* fds of the maps */
	/*
	 * > 0: the same-node sockhash (gammad_sockh_v1). An upstream between
	 * two local pods lands there at connect (sockops); it is taken out
	 * again, or the backend's sk_msg would put its responses straight
	 * into the upstream's ingress, past the sk_skb verdict.
	 */
	int map_sockh;
	/*
	 * Same-node server sockets (gammad run --kernel-http --sockmap): > 0,
	 * the maps gammad_khsvk_v1 and gammad_khsvs_v1 (map_svs alone: every
	 * slot is written unpaired, so no pairing of an earlier run stays).
	 * An upstream to an
	 * endpoint of this node (map_lep > 0: in gammad_lep_v1; <= 0: any) is
	 * bound before connect() and its tuple recorded, so the kernel finds
	 * the backend's accepted socket (PASSIVE_ESTABLISHED); once it has,
	 * the slot is published with that pairing (requests into the server
	 * socket's ingress, responses from its sk_msg program). Not paired
	 * (not local, or not seen within a few ms): the slot uses TCP as
	 * without these maps.
	 */
	int map_svk, map_svs, map_lep;
	unsigned int per_pool;		/* free upstreams to keep per pool (<= 16) */
	/*
	 * A successor agent's start (user/gammad/handover.c): the pools an
	 * earlier agent left in gammad_khpool_v1 stay for kh_pools_adopt()
	 * instead of being flushed.
	 */
	bool adopt;
	unsigned int start;		/* free upstreams of a new pool (0: per_pool) */
	/*
	 * > 0: pools on demand (above): free upstreams unused that long are
	 * closed, pools with none left removed. 0: pools stay as added.
	 */
	unsigned int idle_ms;
	/*
	 * A claim found no pool for k: the caller may kh_pools_add it (from
	 * inside this callback too). NULL: misses are ignored.
	 */
	void (*miss)(void *ctx, const struct gammad_kh_pool_key *k);
	/* A client whose upstream died in the middle of a response (its cookie). */
	void (*cut)(void *ctx, uint64_t client_cookie);
	/* A client whose close-delimited response just ended with its upstream's close. */
	void (*eof)(void *ctx, uint64_t client_cookie);
	/* A client that lags: upstream_fd (the pools' own, open until re-armed) is to relay. */
	void (*slow)(void *ctx, uint64_t client_cookie, uint32_t slot, int upstream_fd);
	void *ctx;
};

struct kh_pools *kh_pools_new(const struct kh_pool_opts *o);
void kh_pools_free(struct kh_pools *p);
/*
 * Keep per_pool upstreams to ep (an IPv4 or IPv6 address and port),
 * created inside netns_fd (-1: the caller's netns). 0 or -errno.
 */
int kh_pools_add(struct kh_pools *p, int netns_fd, const struct sockaddr *ep, socklen_t len);
/*
 * Stop keeping upstreams to ep from the netns with cookie netns_cookie:
 * the pool goes from the map first (no new claim), then its upstreams
 * are closed (a client in the middle of a response on one is named to
 * the cut callback). 0, or -ENOENT when no such pool.
 */
int kh_pools_del(struct kh_pools *p, uint64_t netns_cookie, const struct sockaddr *ep,
		 socklen_t len);
/*
 * Pools made ahead of the first request (the caller decides which, e.g.
 * while few): kh_pools_ahead_begin() unmarks every pool (from then on it
 * idles out as one made on demand), kh_pools_ahead() marks the pool of ep
 * from the netns with cookie netns_cookie (netns_fd), made now with start
 * free upstreams when there is none. A marked pool idles down to one free
 * upstream (idle_ms) but is never removed, so a first request after an
 * idle time finds it. 0 (kept and marked; an upstream that failed to
 * connect is tried again by the sweep), or -errno: no such pool.
 */
void kh_pools_ahead_begin(struct kh_pools *p);
int kh_pools_ahead(struct kh_pools *p, int netns_fd, uint64_t netns_cookie,
		   const struct sockaddr *ep, socklen_t len);
/*
 * Remove every pool keep() says no to (as kh_pools_del); the number removed.
 */
size_t kh_pools_prune(struct kh_pools *p, bool (*keep)(void *ctx, const struct gammad_kh_pool_key *k),
		      void *ctx);
/* The endpoint of a pool key as a socket address: its length, or 0. */
socklen_t kh_pool_key_addr(const struct gammad_kh_pool_key *k, struct sockaddr_storage *ss);
/* Pools kept now. */
size_t kh_pools_count(const struct kh_pools *p);
/* Upstream sockets held now (every armed slot, those being closed too). */
size_t kh_pools_upstreams(const struct kh_pools *p);
/* An fd that polls readable when kh_pools_run has work. */
int kh_pools_fd(const struct kh_pools *p);
/* Do that work, without blocking: actions taken, or -errno. */
int kh_pools_run(struct kh_pools *p);
/* The upstream socket of a slot (-1: none), for tests and the view. */
int kh_pools_slot_fd(const struct kh_pools *p, uint32_t slot);
/* The cookie of a slot's same-node server socket (0: not paired), for tests and the view. */
uint64_t kh_pools_slot_srv(const struct kh_pools *p, uint32_t slot);

/*
 * Restarts (user/gammad/handover.c). The running agent: fn(ctx, slot, fd)
 * for every armed slot but a relayed one (stops at fn's first error), then,
 * once the successor took over, kh_pools_release(): its copies of the
 * sockets closed, every map left as it is (they are the successor's).
 */
int kh_pools_each_slot(const struct kh_pools *p, int (*fn)(void *ctx, uint32_t slot, int fd),
		       void *ctx);
void kh_pools_release(struct kh_pools *p);
/*
 * The successor (kh_pool_opts.adopt): the pool of ep from netns_fd as the
 * pinned maps have it, its slots with the predecessor's sockets fds[slot]
 * (GAMMAD_KH_SLOTS_MAX of them, -1: none; taken ones set to -1). A slot
 * keeps its id, owner and response state, so a client in the middle of a
 * response keeps getting it; one whose socket did not come (or is not the
 * one the kernel has for it) is armed anew, its client in the middle of a
 * response cut. 0, or -errno (-ENOENT: no such pinned pool).
 */
int kh_pools_adopt(struct kh_pools *p, int netns_fd, const struct sockaddr *ep, socklen_t len,
		   int *fds);
/*
 * After the last kh_pools_adopt(): pinned pools not adopted go (their
 * slots dead), the sockets left in fds are closed, free slot ids reused.
 */
void kh_pools_adopt_done(struct kh_pools *p, int *fds);

#endif
