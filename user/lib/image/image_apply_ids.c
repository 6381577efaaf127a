// SPDX-License-Identifier: Apache-2.0
/*
 * Id allocation of the apply (image_apply.h): which ids are in use is read
 * from the kernel on every apply, from the object table and from the route
 * maps themselves, so entries no object describes (an older agent's) are
 * never handed out twice either.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/sort.h"
#include "image_apply_int.h"

/* Ids that are only keys (no counter array behind them). */
#define IA_KEY_ID_LIMIT (1u << 22)

static const char *const kind_names[GAMMAD_OBJ_KIND_MAX] = {
	[GAMMAD_OBJ_FRONTEND] = "service port id (--map-size svc-ports and frontends)",
	[GAMMAD_OBJ_TABLE] = "route table id",
	[GAMMAD_OBJ_SELECTOR] = "selector id (--map-size selectors and routes)",
	[GAMMAD_OBJ_BACKEND] = "backend id (--map-size backends)",
	[GAMMAD_OBJ_ENDPOINT_SET] = "endpoint set id",
	[GAMMAD_OBJ_NAMESPACE] = "namespace id",
	[GAMMAD_OBJ_KH_TABLE] = "kernel HTTP table id",
};

int ia_dump(const struct ia_ctx *c, const char *name, struct map_dump *d)
{
	int err = dp_map_dump(c->dp, name, d);

	if (err)
		pr_err("read map %s: %s", name, strerror(-err));
	return err;
}

/*
 * ia_dump() for a dump only read before the next write (the id load): the
 * mirror's own arrays, not a copy of them (a first apply at 10k Services
 * copied the endpoints and objects whole).
 */
static int ia_view(const struct ia_ctx *c, const char *name, struct map_dump *d)
{
	int err = dp_map_view(c->dp, name, d);

	if (err)
		pr_err("read map %s: %s", name, strerror(-err));
	return err;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Counter arrays are indexed by id: the smaller of the two maps bounds it. */
static uint32_t kind_limit(const struct ia_ctx *c, uint32_t kind)
{
	switch (kind) {
	case GAMMAD_OBJ_FRONTEND:
		return min_u32(dp_map_capacity(c->dp, GAMMAD_MAP_SVC_STATS),
			       dp_map_capacity(c->dp, GAMMAD_MAP_FRONTEND));
	case GAMMAD_OBJ_SELECTOR:
		return min_u32(dp_map_capacity(c->dp, GAMMAD_MAP_ROUTE_STATS),
			       dp_map_capacity(c->dp, GAMMAD_MAP_SELECTOR));
	case GAMMAD_OBJ_BACKEND:
		return min_u32(dp_map_capacity(c->dp, GAMMAD_MAP_BE_STATS),
			       dp_map_capacity(c->dp, GAMMAD_MAP_BACKEND));
	case GAMMAD_OBJ_TABLE:
	case GAMMAD_OBJ_ENDPOINT_SET:
		return IA_KEY_ID_LIMIT;
	case GAMMAD_OBJ_KH_TABLE:
		return min_u32(dp_map_capacity(c->dp, GAMMAD_MAP_KH_TABLE), IA_KEY_ID_LIMIT);
	default:
		return 0;	/* namespace ids come from the image */
	}
}

static void mark_used(struct ia_ctx *c, uint32_t kind, uint32_t id)
{
	struct ia_kind *k = &c->kinds[kind];

	if (id < k->limit)
		k->used[id / 64] |= 1ull << (id % 64);
}

/* ---- the index of complete objects, by ident ------------------------------- */

static size_t known_home(const struct ia_kind *k, uint64_t ident)
{
	return (size_t)hash_bytes(&ident, sizeof(ident), 0) & (k->cap_known - 1);
}

static int known_grow(struct ia_kind *k, size_t want);

/* Add (or, for the same id, replace) a complete object. */
static int known_put(struct ia_kind *k, const struct ia_known *o)
{
	size_t i;

	if (!o->id)
		return 0;	/* id 0 names nothing */
	if ((k->nr_known + 1) * 2 > k->cap_known && known_grow(k, (k->nr_known + 1) * 2))
		return -ENOMEM;
	for (i = known_home(k, o->ident); k->known[i].id; i = (i + 1) & (k->cap_known - 1))
		if (k->known[i].id == o->id && k->known[i].ident == o->ident) {
			k->known[i] = *o;
			return 0;
		}
	k->known[i] = *o;
	k->nr_known++;
	return 0;
}

static int known_grow(struct ia_kind *k, size_t want)
{
	struct ia_kind n = { .cap_known = 64 };

	while (n.cap_known < want)
		n.cap_known *= 2;
	n.known = calloc(n.cap_known, sizeof(*n.known));
	if (!n.known)
		return -ENOMEM;
	for (size_t i = 0; i < k->cap_known; i++)
		if (k->known[i].id)
			known_put(&n, &k->known[i]);	/* room for all: cannot fail */
	free(k->known);
	k->known = n.known;
	k->cap_known = n.cap_known;
	return 0;
}

/* Backward-shift deletion of (ident, id): no tombstones. */
static void known_del(struct ia_kind *k, uint64_t ident, uint32_t id)
{
	size_t mask = k->cap_known - 1, i, j;

	if (!k->cap_known)
		return;
	for (i = known_home(k, ident); k->known[i].id; i = (i + 1) & mask)
		if (k->known[i].id == id && k->known[i].ident == ident)
			break;
	if (!k->known[i].id)
		return;
	for (j = (i + 1) & mask; k->known[j].id; j = (j + 1) & mask) {
		size_t h = known_home(k, k->known[j].ident);

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			k->known[i] = k->known[j];
			i = j;
		}
	}
	memset(&k->known[i], 0, sizeof(k->known[i]));
	k->nr_known--;
}

/*
 * The object of ident with hash (any hash: hash 0), the smallest (hash,
 * id) of those matching: the same answer whatever order they came in.
 */
static const struct ia_known *known_find(const struct ia_kind *k, uint64_t ident,
					 uint64_t hash)
{
	const struct ia_known *best = NULL;

	if (!k->cap_known)
		return NULL;
	for (size_t i = known_home(k, ident); k->known[i].id; i = (i + 1) & (k->cap_known - 1)) {
		const struct ia_known *o = &k->known[i];

		if (o->ident != ident || (hash && o->hash != hash))
			continue;
		if (!best || o->hash < best->hash || (o->hash == best->hash && o->id < best->id))
			best = o;
	}
	return best;
}

static int load_objects(struct ia_ctx *c)
{
	struct map_dump d;
	size_t count[GAMMAD_OBJ_KIND_MAX] = { 0 };
	int err = ia_view(c, GAMMAD_MAP_OBJECTS, &d);

	if (err)
		return err;
	for (size_t i = 0; i < d.nr; i++) {
		const struct gammad_obj_key *key = map_dump_key(&d, i);

		if (key->kind && key->kind < GAMMAD_OBJ_KIND_MAX)
			count[key->kind]++;
	}
	for (uint32_t kind = 1; kind < GAMMAD_OBJ_KIND_MAX && !err; kind++)
		err = known_grow(&c->kinds[kind], count[kind] * 2 + 2);
	for (size_t i = 0; i < d.nr && !err; i++) {
		const struct gammad_obj_key *key = map_dump_key(&d, i);
		const struct gammad_obj_val *val = map_dump_val(&d, i);

		if (!key->kind || key->kind >= GAMMAD_OBJ_KIND_MAX)
			continue;
		mark_used(c, key->kind, key->id);
		if (!val->hash)
			continue;	/* being written when its agent stopped */
		err = known_put(&c->kinds[key->kind], &(struct ia_known){
			.ident = val->ident, .hash = val->hash, .id = key->id, .ref = val->ref,
		});
	}
	map_dump_free(&d);
	return err;
}

static int present_add(struct ia_present *p, size_t *cap, uint32_t id, uint32_t value)
{
	if (p->nr == *cap) {
		size_t n = *cap ? *cap * 2 : 256;
		uint64_t *v = realloc(p->ids, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->ids = v;
		*cap = n;
	}
	p->ids[p->nr++] = (uint64_t)id << 32 | value;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

long ia_present_get(const struct ia_present *p, uint32_t id)
{
	size_t lo = 0, hi = p->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (p->ids[mid] >> 32 < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->nr && p->ids[lo] >> 32 == id ? (long)(uint32_t)p->ids[lo] : -1;
}

/* Entries per endpoint set: sort the (ep_set, 0) pairs and count runs. */
static int count_endpoints(struct ia_ctx *c, const struct map_dump *d)
{
	struct ia_present *p = &c->ep_present;
	size_t cap = 0;
	int err = 0;

	for (size_t i = 0; i < d->nr && !err; i++) {
		const struct gammad_ep_key *k = map_dump_key(d, i);

		err = present_add(p, &cap, k->ep_set, 0);
	}
	if (err)
		return err;
	if (sort_u64(p->ids, p->nr))
		qsort(p->ids, p->nr, sizeof(*p->ids), u64_cmp);
	/* Collapse runs of one ep_set into one (ep_set, count) item. */
	size_t out = 0;

	for (size_t i = 0; i < p->nr;) {
		size_t j = i;

		while (j < p->nr && p->ids[j] >> 32 == p->ids[i] >> 32)
			j++;
		p->ids[out++] = (p->ids[i] & ~0xffffffffull) | (uint32_t)(j - i);
		i = j;
	}
	p->nr = out;
	return 0;
}

static int be_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

long ia_selector_present(struct ia_ctx *c, uint32_t id)
{
	struct gammad_sel_val v;

	if (!c->delta)
		return ia_present_get(&c->sel_present, id);
	return dp_map_lookup(c->dp, GAMMAD_MAP_SELECTOR, &id, &v) ? -1 : (long)v.nr_slots;
}

bool ia_endpoints_present(struct ia_ctx *c, uint32_t id, uint32_t nr)
{
	struct gammad_ep_key k = { .ep_set = id };
	struct gammad_ep_val v;
	long have;

	if (!c->delta) {
		have = ia_present_get(&c->ep_present, id);
		return (have < 0 ? 0 : have) == (long)nr;
	}
	/* A delta reads the entries of the few sets it reuses one by one (the mirror). */
	for (k.idx = 0; k.idx <= nr; k.idx++) {
		bool present = !dp_map_lookup(c->dp, GAMMAD_MAP_ENDPOINT, &k, &v);

		if (present != (k.idx < nr))
			return false;
	}
	return true;
}

const struct gammad_be_val *ia_backend_entry(const struct ia_ctx *c, uint32_t id)
{
	const struct map_dump *d = &c->be_dump;
	size_t lo = 0, hi = d->nr;

	if (c->delta) {
		struct ia_ctx *w = (struct ia_ctx *)c;	/* the scratch entry only */

		return dp_map_lookup(c->dp, GAMMAD_MAP_BACKEND, &id, &w->be_scratch) ?
		       NULL : &w->be_scratch;
	}

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint32_t v = *(const uint32_t *)map_dump_key(d, mid);

		if (v == id)
			return map_dump_val(d, mid);
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The backend dump sorted by id, keys and values moved together. */
static int sort_backends(struct map_dump *d)
{
	size_t rec = d->key_size + d->val_size;
	char *tmp = malloc(d->nr * rec + 1);

	if (!tmp)
		return -ENOMEM;
	for (size_t i = 0; i < d->nr; i++) {
		memcpy(tmp + i * rec, map_dump_key(d, i), d->key_size);
		memcpy(tmp + i * rec + d->key_size, map_dump_val(d, i), d->val_size);
	}
	qsort(tmp, d->nr, rec, be_cmp);
	for (size_t i = 0; i < d->nr; i++) {
		memcpy(map_dump_key(d, i), tmp + i * rec, d->key_size);
		memcpy(map_dump_val(d, i), tmp + i * rec + d->key_size, d->val_size);
	}
	free(tmp);
	return 0;
}

/* Ids the route maps use, whether or not an object describes them. */
static int mark_kernel_ids(struct ia_ctx *c)
{
	struct map_dump d;
	int err;

	err = ia_view(c, GAMMAD_MAP_FRONTEND, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_fe_val *v = map_dump_val(&d, i);

		mark_used(c, GAMMAD_OBJ_FRONTEND, v->svc_port_id);
		mark_used(c, GAMMAD_OBJ_TABLE, v->table_gen);
		mark_used(c, GAMMAD_OBJ_SELECTOR, v->default_sel);
	}
	map_dump_free(&d);
	if (!err)
		err = ia_view(c, GAMMAD_MAP_CONSUMER, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_cons_key *k = map_dump_key(&d, i);
		const struct gammad_cons_val *v = map_dump_val(&d, i);

		mark_used(c, GAMMAD_OBJ_TABLE, k->table_gen);
		mark_used(c, GAMMAD_OBJ_SELECTOR, v->sel);
	}
	map_dump_free(&d);
	if (!err)
		err = ia_view(c, GAMMAD_MAP_SELECTOR, &d);
	for (size_t i = 0, cap = 0; !err && i < d.nr; i++) {
		__u32 id = *(const __u32 *)map_dump_key(&d, i);
		const struct gammad_sel_val *v = map_dump_val(&d, i);

		mark_used(c, GAMMAD_OBJ_SELECTOR, id);
		err = present_add(&c->sel_present, &cap, id, v->nr_slots);
	}
	map_dump_free(&d);
	if (!err) {
		if (sort_u64(c->sel_present.ids, c->sel_present.nr))
			qsort(c->sel_present.ids, c->sel_present.nr, sizeof(uint64_t), u64_cmp);
		err = ia_dump(c, GAMMAD_MAP_BACKEND, &c->be_dump);
	}
	for (size_t i = 0; !err && i < c->be_dump.nr; i++) {
		const struct gammad_be_val *v = map_dump_val(&c->be_dump, i);

		mark_used(c, GAMMAD_OBJ_BACKEND, *(const __u32 *)map_dump_key(&c->be_dump, i));
		mark_used(c, GAMMAD_OBJ_ENDPOINT_SET, v->ep_set);
	}
	if (!err)
		err = sort_backends(&c->be_dump);
	if (!err)
		err = ia_view(c, GAMMAD_MAP_ENDPOINT, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_ep_key *k = map_dump_key(&d, i);

		mark_used(c, GAMMAD_OBJ_ENDPOINT_SET, k->ep_set);
	}
	if (!err)
		err = count_endpoints(c, &d);
	map_dump_free(&d);
	return err;
}

int ia_ids_load(struct ia_ctx *c)
{
	int err;

	for (uint32_t kind = 1; kind < GAMMAD_OBJ_KIND_MAX; kind++) {
		struct ia_kind *k = &c->kinds[kind];

		k->limit = kind_limit(c, kind);
		k->cursor = 1;
		k->used = calloc(k->limit / 64 + 1, sizeof(uint64_t));
		if (!k->used)
			return -ENOMEM;
		mark_used(c, kind, 0);	/* id 0 means "none" everywhere */
	}
	err = load_objects(c);
	return err ?: mark_kernel_ids(c);
}

void ia_ids_free(struct ia_ctx *c)
{
	free(c->sel_present.ids);
	free(c->ep_present.ids);
	map_dump_free(&c->be_dump);
	memset(&c->sel_present, 0, sizeof(c->sel_present));
	memset(&c->ep_present, 0, sizeof(c->ep_present));
	for (uint32_t kind = 0; kind < GAMMAD_OBJ_KIND_MAX; kind++) {
		free(c->kinds[kind].known);
		free(c->kinds[kind].used);
	}
	memset(c->kinds, 0, sizeof(c->kinds));
}

const struct ia_known *ia_known_exact(const struct ia_ctx *c, uint32_t kind,
				      uint64_t ident, uint64_t hash)
{
	return hash ? known_find(&c->kinds[kind], ident, hash) : NULL;
}

const struct ia_known *ia_known_ident(const struct ia_ctx *c, uint32_t kind, uint64_t ident)
{
	return known_find(&c->kinds[kind], ident, 0);
}

int ia_id_alloc(struct ia_ctx *c, uint32_t kind, uint32_t *id)
{
	struct ia_kind *k = &c->kinds[kind];

	for (uint32_t n = 0; n < k->limit; n++) {
		uint32_t i = k->cursor;

		k->cursor = k->cursor + 1 < k->limit ? k->cursor + 1 : 1;
		if (i >= k->limit || k->used[i / 64] & (1ull << (i % 64)))
			continue;
		k->used[i / 64] |= 1ull << (i % 64);
		*id = i;
		return 0;
	}
	pr_err("no free %s: all %u in use", kind_names[kind], k->limit ? k->limit - 1 : 0);
	return -ENOSPC;
}

/*
 * Record (kind, id) before its entries are written, with hash 0, then
 * complete it: an agent stopped in between leaves an id nobody reuses and
 * the next apply retires.
 */
int ia_obj_begin(struct ia_ctx *c, uint32_t kind, uint32_t id, struct gammad_obj_val *v)
{
	uint64_t hash = v->hash;
	int err;

	v->hash = 0;
	err = dp_obj_put(c->dp, kind, id, v);
	v->hash = hash;
	return err;
}

int ia_obj_put(struct ia_ctx *c, uint32_t kind, uint32_t id, const struct gammad_obj_val *v)
{
	int err = dp_obj_put(c->dp, kind, id, v);

	/* Later lookups of this apply (and with a state, of later ones) find it. */
	if (!err && v->hash && kind < GAMMAD_OBJ_KIND_MAX)
		err = known_put(&c->kinds[kind], &(struct ia_known){
			.ident = v->ident, .hash = v->hash, .id = id, .ref = v->ref,
		});
	return err;
}

void ia_obj_forget(struct ia_ctx *c, uint32_t kind, uint32_t id, uint64_t ident)
{
	struct ia_kind *k;

	if (!kind || kind >= GAMMAD_OBJ_KIND_MAX)
		return;
	k = &c->kinds[kind];
	known_del(k, ident, id);
	/* Its entries went before it (the retire walks down first): the id is free. */
	if (kind != GAMMAD_OBJ_NAMESPACE && id && id < k->limit)
		k->used[id / 64] &= ~(1ull << (id % 64));
}

/* ---- the state kept between applies ------------------------------------------- */

struct ia_u64map {
	size_t cap, nr;		/* cap a power of two */
	uint64_t *keys, *vals;	/* key 0: empty */
};

static size_t u64map_home(const struct ia_u64map *m, uint64_t key)
{
	return (size_t)hash_bytes(&key, sizeof(key), 0) & (m->cap - 1);
}

int ia_u64map_put(struct ia_u64map **mp, uint64_t key, uint64_t val)
{
	struct ia_u64map *m = *mp;
	size_t i;

	if (!key)
		return 0;
	if (!m || (m->nr + 1) * 2 > m->cap) {
		struct ia_u64map *n = calloc(1, sizeof(*n));

		if (!n)
			return -ENOMEM;
		n->cap = m ? m->cap * 2 : 1024;
		n->keys = calloc(n->cap, sizeof(*n->keys));
		n->vals = calloc(n->cap, sizeof(*n->vals));
		if (!n->keys || !n->vals) {
			ia_u64map_free(n);
			return -ENOMEM;
		}
		for (size_t j = 0; m && j < m->cap; j++)
			if (m->keys[j]) {
				for (i = u64map_home(n, m->keys[j]); n->keys[i]; i = (i + 1) & (n->cap - 1))
					;
				n->keys[i] = m->keys[j];
				n->vals[i] = m->vals[j];
				n->nr++;
			}
		ia_u64map_free(m);
		*mp = m = n;
	}
	for (i = u64map_home(m, key); m->keys[i] && m->keys[i] != key; i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i]) {
		m->keys[i] = key;
		m->nr++;
	}
	m->vals[i] = val;
	return 0;
}

bool ia_u64map_get(const struct ia_u64map *m, uint64_t key, uint64_t *val)
{
	if (!m || !key)
		return false;
	for (size_t i = u64map_home(m, key); m->keys[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key) {
			*val = m->vals[i];
			return true;
		}
	return false;
}

void ia_u64map_free(struct ia_u64map *m)
{
	if (!m)
		return;
	free(m->keys);
	free(m->vals);
	free(m);
}

int ia_state_new(struct ia_state **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void ia_state_reset(struct ia_state *s)
{
	if (!s)
		return;
	for (uint32_t kind = 0; kind < GAMMAD_OBJ_KIND_MAX; kind++) {
		free(s->kinds[kind].known);
		free(s->kinds[kind].used);
	}
	memset(s->kinds, 0, sizeof(s->kinds));
	ia_u64map_free(s->sel_names);
	s->sel_names = NULL;
	s->valid = false;
}

void ia_state_free(struct ia_state *s)
{
	ia_state_reset(s);
	free(s);
}

bool ia_state_valid(const struct ia_state *s)
{
	return s && s->valid;
}

void ia_state_take(struct ia_ctx *c)
{
	struct ia_state *s = c->state;

	memcpy(c->kinds, s->kinds, sizeof(c->kinds));
	memset(s->kinds, 0, sizeof(s->kinds));
	/* In use: an apply that stops half way leaves it invalid. */
	s->valid = false;
}

void ia_state_keep(struct ia_ctx *c, bool ok)
{
	struct ia_state *s = c->state;

	if (!s)
		return;
	if (!ok) {
		ia_state_reset(s);
		return;
	}
	for (uint32_t kind = 0; kind < GAMMAD_OBJ_KIND_MAX; kind++) {
		free(s->kinds[kind].known);
		free(s->kinds[kind].used);
	}
	memcpy(s->kinds, c->kinds, sizeof(s->kinds));
	memset(c->kinds, 0, sizeof(c->kinds));
	s->valid = true;
}
