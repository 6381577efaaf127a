/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-CPU counters. Every drop and miss has a reason code (enum
 * gammad_reason in gammad/maps.h); per-Service-port, per-backend and
 * per-route counters are indexed by the dense ids the agent allocates.
 * An id beyond the configured array is itself counted, never ignored.
 */
#ifndef GAMMAD_BPF_STATS_H
#define GAMMAD_BPF_STATS_H

#include "lib/maps.h"

static __always_inline void reason_inc(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&gammad_drop_v1, &reason);

	if (c)
		*c += 1;	/* per-CPU slot: no atomics needed */
}

static __always_inline struct gammad_svc_stats *svc_stats(__u32 svc_port_id)
{
	struct gammad_svc_stats *s = bpf_map_lookup_elem(&gammad_svcst_v1, &svc_port_id);

	if (!s)
		reason_inc(GAMMAD_R_STATS_RANGE);
	return s;
}

static __always_inline void be_stats_inc(__u32 be_id)
{
	struct gammad_be_stats *s = bpf_map_lookup_elem(&gammad_best_v1, &be_id);

	if (s)
		s->connects++;
	else
		reason_inc(GAMMAD_R_STATS_RANGE);
}

static __always_inline void route_stats_inc(__u32 route_id)
{
	struct gammad_route_stats *s = bpf_map_lookup_elem(&gammad_rtst_v1, &route_id);

	if (s)
		s->connects++;
	else
		reason_inc(GAMMAD_R_STATS_RANGE);
}

/* Account a failed translation of a Service port. */
static __always_inline void svc_miss(__u32 svc_port_id, __u32 reason)
{
	struct gammad_svc_stats *s;

	reason_inc(reason);
	s = svc_stats(svc_port_id);
	if (!s)
		return;
	if (reason == GAMMAD_R_BE_NO_ENDPOINTS || reason == GAMMAD_R_NO_ENDPOINT)
		s->no_endpoint++;
	else if (reason != GAMMAD_R_FAMILY)
		s->no_backend++;
	s->refused++;
}

static __always_inline void svc_hit(__u32 svc_port_id, __u32 fe_flags)
{
	struct gammad_svc_stats *s = svc_stats(svc_port_id);

	if (!s)
		return;
	s->connects++;
	if (fe_flags & GAMMAD_FE_L7_UNENFORCED)
		s->l7_unenforced++;
}

/* TC data path: one per-CPU counter per enum gammad_tc_reason. */
static __always_inline void tc_count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&gammad_tcst_v1, &reason);

	if (c)
		*c += 1;
}

#endif
