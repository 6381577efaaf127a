/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conntrack of the TC path: two entries per flow in one LRU hash (layout in
 * gammad/maps.h). FWD (client -> ClusterIP) owns the flow: its idle timeout
 * decides when the flow ends and takes REV along. REV entries are reachable
 * only by the endpoint's reply tuple, so one outliving its flow in the LRU
 * is harmless, and a new flow on the same tuple overwrites it.
 *
 * A hairpin flow (the endpoint is the client itself, lib/hairpin.h) has
 * GAMMAD_CT_F_HAIRPIN on both entries: its reply tuple runs from the
 * endpoint to the hairpin address, not to the client.
 *
 * Timeouts are load-time constants (the agent may set them before load):
 * TCP 6 h idle, UDP 60 s, a TCP flow with a FIN 10 s (as Cilium's defaults).
 */
#ifndef GAMMAD_BPF_CT_H
#define GAMMAD_BPF_CT_H

#include "lib/addr.h"
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/pkt.h"
#include "lib/hairpin.h"

#define NSEC_PER_SEC	1000000000ULL

const volatile __u64 tc_ct_tcp_timeout = 21600 * NSEC_PER_SEC;
const volatile __u64 tc_ct_udp_timeout = 60 * NSEC_PER_SEC;
const volatile __u64 tc_ct_closing_timeout = 10 * NSEC_PER_SEC;

/* The key of the other direction of the flow an entry belongs to. */
static __always_inline void ct_peer_key(struct gammad_ct_key *peer, const struct gammad_ct_key *k,
					const struct gammad_ct_val *v)
{
	__builtin_memset(peer, 0, sizeof(*peer));
	peer->proto = k->proto;
	peer->family = k->family;
	if (k->dir == GAMMAD_CT_FWD) {
		/* endpoint -> client (hairpin: -> the hairpin address) */
		addr_copy(peer->saddr, v->nat_addr);
		if (v->flags & GAMMAD_CT_F_HAIRPIN)
			hairpin_addr(peer->daddr, k->family);
		else
			addr_copy(peer->daddr, k->saddr);
		peer->sport = v->nat_port;
		peer->dport = k->sport;
		peer->dir = GAMMAD_CT_REV;
	} else {
		/* client -> ClusterIP (hairpin: the endpoint is the client) */
		addr_copy(peer->saddr, (v->flags & GAMMAD_CT_F_HAIRPIN) ? k->saddr : k->daddr);
		addr_copy(peer->daddr, v->nat_addr);
		peer->sport = k->dport;
		peer->dport = v->nat_port;
		peer->dir = GAMMAD_CT_FWD;
	}
}

/* The tuple of the packets going the other way, as a key of direction dir. */
static __always_inline void ct_reversed_key(struct gammad_ct_key *k, const struct gammad_ct_key *t,
					    __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr_copy(k->saddr, t->daddr);
	addr_copy(k->daddr, t->saddr);
	k->sport = t->dport;
	k->dport = t->sport;
	k->proto = t->proto;
	k->family = t->family;
	k->dir = dir;
}

static __always_inline __u64 ct_timeout(const struct gammad_ct_val *v, __u8 proto)
{
	if (v->flags & GAMMAD_CT_F_CLOSING)
		return tc_ct_closing_timeout;
	return proto == IPPROTO_TCP ? tc_ct_tcp_timeout : tc_ct_udp_timeout;
}

/*
 * An upgrade of the conntrack layout (user/lib/datapath/layout.c) switches
 * the veths one after the other, while the old programs on the others go
 * on writing the old map, which the agent copies into ours before and
 * after the switch. Between two copies our map can lack a flow the old
 * programs made, or hold one they have ended since. Slot 0 holds the old
 * map from before the switch until the agent's last copy (empty outside an
 * upgrade); we never read its values (another layout), only whether a
 * tuple is there:
 *  - a flow missing here that it has was made since the agent's last copy:
 *    its packet is dropped and resent (the copy right after the switch
 *    brings the entry); passed untranslated, an endpoint's reply would make
 *    the client's stack answer with a RST that kills the connection;
 *  - an entry the agent copied (GAMMAD_CT_F_MIGRATED) that it no longer has
 *    was ended by an old program since: stale, removed (a direct
 *    connection reusing the tuple would get its replies translated);
 *  - what we end we end there too, so the last copy does not bring it back.
 * The template is this layout's; the agent sets the old map's as it loads.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_LRU_HASH);
		__uint(max_entries, 1);
		__type(key, struct gammad_ct_key);
		__type(value, struct gammad_ct_val);
	});
} gammad_ctold_v1 SEC(".maps");

static __always_inline void *ct_old_map(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&gammad_ctold_v1, &zero);
}

/* During an upgrade: the old programs made this flow, the agent has not copied it yet. */
static __always_inline bool ct_old_has(const struct gammad_ct_key *k)
{
	void *old = ct_old_map();

	return old && bpf_map_lookup_elem(old, k);
}

/*
 * The entry of k, or NULL; a copy whose flow the old programs ended since
 * goes. Ended and replaced: a client that reuses its port gets a new flow
 * on the same FWD tuple, to an endpoint chosen again, so the old map has
 * k still; a copy that sends the flow to the former endpoint is told by
 * its other entry, which the old map then lacks (that endpoint's reply
 * tuple, removed with the flow). Both must be there.
 */
static __always_inline struct gammad_ct_val *ct_lookup(const struct gammad_ct_key *k)
{
	struct gammad_ct_val *v = bpf_map_lookup_elem(&gammad_ct_v1, k);
	struct gammad_ct_key peer;
	void *old;

	if (!v || !(v->flags & GAMMAD_CT_F_MIGRATED))
		return v;
	old = ct_old_map();
	if (!old)
		return v;
	if (bpf_map_lookup_elem(old, k)) {
		ct_peer_key(&peer, k, v);
		if (bpf_map_lookup_elem(old, &peer))
			return v;
	}
	bpf_map_delete_elem(&gammad_ct_v1, k);
	return NULL;
}

/* Remove both entries of the flow of (k, v) (from the old map too during an upgrade). */
static __always_inline void ct_delete(const struct gammad_ct_key *k, const struct gammad_ct_val *v)
{
	struct gammad_ct_key peer;
	void *old;

	ct_peer_key(&peer, k, v);
	bpf_map_delete_elem(&gammad_ct_v1, &peer);
	bpf_map_delete_elem(&gammad_ct_v1, k);
	old = ct_old_map();
	if (old) {
		bpf_map_delete_elem(old, &peer);
		bpf_map_delete_elem(old, k);
	}
}

/* Mark both entries closing: the flow then ends after the short timeout. */
static __always_inline void ct_closing(const struct gammad_ct_key *k, struct gammad_ct_val *v)
{
	struct gammad_ct_val *pv;
	struct gammad_ct_key peer;

	v->flags |= GAMMAD_CT_F_CLOSING;
	ct_peer_key(&peer, k, v);
	pv = bpf_map_lookup_elem(&gammad_ct_v1, &peer);
	if (pv)
		pv->flags |= GAMMAD_CT_F_CLOSING;
}

/* End of a TCP flow: RST ends it now, FIN starts the closing timeout. */
static __always_inline void ct_tcp_flags(const struct gammad_ct_key *k, struct gammad_ct_val *v,
					 __u8 tcp_flags)
{
	if (k->proto != IPPROTO_TCP)
		return;
	if (tcp_flags & TCPF_RST) {
		ct_delete(k, v);
		tc_count(GAMMAD_TC_CLOSED);
	} else if ((tcp_flags & TCPF_FIN) && !(v->flags & GAMMAD_CT_F_CLOSING)) {
		ct_closing(k, v);
		tc_count(GAMMAD_TC_CLOSING);
	}
}

/*
 * Refresh the idle timer of a live entry; false when it had expired. The
 * stamp is written only when 1/16 of the timeout has passed: an entry is
 * shared by the CPUs of a flow, a write per packet would bounce its line.
 */
static __always_inline bool ct_refresh(struct gammad_ct_val *v, __u8 proto, __u64 now)
{
	__u64 timeout = ct_timeout(v, proto), idle = now - v->last_seen;

	if (idle > timeout)
		return false;
	if (idle > timeout / 16)
		v->last_seen = now;
	return true;
}

/*
 * Store a new flow: REV first, so a reply can never beat its entry, then
 * FWD only if no other CPU stored this tuple meanwhile (its choice wins,
 * *out gets it). 0, or -1 when the table refused (LRU under pressure).
 * flags: GAMMAD_CT_F_HAIRPIN or 0, for both entries.
 */
static __always_inline int ct_create(const struct gammad_ct_key *fwd, __u32 svc_port_id,
				     const struct gammad_ep_val *ep, __u8 flags,
				     struct gammad_ct_val *out)
{
	struct gammad_ct_val rv = {}, *cur;
	struct gammad_ct_key rk;
	__u64 now = bpf_ktime_get_ns();

	__builtin_memset(out, 0, sizeof(*out));
	addr_copy(out->nat_addr, ep->addr);
	out->nat_port = ep->port;
	out->flags = flags;
	out->svc_port_id = svc_port_id;
	out->last_seen = now;

	ct_peer_key(&rk, fwd, out);
	addr_copy(rv.nat_addr, fwd->daddr);
	rv.nat_port = fwd->dport;
	rv.flags = flags;
	rv.svc_port_id = svc_port_id;
	rv.last_seen = now;
	if (bpf_map_update_elem(&gammad_ct_v1, &rk, &rv, BPF_ANY))
		return -1;
	if (!bpf_map_update_elem(&gammad_ct_v1, fwd, out, BPF_NOEXIST))
		return 0;
	cur = bpf_map_lookup_elem(&gammad_ct_v1, fwd);
	if (!cur)
		return -1;
	__builtin_memcpy(out, cur, sizeof(*out));
	return 0;
}

#endif
