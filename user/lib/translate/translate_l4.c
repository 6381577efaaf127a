// SPDX-License-Identifier: Apache-2.0
/*
 * The L4 selector of a class: what a connection gets while only connect()
 * time routing is enforced. Exact when the first entry matches every request
 * without filters (later entries are unreachable) or when every entry sends
 * to the same weighted backends; otherwise the union of all rules' backends
 * (weights summed per backend), flagged L7_UNENFORCED.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gammad/maps.h"
#include "translate_int.h"

static bool rule_has_filters(const struct tr_rule *r)
{
	if (r->rule->nr_filters)
		return true;
	for (size_t i = 0; i < r->rule->nr_backends; i++)
		if (r->rule->backends[i].nr_filters)
			return true;
	return false;
}

static bool same_backends(const struct tr_rule *a, const struct tr_rule *b)
{
	if (a == b)
		return true;
	if (a->nr_backends != b->nr_backends || !!a->redirect != !!b->redirect)
		return false;
	for (size_t i = 0; i < a->nr_backends; i++) {
		const struct tr_backend *x = &a->backends[i], *y = &b->backends[i];

		if (x->port != y->port || x->weight != y->weight ||
		    strcmp(x->namespace, y->namespace) || strcmp(x->name, y->name))
			return false;
	}
	return true;
}

/* The backends that receive traffic from a rule (a redirect sends nothing on). */
static int copy_rule(struct tr_l4 *l4, const struct tr_rule *r)
{
	if (r->redirect || !r->nr_backends)
		return 0;
	l4->items = calloc(r->nr_backends, sizeof(*l4->items));
	if (!l4->items)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_backends; i++)
		l4->items[l4->nr++] = (struct tr_l4_item){
			.backend = &r->backends[i], .weight = r->backends[i].weight,
		};
	l4->total_weight = r->total_weight;
	return 0;
}

static int union_add(struct tr_l4 *l4, size_t *cap, struct strmap *index,
		     const struct tr_backend *b)
{
	char key[MODEL_KEY_MAX + 8];
	struct tr_l4_item *item;
	void *p;
	int ret;

	snprintf(key, sizeof(key), "%s/%s/%u", b->namespace, b->name, b->port);
	p = strmap_get(index, key);
	if (p) {
		item = &l4->items[(size_t)p - 1];
		item->weight += b->weight;
		l4->total_weight += b->weight;
		return 0;
	}
	if (l4->nr == *cap) {
		size_t n = *cap ? *cap * 2 : 8;

		item = realloc(l4->items, n * sizeof(*item));
		if (!item)
			return -ENOMEM;
		l4->items = item;
		*cap = n;
	}
	/* Store index + 1 so that 0 (NULL) still means "absent". */
	ret = strmap_put(index, key, (void *)(l4->nr + 1), NULL);
	if (ret)
		return ret;
	l4->items[l4->nr++] = (struct tr_l4_item){ .backend = b, .weight = b->weight };
	l4->total_weight += b->weight;
	return 0;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * The kernel draws against a 32-bit total (maps.h). A union summed over many
 * rules can pass it (287 rules of 1,000,000 to one backend): the weights
 * are divided by their common divisor, and if that is not enough scaled
 * down (none to 0) and the class says so. Either way the translation states
 * the weights the kernel gets, so the two never disagree.
 */
static void fit_weights(struct tr_l4 *l4)
{
	uint64_t g = 0, total = 0, factor, room;

	if (l4->total_weight <= GAMMAD_MAX_WEIGHT_SUM)
		return;
	for (size_t i = 0; i < l4->nr; i++)
		g = gcd64(g, l4->items[i].weight);
	for (size_t i = 0; g > 1 && i < l4->nr; i++)
		l4->items[i].weight /= g;
	l4->total_weight /= g ? g : 1;
	if (l4->total_weight > GAMMAD_MAX_WEIGHT_SUM) {
		/* Each weight loses less than 1 to rounding and keeps at least 1. */
		room = GAMMAD_MAX_WEIGHT_SUM - l4->nr;
		factor = (l4->total_weight + room - 1) / room;
		for (size_t i = 0; i < l4->nr; i++) {
			uint64_t w = l4->items[i].weight / factor;

			l4->items[i].weight = w || !l4->items[i].weight ? w : 1;
		}
		l4->flags |= TR_L4_SCALED;
	}
	for (size_t i = 0; i < l4->nr; i++)
		total += l4->items[i].weight;
	l4->total_weight = total;
}

static int build_union(struct tr_class *cls)
{
	struct strmap index = { 0 };
	size_t cap = 0;
	int ret = 0;

	cls->l4.flags |= TR_L4_L7_UNENFORCED;
	for (size_t i = 0; i < cls->nr_entries && !ret; i++) {
		const struct tr_rule *r = cls->entries[i].rule;

		/* A rule with several matches appears several times: count it once. */
		if (cls->entries[i].match_index || r->redirect)
			continue;
		for (size_t j = 0; j < r->nr_backends && !ret; j++)
			ret = union_add(&cls->l4, &cap, &index, &r->backends[j]);
	}
	strmap_free(&index);
	if (!ret)
		fit_weights(&cls->l4);
	return ret;
}

int tr_build_l4(struct tr_class *cls)
{
	const struct tr_entry *first = &cls->entries[0];
	bool all_same = true;

	for (size_t i = 0; i < cls->nr_entries; i++) {
		const struct tr_entry *e = &cls->entries[i];

		if (!tr_match_is_catch_all(e->match) || rule_has_filters(e->rule))
			cls->needs_l7 = true;
		if (!same_backends(first->rule, e->rule))
			all_same = false;
	}
	if (!cls->nr_entries)
		return 0;
	if ((tr_match_is_catch_all(first->match) && !rule_has_filters(first->rule)) || all_same)
		return copy_rule(&cls->l4, first->rule);
	return build_union(cls);
}
