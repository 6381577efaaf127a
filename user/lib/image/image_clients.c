// SPDX-License-Identifier: Apache-2.0
/*
 * The client side of an apply (image_apply.h): pod cgroups -> namespace ids
 * (the client class of connect()), the pod IPs of this node (same-node
 * redirect), and every pod IP -> namespace id and, for local pods, the host
 * side of its veth (the TC path's client class and delivery). Each is
 * reconciled with what the kernel map holds: changed entries written,
 * entries of pods that are gone deleted.
 */
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "image_apply_int.h"

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

/* ---- pod cgroups (nftw has no user pointer) ------------------------------ */

static struct {
	struct ia_ctx *c;
	const struct ia_opts *o;
	uint64_t *ids;		/* cgroups found, the entries to keep */
	size_t nr;
	int err;
} walk;

static const struct img_pod *pod_by_uid(const struct img *img, const char *uid)
{
	for (size_t i = 0; i < img->nr_pods; i++)
		if (!strcmp(img->pods[i].uid, uid))
			return &img->pods[i];
	return NULL;
}

static int cgroup_set(struct ia_ctx *c, const char *path, uint32_t ns_id)
{
	int fd = dp_map_fd(c->dp, GAMMAD_MAP_CGROUP_NS);
	struct gammad_cgns_val cur;
	uint64_t *n, cgid;
	int err;

	err = dp_cgroup_id(path, &cgid);
	if (err)
		return err;
	n = realloc(walk.ids, (walk.nr + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	walk.ids = n;
	n[walk.nr++] = cgid;
	if (!bpf_map_lookup_elem(fd, &cgid, &cur) && cur.ns_id == ns_id)
		return 0;
	c->stats->cgroups_written++;
	return dp_cgroup_ns_set(c->dp, cgid, ns_id);
}

static int walk_fn(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	const struct img_pod *pod;
	char uid[64];
	int err;

	(void)sb;
	if (type != FTW_D || ia_pod_uid_from_dir(path + ftw->base, uid, sizeof(uid)))
		return 0;
	pod = pod_by_uid(walk.c->img, uid);
	if (!pod)
		return 0;
	err = cgroup_set(walk.c, path, pod->ns_id);
	if (err) {
		pr_err("pod %s: cgroup %s: %s", uid, path, strerror(-err));
		walk.err = err;
		return 1;
	}
	pr_debug("pod %s: cgroup %s -> ns %u", uid, path, pod->ns_id);
	if (walk.o->pod_cgroup)
		walk.o->pod_cgroup(walk.o->pod_cgroup_ctx, pod, path);
	return 0;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int cgroups_apply(struct ia_ctx *c, const struct ia_opts *o)
{
	const char *root = o->cgroup_root;
	struct map_dump d = { 0 };
	int err = 0;

	walk.c = c;
	walk.o = o;
	walk.ids = NULL;
	walk.nr = 0;
	walk.err = 0;
	if (root && nftw(root, walk_fn, 32, FTW_PHYS | FTW_MOUNT) < 0 && !walk.err) {
		err = -errno;
		pr_err("cgroup %s: %s", root, strerror(-err));
	}
	err = err ?: walk.err;
	c->stats->cgroups = walk.nr;
	/* A failed walk may have missed live pods: delete nothing then. */
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_CGROUP_NS, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const uint64_t *id = map_dump_key(&d, i);

		if (!has_u64(walk.ids, walk.nr, *id) && !dp_cgroup_ns_delete(c->dp, *id))
			c->stats->retired++;
	}
	map_dump_free(&d);
	free(walk.ids);
	return err;
}

/* ---- local endpoints ------------------------------------------------------ */

static void lep_key(struct gammad_lep_key *k, const struct ip_addr *a)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, a->addr, a->family == AF_INET6 ? 16 : 4);
	k->family = a->family;
}

/* With a node name, only pods scheduled on it are local; without, all are. */
static bool pod_ip_local(const struct img_pod_ip *p, const char *node)
{
	return !node || (p->node_name && !strcmp(p->node_name, node));
}

static bool lep_in_image(const struct img *img, const char *node,
			 const struct gammad_lep_key *k)
{
	struct gammad_lep_key x;

	for (size_t i = 0; i < img->nr_pod_ips; i++) {
		if (!pod_ip_local(&img->pod_ips[i], node))
			continue;
		lep_key(&x, &img->pod_ips[i].addr);
		if (!memcmp(&x, k, sizeof(x)))
			return true;
	}
	return false;
}

static int local_endpoints_apply(struct ia_ctx *c, const char *node)
{
	int fd = dp_map_fd(c->dp, GAMMAD_MAP_LOCAL_EP);
	struct gammad_lep_val cur;
	struct gammad_lep_key k;
	struct map_dump d;
	int err = 0;

	for (size_t i = 0; i < c->img->nr_pod_ips && !err; i++) {
		const struct ip_addr *a = &c->img->pod_ips[i].addr;

		if (!pod_ip_local(&c->img->pod_ips[i], node))
			continue;
		c->stats->local_eps++;
		lep_key(&k, a);
		if (!bpf_map_lookup_elem(fd, &k, &cur))
			continue;
		err = dp_local_endpoint_add(c->dp, a->family, a->addr);
		if (err)
			pr_err("local endpoint %u of %zu: %s", (unsigned)i, c->img->nr_pod_ips,
			       strerror(-err));
		c->stats->local_eps_written++;
	}
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_LOCAL_EP, &d);
	if (err)
		return err;
	for (size_t i = 0; i < d.nr; i++) {
		const struct gammad_lep_key *key = map_dump_key(&d, i);

		if (!lep_in_image(c->img, node, key) &&
		    !dp_local_endpoint_delete(c->dp, key->family, key->addr))
			c->stats->retired++;
	}
	map_dump_free(&d);
	return 0;
}

/* ---- pod IPs for the TC path ---------------------------------------------- */

static void pod_key(struct gammad_pod_key *k, const struct ip_addr *a)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, a->addr, a->family == AF_INET6 ? 16 : 4);
	k->family = a->family;
}

static int pod_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct gammad_pod_key));
}

static int pods_apply(struct ia_ctx *c, const struct ia_opts *o)
{
	int fd = dp_map_fd(c->dp, GAMMAD_MAP_POD);
	size_t n = c->img->nr_pod_ips;
	struct gammad_pod_key *keys;
	struct map_dump d = { 0 };
	int err = 0;

	if (fd < 0)
		return 0;	/* a data path without the TC maps */
	keys = calloc(n + 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		const struct img_pod_ip *p = &c->img->pod_ips[i];
		struct gammad_pod_val want = { .ns_id = p->ns_id }, cur;

		if (pod_ip_local(p, o->node_name))
			want.ifindex = (uint32_t)host_routes_ifindex(o->routes, &p->addr);
		pod_key(&keys[i], &p->addr);
		if (!bpf_map_lookup_elem(fd, &keys[i], &cur) && !memcmp(&cur, &want, sizeof(cur)))
			continue;
		err = bpf_map_update_elem(fd, &keys[i], &want, BPF_ANY) ? -errno : 0;
		if (err)
			pr_err("pod IP %zu of %zu: %s", i, n, strerror(-err));
		else
			c->stats->pods_written++;
	}
	c->stats->pods = n;
	qsort(keys, n, sizeof(*keys), pod_key_cmp);
	if (!err)
		err = ia_dump(c, GAMMAD_MAP_POD, &d);
	for (size_t i = 0; !err && i < d.nr; i++) {
		const struct gammad_pod_key *k = map_dump_key(&d, i);

		if (!bsearch(k, keys, n, sizeof(*keys), pod_key_cmp) &&
		    !bpf_map_delete_elem(fd, k))
			c->stats->retired++;
	}
	map_dump_free(&d);
	free(keys);
	return err;
}

int ia_clients_apply(struct ia_ctx *c, const struct ia_opts *opts)
{
	int err = cgroups_apply(c, opts);
	int err2 = local_endpoints_apply(c, opts->node_name);
	int err3 = pods_apply(c, opts);

	return err ?: err2 ?: err3;
}
