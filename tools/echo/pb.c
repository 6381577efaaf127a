// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "pb.h"

static int put_varint(struct strbuf *sb, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	do {
		b[n++] = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
	} while (v);
	return strbuf_append(sb, b, n);
}

int pb_put_bytes(struct strbuf *sb, unsigned int field, const void *p, size_t len)
{
	return put_varint(sb, (uint64_t)field << 3 | 2) ?: put_varint(sb, len) ?:
	       strbuf_append(sb, p, len);
}

int pb_put_str(struct strbuf *sb, unsigned int field, const char *s)
{
	/* proto3: an empty string is the default and not written. */
	return *s ? pb_put_bytes(sb, field, s, strlen(s)) : 0;
}

static int get_varint(struct pb_reader *r, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p == r->end)
			return -1;
		*v |= (uint64_t)(*r->p & 0x7f) << shift;
		if (!(*r->p++ & 0x80))
			return 0;
	}
	return -1;
}

int pb_next(struct pb_reader *r, unsigned int *field, const uint8_t **val, size_t *len)
{
	uint64_t key, v;

	if (r->p == r->end)
		return 0;
	if (get_varint(r, &key) || !(key >> 3) || key >> 32)
		return -1;
	*field = key >> 3;
	*val = NULL;
	*len = 0;
	switch (key & 7) {
	case 0:
		return get_varint(r, &v) ? -1 : 1;
	case 1:
		if (r->end - r->p < 8)
			return -1;
		r->p += 8;
		return 1;
	case 5:
		if (r->end - r->p < 4)
			return -1;
		r->p += 4;
		return 1;
	case 2:
		if (get_varint(r, &v) || v > (uint64_t)(r->end - r->p))
			return -1;
		*val = r->p;
		*len = v;
		r->p += v;
		return 1;
	default:
		return -1;
	}
}

int grpc_frame_put(struct strbuf *sb, const void *msg, size_t len)
{
	uint8_t h[GRPC_FRAME_HDR] = { 0, len >> 24, len >> 16, len >> 8, len };

	return strbuf_append(sb, h, sizeof(h)) ?: strbuf_append(sb, msg, len);
}

int grpc_frame_get(const uint8_t *buf, size_t n, const uint8_t **msg, size_t *msg_len,
		   size_t *frame_len)
{
	size_t len;

	if (n < GRPC_FRAME_HDR)
		return 0;
	if (buf[0])
		return -1;
	len = (size_t)buf[1] << 24 | buf[2] << 16 | buf[3] << 8 | buf[4];
	if (n - GRPC_FRAME_HDR < len)
		return 0;
	*msg = buf + GRPC_FRAME_HDR;
	*msg_len = len;
	*frame_len = GRPC_FRAME_HDR + len;
	return 1;
}
