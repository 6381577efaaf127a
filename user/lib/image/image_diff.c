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

static int endpoint_cmp(const void *pa, const void *pb)
{
	const struct img_endpoint *a = pa, *b = pb;
	int d = (int)a->addr.family - (int)b->addr.family;

	if (d)
		return d;
	d = memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr));
	return d ? d : (int)a->port - (int)b->port;
}

/* Every endpoint of every set of img, sorted, each once. */
static int all_endpoints(const struct img *img, struct img_endpoint **out, size_t *nr)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < img->nr_endpoint_sets; i++)
		n += img->endpoint_sets[i].nr;
	*out = NULL;
	*nr = 0;
	if (!n)
		return 0;
	*out = malloc(n * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_endpoint_sets; i++)
		for (size_t j = 0; j < img->endpoint_sets[i].nr; j++)
			(*out)[k++] = img->endpoint_sets[i].items[j];
	qsort(*out, n, sizeof(**out), endpoint_cmp);
	for (size_t i = 0; i < n; i++)
		if (!*nr || endpoint_cmp(&(*out)[*nr - 1], &(*out)[i]))
			(*out)[(*nr)++] = (*out)[i];
	return 0;
}

int img_removed_endpoints(const struct img *old, const struct img *new,
			  struct img_endpoint **out, size_t *nr)
{
	struct img_endpoint *was, *now;
	size_t nr_was, nr_now, n = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	ret = all_endpoints(old, &was, &nr_was);
	if (ret)
		return ret;
	ret = all_endpoints(new, &now, &nr_now);
	if (ret) {
		free(was);
		return ret;
	}
	for (size_t i = 0; i < nr_was; i++)
		if (!nr_now || !bsearch(&was[i], now, nr_now, sizeof(*now), endpoint_cmp))
			was[n++] = was[i];
	free(now);
	if (!n) {
		free(was);
		return 0;
	}
	*out = was;
	*nr = n;
	return 0;
}
