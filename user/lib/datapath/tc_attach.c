// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "datapath_int.h"
#include "tc_attach.h"
#include "skel/tc.skel.h"

/* Newer than Debian 12's UAPI headers (kernel 6.6). */
#define GAMMAD_BPF_TCX_INGRESS		46
#define GAMMAD_BPF_LINK_TYPE_TCX	11

/* The head of struct bpf_link_info as a TCX link fills it. */
struct tcx_link_info {
	__u32 type;
	__u32 id;
	__u32 prog_id;
	__u32 pad;
	__u32 ifindex;
	__u32 attach_type;
};

struct tc_dp {
	char pin_dir[PATH_MAX / 2];
	struct tc_bpf *skel;
	bool clsact;
};

static int tc_relink_all(struct tc_dp *t);

int tc_dp_open(struct dp *dp, const struct tc_dp_opts *opts, struct tc_dp **out)
{
	struct tc_dp *t = calloc(1, sizeof(*t));
	int err, old_ct;
	__u32 zero = 0;

	if (!t)
		return -ENOMEM;
	snprintf(t->pin_dir, sizeof(t->pin_dir), "%s",
		 opts && opts->pin_dir ? opts->pin_dir : DP_PIN_DIR_DEFAULT);
	t->skel = tc_bpf__open();
	if (!t->skel) {
		err = -errno;
		goto fail;
	}
	if (opts && opts->redirect)
		t->skel->rodata->tc_cfg_flags |= GAMMAD_TC_CFG_REDIRECT;
	if (opts && opts->hairpin4)
		t->skel->rodata->tc_hairpin4 = opts->hairpin4->s_addr;
	if (opts && opts->hairpin6)
		memcpy((void *)t->skel->rodata->tc_hairpin6, opts->hairpin6, 16);
	t->clsact = opts && opts->clsact;
	err = dp_adopt_maps(dp, t->skel->obj);
	/* the old conntrack's layout is the slot's (bpf/lib/ct.h gammad_ctold_v1) */
	old_ct = dp_layout_ct_old(dp);
	if (!err && old_ct >= 0)
		err = bpf_map__set_inner_map_fd(t->skel->maps.gammad_ctold_v1, old_ct);
	if (!err)
		err = tc_bpf__load(t->skel);
	if (!err && old_ct >= 0) {
		err = bpf_map_update_elem(bpf_map__fd(t->skel->maps.gammad_ctold_v1), &zero,
					  &old_ct, BPF_ANY) ? -errno : 0;
		if (!err)
			dp_layout_ct_slot(dp, bpf_map__fd(t->skel->maps.gammad_ctold_v1));
	}
	/*
	 * A layout upgrade: the old TC programs read the old maps, which stop
	 * getting route changes; every pinned attachment switches now, then
	 * the old maps go (layout.c). The new programs make no flow until the
	 * last link is switched (bpf/tc.bpf.c tc_switching).
	 */
	if (!err && dp_layout_pending(dp)) {
		dp_layout_catch_up(dp);
		__atomic_store_n(&t->skel->bss->tc_switching, 1, __ATOMIC_SEQ_CST);
		err = tc_relink_all(t);
		__atomic_store_n(&t->skel->bss->tc_switching, 0, __ATOMIC_SEQ_CST);
	}
	if (!err && dp_layout_pending(dp))
		err = dp_layout_commit(dp);
	if (!err) {
		*out = t;
		return 0;
	}
fail:
	pr_err("tc: load: %s", strerror(-err));
	dp_layout_ct_slot(dp, -1);
	tc_dp_close(t);
	return err;
}

bool tc_hairpin_addr_ok(int family, const void *addr)
{
	const struct in6_addr *a6 = addr;

	if (family == AF_INET) {
		uint32_t a = ntohl(((const struct in_addr *)addr)->s_addr);

		/* not 0/8, 127/8, multicast or above */
		return a >> 24 && a >> 24 != 127 && a < 0xe0000000u;
	}
	/* link-local: the pod would look for it on its link (NDP), not route it to the node */
	return !IN6_IS_ADDR_UNSPECIFIED(a6) && !IN6_IS_ADDR_LOOPBACK(a6) &&
	       !IN6_IS_ADDR_MULTICAST(a6) && !IN6_IS_ADDR_V4MAPPED(a6) &&
	       !IN6_IS_ADDR_LINKLOCAL(a6);
}

void tc_dp_close(struct tc_dp *t)
{
	if (!t)
		return;
	tc_bpf__destroy(t->skel);
	free(t);
}

static void link_path(const struct tc_dp *t, int ifindex, char *buf, size_t len)
{
	snprintf(buf, len, "%s/link_tc_%d", t->pin_dir, ifindex);
}

/* Marks a clsact filter of ours (the program pinned): what tc_detach looks for. */
static void clsact_mark_path(const struct tc_dp *t, int ifindex, char *buf, size_t len)
{
	snprintf(buf, len, "%s/clsact_tc_%d", t->pin_dir, ifindex);
}

/* 1: the pinned link of ifindex now runs prog_fd; 0: none to adopt (any stale pin removed). */
static int link_adopt(const char *path, int ifindex, int prog_fd)
{
	struct bpf_link_info raw = {};
	struct tcx_link_info *info = (struct tcx_link_info *)&raw;
	__u32 len = sizeof(raw);
	int fd, err;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_obj_get_info_by_fd(fd, &raw, &len);
	if (!err && info->type == GAMMAD_BPF_LINK_TYPE_TCX && info->ifindex == (__u32)ifindex &&
	    info->attach_type == GAMMAD_BPF_TCX_INGRESS) {
		err = bpf_link_update(fd, prog_fd, NULL) ? -errno : 1;
		close(fd);
		return err;
	}
	/* its interface is gone (ifindex 0) or was replaced */
	bpf_link_detach(fd);
	close(fd);
	return unlink(path) ? -errno : 0;
}

/* The clsact ingress hook of ifindex and our filter on it. */
static void clsact_ids(int ifindex, struct bpf_tc_hook *hook, struct bpf_tc_opts *o)
{
	hook->ifindex = ifindex;
	hook->attach_point = BPF_TC_INGRESS;
	o->handle = GAMMAD_TC_HANDLE;
	o->priority = GAMMAD_TC_PRIO;
}

static int clsact_attach(int ifindex, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook);
	LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	clsact_ids(ifindex, &hook, &o);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &o);
}

/* Our filter only: the qdisc may hold other programs' filters. */
static int clsact_detach(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook);
	LIBBPF_OPTS(bpf_tc_opts, o);
	int err;

	clsact_ids(ifindex, &hook, &o);
	err = bpf_tc_detach(&hook, &o);
	/* no qdisc, no filter, or no interface any more: nothing attached */
	return err == -ENOENT || err == -EINVAL || err == -ENODEV ? 0 : err;
}

/*
 * The role a pinned attachment has now, from its program's name (the kernel
 * keeps 15 characters): the uplink program or the pod one.
 */
static int pinned_role(const struct tc_dp *t, const char *path, enum tc_role *role)
{
	struct bpf_prog_info pi = {};
	__u32 len, id = dp_pinned_prog_id(path);
	int fd, pfd;

	pfd = id ? bpf_prog_get_fd_by_id(id) : -1;
	if (pfd < 0)
		return -ENOENT;
	len = sizeof(pi);
	fd = bpf_obj_get_info_by_fd(pfd, &pi, &len);
	close(pfd);
	if (fd)
		return -errno;
	*role = !strncmp(pi.name, bpf_program__name(t->skel->progs.gammad_tc_uplink),
			 sizeof(pi.name) - 1) ? TC_ROLE_UPLINK : TC_ROLE_POD;
	return 0;
}

/* A pinned TC attachment: link_tc_<ifindex> (TCX) or clsact_tc_<ifindex>. */
static int tc_pin_ifindex(const char *name)
{
	const char *num = !strncmp(name, "clsact_tc_", 10) ? name + 10 :
			  !strncmp(name, "link_tc_", 8) ? name + 8 : NULL;

	return num ? atoi(num) : 0;
}

static int tc_pin_filter(const struct dirent *e)
{
	return tc_pin_ifindex(e->d_name) > 0;
}

/* By ifindex, so the switch order is known (the next-layout build's test may reverse it). */
static int tc_pin_cmp(const struct dirent **a, const struct dirent **b)
{
	int x = tc_pin_ifindex((*a)->d_name), y = tc_pin_ifindex((*b)->d_name);

	return (x > y) - (x < y);
}

static int tc_pin_cmp_down(const struct dirent **a, const struct dirent **b)
{
	return tc_pin_cmp(b, a);
}

static int tc_relink_all(struct tc_dp *t)
{
	char path[PATH_MAX];
	struct dirent **list;
	size_t n = 0;
	int err = 0, nr;

	nr = scandir(t->pin_dir, &list, tc_pin_filter,
		     dp_layout_test_links_down() ? tc_pin_cmp_down : tc_pin_cmp);
	if (nr < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < nr && !err; i++) {
		const char *name = list[i]->d_name;
		bool clsact = !strncmp(name, "clsact_tc_", 10);
		int ifindex = tc_pin_ifindex(name), e2;
		enum tc_role role = TC_ROLE_POD;

		snprintf(path, sizeof(path), "%s/%s", t->pin_dir, name);
		if (pinned_role(t, path, &role))
			continue;	/* a stale pin: tc_sync cleans it up */
		if (n)
			dp_layout_test_link_pause();
		if (clsact) {
			struct bpf_program *p = role == TC_ROLE_UPLINK ?
				t->skel->progs.gammad_tc_uplink : t->skel->progs.gammad_tc_pod;

			/* BPF_TC_F_REPLACE: the filter changes its program in one step */
			e2 = clsact_attach(ifindex, bpf_program__fd(p));
			if (!e2 && !unlink(path))
				e2 = bpf_obj_pin(bpf_program__fd(p), path) ? -errno : 0;
		} else {
			e2 = tc_attach(t, ifindex, role);
		}
		if (e2 == -ENODEV || e2 == -ENOENT)
			continue;	/* its interface went meanwhile */
		err = e2;
		n++;
	}
	for (int i = 0; i < nr; i++)
		free(list[i]);
	free(list);
	if (err)
		pr_err("tc: switching the pinned attachments to the new programs: %s",
		       strerror(-err));
	else
		pr_info("tc: %zu attachments switched to the new programs", n);
	return err;
}

int tc_attach(struct tc_dp *t, int ifindex, enum tc_role role)
{
	struct bpf_program *p = role == TC_ROLE_UPLINK ? t->skel->progs.gammad_tc_uplink
						       : t->skel->progs.gammad_tc_pod;
	char path[PATH_MAX];
	int fd, err;

	link_path(t, ifindex, path, sizeof(path));
	err = link_adopt(path, ifindex, bpf_program__fd(p));
	if (err)
		return err < 0 ? err : 0;
	fd = t->clsact ? -EINVAL : bpf_link_create(bpf_program__fd(p), ifindex,
						    GAMMAD_BPF_TCX_INGRESS, NULL);
	if (fd == -EINVAL) {
		err = clsact_attach(ifindex, bpf_program__fd(p));
		if (!err) {
			clsact_mark_path(t, ifindex, path, sizeof(path));
			unlink(path);
			err = bpf_obj_pin(bpf_program__fd(p), path) ? -errno : 0;
		}
		if (err)
			pr_err("tc: clsact on ifindex %d: %s", ifindex, strerror(-err));
		return err;
	}
	if (fd < 0) {
		err = fd;
		pr_err("tc: attach to ifindex %d: %s", ifindex, strerror(-err));
		return err;
	}
	err = bpf_obj_pin(fd, path) ? -errno : 0;
	if (err)
		bpf_link_detach(fd);	/* no pin, no attachment left behind */
	close(fd);
	return err;
}

int tc_detach(struct tc_dp *t, int ifindex)
{
	char path[PATH_MAX];
	int fd, err = 0;

	clsact_mark_path(t, ifindex, path, sizeof(path));
	if (!access(path, F_OK)) {
		err = clsact_detach(ifindex);
		if (!err && unlink(path))
			err = -errno;
	}
	link_path(t, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? err : -errno;
	bpf_link_detach(fd);
	close(fd);
	return unlink(path) ? -errno : err;
}
