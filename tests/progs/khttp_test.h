/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the kernel HTTP test programs (khttp.bpf.c, khttp_msg.bpf.c) share:
 * an sk_msg program's decision on the request it is given, with the head
 * copied out of the message into a per-CPU scratch, as the client socket's
 * program of issue 13 will take it.
 */
#ifndef GAMMAD_TEST_KHTTP_H
#define GAMMAD_TEST_KHTTP_H

#include "lib/khttp_maps.h"
#include "lib/khttp.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gammad_kh_scratch);
} kh_pcpu SEC(".maps");

/*
 * Parse and match the head of msg (up to GAMMAD_KH_HEAD_MAX bytes) against
 * table tab with fresh random draws, counted; the scratch holding the
 * parse and the verdict, or NULL when the head could not be read.
 */
static __always_inline struct gammad_kh_scratch *kh_msg_decide(struct sk_msg_md *msg, __u32 tab)
{
	struct gammad_kh_scratch *s;
	__u32 zero = 0, len = msg->size;

	s = bpf_map_lookup_elem(&kh_pcpu, &zero);
	if (!s)
		return NULL;
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	if (bpf_msg_pull_data(msg, 0, len, 0))
		return NULL;
	if (bpf_probe_read_kernel(s->buf, len, (void *)(long)msg->data))
		return NULL;
	s->len = len;
	s->tab = tab;
	s->draw[0] = bpf_get_prandom_u32();
	s->draw[1] = bpf_get_prandom_u32();
	kh_request(s);
	kh_count(s->v.reason);
	return s;
}

#endif
