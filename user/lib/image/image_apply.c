// SPDX-License-Identifier: Apache-2.0
/* Image -> maps, as a reconcile against the kernel: see image_apply.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "image_apply_int.h"

size_t ia_stats_changes(const struct ia_stats *s)
{
	return s->frontends_flipped + s->frontends_removed + s->selectors_written +
	       s->backends_written + s->endpoint_sets_written + s->cgroups_written +
	       s->local_eps_written + s->pods_written + s->retired + s->kh_tables_written;
}

/* Content hashes are never 0: 0 marks an object being written. */
static uint64_t nonzero(uint64_t h)
{
	return h ? h : 1;
}

static void copy_name(char *dst, size_t len, const char *src, const char *what)
{
	if (!src)
		src = "";
	if (strlen(src) >= len)
		pr_warn("%s: name %s cut to %zu bytes in the object table", what, src, len - 1);
	snprintf(dst, len, "%s", src);
}

static int write_namespaces(struct ia_ctx *c)
{
	for (size_t i = 0; i < c->img->nr_namespaces; i++) {
		const struct img_namespace *ns = &c->img->namespaces[i];
		struct gammad_obj_val v = { .ident = ns->id, .hash = nonzero(hash_str(ns->name)) };
		int err;

		if (ia_known_exact(c, GAMMAD_OBJ_NAMESPACE, v.ident, v.hash))
			continue;
		copy_name(v.name, sizeof(v.name), ns->name, "namespace");
		copy_name(v.namespace, sizeof(v.namespace), ns->name, "namespace");
		err = ia_obj_put(c, GAMMAD_OBJ_NAMESPACE, ns->id, &v);
		if (err) {
			pr_err("namespace %s: %s", ns->name, strerror(-err));
			return err;
		}
	}
	return 0;
}

static int write_endpoint_set(struct ia_ctx *c, const struct img_endpoint_set *s, uint32_t *id)
{
	struct gammad_obj_val v = { .ident = s->id, .hash = nonzero(s->id), .ref = (uint32_t)s->nr };
	const struct ia_known *k = ia_known_exact(c, GAMMAD_OBJ_ENDPOINT_SET, v.ident, v.hash);
	struct gammad_ep_val *eps;
	int err;

	/* An empty set has no entries to find: its object is all there is. */
	if (k && ia_endpoints_present(c, k->id, (uint32_t)s->nr)) {
		*id = k->id;
		return 0;
	}
	eps = calloc(s->nr + 1, sizeof(*eps));
	if (!eps)
		return -ENOMEM;
	for (size_t j = 0; j < s->nr; j++)
		dp_ep(&eps[j], s->items[j].addr.family, s->items[j].addr.addr, s->items[j].port);
	err = ia_id_alloc(c, GAMMAD_OBJ_ENDPOINT_SET, id) ?:
	      ia_obj_begin(c, GAMMAD_OBJ_ENDPOINT_SET, *id, &v) ?:
	      dp_endpoints_write(c->dp, *id, eps, (uint32_t)s->nr) ?:
	      ia_obj_put(c, GAMMAD_OBJ_ENDPOINT_SET, *id, &v);
	free(eps);
	if (!err)
		c->stats->endpoint_sets_written++;
	return err;
}

static int write_endpoint_sets(struct ia_ctx *c)
{
	for (size_t i = 0; i < c->img->nr_endpoint_sets; i++) {
		int err = c->ep_needed[i] ?
			  write_endpoint_set(c, &c->img->endpoint_sets[i], &c->ep_ids[i]) : 0;

		if (err) {
			pr_err("endpoint set %016llx: %s",
			       (unsigned long long)c->img->endpoint_sets[i].id, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* The endpoint policy in force, for gammactl (the programs ignore it). */
static uint32_t policy_flags(uint32_t policy)
{
	static const struct { uint32_t tr, be; } tab[] = {
		{ TR_EP_LOCAL, GAMMAD_BE_LOCAL_ONLY }, { TR_EP_ZONE, GAMMAD_BE_ZONE },
		{ TR_EP_NODE, GAMMAD_BE_NODE }, { TR_EP_TERMINATING, GAMMAD_BE_TERMINATING },
		{ TR_EP_TOPOLOGY_ALL, GAMMAD_BE_TOPOLOGY_ALL },
	};
	uint32_t f = 0;

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (policy & tab[i].tr)
			f |= tab[i].be;
	return f;
}

static void backend_val(const struct ia_ctx *c, const struct img_backend *b,
			struct gammad_be_val *be)
{
	long e = b->endpoint_set ? IMG_INDEX(c->img, endpoint_sets, b->endpoint_set) : -1;

	memset(be, 0, sizeof(*be));
	if (e >= 0) {
		be->ep_set = c->ep_ids[e];
		be->nr_endpoints = (uint32_t)c->img->endpoint_sets[e].nr;
	}
	be->affinity_timeout = b->affinity_timeout;
	if (b->flags & IMG_BACKEND_UNRESOLVED)
		be->flags |= GAMMAD_BE_UNRESOLVED;
	if ((b->flags & IMG_BACKEND_NO_ENDPOINTS) || (e < 0 && !be->flags) ||
	    (e >= 0 && !be->nr_endpoints))
		be->flags |= GAMMAD_BE_NO_ENDPOINTS;
	be->flags |= policy_flags(b->policy);
}

/* A backend keeps its id; a new endpoint set is one update of its entry. */
static int write_backend(struct ia_ctx *c, const struct img_backend *b, uint32_t *id)
{
	const struct ia_known *k = ia_known_ident(c, GAMMAD_OBJ_BACKEND, b->id);
	struct gammad_obj_val v = { .ident = b->id, .port = b->port, .family = b->family };
	struct gammad_be_val be;
	int err;

	backend_val(c, b, &be);
	v.hash = nonzero(hash_bytes(&be, sizeof(be), b->id));
	if (k && k->hash == v.hash) {
		const struct gammad_be_val *cur = ia_backend_entry(c, k->id);

		*id = k->id;
		if (cur && !memcmp(cur, &be, sizeof(be)))
			return 0;
		/* The object says written, the kernel disagrees: rewrite. */
	}
	copy_name(v.namespace, sizeof(v.namespace), b->namespace, b->name);
	copy_name(v.name, sizeof(v.name), b->name, b->name);
	if (k) {
		*id = k->id;
		err = 0;
	} else {
		err = ia_id_alloc(c, GAMMAD_OBJ_BACKEND, id) ?:
		      ia_obj_begin(c, GAMMAD_OBJ_BACKEND, *id, &v) ?:
		      dp_counters_reset(c->dp, GAMMAD_OBJ_BACKEND, *id);
	}
	err = err ?: dp_backend_write(c->dp, *id, &be) ?:
	      ia_obj_put(c, GAMMAD_OBJ_BACKEND, *id, &v);
	if (!err)
		c->stats->backends_written++;
	return err;
}

/*
 * Backends some alias slot will name: those with a positive weight in a
 * selector a class uses. Others (weight 0 only, L7 rules only) would be
 * unreachable, so retired right after being written.
 */
static int find_needed(struct ia_ctx *c)
{
	const struct img *img = c->img;
	bool **needed = &c->be_needed;

	*needed = calloc(img->nr_backends + 1, sizeof(bool));
	c->ep_needed = calloc(img->nr_endpoint_sets + 1, sizeof(bool));
	if (!*needed || !c->ep_needed)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_selectors; i++) {
		if (!c->sel_users[i])
			continue;
		for (size_t j = 0; j < img->selectors[i].nr; j++) {
			long b = IMG_INDEX(img, backends, img->selectors[i].items[j].backend);

			if (b >= 0 && img->selectors[i].items[j].weight)
				(*needed)[b] = true;
		}
	}
	for (size_t b = 0; b < img->nr_backends; b++) {
		long e = img->backends[b].endpoint_set ?
			 IMG_INDEX(img, endpoint_sets, img->backends[b].endpoint_set) : -1;

		if ((*needed)[b] && e >= 0)
			c->ep_needed[e] = true;
	}
	return 0;
}

static int write_backends(struct ia_ctx *c)
{
	int err = 0;

	for (size_t i = 0; i < c->img->nr_backends && !err; i++) {
		const struct img_backend *b = &c->img->backends[i];

		if (!c->be_needed[i])
			continue;
		err = write_backend(c, b, &c->be_ids[i]);
		if (err)
			pr_err("backend %s/%s:%u: %s", b->namespace, b->name, b->port,
			       strerror(-err));
	}
	return err;
}

/*
 * The class a selector is named after: the first one using it that has a
 * route (else the first one). Selectors no class uses are only used by L7
 * rule tables, which nothing in the kernel reads yet.
 */
static int find_selector_users(struct ia_ctx *c)
{
	const struct img *img = c->img;

	c->sel_users = calloc(img->nr_selectors + 1, sizeof(*c->sel_users));
	if (!c->sel_users)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_frontends; i++)
		for (size_t j = 0; j < img->frontends[i].nr_classes; j++) {
			const struct img_class *cl = &img->frontends[i].classes[j];
			long s = IMG_INDEX(img, selectors, cl->l4_selector);

			if (s < 0)
				continue;
			if (!c->sel_users[s] || (!c->sel_users[s]->route_name && cl->route_name))
				c->sel_users[s] = cl;
		}
	return 0;
}

/* "rule N" when the class's rules are one rule, "rules N-M" otherwise. */
static void selector_section(const struct img_class *cl, char *buf, size_t len)
{
	buf[0] = 0;
	if (!cl->route_name)
		return;
	if (cl->first_rule == cl->last_rule)
		snprintf(buf, len, "rule %u", cl->first_rule);
	else
		snprintf(buf, len, "rules %u-%u", cl->first_rule, cl->last_rule);
}

/* The names of a selector's object: its class's route and rules. */
static void selector_names(const struct img_class *user, struct gammad_obj_val *v)
{
	copy_name(v->namespace, sizeof(v->namespace), user->route_namespace, "route");
	copy_name(v->name, sizeof(v->name), user->route_name, "route");
	selector_section(user, v->section, sizeof(v->section));
}

/* What a kernel selector is named (its class's route), hashed. */
static uint64_t sel_names_hash(const struct gammad_obj_val *v)
{
	return hash_bytes(v->namespace, sizeof(v->namespace) + sizeof(v->name) +
			  sizeof(v->section), v->ident);
}

/* Content-addressed: a changed selector is a new one, never an edit. */
static int write_selector(struct ia_ctx *c, const struct img_selector *s, uint32_t *id,
			  const struct img_class *user)
{
	struct gammad_obj_val v = { .ident = s->id };
	uint32_t sel_flags = s->flags & IMG_SELECTOR_HTTP_ENGINE ? GAMMAD_SEL_HTTP_ENGINE : 0;
	const struct ia_known *k;
	struct dp_weighted *w;
	size_t n = 0;
	int err;

	if (!user)
		return 0;	/* only L7 rules use it: nothing at L4 reads it */
	w = calloc(s->nr + 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t j = 0; j < s->nr; j++) {
		long b = IMG_INDEX(c->img, backends, s->items[j].backend);

		if (b < 0)
			continue;
		w[n].be_id = c->be_ids[b];
		w[n++].weight = s->items[j].weight;
	}
	selector_names(user, &v);
	/* Names are part of the object: a renamed route gets its own selector. */
	v.hash = hash_bytes(w, n * sizeof(*w), s->id);
	if (sel_flags)
		v.hash = hash_bytes(&sel_flags, sizeof(sel_flags), v.hash);
	v.hash = nonzero(hash_bytes(v.namespace, sizeof(v.namespace) + sizeof(v.name) +
				    sizeof(v.section), v.hash));
	k = ia_known_exact(c, GAMMAD_OBJ_SELECTOR, v.ident, v.hash);
	if (c->state && (err = ia_u64map_put(&c->state->sel_names, s->id,
					     nonzero(sel_names_hash(&v))))) {
		free(w);
		return err;
	}
	if (k && ia_selector_present(c, k->id) >= 0) {
		*id = k->id;
		free(w);
		return 0;
	}
	err = ia_id_alloc(c, GAMMAD_OBJ_SELECTOR, id) ?:
	      ia_obj_begin(c, GAMMAD_OBJ_SELECTOR, *id, &v) ?:
	      dp_counters_reset(c->dp, GAMMAD_OBJ_SELECTOR, *id) ?:
	      dp_selector_write_flags(c->dp, *id, *id, w, n, sel_flags) ?:
	      ia_obj_put(c, GAMMAD_OBJ_SELECTOR, *id, &v);
	free(w);
	if (!err)
		c->stats->selectors_written++;
	return err;
}

static int write_selectors(struct ia_ctx *c)
{
	int err = 0;

	for (size_t i = 0; i < c->img->nr_selectors && !err; i++) {
		if (c->sel_touched && !c->sel_touched[i])
			continue;	/* a delta: the kernel has it as the last apply left it */
		err = write_selector(c, &c->img->selectors[i], &c->sel_ids[i], c->sel_users[i]);
		if (err)
			pr_err("selector %016llx: %s",
			       (unsigned long long)c->img->selectors[i].id, strerror(-err));
	}
	return err;
}

static bool *bools(size_t n)
{
	return calloc(n + 1, sizeof(bool));
}

/*
 * Selector s's kernel object is named after another route than the last
 * apply wrote it with (its class moved): every frontend using it switches.
 */
static void touch_renamed(struct ia_ctx *c, uint64_t sel)
{
	const struct img *img = c->img;
	struct gammad_obj_val v = { .ident = sel };
	long s = IMG_INDEX(img, selectors, sel);
	uint64_t was;

	if (s < 0 || !c->sel_users[s] ||
	    !ia_u64map_get(c->state->sel_names, sel, &was))
		return;		/* unused, or nobody used it: only touched frontends do now */
	selector_names(c->sel_users[s], &v);
	if (nonzero(sel_names_hash(&v)) == was)
		return;
	for (size_t i = 0; i < img->nr_frontends; i++)
		for (size_t j = 0; j < img->frontends[i].nr_classes; j++)
			if (img->frontends[i].classes[j].l4_selector == sel)
				c->fe_touched[i] = true;
}

/*
 * A delta: the frontends it names, and what they reach (their selectors,
 * the backends those weigh and their endpoint sets), as find_needed() for
 * the whole image.
 */
static int find_touched(struct ia_ctx *c)
{
	const struct img *img = c->img;
	const struct ia_delta *d = c->delta;

	c->fe_touched = bools(img->nr_frontends);
	c->sel_touched = bools(img->nr_selectors);
	c->be_needed = bools(img->nr_backends);
	c->ep_needed = bools(img->nr_endpoint_sets);
	if (!c->fe_touched || !c->sel_touched || !c->be_needed || !c->ep_needed)
		return -ENOMEM;
	for (size_t i = 0; i < d->nr_frontends; i++) {
		long f = IMG_INDEX(img, frontends, d->frontends[i]);

		if (f >= 0)
			c->fe_touched[f] = true;
	}
	for (size_t i = 0; i < d->nr_old_selectors; i++)
		touch_renamed(c, d->old_selectors[i]);
	for (size_t i = 0; i < d->nr_frontends; i++) {
		long f = IMG_INDEX(img, frontends, d->frontends[i]);

		for (size_t j = 0; f >= 0 && j < img->frontends[f].nr_classes; j++)
			touch_renamed(c, img->frontends[f].classes[j].l4_selector);
	}
	for (size_t f = 0; f < img->nr_frontends; f++) {
		for (size_t j = 0; c->fe_touched[f] && j < img->frontends[f].nr_classes; j++) {
			long s = IMG_INDEX(img, selectors, img->frontends[f].classes[j].l4_selector);

			if (s < 0)
				continue;
			c->sel_touched[s] = true;
			for (size_t k = 0; k < img->selectors[s].nr; k++) {
				long b = IMG_INDEX(img, backends, img->selectors[s].items[k].backend);
				long e;

				if (b < 0 || !img->selectors[s].items[k].weight)
					continue;
				c->be_needed[b] = true;
				e = img->backends[b].endpoint_set ?
				    IMG_INDEX(img, endpoint_sets, img->backends[b].endpoint_set) : -1;
				if (e >= 0)
					c->ep_needed[e] = true;
			}
		}
	}
	return 0;
}

static int ctx_init(struct ia_ctx *c, struct dp *dp, const struct img *img,
		    struct ia_stats *stats, const struct ia_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->dp = dp;
	c->img = img;
	c->stats = stats;
	c->state = o ? o->state : NULL;
	/* A delta needs what a whole apply read (the state), and is never full. */
	if (c->state && c->state->valid && o->delta && !o->full &&
	    c->state->khttp == (o->khttp != NULL))
		c->delta = o->delta;	/* (kernel HTTP tables coming or going change every frontend) */
	if (c->state)
		c->state->khttp = o->khttp != NULL;
	c->ep_ids = calloc(img->nr_endpoint_sets + 1, sizeof(uint32_t));
	c->be_ids = calloc(img->nr_backends + 1, sizeof(uint32_t));
	c->sel_ids = calloc(img->nr_selectors + 1, sizeof(uint32_t));
	if (!c->ep_ids || !c->be_ids || !c->sel_ids)
		return -ENOMEM;
	if (c->delta) {
		ia_state_take(c);
		stats->delta = true;
		return find_selector_users(c) ?: find_touched(c);
	}
	if (c->state) {
		/* Read whole again: what the state says goes. */
		ia_state_reset(c->state);
	}
	return find_selector_users(c) ?: find_needed(c) ?: ia_ids_load(c);
}

static void ctx_free(struct ia_ctx *c, int err)
{
	ia_state_keep(c, !err && !c->unsure);
	ia_ids_free(c);
	ia_kh_free(c);
	free(c->ep_ids);
	free(c->be_ids);
	free(c->sel_ids);
	free(c->sel_users);
	free(c->be_needed);
	free(c->ep_needed);
	free(c->fe_touched);
	free(c->sel_touched);
}

int ia_apply(struct dp *dp, const struct img *img, const struct ia_opts *opts,
	     struct ia_stats *stats)
{
	const struct ia_opts none = { 0 };
	struct ia_stats dummy;
	struct ia_ctx c;
	int err, err2;

	if (!stats)
		stats = &dummy;
	if (!opts)
		opts = &none;
	memset(stats, 0, sizeof(*stats));
	err = ctx_init(&c, dp, img, stats, opts) ?: ia_kh_prepare(&c, opts->khttp);
	if (err) {
		ctx_free(&c, err);
		return err;
	}
	/*
	 * Innermost first: nothing is referenced before it is complete. Each
	 * layer's writes are batched (datapath.h) and flushed before the next
	 * layer points at them; the kernel HTTP tables go through the same
	 * queue in stages of their own (records, tables, then the classes with
	 * the consumer tables); the clients are written directly.
	 */
	if (!opts || !opts->single_writes)
		dp_batch_begin(dp);
	err = write_namespaces(&c) ?: write_endpoint_sets(&c) ?: dp_batch_flush(dp) ?:
	      write_backends(&c) ?: dp_batch_flush(dp) ?: write_selectors(&c) ?:
	      dp_batch_flush(dp) ?: ia_kh_write(&c) ?: ia_frontends_apply(&c);
	err2 = dp_batch_end(dp);
	err = err ?: err2;
	/* A delta without pod changes leaves the client side (and the pod walk) as it is. */
	if (!c.delta || c.delta->clients) {
		err2 = ia_clients_apply(&c, opts);
		err = err ?: err2;
		stats->clients = !err2;
	}
	/*
	 * Retire even after an error: every frontend points at a complete
	 * table, and what none reaches may go. Nothing changed: nothing
	 * became unreachable.
	 */
	if (!err && !ia_stats_changes(stats) && opts != &none && !opts->full) {
		ctx_free(&c, err);
		return 0;
	}
	if (!err && opts->defer_retire && !opts->full) {
		ctx_free(&c, err);
		return 0;
	}
	err2 = dp_sync(dp);
	if (err2)
		pr_err("data path sync: %s", strerror(-err2));
	else
		err2 = ia_retire(&c);
	err = err ?: err2;
	ctx_free(&c, err);
	return err;
}
