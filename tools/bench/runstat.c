// SPDX-License-Identifier: Apache-2.0
/*
 * bench runstat [--until NAME=TEXT]... [--timeout-ms MS] -- CMD [ARGS...]:
 * run CMD, then print its wall time, peak RSS and CPU time from wait4()'s
 * rusage; exits with CMD's status.
 *
 * With --until (a long-running CMD such as `gammad run`): CMD's output is
 * read line by line (and passed on to stderr); the first line containing
 * TEXT gives NAME_ms, the time from exec to that line. Once every TEXT was
 * seen, CMD gets SIGTERM; after --timeout-ms (default 60000) too, and the
 * status is 1 when a TEXT is missing.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define UNTIL_MAX 8

struct until {
	const char *name, *text;
	double ms;		/* < 0: not seen yet */
};

/* Lines of fd until every u[] was seen, the timeout, or EOF; true when all were seen. */
static bool watch_lines(int fd, struct until *u, int n, double t0, double timeout_ms)
{
	char buf[65536];
	size_t len = 0;
	int seen = 0;

	while (seen < n) {
		double left = timeout_ms - (bench_now() - t0) * 1e3;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
			return false;
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return false;
		len += (size_t)r;
		for (;;) {
			char *nl = memchr(buf, '\n', len);
			size_t line;

			if (!nl && len < sizeof(buf) - 1)
				break;
			line = nl ? (size_t)(nl - buf) + 1 : len;
			buf[line - 1] = '\0';
			fprintf(stderr, "%s\n", buf);
			for (int i = 0; i < n; i++)
				if (u[i].ms < 0 && strstr(buf, u[i].text)) {
					u[i].ms = (bench_now() - t0) * 1e3;
					seen++;
				}
			memmove(buf, buf + line, len - line);
			len -= line;
		}
	}
	return true;
}

int cmd_runstat(int argc, char **argv)
{
	struct until u[UNTIL_MAX];
	double timeout_ms = 60000;
	int status, i = 1, nu = 0, pfd[2] = { -1, -1 };
	bool all = true;
	struct rusage ru;
	ssize_t r;
	double t0;
	pid_t pid;

	while (i + 1 < argc && (!strcmp(argv[i], "--until") || !strcmp(argv[i], "--timeout-ms"))) {
		if (!strcmp(argv[i], "--timeout-ms")) {
			timeout_ms = atof(argv[i + 1]);
		} else {
			char *eq = strchr(argv[i + 1], '=');

			if (!eq || nu == UNTIL_MAX) {
				fprintf(stderr, "bench runstat: --until NAME=TEXT (at most %d)\n",
					UNTIL_MAX);
				return 2;
			}
			*eq = '\0';
			u[nu++] = (struct until){ argv[i + 1], eq + 1, -1 };
		}
		i += 2;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: bench runstat [--until NAME=TEXT]... [--timeout-ms MS] "
			"-- CMD [ARGS...]\n");
		return 2;
	}
	if (nu && pipe2(pfd, O_CLOEXEC))
		return 1;
	t0 = bench_now();
	pid = fork();
	if (pid < 0)
		return 1;
	if (!pid) {
		if (nu) {
			dup2(pfd[1], 1);
			dup2(pfd[1], 2);
		}
		execvp(argv[i], argv + i);
		perror(argv[i]);
		_exit(127);
	}
	if (nu) {
		close(pfd[1]);
		all = watch_lines(pfd[0], u, nu, t0, timeout_ms);
		kill(pid, SIGTERM);
		/* Its last lines (what it does on SIGTERM), until it closes the pipe. */
		for (char b[4096]; (r = read(pfd[0], b, sizeof(b))) > 0;)
			fwrite(b, 1, (size_t)r, stderr);
		close(pfd[0]);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return 1;
	fprintf(stderr, "wall_ms=%.1f maxrss_kb=%ld user_ms=%.1f sys_ms=%.1f status=%d",
		(bench_now() - t0) * 1e3, ru.ru_maxrss,
		ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
		ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	for (int k = 0; k < nu; k++)
		if (u[k].ms >= 0)
			fprintf(stderr, " %s_ms=%.1f", u[k].name, u[k].ms);
	fprintf(stderr, "\n");
	if (nu)
		return all ? 0 : 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
