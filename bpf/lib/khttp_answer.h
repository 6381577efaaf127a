/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel's own answers to a LOCAL verdict of bpf/lib/khttp.h: 404, 500,
 * 503 and the redirects (301, 302, 303, 307, 308 with their Location), byte
 * for byte what the engine's local_reply() (user/lib/engine/engine_req.c)
 * writes for the same request. Like khttp.h it builds for userspace too
 * (tests/lib/khttp_user.c), so the differential test compares the bytes
 * the verifier accepted against the engine's format.
 *
 * The answer is built in a buffer of KH_ABUF_MAX bytes; one that does not
 * fit (a long Location) is the engine's: the kernel never cuts one short.
 */
#ifndef GAMMAD_BPF_KHTTP_ANSWER_H
#define GAMMAD_BPF_KHTTP_ANSWER_H

#include "khttp.h"

#define KH_ABUF_MAX	1024	/* an answer's bytes (power of 2) */
#define KH_ABUF_MASK	(KH_ABUF_MAX - 1)

struct kh_abuf {
	__u32 n;		/* bytes in b */
	__u32 fail;		/* something did not fit */
	char b[KH_ABUF_MAX];
};

/*
 * The fixed pieces of an answer, appended by index: a global function and a
 * table in .rodata keep the builder small (inlined copies of literals made
 * it spill past the stack limit).
 */
enum {
	KH_L_VERSION,		/* "HTTP/1.1 " */
	KH_L_LOCATION,
	KH_L_CRLF,
	KH_L_LENGTH,		/* Content-Type, then the name of Content-Length */
	KH_L_KEEP_ALIVE,
	KH_L_SLASH,
	KH_L_LF,
	KH_L_SP,
	KH_L_301, KH_L_302, KH_L_303, KH_L_307, KH_L_308, KH_L_404, KH_L_500, KH_L_503,
	KH_L_MAX,
};

struct kh_lit {
	char s[44];
	__u32 len;
};

#define KH_LIT(str) { str, sizeof(str) - 1 }

/* The phrases are the engine's reason_phrase(). */
static const struct kh_lit kh_lits[KH_L_MAX] = {
	[KH_L_VERSION] = KH_LIT("HTTP/1.1 "),
	[KH_L_LOCATION] = KH_LIT("Location: "),
	[KH_L_CRLF] = KH_LIT("\r\n"),
	[KH_L_LENGTH] = KH_LIT("Content-Type: text/plain\r\nContent-Length: "),
	[KH_L_KEEP_ALIVE] = KH_LIT("Connection: keep-alive\r\n"),
	[KH_L_SLASH] = KH_LIT("/"),
	[KH_L_LF] = KH_LIT("\n"),
	[KH_L_SP] = KH_LIT(" "),
	[KH_L_301] = KH_LIT("Moved Permanently"),
	[KH_L_302] = KH_LIT("Found"),
	[KH_L_303] = KH_LIT("See Other"),
	[KH_L_307] = KH_LIT("Temporary Redirect"),
	[KH_L_308] = KH_LIT("Permanent Redirect"),
	[KH_L_404] = KH_LIT("Not Found"),
	[KH_L_500] = KH_LIT("Internal Server Error"),
	[KH_L_503] = KH_LIT("Service Unavailable"),
};

/* Append piece id of kh_lits. */
KH_GLOBAL int kh_aput_lit(struct kh_abuf *a, __u32 id)
{
	const struct kh_lit *l;
	__u32 n, len;

	if (!a || id >= KH_L_MAX)
		return -1;
	l = &kh_lits[id];
	n = a->n;
	len = l->len;
	if (len > sizeof(l->s) || n + len > KH_ABUF_MAX) {
		a->fail = 1;
		return -1;
	}
	for (__u32 i = 0; i < sizeof(l->s); i++) {
		if (i >= len)
			break;
		a->b[(n + i) & KH_ABUF_MASK] = l->s[i];
	}
	a->n = n + len;
	return 0;
}

/* Append v (< 1000) as nd decimal digits. */
KH_GLOBAL int kh_aput_dec(struct kh_abuf *a, __u32 v, __u32 nd)
{
	__u32 n;

	if (!a || nd > 3)
		return -1;
	n = a->n;
	if (n + nd > KH_ABUF_MAX) {
		a->fail = 1;
		return -1;
	}
	for (__u32 i = 0; i < 3; i++) {
		if (i >= nd)
			break;
		a->b[(n + nd - 1 - i) & KH_ABUF_MASK] = '0' + v % 10;
		v /= 10;
	}
	a->n = n + nd;
	return 0;
}

/* Append s->buf[off..off+len): a piece of the request. */
KH_GLOBAL int kh_aput_req(struct kh_abuf *a, const struct gammad_kh_scratch *s, __u32 off,
			  __u32 len)
{
	__u32 n;

	if (!a || !s)
		return -1;
	n = a->n;
	if (len > KH_ABUF_MAX || n + len > KH_ABUF_MAX) {
		a->fail = 1;
		return -1;
	}
	for (__u32 i = 0; i < KH_ABUF_MAX; i++) {
		if (i >= len)
			break;
		a->b[(n + i) & KH_ABUF_MASK] = s->buf[(off + i) & KH_BUF_MASK];
	}
	a->n = n + len;
	return 0;
}

/* Append a string of the table. */
KH_GLOBAL int kh_aput_str(struct kh_abuf *a, const struct gammad_kh_str *str)
{
	__u32 n, len;

	if (!a || !str)
		return -1;
	n = a->n;
	len = str->len;
	if (len > GAMMAD_KH_STR_MAX || n + len > KH_ABUF_MAX) {
		a->fail = 1;
		return -1;
	}
	for (__u32 i = 0; i < GAMMAD_KH_STR_MAX; i++) {
		if (i >= len)
			break;
		a->b[(n + i) & KH_ABUF_MASK] = str->s[i];
	}
	a->n = n + len;
	return 0;
}

/*
 * The Location of a redirect rule r for the request in s (build_redirect()
 * of the evaluator): the rule's "scheme://hostname", the request's host when
 * the rule names none, ":port" unless the scheme's own, then the target as
 * the rule's path rewrite leaves it (s->v.rw_*), its query kept.
 */
static __always_inline void kh_aput_location(struct kh_abuf *a, const struct gammad_kh_scratch *s,
					     const struct gammad_kh_rule *r)
{
	__u32 cut = s->v.rw_kind ? s->v.rw_cut : 0;

	kh_aput_str(a, &r->loc_prefix);
	if (r->flags & GAMMAD_KH_RULE_REQ_HOST)
		kh_aput_req(a, s, s->v.host_off, s->v.host_len);
	kh_aput_str(a, &r->loc_port);
	if (s->v.rw_kind == 1)
		kh_aput_str(a, &r->path.value);
	else if (s->v.rw_kind == 2)
		kh_aput_lit(a, KH_L_SLASH);
	if (cut > s->req.target_len) {
		a->fail = 1;
		return;
	}
	kh_aput_req(a, s, s->req.target_off + cut, s->req.target_len - cut);
}

/*
 * The answer to the LOCAL verdict in s (against table s->tab) into a: its length, or -1 when the kernel cannot write it as
 * the engine would (another status, too long). As local_reply(): status
 * line, Location, Content-Type and Content-Length of the text body
 * "<status> <reason>\n", Connection: keep-alive for HTTP/1.0, the body
 * unless the method is HEAD.
 */
KH_GLOBAL int kh_answer(struct kh_abuf *a, const struct gammad_kh_scratch *s)
{
	struct gammad_kh_key key = {};
	const struct gammad_kh_rule *r;
	__u32 st, blen, head, phrase;

	if (!a || !s)
		return -1;
	a->n = 0;
	a->fail = 0;
	st = s->v.status;
	switch (st) {
	case 301: phrase = KH_L_301; break;
	case 302: phrase = KH_L_302; break;
	case 303: phrase = KH_L_303; break;
	case 307: phrase = KH_L_307; break;
	case 308: phrase = KH_L_308; break;
	case 404: phrase = KH_L_404; break;
	case 500: phrase = KH_L_500; break;
	case 503: phrase = KH_L_503; break;
	default: return -1;
	}
	kh_aput_lit(a, KH_L_VERSION);
	kh_aput_dec(a, st, 3);
	kh_aput_lit(a, KH_L_SP);
	kh_aput_lit(a, phrase);
	kh_aput_lit(a, KH_L_CRLF);
	if (st < 400) {
		key.tab = s->tab;
		key.idx = s->v.rule;
		r = KH_LOOKUP(gammad_khrul_v1, &key);
		if (!r || r->kind != GAMMAD_KH_RULE_REDIRECT)
			return -1;
		kh_aput_lit(a, KH_L_LOCATION);
		kh_aput_location(a, s, r);
		kh_aput_lit(a, KH_L_CRLF);
	}
	/* the body: "<status> <phrase>\n", 10..99 bytes */
	blen = 3 + 1 + kh_lits[phrase & 15].len + 1;
	kh_aput_lit(a, KH_L_LENGTH);
	kh_aput_dec(a, blen, 2);
	kh_aput_lit(a, KH_L_CRLF);
	if (!s->req.minor)
		kh_aput_lit(a, KH_L_KEEP_ALIVE);
	kh_aput_lit(a, KH_L_CRLF);
	head = s->req.method_len == 4 && s->buf[0] == 'H' && s->buf[1] == 'E' &&
	       s->buf[2] == 'A' && s->buf[3] == 'D';
	if (!head) {
		kh_aput_dec(a, st, 3);
		kh_aput_lit(a, KH_L_SP);
		kh_aput_lit(a, phrase);
		kh_aput_lit(a, KH_L_LF);
	}
	if (a->fail || !a->n || a->n > KH_ABUF_MAX)
		return -1;
	return a->n;
}

#endif
