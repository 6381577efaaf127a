/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small open-addressing hash table from strings to pointers, used by every
 * index of the model and the translator. The table copies each key (the
 * caller's string may go away) and never owns the values.
 *
 * Linear probing on a power-of-two table kept at most 70% full; keys are
 * hashed with 64-bit FNV-1a. Removal shifts the probe run back (no
 * tombstones), so a table that lives through many changes stays as fast.
 */
#ifndef GAMMAD_HASHMAP_H
#define GAMMAD_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	char *key;		/* NULL for an empty slot */
	uint64_t hash;
	void *value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap;		/* 0 or a power of two */
	size_t nr;
};

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);
uint64_t hash_str(const char *s);
/*
 * The same kind of hash for large buffers (whole files): 8 bytes at a time
 * on four independent lanes, about 10x hash_bytes()'s speed. Not the same
 * values as hash_bytes().
 */
uint64_t hash_large(const void *data, size_t len, uint64_t seed);

/* Value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/*
 * Insert key -> value. When key is already present nothing changes and
 * -EEXIST is returned with *old (if old is not NULL) set to the stored value.
 */
int strmap_put(struct strmap *m, const char *key, void *value, void **old);
/* Replace the value of a present key; returns the old one (NULL when absent: nothing done). */
void *strmap_set(struct strmap *m, const char *key, void *value);
/*
 * Remove key; returns its value (NULL when absent). Slots move: iterators
 * and pointers to slots are invalid afterwards.
 */
void *strmap_del(struct strmap *m, const char *key);
/* The table's own copy of s, inserted (with a NULL value) if absent; NULL on ENOMEM. */
const char *strmap_intern(struct strmap *m, const char *s);
void strmap_free(struct strmap *m);

/* Iterate the occupied slots (in table order, not insertion order). */
#define strmap_for_each(m, s)						\
	for ((s) = (m)->slots; (s) && (s) < (m)->slots + (m)->cap; (s)++) \
		if ((s)->key)

#endif
