// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

bool http_is_tchar(unsigned char c)
{
	/* RFC 9110 token characters. */
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

static bool is_token(struct http_span s)
{
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!http_is_tchar(s.p[i]))
			return false;
	return true;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static struct http_span trim(struct http_span s)
{
	while (s.len && is_ows(s.p[0]))
		s.p++, s.len--;
	while (s.len && is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}

bool http_span_eq_nocase(struct http_span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && !strncasecmp(s.p, lit, n);
}

bool http_has_token(struct http_span s, const char *token)
{
	while (s.len) {
		const char *comma = memchr(s.p, ',', s.len);
		size_t n = comma ? (size_t)(comma - s.p) : s.len;
		struct http_span item = trim((struct http_span){ s.p, n });

		if (http_span_eq_nocase(item, token))
			return true;
		if (!comma)
			break;
		s.p += n + 1;
		s.len -= n + 1;
	}
	return false;
}

size_t http_find_head_end(const char *buf, size_t len, size_t *scan)
{
	size_t i = *scan;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);

		if (!nl)
			break;
		i = nl - buf;
		/* A line that is empty, or holds only "\r", ends the head. */
		if (i >= 1 && buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return i + 1;
		i++;
	}
	*scan = len;
	return 0;
}

/* Go's textproto.CanonicalMIMEHeaderKey for a valid token, in place. */
static void canonicalize(char *p, size_t len)
{
	bool upper = true;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (upper && c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		else if (!upper && c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		p[i] = c;
		upper = c == '-';
	}
}

static int fail(struct http_error *err, int status, const char *reason)
{
	err->status = status;
	err->reason = reason;
	return -EINVAL;
}

/* Next line of the head, without its "\r\n" or "\n". */
static bool next_line(char **cur, char *end, struct http_span *line)
{
	char *nl = memchr(*cur, '\n', end - *cur);
	size_t n;

	if (!nl)
		return false;
	n = nl - *cur;
	if (n && (*cur)[n - 1] == '\r')
		n--;
	line->p = *cur;
	line->len = n;
	*cur = nl + 1;
	return true;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Go's url.ParseRequestURI rejects control bytes and bad %-escapes in the path. */
static bool valid_target(struct http_span t, struct http_span *authority)
{
	size_t path_end = t.len;

	authority->p = NULL;
	authority->len = 0;
	if (!t.len)
		return false;
	for (size_t i = 0; i < t.len; i++) {
		unsigned char c = t.p[i];

		if (c <= ' ' || c == 0x7f)
			return false;
		if (c == '?' && path_end == t.len)
			path_end = i;
	}
	if (t.len == 1 && t.p[0] == '*')
		return true;
	if (t.p[0] != '/') {
		/* absolute-form "scheme://authority/path": the authority is r.Host */
		const char *sep = memmem(t.p, t.len, "://", 3);
		const char *auth, *auth_end;

		if (!sep || sep == t.p)
			return false;
		for (const char *s = t.p; s < sep; s++)
			if (!(http_is_tchar(*s) && *s != '%'))
				return false;
		auth = sep + 3;
		auth_end = auth;
		while (auth_end < t.p + path_end && *auth_end != '/')
			auth_end++;
		authority->p = auth;
		authority->len = auth_end - auth;
	}
	for (size_t i = 0; i < path_end; i++) {
		if (t.p[i] != '%')
			continue;
		if (i + 2 >= path_end)
			return false;
		if (!is_hex(t.p[i + 1]) || !is_hex(t.p[i + 2]))
			return false;
		i += 2;
	}
	return true;
}

static int parse_request_line(struct http_span line, struct http_request *req,
			      struct http_error *err)
{
	const char *sp1, *sp2, *end = line.p + line.len;
	struct http_span v;

	sp1 = memchr(line.p, ' ', line.len);
	if (!sp1)
		return fail(err, 400, "malformed request line");
	sp2 = memchr(sp1 + 1, ' ', end - sp1 - 1);
	if (!sp2)
		return fail(err, 400, "malformed request line");
	req->method = (struct http_span){ line.p, sp1 - line.p };
	req->target = (struct http_span){ sp1 + 1, sp2 - sp1 - 1 };
	req->proto = (struct http_span){ sp2 + 1, end - sp2 - 1 };
	if (!is_token(req->method))
		return fail(err, 400, "invalid method");

	v = req->proto;
	if (v.len != 8 || memcmp(v.p, "HTTP/", 5) || v.p[6] != '.' ||
	    v.p[5] < '0' || v.p[5] > '9' || v.p[7] < '0' || v.p[7] > '9')
		return fail(err, 400, "malformed HTTP version");
	if (v.p[5] != '1')
		return fail(err, 505, "unsupported protocol version");
	req->minor = v.p[7] - '0';
	/* Methods are case-sensitive: "head" is not HEAD. */
	req->is_head = req->method.len == 4 && !memcmp(req->method.p, "HEAD", 4);
	return 0;
}

static int parse_header_line(struct http_span line, struct http_request *req,
			     struct http_error *err)
{
	const char *colon = memchr(line.p, ':', line.len);
	struct http_header *h;

	if (is_ows(line.p[0]))
		return fail(err, 400, "obsolete line folding in header");
	if (!colon)
		return fail(err, 400, "malformed header line");
	if (req->nr_headers == HTTP_MAX_HEADERS)
		return fail(err, 431, "too many header lines");
	h = &req->headers[req->nr_headers++];
	h->name = (struct http_span){ line.p, colon - line.p };
	h->value = trim((struct http_span){ colon + 1, line.p + line.len - colon - 1 });
	h->hidden = false;
	if (!is_token(h->name))
		return fail(err, 400, "invalid header name");
	for (size_t i = 0; i < h->value.len; i++) {
		unsigned char c = h->value.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(err, 400, "invalid header value");
	}
	canonicalize((char *)h->name.p, h->name.len);
	return 0;
}

static bool parse_uint64(struct http_span s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		if (v > (INT64_MAX - 9) / 10)
			return false;	/* Go limits Content-Length to int64 */
		v = v * 10 + (s.p[i] - '0');
	}
	*out = v;
	return true;
}

static bool name_is(const struct http_header *h, const char *canonical)
{
	size_t n = strlen(canonical);

	return h->name.len == n && !memcmp(h->name.p, canonical, n);
}

/* Host, Transfer-Encoding, Content-Length, Connection and Expect, as Go reads them. */
static int apply_semantics(struct http_request *req, struct http_span authority,
			   struct http_error *err)
{
	struct http_header *first_cl = NULL;
	int hosts = 0, encodings = 0;
	bool conn_close = false, conn_keep = false, te_chunked = false;
	struct http_span expect = { NULL, 0 };

	for (int i = 0; i < req->nr_headers; i++) {
		struct http_header *h = &req->headers[i];

		if (name_is(h, "Host")) {
			req->host = h->value;
			h->hidden = true;	/* Go moves it to r.Host */
			hosts++;
		} else if (name_is(h, "Transfer-Encoding")) {
			h->hidden = true;	/* Go moves it to r.TransferEncoding */
			encodings++;
			te_chunked = http_span_eq_nocase(h->value, "chunked");
		} else if (name_is(h, "Connection")) {
			conn_close |= http_has_token(h->value, "close");
			conn_keep |= http_has_token(h->value, "keep-alive");
		} else if (name_is(h, "Expect")) {
			if (!expect.len)
				expect = h->value;
		}
	}
	if (hosts > 1)
		return fail(err, 400, "too many Host headers");
	if (!hosts && req->minor >= 1)
		return fail(err, 400, "missing required Host header");
	if (authority.p)
		req->host = authority;

	/* Go ignores Transfer-Encoding in HTTP/1.0 requests (golang/go#12785). */
	if (encodings && req->minor >= 1) {
		if (encodings > 1)
			return fail(err, 501, "too many transfer encodings");
		if (!te_chunked)
			return fail(err, 501, "unsupported transfer encoding");
		req->chunked = true;
	}

	for (int i = 0; i < req->nr_headers; i++) {
		struct http_header *h = &req->headers[i];

		if (!name_is(h, "Content-Length"))
			continue;
		if (req->chunked) {
			h->hidden = true;	/* chunked wins; Go drops the length */
			continue;
		}
		if (!first_cl) {
			first_cl = h;
			if (!parse_uint64(h->value, &req->content_length))
				return fail(err, 400, "bad Content-Length");
			continue;
		}
		/* Repeats of the same value are folded into one, others refused. */
		if (h->value.len != first_cl->value.len ||
		    memcmp(h->value.p, first_cl->value.p, h->value.len))
			return fail(err, 400, "multiple differing Content-Length headers");
		h->hidden = true;
	}

	req->keep_alive = req->minor >= 1 ? !conn_close : (conn_keep && !conn_close);

	if (http_has_token(expect, "100-continue")) {
		req->expect_continue = req->minor >= 1 &&
				       (req->chunked || req->content_length);
	} else if (expect.len) {
		return fail(err, 417, "unsupported Expect value");
	}
	return 0;
}

int http_parse_request(char *head, size_t len, struct http_request *req,
		       struct http_error *err)
{
	char *cur = head, *end = head + len;
	struct http_span line, authority;
	int ret;

	memset(req, 0, offsetof(struct http_request, headers));
	req->host = (struct http_span){ "", 0 };

	if (!next_line(&cur, end, &line) || !line.len)
		return fail(err, 400, "missing request line");
	ret = parse_request_line(line, req, err);
	if (ret)
		return ret;
	if (!valid_target(req->target, &authority))
		return fail(err, 400, "invalid request target");

	while (next_line(&cur, end, &line) && line.len) {
		ret = parse_header_line(line, req, err);
		if (ret)
			return ret;
	}
	return apply_semantics(req, authority, err);
}
