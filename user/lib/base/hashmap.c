// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* splitmix64's finalizer */
static uint64_t mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = FNV_OFFSET ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	/* Final avalanche so low bits are usable as an index. */
	return mix64(h);
}

uint64_t hash_large(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t lane[4] = { FNV_OFFSET ^ seed, FNV_PRIME ^ seed, ~seed, seed + len };
	size_t i = 0;

	for (; i + 32 <= len; i += 32)
		for (int k = 0; k < 4; k++) {
			uint64_t w;

			memcpy(&w, p + i + 8 * k, 8);
			lane[k] = (lane[k] ^ w) * 0x9e3779b97f4a7c15ULL;
			lane[k] ^= lane[k] >> 29;
		}
	lane[0] = hash_bytes(p + i, len - i, lane[0]);
	return mix64(lane[0] ^ mix64(lane[1]) ^ mix64(lane[2] + 1) ^ mix64(lane[3] + 2));
}

uint64_t hash_str(const char *s)
{
	return hash_bytes(s, strlen(s), 0);
}

static struct strmap_slot *find_slot(const struct strmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];

		if (!s->key || (s->hash == h && !strcmp(s->key, key)))
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s;

	if (!m->cap)
		return NULL;
	s = find_slot(m, key, hash_str(key));
	return s->key ? s->value : NULL;
}

static int grow(struct strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct strmap_slot *old = m->slots, *slots;
	size_t old_cap = m->cap;

	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	m->slots = slots;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key)
			*find_slot(m, old[i].key, old[i].hash) = old[i];
	free(old);
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	struct strmap_slot *s;
	uint64_t h = hash_str(key);
	int ret;

	if ((m->nr + 1) * 10 > m->cap * 7) {
		ret = grow(m);
		if (ret)
			return ret;
	}
	s = find_slot(m, key, h);
	if (s->key) {
		if (old)
			*old = s->value;
		return -EEXIST;
	}
	s->key = strdup(key);
	if (!s->key)
		return -ENOMEM;
	s->hash = h;
	s->value = value;
	m->nr++;
	return 0;
}

void *strmap_set(struct strmap *m, const char *key, void *value)
{
	struct strmap_slot *s;
	void *old;

	if (!m->cap)
		return NULL;
	s = find_slot(m, key, hash_str(key));
	if (!s->key)
		return NULL;
	old = s->value;
	s->value = value;
	return old;
}

void *strmap_del(struct strmap *m, const char *key)
{
	size_t mask = m->cap - 1, i, j;
	struct strmap_slot *s;
	void *value;

	if (!m->cap)
		return NULL;
	s = find_slot(m, key, hash_str(key));
	if (!s->key)
		return NULL;
	value = s->value;
	free(s->key);
	i = (size_t)(s - m->slots);
	/*
	 * Backward shift: move every later slot of the run whose home is not
	 * between the hole and it into the hole, so no lookup stops early.
	 */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i] = (struct strmap_slot){ 0 };
	m->nr--;
	return value;
}

const char *strmap_intern(struct strmap *m, const char *s)
{
	struct strmap_slot *slot;

	if (m->cap) {
		slot = find_slot(m, s, hash_str(s));
		if (slot->key)
			return slot->key;
	}
	if (strmap_put(m, s, NULL, NULL))
		return NULL;
	return find_slot(m, s, hash_str(s))->key;
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
