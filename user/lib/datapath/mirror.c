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

/*
 * Entries are dense (keys[i], vals[i], i < nr, as a dump has them) and an
 * open-addressing index of 32-bit entry numbers finds them: an empty slot
 * costs 4 bytes, not a whole record (the objects map's values are 296
 * bytes, 50,000 of them at 10k Services), and a load takes the dump's
 * arrays over instead of copying them.
 */
struct mtab {
	const char *name;
	int fd;
	size_t key_size, val_size;
	uint8_t *keys, *vals;		/* nr entries; room for room */
	size_t nr, room;
	uint32_t *idx;			/* cap slots: 0 empty, else entry number + 1 */
	size_t cap;			/* 0 or a power of two */
};

struct dp_mirror {
	struct mtab t[NR_MIRRORED];
};

static uint8_t *key_at(const struct mtab *t, size_t e)
{
	return t->keys + e * t->key_size;
}

static uint8_t *val_at(const struct mtab *t, size_t e)
{
	return t->vals + e * t->val_size;
}

static size_t home(const struct mtab *t, const void *key)
{
	return (size_t)hash_bytes(key, t->key_size, 0) & (t->cap - 1);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct mtab *t, const void *key)
{
	size_t i = home(t, key);

	for (;; i = (i + 1) & (t->cap - 1))
		if (!t->idx[i] || !memcmp(key_at(t, t->idx[i] - 1), key, t->key_size))
			return i;
}

/* A new index of cap slots over the entries (all distinct keys). */
static int reindex(struct mtab *t, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	free(t->idx);
	t->idx = idx;
	t->cap = cap;
	for (size_t e = 0; e < t->nr; e++)
		t->idx[find(t, key_at(t, e))] = (uint32_t)e + 1;
	return 0;
}

/* Index slots for n entries at a load of at most 0.7. */
static size_t cap_for(size_t n)
{
	size_t cap = 1024;

	while (cap * 7 < n * 10)
		cap *= 2;
	return cap;
}

/*
 * Past a few thousand entries by a quarter: a load sizes the arrays to the
 * dump, and doubling at the first write after it would reserve a whole
 * second mirror (30 MB for the objects map at 10k Services).
 */
static int room_for(struct mtab *t, size_t n)
{
	size_t room = !t->room ? 1024 : t->room < 4096 ? t->room * 2 : t->room + t->room / 4;
	void *p;

	if (n <= t->room)
		return 0;
	if (room < n)
		room = n;
	/* Large arrays are mmap()ed chunks: realloc remaps pages, it copies nothing. */
	p = realloc(t->keys, room * t->key_size);
	if (!p)
		return -ENOMEM;
	t->keys = p;
	p = realloc(t->vals, room * t->val_size);
	if (!p)
		return -ENOMEM;
	t->vals = p;
	t->room = room;
	return 0;
}

static int put(struct mtab *t, const void *key, const void *val)
{
	size_t i;

	if ((t->nr + 1) * 10 > t->cap * 7 && reindex(t, t->cap ? t->cap * 2 : 1024))
		return -ENOMEM;
	if (t->nr >= UINT32_MAX - 1)
		return -ENOMEM;
	i = find(t, key);
	if (!t->idx[i]) {
		if (room_for(t, t->nr + 1))
			return -ENOMEM;
		memcpy(key_at(t, t->nr), key, t->key_size);
		t->idx[i] = (uint32_t)++t->nr;
	}
	memcpy(val_at(t, t->idx[i] - 1), val, t->val_size);
	return 0;
}

/* The slot naming entry e (which is there). */
static size_t slot_of(const struct mtab *t, size_t e)
{
	size_t i = home(t, key_at(t, e));

	while (t->idx[i] != e + 1)
		i = (i + 1) & (t->cap - 1);
	return i;
}

/* The last entry moves into the hole; backward-shift deletion in the index: no tombstones. */
static void del(struct mtab *t, const void *key)
{
	size_t mask, i, j, e, last;

	if (!t->cap)
		return;
	mask = t->cap - 1;
	i = find(t, key);
	if (!t->idx[i])
		return;
	e = t->idx[i] - 1;
	last = t->nr - 1;
	if (e != last) {
		t->idx[slot_of(t, last)] = (uint32_t)e + 1;
		memcpy(key_at(t, e), key_at(t, last), t->key_size);
		memcpy(val_at(t, e), val_at(t, last), t->val_size);
	}
	t->nr--;
	for (j = (i + 1) & mask; t->idx[j]; j = (j + 1) & mask) {
		size_t h = home(t, key_at(t, t->idx[j] - 1));

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			t->idx[i] = t->idx[j];
			i = j;
		}
	}
	t->idx[i] = 0;
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
	free(t->keys);
	free(t->vals);
	free(t->idx);
	t->keys = t->vals = NULL;
	t->idx = NULL;
	t->cap = t->nr = t->room = 0;
}

/* The dump's arrays become the entries; a key read twice (the map changed meanwhile): the later value. */
static int tab_load(struct mtab *t, int fd)
{
	struct map_dump d;
	size_t n = 0;
	int err;

	tab_free(t);
	err = map_dump_read(fd, &d);
	if (err)
		return err;
	t->key_size = d.key_size;
	t->val_size = d.val_size;
	if (d.nr >= UINT32_MAX - 1) {
		map_dump_free(&d);
		return -E2BIG;
	}
	t->keys = d.keys;
	t->vals = d.vals;
	t->room = d.nr;
	t->cap = cap_for(d.nr + 1);
	t->idx = calloc(t->cap, sizeof(*t->idx));
	if (!t->idx) {
		tab_free(t);
		return -ENOMEM;
	}
	for (size_t e = 0; e < d.nr; e++) {
		size_t i = find(t, key_at(t, e));

		if (t->idx[i]) {
			memcpy(val_at(t, t->idx[i] - 1), val_at(t, e), t->val_size);
			continue;
		}
		if (n != e) {
			memcpy(key_at(t, n), key_at(t, e), t->key_size);
			memcpy(val_at(t, n), val_at(t, e), t->val_size);
		}
		t->idx[i] = (uint32_t)++n;
		t->nr = n;
	}
	return 0;
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
	if (t->nr) {
		memcpy(d->keys, t->keys, t->nr * t->key_size);
		memcpy(d->vals, t->vals, t->nr * t->val_size);
	}
	d->nr = t->nr;
	return 0;
}

int mirror_view(struct dp_mirror *m, const char *name, struct map_dump *d)
{
	struct mtab *t = by_name(m, name);

	memset(d, 0, sizeof(*d));
	if (!t)
		return -ENOENT;
	*d = (struct map_dump){ .keys = t->keys, .vals = t->vals, .nr = t->nr,
				.key_size = t->key_size, .val_size = t->val_size,
				.borrowed = true };
	return 0;
}

int mirror_lookup(struct dp_mirror *m, const char *name, const void *key, void *val)
{
	struct mtab *t = by_name(m, name);
	size_t i;

	if (!t || !t->cap)
		return -ENOENT;
	i = find(t, key);
	if (!t->idx[i])
		return -ENOENT;
	memcpy(val, val_at(t, t->idx[i] - 1), t->val_size);
	return 0;
}

/* Keys only one side has, plus keys both have with different values. */
static size_t tab_drift(const struct mtab *t, const struct map_dump *d)
{
	size_t drift = 0, both = 0;

	for (size_t i = 0; i < d->nr; i++) {
		uint32_t e = t->cap ? t->idx[find(t, map_dump_key(d, i))] : 0;

		if (!e) {
			drift++;
			continue;
		}
		both++;
		if (memcmp(val_at(t, e - 1), map_dump_val(d, i), t->val_size))
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
