/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the HTTP engine: connections, buffers, the loop's state. */
#ifndef GAMMAD_ENGINE_INT_H
#define GAMMAD_ENGINE_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "engine.h"
#include "base/hashmap.h"
#include "http/http1.h"
#include "translate/translate_eval.h"

#define ENGINE_MIRROR_REFS	4		/* RequestMirror filters of one request */

/* Bytes at p[off .. off+len) of a fixed buffer of cap bytes. */
struct ebuf {
	char *p;
	size_t cap, off, len;
};

/* (ClusterIP, port) -> tr_port: fixed-size keys, open addressing, built once per tables. */
struct eng_vip {
	uint8_t family;
	uint8_t addr[16];		/* IPv4 in the first 4, the rest zero */
	uint16_t port;
	const struct tr_port *p;	/* NULL: empty slot */
};

/* A published translation with its (ClusterIP, port) -> tr_port index. */
struct eng_tables {
	int refs;			/* atomic */
	struct tr_result *res;
	struct eng_vip *vips;
	size_t vips_cap;		/* a power of two, at least twice the keys */
	struct engine *e;
	struct eng_metrics_index *mix;	/* rule/backend -> metrics series */
	uint64_t generation;		/* engine_set_tables() calls, this one's */
};

enum eobj_kind { EOBJ_WAKE, EOBJ_CLIENT, EOBJ_UPSTREAM, EOBJ_H2, EOBJ_ACCEPT, EOBJ_RELAY };

struct uconn;

/* Where a client connection is. */
enum cstate {
	CS_SNIFF,	/* a new connection: HTTP, or bytes to pass through at L4? */
	CS_HEAD,	/* waiting for (the rest of) a request head */
	CS_REQ,		/* a request in flight: body up, response down */
	CS_TUNNEL,	/* after 101: bytes both ways */
	CS_CLOSING,	/* flush what is left, then shut down writing */
	CS_LINGER,	/* read and drop until EOF or ENGINE_LINGER_MS */
	CS_H2,		/* a request on an HTTP/2 upstream (engine_h2.c) */
};

/* ResponseHeaderModifier filters of a response: the rule's, the backendRef's. */
struct resp_filters {
	const struct gapi_filter *f[2];
	size_t nr[2];
};

/*
 * The kernel HTTP path's upstream of a client that read too slowly
 * (engine_kernel_relay, engine_relay.c): what the kernel left on it is
 * copied to the client over TCP once the client's sockmap queue is drained.
 */
struct krelay {
	enum eobj_kind kind;		/* EOBJ_RELAY; first, for epoll data */
	int fd;				/* -1: none */
	uint32_t slot;			/* the kernel's slot of that upstream */
	bool rd_ready, rd_hup, eof;
	bool drained;			/* the kernel's bytes are all queued at the client */
	int err;
	struct ebuf buf;
	/*
	 * It starts with a head the kernel could not edit (opts.kernel_resp):
	 * responses framed here, each head needing edits written as the
	 * engine writes its own (eng_write_response_head), into out.
	 */
	bool edit;
	bool in_body;			/* of response seq */
	uint32_t seq;
	enum h1_body body;
	uint64_t left;
	struct h1_chunked ch;
	struct h1_scan scan;
	struct ebuf out;
	struct eng_tables *tab;		/* where the class's filters live */
	const struct tr_class *cls;
	uint16_t port;
};

struct cconn {
	enum eobj_kind kind;		/* EOBJ_CLIENT; first, for epoll data */
	int fd;
	bool dead;
	bool rd_ready, wr_ready, rd_eof, wr_shut;
	bool rd_hup;			/* epoll said RDHUP/HUP/ERR: read to EOF */
	bool again;			/* more to do next loop turn (fairness) */
	bool flush;			/* on e->flush: its output leaves after the batch */
	struct cconn *flush_next;
	enum cstate state;
	bool kernel;			/* silent, the kernel serves it: no timers */
	bool kh_hold, kh_quiet;		/* our responses wait for the kernel's (kernel_pending) */
	bool kh_ret;			/* the kernel takes it back when we are done (kernel_return) */
	bool sock_later;		/* eng_sock_setup when the engine first serves it (kernel) */
	uint8_t kh_eof;			/* ticks left before its FIN (engine_kernel_eof), 0: none */
	struct krelay rl;		/* a slow reader's upstream, relayed (engine_relay.c) */
	struct engine_origin origin;
	struct ebuf in, out;
	struct cconn *next, *prev;	/* engine's list of clients */
	uint64_t last_io;		/* ms: last byte moved for this client */
	uint64_t head_start;		/* ms: first byte of the head waited for, 0 none */
	uint64_t linger_until;
	struct h1_scan scan;
	/* the Service port and class of the last request, valid while the
	 * tables of that generation are the request's (no reference: only
	 * compared, and used under the request's own reference) */
	uint64_t port_gen;
	const struct tr_port *port;
	const struct tr_class *cls;
	/* the request in flight */
	struct eng_tables *tab;
	char method[32];
	struct h1_str method_str;
	bool close_after;		/* Connection: close on this response, then close */
	uint8_t minor;			/* HTTP/1.<minor> of the request */
	bool upgrade;
	bool expect_continue;
	enum h1_body req_body;
	uint64_t req_left;
	struct h1_chunked req_ch;
	bool req_done;
	struct uconn *up;		/* NULL: answered here (body dropped) */
	struct uconn *last_up;		/* the upstream of the last request, maybe pooled */
	struct resp_filters rf;		/* of the response in flight */
	struct h1_scan rscan;
	bool resp_head_done, resp_started, resp_done;
	enum h1_body resp_body;
	uint64_t resp_left;
	struct h1_chunked resp_ch;
	bool up_reusable;		/* the upstream said keep-alive */
	/* for opts->on_request */
	bool log_pending;
	int log_status;
	const struct tr_entry *log_entry;
	const struct tr_backend *log_backend;
	uint64_t t_start, t_up_sent, t_up_head;	/* us */
	uint64_t req_deadline;		/* ms: the rule's timeouts.request/backendRequest, 0 none */
	bool dechunk;			/* an HTTP/1.0 client: chunked response decoded,
					   its end told by the close */
	/*
	 * The replay: every byte sent upstream for this request (head and body
	 * as framed, the body up to ENGINE_REPLAY_MAX), to send again on a new
	 * connection when a pooled one turns out closed, for the rule's retry,
	 * and for RequestMirror copies of a request with a body. NULL: not kept.
	 */
	char *retry_head;
	size_t retry_len, retry_cap;
	size_t retry_head_len;		/* of which the head */
	size_t retry_sent;		/* in the current upstream's buffer already */
	const struct gapi_backend_ref *mirror_refs[ENGINE_MIRROR_REFS];
	size_t nr_mirror_refs;		/* copies to start once the body is whole */
	const struct gapi_rule *retry;	/* the rule's retry, NULL: none */
	int retries_left;
	uint64_t retry_at;		/* ms: the backoff ends, 0: no retry waiting */
	void *h2;			/* CS_H2: its stream (engine_h2.c) */
	void (*h2_end)(struct engine *e, struct cconn *c);	/* detaches it */
};

struct ukey {
	struct ip_addr addr;
	uint16_t port;
	void *netns_ctx;
};

struct uconn {
	enum eobj_kind kind;		/* EOBJ_UPSTREAM */
	int fd;
	bool dead;
	bool connected, rd_ready, wr_ready, eof, wr_shut;
	bool rd_hup;			/* epoll said RDHUP/HUP/ERR: read to EOF */
	bool reused;			/* taken from the pool for this request */
	int err;			/* errno of a failed connect, read or write */
	struct ukey key;
	struct ebuf in, out;
	struct cconn *owner;		/* NULL: idle in the pool, or a mirror */
	struct cconn *last_owner;	/* c->last_up == u exactly when u->last_owner == c */
	bool pooled;			/* in e->pool */
	struct mirror *mirror;		/* a RequestMirror copy in flight */
	void *h2;			/* an HTTP/2 stream's HTTP/1.1 exchange (engine_h2.c) */
	struct uconn *next, *prev;	/* the pool (idle only) */
	uint64_t since;			/* ms: connect started, or idle since */
};

/* What other threads hand the loop, in order: a client, or a netns to forget (fd -1). */
#define PENDING_KH_RESET (-2)	/* reset the client of origin.kernel_cookie */
#define PENDING_KH_EOF	(-3)	/* end it after the kernel's response */
#define PENDING_KH_RELAY (-4)	/* relay kh_fd to the client (engine_kernel_relay) */

struct pending {
	int fd;				/* -1: forget origin.netns_ctx; PENDING_KH_RESET */
	bool http;			/* from a previous engine: HTTP already (engine_adopt_http) */
	struct engine_origin origin;
	int kh_fd;			/* PENDING_KH_RELAY: the upstream (owned), its slot */
	uint32_t kh_slot;
	struct pending *next;
};

/*
 * One event loop. engine_new() makes opts.threads of them; the first is
 * the handle the API takes (the group): it owns the others, the metrics
 * and the acceptor. Each loop has its own epoll,
 * clients, upstream pools (HTTP/1.1 and HTTP/2), buffers and timers; a
 * connection stays in the loop that took it. The tables are shared
 * read-only: every loop holds a reference to the same eng_tables.
 */
struct engine {
	struct engine_opts o;
	struct engine *group;		/* the handle (loop 0); itself for loop 0 */
	unsigned int loop_index;
	/* group only */
	struct engine **loops;		/* nr_loops, loops[0] is the group */
	unsigned int nr_loops;
	unsigned int next_loop;		/* engine_adopt from other threads: round robin (atomic) */
	uint64_t conns;			/* HTTP/1.x client connections of all loops (atomic), max_conns */
	pthread_mutex_t give_lock;	/* give() is called by one loop at a time */
	pthread_rwlock_t acc_lock;	/* acc_fn/acc_ctx/acc_fd against a callback running */
	int acc_fd;			/* engine_set_acceptor: watched by one loop, -1 none */
	unsigned int acc_loop;		/* the loop watching acc_fd (atomic) */
	void (*acc_fn)(void *ctx);
	void *acc_ctx;
	/* every loop */
	enum eobj_kind acc_kind;	/* epoll data of acc_fd */
	struct pending *local, **local_tail;	/* adopted by the acceptor in this loop's thread */
	size_t pool_max, mirrors_max;	/* this loop's share of ENGINE_POOL_MAX, _MIRRORS_MAX */
	struct h1_limits lim;
	int epfd, wakefd;
	enum eobj_kind wake_kind;	/* epoll data of wakefd */
	pthread_t thread;
	bool running;
	int stop;			/* atomic */
	pthread_mutex_t lock;		/* pending and tables */
	struct pending *pending, **pending_tail;
	pthread_cond_t forgotten;	/* forget_done moved */
	uint64_t forget_req, forget_done;
	struct eng_tables *tables;
	struct cconn *clients;
	struct uconn *pool;		/* idle upstreams */
	struct cconn *dead_c;		/* freed after the epoll batch */
	struct uconn *dead_u;
	uint64_t rng;
	uint64_t now;			/* ms, CLOCK_MONOTONIC, per loop turn */
	/*
	 * The same instant in us: what requests are timed with (start, upstream
	 * sent, response head, end), to the loop turn that saw each event, not
	 * a clock_gettime() of its own for each (four per gRPC call).
	 */
	uint64_t now_us;
	size_t nr_clients, nr_pool, nr_again;
	bool defer;			/* in an epoll batch: client writes wait for its end */
	struct cconn *flush;		/* clients with output waiting for the batch's end */
	struct uconn *mirrors;		/* RequestMirror copies in flight */
	size_t nr_mirrors;
	struct engine_stats st;		/* atomics */
	/*
	 * engine_kernel_reset/_eof for a connection not here (yet): after a
	 * restart the kernel's pools run before the predecessor handed that
	 * client over. Kept ENGINE_KH_STASH_MS for client_new to apply.
	 */
#define ENGINE_KH_STASH		16
#define ENGINE_KH_STASH_MS	10000
	struct {
		uint64_t cookie, until;
		int op;
	} kh_stash[ENGINE_KH_STASH];
	engine_give_fn give;		/* engine_handoff(): hand clients over; NULL: no */
	void *give_ctx;
	struct eng_metrics *metrics;	/* per-request series (engine_metrics.c) */
	uint64_t generation;		/* tables published (under lock) */
	struct eng_h2 *h2;		/* HTTP/2 connections (engine_h2.c), NULL: none yet */
	struct eng_mem *mem;		/* small blocks of this loop (engine_mem.c) */
	/*
	 * Per-request scratch, allocated once (the loop is one thread): the
	 * parsed head, the header copies ev_evaluate() reads, and connection
	 * buffers given back, up to ENGINE_BUF_CACHE (a keep-alive request
	 * takes and returns its upstream's two).
	 */
	struct h1_head *head;
	char *arena;
	size_t arena_cap;
	struct ev_header *hdrs;		/* H1_HEADERS_MAX + 1 */
#define ENGINE_BUF_CACHE 16
	char *buf_cache[ENGINE_BUF_CACHE];
	size_t nr_buf_cache;
};

/* engine_conn.c */
uint64_t eng_now_ms(void);
uint64_t eng_now_us(void);
uint64_t eng_random(struct engine *e);
/* The slot of (a, port) in t->vips: its entry, or the empty slot it would take. */
struct eng_vip *eng_tables_slot(const struct eng_tables *t, const struct ip_addr *a,
				uint16_t port);
void eng_release_res(struct engine *e, struct tr_result *res);
struct eng_tables *eng_tables_get(struct engine *e);
void eng_tables_put(struct eng_tables *t);
const struct tr_port *eng_tables_port(struct eng_tables *t, const struct engine_origin *o);
int ebuf_alloc(struct engine *e, struct ebuf *b);	/* of e->o.buf_size bytes */
void ebuf_release(struct engine *e, struct ebuf *b);
size_t ebuf_room(struct ebuf *b);	/* compacts when it helps */
void ebuf_consume(struct ebuf *b, size_t n);
int ebuf_append(struct ebuf *b, const void *p, size_t n);	/* -ENOSPC */
/*
 * One recv() into / send() from b on a non-blocking socket, keeping the
 * socket's readiness, EOF and error; true when something changed. hup:
 * epoll reported a hang-up (a short read then does not mean drained).
 */
bool ebuf_recv(int fd, struct ebuf *b, bool *ready, bool hup, bool *eof, int *err);
bool ebuf_send(int fd, struct ebuf *b, bool *ready, int *err);
/* A pooled connection to k, or a new one (always new when fresh); NULL and errno. */
struct uconn *eng_upstream_get(struct engine *e, const struct ukey *k, struct cconn *owner,
			       bool fresh);
void eng_upstream_release(struct engine *e, struct uconn *u, bool reuse);
void eng_pool_unlink(struct engine *e, struct uconn *u);
void eng_upstream_close(struct engine *e, struct uconn *u);
int eng_default_socket(void *ctx, int family, void *netns_ctx);
/* TCP_NODELAY and the fixed kernel buffers (sock_buf) of a client or upstream socket. */
void eng_sock_setup(struct engine *e, int fd);
/*
 * engine_req.c, shared with the relay: a response head as the engine
 * writes it (its fields, rf's ResponseHeaderModifier edits on a final
 * head), and body bytes moved by their framing (dst NULL: dropped; -1 a
 * chunked body out of shape, *done at its end).
 */
int eng_write_response_head(const struct resp_filters *rf, const struct h1_head *h, bool dechunk,
			    bool close_after, uint8_t minor, struct ebuf *out);
int eng_fwd_body(struct ebuf *src, struct ebuf *dst, enum h1_body kind, uint64_t *left,
		 struct h1_chunked *ch, bool decode, bool *done);

/* The relay of a slow kernel-served reader (engine_relay.c). */
void eng_relay_attach(struct engine *e, struct cconn *c, int fd, uint32_t slot);
bool eng_relay_run(struct engine *e, struct cconn *c, int *cerr);
void eng_relay_tick(struct engine *e, struct cconn *c);
/* engine_conn.c: a client's close frees its relay */
void eng_relay_free(struct engine *e, struct cconn *c);
/* The kernel's response is whole at the client: a FIN, then drain what it sends. */
void eng_kernel_fin(struct engine *e, struct cconn *c);
/* A client the kernel registered gets eng_sock_setup here, when the engine takes it. */
void eng_client_sock_setup(struct engine *e, struct cconn *c);
/* A non-blocking socket from opts->upstream_socket, connecting to k; fd or -errno. */
int eng_connect(struct engine *e, const struct ukey *k, bool *connected);
void eng_client_close(struct engine *e, struct cconn *c, bool reset);
void eng_stat_add(struct engine *e, uint64_t *field, int64_t d);
/* The request in flight is over: release its upstream and tables. */
void eng_request_end(struct engine *e, struct cconn *c, bool reuse_upstream);

/* engine_mem.c: the loop's cache of small blocks (32 B .. 4 KiB), no lock: one loop's only. */
struct eng_mem;
struct eng_mem *eng_mem_new(void);
void eng_mem_free(struct eng_mem *m);
void *eng_mem_alloc(struct eng_mem *m, size_t n);
void *eng_mem_zalloc(struct eng_mem *m, size_t n);
void *eng_mem_realloc(struct eng_mem *m, void *p, size_t n);
void eng_mem_release(struct eng_mem *m, void *p);

/* engine_timeouts.c */
/* A GEP-2257 duration in ms; 0 for "0s", -1 when it is none. */
long long eng_duration_ms(const char *s);
/* When the rule's timeouts end a request started now, 0 for never. */
uint64_t eng_rule_deadline(struct engine *e, const struct tr_entry *ent);

/*
 * engine_affinity.c: an endpoint of b (which has some) for client o: with
 * sessionAffinity ClientIP, the one its pod used last (the kernel's entry),
 * if still fresh and in the set; else a uniform draw.
 */
const struct tr_endpoint *eng_affinity_pick(struct engine *e, const struct engine_origin *o,
					    const struct tr_backend *b);

/* engine_mirror.c: RequestMirror, fire and forget. */
#define ENGINE_MIRRORS_MAX	256		/* copies in flight; more are dropped */
#define ENGINE_MIRROR_TIMEOUT_MS 10000		/* a copy's whole exchange */
/* Send req (a whole request, head and body; copied) to an endpoint of ns/name:port. */
void eng_mirror_start(struct engine *e, struct eng_tables *t, const struct gapi_backend_ref *ref,
		      const char *method, const char *req, size_t len, void *netns_ctx);
void eng_mirror_run(struct engine *e, struct uconn *u);
void eng_mirror_timers(struct engine *e);
void eng_mirror_close_all(struct engine *e);
void eng_mirror_forget(struct engine *e, void *netns_ctx);

/* engine_metrics.c: per-request series, counted without a lock. */
/* Every loop's engine_stats, summed. */
void eng_stats_sum(struct engine *e, struct engine_stats *st);
#define EM_BUCKETS 14			/* latency buckets, 0.5 ms .. 10 s, then +Inf */
struct eng_metrics;
struct eng_metrics_index;
struct eng_metrics *eng_metrics_new(void);
void eng_metrics_free(struct eng_metrics *m);
/* The series of every rule and backend of res; NULL on ENOMEM (then all count as none). */
/* prev: the index of the tables published before (NULL: none), whose series are reused. */
struct eng_metrics_index *eng_metrics_index_new(struct eng_metrics *m, const struct tr_result *res,
						const struct eng_metrics_index *prev);
void eng_metrics_index_free(struct eng_metrics_index *ix);
/* A request ended on tables t (NULL: none). Engine thread only. */
void eng_metrics_count(struct eng_metrics *m, const struct eng_tables *t,
		       const struct engine_request_log *l);

/* engine_pass.c: what is not HTTP goes through at L4. */
/* true: c's first bytes are HTTP (or may still be), so the HTTP path takes it. */
bool eng_sniff_http(const struct ebuf *in, bool *undecided);
/* Connect c to an endpoint of its class's L4 union and tunnel; false: c was closed. */
bool eng_passthrough(struct engine *e, struct cconn *c);

/* engine_handoff.c: give the clients at a request boundary away (engine_handoff); each loop turn. */
void eng_handoff_run(struct engine *e);

/* engine_req.c: one pass of a client's state machine; false when nothing moved. */
bool eng_client_step(struct engine *e, struct cconn *c);
/* A timer of this client passed (at e->now). */
void eng_client_timeout(struct engine *e, struct cconn *c);
uint64_t eng_client_deadline(struct engine *e, struct cconn *c);

/* engine_h2.c: HTTP/2 cleartext (prior knowledge, Upgrade: h2c), every stream routed alone. */
enum eng_h2_sniff { H2_NOT, H2_MAYBE, H2_PREFACE };
enum eng_h2_sniff eng_h2_sniff(const struct ebuf *in);
/* An HTTP/1.1 request asking for Upgrade: h2c that the engine takes (no body). */
bool eng_h2_upgrade_wanted(const struct h1_head *h);
/*
 * c becomes an HTTP/2 connection: its fd, origin and the bytes after
 * head_len move to it and c is closed (its fd kept). h: the Upgrade: h2c
 * request (stream 1), NULL for prior knowledge.
 */
void eng_h2_take(struct engine *e, struct cconn *c, const struct h1_head *h, size_t head_len);
void eng_h2_event(struct engine *e, void *obj, bool rd, bool wr, bool hup);
void eng_h2_timers(struct engine *e);
void eng_h2_forget(struct engine *e, void *netns_ctx);
void eng_h2_reap(struct engine *e);
void eng_h2_close_all(struct engine *e);
/*
 * A restart: every HTTP/2 client connection gets a GOAWAY (its streams finish
 * here, new ones go to a new connection, the successor's) and closes when done.
 */
void eng_h2_handoff(struct engine *e);
/* An event of an upstream whose h2 is set. */
void eng_h2_h1_event(struct engine *e, struct uconn *u);
/* The backend port speaks HTTP/2 only (appProtocol kubernetes.io/h2c, grpc). */
bool eng_h2_h1_wanted(const struct tr_backend *b);
/* c's request (decided: r, endpoint k) as an HTTP/2 stream; c goes to CS_H2. 0 or a status to answer. */
int eng_h2_from_h1(struct engine *e, struct cconn *c, const struct h1_head *h,
		   const struct ev_result *r, const struct ukey *k);
bool eng_h2_h1_step(struct engine *e, struct cconn *c);

#endif
