// SPDX-License-Identifier: Apache-2.0
/* A synthetic cluster as YAML: see synth_cluster.h. */
#include "synth_cluster.h"

static void write_service(FILE *out, long i, long nr_eps)
{
	fprintf(out, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%ld, namespace: ns-%ld}\n"
		"spec:\n  clusterIP: 10.%ld.%ld.%ld\n  selector: {app: svc-%ld}\n"
		"  ports: [{name: http, port: 80, targetPort: 8080}]\n",
		i, i % SYNTH_NAMESPACES, 96 + ((i + 1) >> 16), ((i + 1) >> 8) & 255, (i + 1) & 255,
		i);
	fprintf(out, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: svc-%ld-1, namespace: ns-%ld, labels: "
		"{kubernetes.io/service-name: svc-%ld}}\naddressType: IPv4\n"
		"ports: [{name: http, port: 8080}]\nendpoints:\n", i, i % SYNTH_NAMESPACES, i);
	for (long e = 0; e < nr_eps; e++) {
		long a = i * nr_eps + e + 1;

		fprintf(out, "- {addresses: [10.%ld.%ld.%ld], conditions: {ready: true}, "
			"nodeName: node-%ld}\n", 128 + ((a >> 16) & 127), (a >> 8) & 255, a & 255,
			a % 16);
	}
}

static void write_route(FILE *out, long j, long services)
{
	long s = j % services, next = (s + SYNTH_NAMESPACES) % services;

	fprintf(out, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: route-%ld, namespace: ns-%ld}\nspec:\n"
		"  parentRefs: [{group: \"\", kind: Service, name: svc-%ld, port: 80}]\n"
		"  rules:\n"
		"  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
		"    backendRefs: [{name: svc-%ld, port: 80, weight: 90}, "
		"{name: svc-%ld, port: 80, weight: 10}]\n"
		"  - matches: [{path: {type: Exact, value: /health}, headers: [{name: x, value: y}]}]\n"
		"    backendRefs: [{name: svc-%ld, port: 80}]\n",
		j, s % SYNTH_NAMESPACES, s, s, next, s);
}

void synth_cluster_write(FILE *out, const struct synth_cluster *c)
{
	long services = c->services > 0 ? c->services : 1;

	for (long i = 0; c->namespaces && i < SYNTH_NAMESPACES && i < services; i++)
		fprintf(out, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%ld}\n", i);
	for (long i = 0; i < services; i++)
		write_service(out, i, c->endpoints / services + (i < c->endpoints % services));
	for (long j = 0; j < c->routes; j++)
		write_route(out, j, services);
}
