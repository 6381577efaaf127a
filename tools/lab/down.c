// SPDX-License-Identifier: Apache-2.0
/*
 * lab down: remove everything a lab made, from its state and, for what a
 * crash left unrecorded, by name prefix. Idempotent: a second run finds
 * nothing and succeeds.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

/* Only files the lab writes are removed: --state may point anywhere. */
static void remove_state_dir(const char *state_dir, const char *out_dir)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/pods", state_dir);
	rm_rf(path);
	snprintf(path, sizeof(path), "%s/manifests", state_dir);
	if (!out_dir[0] || !strcmp(path, out_dir))
		rm_rf(path);
	snprintf(path, sizeof(path), "%s/lab.state", state_dir);
	unlink(path);
	if (rmdir(state_dir) && errno != ENOENT)
		pr_warn("state dir %s not removed: %s", state_dir, strerror(errno));
}

/* An agent watching --out sees the cluster go away. */
static void remove_outputs(const char *out_dir)
{
	char path[PATH_MAX + 16];

	if (!out_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/cluster.yaml", out_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/routes.yaml", out_dir);
	unlink(path);
}

static int count_prefixed(const char *dir, const char *prefix)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

static int check_clean(const char *state_dir, const char *cgroup_root)
{
	char path[PATH_MAX + 32];
	int left = 0;

	if (count_prefixed(LAB_RUN_NETNS, LAB_NETNS_PREFIX))
		left++, pr_err("network namespaces %s* are left", LAB_NETNS_PREFIX);
	if (count_prefixed("/sys/class/net", LAB_LINK_PREFIX))
		left++, pr_err("links %s* are left", LAB_LINK_PREFIX);
	snprintf(path, sizeof(path), "%s/kubepods", cgroup_root);
	if (path_exists(path))
		left++, pr_err("cgroup %s is left", path);
	snprintf(path, sizeof(path), "%s/kubepods.slice", cgroup_root);
	if (path_exists(path))
		left++, pr_err("cgroup %s is left", path);
	if (path_exists(lab_state_file(state_dir, path, sizeof(path))))
		left++, pr_err("%s is left", path);
	return left ? -EBUSY : 0;
}

int lab_teardown(const char *state_dir)
{
	struct lab_model m = { 0 };
	struct lab_opts defaults = { 0 };
	char default_root[PATH_MAX];
	int ret;

	ret = lab_state_read(&m, state_dir);
	if (ret && ret != -ENOENT)
		pr_warn("state in %s unreadable (%s); cleaning up by name", state_dir, strerror(-ret));
	if (lab_cgroup_root(&defaults, default_root, sizeof(default_root)))
		default_root[0] = 0;
	if (m.cgroup_root[0])
		lab_cgroup_purge(m.cgroup_root,
				 m.cgroup_root_created || !strcmp(m.cgroup_root, default_root));
	if (default_root[0] && strcmp(m.cgroup_root, default_root))
		lab_cgroup_purge(default_root, true);
	lab_netns_purge();
	lab_hosts_purge();
	lab_host_routes_del();
	lab_restore_forwarding(state_dir);
	remove_outputs(m.out_dir);
	remove_state_dir(state_dir, m.out_dir);
	ret = check_clean(state_dir, m.cgroup_root[0] ? m.cgroup_root : default_root);
	lab_model_free(&m);
	return ret;
}

int lab_cmd_down(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ 0 },
	};
	const char *state_dir = lab_default_state_dir();
	int opt, ret, lock_fd;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 's') {
			fprintf(stderr, "usage: lab down [--state DIR]\n");
			return -EINVAL;
		}
		state_dir = optarg;
	}
	ret = lab_lock(&lock_fd);
	if (ret)
		return ret;
	ret = lab_teardown(state_dir);
	lab_unlock(lock_fd);
	return ret;
}
