// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's response framing (bpf/lib/khttp_resp.h) as a program
 * BPF_PROG_TEST_RUN can run: the test writes the parser state of an
 * upstream (as the slot keeps it) into kh_resp_state, runs the program on
 * the next piece of the response stream, and reads the state back
 * (tests/prog_tests/khttp_resp.c), as gammad_kh_upstream does per skb.
 */
#include "lib/common.h"
#include "lib/khttp_resp.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kh_rscratch);
} kh_resp_state SEC(".maps");

/*
 * A cgroup_skb program: this kernel's test runs take no sk_skb program
 * (ENOTSUPP), and a cgroup_skb one sees the skb from the same offset (past
 * the link-layer header) through the same helpers.
 */
SEC("cgroup_skb/ingress")
int kh_resp_run(struct __sk_buff *skb)
{
	struct kh_rscratch *p;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&kh_resp_state, &zero);
	if (!p)
		return 1;
	if (!p->unframed && kh_resp_parse(skb, 0, p))
		p->unframed = 1;
	return 1;
}
