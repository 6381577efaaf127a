// SPDX-License-Identifier: Apache-2.0
/* A synthetic cluster as YAML: see synth_cluster.h. */
#include "synth_cluster.h"

/* variant != 0: the same object changed (a port's targetPort). */
static void write_service(FILE *out, long i, unsigned int variant)
{
	fprintf(out, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%ld, namespace: ns-%ld}\n"
		"spec:\n  clusterIP: 10.%ld.%ld.%ld\n  selector: {app: svc-%ld}\n"
		"  ports: [{name: http, port: 80, targetPort: %u}]\n",
		i, i % SYNTH_NAMESPACES, 96 + ((i + 1) >> 16), ((i + 1) >> 8) & 255, (i + 1) & 255,
		i, 8080 + variant % 1000);
}

/* variant != 0: the first endpoint's address moved. */
static void write_slice(FILE *out, long i, long nr_eps, unsigned int variant)
{
	fprintf(out, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: svc-%ld-1, namespace: ns-%ld, labels: "
		"{kubernetes.io/service-name: svc-%ld}}\naddressType: IPv4\n"
		"ports: [{name: http, port: 8080}]\nendpoints:%s\n", i, i % SYNTH_NAMESPACES, i,
		nr_eps ? "" : " []");
	for (long e = 0; e < nr_eps; e++) {
		long a = i * nr_eps + e + 1;

		if (!e && variant)
			fprintf(out, "- {addresses: [10.255.%u.%u], conditions: {ready: true}, "
				"nodeName: node-%ld}\n", (variant >> 8) & 255, variant & 255, a % 16);
		else
			fprintf(out, "- {addresses: [10.%ld.%ld.%ld], conditions: {ready: true}, "
				"nodeName: node-%ld}\n", 128 + ((a >> 16) & 127), (a >> 8) & 255, a & 255,
				a % 16);
	}
}

/* variant != 0: the 90/10 split changed. */
static void write_route(FILE *out, long j, long services, unsigned int variant)
{
	long s = j % services, next = (s + SYNTH_NAMESPACES) % services;
	unsigned int w = variant ? 10 + variant % 80 : 90;

	fprintf(out, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: route-%ld, namespace: ns-%ld}\nspec:\n"
		"  parentRefs: [{group: \"\", kind: Service, name: svc-%ld, port: 80}]\n"
		"  rules:\n"
		"  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
		"    backendRefs: [{name: svc-%ld, port: 80, weight: %u}, "
		"{name: svc-%ld, port: 80, weight: %u}]\n"
		"  - matches: [{path: {type: Exact, value: /health}, headers: [{name: x, value: y}]}]\n"
		"    backendRefs: [{name: svc-%ld, port: 80}]\n",
		j, s % SYNTH_NAMESPACES, s, s, w, next, 100 - w, s);
}

static long eps_of(const struct synth_cluster *c, long services, long i)
{
	return c->endpoints / services + (i < c->endpoints % services);
}

void synth_object_write(FILE *out, const struct synth_cluster *c, enum synth_object kind,
			long i, unsigned int variant)
{
	long services = c->services > 0 ? c->services : 1;

	switch (kind) {
	case SYNTH_SERVICE:
		write_service(out, i, variant);
		break;
	case SYNTH_SLICE:
		write_slice(out, i, eps_of(c, services, i), variant);
		break;
	case SYNTH_ROUTE:
		write_route(out, i, services, variant);
		break;
	}
}

void synth_cluster_write(FILE *out, const struct synth_cluster *c)
{
	long services = c->services > 0 ? c->services : 1;

	for (long i = 0; c->namespaces && i < SYNTH_NAMESPACES && i < services; i++)
		fprintf(out, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%ld}\n", i);
	for (long i = 0; i < services; i++) {
		write_service(out, i, 0);
		write_slice(out, i, eps_of(c, services, i), 0);
	}
	for (long j = 0; j < c->routes; j++)
		write_route(out, j, services, 0);
}
