// SPDX-License-Identifier: Apache-2.0
/* `gammad translate` without --json: one line per rule, backend and condition. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "status.h"
#include "translate_output.h"

const char *tr_format_match(const struct gapi_match *m, char *buf, size_t len)
{
	size_t n = 0;

	if (!m) {
		snprintf(buf, len, "*");
		return buf;
	}
	buf[0] = 0;
	if (m->path)
		n += snprintf(buf + n, len - n, "%s %s", gapi_match_type_name(m->path_type),
			      m->path);
	if (n < len && (m->grpc_service || m->grpc_method))
		n += snprintf(buf + n, len - n, "%s/%s", m->grpc_service ? m->grpc_service : "*",
			      m->grpc_method ? m->grpc_method : "*");
	if (n < len && m->method)
		n += snprintf(buf + n, len - n, " method %s", m->method);
	for (size_t i = 0; i < m->nr_headers && n < len; i++)
		n += snprintf(buf + n, len - n, " header %s%s%s", m->headers[i].name,
			      m->headers[i].type == MATCH_REGEX ? "~" : "=", m->headers[i].value);
	for (size_t i = 0; i < m->nr_query && n < len; i++)
		n += snprintf(buf + n, len - n, " query %s%s%s", m->query[i].name,
			      m->query[i].type == MATCH_REGEX ? "~" : "=", m->query[i].value);
	if (!buf[0])
		snprintf(buf, len, "*");
	return buf;
}

static void print_backend(FILE *out, const char *indent, const struct tr_backend *b,
			  uint64_t weight, uint64_t total)
{
	char pol[96] = "";

	if (b->endpoints && b->endpoints->policy)
		tr_ep_policy_str(b->endpoints->policy, pol, sizeof(pol));
	fprintf(out, "%s-> %s/%s:%u weight %llu/%llu %s, %zu endpoint(s)%s%s", indent,
		b->namespace, b->name, b->port, (unsigned long long)weight,
		(unsigned long long)total, tr_backend_state_name(b->state),
		b->endpoints ? b->endpoints->nr : 0, pol[0] ? ", policy " : "", pol);
	if (b->affinity_timeout)
		fprintf(out, ", affinity ClientIP %us", b->affinity_timeout);
	fputc('\n', out);
}

static void print_entry(FILE *out, size_t i, const struct tr_entry *e)
{
	const struct tr_rule *r = e->rule;
	char match[512];

	fprintf(out, "      %zu. %s  [%s %s/%s rule %zu]%s\n", i + 1,
		tr_format_match(e->match, match, sizeof(match)), gapi_kind_name(r->route->kind),
		r->route->meta.namespace, r->route->meta.name, r->index,
		r->userspace_only ? " userspace-only" : "");
	for (size_t f = 0; f < r->rule->nr_filters; f++)
		fprintf(out, "         filter %s\n", r->rule->filters[f].type_name);
	for (size_t b = 0; b < r->nr_backends; b++)
		print_backend(out, "         ", &r->backends[b], r->backends[b].weight,
			      r->total_weight);
	if (!r->nr_backends && !r->redirect)
		fprintf(out, "         -> no backend (500)\n");
}

static void print_class(FILE *out, const struct tr_class *c)
{
	fprintf(out, "  clients %s: %s%s%s%s\n",
		c->client_namespace ? c->client_namespace : "*",
		c->kind == ROUTE_KIND_COUNT ? "no route" : gapi_kind_name(c->kind),
		c->needs_l7 ? ", needs L7" : "",
		c->l4.flags & TR_L4_L7_UNENFORCED ? ", L4 selector is a union" : "",
		c->l4.flags & TR_L4_SCALED ? " (weights scaled to 32 bits)" : "");
	for (size_t i = 0; i < c->nr_entries; i++)
		print_entry(out, i, &c->entries[i]);
	fprintf(out, "    l4:\n");
	for (size_t i = 0; i < c->l4.nr; i++)
		print_backend(out, "      ", c->l4.items[i].backend, c->l4.items[i].weight,
			      c->l4.total_weight);
}

static void print_port(FILE *out, const struct tr_port *p)
{
	char addr[INET6_ADDRSTRLEN];

	fprintf(out, "Service %s/%s port %u", p->svc->meta.namespace, p->svc->meta.name,
		p->port->port);
	if (p->port->name)
		fprintf(out, " (%s)", p->port->name);
	fprintf(out, " %s", l4_proto_name(p->port->protocol));
	for (size_t i = 0; i < p->svc->nr_cluster_ips; i++)
		fprintf(out, " %s", ip_addr_str(&p->svc->cluster_ips[i], addr, sizeof(addr)));
	fprintf(out, "\n");
	for (size_t i = 0; i < p->nr_classes; i++)
		print_class(out, &p->classes[i]);
}

static void print_route(FILE *out, const struct tr_route_status *rs)
{
	const struct gapi_route *r = rs->route;

	fprintf(out, "%s %s/%s (generation %lld)\n", gapi_kind_name(r->kind),
		r->meta.namespace, r->meta.name, r->meta.generation);
	for (size_t i = 0; i < rs->nr_parents; i++) {
		const struct tr_parent_status *ps = &rs->parents[i];

		fprintf(out, "  parent %s %s/%s", ps->ref->kind, ps->ref->namespace, ps->ref->name);
		if (ps->ref->port)
			fprintf(out, " port %u", ps->ref->port);
		if (ps->ref->section_name)
			fprintf(out, " section %s", ps->ref->section_name);
		fprintf(out, "\n");
		for (size_t j = 0; j < ps->nr_conditions; j++)
			fprintf(out, "    %s=%s %s: %s\n", ps->conditions[j].type,
				ps->conditions[j].status ? "True" : "False",
				ps->conditions[j].reason, ps->conditions[j].message);
	}
}

int tr_write_text(FILE *out, const struct tr_result *r, const struct diag *dg)
{
	for (size_t i = 0; i < r->nr_ports; i++)
		print_port(out, &r->ports[i]);
	for (size_t i = 0; i < r->nr_routes; i++)
		print_route(out, &r->routes[i]);
	for (size_t i = 0; dg && i < dg->nr; i++)
		fprintf(out, "%s\n", dg->entries[i].msg);
	return ferror(out) ? -EIO : 0;
}
