// SPDX-License-Identifier: Apache-2.0
/*
 * Hostile input (issue 17): every class of crafted manifest, status file and
 * flag the loader, translator and gammactl were once swamped or fooled by.
 * Each case runs the real binary in a child with an address-space limit and
 * a 10 s kill, and must finish in under 5 s with under 256 MiB peak RSS,
 * print the clear diagnostic of its class, and still translate the
 * well-behaved tests/hostile/base.yaml loaded beside it.
 *
 * Fixed inputs live in tests/hostile/ (and are fuzz seeds too); large or
 * special ones (100k labels, 100k brackets, symlink loops, FIFOs, pipes,
 * devices) are made here in a temporary directory.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "base/regex.h"
#include "gammad/maps.h"
#include "image/image.h"
#include "input/manifest.h"
#include "translate/translate.h"

#define LIMIT_SECONDS 5
#define LIMIT_RSS_KIB (256 * 1024)
#define KILL_SECONDS 10
#define OUT_MAX (4u << 20)	/* bytes of output kept; more is a failure too */

/* What the good half of every load must still show. */
#define GOOD_ROUTE "HTTPRoute good/good-route (generation 0)\n  parent Service good/web port 80\n    Accepted=True"

static char tmpdir[256];

struct run {
	int status;		/* exit code, or 128 + signal */
	double seconds;
	long rss_kib;
	char *out;		/* stdout + stderr, NUL-terminated, cut at OUT_MAX */
	size_t out_len;
	bool out_cut;
};

static int argc_last(char *const argv[])
{
	int n = 0;

	while (argv[n + 1])
		n++;
	return n;
}

/*
 * Run argv with stdout+stderr captured, stdin from in_fd (or /dev/null), an
 * address-space limit and a kill after KILL_SECONDS; the child's own peak RSS
 * comes from wait4().
 */
static int run_bounded(char *const argv[], int in_fd, struct run *r)
{
	char log[] = "/tmp/gammad-hostile-out.XXXXXX";
	struct timespec t0, t1;
	struct rusage ru;
	int fd, status;
	pid_t pid;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	fd = mkstemp(log);
	if (fd < 0)
		return -errno;
	unlink(log);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		close(fd);
		return -errno;
	}
	if (pid == 0) {
		struct rlimit as = { 1ul << 30, 1ul << 30 };
		int null = open("/dev/null", O_RDONLY);

		setrlimit(RLIMIT_AS, &as);
		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		alarm(KILL_SECONDS);	/* SIGALRM survives exec: ends a hang */
		execv(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		close(fd);
		return -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	r->rss_kib = ru.ru_maxrss;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = malloc(OUT_MAX + 1);
	if (!r->out) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, r->out, OUT_MAX + 1, 0);
	close(fd);
	if (n < 0)
		n = 0;
	r->out_cut = (size_t)n > OUT_MAX;
	r->out_len = r->out_cut ? OUT_MAX : (size_t)n;
	r->out[r->out_len] = 0;
	test__printf("  %s: exit %d in %.2f s, peak RSS %ld KiB, %zu bytes of output\n",
		     argv[argc_last(argv)], r->status, r->seconds, r->rss_kib, r->out_len);
	return 0;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void print_head(const struct run *r)
{
	test__printf("exit %d in %.2f s, peak RSS %ld KiB, %zu bytes of output:\n%.3000s\n",
		     r->status, r->seconds, r->rss_kib, r->out_len, r->out ? r->out : "");
}

/* The bounds every case shares; false (and printed) when one is broken. */
static bool check_bounds(const struct run *r, int want_status)
{
	bool ok = true;

	ok &= ASSERT_EQ(r->status, want_status, "exit status");
	ok &= ASSERT_LT(r->seconds, LIMIT_SECONDS, "seconds");
	ok &= ASSERT_LT(r->rss_kib, LIMIT_RSS_KIB, "peak RSS KiB");
	ok &= ASSERT_FALSE(r->out_cut, "output bounded");
	if (!ok)
		print_head(r);
	return ok;
}

static const char *src_path(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/tests/hostile/%s", env.src_dir, rel);
	return buf[i];
}

static const char *tmp_path(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, rel);
	return buf[i];
}

/*
 * gammad translate base.yaml PATH: exit 1 (input errors), every want string
 * in the output, none of the unwanted ones, and the good route translated.
 */
static bool translate_case(const char *path, int want_status, const char *const want[],
			   const char *const unwanted[])
{
	char *argv[] = { (char *)test_bin("gammad"), "translate",
			 (char *)src_path("base.yaml"), (char *)path, NULL };
	struct run r;
	bool ok;

	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run gammad translate"))
		return false;
	ok = check_bounds(&r, want_status);
	for (size_t i = 0; want && want[i]; i++)
		ok &= ASSERT_HAS_SUBSTR(r.out, want[i], "diagnostic");
	for (size_t i = 0; unwanted && unwanted[i]; i++)
		ok &= ASSERT_FALSE(strstr(r.out, unwanted[i]), unwanted[i]);
	ok &= ASSERT_HAS_SUBSTR(r.out, GOOD_ROUTE, "good route kept");
	if (!ok)
		print_head(&r);
	free(r.out);
	return ok;
}

#define W(...) ((const char *const[]){ __VA_ARGS__, NULL })

struct fixed_case {
	const char *file;
	int status;		/* 1: input errors, 0: warnings only */
	const char *const *want;
	const char *const *unwanted;
};

static const struct fixed_case fixed[] = {
	{ "empty-version.yaml", 0,
	  W("empty-version.yaml:1: apiVersion: gateway.networking.k8s.io/ HTTPRoute is not served",
	    "empty-version.yaml:5: apiVersion: / Service is not served",
	    "empty-version.yaml:9: apiVersion: apps/ Deployment is not served"), NULL },
	{ "alias-self-list.yaml", 1,
	  W("alias-self-list.yaml:1: items[0]: alias *a refers to a node that contains it (a cycle)"),
	  W("nested deeper") },
	{ "alias-nested-lists.yaml", 1,
	  W("alias-nested-lists.yaml:", "aliases expand to more than"), NULL },
	{ "alias-slice.yaml", 1,
	  W("alias-slice.yaml:7: endpoints: has 5000 items, at most 1000 allowed"), NULL },
	{ "dup-keys.yaml", 1,
	  W("dup-keys.yaml:6: metadata.name: duplicate key (first at line 4), document ignored"),
	  W("good/first", "good/second") },
	{ "merge-key.yaml", 1,
	  W("merge-key.yaml:9: spec.rules[0].<<: YAML merge keys (<<) are not supported"),
	  W("good/merged") },
	{ "nul-name.json", 1,
	  W("nul-name.json:1: metadata.name: contains a NUL character (\\0)"),
	  W("good/web\n", "10.96.9.9") },
	{ "control-chars.yaml", 1,
	  W("control-chars.yaml:7: spec.rules[0].matches[0].path.value: contains a control character",
	    "control-chars.yaml:16: spec.rules[0].matches[0].headers[0].value: contains a control character",
	    "control-chars.yaml:23: spec.parentRefs[0].sectionName: contains a control character (\\x1b)",
	    "control-chars.yaml:32: spec.ports[0].appProtocol: contains a control character (\\x1b)",
	    "control-chars.yaml:38: spec.hostnames[0]: contains a control character (\\x0a)"),
	  W("\nHTTPRoute good/forged", "\x1b", "x-evil", "escape-app", "escape-host") },
	{ "invalid-utf8.yaml", 1,
	  W("invalid-utf8.yaml:42: column 27: invalid UTF-8",
	    "Service good/before-utf8 port 80"),
	  W("bad-utf8") },
	{ "port-octal.json", 1,
	  W("port-octal.json:1: spec.ports[0].port: must be an integer in 1..65535, got \"010\""),
	  W("good/js") },
	{ "dup-clusterip.yaml", 1,
	  W("Service good/twin-b port 80: ClusterIP 10.96.8.8:80/TCP is also Service good/twin-a's"), NULL },
	{ "regex-nested.yaml", 0,
	  W("HTTPRoute good/regex-bomb (generation 0)\n  parent Service good/web port 80\n"
	    "    Accepted=False UnsupportedValue: no valid rule: regular expression \"((((a{1,99}){1,99}){1,99}){1,99})\" is over the compile budget (regular expression is too large)"),
	  W("invalid regular expression") },
};

static void test_fixed(void)
{
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "file_%s", fixed[i].file);
		for (char *p = name; *p; p++)
			if (*p == '-' || *p == '.')
				*p = '_';
		if (!test__start_subtest(name))
			continue;
		translate_case(src_path(fixed[i].file), fixed[i].status, fixed[i].want, fixed[i].unwanted);
	}
}

static int write_file(const char *path, const char *head, const char *unit, size_t repeat,
		      const char *tail)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(head, f);
	for (size_t i = 0; i < repeat; i++)
		fprintf(f, unit, i);
	fputs(tail, f);
	return fclose(f) ? -errno : 0;
}

static void case_many_labels(void)
{
	const char *p = tmp_path("labels.yaml");

	if (!ASSERT_OK(write_file(p, "apiVersion: v1\nkind: Service\nmetadata:\n  name: many\n"
				  "  namespace: good\n  labels:\n", "    k%zu: v\n", 100000,
				  "  annotations:\n    a: b\n    a: c\n"
				  "spec: {clusterIP: 10.96.7.10, ports: [{port: 80}]}\n"), "write"))
		return;
	translate_case(p, 1, W("labels.yaml:100009: metadata.annotations.a: duplicate key (first at line 100008)"),
		       NULL);
}

static void case_deep_flow(void)
{
	const char *p = tmp_path("deep.yaml");
	FILE *f = fopen(p, "w");

	if (!ASSERT_OK_PTR(f, "open"))
		return;
	fputs("apiVersion: v1\nkind: Service\nmetadata: {name: deep, namespace: good}\nspec: ", f);
	for (int i = 0; i < 100000; i++)
		fputc('[', f);
	fputc('\n', f);
	fclose(f);
	translate_case(p, 1, W("deep.yaml:4:", "nested deeper than"), NULL);
}

/* 300k anchors and as many aliases in one document: hashed, not searched. */
static void case_many_anchors(void)
{
	const char *p = tmp_path("anchors.yaml");
	FILE *f = fopen(p, "w");

	if (!ASSERT_OK_PTR(f, "open"))
		return;
	fputs("apiVersion: v1\nkind: Namespace\nmetadata: {name: anchors}\na: [", f);
	for (int i = 0; i < 300000; i++)
		fprintf(f, "&a%d x, ", i);
	fputs("x]\nb: [", f);
	for (int i = 0; i < 300000; i++)
		fprintf(f, "*a%d, ", i);
	fputs("x]\n", f);
	fclose(f);
	translate_case(p, 0, NULL, NULL);
}

/* 8 MiB of tiny documents, each wrong: diagnostics stop at a limit, once each. */
static void case_many_diags(void)
{
	const char *p = tmp_path("tiny.yaml");
	char *argv[] = { (char *)test_bin("gammad"), "translate",
			 (char *)src_path("base.yaml"), (char *)p, NULL };
	struct run r;

	if (!ASSERT_OK(write_file(p, "", "a: %zu\n---\n", 800000, ""), "write"))
		return;
	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run"))
		return;
	if (check_bounds(&r, 1)) {
		ASSERT_LT(count_lines(r.out), 20000, "lines of output");
		ASSERT_HAS_SUBSTR(r.out, "more diagnostics not shown", "cut says so");
		ASSERT_HAS_SUBSTR(r.out, GOOD_ROUTE, "good route kept");
	}
	free(r.out);
}

/* Four symlinks to "." under a manifests directory, and a FIFO. */
static void case_dir_walk(void)
{
	const char *dir = tmp_path("walk");
	char link[PATH_MAX + 8], sub[PATH_MAX];

	mkdir(dir, 0755);
	for (int i = 0; i < 4; i++) {
		snprintf(link, sizeof(link), "%s/l%d", dir, i);
		ASSERT_OK(symlink(".", link), "symlink");
	}
	snprintf(sub, sizeof(sub), "%s/pipe.yaml", dir);
	ASSERT_OK(mkfifo(sub, 0600), "mkfifo");
	snprintf(sub, sizeof(sub), "%s/svc.yaml", dir);
	ASSERT_OK(write_file(sub, "apiVersion: v1\nkind: Service\nmetadata: {name: walked, namespace: good}\n"
			     "spec: {clusterIP: 10.96.7.11, ports: [{port: 80}]}\n", "", 0, ""),
		  "write");
	translate_case(dir, 0, W("pipe.yaml: not a regular file, skipped", "Service good/walked port 80"),
		       W("nested deeper"));
}

/* A FIFO given as the path, with no writer: read as empty, no hang in open(). */
static void case_fifo_path(void)
{
	const char *p = tmp_path("lonely.fifo");

	ASSERT_OK(mkfifo(p, 0600), "mkfifo");
	translate_case(p, 0, NULL, NULL);
}

/* A pipe as the path (/dev/stdin) is read up to the same 64 MiB limit. */
static void case_pipe(void)
{
	char *argv[] = { (char *)test_bin("gammad"), "translate", (char *)src_path("base.yaml"),
			 "/dev/stdin", NULL };
	static char chunk[1 << 16];
	int fds[2];
	pid_t w;
	struct run r;

	if (!ASSERT_OK(pipe(fds), "pipe"))
		return;
	w = fork();
	if (w == 0) {
		close(fds[0]);
		memset(chunk, '#', sizeof(chunk));
		chunk[sizeof(chunk) - 1] = '\n';
		for (int i = 0; i < 70 * 16; i++)	/* 70 MiB of comments */
			if (write(fds[1], chunk, sizeof(chunk)) < 0)
				break;
		_exit(0);
	}
	close(fds[1]);
	if (!ASSERT_OK(run_bounded(argv, fds[0], &r), "run")) {
		close(fds[0]);
		return;
	}
	close(fds[0]);
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	if (check_bounds(&r, 1)) {
		ASSERT_HAS_SUBSTR(r.out, "more than 67108864 bytes; rest of the file ignored", "limit");
		ASSERT_HAS_SUBSTR(r.out, GOOD_ROUTE, "good route kept");
	}
	free(r.out);
}

/*
 * A pipe that brings one byte at a time, cutting a UTF-8 character across
 * reads: the document is read whole (a short read is not the end).
 */
static void case_pipe_trickle(void)
{
	static const char doc[] = "apiVersion: v1\nkind: Service\n"
		"metadata: {name: trickled, namespace: good, annotations: {note: \"caf\xc3\xa9\"}}\n"
		"spec: {clusterIP: 10.96.7.13, ports: [{port: 80}]}\n";
	char *argv[] = { (char *)test_bin("gammad"), "translate", (char *)src_path("base.yaml"),
			 "/dev/stdin", NULL };
	struct run r;
	int fds[2];
	pid_t w;

	if (!ASSERT_OK(pipe(fds), "pipe"))
		return;
	w = fork();
	if (w == 0) {
		close(fds[0]);
		for (size_t i = 0; i < sizeof(doc) - 1; i++) {
			if (write(fds[1], doc + i, 1) != 1)
				break;
			usleep(2000);
		}
		_exit(0);
	}
	close(fds[1]);
	if (!ASSERT_OK(run_bounded(argv, fds[0], &r), "run")) {
		close(fds[0]);
		return;
	}
	close(fds[0]);
	waitpid(w, NULL, 0);
	if (check_bounds(&r, 0)) {
		ASSERT_HAS_SUBSTR(r.out, "Service good/trickled port 80", "whole document read");
		ASSERT_HAS_SUBSTR(r.out, GOOD_ROUTE, "good route kept");
	}
	free(r.out);
}

/* A device given as the path is not read. */
static void case_device(void)
{
	translate_case("/dev/zero", 1, W("/dev/zero: not a regular file or directory"), NULL);
}

static void case_bench_flags(void)
{
	char *argv[] = { (char *)test_bin("gammad"), "translate", "--bench", "--services", "abc",
			 NULL };
	struct run r;

	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run"))
		return;
	if (check_bounds(&r, 2))
		ASSERT_HAS_SUBSTR(r.out, "--services: \"abc\" is not a number", "message");
	free(r.out);
}

static void case_octal(void)
{
	char *argv[] = { (char *)test_bin("gammad"), "translate", (char *)src_path("base.yaml"),
			 (char *)src_path("port-octal.yaml"), NULL };
	struct run r;

	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run"))
		return;
	if (check_bounds(&r, 0)) {
		ASSERT_HAS_SUBSTR(r.out, "Service good/octal port 8 (http)", "010 is 8");
		ASSERT_HAS_SUBSTR(r.out, "Service good/octal port 16 (hex)", "0x10 is 16");
		ASSERT_HAS_SUBSTR(r.out, "Service good/octal port 1000 (big)", "1_000 is 1000");
	}
	free(r.out);
}

/* A status file whose routes alias each other: bounded, and escaped. */
static void case_status_file(void)
{
	const char *p = tmp_path("status.json");
	char *argv[] = { (char *)test_bin("gammactl"), "--status-file", (char *)p, "status", NULL };
	FILE *f = fopen(p, "w");
	struct run r;

	if (!ASSERT_OK_PTR(f, "open"))
		return;
	fputs("{apiVersion: gammad.io/status/v1, inputErrors: 1,\n"
	      " x: &c {type: Accepted, status: \"False\", reason: \"\\e[2J\", message: \"m\\nforged\"},\n"
	      " y: &p {parentRef: {kind: Service, namespace: n, name: s}, conditions: [", f);
	for (int i = 0; i < 64; i++)
		fputs("*c, ", f);
	fputs("*c]},\n z: &r {kind: HTTPRoute, namespace: n, name: r, parents: [", f);
	for (int i = 0; i < 64; i++)
		fputs("*p, ", f);
	fputs("*p]},\n routes: [", f);
	for (int i = 0; i < 4096; i++)
		fputs("*r, ", f);
	fputs("*r]}\n", f);
	fclose(f);
	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run"))
		return;
	if (check_bounds(&r, 1)) {
		ASSERT_HAS_SUBSTR(r.out, "aliases expand to more than", "budget");
		ASSERT_FALSE(strchr(r.out, '\x1b'), "no raw escape");
	}
	free(r.out);

	/* Escapes in values reach the terminal as text, and forge no line. */
	f = fopen(p, "w");
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	fputs("{\"apiVersion\": \"gammad.io/status/v1\", \"inputErrors\": 0, \"routes\": "
	      "[{\"kind\": \"HTTPRoute\", \"namespace\": \"n\", \"name\": \"r\\u001b[2J\\nforged\", "
	      "\"parents\": []}]}\n", f);
	fclose(f);
	if (!ASSERT_OK(run_bounded(argv, -1, &r), "run"))
		return;
	if (check_bounds(&r, 0)) {
		ASSERT_HAS_SUBSTR(r.out, "HTTPRoute n/r\\x1b[2J\\x0aforged", "escaped");
		ASSERT_FALSE(strchr(r.out, '\x1b'), "no raw escape");
	}
	free(r.out);
}

/* Regular expressions: a compile bomb is "over budget", a backtracking bomb stops. */
static void case_regex_budget(void)
{
	char subject[161];
	struct timespec t0, t1;
	double ms;

	ASSERT_EQ(rx_check("((((a{1,99}){1,99}){1,99}){1,99})", NULL, 0), RX_TOO_LARGE,
		  "nested counted repeats");
	ASSERT_EQ(rx_check("/v[0-9", NULL, 0), RX_INVALID, "invalid is invalid");
	memset(subject, 'a', 159);
	subject[159] = '!';
	subject[160] = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(rx_match("(\\w+\\s?)*", subject, 160), -E2BIG, "backtracking bounded");
	for (int i = 0; i < 1000; i++)
		ASSERT_EQ(rx_match("/(a*)*b\\1", subject, 160), 0, "backreference");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	ASSERT_LT(ms, LIMIT_SECONDS * 1000, "milliseconds");
	ASSERT_EQ(rx_match("/v[0-9]+/.*", "/v2/items", 9), 1, "still matches");
	rx_cache_clear();
}

/*
 * Weights: one backend summed over 288 rules passes 2^32. The kernel's
 * selector (the image) must hold exactly the translated split.
 */
static void case_weights(void)
{
	const char *files[] = { src_path("base.yaml"), src_path("weight-overflow.yaml") };
	const struct tr_l4 *l4 = NULL;
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	struct img img;
	bool found = false;

	model_init(&m);
	for (int i = 0; i < 2; i++)
		ASSERT_OK(manifest_load_path(&m, files[i], &dg), "load");
	if (!ASSERT_OK(translate(&m, &dg, &res), "translate"))
		goto out;
	for (size_t i = 0; i < res.nr_ports; i++)
		if (!strcmp(res.ports[i].svc->meta.name, "web") && res.ports[i].nr_classes)
			l4 = &res.ports[i].classes[0].l4;
	if (!ASSERT_OK_PTR(l4, "class of good/web") ||
	    !ASSERT_LE(l4->total_weight, GAMMAD_MAX_WEIGHT_SUM, "fits 32 bits") ||
	    !ASSERT_TRUE(l4->flags & TR_L4_SCALED, "says it was scaled"))
		goto free_res;
	if (ASSERT_OK(img_build(&m, &res, &img), "image")) {
		for (size_t i = 0; i < img.nr_selectors; i++) {
			const struct img_selector *sel = &img.selectors[i];
			uint64_t sum = 0;
			bool same = sel->nr == l4->nr && sel->total_weight == l4->total_weight;

			for (size_t j = 0; j < sel->nr; j++) {
				sum += sel->items[j].weight;
				same &= sel->items[j].weight == l4->items[j].weight;
			}
			ASSERT_EQ(sum, sel->total_weight, "selector total is its sum");
			found |= same;
		}
		ASSERT_TRUE(found, "the kernel's selector is the translated split");
		img_free(&img);
	}
free_res:
	tr_result_free(&res);
out:
	model_free(&m);
	diag_free(&dg);
}

void test_hostile_input(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gammad-hostile.XXXXXX");
	if (!ASSERT_OK_PTR(mkdtemp(tmpdir), "mkdtemp"))
		return;
	test_fixed();
	if (test__start_subtest("many_labels"))
		case_many_labels();
	if (test__start_subtest("deep_flow"))
		case_deep_flow();
	if (test__start_subtest("many_anchors"))
		case_many_anchors();
	if (test__start_subtest("many_diagnostics"))
		case_many_diags();
	if (test__start_subtest("dir_walk"))
		case_dir_walk();
	if (test__start_subtest("fifo_path"))
		case_fifo_path();
	if (test__start_subtest("pipe_limit"))
		case_pipe();
	if (test__start_subtest("pipe_trickle"))
		case_pipe_trickle();
	if (test__start_subtest("device_path"))
		case_device();
	if (test__start_subtest("bench_flags"))
		case_bench_flags();
	if (test__start_subtest("port_octal"))
		case_octal();
	if (test__start_subtest("status_file"))
		case_status_file();
	if (test__start_subtest("regex_budget"))
		case_regex_budget();
	if (test__start_subtest("weights_exact"))
		case_weights();
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			test__printf("cleanup of %s failed\n", tmpdir);
	}
}
