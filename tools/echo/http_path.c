// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "http_path.h"

struct http_span http_target_path(struct http_span t)
{
	const char *q = memchr(t.p, '?', t.len);
	struct http_span path = { t.p, q ? (size_t)(q - t.p) : t.len };

	if (path.len && path.p[0] != '/') {
		/* absolute-form: skip "scheme://authority" */
		const char *sep = memmem(path.p, path.len, "://", 3);
		const char *slash = sep ? memchr(sep + 3, '/', path.p + path.len - sep - 3) : NULL;

		if (!slash)
			return (struct http_span){ "/", 1 };
		path.len -= slash - path.p;
		path.p = slash;
	}
	return path;
}

struct http_span http_target_query(struct http_span t)
{
	const char *q = memchr(t.p, '?', t.len);

	if (!q)
		return (struct http_span){ "", 0 };
	return (struct http_span){ q + 1, t.p + t.len - q - 1 };
}

int http_route_path(struct http_span path, struct strbuf *out)
{
	int err = 0;

	for (size_t i = 0; !err && i < path.len; i++) {
		err = strbuf_putc(out, path.p[i]);
		if (path.p[i] == '/' && i + 1 < path.len && path.p[i + 1] == '/')
			i++;
	}
	return err;
}

int http_clean_path(const char *p, size_t len, struct strbuf *out)
{
	size_t root, i = 0;
	int err;

	err = strbuf_putc(out, '/');
	root = out->len;	/* never back up before the leading "/" */
	while (!err && i < len) {
		size_t seg_start, seg_len;

		while (i < len && p[i] == '/')
			i++;
		seg_start = i;
		while (i < len && p[i] != '/')
			i++;
		seg_len = i - seg_start;
		if (!seg_len || (seg_len == 1 && p[seg_start] == '.'))
			continue;
		if (seg_len == 2 && p[seg_start] == '.' && p[seg_start + 1] == '.') {
			while (out->len > root && out->data[out->len - 1] != '/')
				out->len--;
			if (out->len > root)
				out->len--;	/* the "/" before the dropped segment */
			continue;
		}
		if (out->len > root)
			err = strbuf_putc(out, '/');
		err = err ?: strbuf_append(out, p + seg_start, seg_len);
	}
	/* Keep a trailing slash, as ServeMux does, unless the result is "/". */
	if (!err && len && p[len - 1] == '/' && out->len > root)
		err = strbuf_putc(out, '/');
	return err;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Go's QueryUnescape; -EINVAL on a bad escape. */
static int query_unescape(const char *p, size_t len, struct strbuf *out)
{
	int err = 0;

	for (size_t i = 0; !err && i < len; i++) {
		char c = p[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			if (hex_value(p[i + 1]) < 0 || hex_value(p[i + 2]) < 0)
				return -EINVAL;
			c = hex_value(p[i + 1]) << 4 | hex_value(p[i + 2]);
			i += 2;
		}
		err = strbuf_putc(out, c);
	}
	return err;
}

int http_query_get(struct http_span q, const char *key, struct strbuf *value)
{
	struct strbuf name = STRBUF_INIT;
	int ret = 0;

	while (q.len && !ret) {
		const char *amp = memchr(q.p, '&', q.len);
		size_t n = amp ? (size_t)(amp - q.p) : q.len;
		const char *eq = memchr(q.p, '=', n);
		size_t key_len = eq ? (size_t)(eq - q.p) : n;

		if (n && !memchr(q.p, ';', n)) {
			strbuf_reset(&name);
			strbuf_reset(value);
			if (!query_unescape(q.p, key_len, &name) &&
			    strbuf_avail(&name) == strlen(key) &&
			    !memcmp(strbuf_peek(&name), key, strlen(key))) {
				ret = eq ? query_unescape(eq + 1, n - key_len - 1, value) : 0;
				if (ret == -ENOMEM)
					break;
				ret = ret ? 0 : 1;	/* a bad value escape skips the pair */
			}
		}
		if (!amp)
			break;
		q.p += n + 1;
		q.len -= n + 1;
	}
	if (ret != 1)
		strbuf_reset(value);
	strbuf_free(&name);
	return ret;
}
