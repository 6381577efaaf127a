/* SPDX-License-Identifier: Apache-2.0 */
/*
 * STAND-IN for the HTTP engine core (user/lib/engine/engine.h, branch
 * `engine`), with the part of its interface the agent uses (same names,
 * same ownership rules), so the steering side
 * can be built and tested end to end before the core lands. When it lands,
 * this file and engine_stub.c go and steer.c includes "engine/engine.h".
 *
 * What the stand-in does with an adopted connection (a test protocol, not
 * HTTP): it writes "ORIGIN <vip> <vport> <client_ns> <client_pod>\n"; then,
 * if the client sends "CONNECT <ip> <port>\n", it opens an upstream socket
 * through opts->upstream_socket (in the client pod's netns), connects,
 * answers "CONNECTED\n" (or "FAILED <errno>\n") and relays bytes both ways
 * until either side closes. One thread per connection.
 */
#ifndef GAMMAD_ENGINE_STUB_H
#define GAMMAD_ENGINE_STUB_H

#include <stdint.h>

#include "base/ip_addr.h"

struct tr_result;

struct engine_origin {
	struct ip_addr vip;		/* the ClusterIP the client dialed */
	uint16_t vport;			/* and its port (host order) */
	char client_ns[64];		/* the client pod's namespace (its class) */
	char client_pod[254];		/* "ns/name", for logs */
	void *netns_ctx;		/* passed to upstream_socket(): which pod's netns */
};

struct engine_opts {
	/* socket(family, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0) in the client's netns */
	int (*upstream_socket)(void *ctx, int family, void *netns_ctx);
	void *ctx;
	/* when no connection uses a translation anymore; NULL: tr_result_free + free */
	void (*release_tables)(void *ctx, struct tr_result *res);
};

struct engine;

struct engine *engine_new(const struct engine_opts *opts);
/* The engine owns res from here on (the stand-in releases it at once). */
int engine_set_tables(struct engine *e, struct tr_result *res);
/* The engine owns fd from here on, also on failure. */
int engine_adopt(struct engine *e, int fd, const struct engine_origin *o);
/* A netns went away: drop what was made with netns_ctx (nothing to drop here). */
void engine_forget_netns(struct engine *e, void *netns_ctx);
int engine_start(struct engine *e);
void engine_stop(struct engine *e);
void engine_free(struct engine *e);

#endif
