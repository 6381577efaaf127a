// SPDX-License-Identifier: Apache-2.0
/* HTTP/1.1 heads: finding their end, the start line and the header fields. */
#include <errno.h>
#include <string.h>

#include "http1.h"
#include "http1_int.h"

static const struct {
	const char *what;
	int status;
} errors[H1_E_COUNT] = {
	[H1_E_SYNTAX] = { "not an HTTP/1.x message", 400 },
	[H1_E_LINE_END] = { "CR or LF outside a CRLF", 400 },
	[H1_E_METHOD] = { "method is not a token", 400 },
	[H1_E_TARGET] = { "request-target of no known form, or with a byte RFC 3986 forbids", 400 },
	[H1_E_VERSION] = { "HTTP version not supported", 505 },
	[H1_E_REQUEST_LINE] = { "request line not METHOD SP target SP HTTP/d.d", 400 },
	[H1_E_STATUS] = { "status code not in 100-599", 502 },
	[H1_E_HEADER_NAME] = { "header name empty, not a token, or followed by space", 400 },
	[H1_E_HEADER_VALUE] = { "control character in a header value", 400 },
	[H1_E_OBS_FOLD] = { "header line continued (obs-fold)", 400 },
	[H1_E_CONTENT_LENGTH] = { "Content-Length not one decimal number", 400 },
	[H1_E_TRANSFER_ENCODING] = { "Transfer-Encoding not ending in chunked, or on HTTP/1.0", 400 },
	[H1_E_LENGTH_AND_ENCODING] = { "both Content-Length and Transfer-Encoding", 400 },
	[H1_E_HOST] = { "HTTP/1.1 request without exactly one Host", 400 },
	[H1_E_EXPECT] = { "expectation other than 100-continue", 417 },
	[H1_E_TOO_MANY_HEADERS] = { "too many header fields", 431 },
	[H1_E_HEAD_TOO_LARGE] = { "head too large", 431 },
	[H1_E_TARGET_TOO_LONG] = { "request-target too long", 414 },
	[H1_E_CHUNK] = { "chunked body out of shape", 400 },
};

const char *h1_error_str(int err)
{
	err = -err;
	return err > 0 && err < H1_E_COUNT ? errors[err].what : "unknown HTTP/1 error";
}

int h1_error_status(int err)
{
	err = -err;
	return err > 0 && err < H1_E_COUNT ? errors[err].status : 400;
}

static const struct h1_limits default_limits = {
	.head_max = H1_HEAD_MAX_DEFAULT,
	.target_max = H1_TARGET_MAX_DEFAULT,
};

long h1_head_end(const char *buf, size_t len, const struct h1_limits *lim, struct h1_scan *s)
{
	if (!lim)
		lim = &default_limits;
	for (; s->pos < len; s->pos++) {
		char c = buf[s->pos];

		if (s->pos && buf[s->pos - 1] == '\r' && c != '\n')
			return -H1_E_LINE_END;
		if (c != '\n') {
			if (s->pos + 1 >= lim->head_max)
				return -H1_E_HEAD_TOO_LARGE;
			continue;
		}
		if (!s->pos || buf[s->pos - 1] != '\r')
			return -H1_E_LINE_END;
		if (s->pos - s->line_start > 1) {
			s->started = true;
		} else if (s->started) {
			s->pos++;
			return (long)s->pos;
		} else if (++s->leading > H1_LEADING_CRLF_MAX) {
			return -H1_E_REQUEST_LINE;
		}
		s->line_start = s->pos + 1;
	}
	return 0;
}

/* ---- lines ---------------------------------------------------------------- */

/* The next line of a complete head, without its CRLF; false at the end. */
static bool next_line(struct h1_cursor *cur, struct h1_str *line)
{
	const char *nl;

	if (cur->p >= cur->end)
		return false;
	nl = memchr(cur->p, '\n', (size_t)(cur->end - cur->p));
	if (!nl || nl == cur->p || nl[-1] != '\r')
		return false;
	line->p = cur->p;
	line->len = (size_t)(nl - 1 - cur->p);
	cur->p = nl + 1;
	return true;
}

/* "HTTP/1.0" or "HTTP/1.1" at the start of s; its minor version or -error. */
static int parse_version(const char *s, size_t len)
{
	if (len < 8 || memcmp(s, "HTTP/", 5) || !h1_is_digit(s[5]) || s[6] != '.' ||
	    !h1_is_digit(s[7]))
		return -H1_E_REQUEST_LINE;
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return -H1_E_VERSION;
	return s[7] - '0';
}

static int parse_request_line(const struct h1_str *line, const struct h1_limits *lim,
			      struct h1_head *h)
{
	const char *p = line->p, *end = line->p + line->len, *sp;
	int minor;

	for (sp = p; sp < end && h1_is_tchar(*sp); sp++)
		;
	if (sp == end)
		return -H1_E_REQUEST_LINE;
	if (*sp != ' ')
		return -H1_E_METHOD;
	if (sp == p)
		return -H1_E_REQUEST_LINE;
	h->method = (struct h1_str){ p, (size_t)(sp - p) };
	p = sp + 1;
	for (sp = p; sp < end && !h1_is_ctl_or_space(*sp); sp++)
		;
	if (sp == p || sp == end)
		return -H1_E_REQUEST_LINE;
	if (*sp != ' ')
		return -H1_E_TARGET;
	if ((size_t)(sp - p) > lim->target_max)
		return -H1_E_TARGET_TOO_LONG;
	h->target = (struct h1_str){ p, (size_t)(sp - p) };
	if (h1_parse_target(h))
		return -H1_E_TARGET;
	p = sp + 1;
	minor = parse_version(p, (size_t)(end - p));
	if (minor < 0)
		return minor;
	if (end - p != 8)
		return -H1_E_REQUEST_LINE;
	h->minor = (uint8_t)minor;
	return 0;
}

static int parse_status_line(const struct h1_str *line, struct h1_head *h)
{
	const char *p = line->p, *end = line->p + line->len;
	int minor = parse_version(p, line->len);

	if (minor < 0)
		return minor == -H1_E_REQUEST_LINE ? -H1_E_SYNTAX : minor;
	h->minor = (uint8_t)minor;
	p += 8;
	if (end - p < 4 || *p != ' ' || !h1_is_digit(p[1]) || !h1_is_digit(p[2]) ||
	    !h1_is_digit(p[3]))
		return -H1_E_STATUS;
	h->status = (uint16_t)((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0'));
	if (h->status < 100 || h->status > 599)
		return -H1_E_STATUS;
	p += 4;
	/* The SP before an empty reason is often left out: accept both. */
	if (p < end && *p++ != ' ')
		return -H1_E_STATUS;
	for (const char *q = p; q < end; q++)
		if (!h1_is_field_char(*q))
			return -H1_E_HEADER_VALUE;
	h->reason = (struct h1_str){ p, (size_t)(end - p) };
	return 0;
}

static int parse_header(const struct h1_str *line, struct h1_head *h)
{
	const char *p = line->p, *end = line->p + line->len, *colon;
	struct h1_header *f;

	if (*p == ' ' || *p == '\t')
		return -H1_E_OBS_FOLD;
	for (colon = p; colon < end && h1_is_tchar(*colon); colon++)
		;
	if (colon == p || colon == end || *colon != ':')
		return -H1_E_HEADER_NAME;
	if (h->nr_headers == H1_HEADERS_MAX)
		return -H1_E_TOO_MANY_HEADERS;
	f = &h->headers[h->nr_headers++];
	f->name = (struct h1_str){ p, (size_t)(colon - p) };
	for (p = colon + 1; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	f->tab = memchr(colon, '\t', (size_t)(end - colon)) != NULL;
	for (const char *q = p; q < end; q++)
		if (!h1_is_field_char(*q))
			return -H1_E_HEADER_VALUE;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	f->value = (struct h1_str){ p, (size_t)(end - p) };
	return 0;
}

/* Header lines up to the empty line that ends the head. */
static int parse_headers(struct h1_cursor *cur, struct h1_head *h)
{
	struct h1_str line;
	int ret;

	while (next_line(cur, &line)) {
		if (!line.len)
			return cur->p == cur->end ? 0 : -H1_E_SYNTAX;
		ret = parse_header(&line, h);
		if (ret)
			return ret;
	}
	return -H1_E_SYNTAX;
}

/* The head must be what h1_head_end() measured: lines ending in CRLF. */
static int head_start(const char *buf, size_t len, struct h1_cursor *cur, struct h1_head *h)
{
	memset(h, 0, sizeof(*h));
	h->head_len = len;
	cur->p = buf;
	cur->end = buf + len;
	if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4))
		return -H1_E_SYNTAX;
	return 0;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
		     struct h1_head *h)
{
	struct h1_cursor cur;
	struct h1_str line;
	int ret = head_start(buf, len, &cur, h);

	if (ret)
		return ret;
	if (!lim)
		lim = &default_limits;
	if (len > lim->head_max)
		return -H1_E_HEAD_TOO_LARGE;
	do {
		if (!next_line(&cur, &line))
			return -H1_E_SYNTAX;
	} while (!line.len && ++h->skipped <= H1_LEADING_CRLF_MAX);
	if (!line.len)
		return -H1_E_REQUEST_LINE;
	ret = parse_request_line(&line, lim, h);
	if (!ret)
		ret = parse_headers(&cur, h);
	if (!ret)
		ret = h1_request_semantics(h);
	return ret;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_str *req_method,
		      struct h1_head *h)
{
	struct h1_cursor cur;
	struct h1_str line;
	int ret = head_start(buf, len, &cur, h);

	if (ret)
		return ret;
	if (!next_line(&cur, &line) || !line.len)
		return -H1_E_SYNTAX;
	ret = parse_status_line(&line, h);
	if (!ret)
		ret = parse_headers(&cur, h);
	if (!ret)
		ret = h1_response_semantics(h, req_method);
	return ret;
}
