// SPDX-License-Identifier: Apache-2.0
/*
 * Which kernel-served clients still have bytes the kernel redirected to
 * them waiting in their psock's ingress_skb (issue 13, the relay of a slow
 * reader and the FIN after a close-delimited response).
 *
 * An sk_skb redirect to a client's ingress queues the skb on its psock's
 * ingress_skb; a work queue moves it to ingress_msg only while the client
 * reads. The client's recv() takes ingress_msg first, but TCP's receive
 * queue as soon as ingress_msg is empty, even with skbs still in
 * ingress_skb: bytes the agent writes to the client over TCP (the relay,
 * a FIN) must wait until that queue is empty, or they would overtake. Once
 * a client is slow (or its upstream closed) nothing is added to it, so
 * "empty" is final.
 *
 * The iterator walks the TCP sockets of the network namespace its reader
 * was created in (the client pod's: bpf_iter_create() binds it) and writes
 * the cookie of each socket in a sockmap whose ingress_skb is not empty: a
 * client missing from the output is drained. Map iterators (iter/sockmap,
 * iter/bpf_sk_storage_map, which would walk only the clients) are refused
 * with EPERM on the kernels we run; iter/tcp loads.
 */
#include "lib/common.h"
#include "lib/psock.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/tcp")
int gammad_kh_backlog(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct sk_psock *ps;
	struct tcp_sock *tp;
	__u64 cookie;

	if (!skc)
		return 0;
	/* full sockets only: not request or time-wait minisocks */
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	ps = kh_psock((struct sock *)tp);
	if (!ps || !ps->ingress_skb.qlen)
		return 0;
	/* set by sockops when the client registered (bpf_get_socket_cookie) */
	cookie = skc->skc_cookie.counter;
	if (cookie)
		bpf_seq_write(ctx->meta->seq, &cookie, sizeof(cookie));
	return 0;
}
