// SPDX-License-Identifier: Apache-2.0
/*
 * The client side of an apply (user/lib/image_clients.c): pod cgroups in
 * kubelet cgroupfs and systemd naming map to their namespace ids, this
 * node's pod IPs (and only those, with --node-name) are local endpoints,
 * and entries of pods that are gone or moved are deleted.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "image/image_apply.h"
#include "lib/dp_fixture.h"
#include "lib/netns.h"
#include "lib/translate_fixture.h"
#include "test_progs.h"

#define POD(name, ns, uid, node, ip) \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns \
	", uid: " uid "}\nspec:\n  nodeName: " node "\n  containers: [{name: c, image: x}]\n" \
	"status:\n  podIP: " ip "\n  podIPs: [{ip: " ip "}]\n"

#define UID1 "11111111-2222-3333-4444-555555555555"
#define UID2 "66666666-7777-8888-9999-000000000000"
#define PODS POD("p1", "app", UID1, "node-a", "10.244.0.5") \
	     POD("p2", "other", UID2, "node-b", "10.244.0.6")

static bool local_ep(struct dp *dp, const char *ip)
{
	struct gammad_lep_key k = { .family = AF_INET };
	struct gammad_lep_val v;

	inet_pton(AF_INET, ip, k.addr);
	return !bpf_map_lookup_elem(dp_map_fd(dp, GAMMAD_MAP_LOCAL_EP), &k, &v);
}

/* ns_id the cgroup at path maps to; 0 when it has no entry. */
static uint32_t cgroup_ns(struct dp *dp, const char *path)
{
	struct gammad_cgns_val v;
	uint64_t id;

	if (dp_cgroup_id(path, &id) ||
	    bpf_map_lookup_elem(dp_map_fd(dp, GAMMAD_MAP_CGROUP_NS), &id, &v))
		return 0;
	return v.ns_id;
}

static int apply(struct dp *dp, const char *yaml, const struct ia_opts *o, struct img *img)
{
	struct tfx f;
	int ret = tfx_setup(&f, yaml);

	if (!ret)
		ret = img_build(&f.m, &f.res, img);
	if (!ret) {
		ret = ia_apply(dp, img, o, NULL);
		if (ret)
			img_free(img);
	}
	tfx_free(&f);
	return ret;
}

void test_apply_clients(void)
{
	char kube[PATH_MAX], pod1[PATH_MAX], pod1c[PATH_MAX + 8], pod2[PATH_MAX];
	struct ia_opts o = { .full = true };
	struct dp_fixture fx;
	uint32_t app, other;
	struct img img;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fixture"))
		goto out;
	/* cgroupfs naming for p1 (with a container below), systemd naming for p2. */
	xsnprintf(kube, sizeof(kube), "%s/kubepods", fx.cg);
	xsnprintf(pod1, sizeof(pod1), "%s/pod" UID1, kube);
	xsnprintf(pod1c, sizeof(pod1c), "%s/c1", pod1);
	xsnprintf(pod2, sizeof(pod2), "%s/kubepods-besteffort-pod%s.slice", kube,
		  "66666666_7777_8888_9999_000000000000");
	if (!ASSERT_OK(mkdir(kube, 0755), "kubepods") || !ASSERT_OK(mkdir(pod1, 0755), "pod1") ||
	    !ASSERT_OK(mkdir(pod1c, 0755), "container") || !ASSERT_OK(mkdir(pod2, 0755), "pod2"))
		goto out;
	o.cgroup_root = fx.cg;

	if (test__start_subtest("all_pods_local_without_node_name")) {
		if (ASSERT_OK(apply(fx.dp, PODS, &o, &img), "apply")) {
			app = img_ns_id(&img, "app");
			other = img_ns_id(&img, "other");
			ASSERT_NEQ(app, 0, "app has an id");
			ASSERT_EQ(cgroup_ns(fx.dp, pod1), app, "cgroupfs pod dir -> app");
			ASSERT_EQ(cgroup_ns(fx.dp, pod1c), 0, "container dir: found through its pod");
			ASSERT_EQ(cgroup_ns(fx.dp, pod2), other, "systemd slice -> other");
			ASSERT_TRUE(local_ep(fx.dp, "10.244.0.5"), "p1 local");
			ASSERT_TRUE(local_ep(fx.dp, "10.244.0.6"), "p2 local");
			img_free(&img);
		}
	}
	if (test__start_subtest("node_name_filters")) {
		o.node_name = "node-a";
		if (ASSERT_OK(apply(fx.dp, PODS, &o, &img), "apply")) {
			ASSERT_TRUE(local_ep(fx.dp, "10.244.0.5"), "p1 on node-a is local");
			ASSERT_FALSE(local_ep(fx.dp, "10.244.0.6"), "p2 on node-b no longer local");
			img_free(&img);
		}
		o.node_name = NULL;
	}
	if (test__start_subtest("gone_pods_removed")) {
		if (ASSERT_OK(apply(fx.dp, POD("p1", "app", UID1, "node-a", "10.244.0.5"), &o, &img),
			      "apply")) {
			ASSERT_NEQ(cgroup_ns(fx.dp, pod1), 0, "p1 kept");
			ASSERT_EQ(cgroup_ns(fx.dp, pod2), 0, "p2's cgroup entry deleted");
			ASSERT_FALSE(local_ep(fx.dp, "10.244.0.6"), "p2's IP deleted");
			img_free(&img);
		}
	}
out:
	rmdir(pod1c);
	rmdir(pod1);
	rmdir(pod2);
	rmdir(kube);
	fx_teardown(&fx);
}
