// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl explain SRC_POD DST_IP:PORT [REQUEST-LINE [HEADER...]]
 *
 * What a connection (or an HTTP request) from a pod to a Service address
 * gets, and why: the translator decides from the manifests (the client's
 * class: consumer routes of its namespace, else producer routes, else plain
 * Kubernetes; then, for a request, the first matching rule and its weighted
 * backends), and the kernel's tables are read back for the same client
 * class and compared: the backend shares the kernel draws from must equal
 * the translation's L4 shares, endpoint for endpoint. For a request, the
 * running agent is asked too (--agent, its /explain): whether the kernel
 * steers this client's connections to its HTTP engine, and the rule, backend
 * and answer the engine gives on the tables it serves now.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "image/image.h"
#include "input/manifest.h"
#include "input/yaml_doc.h"
#include "khttp/khttp.h"
#include "translate/translate.h"
#include "translate/translate_eval.h"
#include "translate/translate_output.h"
#include "gammactl.h"

#define MAX_HEADERS 32

/* One outcome: a share of connections going to an endpoint list (or refused). */
struct dist_item {
	char *key;		/* sorted endpoints, or "refused: <why>" */
	double share;
};

struct dist {
	struct dist_item *items;
	size_t nr;
};

static int dist_add(struct dist *d, const char *key, double share)
{
	struct dist_item *n;

	for (size_t i = 0; i < d->nr; i++)
		if (!strcmp(d->items[i].key, key)) {
			d->items[i].share += share;
			return 0;
		}
	n = realloc(d->items, (d->nr + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->items = n;
	n[d->nr].key = strdup(key);
	if (!n[d->nr].key)
		return -ENOMEM;
	n[d->nr++].share = share;
	return 0;
}

static void dist_free(struct dist *d)
{
	for (size_t i = 0; i < d->nr; i++)
		free(d->items[i].key);
	free(d->items);
	memset(d, 0, sizeof(*d));
}

static bool dist_equal(const struct dist *a, const struct dist *b)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct dist *x = pass ? b : a, *y = pass ? a : b;

		for (size_t i = 0; i < x->nr; i++) {
			double other = 0;

			for (size_t j = 0; j < y->nr; j++)
				if (!strcmp(x->items[i].key, y->items[j].key))
					other = y->items[j].share;
			if (fabs(other - x->items[i].share) > 1e-9)
				return false;
		}
	}
	return true;
}

static int cmp_ep(const void *pa, const void *pb)
{
	const struct dpv_endpoint *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (memcmp(a->addr, b->addr, 16))
		return memcmp(a->addr, b->addr, 16);
	return a->port < b->port ? -1 : a->port > b->port;
}

/*
 * The outcome key of an endpoint list: every endpoint, sorted, comma-joined
 * (malloc'd; NULL on ENOMEM). Sorted here so both sides compare equal
 * whatever order they hold their endpoints in.
 */
static char *ep_key(struct dpv_endpoint *eps, size_t nr)
{
	char *buf = NULL, ep[64];
	size_t len = 0;
	FILE *f;

	if (!nr)
		return strdup("refused: no endpoints");
	qsort(eps, nr, sizeof(*eps), cmp_ep);
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < nr; i++)
		fprintf(f, "%s%s", i ? "," : "", dpv_ep_str(&eps[i], ep, sizeof(ep)));
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static char *tr_backend_key(const struct tr_backend *b, int family)
{
	struct dpv_endpoint *eps;
	size_t nr = 0;
	char *key;

	if (b->state == TR_BACKEND_UNRESOLVED)
		return strdup("refused: unresolved");
	eps = calloc((b->endpoints ? b->endpoints->nr : 0) + 1, sizeof(*eps));
	if (!eps)
		return NULL;
	for (size_t i = 0; b->endpoints && i < b->endpoints->nr; i++) {
		const struct tr_endpoint *e = &b->endpoints->items[i];

		if (e->addr.family != family)
			continue;
		eps[nr].family = e->addr.family;
		memcpy(eps[nr].addr, e->addr.addr, 16);
		eps[nr++].port = e->port;
	}
	key = ep_key(eps, nr);
	free(eps);
	return key;
}

static char *dp_backend_key(const struct dpv_backend *b)
{
	struct dpv_endpoint *eps;
	char *key;

	if (!b || !b->present)
		return strdup("refused: backend missing");
	if (b->val.flags & GAMMAD_BE_UNRESOLVED)
		return strdup("refused: unresolved");
	eps = calloc(b->nr_eps + 1, sizeof(*eps));
	if (!eps)
		return NULL;
	memcpy(eps, b->eps, b->nr_eps * sizeof(*eps));
	key = ep_key(eps, b->nr_eps);
	free(eps);
	return key;
}

struct explain {
	struct ctl *c;
	const char *pod_arg, *dst_arg;
	char addr[64];
	uint16_t port;
	int family;
	uint8_t addr_bytes[16];
	const struct k8s_pod *pod;
	const struct tr_port *tp;
	const struct tr_class *cls;
	struct ev_request req;
	struct ev_header headers[MAX_HEADERS];
	char hnames[MAX_HEADERS][128];
	char method[32], target[2048];
	bool has_request;
	struct ev_result ev;
	bool evaluated;
	struct dist want;		/* translator, L4 */
	/* kernel */
	bool kernel;
	char kernel_note[512];
	struct dpv_maps maps;
	struct dpv view;
	const struct dpv_frontend *fe;
	uint32_t ns_id, sel;
	bool consumer;
	int ns_cgroups;			/* pod cgroups mapped to ns_id; -1: unknown */
	struct dist got;
	bool agree;
	bool steered;			/* the selector sends this class to the HTTP engine */
	struct ctl_live live;
	struct tr_opts tr;		/* the node (and zone) whose agent decides */
	/* HTTP in the kernel (issue 13): could its matcher serve the class exactly? */
	bool kh_http, kh_kernel;
	char kh_why[160];
};

/* The kernel HTTP encoder's decision for the class (not yet on the data path). */
static void khttp_decide(struct explain *x)
{
	struct kh_image img;

	x->kh_http = x->cls->kind == ROUTE_HTTP || x->cls->kind == ROUTE_GRPC;
	if (!x->kh_http || kh_encode(x->cls, x->tp->port->port, &img))
		return;
	x->kh_kernel = !img.tab.engine_reason;
	snprintf(x->kh_why, sizeof(x->kh_why), "%s", x->kh_kernel ? "" : img.why);
	kh_image_free(&img);
}

/* Backends of the L4 selector whose endpoints a policy narrowed, one per call. */
static const struct tr_backend *next_policy(const struct explain *x, size_t *i)
{
	for (; *i < x->cls->l4.nr; (*i)++) {
		const struct tr_backend *b = x->cls->l4.items[*i].backend;

		if (b->endpoints && b->endpoints->policy) {
			(*i)++;
			return b;
		}
	}
	return NULL;
}

static int parse_dst(struct explain *x)
{
	char tmp[80], *colon;
	long p;

	snprintf(tmp, sizeof(tmp), "%s", x->dst_arg);
	if (tmp[0] == '[') {
		colon = strstr(tmp, "]:");
		if (!colon)
			return -EINVAL;
		p = strtol(colon + 2, NULL, 10);
		*colon = 0;
		memmove(tmp, tmp + 1, strlen(tmp));	/* drop the '[' */
	} else {
		colon = strrchr(tmp, ':');
		if (!colon || strchr(tmp, ':') != colon)
			return -EINVAL;
		*colon = 0;
		p = strtol(colon + 1, NULL, 10);
	}
	if (p <= 0 || p > 65535)
		return -EINVAL;
	x->port = (uint16_t)p;
	snprintf(x->addr, sizeof(x->addr), "%s", tmp);
	memset(x->addr_bytes, 0, sizeof(x->addr_bytes));
	if (inet_pton(AF_INET, tmp, x->addr_bytes) == 1)
		x->family = AF_INET;
	else if (inet_pton(AF_INET6, tmp, x->addr_bytes) == 1)
		x->family = AF_INET6;
	else
		return -EINVAL;
	/* The canonical spelling, as the view prints addresses. */
	inet_ntop(x->family, x->addr_bytes, x->addr, sizeof(x->addr));
	return 0;
}

static int parse_request(struct explain *x, int argc, char **argv)
{
	const char *line = argv[0], *sp;
	size_t n = 0;

	x->has_request = true;
	sp = strchr(line, ' ');
	if (line[0] == '/') {
		snprintf(x->method, sizeof(x->method), "GET");
		snprintf(x->target, sizeof(x->target), "%s", line);
	} else if (sp) {
		const char *sp2;

		snprintf(x->method, sizeof(x->method), "%.*s", (int)(sp - line), line);
		sp2 = strchr(sp + 1, ' ');
		snprintf(x->target, sizeof(x->target), "%.*s",
			 sp2 ? (int)(sp2 - sp - 1) : (int)strlen(sp + 1), sp + 1);
	} else {
		return -EINVAL;
	}
	if (x->target[0] != '/')
		return -EINVAL;
	x->req.method = x->method;
	x->req.target = x->target;
	for (int i = 1; i < argc; i++) {
		const char *colon = strchr(argv[i], ':');

		if (!colon || colon == argv[i] || n >= MAX_HEADERS)
			return -EINVAL;
		snprintf(x->hnames[n], sizeof(x->hnames[n]), "%.*s", (int)(colon - argv[i]), argv[i]);
		x->headers[n].name = x->hnames[n];
		x->headers[n].value = colon + 1 + strspn(colon + 1, " \t");
		if (!strcasecmp(x->hnames[n], "host"))
			x->req.host = x->headers[n].value;
		n++;
	}
	x->req.headers = x->headers;
	x->req.nr_headers = n;
	return 0;
}

static const struct k8s_pod *find_pod(const struct model *m, const char *arg, int *matches)
{
	const struct k8s_pod *found = NULL;
	const char *slash = strchr(arg, '/');

	*matches = 0;
	for (size_t i = 0; i < m->pods.nr; i++) {
		const struct k8s_pod *p = m->pods.items[i];

		if (slash ? (strncmp(p->meta.namespace, arg, (size_t)(slash - arg)) ||
			     p->meta.namespace[slash - arg] || strcmp(p->meta.name, slash + 1))
			  : strcmp(p->meta.name, arg))
			continue;
		found = p;
		(*matches)++;
	}
	return found;
}

static const struct tr_port *find_port(const struct tr_result *r, int family,
				       const uint8_t *addr, uint16_t port)
{
	for (size_t i = 0; i < r->nr_ports; i++) {
		const struct tr_port *p = &r->ports[i];

		if (p->port->port != port || p->port->protocol != L4_TCP)
			continue;
		for (size_t a = 0; a < p->svc->nr_cluster_ips; a++)
			if (p->svc->cluster_ips[a].family == family &&
			    !memcmp(p->svc->cluster_ips[a].addr, addr, family == AF_INET ? 4 : 16))
				return p;
	}
	return NULL;
}

static void class_reason(const struct explain *x, char *buf, size_t len)
{
	const struct tr_class *c = x->cls;

	if (c->client_namespace)
		snprintf(buf, len, "consumer routes of namespace %s (%s), which replace the "
			 "producer routes for its clients", c->client_namespace,
			 gapi_kind_name(c->kind));
	else if (c->kind != ROUTE_KIND_COUNT)
		snprintf(buf, len, "producer routes of %s/%s (%s): namespace %s has no consumer "
			 "route for this port", x->tp->svc->meta.namespace, x->tp->svc->meta.name,
			 gapi_kind_name(c->kind), x->pod->meta.namespace);
	else
		snprintf(buf, len, "no route binds this port: plain Kubernetes, the Service's own "
			 "endpoints");
}

static int translator_dist(struct explain *x)
{
	const struct tr_l4 *l4 = &x->cls->l4;
	char *key;
	int err;

	if (!l4->total_weight)
		return dist_add(&x->want, "refused: no route backends", 1.0);
	for (size_t i = 0; i < l4->nr; i++) {
		if (!l4->items[i].weight)
			continue;
		key = tr_backend_key(l4->items[i].backend, x->family);
		if (!key)
			return -ENOMEM;
		err = dist_add(&x->want, key, (double)l4->items[i].weight / (double)l4->total_weight);
		free(key);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The kernel knows a client's namespace only through the pod cgroups the
 * agent mapped: none for this namespace means its pods get the default class.
 */
static int count_ns_cgroups(const struct dpv_maps *m, uint32_t ns_id)
{
	__u64 key, next;
	struct gammad_cgns_val val;
	void *prev = NULL;
	int n = 0;

	if (m->fd[DPV_CGNS] < 0)
		return -1;
	while (!bpf_map_get_next_key(m->fd[DPV_CGNS], prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(m->fd[DPV_CGNS], &key, &val) && val.ns_id == ns_id)
			n++;
	}
	return n;
}

static int kernel_read(struct explain *x, const struct img *img)
{
	const struct dpv_selector *s;
	struct stat sb;
	char *key;
	int err;

	if (stat(x->c->pin_dir, &sb)) {
		snprintf(x->kernel_note, sizeof(x->kernel_note), "pin dir %s: %s", x->c->pin_dir,
			 strerror(errno));
		return 0;
	}
	err = ctl_view(x->c, &x->maps, &x->view);
	if (err) {
		snprintf(x->kernel_note, sizeof(x->kernel_note), "maps under %s: %s",
			 x->c->pin_dir, strerror(-err));
		return 0;
	}
	x->kernel = true;
	x->fe = dpv_frontend_by_addr(&x->view, x->addr, x->port, "TCP");
	if (!x->fe) {
		snprintf(x->kernel_note, sizeof(x->kernel_note),
			 "no frontend for %s:%u/TCP: connections are not translated", x->addr, x->port);
		return dist_add(&x->got, "not routed", 1.0);
	}
	x->ns_id = dpv_ns_id(&x->view, x->pod->meta.namespace);
	if (!x->ns_id)
		x->ns_id = img_ns_id(img, x->pod->meta.namespace);
	x->sel = dpv_class_selector(x->fe, x->ns_id);
	for (size_t i = 1; x->ns_id && i < x->fe->nr_classes; i++)
		if (x->fe->classes[i].ns_id == x->ns_id)
			x->consumer = true;
	x->ns_cgroups = count_ns_cgroups(&x->maps, x->ns_id);
	s = dpv_selector(&x->view, x->sel);
	if (!s || !s->present)
		return dist_add(&x->got, "refused: no route backends", 1.0);
	x->steered = s->val.flags & GAMMAD_SEL_HTTP_ENGINE;
	if ((s->val.flags & GAMMAD_SEL_NO_ROUTE_BACKENDS) || !s->nr_shares)
		return dist_add(&x->got, "refused: no route backends", 1.0);
	for (size_t i = 0; i < s->nr_shares; i++) {
		key = dp_backend_key(dpv_backend(&x->view, s->shares[i].be_id));
		if (!key)
			return -ENOMEM;
		err = dist_add(&x->got, key, s->shares[i].share);
		free(key);
		if (err)
			return err;
	}
	return 0;
}

static void backend_name(const struct tr_backend *b, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s:%u", b->namespace, b->name, b->port);
}

static void json_tr_backends(struct json_writer *w, const struct explain *x,
			     const struct tr_backend *bs, size_t nr, const struct tr_l4 *l4)
{
	char name[512], *key;
	uint64_t total = 0;

	if (l4) {
		total = l4->total_weight;
		nr = l4->nr;
	} else {
		for (size_t i = 0; i < nr; i++)
			total += bs[i].weight;
	}
	jw_arr_begin(w);
	for (size_t i = 0; i < nr; i++) {
		const struct tr_backend *b = l4 ? l4->items[i].backend : &bs[i];
		uint64_t weight = l4 ? l4->items[i].weight : b->weight;

		backend_name(b, name, sizeof(name));
		key = tr_backend_key(b, x->family);
		jw_obj_begin(w);
		jw_kstr(w, "backend", name);
		jw_key(w, "weight");
		jw_uint(w, weight);
		jw_key(w, "percent");
		jw_double(w, total ? 100.0 * (double)weight / (double)total : 0, 4);
		jw_kstr(w, "state", tr_backend_state_name(b->state));
		jw_kstr(w, "endpoints", key ? key : "?");
		jw_obj_end(w);
		free(key);
	}
	jw_arr_end(w);
}

static void json_live(struct json_writer *w, struct explain *x);

static void print_json(struct explain *x, const char *reason)
{
	const struct dpv_selector *s = x->kernel && x->fe ? dpv_selector(&x->view, x->sel) : NULL;
	const struct tr_backend *b;
	struct json_writer w;
	char buf[512];

	jw_init(&w, x->c->out, true);
	jw_obj_begin(&w);
	jw_key(&w, "source");
	jw_obj_begin(&w);
	jw_kstr(&w, "namespace", x->pod->meta.namespace);
	jw_kstr(&w, "pod", x->pod->meta.name);
	jw_obj_end(&w);
	jw_key(&w, "destination");
	jw_obj_begin(&w);
	jw_kstr(&w, "address", x->addr);
	jw_kint(&w, "port", x->port);
	jw_kstr(&w, "protocol", "TCP");
	jw_kstr(&w, "namespace", x->tp->svc->meta.namespace);
	jw_kstr(&w, "service", x->tp->svc->meta.name);
	jw_kstr(&w, "portName", x->tp->port->name);
	jw_obj_end(&w);
	jw_key(&w, "class");
	jw_obj_begin(&w);
	jw_kstr(&w, "clientNamespace", x->cls->client_namespace);
	jw_kstr(&w, "kind", x->cls->kind == ROUTE_KIND_COUNT ? NULL : gapi_kind_name(x->cls->kind));
	jw_kbool(&w, "needsL7", x->cls->needs_l7);
	jw_kstr(&w, "reason", reason);
	if (x->kh_http) {
		jw_key(&w, "kernelHTTP");
		jw_obj_begin(&w);
		jw_kbool(&w, "exact", x->kh_kernel);
		jw_kstr(&w, "engineReason", x->kh_kernel ? NULL : x->kh_why);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	jw_kstr(&w, "node", x->tr.node_name);
	jw_kstr(&w, "zone", x->tr.zone);
	jw_key(&w, "endpointPolicies");
	jw_arr_begin(&w);
	for (size_t i = 0; (b = next_policy(x, &i));) {
		char pol[96];

		jw_obj_begin(&w);
		backend_name(b, buf, sizeof(buf));
		jw_kstr(&w, "backend", buf);
		jw_kstr(&w, "policy", tr_ep_policy_str(b->endpoints->policy, pol, sizeof(pol)));
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	if (x->has_request) {
		const struct tr_entry *e = x->ev.entry;

		jw_key(&w, "request");
		jw_obj_begin(&w);
		jw_kstr(&w, "method", x->method);
		jw_kstr(&w, "target", x->target);
		jw_kint(&w, "status", x->ev.status);
		jw_key(&w, "rule");
		if (e) {
			jw_obj_begin(&w);
			jw_kstr(&w, "kind", gapi_kind_name(e->rule->route->kind));
			jw_kstr(&w, "namespace", e->rule->route->meta.namespace);
			jw_kstr(&w, "name", e->rule->route->meta.name);
			jw_kint(&w, "rule", (int64_t)e->rule->index);
			jw_kint(&w, "match", (int64_t)e->match_index);
			jw_kstr(&w, "matchSummary", e->match ? tr_format_match(e->match, buf, sizeof(buf))
							     : "(every request)");
			jw_obj_end(&w);
		} else {
			jw_null(&w);
		}
		if (x->ev.redirect.location)
			jw_kstr(&w, "location", x->ev.redirect.location);
		jw_key(&w, "backends");
		if (e)
			json_tr_backends(&w, x, e->rule->backends, e->rule->nr_backends, NULL);
		else if (x->cls->kind == ROUTE_KIND_COUNT)
			json_tr_backends(&w, x, NULL, 0, &x->cls->l4);
		else
			jw_null(&w);
		jw_kbool(&w, "enforcedInKernel", !x->cls->needs_l7);
		jw_obj_end(&w);
		json_live(&w, x);
	}
	jw_key(&w, "l4");
	jw_obj_begin(&w);
	jw_kbool(&w, "l7Unenforced", !!(x->cls->l4.flags & TR_L4_L7_UNENFORCED));
	jw_key(&w, "backends");
	json_tr_backends(&w, x, NULL, 0, &x->cls->l4);
	jw_obj_end(&w);
	jw_key(&w, "kernel");
	jw_obj_begin(&w);
	jw_kbool(&w, "available", x->kernel);
	jw_kstr(&w, "note", x->kernel_note[0] ? x->kernel_note : NULL);
	if (x->kernel && x->fe) {
		jw_kint(&w, "nsId", x->ns_id);
		jw_kint(&w, "namespaceCgroups", x->ns_cgroups);
		jw_kstr(&w, "class", x->consumer ? "consumer" : "default");
		jw_kint(&w, "selector", x->sel);
		jw_kstr(&w, "route", dpv_selector_label(s, buf, sizeof(buf)));
		jw_key(&w, "backends");
		jw_arr_begin(&w);
		for (size_t i = 0; s && i < s->nr_shares; i++) {
			const struct dpv_backend *b = dpv_backend(&x->view, s->shares[i].be_id);

			jw_obj_begin(&w);
			jw_kstr(&w, "backend", dpv_backend_label(b, buf, sizeof(buf)));
			jw_key(&w, "percent");
			jw_double(&w, s->shares[i].share * 100.0, 4);
			if (b) {
				ctl_json_be_flags(&w, b);
				ctl_json_endpoints(&w, b);
			}
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
	}
	if (x->kernel)
		jw_kbool(&w, "agrees", x->agree);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
	fputc('\n', x->c->out);
}

/* Does the engine's live answer differ from the manifests' translation? */
static bool live_differs(const struct explain *x)
{
	const struct ctl_live *l = &x->live;
	const struct tr_entry *e = x->ev.entry;
	int want = x->ev.status;

	if (want == 200 && (!x->ev.backend || !x->ev.backend->endpoints ||
			    !x->ev.backend->endpoints->nr))
		want = 503;
	if (l->status != want || l->has_rule != !!e)
		return true;
	return e && (strcmp(l->ns, e->rule->route->meta.namespace) ||
		     strcmp(l->route, e->rule->route->meta.name) || l->index != (long long)e->rule->index);
}

/* The engine's half: steered or not, and its live decision. */
static void print_live_text(struct explain *x)
{
	const struct ctl_live *l = &x->live;
	FILE *out = x->c->out;

	if (!x->has_request)
		return;
	if (x->kernel && x->fe && !x->steered) {
		fprintf(out, "engine       off for this port and class: the kernel's selector does "
			"not steer to the HTTP engine, connections take the L4 path%s\n",
			x->cls->needs_l7 ? " (the agent runs with --no-http-engine, --once or "
			"--no-sockmap, or has not applied these routes)" : "");
		return;
	} else if (x->kernel && x->fe)
		fprintf(out, "engine       on: the kernel steers this class's connections to the "
			"agent's HTTP engine\n");
	if (!l->reachable) {
		fprintf(out, "live         not asked: %s\n", l->note);
		return;
	}
	fprintf(out, "live         the engine's tables (generation %lld)%s\n", l->generation,
		l->service_port ? "" : ": no such Service port, a request gets 503");
	if (!l->service_port)
		return;
	if (l->has_rule)
		fprintf(out, "live rule    %s %s/%s rule %lld%s%s%s, match %s\n", l->kind, l->ns,
			l->route, l->index, l->name[0] ? " (" : "", l->name, l->name[0] ? ")" : "",
			l->match);
	else
		fprintf(out, "live rule    none: %s\n", x->cls->kind == ROUTE_KIND_COUNT ?
			"no route, the port's own endpoints" : "no rule matches");
	if (l->filters[0])
		fprintf(out, "live filters %s\n", l->filters);
	if (l->backends[0])
		fprintf(out, "live weights %s\n", l->backends);
	fprintf(out, "live outcome %d%s%s%s%s%s%s\n", l->status,
		l->location[0] ? " Location: " : "", l->location,
		l->picked[0] ? ", e.g. to " : "", l->picked,
		l->target[0] ? ", target " : "", l->target);
	if (live_differs(x))
		fprintf(out, "note         the engine's live tables decide differently from the "
			"manifests (an apply pending, or refused: see the agent's log)\n");
}

static void json_live(struct json_writer *w, struct explain *x)
{
	const struct ctl_live *l = &x->live;

	jw_key(w, "engine");
	jw_obj_begin(w);
	if (x->kernel && x->fe)
		jw_kbool(w, "steered", x->steered);
	jw_kbool(w, "reachable", l->reachable);
	if (!l->reachable) {
		jw_kstr(w, "note", l->note);
		jw_obj_end(w);
		return;
	}
	jw_kint(w, "generation", l->generation);
	jw_kbool(w, "servicePort", l->service_port);
	jw_kint(w, "status", l->status);
	jw_key(w, "rule");
	if (l->has_rule) {
		jw_obj_begin(w);
		jw_kstr(w, "kind", l->kind);
		jw_kstr(w, "namespace", l->ns);
		jw_kstr(w, "name", l->route);
		jw_kint(w, "rule", l->index);
		jw_kstr(w, "ruleName", l->name[0] ? l->name : NULL);
		jw_kstr(w, "matchSummary", l->match);
		jw_kstr(w, "filters", l->filters);
		jw_kstr(w, "backends", l->backends);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	jw_kstr(w, "picked", l->picked[0] ? l->picked : NULL);
	jw_kstr(w, "location", l->location[0] ? l->location : NULL);
	jw_kstr(w, "target", l->target[0] ? l->target : NULL);
	jw_kbool(w, "differsFromManifests", live_differs(x));
	jw_obj_end(w);
}

static void print_dist(FILE *out, const char *title, const struct dist *d)
{
	char pct[32];

	fprintf(out, "%s\n", title);
	for (size_t i = 0; i < d->nr; i++)
		fprintf(out, "  %8s  %s\n", ctl_percent(d->items[i].share, pct, sizeof(pct)),
			d->items[i].key);
}

static void print_text(struct explain *x, const char *reason)
{
	const struct tr_backend *b;
	FILE *out = x->c->out;
	char buf[512], pct[32];

	fprintf(out, "source       pod %s/%s\n", x->pod->meta.namespace, x->pod->meta.name);
	fprintf(out, "destination  Service %s/%s port %u%s%s%s, %s:%u/TCP\n",
		x->tp->svc->meta.namespace, x->tp->svc->meta.name, x->tp->port->port,
		x->tp->port->name ? " (" : "", x->tp->port->name ? x->tp->port->name : "",
		x->tp->port->name ? ")" : "", x->addr, x->port);
	fprintf(out, "class        %s\n", reason);
	for (size_t i = 0; (b = next_policy(x, &i));) {
		char pol[96];

		backend_name(b, buf, sizeof(buf));
		fprintf(out, "endpoints    %s: %s (node %s, zone %s)\n", buf,
			tr_ep_policy_str(b->endpoints->policy, pol, sizeof(pol)),
			x->tr.node_name ? x->tr.node_name : "any", x->tr.zone ? x->tr.zone : "none");
	}
	if (x->has_request) {
		const struct tr_entry *e = x->ev.entry;

		fprintf(out, "request      %s %s\n", x->method, x->target);
		if (e)
			fprintf(out, "rule         %s %s/%s rule %zu, match %s\n",
				gapi_kind_name(e->rule->route->kind), e->rule->route->meta.namespace,
				e->rule->route->meta.name, e->rule->index,
				e->match ? tr_format_match(e->match, buf, sizeof(buf)) : "(every request)");
		else
			fprintf(out, "rule         %s\n", x->cls->kind == ROUTE_KIND_COUNT ?
				"(no route)" : "none matches");
		fprintf(out, "outcome      %d%s%s\n", x->ev.status,
			x->ev.redirect.location ? " Location: " : "",
			x->ev.redirect.location ? x->ev.redirect.location : "");
		if (e) {
			uint64_t total = 0;

			for (size_t i = 0; i < e->rule->nr_backends; i++)
				total += e->rule->backends[i].weight;
			for (size_t i = 0; i < e->rule->nr_backends; i++) {
				const struct tr_backend *b = &e->rule->backends[i];

				backend_name(b, buf, sizeof(buf));
				fprintf(out, "  %8s  %-40s %s\n",
					ctl_percent(total ? (double)b->weight / (double)total : 0, pct,
						    sizeof(pct)), buf, tr_backend_state_name(b->state));
			}
		}
		if (x->cls->needs_l7 && x->kernel && x->fe && x->steered)
			fprintf(out, "note         this class has L7 rules: the HTTP engine applies them "
				"per request; the L4 union below is what a connection gets where no "
				"engine listens\n");
		else if (x->cls->needs_l7)
			fprintf(out, "note         this class has L7 rules; the kernel enforces only "
				"their L4 union below\n");
	}
	if (x->kh_http)
		fprintf(out, "kernel HTTP  %s%s\n", x->kh_kernel ? "the kernel's HTTP matcher can "
			"serve this class exactly" : "the engine's: ", x->kh_why);
	print_live_text(x);
	print_dist(out, "translation (L4: what a connection gets)", &x->want);
	if (!x->kernel) {
		fprintf(out, "kernel       not read: %s\n", x->kernel_note);
		return;
	}
	if (!x->fe) {
		fprintf(out, "kernel       %s\n", x->kernel_note);
	} else {
		fprintf(out, "kernel       %s class (ns id %u), selector %u: %s\n",
			x->consumer ? "consumer" : "default", x->ns_id, x->sel,
			dpv_selector_label(dpv_selector(&x->view, x->sel), buf, sizeof(buf)));
		print_dist(out, "kernel shares", &x->got);
		if (x->consumer && !x->ns_cgroups)
			fprintf(out, "note         no pod cgroup is mapped to namespace %s: until the "
				"agent maps this pod's cgroup, it gets the default class\n",
				x->pod->meta.namespace);
	}
	fprintf(out, "agreement    %s\n", x->agree ? "the kernel draws from the same endpoints with "
		"the same shares" : "MISMATCH: the kernel's tables differ from the translation "
		"(agent not run on these manifests, or an apply pending)");
}

/* The manifest path the agent recorded in its status file. */
static int manifests_of_status(const char *path, char *buf, size_t len)
{
	struct ydoc_error yerr = { 0 };
	struct ydoc_set set = { 0 };
	const char *m = NULL;
	int err;

	err = ydoc_load_file(path, &set, &yerr);
	if (err) {
		fprintf(stderr, "gammactl: status file %s: %s\n", path,
			yerr.msg[0] ? yerr.msg : strerror(-err));
		return err;
	}
	err = set.nr_docs == 1 && !yget_str(&set.docs[0], set.docs[0].root, "manifests", &m) &&
	      m ? 0 : -ENOENT;
	if (!err)
		snprintf(buf, len, "%s", m);
	ydoc_set_free(&set);
	return err;
}

int ctl_explain(struct ctl *c, int argc, char **argv)
{
	struct explain *x;
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	struct img img;
	char reason[512], manifests_buf[PATH_MAX];
	int ret = CTL_EXIT_ERROR, err, matches;
	bool have_res = false, have_img = false;

	if (argc < 3) {
		fprintf(stderr, "usage: gammactl --manifests DIR explain SRC_POD DST_IP:PORT "
			"[REQUEST-LINE [HEADER...]]\n"
			"  SRC_POD: ns/name or name; REQUEST-LINE: \"GET /path HTTP/1.1\" or \"/path\";\n"
			"  HEADER: \"Name: value\"\n");
		return CTL_EXIT_USAGE;
	}
	if (!c->manifests && c->status_file &&
	    manifests_of_status(c->status_file, manifests_buf, sizeof(manifests_buf)) == 0)
		c->manifests = manifests_buf;
	if (!c->manifests) {
		fprintf(stderr, "gammactl explain: needs --manifests DIR (the agent's manifest "
			"directory) or --status-file PATH (which names it) to know pods, namespaces "
			"and routes\n");
		return CTL_EXIT_USAGE;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return CTL_EXIT_ERROR;
	x->c = c;
	x->pod_arg = argv[1];
	x->dst_arg = argv[2];
	for (int i = 0; i < DPV_MAP_COUNT; i++)
		x->maps.fd[i] = -1;
	if (parse_dst(x)) {
		fprintf(stderr, "gammactl explain: destination %s: not IP:PORT ([IPv6]:PORT)\n",
			argv[2]);
		free(x);
		return CTL_EXIT_USAGE;
	}
	if (argc > 3 && parse_request(x, argc - 3, argv + 3)) {
		fprintf(stderr, "gammactl explain: request \"%s\": want \"METHOD /path [HTTP/1.1]\" "
			"then \"Name: value\" headers\n", argv[3]);
		free(x);
		return CTL_EXIT_USAGE;
	}
	model_init(&m);
	err = manifest_load_path(&m, c->manifests, &dg);
	if (err) {
		fprintf(stderr, "gammactl explain: manifests %s: %s\n", c->manifests, strerror(-err));
		goto out;
	}
	x->pod = find_pod(&m, x->pod_arg, &matches);
	if (!x->pod || matches > 1) {
		fprintf(stderr, "gammactl explain: %s Pod %s in %s%s\n", matches > 1 ? "more than one" :
			"no", x->pod_arg, c->manifests, matches > 1 ? ": say ns/name" : "");
		goto out;
	}
	/* The endpoints a Service port uses depend on the node that translates. */
	x->tr.node_name = c->node_name ? c->node_name : x->pod->spec.node_name;
	x->tr.zone = c->zone;
	err = translate_opts(&m, &x->tr, &dg, &res);
	if (err) {
		fprintf(stderr, "gammactl explain: translate %s: %s\n", c->manifests, strerror(-err));
		goto out;
	}
	have_res = true;
	x->tp = find_port(&res, x->family, x->addr_bytes, x->port);
	if (!x->tp) {
		fprintf(stderr, "gammactl explain: no Service has ClusterIP %s with TCP port %u in %s\n",
			x->addr, x->port, c->manifests);
		goto out;
	}
	x->cls = tr_port_class(x->tp, x->pod->meta.namespace);
	class_reason(x, reason, sizeof(reason));
	khttp_decide(x);
	if (x->has_request) {
		x->req.port = x->port;
		if (!x->req.host)
			x->req.host = x->tp->svc->meta.name;
		err = ev_evaluate(x->cls, &x->req, 0, &x->ev);
		if (err) {
			fprintf(stderr, "gammactl explain: evaluate request: %s\n", strerror(-err));
			goto out;
		}
		x->evaluated = true;
	}
	err = translator_dist(x);
	if (!err) {
		err = img_build(&m, &res, &img);
		have_img = !err;
	}
	if (!err)
		err = kernel_read(x, &img);
	if (err) {
		fprintf(stderr, "gammactl explain: %s\n", strerror(-err));
		goto out;
	}
	x->agree = x->kernel && dist_equal(&x->want, &x->got);
	if (x->has_request)
		ctl_live_explain(c->agent, x->pod->meta.namespace, x->addr, x->port, &x->req,
				 &x->live);
	if (c->json)
		print_json(x, reason);
	else
		print_text(x, reason);
	ret = x->kernel && !x->agree ? CTL_EXIT_ERROR : 0;
out:
	if (x->evaluated)
		ev_result_free(&x->ev);
	if (x->kernel)
		ctl_view_free(&x->maps, &x->view);
	dist_free(&x->want);
	dist_free(&x->got);
	free(x);
	if (have_img)
		img_free(&img);
	if (have_res)
		tr_result_free(&res);
	model_free(&m);
	diag_free(&dg);
	return ret;
}
