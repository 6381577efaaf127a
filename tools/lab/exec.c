// SPDX-License-Identifier: Apache-2.0
/*
 * lab exec NS/POD [-c CONTAINER] -- CMD...: what kubectl exec does to a
 * process, here: into the container's cgroup (so cgroup BPF sees it as the
 * pod), then `ip netns exec` (the pod's network and its /etc/netns hosts).
 * NS/deploy/NAME picks the first pod of a Deployment, like kubectl.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

static void exec_usage(void)
{
	fprintf(stderr, "usage: lab exec [--state DIR] NS/POD|NS/deploy/NAME [-c CONTAINER] -- CMD [ARGS...]\n");
}

static struct lab_pod *find_target(struct lab_model *m, const char *target)
{
	char ns[256], rest[512];
	const char *slash = strchr(target, '/'), *name;

	if (!slash || (size_t)(slash - target) >= sizeof(ns))
		return NULL;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - target), target);
	snprintf(rest, sizeof(rest), "%s", slash + 1);
	if (!strncmp(rest, "deploy/", 7) || !strncmp(rest, "deployment/", 11)) {
		name = strchr(rest, '/') + 1;
		for (size_t i = 0; i < m->nr_pods; i++)
			if (!strcmp(m->pods[i].namespace, ns) && m->pods[i].owner &&
			    !strcmp(m->pods[i].owner, name))
				return &m->pods[i];
		return NULL;
	}
	return lab_find_pod(m, ns, rest);
}

static struct lab_container *find_container(struct lab_pod *p, const char *name)
{
	if (!name)
		return p->nr_containers ? &p->containers[0] : NULL;
	for (size_t i = 0; i < p->nr_containers; i++)
		if (!strcmp(p->containers[i].name, name))
			return &p->containers[i];
	return NULL;
}

struct exec_args {
	const char *state_dir, *target, *container;
	char **cmd;
	int nr_cmd;
};

static int parse_exec_args(int argc, char **argv, struct exec_args *a)
{
	int i;

	a->state_dir = lab_default_state_dir();
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			a->state_dir = argv[++i];
		else if (!strncmp(argv[i], "--state=", 8))
			a->state_dir = argv[i] + 8;
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			a->container = argv[++i];
		else if (argv[i][0] != '-' && !a->target)
			a->target = argv[i];
		else
			break;
	}
	if (i >= argc || strcmp(argv[i], "--") || i + 1 >= argc || !a->target) {
		exec_usage();
		return -EINVAL;
	}
	a->cmd = argv + i + 1;
	a->nr_cmd = argc - i - 1;
	return 0;
}

int lab_cmd_exec(int argc, char **argv)
{
	struct lab_model m = { 0 };
	struct exec_args a = { 0 };
	struct lab_container *c;
	struct lab_pod *p;
	char **ip_argv;
	int ret;

	ret = parse_exec_args(argc, argv, &a);
	if (ret)
		return ret;
	ret = lab_state_read(&m, a.state_dir);
	if (ret) {
		pr_err("no lab is up (state %s: %s)", a.state_dir, strerror(-ret));
		return ret;
	}
	p = find_target(&m, a.target);
	c = p ? find_container(p, a.container) : NULL;
	if (!p || !c) {
		pr_err("%s%s%s: no such %s in the lab", a.target, a.container ? " -c " : "",
		       a.container ? a.container : "", p ? "container" : "pod");
		lab_model_free(&m);
		return -ENOENT;
	}
	ret = lab_cgroup_enter(c->cgroup, getpid());
	if (ret) {
		pr_err("cannot join cgroup %s: %s", c->cgroup, strerror(-ret));
		lab_model_free(&m);
		return ret;
	}
	ip_argv = calloc(a.nr_cmd + 5, sizeof(*ip_argv));
	if (!ip_argv)
		return -ENOMEM;
	ip_argv[0] = "ip";
	ip_argv[1] = "netns";
	ip_argv[2] = "exec";
	ip_argv[3] = p->netns;
	memcpy(ip_argv + 4, a.cmd, a.nr_cmd * sizeof(*ip_argv));
	execvp("ip", ip_argv);
	ret = -errno;
	pr_err("cannot run ip netns exec: %s", strerror(errno));
	free(ip_argv);
	lab_model_free(&m);
	return ret;
}
