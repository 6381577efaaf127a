// SPDX-License-Identifier: Apache-2.0
/*
 * test_progs: runs every test_<name>() found in tests/prog_tests/.
 *
 *	test_progs [-v] [-l] [-t name[/subtest]]...
 *
 * Prints "#N name:OK|FAIL|SKIP (reason)" per test and subtest and ends with
 * "N passed, M failed[, K skipped]". Output of a test is buffered and shown
 * only on failure (or always with -v). Before the last line, every failed
 * test or subtest is named again with its first FAIL lines: a CI log is
 * often read from its tail only.
 */
#include <errno.h>
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "test_progs.h"

#define DEFINE_TEST(name) void name(void);
#include "tests/prog_tests.h"
#undef DEFINE_TEST

struct test_def {
	const char *name;
	void (*fn)(void);
};

#define DEFINE_TEST(name) { #name + 5, name },
static const struct test_def tests[] = {
#include "tests/prog_tests.h"
};
#undef DEFINE_TEST

struct test_env env;

#define MAX_FILTERS 32
static const char *filters[MAX_FILTERS];
static int nr_filters;

/* State of the test (and subtest) being run. */
static struct {
	const struct test_def *test;
	int num;
	char *log;
	size_t log_len;
	FILE *log_stream;
	bool failed, skipped;
	bool own_failed;	/* failed outside any subtest */
	char skip_reason[256];
	/* subtest */
	char *sub_name;
	int sub_num;
	bool sub_failed, sub_skipped;
	char sub_skip_reason[256];
	bool any_sub_ok;
} cur;

static int passed, failed, skipped;

/* The recap printed before the last line: "name: first FAIL lines". */
static char *recap;
static size_t recap_len;
static FILE *recap_stream;

#define RECAP_LINES_PER_TEST 3
#define RECAP_LINE_MAX 300

static void recap_add(const char *name, const char *log, size_t len)
{
	const char *p = log, *end = log + len;
	int shown = 0;

	if (!recap_stream)
		recap_stream = open_memstream(&recap, &recap_len);
	if (!recap_stream)
		return;
	fprintf(recap_stream, "FAILED %s\n", name);
	while (p < end && shown < RECAP_LINES_PER_TEST) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (memmem(p, n, ": FAIL ", 7)) {
			fprintf(recap_stream, "  %.*s%s\n",
				(int)(n > RECAP_LINE_MAX ? RECAP_LINE_MAX : n), p,
				n > RECAP_LINE_MAX ? " ..." : "");
			shown++;
		}
		p += n + 1;
	}
}

/* Filters are "test" or "test/subtest", with shell wildcards. */
static bool filter_match(const char *test, const char *sub)
{
	if (!nr_filters)
		return true;
	for (int i = 0; i < nr_filters; i++) {
		char buf[256];
		const char *slash = strchr(filters[i], '/');

		if (!slash) {
			if (!fnmatch(filters[i], test, 0))
				return true;
			continue;
		}
		snprintf(buf, sizeof(buf), "%.*s", (int)(slash - filters[i]), filters[i]);
		if (fnmatch(buf, test, 0))
			continue;
		if (!sub || !fnmatch(slash + 1, sub, 0))
			return true;
	}
	return false;
}

void test__printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(cur.log_stream ? cur.log_stream : stderr, fmt, ap);
	va_end(ap);
}

void test__fail(void)
{
	if (cur.sub_name)
		cur.sub_failed = true;
	else
		cur.failed = cur.own_failed = true;
}

void test__skip(const char *fmt, ...)
{
	va_list ap;
	char *reason = cur.sub_name ? cur.sub_skip_reason : cur.skip_reason;

	va_start(ap, fmt);
	vsnprintf(reason, 256, fmt, ap);
	va_end(ap);
	if (cur.sub_name)
		cur.sub_skipped = true;
	else
		cur.skipped = true;
}

static void flush_log(bool show, const char *failed_name)
{
	fflush(cur.log_stream);
	if (failed_name)
		recap_add(failed_name, cur.log, cur.log_len);
	if (show && cur.log_len)
		fprintf(stdout, "%.*s", (int)cur.log_len, cur.log);
	fclose(cur.log_stream);
	free(cur.log);
	cur.log = NULL;
	cur.log_len = 0;
	cur.log_stream = open_memstream(&cur.log, &cur.log_len);
}

static void end_subtest(void)
{
	const char *verdict;

	if (!cur.sub_name)
		return;
	if (cur.sub_failed) {
		verdict = "FAIL";
		cur.failed = true;
	} else if (cur.sub_skipped) {
		verdict = "SKIP";
	} else {
		verdict = "OK";
		cur.any_sub_ok = true;
	}
	if (cur.sub_failed) {
		char name[512];

		snprintf(name, sizeof(name), "%s/%s", cur.test->name, cur.sub_name);
		flush_log(true, name);
	} else {
		flush_log(env.verbose, NULL);
	}
	if (cur.sub_skipped && !cur.sub_failed)
		printf("#%d/%d %s/%s:%s (%s)\n", cur.num, cur.sub_num,
		       cur.test->name, cur.sub_name, verdict, cur.sub_skip_reason);
	else
		printf("#%d/%d %s/%s:%s\n", cur.num, cur.sub_num,
		       cur.test->name, cur.sub_name, verdict);
	fflush(stdout);
	free(cur.sub_name);
	cur.sub_name = NULL;
}

bool test__start_subtest(const char *name)
{
	end_subtest();
	cur.sub_num++;
	if (!filter_match(cur.test->name, name))
		return false;
	cur.sub_name = strdup(name);
	cur.sub_failed = cur.sub_skipped = false;
	cur.sub_skip_reason[0] = 0;
	return true;
}

static void run_test(const struct test_def *t, int num)
{
	struct timespec a, b;

	memset(&cur, 0, sizeof(cur));
	cur.test = t;
	cur.num = num;
	cur.log_stream = open_memstream(&cur.log, &cur.log_len);
	clock_gettime(CLOCK_MONOTONIC, &a);
	t->fn();
	end_subtest();
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* A failed subtest was recapped already; this is the test's own. */
	flush_log(cur.failed || env.verbose, cur.own_failed ? t->name : NULL);
	fclose(cur.log_stream);
	free(cur.log);

	/* A test whose subtests were all skipped is skipped, not passed. */
	if (!cur.failed && !cur.skipped && cur.sub_num && !cur.any_sub_ok) {
		cur.skipped = true;
		snprintf(cur.skip_reason, sizeof(cur.skip_reason), "all subtests skipped");
	}
	if (cur.failed) {
		failed++;
		printf("#%d %s:FAIL\n", num, t->name);
	} else if (cur.skipped) {
		skipped++;
		printf("#%d %s:SKIP (%s)\n", num, t->name, cur.skip_reason);
	} else {
		passed++;
		if (env.verbose)
			printf("#%d %s:OK (%.1fs)\n", num, t->name,
			       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
		else
			printf("#%d %s:OK\n", num, t->name);
	}
	fflush(stdout);
}

const char *test_bin(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", env.build_dir, name);
	return path;
}

char *test_read_file(const char *path)
{
	FILE *f = fopen(path, "re"), *m;
	char *buf = NULL, tmp[4096];
	size_t len = 0, n;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	while (m && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		fwrite(tmp, 1, n, m);
	if (m)
		fclose(m);
	fclose(f);
	return buf;
}

int test_file_count(const char *path, const char *s)
{
	char *text = test_read_file(path), *p;
	int n = 0;

	for (p = text; p && (p = strstr(p, s)); p += strlen(s))
		n++;
	free(text);
	return n;
}

const char *test_shared_path(const char *rel)
{
	static char path[PATH_MAX];
	struct stat st;

	if (!env.shared_dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", env.shared_dir, rel);
	return stat(path, &st) ? NULL : path;
}

static void find_dirs(void)
{
	static char build[PATH_MAX], src[PATH_MAX], shared[PATH_MAX];
	char up[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", build, sizeof(build) - 1);
	const char *s;
	struct stat st;

	if (n < 0)
		n = 0;
	build[n] = 0;
	env.build_dir = dirname(build);
	snprintf(up, sizeof(up), "%s/..", env.build_dir);
	env.src_dir = realpath(up, src) ? src : ".";
	s = getenv("GAMMAD_SHARED");
	if (s)
		snprintf(shared, sizeof(shared), "%s", s);
	else
		snprintf(shared, sizeof(shared), "%s/../shared", env.src_dir);
	if (!stat(shared, &st) && S_ISDIR(st.st_mode))
		env.shared_dir = realpath(shared, NULL);
}

static void usage(void)
{
	fprintf(stderr, "usage: test_progs [-v] [-l] [-t test[/subtest]]...\n");
	exit(2);
}

/*
 * `flock /tmp/gammad-lab.lock make test` hands the lock's fd to everything
 * below it. A server a killed test left behind (echo serve, an agent) would
 * then hold the lab lock for every later run on this machine: nothing the
 * tests start may inherit it, so the runner drops every fd past stdio first.
 */
static void close_inherited_fds(void)
{
	if (close_range(3, ~0U, 0))
		fprintf(stderr, "close_range: %s (fds inherited by test_progs stay open)\n",
			strerror(errno));
}

int main(int argc, char **argv)
{
	bool list = false;
	int opt, num = 0;

	while ((opt = getopt(argc, argv, "vlt:")) != -1) {
		switch (opt) {
		case 'v':
			env.verbose = 1;
			break;
		case 'l':
			list = true;
			break;
		case 't':
			if (nr_filters == MAX_FILTERS)
				usage();
			filters[nr_filters++] = optarg;
			break;
		default:
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	close_inherited_fds();
	find_dirs();

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		num++;
		if (!filter_match(tests[i].name, NULL))
			continue;
		if (list) {
			printf("%s\n", tests[i].name);
			continue;
		}
		run_test(&tests[i], num);
	}
	if (list)
		return 0;
	if (recap_stream) {
		fclose(recap_stream);
		fputs(recap, stdout);
		free(recap);
	}
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
