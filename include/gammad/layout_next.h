/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEST ONLY: the "next" map layout, compiled in by -DGAMMAD_LAYOUT_NEXT
 * (the Makefile's build/next/, `make layout-next`), never in a release.
 *
 * It stands for the next agent version whose layout differs from this one,
 * so the upgrade across map layouts (user/lib/datapath/layout.c) is tested
 * with two real builds: build/gammad pins the current layout, then
 * build/next/gammad migrates it while connections keep running
 * (tests/prog_tests/agent_upgrade.c). Three maps change, one of each kind
 * the registry handles:
 *
 *   gammad_be_v2 -> gammad_be_v3      route map written by the agent
 *   gammad_ct_v1 -> gammad_ct_v2      state the TC programs write per packet
 *   gammad_svcst_v1 -> gammad_svcst_v2 per-CPU counters
 *
 * Fields are reordered and one is added in each, so a migration that
 * copied bytes instead of converting field by field would break routing.
 *
 * The identifiers the programs and the skeletons use are renamed by the
 * preprocessor, so no code changes between the two builds; everything
 * else that names these maps goes through the GAMMAD_MAP_* strings.
 */
#ifndef GAMMAD_LAYOUT_NEXT_H
#define GAMMAD_LAYOUT_NEXT_H

#define gammad_be_v2		gammad_be_v3
#define gammad_ct_v1		gammad_ct_v2
#define gammad_svcst_v1		gammad_svcst_v2

#define GAMMAD_MAP_BACKEND	"gammad_be_v3"
#define GAMMAD_MAP_CT		"gammad_ct_v2"
#define GAMMAD_MAP_SVC_STATS	"gammad_svcst_v2"

struct gammad_be_val {
	__u32 flags;		/* enum gammad_be_flags */
	__u32 affinity_timeout;	/* sessionAffinity ClientIP: seconds; 0: none */
	__u32 nr_endpoints;	/* endpoints 0..nr_endpoints-1 */
	__u32 ep_set;		/* key prefix of the endpoint entries */
	__u32 next_spare;	/* new in this layout; 0 */
};

struct gammad_ct_val {
	__u64 last_seen;	/* bpf_ktime_get_ns() of the last packet */
	__u64 first_seen;	/* new in this layout: the migration sets last_seen */
	__u32 svc_port_id;	/* Service port of the flow, for accounting */
	__be16 nat_port;
	__u8 flags;		/* enum gammad_ct_flags */
	__u8 pad;
	__u8 nat_addr[16] GAMMAD_ALIGN4;	/* FWD: endpoint, REV: ClusterIP */
};

struct gammad_svc_stats {
	__u64 l7_unenforced;	/* translated, but the route's L7 rules were ignored */
	__u64 refused;		/* connections refused (ECONNREFUSED / dropped datagram) */
	__u64 no_endpoint;	/* backend with no endpoints */
	__u64 no_backend;	/* no route backend: selector/alias/backend missing or empty */
	__u64 connects;		/* connect/sendmsg translated to an endpoint */
	__u64 next_spare;	/* new in this layout; 0 */
};

#endif
