// SPDX-License-Identifier: Apache-2.0
/*
 * The incremental control plane against the kernel: random object changes
 * go through the pipeline (image/pipeline.h: per-Service translation, the
 * map mirror, deferred retire) into one pinned data path; after every
 * commit a second data path gets a full apply of the same objects loaded
 * from scratch, and the two must serve the same: every frontend, client
 * class, selector (route names, shares of every backend) and endpoint,
 * read back from the pinned maps (view/dpview.h). Now and then the agent
 * "restarts" (a new pipeline over the pinned maps, its mirror read from the
 * kernel) or someone deletes a frontend behind its back (the audit of the
 * next full resync counts and repairs it), or an apply fails (the next
 * commit applies what it left). After every commit, restart and failed
 * apply the HTTP engine's tables (pl_tables_get) serve as a full
 * translation of the same objects.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "datapath/cgroup.h"
#include "datapath/map_dump.h"
#include "image/image_apply.h"
#include "image/pipeline.h"
#include "lib/cluster_gen.h"
#include "test_progs.h"
#include "view/dpview.h"

struct side {
	char cg[4200], pin[128];
	struct dp *dp;
};

static int side_open(struct side *s, char which)
{
	char root[4096];
	struct dp_opts o = { 0 };
	int err = cgroup2_mount_path(root, sizeof(root));

	if (err)
		return err;
	snprintf(s->cg, sizeof(s->cg), "%s/gammad-plk-%d%c", root, (int)getpid(), which);
	snprintf(s->pin, sizeof(s->pin), "/sys/fs/bpf/gammad-plk-%d%c", (int)getpid(), which);
	if (mkdir(s->cg, 0755) && errno != EEXIST)
		return -errno;
	o.pin_dir = s->pin;
	o.cgroup = s->cg;
	return dp_open(&o, &s->dp);
}

static void side_close(struct side *s)
{
	dp_close(s->dp);
	s->dp = NULL;
	if (s->pin[0])
		dp_uninstall(s->pin);
	if (s->cg[0])
		rmdir(s->cg);
}

static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < *cap - *len)
			break;
		*cap = *cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
		*buf = realloc(*buf, *cap);
		if (!*buf)
			return;
	}
	*len += (size_t)n;
}

static int line_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	return strcmp(x ? x : "", y ? y : "");
}

/* Every entry of a pinned map of the client side, as hex lines in key order. */
static void client_map(char **buf, size_t *len, size_t *cap, const char *pin, const char *name)
{
	char path[256], **lines;
	struct map_dump d;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin, name);
	fd = bpf_obj_get(path);
	if (fd < 0 || map_dump_read(fd, &d)) {
		put(buf, len, cap, "%s: unreadable\n", name);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	lines = calloc(d.nr + 1, sizeof(*lines));
	for (size_t i = 0; lines && i < d.nr; i++) {
		const uint8_t *k = map_dump_key(&d, i), *v = map_dump_val(&d, i);
		char *l = calloc(2 * (d.key_size + d.val_size) + 2, 1);
		size_t n = 0;

		for (size_t j = 0; l && j < d.key_size; j++)
			n += (size_t)sprintf(l + n, "%02x", k[j]);
		if (l)
			l[n++] = ' ';
		for (size_t j = 0; l && j < d.val_size; j++)
			n += (size_t)sprintf(l + n, "%02x", v[j]);
		lines[i] = l;
	}
	if (lines)
		qsort(lines, d.nr, sizeof(*lines), line_cmp);
	for (size_t i = 0; lines && i < d.nr && *buf; i++)
		put(buf, len, cap, "%s %s\n", name, lines[i] ? lines[i] : "?");
	for (size_t i = 0; lines && i < d.nr; i++)
		free(lines[i]);
	free(lines);
	map_dump_free(&d);
}

/* What the pinned maps serve, without the kernel's ids. */
static char *served(const char *pin)
{
	struct dpv_maps m;
	struct dpv v;
	char *buf = malloc(4096);
	size_t len = 0, cap = 4096;

	if (!buf || dpv_maps_open(&m, pin)) {
		free(buf);
		return NULL;
	}
	buf[0] = 0;
	if (dpv_build(&m, &v)) {
		dpv_maps_close(&m);
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < v.nr_fes && buf; i++) {
		const struct dpv_frontend *fe = &v.fes[i];

		put(&buf, &len, &cap, "%s/%s %s %s:%u flags %x\n", fe->svc_ns, fe->svc_name,
		    fe->proto, fe->addr, fe->port, fe->val.flags);
		for (size_t c = 0; c < fe->nr_classes && buf; c++) {
			const struct dpv_selector *sel = dpv_selector(&v, fe->classes[c].sel);

			put(&buf, &len, &cap, "  class %s:", fe->classes[c].ns_name);
			if (!sel || !sel->present) {
				put(&buf, &len, &cap, " none\n");
				continue;
			}
			put(&buf, &len, &cap, " route %s/%s %s flags %x\n", sel->route_ns,
			    sel->route_name, sel->section, sel->val.flags);
			for (size_t k = 0; k < sel->nr_shares && buf; k++) {
				const struct dpv_backend *be = dpv_backend(&v, sel->shares[k].be_id);

				put(&buf, &len, &cap, "    %s/%s:%u %llu/%llu flags %x eps",
				    be ? be->namespace : "?", be ? be->name : "?", be ? be->port : 0,
				    (unsigned long long)sel->shares[k].num,
				    (unsigned long long)sel->shares[k].den, be ? be->val.flags : 0);
				for (size_t e = 0; be && e < be->nr_eps && buf; e++)
					put(&buf, &len, &cap, " %u.%u.%u.%u:%u", be->eps[e].addr[0],
					    be->eps[e].addr[1], be->eps[e].addr[2], be->eps[e].addr[3],
					    be->eps[e].port);
				put(&buf, &len, &cap, "\n");
			}
		}
	}
	dpv_free(&v);
	dpv_maps_close(&m);
	/* The client side: pod IPs (namespace ids are names' hashes, not the kernel's) and local endpoints. */
	if (buf)
		client_map(&buf, &len, &cap, pin, GAMMAD_MAP_POD);
	if (buf)
		client_map(&buf, &len, &cap, pin, GAMMAD_MAP_LOCAL_EP);
	return buf;
}

/* B gets a full apply of the objects from scratch; A and B must serve the same. */
static bool same_served(struct cgen *p, struct side *a, struct side *b, int step)
{
	struct ia_opts o = { .full = true };
	char *sa, *sb;
	struct img img;
	bool same;

	if (!ASSERT_OK(cgen_full_image(p, &img), "full image"))
		return false;
	ASSERT_OK(ia_apply(b->dp, &img, &o, NULL), "full apply");
	img_free(&img);
	sa = served(a->pin);
	sb = served(b->pin);
	same = sa && sb && !strcmp(sa, sb);
	if (!same)
		test__printf("step %d: incremental serves\n%s\nfull apply serves\n%s\n", step,
			     sa ? sa : "?", sb ? sb : "?");
	free(sa);
	free(sb);
	return same;
}

/* pl_opts.before_apply: a failed apply when the test says so (the kernel is not touched). */
static bool fail_apply;

static int before_apply(void *ctx, const struct img *img, struct ia_opts *o)
{
	(void)ctx;
	(void)img;
	(void)o;
	return fail_apply ? -EIO : 0;
}

static const struct pl_opts plk_opts = { .before_apply = before_apply };

/* The HTTP engine's tables of the pipeline serve as a full translation's. */
static bool same_tables(struct cgen *p, struct pl *pl, int step)
{
	struct pl_tables *t = pl_tables_get(pl);
	char *want = cgen_full_tables_dump(p), *got = t ? cgen_tables_dump(pl_tables_result(t)) : NULL;
	bool ok = want && got && !strcmp(want, got);

	if (!ok)
		test__printf("step %d: engine tables differ from a full translation:\n"
			     "want:\n%.2000s\ngot:\n%.2000s\n", step, want ? want : "-",
			     got ? got : "-");
	pl_tables_put(t);
	free(want);
	free(got);
	return ok;
}

/* The pipeline anew over the pinned maps, fed the objects as a whole model. */
static int restart(struct cgen *p, struct side *a, struct pl **pl)
{
	struct model_event ev;
	struct pl_stats st;
	int ret;

	pl_free(*pl);
	*pl = NULL;
	ret = pl_new(a->dp, &plk_opts, pl);
	for (int s = 0; s < CGEN_SLOTS && !ret; s++)
		if (p->text[s] && !(ret = cgen_event(p->text[s], &ev)))
			ret = pl_event(*pl, &ev, NULL);
	dp_mirror_drop(a->dp);	/* as a new process: the mirror is read from the kernel */
	return ret ?: pl_commit(*pl, &st);
}

/* Someone deletes a frontend entry: the next full resync counts and repairs it. */
static void tamper(struct side *a, struct pl *pl)
{
	int fd = dp_map_fd(a->dp, GAMMAD_MAP_FRONTEND);
	struct gammad_fe_key key;
	uint64_t before = pl_drift(pl);
	struct ia_stats st;

	if (bpf_map_get_next_key(fd, NULL, &key))
		return;		/* no frontend now */
	ASSERT_OK(bpf_map_delete_elem(fd, &key), "delete behind its back");
	ASSERT_OK(pl_resync(pl, true, &st), "full resync");
	ASSERT_GE(pl_drift(pl), before + 1, "drift counted");
	ASSERT_GE(st.frontends_flipped, 1, "frontend written again");
}

static void run(uint64_t seed, int steps)
{
	struct cgen p = { .rng = seed };
	struct side a = { 0 }, b = { 0 };
	struct pl *pl = NULL;
	int commits = 0, failed = 0;

	if (!ASSERT_OK(side_open(&a, 'a'), "data path a") ||
	    !ASSERT_OK(side_open(&b, 'b'), "data path b") ||
	    !ASSERT_OK(pl_new(a.dp, &plk_opts, &pl), "pl_new"))
		goto out;
	for (int step = 0; step < steps; step++) {
		int slot = (int)cgen_rnd(&p, CGEN_SLOTS);
		struct model_event ev;
		char name[32];

		if (p.text[slot] && !cgen_rnd(&p, 4)) {
			cgen_delete(slot, &ev, name, sizeof(name));
			if (!ASSERT_OK(pl_event(pl, &ev, NULL), "delete"))
				break;
			free(p.text[slot]);
			p.text[slot] = NULL;
		} else {
			char *text = cgen_object(&p, slot);

			if (!ASSERT_OK_PTR(text, "object") || !ASSERT_OK(cgen_event(text, &ev), "parse") ||
			    !ASSERT_OK(pl_event(pl, &ev, NULL), "put")) {
				free(text);
				break;
			}
			free(p.text[slot]);
			p.text[slot] = text;
		}
		if (cgen_rnd(&p, 4))
			continue;
		/* Now and then the apply fails: the next commit applies what it left. */
		if (!cgen_rnd(&p, 8)) {
			/* (the events may have changed nothing that is applied: then nothing fails) */
			int want = pl_pending(pl) ? -EIO : 0;

			fail_apply = true;
			ASSERT_EQ(pl_commit(pl, NULL), want, "failed apply");
			fail_apply = false;
			failed++;
			if (!ASSERT_TRUE(same_tables(&p, pl, step), "tables after a failed apply"))
				break;
		}
		if (!ASSERT_OK(pl_commit(pl, NULL), "commit"))
			break;
		commits++;
		if (!ASSERT_TRUE(same_tables(&p, pl, step), "engine tables == full"))
			break;
		if (!cgen_rnd(&p, 8) && (!ASSERT_OK(restart(&p, &a, &pl), "restart") ||
					 !ASSERT_TRUE(same_tables(&p, pl, step), "tables after a restart")))
			break;
		if (!cgen_rnd(&p, 8))
			tamper(&a, pl);
		if (!ASSERT_TRUE(same_served(&p, &a, &b, step), "incremental serves as full"))
			break;
	}
	test__printf("%d commits, %d failed applies\n", commits, failed);
out:
	pl_free(pl);
	for (int s = 0; s < CGEN_SLOTS; s++)
		free(p.text[s]);
	side_close(&a);
	side_close(&b);
}

/* A slot's text, put through the pipeline as the cgen's own would be. */
static bool put_text(struct cgen *p, struct pl *pl, int slot, const char *text)
{
	struct model_event ev;

	free(p->text[slot]);
	p->text[slot] = strdup(text);
	return ASSERT_OK_PTR(p->text[slot], "text") && ASSERT_OK(cgen_event(text, &ev), "parse") &&
	       ASSERT_OK(pl_event(pl, &ev, NULL), "put");
}

#define SLOT_SVC(i) (CGEN_NS + (i))
#define SLOT_SLICE(i) (CGEN_NS + CGEN_SVC + (i))
#define SLOT_ROUTE(j) (CGEN_NS + 2 * CGEN_SVC + (j))

/* TCPRoute rJ (namespace ns-0) on Service s<parent> to s8 with weight w. */
static bool put_route(struct cgen *p, struct pl *pl, int j, int parent, int w)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "apiVersion: gateway.networking.k8s.io/v1alpha2\n"
		 "kind: TCPRoute\nmetadata: {name: r%d, namespace: ns-0}\nspec:\n"
		 "  parentRefs: [{group: \"\", kind: Service, name: s%d, namespace: ns-0}]\n"
		 "  rules:\n  - backendRefs: [{name: s8, namespace: ns-0, port: 80, weight: %d}]\n",
		 j, parent, w);
	return put_text(p, pl, SLOT_ROUTE(j), buf);
}

/*
 * Two routes with the same backends share one content-addressed selector,
 * whose kernel object is named after the first route using it (in frontend
 * order). When the other one changes away or back, the name moves: the
 * frontend of the route nobody changed switches to the renamed selector.
 * An apply that writes only what the changed Services reach misses that
 * unless the change set names the selectors the changed frontends used.
 */
static void test_shared_selector(void)
{
	static const int svcs[] = { 0, 4, 8 };	/* all in ns-0 */
	struct cgen p = { 0 };
	struct side a = { 0 }, b = { 0 };
	struct pl *pl = NULL;
	char buf[512];
	bool ok = true;

	if (!ASSERT_OK(side_open(&a, 'a'), "data path a") ||
	    !ASSERT_OK(side_open(&b, 'b'), "data path b") ||
	    !ASSERT_OK(pl_new(a.dp, &plk_opts, &pl), "pl_new"))
		goto out;
	ok = put_text(&p, pl, 0, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-0}\n");
	for (size_t i = 0; ok && i < sizeof(svcs) / sizeof(svcs[0]); i++) {
		int s = svcs[i];

		snprintf(buf, sizeof(buf), "apiVersion: v1\nkind: Service\n"
			 "metadata: {name: s%d, namespace: ns-0}\nspec:\n  clusterIP: 10.96.0.%d\n"
			 "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n", s, s + 1);
		ok = put_text(&p, pl, SLOT_SVC(s), buf);
		snprintf(buf, sizeof(buf), "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			 "metadata: {name: s%d-a, namespace: ns-0, labels: "
			 "{kubernetes.io/service-name: s%d}}\naddressType: IPv4\n"
			 "ports: [{name: http, port: 8080}]\nendpoints:\n"
			 "- {addresses: [10.1.%d.1], conditions: {ready: true}}\n", s, s, s);
		ok = ok && put_text(&p, pl, SLOT_SLICE(s), buf);
	}
	ok = ok && put_route(&p, pl, 0, 0, 1) && put_route(&p, pl, 4, 4, 1) &&
	     ASSERT_OK(pl_commit(pl, NULL), "first commit") &&
	     ASSERT_TRUE(same_served(&p, &a, &b, 0), "shared selector");
	/* Each route away from the shared selector and back: the name moves both ways. */
	for (int step = 1; ok && step <= 4; step++) {
		int j = step <= 2 ? 0 : 4;
		struct pl_stats st;

		ok = put_route(&p, pl, j, j, step % 2 ? 2 : 1) &&
		     ASSERT_OK(pl_commit(pl, &st), "commit") &&
		     ASSERT_TRUE(st.apply.delta, "applied as a delta") &&
		     ASSERT_TRUE(same_served(&p, &a, &b, step), "renamed selector served");
	}
out:
	pl_free(pl);
	for (int s = 0; s < CGEN_SLOTS; s++)
		free(p.text[s]);
	side_close(&a);
	side_close(&b);
}

void test_pipeline_kernel(void)
{
	if (test__start_subtest("shared_selector"))
		test_shared_selector();
	for (uint64_t seed = 1; seed <= 3; seed++) {
		char name[32];

		snprintf(name, sizeof(name), "seed_%llu", (unsigned long long)seed);
		if (!test__start_subtest(name))
			continue;
		run(seed * 0x2545f4914f6cdd1dull, 400);
	}
}
