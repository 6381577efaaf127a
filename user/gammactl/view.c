// SPDX-License-Identifier: Apache-2.0
/* gammactl services, routes, endpoints, stats: the kernel's own tables. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "datapath/tc_maps.h"
#include "gammactl.h"
#include "view/khview.h"

int ctl_view(struct ctl *c, struct dpv_maps *m, struct dpv *v)
{
	int err = dpv_maps_open(m, c->pin_dir);

	if (err)
		return err;
	err = dpv_build(m, v);
	if (err)
		dpv_maps_close(m);
	return err;
}

void ctl_view_free(struct dpv_maps *m, struct dpv *v)
{
	dpv_free(v);
	dpv_maps_close(m);
}

const char *ctl_percent(double share, char *buf, size_t len)
{
	snprintf(buf, len, "%.2f%%", share * 100.0);
	return buf;
}

static const char *ns_label(const struct dpv_class *cl, char *buf, size_t len)
{
	if (!cl->ns_id)
		snprintf(buf, len, "(default)");
	else if (cl->ns_name[0])
		snprintf(buf, len, "%s", cl->ns_name);
	else
		snprintf(buf, len, "ns %u", cl->ns_id);
	return buf;
}

static void json_svc_identity(struct json_writer *w, const struct dpv_frontend *f)
{
	jw_kstr(w, "namespace", f->named ? f->svc_ns : NULL);
	jw_kstr(w, "name", f->named ? f->svc_name : NULL);
	jw_kstr(w, "portName", f->named && f->port_name[0] ? f->port_name : NULL);
	jw_kstr(w, "address", f->addr);
	jw_kint(w, "port", f->port);
	jw_kstr(w, "protocol", f->proto);
}

static void json_svc_counters(struct json_writer *w, const struct gammad_svc_stats *s)
{
	jw_key(w, "counters");
	jw_obj_begin(w);
	jw_key(w, "connects");
	jw_uint(w, s->connects);
	jw_key(w, "noBackend");
	jw_uint(w, s->no_backend);
	jw_key(w, "noEndpoint");
	jw_uint(w, s->no_endpoint);
	jw_key(w, "refused");
	jw_uint(w, s->refused);
	jw_key(w, "l7Unenforced");
	jw_uint(w, s->l7_unenforced);
	jw_obj_end(w);
}

static void json_route_ref(struct json_writer *w, const struct dpv_selector *s)
{
	jw_key(w, "route");
	if (s && s->named && s->route_name[0]) {
		jw_obj_begin(w);
		jw_kstr(w, "namespace", s->route_ns);
		jw_kstr(w, "name", s->route_name);
		jw_kstr(w, "rule", s->section[0] ? s->section : NULL);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
}

void ctl_json_be_flags(struct json_writer *w, const struct dpv_backend *b)
{
	jw_key(w, "flags");
	jw_arr_begin(w);
	if (!b->present)
		jw_str(w, "missing");
	if (b->val.flags & GAMMAD_BE_UNRESOLVED)
		jw_str(w, "unresolved");
	if (b->val.flags & GAMMAD_BE_NO_ENDPOINTS)
		jw_str(w, "no_endpoints");
	jw_arr_end(w);
	ctl_json_be_policy(w, b);
}

/* "policy": the words of dpv_be_policy() as a list (empty: none). */
void ctl_json_be_policy(struct json_writer *w, const struct dpv_backend *b)
{
	char buf[128], *save, *word;

	jw_key(w, "policy");
	jw_arr_begin(w);
	dpv_be_policy(b, buf, sizeof(buf));
	for (word = strtok_r(buf, ",", &save); word; word = strtok_r(NULL, ",", &save))
		if (strcmp(word, "-"))
			jw_str(w, word);
	jw_arr_end(w);
}

void ctl_json_endpoints(struct json_writer *w, const struct dpv_backend *b)
{
	char buf[80];

	jw_key(w, "endpoints");
	jw_arr_begin(w);
	for (size_t i = 0; i < b->nr_eps; i++)
		jw_str(w, dpv_ep_str(&b->eps[i], buf, sizeof(buf)));
	jw_arr_end(w);
}

static void json_backend(struct json_writer *w, const struct dpv_backend *b)
{
	jw_kstr(w, "namespace", b->named ? b->namespace : NULL);
	jw_kstr(w, "name", b->named ? b->name : NULL);
	jw_kint(w, "port", b->named ? b->port : 0);
	jw_kint(w, "id", b->id);
	ctl_json_be_flags(w, b);
	jw_key(w, "connects");
	jw_uint(w, b->connects);
	ctl_json_endpoints(w, b);
}

static const char *be_state(const struct dpv_backend *b)
{
	if (!b || !b->present)
		return "missing";
	if (b->val.flags & GAMMAD_BE_UNRESOLVED)
		return "unresolved";
	if (b->val.flags & GAMMAD_BE_NO_ENDPOINTS)
		return "no endpoints";
	return "ok";
}

/* ---- services ------------------------------------------------------------- */

int ctl_services(struct ctl *c, int argc, char **argv)
{
	struct dpv_maps m;
	struct dpv v;
	char a[256], b[256], d[64], e[128];

	if (argc != 1) {
		fprintf(stderr, "usage: gammactl services\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl_view(c, &m, &v))
		return CTL_EXIT_ERROR;
	if (c->json) {
		struct json_writer w;

		jw_init(&w, c->out, true);
		jw_obj_begin(&w);
		jw_key(&w, "services");
		jw_arr_begin(&w);
		for (size_t i = 0; i < v.nr_fes; i++) {
			const struct dpv_frontend *f = &v.fes[i];

			jw_obj_begin(&w);
			json_svc_identity(&w, f);
			jw_kint(&w, "svcPortId", f->val.svc_port_id);
			jw_kint(&w, "generation", f->val.table_gen);
			jw_key(&w, "flags");
			jw_arr_begin(&w);
			if (f->val.flags & GAMMAD_FE_HAS_CONSUMERS)
				jw_str(&w, "consumers");
			if (f->val.flags & GAMMAD_FE_L7_UNENFORCED)
				jw_str(&w, "l7_unenforced");
			jw_arr_end(&w);
			jw_key(&w, "classes");
			jw_arr_begin(&w);
			for (size_t k = 0; k < f->nr_classes; k++) {
				const struct dpv_class *cl = &f->classes[k];
				const struct dpv_selector *s = dpv_selector(&v, cl->sel);

				jw_obj_begin(&w);
				jw_kstr(&w, "clientNamespace",
					!cl->ns_id ? NULL : cl->ns_name[0] ? cl->ns_name : "?");
				jw_kint(&w, "nsId", cl->ns_id);
				jw_kint(&w, "selector", cl->sel);
				json_route_ref(&w, s);
				jw_obj_end(&w);
			}
			jw_arr_end(&w);
			json_svc_counters(&w, &f->stats);
			ctl_json_be_policy(&w, dpv_service_backend(&v, f->svc_ns, f->svc_name,
								   f->port));
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
		fputc('\n', c->out);
	} else {
		fprintf(c->out, "%-40s %-24s %-5s %-5s %-16s %-32s %10s %8s  %s\n", "SERVICE",
			"CLUSTER-IP", "PROTO", "GEN", "CLIENTS", "ROUTE", "CONNECTS", "REFUSED",
			"POLICY");
		for (size_t i = 0; i < v.nr_fes; i++) {
			const struct dpv_frontend *f = &v.fes[i];

			for (size_t k = 0; k < f->nr_classes; k++) {
				const struct dpv_class *cl = &f->classes[k];

				if (!k) {
					snprintf(d, sizeof(d), "%u", f->val.table_gen);
					dpv_frontend_label(f, a, sizeof(a));
					fprintf(c->out, "%-40s %-24s %-5s %-5s ", a, f->addr,
						f->proto, d);
				} else {
					fprintf(c->out, "%-40s %-24s %-5s %-5s ", "", "", "", "");
				}
				fprintf(c->out, "%-16s %-32s", ns_label(cl, d, sizeof(d)),
					dpv_selector_label(dpv_selector(&v, cl->sel), b, sizeof(b)));
				/* POLICY: the Service port's own endpoints, as plain clients get them */
				if (!k)
					fprintf(c->out, " %10llu %8llu  %s",
						(unsigned long long)f->stats.connects,
						(unsigned long long)f->stats.refused,
						dpv_be_policy(f->named ? dpv_service_backend(&v,
							f->svc_ns, f->svc_name, f->port) : NULL,
							e, sizeof(e)));
				fputc('\n', c->out);
			}
		}
	}
	ctl_view_free(&m, &v);
	return 0;
}

/* ---- routes ------------------------------------------------------------------ */

static bool route_matches(const struct dpv_frontend *f, const struct dpv_selector *s,
			  const char *filter)
{
	char buf[256];

	if (!filter)
		return true;
	if (s && s->named) {
		snprintf(buf, sizeof(buf), "%s/%s", s->route_ns, s->route_name);
		if (s->route_name[0] && !strcmp(buf, filter))
			return true;
	}
	if (f->named) {
		snprintf(buf, sizeof(buf), "%s/%s", f->svc_ns, f->svc_name);
		if (!strcmp(buf, filter))
			return true;
	}
	return false;
}

int ctl_routes(struct ctl *c, int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	struct json_writer w;
	struct dpv_maps m;
	struct dpv v;
	char a[256], b[256], d[64], e[80];
	size_t shown = 0;

	if (argc > 2 || (filter && !strchr(filter, '/'))) {
		fprintf(stderr, "usage: gammactl routes [NS/NAME]   (a route or a Service)\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl_view(c, &m, &v))
		return CTL_EXIT_ERROR;
	if (c->json) {
		jw_init(&w, c->out, true);
		jw_obj_begin(&w);
		jw_key(&w, "routes");
		jw_arr_begin(&w);
	}
	for (size_t i = 0; i < v.nr_fes; i++) {
		const struct dpv_frontend *f = &v.fes[i];

		for (size_t k = 0; k < f->nr_classes; k++) {
			const struct dpv_class *cl = &f->classes[k];
			const struct dpv_selector *s = dpv_selector(&v, cl->sel);

			if (!route_matches(f, s, filter))
				continue;
			shown++;
			if (c->json) {
				jw_obj_begin(&w);
				jw_key(&w, "service");
				jw_obj_begin(&w);
				json_svc_identity(&w, f);
				jw_obj_end(&w);
				jw_kstr(&w, "clientNamespace",
					!cl->ns_id ? NULL : cl->ns_name[0] ? cl->ns_name : "?");
				jw_kint(&w, "selector", cl->sel);
				json_route_ref(&w, s);
				jw_kbool(&w, "present", s && s->present);
				jw_kbool(&w, "noRouteBackends",
					 s && (s->val.flags & GAMMAD_SEL_NO_ROUTE_BACKENDS));
				jw_key(&w, "totalWeight");
				jw_uint(&w, s ? s->val.total_weight : 0);
				jw_key(&w, "connects");
				jw_uint(&w, s ? s->connects : 0);
				jw_key(&w, "backends");
				jw_arr_begin(&w);
				for (size_t j = 0; s && j < s->nr_shares; j++) {
					const struct dpv_backend *be = dpv_backend(&v, s->shares[j].be_id);
					char frac[48];

					snprintf(frac, sizeof(frac), "%llu/%llu",
						 (unsigned long long)s->shares[j].num,
						 (unsigned long long)s->shares[j].den);
					jw_obj_begin(&w);
					jw_key(&w, "percent");
					jw_double(&w, s->shares[j].share * 100.0, 4);
					jw_kstr(&w, "share", frac);
					if (be)
						json_backend(&w, be);
					jw_obj_end(&w);
				}
				jw_arr_end(&w);
				jw_obj_end(&w);
				continue;
			}
			fprintf(c->out, "%s (%s %s:%u) clients %s: %s%s\n",
				dpv_frontend_label(f, a, sizeof(a)), f->proto, f->addr, f->port,
				ns_label(cl, d, sizeof(d)),
				dpv_selector_label(s, b, sizeof(b)),
				!s || !s->present ? " [selector missing]" :
				(s->val.flags & GAMMAD_SEL_NO_ROUTE_BACKENDS) ?
				" [no backends: connections refused]" : "");
			for (size_t j = 0; s && j < s->nr_shares; j++) {
				const struct dpv_backend *be = dpv_backend(&v, s->shares[j].be_id);

				fprintf(c->out, "  %8s  %-40s %-12s", ctl_percent(s->shares[j].share, d, sizeof(d)),
					dpv_backend_label(be, b, sizeof(b)), be_state(be));
				for (size_t x = 0; be && x < be->nr_eps; x++)
					fprintf(c->out, " %s", dpv_ep_str(&be->eps[x], e, sizeof(e)));
				fputc('\n', c->out);
			}
		}
	}
	if (c->json) {
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
		fputc('\n', c->out);
	}
	ctl_view_free(&m, &v);
	if (filter && !shown) {
		fprintf(stderr, "gammactl: no route or Service %s in %s\n", filter, c->pin_dir);
		return CTL_EXIT_ERROR;
	}
	return 0;
}

/* ---- endpoints ------------------------------------------------------------ */

static bool parse_addr_port(const char *s, char *addr, size_t len, uint16_t *port)
{
	unsigned char buf[16];
	const char *colon;
	char tmp[64];
	long p = 0;

	snprintf(tmp, sizeof(tmp), "%s", s);
	if (tmp[0] == '[') {
		char *end = strchr(tmp, ']');

		if (!end)
			return false;
		*end = 0;
		if (end[1] == ':')
			p = strtol(end + 2, NULL, 10);
		else if (end[1])
			return false;
		snprintf(addr, len, "%s", tmp + 1);
	} else if ((colon = strrchr(tmp, ':')) && strchr(tmp, ':') == colon) {
		tmp[colon - tmp] = 0;
		p = strtol(colon + 1, NULL, 10);
		snprintf(addr, len, "%s", tmp);
	} else {
		snprintf(addr, len, "%s", tmp);
	}
	if (p < 0 || p > 65535)
		return false;
	*port = (uint16_t)p;
	/* The canonical spelling, as the view prints addresses. */
	if (inet_pton(AF_INET, addr, buf) == 1)
		return inet_ntop(AF_INET, buf, addr, (socklen_t)len) != NULL;
	if (inet_pton(AF_INET6, addr, buf) == 1)
		return inet_ntop(AF_INET6, buf, addr, (socklen_t)len) != NULL;
	return false;
}

int ctl_endpoints(struct ctl *c, int argc, char **argv)
{
	const struct dpv_backend **list = NULL;
	char addr[64], ns[128] = "", name[256], a[256], e[80];
	size_t nr = 0;
	uint16_t port = 0;
	bool by_addr, via_routes = false;
	struct dpv_maps m;
	struct dpv v;
	int ret = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gammactl endpoints SERVICE   (ns/name, name or ClusterIP[:port])\n");
		return CTL_EXIT_USAGE;
	}
	by_addr = parse_addr_port(argv[1], addr, sizeof(addr), &port);
	if (!by_addr) {
		const char *slash = strchr(argv[1], '/');

		if (slash) {
			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - argv[1]), argv[1]);
			snprintf(name, sizeof(name), "%s", slash + 1);
		} else {
			snprintf(name, sizeof(name), "%s", argv[1]);
		}
	}
	if (ctl_view(c, &m, &v))
		return CTL_EXIT_ERROR;
	list = calloc(v.nr_bes + 1, sizeof(*list));
	if (!list) {
		ret = CTL_EXIT_ERROR;
		goto out;
	}
	if (by_addr) {
		/* The Service's own endpoints: what its default class reaches. */
		for (size_t i = 0; i < v.nr_fes; i++) {
			const struct dpv_frontend *f = &v.fes[i];
			const struct dpv_selector *s;

			if (strcmp(f->addr, addr) || (port && f->port != port))
				continue;
			s = dpv_selector(&v, f->val.default_sel);
			for (size_t j = 0; s && j < s->nr_shares; j++) {
				const struct dpv_backend *b = dpv_backend(&v, s->shares[j].be_id);
				bool dup = false;

				for (size_t x = 0; x < nr; x++)
					dup |= list[x] == b;
				if (b && !dup)
					list[nr++] = b;
			}
			if (!ns[0] && f->named) {
				snprintf(ns, sizeof(ns), "%s", f->svc_ns);
				snprintf(name, sizeof(name), "%s", f->svc_name);
			}
		}
		if (!nr && !dpv_frontend_by_addr(&v, addr, port, NULL)) {
			fprintf(stderr, "gammactl: no Service at %s%s%.0u in %s\n", addr,
				port ? ":" : "", port, c->pin_dir);
			ret = CTL_EXIT_ERROR;
			goto out;
		}
	} else {
		const char *found_ns = NULL;

		for (size_t i = 0; i < v.nr_bes; i++) {
			const struct dpv_backend *b = &v.bes[i];

			if (!b->named || strcmp(b->name, name) || (ns[0] && strcmp(b->namespace, ns)))
				continue;
			if (found_ns && strcmp(found_ns, b->namespace)) {
				fprintf(stderr, "gammactl: Service %s exists in namespaces %s and %s: "
					"say ns/name\n", name, found_ns, b->namespace);
				ret = CTL_EXIT_USAGE;
				goto out;
			}
			found_ns = b->namespace;
			list[nr++] = b;
		}
		/* No route points at it: what its own clients reach, through its routes. */
		for (size_t i = 0; !nr && i < v.nr_fes; i++) {
			const struct dpv_frontend *f = &v.fes[i];

			if (!f->named || strcmp(f->svc_name, name) || (ns[0] && strcmp(f->svc_ns, ns)))
				continue;
			for (size_t k = 0; k < f->nr_classes; k++) {
				const struct dpv_selector *s = dpv_selector(&v, f->classes[k].sel);

				for (size_t j = 0; s && j < s->nr_shares; j++) {
					const struct dpv_backend *b = dpv_backend(&v, s->shares[j].be_id);
					bool dup = false;

					for (size_t x = 0; x < nr; x++)
						dup |= list[x] == b;
					if (b && !dup)
						list[nr++] = b;
				}
			}
			found_ns = f->svc_ns;
			via_routes = true;
		}
		if (!nr) {
			fprintf(stderr, "gammactl: no Service %s among the backends in %s%s\n", argv[1],
				c->pin_dir, v.nr_objects ? "" :
				" (the object table is empty: name the Service by ClusterIP[:port])");
			ret = CTL_EXIT_ERROR;
			goto out;
		}
		snprintf(ns, sizeof(ns), "%s", found_ns);
	}
	if (c->json) {
		struct json_writer w;

		jw_init(&w, c->out, true);
		jw_obj_begin(&w);
		jw_kstr(&w, "service", argv[1]);
		jw_kstr(&w, "namespace", ns[0] ? ns : NULL);
		jw_kstr(&w, "name", ns[0] ? name : NULL);
		jw_kbool(&w, "throughRoutes", via_routes);
		jw_key(&w, "backends");
		jw_arr_begin(&w);
		for (size_t i = 0; i < nr; i++) {
			jw_obj_begin(&w);
			json_backend(&w, list[i]);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
		fputc('\n', c->out);
	} else {
		if (via_routes)
			fprintf(c->out, "# no route points at %s/%s: the backends its clients reach "
				"through its routes\n", ns, name);
		/* POLICY holds e.g. "local,affinity=ClientIP/10800s" */
		fprintf(c->out, "%-40s %-12s %-32s %10s %s\n", "BACKEND", "STATE", "POLICY",
			"CONNECTS", "ENDPOINTS");
		for (size_t i = 0; i < nr; i++) {
			char pol[128];

			fprintf(c->out, "%-40s %-12s %-32s %10llu",
				dpv_backend_label(list[i], a, sizeof(a)), be_state(list[i]),
				dpv_be_policy(list[i], pol, sizeof(pol)),
				(unsigned long long)list[i]->connects);
			for (size_t x = 0; x < list[i]->nr_eps; x++)
				fprintf(c->out, " %s", dpv_ep_str(&list[i]->eps[x], e, sizeof(e)));
			fputc('\n', c->out);
		}
	}
out:
	free(list);
	ctl_view_free(&m, &v);
	return ret;
}

/* ---- stats ------------------------------------------------------------------ */

static void stats_json(struct ctl *c, const struct dpv *v, bool pretty)
{
	struct json_writer w;
	char b[256];

	jw_init(&w, c->out, pretty);
	jw_obj_begin(&w);
	jw_kint(&w, "time", (int64_t)time(NULL));
	jw_key(&w, "services");
	jw_arr_begin(&w);
	for (size_t i = 0; i < v->nr_fes; i++) {
		jw_obj_begin(&w);
		json_svc_identity(&w, &v->fes[i]);
		json_svc_counters(&w, &v->fes[i].stats);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "routes");
	jw_arr_begin(&w);
	for (size_t i = 0; i < v->nr_sels; i++) {
		const struct dpv_selector *s = &v->sels[i];

		jw_obj_begin(&w);
		jw_kint(&w, "selector", s->id);
		jw_kstr(&w, "label", dpv_selector_label(s, b, sizeof(b)));
		json_route_ref(&w, s);
		jw_key(&w, "connects");
		jw_uint(&w, s->connects);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "backends");
	jw_arr_begin(&w);
	for (size_t i = 0; i < v->nr_bes; i++) {
		jw_obj_begin(&w);
		jw_kstr(&w, "namespace", v->bes[i].named ? v->bes[i].namespace : NULL);
		jw_kstr(&w, "name", v->bes[i].named ? v->bes[i].name : NULL);
		jw_kint(&w, "port", v->bes[i].named ? v->bes[i].port : 0);
		jw_kint(&w, "id", v->bes[i].id);
		jw_key(&w, "connects");
		jw_uint(&w, v->bes[i].connects);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "drops");
	jw_obj_begin(&w);
	for (unsigned int r = 1; r < GAMMAD_R_MAX; r++) {
		jw_key(&w, dp_reason_name(r));
		jw_uint(&w, v->reasons[r]);
	}
	jw_obj_end(&w);
	if (v->has_tc) {
		jw_key(&w, "tc");
		jw_obj_begin(&w);
		for (unsigned int r = 0; r < GAMMAD_TC_MAX; r++) {
			jw_key(&w, dp_tc_reason_name(r));
			jw_uint(&w, v->tc[r]);
		}
		jw_obj_end(&w);
	}
	jw_key(&w, "maps");
	jw_arr_begin(&w);
	for (int i = 0; i < DPV_MAP_COUNT; i++) {
		if (!v->fill[i].max_entries)
			continue;
		jw_obj_begin(&w);
		jw_kstr(&w, "name", dpv_map_name(i));
		if (v->fill[i].counted)
			jw_kint(&w, "entries", v->fill[i].entries);
		jw_kint(&w, "maxEntries", v->fill[i].max_entries);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
	fputc('\n', c->out);
}

/* Growth of a counter since the previous sample ("" without one). */
static const char *delta(bool have, uint64_t now, uint64_t before, char *buf, size_t len)
{
	if (!have)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "+%llu", (unsigned long long)(now >= before ? now - before : now));
	return buf;
}

static const struct dpv_frontend *prev_fe(const struct dpv *p, const struct dpv_frontend *f)
{
	for (size_t i = 0; p && i < p->nr_fes; i++)
		if (!memcmp(&p->fes[i].key, &f->key, sizeof(f->key)) &&
		    p->fes[i].val.svc_port_id == f->val.svc_port_id)
			return &p->fes[i];
	return NULL;
}

/* prev: the previous sample of --watch (NULL: none), for a +DELTA column. */
static void stats_text(struct ctl *c, const struct dpv *v, const struct dpv *prev)
{
	const char *dh = prev ? "DELTA" : "";
	char a[256], d[32];

	fprintf(c->out, "%-44s %10s %8s %10s %10s %10s %10s\n", "SERVICE PORT", "CONNECTS", dh,
		"NO-BACKEND", "NO-ENDPT", "REFUSED", "L7-UNENF");
	for (size_t i = 0; i < v->nr_fes; i++) {
		const struct gammad_svc_stats *s = &v->fes[i].stats;
		const struct dpv_frontend *p = prev_fe(prev, &v->fes[i]);

		fprintf(c->out, "%-44s %10llu %8s %10llu %10llu %10llu %10llu\n",
			dpv_frontend_label(&v->fes[i], a, sizeof(a)),
			(unsigned long long)s->connects,
			delta(p, s->connects, p ? p->stats.connects : 0, d, sizeof(d)),
			(unsigned long long)s->no_backend, (unsigned long long)s->no_endpoint,
			(unsigned long long)s->refused, (unsigned long long)s->l7_unenforced);
	}
	fprintf(c->out, "\n%-44s %10s %8s\n", "ROUTE", "CONNECTS", dh);
	for (size_t i = 0; i < v->nr_sels; i++) {
		const struct dpv_selector *p = prev ? dpv_selector(prev, v->sels[i].id) : NULL;

		fprintf(c->out, "%-44s %10llu %8s\n", dpv_selector_label(&v->sels[i], a, sizeof(a)),
			(unsigned long long)v->sels[i].connects,
			delta(p, v->sels[i].connects, p ? p->connects : 0, d, sizeof(d)));
	}
	fprintf(c->out, "\n%-44s %10s %8s\n", "BACKEND", "CONNECTS", dh);
	for (size_t i = 0; i < v->nr_bes; i++) {
		const struct dpv_backend *p = prev ? dpv_backend(prev, v->bes[i].id) : NULL;

		fprintf(c->out, "%-44s %10llu %8s\n", dpv_backend_label(&v->bes[i], a, sizeof(a)),
			(unsigned long long)v->bes[i].connects,
			delta(p, v->bes[i].connects, p ? p->connects : 0, d, sizeof(d)));
	}
	fprintf(c->out, "\n%-44s %10s %8s\n", "DROP REASON", "COUNT", dh);
	for (unsigned int r = 1; r < GAMMAD_R_MAX; r++)
		if (v->reasons[r])
			fprintf(c->out, "%-44s %10llu %8s\n", dp_reason_name(r),
				(unsigned long long)v->reasons[r],
				delta(prev, v->reasons[r], prev ? prev->reasons[r] : 0, d, sizeof(d)));
	if (v->has_tc)
		fprintf(c->out, "\n%-44s %10s %8s\n", "TC PATH", "COUNT", dh);
	for (unsigned int r = 0; v->has_tc && r < GAMMAD_TC_MAX; r++)
		if (v->tc[r])
			fprintf(c->out, "%-44s %10llu %8s\n", dp_tc_reason_name(r),
				(unsigned long long)v->tc[r],
				delta(prev, v->tc[r], prev ? prev->tc[r] : 0, d, sizeof(d)));
	fprintf(c->out, "\n%-44s %10s %10s\n", "MAP", "ENTRIES", "MAX");
	for (int i = 0; i < DPV_MAP_COUNT; i++)
		if (v->fill[i].counted && i != DPV_SVCST && i != DPV_BEST && i != DPV_RTST &&
		    i != DPV_DROP && i != DPV_TCST)
			fprintf(c->out, "%-44s %10u %10u\n", dpv_map_name(i), v->fill[i].entries,
				v->fill[i].max_entries);
}

/* The kernel HTTP path's counters and classes, when its maps are pinned. */
static void stats_khttp(struct ctl *c, const struct dpv_maps *m, const struct dpv *v)
{
	struct khv k;

	if (!khv_read(m, v, &k))
		khv_text(c->out, &k);
	khv_free(&k);
}

int ctl_stats(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ 0 },
	};
	double interval = 2;
	long count = -1;
	bool watch = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+wi:n:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			watch = true;
			break;
		case 'i':
			interval = strtod(optarg, NULL);
			if (interval <= 0) {
				fprintf(stderr, "gammactl: --interval %s: not a positive number\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: gammactl stats [--watch [--interval S] [--count N]]\n");
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: gammactl stats [--watch [--interval S] [--count N]]\n");
		return CTL_EXIT_USAGE;
	}
	if (!watch)
		count = 1;
	struct dpv prev = { 0 };
	bool have_prev = false;

	for (long n = 0; count < 0 || n < count; n++) {
		struct dpv_maps m;
		struct dpv v;

		if (n) {
			struct timespec ts = { (time_t)interval,
					       (long)((interval - (time_t)interval) * 1e9) };

			nanosleep(&ts, NULL);
		}
		if (ctl_view(c, &m, &v)) {
			if (have_prev)
				dpv_free(&prev);
			return CTL_EXIT_ERROR;
		}
		if (c->json) {
			stats_json(c, &v, !watch);
		} else {
			if (watch)
				fprintf(c->out, "--- %lld\n", (long long)time(NULL));
			stats_text(c, &v, have_prev ? &prev : NULL);
			stats_khttp(c, &m, &v);
		}
		fflush(c->out);
		dpv_maps_close(&m);
		if (have_prev)
			dpv_free(&prev);
		prev = v;	/* kept for the next sample's deltas */
		have_prev = true;
	}
	if (have_prev)
		dpv_free(&prev);
	return 0;
}
