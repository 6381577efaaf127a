/* SPDX-License-Identifier: Apache-2.0 */
/* One HTTP/1.1 request and its response on a client connection. */
#ifndef ECHO_CLIENT_HTTP_H
#define ECHO_CLIENT_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "http_parse.h"
#include "strbuf.h"
#include "url.h"

#define CLIENT_MAX_RESPONSE_HEADERS 256
#define CLIENT_MAX_BODY (64 * 1024 * 1024)

struct client_conn {
	int fd;			/* -1 when not connected */
	struct strbuf in;	/* read but not yet used */
	bool reused;		/* a response was read on it before */
};

struct client_response {
	int status;
	struct strbuf head;	/* the final response head, as received */
	struct http_header headers[CLIENT_MAX_RESPONSE_HEADERS];	/* into head */
	int nr_headers;
	struct strbuf body;	/* decoded (no chunk framing) */
	bool must_close;	/* the connection cannot carry another request */
};

/*
 * Send the request described by @o and @u on @cc and read the response
 * (1xx interim responses are skipped). Returns 0, or negative errno with a
 * message in @err_msg. *@retry is set when a reused connection turned out
 * to be closed before any response byte: the request can go again on a
 * new connection.
 */
int client_http_exchange(struct client_conn *cc, const struct client_opts *o,
			 const struct url *u, int64_t deadline,
			 struct client_response *resp, bool *retry,
			 char *err_msg, size_t size);

void client_response_free(struct client_response *resp);

#endif
