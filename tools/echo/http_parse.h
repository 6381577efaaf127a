/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.x request head parser. It accepts and rejects what Go's net/http
 * server does (the echo-basic server is a Go program), because clients and
 * the mesh are tested against that behaviour.
 */
#ifndef ECHO_HTTP_PARSE_H
#define ECHO_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD		(64 * 1024)	/* request line + headers */
#define HTTP_MAX_HEADERS	256

struct http_span {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_span name;	/* in Go canonical form, e.g. "X-Header-Set" */
	struct http_span value;	/* surrounding spaces and tabs trimmed */
	bool hidden;		/* removed from the echoed headers, as Go does */
};

struct http_request {
	struct http_span method;
	struct http_span target;	/* raw request target (Go's RequestURI) */
	struct http_span proto;		/* "HTTP/1.1" as received */
	int minor;			/* HTTP/1.<minor> */
	int nr_headers;
	struct http_span host;		/* Host header, or absolute-form authority */
	bool keep_alive;
	bool chunked;			/* body uses chunked transfer coding */
	uint64_t content_length;	/* body length when not chunked */
	bool expect_continue;		/* client waits for "100 Continue" */
	bool is_head;
	struct http_header headers[HTTP_MAX_HEADERS];	/* last: not cleared */
};

/* Why a request was rejected: the status to answer with and a short reason. */
struct http_error {
	int status;
	const char *reason;
};

/*
 * Length of the request head in @buf including the blank line that ends it,
 * or 0 when the head is not complete yet. *@scan remembers how far @buf was
 * searched already (start it at 0, keep it while @buf only grows).
 */
size_t http_find_head_end(const char *buf, size_t len, size_t *scan);

/*
 * Parse a complete head. Header names are canonicalized in place, so @head
 * must stay alive and unchanged while @req is used. Returns 0, or -EINVAL
 * with @err saying what to answer.
 */
int http_parse_request(char *head, size_t len, struct http_request *req,
		       struct http_error *err);

bool http_span_eq_nocase(struct http_span s, const char *lit);
/* Whether the comma-separated list @s contains @token (case-insensitive). */
bool http_has_token(struct http_span s, const char *token);
bool http_is_tchar(unsigned char c);

#endif
