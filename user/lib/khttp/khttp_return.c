// SPDX-License-Identifier: Apache-2.0
/* The engine gives a miss's connection back to the kernel: see khttp_return.h. */
#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>

#include "gammad/maps.h"
#include "khttp_return.h"

/*
 * rx: what fd received, all read (a peek after the count finds nothing:
 * no byte counted that the engine has not read; SIOCINQ of a socket in a
 * sockhash counts its sockmap queue alone). tx: acked + not acked yet,
 * read between two equal SIOCOUTQ (no ACK moved the count meanwhile), +
 * out_len still to send.
 */
int kh_return_mark(int map_ret, uint64_t cookie, int fd, size_t out_len)
{
	struct gammad_kh_ret r = { .ready = 1 };
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq, outq2;
	char b;

	if (ioctl(fd, SIOCOUTQ, &outq) || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    ioctl(fd, SIOCOUTQ, &outq2))
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return -EOPNOTSUPP;
	if (outq != outq2 || outq < 0)
		return -EAGAIN;
	if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		return -EAGAIN;
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	r.rx = ti.tcpi_bytes_received;
	r.tx = ti.tcpi_bytes_acked + (uint64_t)outq + out_len;
	/* only over the kernel's own entry: an evicted one is not asked for */
	return bpf_map_update_elem(map_ret, &cookie, &r, BPF_EXIST) ? -errno : 0;
}
