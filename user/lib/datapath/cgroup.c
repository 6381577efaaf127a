// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include "cgroup.h"

/* mountinfo escapes blanks in paths as octal: "\040" is a space. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = 0;
}

/*
 * A mountinfo line: "36 35 98:0 /root /mnt rw,noatime master:1 - fstype src opts".
 * The optional fields end at " - ", so the type is found after that marker.
 */
static bool line_is_cgroup2(char *line, char **mount_point)
{
	char *sep = strstr(line, " - "), *save = NULL, *tok;
	int field = 0;

	if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
		return false;
	*sep = 0;
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (++field == 5) {
			*mount_point = tok;
			return true;
		}
	}
	return false;
}

int cgroup2_mount_path_from(const char *mountinfo, char *buf, size_t len)
{
	char *line = NULL, *mp;
	size_t cap = 0;
	int ret = -ENOENT;
	FILE *f = fopen(mountinfo, "re");

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (!line_is_cgroup2(line, &mp))
			continue;
		unescape_octal(mp);
		if (strlen(mp) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		strcpy(buf, mp);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

int cgroup2_mount_path(char *buf, size_t len)
{
	return cgroup2_mount_path_from("/proc/self/mountinfo", buf, len);
}

int cgroup2_dir_check(const char *path)
{
	struct statfs st;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &st))
		err = -errno;
	else if (st.f_type != CGROUP2_SUPER_MAGIC)
		err = -ENOTDIR;
	close(fd);
	return err;
}
