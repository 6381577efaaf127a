// SPDX-License-Identifier: Apache-2.0
/*
 * The last step of an apply (image_apply.h): after dp_sync(), walk the
 * kernel's route maps from the frontends down and delete every entry that
 * nothing reaches any more, then the objects that described them. Reading
 * reachability from the kernel rather than from memory is what makes a
 * restarted agent, a failed apply and an older agent's leftovers all the
 * same case.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "base/sort.h"
#include "image_apply_int.h"

/* A set of u32 ids (with a count per id for endpoint sets). */
struct idset {
	uint64_t *items;	/* id << 32 | count, sorted after idset_seal() */
	size_t nr, cap;
};

static int idset_add(struct idset *s, uint32_t id, uint32_t count)
{
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint64_t *n = realloc(s->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->items = n;
		s->cap = cap;
	}
	s->items[s->nr++] = (uint64_t)id << 32 | count;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void idset_seal(struct idset *s)
{
	if (sort_u64(s->items, s->nr))
		qsort(s->items, s->nr, sizeof(*s->items), u64_cmp);
}

/* Present: the largest count recorded for id; absent: -1. */
static long idset_count(const struct idset *s, uint32_t id)
{
	size_t lo = 0, hi = s->nr;
	long best = -1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->items[mid] >> 32 < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < s->nr && s->items[lo] >> 32 == id; lo++)
		best = (long)(uint32_t)s->items[lo];
	return best;
}

static bool idset_has(const struct idset *s, uint32_t id)
{
	return idset_count(s, id) >= 0;
}

struct live {
	struct idset svc_ports, tables, selectors, backends, ep_sets;
	struct idset slots;	/* selector id -> nr_slots */
};

static void live_free(struct live *l)
{
	free(l->svc_ports.items);
	free(l->tables.items);
	free(l->selectors.items);
	free(l->backends.items);
	free(l->ep_sets.items);
	free(l->slots.items);
}

/* Delete key from the map `name`, counting it; a vanished key is fine. */
static void retire_key(struct ia_ctx *c, const char *name, const void *key)
{
	int err = dp_map_delete(c->dp, name, key);

	if (!err)
		c->stats->retired++;
	else if (err != -ENOENT)
		pr_warn("retire an entry of %s: %s", name, strerror(-err));
	/* An entry left behind may name an id the state would hand out again. */
	if (err && err != -ENOENT)
		c->unsure = true;
}

static int walk_frontends(struct ia_ctx *c, struct live *l)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_FRONTEND, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_fe_val *v = map_dump_val(&d, i);

		err = idset_add(&l->svc_ports, v->svc_port_id, 0) ?:
		      idset_add(&l->tables, v->table_gen, 0) ?:
		      (v->default_sel ? idset_add(&l->selectors, v->default_sel, 0) : 0);
	}
	map_dump_free(&d);
	idset_seal(&l->svc_ports);
	idset_seal(&l->tables);
	return err;
}

static int walk_consumers(struct ia_ctx *c, struct live *l)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_CONSUMER, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_cons_key *k = map_dump_key(&d, i);
		const struct gammad_cons_val *v = map_dump_val(&d, i);

		if (idset_has(&l->tables, k->table_gen))
			err = idset_add(&l->selectors, v->sel, 0);
		else
			retire_key(c, GAMMAD_MAP_CONSUMER, k);
	}
	map_dump_free(&d);
	idset_seal(&l->selectors);
	return err;
}

static int walk_selectors(struct ia_ctx *c, struct live *l)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_SELECTOR, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const __u32 *id = map_dump_key(&d, i);
		const struct gammad_sel_val *v = map_dump_val(&d, i);

		if (idset_has(&l->selectors, *id))
			err = idset_add(&l->slots, *id, v->nr_slots);
		else
			retire_key(c, GAMMAD_MAP_SELECTOR, id);
	}
	map_dump_free(&d);
	idset_seal(&l->slots);
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_ALIAS, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_alias_key *k = map_dump_key(&d, i);
		const struct gammad_alias_val *v = map_dump_val(&d, i);

		if (k->slot < idset_count(&l->slots, k->sel_id))
			err = idset_add(&l->backends, v->primary, 0) ?:
			      idset_add(&l->backends, v->alias, 0);
		else
			retire_key(c, GAMMAD_MAP_ALIAS, k);
	}
	map_dump_free(&d);
	idset_seal(&l->backends);
	return err;
}

static int walk_backends(struct ia_ctx *c, struct live *l)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_BACKEND, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const __u32 *id = map_dump_key(&d, i);
		const struct gammad_be_val *v = map_dump_val(&d, i);

		if (!idset_has(&l->backends, *id))
			retire_key(c, GAMMAD_MAP_BACKEND, id);
		else if (v->ep_set)
			err = idset_add(&l->ep_sets, v->ep_set, v->nr_endpoints);
	}
	map_dump_free(&d);
	idset_seal(&l->ep_sets);
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_ENDPOINT, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_ep_key *k = map_dump_key(&d, i);

		if (k->idx >= idset_count(&l->ep_sets, k->ep_set))
			retire_key(c, GAMMAD_MAP_ENDPOINT, k);
	}
	map_dump_free(&d);
	return err;
}

static bool namespace_in_image(const struct img *img, uint32_t ns_id)
{
	for (size_t i = 0; i < img->nr_namespaces; i++)
		if (img->namespaces[i].id == ns_id)
			return true;
	return false;
}

static bool object_live(const struct ia_ctx *c, const struct live *l,
			const struct gammad_obj_key *k)
{
	switch (k->kind) {
	case GAMMAD_OBJ_FRONTEND:
		return idset_has(&l->svc_ports, k->id);
	case GAMMAD_OBJ_TABLE:
		return idset_has(&l->tables, k->id);
	case GAMMAD_OBJ_SELECTOR:
		return idset_has(&l->selectors, k->id);
	case GAMMAD_OBJ_BACKEND:
		return idset_has(&l->backends, k->id);
	case GAMMAD_OBJ_ENDPOINT_SET:
		return idset_has(&l->ep_sets, k->id);
	case GAMMAD_OBJ_NAMESPACE:
		return namespace_in_image(c->img, k->id);
	case GAMMAD_OBJ_KH_TABLE:
		return ia_kh_table_live(c, k->id);
	default:
		return false;
	}
}

static int retire_objects(struct ia_ctx *c, const struct live *l)
{
	struct map_dump d;
	int err = ia_dump(c, GAMMAD_MAP_OBJECTS, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_obj_key *k = map_dump_key(&d, i);

		if (object_live(c, l, k))
			continue;
		retire_key(c, GAMMAD_MAP_OBJECTS, k);
		ia_obj_forget(c, k->kind, k->id, ((const struct gammad_obj_val *)map_dump_val(&d, i))->ident);
	}
	map_dump_free(&d);
	return err;
}

/* ia_kh_retire's view of the walk: live generations, and backends it reaches. */
static bool kh_gen_live(void *l, uint32_t gen)
{
	return idset_has(&((struct live *)l)->tables, gen);
}

static int kh_be_add(void *l, uint32_t be)
{
	return idset_add(&((struct live *)l)->backends, be, 0);
}

int ia_retire(struct ia_ctx *c)
{
	struct live l = { 0 };
	int err;

	err = walk_frontends(c, &l) ?: walk_consumers(c, &l) ?:
	      ia_kh_retire(c, kh_gen_live, kh_be_add, &l) ?: walk_selectors(c, &l) ?:
	      walk_backends(c, &l) ?: retire_objects(c, &l);
	live_free(&l);
	return err;
}
