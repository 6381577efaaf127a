// SPDX-License-Identifier: Apache-2.0
/*
 * A slow reader of the kernel HTTP path, relayed (engine_kernel_relay).
 *
 * The kernel redirects an upstream's response into its client's sockmap
 * ingress, where nothing bounds it; past the kernel's cap the upstream's
 * verdict keeps the rest on the upstream socket (its window closes on the
 * backend) and the agent hands that socket here. From then on the engine
 * copies it to the client over TCP with its own buffer: while the client
 * does not read, the buffer is full, nothing is read from the upstream and
 * TCP holds the backend, so memory stays bounded at every step.
 *
 * Order: the client's recv() takes its sockmap queue (ingress_msg) first,
 * but TCP's receive queue as soon as that one is empty, even with skbs the
 * kernel redirected still waiting in the psock's ingress_skb (moved to
 * ingress_msg by a work queue, only while the client reads). So nothing is
 * written to the client until opts.kernel_state says that queue is empty
 * (asked every tick); after SLOW nothing is added to it, so empty is final.
 * Bytes read from the upstream meanwhile wait in the buffer.
 *
 * End: the verdict frames what it keeps too, so the slot says when the
 * last response owed on it has arrived: once it has and the upstream has
 * nothing more, the relay ends and the engine's own answers to the
 * client's later requests (held while it runs) go. The upstream's close
 * ends it as well: after a close-delimited response the client gets a FIN
 * (as from the engine), after a whole one nothing, after a cut one a reset.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_int.h"
#include "base/log.h"

static unsigned int relay_state(struct engine *e, struct cconn *c, uint32_t slot,
				unsigned int want)
{
	return e->o.kernel_state(e->o.ctx, c->origin.kernel_cookie, c->origin.netns_ctx, slot,
				 want);
}

void eng_relay_attach(struct engine *e, struct cconn *c, int fd, uint32_t slot)
{
	struct krelay *r = &c->rl;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = r };
	int one = 1;

	if (r->fd >= 0) {
		close(fd);	/* told twice */
		return;
	}
	if (ebuf_alloc(e, &r->buf) || ioctl(fd, FIONBIO, &one)) {
		pr_warn("engine: cannot relay a slow client of %s: %s: reset",
			c->origin.client_pod, strerror(errno ? errno : ENOMEM));
		close(fd);
		eng_client_close(e, c, true);
		return;
	}
	/* fixed buffers (no autotuning): what the upstream holds for a stalled client is bounded */
	eng_sock_setup(e, fd);
	eng_client_sock_setup(e, c);
	r->fd = fd;
	r->slot = slot;
	r->rd_ready = true;
	r->rd_hup = r->eof = r->drained = false;
	r->err = 0;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		pr_warn("engine: cannot watch the relayed upstream of %s: %s: reset",
			c->origin.client_pod, strerror(errno));
		eng_client_close(e, c, true);
		return;
	}
	eng_stat_add(e, &e->st.kernel_relays, 1);
	eng_relay_tick(e, c);	/* drained already (the usual case for a reader that reads) */
}

void eng_kernel_fin(struct engine *e, struct cconn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->wr_shut = true;
	c->kernel = false;
	c->state = CS_LINGER;
	c->linger_until = e->now + ENGINE_LINGER_MS;
}

void eng_relay_tick(struct engine *e, struct cconn *c)
{
	if (!(relay_state(e, c, UINT32_MAX, ENGINE_KH_DRAINED) & ENGINE_KH_DRAINED))
		return;
	c->rl.drained = true;
	c->last_io = e->now;
}

/* The upstream closed and everything it sent is at the client: how it ends. */
static void relay_eof(struct engine *e, struct cconn *c)
{
	unsigned int st = relay_state(e, c, c->rl.slot, 0);

	eng_relay_free(e, c);
	if (!(st & (ENGINE_KH_CLOSE | ENGINE_KH_WHOLE))) {
		eng_client_close(e, c, true);	/* cut mid-response: a reset, never a clean end */
		return;
	}
	/* close-delimited: whole now, ended as the engine ends one (unless it has requests) */
	if ((st & ENGINE_KH_CLOSE) && c->state == CS_SNIFF && !c->in.len)
		eng_kernel_fin(e, c);
}

bool eng_relay_run(struct engine *e, struct cconn *c, int *cerr)
{
	struct krelay *r = &c->rl;
	bool moved;
	unsigned int st;

	/* read while there is room: a full buffer leaves the rest to TCP's window */
	moved = ebuf_recv(r->fd, &r->buf, &r->rd_ready, r->rd_hup, &r->eof, &r->err);
	if (!r->drained)
		return moved;
	moved |= ebuf_send(c->fd, &r->buf, &c->wr_ready, cerr);
	if (r->buf.len || *cerr)
		return moved;
	if (r->err) {
		eng_relay_free(e, c);
		eng_client_close(e, c, true);
		return true;
	}
	if (r->eof) {
		relay_eof(e, c);
		return true;
	}
	if (r->rd_ready)
		return moved;
	/*
	 * Nothing left for now. The last response owed is in when the slot
	 * says so; its bytes were kept before it said so, so one more read
	 * finding nothing means they are all out.
	 */
	st = relay_state(e, c, r->slot, 0);
	if (!(st & ENGINE_KH_WHOLE) || (st & ENGINE_KH_CLOSE))
		return moved;
	r->rd_ready = true;
	if (ebuf_recv(r->fd, &r->buf, &r->rd_ready, r->rd_hup, &r->eof, &r->err))
		return true;	/* more after all: the next pass */
	eng_relay_free(e, c);
	return true;
}
