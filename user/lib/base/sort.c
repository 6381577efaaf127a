// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sort.h"

#define RADIX_BITS 16
#define RADIX (1u << RADIX_BITS)

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline uint64_t rec_key(const char *rec, size_t key_off)
{
	uint64_t k;

	memcpy(&k, rec + key_off, sizeof(k));
	return k;
}

/*
 * The one LSD radix sort (stable) of n records of size bytes by the u64 at
 * key_off. Always inlined: each caller gets a copy with its own constants,
 * so sort_u64's (size 8, key at 0) moves plain u64s, as a loop written for
 * them would, and only sort_records_u64 pays for a variable size.
 */
static inline __attribute__((always_inline)) int radix_sort(char *base, size_t n, size_t size,
							    size_t key_off)
{
	char *src = base, *dst, *tmp;
	uint64_t or_all = 0, and_all = ~0ull;
	size_t *count;

	tmp = malloc(n * size);
	count = malloc(RADIX * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	dst = tmp;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = rec_key(src + i * size, key_off);

		or_all |= k;
		and_all &= k;
	}
	for (unsigned int shift = 0; shift < 64; shift += RADIX_BITS) {
		size_t sum = 0;
		char *t;

		/* A digit every item shares orders nothing: skip its pass. */
		if (!(((or_all ^ and_all) >> shift) & (RADIX - 1)))
			continue;
		memset(count, 0, RADIX * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(rec_key(src + i * size, key_off) >> shift) & (RADIX - 1)]++;
		for (size_t d = 0; d < RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t d = (rec_key(src + i * size, key_off) >> shift) & (RADIX - 1);

			memcpy(dst + count[d]++ * size, src + i * size, size);
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		memcpy(base, src, n * size);
	free(tmp);
	free(count);
	return 0;
}

int sort_u64(uint64_t *a, size_t n)
{
	/* Small sets: not worth the histogram. */
	if (n < 1024) {
		qsort(a, n, sizeof(*a), u64_cmp);
		return 0;
	}
	return radix_sort((char *)a, n, sizeof(*a), 0);
}

int sort_records_u64(void *base, size_t n, size_t size, size_t key_off)
{
	return n < 2 ? 0 : radix_sort(base, n, size, key_off);
}
