// SPDX-License-Identifier: Apache-2.0
/*
 * Per-request metrics under Gateway API names (engine.h lists the series).
 *
 * A series is one (route, rule, backend): its requests by response code
 * class and two latency histograms. Series live as long as the engine (a
 * counter must not go back when an apply drops and re-adds a route), in a
 * list only engine_set_tables() adds to and the renderer walks, both under
 * the metrics lock. The request path takes no lock: every translation gets,
 * when it is published, an index from the pointers a request ends with
 * (its tr_rule, its tr_backend) to their series, read-only afterwards, and
 * the counters are relaxed atomics, written by every loop's thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "base/log.h"
#include "input/gapi.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf after). */
static const uint64_t bucket_us[EM_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

struct em_hist {
	uint64_t b[EM_BUCKETS + 1];	/* not cumulative; the last is +Inf */
	uint64_t sum_us, count;
};

/* A series' counters, allocated by its first request: most series never see one. */
struct em_counts {
	uint64_t codes[6];		/* none (no response), 1xx .. 5xx */
	struct em_hist req, up;
};

struct em_series {
	struct em_series *next;
	const char *labels;		/* namespace=..,route=..,rule=..,backend=.. (byname's key) */
	struct em_counts *counts;	/* NULL until the first request; then never changes */
};

struct eng_metrics {
	pthread_mutex_t lock;		/* series and byname: adding, rendering */
	struct em_series *series, **tail;
	struct strmap byname;		/* labels -> em_series; owns the labels */
	struct em_series *none;		/* no rule: no route matched, or none reached */
};

/* Pointer -> series, open addressing, built once per translation. */
struct eng_metrics_index {
	size_t cap;			/* a power of two */
	const void **keys;
	struct em_series **vals;
};

static void add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *name, const char *v, bool comma)
{
	fprintf(f, "%s%s=\"", comma ? "," : "", name);
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static struct em_series *series_get(struct eng_metrics *m, const struct tr_rule *r,
				    const struct tr_backend *b)
{
	char rule[32], backend[300], *labels = NULL;
	const char *rname = "";
	struct em_series *s;
	size_t len = 0;
	FILE *f;

	if (r) {
		rname = r->rule && r->rule->name ? r->rule->name : rule;
		snprintf(rule, sizeof(rule), "%zu", r->index);
	}
	backend[0] = 0;
	if (b && b->name)
		snprintf(backend, sizeof(backend), "%s/%s:%u", b->namespace ? b->namespace : "",
			 b->name, b->port);
	f = open_memstream(&labels, &len);
	if (!f)
		return NULL;
	put_label(f, "namespace", r ? r->route->meta.namespace : "", false);
	put_label(f, "route", r ? r->route->meta.name : "", true);
	put_label(f, "rule", rname, true);
	put_label(f, "backend", backend, true);
	if (fclose(f)) {
		free(labels);
		return NULL;
	}
	s = strmap_get(&m->byname, labels);
	if (s) {
		free(labels);
		return s;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->labels = strmap_intern(&m->byname, labels);
	free(labels);
	if (!s || !s->labels) {
		free(s);
		return NULL;
	}
	strmap_set(&m->byname, s->labels, s);
	*m->tail = s;
	m->tail = &s->next;
	return s;
}

struct eng_metrics *eng_metrics_new(void)
{
	struct eng_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->tail = &m->series;
	m->none = series_get(m, NULL, NULL);
	if (m->none)
		m->none->counts = calloc(1, sizeof(*m->none->counts));
	if (!m->none || !m->none->counts) {
		eng_metrics_free(m);
		return NULL;
	}
	return m;
}

void eng_metrics_free(struct eng_metrics *m)
{
	if (!m)
		return;
	while (m->series) {
		struct em_series *s = m->series;

		m->series = s->next;
		free(s->counts);
		free(s);
	}
	strmap_free(&m->byname);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static size_t slot_of(const struct eng_metrics_index *ix, const void *key)
{
	uint64_t h = (uintptr_t)key * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 32) & (ix->cap - 1);
}

static void index_put(struct eng_metrics_index *ix, const void *key, struct em_series *s)
{
	size_t i = slot_of(ix, key);

	while (ix->keys[i] && ix->keys[i] != key)
		i = (i + 1) & (ix->cap - 1);
	ix->keys[i] = key;
	ix->vals[i] = s;
}

static struct em_series *index_get(const struct eng_metrics_index *ix, const void *key)
{
	size_t i;

	if (!ix || !key)
		return NULL;
	for (i = slot_of(ix, key); ix->keys[i]; i = (i + 1) & (ix->cap - 1))
		if (ix->keys[i] == key)
			return ix->vals[i];
	return NULL;
}

void eng_metrics_index_free(struct eng_metrics_index *ix)
{
	if (!ix)
		return;
	free(ix->keys);
	free(ix->vals);
	free(ix);
}

/*
 * Keys: every rule a class's table has (its requests answered here:
 * redirects, 500, 503), every backend of such a rule, and the own endpoints
 * of every port with HTTP rules (a class without routes; also under the
 * port's class array, see below). A backend belongs to one rule, so its
 * pointer names both. Found from the ports, not the
 * route list: a result assembled from parts (image/pipeline.h) has ports
 * only. A key prev has too is the same live object (prev's tables are held
 * while this is built): its series is taken from there, which makes tables
 * that share most of their ports with the last ones cheap to index.
 */
static int index_key(struct eng_metrics *m, struct eng_metrics_index *ix,
		     const struct eng_metrics_index *prev, const void *key,
		     const struct tr_rule *r, const struct tr_backend *b)
{
	struct em_series *s;

	if (index_get(ix, key))
		return 0;
	s = index_get(prev, key);
	if (!s)
		s = series_get(m, r, b);
	if (!s)
		return -ENOMEM;
	index_put(ix, key, s);
	return 0;
}

static bool http_class(const struct tr_class *c)
{
	return c->kind == ROUTE_HTTP || c->kind == ROUTE_GRPC;
}

struct eng_metrics_index *eng_metrics_index_new(struct eng_metrics *m, const struct tr_result *res,
						const struct eng_metrics_index *prev)
{
	struct eng_metrics_index *ix;
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < res->nr_ports; i++) {
		const struct tr_port *p = &res->ports[i];

		n += 2;
		for (size_t c = 0; c < p->nr_classes; c++)
			for (size_t k = 0; http_class(&p->classes[c]) && k < p->classes[c].nr_entries; k++)
				n += 1 + p->classes[c].entries[k].rule->nr_backends;
	}
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return NULL;
	for (ix->cap = 16; ix->cap < 2 * n; ix->cap *= 2)
		;
	ix->keys = calloc(ix->cap, sizeof(*ix->keys));
	ix->vals = calloc(ix->cap, sizeof(*ix->vals));
	if (!ix->keys || !ix->vals) {
		eng_metrics_index_free(ix);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < res->nr_ports && !err; i++) {
		const struct tr_port *p = &res->ports[i];
		bool http = false;

		/* Only a port with HTTP rules for some class reaches the engine. */
		for (size_t c = 0; c < p->nr_classes && !err; c++) {
			const struct tr_class *cls = &p->classes[c];

			if (!http_class(cls))
				continue;
			http = true;
			for (size_t k = 0; k < cls->nr_entries && !err; k++) {
				const struct tr_rule *r = cls->entries[k].rule;

				if (index_get(ix, r))
					continue;	/* another match of the rule, or a class before */
				err = index_key(m, ix, prev, r, r, NULL);
				for (size_t b = 0; b < r->nr_backends && !err; b++)
					err = index_key(m, ix, prev, &r->backends[b], r, &r->backends[b]);
			}
		}
		/*
		 * &p->self is in this result's port array, which tables assembled
		 * from parts copy anew: the next index finds the series by the
		 * port's class array, which stays with the port.
		 */
		if (http && !err) {
			struct em_series *s = index_get(prev, p->classes);

			if (!s)
				s = series_get(m, NULL, &p->self);
			if (!s) {
				err = -ENOMEM;
			} else {
				index_put(ix, &p->self, s);
				index_put(ix, p->classes, s);
			}
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (err) {
		eng_metrics_index_free(ix);
		return NULL;
	}
	return ix;
}

static void hist_add(struct em_hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < EM_BUCKETS && us > bucket_us[i])
		i++;
	add(&h->b[i], 1);
	add(&h->sum_us, us);
	add(&h->count, 1);
}

static struct em_counts *counts_of(const struct em_series *s)
{
	return __atomic_load_n(&s->counts, __ATOMIC_ACQUIRE);
}

/* s's counters, made by the first request of any loop (the others' are freed). */
static struct em_counts *counts_get(struct em_series *s)
{
	struct em_counts *c = counts_of(s), *mine;

	if (c)
		return c;
	mine = calloc(1, sizeof(*mine));
	if (!mine)
		return NULL;
	if (__atomic_compare_exchange_n(&s->counts, &c, mine, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return mine;
	free(mine);
	return c;
}

void eng_metrics_count(struct eng_metrics *m, const struct eng_tables *t,
		       const struct engine_request_log *l)
{
	const struct eng_metrics_index *ix = t ? t->mix : NULL;
	struct em_series *s = NULL;
	struct em_counts *c;
	int cls = l->status >= 100 && l->status < 600 ? l->status / 100 : 0;

	if (!m)
		return;
	if (l->backend)
		s = index_get(ix, l->backend);
	if (!s && l->entry)
		s = index_get(ix, l->entry->rule);
	if (!s)
		s = m->none;
	c = counts_get(s);
	if (!c)
		c = counts_of(m->none);	/* no memory: counted without its labels */
	add(&c->codes[cls], 1);
	hist_add(&c->req, l->request_us);
	if (l->upstream_us)
		hist_add(&c->up, l->upstream_us);
}

static void render_hist(FILE *f, const char *name, const struct em_series *s,
			const struct em_hist *h)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= EM_BUCKETS; i++) {
		cum += load(&h->b[i]);
		if (i < EM_BUCKETS)
			fprintf(f, "%s_bucket{%s,le=\"%g\"} %llu\n", name, s->labels,
				bucket_us[i] / 1e6, (unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, s->labels,
				(unsigned long long)cum);
	}
	fprintf(f, "%s_sum{%s} %.6f\n", name, s->labels, load(&h->sum_us) / 1e6);
	fprintf(f, "%s_count{%s} %llu\n", name, s->labels, (unsigned long long)load(&h->count));
}

/* The stats of every loop, summed (here: engine.c uses the metrics, not the reverse). */
void eng_stats_sum(struct engine *e, struct engine_stats *st)
{
	memset(st, 0, sizeof(*st));
	e = e->group;
	for (unsigned int i = 0; i < e->nr_loops; i++) {
		const struct engine_stats *l = &e->loops[i]->st;

		st->clients += load(&l->clients);
		st->upstreams += load(&l->upstreams);
		st->upstreams_idle += load(&l->upstreams_idle);
		st->buffer_bytes += load(&l->buffer_bytes);
		st->requests += load(&l->requests);
		st->upstream_reused += load(&l->upstream_reused);
		st->passthroughs += load(&l->passthroughs);
		st->kernel_relays += load(&l->kernel_relays);
		st->kernel_returns += load(&l->kernel_returns);
		st->kernel_relay_edits += load(&l->kernel_relay_edits);
		st->kernel_eofs += load(&l->kernel_eofs);
	}
}

int engine_metrics_render(struct engine *e, FILE *f)
{
	static const char *const cls[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct eng_metrics *m = e ? e->metrics : NULL;
	struct engine_stats st;
	const struct em_series *s;
	const struct em_counts *n;

	if (!m)
		return -EINVAL;
	eng_stats_sum(e, &st);	/* every loop's */
	fprintf(f, "# HELP gammad_http_engine_clients Client connections the HTTP engine holds.\n"
		   "# TYPE gammad_http_engine_clients gauge\n"
		   "gammad_http_engine_clients %llu\n"
		   "# HELP gammad_http_engine_upstreams Upstream connections open (idle ones included).\n"
		   "# TYPE gammad_http_engine_upstreams gauge\n"
		   "gammad_http_engine_upstreams %llu\n"
		   "# HELP gammad_http_engine_upstreams_idle Upstream connections idle in the pool.\n"
		   "# TYPE gammad_http_engine_upstreams_idle gauge\n"
		   "gammad_http_engine_upstreams_idle %llu\n"
		   "# HELP gammad_http_engine_buffer_bytes Bytes of connection buffers allocated.\n"
		   "# TYPE gammad_http_engine_buffer_bytes gauge\n"
		   "gammad_http_engine_buffer_bytes %llu\n"
		   "# HELP gammad_http_engine_upstream_reused_total Requests sent on a pooled connection.\n"
		   "# TYPE gammad_http_engine_upstream_reused_total counter\n"
		   "gammad_http_engine_upstream_reused_total %llu\n"
		   "# HELP gammad_http_engine_passthroughs_total Connections passed through at L4.\n"
		   "# TYPE gammad_http_engine_passthroughs_total counter\n"
		   "gammad_http_engine_passthroughs_total %llu\n"
		   "# HELP gammad_http_engine_kernel_relays_total Slow readers of the kernel HTTP "
		   "path whose upstream the engine relayed.\n"
		   "# TYPE gammad_http_engine_kernel_relays_total counter\n"
		   "gammad_http_engine_kernel_relays_total %llu\n"
		   "# HELP gammad_http_engine_kernel_returns_total Connections the kernel HTTP path "
		   "handed over for a miss that the engine gave back once it had answered.\n"
		   "# TYPE gammad_http_engine_kernel_returns_total counter\n"
		   "gammad_http_engine_kernel_returns_total %llu\n"
		   "# HELP gammad_http_engine_kernel_relay_edits_total Kernel relays that start "
		   "at a response head the kernel could not edit (the engine edits it).\n"
		   "# TYPE gammad_http_engine_kernel_relay_edits_total counter\n"
		   "gammad_http_engine_kernel_relay_edits_total %llu\n"
		   "# HELP gammad_http_engine_kernel_eofs_total Kernel-served connections the engine "
		   "ended (a FIN) after a close-delimited response, once all of it was queued.\n"
		   "# TYPE gammad_http_engine_kernel_eofs_total counter\n"
		   "gammad_http_engine_kernel_eofs_total %llu\n",
		(unsigned long long)st.clients, (unsigned long long)st.upstreams,
		(unsigned long long)st.upstreams_idle, (unsigned long long)st.buffer_bytes,
		(unsigned long long)st.upstream_reused, (unsigned long long)st.passthroughs,
		(unsigned long long)st.kernel_relays, (unsigned long long)st.kernel_returns,
		(unsigned long long)st.kernel_relay_edits, (unsigned long long)st.kernel_eofs);
	pthread_mutex_lock(&m->lock);
	fputs("# HELP gammad_http_requests_total HTTP requests the engine ended, by route, rule, "
	      "backend and response code class.\n# TYPE gammad_http_requests_total counter\n", f);
	/* A series shows from its first request on: the tables may name many. */
	for (s = m->series; s; s = s->next)
		for (int c = 0; (n = counts_of(s)) && c < 6; c++)
			if (load(&n->req.count) && (c == 2 || load(&n->codes[c])))
				fprintf(f, "gammad_http_requests_total{%s,code_class=\"%s\"} %llu\n",
					s->labels, cls[c], (unsigned long long)load(&n->codes[c]));
	fputs("# HELP gammad_http_request_duration_seconds Request head read to response end.\n"
	      "# TYPE gammad_http_request_duration_seconds histogram\n", f);
	for (s = m->series; s; s = s->next)
		if ((n = counts_of(s)) && load(&n->req.count))
			render_hist(f, "gammad_http_request_duration_seconds", s, &n->req);
	fputs("# HELP gammad_http_upstream_duration_seconds Request sent upstream to its "
	      "response head.\n# TYPE gammad_http_upstream_duration_seconds histogram\n", f);
	for (s = m->series; s; s = s->next)
		if ((n = counts_of(s)) && load(&n->req.count))
			render_hist(f, "gammad_http_upstream_duration_seconds", s, &n->up);
	pthread_mutex_unlock(&m->lock);
	return ferror(f) ? -EIO : 0;
}
