/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's HTTP endpoint (libmicrohttpd, its own thread): /metrics in
 * the Prometheus text format (user/lib/metrics.h), /healthz (200 while the
 * agent runs), /readyz (200 once the first full apply is done, 503
 * before) and, with the HTTP engine, /explain (its live decision).
 */
#ifndef GAMMAD_METRICS_HTTP_H
#define GAMMAD_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct metrics_server;

/* 0 if addr is "IP:PORT" or "[IPv6]:PORT", else -EINVAL (logged). */
int metrics_addr_check(const char *addr);
/* addr: "IP:PORT" or "[IPv6]:PORT" (port 0: any free port, logged). */
int metrics_server_start(const char *addr, const char *pin_dir, struct metrics_server **out);
/*
 * Record an apply: err 0 for success, its duration in milliseconds and the
 * number of input errors (diagnostics of level error) in the manifests.
 */
void metrics_server_note_apply(struct metrics_server *s, int err, double ms,
			       size_t input_errors);
/*
 * More /metrics text after the data path's and the agent's: render(ctx,
 * out) is called per scrape from the server's thread (the HTTP engine's
 * series). Clear it (NULL) before what ctx points to goes.
 */
void metrics_server_set_extra(struct metrics_server *s, int (*render)(void *ctx, FILE *out),
			      void *ctx);
/*
 * GET /explain?ns=NS&vip=IP&port=N[&method=M][&target=/p?q][&host=H][&h=Name:value]...
 * asks fn (the HTTP engine, engine_explain) what a request from a pod of
 * namespace NS to IP:N gets on the live tables; 404 while fn is NULL.
 */
#define EXPLAIN_HEADERS_MAX 32
struct explain_query {
	const char *ns, *vip, *method, *target, *host;	/* NULL when not given */
	unsigned int port;
	const char *headers[EXPLAIN_HEADERS_MAX];	/* "Name:value" */
	size_t nr_headers;
};
void metrics_server_set_explain(struct metrics_server *s,
				int (*fn)(void *ctx, const struct explain_query *q, FILE *out),
				void *ctx);
void metrics_server_stop(struct metrics_server *s);

#endif
