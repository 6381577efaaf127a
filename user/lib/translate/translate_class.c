// SPDX-License-Identifier: Apache-2.0
/*
 * Client classes of every Service port: the producer routes form the default
 * class, each namespace with consumer routes its own class. Within a class
 * the highest-ranked route kind wins and its routes' rules form the table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

static int class_ns_cmp(const char *a, const char *b)
{
	if (!a || !b)
		return (int)!!a - (int)!!b;	/* the producer (NULL) group first */
	return strcmp(a, b);
}

static int binding_cmp(const void *pa, const void *pb)
{
	const struct tr_binding *a = pa, *b = pb;
	const struct gapi_route *ra = a->info->route, *rb = b->info->route;
	int d;

	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	d = class_ns_cmp(a->class_ns, b->class_ns);
	if (d)
		return d;
	if (ra->kind != rb->kind)
		return (int)ra->kind - (int)rb->kind;
	d = ra == rb ? 0 : tr_route_cmp(ra, rb);
	if (d)
		return d;
	return a->parent < b->parent ? -1 : a->parent > b->parent;
}

static size_t route_entry_count(const struct tr_route_info *info)
{
	size_t n = 0;

	for (size_t i = 0; i < info->route->nr_rules; i++) {
		const struct tr_rule *r = &info->rules[i];

		if (r->valid)
			n += r->rule->nr_matches ? r->rule->nr_matches : 1;
	}
	return n;
}

static int append_route_entries(struct tr_class *cls, const struct tr_route_info *info)
{
	size_t add = route_entry_count(info);
	struct tr_entry *e;

	e = realloc(cls->entries, (cls->nr_entries + add) * sizeof(*e));
	if (!e && cls->nr_entries + add)
		return -ENOMEM;
	cls->entries = e;
	for (size_t i = 0; i < info->route->nr_rules; i++) {
		const struct tr_rule *r = &info->rules[i];
		size_t nr_matches = r->rule->nr_matches;

		if (!r->valid)
			continue;
		if (!nr_matches)
			cls->entries[cls->nr_entries++] = (struct tr_entry){ .rule = r };
		for (size_t j = 0; j < nr_matches; j++)
			cls->entries[cls->nr_entries++] = (struct tr_entry){
				.rule = r, .match = &r->rule->matches[j], .match_index = j,
			};
	}
	return 0;
}

/* Fill one class from the bindings [b, end) of one client group. */
static int fill_class(struct tr_class *cls, struct tr_binding *b, struct tr_binding *end)
{
	enum gapi_route_kind best = ROUTE_KIND_COUNT;
	const struct tr_route_info *last = NULL;
	int ret;

	for (struct tr_binding *i = b; i < end; i++)
		if (i->info->nr_valid_rules && i->info->route->kind < best)
			best = i->info->route->kind;
	cls->kind = best;
	for (struct tr_binding *i = b; i < end; i++) {
		if (!i->info->nr_valid_rules)
			continue;
		if (i->info->route->kind != best) {
			i->result = BINDING_CONFLICTED;
			continue;
		}
		if (i->info == last)	/* bound twice through two parentRefs */
			continue;
		if (cls->nr_entries + route_entry_count(i->info) > TR_MAX_ENTRIES) {
			i->result = BINDING_OVER_LIMIT;
			continue;
		}
		ret = append_route_entries(cls, i->info);
		if (ret)
			return ret;
		last = i->info;
	}
	/* A route bound twice shares the fate of its first binding. */
	for (struct tr_binding *i = b + 1; i < end; i++)
		if (i->info == i[-1].info)
			i->result = i[-1].result;
	tr_sort_entries(cls->entries, cls->nr_entries, best);
	return 0;
}

static size_t count_consumer_groups(const struct tr_binding *b, const struct tr_binding *end)
{
	size_t n = 0;

	for (const struct tr_binding *i = b; i < end; i++)
		if (i->class_ns && (i == b || class_ns_cmp(i[-1].class_ns, i->class_ns)))
			n++;
	return n;
}

static void mark_over_limit(struct tr_binding *b, struct tr_binding *end)
{
	for (struct tr_binding *i = b; i < end; i++)
		if (i->info->nr_valid_rules)
			i->result = BINDING_OVER_LIMIT;
}

/* Build the classes of one port from its bindings [b, end), sorted by group. */
static int build_port_classes(struct tr_port *p, struct tr_binding *b, struct tr_binding *end)
{
	size_t nr = 1 + count_consumer_groups(b, end);
	int ret;

	if (nr > 1 + TR_MAX_CLASSES)
		nr = 1 + TR_MAX_CLASSES;
	p->classes = calloc(nr, sizeof(*p->classes));
	if (!p->classes)
		return -ENOMEM;
	p->nr_classes = 1;
	p->classes[0].kind = ROUTE_KIND_COUNT;
	while (b < end) {
		struct tr_binding *g = b;
		struct tr_class *cls;

		while (g < end && !class_ns_cmp(g->class_ns, b->class_ns))
			g++;
		if (b->class_ns && p->nr_classes == nr) {
			mark_over_limit(b, g);
		} else {
			cls = b->class_ns ? &p->classes[p->nr_classes++] : &p->classes[0];
			cls->client_namespace = b->class_ns;
			ret = fill_class(cls, b, g);
			if (ret)
				return ret;
		}
		b = g;
	}
	return 0;
}

/* A consumer group whose routes all failed gives no class: drop it. */
static void drop_empty_classes(struct tr_port *p)
{
	size_t n = 1;

	for (size_t i = 1; i < p->nr_classes; i++) {
		if (p->classes[i].kind == ROUTE_KIND_COUNT) {
			free(p->classes[i].entries);
			continue;
		}
		p->classes[n++] = p->classes[i];
	}
	p->nr_classes = n;
}

static int finish_port(struct tr_port *p)
{
	int ret;

	drop_empty_classes(p);
	for (size_t i = 0; i < p->nr_classes; i++) {
		struct tr_class *cls = &p->classes[i];

		if (cls->kind == ROUTE_KIND_COUNT) {
			cls->l4.items = calloc(1, sizeof(*cls->l4.items));
			if (!cls->l4.items)
				return -ENOMEM;
			cls->l4.items[0] = (struct tr_l4_item){ .backend = &p->self, .weight = 1 };
			cls->l4.nr = 1;
			cls->l4.total_weight = 1;
			cls->l4.flags = TR_L4_NO_ROUTE;
			continue;
		}
		ret = tr_build_l4(cls);
		if (ret)
			return ret;
	}
	return 0;
}

int tr_build_classes(struct tr_ctx *c)
{
	struct tr_binding *b = c->bindings, *end = b;
	int ret;

	if (c->nr_bindings) {
		qsort(c->bindings, c->nr_bindings, sizeof(*c->bindings), binding_cmp);
		end = c->bindings + c->nr_bindings;
	}
	for (size_t port = 0; port < c->res->nr_ports; port++) {
		struct tr_binding *g = b;

		while (g < end && g->port == port)
			g++;
		ret = build_port_classes(&c->res->ports[port], b, g);
		if (!ret)
			ret = finish_port(&c->res->ports[port]);
		if (ret)
			return ret;
		b = g;
	}
	return 0;
}
