// SPDX-License-Identifier: Apache-2.0
/* Reading HTTP/1.1 responses in tests: see http_reader.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "echo_harness.h"
#include "http_reader.h"



struct body_acc {
	struct resp *r;
	size_t cap;
};

static void on_body(void *ctx, const char *p, size_t n)
{
	struct body_acc *a = ctx;

	if (a->r->body_len + n + 1 > a->cap) {
		a->cap = (a->r->body_len + n + 1) * 2;
		a->r->body = realloc(a->r->body, a->cap);
	}
	memcpy(a->r->body + a->r->body_len, p, n);
	a->r->body_len += n;
	a->r->body[a->r->body_len] = 0;
}

/* More bytes: >0, 0 on EOF, -errno (ECONNRESET, EAGAIN for the timeout). */
ssize_t rd_more(struct reader *r)
{
	ssize_t n;

	if (r->len == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 65536;
		r->buf = realloc(r->buf, r->cap);
	}
	n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
	if (n < 0)
		return -errno;
	r->len += n;
	return n;
}

void rd_drop(struct reader *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

void resp_free(struct resp *p)
{
	free(p->head);
	free(p->body);
	memset(p, 0, sizeof(*p));
}

void rd_close(struct reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	*r = (struct reader){ .fd = -1 };
}

/*
 * One final response (interim ones are skipped, counted in *interim) to a
 * request of method. 0, or -errno: -ECONNRESET for a reset, -EPIPE for an
 * EOF inside the message, -EAGAIN on the timeout.
 */
int read_resp(struct reader *r, const char *method, struct resp *p, int *interim)
{
	struct h1_limits lim = { H1_HEAD_MAX_DEFAULT, H1_TARGET_MAX_DEFAULT };
	struct h1_str m = { method, strlen(method) };
	struct body_acc acc = { p, 0 };
	ssize_t n;
	long hl;

	memset(p, 0, sizeof(*p));
	p->body = calloc(1, 1);
	for (;;) {
		struct h1_scan scan = { 0 };

		while ((hl = h1_head_end(r->buf, r->len, &lim, &scan)) == 0) {
			n = rd_more(r);
			if (n <= 0)
				return n ? n : -EPIPE;
		}
		if (hl < 0)
			return -EPROTO;
		free(p->head);
		p->head = strndup(r->buf, hl);
		rd_drop(r, hl);
		if (h1_parse_response(p->head, hl, &m, &p->h))
			return -EPROTO;
		p->status = p->h.status;
		if (p->status >= 200 || p->status == 101)
			break;
		if (interim)
			(*interim)++;
	}
	if (p->h.body == H1_BODY_LENGTH) {
		while (r->len < p->h.content_length) {
			n = rd_more(r);
			if (n <= 0)
				return n ? n : -EPIPE;
		}
		on_body(&acc, r->buf, p->h.content_length);
		rd_drop(r, p->h.content_length);
	} else if (p->h.body == H1_BODY_CHUNKED) {
		struct h1_chunked ch = { 0 };

		for (;;) {
			long k = h1_chunked_scan(&ch, r->buf, r->len, on_body, &acc);

			if (k < 0)
				return -EPROTO;
			if (ch.done) {
				/* the trailer section is in the tail of what was scanned */
				size_t t = (size_t)k < sizeof(p->trailer) - 1 ? (size_t)k :
					   sizeof(p->trailer) - 1;

				memcpy(p->trailer, r->buf + k - t, t);
				rd_drop(r, k);
				break;
			}
			rd_drop(r, k);
			n = rd_more(r);
			if (n <= 0)
				return n ? n : -EPIPE;
		}
	} else if (p->h.body == H1_BODY_CLOSE) {
		while ((n = rd_more(r)) > 0)
			;
		if (n < 0)
			return n;
		on_body(&acc, r->buf, r->len);
		rd_drop(r, r->len);
	}
	return 0;
}

const char *resp_header(struct resp *p, const char *name, char *buf, size_t len)
{
	const struct h1_header *x = h1_header_get(&p->h, name);

	if (!x)
		return NULL;
	snprintf(buf, len, "%.*s", (int)x->value.len, x->value.p);
	return buf;
}

/* Send raw bytes and read one response to method. */
int exchange(struct reader *r, const char *raw, const char *method, struct resp *p)
{
	if (echo_send_str(r->fd, raw))
		return -EIO;
	return read_resp(r, method, p, NULL);
}

/* The pod the echo server named in its JSON body, in buf. */
const char *echo_pod(const struct resp *p, char *buf, size_t len)
{
	const char *s = p->body ? strstr(p->body, "\"pod\": \"") : NULL;
	const char *e;

	if (!s)
		return "";
	s += 8;
	e = strchr(s, '"');
	snprintf(buf, len, "%.*s", e ? (int)(e - s) : 0, s);
	return buf;
}


