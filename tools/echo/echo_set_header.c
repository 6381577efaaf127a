// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "echo_set_header.h"

/* Bounds the quadratic name lookup a hostile request could otherwise cause. */
#define MAX_SET_HEADERS 64

struct set_header {
	struct http_span name;
	struct strbuf value;
};

static struct http_span trim(struct http_span s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

static bool reserved_name(struct http_span name)
{
	static const char *const framing[] = {
		"Content-Length", "Transfer-Encoding", "Connection", "Date",
	};
	static const char *const set_by_echo[] = {
		"Content-Type", "X-Content-Type-Options",
	};

	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (http_span_eq_nocase(name, framing[i]))
			return true;
	for (size_t i = 0; i < sizeof(set_by_echo) / sizeof(set_by_echo[0]); i++)
		if (name.len == strlen(set_by_echo[i]) &&
		    !memcmp(name.p, set_by_echo[i], name.len))
			return true;
	return false;
}

static bool valid_name(struct http_span name)
{
	if (!name.len)
		return false;
	for (size_t i = 0; i < name.len; i++)
		if (!http_is_tchar(name.p[i]))
			return false;
	return true;
}

static int add_item(struct set_header *set, int *nr, struct http_span item)
{
	const char *colon = memchr(item.p, ':', item.len);
	struct http_span name = item, value = { "", 0 };
	int i;

	if (colon) {
		name.len = colon - item.p;
		value = (struct http_span){ colon + 1, item.p + item.len - colon - 1 };
	}
	/* Same name as written, case-sensitively: Go indexes its map so. */
	for (i = 0; i < *nr; i++) {
		if (set[i].name.len == name.len && !memcmp(set[i].name.p, name.p, name.len)) {
			struct http_span t = trim(value);
			int err = strbuf_putc(&set[i].value, ',');

			return err ?: strbuf_append(&set[i].value, t.p, t.len);
		}
	}
	if (*nr == MAX_SET_HEADERS)
		return 0;
	set[*nr].name = name;
	memset(&set[*nr].value, 0, sizeof(set[*nr].value));
	(*nr)++;
	return strbuf_append(&set[i].value, value.p, value.len);
}

int echo_set_headers(const struct http_request *req, struct strbuf *headers)
{
	struct set_header set[MAX_SET_HEADERS];
	int nr = 0, err = 0;

	for (int h = 0; !err && h < req->nr_headers; h++) {
		struct http_span v = req->headers[h].value;

		if (!http_span_eq_nocase(req->headers[h].name, "X-Echo-Set-Header"))
			continue;
		while (!err) {
			const char *comma = memchr(v.p, ',', v.len);
			size_t n = comma ? (size_t)(comma - v.p) : v.len;

			err = add_item(set, &nr, trim((struct http_span){ v.p, n }));
			if (!comma)
				break;
			v.p += n + 1;
			v.len -= n + 1;
		}
	}
	for (int i = 0; i < nr; i++) {
		/* Go trims surrounding whitespace of every value it writes. */
		struct http_span value = trim((struct http_span){
			strbuf_peek(&set[i].value), strbuf_avail(&set[i].value) });

		if (!err && valid_name(set[i].name) && !reserved_name(set[i].name)) {
			err = strbuf_append(headers, set[i].name.p, set[i].name.len);
			err = err ?: strbuf_puts(headers, ": ");
			err = err ?: strbuf_append(headers, value.p, value.len);
			err = err ?: strbuf_puts(headers, "\r\n");
		}
		strbuf_free(&set[i].value);
	}
	return err;
}
