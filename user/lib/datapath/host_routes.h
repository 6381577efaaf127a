/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's host routes, read with rtnetlink: a routed CNI (Calico,
 * Cilium, the lab) gives every local pod a /32 and /128 route through the
 * host side of its veth, so the routes say which pod IPs are on this node
 * and which interface leads into each pod.
 */
#ifndef GAMMAD_HOST_ROUTES_H
#define GAMMAD_HOST_ROUTES_H

#include <stddef.h>

#include "base/ip_addr.h"

struct host_route {
	struct ip_addr addr;
	int ifindex;
};

struct host_routes {
	struct host_route *items;	/* sorted by (family, addr) */
	size_t nr;
};

/* Host routes (/32, /128) of the main table that have an output interface. */
int host_routes_read(struct host_routes *out);
void host_routes_free(struct host_routes *r);
/* ifindex of the route to a, 0 when there is none. */
int host_routes_ifindex(const struct host_routes *r, const struct ip_addr *a);

#endif
