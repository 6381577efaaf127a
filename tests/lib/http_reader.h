/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading HTTP/1.1 responses in tests with the library's own parser
 * (http/http1.h): a buffered reader on a blocking socket (its SO_RCVTIMEO
 * is the timeout), whole responses with their bodies (Content-Length,
 * chunked with trailers, close-delimited).
 */
#ifndef GAMMAD_TEST_HTTP_READER_H
#define GAMMAD_TEST_HTTP_READER_H

#include <stddef.h>
#include <sys/types.h>

#include "http/http1.h"

struct reader {
	int fd;
	char *buf;
	size_t len, cap;
};

struct resp {
	int status;
	char *head;		/* NUL-terminated */
	struct h1_head h;	/* points into head */
	char *body;
	size_t body_len;
	char trailer[128];	/* a chunked body's trailer section */
};

/* More bytes: >0, 0 on EOF, -errno (ECONNRESET, EAGAIN for the timeout). */
ssize_t rd_more(struct reader *r);
void rd_drop(struct reader *r, size_t n);
void resp_free(struct resp *p);
/* Close its socket (fd < 0: none) and free its buffer. */
void rd_close(struct reader *r);
/*
 * One final response (interim ones are skipped, counted in *interim) to a
 * request of method. 0, or -errno: -ECONNRESET for a reset, -EPIPE for an
 * EOF inside the message, -EAGAIN on the timeout.
 */
int read_resp(struct reader *r, const char *method, struct resp *p, int *interim);
/* A response field's value in buf, or NULL. */
const char *resp_header(struct resp *p, const char *name, char *buf, size_t len);
/* Send raw bytes and read one response to method. */
int exchange(struct reader *r, const char *raw, const char *method, struct resp *p);
/* The pod the echo server named in its JSON body, in buf. */
const char *echo_pod(const struct resp *p, char *buf, size_t len);

#endif
