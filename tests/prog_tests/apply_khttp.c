// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's kernel HTTP tables (`gammad run --kernel-http`,
 * user/lib/image/image_khttp.c) in real pinned maps: after every ia_apply()
 * of changing manifests (the mesh conformance suite's, hand-written changes,
 * generated routes) the pinned tables are read back with get_next_key and
 * lookup only, from each live frontend's table_gen through
 * gammad_khcls_v1, and must hold exactly what kh_encode() gives for the
 * current translation (rule backends naming the kernel backend of their
 * Service port); requests run through the verified kh_run program
 * (BPF_PROG_TEST_RUN over the pinned maps) must get the verdicts
 * h1_parse_request() + ev_evaluate() give. Nothing of an earlier
 * generation may be left: every kernel HTTP entry belongs to a table a
 * live class names, within its counts, and the object table describes
 * exactly those tables. Also: an agent restart adopts the tables (nothing
 * written), --kernel-http off retires them all, and an apply SIGKILLed
 * anywhere leaves every live class on a complete table.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/ip_addr.h"
#include "datapath/map_dump.h"
#include "image/image.h"
#include "image/image_apply.h"
#include "image/image_khttp.h"
#include "image/pipeline.h"
#include "lib/cluster_gen.h"
#include "lib/dp_fixture.h"
#include "lib/khttp_gen.h"
#include "lib/khttp_user.h"
#include "lib/lab_env.h"
#include "lib/mesh_conf.h"
#include "lib/translate_fixture.h"
#include "test_progs.h"
#include "view/khview.h"
#include "view/metrics.h"
#include "skel/test_khttp.skel.h"

enum { K_CLS, K_TAB, K_ENT, K_RUL, K_RB, K_AL, K_FE, K_OBJ, NR_K };

static const char *const kmap_names[NR_K] = {
	[K_CLS] = GAMMAD_MAP_KH_CLASS, [K_TAB] = GAMMAD_MAP_KH_TABLE,
	[K_ENT] = GAMMAD_MAP_KH_ENTRY, [K_RUL] = GAMMAD_MAP_KH_RULE,
	[K_RB] = GAMMAD_MAP_KH_RB, [K_AL] = GAMMAD_MAP_KH_ALIAS,
	[K_FE] = GAMMAD_MAP_FRONTEND, [K_OBJ] = GAMMAD_MAP_OBJECTS,
};

struct world {
	struct dp_fixture fx;
	int fd[NR_K];
	struct test_khttp_bpf *skel;
	int st_fd;
	unsigned long classes, kernel, requests, applies;
	unsigned long reasons[GAMMAD_KH_R_MAX];	/* verdicts of our kh_run runs */
};

/* What the expected tables say, per kernel table id. */
struct want_tab {
	uint32_t tab;
	uint32_t nr_entries, nr_rules, nr_rbs;
	uint32_t slots[GAMMAD_KH_ENTRIES_MAX + 1];	/* per rule */
};

struct wants {
	struct want_tab *t;
	size_t nr;
};

static struct want_tab *want_get(struct wants *w, uint32_t tab)
{
	for (size_t i = 0; i < w->nr; i++)
		if (w->t[i].tab == tab)
			return &w->t[i];
	return NULL;
}

static int world_open(struct world *w)
{
	char path[PATH_MAX + 64];

	memset(w, 0, sizeof(*w));
	w->st_fd = -1;
	for (int i = 0; i < NR_K; i++)
		w->fd[i] = -1;
	if (fx_setup(&w->fx, 0, false))
		return -1;
	for (int i = 0; i < NR_K; i++) {
		snprintf(path, sizeof(path), "%s/%s", w->fx.pin_dir, kmap_names[i]);
		w->fd[i] = bpf_obj_get(path);
		if (w->fd[i] < 0)
			return -1;
	}
	/* The verified matcher, over the pinned tables. */
	w->skel = test_khttp_bpf__open();
	if (!w->skel)
		return -1;
	if (bpf_map__reuse_fd(w->skel->maps.gammad_khtab_v1, w->fd[K_TAB]) ||
	    bpf_map__reuse_fd(w->skel->maps.gammad_khent_v1, w->fd[K_ENT]) ||
	    bpf_map__reuse_fd(w->skel->maps.gammad_khrul_v1, w->fd[K_RUL]) ||
	    bpf_map__reuse_fd(w->skel->maps.gammad_khrb_v1, w->fd[K_RB]) ||
	    bpf_map__reuse_fd(w->skel->maps.gammad_khal_v1, w->fd[K_AL]))
		return -1;
	/* Its counters are the pinned ones: what gammactl stats and /metrics show. */
	snprintf(path, sizeof(path), "%s/%s", w->fx.pin_dir, GAMMAD_MAP_KH_STATS);
	w->st_fd = bpf_obj_get(path);
	if (w->st_fd < 0 || bpf_map__reuse_fd(w->skel->maps.gammad_khst_v1, w->st_fd))
		return -1;
	return test_khttp_bpf__load(w->skel);
}

static void world_close(struct world *w)
{
	test_khttp_bpf__destroy(w->skel);
	if (w->st_fd >= 0)
		close(w->st_fd);
	for (int i = 0; i < NR_K; i++)
		if (w->fd[i] >= 0)
			close(w->fd[i]);
	fx_teardown(&w->fx);
}

/* Keys of a pinned map (key_size bytes each), malloc'd. */
static size_t keys_of(int fd, size_t ksz, char **out)
{
	char cur[64], next[64];
	size_t nr = 0, cap = 0;
	char *keys = NULL;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (nr == cap) {
			cap = cap ? cap * 2 : 64;
			keys = realloc(keys, cap * ksz);
			if (!keys)
				break;
		}
		memcpy(keys + nr++ * ksz, next, ksz);
		memcpy(cur, next, ksz);
		prev = cur;
	}
	*out = keys;
	return keys ? nr : 0;
}

/* ---- one class: read back, compare, run requests -------------------------- */

static void put(char *buf, size_t *n, size_t cap, const char *s, size_t len)
{
	if (*n + len < cap) {
		memcpy(buf + *n, s, len);
		*n += len;
	}
}

static void run_request(struct world *w, const struct tr_class *cls, const struct kh_image *img,
			uint32_t tab, const char *head, size_t len, const char *what)
{
	struct gammad_kh_scratch *s = malloc(sizeof(*s));
	LIBBPF_OPTS(bpf_test_run_opts, o);
	struct khu_stats st = { 0 };
	uint32_t zero = 0;
	char why[256];
	int fd = bpf_map__fd(w->skel->maps.kh_scratch);

	if (!ASSERT_OK_PTR(s, "scratch"))
		return;
	khu_scratch(s, head, len, (uint32_t)rand(), (uint32_t)rand());
	s->tab = tab;
	if (ASSERT_OK(bpf_map_update_elem(fd, &zero, s, BPF_ANY), "scratch in") &&
	    ASSERT_OK(bpf_prog_test_run_opts(bpf_program__fd(w->skel->progs.kh_run), &o), "run") &&
	    ASSERT_OK(bpf_map_lookup_elem(fd, &zero, s), "scratch out")) {
		w->requests++;
		if (s->v.reason < GAMMAD_KH_R_MAX)
			w->reasons[s->v.reason]++;
		if (khu_check(cls, img, s, &st, why, sizeof(why))) {
			test__fail();
			test__printf("%s: pinned table %u: %s (action %u reason %s)\n  %.*s\n", what,
				     tab, why, s->v.action, kh_reason_str(s->v.reason), (int)len, head);
		}
	}
	free(s);
}

/* A request per entry built from its own strings, and two that match little. */
static void run_requests(struct world *w, const struct tr_class *cls, const struct kh_image *img,
			 uint32_t tab, const char *what)
{
	static const char miss[] = "GET /no/such/path?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char root[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
	char buf[4096];

	run_request(w, cls, img, tab, miss, sizeof(miss) - 1, what);
	run_request(w, cls, img, tab, root, sizeof(root) - 1, what);
	for (size_t i = 0; i < img->nr_entries; i++) {
		const struct gammad_kh_entry *e = &img->entries[i];
		bool q = false;
		size_t n = 0;
		const char *m = e->method[0] ? e->method : "GET";

		put(buf, &n, sizeof(buf), m, strnlen(m, sizeof(e->method)));
		put(buf, &n, sizeof(buf), " ", 1);
		put(buf, &n, sizeof(buf), e->path.len ? e->path.s : "/", e->path.len ?: 1);
		if (e->path_type == GAMMAD_KH_PATH_PREFIX && rand() % 2)
			put(buf, &n, sizeof(buf), "/x", 2);
		for (size_t c = 0; c < GAMMAD_KH_CONDS_MAX; c++) {
			const struct gammad_kh_cond *k = &e->conds[c];

			if (k->kind != GAMMAD_KH_COND_QUERY)
				continue;
			put(buf, &n, sizeof(buf), q ? "&" : "?", 1);
			put(buf, &n, sizeof(buf), k->name.s, k->name.len);
			put(buf, &n, sizeof(buf), "=", 1);
			put(buf, &n, sizeof(buf), k->value.s, k->value.len);
			q = true;
		}
		put(buf, &n, sizeof(buf), " HTTP/1.1\r\nHost: a.app\r\n", 25);
		for (size_t c = 0; c < GAMMAD_KH_CONDS_MAX; c++) {
			const struct gammad_kh_cond *k = &e->conds[c];

			if (k->kind != GAMMAD_KH_COND_HEADER)
				continue;
			put(buf, &n, sizeof(buf), k->name.s, k->name.len);
			put(buf, &n, sizeof(buf), ": ", 2);
			put(buf, &n, sizeof(buf), k->value.s, k->value.len);
			put(buf, &n, sizeof(buf), "\r\n", 2);
		}
		put(buf, &n, sizeof(buf), "\r\n", 2);
		run_request(w, cls, img, tab, buf, n, what);
	}
}

/* The kernel backend be_id is Service ns/name port (object table). */
static bool backend_is(struct world *w, uint32_t be_id, const struct tr_backend *b)
{
	struct gammad_obj_key k = { .kind = GAMMAD_OBJ_BACKEND, .id = be_id };
	struct gammad_obj_val v;

	return !bpf_map_lookup_elem(w->fd[K_OBJ], &k, &v) && v.hash &&
	       !strcmp(v.namespace, b->namespace) && !strcmp(v.name, b->name) && v.port == b->port;
}

static int check_class(struct world *w, const struct img *img, const struct img_frontend *f,
		       const struct tr_class *cls, struct wants *wants, const char *what)
{
	uint32_t ns_id = cls->client_namespace ? img_ns_id(img, cls->client_namespace) : 0;
	struct gammad_fe_key fk;
	struct gammad_fe_val fv;
	struct gammad_cons_key ck;
	struct gammad_kh_class_val cv;
	struct gammad_kh_table t;
	struct kh_image want;
	struct want_tab *wt;
	int bad = 0;

	if (!ASSERT_OK(kh_encode(cls, f->port, &want), "encode"))
		return 1;
	dp_fe_key(&fk, f->addr.family, f->addr.addr, f->port, f->protocol);
	ck.ns_id = ns_id;
	if (bpf_map_lookup_elem(w->fd[K_FE], &fk, &fv) ||
	    (ck.table_gen = fv.table_gen, bpf_map_lookup_elem(w->fd[K_CLS], &ck, &cv)) ||
	    bpf_map_lookup_elem(w->fd[K_TAB], &cv.tab, &t)) {
		test__printf("%s: %s/%s:%u class %s: no kernel table\n", what, f->svc_namespace,
			     f->svc_name, f->port, cls->client_namespace ?: "default");
		kh_image_free(&want);
		return 1;
	}
	w->classes++;
	w->kernel += !t.engine_reason;
	bad |= memcmp(&t, &want.tab, sizeof(t)) != 0;
	for (uint32_t i = 0; i < want.nr_entries && !bad; i++) {
		struct gammad_kh_key k = { .tab = cv.tab, .idx = i };
		struct gammad_kh_entry e;

		bad |= bpf_map_lookup_elem(w->fd[K_ENT], &k, &e) ||
		       memcmp(&e, &want.entries[i], sizeof(e));
	}
	for (uint32_t i = 0; i < want.nr_rules && !bad; i++) {
		struct gammad_kh_key k = { .tab = cv.tab, .idx = i };
		struct gammad_kh_rule r;

		bad |= bpf_map_lookup_elem(w->fd[K_RUL], &k, &r) ||
		       memcmp(&r, &want.rules[i], sizeof(r));
		for (uint32_t s = 0; s < want.rules[i].nr_slots && !bad; s++) {
			struct gammad_kh_alias_key ak = { .tab = cv.tab, .rule = i, .slot = s };
			struct gammad_alias_val av;

			bad |= bpf_map_lookup_elem(w->fd[K_AL], &ak, &av) ||
			       memcmp(&av, &want.slots[want.slot_base[i] + s], sizeof(av));
		}
	}
	for (uint32_t i = 0; i < want.nr_rbs && !bad; i++) {
		struct gammad_kh_key k = { .tab = cv.tab, .idx = i };
		struct gammad_kh_rb rb;
		uint32_t be;

		bad |= bpf_map_lookup_elem(w->fd[K_RB], &k, &rb);
		be = rb.be_id;
		rb.be_id = 0;
		bad |= memcmp(&rb, &want.rbs[i], sizeof(rb)) ||
		       !backend_is(w, be, want.rb_src[i]);
		/* its response edits: the record exactly when there are some */
		k.idx = i | GAMMAD_KH_RB_RESP;
		if (kh_rb_edits_response(&want, i))
			bad |= bpf_map_lookup_elem(w->fd[K_RB], &k, &rb) ||
			       memcmp(&rb, &want.resp[i], sizeof(rb));
		else
			bad |= !bpf_map_lookup_elem(w->fd[K_RB], &k, &rb);
	}
	if (bad) {
		test__printf("%s: %s/%s:%u class %s: pinned table %u is not the encoding\n", what,
			     f->svc_namespace, f->svc_name, f->port,
			     cls->client_namespace ?: "default", cv.tab);
	} else {
		run_requests(w, cls, &want, cv.tab, what);
	}
	wt = want_get(wants, cv.tab);
	if (!wt) {
		wants->t = realloc(wants->t, (wants->nr + 1) * sizeof(*wants->t));
		wt = &wants->t[wants->nr++];
		memset(wt, 0, sizeof(*wt));
		wt->tab = cv.tab;
		wt->nr_entries = (uint32_t)want.nr_entries;
		wt->nr_rules = (uint32_t)want.nr_rules;
		wt->nr_rbs = (uint32_t)want.nr_rbs;
		for (size_t i = 0; i < want.nr_rules && i <= GAMMAD_KH_ENTRIES_MAX; i++)
			wt->slots[i] = want.rules[i].nr_slots;
	}
	kh_image_free(&want);
	return bad;
}

/* Every kernel HTTP entry belongs to a table a live class names, within its counts. */
static int check_leftovers(struct world *w, struct wants *wants, const char *what)
{
	char *keys;
	size_t n;
	int bad = 0;

	n = keys_of(w->fd[K_TAB], 4, &keys);
	for (size_t i = 0; i < n; i++)
		bad |= !want_get(wants, ((uint32_t *)keys)[i]);
	if (n != wants->nr)
		bad = 1;
	free(keys);
	for (int m = K_ENT; m <= K_RB; m++) {
		n = keys_of(w->fd[m], sizeof(struct gammad_kh_key), &keys);
		for (size_t i = 0; i < n; i++) {
			const struct gammad_kh_key *k = (void *)(keys + i * sizeof(*k));
			struct want_tab *wt = want_get(wants, k->tab);
			uint32_t lim = !wt ? 0 : m == K_ENT ? wt->nr_entries :
				       m == K_RUL ? wt->nr_rules : wt->nr_rbs;

			/* a rule backend's response edits (GAMMAD_KH_RB_RESP) count as it */
			if ((m == K_RB ? k->idx & ~GAMMAD_KH_RB_RESP : k->idx) >= lim) {
				test__printf("%s: %s (%u, %u) left behind\n", what, kmap_names[m],
					     k->tab, k->idx);
				bad = 1;
			}
		}
		free(keys);
	}
	n = keys_of(w->fd[K_AL], sizeof(struct gammad_kh_alias_key), &keys);
	for (size_t i = 0; i < n; i++) {
		const struct gammad_kh_alias_key *k = (void *)(keys + i * sizeof(*k));
		struct want_tab *wt = want_get(wants, k->tab);

		if (!wt || k->rule >= wt->nr_rules || k->slot >= wt->slots[k->rule]) {
			test__printf("%s: alias slot (%u, %u, %u) left behind\n", what, k->tab,
				     k->rule, k->slot);
			bad = 1;
		}
	}
	free(keys);
	/* Class entries: only of live generations (the check found each one). */
	n = keys_of(w->fd[K_CLS], sizeof(struct gammad_cons_key), &keys);
	if (n != w->classes) {
		test__printf("%s: %zu class entries for %lu live classes\n", what, n, w->classes);
		bad = 1;
	}
	free(keys);
	n = keys_of(w->fd[K_OBJ], sizeof(struct gammad_obj_key), &keys);
	{
		size_t objs = 0;

		for (size_t i = 0; i < n; i++) {
			const struct gammad_obj_key *k = (void *)(keys + i * sizeof(*k));

			if (k->kind != GAMMAD_OBJ_KH_TABLE)
				continue;
			objs++;
			bad |= !want_get(wants, k->id);
		}
		if (objs != wants->nr) {
			test__printf("%s: %zu table objects for %zu tables\n", what, objs, wants->nr);
			bad = 1;
		}
	}
	free(keys);
	return bad;
}

/* The pinned tables are those of (img, res); 0 or failures. */
static int check_world(struct world *w, const struct img *img, const struct tr_result *res,
		       const char *what)
{
	struct wants wants = { 0 };
	int bad = 0;

	w->classes = 0;
	for (size_t i = 0; i < img->nr_frontends; i++) {
		const struct img_frontend *f = &img->frontends[i];
		const struct tr_port *p = NULL;

		if (f->protocol != L4_TCP)
			continue;
		for (size_t j = 0; j < res->nr_ports && !p; j++)
			if (!strcmp(res->ports[j].svc->meta.namespace, f->svc_namespace) &&
			    !strcmp(res->ports[j].svc->meta.name, f->svc_name) &&
			    res->ports[j].port->port == f->port &&
			    res->ports[j].port->protocol == f->protocol)
				p = &res->ports[j];
		for (size_t c = 0; p && c < p->nr_classes; c++)
			if (p->classes[c].nr_entries)
				bad |= check_class(w, img, f, &p->classes[c], &wants, what);
	}
	bad |= check_leftovers(w, &wants, what);
	free(wants.t);
	if (bad)
		test__fail();
	return bad;
}

/* ---- applies ------------------------------------------------------------------ */

struct built {
	struct tfx f;
	struct img img;
	struct ia_kh_set kh;
};

static int build(struct built *b, const char *yaml)
{
	struct img_opts io = { .http_engine = true };

	memset(&b->kh, 0, sizeof(b->kh));
	if (tfx_setup(&b->f, yaml))
		return -1;
	if (img_build_opts(&b->f.m, &b->f.res, &io, &b->img)) {
		tfx_free(&b->f);
		return -1;
	}
	if (ia_kh_build(&b->img, &b->f.res, &b->kh)) {
		img_free(&b->img);
		tfx_free(&b->f);
		return -1;
	}
	return 0;
}

static void built_free(struct built *b)
{
	ia_kh_set_free(&b->kh);
	img_free(&b->img);
	tfx_free(&b->f);
}

static int apply(struct world *w, struct built *b, struct ia_stats *st)
{
	struct ia_opts o = { .khttp = &b->kh, .full = true };

	w->applies++;
	return ia_apply(w->fx.dp, &b->img, &o, st);
}

#define ROUTE(body)                                                                      \
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"               \
	"metadata: {name: r, namespace: app}\nspec:\n"                                   \
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n"            \
	"  rules:\n" body

static const char *const variants[] = {
	/* 0: one path rule, two weighted backends */
	ROUTE("  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
	      "    backendRefs: [{name: b1, port: 80, weight: 3}, {name: b2, port: 80, weight: 1}]\n"
	      "  - backendRefs: [{name: b3, port: 80}]\n"),
	/* 1: the weights change */
	ROUTE("  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
	      "    backendRefs: [{name: b1, port: 80, weight: 1}, {name: b2, port: 80, weight: 1}]\n"
	      "  - backendRefs: [{name: b3, port: 80}]\n"),
	/* 2: header match, header modifier, redirect, an empty backend */
	ROUTE("  - matches: [{headers: [{name: x-env, value: canary}], method: GET}]\n"
	      "    filters: [{type: RequestHeaderModifier, requestHeaderModifier:\n"
	      "      {add: [{name: x-mesh, value: k}], remove: [x-drop]}}]\n"
	      "    backendRefs: [{name: b2, port: 80}]\n"
	      "  - matches: [{path: {type: Exact, value: /old}}]\n"
	      "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath,"
	      " replaceFullPath: /new}, statusCode: 301}}]\n"
	      "  - matches: [{queryParams: [{name: q, value: \"1\"}]}]\n"
	      "    backendRefs: [{name: bempty, port: 80}]\n"
	      "  - backendRefs: [{name: b1, port: 80}]\n"),
	/* 3: 2 plus a consumer route for namespace client */
	ROUTE("  - matches: [{headers: [{name: x-env, value: canary}], method: GET}]\n"
	      "    filters: [{type: RequestHeaderModifier, requestHeaderModifier:\n"
	      "      {add: [{name: x-mesh, value: k}], remove: [x-drop]}}]\n"
	      "    backendRefs: [{name: b2, port: 80}]\n"
	      "  - backendRefs: [{name: b1, port: 80}]\n"
	      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	      "metadata: {name: c, namespace: client}\nspec:\n"
	      "  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app, port: 80}]\n"
	      "  rules:\n"
	      "  - matches: [{path: {type: PathPrefix, value: /c}}]\n"
	      "    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch,"
	      " replacePrefixMatch: /d}}}]\n"
	      "    backendRefs: [{name: b3, port: 80}]\n"),
	/* 4: a regex: the engine's table */
	ROUTE("  - matches: [{path: {type: RegularExpression, value: \"/v[0-9]+\"}}]\n"
	      "    backendRefs: [{name: b1, port: 80}]\n"),
	/* 5: no route at all */
	NULL,
	/* 6: 2 with another header value: the same L4 union, only the HTTP table changes */
	ROUTE("  - matches: [{headers: [{name: x-env, value: canary}], method: GET}]\n"
	      "    filters: [{type: RequestHeaderModifier, requestHeaderModifier:\n"
	      "      {add: [{name: x-mesh, value: k2}], remove: [x-drop]}}]\n"
	      "    backendRefs: [{name: b2, port: 80}]\n"
	      "  - matches: [{path: {type: Exact, value: /old}}]\n"
	      "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath,"
	      " replaceFullPath: /new}, statusCode: 301}}]\n"
	      "  - matches: [{queryParams: [{name: q, value: \"1\"}]}]\n"
	      "    backendRefs: [{name: bempty, port: 80}]\n"
	      "  - backendRefs: [{name: b1, port: 80}]\n"),
};

#define NR_VARIANTS (sizeof(variants) / sizeof(variants[0]))

static void subtest_changes(void)
{
	static const int order[] = { 0, 1, 2, 6, 2, 3, 4, 5, 3, 0, 2, 5, 1 };
	struct world w;
	struct ia_stats st;
	char what[64];

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct built b;

		snprintf(what, sizeof(what), "step %zu (variant %d)", i, order[i]);
		if (!ASSERT_OK(build(&b, variants[order[i]]), what))
			continue;
		if (ASSERT_OK(apply(&w, &b, &st), what))
			check_world(&w, &b.img, &b.f.res, what);
		built_free(&b);
	}
	test__printf("changes: %lu applies, %lu requests through the pinned tables\n",
		     w.applies, w.requests);
	ASSERT_GT(w.requests, 0, "requests");
out:
	world_close(&w);
}

/* The suite's Services get their ClusterIPs from the cluster: give them some. */
static int give_cluster_ips(struct tfx *f)
{
	char ip[32];

	for (size_t i = 0; i < f->m.services.nr; i++) {
		struct k8s_service *svc = f->m.services.items[i];

		if (svc->nr_cluster_ips || svc->type != SVC_CLUSTER_IP)
			continue;
		snprintf(ip, sizeof(ip), "10.97.%zu.%zu", i / 200, i % 200 + 1);
		if (ip_addr_parse(ip, &svc->cluster_ips[0]))
			return -1;
		svc->nr_cluster_ips = 1;
	}
	return tfx_translate(f);
}

static void subtest_conformance(void)
{
	struct ydoc_set set;
	const struct ydoc *d;
	yaml_node_t *tests;
	unsigned long classes = 0, kernel = 0;
	struct world w;
	size_t n;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	n = mesh_conf_load(&set, &d, &tests);
	/* Each test's manifests replace the last ones: every apply changes the tables. */
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *test = yseq_at(d, tests, i);
		const char *name = mesh_conf_str(d, test, "shortName");
		struct built b = { 0 };
		struct img_opts io = { .http_engine = true };
		struct ia_stats st;

		tfx_init(&b.f);
		if (!ASSERT_OK(mesh_conf_load_test(&b.f, d, test), name) ||
		    !ASSERT_OK(give_cluster_ips(&b.f), name)) {
			tfx_free(&b.f);
			continue;
		}
		if (ASSERT_OK(img_build_opts(&b.f.m, &b.f.res, &io, &b.img), name) &&
		    ASSERT_OK(ia_kh_build(&b.img, &b.f.res, &b.kh), name) &&
		    ASSERT_OK(apply(&w, &b, &st), name)) {
			check_world(&w, &b.img, &b.f.res, name);
			classes += w.classes;
			kernel += w.kernel;
			w.kernel = 0;
		}
		ia_kh_set_free(&b.kh);
		img_free(&b.img);
		tfx_free(&b.f);
	}
	if (n)
		ydoc_set_free(&set);
	test__printf("conformance: %zu tests applied, %lu class tables checked (%lu the kernel's), "
		     "%lu requests through the pinned tables\n", n, classes, kernel, w.requests);
	if (n)	/* 0: no shared dir (skipped), or a load failure already asserted */
		ASSERT_GT(classes, 0, "class tables");
out:
	world_close(&w);
}

/* Generated routes (lib/khttp_gen.h), each apply replacing the last. */
static void subtest_generated(void)
{
	unsigned long classes = 0, kernel = 0, skipped = 0, failed = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	struct ia_stats st;
	struct world w;
	char what[64];
	int i;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	for (i = 0; i < 80 && failed < 3; i++) {
		char *yaml = khg_routes(&rng);
		struct built b;

		if (!ASSERT_OK_PTR(yaml, "generate"))
			break;
		snprintf(what, sizeof(what), "generated #%d", i);
		if (build(&b, yaml)) {
			skipped++;	/* an invalid combination: the translator said why */
			free(yaml);
			continue;
		}
		w.kernel = 0;
		if (ASSERT_OK(apply(&w, &b, &st), what) &&
		    check_world(&w, &b.img, &b.f.res, what)) {
			test__printf("%s", yaml);
			failed++;
		}
		classes += w.classes;
		kernel += w.kernel;
		built_free(&b);
		free(yaml);
	}
	test__printf("generated: %d route sets (%lu did not translate), %lu class tables checked "
		     "(%lu the kernel's), %lu requests through the pinned tables\n", i, skipped,
		     classes, kernel, w.requests);
	ASSERT_GT(kernel, 0, "kernel tables");
out:
	world_close(&w);
}

/*
 * Many tables in one apply: every kernel HTTP map gets more entries than
 * one BPF_MAP_UPDATE_BATCH chunk (MAP_WRITE_CHUNK) and the write queue
 * more bytes than it holds before an early flush (~20 MB of records); read back from the
 * kernel, every table must be its encoding, after the cold apply, after
 * every table changed, and after the change back.
 */
#define MANY_SVCS 40	/* the fixture's frontends hold 63 */
#define MANY_ROUTES 2	/* per Service, MANY_RULES rules each (at most 16), 2 matches per rule */
#define MANY_RULES 16

static char *many_yaml(const char *tag)
{
	size_t cap = 4u << 20, n = 0;
	char *y = malloc(cap);

	for (int i = 0; y && i < MANY_SVCS; i++) {
		n += snprintf(y + n, cap - n,
			      "---\napiVersion: v1\nkind: Service\nmetadata: {name: m%d, namespace: app}\n"
			      "spec:\n  clusterIP: 10.96.3.%d\n  ports: [{name: http, port: 80}]\n",
			      i, i + 1);
		for (int rt = 0; rt < MANY_ROUTES; rt++) {
			n += snprintf(y + n, cap - n,
				      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
				      "metadata: {name: m%d-%d, namespace: app}\nspec:\n"
				      "  parentRefs: [{group: \"\", kind: Service, name: m%d, port: 80}]\n"
				      "  rules:\n", i, rt, i);
			for (int r = 0; r < MANY_RULES; r++)
				n += snprintf(y + n, cap - n,
					      "  - matches: [{path: {type: PathPrefix, value: /%s/%d/%d/%d}},\n"
					      "      {path: {type: Exact, value: /x/%s/%d/%d/%d}}]\n"
					      "%s"
					      "    backendRefs: [{name: b1, port: 80, weight: %d},"
					      " {name: b2, port: 80, weight: 1}]\n",
					      tag, i, rt, r, tag, i, rt, r, r % 3 ? "" :
					      "    filters: [{type: ResponseHeaderModifier, responseHeaderModifier:\n"
					      "      {add: [{name: x-many, value: v}]}}]\n", r % 5 + 1);
		}
	}
	return y;
}

static void subtest_many(void)
{
	static const char *const tags[] = { "a", "b", "a" };
	struct ia_stats st;
	struct world w;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		char *yaml = many_yaml(tags[i]), what[32];
		struct built b;
		size_t nr;
		char *keys;

		snprintf(what, sizeof(what), "many, step %zu", i);
		if (!ASSERT_OK_PTR(yaml, "yaml") || !ASSERT_OK(build(&b, yaml), what)) {
			free(yaml);
			break;
		}
		w.kernel = 0;
		if (ASSERT_OK(apply(&w, &b, &st), what)) {
			ASSERT_EQ(st.kh_tables_written, MANY_SVCS, "tables written");
			check_world(&w, &b.img, &b.f.res, what);
			ASSERT_EQ(w.kernel, MANY_SVCS, "the kernel's tables");
			/* more than one chunk of each map (else this tests no boundary) */
			for (int m = K_ENT; m <= K_AL; m++) {
				nr = keys_of(w.fd[m], m == K_AL ? sizeof(struct gammad_kh_alias_key) :
					     sizeof(struct gammad_kh_key), &keys);
				free(keys);
				if (!ASSERT_GT(nr, MAP_WRITE_CHUNK, kmap_names[m]))
					break;
			}
		}
		built_free(&b);
		free(yaml);
	}
out:
	world_close(&w);
}

/* A restarted agent adopts the tables; --kernel-http off retires them. */
static void subtest_restart(void)
{
	struct ia_stats st;
	struct built b;
	struct world w;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	if (!ASSERT_OK(build(&b, variants[3]), "build"))
		goto out;
	if (ASSERT_OK(apply(&w, &b, &st), "first apply"))
		ASSERT_GT(st.kh_tables_written, 0, "tables written");
	dp_close(w.fx.dp);
	w.fx.dp = NULL;
	if (ASSERT_OK(fx_dp_open(&w.fx, &w.fx.dp), "reopen") &&
	    ASSERT_OK(apply(&w, &b, &st), "apply after restart")) {
		ASSERT_EQ(st.kh_tables_written, 0, "tables written after restart");
		ASSERT_EQ(st.frontends_flipped, 0, "frontends flipped after restart");
		ASSERT_EQ(st.retired, 0, "retired after restart");
		check_world(&w, &b.img, &b.f.res, "restart");
	}
	/* Off: the same image without tables. */
	if (w.fx.dp && ASSERT_OK(ia_apply(w.fx.dp, &b.img, &(struct ia_opts){ .full = true }, &st),
				 "apply without --kernel-http")) {
		struct wants empty = { 0 };

		ASSERT_GT(st.retired, 0, "retired");
		w.classes = 0;
		ASSERT_OK(check_leftovers(&w, &empty, "off"), "nothing left with the flag off");
	}
	built_free(&b);
out:
	world_close(&w);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * Every class entry of a live generation names a complete table: its
 * table entry and everything below it present. What a killed apply left
 * may be there too (the next apply retires it).
 */
static int check_complete(struct world *w, const char *what)
{
	char *keys;
	size_t n = keys_of(w->fd[K_CLS], sizeof(struct gammad_cons_key), &keys);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct gammad_cons_key *ck = (void *)(keys + i * sizeof(*ck));
		struct gammad_kh_class_val cv;
		struct gammad_kh_table t;
		char *fk;
		size_t nf = keys_of(w->fd[K_FE], sizeof(struct gammad_fe_key), &fk);
		bool live = false;

		for (size_t j = 0; j < nf && !live; j++) {
			struct gammad_fe_val fv;

			live = !bpf_map_lookup_elem(w->fd[K_FE], fk + j * sizeof(struct gammad_fe_key),
						    &fv) && fv.table_gen == ck->table_gen;
		}
		free(fk);
		if (!live)
			continue;
		if (bpf_map_lookup_elem(w->fd[K_CLS], ck, &cv) ||
		    bpf_map_lookup_elem(w->fd[K_TAB], &cv.tab, &t)) {
			test__printf("%s: live class (%u, %u) without its table\n", what,
				     ck->table_gen, ck->ns_id);
			bad = 1;
			continue;
		}
		for (uint32_t e = 0; e < t.nr_entries; e++) {
			struct gammad_kh_key k = { .tab = cv.tab, .idx = e };
			struct gammad_kh_entry ent;
			struct gammad_kh_rule r;

			if (bpf_map_lookup_elem(w->fd[K_ENT], &k, &ent) ||
			    (k.idx = ent.rule, bpf_map_lookup_elem(w->fd[K_RUL], &k, &r))) {
				test__printf("%s: table %u entry %u incomplete\n", what, cv.tab, e);
				bad = 1;
				break;
			}
		}
	}
	free(keys);
	return bad;
}

#define KILLS_WANTED 20
#define KILL_TRIES 300

struct killed_ctx {
	struct world *w;
	struct built *b;
};

static void killed_run(void *arg, int i)
{
	struct killed_ctx *k = arg;

	apply(k->w, &k->b[i], NULL);
}

static void killed_check(void *arg, int n, int i, const char *when)
{
	struct killed_ctx *k = arg;
	struct ia_stats st;
	char next[96];

	ASSERT_OK(check_complete(k->w, when), when);
	snprintf(next, sizeof(next), "kill %d: the next apply", n);
	if (ASSERT_OK(apply(k->w, &k->b[i], &st), next))
		check_world(k->w, &k->b[i].img, &k->b[i].f.res, next);
}

static void subtest_killed(void)
{
	static const int vs[] = { 0, 3, 2, 1 };
	struct built b[4];
	struct ia_stats st;
	struct world w;
	struct killed_ctx k = { .w = &w, .b = b };
	double dur = 0;
	int nb = 0, killed;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	for (nb = 0; nb < 4; nb++)
		if (!ASSERT_OK(build(&b[nb], variants[vs[nb]]), "build"))
			goto out;
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 4; i++) {
			double t0 = now_us();

			if (!ASSERT_OK(apply(&w, &b[i], &st), "clean apply"))
				goto out;
			dur = dur > now_us() - t0 ? dur : now_us() - t0;
		}
	killed = fx_kill_applies(dur, 4, KILL_TRIES, KILLS_WANTED, killed_run, killed_check, &k);
	test__printf("killed: %d children killed mid-apply, %lu requests checked\n", killed,
		     w.requests);
	ASSERT_EQ(killed, KILLS_WANTED, "children killed mid-apply");
out:
	while (nb-- > 0)
		built_free(&b[nb]);
	world_close(&w);
}

/* Does text hold line (a whole line)? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
			return true;
	return false;
}

/*
 * /metrics and gammactl stats: the counters of our kh_run runs over the
 * pinned maps, and each class served by the kernel or the engine with why.
 */
static void subtest_view(void)
{
	static const char *const cls_fmt =
		"gammad_khttp_class_info{namespace=\"app\",service=\"a\",port=\"80\","
		"address=\"10.96.0.10\",class=\"%s\",served_by=\"%s\",reason=\"%s\"} 1";
	char line[512], *buf = NULL, *out = NULL;
	struct ia_stats st;
	struct built b;
	struct world w;
	size_t len;

	if (!ASSERT_OK(world_open(&w), "world"))
		goto out;
	if (!ASSERT_OK(build(&b, variants[3]), "build"))
		goto out;
	if (ASSERT_OK(apply(&w, &b, &st), "apply"))
		check_world(&w, &b.img, &b.f.res, "view");
	ASSERT_EQ(w.classes, 2, "classes of variant 3");
	built_free(&b);
	ASSERT_GT(w.reasons[GAMMAD_KH_R_SERVED], 0, "served by our runs");
	if (ASSERT_OK(metrics_render_buf(w.fx.pin_dir, NULL, &buf, &len), "metrics")) {
		for (unsigned int r = 0; r < GAMMAD_KH_R_MAX; r++) {
			snprintf(line, sizeof(line), "gammad_khttp_requests_total{reason=\"%s\"} %lu",
				 khv_reason_name(r), w.reasons[r]);
			ASSERT_TRUE(has_line(buf, line), line);
		}
		snprintf(line, sizeof(line), cls_fmt, "default", "kernel", "");
		ASSERT_TRUE(has_line(buf, line), line);
		snprintf(line, sizeof(line), cls_fmt, "client", "kernel", "");
		ASSERT_TRUE(has_line(buf, line), line);
		if (!ASSERT_TRUE(has_line(buf, "gammad_khttp_classes{served_by=\"kernel\",reason=\"\"} 2"),
				 "two kernel classes"))
			test__printf("%s", strstr(buf, "# HELP gammad_khttp_class_info") ?: buf);
	}
	free(buf);
	buf = NULL;
	/* A regex: the class is the engine's, and says why. */
	if (ASSERT_OK(build(&b, variants[4]), "build regex")) {
		ASSERT_OK(apply(&w, &b, &st), "apply regex");
		built_free(&b);
	}
	if (ASSERT_OK(metrics_render_buf(w.fx.pin_dir, NULL, &buf, &len), "metrics")) {
		snprintf(line, sizeof(line), cls_fmt, "default", "engine", "regex");
		ASSERT_TRUE(has_line(buf, line), line);
		ASSERT_TRUE(has_line(buf, "gammad_khttp_classes{served_by=\"engine\",reason=\"regex\"} 1"),
			    "one engine class");
	}
	if (access(test_bin("gammactl"), X_OK)) {
		test__printf("view: build/gammactl not built, its stats not checked\n");
	} else if (ASSERT_OK(lab_run_capture(&out, "%s --pin-dir %s stats", test_bin("gammactl"),
					     w.fx.pin_dir), "gammactl stats")) {
		bool ok;

		snprintf(line, sizeof(line), "%-44s %10lu", "served", w.reasons[GAMMAD_KH_R_SERVED]);
		ok = ASSERT_TRUE(has_line(out, line), line);
		ok &= ASSERT_OK_PTR(strstr(out, "app/a:80 (10.96.0.10)"), "the class in gammactl stats");
		ok &= ASSERT_OK_PTR(strstr(out, "engine: regex"), "why in gammactl stats");
		if (!ok)
			test__printf("%s", out);
	}
	free(out);
	free(buf);
out:
	world_close(&w);
}

#define SAME_ROUTE(name, parent)                                                          \
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"                \
	"metadata: {name: " name ", namespace: app}\nspec:\n"                           \
	"  parentRefs: [{group: \"\", kind: Service, name: " parent ", port: 80}]\n"     \
	"  rules:\n  - matches: [{path: {type: PathPrefix, value: /s}}]\n"               \
	"    backendRefs: [{name: b3, port: 80}]\n"

/*
 * Two classes of one content (routes of b1:80 and b2:80 alike) share one
 * table. When the table the object table names for that content is found
 * changed (its header rewritten behind the agent's back), the next apply
 * writes one new table for both classes, not one each.
 */
static void subtest_shared(void)
{
	struct world w;
	struct built b;
	struct ia_stats st = { 0 };
	struct gammad_kh_table t;
	char *keys = NULL;
	uint32_t tab = 0;
	bool built = false;

	if (!ASSERT_OK(world_open(&w), "world") ||
	    !ASSERT_OK(build(&b, SAME_ROUTE("s1", "b1") SAME_ROUTE("s2", "b2")), "build"))
		goto out;
	built = true;
	if (!ASSERT_OK(apply(&w, &b, &st), "apply") ||
	    check_world(&w, &b.img, &b.f.res, "first apply"))
		goto out;
	ASSERT_EQ(st.kh_tables, 2, "two classes");
	ASSERT_EQ(st.kh_tables_written, 1, "one table written");
	if (!ASSERT_EQ(keys_of(w.fd[K_TAB], sizeof(tab), &keys), 1, "one pinned table"))
		goto out;
	memcpy(&tab, keys, sizeof(tab));
	if (!ASSERT_OK(bpf_map_lookup_elem(w.fd[K_TAB], &tab, &t), "the table"))
		goto out;
	t.flags ^= 1;
	if (!ASSERT_OK(bpf_map_update_elem(w.fd[K_TAB], &tab, &t, BPF_EXIST), "change its header"))
		goto out;
	if (ASSERT_OK(apply(&w, &b, &st), "apply again"))
		check_world(&w, &b.img, &b.f.res, "after the change");
	ASSERT_EQ(st.kh_tables_written, 1, "one table written for both classes");
out:
	free(keys);
	if (built)
		built_free(&b);
	world_close(&w);
}

/*
 * The agent's path: the incremental pipeline's commits of random object
 * changes (lib/cluster_gen.h), each with the tables pl_kh_update() keeps
 * (only re-translated ports encoded again), must leave the pinned tables
 * a full translation of the objects gives.
 */
struct pl_kh {
	struct pl *pl;
	struct ia_kh_set set;
	uint64_t gen;
	int err;
};

static int pl_kh_before(void *ctx, const struct img *img, struct ia_opts *o)
{
	struct pl_kh *k = ctx;
	struct pl_tables *t = pl_tables_get(k->pl);

	if (t)
		k->err = pl_kh_update(&k->set, &k->gen, img, t);
	pl_tables_put(t);
	o->khttp = k->gen ? &k->set : NULL;
	/* check_world: nothing of an earlier generation is left */
	o->defer_retire = false;
	return k->err;
}

static void subtest_pipeline(void)
{
	struct pl_kh k = { 0 };
	struct pl_opts po = { .img = { .http_engine = true }, .before_apply = pl_kh_before,
			      .ctx = &k };
	unsigned long commits = 0, incremental = 0, classes = 0, kernel = 0;
	struct cgen p = { .rng = 0x6b68706c };
	struct pl_stats st;
	struct world w;
	char what[64];

	if (!ASSERT_OK(world_open(&w), "world") ||
	    !ASSERT_OK(pl_new(w.fx.dp, &po, &k.pl), "pl_new"))
		goto out;
	for (int step = 0; step < 240; step++) {
		int slot = (int)cgen_rnd(&p, CGEN_SLOTS);
		struct model_event ev;
		char name[32], *yaml;
		struct tfx f;
		int bad;

		if (p.text[slot] && !cgen_rnd(&p, 4)) {
			cgen_delete(slot, &ev, name, sizeof(name));
			if (!ASSERT_OK(pl_event(k.pl, &ev, NULL), "delete event"))
				break;
			free(p.text[slot]);
			p.text[slot] = NULL;
		} else {
			char *text = cgen_object(&p, slot);

			if (!ASSERT_OK_PTR(text, "gen") || !ASSERT_OK(cgen_event(text, &ev), "parse") ||
			    !ASSERT_OK(pl_event(k.pl, &ev, NULL), "put event")) {
				free(text);
				break;
			}
			free(p.text[slot]);
			p.text[slot] = text;
		}
		if (cgen_rnd(&p, 3))
			continue;
		snprintf(what, sizeof(what), "commit at step %d", step);
		if (!ASSERT_OK(pl_commit(k.pl, &st), what) || !ASSERT_OK(k.err, what))
			break;
		commits++;
		incremental += !st.full;
		yaml = cgen_all_yaml(&p);
		if (!ASSERT_OK_PTR(yaml, "yaml"))
			break;
		tfx_init(&f);
		if (!ASSERT_OK(tfx_load(&f, "all.yaml", yaml), what) ||
		    !ASSERT_OK(tfx_translate(&f), what)) {
			tfx_free(&f);
			free(yaml);
			break;
		}
		w.kernel = 0;
		bad = check_world(&w, pl_image(k.pl), &f.res, what);
		classes += w.classes;
		kernel += w.kernel;
		tfx_free(&f);
		if (bad)
			test__printf("%s", yaml);
		free(yaml);
		if (bad)
			break;
	}
	test__printf("pipeline: %lu commits (%lu incremental), %lu class tables checked "
		     "(%lu the kernel's), %lu requests through the pinned tables\n", commits,
		     incremental, classes, kernel, w.requests);
	ASSERT_GT(incremental, 0, "incremental commits");
	ASSERT_GT(kernel, 0, "kernel tables");
out:
	pl_free(k.pl);
	ia_kh_set_free(&k.set);
	for (int s = 0; s < CGEN_SLOTS; s++)
		free(p.text[s]);
	world_close(&w);
}

void test_apply_khttp(void)
{
	if (test__start_subtest("view"))
		subtest_view();
	if (test__start_subtest("changes"))
		subtest_changes();
	if (test__start_subtest("conformance"))
		subtest_conformance();
	if (test__start_subtest("generated"))
		subtest_generated();
	if (test__start_subtest("many"))
		subtest_many();
	if (test__start_subtest("restart"))
		subtest_restart();
	if (test__start_subtest("killed"))
		subtest_killed();
	if (test__start_subtest("shared"))
		subtest_shared();
	if (test__start_subtest("pipeline"))
		subtest_pipeline();
}
