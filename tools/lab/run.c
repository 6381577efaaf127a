// SPDX-License-Identifier: Apache-2.0
/* Running helper programs (ip) and waiting for them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

static int wait_child(pid_t pid, const char *what)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	pr_debug("%s: exit status 0x%x", what, status);
	return -ECHILD;
}

/* quiet: the command's stderr goes to /dev/null (used for best-effort cleanup). */
static void child_redirect(bool quiet)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDOUT_FILENO);
	if (quiet)
		dup2(fd, STDERR_FILENO);
}

int run_argv(char *const argv[], bool quiet)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		child_redirect(quiet);
		execvp(argv[0], argv);
		_exit(127);
	}
	return wait_child(pid, argv[0]);
}

/*
 * `ip [-n NETNS] -batch -` fed from a pipe: one process for a whole pod's
 * wiring instead of a dozen. -force goes on after an error so cleanup
 * batches remove what they can; setup batches stop at the first error.
 */
int run_ip_batch(const char *netns, const char *commands, bool quiet)
{
	char *argv[8];
	int pfd[2], argc = 0, ret;
	size_t len = strlen(commands), off = 0;
	pid_t pid;

	argv[argc++] = "ip";
	if (netns) {
		argv[argc++] = "-n";
		argv[argc++] = (char *)netns;
	}
	if (quiet)
		argv[argc++] = "-force";
	argv[argc++] = "-batch";
	argv[argc++] = "-";
	argv[argc] = NULL;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (!pid) {
		dup2(pfd[0], STDIN_FILENO);
		child_redirect(quiet);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[0]);
	/* SIGPIPE if ip dies early would kill the lab; take EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	while (off < len) {
		ssize_t n = write(pfd[1], commands + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	close(pfd[1]);
	ret = wait_child(pid, "ip -batch");
	if (ret && !quiet)
		pr_err("ip%s%s -batch failed on:\n%s", netns ? " -n " : "", netns ? netns : "",
		       commands);
	return ret;
}
