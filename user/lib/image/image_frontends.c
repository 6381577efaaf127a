// SPDX-License-Identifier: Apache-2.0
/*
 * Frontends of an apply (image_apply.h): the generation flip. A frontend
 * keeps its svc_port_id (its counters) for as long as the Service port
 * exists; its route table is the (default selector, consumer selectors)
 * tuple, and a changed tuple is written under a fresh table_gen before the
 * one update of the frontend entry that makes every class switch at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "image_apply_int.h"

struct fe_table {
	struct gammad_fe_val val;		/* without table_gen */
	struct gammad_cons_key *cons;		/* table_gen filled when written */
	struct gammad_cons_val *cons_sel;
	size_t nr_cons;
};

/* Index of the class's L4 selector in the image (sorted by id), or -1. */
static long class_selector_idx(const struct ia_ctx *c, const struct img_class *cl)
{
	size_t lo = 0, hi = c->img->nr_selectors;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t id = c->img->selectors[mid].id;

		if (id == cl->l4_selector)
			return (long)mid;
		if (id < cl->l4_selector)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Kernel selector of a class; 0 (none: connections refused) if it has none. */
static uint32_t class_sel(const struct ia_ctx *c, const struct img_class *cl)
{
	long i = class_selector_idx(c, cl);

	return i < 0 ? 0 : c->sel_ids[i];
}

static bool class_l7_unenforced(const struct ia_ctx *c, const struct img_class *cl)
{
	long i = class_selector_idx(c, cl);

	return i >= 0 && (c->img->selectors[i].flags & IMG_SELECTOR_L7_UNENFORCED);
}

static int table_build(const struct ia_ctx *c, const struct img_frontend *f,
		       struct fe_table *t)
{
	memset(t, 0, sizeof(*t));
	t->cons = calloc(f->nr_classes + 1, sizeof(*t->cons));
	t->cons_sel = calloc(f->nr_classes + 1, sizeof(*t->cons_sel));
	if (!t->cons || !t->cons_sel)
		return -ENOMEM;
	for (size_t i = 0; i < f->nr_classes; i++) {
		const struct img_class *cl = &f->classes[i];

		if (class_l7_unenforced(c, cl))
			t->val.flags |= GAMMAD_FE_L7_UNENFORCED;
		if (!cl->ns_id) {
			t->val.default_sel = class_sel(c, cl);
			continue;
		}
		t->val.flags |= GAMMAD_FE_HAS_CONSUMERS;
		t->cons[t->nr_cons].ns_id = cl->ns_id;
		t->cons_sel[t->nr_cons++].sel = class_sel(c, cl);
	}
	return 0;
}

static void table_free(struct fe_table *t)
{
	free(t->cons);
	free(t->cons_sel);
}

/* Everything the frontend's entries and object say, names included. */
static uint64_t table_hash(const struct img_frontend *f, const struct fe_table *t)
{
	uint64_t h = hash_bytes(&t->val, sizeof(t->val), f->id);

	h = hash_bytes(t->cons, t->nr_cons * sizeof(*t->cons), h);
	h = hash_bytes(t->cons_sel, t->nr_cons * sizeof(*t->cons_sel), h);
	h = hash_bytes(f->svc_namespace, strlen(f->svc_namespace), h);
	h = hash_bytes(f->svc_name, strlen(f->svc_name), h);
	if (f->port_name)
		h = hash_bytes(f->port_name, strlen(f->port_name), h);
	return h ? h : 1;
}

static void fe_object(const struct img_frontend *f, struct gammad_obj_val *v)
{
	memset(v, 0, sizeof(*v));
	v->ident = f->id;
	memcpy(v->addr, f->addr.addr, f->addr.family == AF_INET6 ? 16 : 4);
	v->port = f->port;
	v->family = f->addr.family;
	v->proto = f->protocol;
	snprintf(v->namespace, sizeof(v->namespace), "%s", f->svc_namespace);
	snprintf(v->name, sizeof(v->name), "%s", f->svc_name);
	snprintf(v->section, sizeof(v->section), "%s", f->port_name ? f->port_name : "");
}

/* Is the kernel entry already this table under this object? */
static bool frontend_current(const struct ia_ctx *c, const struct gammad_fe_key *key,
			     const struct ia_known *k, uint64_t hash)
{
	struct gammad_fe_val cur;

	if (!k || k->hash != hash)
		return false;
	if (dp_map_lookup(c->dp, GAMMAD_MAP_FRONTEND, key, &cur))
		return false;
	return cur.table_gen == k->ref && cur.svc_port_id == k->id;
}

static int publish(struct ia_ctx *c, const struct img_frontend *f, struct fe_table *t,
		   const struct gammad_fe_key *key, const struct ia_known *k, uint64_t hash)
{
	struct gammad_obj_val fo, to = { .ident = f->id, .hash = hash };
	uint32_t gen;
	int err;

	fe_object(f, &fo);
	fo.hash = hash;
	if (k) {
		t->val.svc_port_id = k->id;
	} else {
		err = ia_id_alloc(c, GAMMAD_OBJ_FRONTEND, &t->val.svc_port_id) ?:
		      ia_obj_begin(c, GAMMAD_OBJ_FRONTEND, t->val.svc_port_id, &fo) ?:
		      dp_counters_reset(c->dp, GAMMAD_OBJ_FRONTEND, t->val.svc_port_id);
		if (err)
			return err;
	}
	to.ref = t->val.svc_port_id;
	err = ia_id_alloc(c, GAMMAD_OBJ_TABLE, &gen) ?:
	      ia_obj_put(c, GAMMAD_OBJ_TABLE, gen, &(struct gammad_obj_val){
			 .ident = f->id, .ref = to.ref });
	for (size_t i = 0; i < t->nr_cons && !err; i++)
		err = dp_consumer_write(c->dp, gen, t->cons[i].ns_id, t->cons_sel[i].sel);
	err = err ?: ia_kh_classes_write(c, f, gen) ?: ia_obj_put(c, GAMMAD_OBJ_TABLE, gen, &to);
	if (err)
		return err;
	t->val.table_gen = gen;
	fo.ref = gen;
	err = dp_frontend_publish(c->dp, key, &t->val) ?:
	      ia_obj_put(c, GAMMAD_OBJ_FRONTEND, t->val.svc_port_id, &fo);
	c->stats->frontends_flipped++;
	return err;
}

static int frontend_apply(struct ia_ctx *c, const struct img_frontend *f)
{
	const struct ia_known *k = ia_known_ident(c, GAMMAD_OBJ_FRONTEND, f->id);
	struct gammad_fe_key key;
	struct fe_table t;
	uint64_t hash;
	int err;

	dp_fe_key(&key, f->addr.family, f->addr.addr, f->port, f->protocol);
	err = table_build(c, f, &t);
	if (!err) {
		/* Hashed without ids: they are the kernel's, not content. */
		hash = ia_kh_frontend_hash(c, f, table_hash(f, &t));
		if (!frontend_current(c, &key, k, hash))
			err = publish(c, f, &t, &key, k, hash);
	}
	table_free(&t);
	if (err)
		pr_err("frontend %s/%s:%u: %s", f->svc_namespace, f->svc_name, f->port,
		       strerror(-err));
	return err;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct gammad_fe_key));
}

/* A delta's frontends gone from the image (those it still has are not gone). */
static int remove_gone(struct ia_ctx *c)
{
	int err = 0;

	for (size_t i = 0; i < c->delta->nr_gone; i++) {
		const struct gammad_fe_key *k = &c->delta->gone[i];
		struct gammad_fe_val cur;
		bool kept = false;

		for (size_t j = 0; j < c->img->nr_frontends && !kept; j++) {
			const struct img_frontend *f = &c->img->frontends[j];
			struct gammad_fe_key key;

			if (!c->fe_touched[j])
				continue;	/* a key the image has again is a touched frontend's */
			dp_fe_key(&key, f->addr.family, f->addr.addr, f->port, f->protocol);
			kept = !memcmp(&key, k, sizeof(key));
		}
		if (kept || dp_map_lookup(c->dp, GAMMAD_MAP_FRONTEND, k, &cur))
			continue;
		err = dp_frontend_delete(c->dp, k);
		if (err) {
			pr_err("remove a stale frontend: %s", strerror(-err));
			break;
		}
		c->stats->frontends_removed++;
	}
	return err;
}

/* Frontend entries whose Service port is gone from the image. */
static int remove_stale(struct ia_ctx *c)
{
	struct gammad_fe_key *keys = calloc(c->img->nr_frontends + 1, sizeof(*keys));
	struct map_dump d = { 0 };
	int err = keys ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < c->img->nr_frontends; i++) {
		const struct img_frontend *f = &c->img->frontends[i];

		dp_fe_key(&keys[i], f->addr.family, f->addr.addr, f->port, f->protocol);
	}
	if (!err) {
		qsort(keys, c->img->nr_frontends, sizeof(*keys), key_cmp);
		err = ia_dump(c, GAMMAD_MAP_FRONTEND, &d);
	}
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_fe_key *k = map_dump_key(&d, i);

		if (bsearch(k, keys, c->img->nr_frontends, sizeof(*keys), key_cmp))
			continue;
		err = dp_frontend_delete(c->dp, k);
		if (err)
			pr_err("remove a stale frontend: %s", strerror(-err));
		c->stats->frontends_removed++;
	}
	map_dump_free(&d);
	free(keys);
	return err;
}

int ia_frontends_apply(struct ia_ctx *c)
{
	int err = 0;

	c->stats->frontends = c->img->nr_frontends;
	for (size_t i = 0; i < c->img->nr_frontends && !err; i++)
		if (!c->fe_touched || c->fe_touched[i])
			err = frontend_apply(c, &c->img->frontends[i]);
	/* Removing is independent of a failed publish: do it anyway. */
	return (c->delta ? remove_gone(c) : remove_stale(c)) ?: err;
}
