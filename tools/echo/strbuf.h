/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a read offset: producers append at the end,
 * consumers take bytes from the front. Used for socket input and output
 * queues and for building responses.
 */
#ifndef ECHO_STRBUF_H
#define ECHO_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *data;
	size_t start;	/* first unconsumed byte */
	size_t len;	/* end of valid data (absolute, >= start) */
	size_t cap;
};

#define STRBUF_INIT { 0 }

static inline const char *strbuf_peek(const struct strbuf *sb)
{
	return sb->data ? sb->data + sb->start : "";
}

static inline size_t strbuf_avail(const struct strbuf *sb)
{
	return sb->len - sb->start;
}

void strbuf_free(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
/* Make room for @extra more bytes at the end; -ENOMEM on failure. */
int strbuf_reserve(struct strbuf *sb, size_t extra);
int strbuf_append(struct strbuf *sb, const void *buf, size_t len);
int strbuf_puts(struct strbuf *sb, const char *s);
int strbuf_putc(struct strbuf *sb, char c);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drop @n bytes from the front. */
void strbuf_consume(struct strbuf *sb, size_t n);
/* Keep the unconsumed bytes NUL-terminated (not counted in the length). */
int strbuf_terminate(struct strbuf *sb);
void strbuf_swap(struct strbuf *a, struct strbuf *b);

#endif
