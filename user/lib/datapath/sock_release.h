/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Removed endpoints release what still points at them (bpf/sock_iter.bpf.c):
 *
 *  - connected sockets that connect() translated to a removed endpoint are
 *    destroyed with bpf_sock_destroy() from socket iterators, read in every
 *    network namespace of the node (an iterator walks the sockets of the
 *    namespace it is read in): UDP always, TCP only when asked (the
 *    application then sees ECONNABORTED and its peer a RST);
 *  - the TC path's UDP conntrack flows to a removed endpoint are deleted:
 *    the flow's next datagram is a new flow and picks a live endpoint.
 *    TCP flows of the TC path are left alone (a client on another node
 *    keeps its connection until it ends or the endpoint is really gone).
 *
 * Socket iterators with bpf_sock_destroy() need kernel 6.5; without them
 * dp_release_open() fails with -EOPNOTSUPP and only conntrack is cleaned.
 */
#ifndef GAMMAD_SOCK_RELEASE_H
#define GAMMAD_SOCK_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath.h"

struct dp_release;

struct dp_release_stats {
	size_t netns;		/* network namespaces walked */
	size_t udp, tcp;	/* sockets destroyed */
	size_t ct_flows;	/* TC path UDP flows removed */
};

/* Load the iterators beside an open data path (sharing its maps). */
int dp_release_open(struct dp *dp, struct dp_release **out);
void dp_release_close(struct dp_release *r);

/* A (Service port, endpoint) pair; addresses as in_addr/in6_addr bytes, ports host order. */
void dp_rel_key(struct gammad_rel_key *k, int family, const void *vip, uint16_t vip_port,
		uint8_t proto, const void *ep, uint16_t ep_port);

/*
 * Release what points at the pairs rel[0..n): connections through that
 * Service port to that endpoint. r may be NULL (no iterators: conntrack
 * only); tcp: destroy TCP sockets too. 0 or a negative errno; *st counts
 * what was done either way.
 */
int dp_release(struct dp_release *r, struct dp *dp, const struct gammad_rel_key *rel, size_t n,
	       bool tcp, struct dp_release_stats *st);

#endif
