// SPDX-License-Identifier: Apache-2.0
/* The kernel HTTP path in the pinned maps: see khview.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "khview.h"

static const char *const reason_names[GAMMAD_KH_R_MAX] = {
	[GAMMAD_KH_R_SERVED] = "served",
	[GAMMAD_KH_R_MORE] = "head_incomplete",
	[GAMMAD_KH_R_NO_TABLE] = "no_table",
	[GAMMAD_KH_R_TABLE] = "table_engine",
	[GAMMAD_KH_R_MALFORMED] = "malformed",
	[GAMMAD_KH_R_HEAD_TOO_LARGE] = "head_too_large",
	[GAMMAD_KH_R_FIELDS] = "too_many_fields",
	[GAMMAD_KH_R_QUERY] = "too_many_query_params",
	[GAMMAD_KH_R_TARGET_FORM] = "target_form",
	[GAMMAD_KH_R_LEADING_CRLF] = "leading_crlf",
	[GAMMAD_KH_R_METHOD] = "method",
	[GAMMAD_KH_R_CHUNKED] = "transfer_encoding",
	[GAMMAD_KH_R_EXPECT] = "expect",
	[GAMMAD_KH_R_UPGRADE] = "upgrade",
	[GAMMAD_KH_R_LENGTH] = "content_length",
	[GAMMAD_KH_R_MAP] = "entry_missing",
	[GAMMAD_KH_R_PIPELINE] = "pipeline",
	[GAMMAD_KH_R_NO_UPSTREAM] = "no_upstream",
	[GAMMAD_KH_R_NO_ENDPOINT] = "no_endpoint",
	[GAMMAD_KH_R_AFFINITY] = "affinity",
	[GAMMAD_KH_R_REDIRECT] = "redirect",
	[GAMMAD_KH_R_LOCAL_BODY] = "local_body",
	[GAMMAD_KH_R_UNFRAMED] = "unframed",
	[GAMMAD_KH_R_EDIT] = "edit_failed",
	[GAMMAD_KH_R_ENGINE_LOST] = "engine_lost",
	[GAMMAD_KH_R_HOP_BY_HOP] = "hop_by_hop",
	[GAMMAD_KH_R_HTTP10] = "http10",
	[GAMMAD_KH_R_SLOW_READER] = "slow_reader",
	[GAMMAD_KH_R_CLOSE_DELIMITED] = "close_delimited",
	[GAMMAD_KH_R_ENGINE_FIRST] = "engine_first",
	[GAMMAD_KH_R_RESP_TCP] = "resp_edit_tcp",
	[GAMMAD_KH_R_RESP_CUT] = "resp_edit_cut",
	[GAMMAD_KH_R_RESP_ENGINE] = "resp_edit_engine",
	[GAMMAD_KH_R_H2_PRIOR] = "h2_prior_knowledge",
};

static const char *const tab_reason_names[GAMMAD_KH_TAB_MAX] = {
	[GAMMAD_KH_TAB_OK] = "",
	[GAMMAD_KH_TAB_NOT_HTTP] = "not_http",
	[GAMMAD_KH_TAB_REGEX] = "regex",
	[GAMMAD_KH_TAB_TOO_MANY_ENTRIES] = "too_many_entries",
	[GAMMAD_KH_TAB_TOO_MANY_CONDS] = "too_many_conditions",
	[GAMMAD_KH_TAB_STRING] = "string_too_long",
	[GAMMAD_KH_TAB_RESPONSE_FILTER] = "response_header_modifier",
	[GAMMAD_KH_TAB_MIRROR] = "request_mirror",
	[GAMMAD_KH_TAB_OTHER_FILTER] = "other_filter",
	[GAMMAD_KH_TAB_RETRY] = "retry",
	[GAMMAD_KH_TAB_TIMEOUT] = "timeout",
	[GAMMAD_KH_TAB_REWRITES] = "rewrites",
	[GAMMAD_KH_TAB_HEADER_EDITS] = "header_edits",
	[GAMMAD_KH_TAB_FIELD_VALUE] = "field_value",
};

const char *khv_reason_name(unsigned int reason)
{
	return reason < GAMMAD_KH_R_MAX && reason_names[reason] ? reason_names[reason] : "unknown";
}

const char *khv_tab_reason_name(unsigned int reason)
{
	return reason < GAMMAD_KH_TAB_MAX && tab_reason_names[reason] ?
	       tab_reason_names[reason] : "unknown";
}

static int pinned(const struct dpv_maps *m, const char *name)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", m->pin_dir, name);
	return bpf_obj_get(path);
}

int khv_read(const struct dpv_maps *m, const struct dpv *v, struct khv *out)
{
	int cls = pinned(m, GAMMAD_MAP_KH_CLASS), tab = pinned(m, GAMMAD_MAP_KH_TABLE);
	int st = pinned(m, GAMMAD_MAP_KH_STATS);
	uint64_t *vals = NULL;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (cls < 0 || tab < 0 || st < 0)
		goto out;	/* an agent without the kernel HTTP maps: nothing to show */
	out->pinned = true;
	vals = calloc((size_t)m->nr_cpus, sizeof(*vals));
	if (!vals) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t r = 0; r < GAMMAD_KH_R_MAX; r++) {
		if (bpf_map_lookup_elem(st, &r, vals))
			continue;
		for (int c = 0; c < m->nr_cpus; c++)
			out->reasons[r] += vals[c];
	}
	for (size_t i = 0; i < v->nr_fes; i++)
		for (size_t c = 0; c < v->fes[i].nr_classes; c++) {
			struct gammad_cons_key key = { .table_gen = v->fes[i].val.table_gen,
						       .ns_id = v->fes[i].classes[c].ns_id };
			struct gammad_kh_class_val cv;
			struct khv_class *k;

			if (bpf_map_lookup_elem(cls, &key, &cv))
				continue;	/* no routes, or written without --kernel-http */
			k = realloc(out->classes, (out->nr + 1) * sizeof(*k));
			if (!k) {
				err = -ENOMEM;
				goto out;
			}
			out->classes = k;
			k = &out->classes[out->nr++];
			memset(k, 0, sizeof(*k));
			k->fe = &v->fes[i];
			k->cls = &v->fes[i].classes[c];
			k->tab = cv.tab;
			k->present = !bpf_map_lookup_elem(tab, &cv.tab, &k->t);
		}
out:
	free(vals);
	if (cls >= 0)
		close(cls);
	if (tab >= 0)
		close(tab);
	if (st >= 0)
		close(st);
	if (err)
		khv_free(out);
	return err;
}

void khv_free(struct khv *k)
{
	free(k->classes);
	memset(k, 0, sizeof(*k));
}

/* "kernel", or "engine" with the table's reason ("table_missing" when it is gone). */
static const char *served_by(const struct khv_class *c, const char **reason)
{
	if (!c->present) {
		*reason = "table_missing";
		return "engine";
	}
	*reason = khv_tab_reason_name(c->t.engine_reason);
	return c->t.engine_reason ? "engine" : "kernel";
}

static const char *class_name(const struct khv_class *c)
{
	if (!c->cls->ns_id)
		return "default";
	return c->cls->ns_name[0] ? c->cls->ns_name : "?";
}

void khv_text(FILE *out, const struct khv *k)
{
	char svc[400];

	if (!k->pinned || (!k->nr && !k->reasons[GAMMAD_KH_R_SERVED]))
		return;
	fprintf(out, "\n%-44s %10s\n", "KERNEL HTTP REQUESTS", "COUNT");
	for (unsigned int r = 0; r < GAMMAD_KH_R_MAX; r++)
		if (r == GAMMAD_KH_R_SERVED || k->reasons[r])
			fprintf(out, "%-44s %10llu\n", r == GAMMAD_KH_R_SERVED ? "served" :
				khv_reason_name(r), (unsigned long long)k->reasons[r]);
	fprintf(out, "\n%-44s %-16s %8s  %s\n", "KERNEL HTTP CLASS", "CLIENTS", "TABLE",
		"SERVED BY");
	for (size_t i = 0; i < k->nr; i++) {
		const struct khv_class *c = &k->classes[i];
		const char *why, *by = served_by(c, &why);

		if (c->fe->named)
			snprintf(svc, sizeof(svc), "%s/%s:%u (%s)", c->fe->svc_ns, c->fe->svc_name,
				 c->fe->port, c->fe->addr);
		else
			snprintf(svc, sizeof(svc), "id:%u:%u (%s)", c->fe->val.svc_port_id,
				 c->fe->port, c->fe->addr);
		fprintf(out, "%-44s %-16s %8u  %s%s%s\n", svc, class_name(c), c->tab, by,
			*why ? ": " : "", why);
	}
}

/* A label value: the names here come from the object table, escape anyway. */
static void put_label(FILE *out, const char *name, const char *v, bool comma)
{
	fprintf(out, "%s%s=\"", comma ? "," : "", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', out);
		if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
	fputc('"', out);
}

void khv_prom(FILE *out, const struct khv *k)
{
	size_t counts[2][GAMMAD_KH_TAB_MAX + 1] = { { 0 } };
	char port[8];

	if (!k->pinned)
		return;
	fprintf(out, "# HELP gammad_khttp_requests_total Kernel HTTP decisions by reason: served "
		"by the kernel, or why the request went to the engine.\n"
		"# TYPE gammad_khttp_requests_total counter\n");
	for (unsigned int r = 0; r < GAMMAD_KH_R_MAX; r++)
		fprintf(out, "gammad_khttp_requests_total{reason=\"%s\"} %llu\n",
			khv_reason_name(r), (unsigned long long)k->reasons[r]);
	fprintf(out, "# HELP gammad_khttp_class_info Each class of a Service port with routes: "
		"served by the kernel's HTTP tables or by the engine, and why.\n"
		"# TYPE gammad_khttp_class_info gauge\n");
	for (size_t i = 0; i < k->nr; i++) {
		const struct khv_class *c = &k->classes[i];
		const char *why, *by = served_by(c, &why);
		bool kernel = !strcmp(by, "kernel");

		snprintf(port, sizeof(port), "%u", c->fe->port);
		fputs("gammad_khttp_class_info{", out);
		put_label(out, "namespace", c->fe->named ? c->fe->svc_ns : "", false);
		put_label(out, "service", c->fe->named ? c->fe->svc_name : "", true);
		put_label(out, "port", port, true);
		put_label(out, "address", c->fe->addr, true);
		put_label(out, "class", class_name(c), true);
		put_label(out, "served_by", by, true);
		put_label(out, "reason", why, true);
		fputs("} 1\n", out);
		counts[kernel][c->present ? c->t.engine_reason : GAMMAD_KH_TAB_MAX]++;
	}
	fprintf(out, "# HELP gammad_khttp_classes Classes with routes by who serves them.\n"
		"# TYPE gammad_khttp_classes gauge\n");
	fprintf(out, "gammad_khttp_classes{served_by=\"kernel\",reason=\"\"} %zu\n", counts[1][0]);
	for (unsigned int r = 1; r <= GAMMAD_KH_TAB_MAX; r++)
		if (counts[0][r])
			fprintf(out, "gammad_khttp_classes{served_by=\"engine\",reason=\"%s\"} %zu\n",
				r == GAMMAD_KH_TAB_MAX ? "table_missing" : khv_tab_reason_name(r),
				counts[0][r]);
}
