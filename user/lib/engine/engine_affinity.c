// SPDX-License-Identifier: Apache-2.0
/*
 * sessionAffinity: ClientIP for the HTTP path. The kernel keeps it per
 * client address at connect time; here a client pod is its netns_ctx (one
 * pod, one address), so a pod's requests to a Service with affinity go to
 * the endpoint it used last, for as long as that endpoint stays ready and
 * the pod keeps using it within the Service's timeout (kube-proxy's rule:
 * the timeout runs from the last use). Without room for more pairs
 * (ENGINE_AFFINITY_MAX) a request is spread like any other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define AFF_BUCKETS 4096

struct affinity {
	struct affinity *next;
	void *netns_ctx;
	char svc[300];			/* "ns/name:port" of the backend */
	struct ip_addr addr;
	uint16_t port;
	uint64_t last_used;		/* ms */
	uint32_t timeout_s;
};

static size_t bucket(void *netns_ctx, const char *svc)
{
	return (hash_str(svc) ^ (uintptr_t)netns_ctx * 0x9E3779B97F4A7C15ULL) % AFF_BUCKETS;
}

static const struct tr_endpoint *find_ep(const struct tr_endpoint_set *eps, const struct affinity *a)
{
	for (size_t i = 0; i < eps->nr; i++)
		if (eps->items[i].port == a->port && eps->items[i].addr.family == a->addr.family &&
		    !memcmp(eps->items[i].addr.addr, a->addr.addr, 16))
			return &eps->items[i];
	return NULL;
}

const struct tr_endpoint *eng_affinity_pick(struct engine *e, void *netns_ctx,
					    const struct tr_backend *b)
{
	const struct tr_endpoint_set *eps = b->endpoints;
	const struct tr_endpoint *ep;
	struct affinity *a;
	char svc[300];
	size_t h;

	if (!b->affinity_timeout)
		return &eps->items[eng_random(e) % eps->nr];
	snprintf(svc, sizeof(svc), "%s/%s:%u", b->namespace, b->name, b->port);
	h = bucket(netns_ctx, svc);
	if (!e->aff)
		e->aff = calloc(AFF_BUCKETS, sizeof(*e->aff));
	for (a = e->aff ? e->aff[h] : NULL; a; a = a->next) {
		if (a->netns_ctx != netns_ctx || strcmp(a->svc, svc))
			continue;
		ep = e->now - a->last_used < (uint64_t)a->timeout_s * 1000 ? find_ep(eps, a) : NULL;
		if (!ep) {
			/* expired or gone: a new pick, remembered in place */
			ep = &eps->items[eng_random(e) % eps->nr];
			a->addr = ep->addr;
			a->port = ep->port;
		}
		a->last_used = e->now;
		a->timeout_s = b->affinity_timeout;
		return ep;
	}
	ep = &eps->items[eng_random(e) % eps->nr];
	if (!e->aff || e->nr_aff >= ENGINE_AFFINITY_MAX || !(a = calloc(1, sizeof(*a))))
		return ep;
	a->netns_ctx = netns_ctx;
	snprintf(a->svc, sizeof(a->svc), "%s", svc);
	a->addr = ep->addr;
	a->port = ep->port;
	a->last_used = e->now;
	a->timeout_s = b->affinity_timeout;
	a->next = e->aff[h];
	e->aff[h] = a;
	e->nr_aff++;
	return ep;
}

static void drop_if(struct engine *e, bool (*pred)(struct engine *, struct affinity *, void *),
		    void *arg)
{
	for (size_t i = 0; e->aff && i < AFF_BUCKETS; i++) {
		struct affinity **pp = &e->aff[i];

		while (*pp) {
			struct affinity *a = *pp;

			if (pred(e, a, arg)) {
				*pp = a->next;
				free(a);
				e->nr_aff--;
			} else {
				pp = &a->next;
			}
		}
	}
}

static bool expired(struct engine *e, struct affinity *a, void *all)
{
	return all || e->now - a->last_used >= (uint64_t)a->timeout_s * 1000;
}

static bool of_netns(struct engine *e, struct affinity *a, void *netns_ctx)
{
	return a->netns_ctx == netns_ctx;
}

/* Called once a second or so: the table is walked whole. */
void eng_affinity_expire(struct engine *e, bool all)
{
	drop_if(e, expired, all ? e : NULL);
	if (all) {
		free(e->aff);
		e->aff = NULL;
	}
}

void eng_affinity_forget(struct engine *e, void *netns_ctx)
{
	drop_if(e, of_netns, netns_ctx);
}
