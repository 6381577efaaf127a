// SPDX-License-Identifier: Apache-2.0
/*
 * Loader and writer of the in-kernel L4 data path (see datapath.h).
 *
 * Both BPF objects declare every map (bpf/lib/maps.h); each map gets the
 * pin path <pin_dir>/<name> before load, so libbpf reuses a pinned map when
 * there is one (checking type, key, value, size and flags) and pins the new
 * one otherwise. The first object to load creates, the second reuses, and
 * a restarted agent adopts. Cgroup links are pinned too; sk_msg is attached
 * to the sockhash with bpf_prog_attach (libbpf 1.1 has no link for it),
 * which the pinned sockhash keeps alive.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "alias.h"
#include "datapath.h"
#include "datapath_int.h"
#include "map_dump.h"
#include "mirror_int.h"
#include "skel/sock_addr.skel.h"
#include "skel/sockops.skel.h"

#define LINK_PREFIX "link_"


/* ---- sizes -------------------------------------------------------------- */

/* Configuration name of each size, and the maps it sizes. */
static const struct {
	const char *option;
	size_t off;
	const char *maps[2];
} size_tab[] = {
	{ "frontends", offsetof(struct dp_sizes, frontends), { GAMMAD_MAP_FRONTEND } },
	{ "consumers", offsetof(struct dp_sizes, consumers), { GAMMAD_MAP_CONSUMER } },
	{ "cgroups", offsetof(struct dp_sizes, cgroups), { GAMMAD_MAP_CGROUP_NS } },
	{ "selectors", offsetof(struct dp_sizes, selectors), { GAMMAD_MAP_SELECTOR } },
	{ "alias-slots", offsetof(struct dp_sizes, alias_slots), { GAMMAD_MAP_ALIAS } },
	{ "backends", offsetof(struct dp_sizes, backends),
	  { GAMMAD_MAP_BACKEND, GAMMAD_MAP_BE_STATS } },
	{ "endpoints", offsetof(struct dp_sizes, endpoints), { GAMMAD_MAP_ENDPOINT } },
	{ "local-endpoints", offsetof(struct dp_sizes, local_endpoints), { GAMMAD_MAP_LOCAL_EP } },
	{ "svc-ports", offsetof(struct dp_sizes, svc_ports), { GAMMAD_MAP_SVC_STATS } },
	{ "routes", offsetof(struct dp_sizes, routes), { GAMMAD_MAP_ROUTE_STATS } },
	{ "revnat", offsetof(struct dp_sizes, revnat), { GAMMAD_MAP_REVNAT } },
	{ "sockets", offsetof(struct dp_sizes, sockets),
	  { GAMMAD_MAP_SOCKHASH, GAMMAD_MAP_ENGINE_SOCKHASH } },
	{ "objects", offsetof(struct dp_sizes, objects), { GAMMAD_MAP_OBJECTS } },
	{ "conntrack", offsetof(struct dp_sizes, conntrack), { GAMMAD_MAP_CT } },
	{ "pods", offsetof(struct dp_sizes, pods), { GAMMAD_MAP_POD } },
	{ "origdst", offsetof(struct dp_sizes, origdst), { GAMMAD_MAP_ORIGDST } },
	/* no map of its own: a cap of the translation, entries of gammad_ep_v1 */
	{ "endpoints-per-service", offsetof(struct dp_sizes, endpoints_per_service), { NULL } },
	{ "affinity", offsetof(struct dp_sizes, affinity), { GAMMAD_MAP_AFFINITY } },
};
#define NR_SIZES (sizeof(size_tab) / sizeof(size_tab[0]))

static uint32_t map_size_wanted(const struct dp_sizes *s, const char *name)
{
	for (size_t i = 0; i < NR_SIZES; i++)
		for (size_t j = 0; j < 2 && size_tab[i].maps[j]; j++)
			if (!strcmp(size_tab[i].maps[j], name))
				return *(const uint32_t *)((const char *)s + size_tab[i].off);
	return 0;
}

int dp_sizes_parse(struct dp_sizes *s, const char *arg, char *err, size_t len)
{
	const char *eq = strchr(arg, '=');
	unsigned long long v;
	char *end;

	for (size_t i = 0; eq && i < NR_SIZES; i++) {
		if (strlen(size_tab[i].option) != (size_t)(eq - arg) ||
		    strncmp(size_tab[i].option, arg, (size_t)(eq - arg)))
			continue;
		errno = 0;
		v = strtoull(eq + 1, &end, 10);
		if (errno || end == eq + 1 || *end || v < 1 || v > DP_SIZE_MAX) {
			snprintf(err, len, "%s: size must be a whole number from 1 to %u",
				 arg, DP_SIZE_MAX);
			return -EINVAL;
		}
		*(uint32_t *)((char *)s + size_tab[i].off) = (uint32_t)v;
		return 0;
	}
	snprintf(err, len, "%s: expected NAME=ENTRIES with NAME one of", arg);
	for (size_t i = 0; i < NR_SIZES; i++) {
		size_t n = strlen(err);

		snprintf(err + n, len - n, "%s %s", i ? "," : "", size_tab[i].option);
	}
	return -EINVAL;
}

/*
 * Give a map its pin path and size. A pinned map of the same name is
 * adopted as it is: a different layout under the same versioned name is a
 * bug (refuse); a different configured size makes a new map that gets the
 * old one's entries before it replaces its pin (datapath_resize.c), or, for
 * maps whose contents cannot be copied, keeps the pinned size (reported).
 */
static int map_prepare(struct dp *dp, struct bpf_map *m, const struct dp_sizes *sizes)
{
	const char *name = bpf_map__name(m);
	uint32_t want = map_size_wanted(sizes, name);
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	char path[PATH_MAX];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, name);
	err = bpf_map__set_pin_path(m, path);
	if (err)
		return err;
	/* The previous layout of this map is pinned: a new map, filled after load (layout.c). */
	if (!dp->sa_loaded) {
		err = dp_layout_plan(dp, m, path, want);
		if (err > 0 && !strcmp(name, GAMMAD_MAP_FRONTEND))
			dp->adopted = true;
		if (err)
			return err < 0 ? err : 0;
	}
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		return want ? bpf_map__set_max_entries(m, want) : 0;
	}
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return -errno;
	if (info.type != bpf_map__type(m) || info.key_size != bpf_map__key_size(m) ||
	    info.value_size != bpf_map__value_size(m)) {
		pr_err("datapath: pinned map %s has another layout; refusing to adopt it", path);
		return -EEXIST;
	}
	/* Only the first object can find a map an earlier agent pinned. */
	if (!strcmp(name, GAMMAD_MAP_FRONTEND) && !dp->sa_loaded)
		dp->adopted = true;
	if (want && want != info.max_entries && !dp->sa_loaded)
		return dp_resize_plan(dp, m, path, info.max_entries, want);
	if (want && want != info.max_entries)
		pr_warn("datapath: %s keeps its pinned size %u (configured %u)",
			path, info.max_entries, want);
	return bpf_map__set_max_entries(m, info.max_entries);
}

static int obj_prepare_maps(struct dp *dp, struct bpf_object *obj, const struct dp_sizes *sizes)
{
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m))
			continue;
		err = map_prepare(dp, m, sizes);
		if (err) {
			pr_err("datapath: map %s: %s", bpf_map__name(m), strerror(-err));
			return err;
		}
	}
	return 0;
}

/* ---- links --------------------------------------------------------------- */

/* "gammad_connect4" -> "<pin_dir>/link_connect4" */
static void link_pin_path(const struct dp *dp, const struct bpf_program *p,
			  char *buf, size_t len)
{
	const char *name = bpf_program__name(p);

	if (!strncmp(name, "gammad_", 7))
		name += 7;
	snprintf(buf, len, "%s/" LINK_PREFIX "%s", dp->pin_dir, name);
}

/*
 * Adopt the pinned link of this hook when it is attached to our cgroup:
 * swap in the new program atomically (no connect() goes unseen during an
 * upgrade). A link for another cgroup or hook is detached and replaced.
 */
static int link_adopt(const struct dp *dp, const struct bpf_program *p, const char *path)
{
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);
	int fd, err;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (!err && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == dp->cg_id &&
	    info.cgroup.attach_type == bpf_program__expected_attach_type(p)) {
		err = bpf_link_update(fd, bpf_program__fd(p), NULL);
		close(fd);
		return err ? -errno : 1;
	}
	pr_info("datapath: replacing %s (attached elsewhere)", path);
	bpf_link_detach(fd);
	close(fd);
	unlink(path);
	return 0;
}

int dp_attach_cgroup_prog(struct dp *dp, struct bpf_program *p)
{
	char path[PATH_MAX];
	struct bpf_link *link;
	int err;

	link_pin_path(dp, p, path, sizeof(path));
	err = link_adopt(dp, p, path);
	if (err)
		return err < 0 ? err : 0;
	link = bpf_program__attach_cgroup(p, dp->cg_fd);
	if (!link)
		return -errno;
	err = bpf_link__pin(link, path);
	/* The pin holds the attachment; our fd is not needed any more. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	return err;
}

/* A hook this configuration no longer wants (no_sockmap after a full install). */
int dp_detach_pinned_link(const struct dp *dp, const char *hook)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/" LINK_PREFIX "%s", dp->pin_dir, hook);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	bpf_link_detach(fd);
	close(fd);
	return unlink(path) ? -errno : 0;
}

static int attach_all(struct dp *dp)
{
	struct bpf_program *p;
	int err;

	bpf_object__for_each_program(p, dp->sa->obj) {
		err = dp_attach_cgroup_prog(dp, p);
		if (err)
			goto fail;
	}
	if (!dp->so)
		return dp_detach_pinned_link(dp, "sockops");
	p = dp->so->progs.gammad_sockops;
	err = dp_attach_cgroup_prog(dp, p);
	if (err)
		goto fail;
	p = dp->so->progs.gammad_sk_msg;
	/* Replaces the program of an adopted sockhash. */
	err = bpf_prog_attach(bpf_program__fd(p), bpf_map__fd(dp->so->maps.gammad_sockh_v1),
			      BPF_SK_MSG_VERDICT, 0);
	/* the same program on the engine's sockhash (bpf/sockops.bpf.c) */
	if (!err)
		err = bpf_prog_attach(bpf_program__fd(p),
				      bpf_map__fd(dp->so->maps.gammad_esockh_v1),
				      BPF_SK_MSG_VERDICT, 0);
	if (err)
		err = -errno;
	if (!err)
		return 0;
fail:
	pr_err("datapath: attach %s: %s", bpf_program__name(p), strerror(-err));
	return err;
}

/* ---- open / close / uninstall ------------------------------------------ */

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Pins need bpffs; mount it at /sys/fs/bpf when the pin dir is there and it is not. */
static int ensure_bpffs(const char *pin_dir)
{
	struct statfs st;

	if (strncmp(pin_dir, "/sys/fs/bpf/", 12))
		return 0;
	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		pr_err("datapath: mount bpffs at /sys/fs/bpf: %s", strerror(errno));
		return -errno;
	}
	pr_info("datapath: mounted bpffs at /sys/fs/bpf");
	return 0;
}

int dp_cgroup_id(const char *path, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = {};
	int mnt;

	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0))
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

static int load_objects(struct dp *dp, const struct dp_opts *opts)
{
	int err;

	dp->sa = sock_addr_bpf__open();
	if (!dp->sa)
		return -errno;
	dp->sa->rodata->engine_port = htons(opts->engine_port ?: GAMMAD_ENGINE_PORT_DEFAULT);
	err = dp_layout_refuse_newer(dp, dp->sa->obj);
	if (!err)
		err = obj_prepare_maps(dp, dp->sa->obj, &opts->sizes);
	if (!err)
		err = sock_addr_bpf__load(dp->sa);
	dp->sa_loaded = !err;
	/* Before any later object looks for the pins, and before any attach. */
	if (!err)
		err = dp_resize_finish(dp);
	if (!err)
		err = dp_layout_fill(dp);
	if (err || opts->no_sockmap)
		return err;
	dp->so = sockops_bpf__open();
	if (!dp->so)
		return -errno;
	dp->so->rodata->engine_port = dp->sa->rodata->engine_port;
	dp->so->rodata->sockmap_cap = opts->sockmap_cap ?: GAMMAD_SOCKMAP_CAP_DEFAULT;
	dp->so->rodata->sock_redirect = opts->sock_redirect;
	dp->so->rodata->engine_redirect = opts->sock_redirect && !opts->no_engine_redirect;
	err = obj_prepare_maps(dp, dp->so->obj, &opts->sizes);
	if (!err)
		err = sockops_bpf__load(dp->so);
	return err;
}

int dp_open(const struct dp_opts *opts, struct dp **out)
{
	struct dp *dp;
	int err;

	if (!opts || !opts->cgroup || !out)
		return -EINVAL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cg_fd = dp->sync_outer_fd = dp->sync_inner_fd = dp->ct_old_slot_fd = -1;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s",
		 opts->pin_dir ? opts->pin_dir : DP_PIN_DIR_DEFAULT);
	dp->sizes = opts->sizes;
	dp->tc_follows = opts->tc_follows;
	dp->nr_cpus = libbpf_num_possible_cpus();
	err = dp->nr_cpus < 0 ? dp->nr_cpus : 0;
	if (!err)
		err = ensure_bpffs(dp->pin_dir);
	if (!err)
		err = mkdir_p(dp->pin_dir);
	if (!err) {
		dp->cg_fd = open(opts->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dp->cg_fd < 0)
			err = -errno;
	}
	if (!err)
		err = dp_cgroup_id(opts->cgroup, &dp->cg_id);
	if (!err)
		err = load_objects(dp, opts);
	if (!err && dp_layout_pending(dp))
		dp_layout_catch_up(dp);
	if (!err)
		err = attach_all(dp);
	if (!err)
		err = dp_sync_init(dp);
	/* Every program is switched by now, unless TC links are still to follow. */
	if (!err && !opts->tc_follows)
		err = dp_layout_commit(dp);
	if (err) {
		pr_err("datapath: open (pin dir %s, cgroup %s): %s", dp->pin_dir,
		       opts->cgroup, strerror(-err));
		dp_close(dp);
		return err;
	}
	*out = dp;
	return 0;
}

void dp_close(struct dp *dp)
{
	if (!dp)
		return;
	wq_free(dp->wq);	/* what a failed apply left queued stays unwritten */
	dp_mirror_drop(dp);
	dp_resize_release(dp);
	dp_layout_release(dp);
	sockops_bpf__destroy(dp->so);
	sock_addr_bpf__destroy(dp->sa);
	if (dp->cg_fd >= 0)
		close(dp->cg_fd);
	if (dp->sync_outer_fd >= 0)
		close(dp->sync_outer_fd);
	if (dp->sync_inner_fd >= 0)
		close(dp->sync_inner_fd);
	free(dp);
}

bool dp_adopted(const struct dp *dp)
{
	return dp->adopted;
}

/*
 * Links are detached first (hooks stop at once even if some process still
 * holds a link fd), then every pin is removed; maps die with their last
 * reference, and the sockhash takes its sk_msg program with it.
 */
int dp_uninstall(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	int err = 0;
	DIR *d;

	if (!pin_dir)
		pin_dir = DP_PIN_DIR_DEFAULT;
	d = opendir(pin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		int fd;

		if (strncmp(e->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, e->d_name);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, e->d_name);
		if (unlink(path) && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(pin_dir) && !err)
		err = -errno;
	return err;
}

int dp_adopt_maps(struct dp *dp, struct bpf_object *obj)
{
	bool adopted = dp->adopted;	/* our own pins are no adoption */
	struct bpf_map *m;
	int err = 0;

	/*
	 * Only the data path's maps are shared and pinned; a map of this
	 * object alone (a scratch area, the release iterators' input) stays
	 * private to it, so no later layout of it can clash with a pin.
	 */
	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m) ||
		    !bpf_object__find_map_by_name(dp->sa->obj, bpf_map__name(m)))
			continue;
		err = map_prepare(dp, m, &dp->sizes);
		if (err) {
			pr_err("datapath: map %s: %s", bpf_map__name(m), strerror(-err));
			break;
		}
	}
	dp->adopted = adopted;
	return err;
}

int dp_pin_all_maps(struct dp *dp, struct bpf_object *obj)
{
	bool adopted = dp->adopted;
	int err;

	err = dp_layout_refuse_newer(dp, obj);
	if (!err)
		err = obj_prepare_maps(dp, obj, &dp->sizes);
	dp->adopted = adopted;
	return err;
}

int dp_map_fd(const struct dp *dp, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->sa->obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

uint32_t dp_map_capacity(const struct dp *dp, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->sa->obj, name);

	return m ? bpf_map__max_entries(m) : 0;
}

/* ---- writer -------------------------------------------------------------- */

#define MAP_FD(dp, name) bpf_map__fd((dp)->sa->maps.name)

/* The --map-size name of a map, for messages. */
static const char *size_option(const char *map)
{
	for (size_t i = 0; i < NR_SIZES; i++)
		for (size_t j = 0; j < 2 && size_tab[i].maps[j]; j++)
			if (!strcmp(size_tab[i].maps[j], map))
				return size_tab[i].option;
	return NULL;
}

/* The kernel refused an entry for lack of room: say which map and how to grow it. */
static void dp_report_full(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	const char *opt;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	opt = size_option(info.name);
	pr_err("datapath: map %s is full (%u entries)%s%s", info.name, info.max_entries,
	       opt ? "; raise it with --map-size " : "", opt ? opt : "");
}

/* ---- the route maps' mirror (mirror_int.h, datapath.h) ---- */

void dp_mirror_drop(struct dp *dp)
{
	mirror_free(dp->mirror);
	dp->mirror = NULL;
}

/*
 * A write the kernel took. Should the mirror run out of memory, it is
 * dropped: the next reader goes to the kernel, which is always right.
 */
static void dp_mirror_note_put(struct dp *dp, int fd, const void *key, const void *val)
{
	if (dp->mirror && mirror_put(dp->mirror, fd, key, val)) {
		pr_warn("datapath: map mirror out of memory; reading the kernel again");
		dp_mirror_drop(dp);
	}
}

static void dp_mirror_note_delete(struct dp *dp, int fd, const void *key)
{
	if (dp->mirror)
		mirror_delete(dp->mirror, fd, key);
}

int dp_mirror_load(struct dp *dp)
{
	int fds[16];
	struct dp_mirror *m;
	int err = dp_batch_flush(dp);

	if (err)
		return err;
	for (size_t i = 0; i < mirror_nr_maps() && i < 16; i++)
		fds[i] = dp_map_fd(dp, mirror_map_name(i));
	err = mirror_load(fds, &m);
	if (err) {
		pr_err("datapath: map mirror: %s", strerror(-err));
		return err;
	}
	dp_mirror_drop(dp);
	dp->mirror = m;
	return 0;
}

bool dp_mirror_on(const struct dp *dp)
{
	return dp->mirror != NULL;
}

int dp_map_dump(struct dp *dp, const char *name, struct map_dump *d)
{
	int fd, err = dp_batch_flush(dp);

	if (err)
		return err;
	if (dp->mirror && mirror_has(dp->mirror, name))
		return mirror_dump(dp->mirror, name, d);
	memset(d, 0, sizeof(*d));
	fd = dp_map_fd(dp, name);
	return fd < 0 ? fd : map_dump_read(fd, d);
}

int dp_map_view(struct dp *dp, const char *name, struct map_dump *d)
{
	int err = dp_batch_flush(dp);

	if (err)
		return err;
	if (dp->mirror && mirror_has(dp->mirror, name))
		return mirror_view(dp->mirror, name, d);
	return dp_map_dump(dp, name, d);
}

int dp_map_lookup(struct dp *dp, const char *name, const void *key, void *val)
{
	int fd, err = dp_batch_flush(dp);

	if (err)
		return err;
	if (dp->mirror && mirror_has(dp->mirror, name))
		return mirror_lookup(dp->mirror, name, key, val);
	fd = dp_map_fd(dp, name);
	if (fd < 0)
		return fd;
	return bpf_map_lookup_elem(fd, key, val) ? -errno : 0;
}

int dp_map_delete(struct dp *dp, const char *name, const void *key)
{
	int fd = dp_map_fd(dp, name), err = dp_batch_flush(dp);

	if (err)
		return err;
	if (fd < 0)
		return fd;
	if (bpf_map_delete_elem(fd, key))
		return -errno;
	dp_mirror_note_delete(dp, fd, key);
	return 0;
}

int dp_mirror_audit(struct dp *dp, size_t *drift)
{
	int err;

	*drift = 0;
	if (!dp->mirror)
		return dp_mirror_load(dp);
	err = mirror_drift(dp->mirror, drift);
	/* Reloaded either way: the next apply reconciles against the kernel as it is. */
	return err ?: dp_mirror_load(dp);
}

/* Into the write queue's stage st while a batch is open (wq.c), else now. */
static int map_put(struct dp *dp, enum dp_wq_stage st, int fd, const void *k, const void *v)
{
	if (dp->wq)
		return wq_put(dp->wq, st, fd, k, v);
	if (!bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		dp_mirror_note_put(dp, fd, k, v);
		return 0;
	}
	if (errno == E2BIG || errno == ENOSPC)
		dp_report_full(fd);
	return -errno;
}

/* ---- batched writes (datapath.h, wq.c) ---- */

static void wq_taken(void *ctx, int fd, const void *key, const void *val)
{
	dp_mirror_note_put(ctx, fd, key, val);
}

static const struct wq_hooks dp_wq_hooks = { .taken = wq_taken, .full = dp_report_full };

void dp_batch_begin(struct dp *dp)
{
	/* Without memory for the queue, writes stay single: slower, as correct. */
	if (!dp->wq)
		dp->wq = wq_new(dp->nr_cpus, &dp_wq_hooks, dp);
}

int dp_batch_flush(struct dp *dp)
{
	return wq_flush(dp->wq);
}

int dp_batch_end(struct dp *dp)
{
	int err = wq_flush(dp->wq);

	wq_free(dp->wq);
	dp->wq = NULL;
	return err;
}

static int map_update(struct dp *dp, int fd, const void *k, const void *v)
{
	return map_put(dp, DP_WQ_DATA, fd, k, v);
}

/* Deleting what is already gone is fine: retiring is idempotent. */
static int map_delete(struct dp *dp, int fd, const void *k)
{
	int err = dp_batch_flush(dp);	/* never before a queued write of the key */

	if (err)
		return err;
	if (bpf_map_delete_elem(fd, k) && errno != ENOENT)
		return -errno;
	dp_mirror_note_delete(dp, fd, k);
	return 0;
}

void dp_fe_key(struct gammad_fe_key *key, int family, const void *addr,
	       uint16_t port, uint8_t proto)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, addr, family == AF_INET6 ? 16 : 4);
	key->port = htons(port);
	key->proto = proto;
	key->family = family;
}

void dp_ep(struct gammad_ep_val *ep, int family, const void *addr, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	memcpy(ep->addr, addr, family == AF_INET6 ? 16 : 4);
	ep->port = htons(port);
	ep->family = family;
}

/* One syscall per set (an endpoint set can hold thousands). */
int dp_endpoints_write(struct dp *dp, uint32_t ep_set,
		       const struct gammad_ep_val *eps, uint32_t nr)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	int fd = MAP_FD(dp, gammad_ep_v1);
	struct gammad_ep_key *keys;
	__u32 count = nr;
	int err = 0;

	if (!nr)
		return 0;
	if (dp->wq) {
		/* Batching: into the queue, one batch with every other set's. */
		for (uint32_t i = 0; i < nr && !err; i++) {
			struct gammad_ep_key k = { .ep_set = ep_set, .idx = i };

			err = map_put(dp, DP_WQ_EP, fd, &k, &eps[i]);
		}
		return err;
	}
	keys = calloc(nr, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < nr; i++)
		keys[i] = (struct gammad_ep_key){ .ep_set = ep_set, .idx = i };
	if (bpf_map_update_batch(fd, keys, eps, &count, &opts)) {
		err = -errno;
		if (err == -E2BIG || err == -ENOSPC)
			dp_report_full(fd);
	}
	/* What the kernel took, also of a batch cut short. */
	for (uint32_t i = 0; i < count && i < nr; i++)
		dp_mirror_note_put(dp, fd, &keys[i], &eps[i]);
	free(keys);
	return err;
}

int dp_endpoints_delete(struct dp *dp, uint32_t ep_set, uint32_t nr)
{
	int err = 0;

	for (uint32_t i = 0; i < nr; i++) {
		struct gammad_ep_key k = { .ep_set = ep_set, .idx = i };
		int e = map_delete(dp, MAP_FD(dp, gammad_ep_v1), &k);

		err = err ?: e;
	}
	return err;
}

int dp_backend_write(struct dp *dp, uint32_t be_id, const struct gammad_be_val *be)
{
	return map_put(dp, DP_WQ_BE, MAP_FD(dp, gammad_be_v2), &be_id, be);
}

int dp_backend_delete(struct dp *dp, uint32_t be_id)
{
	return map_delete(dp, MAP_FD(dp, gammad_be_v2), &be_id);
}

int dp_selector_write(struct dp *dp, uint32_t sel_id, uint32_t route_id,
		      const struct dp_weighted *w, size_t n)
{
	return dp_selector_write_flags(dp, sel_id, route_id, w, n, 0);
}

int dp_selector_write_flags(struct dp *dp, uint32_t sel_id, uint32_t route_id,
			    const struct dp_weighted *w, size_t n, uint32_t flags)
{
	struct gammad_sel_val sv = { .route_id = route_id, .flags = flags };
	struct gammad_alias_val *slots = NULL;
	uint32_t *ids = NULL, *weights = NULL;
	int err = -ENOMEM;

	ids = calloc(n + 1, sizeof(*ids));
	weights = calloc(n + 1, sizeof(*weights));
	slots = calloc(n + 1, sizeof(*slots));
	if (!ids || !weights || !slots)
		goto out;
	for (size_t i = 0; i < n; i++) {
		ids[i] = w[i].be_id;
		weights[i] = w[i].weight;
	}
	err = alias_table_build(ids, weights, n, slots, &sv.nr_slots, &sv.total_weight);
	if (err)
		goto out;
	if (!sv.nr_slots)
		sv.flags |= GAMMAD_SEL_NO_ROUTE_BACKENDS;
	/* Slots first: the selector is what makes them reachable. */
	for (uint32_t s = 0; s < sv.nr_slots; s++) {
		struct gammad_alias_key k = { .sel_id = sel_id, .slot = s };

		err = map_put(dp, DP_WQ_ALIAS, MAP_FD(dp, gammad_alias_v1), &k, &slots[s]);
		if (err)
			goto out;
	}
	err = map_put(dp, DP_WQ_SEL, MAP_FD(dp, gammad_sel_v1), &sel_id, &sv);
out:
	free(ids);
	free(weights);
	free(slots);
	return err;
}

int dp_selector_delete(struct dp *dp, uint32_t sel_id)
{
	struct gammad_sel_val sv;
	int err = dp_batch_flush(dp);

	if (err)
		return err;
	if (bpf_map_lookup_elem(MAP_FD(dp, gammad_sel_v1), &sel_id, &sv))
		return errno == ENOENT ? 0 : -errno;
	err = map_delete(dp, MAP_FD(dp, gammad_sel_v1), &sel_id);
	for (uint32_t s = 0; s < sv.nr_slots; s++) {
		struct gammad_alias_key k = { .sel_id = sel_id, .slot = s };
		int e = map_delete(dp, MAP_FD(dp, gammad_alias_v1), &k);

		err = err ?: e;
	}
	return err;
}

int dp_kh_put(struct dp *dp, enum dp_kh_part part, int fd, const void *key, const void *val)
{
	static const enum dp_wq_stage stage[] = {
		[DP_KH_RECORD] = DP_WQ_KH, [DP_KH_TABLE] = DP_WQ_KH_TAB, [DP_KH_CLASS] = DP_WQ_DATA,
	};

	return map_put(dp, stage[part], fd, key, val);
}

int dp_consumer_write(struct dp *dp, uint32_t table_gen, uint32_t ns_id, uint32_t sel_id)
{
	struct gammad_cons_key k = { .table_gen = table_gen, .ns_id = ns_id };
	struct gammad_cons_val v = { .sel = sel_id };

	if (ns_id == GAMMAD_NS_ALL)
		return -EINVAL;	/* unknown clients always get default_sel */
	return map_update(dp, MAP_FD(dp, gammad_cons_v1), &k, &v);
}

int dp_consumer_delete(struct dp *dp, uint32_t table_gen, uint32_t ns_id)
{
	struct gammad_cons_key k = { .table_gen = table_gen, .ns_id = ns_id };

	return map_delete(dp, MAP_FD(dp, gammad_cons_v1), &k);
}

int dp_frontend_publish(struct dp *dp, const struct gammad_fe_key *key,
			const struct gammad_fe_val *val)
{
	return map_put(dp, DP_WQ_FE, MAP_FD(dp, gammad_fe_v1), key, val);
}

int dp_frontend_delete(struct dp *dp, const struct gammad_fe_key *key)
{
	return map_delete(dp, MAP_FD(dp, gammad_fe_v1), key);
}

int dp_cgroup_ns_set(struct dp *dp, uint64_t cgroup_id, uint32_t ns_id)
{
	struct gammad_cgns_val v = { .ns_id = ns_id };

	return map_update(dp, MAP_FD(dp, gammad_cgns_v1), &cgroup_id, &v);
}

int dp_cgroup_ns_delete(struct dp *dp, uint64_t cgroup_id)
{
	return map_delete(dp, MAP_FD(dp, gammad_cgns_v1), &cgroup_id);
}

static void lep_key(struct gammad_lep_key *k, int family, const void *addr)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, family == AF_INET6 ? 16 : 4);
	k->family = family;
}

int dp_local_endpoint_add(struct dp *dp, int family, const void *addr)
{
	struct gammad_lep_key k;
	struct gammad_lep_val v = {};

	lep_key(&k, family, addr);
	return map_update(dp, MAP_FD(dp, gammad_lep_v1), &k, &v);
}

int dp_local_endpoint_delete(struct dp *dp, int family, const void *addr)
{
	struct gammad_lep_key k;

	lep_key(&k, family, addr);
	return map_delete(dp, MAP_FD(dp, gammad_lep_v1), &k);
}

int dp_obj_put(struct dp *dp, uint32_t kind, uint32_t id, const struct gammad_obj_val *val)
{
	struct gammad_obj_key k = { .kind = kind, .id = id };
	/*
	 * Queued: a begin marker (hash 0) before what it announces, the final
	 * entry after it; a frontend's names the table it points at, so after
	 * the flip.
	 */
	enum dp_wq_stage st = !val->hash ? DP_WQ_OBJ_BEGIN :
			      kind == GAMMAD_OBJ_FRONTEND ? DP_WQ_OBJ_FE : DP_WQ_OBJ;

	return map_put(dp, st, MAP_FD(dp, gammad_obj_v1), &k, val);
}

int dp_obj_delete(struct dp *dp, uint32_t kind, uint32_t id)
{
	struct gammad_obj_key k = { .kind = kind, .id = id };

	return map_delete(dp, MAP_FD(dp, gammad_obj_v1), &k);
}

int dp_counters_reset(struct dp *dp, uint32_t kind, uint32_t id)
{
	size_t size;
	void *zero;
	int fd, err;

	switch (kind) {
	case GAMMAD_OBJ_FRONTEND:
		fd = MAP_FD(dp, gammad_svcst_v1);
		size = sizeof(struct gammad_svc_stats);
		break;
	case GAMMAD_OBJ_SELECTOR:
		fd = MAP_FD(dp, gammad_rtst_v1);
		size = sizeof(struct gammad_route_stats);
		break;
	case GAMMAD_OBJ_BACKEND:
		fd = MAP_FD(dp, gammad_best_v1);
		size = sizeof(struct gammad_be_stats);
		break;
	default:
		return 0;
	}
	/* Per-CPU values are 8-byte aligned, one per possible CPU. */
	zero = calloc((size_t)dp->nr_cpus, (size + 7) & ~(size_t)7);
	if (!zero)
		return -ENOMEM;
	err = map_put(dp, DP_WQ_COUNTERS, fd, &id, zero);
	free(zero);
	return err;
}

/* ---- counters ------------------------------------------------------------- */

/* Sum nr_u64 counters of a per-CPU value over every possible CPU. */
static int percpu_sum(struct dp *dp, int fd, uint32_t key, __u64 *out, size_t nr_u64)
{
	__u64 *vals;
	int err = 0;

	vals = calloc((size_t)dp->nr_cpus, nr_u64 * sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, nr_u64 * sizeof(uint64_t));
	for (int c = 0; c < dp->nr_cpus; c++)
		for (size_t i = 0; i < nr_u64; i++)
			out[i] += vals[(size_t)c * nr_u64 + i];
out:
	free(vals);
	return err;
}

int dp_svc_stats(struct dp *dp, uint32_t svc_port_id, struct gammad_svc_stats *out)
{
	return percpu_sum(dp, MAP_FD(dp, gammad_svcst_v1), svc_port_id,
			  (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

int dp_be_stats(struct dp *dp, uint32_t be_id, struct gammad_be_stats *out)
{
	return percpu_sum(dp, MAP_FD(dp, gammad_best_v1), be_id, &out->connects, 1);
}

int dp_route_stats(struct dp *dp, uint32_t route_id, struct gammad_route_stats *out)
{
	return percpu_sum(dp, MAP_FD(dp, gammad_rtst_v1), route_id, &out->connects, 1);
}

int dp_reasons(struct dp *dp, __u64 *out)
{
	for (uint32_t r = 0; r < GAMMAD_R_MAX; r++) {
		int err = percpu_sum(dp, MAP_FD(dp, gammad_drop_v1), r, &out[r], 1);

		if (err)
			return err;
	}
	return 0;
}

const char *dp_reason_name(unsigned int reason)
{
	static const char *const names[GAMMAD_R_MAX] = {
		[GAMMAD_R_OK] = "ok",
		[GAMMAD_R_NO_SELECTOR] = "no_selector",
		[GAMMAD_R_NO_ROUTE_BACKENDS] = "no_route_backends",
		[GAMMAD_R_NO_ALIAS] = "no_alias_slot",
		[GAMMAD_R_NO_BACKEND] = "no_backend",
		[GAMMAD_R_BE_UNRESOLVED] = "backend_unresolved",
		[GAMMAD_R_BE_NO_ENDPOINTS] = "backend_no_endpoints",
		[GAMMAD_R_NO_ENDPOINT] = "no_endpoint",
		[GAMMAD_R_FAMILY] = "endpoint_family",
		[GAMMAD_R_SOCK_STORAGE] = "sock_storage",
		[GAMMAD_R_REVNAT_FULL] = "revnat_full",
		[GAMMAD_R_STATS_RANGE] = "stats_id_range",
		[GAMMAD_R_SOCKHASH_UPDATE] = "sockhash_update",
		[GAMMAD_R_REDIR_NO_PEER] = "redirect_no_peer",
		[GAMMAD_R_ORIGDST_UPDATE] = "origdst_update",
		[GAMMAD_R_ENGINE_GONE] = "engine_gone",
		[GAMMAD_R_REDIR_SLOW_READER] = "redirect_slow_reader",
	};

	return reason < GAMMAD_R_MAX && names[reason] ? names[reason] : "unknown";
}
