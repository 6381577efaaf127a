// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel HTTP tables in the apply (image_khttp.h): built from the
 * translation, written innermost first like the L4 image (through its
 * write queue: one BPF_MAP_UPDATE_BATCH per map and chunk for every table
 * of the apply, datapath.h), published with the frontend's generation
 * flip, retired by the kernel walk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "image_apply_int.h"
#include "image_khttp.h"

/* ---- the set --------------------------------------------------------------- */

static int item_cmp(const void *a, const void *b)
{
	const struct ia_kh_class *x = a, *y = b;

	if (x->frontend != y->frontend)
		return x->frontend < y->frontend ? -1 : 1;
	return x->ns_id < y->ns_id ? -1 : x->ns_id > y->ns_id;
}

static int add_class(const struct img *img, struct ia_kh_set *s, const struct img_frontend *f,
		     uint32_t ns_id, const struct tr_class *cls)
{
	struct ia_kh_class *it;
	int ret;

	it = realloc(s->items, (s->nr + 1) * sizeof(*it));
	if (!it)
		return -ENOMEM;
	s->items = it;
	it = &s->items[s->nr];
	memset(it, 0, sizeof(*it));
	ret = kh_encode(cls, f->port, &it->img);
	if (ret)
		return ret;
	s->nr++;
	it->frontend = f->id;
	it->ns_id = ns_id;
	it->rb_backend = calloc(it->img.nr_rbs + 1, sizeof(*it->rb_backend));
	if (!it->rb_backend)
		return -ENOMEM;
	for (size_t i = 0; i < it->img.nr_rbs; i++) {
		/* The image backend of that name, if the image has one. */
		uint64_t id = img_backend_id(it->img.rb_src[i], f->addr.family);

		it->rb_backend[i] = IMG_INDEX(img, backends, id) >= 0 ? id : 0;
	}
	/* What points into the translation goes: the set outlives it. */
	free(it->img.rule_src);
	free(it->img.rb_src);
	it->img.rule_src = NULL;
	it->img.rb_src = NULL;
	if (!it->img.tab.engine_reason)
		s->kernel++;
	return 0;
}

/* Items of frontend id in s: [*lo, *hi) (s sorted by item_cmp). */
static void set_frontend_items(const struct ia_kh_set *s, uint64_t id, size_t *lo, size_t *hi)
{
	size_t l = 0, h = s ? s->nr : 0;

	while (l < h) {
		size_t mid = (l + h) / 2;

		if (s->items[mid].frontend < id)
			l = mid + 1;
		else
			h = mid;
	}
	*lo = l;
	for (h = l; s && h < s->nr && s->items[h].frontend == id; h++)
		;
	*hi = h;
}

/* Move prev's items of frontend f over (encoded from the same translation). */
static int take_items(struct ia_kh_set *s, struct ia_kh_set *prev, const struct img_frontend *f)
{
	struct ia_kh_class *it;
	size_t lo, hi;

	set_frontend_items(prev, f->id, &lo, &hi);
	if (lo == hi)
		return 0;
	it = realloc(s->items, (s->nr + hi - lo) * sizeof(*it));
	if (!it)
		return -ENOMEM;
	s->items = it;
	for (size_t i = lo; i < hi; i++) {
		struct ia_kh_class *p = &prev->items[i];

		s->items[s->nr++] = *p;
		if (!p->img.tab.engine_reason)
			s->kernel++;
		/* prev keeps an empty item: its free frees nothing of ours */
		memset(p, 0, sizeof(*p));
	}
	return 0;
}

/* Items of prev whose port is the same since prev was built (same(ctx, port index)). */
struct reuse {
	struct ia_kh_set *prev;
	ia_kh_port_same_fn same;
	const void *ctx;
};

static int build(const struct img *img, const struct tr_result *r, struct reuse *reuse,
		 struct ia_kh_set *out);

int ia_kh_build(const struct img *img, const struct tr_result *r, struct ia_kh_set *out)
{
	return build(img, r, NULL, out);
}

int ia_kh_rebuild(struct ia_kh_set *set, const struct img *img, const struct tr_result *r,
		  ia_kh_port_same_fn same, const void *ctx)
{
	struct ia_kh_set prev = *set;
	struct reuse reuse = { &prev, same, ctx };
	int err;

	memset(set, 0, sizeof(*set));
	err = build(img, r, same ? &reuse : NULL, set);
	ia_kh_set_free(&prev);
	return err;
}

static int build(const struct img *img, const struct tr_result *r, struct reuse *reuse,
		 struct ia_kh_set *out)
{
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < img->nr_frontends && !ret; i++) {
		const struct img_frontend *f = &img->frontends[i];
		const struct tr_port *p;

		if (f->protocol != L4_TCP)
			continue;
		/* By binary search: no index of 10,000 names per commit. */
		p = tr_find_port(r, f->svc_namespace, f->svc_name, f->port);
		if (p && reuse && reuse->same(reuse->ctx, (size_t)(p - r->ports))) {
			ret = take_items(out, reuse->prev, f);
			continue;
		}
		for (size_t c = 0; p && c < p->nr_classes && !ret; c++) {
			const struct tr_class *cls = &p->classes[c];
			uint32_t ns_id = cls->client_namespace ?
					 img_ns_id(img, cls->client_namespace) : GAMMAD_NS_ALL;

			/* Classes without routes stay L4: no table to match. */
			if (!cls->nr_entries || (cls->client_namespace && !ns_id))
				continue;
			ret = add_class(img, out, f, ns_id, cls);
		}
	}
	if (ret) {
		ia_kh_set_free(out);
		return ret;
	}
	if (out->nr)
		qsort(out->items, out->nr, sizeof(*out->items), item_cmp);
	return 0;
}

void ia_kh_set_free(struct ia_kh_set *s)
{
	for (size_t i = 0; i < s->nr; i++) {
		kh_image_free(&s->items[i].img);
		free(s->items[i].rb_backend);
	}
	free(s->items);
	memset(s, 0, sizeof(*s));
}

/* ---- the apply ----------------------------------------------------------------- */

struct ia_kh {
	const struct ia_kh_set *set;	/* NULL: retire everything */
	struct kh_map_fds fds;
	int cls_fd;
	uint32_t *tab;			/* kernel table id per set item */
	uint64_t *live;			/* bitmap of tables a live generation names */
	uint32_t limit;
};

static int kh_fds(struct ia_ctx *c, struct ia_kh *k)
{
	k->cls_fd = dp_map_fd(c->dp, GAMMAD_MAP_KH_CLASS);
	k->fds = (struct kh_map_fds){
		.table = dp_map_fd(c->dp, GAMMAD_MAP_KH_TABLE),
		.entry = dp_map_fd(c->dp, GAMMAD_MAP_KH_ENTRY),
		.rule = dp_map_fd(c->dp, GAMMAD_MAP_KH_RULE),
		.rb = dp_map_fd(c->dp, GAMMAD_MAP_KH_RB),
		.alias = dp_map_fd(c->dp, GAMMAD_MAP_KH_ALIAS),
	};
	if (k->cls_fd < 0 || k->fds.table < 0 || k->fds.entry < 0 || k->fds.rule < 0 ||
	    k->fds.rb < 0 || k->fds.alias < 0)
		return -ENOENT;
	return 0;
}

/* With a delta, only the items of its frontends are written (the rest are as they were). */
static bool item_touched(const struct ia_ctx *c, const struct ia_kh_class *it)
{
	long f;

	if (!c->fe_touched)
		return true;
	f = IMG_INDEX(c->img, frontends, it->frontend);
	return f >= 0 && c->fe_touched[f];
}

int ia_kh_prepare(struct ia_ctx *c, const struct ia_kh_set *set)
{
	struct ia_kh *k = calloc(1, sizeof(*k));
	struct map_dump d = { 0 };
	int err;

	if (!k)
		return -ENOMEM;
	c->kh = k;
	k->set = set;
	err = kh_fds(c, k);
	if (err && !set) {
		ia_kh_free(c);	/* nothing to write, nothing of ours to retire */
		return 0;
	}
	if (err) {
		pr_err("kernel HTTP maps are not loaded: %s", strerror(-err));
		return err;
	}
	k->limit = dp_map_capacity(c->dp, GAMMAD_MAP_KH_TABLE) + 1;
	k->live = calloc(k->limit / 64 + 1, sizeof(*k->live));
	k->tab = calloc((set ? set->nr : 0) + 1, sizeof(*k->tab));
	if (!k->live || !k->tab)
		return -ENOMEM;
	/* Table ids in the map that no object describes are in use too (a delta: noted already). */
	err = c->delta ? 0 : ia_dump(c, GAMMAD_MAP_KH_TABLE, &d);
	for (size_t i = 0; !err && !c->delta && i < d.nr; i++) {
		uint32_t id = *(const uint32_t *)map_dump_key(&d, i);
		struct ia_kind *kind = &c->kinds[GAMMAD_OBJ_KH_TABLE];

		if (id < kind->limit)
			kind->used[id / 64] |= 1ull << (id % 64);
	}
	map_dump_free(&d);
	/* The backends rule backends name get kernel ids, as the L4 ones do. */
	for (size_t i = 0; !err && set && i < set->nr; i++) {
		const struct ia_kh_class *it = &set->items[i];

		if (!item_touched(c, it))
			continue;
		for (size_t r = 0; r < it->img.nr_rbs; r++) {
			long b = it->rb_backend[r] ? IMG_INDEX(c->img, backends, it->rb_backend[r]) : -1;
			long e;

			if (b < 0)
				continue;
			c->be_needed[b] = true;
			e = c->img->backends[b].endpoint_set ?
			    IMG_INDEX(c->img, endpoint_sets, c->img->backends[b].endpoint_set) : -1;
			if (e >= 0)
				c->ep_needed[e] = true;
		}
	}
	return err;
}

void ia_kh_free(struct ia_ctx *c)
{
	if (!c->kh)
		return;
	free(c->kh->tab);
	free(c->kh->live);
	free(c->kh);
	c->kh = NULL;
}

/* The item's rule backends with their kernel backend ids. */
static struct gammad_kh_rb *item_rbs(const struct ia_ctx *c, const struct ia_kh_class *it)
{
	struct gammad_kh_rb *rbs = calloc(it->img.nr_rbs + 1, sizeof(*rbs));

	for (size_t r = 0; rbs && r < it->img.nr_rbs; r++) {
		long b = it->rb_backend[r] ? IMG_INDEX(c->img, backends, it->rb_backend[r]) : -1;

		rbs[r] = it->img.rbs[r];
		rbs[r].be_id = b >= 0 ? c->be_ids[b] : 0;
	}
	return rbs;
}

static uint64_t item_hash(const struct kh_image *img, const struct gammad_kh_rb *rbs)
{
	uint64_t h = hash_bytes(&img->tab, sizeof(img->tab), 0x6b68);

	/* hash_large: entries and rule backends are kilobytes each, mostly zeros */
	h = hash_large(img->entries, img->nr_entries * sizeof(*img->entries), h);
	h = hash_large(img->rules, img->nr_rules * sizeof(*img->rules), h);
	h = hash_large(rbs, img->nr_rbs * sizeof(*rbs), h);
	h = hash_large(img->slots, img->nr_slots * sizeof(*img->slots), h);
	/* the response edits: only where there are some (tables without keep their hash) */
	for (size_t i = 0; i < img->nr_rbs; i++)
		if (kh_rb_edits_response(img, i)) {
			h = hash_bytes(&i, sizeof(i), h);
			h = hash_large(&img->resp[i], sizeof(img->resp[i]), h);
		}
	return h ? h : 1;
}

/* Through the apply's write queue: records, then tables, before the classes and flips. */
static int queue_put(void *ctx, int fd, bool table, const void *key, const void *val)
{
	return dp_kh_put(ctx, table ? DP_KH_TABLE : DP_KH_RECORD, fd, key, val);
}

/* One table: reuse the complete one of the same content, else write it aside. */
static int write_table(struct ia_ctx *c, const struct ia_kh_class *it,
		       struct gammad_kh_rb *rbs, uint64_t hash, uint32_t *tab)
{
	struct ia_kh *k = c->kh;
	const struct ia_known *kn = ia_known_exact(c, GAMMAD_OBJ_KH_TABLE, hash, hash);
	struct gammad_obj_val v = { .ident = hash, .hash = hash, .ref = it->img.tab.nr_entries };
	struct gammad_kh_table cur;
	struct kh_image w = it->img;
	int err;

	if (kn && !bpf_map_lookup_elem(k->fds.table, &kn->id, &cur) &&
	    !memcmp(&cur, &it->img.tab, sizeof(cur))) {
		*tab = kn->id;
		return 0;
	}
	snprintf(v.section, sizeof(v.section), "%s",
		 it->img.tab.engine_reason ? kh_tab_reason_str(it->img.tab.engine_reason) : "kernel");
	w.rbs = rbs;
	err = ia_id_alloc(c, GAMMAD_OBJ_KH_TABLE, tab) ?:
	      ia_obj_begin(c, GAMMAD_OBJ_KH_TABLE, *tab, &v) ?:
	      kh_image_put(&w, *tab, &k->fds, queue_put, c->dp) ?:
	      ia_obj_put(c, GAMMAD_OBJ_KH_TABLE, *tab, &v);
	if (!err)
		c->stats->kh_tables_written++;
	return err;
}

static const struct img_frontend *item_frontend(const struct ia_ctx *c,
						 const struct ia_kh_class *it)
{
	long f = IMG_INDEX(c->img, frontends, it->frontend);

	return f >= 0 ? &c->img->frontends[f] : NULL;
}

int ia_kh_write(struct ia_ctx *c)
{
	struct ia_kh *k = c->kh;
	const struct ia_kh_set *set = k->set;
	/*
	 * Content hash -> table of this apply: items of the same content share
	 * one table. write_table() alone would not do: its lookup takes the
	 * smallest id of that content, which may be an older table found
	 * changed; each such item would write another (apply_khttp/shared).
	 */
	struct ia_u64map *done = NULL;
	int err = 0;

	for (size_t i = 0; set && i < set->nr && !err; i++) {
		const struct ia_kh_class *it = &set->items[i];
		struct gammad_kh_rb *rbs;
		uint64_t hash, tab;

		if (!item_touched(c, it))
			continue;
		rbs = item_rbs(c, it);
		if (!rbs) {
			err = -ENOMEM;
			break;
		}
		hash = item_hash(&it->img, rbs);
		if (ia_u64map_get(done, hash, &tab))
			k->tab[i] = (uint32_t)tab;
		else
			err = write_table(c, it, rbs, hash, &k->tab[i]) ?:
			      ia_u64map_put(&done, hash, k->tab[i]);
		free(rbs);
		if (err) {
			const struct img_frontend *f = item_frontend(c, it);

			pr_err("kernel HTTP table of %s/%s:%u class %u: %s",
			       f ? f->svc_namespace : "?", f ? f->svc_name : "?",
			       f ? f->port : 0, it->ns_id, strerror(-err));
		}
	}
	ia_u64map_free(done);
	if (set)
		c->stats->kh_tables = set->nr;
	return err;
}

/* Items of frontend f: [*lo, *hi). */
static void frontend_items(const struct ia_ctx *c, const struct img_frontend *f,
			   size_t *lo, size_t *hi)
{
	set_frontend_items(c->kh ? c->kh->set : NULL, f->id, lo, hi);
}

uint64_t ia_kh_frontend_hash(const struct ia_ctx *c, const struct img_frontend *f, uint64_t h)
{
	size_t lo, hi;

	frontend_items(c, f, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		uint64_t v = (uint64_t)c->kh->set->items[i].ns_id << 32 | c->kh->tab[i];

		h = hash_bytes(&v, sizeof(v), h);
	}
	return h ? h : 1;
}

int ia_kh_classes_write(struct ia_ctx *c, const struct img_frontend *f, uint32_t gen)
{
	size_t lo, hi;
	int err = 0;

	frontend_items(c, f, &lo, &hi);
	for (size_t i = lo; i < hi && !err; i++) {
		struct gammad_cons_key key = { .table_gen = gen, .ns_id = c->kh->set->items[i].ns_id };
		struct gammad_kh_class_val val = { .tab = c->kh->tab[i] };

		/* with the consumer tables: after the tables (queued), before the flip */
		err = dp_kh_put(c->dp, DP_KH_CLASS, c->kh->cls_fd, &key, &val);
	}
	return err;
}

/* ---- the retire ------------------------------------------------------------------ */

static bool tab_live(const struct ia_kh *k, uint32_t tab)
{
	return tab < k->limit && (k->live[tab / 64] & (1ull << (tab % 64)));
}

bool ia_kh_table_live(const struct ia_ctx *c, uint32_t tab)
{
	return c->kh && tab_live(c->kh, tab);
}

static void retire_key(struct ia_ctx *c, const char *name, int fd, const void *key)
{
	if (!bpf_map_delete_elem(fd, key)) {
		c->stats->retired++;
	} else if (errno != ENOENT) {
		pr_warn("retire an entry of %s: %s", name, strerror(errno));
		c->unsure = true;	/* its table id must not be handed out again */
	}
}

/* Entries keyed by (tab, ...) of tables no live generation names. */
static int retire_by_tab(struct ia_ctx *c, const char *name, int fd,
			 int (*be_add)(void *, uint32_t), void *arg)
{
	struct map_dump d;
	int err = ia_dump(c, name, &d);

	for (size_t i = 0; !err && i < d.nr; i++) {
		const void *key = map_dump_key(&d, i);

		if (!tab_live(c->kh, *(const uint32_t *)key))
			retire_key(c, name, fd, key);
		else if (be_add && ((const struct gammad_kh_rb *)map_dump_val(&d, i))->be_id)
			err = be_add(arg, ((const struct gammad_kh_rb *)map_dump_val(&d, i))->be_id);
	}
	map_dump_free(&d);
	return err;
}

int ia_kh_retire(struct ia_ctx *c, bool (*gen_live)(void *, uint32_t),
		 int (*be_add)(void *, uint32_t), void *arg)
{
	struct ia_kh *k = c->kh;
	struct map_dump d;
	int err;

	if (!k || kh_fds(c, k))
		return 0;	/* prepared nothing: nothing to walk */
	err = ia_dump(c, GAMMAD_MAP_KH_CLASS, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_cons_key *key = map_dump_key(&d, i);
		const struct gammad_kh_class_val *v = map_dump_val(&d, i);

		if (k->set && gen_live(arg, key->table_gen) && v->tab < k->limit)
			k->live[v->tab / 64] |= 1ull << (v->tab % 64);
		else
			retire_key(c, GAMMAD_MAP_KH_CLASS, k->cls_fd, key);
	}
	map_dump_free(&d);
	return err ?: retire_by_tab(c, GAMMAD_MAP_KH_TABLE, k->fds.table, NULL, NULL) ?:
	       retire_by_tab(c, GAMMAD_MAP_KH_ENTRY, k->fds.entry, NULL, NULL) ?:
	       retire_by_tab(c, GAMMAD_MAP_KH_RULE, k->fds.rule, NULL, NULL) ?:
	       retire_by_tab(c, GAMMAD_MAP_KH_ALIAS, k->fds.alias, NULL, NULL) ?:
	       retire_by_tab(c, GAMMAD_MAP_KH_RB, k->fds.rb, be_add, arg);
}
