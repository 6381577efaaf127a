/* SPDX-License-Identifier: Apache-2.0 */
/* Serializing HTTP/1.1 responses. */
#ifndef ECHO_HTTP_REPLY_H
#define ECHO_HTTP_REPLY_H

#include <stdbool.h>

#include "http_parse.h"
#include "strbuf.h"

struct http_reply {
	int status;
	struct strbuf *headers;	/* "Name: value\r\n" lines set by the handler */
	struct strbuf *body;
	bool close;		/* answer with Connection: close and close after */
};

/*
 * Append the response to @out: status line, the handler's headers, Date,
 * Content-Length (every status that may have a body, HEAD included),
 * Connection when needed, and the body unless @req is HEAD. @req may be NULL
 * for a request that could not be parsed.
 */
int http_reply_write(const struct http_reply *r, const struct http_request *req,
		     struct strbuf *out);

/* A plain-text error for a request that is refused; always closes. */
int http_error_write(struct strbuf *out, int status, const char *reason);

/* Status line text for @status: Go's text, or "status code N" like Go. */
int http_status_line(struct strbuf *out, int status);

#endif
