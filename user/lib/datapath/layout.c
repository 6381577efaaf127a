// SPDX-License-Identifier: Apache-2.0
/*
 * Upgrades across map layouts (datapath_int.h, docs/ARCHITECTURE.md
 * "Upgrades across map layouts").
 *
 * A map's layout is in its name (gammad_be_v2). A gammad whose layout of a
 * map differs from the pinned one finds, in the registry below, the name of
 * the layout before its own and how an entry of it becomes one of its own.
 * Maps not in the registry, or whose current name is pinned, are adopted
 * as they are (datapath.c). The upgrade, while the old programs keep
 * serving from the old maps:
 *
 *  1. before load: the new map gets its pin path and the old one's size
 *     (libbpf creates and pins it at load) - dp_layout_plan();
 *  2. after the first object's load, every entry of the old map is
 *     converted into the new one - dp_layout_fill(); nothing is attached
 *     yet, so a failure removes the new pins and the old layout serves on;
 *  3. the programs are switched (datapath.c: bpf_link_update on the pinned
 *     cgroup links, sk_msg replaced on the sockhash; tc_attach.c: every
 *     pinned TC link or clsact filter);
 *     Right before each group switches, and right after, entries the old
 *     programs made since the fill are copied into the new maps
 *     (dp_layout_catch_up), so the new programs find the flows started
 *     meanwhile;
 *  4. dp_layout_commit(): after an RCU grace period (no old program runs),
 *     the old pin is removed, then what the old programs wrote between 2
 *     and 3 is carried over by the map's kind (enum dp_layout_live).
 *
 * A restart after an interrupted upgrade finds both names pinned. If an
 * attached program still uses the old map, the switch did not happen: the
 * new pin is dropped and the upgrade starts over (rolled back). If none
 * does, the switch happened: the new map is adopted and only step 4 runs
 * (rolled forward). An older gammad finding a newer layout pinned refuses
 * to start (dp_layout_refuse_newer) rather than serve from stale maps.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "datapath_int.h"
#include "map_dump.h"

/* ---- the registry -------------------------------------------------------- */

/*
 * A conntrack (GAMMAD_MAP_CT) converter sets GAMMAD_CT_F_MIGRATED on every
 * entry: during the switch the new TC programs drop a copy whose flow the
 * old programs have ended since (bpf/lib/ct.h).
 */

/*
 * Convert one entry (one CPU's value of a per-CPU map) of the previous
 * layout; key and val are zeroed before. NULL: both are copied byte for
 * byte up to the shorter size (a layout that only grew at its end).
 */
typedef void (*dp_layout_conv)(const void *old_key, const void *old_val, void *key, void *val);

struct dp_layout {
	const char *name;		/* this build's map */
	const char *prev;		/* the layout before it */
	uint32_t prev_key_size, prev_val_size;
	dp_layout_conv conv;
	enum dp_layout_live live;
};

#ifndef GAMMAD_LAYOUT_NEXT

static const struct dp_layout registry[] = {
	/* issue 19: affinity_timeout appended */
	{ GAMMAD_MAP_BACKEND, "gammad_be_v1", 4, 12, NULL, DP_LIVE_AGENT },
};

#else	/* TEST ONLY: include/gammad/layout_next.h */

/* The layouts of build/gammad, frozen here as every previous layout must be. */
struct be_v2 { __u32 ep_set, nr_endpoints, flags, affinity_timeout; };
struct ct_v1 {
	__u8 nat_addr[16];
	__be16 nat_port;
	__u8 flags, pad;
	__u32 svc_port_id;
	__u64 last_seen;
};
struct svcst_v1 { __u64 connects, no_backend, no_endpoint, refused, l7_unenforced; };

static void be_v2_to_v3(const void *ok, const void *ov, void *k, void *v)
{
	const struct be_v2 *o = ov;
	struct gammad_be_val *n = v;

	memcpy(k, ok, sizeof(__u32));
	n->ep_set = o->ep_set;
	n->nr_endpoints = o->nr_endpoints;
	n->flags = o->flags;
	n->affinity_timeout = o->affinity_timeout;
}

static void ct_v1_to_v2(const void *ok, const void *ov, void *k, void *v)
{
	const struct ct_v1 *o = ov;
	struct gammad_ct_val *n = v;

	memcpy(k, ok, sizeof(struct gammad_ct_key));
	memcpy(n->nat_addr, o->nat_addr, sizeof(n->nat_addr));
	n->nat_port = o->nat_port;
	/* every conntrack converter marks its copies (bpf/lib/ct.h gammad_ctold_v1) */
	n->flags = o->flags | GAMMAD_CT_F_MIGRATED;
	n->svc_port_id = o->svc_port_id;
	n->last_seen = o->last_seen;
	n->first_seen = o->last_seen;
}

static void svcst_v1_to_v2(const void *ok, const void *ov, void *k, void *v)
{
	const struct svcst_v1 *o = ov;
	struct gammad_svc_stats *n = v;

	memcpy(k, ok, sizeof(__u32));
	n->connects = o->connects;
	n->no_backend = o->no_backend;
	n->no_endpoint = o->no_endpoint;
	n->refused = o->refused;
	n->l7_unenforced = o->l7_unenforced;
}

static const struct dp_layout registry[] = {
	{ GAMMAD_MAP_BACKEND, "gammad_be_v2", 4, sizeof(struct be_v2), be_v2_to_v3,
	  DP_LIVE_AGENT },
	{ GAMMAD_MAP_CT, "gammad_ct_v1", sizeof(struct gammad_ct_key), sizeof(struct ct_v1),
	  ct_v1_to_v2, DP_LIVE_DATAPATH },
	{ GAMMAD_MAP_SVC_STATS, "gammad_svcst_v1", 4, sizeof(struct svcst_v1), svcst_v1_to_v2,
	  DP_LIVE_COUNTERS },
};

#endif

#define NR_LAYOUTS (sizeof(registry) / sizeof(registry[0]))

static const struct dp_layout *layout_find(const char *name)
{
	for (size_t i = 0; i < NR_LAYOUTS; i++)
		if (!strcmp(registry[i].name, name))
			return &registry[i];
	return NULL;
}

/*
 * TEST ONLY (the next-layout build): GAMMAD_TEST_LAYOUT_FAIL=<old map>
 * fails that map's fill after its first entry; GAMMAD_TEST_LAYOUT_EXIT=filled|switched exits
 * there, as a crash would; GAMMAD_TEST_LAYOUT_PAUSE_MS=N waits after each
 * catch-up, before its switch, and after the switch, before the commit's copy;
 * GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS=N between two TC links' switches, and
 * GAMMAD_TEST_LAYOUT_LINK_ORDER=down switches them by descending ifindex. A release build has none.
 */
#ifdef GAMMAD_LAYOUT_NEXT
static bool test_env(const char *var, const char *val)
{
	const char *v = getenv(var);

	return v && !strcmp(v, val);
}
#define TEST_FAIL(name)	test_env("GAMMAD_TEST_LAYOUT_FAIL", name)
#define TEST_EXIT(at)	do { if (test_env("GAMMAD_TEST_LAYOUT_EXIT", at)) _exit(3); } while (0)
/* the pauses: as long as a loaded machine may take there */
static void test_pause(const char *var)
{
	const char *v = getenv(var);
	long ms = v ? strtol(v, NULL, 10) : 0;
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	if (ms > 0)
		nanosleep(&ts, NULL);
}
#define TEST_PAUSE()	test_pause("GAMMAD_TEST_LAYOUT_PAUSE_MS")
#else
#define TEST_FAIL(name)	false
#define TEST_EXIT(at)	do { } while (0)
#define TEST_PAUSE()	do { } while (0)
#endif

void dp_layout_test_link_pause(void)
{
#ifdef GAMMAD_LAYOUT_NEXT
	test_pause("GAMMAD_TEST_LAYOUT_LINK_PAUSE_MS");
#endif
}

bool dp_layout_test_links_down(void)
{
#ifdef GAMMAD_LAYOUT_NEXT
	return test_env("GAMMAD_TEST_LAYOUT_LINK_ORDER", "down");
#else
	return false;
#endif
}

/* ---- maps as entries ------------------------------------------------------- */

static bool percpu(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* Bytes of one value as the syscalls move it: per-CPU values one per possible CPU, 8-aligned. */
static size_t val_bytes(const struct dp *dp, enum bpf_map_type t, uint32_t val_size)
{
	return percpu(t) ? (size_t)dp->nr_cpus * ((val_size + 7) & ~7u) : val_size;
}

/* Convert one old entry (every CPU's value) into key/val of the new layout. */
static void convert(const struct dp *dp, const struct dp_migration *g, const void *ok,
		    const void *ov, void *k, void *v)
{
	const struct dp_layout *l = g->layout;
	size_t ostride = (l->prev_val_size + 7) & ~7u, nstride = (g->val_size + 7) & ~7u;
	int n = percpu(g->type) ? dp->nr_cpus : 1;

	memset(k, 0, g->key_size);
	memset(v, 0, val_bytes(dp, g->type, g->val_size));
	for (int c = 0; c < n; c++) {
		const char *o = (const char *)ov + (size_t)c * ostride;
		char *nv = (char *)v + (size_t)c * nstride;

		if (l->conv) {
			l->conv(ok, o, k, nv);
			continue;
		}
		memcpy(k, ok, l->prev_key_size < g->key_size ? l->prev_key_size : g->key_size);
		memcpy(nv, o, l->prev_val_size < g->val_size ? l->prev_val_size : g->val_size);
	}
}

/*
 * Conntrack, when an entry is in both maps: is the new map's a copy of a
 * flow the old programs have replaced since on the same tuple (a client
 * reusing its port; the endpoint chosen again)? Then it goes to the former
 * endpoint, and ours (conv, converted from the old map now) replaces it.
 * What the new programs made themselves, or changed on a copy of the same
 * flow (its flags, its last-seen time), stays. The new programs drop such
 * a copy's packets meanwhile (bpf/lib/ct.h ct_lookup), but only while they
 * still see the old map: a copy no packet met before the last one would
 * send the flow to that endpoint for good.
 */
static bool ct_copy_replaced(const struct dp_migration *g, const void *k, const void *conv)
{
	const struct gammad_ct_val *n = conv;
	struct gammad_ct_val cur;

	if (strcmp(g->layout->name, GAMMAD_MAP_CT) || g->val_size != sizeof(cur) ||
	    bpf_map_lookup_elem(bpf_map__fd(g->map), k, &cur))
		return false;
	return (cur.flags & GAMMAD_CT_F_MIGRATED) &&
	       (memcmp(cur.nat_addr, n->nat_addr, sizeof(cur.nat_addr)) ||
		cur.nat_port != n->nat_port ||
		((cur.flags ^ n->flags) & GAMMAD_CT_F_HAIRPIN));
}

/* Does the old map have key ok now (it was read before, as a whole)? */
static bool old_has(const struct dp_migration *g, const void *ok)
{
	char val[256];

	if (g->layout->prev_val_size > sizeof(val))
		return false;
	return !bpf_map_lookup_elem(g->old_fd, ok, val);
}

/* One old entry into the new map; 1 written, 0 skipped, <0 error. */
static int copy_one(const struct dp *dp, struct dp_migration *g, const void *ok, const void *ov,
		    void *k, void *v, __u64 flags)
{
	size_t ob = val_bytes(dp, g->type, g->layout->prev_val_size);
	bool array = g->type == BPF_MAP_TYPE_ARRAY || g->type == BPF_MAP_TYPE_PERCPU_ARRAY;
	int fd = bpf_map__fd(g->map);

	convert(dp, g, ok, ov, k, v);
	if (array && *(__u32 *)k >= bpf_map__max_entries(g->map))
		return 0;	/* configured smaller: the slots beyond go */
	/* counters: the snapshot is exactly what was copied */
	if (g->snap && *(const __u32 *)ok < g->snap_nr)
		memcpy((char *)g->snap + (size_t)*(const __u32 *)ok * ob, ov, ob);
	if (!bpf_map_update_elem(fd, k, v, flags))
		return 1;
	if (errno != EEXIST)
		return -errno;
	/*
	 * Only while the old map still has it (old programs, or new ones
	 * through the slot, may have ended it since it was read). A new
	 * program making its own flow on the tuple between that look and the
	 * write would lose it to ours: microseconds, after its SYN.
	 */
	if (!ct_copy_replaced(g, k, v) || !old_has(g, ok))
		return 0;
	return bpf_map_update_elem(fd, k, v, BPF_EXIST) ? (errno == ENOENT ? 0 : -errno) : 1;
}

/*
 * Every entry of the old map into the new one. flags: BPF_ANY to fill,
 * BPF_NOEXIST to carry over only what the new programs have not made
 * themselves. *n: entries written. Hash maps are read in batches (a walk
 * by next key starts over whenever the programs delete the key it stands
 * on, as conntrack does all the time); arrays slot by slot.
 */
static int copy_entries(const struct dp *dp, struct dp_migration *g, __u64 flags, size_t *n)
{
	const struct dp_layout *l = g->layout;
	bool array = g->type == BPF_MAP_TYPE_ARRAY || g->type == BPF_MAP_TYPE_PERCPU_ARRAY;
	size_t ob = val_bytes(dp, g->type, l->prev_val_size);
	char *ov = malloc(ob), *k = malloc(g->key_size);
	char *v = malloc(val_bytes(dp, g->type, g->val_size));
	struct map_dump d = { 0 };
	size_t nr = 0;
	int err = ov && k && v ? 0 : -ENOMEM;

	*n = 0;
	if (!err && !array) {
		if (percpu(g->type))
			err = -EOPNOTSUPP;	/* no per-CPU hash map is migrated yet */
		else
			err = map_dump_read(g->old_fd, &d);
		nr = d.nr;
	} else if (!err) {
		nr = g->old_entries;
	}
	for (size_t i = 0; i < nr && !err; i++) {
		__u32 slot = (__u32)i;
		const void *ok = array ? (const void *)&slot : map_dump_key(&d, i);
		const void *val = ov;
		int w;

		if (array && bpf_map_lookup_elem(g->old_fd, &slot, ov)) {
			err = -errno;
			break;
		}
		if (!array)
			val = map_dump_val(&d, i);
		if (flags == BPF_ANY && *n && TEST_FAIL(l->prev)) {
			err = -EIO;
			pr_err("datapath: test: the fill of %s fails here", l->prev);
			break;
		}
		w = copy_one(dp, g, ok, val, k, v, flags);
		if (w < 0)
			err = w;
		else
			*n += (size_t)w;
	}
	map_dump_free(&d);
	free(ov);
	free(k);
	free(v);
	return err;
}

/* ---- is an old map still in use? ----------------------------------------- */

static int prog_uses_map(__u32 prog_id, __u32 map_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64];
	int fd = bpf_prog_get_fd_by_id(prog_id), ret = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		ret = -errno;
	for (__u32 i = 0; !ret && i < info.nr_map_ids && i < 64; i++)
		ret = ids[i] == map_id;
	close(fd);
	return ret;
}

/* 1: a program attached through one of our pins reads the map; 0: none; <0: error. */
static int map_in_use(const struct dp *dp, int map_fd)
{
	struct bpf_map_info mi = {};
	__u32 len = sizeof(mi);
	char path[PATH_MAX];
	struct dirent *e;
	int ret = 0;
	DIR *d;

	if (bpf_obj_get_info_by_fd(map_fd, &mi, &len))
		return -errno;
	d = opendir(dp->pin_dir);
	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		__u32 prog;

		if (strncmp(e->d_name, "link_", 5) && strncmp(e->d_name, "clsact_", 7))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, e->d_name);
		prog = dp_pinned_prog_id(path);
		if (prog)
			ret = prog_uses_map(prog, mi.id);
	}
	closedir(d);
	return ret;
}

/* ---- plan, fill, commit ------------------------------------------------------ */

/* "gammad_be_v3" -> base length ("gammad_be"), version 3; false if not so named. */
static bool versioned(const char *name, size_t *base, unsigned long *ver)
{
	const char *v = strrchr(name, '_');
	char *end;

	if (!v || v[1] != 'v' || v[2] < '0' || v[2] > '9')
		return false;
	*ver = strtoul(v + 2, &end, 10);
	*base = (size_t)(v - name);
	return !*end;
}

int dp_layout_refuse_newer(const struct dp *dp, struct bpf_object *obj)
{
	struct dirent *e;
	int err = 0;
	DIR *d = opendir(dp->pin_dir);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (e = readdir(d))) {
		unsigned long pv, mv;
		size_t pb, mb;
		struct bpf_map *m;

		if (!versioned(e->d_name, &pb, &pv))
			continue;
		bpf_object__for_each_map(m, obj) {
			const char *name = bpf_map__name(m);

			if (bpf_map__is_internal(m) || !versioned(name, &mb, &mv) || mb != pb ||
			    strncmp(name, e->d_name, pb) || pv <= mv)
				continue;
			pr_err("datapath: %s/%s is a newer map layout than this gammad's %s: "
			       "refusing to start, the newer programs keep serving; run a gammad "
			       "of that layout, or `gammad uninstall --pin-dir %s` first (a "
			       "downgrade starts from empty maps)", dp->pin_dir, e->d_name, name,
			       dp->pin_dir);
			err = -EPROTO;
			break;
		}
	}
	closedir(d);
	return err;
}

/*
 * A map whose layout changed without a registry entry starts empty beside
 * its old pin: say so (a review should have added the entry).
 */
static void warn_unregistered(const struct dp *dp, const char *name)
{
	unsigned long mv, pv;
	size_t mb, pb;
	struct dirent *e;
	DIR *d;

	if (!versioned(name, &mb, &mv) || !(d = opendir(dp->pin_dir)))
		return;
	while ((e = readdir(d)))
		if (versioned(e->d_name, &pb, &pv) && pb == mb && pv < mv &&
		    !strncmp(e->d_name, name, mb))
			pr_warn("datapath: %s/%s is an older layout of %s, and this gammad has no "
				"migration for it: %s starts empty, the old pin stays", dp->pin_dir,
				e->d_name, name, name);
	closedir(d);
}

int dp_layout_plan(struct dp *dp, struct bpf_map *m, const char *path, uint32_t want)
{
	const struct dp_layout *l = layout_find(bpf_map__name(m));
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct dp_migration *g;
	char old_path[PATH_MAX];
	int old_fd, fd, err;

	if (!l) {
		if (access(path, F_OK))
			warn_unregistered(dp, bpf_map__name(m));
		return 0;
	}
	snprintf(old_path, sizeof(old_path), "%s/%s", dp->pin_dir, l->prev);
	old_fd = bpf_obj_get(old_path);
	if (old_fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* nothing to migrate */
	if (dp->nr_migrations == DP_MAX_MIGRATIONS) {
		close(old_fd);
		return -E2BIG;
	}
	g = &dp->migrations[dp->nr_migrations];
	memset(g, 0, sizeof(*g));
	g->layout = l;
	g->map = m;
	g->old_fd = old_fd;
	g->type = bpf_map__type(m);
	g->key_size = bpf_map__key_size(m);
	g->val_size = bpf_map__value_size(m);
	snprintf(g->old_path, sizeof(g->old_path), "%s", old_path);
	snprintf(g->path, sizeof(g->path), "%s", path);
	if (bpf_obj_get_info_by_fd(old_fd, &info, &len)) {
		err = -errno;
		goto fail;
	}
	if (info.key_size != l->prev_key_size || info.value_size != l->prev_val_size ||
	    info.type != (__u32)g->type) {
		pr_err("datapath: pinned %s is not the layout this gammad upgrades from "
		       "(key %u, value %u bytes; expected %u, %u): refusing to touch it",
		       old_path, info.key_size, info.value_size, l->prev_key_size,
		       l->prev_val_size);
		err = -EEXIST;
		goto fail;
	}
	g->old_entries = info.max_entries;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* An upgrade was interrupted: which side of the switch? */
		err = map_in_use(dp, old_fd);
		if (err < 0) {
			close(fd);
			goto fail;
		}
		if (!err) {
			pr_info("datapath: an interrupted layout upgrade switched the programs "
				"to %s already: finishing it (%s goes)", path, old_path);
			g->adopted = true;
			dp->nr_migrations++;
			close(fd);
			return 0;	/* the new map is adopted as it is */
		}
		pr_info("datapath: an interrupted layout upgrade left %s unused: building it "
			"again from %s", path, old_path);
		close(fd);
		if (unlink(path)) {
			err = -errno;
			goto fail;
		}
	}
	dp->nr_migrations++;
	/* Pinned at load; nothing uses it before the switch. */
	err = bpf_map__set_pin_path(m, path);
	if (!err)
		err = bpf_map__set_max_entries(m, want ?: info.max_entries);
	return err ?: 1;
fail:
	close(old_fd);
	g->old_fd = -1;
	return err;
}

/* The new pins of migrations not yet switched: nobody uses them. */
static void drop_new_pins(struct dp *dp)
{
	for (int i = 0; i < dp->nr_migrations; i++)
		if (!dp->migrations[i].adopted)
			unlink(dp->migrations[i].path);
}

/* ADD: room for the old counters as the fill copies them (copy_entries). */
static int snapshot(struct dp *dp, struct dp_migration *g)
{
	size_t ob = val_bytes(dp, g->type, g->layout->prev_val_size);

	if (g->type != BPF_MAP_TYPE_PERCPU_ARRAY && g->type != BPF_MAP_TYPE_ARRAY)
		return -EINVAL;	/* counters are arrays indexed by id */
	g->snap_nr = g->old_entries;
	g->snap = calloc(g->snap_nr ? g->snap_nr : 1, ob);
	return g->snap ? 0 : -ENOMEM;
}

int dp_layout_fill(struct dp *dp)
{
	int err = 0;

	for (int i = 0; i < dp->nr_migrations && !err; i++) {
		struct dp_migration *g = &dp->migrations[i];

		if (g->adopted)
			continue;
		if (g->layout->live == DP_LIVE_COUNTERS)
			err = snapshot(dp, g);
		if (!err)
			err = copy_entries(dp, g, BPF_ANY, &g->filled);
		if (err)
			pr_err("datapath: layout upgrade %s -> %s failed after %zu entries: %s; "
			       "nothing was switched, the old layout keeps serving",
			       g->old_path, g->path, g->filled, strerror(-err));
	}
	if (err) {
		drop_new_pins(dp);
		dp_layout_release(dp);
		return err;
	}
	TEST_EXIT("filled");
	return 0;
}

bool dp_layout_pending(const struct dp *dp)
{
	return dp->nr_migrations > 0;
}

/* new += old now - old as copied, counter by counter, for every CPU. */
static int add_counted(struct dp *dp, struct dp_migration *g, size_t *n)
{
	size_t ob = val_bytes(dp, g->type, g->layout->prev_val_size);
	size_t nb = val_bytes(dp, g->type, g->val_size);
	char *now = malloc(ob), *cn = malloc(nb), *cs = malloc(nb), *cur = malloc(nb);
	char k[8];
	int err = 0, fd = bpf_map__fd(g->map);

	*n = 0;
	if (!now || !cn || !cs || !cur || g->key_size > sizeof(k) || g->val_size % 8) {
		err = now && cn && cs && cur ? -EINVAL : -ENOMEM;
		goto out;
	}
	for (__u32 key = 0; key < g->snap_nr && !err; key++) {
		const char *snap = (const char *)g->snap + key * ob;
		bool any = false;

		if (bpf_map_lookup_elem(g->old_fd, &key, now)) {
			err = -errno;
			break;
		}
		if (!memcmp(now, snap, ob))
			continue;	/* nothing counted in between: the common case */
		convert(dp, g, &key, now, k, cn);
		convert(dp, g, &key, snap, k, cs);
		if (bpf_map_lookup_elem(fd, k, cur)) {
			err = -errno;
			break;
		}
		for (size_t i = 0; i < nb / 8; i++) {
			__u64 d = ((__u64 *)cn)[i] - ((__u64 *)cs)[i];

			((__u64 *)cur)[i] += d;
			any |= d != 0;
		}
		if (any && bpf_map_update_elem(fd, k, cur, BPF_EXIST))
			err = -errno;
		*n += any;
	}
out:
	free(now);
	free(cn);
	free(cs);
	free(cur);
	return err;
}

/* Entries the old programs made since the fill, into the new maps they lack. */
static void catch_up(struct dp *dp)
{
	for (int i = 0; i < dp->nr_migrations; i++) {
		struct dp_migration *g = &dp->migrations[i];
		size_t n;
		int err;

		if (g->layout->live != DP_LIVE_DATAPATH)
			continue;
		err = copy_entries(dp, g, BPF_NOEXIST, &n);
		if (err)
			pr_warn("datapath: layout upgrade %s -> %s: catching up: %s", g->old_path,
				g->path, strerror(-err));
	}
}

void dp_layout_catch_up(struct dp *dp)
{
	catch_up(dp);
	TEST_PAUSE();
}

/*
 * The old route maps, unpinned, emptied. A program the switch cannot reach
 * still reads them: the kernel HTTP path's sk_msg of a client socket
 * registered before the upgrade (a sockhash keeps each socket's programs
 * as they were when it went in). Nobody writes them any more, and the ids
 * they name are recycled, so they would route its requests by a frozen,
 * soon wrong copy (an endpoint set id reused by another Service). Empty,
 * its next request finds no backend and goes to the engine, for good, at
 * a request boundary (an answer waits for what its upstream still owes).
 * Only when every TC link was switched too: without TC (--no-tc) an
 * earlier agent's TC links keep their old programs on these maps.
 */
static void empty_old_routes(struct dp *dp)
{
	for (int i = 0; i < dp->nr_migrations; i++) {
		struct dp_migration *g = &dp->migrations[i];
		char key[64], next[64];
		size_t n = 0;
		void *k = NULL;

		if (g->layout->live != DP_LIVE_AGENT || g->old_fd < 0 ||
		    g->layout->prev_key_size > sizeof(key))
			continue;
		/* deleting the key just read: the walk starts over from the first */
		while (!bpf_map_get_next_key(g->old_fd, k, next)) {
			memcpy(key, next, g->layout->prev_key_size);
			if (bpf_map_delete_elem(g->old_fd, key) && errno != ENOENT) {
				k = key;	/* cannot go: step over it */
				continue;
			}
			n++;
		}
		if (n)
			pr_info("datapath: layout upgrade: the old %s emptied (%zu entries): a program "
				"still on it hands its requests to the engine", g->old_path, n);
	}
}

int dp_layout_commit(struct dp *dp)
{
	int err = 0;

	if (!dp->nr_migrations)
		return 0;
	TEST_EXIT("switched");
	TEST_PAUSE();	/* the old programs' last flows meet the new programs before the copy */
	/*
	 * At once: a flow the old programs started since the last catch-up
	 * has its reply handled by the new ones from now on, which must find
	 * its entry. Then again when no old program runs any more.
	 */
	catch_up(dp);
	err = dp_sync(dp);
	if (err)
		pr_warn("datapath: layout upgrade: grace period: %s", strerror(-err));
	for (int i = 0; i < dp->nr_migrations; i++) {
		struct dp_migration *g = &dp->migrations[i];
		const char *kind = "";
		size_t n = 0;
		int e = 0;

		/*
		 * The pin first: a crash after it loses what the old programs
		 * wrote since the fill, never counts anything twice.
		 */
		if (unlink(g->old_path) && errno != ENOENT)
			e = -errno;
		if (!e && g->layout->live == DP_LIVE_DATAPATH) {
			kind = "entries the old programs made since, carried over";
			e = copy_entries(dp, g, BPF_NOEXIST, &n);
		} else if (!e && g->layout->live == DP_LIVE_COUNTERS && !g->adopted) {
			kind = "counters the old programs added since, carried over";
			e = add_counted(dp, g, &n);
		}
		if (e) {
			pr_warn("datapath: layout upgrade %s -> %s: switched, but %s: %s",
				g->old_path, g->path, kind, strerror(-e));
			err = err ?: e;
			continue;
		}
		if (g->layout->live == DP_LIVE_AGENT)
			pr_info("datapath: map layout upgraded: %s -> %s (%zu entries converted)",
				g->old_path, g->path, g->filled);
		else
			pr_info("datapath: map layout upgraded: %s -> %s (%zu entries converted; "
				"%s: %zu)", g->old_path, g->path, g->filled, kind, n);
	}
	/* the last copy is done: the new programs stop looking at the old conntrack */
	dp_layout_ct_slot(dp, -1);
	if (dp->tc_follows)
		empty_old_routes(dp);
	dp_layout_release(dp);
	return err;
}

int dp_layout_ct_old(const struct dp *dp)
{
	for (int i = 0; i < dp->nr_migrations; i++) {
		const struct dp_migration *g = &dp->migrations[i];

		if (!g->adopted && g->old_fd >= 0 && !strcmp(g->layout->name, GAMMAD_MAP_CT))
			return g->old_fd;
	}
	return -1;
}

void dp_layout_ct_slot(struct dp *dp, int slot_fd)
{
	__u32 zero = 0;

	if (dp->ct_old_slot_fd >= 0 && bpf_map_delete_elem(dp->ct_old_slot_fd, &zero) &&
	    errno != ENOENT)
		pr_warn("datapath: layout upgrade: emptying the TC programs' old conntrack slot: %s",
			strerror(errno));
	dp->ct_old_slot_fd = slot_fd;
}

void dp_layout_release(struct dp *dp)
{
	for (int i = 0; i < dp->nr_migrations; i++) {
		struct dp_migration *g = &dp->migrations[i];

		if (g->old_fd >= 0)
			close(g->old_fd);
		free(g->snap);
		g->snap = NULL;
		g->old_fd = -1;
	}
	dp->nr_migrations = 0;
}
