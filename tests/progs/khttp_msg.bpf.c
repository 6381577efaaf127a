// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel HTTP path's client side in miniature, for a socket-level test
 * (tests/prog_tests/khttp_msg.c): an sk_msg program on a sockhash parses and
 * matches each request the client writes (bpf/lib/khttp.h) against table
 * kh_tab, and a FORWARD is edited in the message (bpf/lib/khttp_msg.h) and
 * redirected to the egress of the upstream socket (key 1 of kh_socks): the
 * upstream's peer receives the request as the rule backend gets it. Anything
 * else passes unchanged (the test checks the verdict it recorded).
 */
#include "khttp_test.h"
#include "lib/khttp_msg.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} kh_socks SEC(".maps");

/* The last verdict, for the test. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gammad_kh_verdict);
} kh_last SEC(".maps");

const volatile __u32 kh_tab = 0;

SEC("sk_msg")
int kh_client(struct sk_msg_md *msg)
{
	struct gammad_kh_key key = { .tab = kh_tab };
	struct gammad_kh_scratch *s = kh_msg_decide(msg, kh_tab);
	struct gammad_kh_rb *rb;
	__u32 zero = 0, up = 1;
	int head;

	if (!s)
		return SK_PASS;
	bpf_map_update_elem(&kh_last, &zero, &s->v, BPF_ANY);
	if (s->v.action != GAMMAD_KH_FORWARD)
		return SK_PASS;
	key.idx = s->v.rb;
	rb = bpf_map_lookup_elem(&gammad_khrb_v1, &key);
	head = rb ? kh_msg_edit(msg, s, rb) : -1;
	if (head < 0)
		return SK_DROP;
	bpf_msg_apply_bytes(msg, head + s->req.content_length);
	return bpf_msg_redirect_hash(msg, &kh_socks, &up, 0);
}
