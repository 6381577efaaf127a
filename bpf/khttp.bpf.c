// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.1 in the kernel, the data path (issue 13): gammad_kh_sockops
 * (beside the main sockops program) registers steered client sockets and
 * same-node server sockets, gammad_kh_client on the client sockhash
 * (sk_msg), gammad_kh_upstream on the upstream sockhash (sk_skb, attached
 * as BPF_SK_SKB_VERDICT: no stream parser), gammad_kh_server on the server
 * sockhash (sk_msg). What they do and why: bpf/lib/khttp_path.h.
 */
#include "lib/khttp_path.h"
#include "lib/sockmap.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * To the engine, for good. A fresh message goes over plain TCP to the
 * engine's accepted socket (SK_PASS), also before the agent accepted it,
 * and an earlier redirect of this socket does not matter: the kernel keeps
 * a redirect target only within one message (brief: traps). The rest of a
 * message whose first part was redirected still carries that target
 * (msg->sk_redir): SK_PASS would send it there, so it goes to the ingress
 * of the engine's socket (gammad_khag_v1), and every later message too:
 * the engine reads its ingress queue before its TCP receive queue, so the
 * bytes stay in order.
 */
static __always_inline int kh_to_engine(struct sk_msg_md *msg, struct gammad_kh_conn *c,
					__u32 reason)
{
	__u64 cookie = c->cookie;

	if (reason)
		kh_count(reason);
	/* the engine's answers wait for what this upstream still owes the client */
	if (c->slot && c->state == GAMMAD_KHC_KERNEL) {
		__u32 slot = c->slot - 1;

		bpf_map_update_elem(&gammad_khho_v1, &cookie, &slot, BPF_ANY);
	}
	if (!msg_kern(msg)->sk_redir && !(c->flags & GAMMAD_KHC_F_INGRESS)) {
		/*
		 * No upstream yet (the agent makes the pool now): this request
		 * is the engine's, over TCP; the connection may come back once
		 * the engine has answered it (kh_returned).
		 */
		if (reason == GAMMAD_KH_R_NO_UPSTREAM && c->state == GAMMAD_KHC_KERNEL) {
			struct gammad_kh_ret r = {};

			if (!bpf_map_update_elem(&gammad_khret_v1, &cookie, &r, BPF_ANY))
				c->flags |= GAMMAD_KHC_F_RETURN;
		}
		c->state = GAMMAD_KHC_ENGINE;
		return SK_PASS;
	}
	c->state = GAMMAD_KHC_ENGINE;
	c->flags &= ~GAMMAD_KHC_F_RETURN;
	c->flags |= GAMMAD_KHC_F_INGRESS;
	if (bpf_msg_redirect_hash(msg, &gammad_khag_v1, &cookie, BPF_F_INGRESS) == SK_PASS)
		return SK_PASS;
	kh_count(GAMMAD_KH_R_ENGINE_LOST);
	return SK_DROP;
}

/*
 * A connection the engine took for a miss comes back (F_RETURN) when the
 * engine said it holds nothing of it (gammad_khret_v1 ready: rx bytes
 * received and read, tx bytes its answers make, the last one included)
 * and the client's TCP shows exactly that: everything it sent over TCP
 * acked and no more than rx (so the engine has read it all and this
 * message is the first after), and it has received and read tx bytes of
 * the engine's (so nothing of the engine's can come after the kernel's
 * answer to this request). Anything else, it stays the engine's: a client
 * that pipelines, one whose ACK is late, an entry the engine wrote before
 * its last request (rx counts only what came before). The client's socket
 * is locked by this send: its fields can only lag (segments in its
 * backlog), which refuses, never returns too early. Read-only view. The
 * client's bytes_acked counts its SYN too (the SYN-ACK's ack goes through
 * tcp_ack); the engine's bytes_received counts data alone.
 */
static __always_inline bool kh_returned(struct bpf_sock *sk, struct gammad_kh_conn *c)
{
	__u64 cookie = c->cookie;
	struct gammad_kh_ret *r = bpf_map_lookup_elem(&gammad_khret_v1, &cookie);
	struct tcp_sock *tp;

	if (!r || !r->ready)
		return false;
	tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	if (tp->write_seq != tp->snd_una || tp->bytes_acked != r->rx + 1 ||
	    tp->bytes_received != r->tx || tp->rcv_nxt != tp->copied_seq)
		return false;
	bpf_map_delete_elem(&gammad_khret_v1, &cookie);
	c->state = GAMMAD_KHC_KERNEL;
	c->flags &= ~GAMMAD_KHC_F_RETURN;
	return true;
}

/* The agent accepted the engine's end (its accept takes the khck entry). */
static __always_inline bool kh_accepted(const struct gammad_kh_conn *c)
{
	struct gammad_origdst_key k = { .netns_cookie = c->netns_cookie, .port = c->ck_port,
					.family = c->ck_family };

	return !bpf_map_lookup_elem(&gammad_khck_v1, &k);
}

/*
 * The message holds all the scatterlist elements it can: a cork would be
 * ignored (tcp_bpf_send_verdict's enospc) and the verdict carried out at
 * once.
 */
static __always_inline bool kh_msg_full(struct sk_msg_md *msg)
{
	struct sk_msg *m = msg_kern(msg);
	__u32 ids = bpf_core_field_size(m->sg.data) / bpf_core_type_size(struct scatterlist);
	__u32 start = m->sg.start, end = m->sg.end, used;

	used = end >= start ? end - start : end + ids - start;
	return used + 1 >= ids;
}

/*
 * The rest of a request a same-node server's ingress took only in part
 * (its socket memory refused more: __sk_rmem_schedule in bpf_tcp_ingress).
 * The kernel runs us again on what is left of the message, the first run's
 * target still set; these bytes are that request's, never a head. They
 * follow its first part over the upstream's TCP, and so does every later
 * request of the slot (REQ_TCP): the server reads its ingress queue before
 * its TCP receive queue, so the order holds. Not into the ingress again: it
 * could refuse the same way, and when it takes nothing at all the kernel
 * drops the rest of the message (-ENOMEM).
 */
static __always_inline int kh_rest(struct sk_msg_md *msg, struct gammad_kh_conn *c, __u32 rest)
{
	struct gammad_kh_slot *sl;
	__u32 id = 0;

	sl = kh_bound(c, &id);
	if (!sl || sl->owner != c->cookie) {
		/* its upstream went meanwhile: the request cannot end anywhere */
		kh_count(GAMMAD_KH_R_NO_UPSTREAM);
		return SK_DROP;
	}
	__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_REQ_TCP);
	if (bpf_msg_redirect_hash(msg, &gammad_khup_v1, &id, 0) != SK_PASS) {
		kh_slot_release(c);
		kh_count(GAMMAD_KH_R_NO_UPSTREAM);
		return SK_DROP;
	}
	bpf_msg_apply_bytes(msg, rest);
	return SK_PASS;
}

/* A FORWARD verdict in s carried out: edit, account, redirect. */
static __always_inline int kh_forward(struct sk_msg_md *msg, struct gammad_kh_conn *c,
				      struct gammad_kh_scratch *s, bool corked)
{
	struct gammad_kh_key key = { .tab = s->tab, .idx = s->v.rb };
	struct gammad_kh_key rkey = { .tab = s->tab, .idx = s->v.rb | GAMMAD_KH_RB_RESP };
	struct gammad_kh_slot_edits *se;
	struct gammad_kh_pool_key pk = {};
	struct gammad_kh_slot *sl;
	struct gammad_kh_rb *rb = NULL;
	bool redit;
	__u32 reason, id, bit, seq, is_head;
	__u64 total, *srv;
	bool to_srv = false;
	int got, head;

	/*
	 * The record again for its edits (kh_decide cannot hand its pointer
	 * out): not when the table has none, the head then goes as it is.
	 */
	if (kh_forward_edits(s)) {
		rb = bpf_map_lookup_elem(&gammad_khrb_v1, &key);
		if (!rb)
			return kh_to_engine(msg, c, GAMMAD_KH_R_MAP);
	}
	reason = kh_endpoint(c, s->v.be_id, &pk);
	if (reason)
		return kh_to_engine(msg, c, reason);
	got = kh_upstream(c, &pk);
	if (got < 0)
		return kh_to_engine(msg, c, -got);
	id = got;
	sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
	if (!sl)
		return kh_to_engine(msg, c, GAMMAD_KH_R_NO_UPSTREAM);
	/*
	 * The target first: a missing upstream leaves the message untouched.
	 * A same-node server socket paired with the slot takes the request
	 * into its ingress (no TCP at all), unless its requests go over the
	 * upstream's TCP for good (REQ_TCP, below).
	 */
	srv = bpf_map_lookup_elem(&gammad_khsvs_v1, &id);
	/*
	 * A response to edit (ResponseHeaderModifier): only a same-node
	 * server's messages can be (gammad_kh_server, a head whole in one
	 * message by corking); the sk_skb verdict of a TCP upstream cannot
	 * hold a head split over skbs. The engine's then, before anything is
	 * redirected; the slot goes back if nothing is outstanding on it.
	 */
	redit = !(s->v.tab_flags & GAMMAD_KH_TAB_F_NO_RESP) &&
		bpf_map_lookup_elem(&gammad_khrb_v1, &rkey) != NULL;
	se = bpf_map_lookup_elem(&gammad_khsre_v1, &id);
	if (redit && (!srv || !*srv || !se)) {
		if (!kh_slot_pending(sl))
			kh_slot_release(c);
		return kh_to_engine(msg, c, GAMMAD_KH_R_RESP_TCP);
	}
	/* an unframed upstream: nobody could tell where that response's head starts */
	if (redit && (sl->flags & GAMMAD_KH_SLOT_UNFRAMED))
		return kh_to_engine(msg, c, GAMMAD_KH_R_UNFRAMED);
	if (srv && *srv && !(sl->flags & GAMMAD_KH_SLOT_REQ_TCP)) {
		__u64 sc = *srv, req = (__u64)s->req.head_len + s->req.content_length;
		__u32 size = msg->size;

		/*
		 * Only a request whole in the message goes to the server's
		 * ingress: a part bpf_tcp_ingress does not take comes back to
		 * us (kh_rest) only within the message; bytes a later sendmsg
		 * brings would follow the target without us, unchecked. A body
		 * still to come is corked for (once: a message that fills up
		 * first comes back short); past that, or past the cap, TCP.
		 */
		asm volatile("" : "+r"(size));
		if (size >= req) {
			to_srv = bpf_msg_redirect_hash(msg, &gammad_khsv_v1, &sc, BPF_F_INGRESS) ==
				 SK_PASS;
		} else if (!corked && req <= kh_cap && !kh_msg_full(msg)) {
			c->flags |= GAMMAD_KHC_F_BODY_CORK;
			bpf_msg_cork_bytes(msg, req);
			return SK_PASS;
		} else {
			__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_REQ_TCP);
		}
	}
	if (!to_srv && bpf_msg_redirect_hash(msg, &gammad_khup_v1, &id, 0) != SK_PASS) {
		kh_slot_release(c);
		return kh_to_engine(msg, c, GAMMAD_KH_R_NO_UPSTREAM);
	}
	/* what the response parser needs to know of this request: HEAD or not */
	is_head = s->req.method_len == 4 && s->buf[0] == 'H' && s->buf[1] == 'E' &&
		  s->buf[2] == 'A' && s->buf[3] == 'D';
	seq = sl->req_seq;
	bit = 1u << (seq & 31);
	/*
	 * A clear needs no locked operation when the bit reads clear: only
	 * this side sets these bits, for the slot's owner, one send at a time.
	 */
	if (is_head)
		__sync_fetch_and_or(&sl->head_bits, bit);
	else if (sl->head_bits & bit)
		__sync_fetch_and_and(&sl->head_bits, ~bit);
	/* and which edits its response needs (read at the start of its head) */
	if (se && redit) {
		se->key[seq & 31] = rkey;
		__sync_fetch_and_or(&se->bits, bit);
	} else if (se && (se->bits & bit)) {
		__sync_fetch_and_and(&se->bits, ~bit);
	}
	head = rb ? kh_msg_edit(msg, s, rb) : s->req.head_len;
	if (head < 0) {
		/* half edited: nobody may get it; the client sees EACCES */
		kh_slot_release(c);
		kh_count(GAMMAD_KH_R_EDIT);
		return SK_DROP;
	}
	total = (__u64)head + s->req.content_length;
	/*
	 * Nothing bounds a server's ingress queue but us (a backend that stops
	 * reading, a body over the cap): past kh_cap this request and every
	 * later one of the slot go to the upstream's egress, where TCP's
	 * window holds the client. The server reads its ingress queue before
	 * its TCP receive queue (tcp_bpf_recvmsg), so the order holds. The
	 * helper overrides the target set above.
	 */
	if (to_srv && (__u64)msg_redir_queued(msg_kern(msg)) + total > kh_cap) {
		to_srv = false;
		__sync_fetch_and_or(&sl->flags, GAMMAD_KH_SLOT_REQ_TCP);
		if (bpf_msg_redirect_hash(msg, &gammad_khup_v1, &id, 0) != SK_PASS) {
			kh_slot_release(c);
			kh_count(GAMMAD_KH_R_NO_UPSTREAM);
			return SK_DROP;
		}
	}
	/* where its rest would start if the server's ingress took it only in part */
	if (to_srv && msg->sk) {
		struct gammad_kh_fwd *fw;
		__u32 size = msg->size;

		asm volatile("" : "+r"(size));
		fw = bpf_sk_storage_get(&gammad_khfw_v1, msg->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!fw || size < total) {
			kh_slot_release(c);
			kh_count(GAMMAD_KH_R_MAP);
			return SK_DROP;
		}
		fw->end = size - (__u32)total;
		fw->armed = 1;
		c->flags |= GAMMAD_KHC_F_FWD;
	}
	sl->req_seq = seq + 1;
	__sync_fetch_and_add(&sl->bytes_up, total);
	bpf_msg_apply_bytes(msg, total);
	c->flags |= GAMMAD_KHC_F_REDIRECTED;
	kh_count(GAMMAD_KH_R_SERVED);
	return SK_PASS;
}

/* Write the answer in a to the start of msg, GAMMAD_KH_APPEND_MAX bytes at a time. */
static __always_inline int kh_msg_write_answer(struct sk_msg_md *msg, struct kh_abuf *a, __u32 n)
{
	for (__u32 k = 0; k < KH_ABUF_MAX / GAMMAD_KH_APPEND_MAX; k++) {
		__u32 off = k * GAMMAD_KH_APPEND_MAX, w;

		if (off >= n)
			break;
		w = n - off;
		if (w > GAMMAD_KH_APPEND_MAX)
			w = GAMMAD_KH_APPEND_MAX;
		if (kh_msg_write(msg, off, (const struct kh_bytes *)&a->b[off], w))
			return -1;
	}
	return 0;
}

/*
 * A local answer (404, 500, 503, a redirect with its Location) in place of
 * the request: pushed in front of it, the request (head and body) popped,
 * the answer redirected to the client's own ingress.
 */
static __always_inline int kh_local_answer(struct sk_msg_md *msg, struct gammad_kh_conn *c,
					   struct gammad_kh_scratch *s)
{
	struct gammad_kh_slot *sl;
	struct kh_abuf *a;
	__u64 cookie = c->cookie, req;
	__u32 id = 0, zero = 0;
	int n;

	/* it would overtake the responses still coming from the upstream */
	sl = kh_bound(c, &id);
	if (sl && sl->owner == c->cookie && kh_slot_pending(sl))
		return kh_to_engine(msg, c, GAMMAD_KH_R_PIPELINE);
	req = (__u64)s->req.head_len + s->req.content_length;
	if (req > msg->size)
		return kh_to_engine(msg, c, GAMMAD_KH_R_LOCAL_BODY);
	a = bpf_map_lookup_elem(&gammad_khans_v1, &zero);
	if (!a)
		return kh_to_engine(msg, c, GAMMAD_KH_R_MAP);
	n = kh_answer(a, s);
	if (n <= 0 || n > KH_ABUF_MAX)
		return kh_to_engine(msg, c, s->v.status < 400 ? GAMMAD_KH_R_REDIRECT :
								 GAMMAD_KH_R_MAP);
	if (bpf_msg_redirect_hash(msg, &gammad_khcli_v1, &cookie, BPF_F_INGRESS) != SK_PASS)
		return kh_to_engine(msg, c, GAMMAD_KH_R_ENGINE_LOST);
	if (bpf_msg_push_data(msg, 0, n, 0) || kh_msg_write_answer(msg, a, n) ||
	    bpf_msg_pop_data(msg, n, req, 0)) {
		kh_count(GAMMAD_KH_R_EDIT);
		return SK_DROP;
	}
	bpf_msg_apply_bytes(msg, n);
	c->flags |= GAMMAD_KHC_F_REDIRECTED;
	kh_count(GAMMAD_KH_R_SERVED);
	/*
	 * A client that sends without reading its answers would queue them
	 * without bound: this one goes (the target is set), the engine has the
	 * rest, over TCP. bpf_tcp_ingress queues synchronously and the reader
	 * takes its ingress queue first, so nothing is overtaken.
	 */
	if ((__u64)msg_redir_queued(msg_kern(msg)) + n > kh_cap) {
		c->state = GAMMAD_KHC_ENGINE;
		kh_count(GAMMAD_KH_R_SLOW_READER);
	}
	return SK_PASS;
}

SEC("sk_msg")
int gammad_kh_client(struct sk_msg_md *msg)
{
	struct gammad_kh_scratch *s;
	struct gammad_kh_slot *sl;
	struct gammad_kh_fwd *fw;
	struct gammad_kh_conn *c;
	struct bpf_sock *sk = msg->sk;
	__u32 zero = 0, len, tab, id = 0;
	bool corked;
	void *data;

	if (!sk)
		return SK_PASS;
	c = bpf_sk_storage_get(&gammad_khc_v1, sk, 0, 0);
	if (!c || !c->state)
		return SK_PASS;
	/*
	 * The rest of a request a same-node server took only in part
	 * (kh_rest). F_FWD: armed since the flag was last cleared, so a
	 * connection that never sent to a server's ingress skips the lookup.
	 */
	if (c->flags & GAMMAD_KHC_F_FWD) {
		fw = bpf_sk_storage_get(&gammad_khfw_v1, sk, 0, 0);
		if (fw && fw->armed) {
			len = msg->size;
			asm volatile("" : "+r"(len));
			if (msg_rerun(msg) && len > fw->end)
				return kh_rest(msg, c, len - fw->end);
			fw->armed = 0;
		}
		c->flags &= ~GAMMAD_KHC_F_FWD;
	}
	if (c->state != GAMMAD_KHC_KERNEL &&
	    (!(c->flags & GAMMAD_KHC_F_RETURN) || !kh_returned(sk, c)))
		return kh_to_engine(msg, c, 0);
	/*
	 * The first message takes the connection from the engine's sniff
	 * timer; the engine took it first (a silent, server-first client):
	 * it stays the engine's.
	 */
	if (!(c->flags & GAMMAD_KHC_F_STARTED)) {
		if (bpf_map_delete_elem(&gammad_khfm_v1, &c->cookie))
			return kh_to_engine(msg, c, GAMMAD_KH_R_ENGINE_FIRST);
		c->flags |= GAMMAD_KHC_F_STARTED;
	}
	s = bpf_map_lookup_elem(&gammad_khscr_v1, &zero);
	if (!s)
		return kh_to_engine(msg, c, GAMMAD_KH_R_MAP);
	if (kh_conn_table(c, &tab))
		return kh_to_engine(msg, c, GAMMAD_KH_R_NO_TABLE);
	/* the upstream side found this client slow (counted there): the engine's now */
	sl = kh_bound(c, &id);
	if (sl && sl->owner == c->cookie && (sl->flags & GAMMAD_KH_SLOT_SLOW))
		return kh_to_engine(msg, c, 0);
	len = msg->size;
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	if (!len || bpf_msg_pull_data(msg, 0, len, 0))
		return kh_to_engine(msg, c, GAMMAD_KH_R_EDIT);
	data = (void *)(long)msg->data;
	if (bpf_probe_read_kernel(s->buf, len, data))
		return kh_to_engine(msg, c, GAMMAD_KH_R_EDIT);
	s->len = len;
	s->tab = tab;
	s->draw[0] = bpf_get_prandom_u32();
	s->draw[1] = bpf_get_prandom_u32();
	kh_request(s);
	switch (s->v.action) {
	case GAMMAD_KH_MORE:
		if (msg->size >= GAMMAD_KH_HEAD_MAX)
			return kh_to_engine(msg, c, GAMMAD_KH_R_HEAD_TOO_LARGE);
		kh_count(GAMMAD_KH_R_MORE);
		bpf_msg_cork_bytes(msg, msg->size + 1);
		return SK_PASS;
	case GAMMAD_KH_FORWARD:
	case GAMMAD_KH_LOCAL:
		if (!s->req.minor)
			return kh_to_engine(msg, c, GAMMAD_KH_R_HTTP10);
		if (kh_hop_by_hop(s))
			return kh_to_engine(msg, c, GAMMAD_KH_R_HOP_BY_HOP);
		/*
		 * More requests in this message than the one decided, and the
		 * agent has not accepted the engine's end yet: the next one
		 * could need the engine (a pipelined switch) and find no way
		 * there. Before the first redirect, the engine can still have
		 * it all over plain TCP.
		 */
		if (!(c->flags & GAMMAD_KHC_F_REDIRECTED) &&
		    msg->size > (__u64)s->req.head_len + s->req.content_length &&
		    !kh_accepted(c))
			return kh_to_engine(msg, c, GAMMAD_KH_R_PIPELINE);
		if (s->v.action == GAMMAD_KH_LOCAL)
			return kh_local_answer(msg, c, s);
		/* this run is the end of a body cork of ours, or not one at all */
		corked = c->flags & GAMMAD_KHC_F_BODY_CORK;
		c->flags &= ~GAMMAD_KHC_F_BODY_CORK;
		return kh_forward(msg, c, s, corked);
	}
	return kh_to_engine(msg, c, s->v.reason);
}

SEC("sk_skb")
int gammad_kh_upstream(struct __sk_buff *skb)
{
	struct kh_rscratch *p;
	struct gammad_kh_slot *sl;
	__u64 ck, owner;
	__u32 rscr = KH_RSCR_UPSTREAM, id, *idp, skip;

	/* a FIN in verdict-only mode: redirected, the client's recv() fails */
	if (!skb->len)
		return SK_DROP;
	ck = bpf_get_socket_cookie(skb);
	idp = bpf_map_lookup_elem(&gammad_khupc_v1, &ck);
	if (!idp)
		return SK_DROP;
	id = *idp;
	sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
	p = bpf_map_lookup_elem(&gammad_khrscr_v1, &rscr);
	if (!sl || !p)
		return SK_DROP;
	owner = sl->owner;
	if (owner == GAMMAD_KH_OWNER_FREE || owner == GAMMAD_KH_OWNER_DEAD ||
	    (sl->flags & GAMMAD_KH_SLOT_CUT))
		return SK_DROP;
	skip = kh_ahead_take(sl, id, skb->len);
	if (!(sl->flags & GAMMAD_KH_SLOT_UNFRAMED) && skip < skb->len) {
		kh_frame_begin(sl, p);
		kh_frame_end(sl, p, kh_resp_parse(skb, skip, p));
	}
	/*
	 * The agent's: kept on the upstream socket (charged to its receive
	 * memory, so its window closes on the backend) for the agent to relay;
	 * framed all the same, so the slot says when the last response it owes
	 * has arrived (the relay ends there, the engine serves what follows).
	 */
	if (sl->flags & GAMMAD_KH_SLOT_SLOW)
		return SK_PASS;
	/*
	 * A client that does not read: nothing more goes to it (brief: the
	 * ingress queues are unbounded). This skb and the rest stay on the
	 * upstream, where TCP holds the backend; the agent relays them and
	 * the connection is the engine's.
	 */
	if (kh_client_lags(owner, skb->len)) {
		kh_slot_slow(sl, id);
		return SK_PASS;
	}
	__sync_fetch_and_add(&sl->bytes_down, skb->len);
	if (bpf_sk_redirect_hash(skb, &gammad_khcli_v1, &owner, BPF_F_INGRESS) == SK_PASS)
		return SK_PASS;
	/* the client is gone: the agent closes this upstream and re-arms the slot */
	kh_slot_orphan(sl, id, owner);
	return SK_DROP;
}

/*
 * A same-node server socket (gammad_khsv_v1): what the backend sends is
 * the response stream of its slot, framed here as the upstream's verdict
 * frames skbs (khttp_resp.h, the same parser) and put straight into the
 * owner's ingress. bpf_tcp_ingress queues synchronously, before the
 * backend's send() returns: a FIN the backend sends after it reaches the
 * upstream (and the agent's hang-up handling) only after every byte sent
 * before it is queued at the client. Whatever this program does not
 * redirect (no owner, a socket of an earlier arming, a slow client) goes
 * over the connection's TCP to the upstream, whose verdict decides as
 * before; once that happened for an owned slot (SLOW), never back.
 */
/* gammad_kh_srv.pad of a server socket: a rest corked whole, not a rest framed */
#define KH_SV_CORKED	0x80000000U

/*
 * Over the connection's TCP to the upstream, whose verdict decides (SLOW:
 * it keeps the bytes for the agent). A fresh message by SK_PASS; the rest
 * of one (msg_rerun) by a redirect to this socket's own egress, the same
 * TCP: SK_PASS would mean the first run's target on a kernel that keeps
 * msg->sk_redir for the rerun (6.18 clears it), and apply_bytes is set
 * again to what goes.
 */
static __always_inline int kh_server_tcp(struct sk_msg_md *msg, const struct gammad_kh_srv *sv,
					 __u32 len, bool rerun)
{
	__u64 self = sv->cookie;

	if (!rerun)
		return SK_PASS;
	bpf_msg_apply_bytes(msg, len);
	return bpf_msg_redirect_hash(msg, &gammad_khsv_v1, &self, 0) == SK_PASS ? SK_PASS : SK_DROP;
}

/*
 * A head to edit that the kernel cannot edit starts msg: nothing of that
 * response has gone, so it and everything after it stay on the upstream
 * for the engine (kh_slot_engine): over the connection's TCP, whose
 * verdict frames and keeps it as after SLOW.
 */
static __always_inline int kh_server_to_engine(struct sk_msg_md *msg, struct gammad_kh_slot *sl,
					       const struct gammad_kh_srv *sv, __u32 id, __u32 seq,
					       bool rerun)
{
	kh_slot_engine(sl, id, seq);
	bpf_msg_apply_bytes(msg, msg->size);
	return kh_server_tcp(msg, sv, msg->size, rerun);
}

/*
 * The rest of a message the client's ingress took only in part (its
 * socket memory refused more: __sk_rmem_schedule in bpf_tcp_ingress); the
 * kernel runs us again on it. It was framed with its first part and
 * counted in bytes_down, which now loses it: bytes_down is what the
 * client's ingress took. Not into the ingress again: it could refuse once
 * more, and when it takes nothing the kernel drops the rest and the
 * backend's send() returns short, so the backend sends those bytes again
 * as a new message (framed a second time). Over the connection's TCP
 * instead, as a slow reader's bytes (SLOW: the agent relays them from the
 * upstream; the client reads its ingress before its TCP receive queue, so
 * the order holds), the upstream's verdict told not to frame them again
 * (kh_ahead_add). Bytes TCP does not take now (a full send buffer of a
 * non-blocking backend) come again as the next message: over TCP too, the
 * bytes the count skips all the same. A head still to edit after it cannot
 * go that way: the client is cut, as at the cap.
 */
static __always_inline int kh_server_rest(struct sk_msg_md *msg, struct gammad_kh_slot *sl,
					  const struct gammad_kh_srv *sv, __u32 id, __u32 rest)
{
	struct gammad_kh_slot_edits *se = bpf_map_lookup_elem(&gammad_khsre_v1, &id);

	__sync_fetch_and_sub(&sl->bytes_down, rest);
	if (!(sl->flags & GAMMAD_KH_SLOT_SLOW) && se && kh_edits_ahead(sl, se->bits))
		kh_slot_cut(sl, id);
	if (sl->flags & GAMMAD_KH_SLOT_CUT)
		return SK_DROP;
	/* not counted, it would be framed twice: nothing more of this slot goes */
	if (!kh_ahead_add(sl, id, rest)) {
		kh_slot_cut(sl, id);
		return SK_DROP;
	}
	if (!(sl->flags & GAMMAD_KH_SLOT_SLOW))
		kh_slot_slow(sl, id);
	return kh_server_tcp(msg, sv, rest, true);
}

SEC("sk_msg")
int gammad_kh_server(struct sk_msg_md *msg)
{
	struct sk_msg *m = msg_kern(msg);
	bool rerun = msg_rerun(msg);
	struct gammad_kh_slot_edits *se;
	struct gammad_kh_srv *sv;
	struct gammad_kh_slot *sl;
	struct kh_rscratch *p;
	__u32 rscr = KH_RSCR_SERVER, id, size, bits = 0, seq, head_done = 0;
	__u64 owner, *cur;
	int ed;

	if (!msg->sk)
		return rerun ? SK_DROP : SK_PASS;
	sv = bpf_sk_storage_get(&gammad_khsvst_v1, msg->sk, 0, 0);
	if (!sv)
		return rerun ? SK_DROP : SK_PASS;
	id = sv->slot;
	cur = bpf_map_lookup_elem(&gammad_khsvs_v1, &id);
	sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
	if (!cur || !sl || *cur != sv->cookie)
		return rerun ? SK_DROP : SK_PASS;
	owner = sl->owner;
	/* a head that needed edits did not get them: nothing more of it goes */
	if (sl->flags & GAMMAD_KH_SLOT_CUT)
		return SK_DROP;
	/*
	 * A rerun on the rest of a message whose first part went to the client
	 * (kh_server_rest). Except the rest after a head to edit (the walk
	 * stopped there, apply_bytes): its last sv->pad bytes were not framed
	 * (what comes before them is a rest as above), or it was corked whole
	 * (KH_SV_CORKED) and comes again with more.
	 */
	if (rerun && !(sv->pad & KH_SV_CORKED) && msg->size != sv->pad)
		return kh_server_rest(msg, sl, sv, id, sv->pad && msg->size > sv->pad ?
						       msg->size - sv->pad : msg->size);
	sv->pad = 0;
	if (owner == GAMMAD_KH_OWNER_FREE || owner == GAMMAD_KH_OWNER_DEAD ||
	    (sl->flags & GAMMAD_KH_SLOT_SLOW))
		return kh_server_tcp(msg, sv, msg->size, rerun);
	p = bpf_map_lookup_elem(&gammad_khrscr_v1, &rscr);
	if (!p)
		return SK_DROP;
	se = bpf_map_lookup_elem(&gammad_khsre_v1, &id);
	if (se)
		bits = se->bits;
	/*
	 * ResponseHeaderModifier: a head whose request asked for edits (the
	 * client side's bits) is edited here when it starts the message (the
	 * walk below stops before one that starts later: that rest comes
	 * again as a message of its own), corked until it is whole.
	 */
	seq = sl->r.resp_seq;
	if (se && (bits & (1u << (seq & 31))) && !(sl->flags & GAMMAD_KH_SLOT_UNFRAMED) &&
	    sl->r.state == GAMMAD_KH_RS_STATUS && !sl->r.k && seq != sl->req_seq) {
		struct gammad_kh_key key = se->key[seq & 31];

		ed = kh_resp_edit(msg, &key);
		if (!ed) {
			/* corked: with a stale target (a rest), it comes again as one */
			if (rerun)
				sv->pad = KH_SV_CORKED;
			return SK_PASS;
		}
		if (ed == -1)
			return kh_server_to_engine(msg, sl, sv, id, seq, rerun);
		if (ed < 0) {
			kh_slot_cut(sl, id);
			return SK_DROP;
		}
		/* edited: its bit is spent (a 1xx keeps it for the final head) */
		if (ed == 1) {
			head_done = 1u << (seq & 31);
			__sync_fetch_and_and(&se->bits, ~head_done);
		}
	}
	size = msg->size;
	/*
	 * An unframed slot's parser state stopped where it lost the framing:
	 * a head to edit among the responses since then cannot be found (the
	 * client side sends no more such requests there; this catches one it
	 * sent as the slot turned).
	 */
	if ((sl->flags & GAMMAD_KH_SLOT_UNFRAMED) && se && kh_edits_ahead(sl, se->bits)) {
		kh_slot_cut(sl, id);
		return SK_DROP;
	}
	if (!(sl->flags & GAMMAD_KH_SLOT_UNFRAMED)) {
		kh_frame_begin(sl, p);
		p->edit_bits = bits;
		kh_frame_end(sl, p, kh_resp_parse_msg(msg, p));
		/*
		 * Unframed now (a coding we do not follow, more windows than we
		 * walk): where a later head starts is unknown, so one still to
		 * edit cannot be found. The client is cut, nothing of this goes.
		 */
		if ((sl->flags & GAMMAD_KH_SLOT_UNFRAMED) &&
		    (kh_edits_ahead(sl, bits) & ~head_done)) {
			kh_slot_cut(sl, id);
			return SK_DROP;
		}
		/* the rest from the next head to edit on is a message of its own */
		if (p->stop && p->stop < size) {
			sv->pad = size - p->stop;
			size = p->stop;
		}
	}
	/*
	 * Always set: a message's apply_bytes outlives the run that set it,
	 * and the rest after a stop would be cut at the earlier length.
	 */
	bpf_msg_apply_bytes(msg, size);
	if (bpf_msg_redirect_hash(msg, &gammad_khcli_v1, &owner, BPF_F_INGRESS) != SK_PASS) {
		/* the client is gone; this message over TCP, where the verdict drops it */
		kh_slot_orphan(sl, id, owner);
		return SK_PASS;
	}
	__sync_fetch_and_add(&sl->bytes_down, size);
	/*
	 * The L4 redirect's cap (sockops.bpf.c): this message still goes (the
	 * target is set), every later one over TCP to the upstream, whose
	 * verdict keeps it in the upstream's receive queue (SLOW), so TCP's
	 * window holds the backend; the agent is told as from the verdict.
	 */
	if ((__u64)msg_redir_queued(m) + size > kh_cap) {
		/*
		 * The agent relays a slow client's bytes as they are: a head
		 * still to edit must not go that way, the client is reset.
		 */
		if (kh_edits_ahead(sl, bits & ~head_done))
			kh_slot_cut(sl, id);
		else
			kh_slot_slow(sl, id);
	}
	return SK_PASS;
}

/*
 * A socket steered to the engine becomes a client the kernel serves: its
 * state (the Service port it dialed, its class, its netns for the pools),
 * the client sockhash, and its cookie under the origdst key for the agent's
 * accept. Its TCP_CLOSE is watched: the upstream it holds goes back.
 */
static __always_inline void kh_client_register(struct bpf_sock_ops *skops)
{
	struct gammad_origdst_key k = {};
	struct gammad_origdst_val v = {};
	struct bpf_sock *sk = skops->sk;
	struct gammad_kh_conn *c;
	__u64 cookie;
	__u8 one = 1;

	if (!sk || !engine_origin(skops, &k, &v))
		return;
	c = bpf_sk_storage_get(&gammad_khc_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		reason_inc(GAMMAD_R_SOCK_STORAGE);
		return;
	}
	cookie = bpf_get_socket_cookie(skops);
	c->cookie = cookie;
	c->netns_cookie = k.netns_cookie;
	__builtin_memcpy(c->fe.addr, v.vip, sizeof(c->fe.addr));
	c->fe.port = v.vip_port;
	c->fe.proto = IPPROTO_TCP;
	c->fe.family = v.family;
	c->ns_id = v.ns_id;
	c->flags = 0;
	c->slot = 0;
	c->ck_port = k.port;
	c->ck_family = k.family;
	if (bpf_sock_hash_update(skops, &gammad_khcli_v1, &cookie, BPF_ANY)) {
		/* not in the sockhash: the program never runs, TCP to the engine */
		reason_inc(GAMMAD_R_SOCKHASH_UPDATE);
		return;
	}
	c->state = GAMMAD_KHC_KERNEL;
	bpf_map_update_elem(&gammad_khfm_v1, &cookie, &one, BPF_ANY);
	bpf_map_update_elem(&gammad_khck_v1, &k, &cookie, BPF_ANY);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/*
 * A backend's accepted socket whose tuple the agent recorded for a pool
 * upstream (gammad_khsvk_v1; only with --sockmap): the same-node server
 * socket of that slot. Out of the L4 sockhash first (the main sockops
 * program, which runs before this one, put it there under --sockmap; a
 * socket takes one sk_msg program), into gammad_khsv_v1, tagged with its
 * slot; its cookie in the record tells the agent.
 */
static __always_inline void kh_server_register(struct bpf_sock_ops *skops)
{
	struct gammad_sock_key key = {};
	struct gammad_kh_srv *rec, *st;
	struct bpf_sock *sk = skops->sk;
	__u64 cookie;

	if (!sk || !SOCK_KEY_FROM_CTX(&key, skops))
		return;
	rec = bpf_map_lookup_elem(&gammad_khsvk_v1, &key);
	if (!rec || rec->cookie)
		return;
	st = bpf_sk_storage_get(&gammad_khsvst_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		reason_inc(GAMMAD_R_SOCK_STORAGE);
		return;
	}
	cookie = bpf_get_socket_cookie(skops);
	st->cookie = cookie;
	st->slot = rec->slot;
	bpf_map_delete_elem(&gammad_sockh_v1, &key);	/* -ENOENT without --sockmap */
	if (bpf_sock_hash_update(skops, &gammad_khsv_v1, &cookie, BPF_ANY)) {
		reason_inc(GAMMAD_R_SOCKHASH_UPDATE);
		return;
	}
	rec->cookie = cookie;
}

SEC("sockops")
int gammad_kh_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct gammad_kh_conn *c;

	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		kh_client_register(skops);
	} else if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		kh_server_register(skops);
	} else if (skops->op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == BPF_TCP_CLOSE && sk) {
		c = bpf_sk_storage_get(&gammad_khc_v1, sk, 0, 0);
		if (c && c->slot)
			kh_slot_release(c);
	}
	return 1;
}
