/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request evaluator: what the effective table of one Service port and
 * client class does with one request. It is the executable statement of the
 * routing semantics: the conformance test asks it, `gammactl explain` will,
 * and the kernel's HTTP matcher must agree with it.
 *
 * Matching (Gateway API HTTPRouteMatch / GRPCRouteMatch):
 *  - Exact path: byte equality. PathPrefix: on path-element boundaries, a
 *    trailing '/' of the prefix ignored: "/v2" matches "/v2", "/v2/",
 *    "/v2/x", not "/v2x". RegularExpression: POSIX ERE over the whole value
 *    (userspace only).
 *  - Header names case-insensitive, values exact; the first header of a name
 *    is compared. Query parameters: names and values exact (no percent
 *    decoding), the first occurrence is compared.
 *  - gRPC: service and method exact (or ERE); an absent one matches any.
 * Outcome: the first matching entry of the table (it is sorted by
 * precedence); none gives 404. A RequestRedirect answers 3xx with Location.
 * Otherwise a backend is picked by weight: OK gives 200, an unresolved
 * backendRef 500, a Service without ready endpoints 503; a rule whose
 * weights sum to 0 (or with no backendRefs) gives 500. A port without routes
 * goes to its own endpoints.
 */
#ifndef GAMMAD_TRANSLATE_EVAL_H
#define GAMMAD_TRANSLATE_EVAL_H

#include "translate.h"

struct ev_header {
	const char *name;
	const char *value;
};

struct ev_request {
	const char *method;		/* NULL: GET */
	const char *target;		/* path and query ("/a?x=1"); NULL or "": "/" */
	const struct ev_header *headers;
	size_t nr_headers;
	const char *grpc_service;	/* gRPC tables: "pkg.Service" */
	const char *grpc_method;	/* gRPC tables: "Method" */
	const char *scheme;		/* NULL: "http" */
	const char *host;		/* authority without port, for redirects */
	uint16_t port;			/* the Service port the client connected to */
};

struct ev_kv {
	char *name;
	char *value;
};

struct ev_headers {
	struct ev_kv *items;
	size_t nr;
};

struct ev_redirect {
	char *scheme, *host, *path;	/* path includes the query */
	uint16_t port;			/* 0: the scheme's default, omitted */
	char *location;
};

struct ev_result {
	int status;			/* 200, 301..308, 404, 500, 503 */
	const struct tr_entry *entry;	/* NULL: no rule matched (or no route) */
	const struct tr_backend *backend;	/* picked; NULL on 404/redirect/no backend */
	char *target;			/* path and query the backend sees */
	struct ev_redirect redirect;	/* set when status is 3xx */
	struct ev_headers request_headers;	/* as the backend receives them */
	struct ev_headers response_headers;	/* set by ResponseHeaderModifier */
};

/* First entry of the table matching the request, or NULL. */
const struct tr_entry *ev_match(const struct tr_class *cls, const struct ev_request *req);
/* The backend that draw (any number; taken modulo the total weight) selects. */
const struct tr_backend *ev_pick_backend(const struct tr_backend *b, size_t nr,
					 uint64_t draw);
/* The backend of an L4 union by its weights (the kernel's pick for a connection), or NULL. */
const struct tr_backend *ev_pick_l4(const struct tr_l4 *l4, uint64_t draw);
/* Evaluate a request; draw selects among weighted backends. */
int ev_evaluate(const struct tr_class *cls, const struct ev_request *req, uint64_t draw,
		struct ev_result *out);
void ev_result_free(struct ev_result *r);
/* First value of a header (case-insensitive name), or NULL. */
const char *ev_header_get(const struct ev_headers *h, const char *name);

#endif
