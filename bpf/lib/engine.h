/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Steering to the HTTP engine (gammad run; off with --no-http-engine). A TCP connect()
 * whose selector is marked GAMMAD_SEL_HTTP_ENGINE goes to the agent's
 * listener on loopback in the client's own netns, port engine_port; the
 * socket remembers the ClusterIP:port (gammad_sko_v1, flagged
 * GAMMAD_SKO_ENGINE), so getpeername() still shows it. Once the connection
 * is established, sockops copies that origin into gammad_origdst_v1 under
 * (netns cookie, family, client port), where the agent finds it on accept:
 * the listener's netns and the class connect() used (gammad_ske_v1) name the
 * client, so nothing about it is guessed. Only a netns where the agent
 * listens (gammad_engns_v1, by netns cookie) and whose listener is alive
 * now (bpf_sk_lookup_tcp: not after the agent was killed) is steered;
 * elsewhere L4.
 *
 * engine_port is a load-time constant (network order) the agent may set
 * before load (--engine-port); the default is GAMMAD_ENGINE_PORT_DEFAULT.
 */
#ifndef GAMMAD_BPF_ENGINE_H
#define GAMMAD_BPF_ENGINE_H

#include "lib/addr.h"
#include "lib/maps.h"
#include "lib/stats.h"

const volatile __u16 engine_port = bpf_htons(GAMMAD_ENGINE_PORT_DEFAULT);

/*
 * The listener's address as the connecting socket must see it: 127.0.0.1,
 * ::ffff:127.0.0.1 for an AF_INET6 socket dialing an IPv4 Service (the
 * connection is IPv4 and lands on the IPv4 listener), ::1 for IPv6.
 */
static __always_inline void engine_addr(__u8 out[16], bool v6_socket, __u8 svc_family)
{
	if (!v6_socket)
		addr_from_ip4(out, bpf_htonl(0x7f000001));
	else if (svc_family == AF_INET)
		addr_from_ip6(out, 0, 0, bpf_htonl(0xffff), bpf_htonl(0x7f000001));
	else
		addr_from_ip6(out, 0, 0, 0, bpf_htonl(1));
}

/*
 * Is the listener the connection would land on (engine_addr) there now? An
 * agent killed with SIGKILL leaves its gammad_engns_v1 entries behind but
 * its listeners die with it: until its successor listens again the
 * connection takes the L4 path instead of meeting a closed port. A lookup
 * with no source finds no established socket, only the listener.
 */
static __always_inline bool engine_listener_alive(struct bpf_sock_addr *ctx, bool v6_socket,
						  __u8 svc_family)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	if (v6_socket && svc_family == AF_INET6) {
		t.ipv6.daddr[3] = bpf_htonl(1);
		t.ipv6.dport = engine_port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	} else {
		t.ipv4.daddr = bpf_htonl(0x7f000001);
		t.ipv4.dport = engine_port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

/*
 * Does the agent listen in the caller's netns, now? Not: the L4 path, never
 * a closed port.
 */
static __always_inline bool engine_listens_here(struct bpf_sock_addr *ctx, bool v6_socket,
						__u8 svc_family)
{
	__u64 cookie = bpf_get_netns_cookie(ctx);

	if (!bpf_map_lookup_elem(&gammad_engns_v1, &cookie))
		return false;
	if (engine_listener_alive(ctx, v6_socket, svc_family))
		return true;
	reason_inc(GAMMAD_R_ENGINE_GONE);
	return false;
}

/* connect(): the class this steered socket was decided with, for sockops. */
static __always_inline void engine_remember_class(struct bpf_sock_addr *ctx, __u32 ns_id)
{
	struct gammad_sock_engine *e;

	e = bpf_sk_storage_get(&gammad_ske_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (e)
		e->ns_id = ns_id;
	else
		reason_inc(GAMMAD_R_SOCK_STORAGE);
}

/*
 * The origin of a steered socket as the agent's accept sees it (key: the
 * listener's netns and the client port; value: the ClusterIP:port dialed
 * and the class): false when the socket was not steered. sockops only.
 */
static __always_inline bool engine_origin(struct bpf_sock_ops *skops,
					  struct gammad_origdst_key *k,
					  struct gammad_origdst_val *v)
{
	struct gammad_sock_engine *e;
	struct gammad_sock_orig *o;
	struct bpf_sock *sk = skops->sk;
	__u32 *be, *vip;

	if (!sk)
		return false;
	o = bpf_sk_storage_get(&gammad_sko_v1, sk, 0, 0);
	if (!o || !(o->flags & GAMMAD_SKO_ENGINE))
		return false;
	e = bpf_sk_storage_get(&gammad_ske_v1, sk, 0, 0);
	v->ns_id = e ? e->ns_id : GAMMAD_NS_ALL;
	be = (__u32 *)o->be_addr;
	vip = (__u32 *)o->vip;
	k->netns_cookie = bpf_get_netns_cookie(skops);
	k->port = bpf_htons((__u16)skops->local_port);
	v->vip_port = o->vip_port;
	if (o->family == AF_INET) {
		k->family = AF_INET;
		v->family = AF_INET;
		addr_from_ip4(v->vip, vip[0]);
	} else if (ip6_is_v4mapped(be[0], be[1], be[2])) {
		k->family = AF_INET;
		v->family = AF_INET;
		addr_from_ip4(v->vip, vip[3]);
	} else {
		k->family = AF_INET6;
		v->family = AF_INET6;
		addr_copy(v->vip, o->vip);
	}
	return true;
}

/*
 * sockops, ACTIVE_ESTABLISHED: when this socket was steered, record its
 * origin for the agent's accept. The client port is known only now (the
 * kernel binds it after the connect hook). On loopback this callback runs
 * before the final ACK is sent, so the entry exists before accept() can
 * return the connection.
 */
/* 127.0.0.0/8 or ::1: a key's address (IPv4 already unmapped). */
static __always_inline bool addr_is_loopback(const __u8 a[16], __u8 family)
{
	const __u32 *w = (const __u32 *)a;

	if (family == AF_INET)
		return (bpf_ntohl(w[0]) >> 24) == 127;
	return family == AF_INET6 && !w[0] && !w[1] && !w[2] && w[3] == bpf_htonl(1);
}

/*
 * A connection steered to the engine, seen from either end: both on
 * loopback, one of them the listener's port. Its tuple repeats from pod to
 * pod (every pod has its loopback and its listener), so its key in the
 * engine's sockhash (gammad_esockh_v1) is the netns cookie and the ports.
 */
static __always_inline bool engine_sock_key(struct gammad_esock_key *ek,
					    const struct gammad_sock_key *k, __u64 netns_cookie)
{
	if (k->local_port != engine_port && k->remote_port != engine_port)
		return false;
	if (!addr_is_loopback(k->local, k->family) || !addr_is_loopback(k->remote, k->family))
		return false;
	ek->netns_cookie = netns_cookie;
	ek->local_port = k->local_port;
	ek->remote_port = k->remote_port;
	ek->family = k->family;
	return true;
}

/* The key under which the other end of a steered connection is stored. */
static __always_inline void engine_sock_key_peer(struct gammad_esock_key *peer,
						 const struct gammad_esock_key *self)
{
	peer->netns_cookie = self->netns_cookie;
	peer->local_port = self->remote_port;
	peer->remote_port = self->local_port;
	peer->family = self->family;
}

static __always_inline void engine_record_origdst(struct bpf_sock_ops *skops)
{
	struct gammad_origdst_key k = {};
	struct gammad_origdst_val v = {};

	if (!engine_origin(skops, &k, &v))
		return;
	if (bpf_map_update_elem(&gammad_origdst_v1, &k, &v, BPF_ANY))
		reason_inc(GAMMAD_R_ORIGDST_UPDATE);
}

#endif
