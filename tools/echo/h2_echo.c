// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "base/log.h"
#include "conn.h"
#include "h2_echo.h"
#include "http_handler.h"
#include "pb.h"

#define H2E_MAX_HEADERS 64
#define H2E_GEN_LOW (64 * 1024)		/* Server: replies made when fewer bytes wait */
#define H2E_BODY_MAX (1024 * 1024)	/* a request body kept for a unary call */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum h2e_kind { K_HTTP, K_ECHO, K_UNIMPLEMENTED, K_SERVER, K_CLIENT, K_BIDI };

struct h2e_stream {
	int32_t id;
	enum h2e_kind kind;
	char *names[H2E_MAX_HEADERS], *values[H2E_MAX_HEADERS];
	int nr;
	struct strbuf in, out;
	bool in_eos, out_eos, started, deferred;
	long to_send, msg_size, msgs_in;
	int grpc_status;
};

struct h2_echo {
	struct conn *c;
	nghttp2_session *s;
};

int h2_echo_sniff(const char *p, size_t n)
{
	size_t m = n < sizeof(preface) - 1 ? n : sizeof(preface) - 1;

	if (memcmp(p, preface, m))
		return -1;
	return m == sizeof(preface) - 1 ? 1 : 0;
}

static const char *hdr(const struct h2e_stream *st, const char *name)
{
	for (int i = 0; i < st->nr; i++)
		if (!strcmp(st->names[i], name))
			return st->values[i];
	return NULL;
}

static void stream_free(struct h2e_stream *st)
{
	for (int i = 0; i < st->nr; i++) {
		free(st->names[i]);
		free(st->values[i]);
	}
	strbuf_free(&st->in);
	strbuf_free(&st->out);
	free(st);
}

/* Server: replies are made as the window takes them, not all at once. */
static int gen_server(struct h2_echo *h, struct h2e_stream *st)
{
	const char *pod = h->c->srv->opts->id.pod;

	while (st->to_send > 0 && strbuf_avail(&st->out) < H2E_GEN_LOW) {
		struct strbuf m = STRBUF_INIT;
		int err = strbuf_puts(&m, pod);

		while (!err && (long)strbuf_avail(&m) < st->msg_size)
			err = strbuf_putc(&m, '.');
		err = err ?: grpc_frame_put(&st->out, strbuf_peek(&m), strbuf_avail(&m));
		strbuf_free(&m);
		if (err)
			return err;
		st->to_send--;
	}
	if (!st->to_send)
		st->out_eos = true;
	return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_echo *h = ud;
	struct h2e_stream *st = src->ptr;
	size_t n;

	if (st->kind == K_SERVER && gen_server(h, st))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = strbuf_avail(&st->out) < len ? strbuf_avail(&st->out) : len;
	memcpy(buf, strbuf_peek(&st->out), n);
	strbuf_consume(&st->out, n);
	if (!strbuf_avail(&st->out) && st->out_eos) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->kind != K_HTTP) {
			char code[16];
			nghttp2_nv t[] = {
				{ (uint8_t *)"grpc-status", (uint8_t *)code, 11, 0, 0 },
			};

			t[0].valuelen = snprintf(code, sizeof(code), "%d", st->grpc_status);
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, id, t, 1))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return n;
	}
	if (!n) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

static int grpc_start(struct h2_echo *h, struct h2e_stream *st)
{
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = body_read };
	nghttp2_nv nv[] = { NV(":status", "200"), NV("content-type", "application/grpc") };

	if (st->started) {
		if (st->deferred) {
			st->deferred = false;
			nghttp2_session_resume_data(h->s, st->id);
		}
		return 0;
	}
	st->started = true;
	return nghttp2_submit_response(h->s, st->id, nv, 2, &prd) ? -EIO : 0;
}

/* EchoResponse { assertions { method, headers, authority, context } request {} } */
static int echo_response(struct h2_echo *h, struct h2e_stream *st, struct strbuf *msg)
{
	const struct pod_identity *id = &h->c->srv->opts->id;
	struct strbuf a = STRBUF_INIT, sub = STRBUF_INIT;
	const char *path = hdr(st, ":path"), *auth = hdr(st, ":authority");
	int err = pb_put_str(&a, 1, path ? path : "");

	for (int i = 0; !err && i < st->nr; i++) {
		if (st->names[i][0] == ':')
			continue;
		strbuf_reset(&sub);
		err = pb_put_str(&sub, 1, st->names[i]) ?: pb_put_str(&sub, 2, st->values[i]) ?:
		      pb_put_bytes(&a, 2, strbuf_peek(&sub), strbuf_avail(&sub));
	}
	err = err ?: pb_put_str(&a, 3, auth ? auth : "");
	strbuf_reset(&sub);
	err = err ?: pb_put_str(&sub, 1, id->ns) ?: pb_put_str(&sub, 2, id->ingress) ?:
	      pb_put_str(&sub, 3, id->service) ?: pb_put_str(&sub, 4, id->pod);
	err = err ?: pb_put_bytes(&a, 4, strbuf_peek(&sub), strbuf_avail(&sub));
	err = err ?: pb_put_bytes(msg, 1, strbuf_peek(&a), strbuf_avail(&a)) ?:
	      pb_put_bytes(msg, 2, "", 0);
	strbuf_free(&a);
	strbuf_free(&sub);
	return err;
}

/* Complete messages in st->in: what each streaming kind does with them. */
static int grpc_messages(struct h2_echo *h, struct h2e_stream *st)
{
	const uint8_t *msg;
	size_t mlen, flen;
	int ret;

	while ((ret = grpc_frame_get((const uint8_t *)strbuf_peek(&st->in),
				     strbuf_avail(&st->in), &msg, &mlen, &flen)) > 0) {
		st->msgs_in++;
		if (st->kind == K_BIDI) {
			ret = grpc_frame_put(&st->out, msg, mlen) ?: grpc_start(h, st);
			if (ret)
				return ret;
		}
		if (st->kind != K_ECHO)
			strbuf_consume(&st->in, flen);
		else
			break;	/* the unary request stays for the end */
	}
	if (ret < 0)
		st->grpc_status = 12;
	return 0;
}

/* The request is complete: answer what is not answered yet. */
static int grpc_finish(struct h2_echo *h, struct h2e_stream *st)
{
	struct strbuf msg = STRBUF_INIT;
	char num[32];
	int err = 0;

	switch (st->kind) {
	case K_ECHO:
		err = echo_response(h, st, &msg) ?: grpc_frame_put(&st->out, strbuf_peek(&msg),
								   strbuf_avail(&msg));
		st->out_eos = true;
		break;
	case K_CLIENT:
		snprintf(num, sizeof(num), "%ld", st->msgs_in);
		err = grpc_frame_put(&st->out, num, strlen(num));
		st->out_eos = true;
		break;
	case K_BIDI:
		st->out_eos = true;
		break;
	case K_SERVER:
		break;	/* started with the headers */
	default: {
		nghttp2_nv nv[] = { NV(":status", "200"), NV("content-type", "application/grpc"),
				    NV("grpc-status", "12"),
				    NV("grpc-message", "Unimplemented method") };

		strbuf_free(&msg);
		return nghttp2_submit_response(h->s, st->id, nv, 4, NULL) ? -EIO : 0;
	}
	}
	strbuf_free(&msg);
	return err ?: grpc_start(h, st);
}

/* Not gRPC: the HTTP/1.1 echo handler answers a request made of the fields. */
static int http_answer(struct h2_echo *h, struct h2e_stream *st)
{
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = body_read };
	struct echo_server *srv = h->c->srv;
	struct http_request *req = &srv->request;
	struct strbuf head = STRBUF_INIT, resp = STRBUF_INIT;
	const char *m = hdr(st, ":method"), *p = hdr(st, ":path"), *a = hdr(st, ":authority");
	nghttp2_nv nv[H2E_MAX_HEADERS + 1];
	struct http_handled res;
	struct http_error herr;
	char status[8];
	size_t end, scan = 0;
	int err, nr = 0;

	err = strbuf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", m ? m : "GET", p ? p : "/",
			    a ? a : "");
	for (int i = 0; !err && i < st->nr; i++)
		if (st->names[i][0] != ':' && strcasecmp(st->names[i], "host"))
			err = strbuf_printf(&head, "%s: %s\r\n", st->names[i], st->values[i]);
	err = err ?: strbuf_puts(&head, "\r\n");
	if (err)
		goto out;
	end = http_find_head_end(head.data, strbuf_avail(&head), &scan);
	if (!end || http_parse_request(head.data, end, req, &herr)) {
		err = -EINVAL;
		goto out;
	}
	/* Go's r.Proto for an HTTP/2 request, as echo-basic reports it */
	req->proto = (struct http_span){ "HTTP/2.0", 8 };
	srv->handler.local_port = h->c->local_port;
	err = http_handle(req, &srv->handler, &resp, &res);
	if (err)
		goto out;
	/* Back from HTTP/1.1: status line, fields, then the body as it is. */
	const char *r = strbuf_peek(&resp), *eoh = strstr(r, "\r\n\r\n"), *line;

	if (!eoh) {
		err = -EINVAL;
		goto out;
	}
	snprintf(status, sizeof(status), "%d", res.status);
	nv[nr++] = (nghttp2_nv)NV(":status", status);
	for (line = strstr(r, "\r\n") + 2; line < eoh && nr < H2E_MAX_HEADERS;) {
		const char *le = strstr(line, "\r\n"), *colon = memchr(line, ':', le - line);
		char *n;

		if (colon) {
			n = (char *)line;
			for (char *q = n; q < colon; q++)
				*q = (*q >= 'A' && *q <= 'Z') ? *q + 32 : *q;
			if (!(colon - line == 10 && !strncmp(n, "connection", 10)) &&
			    !(colon - line == 17 && !strncmp(n, "transfer-encoding", 17))) {
				const char *v = colon + 1;

				while (*v == ' ')
					v++;
				nv[nr++] = (nghttp2_nv){ (uint8_t *)n, (uint8_t *)v, colon - line,
							 le - v, NGHTTP2_NV_FLAG_NONE };
			}
		}
		line = le + 2;
	}
	err = strbuf_append(&st->out, eoh + 4, strbuf_avail(&resp) - (eoh + 4 - r));
	st->out_eos = true;
	st->started = true;
	if (!err && nghttp2_submit_response(h->s, st->id, nv, nr, req->is_head ? NULL : &prd))
		err = -EIO;
out:
	strbuf_free(&head);
	strbuf_free(&resp);
	return err;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2e_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->id = f->hd.stream_id;
	nghttp2_session_set_stream_user_data(s, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct h2e_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!st || f->headers.cat != NGHTTP2_HCAT_REQUEST || st->nr == H2E_MAX_HEADERS)
		return 0;
	st->names[st->nr] = strndup((const char *)n, nl);
	st->values[st->nr] = strndup((const char *)v, vl);
	if (!st->names[st->nr] || !st->values[st->nr])
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->nr++;
	return 0;
}

static void classify(struct h2e_stream *st)
{
	const char *ct = hdr(st, "content-type"), *p = hdr(st, ":path"), *x;

	st->kind = K_HTTP;
	if (!ct || strncmp(ct, "application/grpc", 16) || !p)
		return;
	st->kind = K_UNIMPLEMENTED;
	if (!strcmp(p, "/" GRPCECHO_SERVICE "/Echo") || !strcmp(p, "/" GRPCECHO_SERVICE "/EchoTwo"))
		st->kind = K_ECHO;
	else if (!strcmp(p, "/" STREAM_SERVICE "/Server"))
		st->kind = K_SERVER;
	else if (!strcmp(p, "/" STREAM_SERVICE "/Client"))
		st->kind = K_CLIENT;
	else if (!strcmp(p, "/" STREAM_SERVICE "/Bidi"))
		st->kind = K_BIDI;
	x = hdr(st, "x-messages");
	st->to_send = x ? atol(x) : 3;
	x = hdr(st, "x-message-size");
	st->msg_size = x ? atol(x) : 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_echo *h = ud;
	struct h2e_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	int err = 0;

	if (!st || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		classify(st);
		vlog(h->c->srv, "h2: %s on port %u: %s %s", h->c->peer, h->c->local_port,
		     hdr(st, ":method"), hdr(st, ":path"));
		if (st->kind == K_SERVER)
			err = grpc_start(h, st);
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		st->in_eos = true;
		err = err ?: st->kind == K_HTTP ? http_answer(h, st) : grpc_finish(h, st);
	}
	return err ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
		   void *ud)
{
	struct h2_echo *h = ud;
	struct h2e_stream *st = nghttp2_session_get_stream_user_data(s, id);

	if (!st || st->kind == K_HTTP)
		return 0;	/* HTTP bodies are read and dropped, as HTTP/1.1's are */
	if (strbuf_avail(&st->in) + len > H2E_BODY_MAX || strbuf_append(&st->in, d, len))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return grpc_messages(h, st) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct h2e_stream *st = nghttp2_session_get_stream_user_data(s, id);

	if (st)
		stream_free(st);
	return 0;
}

struct h2_echo *h2_echo_new(struct conn *c)
{
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 } };
	nghttp2_session_callbacks *cb;
	struct h2_echo *h = calloc(1, sizeof(*h));

	if (!h || nghttp2_session_callbacks_new(&cb)) {
		free(h);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	h->c = c;
	if (nghttp2_session_server_new(&h->s, cb, h) ||
	    nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 1)) {
		nghttp2_session_callbacks_del(cb);
		h2_echo_free(h);
		return NULL;
	}
	nghttp2_session_callbacks_del(cb);
	return h;
}

int h2_echo_process(struct h2_echo *h, struct conn *c)
{
	ssize_t n;

	if (strbuf_avail(&c->in)) {
		n = nghttp2_session_mem_recv(h->s, (const uint8_t *)strbuf_peek(&c->in),
					     strbuf_avail(&c->in));
		if (n < 0)
			return -EPROTO;
		strbuf_consume(&c->in, n);
	}
	while (strbuf_avail(&c->out) < CONN_OUT_HIGH_WATER) {
		const uint8_t *d;

		n = nghttp2_session_mem_send(h->s, &d);
		if (n < 0)
			return -EPROTO;
		if (!n)
			break;
		if (strbuf_append(&c->out, d, n))
			return -ENOMEM;
	}
	if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))
		c->close_after_flush = true;
	return 0;
}

void h2_echo_free(struct h2_echo *h)
{
	if (!h)
		return;
	/* Streams still open: nghttp2 does not call on_close for them. */
	if (h->s) {
		for (int32_t id = 1; id > 0 && id <= nghttp2_session_get_last_proc_stream_id(h->s);
		     id += 2) {
			struct h2e_stream *st = nghttp2_session_get_stream_user_data(h->s, id);

			if (st)
				stream_free(st);
		}
		nghttp2_session_del(h->s);
	}
	free(h);
}
