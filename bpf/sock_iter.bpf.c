// SPDX-License-Identifier: Apache-2.0
/*
 * Removed endpoints release their sockets (socket iterators, kernel 6.5+).
 *
 * A connected UDP socket keeps the endpoint connect4/6 gave it for as long
 * as it lives: when that endpoint leaves its Service, every later datagram
 * still goes to its address (dead, or reused by another pod). kube-proxy
 * deletes the conntrack entries of removed UDP endpoints for this reason;
 * Cilium destroys such sockets with bpf_sock_destroy(). So do we: after an
 * apply that removed endpoints, the agent fills gammad_rel_v1 with them (per
 * Service port: an endpoint may stay in another Service) and
 * reads these iterators in every network namespace. A socket that connect()
 * translated (its gammad_sko_v1 storage names the endpoint) and that is
 * still connected to a removed endpoint is destroyed: the application gets
 * ECONNABORTED once, the socket is disconnected, and its next connect()
 * picks a live endpoint.
 *
 * TCP: established connections keep working while the endpoint lives
 * (kube-proxy leaves them alone too); the agent runs the TCP iterator only
 * with --reset-removed-tcp, and the connection is then aborted with a RST.
 *
 * Every destroyed socket writes one byte to the iterator's output: the
 * agent counts them.
 */
#include "lib/common.h"
#include "lib/addr.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "GPL";

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* (Service port, endpoint) pairs removed by the last apply. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gammad_rel_key);
	__type(value, __u8);
} gammad_rel_v1 SEC(".maps");

/* A socket's address as a map address: v4-mapped IPv6 becomes IPv4. */
static __always_inline __u8 rel_addr(__u8 out[16], const __u8 in[16], __u8 family)
{
	const __u32 *w = (const __u32 *)in;

	if (family == AF_INET6 && ip6_is_v4mapped(w[0], w[1], w[2])) {
		addr_from_ip4(out, w[3]);
		return AF_INET;
	}
	addr_copy(out, in);
	return family;
}

/*
 * Whether connect() translated sk from a Service port to an endpoint that
 * port no longer reaches, and sk still talks to that endpoint.
 */
static __always_inline bool rel_removed(struct sock *sk, __u8 proto)
{
	struct gammad_rel_key k = { .proto = proto };
	struct gammad_sock_orig *o;
	__u16 family = sk->__sk_common.skc_family;
	__u32 *be;

	o = bpf_sk_storage_get(&gammad_sko_v1, sk, 0, 0);
	if (!o || o->family != family)
		return false;
	if (sk->__sk_common.skc_dport != o->be_port)
		return false;	/* connected elsewhere since */
	be = (__u32 *)o->be_addr;
	if (family == AF_INET) {
		if (sk->__sk_common.skc_daddr != be[0])
			return false;
	} else if (family == AF_INET6) {
		struct in6_addr d = sk->__sk_common.skc_v6_daddr;

		if (d.in6_u.u6_addr32[0] != be[0] || d.in6_u.u6_addr32[1] != be[1] ||
		    d.in6_u.u6_addr32[2] != be[2] || d.in6_u.u6_addr32[3] != be[3])
			return false;
	} else {
		return false;
	}
	/* connect6 wrote an IPv4 endpoint v4-mapped (sock_addr.bpf.c) */
	k.family = rel_addr(k.vip, o->vip, o->family);
	if (rel_addr(k.ep, o->be_addr, o->family) != k.family)
		return false;
	k.vip_port = o->vip_port;
	k.ep_port = o->be_port;
	return bpf_map_lookup_elem(&gammad_rel_v1, &k) != NULL;
}

/* sk: the iterator's own (trusted) pointer, as bpf_sock_destroy() wants it. */
static __always_inline void rel_destroy(struct seq_file *seq, struct sock_common *sk)
{
	char one = 1;

	if (!bpf_sock_destroy(sk))
		bpf_seq_write(seq, &one, 1);
}

SEC("iter/udp")
int gammad_release_udp(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;

	/* a connected UDP socket is TCP_ESTABLISHED */
	if (!sk || sk->__sk_common.skc_state != TCP_ESTABLISHED || !rel_removed(sk, IPPROTO_UDP))
		return 0;
	rel_destroy(ctx->meta->seq, (struct sock_common *)sk);
	return 0;
}

SEC("iter/tcp")
int gammad_release_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct sock *sk;

	if (!skc)
		return 0;
	/* full sockets only: not request or time-wait minisocks */
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	if (sk->__sk_common.skc_state == TCP_LISTEN || sk->__sk_common.skc_state == TCP_CLOSE ||
	    !rel_removed(sk, IPPROTO_TCP))
		return 0;
	rel_destroy(ctx->meta->seq, skc);
	return 0;
}
