// SPDX-License-Identifier: Apache-2.0
/*
 * The incremental control plane (image/pipeline.h) against a full build:
 * random object changes (Services, EndpointSlices, routes of every kind,
 * Namespaces, Pods; added, changed, deleted; ClusterIPs shared now and
 * then) applied one event at a time, committed at random points; after
 * every commit the pipeline's image must equal the image of a full load of
 * the same objects from scratch, entry by entry (img_diff), and the HTTP
 * engine's tables (pl_tables_get) must serve as a full translation does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "image/pipeline.h"
#include "input/manifest.h"
#include "lib/cluster_gen.h"
#include "test_progs.h"

/* The pipeline's removed pairs against the full images' before and after. */
static bool same_removed(const struct img *prev, const struct img *want, const struct pl *pl)
{
	const struct img_reach *got;
	struct img_reach *rm = NULL;
	size_t n = 0, nr_got;
	bool same;

	pl_removed_endpoints(pl, &got, &nr_got);
	if (!prev)
		return true;
	if (img_removed_endpoints(prev, want, &rm, &n))
		return false;
	same = n == nr_got;
	/* Field by field: the structs have padding. */
	for (size_t i = 0; same && i < n; i++)
		same = rm[i].addr.family == got[i].addr.family &&
		       !memcmp(rm[i].addr.addr, got[i].addr.addr, 16) && rm[i].port == got[i].port &&
		       rm[i].protocol == got[i].protocol &&
		       rm[i].ep.addr.family == got[i].ep.addr.family &&
		       !memcmp(rm[i].ep.addr.addr, got[i].ep.addr.addr, 16) &&
		       rm[i].ep.port == got[i].ep.port;
	if (!same)
		test__printf("removed pairs: %zu from full images, %zu from the pipeline\n", n, nr_got);
	free(rm);
	return same;
}

/*
 * The engine's tables (pl_tables_get) serve as a full translation's; tables
 * taken some commits ago still read as they did (nothing they point into
 * was freed or changed).
 */
struct held {
	struct pl_tables *t;
	char *dump;
};

static bool same_tables(struct cgen *p, struct pl *pl, int step, struct held *h)
{
	struct pl_tables *t = pl_tables_get(pl);
	char *want = cgen_full_tables_dump(p), *got = t ? cgen_tables_dump(pl_tables_result(t)) : NULL;
	bool ok = want && got && !strcmp(want, got);

	if (!ok)
		test__printf("step %d: engine tables differ from a full translation:\n"
			     "want:\n%.3000s\ngot:\n%.3000s\n", step, want ? want : "-",
			     got ? got : "-");
	if (ok && h->t) {
		char *again = cgen_tables_dump(pl_tables_result(h->t));

		ok = again && !strcmp(again, h->dump);
		if (!ok)
			test__printf("step %d: tables %llu changed while held\n", step,
				     (unsigned long long)pl_tables_gen(h->t));
		free(again);
	}
	free(want);
	/* Hold these for a while (every few commits the held ones are let go). */
	if (ok && (!h->t || !(step % 5))) {
		pl_tables_put(h->t);
		free(h->dump);
		h->t = t;
		h->dump = got;
		return ok;
	}
	pl_tables_put(t);
	free(got);
	return ok;
}

static void run_seed(uint64_t seed, int steps)
{
	struct held held = { 0 };
	struct cgen p = { .rng = seed };
	struct pl *pl = NULL;
	struct pl_stats st;
	struct img prev, cur;
	bool have_prev = false;
	int incremental = 0, commits = 0;

	if (!ASSERT_OK(pl_new(NULL, NULL, &pl), "pl_new"))
		return;
	for (int step = 0; step < steps; step++) {
		int slot = (int)cgen_rnd(&p, CGEN_SLOTS);
		struct model_event ev;
		char name[32];
		int ret;

		if (p.text[slot] && !cgen_rnd(&p, 4)) {
			cgen_delete(slot, &ev, name, sizeof(name));
			ret = pl_event(pl, &ev, NULL);
			if (!ASSERT_OK(ret, "delete event")) {
				test__printf("delete kind %d %s/%s\n", ev.kind,
					     ev.namespace ? ev.namespace : "", ev.name);
				break;
			}
			free(p.text[slot]);
			p.text[slot] = NULL;
		} else {
			char *text = cgen_object(&p, slot);

			if (!ASSERT_OK_PTR(text, "gen") || !ASSERT_OK(cgen_event(text, &ev), "parse")) {
				test__printf("%s", text ? text : "");
				free(text);
				break;
			}
			ret = pl_event(pl, &ev, NULL);
			if (!ASSERT_OK(ret, "put event")) {
				free(text);
				break;
			}
			free(p.text[slot]);
			p.text[slot] = text;
		}
		if (cgen_rnd(&p, 3))
			continue;
		if (!ASSERT_OK(pl_commit(pl, &st), "commit"))
			break;
		commits++;
		incremental += !st.full;
		if (!ASSERT_TRUE(cgen_same_image(&p, pl_image(pl), step, &cur), "incremental == full")) {
			img_free(&cur);
			break;
		}
		if (!ASSERT_TRUE(same_removed(have_prev ? &prev : NULL, &cur, pl), "removed pairs")) {
			img_free(&cur);
			break;
		}
		if (!ASSERT_TRUE(same_tables(&p, pl, step, &held), "engine tables == full")) {
			img_free(&cur);
			break;
		}
		if (have_prev)
			img_free(&prev);
		prev = cur;
		have_prev = true;
	}
	if (have_prev)
		img_free(&prev);
	test__printf("%d commits, %d incremental\n", commits, incremental);
	/* Most commits must be incremental, or this tests the full path only. */
	ASSERT_GT(incremental, commits / 3, "incremental commits");
	pl_tables_put(held.t);
	free(held.dump);
	pl_free(pl);
	for (int s = 0; s < CGEN_SLOTS; s++)
		free(p.text[s]);
}

void test_pipeline_incremental_equals_full(void)
{
	for (uint64_t seed = 1; seed <= 12; seed++) {
		char name[32];

		snprintf(name, sizeof(name), "seed_%llu", (unsigned long long)seed);
		if (!test__start_subtest(name))
			continue;
		run_seed(seed * 0x9e3779b97f4a7c15ull, 1000);
	}
}

/* ---- the per-file manifest cache ------------------------------------------ */

#define SVC(n, ip) "apiVersion: v1\nkind: Service\nmetadata: {name: " n ", namespace: a}\n" \
	"spec:\n  clusterIP: " ip "\n  ports: [{port: 80}]\n---\n"
#define SLICE(n, addr) "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " n "-x, namespace: a, labels: {kubernetes.io/service-name: " n "}}\n" \
	"addressType: IPv4\nports: [{port: 80}]\nendpoints: [{addresses: [" addr "]}]\n---\n"
#define ROUTE(w) "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n" \
	"metadata: {name: r, namespace: a}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: s1}]\n" \
	"  rules: [{backendRefs: [{name: s0, port: 80, weight: " w "}, {name: s1, port: 80}]}]\n"

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/* Scan dir into pl; the image must be a full load's of dir. */
static int scan_step(struct manifest_cache *mc, struct pl *pl, const char *dir,
		     size_t *nr_events, size_t *parsed)
{
	struct model_event *evs = NULL;
	struct diag dg = { 0 };
	struct tr_result res;
	struct img want;
	struct img_diff d;
	struct model m;
	size_t nr = 0;
	int ret;

	ret = manifest_cache_scan(mc, dir, &evs, &nr, &dg);
	*nr_events = nr;
	*parsed = manifest_cache_parsed(mc);
	/* The scan's digest is manifest_digest()'s of the same files (the snapshot's key). */
	if (!ret) {
		struct diag ddg = { 0 };
		uint64_t got = 0, want = 0;

		if (manifest_cache_digest(mc, &got) || manifest_digest(dir, &want, &ddg) ||
		    ddg.nr || got != want) {
			test__printf("digest of the scan %016llx, manifest_digest %016llx\n",
				     (unsigned long long)got, (unsigned long long)want);
			ret = -EBADMSG;
		}
		diag_free(&ddg);
	}
	for (size_t i = 0; i < nr && !ret; i++) {
		ret = pl_event(pl, &evs[i], &dg);
		evs[i].obj = NULL;
	}
	model_events_free(evs, nr);
	if (!ret)
		ret = pl_commit(pl, NULL);
	model_init(&m);
	if (!ret)
		ret = manifest_load_path(&m, dir, &dg);
	if (!ret)
		ret = translate(&m, &dg, &res);
	if (!ret) {
		ret = img_build(&m, &res, &want);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	if (ret)
		return ret;
	ret = img_diff(&want, pl_image(pl), &d);
	if (!ret && d.nr)
		ret = -EBADMSG;
	img_diff_free(&d);
	img_free(&want);
	return ret;
}

void test_pipeline_manifest_cache(void)
{
	char dir[] = "/tmp/gammad-mcache-XXXXXX", path[512];
	struct manifest_cache *mc = NULL;
	struct pl *pl = NULL;
	size_t n, parsed;

	if (!ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp"))
		return;
	if (!ASSERT_OK(manifest_cache_new(&mc), "cache") || !ASSERT_OK(pl_new(NULL, NULL, &pl), "pl"))
		goto out;
	ASSERT_OK(write_file(dir, "a.yaml", SVC("s0", "10.96.0.1") SLICE("s0", "10.1.0.1")), "a");
	ASSERT_OK(write_file(dir, "b.yaml", SVC("s1", "10.96.0.2") SLICE("s1", "10.1.0.2") ROUTE("3")),
		  "b");
	if (!ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "first scan"))
		goto out;
	ASSERT_EQ(n, 5, "first scan: every object");
	ASSERT_EQ(parsed, 2, "first scan: both files parsed");
	ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "unchanged scan");
	ASSERT_EQ(n, 0, "unchanged: no events");
	ASSERT_EQ(parsed, 0, "unchanged: nothing read");
	/* A new inode, as editors and kubectl-style tools rename one into place. */
	ASSERT_OK(write_file(dir, ".b.new", SVC("s1", "10.96.0.2") ROUTE("7")), "b new");
	snprintf(path, sizeof(path), "%s/.b.new", dir);
	{
		char to[512];

		snprintf(to, sizeof(to), "%s/b.yaml", dir);
		ASSERT_OK(rename(path, to), "rename");
	}
	ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "changed scan");
	ASSERT_EQ(parsed, 1, "changed: one file parsed");
	ASSERT_EQ(n, 3, "changed: slice deleted, Service and route put");
	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	ASSERT_OK(unlink(path), "unlink a");
	ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "removed scan");
	ASSERT_EQ(n, 2, "removed: its two objects deleted");
	/* Same bytes again (mtime moves): read, not parsed. */
	ASSERT_OK(write_file(dir, "b.yaml", SVC("s1", "10.96.0.2") ROUTE("7")), "b same");
	ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "same content");
	ASSERT_EQ(n, 0, "same content: no events");
	ASSERT_EQ(parsed, 0, "same content: not parsed");
	/* A file's diagnostics stay with it while it is unchanged. */
	ASSERT_OK(write_file(dir, "bad.yaml", "apiVersion: v1\nkind: Service\n"
			     "metadata: {name: bad, namespace: a}\nspec: {ports: [{port: 99999}]}\n"),
		  "bad");
	ASSERT_OK(scan_step(mc, pl, dir, &n, &parsed), "bad scan");
	{
		struct diag dg = { 0 };

		manifest_cache_diag(mc, &dg);
		ASSERT_EQ(dg.nr_errors, 1, "the bad file's error");
		ASSERT_OK_PTR(diag_find(&dg, "bad.yaml:4"), "with its line");
		diag_free(&dg);
	}
	snprintf(path, sizeof(path), "%s/bad.yaml", dir);
	unlink(path);
	/* A walk that reports something (a FIFO named .yaml) has no digest, as manifest_digest(). */
	snprintf(path, sizeof(path), "%s/p.yaml", dir);
	if (ASSERT_OK(mkfifo(path, 0600), "fifo")) {
		struct model_event *evs = NULL;
		struct diag dg = { 0 };
		uint64_t d;
		size_t nr = 0;

		ASSERT_OK(manifest_cache_scan(mc, dir, &evs, &nr, &dg), "scan with a fifo");
		ASSERT_GT(dg.nr, 0, "the fifo reported");
		ASSERT_EQ(manifest_cache_digest(mc, &d), -ENODATA, "no digest");
		model_events_free(evs, nr);
		diag_free(&dg);
		unlink(path);
	}
	/* One object in two files: only a whole load decides. */
	ASSERT_OK(write_file(dir, "c.yaml", SVC("s1", "10.96.0.9")), "c");
	{
		struct model_event *evs = NULL;
		struct diag dg = { 0 };
		size_t nr = 0;

		ASSERT_EQ(manifest_cache_scan(mc, dir, &evs, &nr, &dg), -EAGAIN, "duplicate");
		ASSERT_EQ(nr, 0, "duplicate: no events");
		diag_free(&dg);
	}
out:
	pl_free(pl);
	manifest_cache_free(mc);
	for (const char *const *f = (const char *const[]){ "a.yaml", "b.yaml", "c.yaml", ".b.new",
							    "p.yaml", NULL };
	     *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		unlink(path);
	}
	rmdir(dir);
}

/* ---- base/sort.h against qsort ----------------------------------------------- */

#include "base/sort.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct rec3 {
	uint64_t a, b;
	uint32_t i;
};

static int cmp_rec(const void *pa, const void *pb)
{
	const struct rec3 *x = pa, *y = pb;

	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;	/* stability: input order */
}

void test_pipeline_sort(void)
{
	struct cgen p = { .rng = 0x1234567 };

	for (size_t n = 0; n < 5000; n = n * 3 + 1) {
		uint64_t *a = calloc(n + 1, sizeof(*a)), *b = calloc(n + 1, sizeof(*b));
		struct rec3 *r = calloc(n + 1, sizeof(*r)), *q = calloc(n + 1, sizeof(*q));

		for (size_t i = 0; i < n; i++) {
			/* Few distinct high bits, as ids packed with counts have. */
			a[i] = b[i] = (uint64_t)cgen_rnd(&p, 50) << 32 | cgen_rnd(&p, 1000) | (n % 2 ? 1ull << 60 : 0);
			r[i] = (struct rec3){ .a = cgen_rnd(&p, 7) * 0x100000001ull, .b = cgen_rnd(&p, 5), .i = (uint32_t)i };
		}
		memcpy(q, r, n * sizeof(*r));
		qsort(b, n, sizeof(*b), cmp_u64);
		ASSERT_OK(sort_u64(a, n), "sort_u64");
		ASSERT_OK(memcmp(a, b, n * sizeof(*a)), "same as qsort");
		qsort(q, n, sizeof(*q), cmp_rec);
		ASSERT_OK(sort_records_u64(r, n, sizeof(*r), offsetof(struct rec3, b)), "by b");
		ASSERT_OK(sort_records_u64(r, n, sizeof(*r), offsetof(struct rec3, a)), "then a");
		for (size_t i = 0; i < n; i++)
			if (!ASSERT_EQ(r[i].i, q[i].i, "stable (a, b) order"))
				break;
		free(a);
		free(b);
		free(r);
		free(q);
	}
}

/* ---- strmap_del / strmap_set against a plain array ------------------------------ */

void test_pipeline_strmap_del(void)
{
	struct cgen p = { .rng = 0xfeed };
	struct strmap m = { 0 };
	bool in[512] = { 0 };
	char key[16];

	for (int step = 0; step < 20000; step++) {
		int k = (int)cgen_rnd(&p, 512);

		snprintf(key, sizeof(key), "k%d", k);
		if (in[k] && cgen_rnd(&p, 2)) {
			if (!ASSERT_EQ((uintptr_t)strmap_del(&m, key), (uintptr_t)k + 1, "del"))
				break;
			in[k] = false;
		} else if (in[k]) {
			strmap_set(&m, key, (void *)(uintptr_t)(k + 1));
		} else {
			if (!ASSERT_OK(strmap_put(&m, key, (void *)(uintptr_t)(k + 1), NULL), "put"))
				break;
			in[k] = true;
		}
		if (step % 997)
			continue;
		/* Every key findable exactly when present. */
		for (int j = 0; j < 512; j++) {
			snprintf(key, sizeof(key), "k%d", j);
			if (!ASSERT_EQ((uintptr_t)strmap_get(&m, key), in[j] ? (uintptr_t)j + 1 : 0,
				       "get after deletes"))
				break;
		}
	}
	strmap_free(&m);
}
