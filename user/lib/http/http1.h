/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 message heads and body framing (RFC 9112), for the HTTP engine:
 * it parses what a client or an upstream sent, decides where the message
 * ends, and refuses everything two parsers could read differently (request
 * smuggling): both Content-Length and Transfer-Encoding, repeated or
 * malformed lengths, bare CR or LF, obs-fold, whitespace before a colon,
 * control characters. A head is parsed in place: every string points into
 * the caller's buffer.
 *
 * The engine re-serializes every head it forwards, so what it accepts is
 * exactly what it understood. Differences from the reference parser
 * (nodejs' http_parser, tests/prog_tests/http1_diff.c) are listed there.
 */
#ifndef GAMMAD_HTTP1_H
#define GAMMAD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults of struct h1_limits (nginx and Envoy sit in the same range). */
#define H1_HEAD_MAX_DEFAULT	(64 * 1024)	/* request line + headers, bytes */
#define H1_TARGET_MAX_DEFAULT	(8 * 1024)	/* request-target, bytes */
#define H1_HEADERS_MAX		100		/* header fields per head */
#define H1_LEADING_CRLF_MAX	8		/* empty lines before a request line */

struct h1_limits {
	size_t head_max;	/* over it: H1_E_HEAD_TOO_LARGE (431) */
	size_t target_max;	/* over it: H1_E_TARGET_TOO_LONG (414) */
};

struct h1_str {
	const char *p;
	size_t len;
};

struct h1_header {
	struct h1_str name;	/* as sent; compare with h1_str_ieq() */
	struct h1_str value;	/* without leading and trailing whitespace */
	bool tab;		/* an HTAB in the value or around it */
};

/* Where a message's body ends. */
enum h1_body {
	H1_BODY_NONE,		/* no body: the head is the whole message */
	H1_BODY_LENGTH,		/* content_length bytes */
	H1_BODY_CHUNKED,	/* chunked coding (h1_chunked_scan) */
	H1_BODY_CLOSE,		/* a response read until the upstream closes */
};

struct h1_head {
	/* request */
	struct h1_str method;
	struct h1_str target;		/* request-target as sent */
	struct h1_str path;		/* its path and query ("/" for "*" and
					   authority form): what routes match */
	/* response */
	uint16_t status;
	struct h1_str reason;
	/* both */
	uint8_t minor;			/* HTTP/1.<minor>: 0 or 1 */
	size_t head_len;		/* bytes of the head, with the final CRLF CRLF */
	size_t skipped;			/* empty lines skipped before the request line */
	struct h1_header headers[H1_HEADERS_MAX];
	size_t nr_headers;
	/* what the fields mean */
	enum h1_body body;
	uint64_t content_length;	/* H1_BODY_LENGTH */
	bool keep_alive;		/* the connection may carry another message */
	bool expect_continue;		/* request: Expect: 100-continue */
	bool upgrade;			/* request: Upgrade + Connection: upgrade;
					   response: 101 Switching Protocols */
	struct h1_str host;		/* request: the Host field */
};

/* Errors, returned negated; h1_error_status() is the answer to a client. */
enum h1_error {
	H1_E_SYNTAX = 1,		/* 400: not an HTTP/1.x message */
	H1_E_LINE_END,			/* 400: CR or LF alone */
	H1_E_METHOD,			/* 400: method is no token */
	H1_E_TARGET,			/* 400: not an origin, absolute, authority or
					   asterisk form, or a byte RFC 3986 does not allow */
	H1_E_VERSION,			/* 505: HTTP/2.0, HTTP/1.2, ... */
	H1_E_REQUEST_LINE,		/* 400: not METHOD SP target SP HTTP/d.d */
	H1_E_STATUS,			/* 502 (response): not 3 digits in 100-599 */
	H1_E_HEADER_NAME,		/* 400: empty name, no token, space before ':' */
	H1_E_HEADER_VALUE,		/* 400: control character in a value */
	H1_E_OBS_FOLD,			/* 400: a line continued with SP or HTAB */
	H1_E_CONTENT_LENGTH,		/* 400: not digits, too large, or repeated */
	H1_E_TRANSFER_ENCODING,		/* 400: not ending in chunked, or on HTTP/1.0 */
	H1_E_LENGTH_AND_ENCODING,	/* 400: both Content-Length and Transfer-Encoding */
	H1_E_HOST,			/* 400: HTTP/1.1 request without one Host */
	H1_E_EXPECT,			/* 417: an expectation other than 100-continue */
	H1_E_TOO_MANY_HEADERS,		/* 431 */
	H1_E_HEAD_TOO_LARGE,		/* 431 */
	H1_E_TARGET_TOO_LONG,		/* 414 */
	H1_E_CHUNK,			/* 400: chunked body out of shape */
	H1_E_COUNT
};

const char *h1_error_str(int err);	/* err as returned (negative) */
int h1_error_status(int err);		/* the status code to answer with */

/* Where h1_head_end() got to in a head that is still arriving; zero it first. */
struct h1_scan {
	size_t pos;		/* bytes looked at */
	size_t line_start;	/* offset of the current line */
	size_t leading;		/* empty lines before the first line */
	bool started;		/* a non-empty line was seen */
};

/*
 * Find the end of a head in buf[0..len): the head's length (through the
 * empty line) when complete, 0 when more bytes are needed, or -error. The
 * scan state keeps how far an earlier call got, so feeding a head byte by
 * byte costs O(n) in all. A head fails with H1_E_HEAD_TOO_LARGE as soon as
 * lim->head_max bytes hold no end, and with H1_E_LINE_END at the first CR
 * or LF that is not part of a CRLF.
 */
long h1_head_end(const char *buf, size_t len, const struct h1_limits *lim, struct h1_scan *scan);

/*
 * Parse a complete request head (buf[0..len) with len from h1_head_end).
 * 0 or -error; out points into buf.
 */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
		     struct h1_head *out);

/*
 * Parse a complete response head to a request with method req_method
 * (HEAD has no response body). 0 or -error.
 */
int h1_parse_response(const char *buf, size_t len, const struct h1_str *req_method,
		      struct h1_head *out);

/* The first header named name (case-insensitive), or NULL. */
const struct h1_header *h1_header_get(const struct h1_head *h, const char *name);
bool h1_str_ieq(const struct h1_str *s, const char *lit);
bool h1_str_eq(const struct h1_str *s, const char *lit);

/*
 * Chunked coding, scanned as it streams through (the engine forwards the
 * bytes as they are; it only needs to know where the body ends).
 */
struct h1_chunked {
	int state;
	uint64_t remaining;		/* data bytes left in this chunk */
	unsigned int size_digits;
	size_t line_len;		/* bytes of the current size or trailer line */
	size_t trailer_bytes;		/* all trailer lines so far */
	bool trailer_name;		/* inside a trailer field's name */
	bool done;			/* the last chunk and the trailers ended */
};

#define H1_CHUNK_LINE_MAX	4096	/* a chunk-size line with its extensions */
#define H1_TRAILERS_MAX		(16 * 1024)

/*
 * Scan in[0..len) of a chunked body: returns how many bytes belong to the
 * body (fewer than len when it ended inside), or -H1_E_CHUNK. on_data, if
 * set, gets every span of chunk data (the decoded body).
 */
long h1_chunked_scan(struct h1_chunked *c, const char *in, size_t len,
		     void (*on_data)(void *ctx, const char *p, size_t n), void *ctx);

#endif
