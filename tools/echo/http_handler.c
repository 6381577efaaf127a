// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "echo_body.h"
#include "echo_set_header.h"
#include "go_duration.h"
#include "http_handler.h"
#include "http_path.h"
#include "http_reply.h"
#include "http_status.h"
#include "json_out.h"

#define STATUS_PREFIX "/status/"

static bool span_is(struct http_span s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

static int html_escape(struct strbuf *out, const char *s, size_t len)
{
	int err = 0;

	for (size_t i = 0; !err && i < len; i++) {
		switch (s[i]) {
		case '&': err = strbuf_puts(out, "&amp;"); break;
		case '<': err = strbuf_puts(out, "&lt;"); break;
		case '>': err = strbuf_puts(out, "&gt;"); break;
		case '"': err = strbuf_puts(out, "&#34;"); break;
		case '\'': err = strbuf_puts(out, "&#39;"); break;
		default: err = strbuf_putc(out, s[i]);
		}
	}
	return err;
}

/* ServeMux's 301 to the clean path, as http.Redirect writes it. */
static int redirect(const struct http_request *req, struct http_handler_ctx *ctx,
		    struct http_reply *reply, const char *path, size_t path_len)
{
	struct http_span query = http_target_query(req->target);
	struct strbuf *loc = &ctx->scratch;
	bool get = span_is(req->method, "GET");
	int err;

	strbuf_reset(loc);
	err = strbuf_append(loc, path, path_len);
	if (!err && query.len) {
		err = strbuf_putc(loc, '?');
		err = err ?: strbuf_append(loc, query.p, query.len);
	}
	err = err ?: strbuf_puts(reply->headers, "Location: ");
	err = err ?: strbuf_append(reply->headers, strbuf_peek(loc), strbuf_avail(loc));
	err = err ?: strbuf_puts(reply->headers, "\r\n");
	if (!err && (get || req->is_head))
		err = strbuf_puts(reply->headers, "Content-Type: text/html; charset=utf-8\r\n");
	if (!err && get) {
		err = strbuf_puts(reply->body, "<a href=\"");
		err = err ?: html_escape(reply->body, strbuf_peek(loc), strbuf_avail(loc));
		err = err ?: strbuf_puts(reply->body, "\">Moved Permanently</a>.\n\n");
	}
	reply->status = 301;
	return err;
}

static int health(struct http_reply *reply)
{
	int err = strbuf_puts(reply->headers, "Content-Type: text/plain; charset=utf-8\r\n");

	return err ?: strbuf_puts(reply->body, "OK");
}

/* Like Go's http.Error: plain text, nosniff, message and a newline. */
static int text_error(struct http_reply *reply, int status, const char *msg)
{
	int err = strbuf_puts(reply->headers,
			      "Content-Type: text/plain; charset=utf-8\r\n"
			      "X-Content-Type-Options: nosniff\r\n");

	reply->status = status;
	err = err ?: strbuf_puts(reply->body, msg);
	return err ?: strbuf_putc(reply->body, '\n');
}

/*
 * /status/NNN: the whole request URI must be ^/status/\d\d\d$ (no query).
 * Codes below 100 are refused: Go's WriteHeader cannot send them.
 */
static int status(const struct http_request *req, struct http_reply *reply,
		  int *interim)
{
	size_t n = strlen(STATUS_PREFIX);
	const char *d = req->target.p + n;
	int code;

	if (req->target.len != n + 3 || memcmp(req->target.p, STATUS_PREFIX, n) ||
	    d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
		return text_error(reply, 400, "invalid status path, want /status/<3 digits>");
	code = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	if (code < 100)
		return text_error(reply, 400, "invalid status code, want 100-999");
	if (code < 200) {
		/* Go sends a 1xx as an interim response, then 200 when the handler returns. */
		*interim = code;
		code = 200;
	}
	reply->status = code;
	return 0;
}

static int json_error(struct http_reply *reply, int status, struct strbuf *msg)
{
	int err = strbuf_puts(reply->headers, "Content-Type: application/json\r\n"
					      "X-Content-Type-Options: nosniff\r\n");

	reply->status = status;
	err = err ?: strbuf_puts(reply->body, "{\n \"message\": ");
	err = err ?: json_append_string(reply->body, strbuf_peek(msg), strbuf_avail(msg));
	return err ?: strbuf_puts(reply->body, "\n}");
}

/* ?delay=<Go duration>: sleep before answering; a bad value is a 500. */
static int parse_delay(const struct http_request *req, struct http_handler_ctx *ctx,
		       struct http_reply *reply, struct http_handled *res, bool *failed)
{
	struct strbuf *val = &ctx->scratch;
	int64_t ns;
	int ret;

	strbuf_reset(val);
	ret = http_query_get(http_target_query(req->target), "delay", val);
	if (ret <= 0 || !strbuf_avail(val))
		return ret;
	if (go_parse_duration(strbuf_peek(val), strbuf_avail(val), &ns)) {
		struct strbuf msg = STRBUF_INIT;

		*failed = true;
		ret = strbuf_puts(&msg, "time: invalid duration ");
		ret = ret ?: json_append_string(&msg, strbuf_peek(val), strbuf_avail(val));
		ret = ret ?: json_error(reply, 500, &msg);
		strbuf_free(&msg);
		return ret;
	}
	if (ns > 0)
		res->delay_ms = (ns + 999999) / 1000000;
	return 0;
}

static int echo(const struct http_request *req, struct http_handler_ctx *ctx,
		struct http_reply *reply, struct http_handled *res)
{
	bool failed = false;
	int err;

	err = parse_delay(req, ctx, reply, res, &failed);
	if (err || failed)
		return err;
	err = echo_set_headers(req, reply->headers);
	err = err ?: strbuf_puts(reply->headers, "Content-Type: application/json\r\n"
						"X-Content-Type-Options: nosniff\r\n");
	return err ?: echo_body_write(reply->body, req, ctx->id, ctx->local_port);
}

static int route(const struct http_request *req, struct http_handler_ctx *ctx,
		 struct http_reply *reply, struct http_handled *res, int *interim)
{
	struct strbuf *rpath = &ctx->path, *clean = &ctx->scratch;
	const char *p;
	size_t len;
	int err;

	/* "*" is only meaningful for OPTIONS; ServeMux refuses it otherwise. */
	if (span_is(req->target, "*")) {
		if (span_is(req->method, "OPTIONS"))
			return 0;
		reply->close = true;
		reply->status = 400;
		return 0;
	}

	strbuf_reset(rpath);
	err = http_route_path(http_target_path(req->target), rpath);
	if (err)
		return err;
	p = strbuf_peek(rpath);
	len = strbuf_avail(rpath);

	if (!span_is(req->method, "CONNECT")) {
		strbuf_reset(clean);
		err = http_clean_path(p, len, clean);
		if (err)
			return err;
		if (strbuf_avail(clean) != len || memcmp(strbuf_peek(clean), p, len)) {
			strbuf_swap(clean, rpath);
			return redirect(req, ctx, reply, strbuf_peek(rpath), strbuf_avail(rpath));
		}
	}
	if (len == 7 && !memcmp(p, "/health", 7))
		return health(reply);
	if (len == strlen(STATUS_PREFIX) - 1 && !memcmp(p, STATUS_PREFIX, len))
		return redirect(req, ctx, reply, STATUS_PREFIX, strlen(STATUS_PREFIX));
	if (len >= strlen(STATUS_PREFIX) && !memcmp(p, STATUS_PREFIX, strlen(STATUS_PREFIX)))
		return status(req, reply, interim);
	return echo(req, ctx, reply, res);
}

int http_handle(const struct http_request *req, struct http_handler_ctx *ctx,
		struct strbuf *out, struct http_handled *res)
{
	struct http_reply reply = {
		.status = 200, .headers = &ctx->headers, .body = &ctx->body,
		.close = !req->keep_alive,
	};
	int interim = 0, err;

	strbuf_reset(&ctx->headers);
	strbuf_reset(&ctx->body);
	res->delay_ms = 0;
	err = route(req, ctx, &reply, res, &interim);
	if (!err && interim) {
		err = http_status_line(out, interim);
		err = err ?: strbuf_puts(out, "\r\n");
	}
	err = err ?: http_reply_write(&reply, req, out);
	res->status = reply.status;
	res->close = reply.close;
	return err;
}

void http_handler_ctx_free(struct http_handler_ctx *ctx)
{
	strbuf_free(&ctx->headers);
	strbuf_free(&ctx->body);
	strbuf_free(&ctx->path);
	strbuf_free(&ctx->scratch);
}
