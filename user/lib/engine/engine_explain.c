// SPDX-License-Identifier: Apache-2.0
/*
 * engine_explain(): what the engine would do with one request on the
 * tables it serves right now, decided by the same ev_evaluate() as a real
 * request, as JSON (for `gammactl explain` through the agent's /explain).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "base/json_writer.h"
#include "input/gapi.h"
#include "translate/translate_output.h"

static void json_filters(struct json_writer *w, const char *key, const struct gapi_filter *f,
			 size_t nr)
{
	jw_key(w, key);
	jw_arr_begin(w);
	for (size_t i = 0; i < nr; i++)
		jw_str(w, gapi_filter_type_name(f[i].type));
	jw_arr_end(w);
}

static void json_backend(struct json_writer *w, const struct tr_backend *b)
{
	char name[320];

	snprintf(name, sizeof(name), "%s/%s:%u", b->namespace ? b->namespace : "",
		 b->name ? b->name : "", b->port);
	jw_obj_begin(w);
	jw_kstr(w, "backend", name);
	jw_kint(w, "weight", b->weight);
	jw_kstr(w, "state", tr_backend_state_name(b->state));
	jw_kint(w, "endpoints", b->endpoints ? (int64_t)b->endpoints->nr : 0);
	if (b->ref)
		json_filters(w, "filters", b->ref->filters, b->ref->nr_filters);
	jw_obj_end(w);
}

static void json_headers(struct json_writer *w, const char *key, const struct ev_headers *h)
{
	jw_key(w, key);
	jw_arr_begin(w);
	for (size_t i = 0; i < h->nr; i++) {
		char *line = NULL;

		if (asprintf(&line, "%s: %s", h->items[i].name, h->items[i].value) < 0)
			continue;
		jw_str(w, line);
		free(line);
	}
	jw_arr_end(w);
}

int engine_explain(struct engine *e, const struct engine_origin *o, const struct ev_request *req,
		   FILE *out)
{
	struct json_writer w;
	struct eng_tables *t;
	const struct tr_port *port;
	const struct tr_class *cls;
	struct ev_result r;
	char buf[512];
	int err;

	if (!e || !o || !req)
		return -EINVAL;
	t = eng_tables_get(e);
	jw_init(&w, out, true);
	jw_obj_begin(&w);
	jw_kint(&w, "generation", t ? (int64_t)t->generation : 0);
	port = eng_tables_port(t, o);
	if (!port) {
		jw_kbool(&w, "service_port", false);
		jw_kint(&w, "status", 503);	/* what a request gets (start_request) */
		jw_obj_end(&w);
		eng_tables_put(t);
		return jw_finish(&w);
	}
	jw_kbool(&w, "service_port", true);
	snprintf(buf, sizeof(buf), "%s/%s:%u", port->svc->meta.namespace, port->svc->meta.name,
		 port->port->port);
	jw_kstr(&w, "service", buf);
	cls = tr_port_class(port, o->client_ns);
	jw_kstr(&w, "class", cls->client_namespace ? cls->client_namespace : "");
	jw_kstr(&w, "route_kind", cls->kind == ROUTE_KIND_COUNT ? "" : gapi_kind_name(cls->kind));
	/* Not the loop's generator (its thread's alone): any draw will do. */
	err = ev_evaluate(cls, req, eng_now_us() * 0x9E3779B97F4A7C15ULL, &r);
	if (err) {
		eng_tables_put(t);
		return err;
	}
	/* As start_request(): a picked backend without a ready endpoint is a 503. */
	if (r.status == 200 && (!r.backend || !r.backend->endpoints || !r.backend->endpoints->nr))
		r.status = 503;
	jw_kint(&w, "status", r.status);
	if (r.entry) {
		const struct tr_rule *rule = r.entry->rule;

		jw_key(&w, "rule");
		jw_obj_begin(&w);
		jw_kstr(&w, "kind", gapi_kind_name(rule->route->kind));
		jw_kstr(&w, "namespace", rule->route->meta.namespace);
		jw_kstr(&w, "route", rule->route->meta.name);
		jw_kint(&w, "index", (int64_t)rule->index);
		jw_kstr(&w, "name", rule->rule && rule->rule->name ? rule->rule->name : "");
		jw_kstr(&w, "match", r.entry->match ? tr_format_match(r.entry->match, buf, sizeof(buf))
						    : "(every request)");
		if (rule->rule)
			json_filters(&w, "filters", rule->rule->filters, rule->rule->nr_filters);
		jw_key(&w, "backends");
		jw_arr_begin(&w);
		for (size_t i = 0; i < rule->nr_backends; i++)
			json_backend(&w, &rule->backends[i]);
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	if (r.backend) {
		jw_key(&w, "picked");
		json_backend(&w, r.backend);
	}
	if (r.redirect.location)
		jw_kstr(&w, "location", r.redirect.location);
	if (r.status == 200) {
		jw_kstr(&w, "target", r.target);
		json_headers(&w, "request_headers", &r.request_headers);
	}
	json_headers(&w, "response_headers", &r.response_headers);
	jw_obj_end(&w);
	ev_result_free(&r);
	eng_tables_put(t);
	return jw_finish(&w);
}
