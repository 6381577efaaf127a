/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service load balancing at connect time: frontend -> route table of the
 * client's class -> weighted backend (alias table, O(1)) -> endpoint.
 * Shared by every hook that translates a destination (connect, sendmsg).
 *
 * Values are copied out of the maps field by field right after lookup: the
 * agent replaces entries while programs run and a hash element may be
 * reused, so nothing is read twice from the same pointer.
 */
#ifndef GAMMAD_BPF_LB_H
#define GAMMAD_BPF_LB_H

#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/affinity.h"

struct lb_result {
	struct gammad_ep_val ep;
	__u32 be_id;
	__u32 route_id;
	bool engine;		/* to the HTTP engine: no backend was picked */
};

/*
 * The client class (ns_id) is an input: each hook knows its client in its
 * own way (cgroup at connect time, source pod IP per packet), and both then
 * take exactly the same route, backend and endpoint decisions below.
 */
static __always_inline __u32 lb_table_selector(const struct gammad_fe_val *fe, __u32 ns_id)
{
	struct gammad_cons_key ck = { .table_gen = fe->table_gen, .ns_id = ns_id };
	struct gammad_cons_val *cv;

	if (!(fe->flags & GAMMAD_FE_HAS_CONSUMERS) || ns_id == GAMMAD_NS_ALL)
		return fe->default_sel;
	cv = bpf_map_lookup_elem(&gammad_cons_v1, &ck);
	return cv ? cv->sel : fe->default_sel;
}

/*
 * Weighted choice of a backend id; returns a reason, GAMMAD_R_OK on success.
 * engine_ok: the caller can steer a connection to the HTTP engine (a TCP
 * connect()); then a selector marked GAMMAD_SEL_HTTP_ENGINE picks nothing
 * and sets *engine, even without backends (the engine answers 3xx/500/503).
 */
static __always_inline __u32 lb_pick_backend(__u32 sel_id, bool engine_ok, __u32 *be_id,
					     __u32 *route_id, bool *engine)
{
	struct gammad_alias_key ak = { .sel_id = sel_id };
	struct gammad_sel_val *sv;
	struct gammad_alias_val *av;
	__u32 nr_slots, total, flags, threshold, primary, alias;

	sv = bpf_map_lookup_elem(&gammad_sel_v1, &sel_id);
	if (!sv)
		return GAMMAD_R_NO_SELECTOR;
	nr_slots = sv->nr_slots;
	total = sv->total_weight;
	flags = sv->flags;
	*route_id = sv->route_id;
	if (engine_ok && (flags & GAMMAD_SEL_HTTP_ENGINE)) {
		*engine = true;
		return GAMMAD_R_OK;
	}
	if ((flags & GAMMAD_SEL_NO_ROUTE_BACKENDS) || !nr_slots || !total)
		return GAMMAD_R_NO_ROUTE_BACKENDS;

	ak.slot = bpf_get_prandom_u32() % nr_slots;
	av = bpf_map_lookup_elem(&gammad_alias_v1, &ak);
	if (!av)
		return GAMMAD_R_NO_ALIAS;
	threshold = av->threshold;
	primary = av->primary;
	alias = av->alias;
	*be_id = bpf_get_prandom_u32() % total < threshold ? primary : alias;
	return GAMMAD_R_OK;
}

/*
 * Equal share of the backend's ready endpoints, or the one this client
 * has while its session affinity is fresh. a: the affinity work area with
 * the client filled in (NULL: no affinity); its key's be_id is set here.
 */
static __always_inline __u32 lb_pick_endpoint(__u32 be_id, struct lb_aff *a,
					      struct gammad_ep_val *ep)
{
	struct gammad_ep_key ek = {};
	struct gammad_be_val *bv;
	struct gammad_ep_val *ev;
	__u32 nr, flags, timeout;
	__u64 now = 0;

	bv = bpf_map_lookup_elem(&gammad_be_v2, &be_id);
	if (!bv)
		return GAMMAD_R_NO_BACKEND;
	ek.ep_set = bv->ep_set;
	nr = bv->nr_endpoints;
	flags = bv->flags;
	timeout = a ? bv->affinity_timeout : 0;
	if (flags & GAMMAD_BE_UNRESOLVED)
		return GAMMAD_R_BE_UNRESOLVED;
	if ((flags & GAMMAD_BE_NO_ENDPOINTS) || !nr)
		return GAMMAD_R_BE_NO_ENDPOINTS;

	if (timeout && a) {
		a->key.be_id = be_id;
		now = bpf_ktime_get_coarse_ns();
		if (aff_recall(a, ek.ep_set, nr, timeout, now, ep))
			return GAMMAD_R_OK;
	}
	ek.idx = bpf_get_prandom_u32() % nr;
	ev = bpf_map_lookup_elem(&gammad_ep_v1, &ek);
	if (!ev)
		return GAMMAD_R_NO_ENDPOINT;
	__builtin_memcpy(ep, ev, sizeof(*ep));
	if (timeout && a)
		aff_remember(a, ek.idx, now, ep);
	return GAMMAD_R_OK;
}

/* Whether the route table depends on the client class: skip the lookup if not. */
static __always_inline bool lb_needs_class(const struct gammad_fe_val *fe)
{
	return fe->flags & GAMMAD_FE_HAS_CONSUMERS;
}

/*
 * Route, backend, endpoint. The client (ns_id: its class; a->key: its
 * session affinity identity, see gammad_aff_kind) is an input like the
 * class: each hook knows it in its own way.
 */
static __always_inline __u32 lb_pick(const struct gammad_fe_val *fe, __u32 ns_id,
				     struct lb_aff *a, bool engine_ok, struct lb_result *res)
{
	__u32 reason;

	res->engine = false;
	reason = lb_pick_backend(lb_table_selector(fe, ns_id), engine_ok, &res->be_id,
				 &res->route_id, &res->engine);
	if (reason || res->engine)
		return reason;
	return lb_pick_endpoint(res->be_id, a, &res->ep);
}

/*
 * Count a successful translation everywhere it is accounted. A connection
 * steered to the engine counts as a connect of its Service port and route;
 * the engine accounts its requests' backends itself.
 */
static __always_inline void lb_account(const struct gammad_fe_val *fe,
				       const struct lb_result *res)
{
	if (res->engine) {
		svc_hit(fe->svc_port_id, 0);
		route_stats_inc(res->route_id);
		return;
	}
	svc_hit(fe->svc_port_id, fe->flags);
	be_stats_inc(res->be_id);
	route_stats_inc(res->route_id);
}

/* Frontend entry copied to *fe; false when the destination is no Service. */
static __always_inline bool lb_frontend(const struct gammad_fe_key *key,
					struct gammad_fe_val *fe)
{
	struct gammad_fe_val *v = bpf_map_lookup_elem(&gammad_fe_v1, key);

	if (!v)
		return false;
	__builtin_memcpy(fe, v, sizeof(*fe));
	return true;
}

#endif
