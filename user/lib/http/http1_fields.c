// SPDX-License-Identifier: Apache-2.0
/*
 * What the header fields of a head mean for the connection: where the body
 * ends (RFC 9112 6.3), whether the connection stays open, Host, Expect and
 * Upgrade.
 */
#include <stdint.h>
#include <strings.h>

#include "http1.h"
#include "http1_int.h"

/* A Content-Length larger than this is refused rather than trusted. */
#define H1_CONTENT_LENGTH_MAX (UINT64_C(1) << 62)

bool h1_str_ieq(const struct h1_str *s, const char *lit)
{
	return strlen(lit) == s->len && !strncasecmp(s->p, lit, s->len);
}

bool h1_str_eq(const struct h1_str *s, const char *lit)
{
	return strlen(lit) == s->len && !memcmp(s->p, lit, s->len);
}

const struct h1_header *h1_header_get(const struct h1_head *h, const char *name)
{
	for (size_t i = 0; i < h->nr_headers; i++)
		if (h1_str_ieq(&h->headers[i].name, name))
			return &h->headers[i];
	return NULL;
}

/* The next element of a comma-separated list, OWS trimmed; empty ones skipped. */
static bool list_next(struct h1_str *rest, struct h1_str *elem)
{
	const char *p = rest->p, *end = rest->p + rest->len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end, *s = p;

		p = comma ? comma + 1 : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			*elem = (struct h1_str){ s, (size_t)(e - s) };
			rest->p = p;
			rest->len = (size_t)(end - p);
			return true;
		}
	}
	rest->len = 0;
	return false;
}

struct fields {
	unsigned int nr_length, nr_host;
	uint64_t length;
	bool encoding;			/* Transfer-Encoding present */
	bool chunked_last;		/* its last coding is chunked */
	bool encoding_bad;		/* chunked not last, or an empty list */
	bool close, keep_alive, upgrade_token, upgrade_field;
	const struct h1_header *expect, *host;
};

static bool parse_length(const struct h1_str *v, uint64_t *out)
{
	uint64_t n = 0;

	if (!v->len)
		return false;
	for (size_t i = 0; i < v->len; i++) {
		if (!h1_is_digit(v->p[i]))
			return false;
		n = n * 10 + (uint64_t)(v->p[i] - '0');
		if (n > H1_CONTENT_LENGTH_MAX)
			return false;
	}
	*out = n;
	return true;
}

/* Comma-separated elements of v, empty ones included. */
static size_t list_elements(const struct h1_str *v)
{
	size_t n = 1;

	for (size_t i = 0; i < v->len; i++)
		n += v->p[i] == ',';
	return n;
}

static void read_encoding(const struct h1_str *v, struct fields *f)
{
	struct h1_str rest = *v, coding;
	size_t nr = 0;

	if (f->encoding)
		f->encoding_bad = true;
	f->encoding = true;
	while (list_next(&rest, &coding)) {
		for (size_t i = 0; i < coding.len; i++)
			if (!h1_is_tchar(coding.p[i]))
				f->encoding_bad = true;
		/* chunked may be applied once, last: anything after it is faulty framing */
		if (f->chunked_last)
			f->encoding_bad = true;
		f->chunked_last = h1_str_ieq(&coding, "chunked");
		nr++;
	}
	/* RFC 9110 5.6.1 would skip empty elements (", chunked"); see above */
	if (!nr || nr != list_elements(v))
		f->encoding_bad = true;
}

static void read_connection(const struct h1_str *v, struct fields *f)
{
	struct h1_str rest = *v, opt;

	while (list_next(&rest, &opt)) {
		f->close |= h1_str_ieq(&opt, "close");
		f->keep_alive |= h1_str_ieq(&opt, "keep-alive");
		f->upgrade_token |= h1_str_ieq(&opt, "upgrade");
	}
}

static int read_fields(const struct h1_head *h, struct fields *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct h1_header *hd = &h->headers[i];

		/*
		 * The framing fields are held to what every client sends: parsers
		 * differ on the rest (an HTAB around "chunked", two fields), and a
		 * difference in framing is a smuggled request.
		 */
		if (h1_str_ieq(&hd->name, "content-length")) {
			if (f->nr_length++ || hd->tab || !parse_length(&hd->value, &f->length))
				return -H1_E_CONTENT_LENGTH;
		} else if (h1_str_ieq(&hd->name, "transfer-encoding")) {
			read_encoding(&hd->value, f);
			f->encoding_bad |= hd->tab;
		} else if (h1_str_ieq(&hd->name, "connection")) {
			read_connection(&hd->value, f);
		} else if (h1_str_ieq(&hd->name, "host")) {
			f->nr_host++;
			f->host = hd;
		} else if (h1_str_ieq(&hd->name, "expect")) {
			f->expect = hd;
		} else if (h1_str_ieq(&hd->name, "upgrade")) {
			/* an empty Upgrade proposes no protocol */
			f->upgrade_field |= hd->value.len > 0;
		}
	}
	/* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing. */
	if (f->encoding && h->minor == 0)
		return -H1_E_TRANSFER_ENCODING;
	/* Either may be what a second parser on the path believes: refuse both. */
	if (f->encoding && f->nr_length)
		return -H1_E_LENGTH_AND_ENCODING;
	return 0;
}

static bool keep_alive(const struct h1_head *h, const struct fields *f)
{
	return h->minor == 1 ? !f->close : f->keep_alive && !f->close;
}

int h1_request_semantics(struct h1_head *h)
{
	struct fields f;
	int ret = read_fields(h, &f);

	if (ret)
		return ret;
	if (f.encoding) {
		if (f.encoding_bad || !f.chunked_last)
			return -H1_E_TRANSFER_ENCODING;
		h->body = H1_BODY_CHUNKED;
	} else if (f.nr_length && f.length) {
		h->body = H1_BODY_LENGTH;
		h->content_length = f.length;
	}
	if (f.nr_host > 1 || (h->minor == 1 && f.nr_host != 1))
		return -H1_E_HOST;
	if (f.host)
		h->host = f.host->value;
	if (f.expect) {
		if (!h1_str_ieq(&f.expect->value, "100-continue"))
			return -H1_E_EXPECT;
		/* RFC 9110 10.1.1: ignored in an HTTP/1.0 request */
		h->expect_continue = h->minor == 1;
	}
	h->keep_alive = keep_alive(h, &f);
	/* CONNECT turns the connection into a tunnel once the server says 2xx */
	h->upgrade = (f.upgrade_field && f.upgrade_token) || h1_str_eq(&h->method, "CONNECT");
	return 0;
}

int h1_response_semantics(struct h1_head *h, const struct h1_str *req_method)
{
	struct fields f;
	int ret = read_fields(h, &f);

	if (ret)
		return ret;
	if ((req_method && h1_str_eq(req_method, "HEAD")) || h->status / 100 == 1 ||
	    h->status == 204 || h->status == 304) {
		h->body = H1_BODY_NONE;
	} else if (f.encoding) {
		/* RFC 9112 6.3: a coding other than chunked last is read until close */
		h->body = f.chunked_last && !f.encoding_bad ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
	} else if (f.nr_length) {
		h->body = f.length ? H1_BODY_LENGTH : H1_BODY_NONE;
		h->content_length = f.length;
	} else {
		h->body = H1_BODY_CLOSE;
	}
	h->keep_alive = h->body != H1_BODY_CLOSE && keep_alive(h, &f);
	h->upgrade = h->status == 101;
	return 0;
}
