// SPDX-License-Identifier: Apache-2.0
/* Prometheus text exposition: see metrics.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "datapath/tc_maps.h"
#include "khview.h"
#include "metrics.h"

/* A label value with \, " and newline escaped, in buf. */
static const char *esc(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; s && *s && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void svc_labels(const struct dpv_frontend *f, char *buf, size_t len)
{
	char ns[160], name[300], pn[160];

	if (f->named)
		snprintf(buf, len, "namespace=\"%s\",service=\"%s\",port=\"%u\",port_name=\"%s\","
			 "protocol=\"%s\",address=\"%s\"", esc(f->svc_ns, ns, sizeof(ns)),
			 esc(f->svc_name, name, sizeof(name)), f->port,
			 esc(f->port_name, pn, sizeof(pn)), f->proto, f->addr);
	else
		snprintf(buf, len, "namespace=\"\",service=\"id:%u\",port=\"%u\",port_name=\"\","
			 "protocol=\"%s\",address=\"%s\"", f->val.svc_port_id, f->port, f->proto,
			 f->addr);
}

static void svc_counter(FILE *out, const struct dpv *v, const char *name, const char *help,
			size_t off)
{
	char labels[1024];

	header(out, name, "counter", help);
	for (size_t i = 0; i < v->nr_fes; i++) {
		const struct dpv_frontend *f = &v->fes[i];

		svc_labels(f, labels, sizeof(labels));
		fprintf(out, "%s{%s} %llu\n", name, labels,
			(unsigned long long)*(const uint64_t *)((const char *)&f->stats + off));
	}
}

static void be_labels(const struct dpv_backend *b, char *buf, size_t len)
{
	char ns[160], name[300];

	if (b->named)
		snprintf(buf, len, "namespace=\"%s\",service=\"%s\",port=\"%u\",backend=\"%s/%s:%u\"",
			 esc(b->namespace, ns, sizeof(ns)), esc(b->name, name, sizeof(name)), b->port,
			 ns, name, b->port);
	else
		snprintf(buf, len, "namespace=\"\",service=\"\",port=\"\",backend=\"id:%u\"", b->id);
}

/*
 * The Service port using each selector (by index in v->sels), NULL when
 * several share it (identical tables are one selector) or none does.
 */
static const struct dpv_frontend **selector_users(const struct dpv *v)
{
	const struct dpv_frontend **user = calloc(v->nr_sels + 1, sizeof(*user));
	bool *shared = calloc(v->nr_sels + 1, sizeof(*shared));

	if (!user || !shared) {
		free(user);
		free(shared);
		return NULL;
	}
	for (size_t i = 0; i < v->nr_fes; i++)
		for (size_t c = 0; c < v->fes[i].nr_classes; c++) {
			const struct dpv_selector *s = dpv_selector(v, v->fes[i].classes[c].sel);
			size_t k;

			if (!s)
				continue;
			k = (size_t)(s - v->sels);
			if (user[k] && user[k] != &v->fes[i])
				shared[k] = true;
			user[k] = &v->fes[i];
		}
	for (size_t k = 0; k < v->nr_sels; k++)
		if (shared[k] || (user[k] && !user[k]->named))
			user[k] = NULL;
	free(shared);
	return user;
}

static void route_service(const struct dpv_frontend *user, char *buf, size_t len)
{
	char ns[160], name[300];

	if (user)
		snprintf(buf, len, "service=\"%s/%s\",port=\"%u\"", esc(user->svc_ns, ns, sizeof(ns)),
			 esc(user->svc_name, name, sizeof(name)), user->port);
	else
		snprintf(buf, len, "service=\"\",port=\"\"");
}

int metrics_render(FILE *out, const struct dpv *v, const struct metrics_agent *a)
{
	const struct dpv_frontend **users;
	char labels[1024], ns[160], name[300], sec[160];

	header(out, "gammad_up", "gauge", "The agent is running.");
	fprintf(out, "gammad_up 1\n");
	header(out, "gammad_ready", "gauge", "The first full apply is done.");
	fprintf(out, "gammad_ready %d\n", a && a->ready);
	if (a) {
		header(out, "gammad_apply_generation", "counter",
		       "Successful applies of the manifests to the data path.");
		fprintf(out, "gammad_apply_generation %llu\n", (unsigned long long)a->generation);
		header(out, "gammad_apply_errors_total", "counter", "Applies that failed.");
		fprintf(out, "gammad_apply_errors_total %llu\n", (unsigned long long)a->apply_errors);
		header(out, "gammad_input_errors", "gauge",
		       "Errors in the manifests at the last apply (see the status file).");
		fprintf(out, "gammad_input_errors %llu\n", (unsigned long long)a->input_errors);
		header(out, "gammad_last_apply_duration_seconds", "gauge",
		       "Duration of the last apply (load, translate, write the maps).");
		fprintf(out, "gammad_last_apply_duration_seconds %.6f\n", a->last_apply_seconds);
		header(out, "gammad_last_apply_timestamp_seconds", "gauge",
		       "Unix time the last apply ended.");
		fprintf(out, "gammad_last_apply_timestamp_seconds %.3f\n", a->last_apply_time);
	}
	header(out, "gammad_datapath_up", "gauge", "The pinned data-path maps could be read.");
	fprintf(out, "gammad_datapath_up %d\n", v != NULL);
	if (!v)
		return ferror(out) ? -EIO : 0;

	svc_counter(out, v, "gammad_service_connects_total",
		    "Connections (and datagrams) to a Service port translated to an endpoint.",
		    offsetof(struct gammad_svc_stats, connects));
	svc_counter(out, v, "gammad_service_no_backend_total",
		    "Connections to a Service port whose route had no backend.",
		    offsetof(struct gammad_svc_stats, no_backend));
	svc_counter(out, v, "gammad_service_no_endpoint_total",
		    "Connections to a Service port whose backend had no endpoint.",
		    offsetof(struct gammad_svc_stats, no_endpoint));
	svc_counter(out, v, "gammad_service_refused_total",
		    "Connections to a Service port refused (ECONNREFUSED, dropped datagram).",
		    offsetof(struct gammad_svc_stats, refused));
	svc_counter(out, v, "gammad_service_l7_unenforced_total",
		    "Connections translated while the route's L7 rules were not enforced.",
		    offsetof(struct gammad_svc_stats, l7_unenforced));

	users = selector_users(v);
	if (!users)
		return -ENOMEM;
	header(out, "gammad_route_connects_total", "counter",
	       "Connections routed by a route rule's backend selector.");
	for (size_t i = 0; i < v->nr_sels; i++) {
		const struct dpv_selector *s = &v->sels[i];
		char svc[512];

		route_service(users[i], svc, sizeof(svc));
		if (s->named)
			fprintf(out, "gammad_route_connects_total{namespace=\"%s\",route=\"%s\","
				"rule=\"%s\",%s,selector=\"%u\"} %llu\n",
				esc(s->route_ns, ns, sizeof(ns)), esc(s->route_name, name, sizeof(name)),
				esc(s->section, sec, sizeof(sec)), svc, s->id,
				(unsigned long long)s->connects);
		else
			fprintf(out, "gammad_route_connects_total{namespace=\"\",route=\"id:%u\","
				"rule=\"\",%s,selector=\"%u\"} %llu\n", s->id, svc, s->id,
				(unsigned long long)s->connects);
	}
	free(users);
	header(out, "gammad_backend_connects_total", "counter",
	       "Connections sent to a backend (a Service port routes point to).");
	for (size_t i = 0; i < v->nr_bes; i++) {
		be_labels(&v->bes[i], labels, sizeof(labels));
		fprintf(out, "gammad_backend_connects_total{%s} %llu\n", labels,
			(unsigned long long)v->bes[i].connects);
	}
	header(out, "gammad_backend_endpoints", "gauge", "Ready endpoints behind a backend.");
	for (size_t i = 0; i < v->nr_bes; i++) {
		be_labels(&v->bes[i], labels, sizeof(labels));
		fprintf(out, "gammad_backend_endpoints{%s} %zu\n", labels, v->bes[i].nr_eps);
	}
	header(out, "gammad_drops_total", "counter",
	       "Connections the data path could not translate, by reason.");
	for (unsigned int r = 1; r < GAMMAD_R_MAX; r++)
		fprintf(out, "gammad_drops_total{reason=\"%s\"} %llu\n", dp_reason_name(r),
			(unsigned long long)v->reasons[r]);
	if (v->has_tc) {
		header(out, "gammad_tc_total", "counter",
		       "TC path events by kind: packets translated (hairpin: a pod reached "
		       "itself), redirected, passed, dropped; flows created and ended.");
		for (unsigned int r = 0; r < GAMMAD_TC_MAX; r++)
			fprintf(out, "gammad_tc_total{event=\"%s\"} %llu\n",
				dp_tc_reason_name(r), (unsigned long long)v->tc[r]);
	}
	header(out, "gammad_map_entries", "gauge", "Entries in a pinned data-path map.");
	for (int i = 0; i < DPV_MAP_COUNT; i++)
		if (v->fill[i].counted)
			fprintf(out, "gammad_map_entries{map=\"%s\"} %u\n", dpv_map_name(i),
				v->fill[i].entries);
	header(out, "gammad_map_max_entries", "gauge", "Capacity of a pinned data-path map.");
	for (int i = 0; i < DPV_MAP_COUNT; i++)
		if (v->fill[i].max_entries)
			fprintf(out, "gammad_map_max_entries{map=\"%s\"} %u\n", dpv_map_name(i),
				v->fill[i].max_entries);
	header(out, "gammad_objects", "gauge", "Entries of the object table naming kernel ids.");
	fprintf(out, "gammad_objects %zu\n", v->nr_objects);
	return ferror(out) ? -EIO : 0;
}

int metrics_render_buf(const char *pin_dir, const struct metrics_agent *a,
		       char **buf, size_t *len)
{
	char path[4200];
	struct stat sb;
	struct dpv_maps m;
	struct dpv v;
	bool have = false;
	FILE *out;
	int err;

	*buf = NULL;
	*len = 0;
	/* Maps not pinned (yet) are a metric (datapath_up 0), not a log line per scrape. */
	snprintf(path, sizeof(path), "%s/%s", pin_dir, GAMMAD_MAP_FRONTEND);
	if (!stat(path, &sb) && !dpv_maps_open(&m, pin_dir)) {
		have = !dpv_build(&m, &v);
		if (!have)
			dpv_maps_close(&m);
	}
	out = open_memstream(buf, len);
	if (!out) {
		err = -errno;
		goto out;
	}
	err = metrics_render(out, have ? &v : NULL, a);
	if (!err && have) {
		struct khv k;

		err = khv_read(&m, &v, &k);
		if (!err)
			khv_prom(out, &k);
		khv_free(&k);
	}
	if (fclose(out) && !err)
		err = -EIO;
out:
	if (have) {
		dpv_free(&v);
		dpv_maps_close(&m);
	}
	if (err) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}
