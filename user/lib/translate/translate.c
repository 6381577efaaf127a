// SPDX-License-Identifier: Apache-2.0
/*
 * The translation pipeline: Service ports, then per route its rules (checked,
 * backends resolved) and parentRefs (bound to ports), then the client
 * classes of every port, then the statuses. See translate.h for the rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "translate_int.h"

static int meta_cmp(const struct k8s_meta *a, const struct k8s_meta *b)
{
	int d = strcmp(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "");

	return d ? d : strcmp(a->name, b->name);
}

static int service_ptr_cmp(const void *pa, const void *pb)
{
	const struct k8s_service *a = *(const struct k8s_service *const *)pa;
	const struct k8s_service *b = *(const struct k8s_service *const *)pb;

	return meta_cmp(&a->meta, &b->meta);
}

int tr_port_cmp(const struct tr_port *a, const struct tr_port *b)
{
	if (a->svc != b->svc) {
		int d = meta_cmp(&a->svc->meta, &b->svc->meta);

		if (d)
			return d;
	}
	if (a->port->port != b->port->port)
		return (int)a->port->port - (int)b->port->port;
	return (int)a->port->protocol - (int)b->port->protocol;
}

static int port_cmp(const void *pa, const void *pb)
{
	return tr_port_cmp(pa, pb);
}

/* Headless and ExternalName Services have no virtual IP to route. */
static bool has_frontend(const struct k8s_service *svc)
{
	return svc->type != SVC_HEADLESS && svc->type != SVC_EXTERNAL_NAME;
}

static int init_self(struct tr_ctx *c, struct tr_port *p)
{
	p->self = (struct tr_backend){
		.namespace = p->svc->meta.namespace, .name = p->svc->meta.name,
		.port = p->port->port, .weight = 1,
		.affinity_timeout = p->svc->affinity_timeout,
	};
	p->self.endpoints = tr_endpoint_set_get(c, p->svc, p->port);
	if (!p->self.endpoints)
		return -ENOMEM;
	p->self.state = p->self.endpoints->nr ? TR_BACKEND_OK : TR_BACKEND_NO_ENDPOINTS;
	return 0;
}

static size_t count_ports(const struct k8s_service **svcs, size_t nr)
{
	size_t n = 0;

	for (size_t i = 0; i < nr; i++)
		n += svcs[i]->nr_ports;
	return n;
}

/* Services in name order, at most TR_MAX_SERVICES of them. */
static int collect_services(struct tr_ctx *c, const struct k8s_service ***out, size_t *nr)
{
	const struct model_set *set = &c->m->services;
	const struct k8s_service **svcs;
	size_t n = 0;

	svcs = calloc(set->nr ? set->nr : 1, sizeof(*svcs));
	if (!svcs)
		return -ENOMEM;
	for (size_t i = 0; i < set->nr; i++)
		if (has_frontend(set->items[i]))
			svcs[n++] = set->items[i];
	qsort(svcs, n, sizeof(*svcs), service_ptr_cmp);
	if (n > TR_MAX_SERVICES) {
		const struct k8s_service *first = svcs[TR_MAX_SERVICES];

		diag_report(c->dg, LOG_ERROR, first->meta.loc.file, first->meta.loc.line, NULL,
			    "more than %d Services; %zu Services from %s/%s on (in name order) are not served",
			    TR_MAX_SERVICES, n - TR_MAX_SERVICES, first->meta.namespace,
			    first->meta.name);
		n = TR_MAX_SERVICES;
	}
	*out = svcs;
	*nr = n;
	return 0;
}

static int index_ports(struct tr_ctx *c)
{
	struct tr_result *res = c->res;
	char key[MODEL_KEY_MAX + 16];
	int ret;

	for (size_t i = 0; i < res->nr_ports; i++) {
		struct tr_port *p = &res->ports[i];

		snprintf(key, sizeof(key), "%s/%s/%u/%u", p->svc->meta.namespace,
			 p->svc->meta.name, p->port->port, p->port->protocol);
		ret = strmap_put(&res->port_index, key, p, NULL);
		if (ret == -EEXIST)
			continue;	/* a duplicate port in one Service: the first wins */
		ret = ret ? ret : init_self(c, p);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Two Services on one ClusterIP:port would be two frontends with one kernel
 * key, the later silently replacing the earlier. The API server never
 * allocates one address twice; when the manifests do, the first Service in
 * name order keeps the port and the other is named, with both names.
 */
static int drop_shared_frontends(struct tr_ctx *c)
{
	struct tr_result *res = c->res;
	struct strmap owners = { 0 };
	size_t kept = 0;
	int ret = 0;

	for (size_t i = 0; i < res->nr_ports && !ret; i++) {
		struct tr_port *p = &res->ports[i];
		const struct k8s_service *other = NULL;
		char key[INET6_ADDRSTRLEN + 16], ip[INET6_ADDRSTRLEN];
		void *old;

		for (size_t a = 0; a < p->svc->nr_cluster_ips && !other && !ret; a++) {
			ip_addr_str(&p->svc->cluster_ips[a], ip, sizeof(ip));
			snprintf(key, sizeof(key), "%s|%u|%u", ip, p->port->port, p->port->protocol);
			ret = strmap_put(&owners, key, (void *)p->svc, &old);
			if (ret == -EEXIST) {
				ret = 0;
				if (old != p->svc)
					other = old;
			}
		}
		if (ret)
			break;
		if (!other) {
			res->ports[kept++] = *p;
			continue;
		}
		diag_report(c->dg, LOG_ERROR, p->svc->meta.loc.file, p->svc->meta.loc.line,
			    "spec.clusterIP",
			    "Service %s/%s port %u: ClusterIP %s%s%s:%u/%s is also Service %s/%s's; this port is not served",
			    p->svc->meta.namespace, p->svc->meta.name, p->port->port,
			    strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "",
			    p->port->port, l4_proto_name(p->port->protocol), other->meta.namespace,
			    other->meta.name);
	}
	res->nr_ports = ret ? res->nr_ports : kept;
	strmap_free(&owners);
	return ret;
}

static int build_ports(struct tr_ctx *c)
{
	const struct k8s_service **svcs;
	size_t nr_svcs;
	int ret;

	ret = collect_services(c, &svcs, &nr_svcs);
	if (ret)
		return ret;
	c->res->ports = calloc(count_ports(svcs, nr_svcs) + 1, sizeof(*c->res->ports));
	if (!c->res->ports) {
		free(svcs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nr_svcs; i++)
		for (size_t j = 0; j < svcs[i]->nr_ports; j++)
			c->res->ports[c->res->nr_ports++] = (struct tr_port){
				.svc = svcs[i], .port = &svcs[i]->ports[j],
			};
	free(svcs);
	qsort(c->res->ports, c->res->nr_ports, sizeof(*c->res->ports), port_cmp);
	ret = drop_shared_frontends(c);
	return ret ? ret : index_ports(c);
}

static int route_ptr_cmp(const void *pa, const void *pb)
{
	const struct gapi_route *a = *(const struct gapi_route *const *)pa;
	const struct gapi_route *b = *(const struct gapi_route *const *)pb;

	if (a->kind != b->kind)
		return (int)a->kind - (int)b->kind;
	return meta_cmp(&a->meta, &b->meta);
}

static int collect_routes(struct tr_ctx *c)
{
	const struct gapi_route **routes;
	size_t n = 0;

	for (int k = 0; k < ROUTE_KIND_COUNT; k++)
		n += c->m->routes[k].nr;
	routes = calloc(n + 1, sizeof(*routes));
	c->infos = calloc(n + 1, sizeof(*c->infos));
	c->res->routes = calloc(n + 1, sizeof(*c->res->routes));
	c->res->rules = calloc(n + 1, sizeof(*c->res->rules));
	c->res->nr_rules = calloc(n + 1, sizeof(*c->res->nr_rules));
	if (!routes || !c->infos || !c->res->routes || !c->res->rules || !c->res->nr_rules) {
		free(routes);
		return -ENOMEM;
	}
	n = 0;
	for (int k = 0; k < ROUTE_KIND_COUNT; k++)
		for (size_t i = 0; i < c->m->routes[k].nr; i++)
			routes[n++] = c->m->routes[k].items[i];
	qsort(routes, n, sizeof(*routes), route_ptr_cmp);
	for (size_t i = 0; i < n; i++)
		c->infos[i].route = routes[i];
	c->nr_infos = c->res->nr_routes = n;
	free(routes);
	return 0;
}

static int process_routes(struct tr_ctx *c)
{
	int ret;

	for (size_t i = 0; i < c->nr_infos; i++) {
		ret = tr_build_rules(c, &c->infos[i]);
		c->res->rules[i] = c->infos[i].rules;	/* the result owns them */
		c->res->nr_rules[i] = c->infos[i].rules ? c->infos[i].route->nr_rules : 0;
		if (!ret)
			ret = tr_bind_parents(c, &c->infos[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static void ctx_free(struct tr_ctx *c)
{
	for (size_t i = 0; i < c->nr_infos; i++) {
		struct tr_route_info *info = &c->infos[i];

		for (size_t j = 0; info->parents && j < info->route->nr_parents; j++)
			free(info->parents[j].reject_message);
		free(info->parents);
		free(info->refs_message);
	}
	free(c->infos);
	free(c->bindings);
}

int translate(const struct model *m, struct diag *dg, struct tr_result *out)
{
	return translate_opts(m, NULL, dg, out);
}

int translate_opts(const struct model *m, const struct tr_opts *opts, struct diag *dg,
		   struct tr_result *out)
{
	struct tr_ctx c = { .m = m, .dg = dg, .res = out };
	int ret;

	memset(out, 0, sizeof(*out));
	if (opts)
		c.opts = *opts;
	if (!c.opts.max_endpoints)
		c.opts.max_endpoints = TR_MAX_ENDPOINTS;
	ret = build_ports(&c);
	if (!ret)
		ret = collect_routes(&c);
	if (!ret)
		ret = process_routes(&c);
	if (!ret)
		ret = tr_build_classes(&c);
	if (!ret)
		ret = tr_build_statuses(&c);
	ctx_free(&c);
	if (ret)
		tr_result_free(out);
	return ret;
}

static void class_free(struct tr_class *cls)
{
	free(cls->entries);
	free(cls->l4.items);
}

/*
 * What the ports of a tracked result reach, counted: an endpoint set by the
 * ports whose own endpoints it is and by the rules (of live routes) whose
 * backends name it; a route's rules by the class entries of live ports.
 * Both sorted by address for a binary search from a pointer.
 */
struct tr_track {
	struct tr_track_set {
		struct tr_endpoint_set *set;
		uint32_t refs;
		bool freed;
	} *sets;
	size_t nr_sets;
	struct tr_track_route {
		const struct tr_rule *base;	/* r->rules[idx] */
		size_t idx;
	} *routes;
	size_t nr_routes;
	uint32_t *rule_refs;		/* per route of r */
};

static int addr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

static struct tr_track_set *track_set(struct tr_track *t, const struct tr_endpoint_set *set)
{
	return set ? bsearch(&set, t->sets, t->nr_sets, sizeof(*t->sets), addr_cmp) : NULL;
}

static void set_unref(struct tr_track *t, const struct tr_endpoint_set *set)
{
	struct tr_track_set *ts = track_set(t, set);

	if (!ts || ts->freed || --ts->refs)
		return;
	ts->freed = true;
	free(ts->set->items);
	free(ts->set);
}

/* The route whose rules rule is one of (rules of a route are one array). */
static struct tr_track_route *track_route(struct tr_track *t, const struct tr_rule *rule)
{
	const struct tr_rule *base = rule - rule->index;

	return bsearch(&base, t->routes, t->nr_routes, sizeof(*t->routes), addr_cmp);
}

static void rules_unref(struct tr_result *r, struct tr_track_route *tr)
{
	size_t i = tr->idx;

	if (!r->track->rule_refs[i] || --r->track->rule_refs[i])
		return;
	for (size_t k = 0; k < r->nr_rules[i]; k++)
		for (size_t b = 0; b < r->rules[i][k].nr_backends; b++)
			set_unref(r->track, r->rules[i][k].backends[b].endpoints);
	tr_rules_free(r->rules[i], r->nr_rules[i]);
	r->rules[i] = NULL;
	r->nr_rules[i] = 0;
}

int tr_result_track(struct tr_result *r)
{
	struct tr_track *t = calloc(1, sizeof(*t));
	struct strmap_slot *slot;
	size_t n = 0;

	if (!t)
		return -ENOMEM;
	t->sets = calloc(r->endpoint_sets.nr + 1, sizeof(*t->sets));
	t->routes = calloc(r->nr_routes + 1, sizeof(*t->routes));
	t->rule_refs = calloc(r->nr_routes + 1, sizeof(*t->rule_refs));
	if (!t->sets || !t->routes || !t->rule_refs) {
		free(t->sets);
		free(t->routes);
		free(t->rule_refs);
		free(t);
		return -ENOMEM;
	}
	strmap_for_each(&r->endpoint_sets, slot)
		t->sets[t->nr_sets++].set = slot->value;
	qsort(t->sets, t->nr_sets, sizeof(*t->sets), addr_cmp);
	for (size_t i = 0; i < r->nr_routes; i++)
		if (r->rules && r->rules[i])
			t->routes[n++] = (struct tr_track_route){ r->rules[i], i };
	t->nr_routes = n;
	qsort(t->routes, t->nr_routes, sizeof(*t->routes), addr_cmp);
	/* The sets are the track's from here on: nothing looks them up by key. */
	strmap_free(&r->endpoint_sets);
	r->track = t;
	for (size_t i = 0; i < r->nr_ports; i++) {
		const struct tr_port *p = &r->ports[i];
		struct tr_track_set *ts = track_set(t, p->self.endpoints);

		if (ts)
			ts->refs++;
		for (size_t c = 0; c < p->nr_classes; c++)
			for (size_t e = 0; e < p->classes[c].nr_entries; e++) {
				struct tr_track_route *tr = track_route(t, p->classes[c].entries[e].rule);

				if (tr)
					t->rule_refs[tr->idx]++;
			}
	}
	for (size_t i = 0; i < n; i++) {
		size_t ri = t->routes[i].idx;

		for (size_t k = 0; k < r->nr_rules[ri]; k++)
			for (size_t b = 0; b < r->rules[ri][k].nr_backends; b++) {
				struct tr_track_set *ts = track_set(t, r->rules[ri][k].backends[b].endpoints);

				if (ts)
					ts->refs++;
			}
	}
	/* Rules no port reaches (a route bound to none), then sets nothing reaches. */
	for (size_t i = 0; i < n; i++)
		if (!t->rule_refs[t->routes[i].idx]) {
			t->rule_refs[t->routes[i].idx] = 1;
			rules_unref(r, &t->routes[i]);
		}
	for (size_t i = 0; i < t->nr_sets; i++)
		if (!t->sets[i].refs && !t->sets[i].freed) {
			t->sets[i].freed = true;
			free(t->sets[i].set->items);
			free(t->sets[i].set);
		}
	return 0;
}

void tr_result_port_done(struct tr_result *r, size_t i)
{
	struct tr_port *p = &r->ports[i];

	if (!r->track || i >= r->nr_ports)
		return;
	for (size_t c = 0; c < p->nr_classes; c++) {
		for (size_t e = 0; e < p->classes[c].nr_entries; e++) {
			struct tr_track_route *tr = track_route(r->track, p->classes[c].entries[e].rule);

			if (tr)
				rules_unref(r, tr);
		}
		class_free(&p->classes[c]);
	}
	free(p->classes);
	p->classes = NULL;
	p->nr_classes = 0;
	set_unref(r->track, p->self.endpoints);
	p->self.endpoints = NULL;
}

static void track_free(struct tr_track *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr_sets; i++)
		if (!t->sets[i].freed) {
			free(t->sets[i].set->items);
			free(t->sets[i].set);
		}
	free(t->sets);
	free(t->routes);
	free(t->rule_refs);
	free(t);
}

void tr_result_free(struct tr_result *r)
{
	struct strmap_slot *slot;

	for (size_t i = 0; i < r->nr_ports; i++) {
		for (size_t j = 0; j < r->ports[i].nr_classes; j++)
			class_free(&r->ports[i].classes[j]);
		free(r->ports[i].classes);
	}
	free(r->ports);
	for (size_t i = 0; r->routes && i < r->nr_routes; i++) {
		tr_route_status_free(&r->routes[i]);
		if (r->rules && r->nr_rules)
			tr_rules_free(r->rules[i], r->nr_rules[i]);
	}
	free(r->routes);
	free(r->rules);
	free(r->nr_rules);
	strmap_for_each(&r->endpoint_sets, slot) {
		struct tr_endpoint_set *set = slot->value;

		free(set->items);
		free(set);
	}
	strmap_free(&r->endpoint_sets);
	strmap_free(&r->port_index);
	track_free(r->track);
	memset(r, 0, sizeof(*r));
}

void tr_result_drop_statuses(struct tr_result *r)
{
	for (size_t i = 0; r->routes && i < r->nr_routes; i++) {
		tr_route_status_free(&r->routes[i]);
		r->routes[i].parents = NULL;
		r->routes[i].nr_parents = 0;
	}
	strmap_free(&r->port_index);
}

const struct tr_port *tr_find_port(const struct tr_result *r, const char *ns,
				   const char *name, uint16_t port)
{
	char key[MODEL_KEY_MAX + 16];
	size_t lo = 0, hi = r->nr_ports;

	if (r->port_index.nr || !r->nr_ports) {
		snprintf(key, sizeof(key), "%s/%s/%u/%u", ns, name, port, L4_TCP);
		return strmap_get(&r->port_index, key);
	}
	while (lo < hi) {
		const struct tr_port *p = &r->ports[lo + (hi - lo) / 2];
		int d = strcmp(ns ? ns : "", p->svc->meta.namespace ? p->svc->meta.namespace : "");

		d = d ? d : strcmp(name, p->svc->meta.name);
		d = d ? d : (int)port - (int)p->port->port;
		d = d ? d : (int)L4_TCP - (int)p->port->protocol;
		if (!d)
			return p;
		if (d < 0)
			hi = lo + (hi - lo) / 2;
		else
			lo = lo + (hi - lo) / 2 + 1;
	}
	return NULL;
}

const struct tr_class *tr_port_class(const struct tr_port *p, const char *client_ns)
{
	for (size_t i = 1; client_ns && i < p->nr_classes; i++)
		if (!strcmp(p->classes[i].client_namespace, client_ns))
			return &p->classes[i];
	return &p->classes[0];
}

const struct tr_route_status *tr_find_route(const struct tr_result *r,
					    enum gapi_route_kind kind, const char *ns,
					    const char *name)
{
	for (size_t i = 0; i < r->nr_routes; i++) {
		const struct gapi_route *route = r->routes[i].route;

		if (route->kind == kind && !strcmp(route->meta.namespace, ns) &&
		    !strcmp(route->meta.name, name))
			return &r->routes[i];
	}
	return NULL;
}

const struct tr_condition *tr_condition(const struct tr_parent_status *p, const char *type)
{
	for (size_t i = 0; i < p->nr_conditions; i++)
		if (!strcmp(p->conditions[i].type, type))
			return &p->conditions[i];
	return NULL;
}
