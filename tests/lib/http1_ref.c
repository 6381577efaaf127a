// SPDX-License-Identifier: Apache-2.0
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http1.h"
#include "http1_ref.h"

/* What http_parser saw, as spans of the input (its callbacks point into it). */
struct ref_span {
	const char *p;
	size_t len;
};

struct ref_result {
	bool complete;
	size_t head_len;
	unsigned int method, minor;
	bool chunked, keep_alive, upgrade, has_length;
	uint64_t content_length;
	struct ref_span url;
	struct ref_span names[H1_HEADERS_MAX + 1], values[H1_HEADERS_MAX + 1];
	size_t nr_fields;
	bool in_value, overflow;
	enum http_errno err;
	const char *buf;
};

static void span_add(struct ref_span *s, const char *at, size_t len)
{
	if (!s->p)
		s->p = at;
	s->len = (size_t)(at + len - s->p);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	span_add(&((struct ref_result *)p->data)->url, at, len);
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct ref_result *r = p->data;

	if (r->in_value || !r->nr_fields) {
		if (r->nr_fields == H1_HEADERS_MAX + 1) {
			r->overflow = true;
			return 0;
		}
		r->nr_fields++;
		r->in_value = false;
	}
	span_add(&r->names[r->nr_fields - 1], at, len);
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct ref_result *r = p->data;

	if (r->overflow)
		return 0;
	r->in_value = true;
	span_add(&r->values[r->nr_fields - 1], at, len);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct ref_result *r = p->data;

	r->complete = true;
	r->method = p->method;
	r->minor = p->http_minor;
	r->chunked = p->flags & F_CHUNKED;
	r->has_length = p->flags & F_CONTENTLENGTH;
	r->content_length = p->content_length;
	r->keep_alive = http_should_keep_alive(p);
	r->upgrade = p->upgrade;
	http_parser_pause(p, 1);
	return 0;
}

static void ref_parse(const char *buf, size_t len, struct ref_result *r)
{
	http_parser_settings s;
	http_parser p;
	size_t n;

	http_parser_settings_init(&s);
	s.on_url = on_url;
	s.on_header_field = on_field;
	s.on_header_value = on_value;
	s.on_headers_complete = on_headers_complete;
	http_parser_init(&p, HTTP_REQUEST);
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	p.data = r;
	n = http_parser_execute(&p, &s, buf, len);
	r->err = HTTP_PARSER_ERRNO(&p);
	if (r->err != HPE_PAUSED && r->err != HPE_OK)
		r->complete = false;
	/* paused inside the callback, before it stepped over the final LF */
	r->head_len = n + 1;
}

/* A value as gammad keeps it: leading and trailing SP and HTAB dropped. */
static struct ref_span trimmed(struct ref_span v)
{
	while (v.len && (v.p[0] == ' ' || v.p[0] == '\t'))
		v.p++, v.len--;
	while (v.len && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
		v.len--;
	return v;
}

static bool span_eq(const struct h1_str *a, struct ref_span b)
{
	return a->len == b.len && (!a->len || !memcmp(a->p, b.p, a->len));
}

/* Rules gammad keeps on purpose where http_parser is lenient (see the header). */
static bool stricter(int err, const struct ref_result *r)
{
	switch (-err) {
	case H1_E_HOST:
	case H1_E_EXPECT:
	case H1_E_LINE_END:
	case H1_E_OBS_FOLD:
	case H1_E_LENGTH_AND_ENCODING:
	case H1_E_CONTENT_LENGTH:
	case H1_E_TRANSFER_ENCODING:
	case H1_E_HEADER_VALUE:
	case H1_E_TOO_MANY_HEADERS:
	case H1_E_HEAD_TOO_LARGE:
	case H1_E_TARGET_TOO_LONG:
	case H1_E_VERSION:
	case H1_E_HEADER_NAME:
	case H1_E_TARGET:
	/* built non-strict, it takes several spaces, checks only the version's
	   first letter, and reads a request line without one as HTTP/0.9 */
	case H1_E_REQUEST_LINE:
		return true;
	default:
		return r->method == HTTP_CONNECT;
	}
}

static bool connection_options_simple(const struct h1_head *h)
{
	for (size_t i = 0; i < h->nr_headers; i++)
		if (h1_str_ieq(&h->headers[i].name, "connection") &&
		    memchr(h->headers[i].value.p, ',', h->headers[i].value.len))
			return false;
	return true;
}

/* A "close" element in any Connection field (comma-separated, OWS around). */
static bool has_close_option(const struct h1_head *h)
{
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct h1_header *f = &h->headers[i];
		const char *p = f->value.p, *end = p + f->value.len;

		if (!h1_str_ieq(&f->name, "connection"))
			continue;
		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma ? comma : end;
			struct h1_str opt;

			while (p < e && (*p == ' ' || *p == '\t'))
				p++;
			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			opt = (struct h1_str){ p, (size_t)(e - p) };
			if (h1_str_ieq(&opt, "close"))
				return true;
			p = comma ? comma + 1 : end;
		}
	}
	return false;
}

/* A field named "Transfer-Encoding..." but longer: http_parser's prefix match. */
static bool has_encoding_prefix_field(const struct h1_head *h)
{
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct h1_str *n = &h->headers[i].name;

		if (n->len > 17 && !strncasecmp(n->p, "transfer-encoding", 17))
			return true;
	}
	return false;
}

static enum h1_ref_verdict disagree(char *why, size_t len, const char *fmt, const char *what)
{
	snprintf(why, len, fmt, what);
	return H1_REF_DISAGREE;
}

static enum h1_ref_verdict compare_accepted(const struct h1_head *h, const struct ref_result *r,
					    bool same_method, char *why, size_t len)
{
	if (!r->complete)
		return disagree(why, len, "%s", "gammad accepts a head http_parser refuses");
	if (h->head_len != r->head_len)
		return disagree(why, len, "%s", "the head ends elsewhere");
	if (same_method && !h1_str_eq(&h->method, http_method_str(r->method)))
		return disagree(why, len, "%s", "method");
	if (!span_eq(&h->target, r->url) || h->minor != r->minor)
		return disagree(why, len, "%s", "target or version");
	if (h->nr_headers != r->nr_fields)
		return disagree(why, len, "%s", "number of header fields");
	for (size_t i = 0; i < h->nr_headers; i++)
		if (!span_eq(&h->headers[i].name, r->names[i]) ||
		    !span_eq(&h->headers[i].value, trimmed(r->values[i])))
			return disagree(why, len, "%s", "a header field");
	if ((h->body == H1_BODY_CHUNKED) != r->chunked)
		return disagree(why, len, "%s", "chunked");
	if (h->body == H1_BODY_LENGTH && h->content_length != r->content_length)
		return disagree(why, len, "%s", "content length");
	/*
	 * RFC 9112 9.3: "close" ends the connection; on HTTP/1.0 it lets
	 * keep-alive win. It also finds options only in some shapes of a list:
	 * compare where every Connection field holds one option.
	 */
	if (connection_options_simple(h) && h->keep_alive != (r->keep_alive && !has_close_option(h)))
		return disagree(why, len, "%s", "keep-alive");
	if (h->upgrade != r->upgrade)
		return disagree(why, len, "%s", "upgrade");
	return H1_REF_BOTH_ACCEPT;
}

/*
 * http_parser knows a fixed list of methods; RFC 9110 allows any token. A
 * head gammad accepts with a method http_parser does not know is compared
 * again with the method replaced by a known one of the same length, so every
 * other byte keeps its place and is still checked.
 */
static const char *known_method_of_length(size_t len)
{
	static const char *const known[] = {
		"GET", "POST", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCALENDAR",
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len)
			return known[i];
	return NULL;
}

static enum h1_ref_verdict compare_extension_method(const char *buf, size_t len,
						    const struct h1_head *h, struct ref_result *r,
						    char *why, size_t why_len)
{
	const char *known = known_method_of_length(h->method.len);
	enum h1_ref_verdict v;
	char *copy;

	if (!known)
		return H1_REF_EXTENSION_METHOD;
	copy = malloc(len);
	if (!copy)
		return disagree(why, why_len, "%s", "out of memory");
	memcpy(copy, buf, len);
	memcpy(copy + (h->method.p - buf), known, h->method.len);
	ref_parse(copy, len, r);
	/* h points into buf, r into copy: compare by offsets, so rebase r's spans */
	r->url.p = r->url.p ? buf + (r->url.p - copy) : NULL;
	for (size_t i = 0; i < r->nr_fields; i++) {
		r->names[i].p = r->names[i].p ? buf + (r->names[i].p - copy) : NULL;
		r->values[i].p = r->values[i].p ? buf + (r->values[i].p - copy) : NULL;
	}
	v = compare_accepted(h, r, false, why, why_len);
	free(copy);
	return v == H1_REF_BOTH_ACCEPT ? H1_REF_EXTENSION_METHOD : v;
}

enum h1_ref_verdict h1_ref_compare(const char *buf, size_t len, char *why, size_t why_len)
{
	struct ref_result *r = calloc(1, sizeof(*r));
	struct h1_head *h = calloc(1, sizeof(*h));
	struct h1_scan scan = { 0 };
	enum h1_ref_verdict v;
	long end;
	int ret;

	if (!r || !h) {
		free(r);
		free(h);
		return disagree(why, why_len, "%s", "out of memory");
	}
	ref_parse(buf, len, r);
	end = h1_head_end(buf, len, NULL, &scan);
	ret = end > 0 ? h1_parse_request(buf, (size_t)end, NULL, h) : (int)end;
	if (!ret && end > 0 && r->err == HPE_INVALID_METHOD)
		v = compare_extension_method(buf, len, h, r, why, why_len);
	else if (!ret && end > 0)
		v = compare_accepted(h, r, true, why, why_len);
	else if (!end)
		v = r->complete ? disagree(why, why_len, "%s", "gammad waits for more of a head http_parser took")
				: H1_REF_BOTH_INCOMPLETE;
	else if (!r->complete)
		v = H1_REF_BOTH_REFUSE;
	else if (stricter(ret, r))
		v = H1_REF_STRICTER;
	else
		v = disagree(why, why_len, "gammad refuses (%s) a head http_parser accepts",
			     h1_error_str(ret));
	if (v == H1_REF_DISAGREE && !ret && end > 0 && has_encoding_prefix_field(h))
		v = H1_REF_REFERENCE_BUG;
	free(r);
	free(h);
	return v;
}
