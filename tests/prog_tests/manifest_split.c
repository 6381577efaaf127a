// SPDX-License-Identifier: Apache-2.0
/*
 * A manifest file of MANIFEST_SPLIT_BYTES or more is parsed in two halves
 * on two threads (input/manifest.c, load_split): the model must be a whole
 * parse's. The reference is the same text behind a "%YAML 1.1" directive,
 * which the split never touches (directives belong to the document after
 * them): same objects in the same order, same image, same number of
 * diagnostics and errors. Cases: a clean cluster, objects defined twice
 * (one in each half: the first one wins), a syntax error in the first half
 * (the file ends there, nothing after it is loaded), a document refused in
 * the second half, and aliases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "input/manifest.h"
#include "input/synth_cluster.h"
#include "translate/translate.h"

#include "test_progs.h"

static char *cluster(long services, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	synth_cluster_write(f, &(struct synth_cluster){ .services = services, .routes = services,
			    .endpoints = services * 10, .namespaces = true });
	fclose(f);
	return buf;
}

/* Objects of m in order, one line each: kind, namespace/name. */
static char *objects(struct model *m)
{
	struct model_event *evs = NULL;
	char *buf = NULL;
	size_t nr = 0, len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f || model_take_events(m, &evs, &nr)) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < nr; i++) {
		const struct k8s_meta *meta = evs[i].obj;

		fprintf(f, "%d/%d %s/%s %d\n", evs[i].kind, evs[i].route_kind,
			meta->namespace ? meta->namespace : "", meta->name, meta->loc.line);
	}
	fclose(f);
	model_events_free(evs, nr);
	return buf;
}

static int image(struct model *m, struct img *img)
{
	struct diag dg = { 0 };
	struct tr_result res;
	int ret = translate(m, &dg, &res);

	if (!ret) {
		ret = img_build(m, &res, img);
		tr_result_free(&res);
	}
	diag_free(&dg);
	return ret;
}

static void check(const char *text, size_t len)
{
	static const char directive[] = "%YAML 1.1\n";
	char *ref = malloc(len + sizeof(directive));
	struct diag dg_split = { 0 }, dg_whole = { 0 };
	struct model split, whole;
	struct img img_split = { 0 }, img_whole = { 0 };
	char *obj_split = NULL, *obj_whole = NULL;
	struct img_diff d = { 0 };

	if (!ASSERT_OK_PTR(ref, "malloc"))
		return;
	ASSERT_GE(len, (size_t)MANIFEST_SPLIT_BYTES, "large enough to be split");
	memcpy(ref, directive, sizeof(directive) - 1);
	memcpy(ref + sizeof(directive) - 1, text, len);
	model_init(&split);
	model_init(&whole);
	if (!ASSERT_OK(manifest_load_buf(&split, "c.yaml", text, len, &dg_split), "split load") ||
	    !ASSERT_OK(manifest_load_buf(&whole, "c.yaml", ref, len + sizeof(directive) - 1,
					 &dg_whole), "whole load"))
		goto out;
	ASSERT_EQ(dg_split.nr, dg_whole.nr, "diagnostics");
	ASSERT_EQ(dg_split.nr_errors, dg_whole.nr_errors, "errors");
	if (!ASSERT_OK(image(&split, &img_split), "image of the split load") ||
	    !ASSERT_OK(image(&whole, &img_whole), "image of the whole load"))
		goto out;
	if (ASSERT_OK(img_diff(&img_whole, &img_split, &d), "img_diff"))
		ASSERT_EQ(d.nr, 0, "same image");
	obj_split = objects(&split);
	obj_whole = objects(&whole);
	if (ASSERT_OK_PTR(obj_split, "objects") && ASSERT_OK_PTR(obj_whole, "objects")) {
		/* Lines: the reference has one more (its directive) before every object. */
		size_t n_split = 0, n_whole = 0;

		for (const char *p = obj_split; (p = strchr(p, '\n')); p++)
			n_split++;
		for (const char *p = obj_whole; (p = strchr(p, '\n')); p++)
			n_whole++;
		ASSERT_EQ(n_split, n_whole, "same number of objects");
		for (const char *a = obj_split, *b = obj_whole; *a && *b;) {
			const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
			char la[512], lb[512], *sa, *sb;

			snprintf(la, sizeof(la), "%.*s", (int)(ea - a), a);
			snprintf(lb, sizeof(lb), "%.*s", (int)(eb - b), b);
			sa = strrchr(la, ' ');
			sb = strrchr(lb, ' ');
			*sa++ = *sb++ = '\0';
			if (!ASSERT_STREQ(la, lb, "same object in order") ||
			    !ASSERT_EQ(atoi(sa) + 1, atoi(sb), "line of the object"))
				break;
			a = ea + 1;
			b = eb + 1;
		}
	}
out:
	img_diff_free(&d);
	img_free(&img_split);
	img_free(&img_whole);
	free(obj_split);
	free(obj_whole);
	model_free(&split);
	model_free(&whole);
	diag_free(&dg_split);
	diag_free(&dg_whole);
	free(ref);
}

/* text with insert put in place of the first "---\n" at or after pos. */
static char *insert_at(const char *text, size_t len, size_t pos, const char *insert,
		       size_t *out_len)
{
	const char *at = strstr(text + pos, "\n---\n");
	size_t n = strlen(insert), off;
	char *buf;

	if (!at)
		return NULL;
	off = (size_t)(at + 1 - text);
	buf = malloc(len + n + 1);
	if (!buf)
		return NULL;
	memcpy(buf, text, off);
	memcpy(buf + off, insert, n);
	memcpy(buf + off + n, text + off, len - off + 1);
	*out_len = len + n;
	return buf;
}

void test_manifest_split(void)
{
	size_t len, n;
	char *text = cluster(2000, &len), *t;

	if (!ASSERT_OK_PTR(text, "cluster"))
		return;
	if (test__start_subtest("clean"))
		check(text, len);
	if (test__start_subtest("duplicates")) {
		/* The first Service again, near the end: the first definition wins. */
		const char *svc = strstr(text, "---\napiVersion: v1\nkind: Service\n");
		const char *end = svc ? strstr(svc + 4, "\n---\n") : NULL;
		char dup[4096];

		snprintf(dup, sizeof(dup), "%.*s", end ? (int)(end + 1 - svc) : 0, svc);
		t = insert_at(text, len, len - len / 10, dup, &n);
		if (ASSERT_OK_PTR(t, "insert"))
			check(t, n);
		free(t);
	}
	if (test__start_subtest("syntax_error_first_half")) {
		t = insert_at(text, len, len / 4, "---\nkind: [unclosed\n", &n);
		if (ASSERT_OK_PTR(t, "insert"))
			check(t, n);
		free(t);
	}
	if (test__start_subtest("refused_second_half")) {
		t = insert_at(text, len, len - len / 4, "---\na: 1\na: 2\n", &n);
		if (ASSERT_OK_PTR(t, "insert"))
			check(t, n);
		free(t);
	}
	if (test__start_subtest("aliases")) {
		t = insert_at(text, len, len / 4,
			      "---\napiVersion: v1\nkind: Namespace\nmetadata: &m {name: alias-a}\n"
			      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: alias-b, "
			      "labels: &l {a: b}}\nx: [*l, *l, *l]\n", &n);
		if (ASSERT_OK_PTR(t, "insert"))
			check(t, n);
		free(t);
	}
	free(text);
}
