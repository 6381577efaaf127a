/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sorting arrays of u64 (ids packed with a value, as the apply's id sets
 * are): an LSD radix sort, several times faster than qsort with a compare
 * callback on the 100,000-entry sets of a 10k-Service apply.
 */
#ifndef GAMMAD_SORT_H
#define GAMMAD_SORT_H

#include <stddef.h>
#include <stdint.h>

/* Ascending; 0 or -ENOMEM (then a unchanged). */
int sort_u64(uint64_t *a, size_t n);
/*
 * Records of size bytes by the u64 at offset key_off, ascending and stable
 * (records with equal keys keep their order, so sorting by a second key
 * first, then by the first, orders by both). 0 or -ENOMEM (base unchanged).
 */
int sort_records_u64(void *base, size_t n, size_t size, size_t key_off);

#endif
