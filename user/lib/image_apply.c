// SPDX-License-Identifier: Apache-2.0
/* Image -> maps: see image_apply.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "image_apply.h"
#include "log.h"

/* Index of id in a table sorted by id (entries of `size` bytes, id first). */
static long find_idx(const void *base, size_t nr, size_t size, uint64_t id)
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
	/* Not sorted as expected: fall back to a scan. */
	for (size_t i = 0; i < nr; i++)
		if (*(const uint64_t *)((const char *)base + i * size) == id)
			return (long)i;
	return -1;
}

#define DENSE(st_base, tbl, nr, id)						\
	({ long __i = find_idx((tbl), (nr), sizeof(*(tbl)), (id));		\
	   __i < 0 ? 0u : (uint32_t)((st_base) + (uint32_t)__i); })

int ia_pod_uid_from_dir(const char *name, char *uid, size_t len)
{
	const char *p;
	size_t n;

	if (!strncmp(name, "pod", 3) && name[3]) {
		p = name + 3;
		n = strlen(p);
	} else {
		const char *s = strstr(name, "-pod");
		size_t l = strlen(name);

		if (!s || l < 6 || strcmp(name + l - 6, ".slice"))
			return -ENOENT;
		while (strstr(s + 1, "-pod"))
			s = strstr(s + 1, "-pod");
		p = s + 4;
		n = (size_t)(name + l - 6 - p);
	}
	if (!n || n >= len)
		return -ENOENT;
	for (size_t i = 0; i < n; i++)
		uid[i] = p[i] == '_' ? '-' : p[i];
	uid[n] = 0;
	return 0;
}

/* ---- cgroup walk (nftw has no user pointer) ----------------------------- */

static struct {
	struct dp *dp;
	const struct img *img;
	struct ia_state *next;
	int err;
} walk;

static int walk_fn(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	char uid[64];
	uint64_t cgid;
	uint64_t *n;
	int err;

	if (type != FTW_D)
		return 0;
	if (ia_pod_uid_from_dir(path + ftw->base, uid, sizeof(uid)))
		return 0;
	for (size_t i = 0; i < walk.img->nr_pods; i++) {
		const struct img_pod *p = &walk.img->pods[i];

		if (strcmp(p->uid, uid))
			continue;
		err = dp_cgroup_id(path, &cgid);
		if (!err)
			err = dp_cgroup_ns_set(walk.dp, cgid, p->ns_id);
		if (err) {
			pr_err("pod cgroup %s: %s", path, strerror(-err));
			walk.err = err;
			return 1;
		}
		n = realloc(walk.next->cgroups, (walk.next->nr_cgroups + 1) * sizeof(*n));
		if (!n) {
			walk.err = -ENOMEM;
			return 1;
		}
		walk.next->cgroups = n;
		n[walk.next->nr_cgroups++] = cgid;
		pr_debug("pod %s: cgroup %s -> ns %u", uid, path, p->ns_id);
		break;
	}
	return 0;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static bool has_fe(const struct gammad_fe_key *v, size_t n, const struct gammad_fe_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&v[i], k, sizeof(*k)))
			return true;
	return false;
}

static bool has_lep(const struct gammad_lep_key *v, size_t n, const struct gammad_lep_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&v[i], k, sizeof(*k)))
			return true;
	return false;
}

void ia_state_free(struct ia_state *st)
{
	free(st->ep_set_sizes);
	free(st->consumers);
	free(st->frontends);
	free(st->cgroups);
	free(st->leps);
	memset(st, 0, sizeof(*st));
}

static int write_all(struct dp *dp, const struct img *img, struct ia_state *nx,
		     const char *cgroup_root, struct ia_stats *stats)
{
	uint32_t base = nx->base;
	size_t nr_cons = 0;
	int err = 0;

	if (img->nr_endpoint_sets > IA_RANGE || img->nr_backends > IA_RANGE ||
	    img->nr_selectors > IA_RANGE || img->nr_frontends > IA_RANGE) {
		pr_err("image: more than %d entries in a table", IA_RANGE);
		return -E2BIG;
	}
	/* 1. endpoint sets */
	nx->ep_set_sizes = calloc(img->nr_endpoint_sets + 1, sizeof(uint32_t));
	if (!nx->ep_set_sizes)
		return -ENOMEM;
	nx->nr_ep_sets = img->nr_endpoint_sets;
	for (size_t i = 0; i < img->nr_endpoint_sets; i++) {
		const struct img_endpoint_set *s = &img->endpoint_sets[i];
		struct gammad_ep_val *eps = calloc(s->nr + 1, sizeof(*eps));

		if (!eps)
			return -ENOMEM;
		for (size_t j = 0; j < s->nr; j++)
			dp_ep(&eps[j], s->items[j].addr.family, s->items[j].addr.addr, s->items[j].port);
		err = dp_endpoints_write(dp, base + (uint32_t)i, eps, (uint32_t)s->nr);
		free(eps);
		if (err) {
			pr_err("endpoint set %016llx: %s", (unsigned long long)s->id, strerror(-err));
			return err;
		}
		nx->ep_set_sizes[i] = (uint32_t)s->nr;
	}
	stats->endpoint_sets = img->nr_endpoint_sets;
	/* 2. backends */
	for (size_t i = 0; i < img->nr_backends; i++) {
		const struct img_backend *b = &img->backends[i];
		struct gammad_be_val be = { 0 };
		long e = b->endpoint_set ? find_idx(img->endpoint_sets, img->nr_endpoint_sets,
						    sizeof(img->endpoint_sets[0]), b->endpoint_set) : -1;

		if (e >= 0) {
			be.ep_set = base + (uint32_t)e;
			be.nr_endpoints = (uint32_t)img->endpoint_sets[e].nr;
		}
		if (b->flags & IMG_BACKEND_UNRESOLVED)
			be.flags |= GAMMAD_BE_UNRESOLVED;
		if ((b->flags & IMG_BACKEND_NO_ENDPOINTS) || (e < 0 && !be.flags) ||
		    (e >= 0 && !be.nr_endpoints))
			be.flags |= GAMMAD_BE_NO_ENDPOINTS;
		err = dp_backend_write(dp, base + (uint32_t)i, &be);
		if (err) {
			pr_err("backend %s/%s:%u: %s", b->namespace, b->name, b->port, strerror(-err));
			return err;
		}
	}
	nx->nr_backends = img->nr_backends;
	stats->backends = img->nr_backends;
	/* 3. selectors */
	for (size_t i = 0; i < img->nr_selectors; i++) {
		const struct img_selector *s = &img->selectors[i];
		struct dp_weighted *w = calloc(s->nr + 1, sizeof(*w));
		size_t n = 0;

		if (!w)
			return -ENOMEM;
		for (size_t j = 0; j < s->nr; j++) {
			long b = find_idx(img->backends, img->nr_backends, sizeof(img->backends[0]),
					  s->items[j].backend);

			if (b < 0)
				continue;
			w[n].be_id = base + (uint32_t)b;
			w[n++].weight = s->items[j].weight;
		}
		err = dp_selector_write(dp, base + (uint32_t)i, base + (uint32_t)i, w, n);
		free(w);
		if (err) {
			pr_err("selector %016llx: %s", (unsigned long long)s->id, strerror(-err));
			return err;
		}
		nx->nr_selectors = i + 1;
	}
	stats->selectors = img->nr_selectors;
	/* 4. consumer classes */
	for (size_t i = 0; i < img->nr_frontends; i++)
		for (size_t c = 0; c < img->frontends[i].nr_classes; c++)
			nr_cons += img->frontends[i].classes[c].ns_id != 0;
	nx->consumers = calloc(nr_cons + 1, sizeof(*nx->consumers));
	nx->frontends = calloc(img->nr_frontends + 1, sizeof(*nx->frontends));
	if (!nx->consumers || !nx->frontends)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_frontends; i++) {
		const struct img_frontend *f = &img->frontends[i];
		uint32_t gen = base + (uint32_t)i;

		for (size_t c = 0; c < f->nr_classes; c++) {
			const struct img_class *cl = &f->classes[c];
			uint32_t sel = DENSE(base, img->selectors, img->nr_selectors, cl->l4_selector);

			if (!cl->ns_id)
				continue;
			err = dp_consumer_write(dp, gen, cl->ns_id, sel);
			if (err) {
				pr_err("consumer class %s/%s:%u ns %u: %s", f->svc_namespace,
				       f->svc_name, f->port, cl->ns_id, strerror(-err));
				return err;
			}
			nx->consumers[nx->nr_consumers].table_gen = gen;
			nx->consumers[nx->nr_consumers++].ns_id = cl->ns_id;
		}
	}
	stats->consumers = nx->nr_consumers;
	/* 5. frontends: the flip */
	for (size_t i = 0; i < img->nr_frontends; i++) {
		const struct img_frontend *f = &img->frontends[i];
		struct gammad_fe_val val = { .svc_port_id = (uint32_t)i, .table_gen = base + (uint32_t)i };
		struct gammad_fe_key key;

		for (size_t c = 0; c < f->nr_classes; c++) {
			const struct img_class *cl = &f->classes[c];
			long s = find_idx(img->selectors, img->nr_selectors,
					  sizeof(img->selectors[0]), cl->l4_selector);

			if (cl->ns_id)
				val.flags |= GAMMAD_FE_HAS_CONSUMERS;
			else if (s >= 0)
				val.default_sel = base + (uint32_t)s;
			if (s >= 0 && (img->selectors[s].flags & IMG_SELECTOR_L7_UNENFORCED))
				val.flags |= GAMMAD_FE_L7_UNENFORCED;
		}
		dp_fe_key(&key, f->addr.family, f->addr.addr, f->port, f->protocol);
		err = dp_frontend_publish(dp, &key, &val);
		if (err) {
			pr_err("frontend %s/%s:%u: %s", f->svc_namespace, f->svc_name, f->port,
			       strerror(-err));
			return err;
		}
		nx->frontends[nx->nr_frontends++] = key;
	}
	stats->frontends = nx->nr_frontends;
	/* 6. client classes and local endpoints */
	if (cgroup_root) {
		walk.dp = dp;
		walk.img = img;
		walk.next = nx;
		walk.err = 0;
		if (nftw(cgroup_root, walk_fn, 32, FTW_PHYS | FTW_MOUNT) < 0 && !walk.err) {
			err = -errno;
			pr_err("cgroup %s: %s", cgroup_root, strerror(-err));
			return err;
		}
		if (walk.err)
			return walk.err;
	}
	stats->cgroups = nx->nr_cgroups;
	nx->leps = calloc(img->nr_pod_ips + 1, sizeof(*nx->leps));
	if (!nx->leps)
		return -ENOMEM;
	for (size_t i = 0; i < img->nr_pod_ips; i++) {
		const struct img_pod_ip *p = &img->pod_ips[i];
		struct gammad_lep_key k = { .family = p->addr.family };

		memcpy(k.addr, p->addr.addr, p->addr.family == AF_INET ? 4 : 16);
		err = dp_local_endpoint_add(dp, p->addr.family, p->addr.addr);
		if (err) {
			pr_err("local endpoint %u: %s", (unsigned)i, strerror(-err));
			return err;
		}
		nx->leps[nx->nr_leps++] = k;
	}
	stats->local_eps = nx->nr_leps;
	return 0;
}

/* Retire what st holds and nx does not (ids of st->base are never in nx). */
static void retire(struct dp *dp, const struct ia_state *st, const struct ia_state *nx)
{
	for (size_t i = 0; i < st->nr_frontends; i++)
		if (!nx || !has_fe(nx->frontends, nx->nr_frontends, &st->frontends[i]))
			dp_frontend_delete(dp, &st->frontends[i]);
	for (size_t i = 0; i < st->nr_cgroups; i++)
		if (!nx || !has_u64(nx->cgroups, nx->nr_cgroups, st->cgroups[i]))
			dp_cgroup_ns_delete(dp, st->cgroups[i]);
	for (size_t i = 0; i < st->nr_leps; i++)
		if (!nx || !has_lep(nx->leps, nx->nr_leps, &st->leps[i]))
			dp_local_endpoint_delete(dp, st->leps[i].family, st->leps[i].addr);
	dp_sync(dp);
	for (size_t i = 0; i < st->nr_consumers; i++)
		dp_consumer_delete(dp, st->consumers[i].table_gen, st->consumers[i].ns_id);
	for (size_t i = 0; i < st->nr_selectors; i++)
		dp_selector_delete(dp, st->base + (uint32_t)i);
	for (size_t i = 0; i < st->nr_backends; i++)
		dp_backend_delete(dp, st->base + (uint32_t)i);
	for (size_t i = 0; i < st->nr_ep_sets; i++)
		dp_endpoints_delete(dp, st->base + (uint32_t)i, st->ep_set_sizes[i]);
}

/*
 * The id range the pinned frontends point into, or 0 when there are none.
 * A restarted agent has no ia_state: it must write its first apply into the
 * other range, or it would overwrite entries live connections still read.
 */
static uint32_t pinned_range_base(struct dp *dp)
{
	int fd = dp_map_fd(dp, "gammad_fe_v1");
	struct gammad_fe_key key, next;
	struct gammad_fe_val val;
	void *prev = NULL;

	if (fd < 0)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &val))
			continue;
		return val.table_gen > IA_RANGE ? IA_RANGE + 1 : 1;
	}
	return 0;
}

static uint32_t next_range_base(struct dp *dp, const struct ia_state *st)
{
	uint32_t in_use = st->applies ? st->base : pinned_range_base(dp);

	return in_use == 1 ? IA_RANGE + 1 : 1;
}

int ia_apply(struct dp *dp, struct ia_state *st, const struct img *img,
	     const char *cgroup_root, struct ia_stats *stats)
{
	struct ia_state nx = { 0 };
	struct ia_stats dummy;
	int err;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	nx.applies = st->applies + 1;
	nx.base = next_range_base(dp, st);
	err = write_all(dp, img, &nx, cgroup_root, stats);
	if (err) {
		/*
		 * Partly written: frontends already flipped may point at nx's
		 * ids, so nothing is deleted; the next apply rewrites the same
		 * range (st is unchanged) and retires st's as usual.
		 */
		ia_state_free(&nx);
		return err;
	}
	if (st->applies)
		retire(dp, st, &nx);
	ia_state_free(st);
	*st = nx;
	return 0;
}
