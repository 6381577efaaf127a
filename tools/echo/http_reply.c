// SPDX-License-Identifier: Apache-2.0
#include <time.h>

#include "http_reply.h"
#include "http_status.h"

/* The Date header, formatted once per second (RFC 9110 IMF-fixdate). */
static const char *http_date(void)
{
	static char cached[40];
	static time_t cached_at = -1;
	time_t now = time(NULL);
	struct tm tm;

	if (now != cached_at) {
		gmtime_r(&now, &tm);
		strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		cached_at = now;
	}
	return cached;
}

int http_status_line(struct strbuf *out, int status)
{
	const char *text = http_status_text(status);

	if (text)
		return strbuf_printf(out, "HTTP/1.1 %03d %s\r\n", status, text);
	return strbuf_printf(out, "HTTP/1.1 %03d status code %d\r\n", status, status);
}

/* RFC 9110 8.6: no Content-Length on 1xx and 204; 304 has no body either. */
static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

int http_reply_write(const struct http_reply *r, const struct http_request *req,
		     struct strbuf *out)
{
	size_t body_len = r->body ? strbuf_avail(r->body) : 0;
	bool with_body = status_has_body(r->status);
	int err;

	err = http_status_line(out, r->status);
	if (!err && r->headers)
		err = strbuf_append(out, strbuf_peek(r->headers), strbuf_avail(r->headers));
	if (!err)
		err = strbuf_printf(out, "Date: %s\r\n", http_date());
	if (!err && with_body)
		err = strbuf_printf(out, "Content-Length: %zu\r\n", body_len);
	if (!err && r->close)
		err = strbuf_puts(out, "Connection: close\r\n");
	else if (!err && req && req->minor == 0)
		err = strbuf_puts(out, "Connection: keep-alive\r\n");
	if (!err)
		err = strbuf_puts(out, "\r\n");
	if (!err && with_body && body_len && !(req && req->is_head))
		err = strbuf_append(out, strbuf_peek(r->body), body_len);
	return err;
}

int http_error_write(struct strbuf *out, int status, const char *reason)
{
	struct strbuf headers = STRBUF_INIT, body = STRBUF_INIT;
	const char *text = http_status_text(status);
	struct http_reply reply = {
		.status = status, .headers = &headers, .body = &body, .close = true,
	};
	int err;

	/* Go's server answers bad requests with "<code> <text>: <reason>". */
	err = strbuf_puts(&headers, "Content-Type: text/plain; charset=utf-8\r\n");
	if (!err)
		err = strbuf_printf(&body, "%d %s: %s", status, text ? text : "Error", reason);
	if (!err)
		err = http_reply_write(&reply, NULL, out);
	strbuf_free(&headers);
	strbuf_free(&body);
	return err;
}
