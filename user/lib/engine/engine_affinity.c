// SPDX-License-Identifier: Apache-2.0
/*
 * sessionAffinity: ClientIP for the HTTP path, in the kernel's own table.
 * A client pod that reaches a Service directly gets its endpoint at connect
 * time from gammad_aff_v1 (bpf/lib/affinity.h), keyed by the backend's
 * kernel id and the pod's netns cookie. The engine reads and writes the
 * same entries under the same key (the cookie of the netns its listener
 * accepted the connection in, the backend's be_id from opts.backend_id),
 * with the same rules: the timeout runs from the last use, refreshed at
 * most every GAMMAD_AFF_REFRESH_NS; a remembered endpoint is used only if
 * the backend's current set holds it. So a pod keeps one endpoint whether
 * its requests go through a route or not.
 *
 * The kernel's set of a backend is one address family, in the order of
 * the translation's set (sorted by family first): the engine draws from
 * the family the client dialed (the other one when the set has none of
 * it), and an index in that run is an index in the kernel's set.
 */
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "gammad/maps.h"
#include "engine_int.h"

/* What bpf_ktime_get_coarse_ns() reads. */
static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool ep_is(const struct tr_endpoint *t, const struct gammad_ep_val *k)
{
	return t->addr.family == k->family && t->port == ntohs(k->port) &&
	       !memcmp(t->addr.addr, k->addr, t->addr.family == AF_INET6 ? 16 : 4);
}

/* The run [*lo, *hi) of the set's endpoints of one family; false: none. */
static bool family_run(const struct tr_endpoint_set *eps, uint8_t family, size_t *lo, size_t *hi)
{
	size_t i = 0;

	while (i < eps->nr && eps->items[i].addr.family != family)
		i++;
	*lo = i;
	while (i < eps->nr && eps->items[i].addr.family == family)
		i++;
	*hi = i;
	return *hi > *lo;
}

/* Index of the remembered endpoint in the run, hint first; -1: gone. */
static long find_ep(const struct tr_endpoint_set *eps, size_t lo, size_t hi, uint32_t hint,
		    const struct gammad_ep_val *ep)
{
	if (hint < hi - lo && ep_is(&eps->items[lo + hint], ep))
		return hint;
	for (size_t i = lo; i < hi; i++)
		if (ep_is(&eps->items[i], ep))
			return (long)(i - lo);
	return -1;
}

const struct tr_endpoint *eng_affinity_pick(struct engine *e, const struct engine_origin *o,
					    const struct tr_backend *b)
{
	const struct tr_endpoint_set *eps = b->endpoints;
	struct gammad_aff_key key = { .kind = GAMMAD_AFF_NETNS };
	struct gammad_aff_val v;
	uint8_t family = o->vip.family;
	size_t lo, hi, pick;
	uint64_t now;
	long idx;

	if (!b->affinity_timeout || !e->o.backend_id || !o->netns_cookie)
		return &eps->items[eng_random(e) % eps->nr];
	if (!family_run(eps, family, &lo, &hi)) {
		family = family == AF_INET ? AF_INET6 : AF_INET;
		family_run(eps, family, &lo, &hi);
	}
	/* not in the kernel (yet): nothing to share, a plain draw */
	if (e->o.backend_id(e->o.ctx, b->namespace, b->name, b->port, family, &key.be_id))
		return &eps->items[lo + eng_random(e) % (hi - lo)];
	memcpy(key.client, &o->netns_cookie, sizeof(o->netns_cookie));
	now = coarse_ns();
	if (!bpf_map_lookup_elem(e->o.affinity_fd, &key, &v) &&
	    now - v.last_used <= (uint64_t)b->affinity_timeout * 1000000000ULL &&
	    (idx = find_ep(eps, lo, hi, v.idx, &v.ep)) >= 0) {
		if ((uint32_t)idx != v.idx || now - v.last_used > GAMMAD_AFF_REFRESH_NS) {
			v.idx = (uint32_t)idx;
			v.last_used = now;
			bpf_map_update_elem(e->o.affinity_fd, &key, &v, BPF_ANY);
		}
		return &eps->items[lo + (size_t)idx];
	}
	/* none, expired or gone: a fresh pick, remembered for both paths */
	pick = eng_random(e) % (hi - lo);
	memset(&v, 0, sizeof(v));
	memcpy(v.ep.addr, eps->items[lo + pick].addr.addr, family == AF_INET6 ? 16 : 4);
	v.ep.port = htons(eps->items[lo + pick].port);
	v.ep.family = family;
	v.idx = (uint32_t)pick;
	v.last_used = now;
	/* a full LRU evicts the least recent client; a failed write only forgets */
	bpf_map_update_elem(e->o.affinity_fd, &key, &v, BPF_ANY);
	return &eps->items[lo + pick];
}
