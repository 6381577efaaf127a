// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "chunked.h"

/* Up to 15 hex digits: large enough for any body, no overflow to check. */
#define MAX_SIZE_DIGITS 15

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

/* "<hex>[ ][;extension]": the extension is allowed and ignored. */
static int parse_size_line(const char *p, size_t len, uint64_t *size)
{
	size_t i = 0;
	uint64_t v = 0;

	while (i < len && hex_value(p[i]) >= 0) {
		if (i == MAX_SIZE_DIGITS)
			return -EPROTO;
		v = (v << 4) | hex_value(p[i]);
		i++;
	}
	if (!i)
		return -EPROTO;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < len && p[i] != ';')
		return -EPROTO;
	*size = v;
	return 0;
}

/*
 * Find the next line in @buf: its length without the line ending in *@line_len,
 * the bytes it occupies in *@used. 0 if incomplete, -EPROTO if too long.
 */
static int take_line(const char *buf, size_t len, size_t *line_len, size_t *used)
{
	const char *nl = memchr(buf, '\n', len < CHUNKED_MAX_LINE ? len : CHUNKED_MAX_LINE);
	size_t n;

	if (!nl)
		return len >= CHUNKED_MAX_LINE ? -EPROTO : 0;
	n = nl - buf;
	*used = n + 1;
	if (n && buf[n - 1] == '\r')
		n--;
	*line_len = n;
	return 1;
}

int chunked_feed(struct chunked_decoder *d, const char *buf, size_t len,
		 size_t *consumed, struct strbuf *body)
{
	size_t pos = 0, line_len, used;
	int ret = 0;

	while (d->state != CHUNK_DONE) {
		if (d->state == CHUNK_DATA) {
			size_t n = len - pos;

			if (!n)
				break;
			if (n > d->left)
				n = d->left;
			if (body && (ret = strbuf_append(body, buf + pos, n)) < 0)
				break;
			pos += n;
			d->left -= n;
			if (!d->left)
				d->state = CHUNK_DATA_END;
			continue;
		}
		ret = take_line(buf + pos, len - pos, &line_len, &used);
		if (ret <= 0)
			break;
		switch (d->state) {
		case CHUNK_SIZE:
			ret = parse_size_line(buf + pos, line_len, &d->left);
			if (ret < 0)
				break;
			d->state = d->left ? CHUNK_DATA : CHUNK_TRAILER;
			break;
		case CHUNK_DATA_END:
			if (line_len)
				ret = -EPROTO;	/* data longer than its size */
			d->state = CHUNK_SIZE;
			break;
		case CHUNK_TRAILER:
			d->trailer_bytes += used;
			if (d->trailer_bytes > CHUNKED_MAX_TRAILERS)
				ret = -EPROTO;
			else if (!line_len)
				d->state = CHUNK_DONE;
			break;
		default:
			break;
		}
		if (ret < 0)
			break;
		ret = 0;
		pos += used;
	}
	*consumed = pos;
	if (ret < 0)
		return ret;
	return d->state == CHUNK_DONE;
}
