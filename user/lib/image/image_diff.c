// SPDX-License-Identifier: Apache-2.0
/* Diffing two map images entry by entry (see image.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

static const char *const table_names[IMG_TABLE_COUNT] = {
	[IMG_NAMESPACES] = "namespaces",
	[IMG_PODS] = "pods",
	[IMG_POD_IPS] = "pod_ips",
	[IMG_FRONTENDS] = "frontends",
	[IMG_SELECTORS] = "selectors",
	[IMG_RULE_TABLES] = "rule_tables",
	[IMG_BACKENDS] = "backends",
	[IMG_ENDPOINT_SETS] = "endpoint_sets",
};

const char *img_table_name(enum img_table t)
{
	return t < IMG_TABLE_COUNT ? table_names[t] : "?";
}

/* One entry as the diff sees it: identity and content. */
struct entry_ref {
	uint64_t id, hash;
};

struct table_view {
	struct entry_ref *items;
	size_t nr;
};

static int ref_cmp(const void *pa, const void *pb)
{
	const struct entry_ref *a = pa, *b = pb;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* The (id, hash) pairs of one table, sorted by id. */
static int view(const struct img *img, enum img_table t, struct table_view *v)
{
	size_t nr[IMG_TABLE_COUNT] = {
		img->nr_namespaces, img->nr_pods, img->nr_pod_ips, img->nr_frontends,
		img->nr_selectors, img->nr_rule_tables, img->nr_backends, img->nr_endpoint_sets,
	};

	v->nr = nr[t];
	v->items = calloc(v->nr ? v->nr : 1, sizeof(*v->items));
	if (!v->items)
		return -ENOMEM;
	for (size_t i = 0; i < v->nr; i++) {
		struct entry_ref *r = &v->items[i];

		switch (t) {
		case IMG_NAMESPACES:
			*r = (struct entry_ref){ img->namespaces[i].id,
						 hash_str(img->namespaces[i].name) };
			break;
		case IMG_PODS:
			*r = (struct entry_ref){ img->pods[i].id, img->pods[i].ns_id };
			break;
		case IMG_POD_IPS:
			r->id = hash_bytes(&img->pod_ips[i].addr, sizeof(img->pod_ips[i].addr), 0);
			r->hash = img->pod_ips[i].ns_id;
			break;
		case IMG_FRONTENDS:
			*r = (struct entry_ref){ img->frontends[i].id, img->frontends[i].hash };
			break;
		case IMG_SELECTORS:
			*r = (struct entry_ref){ img->selectors[i].id, img->selectors[i].id };
			break;
		case IMG_RULE_TABLES:
			*r = (struct entry_ref){ img->rule_tables[i].id, img->rule_tables[i].id };
			break;
		case IMG_BACKENDS:
			*r = (struct entry_ref){ img->backends[i].id, img->backends[i].hash };
			break;
		default:
			*r = (struct entry_ref){ img->endpoint_sets[i].id,
						 img->endpoint_sets[i].id };
			break;
		}
	}
	qsort(v->items, v->nr, sizeof(*v->items), ref_cmp);
	return 0;
}

static int add_change(struct img_diff *d, enum img_table t, enum img_change_op op, uint64_t id)
{
	struct img_change *c = realloc(d->items, (d->nr + 1) * sizeof(*c));

	if (!c)
		return -ENOMEM;
	d->items = c;
	c[d->nr++] = (struct img_change){ .table = t, .op = op, .id = id };
	d->counts[t][op]++;
	return 0;
}

/* Merge-join two sorted views. */
static int diff_table(enum img_table t, const struct table_view *a, const struct table_view *b,
		      struct img_diff *d)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (!ret && (i < a->nr || j < b->nr)) {
		if (j == b->nr || (i < a->nr && a->items[i].id < b->items[j].id)) {
			ret = add_change(d, t, IMG_REMOVED, a->items[i++].id);
		} else if (i == a->nr || b->items[j].id < a->items[i].id) {
			ret = add_change(d, t, IMG_ADDED, b->items[j++].id);
		} else {
			if (a->items[i].hash != b->items[j].hash)
				ret = add_change(d, t, IMG_CHANGED, a->items[i].id);
			i++;
			j++;
		}
	}
	return ret;
}

int img_diff(const struct img *old, const struct img *new, struct img_diff *out)
{
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (int t = 0; t < IMG_TABLE_COUNT && !ret; t++) {
		struct table_view a = { 0 }, b = { 0 };

		ret = view(old, t, &a);
		if (!ret)
			ret = view(new, t, &b);
		if (!ret)
			ret = diff_table(t, &a, &b, out);
		free(a.items);
		free(b.items);
	}
	if (ret)
		img_diff_free(out);
	return ret;
}

void img_diff_free(struct img_diff *d)
{
	free(d->items);
	memset(d, 0, sizeof(*d));
}

static int addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	int d = (int)a->family - (int)b->family;

	return d ? d : memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int reach_cmp(const void *pa, const void *pb)
{
	const struct img_reach *a = pa, *b = pb;
	int d = addr_cmp(&a->addr, &b->addr);

	if (!d)
		d = (int)a->port - (int)b->port;
	if (!d)
		d = (int)a->protocol - (int)b->protocol;
	if (!d)
		d = addr_cmp(&a->ep.addr, &b->ep.addr);
	return d ? d : (int)a->ep.port - (int)b->ep.port;
}

/* Tables are sorted by their first field, the 64-bit id. */
static int id_cmp(const void *key, const void *item)
{
	uint64_t a = *(const uint64_t *)key, b = *(const uint64_t *)item;

	return a < b ? -1 : a > b;
}

#define FIND(img, table, id) \
	((const __typeof__((img)->table[0]) *)bsearch(&(id), (img)->table, (img)->nr_##table, \
						      sizeof((img)->table[0]), id_cmp))

struct reach_list {
	struct img_reach *items;
	size_t nr, cap;
};

static int reach_push(struct reach_list *l, const struct img_frontend *fe,
		      const struct img_endpoint *ep)
{
	if (l->nr == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct img_reach *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->nr++] = (struct img_reach){
		.addr = fe->addr, .port = fe->port, .protocol = fe->protocol, .ep = *ep,
	};
	return 0;
}

/* Every (frontend, endpoint) the kernel can pick in img, sorted, each once. */
static int all_reach(const struct img *img, struct reach_list *l)
{
	size_t n = 0;
	int ret = 0;

	memset(l, 0, sizeof(*l));
	for (size_t f = 0; f < img->nr_frontends && !ret; f++) {
		const struct img_frontend *fe = &img->frontends[f];

		for (size_t c = 0; c < fe->nr_classes && !ret; c++) {
			const struct img_selector *sel = FIND(img, selectors, fe->classes[c].l4_selector);

			for (size_t i = 0; sel && i < sel->nr && !ret; i++) {
				const struct img_backend *be = FIND(img, backends, sel->items[i].backend);
				const struct img_endpoint_set *set =
					be ? FIND(img, endpoint_sets, be->endpoint_set) : NULL;

				for (size_t j = 0; set && j < set->nr && !ret; j++)
					ret = reach_push(l, fe, &set->items[j]);
			}
		}
	}
	if (ret || !l->nr)
		return ret;
	qsort(l->items, l->nr, sizeof(*l->items), reach_cmp);
	for (size_t i = 0; i < l->nr; i++)
		if (!n || reach_cmp(&l->items[n - 1], &l->items[i]))
			l->items[n++] = l->items[i];
	l->nr = n;
	return 0;
}

int img_removed_endpoints(const struct img *old, const struct img *new,
			  struct img_reach **out, size_t *nr)
{
	struct reach_list was, now;
	size_t n = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	ret = all_reach(old, &was);
	if (!ret)
		ret = all_reach(new, &now);
	else
		now.items = NULL;
	if (ret) {
		free(was.items);
		free(now.items);
		return ret;
	}
	for (size_t i = 0; i < was.nr; i++)
		if (!now.nr || !bsearch(&was.items[i], now.items, now.nr, sizeof(*now.items),
					reach_cmp))
			was.items[n++] = was.items[i];
	free(now.items);
	if (!n) {
		free(was.items);
		return 0;
	}
	*out = was.items;
	*nr = n;
	return 0;
}
