// SPDX-License-Identifier: Apache-2.0
/* Building the map image from a translation (see image.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gammad/maps.h"
#include "translate/translate_output.h"
#include "image.h"

/* Append a zeroed element to a growable array; NULL on ENOMEM. */
static void *vec_push(void **arr, size_t *nr, size_t *cap, size_t size)
{
	if (*nr == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		void *p = realloc(*arr, n * size);

		if (!p)
			return NULL;
		*arr = p;
		*cap = n;
	}
	memset((char *)*arr + *nr * size, 0, size);
	return (char *)*arr + (*nr)++ * size;
}

struct img_builder {
	const struct model *m;
	struct img *img;
	struct img_opts opts;
	size_t cap[IMG_TABLE_COUNT];
};

#define PUSH(b, table, field, nr_field) \
	vec_push((void **)&(b)->img->field, &(b)->img->nr_field, &(b)->cap[table], \
		 sizeof(*(b)->img->field))

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	return hash_bytes(p, len, h);
}

static uint64_t mix_str(uint64_t h, const char *s)
{
	return s ? hash_bytes(s, strlen(s) + 1, h) : mix(h, "", 1);
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
	return mix(h, &v, sizeof(v));
}

static uint64_t mix_addr(uint64_t h, const struct ip_addr *a)
{
	h = mix(h, &a->family, 1);
	return mix(h, a->addr, a->family == AF_INET ? 4 : 16);
}

/* Remember a content id; true if it was already there. */
static int seen(struct img_builder *b, char tag, uint64_t id, bool *was)
{
	char key[24];
	int ret;

	snprintf(key, sizeof(key), "%c%016llx", tag, (unsigned long long)id);
	ret = strmap_put(&b->img->index, key, b, NULL);
	*was = ret == -EEXIST;
	return ret == -EEXIST ? 0 : ret;
}

static const char *intern(struct img_builder *b, const char *s)
{
	return s ? strmap_intern(&b->img->strings, s) : NULL;
}

static int add_endpoint_set(struct img_builder *b, const struct tr_endpoint_set *set,
			    uint8_t family, uint64_t *id)
{
	uint64_t h = 0x65;
	struct img_endpoint_set *out;
	bool was;
	size_t n = 0;
	int ret;

	for (size_t i = 0; set && i < set->nr; i++) {
		if (set->items[i].addr.family != family)
			continue;
		h = mix_addr(h, &set->items[i].addr);
		h = mix(h, &set->items[i].port, sizeof(set->items[i].port));
		n++;
	}
	*id = h;
	ret = seen(b, 'E', h, &was);
	if (ret || was)
		return ret;
	out = PUSH(b, IMG_ENDPOINT_SETS, endpoint_sets, nr_endpoint_sets);
	if (!out)
		return -ENOMEM;
	out->id = h;
	out->items = calloc(n ? n : 1, sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;
	for (size_t i = 0; set && i < set->nr; i++)
		if (set->items[i].addr.family == family)
			out->items[out->nr++] = (struct img_endpoint){
				.addr = set->items[i].addr, .port = set->items[i].port,
			};
	return 0;
}

static size_t family_count(const struct tr_endpoint_set *set, uint8_t family)
{
	size_t n = 0;

	for (size_t i = 0; set && i < set->nr; i++)
		n += set->items[i].addr.family == family;
	return n;
}

uint64_t img_backend_id(const struct tr_backend *tb, uint8_t family)
{
	uint64_t id = mix_str(mix_str(0x62, tb->namespace), tb->name);

	return mix(mix(id, &tb->port, sizeof(tb->port)), &family, 1);
}

static int add_backend(struct img_builder *b, const struct tr_backend *tb, uint8_t family,
		       uint64_t *id)
{
	struct img_backend *out;
	uint64_t set = 0;
	bool was;
	int ret;

	*id = img_backend_id(tb, family);
	ret = seen(b, 'B', *id, &was);
	if (ret || was)
		return ret;
	if (tb->state != TR_BACKEND_UNRESOLVED) {
		ret = add_endpoint_set(b, tb->endpoints, family, &set);
		if (ret)
			return ret;
	}
	out = PUSH(b, IMG_BACKENDS, backends, nr_backends);
	if (!out)
		return -ENOMEM;
	*out = (struct img_backend){
		.id = *id, .namespace = intern(b, tb->namespace), .name = intern(b, tb->name),
		.port = tb->port, .family = family, .endpoint_set = set,
		.affinity_timeout = tb->affinity_timeout,
	};
	if (tb->state == TR_BACKEND_UNRESOLVED)
		out->flags = IMG_BACKEND_UNRESOLVED;
	else if (!family_count(tb->endpoints, family))
		out->flags = IMG_BACKEND_NO_ENDPOINTS;
	if (tb->endpoints)
		out->policy = tb->endpoints->policy;
	out->hash = mix_u64(mix_u64(mix_u64(*id, set), out->flags), out->policy) ^
		    mix_u64(0x61, out->affinity_timeout);
	return out->namespace && out->name ? 0 : -ENOMEM;
}

/* A selector from (backend, weight) pairs; content-addressed. */
static int add_selector(struct img_builder *b, const struct tr_l4_item *items, size_t nr,
			uint32_t flags, uint8_t family, uint64_t *id)
{
	struct img_selector_item tmp[64], *it = nr <= 64 ? tmp : calloc(nr, sizeof(*it));
	struct img_selector *out;
	uint64_t h = mix_u64(0x73, flags), total = 0;
	bool was;
	int ret = it ? 0 : -ENOMEM;

	for (size_t i = 0; i < nr && !ret; i++) {
		ret = add_backend(b, items[i].backend, family, &it[i].backend);
		it[i].weight = (uint32_t)items[i].weight;
		h = mix_u64(mix_u64(h, it[i].backend), it[i].weight);
		total += items[i].weight;
	}
	*id = h;
	/*
	 * The kernel draws against a 32-bit total; the translator fits unions
	 * into it (translate_l4.c). Anything else is refused, never truncated:
	 * the kernel's split must be the translated one.
	 */
	if (!ret && total > GAMMAD_MAX_WEIGHT_SUM)
		ret = -EOVERFLOW;
	if (!ret)
		ret = seen(b, 'S', h, &was);
	if (!ret && !was) {
		out = PUSH(b, IMG_SELECTORS, selectors, nr_selectors);
		if (out)
			out->items = calloc(nr ? nr : 1, sizeof(*out->items));
		if (!out || !out->items) {
			ret = -ENOMEM;
		} else {
			memcpy(out->items, it, nr * sizeof(*it));
			out->id = h;
			out->nr = nr;
			out->total_weight = total;
			out->flags = flags;
		}
	}
	if (it != tmp)
		free(it);
	return ret;
}

static int rule_selector(struct img_builder *b, const struct tr_rule *r, uint8_t family,
			 uint64_t *id)
{
	struct tr_l4_item items[GAPI_MAX_BACKEND_REFS];

	*id = 0;
	if (r->redirect || !r->nr_backends)
		return 0;
	for (size_t i = 0; i < r->nr_backends && i < GAPI_MAX_BACKEND_REFS; i++)
		items[i] = (struct tr_l4_item){ &r->backends[i], r->backends[i].weight };
	return add_selector(b, items, r->nr_backends, 0, family, id);
}

static uint32_t rule_flags(const struct tr_rule *r)
{
	uint32_t flags = 0;

	if (r->redirect)
		flags |= IMG_RULE_REDIRECT;
	if (r->rule->nr_filters)
		flags |= IMG_RULE_FILTERS;
	for (size_t i = 0; i < r->nr_backends; i++)
		if (r->backends[i].ref && r->backends[i].ref->nr_filters)
			flags |= IMG_RULE_FILTERS;
	if (r->userspace_only)
		flags |= IMG_RULE_USERSPACE_ONLY;
	if (r->route->kind == ROUTE_GRPC)
		flags |= IMG_RULE_GRPC;
	return flags;
}

static uint64_t mix_headers(uint64_t h, const struct gapi_header *hd, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		h = mix_str(mix_str(h, hd[i].name), hd[i].value);
	return mix_u64(h, nr);
}

static uint64_t mix_path_mod(uint64_t h, const struct gapi_path_mod *p)
{
	return mix_str(mix_u64(h, p->type), p->value);
}

/* The content of a filter, not where it was written. */
static uint64_t mix_filter(uint64_t h, const struct gapi_filter *f)
{
	h = mix_str(h, f->type_name);
	switch (f->type) {
	case FILTER_REQUEST_HEADER:
	case FILTER_RESPONSE_HEADER:
		h = mix_headers(h, f->header_mod.set, f->header_mod.nr_set);
		h = mix_headers(h, f->header_mod.add, f->header_mod.nr_add);
		for (size_t i = 0; i < f->header_mod.nr_remove; i++)
			h = mix_str(h, f->header_mod.remove[i]);
		return h;
	case FILTER_REQUEST_REDIRECT:
		h = mix_str(mix_str(h, f->redirect.scheme), f->redirect.hostname);
		h = mix_u64(h, ((uint64_t)f->redirect.port << 16) | f->redirect.status_code);
		return mix_path_mod(h, &f->redirect.path);
	case FILTER_URL_REWRITE:
		return mix_path_mod(mix_str(h, f->rewrite.hostname), &f->rewrite.path);
	case FILTER_REQUEST_MIRROR:
		h = mix_str(mix_str(h, f->mirror.backend->namespace), f->mirror.backend->name);
		return mix_u64(h, ((uint64_t)f->mirror.backend->port << 32) | f->mirror.percent);
	default:
		return h;
	}
}

static uint64_t mix_rule_filters(uint64_t h, const struct tr_rule *r)
{
	for (size_t i = 0; i < r->rule->nr_filters; i++)
		h = mix_filter(h, &r->rule->filters[i]);
	for (size_t i = 0; i < r->nr_backends; i++)
		for (size_t j = 0; r->backends[i].ref && j < r->backends[i].ref->nr_filters; j++)
			h = mix_filter(mix_u64(h, i), &r->backends[i].ref->filters[j]);
	return h;
}

static int fill_rule(struct img_builder *b, const struct tr_entry *e, uint8_t family,
		     struct img_rule *out)
{
	const struct tr_rule *r = e->rule;
	char match[1024];

	out->route_namespace = intern(b, r->route->meta.namespace);
	out->route_name = intern(b, r->route->meta.name);
	out->rule_index = (uint16_t)r->index;
	out->match_index = (uint16_t)e->match_index;
	out->flags = rule_flags(r);
	out->match = intern(b, tr_format_match(e->match, match, sizeof(match)));
	out->match_hash = mix_rule_filters(mix_str(mix_u64(0x6d, out->flags), out->match), r);
	if (!out->route_namespace || !out->route_name || !out->match)
		return -ENOMEM;
	return rule_selector(b, r, family, &out->selector);
}

static int add_rule_table(struct img_builder *b, const struct tr_class *cls, uint8_t family,
			  uint64_t *id)
{
	struct img_rule *rules = calloc(cls->nr_entries ? cls->nr_entries : 1, sizeof(*rules));
	struct img_rule_table *out;
	uint64_t h = 0x72;
	bool was;
	int ret = rules ? 0 : -ENOMEM;

	for (size_t i = 0; i < cls->nr_entries && !ret; i++) {
		struct img_rule *r = &rules[i];

		ret = fill_rule(b, &cls->entries[i], family, r);
		h = mix_str(mix_str(h, r->route_namespace), r->route_name);
		h = mix_u64(mix_u64(h, ((uint64_t)r->rule_index << 16) | r->match_index),
			    r->match_hash);
		h = mix_u64(h, r->selector);
	}
	*id = h;
	if (!ret)
		ret = seen(b, 'R', h, &was);
	if (!ret && !was) {
		out = PUSH(b, IMG_RULE_TABLES, rule_tables, nr_rule_tables);
		if (out) {
			*out = (struct img_rule_table){ .id = h, .items = rules,
							.nr = cls->nr_entries };
			return 0;
		}
		ret = -ENOMEM;
	}
	free(rules);
	return ret;
}

static int fill_class(struct img_builder *b, const struct tr_class *cls, uint8_t family,
		      struct img_class *out)
{
	uint32_t flags = 0;
	int ret;

	if (cls->l4.flags & TR_L4_L7_UNENFORCED)
		flags |= IMG_SELECTOR_L7_UNENFORCED;
	if (cls->l4.flags & TR_L4_NO_ROUTE)
		flags |= IMG_SELECTOR_NO_ROUTE;
	/* Any HTTPRoute or GRPCRoute rule: requests (calls) need the engine. */
	if (b->opts.http_engine && (cls->kind == ROUTE_HTTP || cls->kind == ROUTE_GRPC) &&
	    cls->nr_entries)
		flags |= IMG_SELECTOR_HTTP_ENGINE;
	out->ns_id = img_ns_id(b->img, cls->client_namespace);
	out->flags = cls->needs_l7 ? IMG_CLASS_NEEDS_L7 : 0;
	if (cls->nr_entries) {
		const struct gapi_route *route = cls->entries[0].rule->route;

		out->route_namespace = intern(b, route->meta.namespace);
		out->route_name = intern(b, route->meta.name);
		if (!out->route_namespace || !out->route_name)
			return -ENOMEM;
		out->first_rule = out->last_rule = (uint16_t)cls->entries[0].rule->index;
		for (size_t i = 1; i < cls->nr_entries; i++) {
			const struct tr_rule *r = cls->entries[i].rule;

			if (r->route != route)
				continue;
			if (r->index < out->first_rule)
				out->first_rule = (uint16_t)r->index;
			if (r->index > out->last_rule)
				out->last_rule = (uint16_t)r->index;
		}
	}
	ret = add_selector(b, cls->l4.items, cls->l4.nr, flags, family, &out->l4_selector);
	if (!ret && cls->needs_l7)
		ret = add_rule_table(b, cls, family, &out->rule_table);
	return ret;
}

static int add_frontend(struct img_builder *b, const struct tr_port *p, const struct ip_addr *a)
{
	struct img_frontend *f = PUSH(b, IMG_FRONTENDS, frontends, nr_frontends);
	uint64_t h;
	int ret = 0;

	if (!f)
		return -ENOMEM;
	f->addr = *a;
	f->port = p->port->port;
	f->protocol = p->port->protocol;
	f->id = mix(mix(mix_addr(0x66, a), &f->port, 2), &f->protocol, 1);
	f->svc_namespace = intern(b, p->svc->meta.namespace);
	f->svc_name = intern(b, p->svc->meta.name);
	f->port_name = intern(b, p->port->name);
	f->classes = calloc(p->nr_classes, sizeof(*f->classes));
	if (!f->classes || !f->svc_namespace || !f->svc_name)
		return -ENOMEM;
	h = mix_str(mix_str(mix_str(f->id, f->svc_namespace), f->svc_name), f->port_name);
	for (size_t i = 0; i < p->nr_classes && !ret; i++) {
		struct img_class *c = &f->classes[f->nr_classes++];

		ret = fill_class(b, &p->classes[i], a->family, c);
		h = mix_u64(mix_u64(h, ((uint64_t)c->ns_id << 32) | c->flags), c->l4_selector);
		h = mix_u64(h, c->rule_table);
		if (c->route_name)
			h = mix_u64(mix_str(mix_str(h, c->route_namespace), c->route_name),
				    ((uint64_t)c->first_rule << 16) | c->last_rule);
	}
	f->hash = h;
	f->generation = (uint32_t)(h ^ (h >> 32)) ?: 1;
	return ret;
}

static int build_frontends(struct img_builder *b, const struct tr_result *r)
{
	int ret;

	for (size_t i = 0; i < r->nr_ports; i++) {
		const struct tr_port *p = &r->ports[i];

		for (size_t j = 0; j < p->svc->nr_cluster_ips; j++) {
			ret = add_frontend(b, p, &p->svc->cluster_ips[j]);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int add_name(struct strmap *names, const char *ns)
{
	return !ns || strmap_intern(names, ns) ? 0 : -ENOMEM;
}

static int name_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * ns_id = 32 bits of the name's hash, nonzero; a collision takes the next
 * free id, in name order, so the result depends only on the set of names.
 */
static int assign_ns_ids(struct img_builder *b, const struct strmap *names)
{
	struct strmap used = { 0 };
	struct strmap_slot *slot;
	const char **sorted;
	size_t n = 0;
	int ret = 0;

	sorted = calloc(names->nr + 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	strmap_for_each(names, slot)
		sorted[n++] = slot->key;
	qsort(sorted, n, sizeof(*sorted), name_ptr_cmp);
	for (size_t i = 0; i < n && !ret; i++) {
		struct img_namespace *out = PUSH(b, IMG_NAMESPACES, namespaces, nr_namespaces);
		uint32_t id = (uint32_t)hash_str(sorted[i]);
		char key[16];

		for (;; id++) {
			snprintf(key, sizeof(key), "%08x", id);
			if (id && !strmap_get(&used, key))
				break;
		}
		if (!out || strmap_put(&used, key, b, NULL))
			ret = -ENOMEM;
		else
			*out = (struct img_namespace){ .id = id, .name = intern(b, sorted[i]) };
		if (!ret && (!out->name || strmap_put(&b->img->ns_by_name, sorted[i],
						      (void *)(uintptr_t)id, NULL)))
			ret = -ENOMEM;
	}
	strmap_free(&used);
	free(sorted);
	return ret;
}

/* Every namespace the model mentions gets an id. */
static int build_namespaces(struct img_builder *b)
{
	const struct model *m = b->m;
	struct strmap names = { 0 };
	int ret = 0;

	for (size_t i = 0; i < m->namespaces.nr && !ret; i++)
		ret = add_name(&names, ((struct k8s_namespace *)m->namespaces.items[i])->meta.name);
	for (size_t i = 0; i < m->services.nr && !ret; i++)
		ret = add_name(&names, ((struct k8s_service *)m->services.items[i])->meta.namespace);
	for (size_t i = 0; i < m->pods.nr && !ret; i++)
		ret = add_name(&names, ((struct k8s_pod *)m->pods.items[i])->meta.namespace);
	for (int k = 0; k < ROUTE_KIND_COUNT; k++)
		for (size_t i = 0; i < m->routes[k].nr && !ret; i++)
			ret = add_name(&names,
				       ((struct gapi_route *)m->routes[k].items[i])->meta.namespace);
	if (!ret)
		ret = assign_ns_ids(b, &names);
	strmap_free(&names);
	return ret;
}

uint32_t img_ns_id(const struct img *img, const char *name)
{
	return name ? (uint32_t)(uintptr_t)strmap_get(&img->ns_by_name, name) : 0;
}

static int build_pods(struct img_builder *b)
{
	for (size_t i = 0; i < b->m->pods.nr; i++) {
		const struct k8s_pod *pod = b->m->pods.items[i];
		uint32_t ns_id = img_ns_id(b->img, pod->meta.namespace);
		struct img_pod *out;

		if (pod->meta.uid) {
			out = PUSH(b, IMG_PODS, pods, nr_pods);
			if (!out)
				return -ENOMEM;
			*out = (struct img_pod){ .uid = intern(b, pod->meta.uid),
						 .id = hash_str(pod->meta.uid), .ns_id = ns_id,
						 .namespace = intern(b, pod->meta.namespace),
						 .name = intern(b, pod->meta.name) };
			if (!out->uid || (pod->meta.namespace && !out->namespace) ||
			    (pod->meta.name && !out->name))
				return -ENOMEM;
		}
		for (size_t j = 0; j < pod->nr_pod_ips; j++) {
			struct img_pod_ip *ip = PUSH(b, IMG_POD_IPS, pod_ips, nr_pod_ips);

			if (!ip)
				return -ENOMEM;
			*ip = (struct img_pod_ip){ .addr = pod->pod_ips[j], .ns_id = ns_id };
			if (pod->spec.node_name) {
				ip->node_name = intern(b, pod->spec.node_name);
				if (!ip->node_name)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/* Sort every table by its id so the image does not depend on build order. */
#define DEFINE_ID_CMP(fn, type)							\
static int fn(const void *pa, const void *pb)					\
{										\
	const type *a = pa, *b = pb;						\
										\
	return a->id < b->id ? -1 : a->id > b->id;				\
}

DEFINE_ID_CMP(ns_cmp, struct img_namespace)
DEFINE_ID_CMP(pod_cmp, struct img_pod)
DEFINE_ID_CMP(frontend_cmp, struct img_frontend)
DEFINE_ID_CMP(selector_cmp, struct img_selector)
DEFINE_ID_CMP(rule_table_cmp, struct img_rule_table)
DEFINE_ID_CMP(backend_cmp, struct img_backend)
DEFINE_ID_CMP(endpoint_set_cmp, struct img_endpoint_set)

static int pod_ip_cmp(const void *pa, const void *pb)
{
	const struct img_pod_ip *a = pa, *b = pb;

	if (a->addr.family != b->addr.family)
		return (int)a->addr.family - (int)b->addr.family;
	return memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr));
}

static void sort_tables(struct img *img)
{
#define SORT(field, nr, cmp) qsort(img->field, img->nr, sizeof(*img->field), cmp)
	if (img->nr_namespaces)
		SORT(namespaces, nr_namespaces, ns_cmp);
	if (img->nr_pods)
		SORT(pods, nr_pods, pod_cmp);
	if (img->nr_pod_ips)
		SORT(pod_ips, nr_pod_ips, pod_ip_cmp);
	if (img->nr_frontends)
		SORT(frontends, nr_frontends, frontend_cmp);
	if (img->nr_selectors)
		SORT(selectors, nr_selectors, selector_cmp);
	if (img->nr_rule_tables)
		SORT(rule_tables, nr_rule_tables, rule_table_cmp);
	if (img->nr_backends)
		SORT(backends, nr_backends, backend_cmp);
	if (img->nr_endpoint_sets)
		SORT(endpoint_sets, nr_endpoint_sets, endpoint_set_cmp);
#undef SORT
}

int img_build(const struct model *m, const struct tr_result *r, struct img *out)
{
	return img_build_opts(m, r, NULL, out);
}

int img_build_opts(const struct model *m, const struct tr_result *r,
		   const struct img_opts *opts, struct img *out)
{
	struct img_builder b = { .m = m, .img = out };
	int ret;

	if (opts)
		b.opts = *opts;
	memset(out, 0, sizeof(*out));
	ret = build_namespaces(&b);
	if (!ret)
		ret = build_pods(&b);
	if (!ret)
		ret = build_frontends(&b, r);
	strmap_free(&out->index);
	if (ret) {
		img_free(out);
		return ret;
	}
	sort_tables(out);
	return 0;
}

int img_rebuild_pods(struct img *img, const struct model *m)
{
	struct img_builder b = { .m = m, .img = img };
	int ret;

	free(img->pods);
	free(img->pod_ips);
	img->pods = NULL;
	img->pod_ips = NULL;
	img->nr_pods = img->nr_pod_ips = 0;
	ret = build_pods(&b);
	if (!ret && img->nr_pods)
		qsort(img->pods, img->nr_pods, sizeof(*img->pods), pod_cmp);
	if (!ret && img->nr_pod_ips)
		qsort(img->pod_ips, img->nr_pod_ips, sizeof(*img->pod_ips), pod_ip_cmp);
	return ret;
}

void img_free(struct img *img)
{
	for (size_t i = 0; i < img->nr_frontends; i++)
		free(img->frontends[i].classes);
	for (size_t i = 0; i < img->nr_selectors; i++)
		free(img->selectors[i].items);
	for (size_t i = 0; i < img->nr_rule_tables; i++)
		free(img->rule_tables[i].items);
	for (size_t i = 0; i < img->nr_endpoint_sets; i++)
		free(img->endpoint_sets[i].items);
	free(img->namespaces);
	free(img->pods);
	free(img->pod_ips);
	free(img->frontends);
	free(img->selectors);
	free(img->rule_tables);
	free(img->backends);
	free(img->endpoint_sets);
	strmap_free(&img->strings);
	strmap_free(&img->ns_by_name);
	strmap_free(&img->index);
	memset(img, 0, sizeof(*img));
}

long img_find_id(const void *base, size_t nr, size_t size, uint64_t id)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t v = *(const uint64_t *)((const char *)base + mid * size);

		if (v == id)
			return (long)mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}
