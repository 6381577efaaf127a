// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "chunked.h"
#include "client_http.h"
#include "net.h"

static int build_request(struct strbuf *req, const struct client_opts *o, const struct url *u)
{
	const char *method = o->method ? o->method : "GET";
	size_t body_len = o->body ? strlen(o->body) : 0;
	bool sends_body = o->body || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
			  !strcmp(method, "PATCH");
	int err;

	err = strbuf_printf(req, "%s %s%.*s HTTP/1.1\r\nHost: %s\r\n", method,
			    u->target_needs_slash ? "/" : "", (int)u->target_len, u->target,
			    o->host_header ? o->host_header : u->authority);
	for (int i = 0; !err && i < o->nr_headers; i++)
		err = strbuf_printf(req, "%s\r\n", o->headers[i].line);
	if (!err && sends_body)
		err = strbuf_printf(req, "Content-Length: %zu\r\n", body_len);
	err = err ?: strbuf_puts(req, "\r\n");
	if (!err && body_len)
		err = strbuf_append(req, o->body, body_len);
	return err;
}

/* Read once into cc->in: bytes read, 0 at EOF, negative errno. */
static ssize_t read_more(struct client_conn *cc, int64_t deadline)
{
	char buf[16384];
	ssize_t n;
	int err;

	for (;;) {
		n = recv(cc->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			err = strbuf_append(&cc->in, buf, n);
			return err ? err : n;
		}
		if (!n)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		err = net_wait(cc->fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

static int parse_status_line(struct http_span line, int *status, int *minor)
{
	const char *p = line.p;

	if (line.len < 12 || memcmp(p, "HTTP/1.", 7) || p[7] < '0' || p[7] > '9' ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (line.len > 12 && p[12] != ' '))
		return -EPROTO;
	*minor = p[7] - '0';
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return 0;
}

static struct http_span trim(struct http_span s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

/* Split resp->head into the status and header spans. */
static int parse_head(struct client_response *resp, int *minor)
{
	const char *p = strbuf_peek(&resp->head), *end = p + strbuf_avail(&resp->head);
	bool first = true;

	resp->nr_headers = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		struct http_span line = { p, nl ? (size_t)(nl - p) : (size_t)(end - p) };
		const char *colon;

		p += line.len + 1;
		if (line.len && line.p[line.len - 1] == '\r')
			line.len--;
		if (first) {
			if (parse_status_line(line, &resp->status, minor))
				return -EPROTO;
			first = false;
			continue;
		}
		if (!line.len)
			break;
		colon = memchr(line.p, ':', line.len);
		if (!colon || colon == line.p)
			return -EPROTO;
		if (resp->nr_headers == CLIENT_MAX_RESPONSE_HEADERS)
			return -E2BIG;
		resp->headers[resp->nr_headers].name = (struct http_span){ line.p, colon - line.p };
		resp->headers[resp->nr_headers].value =
			trim((struct http_span){ colon + 1, line.p + line.len - colon - 1 });
		resp->nr_headers++;
	}
	return first ? -EPROTO : 0;
}

static const struct http_header *find_header(const struct client_response *resp, const char *name)
{
	const struct http_header *found = NULL;

	for (int i = 0; i < resp->nr_headers; i++)
		if (http_span_eq_nocase(resp->headers[i].name, name))
			found = &resp->headers[i];	/* the last one wins */
	return found;
}

/* Read one response head into resp->head; *@got_bytes tells if anything came. */
static int read_head(struct client_conn *cc, struct client_response *resp,
		     int64_t deadline, bool *got_bytes)
{
	size_t scan = 0, end;
	ssize_t n;

	for (;;) {
		/* Skip the blank lines some servers put between responses. */
		while (!scan && strbuf_avail(&cc->in) &&
		       (strbuf_peek(&cc->in)[0] == '\r' || strbuf_peek(&cc->in)[0] == '\n'))
			strbuf_consume(&cc->in, 1);
		end = http_find_head_end(strbuf_peek(&cc->in), strbuf_avail(&cc->in), &scan);
		if (end)
			break;
		if (strbuf_avail(&cc->in) > HTTP_MAX_HEAD)
			return -E2BIG;
		n = read_more(cc, deadline);
		if (n < 0)
			return n;
		if (!n)
			return -ECONNRESET;
		*got_bytes = true;
	}
	strbuf_reset(&resp->head);
	if (strbuf_append(&resp->head, strbuf_peek(&cc->in), end))
		return -ENOMEM;
	strbuf_consume(&cc->in, end);
	return 0;
}

static int read_body_length(struct client_conn *cc, struct client_response *resp,
			    uint64_t len, int64_t deadline)
{
	if (len > CLIENT_MAX_BODY)
		return -EFBIG;
	while (strbuf_avail(&resp->body) < len) {
		size_t want = len - strbuf_avail(&resp->body);
		size_t n = strbuf_avail(&cc->in) < want ? strbuf_avail(&cc->in) : want;
		ssize_t got;

		if (n) {
			if (strbuf_append(&resp->body, strbuf_peek(&cc->in), n))
				return -ENOMEM;
			strbuf_consume(&cc->in, n);
			continue;
		}
		got = read_more(cc, deadline);
		if (got < 0)
			return got;
		if (!got)
			return -ECONNRESET;	/* shorter than its Content-Length */
	}
	return 0;
}

static int read_body_chunked(struct client_conn *cc, struct client_response *resp,
			     int64_t deadline)
{
	struct chunked_decoder d;
	size_t used;
	ssize_t got;
	int ret;

	chunked_init(&d);
	for (;;) {
		ret = chunked_feed(&d, strbuf_peek(&cc->in), strbuf_avail(&cc->in), &used,
				   &resp->body);
		strbuf_consume(&cc->in, used);
		if (ret)
			return ret < 0 ? ret : 0;
		if (strbuf_avail(&resp->body) > CLIENT_MAX_BODY)
			return -EFBIG;
		got = read_more(cc, deadline);
		if (got < 0)
			return got;
		if (!got)
			return -ECONNRESET;
	}
}

static int read_body_until_close(struct client_conn *cc, struct client_response *resp,
				 int64_t deadline)
{
	ssize_t got;

	for (;;) {
		if (strbuf_append(&resp->body, strbuf_peek(&cc->in), strbuf_avail(&cc->in)))
			return -ENOMEM;
		strbuf_reset(&cc->in);
		if (strbuf_avail(&resp->body) > CLIENT_MAX_BODY)
			return -EFBIG;
		got = read_more(cc, deadline);
		if (got <= 0)
			return got;
	}
}

static int read_body(struct client_conn *cc, struct client_response *resp, int minor,
		     bool head_request, int64_t deadline)
{
	const struct http_header *te = find_header(resp, "Transfer-Encoding");
	const struct http_header *cl = find_header(resp, "Content-Length");
	const struct http_header *conn = find_header(resp, "Connection");
	uint64_t len = 0;

	if (conn && http_has_token(conn->value, "close"))
		resp->must_close = true;
	if (minor == 0 && !(conn && http_has_token(conn->value, "keep-alive")))
		resp->must_close = true;
	if (head_request || resp->status == 204 || resp->status == 304)
		return 0;
	if (te && http_has_token(te->value, "chunked"))
		return read_body_chunked(cc, resp, deadline);
	if (cl) {
		for (size_t i = 0; i < cl->value.len; i++) {
			if (cl->value.p[i] < '0' || cl->value.p[i] > '9' || len > CLIENT_MAX_BODY)
				return -EPROTO;
			len = len * 10 + (cl->value.p[i] - '0');
		}
		return read_body_length(cc, resp, len, deadline);
	}
	resp->must_close = true;	/* the body ends when the server closes */
	return read_body_until_close(cc, resp, deadline);
}

static const char *describe(int err)
{
	switch (err) {
	case -ETIMEDOUT: return "timed out waiting for the response";
	case -ECONNRESET: return "connection closed before a complete response";
	case -EPROTO: return "malformed HTTP response";
	case -E2BIG: return "response head too large";
	case -EFBIG: return "response body too large";
	default: return strerror(-err);
	}
}

int client_http_exchange(struct client_conn *cc, const struct client_opts *o,
			 const struct url *u, int64_t deadline,
			 struct client_response *resp, bool *retry,
			 char *err_msg, size_t size)
{
	struct strbuf req = STRBUF_INIT;
	bool head_request = o->method && !strcmp(o->method, "HEAD");
	bool got_bytes = false;
	int minor = 1, err;

	*retry = false;
	resp->must_close = false;
	strbuf_reset(&resp->body);
	err = build_request(&req, o, u);
	err = err ?: net_send_all(cc->fd, strbuf_peek(&req), strbuf_avail(&req), deadline);
	strbuf_free(&req);
	if (err == -EPIPE || err == -ECONNRESET) {
		*retry = cc->reused;
		snprintf(err_msg, size, "sending the request: %s", strerror(-err));
		return err;
	}
	if (err) {
		snprintf(err_msg, size, "sending the request: %s",
			 err == -ETIMEDOUT ? "timed out" : strerror(-err));
		return err;
	}
	do {
		err = read_head(cc, resp, deadline, &got_bytes);
		err = err ?: parse_head(resp, &minor);
		/* 1xx responses (other than 101) announce the real one: skip them. */
	} while (!err && resp->status >= 100 && resp->status < 200 && resp->status != 101);
	err = err ?: read_body(cc, resp, minor, head_request, deadline);
	if (err) {
		*retry = cc->reused && !got_bytes && err == -ECONNRESET;
		snprintf(err_msg, size, "%s", describe(err));
		return err;
	}
	cc->reused = true;
	return 0;
}

void client_response_free(struct client_response *resp)
{
	strbuf_free(&resp->head);
	strbuf_free(&resp->body);
}
