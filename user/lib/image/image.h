/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The map image: the complete desired contents of the data-path maps, as
 * plain C tables built from a translation. It allocates no kernel ids: every
 * entry is named by a 64-bit id that is either its identity (frontends,
 * backends, namespaces, pods) or its content (endpoint sets, selectors, rule
 * tables), and carries a 64-bit content hash. Two images built from inputs
 * that differ by one route differ only in the entries that route reaches, so
 * img_diff() gives a writer the minimal set of map operations.
 *
 * Tables (all sorted by id, so building is deterministic):
 *  namespaces   name -> ns_id: a stable hash of the name (nonzero; a
 *               collision probes to the next free id in name order), so ids
 *               survive restarts and unrelated changes.
 *  pods         pod UID -> ns_id (the agent finds pod cgroups by UID) and
 *  pod_ips      pod IP -> ns_id.
 *  frontends    (ClusterIP, port, protocol) -> the Service port's identity,
 *               a generation and its classes: the default class (ns_id 0,
 *               all clients) and one per consumer namespace, each naming an
 *               L4 selector and, when the class needs L7, a rule table.
 *  selectors    a weighted set of backends (weights as given, and their
 *               total); identical content is one entry (id = content hash).
 *  rule_tables  the ordered rules of a class (match summary, flags, the
 *               selector of each rule); id = content hash.
 *  backends     (Service ns/name, port, address family) -> endpoint set, with
 *               IMG_BACKEND_UNRESOLVED (500 / ECONNREFUSED) or
 *               IMG_BACKEND_NO_ENDPOINTS (503 / ECONNREFUSED).
 *  endpoint_sets sorted (address, port) lists; id = content hash.
 *
 * Publishing a change of one frontend without exposing half of it:
 *  1. write the endpoint sets, selectors and rule tables that are new (their
 *     ids are their content, so nothing in use is overwritten), and the
 *     backends that changed (one map update each flips a backend to its new,
 *     complete endpoint set);
 *  2. write the frontend's classes under its new generation (classes are
 *     keyed by (generation, ns_id), so the old generation's stay intact);
 *  3. update the frontend entry to the new generation: this single map
 *     update is the moment every connection starts seeing the new table;
 *  4. delete what is no longer referenced (old generation's classes, and the
 *     entries img_diff() reports removed).
 * The generation is derived from the frontend's content hash, so it only
 * changes when the frontend's tables do.
 */
#ifndef GAMMAD_IMAGE_H
#define GAMMAD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "translate/translate.h"

#define IMG_BACKEND_UNRESOLVED (1u << 0)
#define IMG_BACKEND_NO_ENDPOINTS (1u << 1)

#define IMG_SELECTOR_L7_UNENFORCED (1u << 0)
#define IMG_SELECTOR_NO_ROUTE (1u << 1)
/* The class has HTTP rules and the image was built for the HTTP engine. */
#define IMG_SELECTOR_HTTP_ENGINE (1u << 2)

#define IMG_RULE_REDIRECT (1u << 0)
#define IMG_RULE_FILTERS (1u << 1)
#define IMG_RULE_USERSPACE_ONLY (1u << 2)
#define IMG_RULE_GRPC (1u << 3)

#define IMG_CLASS_NEEDS_L7 (1u << 0)

struct img_namespace {
	uint32_t id;
	const char *name;
};

struct img_pod {
	const char *uid;
	uint64_t id;		/* hash of the UID */
	uint32_t ns_id;
	const char *namespace, *name;	/* for the agent's per-pod state and logs */
};

struct img_pod_ip {
	struct ip_addr addr;
	uint32_t ns_id;
	const char *node_name;	/* spec.nodeName, NULL when unset */
};

struct img_endpoint {
	struct ip_addr addr;
	uint16_t port;
};

struct img_endpoint_set {
	uint64_t id;		/* content hash */
	struct img_endpoint *items;
	size_t nr;
};

struct img_backend {
	uint64_t id;		/* hash of ns/name/port/family */
	uint64_t hash;		/* content */
	const char *namespace, *name;
	uint16_t port;
	uint8_t family;
	uint32_t flags;
	uint32_t policy;	/* TR_EP_*: which endpoints this node uses, and why */
	uint64_t endpoint_set;	/* 0 when unresolved */
	uint32_t affinity_timeout;	/* sessionAffinity ClientIP seconds, 0: none */
};

struct img_selector_item {
	uint64_t backend;
	uint32_t weight;
};

struct img_selector {
	uint64_t id;		/* content hash */
	struct img_selector_item *items;
	size_t nr;
	uint64_t total_weight;
	uint32_t flags;
};

struct img_rule {
	const char *route_namespace, *route_name;
	uint16_t rule_index, match_index;
	uint32_t flags;
	const char *match;	/* summary, e.g. "PathPrefix /v2 method GET" */
	uint64_t match_hash;	/* of the match, flags and filter contents */
	uint64_t selector;	/* 0: no backend (redirect or 500) */
};

struct img_rule_table {
	uint64_t id;		/* content hash */
	struct img_rule *items;
	size_t nr;
};

struct img_class {
	uint32_t ns_id;		/* 0: all clients */
	uint32_t flags;
	uint64_t l4_selector;
	uint64_t rule_table;	/* 0 when the class needs no L7 */
	const char *route_namespace;	/* route of its first rule, NULL: no route */
	const char *route_name;
	uint16_t first_rule, last_rule;	/* rule indexes of that route it uses */
};

struct img_frontend {
	uint64_t id;		/* hash of address, port, protocol */
	uint64_t hash;		/* content */
	uint32_t generation;	/* nonzero, from the content hash */
	struct ip_addr addr;
	uint16_t port;
	uint8_t protocol;
	const char *svc_namespace, *svc_name, *port_name;
	struct img_class *classes;
	size_t nr_classes;
};

struct img {
	struct img_namespace *namespaces;
	size_t nr_namespaces;
	struct img_pod *pods;
	size_t nr_pods;
	struct img_pod_ip *pod_ips;
	size_t nr_pod_ips;
	struct img_frontend *frontends;
	size_t nr_frontends;
	struct img_selector *selectors;
	size_t nr_selectors;
	struct img_rule_table *rule_tables;
	size_t nr_rule_tables;
	struct img_backend *backends;
	size_t nr_backends;
	struct img_endpoint_set *endpoint_sets;
	size_t nr_endpoint_sets;
	struct strmap strings;	/* interned strings the tables point to */
	struct strmap ns_by_name;	/* name -> ns_id */
	struct strmap index;	/* build-time dedup; freed by img_build */
};

struct img_opts {
	/*
	 * Mark the L4 selector of every class with HTTP rules (any HTTPRoute
	 * rule) IMG_SELECTOR_HTTP_ENGINE: its TCP connections go to the HTTP
	 * engine. Off: the image is exactly what it was without the engine.
	 */
	bool http_engine;
};

/* Build the image of a translation; the image owns all its memory. */
int img_build(const struct model *m, const struct tr_result *r, struct img *out);
/* The same with options (NULL: img_build()). */
int img_build_opts(const struct model *m, const struct tr_result *r,
		   const struct img_opts *opts, struct img *out);
void img_free(struct img *img);
/*
 * The pods and pod IPs tables of img again from m's pods, with img's
 * namespace ids (the namespaces the pods name must be in img already).
 */
int img_rebuild_pods(struct img *img, const struct model *m);
/* The id of the image backend of tb for family (whether or not an image has it). */
uint64_t img_backend_id(const struct tr_backend *tb, uint8_t family);
/* ns_id of a namespace name, 0 when the image does not know it. */
uint32_t img_ns_id(const struct img *img, const char *name);

enum img_table {
	IMG_NAMESPACES, IMG_PODS, IMG_POD_IPS, IMG_FRONTENDS, IMG_SELECTORS,
	IMG_RULE_TABLES, IMG_BACKENDS, IMG_ENDPOINT_SETS, IMG_TABLE_COUNT,
};

enum img_change_op { IMG_ADDED, IMG_REMOVED, IMG_CHANGED };

struct img_change {
	enum img_table table;
	enum img_change_op op;
	uint64_t id;
};

struct img_diff {
	struct img_change *items;
	size_t nr;
	size_t counts[IMG_TABLE_COUNT][3];	/* per table and op */
};

/* What changed from old to new, entry by entry, in table then id order. */
int img_diff(const struct img *old, const struct img *new, struct img_diff *out);
void img_diff_free(struct img_diff *d);
const char *img_table_name(enum img_table t);

/*
 * A Service port (frontend) and an endpoint it reaches (through any class,
 * route and backend). img_removed_endpoints() gives the pairs old has and
 * new does not: what connections through that Service port may still point
 * at after new is applied. An endpoint that leaves one Service but stays in
 * another counts only for the first. *out is malloc'd (NULL when none).
 */
struct img_reach {
	struct ip_addr addr;	/* ClusterIP of the frontend */
	uint16_t port;
	uint8_t protocol;
	struct img_endpoint ep;
};

int img_removed_endpoints(const struct img *old, const struct img *new,
			  struct img_reach **out, size_t *nr);

/*
 * Index of id in one of an image's tables (each sorted by its first field,
 * the 64-bit id), or -1.
 */
long img_find_id(const void *base, size_t nr, size_t size, uint64_t id);

/*
 * An image saved to a file and read back (image_snap.c), so that a restart
 * with unchanged input skips parsing and translating. key says what the
 * image was made from (the caller's digest of its input and options);
 * note is the caller's too, kept as is. The file is checked whole (magic,
 * length, hash, every count against what is left, tables in id order)
 * before anything is used: img_snap_load() returns -ENOENT (no file),
 * -ESTALE (made from something else), -EBADMSG (corrupt, truncated, not
 * ours) or -ENOMEM. A snapshot only replaces the translation: the apply
 * still compares every entry with the kernel.
 */
#define IMG_SNAP_NOTE 64
int img_snap_save(const struct img *img, const char *path, uint64_t key,
		  const uint8_t note[IMG_SNAP_NOTE]);
int img_snap_load(const char *path, uint64_t key, struct img *out,
		  uint8_t note[IMG_SNAP_NOTE]);
#define IMG_INDEX(img, table, id) \
	img_find_id((img)->table, (img)->nr_##table, sizeof((img)->table[0]), (id))

#endif
