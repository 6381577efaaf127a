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
