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
#include "image_khttp.h"
#include "pipeline.h"

/* id -> count, open addressing with backward-shift deletion. */
struct u64map {
	uint64_t *keys;		/* 0: empty (no image id is 0) */
	uint32_t *vals;
	size_t cap, nr;
};

/*
 * How many image entries name each selector, rule table, backend and
 * endpoint set (frontend classes, rule table rules, selector items,
 * backends): an entry is in the image exactly while it is named, as in a
 * full build, so a commit drops what its count says nothing names.
 */
struct refs {
	struct u64map sel, rt, be, ep;
};

/*
 * D while it is small: most commits touch a few Services, and asking "is
 * this object's Service in D?" of every route and frontend of the cluster
 * then compares a few names instead of building and hashing a key each.
 */
#define D_SMALL 16
struct dsmall {
	size_t nr;		/* > D_SMALL: too many, ask the map */
	struct {
		char *key;	/* "ns/name" */
		const char *name;	/* in key */
		size_t ns_len;
	} it[D_SMALL];
};

struct pl {
	struct dp *dp;
	struct pl_opts o;
	struct model m;
	struct img img;
	bool have_img;		/* img is the model's image (applied or not) */
	bool full;		/* the next commit translates everything */
	bool pods_dirty;
	bool apply_failed;	/* the kernel may lag img: apply again */
	bool walk_next;		/* the next commit walks the pod cgroups (a resync asked) */
	struct strmap dirty;	/* "ns/name" of Services the events touched */
	struct dsmall dsmall;	/* the same while it is small */
	struct strmap ns_refs;	/* namespace -> objects naming it (uintptr_t) */
	struct img_reach *removed;	/* by the last commit's image */
	size_t nr_removed;
	uint64_t drift;		/* kernel entries the audits found changed by others */
	struct refs refs;	/* of img */
	bool refs_ok;		/* refs counts img (else: the next commit is full) */
	size_t unretired;	/* entries written by commits that deferred their retire */
	struct ia_state *ia_state;	/* what the last apply left (image_apply.h) */
	/* This commit's change set for the apply (pl_delta_*): valid after a merge */
	struct pl_delta {
		bool valid;
		uint64_t *fes, *old_sels;
		size_t nr_fes, nr_old_sels, cap_fes, cap_old_sels;
		struct gammad_fe_key *gone;
		size_t nr_gone, cap_gone;
	} delta;
	/* the engine's tables (pl_tables_get) */
	struct pl_chunk *chunk;		/* the translation the build just made, for the next tables */
	struct pl_tables *tables;	/* of img; NULL before the first commit */
	struct pl_tables *all_tables;	/* every one not freed yet, tables included */
	uint64_t gen;			/* tables made so far */
	struct pl_retired *retired;	/* objects the model let go, kept for older tables */
	size_t nr_retired, cap_retired;
};

/* One build's translation (of a view, or of everything): what tables' ports point into. */
struct pl_chunk {
	size_t refs;			/* tables naming it (the pipeline's thread only) */
	uint64_t gen;			/* of the first tables that have its ports */
	uint64_t mark;
	size_t live;			/* ports of it the newest tables have */
	uint32_t *port_refs;		/* per port of res: tables that have it */
	struct tr_result res;
};

/*
 * A chunk stays while one of its ports is live: after many commits most of
 * a chunk may be ports translated again since (or ports of backend-only
 * Services a view needed). A chunk whose dead ports outnumber its live ones
 * (and are at least PL_COMPACT_MIN) has its live Services translated again
 * by the next commits, at most PL_COMPACT_MAX Services each, and all of
 * them by a full resync, so the memory held stays near twice the tables'
 * own (a burst of large commits may hold more until the resync).
 */
#define PL_COMPACT_MIN 256
#define PL_COMPACT_MAX 64

/*
 * The translation of every Service port of an image: each port's tr_port
 * copied from the chunk of the build that last translated its Service,
 * everything below it (classes, rules, endpoints) shared with that chunk.
 */
struct pl_tables {
	int refs;			/* atomic: the pipeline's while current, holders' */
	uint64_t gen;
	struct tr_result res;		/* ports only */
	struct pl_chunk **port_chunk;	/* per port of res */
	uint32_t *port_idx;		/* per port of res: its index in its chunk */
	struct pl_chunk **chunks;	/* the distinct ones */
	size_t nr_chunks;
	struct pl_tables *next;		/* pl->all_tables */
};

/*
 * An object the model replaced or deleted: tables up to gen may point into
 * it, so it is freed once they are all released.
 */
struct pl_retired {
	int kind;
	void *obj;
	uint64_t gen;
};

/*
 * Commits leave what they made unreachable to the next retire walk (a full
 * resync) until this many entries were written: the garbage stays bounded.
 */
#define PL_RETIRE_AFTER 4096

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- which Services an event touches -------------------------------------- */

static void dirty_free(struct pl *pl)
{
	strmap_free(&pl->dirty);
	for (size_t i = 0; pl->dsmall.nr <= D_SMALL && i < pl->dsmall.nr; i++)
		free(pl->dsmall.it[i].key);
	pl->dsmall.nr = 0;
}

static int mark(struct pl *pl, const char *ns, const char *name)
{
	struct dsmall *d = &pl->dsmall;
	char key[MODEL_KEY_MAX];
	int ret;

	if (!name)
		return 0;
	ret = strmap_put(&pl->dirty, model_key(key, ns, name), pl, NULL);
	if (ret)
		return ret == -EEXIST ? 0 : ret;
	if (d->nr < D_SMALL) {
		char *k = strdup(key);
		char *sep = k ? strchr(k, '/') : NULL;

		if (!sep) {
			free(k);
			for (size_t i = 0; i < d->nr; i++)
				free(d->it[i].key);
			d->nr = D_SMALL + 1;	/* the map answers */
			return 0;
		}
		d->it[d->nr].key = k;
		d->it[d->nr].name = sep + 1;
		d->it[d->nr++].ns_len = (size_t)(sep - k);
	} else if (d->nr == D_SMALL) {
		for (size_t i = 0; i < D_SMALL; i++)
			free(d->it[i].key);
		d->nr = D_SMALL + 1;	/* the map answers from here on */
	}
	return 0;
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
	/* A full translation is due anyway (the first load): only the model changes. */
	if (pl->full) {
		ret = model_apply_event(&pl->m, ev, dg);
		return ret;
	}
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

/* Is Service ns/name in D? */
static bool in_d(const struct pl *pl, const char *ns, const char *name)
{
	const struct dsmall *d = &pl->dsmall;
	char key[MODEL_KEY_MAX];

	if (!name)
		return false;
	if (d->nr > D_SMALL || d->nr != pl->dirty.nr)
		return strmap_get(&pl->dirty, model_key(key, ns, name));
	for (size_t i = 0; i < d->nr; i++)
		if (!strcmp(d->it[i].name, name) && !strncmp(d->it[i].key, ns ? ns : "", d->it[i].ns_len) &&
		    (ns ? ns : "")[d->it[i].ns_len] == 0)
			return true;
	return false;
}

static bool route_parent_in(const struct gapi_route *r, const struct pl *pl)
{
	for (size_t i = 0; i < r->nr_parents; i++)
		if (in_d(pl, r->parents[i].namespace, r->parents[i].name))
			return true;
	return false;
}

static bool route_backend_in(const struct gapi_route *r, const struct pl *pl)
{
	for (size_t i = 0; i < r->nr_rules; i++)
		for (size_t j = 0; j < r->rules[i].nr_backends; j++)
			if (in_d(pl, r->rules[i].backends[j].namespace,
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

			if (!route_backend_in(r, pl))
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

			if (!route_parent_in(r, pl))
				continue;
			ret = model_view_add(view, MODEL_ROUTE, r);
			for (size_t a = 0; a < r->nr_rules && !ret; a++)
				for (size_t b = 0; b < r->rules[a].nr_backends && !ret; b++)
					ret = view_service(view, m, r->rules[a].backends[b].namespace,
							   r->rules[a].backends[b].name);
		}
	return ret;
}


/* ---- reference counts of the image's entries ------------------------------- */

static size_t u64_home(const struct u64map *m, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k & (m->cap - 1);
}

static size_t u64_find(const struct u64map *m, uint64_t k)
{
	size_t i = u64_home(m, k);

	while (m->keys[i] && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int u64_grow(struct u64map *m)
{
	struct u64map n = { .cap = m->cap ? m->cap * 2 : 1024 };

	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i]) {
			size_t j = u64_find(&n, m->keys[i]);

			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
		}
	n.nr = m->nr;
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

static uint32_t u64_get(const struct u64map *m, uint64_t k)
{
	size_t i;

	if (!m->cap || !k)
		return 0;
	i = u64_find(m, k);
	return m->keys[i] ? m->vals[i] : 0;
}

/* Count k up (delta 1) or down (-1); *now is the new count. */
static int u64_add(struct u64map *m, uint64_t k, int delta, uint32_t *now)
{
	size_t i, j, mask;

	if ((m->nr + 1) * 10 > m->cap * 7 && u64_grow(m))
		return -ENOMEM;
	i = u64_find(m, k);
	if (!m->keys[i]) {
		if (delta < 0) {
			*now = 0;
			return 0;
		}
		m->keys[i] = k;
		m->vals[i] = 0;
		m->nr++;
	}
	m->vals[i] = (uint32_t)((int64_t)m->vals[i] + delta);
	*now = m->vals[i];
	if (*now)
		return 0;
	/* Zero: the slot goes (backward shift). */
	mask = m->cap - 1;
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		size_t h = u64_home(m, m->keys[j]);

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->nr--;
	return 0;
}

static void u64_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static void refs_free(struct refs *r)
{
	u64_free(&r->sel);
	u64_free(&r->rt);
	u64_free(&r->be);
	u64_free(&r->ep);
}

/* ---- merging the view's entries into the image ----------------------------- */

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

struct idlist {
	uint64_t *ids;
	size_t nr, cap;
};

static int idlist_add(struct idlist *l, uint64_t id)
{
	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *n = realloc(l->ids, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->ids = n;
		l->cap = cap;
	}
	l->ids[l->nr++] = id;
	return 0;
}

/* Append one item of size to a growing array. */
static int grow_add(void **arr, size_t *nr, size_t *cap, size_t size, const void *item)
{
	if (*nr == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		void *a = realloc(*arr, n * size);

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = n;
	}
	memcpy((char *)*arr + *nr * size, item, size);
	(*nr)++;
	return 0;
}

static void delta_clear(struct pl_delta *d)
{
	d->valid = false;
	d->nr_fes = d->nr_old_sels = d->nr_gone = 0;
}

static void delta_free(struct pl_delta *d)
{
	free(d->fes);
	free(d->old_sels);
	free(d->gone);
	memset(d, 0, sizeof(*d));
}

/*
 * The apply's change set of a merge (image_apply.h ia_delta): D's frontends
 * old and new, the selectors the old ones named, and the keys of those gone.
 */
static int delta_note(struct pl_delta *d, const struct img *img, const bool *fe_old,
		      const struct img *part, const bool *fe_new)
{
	int err = 0;

	for (size_t i = 0; i < img->nr_frontends && !err; i++) {
		const struct img_frontend *f = &img->frontends[i];
		long n;

		if (fe_old[i])
			continue;
		err = grow_add((void **)&d->fes, &d->nr_fes, &d->cap_fes, sizeof(f->id), &f->id);
		for (size_t c = 0; c < f->nr_classes && !err; c++)
			err = grow_add((void **)&d->old_sels, &d->nr_old_sels, &d->cap_old_sels,
				       sizeof(uint64_t), &f->classes[c].l4_selector);
		n = IMG_INDEX(part, frontends, f->id);
		if (!err && (n < 0 || !fe_new[n])) {
			struct gammad_fe_key key;

			dp_fe_key(&key, f->addr.family, f->addr.addr, f->port, f->protocol);
			err = grow_add((void **)&d->gone, &d->nr_gone, &d->cap_gone, sizeof(key), &key);
		}
	}
	for (size_t i = 0; i < part->nr_frontends && !err; i++)
		if (fe_new[i])
			err = grow_add((void **)&d->fes, &d->nr_fes, &d->cap_fes, sizeof(uint64_t),
				       &part->frontends[i].id);
	return err;
}

struct merge {
	struct img *img, *part;		/* part NULL: counting a whole image */
	const struct pl *d;
	struct refs *refs;
	struct idlist gone_sel, gone_rt, gone_be, gone_ep;	/* counts fell to 0 */
	int err;
};

static bool fe_in_d(const struct pl *d, const struct img_frontend *f)
{
	return in_d(d, f->svc_namespace, f->svc_name);
}

/* The entry as the merged image will have it: the view's when it has one. */
#define CURRENT(mg, table, id)								\
({											\
	long _i = (mg)->part ? IMG_INDEX((mg)->part, table, id) : -1;				\
	_i >= 0 ? &(mg)->part->table[_i] :							\
		  ((_i = IMG_INDEX((mg)->img, table, id)) >= 0 ? &(mg)->img->table[_i] : NULL);	\
})

/*
 * Count one more (+1) or one fewer (-1) name of an entry; the first name
 * counts the entry's own names, the last one uncounts them and drops it.
 */
static bool ref(struct merge *mg, struct u64map *m, struct idlist *gone, uint64_t id,
		int delta)
{
	uint32_t now;

	if (!id || mg->err)
		return false;
	mg->err = u64_add(m, id, delta, &now);
	if (mg->err)
		return false;
	if (delta < 0 && !now)
		mg->err = idlist_add(gone, id);
	return !mg->err && now == (delta > 0 ? 1u : 0u);
}

static void ref_ep(struct merge *mg, uint64_t id, int delta)
{
	ref(mg, &mg->refs->ep, &mg->gone_ep, id, delta);
}

static void ref_be(struct merge *mg, uint64_t id, int delta)
{
	const struct img_backend *b;

	if (!ref(mg, &mg->refs->be, &mg->gone_be, id, delta))
		return;
	b = CURRENT(mg, backends, id);
	if (b)
		ref_ep(mg, b->endpoint_set, delta);
}

static void ref_sel(struct merge *mg, uint64_t id, int delta)
{
	const struct img_selector *s;

	if (!ref(mg, &mg->refs->sel, &mg->gone_sel, id, delta))
		return;
	s = CURRENT(mg, selectors, id);
	for (size_t j = 0; s && j < s->nr; j++)
		ref_be(mg, s->items[j].backend, delta);
}

static void ref_rt(struct merge *mg, uint64_t id, int delta)
{
	const struct img_rule_table *t;

	if (!ref(mg, &mg->refs->rt, &mg->gone_rt, id, delta))
		return;
	t = CURRENT(mg, rule_tables, id);
	for (size_t j = 0; t && j < t->nr; j++)
		ref_sel(mg, t->items[j].selector, delta);
}

static void ref_frontend(struct merge *mg, const struct img_frontend *f, int delta)
{
	for (size_t c = 0; c < f->nr_classes; c++) {
		ref_sel(mg, f->classes[c].l4_selector, delta);
		ref_rt(mg, f->classes[c].rule_table, delta);
	}
}

static void merge_free(struct merge *mg)
{
	free(mg->gone_sel.ids);
	free(mg->gone_rt.ids);
	free(mg->gone_be.ids);
	free(mg->gone_ep.ids);
}

/* The counts of a whole image (after a full build). */
static int refs_build(struct refs *r, struct img *img)
{
	struct merge mg = { .img = img, .refs = r };

	refs_free(r);
	for (size_t i = 0; i < img->nr_frontends && !mg.err; i++)
		ref_frontend(&mg, &img->frontends[i], 1);
	merge_free(&mg);
	if (mg.err)
		refs_free(r);
	return mg.err;
}

/* Strings of the view's entries move into img's pool (part is freed after). */
static int reintern(struct merge *mg, const bool *fe_new, const bool *rt_new,
		    const bool *be_new)
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
		for (size_t j = 0; rt_new[i] && j < p->rule_tables[i].nr; j++) {
			struct img_rule *r = &p->rule_tables[i].items[j];

			r->route_namespace = intern(img, r->route_namespace, &err);
			r->route_name = intern(img, r->route_name, &err);
			r->match = intern(img, r->match, &err);
		}
	for (size_t i = 0; i < p->nr_backends; i++)
		if (be_new[i]) {
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

/*
 * Old entries stay unless their count fell to zero and stayed there: an
 * endpoint set one backend leaves and another takes (the empty set, say)
 * passes through zero while the names move.
 */
#define KEEP_OLD(img, table, gone, map, keep)						\
({											\
	for (size_t _k = 0; _k < (img)->nr_##table; _k++)				\
		(keep)[_k] = true;							\
	for (size_t _k = 0; _k < (gone)->nr; _k++) {					\
		long _i = IMG_INDEX(img, table, (gone)->ids[_k]);				\
		if (_i >= 0 && !u64_get(map, (gone)->ids[_k]))				\
			(keep)[_i] = false;						\
	}										\
})

/* View entries come in when counted and new (content ids: equal id, equal content). */
#define KEEP_NEW(img, part, table, map, keep)						\
({											\
	for (size_t _k = 0; _k < (part)->nr_##table; _k++)				\
		(keep)[_k] = u64_get(map, (part)->table[_k].id) &&			\
			     IMG_INDEX(img, table, (part)->table[_k].id) < 0;		\
})

/*
 * -EAGAIN: the view cannot decide (a namespace id or a ClusterIP:port it
 * would assign differently): translate everything instead.
 */
static int merge(struct img *img, struct img *part, const struct pl *d, struct refs *refs,
		 struct img_reach **rm, size_t *nr_rm, struct pl_delta *delta)
{
	struct merge mg = { .img = img, .part = part, .d = d, .refs = refs };
	bool *fe_old = bools(img->nr_frontends), *fe_new = bools(part->nr_frontends);
	bool *sel_old = bools(img->nr_selectors), *sel_new = bools(part->nr_selectors);
	bool *rt_old = bools(img->nr_rule_tables), *rt_new = bools(part->nr_rule_tables);
	bool *be_old = bools(img->nr_backends), *be_new = bools(part->nr_backends);
	bool *ep_old = bools(img->nr_endpoint_sets), *ep_new = bools(part->nr_endpoint_sets);
	int err = 0;

	if (!fe_old || !fe_new || !sel_old || !sel_new || !rt_old || !rt_new || !be_old ||
	    !be_new || !ep_old || !ep_new) {
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
		o = IMG_INDEX(img, frontends, part->frontends[i].id);
		if (o >= 0 && fe_old[o])
			err = -EAGAIN;	/* a Service outside D has this ClusterIP:port */
		fe_new[i] = true;
	}
	if (err)
		goto out;
	err = removed_pairs(img, fe_old, part, rm, nr_rm) ?:
	      delta_note(delta, img, fe_old, part, fe_new);
	if (err)
		goto out;
	/* New names first: what both versions name never drops to zero. */
	for (size_t i = 0; i < part->nr_frontends; i++)
		if (fe_new[i])
			ref_frontend(&mg, &part->frontends[i], 1);
	/* A backend both have, with a new endpoint set: the name moves. */
	for (size_t i = 0; i < part->nr_backends && !mg.err; i++) {
		const struct img_backend *nb = &part->backends[i];
		long o = IMG_INDEX(img, backends, nb->id);

		if (o < 0 || !u64_get(&refs->be, nb->id) ||
		    img->backends[o].endpoint_set == nb->endpoint_set)
			continue;
		ref_ep(&mg, nb->endpoint_set, 1);
		ref_ep(&mg, img->backends[o].endpoint_set, -1);
	}
	for (size_t i = 0; i < img->nr_frontends; i++)
		if (!fe_old[i])
			ref_frontend(&mg, &img->frontends[i], -1);
	err = mg.err;
	if (err) {
		/* The counts are half updated: the caller builds everything again. */
		refs_free(refs);
		goto out;
	}
	KEEP_OLD(img, selectors, &mg.gone_sel, &refs->sel, sel_old);
	KEEP_OLD(img, rule_tables, &mg.gone_rt, &refs->rt, rt_old);
	KEEP_OLD(img, backends, &mg.gone_be, &refs->be, be_old);
	KEEP_OLD(img, endpoint_sets, &mg.gone_ep, &refs->ep, ep_old);
	KEEP_NEW(img, part, selectors, &refs->sel, sel_new);
	KEEP_NEW(img, part, rule_tables, &refs->rt, rt_new);
	KEEP_NEW(img, part, endpoint_sets, &refs->ep, ep_new);
	/* Backends are named by identity: a counted one with new content replaces the old. */
	for (size_t i = 0; i < part->nr_backends; i++) {
		long o = IMG_INDEX(img, backends, part->backends[i].id);

		be_new[i] = u64_get(&refs->be, part->backends[i].id) &&
			    (o < 0 || img->backends[o].hash != part->backends[i].hash);
	}
	err = reintern(&mg, fe_new, rt_new, be_new);
	if (!err)
		err = MERGE_TABLE(&mg, frontends, fe_old, fe_new, free_fe);
	if (!err)
		err = MERGE_TABLE(&mg, selectors, sel_old, sel_new, free_sel);
	if (!err)
		err = MERGE_TABLE(&mg, rule_tables, rt_old, rt_new, free_rt);
	if (!err)
		err = MERGE_TABLE(&mg, backends, be_old, be_new, free_be);
	if (!err)
		err = MERGE_TABLE(&mg, endpoint_sets, ep_old, ep_new, free_ep);
	if (err)
		refs_free(refs);
out:
	merge_free(&mg);
	free(fe_old);
	free(fe_new);
	free(sel_old);
	free(sel_new);
	free(rt_old);
	free(rt_new);
	free(be_old);
	free(be_new);
	free(ep_old);
	free(ep_new);
	return err;
}

/* ---- the engine's tables ------------------------------------------------------ */

static void chunk_free(struct pl_chunk *c)
{
	if (!c)
		return;
	tr_result_free(&c->res);
	free(c->port_refs);
	free(c);
}

static void chunk_drop(struct pl *pl)
{
	if (pl->chunk && !pl->chunk->refs)
		chunk_free(pl->chunk);
	pl->chunk = NULL;
}

/* The build's translation, for tables_make(); res is the chunk's from here on. */
static int chunk_keep(struct pl *pl, struct tr_result *res)
{
	struct pl_chunk *c = calloc(1, sizeof(*c));

	if (!c) {
		tr_result_free(res);
		return -ENOMEM;
	}
	c->res = *res;
	memset(res, 0, sizeof(*res));
	/*
	 * Tables read only ports (and what they point to): statuses come from
	 * a translation of their own (at 10k Services, with 1,000-slice bursts,
	 * the kept chunks' statuses and port indexes were 13 MB).
	 */
	tr_result_drop_statuses(&c->res);
	/*
	 * What each port reaches is freed once no tables have the port: a burst's
	 * chunk held its 3,000 Services' endpoint sets while one port was live
	 * (77 MB at 10k Services after 1,000-slice bursts).
	 */
	c->port_refs = calloc(c->res.nr_ports + 1, sizeof(*c->port_refs));
	if (!c->port_refs || tr_result_track(&c->res)) {
		chunk_free(c);
		return -ENOMEM;
	}
	chunk_drop(pl);
	pl->chunk = c;
	return 0;
}

static bool port_in_d(const struct pl *d, const struct tr_port *p)
{
	return in_d(d, p->svc->meta.namespace, p->svc->meta.name);
}

static int svc_cmp(const char *ns, const char *name, const struct tr_port *p)
{
	int d = strcmp(ns, p->svc->meta.namespace ? p->svc->meta.namespace : "");

	return d ? d : strcmp(name, p->svc->meta.name);
}

/* First port of a at or after Service ns/name (ports are sorted by Service first). */
static size_t svc_lower(const struct tr_result *a, const char *ns, const char *name)
{
	size_t lo = 0, hi = a->nr_ports;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (svc_cmp(ns, name, &a->ports[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Which old ports are D's: a flag per port, found by a binary search per
 * Service of D (D is small next to the tables), not a lookup per port.
 */
static bool *old_in_d(const struct pl *pl, const struct tr_result *a)
{
	bool *in = calloc(a->nr_ports + 1, sizeof(*in));
	struct strmap_slot *slot;

	if (!in)
		return NULL;
	strmap_for_each(&pl->dirty, slot) {
		const char *sep = strchr(slot->key, '/');
		char ns[MODEL_KEY_MAX];
		size_t i;

		if (!sep)
			continue;
		memcpy(ns, slot->key, (size_t)(sep - slot->key));
		ns[sep - slot->key] = 0;
		for (i = svc_lower(a, ns, sep + 1);
		     i < a->nr_ports && !svc_cmp(ns, sep + 1, &a->ports[i]); i++)
			in[i] = true;
	}
	return in;
}

/*
 * tables_make()'s merge for a chunk much smaller than the old tables: each
 * port of the chunk in D finds its place among a's by binary search, a's
 * ports up to it are copied as they are (those in D skipped). Leaves *i,
 * *j past everything it took.
 */
static void tables_merge_sparse(const struct pl *pl, const struct tr_result *a,
				const bool *a_in_d, const struct tr_result *b, bool full,
				struct pl_tables *t, size_t *i, size_t *j, size_t *n)
{
	const struct pl_tables *old = pl->tables;

	for (; *j < b->nr_ports; (*j)++) {
		size_t lo = *i, hi = a->nr_ports;

		if (!full && !port_in_d(pl, &b->ports[*j]))
			continue;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (tr_port_cmp(&a->ports[mid], &b->ports[*j]) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; *i < lo; (*i)++) {
			if (a_in_d[*i])
				continue;
			t->port_chunk[*n] = old->port_chunk[*i];
			t->port_idx[*n] = old->port_idx[*i];
			t->res.ports[(*n)++] = a->ports[*i];
		}
		t->port_chunk[*n] = pl->chunk;
		t->port_idx[*n] = (uint32_t)*j;
		t->res.ports[(*n)++] = b->ports[*j];
	}
}

/*
 * New tables after a build that made pl->chunk: its ports, all of them
 * (full) or D's, merged with the current tables' other ports. The old
 * tables lose the pipeline's reference.
 */
static int tables_make(struct pl *pl, bool full)
{
	struct pl_tables *old = pl->tables, *t;
	struct pl_chunk *c = pl->chunk;
	const struct tr_result *a = old && !full ? &old->res : NULL, *b = &c->res;
	size_t i = 0, j = 0, n = 0, nr_a = a ? a->nr_ports : 0;
	bool *a_in_d = NULL;

	if (a && !(a_in_d = old_in_d(pl, a)))
		return -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t) {
		free(a_in_d);
		return -ENOMEM;
	}
	t->res.ports = malloc((nr_a + b->nr_ports + 1) * sizeof(*t->res.ports));
	t->port_chunk = malloc((nr_a + b->nr_ports + 1) * sizeof(*t->port_chunk));
	t->port_idx = malloc((nr_a + b->nr_ports + 1) * sizeof(*t->port_idx));
	t->chunks = malloc((old && !full ? old->nr_chunks + 1 : 1) * sizeof(*t->chunks));
	if (!t->res.ports || !t->port_chunk || !t->port_idx || !t->chunks) {
		free(a_in_d);
		free(t->res.ports);
		free(t->port_chunk);
		free(t->port_idx);
		free(t->chunks);
		free(t);
		return -ENOMEM;
	}
	t->refs = 1;
	t->gen = ++pl->gen;
	/*
	 * Both sorted: the old ports outside D, and the chunk's in D (or all
	 * of them). A small chunk's ports find their places by binary search
	 * and the old ports between are copied without comparing; a large one
	 * (a burst, a full build) is merged port by port.
	 */
	if (b->nr_ports * 16 < nr_a)
		tables_merge_sparse(pl, a, a_in_d, b, full, t, &i, &j, &n);
	for (;;) {
		while (i < nr_a && a_in_d[i])
			i++;
		while (!full && j < b->nr_ports && !port_in_d(pl, &b->ports[j]))
			j++;
		if (i >= nr_a && j >= b->nr_ports)
			break;
		if (j >= b->nr_ports || (i < nr_a && tr_port_cmp(&a->ports[i], &b->ports[j]) < 0)) {
			t->port_chunk[n] = old->port_chunk[i];
			t->port_idx[n] = old->port_idx[i];
			t->res.ports[n++] = a->ports[i++];
		} else {
			t->port_chunk[n] = c;
			t->port_idx[n] = (uint32_t)j;
			t->res.ports[n++] = b->ports[j++];
		}
	}
	t->res.nr_ports = n;
	c->gen = t->gen;
	free(a_in_d);
	/* The chunks the ports name, each counted once. */
	for (size_t k = 0; k < n; k++) {
		struct pl_chunk *pc = t->port_chunk[k];

		pc->port_refs[t->port_idx[k]]++;
		if (pc->mark == t->gen) {
			pc->live++;
			continue;
		}
		pc->mark = t->gen;
		pc->live = 1;
		pc->refs++;
		t->chunks[t->nr_chunks++] = pc;
	}
	if (c->mark != t->gen) {
		chunk_free(c);	/* none of its ports: D had no port left */
	} else {
		/* The view's ports outside D: no tables read them. */
		for (size_t k = 0; k < b->nr_ports; k++)
			if (!c->port_refs[k])
				tr_result_port_done(&c->res, k);
	}
	pl->chunk = NULL;
	t->next = pl->all_tables;
	pl->all_tables = t;
	pl->tables = t;
	if (old)
		pl_tables_put(old);
	return 0;
}

/* model.retire: older tables may point into obj. */
static void retire(void *ctx, int kind, void *obj)
{
	struct pl *pl = ctx;

	/* Translations point into these kinds only; none before the first tables. */
	if (!pl->gen || (kind != MODEL_SERVICE && kind != MODEL_ENDPOINT_SLICE &&
			 kind != MODEL_ROUTE)) {
		model_object_free(kind, obj);
		return;
	}
	if (pl->nr_retired == pl->cap_retired) {
		size_t cap = pl->cap_retired ? pl->cap_retired * 2 : 64;
		struct pl_retired *n = realloc(pl->retired, cap * sizeof(*n));

		if (!n) {
			/* Never freed rather than freed under a reader. */
			pr_warn("control plane: no memory to keep a replaced object: leaked");
			return;
		}
		pl->retired = n;
		pl->cap_retired = cap;
	}
	pl->retired[pl->nr_retired++] = (struct pl_retired){ kind, obj, pl->gen };
}

/*
 * Free the tables nobody holds, their chunks no tables name, and the
 * objects no live tables can point into. The pipeline's thread only.
 */
static void sweep(struct pl *pl)
{
	struct pl_tables **pp = &pl->all_tables;
	uint64_t min = UINT64_MAX;
	size_t k = 0;

	while (*pp) {
		struct pl_tables *t = *pp;

		if (__atomic_load_n(&t->refs, __ATOMIC_ACQUIRE)) {
			min = t->gen < min ? t->gen : min;
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		/* Ports no tables have any more: what they reach goes before their chunk. */
		for (size_t i = 0; i < t->res.nr_ports; i++) {
			struct pl_chunk *pc = t->port_chunk[i];

			if (!--pc->port_refs[t->port_idx[i]] && pc->refs > 1)
				tr_result_port_done(&pc->res, t->port_idx[i]);
		}
		for (size_t i = 0; i < t->nr_chunks; i++)
			if (!--t->chunks[i]->refs)
				chunk_free(t->chunks[i]);
		free(t->chunks);
		free(t->port_chunk);
		free(t->port_idx);
		free(t->res.ports);
		free(t);
	}
	for (size_t i = 0; i < pl->nr_retired; i++) {
		if (pl->retired[i].gen >= min)
			pl->retired[k++] = pl->retired[i];
		else
			model_object_free(pl->retired[i].kind, pl->retired[i].obj);
	}
	pl->nr_retired = k;
}

static bool chunk_wasteful(const struct pl_chunk *c)
{
	size_t dead = c->res.nr_ports - c->live;

	return dead > c->live && dead >= PL_COMPACT_MIN;
}

/*
 * After a commit: up to max live Services of wasteful chunks for the next
 * one (see PL_COMPACT_MIN); a full resync takes them all.
 */
static void compact(struct pl *pl, size_t max)
{
	const struct pl_tables *t = pl->tables;
	size_t marked = 0;
	bool any = false;

	for (size_t i = 0; t && i < t->nr_chunks && !any; i++)
		any = chunk_wasteful(t->chunks[i]);
	for (size_t i = 0; any && i < t->res.nr_ports && marked < max; i++) {
		const struct tr_port *p = &t->res.ports[i];

		if (!chunk_wasteful(t->port_chunk[i]) ||
		    in_d(pl, p->svc->meta.namespace, p->svc->meta.name))
			continue;
		if (mark(pl, p->svc->meta.namespace, p->svc->meta.name))
			return;	/* no memory: the chunk waits */
		marked++;
	}
}

struct pl_tables *pl_tables_get(struct pl *pl)
{
	if (!pl->tables)
		return NULL;
	__atomic_add_fetch(&pl->tables->refs, 1, __ATOMIC_RELAXED);
	return pl->tables;
}

const struct tr_result *pl_tables_result(const struct pl_tables *t)
{
	return &t->res;
}

uint64_t pl_tables_gen(const struct pl_tables *t)
{
	return t->gen;
}

uint64_t pl_tables_port_gen(const struct pl_tables *t, size_t i)
{
	return t->port_chunk[i]->gen;
}

struct kh_since {
	const struct pl_tables *t;
	uint64_t gen;
};

static bool kh_port_same(const void *ctx, size_t i)
{
	const struct kh_since *k = ctx;

	return pl_tables_port_gen(k->t, i) <= k->gen;
}

int pl_kh_update(struct ia_kh_set *set, uint64_t *gen, const struct img *img,
		 const struct pl_tables *t)
{
	struct kh_since since = { t, *gen };
	int err;

	if (*gen && *gen == t->gen)
		return 0;
	err = ia_kh_rebuild(set, img, pl_tables_result(t), *gen ? kh_port_same : NULL, &since);
	*gen = err ? 0 : t->gen;
	return err;
}

void pl_tables_put(struct pl_tables *t)
{
	if (t)
		__atomic_sub_fetch(&t->refs, 1, __ATOMIC_RELEASE);
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
		if (!ret)
			ret = chunk_keep(pl, &res);
		else
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
		if (!ret) {
			ret = merge(&pl->img, &part, pl, &pl->refs, &pl->removed,
				    &pl->nr_removed, &pl->delta);
			if (ret && ret != -EAGAIN)
				pl->refs_ok = false;
			img_free(&part);
		}
		/* D's ports of it become the engine's, once merged (a fallback translates all). */
		if (!ret)
			ret = chunk_keep(pl, &res);
		else
			tr_result_free(&res);
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

	if (pl->have_img && pl->refs_ok && !pl->full && pl->m.services.nr <= TR_MAX_SERVICES) {
		ret = pl->dirty.nr ? build_part(pl, &st->services) : 0;
		if (!ret && pl->pods_dirty)
			ret = img_rebuild_pods(&pl->img, &pl->m);
		/* The merge noted what changed: the apply may write just that. */
		pl->delta.valid = !ret;
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
	ret = refs_build(&pl->refs, &img);
	pl->refs_ok = !ret;
	if (ret) {
		img_free(&img);
		pl->have_img = false;
		return ret;
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
	bool clients;
	int ret;

	memset(st, 0, sizeof(*st));
	free(pl->removed);
	pl->removed = NULL;
	pl->nr_removed = 0;
	sweep(pl);
	if (!pl_pending(pl))
		return 0;
	delta_clear(&pl->delta);
	clients = pl->pods_dirty || pl->walk_next;
	ret = build(pl, st);
	if (!ret && pl->chunk && (ret = tables_make(pl, st->full))) {
		/* The image is right, the engine's tables are not: all of them next time. */
		pr_warn("control plane: engine tables: %s (the next commit translates all)",
			strerror(-ret));
		chunk_drop(pl);
		ret = 0;
		dirty_free(pl);
		pl->pods_dirty = false;
		pl->full = true;
		goto apply;
	}
	st->translate_ms = now_ms() - t0;
	if (ret)
		return ret;	/* events kept: the next commit tries again */
	dirty_free(pl);
	pl->full = pl->pods_dirty = false;
	compact(pl, PL_COMPACT_MAX);
apply:
	if (!pl->dp) {
		pl->apply_failed = false;
		return 0;
	}
	t0 = now_ms();
	/* Read the kernel once; from then on applies read the mirror. */
	if (!dp_mirror_on(pl->dp) && dp_mirror_load(pl->dp))
		pr_warn("control plane: no map mirror, every apply reads the kernel");
	{
		struct ia_opts o = pl->o.ia;
		/*
		 * Only what the merge changed, unless the image was built whole or
		 * the last apply failed (then what it left undone is unknown).
		 */
		struct ia_delta d = {
			.frontends = pl->delta.fes, .nr_frontends = pl->delta.nr_fes,
			.gone = pl->delta.gone, .nr_gone = pl->delta.nr_gone,
			.old_selectors = pl->delta.old_sels, .nr_old_selectors = pl->delta.nr_old_sels,
			.clients = clients,
		};

		/* Event commits: the retire walk over every map waits (bounded). */
		o.defer_retire = !st->full && pl->unretired < PL_RETIRE_AFTER;
		o.state = pl->ia_state;
		o.delta = !st->full && pl->delta.valid && !pl->apply_failed ? &d : NULL;
		ret = pl->o.before_apply ? pl->o.before_apply(pl->o.ctx, &pl->img, &o) : 0;
		if (!ret)
			ret = ia_apply(pl->dp, &pl->img, &o, &st->apply);
		else
			ia_state_reset(pl->ia_state);	/* not applied: the next apply compares all */
		/* Every pod cgroup walked (a delta without pod changes walks none). */
		st->applied = ret == 0 && st->apply.clients;
		if (st->applied)
			pl->walk_next = false;
		if (o.defer_retire && !o.full)
			pl->unretired += ia_stats_changes(&st->apply);
		else if (!ret)
			pl->unretired = 0;
	}
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
	sweep(pl);
	if (!pl->have_img || pl_pending(pl)) {
		/* A resync walks the pod cgroups (a pod came or went): the commit does. */
		pl->walk_next = true;
		ret = pl_commit(pl, &st);
		if (stats)
			*stats = st.apply;
		/* A full resync audits also after a commit (compact() leaves them pending). */
		if (ret || !full)
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
	o.state = pl->ia_state;		/* no delta: read whole, the state anew */
	ret = pl->o.before_apply ? pl->o.before_apply(pl->o.ctx, &pl->img, &o) : 0;
	if (!ret)
		ret = ia_apply(pl->dp, &pl->img, &o, stats);
	else
		ia_state_reset(pl->ia_state);
	pl->apply_failed = ret != 0;
	if (!ret && full) {
		pl->unretired = 0;
		/* What bursts of large commits left behind, while nothing waits. */
		compact(pl, SIZE_MAX);
		if (pl->dirty.nr)
			ret = pl_commit(pl, &st);
	}
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
	if (ia_state_new(&pl->ia_state)) {
		free(pl);
		return -ENOMEM;
	}
	model_init(&pl->m);
	pl->m.retire = retire;
	pl->m.retire_ctx = pl;
	pl->full = true;
	*out = pl;
	return 0;
}

void pl_replace(struct pl *pl, struct model *m)
{
	struct model_event *evs;
	size_t nr;

	/* Older tables may point into the objects: they retire one by one. */
	if (!model_take_events(&pl->m, &evs, &nr)) {
		for (size_t i = 0; i < nr; i++)
			retire(pl, evs[i].kind, evs[i].obj);
		free(evs);
	} else if (pl->gen) {
		pr_warn("control plane: no memory to keep the replaced model: leaked");
	} else {
		model_free(&pl->m);
	}
	pl->m = *m;
	pl->m.retire = retire;
	pl->m.retire_ctx = pl;
	model_init(m);
	dirty_free(pl);
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
	dirty_free(pl);
	strmap_free(&pl->ns_refs);
	free(pl->removed);
	refs_free(&pl->refs);
	ia_state_free(pl->ia_state);
	delta_free(&pl->delta);
	/* Every holder put its tables (pl_tables_get): all of them go. */
	pl->tables = NULL;
	for (struct pl_tables *t = pl->all_tables; t; t = t->next)
		t->refs = 0;
	sweep(pl);
	chunk_drop(pl);
	for (size_t i = 0; i < pl->nr_retired; i++)
		model_object_free(pl->retired[i].kind, pl->retired[i].obj);
	free(pl->retired);
	free(pl);
}
