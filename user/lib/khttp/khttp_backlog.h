/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a kernel-served client still has bytes the kernel redirected to
 * it waiting in its psock's ingress_skb (bpf/khttp_iter.bpf.c, read in the
 * client's netns). Bytes the agent writes to such a client over TCP (the
 * relay of a slow reader, the FIN after a close-delimited response) must
 * wait until that queue is empty, or the client's recv() would take them
 * first. Any thread.
 */
#ifndef GAMMAD_KHTTP_BACKLOG_H
#define GAMMAD_KHTTP_BACKLOG_H

#include <stdint.h>

struct kh_backlog;

/* Load and attach the iterator: 0 or -errno (then no exact signal here). */
int kh_backlog_open(struct kh_backlog **out);
void kh_backlog_free(struct kh_backlog *b);
/*
 * 1: the client with socket cookie `cookie` in the netns netns_fd has
 * skbs in its ingress_skb, 0: it has none (or is gone), -errno.
 */
int kh_backlog_pending(struct kh_backlog *b, int netns_fd, uint64_t cookie);

#endif
