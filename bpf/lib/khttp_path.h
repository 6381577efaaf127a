/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 in the kernel, the data path (issue 13): the client socket's
 * sk_msg side and the upstream socket's sk_skb side. Map layout and the
 * roles of the sockets: include/gammad/maps.h, "the data path".
 *
 * Client side, per request head (a message starts with one: apply_bytes
 * covers each forwarded head and its Content-Length body, so the program
 * never sees body bytes):
 *  - FORWARD: the rule backend's endpoint is drawn; the connection's bound
 *    upstream serves it if it is that endpoint's, else (only when no
 *    response is outstanding on it) the bound one goes back to its pool and
 *    a free one of the endpoint's pool is claimed (compare-and-swap of the
 *    slot's owner: a slot serves one client connection at a time). The head
 *    is edited (khttp_msg.h) and head + body redirected to the upstream's
 *    egress.
 *  - LOCAL (404/500/503): the answer replaces the request in the message
 *    and goes to the client's own ingress.
 *  - MORE: cork until more bytes come.
 *  - anything else, and whatever would let an answer overtake a response
 *    still outstanding: the engine, for good. Its way in is the ingress of
 *    the agent's accepted socket (gammad_khag_v1): never SK_PASS once this
 *    socket redirected anything, the kernel would reuse the stale target.
 *
 * Upstream side: every response byte goes to the owner's ingress; the
 * framing of each response (Content-Length, chunked with a real incremental
 * parser, HEAD/204/304, 1xx) is followed so the kernel knows when the
 * responses to all requests sent are complete: only then may the client
 * switch upstream or the slot be reused. A response it cannot frame
 * (close-delimited, an unknown Transfer-Encoding) marks the slot unframed:
 * delivered all the same, but that upstream is never switched away from
 * nor reused. Zero-length skbs (a FIN in verdict-only mode) are dropped:
 * redirected, they make the client's recv() fail with EFAULT.
 */
#ifndef GAMMAD_BPF_KHTTP_PATH_H
#define GAMMAD_BPF_KHTTP_PATH_H

#include "lib/maps.h"
#include "lib/engine.h"
#include "lib/sockmap.h"
#include "lib/khttp_maps.h"
#include "lib/khttp_msg.h"
#include "lib/khttp_answer.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} gammad_khcli_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} gammad_khag_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gammad_khup_v1 SEC(".maps");

GAMMAD_SK_STORAGE(gammad_khc_v1, struct gammad_kh_conn);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_origdst_key);
	__type(value, __u64);
} gammad_khck_v1 SEC(".maps");
GAMMAD_HASH(gammad_khupc_v1, __u64, __u32, GAMMAD_KH_SLOTS_MAX);
GAMMAD_HASH(gammad_khpool_v1, struct gammad_kh_pool_key, struct gammad_kh_pool, 16384);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, struct gammad_kh_slot);
} gammad_khslot_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} gammad_khev_v1 SEC(".maps");

/* Work areas: one per side, the upstream's runs in softirq over the client's. */
GAMMAD_PERCPU_ARRAY(gammad_khscr_v1, struct gammad_kh_scratch, 1);
/* The client side's answers (khttp_answer.h), built beside the head they answer. */
GAMMAD_PERCPU_ARRAY(gammad_khans_v1, struct kh_abuf, 1);

#define KH_RBUF		256	/* response bytes looked at per step */
#define KH_RSTEPS	32	/* steps per skb; more: unframed (exact, never wrong) */

struct kh_rscratch {
	struct gammad_kh_resp r;
	__u32 req_seq, head_bits;
	__u32 pos, n;		/* bytes of buf consumed, in buf */
	__u32 unframed;
	__u32 close;		/* unframed: the body runs to the upstream's close */
	__u8 buf[KH_RBUF];
};

GAMMAD_PERCPU_ARRAY(gammad_khrscr_v1, struct kh_rscratch, 1);

/* What the response head said (gammad_kh_resp.hflags). */
#define KH_RH_CL	(1u << 0)	/* a Content-Length */
#define KH_RH_TE	(1u << 1)	/* a Transfer-Encoding */
#define KH_RH_CHUNKED	(1u << 2)	/* ... that is exactly "chunked" */
#define KH_RH_SPACE	(1u << 3)	/* white space after the number's digits */

/* gammad_kh_hash_byte over "content-length", "transfer-encoding", "chunked" */
#define KH_H_CONTENT_LENGTH	0x4df9451dU
#define KH_H_TRANSFER_ENCODING	0xddb4744cU
#define KH_H_CHUNKED		0xd31f4213U

static __always_inline void kh_event(__u32 kind, __u32 slot, const struct gammad_kh_pool_key *pk)
{
	struct gammad_kh_event ev = { .kind = kind, .slot = slot };

	__builtin_memcpy(&ev.pool, pk, sizeof(ev.pool));
	bpf_ringbuf_output(&gammad_khev_v1, &ev, sizeof(ev), 0);
}

/* Load-time constant (bytes): see GAMMAD_KH_CAP_DEFAULT. */
const volatile __u32 kh_cap = GAMMAD_KH_CAP_DEFAULT;

/* ingress_skb entries looked at; a longer queue counts as over any cap */
#define KH_QWALK	16

/*
 * Bytes queued at a client socket and not read yet: its receive memory
 * (the sockmap ingress_msg queue is charged to it, as TCP's receive queue
 * is) plus the skbs redirected to it that wait in its psock's ingress_skb,
 * uncharged: the kernel moves them to ingress_msg only while the receive
 * memory is under sk_rcvbuf, so a reader that stops lets that queue grow
 * without bound. Read-only views of kernel objects (bpf_rdonly_cast): a
 * concurrent change reads as a stale value, never as a fault.
 */
/* The psock of a socket in a sockmap (read-only), or NULL. */
static __always_inline struct sk_psock *kh_psock(const struct sock *sk)
{
	/* sk_user_data carries flag bits below the psock pointer (SK_USER_DATA_*) */
	__u64 ud = (__u64)sk->sk_user_data & ~7ULL;

	if (!ud)
		return NULL;
	return bpf_rdonly_cast((void *)ud, bpf_core_type_id_kernel(struct sk_psock));
}

static __always_inline __u64 kh_sock_queued(struct bpf_sock *bsk)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	struct sk_psock *ps;
	struct sk_buff *skb;
	__u64 q = 0;
	__u32 nr;
	int rmem;

	rmem = sk->sk_backlog.rmem_alloc.counter;
	if (rmem > 0)
		q = rmem;
	ps = kh_psock(sk);
	if (!ps)
		return q;
	nr = ps->ingress_skb.qlen;
	if (nr > KH_QWALK)
		return ~0ULL;
	skb = ps->ingress_skb.next;
	for (__u32 i = 0; i < KH_QWALK; i++) {
		if (i >= nr || !skb)
			break;
		q += skb->len;
		skb = skb->next;
	}
	return q;
}

/* Would len more bytes put the client of cookie over the cap? */
static __always_inline bool kh_client_lags(__u64 cookie, __u32 len)
{
	struct bpf_sock *bsk = bpf_map_lookup_elem(&gammad_khcli_v1, &cookie);
	__u64 q;

	if (!bsk)
		return false;	/* gone: the redirect fails and says so */
	q = kh_sock_queued(bsk);
	bpf_sk_release(bsk);
	return q + len > kh_cap;
}

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

static long kh_resp_cb(__u64 i, void *ctx)
{
	struct kh_rscratch *p = *(struct kh_rscratch **)ctx;

	if (kh_resp_byte(p, p->buf[i & (KH_RBUF - 1)])) {
		p->pos = i + 1;
		return 1;
	}
	return 0;
}

/*
 * Follow the framing over the skb's bytes, state in p (the slot's copy).
 * Bodies and chunk data are skipped by count; heads and chunk lines go
 * byte by byte, KH_RBUF bytes per step.
 */
KH_GLOBAL int kh_resp_parse(struct __sk_buff *skb, struct kh_rscratch *p)
{
	__u32 len, off = 0, n;
	__u64 skip;

	if (!skb || !p)
		return -1;
	len = skb->len;
	for (int step = 0; step < KH_RSTEPS; step++) {
		if (off >= len || p->unframed)
			return 0;
		if (p->r.state == GAMMAD_KH_RS_BODY || p->r.state == GAMMAD_KH_RS_CHUNK_DATA) {
			skip = len - off;
			if (skip > p->r.rleft)
				skip = p->r.rleft;
			off += skip;
			p->r.rleft -= skip;
			if (p->r.rleft)
				continue;
			if (p->r.state == GAMMAD_KH_RS_BODY)
				kh_resp_done(&p->r);
			else
				p->r.state = GAMMAD_KH_RS_CHUNK_DATA_CR;
			continue;
		}
		n = len - off;
		if (n > KH_RBUF)
			n = KH_RBUF;
		/* the bound through clang's 32 -> 64 bit extension (brief: traps) */
		asm volatile("" : "+r"(n));
		if (n < 1 || n > KH_RBUF)
			return -1;
		if (bpf_skb_load_bytes(skb, off, p->buf, n))
			return -1;
		p->pos = n;
		p->n = n;
		bpf_loop(n, kh_resp_cb, &p, 0);
		off += p->pos;
	}
	if (off < len)
		p->unframed = 1;	/* more steps than we take: never guess */
	return 0;
}

/* ---- the client side ----------------------------------------------------- */

/* The table of this connection's class now (the generation may have flipped). */
static __always_inline int kh_conn_table(const struct gammad_kh_conn *c, __u32 *tab)
{
	struct gammad_cons_key ck = {};
	struct gammad_kh_class_val *cv;
	struct gammad_fe_val *fe;
	struct gammad_fe_key fk;

	__builtin_memcpy(&fk, &c->fe, sizeof(fk));
	fe = bpf_map_lookup_elem(&gammad_fe_v1, &fk);
	if (!fe)
		return -1;
	ck.table_gen = fe->table_gen;
	ck.ns_id = c->ns_id;
	cv = bpf_map_lookup_elem(&gammad_khcls_v1, &ck);
	if (!cv && ck.ns_id != GAMMAD_NS_ALL) {
		/* no consumer table for this class: the producers' */
		ck.ns_id = GAMMAD_NS_ALL;
		cv = bpf_map_lookup_elem(&gammad_khcls_v1, &ck);
	}
	if (!cv)
		return -1;
	*tab = cv->tab;
	return 0;
}

/* Requests sent on the slot whose responses are not complete yet. */
static __always_inline __u32 kh_slot_pending(const struct gammad_kh_slot *sl)
{
	return sl->req_seq - sl->r.resp_seq;
}

static __always_inline struct gammad_kh_slot *kh_bound(const struct gammad_kh_conn *c, __u32 *id)
{
	if (!c->slot)
		return NULL;
	*id = c->slot - 1;
	return bpf_map_lookup_elem(&gammad_khslot_v1, id);
}

/* Between responses, framed: the next client may have it as it is. */
static __always_inline bool kh_slot_clean(const struct gammad_kh_slot *sl)
{
	return !kh_slot_pending(sl) &&
	       !(sl->flags & (GAMMAD_KH_SLOT_UNFRAMED | GAMMAD_KH_SLOT_SLOW | GAMMAD_KH_SLOT_CLOSE)) &&
	       sl->r.state == GAMMAD_KH_RS_STATUS && !sl->r.k;
}

/*
 * The connection lets its upstream go: back to the pool when the upstream
 * is between responses and framed, else to the agent to close (its state
 * is unknown to the next client).
 */
static __always_inline void kh_slot_release(struct gammad_kh_conn *c)
{
	struct gammad_kh_slot *sl;
	struct gammad_kh_pool_key pk;
	__u32 id = 0;

	sl = kh_bound(c, &id);
	c->slot = 0;
	if (!sl)
		return;
	if (kh_slot_clean(sl)) {
		__sync_val_compare_and_swap(&sl->owner, c->cookie, GAMMAD_KH_OWNER_FREE);
		return;
	}
	if (__sync_val_compare_and_swap(&sl->owner, c->cookie, GAMMAD_KH_OWNER_DEAD) ==
	    c->cookie) {
		__builtin_memcpy(&pk, &sl->pool, sizeof(pk));
		kh_event(GAMMAD_KH_EV_DEAD, id, &pk);
	}
}

/*
 * Bind a free upstream of the pool: its slot, or -1. (A client gives its
 * upstream back when it switches endpoint or closes: gammad_kh_sockops.)
 */
static __always_inline int kh_slot_claim(struct gammad_kh_conn *c,
					 const struct gammad_kh_pool_key *pk)
{
	struct gammad_kh_pool *pool;
	struct gammad_kh_slot *sl;
	__u32 nr, start, id;
	__u64 owner;

	pool = bpf_map_lookup_elem(&gammad_khpool_v1, pk);
	if (!pool)
		return -1;
	nr = pool->nr;
	if (!nr || nr > GAMMAD_KH_POOL_MAX)
		return -1;
	start = bpf_get_prandom_u32() % nr;
	for (__u32 i = 0; i < GAMMAD_KH_POOL_MAX; i++) {
		if (i >= nr)
			break;
		id = pool->slots[((start + i) % nr) & (GAMMAD_KH_POOL_MAX - 1)];
		sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
		if (!sl)
			continue;
		owner = sl->owner;
		if (owner != GAMMAD_KH_OWNER_FREE)
			continue;
		if (__sync_val_compare_and_swap(&sl->owner, owner, c->cookie) != owner)
			continue;
		c->slot = id + 1;
		kh_event(GAMMAD_KH_EV_CLAIMED, id, pk);
		return id;
	}
	return -1;
}

/*
 * The endpoint a FORWARD goes to, as the pool key of this client's netns:
 * 0, or a reason. Affinity is the engine's (it keeps its own table).
 */
static __always_inline __u32 kh_endpoint(const struct gammad_kh_conn *c, __u32 be_id,
					 struct gammad_kh_pool_key *pk)
{
	struct gammad_ep_key ek = {};
	struct gammad_be_val *bv;
	struct gammad_ep_val *ev;
	__u32 nr;

	bv = bpf_map_lookup_elem(&gammad_be_v2, &be_id);
	if (!bv)
		return GAMMAD_KH_R_NO_ENDPOINT;
	if (bv->affinity_timeout)
		return GAMMAD_KH_R_AFFINITY;
	nr = bv->nr_endpoints;
	if ((bv->flags & (GAMMAD_BE_UNRESOLVED | GAMMAD_BE_NO_ENDPOINTS)) || !nr)
		return GAMMAD_KH_R_NO_ENDPOINT;
	ek.ep_set = bv->ep_set;
	ek.idx = bpf_get_prandom_u32() % nr;
	ev = bpf_map_lookup_elem(&gammad_ep_v1, &ek);
	if (!ev)
		return GAMMAD_KH_R_NO_ENDPOINT;
	pk->netns_cookie = c->netns_cookie;
	__builtin_memcpy(pk->addr, ev->addr, sizeof(pk->addr));
	pk->port = ev->port;
	pk->family = ev->family;
	pk->pad = 0;
	return 0;
}

static __always_inline bool kh_pool_eq(const struct gammad_kh_pool_key *a,
				       const struct gammad_kh_pool_key *b)
{
	const __u32 *x = (const __u32 *)a->addr, *y = (const __u32 *)b->addr;

	return a->netns_cookie == b->netns_cookie && a->port == b->port &&
	       a->family == b->family && x[0] == y[0] && x[1] == y[1] && x[2] == y[2] &&
	       x[3] == y[3];
}

/*
 * The upstream for this request: the bound one if it is the endpoint's,
 * else a fresh claim. Its slot, or -reason.
 */
static __always_inline int kh_upstream(struct gammad_kh_conn *c,
				       const struct gammad_kh_pool_key *pk)
{
	struct gammad_kh_slot *sl;
	__u32 id = 0;
	int got;

	sl = kh_bound(c, &id);
	if (sl) {
		/* its response ends with the upstream's close: so does the connection (engine) */
		if (sl->owner == c->cookie && (sl->flags & GAMMAD_KH_SLOT_CLOSE))
			return -GAMMAD_KH_R_CLOSE_DELIMITED;
		if (sl->owner == c->cookie && kh_pool_eq(&sl->pool, pk)) {
			if (kh_slot_pending(sl) >= GAMMAD_KH_PIPELINE_MAX)
				return -GAMMAD_KH_R_PIPELINE;
			return id;
		}
		/* a switch: the answers to earlier requests must all be in */
		if (kh_slot_pending(sl) && sl->owner == c->cookie)
			return sl->flags & GAMMAD_KH_SLOT_UNFRAMED ? -GAMMAD_KH_R_UNFRAMED :
								  -GAMMAD_KH_R_PIPELINE;
		kh_slot_release(c);
	}
	got = kh_slot_claim(c, pk);
	return got < 0 ? -GAMMAD_KH_R_NO_UPSTREAM : got;
}

/*
 * Fields the engine drops when it re-serializes a head (hop-by-hop, its
 * hop_by_hop(); Upgrade is the engine's already) and whose meaning is the
 * connection's: a request with one is the engine's,
 * so the kernel forwards exactly what the engine would. 1 if any.
 */
KH_GLOBAL int kh_hop_by_hop(const struct gammad_kh_scratch *s)
{
	const struct gammad_kh_field *f;
	__u32 nr;

	if (!s)
		return 1;
	nr = s->req.nr_fields;
	for (__u32 i = 0; i < GAMMAD_KH_FIELDS_MAX; i++) {
		if (i >= nr)
			break;
		f = &s->req.fields[i & KH_FIELD_MASK];
		if (kh_name_is(s, f, "connection", 10) || kh_name_is(s, f, "keep-alive", 10) ||
		    kh_name_is(s, f, "proxy-connection", 16) || kh_name_is(s, f, "te", 2))
			return 1;
	}
	return 0;
}

#endif
