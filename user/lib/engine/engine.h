/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.1 engine: a reverse proxy that decides every request with the
 * translation (translate/translate_eval.h). opts.threads event loops
 * (epoll, edge triggered; one per CPU by default), each in its own thread,
 * hold the client connections handed to them (engine_adopt: the loop whose
 * acceptor took it, else in turn) and the upstream connections they open,
 * pooled per loop, endpoint and network namespace. A connection never
 * changes loops; the tables and the metrics are shared between them, and
 * sessionAffinity is the kernel's table (engine_affinity.c).
 *
 * Memory: every client connection has two buffers of buf_size bytes (what
 * the client sent, what goes back to it) and its upstream connection two
 * more, allocated once. Reading stops when the buffer it fills is full, so a
 * peer that stops reading stops the other one through TCP's window: a
 * client that never reads costs at most 4 * buf_size of engine memory, and
 * the kernel at most what the two sockets' fixed buffers hold (SO_RCVBUF
 * and SO_SNDBUF of sock_buf each, which the kernel doubles: about
 * 8 * sock_buf; no autotuning up to tcp_rmem's maximum); max_conns bounds
 * the whole. Buffers given back are kept for reuse, at most
 * ENGINE_BUF_CACHE (16) of them, so a keep-alive request allocates nothing
 * of that size.
 *
 * A rule's timeouts.request and backendRequest (GEP-2257 durations) end a
 * request with 504 before its response starts, with a reset after; without
 * retries both are one window, from the request head on, the shorter wins.
 *
 * A request's body up to ENGINE_REPLAY_MAX bytes (as framed: chunked
 * sizes included) is kept while the request is in flight, so that it can
 * be sent again (retry, a pooled connection found closed) and copied to
 * mirrors. A larger body is streamed only: such a request is not retried
 * (its failure is answered 502/503 at once) and not mirrored at all (a
 * mirror gets whole requests or none, never a cut body).
 *
 * RequestMirror (rule and backendRef filters, percent and fraction) sends a
 * copy of each request, once its body is whole, to an endpoint of the
 * mirror Service and drops its response.
 *
 * Every request ends in opts->on_request (rule entry, backend, status,
 * request and upstream latency), and in the engine's own per-request
 * metrics (engine_metrics_render), counted without a lock on slots resolved
 * when the tables are published.
 *
 * A rule's retry (experimental) sends a request (with a body up to
 * ENGINE_REPLAY_MAX) again, after the backoff and to an endpoint of the
 * same backend, when the response has
 * one of its codes or the connection failed before an answer (refused,
 * reset, closed); attempts omitted means 1, codes omitted means connection
 * failures only. timeouts.request covers all attempts.
 *
 * A connection that does not start like HTTP/1.x (a method token and SP:
 * a TLS ClientHello, a binary protocol) or whose client says nothing for
 * sniff_timeout_ms (a server-first protocol) is passed through at L4: a
 * backend of the class's L4 union (the kernel's weights), an endpoint as
 * for a request, the bytes read so far, then a tunnel both ways. Only the
 * first bytes of a connection are looked at: once HTTP, always HTTP.
 *
 * HTTP/2 cleartext (prior knowledge, Upgrade: h2c) goes to engine_h2.c:
 * every stream decided alone (GRPCRoute, HTTPRoute, weights per call),
 * gRPC local answers as grpc-status (UNIMPLEMENTED, UNAVAILABLE,
 * DEADLINE_EXCEEDED), flow control end to end per stream (64 KiB windows,
 * 128 streams per connection), upstream HTTP/2 pooled and multiplexed, the
 * backend port's appProtocol choosing HTTP/1.1 or HTTP/2 upstream for both
 * client protocols. engine_stats counts an HTTP/2 connection as one client
 * and one upstream, its streams as requests.
 *
 * Not done yet (issue 12): backendRequest per attempt.
 * Trailers are forwarded as they come.
 */
#ifndef GAMMAD_ENGINE_H
#define GAMMAD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/ip_addr.h"
#include "translate/translate.h"

/* Defaults of struct engine_opts (0 there means these). */
#define ENGINE_BUF_SIZE		(64 * 1024)	/* bytes, per buffer (4 per client) */
#define ENGINE_HEAD_MAX		(32 * 1024)	/* a request or response head; over: 431 / 502 */
#define ENGINE_HEADER_TIMEOUT_MS 10000		/* first byte of a head to its end */
#define ENGINE_IDLE_TIMEOUT_MS	60000		/* keep-alive wait, and no byte moving in a request */
#define ENGINE_CONNECT_TIMEOUT_MS 5000		/* upstream connect(); then 503 */
#define ENGINE_POOL_IDLE_MS	30000		/* an idle pooled upstream connection is closed */
#define ENGINE_TUNNEL_IDLE_MS	3600000		/* an Upgrade tunnel without traffic */
#define ENGINE_LINGER_MS	2000		/* draining a client after our last response */
#define ENGINE_SNIFF_TIMEOUT_MS	300		/* a client silent this long is server-first: L4 */
#define ENGINE_SNIFF_MAX	32		/* longest method token; no SP by then: not HTTP */
#define ENGINE_MAX_CONNS	4096		/* client connections; more are refused */
#define ENGINE_SOCK_BUF		(256 * 1024)	/* SO_RCVBUF and SO_SNDBUF of every socket */
#define ENGINE_POOL_MAX		1024		/* idle upstream connections in all */
#define ENGINE_REPLAY_MAX	(64 * 1024)	/* request body kept for retries and mirrors */
#define ENGINE_THREADS_MAX	64		/* event loops */

struct engine_origin {
	struct ip_addr vip;		/* the ClusterIP the client dialed */
	uint16_t vport;			/* and its port */
	char client_ns[64];		/* the client pod's namespace (its class) */
	char client_pod[254];		/* "ns/name", for logs */
	void *netns_ctx;		/* passed to upstream_socket(): which pod's netns;
					   also what pools upstreams */
	uint64_t netns_cookie;		/* of that netns (SO_NETNS_COOKIE of the listener):
					   the pod's sessionAffinity key, as at connect
					   time; 0: none (no affinity) */
	/*
	 * The kernel HTTP path (gammad run --kernel-http) may serve this
	 * connection: the client socket's cookie, 0: the engine's alone. Such
	 * a connection brings the engine bytes only when the kernel hands it
	 * over (for good, at a request boundary); while it is silent the
	 * engine asks opts.kernel_claim at its sniff time, and a connection
	 * the kernel serves has no timeouts here (the client's close ends it).
	 */
	uint64_t kernel_cookie;
};

/* One request, as it ended (for metrics and access logs). */
struct engine_request_log {
	const struct engine_origin *origin;
	const struct tr_entry *entry;		/* the rule's entry; NULL: none matched, no route,
						   or the request never got that far */
	const struct tr_backend *backend;	/* NULL: answered by the engine */
	int status;				/* what the client got; 0: nothing */
	bool complete;				/* false: cut short (a reset, a client gone) */
	uint64_t request_us;			/* head read -> response out (or the end) */
	uint64_t upstream_us;			/* request head queued -> response head, 0: none */
};

struct engine_kh_resp;

struct engine_opts {
	/*
	 * socket(family, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0) in the
	 * client's netns; -errno on failure. NULL: plain socket() here.
	 * Called from the loops' threads, several at once.
	 */
	int (*upstream_socket)(void *ctx, int family, void *netns_ctx);
	void *ctx;
	/*
	 * Called (from any thread) when no connection uses a translation
	 * given to engine_set_tables() anymore. NULL: tr_result_free(res) and
	 * free(res). The model the translation points into must live until then.
	 */
	void (*release_tables)(void *ctx, struct tr_result *res);
	/*
	 * Called in a loop's thread as each request ends (several at once); what l points
	 * to is valid during the call only. NULL: nothing.
	 */
	void (*on_request)(void *ctx, const struct engine_request_log *l);
	/*
	 * sessionAffinity ClientIP is the kernel's (engine_affinity.c): the
	 * entries of gammad_aff_v1 (affinity_fd) keyed by the backend's kernel
	 * id and the client's netns cookie, shared with the connect-time
	 * programs. backend_id: the be_id of Service port ns/name:port of one
	 * address family, 0 or -ENOENT (not in the kernel); called from the
	 * loops' threads, several at once. NULL: endpoints are drawn uniformly, no affinity.
	 */
	int (*backend_id)(void *ctx, const char *ns, const char *name, uint16_t port,
			  uint8_t family, uint32_t *be_id);
	int affinity_fd;
	/* Limits; 0 takes the ENGINE_* default. */
	size_t buf_size;
	unsigned int header_timeout_ms;
	unsigned int idle_timeout_ms;
	unsigned int connect_timeout_ms;
	unsigned int pool_idle_ms;
	unsigned int max_conns;		/* of all loops together */
	/*
	 * Event loops, each a thread with its own epoll, connections and
	 * upstream pools; 0: one per online CPU. ENGINE_THREADS_MAX at most.
	 */
	unsigned int threads;
	unsigned int sniff_timeout_ms;
	size_t sock_buf;
	/*
	 * A connection with origin.kernel_cookie said nothing for
	 * sniff_timeout_ms: true when the engine has it now (the kernel never
	 * saw a byte and never will: a server-first protocol, passed through),
	 * false when the kernel serves it. Called from the loops' threads.
	 * NULL: always true.
	 */
	bool (*kernel_claim)(void *ctx, uint64_t cookie);
	/*
	 * The kernel handed a connection over while responses of its own may
	 * still be on their way to the client: true while they are. The
	 * engine's responses wait until one tick after it said false (the
	 * kernel delivers through a work queue). NULL: never waits.
	 */
	bool (*kernel_pending)(void *ctx, uint64_t cookie);
	/*
	 * What the kernel knows of a client it served (cookie, the netns of
	 * its origin): ENGINE_KH_DRAINED when want has it and nothing the
	 * kernel redirected to the client waits in its sockmap queue any more
	 * (what the engine writes may go now without overtaking); for slot
	 * (UINT32_MAX: none) ENGINE_KH_WHOLE when no response owed on it is
	 * incomplete and ENGINE_KH_CLOSE when its last one is close-delimited.
	 * NULL: slow readers are reset, not relayed, and a FIN after the
	 * kernel's response waits two ticks instead.
	 */
	unsigned int (*kernel_state)(void *ctx, uint64_t cookie, void *netns_ctx, uint32_t slot,
				     unsigned int want);
	/*
	 * The kernel handed this connection over for a miss (no upstream of
	 * its own yet) and takes it back once the engine is done: asked once
	 * per hand-over. NULL: never.
	 */
	bool (*kernel_returnable)(void *ctx, uint64_t cookie);
	/*
	 * The engine has answered every request of the client and holds none
	 * of its bytes; out_len bytes of its last answer are still to go out
	 * on fd, and nothing after them. true: the kernel takes the connection
	 * at the client's next message if the client's TCP shows exactly that
	 * (else that message comes here as a hand-over), so the engine treats
	 * it as the kernel's again. false: it stays the engine's.
	 */
	bool (*kernel_return)(void *ctx, uint64_t cookie, int fd, size_t out_len);
	/*
	 * A relay whose bytes start with a response head the kernel could
	 * not edit (engine_relay.c): for seq UINT32_MAX, where it starts
	 * (out->seq; -ENOENT: a plain slow reader's relay); for response seq
	 * of slot, whether its request was HEAD and, when it needs
	 * ResponseHeaderModifier edits, the filters the kernel's record of
	 * them stands for, found in cls (the connection's class, Service port
	 * number port; they stay the engine's). 0, or -ESTALE when that record
	 * is gone or no longer says what cls says (the client is reset).
	 * NULL: never asked (the kernel cuts such heads only when it is).
	 */
	int (*kernel_resp)(void *ctx, uint32_t slot, uint32_t seq, const struct tr_class *cls,
			   uint16_t port, struct engine_kh_resp *out);
};

/* opts.kernel_resp's answer */
struct engine_kh_resp {
	uint32_t seq;			/* seq UINT32_MAX: the relay's first response */
	bool head;			/* its request was HEAD */
	bool edit;			/* filters[] apply (ResponseHeaderModifier among them) */
	const struct gapi_filter *filters[2];	/* the rule's, the backendRef's */
	size_t nr_filters[2];
};

#define ENGINE_KH_DRAINED	1u
#define ENGINE_KH_WHOLE		2u
#define ENGINE_KH_CLOSE		4u

/* What the engine holds now (for tests and /metrics); read from any thread. */
struct engine_stats {
	uint64_t clients;		/* client connections open */
	uint64_t upstreams;		/* upstream connections open, idle ones included */
	uint64_t upstreams_idle;	/* of them in the pool */
	uint64_t buffer_bytes;		/* bytes of connection buffers allocated */
	uint64_t requests;		/* requests answered (proxied or local) */
	uint64_t upstream_reused;	/* requests sent on a pooled connection */
	uint64_t passthroughs;		/* connections passed through at L4 (not HTTP) */
	uint64_t kernel_relays;		/* slow kernel-served readers relayed (engine_kernel_relay) */
	uint64_t kernel_returns;	/* connections given back to the kernel after a miss */
	uint64_t kernel_relay_edits;	/* kernel relays starting at a head the kernel could not edit */
	uint64_t kernel_eofs;		/* kernel-served clients ended after a close-delimited response */
};

struct engine;

struct engine *engine_new(const struct engine_opts *opts);
/*
 * Publish a new translation (after every apply). res is heap-allocated and
 * the engine owns it from this call on (also on failure): it is released
 * through opts->release_tables when the last request that started on it is
 * done. A request keeps the tables it started with. 0 or -errno.
 */
int engine_set_tables(struct engine *e, struct tr_result *res);
/*
 * Hand an accepted client connection to the engine; the engine owns fd from
 * this call on (also on failure, when it is closed). Any thread. 0 or -errno.
 * From an acceptor's callback (engine_set_acceptor) the connection stays in
 * the loop that runs it; from any other thread the loops take turns.
 */
int engine_adopt(struct engine *e, int fd, const struct engine_origin *o);
/*
 * A pod went away: close every client connection adopted with netns_ctx and
 * every pooled upstream connection made with it. Returns when that is done;
 * then netns_ctx may be freed (or reused for another pod: pooled connections
 * are keyed by it). Any thread but the engine's.
 */
void engine_forget_netns(struct engine *e, void *netns_ctx);
/*
 * The kernel HTTP path lost the upstream of the client connection with
 * origin.kernel_cookie `cookie` in the middle of a response: reset it (the
 * client sees a reset, not a clean end). Any thread; does not wait.
 */
void engine_kernel_reset(struct engine *e, uint64_t cookie);
/*
 * Its close-delimited response ended (the upstream closed): the client's
 * side is shut down for writing once what the kernel redirected to it is
 * all queued there (opts.kernel_state, asked from the next timer tick on;
 * without it two ticks from now), as the engine ends such a response.
 * Any thread; does not wait.
 */
void engine_kernel_eof(struct engine *e, uint64_t cookie);
/*
 * Its client read too slowly: the rest of what its upstream (upstream_fd,
 * the kernel's slot `slot`; the engine takes a dup of it) sends is the
 * engine's to relay, and the connection is the engine's from then on.
 * The relay writes only once the kernel's bytes are all queued at the
 * client (opts.kernel_state), ends with the last response owed (the
 * engine answers the client's later requests after it), or with the
 * upstream's close (a FIN after a close-delimited response, a reset after
 * a cut one). Any thread; does not wait. -errno when no relay can be made
 * (opts.kernel_state NULL, no memory): then the caller resets the client.
 */
int engine_kernel_relay(struct engine *e, uint64_t cookie, uint32_t slot, int upstream_fd);
/*
 * Restarts (engine_handoff.c). A client connection taken from a previous
 * engine at a request boundary: it spoke HTTP already, so it is not sniffed
 * again (an idle keep-alive connection would look server-first). Same
 * ownership as engine_adopt().
 */
int engine_adopt_http(struct engine *e, int fd, const struct engine_origin *o);
/*
 * give(ctx, fd, origin, http): pass fd (and what the successor needs) on;
 * 0: passed (the engine then closes its own fd, without shutdown: the socket
 * lives on in the successor), -EAGAIN: try again later, -EXDEV: this one
 * stays here (asked again next turn), other -errno: the successor is gone,
 * stop handing over. origin.kernel_cookie goes too: the successor adopts
 * it as one the kernel HTTP path may serve.
 */
typedef int (*engine_give_fn)(void *ctx, int fd, const struct engine_origin *o, bool http);
/*
 * Hand every client connection to give() as soon as it is at a request
 * boundary: no request in flight, no byte of the next one read, nothing
 * left to send. What the client sends next waits in the socket for the
 * successor. Connections not at a boundary yet are served on and given at
 * their next one (tunnels never are). engine_get_stats().clients tells how
 * many are left. Any thread; give() runs in the engine's.
 */
int engine_handoff(struct engine *e, engine_give_fn give, void *ctx);
/*
 * Accept in the loops: one loop at a time watches fd (pollable, e.g. an epoll
 * set of listening sockets; level triggered) and, when it is readable, calls
 * fn(ctx) in its own thread, where fn accepts (non-blocking: a loop must
 * never wait) and calls engine_adopt(): no hand-off to another thread per
 * connection. Then the next loop watches fd. fn NULL: stop watching; returns
 * once no call of the old fn runs any more. Any thread but a loop's. 0 or
 * -errno.
 */
int engine_set_acceptor(struct engine *e, int fd, void (*fn)(void *ctx), void *ctx);
/* Event loops running (opts.threads, resolved). */
unsigned int engine_threads(const struct engine *e);
/* Start the event loops, each in its own thread. 0 or -errno. */
int engine_start(struct engine *e);
/* Stop the loops and close every connection they hold. */
void engine_stop(struct engine *e);
void engine_free(struct engine *e);
void engine_get_stats(struct engine *e, struct engine_stats *st);
/*
 * Prometheus text of the engine, any thread:
 *   gammad_http_requests_total{namespace,route,rule,backend,code_class}
 *     namespace/route: the HTTPRoute; rule: its name, else its index;
 *     backend: "ns/name:port", "" when the engine answered (redirect, 404,
 *     500, 503); code_class: 1xx..5xx, "none" when the client got nothing.
 *     Requests no rule decided (no rule matched, a refused head) have
 *     every label empty; a class without routes has only backend set.
 *   gammad_http_request_duration_seconds{namespace,route,rule,backend}:
 *     histogram, request head read to the response's end.
 *   gammad_http_upstream_duration_seconds{...}: histogram, request head
 *     queued upstream to the response head (requests that reached one).
 *   gammad_http_engine_clients, _upstreams, _upstreams_idle, _buffer_bytes
 *     (gauges), _upstream_reused_total, _passthroughs_total, _kernel_relays_total,
 *     _kernel_relay_edits_total, _kernel_eofs_total.
 * A series shows from its first request on and is kept for the engine's
 * life (a route removed and added again continues its counters).
 */
int engine_metrics_render(struct engine *e, FILE *out);
/*
 * What a request from client o (its namespace, the ClusterIP:port it
 * dialed) gets on the tables the engine serves now, as one JSON object:
 * generation (engine_set_tables calls so far), service_port (false: the
 * engine knows no such Service port: 503), service, class, route_kind,
 * status, rule {kind, namespace, route, index, name, match, filters,
 * backends [{backend, weight, state, endpoints, filters}]}, picked (one
 * weighted draw), location (redirects), target and request_headers (as the
 * backend would get them), response_headers. Any thread. 0 or -errno.
 */
struct ev_request;
int engine_explain(struct engine *e, const struct engine_origin *o, const struct ev_request *req,
		   FILE *out);

#endif
