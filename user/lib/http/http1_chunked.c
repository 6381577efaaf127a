// SPDX-License-Identifier: Apache-2.0
/*
 * The chunked transfer coding (RFC 9112 7.1), scanned as the bytes stream
 * through: chunk-size [ chunk-ext ] CRLF, data, CRLF, ..., 0 CRLF, trailer
 * fields, CRLF. Every line ends in CRLF exactly, as in a head.
 */
#include "http1.h"
#include "http1_int.h"

enum {
	CH_SIZE,		/* hex digits of a chunk size */
	CH_EXT,			/* chunk extensions up to the CR */
	CH_SIZE_LF,		/* the LF of the size line */
	CH_DATA,		/* chunk data */
	CH_DATA_CR,		/* the CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER_START,	/* a trailer field, or the CR of the final CRLF */
	CH_TRAILER,		/* inside a trailer field line */
	CH_TRAILER_LF,
	CH_END_LF,		/* the LF of the final CRLF */
};

static int hex_value(char c)
{
	if (h1_is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One byte of everything but chunk data; 0 or -H1_E_CHUNK. */
static int step(struct h1_chunked *c, char ch)
{
	int v;

	if (++c->line_len > H1_CHUNK_LINE_MAX)
		return -H1_E_CHUNK;
	switch (c->state) {
	case CH_SIZE:
		v = hex_value(ch);
		if (v >= 0) {
			/* 15 hex digits are 2^60: more is no body anyone means */
			if (c->size_digits++ == 15)
				return -H1_E_CHUNK;
			c->remaining = c->remaining * 16 + (uint64_t)v;
			return 0;
		}
		if (!c->size_digits)
			return -H1_E_CHUNK;
		c->state = CH_EXT;
		/* fall through */
	case CH_EXT:
		if (ch == '\r') {
			c->state = CH_SIZE_LF;
			return 0;
		}
		/* BWS ";" ext-name [ "=" ext-val ]: visible characters, SP and HTAB */
		return h1_is_field_char(ch) && (c->line_len > 1 + c->size_digits || ch == ';' ||
						ch == ' ' || ch == '\t') ? 0 : -H1_E_CHUNK;
	case CH_SIZE_LF:
		if (ch != '\n')
			return -H1_E_CHUNK;
		c->line_len = 0;
		c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
		return 0;
	case CH_DATA_CR:
		c->state = CH_DATA_LF;
		return ch == '\r' ? 0 : -H1_E_CHUNK;
	case CH_DATA_LF:
		c->state = CH_SIZE;
		c->size_digits = 0;
		c->line_len = 0;
		return ch == '\n' ? 0 : -H1_E_CHUNK;
	case CH_TRAILER_START:
		if (ch == '\r') {
			c->state = CH_END_LF;
			return 0;
		}
		/* a trailer field: a token, ':', a value */
		if (!h1_is_tchar(ch))
			return -H1_E_CHUNK;
		c->state = CH_TRAILER;
		c->trailer_name = true;
		return 0;
	case CH_TRAILER:
		if (ch == '\r') {
			c->state = CH_TRAILER_LF;
			return c->trailer_name ? -H1_E_CHUNK : 0;
		}
		if (c->trailer_name) {
			if (ch == ':')
				c->trailer_name = false;
			return c->trailer_name && !h1_is_tchar(ch) ? -H1_E_CHUNK : 0;
		}
		return h1_is_field_char(ch) ? 0 : -H1_E_CHUNK;
	case CH_TRAILER_LF:
		if (ch != '\n')
			return -H1_E_CHUNK;
		c->trailer_bytes += c->line_len;
		if (c->trailer_bytes > H1_TRAILERS_MAX)
			return -H1_E_CHUNK;
		c->line_len = 0;
		c->state = CH_TRAILER_START;
		return 0;
	case CH_END_LF:
		if (ch != '\n')
			return -H1_E_CHUNK;
		c->done = true;
		return 0;
	}
	return -H1_E_CHUNK;
}

long h1_chunked_scan(struct h1_chunked *c, const char *in, size_t len,
		     void (*on_data)(void *ctx, const char *p, size_t n), void *ctx)
{
	size_t i = 0;

	while (i < len && !c->done) {
		if (c->state == CH_DATA) {
			size_t n = len - i < c->remaining ? len - i : (size_t)c->remaining;

			if (on_data)
				on_data(ctx, in + i, n);
			i += n;
			c->remaining -= n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			continue;
		}
		if (step(c, in[i++]))
			return -H1_E_CHUNK;
	}
	return (long)i;
}
