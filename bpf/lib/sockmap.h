/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Same-node socket redirect: keys of the sockhash and the local-endpoint
 * test. sockops and sk_msg contexts both carry the 4-tuple with the same
 * byte orders: local_port in host order, remote_port in network order in
 * the upper 16 bits of the __u32 on little-endian (bpf_ntohl() gives the
 * host-order port). Getting this wrong fails silently: no redirect, TCP.
 */
#ifndef GAMMAD_BPF_SOCKMAP_H
#define GAMMAD_BPF_SOCKMAP_H

#include <bpf/bpf_core_read.h>

#include "lib/addr.h"
#include "lib/maps.h"

/* Inlined by the verifier: a read-only view of any kernel object. */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym;

static __always_inline __be16 ctx_local_port(__u32 local_port)
{
	return bpf_htons((__u16)local_port);
}

static __always_inline __be16 ctx_remote_port(__u32 remote_port)
{
	return bpf_htons((__u16)bpf_ntohl(remote_port));
}

static __always_inline bool is_local_endpoint(const __u8 addr[16], __u8 family)
{
	struct gammad_lep_key k = { .family = family };

	addr_copy(k.addr, addr);
	return bpf_map_lookup_elem(&gammad_lep_v1, &k) != NULL;
}

/*
 * A dual-stack socket ([::] listener, or AF_INET6 client of an IPv4
 * address) talks IPv4 under ::ffff:a.b.c.d. Key it as the IPv4 socket it
 * is, so it meets its IPv4 peer in the sockhash and the local endpoints.
 */
static __always_inline void sock_key_unmap_v4(struct gammad_sock_key *key)
{
	const __u32 *l = (const __u32 *)key->local, *r = (const __u32 *)key->remote;
	__u32 l4 = l[3], r4 = r[3];

	if (!ip6_is_v4mapped(l[0], l[1], l[2]) || !ip6_is_v4mapped(r[0], r[1], r[2]))
		return;
	key->family = AF_INET;
	addr_from_ip4(key->local, l4);
	addr_from_ip4(key->remote, r4);
}

/*
 * Context fields are read with volatile loads: otherwise clang merges the
 * IPv4 and IPv6 branches into one load through a computed ctx pointer,
 * which the verifier rejects ("dereference of modified ctx ptr").
 */
#define CTX_READ(field) (*(volatile __u32 *)&(field))

/* Fill the key of the socket described by a sockops or sk_msg context. */
#define SOCK_KEY_FROM_CTX(key, ctx) ({						\
	__u32 ___family = CTX_READ((ctx)->family);				\
	bool ___ok = true;							\
	(key)->family = ___family;						\
	(key)->local_port = ctx_local_port(CTX_READ((ctx)->local_port));	\
	(key)->remote_port = ctx_remote_port(CTX_READ((ctx)->remote_port));	\
	if (___family == AF_INET) {						\
		addr_from_ip4((key)->local, CTX_READ((ctx)->local_ip4));	\
		addr_from_ip4((key)->remote, CTX_READ((ctx)->remote_ip4));	\
	} else if (___family == AF_INET6) {					\
		addr_from_ip6((key)->local, CTX_READ((ctx)->local_ip6[0]),	\
			      CTX_READ((ctx)->local_ip6[1]),			\
			      CTX_READ((ctx)->local_ip6[2]),			\
			      CTX_READ((ctx)->local_ip6[3]));			\
		addr_from_ip6((key)->remote, CTX_READ((ctx)->remote_ip6[0]),	\
			      CTX_READ((ctx)->remote_ip6[1]),			\
			      CTX_READ((ctx)->remote_ip6[2]),			\
			      CTX_READ((ctx)->remote_ip6[3]));			\
		sock_key_unmap_v4(key);						\
	} else {								\
		___ok = false;							\
	}									\
	___ok;									\
})

/* The key under which the other end of a connection is stored. */
static __always_inline void sock_key_peer(struct gammad_sock_key *peer,
					  const struct gammad_sock_key *self)
{
	addr_copy(peer->local, self->remote);
	addr_copy(peer->remote, self->local);
	peer->local_port = self->remote_port;
	peer->remote_port = self->local_port;
	peer->family = self->family;
}

/*
 * The kernel's struct sk_msg behind an sk_msg program's context (the
 * context fields are rewritten to its offsets; this reads the rest).
 */
static __always_inline struct sk_msg *msg_kern(struct sk_msg_md *md)
{
	return bpf_rdonly_cast(md, bpf_core_type_id_kernel(struct sk_msg));
}

/*
 * This run is on the rest of a message that an earlier run redirected with
 * apply_bytes (a program that needs to tell sets it on every redirect):
 * the peer's ingress took only part of it (its socket memory refused more:
 * __sk_rmem_schedule in bpf_tcp_ingress), or apply_bytes stopped before
 * the message's end. The kernel zeroes a fresh message (sk_msg_init) and
 * runs the program again on the same one, keeping what a run set in it.
 * Not msg->sk_redir: 6.18 clears it by then (msg->flags and apply_bytes
 * stay), so it cannot tell. A program that passes or redirects such a rest
 * sets apply_bytes again: the stale one could be larger than the rest,
 * and its remainder would carry the verdict over the next message
 * without a run.
 */
static __always_inline bool msg_rerun(struct sk_msg_md *md)
{
	return msg_kern(md)->apply_bytes != 0;
}

/*
 * Bytes queued at the socket a redirect helper just picked (msg->sk_redir,
 * set by bpf_msg_redirect_hash; the sockhash holds it, and the program runs
 * under RCU). bpf_tcp_ingress charges what it queues on the peer's
 * ingress_msg to the peer's sk_rmem_alloc (as TCP charges its receive
 * queue) and sk_msg_recvmsg uncharges what the reader takes, so this is
 * exactly what the reader has not read yet: what `ss -tm` shows as skmem r.
 */
static __always_inline __u32 msg_redir_queued(const struct sk_msg *msg)
{
	struct sock *peer = msg->sk_redir;
	int queued;

	if (!peer)
		return 0;
	queued = peer->sk_backlog.rmem_alloc.counter;
	return queued > 0 ? queued : 0;
}

#endif
