// SPDX-License-Identifier: Apache-2.0
/*
 * The in-memory mirror of the route maps (datapath.h): one open-addressing
 * table per map, keyed by the map's own key bytes, filled from the kernel
 * by dp_mirror_load() and kept by every write and delete this library makes
 * (map_update/map_delete in datapath.c, dp_map_delete). The programs never
 * write these maps, so between loads only someone else (bpftool, an older
 * agent) can make the kernel differ: dp_mirror_audit() counts that drift
 * and reloads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "gammad/maps.h"
#include "map_dump.h"
#include "mirror_int.h"

/* The maps an apply reads whole. */
static const char *const mirrored[] = {
	GAMMAD_MAP_OBJECTS, GAMMAD_MAP_FRONTEND, GAMMAD_MAP_CONSUMER, GAMMAD_MAP_SELECTOR,
	GAMMAD_MAP_ALIAS, GAMMAD_MAP_BACKEND, GAMMAD_MAP_ENDPOINT,
};

#define NR_MIRRORED (sizeof(mirrored) / sizeof(mirrored[0]))

struct mtab {
	const char *name;
	int fd;
	size_t key_size, val_size, rec;	/* rec: 1 used byte + key + value */
	uint8_t *slots;
	size_t cap, nr;			/* cap: 0 or a power of two */
};

struct dp_mirror {
	struct mtab t[NR_MIRRORED];
};

static uint8_t *slot_at(const struct mtab *t, size_t i)
{
	return t->slots + i * t->rec;
}

static size_t home(const struct mtab *t, const void *key)
{
	return (size_t)hash_bytes(key, t->key_size, 0) & (t->cap - 1);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct mtab *t, const void *key)
{
	size_t i = home(t, key);

	for (;; i = (i + 1) & (t->cap - 1)) {
		const uint8_t *s = slot_at(t, i);

		if (!s[0] || !memcmp(s + 1, key, t->key_size))
			return i;
	}
}

static int grow(struct mtab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024, old_cap = t->cap;
	uint8_t *old = t->slots;

	t->slots = calloc(cap, t->rec);
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		const uint8_t *s = old + i * t->rec;

		if (s[0])
			memcpy(slot_at(t, find(t, s + 1)), s, t->rec);
	}
	free(old);
	return 0;
}

static int put(struct mtab *t, const void *key, const void *val)
{
	uint8_t *s;

	if ((t->nr + 1) * 10 > t->cap * 7 && grow(t))
		return -ENOMEM;
	s = slot_at(t, find(t, key));
	if (!s[0]) {
		s[0] = 1;
		memcpy(s + 1, key, t->key_size);
		t->nr++;
	}
	memcpy(s + 1 + t->key_size, val, t->val_size);
	return 0;
}

/* Backward-shift deletion: no tombstones. */
static void del(struct mtab *t, const void *key)
{
	size_t mask, i, j;

	if (!t->cap)
		return;
	mask = t->cap - 1;
	i = find(t, key);
	if (!slot_at(t, i)[0])
		return;
	for (j = (i + 1) & mask; slot_at(t, j)[0]; j = (j + 1) & mask) {
		size_t h = home(t, slot_at(t, j) + 1);

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			memcpy(slot_at(t, i), slot_at(t, j), t->rec);
			i = j;
		}
	}
	memset(slot_at(t, i), 0, t->rec);
	t->nr--;
}

static struct mtab *by_fd(struct dp_mirror *m, int fd)
{
	for (size_t i = 0; m && i < NR_MIRRORED; i++)
		if (m->t[i].fd == fd)
			return &m->t[i];
	return NULL;
}

static struct mtab *by_name(struct dp_mirror *m, const char *name)
{
	for (size_t i = 0; m && i < NR_MIRRORED; i++)
		if (!strcmp(m->t[i].name, name))
			return &m->t[i];
	return NULL;
}

bool mirror_has(struct dp_mirror *m, const char *name)
{
	return by_name(m, name) != NULL;
}

int mirror_put(struct dp_mirror *m, int fd, const void *key, const void *val)
{
	struct mtab *t = by_fd(m, fd);

	return t ? put(t, key, val) : 0;
}

void mirror_delete(struct dp_mirror *m, int fd, const void *key)
{
	struct mtab *t = by_fd(m, fd);

	if (t)
		del(t, key);
}

static void tab_free(struct mtab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->nr = 0;
}

static int tab_load(struct mtab *t, int fd)
{
	struct map_dump d;
	int err;

	tab_free(t);
	err = map_dump_read(fd, &d);
	if (err)
		return err;
	t->key_size = d.key_size;
	t->val_size = d.val_size;
	t->rec = 1 + d.key_size + d.val_size;
	while (!err && t->cap * 7 < (d.nr + 1) * 10)
		err = grow(t);
	for (size_t i = 0; !err && i < d.nr; i++)
		err = put(t, map_dump_key(&d, i), map_dump_val(&d, i));
	map_dump_free(&d);
	return err;
}

size_t mirror_nr_maps(void)
{
	return NR_MIRRORED;
}

const char *mirror_map_name(size_t i)
{
	return mirrored[i];
}

int mirror_load(const int *fds, struct dp_mirror **out)
{
	struct dp_mirror *m = calloc(1, sizeof(*m));
	int err = m ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < NR_MIRRORED; i++) {
		m->t[i].name = mirrored[i];
		m->t[i].fd = fds[i];
		err = fds[i] < 0 ? fds[i] : tab_load(&m->t[i], fds[i]);
	}
	if (err) {
		mirror_free(m);
		return err;
	}
	*out = m;
	return 0;
}

void mirror_free(struct dp_mirror *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < NR_MIRRORED; i++)
		tab_free(&m->t[i]);
	free(m);
}

int mirror_dump(struct dp_mirror *m, const char *name, struct map_dump *d)
{
	struct mtab *t = by_name(m, name);
	size_t n = 0;

	memset(d, 0, sizeof(*d));
	if (!t)
		return -ENOENT;
	d->key_size = t->key_size;
	d->val_size = t->val_size;
	d->keys = malloc(t->nr * t->key_size + 1);
	d->vals = malloc(t->nr * t->val_size + 1);
	if (!d->keys || !d->vals) {
		map_dump_free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		const uint8_t *s = slot_at(t, i);

		if (!s[0])
			continue;
		memcpy(map_dump_key(d, n), s + 1, t->key_size);
		memcpy(map_dump_val(d, n), s + 1 + t->key_size, t->val_size);
		n++;
	}
	d->nr = n;
	return 0;
}

int mirror_lookup(struct dp_mirror *m, const char *name, const void *key, void *val)
{
	struct mtab *t = by_name(m, name);
	const uint8_t *s;

	if (!t || !t->cap)
		return -ENOENT;
	s = slot_at(t, find(t, key));
	if (!s[0])
		return -ENOENT;
	memcpy(val, s + 1 + t->key_size, t->val_size);
	return 0;
}

/* Keys only one side has, plus keys both have with different values. */
static size_t tab_drift(const struct mtab *t, const struct map_dump *d)
{
	size_t drift = 0, both = 0;

	for (size_t i = 0; i < d->nr; i++) {
		const uint8_t *s = t->cap ? slot_at(t, find(t, map_dump_key(d, i))) : NULL;

		if (!s || !s[0]) {
			drift++;
			continue;
		}
		both++;
		if (memcmp(s + 1 + t->key_size, map_dump_val(d, i), t->val_size))
			drift++;
	}
	return drift + (t->nr - both);
}

int mirror_drift(struct dp_mirror *m, size_t *drift)
{
	int err = 0;

	*drift = 0;
	for (size_t i = 0; !err && i < NR_MIRRORED; i++) {
		struct mtab *t = &m->t[i];
		struct map_dump d;
		size_t n;

		err = map_dump_read(t->fd, &d);
		if (err)
			break;
		n = tab_drift(t, &d);
		if (n) {
			pr_warn("datapath: %zu entries of %s differ from what this agent wrote "
				"(someone else changed the map); reconciling", n, t->name);
			*drift += n;
		}
		map_dump_free(&d);
	}
	return err;
}
