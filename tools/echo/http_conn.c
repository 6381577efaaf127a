// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.1 on a connection: one request at a time, in order. A response is
 * built as soon as its head is parsed but held in `pending` until the
 * request body has been read (and any ?delay= has passed), so pipelined
 * responses leave in request order and a broken body can still get a 400.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "chunked.h"
#include "conn.h"
#include "h2_echo.h"
#include "http_reply.h"

enum http_conn_state {
	HTTP_READ_HEAD,
	HTTP_READ_BODY,		/* Content-Length body */
	HTTP_READ_CHUNKED,	/* chunked body */
	HTTP_DELAYED,		/* body read, waiting for ?delay= to pass */
};

struct http_conn {
	struct conn c;
	enum http_conn_state state;
	size_t head_scan;	/* bytes of c.in searched for the head's end */
	uint64_t body_left;
	struct chunked_decoder chunked;
	struct strbuf pending;	/* the response, until the request is done */
	int64_t delay_ms;
	bool close_after;	/* the pending response ends the connection */
	bool sniffed;		/* the first bytes were looked at: HTTP/2 or not */
	struct h2_echo *h2;	/* HTTP/2 (prior knowledge) on this connection */
};

static void reject(struct http_conn *hc, int status, const char *reason)
{
	struct conn *c = &hc->c;

	vlog(c->srv, "http: %s on port %u: %d %s", c->peer, c->local_port, status, reason);
	strbuf_reset(&hc->pending);
	/* Out of memory here only loses the error text; the close still happens. */
	http_error_write(&c->out, status, reason);
	c->close_after_flush = true;
}

static int emit_pending(struct http_conn *hc)
{
	struct conn *c = &hc->c;
	int err = 0;

	if (!strbuf_avail(&c->out))
		strbuf_swap(&c->out, &hc->pending);
	else
		err = strbuf_append(&c->out, strbuf_peek(&hc->pending),
				    strbuf_avail(&hc->pending));
	strbuf_reset(&hc->pending);
	if (hc->close_after)
		c->close_after_flush = true;
	hc->state = HTTP_READ_HEAD;
	return err;
}

static int finish_request(struct http_conn *hc)
{
	if (hc->delay_ms > 0) {
		hc->state = HTTP_DELAYED;
		hc->c.paused = true;
		conn_set_deadline(&hc->c, now_ms() + hc->delay_ms);
		return 0;
	}
	return emit_pending(hc);
}

/* Returns 1 after progress, 0 when more input is needed, negative errno. */
static int read_head(struct http_conn *hc)
{
	struct conn *c = &hc->c;
	struct echo_server *srv = c->srv;
	struct http_request *req = &srv->request;
	struct http_handled res;
	struct http_error herr;
	size_t end, avail;
	char *head;
	int err;

	/* RFC 9112 2.2: ignore empty lines before a request (e.g. after a body). */
	while (!hc->head_scan && strbuf_avail(&c->in) &&
	       (strbuf_peek(&c->in)[0] == '\r' || strbuf_peek(&c->in)[0] == '\n'))
		strbuf_consume(&c->in, 1);
	avail = strbuf_avail(&c->in);
	if (!avail)
		return 0;
	head = c->in.data + c->in.start;
	end = http_find_head_end(head, avail, &hc->head_scan);
	if ((!end && avail >= HTTP_MAX_HEAD) || end > HTTP_MAX_HEAD) {
		reject(hc, 431, "request head larger than 64 KiB");
		return 1;
	}
	if (!end)
		return 0;
	if (http_parse_request(head, end, req, &herr)) {
		reject(hc, herr.status, herr.reason);
		return 1;
	}
	srv->handler.local_port = c->local_port;
	strbuf_reset(&hc->pending);
	err = http_handle(req, &srv->handler, &hc->pending, &res);
	if (err)
		return err;
	vlog(srv, "http: %s on port %u: %.*s %.*s -> %d", c->peer, c->local_port,
	     (int)req->method.len, req->method.p, (int)req->target.len, req->target.p,
	     res.status);
	hc->close_after = res.close;
	hc->delay_ms = res.delay_ms;
	hc->head_scan = 0;
	strbuf_consume(&c->in, end);	/* @req points into it: done with it now */

	if (req->chunked) {
		chunked_init(&hc->chunked);
		hc->state = HTTP_READ_CHUNKED;
	} else if (req->content_length) {
		hc->body_left = req->content_length;
		hc->state = HTTP_READ_BODY;
	} else {
		return finish_request(hc) ?: 1;
	}
	/* The client waits for this before sending the body. */
	if (req->expect_continue && !strbuf_avail(&c->in)) {
		err = strbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		if (err)
			return err;
	}
	return 1;
}

static int read_body(struct http_conn *hc)
{
	struct conn *c = &hc->c;
	size_t n = strbuf_avail(&c->in);

	if (!n)
		return 0;
	if (n > hc->body_left)
		n = hc->body_left;
	strbuf_consume(&c->in, n);	/* the body is not echoed: drop it */
	hc->body_left -= n;
	if (!hc->body_left)
		return finish_request(hc) ?: 1;
	return 1;
}

static int read_chunked(struct http_conn *hc)
{
	struct conn *c = &hc->c;
	size_t used = 0;
	int ret;

	if (!strbuf_avail(&c->in))
		return 0;
	ret = chunked_feed(&hc->chunked, strbuf_peek(&c->in), strbuf_avail(&c->in),
			   &used, NULL);
	strbuf_consume(&c->in, used);
	if (ret == -EPROTO) {
		reject(hc, 400, "malformed chunked request body");
		return 1;
	}
	if (ret < 0)
		return ret;
	if (ret == 1)
		return finish_request(hc) ?: 1;
	return used > 0;
}

static int http_process(struct conn *c)
{
	struct http_conn *hc = container_of(c, struct http_conn, c);
	int ret = 1;

	if (!hc->sniffed) {
		ret = h2_echo_sniff(strbuf_peek(&c->in), strbuf_avail(&c->in));
		if (!ret && !c->peer_eof)
			return 0;
		hc->sniffed = true;
		if (ret > 0 && !(hc->h2 = h2_echo_new(c)))
			return -ENOMEM;
		ret = 1;
	}
	if (hc->h2)
		return h2_echo_process(hc->h2, c);
	while (ret > 0 && !c->close_after_flush && !c->paused &&
	       strbuf_avail(&c->out) < CONN_OUT_HIGH_WATER) {
		switch (hc->state) {
		case HTTP_READ_HEAD:
			ret = read_head(hc);
			break;
		case HTTP_READ_BODY:
			ret = read_body(hc);
			break;
		case HTTP_READ_CHUNKED:
			ret = read_chunked(hc);
			break;
		case HTTP_DELAYED:
			ret = 0;
			break;
		}
	}
	return ret < 0 ? ret : 0;
}

static int http_timeout(struct conn *c)
{
	struct http_conn *hc = container_of(c, struct http_conn, c);

	if (hc->state != HTTP_DELAYED)
		return 0;
	c->paused = false;
	return emit_pending(hc);
}

static void http_destroy(struct conn *c)
{
	struct http_conn *hc = container_of(c, struct http_conn, c);

	strbuf_free(&hc->pending);
	h2_echo_free(hc->h2);
	free(hc);
}

static const struct conn_ops http_conn_ops = {
	.process = http_process,
	.timeout = http_timeout,
	.destroy = http_destroy,
};

int http_conn_accept(struct echo_server *srv, int fd, const struct listener *l)
{
	struct http_conn *hc = calloc(1, sizeof(*hc));
	int err;

	if (!hc) {
		close(fd);
		return -ENOMEM;
	}
	err = conn_init(&hc->c, srv, fd, l, &http_conn_ops);
	if (err) {
		close(fd);
		free(hc);
		return err;
	}
	hc->state = HTTP_READ_HEAD;
	return 0;
}
