// SPDX-License-Identifier: Apache-2.0
/*
 * The write queue of dp_batch_begin() (datapath.h): map writes gathered in
 * stages and written with one BPF_MAP_UPDATE_BATCH per (stage, map), so a
 * cold apply of 10,000 Services costs a few dozen syscalls instead of
 * ~130,000 single updates. Stages are written in the publication order
 * (datapath.h): begin markers of the object table, counters, the route
 * tables innermost first, the objects' final entries, frontends, and the
 * frontend objects that name the table a frontend now points at.
 *
 * Below datapath.c (which owns dp_batch_*): what the kernel took and a
 * full map are reported through the callbacks given to wq_new().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "datapath_int.h"
#include "map_dump.h"

#define WQ_MAX_MAPS 8	/* per stage; more maps than that flush early */
/*
 * Queued bytes that flush early: kernel HTTP records are kilobytes each
 * (10,000 tables queue ~100 MB otherwise). Any prefix of the queue written
 * stage by stage is complete: each write was queued after what it names.
 */
#define WQ_MAX_BYTES (16u << 20)

struct wq_seg {
	int fd;
	uint32_t ksz, vsz;		/* vsz: per-CPU maps hold one value per CPU */
	size_t nr, cap;
	unsigned char *keys, *vals;
};

struct dp_wq {
	struct wq_seg segs[DP_WQ_NR][WQ_MAX_MAPS];
	int nr_segs[DP_WQ_NR];
	size_t queued, bytes;
	int nr_cpus;
	const struct wq_hooks *hooks;
	void *ctx;
};

static bool percpu_type(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int seg_init(const struct dp_wq *q, struct wq_seg *s, int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->ksz = info.key_size;
	s->vsz = percpu_type(info.type) ? ((info.value_size + 7) & ~7u) * (uint32_t)q->nr_cpus :
		 info.value_size;
	return 0;
}

/* Write one segment; what the kernel took goes to the mirror, also of a batch cut short. */
static int seg_flush(struct dp_wq *q, struct wq_seg *s)
{
	size_t taken = 0;
	int err = map_write_many(s->fd, s->keys, s->vals, s->ksz, s->vsz, s->nr, &taken);

	for (size_t i = 0; i < taken; i++)
		q->hooks->taken(q->ctx, s->fd, s->keys + i * s->ksz, s->vals + i * s->vsz);
	if (err == -E2BIG || err == -ENOSPC)
		q->hooks->full(s->fd);
	s->nr = 0;
	return err;
}

int wq_flush(struct dp_wq *q)
{
	int err = 0;

	if (!q || !q->queued)
		return 0;
	/* Stage by stage, in the publication order; nothing after a failed write. */
	for (int st = 0; st < DP_WQ_NR; st++)
		for (int i = 0; i < q->nr_segs[st]; i++)
			if (!err)
				err = seg_flush(q, &q->segs[st][i]);
			else
				q->segs[st][i].nr = 0;
	q->queued = 0;
	q->bytes = 0;
	return err;
}

struct dp_wq *wq_new(int nr_cpus, const struct wq_hooks *hooks, void *ctx)
{
	struct dp_wq *q = calloc(1, sizeof(*q));

	if (q) {
		q->nr_cpus = nr_cpus;
		q->hooks = hooks;
		q->ctx = ctx;
	}
	return q;
}

void wq_free(struct dp_wq *q)
{
	if (!q)
		return;
	for (int st = 0; st < DP_WQ_NR; st++)
		for (int i = 0; i < q->nr_segs[st]; i++) {
			free(q->segs[st][i].keys);
			free(q->segs[st][i].vals);
		}
	free(q);
}

static int seg_grow(struct wq_seg *s)
{
	size_t cap = s->cap ? s->cap * 2 : 256;
	unsigned char *k = realloc(s->keys, cap * s->ksz), *v;

	if (!k)
		return -ENOMEM;
	s->keys = k;
	v = realloc(s->vals, cap * s->vsz);
	if (!v)
		return -ENOMEM;
	s->vals = v;
	s->cap = cap;
	return 0;
}

/* 0 or -errno. A stage with more maps than it holds is flushed first (the order stays). */
int wq_put(struct dp_wq *q, enum dp_wq_stage st, int fd, const void *k, const void *v)
{
	struct wq_seg *s = NULL;
	int err;

	for (int i = 0; i < q->nr_segs[st] && !s; i++)
		if (q->segs[st][i].fd == fd)
			s = &q->segs[st][i];
	if (!s) {
		if (q->nr_segs[st] == WQ_MAX_MAPS) {
			err = wq_flush(q);
			if (err)
				return err;
			for (int i = 0; i < q->nr_segs[st]; i++) {
				free(q->segs[st][i].keys);
				free(q->segs[st][i].vals);
			}
			q->nr_segs[st] = 0;
		}
		s = &q->segs[st][q->nr_segs[st]];
		err = seg_init(q, s, fd);
		if (err)
			return err;
		q->nr_segs[st]++;
	}
	if (s->nr == s->cap && (err = seg_grow(s)))
		return err;
	memcpy(s->keys + s->nr * s->ksz, k, s->ksz);
	memcpy(s->vals + s->nr * s->vsz, v, s->vsz);
	s->nr++;
	q->queued++;
	q->bytes += s->ksz + s->vsz;
	return q->bytes >= WQ_MAX_BYTES ? wq_flush(q) : 0;
}
