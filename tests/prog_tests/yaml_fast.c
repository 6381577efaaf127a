// SPDX-License-Identifier: Apache-2.0
/*
 * The fast YAML reader (input/yaml_fast.h) against libyaml: every document
 * it composes must be ydoc_compose()'s (tests/lib/yaml_fast_diff.c), and a
 * load through it must give the model, diagnostics and translation of a
 * load through libyaml alone. Inputs: cases at the edges of its subset
 * (each either read or refused, both checked), every YAML and JSON file of
 * tests/ and of the shared Gateway API tree, the fuzz corpus, and generated
 * clusters (which it must read whole: that is the cold start it is for).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/manifest.h"
#include "input/synth_cluster.h"
#include "input/yaml_fast.h"
#include "lib/yaml_fast_diff.h"
#include "translate/translate.h"
#include "translate/translate_output.h"

#include "test_progs.h"

struct fast_case {
	const char *text;
	bool whole;	/* the fast reader takes every document */
};

static const struct fast_case cases[] = {
	{ "a: b\n", true },
	{ "a: b", true },
	{ "a: b   ", true },
	{ "a: b # c", true },
	{ "", true },
	{ "# only\n\n", true },
	{ "---\n", true },
	{ "---\n---\n", true },
	{ "---\na: 1\n---\n\n# c\n---\nb: 2\n", true },
	{ "# c\n---\na: 1\n", true },
	{ "a: 1\n---\nb: 2\n", true },
	{ "a:\n  b: c\n  d:\n    - e\n    - f: g\n      h: i\n    -   j: k\nl: m\n", true },
	{ "a:\n- b\n- c: d\n  e: f\n- g\nh:\n", true },
	{ "a:\nb:\n  c:\n", true },
	{ "a:\n  # c\n  b: c\n", true },
	{ "a: [b, c , 'd', \"e\", [], {}, {f: g, h: [i]}]\n", true },
	{ "a: {b: c,d: e}\n", true },
	{ "a: 'it''s'\nb: \"q # not\"\n'c d': e\n\"f\": g\n", true },
	{ "a: b:c\nd: http://x/y?z#w\ne: -1\nf: ~\ng: a#b\nh: x [y] {z}\n", true },
	{ "a: b\n  \n\nc: d\n   ", true },
	{ "key with spaces: v w\n", true },
	{ "a:\n  b:\n    c: d\n ", true },
	{ "a:\n  b:\n  - c: d\n   ", true },
	{ "a:\n  b: [c]\n  # x", true },
	{ "- a\n", false },
	{ "a: b\n  c\n", false },
	{ "a: b\n\n  c\n", false },
	{ "a: |\n  x\n", false },
	{ "a: >\n  x\n", false },
	{ "a: &x b\nc: *x\n", false },
	{ "a: !!str b\n", false },
	{ "%YAML 1.1\n---\na: b\n", false },
	{ "--- a: b\n", false },
	{ "---a: b\n", false },
	{ "a: b\n...\n", false },
	{ "a:\tb\n", false },
	{ "a: b\r\n", false },
	{ "a: \xc3\xa9\n", false },
	{ "a: b\na: c\n", false },
	{ "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\nb: 11\n", false },
	{ "a: [b,\n  c]\n", false },
	{ "a: \"x\ny\"\n", false },
	{ "a: \"x\\ty\"\n", false },
	{ "a : b\n", false },
	{ "a: b: c\n", false },
	{ "a: [b: c]\n", false },
	{ "a: {b: c, d}\n", false },
	{ "a: [b, ]\n", false },
	{ "a: [a:b]\n", false },
	{ "{\"a\": \"b\"}\n", false },
	{ "a: 1\n  b: 2\n", false },
	{ "a:\n    b: 1\n  c: 2\n", false },
	{ "a:\n  - b\n  c: d\n", false },
	{ "<<: {a: b}\n", false },
	{ "? a\n: b\n", false },
	{ "a: b\n---\n- x\n---\nc: d\n", false },
	{ "a: 'x'#c\n", false },
	{ "a: b\n- c\n", false },
	{ "a:\n- - b\n", false },
	{ "a:\n-\n  b: c\n", false },
	{ "a: [\n", false },
	{ "a: 'x\n", false },
	{ "a: [b]]\n", false },
	{ "a: b\nc: [d] e\n", false },
	{ "a: @b\n", false },
	{ "a: b\n\x01", false },
	{ "a: b\n# \xff\n", false },
};

static void check_buf(const char *name, const char *buf, size_t len, size_t *docs,
		      size_t *fast_docs)
{
	struct yfast_diff d;

	if (!ASSERT_OK(yfast_diff_buf(buf, len, &d), name))
		test__printf("%s: %s\n", name, d.why);
	*docs += d.docs;
	*fast_docs += d.fast_docs;
}

static void subtest_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct yfast_diff d;
		char name[64];

		snprintf(name, sizeof(name), "case %zu", i);
		if (!ASSERT_OK(yfast_diff_buf(cases[i].text, strlen(cases[i].text), &d), name)) {
			test__printf("case %zu '%s': %s\n", i, cases[i].text, d.why);
			continue;
		}
		if (!ASSERT_EQ(d.refused_at < 0, cases[i].whole, name))
			test__printf("case %zu '%s': refused at %d\n", i, cases[i].text,
				     d.refused_at);
	}
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* The model, diagnostics and translation of a load, as text. */
static char *load_text(const char *buf, size_t len)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	struct model_event *evs = NULL;
	size_t nr = 0;

	if (!f)
		return NULL;
	model_init(&m);
	fprintf(f, "load %d\n", manifest_load_buf(&m, "f.yaml", buf, len, &dg));
	if (!translate(&m, &dg, &res)) {
		tr_write_json(f, &res, &dg, false);
		tr_result_free(&res);
	}
	for (size_t i = 0; i < dg.nr; i++)
		fprintf(f, "diag %d %s\n", dg.entries[i].level, dg.entries[i].msg);
	fprintf(f, "errors %zu\n", dg.nr_errors);
	if (!model_take_events(&m, &evs, &nr)) {
		for (size_t i = 0; i < nr; i++) {
			const struct k8s_meta *meta = evs[i].obj;

			fprintf(f, "%d/%d %s/%s %d\n", evs[i].kind, evs[i].route_kind,
				meta->namespace ? meta->namespace : "", meta->name, meta->loc.line);
		}
		model_events_free(evs, nr);
	}
	fclose(f);
	model_free(&m);
	diag_free(&dg);
	return out;
}

/* The same load with and without the fast reader. */
static void check_model(const char *name, const char *buf, size_t len)
{
	char *fast, *slow;

	yfast_enabled = false;
	slow = load_text(buf, len);
	yfast_enabled = true;
	fast = load_text(buf, len);
	if (ASSERT_OK_PTR(fast, "load") && ASSERT_OK_PTR(slow, "load") &&
	    !ASSERT_STREQ(fast, slow, name))
		test__printf("%s: loads differ\n", name);
	free(fast);
	free(slow);
}

static size_t nr_files, nr_docs, nr_fast_docs;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *dot = strrchr(path, '.');
	size_t len;
	char *buf;

	if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size > (8 << 20))
		return 0;
	if (!strstr(path, "/fuzz/corpus/fuzz_manifest/") &&
	    (!dot || (strcmp(dot, ".yaml") && strcmp(dot, ".yml") && strcmp(dot, ".json"))))
		return 0;
	buf = read_file(path, &len);
	if (!buf)
		return 0;
	nr_files++;
	check_buf(path, buf, len, &nr_docs, &nr_fast_docs);
	check_model(path, buf, len);
	free(buf);
	return 0;
}

static void subtest_corpus(void)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/tests", env.src_dir);
	nftw(dir, visit, 16, FTW_PHYS);
	if (env.shared_dir) {
		snprintf(dir, sizeof(dir), "%s/gateway-api", env.shared_dir);
		nftw(dir, visit, 16, FTW_PHYS);
	}
	test__printf("%zu files, %zu documents, %zu through the fast reader\n", nr_files,
		     nr_docs, nr_fast_docs);
	ASSERT_GT(nr_files, 50, "corpus files");
	ASSERT_GT(nr_fast_docs, 0, "documents through the fast reader");
}

static void subtest_generated(void)
{
	static const struct synth_cluster sizes[] = {
		{ .services = 1, .routes = 1, .endpoints = 1, .namespaces = true },
		{ .services = 300, .routes = 300, .endpoints = 3000, .namespaces = true },
		{ .services = 200, .routes = 0, .endpoints = 200, .namespaces = false },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct yfast_diff d;
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		if (!ASSERT_OK_PTR(f, "memstream"))
			return;
		synth_cluster_write(f, &sizes[i]);
		fclose(f);
		if (ASSERT_OK(yfast_diff_buf(buf, len, &d), "generated")) {
			ASSERT_EQ(d.refused_at, -1, "read whole by the fast reader");
			ASSERT_EQ(d.fast_docs, d.docs, "every document");
		} else {
			test__printf("generated %zu: %s\n", i, d.why);
		}
		check_model("generated", buf, len);
		free(buf);
	}
}

/*
 * A generated cluster with one document libyaml must read in its middle:
 * the fast reader hands over there, libyaml reads the rest (lines, errors
 * and all), and the load is a libyaml-only load's.
 */
static void subtest_handover(void)
{
	static const char *const middles[] = {
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: &a anchored}\n",
		"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: folded\n  labels: {x: >-\n    y}\n",
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dup, name: dup}\n",
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: [unclosed\n",
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bad-\xff}\n",
	};

	for (size_t i = 0; i < sizeof(middles) / sizeof(middles[0]); i++) {
		char *buf = NULL, *text;
		size_t len = 0, half;
		FILE *f = open_memstream(&buf, &len);
		const char *at;

		if (!ASSERT_OK_PTR(f, "memstream"))
			return;
		synth_cluster_write(f, &(struct synth_cluster){ .services = 50, .routes = 50,
				    .endpoints = 100, .namespaces = true });
		fclose(f);
		at = strstr(buf + len / 2, "\n---\n");
		if (!ASSERT_OK_PTR(at, "a document start past the middle")) {
			free(buf);
			return;
		}
		half = (size_t)(at + 1 - buf);
		text = malloc(len + strlen(middles[i]) + 1);
		if (ASSERT_OK_PTR(text, "malloc")) {
			struct yfast_diff d;

			memcpy(text, buf, half);
			strcpy(text + half, middles[i]);
			memcpy(text + half + strlen(middles[i]), buf + half, len - half + 1);
			if (ASSERT_OK(yfast_diff_buf(text, strlen(text), &d), "documents"))
				ASSERT_GT(d.refused_at, 0, "handed over in the middle");
			else
				test__printf("handover %zu: %s\n", i, d.why);
			check_model("handover", text, strlen(text));
		}
		free(text);
		free(buf);
	}
}

void test_yaml_fast(void)
{
	if (test__start_subtest("cases"))
		subtest_cases();
	if (test__start_subtest("corpus"))
		subtest_corpus();
	if (test__start_subtest("generated"))
		subtest_generated();
	if (test__start_subtest("handover"))
		subtest_handover();
}
