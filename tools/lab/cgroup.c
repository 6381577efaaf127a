// SPDX-License-Identifier: Apache-2.0
/*
 * The lab's cgroup tree, laid out as kubelet does it, so the agent finds pods
 * the way it will on a real node:
 *   cgroupfs: <root>/kubepods/besteffort/pod<UID>/<container>
 *   systemd:  <root>/kubepods.slice/kubepods-besteffort.slice/
 *             kubepods-besteffort-pod<UID_with_underscores>.slice/cri-containerd-<id>.scope
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "datapath/cgroup.h"
#include "lab.h"

int lab_cgroup_root(const struct lab_opts *opts, char *out, size_t len)
{
	char mnt[PATH_MAX];
	const char *parent = opts->cgroup_parent;
	size_t mlen;
	int ret = cgroup2_mount_path(mnt, sizeof(mnt));

	if (ret) {
		pr_err("no cgroup v2 hierarchy is mounted (looked for fstype cgroup2 in /proc/self/mountinfo): %s",
		       strerror(-ret));
		return ret;
	}
	mlen = strlen(mnt);
	if (!parent)
		ret = snprintf(out, len, "%s/%s", mnt, LAB_CGROUP_DEFAULT);
	else if (!strncmp(parent, mnt, mlen) && (parent[mlen] == '/' || !parent[mlen]))
		ret = snprintf(out, len, "%s", parent);
	else	/* relative to the cgroup2 mount, with or without a leading '/' */
		ret = snprintf(out, len, "%s/%s", mnt, parent + (parent[0] == '/'));
	if (ret < 0 || (size_t)ret >= len)
		return -ENAMETOOLONG;
	/* The root of the hierarchy would make `lab down` kill the whole machine. */
	if (!strcmp(out, mnt) || strstr(out, "/..")) {
		pr_err("--cgroup-parent %s: must name a cgroup below %s", parent, mnt);
		return -EINVAL;
	}
	return 0;
}

static int pod_cgroup_path(const struct lab_model *m, struct lab_pod *p)
{
	char uid[64];
	int n;

	if (!m->systemd_cgroups)
		n = snprintf(p->cgroup, sizeof(p->cgroup), "%s/kubepods/besteffort/pod%s",
			     m->cgroup_root, p->uid);
	else {
		snprintf(uid, sizeof(uid), "%s", p->uid);
		for (char *c = uid; *c; c++)
			if (*c == '-')
				*c = '_';
		n = snprintf(p->cgroup, sizeof(p->cgroup),
			     "%s/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice",
			     m->cgroup_root, uid);
	}
	return n < 0 || (size_t)n >= sizeof(p->cgroup) ? -ENAMETOOLONG : 0;
}

static int container_cgroup_path(const struct lab_model *m, const struct lab_pod *p,
				 struct lab_container *c)
{
	char id[65];
	int n;

	if (!m->systemd_cgroups) {
		n = snprintf(c->cgroup, sizeof(c->cgroup), "%s/%s", p->cgroup, c->name);
	} else {
		lab_container_id(p->uid, c->name, id);
		n = snprintf(c->cgroup, sizeof(c->cgroup), "%s/cri-containerd-%s.scope",
			     p->cgroup, id);
	}
	return n < 0 || (size_t)n >= sizeof(c->cgroup) ? -ENAMETOOLONG : 0;
}

int lab_cgroup_plan(struct lab_model *m)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < m->nr_pods; i++) {
		struct lab_pod *p = &m->pods[i];

		ret = pod_cgroup_path(m, p);
		for (size_t j = 0; !ret && j < p->nr_containers; j++)
			ret = container_cgroup_path(m, p, &p->containers[j]);
	}
	return ret;
}

int lab_cgroup_create(struct lab_model *m)
{
	int ret;

	m->cgroup_root_created = !path_exists(m->cgroup_root);
	for (size_t i = 0; i < m->nr_pods; i++) {
		for (size_t j = 0; j < m->pods[i].nr_containers; j++) {
			ret = mkdir_p(m->pods[i].containers[j].cgroup, 0755);
			if (ret) {
				pr_err("pod %s/%s: cannot create cgroup %s: %s", m->pods[i].namespace,
				       m->pods[i].name, m->pods[i].containers[j].cgroup, strerror(-ret));
				return ret;
			}
		}
	}
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int lab_cgroup_enter(const char *cgroup, pid_t pid)
{
	char path[PATH_MAX + 16], buf[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	return write_str(path, buf);
}

/* Without cgroup.kill (before 5.14): SIGKILL every pid listed below dir. */
static int kill_procs(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char procs[PATH_MAX + 16], *buf, *line, *save = NULL;

	(void)st;
	(void)ftw;
	if (type != FTW_D)
		return 0;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	if (read_file(procs, &buf, NULL))
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		kill((pid_t)atoi(line), SIGKILL);
	free(buf);
	return 0;
}

static bool cgroup_populated(const char *dir)
{
	char path[PATH_MAX + 16], *buf;
	bool populated;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	if (read_file(path, &buf, NULL))
		return false;
	populated = strstr(buf, "populated 1") != NULL;
	free(buf);
	return populated;
}

static int rmdir_dirs(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP && rmdir(path) && errno != ENOENT)
		pr_warn("cannot remove cgroup %s: %s", path, strerror(errno));
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Kill everything in one subtree, wait until it is empty, remove it deepest first. */
static void purge_subtree(const char *top)
{
	char kill_file[PATH_MAX + 16];

	if (!path_exists(top))
		return;
	snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", top);
	if (write_str(kill_file, "1"))
		nftw(top, kill_procs, 16, FTW_PHYS | FTW_MOUNT);
	for (int i = 0; i < 200 && cgroup_populated(top); i++) {
		if (i % 20 == 19)
			nftw(top, kill_procs, 16, FTW_PHYS | FTW_MOUNT);
		sleep_ms(10);
	}
	nftw(top, rmdir_dirs, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/*
 * Only the kubepods trees the lab made are killed, never the parent: with
 * --cgroup-parent it may hold other processes.
 */
void lab_cgroup_purge(const char *root, bool remove_root)
{
	char top[PATH_MAX + 32];

	snprintf(top, sizeof(top), "%s/kubepods", root);
	purge_subtree(top);
	snprintf(top, sizeof(top), "%s/kubepods.slice", root);
	purge_subtree(top);
	if (remove_root && rmdir(root) && errno != ENOENT && errno != ENOTEMPTY)
		pr_warn("cannot remove cgroup %s: %s", root, strerror(errno));
}
