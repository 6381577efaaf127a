// SPDX-License-Identifier: Apache-2.0
/*
 * Replays every fuzz target's corpus (its own seeds and the shared Gateway
 * API manifests) once under ASan/UBSan: an input that once crashed the
 * loader or translator stays a regression test.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_progs.h"

/* Run bin with args, stderr+stdout into log; returns the exit status or -1. */
static int run_logged(const char *bin, char *const argv[], const char *log)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_log(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		test__printf("%s", line);
	fclose(f);
}

static void replay_target(const char *name)
{
	char bin[PATH_MAX], seeds[PATH_MAX], log[] = "/tmp/gammad-fuzz-replay.XXXXXX";
	const char *shared = test_shared_path("gateway-api/conformance");
	char *argv[8];
	int argc = 0, fd, rc;
	struct stat st;

	snprintf(bin, sizeof(bin), "%s/fuzz/%s", env.build_dir, name);
	snprintf(seeds, sizeof(seeds), "%s/tests/fuzz/corpus/%s", env.src_dir, name);
	if (!ASSERT_OK(stat(bin, &st), "fuzz binary built"))
		return;
	if (!ASSERT_OK(stat(seeds, &st), "seed corpus present"))
		return;
	fd = mkstemp(log);
	if (!ASSERT_GE(fd, 0, "mkstemp"))
		return;
	close(fd);

	argv[argc++] = bin;
	argv[argc++] = "-runs=0";
	argv[argc++] = seeds;
	if (shared)
		argv[argc++] = (char *)shared;
	argv[argc] = NULL;
	rc = run_logged(bin, argv, log);
	if (!ASSERT_EQ(rc, 0, "replay exit status"))
		print_log(log);
	unlink(log);
}

void test_fuzz_replay(void)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int targets = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz", env.src_dir);
	d = opendir(dir);
	if (!ASSERT_OK_PTR(d, "open tests/fuzz"))
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char name[256];

		if (n < 3 || strcmp(de->d_name + n - 2, ".c"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 2), de->d_name);
		targets++;
		if (test__start_subtest(name))
			replay_target(name);
	}
	closedir(d);
	ASSERT_GT(targets, 0, "fuzz targets found");
}
