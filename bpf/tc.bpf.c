// SPDX-License-Identifier: Apache-2.0
/*
 * Per-packet Service translation (TC hooks), for what connect() never sees:
 * packets from other nodes, from processes outside the managed cgroups,
 * from connections older than the agent.
 *
 * Attached at the ingress of the host side of every pod veth (traffic
 * leaving the pod) and of the uplink (traffic from other nodes):
 *
 *  - to a ClusterIP:port with a conntrack entry: DNAT to its endpoint;
 *  - first packet of a flow (TCP SYN, any UDP datagram): the route, weighted
 *    backend and endpoint are chosen by the connect-time code (lib/lb.h),
 *    with the client class of the source pod IP, and stored (lib/ct.h);
 *  - from an endpoint on a reply tuple: SNAT back to the ClusterIP;
 *  - hairpin, the endpoint chosen is the sender itself: the source becomes
 *    the node's hairpin address too, and the packet goes back into the pod;
 *    its replies (endpoint -> hairpin address) become ClusterIP -> pod
 *    (lib/hairpin.h);
 *  - ICMP errors quoting a translated flow: quote and outer header back;
 *  - everything else: TC_ACT_OK untouched, after two hash lookups.
 *
 * A connection translated at connect time carries the endpoint on the wire,
 * never the ClusterIP, and has no conntrack entry: it passes untouched.
 *
 * Not translated, and passed to the stack: IP fragments (a non-first
 * fragment has no ports; translating only the first would split the
 * datagram), IPv6 extension headers, mid-flow TCP without an entry (a
 * connection that kube-proxy or another path already serves).
 *
 * Known limits: no NAT46/64 per packet (an endpoint of the other family
 * drops the flow, counted); a hairpin of a pod on another node (arriving
 * by the uplink) gets this node's hairpin address, which that pod's replies
 * reach only if its node routes it here; redirected packets keep their
 * TTL/hop limit, as the node is then no routing hop. Hairpin flows keep
 * the client's port: two flows of one pod from one source port to two
 * Service ports that land on the same endpoint port would share a tuple
 * (a client's kernel picks a free port per destination, so this takes a
 * port reused on purpose).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/class.h"
#include "lib/lb.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/ct.h"
#include "lib/fib.h"

char LICENSE[] SEC("license") = "GPL";

/* The affinity work area of tc_new_flow (lib/affinity.h): off the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_aff);
} gammad_tcscr_v1 SEC(".maps");

/*
 * Set by the agent while a layout upgrade switches the TC links, one after
 * the other, to programs on new maps (user/lib/datapath/tc_attach.c). Every
 * link carries both directions (a pod's veth: its requests and, as an
 * endpoint, its replies), so no order of the switch keeps a flow off a
 * pair of links of which one runs the new programs and one the old: a flow
 * we made would have its entries in the new map only, and an old program
 * passes its replies untranslated (the client resets them, which kills the
 * endpoint's half-open socket). So we make no flow until every link is
 * switched: its first packet is dropped (counted) and the client resends it.
 */
volatile __u32 tc_switching;

/* Choose an endpoint for a new flow and store it; false: drop (counted). */
static __always_inline bool tc_new_flow(const struct gammad_ct_key *fwd,
					const struct gammad_fe_val *fe,
					struct gammad_ct_val *ct)
{
	struct lb_result res;
	struct lb_aff *aff;
	__u32 ns, reason, zero = 0;
	__u8 flags;

	ns = lb_needs_class(fe) ? addr_ns_id(fwd->saddr, fwd->family) : GAMMAD_NS_ALL;
	/* the client of session affinity is the packet's source, as for kube-proxy */
	aff = bpf_map_lookup_elem(&gammad_tcscr_v1, &zero);
	if (aff) {
		__builtin_memset(&aff->key, 0, sizeof(aff->key));
		aff->key.kind = fwd->family == AF_INET ? GAMMAD_AFF_INET : GAMMAD_AFF_INET6;
		addr_copy(aff->key.client, fwd->saddr);
	}
	reason = lb_pick(fe, ns, aff, false, &res);	/* packets cannot be steered */
	if (!reason && res.ep.family != fwd->family)
		reason = GAMMAD_R_FAMILY;	/* no NAT46/64 per packet */
	if (reason) {
		svc_miss(fe->svc_port_id, reason);
		tc_count(reason == GAMMAD_R_FAMILY ? GAMMAD_TC_FAMILY : GAMMAD_TC_NO_ENDPOINT);
		return false;
	}
	/* hairpin: the sender is the endpoint (lib/hairpin.h) */
	flags = addr_eq(res.ep.addr, fwd->saddr) ? GAMMAD_CT_F_HAIRPIN : 0;
	if (ct_create(fwd, fe->svc_port_id, &res.ep, flags, ct)) {
		tc_count(GAMMAD_TC_CT_FULL);
		return false;
	}
	lb_account(fe, &res);
	tc_count(GAMMAD_TC_NEW_FLOW);
	return true;
}

static __always_inline bool tcp_is_syn(const struct pkt *p)
{
	return (p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) == TCPF_SYN;
}

/*
 * The flow's FWD entry, copied to *ct; NULL when there is none to use: an
 * idle one is removed, and a closing one gives way to a new SYN (the
 * client reuses its port).
 */
static __always_inline struct gammad_ct_val *tc_fwd_entry(const struct gammad_ct_key *k,
							  const struct pkt *p)
{
	struct gammad_ct_val *v = ct_lookup(k);

	if (!v)
		return NULL;
	if (!ct_refresh(v, k->proto, bpf_ktime_get_ns()))
		tc_count(GAMMAD_TC_EXPIRED);
	else if (!((v->flags & GAMMAD_CT_F_CLOSING) && tcp_is_syn(p)))
		return v;
	/* idle, or a new connection reusing the tuple of a closing one */
	ct_delete(k, v);
	return NULL;
}

/* Client -> ClusterIP: DNAT to the flow's endpoint. */
static __always_inline int tc_forward(struct __sk_buff *skb, struct pkt *p,
				      const struct gammad_fe_val *fe)
{
	struct gammad_ct_key k = p->o.t;
	struct gammad_ct_val ct, *v;

	k.dir = GAMMAD_CT_FWD;
	k.pad = 0;
	v = tc_fwd_entry(&k, p);
	if (v) {
		__builtin_memcpy(&ct, v, sizeof(ct));
	} else {
		if (k.proto == IPPROTO_TCP && !tcp_is_syn(p)) {
			if (ct_old_has(&k)) {
				tc_count(GAMMAD_TC_UPGRADE_WAIT);
				return TC_ACT_SHOT;
			}
			tc_count(GAMMAD_TC_CT_MISS);
			return TC_ACT_OK;
		}
		if (tc_switching) {
			tc_count(GAMMAD_TC_SWITCH_HOLD);
			return TC_ACT_SHOT;
		}
		if (!tc_new_flow(&k, fe, &ct))
			return TC_ACT_SHOT;
	}
	if (nat_addr_port(skb, &p->o, NAT_DST, ct.nat_addr, ct.nat_port))
		goto err;
	if (ct.flags & GAMMAD_CT_F_HAIRPIN) {
		__u8 h[16] GAMMAD_ALIGN4;

		hairpin_addr(h, k.family);
		if (nat_addr(skb, &p->o, NAT_SRC, h))
			goto err;
		tc_count(GAMMAD_TC_HAIRPIN);
	}
	tc_count(GAMMAD_TC_XLATE);
	if (v)	/* a new flow starts with a SYN: nothing ends yet */
		ct_tcp_flags(&k, v, p->tcp_flags);
	return tc_deliver(skb, &p->o.t);
err:
	tc_count(GAMMAD_TC_REWRITE_ERR);
	return TC_ACT_SHOT;
}

/*
 * A packet not for a Service on the tuple a translated flow used after
 * DNAT: the client now talks to the endpoint itself (connect-time
 * translation, or by address) from the same port. For TCP that is a SYN
 * while the flow to the ClusterIP was in TIME_WAIT; for UDP any datagram,
 * as a datagram flow has no end the wire shows (its forward entry may have
 * timed out long ago). The endpoint sees a new flow; so must we, or its
 * replies would be reverse translated.
 */
static __always_inline void tc_reuse_check(const struct pkt *p)
{
	struct gammad_ct_key k;
	struct gammad_ct_val *v;
	bool udp = p->o.t.proto == IPPROTO_UDP;

	if (!udp && !tcp_is_syn(p))
		return;
	ct_reversed_key(&k, &p->o.t, GAMMAD_CT_REV);
	v = ct_lookup(&k);
	if (v && (udp || (v->flags & GAMMAD_CT_F_CLOSING))) {
		ct_delete(&k, v);
		tc_count(GAMMAD_TC_CLOSED);
	}
}

/*
 * Endpoint -> client on a translated flow: the source becomes the
 * ClusterIP; on a hairpin flow the destination, the hairpin address,
 * becomes the endpoint again (it is the client).
 */
static __always_inline int tc_reply(struct __sk_buff *skb, struct pkt *p)
{
	struct gammad_ct_key k = p->o.t;
	struct gammad_ct_val *v;
	__u8 nat[16] GAMMAD_ALIGN4;
	__be16 port;
	__u8 flags;

	tc_reuse_check(p);
	k.dir = GAMMAD_CT_REV;
	k.pad = 0;
	v = ct_lookup(&k);
	if (!v && ct_old_has(&k)) {
		tc_count(GAMMAD_TC_UPGRADE_WAIT);
		return TC_ACT_SHOT;
	}
	if (!v) {
		tc_count(GAMMAD_TC_PASS);
		return TC_ACT_OK;
	}
	addr_copy(nat, v->nat_addr);
	port = v->nat_port;
	flags = v->flags;
	/* REV entries never time out on their own (lib/ct.h): no stamp to keep. */
	if (!(flags & GAMMAD_CT_F_REPLIED))
		v->flags |= GAMMAD_CT_F_REPLIED;
	if (nat_addr_port(skb, &p->o, NAT_SRC, nat, port))
		goto err;
	if (flags & GAMMAD_CT_F_HAIRPIN) {
		if (nat_addr(skb, &p->o, NAT_DST, k.saddr))
			goto err;
		tc_count(GAMMAD_TC_HAIRPIN);
	}
	tc_count(GAMMAD_TC_REV_XLATE);
	ct_tcp_flags(&k, v, p->tcp_flags);
	return tc_deliver(skb, &p->o.t);
err:
	tc_count(GAMMAD_TC_REWRITE_ERR);
	return TC_ACT_SHOT;
}

/*
 * One side of an ICMP error's quote to (addr, port), and the outer address
 * that is the same host: when the quote's destination changes, the outer
 * source if it sent the error; when its source changes, the outer
 * destination if it receives it.
 */
static __always_inline int tc_icmp_side(struct __sk_buff *skb, struct pkt *p, struct pkt_l3 *in,
					int side, const __u8 addr[16], __be16 port)
{
	__u8 old[16] GAMMAD_ALIGN4;

	addr_copy(old, side == NAT_DST ? in->t.daddr : in->t.saddr);
	if (nat_quote(skb, p, in, side, addr, port))
		return -1;
	if (side == NAT_DST && addr_eq(p->o.t.saddr, old))
		return nat_addr(skb, &p->o, NAT_SRC, addr);
	if (side == NAT_SRC && addr_eq(p->o.t.daddr, old))
		return nat_addr(skb, &p->o, NAT_DST, addr);
	return 0;
}

/*
 * An ICMP error quotes a packet of a flow as it was on the wire past us.
 * Its reversed tuple is a REV key when the quote is a translated forward
 * packet (client -> endpoint: the endpoint becomes the ClusterIP again) and
 * a FWD key when it is a translated reply (ClusterIP -> client: back to the
 * endpoint). The outer address is the quoted one when the error comes from
 * (or goes to) that host itself, and is translated with it.
 *
 * On a hairpin flow the other side of the quote is translated too: the
 * hairpin address back to the pod (an error from the pod's server side) or
 * the pod to the hairpin address (an error from its client side), so the
 * error reaches the socket that sent the quoted packet, quoting it as sent.
 */
static __always_inline int tc_icmp(struct __sk_buff *skb, struct pkt *p)
{
	struct gammad_ct_key k;
	struct gammad_ct_val *v;
	struct pkt_l3 in = {};
	__u8 nat[16] GAMMAD_ALIGN4;
	int side, v_in;
	__be16 port;
	__u8 flags;

	v_in = pkt_icmp_inner(skb, p, &in);
	if (v_in != PKT_OK) {
		tc_count(v_in == PKT_BAD ? GAMMAD_TC_MALFORMED : GAMMAD_TC_PASS);
		return TC_ACT_OK;
	}
	ct_reversed_key(&k, &in.t, GAMMAD_CT_REV);
	side = NAT_DST;
	/* no stale-copy check here (bpf/lib/ct.h): this path is near the stack limit */
	v = bpf_map_lookup_elem(&gammad_ct_v1, &k);
	if (!v) {
		k.dir = GAMMAD_CT_FWD;
		side = NAT_SRC;
		v = bpf_map_lookup_elem(&gammad_ct_v1, &k);
	}
	if (!v) {
		tc_count(GAMMAD_TC_PASS);
		return TC_ACT_OK;
	}
	addr_copy(nat, v->nat_addr);
	port = v->nat_port;
	flags = v->flags;
	if (tc_icmp_side(skb, p, &in, side, nat, port))
		goto err;
	if (flags & GAMMAD_CT_F_HAIRPIN) {
		/* REV key (pod, H): its source is the pod; FWD: the pod's peer becomes H */
		if (side == NAT_DST) {
			addr_copy(nat, k.saddr);
			port = in.t.sport;
		} else {
			hairpin_addr(nat, k.family);
			port = in.t.dport;
		}
		if (tc_icmp_side(skb, p, &in, side == NAT_DST ? NAT_SRC : NAT_DST, nat, port))
			goto err;
		tc_count(GAMMAD_TC_HAIRPIN);
	}
	tc_count(GAMMAD_TC_ICMP_XLATE);
	return tc_deliver(skb, &p->o.t);
err:
	tc_count(GAMMAD_TC_REWRITE_ERR);
	return TC_ACT_SHOT;
}

static __always_inline int tc_handle(struct __sk_buff *skb)
{
	struct gammad_fe_key fk = {};
	struct gammad_fe_val fe;
	struct pkt p = {};

	switch (pkt_parse(skb, &p)) {
	case PKT_OK:
		break;
	case PKT_FRAG:
		tc_count(GAMMAD_TC_FRAGMENT);
		return TC_ACT_OK;
	case PKT_BAD:
		tc_count(GAMMAD_TC_MALFORMED);
		return TC_ACT_OK;
	default:
		tc_count(GAMMAD_TC_PASS);
		return TC_ACT_OK;
	}
	if (p.icmp_err)
		return tc_icmp(skb, &p);

	addr_copy(fk.addr, p.o.t.daddr);
	fk.port = p.o.t.dport;
	fk.proto = p.o.t.proto;
	fk.family = p.o.t.family;
	if (lb_frontend(&fk, &fe))
		return tc_forward(skb, &p, &fe);
	return tc_reply(skb, &p);
}

/* Host side of a pod's veth, ingress: what the pod sends. */
SEC("tc")
int gammad_tc_pod(struct __sk_buff *skb)
{
	return tc_handle(skb);
}

/*
 * Uplink ingress: what other nodes send (their clients to our ClusterIPs,
 * replies of our endpoints' flows). The same translation; its own program
 * so the two kinds of links can be told apart and the uplink may diverge.
 */
SEC("tc")
int gammad_tc_uplink(struct __sk_buff *skb)
{
	return tc_handle(skb);
}
