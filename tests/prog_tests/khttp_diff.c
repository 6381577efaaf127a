// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's HTTP parser and matcher (bpf/lib/khttp.h) against the
 * engine's parser and evaluator. Tables: every class of every Service port
 * of the Gateway API mesh conformance tests, and generated HTTPRoutes (all
 * encodable features: Exact/PathPrefix, methods, header and query matches,
 * header modifiers, rewrites, redirects, weights, missing and empty
 * backends). Requests: generated from each table's own strings and from a
 * fixed vocabulary, malformed ones and cut ones included.
 *
 * Each request runs through the verified BPF program (BPF_PROG_TEST_RUN of
 * tests/progs/khttp.bpf.c, the table written into its maps by
 * kh_image_write()) and through the userspace build of the same source:
 * both must produce the same parse and verdict, and that verdict must be
 * what h1_parse_request() and ev_evaluate() say (tests/lib/khttp_user.c).
 */
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "lib/khttp_gen.h"
#include "lib/khttp_user.h"
#include "lib/mesh_conf.h"
#include "lib/translate_fixture.h"
#include "datapath/alias.h"
#include "skel/test_khttp.skel.h"

#define REQS_PER_TABLE 400

struct run {
	struct test_khttp_bpf *skel;
	struct kh_map_fds fds;
	int scratch_fd;
	struct khu_stats st;
	unsigned long tables, tables_kernel, cases, failures;
	unsigned long total_kernel, total_served;
	unsigned long answers;		/* local answers compared byte for byte */
	unsigned long tab_reasons[GAMMAD_KH_TAB_MAX];
	uint64_t rng;
};

static uint32_t rnd(struct run *r)
{
	return khg_rnd(&r->rng);
}

static uint32_t pick(struct run *r, uint32_t n)
{
	return n ? rnd(r) % n : 0;
}

/* ---- running one head through both builds -------------------------------- */

static int bpf_run(struct run *r, struct gammad_kh_scratch *s)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);
	uint32_t zero = 0;
	int err;

	err = bpf_map_update_elem(r->scratch_fd, &zero, s, BPF_ANY);
	if (err)
		return err;
	err = bpf_prog_test_run_opts(bpf_program__fd(r->skel->progs.kh_run), &o);
	if (err)
		return err;
	return bpf_map_lookup_elem(r->scratch_fd, &zero, s);
}

/* The answer the BPF build wrote (kh_run) is the userspace build's. */
static bool answer_same(struct run *r, const struct gammad_kh_scratch *u)
{
	static struct khu_abuf a;
	char want[KHU_ANSWER_MAX];
	uint32_t zero = 0;
	int n = khu_answer(u, want, sizeof(want));

	if (bpf_map_lookup_elem(bpf_map__fd(r->skel->maps.kh_answer_out), &zero, &a))
		return false;
	r->answers += n > 0;
	return n > 0 ? a.n == (uint32_t)n && !memcmp(a.b, want, (size_t)n) : a.n == 0;
}

static void show_head(const char *head, size_t len)
{
	char out[512];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < sizeof(out); i++) {
		unsigned char c = head[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[n++] = c;
		else
			n += snprintf(out + n, sizeof(out) - n, "\\x%02x", c);
	}
	out[n] = 0;
	test__printf("  head: \"%s\"\n", out);
}

/* One head: the BPF verdict equals the userspace one and agrees with the engine. */
static bool run_head(struct run *r, const struct tr_class *cls, const struct kh_image *img,
		     const char *head, size_t len, struct gammad_kh_scratch *out)
{
	struct gammad_kh_scratch *k = malloc(sizeof(*k)), *u = malloc(sizeof(*u));
	uint32_t d0 = rnd(r), d1 = rnd(r);
	char why[256];
	bool ok = false;

	if (!k || !u)
		goto out;
	khu_scratch(k, head, len, d0, d1);
	khu_scratch(u, head, len, d0, d1);
	r->cases++;
	if (!ASSERT_OK(bpf_run(r, k), "test run"))
		goto out;
	khu_request(u);
	if (memcmp(&k->req, &u->req, sizeof(k->req)) || memcmp(&k->v, &u->v, sizeof(k->v))) {
		test__fail();
		test__printf("BPF and userspace builds differ: action %u/%u reason %u/%u\n",
			     k->v.action, u->v.action, k->v.reason, u->v.reason);
		show_head(head, len);
		goto out;
	}
	if (k->v.action == GAMMAD_KH_LOCAL && !answer_same(r, u)) {
		test__fail();
		test__printf("BPF and userspace answers differ (status %u)\n", k->v.status);
		show_head(head, len);
		goto out;
	}
	if (khu_check(cls, img, k, &r->st, why, sizeof(why))) {
		test__fail();
		test__printf("kernel and engine disagree: %s (action %u reason %s status %u)\n",
			     why, k->v.action, kh_reason_str(k->v.reason), k->v.status);
		show_head(head, len);
		goto out;
	}
	if (out)
		*out = *k;
	ok = true;
out:
	if (!ok)
		r->failures++;
	free(k);
	free(u);
	return ok;
}

/* ---- generated requests ---------------------------------------------------- */

/* s with each letter's case flipped at random (header names match in any case). */
static void put_case(struct run *r, struct khg_text *g, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) && !pick(r, 3))
			c ^= 0x20;
		khg_put(g, &c, 1);
	}
}

static const char *const methods[] = {
	"GET", "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "get",
};
static const char *const paths[] = {
	"/", "/a", "/a/", "/ab", "/a/b", "/a/b/c", "/v2", "/v2/", "/v2x", "/v2/x", "/foo",
	"/foo/bar", "/bar", "//", "/%2F", "/prefix/one", "/prefix/one/two", "/exact",
	"/exact/", "/one", "/two", "/redirect", "/rewrite/x", "/a|b{c}",
};
static const char *const queries[] = {
	"", "", "", "?", "?q=1", "?q=1&r", "?r=&q=2", "?q", "?q=2&q=1", "?x=1&q=1&y",
	"?&q=1", "?q=1&", "?a=b=c", "?animal=whale", "?animal=dolphin&color=blue",
};
static const char *const fields[] = {
	"X-A: 1", "x-a: 2", "X-B: two", "x-b:  two  ", "X-C:\tv\t", "Accept: */*",
	"User-Agent: t/1", "X-Empty:", "X-Obs: \x80\xff", "version: one", "version: two",
	"X-Remove: r", "x-header-remove: gone", "Content-Length: 5", "Content-Length: 0",
	"Cookie: a=b", "X-Forwarded-For: 10.0.0.1",
};
/* Rarely: what the kernel leaves to the engine or refuses. */
static const char *const rare_fields[] = {
	"content-length:\t3", "Content-Length: 12x", "Content-Length:", "Transfer-Encoding: chunked",
	"Expect: 100-continue", "Upgrade: websocket", "Content-Length: 1234567890123456789012",
	"Host: dup", "Bad Name: x", " folded", "X-Ctl: a\x01", "X-Del: \x7f", ": novalue",
};
static const char *const hosts[] = {
	"Host: a", "Host: a.app:80", "host: echo", "Host: [::1]:8080", "Host: [::1",
	"HOST: a:", "Host:", "Host: x:y:z",
};

/* A string of the table (a path, a header or query condition) to aim at. */
struct aim {
	const struct kh_image *img;
};

static void put_table_path(struct run *r, struct khg_text *g, const struct kh_image *img)
{
	const struct gammad_kh_entry *e = &img->entries[pick(r, img->nr_entries)];
	static const char *const tails[] = { "", "", "/", "/x", "x", "/x/y" };

	if (e->path.len)
		khg_put(g, e->path.s, e->path.len);
	else
		khg_puts(g, "/");
	khg_puts(g, tails[pick(r, 6)]);
}

static void put_table_query(struct run *r, struct khg_text *g, const struct kh_image *img)
{
	const struct gammad_kh_entry *e = &img->entries[pick(r, img->nr_entries)];
	bool first = true;

	for (unsigned i = 0; i < e->nr_conds; i++) {
		const struct gammad_kh_cond *c = &e->conds[i];

		if (c->kind != GAMMAD_KH_COND_QUERY || !pick(r, 4))
			continue;
		khg_puts(g, first ? "?" : "&");
		first = false;
		khg_put(g, c->name.s, c->name.len);
		if (pick(r, 5)) {
			khg_puts(g, "=");
			khg_put(g, c->value.s, c->value.len);
			if (!pick(r, 6))
				khg_puts(g, "x");
		}
	}
}

static void put_table_fields(struct run *r, struct khg_text *g, const struct kh_image *img)
{
	const struct gammad_kh_entry *e = &img->entries[pick(r, img->nr_entries)];

	for (unsigned i = 0; i < e->nr_conds; i++) {
		const struct gammad_kh_cond *c = &e->conds[i];

		if (c->kind != GAMMAD_KH_COND_HEADER || !pick(r, 5))
			continue;
		put_case(r, g, c->name.s, c->name.len);
		khg_puts(g, pick(r, 4) ? ": " : ":\t ");
		khg_put(g, c->value.s, c->value.len);
		if (!pick(r, 6))
			khg_puts(g, "y");
		khg_puts(g, pick(r, 5) ? "\r\n" : " \r\n");
	}
}

static void gen_request(struct run *r, const struct kh_image *img, struct khg_text *g)
{
	bool aim = img && img->nr_entries && pick(r, 4);
	bool v10 = !pick(r, 10);
	unsigned nf = pick(r, 5);

	g->len = 0;
	if (aim && img->entries[0].method_len && pick(r, 2)) {
		const struct gammad_kh_entry *e = &img->entries[pick(r, img->nr_entries)];

		if (e->method_len)
			khg_put(g, e->method, e->method_len);
		else
			khg_puts(g, "GET");
	} else if (!pick(r, 200)) {
		khg_puts(g, pick(r, 2) ? "CONNECT" : "AVERYLONGMETHODNAMEOFMORETHANTHIRTYTWOBYTES");
	} else {
		khg_puts(g, methods[pick(r, sizeof(methods) / sizeof(methods[0]))]);
	}
	khg_puts(g, " ");
	if (!pick(r, 100))
		khg_puts(g, pick(r, 2) ? "*" : "http://a.app/x");
	else if (aim)
		put_table_path(r, g, img);
	else
		khg_puts(g, paths[pick(r, sizeof(paths) / sizeof(paths[0]))]);
	if (aim && pick(r, 2))
		put_table_query(r, g, img);
	else
		khg_puts(g, queries[pick(r, sizeof(queries) / sizeof(queries[0]))]);
	if (!pick(r, 100)) {
		/* many parameters: beyond what the kernel keeps */
		for (int i = 0; i < 20; i++)
			khg_puts(g, i ? "&p=1" : "?p=1");
		khg_puts(g, "&q=1");
	}
	khg_puts(g, v10 ? " HTTP/1.0\r\n" : !pick(r, 100) ? " HTTP/2.0\r\n" : " HTTP/1.1\r\n");
	if (!v10 || pick(r, 2)) {
		khg_puts(g, hosts[pick(r, 10) < 6 ? 0 : pick(r, sizeof(hosts) / sizeof(hosts[0]))]);
		khg_puts(g, "\r\n");
	}
	if (aim)
		put_table_fields(r, g, img);
	for (unsigned i = 0; i < nf; i++) {
		khg_puts(g, fields[pick(r, sizeof(fields) / sizeof(fields[0]))]);
		khg_puts(g, "\r\n");
	}
	if (!pick(r, 15)) {
		khg_puts(g, rare_fields[pick(r, sizeof(rare_fields) / sizeof(rare_fields[0]))]);
		khg_puts(g, "\r\n");
	}
	if (!pick(r, 100))
		for (int i = 0; i < 40; i++)
			khg_puts(g, "X-Many: 1\r\n");
	if (!pick(r, 200)) {
		/* a head beyond GAMMAD_KH_HEAD_MAX */
		khg_puts(g, "X-Long: ");
		for (int i = 0; i < 300; i++)
			khg_puts(g, "0123456789abcdef");
		khg_puts(g, "\r\n");
	}
	khg_puts(g, "\r\n");
	if (!pick(r, 5))
		khg_puts(g, "hello");
	if (!pick(r, 8) && g->len) {
		/* one byte broken */
		static const char bad[] = { '\n', '\r', ' ', '\t', 0, ':', 0x7f, 'a', '?', '/' };

		g->buf[pick(r, (uint32_t)g->len)] = bad[pick(r, sizeof(bad))];
	}
}

/* Every proper prefix of a head the kernel serves makes it wait. */
static void check_prefixes(struct run *r, const struct tr_class *cls, const struct kh_image *img,
			   const struct khg_text *g, const struct gammad_kh_scratch *full)
{
	struct gammad_kh_scratch *s = malloc(sizeof(*s));
	size_t cut = pick(r, full->req.head_len);

	if (!s)
		return;
	if (run_head(r, cls, img, g->buf, cut, s) && full->v.action != GAMMAD_KH_ENGINE &&
	    !ASSERT_EQ(s->v.action, GAMMAD_KH_MORE, "a cut head waits"))
		show_head(g->buf, cut);
	free(s);
}

/* ---- tables ------------------------------------------------------------------ */

/*
 * The alias slots give every rule backend exactly its weight's share, and
 * a rule says it always picks one (GAMMAD_KH_RULE_ONE_RB, the kernel then
 * skips the slot) exactly when one of its backends has a weight.
 */
static void check_shares(const struct kh_image *img)
{
	for (size_t ri = 0; ri < img->nr_rules; ri++) {
		const struct gammad_kh_rule *rule = &img->rules[ri];
		size_t weighted = 0, last = 0;

		if (rule->kind != GAMMAD_KH_RULE_BACKENDS)
			continue;
		for (size_t b = 0; b < img->nr_rbs; b++) {
			if (img->rb_rule[b] != ri)
				continue;
			ASSERT_EQ(alias_table_share(img->slots + img->slot_base[ri], rule->nr_slots,
						    rule->total_weight, (uint32_t)b),
				  (uint64_t)img->rb_src[b]->weight * rule->nr_slots, "share");
			if (img->rb_src[b]->weight) {
				weighted++;
				last = b;
			}
		}
		ASSERT_EQ(!!(rule->flags & GAMMAD_KH_RULE_ONE_RB), weighted == 1, "one rule backend");
		if (weighted == 1 && (rule->flags & GAMMAD_KH_RULE_ONE_RB))
			ASSERT_EQ(rule->one_rb, last, "the rule backend it picks");
	}
}

static void run_table(struct run *r, const struct tr_class *cls, uint16_t port, const char *what)
{
	struct gammad_kh_scratch *s = malloc(sizeof(*s));
	struct kh_image img;
	struct khg_text *g = malloc(sizeof(*g));
	unsigned long failures = r->failures;

	if (!s || !g || !ASSERT_OK(kh_encode(cls, port, &img), "encode"))
		goto out;
	r->tables++;
	r->tab_reasons[img.tab.engine_reason]++;
	if (!img.tab.engine_reason)
		r->tables_kernel++;
	check_shares(&img);
	khu_use(&img);
	if (!ASSERT_OK(kh_image_write(&img, KHU_TAB, &r->fds), "write table"))
		goto free_img;
	for (int i = 0; i < REQS_PER_TABLE && r->failures - failures < 5; i++) {
		gen_request(r, &img, g);
		if (run_head(r, cls, &img, g->buf, g->len, s) && s->v.action != GAMMAD_KH_MORE &&
		    s->req.head_len && !pick(r, 4))
			check_prefixes(r, cls, &img, g, s);
	}
	if (r->failures != failures)
		test__printf("  table: %s (%s)\n", what, img.tab.engine_reason ? img.why : "kernel");
free_img:
	khu_use(NULL);
	kh_image_free(&img);
out:
	free(g);
	free(s);
}

static void run_translation(struct run *r, const struct tr_result *res, const char *what)
{
	for (size_t p = 0; p < res->nr_ports; p++) {
		const struct tr_port *tp = &res->ports[p];
		char name[256];

		for (size_t c = 0; c < tp->nr_classes; c++) {
			snprintf(name, sizeof(name), "%s: %s/%s:%u class %s", what,
				 tp->svc->meta.namespace, tp->svc->meta.name, tp->port->port,
				 tp->classes[c].client_namespace ?: "default");
			run_table(r, &tp->classes[c], tp->port->port, name);
		}
	}
}

/*
 * The suite's own requests, as its client sends them, against their
 * class's table: each must agree, and we count what the kernel served.
 */
static void conformance_cases(struct run *r, struct tfx *f, const struct ydoc *d,
			      const yaml_node_t *test, unsigned long *served, unsigned long *all)
{
	yaml_node_t *cases = ymap_get(d, test, "cases"), *k, *v;

	for (size_t i = 0; i < yseq_len(cases); i++) {
		yaml_node_t *c = yseq_at(d, cases, i), *req = ymap_get(d, c, "request");
		const char *ns = mesh_conf_client_ns(mesh_conf_case_client(d, test, c));
		const char *method = mesh_conf_str(d, req, "method") ?: "GET";
		const char *path = mesh_conf_str(d, req, "path");
		const char *host = mesh_conf_str(d, req, "host") ?: "echo";
		struct gammad_kh_scratch *s = malloc(sizeof(*s));
		const struct tr_class *cls;
		struct mesh_conf_target t;
		struct kh_image img;
		struct khg_text g = { .len = 0 };

		mesh_conf_case_target(d, req, ns, &t);
		cls = t.pod ? NULL : tfx_class(f, t.ns, t.svc, t.port, ns);
		if (!s || !cls || !ASSERT_OK(kh_encode(cls, t.port, &img), "encode")) {
			free(s);
			continue;
		}
		khg_puts(&g, method);
		khg_puts(&g, " ");
		khg_puts(&g, path && *path ? path : "/");
		khg_puts(&g, " HTTP/1.1\r\n");
		/* a Host among the case's headers replaces the URL's, as with curl -H */
		if (!ymap_get(d, ymap_get(d, req, "headers"), "Host")) {
			khg_puts(&g, "Host: ");
			khg_puts(&g, host);
			khg_puts(&g, "\r\n");
		}
		ymap_for_each(d, ymap_get(d, req, "headers"), k, v) {
			khg_puts(&g, ynode_str(k));
			khg_puts(&g, ": ");
			khg_puts(&g, ynode_str(v));
			khg_puts(&g, "\r\n");
		}
		khg_puts(&g, "\r\n");
		khu_use(&img);
		if (ASSERT_OK(kh_image_write(&img, KHU_TAB, &r->fds), "write table") &&
		    run_head(r, cls, &img, g.buf, g.len, s)) {
			(*all)++;
			if (s->v.action == GAMMAD_KH_FORWARD || s->v.action == GAMMAD_KH_LOCAL)
				(*served)++;
			else
				test__printf("  to the engine: %s #%zu: %s%s%s\n",
					     mesh_conf_str(d, test, "shortName"), i,
					     kh_reason_str(s->v.reason), s->v.tab_reason ? ": " : "",
					     s->v.tab_reason ? img.why : "");
		} else {
			test__printf("  conformance case %s #%zu\n", mesh_conf_str(d, test, "shortName"), i);
		}
		khu_use(NULL);
		kh_image_free(&img);
		free(s);
	}
}

static void conformance_tables(struct run *r)
{
	unsigned long served = 0, all = 0;
	struct ydoc_set set;
	const struct ydoc *d;
	yaml_node_t *tests;
	size_t n = mesh_conf_load(&set, &d, &tests);

	for (size_t i = 0; i < n; i++) {
		yaml_node_t *test = yseq_at(d, tests, i);
		struct tfx f;

		tfx_init(&f);
		if (ASSERT_OK(mesh_conf_load_test(&f, d, test), "load conformance test")) {
			run_translation(r, &f.res, mesh_conf_str(d, test, "shortName"));
			conformance_cases(r, &f, d, test, &served, &all);
		}
		tfx_free(&f);
	}
	if (n)
		ydoc_set_free(&set);
	test__printf("conformance requests: %lu of %lu served by the kernel\n", served, all);
}

static void generated_tables(struct run *r, int nr)
{
	for (int i = 0; i < nr && r->failures < 20; i++) {
		char *yaml = khg_routes(&r->rng);
		struct tfx f;
		char what[32];

		if (!ASSERT_OK_PTR(yaml, "generate"))
			return;
		snprintf(what, sizeof(what), "generated #%d", i);
		if (!tfx_setup(&f, yaml)) {
			const struct tr_port *p = tr_find_port(&f.res, "app", "a", 80);

			for (size_t c = 0; p && c < p->nr_classes; c++)
				run_table(r, &p->classes[c], 80, what);
		} else {
			/* an invalid combination: the translator said why */
			test__printf("%s did not translate\n", what);
		}
		if (r->failures)
			test__printf("%s", yaml);
		tfx_free(&f);
		free(yaml);
	}
}

/* ---- the test ----------------------------------------------------------------- */

static void report_prog(struct bpf_program *prog)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (ASSERT_OK(bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len), "prog info"))
		test__printf("%s: %u BPF insns (xlated), %u verified insns; head %u B, %u fields, "
			     "%u matches per table\n", bpf_program__name(prog),
			     info.xlated_prog_len / 8, info.verified_insns, GAMMAD_KH_HEAD_MAX,
			     GAMMAD_KH_FIELDS_MAX, GAMMAD_KH_ENTRIES_MAX);
}

/* One decision of head (n bytes) against table tab (none there: the parse alone), timed: ns, or 0. */
static unsigned cost_one(struct run *r, struct gammad_kh_scratch *s, const char *head, size_t n,
			 uint32_t tab)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 20000);
	char pkt[64] = { 0 };
	uint32_t zero = 0;

	o.data_in = pkt;
	o.data_size_in = sizeof(pkt);
	khu_scratch(s, head, n, 1, 2);
	s->tab = tab;
	if (!ASSERT_OK(bpf_map_update_elem(r->scratch_fd, &zero, s, BPF_ANY), "scratch") ||
	    !ASSERT_OK(bpf_prog_test_run_opts(bpf_program__fd(r->skel->progs.kh_time), &o),
		       "test run"))
		return 0;
	return o.duration;
}

/*
 * The bench's request (tools/bench/client.c, 64 bytes) against the bench's
 * route (one rule, PathPrefix /, one backend): what the client program's
 * decision costs on the path bench/results/khttp/remote-breakdown.md splits.
 */
static void cost_bench(struct run *r, struct gammad_kh_scratch *s)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: bench\r\nX-Pad: "
				   "xxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n";
	static const char yaml[] =
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: cost, namespace: app}\nspec:\n"
		"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
		"  - matches: [{path: {type: PathPrefix, value: /}}]\n"
		"    backendRefs: [{name: b1, port: 80}]\n";
	struct kh_image img;
	struct tfx f;
	unsigned full, parse;

	if (!ASSERT_OK(tfx_setup(&f, yaml), "setup"))
		return;
	if (ASSERT_OK(kh_encode(tfx_class(&f, "app", "a", 80, NULL), 80, &img), "encode")) {
		if (ASSERT_OK(kh_image_write(&img, KHU_TAB, &r->fds), "write table")) {
			full = cost_one(r, s, head, sizeof(head) - 1, KHU_TAB);
			parse = cost_one(r, s, head, sizeof(head) - 1, KHU_TAB + 1);
			test__printf("the bench's %zu-byte head, one rule: parse + match %u ns, "
				     "parse alone %u ns\n", sizeof(head) - 1, full, parse);
		}
		kh_image_free(&img);
	}
	tfx_free(&f);
}

/*
 * What one decision costs in the kernel, for the record (not a check:
 * timing belongs to benchmarks): a browser-sized head against a table of
 * 8 rules whose last one matches.
 */
static void cost(struct run *r)
{
	static const char head[] =
		"GET /api/v2/items?page=2&sort=asc HTTP/1.1\r\nHost: a.app.svc:80\r\n"
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n"
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
		"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n"
		"Connection: keep-alive\r\nX-Request-Id: 1b4e28ba-2fa1-11d2-883f-0016d3cca427\r\n"
		"Cookie: session=0123456789abcdef0123456789abcdef\r\nversion: two\r\n\r\n";
	char yaml[4096];
	size_t n = 0;
	struct gammad_kh_scratch *s = malloc(sizeof(*s));
	struct kh_image img;
	struct tfx f;

	n += snprintf(yaml + n, sizeof(yaml) - n,
		      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		      "metadata: {name: cost, namespace: app}\nspec:\n"
		      "  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n");
	for (int i = 0; i < 7; i++)
		n += snprintf(yaml + n, sizeof(yaml) - n,
			      "  - matches: [{path: {type: PathPrefix, value: /api/v%d}, "
			      "headers: [{name: version, value: one}]}]\n"
			      "    backendRefs: [{name: b1, port: 80}]\n", i);
	snprintf(yaml + n, sizeof(yaml) - n,
		 "  - matches: [{path: {type: PathPrefix, value: /api/v2}, headers: [{name: version, value: two}],"
		 " queryParams: [{name: sort, value: asc}]}]\n"
		 "    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: X-Canary, value: \"1\"}]}}]\n"
		 "    backendRefs: [{name: b2, port: 80, weight: 9}, {name: b3, port: 80, weight: 1}]\n");
	if (!s || !ASSERT_OK(tfx_setup(&f, yaml), "setup"))
		goto out;
	if (ASSERT_OK(kh_encode(tfx_class(&f, "app", "a", 80, NULL), 80, &img), "encode")) {
		char pkt[64] = { 0 };
		LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 20000, .data_in = pkt,
			    .data_size_in = sizeof(pkt));
		uint32_t zero = 0;

		ASSERT_EQ(img.tab.engine_reason, 0, "kernel table");
		ASSERT_OK(kh_image_write(&img, KHU_TAB, &r->fds), "write table");
		khu_scratch(s, head, sizeof(head) - 1, 1, 2);
		if (ASSERT_OK(bpf_map_update_elem(r->scratch_fd, &zero, s, BPF_ANY), "scratch") &&
		    ASSERT_OK(bpf_prog_test_run_opts(bpf_program__fd(r->skel->progs.kh_time), &o),
			      "test run") &&
		    ASSERT_EQ(o.retval, GAMMAD_KH_FORWARD, "forwarded"))
			test__printf("parse + match of a %zu-byte head, 8 rules: %u ns per request\n",
				     sizeof(head) - 1, o.duration);
		/* the parse alone: a table id nothing is written under */
		s->tab = KHU_TAB + 1;
		if (ASSERT_OK(bpf_map_update_elem(r->scratch_fd, &zero, s, BPF_ANY), "scratch") &&
		    ASSERT_OK(bpf_prog_test_run_opts(bpf_program__fd(r->skel->progs.kh_time), &o),
			      "test run"))
			test__printf("parse alone: %u ns per request\n", o.duration);
		kh_image_free(&img);
	}
	tfx_free(&f);
	cost_bench(r, s);
out:
	free(s);
}

/*
 * Heads not in origin form go to the engine with the reason that names them:
 * an HTTP/2 prior-knowledge preface apart from "*" and absolute targets.
 */
static void target_forms(struct run *r, const struct tr_class *cls)
{
	static const struct {
		const char *head;
		unsigned reason;
	} cases[] = {
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", GAMMAD_KH_R_H2_PRIOR },
		{ "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", GAMMAD_KH_R_TARGET_FORM },
		{ "PRI http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", GAMMAD_KH_R_TARGET_FORM },
		{ "GET http://a.app/x HTTP/1.1\r\nHost: a\r\n\r\n", GAMMAD_KH_R_TARGET_FORM },
	};
	struct gammad_kh_scratch *s = malloc(sizeof(*s));
	struct kh_image img;

	if (!ASSERT_OK_PTR(s, "scratch") || !ASSERT_OK(kh_encode(cls, 80, &img), "encode"))
		goto out;
	khu_use(&img);
	if (ASSERT_OK(kh_image_write(&img, KHU_TAB, &r->fds), "write table"))
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (run_head(r, cls, &img, cases[i].head, strlen(cases[i].head), s) &&
			    (!ASSERT_EQ(s->v.action, GAMMAD_KH_ENGINE, "to the engine") ||
			     !ASSERT_EQ(s->v.reason, cases[i].reason, kh_reason_str(cases[i].reason))))
				show_head(cases[i].head, strlen(cases[i].head));
	khu_use(NULL);
	kh_image_free(&img);
out:
	free(s);
}

/* What the kernel did with the heads of the subtest; the counts restart. */
static void report(struct run *r)
{
	test__printf("%lu tables (%lu served by the kernel), %lu heads: %lu forwarded, "
		     "%lu answered in the kernel, %lu to the engine (%lu malformed), %lu waiting\n",
		     r->tables, r->tables_kernel, r->cases, r->st.served, r->st.local, r->st.engine,
		     r->st.malformed, r->st.more);
	test__printf("  answers compared byte for byte (BPF, userspace, engine format): %lu\n",
		     r->answers);
	test__printf("  forwards whose response edits matched the engine's filters: %lu\n",
		     r->st.resp_edits);
	for (unsigned i = 1; i < GAMMAD_KH_TAB_MAX; i++)
		if (r->tab_reasons[i])
			test__printf("  tables to the engine: %lu %s\n", r->tab_reasons[i],
				     kh_tab_reason_str(i));
	for (unsigned i = 0; i < GAMMAD_KH_R_SLOTS; i++)
		if (r->st.reasons[i])
			test__printf("  heads to the engine: %lu %s\n", r->st.reasons[i],
				     kh_reason_str(i));
	ASSERT_EQ(r->failures, 0, "disagreements");
	r->total_kernel += r->tables_kernel;
	r->total_served += r->st.served;
	r->tables = r->tables_kernel = r->cases = r->failures = r->answers = 0;
	memset(&r->st, 0, sizeof(r->st));
	memset(r->tab_reasons, 0, sizeof(r->tab_reasons));
}

void test_khttp_diff(void)
{
	struct run r = { .rng = 0x9e3779b97f4a7c15ULL };
	const char *seed = getenv("GAMMAD_KHTTP_SEED");

	if (seed)
		r.rng = strtoull(seed, NULL, 0) | 1;
	r.skel = test_khttp_bpf__open_and_load();
	if (!ASSERT_OK_PTR(r.skel, "load khttp program"))
		return;
	r.fds = (struct kh_map_fds){
		.table = bpf_map__fd(r.skel->maps.gammad_khtab_v1),
		.entry = bpf_map__fd(r.skel->maps.gammad_khent_v1),
		.rule = bpf_map__fd(r.skel->maps.gammad_khrul_v1),
		.rb = bpf_map__fd(r.skel->maps.gammad_khrb_v1),
		.alias = bpf_map__fd(r.skel->maps.gammad_khal_v1),
	};
	r.scratch_fd = bpf_map__fd(r.skel->maps.kh_scratch);
	report_prog(r.skel->progs.kh_run);
	report_prog(r.skel->progs.kh_msg);

	if (test__start_subtest("no_table")) {
		/* a class without a kernel table: every head still parses the same */
		struct tfx f;

		if (ASSERT_OK(tfx_setup(&f, NULL), "setup")) {
			run_table(&r, tfx_class(&f, "app", "a", 80, NULL), 80, "no route");
			target_forms(&r, tfx_class(&f, "app", "a", 80, NULL));
		}
		tfx_free(&f);
		report(&r);
	}
	if (test__start_subtest("conformance")) {
		conformance_tables(&r);
		report(&r);
	}
	if (test__start_subtest("generated")) {
		generated_tables(&r, 300);
		report(&r);
	}
	if (test__start_subtest("cost"))
		cost(&r);
	ASSERT_GT(r.total_kernel, 0, "tables the kernel serves");
	ASSERT_GT(r.total_served, 0, "requests the kernel forwards");
	test_khttp_bpf__destroy(r.skel);
}
