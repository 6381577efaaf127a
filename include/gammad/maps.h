/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every BPF map key and value of the gammad data path, shared by the BPF
 * programs (bpf/) and the agent (user/). No vmlinux.h here: only
 * <linux/types.h>, so both sides compile it the same way. Every type is
 * prefixed gammad_ (vmlinux.h already has `struct key`, `struct backend`...).
 *
 * Layout rules:
 * - Fields are naturally aligned and padding is explicit (`pad`), so the
 *   sizes below hold on every ABI and keys hash the same on both sides
 *   (userspace must zero keys before filling them: memset or `= {}`).
 * - A layout change gets a new map name (the _vN suffix), so a new agent can
 *   build the new map beside the old one instead of flushing live state.
 * - Addresses are 16 bytes: IPv4 in the first 4 bytes, the rest zero.
 *   Ports are in network byte order (__be16) everywhere.
 *
 * Publication (see user/lib/datapath.h): a Service port's route table is a
 * tree frontend -> (consumer) -> selector -> alias slots -> backend ->
 * endpoints. Everything below the frontend is written under fresh ids, then
 * the frontend entry is updated once (new table_gen/default_sel): a connect()
 * sees either the whole old table or the whole new one. Old ids are deleted
 * only after the programs that may still read them have finished.
 */
#ifndef GAMMAD_MAPS_H
#define GAMMAD_MAPS_H

/*
 * BPF objects include vmlinux.h first (bpf/lib/common.h), which has the
 * __u8..__be16 typedefs; <linux/types.h> would pull <asm/types.h>, absent
 * from the BPF target's include path.
 */
#ifndef __bpf__
#include <linux/types.h>
#endif

/*
 * Address arrays are 4-byte aligned so both sides may access them as __u32
 * words (the BPF contexts hold addresses as __u32[4]); no size changes.
 */
#define GAMMAD_ALIGN4 __attribute__((aligned(4)))

/* TEST ONLY: the next layout's maps replace three of these (layout_next.h). */
#ifdef GAMMAD_LAYOUT_NEXT
#include "gammad/layout_next.h"
#endif

/*
 * Map names, pinned as <pin_dir>/<name>; at most 15 characters. The BPF
 * side defines them under the same identifiers (bpf/lib/maps.h).
 */
#define GAMMAD_MAP_FRONTEND	"gammad_fe_v1"
#define GAMMAD_MAP_CONSUMER	"gammad_cons_v1"
#define GAMMAD_MAP_CGROUP_NS	"gammad_cgns_v1"
#define GAMMAD_MAP_SELECTOR	"gammad_sel_v1"
#define GAMMAD_MAP_ALIAS	"gammad_alias_v1"
#ifndef GAMMAD_LAYOUT_NEXT
#define GAMMAD_MAP_BACKEND	"gammad_be_v2"
#define GAMMAD_MAP_SVC_STATS	"gammad_svcst_v1"
#endif
#define GAMMAD_MAP_ENDPOINT	"gammad_ep_v1"
#define GAMMAD_MAP_BE_STATS	"gammad_best_v1"
#define GAMMAD_MAP_ROUTE_STATS	"gammad_rtst_v1"
#define GAMMAD_MAP_DROPS	"gammad_drop_v1"
#define GAMMAD_MAP_SOCK_ORIG	"gammad_sko_v1"
#define GAMMAD_MAP_REVNAT	"gammad_rnat_v1"
#define GAMMAD_MAP_LOCAL_EP	"gammad_lep_v1"
#define GAMMAD_MAP_SOCKHASH	"gammad_sockh_v1"
#define GAMMAD_MAP_ENGINE_SOCKHASH "gammad_esockh_v1"
#define GAMMAD_MAP_SOCK_REDIR	"gammad_skr_v1"
#define GAMMAD_MAP_OBJECTS	"gammad_obj_v1"
#define GAMMAD_MAP_AFFINITY	"gammad_aff_v1"
#define GAMMAD_MAP_RELEASE	"gammad_rel_v1"	/* bpf/sock_iter.bpf.c: removed endpoints */
#define GAMMAD_MAP_ORIGDST	"gammad_origdst_v1"
#define GAMMAD_MAP_ENGINE_NS	"gammad_engns_v1"
#define GAMMAD_MAP_SOCK_ENGINE	"gammad_ske_v1"

/* Fixed limits the programs depend on. */
#define GAMMAD_MAX_CGROUP_DEPTH	16	/* ancestor levels searched for a client class */
#define GAMMAD_MAX_WEIGHT	1000000	/* Gateway API maximum backendRef weight */
#define GAMMAD_MAX_WEIGHT_SUM	0xffffffffU	/* total_weight is a __u32 */
#define GAMMAD_NS_ALL		0	/* ns_id of "unknown client": never a consumer */
#define GAMMAD_ENGINE_PORT_DEFAULT 15006	/* HTTP engine listener in each pod (loopback) */

/* ---- frontend: Service ClusterIP:port/proto -> route table ----------- */

struct gammad_fe_key {
	__u8 addr[16] GAMMAD_ALIGN4;
	__be16 port;
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP */
	__u8 family;		/* AF_INET, AF_INET6 */
};

enum gammad_fe_flags {
	GAMMAD_FE_HAS_CONSUMERS	= 1 << 0,	/* look up the client class */
	GAMMAD_FE_L7_UNENFORCED	= 1 << 1,	/* routes have L7 rules the L4 path ignores */
};

struct gammad_fe_val {
	__u32 svc_port_id;	/* dense index into the per-Service-port counters */
	__u32 table_gen;	/* route table id: key of consumer entries */
	__u32 flags;		/* enum gammad_fe_flags */
	__u32 default_sel;	/* selector for clients without a consumer table */
};

/* ---- consumer: (table, client namespace) -> selector ----------------- */

struct gammad_cons_key {
	__u32 table_gen;
	__u32 ns_id;
};

struct gammad_cons_val {
	__u32 sel;
};

/* ---- client class: cgroup id -> namespace id -------------------------- */

/* Key: __u64 cgroup v2 id (the inode of the cgroup directory). */
struct gammad_cgns_val {
	__u32 ns_id;
};

/* ---- selector + alias table: weighted choice of a backend ------------ */

enum gammad_sel_flags {
	GAMMAD_SEL_NO_ROUTE_BACKENDS = 1 << 0,	/* no backendRef with weight > 0 */
	/*
	 * The class has HTTP rules: a TCP connect() goes to the agent's HTTP
	 * engine listener on loopback in the client's own netns (engine port,
	 * a load-time constant of bpf/sock_addr.bpf.c), which decides per
	 * request. Written only by an agent running its HTTP engine.
	 */
	GAMMAD_SEL_HTTP_ENGINE = 1 << 1,
};

struct gammad_sel_val {
	__u32 nr_slots;		/* alias slots 0..nr_slots-1 */
	__u32 total_weight;	/* sum of the weights, the threshold scale */
	__u32 flags;		/* enum gammad_sel_flags */
	__u32 route_id;		/* dense index into the per-route counters */
};

/*
 * Vose's alias method in integers: pick slot = rand % nr_slots and
 * r = rand % total_weight; the slot's primary wins when r < threshold, its
 * alias otherwise. Backend i then has the exact probability
 * weight_i / total_weight (see user/lib/alias.h).
 */
struct gammad_alias_key {
	__u32 sel_id;
	__u32 slot;
};

struct gammad_alias_val {
	__u32 threshold;	/* in [0, total_weight] */
	__u32 primary;		/* be_id */
	__u32 alias;		/* be_id */
};

/* ---- backend (a Service port a route points to) and its endpoints ---- */

enum gammad_be_flags {
	GAMMAD_BE_UNRESOLVED	= 1 << 0,	/* backendRef did not resolve: refuse */
	GAMMAD_BE_NO_ENDPOINTS	= 1 << 1,	/* Service has no usable endpoint: refuse */
	/*
	 * Why these endpoints (the agent chose them for this node; the
	 * programs ignore these bits, gammactl shows them). Bits 8-15 are
	 * kept for load-balancing settings of the Service (session affinity).
	 */
	GAMMAD_BE_LOCAL_ONLY	= 1 << 2,	/* internalTrafficPolicy Local */
	GAMMAD_BE_ZONE		= 1 << 3,	/* trafficDistribution: this zone's */
	GAMMAD_BE_NODE		= 1 << 4,	/* PreferSameNode: this node's */
	GAMMAD_BE_TERMINATING	= 1 << 5,	/* no ready endpoint: terminating fallback */
	GAMMAD_BE_TOPOLOGY_ALL	= 1 << 6,	/* trafficDistribution, none close: all */
};

/*
 * v2: affinity_timeout. A backend is a Service port (per address family),
 * whether a connection reaches it as a Service without routes or as a
 * route's backendRef: its Service's sessionAffinity travels with it.
 */
#ifndef GAMMAD_LAYOUT_NEXT
struct gammad_be_val {
	__u32 ep_set;		/* key prefix of the endpoint entries */
	__u32 nr_endpoints;	/* endpoints 0..nr_endpoints-1 */
	__u32 flags;		/* enum gammad_be_flags */
	__u32 affinity_timeout;	/* sessionAffinity ClientIP: seconds; 0: none */
};
#endif

struct gammad_ep_key {
	__u32 ep_set;
	__u32 idx;
};

struct gammad_ep_val {
	__u8 addr[16] GAMMAD_ALIGN4;
	__be16 port;
	__u8 family;
	__u8 flags;		/* reserved, 0 */
};

/*
 * The endpoints of a set are written sorted by (family, address bytes,
 * port in host order), as the translator sorts them: session affinity
 * finds a remembered endpoint in a changed set by binary search.
 */

/* ---- session affinity (sessionAffinity: ClientIP) ----------------------- */

/*
 * Who a client is. Per packet (TC path) it is the source address, as for
 * kube-proxy. At connect time the source address is not chosen yet; the
 * client is its network namespace (one per pod, as Cilium's socket LB
 * keys it): `client` then holds the netns cookie in its first 8 bytes.
 */
enum gammad_aff_kind {
	GAMMAD_AFF_NETNS = 1,		/* client: bpf_get_netns_cookie() */
	GAMMAD_AFF_INET = 2,		/* AF_INET: client is the IPv4 source */
	GAMMAD_AFF_INET6 = 10,		/* AF_INET6: the IPv6 source */
};

/* LRU hash: one entry per (backend, client) that connected recently. */
struct gammad_aff_key {
	__u32 be_id;		/* the backend Service port */
	__u8 kind;		/* enum gammad_aff_kind */
	__u8 pad[3];
	__u8 client[16] GAMMAD_ALIGN4;
};

struct gammad_aff_val {
	struct gammad_ep_val ep;	/* the endpoint this client sticks to */
	__u32 idx;		/* its index in the set it was last seen in */
	__u64 last_used;	/* bpf_ktime_get_coarse_ns() of the last connection */
};

/*
 * last_used restarts at most this often (kube-proxy's timeouts are whole
 * seconds): a write per connection would bounce the entry between CPUs.
 * The HTTP engine keeps the same entries by the same rules.
 */
#define GAMMAD_AFF_REFRESH_NS	100000000ULL

/*
 * Key of gammad_rel_v1 (bpf/sock_iter.bpf.c): a Service port and an
 * endpoint it no longer reaches. Sockets that connect() sent from that
 * ClusterIP:port to that endpoint are destroyed, and the TC path's flows
 * of the pair forgotten. IPv4 ClusterIPs are AF_INET even when a dual-stack
 * socket dialed them v4-mapped.
 */
struct gammad_rel_key {
	__u8 vip[16] GAMMAD_ALIGN4;	/* ClusterIP */
	__u8 ep[16] GAMMAD_ALIGN4;	/* endpoint */
	__be16 vip_port;
	__be16 ep_port;
	__u8 family;		/* of both: an endpoint of another family is never reached */
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP */
	__u8 pad[2];
};

/* ---- counters (per-CPU arrays; userspace sums the CPUs) -------------- */

#ifndef GAMMAD_LAYOUT_NEXT
struct gammad_svc_stats {
	__u64 connects;		/* connect/sendmsg translated to an endpoint */
	__u64 no_backend;	/* no route backend: selector/alias/backend missing or empty */
	__u64 no_endpoint;	/* backend with no endpoints */
	__u64 refused;		/* connections refused (ECONNREFUSED / dropped datagram) */
	__u64 l7_unenforced;	/* translated, but the route's L7 rules were ignored */
};
#endif

struct gammad_be_stats {
	__u64 connects;
};

struct gammad_route_stats {
	__u64 connects;
};

/* Index of the global per-CPU drop/miss counter array. */
enum gammad_reason {
	GAMMAD_R_OK = 0,
	GAMMAD_R_NO_SELECTOR,		/* frontend/consumer names a missing selector */
	GAMMAD_R_NO_ROUTE_BACKENDS,	/* selector without weighted backends */
	GAMMAD_R_NO_ALIAS,		/* alias slot missing */
	GAMMAD_R_NO_BACKEND,		/* backend entry missing */
	GAMMAD_R_BE_UNRESOLVED,		/* backendRef unresolved */
	GAMMAD_R_BE_NO_ENDPOINTS,	/* backend without endpoints */
	GAMMAD_R_NO_ENDPOINT,		/* endpoint entry missing */
	GAMMAD_R_FAMILY,		/* endpoint family cannot be reached from this socket */
	GAMMAD_R_SOCK_STORAGE,		/* no socket storage for the original address */
	GAMMAD_R_REVNAT_FULL,		/* reverse NAT entry could not be stored */
	GAMMAD_R_STATS_RANGE,		/* counter id beyond the configured arrays */
	GAMMAD_R_SOCKHASH_UPDATE,	/* local socket could not enter the sockhash */
	GAMMAD_R_REDIR_NO_PEER,		/* sk_msg: peer socket not in the sockhash */
	GAMMAD_R_ORIGDST_UPDATE,	/* engine connection's original destination not stored */
	GAMMAD_R_ENGINE_GONE,		/* steered netns without a live engine listener: L4 */
	GAMMAD_R_REDIR_SLOW_READER,	/* sk_msg: peer lagged beyond the cap, TCP for good */
	GAMMAD_R_MAX,
};

/* Size of the reason array: room for new reasons without a new map name. */
#define GAMMAD_R_SLOTS		64
_Static_assert(GAMMAD_R_MAX <= GAMMAD_R_SLOTS, "gammad_reason");

/* ---- per-socket state ------------------------------------------------- */

/* Socket storage: the Service address a connected socket really talks to. */
enum gammad_sock_orig_flags {
	/* be_addr is the HTTP engine listener: sockops records the origin */
	GAMMAD_SKO_ENGINE = 1 << 0,
};

struct gammad_sock_orig {
	__u8 vip[16] GAMMAD_ALIGN4;
	__u8 be_addr[16] GAMMAD_ALIGN4;	/* the endpoint the socket was sent to */
	__be16 vip_port;
	__be16 be_port;
	__u8 family;		/* family of vip/be_addr as seen by the socket */
	__u8 flags;		/* enum gammad_sock_orig_flags (was padding: 0) */
	__u8 pad[2];
};

/*
 * The HTTP engine's view of a steered connection (LRU hash, written by
 * sockops at ACTIVE_ESTABLISHED, looked up and deleted by the agent when it
 * accepts the connection). The engine listener is per pod, so its netns
 * cookie (SO_NETNS_COOKIE) and the client's source port name the socket;
 * family is the family of the connection as the listener sees it (a v6
 * socket connected to ::ffff:127.0.0.1 is AF_INET, as its listener is).
 */
struct gammad_origdst_key {
	__u64 netns_cookie;
	__be16 port;		/* client's source port */
	__u8 family;		/* AF_INET, AF_INET6 */
	__u8 pad[5];
};

struct gammad_origdst_val {
	__u8 vip[16] GAMMAD_ALIGN4;	/* the ClusterIP dialed (IPv4: first 4 bytes) */
	__be16 vip_port;
	__u8 family;		/* of vip: AF_INET also for a v4-mapped dial */
	__u8 pad;
	__u32 ns_id;		/* client class connect() used (GAMMAD_NS_ALL: none) */
};

/*
 * Socket storage of a steered socket: the client class connect() decided
 * with (a netns may hold several pods' processes: host-network pods), so
 * the engine uses exactly the class the kernel used.
 */
struct gammad_sock_engine {
	__u32 ns_id;
};

/*
 * Network namespaces where the agent listens on the engine port (key: the
 * netns cookie, __u64). connect() steers only into a netns listed here; a
 * client elsewhere (a pod the agent has no listener for yet, no agent) keeps
 * the L4 path instead of meeting a closed port.
 */
struct gammad_engns_val {
	__u32 flags;		/* reserved, 0 */
};

/*
 * Reverse NAT of datagrams (LRU hash): a reply from an endpoint to a socket
 * that sent to a ClusterIP must appear to come from the ClusterIP. Keyed by
 * the socket cookie and the endpoint, as one unconnected UDP socket may talk
 * to several Services.
 */
struct gammad_revnat_key {
	__u64 cookie;
	__u8 addr[16] GAMMAD_ALIGN4;		/* endpoint */
	__be16 port;
	__u8 family;
	__u8 pad[5];
};

struct gammad_revnat_val {
	__u8 addr[16] GAMMAD_ALIGN4;		/* ClusterIP */
	__be16 port;
	__u8 pad[2];
};

/* ---- same-node socket redirect ------------------------------------------ */

/* Local endpoint (pod IP on this node): key of GAMMAD_MAP_LOCAL_EP. */
struct gammad_lep_key {
	__u8 addr[16] GAMMAD_ALIGN4;
	__u8 family;
	__u8 pad[3];
};

struct gammad_lep_val {
	__u32 flags;		/* reserved, 0 */
};

/*
 * SOCKHASH key: the 4-tuple of an established TCP socket as it sees itself.
 * Both ends are pod IPs of this node, unique on the node, and a socket
 * leaves the map when it closes, before its tuple can be reused.
 */
struct gammad_sock_key {
	__u8 local[16] GAMMAD_ALIGN4;
	__u8 remote[16] GAMMAD_ALIGN4;
	__be16 local_port;
	__be16 remote_port;
	__u8 family;
	__u8 pad[3];
};

/*
 * SOCKHASH key of a connection steered to the HTTP engine (both ends on
 * loopback in the client pod's netns, one of them the engine's port), as
 * the socket sees itself. Loopback tuples repeat from pod to pod, so the
 * netns cookie is part of the key.
 */
struct gammad_esock_key {
	__u64 netns_cookie;
	__be16 local_port;
	__be16 remote_port;
	__u8 family;
	__u8 pad[3];
};

/*
 * Socket storage: the redirect decision of a socket, taken at its first
 * message; the one later move is from PEER to SLOW_READER.
 */
enum gammad_redir_state {
	GAMMAD_REDIR_UNDECIDED = 0,
	GAMMAD_REDIR_PEER,		/* every message goes to the peer's ingress */
	GAMMAD_REDIR_TCP,		/* peer missing at first send: TCP for good */
	GAMMAD_REDIR_SLOW_READER,	/* peer lagged beyond the cap: TCP for good */
};

/*
 * Bytes a redirected socket may find queued at its peer before it leaves
 * the redirect for TCP (sk_msg, a load-time constant). The kernel does not
 * bound the peer's ingress queue. Over TCP, a reader that stops holds one
 * receive buffer and its sender up to tcp_wmem[2] (4 MiB by default) in
 * its send buffer; a redirected sender keeps nothing (bytes move at once),
 * so the peer may hold that much instead. The peer's own receive buffer is
 * no measure: it never autotunes on the redirect and stays at tcp_rmem[1]
 * (128 KiB), less than one large write() to a reader not scheduled yet.
 */
#define GAMMAD_SOCKMAP_CAP_DEFAULT	(4u << 20)

struct gammad_sock_redir {
	__u32 state;		/* enum gammad_redir_state */
};

/* ---- object table: what each kernel id stands for ------------------------ */

/*
 * Written by the agent only; no program reads it. For every id the agent
 * allocated it records the image object behind it (identity or content
 * hash), the hash of what is written under the id (0 while being written)
 * and the Gateway API names. A restarted agent rebuilds its id allocation
 * from this table and reconciles against it instead of flushing; gammactl
 * and `bpftool map dump` show names from it.
 */
enum gammad_obj_kind {
	GAMMAD_OBJ_FRONTEND = 1,	/* id: svc_port_id (a Service port) */
	GAMMAD_OBJ_TABLE,		/* id: table_gen (a frontend's route table) */
	GAMMAD_OBJ_SELECTOR,		/* id: sel_id, also the route_id of counters */
	GAMMAD_OBJ_BACKEND,		/* id: be_id (a Service port routes point to) */
	GAMMAD_OBJ_ENDPOINT_SET,	/* id: ep_set */
	GAMMAD_OBJ_NAMESPACE,		/* id: ns_id */
	GAMMAD_OBJ_KH_TABLE,		/* id: tab of gammad_khtab_v1 (kernel HTTP) */
	GAMMAD_OBJ_KIND_MAX,
};

struct gammad_obj_key {
	__u32 kind;		/* enum gammad_obj_kind */
	__u32 id;
};

#define GAMMAD_OBJ_NS_LEN	64	/* a namespace name is at most 63 bytes */
#define GAMMAD_OBJ_NAME_LEN	128	/* longer names are cut (with a warning) */

struct gammad_obj_val {
	__u64 ident;		/* image id: identity hash or content hash */
	__u64 hash;		/* content written under the id; 0: incomplete */
	__u8 addr[16] GAMMAD_ALIGN4;	/* FRONTEND: the ClusterIP */
	__u32 ref;		/* FRONTEND: its table_gen; TABLE: its svc_port_id;
				 * ENDPOINT_SET: number of endpoints */
	__u16 port;		/* FRONTEND, BACKEND: Service port (host order) */
	__u8 family;		/* FRONTEND, BACKEND: AF_INET, AF_INET6 */
	__u8 proto;		/* FRONTEND: IPPROTO_TCP, IPPROTO_UDP */
	char namespace[GAMMAD_OBJ_NS_LEN];	/* of the Service / route / namespace */
	char name[GAMMAD_OBJ_NAME_LEN];		/* FRONTEND, BACKEND: Service;
						 * SELECTOR: route that uses it
						 * (empty: plain Kubernetes);
						 * NAMESPACE: its name */
	char section[GAMMAD_OBJ_NS_LEN];	/* FRONTEND: port name;
						 * SELECTOR: "rule N" */
};

_Static_assert(sizeof(struct gammad_fe_key) == 20, "gammad_fe_key");
_Static_assert(sizeof(struct gammad_fe_val) == 16, "gammad_fe_val");
_Static_assert(sizeof(struct gammad_cons_key) == 8, "gammad_cons_key");
_Static_assert(sizeof(struct gammad_cons_val) == 4, "gammad_cons_val");
_Static_assert(sizeof(struct gammad_cgns_val) == 4, "gammad_cgns_val");
_Static_assert(sizeof(struct gammad_sel_val) == 16, "gammad_sel_val");
_Static_assert(sizeof(struct gammad_alias_key) == 8, "gammad_alias_key");
_Static_assert(sizeof(struct gammad_alias_val) == 12, "gammad_alias_val");
#ifndef GAMMAD_LAYOUT_NEXT
_Static_assert(sizeof(struct gammad_be_val) == 16, "gammad_be_val");
_Static_assert(sizeof(struct gammad_svc_stats) == 40, "gammad_svc_stats");
#endif
_Static_assert(sizeof(struct gammad_ep_key) == 8, "gammad_ep_key");
_Static_assert(sizeof(struct gammad_ep_val) == 20, "gammad_ep_val");
_Static_assert(sizeof(struct gammad_aff_key) == 24, "gammad_aff_key");
_Static_assert(sizeof(struct gammad_aff_val) == 32, "gammad_aff_val");
_Static_assert(sizeof(struct gammad_rel_key) == 40, "gammad_rel_key");
_Static_assert(sizeof(struct gammad_be_stats) == 8, "gammad_be_stats");
_Static_assert(sizeof(struct gammad_route_stats) == 8, "gammad_route_stats");
_Static_assert(sizeof(struct gammad_sock_orig) == 40, "gammad_sock_orig");
_Static_assert(sizeof(struct gammad_revnat_key) == 32, "gammad_revnat_key");
_Static_assert(sizeof(struct gammad_origdst_key) == 16, "gammad_origdst_key");
_Static_assert(sizeof(struct gammad_origdst_val) == 24, "gammad_origdst_val");
_Static_assert(sizeof(struct gammad_sock_engine) == 4, "gammad_sock_engine");
_Static_assert(sizeof(struct gammad_engns_val) == 4, "gammad_engns_val");
_Static_assert(sizeof(struct gammad_revnat_val) == 20, "gammad_revnat_val");
_Static_assert(sizeof(struct gammad_lep_key) == 20, "gammad_lep_key");
_Static_assert(sizeof(struct gammad_lep_val) == 4, "gammad_lep_val");
_Static_assert(sizeof(struct gammad_sock_key) == 40, "gammad_sock_key");
_Static_assert(sizeof(struct gammad_esock_key) == 16, "gammad_esock_key");
_Static_assert(sizeof(struct gammad_sock_redir) == 4, "gammad_sock_redir");
_Static_assert(sizeof(struct gammad_obj_key) == 8, "gammad_obj_key");
_Static_assert(sizeof(struct gammad_obj_val) == 296, "gammad_obj_val");
_Static_assert(_Alignof(struct gammad_fe_key) == 4, "gammad_fe_key align");
_Static_assert(_Alignof(struct gammad_ep_val) == 4, "gammad_ep_val align");
_Static_assert(_Alignof(struct gammad_lep_key) == 4, "gammad_lep_key align");
_Static_assert(_Alignof(struct gammad_sock_key) == 4, "gammad_sock_key align");
_Static_assert(_Alignof(struct gammad_sock_orig) == 4, "gammad_sock_orig align");

/* ==== HTTP/1.1 in the kernel: rule tables (bpf/lib/khttp.h) ============ */
/*
 * The HTTP rules of one Service port and client class, encoded by the agent
 * (user/lib/khttp/) when the kernel can evaluate them exactly as the
 * engine's evaluator (user/lib/translate/translate_eval.h) does; a table it
 * cannot encode exactly is written with engine_reason set, and every
 * request of that class goes to the engine. A table is keyed by a fresh
 * id, found through gammad_khcls_v1 from the frontend's table_gen and the
 * client class, and everything below it by (table, index): a new version
 * is written aside under a new id and published by the one frontend update
 * that flips the generation, as for L4. `gammad run --kernel-http` writes
 * them (user/lib/image/image_khttp.c); bpf/khttp.bpf.c reads them.
 *
 * Strings are stored with their length and, for names, a hash of their
 * lowercased bytes (gammad_kh_hash_byte), so the kernel compares bytes
 * only where length and hash agree.
 */
#define GAMMAD_MAP_KH_CLASS	"gammad_khcls_v1"
#define GAMMAD_MAP_KH_TABLE	"gammad_khtab_v1"
#define GAMMAD_MAP_KH_ENTRY	"gammad_khent_v1"
#define GAMMAD_MAP_KH_RULE	"gammad_khrul_v1"
#define GAMMAD_MAP_KH_RB	"gammad_khrb_v1"
#define GAMMAD_MAP_KH_ALIAS	"gammad_khal_v1"
#define GAMMAD_MAP_KH_STATS	"gammad_khst_v1"

/*
 * What the kernel parser and matcher can hold; the encoder sends a table
 * that needs more to the engine, the parser a request that needs more.
 */
#define GAMMAD_KH_HEAD_MAX	4096	/* request line + headers, bytes (power of 2) */
#define GAMMAD_KH_FIELDS_MAX	32	/* header fields per request */
#define GAMMAD_KH_QUERY_MAX	16	/* query parameters a request may have */
#define GAMMAD_KH_STR_MAX	256	/* a path, header/query name or value */
#define GAMMAD_KH_METHOD_MAX	32	/* the engine answers 501 from 32 bytes on */
#define GAMMAD_KH_CONDS_MAX	8	/* header + query conditions per match */
#define GAMMAD_KH_ENTRIES_MAX	64	/* matches (table entries) per table */
#define GAMMAD_KH_REMOVE_MAX	8	/* header names a rule/backend pair removes */
#define GAMMAD_KH_APPEND_MAX	256	/* header lines it appends, serialized */

/* FNV-1a over ASCII-lowercased bytes: the name hash of both sides. */
#define GAMMAD_KH_HASH_INIT	2166136261U
static inline __u32 gammad_kh_hash_byte(__u32 h, __u8 c)
{
	if (c >= 'A' && c <= 'Z')
		c |= 0x20;
	return (h ^ c) * 16777619U;
}

struct gammad_kh_str {
	__u16 len;
	__u16 pad;
	__u32 hash;		/* names: gammad_kh_hash_byte over s[0..len) */
	char s[GAMMAD_KH_STR_MAX];
};

/* Why a table goes to the engine (gammad_kh_table.engine_reason). */
enum gammad_kh_tab_reason {
	GAMMAD_KH_TAB_OK = 0,		/* the kernel serves it */
	GAMMAD_KH_TAB_NOT_HTTP,		/* gRPC, TLS, TCP, or no route */
	GAMMAD_KH_TAB_REGEX,		/* a RegularExpression match */
	GAMMAD_KH_TAB_TOO_MANY_ENTRIES,
	GAMMAD_KH_TAB_TOO_MANY_CONDS,
	GAMMAD_KH_TAB_STRING,		/* a string longer than GAMMAD_KH_STR_MAX */
	GAMMAD_KH_TAB_RESPONSE_FILTER,	/* ResponseHeaderModifier */
	GAMMAD_KH_TAB_MIRROR,		/* RequestMirror */
	GAMMAD_KH_TAB_OTHER_FILTER,	/* ExtensionRef, CORS, ExternalAuth, unknown */
	GAMMAD_KH_TAB_RETRY,		/* retry: the kernel cannot send twice */
	GAMMAD_KH_TAB_TIMEOUT,		/* request/backend timeouts */
	GAMMAD_KH_TAB_REWRITES,		/* more than one path rewrite on a request */
	GAMMAD_KH_TAB_HEADER_EDITS,	/* more edits than the kernel holds */
	GAMMAD_KH_TAB_FIELD_VALUE,	/* a filter value that is no field value */
	GAMMAD_KH_TAB_MAX,
};

/*
 * Which table a connection's requests are matched against: key (the
 * frontend's table_gen, the client's ns_id; GAMMAD_NS_ALL for the default
 * class), written with the consumer entries of that generation, so the
 * frontend update that flips the L4 classes flips these too. A client
 * whose namespace has no entry uses the default class's, as for L4.
 */
struct gammad_kh_class_val {
	__u32 tab;		/* key of gammad_khtab_v1 */
};

struct gammad_kh_table {
	__u32 nr_entries;	/* entries 0..nr_entries-1, in precedence order */
	__u32 engine_reason;	/* enum gammad_kh_tab_reason; != 0: all to the engine */
	__u16 port;		/* the Service port (host order): redirects keep it */
	__u16 pad;
	__u32 flags;		/* GAMMAD_KH_TAB_F_* */
};

/*
 * No rule backend of the table has response edits (no GAMMAD_KH_RB_RESP
 * record): the client side need not look for one per request. Tables
 * written without it (0, an earlier agent's) are looked up as before.
 */
#define GAMMAD_KH_TAB_F_NO_RESP	(1u << 0)
/*
 * No rule backend of the table edits the request (no field removed or
 * appended, no path rewrite): a FORWARD goes as it came, and the client
 * side neither looks its record up again nor edits. 0 in tables written
 * without it: edited as before.
 */
#define GAMMAD_KH_TAB_F_NO_EDIT	(1u << 1)

struct gammad_kh_key {
	__u32 tab;
	__u32 idx;
};

enum gammad_kh_path {
	GAMMAD_KH_PATH_ANY = 0,		/* PathPrefix "/" or no match at all */
	GAMMAD_KH_PATH_EXACT,
	GAMMAD_KH_PATH_PREFIX,		/* segment-aware, trailing '/' already dropped */
};

enum gammad_kh_cond_kind {
	GAMMAD_KH_COND_HEADER = 1,	/* first field of the name (any case), value exact */
	GAMMAD_KH_COND_QUERY,		/* first parameter of the name, value exact */
};

struct gammad_kh_cond {
	__u32 kind;		/* enum gammad_kh_cond_kind */
	struct gammad_kh_str name;
	struct gammad_kh_str value;
};

/* One match of a rule: a row of the table. */
struct gammad_kh_entry {
	__u32 rule;		/* index of its rule in gammad_khrul_v1 */
	__u8 path_type;		/* enum gammad_kh_path */
	__u8 nr_conds;
	__u8 method_len;	/* 0: any method */
	__u8 pad;
	__u32 rewrite_plen;	/* ReplacePrefixMatch: path bytes the match replaces */
	char method[GAMMAD_KH_METHOD_MAX];
	struct gammad_kh_str path;
	struct gammad_kh_cond conds[GAMMAD_KH_CONDS_MAX];
};

enum gammad_kh_rewrite_type {
	GAMMAD_KH_RW_NONE = 0,
	GAMMAD_KH_RW_FULL,		/* ReplaceFullPath: the query is kept */
	GAMMAD_KH_RW_PREFIX,		/* ReplacePrefixMatch */
};

struct gammad_kh_rewrite {
	__u32 type;		/* enum gammad_kh_rewrite_type */
	struct gammad_kh_str value;
};

enum gammad_kh_rule_kind {
	GAMMAD_KH_RULE_BACKENDS = 1,	/* weighted pick of a rule backend (alias) */
	GAMMAD_KH_RULE_REDIRECT,	/* RequestRedirect: status + Location */
	GAMMAD_KH_RULE_FAIL,		/* no backend of weight > 0: 500 */
};

enum gammad_kh_rule_flags {
	GAMMAD_KH_RULE_REQ_HOST = 1 << 0,	/* Location host: the request's Host */
	/*
	 * BACKENDS: every draw of the alias table picks rule backend one_rb
	 * (one backend of weight > 0, say): the kernel takes it without
	 * looking the alias slot up. 0 in tables written without it.
	 */
	GAMMAD_KH_RULE_ONE_RB = 1 << 1,
};

/*
 * A redirect's Location is loc_prefix ("scheme://" and the filter's
 * hostname), the request's host when GAMMAD_KH_RULE_REQ_HOST, loc_port
 * (":port" or ""), then the path as `path` rewrites it.
 */
struct gammad_kh_rule {
	__u32 kind;		/* enum gammad_kh_rule_kind */
	__u32 status;		/* REDIRECT: 301..308; FAIL: 500 */
	__u32 nr_slots;		/* BACKENDS: alias slots (gammad_khal_v1) */
	__u32 total_weight;
	__u32 flags;		/* enum gammad_kh_rule_flags */
	__u32 one_rb;		/* GAMMAD_KH_RULE_ONE_RB: the rule backend every draw picks */
	struct gammad_kh_rewrite path;
	struct gammad_kh_str loc_prefix;
	struct gammad_kh_str loc_port;
};

struct gammad_kh_alias_key {
	__u32 tab;
	__u32 rule;
	__u32 slot;
};
/* Value: struct gammad_alias_val; primary/alias are rule-backend indices. */

/*
 * A backendRef of a rule with what the request becomes on its way there:
 * the request fields named in remove[] are dropped, the lines of append[]
 * added after the rest ("Name: value\r\n" each: the rule's and the
 * backend's RequestHeaderModifier and a URLRewrite hostname, folded into
 * one remove-then-append step), and the target rewritten by `path`.
 */
struct gammad_kh_rb {
	__u32 be_id;		/* backend (gammad_be_v2) */
	__u32 status;		/* 200; 500 unresolved; 503 no endpoints */
	__u32 nr_remove;
	__u32 append_len;
	struct gammad_kh_rewrite path;
	struct gammad_kh_str remove[GAMMAD_KH_REMOVE_MAX];
	char append[GAMMAD_KH_APPEND_MAX];
};

/*
 * The response edits of rule backend i (its rule's and its backendRef's
 * ResponseHeaderModifier, folded as the request edits are: the response
 * fields named in remove[] dropped, append[] added before the empty line)
 * are a second record of the same map, at idx i | GAMMAD_KH_RB_RESP (only
 * be_id 0, status 0, nr_remove, remove[], append_len, append[] used). No
 * record: the response goes as the upstream sent it.
 */
#define GAMMAD_KH_RB_RESP	0x80000000U

/* What the kernel does with one request (gammad_kh_verdict.action). */
enum gammad_kh_action {
	GAMMAD_KH_MORE = 0,		/* head incomplete: wait for more bytes */
	GAMMAD_KH_FORWARD,		/* to rule backend rb, edited */
	GAMMAD_KH_LOCAL,		/* answered here: status (404, 500, 503, 3xx) */
	GAMMAD_KH_ENGINE,		/* to the engine, for reason */
};

/* Per-request reasons: index of gammad_khst_v1 (per-CPU __u64). */
enum gammad_kh_reason {
	GAMMAD_KH_R_SERVED = 0,		/* forwarded or answered by the kernel */
	GAMMAD_KH_R_MORE,		/* waited for the rest of a head */
	GAMMAD_KH_R_NO_TABLE,		/* no kernel table for the class */
	GAMMAD_KH_R_TABLE,		/* the table is the engine's (tab_reason) */
	GAMMAD_KH_R_MALFORMED,		/* the engine's parser refuses it too */
	GAMMAD_KH_R_HEAD_TOO_LARGE,	/* over GAMMAD_KH_HEAD_MAX */
	GAMMAD_KH_R_FIELDS,		/* over GAMMAD_KH_FIELDS_MAX */
	GAMMAD_KH_R_QUERY,		/* over GAMMAD_KH_QUERY_MAX parameters */
	GAMMAD_KH_R_TARGET_FORM,	/* not origin form ("*", absolute; not "PRI *") */
	GAMMAD_KH_R_LEADING_CRLF,	/* empty lines before the request line */
	GAMMAD_KH_R_METHOD,		/* CONNECT, or a method of 32 bytes or more */
	GAMMAD_KH_R_CHUNKED,		/* Transfer-Encoding */
	GAMMAD_KH_R_EXPECT,		/* Expect */
	GAMMAD_KH_R_UPGRADE,		/* Upgrade */
	GAMMAD_KH_R_LENGTH,		/* Content-Length of more than 18 digits */
	GAMMAD_KH_R_MAP,		/* an entry the table names is missing */
	/* the data path's own (bpf/lib/khttp_path.h) */
	GAMMAD_KH_R_PIPELINE,		/* would overtake a response still outstanding */
	GAMMAD_KH_R_NO_UPSTREAM,	/* no free pre-connected upstream for the endpoint */
	GAMMAD_KH_R_NO_ENDPOINT,	/* the rule backend has no endpoint to pick */
	GAMMAD_KH_R_AFFINITY,		/* the backend has session affinity (the engine's) */
	GAMMAD_KH_R_REDIRECT,		/* a redirect the kernel cannot write (too long) */
	GAMMAD_KH_R_LOCAL_BODY,		/* a local answer to a body not all in the message */
	GAMMAD_KH_R_UNFRAMED,		/* the bound upstream's response framing is unknown */
	GAMMAD_KH_R_EDIT,		/* a message edit failed: dropped */
	GAMMAD_KH_R_ENGINE_LOST,	/* the engine's socket is gone: dropped */
	GAMMAD_KH_R_HOP_BY_HOP,		/* Connection, Keep-Alive, TE: the engine's */
	GAMMAD_KH_R_HTTP10,		/* HTTP/1.0: the engine adds Host, keeps alive */
	GAMMAD_KH_R_SLOW_READER,	/* the client lagged beyond the in-flight cap */
	GAMMAD_KH_R_CLOSE_DELIMITED,	/* a response read to the upstream's close */
	GAMMAD_KH_R_ENGINE_FIRST,	/* silent too long: the engine took it (server-first) */
	GAMMAD_KH_R_RESP_TCP,		/* its response needs edits, its upstream is TCP (sk_skb) */
	GAMMAD_KH_R_RESP_CUT,		/* a response head the kernel could not edit: client reset */
	GAMMAD_KH_R_RESP_ENGINE,	/* a response head the kernel could not edit: the engine's */
	GAMMAD_KH_R_H2_PRIOR,		/* "PRI *": an HTTP/2 prior-knowledge preface (gRPC) */
	GAMMAD_KH_R_MAX,
};

/*
 * Entries of gammad_khst_v1. 64 since resp_edit_engine (the 33rd); a map
 * pinned by an earlier agent keeps its 32 (datapath.c keeps a pinned
 * size), so reasons from 32 on are counted only once it is made anew.
 */
#define GAMMAD_KH_R_SLOTS	64
_Static_assert(GAMMAD_KH_R_MAX <= GAMMAD_KH_R_SLOTS, "gammad_kh_reason");

struct gammad_kh_field {
	__u16 name_off, name_len;
	__u16 value_off, value_len;	/* without leading and trailing SP/HTAB */
	__u32 name_hash;
};

struct gammad_kh_span {
	__u16 off, len;
};

enum gammad_kh_req_flags {
	GAMMAD_KH_REQ_QUERY_FULL = 1 << 0,	/* more than GAMMAD_KH_QUERY_MAX parameters */
};

/* A parsed request head (offsets into the head's bytes). */
struct gammad_kh_req {
	__u16 head_len;		/* through the empty line */
	__u16 method_len;	/* the method starts at 0 */
	__u16 target_off, target_len;
	__u16 path_len;		/* target bytes before the first '?' */
	__u8 minor;		/* HTTP/1.<minor> */
	__u8 nr_fields;
	__u8 nr_query;		/* parameters in query[] */
	__u8 host;		/* index of the Host field + 1; 0: none */
	__u16 flags;		/* enum gammad_kh_req_flags */
	__u64 content_length;
	struct gammad_kh_field fields[GAMMAD_KH_FIELDS_MAX];
	struct gammad_kh_span query[GAMMAD_KH_QUERY_MAX];	/* name=value items */
};

/*
 * The answer. FORWARD: rule backend rb (backend be_id); fields whose bit is
 * set in remove_mask are dropped, rb's append lines added; the target
 * becomes rewrite_str + target[rw_cut..] when rw_kind is set (1: the
 * rewrite's value, 2: "/"). LOCAL: status; a 3xx has its Location built
 * from the rule (host_len bytes of the request's Host at host_off when the
 * rule says so) and the rewrite as for FORWARD; bpf/lib/khttp_answer.h
 * writes the answer.
 */
struct gammad_kh_verdict {
	__u32 action;		/* enum gammad_kh_action */
	__u32 reason;		/* enum gammad_kh_reason */
	__u32 tab_reason;	/* GAMMAD_KH_R_TABLE: enum gammad_kh_tab_reason */
	__u32 status;
	__u32 entry, rule, rb;
	__u32 be_id;
	__u32 remove_mask;
	__u16 rw_cut;
	__u8 rw_kind;
	__u8 tab_flags;		/* the table's GAMMAD_KH_TAB_F_* (FORWARD) */
	__u16 host_off, host_len;
};

/*
 * Per-CPU work area of the parser and matcher (and the test program's
 * input and output): the head's bytes, the parse, the verdict.
 */
struct gammad_kh_scratch {
	__u32 len;		/* bytes in buf */
	__u32 tab;		/* table to match against */
	__u32 draw[2];		/* random numbers for the weighted pick */
	__u32 st[8];		/* parser state (bpf/lib/khttp.h) */
	struct gammad_kh_req req;
	struct gammad_kh_verdict v;
	__u8 buf[GAMMAD_KH_HEAD_MAX];
};

_Static_assert(sizeof(struct gammad_kh_str) == 264, "gammad_kh_str");
_Static_assert(sizeof(struct gammad_kh_cond) == 532, "gammad_kh_cond");
_Static_assert(sizeof(struct gammad_kh_entry) == 4564, "gammad_kh_entry");
_Static_assert(sizeof(struct gammad_kh_rewrite) == 268, "gammad_kh_rewrite");
_Static_assert(sizeof(struct gammad_kh_rule) == 820, "gammad_kh_rule");
_Static_assert(sizeof(struct gammad_kh_rb) == 2652, "gammad_kh_rb");
_Static_assert(sizeof(struct gammad_kh_class_val) == 4, "gammad_kh_class_val");
_Static_assert(sizeof(struct gammad_kh_table) == 16, "gammad_kh_table");
_Static_assert(sizeof(struct gammad_kh_key) == 8, "gammad_kh_key");
_Static_assert(sizeof(struct gammad_kh_alias_key) == 12, "gammad_kh_alias_key");
_Static_assert(sizeof(struct gammad_kh_req) == 472, "gammad_kh_req");
_Static_assert(sizeof(struct gammad_kh_verdict) == 44, "gammad_kh_verdict");

/* ==== HTTP/1.1 in the kernel: the data path (bpf/lib/khttp_path.h) ===== */
/*
 * A client connection the kernel serves (gammad run --kernel-http) is the
 * application's socket steered to the engine's listener: it sits in
 * gammad_khcli_v1 (sockhash keyed by its socket cookie) with the sk_msg
 * program, its state in the socket storage gammad_khc_v1; the agent's
 * accepted end of it in gammad_khag_v1 (keyed by the client's cookie), the
 * engine's way in. Upstream sockets, pre-connected by the agent in the
 * client pod's netns, are slots: gammad_khup_v1[slot] (sockhash, with the
 * sk_skb verdict), gammad_khslot_v1[slot] their state, gammad_khupc_v1 the
 * slot of an upstream socket cookie, gammad_khpool_v1 the slots of each
 * (client netns, endpoint). A slot is bound to one client connection at a
 * time (owner, compare-and-swap), so responses can never be misdelivered.
 * The kernel HTTP sockops program registers a steered client socket at
 * ACTIVE_ESTABLISHED (its state, gammad_khcli_v1, and gammad_khck_v1 under
 * the origdst key, where the agent's accept finds the client's cookie) and
 * releases its upstream when it reaches TCP_CLOSE.
 */
#define GAMMAD_MAP_KH_CLI	"gammad_khcli_v1"
#define GAMMAD_MAP_KH_AGENT	"gammad_khag_v1"
#define GAMMAD_MAP_KH_CONN	"gammad_khc_v1"
#define GAMMAD_MAP_KH_UP	"gammad_khup_v1"
#define GAMMAD_MAP_KH_UPC	"gammad_khupc_v1"
#define GAMMAD_MAP_KH_SLOT	"gammad_khslot_v1"
#define GAMMAD_MAP_KH_POOL	"gammad_khpool_v1"
#define GAMMAD_MAP_KH_EVENTS	"gammad_khev_v1"
#define GAMMAD_MAP_KH_CK	"gammad_khck_v1"	/* origdst key -> client cookie, for accept */
/*
 * Client cookie -> 1 while nobody decided the connection yet: the client's
 * first message deletes it (the kernel serves), and so does the engine when
 * the client stayed silent for its sniff time (a server-first protocol: the
 * engine passes it through). Whoever deletes it first has the connection.
 */
#define GAMMAD_MAP_KH_FIRST	"gammad_khfm_v1"
/*
 * Client cookie -> its upstream slot, written when the kernel hands a
 * connection with a bound upstream to the engine: the engine holds its own
 * responses until that slot's are all delivered (they would overtake them).
 */
#define GAMMAD_MAP_KH_HANDOVER	"gammad_khho_v1"
/*
 * Client cookie -> struct gammad_kh_ret: a connection handed to the engine
 * because its request found no upstream (a pool not made yet, or full) may
 * come back. The kernel writes the entry (ready 0) at that hand-over; the
 * engine, once it has answered everything and holds nothing of the client,
 * writes ready with what its socket has received and will have sent; the
 * client's next message returns the connection to the kernel only when
 * the client's own TCP says both are exactly so (bpf/khttp.bpf.c,
 * kh_returned).
 */
#define GAMMAD_MAP_KH_RETURN	"gammad_khret_v1"

struct gammad_kh_ret {
	__u64 rx;		/* data bytes the engine's socket received, all read */
	__u64 tx;		/* data bytes the engine's socket carries, its last answer's included */
	__u32 ready;		/* 0: the engine serves it; 1: rx and tx hold */
	__u32 pad;
};

/*
 * Same-node server sockets (gammad run --kernel-http --sockmap): when a
 * pool upstream's backend is a pod of this node, the backend's accepted
 * socket of that connection (the "server socket") takes the bytes
 * directly: requests into its ingress, its responses through the sk_msg
 * program of gammad_khsv_v1 into the client's ingress. The agent binds
 * the upstream before connect() and records the tuple the server socket
 * will see (gammad_khsvk_v1: key as that socket sees it, value the slot);
 * the kernel HTTP sockops program finds it at PASSIVE_ESTABLISHED, moves
 * the socket into gammad_khsv_v1 (keyed by its cookie; out of the L4
 * sockhash first, a socket has one sk_msg program), tags it with its slot
 * (socket storage gammad_khsvst_v1) and writes its cookie into the
 * record. The agent then publishes the pairing in gammad_khsvs_v1[slot]
 * (the server socket's cookie, 0: none) before the slot's free owner;
 * the pool's own upstream stays the connection's anchor (its TCP carries
 * no data on this path, its FIN is the backend's hang-up).
 */
#define GAMMAD_MAP_KH_SRV	"gammad_khsv_v1"	/* sockhash: server cookie -> socket */
#define GAMMAD_MAP_KH_SRV_KEY	"gammad_khsvk_v1"	/* sock key -> struct gammad_kh_srv */
#define GAMMAD_MAP_KH_SRV_SLOT	"gammad_khsvs_v1"	/* slot -> server cookie */

struct gammad_kh_srv {
	__u64 cookie;		/* the server socket's cookie (0: not established yet) */
	__u32 slot;		/* the upstream slot whose connection it is */
	__u32 pad;		/* socket storage: bytes of the message not framed yet (khttp.bpf.c) */
};
_Static_assert(sizeof(struct gammad_kh_srv) == 16, "gammad_kh_srv");

#define GAMMAD_KH_SLOTS_MAX	16384	/* upstream slots (array) */
#define GAMMAD_KH_POOL_MAX	16	/* slots per (client netns, endpoint) */
/* a claim that leaves fewer free slots in its pool tells the agent (EV_CLAIMED) */
#define GAMMAD_KH_POOL_LOW	4
#define GAMMAD_KH_PIPELINE_MAX	31	/* requests outstanding on one upstream */

/*
 * Bytes a client socket may have queued and unread (its receive memory
 * plus what waits in its sockmap ingress queue) before the kernel path
 * stops feeding it: kh_cap of bpf/lib/khttp_path.h, a load-time constant.
 * The kernel does not bound those queues (design brief); TCP's flow control
 * does, so the bytes of a slow reader are left on the upstream socket
 * (GAMMAD_KH_SLOT_SLOW) and its connection becomes the engine's. The same
 * 4 MiB as the L4 redirect (GAMMAD_SOCKMAP_CAP_DEFAULT, which says why).
 */
#define GAMMAD_KH_CAP_DEFAULT	(4u << 20)

enum gammad_kh_conn_state {
	GAMMAD_KHC_KERNEL = 1,		/* requests decided here */
	GAMMAD_KHC_ENGINE,		/* the engine's, for good (but F_RETURN) */
};

enum gammad_kh_conn_flags {
	GAMMAD_KHC_F_REDIRECTED = 1 << 0,	/* a message was redirected: never SK_PASS again */
	GAMMAD_KHC_F_STARTED = 1 << 1,		/* its first message came (gammad_khfm_v1) */
	GAMMAD_KHC_F_INGRESS = 1 << 2,		/* to the engine by its socket's ingress */
	/* corked for a body to reach a same-node server whole (khttp.bpf.c, kh_forward) */
	GAMMAD_KHC_F_BODY_CORK = 1 << 3,
	GAMMAD_KHC_F_RETURN = 1 << 4,		/* the engine's for a miss: may come back (gammad_khret_v1) */
	/* gammad_khfw_v1 may be armed: only then is it looked up (khttp.bpf.c) */
	GAMMAD_KHC_F_FWD = 1 << 5,
};

/* Per client socket (socket storage gammad_khc_v1). */
struct gammad_kh_conn {
	__u64 cookie;		/* the client socket's cookie: its key in gammad_khcli_v1 */
	__u64 netns_cookie;	/* the client pod's netns: the pools it draws from */
	struct gammad_fe_key fe;	/* the Service port it dialed */
	__u32 ns_id;		/* its client class */
	__u32 state;		/* enum gammad_kh_conn_state */
	__u32 flags;		/* enum gammad_kh_conn_flags */
	__u32 slot;		/* bound upstream slot + 1; 0: none */
	__be16 ck_port;		/* its gammad_khck_v1 key: port and family (netns above) */
	__u8 ck_family;
	__u8 pad;
};

/*
 * Per client socket (socket storage gammad_khfw_v1): a request that went
 * to a same-node server's ingress. bpf_tcp_ingress may take only part of
 * it (the server's socket memory refused: __sk_rmem_schedule) and the
 * kernel runs the client program again on the rest of the message, with
 * the first run's target still set: the rest of that request is what lies
 * before `end` bytes from the message's end.
 */
#define GAMMAD_MAP_KH_FWD	"gammad_khfw_v1"
struct gammad_kh_fwd {
	__u32 end;		/* the message's size once the request has left it */
	__u32 armed;		/* 1: end is this message's */
};

/* A pool: (client netns, endpoint). */
struct gammad_kh_pool_key {
	__u64 netns_cookie;
	__u8 addr[16] GAMMAD_ALIGN4;
	__be16 port;
	__u8 family;
	__u8 pad;
};

struct gammad_kh_pool {
	__u32 nr;		/* slots[0..nr) */
	__u32 slots[GAMMAD_KH_POOL_MAX];
};

/* gammad_kh_slot.owner besides a client's cookie */
#define GAMMAD_KH_OWNER_FREE	0ULL		/* armed, claimable */
#define GAMMAD_KH_OWNER_DEAD	(~0ULL)		/* for the agent: close, re-arm */

enum gammad_kh_slot_flags {
	GAMMAD_KH_SLOT_UNFRAMED = 1 << 0,	/* response framing unknown: never reused */
	/*
	 * The client lagged beyond the cap: the upstream's bytes stay in its
	 * own receive queue (its window holds the backend) for the agent to
	 * relay; the slot is the agent's until the client leaves.
	 */
	GAMMAD_KH_SLOT_SLOW = 1 << 1,
	/* The response runs to the upstream's close: the agent ends the client's side then. */
	GAMMAD_KH_SLOT_CLOSE = 1 << 2,
	/*
	 * Same-node server: its ingress holds more unread request bytes than
	 * the cap allows (a backend that does not read, a body over the cap):
	 * this slot's requests go over the upstream's TCP from now on (the
	 * server reads its ingress queue first: order kept).
	 */
	GAMMAD_KH_SLOT_REQ_TCP = 1 << 3,
	/*
	 * A response head that needed edits cannot have them and the engine
	 * cannot either (its table retired while the request was out; a slot
	 * that turns SLOW or unframed with a head still to edit): nothing
	 * more of this slot reaches the client, the agent resets it
	 * (GAMMAD_KH_EV_CUT). Never an unedited head.
	 */
	GAMMAD_KH_SLOT_CUT = 1 << 4,
	/*
	 * With SLOW: a response head that needed edits the kernel cannot make
	 * (over GAMMAD_KH_HEAD_MAX, more than GAMMAD_KH_FIELDS_MAX fields, not
	 * the request's field syntax) starts the bytes kept on the upstream,
	 * at response relay_seq: the engine's relay frames them and edits each
	 * head as it would its own (GAMMAD_KH_EV_SLOW, engine_relay.c).
	 */
	GAMMAD_KH_SLOT_EDIT = 1 << 5,
	/*
	 * Same-node server: gammad_khfa_v1[slot] counts response bytes framed
	 * already that cross the upstream's TCP after all; the upstream's
	 * verdict reads it only with this bit. Set by the server side, for
	 * the slot's arming (the agent writes a fresh slot, without it).
	 */
	GAMMAD_KH_SLOT_AHEAD = 1 << 6,
};

/*
 * Per slot (gammad_khfa_v1[slot], a __u64, same-node servers only): the
 * response bytes the server side framed and counted with the first part
 * of a message whose rest the client's ingress did not take: that rest
 * crosses the upstream's TCP, and its verdict takes them off here instead
 * of framing them again. Valid while the slot has GAMMAD_KH_SLOT_AHEAD:
 * the server side stores the count (not adds) when it sets the bit, so
 * what an earlier arming left is never read. A map of its own, not a
 * field of gammad_kh_slot: the slot map's layout stays what pinned state
 * of earlier builds has (an agent adopts a pinned map only as it is).
 */
#define GAMMAD_MAP_KH_AHEAD	"gammad_khfa_v1"

/*
 * Per slot (gammad_khsre_v1[slot], same-node servers only): bit (seq %
 * 32) of bits set when the response to request seq needs the edits of
 * rule-backend record key[seq % 32] (gammad_khrb_v1, GAMMAD_KH_RB_RESP).
 * Written by the client side before the request leaves, read by the
 * server side at the start of that response's head.
 */
#define GAMMAD_MAP_KH_SLOT_EDITS	"gammad_khsre_v1"
struct gammad_kh_slot_edits {
	__u32 bits;
	__u32 pad;
	struct gammad_kh_key key[32];
};

/* Response framing states (bpf/lib/khttp_path.h). */
enum gammad_kh_rstate {
	GAMMAD_KH_RS_STATUS = 0,	/* status line (or waiting for it) */
	GAMMAD_KH_RS_LINE,		/* start of a field line or the empty line */
	GAMMAD_KH_RS_NAME,
	GAMMAD_KH_RS_VALUE,
	GAMMAD_KH_RS_END_LF,		/* LF of the empty line */
	GAMMAD_KH_RS_BODY,		/* Content-Length body: rleft bytes */
	GAMMAD_KH_RS_CHUNK_SIZE,
	GAMMAD_KH_RS_CHUNK_EXT,
	GAMMAD_KH_RS_CHUNK_SIZE_LF,
	GAMMAD_KH_RS_CHUNK_DATA,	/* rleft bytes of chunk data */
	GAMMAD_KH_RS_CHUNK_DATA_CR,
	GAMMAD_KH_RS_CHUNK_DATA_LF,
	GAMMAD_KH_RS_TRAILER_LINE,
	GAMMAD_KH_RS_TRAILER,
	GAMMAD_KH_RS_TRAILER_LF,
};

/* The response parser's state, kept between skbs. */
struct gammad_kh_resp {
	__u64 rleft;		/* body or chunk bytes left */
	__u64 cl;		/* Content-Length of the head */
	__u32 state;		/* enum gammad_kh_rstate */
	__u32 k;		/* position in the status line; digits of a number */
	__u32 status;
	__u32 hash;		/* field name / value hash so far */
	__u32 nlen;		/* field name / value length so far */
	__u32 field;		/* the field being read: 0, 1 Content-Length, 2 Transfer-Encoding */
	__u32 hflags;		/* KH_RH_*: what the head said */
	__u32 resp_seq;		/* responses completed */
};

/* An upstream slot (gammad_khslot_v1[slot]). */
struct gammad_kh_slot {
	__u64 owner;		/* client cookie; GAMMAD_KH_OWNER_FREE / _DEAD */
	struct gammad_kh_pool_key pool;	/* its endpoint */
	__u32 req_seq;		/* requests sent (written by the client side only) */
	__u32 head_bits;	/* bit (seq % 32): request seq was HEAD */
	__u32 flags;		/* enum gammad_kh_slot_flags */
	__u32 relay_seq;	/* GAMMAD_KH_SLOT_EDIT: the response the kept bytes start with */
	__u64 bytes_up;		/* request bytes forwarded */
	__u64 bytes_down;	/* response bytes delivered to the client's ingress */
	struct gammad_kh_resp r;	/* written by the upstream side only */
};

enum gammad_kh_event_kind {
	GAMMAD_KH_EV_CLAIMED = 1,	/* a claim left < GAMMAD_KH_POOL_LOW free: refill */
	GAMMAD_KH_EV_DEAD,		/* a slot was given up: close and re-arm it */
	GAMMAD_KH_EV_SLOW,		/* its client lags: relay the upstream's bytes */
	GAMMAD_KH_EV_CUT,		/* GAMMAD_KH_SLOT_CUT: reset its client, close, re-arm */
	/*
	 * A claim found no pool for its (netns, endpoint), or no free slot in
	 * one with room to grow: make or grow it (pools on demand). The slot
	 * is GAMMAD_KH_SLOTS_MAX (none).
	 */
	GAMMAD_KH_EV_MISS,
};

struct gammad_kh_event {
	__u32 kind;		/* enum gammad_kh_event_kind */
	__u32 slot;
	struct gammad_kh_pool_key pool;
};

/* ==== TC data path: per-packet translation (bpf/tc.bpf.c) ============== */
/*
 * What connect() never sees (other nodes, unmanaged cgroups, connections
 * older than the agent) is translated per packet on the host side of pod
 * veths and on the uplink. A flow has two conntrack entries in one LRU map:
 * FWD keyed by the client's tuple towards the ClusterIP (value: the
 * endpoint), REV keyed by the endpoint's reply tuple (value: the ClusterIP).
 * Each entry can rebuild the other's key from its own key and value.
 * A hairpin flow (endpoint == client) is SNATed to the node's hairpin
 * address as well; its REV key is (endpoint, hairpin address) and both
 * entries carry GAMMAD_CT_F_HAIRPIN (bpf/lib/hairpin.h).
 */
#ifndef GAMMAD_LAYOUT_NEXT
#define GAMMAD_MAP_CT		"gammad_ct_v1"
#endif
#define GAMMAD_MAP_POD		"gammad_pod_v1"
#define GAMMAD_MAP_TC_STATS	"gammad_tcst_v1"

enum gammad_ct_dir {
	GAMMAD_CT_FWD = 0,	/* client -> ClusterIP: DNAT to nat_addr */
	GAMMAD_CT_REV = 1,	/* endpoint -> client: SNAT to nat_addr */
};

struct gammad_ct_key {
	__u8 saddr[16] GAMMAD_ALIGN4;
	__u8 daddr[16] GAMMAD_ALIGN4;
	__be16 sport;
	__be16 dport;
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP */
	__u8 family;		/* AF_INET, AF_INET6 */
	__u8 dir;		/* enum gammad_ct_dir */
	__u8 pad;
};

enum gammad_ct_flags {
	GAMMAD_CT_F_CLOSING	= 1 << 0,	/* FIN seen: short timeout */
	GAMMAD_CT_F_REPLIED	= 1 << 1,	/* REV entry used at least once */
	GAMMAD_CT_F_HAIRPIN	= 1 << 2,	/* endpoint == client: the client side is
						 * SNATed to the hairpin address, the REV
						 * key's daddr is that address */
	GAMMAD_CT_F_MIGRATED	= 1 << 3,	/* copied by the agent in a layout upgrade
						 * (bpf/lib/ct.h gammad_ctold_v1) */
};

#ifndef GAMMAD_LAYOUT_NEXT
struct gammad_ct_val {
	__u8 nat_addr[16] GAMMAD_ALIGN4;	/* FWD: endpoint, REV: ClusterIP */
	__be16 nat_port;
	__u8 flags;		/* enum gammad_ct_flags */
	__u8 pad;
	__u32 svc_port_id;	/* Service port of the flow, for accounting */
	__u64 last_seen;	/* bpf_ktime_get_ns() of the last packet */
};
#endif

/*
 * Pod IPs the agent knows (this node's and, for uplink traffic, other
 * nodes'): the client class of a packet is the namespace of its source pod.
 * ifindex is the host side of the pod's veth when the pod is local (0
 * otherwise): translated packets for it go straight into the pod's netns.
 */
struct gammad_pod_key {
	__u8 addr[16] GAMMAD_ALIGN4;
	__u8 family;
	__u8 pad[3];
};

struct gammad_pod_val {
	__u32 ns_id;		/* GAMMAD_NS_ALL: no consumer class */
	__u32 ifindex;		/* host-side veth of a local pod, else 0 */
};

/* Index of the per-CPU TC counter array (gammad_tcst_v1), one __u64 each. */
enum gammad_tc_reason {
	GAMMAD_TC_PASS = 0,		/* not for the mesh: untouched */
	GAMMAD_TC_NEW_FLOW,		/* conntrack entries created */
	GAMMAD_TC_XLATE,		/* ClusterIP -> endpoint (every packet) */
	GAMMAD_TC_REV_XLATE,		/* endpoint -> ClusterIP (every reply) */
	GAMMAD_TC_ICMP_XLATE,		/* ICMP error about a flow translated back */
	GAMMAD_TC_NO_ENDPOINT,		/* no route backend/endpoint: dropped */
	GAMMAD_TC_CT_FULL,		/* conntrack entry not stored: dropped */
	GAMMAD_TC_CT_MISS,		/* mid-flow TCP to a ClusterIP, no entry: passed */
	GAMMAD_TC_FRAGMENT,		/* IP fragment to/from the mesh: passed */
	GAMMAD_TC_MALFORMED,		/* truncated headers: passed */
	GAMMAD_TC_CLOSED,		/* RST: entries removed */
	GAMMAD_TC_CLOSING,		/* FIN: entries marked closing */
	GAMMAD_TC_EXPIRED,		/* idle entry found and removed */
	GAMMAD_TC_REWRITE_ERR,		/* a rewrite helper failed: dropped */
	GAMMAD_TC_REDIR_PEER,		/* delivered into a local pod's netns */
	GAMMAD_TC_REDIR_NEIGH,		/* delivered through bpf_redirect_neigh */
	GAMMAD_TC_FIB_MISS,		/* no FIB answer: left to the stack */
	GAMMAD_TC_FAMILY,		/* endpoint of another family: dropped */
	GAMMAD_TC_HAIRPIN,		/* a packet of a hairpin flow translated (either
					 * way, ICMP errors too): the pod reached itself */
	GAMMAD_TC_UPGRADE_WAIT,		/* layout upgrade: a flow the old programs made,
					 * not copied yet: dropped, resent */
	GAMMAD_TC_SWITCH_HOLD,		/* layout upgrade: a new flow while the TC links
					 * switch: dropped, the client resends */
	GAMMAD_TC_MAX,
};

#define GAMMAD_TC_SLOTS		32
_Static_assert(GAMMAD_TC_MAX <= GAMMAD_TC_SLOTS, "gammad_tc_reason");

/* Load-time switches of bpf/tc.bpf.c (its .rodata `tc_cfg_flags`). */
enum gammad_tc_cfg {
	GAMMAD_TC_CFG_REDIRECT	= 1 << 0,	/* deliver with redirect_peer/neigh */
};

_Static_assert(sizeof(struct gammad_ct_key) == 40, "gammad_ct_key");
#ifndef GAMMAD_LAYOUT_NEXT
_Static_assert(sizeof(struct gammad_ct_val) == 32, "gammad_ct_val");
#endif
_Static_assert(sizeof(struct gammad_pod_key) == 20, "gammad_pod_key");
_Static_assert(sizeof(struct gammad_pod_val) == 8, "gammad_pod_val");
_Static_assert(_Alignof(struct gammad_ct_key) == 4, "gammad_ct_key align");

#endif
