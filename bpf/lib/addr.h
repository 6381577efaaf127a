/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Address helpers. Maps hold addresses as 16 bytes (IPv4 in the first 4);
 * contexts hold them as __u32 words in network order. Context fields must be
 * read and written as whole __u32 (narrow or byte access to user_ip6 is
 * rejected or rewritten by the verifier), so copies go word by word.
 */
#ifndef GAMMAD_BPF_ADDR_H
#define GAMMAD_BPF_ADDR_H

#include "lib/common.h"

static __always_inline void addr_from_ip4(__u8 addr[16], __u32 ip4)
{
	__u32 *w = (__u32 *)addr;

	w[0] = ip4;
	w[1] = 0;
	w[2] = 0;
	w[3] = 0;
}

static __always_inline __u32 addr_ip4(const __u8 addr[16])
{
	return *(const __u32 *)addr;
}

/* words[4] read from a context (user_ip6, local_ip6, ...). */
static __always_inline void addr_from_ip6(__u8 addr[16], __u32 w0, __u32 w1,
					  __u32 w2, __u32 w3)
{
	__u32 *w = (__u32 *)addr;

	w[0] = w0;
	w[1] = w1;
	w[2] = w2;
	w[3] = w3;
}

/* ::ffff:a.b.c.d, what a dual-stack IPv6 socket uses for IPv4 peers. */
static __always_inline bool ip6_is_v4mapped(__u32 w0, __u32 w1, __u32 w2)
{
	return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff);
}

static __always_inline bool addr_eq(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline void addr_copy(__u8 dst[16], const __u8 src[16])
{
	__u32 *d = (__u32 *)dst;
	const __u32 *s = (const __u32 *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
}

#endif
