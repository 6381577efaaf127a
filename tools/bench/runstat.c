// SPDX-License-Identifier: Apache-2.0
/*
 * bench runstat -- CMD [ARGS...]: run CMD, then print its wall time, peak RSS
 * and CPU time from wait4()'s rusage; exits with CMD's status.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

int cmd_runstat(int argc, char **argv)
{
	struct rusage ru;
	int status, i = 1;
	double t0;
	pid_t pid;

	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: bench runstat -- CMD [ARGS...]\n");
		return 2;
	}
	t0 = bench_now();
	pid = fork();
	if (pid < 0)
		return 1;
	if (!pid) {
		execvp(argv[i], argv + i);
		perror(argv[i]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return 1;
	fprintf(stderr, "wall_ms=%.1f maxrss_kb=%ld user_ms=%.1f sys_ms=%.1f status=%d\n",
		(bench_now() - t0) * 1e3, ru.ru_maxrss,
		ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
		ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
