// SPDX-License-Identifier: Apache-2.0
/*
 * ia_apply() against real kernel maps: the reconcile of the pinned route
 * maps and the object table with map images built from manifests.
 *
 * Every apply is followed by an independent consistency check (check_world)
 * that reads the pinned maps with get_next_key/lookup only (no map_dump, no
 * image_retire.c): every frontend reaches a complete table, nothing in the
 * route maps is unreachable, and the object table describes exactly the
 * live ids.
 *
 * Subtests that fail on the code under test (bugs, not test errors):
 *  fail_alias_slots, fail_consumers, fail_objects: an apply that overflows
 *	a map logs the object it was writing, never the full map;
 *  object_names, consumers: a selector object keeps the name of the first
 *	route that produced its content (renames are never recorded), and its
 *	section ("rule N" in maps.h) is never written;
 *  zero_weight_backend, all_weights_zero: a backend that only a weight 0
 *	names is written, then retired, on every apply (never idempotent);
 *  killed_in_retire: complete objects whose entries an interrupted retire
 *	already deleted are trusted by every later apply: the frontend names a
 *	missing selector for good.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/map_dump.h"
#include "image/image.h"
#include "image/image_apply.h"
#include "lib/dp_fixture.h"
#include "lib/translate_fixture.h"
#include "test_progs.h"
#include "translate_cases.h"

/* ---- pinned map tables ---------------------------------------------------- */

enum { M_FE, M_CONS, M_SEL, M_ALIAS, M_BE, M_EP, M_OBJ, NR_M };

static const char *const map_names[NR_M] = {
	[M_FE] = GAMMAD_MAP_FRONTEND, [M_CONS] = GAMMAD_MAP_CONSUMER,
	[M_SEL] = GAMMAD_MAP_SELECTOR, [M_ALIAS] = GAMMAD_MAP_ALIAS,
	[M_BE] = GAMMAD_MAP_BACKEND, [M_EP] = GAMMAD_MAP_ENDPOINT,
	[M_OBJ] = GAMMAD_MAP_OBJECTS,
};

/* A whole map, records (key || value) sorted by key. */
struct tab {
	char *rec;
	size_t nr, ksz, vsz;
};

#define REC(t, i) ((t)->rec + (i) * ((t)->ksz + (t)->vsz))
#define KEY(t, i) ((void *)REC(t, i))
#define VAL(t, i) ((void *)(REC(t, i) + (t)->ksz))

static int key_cmp(const void *a, const void *b, void *ksz)
{
	return memcmp(a, b, *(size_t *)ksz);
}

static int pinned_fd(const char *pin_dir, const char *name)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

static void tab_free(struct tab *t)
{
	free(t->rec);
	memset(t, 0, sizeof(*t));
}

static int tab_read(const char *pin_dir, const char *name, struct tab *t)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	size_t cap;
	void *prev = NULL;
	char key[512];
	int fd, err = 0;

	memset(t, 0, sizeof(*t));
	fd = pinned_fd(pin_dir, name);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	t->ksz = info.key_size;
	t->vsz = info.value_size;
	cap = (size_t)info.max_entries + 1;
	t->rec = calloc(cap, t->ksz + t->vsz);
	if (!t->rec || t->ksz > sizeof(key)) {
		err = -ENOMEM;
		goto out;
	}
	while (t->nr < cap) {
		if (bpf_map_get_next_key(fd, prev, key)) {
			err = errno == ENOENT ? 0 : -errno;
			break;
		}
		memcpy(KEY(t, t->nr), key, t->ksz);
		prev = KEY(t, t->nr);
		if (bpf_map_lookup_elem(fd, key, VAL(t, t->nr))) {
			err = -errno;
			break;
		}
		t->nr++;
	}
	qsort_r(t->rec, t->nr, t->ksz + t->vsz, key_cmp, &t->ksz);
out:
	close(fd);
	if (err)
		tab_free(t);
	return err;
}

/* Index of key in t, or -1. */
static long tab_find(const struct tab *t, const void *key)
{
	size_t lo = 0, hi = t->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(KEY(t, mid), key, t->ksz);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static long map_count(const char *pin_dir, const char *name)
{
	struct tab t;
	long n;

	if (tab_read(pin_dir, name, &t))
		return -1;
	n = (long)t.nr;
	tab_free(&t);
	return n;
}

/* Snapshot of every route map and the object table. */
struct snap {
	struct tab t[NR_M];
};

static int snap_take(const char *pin_dir, struct snap *s)
{
	int err = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < NR_M && !err; i++)
		err = tab_read(pin_dir, map_names[i], &s->t[i]);
	return err;
}

static void snap_free(struct snap *s)
{
	for (int i = 0; i < NR_M; i++)
		tab_free(&s->t[i]);
}

/* Maps whose contents differ (names printed); 0: byte-identical. */
static int snap_diff(const struct snap *a, const struct snap *b, const char *when)
{
	int n = 0;

	for (int i = 0; i < NR_M; i++) {
		const struct tab *x = &a->t[i], *y = &b->t[i];

		if (x->nr == y->nr && !memcmp(x->rec, y->rec, x->nr * (x->ksz + x->vsz)))
			continue;
		test__printf("%s: map %s differs (%zu -> %zu entries)\n", when, map_names[i],
			     x->nr, y->nr);
		n++;
	}
	return n;
}

/* Drop NAMESPACE objects: they follow the image even when an apply fails. */
static void snap_strip_namespaces(struct snap *s)
{
	struct tab *t = &s->t[M_OBJ];
	size_t n = 0, rs = t->ksz + t->vsz;

	for (size_t i = 0; i < t->nr; i++) {
		const struct gammad_obj_key *k = KEY(t, i);

		if (k->kind == GAMMAD_OBJ_NAMESPACE)
			continue;
		memmove(REC(t, n), REC(t, i), rs);
		n++;
	}
	t->nr = n;
}

static void counts_read(const char *pin_dir, long *c)
{
	for (int i = 0; i < NR_M; i++)
		c[i] = map_count(pin_dir, map_names[i]);
}

static bool counts_equal(const long *a, const long *b, const char *when)
{
	bool ok = true;

	for (int i = 0; i < NR_M; i++) {
		if (a[i] == b[i])
			continue;
		test__printf("%s: %s has %ld entries, want %ld\n", when, map_names[i], b[i], a[i]);
		ok = false;
	}
	return ASSERT_TRUE(ok, when);
}

/* ---- the independent consistency checker ------------------------------------ */

struct world {
	const char *when;
	bool loose;	/* mid-apply state: only complete tables and recorded ids */
	struct tab t[NR_M];
	bool *seen[NR_M];
	int bad;
};

/* A problem only in the state between two applies. */
#define BAD_STRICT(w, fmt, ...) do {					\
	if (!(w)->loose)						\
		BAD(w, fmt, ##__VA_ARGS__);				\
} while (0)

#define BAD(w, fmt, ...) do {						\
	(w)->bad++;							\
	test__printf("  check (%s): " fmt "\n", (w)->when, ##__VA_ARGS__);	\
} while (0)

static const struct gammad_obj_val *obj_of(struct world *w, uint32_t kind, uint32_t id)
{
	struct gammad_obj_key k = { .kind = kind, .id = id };
	long i = tab_find(&w->t[M_OBJ], &k);

	return i < 0 ? NULL : VAL(&w->t[M_OBJ], i);
}

static void check_backend(struct world *w, uint32_t be_id)
{
	const struct gammad_obj_val *o;
	const struct gammad_be_val *be;
	long i = tab_find(&w->t[M_BE], &be_id);

	if (i < 0) {
		BAD(w, "backend %u named by an alias slot is missing", be_id);
		return;
	}
	w->seen[M_BE][i] = true;
	be = VAL(&w->t[M_BE], i);
	if (!obj_of(w, GAMMAD_OBJ_BACKEND, be_id))
		BAD(w, "backend %u has no BACKEND object", be_id);
	if (be->nr_endpoints && !be->ep_set)
		BAD(w, "backend %u: %u endpoints in ep_set 0", be_id, be->nr_endpoints);
	if (!be->ep_set)
		return;
	o = obj_of(w, GAMMAD_OBJ_ENDPOINT_SET, be->ep_set);
	if (!o)
		BAD(w, "ep_set %u of backend %u has no ENDPOINT_SET object", be->ep_set, be_id);
	else if (o->ref != be->nr_endpoints)
		BAD(w, "ep_set %u: object says %u endpoints, backend %u says %u", be->ep_set,
		    o->ref, be_id, be->nr_endpoints);
	for (uint32_t idx = 0; idx < be->nr_endpoints; idx++) {
		struct gammad_ep_key k = { .ep_set = be->ep_set, .idx = idx };
		long e = tab_find(&w->t[M_EP], &k);

		if (e < 0)
			BAD(w, "backend %u: endpoint %u/%u missing", be_id, be->ep_set, idx);
		else
			w->seen[M_EP][e] = true;
	}
}

static void check_selector(struct world *w, uint32_t sel, const char *from)
{
	const struct gammad_sel_val *sv;
	long i;

	if (!sel) {
		BAD(w, "%s names selector 0", from);
		return;
	}
	i = tab_find(&w->t[M_SEL], &sel);
	if (i < 0) {
		BAD(w, "%s names selector %u, which is missing", from, sel);
		return;
	}
	w->seen[M_SEL][i] = true;
	sv = VAL(&w->t[M_SEL], i);
	if (!obj_of(w, GAMMAD_OBJ_SELECTOR, sel))
		BAD(w, "selector %u has no SELECTOR object", sel);
	if (sv->route_id != sel)
		BAD(w, "selector %u: route_id %u", sel, sv->route_id);
	for (uint32_t s = 0; s < sv->nr_slots; s++) {
		struct gammad_alias_key k = { .sel_id = sel, .slot = s };
		const struct gammad_alias_val *a;
		long j = tab_find(&w->t[M_ALIAS], &k);

		if (j < 0) {
			BAD(w, "selector %u: alias slot %u of %u missing", sel, s, sv->nr_slots);
			continue;
		}
		w->seen[M_ALIAS][j] = true;
		a = VAL(&w->t[M_ALIAS], j);
		check_backend(w, a->primary);
		check_backend(w, a->alias);
	}
}

static bool u32_in(const uint32_t *v, size_t n, uint32_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void check_frontends(struct world *w, uint32_t *svc_ids, uint32_t *gens)
{
	const struct tab *fe = &w->t[M_FE], *cons = &w->t[M_CONS];

	for (size_t i = 0; i < fe->nr; i++) {
		const struct gammad_fe_key *k = KEY(fe, i);
		const struct gammad_fe_val *v = VAL(fe, i);
		const struct gammad_obj_val *o;
		char from[96], ip[INET6_ADDRSTRLEN];
		size_t ncons = 0;

		inet_ntop(k->family, k->addr, ip, sizeof(ip));
		snprintf(from, sizeof(from), "frontend %s:%u/%u", ip, ntohs(k->port), k->proto);
		if (u32_in(svc_ids, i, v->svc_port_id))
			BAD(w, "%s: svc_port_id %u used twice", from, v->svc_port_id);
		if (u32_in(gens, i, v->table_gen))
			BAD(w, "%s: table_gen %u used twice", from, v->table_gen);
		svc_ids[i] = v->svc_port_id;
		gens[i] = v->table_gen;
		check_selector(w, v->default_sel, from);
		for (size_t j = 0; j < cons->nr; j++) {
			const struct gammad_cons_key *ck = KEY(cons, j);

			if (ck->table_gen != v->table_gen)
				continue;
			ncons++;
			w->seen[M_CONS][j] = true;
			if (!ck->ns_id)
				BAD(w, "%s: consumer entry with ns_id 0", from);
			if (!obj_of(w, GAMMAD_OBJ_NAMESPACE, ck->ns_id))
				BAD(w, "%s: consumer ns %u has no NAMESPACE object", from, ck->ns_id);
			check_selector(w, ((const struct gammad_cons_val *)VAL(cons, j))->sel, from);
		}
		if (!!(v->flags & GAMMAD_FE_HAS_CONSUMERS) != (ncons > 0))
			BAD(w, "%s: flags %#x but %zu consumer entries", from, v->flags, ncons);
		o = obj_of(w, GAMMAD_OBJ_FRONTEND, v->svc_port_id);
		if (!o) {
			BAD(w, "%s: svc_port_id %u has no FRONTEND object", from, v->svc_port_id);
		} else {
			if (o->ref != v->table_gen)
				BAD_STRICT(w, "%s: FRONTEND object ref %u, table_gen %u", from, o->ref,
				    v->table_gen);
			if (o->port != ntohs(k->port) || o->proto != k->proto ||
			    o->family != k->family || memcmp(o->addr, k->addr, 16))
				BAD_STRICT(w, "%s: FRONTEND object %u describes another address", from,
				    v->svc_port_id);
		}
		o = obj_of(w, GAMMAD_OBJ_TABLE, v->table_gen);
		if (!o)
			BAD(w, "%s: table_gen %u has no TABLE object", from, v->table_gen);
		else if (o->ref != v->svc_port_id)
			BAD_STRICT(w, "%s: TABLE object ref %u, svc_port_id %u", from, o->ref,
			    v->svc_port_id);
	}
}

static bool ep_set_live(struct world *w, uint32_t id)
{
	const struct tab *be = &w->t[M_BE];

	for (size_t i = 0; i < be->nr; i++)
		if (w->seen[M_BE][i] && ((const struct gammad_be_val *)VAL(be, i))->ep_set == id)
			return true;
	return false;
}

static void check_objects(struct world *w, const uint32_t *svc_ids, const uint32_t *gens)
{
	const struct tab *obj = &w->t[M_OBJ];
	size_t nfe = w->t[M_FE].nr;

	for (size_t i = 0; i < obj->nr; i++) {
		const struct gammad_obj_key *k = KEY(obj, i);
		const struct gammad_obj_val *v = VAL(obj, i);
		bool live = false;
		long j;

		if (!v->hash)
			BAD(w, "object %u/%u has hash 0 (incomplete)", k->kind, k->id);
		switch (k->kind) {
		case GAMMAD_OBJ_FRONTEND:
			live = u32_in(svc_ids, nfe, k->id);
			break;
		case GAMMAD_OBJ_TABLE:
			live = u32_in(gens, nfe, k->id);
			break;
		case GAMMAD_OBJ_SELECTOR:
			j = tab_find(&w->t[M_SEL], &k->id);
			live = j >= 0 && w->seen[M_SEL][j];
			break;
		case GAMMAD_OBJ_BACKEND:
			j = tab_find(&w->t[M_BE], &k->id);
			live = j >= 0 && w->seen[M_BE][j];
			break;
		case GAMMAD_OBJ_ENDPOINT_SET:
			live = ep_set_live(w, k->id);
			break;
		case GAMMAD_OBJ_NAMESPACE:
			live = k->id && v->name[0] && !strcmp(v->name, v->namespace);
			break;
		default:
			break;
		}
		if (!live)
			BAD(w, "object %u/%u (%s/%s) describes no live id", k->kind, k->id,
			    v->namespace, v->name);
		/* Identity kinds: one object per identity. */
		if ((k->kind == GAMMAD_OBJ_FRONTEND || k->kind == GAMMAD_OBJ_BACKEND) && v->hash)
			for (size_t n = i + 1; n < obj->nr; n++) {
				const struct gammad_obj_key *k2 = KEY(obj, n);
				const struct gammad_obj_val *v2 = VAL(obj, n);

				if (k2->kind == k->kind && v2->ident == v->ident && v2->hash)
					BAD(w, "objects %u/%u and %u/%u have the same identity",
					    k->kind, k->id, k2->kind, k2->id);
			}
	}
}

static void key_hex(const struct tab *t, size_t i, char *buf, size_t len)
{
	const unsigned char *k = KEY(t, i);
	size_t n = 0;

	for (size_t b = 0; b < t->ksz && n + 3 < len; b++)
		n += snprintf(buf + n, len - n, "%02x", k[b]);
}

/* Number of problems found, each printed; 0 when the maps are consistent. */
static int check_world_mode(const char *pin_dir, const char *when, bool loose)
{
	struct world w = { .when = when, .loose = loose };
	uint32_t *svc_ids = NULL, *gens = NULL;
	char hex[128];

	for (int m = 0; m < NR_M; m++) {
		if (tab_read(pin_dir, map_names[m], &w.t[m])) {
			BAD(&w, "cannot read %s", map_names[m]);
			goto out;
		}
		w.seen[m] = calloc(w.t[m].nr + 1, sizeof(bool));
	}
	svc_ids = calloc(w.t[M_FE].nr + 1, sizeof(*svc_ids));
	gens = calloc(w.t[M_FE].nr + 1, sizeof(*gens));
	check_frontends(&w, svc_ids, gens);
	if (w.loose)
		goto out;
	for (int m = M_CONS; m <= M_EP; m++)
		for (size_t i = 0; i < w.t[m].nr; i++) {
			if (w.seen[m][i])
				continue;
			key_hex(&w.t[m], i, hex, sizeof(hex));
			BAD(&w, "%s entry %s is reachable from no frontend", map_names[m], hex);
		}
	check_objects(&w, svc_ids, gens);
out:
	for (int m = 0; m < NR_M; m++) {
		tab_free(&w.t[m]);
		free(w.seen[m]);
	}
	free(svc_ids);
	free(gens);
	return w.bad;
}

static int check_world(const char *pin_dir, const char *when)
{
	return check_world_mode(pin_dir, when, false);
}

#define ASSERT_WORLD(fx, when) ASSERT_EQ(check_world((fx)->pin_dir, when), 0, when)

/* ---- images --------------------------------------------------------------- */

struct built {
	struct tfx f;
	struct img img;
	bool ok;
};

/* base: on top of the tfx base cluster (tfx_base_yaml), else yaml alone. */
static int build_img(struct built *b, const char *yaml, bool base)
{
	int err;

	memset(b, 0, sizeof(*b));
	if (base) {
		err = tfx_setup(&b->f, yaml);
	} else {
		tfx_init(&b->f);
		err = tfx_load(&b->f, "case.yaml", yaml) ?: tfx_translate(&b->f);
	}
	if (!err)
		err = img_build(&b->f.m, &b->f.res, &b->img);
	b->ok = !err;
	return err;
}

static void built_free(struct built *b)
{
	if (b->ok)
		img_free(&b->img);
	tfx_free(&b->f);
}

/* Apply base cluster + yaml; the apply's error, or a build error (-1000 - x). */
static int apply_yaml(struct dp *dp, const char *yaml, struct ia_stats *s)
{
	struct built b;
	int err = build_img(&b, yaml, true);

	if (!ASSERT_OK(err, "build image"))
		err = -1000 + err;
	else
		err = ia_apply(dp, &b.img, NULL, s);
	built_free(&b);
	return err;
}

/* The same, with everything ia_apply logs on stderr captured into log. */
static int apply_logged(struct dp *dp, const char *yaml, bool base, struct ia_stats *s,
			char *log, size_t len)
{
	struct built b;
	FILE *tmp = tmpfile();
	int err, saved = dup(2);
	size_t n = 0;

	log[0] = 0;
	err = build_img(&b, yaml, base);
	if (!ASSERT_OK(err, "build image") || !ASSERT_OK_PTR(tmp, "tmpfile") ||
	    !ASSERT_GE(saved, 0, "dup stderr")) {
		err = -1000 + err;
		goto out;
	}
	fflush(stderr);
	dup2(fileno(tmp), 2);
	err = ia_apply(dp, &b.img, NULL, s);
	fflush(stderr);
	dup2(saved, 2);
	rewind(tmp);
	n = fread(log, 1, len - 1, tmp);
	log[n] = 0;
	test__printf("apply log:\n%s", log);
out:
	if (tmp)
		fclose(tmp);
	if (saved >= 0)
		close(saved);
	built_free(&b);
	return err;
}

static void stats_print(const char *what, const struct ia_stats *s)
{
	test__printf("%s: %zu frontends, %zu flipped, %zu removed, written sel %zu be %zu "
		     "eps %zu, retired %zu, changes %zu\n", what, s->frontends,
		     s->frontends_flipped, s->frontends_removed, s->selectors_written,
		     s->backends_written, s->endpoint_sets_written, s->retired,
		     ia_stats_changes(s));
}

/* ---- manifests ---------------------------------------------------------------- */

#define R_A80(w1, w2) HR("r", "app") PARENT_A80 "  rules:\n" \
	RULE_ANY(BEW("b1", w1) ", " BEW("b2", w2))
#define EP_B2 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: b2-2, namespace: app, labels: {kubernetes.io/service-name: b2}}\n" \
	"addressType: IPv4\nendpoints: [{addresses: [10.0.2.2]}]\n" \
	"ports: [{name: http, port: 8080}]\n"
#define GRANT_APP "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n" \
	"metadata: {name: g, namespace: app}\nspec:\n" \
	"  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: client}," \
	" {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: other}," \
	" {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: c3}]\n" \
	"  to: [{group: \"\", kind: Service}]\n"
#define CONSUMER(ns, be) HR("c", ns) PARENT_A80 "  rules:\n" \
	RULE_ANY("{name: " be ", namespace: app, port: 80}")
#define NS(name) "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " name "}\n"
/* Service app/<name> at 10.96.2.<n>, one endpoint 10.0.20.<n>:8080. */
#define NEWSVC(name, n) \
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec:\n  clusterIP: 10.96.2." n "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n" \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " name "-1, namespace: app, labels: {kubernetes.io/service-name: " \
	name "}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.20." n "]}]\n" \
	"ports: [{name: http, port: 8080}]\n"
#define TCP_A81 TCPR("t", "app") PARENT_PORT("81") "  rules:\n" \
	RULE_ANY(BEW("b1", "1") ", " BEW("b2", "2") ", " BEW("b3", "3"))
#define R_B1 "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n" \
	"metadata: {name: rb, namespace: app}\nspec:\n" \
	"  parentRefs: [{group: \"\", kind: Service, name: b1}]\n  rules:\n" RULE_ANY(BE("b3"))

/* ---- lookups by name through the object table ------------------------------ */

/* id of the (only) object of kind named ns/name (port: FRONTEND, BACKEND); 0: none. */
static uint32_t obj_id(const char *pin_dir, uint32_t kind, const char *ns, const char *name,
		       uint16_t port)
{
	struct tab t;
	uint32_t id = 0;
	int found = 0;

	if (tab_read(pin_dir, GAMMAD_MAP_OBJECTS, &t))
		return 0;
	for (size_t i = 0; i < t.nr; i++) {
		const struct gammad_obj_key *k = KEY(&t, i);
		const struct gammad_obj_val *v = VAL(&t, i);

		if (k->kind != kind || strcmp(v->namespace, ns) || strcmp(v->name, name) ||
		    (port && v->port != port))
			continue;
		id = k->id;
		found++;
	}
	tab_free(&t);
	if (found > 1)
		test__printf("obj_id: %d objects of kind %u for %s/%s:%u\n", found, kind, ns,
			     name, port);
	return found == 1 ? id : 0;
}

static int fe_lookup(struct dp_fixture *fx, const char *vip, uint16_t port, uint8_t proto,
		     struct gammad_fe_val *v)
{
	struct gammad_fe_key k;
	struct in_addr a;
	int fd = pinned_fd(fx->pin_dir, GAMMAD_MAP_FRONTEND), err;

	inet_pton(AF_INET, vip, &a);
	dp_fe_key(&k, AF_INET, &a, port, proto);
	err = bpf_map_lookup_elem(fd, &k, v) ? -errno : 0;
	close(fd);
	return err;
}

static int be_lookup(struct dp_fixture *fx, uint32_t id, struct gammad_be_val *v)
{
	int fd = pinned_fd(fx->pin_dir, GAMMAD_MAP_BACKEND), err;

	err = bpf_map_lookup_elem(fd, &id, v) ? -errno : 0;
	close(fd);
	return err;
}

static const char *const base_svcs[] = { "b1", "b2", "b3", "bempty" };
#define NR_BASE_SVCS 4

struct ids {
	uint32_t be[NR_BASE_SVCS];	/* base_svcs port 80 */
	struct gammad_fe_val fe_a80, fe_a81, fe_b1, fe_b2;
};

static void ids_read(struct dp_fixture *fx, struct ids *ids)
{
	memset(ids, 0, sizeof(*ids));
	for (int i = 0; i < NR_BASE_SVCS; i++)
		ids->be[i] = obj_id(fx->pin_dir, GAMMAD_OBJ_BACKEND, "app", base_svcs[i], 80);
	fe_lookup(fx, "10.96.0.10", 80, IPPROTO_TCP, &ids->fe_a80);
	fe_lookup(fx, "10.96.0.10", 81, IPPROTO_TCP, &ids->fe_a81);
	fe_lookup(fx, "10.96.0.11", 80, IPPROTO_TCP, &ids->fe_b1);
	fe_lookup(fx, "10.96.0.12", 80, IPPROTO_TCP, &ids->fe_b2);
}

/* ---- 1+2: idempotence ------------------------------------------------------ */

static void subtest_idempotent(void)
{
	const char *yaml = R_A80("70", "30") EP_B2 GRANT_APP CONSUMER("client", "b3") R_B1;
	struct dp_fixture fx;
	struct snap s1 = {}, s2 = {};
	struct ia_stats st;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "first apply"))
		goto out;
	stats_print("first", &st);
	ASSERT_GT(st.frontends_flipped, 0, "first apply publishes");
	ASSERT_EQ(st.frontends_flipped, st.frontends, "every frontend published");
	ASSERT_WORLD(&fx, "after first apply");
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot 1");
	ASSERT_GT(s1.t[M_FE].nr, 0, "frontends in the kernel");
	ASSERT_GT(s1.t[M_CONS].nr, 0, "consumer entries in the kernel");

	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "second apply");
	stats_print("second", &st);
	ASSERT_EQ(ia_stats_changes(&st), 0, "second apply changes nothing");
	ASSERT_EQ(st.frontends_flipped, 0, "no flip");
	ASSERT_WORLD(&fx, "after second apply");
	ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot 2");
	ASSERT_EQ(snap_diff(&s1, &s2, "idempotent"), 0, "maps byte-identical");
out:
	snap_free(&s1);
	snap_free(&s2);
	fx_teardown(&fx);
}

/* ---- 3: minimal change -------------------------------------------------------- */

static bool fe_same(const struct gammad_fe_val *a, const struct gammad_fe_val *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* Every FRONTEND and BACKEND object of a is in b under the same id, same name. */
static int ids_changed(const struct snap *a, const struct snap *b, const char *when)
{
	const struct tab *x = &a->t[M_OBJ], *y = &b->t[M_OBJ];
	int n = 0, seen = 0;

	for (size_t i = 0; i < x->nr; i++) {
		const struct gammad_obj_key *k = KEY(x, i);
		const struct gammad_obj_val *v = VAL(x, i), *w;
		long j;

		if (k->kind != GAMMAD_OBJ_FRONTEND && k->kind != GAMMAD_OBJ_BACKEND)
			continue;
		seen++;
		j = tab_find(y, k);
		w = j < 0 ? NULL : VAL(y, j);
		if (w && w->ident == v->ident && !strcmp(w->name, v->name) && w->port == v->port)
			continue;
		test__printf("%s: %s %s/%s:%u lost id %u\n", when,
			     k->kind == GAMMAD_OBJ_BACKEND ? "backend" : "frontend", v->namespace,
			     v->name, v->port, k->id);
		n++;
	}
	return seen ? n : -1;
}

static void subtest_minimal_change(void)
{
	struct dp_fixture fx;
	struct snap s1 = {}, s2 = {};
	struct ids a, b, c;
	struct ia_stats st;
	struct gammad_be_val be1, be2;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, R_A80("70", "30") R_B1, &st), "apply 70/30"))
		goto out;
	ASSERT_WORLD(&fx, "70/30");
	ids_read(&fx, &a);
	for (int i = 0; i < NR_BASE_SVCS; i++)
		ASSERT_NEQ(a.be[i], 0, base_svcs[i]);
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot 70/30");

	/* One route's weights: one selector, one flip (a:80), nothing else. */
	ASSERT_OK(apply_yaml(fx.dp, R_A80("50", "50") R_B1, &st), "apply 50/50");
	stats_print("weights", &st);
	ASSERT_EQ(st.frontends_flipped, 1, "weights: one frontend flipped");
	ASSERT_EQ(st.selectors_written, 1, "weights: one selector written");
	ASSERT_EQ(st.backends_written, 0, "weights: no backend written");
	ASSERT_EQ(st.endpoint_sets_written, 0, "weights: no endpoint set written");
	ASSERT_EQ(st.frontends_removed, 0, "weights: no frontend removed");
	ASSERT_WORLD(&fx, "50/50");
	ids_read(&fx, &b);
	for (int i = 0; i < NR_BASE_SVCS; i++)
		ASSERT_EQ(b.be[i], a.be[i], "weights: be_id kept");
	ASSERT_EQ(b.fe_a80.svc_port_id, a.fe_a80.svc_port_id, "weights: a:80 svc_port_id kept");
	ASSERT_NEQ(b.fe_a80.table_gen, a.fe_a80.table_gen, "weights: a:80 new table_gen");
	ASSERT_NEQ(b.fe_a80.default_sel, a.fe_a80.default_sel, "weights: a:80 new selector");
	ASSERT_TRUE(fe_same(&b.fe_a81, &a.fe_a81), "weights: a:81 untouched");
	ASSERT_TRUE(fe_same(&b.fe_b1, &a.fe_b1), "weights: b1 untouched");
	ASSERT_TRUE(fe_same(&b.fe_b2, &a.fe_b2), "weights: b2 untouched");
	ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot 50/50");
	ASSERT_EQ(ids_changed(&s1, &s2, "weights"), 0, "weights: every svc_port_id, be_id kept");
	/* Every other frontend entry byte-identical, and every svc_port_id kept. */
	if (ASSERT_EQ(s2.t[M_FE].nr, s1.t[M_FE].nr, "same frontends")) {
		size_t changed = 0;

		for (size_t i = 0; i < s1.t[M_FE].nr; i++) {
			const struct gammad_fe_val *x = VAL(&s1.t[M_FE], i);
			const struct gammad_fe_val *y = VAL(&s2.t[M_FE], i);

			ASSERT_EQ(memcmp(KEY(&s1.t[M_FE], i), KEY(&s2.t[M_FE], i),
					 sizeof(struct gammad_fe_key)), 0, "same frontend keys");
			ASSERT_EQ(x->svc_port_id, y->svc_port_id, "svc_port_id kept");
			changed += !fe_same(x, y);
		}
		ASSERT_EQ(changed, 1, "exactly one frontend entry changed");
	}
	ASSERT_EQ(s2.t[M_BE].nr, s1.t[M_BE].nr, "weights: backend count");
	ASSERT_EQ(memcmp(s1.t[M_BE].rec, s2.t[M_BE].rec,
			 s1.t[M_BE].nr * (s1.t[M_BE].ksz + s1.t[M_BE].vsz)), 0,
		  "weights: backend map byte-identical");
	ASSERT_EQ(s2.t[M_SEL].nr, s1.t[M_SEL].nr, "weights: selector count back");

	/* One Service's endpoints: one endpoint set + its backend, no flip. */
	if (!ASSERT_OK(be_lookup(&fx, b.be[1], &be1), "b2 backend"))
		goto out;
	ASSERT_OK(apply_yaml(fx.dp, R_A80("50", "50") R_B1 EP_B2, &st), "apply b2 endpoints");
	stats_print("endpoints", &st);
	ASSERT_EQ(st.endpoint_sets_written, 1, "endpoints: one endpoint set written");
	ASSERT_EQ(st.backends_written, 1, "endpoints: one backend written");
	ASSERT_EQ(st.selectors_written, 0, "endpoints: no selector written");
	ASSERT_EQ(st.frontends_flipped, 0, "endpoints: no frontend flipped");
	ASSERT_WORLD(&fx, "b2 endpoints");
	snap_free(&s1);
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot b2 endpoints");
	ASSERT_EQ(ids_changed(&s2, &s1, "endpoints"), 0, "endpoints: every svc_port_id, be_id kept");
	ids_read(&fx, &c);
	for (int i = 0; i < NR_BASE_SVCS; i++)
		ASSERT_EQ(c.be[i], a.be[i], "endpoints: be_id kept");
	ASSERT_TRUE(fe_same(&c.fe_a80, &b.fe_a80), "endpoints: a:80 untouched");
	ASSERT_TRUE(fe_same(&c.fe_b2, &b.fe_b2), "endpoints: b2 frontend untouched");
	if (ASSERT_OK(be_lookup(&fx, c.be[1], &be2), "b2 backend after")) {
		ASSERT_NEQ(be2.ep_set, be1.ep_set, "b2 on a new endpoint set");
		ASSERT_EQ(be2.nr_endpoints, 2, "b2 has 2 endpoints");
	}
out:
	snap_free(&s1);
	snap_free(&s2);
	fx_teardown(&fx);
}

/* ---- 4: removal, cycles, churn --------------------------------------------- */

/* Dual-stack Service d: one frontend and one backend per family. */
#define DUAL "---\napiVersion: v1\nkind: Service\nmetadata: {name: d, namespace: app}\n" \
	"spec:\n  clusterIPs: [10.96.5.1, \"fd00::5:1\"]\n" \
	"  ports: [{name: http, port: 80}]\n" \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: d4, namespace: app, labels: {kubernetes.io/service-name: d}}\n" \
	"addressType: IPv4\nendpoints: [{addresses: [10.0.5.1]}]\n" \
	"ports: [{name: http, port: 8080}]\n" \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: d6, namespace: app, labels: {kubernetes.io/service-name: d}}\n" \
	"addressType: IPv6\nendpoints: [{addresses: [\"fd00::a:1\"]}, {addresses: [\"fd00::a:2\"]}]\n" \
	"ports: [{name: http, port: 8080}]\n"

static const char *const variants[] = {
	"",
	R_A80("70", "30"),
	R_A80("50", "50") EP_B2,
	GRANT_APP CONSUMER("client", "b3") NEWSVC("n1", "1") R_B1,
	R_A80("70", "30") GRANT_APP CONSUMER("client", "b1") NS("c3") CONSUMER("c3", "b2")
		NEWSVC("n1", "1") NEWSVC("n2", "2") EP_B2,
	R_A80("1", "0") HR("rm", "app") PARENT_PORT("81") "  rules:\n"
		RULE_ANY(BE("b3") ", " BE("missing")) DUAL,
	TCP_A81 NEWSVC("n2", "2") HR("rn", "app")
		"  parentRefs: [{group: \"\", kind: Service, name: n2, port: 80}]\n  rules:\n"
		RULE_ANY(BEW("n2", "3") ", " BEW("b1", "1")),
};
#define NR_VARIANTS (sizeof(variants) / sizeof(variants[0]))

static void subtest_removal(void)
{
	struct dp_fixture fx;
	long c0[NR_M], c1[NR_M], cA[NR_M], c[NR_M];
	struct ia_stats st;
	char when[64];

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, "", &st), "base"))
		goto out;
	ASSERT_WORLD(&fx, "base");
	counts_read(fx.pin_dir, c0);

	/* A route and a Service added, then removed: counts drop back. */
	ASSERT_OK(apply_yaml(fx.dp, R_A80("70", "30") NEWSVC("n1", "1"), &st), "add");
	ASSERT_WORLD(&fx, "route + service added");
	counts_read(fx.pin_dir, c1);
	ASSERT_EQ(c1[M_FE], c0[M_FE] + 1, "one frontend more");
	/* n1's backend added, a:80's own (now unrouted) retired */
	ASSERT_EQ(c1[M_BE], c0[M_BE], "backend count");
	ASSERT_NEQ(obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "n1", 80), 0, "n1 backend");
	ASSERT_EQ(obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "a", 80), 0, "a:80 backend");
	ASSERT_GT(c1[M_ALIAS], c0[M_ALIAS], "more alias slots");
	ASSERT_OK(apply_yaml(fx.dp, "", &st), "remove");
	stats_print("remove", &st);
	ASSERT_EQ(st.frontends_removed, 1, "one frontend removed");
	ASSERT_GT(st.retired, 0, "entries retired");
	ASSERT_WORLD(&fx, "route + service removed");
	counts_read(fx.pin_dir, c);
	counts_equal(c0, c, "counts back after removal");
	ASSERT_EQ(obj_id(fx.pin_dir, GAMMAD_OBJ_FRONTEND, "app", "n1", 80), 0, "n1 object gone");
	ASSERT_EQ(obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "n1", 80), 0,
		  "n1 backend object gone");

	/* A -> B -> C -> A, twice. */
	ASSERT_OK(apply_yaml(fx.dp, variants[1], &st), "A");
	counts_read(fx.pin_dir, cA);
	for (int round = 0; round < 2; round++) {
		ASSERT_OK(apply_yaml(fx.dp, variants[3], &st), "B");
		ASSERT_WORLD(&fx, "cycle B");
		ASSERT_OK(apply_yaml(fx.dp, variants[4], &st), "C");
		ASSERT_WORLD(&fx, "cycle C");
		ASSERT_OK(apply_yaml(fx.dp, variants[1], &st), "A again");
		ASSERT_WORLD(&fx, "cycle A");
		counts_read(fx.pin_dir, c);
		snprintf(when, sizeof(when), "cycle %d: counts equal to the first A", round);
		counts_equal(cA, c, when);
	}

	/* An image with no Service at all: every route map empties. */
	{
		struct built e;

		if (ASSERT_OK(build_img(&e, NS("lonely"), false), "empty image")) {
			ASSERT_OK(ia_apply(fx.dp, &e.img, NULL, &st), "apply empty image");
			ASSERT_WORLD(&fx, "empty image");
			counts_read(fx.pin_dir, c);
			for (int m = M_FE; m <= M_EP; m++)
				ASSERT_EQ(c[m], 0, map_names[m]);
			ASSERT_EQ(c[M_OBJ], 1, "only the namespace object left");
			ASSERT_NEQ(obj_id(fx.pin_dir, GAMMAD_OBJ_NAMESPACE, "lonely", "lonely", 0), 0,
				   "namespace object of lonely");
		}
		built_free(&e);
		ASSERT_OK(apply_yaml(fx.dp, variants[1], &st), "A after empty");
		ASSERT_WORLD(&fx, "A after empty");
		counts_read(fx.pin_dir, c);
		counts_equal(cA, c, "A after empty: counts");
	}
out:
	fx_teardown(&fx);
}

/*
 * Content-addressed entries are never edited: a key of the consumer,
 * selector, alias or endpoint map present before and after an apply holds
 * the same value (its id was not retired in between, so not reused).
 */
static int snap_edited(const struct snap *a, const struct snap *b, const char *when)
{
	static const int maps[] = { M_CONS, M_SEL, M_ALIAS, M_EP };
	int n = 0;

	for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
		const struct tab *x = &a->t[maps[m]], *y = &b->t[maps[m]];

		for (size_t i = 0; i < x->nr; i++) {
			long j = tab_find(y, KEY(x, i));

			if (j < 0 || !memcmp(VAL(x, i), VAL(y, j), x->vsz))
				continue;
			test__printf("%s: live entry of %s edited in place\n", when,
				     map_names[maps[m]]);
			n++;
		}
	}
	return n;
}

static void subtest_churn(void)
{
	struct snap before = {}, cur = {};
	long first[NR_VARIANTS][NR_M], c[NR_M];
	bool seen[NR_VARIANTS] = {};
	struct dp_fixture fx;
	struct ia_stats st;
	uint32_t rnd = 12345;
	size_t prev = NR_VARIANTS;
	char when[96];

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	for (int i = 0; i < 30; i++) {
		size_t v;

		rnd = rnd * 1103515245u + 12345u;
		v = (rnd >> 16) % NR_VARIANTS;
		snprintf(when, sizeof(when), "churn %d: variant %zu", i, v);
		if (!ASSERT_OK(apply_yaml(fx.dp, variants[v], &st), when))
			break;
		if (v == prev)
			ASSERT_EQ(ia_stats_changes(&st), 0, "same variant twice: no change");
		if (ASSERT_EQ(check_world(fx.pin_dir, when), 0, when) == false)
			break;
		snap_free(&cur);
		ASSERT_OK(snap_take(fx.pin_dir, &cur), "snapshot");
		if (i)
			ASSERT_EQ(snap_edited(&before, &cur, when), 0, "no live entry edited");
		snap_free(&before);
		before = cur;
		memset(&cur, 0, sizeof(cur));
		counts_read(fx.pin_dir, c);
		if (!seen[v]) {
			memcpy(first[v], c, sizeof(c));
			seen[v] = true;
		} else {
			snprintf(when, sizeof(when), "churn %d: counts of variant %zu", i, v);
			counts_equal(first[v], c, when);
		}
		prev = v;
	}
	/* And every variant once more, in order. */
	for (size_t v = 0; v < NR_VARIANTS; v++) {
		snprintf(when, sizeof(when), "final pass: variant %zu", v);
		ASSERT_OK(apply_yaml(fx.dp, variants[v], &st), when);
		ASSERT_WORLD(&fx, when);
		counts_read(fx.pin_dir, c);
		if (seen[v])
			counts_equal(first[v], c, when);
	}
out:
	snap_free(&before);
	snap_free(&cur);
	fx_teardown(&fx);
}

/* ---- 5: restart --------------------------------------------------------------- */

static int pinned_put(struct dp_fixture *fx, const char *name, const void *k, const void *v)
{
	int fd = pinned_fd(fx->pin_dir, name), err;

	if (fd < 0)
		return -errno;
	err = bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
	close(fd);
	return err;
}

static void subtest_restart(void)
{
	const char *yaml = R_A80("70", "30") GRANT_APP CONSUMER("client", "b3") R_B1;
	struct dp_fixture fx;
	struct snap s1 = {}, s2 = {};
	struct ia_stats st;
	struct gammad_fe_val a80;
	int err;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "first agent"))
		goto out;
	ASSERT_WORLD(&fx, "first agent");
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot");

	dp_close(fx.dp);
	fx.dp = NULL;
	err = fx_dp_open(&fx, &fx.dp);
	if (!ASSERT_OK(err, "second agent adopts"))
		goto out;
	ASSERT_TRUE(dp_adopted(fx.dp), "adopted");
	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "second agent, same image");
	stats_print("restart", &st);
	ASSERT_EQ(ia_stats_changes(&st), 0, "restart: no change");
	ASSERT_WORLD(&fx, "restart");
	ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot after restart");
	ASSERT_EQ(snap_diff(&s1, &s2, "restart"), 0, "restart: same ids, same maps");
	snap_free(&s2);

	/* Leftovers of a crashed agent: all retired by the next apply. */
	if (!ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &a80), "a:80"))
		goto out;
	{
		__u32 sel = 900, be = 901, orphan_set = 902, live_sel = a80.default_sel;
		struct gammad_sel_val sv = { .nr_slots = 2, .total_weight = 2, .route_id = 900 };
		struct gammad_alias_val av = { .threshold = 2, .primary = 901, .alias = 901 };
		struct gammad_be_val bv = { .ep_set = 902, .nr_endpoints = 2 };
		struct gammad_ep_val ep = { .family = AF_INET, .port = htons(1) };
		struct gammad_obj_val half = { .ident = 42 };
		struct gammad_obj_val stale = { .ident = 43, .hash = 44 };
		struct gammad_cons_key ck = { .table_gen = 903, .ns_id = 77 };
		struct gammad_cons_val cv = { .sel = live_sel };
		struct gammad_sel_val live_sv;
		int fd;

		fd = pinned_fd(fx.pin_dir, GAMMAD_MAP_SELECTOR);
		ASSERT_OK(bpf_map_lookup_elem(fd, &live_sel, &live_sv), "live selector");
		close(fd);
		err = pinned_put(&fx, GAMMAD_MAP_SELECTOR, &sel, &sv);
		for (__u32 s = 0; s < 2 && !err; s++) {
			struct gammad_alias_key ak = { .sel_id = sel, .slot = s };

			err = pinned_put(&fx, GAMMAD_MAP_ALIAS, &ak, &av);
		}
		/* An alias slot beyond the nr_slots of a live selector. */
		if (!err) {
			struct gammad_alias_key ak = { .sel_id = live_sel,
						       .slot = live_sv.nr_slots + 3 };

			err = pinned_put(&fx, GAMMAD_MAP_ALIAS, &ak, &av);
		}
		err = err ?: pinned_put(&fx, GAMMAD_MAP_BACKEND, &be, &bv);
		for (__u32 i = 0; i < 3 && !err; i++) {
			struct gammad_ep_key ek = { .ep_set = orphan_set, .idx = i };

			err = pinned_put(&fx, GAMMAD_MAP_ENDPOINT, &ek, &ep);
		}
		err = err ?: pinned_put(&fx, GAMMAD_MAP_OBJECTS,
					&(struct gammad_obj_key){ GAMMAD_OBJ_SELECTOR, 904 }, &half);
		err = err ?: pinned_put(&fx, GAMMAD_MAP_OBJECTS,
					&(struct gammad_obj_key){ GAMMAD_OBJ_BACKEND, 905 }, &stale);
		err = err ?: pinned_put(&fx, GAMMAD_MAP_OBJECTS,
					&(struct gammad_obj_key){ 99, 1 }, &stale);
		err = err ?: pinned_put(&fx, GAMMAD_MAP_CONSUMER, &ck, &cv);
		if (!ASSERT_OK(err, "plant leftovers"))
			goto out;
	}
	ASSERT_GT(check_world(fx.pin_dir, "leftovers planted (expected to fail)"), 0,
		  "the checker sees the leftovers");
	dp_close(fx.dp);
	fx.dp = NULL;
	if (!ASSERT_OK(fx_dp_open(&fx, &fx.dp), "third agent adopts"))
		goto out;
	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "third agent, same image");
	stats_print("leftovers", &st);
	ASSERT_EQ(st.frontends_flipped, 0, "leftovers: no flip");
	/* 1 selector + 3 alias slots + 1 backend + 3 endpoints + 1 consumer */
	ASSERT_GE(st.retired, 9, "leftovers: retired");
	ASSERT_WORLD(&fx, "leftovers retired");
	ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot after cleanup");
	ASSERT_EQ(snap_diff(&s1, &s2, "leftovers"), 0, "maps as before the leftovers");
	/* The planted ids may be handed out again only now that they are gone. */
	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "fourth apply");
	ASSERT_EQ(ia_stats_changes(&st), 0, "then stable");
	/* The restarted agent goes on with other images. */
	for (size_t v = 0; v < NR_VARIANTS; v++) {
		char when[64];

		snprintf(when, sizeof(when), "restarted agent, variant %zu", v);
		ASSERT_OK(apply_yaml(fx.dp, variants[v], &st), when);
		ASSERT_WORLD(&fx, when);
	}
out:
	snap_free(&s1);
	snap_free(&s2);
	fx_teardown(&fx);
}

/* ---- 6: counters ---------------------------------------------------------------- */

/* Set every CPU's copy of counter array `name`[id] to words of value v. */
static int counters_plant(struct dp_fixture *fx, const char *name, uint32_t id, size_t words,
			  __u64 v)
{
	int cpus = libbpf_num_possible_cpus(), fd, err;
	__u64 *vals;

	if (cpus < 0)
		return cpus;
	vals = calloc((size_t)cpus * words, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < (size_t)cpus * words; i++)
		vals[i] = v;
	fd = pinned_fd(fx->pin_dir, name);
	err = fd < 0 ? -errno : bpf_map_update_elem(fd, &id, vals, BPF_ANY) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	free(vals);
	return err;
}

/* Plant v into every id of counter array `name` that no live object uses. */
static int counters_plant_free(struct dp_fixture *fx, const char *name, uint32_t kind,
			       size_t words, __u64 v)
{
	struct tab obj;
	uint32_t cap = dp_map_capacity(fx->dp, name);
	int err;

	err = tab_read(fx->pin_dir, GAMMAD_MAP_OBJECTS, &obj);
	for (uint32_t id = 1; id < cap && !err; id++) {
		struct gammad_obj_key k = { .kind = kind, .id = id };

		if (tab_find(&obj, &k) < 0)
			err = counters_plant(fx, name, id, words, v);
	}
	tab_free(&obj);
	return err;
}

static void subtest_counters(void)
{
	const char *yaml = R_A80("70", "30");
	int cpus = libbpf_num_possible_cpus();
	struct dp_fixture fx;
	struct gammad_be_stats bs;
	struct gammad_svc_stats ss;
	struct gammad_route_stats rs;
	struct gammad_fe_val fe;
	struct ia_stats st;
	uint32_t b1, n1_be, n1_fe, n1_sel;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "apply"))
		goto out;
	b1 = obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "b1", 80);
	if (!ASSERT_NEQ(b1, 0, "b1 backend id"))
		goto out;
	ASSERT_OK(counters_plant(&fx, GAMMAD_MAP_BE_STATS, b1, 1, 7), "plant b1 counts");
	if (!ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80"))
		goto out;
	ASSERT_OK(counters_plant(&fx, GAMMAD_MAP_SVC_STATS, fe.svc_port_id,
				 sizeof(struct gammad_svc_stats) / 8, 3), "plant a:80 counts");

	/* Unrelated change for b1, a flip for a:80: both keep their counts. */
	ASSERT_OK(apply_yaml(fx.dp, R_A80("60", "40") EP_B2, &st), "unrelated apply");
	ASSERT_EQ(st.frontends_flipped, 1, "a:80 flipped");
	if (ASSERT_OK(dp_svc_stats(fx.dp, fe.svc_port_id, &ss), "a:80 svc stats"))
		ASSERT_EQ(ss.connects, 3ull * cpus, "a:80 counts survive its flip");
	ASSERT_GT(ia_stats_changes(&st), 0, "unrelated apply changed something");
	ASSERT_EQ(obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "b1", 80), b1, "b1 id kept");
	if (ASSERT_OK(dp_be_stats(fx.dp, b1, &bs), "b1 stats"))
		ASSERT_EQ(bs.connects, 7ull * cpus, "b1 counts survive an unrelated apply");
	ASSERT_WORLD(&fx, "unrelated apply");

	/* Stale counts in every free slot: new ids must start at 0. */
	ASSERT_OK(counters_plant_free(&fx, GAMMAD_MAP_BE_STATS, GAMMAD_OBJ_BACKEND, 1, 5),
		  "plant free backend slots");
	ASSERT_OK(counters_plant_free(&fx, GAMMAD_MAP_SVC_STATS, GAMMAD_OBJ_FRONTEND,
				      sizeof(struct gammad_svc_stats) / 8, 5),
		  "plant free svc slots");
	ASSERT_OK(counters_plant_free(&fx, GAMMAD_MAP_ROUTE_STATS, GAMMAD_OBJ_SELECTOR, 1, 5),
		  "plant free route slots");
	ASSERT_OK(apply_yaml(fx.dp, R_A80("70", "30") EP_B2 NEWSVC("n1", "1") HR("rn", "app")
			     "  parentRefs: [{group: \"\", kind: Service, name: n1, port: 80}]\n"
			     "  rules:\n" RULE_ANY(BEW("n1", "3") ", " BEW("b3", "1")), &st),
		  "apply with n1");
	ASSERT_WORLD(&fx, "n1 added");
	n1_be = obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "n1", 80);
	n1_fe = obj_id(fx.pin_dir, GAMMAD_OBJ_FRONTEND, "app", "n1", 80);
	n1_sel = obj_id(fx.pin_dir, GAMMAD_OBJ_SELECTOR, "app", "rn", 0);
	ASSERT_NEQ(n1_be, 0, "n1 backend id");
	ASSERT_NEQ(n1_fe, 0, "n1 svc_port_id");
	ASSERT_NEQ(n1_sel, 0, "rn selector id");
	if (n1_be && ASSERT_OK(dp_be_stats(fx.dp, n1_be, &bs), "n1 backend stats"))
		ASSERT_EQ(bs.connects, 0, "new backend id starts at 0");
	if (n1_fe && ASSERT_OK(dp_svc_stats(fx.dp, n1_fe, &ss), "n1 svc stats")) {
		ASSERT_EQ(ss.connects, 0, "new svc_port_id starts at 0 (connects)");
		ASSERT_EQ(ss.refused, 0, "new svc_port_id starts at 0 (refused)");
		ASSERT_EQ(ss.l7_unenforced, 0, "new svc_port_id starts at 0 (l7)");
	}
	if (n1_sel && ASSERT_OK(dp_route_stats(fx.dp, n1_sel, &rs), "rn route stats"))
		ASSERT_EQ(rs.connects, 0, "new selector (route_id) starts at 0");
	if (ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80"))
		ASSERT_NEQ(fe.default_sel, n1_sel, "distinct selectors");
	if (ASSERT_OK(dp_be_stats(fx.dp, b1, &bs), "b1 stats again"))
		ASSERT_EQ(bs.connects, 7ull * cpus, "b1 counts still there");
out:
	fx_teardown(&fx);
}

/* ---- 7: failures with small maps ------------------------------------------------ */

/* Replace the fixture's data path by a fresh one with these sizes. */
static int reopen_sized(struct dp_fixture *fx, const struct dp_sizes *sizes)
{
	struct dp_opts o = { .pin_dir = fx->pin_dir, .cgroup = fx->cg, .sizes = *sizes };

	dp_close(fx->dp);
	fx->dp = NULL;
	dp_uninstall(fx->pin_dir);
	return dp_open(&o, &fx->dp);
}

struct fail_case {
	const char *name;
	struct dp_sizes small;	/* overrides of the fixture's sizes */
	const char *fits;	/* on the base cluster */
	const char *too_big;
	const char *want_log;	/* what the log must name: the full table */
	int want_err;
	bool partial;		/* frontends before the failing one may flip */
};

#define FEW_SVCS NEWSVC("n1", "1") NEWSVC("n2", "2") NEWSVC("n3", "3")
#define MANY_SVCS FEW_SVCS NEWSVC("n4", "4") NEWSVC("n5", "5") NEWSVC("n6", "6") \
	NEWSVC("n7", "7") NEWSVC("n8", "8")
#define B1_5EPS "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: b1-2, namespace: app, labels: {kubernetes.io/service-name: b1}}\n" \
	"addressType: IPv4\nendpoints: [{addresses: [10.0.1.2]}, {addresses: [10.0.1.3]}," \
	" {addresses: [10.0.1.4]}, {addresses: [10.0.1.5]}]\n" \
	"ports: [{name: http, port: 8080}]\n"
#define R_A80_4 HR("r", "app") PARENT_A80 "  rules:\n" \
	RULE_ANY(BE("b1") ", " BE("b2") ", " BE("b3") ", " BE("bempty"))


static const struct fail_case fail_cases[] = {
	/* base: 9 backends; ids 1..15 */
	{ "backends", { .backends = 16 }, FEW_SVCS, MANY_SVCS, "backend", -ENOSPC, false },
	/* base: 9 selectors; ids 1..11 */
	{ "selectors", { .selectors = 12, .routes = 12 }, R_A80("1", "1"),
	  FEW_SVCS R_A80("1", "1"), "selector", -ENOSPC, false },
	/* base: 9 slots; a 4-way route needs 4 beside a:80's old one */
	{ "alias_slots", { .alias_slots = 12 }, R_A80("1", "1"), R_A80_4, "alias",
	  -E2BIG, false },
	/* base: 8 endpoints; b1 with 5 */
	{ "endpoints", { .endpoints = 12 }, EP_B2, B1_5EPS, "endpoint", -E2BIG, false },
	{ "consumers", { .consumers = 2 },
	  GRANT_APP CONSUMER("client", "b1") HR("c", "other") PARENT_A80 "  rules:\n"
	  RULE_ANY("{name: b2, namespace: app, port: 80}"),
	  GRANT_APP CONSUMER("client", "b1") HR("c", "other") PARENT_A80 "  rules:\n"
	  RULE_ANY("{name: b2, namespace: app, port: 80}") NS("c3") CONSUMER("c3", "b3"),
	  "consumer", -E2BIG, false },
	/* base: 9 frontends; svc_port_ids 1..11 */
	{ "svc_ports", { .svc_ports = 12 }, NEWSVC("n1", "1"), FEW_SVCS, "service port",
	  -ENOSPC, true },
	/* objects: what the base needs + 4, measured first */
	{ "objects", { 0 }, "", FEW_SVCS, "object", -E2BIG, false },
};

static void run_fail_case(const struct fail_case *fc)
{
	struct dp_sizes sizes = { .frontends = 256, .selectors = 1024, .backends = 1024,
				  .svc_ports = 64, .routes = 1024 };
	struct dp_fixture fx;
	struct snap s1 = {}, s2 = {};
	long c0[NR_M], c[NR_M];
	struct ia_stats st;
	char *log = calloc(1, 65536);
	char when[96];
	int err;

	if (fc->small.backends)
		sizes.backends = fc->small.backends;
	if (fc->small.selectors)
		sizes.selectors = fc->small.selectors;
	if (fc->small.routes)
		sizes.routes = fc->small.routes;
	if (fc->small.svc_ports)
		sizes.svc_ports = fc->small.svc_ports;
	sizes.alias_slots = fc->small.alias_slots;
	sizes.endpoints = fc->small.endpoints;
	sizes.consumers = fc->small.consumers;
	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup") || !ASSERT_OK_PTR(log, "log"))
		goto out;
	if (!strcmp(fc->name, "objects")) {
		if (!ASSERT_OK(apply_yaml(fx.dp, "", &st), "measure"))
			goto out;
		sizes.objects = (uint32_t)map_count(fx.pin_dir, GAMMAD_MAP_OBJECTS) + 4;
		test__printf("objects: base needs %u - 4\n", sizes.objects);
	}
	if (!ASSERT_OK(reopen_sized(&fx, &sizes), "dp_open with small maps"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, "", &st), "base fits"))
		goto out;
	ASSERT_WORLD(&fx, "base");
	counts_read(fx.pin_dir, c0);
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot base");
	snap_strip_namespaces(&s1);

	for (int attempt = 0; attempt < 2; attempt++) {
		err = apply_logged(fx.dp, fc->too_big, true, &st, log, 65536);
		snprintf(when, sizeof(when), "%s: too big, attempt %d", fc->name, attempt);
		if (!ASSERT_EQ(err, fc->want_err, when))
			test__printf("%s: error %d (%s)\n", when, err, strerror(-err));
		ASSERT_LT(err, 0, "negative errno");
		ASSERT_HAS_SUBSTR(log, fc->want_log, "the log names the full table");
		ASSERT_WORLD(&fx, when);
		/* It failed before any frontend could flip: nothing changed, no leak. */
		snap_free(&s2);
		ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot after failure");
		snap_strip_namespaces(&s2);
		if (!fc->partial) {
			ASSERT_EQ(snap_diff(&s1, &s2, when), 0, "maps as before the failed apply");
		} else if (attempt == 0) {
			/* Partly applied: the retry must fail the same way, changing nothing. */
			snap_free(&s1);
			s1 = s2;
			memset(&s2, 0, sizeof(s2));
		} else {
			ASSERT_EQ(snap_diff(&s1, &s2, when), 0, "a failed retry changes nothing");
		}
	}

	snprintf(when, sizeof(when), "%s: fitting image", fc->name);
	err = apply_logged(fx.dp, fc->fits, true, &st, log, 65536);
	ASSERT_OK(err, when);
	ASSERT_WORLD(&fx, when);
	snprintf(when, sizeof(when), "%s: base again", fc->name);
	ASSERT_OK(apply_yaml(fx.dp, "", &st), when);
	ASSERT_WORLD(&fx, when);
	counts_read(fx.pin_dir, c);
	counts_equal(c0, c, when);
out:
	snap_free(&s1);
	snap_free(&s2);
	free(log);
	fx_teardown(&fx);
}

/* ---- 8: consumers and namespaces, object names ------------------------------------ */

static void subtest_consumers(void)
{
	const char *yaml = GRANT_APP CONSUMER("client", "b3") HR("c", "other") PARENT_A80
		"  rules:\n" RULE_ANY("{name: b2, namespace: app, port: 80}");
	struct dp_fixture fx;
	struct gammad_fe_val fe, fe81;
	struct ia_stats st;
	struct tab cons = {}, obj = {};
	long c0[NR_M], c[NR_M];
	uint32_t ns_client, ns_other, be_b3, be_b2;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, "", &st), "base"))
		goto out;
	counts_read(fx.pin_dir, c0);
	ASSERT_EQ(c0[M_CONS], 0, "no consumer entries without consumer routes");
	if (!ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "consumer routes"))
		goto out;
	stats_print("consumers", &st);
	ASSERT_EQ(st.frontends_flipped, 1, "only a:80 flipped");
	ASSERT_WORLD(&fx, "consumers");
	if (!ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80") ||
	    !ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 81, IPPROTO_TCP, &fe81), "a:81"))
		goto out;
	ASSERT_TRUE(fe.flags & GAMMAD_FE_HAS_CONSUMERS, "a:80 has consumers");
	ASSERT_FALSE(fe81.flags & GAMMAD_FE_HAS_CONSUMERS, "a:81 has none");

	/* NAMESPACE objects name the namespaces; consumer keys use their ids. */
	ns_client = obj_id(fx.pin_dir, GAMMAD_OBJ_NAMESPACE, "client", "client", 0);
	ns_other = obj_id(fx.pin_dir, GAMMAD_OBJ_NAMESPACE, "other", "other", 0);
	ASSERT_NEQ(ns_client, 0, "namespace object client");
	ASSERT_NEQ(ns_other, 0, "namespace object other");
	ASSERT_NEQ(obj_id(fx.pin_dir, GAMMAD_OBJ_NAMESPACE, "app", "app", 0), 0,
		   "namespace object app");
	be_b3 = obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "b3", 80);
	be_b2 = obj_id(fx.pin_dir, GAMMAD_OBJ_BACKEND, "app", "b2", 80);
	if (!ASSERT_OK(tab_read(fx.pin_dir, GAMMAD_MAP_CONSUMER, &cons), "consumers") ||
	    !ASSERT_OK(tab_read(fx.pin_dir, GAMMAD_MAP_OBJECTS, &obj), "objects"))
		goto out;
	ASSERT_EQ(cons.nr, 2, "two consumer entries");
	for (size_t i = 0; i < cons.nr; i++) {
		const struct gammad_cons_key *k = KEY(&cons, i);
		const struct gammad_cons_val *v = VAL(&cons, i);
		struct gammad_alias_key ak = { .sel_id = v->sel };
		struct gammad_alias_val av;
		const struct gammad_obj_val *so;
		struct gammad_obj_key ok = { GAMMAD_OBJ_SELECTOR, v->sel };
		long j = tab_find(&obj, &ok);
		int fd = pinned_fd(fx.pin_dir, GAMMAD_MAP_ALIAS);

		ASSERT_EQ(k->table_gen, fe.table_gen, "consumer entry of a:80's table");
		ASSERT_TRUE(k->ns_id == ns_client || k->ns_id == ns_other, "consumer ns id");
		if (ASSERT_OK(bpf_map_lookup_elem(fd, &ak, &av), "consumer selector slot 0"))
			ASSERT_EQ(av.primary, k->ns_id == ns_client ? be_b3 : be_b2,
				  "consumer routes to its backend");
		close(fd);
		if (ASSERT_GE(j, 0, "consumer selector object")) {
			so = VAL(&obj, j);
			ASSERT_STREQ(so->name, "c", "selector object names the route");
			ASSERT_STREQ(so->namespace, k->ns_id == ns_client ? "client" : "other",
				     "selector object names the route namespace");
			/* maps.h: SELECTOR section is "rule N". BUG if empty. */
			ASSERT_HAS_SUBSTR(so->section, "rule ", "selector object names the rule");
		}
	}
	{
		struct gammad_obj_key ok = { GAMMAD_OBJ_FRONTEND, fe.svc_port_id };
		long j = tab_find(&obj, &ok);

		if (ASSERT_GE(j, 0, "a:80 frontend object")) {
			const struct gammad_obj_val *fo = VAL(&obj, j);

			ASSERT_STREQ(fo->name, "a", "frontend object: Service");
			ASSERT_STREQ(fo->namespace, "app", "frontend object: namespace");
			ASSERT_STREQ(fo->section, "http", "frontend object: port name");
			ASSERT_EQ(fo->port, 80, "frontend object: port");
			ASSERT_EQ(fo->proto, IPPROTO_TCP, "frontend object: protocol");
		}
	}

	/* Consumers gone: back to the base counts, flag cleared. */
	ASSERT_OK(apply_yaml(fx.dp, "", &st), "consumers removed");
	ASSERT_WORLD(&fx, "consumers removed");
	counts_read(fx.pin_dir, c);
	counts_equal(c0, c, "consumers removed: counts");
	if (ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80 again"))
		ASSERT_FALSE(fe.flags & GAMMAD_FE_HAS_CONSUMERS, "a:80 flag cleared");
out:
	tab_free(&cons);
	tab_free(&obj);
	fx_teardown(&fx);
}

/* A renamed route with the same backends: the object table names the new route. */
static void subtest_object_names(void)
{
	struct dp_fixture fx;
	struct gammad_fe_val fe;
	struct ia_stats st;
	struct tab obj = {};

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, R_A80("70", "30"), &st), "route r"))
		goto out;
	ASSERT_NEQ(obj_id(fx.pin_dir, GAMMAD_OBJ_SELECTOR, "app", "r", 0), 0, "selector of r");
	ASSERT_OK(apply_yaml(fx.dp, HR("renamed", "app") PARENT_A80 "  rules:\n"
			     RULE_ANY(BEW("b1", "70") ", " BEW("b2", "30")), &st), "route renamed");
	stats_print("rename", &st);
	ASSERT_WORLD(&fx, "renamed");
	if (!ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80") ||
	    !ASSERT_OK(tab_read(fx.pin_dir, GAMMAD_MAP_OBJECTS, &obj), "objects"))
		goto out;
	{
		struct gammad_obj_key k = { GAMMAD_OBJ_SELECTOR, fe.default_sel };
		long j = tab_find(&obj, &k);

		if (ASSERT_GE(j, 0, "a:80 selector object")) {
			const struct gammad_obj_val *v = VAL(&obj, j);

			/* BUG if this fails: the object keeps the old route's name. */
			ASSERT_STREQ(v->name, "renamed", "selector object follows the rename");
		}
	}
out:
	tab_free(&obj);
	fx_teardown(&fx);
}

/* ---- agents killed at random points ---------------------------------------------------- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * A child applies an image and is SIGKILLed after a delay that sweeps the
 * apply. Right after the kill every frontend must reach a complete table and
 * every id it reaches must be in the object table; the next (parent) apply
 * of the same image must leave exactly the maps of a clean apply.
 *
 * The sweep is timed from clean applies, which a busy machine makes
 * uneven: a child that finished before its kill shortens the window, and
 * the loop goes on until KILLS_WANTED children died mid-apply.
 */
#define KILLS_WANTED 25
#define KILL_TRIES 400

struct anywhere_ctx {
	struct dp_fixture *fx;
	struct built *b;
	long (*clean)[NR_M];	/* per image: the counts of a clean apply */
};

static void anywhere_run(void *arg, int i)
{
	struct anywhere_ctx *k = arg;

	ia_apply(k->fx->dp, &k->b[i].img, NULL, NULL);
}

static void anywhere_check(void *arg, int n, int i, const char *when)
{
	struct anywhere_ctx *k = arg;
	struct ia_stats st;
	long c[NR_M];
	char next[96];

	ASSERT_EQ(check_world_mode(k->fx->pin_dir, when, true), 0, when);
	snprintf(next, sizeof(next), "kill %d: the next apply", n);
	ASSERT_OK(ia_apply(k->fx->dp, &k->b[i].img, NULL, &st), next);
	ASSERT_WORLD(k->fx, next);
	counts_read(k->fx->pin_dir, c);
	counts_equal(k->clean[i], c, next);
}

static void subtest_killed_anywhere(void)
{
	static const size_t vs[] = { 1, 4, 5, 3 };
	struct built b[4];
	long clean[4][NR_M];
	struct dp_fixture fx;
	struct anywhere_ctx k = { .fx = &fx, .b = b, .clean = clean };
	struct ia_stats st;
	double dur = 0;
	int nb = 0, killed;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	for (nb = 0; nb < 4; nb++)
		if (!ASSERT_OK(build_img(&b[nb], variants[vs[nb]], true), "build"))
			goto out;
	/* Clean counts of each image, and the time an apply takes. */
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 4; i++) {
			double t0 = now_us();

			if (!ASSERT_OK(ia_apply(fx.dp, &b[i].img, NULL, &st), "clean apply"))
				goto out;
			dur = dur > now_us() - t0 ? dur : now_us() - t0;
			counts_read(fx.pin_dir, clean[i]);
		}
	test__printf("killed_anywhere: an apply takes up to %.0f us\n", dur);
	killed = fx_kill_applies(dur, 4, KILL_TRIES, KILLS_WANTED, anywhere_run, anywhere_check, &k);
	test__printf("killed_anywhere: %d children killed mid-apply\n", killed);
	ASSERT_EQ(killed, KILLS_WANTED, "children killed mid-apply");
out:
	while (nb-- > 0)
		built_free(&b[nb]);
	fx_teardown(&fx);
}

/* ---- an agent killed inside the retire step ------------------------------------------ */

/*
 * ia_retire() deletes the route-map entries first and the objects that
 * described them last: an agent killed in between leaves complete objects
 * (hash != 0) for ids whose entries are gone. Emulated by putting the
 * objects back after a clean retire; the next apply must still publish
 * complete tables.
 */
static void subtest_killed_in_retire(void)
{
	const char *with_n1 = NEWSVC("n1", "1") HR("rn", "app")
		"  parentRefs: [{group: \"\", kind: Service, name: n1, port: 80}]\n  rules:\n"
		RULE_ANY(BEW("n1", "3") ", " BEW("b3", "1"));
	struct dp_fixture fx;
	struct ia_stats st;
	struct tab saved = {};
	int fd = -1, put = 0;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	if (!ASSERT_OK(apply_yaml(fx.dp, with_n1, &st), "with n1"))
		goto out;
	ASSERT_WORLD(&fx, "with n1");
	if (!ASSERT_OK(tab_read(fx.pin_dir, GAMMAD_MAP_OBJECTS, &saved), "save objects"))
		goto out;
	ASSERT_OK(apply_yaml(fx.dp, "", &st), "n1 removed");
	ASSERT_WORLD(&fx, "n1 removed");
	/* The crash: entries retired, their objects not yet. */
	fd = pinned_fd(fx.pin_dir, GAMMAD_MAP_OBJECTS);
	for (size_t i = 0; i < saved.nr; i++) {
		char cur[sizeof(struct gammad_obj_val)];

		if (!bpf_map_lookup_elem(fd, KEY(&saved, i), cur))
			continue;
		ASSERT_OK(bpf_map_update_elem(fd, KEY(&saved, i), VAL(&saved, i), BPF_NOEXIST),
			  "put back an object");
		put++;
	}
	test__printf("killed in retire: %d objects put back\n", put);
	ASSERT_GT(put, 3, "objects of n1 put back");

	/* The next agent applies n1 again. */
	dp_close(fx.dp);
	fx.dp = NULL;
	if (!ASSERT_OK(fx_dp_open(&fx, &fx.dp), "next agent"))
		goto out;
	ASSERT_OK(apply_yaml(fx.dp, with_n1, &st), "with n1 again");
	stats_print("after the crash", &st);
	/* BUG if this fails: objects trusted over the kernel, tables incomplete. */
	ASSERT_WORLD(&fx, "n1 back after a crash inside retire");
	for (int i = 0; i < 4; i++) {
		char when[64];

		snprintf(when, sizeof(when), "n1 back, apply %d after the crash", i + 2);
		ASSERT_OK(apply_yaml(fx.dp, with_n1, &st), when);
		stats_print(when, &st);
		ASSERT_WORLD(&fx, when);
	}
out:
	if (fd >= 0)
		close(fd);
	tab_free(&saved);
	fx_teardown(&fx);
}

/* ---- backends only a weight 0 names ---------------------------------------------- */

static void zero_weight_case(const char *name, const char *yaml)
{
	struct dp_fixture fx;
	struct ia_stats st;
	struct snap s1 = {}, s2 = {};
	char when[96];

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	snprintf(when, sizeof(when), "%s: first apply", name);
	if (!ASSERT_OK(apply_yaml(fx.dp, yaml, &st), when))
		goto out;
	stats_print(when, &st);
	ASSERT_WORLD(&fx, when);
	ASSERT_OK(snap_take(fx.pin_dir, &s1), "snapshot 1");
	for (int i = 0; i < 3; i++) {
		snprintf(when, sizeof(when), "%s: re-apply %d", name, i);
		ASSERT_OK(apply_yaml(fx.dp, yaml, &st), when);
		stats_print(when, &st);
		/* BUG if this fails: the apply is not idempotent. */
		ASSERT_EQ(ia_stats_changes(&st), 0, "same image again: no change");
		ASSERT_EQ(st.backends_written, 0, "same image again: no backend written");
		ASSERT_EQ(st.retired, 0, "same image again: nothing retired");
		ASSERT_WORLD(&fx, when);
	}
	ASSERT_OK(snap_take(fx.pin_dir, &s2), "snapshot 2");
	ASSERT_EQ(snap_diff(&s1, &s2, name), 0, "maps byte-identical");
out:
	snap_free(&s1);
	snap_free(&s2);
	fx_teardown(&fx);
}

/* ---- client side: pod cgroups and local endpoints ---------------------------------- */

#define POD(name, ns, uid, node, ip) \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns \
	", uid: " uid "}\nspec: {nodeName: " node ", containers: [{name: c, image: i}]}\nstatus: {podIP: " ip "}\n"
#define P1 POD("p1", "client", "1111-aaaa", "n1", "10.1.0.1")
#define P2 POD("p2", "other", "2222-bbbb", "n2", "10.1.0.2")

/* ns ids of client and other, when wanted, from the image applied. */
struct ns_ids {
	uint32_t client, other;
};

static int apply_opts(struct dp *dp, const char *yaml, const struct ia_opts *o,
		      struct ia_stats *s, struct ns_ids *keep)
{
	struct built b;
	int err = build_img(&b, yaml, true);

	if (!ASSERT_OK(err, "build image"))
		err = -1000 + err;
	else
		err = ia_apply(dp, &b.img, o, s);
	for (size_t i = 0; i < b.f.dg.nr; i++)
		test__printf("diag: %s\n", b.f.dg.entries[i].msg);
	if (keep && b.ok) {
		test__printf("image: %zu pods, %zu pod IPs\n", b.img.nr_pods, b.img.nr_pod_ips);
		keep->client = img_ns_id(&b.img, "client");
		keep->other = img_ns_id(&b.img, "other");
	}
	built_free(&b);
	return err;
}

/*
 * Batched writes (datapath.h) leave the kernel exactly as single updates
 * do: a cold apply into fresh maps, then a change, each way into its own
 * data path, compared map by map.
 */
static void subtest_batched(void)
{
	const char *steps[] = { R_A80("70", "30") EP_B2 GRANT_APP CONSUMER("client", "b3") R_B1,
				R_A80("50", "50") EP_B2 };
	struct snap s[2][2] = {};
	struct dp_fixture fx;
	struct ia_stats st;
	int mode;

	for (mode = 0; mode < 2; mode++) {
		struct ia_opts o = { .full = true, .single_writes = mode == 0 };

		if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
			goto out;
		for (int i = 0; i < 2; i++) {
			char when[64];

			snprintf(when, sizeof(when), "%s, step %d", mode ? "batched" : "single", i);
			if (!ASSERT_OK(apply_opts(fx.dp, steps[i], &o, &st, NULL), when))
				break;
			if (i == 0)
				ASSERT_EQ(st.frontends_flipped, st.frontends, "cold: every frontend");
			ASSERT_OK(check_world(fx.pin_dir, when), "world");
			ASSERT_OK(snap_take(fx.pin_dir, &s[mode][i]), "snapshot");
		}
		fx_teardown(&fx);
	}
	for (int i = 0; i < 2; i++) {
		ASSERT_GT(s[1][i].t[M_OBJ].nr, 0, "objects written");
		ASSERT_EQ(snap_diff(&s[0][i], &s[1][i], i ? "after the change" : "cold apply"), 0,
			  "batched == single");
	}
	mode = 2;
out:
	if (mode < 2)
		fx_teardown(&fx);
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 2; i++)
			snap_free(&s[m][i]);
}

static long cgns_get(struct dp_fixture *fx, const char *path)
{
	struct gammad_cgns_val v;
	uint64_t id;
	int fd, err;

	if (dp_cgroup_id(path, &id))
		return -2;
	fd = pinned_fd(fx->pin_dir, GAMMAD_MAP_CGROUP_NS);
	err = bpf_map_lookup_elem(fd, &id, &v);
	close(fd);
	return err ? -1 : (long)v.ns_id;
}

static void subtest_clients(void)
{
	struct ia_opts o = { .node_name = "n1" };
	char p1[PATH_MAX + 128], p2[PATH_MAX + 64], slice[PATH_MAX + 32];
	struct ns_ids ns = {};
	struct dp_fixture fx;
	struct ia_stats st;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	o.cgroup_root = fx.cg;
	snprintf(slice, sizeof(slice), "%s/kubepods.slice", fx.cg);
	snprintf(p1, sizeof(p1), "%s/kubepods-besteffort-pod1111_aaaa.slice", slice);
	snprintf(p2, sizeof(p2), "%s/pod2222-bbbb", fx.cg);
	if (!ASSERT_OK(mkdir(slice, 0755), "mkdir slice") || !ASSERT_OK(mkdir(p1, 0755), "p1") ||
	    !ASSERT_OK(mkdir(p2, 0755), "p2"))
		goto out;
	if (!ASSERT_OK(apply_opts(fx.dp, P1 P2, &o, &st, &ns), "pods"))
		goto out;
	stats_print("pods", &st);
	ASSERT_EQ(st.cgroups, 2, "pod cgroups found");
	ASSERT_EQ(st.cgroups_written, 2, "pod cgroups written");
	ASSERT_EQ(st.local_eps, 1, "local endpoints of n1");
	ASSERT_EQ(st.local_eps_written, 1, "local endpoint written");
	ASSERT_EQ(cgns_get(&fx, p1), (long)ns.client, "p1 cgroup -> client");
	ASSERT_EQ(cgns_get(&fx, p2), (long)ns.other, "p2 cgroup -> other");
	ASSERT_EQ(map_count(fx.pin_dir, GAMMAD_MAP_LOCAL_EP), 1, "one local endpoint");
	ASSERT_WORLD(&fx, "pods");

	ASSERT_OK(apply_opts(fx.dp, P1 P2, &o, &st, NULL), "pods again");
	ASSERT_EQ(ia_stats_changes(&st), 0, "pods again: no change");

	/* p2 gone; p1 moves to namespace other (same UID): one write, one delete. */
	ASSERT_OK(apply_opts(fx.dp, POD("p1", "other", "1111-aaaa", "n1", "10.1.0.1"), &o, &st,
			     NULL), "p2 gone, p1 moved");
	stats_print("moved", &st);
	ASSERT_EQ(st.cgroups_written, 1, "moved: one cgroup written");
	ASSERT_EQ(cgns_get(&fx, p1), (long)ns.other, "p1 cgroup -> other");
	ASSERT_EQ(cgns_get(&fx, p2), -1, "p2 cgroup entry deleted");

	/* No node name: every pod IP is local. */
	o.node_name = NULL;
	ASSERT_OK(apply_opts(fx.dp, P1 P2, &o, &st, NULL), "all nodes");
	ASSERT_EQ(map_count(fx.pin_dir, GAMMAD_MAP_LOCAL_EP), 2, "two local endpoints");
	o.node_name = "n2";
	ASSERT_OK(apply_opts(fx.dp, P1 P2, &o, &st, NULL), "node n2");
	ASSERT_EQ(map_count(fx.pin_dir, GAMMAD_MAP_LOCAL_EP), 1, "n2: one local endpoint");
	ASSERT_WORLD(&fx, "clients");
out:
	fx_teardown(&fx);
}

/* ---- entries of an agent before the object table -------------------------------- */

static void subtest_legacy_adopt(void)
{
	const char *yaml = R_A80("70", "30");
	struct dp_fixture fx;
	struct ia_stats st;
	struct gammad_fe_key ka, kx;
	struct in_addr a;
	struct gammad_ep_val ep;
	struct gammad_be_val be = { .ep_set = 1, .nr_endpoints = 1 };
	struct dp_weighted w = { .be_id = 1, .weight = 1 };
	struct gammad_fe_val fe = { .svc_port_id = 1, .table_gen = 1, .default_sel = 1 };
	struct gammad_fe_val fx_x = { .svc_port_id = 2, .table_gen = 2, .default_sel = 1 };
	int err;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fx_setup"))
		goto out;
	/* An older agent's table for a:80 and for a Service that is gone. */
	inet_pton(AF_INET, "10.0.0.99", &a);
	dp_ep(&ep, AF_INET, &a, 8080);
	inet_pton(AF_INET, "10.96.0.10", &a);
	dp_fe_key(&ka, AF_INET, &a, 80, IPPROTO_TCP);
	inet_pton(AF_INET, "10.96.9.9", &a);
	dp_fe_key(&kx, AF_INET, &a, 80, IPPROTO_TCP);
	err = dp_endpoints_write(fx.dp, 1, &ep, 1) ?: dp_backend_write(fx.dp, 1, &be) ?:
	      dp_selector_write(fx.dp, 1, 1, &w, 1) ?: dp_frontend_publish(fx.dp, &ka, &fe) ?:
	      dp_frontend_publish(fx.dp, &kx, &fx_x);
	if (!ASSERT_OK(err, "legacy table"))
		goto out;
	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "apply over legacy entries");
	stats_print("legacy", &st);
	ASSERT_EQ(st.frontends_removed, 1, "legacy frontend removed");
	ASSERT_WORLD(&fx, "legacy adopted");
	if (ASSERT_OK(fe_lookup(&fx, "10.96.0.10", 80, IPPROTO_TCP, &fe), "a:80")) {
		ASSERT_NEQ(fe.svc_port_id, 2, "svc_port_id of another frontend not reused");
		ASSERT_NEQ(fe.default_sel, 1, "fresh selector");
	}
	ASSERT_OK(apply_yaml(fx.dp, yaml, &st), "apply again");
	ASSERT_EQ(ia_stats_changes(&st), 0, "then stable");
out:
	fx_teardown(&fx);
}

/* ---- map_dump against get_next_key ------------------------------------------------------ */

static void map_dump_case(__u32 max, __u32 fill, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
	struct map_dump d = {};
	char when[64];
	int fd, err;

	snprintf(when, sizeof(when), "map_dump max %u fill %u flags %#x", max, fill, flags);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "gammad_t_dump", 8, 12, max, &o);
	if (!ASSERT_GE(fd, 0, "create map"))
		return;
	for (__u32 i = 0; i < fill; i++) {
		__u64 k = (__u64)i * 0x9e3779b97f4a7c15ull;
		__u32 v[3] = { i, ~i, i * 3 };

		if (!ASSERT_OK(bpf_map_update_elem(fd, &k, v, BPF_NOEXIST), "fill"))
			goto out;
	}
	err = map_dump_read(fd, &d);
	if (!ASSERT_OK(err, when))
		goto out;
	ASSERT_EQ(d.nr, fill, when);
	ASSERT_EQ(d.key_size, 8, "key size");
	ASSERT_EQ(d.val_size, 12, "value size");
	for (size_t i = 0; i < d.nr; i++) {
		const __u32 *v = map_dump_val(&d, i);
		__u64 k = *(const __u64 *)map_dump_key(&d, i);

		if (!ASSERT_EQ(k, (__u64)v[0] * 0x9e3779b97f4a7c15ull, "key matches value") ||
		    !ASSERT_EQ(v[1], ~v[0], "value intact"))
			break;
		for (size_t j = 0; j < i; j++)
			if (!ASSERT_NEQ(*(const __u64 *)map_dump_key(&d, j), k, "no duplicate"))
				break;
	}
out:
	map_dump_free(&d);
	close(fd);
}

/* ---- map_write_many: chunks, a refused batch, a full map ------------------------------------------ */

/*
 * n entries into a fresh map of type (hash: batched; LPM trie: no batch op,
 * written one by one) holding max: what the kernel took is exactly a
 * prefix, each entry as written, the chunk boundaries crossed.
 */
static void map_write_case(enum bpf_map_type type, __u32 max, __u32 n)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	struct { __u32 plen, addr; } *keys = calloc(n + 1, sizeof(*keys));
	__u32 (*vals)[3] = calloc(n + 1, sizeof(*vals));
	size_t taken = 0, want = n < max ? n : max;
	char when[96];
	int fd, err;

	snprintf(when, sizeof(when), "map_write type %d max %u n %u", type, max, n);
	fd = bpf_map_create(type, "gammad_t_write", 8, 12, max, &o);
	if (!ASSERT_GE(fd, 0, "create map") || !ASSERT_OK_PTR(keys, "keys") ||
	    !ASSERT_OK_PTR(vals, "vals"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		keys[i].plen = 32;
		keys[i].addr = i * 2654435761u;
		vals[i][0] = i;
		vals[i][1] = ~i;
		vals[i][2] = i * 3;
	}
	err = map_write_many(fd, keys, vals, sizeof(*keys), sizeof(*vals), n, &taken);
	if (n <= max)
		ASSERT_OK(err, when);
	else
		ASSERT_TRUE(err == -E2BIG || err == -ENOSPC, when);
	ASSERT_EQ(taken, want, "taken: a prefix, exactly");
	for (__u32 i = 0; i < n; i++) {
		__u32 v[3];
		bool in = !bpf_map_lookup_elem(fd, &keys[i], v);

		if (!ASSERT_EQ(in, i < want, when) ||
		    (in && !ASSERT_OK(memcmp(v, vals[i], sizeof(v)), "value as written")))
			break;
	}
out:
	free(keys);
	free(vals);
	if (fd >= 0)
		close(fd);
}

static void subtest_map_write(void)
{
	static const __u32 sizes[] = { 1, MAP_WRITE_CHUNK, MAP_WRITE_CHUNK + 1, 2 * MAP_WRITE_CHUNK + 500 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		map_write_case(BPF_MAP_TYPE_HASH, 4 * MAP_WRITE_CHUNK, sizes[i]);
		map_write_case(BPF_MAP_TYPE_LPM_TRIE, 4 * MAP_WRITE_CHUNK, sizes[i]);
	}
	/* full in the second chunk: the first chunk and part of the second stay */
	map_write_case(BPF_MAP_TYPE_HASH, MAP_WRITE_CHUNK + 100, 2 * MAP_WRITE_CHUNK + 500);
	map_write_case(BPF_MAP_TYPE_LPM_TRIE, MAP_WRITE_CHUNK + 100, 2 * MAP_WRITE_CHUNK + 500);
}

static void subtest_map_dump(void)
{
	static const __u32 sizes[] = { 1, 2, 3, 7, 64, 1000, 4096 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		map_dump_case(sizes[i], 0, 0);
		map_dump_case(sizes[i], sizes[i], 0);
		map_dump_case(sizes[i], sizes[i], BPF_F_NO_PREALLOC);
		map_dump_case(sizes[i], sizes[i] / 2 + 1, BPF_F_NO_PREALLOC);
	}
}

void test_apply_reconcile(void)
{
	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (test__start_subtest("idempotent"))
		subtest_idempotent();
	if (test__start_subtest("minimal_change"))
		subtest_minimal_change();
	if (test__start_subtest("removal_cycles"))
		subtest_removal();
	if (test__start_subtest("churn"))
		subtest_churn();
	if (test__start_subtest("restart_leftovers"))
		subtest_restart();
	if (test__start_subtest("counters"))
		subtest_counters();
	for (size_t i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "fail_%s", fail_cases[i].name);
		if (test__start_subtest(name))
			run_fail_case(&fail_cases[i]);
	}
	if (test__start_subtest("consumers"))
		subtest_consumers();
	if (test__start_subtest("object_names"))
		subtest_object_names();
	/* a:80's own backend only named with weight 0 */
	if (test__start_subtest("zero_weight_backend"))
		zero_weight_case("zero_weight_backend", HR("r", "app") PARENT_A80 "  rules:\n"
				 RULE_ANY(BEW("b1", "1") ", " BEW("a", "0")));
	if (test__start_subtest("all_weights_zero"))
		zero_weight_case("all_weights_zero", HR("r", "app") PARENT_A80 "  rules:\n"
				 RULE_ANY(BEW("a", "0")));
	if (test__start_subtest("unresolved_backend"))
		zero_weight_case("unresolved_backend", HR("r", "app") PARENT_A80 "  rules:\n"
				 RULE_ANY(BE("b1") ", " BE("missing")));
	if (test__start_subtest("killed_anywhere"))
		subtest_killed_anywhere();
	if (test__start_subtest("killed_in_retire"))
		subtest_killed_in_retire();
	if (test__start_subtest("clients"))
		subtest_clients();
	if (test__start_subtest("batched"))
		subtest_batched();
	if (test__start_subtest("map_dump"))
		subtest_map_dump();
	if (test__start_subtest("map_write"))
		subtest_map_write();
	if (test__start_subtest("legacy_adopt"))
		subtest_legacy_adopt();
}
