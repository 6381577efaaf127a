// SPDX-License-Identifier: Apache-2.0
/*
 * Restarts: the engine's side of handing its client connections to a
 * successor (engine.h: engine_handoff; the successor takes them with
 * engine_adopt_http, in engine.c). The agent's side,
 * the unix socket the fds travel over, is user/gammad/handover.c.
 *
 * A connection is given away only at a request boundary, so that no state
 * but the socket itself and its origin has to travel: no request in flight,
 * no upstream, not a byte of the next request read (what the client sends
 * next waits in the socket's receive queue for whoever reads it next),
 * nothing left to send. The successor's engine then starts it in CS_HEAD.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine_int.h"
#include "base/log.h"

int engine_handoff(struct engine *e, engine_give_fn give, void *ctx)
{
	uint64_t one = 1;

	if (!e || !give)
		return -EINVAL;
	e = e->group;
	for (unsigned int i = 0; i < e->nr_loops; i++) {
		struct engine *l = e->loops[i];

		pthread_mutex_lock(&l->lock);
		l->give_ctx = ctx;
		__atomic_store_n(&l->give, give, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&l->lock);
		/* Idle connections have no event coming: a turn of every loop now. */
		if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 0;
}

/*
 * Nothing of a request is here: a keep-alive connection between requests
 * (CS_HEAD, no head started) or one that has said nothing yet (CS_SNIFF).
 * A client that half-closed, a tunnel, a closing connection stay.
 */
static bool at_boundary(const struct cconn *c)
{
	if (c->dead || c->in.len || c->out.len || c->up || c->tab || c->rd_eof || c->wr_shut ||
	    c->log_pending || c->retry_at)
		return false;
	/*
	 * One the kernel HTTP path may serve: as any other, once our answers no
	 * longer wait for the kernel's and no FIN is due (give() keeps it here
	 * when the successor does not take the kernel's upstreams), and not
	 * while the engine relays its upstream (engine_relay.c: that socket is
	 * this engine's).
	 */
	if (c->origin.kernel_cookie && (c->kh_hold || c->kh_eof || c->rl.fd >= 0))
		return false;
	return (c->state == CS_HEAD && !c->head_start) || c->state == CS_SNIFF;
}

void eng_handoff_run(struct engine *e)
{
	engine_give_fn give = __atomic_load_n(&e->give, __ATOMIC_ACQUIRE);
	struct cconn *c, *next;

	if (give)
		eng_h2_handoff(e);	/* HTTP/2 is never at a boundary: GOAWAY instead */

	/* give() is called by one loop at a time: its socket is one stream */
	pthread_mutex_lock(&e->group->give_lock);
	give = __atomic_load_n(&e->give, __ATOMIC_ACQUIRE);	/* another loop may have stopped it */
	for (c = e->clients; c && give; c = next) {
		int err;

		next = c->next;
		if (!at_boundary(c))
			continue;
		err = give(e->give_ctx, c->fd, &c->origin, c->state == CS_HEAD);
		if (err == -EAGAIN)
			break;		/* the successor is behind: next turn */
		if (err == -EXDEV)
			continue;	/* stays here */
		if (err) {
			pr_warn("engine: handing connections over: %s; the rest are served "
				"here", strerror(-err));
			for (unsigned int i = 0; i < e->group->nr_loops; i++)
				__atomic_store_n(&e->group->loops[i]->give, NULL, __ATOMIC_RELEASE);
			break;
		}
		/*
		 * Out of our epoll before the close: the file lives on in the
		 * successor, and its events must not reach this freed connection.
		 * No shutdown, no linger: the socket is the successor's now.
		 */
		if (epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL))
			pr_warn("engine: %s: epoll del: %s", c->origin.client_pod, strerror(errno));
		eng_client_close(e, c, false);
	}
	pthread_mutex_unlock(&e->group->give_lock);
}
