// SPDX-License-Identifier: Apache-2.0
/*
 * Precedence of table entries, as the HTTPRoute and GRPCRoute specs give it.
 *
 * HTTPRoute, across all rules of all applicable routes: Exact path, then the
 * longest PathPrefix, then a method match, then the most header matches,
 * then the most query param matches. RegularExpression paths are
 * implementation-specific: here they rank after every PathPrefix, longer
 * expressions first. A rule without matches is PathPrefix "/".
 *
 * GRPCRoute: the most characters in a matching service, then in a matching
 * method, then the most header matches (hostnames play no part in mesh).
 *
 * Ties: the oldest route (creationTimestamp), then "{namespace}/{name}" in
 * alphabetical order, then rule order, then match order within the rule.
 */
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

/* Compare "a_ns/a_name" with "b_ns/b_name" without building the strings. */
static int ns_name_cmp(const struct k8s_meta *a, const struct k8s_meta *b)
{
	const char *pa[2] = { a->namespace ? a->namespace : "", a->name };
	const char *pb[2] = { b->namespace ? b->namespace : "", b->name };
	int ia = 0, ib = 0;
	const char *sa = pa[0], *sb = pb[0];

	for (;;) {
		int ca = *sa ? (unsigned char)*sa : ia == 0 ? '/' : 0;
		int cb = *sb ? (unsigned char)*sb : ib == 0 ? '/' : 0;

		if (ca != cb)
			return ca - cb;
		if (!ca)
			return 0;
		if (*sa)
			sa++;
		else
			sa = pa[++ia];
		if (*sb)
			sb++;
		else
			sb = pb[++ib];
	}
}

int tr_route_cmp(const struct gapi_route *a, const struct gapi_route *b)
{
	if (a->meta.creation_time != b->meta.creation_time)
		return a->meta.creation_time < b->meta.creation_time ? -1 : 1;
	return ns_name_cmp(&a->meta, &b->meta);
}

static int path_rank(const struct gapi_match *m)
{
	if (!m || m->path_type == MATCH_PREFIX)
		return 1;
	return m->path_type == MATCH_EXACT ? 0 : 2;
}

/* Prefix length without a trailing '/', which the spec ignores. */
static size_t path_len(const struct gapi_match *m)
{
	size_t n;

	if (!m)
		return 1;
	n = strlen(m->path);
	if (m->path_type == MATCH_PREFIX && n > 1 && m->path[n - 1] == '/')
		n--;
	return n;
}

static size_t nr_headers(const struct gapi_match *m)
{
	return m ? m->nr_headers : 0;
}

static int cmp_size_desc(size_t a, size_t b)
{
	return a == b ? 0 : a > b ? -1 : 1;
}

static int http_cmp(const struct gapi_match *a, const struct gapi_match *b)
{
	int d = path_rank(a) - path_rank(b);

	if (d)
		return d;
	if (path_rank(a) != 0) {
		d = cmp_size_desc(path_len(a), path_len(b));
		if (d)
			return d;
	}
	d = (int)!(a && a->method) - (int)!(b && b->method);
	if (d)
		return d;
	d = cmp_size_desc(nr_headers(a), nr_headers(b));
	if (d)
		return d;
	return cmp_size_desc(a ? a->nr_query : 0, b ? b->nr_query : 0);
}

static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static int grpc_cmp(const struct gapi_match *a, const struct gapi_match *b)
{
	int d = cmp_size_desc(str_len(a ? a->grpc_service : NULL),
			      str_len(b ? b->grpc_service : NULL));

	if (d)
		return d;
	d = cmp_size_desc(str_len(a ? a->grpc_method : NULL), str_len(b ? b->grpc_method : NULL));
	if (d)
		return d;
	return cmp_size_desc(nr_headers(a), nr_headers(b));
}

static int tie_cmp(const struct tr_entry *a, const struct tr_entry *b)
{
	int d = a->rule->route == b->rule->route ? 0 :
		tr_route_cmp(a->rule->route, b->rule->route);

	if (d)
		return d;
	if (a->rule->index != b->rule->index)
		return a->rule->index < b->rule->index ? -1 : 1;
	return a->match_index < b->match_index ? -1 : a->match_index > b->match_index;
}

static int http_entry_cmp(const void *pa, const void *pb)
{
	const struct tr_entry *a = pa, *b = pb;
	int d = http_cmp(a->match, b->match);

	return d ? d : tie_cmp(a, b);
}

static int grpc_entry_cmp(const void *pa, const void *pb)
{
	const struct tr_entry *a = pa, *b = pb;
	int d = grpc_cmp(a->match, b->match);

	return d ? d : tie_cmp(a, b);
}

static int l4_entry_cmp(const void *pa, const void *pb)
{
	return tie_cmp(pa, pb);
}

void tr_sort_entries(struct tr_entry *e, size_t nr, enum gapi_route_kind kind)
{
	int (*cmp)(const void *, const void *) = l4_entry_cmp;

	if (nr < 2)
		return;
	if (kind == ROUTE_HTTP)
		cmp = http_entry_cmp;
	else if (kind == ROUTE_GRPC)
		cmp = grpc_entry_cmp;
	qsort(e, nr, sizeof(*e), cmp);
}
