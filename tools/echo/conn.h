/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A non-blocking stream connection with input and output queues. The
 * protocol (HTTP or the TCP line protocol) only sees bytes in c->in and
 * appends replies to c->out; this layer reads, writes, applies backpressure
 * and closes gracefully.
 */
#ifndef ECHO_CONN_H
#define ECHO_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "strbuf.h"

/* Stop reading while this much output waits: a client that pipelines
 * without reading its responses must not grow our memory without bound. */
#define CONN_OUT_HIGH_WATER	(1024 * 1024)
/* Input kept while the protocol cannot consume it (head + one read). */
#define CONN_IN_LIMIT		(HTTP_MAX_HEAD + 64 * 1024)
/* How long a closing connection waits for the peer to read our last bytes. */
#define CONN_LINGER_MS		2000

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct conn;

struct conn_ops {
	/*
	 * Consume what it can from c->in and append replies to c->out; stop
	 * early when c->out reaches CONN_OUT_HIGH_WATER. Negative errno drops
	 * the connection at once.
	 */
	int (*process)(struct conn *c);
	/* The deadline from conn_set_deadline() has passed. */
	int (*timeout)(struct conn *c);
	/* Free the protocol's state (and the object containing @c). */
	void (*destroy)(struct conn *c);
};

struct conn {
	struct ep_item ep;
	int fd;
	struct echo_server *srv;
	const struct conn_ops *ops;
	unsigned short local_port;	/* where the connection arrived */
	char peer[INET6_ADDRSTRLEN + 8];
	struct strbuf in, out;
	bool peer_eof;		/* the peer will send nothing more */
	bool close_after_flush;	/* set by the protocol: last reply queued */
	bool paused;		/* protocol waits for its timer, not for input */
	bool lingering;		/* our side is shut down, draining the peer */
	uint32_t events;	/* what epoll watches now */
	int64_t deadline;	/* CLOCK_MONOTONIC ms, 0 when none */
	struct conn *prev, *next;		/* srv->conns */
	struct conn *timer_prev, *timer_next;	/* srv->timers */
};

/* Set up @c for accepted socket @fd and add it to the server. */
int conn_init(struct conn *c, struct echo_server *srv, int fd,
	      const struct listener *l, const struct conn_ops *ops);
/* Handle epoll @events for @c (it may be destroyed). */
void conn_handle(struct conn *c, uint32_t events);
/* Process, flush and update epoll after a state change (it may be destroyed). */
void conn_run(struct conn *c);
/* Arm (or with 0, disarm) the connection's single timer. */
void conn_set_deadline(struct conn *c, int64_t deadline);
/* Run the timers that are due; returns ms until the next one, or -1. */
int conn_run_timers(struct echo_server *srv);
void conn_destroy(struct conn *c);

#endif
