// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel HTTP parser and matcher (bpf/lib/khttp.h) as a program
 * BPF_PROG_TEST_RUN can run: the test writes a head, a table id and two
 * random numbers into the scratch map, runs the program, and reads the
 * parse and the verdict back (tests/prog_tests/khttp_diff.c).
 */
#include "lib/khttp_maps.h"
#include "lib/khttp.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gammad_kh_scratch);
} kh_scratch SEC(".maps");

SEC("syscall")
int kh_run(void *ctx)
{
	struct gammad_kh_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&kh_scratch, &zero);
	if (!s)
		return -1;
	kh_request(s);
	kh_count(s->v.reason);
	return s->v.action;
}

/*
 * The same as kh_run as a tc program, whose test runs take `repeat` and
 * time it: the cost of a decision (the packet is ignored).
 */
SEC("tc")
int kh_time(struct __sk_buff *skb)
{
	struct gammad_kh_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&kh_scratch, &zero);
	if (!s)
		return -1;
	kh_request(s);
	return s->v.action;
}

/*
 * The same decision where it will run: an sk_msg program (the client
 * socket's side of issue 13). Not attached anywhere: the test loads it so
 * the verifier accepts the parser and matcher in this program type too,
 * with the head copied out of the message into a per-CPU scratch.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gammad_kh_scratch);
} kh_pcpu SEC(".maps");

const volatile __u32 kh_msg_tab = 0;

SEC("sk_msg")
int kh_msg(struct sk_msg_md *msg)
{
	struct gammad_kh_scratch *s;
	__u32 zero = 0, len = msg->size;
	void *data;

	s = bpf_map_lookup_elem(&kh_pcpu, &zero);
	if (!s)
		return SK_PASS;
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	if (bpf_msg_pull_data(msg, 0, len, 0))
		return SK_PASS;
	data = msg->data;
	if (bpf_probe_read_kernel(s->buf, len, data))
		return SK_PASS;
	s->len = len;
	s->tab = kh_msg_tab;
	s->draw[0] = bpf_get_prandom_u32();
	s->draw[1] = bpf_get_prandom_u32();
	kh_request(s);
	kh_count(s->v.reason);
	return SK_PASS;
}
