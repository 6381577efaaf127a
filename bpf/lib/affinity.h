/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session affinity (Service sessionAffinity: ClientIP): a client keeps the
 * endpoint it got while it connects again within the backend's timeout,
 * as kube-proxy does (every connection restarts the timer). Keyed by the
 * backend (a Service port and family) and the client (lib/lb.h says who
 * that is on each path), so a route's backendRef Service keeps its own
 * affinity, and the connect-time and TC paths share one table.
 *
 * A remembered endpoint is used only if it is still in the backend's
 * current endpoint set: at its old index when the set did not move it,
 * else found by binary search (sets are sorted, gammad/maps.h). An
 * endpoint that is gone is never chosen; the client then picks afresh.
 */
#ifndef GAMMAD_BPF_AFFINITY_H
#define GAMMAD_BPF_AFFINITY_H

#include "lib/addr.h"
#include "lib/maps.h"

#define AFF_NSEC_PER_SEC	1000000000ULL
/* Binary search steps: enough for any __u32 number of endpoints. */
#define AFF_SEARCH_STEPS	32

static __always_inline bool aff_ep_eq(const struct gammad_ep_val *a, const struct gammad_ep_val *b)
{
	return addr_eq(a->addr, b->addr) && a->port == b->port && a->family == b->family;
}

/* <0, 0, >0 as the translator orders endpoints: family, address bytes, port. */
static __always_inline int aff_ep_cmp(const struct gammad_ep_val *a, const struct gammad_ep_val *b)
{
	const __u32 *x = (const __u32 *)a->addr, *y = (const __u32 *)b->addr;
	__u32 u, v;
	int i;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
#pragma unroll
	for (i = 0; i < 4; i++) {
		u = bpf_ntohl(x[i]);
		v = bpf_ntohl(y[i]);
		if (u != v)
			return u < v ? -1 : 1;
	}
	u = bpf_ntohs(a->port);
	v = bpf_ntohs(b->port);
	return u == v ? 0 : u < v ? -1 : 1;
}

struct aff_search {
	struct gammad_ep_val want;
	__u32 ep_set;
	__u32 lo, hi;		/* the half-open range still to search */
	__u32 found;		/* index + 1, 0: not (yet) found */
};

/*
 * The work area of one affinity decision. The connect-time hooks keep it
 * on their stack; the TC programs, whose frame is near the 512-byte limit,
 * in a per-CPU scratch entry (a TC program never runs nested on its CPU).
 * The hook fills key.kind and key.client.
 */
struct lb_aff {
	struct gammad_aff_key key;
	struct gammad_aff_val val;
	struct aff_search s;
};

/*
 * One bisection step (bpf_loop callback: verified once, whatever the set
 * size). ctx holds a pointer to the search state, wherever it lives.
 */
static long aff_search_step(__u64 i, void *ctx)
{
	struct aff_search *s = *(struct aff_search **)ctx;
	struct gammad_ep_key ek = { .ep_set = s->ep_set };
	struct gammad_ep_val *ev;
	int c;

	if (s->lo >= s->hi)
		return 1;
	ek.idx = s->lo + (s->hi - s->lo) / 2;
	ev = bpf_map_lookup_elem(&gammad_ep_v1, &ek);
	if (!ev)
		return 1;
	c = aff_ep_cmp(ev, &s->want);
	if (!c) {
		s->found = ek.idx + 1;
		return 1;
	}
	if (c < 0)
		s->lo = ek.idx + 1;
	else
		s->hi = ek.idx;
	return 0;
}

/* Index of ep in the set, or -1 when it is not there (any more). */
static __always_inline long aff_find(struct lb_aff *a, __u32 ep_set, __u32 nr, __u32 hint,
				     const struct gammad_ep_val *ep)
{
	struct gammad_ep_key ek = { .ep_set = ep_set, .idx = hint };
	struct aff_search *s = &a->s;
	struct gammad_ep_val *ev;

	if (hint < nr) {
		ev = bpf_map_lookup_elem(&gammad_ep_v1, &ek);
		if (ev && aff_ep_eq(ev, ep))
			return hint;
	}
	__builtin_memcpy(&s->want, ep, sizeof(s->want));
	s->ep_set = ep_set;
	s->lo = 0;
	s->hi = nr;
	s->found = 0;
	bpf_loop(AFF_SEARCH_STEPS, aff_search_step, &s, 0);
	return s->found ? (long)s->found - 1 : -1;
}

/*
 * The endpoint the client of a->key had on the backend, if still fresh and
 * still there, copied to *ep (its timer restarted); false: pick afresh
 * (*ep is then overwritten by the caller).
 */
static __always_inline bool aff_recall(struct lb_aff *a, __u32 ep_set, __u32 nr,
				       __u32 timeout, __u64 now, struct gammad_ep_val *ep)
{
	struct gammad_aff_val *av;
	__u64 last;
	__u32 hint;
	long idx;

	av = bpf_map_lookup_elem(&gammad_aff_v1, &a->key);
	if (!av)
		return false;
	last = av->last_used;
	hint = av->idx;
	__builtin_memcpy(ep, &av->ep, sizeof(*ep));
	if (now - last > (__u64)timeout * AFF_NSEC_PER_SEC)
		return false;	/* expired: the fresh pick overwrites it */
	idx = aff_find(a, ep_set, nr, hint, ep);
	if (idx < 0)
		return false;	/* the endpoint is gone */
	/* in place: a new LRU element per connection would cost more */
	if ((__u32)idx != hint) {
		av->idx = (__u32)idx;
		av->last_used = now;
	} else if (now - last > GAMMAD_AFF_REFRESH_NS) {
		av->last_used = now;
	}
	return true;
}

/* Remember a fresh pick; a full LRU evicts the least recent client. */
static __always_inline void aff_remember(struct lb_aff *a, __u32 idx, __u64 now,
					 const struct gammad_ep_val *ep)
{
	__builtin_memcpy(&a->val.ep, ep, sizeof(a->val.ep));
	a->val.idx = idx;
	a->val.last_used = now;
	bpf_map_update_elem(&gammad_aff_v1, &a->key, &a->val, BPF_ANY);
}

#endif
