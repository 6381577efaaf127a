// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "translate_int.h"

static int add_condition(struct tr_parent_status *ps, const char *type, bool status,
			 const char *reason, char *message)
{
	if (!message)
		return -ENOMEM;
	ps->conditions[ps->nr_conditions++] = (struct tr_condition){
		.type = type, .status = status, .reason = reason, .message = message,
	};
	return 0;
}

/* The first dropped rule speaks for a route whose rules were all dropped. */
static const struct tr_rule *first_dropped(const struct tr_route_info *info)
{
	for (size_t i = 0; i < info->route->nr_rules; i++)
		if (!info->rules[i].valid)
			return &info->rules[i];
	return NULL;
}

static char *dropped_rules_message(const struct tr_route_info *info)
{
	char *msg = NULL, *next;

	for (size_t i = 0; i < info->route->nr_rules; i++) {
		const struct tr_rule *r = &info->rules[i];

		if (r->valid)
			continue;
		next = tr_strdupf("%s%sDropped Rule %zu%s%s%s: %s", msg ? msg : "", msg ? "; " : "",
				  i, r->rule->name ? " (" : "", r->rule->name ? r->rule->name : "",
				  r->rule->name ? ")" : "", r->invalid_message ? r->invalid_message : "");
		free(msg);
		if (!next)
			return NULL;
		msg = next;
	}
	return msg;
}

static int accepted_condition(const struct tr_route_info *info, size_t parent,
			      struct tr_parent_status *ps)
{
	const struct tr_parent_state *st = &info->parents[parent];
	const struct tr_rule *bad;

	if (st->reject_reason)
		return add_condition(ps, STATUS_ACCEPTED, false, st->reject_reason,
				     strdup(st->reject_message));
	if (!info->nr_valid_rules) {
		bad = first_dropped(info);
		return add_condition(ps, STATUS_ACCEPTED, false,
				     bad ? bad->invalid_reason : "UnsupportedValue",
				     tr_strdupf("no valid rule: %s",
						bad && bad->invalid_message ? bad->invalid_message :
						"the route has no rules"));
	}
	if (st->nr_in_effect)
		return add_condition(ps, STATUS_ACCEPTED, true, "Accepted",
				     tr_strdupf("in effect on %zu of %zu Service port(s)",
						st->nr_in_effect, st->nr_bound));
	if (st->nr_conflicted)
		return add_condition(ps, STATUS_ACCEPTED, false, "Conflicted",
				     tr_strdupf("a route of a higher-ranked kind (GRPCRoute > HTTPRoute > TLSRoute > TCPRoute) owns the selected Service port(s)"));
	return add_condition(ps, STATUS_ACCEPTED, false, "UnsupportedValue",
			     tr_strdupf("exceeds the limit of %d rules or %d consumer namespaces per Service port",
					TR_MAX_ENTRIES, TR_MAX_CLASSES));
}

/*
 * A backend over the endpoints-per-service cap resolves, but not all of its
 * endpoints are used: say so in the ResolvedRefs message (the first one).
 */
static char *resolved_message(const struct tr_route_info *info)
{
	for (size_t i = 0; info->rules && i < info->route->nr_rules; i++) {
		const struct tr_rule *r = &info->rules[i];

		for (size_t j = 0; r->valid && j < r->nr_backends; j++) {
			const struct tr_backend *b = &r->backends[j];

			if (b->endpoints && b->endpoints->truncated)
				return tr_strdupf("all references resolved; Service %s/%s port %u has more endpoints than the %zu used (--map-size endpoints-per-service)",
						  b->namespace, b->name, b->port, b->endpoints->nr);
		}
	}
	return strdup("all references resolved");
}

static int parent_status(const struct tr_route_info *info, size_t parent,
			 struct tr_parent_status *ps)
{
	bool partial = info->nr_valid_rules && info->nr_valid_rules < info->route->nr_rules;
	int ret;

	ps->ref = &info->route->parents[parent];
	ret = accepted_condition(info, parent, ps);
	if (ret)
		return ret;
	if (info->refs_reason)
		ret = add_condition(ps, STATUS_RESOLVED_REFS, false, info->refs_reason,
				    strdup(info->refs_message));
	else
		ret = add_condition(ps, STATUS_RESOLVED_REFS, true, "ResolvedRefs",
				    resolved_message(info));
	if (!ret && partial)
		ret = add_condition(ps, STATUS_PARTIALLY_INVALID, true, "UnsupportedValue",
				    dropped_rules_message(info));
	return ret;
}

/* Count, per parentRef, where its bindings ended up. */
static void tally_bindings(struct tr_ctx *c)
{
	for (size_t i = 0; i < c->nr_bindings; i++) {
		const struct tr_binding *b = &c->bindings[i];
		struct tr_parent_state *st = &b->info->parents[b->parent];

		if (!b->info->nr_valid_rules)
			continue;
		if (b->result == BINDING_IN_EFFECT)
			st->nr_in_effect++;
		else if (b->result == BINDING_CONFLICTED)
			st->nr_conflicted++;
		else
			st->nr_over_limit++;
	}
}

static int route_status(const struct tr_route_info *info, struct tr_route_status *rs)
{
	const struct gapi_route *route = info->route;
	int ret;

	rs->route = route;
	rs->parents = calloc(route->nr_parents ? route->nr_parents : 1, sizeof(*rs->parents));
	if (!rs->parents)
		return -ENOMEM;
	for (size_t i = 0; i < route->nr_parents; i++) {
		if (info->parents[i].not_ours)
			continue;
		ret = parent_status(info, i, &rs->parents[rs->nr_parents++]);
		if (ret)
			return ret;
	}
	return 0;
}

int tr_build_statuses(struct tr_ctx *c)
{
	int ret;

	tally_bindings(c);
	for (size_t i = 0; i < c->nr_infos; i++) {
		ret = route_status(&c->infos[i], &c->res->routes[i]);
		if (ret)
			return ret;
	}
	return 0;
}

void tr_route_status_free(struct tr_route_status *s)
{
	for (size_t i = 0; i < s->nr_parents; i++)
		for (size_t j = 0; j < s->parents[i].nr_conditions; j++)
			free(s->parents[i].conditions[j].message);
	free(s->parents);
}
