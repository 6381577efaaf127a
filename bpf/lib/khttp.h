/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 in the kernel: the request head parser and the rule matcher
 * (issue 13). The same source compiles for BPF and, through a shim
 * (tests/lib/khttp_user.c: map lookups over an encoded image, bpf_loop as a
 * loop), for userspace, so the fuzzer and the differential test run the
 * code the verifier accepted.
 *
 * What it must agree with: a request the parser accepts is one
 * user/lib/http's h1_parse_request() accepts, with the same method, target,
 * fields (trimmed values) and Content-Length; a request it calls malformed
 * is one h1_parse_request() refuses; everything else it does not handle
 * exactly (limits, chunked bodies, Expect, Upgrade, CONNECT, other target
 * forms) goes to the engine with a reason. A verdict on an accepted request
 * is what ev_evaluate() says for the table (translate_eval.h).
 *
 * Verifier shape: the head is scanned byte by byte in a bpf_loop callback
 * (verified once, state in the scratch map value, not in registers), the
 * rest are global functions (verified once each, not per call site) with
 * loops bounded by the limits of include/gammad/maps.h. Every index into
 * the scratch is masked by a power of two.
 *
 * The includer provides KH_LOOKUP(map, key) for the maps gammad_khtab_v1,
 * gammad_khent_v1, gammad_khrul_v1, gammad_khrb_v1 and gammad_khal_v1.
 */
#ifndef GAMMAD_BPF_KHTTP_H
#define GAMMAD_BPF_KHTTP_H

#ifndef GAMMAD_KH_USER
#include "lib/common.h"
#define KH_GLOBAL __attribute__((noinline))
#else
#define KH_GLOBAL
#endif

#define KH_BUF_MASK	(GAMMAD_KH_HEAD_MAX - 1)
#define KH_STR_MASK	(GAMMAD_KH_STR_MAX - 1)
#define KH_FIELD_MASK	(GAMMAD_KH_FIELDS_MAX - 1)
#define KH_QUERY_MASK	(GAMMAD_KH_QUERY_MAX - 1)

_Static_assert((GAMMAD_KH_HEAD_MAX & KH_BUF_MASK) == 0, "head max: power of 2");
_Static_assert((GAMMAD_KH_STR_MAX & KH_STR_MASK) == 0, "str max: power of 2");
_Static_assert((GAMMAD_KH_FIELDS_MAX & KH_FIELD_MASK) == 0, "fields max: power of 2");
_Static_assert((GAMMAD_KH_QUERY_MAX & KH_QUERY_MASK) == 0, "query max: power of 2");
_Static_assert(GAMMAD_KH_FIELDS_MAX <= 32, "remove_mask and tab_mask are 32 bits");
_Static_assert(GAMMAD_KH_HEAD_MAX <= 0xffff, "offsets are 16 bits");

/* Parser states. */
enum {
	KH_P_METHOD = 0,	/* request line: the method */
	KH_P_TARGET0,		/* first byte of the target */
	KH_P_TARGET,
	KH_P_VERSION,		/* "HTTP/1.x" */
	KH_P_RL_LF,		/* LF after the request line's CR */
	KH_P_LINE,		/* start of a field line, or the empty line */
	KH_P_NAME,
	KH_P_OWS,		/* after the colon */
	KH_P_VALUE,
	KH_P_LF,		/* LF after a field line's CR */
	KH_P_END_LF,		/* LF of the empty line */
	KH_P_DONE,
	KH_P_STATUS,		/* a response's status line (kh_parse_fields): to its CR */
};

/* Parser state, kept in scratch->st (the callback has no registers to keep). */
struct kh_pstate {
	__u32 state;
	__u32 mark;		/* start of the method's successor, name, query item */
	__u32 vstart, vend;	/* value: first and last+1 non-OWS byte */
	__u32 hash;		/* field name hash so far */
	__u32 tab_mask;		/* fields with an HTAB after the colon */
	__u32 stop;		/* 0: running; else enum gammad_kh_reason + 1 */
	__u32 flags;		/* KH_PF_* */
};

#define KH_PF_QUERY	(1u << 0)	/* the target has a '?' */
#define KH_PF_QFULL	(1u << 1)	/* more query items than GAMMAD_KH_QUERY_MAX */
#define KH_PF_TAB	(1u << 2)	/* this field line has an HTAB after its colon */

_Static_assert(sizeof(struct kh_pstate) <= sizeof(((struct gammad_kh_scratch *)0)->st),
	       "kh_pstate fits scratch->st");

/* tchar of RFC 9110 5.6.2, as user/lib/http/http1_int.h. */
static __always_inline int kh_tchar(__u8 c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
	case '+': case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	}
	return 0;
}

static __always_inline __u8 kh_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

static __always_inline long kh_stop(struct kh_pstate *p, __u32 reason)
{
	p->stop = reason + 1;
	return 1;
}

/* A query item [mark, pos) of the target ends. */
static __always_inline void kh_query_item(struct gammad_kh_scratch *s, struct kh_pstate *p,
					  __u32 pos)
{
	__u32 n = s->req.nr_query;

	if (n >= GAMMAD_KH_QUERY_MAX) {
		p->flags |= KH_PF_QFULL;
		return;
	}
	s->req.query[n & KH_QUERY_MASK].off = p->mark;
	s->req.query[n & KH_QUERY_MASK].len = pos - p->mark;
	s->req.nr_query = n + 1;
}

/* A field line ends at pos (its CR). */
static __always_inline void kh_field_end(struct gammad_kh_scratch *s, struct kh_pstate *p,
					 __u32 pos)
{
	__u32 n = s->req.nr_fields & KH_FIELD_MASK;
	struct gammad_kh_field *f = &s->req.fields[n];
	__u32 vstart = p->vstart ? p->vstart : pos;
	__u32 vend = p->vend > vstart ? p->vend : vstart;

	f->value_off = vstart;
	f->value_len = vend - vstart;
	if (p->flags & KH_PF_TAB)
		p->tab_mask |= 1u << n;
	s->req.nr_fields = n + 1;
}

/* One byte of the head: 0 to go on, 1 when the head ended or the scan stopped. */
static __always_inline long kh_parse_byte(struct gammad_kh_scratch *s, struct kh_pstate *p,
					  __u32 pos)
{
	__u8 c = s->buf[pos & KH_BUF_MASK];
	__u32 k;

	switch (p->state) {
	case KH_P_METHOD:
		if (kh_tchar(c))
			return 0;
		if (c == ' ' && pos) {
			if (pos >= GAMMAD_KH_METHOD_MAX)
				return kh_stop(p, GAMMAD_KH_R_METHOD);
			s->req.method_len = pos;
			s->req.target_off = pos + 1;
			p->state = KH_P_TARGET0;
			return 0;
		}
		if (!pos && (c == '\r' || c == '\n'))
			return kh_stop(p, GAMMAD_KH_R_LEADING_CRLF);
		return kh_stop(p, GAMMAD_KH_R_MALFORMED);
	case KH_P_TARGET0:
		if (c == '/') {
			p->state = KH_P_TARGET;
			return 0;
		}
		if (c <= 0x20 || c == 0x7f)
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		/* HTTP/2 is the engine's either way; the reason says which protocol came */
		if (c == '*' && s->req.method_len == 3 && s->buf[0] == 'P' && s->buf[1] == 'R' &&
		    s->buf[2] == 'I')
			return kh_stop(p, GAMMAD_KH_R_H2_PRIOR);
		return kh_stop(p, GAMMAD_KH_R_TARGET_FORM);
	case KH_P_TARGET:
		if (c == ' ') {
			s->req.target_len = pos - s->req.target_off;
			if (p->flags & KH_PF_QUERY)
				kh_query_item(s, p, pos);
			else
				s->req.path_len = s->req.target_len;
			p->mark = pos + 1;
			p->state = KH_P_VERSION;
			return 0;
		}
		if (c < 0x20 || c == 0x7f)
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		if (c == '?' && !(p->flags & KH_PF_QUERY)) {
			p->flags |= KH_PF_QUERY;
			s->req.path_len = pos - s->req.target_off;
			p->mark = pos + 1;
		} else if (c == '&' && (p->flags & KH_PF_QUERY)) {
			kh_query_item(s, p, pos);
			p->mark = pos + 1;
		}
		return 0;
	case KH_P_VERSION:
		k = pos - p->mark;
		if (k < 7 && c == "HTTP/1."[k & 7])
			return 0;
		if (k == 7 && (c == '0' || c == '1')) {
			s->req.minor = c - '0';
			return 0;
		}
		if (k == 8 && c == '\r') {
			p->state = KH_P_RL_LF;
			return 0;
		}
		return kh_stop(p, GAMMAD_KH_R_MALFORMED);
	case KH_P_STATUS:
		/* the framing parser reads it (khttp_resp.h); here only where it ends */
		if (c == '\r')
			p->state = KH_P_RL_LF;
		else if (c == '\n')
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		return 0;
	case KH_P_RL_LF:
	case KH_P_LF:
		if (c != '\n')
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		p->state = KH_P_LINE;
		return 0;
	case KH_P_LINE:
		if (c == '\r') {
			p->state = KH_P_END_LF;
			return 0;
		}
		if (!kh_tchar(c))
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		if (s->req.nr_fields >= GAMMAD_KH_FIELDS_MAX)
			return kh_stop(p, GAMMAD_KH_R_FIELDS);
		p->mark = pos;
		p->hash = gammad_kh_hash_byte(GAMMAD_KH_HASH_INIT, c);
		p->state = KH_P_NAME;
		return 0;
	case KH_P_NAME:
		if (kh_tchar(c)) {
			p->hash = gammad_kh_hash_byte(p->hash, c);
			return 0;
		}
		if (c != ':')
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		k = s->req.nr_fields & KH_FIELD_MASK;
		s->req.fields[k].name_off = p->mark;
		s->req.fields[k].name_len = pos - p->mark;
		s->req.fields[k].name_hash = p->hash;
		p->vstart = p->vend = 0;
		p->flags &= ~KH_PF_TAB;
		p->state = KH_P_OWS;
		return 0;
	case KH_P_OWS:
	case KH_P_VALUE:
		if (c == '\r') {
			kh_field_end(s, p, pos);
			p->state = KH_P_LF;
			return 0;
		}
		if (c == '\t') {
			p->flags |= KH_PF_TAB;
			return 0;
		}
		if (c == ' ')
			return 0;
		if (c < 0x20 || c == 0x7f)
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		if (p->state == KH_P_OWS) {
			p->vstart = pos;
			p->state = KH_P_VALUE;
		}
		p->vend = pos + 1;
		return 0;
	case KH_P_END_LF:
		if (c != '\n')
			return kh_stop(p, GAMMAD_KH_R_MALFORMED);
		s->req.head_len = pos + 1;
		p->state = KH_P_DONE;
		return 1;
	}
	return 1;
}

/*
 * KH_CHUNK bytes of the head per bpf_loop callback: the call is paid once
 * per chunk, and the state stays in the scratch (the verifier sees one
 * unknown state per byte, not every sequence of states).
 */
#define KH_CHUNK	32

static long kh_parse_chunk(__u64 i, void *ctx)
{
	struct gammad_kh_scratch *s = *(struct gammad_kh_scratch **)ctx;
	struct kh_pstate *p = (struct kh_pstate *)s->st;
	__u32 base = (__u32)i * KH_CHUNK, len = s->len;

	for (__u32 j = 0; j < KH_CHUNK; j++) {
		__u32 pos = base + j;
		__u8 c;

		if (pos >= len)
			return 1;
		/*
		 * A field value's visible byte, what most of a head is made
		 * of: what kh_parse_byte does with it (the value's end moves
		 * on), without its dispatch on the state.
		 */
		c = s->buf[pos & KH_BUF_MASK];
		if (c > 0x20 && c != 0x7f && p->state == KH_P_VALUE) {
			p->vend = pos + 1;
			continue;
		}
		if (kh_parse_byte(s, p, pos))
			return 1;
	}
	return 0;
}

/* Is field f named lit (lowercase, n bytes)? */
static __always_inline int kh_name_is(const struct gammad_kh_scratch *s,
				      const struct gammad_kh_field *f, const char *lit, __u32 n)
{
	if (f->name_len != n)
		return 0;
	for (__u32 i = 0; i < 17 && i < n; i++)
		if (kh_lower(s->buf[(f->name_off + i) & KH_BUF_MASK]) != (__u8)lit[i])
			return 0;
	return 1;
}

enum {
	KH_F_OTHER = 0,
	KH_F_LENGTH,
	KH_F_ENCODING,
	KH_F_HOST,
	KH_F_EXPECT,
	KH_F_UPGRADE,
};

/* Which of the fields that frame or steer a request field i is. */
KH_GLOBAL int kh_field_kind(const struct gammad_kh_scratch *s, __u32 i)
{
	const struct gammad_kh_field *f;

	if (!s)
		return KH_F_OTHER;
	f = &s->req.fields[i & KH_FIELD_MASK];
	if (kh_name_is(s, f, "content-length", 14))
		return KH_F_LENGTH;
	if (kh_name_is(s, f, "transfer-encoding", 17))
		return KH_F_ENCODING;
	if (kh_name_is(s, f, "host", 4))
		return KH_F_HOST;
	if (kh_name_is(s, f, "expect", 6))
		return KH_F_EXPECT;
	if (kh_name_is(s, f, "upgrade", 7))
		return KH_F_UPGRADE;
	return KH_F_OTHER;
}

/* Field i as a Content-Length into s->req: 0 or the reason it is none. */
KH_GLOBAL int kh_length(struct gammad_kh_scratch *s, __u32 i)
{
	const struct gammad_kh_field *f;
	__u64 n = 0;

	if (!s)
		return GAMMAD_KH_R_MALFORMED;
	f = &s->req.fields[i & KH_FIELD_MASK];
	if (!f->value_len)
		return GAMMAD_KH_R_MALFORMED;
	/* 18 digits stay below the parser's 2^62; more: the engine decides */
	if (f->value_len > 18)
		return GAMMAD_KH_R_LENGTH;
	for (__u32 j = 0; j < 18; j++) {
		__u8 c;

		if (j >= f->value_len)
			break;
		c = s->buf[(f->value_off + j) & KH_BUF_MASK];
		if (c < '0' || c > '9')
			return GAMMAD_KH_R_MALFORMED;
		n = n * 10 + (c - '0');
	}
	s->req.content_length = n;
	return 0;
}

/*
 * What the fields mean, as h1_request_semantics(): 0, or the reason the
 * kernel does not go on. One Content-Length without HTAB, no
 * Transfer-Encoding, one Host (none only on HTTP/1.0), no Expect, no
 * Upgrade, no CONNECT.
 */
KH_GLOBAL int kh_semantics(struct gammad_kh_scratch *s, __u32 tab_mask)
{
	__u32 nr, cl = 0, hosts = 0;
	int ret;

	if (!s)
		return GAMMAD_KH_R_MALFORMED;
	nr = s->req.nr_fields;
	for (__u32 i = 0; i < GAMMAD_KH_FIELDS_MAX; i++) {
		if (i >= nr)
			break;
		switch (kh_field_kind(s, i)) {
		case KH_F_LENGTH:
			if (cl++ || (tab_mask & (1u << i)))
				return GAMMAD_KH_R_MALFORMED;
			ret = kh_length(s, i);
			if (ret)
				return ret;
			break;
		case KH_F_ENCODING:
			return GAMMAD_KH_R_CHUNKED;
		case KH_F_HOST:
			if (hosts++)
				return GAMMAD_KH_R_MALFORMED;
			s->req.host = i + 1;
			break;
		case KH_F_EXPECT:
			return GAMMAD_KH_R_EXPECT;
		case KH_F_UPGRADE:
			return GAMMAD_KH_R_UPGRADE;
		}
	}
	if (s->req.minor == 1 && !hosts)
		return GAMMAD_KH_R_MALFORMED;
	if (s->req.method_len == 7 && s->buf[0] == 'C' && s->buf[1] == 'O' && s->buf[2] == 'N' &&
	    s->buf[3] == 'N' && s->buf[4] == 'E' && s->buf[5] == 'C' && s->buf[6] == 'T')
		return GAMMAD_KH_R_METHOD;
	return 0;
}

static __always_inline void kh_verdict(struct gammad_kh_scratch *s, __u32 action, __u32 reason)
{
	s->v.action = action;
	s->v.reason = reason;
}

/* The head in s->buf[0..s->len) scanned from state: the parser's state after it. */
static __always_inline struct kh_pstate *kh_scan(struct gammad_kh_scratch *s, __u32 state)
{
	struct kh_pstate *p = (struct kh_pstate *)s->st;
	__u32 len;

	__builtin_memset(p, 0, sizeof(*p));
	/*
	 * Not fields[] and query[] (456 of the 472 bytes): they are written
	 * as the scan finds them and read only below nr_fields and nr_query.
	 */
	__builtin_memset(&s->req, 0, offsetof(struct gammad_kh_req, fields));
	__builtin_memset(&s->v, 0, sizeof(s->v));
	p->state = state;
	len = s->len;
	if (len > GAMMAD_KH_HEAD_MAX)
		s->len = len = GAMMAD_KH_HEAD_MAX;
	bpf_loop((len + KH_CHUNK - 1) / KH_CHUNK, kh_parse_chunk, &s, 0);
	return p;
}

/*
 * The field lines of a response head in s->buf[0..s->len) (its status
 * line skipped), with the request's rules for them (tchar names, CRLF,
 * no CTL in values): 0 when the head is complete (s->req.fields,
 * nr_fields, head_len), 1 when more bytes may complete it, -1 when the
 * kernel cannot tell its fields (malformed, more than
 * GAMMAD_KH_FIELDS_MAX, longer than GAMMAD_KH_HEAD_MAX). For the
 * response edits (GAMMAD_KH_RB_RESP): the same fields, masks and edits
 * as a request's.
 */
KH_GLOBAL int kh_parse_fields(struct gammad_kh_scratch *s)
{
	struct kh_pstate *p;

	if (!s)
		return -1;
	p = kh_scan(s, KH_P_STATUS);
	if (p->stop)
		return -1;
	if (p->state != KH_P_DONE)
		return s->len >= GAMMAD_KH_HEAD_MAX ? -1 : 1;
	return 0;
}

/*
 * Parse the head in s->buf[0..s->len): 0 when complete and understood
 * (s->req filled), else s->v says what to do (MORE or ENGINE).
 */
KH_GLOBAL int kh_parse(struct gammad_kh_scratch *s)
{
	struct kh_pstate *p;
	__u32 reason;

	if (!s)
		return -1;
	p = kh_scan(s, KH_P_METHOD);
	if (p->stop) {
		kh_verdict(s, GAMMAD_KH_ENGINE, p->stop - 1);
		return -1;
	}
	if (p->state != KH_P_DONE) {
		if (s->len >= GAMMAD_KH_HEAD_MAX)
			kh_verdict(s, GAMMAD_KH_ENGINE, GAMMAD_KH_R_HEAD_TOO_LARGE);
		else
			kh_verdict(s, GAMMAD_KH_MORE, GAMMAD_KH_R_MORE);
		return -1;
	}
	if (p->flags & KH_PF_QFULL)
		s->req.flags |= GAMMAD_KH_REQ_QUERY_FULL;
	reason = kh_semantics(s, p->tab_mask);
	if (reason) {
		kh_verdict(s, GAMMAD_KH_ENGINE, reason);
		return -1;
	}
	return 0;
}

/* ---- matching ------------------------------------------------------------ */

/* s->buf[off..off+str->len) == str (ASCII case folded when icase). */
KH_GLOBAL int kh_buf_eq(const struct gammad_kh_scratch *s, __u32 off,
			const struct gammad_kh_str *str, int icase)
{
	__u32 n;

	if (!s || !str)
		return 0;
	n = str->len;
	for (__u32 i = 0; i < GAMMAD_KH_STR_MAX; i++) {
		__u8 a, b;

		if (i >= n)
			break;
		a = s->buf[(off + i) & KH_BUF_MASK];
		b = str->s[i];
		if (icase) {
			a = kh_lower(a);
			b = kh_lower(b);
		}
		if (a != b)
			return 0;
	}
	return 1;
}

/* Index of the first field named name (any case), or -1. */
KH_GLOBAL int kh_field_get(const struct gammad_kh_scratch *s, const struct gammad_kh_str *name)
{
	if (!s || !name)
		return -1;
	for (__u32 i = 0; i < GAMMAD_KH_FIELDS_MAX; i++) {
		const struct gammad_kh_field *f = &s->req.fields[i];

		if (i >= s->req.nr_fields)
			break;
		if (f->name_len == name->len && f->name_hash == name->hash &&
		    kh_buf_eq(s, f->name_off, name, 1))
			return i;
	}
	return -1;
}

/* Does the condition hold? 1, 0, or -1: the request has too many parameters to tell. */
KH_GLOBAL int kh_cond(const struct gammad_kh_scratch *s, const struct gammad_kh_cond *c)
{
	const struct gammad_kh_field *f;
	__u32 n, off, len;
	int i;

	if (!s || !c)
		return 0;
	if (c->kind == GAMMAD_KH_COND_HEADER) {
		i = kh_field_get(s, &c->name);
		if (i < 0)
			return 0;
		f = &s->req.fields[i & KH_FIELD_MASK];
		return f->value_len == c->value.len && kh_buf_eq(s, f->value_off, &c->value, 0);
	}
	/* The first parameter named so: "name=value", or "name" alone (value ""). */
	if (s->req.flags & GAMMAD_KH_REQ_QUERY_FULL)
		return -1;
	n = c->name.len;
	for (__u32 j = 0; j < GAMMAD_KH_QUERY_MAX; j++) {
		if (j >= s->req.nr_query)
			break;
		off = s->req.query[j].off;
		len = s->req.query[j].len;
		if (len < n || !kh_buf_eq(s, off, &c->name, 0))
			continue;
		if (len == n)
			return c->value.len == 0;
		if (s->buf[(off + n) & KH_BUF_MASK] != '=')
			continue;
		return len - n - 1 == c->value.len && kh_buf_eq(s, off + n + 1, &c->value, 0);
	}
	return 0;
}

/* Does the entry match? 1, 0, or -1 (cannot tell: the engine decides). */
KH_GLOBAL int kh_entry_match(const struct gammad_kh_scratch *s, const struct gammad_kh_entry *e)
{
	__u32 plen, n;
	int ret;

	if (!s || !e)
		return 0;
	plen = s->req.path_len;
	n = e->path.len;
	switch (e->path_type) {
	case GAMMAD_KH_PATH_EXACT:
		if (plen != n || !kh_buf_eq(s, s->req.target_off, &e->path, 0))
			return 0;
		break;
	case GAMMAD_KH_PATH_PREFIX:
		if (plen < n || !kh_buf_eq(s, s->req.target_off, &e->path, 0))
			return 0;
		if (plen != n && s->buf[(s->req.target_off + n) & KH_BUF_MASK] != '/')
			return 0;
		break;
	default:
		break;
	}
	if (e->method_len) {
		if (e->method_len != s->req.method_len)
			return 0;
		for (__u32 i = 0; i < GAMMAD_KH_METHOD_MAX; i++) {
			if (i >= e->method_len)
				break;
			if (s->buf[i] != (__u8)e->method[i])
				return 0;
		}
	}
	for (__u32 i = 0; i < GAMMAD_KH_CONDS_MAX; i++) {
		if (i >= e->nr_conds)
			break;
		ret = kh_cond(s, &e->conds[i]);
		if (ret <= 0)
			return ret;
	}
	return 1;
}

/* The target rewrite of rw (plen: what a ReplacePrefixMatch replaces). */
KH_GLOBAL int kh_rewrite(struct gammad_kh_scratch *s, const struct gammad_kh_rewrite *rw,
			 __u32 plen)
{
	__u32 take, rest, vlen;

	if (!s || !rw)
		return 0;
	s->v.rw_kind = 0;
	s->v.rw_cut = 0;
	switch (rw->type) {
	case GAMMAD_KH_RW_FULL:
		s->v.rw_kind = 1;
		s->v.rw_cut = s->req.path_len;
		break;
	case GAMMAD_KH_RW_PREFIX:
		take = plen < s->req.path_len ? plen : s->req.path_len;
		rest = s->req.path_len - take;
		vlen = rw->value.len;
		/* one '/' at the seam */
		if (vlen && rw->value.s[(vlen - 1) & KH_STR_MASK] == '/' && rest &&
		    s->buf[(s->req.target_off + take) & KH_BUF_MASK] == '/') {
			take++;
			rest--;
		}
		s->v.rw_kind = !vlen && !rest ? 2 : 1;
		s->v.rw_cut = take;
		break;
	}
	return 0;
}

struct kh_host_scan {
	struct gammad_kh_scratch *s;
	__u32 off, len;		/* the Host value */
	__u8 end;		/* ']' or ':' */
};

/* One byte of the Host value (bpf_loop callback): stop at the end of the host. */
static long kh_host_byte(__u64 i, void *ctx)
{
	struct kh_host_scan *h = ctx;

	if (h->s->buf[(h->off + (__u32)i) & KH_BUF_MASK] != h->end)
		return 0;
	h->len = h->end == ']' ? (__u32)i + 1 : (__u32)i;
	return 1;
}

/* The host part of the Host field (host_only() of the engine) for a Location. */
KH_GLOBAL int kh_host(struct gammad_kh_scratch *s)
{
	const struct gammad_kh_field *f;
	struct kh_host_scan h;

	if (!s)
		return 0;
	s->v.host_off = s->v.host_len = 0;
	if (!s->req.host)
		return 0;
	f = &s->req.fields[(s->req.host - 1) & KH_FIELD_MASK];
	h.s = s;
	h.off = f->value_off;
	h.len = f->value_len;
	/* "[v6]:port" ends after the bracket, "name:port" before the colon */
	h.end = h.len && s->buf[h.off & KH_BUF_MASK] == '[' ? ']' : ':';
	bpf_loop(f->value_len, kh_host_byte, &h, 0);
	s->v.host_off = h.off;
	s->v.host_len = h.len;
	return 0;
}

/* Fields rb's edits remove: bit i for field i. */
KH_GLOBAL __u32 kh_remove_mask(const struct gammad_kh_scratch *s, const struct gammad_kh_rb *rb)
{
	__u32 mask = 0;

	if (!s || !rb)
		return 0;
	for (__u32 j = 0; j < GAMMAD_KH_REMOVE_MAX; j++) {
		const struct gammad_kh_str *name = &rb->remove[j];

		if (j >= rb->nr_remove)
			break;
		for (__u32 i = 0; i < GAMMAD_KH_FIELDS_MAX; i++) {
			const struct gammad_kh_field *f = &s->req.fields[i];

			if (i >= s->req.nr_fields)
				break;
			if (f->name_len == name->len && f->name_hash == name->hash &&
			    kh_buf_eq(s, f->name_off, name, 1))
				mask |= 1u << i;
		}
	}
	return mask;
}

static __always_inline int kh_engine(struct gammad_kh_scratch *s, __u32 reason)
{
	kh_verdict(s, GAMMAD_KH_ENGINE, reason);
	return -1;
}

static __always_inline int kh_local(struct gammad_kh_scratch *s, __u32 status)
{
	kh_verdict(s, GAMMAD_KH_LOCAL, GAMMAD_KH_R_SERVED);
	s->v.status = status;
	return 0;
}

/* The matched entry's rule decides (translate_eval.c evaluate_entry()). */
KH_GLOBAL int kh_decide(struct gammad_kh_scratch *s, const struct gammad_kh_entry *e)
{
	struct gammad_kh_key key = {};
	struct gammad_kh_alias_key ak = {};
	struct gammad_alias_val *slot;
	struct gammad_kh_rule *r;
	struct gammad_kh_rb *rb;
	__u32 plen;

	if (!s || !e)
		return -1;
	plen = e->rewrite_plen;
	key.tab = s->tab;
	key.idx = e->rule;
	s->v.rule = e->rule;
	r = KH_LOOKUP(gammad_khrul_v1, &key);
	if (!r)
		return kh_engine(s, GAMMAD_KH_R_MAP);
	if (r->kind == GAMMAD_KH_RULE_REDIRECT) {
		kh_rewrite(s, &r->path, plen);
		if (r->flags & GAMMAD_KH_RULE_REQ_HOST)
			kh_host(s);
		return kh_local(s, r->status);
	}
	if (r->kind == GAMMAD_KH_RULE_FAIL)
		return kh_local(s, r->status);
	if (r->kind != GAMMAD_KH_RULE_BACKENDS)
		return kh_engine(s, GAMMAD_KH_R_MAP);
	/* no backend of weight > 0: the evaluator's 500 */
	if (!r->nr_slots || !r->total_weight)
		return kh_local(s, 500);
	if (r->flags & GAMMAD_KH_RULE_ONE_RB) {
		/* what every draw below would pick (the encoder checked each slot) */
		key.idx = r->one_rb;
	} else {
		ak.tab = s->tab;
		ak.rule = e->rule;
		ak.slot = s->draw[0] % r->nr_slots;
		slot = KH_LOOKUP(gammad_khal_v1, &ak);
		if (!slot)
			return kh_engine(s, GAMMAD_KH_R_MAP);
		key.idx = s->draw[1] % r->total_weight < slot->threshold ? slot->primary :
									   slot->alias;
	}
	s->v.rb = key.idx;
	rb = KH_LOOKUP(gammad_khrb_v1, &key);
	if (!rb)
		return kh_engine(s, GAMMAD_KH_R_MAP);
	s->v.be_id = rb->be_id;
	if (rb->status != 200)
		return kh_local(s, rb->status);
	s->v.remove_mask = kh_remove_mask(s, rb);
	kh_rewrite(s, &rb->path, plen);
	kh_verdict(s, GAMMAD_KH_FORWARD, GAMMAD_KH_R_SERVED);
	s->v.status = 200;
	return 0;
}

/*
 * The verdict for the parsed request in s against table s->tab, with
 * s->draw[] as the random numbers: s->v. 0 when the kernel serves it.
 */
KH_GLOBAL int kh_match(struct gammad_kh_scratch *s)
{
	struct gammad_kh_key key = {};
	struct gammad_kh_entry *e;
	struct gammad_kh_table *t;
	__u32 tab, nr;
	int ret;

	if (!s)
		return -1;
	tab = s->tab;
	t = KH_LOOKUP(gammad_khtab_v1, &tab);
	if (!t)
		return kh_engine(s, GAMMAD_KH_R_NO_TABLE);
	if (t->engine_reason) {
		s->v.tab_reason = t->engine_reason;
		return kh_engine(s, GAMMAD_KH_R_TABLE);
	}
	s->v.tab_flags = (__u8)t->flags;
	nr = t->nr_entries;
	/* the loop below could not reach the rest: never a wrong 404 */
	if (nr > GAMMAD_KH_ENTRIES_MAX)
		return kh_engine(s, GAMMAD_KH_R_MAP);
	key.tab = tab;
	for (__u32 i = 0; i < GAMMAD_KH_ENTRIES_MAX; i++) {
		if (i >= nr)
			break;
		key.idx = i;
		e = KH_LOOKUP(gammad_khent_v1, &key);
		if (!e)
			return kh_engine(s, GAMMAD_KH_R_MAP);
		ret = kh_entry_match(s, e);
		if (ret < 0)
			return kh_engine(s, GAMMAD_KH_R_QUERY);
		if (ret) {
			s->v.entry = i;
			return kh_decide(s, e);
		}
	}
	s->v.entry = nr;
	return kh_local(s, 404);
}

/* Parse and match: the whole kernel decision on the head in s. */
KH_GLOBAL int kh_request(struct gammad_kh_scratch *s)
{
	if (!s)
		return -1;
	if (kh_parse(s))
		return -1;
	return kh_match(s);
}

#endif
