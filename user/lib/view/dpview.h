/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A read-only view of the pinned data path, for gammactl and the metrics
 * endpoint. It opens the maps pinned under a pin dir by path (no program is
 * loaded, nothing is written) and walks them from the frontends down:
 *
 *   frontend (ClusterIP:port/proto, Service ns/name/port name)
 *     classes: the default selector, one per consumer namespace
 *       selector (route ns/name, "rule N") -> backend shares from the alias
 *       table: slot s of n contributes threshold/total to its primary and
 *       (total - threshold)/total to its alias, each divided by n (exact)
 *         backend (Service ns/name:port, flags) -> endpoints
 *   counters per Service port, route, backend (per-CPU sums), drop reasons,
 *   the TC path's counters (translations, hairpins, misses), fill level of
 *   every map.
 *
 * Names come from the object table (gammad_obj_v1, see objtab.h); ids the
 * table does not name are shown as ids. Entries change while the view is
 * built: a missing entry is recorded as missing, never an error.
 */
#ifndef GAMMAD_DPVIEW_H
#define GAMMAD_DPVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gammad/maps.h"

enum dpv_map {
	DPV_FE, DPV_CONS, DPV_CGNS, DPV_SEL, DPV_ALIAS, DPV_BE, DPV_EP, DPV_LEP,
	DPV_SVCST, DPV_BEST, DPV_RTST, DPV_DROP, DPV_OBJ, DPV_RNAT, DPV_SOCKH,
	DPV_SKO, DPV_SKR, DPV_CT, DPV_POD, DPV_TCST, DPV_AFF, DPV_MAP_COUNT,
};

struct dpv_maps {
	char pin_dir[4096];
	int fd[DPV_MAP_COUNT];		/* -1: not pinned (optional maps only) */
	uint32_t max_entries[DPV_MAP_COUNT];
	int nr_cpus;
};

/* Pinned name of a map (GAMMAD_MAP_*). */
const char *dpv_map_name(enum dpv_map m);

/*
 * Open every map pinned under pin_dir (NULL: the default). -ENOENT when the
 * pin dir or a routing map is missing, logged once with the path.
 */
int dpv_maps_open(struct dpv_maps *m, const char *pin_dir);
void dpv_maps_close(struct dpv_maps *m);

/* Sum of a per-CPU counter array entry (nr_u64 counters). */
int dpv_percpu_sum(const struct dpv_maps *m, enum dpv_map map, uint32_t key,
		   uint64_t *out, size_t nr_u64);

struct dpv_endpoint {
	uint8_t family;
	uint8_t addr[16];
	uint16_t port;			/* host order */
};

struct dpv_backend {
	uint32_t id;
	bool present;			/* entry found in gammad_be_v2 */
	struct gammad_be_val val;
	struct dpv_endpoint *eps;
	size_t nr_eps;
	bool named;			/* BACKEND object found */
	char namespace[GAMMAD_OBJ_NS_LEN];
	char name[GAMMAD_OBJ_NAME_LEN];
	uint16_t port;
	uint64_t connects;
};

struct dpv_share {
	uint32_t be_id;
	uint64_t num, den;		/* exact probability num/den */
	double share;			/* num/den */
};

struct dpv_selector {
	uint32_t id;
	bool present;
	struct gammad_sel_val val;
	struct dpv_share *shares;	/* by be_id */
	size_t nr_shares;
	bool named;
	char route_ns[GAMMAD_OBJ_NS_LEN];
	char route_name[GAMMAD_OBJ_NAME_LEN];	/* empty: plain Kubernetes */
	char section[GAMMAD_OBJ_NS_LEN];	/* "rule N" */
	uint64_t connects;		/* route counter (route_id) */
};

struct dpv_class {
	uint32_t ns_id;			/* 0: default class (all other clients) */
	char ns_name[GAMMAD_OBJ_NS_LEN];	/* "" when unknown */
	uint32_t sel;
};

struct dpv_frontend {
	struct gammad_fe_key key;
	struct gammad_fe_val val;
	char addr[48];			/* printable ClusterIP */
	uint16_t port;			/* host order */
	const char *proto;		/* "TCP", "UDP" */
	bool named;
	char svc_ns[GAMMAD_OBJ_NS_LEN];
	char svc_name[GAMMAD_OBJ_NAME_LEN];
	char port_name[GAMMAD_OBJ_NS_LEN];
	struct dpv_class *classes;	/* [0] is the default class */
	size_t nr_classes;
	struct gammad_svc_stats stats;
};

struct dpv_fill {
	uint32_t entries;		/* counted keys; max_entries for arrays */
	uint32_t max_entries;
	bool counted;			/* false: the map type cannot be walked */
};

struct dpv_namespace {
	uint32_t id;
	char name[GAMMAD_OBJ_NS_LEN];
};

struct dpv {
	struct dpv_frontend *fes;	/* sorted by Service ns/name, port, address */
	size_t nr_fes;
	struct dpv_selector *sels;	/* sorted by id */
	size_t nr_sels;
	struct dpv_backend *bes;	/* sorted by id */
	size_t nr_bes;
	struct dpv_namespace *nss;	/* from the object table, sorted by id */
	size_t nr_nss;
	size_t nr_objects;
	uint64_t reasons[GAMMAD_R_MAX];
	bool has_tc;			/* the TC path's counters are pinned */
	uint64_t tc[GAMMAD_TC_MAX];	/* enum gammad_tc_reason (dp_tc_reason_name) */
	struct dpv_fill fill[DPV_MAP_COUNT];
};

int dpv_build(const struct dpv_maps *m, struct dpv *v);
void dpv_free(struct dpv *v);

const struct dpv_selector *dpv_selector(const struct dpv *v, uint32_t id);
const struct dpv_backend *dpv_backend(const struct dpv *v, uint32_t id);
/* Name of a namespace id, or NULL. */
const char *dpv_ns_name(const struct dpv *v, uint32_t id);
/* ns_id of a namespace name from the object table, 0 when unknown. */
uint32_t dpv_ns_id(const struct dpv *v, const char *name);
/* Frontend of an address (text) and port (0: first port), or NULL. */
const struct dpv_frontend *dpv_frontend_by_addr(const struct dpv *v, const char *addr,
						uint16_t port, const char *proto);
/* The selector the kernel uses for clients of namespace ns_id. */
uint32_t dpv_class_selector(const struct dpv_frontend *fe, uint32_t ns_id);

/*
 * The endpoint policy in force for a backend (gammad_be_val.flags, policy
 * bits): "local,zone,node,terminating,topology-all" words, then
 * "affinity=ClientIP/<timeout>s" (gammad_be_val.affinity_timeout), "-" for
 * none. One place for every reader.
 */
const char *dpv_be_policy(const struct dpv_backend *b, char *buf, size_t len);
/* The backend of Service ns/name port (its own endpoints), or NULL. */
const struct dpv_backend *dpv_service_backend(const struct dpv *v, const char *ns,
					      const char *name, uint16_t port);

/* "ns/name:port" of a backend, or "backend <id>", in buf. */
const char *dpv_backend_label(const struct dpv_backend *b, char *buf, size_t len);
/* "ns/name rule N", "(no route) selector <id>" or "selector <id>", in buf. */
const char *dpv_selector_label(const struct dpv_selector *s, char *buf, size_t len);
/* "ns/name:port" (or "addr:port") of a frontend, in buf. */
const char *dpv_frontend_label(const struct dpv_frontend *fe, char *buf, size_t len);
/* "10.0.0.1:80" or "[fd00::1]:80" in buf. */
const char *dpv_ep_str(const struct dpv_endpoint *ep, char *buf, size_t len);

#endif
