/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wait for changes below a directory with inotify: every subdirectory is
 * watched (new ones as they appear), and a burst of events (an editor's
 * write + rename, `kubectl`-style tools writing many files) is reported
 * once, after DIRWATCH_QUIET_MS without further events.
 */
#ifndef GAMMAD_DIRWATCH_H
#define GAMMAD_DIRWATCH_H

#define DIRWATCH_QUIET_MS 10

struct dirwatch {
	int fd;
	char *root;
};

int dirwatch_open(struct dirwatch *w, const char *root);
/*
 * 1 when something below root changed, 0 after timeout_ms without change
 * (-1: no timeout), -EINTR on a signal, another negative errno on error.
 */
int dirwatch_wait(struct dirwatch *w, int timeout_ms);
void dirwatch_close(struct dirwatch *w);
/* The inotify fd, for callers that poll several sources. */
static inline int dirwatch_fd(const struct dirwatch *w)
{
	return w->fd;
}

#endif
