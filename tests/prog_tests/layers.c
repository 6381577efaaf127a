// SPDX-License-Identifier: Apache-2.0
/*
 * tools/layers.sh keeps libgammad layered: the real tree passes, and each
 * kind of tangle it exists to catch, planted in a copy or in a small tree of
 * its own, fails with a message naming the file and the rule.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/lab_env.h"

/* A small library of two stages, low and high (high may use low). */
static const struct {
	const char *path, *text;
} mini_lib[] = {
	{ "low/README.md", "# low\n\nMay use: nothing\n" },
	{ "high/README.md", "# high\n\nMay use: low\n" },
	{ "low/low.h", "int low_fn(void);\n" },
	{ "low/low.c", "#include \"low.h\"\nint low_fn(void) { return 1; }\n" },
	{ "high/high.h", "int high_fn(void);\n" },
	{ "high/high.c", "#include \"high.h\"\n#include \"low/low.h\"\n"
			 "int high_fn(void) { return low_fn(); }\n" },
};

struct mini_case {
	const char *name;
	const char *files[2][2];	/* { path, text }: added to the mini library */
	const char *says;		/* substring of the failure */
};

static const struct mini_case mini_cases[] = {
	{ "symbol_back_edge",
	  { { "low/peek.c", "int high_fn(void);\nint peek(void) { return high_fn(); }\n" } },
	  "low/peek.c uses high_fn from" },
	{ "symbol_cycle_in_a_folder",
	  { { "high/ping.c", "int pong(void);\nint ping(void) { return pong(); }\n" },
	    { "high/pong.c", "int ping(void);\nint pong(void) { return ping(); }\n" } },
	  "object files (by the symbols they take from each other) depend on each other" },
	{ "include_cycle",
	  { { "low/a.h", "#include \"b.h\"\n" }, { "low/b.h", "#include \"a.h\"\n" } },
	  "files (by #include) depend on each other" },
	{ "missing_readme", { { "extra/x.c", "int x;\n" } },
	  "extra: a stage folder without README.md" },
};

/* A shell command whose output only -v shows; its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char *cmd = NULL, *out = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -1;
	ret = lab_run_capture(&out, "%s", cmd);
	free(out);
	free(cmd);
	return ret;
}

static int write_text(const char *dir, const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (run("mkdir -p \"$(dirname %s)\"", path))
		return -1;
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Build the mini library (plus extra) under dir/lib, objects under dir/obj. */
static int make_mini(const char *dir, const struct mini_case *extra)
{
	char lib[300];

	snprintf(lib, sizeof(lib), "%s/lib", dir);
	for (size_t i = 0; i < sizeof(mini_lib) / sizeof(mini_lib[0]); i++)
		if (write_text(lib, mini_lib[i].path, mini_lib[i].text))
			return -1;
	for (size_t i = 0; extra && i < 2 && extra->files[i][0]; i++)
		if (write_text(lib, extra->files[i][0], extra->files[i][1]))
			return -1;
	return run("cd %s && for c in */*.c; do mkdir -p ../obj/$(dirname $c) && "
			       "cc -I. -c $c -o ../obj/${c%%.c}.o || exit 1; done", lib);
}

static void run_mini(const char *tmp, const struct mini_case *c)
{
	char dir[128], *out = NULL;
	int ret;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, c ? c->name : "clean");
	if (!ASSERT_OK(make_mini(dir, c), "build the mini library"))
		return;
	ret = lab_run_capture(&out, "%s/tools/layers.sh --lib %s/lib --objs %s/obj --others ''",
			      env.src_dir, dir, dir);
	if (!c) {
		ASSERT_EQ(ret, 0, "a layered mini library passes");
	} else {
		ASSERT_EQ(ret, 1, "fails");
		ASSERT_HAS_SUBSTR(out, c->says, "names it");
	}
	free(out);
}

/* A copy of the real library with one line changed: sed expression on one file. */
static void run_tampered(const char *tmp, const char *name, const char *file,
			 const char *sed, const char *says)
{
	char *out = NULL;
	int ret;

	if (!test__start_subtest(name))
		return;
	ret = run("rm -rf %s/real && mkdir -p %s/real && cp -r %s/user/lib %s/real/ && "
			      "sed -i '%s' %s/real/lib/%s", tmp, tmp, env.src_dir, tmp, sed, tmp, file);
	if (!ASSERT_OK(ret, "copy and change the library"))
		return;
	ret = lab_run_capture(&out, "%s/tools/layers.sh --lib %s/real/lib --objs %s/user/lib --others ''",
			      env.src_dir, tmp, env.build_dir);
	ASSERT_EQ(ret, 1, "fails");
	ASSERT_HAS_SUBSTR(out, says, "names it");
	free(out);
}

void test_layers(void)
{
	char tmp[] = "/tmp/gammad-layers-XXXXXX", *out = NULL;
	int ret;

	if (!ASSERT_OK_PTR(mkdtemp(tmp), "mkdtemp"))
		return;
	if (test__start_subtest("tree_is_layered")) {
		ret = lab_run_capture(&out, "cd %s && tools/layers.sh --objs %s/user/lib",
				      env.src_dir, env.build_dir);
		ASSERT_EQ(ret, 0, "user/lib follows its May use: lines");
		ASSERT_HAS_SUBSTR(out, "layers: ok", "says so");
		if (ret)
			test__printf("%s", out);
		free(out);
	}
	run_tampered(tmp, "include_back_edge", "datapath/alias.h",
		     "0,/#include/s//#include \"input\\/model.h\"\\n&/",
		     "datapath/alias.h:16: includes \"input/model.h\", but datapath may use only: base");
	run_tampered(tmp, "internal_header", "image/image.c",
		     "0,/#include/s//#include \"translate\\/translate_int.h\"\\n&/",
		     "an internal header of translate");
	run_tampered(tmp, "folder_cycle", "base/README.md", "s/^May use: nothing/May use: view/",
		     "stage folders (their 'May use:' lines) depend on each other");
	if (test__start_subtest("mini_clean"))
		run_mini(tmp, NULL);
	for (size_t i = 0; i < sizeof(mini_cases) / sizeof(mini_cases[0]); i++)
		if (test__start_subtest(mini_cases[i].name))
			run_mini(tmp, &mini_cases[i]);
	run("rm -rf %s", tmp);
}
