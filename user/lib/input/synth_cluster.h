/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A synthetic cluster as YAML, for benchmarks of the control plane
 * (`gammad translate --bench`, `make bench`): Services with ClusterIPs
 * spread over SYNTH_NAMESPACES namespaces, one EndpointSlice per Service,
 * and HTTPRoutes with a path-matched 90/10 split and an exact match.
 */
#ifndef GAMMAD_SYNTH_CLUSTER_H
#define GAMMAD_SYNTH_CLUSTER_H

#include <stdbool.h>
#include <stdio.h>

#define SYNTH_NAMESPACES 100

struct synth_cluster {
	long services, routes, endpoints;
	bool namespaces;	/* also write the Namespace objects */
};

void synth_cluster_write(FILE *out, const struct synth_cluster *c);

enum synth_object { SYNTH_SERVICE, SYNTH_SLICE, SYNTH_ROUTE };

/*
 * One object of that cluster: Service i, its EndpointSlice, or route i;
 * variant 0 as synth_cluster_write() writes it, any other a changed version
 * (Service: a targetPort; slice: its first endpoint's address; route: the
 * split's weights), different for different variants.
 */
void synth_object_write(FILE *out, const struct synth_cluster *c, enum synth_object kind,
			long i, unsigned int variant);

#endif
