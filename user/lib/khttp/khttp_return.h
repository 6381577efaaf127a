/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A connection the kernel HTTP path handed to the engine for a miss (no
 * upstream yet) goes back to the kernel: what the engine's socket has
 * received and will have sent, for the client's next message to compare
 * with its own TCP (gammad_khret_v1, bpf/khttp.bpf.c kh_returned).
 */
#ifndef GAMMAD_KHTTP_RETURN_H
#define GAMMAD_KHTTP_RETURN_H

#include <stddef.h>
#include <stdint.h>

/*
 * The engine holds nothing of client cookie's bytes and out_len bytes of
 * its last answer are still to go out on fd (its socket), nothing after
 * them: written into map_ret (an entry the kernel made at the hand-over).
 * 0, -EAGAIN when fd has unread bytes or its counts moved while read, or
 * -errno (-ENOENT: the kernel wants nothing back).
 */
int kh_return_mark(int map_ret, uint64_t cookie, int fd, size_t out_len);

#endif
