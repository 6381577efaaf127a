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
 *
 * Edits: a response head that needed ResponseHeaderModifier edits the
 * kernel could not make (a same-node server's head over its limits) stops
 * the kernel at that head's start, with nothing of it delivered: the kept
 * bytes begin there (GAMMAD_KH_SLOT_EDIT). Such a relay frames what it
 * copies (eng_fwd_body, the engine's own) and writes each head that needs
 * edits as the engine writes the heads of requests it serves itself
 * (eng_write_response_head, with the filters opts.kernel_resp finds for
 * the kernel's record of that request); other heads go as they are, as
 * the kernel sends them.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_int.h"
#include "base/log.h"
#include "translate/translate.h"

static unsigned int relay_state(struct engine *e, struct cconn *c, uint32_t slot,
				unsigned int want)
{
	return e->o.kernel_state(e->o.ctx, c->origin.kernel_cookie, c->origin.netns_ctx, slot,
				 want);
}

/*
 * Does the relay start with a head the kernel could not edit? Then it
 * frames and edits (the filters live in the tables it holds from here).
 * 0, or -errno (the client is reset).
 */
static int relay_edit_start(struct engine *e, struct cconn *c)
{
	struct krelay *r = &c->rl;
	struct engine_kh_resp kr = { 0 };
	const struct tr_port *port;

	r->edit = r->in_body = false;
	if (!e->o.kernel_resp || e->o.kernel_resp(e->o.ctx, r->slot, UINT32_MAX, NULL, 0, &kr))
		return 0;	/* a slow reader's: its bytes as they are */
	r->edit = true;
	r->seq = kr.seq;
	memset(&r->scan, 0, sizeof(r->scan));
	if (ebuf_alloc(e, &r->out))
		return -ENOMEM;
	r->tab = eng_tables_get(e);
	port = r->tab ? eng_tables_port(r->tab, &c->origin) : NULL;
	r->cls = port ? tr_port_class(port, c->origin.client_ns) : NULL;
	if (!r->cls)
		return -ENOENT;
	r->port = port->port->port;
	eng_stat_add(e, &e->st.kernel_relay_edits, 1);
	return 0;
}

/*
 * Frame and edit what was read (an edit relay): the next head, once it is
 * whole in buf and out has room, then its body as it goes. Whether
 * anything moved; -1: the client is to be reset (a head or chunked body
 * out of shape, edits whose record went, nothing to write them with).
 */
static int relay_edit(struct engine *e, struct cconn *c)
{
	struct krelay *r = &c->rl;
	bool moved = false, done;
	struct engine_kh_resp kr;
	static const struct h1_str get = { "GET", 3 }, head = { "HEAD", 4 };
	struct resp_filters rf = { 0 };
	struct h1_head *h = e->head;
	long n;
	int ret;

	for (;;) {
		if (r->in_body) {
			ret = eng_fwd_body(&r->buf, &r->out, r->body, &r->left, &r->ch, false, &done);
			if (ret < 0)
				return -1;
			moved |= ret > 0;
			if (!done)
				return moved;
			r->in_body = false;
			r->seq++;
			continue;
		}
		if (!r->buf.len || r->out.len)
			return moved;	/* a head is written into an empty out: it fits, as the engine's */
		n = h1_head_end(r->buf.p + r->buf.off, r->buf.len, &e->lim, &r->scan);
		if (n < 0)
			return -1;
		if (!n)
			return moved;
		if (e->o.kernel_resp(e->o.ctx, r->slot, r->seq, r->cls, r->port, &kr))
			return -1;
		ret = h1_parse_response(r->buf.p + r->buf.off, n, kr.head ? &head : &get, h);
		if (ret)
			return -1;
		/* never asked for (the kernel passes no Upgrade): refused, as the engine does */
		if (h->status == 101)
			return -1;
		if (kr.edit && h->status >= 200) {
			rf = (struct resp_filters){ { kr.filters[0], kr.filters[1] },
						    { kr.nr_filters[0], kr.nr_filters[1] } };
			/* close-delimited: its end is the close, as the engine says it */
			if (eng_write_response_head(&rf, h, false, h->body == H1_BODY_CLOSE, 1,
						    &r->out))
				return -1;
		} else if (ebuf_append(&r->out, r->buf.p + r->buf.off, n)) {
			return -1;
		}
		ebuf_consume(&r->buf, n);
		memset(&r->scan, 0, sizeof(r->scan));
		moved = true;
		if (h->status < 200)
			continue;	/* interim: the final head of the same response follows */
		r->in_body = true;
		r->body = h->body;
		r->left = h->content_length;
		memset(&r->ch, 0, sizeof(r->ch));
	}
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
	if (relay_edit_start(e, c)) {
		pr_warn("engine: cannot edit the relayed responses of %s: reset",
			c->origin.client_pod);
		eng_client_close(e, c, true);
		return;
	}
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
	eng_stat_add(e, &e->st.kernel_eofs, 1);
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
	bool left = c->rl.buf.len > 0;	/* an edit relay's head or body cut short */

	eng_relay_free(e, c);
	if (left || !(st & (ENGINE_KH_CLOSE | ENGINE_KH_WHOLE))) {
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
	if (r->edit) {
		int ed = relay_edit(e, c);

		if (ed < 0) {
			pr_debug("engine: %s: a relayed response cannot be edited: reset",
				 c->origin.client_pod);
			eng_client_close(e, c, true);
			return true;
		}
		moved |= ed > 0;
		moved |= ebuf_send(c->fd, &r->out, &c->wr_ready, cerr);
		/* edited, sent, and a head more may fit now */
		if (!r->out.len && r->buf.len && !*cerr && relay_edit(e, c) > 0)
			moved |= ebuf_send(c->fd, &r->out, &c->wr_ready, cerr);
		if (r->out.len || *cerr)
			return moved;
		/* the rest of a head or body that never comes */
		if (r->buf.len && !r->eof && !r->err)
			return moved;
	} else {
		moved |= ebuf_send(c->fd, &r->buf, &c->wr_ready, cerr);
		if (r->buf.len || *cerr)
			return moved;
	}
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
