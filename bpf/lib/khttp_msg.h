/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A FORWARD verdict of bpf/lib/khttp.h carried out on the message itself
 * (sk_msg): the request head becomes what the rule backend gets, the target
 * rewritten, the removed field lines popped, the appended lines pushed
 * before the empty line. Edits go from the end of the head to its start,
 * so each one leaves the offsets of the next intact. Every push, pop and
 * pull invalidates the message's data pointers: they are read again after
 * each call.
 */
#ifndef GAMMAD_BPF_KHTTP_MSG_H
#define GAMMAD_BPF_KHTTP_MSG_H

#include "lib/khttp.h"

/* Bytes to write into a message: what a global function can take. */
struct kh_bytes {
	char b[GAMMAD_KH_APPEND_MAX];
};

_Static_assert(GAMMAD_KH_STR_MAX <= GAMMAD_KH_APPEND_MAX, "a rewrite prefix fits kh_bytes");

/* Write n bytes of src at off of the message: 0 or -1. */
KH_GLOBAL int kh_msg_write(struct sk_msg_md *msg, __u32 off, const struct kh_bytes *src, __u32 n)
{
	void *data, *end;

	if (!msg || !src)
		return -1;
	if (!n)
		return 0;
	if (n > GAMMAD_KH_APPEND_MAX || bpf_msg_pull_data(msg, off, off + n, 0))
		return -1;
	data = (void *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	for (__u32 i = 0; i < GAMMAD_KH_APPEND_MAX; i++) {
		char *p = data + i;

		if (i >= n)
			break;
		if ((void *)(p + 1) > end)
			return -1;
		*p = src->b[i];
	}
	return 0;
}

/* Pop the line of field i: its bytes, or -1. */
KH_GLOBAL int kh_msg_pop_field(struct sk_msg_md *msg, const struct gammad_kh_scratch *s, __u32 i)
{
	__u32 start, stop, nr;

	if (!msg || !s)
		return -1;
	nr = s->req.nr_fields;
	if (i >= nr || i >= GAMMAD_KH_FIELDS_MAX)
		return -1;
	/* keep the bound through clang's 32 -> 64 bit extension (brief: traps) */
	asm volatile("" : "+r"(i));
	i &= KH_FIELD_MASK;
	/* a line runs to the next one's name, the last one to the empty line */
	start = s->req.fields[i].name_off;
	stop = i + 1 < nr ? s->req.fields[(i + 1) & KH_FIELD_MASK].name_off :
	       (__u32)s->req.head_len - 2;
	if (stop <= start || bpf_msg_pop_data(msg, start, stop - start, 0))
		return -1;
	return stop - start;
}

/* Pop the field lines whose bit is set in s->v.remove_mask: bytes removed, or -1. */
KH_GLOBAL int kh_msg_pop_fields(struct sk_msg_md *msg, const struct gammad_kh_scratch *s)
{
	int removed = 0, n;

	if (!msg || !s)
		return -1;
	if (!s->v.remove_mask)
		return 0;
	/* last first: the lines before keep their offsets */
	for (__u32 j = 0; j < GAMMAD_KH_FIELDS_MAX; j++) {
		__u32 i = GAMMAD_KH_FIELDS_MAX - 1 - j;

		if (!(s->v.remove_mask & (1u << i)))
			continue;
		n = kh_msg_pop_field(msg, s, i);
		if (n < 0)
			return -1;
		removed += n;
	}
	return removed;
}

/*
 * The field edits of rb on the head at the start of msg (parsed into s,
 * s->v.remove_mask its fields rb removes): rb's lines appended before the
 * empty line, the removed lines popped. A request's head (kh_msg_edit) and
 * a response's (GAMMAD_KH_RB_RESP records, khttp_path.h) alike. The new
 * head length, or -1.
 */
KH_GLOBAL int kh_msg_edit_fields(struct sk_msg_md *msg, const struct gammad_kh_scratch *s,
				 const struct gammad_kh_rb *rb)
{
	__u32 len, alen;
	int removed;

	if (!msg || !s || !rb)
		return -1;
	len = s->req.head_len;
	alen = rb->append_len;
	if (alen > GAMMAD_KH_APPEND_MAX || len < 4 || len > GAMMAD_KH_HEAD_MAX)
		return -1;
	/* 1. the appended lines, before the empty line */
	if (alen && (bpf_msg_push_data(msg, len - 2, alen, 0) ||
		     kh_msg_write(msg, len - 2, (const struct kh_bytes *)rb->append, alen)))
		return -1;
	/* 2. the removed fields (their offsets lie before the pushed lines) */
	removed = kh_msg_pop_fields(msg, s);
	if (removed < 0)
		return -1;
	return len + alen - removed;
}

/*
 * Edit the head at the start of msg per s->v (a FORWARD to rb): the new
 * head length, or -1 (the message is then not to be sent anywhere).
 */
KH_GLOBAL int kh_msg_edit(struct sk_msg_md *msg, const struct gammad_kh_scratch *s,
			  const struct gammad_kh_rb *rb)
{
	__u32 plen = 0, cut = 0, off;
	int len;

	if (!msg || !s || !rb)
		return -1;
	off = s->req.target_off;
	if (s->v.rw_kind) {
		cut = s->v.rw_cut;
		plen = s->v.rw_kind == 1 ? rb->path.value.len : 1;
		if (plen > GAMMAD_KH_STR_MAX || cut > s->req.target_len)
			return -1;
	}
	/* 1, 2. the appended lines and the removed fields */
	len = kh_msg_edit_fields(msg, s, rb);
	if (len < 0)
		return -1;
	/* 3. the target: its first cut bytes become the prefix ("/" for kind 2) */
	if (cut && bpf_msg_pop_data(msg, off, cut, 0))
		return -1;
	if (plen && bpf_msg_push_data(msg, off, plen, 0))
		return -1;
	if (s->v.rw_kind == 1 && kh_msg_write(msg, off, (const struct kh_bytes *)rb->path.value.s,
					      plen))
		return -1;
	if (s->v.rw_kind == 2) {
		char *p;

		if (bpf_msg_pull_data(msg, off, off + 1, 0))
			return -1;
		p = (void *)(long)msg->data;
		if ((void *)(p + 1) > (void *)(long)msg->data_end)
			return -1;
		*p = '/';
	}
	return len - cut + plen;
}

#endif
