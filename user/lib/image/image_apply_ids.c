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

static int known_cmp(const void *a, const void *b)
{
	const struct ia_known *x = a, *y = b;

	if (x->ident != y->ident)
		return x->ident < y->ident ? -1 : 1;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return 0;
}

static int load_objects(struct ia_ctx *c)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_OBJECTS, &d);

	if (err)
		return err;
	for (uint32_t kind = 1; kind < GAMMAD_OBJ_KIND_MAX && !err; kind++) {
		c->kinds[kind].known = calloc(d.nr + 1, sizeof(struct ia_known));
		if (!c->kinds[kind].known)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < d.nr && !err; i++) {
		const struct gammad_obj_key *key = map_dump_key(&d, i);
		const struct gammad_obj_val *val = map_dump_val(&d, i);
		struct ia_kind *k;

		if (!key->kind || key->kind >= GAMMAD_OBJ_KIND_MAX)
			continue;
		mark_used(c, key->kind, key->id);
		if (!val->hash)
			continue;	/* being written when its agent stopped */
		k = &c->kinds[key->kind];
		k->known[k->nr_known++] = (struct ia_known){
			.ident = val->ident, .hash = val->hash, .id = key->id, .ref = val->ref,
		};
	}
	for (uint32_t kind = 1; kind < GAMMAD_OBJ_KIND_MAX && !err; kind++) {
		struct ia_known *k = c->kinds[kind].known;
		size_t n = c->kinds[kind].nr_known, sz = sizeof(*k);

		/* By hash, then (stable) by ident: ordered by (ident, hash). */
		if (sort_records_u64(k, n, sz, offsetof(struct ia_known, hash)) ||
		    sort_records_u64(k, n, sz, offsetof(struct ia_known, ident)))
			qsort(k, n, sz, known_cmp);
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

const struct gammad_be_val *ia_backend_entry(const struct ia_ctx *c, uint32_t id)
{
	const struct map_dump *d = &c->be_dump;
	size_t lo = 0, hi = d->nr;

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

	err = ia_dump(c, GAMMAD_MAP_FRONTEND, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_fe_val *v = map_dump_val(&d, i);

		mark_used(c, GAMMAD_OBJ_FRONTEND, v->svc_port_id);
		mark_used(c, GAMMAD_OBJ_TABLE, v->table_gen);
		mark_used(c, GAMMAD_OBJ_SELECTOR, v->default_sel);
	}
	map_dump_free(&d);
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_CONSUMER, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_cons_key *k = map_dump_key(&d, i);
		const struct gammad_cons_val *v = map_dump_val(&d, i);

		mark_used(c, GAMMAD_OBJ_TABLE, k->table_gen);
		mark_used(c, GAMMAD_OBJ_SELECTOR, v->sel);
	}
	map_dump_free(&d);
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_SELECTOR, &d);
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
		err = ia_dump(c, GAMMAD_MAP_ENDPOINT, &d);
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

static const struct ia_known *lower_bound(const struct ia_kind *k, uint64_t ident, uint64_t hash)
{
	size_t lo = 0, hi = k->nr_known;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct ia_known *m = &k->known[mid];

		if (m->ident < ident || (m->ident == ident && m->hash < hash))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->nr_known ? &k->known[lo] : NULL;
}

const struct ia_known *ia_known_exact(const struct ia_ctx *c, uint32_t kind,
				      uint64_t ident, uint64_t hash)
{
	const struct ia_known *k = lower_bound(&c->kinds[kind], ident, hash);

	return k && k->ident == ident && k->hash == hash ? k : NULL;
}

const struct ia_known *ia_known_ident(const struct ia_ctx *c, uint32_t kind, uint64_t ident)
{
	const struct ia_known *k = lower_bound(&c->kinds[kind], ident, 0);

	return k && k->ident == ident ? k : NULL;
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
