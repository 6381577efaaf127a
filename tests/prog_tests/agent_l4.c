// SPDX-License-Identifier: Apache-2.0
/*
 * The agent end to end at L4: the lab up with the Gateway API mesh
 * conformance manifests, `gammad run --once` writes the translated image into
 * maps pinned under a test pin dir with the hooks on the lab's cgroup root,
 * then clients in the echo-v1 pod reach Services by ClusterIP.
 */
#include <stdlib.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "datapath/cgroup.h"
#include "datapath/datapath.h"
#include "datapath/map_dump.h"
#include "image/image_apply.h"
#include "lib/lab_env.h"
#include "test_progs.h"

#define MESH_NS "gateway-conformance-mesh"

/* ClusterIP of a Service, from the lab's cluster.yaml. */
static bool cluster_ip(struct lab_env *lab, const char *name, char *buf, size_t len)
{
	char *out = NULL;
	int ret;

	ret = lab_run_capture(&out,
			      "awk '/^kind: Service/{s=1;n=\"\";ns=\"\"} s&&/^  name:/{n=$2} "
			      "s&&/^  namespace:/{ns=$2} s&&/clusterIP:/&&n==\"%s\"&&ns==\"%s\"{print $2; exit}' "
			      "%s/cluster.yaml", name, MESH_NS, lab->out);
	buf[0] = 0;
	if (!ret && out)
		sscanf(out, "%45s", buf);
	free(out);
	return buf[0] != 0;
}

/* Call http://ip:port/ from pod `from`; the name of the answering pod or "". */
static void call(struct lab_env *lab, const struct lab_pod_info *from, const char *ip,
		 int port, char *pod, size_t len)
{
	char *out = NULL, *p;
	int ret;

	pod[0] = 0;
	ret = lab_env_exec(lab, from, &out, "%s client http://%s:%d/ --timeout=5",
			   test_bin("echo"), ip, port);
	test__printf("echo client http://%s:%d/ -> %d\n%s\n", ip, port, ret, out ? out : "");
	if (ASSERT_EQ(ret, 0, "echo client exit status") &&
	    ASSERT_HAS_SUBSTR(out, "StatusCode=200", "HTTP 200") &&
	    (p = strstr(out, "\"pod\": \"")))
		sscanf(p + 8, "%255[^\"]", pod);
	(void)len;
	free(out);
}

/*
 * gammad run --once on the lab: hooks on the lab's cgroup root (the pod
 * cgroup of `pod` up to its kubepods tree), maps under pin_dir. Returns the
 * exit status after checking its one log line.
 */
static int agent_run_once(struct lab_env *lab, const struct lab_pod_info *pod,
			  const char *pin_dir)
{
	char root[PATH_MAX], want[64], *out = NULL, *k;
	int ret;

	snprintf(root, sizeof(root), "%s", pod->cgroup);
	k = strstr(root, "/kubepods");
	if (!ASSERT_OK_PTR(k, "kubepods in the pod cgroup"))
		return -1;
	*k = 0;
	ret = lab_run_capture(&out, "%s run --once --manifests %s --cgroup %s --pin-dir %s",
			      test_bin("gammad"), lab->out, root, pin_dir);
	test__printf("gammad run: %d\n%s", ret, out ? out : "");
	ASSERT_HAS_SUBSTR(out, "applied", "one line with the duration");
	snprintf(want, sizeof(want), " %zu pod cgroups (", lab->nr_pods);
	ASSERT_HAS_SUBSTR(out, want, "every lab pod's cgroup mapped to its namespace");
	free(out);
	return ret;
}

/* Pod cgroup directory names, as kubelet makes them. */
static void subtest_pod_dirs(void)
{
	char uid[64];

	ASSERT_OK(ia_pod_uid_from_dir("pod0a1b-2c", uid, sizeof(uid)), "cgroupfs");
	ASSERT_STREQ(uid, "0a1b-2c", "cgroupfs uid");
	ASSERT_OK(ia_pod_uid_from_dir("kubepods-besteffort-pod0a1b_2c.slice", uid, sizeof(uid)),
		  "systemd");
	ASSERT_STREQ(uid, "0a1b-2c", "systemd uid");
	ASSERT_EQ(ia_pod_uid_from_dir("kubepods-besteffort.slice", uid, sizeof(uid)), -ENOENT,
		  "qos slice");
	ASSERT_EQ(ia_pod_uid_from_dir("cri-containerd-ab.scope", uid, sizeof(uid)), -ENOENT,
		  "container scope");
	ASSERT_EQ(ia_pod_uid_from_dir("pod", uid, sizeof(uid)), -ENOENT, "empty uid");
}

/* Entries of the pinned map `name`, read whole; -1 on error. */
static long pinned_dump(const char *pin_dir, const char *name, struct map_dump *d)
{
	char path[128];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	err = map_dump_read(fd, d);
	close(fd);
	return err ? -1 : (long)d->nr;
}

static long pinned_count(const char *pin_dir, const char *name)
{
	struct map_dump d;
	long n = pinned_dump(pin_dir, name, &d);

	if (n >= 0)
		map_dump_free(&d);
	return n;
}

static int pinned_update(const char *pin_dir, const char *name, const void *k, const void *v)
{
	char path[128];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
	close(fd);
	return err;
}

static const char *const route_maps[] = {
	GAMMAD_MAP_FRONTEND, GAMMAD_MAP_CONSUMER, GAMMAD_MAP_SELECTOR, GAMMAD_MAP_ALIAS,
	GAMMAD_MAP_BACKEND, GAMMAD_MAP_ENDPOINT, GAMMAD_MAP_OBJECTS,
};
#define NR_ROUTE_MAPS (sizeof(route_maps) / sizeof(route_maps[0]))

/*
 * A second agent on unchanged manifests adopts the pinned state: every
 * frontend keeps its entry (no flip, same counters), nothing is added or
 * lost, and what a crashed agent may have left behind (entries no frontend
 * reaches, an object recorded but never completed) is retired.
 */
static void subtest_restart(struct lab_env *lab, const struct lab_pod_info *v1,
			    const struct lab_pod_info *v2, const char *pin_dir)
{
	struct gammad_obj_val half = { .ident = 42 };	/* hash 0: never completed */
	struct gammad_obj_key half_key = { .kind = GAMMAD_OBJ_SELECTOR, .id = 4000 };
	struct gammad_be_val orphan_be = { .ep_set = 4001, .nr_endpoints = 1 };
	struct gammad_ep_key orphan_ep_key = { .ep_set = 4001 };
	struct gammad_ep_val orphan_ep = { .family = AF_INET };
	struct map_dump before, after;
	long counts[NR_ROUTE_MAPS];
	__u32 orphan_id = 4002;
	char ip[64], pod[256];

	if (!ASSERT_GT(pinned_dump(pin_dir, GAMMAD_MAP_FRONTEND, &before), 0, "frontends pinned"))
		return;
	for (size_t i = 0; i < NR_ROUTE_MAPS; i++)
		counts[i] = pinned_count(pin_dir, route_maps[i]);
	ASSERT_GT(counts[NR_ROUTE_MAPS - 1], 0, "object table filled");
	ASSERT_OK(pinned_update(pin_dir, GAMMAD_MAP_OBJECTS, &half_key, &half), "half object");
	ASSERT_OK(pinned_update(pin_dir, GAMMAD_MAP_BACKEND, &orphan_id, &orphan_be),
		  "orphan backend");
	ASSERT_OK(pinned_update(pin_dir, GAMMAD_MAP_ENDPOINT, &orphan_ep_key, &orphan_ep),
		  "orphan endpoint");

	if (!ASSERT_EQ(agent_run_once(lab, v1, pin_dir), 0, "second gammad run --once"))
		goto out;
	if (ASSERT_EQ(pinned_dump(pin_dir, GAMMAD_MAP_FRONTEND, &after), (long)before.nr,
		      "same frontends")) {
		for (size_t i = 0; i < before.nr; i++) {
			const void *k = map_dump_key(&before, i);
			bool same = false;

			for (size_t j = 0; j < after.nr; j++)
				if (!memcmp(k, map_dump_key(&after, j), before.key_size))
					same = !memcmp(map_dump_val(&before, i),
						       map_dump_val(&after, j), before.val_size);
			ASSERT_TRUE(same, "frontend entry unchanged (no flip)");
		}
		map_dump_free(&after);
	}
	for (size_t i = 0; i < NR_ROUTE_MAPS; i++)
		ASSERT_EQ(pinned_count(pin_dir, route_maps[i]), counts[i], route_maps[i]);
	if (ASSERT_TRUE(cluster_ip(lab, "echo-v2", ip, sizeof(ip)), "ClusterIP")) {
		call(lab, v1, ip, 80, pod, sizeof(pod));
		ASSERT_STREQ(pod, v2->name, "still routed after restart");
	}
out:
	map_dump_free(&before);
}

void test_agent_l4(void)
{
	const char *manifests = test_shared_path("gateway-api/conformance/mesh/manifests.yaml");
	const struct lab_pod_info *v1, *v2;
	char pin_dir[64], ip[64], pod[256], *out = NULL;
	struct lab_env lab;
	int ret;

	if (test__start_subtest("pod_cgroup_names"))
		subtest_pod_dirs();
	if (!manifests) {
		test__skip("no shared gateway-api/conformance/mesh/manifests.yaml");
		return;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/gammad-test-%d", (int)getpid());
	if (lab_env_start(&lab, manifests))
		goto cleanup;
	v1 = lab_env_find(&lab, MESH_NS, "echo-v1");
	v2 = lab_env_find(&lab, MESH_NS, "echo-v2");
	if (!ASSERT_OK_PTR(v1, "echo-v1 pod") || !ASSERT_OK_PTR(v2, "echo-v2 pod"))
		goto cleanup;
	/* Without the agent, ClusterIPs lead nowhere (the lab blackholes them). */
	if (ASSERT_TRUE(cluster_ip(&lab, "echo-v2", ip, sizeof(ip)), "ClusterIP of echo-v2")) {
		ret = lab_env_exec(&lab, v1, &out, "%s client http://%s:80/ --timeout=2",
				   test_bin("echo"), ip);
		ASSERT_NEQ(ret, 0, "ClusterIP unreachable before gammad run");
		free(out);
		out = NULL;
	}

	ret = agent_run_once(&lab, v1, pin_dir);
	if (!ASSERT_EQ(ret, 0, "gammad run --once"))
		goto cleanup;
	ASSERT_EQ(access(pin_dir, F_OK), 0, "pin dir kept after exit");

	if (test__start_subtest("echo_v2_port_80")) {
		if (ASSERT_TRUE(cluster_ip(&lab, "echo-v2", ip, sizeof(ip)), "ClusterIP of echo-v2")) {
			call(&lab, v1, ip, 80, pod, sizeof(pod));
			ASSERT_STREQ(pod, v2->name, "answer from the echo-v2 pod");
		}
	}
	if (test__start_subtest("echo_v2_port_8080")) {
		if (ASSERT_TRUE(cluster_ip(&lab, "echo-v2", ip, sizeof(ip)), "ClusterIP of echo-v2")) {
			call(&lab, v1, ip, 8080, pod, sizeof(pod));
			ASSERT_STREQ(pod, v2->name, "answer from the echo-v2 pod");
		}
	}
	if (test__start_subtest("echo_port_8080")) {
		/* Service echo selects v1 and v2 and the manifests have no routes. */
		if (ASSERT_TRUE(cluster_ip(&lab, "echo", ip, sizeof(ip)), "ClusterIP of echo")) {
			call(&lab, v1, ip, 8080, pod, sizeof(pod));
			ASSERT_TRUE(!strcmp(pod, v1->name) || !strcmp(pod, v2->name),
				    "answer from an echo pod");
		}
	}
	if (test__start_subtest("restart_adopts_without_flush"))
		subtest_restart(&lab, v1, v2, pin_dir);
cleanup:
	free(out);
	lab_agent_uninstall(pin_dir);
	lab_env_fini(&lab);
}

/* Connections from `from` to ip:80, one each; how many the pods of `deploy` answered. */
static int count_answers(struct lab_env *lab, const struct lab_pod_info *from, const char *ip,
			 int conns, const char *deploy, int *errors)
{
	char *out = NULL, *line, *save = NULL, prefix[128];
	int ret, n, hits = 0;

	ret = lab_env_exec(lab, from, &out, "%s client http://%s:80/ --count=%d --new-conn",
			   test_bin("echo"), ip, conns);
	test__printf("from %s: %d\n%s\n", from->name, ret, out ? out : "");
	snprintf(prefix, sizeof(prefix), "pod=%s-", deploy);
	*errors = -1;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, prefix, strlen(prefix)) &&
		    sscanf(strstr(line, " count="), " count=%d", &n) == 1)
			hits += n;
		else if (sscanf(line, "errors=%d", &n) == 1)
			*errors = n;
	}
	free(out);
	return hits;
}

/*
 * deploy/examples/shop.yaml through the agent: the producer route splits
 * reviews 80/20 between reviews-v1 and reviews-v2 for every client; the
 * frontend namespace's consumer route sends its clients to reviews-v2 only.
 */
void test_agent_l4_routes(void)
{
	const struct lab_pod_info *storefront, *web;
	char manifests[PATH_MAX], pin_dir[64], ip[64], *out = NULL;
	struct lab_env lab;
	int v2, errors;

	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return;
	}
	snprintf(manifests, sizeof(manifests), "%s/deploy/examples/shop.yaml", env.src_dir);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/gammad-test-%d", (int)getpid());
	if (lab_env_start(&lab, manifests))
		goto cleanup;
	storefront = lab_env_find(&lab, "shop", "storefront");
	web = lab_env_find(&lab, "frontend", "web");
	if (!ASSERT_OK_PTR(storefront, "storefront pod") || !ASSERT_OK_PTR(web, "web pod"))
		goto cleanup;
	if (!ASSERT_EQ(agent_run_once(&lab, storefront, pin_dir), 0, "gammad run --once"))
		goto cleanup;
	free(out);
	out = NULL;
	lab_run_capture(&out, "%s translate %s | awk '$1 == \"Service\" && "
			"$2 == \"shop/reviews\" && $4 == \"80\" { print $NF; exit }'",
			test_bin("gammad"), lab.out);
	ip[0] = 0;
	if (out)
		sscanf(out, "%63s", ip);
	if (!ASSERT_NEQ(ip[0], 0, "ClusterIP of shop/reviews"))
		goto cleanup;

	if (test__start_subtest("producer_split_80_20")) {
		v2 = count_answers(&lab, storefront, ip, 1000, "reviews-v2", &errors);
		ASSERT_EQ(errors, 0, "every connection answered");
		ASSERT_GE(v2, 150, "reviews-v2 share >= 15%");
		ASSERT_LE(v2, 250, "reviews-v2 share <= 25%");
	}
	if (test__start_subtest("consumer_route_for_its_namespace")) {
		v2 = count_answers(&lab, web, ip, 200, "reviews-v2", &errors);
		ASSERT_EQ(errors, 0, "every connection answered");
		ASSERT_EQ(v2, 200, "all frontend clients to reviews-v2");
	}
cleanup:
	free(out);
	lab_agent_uninstall(pin_dir);
	lab_env_fini(&lab);
}
