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

int sort_u64(uint64_t *a, size_t n)
{
	uint64_t *tmp, *src = a, *dst, or_all = 0, and_all = ~0ull;
	size_t *count;

	/* Small sets: not worth the histogram. */
	if (n < 1024) {
		qsort(a, n, sizeof(*a), u64_cmp);
		return 0;
	}
	tmp = malloc(n * sizeof(*tmp));
	count = malloc(RADIX * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	dst = tmp;
	for (size_t i = 0; i < n; i++) {
		or_all |= a[i];
		and_all &= a[i];
	}
	for (unsigned int shift = 0; shift < 64; shift += RADIX_BITS) {
		size_t sum = 0;
		uint64_t *t;

		/* A digit every item shares orders nothing: skip its pass. */
		if (!(((or_all ^ and_all) >> shift) & (RADIX - 1)))
			continue;
		memset(count, 0, RADIX * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(src[i] >> shift) & (RADIX - 1)]++;
		for (size_t d = 0; d < RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & (RADIX - 1)]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	free(count);
	return 0;
}

static uint64_t rec_key(const char *rec, size_t key_off)
{
	uint64_t k;

	memcpy(&k, rec + key_off, sizeof(k));
	return k;
}

int sort_records_u64(void *base, size_t n, size_t size, size_t key_off)
{
	char *src = base, *dst, *tmp;
	uint64_t or_all = 0, and_all = ~0ull;
	size_t *count;

	if (n < 2)
		return 0;
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
