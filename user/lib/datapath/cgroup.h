/* SPDX-License-Identifier: Apache-2.0 */
/* Where cgroup v2 lives on this machine. */
#ifndef GAMMAD_CGROUP_H
#define GAMMAD_CGROUP_H

#include <stddef.h>

/*
 * Mount point of the cgroup v2 hierarchy, read from /proc/self/mountinfo:
 * /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
 * Returns 0, -ENOENT when no cgroup2 is mounted, -ENAMETOOLONG when buf is
 * too small, or another negative errno when mountinfo cannot be read.
 */
int cgroup2_mount_path(char *buf, size_t len);

/* Same, from a mountinfo file given by path (for tests). */
int cgroup2_mount_path_from(const char *mountinfo, char *buf, size_t len);

/*
 * 0 when path is a directory of a cgroup v2 mount, -ENOTDIR when it is
 * anything else (a v1 hierarchy, the tmpfs /sys/fs/cgroup of a hybrid host),
 * another negative errno when it cannot be opened.
 */
int cgroup2_dir_check(const char *path);

#endif
