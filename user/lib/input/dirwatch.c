// SPDX-License-Identifier: Apache-2.0
/* inotify on a directory tree: see dirwatch.h. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/log.h"
#include "dirwatch.h"

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | \
		    IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_DEPTH 16

/* Watch dir and its subdirectories; adding an existing watch is a no-op. */
static int watch_tree(int fd, const char *dir, int depth)
{
	struct dirent *e;
	DIR *d;

	if (inotify_add_watch(fd, dir, WATCH_MASK) < 0)
		return errno == ENOTDIR ? 0 : -errno;
	if (depth >= MAX_DEPTH)
		return 0;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		watch_tree(fd, sub, depth + 1);	/* may vanish meanwhile: fine */
	}
	closedir(d);
	return 0;
}

int dirwatch_open(struct dirwatch *w, const char *root)
{
	int err;

	w->root = strdup(root);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!w->root || w->fd < 0) {
		err = w->root ? -errno : -ENOMEM;
		dirwatch_close(w);
		return err;
	}
	err = watch_tree(w->fd, root, 0);
	if (err) {
		pr_err("watch %s: %s", root, strerror(-err));
		dirwatch_close(w);
	}
	return err;
}

/* Read what is queued; 1 if there was anything. */
static int drain(int fd)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			any = 1;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			return -errno;
		return any;
	}
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	return n < 0 ? -errno : n;
}

int dirwatch_wait(struct dirwatch *w, int timeout_ms)
{
	int n = wait_readable(w->fd, timeout_ms);

	if (n <= 0)
		return n;
	/* Let the burst settle, then report it once. */
	do {
		n = drain(w->fd);
		if (n < 0)
			return n;
		n = wait_readable(w->fd, DIRWATCH_QUIET_MS);
	} while (n > 0);
	if (n < 0)
		return n;
	/* New subdirectories (and a recreated root) need watches of their own. */
	n = watch_tree(w->fd, w->root, 0);
	if (n && n != -ENOENT)
		pr_warn("watch %s: %s", w->root, strerror(-n));
	return 1;
}

void dirwatch_close(struct dirwatch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->root);
	w->fd = -1;
	w->root = NULL;
}
