// SPDX-License-Identifier: Apache-2.0
/*
 * Same-node socket redirect.
 *
 * sockops puts every established TCP socket whose both ends are pods of
 * this node (gammad_lep_v1, filled by the agent) into the sockhash. The
 * sk_msg program attached to that sockhash then hands each message
 * straight to the receive queue of the peer socket (BPF_F_INGRESS): no
 * TCP segments, no veth crossing, no netfilter.
 *
 * A socket decides once, at its first message: if the peer is in the
 * sockhash, every message is redirected; if not (it raced the peer's
 * PASSIVE_ESTABLISHED), TCP for good. Mixing would let redirected bytes
 * overtake bytes still in flight over TCP.
 */
#include "lib/common.h"
#include "lib/addr.h"
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/sockmap.h"
#include "lib/engine.h"

char LICENSE[] SEC("license") = "GPL";

SEC("sockops")
int gammad_sockops(struct bpf_sock_ops *skops)
{
	struct gammad_sock_key key = {};

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	/*
	 * A connection steered to the HTTP engine ends on loopback, never a
	 * local endpoint: it records its origin and stays out of the sockhash.
	 */
	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		engine_record_origdst(skops);
	if (!SOCK_KEY_FROM_CTX(&key, skops))
		return 1;
	if (!is_local_endpoint(key.local, key.family) ||
	    !is_local_endpoint(key.remote, key.family))
		return 1;
	/* BPF_ANY: a stale entry with this tuple belongs to a closed socket. */
	if (bpf_sock_hash_update(skops, &gammad_sockh_v1, &key, BPF_ANY))
		reason_inc(GAMMAD_R_SOCKHASH_UPDATE);
	return 1;
}

SEC("sk_msg")
int gammad_sk_msg(struct sk_msg_md *msg)
{
	struct gammad_sock_key self = {}, peer = {};
	struct gammad_sock_redir *st;
	struct bpf_sock *sk = msg->sk;

	if (!sk)
		return SK_PASS;
	st = bpf_sk_storage_get(&gammad_skr_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st && st->state == GAMMAD_REDIR_TCP)
		return SK_PASS;
	if (!SOCK_KEY_FROM_CTX(&self, msg))
		return SK_PASS;
	sock_key_peer(&peer, &self);
	if (bpf_msg_redirect_hash(msg, &gammad_sockh_v1, &peer, BPF_F_INGRESS) == SK_PASS) {
		if (st)
			st->state = GAMMAD_REDIR_PEER;
		return SK_PASS;
	}
	/*
	 * No peer. Before any redirect: TCP from now on. After redirects the
	 * peer has closed; TCP then delivers the reset the application expects.
	 */
	if (st && st->state == GAMMAD_REDIR_UNDECIDED)
		st->state = GAMMAD_REDIR_TCP;
	reason_inc(GAMMAD_R_REDIR_NO_PEER);
	return SK_PASS;
}
