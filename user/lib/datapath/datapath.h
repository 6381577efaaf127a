/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-kernel L4 data path: load, pin, attach, adopt, uninstall, and the
 * low-level writer of its maps (layout in include/gammad/maps.h).
 *
 * Lifecycle. dp_open() loads bpf/sock_addr.bpf.c and bpf/sockops.bpf.c,
 * pins every map as <pin_dir>/<map name> and every cgroup link as
 * <pin_dir>/link_<hook>, so the data path keeps working after the agent
 * exits. A later dp_open() ADOPTS what is pinned: maps are reused with
 * their entries (never flushed; a configured size that differs from the
 * pinned one makes a new map filled with the old one's entries, see
 * datapath_resize.c), and the pinned links
 * get the newly loaded programs through an atomic link update. Links pinned
 * for another cgroup are replaced. dp_close() only releases this process's
 * handles; dp_uninstall() detaches and removes everything pinned.
 *
 * Publication order. A Service port's route table is replaced, never
 * edited: write every new piece under FRESH ids, innermost first, then flip
 * the frontend entry, then retire the old ids once no program can still
 * read them:
 *
 *	dp_endpoints_write(ep_set')        endpoints of each new backend
 *	dp_backend_write(be_id')           backends pointing at them
 *	dp_selector_write(sel_id', ...)    alias slots, then the selector
 *	dp_kh_put(RECORD, ...), (TABLE)   kernel HTTP tables, records first
 *	dp_consumer_write(gen', ns, sel')  consumer tables of the new generation
 *	dp_kh_put(CLASS, ...)              with them: the class's table
 *	dp_frontend_publish(key, {gen', default_sel', ...})   the one flip
 *	dp_sync()                          running programs have finished
 *	dp_*_delete(old ids)               retire the previous generation
 *
 * A backend whose endpoints change is flipped the same way: new ep_set,
 * then one dp_backend_write() of its entry. Every function returns 0 or a
 * negative errno (a full map is -E2BIG: count it, report it).
 */
#ifndef GAMMAD_DATAPATH_H
#define GAMMAD_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gammad/maps.h"

#define DP_PIN_DIR_DEFAULT "/sys/fs/bpf/gammad"

/* Map sizes; 0 keeps the default of bpf/lib/maps.h. */
struct dp_sizes {
	uint32_t frontends;	/* ClusterIP x port x protocol */
	uint32_t consumers;	/* (route table, client namespace) pairs */
	uint32_t cgroups;	/* pod cgroups with a known namespace */
	uint32_t selectors;
	uint32_t alias_slots;	/* sum of the selectors' weighted backends */
	uint32_t backends;	/* also the size of the per-backend counters */
	uint32_t endpoints;
	uint32_t local_endpoints;	/* pod IPs of this node */
	uint32_t svc_ports;	/* per-Service-port counters: svc_port_id < svc_ports */
	uint32_t routes;	/* per-route counters: route_id < routes */
	uint32_t revnat;	/* UDP reverse NAT entries (LRU) */
	uint32_t sockets;	/* same-node sockets in the sockhash */
	uint32_t objects;	/* object table: every id allocated above */
	uint32_t conntrack;	/* TC path: flow entries (two per flow, LRU) */
	uint32_t pods;		/* TC path: pod IPs with a namespace / local veth */
	uint32_t origdst;	/* HTTP engine: connections between connect and accept (LRU) */
	/*
	 * Endpoints one Service port (one backend) uses at most; not a map:
	 * the agent's translation caps each set (0: its default, 16,384).
	 */
	uint32_t endpoints_per_service;
	uint32_t affinity;	/* session affinity: (backend, client) entries (LRU) */
};

/* Largest configurable size: keeps ids and preallocated maps sane. */
#define DP_SIZE_MAX (1u << 24)

/*
 * Parse "NAME=ENTRIES" (NAME: frontends, consumers, cgroups, selectors,
 * alias-slots, backends, endpoints, local-endpoints, svc-ports, routes,
 * revnat, sockets, objects, conntrack, pods, affinity, origdst, endpoints-per-service)
 * into s; -EINVAL with a message in err.
 */
int dp_sizes_parse(struct dp_sizes *s, const char *arg, char *err, size_t len);

struct dp_opts {
	const char *pin_dir;	/* NULL: DP_PIN_DIR_DEFAULT */
	const char *cgroup;	/* cgroup v2 directory the hooks attach to */
	struct dp_sizes sizes;
	bool no_sockmap;	/* skip sockops + sk_msg (redirect, engine origins) */
	/*
	 * Port of the HTTP engine listeners (host order; 0: the default), a
	 * load-time constant of the programs. Only selectors flagged
	 * GAMMAD_SEL_HTTP_ENGINE use it.
	 */
	uint16_t engine_port;
	/*
	 * The caller opens the TC programs next (tc_dp_open): a layout
	 * upgrade switches their links too before the old maps go.
	 */
	bool tc_follows;
	/*
	 * Bytes a redirected socket may find unread at its peer before it
	 * moves to TCP for good (0: GAMMAD_SOCKMAP_CAP_DEFAULT), a load-time
	 * constant of the sk_msg program.
	 */
	uint32_t sockmap_cap;
	/*
	 * Put sockets whose two ends are local pods into the sockhash (the
	 * same-node socket redirect, gammad run --sockmap). Off by default: a
	 * socket in a sockhash does not behave as TCP to its application
	 * (bpf/sockops.bpf.c). A load-time constant of the sockops program.
	 */
	bool sock_redirect;
	/*
	 * With sock_redirect, leave the connections steered to the HTTP
	 * engine on TCP (the kernel HTTP path's programs own those sockets).
	 */
	bool no_engine_redirect;
};

struct dp;

int dp_open(const struct dp_opts *opts, struct dp **out);
/* Release this process's handles; pinned maps and links stay. */
void dp_close(struct dp *dp);
/* Detach the pinned links and remove every pinned object and the pin dir. */
int dp_uninstall(const char *pin_dir);
/* True when dp_open() found pinned maps and adopted them. */
bool dp_adopted(const struct dp *dp);
/*
 * Share this data path's maps with another BPF object of it (bpf/tc.bpf.c):
 * call between its open and its load; every map it shares with the data
 * path gets the pin path and size dp_open() gave it, and the loaded object
 * then uses the pinned maps. Maps of that object alone stay unpinned.
 */
struct bpf_object;
int dp_adopt_maps(struct dp *dp, struct bpf_object *obj);
/*
 * HTTP/1.1 in the kernel (datapath_khttp.c): load bpf/khttp.bpf.c beside
 * an open data path, its maps pinned with the others, gammad_kh_sockops
 * on the cgroup (pinned link link_kh_sockops), the sk_msg and sk_skb
 * verdicts on their sockhashes. dp_kh_close() releases this process's
 * handles (everything pinned stays); dp_kh_detach() unpins the sockops
 * link of an earlier run (the kernel path off: no client is registered).
 */
struct dp_kh;
int dp_kh_open(struct dp *dp, struct dp_kh **out);
void dp_kh_close(struct dp_kh *k);
int dp_kh_detach(struct dp *dp);
/* fd of one of its maps by name (GAMMAD_MAP_KH_*), -ENOENT if unknown. */
int dp_kh_map_fd(const struct dp_kh *k, const char *name);
/*
 * The same-node socket redirect is on (dp_opts.sock_redirect, --sockmap):
 * the kernel HTTP path may then pair pool upstreams with their local
 * backends' server sockets (include/gammad/maps.h, gammad_khsv_v1).
 */
bool dp_kh_samenode(const struct dp *dp);

/* fd of a map by name (GAMMAD_MAP_*), for inspection; -ENOENT if unknown. */
int dp_map_fd(const struct dp *dp, const char *name);

/* max_entries of a map by name, 0 if unknown. */
uint32_t dp_map_capacity(const struct dp *dp, const char *name);

/* Cgroup v2 id of a cgroup directory (what BPF sees), from its file handle. */
int dp_cgroup_id(const char *path, uint64_t *id);

/* ---- key/value constructors ------------------------------------------- */

/* addr: struct in_addr or struct in6_addr bytes; port in host order. */
void dp_fe_key(struct gammad_fe_key *key, int family, const void *addr,
	       uint16_t port, uint8_t proto);
void dp_ep(struct gammad_ep_val *ep, int family, const void *addr, uint16_t port);

/* ---- writer -------------------------------------------------------------- */

int dp_endpoints_write(struct dp *dp, uint32_t ep_set,
		       const struct gammad_ep_val *eps, uint32_t nr);
int dp_endpoints_delete(struct dp *dp, uint32_t ep_set, uint32_t nr);

int dp_backend_write(struct dp *dp, uint32_t be_id, const struct gammad_be_val *be);
int dp_backend_delete(struct dp *dp, uint32_t be_id);

struct dp_weighted {
	uint32_t be_id;
	uint32_t weight;	/* 0: never chosen */
};

/*
 * Build the alias table of (be_id, weight) pairs and write its slots, then
 * the selector. No positive weight: a selector flagged NO_ROUTE_BACKENDS
 * (connections refused). sel_id must not be referenced yet.
 */
int dp_selector_write(struct dp *dp, uint32_t sel_id, uint32_t route_id,
		      const struct dp_weighted *w, size_t n);
/* The same with enum gammad_sel_flags to set (GAMMAD_SEL_HTTP_ENGINE). */
int dp_selector_write_flags(struct dp *dp, uint32_t sel_id, uint32_t route_id,
			    const struct dp_weighted *w, size_t n, uint32_t flags);
/* Delete the selector, then its slots (read from the selector entry). */
int dp_selector_delete(struct dp *dp, uint32_t sel_id);

int dp_consumer_write(struct dp *dp, uint32_t table_gen, uint32_t ns_id, uint32_t sel_id);
int dp_consumer_delete(struct dp *dp, uint32_t table_gen, uint32_t ns_id);

/*
 * A write to a kernel HTTP map (GAMMAD_MAP_KH_*, fd from dp_map_fd()), in
 * the publication order above: a table's records (entries, rules, alias
 * slots, rule backends), the table entry that publishes them, a class
 * entry (gammad_khcls_v1: the table a client class of a frontend's
 * generation uses) with the consumer tables. Queued while a batch is open.
 */
enum dp_kh_part { DP_KH_RECORD, DP_KH_TABLE, DP_KH_CLASS };
int dp_kh_put(struct dp *dp, enum dp_kh_part part, int fd, const void *key, const void *val);

/* The generation flip: one update of the frontend entry. */
int dp_frontend_publish(struct dp *dp, const struct gammad_fe_key *key,
			const struct gammad_fe_val *val);
int dp_frontend_delete(struct dp *dp, const struct gammad_fe_key *key);

/* Client class: processes in this cgroup (or below) belong to ns_id. */
int dp_cgroup_ns_set(struct dp *dp, uint64_t cgroup_id, uint32_t ns_id);
int dp_cgroup_ns_delete(struct dp *dp, uint64_t cgroup_id);

/* Pod IPs of this node: sockets between two of them are redirected. */
int dp_local_endpoint_add(struct dp *dp, int family, const void *addr);
int dp_local_endpoint_delete(struct dp *dp, int family, const void *addr);

/*
 * Object table (GAMMAD_MAP_OBJECTS): what an allocated id stands for.
 * Written by the agent around every object it writes (see image_apply.c).
 */
int dp_obj_put(struct dp *dp, uint32_t kind, uint32_t id, const struct gammad_obj_val *val);
int dp_obj_delete(struct dp *dp, uint32_t kind, uint32_t id);

/*
 * Zero the counters behind a newly allocated id (FRONTEND: svc_port_id,
 * SELECTOR: route_id, BACKEND: be_id), so it does not inherit the counts of
 * an object that held the id before. Other kinds have no counters.
 */
int dp_counters_reset(struct dp *dp, uint32_t kind, uint32_t id);

/*
 * Wait until every BPF program that may have read the maps before this
 * call has finished (an RCU grace period, through the kernel's wait on
 * map-in-map updates). After it, retired entries are unreachable.
 */
int dp_sync(struct dp *dp);

/*
 * Batched writes. After dp_batch_begin(), the writers above queue instead
 * of writing; dp_batch_flush() writes the queue with one
 * BPF_MAP_UPDATE_BATCH per map and stage, in the publication order above:
 * the object table's begin markers, counters, endpoints, backends, alias
 * slots, selectors, kernel HTTP records, kernel HTTP tables, consumer and
 * class tables, the objects' final entries,
 * frontends, the frontend objects. Flush where the next writes point at
 * what is queued (between the layers of an apply). Every read, dump or
 * delete through dp flushes first; callers reading the maps' fds directly
 * flush (or end) before, and so before dp_sync(). dp_batch_end() flushes and writes directly
 * again. A failed flush leaves the rest of the queue unwritten (-errno).
 */
void dp_batch_begin(struct dp *dp);
int dp_batch_flush(struct dp *dp);
int dp_batch_end(struct dp *dp);

/* ---- counters (summed over CPUs) --------------------------------------- */

int dp_svc_stats(struct dp *dp, uint32_t svc_port_id, struct gammad_svc_stats *out);
int dp_be_stats(struct dp *dp, uint32_t be_id, struct gammad_be_stats *out);
int dp_route_stats(struct dp *dp, uint32_t route_id, struct gammad_route_stats *out);
/* out[GAMMAD_R_MAX], indexed by enum gammad_reason. */
int dp_reasons(struct dp *dp, __u64 *out);
const char *dp_reason_name(unsigned int reason);

/*
 * The in-memory mirror of the route maps an apply reads whole (objects,
 * frontends, consumers, selectors, alias slots, backends, endpoints):
 * dp_mirror_load() reads them from the kernel once; from then on every
 * write and delete of this library is kept in it, and dp_map_dump() and
 * dp_map_lookup() answer from memory. The programs never write these maps;
 * dp_mirror_audit() compares the mirror with the kernel, sets *drift to the
 * entries that differ (someone else wrote the maps) and reloads it. Without
 * a mirror (or for other maps) both read the kernel.
 */
struct map_dump;
int dp_mirror_load(struct dp *dp);
void dp_mirror_drop(struct dp *dp);
bool dp_mirror_on(const struct dp *dp);
int dp_mirror_audit(struct dp *dp, size_t *drift);
int dp_map_dump(struct dp *dp, const char *name, struct map_dump *d);
/*
 * dp_map_dump() for a reader only: with a mirror, d points into it (no copy
 * of the map: 100k endpoints, the objects), valid until the next write or
 * delete through dp; map_dump_free() as always.
 */
int dp_map_view(struct dp *dp, const char *name, struct map_dump *d);
int dp_map_lookup(struct dp *dp, const char *name, const void *key, void *val);
/* Delete one entry of the map `name` (kept in the mirror); -ENOENT when absent. */
int dp_map_delete(struct dp *dp, const char *name, const void *key);

#endif
