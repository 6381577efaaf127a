// SPDX-License-Identifier: Apache-2.0
/*
 * Rules: the checks the CRDs leave to CEL or to the implementation, done per
 * rule so one bad rule is dropped (PartiallyInvalid) and the others served.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/regex.h"
#include "translate_int.h"

bool tr_match_is_catch_all(const struct gapi_match *m)
{
	return !m || (m->path && m->path_type == MATCH_PREFIX && !strcmp(m->path, "/") &&
		      !m->method && !m->nr_headers && !m->nr_query);
}

/* Why a rule is dropped: reason for the status and a message. */
struct rule_problem {
	const char *reason;
	char *message;
};

static int problem(struct rule_problem *p, const char *reason, char *msg)
{
	if (p->reason) {
		free(msg);	/* the first problem found is the one reported */
		return 0;
	}
	p->reason = reason;
	p->message = msg;
	return msg ? 0 : -ENOMEM;
}

static bool filter_supported(enum gapi_route_kind kind, enum gapi_filter_type t)
{
	switch (t) {
	case FILTER_REQUEST_HEADER:
	case FILTER_RESPONSE_HEADER:
	case FILTER_REQUEST_MIRROR:
		return true;
	case FILTER_REQUEST_REDIRECT:
	case FILTER_URL_REWRITE:
		return kind == ROUTE_HTTP;
	default:
		return false;
	}
}

static int check_filters(enum gapi_route_kind kind, const struct gapi_filter *f, size_t nr,
			 struct rule_problem *p)
{
	unsigned int seen = 0;
	int ret = 0;

	for (size_t i = 0; i < nr && !ret; i++) {
		unsigned int bit = 1u << f[i].type;

		if (!filter_supported(kind, f[i].type))
			ret = problem(p, "UnsupportedValue",
				      tr_strdupf("filter %s is not supported", f[i].type_name));
		else if ((seen & bit) && f[i].type != FILTER_REQUEST_MIRROR)
			ret = problem(p, "IncompatibleFilters",
				      tr_strdupf("filter %s is set more than once", f[i].type_name));
		seen |= bit;
	}
	if (!ret && (seen & (1u << FILTER_REQUEST_REDIRECT)) &&
	    (seen & (1u << FILTER_URL_REWRITE)))
		ret = problem(p, "IncompatibleFilters",
			      tr_strdupf("RequestRedirect and URLRewrite cannot both be set"));
	return ret;
}

static const struct gapi_filter *find_filter(const struct gapi_rule *r,
					     enum gapi_filter_type t)
{
	for (size_t i = 0; i < r->nr_filters; i++)
		if (r->filters[i].type == t)
			return &r->filters[i];
	return NULL;
}

/* The first regular expression of a match that cannot be used, and why. */
static bool regex_bad(const char *re, const char **bad, enum rx_status *st, char *why,
		      size_t len)
{
	enum rx_status s;

	if (*bad)
		return true;
	s = rx_check(re, why, len);
	if (s == RX_OK)
		return false;
	*bad = re;
	*st = s;
	return true;
}

/*
 * Regular expressions must compile within the budget of regex.h; they make
 * the rule userspace-only. One over budget is reported as that, not as
 * invalid: the fix is a simpler pattern, not a corrected one.
 */
static int check_regexes(const struct gapi_match *m, struct tr_rule *out,
			 struct rule_problem *p)
{
	enum rx_status st = RX_OK;
	const char *bad = NULL;
	char why[128];

	if (m->path && m->path_type == MATCH_REGEX) {
		out->userspace_only = true;
		regex_bad(m->path, &bad, &st, why, sizeof(why));
	}
	if (m->grpc_type == MATCH_REGEX) {
		out->userspace_only = true;
		if (m->grpc_service)
			regex_bad(m->grpc_service, &bad, &st, why, sizeof(why));
		if (m->grpc_method)
			regex_bad(m->grpc_method, &bad, &st, why, sizeof(why));
	}
	for (size_t i = 0; i < m->nr_headers; i++) {
		if (m->headers[i].type != MATCH_REGEX)
			continue;
		out->userspace_only = true;
		regex_bad(m->headers[i].value, &bad, &st, why, sizeof(why));
	}
	for (size_t i = 0; i < m->nr_query; i++) {
		if (m->query[i].type != MATCH_REGEX)
			continue;
		out->userspace_only = true;
		regex_bad(m->query[i].value, &bad, &st, why, sizeof(why));
	}
	if (!bad)
		return 0;
	if (st == RX_NO_MEMORY)
		return -ENOMEM;
	if (st == RX_TOO_LARGE)
		return problem(p, "UnsupportedValue",
			       tr_strdupf("regular expression \"%.64s\" is over the compile budget (%s)",
					  bad, why));
	return problem(p, "UnsupportedValue",
		       tr_strdupf("invalid regular expression \"%.64s\": %s", bad, why));
}

/* ReplacePrefixMatch only makes sense under PathPrefix matches. */
static int check_prefix_rewrite(const struct gapi_rule *r, const struct tr_rule *out,
				struct rule_problem *p)
{
	const struct gapi_filter *f = out->redirect ? out->redirect : out->rewrite;
	const struct gapi_path_mod *mod;

	if (!f)
		return 0;
	mod = f->type == FILTER_REQUEST_REDIRECT ? &f->redirect.path : &f->rewrite.path;
	if (mod->type != PATH_MOD_PREFIX)
		return 0;
	for (size_t i = 0; i < r->nr_matches; i++)
		if (r->matches[i].path_type != MATCH_PREFIX)
			return problem(p, "IncompatibleFilters",
				       tr_strdupf("ReplacePrefixMatch needs PathPrefix matches"));
	return 0;
}

static int check_rule_name(const struct gapi_route *route, size_t index,
			   struct rule_problem *p)
{
	const char *name = route->rules[index].name;

	for (size_t i = 0; name && i < index; i++)
		if (route->rules[i].name && !strcmp(route->rules[i].name, name))
			return problem(p, "UnsupportedValue",
				       tr_strdupf("rule name \"%s\" is not unique", name));
	return 0;
}

static int validate_rule(const struct gapi_route *route, size_t index, struct tr_rule *out,
			 struct rule_problem *p)
{
	const struct gapi_rule *r = &route->rules[index];
	int ret;

	out->redirect = find_filter(r, FILTER_REQUEST_REDIRECT);
	out->rewrite = find_filter(r, FILTER_URL_REWRITE);
	ret = check_rule_name(route, index, p);
	if (!ret)
		ret = check_filters(route->kind, r->filters, r->nr_filters, p);
	for (size_t i = 0; !ret && i < r->nr_backends; i++)
		ret = check_filters(route->kind, r->backends[i].filters,
				    r->backends[i].nr_filters, p);
	for (size_t i = 0; !ret && i < r->nr_matches; i++)
		ret = check_regexes(&r->matches[i], out, p);
	if (!ret)
		ret = check_prefix_rewrite(r, out, p);
	return ret;
}

static int resolve_backends(struct tr_ctx *c, struct tr_route_info *info, struct tr_rule *out)
{
	const struct gapi_rule *r = out->rule;
	const char *reason;
	char *msg;
	int ret;

	out->backends = calloc(r->nr_backends ? r->nr_backends : 1, sizeof(*out->backends));
	if (!out->backends)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_backends; i++) {
		ret = tr_resolve_backend(c, &r->backends[i], &out->backends[i], &reason, &msg);
		if (ret)
			return ret;
		out->nr_backends++;
		out->total_weight += r->backends[i].weight;
		if (!reason)
			continue;
		if (info->refs_reason) {
			free(msg);	/* ResolvedRefs names the first bad reference */
			continue;
		}
		info->refs_reason = reason;
		info->refs_message = msg;
	}
	return 0;
}

int tr_build_rules(struct tr_ctx *c, struct tr_route_info *info)
{
	const struct gapi_route *route = info->route;
	int ret;

	info->rules = calloc(route->nr_rules ? route->nr_rules : 1, sizeof(*info->rules));
	if (!info->rules)
		return -ENOMEM;
	for (size_t i = 0; i < route->nr_rules; i++) {
		struct tr_rule *out = &info->rules[i];
		struct rule_problem p = { 0 };

		out->route = route;
		out->rule = &route->rules[i];
		out->index = i;
		ret = validate_rule(route, i, out, &p);
		if (!ret)
			ret = resolve_backends(c, info, out);
		out->valid = !p.reason;
		out->invalid_reason = p.reason;
		out->invalid_message = p.message;
		if (ret)
			return ret;
		info->nr_valid_rules += out->valid;
	}
	return 0;
}

void tr_rules_free(struct tr_rule *rules, size_t nr)
{
	for (size_t i = 0; rules && i < nr; i++) {
		free(rules[i].backends);
		free(rules[i].invalid_message);
	}
	free(rules);
}
