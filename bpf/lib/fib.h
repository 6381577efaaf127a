/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery of a translated packet without the host's forwarding path.
 *
 * A FIB lookup names the egress device. A local pod (gammad_pod_v1 holds
 * the host side of its veth) gets the packet straight into its netns with
 * bpf_redirect_peer; that skips the veth's L2 receive, so the MAC addresses
 * from the lookup are written first. Everything else, and a neighbour not
 * resolved yet, goes through bpf_redirect_neigh, which resolves the next
 * hop itself. No FIB answer (blackhole, unreachable, no forwarding):
 * the stack decides, as for any packet.
 *
 * Delivery is switched on at load time (GAMMAD_TC_CFG_REDIRECT): without it
 * translated packets return TC_ACT_OK and take the host's routes, which is
 * what BPF_PROG_TEST_RUN checks byte for byte.
 */
#ifndef GAMMAD_BPF_FIB_H
#define GAMMAD_BPF_FIB_H

#include "lib/pkt.h"
#include "lib/stats.h"

const volatile __u32 tc_cfg_flags = 0;

static __always_inline __u32 local_pod_ifindex(const __u8 addr[16], __u8 family)
{
	struct gammad_pod_key k = { .family = family };
	struct gammad_pod_val *v;

	addr_copy(k.addr, addr);
	v = bpf_map_lookup_elem(&gammad_pod_v1, &k);
	return v ? v->ifindex : 0;
}

static __always_inline void fib_params(struct bpf_fib_lookup *fib, struct __sk_buff *skb,
				       const struct gammad_ct_key *t)
{
	fib->family = t->family;
	fib->l4_protocol = t->proto;
	fib->ifindex = skb->ingress_ifindex;
	if (t->family == AF_INET) {
		fib->ipv4_src = addr_ip4(t->saddr);
		fib->ipv4_dst = addr_ip4(t->daddr);
	} else {
		__builtin_memcpy(fib->ipv6_src, t->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, t->daddr, 16);
	}
}

/* t: the tuple as it leaves (after translation). */
static __always_inline int tc_deliver(struct __sk_buff *skb, const struct gammad_ct_key *t)
{
	struct bpf_fib_lookup fib = {};
	__u32 pod_if;
	long rc;

	if (!(tc_cfg_flags & GAMMAD_TC_CFG_REDIRECT))
		return TC_ACT_OK;
	fib_params(&fib, skb, t);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		pod_if = local_pod_ifindex(t->daddr, t->family);
		if (pod_if && pod_if == fib.ifindex &&
		    !bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) &&
		    !bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0)) {
			tc_count(GAMMAD_TC_REDIR_PEER);
			return bpf_redirect_peer(fib.ifindex, 0);
		}
	}
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		tc_count(GAMMAD_TC_REDIR_NEIGH);
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	}
	tc_count(GAMMAD_TC_FIB_MISS);
	return TC_ACT_OK;
}

#endif
