// SPDX-License-Identifier: Apache-2.0
/*
 * Removed endpoints release their sockets (socket iterators, kernel 6.5+).
 *
 * A connected UDP socket keeps the endpoint connect4/6 gave it for as long
 * as it lives: when that endpoint leaves its Service, every later datagram
 * still goes to its address (dead, or reused by another pod). kube-proxy
 * deletes the conntrack entries of removed UDP endpoints for this reason;
 * Cilium destroys such sockets with bpf_sock_destroy(). So do we: after an
 * apply that removed endpoints, the agent fills gammad_rel_v1 with them and
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

/* Endpoints removed by the last apply (key: as in gammad_ep_v1, flags 0). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gammad_ep_val);
	__type(value, __u8);
} gammad_rel_v1 SEC(".maps");

/* Whether sk was translated to an endpoint that is gone, and still talks to it. */
static __always_inline bool rel_removed(struct sock *sk)
{
	struct gammad_sock_orig *o;
	struct gammad_ep_val ep = {};
	__u32 *be;
	__u16 family = sk->__sk_common.skc_family;

	o = bpf_sk_storage_get(&gammad_sko_v1, sk, 0, 0);
	if (!o || o->family != family)
		return false;
	if (sk->__sk_common.skc_dport != o->be_port)
		return false;	/* connected elsewhere since */
	be = (__u32 *)o->be_addr;
	if (family == AF_INET) {
		if (sk->__sk_common.skc_daddr != be[0])
			return false;
		addr_from_ip4(ep.addr, be[0]);
		ep.family = AF_INET;
	} else if (family == AF_INET6) {
		struct in6_addr d = sk->__sk_common.skc_v6_daddr;

		if (d.in6_u.u6_addr32[0] != be[0] || d.in6_u.u6_addr32[1] != be[1] ||
		    d.in6_u.u6_addr32[2] != be[2] || d.in6_u.u6_addr32[3] != be[3])
			return false;
		/* connect6 wrote an IPv4 endpoint v4-mapped (sock_addr.bpf.c) */
		if (ip6_is_v4mapped(be[0], be[1], be[2])) {
			addr_from_ip4(ep.addr, be[3]);
			ep.family = AF_INET;
		} else {
			addr_copy(ep.addr, o->be_addr);
			ep.family = AF_INET6;
		}
	} else {
		return false;
	}
	ep.port = o->be_port;
	return bpf_map_lookup_elem(&gammad_rel_v1, &ep) != NULL;
}

static __always_inline void rel_destroy(struct seq_file *seq, struct sock *sk)
{
	char one = 1;

	if (!bpf_sock_destroy((struct sock_common *)sk))
		bpf_seq_write(seq, &one, 1);
}

SEC("iter/udp")
int gammad_release_udp(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;

	/* a connected UDP socket is TCP_ESTABLISHED */
	if (!sk || sk->__sk_common.skc_state != TCP_ESTABLISHED || !rel_removed(sk))
		return 0;
	rel_destroy(ctx->meta->seq, sk);
	return 0;
}

SEC("iter/tcp")
int gammad_release_tcp(struct bpf_iter__tcp *ctx)
{
	struct tcp_sock *tp;
	struct sock *sk;

	if (!ctx->sk_common)
		return 0;
	/* full sockets only: not request or time-wait minisocks */
	tp = bpf_skc_to_tcp_sock(ctx->sk_common);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	if (sk->__sk_common.skc_state == TCP_LISTEN || sk->__sk_common.skc_state == TCP_CLOSE ||
	    !rel_removed(sk))
		return 0;
	rel_destroy(ctx->meta->seq, sk);
	return 0;
}
