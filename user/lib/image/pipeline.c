// SPDX-License-Identifier: Apache-2.0
/*
 * The incremental control plane (pipeline.h). A commit after events:
 *
 *  1. D = the Services the events touched (pl_event marks them); every
 *     route with a backendRef into D adds its parent Services to D.
 *  2. A view of the model (model_view_add) with what D's ports depend on:
 *     D's Services, every route with a parentRef in D, the Services those
 *     routes' backendRefs name, all their EndpointSlices, every Namespace.
 *  3. translate + img_build of the view: the image entries of D's ports,
 *     exactly as a full build makes them (a port's tables depend on nothing
 *     else), merged into the last image: D's frontends replaced, new
 *     content-addressed entries and changed backends taken, then whatever
 *     no frontend reaches dropped (a full build has nothing unreachable).
 *  4. ia_apply() of the merged image.
 *
 * What a view cannot decide falls back to a full translation: a namespace
 * appearing or disappearing (namespace ids are assigned over the whole set),
 * a ClusterIP:port the view's Service shares with one outside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/log.h"
#include "pipeline.h"

struct pl {
	struct dp *dp;
	struct pl_opts o;
	struct model m;
	struct img img;
	bool have_img;		/* img is the model's image (applied or not) */
	bool full;		/* the next commit translates everything */
	bool pods_dirty;
	bool apply_failed;	/* the kernel may lag img: apply again */
	struct strmap dirty;	/* "ns/name" of Services the events touched */
	struct strmap ns_refs;	/* namespace -> objects naming it (uintptr_t) */
	struct img_reach *removed;	/* by the last commit's image */
	size_t nr_removed;
	uint64_t drift;		/* kernel entries the audits found changed by others */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- which Services an event touches -------------------------------------- */

static int mark(struct pl *pl, const char *ns, const char *name)
{
	char key[MODEL_KEY_MAX];
	int ret;

	if (!name)
		return 0;
	ret = strmap_put(&pl->dirty, model_key(key, ns, name), pl, NULL);
	return ret == -EEXIST ? 0 : ret;
}

/* The namespace an object names, for the image's namespace table. */
static const char *ns_of(enum model_kind kind, const void *obj)
{
	const struct k8s_meta *meta = obj;

	switch (kind) {
	case MODEL_NAMESPACE:
		return meta->name;
	case MODEL_SERVICE:
	case MODEL_POD:
	case MODEL_ROUTE:
		return meta->namespace;
	default:
		return NULL;
	}
}

/* Count one more (+1) or one less (-1) object naming ns; a set change needs a full build. */
static int ns_ref(struct pl *pl, const char *ns, int delta)
{
	uintptr_t n;

	if (!ns)
		return 0;
	n = (uintptr_t)strmap_get(&pl->ns_refs, ns);
	if (delta > 0) {
		if (!n) {
			int ret = strmap_put(&pl->ns_refs, ns, (void *)(uintptr_t)1, NULL);

			if (ret)
				return ret;
			pl->full = true;
			return 0;
		}
		strmap_set(&pl->ns_refs, ns, (void *)(n + 1));
		return 0;
	}
	if (n <= 1) {
		strmap_del(&pl->ns_refs, ns);
		pl->full = true;
		return 0;
	}
	strmap_set(&pl->ns_refs, ns, (void *)(n - 1));
	return 0;
}

static int count_namespaces(struct pl *pl)
{
	const struct model *m = &pl->m;
	int ret = 0;

	strmap_free(&pl->ns_refs);
	for (size_t i = 0; i < m->namespaces.nr && !ret; i++)
		ret = ns_ref(pl, ns_of(MODEL_NAMESPACE, m->namespaces.items[i]), 1);
	for (size_t i = 0; i < m->services.nr && !ret; i++)
		ret = ns_ref(pl, ns_of(MODEL_SERVICE, m->services.items[i]), 1);
	for (size_t i = 0; i < m->pods.nr && !ret; i++)
		ret = ns_ref(pl, ns_of(MODEL_POD, m->pods.items[i]), 1);
	for (int k = 0; k < ROUTE_KIND_COUNT; k++)
		for (size_t i = 0; i < m->routes[k].nr && !ret; i++)
			ret = ns_ref(pl, ns_of(MODEL_ROUTE, m->routes[k].items[i]), 1);
	return ret;
}

static bool same_addr(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->family == b->family &&
	       !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : sizeof(a->addr));
}

static bool shares_ip(const struct k8s_service *a, const struct k8s_service *b)
{
	for (size_t i = 0; i < a->nr_cluster_ips; i++)
		for (size_t j = 0; j < b->nr_cluster_ips; j++)
			if (same_addr(&a->cluster_ips[i], &b->cluster_ips[j]))
				return true;
	return false;
}

/*
 * Two Services on one ClusterIP: the first in name order has the port
 * (translate.c). When one changes, the other may win or lose it.
 */
static int mark_ip_sharers(struct pl *pl, const struct k8s_service *svc)
{
	int ret = 0;

	if (!svc || !svc->nr_cluster_ips)
		return 0;
	for (size_t i = 0; i < pl->m.services.nr && !ret; i++) {
		const struct k8s_service *o = pl->m.services.items[i];

		if (o != svc && shares_ip(svc, o))
			ret = mark(pl, o->meta.namespace, o->meta.name);
	}
	return ret;
}

/* What one object (old or new version) touches. */
static int touch(struct pl *pl, enum model_kind kind, const void *obj)
{
	int ret = 0;

	if (!obj)
		return 0;
	switch (kind) {
	case MODEL_SERVICE: {
		const struct k8s_service *s = obj;

		ret = mark(pl, s->meta.namespace, s->meta.name);
		return ret ?: mark_ip_sharers(pl, s);
	}
	case MODEL_ENDPOINT_SLICE: {
		const struct k8s_endpoint_slice *s = obj;

		return mark(pl, s->meta.namespace, s->service_name);
	}
	case MODEL_ROUTE: {
		const struct gapi_route *r = obj;

		for (size_t i = 0; i < r->nr_parents && !ret; i++)
			ret = mark(pl, r->parents[i].namespace, r->parents[i].name);
		return ret;
	}
	case MODEL_POD:
		pl->pods_dirty = true;
		return 0;
	default:
		/* Namespaces: only their ids (ns_refs); grants, deployments: not in the image. */
		return 0;
	}
}

int pl_event(struct pl *pl, const struct model_event *ev, struct diag *dg)
{
	enum gapi_route_kind rk = ev->route_kind;
	const struct k8s_meta *meta = ev->obj;
	const char *old_ns, *new_ns;
	char *old_copy = NULL;
	const void *old;
	int ret;

	if (ev->op == MODEL_PUT && !ev->obj)
		return -EINVAL;
	if (ev->op == MODEL_PUT && ev->kind == MODEL_ROUTE)
		rk = ((const struct gapi_route *)ev->obj)->kind;
	old = ev->op == MODEL_PUT ?
	      model_find(&pl->m, ev->kind, rk, meta->namespace, meta->name) :
	      model_find(&pl->m, ev->kind, rk, ev->namespace, ev->name);
	/* Before the model changes: it frees old. */
	ret = touch(pl, ev->kind, old);
	if (!ret && ev->op == MODEL_PUT)
		ret = touch(pl, ev->kind, ev->obj);
	old_ns = old ? ns_of(ev->kind, old) : NULL;
	new_ns = ev->op == MODEL_PUT ? ns_of(ev->kind, ev->obj) : NULL;
	if (!ret && old_ns && !(old_copy = strdup(old_ns)))
		ret = -ENOMEM;
	if (ret) {
		if (ev->op == MODEL_PUT)
			model_object_free(ev->kind, ev->obj);	/* ours from the call on */
		pl->full = true;	/* what was touched is unknown now */
		return ret;
	}
	/* The new one counted first: a replace never passes through zero. */
	ret = ns_ref(pl, new_ns, 1);
	if (ret) {
		model_object_free(ev->kind, ev->obj);
		free(old_copy);
		pl->full = true;
		return ret;
	}
	ret = model_apply_event(&pl->m, ev, dg);
	if (!ret)
		ret = ns_ref(pl, old_copy, -1);
	else if (ev->op == MODEL_PUT)
		pl->full = true;	/* counted, not in the model: recount at the full build */
	free(old_copy);
	if (ret && ret != -ENOENT)
		pl->full = true;
	return ret;
}

bool pl_pending(const struct pl *pl)
{
	return pl->full || pl->pods_dirty || pl->dirty.nr || pl->apply_failed || !pl->have_img;
}

/* ---- the view of what D's ports depend on --------------------------------- */

static bool in_set(const struct strmap *set, const char *ns, const char *name)
{
	char key[MODEL_KEY_MAX];

	return name && strmap_get(set, model_key(key, ns, name));
}

static bool route_parent_in(const struct gapi_route *r, const struct strmap *set)
{
	for (size_t i = 0; i < r->nr_parents; i++)
		if (in_set(set, r->parents[i].namespace, r->parents[i].name))
			return true;
	return false;
}

static bool route_backend_in(const struct gapi_route *r, const struct strmap *set)
{
	for (size_t i = 0; i < r->nr_rules; i++)
		for (size_t j = 0; j < r->rules[i].nr_backends; j++)
			if (in_set(set, r->rules[i].backends[j].namespace,
				   r->rules[i].backends[j].name))
				return true;
	return false;
}

static int view_service(struct model *view, const struct model *m, const char *ns,
			const char *name)
{
	const struct k8s_service *svc = model_service(m, ns, name);
	const struct model_slices *slices;
	int ret;

	if (!svc)
		return 0;
	ret = model_view_add(view, MODEL_SERVICE, (void *)svc);
	slices = model_service_slices(m, ns, name);
	for (size_t i = 0; !ret && slices && i < slices->nr; i++)
		ret = model_view_add(view, MODEL_ENDPOINT_SLICE, slices->items[i]);
	return ret;
}

/* D grows by the parents of routes into it; the view gets what D's ports need. */
static int build_view(struct pl *pl, struct model *view)
{
	const struct model *m = &pl->m;
	struct strmap_slot *slot;
	int ret = 0;

	for (int k = 0; k < ROUTE_KIND_COUNT && !ret; k++)
		for (size_t i = 0; i < m->routes[k].nr && !ret; i++) {
			const struct gapi_route *r = m->routes[k].items[i];

			if (!route_backend_in(r, &pl->dirty))
				continue;
			for (size_t p = 0; p < r->nr_parents && !ret; p++)
				ret = mark(pl, r->parents[p].namespace, r->parents[p].name);
		}
	for (size_t i = 0; i < m->namespaces.nr && !ret; i++)
		ret = model_view_add(view, MODEL_NAMESPACE, m->namespaces.items[i]);
	strmap_for_each(&pl->dirty, slot) {
		const char *sep = strchr(slot->key, '/');
		char ns[MODEL_KEY_MAX];

		if (ret || !sep)
			continue;
		memcpy(ns, slot->key, (size_t)(sep - slot->key));
		ns[sep - slot->key] = 0;
		ret = view_service(view, m, ns, sep + 1);
	}
	for (int k = 0; k < ROUTE_KIND_COUNT && !ret; k++)
		for (size_t i = 0; i < m->routes[k].nr && !ret; i++) {
			struct gapi_route *r = m->routes[k].items[i];

			if (!route_parent_in(r, &pl->dirty))
				continue;
			ret = model_view_add(view, MODEL_ROUTE, r);
			for (size_t a = 0; a < r->nr_rules && !ret; a++)
				for (size_t b = 0; b < r->rules[a].nr_backends && !ret; b++)
					ret = view_service(view, m, r->rules[a].backends[b].namespace,
							   r->rules[a].backends[b].name);
		}
	return ret;
}

/* ---- merging the view's entries into the image ----------------------------- */

/* Index of id in a table sorted by id (entries of size bytes, id first), or -1. */
static long find_id(const void *base, size_t nr, size_t size, uint64_t id)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t v = *(const uint64_t *)((const char *)base + mid * size);

		if (v == id)
			return (long)mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

#define FIND(img, table, id) \
	find_id((img)->table, (img)->nr_##table, sizeof((img)->table[0]), (id))

static const char *intern(struct img *img, const char *s, int *err)
{
	const char *r;

	if (!s)
		return NULL;
	r = strmap_intern(&img->strings, s);
	if (!r)
		*err = -ENOMEM;
	return r;
}

/*
 * Merge two tables sorted by id into a new one: a's entries where keep_a,
 * then b's where keep_b (b wins a tie); what is not kept is left in place
 * for the caller to free. Entries are moved (shallow copies).
 */
static int merge_sorted(void **out, size_t *nr_out, const void *a, size_t nr_a,
			const bool *keep_a, const void *b, size_t nr_b, const bool *keep_b,
			size_t size, bool *took_a)
{
	char *o = malloc((nr_a + nr_b + 1) * size);
	size_t i = 0, j = 0, n = 0;

	if (!o)
		return -ENOMEM;
	for (;;) {
		while (i < nr_a && !keep_a[i])
			i++;
		while (j < nr_b && !keep_b[j])
			j++;
		if (i >= nr_a && j >= nr_b)
			break;
		uint64_t ia = i < nr_a ? *(const uint64_t *)((const char *)a + i * size) : UINT64_MAX;
		uint64_t ib = j < nr_b ? *(const uint64_t *)((const char *)b + j * size) : UINT64_MAX;

		if (j >= nr_b || (i < nr_a && ia < ib)) {
			memcpy(o + n++ * size, (const char *)a + i * size, size);
			took_a[i++] = true;
		} else {
			if (i < nr_a && ia == ib)
				i++;	/* b replaces it; not taken: the caller frees it */
			memcpy(o + n++ * size, (const char *)b + j++ * size, size);
		}
	}
	*out = o;
	*nr_out = n;
	return 0;
}

struct merge {
	struct img *img, *part;
	const struct strmap *d;
	/* reachable from the merged frontends, per table of img (old) and part (new) */
	bool *sel_old, *sel_new, *rt_old, *rt_new, *be_old, *be_new, *ep_old, *ep_new;
};

static bool fe_in_d(const struct strmap *d, const struct img_frontend *f)
{
	return in_set(d, f->svc_namespace, f->svc_name);
}

/* Mark a backend and its endpoint set; the view's version wins. */
static void mark_backend(struct merge *mg, uint64_t id)
{
	long i = FIND(mg->part, backends, id);
	const struct img_backend *b;
	long e;

	if (i >= 0) {
		mg->be_new[i] = true;
		b = &mg->part->backends[i];
		e = b->endpoint_set ? FIND(mg->part, endpoint_sets, b->endpoint_set) : -1;
		if (e >= 0) {
			mg->ep_new[e] = true;
			return;
		}
		/* An unchanged set the view shares with the old image. */
		e = b->endpoint_set ? FIND(mg->img, endpoint_sets, b->endpoint_set) : -1;
		if (e >= 0)
			mg->ep_old[e] = true;
		return;
	}
	i = FIND(mg->img, backends, id);
	if (i < 0)
		return;
	mg->be_old[i] = true;
	b = &mg->img->backends[i];
	e = b->endpoint_set ? FIND(mg->img, endpoint_sets, b->endpoint_set) : -1;
	if (e >= 0)
		mg->ep_old[e] = true;
}

static void mark_selector(struct merge *mg, uint64_t id)
{
	const struct img_selector *s = NULL;
	long i;

	if (!id)
		return;
	i = FIND(mg->part, selectors, id);
	if (i >= 0) {
		mg->sel_new[i] = true;
		s = &mg->part->selectors[i];
	} else if ((i = FIND(mg->img, selectors, id)) >= 0) {
		mg->sel_old[i] = true;
		s = &mg->img->selectors[i];
	}
	for (size_t j = 0; s && j < s->nr; j++)
		mark_backend(mg, s->items[j].backend);
}

static void mark_rule_table(struct merge *mg, uint64_t id)
{
	const struct img_rule_table *t = NULL;
	long i;

	if (!id)
		return;
	i = FIND(mg->part, rule_tables, id);
	if (i >= 0) {
		mg->rt_new[i] = true;
		t = &mg->part->rule_tables[i];
	} else if ((i = FIND(mg->img, rule_tables, id)) >= 0) {
		mg->rt_old[i] = true;
		t = &mg->img->rule_tables[i];
	}
	for (size_t j = 0; t && j < t->nr; j++)
		mark_selector(mg, t->items[j].selector);
}

static void mark_frontend(struct merge *mg, const struct img_frontend *f)
{
	for (size_t c = 0; c < f->nr_classes; c++) {
		mark_selector(mg, f->classes[c].l4_selector);
		mark_rule_table(mg, f->classes[c].rule_table);
	}
}

/* Strings of the view's entries move into img's pool (part is freed after). */
static int reintern(struct merge *mg, bool *fe_new)
{
	struct img *img = mg->img, *p = mg->part;
	int err = 0;

	for (size_t i = 0; i < p->nr_frontends; i++) {
		struct img_frontend *f = &p->frontends[i];

		if (!fe_new[i])
			continue;
		f->svc_namespace = intern(img, f->svc_namespace, &err);
		f->svc_name = intern(img, f->svc_name, &err);
		f->port_name = intern(img, f->port_name, &err);
		for (size_t c = 0; c < f->nr_classes; c++) {
			f->classes[c].route_namespace = intern(img, f->classes[c].route_namespace, &err);
			f->classes[c].route_name = intern(img, f->classes[c].route_name, &err);
		}
	}
	for (size_t i = 0; i < p->nr_rule_tables; i++)
		for (size_t j = 0; mg->rt_new[i] && j < p->rule_tables[i].nr; j++) {
			struct img_rule *r = &p->rule_tables[i].items[j];

			r->route_namespace = intern(img, r->route_namespace, &err);
			r->route_name = intern(img, r->route_name, &err);
			r->match = intern(img, r->match, &err);
		}
	for (size_t i = 0; i < p->nr_backends; i++)
		if (mg->be_new[i]) {
			p->backends[i].namespace = intern(img, p->backends[i].namespace, &err);
			p->backends[i].name = intern(img, p->backends[i].name, &err);
		}
	return err;
}

static bool *bools(size_t n)
{
	return calloc(n + 1, sizeof(bool));
}

/*
 * Merge one table: old entries kept where marked, new ones where marked
 * (new wins on equal ids); what is dropped is freed with free_items.
 */
#define MERGE_TABLE(mg, table, keep_old, keep_new, free_items)			\
({										\
	struct img *_i = (mg)->img, *_p = (mg)->part;				\
	bool *_took = bools(_i->nr_##table);					\
	void *_out = NULL;							\
	size_t _n = 0;								\
	int _e = _took ? merge_sorted(&_out, &_n, _i->table, _i->nr_##table,	\
				      keep_old, _p->table, _p->nr_##table,	\
				      keep_new, sizeof(_i->table[0]), _took) :	\
			 -ENOMEM;						\
	if (!_e) {								\
		for (size_t _k = 0; _k < _i->nr_##table; _k++)			\
			if (!_took[_k])						\
				free_items(&_i->table[_k]);			\
		for (size_t _k = 0; _k < _p->nr_##table; _k++)			\
			if (keep_new[_k])					\
				(void)memset(&_p->table[_k], 0, sizeof(_p->table[0])); \
		free(_i->table);						\
		_i->table = _out;						\
		_i->nr_##table = _n;						\
	}									\
	free(_took);								\
	_e;									\
})

static void free_fe(struct img_frontend *f) { free(f->classes); }
static void free_sel(struct img_selector *s) { free(s->items); }
static void free_rt(struct img_rule_table *t) { free(t->items); }
static void free_be(struct img_backend *b) { (void)b; }
static void free_ep(struct img_endpoint_set *s) { free(s->items); }

/*
 * -EAGAIN: the view cannot decide (a namespace id or a ClusterIP:port it
 * would assign differently): translate everything instead.
 */
/* (frontend, endpoint) pairs of D's frontends that the view's image no longer has. */
static int removed_pairs(const struct img *img, const bool *fe_keep, const struct img *part,
			 struct img_reach **rm, size_t *nr)
{
	struct img old = *img;
	size_t n = 0;
	int ret;

	old.frontends = calloc(img->nr_frontends + 1, sizeof(*old.frontends));
	if (!old.frontends)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_frontends; i++)
		if (!fe_keep[i])
			old.frontends[n++] = img->frontends[i];
	old.nr_frontends = n;
	/* The view's extra frontends (backend-only Services) only add pairs. */
	ret = img_removed_endpoints(&old, part, rm, nr);
	free(old.frontends);
	return ret;
}

static int merge(struct img *img, struct img *part, const struct strmap *d,
		 struct img_reach **rm, size_t *nr_rm)
{
	struct merge mg = { .img = img, .part = part, .d = d };
	bool *fe_old = bools(img->nr_frontends), *fe_new = bools(part->nr_frontends);
	int err = 0;

	mg.sel_old = bools(img->nr_selectors);
	mg.sel_new = bools(part->nr_selectors);
	mg.rt_old = bools(img->nr_rule_tables);
	mg.rt_new = bools(part->nr_rule_tables);
	mg.be_old = bools(img->nr_backends);
	mg.be_new = bools(part->nr_backends);
	mg.ep_old = bools(img->nr_endpoint_sets);
	mg.ep_new = bools(part->nr_endpoint_sets);
	if (!fe_old || !fe_new || !mg.sel_old || !mg.sel_new || !mg.rt_old || !mg.rt_new ||
	    !mg.be_old || !mg.be_new || !mg.ep_old || !mg.ep_new) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < part->nr_namespaces && !err; i++)
		if (img_ns_id(img, part->namespaces[i].name) != part->namespaces[i].id)
			err = -EAGAIN;
	for (size_t i = 0; i < img->nr_frontends; i++)
		fe_old[i] = !fe_in_d(d, &img->frontends[i]);
	for (size_t i = 0; i < part->nr_frontends && !err; i++) {
		long o;

		if (!fe_in_d(d, &part->frontends[i]))
			continue;
		o = FIND(img, frontends, part->frontends[i].id);
		if (o >= 0 && fe_old[o])
			err = -EAGAIN;	/* a Service outside D has this ClusterIP:port */
		fe_new[i] = true;
	}
	if (err)
		goto out;
	for (size_t i = 0; i < img->nr_frontends; i++)
		if (fe_old[i])
			mark_frontend(&mg, &img->frontends[i]);
	for (size_t i = 0; i < part->nr_frontends; i++)
		if (fe_new[i])
			mark_frontend(&mg, &part->frontends[i]);
	/* Equal ids in both tables: the view's entry is taken (merge_sorted). */
	err = removed_pairs(img, fe_old, part, rm, nr_rm);
	if (!err)
		err = reintern(&mg, fe_new);
	if (!err)
		err = MERGE_TABLE(&mg, frontends, fe_old, fe_new, free_fe);
	if (!err)
		err = MERGE_TABLE(&mg, selectors, mg.sel_old, mg.sel_new, free_sel);
	if (!err)
		err = MERGE_TABLE(&mg, rule_tables, mg.rt_old, mg.rt_new, free_rt);
	if (!err)
		err = MERGE_TABLE(&mg, backends, mg.be_old, mg.be_new, free_be);
	if (!err)
		err = MERGE_TABLE(&mg, endpoint_sets, mg.ep_old, mg.ep_new, free_ep);
out:
	free(fe_old);
	free(fe_new);
	free(mg.sel_old);
	free(mg.sel_new);
	free(mg.rt_old);
	free(mg.rt_new);
	free(mg.be_old);
	free(mg.be_new);
	free(mg.ep_old);
	free(mg.ep_new);
	return err;
}

/* ---- commits ---------------------------------------------------------------- */

static int build_full(struct pl *pl, struct img *out)
{
	struct diag dg = { 0 };
	struct tr_result res;
	int ret;

	ret = translate_opts(&pl->m, &pl->o.tr, &dg, &res);
	if (!ret) {
		ret = img_build_opts(&pl->m, &res, &pl->o.img, out);
		tr_result_free(&res);
	}
	diag_free(&dg);
	return ret;
}

static int build_part(struct pl *pl, size_t *services)
{
	struct model view;
	struct diag dg = { 0 };
	struct tr_result res;
	struct img part;
	int ret;

	model_init(&view);
	ret = build_view(pl, &view);
	*services = view.services.nr;
	if (!ret)
		ret = translate_opts(&view, &pl->o.tr, &dg, &res);
	if (!ret) {
		ret = img_build_opts(&view, &res, &pl->o.img, &part);
		tr_result_free(&res);
		if (!ret) {
			ret = merge(&pl->img, &part, &pl->dirty, &pl->removed, &pl->nr_removed);
			img_free(&part);
		}
	}
	diag_free(&dg);
	model_view_free(&view);
	return ret;
}

/* The image of the model after the events: -EAGAIN never escapes. */
static int build(struct pl *pl, struct pl_stats *st)
{
	struct img img;
	int ret;

	if (pl->have_img && !pl->full && pl->m.services.nr <= TR_MAX_SERVICES) {
		ret = pl->dirty.nr ? build_part(pl, &st->services) : 0;
		if (!ret && pl->pods_dirty)
			ret = img_rebuild_pods(&pl->img, &pl->m);
		if (ret != -EAGAIN) {
			if (ret) {
				/* The image is half merged: rebuild it whole. */
				img_free(&pl->img);
				pl->have_img = false;
			}
			return ret;
		}
	}
	st->full = true;
	st->services = pl->m.services.nr;
	ret = count_namespaces(pl);
	if (!ret)
		ret = build_full(pl, &img);
	if (ret)
		return ret;
	if (pl->have_img) {
		free(pl->removed);
		pl->removed = NULL;
		pl->nr_removed = 0;
		ret = img_removed_endpoints(&pl->img, &img, &pl->removed, &pl->nr_removed);
		img_free(&pl->img);
		if (ret)
			pl->removed = NULL, pl->nr_removed = 0;	/* not fatal: nothing released */
		ret = 0;
	}
	pl->img = img;
	pl->have_img = true;
	return 0;
}

int pl_commit(struct pl *pl, struct pl_stats *stats)
{
	struct pl_stats dummy;
	struct pl_stats *st = stats ? stats : &dummy;
	double t0 = now_ms();
	int ret;

	memset(st, 0, sizeof(*st));
	free(pl->removed);
	pl->removed = NULL;
	pl->nr_removed = 0;
	if (!pl_pending(pl))
		return 0;
	ret = build(pl, st);
	st->translate_ms = now_ms() - t0;
	if (ret)
		return ret;	/* events kept: the next commit tries again */
	strmap_free(&pl->dirty);
	pl->full = pl->pods_dirty = false;
	if (!pl->dp) {
		pl->apply_failed = false;
		return 0;
	}
	t0 = now_ms();
	/* Read the kernel once; from then on applies read the mirror. */
	if (!dp_mirror_on(pl->dp) && dp_mirror_load(pl->dp))
		pr_warn("control plane: no map mirror, every apply reads the kernel");
	ret = ia_apply(pl->dp, &pl->img, &pl->o.ia, &st->apply);
	st->apply_ms = now_ms() - t0;
	st->frontends_changed = st->apply.frontends_flipped + st->apply.frontends_removed;
	pl->apply_failed = ret != 0;
	return ret;
}

int pl_resync(struct pl *pl, bool full, struct ia_stats *stats)
{
	struct ia_opts o = pl->o.ia;
	struct pl_stats st;
	int ret;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!pl->have_img || pl_pending(pl)) {
		ret = pl_commit(pl, &st);
		if (stats)
			*stats = st.apply;
		return ret;
	}
	if (!pl->dp)
		return 0;
	/* The audit: what the kernel holds against what we wrote; drift is repaired below. */
	if (full) {
		size_t drift = 0;

		ret = dp_mirror_audit(pl->dp, &drift);
		if (ret)
			pr_warn("control plane: map mirror audit: %s", strerror(-ret));
		pl->drift += drift;
	}
	o.full = full;
	ret = ia_apply(pl->dp, &pl->img, &o, stats);
	pl->apply_failed = ret != 0;
	return ret;
}

/* ---- lifetime ---------------------------------------------------------------- */

int pl_new(struct dp *dp, const struct pl_opts *opts, struct pl **out)
{
	struct pl *pl = calloc(1, sizeof(*pl));

	if (!pl)
		return -ENOMEM;
	pl->dp = dp;
	if (opts)
		pl->o = *opts;
	model_init(&pl->m);
	pl->full = true;
	*out = pl;
	return 0;
}

void pl_replace(struct pl *pl, struct model *m)
{
	model_free(&pl->m);
	pl->m = *m;
	model_init(m);
	strmap_free(&pl->dirty);
	pl->full = true;
	pl->pods_dirty = false;
	if (count_namespaces(pl))
		strmap_free(&pl->ns_refs);	/* recounted at the next replace; full anyway */
}

uint64_t pl_drift(const struct pl *pl)
{
	return pl->drift;
}

void pl_set_ia_opts(struct pl *pl, const struct ia_opts *o)
{
	pl->o.ia = *o;
}

void pl_removed_endpoints(const struct pl *pl, const struct img_reach **out, size_t *nr)
{
	*out = pl->removed;
	*nr = pl->nr_removed;
}

const struct model *pl_model(const struct pl *pl)
{
	return &pl->m;
}

const struct img *pl_image(const struct pl *pl)
{
	return pl->have_img ? &pl->img : NULL;
}

void pl_free(struct pl *pl)
{
	if (!pl)
		return;
	model_free(&pl->m);
	if (pl->have_img)
		img_free(&pl->img);
	strmap_free(&pl->dirty);
	strmap_free(&pl->ns_refs);
	free(pl->removed);
	free(pl);
}
