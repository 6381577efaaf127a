// SPDX-License-Identifier: Apache-2.0
/*
 * The data path outlives its loader: maps and cgroup links are pinned. A
 * second load adopts them (same maps, entries and counters kept, links
 * updated in place, not duplicated), a load with other sizes moves the
 * entries into maps of the new sizes, and uninstall removes everything.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "lib/netns.h"
#include "lib/hello.h"
#include "lib/dp_fixture.h"

static const enum bpf_attach_type hooks[] = {
	BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
	BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG,
	BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG,
	BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
	BPF_CGROUP_SOCK_OPS,
};

/* Programs attached to the fixture cgroup, per hook; -1 on error. */
static int attached(struct dp_fixture *fx, enum bpf_attach_type type)
{
	__u32 cnt = 0;
	int fd = open(fx->cg, O_RDONLY | O_DIRECTORY), err;

	if (fd < 0)
		return -1;
	err = bpf_prog_query(fd, type, 0, NULL, NULL, &cnt);
	close(fd);
	return err ? -1 : (int)cnt;
}

static bool each_hook_has(struct dp_fixture *fx, int want)
{
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
		if (!ASSERT_EQ(attached(fx, hooks[i]), want, "programs on the hook"))
			return false;
	return true;
}

/* Runs in a child: load, pin, publish, exit without cleaning up. */
static int loader(void *arg)
{
	struct dp_fixture *fx = arg;
	uint32_t w = 1;
	struct gammad_fe_key key;

	if (fx_dp_open(fx, &fx->dp))
		return 1;
	fx_key(&key, "198.19.2.1", IPPROTO_TCP);
	return fx_publish(fx, &key, 1, &w, 300) ? 2 : 0;
}

/* max_entries of a pinned map; -1 on error. */
static long pinned_size(struct dp_fixture *fx, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX + 32];
	int fd, err;

	xsnprintf(path, sizeof(path), "%s/%s", fx->pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	return err ? -1 : (long)info.max_entries;
}

static int hellos_ok(struct dp_fixture *fx, int n)
{
	struct hello_job *j = hello_job_new("198.19.2.1", FX_PORT, false, n);
	int ok = -1;

	if (!j)
		return -1;
	j->timeout_ms = 1000;
	if (!child_run(fx->cg, NULL, hello_loop, j, 30000))
		ok = j->ids['A'];
	hello_job_free(j);
	return ok;
}

void test_datapath_pin(void)
{
	struct gammad_svc_stats st;
	struct dp_fixture fx;
	struct stat sb;
	char path[PATH_MAX + 32];

	if (!ASSERT_OK(fx_setup(&fx, 1, false), "fixture"))
		goto out;
	/* Start from nothing: the fixture's own load is closed and removed. */
	dp_close(fx.dp);
	fx.dp = NULL;
	if (!ASSERT_OK(dp_uninstall(fx.pin_dir), "uninstall") || !each_hook_has(&fx, 0))
		goto out;

	/* Load, pin and publish from a process that then exits. */
	if (!ASSERT_OK(child_run(NULL, NULL, loader, &fx, 30000), "loader child"))
		goto out;

	if (test__start_subtest("survives_loader_exit")) {
		xsnprintf(path, sizeof(path), "%s/%s", fx.pin_dir, GAMMAD_MAP_FRONTEND);
		ASSERT_OK(stat(path, &sb), "frontend map pinned");
		xsnprintf(path, sizeof(path), "%s/link_connect4", fx.pin_dir);
		ASSERT_OK(stat(path, &sb), "connect4 link pinned");
		each_hook_has(&fx, 1);
		ASSERT_EQ(hellos_ok(&fx, 10), 10, "routed with no loader alive");
	}
	if (test__start_subtest("adopt_keeps_state")) {
		/* Counted by the maps of the first load, before the second one. */
		ASSERT_EQ(hellos_ok(&fx, 10), 10, "routed before adoption");
		if (!ASSERT_OK(fx_dp_open(&fx, &fx.dp), "second load"))
			goto out;
		ASSERT_TRUE(dp_adopted(fx.dp), "adopted");
		each_hook_has(&fx, 1);	/* updated in place, not attached twice */
		ASSERT_EQ(hellos_ok(&fx, 10), 10, "still routed");
		/* A recreated map would have counted only the last 10. */
		if (ASSERT_OK(dp_svc_stats(fx.dp, 1, &st), "stats"))
			ASSERT_GE(st.connects, 20, "counters kept");
	}
	if (test__start_subtest("resize_keeps_entries")) {
		/* fx_dp_open's sizes: 256 frontends, 64 svc_ports; sockhash 65536. */
		struct dp_opts o = {
			.pin_dir = fx.pin_dir, .cgroup = fx.cg,
			.sizes = { .frontends = 512, .selectors = 1024, .backends = 1024,
				   .svc_ports = 128, .routes = 1024, .sockets = 1000 },
		};
		long sockets = pinned_size(&fx, GAMMAD_MAP_SOCKHASH);

		dp_close(fx.dp);
		fx.dp = NULL;
		if (!ASSERT_OK(dp_open(&o, &fx.dp), "load with other sizes"))
			goto out;
		ASSERT_EQ(pinned_size(&fx, GAMMAD_MAP_FRONTEND), 512, "frontend map resized");
		ASSERT_EQ(pinned_size(&fx, GAMMAD_MAP_SVC_STATS), 128, "counter array resized");
		ASSERT_EQ(pinned_size(&fx, GAMMAD_MAP_SOCKHASH), sockets,
			  "sockhash keeps its size (sockets cannot move)");
		each_hook_has(&fx, 1);
		ASSERT_EQ(hellos_ok(&fx, 10), 10, "routed by the copied entries");
		if (ASSERT_OK(dp_svc_stats(fx.dp, 1, &st), "stats"))
			ASSERT_GE(st.connects, 30, "counters copied");
	}
	if (test__start_subtest("uninstall_removes_all")) {
		dp_close(fx.dp);
		fx.dp = NULL;
		ASSERT_OK(dp_uninstall(fx.pin_dir), "uninstall");
		ASSERT_ERR(stat(fx.pin_dir, &sb), "pin dir gone");
		each_hook_has(&fx, 0);
		ASSERT_EQ(hellos_ok(&fx, 2), 0, "no longer routed");
	}
out:
	fx_teardown(&fx);
}
