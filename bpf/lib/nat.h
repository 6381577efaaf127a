/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Address and port rewriting with incremental checksum updates.
 *
 * The packet's own headers go through bpf_l3/l4_csum_replace so the kernel
 * keeps skb->csum right for CHECKSUM_COMPLETE and only touches the
 * pseudo-header sum for CHECKSUM_PARTIAL (veth offload): addresses are
 * pseudo-header fields (BPF_F_PSEUDO_HDR), ports are not. IPv6 addresses
 * are 16 bytes, beyond the helpers' 2/4-byte forms: their bpf_csum_diff is
 * applied with size 0, and BPF_F_IPV6 keeps skb->csum out of it (no IPv6
 * header checksum absorbs the change; kernel >= 6.16, older ones refuse the
 * flag and get the update without it, their behaviour before the fix).
 *
 * An ICMP error's quote is payload: its checksums are computed here and the
 * sum of every changed byte is applied once to the ICMP checksum.
 */
#ifndef GAMMAD_BPF_NAT_H
#define GAMMAD_BPF_NAT_H

#include "lib/pkt.h"

static __always_inline __u32 l3_addr_off(const struct pkt_l3 *l, int side)
{
	if (l->t.family == AF_INET)
		return l->l3_off + (side == NAT_SRC ? IP4_SADDR_OFF : IP4_DADDR_OFF);
	return l->l3_off + (side == NAT_SRC ? IP6_SADDR_OFF : IP6_DADDR_OFF);
}

/* Rewrite an address of the packet's IP header; 0 or a negative error. */
static __always_inline int nat_addr(struct __sk_buff *skb, struct pkt_l3 *l, int side,
				    const __u8 new_addr[16])
{
	__u8 *cur = side == NAT_SRC ? l->t.saddr : l->t.daddr;
	__u64 fl = l->csum_flags | BPF_F_PSEUDO_HDR;
	__u8 old[16] GAMMAD_ALIGN4, new[16] GAMMAD_ALIGN4;
	__u32 off = l3_addr_off(l, side);
	bool l4 = l->csum_off && l->pseudo;

	addr_copy(old, cur);
	addr_copy(new, new_addr);
	if (l->t.family == AF_INET) {
		__be32 o = addr_ip4(old), n = addr_ip4(new);

		if (l4 && bpf_l4_csum_replace(skb, l->csum_off, o, n, fl | sizeof(n)))
			return -1;
		if (bpf_l3_csum_replace(skb, l->l3_off + IP4_CSUM_OFF, o, n, sizeof(n)))
			return -1;
		if (bpf_skb_store_bytes(skb, off, &n, sizeof(n), 0))
			return -1;
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)new, 16, 0);
		long err = 0;

		if (l4) {
			err = bpf_l4_csum_replace(skb, l->csum_off, 0, diff, fl | BPF_F_IPV6);
			if (err == -EINVAL)	/* kernel < 6.16: no BPF_F_IPV6 */
				err = bpf_l4_csum_replace(skb, l->csum_off, 0, diff, fl);
		}
		if (err)
			return -1;
		if (bpf_skb_store_bytes(skb, off, new, 16, 0))
			return -1;
	}
	addr_copy(cur, new);
	return 0;
}

/* Rewrite a TCP/UDP port (not part of the pseudo-header). */
static __always_inline int nat_port(struct __sk_buff *skb, struct pkt_l3 *l, int side,
				    __be16 new)
{
	__be16 *cur = side == NAT_SRC ? &l->t.sport : &l->t.dport;
	__u32 off = l->l4_off + (side == NAT_SRC ? 0 : 2);
	__be16 old = *cur;

	if (old == new)
		return 0;
	if (l->csum_off && bpf_l4_csum_replace(skb, l->csum_off, old, new,
					       l->csum_flags | sizeof(new)))
		return -1;
	if (bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0))
		return -1;
	*cur = new;
	return 0;
}

static __always_inline int nat_addr_port(struct __sk_buff *skb, struct pkt_l3 *l, int side,
					 const __u8 addr[16], __be16 port)
{
	const __u8 *cur = side == NAT_SRC ? l->t.saddr : l->t.daddr;

	if (!addr_eq(cur, addr) && nat_addr(skb, l, side, addr))
		return -1;
	return nat_port(skb, l, side, port);
}

/* ---- ICMP error quotes ---------------------------------------------------- */

/* A 16-bit checksum after the data it covers changed by diff (a csum_diff). */
static __always_inline __u16 csum16_add(__u16 check, __u32 diff)
{
	__u64 s = (__u16)~check;

	s += diff;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

/* csum_diff of a 16-bit field: padded to the 4 bytes bpf_csum_diff wants. */
static __always_inline __u32 csum16_diff(__u16 old, __u16 new, __u32 seed)
{
	__u32 o = old, n = new;	/* the field's bytes first, then zeros */

	return bpf_csum_diff(&o, 4, &n, 4, seed);
}

/* Store a 16-bit field of the quote, accounting its change in *acc. */
static __always_inline int quote_store16(struct __sk_buff *skb, __u32 off, __u16 old,
					 __u16 new, __u32 *acc)
{
	*acc = csum16_diff(old, new, *acc);
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0);
}

static __always_inline int quote_load16(struct __sk_buff *skb, __u32 off, __u16 *v)
{
	return bpf_skb_load_bytes(skb, off, v, sizeof(*v));
}

/*
 * Rewrite the address and port on `side` of the quoted packet `in`: its
 * IPv4 header checksum, its L4 checksum when quoted (pseudo-header address
 * + port; a zero UDP checksum stays zero), then the ICMP checksum by the
 * sum of all bytes changed.
 */
static __always_inline int nat_quote(struct __sk_buff *skb, struct pkt *p, struct pkt_l3 *in,
				     int side, const __u8 new_addr[16], __be16 port)
{
	__u8 old[16] GAMMAD_ALIGN4, new[16] GAMMAD_ALIGN4;
	__u32 alen = in->t.family == AF_INET ? 4 : 16;
	__u32 acc = 0, l4 = 0, poff;
	__be16 oport;
	__u16 c;

	addr_copy(old, side == NAT_SRC ? in->t.saddr : in->t.daddr);
	addr_copy(new, new_addr);
	oport = side == NAT_SRC ? in->t.sport : in->t.dport;
	poff = in->l4_off + (side == NAT_SRC ? 0 : 2);

	/* bpf_csum_diff wants a constant size: one call per family. */
	if (alen == 4)
		l4 = bpf_csum_diff((__be32 *)old, 4, (__be32 *)new, 4, 0);
	else
		l4 = bpf_csum_diff((__be32 *)old, 16, (__be32 *)new, 16, 0);
	acc = l4;
	if (bpf_skb_store_bytes(skb, l3_addr_off(in, side), new, alen == 4 ? 4 : 16, 0))
		return -1;
	if (alen == 4) {
		if (quote_load16(skb, in->l3_off + IP4_CSUM_OFF, &c) ||
		    quote_store16(skb, in->l3_off + IP4_CSUM_OFF, c, csum16_add(c, l4), &acc))
			return -1;
	}
	l4 = csum16_diff(oport, port, l4);
	if (quote_store16(skb, poff, oport, port, &acc))
		return -1;
	if (in->csum_off) {
		if (quote_load16(skb, in->csum_off, &c))
			return -1;
		if (c || in->t.proto == IPPROTO_TCP) {
			__u16 n = csum16_add(c, l4);

			if (!n && in->t.proto == IPPROTO_UDP)
				n = 0xffff;
			if (quote_store16(skb, in->csum_off, c, n, &acc))
				return -1;
		}
	}
	return bpf_l4_csum_replace(skb, p->o.csum_off, 0, acc, 0) ? -1 : 0;
}

#endif
