// SPDX-License-Identifier: Apache-2.0
/* Destructors of the Gateway API objects (gapi.h). */
#include <stdlib.h>
#include <string.h>

#include "gapi_int.h"

static void kv_list_free(struct gapi_kv_match *kv, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

static void headers_free(struct gapi_header *h, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static void header_mod_free(struct gapi_header_mod *m)
{
	headers_free(m->set, m->nr_set);
	headers_free(m->add, m->nr_add);
	for (size_t i = 0; i < m->nr_remove; i++)
		free(m->remove[i]);
	free(m->remove);
}

static void filter_free(struct gapi_filter *f)
{
	switch (f->type) {
	case FILTER_REQUEST_HEADER:
	case FILTER_RESPONSE_HEADER:
		header_mod_free(&f->header_mod);
		break;
	case FILTER_REQUEST_REDIRECT:
		free(f->redirect.scheme);
		free(f->redirect.hostname);
		free(f->redirect.path.value);
		break;
	case FILTER_URL_REWRITE:
		free(f->rewrite.hostname);
		free(f->rewrite.path.value);
		break;
	case FILTER_REQUEST_MIRROR:
		if (f->mirror.backend)
			gp_backend_ref_free(f->mirror.backend);
		free(f->mirror.backend);
		break;
	default:
		break;
	}
	free(f->type_name);
}

void gp_filters_free(struct gapi_filter *f, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		filter_free(&f[i]);
	free(f);
}

void gp_backend_ref_free(struct gapi_backend_ref *b)
{
	free(b->group);
	free(b->kind);
	free(b->namespace);
	free(b->name);
	gp_filters_free(b->filters, b->nr_filters);
}

void gp_match_free(struct gapi_match *m)
{
	free(m->path);
	free(m->method);
	free(m->grpc_service);
	free(m->grpc_method);
	kv_list_free(m->query, m->nr_query);
	kv_list_free(m->headers, m->nr_headers);
}

static void rule_free(struct gapi_rule *r)
{
	free(r->name);
	for (size_t i = 0; i < r->nr_matches; i++)
		gp_match_free(&r->matches[i]);
	free(r->matches);
	gp_filters_free(r->filters, r->nr_filters);
	for (size_t i = 0; i < r->nr_backends; i++)
		gp_backend_ref_free(&r->backends[i]);
	free(r->backends);
	free(r->timeout_request);
	free(r->timeout_backend);
	free(r->retry_codes);
	free(r->retry_backoff);
}

void gapi_route_free(struct gapi_route *r)
{
	for (size_t i = 0; i < r->nr_parents; i++) {
		struct gapi_parent_ref *p = &r->parents[i];

		free(p->group);
		free(p->kind);
		free(p->namespace);
		free(p->name);
		free(p->section_name);
	}
	free(r->parents);
	for (size_t i = 0; i < r->nr_hostnames; i++)
		free(r->hostnames[i]);
	free(r->hostnames);
	for (size_t i = 0; i < r->nr_rules; i++)
		rule_free(&r->rules[i]);
	free(r->rules);
	free(r->api_version);
	k8s_meta_free(&r->meta);
	memset(r, 0, sizeof(*r));
}

void gapi_reference_grant_free(struct gapi_reference_grant *g)
{
	for (size_t i = 0; i < g->nr_from; i++) {
		free(g->from[i].group);
		free(g->from[i].kind);
		free(g->from[i].namespace);
	}
	free(g->from);
	for (size_t i = 0; i < g->nr_to; i++) {
		free(g->to[i].group);
		free(g->to[i].kind);
		free(g->to[i].name);
	}
	free(g->to);
	k8s_meta_free(&g->meta);
	memset(g, 0, sizeof(*g));
}
