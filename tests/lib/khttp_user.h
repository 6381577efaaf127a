/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel's HTTP parser and matcher (bpf/lib/khttp.h) built for
 * userspace, with its map lookups answered from an encoded image
 * (user/lib/khttp), and the check that a kernel verdict is what the
 * engine's parser (http/http1.h) and evaluator (translate_eval.h) say.
 * Used by tests/prog_tests/khttp_diff.c (beside the BPF build of the same
 * code) and by the fuzz target tests/fuzz/fuzz_khttp.c.
 */
#ifndef GAMMAD_TEST_KHTTP_USER_H
#define GAMMAD_TEST_KHTTP_USER_H

#include <stdbool.h>
#include <stddef.h>

#include "gammad/maps.h"
#include "khttp/khttp.h"

/* The table id the userspace lookups answer for. */
#define KHU_TAB 7

/* Answer map lookups of table KHU_TAB from img (NULL: no table). */
void khu_use(const struct kh_image *img);
/* kh_request() of bpf/lib/khttp.h, built for userspace. */
int khu_request(struct gammad_kh_scratch *s);
/*
 * The kernel's answer (bpf/lib/khttp_answer.h) to the LOCAL verdict in s,
 * built for userspace, into out: its length, or -1 (the engine's).
 */
int khu_answer(const struct gammad_kh_scratch *s, char *out, size_t cap);

/* struct kh_abuf of bpf/lib/khttp_answer.h (the test program's answer map). */
#define KHU_ANSWER_MAX 1024
struct khu_abuf {
	uint32_t n, fail;
	char b[KHU_ANSWER_MAX];
};
/* Fill s with a head (cut at GAMMAD_KH_HEAD_MAX), table KHU_TAB and the draws. */
void khu_scratch(struct gammad_kh_scratch *s, const char *head, size_t len, uint32_t d0,
		 uint32_t d1);

struct khu_stats {
	unsigned long served, local, engine, more, malformed;
	unsigned long resp_edits;	/* forwards whose response edits were compared */
	unsigned long reasons[GAMMAD_KH_R_SLOTS];	/* engine verdicts by reason */
};

/*
 * Does the verdict in s (for the head s->buf[0..s->len), table img of
 * class cls on Service port `port`) agree with h1_parse_request() and
 * ev_evaluate()? 0, or -1 with why filled.
 */
int khu_check(const struct tr_class *cls, const struct kh_image *img,
	      const struct gammad_kh_scratch *s, struct khu_stats *st, char *why, size_t len);

#endif
