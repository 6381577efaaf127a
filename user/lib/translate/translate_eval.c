// SPDX-License-Identifier: Apache-2.0
/* The request evaluator: filters, redirects and the weighted pick. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "translate_eval.h"
#include "translate_int.h"

const char *ev_header_get(const struct ev_headers *h, const char *name)
{
	for (size_t i = 0; i < h->nr; i++)
		if (!strcasecmp(h->items[i].name, name))
			return h->items[i].value;
	return NULL;
}

/*
 * A field is one allocation, the value after the name's NUL (value points
 * into name's block, so only name is freed), and items grow by doubling:
 * every proxied request copies its head here, three mallocs a field were
 * most of the evaluator's cost per call.
 */
static int headers_append(struct ev_headers *h, const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	char *p;

	/* full: 8 at first, then at every power of two (a remove only leaves more room) */
	if (!h->items || (h->nr >= 8 && !(h->nr & (h->nr - 1)))) {
		struct ev_kv *items = realloc(h->items, (h->nr < 8 ? 8 : h->nr * 2) *
						 sizeof(*items));

		if (!items)
			return -ENOMEM;
		h->items = items;
	}
	p = malloc(nl + vl);
	if (!p)
		return -ENOMEM;
	memcpy(p, name, nl);
	memcpy(p + nl, value, vl);
	h->items[h->nr].name = p;
	h->items[h->nr].value = p + nl;
	h->nr++;
	return 0;
}

static void headers_remove(struct ev_headers *h, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nr; i++) {
		if (strcasecmp(h->items[i].name, name)) {
			h->items[n++] = h->items[i];
			continue;
		}
		free(h->items[i].name);
	}
	h->nr = n;
}

static void headers_free(struct ev_headers *h)
{
	for (size_t i = 0; i < h->nr; i++)
		free(h->items[i].name);
	free(h->items);
	memset(h, 0, sizeof(*h));
}

/*
 * set replaces every value of a name, add appends one more value (the
 * receiver joins them with ","), remove drops the name: in that order.
 */
static int apply_header_mod(struct ev_headers *h, const struct gapi_header_mod *mod)
{
	int ret = 0;

	for (size_t i = 0; i < mod->nr_set && !ret; i++) {
		headers_remove(h, mod->set[i].name);
		ret = headers_append(h, mod->set[i].name, mod->set[i].value);
	}
	for (size_t i = 0; i < mod->nr_add && !ret; i++)
		ret = headers_append(h, mod->add[i].name, mod->add[i].value);
	for (size_t i = 0; i < mod->nr_remove && !ret; i++)
		headers_remove(h, mod->remove[i]);
	return ret;
}

/* Replace the path of target per mod; the query string is kept. */
static char *rewrite_path(const char *target, const struct gapi_match *m,
			  const struct gapi_path_mod *mod)
{
	const char *q = strchr(target, '?');
	size_t path_len = q ? (size_t)(q - target) : strlen(target);
	const char *query = q ? q : "";
	size_t plen, vlen;
	const char *rest;

	if (mod->type == PATH_MOD_NONE)
		return strdup(target);
	vlen = strlen(mod->value);
	if (mod->type == PATH_MOD_FULL)
		return tr_strdupf("%s%s", mod->value, query);
	/* ReplacePrefixMatch: swap the matched prefix, keep one '/' at the seam. */
	plen = m && m->path_type == MATCH_PREFIX ? strlen(m->path) : 1;
	if (plen > 1 && m->path[plen - 1] == '/')
		plen--;
	if (plen == 1)
		plen = 0;	/* prefix "/" matched nothing but the root */
	rest = target + (plen < path_len ? plen : path_len);
	path_len -= rest - target;
	if (vlen && mod->value[vlen - 1] == '/' && path_len && rest[0] == '/') {
		rest++;
		path_len--;
	}
	if (!vlen && !path_len)
		return tr_strdupf("/%s", query);
	return tr_strdupf("%s%.*s%s", mod->value, (int)path_len, rest, query);
}

static uint16_t scheme_port(const char *scheme)
{
	return !strcmp(scheme, "https") ? 443 : 80;
}

static int build_redirect(const struct ev_request *req, const struct gapi_match *m,
			  const struct gapi_redirect *rd, struct ev_result *out)
{
	const char *target = req->target && *req->target ? req->target : "/";
	struct ev_redirect *r = &out->redirect;
	uint16_t port;

	r->scheme = strdup(rd->scheme ? rd->scheme : req->scheme ? req->scheme : "http");
	r->host = strdup(rd->hostname ? rd->hostname : req->host ? req->host : "");
	r->path = rewrite_path(target, m, &rd->path);
	if (!r->scheme || !r->host || !r->path)
		return -ENOMEM;
	/* No port given: the new scheme's well-known port, else the request's. */
	port = rd->port ? rd->port : rd->scheme ? scheme_port(rd->scheme) :
	       req->port ? req->port : scheme_port(r->scheme);
	r->port = port == scheme_port(r->scheme) ? 0 : port;
	if (r->port)
		r->location = tr_strdupf("%s://%s:%u%s", r->scheme, r->host, r->port, r->path);
	else
		r->location = tr_strdupf("%s://%s%s", r->scheme, r->host, r->path);
	out->status = rd->status_code;
	return r->location ? 0 : -ENOMEM;
}

const struct tr_backend *ev_pick_backend(const struct tr_backend *b, size_t nr,
					 uint64_t draw)
{
	uint64_t total = 0;

	for (size_t i = 0; i < nr; i++)
		total += b[i].weight;
	if (!total)
		return NULL;
	draw %= total;
	for (size_t i = 0; i < nr; i++) {
		if (draw < b[i].weight)
			return &b[i];
		draw -= b[i].weight;
	}
	return NULL;
}

const struct tr_backend *ev_pick_l4(const struct tr_l4 *l4, uint64_t draw)
{
	uint64_t total = 0;

	for (size_t i = 0; i < l4->nr; i++)
		total += l4->items[i].weight;
	if (!total)
		return NULL;
	draw %= total;
	for (size_t i = 0; i < l4->nr; i++) {
		if (draw < l4->items[i].weight)
			return l4->items[i].backend;
		draw -= l4->items[i].weight;
	}
	return NULL;
}

static int backend_status(const struct tr_backend *b)
{
	if (!b)
		return 500;
	if (b->state == TR_BACKEND_UNRESOLVED)
		return 500;
	return b->state == TR_BACKEND_NO_ENDPOINTS ? 503 : 200;
}

static int apply_filters(const struct gapi_filter *f, size_t nr, const struct ev_request *req,
			 const struct gapi_match *m, struct ev_result *out)
{
	int ret = 0;

	for (size_t i = 0; i < nr && !ret; i++) {
		char *t;

		switch (f[i].type) {
		case FILTER_REQUEST_HEADER:
			ret = apply_header_mod(&out->request_headers, &f[i].header_mod);
			break;
		case FILTER_RESPONSE_HEADER:
			ret = apply_header_mod(&out->response_headers, &f[i].header_mod);
			break;
		case FILTER_URL_REWRITE:
			t = rewrite_path(out->target, m, &f[i].rewrite.path);
			if (!t)
				return -ENOMEM;
			free(out->target);
			out->target = t;
			if (!f[i].rewrite.hostname)
				break;
			headers_remove(&out->request_headers, "Host");
			ret = headers_append(&out->request_headers, "Host",
					     f[i].rewrite.hostname);
			break;
		default:
			break;	/* mirrors copy traffic elsewhere; redirects handled before */
		}
	}
	return ret;
}

static int copy_request(const struct ev_request *req, struct ev_result *out)
{
	int ret = 0;

	out->target = strdup(req->target && *req->target ? req->target : "/");
	if (!out->target)
		return -ENOMEM;
	for (size_t i = 0; i < req->nr_headers && !ret; i++)
		ret = headers_append(&out->request_headers, req->headers[i].name,
				     req->headers[i].value);
	return ret;
}

/* A matched entry: redirect, or filters then the weighted pick. */
static int evaluate_entry(const struct tr_entry *e, const struct ev_request *req,
			  uint64_t draw, struct ev_result *out)
{
	const struct tr_rule *r = e->rule;
	int ret;

	out->entry = e;
	if (r->redirect) {
		/* Header filters still shape the redirect response. */
		ret = apply_filters(r->rule->filters, r->rule->nr_filters, req, e->match, out);
		return ret ? ret : build_redirect(req, e->match, &r->redirect->redirect, out);
	}
	ret = apply_filters(r->rule->filters, r->rule->nr_filters, req, e->match, out);
	if (ret)
		return ret;
	out->backend = ev_pick_backend(r->backends, r->nr_backends, draw);
	out->status = backend_status(out->backend);
	if (!out->backend || !out->backend->ref)
		return 0;
	return apply_filters(out->backend->ref->filters, out->backend->ref->nr_filters, req,
			     e->match, out);
}

int ev_evaluate(const struct tr_class *cls, const struct ev_request *req, uint64_t draw,
		struct ev_result *out)
{
	const struct tr_entry *e;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = copy_request(req, out);
	if (ret)
		return ret;
	if (cls->kind == ROUTE_KIND_COUNT) {
		/* No route: plain Kubernetes, the port's own endpoints. */
		out->backend = cls->l4.nr ? cls->l4.items[0].backend : NULL;
		out->status = backend_status(out->backend);
		return 0;
	}
	e = ev_match(cls, req);
	if (!e) {
		out->status = 404;
		return 0;
	}
	return evaluate_entry(e, req, draw, out);
}

void ev_result_free(struct ev_result *r)
{
	free(r->target);
	free(r->redirect.scheme);
	free(r->redirect.host);
	free(r->redirect.path);
	free(r->redirect.location);
	headers_free(&r->request_headers);
	headers_free(&r->response_headers);
	memset(r, 0, sizeof(*r));
}
