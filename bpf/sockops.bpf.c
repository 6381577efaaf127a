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
 * Off unless the agent runs with --sockmap (sock_redirect): a socket in a
 * sockhash reads through tcp_bpf_recvmsg, which is not TCP's recvmsg to
 * the application (a blocking read returns EAGAIN after a wake-up that
 * finds no data: a signal, the ACK of its own FIN; MSG_WAITALL and
 * SO_RCVLOWAT return short; splice() misses the redirected bytes; a close
 * with unread bytes sends FIN, not RST). See "Same-node socket redirect"
 * in docs/ARCHITECTURE.md. Sockets put in by an earlier agent stay (taking
 * one out drops what its ingress queue holds) and keep being served here.
 *
 * A socket decides once, at its first message: if the peer is in the
 * sockhash, every message is redirected; if not (it raced the peer's
 * PASSIVE_ESTABLISHED), TCP for good. Mixing would let redirected bytes
 * overtake bytes still in flight over TCP. The one move allowed is from
 * the redirect to TCP, for good, when the peer lags by more than
 * sockmap_cap bytes: the kernel does not bound the peer's ingress queue,
 * TCP's flow control does.
 *
 * Connections steered to the HTTP engine (loopback in the client pod's
 * netns, lib/engine.h) go into their own sockhash, gammad_esockh_v1, keyed
 * with the netns cookie: the client's end from this cgroup, the agent's
 * accepted end when the agent itself runs under it (a DaemonSet pod under
 * the cgroup2 root, the default --cgroup). Only in a netns where the agent
 * listens; not with the kernel HTTP path, whose programs own those sockets
 * (engine_redirect off). The same sk_msg program serves both sockhashes.
 */
#include "lib/common.h"
#include "lib/addr.h"
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/sockmap.h"
#include "lib/engine.h"

char LICENSE[] SEC("license") = "GPL";

/* Load-time constant: gammad run --sockmap (dp_opts.sock_redirect). */
const volatile bool sock_redirect = false;
/* Load-time constant: with sock_redirect, the engine's connections too. */
const volatile bool engine_redirect = false;

/* A steered connection's end into gammad_esockh_v1; false: not one. */
static __always_inline bool engine_sock_add(struct bpf_sock_ops *skops,
					    const struct gammad_sock_key *key)
{
	struct gammad_esock_key ek = {};
	__u64 cookie = bpf_get_netns_cookie(skops);

	if (!engine_redirect || !engine_sock_key(&ek, key, cookie))
		return false;
	if (bpf_map_lookup_elem(&gammad_engns_v1, &cookie) &&
	    bpf_sock_hash_update(skops, &gammad_esockh_v1, &ek, BPF_ANY))
		reason_inc(GAMMAD_R_SOCKHASH_UPDATE);
	return true;
}

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
	if (!sock_redirect || !SOCK_KEY_FROM_CTX(&key, skops))
		return 1;
	if (engine_sock_add(skops, &key))
		return 1;
	if (!is_local_endpoint(key.local, key.family) ||
	    !is_local_endpoint(key.remote, key.family))
		return 1;
	/* BPF_ANY: a stale entry with this tuple belongs to a closed socket. */
	if (bpf_sock_hash_update(skops, &gammad_sockh_v1, &key, BPF_ANY))
		reason_inc(GAMMAD_R_SOCKHASH_UPDATE);
	return 1;
}

/* Load-time constant (bytes); see GAMMAD_SOCKMAP_CAP_DEFAULT. */
const volatile __u32 sockmap_cap = GAMMAD_SOCKMAP_CAP_DEFAULT;

SEC("sk_msg")
int gammad_sk_msg(struct sk_msg_md *md)
{
	struct gammad_sock_key self = {}, peer = {};
	struct gammad_esock_key eself = {}, epeer = {};
	struct sk_msg *msg = msg_kern(md);
	struct gammad_sock_redir *st;
	struct bpf_sock *sk = md->sk;
	bool pending;
	long ret;

	if (!sk)
		return SK_PASS;
	/*
	 * The kernel runs the program again on the rest of a message the
	 * peer's ingress took only in part (msg_rerun: every redirect below
	 * sets apply_bytes, so a rest can be told). Such a rest follows its
	 * first part to the peer, whatever the state says; the rest of one
	 * whose peer has gone is dropped (nobody can read it).
	 */
	pending = msg_rerun(md);
	st = bpf_sk_storage_get(&gammad_skr_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st && (st->state == GAMMAD_REDIR_TCP || st->state == GAMMAD_REDIR_SLOW_READER) &&
	    !pending)
		return SK_PASS;
	if (!SOCK_KEY_FROM_CTX(&self, md))
		return pending ? SK_DROP : SK_PASS;
	if (engine_redirect && engine_sock_key(&eself, &self, bpf_get_netns_cookie(md))) {
		engine_sock_key_peer(&epeer, &eself);
		ret = bpf_msg_redirect_hash(md, &gammad_esockh_v1, &epeer, BPF_F_INGRESS);
	} else {
		sock_key_peer(&peer, &self);
		ret = bpf_msg_redirect_hash(md, &gammad_sockh_v1, &peer, BPF_F_INGRESS);
	}
	if (ret == SK_PASS) {
		bpf_msg_apply_bytes(md, md->size);
		if (!st)
			return SK_PASS;
		if (st->state == GAMMAD_REDIR_UNDECIDED)
			st->state = GAMMAD_REDIR_PEER;
		/*
		 * A reader that lags by more than the cap: this message still
		 * goes to the peer (the helper has set the target, so SK_PASS
		 * can no longer mean TCP), every later one over TCP, where flow
		 * control holds the sender. The reader takes its ingress queue
		 * before its TCP receive queue (tcp_bpf_recvmsg), so no byte
		 * is overtaken.
		 */
		if (st->state == GAMMAD_REDIR_PEER &&
		    (__u64)msg_redir_queued(msg) + md->size > sockmap_cap) {
			st->state = GAMMAD_REDIR_SLOW_READER;
			reason_inc(GAMMAD_R_REDIR_SLOW_READER);
		}
		return SK_PASS;
	}
	/* The rest of a message whose target has closed: nobody can read it. */
	if (pending)
		return SK_DROP;
	/*
	 * No peer. Before any redirect: TCP from now on. After redirects the
	 * peer has closed; TCP then delivers the reset the application expects.
	 */
	if (st && st->state == GAMMAD_REDIR_UNDECIDED)
		st->state = GAMMAD_REDIR_TCP;
	reason_inc(GAMMAD_R_REDIR_NO_PEER);
	return SK_PASS;
}
