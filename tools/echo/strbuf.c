// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof(*sb));
}

void strbuf_reset(struct strbuf *sb)
{
	sb->start = sb->len = 0;
}

int strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t used = sb->len - sb->start;
	size_t need, cap;
	char *data;

	if (sb->cap - sb->len >= extra + 1)
		return 0;
	/* Reclaim consumed space before growing, so a busy queue stays small. */
	if (sb->start) {
		memmove(sb->data, sb->data + sb->start, used);
		sb->start = 0;
		sb->len = used;
		if (sb->cap - sb->len >= extra + 1)
			return 0;
	}
	if (extra > ((size_t)-1 >> 2) - used)
		return -ENOMEM;
	need = used + extra + 1;	/* +1 keeps room for a terminator */
	cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	data = realloc(sb->data, cap);
	if (!data)
		return -ENOMEM;
	sb->data = data;
	sb->cap = cap;
	return 0;
}

int strbuf_append(struct strbuf *sb, const void *buf, size_t len)
{
	int err = strbuf_reserve(sb, len);

	if (err)
		return err;
	memcpy(sb->data + sb->len, buf, len);
	sb->len += len;
	return 0;
}

int strbuf_puts(struct strbuf *sb, const char *s)
{
	return strbuf_append(sb, s, strlen(s));
}

int strbuf_putc(struct strbuf *sb, char c)
{
	return strbuf_append(sb, &c, 1);
}

int strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	err = strbuf_reserve(sb, n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, n + 1, fmt, ap);
	va_end(ap);
	sb->len += n;
	return 0;
}

void strbuf_consume(struct strbuf *sb, size_t n)
{
	if (n >= sb->len - sb->start) {
		sb->start = sb->len = 0;
		return;
	}
	sb->start += n;
}

int strbuf_terminate(struct strbuf *sb)
{
	int err = strbuf_reserve(sb, 0);

	if (err)
		return err;
	sb->data[sb->len] = '\0';
	return 0;
}

void strbuf_swap(struct strbuf *a, struct strbuf *b)
{
	struct strbuf tmp = *a;

	*a = *b;
	*b = tmp;
}
