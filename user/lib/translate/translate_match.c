// SPDX-License-Identifier: Apache-2.0
/* Request matching for the evaluator (semantics in translate_eval.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/regex.h"
#include "translate_eval.h"

/*
 * Whole-value match with the pattern compiled once (base/regex.h); one that
 * does not compile, or a match over its budget, never matches.
 */
static bool regex_full_match(const char *re, const char *s, size_t len)
{
	return rx_match(re, s, len) == 1;
}

static bool value_match(enum gapi_match_type type, const char *want, const char *got,
			size_t got_len)
{
	if (!got)
		return false;
	if (type == MATCH_REGEX)
		return regex_full_match(want, got, got_len);
	return strlen(want) == got_len && !memcmp(want, got, got_len);
}

/* Length of a PathPrefix value without the trailing '/' the spec ignores. */
static size_t prefix_len(const char *prefix)
{
	size_t n = strlen(prefix);

	return n > 1 && prefix[n - 1] == '/' ? n - 1 : n;
}

static bool path_match(const struct gapi_match *m, const char *path, size_t len)
{
	size_t n;

	switch (m->path_type) {
	case MATCH_EXACT:
		return value_match(MATCH_EXACT, m->path, path, len);
	case MATCH_REGEX:
		return regex_full_match(m->path, path, len);
	default:
		n = prefix_len(m->path);
		if (n == 1)
			return true;	/* "/" */
		return len >= n && !memcmp(path, m->path, n) && (len == n || path[n] == '/');
	}
}

static const char *request_header(const struct ev_request *req, const char *name)
{
	for (size_t i = 0; i < req->nr_headers; i++)
		if (!strcasecmp(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

/* First value of query parameter name in query (no '?'), with its length. */
static const char *query_param(const char *query, const char *name, size_t *len)
{
	size_t n = strlen(name);

	while (query && *query) {
		const char *end = strchr(query, '&');
		size_t item = end ? (size_t)(end - query) : strlen(query);

		if (item > n && !memcmp(query, name, n) && query[n] == '=') {
			*len = item - n - 1;
			return query + n + 1;
		}
		if (item == n && !memcmp(query, name, n)) {
			*len = 0;
			return query + n;
		}
		query = end ? end + 1 : NULL;
	}
	return NULL;
}

static bool headers_match(const struct gapi_match *m, const struct ev_request *req)
{
	for (size_t i = 0; i < m->nr_headers; i++) {
		const char *v = request_header(req, m->headers[i].name);

		if (!value_match(m->headers[i].type, m->headers[i].value, v, v ? strlen(v) : 0))
			return false;
	}
	return true;
}

static bool http_match(const struct gapi_match *m, const struct ev_request *req)
{
	const char *target = req->target && *req->target ? req->target : "/";
	const char *q = strchr(target, '?');
	size_t path_len = q ? (size_t)(q - target) : strlen(target);

	if (!path_match(m, target, path_len))
		return false;
	if (m->method && strcmp(m->method, req->method ? req->method : "GET"))
		return false;
	if (!headers_match(m, req))
		return false;
	for (size_t i = 0; i < m->nr_query; i++) {
		size_t len = 0;
		const char *v = query_param(q ? q + 1 : NULL, m->query[i].name, &len);

		if (!value_match(m->query[i].type, m->query[i].value, v, len))
			return false;
	}
	return true;
}

static bool grpc_field_match(enum gapi_match_type type, const char *want, const char *got)
{
	return !want || value_match(type, want, got, got ? strlen(got) : 0);
}

static bool grpc_match(const struct gapi_match *m, const struct ev_request *req)
{
	return grpc_field_match(m->grpc_type, m->grpc_service, req->grpc_service) &&
	       grpc_field_match(m->grpc_type, m->grpc_method, req->grpc_method) &&
	       headers_match(m, req);
}

const struct tr_entry *ev_match(const struct tr_class *cls, const struct ev_request *req)
{
	for (size_t i = 0; i < cls->nr_entries; i++) {
		const struct tr_entry *e = &cls->entries[i];

		if (!e->match)
			return e;
		if (cls->kind == ROUTE_GRPC ? grpc_match(e->match, req) : http_match(e->match, req))
			return e;
	}
	return NULL;
}
