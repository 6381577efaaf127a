// SPDX-License-Identifier: Apache-2.0
/*
 * Sysctls by /proc/sys path ("net/ipv4/ip_forward"). Net entries belong to
 * the network namespace of the process that opens them, which is how pod
 * sysctls are set: setns() first, then write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

static const char *const forwarding_keys[] = {
	"net/ipv4/ip_forward",
	"net/ipv6/conf/all/forwarding",
};

int sysctl_write(const char *key, const char *value)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int sysctl_read(const char *key, char *buf, size_t len)
{
	char path[PATH_MAX], *data;
	int ret;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	ret = read_file(path, &data, NULL);
	if (ret)
		return ret;
	data[strcspn(data, "\n")] = 0;
	snprintf(buf, len, "%s", data);
	free(data);
	return 0;
}

static void saved_path(const char *state_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/sysctl.saved", state_dir);
}

/* Save the old values once (a re-run must not save our own 1s), then enable. */
int lab_enable_forwarding(const char *state_dir)
{
	char path[PATH_MAX], text[256] = "", val[32];
	size_t n = 0;
	int ret;

	saved_path(state_dir, path, sizeof(path));
	if (!path_exists(path)) {
		for (size_t i = 0; i < sizeof(forwarding_keys) / sizeof(forwarding_keys[0]); i++) {
			ret = sysctl_read(forwarding_keys[i], val, sizeof(val));
			if (ret)
				return ret;
			n += snprintf(text + n, sizeof(text) - n, "%s %s\n", forwarding_keys[i], val);
		}
		ret = write_file_atomic(path, text, n);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < sizeof(forwarding_keys) / sizeof(forwarding_keys[0]); i++) {
		ret = sysctl_write(forwarding_keys[i], "1");
		if (ret) {
			pr_err("cannot enable %s: %s", forwarding_keys[i], strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void lab_restore_forwarding(const char *state_dir)
{
	char path[PATH_MAX], *text, *line, *save = NULL, *val;

	saved_path(state_dir, path, sizeof(path));
	if (read_file(path, &text, NULL))
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		val = strchr(line, ' ');
		if (!val)
			continue;
		*val++ = 0;
		if (sysctl_write(line, val))
			pr_warn("cannot restore %s to %s", line, val);
	}
	free(text);
	unlink(path);
}
