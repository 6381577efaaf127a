// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_fixture.h"

void tfx_init(struct tfx *f)
{
	memset(f, 0, sizeof(*f));
	model_init(&f->m);
}

void tfx_free(struct tfx *f)
{
	if (f->translated)
		tr_result_free(&f->res);
	model_free(&f->m);
	diag_free(&f->dg);
}

int tfx_load(struct tfx *f, const char *name, const char *yaml)
{
	return manifest_load_buf(&f->m, name, yaml, strlen(yaml), &f->dg);
}

int tfx_translate(struct tfx *f)
{
	int ret;

	if (f->translated)
		tr_result_free(&f->res);
	ret = translate_opts(&f->m, &f->opts, &f->dg, &f->res);
	f->translated = !ret;
	return ret;
}

const struct tr_class *tfx_class(struct tfx *f, const char *ns, const char *svc,
				 uint16_t port, const char *client_ns)
{
	const struct tr_port *p = tr_find_port(&f->res, ns, svc, port);

	return p ? tr_port_class(p, client_ns) : NULL;
}

const struct tr_parent_status *tfx_parent(struct tfx *f, enum gapi_route_kind kind,
					  const char *ns, const char *name, size_t parent)
{
	const struct tr_route_status *rs = tr_find_route(&f->res, kind, ns, name);

	return rs && parent < rs->nr_parents ? &rs->parents[parent] : NULL;
}

const char *tfx_cond(const struct tr_parent_status *p, const char *type)
{
	static char buf[128];
	const struct tr_condition *c = p ? tr_condition(p, type) : NULL;

	if (!c)
		return "absent";
	snprintf(buf, sizeof(buf), "%s:%s", c->status ? "True" : "False", c->reason);
	return buf;
}

int tfx_eval(const struct tr_class *c, const char *request, const char *const *headers,
	     uint64_t draw, struct ev_result *out)
{
	struct ev_header h[16];
	struct ev_request req = { 0 };
	char method[16] = "GET", names[16][64];
	const char *sp = strchr(request, ' ');
	size_t n = 0;

	if (sp && (size_t)(sp - request) < sizeof(method)) {
		snprintf(method, sizeof(method), "%.*s", (int)(sp - request), request);
		request = sp + 1;
	}
	for (; headers && headers[n] && n < 16; n++) {
		const char *colon = strchr(headers[n], ':');

		snprintf(names[n], sizeof(names[n]), "%.*s", (int)(colon - headers[n]), headers[n]);
		h[n].name = names[n];
		h[n].value = colon + 1 + (colon[1] == ' ');
	}
	req.method = method;
	req.target = request;
	req.headers = h;
	req.nr_headers = n;
	req.host = "svc";
	req.port = 80;
	return ev_evaluate(c, &req, draw, out);
}

const char *tfx_outcome(const struct tr_class *c, const char *request, uint64_t draw)
{
	static char buf[256];
	struct ev_result r;

	if (!c)
		return "no class";
	if (tfx_eval(c, request, NULL, draw, &r))
		return "error";
	if (r.backend)
		snprintf(buf, sizeof(buf), "%d %s/%s:%u", r.status, r.backend->namespace,
			 r.backend->name, r.backend->port);
	else
		snprintf(buf, sizeof(buf), "%d -", r.status);
	ev_result_free(&r);
	return buf;
}

#define SVC(name, ip) \
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec:\n  clusterIP: " ip "\n  selector: {app: " name "}\n" \
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
#define SLICE(ns, svc, ip) \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " svc "-1, namespace: " ns ", labels: {kubernetes.io/service-name: " svc "}}\n" \
	"addressType: IPv4\nendpoints:\n- addresses: [" ip "]\n  conditions: {ready: true}\n" \
	"  targetRef: {kind: Pod, namespace: " ns ", name: " svc "-pod}\n" \
	"- addresses: [10.99.99.99]\n  conditions: {ready: false}\n" \
	"ports: [{name: http, port: 8080, protocol: TCP}]\n"

const char tfx_base_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: client}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: app}\n"
	"spec:\n  clusterIP: 10.96.0.10\n  selector: {app: a}\n  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n"
	"  - {name: admin, port: 81, targetPort: 8081}\n"
	"  - {name: grpc, port: 9000, appProtocol: grpc}\n"
	"  - {name: dns, port: 53, protocol: UDP}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: a-1, namespace: app, labels: {kubernetes.io/service-name: a}}\n"
	"addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n  conditions: {ready: true}\n"
	"ports:\n- {name: http, port: 8080}\n- {name: admin, port: 8081}\n- {name: grpc, port: 9000}\n"
	"- {name: dns, port: 53, protocol: UDP}\n"
	SVC("b1", "10.96.0.11") SLICE("app", "b1", "10.0.1.1")
	SVC("b2", "10.96.0.12") SLICE("app", "b2", "10.0.2.1")
	SVC("b3", "10.96.0.13") SLICE("app", "b3", "10.0.3.1")
	SVC("bempty", "10.96.0.14")
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: headless, namespace: app}\n"
	"spec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: app}\n"
	"spec:\n  type: ExternalName\n  externalName: example.com\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: o, namespace: other}\n"
	"spec:\n  clusterIP: 10.96.1.10\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
	SLICE("other", "o", "10.0.9.1");

int tfx_setup(struct tfx *f, const char *yaml)
{
	int ret;

	tfx_init(f);
	ret = tfx_load(f, "base.yaml", tfx_base_yaml);
	if (!ret && yaml)
		ret = tfx_load(f, "case.yaml", yaml);
	return ret ? ret : tfx_translate(f);
}
