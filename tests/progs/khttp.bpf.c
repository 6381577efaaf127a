// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel HTTP parser and matcher (bpf/lib/khttp.h) as a program
 * BPF_PROG_TEST_RUN can run: the test writes a head, a table id and two
 * random numbers into the scratch map, runs the program, and reads the
 * parse and the verdict back (tests/prog_tests/khttp_diff.c).
 */
#include "khttp_test.h"
#include "lib/khttp_answer.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gammad_kh_scratch);
} kh_scratch SEC(".maps");

/* The kernel's answer to a LOCAL verdict (n 0: none, the engine's). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kh_abuf);
} kh_answer_out SEC(".maps");

/* The test's head, table and draws, decided. */
static __always_inline struct gammad_kh_scratch *kh_scratch_decide(void)
{
	__u32 zero = 0;
	struct gammad_kh_scratch *s = bpf_map_lookup_elem(&kh_scratch, &zero);

	if (s)
		kh_request(s);
	return s;
}

SEC("syscall")
int kh_run(void *ctx)
{
	struct gammad_kh_scratch *s = kh_scratch_decide();

	struct kh_abuf *a;
	__u32 zero = 0;

	if (!s)
		return -1;
	kh_count(s->v.reason);
	a = bpf_map_lookup_elem(&kh_answer_out, &zero);
	if (a) {
		a->n = 0;
		if (s->v.action == GAMMAD_KH_LOCAL && kh_answer(a, s) < 0)
			a->n = 0;
	}
	return s->v.action;
}

/*
 * The same as kh_run as a tc program, whose test runs take `repeat` and
 * time it: the cost of a decision (the packet is ignored).
 */
SEC("tc")
int kh_time(struct __sk_buff *skb)
{
	struct gammad_kh_scratch *s = kh_scratch_decide();

	return s ? s->v.action : -1;
}

/*
 * The same decision where it will run: an sk_msg program (the client
 * socket's side of issue 13). Not attached anywhere: the test loads it so
 * the verifier accepts the parser and matcher in this program type too,
 * with the head copied out of the message into a per-CPU scratch.
 */
const volatile __u32 kh_msg_tab = 0;

SEC("sk_msg")
int kh_msg(struct sk_msg_md *msg)
{
	kh_msg_decide(msg, kh_msg_tab);
	return SK_PASS;
}
