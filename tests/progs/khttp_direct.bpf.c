// SPDX-License-Identifier: Apache-2.0
/*
 * The floor of the remote-node direct design (docs/ARCHITECTURE.md, "Still
 * to come, the remote-node latency"): what the kernel would do per request
 * on a client socket connected by TCP straight to the endpoint, measured
 * (tests/prog_tests/khttp_direct.c), not a data path. The client's sk_msg
 * does what gammad_kh_client does for a FORWARD to the connected endpoint
 * (its state, the table of its class, the head copied, parsed and matched,
 * the endpoint drawn and checked, the slot's sequence and HEAD bits, the
 * head edited, apply_bytes, the counter) and passes the message over its
 * own TCP; the verdict on the same socket frames each response skb as
 * gammad_kh_upstream does and passes it to the socket itself (synchronous,
 * no work queue). The framing state lives in slot kd_slot.
 */
#include "lib/khttp_path.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __u64);
} kd_sock SEC(".maps");

/* the same without a verdict: the sk_msg alone */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __u64);
} kd_sock_msg SEC(".maps");

/* the verdict's slot (the sk_msg uses its socket's c->slot) */
const volatile __u32 kd_slot = 0;

/* both programs pass at once: what the sockhash alone costs */
__u32 kd_trivial;
/* requests passed; requests the floor would not have served (a wrong setup) */
__u64 kd_passed, kd_other;

SEC("sk_msg")
int kd_client(struct sk_msg_md *msg)
{
	struct gammad_kh_pool_key pk = {};
	struct gammad_kh_scratch *s;
	struct gammad_kh_conn *c;
	struct gammad_kh_slot *sl;
	struct gammad_kh_rb *rb = NULL;
	struct gammad_kh_key key;
	__u32 zero = 0, len, tab, id, seq, bit;
	int head;
	void *data;

	if (!msg->sk || kd_trivial)
		return SK_PASS;
	c = bpf_sk_storage_get(&gammad_khc_v1, msg->sk, 0, 0);
	if (!c || c->state != GAMMAD_KHC_KERNEL)
		goto other;
	id = c->slot;
	s = bpf_map_lookup_elem(&gammad_khscr_v1, &zero);
	sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
	if (!s || !sl || kh_conn_table(c, &tab))
		goto other;
	len = msg->size;
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	if (!len || bpf_msg_pull_data(msg, 0, len, 0))
		goto other;
	data = (void *)(long)msg->data;
	if (bpf_probe_read_kernel(s->buf, len, data))
		goto other;
	s->len = len;
	s->tab = tab;
	s->draw[0] = bpf_get_prandom_u32();
	s->draw[1] = bpf_get_prandom_u32();
	kh_request(s);
	if (s->v.action != GAMMAD_KH_FORWARD || !s->req.minor || kh_hop_by_hop(s))
		goto other;
	key.tab = s->tab;
	key.idx = s->v.rb;
	/* as kh_forward: the record again only for the edits it makes */
	if (kh_forward_edits(s)) {
		rb = bpf_map_lookup_elem(&gammad_khrb_v1, &key);
		if (!rb)
			goto other;
	}
	/* the draw: the connected endpoint's (a real mode compares it with the peer) */
	if (kh_endpoint(c, s->v.be_id, &pk))
		goto other;
	if (!(s->v.tab_flags & GAMMAD_KH_TAB_F_NO_RESP)) {
		key.idx = s->v.rb | GAMMAD_KH_RB_RESP;
		if (bpf_map_lookup_elem(&gammad_khrb_v1, &key))
			goto other;
	}
	seq = sl->req_seq;
	bit = 1u << (seq & 31);
	__sync_fetch_and_and(&sl->head_bits, ~bit);
	head = rb ? kh_msg_edit(msg, s, rb) : s->req.head_len;
	if (head < 0)
		return SK_DROP;
	sl->req_seq = seq + 1;
	bpf_msg_apply_bytes(msg, (__u64)head + s->req.content_length);
	kh_count(GAMMAD_KH_R_SERVED);
	__sync_fetch_and_add(&kd_passed, 1);
	return SK_PASS;
other:
	__sync_fetch_and_add(&kd_other, 1);
	return SK_PASS;
}

SEC("sk_skb")
int kd_resp(struct __sk_buff *skb)
{
	struct kh_rscratch *p;
	struct gammad_kh_slot *sl;
	__u32 zero = 0, id = kd_slot;

	if (!skb->len || kd_trivial)
		return SK_PASS;
	sl = bpf_map_lookup_elem(&gammad_khslot_v1, &id);
	p = bpf_map_lookup_elem(&gammad_khrscr_v1, &zero);
	if (!sl || !p)
		return SK_PASS;
	if (!(sl->flags & GAMMAD_KH_SLOT_UNFRAMED)) {
		kh_frame_begin(sl, p);
		kh_frame_end(sl, p, kh_resp_parse(skb, 0, p));
	}
	return SK_PASS;
}
