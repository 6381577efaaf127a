/* SPDX-License-Identifier: Apache-2.0 */
/* Incremental decoder of the HTTP/1.1 chunked transfer coding. */
#ifndef ECHO_CHUNKED_H
#define ECHO_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define CHUNKED_MAX_LINE	4096		/* size line or trailer line */
#define CHUNKED_MAX_TRAILERS	(64 * 1024)

enum chunked_state {
	CHUNK_SIZE,		/* expecting "<hex>[;ext]\r\n" */
	CHUNK_DATA,		/* inside chunk data */
	CHUNK_DATA_END,		/* expecting the "\r\n" after the data */
	CHUNK_TRAILER,		/* trailer lines up to an empty line */
	CHUNK_DONE,
};

struct chunked_decoder {
	enum chunked_state state;
	uint64_t left;		/* data bytes left in this chunk */
	size_t trailer_bytes;
};

static inline void chunked_init(struct chunked_decoder *d)
{
	d->state = CHUNK_SIZE;
	d->left = 0;
	d->trailer_bytes = 0;
}

/*
 * Decode from @buf; *@consumed tells how many bytes were used (a partial
 * line is left in place for the next call). Chunk data is appended to @body,
 * or dropped when @body is NULL; trailers are dropped. Returns 1 when the
 * body is complete, 0 when more input is needed, -EPROTO for a malformed
 * body, -ENOMEM.
 */
int chunked_feed(struct chunked_decoder *d, const char *buf, size_t len,
		 size_t *consumed, struct strbuf *body);

#endif
