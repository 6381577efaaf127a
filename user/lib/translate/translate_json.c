// SPDX-License-Identifier: Apache-2.0
/* `gammad translate --json`: the format is documented in docs/TRANSLATE.md. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "base/json_writer.h"
#include "status.h"
#include "translate_output.h"

const char *tr_backend_state_name(enum tr_backend_state s)
{
	switch (s) {
	case TR_BACKEND_OK:
		return "OK";
	case TR_BACKEND_UNRESOLVED:
		return "Unresolved";
	default:
		return "NoEndpoints";
	}
}

static void write_kv_matches(struct json_writer *w, const char *key,
			     const struct gapi_kv_match *kv, size_t nr)
{
	if (!nr)
		return;
	jw_key(w, key);
	jw_arr_begin(w);
	for (size_t i = 0; i < nr; i++) {
		jw_obj_begin(w);
		jw_kstr(w, "type", gapi_match_type_name(kv[i].type));
		jw_kstr(w, "name", kv[i].name);
		jw_kstr(w, "value", kv[i].value);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void write_match(struct json_writer *w, const struct gapi_match *m)
{
	jw_key(w, "match");
	if (!m) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	if (m->path) {
		jw_key(w, "path");
		jw_obj_begin(w);
		jw_kstr(w, "type", gapi_match_type_name(m->path_type));
		jw_kstr(w, "value", m->path);
		jw_obj_end(w);
	}
	if (m->method)
		jw_kstr(w, "method", m->method);
	if (m->grpc_service || m->grpc_method) {
		jw_key(w, "grpcMethod");
		jw_obj_begin(w);
		jw_kstr(w, "type", gapi_match_type_name(m->grpc_type));
		if (m->grpc_service)
			jw_kstr(w, "service", m->grpc_service);
		if (m->grpc_method)
			jw_kstr(w, "method", m->grpc_method);
		jw_obj_end(w);
	}
	write_kv_matches(w, "headers", m->headers, m->nr_headers);
	write_kv_matches(w, "queryParams", m->query, m->nr_query);
	jw_obj_end(w);
}

static void write_headers(struct json_writer *w, const char *key,
			  const struct gapi_header *h, size_t nr)
{
	if (!nr)
		return;
	jw_key(w, key);
	jw_arr_begin(w);
	for (size_t i = 0; i < nr; i++) {
		jw_obj_begin(w);
		jw_kstr(w, "name", h[i].name);
		jw_kstr(w, "value", h[i].value);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void write_header_mod(struct json_writer *w, const struct gapi_header_mod *m)
{
	write_headers(w, "set", m->set, m->nr_set);
	write_headers(w, "add", m->add, m->nr_add);
	if (!m->nr_remove)
		return;
	jw_key(w, "remove");
	jw_arr_begin(w);
	for (size_t i = 0; i < m->nr_remove; i++)
		jw_str(w, m->remove[i]);
	jw_arr_end(w);
}

static void write_path_mod(struct json_writer *w, const struct gapi_path_mod *p)
{
	if (p->type == PATH_MOD_NONE)
		return;
	jw_key(w, "path");
	jw_obj_begin(w);
	jw_kstr(w, "type", p->type == PATH_MOD_FULL ? "ReplaceFullPath" : "ReplacePrefixMatch");
	jw_kstr(w, "value", p->value);
	jw_obj_end(w);
}

static void write_filter(struct json_writer *w, const struct gapi_filter *f)
{
	jw_obj_begin(w);
	jw_kstr(w, "type", f->type_name);
	switch (f->type) {
	case FILTER_REQUEST_HEADER:
	case FILTER_RESPONSE_HEADER:
		write_header_mod(w, &f->header_mod);
		break;
	case FILTER_REQUEST_REDIRECT:
		if (f->redirect.scheme)
			jw_kstr(w, "scheme", f->redirect.scheme);
		if (f->redirect.hostname)
			jw_kstr(w, "hostname", f->redirect.hostname);
		if (f->redirect.port)
			jw_kint(w, "port", f->redirect.port);
		write_path_mod(w, &f->redirect.path);
		jw_kint(w, "statusCode", f->redirect.status_code);
		break;
	case FILTER_URL_REWRITE:
		if (f->rewrite.hostname)
			jw_kstr(w, "hostname", f->rewrite.hostname);
		write_path_mod(w, &f->rewrite.path);
		break;
	case FILTER_REQUEST_MIRROR:
		jw_kstr(w, "namespace", f->mirror.backend->namespace);
		jw_kstr(w, "name", f->mirror.backend->name);
		jw_kint(w, "port", f->mirror.backend->port);
		jw_kint(w, "percent", f->mirror.percent);
		break;
	default:
		break;
	}
	jw_obj_end(w);
}

static void write_filters(struct json_writer *w, const struct gapi_filter *f, size_t nr)
{
	if (!nr)
		return;
	jw_key(w, "filters");
	jw_arr_begin(w);
	for (size_t i = 0; i < nr; i++)
		write_filter(w, &f[i]);
	jw_arr_end(w);
}

static void write_endpoints(struct json_writer *w, const struct tr_endpoint_set *set)
{
	char addr[INET6_ADDRSTRLEN];

	jw_key(w, "endpoints");
	jw_arr_begin(w);
	for (size_t i = 0; set && i < set->nr; i++) {
		const struct tr_endpoint *e = &set->items[i];

		jw_obj_begin(w);
		jw_kstr(w, "address", ip_addr_str(&e->addr, addr, sizeof(addr)));
		jw_kint(w, "port", e->port);
		if (e->target_name)
			jw_kstr(w, "pod", e->target_name);
		if (e->node_name)
			jw_kstr(w, "node", e->node_name);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	if (set && set->truncated)
		jw_kbool(w, "endpointsTruncated", true);
	if (set && set->policy) {
		char buf[96], *save, *word;

		/* the words of tr_ep_policy_str, as a list */
		tr_ep_policy_str(set->policy, buf, sizeof(buf));
		jw_key(w, "endpointPolicy");
		jw_arr_begin(w);
		for (word = strtok_r(buf, ",", &save); word; word = strtok_r(NULL, ",", &save))
			jw_str(w, word);
		jw_arr_end(w);
	}
}

static void write_backend(struct json_writer *w, const struct tr_backend *b, uint64_t weight)
{
	jw_obj_begin(w);
	jw_kstr(w, "namespace", b->namespace);
	jw_kstr(w, "name", b->name);
	jw_kint(w, "port", b->port);
	jw_key(w, "weight");
	jw_uint(w, weight);
	jw_kstr(w, "state", tr_backend_state_name(b->state));
	if (b->affinity_timeout) {
		/* only when set: translations of Services without it stay as they were */
		jw_key(w, "sessionAffinity");
		jw_obj_begin(w);
		jw_kstr(w, "type", "ClientIP");
		jw_kint(w, "timeoutSeconds", b->affinity_timeout);
		jw_obj_end(w);
	}
	if (b->ref)
		write_filters(w, b->ref->filters, b->ref->nr_filters);
	write_endpoints(w, b->endpoints);
	jw_obj_end(w);
}

static void write_rule_identity(struct json_writer *w, const struct tr_rule *r)
{
	jw_key(w, "route");
	jw_obj_begin(w);
	jw_kstr(w, "kind", gapi_kind_name(r->route->kind));
	jw_kstr(w, "namespace", r->route->meta.namespace);
	jw_kstr(w, "name", r->route->meta.name);
	jw_obj_end(w);
	jw_kint(w, "rule", (int64_t)r->index);
	if (r->rule->name)
		jw_kstr(w, "ruleName", r->rule->name);
}

static void write_entry(struct json_writer *w, const struct tr_entry *e)
{
	const struct tr_rule *r = e->rule;

	jw_obj_begin(w);
	write_rule_identity(w, r);
	jw_kint(w, "matchIndex", (int64_t)e->match_index);
	write_match(w, e->match);
	if (r->userspace_only)
		jw_kbool(w, "userspaceOnly", true);
	write_filters(w, r->rule->filters, r->rule->nr_filters);
	if (r->rule->timeout_request || r->rule->timeout_backend) {
		jw_key(w, "timeouts");
		jw_obj_begin(w);
		if (r->rule->timeout_request)
			jw_kstr(w, "request", r->rule->timeout_request);
		if (r->rule->timeout_backend)
			jw_kstr(w, "backendRequest", r->rule->timeout_backend);
		jw_obj_end(w);
	}
	jw_key(w, "totalWeight");
	jw_uint(w, r->total_weight);
	jw_key(w, "backends");
	jw_arr_begin(w);
	for (size_t i = 0; i < r->nr_backends; i++)
		write_backend(w, &r->backends[i], r->backends[i].weight);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void write_l4(struct json_writer *w, const struct tr_l4 *l4)
{
	jw_key(w, "l4");
	jw_obj_begin(w);
	jw_kbool(w, "l7Unenforced", l4->flags & TR_L4_L7_UNENFORCED);
	jw_kbool(w, "weightsScaled", l4->flags & TR_L4_SCALED);
	jw_kbool(w, "noRoute", l4->flags & TR_L4_NO_ROUTE);
	jw_key(w, "totalWeight");
	jw_uint(w, l4->total_weight);
	jw_key(w, "backends");
	jw_arr_begin(w);
	for (size_t i = 0; i < l4->nr; i++)
		write_backend(w, l4->items[i].backend, l4->items[i].weight);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void write_class(struct json_writer *w, const struct tr_class *c)
{
	jw_obj_begin(w);
	jw_kstr(w, "clientNamespace", c->client_namespace);
	jw_kstr(w, "kind", c->kind == ROUTE_KIND_COUNT ? NULL : gapi_kind_name(c->kind));
	jw_kbool(w, "needsL7", c->needs_l7);
	jw_key(w, "rules");
	jw_arr_begin(w);
	for (size_t i = 0; i < c->nr_entries; i++)
		write_entry(w, &c->entries[i]);
	jw_arr_end(w);
	write_l4(w, &c->l4);
	jw_obj_end(w);
}

static void write_port(struct json_writer *w, const struct tr_port *p)
{
	char addr[INET6_ADDRSTRLEN];

	jw_obj_begin(w);
	jw_kstr(w, "namespace", p->svc->meta.namespace);
	jw_kstr(w, "service", p->svc->meta.name);
	jw_kint(w, "port", p->port->port);
	jw_kstr(w, "portName", p->port->name);
	jw_kstr(w, "protocol", l4_proto_name(p->port->protocol));
	jw_kstr(w, "appProtocol", p->port->app_protocol);
	jw_key(w, "clusterIPs");
	jw_arr_begin(w);
	for (size_t i = 0; i < p->svc->nr_cluster_ips; i++)
		jw_str(w, ip_addr_str(&p->svc->cluster_ips[i], addr, sizeof(addr)));
	jw_arr_end(w);
	jw_key(w, "classes");
	jw_arr_begin(w);
	for (size_t i = 0; i < p->nr_classes; i++)
		write_class(w, &p->classes[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void write_parent_ref(struct json_writer *w, const struct gapi_parent_ref *p)
{
	jw_key(w, "parentRef");
	jw_obj_begin(w);
	jw_kstr(w, "group", p->group);
	jw_kstr(w, "kind", p->kind);
	jw_kstr(w, "namespace", p->namespace);
	jw_kstr(w, "name", p->name);
	if (p->port)
		jw_kint(w, "port", p->port);
	if (p->section_name)
		jw_kstr(w, "sectionName", p->section_name);
	jw_obj_end(w);
}

static void write_parent_status(struct json_writer *w, const struct gapi_route *route,
				const struct tr_parent_status *ps)
{
	jw_obj_begin(w);
	write_parent_ref(w, ps->ref);
	jw_kstr(w, "controllerName", TR_CONTROLLER_NAME);
	jw_key(w, "conditions");
	jw_arr_begin(w);
	for (size_t i = 0; i < ps->nr_conditions; i++) {
		const struct tr_condition *c = &ps->conditions[i];

		jw_obj_begin(w);
		jw_kstr(w, "type", c->type);
		jw_kstr(w, "status", c->status ? "True" : "False");
		jw_kstr(w, "reason", c->reason);
		jw_kstr(w, "message", c->message ? c->message : "");
		jw_kint(w, "observedGeneration", route->meta.generation);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

static void write_route(struct json_writer *w, const struct tr_route_status *rs)
{
	const struct gapi_route *r = rs->route;

	jw_obj_begin(w);
	jw_kstr(w, "kind", gapi_kind_name(r->kind));
	jw_kstr(w, "apiVersion", r->api_version);
	jw_kstr(w, "namespace", r->meta.namespace);
	jw_kstr(w, "name", r->meta.name);
	jw_kint(w, "generation", r->meta.generation);
	jw_key(w, "parents");
	jw_arr_begin(w);
	for (size_t i = 0; i < rs->nr_parents; i++)
		write_parent_status(w, r, &rs->parents[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

void tr_json_route_statuses(struct json_writer *w, const struct tr_result *r)
{
	jw_key(w, "routes");
	jw_arr_begin(w);
	for (size_t i = 0; i < r->nr_routes; i++)
		write_route(w, &r->routes[i]);
	jw_arr_end(w);
}

static const char *level_name(enum log_level l)
{
	return l == LOG_ERROR ? "error" : l == LOG_WARN ? "warn" : l == LOG_INFO ? "info" :
	       "debug";
}

void tr_json_diagnostics(struct json_writer *w, const struct diag *dg)
{
	jw_key(w, "diagnostics");
	jw_arr_begin(w);
	for (size_t i = 0; dg && i < dg->nr; i++) {
		const struct diag_entry *e = &dg->entries[i];

		jw_obj_begin(w);
		jw_kstr(w, "level", level_name(e->level));
		jw_kstr(w, "file", e->file);
		jw_kint(w, "line", e->line);
		jw_kstr(w, "field", e->field);
		jw_kstr(w, "message", e->msg);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

int tr_write_json(FILE *out, const struct tr_result *r, const struct diag *dg, bool pretty)
{
	struct json_writer w;

	jw_init(&w, out, pretty);
	jw_obj_begin(&w);
	jw_kstr(&w, "apiVersion", "gammad.io/translate/v1");
	jw_key(&w, "ports");
	jw_arr_begin(&w);
	for (size_t i = 0; i < r->nr_ports; i++)
		write_port(&w, &r->ports[i]);
	jw_arr_end(&w);
	tr_json_route_statuses(&w, r);
	tr_json_diagnostics(&w, dg);
	jw_obj_end(&w);
	return jw_finish(&w);
}
