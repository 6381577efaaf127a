/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The routes of echo-basic's HTTP listener: /health, /status/NNN and the
 * echo handler for everything else, plus the ServeMux redirects in front.
 * Not implemented: /retry/ and /ws (they reach the echo handler), form-body
 * delay parameters, TLS details.
 */
#ifndef ECHO_HTTP_HANDLER_H
#define ECHO_HTTP_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "http_parse.h"
#include "identity.h"
#include "strbuf.h"

struct http_handler_ctx {
	const struct pod_identity *id;
	unsigned short local_port;	/* reported as httpPort */
	/* Reused between requests to avoid allocations. */
	struct strbuf headers, body, path, scratch;
};

struct http_handled {
	int status;
	int64_t delay_ms;	/* hold the response this long (?delay=) */
	bool close;		/* close the connection after the response */
};

/* Append the complete response to @req to @out. */
int http_handle(const struct http_request *req, struct http_handler_ctx *ctx,
		struct strbuf *out, struct http_handled *res);

void http_handler_ctx_free(struct http_handler_ctx *ctx);

#endif
