/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing for the TC hooks: Ethernet + IPv4/IPv6 + TCP/UDP/ICMP into
 * a tuple and the offsets the rewriters need. Everything goes through
 * bpf_skb_load_bytes: IPv4 options make the L4 offset variable, and helper
 * offsets need no packet-pointer bounds proofs (a verifier trap, see the
 * design brief) and work on non-linear skbs too.
 */
#ifndef GAMMAD_BPF_PKT_H
#define GAMMAD_BPF_PKT_H

#include "lib/addr.h"

#define ETH_HLEN	14
#define ETH_ALEN	6
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7

#define IP_MF		0x2000
#define IP_OFFSET	0x1fff
#define NEXTHDR_FRAGMENT 44
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6	58
#endif

#define TCPF_FIN	0x01
#define TCPF_SYN	0x02
#define TCPF_RST	0x04
#define TCPF_ACK	0x10

#define ICMP_DEST_UNREACH	3
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12
#define ICMPV6_DEST_UNREACH	1
#define ICMPV6_PARAMPROB	4	/* 1..4 are the ICMPv6 errors */

/* Where the fields of the L3 headers are, from the start of the L3 header. */
#define IP4_CSUM_OFF	10
#define IP4_SADDR_OFF	12
#define IP4_DADDR_OFF	16
#define IP6_SADDR_OFF	8
#define IP6_DADDR_OFF	24
#define IP6_HLEN	40

enum pkt_verdict {
	PKT_OK,		/* TCP/UDP or ICMP error: look further */
	PKT_OTHER,	/* not IP, not TCP/UDP/ICMP error: not for us */
	PKT_FRAG,	/* an IP fragment: ports unknown */
	PKT_BAD,	/* truncated or inconsistent headers */
};

enum nat_side {
	NAT_SRC,
	NAT_DST,
};

/* One IP header and the L4 header after it (also an ICMP error's quote). */
struct pkt_l3 {
	struct gammad_ct_key t;	/* tuple as on the wire (dir unused) */
	__u32 l3_off;
	__u32 l4_off;
	__u32 csum_off;		/* L4 checksum, 0 when there is none to fix */
	__u32 csum_flags;	/* extra bpf_l4_csum_replace flags (UDP: mangled 0) */
	bool pseudo;		/* L4 checksum covers the IP pseudo-header */
};

struct pkt {
	struct pkt_l3 o;	/* the packet itself */
	__u8 tcp_flags;
	bool icmp_err;
};

/* IPv4 header at off: tuple addresses, L4 offset; fragments are refused. */
static __always_inline int pkt_ip4(struct __sk_buff *skb, __u32 off, struct pkt_l3 *l)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return PKT_BAD;
	if (ip.version != 4 || ip.ihl < 5)
		return PKT_BAD;
	if (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PKT_FRAG;
	l->t.family = AF_INET;
	l->t.proto = ip.protocol;
	addr_from_ip4(l->t.saddr, ip.saddr);
	addr_from_ip4(l->t.daddr, ip.daddr);
	l->l3_off = off;
	l->l4_off = off + ip.ihl * 4;
	return PKT_OK;
}

/* IPv6 without extension headers; a fragment header means a fragment. */
static __always_inline int pkt_ip6(struct __sk_buff *skb, __u32 off, struct pkt_l3 *l)
{
	struct ipv6hdr ip6;

	if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
		return PKT_BAD;
	if (ip6.version != 6)
		return PKT_BAD;
	if (ip6.nexthdr == NEXTHDR_FRAGMENT)
		return PKT_FRAG;
	l->t.family = AF_INET6;
	l->t.proto = ip6.nexthdr;
	__builtin_memcpy(l->t.saddr, &ip6.saddr, 16);
	__builtin_memcpy(l->t.daddr, &ip6.daddr, 16);
	l->l3_off = off;
	l->l4_off = off + IP6_HLEN;
	return PKT_OK;
}

/* Ports and checksum position of a TCP or UDP header. */
static __always_inline int pkt_ports(struct __sk_buff *skb, struct pkt_l3 *l)
{
	__be16 ports[2];

	if (bpf_skb_load_bytes(skb, l->l4_off, ports, sizeof(ports)))
		return PKT_BAD;
	l->t.sport = ports[0];
	l->t.dport = ports[1];
	l->pseudo = true;
	if (l->t.proto == IPPROTO_TCP) {
		l->csum_off = l->l4_off + 16;
	} else {
		l->csum_off = l->l4_off + 6;
		/* A zero UDP checksum (IPv4: none) stays zero; a computed 0 becomes 0xffff. */
		l->csum_flags = BPF_F_MARK_MANGLED_0;
	}
	return PKT_OK;
}

static __always_inline bool icmp_is_error(__u8 family, __u8 type)
{
	if (family == AF_INET)
		return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
		       type == ICMP_PARAMETERPROB;
	return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

static __always_inline int pkt_l4(struct __sk_buff *skb, struct pkt *p)
{
	struct pkt_l3 *l = &p->o;
	__u8 type;

	switch (l->t.proto) {
	case IPPROTO_TCP:
		if (bpf_skb_load_bytes(skb, l->l4_off + 13, &p->tcp_flags, 1))
			return PKT_BAD;
		return pkt_ports(skb, l);
	case IPPROTO_UDP:
		return pkt_ports(skb, l);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((l->t.proto == IPPROTO_ICMP) != (l->t.family == AF_INET))
			return PKT_OTHER;
		if (bpf_skb_load_bytes(skb, l->l4_off, &type, 1))
			return PKT_BAD;
		if (!icmp_is_error(l->t.family, type))
			return PKT_OTHER;	/* echo & co: never translated */
		p->icmp_err = true;
		l->csum_off = l->l4_off + 2;
		l->pseudo = l->t.family == AF_INET6;	/* ICMPv4 has no pseudo-header */
		return PKT_OK;
	}
	return PKT_OTHER;
}

static __always_inline int pkt_parse(struct __sk_buff *skb, struct pkt *p)
{
	int v;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		v = pkt_ip4(skb, ETH_HLEN, &p->o);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		v = pkt_ip6(skb, ETH_HLEN, &p->o);
	else
		return PKT_OTHER;
	return v == PKT_OK ? pkt_l4(skb, p) : v;
}

/*
 * The packet an ICMP error quotes (RFC 792/4443: its IP header and at least
 * 8 bytes of L4, enough for the ports). Its L4 checksum is fixed only when
 * the quote holds it (UDP always, TCP when >= 18 bytes were quoted).
 */
static __always_inline int pkt_icmp_inner(struct __sk_buff *skb, const struct pkt *p,
					  struct pkt_l3 *in)
{
	__u32 off = p->o.l4_off + 8;	/* ICMP and ICMPv6 headers are 8 bytes */
	__be16 ports[2];
	int v;

	v = p->o.t.family == AF_INET ? pkt_ip4(skb, off, in) : pkt_ip6(skb, off, in);
	if (v != PKT_OK)
		return v;
	if (in->t.family != p->o.t.family ||
	    (in->t.proto != IPPROTO_TCP && in->t.proto != IPPROTO_UDP))
		return PKT_OTHER;
	if (bpf_skb_load_bytes(skb, in->l4_off, ports, sizeof(ports)))
		return PKT_BAD;
	in->t.sport = ports[0];
	in->t.dport = ports[1];
	in->csum_off = in->l4_off + (in->t.proto == IPPROTO_TCP ? 16 : 6);
	if (in->csum_off + 2 > skb->len)
		in->csum_off = 0;
	return PKT_OK;
}

#endif
