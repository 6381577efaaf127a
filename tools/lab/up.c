// SPDX-License-Identifier: Apache-2.0
/*
 * lab up: read and plan everything first - a bad manifest must change
 * nothing on the machine - then build, and undo it all if any step fails.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "lab.h"

static void up_usage(void)
{
	fprintf(stderr,
		"usage: lab up [--state DIR] [--out DIR] [--cgroup-parent PATH] [--systemd-cgroups]\n"
		"              [--node-name NAME] [--server PATH] FILE|DIR...\n");
}

static int parse_up_opts(int argc, char **argv, struct lab_opts *o)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "cgroup-parent", required_argument, NULL, 'c' },
		{ "systemd-cgroups", no_argument, NULL, 'S' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "server", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	memset(o, 0, sizeof(*o));
	o->state_dir = lab_default_state_dir();
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o->state_dir = optarg; break;
		case 'o': o->out_dir = optarg; break;
		case 'c': o->cgroup_parent = optarg; break;
		case 'S': o->systemd_cgroups = true; break;
		case 'n': o->node_name = optarg; break;
		case 'e': o->server = optarg; break;
		default: up_usage(); return -EINVAL;
		}
	}
	if (optind >= argc) {
		pr_err("lab up: no manifest files or directories given");
		up_usage();
		return -EINVAL;
	}
	return 0;
}

/* A lab is up if its state says so, or if lab netns exist (another state dir, a crash). */
static int refuse_if_up(const char *state_dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (path_exists(lab_state_file(state_dir, path, sizeof(path)))) {
		pr_err("a lab is already up (state %s); run 'lab down' first", path);
		return -EEXIST;
	}
	d = opendir(LAB_RUN_NETNS);
	while (d && (e = readdir(d))) {
		if (!strncmp(e->d_name, LAB_NETNS_PREFIX, strlen(LAB_NETNS_PREFIX))) {
			pr_err("network namespace %s exists: another lab is up (or a crashed one left it); run 'lab down' first",
			       e->d_name);
			closedir(d);
			return -EEXIST;
		}
	}
	if (d)
		closedir(d);
	return 0;
}

static int write_outputs(const struct lab_model *m)
{
	char path[PATH_MAX + 16];
	int ret = mkdir_p(m->out_dir, 0755);

	if (!ret) {
		snprintf(path, sizeof(path), "%s/routes.yaml", m->out_dir);
		ret = lab_write_routes_yaml(m, path);
	}
	/* cluster.yaml last: an agent that sees it sees the routes already. */
	if (!ret) {
		snprintf(path, sizeof(path), "%s/cluster.yaml", m->out_dir);
		ret = lab_write_cluster_yaml(m, path);
	}
	if (ret)
		pr_err("cannot write %s: %s", m->out_dir, strerror(-ret));
	return ret;
}

static int build(struct lab_model *m, const char *state_dir)
{
	int ret = mkdir_p(state_dir, 0755);

	if (ret) {
		pr_err("cannot create state dir %s: %s", state_dir, strerror(-ret));
		return ret;
	}
	/* Recorded before anything exists, so `lab down` can undo a partial up. */
	ret = lab_state_write(m, state_dir);
	if (!ret)
		ret = lab_enable_forwarding(state_dir);
	if (!ret)
		ret = lab_host_routes_add();
	if (!ret)
		ret = lab_cgroup_create(m);
	if (!ret)
		ret = lab_state_write(m, state_dir);	/* now knows whether the root was ours */
	for (size_t i = 0; !ret && i < m->nr_pods; i++)
		ret = lab_pod_net_up(&m->pods[i]);
	if (!ret)
		ret = lab_write_hosts(m);
	if (!ret)
		ret = lab_start_pods(m, state_dir);
	if (!ret)
		ret = lab_state_write(m, state_dir);
	if (!ret)
		ret = write_outputs(m);
	return ret;
}


int lab_cmd_up(int argc, char **argv)
{
	struct lab_model m = { .diag.print = true };
	struct lab_opts o;
	int ret, lock_fd = -1;

	ret = parse_up_opts(argc, argv, &o);
	if (ret)
		return ret;
	ret = lab_load_manifests(&m, argv + optind, argc - optind);
	if (!ret)
		ret = lab_plan(&m, &o);
	if (!ret && m.diag.nr_errors)
		ret = -EINVAL;
	if (!ret)
		ret = lab_lock(&lock_fd);
	if (!ret)
		ret = refuse_if_up(o.state_dir);
	if (ret)
		goto out;
	ret = build(&m, o.state_dir);
	if (ret) {
		pr_err("lab up failed; removing what was built");
		lab_teardown(o.state_dir);
		goto out;
	}
	pr_info("lab up: %zu pods, %zu services, %zu endpoint slices; manifests in %s",
		m.nr_pods, m.nr_services, m.nr_slices, m.out_dir);
out:
	lab_unlock(lock_fd);
	lab_model_free(&m);
	return ret;
}
