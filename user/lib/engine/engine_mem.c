// SPDX-License-Identifier: Apache-2.0
/*
 * Small blocks for one engine loop: what nghttp2 allocates per stream and
 * frame (stream objects, header copies, outbound items) and the engine's
 * own per-stream state come and go thousands of times a second, in bursts
 * of up to a connection's 128 streams. glibc's per-thread cache holds 7
 * blocks per size, so a burst falls through to its arena (about 15% of the
 * loop's CPU per gRPC call when measured). Here each loop keeps freed
 * blocks in power-of-two classes from 32 B to 4 KiB, up to EM_CLASS_BYTES
 * per class; anything larger goes to malloc. No lock: a loop's blocks are
 * only allocated and freed by that loop (or by engine_stop after it ended).
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define EM_MIN_SHIFT	5		/* 32 B */
#define EM_CLASSES	8		/* .. 4 KiB */
#define EM_CLASS_BYTES	(512 * 1024)	/* kept per class at most */
#define EM_HDR		16		/* before every block: its class; keeps 16 B alignment */
#define EM_LARGE	0xff

/* Under AddressSanitizer (make fuzz) nothing is kept: a use after free must show. */
#if defined(__SANITIZE_ADDRESS__)
#define EM_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EM_NO_CACHE 1
#endif
#endif
#ifdef EM_NO_CACHE
#undef EM_CLASS_BYTES
#define EM_CLASS_BYTES 0
#endif

struct em_free {
	struct em_free *next;
};

struct eng_mem {
	struct em_free *free[EM_CLASSES];
	size_t nr[EM_CLASSES];
};

struct eng_mem *eng_mem_new(void)
{
	return calloc(1, sizeof(struct eng_mem));
}

void eng_mem_free(struct eng_mem *m)
{
	if (!m)
		return;
	for (int c = 0; c < EM_CLASSES; c++)
		while (m->free[c]) {
			struct em_free *f = m->free[c];

			m->free[c] = f->next;
			free((char *)f - EM_HDR);
		}
	free(m);
}

/* The smallest class that holds n bytes, -1: none (large). */
static int em_class(size_t n)
{
	int c;

	if (n <= (size_t)1 << EM_MIN_SHIFT)
		return 0;
	c = (int)(sizeof(unsigned long long) * 8) - __builtin_clzll(n - 1) - EM_MIN_SHIFT;
	return c < EM_CLASSES ? c : -1;
}

void *eng_mem_alloc(struct eng_mem *m, size_t n)
{
	int c = em_class(n);
	unsigned char *p;

	if (c >= 0 && m->free[c]) {
		struct em_free *f = m->free[c];

		m->free[c] = f->next;
		m->nr[c]--;
		return f;
	}
	p = malloc(EM_HDR + (c >= 0 ? (size_t)1 << (c + EM_MIN_SHIFT) : n));
	if (!p)
		return NULL;
	p[0] = c >= 0 ? c : EM_LARGE;
	return p + EM_HDR;
}

void *eng_mem_zalloc(struct eng_mem *m, size_t n)
{
	void *p = eng_mem_alloc(m, n);

	if (p)
		memset(p, 0, n);
	return p;
}

void eng_mem_release(struct eng_mem *m, void *ptr)
{
	unsigned char *p = ptr;
	int c;

	if (!p)
		return;
	c = p[-EM_HDR];
	if (c == EM_LARGE || m->nr[c] >= (size_t)EM_CLASS_BYTES >> (c + EM_MIN_SHIFT)) {
		free(p - EM_HDR);
		return;
	}
	((struct em_free *)p)->next = m->free[c];
	m->free[c] = (struct em_free *)p;
	m->nr[c]++;
}

void *eng_mem_realloc(struct eng_mem *m, void *ptr, size_t n)
{
	unsigned char *p = ptr, *q;
	size_t have;
	int c;

	if (!p)
		return eng_mem_alloc(m, n);
	c = p[-EM_HDR];
	if (c == EM_LARGE) {
		/* its size is malloc's to know: large stays large */
		if (em_class(n) >= 0)
			n = ((size_t)1 << (EM_CLASSES - 1 + EM_MIN_SHIFT)) + 1;
		q = realloc(p - EM_HDR, EM_HDR + n);
		return q ? q + EM_HDR : NULL;
	}
	have = (size_t)1 << (c + EM_MIN_SHIFT);
	if (n <= have)
		return p;
	q = eng_mem_alloc(m, n);
	if (!q)
		return NULL;
	memcpy(q, p, have);
	eng_mem_release(m, p);
	return q;
}
