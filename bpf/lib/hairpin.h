/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hairpin: a pod sends to a ClusterIP and the endpoint chosen is the pod
 * itself. DNAT alone would hand the pod a packet from its own address to
 * its own address, which its stack drops (a martian source) or answers over
 * its loopback, where no reverse NAT can reach the reply. So the source is
 * rewritten as well, to the node's hairpin address of the family: the pod's
 * server side sees a peer H:client_port, its replies leave by the pod's
 * interface (its route to H; any default route does) and come back through
 * the TC path, which rewrites them to ClusterIP:port -> pod:client_port.
 * The pod's client side sees the ClusterIP as its peer, as for any flow.
 *
 * H is a load-time constant (the agent may set it before load, gammad run
 * --hairpin-addr). The defaults are addresses no router forwards:
 * 169.254.7.1 (IPv4 link-local) and 100::7:1 (RFC 6666 discard-only prefix),
 * so a reply that escaped the TC path would not leave the node's link. The
 * conntrack key of a hairpin reply holds H, so changing H while hairpin
 * flows are open breaks those flows (new ones use the new H).
 */
#ifndef GAMMAD_BPF_HAIRPIN_H
#define GAMMAD_BPF_HAIRPIN_H

#include "lib/addr.h"

/* Network order, as on the wire; IPv6 as its four 32-bit words. */
const volatile __u32 tc_hairpin4 = bpf_htonl(0xa9fe0701);		/* 169.254.7.1 */
const volatile __u32 tc_hairpin6[4] = { bpf_htonl(0x01000000), 0, 0,
					bpf_htonl(0x00070001) };	/* 100::7:1 */

static __always_inline void hairpin_addr(__u8 out[16], __u8 family)
{
	if (family == AF_INET)
		addr_from_ip4(out, tc_hairpin4);
	else
		addr_from_ip6(out, tc_hairpin6[0], tc_hairpin6[1], tc_hairpin6[2],
			      tc_hairpin6[3]);
}

#endif
