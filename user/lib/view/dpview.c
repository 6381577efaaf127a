// SPDX-License-Identifier: Apache-2.0
/* Read-only view of the pinned data path: see dpview.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "datapath/objtab.h"
#include "dpview.h"

static const char *const map_names[DPV_MAP_COUNT] = {
	[DPV_FE] = GAMMAD_MAP_FRONTEND,
	[DPV_CONS] = GAMMAD_MAP_CONSUMER,
	[DPV_CGNS] = GAMMAD_MAP_CGROUP_NS,
	[DPV_SEL] = GAMMAD_MAP_SELECTOR,
	[DPV_ALIAS] = GAMMAD_MAP_ALIAS,
	[DPV_BE] = GAMMAD_MAP_BACKEND,
	[DPV_EP] = GAMMAD_MAP_ENDPOINT,
	[DPV_LEP] = GAMMAD_MAP_LOCAL_EP,
	[DPV_SVCST] = GAMMAD_MAP_SVC_STATS,
	[DPV_BEST] = GAMMAD_MAP_BE_STATS,
	[DPV_RTST] = GAMMAD_MAP_ROUTE_STATS,
	[DPV_DROP] = GAMMAD_MAP_DROPS,
	[DPV_OBJ] = GAMMAD_MAP_OBJECTS,
	[DPV_RNAT] = GAMMAD_MAP_REVNAT,
	[DPV_SOCKH] = GAMMAD_MAP_SOCKHASH,
	[DPV_SKO] = GAMMAD_MAP_SOCK_ORIG,
	[DPV_SKR] = GAMMAD_MAP_SOCK_REDIR,
	[DPV_CT] = GAMMAD_MAP_CT,
	[DPV_POD] = GAMMAD_MAP_POD,
	[DPV_TCST] = GAMMAD_MAP_TC_STATS,
	[DPV_AFF] = GAMMAD_MAP_AFFINITY,
};

/* Maps a view cannot do without. */
static bool map_required(enum dpv_map m)
{
	return m <= DPV_EP;
}

const char *dpv_map_name(enum dpv_map m)
{
	return m < DPV_MAP_COUNT ? map_names[m] : "?";
}

void dpv_maps_close(struct dpv_maps *m)
{
	for (int i = 0; i < DPV_MAP_COUNT; i++) {
		if (m->fd[i] >= 0)
			close(m->fd[i]);
		m->fd[i] = -1;
	}
}

int dpv_maps_open(struct dpv_maps *m, const char *pin_dir)
{
	struct stat sb;
	char path[4200];
	int err;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < DPV_MAP_COUNT; i++)
		m->fd[i] = -1;
	if (!pin_dir)
		pin_dir = DP_PIN_DIR_DEFAULT;
	snprintf(m->pin_dir, sizeof(m->pin_dir), "%s", pin_dir);
	if (stat(pin_dir, &sb)) {
		err = -errno;
		pr_err("pin dir %s: %s (is gammad installed on this node?)", pin_dir,
		       strerror(-err));
		return err;
	}
	if (!S_ISDIR(sb.st_mode)) {
		pr_err("pin dir %s: not a directory", pin_dir);
		return -ENOTDIR;
	}
	m->nr_cpus = libbpf_num_possible_cpus();
	if (m->nr_cpus <= 0) {
		pr_err("possible CPUs: %s", strerror(-m->nr_cpus));
		return m->nr_cpus ? m->nr_cpus : -EINVAL;
	}
	for (int i = 0; i < DPV_MAP_COUNT; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_names[i]);
		m->fd[i] = bpf_obj_get(path);
		if (m->fd[i] < 0) {
			err = -errno;
			m->fd[i] = -1;
			if (!map_required(i))
				continue;
			pr_err("map %s: %s", path, strerror(-err));
			dpv_maps_close(m);
			return err;
		}
		if (!bpf_obj_get_info_by_fd(m->fd[i], &info, &len))
			m->max_entries[i] = info.max_entries;
	}
	return 0;
}

int dpv_percpu_sum(const struct dpv_maps *m, enum dpv_map map, uint32_t key,
		   uint64_t *out, size_t nr_u64)
{
	uint64_t *vals;
	int err = 0;

	memset(out, 0, nr_u64 * sizeof(*out));
	if (m->fd[map] < 0)
		return -ENOENT;
	if (key >= m->max_entries[map])
		return -ERANGE;
	vals = calloc((size_t)m->nr_cpus, nr_u64 * sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->fd[map], &key, vals)) {
		err = -errno;
		goto out;
	}
	for (int c = 0; c < m->nr_cpus; c++)
		for (size_t i = 0; i < nr_u64; i++)
			out[i] += vals[(size_t)c * nr_u64 + i];
out:
	free(vals);
	return err;
}

/* ---- object table ---------------------------------------------------------- */

static int cmp_u32(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

struct objs {
	struct gammad_obj_key *keys;
	struct gammad_obj_val *vals;
	size_t nr, cap;
};

static int objs_add(const struct gammad_obj_key *k, const struct gammad_obj_val *v, void *ctx)
{
	struct objs *o = ctx;

	if (o->nr == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		void *nk = realloc(o->keys, cap * sizeof(*o->keys));

		if (!nk)
			return -ENOMEM;
		o->keys = nk;
		nk = realloc(o->vals, cap * sizeof(*o->vals));
		if (!nk)
			return -ENOMEM;
		o->vals = nk;
		o->cap = cap;
	}
	o->keys[o->nr] = *k;
	o->vals[o->nr++] = *v;
	return 0;
}

/* Entries sorted by (kind, id) after the walk: objs_sort(). */
static int cmp_objkey(const struct gammad_obj_key *a, const struct gammad_obj_key *b)
{
	return a->kind != b->kind ? (a->kind < b->kind ? -1 : 1) : cmp_u32(a->id, b->id);
}

static void objs_sort(struct objs *o)
{
	/* Shell sort: keys and values move together. */
	for (size_t gap = o->nr / 2; gap; gap /= 2)
		for (size_t i = gap; i < o->nr; i++)
			for (size_t j = i; j >= gap &&
			     cmp_objkey(&o->keys[j - gap], &o->keys[j]) > 0; j -= gap) {
				struct gammad_obj_key tk = o->keys[j];
				struct gammad_obj_val tv = o->vals[j];

				o->keys[j] = o->keys[j - gap];
				o->vals[j] = o->vals[j - gap];
				o->keys[j - gap] = tk;
				o->vals[j - gap] = tv;
			}
}

static const struct gammad_obj_val *objs_find(const struct objs *o, uint32_t kind, uint32_t id)
{
	struct gammad_obj_key k = { .kind = kind, .id = id };
	size_t lo = 0, hi = o->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_objkey(&o->keys[mid], &k);

		if (!c)
			return &o->vals[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- helpers ------------------------------------------------------------------ */

#define cpy(dst, src) snprintf((dst), sizeof(dst), "%.*s", (int)sizeof(src), (src))

static int cmp_sel(const void *a, const void *b)
{
	return cmp_u32(((const struct dpv_selector *)a)->id, ((const struct dpv_selector *)b)->id);
}

static int cmp_be(const void *a, const void *b)
{
	return cmp_u32(((const struct dpv_backend *)a)->id, ((const struct dpv_backend *)b)->id);
}

static int cmp_fe(const void *pa, const void *pb)
{
	const struct dpv_frontend *a = pa, *b = pb;
	int c;

	if (a->named != b->named)
		return a->named ? -1 : 1;
	if ((c = strcmp(a->svc_ns, b->svc_ns)) || (c = strcmp(a->svc_name, b->svc_name)))
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if ((c = strcmp(a->proto, b->proto)))
		return c;
	if (a->key.family != b->key.family)
		return a->key.family < b->key.family ? -1 : 1;
	return memcmp(a->key.addr, b->key.addr, sizeof(a->key.addr));
}

static int cmp_class(const void *pa, const void *pb)
{
	const struct dpv_class *a = pa, *b = pb;

	if (!a->ns_id || !b->ns_id)
		return a->ns_id ? 1 : b->ns_id ? -1 : 0;
	return strcmp(a->ns_name, b->ns_name) ? strcmp(a->ns_name, b->ns_name)
					      : cmp_u32(a->ns_id, b->ns_id);
}

static int cmp_ns(const void *a, const void *b)
{
	return cmp_u32(((const struct dpv_namespace *)a)->id, ((const struct dpv_namespace *)b)->id);
}

static int grow(void **p, size_t *cap, size_t nr, size_t size)
{
	void *n;
	size_t c;

	if (nr < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	n = realloc(*p, c * size);
	if (!n)
		return -ENOMEM;
	memset((char *)n + *cap * size, 0, (c - *cap) * size);
	*p = n;
	*cap = c;
	return 0;
}

const struct dpv_selector *dpv_selector(const struct dpv *v, uint32_t id)
{
	struct dpv_selector k = { .id = id };

	return v->nr_sels ? bsearch(&k, v->sels, v->nr_sels, sizeof(k), cmp_sel) : NULL;
}

const struct dpv_backend *dpv_backend(const struct dpv *v, uint32_t id)
{
	struct dpv_backend k = { .id = id };

	return v->nr_bes ? bsearch(&k, v->bes, v->nr_bes, sizeof(k), cmp_be) : NULL;
}

const char *dpv_ns_name(const struct dpv *v, uint32_t id)
{
	struct dpv_namespace k = { .id = id }, *n;

	n = v->nr_nss ? bsearch(&k, v->nss, v->nr_nss, sizeof(k), cmp_ns) : NULL;
	return n ? n->name : NULL;
}

uint32_t dpv_ns_id(const struct dpv *v, const char *name)
{
	for (size_t i = 0; i < v->nr_nss; i++)
		if (!strcmp(v->nss[i].name, name))
			return v->nss[i].id;
	return 0;
}

uint32_t dpv_class_selector(const struct dpv_frontend *fe, uint32_t ns_id)
{
	for (size_t i = 1; ns_id && i < fe->nr_classes; i++)
		if (fe->classes[i].ns_id == ns_id)
			return fe->classes[i].sel;
	return fe->val.default_sel;
}

const struct dpv_frontend *dpv_frontend_by_addr(const struct dpv *v, const char *addr,
						uint16_t port, const char *proto)
{
	for (size_t i = 0; i < v->nr_fes; i++) {
		const struct dpv_frontend *f = &v->fes[i];

		if (strcmp(f->addr, addr) || (port && f->port != port) ||
		    (proto && strcasecmp(proto, f->proto)))
			continue;
		return f;
	}
	return NULL;
}

const char *dpv_ep_str(const struct dpv_endpoint *ep, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ep->family, ep->addr, a, sizeof(a));
	snprintf(buf, len, ep->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ep->port);
	return buf;
}

const char *dpv_backend_label(const struct dpv_backend *b, char *buf, size_t len)
{
	if (b && b->named)
		snprintf(buf, len, "%s/%s:%u", b->namespace, b->name, b->port);
	else
		snprintf(buf, len, "backend %u", b ? b->id : 0);
	return buf;
}

const char *dpv_selector_label(const struct dpv_selector *s, char *buf, size_t len)
{
	if (s && s->named && s->route_name[0])
		snprintf(buf, len, "%s/%s%s%s", s->route_ns, s->route_name,
			 s->section[0] ? " " : "", s->section);
	else if (s && s->named)
		snprintf(buf, len, "(no route) selector %u", s->id);
	else
		snprintf(buf, len, "selector %u", s ? s->id : 0);
	return buf;
}

const char *dpv_frontend_label(const struct dpv_frontend *fe, char *buf, size_t len)
{
	if (fe->named)
		snprintf(buf, len, "%s/%s:%u", fe->svc_ns, fe->svc_name, fe->port);
	else
		snprintf(buf, len, fe->key.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 fe->addr, fe->port);
	return buf;
}

/* ---- building ------------------------------------------------------------------ */

struct builder {
	const struct dpv_maps *m;
	struct dpv *v;
	struct objs objs;
	size_t cap_fes, cap_sels, cap_bes;
};

static int add_backend(struct builder *b, uint32_t id)
{
	const struct gammad_obj_val *o;
	struct dpv_backend *be;
	int err;

	err = grow((void **)&b->v->bes, &b->cap_bes, b->v->nr_bes, sizeof(*be));
	if (err)
		return err;
	be = &b->v->bes[b->v->nr_bes++];
	be->id = id;
	be->present = !bpf_map_lookup_elem(b->m->fd[DPV_BE], &id, &be->val);
	if (be->present && be->val.nr_endpoints) {
		be->eps = calloc(be->val.nr_endpoints, sizeof(*be->eps));
		if (!be->eps)
			return -ENOMEM;
		for (uint32_t i = 0; i < be->val.nr_endpoints; i++) {
			struct gammad_ep_key k = { .ep_set = be->val.ep_set, .idx = i };
			struct gammad_ep_val ev;

			if (bpf_map_lookup_elem(b->m->fd[DPV_EP], &k, &ev))
				continue;
			be->eps[be->nr_eps].family = ev.family;
			memcpy(be->eps[be->nr_eps].addr, ev.addr, 16);
			be->eps[be->nr_eps++].port = ntohs(ev.port);
		}
	}
	o = objs_find(&b->objs, GAMMAD_OBJ_BACKEND, id);
	if (o) {
		be->named = true;
		cpy(be->namespace, o->namespace);
		cpy(be->name, o->name);
		be->port = o->port;
	}
	dpv_percpu_sum(b->m, DPV_BEST, id, &be->connects, 1);
	return 0;
}

static int add_share(struct dpv_selector *s, uint32_t be_id, uint64_t num, uint64_t den)
{
	struct dpv_share *n;

	for (size_t i = 0; i < s->nr_shares; i++)
		if (s->shares[i].be_id == be_id) {
			s->shares[i].num += num;
			return 0;
		}
	n = realloc(s->shares, (s->nr_shares + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->shares = n;
	n[s->nr_shares++] = (struct dpv_share){ .be_id = be_id, .num = num, .den = den };
	return 0;
}

static int add_selector(struct builder *b, uint32_t id)
{
	const struct gammad_obj_val *o;
	struct dpv_selector *s;
	uint64_t total, den;
	int err;

	err = grow((void **)&b->v->sels, &b->cap_sels, b->v->nr_sels, sizeof(*s));
	if (err)
		return err;
	s = &b->v->sels[b->v->nr_sels++];
	s->id = id;
	s->present = !bpf_map_lookup_elem(b->m->fd[DPV_SEL], &id, &s->val);
	o = objs_find(&b->objs, GAMMAD_OBJ_SELECTOR, id);
	if (o) {
		s->named = true;
		cpy(s->route_ns, o->namespace);
		cpy(s->route_name, o->name);
		cpy(s->section, o->section);
	}
	if (!s->present)
		return 0;
	dpv_percpu_sum(b->m, DPV_RTST, s->val.route_id, &s->connects, 1);
	total = s->val.total_weight;
	if (!total || !s->val.nr_slots || (s->val.flags & GAMMAD_SEL_NO_ROUTE_BACKENDS))
		return 0;
	den = total * s->val.nr_slots;
	for (uint32_t slot = 0; slot < s->val.nr_slots; slot++) {
		struct gammad_alias_key k = { .sel_id = id, .slot = slot };
		struct gammad_alias_val a;
		uint64_t thr;

		if (bpf_map_lookup_elem(b->m->fd[DPV_ALIAS], &k, &a))
			continue;
		thr = a.threshold > total ? total : a.threshold;
		if (thr && (err = add_share(s, a.primary, thr, den)))
			return err;
		if (thr < total && (err = add_share(s, a.alias, total - thr, den)))
			return err;
	}
	for (size_t i = 0; i < s->nr_shares; i++)
		s->shares[i].share = (double)s->shares[i].num / (double)den;
	return 0;
}

static int add_frontend(struct builder *b, const struct gammad_fe_key *k,
			const struct gammad_fe_val *val)
{
	const struct gammad_obj_val *o;
	struct dpv_frontend *f;
	int err;

	err = grow((void **)&b->v->fes, &b->cap_fes, b->v->nr_fes, sizeof(*f));
	if (err)
		return err;
	f = &b->v->fes[b->v->nr_fes++];
	f->key = *k;
	f->val = *val;
	inet_ntop(k->family, k->addr, f->addr, sizeof(f->addr));
	f->port = ntohs(k->port);
	f->proto = k->proto == IPPROTO_UDP ? "UDP" : k->proto == IPPROTO_TCP ? "TCP" : "?";
	o = objs_find(&b->objs, GAMMAD_OBJ_FRONTEND, val->svc_port_id);
	/* A stale object of a reused id names another address: not this one. */
	if (o && o->family == k->family && o->port == f->port &&
	    !memcmp(o->addr, k->addr, k->family == AF_INET ? 4 : 16)) {
		f->named = true;
		cpy(f->svc_ns, o->namespace);
		cpy(f->svc_name, o->name);
		cpy(f->port_name, o->section);
	}
	f->classes = calloc(1, sizeof(*f->classes));
	if (!f->classes)
		return -ENOMEM;
	f->nr_classes = 1;
	f->classes[0].sel = val->default_sel;
	dpv_percpu_sum(b->m, DPV_SVCST, val->svc_port_id, (uint64_t *)&f->stats,
		       sizeof(f->stats) / sizeof(uint64_t));
	return 0;
}

/* Frontend indices sorted by table_gen: consumers find their frontend. */
struct gen_idx {
	uint32_t gen;
	size_t idx;
};

static int cmp_gen(const void *a, const void *b)
{
	return cmp_u32(((const struct gen_idx *)a)->gen, ((const struct gen_idx *)b)->gen);
}

static int add_consumer(struct builder *b, const struct gen_idx *by_gen,
			const struct gammad_cons_key *k, uint32_t sel)
{
	size_t lo = 0, hi = b->v->nr_fes;

	while (lo < hi) {	/* first entry with gen >= k->table_gen */
		size_t mid = (lo + hi) / 2;

		if (by_gen[mid].gen < k->table_gen)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < b->v->nr_fes && by_gen[i].gen == k->table_gen; i++) {
		struct dpv_frontend *f = &b->v->fes[by_gen[i].idx];
		struct dpv_class *n;
		const char *name;

		n = realloc(f->classes, (f->nr_classes + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		f->classes = n;
		n = &f->classes[f->nr_classes++];
		memset(n, 0, sizeof(*n));
		n->ns_id = k->ns_id;
		n->sel = sel;
		name = dpv_ns_name(b->v, k->ns_id);
		if (name)
			snprintf(n->ns_name, sizeof(n->ns_name), "%s", name);
	}
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return cmp_u32(*(const uint32_t *)a, *(const uint32_t *)b);
}

/* Sort ids and drop duplicates and zeros; returns the new count. */
static size_t sort_unique(uint32_t *ids, size_t nr)
{
	size_t n = 0;

	qsort(ids, nr, sizeof(*ids), cmp_id);
	for (size_t i = 0; i < nr; i++)
		if (ids[i] && (!n || ids[n - 1] != ids[i]))
			ids[n++] = ids[i];
	return n;
}

static uint32_t count_keys(int fd, size_t key_size)
{
	char key[64], next[64];
	void *prev = NULL;
	uint32_t n = 0;

	if (key_size > sizeof(key))
		return 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

static void fill_levels(struct builder *b)
{
	static const size_t key_sizes[DPV_MAP_COUNT] = {
		[DPV_FE] = sizeof(struct gammad_fe_key),
		[DPV_CONS] = sizeof(struct gammad_cons_key),
		[DPV_CGNS] = sizeof(__u64),
		[DPV_SEL] = sizeof(__u32),
		[DPV_ALIAS] = sizeof(struct gammad_alias_key),
		[DPV_BE] = sizeof(__u32),
		[DPV_EP] = sizeof(struct gammad_ep_key),
		[DPV_LEP] = sizeof(struct gammad_lep_key),
		[DPV_OBJ] = sizeof(struct gammad_obj_key),
		[DPV_RNAT] = sizeof(struct gammad_revnat_key),
		[DPV_SOCKH] = sizeof(struct gammad_sock_key),
		[DPV_CT] = sizeof(struct gammad_ct_key),
		[DPV_POD] = sizeof(struct gammad_pod_key),
		[DPV_AFF] = sizeof(struct gammad_aff_key),
	};

	for (int i = 0; i < DPV_MAP_COUNT; i++) {
		struct dpv_fill *f = &b->v->fill[i];

		f->max_entries = b->m->max_entries[i];
		if (b->m->fd[i] < 0)
			continue;
		if (key_sizes[i]) {
			f->entries = count_keys(b->m->fd[i], key_sizes[i]);
			f->counted = true;
		} else if (i == DPV_SVCST || i == DPV_BEST || i == DPV_RTST || i == DPV_DROP ||
			   i == DPV_TCST) {
			f->entries = f->max_entries;	/* arrays are always full */
			f->counted = true;
		}
	}
}

int dpv_build(const struct dpv_maps *m, struct dpv *v)
{
	struct builder b = { .m = m, .v = v };
	struct gammad_fe_key fk, fnext;
	struct gammad_cons_key ck, cnext;
	void *prev;
	struct gen_idx *by_gen = NULL;
	uint32_t *ids = NULL;
	size_t cap_nss = 0, nr_ids = 0;
	int err = 0;

	memset(v, 0, sizeof(*v));
	if (m->fd[DPV_OBJ] >= 0) {
		err = objtab_foreach(m->fd[DPV_OBJ], objs_add, &b.objs);
		if (err)
			goto out;
	}
	objs_sort(&b.objs);
	v->nr_objects = b.objs.nr;
	for (size_t i = 0; i < b.objs.nr; i++) {
		if (b.objs.keys[i].kind != GAMMAD_OBJ_NAMESPACE)
			continue;
		err = grow((void **)&v->nss, &cap_nss, v->nr_nss, sizeof(*v->nss));
		if (err)
			goto out;
		v->nss[v->nr_nss].id = b.objs.keys[i].id;
		cpy(v->nss[v->nr_nss].name, b.objs.vals[i].name[0] ? b.objs.vals[i].name
								     : b.objs.vals[i].namespace);
		v->nr_nss++;
	}
	if (v->nr_nss)
		qsort(v->nss, v->nr_nss, sizeof(*v->nss), cmp_ns);

	for (prev = NULL; !bpf_map_get_next_key(m->fd[DPV_FE], prev, &fnext); prev = &fk) {
		struct gammad_fe_val val;

		fk = fnext;
		if (bpf_map_lookup_elem(m->fd[DPV_FE], &fk, &val))
			continue;
		err = add_frontend(&b, &fk, &val);
		if (err)
			goto out;
	}
	by_gen = calloc(v->nr_fes + 1, sizeof(*by_gen));
	if (!by_gen) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < v->nr_fes; i++)
		by_gen[i] = (struct gen_idx){ .gen = v->fes[i].val.table_gen, .idx = i };
	qsort(by_gen, v->nr_fes, sizeof(*by_gen), cmp_gen);
	for (prev = NULL; !bpf_map_get_next_key(m->fd[DPV_CONS], prev, &cnext); prev = &ck) {
		struct gammad_cons_val val;

		ck = cnext;
		if (bpf_map_lookup_elem(m->fd[DPV_CONS], &ck, &val))
			continue;
		err = add_consumer(&b, by_gen, &ck, val.sel);
		if (err)
			goto out;
	}
	/* Every selector a class names, once; then every backend they draw from. */
	for (size_t i = 0; i < v->nr_fes; i++)
		nr_ids += v->fes[i].nr_classes;
	ids = calloc(nr_ids + 1, sizeof(*ids));
	if (!ids) {
		err = -ENOMEM;
		goto out;
	}
	nr_ids = 0;
	for (size_t i = 0; i < v->nr_fes; i++) {
		struct dpv_frontend *f = &v->fes[i];

		qsort(f->classes + 1, f->nr_classes - 1, sizeof(*f->classes), cmp_class);
		for (size_t c = 0; c < f->nr_classes; c++)
			ids[nr_ids++] = f->classes[c].sel;
	}
	nr_ids = sort_unique(ids, nr_ids);
	for (size_t i = 0; i < nr_ids && !err; i++)
		err = add_selector(&b, ids[i]);
	if (err)
		goto out;
	free(ids);
	nr_ids = 0;
	for (size_t i = 0; i < v->nr_sels; i++)
		nr_ids += v->sels[i].nr_shares;
	ids = calloc(nr_ids + 1, sizeof(*ids));
	if (!ids) {
		err = -ENOMEM;
		goto out;
	}
	nr_ids = 0;
	for (size_t i = 0; i < v->nr_sels; i++)
		for (size_t j = 0; j < v->sels[i].nr_shares; j++)
			ids[nr_ids++] = v->sels[i].shares[j].be_id;
	nr_ids = sort_unique(ids, nr_ids);
	for (size_t i = 0; i < nr_ids && !err; i++)
		err = add_backend(&b, ids[i]);
	if (err)
		goto out;
	qsort(v->fes, v->nr_fes, sizeof(*v->fes), cmp_fe);
	if (v->nr_sels)
		qsort(v->sels, v->nr_sels, sizeof(*v->sels), cmp_sel);
	if (v->nr_bes)
		qsort(v->bes, v->nr_bes, sizeof(*v->bes), cmp_be);
	if (m->fd[DPV_DROP] >= 0)
		for (uint32_t r = 0; r < GAMMAD_R_MAX; r++)
			dpv_percpu_sum(m, DPV_DROP, r, &v->reasons[r], 1);
	v->has_tc = m->fd[DPV_TCST] >= 0;
	for (uint32_t r = 0; v->has_tc && r < GAMMAD_TC_MAX; r++)
		dpv_percpu_sum(m, DPV_TCST, r, &v->tc[r], 1);
	fill_levels(&b);
out:
	free(ids);
	free(by_gen);
	free(b.objs.keys);
	free(b.objs.vals);
	if (err) {
		pr_err("view of %s: %s", m->pin_dir, strerror(-err));
		dpv_free(v);
	}
	return err;
}

void dpv_free(struct dpv *v)
{
	for (size_t i = 0; i < v->nr_fes; i++)
		free(v->fes[i].classes);
	for (size_t i = 0; i < v->nr_sels; i++)
		free(v->sels[i].shares);
	for (size_t i = 0; i < v->nr_bes; i++)
		free(v->bes[i].eps);
	free(v->fes);
	free(v->sels);
	free(v->bes);
	free(v->nss);
	memset(v, 0, sizeof(*v));
}

const char *dpv_be_policy(const struct dpv_backend *b, char *buf, size_t len)
{
	static const struct { uint32_t bit; const char *word; } tab[] = {
		{ GAMMAD_BE_LOCAL_ONLY, "local" }, { GAMMAD_BE_ZONE, "zone" },
		{ GAMMAD_BE_NODE, "node" }, { GAMMAD_BE_TERMINATING, "terminating" },
		{ GAMMAD_BE_TOPOLOGY_ALL, "topology-all" },
	};
	size_t n = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	for (size_t i = 0; b && b->present && i < sizeof(tab) / sizeof(tab[0]) && n < len; i++)
		if (b->val.flags & tab[i].bit)
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", tab[i].word);
	if (b && b->present && b->val.affinity_timeout && n < len)
		snprintf(buf + n, len - n, "%saffinity=ClientIP/%us", n ? "," : "",
			 b->val.affinity_timeout);
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}

const struct dpv_backend *dpv_service_backend(const struct dpv *v, const char *ns,
					      const char *name, uint16_t port)
{
	for (size_t i = 0; i < v->nr_bes; i++) {
		const struct dpv_backend *b = &v->bes[i];

		if (b->named && b->port == port && !strcmp(b->namespace, ns) &&
		    !strcmp(b->name, name))
			return b;
	}
	return NULL;
}
