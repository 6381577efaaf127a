// SPDX-License-Identifier: Apache-2.0
/*
 * Socket-level Service load balancing (cgroup sock_addr hooks).
 *
 * connect4/6 and sendmsg4/6 turn a ClusterIP:port into an endpoint once per
 * connection (per datagram for unconnected UDP): no per-packet NAT.
 * getpeername4/6 and recvmsg4/6 show the ClusterIP again, so clients see
 * the address they asked for. The hooks are scoped by cgroup: processes
 * outside the attach cgroup are never seen, whatever their netns.
 *
 * A Service port whose route has no usable backend refuses at once with
 * ECONNREFUSED (bpf_set_retval + reject): returning 0 alone gives EPERM.
 */
#include "lib/common.h"
#include "lib/addr.h"
#include "lib/maps.h"
#include "lib/stats.h"
/* Declared (created and pinned) here, first object loaded: --kernel-http writes them. */
#include "lib/khttp_maps.h"
#include "lib/class.h"
#include "lib/lb.h"
#include "lib/engine.h"

char LICENSE[] SEC("license") = "GPL";

/* A translated destination, as the socket sees both ends of it. */
struct sa_xlat {
	__u8 vip[16] GAMMAD_ALIGN4;	/* ClusterIP as given by the socket */
	__u8 be[16] GAMMAD_ALIGN4;	/* endpoint as written back to it */
	__be16 vip_port;
	__be16 be_port;
	__u8 family;			/* socket family: AF_INET or AF_INET6 */
};

/* Where getpeername and connected-socket replies find the ClusterIP again. */
static __always_inline void remember_sock(struct bpf_sock_addr *ctx, const struct sa_xlat *x,
					  __u8 flags)
{
	struct gammad_sock_orig *o;

	o = bpf_sk_storage_get(&gammad_sko_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o) {
		reason_inc(GAMMAD_R_SOCK_STORAGE);
		return;
	}
	addr_copy(o->vip, x->vip);
	addr_copy(o->be_addr, x->be);
	o->vip_port = x->vip_port;
	o->be_port = x->be_port;
	o->family = x->family;
	o->flags = flags;	/* a retried connect() may go elsewhere */
}

/* Where recvmsg finds the ClusterIP of a datagram's source endpoint. */
static __always_inline void remember_datagram(struct bpf_sock_addr *ctx, const struct sa_xlat *x)
{
	struct gammad_revnat_key k = {};
	struct gammad_revnat_val v = {};

	k.cookie = bpf_get_socket_cookie(ctx);
	addr_copy(k.addr, x->be);
	k.port = x->be_port;
	k.family = x->family;
	addr_copy(v.addr, x->vip);
	v.port = x->vip_port;
	if (bpf_map_update_elem(&gammad_rnat_v1, &k, &v, BPF_ANY))
		reason_inc(GAMMAD_R_REVNAT_FULL);
}

/* Lookup key of the destination; v4-mapped IPv6 addresses are IPv4 Services. */
static __always_inline void sa_read_dst(struct bpf_sock_addr *ctx, const bool v6,
					struct gammad_fe_key *key, struct sa_xlat *x)
{
	__u32 w0, w1, w2, w3;

	key->proto = ctx->protocol;
	key->port = (__be16)ctx->user_port;
	x->vip_port = key->port;
	if (!v6) {
		x->family = AF_INET;
		key->family = AF_INET;
		addr_from_ip4(key->addr, ctx->user_ip4);
		addr_copy(x->vip, key->addr);
		return;
	}
	x->family = AF_INET6;
	w0 = ctx->user_ip6[0];
	w1 = ctx->user_ip6[1];
	w2 = ctx->user_ip6[2];
	w3 = ctx->user_ip6[3];
	addr_from_ip6(x->vip, w0, w1, w2, w3);
	if (ip6_is_v4mapped(w0, w1, w2)) {
		key->family = AF_INET;
		addr_from_ip4(key->addr, w3);
	} else {
		key->family = AF_INET6;
		addr_copy(key->addr, x->vip);
	}
}

/* Write the endpoint into the context; false when this socket cannot reach it. */
static __always_inline bool sa_write_dst(struct bpf_sock_addr *ctx, const bool v6,
					 const struct gammad_ep_val *ep, struct sa_xlat *x)
{
	__u32 *w = (__u32 *)x->be;

	if (!v6) {
		if (ep->family != AF_INET)
			return false;
		addr_copy(x->be, ep->addr);
		ctx->user_ip4 = w[0];
	} else {
		if (ep->family == AF_INET)
			addr_from_ip6(x->be, 0, 0, bpf_htonl(0xffff), addr_ip4(ep->addr));
		else
			addr_copy(x->be, ep->addr);
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	x->be_port = ep->port;
	ctx->user_port = ep->port;
	return true;
}

/* Send the connection to the HTTP engine's listener in the client's netns. */
static __always_inline void sa_write_engine(struct bpf_sock_addr *ctx, const bool v6,
					    __u8 svc_family, struct sa_xlat *x)
{
	__u32 *w = (__u32 *)x->be;

	engine_addr(x->be, v6, svc_family);
	if (!v6) {
		ctx->user_ip4 = w[0];
	} else {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	x->be_port = engine_port;
	ctx->user_port = engine_port;
}

/*
 * The common body of connect and sendmsg. `connected` is true for connect:
 * the socket keeps its translation for getpeername. A TCP connect() runs
 * the hook only from SS_UNCONNECTED (a second connect() while connecting
 * gets EALREADY/EISCONN without it), so a retry after a failed connect
 * rightly picks again.
 */
static __always_inline int sa_translate(struct bpf_sock_addr *ctx, const bool v6,
					const bool connected)
{
	struct gammad_fe_key key = {};
	struct lb_aff aff;
	struct gammad_fe_val fe;
	struct lb_result res;
	struct sa_xlat x = {};
	__u32 reason, ns_id, proto = ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return GAMMAD_ALLOW;
	sa_read_dst(ctx, v6, &key, &x);
	if (!lb_frontend(&key, &fe))
		return GAMMAD_ALLOW;	/* not a Service: untouched */

	/* the source address is not chosen yet: the pod is its netns */
	__builtin_memset(&aff.key, 0, sizeof(aff.key));
	aff.key.kind = GAMMAD_AFF_NETNS;
	*(__u64 *)aff.key.client = bpf_get_netns_cookie(ctx);
	ns_id = lb_needs_class(&fe) ? client_ns_id() : GAMMAD_NS_ALL;
	/* Only a TCP connect() can be steered: the engine speaks HTTP over TCP. */
	reason = lb_pick(&fe, ns_id, &aff, connected && proto == IPPROTO_TCP, &res);
	/* No listener in this netns: the L4 choice, as without the engine. */
	if (!reason && res.engine && !engine_listens_here(ctx, v6, key.family))
		reason = lb_pick(&fe, ns_id, &aff, false, &res);
	if (!reason && res.engine)
		sa_write_engine(ctx, v6, key.family, &x);
	else if (!reason && !sa_write_dst(ctx, v6, &res.ep, &x))
		reason = GAMMAD_R_FAMILY;
	if (reason) {
		svc_miss(fe.svc_port_id, reason);
		bpf_set_retval(-ECONNREFUSED);
		return GAMMAD_REJECT;
	}
	if (connected)
		remember_sock(ctx, &x, res.engine ? GAMMAD_SKO_ENGINE : 0);
	/* the engine wants the client's namespace even where the port has no consumers */
	if (res.engine)
		engine_remember_class(ctx, lb_needs_class(&fe) ? ns_id : client_ns_id());
	if (proto == IPPROTO_UDP)
		remember_datagram(ctx, &x);
	lb_account(&fe, &res);
	return GAMMAD_ALLOW;
}

/* Show the ClusterIP instead of the endpoint the socket was connected to. */
static __always_inline int sa_getpeername(struct bpf_sock_addr *ctx, const bool v6)
{
	struct gammad_sock_orig *o;
	__u32 *vip;

	o = bpf_sk_storage_get(&gammad_sko_v1, ctx->sk, 0, 0);
	if (!o || o->family != (v6 ? AF_INET6 : AF_INET) ||
	    ctx->user_port != o->be_port)
		return GAMMAD_ALLOW;
	vip = (__u32 *)o->vip;
	if (!v6) {
		if (ctx->user_ip4 != addr_ip4(o->be_addr))
			return GAMMAD_ALLOW;
		ctx->user_ip4 = vip[0];
	} else {
		__u32 *be = (__u32 *)o->be_addr;

		if (ctx->user_ip6[0] != be[0] || ctx->user_ip6[1] != be[1] ||
		    ctx->user_ip6[2] != be[2] || ctx->user_ip6[3] != be[3])
			return GAMMAD_ALLOW;
		ctx->user_ip6[0] = vip[0];
		ctx->user_ip6[1] = vip[1];
		ctx->user_ip6[2] = vip[2];
		ctx->user_ip6[3] = vip[3];
	}
	ctx->user_port = o->vip_port;
	return GAMMAD_ALLOW;
}

/*
 * A datagram from an endpoint this socket sent to appears to come from the
 * ClusterIP. An IPv6 socket's sendto() of a v4-mapped address runs the
 * IPv4 sendmsg hook (udpv6_sendmsg hands it to udp_sendmsg), which
 * remembered the endpoint as IPv4, while the reply reaches recvmsg6 as
 * ::ffff:a.b.c.d: that source is looked up as IPv4 too, and the ClusterIP
 * given back v4-mapped.
 */
static __always_inline int sa_recvmsg(struct bpf_sock_addr *ctx, const bool v6)
{
	struct gammad_revnat_key k = {};
	struct gammad_revnat_val *v;
	bool mapped = false;
	__u32 *w, w3;

	k.cookie = bpf_get_socket_cookie(ctx);
	k.port = (__be16)ctx->user_port;
	if (!v6) {
		k.family = AF_INET;
		addr_from_ip4(k.addr, ctx->user_ip4);
	} else {
		k.family = AF_INET6;
		w3 = ctx->user_ip6[3];
		addr_from_ip6(k.addr, ctx->user_ip6[0], ctx->user_ip6[1],
			      ctx->user_ip6[2], w3);
	}
	v = bpf_map_lookup_elem(&gammad_rnat_v1, &k);
	if (!v && v6 && ip6_is_v4mapped(((__u32 *)k.addr)[0], ((__u32 *)k.addr)[1],
					((__u32 *)k.addr)[2])) {
		k.family = AF_INET;
		addr_from_ip4(k.addr, w3);
		v = bpf_map_lookup_elem(&gammad_rnat_v1, &k);
		mapped = true;
	}
	if (!v)
		return GAMMAD_ALLOW;
	w = (__u32 *)v->addr;
	if (!v6) {
		ctx->user_ip4 = w[0];
	} else if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = w[0];
	} else {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	ctx->user_port = v->port;
	return GAMMAD_ALLOW;
}

SEC("cgroup/connect4")
int gammad_connect4(struct bpf_sock_addr *ctx)
{
	return sa_translate(ctx, false, true);
}

SEC("cgroup/connect6")
int gammad_connect6(struct bpf_sock_addr *ctx)
{
	return sa_translate(ctx, true, true);
}

SEC("cgroup/sendmsg4")
int gammad_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sa_translate(ctx, false, false);
}

SEC("cgroup/sendmsg6")
int gammad_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sa_translate(ctx, true, false);
}

SEC("cgroup/getpeername4")
int gammad_getpeer4(struct bpf_sock_addr *ctx)
{
	return sa_getpeername(ctx, false);
}

SEC("cgroup/getpeername6")
int gammad_getpeer6(struct bpf_sock_addr *ctx)
{
	return sa_getpeername(ctx, true);
}

SEC("cgroup/recvmsg4")
int gammad_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sa_recvmsg(ctx, false);
}

SEC("cgroup/recvmsg6")
int gammad_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sa_recvmsg(ctx, true);
}
