/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 in the kernel: the framing of responses on an upstream socket
 * (the sk_skb side of bpf/lib/khttp_path.h) or a same-node server socket
 * (its sk_msg side): one parser, two ways to read the bytes (kh_resp_load). It follows each response
 * across skbs, state kept per upstream (struct gammad_kh_resp), so the
 * kernel knows where every response ends: Content-Length, chunked (a real
 * incremental parser: sizes, extensions, the CRLF after chunk data,
 * trailers), HEAD (a bit per request sequence number), 204, 304, 1xx. A
 * response it cannot frame sets unframed (and close when it runs to the
 * upstream's close). tests/progs/khttp_resp.bpf.c runs it under
 * BPF_PROG_TEST_RUN for the differential test against the engine's
 * response parser (tests/prog_tests/khttp_resp.c).
 */
#ifndef GAMMAD_BPF_KHTTP_RESP_H
#define GAMMAD_BPF_KHTTP_RESP_H

#include "lib/common.h"

#ifndef KH_GLOBAL
#define KH_GLOBAL __attribute__((noinline))	/* as bpf/lib/khttp.h: verified once */
#endif

#define KH_RBUF		256	/* response bytes looked at per step */
#define KH_RSTEPS	32	/* steps per skb; more: unframed (exact, never wrong) */

struct kh_rscratch {
	struct gammad_kh_resp r;
	__u32 req_seq, head_bits;
	__u32 pos, n;		/* bytes of buf consumed, in buf */
	__u32 unframed;
	__u32 close;		/* unframed: the body runs to the upstream's close */
	/*
	 * Response edits (same-node servers): bit (seq % 32) when the head of
	 * response seq needs them. The walk stops at such a head when it does
	 * not start the message (stop: its offset), so that it starts the
	 * next run, where it is edited (khttp_path.h). 0 on the sk_skb side.
	 */
	__u32 edit_bits;
	__u32 base;		/* offset of buf in the message */
	__u32 stop;
	__u8 buf[KH_RBUF];
};

/* What the response head said (gammad_kh_resp.hflags). */
#define KH_RH_CL	(1u << 0)	/* a Content-Length */
#define KH_RH_TE	(1u << 1)	/* a Transfer-Encoding */
#define KH_RH_CHUNKED	(1u << 2)	/* ... that is exactly "chunked" */
#define KH_RH_SPACE	(1u << 3)	/* white space after the number's digits */

/* gammad_kh_hash_byte over "content-length", "transfer-encoding", "chunked" */
#define KH_H_CONTENT_LENGTH	0x4df9451dU
#define KH_H_TRANSFER_ENCODING	0xddb4744cU
#define KH_H_CHUNKED		0xd31f4213U

/* ---- the upstream side: response framing --------------------------------- */

static __always_inline long kh_unframed(struct kh_rscratch *p)
{
	p->unframed = 1;
	return 1;
}

/* A whole response ended: the next byte starts the next one. */
static __always_inline void kh_resp_done(struct gammad_kh_resp *r)
{
	r->resp_seq++;
	r->state = GAMMAD_KH_RS_STATUS;
	r->k = 0;
	r->hflags = 0;
	r->cl = 0;
	r->rleft = 0;
	r->status = 0;
}

/* The empty line after a response head: 0 to go on byte by byte, 1 to stop. */
static __always_inline long kh_resp_head_end(struct kh_rscratch *p)
{
	struct gammad_kh_resp *r = &p->r;
	__u32 st = r->status;

	if (st >= 100 && st < 200) {
		/* 101: the bytes after it are no HTTP; other 1xx: the final one follows */
		if (st == 101)
			return kh_unframed(p);
		r->state = GAMMAD_KH_RS_STATUS;
		r->k = 0;
		r->hflags = 0;
		r->cl = 0;
		r->status = 0;	/* the final status is read afresh */
		return 0;
	}
	if ((p->head_bits & (1u << (r->resp_seq & 31))) || st == 204 || st == 304) {
		kh_resp_done(r);
		return 0;
	}
	if (r->hflags & KH_RH_TE) {
		if (!(r->hflags & KH_RH_CHUNKED))
			return kh_unframed(p);
		r->state = GAMMAD_KH_RS_CHUNK_SIZE;
		r->k = 0;
		r->rleft = 0;
		return 0;
	}
	if (!(r->hflags & KH_RH_CL)) {
		/* close-delimited: delivered as it comes, ended by the agent at the close */
		p->close = 1;
		return kh_unframed(p);
	}
	if (!r->cl) {
		kh_resp_done(r);
		return 0;
	}
	r->state = GAMMAD_KH_RS_BODY;
	r->rleft = r->cl;
	return 1;
}

static __always_inline int kh_hex(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One response byte outside a body: 0 to go on, 1 to stop. */
static __always_inline long kh_resp_byte(struct kh_rscratch *p, __u8 c)
{
	struct gammad_kh_resp *r = &p->r;
	int x;

	switch (r->state) {
	case GAMMAD_KH_RS_STATUS:
		/* "HTTP/1.x NNN ..." up to its LF */
		if (!r->k && r->resp_seq == p->req_seq)
			return kh_unframed(p);	/* bytes nobody asked for */
		if (r->k < 5) {
			if (c != "HTTP/"[r->k & 7])
				return kh_unframed(p);
		} else if (r->k == 5 || r->k == 7) {
			if (c < '0' || c > '9')
				return kh_unframed(p);
		} else if (r->k == 6) {
			if (c != '.')
				return kh_unframed(p);
		} else if (r->k == 8) {
			if (c != ' ')
				return kh_unframed(p);
		} else if (r->k <= 11) {
			if (c < '0' || c > '9')
				return kh_unframed(p);
			r->status = r->status * 10 + (c - '0');
		} else if (c == '\n') {
			r->state = GAMMAD_KH_RS_LINE;
			return 0;
		}
		if (r->k < 12)
			r->k++;
		else if (r->k == 12 && c != ' ' && c != '\r')
			return kh_unframed(p);	/* "HTTP/1.1 2000" */
		else
			r->k = 13;
		return 0;
	case GAMMAD_KH_RS_LINE:
		if (c == '\r') {
			r->state = GAMMAD_KH_RS_END_LF;
			return 0;
		}
		if (c == '\n')
			return kh_resp_head_end(p);
		if (c == ':' || c == ' ' || c == '\t')
			return kh_unframed(p);
		r->hash = gammad_kh_hash_byte(GAMMAD_KH_HASH_INIT, c);
		r->nlen = 1;
		r->state = GAMMAD_KH_RS_NAME;
		return 0;
	case GAMMAD_KH_RS_NAME:
		if (c == ':') {
			r->field = 0;
			if (r->nlen == 14 && r->hash == KH_H_CONTENT_LENGTH)
				r->field = 1;
			else if (r->nlen == 17 && r->hash == KH_H_TRANSFER_ENCODING)
				r->field = 2;
			r->state = GAMMAD_KH_RS_VALUE;
			r->hash = GAMMAD_KH_HASH_INIT;
			r->nlen = 0;
			r->k = 0;
			r->rleft = 0;
			r->hflags &= ~KH_RH_SPACE;
			return 0;
		}
		if (c == '\r' || c == '\n')
			return kh_unframed(p);
		r->hash = gammad_kh_hash_byte(r->hash, c);
		r->nlen++;
		return 0;
	case GAMMAD_KH_RS_VALUE:
		if (c == '\r')
			return 0;
		if (c == '\n') {
			if (r->field == 1) {
				if (!r->k || ((r->hflags & KH_RH_CL) && r->cl != r->rleft))
					return kh_unframed(p);
				r->cl = r->rleft;
				r->hflags |= KH_RH_CL;
			} else if (r->field == 2) {
				/* only exactly "chunked" is framed; several lines: each must be */
				if (r->nlen != 7 || r->hash != KH_H_CHUNKED ||
				    (r->hflags & KH_RH_TE))
					return kh_unframed(p);
				r->hflags |= KH_RH_TE | KH_RH_CHUNKED;
			}
			r->rleft = 0;
			r->state = GAMMAD_KH_RS_LINE;
			return 0;
		}
		if (c == ' ' || c == '\t') {
			if (r->k)
				r->hflags |= KH_RH_SPACE;
			if (r->nlen && r->field == 2)
				r->hflags |= KH_RH_SPACE;
			return 0;
		}
		if (r->field == 1) {
			if (c < '0' || c > '9' || r->k >= 18 || (r->hflags & KH_RH_SPACE))
				return kh_unframed(p);
			r->rleft = r->rleft * 10 + (c - '0');
			r->k++;
		} else if (r->field == 2) {
			if (r->hflags & KH_RH_SPACE)
				return kh_unframed(p);
			r->hash = gammad_kh_hash_byte(r->hash, c);
			r->nlen++;
		}
		return 0;
	case GAMMAD_KH_RS_END_LF:
		if (c != '\n')
			return kh_unframed(p);
		return kh_resp_head_end(p);
	case GAMMAD_KH_RS_CHUNK_SIZE:
		x = kh_hex(c);
		if (x >= 0) {
			if (r->k >= 15)
				return kh_unframed(p);
			r->rleft = r->rleft * 16 + x;
			r->k++;
			return 0;
		}
		if (!r->k)
			return kh_unframed(p);
		if (c == ';' || c == ' ' || c == '\t') {
			r->state = GAMMAD_KH_RS_CHUNK_EXT;
			return 0;
		}
		if (c == '\r') {
			r->state = GAMMAD_KH_RS_CHUNK_SIZE_LF;
			return 0;
		}
		return kh_unframed(p);
	case GAMMAD_KH_RS_CHUNK_EXT:
		if (c == '\r')
			r->state = GAMMAD_KH_RS_CHUNK_SIZE_LF;
		else if (c == '\n')
			return kh_unframed(p);
		return 0;
	case GAMMAD_KH_RS_CHUNK_SIZE_LF:
		if (c != '\n')
			return kh_unframed(p);
		if (!r->rleft) {
			r->state = GAMMAD_KH_RS_TRAILER_LINE;
			return 0;
		}
		r->state = GAMMAD_KH_RS_CHUNK_DATA;
		return 1;
	case GAMMAD_KH_RS_CHUNK_DATA_CR:
		if (c != '\r')
			return kh_unframed(p);
		r->state = GAMMAD_KH_RS_CHUNK_DATA_LF;
		return 0;
	case GAMMAD_KH_RS_CHUNK_DATA_LF:
		if (c != '\n')
			return kh_unframed(p);
		r->state = GAMMAD_KH_RS_CHUNK_SIZE;
		r->k = 0;
		r->rleft = 0;
		return 0;
	case GAMMAD_KH_RS_TRAILER_LINE:
		if (c == '\r')
			r->state = GAMMAD_KH_RS_TRAILER_LF;
		else if (c == '\n')
			return kh_unframed(p);
		else
			r->state = GAMMAD_KH_RS_TRAILER;
		return 0;
	case GAMMAD_KH_RS_TRAILER:
		if (c == '\n')
			r->state = GAMMAD_KH_RS_TRAILER_LINE;
		return 0;
	case GAMMAD_KH_RS_TRAILER_LF:
		if (c != '\n')
			return kh_unframed(p);
		kh_resp_done(r);
		return 0;
	}
	return kh_unframed(p);
}

/*
 * KH_RCHUNK bytes per bpf_loop callback (as the request parser's
 * kh_parse_chunk): a callback costs about as much as the work on one
 * byte, so it is paid once per chunk; the state stays in the scratch, so
 * the verifier sees one unknown state per byte.
 */
#ifndef KH_RCHUNK
#define KH_RCHUNK	8
#endif

static long kh_resp_cb(__u64 i, void *ctx)
{
	struct kh_rscratch *p = *(struct kh_rscratch **)ctx;
	__u32 base = (__u32)i * KH_RCHUNK, n = p->n, k, seq;

	for (__u32 j = 0; j < KH_RCHUNK; j++) {
		k = base + j;
		if (k >= n)
			return 1;
		seq = p->r.resp_seq;
		/* a head to edit, not at the message's start: the next run's */
		if ((p->edit_bits & (1u << (seq & 31))) && p->r.state == GAMMAD_KH_RS_STATUS &&
		    !p->r.k && seq != p->req_seq && p->base + k) {
			p->stop = p->base + k;
			p->pos = k;
			return 1;
		}
		if (kh_resp_byte(p, p->buf[k & (KH_RBUF - 1)])) {
			p->pos = k + 1;
			return 1;
		}
	}
	return 0;
}

/*
 * The response bytes [off, off + n) into buf (n <= KH_RBUF): from an skb
 * (the upstream's sk_skb verdict; cgroup_skb in the test) or from a message
 * (a same-node server socket's sk_msg program, bpf/khttp.bpf.c). A message
 * is a scatterlist: bpf_msg_pull_data makes the window linear (no copy when
 * it lies in one element, as a head in the first page does) and leaves the
 * message's bytes as they were. 0 or -1.
 */
static __always_inline int kh_resp_load(void *ctx, bool msg, __u32 off, __u8 *buf, __u32 n)
{
	void *data, *end;

	if (!msg)
		return bpf_skb_load_bytes(ctx, off, buf, n) ? -1 : 0;
	if (bpf_msg_pull_data(ctx, off, off + n, 0))
		return -1;
	data = (void *)(long)((struct sk_msg_md *)ctx)->data;
	end = (void *)(long)((struct sk_msg_md *)ctx)->data_end;
	if (data + n > end)
		return -1;
	return bpf_probe_read_kernel(buf, n, data) ? -1 : 0;
}

/* What one step of the walk needs (kh_resp_walk): on the caller's stack. */
struct kh_rwalk {
	void *ctx;			/* the skb or the message */
	struct kh_rscratch *p;
	__u32 len, off;			/* bytes of ctx; taken so far */
	int err;
};

/*
 * One step of the walk: a body or chunk data skipped by count, or up to
 * KH_RBUF bytes of a head or chunk line byte by byte. 1 ends the walk.
 */
static __always_inline long kh_resp_step(struct kh_rwalk *w, bool msg)
{
	struct kh_rscratch *p = w->p;
	__u32 off = w->off, len = w->len, n;
	__u64 skip;

	if (off >= len || p->unframed || p->stop)
		return 1;
	if (p->r.state == GAMMAD_KH_RS_BODY || p->r.state == GAMMAD_KH_RS_CHUNK_DATA) {
		skip = len - off;
		if (skip > p->r.rleft)
			skip = p->r.rleft;
		w->off = off + skip;
		p->r.rleft -= skip;
		if (p->r.rleft)
			return 0;
		if (p->r.state == GAMMAD_KH_RS_BODY)
			kh_resp_done(&p->r);
		else
			p->r.state = GAMMAD_KH_RS_CHUNK_DATA_CR;
		return 0;
	}
	n = len - off;
	if (n > KH_RBUF)
		n = KH_RBUF;
	/* the bound through clang's 32 -> 64 bit extension (brief: traps) */
	asm volatile("" : "+r"(n));
	if (n < 1 || n > KH_RBUF || kh_resp_load(w->ctx, msg, off, p->buf, n)) {
		w->err = 1;
		return 1;
	}
	p->pos = n;
	p->n = n;
	p->base = off;
	bpf_loop((n + KH_RCHUNK - 1) / KH_RCHUNK, kh_resp_cb, &p, 0);
	w->off = off + p->pos;
	return 0;
}

static long kh_resp_step_skb(__u64 i, void *w)
{
	return kh_resp_step(w, false);
}

static long kh_resp_step_msg(__u64 i, void *w)
{
	return kh_resp_step(w, true);
}

/*
 * Follow the framing over bytes [from, len) of ctx, state in p (the slot's copy):
 * at most KH_RSTEPS steps (kh_resp_step). The steps are a bpf_loop too:
 * as a plain loop the verifier went through the byte callback once per
 * step (32 times), which made every byte of work per callback cost 32.
 */
static __always_inline int kh_resp_walk(void *ctx, bool msg, __u32 from, __u32 len,
					struct kh_rscratch *p)
{
	struct kh_rwalk w = { .ctx = ctx, .p = p, .len = len, .off = from };

	p->stop = 0;
	bpf_loop(KH_RSTEPS, msg ? kh_resp_step_msg : kh_resp_step_skb, &w, 0);
	if (w.err)
		return -1;
	if (w.off < len && !p->stop)
		p->unframed = 1;	/* more steps than we take: never guess */
	return 0;
}

/*
 * The upstream's sk_skb verdict: an skb of the response stream, from byte
 * from on (the bytes before it were framed already: kh_ahead_take).
 */
KH_GLOBAL int kh_resp_parse(struct __sk_buff *skb, __u32 from, struct kh_rscratch *p)
{
	if (!skb || !p)
		return -1;
	return kh_resp_walk(skb, false, from, skb->len, p);
}

/* A same-node server socket's sk_msg program: a message the backend sends. */
KH_GLOBAL int kh_resp_parse_msg(struct sk_msg_md *msg, struct kh_rscratch *p)
{
	if (!msg || !p)
		return -1;
	return kh_resp_walk(msg, true, 0, msg->size, p);
}

#endif
