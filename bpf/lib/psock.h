/* SPDX-License-Identifier: Apache-2.0 */
/* Read-only views of a socket's sockmap state (bpf_rdonly_cast, BTF). */
#ifndef GAMMAD_BPF_PSOCK_H
#define GAMMAD_BPF_PSOCK_H

#include <bpf/bpf_core_read.h>

/* Inlined by the verifier: a read-only view of any kernel object. */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym;

/* The psock of a socket in a sockmap (read-only), or NULL. */
static __always_inline struct sk_psock *kh_psock(const struct sock *sk)
{
	/* sk_user_data carries flag bits below the psock pointer (SK_USER_DATA_*) */
	__u64 ud = (__u64)sk->sk_user_data & ~7ULL;

	if (!ud)
		return NULL;
	return bpf_rdonly_cast((void *)ud, bpf_core_type_id_kernel(struct sk_psock));
}

#endif
