// SPDX-License-Identifier: Apache-2.0
/*
 * `echo client` over HTTP/2 cleartext (nghttp2): http:// URLs with --h2
 * (prior knowledge) or --h2c (HTTP/1.1 Upgrade), and grpc:// URLs (prior
 * knowledge). Every call is a stream of ONE connection, so a proxy that
 * balances per connection shows it in the --count tally. A response is made
 * into a struct client_response (an HTTP/1.1-like head), so it is printed
 * and counted as HTTP/1.1 ones are; gRPC calls decode the EchoResponse.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "client.h"
#include "client_http.h"
#include "client_report.h"
#include "clock.h"
#include "net.h"
#include "pb.h"
#include "url.h"

#define MAX_FIELDS 64
#define MAX_ERRORS_SHOWN 5

struct call {
	int32_t id;
	bool done, failed;
	char why[96];
	int status, grpc_status;	/* grpc_status -1: none came */
	char grpc_message[128];
	char *names[MAX_FIELDS], *values[MAX_FIELDS];
	int nr;
	struct client_response resp;
	size_t parsed;			/* of resp.body: gRPC frames counted */
	long msgs_in, msgs_out;
	struct strbuf out;		/* request body not yet taken */
	bool out_eos, deferred;
	char pod[256];			/* gRPC Echo: the answering pod */
};

struct h2cl {
	const struct client_opts *o;
	const struct url *u;
	nghttp2_session *s;
	int fd;
	bool grpc, eof;
	char path[1024];
	char authority[URL_HOST_MAX + 8];
};

static void call_reset(struct call *c)
{
	for (int i = 0; i < c->nr; i++) {
		free(c->names[i]);
		free(c->values[i]);
	}
	strbuf_free(&c->out);
	client_response_free(&c->resp);
	memset(c, 0, sizeof(*c));
	c->grpc_status = -1;
}

/* The HTTP status a gRPC status stands for (what the harness compares). */
static int grpc_http_status(int st)
{
	switch (st) {
	case 0: return 200;
	case 3: case 9: case 11: return 400;
	case 16: return 401;
	case 7: return 403;
	case 5: return 404;
	case 6: case 10: return 409;
	case 8: return 429;
	case 1: return 499;
	case 12: return 501;
	case 14: return 503;
	case 4: return 504;
	default: return 500;
	}
}

/* Build resp.head ("HTTP/2.0 NNN" and the fields) and its header spans. */
static int finish_head(struct call *c)
{
	struct client_response *r = &c->resp;
	size_t off[MAX_FIELDS][2];
	int n = 0, err = strbuf_printf(&r->head, "HTTP/2.0 %d\r\n", c->status);

	for (int i = 0; !err && i < c->nr; i++) {
		if (c->names[i][0] == ':')
			continue;
		off[n][0] = strbuf_avail(&r->head);
		off[n][1] = off[n][0] + strlen(c->names[i]) + 2;
		err = strbuf_printf(&r->head, "%s: %s\r\n", c->names[i], c->values[i]);
		n++;
	}
	err = err ?: strbuf_terminate(&r->head);
	if (err)
		return err;
	for (int i = 0, k = 0; i < c->nr; i++) {
		if (c->names[i][0] == ':')
			continue;
		r->headers[k].name = (struct http_span){ r->head.data + off[k][0],
							 strlen(c->names[i]) };
		r->headers[k].value = (struct http_span){ r->head.data + off[k][1],
							  strlen(c->values[i]) };
		k++;
	}
	r->nr_headers = n;
	r->status = c->status;
	return 0;
}

/* EchoResponse.assertions.context.pod */
static void grpc_echo_pod(struct call *c, const uint8_t *msg, size_t len)
{
	struct pb_reader r = { msg, msg + len };
	const uint8_t *v;
	size_t vl;
	unsigned int f;

	while (pb_next(&r, &f, &v, &vl) > 0) {
		if (f == 1 && v) {
			struct pb_reader a = { v, v + vl };

			while (pb_next(&a, &f, &v, &vl) > 0) {
				if (f == 4 && v) {
					struct pb_reader ctx = { v, v + vl };

					while (pb_next(&ctx, &f, &v, &vl) > 0)
						if (f == 4 && v)
							snprintf(c->pod, sizeof(c->pod), "%.*s",
								 (int)vl, v);
				}
			}
		}
	}
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct call *c = src->ptr;
	size_t n = strbuf_avail(&c->out) < len ? strbuf_avail(&c->out) : len;

	memcpy(buf, strbuf_peek(&c->out), n);
	strbuf_consume(&c->out, n);
	if (!strbuf_avail(&c->out) && c->out_eos) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return n;
	}
	if (!n) {
		c->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

static int next_message(struct h2cl *cl, struct call *c)
{
	char m[32];
	int len = snprintf(m, sizeof(m), "msg-%ld", c->msgs_out);
	int err = grpc_frame_put(&c->out, m, len);

	c->msgs_out++;
	return err;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!c || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nl == 7 && !memcmp(n, ":status", 7)) {
		c->status = atoi((const char *)v);
		if (c->status < 200) {
			c->status = 0;
			return 0;	/* interim */
		}
	}
	if (nl == 11 && !memcmp(n, "grpc-status", 11))
		c->grpc_status = atoi((const char *)v);
	if (nl == 12 && !memcmp(n, "grpc-message", 12))
		snprintf(c->grpc_message, sizeof(c->grpc_message), "%.*s", (int)vl, v);
	if (c->nr == MAX_FIELDS)
		return 0;
	c->names[c->nr] = strndup((const char *)n, nl);
	c->values[c->nr] = strndup((const char *)v, vl);
	c->nr++;
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
		   void *ud)
{
	struct h2cl *cl = ud;
	struct call *c = nghttp2_session_get_stream_user_data(s, id);
	const uint8_t *msg;
	size_t ml, fl;

	if (!c)
		return 0;
	if (strbuf_avail(&c->resp.body) + len > CLIENT_MAX_BODY ||
	    strbuf_append(&c->resp.body, d, len))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (!cl->grpc)
		return 0;
	while (grpc_frame_get((const uint8_t *)strbuf_peek(&c->resp.body) + c->parsed,
			      strbuf_avail(&c->resp.body) - c->parsed, &msg, &ml, &fl) > 0) {
		c->parsed += fl;
		c->msgs_in++;
		if (!cl->o->stream)
			grpc_echo_pod(c, msg, ml);
		/* bidi: the next message goes when the previous one came back */
		if (cl->o->stream && !strcmp(cl->o->stream, "bidi") && !c->out_eos) {
			if (next_message(cl, c))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			c->out_eos = c->msgs_out == cl->o->messages;
			if (c->deferred) {
				c->deferred = false;
				nghttp2_session_resume_data(s, id);
			}
		}
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct call *c = nghttp2_session_get_stream_user_data(s, id);

	if (!c)
		return 0;
	c->done = true;
	if (err) {
		c->failed = true;
		snprintf(c->why, sizeof(c->why), "stream reset: %s", nghttp2_http2_strerror(err));
	} else if (!c->status) {
		c->failed = true;
		snprintf(c->why, sizeof(c->why), "no response");
	}
	return 0;
}

/* ---- the connection ------------------------------------------------------ */

static int flush(struct h2cl *cl, int64_t deadline)
{
	while (nghttp2_session_want_write(cl->s)) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(cl->s, &d);

		if (n < 0)
			return -EPROTO;
		if (!n)
			break;
		if (net_send_all(cl->fd, (const char *)d, n, deadline))
			return -EIO;
	}
	return 0;
}

/* Until done() says so (or the deadline, or the connection ends). */
static int run(struct h2cl *cl, int64_t deadline, bool (*done)(void *), void *arg)
{
	char buf[16384];

	for (;;) {
		ssize_t n;
		int err = flush(cl, deadline);

		if (err)
			return err;
		if (done(arg))
			return 0;
		if (cl->eof)
			return -ECONNRESET;
		err = net_wait(cl->fd, POLLIN, deadline);
		if (err)
			return err;
		n = recv(cl->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			cl->eof = true;
			nghttp2_session_terminate_session(cl->s, NGHTTP2_NO_ERROR);
			/* the streams end here: on_close is not called for them */
			if (done(arg))
				return 0;
			return n ? -errno : -ECONNRESET;
		}
		if (nghttp2_session_mem_recv(cl->s, (const uint8_t *)buf, n) < 0)
			return -EPROTO;
	}
}

static int submit(struct h2cl *cl, struct call *c)
{
	nghttp2_data_provider prd = { .source.ptr = c, .read_callback = body_read };
	const struct client_opts *o = cl->o;
	nghttp2_nv nv[CLIENT_MAX_HEADERS + 8];
	char lower[CLIENT_MAX_HEADERS][128], msgs[24];
	const char *method = o->method ? o->method : cl->grpc || o->body ? "POST" : "GET";
	bool body = cl->grpc || o->body;
	int n = 0;

#define NVS(a, b) (nghttp2_nv){ (uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), 0 }
	call_reset(c);
	nv[n++] = NVS(":method", method);
	nv[n++] = NVS(":scheme", "http");
	nv[n++] = NVS(":authority", cl->authority);
	nv[n++] = NVS(":path", cl->path);
	if (cl->grpc) {
		nv[n++] = NVS("content-type", "application/grpc");
		nv[n++] = NVS("te", "trailers");
	}
	if (o->stream && !strcmp(o->stream, "server")) {
		snprintf(msgs, sizeof(msgs), "%ld", o->messages);
		nv[n++] = NVS("x-messages", msgs);
	}
	for (int i = 0; i < o->nr_headers; i++) {
		const char *line = o->headers[i].line, *colon = strchr(line, ':');
		size_t nl = colon - line < 127 ? (size_t)(colon - line) : 127;

		for (size_t k = 0; k < nl; k++)
			lower[i][k] = line[k] >= 'A' && line[k] <= 'Z' ? line[k] + 32 : line[k];
		lower[i][nl] = 0;
		nv[n++] = NVS(lower[i], colon + 2);
	}
	if (cl->grpc) {
		int err = 0;

		if (!o->stream) {
			err = grpc_frame_put(&c->out, "", 0);	/* EchoRequest {} */
		} else if (!strcmp(o->stream, "server")) {
			err = grpc_frame_put(&c->out, "", 0);
		} else if (!strcmp(o->stream, "client")) {
			while (!err && c->msgs_out < o->messages)
				err = next_message(cl, c);
		} else {
			err = next_message(cl, c);	/* bidi: one at a time */
		}
		if (err)
			return err;
		c->out_eos = !o->stream || strcmp(o->stream, "bidi") || o->messages == 1;
	} else if (o->body) {
		if (strbuf_puts(&c->out, o->body))
			return -ENOMEM;
		c->out_eos = true;
	}
	c->id = nghttp2_submit_request(cl->s, NULL, nv, n, body ? &prd : NULL, c);
	return c->id < 0 ? -EIO : 0;
}

static int connect_session(struct h2cl *cl, struct addrinfo *ai, int64_t deadline,
			   struct call *first, char *why, size_t wl)
{
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
					{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };
	nghttp2_session_callbacks *cb;
	int err;

	cl->fd = net_connect(ai, deadline, why, wl);
	if (cl->fd < 0)
		return cl->fd;
	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	err = nghttp2_session_client_new(&cl->s, cb, cl);
	nghttp2_session_callbacks_del(cb);
	if (err)
		return -ENOMEM;
	if (nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, iv, 2))
		return -ENOMEM;
	if (cl->o->http2 != CLIENT_H2C_UPGRADE || cl->grpc)
		return 0;
	/* RFC 7540 3.2: the first request asks to switch; stream 1 is its answer. */
	uint8_t payload[64];
	char b64[128], req[4096], buf[8192];
	ssize_t pl = nghttp2_pack_settings_payload(payload, sizeof(payload), iv, 2);
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t bl = 0, got = 0;
	char *eoh;
	int len;

	for (ssize_t i = 0; i < pl; i += 3) {
		uint32_t v = payload[i] << 16 | (i + 1 < pl ? payload[i + 1] << 8 : 0) |
			     (i + 2 < pl ? payload[i + 2] : 0);

		b64[bl++] = tbl[v >> 18 & 63];
		b64[bl++] = tbl[v >> 12 & 63];
		if (i + 1 < pl)
			b64[bl++] = tbl[v >> 6 & 63];
		if (i + 2 < pl)
			b64[bl++] = tbl[v & 63];
	}
	b64[bl] = 0;
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
		       "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
		       "HTTP2-Settings: %s\r\n", cl->path, cl->authority, b64);
	for (int i = 0; i < cl->o->nr_headers && len < (int)sizeof(req); i++)
		len += snprintf(req + len, sizeof(req) - len, "%s\r\n", cl->o->headers[i].line);
	len += snprintf(req + len, sizeof(req) - len, "\r\n");
	if (len >= (int)sizeof(req) || net_send_all(cl->fd, req, len, deadline))
		return -EIO;
	for (;;) {
		ssize_t n;

		err = net_wait(cl->fd, POLLIN, deadline);
		if (err)
			return err;
		n = recv(cl->fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -ECONNRESET;
		got += n;
		buf[got] = 0;
		eoh = strstr(buf, "\r\n\r\n");
		if (eoh)
			break;
		if (got == sizeof(buf) - 1)
			return -E2BIG;
	}
	if (strncmp(buf, "HTTP/1.1 101", 12)) {
		snprintf(why, wl, "no upgrade: %.*s", (int)strcspn(buf, "\r\n"), buf);
		return -EPROTO;
	}
	call_reset(first);
	if (nghttp2_session_upgrade2(cl->s, payload, pl, 0, first))
		return -EPROTO;
	first->id = 1;
	eoh += 4;
	if (buf + got > eoh &&
	    nghttp2_session_mem_recv(cl->s, (const uint8_t *)eoh, buf + got - eoh) < 0)
		return -EPROTO;
	return 0;
}

/* ---- the runs ------------------------------------------------------------ */

struct batch {
	struct call *calls;
	long n;
};

static bool batch_done(void *arg)
{
	struct batch *b = arg;

	for (long i = 0; i < b->n; i++)
		if (!b->calls[i].done)
			return false;
	return true;
}

static bool any_done(void *arg)
{
	struct batch *b = arg;

	for (long i = 0; i < b->n; i++)
		if (b->calls[i].done)
			return true;
	return false;
}

static void report_grpc(struct h2cl *cl, struct call *c)
{
	const uint8_t *msg;
	size_t ml, fl;

	printf("StatusCode=%d\n", c->status == 200 ? grpc_http_status(c->grpc_status) : c->status);
	printf("GrpcStatus=%d\n", c->grpc_status);
	if (c->grpc_message[0])
		printf("GrpcMessage=%s\n", c->grpc_message);
	for (int i = 0; i < c->nr; i++)
		if (c->names[i][0] != ':')
			printf("ResponseHeader=%s:%s\n", c->names[i], c->values[i]);
	if (cl->o->stream) {
		printf("Messages=%ld\n", c->msgs_in);
		if (!strcmp(cl->o->stream, "client") &&
		    grpc_frame_get((const uint8_t *)strbuf_peek(&c->resp.body),
				   strbuf_avail(&c->resp.body), &msg, &ml, &fl) > 0)
			printf("Reply=%.*s\n", (int)ml, msg);
		return;
	}
	if (grpc_frame_get((const uint8_t *)strbuf_peek(&c->resp.body),
			   strbuf_avail(&c->resp.body), &msg, &ml, &fl) > 0) {
		struct pb_reader r = { msg, msg + ml };
		const uint8_t *v;
		size_t vl;
		unsigned int f;

		while (pb_next(&r, &f, &v, &vl) > 0) {
			struct pb_reader a = { v, v + vl };

			if (f != 1 || !v)
				continue;
			while (pb_next(&a, &f, &v, &vl) > 0) {
				if (f == 1)
					printf("Method=%.*s\n", (int)vl, v);
				else if (f == 3)
					printf("Host=%.*s\n", (int)vl, v);
				else if (f == 2 && v) {
					struct pb_reader h = { v, v + vl };
					const uint8_t *k = NULL, *x = NULL;
					size_t kl = 0, xl = 0;

					while (pb_next(&h, &f, &v, &vl) > 0) {
						if (f == 1)
							k = v, kl = vl;
						else if (f == 2)
							x = v, xl = vl;
					}
					printf("RequestHeader=%.*s:%.*s\n", (int)kl, k ? (const char *)k : "",
					       (int)xl, x ? (const char *)x : "");
				}
			}
		}
	}
	if (c->pod[0])
		printf("Hostname=%s\n", c->pod);
}

int client_h2_run(const struct client_opts *o)
{
	struct h2cl cl = { .o = o, .fd = -1 };
	struct addrinfo *ai = NULL;
	struct tally t = { 0 };
	struct batch b = { 0 };
	long conc, sent = 0;
	char why[256] = "";
	int64_t deadline;
	struct url u;
	int ret = 1, err;

	if (url_parse(o->target, &u))
		return 2;
	cl.u = &u;
	cl.grpc = u.grpc;
	snprintf(cl.authority, sizeof(cl.authority), "%s", o->host_header ? o->host_header :
		 u.authority);
	if (cl.grpc && u.target_len > 1)
		snprintf(cl.path, sizeof(cl.path), "%.*s", (int)u.target_len, u.target);
	else if (cl.grpc && o->stream)
		snprintf(cl.path, sizeof(cl.path), "/%s/%c%s", STREAM_SERVICE, o->stream[0] - 32,
			 o->stream + 1);
	else if (cl.grpc)
		snprintf(cl.path, sizeof(cl.path), "/%s/Echo", GRPCECHO_SERVICE);
	else
		snprintf(cl.path, sizeof(cl.path), "%s%.*s", u.target_needs_slash ? "/" : "",
			 (int)u.target_len, u.target);
	if (!cl.path[0])
		strcpy(cl.path, "/");
	if (o->stream && !cl.grpc) {
		fprintf(stderr, "echo client: --stream needs a grpc:// URL\n");
		return 2;
	}
	if (o->connect_to) {
		char host[URL_HOST_MAX];
		unsigned short port;

		if (hostport_parse("--connect-to", o->connect_to, u.port, host, &port) ||
		    net_resolve(host, port, SOCK_STREAM, 1, &ai))
			return 1;
	} else if (net_resolve(u.host, u.port, SOCK_STREAM, 0, &ai)) {
		return 1;
	}
	if (!o->messages)
		((struct client_opts *)o)->messages = 3;
	conc = o->count ? (o->concurrency ? o->concurrency : 1) : 1;
	if (conc > (o->count ? o->count : 1))
		conc = o->count ? o->count : 1;
	b.calls = calloc(conc, sizeof(*b.calls));
	if (!b.calls)
		goto out;
	b.n = conc;
	for (long i = 0; i < conc; i++)
		call_reset(&b.calls[i]);
	deadline = now_ms() + o->timeout_ms;
	err = connect_session(&cl, ai, deadline, &b.calls[0], why, sizeof(why));
	if (err) {
		fprintf(stderr, "echo client: %s: %s\n", o->target, why[0] ? why : strerror(-err));
		goto out;
	}
	/* An upgraded connection's first call is already on its way (stream 1). */
	for (long i = b.calls[0].id == 1 ? 1 : 0; i < conc; i++) {
		if (submit(&cl, &b.calls[i]))
			goto out;
	}
	sent = conc;
	if (!o->count) {
		err = run(&cl, deadline, batch_done, &b);
		struct call *c = &b.calls[0];

		if (err || c->failed) {
			fprintf(stderr, "echo client: %s: %s\n", o->target,
				err ? strerror(-err) : c->why);
			goto out;
		}
		if (finish_head(c))
			goto out;
		if (cl.grpc)
			report_grpc(&cl, c);
		else
			report_response(stdout, &c->resp);
		ret = 0;
		goto out;
	}
	/* --count: keep conc calls in flight until count are answered. */
	for (long answered = 0; answered < o->count;) {
		err = run(&cl, deadline, any_done, &b);
		if (err) {
			fprintf(stderr, "echo client: %s: %s after %ld calls\n", o->target,
				strerror(-err), answered);
			t.errors += o->count - answered;
			break;
		}
		for (long i = 0; i < b.n; i++) {
			struct call *c = &b.calls[i];

			if (!c->done)
				continue;
			answered++;
			deadline = now_ms() + o->timeout_ms;
			if (c->failed) {
				if (t.errors++ < MAX_ERRORS_SHOWN)
					fprintf(stderr, "echo client: call %ld: %s\n", answered, c->why);
			} else if (cl.grpc) {
				int st = c->status == 200 ? grpc_http_status(c->grpc_status) : c->status;

				if (st >= 100 && st <= 999)
					t.status[st]++;
				if (c->pod[0] && tally_pod(&t, c->pod))
					goto out;
			} else if (finish_head(c) || tally_add(&t, &c->resp)) {
				goto out;
			}
			c->done = false;
			if (sent < o->count) {
				if (submit(&cl, c))
					goto out;
				sent++;
			} else {
				c->id = -1;
				c->done = false;
				c->status = 0;
				/* finished slots count as done for any_done no more */
				c->done = false;
			}
		}
		if (sent >= o->count) {
			/* wait for the rest: slots without a call are marked done-free */
			bool left = false;

			for (long i = 0; i < b.n; i++)
				if (b.calls[i].id > 0 && !b.calls[i].done)
					left = true;
			if (!left)
				break;
		}
	}
	t.total = o->count;
	tally_print(stdout, &t, o->json);
	ret = t.errors ? 1 : 0;
out:
	for (long i = 0; i < b.n; i++)
		call_reset(&b.calls[i]);
	free(b.calls);
	tally_free(&t);
	if (cl.s)
		nghttp2_session_del(cl.s);
	if (cl.fd >= 0)
		close(cl.fd);
	freeaddrinfo(ai);
	return ret;
}
