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
#include "lib/psock.h"
#include "lib/khttp_maps.h"
#include "lib/khttp_msg.h"
#include "lib/khttp_answer.h"
#include "lib/khttp_resp.h"

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
/* include/gammad/maps.h: a request a same-node server's ingress may have taken in part */
GAMMAD_SK_STORAGE(gammad_khfw_v1, struct gammad_kh_fwd);

/* Same-node server sockets (include/gammad/maps.h): the sk_msg program is gammad_kh_server. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u64);
	__type(value, __u64);
} gammad_khsv_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, struct gammad_sock_key);
	__type(value, struct gammad_kh_srv);
} gammad_khsvk_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gammad_khsvs_v1 SEC(".maps");

GAMMAD_SK_STORAGE(gammad_khsvst_v1, struct gammad_kh_srv);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gammad_origdst_key);
	__type(value, __u64);
} gammad_khck_v1 SEC(".maps");
/* include/gammad/maps.h: who decides a silent connection, the kernel or the engine */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} gammad_khfm_v1 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} gammad_khho_v1 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct gammad_kh_ret);
} gammad_khret_v1 SEC(".maps");
GAMMAD_HASH(gammad_khupc_v1, __u64, __u32, GAMMAD_KH_SLOTS_MAX);
GAMMAD_HASH(gammad_khpool_v1, struct gammad_kh_pool_key, struct gammad_kh_pool, 16384);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, struct gammad_kh_slot);
} gammad_khslot_v1 SEC(".maps");

/* include/gammad/maps.h: response bytes framed ahead, per slot (GAMMAD_KH_SLOT_AHEAD) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gammad_khfa_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} gammad_khev_v1 SEC(".maps");

/* Work areas: one per side, the upstream's runs in softirq over the client's. */
GAMMAD_PERCPU_ARRAY(gammad_khscr_v1, struct gammad_kh_scratch, 1);
/* The client side's answers (khttp_answer.h), built beside the head they answer. */
GAMMAD_PERCPU_ARRAY(gammad_khans_v1, struct kh_abuf, 1);

/*
 * The response framing's work areas: the upstream's verdict runs in softirq,
 * which can interrupt a same-node server's sk_msg (process context) on the
 * same CPU in the middle of its framing: one area each.
 */
#define KH_RSCR_UPSTREAM 0
#define KH_RSCR_SERVER 1
GAMMAD_PERCPU_ARRAY(gammad_khrscr_v1, struct kh_rscratch, 2);
/* A response head to edit (same-node servers), parsed as a request head is. */
GAMMAD_PERCPU_ARRAY(gammad_khrsc_v1, struct gammad_kh_scratch, 1);

/* include/gammad/maps.h: which response of a slot needs which edits */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GAMMAD_KH_SLOTS_MAX);
	__type(key, __u32);
	__type(value, struct gammad_kh_slot_edits);
} gammad_khsre_v1 SEC(".maps");

static __always_inline void kh_event(__u32 kind, __u32 slot, const struct gammad_kh_pool_key *pk)
{
	struct gammad_kh_event ev = { .kind = kind, .slot = slot };

	__builtin_memcpy(&ev.pool, pk, sizeof(ev.pool));
	bpf_ringbuf_output(&gammad_khev_v1, &ev, sizeof(ev), 0);
}

/* Load-time constant (bytes): see GAMMAD_KH_CAP_DEFAULT. */
const volatile __u32 kh_cap = GAMMAD_KH_CAP_DEFAULT;

/* ingress_skb entries added up; the rest of a longer queue is estimated from them */
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
static __always_inline __u64 kh_sock_queued(struct bpf_sock *bsk)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	struct sk_psock *ps;
	struct sk_buff *skb;
	__u64 q = 0, sum = 0;
	__u32 nr;
	int rmem;

	rmem = sk->sk_backlog.rmem_alloc.counter;
	if (rmem > 0)
		q = rmem;
	ps = kh_psock(sk);
	if (!ps)
		return q;
	nr = ps->ingress_skb.qlen;
	skb = ps->ingress_skb.next;
	for (__u32 i = 0; i < KH_QWALK; i++) {
		if (i >= nr || !skb)
			break;
		sum += skb->len;
		skb = skb->next;
	}
	/* a longer queue (a reader far behind, or a burst the kernel has not moved yet) */
	if (nr > KH_QWALK)
		sum += (__u64)(nr - KH_QWALK) * (sum / KH_QWALK);
	return q + sum;
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

/* ---- the response side: an upstream's skbs or a same-node server's messages ---- */

/*
 * Follow the framing of what the slot's connection just delivered (parse
 * is 0, or -1 when the parser gave up): the slot's state copied into the
 * scratch p before, written back after, or the slot marked unframed (and
 * close-delimited). The client side writes req_seq and head_bits, this
 * side only the parser's state.
 */
static __always_inline void kh_frame_begin(const struct gammad_kh_slot *sl, struct kh_rscratch *p)
{
	__builtin_memcpy(&p->r, &sl->r, sizeof(p->r));
	p->req_seq = sl->req_seq;
	p->head_bits = sl->head_bits;
	p->unframed = 0;
	p->close = 0;
	p->edit_bits = 0;
	p->stop = 0;
}

static __always_inline void kh_frame_end(struct gammad_kh_slot *sl, struct kh_rscratch *p, int parse)
{
	if (parse)
		p->unframed = 1;
	if (p->unframed) {
		sl->flags |= GAMMAD_KH_SLOT_UNFRAMED;
		if (p->close)
			sl->flags |= GAMMAD_KH_SLOT_CLOSE;
	} else {
		__builtin_memcpy(&sl->r, &p->r, sizeof(p->r));
	}
}

/*
 * Bytes at the start of what the upstream's TCP brings that the server
 * program framed already (gammad_khfa_v1: the rest of a message the
 * client's ingress took only in part, sent over TCP since): taken off the
 * count, not framed again. Looked at only for a slot the server program
 * armed (GAMMAD_KH_SLOT_AHEAD), which it does before the bytes leave, so
 * the count is there when they arrive.
 */
static __always_inline __u32 kh_ahead_take(const struct gammad_kh_slot *sl, __u32 id, __u32 len)
{
	__u64 *ahead, n;

	if (!(sl->flags & GAMMAD_KH_SLOT_AHEAD))
		return 0;
	ahead = bpf_map_lookup_elem(&gammad_khfa_v1, &id);
	if (!ahead)
		return 0;
	n = *(volatile __u64 *)ahead;
	if (!n)
		return 0;
	if (n > len)
		n = len;
	__sync_fetch_and_sub(ahead, n);
	return n;
}

/*
 * The server program framed n bytes that go over the upstream's TCP after
 * all: counted for kh_ahead_take. The first time in this arming of the
 * slot the count is stored, what an earlier arming left overwritten, and
 * only then the slot armed (the verdict reads the count after the bit).
 * Only the server program adds, under its socket's lock: no other writer.
 */
static __always_inline bool kh_ahead_add(struct gammad_kh_slot *sl, __u32 id, __u64 n)
{
	__u64 *ahead = bpf_map_lookup_elem(&gammad_khfa_v1, &id);

	if (!ahead)
		return false;
	if (sl->flags & GAMMAD_KH_SLOT_AHEAD) {
		__sync_fetch_and_add(ahead, n);
		return true;
	}
	*(volatile __u64 *)ahead = n;
	__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_AHEAD);
	return true;
}

/* The client lags beyond the cap: the rest waits under TCP's flow control, the agent is told. */
static __always_inline void kh_slot_slow(struct gammad_kh_slot *sl, __u32 id)
{
	struct gammad_kh_pool_key pk;

	__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_SLOW);
	kh_count(GAMMAD_KH_R_SLOW_READER);
	__builtin_memcpy(&pk, &sl->pool, sizeof(pk));
	kh_event(GAMMAD_KH_EV_SLOW, id, &pk);
}

/*
 * A response head that needed edits cannot have them, not even from the
 * engine: nothing more of this slot reaches the client (both sides drop),
 * the agent resets the client and re-arms the slot.
 */
static __always_inline void kh_slot_cut(struct gammad_kh_slot *sl, __u32 id)
{
	struct gammad_kh_pool_key pk;

	if (__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_CUT) & GAMMAD_KH_SLOT_CUT)
		return;
	kh_count(GAMMAD_KH_R_RESP_CUT);
	__builtin_memcpy(&pk, &sl->pool, sizeof(pk));
	kh_event(GAMMAD_KH_EV_CUT, id, &pk);
}

/*
 * The head of response seq needs edits the kernel cannot make: it and
 * everything after it stay on the upstream (SLOW: the server's messages go
 * over its TCP, the verdict keeps them) and the engine relays them, each
 * head edited as the engine edits its own (GAMMAD_KH_SLOT_EDIT). Nothing
 * of that response has reached the client. relay_seq is written before
 * the flags: the agent reads the slot after the event.
 */
static __always_inline void kh_slot_engine(struct gammad_kh_slot *sl, __u32 id, __u32 seq)
{
	struct gammad_kh_pool_key pk;

	sl->relay_seq = seq;
	__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_SLOW | GAMMAD_KH_SLOT_EDIT);
	kh_count(GAMMAD_KH_R_RESP_ENGINE);
	__builtin_memcpy(&pk, &sl->pool, sizeof(pk));
	kh_event(GAMMAD_KH_EV_SLOW, id, &pk);
}

/*
 * Edit bits of the responses of slot sl whose heads have not started yet
 * (the parser state in sl: the current response counts when its head has
 * not begun). The client side keeps at most GAMMAD_KH_PIPELINE_MAX (< 32)
 * outstanding, so the sequence numbers' bits do not wrap onto each other.
 */
static __always_inline __u32 kh_edits_ahead(const struct gammad_kh_slot *sl, __u32 bits)
{
	__u32 from = sl->r.resp_seq, mask = 0;

	if (!bits)
		return 0;
	if (sl->r.state != GAMMAD_KH_RS_STATUS || sl->r.k)
		from++;
	for (__u32 i = 0; i < GAMMAD_KH_PIPELINE_MAX; i++) {
		if (from + i - sl->req_seq < 0x80000000U)	/* from + i >= req_seq */
			break;
		mask |= 1u << ((from + i) & 31);
	}
	return bits & mask;
}

/*
 * The head at the start of msg is the next response of slot sl and needs
 * the edits of record key (gammad_khrb_v1, GAMMAD_KH_RB_RESP): edited in
 * the message as a request head is (kh_msg_edit_fields), when it is whole
 * in it. 1 edited, 2 a 1xx (the engine forwards it as it is: the final
 * head follows, to edit), 0 not whole yet (corked: the kernel runs us
 * again with more), -1 not here (too large, too many fields, a syntax the
 * request parser refuses: the engine's), -2 not at all (its record went
 * with its table while the request was out: the slot is cut).
 */
static __always_inline int kh_resp_edit(struct sk_msg_md *msg, const struct gammad_kh_key *key)
{
	struct gammad_kh_scratch *s;
	struct gammad_kh_rb *rb;
	__u32 zero = 0, len, size = msg->size;
	int ret;

	/* one read of the context field: clang would keep ctx + off (brief: traps) */
	asm volatile("" : "+r"(size));
	s = bpf_map_lookup_elem(&gammad_khrsc_v1, &zero);
	if (!s)
		return -1;
	len = size;
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	if (len < 12) {
		/* not even the status line */
		bpf_msg_cork_bytes(msg, size + 1);
		return 0;
	}
	if (bpf_msg_pull_data(msg, 0, len, 0) ||
	    bpf_probe_read_kernel(s->buf, len, (void *)(long)msg->data))
		return -1;
	s->len = len;
	ret = kh_parse_fields(s);
	if (ret > 0 && size < GAMMAD_KH_HEAD_MAX) {
		bpf_msg_cork_bytes(msg, size + 1);
		return 0;
	}
	if (ret)
		return -1;
	/* "HTTP/1.x 1xx": interim, written by the engine without the edits */
	if (s->buf[9] == '1')
		return 2;
	rb = bpf_map_lookup_elem(&gammad_khrb_v1, key);
	if (!rb)
		return -2;	/* its table went while the request was out */
	s->v.remove_mask = kh_remove_mask(s, rb);
	return kh_msg_edit_fields(msg, s, rb) < 0 ? -2 : 1;
}

/* The owner has gone: the agent closes this upstream and re-arms the slot. */
static __always_inline void kh_slot_orphan(struct gammad_kh_slot *sl, __u32 id, __u64 owner)
{
	struct gammad_kh_pool_key pk;

	if (__sync_val_compare_and_swap(&sl->owner, owner, GAMMAD_KH_OWNER_DEAD) == owner) {
		__builtin_memcpy(&pk, &sl->pool, sizeof(pk));
		kh_event(GAMMAD_KH_EV_DEAD, id, &pk);
	}
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

/*
 * Does the FORWARD in s edit the head (kh_msg_edit needs its rule
 * backend's record)? Not when the table says none of its records edits
 * (GAMMAD_KH_TAB_F_NO_EDIT) and the verdict rewrites and removes nothing.
 */
static __always_inline bool kh_forward_edits(const struct gammad_kh_scratch *s)
{
	return !(s->v.tab_flags & GAMMAD_KH_TAB_F_NO_EDIT) || s->v.rw_kind || s->v.remove_mask;
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
	       !(sl->flags & (GAMMAD_KH_SLOT_UNFRAMED | GAMMAD_KH_SLOT_SLOW | GAMMAD_KH_SLOT_CLOSE |
			      GAMMAD_KH_SLOT_CUT)) &&
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

static __always_inline bool kh_pool_eq(const struct gammad_kh_pool_key *a,
				       const struct gammad_kh_pool_key *b)
{
	const __u32 *x = (const __u32 *)a->addr, *y = (const __u32 *)b->addr;

	return a->netns_cookie == b->netns_cookie && a->port == b->port &&
	       a->family == b->family && x[0] == y[0] && x[1] == y[1] && x[2] == y[2] &&
	       x[3] == y[3];
}

/*
 * A claim found no pool or no free slot (EV_MISS). Misses repeat with
 * every request until the agent has made the pool: never into a ring
 * buffer more than a quarter full, so they cannot crowd out a dead slot's
 * event, which must arrive.
 */
static __always_inline void kh_miss(const struct gammad_kh_pool_key *pk)
{
	if (bpf_ringbuf_query(&gammad_khev_v1, BPF_RB_AVAIL_DATA) < 64 * 1024)
		kh_event(GAMMAD_KH_EV_MISS, GAMMAD_KH_SLOTS_MAX, pk);
}

/* Free slots of the pool after position claimed (of nr). */
static __always_inline __u32 kh_pool_free_after(const struct gammad_kh_pool *pool, __u32 nr,
						__u32 claimed)
{
	struct gammad_kh_slot *sl;
	__u32 n = 0, id;

	for (__u32 i = 0; i < GAMMAD_KH_POOL_MAX; i++) {
		if (i <= claimed)
			continue;
		if (i >= nr || n >= GAMMAD_KH_POOL_LOW)
			break;
		id = pool->slots[i & (GAMMAD_KH_POOL_MAX - 1)];
		sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
		if (sl && sl->owner == GAMMAD_KH_OWNER_FREE)
			n++;
	}
	return n;
}

/*
 * Bind a free upstream of the pool: its slot, or -1. (A client gives its
 * upstream back when it switches endpoint or closes: gammad_kh_sockops.)
 * The lowest free slot first: a pool's tail then stays unused when the
 * load drops, and the agent closes it after an idle time. Pools are made
 * on demand: a claim that finds none, or no free slot in one that can
 * still grow, tells the agent (EV_MISS; this request is the engine's).
 */
static __always_inline int kh_slot_claim(struct gammad_kh_conn *c,
					 const struct gammad_kh_pool_key *pk)
{
	struct gammad_kh_pool *pool;
	struct gammad_kh_slot *sl;
	__u32 nr, id;
	__u64 owner;

	pool = bpf_map_lookup_elem(&gammad_khpool_v1, pk);
	if (!pool) {
		kh_miss(pk);
		return -1;
	}
	nr = pool->nr;
	if (nr > GAMMAD_KH_POOL_MAX)
		return -1;
	for (__u32 i = 0; i < GAMMAD_KH_POOL_MAX; i++) {
		if (i >= nr)
			break;
		id = pool->slots[i & (GAMMAD_KH_POOL_MAX - 1)];
		sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
		if (!sl)
			continue;
		owner = sl->owner;
		/* a slot the agent armed for another pool since (a restart): never */
		if (owner != GAMMAD_KH_OWNER_FREE || !kh_pool_eq(&sl->pool, pk))
			continue;
		if (__sync_val_compare_and_swap(&sl->owner, owner, c->cookie) != owner)
			continue;
		c->slot = id + 1;
		/*
		 * The agent refills only when few free ones are left: an
		 * event per claim woke it for every new connection (a
		 * wake-up and its scan of the pool cost about a third of a
		 * connection's CPU). The slots before i were taken when
		 * looked at, so the ones after it are what is left.
		 */
		if (kh_pool_free_after(pool, nr, i) < GAMMAD_KH_POOL_LOW)
			kh_event(GAMMAD_KH_EV_CLAIMED, id, pk);
		return id;
	}
	if (nr < GAMMAD_KH_POOL_MAX)
		kh_miss(pk);
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
	/* one endpoint: x % 1 is 0 whatever the draw, the helper call is not paid */
	ek.idx = nr > 1 ? bpf_get_prandom_u32() % nr : 0;
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
