/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Definitions of every gammad map, one place for all programs. Each object
 * that includes this declares all maps; the loader (user/lib/datapath.c)
 * gives every map the pin path <pin_dir>/<name>, so the second object to
 * load and every later agent reuse the same kernel maps. No LIBBPF_PIN_BY_NAME
 * here: a bare `bpftool prog loadall` would then pin into /sys/fs/bpf itself.
 *
 * max_entries here are defaults for a bare `bpftool prog loadall`; the
 * agent sets them from its configuration before load (datapath.c).
 */
#ifndef GAMMAD_BPF_MAPS_H
#define GAMMAD_BPF_MAPS_H

#include "lib/common.h"

#define GAMMAD_HASH(_name, _key, _val, _max)			\
	struct {						\
		__uint(type, BPF_MAP_TYPE_HASH);		\
		__uint(max_entries, _max);			\
		__type(key, _key);				\
		__type(value, _val);				\
	} _name SEC(".maps")

#define GAMMAD_PERCPU_ARRAY(_name, _val, _max)			\
	struct {						\
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);	\
		__uint(max_entries, _max);			\
		__type(key, __u32);				\
		__type(value, _val);				\
	} _name SEC(".maps")

#define GAMMAD_SK_STORAGE(_name, _val)				\
	struct {						\
		__uint(type, BPF_MAP_TYPE_SK_STORAGE);		\
		__uint(map_flags, BPF_F_NO_PREALLOC);		\
		__type(key, int);				\
		__type(value, _val);				\
	} _name SEC(".maps")

/* Route tables (written by the agent, read at connect time). */
GAMMAD_HASH(gammad_fe_v1, struct gammad_fe_key, struct gammad_fe_val, 16384);
GAMMAD_HASH(gammad_cons_v1, struct gammad_cons_key, struct gammad_cons_val, 16384);
GAMMAD_HASH(gammad_cgns_v1, __u64, struct gammad_cgns_val, 16384);
GAMMAD_HASH(gammad_sel_v1, __u32, struct gammad_sel_val, 16384);
GAMMAD_HASH(gammad_alias_v1, struct gammad_alias_key, struct gammad_alias_val, 65536);
GAMMAD_HASH(gammad_be_v2, __u32, struct gammad_be_val, 16384);
GAMMAD_HASH(gammad_ep_v1, struct gammad_ep_key, struct gammad_ep_val, 65536);
GAMMAD_HASH(gammad_lep_v1, struct gammad_lep_key, struct gammad_lep_val, 4096);

/* Counters, indexed by the dense ids of the route tables. */
GAMMAD_PERCPU_ARRAY(gammad_svcst_v1, struct gammad_svc_stats, 16384);
GAMMAD_PERCPU_ARRAY(gammad_best_v1, struct gammad_be_stats, 16384);
GAMMAD_PERCPU_ARRAY(gammad_rtst_v1, struct gammad_route_stats, 16384);
GAMMAD_PERCPU_ARRAY(gammad_drop_v1, __u64, GAMMAD_R_SLOTS);

/*
 * What every id above stands for (include/gammad/maps.h). Userspace only;
 * declared here so it is created and pinned with the rest. Not
 * preallocated: most slots of a large configuration stay empty.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct gammad_obj_key);
	__type(value, struct gammad_obj_val);
} gammad_obj_v1 SEC(".maps");

/* Per-socket state. */
GAMMAD_SK_STORAGE(gammad_sko_v1, struct gammad_sock_orig);
GAMMAD_SK_STORAGE(gammad_skr_v1, struct gammad_sock_redir);
GAMMAD_SK_STORAGE(gammad_ske_v1, struct gammad_sock_engine);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_revnat_key);
	__type(value, struct gammad_revnat_val);
} gammad_rnat_v1 SEC(".maps");

/*
 * Session affinity: which endpoint a (backend, client) got last, and when.
 * LRU: clients that stopped connecting make room for new ones; an evicted
 * client just picks afresh.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_aff_key);
	__type(value, struct gammad_aff_val);
} gammad_aff_v1 SEC(".maps");

/*
 * Original destination of connections steered to the HTTP engine, from
 * sockops to the agent's accept (LRU: an entry the agent never took, its
 * client gone before accept, is evicted rather than filling the map).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_origdst_key);
	__type(value, struct gammad_origdst_val);
} gammad_origdst_v1 SEC(".maps");

GAMMAD_HASH(gammad_engns_v1, __u64, struct gammad_engns_val, 16384);

/* Value: the socket; libbpf drops BTF for sockhashes, the key stays typed in code. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_sock_key);
	__type(value, __u64);
} gammad_sockh_v1 SEC(".maps");

/* Connections steered to the HTTP engine, keyed with their netns. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_esock_key);
	__type(value, __u64);
} gammad_esockh_v1 SEC(".maps");

/* ---- TC data path (bpf/tc.bpf.c) ---------------------------------------- */

/* Conntrack: LRU, so a full table evicts the oldest flow instead of failing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_ct_key);
	__type(value, struct gammad_ct_val);
} gammad_ct_v1 SEC(".maps");

GAMMAD_HASH(gammad_pod_v1, struct gammad_pod_key, struct gammad_pod_val, 16384);
GAMMAD_PERCPU_ARRAY(gammad_tcst_v1, __u64, GAMMAD_TC_SLOTS);

#endif
