// SPDX-License-Identifier: Apache-2.0
/*
 * The incremental control plane (image/pipeline.h) against a full build:
 * random object changes (Services, EndpointSlices, routes of every kind,
 * Namespaces, Pods; added, changed, deleted; ClusterIPs shared now and
 * then) applied one event at a time, committed at random points; after
 * every commit the pipeline's image must equal the image of a full load of
 * the same objects from scratch, entry by entry (img_diff).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#include "image/image.h"
#include "image/pipeline.h"
#include "input/manifest.h"
#include "test_progs.h"

#define NR_NS 4
#define NR_SVC 12
#define NR_ROUTES 10
#define NR_PODS 6
/* Object slots: namespaces, Services, one slice per Service, routes, pods. */
#define NR_SLOTS (NR_NS + 2 * NR_SVC + NR_ROUTES + NR_PODS)

struct prop {
	uint64_t rng;
	char *text[NR_SLOTS];	/* the object's YAML, NULL: absent */
};

static uint32_t rnd(struct prop *p, uint32_t n)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return (uint32_t)(p->rng % n);
}

/* Service i always lives in namespace i % NR_NS (a name is one object). */
static const char *svc_ns(int i)
{
	static char buf[NR_SVC][8];

	snprintf(buf[i], sizeof(buf[i]), "ns-%d", i % NR_NS);
	return buf[i];
}

static char *gen(struct prop *p, int slot)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (slot < NR_NS) {
		fprintf(f, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%d}\n", slot);
	} else if (slot < NR_NS + NR_SVC) {
		int i = slot - NR_NS;
		/* Now and then two Services on one ClusterIP. */
		int ip = rnd(p, 6) ? i : (int)rnd(p, NR_SVC);

		fprintf(f, "apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: %s}\n"
			"spec:\n  clusterIP: 10.96.0.%d\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
			i, svc_ns(i), ip + 1);
		if (rnd(p, 2))
			fprintf(f, "  - {name: alt, port: %d, targetPort: 9090}\n", 8080 + (int)rnd(p, 2));
		if (!rnd(p, 5))
			fprintf(f, "  sessionAffinity: ClientIP\n");
	} else if (slot < NR_NS + 2 * NR_SVC) {
		int i = slot - NR_NS - NR_SVC, n = (int)rnd(p, 4);

		fprintf(f, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: s%d-a, namespace: %s, labels: {kubernetes.io/service-name: s%d}}\n"
			"addressType: IPv4\nports: [{name: http, port: 8080}, {name: alt, port: 9090}]\n"
			"endpoints:%s\n", i, svc_ns(i), i, n ? "" : " []");
		for (int e = 0; e < n; e++)
			fprintf(f, "- {addresses: [10.1.%d.%d], conditions: {ready: %s}, nodeName: node-%d}\n",
				i, 1 + (int)rnd(p, 5), rnd(p, 4) ? "true" : "false", (int)rnd(p, 2));
	} else if (slot < NR_NS + 2 * NR_SVC + NR_ROUTES) {
		static const char *const kinds[] = { "HTTPRoute", "GRPCRoute", "TCPRoute" };
		int j = slot - NR_NS - 2 * NR_SVC, kind = (int)rnd(p, 3), parent = (int)rnd(p, NR_SVC);
		/*
		 * A slot's route stays in one namespace (a name is one object);
		 * a parent in that namespace makes it a producer route, else a
		 * consumer's.
		 */
		int ns = j % NR_NS;

		if (rnd(p, 3))
			parent = (int)(rnd(p, NR_SVC / NR_NS) * NR_NS + (uint32_t)ns);

		/* One name per slot and kind: a slot changing kind is a delete plus an add. */
		kind = j % 3;
		fprintf(f, "apiVersion: gateway.networking.k8s.io/%s\nkind: %s\n"
			"metadata: {name: r%d, namespace: ns-%d}\nspec:\n"
			"  parentRefs: [{group: \"\", kind: Service, name: s%d, namespace: %s%s}",
			kind == 2 ? "v1alpha2" : "v1", kinds[kind], j, ns, parent, svc_ns(parent),
			rnd(p, 2) ? ", port: 80" : "");
		if (!rnd(p, 4)) {
			int other = (int)rnd(p, NR_SVC);

			fprintf(f, ", {group: \"\", kind: Service, name: s%d, namespace: %s}", other,
				svc_ns(other));
		}
		fprintf(f, "]\n  rules:\n");
		for (int r = 0, nr = 1 + (int)rnd(p, 2); r < nr; r++) {
			int b1 = (int)rnd(p, NR_SVC), b2 = (int)rnd(p, NR_SVC);

			if (kind == 0)
				fprintf(f, "  - matches: [{path: {type: PathPrefix, value: /p%d}}]\n", r);
			else if (kind == 1)
				fprintf(f, "  - matches: [{method: {service: svc.S%d, method: M}}]\n", r);
			else
				fprintf(f, "  -\n");
			fprintf(f, "    backendRefs: [{name: s%d, namespace: %s, port: 80, weight: %d}, "
				"{name: s%d, namespace: %s, port: %d, weight: %d}]\n",
				b1, svc_ns(b1), 1 + (int)rnd(p, 9), b2, svc_ns(b2),
				rnd(p, 3) ? 80 : 8080, (int)rnd(p, 5));
		}
	} else {
		int k = slot - NR_NS - 2 * NR_SVC - NR_ROUTES;

		fprintf(f, "apiVersion: v1\nkind: Pod\nmetadata: {name: pod%d, namespace: ns-%d, "
			"uid: 00000000-0000-0000-0000-0000000000%02d}\n"
			"spec: {nodeName: node-%d, containers: [{name: c, image: i}]}\n"
			"status: {podIP: 10.1.%d.%d, podIPs: [{ip: 10.1.%d.%d}]}\n",
			k, k % NR_NS, k, (int)rnd(p, 2), 50 + k, k, 50 + k, k);
	}
	fclose(f);
	return buf;
}

/* The object of one YAML text as a PUT event. */
static int one_event(const char *yaml, struct model_event *ev)
{
	struct diag dg = { 0 };
	struct model_event *evs = NULL;
	struct model m;
	size_t nr = 0;
	int ret;

	model_init(&m);
	ret = manifest_load_buf(&m, "event.yaml", yaml, strlen(yaml), &dg);
	if (!ret)
		ret = model_take_events(&m, &evs, &nr);
	model_free(&m);
	if (!ret && nr != 1) {
		for (size_t i = 0; i < dg.nr; i++)
			test__printf("%s\n", dg.entries[i].msg);
		ret = -EINVAL;
	}
	diag_free(&dg);
	if (ret) {
		model_events_free(evs, nr);
		return ret;
	}
	*ev = evs[0];
	free(evs);
	return 0;
}

/* Key of a slot's object for a DELETE. */
static void slot_delete(int slot, struct model_event *ev, char *name, size_t len)
{
	memset(ev, 0, sizeof(*ev));
	ev->op = MODEL_DELETE;
	if (slot < NR_NS) {
		ev->kind = MODEL_NAMESPACE;
		snprintf(name, len, "ns-%d", slot);
	} else if (slot < NR_NS + NR_SVC) {
		ev->kind = MODEL_SERVICE;
		ev->namespace = svc_ns(slot - NR_NS);
		snprintf(name, len, "s%d", slot - NR_NS);
	} else if (slot < NR_NS + 2 * NR_SVC) {
		ev->kind = MODEL_ENDPOINT_SLICE;
		ev->namespace = svc_ns(slot - NR_NS - NR_SVC);
		snprintf(name, len, "s%d-a", slot - NR_NS - NR_SVC);
	} else if (slot < NR_NS + 2 * NR_SVC + NR_ROUTES) {
		int j = slot - NR_NS - 2 * NR_SVC;

		ev->kind = MODEL_ROUTE;
		ev->namespace = svc_ns(j % NR_NS);
		ev->route_kind = j % 3 == 0 ? ROUTE_HTTP : j % 3 == 1 ? ROUTE_GRPC : ROUTE_TCP;
		snprintf(name, len, "r%d", j);
	} else {
		int k = slot - NR_NS - 2 * NR_SVC - NR_ROUTES;

		ev->kind = MODEL_POD;
		ev->namespace = svc_ns(k % NR_NS);
		snprintf(name, len, "pod%d", k);
	}
	ev->name = name;
}

/* The image of every present object loaded from scratch. */
static int full_image(struct prop *p, struct img *out)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	char *all = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	for (int s = 0; s < NR_SLOTS; s++)
		if (p->text[s])
			fprintf(f, "---\n%s", p->text[s]);
	fclose(f);
	model_init(&m);
	ret = manifest_load_buf(&m, "all.yaml", all, len, &dg);
	if (!ret)
		ret = translate(&m, &dg, &res);
	if (!ret) {
		ret = img_build(&m, &res, out);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	free(all);
	return ret;
}

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

static bool same_image(struct prop *p, const struct img *got, int step, struct img *keep)
{
	struct img want;
	struct img_diff d;
	bool same;

	if (!ASSERT_OK(full_image(p, &want), "full image"))
		return false;
	if (!ASSERT_OK(img_diff(&want, got, &d), "img_diff")) {
		img_free(&want);
		return false;
	}
	same = d.nr == 0;
	if (!same) {
		test__printf("step %d: %zu differences, first: table %s op %d id %016llx\n", step,
			     d.nr, img_table_name(d.items[0].table), d.items[0].op,
			     (unsigned long long)d.items[0].id);
		for (size_t i = 0; i < d.nr && i < 12; i++) {
			const struct img_frontend *a = NULL, *b = NULL;

			for (size_t k = 0; k < want.nr_frontends; k++)
				if (want.frontends[k].id == d.items[i].id)
					a = &want.frontends[k];
			for (size_t k = 0; k < got->nr_frontends; k++)
				if (got->frontends[k].id == d.items[i].id)
					b = &got->frontends[k];
			test__printf("  %s op %d: want %s/%s:%u (%zu classes) got %s/%s:%u (%zu classes)\n",
				     img_table_name(d.items[i].table), d.items[i].op,
				     a ? a->svc_namespace : "-", a ? a->svc_name : "-", a ? a->port : 0,
				     a ? a->nr_classes : 0,
				     b ? b->svc_namespace : "-", b ? b->svc_name : "-", b ? b->port : 0,
				     b ? b->nr_classes : 0);
		}
		if (getenv("PIPELINE_DUMP"))
			for (int s = 0; s < NR_SLOTS; s++)
				if (p->text[s])
					test__printf("---\n%s", p->text[s]);
	}
	img_diff_free(&d);
	*keep = want;
	return same;
}

static void run_seed(uint64_t seed, int steps)
{
	struct prop p = { .rng = seed };
	struct pl *pl = NULL;
	struct pl_stats st;
	struct img prev, cur;
	bool have_prev = false;
	int incremental = 0, commits = 0;

	if (!ASSERT_OK(pl_new(NULL, NULL, &pl), "pl_new"))
		return;
	for (int step = 0; step < steps; step++) {
		int slot = (int)rnd(&p, NR_SLOTS);
		struct model_event ev;
		char name[32];
		int ret;

		if (p.text[slot] && !rnd(&p, 4)) {
			slot_delete(slot, &ev, name, sizeof(name));
			ret = pl_event(pl, &ev, NULL);
			if (!ASSERT_OK(ret, "delete event")) {
				test__printf("delete kind %d %s/%s\n", ev.kind,
					     ev.namespace ? ev.namespace : "", ev.name);
				break;
			}
			free(p.text[slot]);
			p.text[slot] = NULL;
		} else {
			char *text = gen(&p, slot);

			if (!ASSERT_OK_PTR(text, "gen") || !ASSERT_OK(one_event(text, &ev), "parse")) {
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
		if (rnd(&p, 3))
			continue;
		if (!ASSERT_OK(pl_commit(pl, &st), "commit"))
			break;
		commits++;
		incremental += !st.full;
		if (!ASSERT_TRUE(same_image(&p, pl_image(pl), step, &cur), "incremental == full")) {
			img_free(&cur);
			break;
		}
		if (!ASSERT_TRUE(same_removed(have_prev ? &prev : NULL, &cur, pl), "removed pairs")) {
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
	pl_free(pl);
	for (int s = 0; s < NR_SLOTS; s++)
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
	for (const char *const *f = (const char *const[]){ "a.yaml", "b.yaml", "c.yaml", ".b.new", NULL };
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
	struct prop p = { .rng = 0x1234567 };

	for (size_t n = 0; n < 5000; n = n * 3 + 1) {
		uint64_t *a = calloc(n + 1, sizeof(*a)), *b = calloc(n + 1, sizeof(*b));
		struct rec3 *r = calloc(n + 1, sizeof(*r)), *q = calloc(n + 1, sizeof(*q));

		for (size_t i = 0; i < n; i++) {
			/* Few distinct high bits, as ids packed with counts have. */
			a[i] = b[i] = (uint64_t)rnd(&p, 50) << 32 | rnd(&p, 1000) | (n % 2 ? 1ull << 60 : 0);
			r[i] = (struct rec3){ .a = rnd(&p, 7) * 0x100000001ull, .b = rnd(&p, 5), .i = (uint32_t)i };
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
