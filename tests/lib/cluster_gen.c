// SPDX-License-Identifier: Apache-2.0
/* A small random cluster for property tests: see cluster_gen.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/manifest.h"
#include "translate/translate.h"
#include "translate/translate_eval.h"
#include "translate/translate_output.h"
#include "cluster_gen.h"
#include "test_progs.h"

uint32_t cgen_rnd(struct cgen *p, uint32_t n)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return (uint32_t)(p->rng % n);
}

/* Service i always lives in namespace i % CGEN_NS (a name is one object). */
const char *cgen_svc_ns(int i)
{
	static char buf[CGEN_SVC][8];

	snprintf(buf[i], sizeof(buf[i]), "ns-%d", i % CGEN_NS);
	return buf[i];
}

char *cgen_object(struct cgen *p, int slot)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (slot < CGEN_NS) {
		fprintf(f, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%d}\n", slot);
	} else if (slot < CGEN_NS + CGEN_SVC) {
		int i = slot - CGEN_NS;
		/* Now and then two Services on one ClusterIP. */
		int ip = cgen_rnd(p, 6) ? i : (int)cgen_rnd(p, CGEN_SVC);

		fprintf(f, "apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: %s}\n"
			"spec:\n  clusterIP: 10.96.0.%d\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
			i, cgen_svc_ns(i), ip + 1);
		if (cgen_rnd(p, 2))
			fprintf(f, "  - {name: alt, port: %d, targetPort: 9090}\n", 8080 + (int)cgen_rnd(p, 2));
		if (!cgen_rnd(p, 5))
			fprintf(f, "  sessionAffinity: ClientIP\n");
	} else if (slot < CGEN_NS + 2 * CGEN_SVC) {
		int i = slot - CGEN_NS - CGEN_SVC, n = (int)cgen_rnd(p, 4);

		fprintf(f, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: s%d-a, namespace: %s, labels: {kubernetes.io/service-name: s%d}}\n"
			"addressType: IPv4\nports: [{name: http, port: 8080}, {name: alt, port: 9090}]\n"
			"endpoints:%s\n", i, cgen_svc_ns(i), i, n ? "" : " []");
		for (int e = 0; e < n; e++)
			fprintf(f, "- {addresses: [10.1.%d.%d], conditions: {ready: %s}, nodeName: node-%d}\n",
				i, 1 + (int)cgen_rnd(p, 5), cgen_rnd(p, 4) ? "true" : "false", (int)cgen_rnd(p, 2));
	} else if (slot < CGEN_NS + 2 * CGEN_SVC + CGEN_ROUTES) {
		static const char *const kinds[] = { "HTTPRoute", "GRPCRoute", "TCPRoute" };
		int j = slot - CGEN_NS - 2 * CGEN_SVC, kind = (int)cgen_rnd(p, 3), parent = (int)cgen_rnd(p, CGEN_SVC);
		/*
		 * A slot's route stays in one namespace (a name is one object);
		 * a parent in that namespace makes it a producer route, else a
		 * consumer's.
		 */
		int ns = j % CGEN_NS;

		if (cgen_rnd(p, 3))
			parent = (int)(cgen_rnd(p, CGEN_SVC / CGEN_NS) * CGEN_NS + (uint32_t)ns);

		/* One name per slot and kind: a slot changing kind is a delete plus an add. */
		kind = j % 3;
		fprintf(f, "apiVersion: gateway.networking.k8s.io/%s\nkind: %s\n"
			"metadata: {name: r%d, namespace: ns-%d}\nspec:\n"
			"  parentRefs: [{group: \"\", kind: Service, name: s%d, namespace: %s%s}",
			kind == 2 ? "v1alpha2" : "v1", kinds[kind], j, ns, parent, cgen_svc_ns(parent),
			cgen_rnd(p, 2) ? ", port: 80" : "");
		if (!cgen_rnd(p, 4)) {
			int other = (int)cgen_rnd(p, CGEN_SVC);

			fprintf(f, ", {group: \"\", kind: Service, name: s%d, namespace: %s}", other,
				cgen_svc_ns(other));
		}
		fprintf(f, "]\n  rules:\n");
		for (int r = 0, nr = 1 + (int)cgen_rnd(p, 2); r < nr; r++) {
			int b1 = (int)cgen_rnd(p, CGEN_SVC), b2 = (int)cgen_rnd(p, CGEN_SVC);

			if (kind == 0)
				fprintf(f, "  - matches: [{path: {type: PathPrefix, value: /p%d}}]\n", r);
			else if (kind == 1)
				fprintf(f, "  - matches: [{method: {service: svc.S%d, method: M}}]\n", r);
			else
				fprintf(f, "  -\n");
			fprintf(f, "    backendRefs: [{name: s%d, namespace: %s, port: 80, weight: %d}, "
				"{name: s%d, namespace: %s, port: %d, weight: %d}]\n",
				b1, cgen_svc_ns(b1), 1 + (int)cgen_rnd(p, 9), b2, cgen_svc_ns(b2),
				cgen_rnd(p, 3) ? 80 : 8080, (int)cgen_rnd(p, 5));
		}
	} else {
		int k = slot - CGEN_NS - 2 * CGEN_SVC - CGEN_ROUTES;

		fprintf(f, "apiVersion: v1\nkind: Pod\nmetadata: {name: pod%d, namespace: ns-%d, "
			"uid: 00000000-0000-0000-0000-0000000000%02d}\n"
			"spec: {nodeName: node-%d, containers: [{name: c, image: i}]}\n"
			"status: {podIP: 10.1.%d.%d, podIPs: [{ip: 10.1.%d.%d}]}\n",
			k, k % CGEN_NS, k, (int)cgen_rnd(p, 2), 50 + k, k, 50 + k, k);
	}
	fclose(f);
	return buf;
}

/* The object of one YAML text as a PUT event. */
int cgen_event(const char *yaml, struct model_event *ev)
{
	struct diag dg = { 0 };
	struct model_event *evs = NULL;
	struct model m;
	size_t nr = 0;
	int ret;

	model_init(&m);
	ret = manifest_load_buf(&m, "event.yaml", yaml, strlen(yaml), &dg);
	if (!ret)
		ret = model_take_events(&m, &evs, &nr);
	model_free(&m);
	if (!ret && nr != 1) {
		for (size_t i = 0; i < dg.nr; i++)
			fprintf(stderr, "%s\n", dg.entries[i].msg);
		ret = -EINVAL;
	}
	diag_free(&dg);
	if (ret) {
		model_events_free(evs, nr);
		return ret;
	}
	*ev = evs[0];
	free(evs);
	return 0;
}

/* Key of a slot's object for a DELETE. */
void cgen_delete(int slot, struct model_event *ev, char *name, size_t len)
{
	memset(ev, 0, sizeof(*ev));
	ev->op = MODEL_DELETE;
	if (slot < CGEN_NS) {
		ev->kind = MODEL_NAMESPACE;
		snprintf(name, len, "ns-%d", slot);
	} else if (slot < CGEN_NS + CGEN_SVC) {
		ev->kind = MODEL_SERVICE;
		ev->namespace = cgen_svc_ns(slot - CGEN_NS);
		snprintf(name, len, "s%d", slot - CGEN_NS);
	} else if (slot < CGEN_NS + 2 * CGEN_SVC) {
		ev->kind = MODEL_ENDPOINT_SLICE;
		ev->namespace = cgen_svc_ns(slot - CGEN_NS - CGEN_SVC);
		snprintf(name, len, "s%d-a", slot - CGEN_NS - CGEN_SVC);
	} else if (slot < CGEN_NS + 2 * CGEN_SVC + CGEN_ROUTES) {
		int j = slot - CGEN_NS - 2 * CGEN_SVC;

		ev->kind = MODEL_ROUTE;
		ev->namespace = cgen_svc_ns(j % CGEN_NS);
		ev->route_kind = j % 3 == 0 ? ROUTE_HTTP : j % 3 == 1 ? ROUTE_GRPC : ROUTE_TCP;
		snprintf(name, len, "r%d", j);
	} else {
		int k = slot - CGEN_NS - 2 * CGEN_SVC - CGEN_ROUTES;

		ev->kind = MODEL_POD;
		ev->namespace = cgen_svc_ns(k % CGEN_NS);
		snprintf(name, len, "pod%d", k);
	}
	ev->name = name;
}

char *cgen_all_yaml(const struct cgen *p)
{
	char *all = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);

	if (!f)
		return NULL;
	for (int s = 0; s < CGEN_SLOTS; s++)
		if (p->text[s])
			fprintf(f, "---\n%s", p->text[s]);
	if (fclose(f)) {
		free(all);
		return NULL;
	}
	return all;
}

/* The image of every present object loaded from scratch. */
int cgen_full_image(struct cgen *p, struct img *out)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	char *all = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	for (int s = 0; s < CGEN_SLOTS; s++)
		if (p->text[s])
			fprintf(f, "---\n%s", p->text[s]);
	fclose(f);
	model_init(&m);
	ret = manifest_load_buf(&m, "all.yaml", all, len, &dg);
	if (!ret)
		ret = translate(&m, &dg, &res);
	if (!ret) {
		ret = img_build(&m, &res, out);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	free(all);
	return ret;
}


char *cgen_tables_dump(const struct tr_result *r)
{
	static const char *const targets[] = { "/", "/p0", "/p1/x", "/p2", "/q" };
	static const uint64_t draws[] = { 0, 1, 5, 12, 99 };
	struct tr_result ports = { .ports = r->ports, .nr_ports = r->nr_ports };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	tr_write_json(f, &ports, NULL, false);
	fputc('\n', f);
	for (size_t i = 0; i < r->nr_ports; i++) {
		const struct tr_port *p = &r->ports[i];

		for (size_t c = 0; c < p->nr_classes; c++)
			for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++)
				for (size_t d = 0; d < sizeof(draws) / sizeof(draws[0]); d++) {
					struct ev_request req = { .target = targets[t],
								  .grpc_service = "svc.S1",
								  .grpc_method = "M",
								  .port = p->port->port };
					struct ev_result res = { 0 };
					int err = ev_evaluate(&p->classes[c], &req, draws[d], &res);

					fprintf(f, "%s/%s:%u %s %s %llu: %d %d %s/%s:%u %s\n",
						p->svc->meta.namespace, p->svc->meta.name,
						p->port->port, p->classes[c].client_namespace ?
						p->classes[c].client_namespace : "*", targets[t],
						(unsigned long long)draws[d], err, res.status,
						res.backend ? res.backend->namespace : "-",
						res.backend ? res.backend->name : "-",
						res.backend ? res.backend->port : 0,
						res.target ? res.target : "-");
					ev_result_free(&res);
				}
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *cgen_full_tables_dump(struct cgen *p)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	char *all = NULL, *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);

	if (!f)
		return NULL;
	for (int s = 0; s < CGEN_SLOTS; s++)
		if (p->text[s])
			fprintf(f, "---\n%s", p->text[s]);
	fclose(f);
	model_init(&m);
	if (!manifest_load_buf(&m, "all.yaml", all, len, &dg) && !translate(&m, &dg, &res)) {
		out = cgen_tables_dump(&res);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	free(all);
	return out;
}

bool cgen_same_image(struct cgen *p, const struct img *got, int step, struct img *keep)
{
	struct img want;
	struct img_diff d;
	bool same;

	if (keep)	/* the caller frees it on every path */
		memset(keep, 0, sizeof(*keep));
	if (!ASSERT_OK(cgen_full_image(p, &want), "full image"))
		return false;
	if (!ASSERT_OK(img_diff(&want, got, &d), "img_diff")) {
		img_free(&want);
		return false;
	}
	same = d.nr == 0;
	if (!same) {
		test__printf("step %d: %zu differences, first: table %s op %d id %016llx\n", step,
			     d.nr, img_table_name(d.items[0].table), d.items[0].op,
			     (unsigned long long)d.items[0].id);
		for (size_t i = 0; i < d.nr && i < 12; i++) {
			const struct img_frontend *a = NULL, *b = NULL;

			for (size_t k = 0; k < want.nr_frontends; k++)
				if (want.frontends[k].id == d.items[i].id)
					a = &want.frontends[k];
			for (size_t k = 0; k < got->nr_frontends; k++)
				if (got->frontends[k].id == d.items[i].id)
					b = &got->frontends[k];
			test__printf("  %s op %d: want %s/%s:%u (%zu classes) got %s/%s:%u (%zu classes)\n",
				     img_table_name(d.items[i].table), d.items[i].op,
				     a ? a->svc_namespace : "-", a ? a->svc_name : "-", a ? a->port : 0,
				     a ? a->nr_classes : 0,
				     b ? b->svc_namespace : "-", b ? b->svc_name : "-", b ? b->port : 0,
				     b ? b->nr_classes : 0);
		}
		if (getenv("PIPELINE_DUMP"))
			for (int s = 0; s < CGEN_SLOTS; s++)
				if (p->text[s])
					test__printf("---\n%s", p->text[s]);
	}
	img_diff_free(&d);
	if (keep)
		*keep = want;
	else
		img_free(&want);
	return same;
}
