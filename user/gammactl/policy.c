// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl policy: the Kubernetes Service semantics in force per Service
 * port, as the kernel holds them. A connection to a Service port gets a
 * backend (the port's own endpoints, or a route's backendRef Service) and
 * then an endpoint of it under that backend's policy, so the policy is
 * shown per backend the port can reach:
 *
 *   affinity=ClientIP/10800s   sessionAffinity ClientIP and its timeout
 *   -                          none: every connection picks afresh
 *
 * One POLICY column of comma-separated items, so other Service semantics
 * (traffic policy, zones, terminating fallback) take their place beside it.
 */
#include <stdio.h>
#include <string.h>

#include "gammactl.h"

/* "affinity=ClientIP/10800s" or "-". */
static const char *policy_str(const struct dpv_backend *b, char *buf, size_t len)
{
	if (!b || !b->present)
		return snprintf(buf, len, "(missing)"), buf;
	if (b->val.affinity_timeout)
		snprintf(buf, len, "affinity=ClientIP/%us", b->val.affinity_timeout);
	else
		snprintf(buf, len, "-");
	return buf;
}

static void json_policy(struct json_writer *w, const struct dpv_backend *b)
{
	jw_key(w, "sessionAffinity");
	jw_obj_begin(w);
	jw_kstr(w, "type", b && b->present && b->val.affinity_timeout ? "ClientIP" : "None");
	jw_kint(w, "timeoutSeconds", b && b->present ? b->val.affinity_timeout : 0);
	jw_obj_end(w);
}

/* The distinct backends every class of f can pick, in class then share order. */
static size_t reachable(const struct dpv *v, const struct dpv_frontend *f, uint32_t *ids,
			size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < f->nr_classes; k++) {
		const struct dpv_selector *s = dpv_selector(v, f->classes[k].sel);

		for (size_t i = 0; s && i < s->nr_shares; i++) {
			bool seen = false;

			if (!s->shares[i].num)
				continue;
			for (size_t j = 0; j < n; j++)
				seen |= ids[j] == s->shares[i].be_id;
			if (!seen && n < max)
				ids[n++] = s->shares[i].be_id;
		}
	}
	return n;
}

int ctl_policy(struct ctl *c, int argc, char **argv)
{
	const char *filter = argc == 2 ? argv[1] : NULL;
	struct json_writer w;
	struct dpv_maps m;
	struct dpv v;
	uint32_t ids[256];
	char a[256], b[256], p[128];

	if (argc > 2) {
		fprintf(stderr, "usage: gammactl policy [SERVICE]\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl_view(c, &m, &v))
		return CTL_EXIT_ERROR;
	if (c->json) {
		jw_init(&w, c->out, true);
		jw_obj_begin(&w);
		jw_key(&w, "services");
		jw_arr_begin(&w);
	} else {
		fprintf(c->out, "%-40s %-24s %-5s %-40s %s\n", "SERVICE", "CLUSTER-IP", "PROTO",
			"BACKEND", "POLICY");
	}
	for (size_t i = 0; i < v.nr_fes; i++) {
		const struct dpv_frontend *f = &v.fes[i];
		size_t n = reachable(&v, f, ids, sizeof(ids) / sizeof(ids[0]));

		dpv_frontend_label(f, a, sizeof(a));
		if (filter && strcmp(filter, a) && strcmp(filter, f->addr) &&
		    !(f->named && !strcmp(filter, f->svc_name)) &&
		    !(f->named && !strncmp(filter, a, strlen(filter)) && a[strlen(filter)] == ':'))
			continue;
		if (c->json) {
			jw_obj_begin(&w);
			jw_kstr(&w, "service", a);
			jw_kstr(&w, "address", f->addr);
			jw_kint(&w, "port", f->port);
			jw_kstr(&w, "protocol", f->proto);
			jw_key(&w, "backends");
			jw_arr_begin(&w);
		}
		for (size_t j = 0; j < n; j++) {
			const struct dpv_backend *be = dpv_backend(&v, ids[j]);

			if (c->json) {
				jw_obj_begin(&w);
				jw_kstr(&w, "backend", be ? dpv_backend_label(be, b, sizeof(b)) : NULL);
				jw_kint(&w, "id", ids[j]);
				json_policy(&w, be);
				jw_obj_end(&w);
				continue;
			}
			fprintf(c->out, "%-40s %-24s %-5s %-40s %s\n", j ? "" : a, j ? "" : f->addr,
				j ? "" : f->proto, be ? dpv_backend_label(be, b, sizeof(b)) : "?",
				policy_str(be, p, sizeof(p)));
		}
		if (!n && !c->json)
			fprintf(c->out, "%-40s %-24s %-5s %-40s %s\n", a, f->addr, f->proto,
				"(no backend)", "-");
		if (c->json) {
			jw_arr_end(&w);
			jw_obj_end(&w);
		}
	}
	if (c->json) {
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
		fputc('\n', c->out);
	}
	ctl_view_free(&m, &v);
	return 0;
}
