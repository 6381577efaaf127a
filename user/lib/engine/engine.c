// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP engine's event loop: lifecycle, publishing tables, taking client
 * connections, their I/O and the timers. What a request does is
 * engine_req.c; what both share (buffers, tables, the upstream pool) is
 * engine_conn.c.
 *
 * epoll is edge triggered: each side remembers whether it may read or write
 * (rd_ready, wr_ready) until a call says EAGAIN (or a read comes back short,
 * see ebuf_recv), and a side whose buffer is
 * full is simply not read. That is the backpressure: the kernel's receive
 * buffer fills and TCP closes the window.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine_int.h"
#include "base/log.h"

#define EVENTS_MAX 64
#define TICK_MS 100		/* timers are checked this often */
#define RUN_PASSES_MAX 32	/* I/O passes of one client per turn, then others' turn */

static void client_run(struct engine *e, struct cconn *c);
static void eng_reap(struct engine *e);

/* The loop running in this thread, NULL in any other thread. */
static __thread struct engine *tl_loop;

int engine_set_tables(struct engine *e, struct tr_result *res)
{
	struct eng_tables *t, *old;
	size_t n = 0;

	if (!e || !res)
		return -EINVAL;
	e = e->group;
	t = calloc(1, sizeof(*t));
	if (!t) {
		eng_release_res(e, res);
		return -ENOMEM;
	}
	t->refs = 1;
	t->res = res;
	t->e = e;
	/* Every (ClusterIP, TCP port) of every Service port the translation has. */
	for (size_t i = 0; i < res->nr_ports; i++)
		if (res->ports[i].svc)
			n += res->ports[i].svc->nr_cluster_ips;
	for (t->vips_cap = 16; t->vips_cap < 2 * n; t->vips_cap *= 2)
		;
	t->vips = calloc(t->vips_cap, sizeof(*t->vips));
	if (!t->vips) {
		eng_tables_put(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < res->nr_ports; i++) {
		const struct tr_port *p = &res->ports[i];

		if (!p->svc || !p->port || p->port->protocol != L4_TCP)
			continue;
		for (size_t j = 0; j < p->svc->nr_cluster_ips; j++) {
			const struct ip_addr *a = &p->svc->cluster_ips[j];
			struct eng_vip *v = eng_tables_slot(t, a, p->port->port);

			if (v->p)
				continue;	/* the first port in sort order has a shared ClusterIP */
			memset(v, 0, sizeof(*v));
			v->family = a->family;
			v->port = p->port->port;
			memcpy(v->addr, a->addr, a->family == AF_INET ? 4 : sizeof(v->addr));
			v->p = p;
		}
	}
	/* Counter slots resolved now, not per request; without, requests count as none. */
	old = eng_tables_get(e);
	t->mix = eng_metrics_index_new(e->metrics, res, old ? old->mix : NULL);
	eng_tables_put(old);
	if (!t->mix)
		pr_warn("engine: no memory for the metrics index: requests count without route");
	/* One reference per loop: each serves the same tables, read-only. */
	t->refs = (int)e->nr_loops;
	pthread_mutex_lock(&e->lock);
	t->generation = ++e->generation;
	pthread_mutex_unlock(&e->lock);
	for (unsigned int i = 0; i < e->nr_loops; i++) {
		struct engine *l = e->loops[i];
		struct eng_tables *prev;

		pthread_mutex_lock(&l->lock);
		prev = l->tables;
		l->tables = t;
		pthread_mutex_unlock(&l->lock);
		eng_tables_put(prev);
	}
	return 0;
}

static void kernel_stashed(struct engine *e, struct cconn *c);

static void client_new(struct engine *e, struct pending *p)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct cconn *c;
	int one = 1;

	if (__atomic_load_n(&e->group->conns, __ATOMIC_RELAXED) >= e->o.max_conns) {
		pr_warn("engine: %u client connections, refusing one from %s", e->o.max_conns,
			p->origin.client_pod);
		close(p->fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || ebuf_alloc(e, &c->in) || ebuf_alloc(e, &c->out))
		goto fail;
	c->kind = EOBJ_CLIENT;
	c->fd = p->fd;
	c->rl.kind = EOBJ_RELAY;
	c->rl.fd = -1;
	c->origin = p->origin;
	c->last_io = e->now;
	/* CS_SNIFF: since when the client said nothing; a handed-over one is HTTP */
	c->state = p->http ? CS_HEAD : CS_SNIFF;
	c->head_start = p->http ? 0 : e->now;
	/* a predecessor's, handed over for a miss before it could give it back */
	c->kh_ret = p->http && p->origin.kernel_cookie && e->o.kernel_returnable &&
		    e->o.kernel_returnable(e->o.ctx, p->origin.kernel_cookie);
	c->rd_ready = c->wr_ready = true;
	/* non-blocking whoever made it: one ioctl, not F_GETFL + F_SETFL per connection */
	if (ioctl(c->fd, FIONBIO, &one))
		goto fail;
	/*
	 * One the kernel HTTP path registered is mostly served there and only
	 * closed here: its socket options wait until the engine serves it
	 * (three syscalls fewer per kernel-served connection).
	 */
	c->sock_later = p->origin.kernel_cookie != 0;
	if (!c->sock_later)
		eng_sock_setup(e, c->fd);
	ev.data.ptr = c;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev))
		goto fail;
	c->next = e->clients;
	if (e->clients)
		e->clients->prev = c;
	e->clients = c;
	e->nr_clients++;
	__atomic_add_fetch(&e->group->conns, 1, __ATOMIC_RELAXED);
	eng_stat_add(e, &e->st.clients, 1);
	/*
	 * A request may be waiting already. Not for a kernel-registered one:
	 * its requests are the kernel's, and what it hands over (or the
	 * client's close) shows up as an event, since EPOLL_CTL_ADD reports
	 * what is ready at once; a recv() here would find nothing.
	 */
	if (!c->origin.kernel_cookie)
		client_run(e, c);
	else
		kernel_stashed(e, c);
	return;
fail:
	pr_warn("engine: cannot take a connection from %s: %s", p->origin.client_pod,
		strerror(errno));
	close(p->fd);
	if (c) {
		ebuf_release(e, &c->in);
		ebuf_release(e, &c->out);
	}
	free(c);
}

/* Move everything that can move for a client and its upstream. */
static void client_run(struct engine *e, struct cconn *c)
{
	for (int pass = 0; !c->dead; pass++) {
		struct uconn *u = c->up;
		bool moved = false;
		int cerr = 0;

		if (pass == RUN_PASSES_MAX) {
			/* Others' turn; edge-triggered readiness is kept in the flags. */
			if (!c->again) {
				c->again = true;
				e->nr_again++;
			}
			return;
		}
		moved |= ebuf_recv(c->fd, &c->in, &c->rd_ready, c->rd_hup, &c->rd_eof, &cerr);
		if (u && !u->connected && (u->wr_ready || u->rd_ready)) {
			int err = 0;
			socklen_t l = sizeof(err);

			if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &l))
				err = errno;
			if (err)
				u->err = err;
			else if (u->wr_ready)
				u->connected = true;
			moved |= err || u->connected;
		}
		if (u && u->connected)
			moved |= ebuf_recv(u->fd, &u->in, &u->rd_ready, u->rd_hup, &u->eof, &u->err);
		if (cerr) {
			eng_client_close(e, c, true);
			return;
		}
		moved |= eng_client_step(e, c);
		if (c->dead)
			return;
		if (c->rl.fd >= 0) {
			moved |= eng_relay_run(e, c, &cerr);
			if (c->dead)
				return;
		}
		u = c->up;
		if (c->kh_hold || c->rl.fd >= 0) {
			/* the kernel's responses first (check_timers lets ours go) */
		} else if (!e->defer) {
			moved |= ebuf_send(c->fd, &c->out, &c->wr_ready, &cerr);
		} else if (c->out.len && !c->flush) {
			c->flush = true;
			c->flush_next = e->flush;
			e->flush = c;
		}
		if (u && u->connected)
			moved |= ebuf_send(u->fd, &u->out, &u->wr_ready, &u->err);
		if (cerr) {
			eng_client_close(e, c, true);
			return;
		}
		if (!moved)
			return;
		c->last_io = e->now;
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void forget_netns(struct engine *e, void *netns_ctx)
{
	struct cconn *c, *cnext;
	struct uconn *u, *unext;

	eng_mirror_forget(e, netns_ctx);
	eng_h2_forget(e, netns_ctx);
	for (c = e->clients; c; c = cnext) {
		cnext = c->next;
		if (c->origin.netns_ctx == netns_ctx)
			eng_client_close(e, c, true);
	}
	for (u = e->pool; u; u = unext) {
		unext = u->next;
		if (u->key.netns_ctx == netns_ctx) {
			eng_pool_unlink(e, u);
			eng_upstream_close(e, u);
		}
	}
}

static void kernel_apply(struct engine *e, struct cconn *c, int op)
{
	if (op == PENDING_KH_RESET)
		eng_client_close(e, c, true);
	else if (c->state == CS_SNIFF && !c->in.len)
		/* only while the kernel has it: nothing came here */
		c->kh_eof = e->o.kernel_state ? 1 : 2;
}

static void kernel_op(struct engine *e, int op, uint64_t cookie, int fd, uint32_t slot)
{
	unsigned int old = 0;

	for (struct cconn *c = e->clients; c; c = c->next) {
		if (c->origin.kernel_cookie != cookie)
			continue;
		if (op == PENDING_KH_RELAY) {
			eng_relay_attach(e, c, fd, slot);
			if (!c->dead)
				client_run(e, c);
		} else {
			kernel_apply(e, c, op);
		}
		return;
	}
	/* every loop got its own dup of a relay's upstream: the one holding the client keeps it */
	if (op == PENDING_KH_RELAY) {
		close(fd);
		return;
	}
	/* not here: maybe not handed over yet (ENGINE_KH_STASH); every loop keeps it */
	for (unsigned int i = 1; i < ENGINE_KH_STASH; i++)
		if (e->kh_stash[i].until < e->kh_stash[old].until)
			old = i;
	e->kh_stash[old].cookie = cookie;
	e->kh_stash[old].until = e->now + ENGINE_KH_STASH_MS;
	e->kh_stash[old].op = op;
}

/* A kernel-registered client came: what the kernel asked for it before. */
static void kernel_stashed(struct engine *e, struct cconn *c)
{
	for (unsigned int i = 0; i < ENGINE_KH_STASH; i++) {
		if (e->kh_stash[i].cookie != c->origin.kernel_cookie ||
		    e->kh_stash[i].until < e->now)
			continue;
		e->kh_stash[i].until = 0;
		kernel_apply(e, c, e->kh_stash[i].op);
		return;
	}
}

static void take_pending(struct engine *e)
{
	struct pending *p, *next;
	uint64_t v;

	if (read(e->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("engine: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&e->lock);
	p = e->pending;
	e->pending = NULL;
	e->pending_tail = &e->pending;
	pthread_mutex_unlock(&e->lock);
	for (; p; p = next) {
		next = p->next;
		if (p->fd >= 0) {
			client_new(e, p);
		} else if (p->fd == PENDING_KH_RESET || p->fd == PENDING_KH_EOF ||
			   p->fd == PENDING_KH_RELAY) {
			kernel_op(e, p->fd, p->origin.kernel_cookie, p->kh_fd, p->kh_slot);
		} else {
			forget_netns(e, p->origin.netns_ctx);
			pthread_mutex_lock(&e->lock);
			e->forget_done++;
			pthread_cond_broadcast(&e->forgotten);
			pthread_mutex_unlock(&e->lock);
		}
		free(p);
	}
}

/* Connections the acceptor adopted in this thread (engine_adopt). */
static void take_local(struct engine *e)
{
	while (e->local) {
		struct pending *p = e->local;

		e->local = p->next;
		if (!e->local)
			e->local_tail = &e->local;
		client_new(e, p);
		free(p);
	}
}

/*
 * The acceptor's fd is readable: it accepts here, the connections stay here.
 * Then the next loop watches it: connections go round the loops, and only
 * one loop wakes per arrival. (EPOLLEXCLUSIVE would wake one of all the
 * watchers, but the kernel refuses it for an epoll fd, which the agent's
 * set of listeners is.) Called under acc_lock (read).
 */
static void acceptor_pass(struct engine *g, struct engine *e)
{
	struct engine *next = g->loops[(e->loop_index + 1) % g->nr_loops];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &next->acc_kind };

	if (g->nr_loops < 2 || __atomic_load_n(&g->acc_loop, __ATOMIC_ACQUIRE) != e->loop_index)
		return;
	/* watched by the next one before this one stops: never by none */
	if (epoll_ctl(next->epfd, EPOLL_CTL_ADD, g->acc_fd, &ev))
		return;		/* stays here */
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, g->acc_fd, NULL);
	__atomic_store_n(&g->acc_loop, next->loop_index, __ATOMIC_RELEASE);
}

static void accept_run(struct engine *e)
{
	struct engine *g = e->group;

	pthread_rwlock_rdlock(&g->acc_lock);
	if (g->acc_fn) {
		g->acc_fn(g->acc_ctx);
		acceptor_pass(g, e);
	}
	pthread_rwlock_unlock(&g->acc_lock);
	/* after the callback: it may hold its own locks, which a client's first
	 * request (opts->upstream_socket) could want */
	take_local(e);
}

static void check_timers(struct engine *e)
{
	struct cconn *c, *next;
	struct uconn *u, *unext;

	/* Handling one client closes at most that client: next stays valid. */
	for (c = e->clients; c; c = next) {
		next = c->next;
		if (c->kh_eof && !--c->kh_eof && c->state == CS_SNIFF && !c->in.len) {
			/* the kernel's close-delimited response is in, and queued at the
			 * client (a FIN sooner would overtake what waits in its sockmap
			 * queue): end it (a FIN, then drain) */
			if (e->o.kernel_state &&
			    !(e->o.kernel_state(e->o.ctx, c->origin.kernel_cookie, c->origin.netns_ctx,
						UINT32_MAX, ENGINE_KH_DRAINED) & ENGINE_KH_DRAINED)) {
				c->kh_eof = 1;	/* the next tick asks again */
				continue;
			}
			eng_kernel_fin(e, c);
			continue;
		}
		if (c->rl.fd >= 0 && !c->rl.drained) {
			eng_relay_tick(e, c);
			if (c->rl.drained) {
				client_run(e, c);
				if (c->dead)
					continue;
			}
		}
		if (c->kh_hold && !e->o.kernel_pending(e->o.ctx, c->origin.kernel_cookie)) {
			/* quiet at two ticks in a row: what the kernel queued is delivered */
			if (c->kh_quiet) {
				c->kh_hold = false;
				client_run(e, c);
				if (c->dead)
					continue;
			}
			c->kh_quiet = true;
		}
		if (e->now < eng_client_deadline(e, c))
			continue;
		eng_client_timeout(e, c);
		if (!c->dead)
			client_run(e, c);
	}
	eng_mirror_timers(e);
	eng_h2_timers(e);
	for (u = e->pool; u; u = unext) {
		unext = u->next;
		if (e->now - u->since >= e->o.pool_idle_ms) {
			eng_pool_unlink(e, u);
			eng_upstream_close(e, u);
		}
	}
}

static void eng_reap(struct engine *e)
{
	eng_h2_reap(e);
	while (e->dead_c) {
		struct cconn *c = e->dead_c;

		e->dead_c = c->next;
		free(c);
	}
	while (e->dead_u) {
		struct uconn *u = e->dead_u;

		e->dead_u = u->next;
		free(u);
	}
}

static void handle_event(struct engine *e, struct epoll_event *ev)
{
	enum eobj_kind *kind = ev->data.ptr;
	bool rd = ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
	bool wr = ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
	bool hup = ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);

	if (*kind == EOBJ_WAKE) {
		take_pending(e);
		return;
	}
	if (*kind == EOBJ_ACCEPT) {
		accept_run(e);
		return;
	}
	if (*kind == EOBJ_H2) {
		eng_h2_event(e, ev->data.ptr, rd, wr, hup);
		return;
	}
	if (*kind == EOBJ_RELAY) {
		struct cconn *c = (struct cconn *)((char *)ev->data.ptr - offsetof(struct cconn, rl));

		if (c->dead)
			return;
		c->rl.rd_ready |= rd;
		c->rl.rd_hup |= hup;
		client_run(e, c);
		return;
	}
	if (*kind == EOBJ_CLIENT) {
		struct cconn *c = ev->data.ptr;

		if (c->dead)
			return;
		c->rd_ready |= rd;
		c->wr_ready |= wr;
		c->rd_hup |= hup;
		client_run(e, c);
		return;
	}
	struct uconn *u = ev->data.ptr;

	if (u->dead)
		return;
	u->rd_ready |= rd;
	u->wr_ready |= wr;
	u->rd_hup |= hup;
	if (u->h2) {
		eng_h2_h1_event(e, u);
		return;
	}
	if (u->owner) {
		client_run(e, u->owner);
	} else if (u->mirror) {
		eng_mirror_run(e, u);
	} else if (rd) {
		char b;
		ssize_t n = recv(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		/* An idle upstream closed, or sent what nobody asked for (an event
		 * of its last response, still in this batch, is neither). */
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			eng_pool_unlink(e, u);
			eng_upstream_close(e, u);
		}
	}
}

static void *engine_loop(void *arg)
{
	struct engine *e = arg;
	struct epoll_event evs[EVENTS_MAX];
	uint64_t last_tick = eng_now_ms();

	tl_loop = e;
	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(e->epfd, evs, EVENTS_MAX, e->nr_again ? 0 : TICK_MS);

		if (n < 0 && errno != EINTR) {
			pr_err("engine: epoll_wait: %s", strerror(errno));
			break;
		}
		e->now_us = eng_now_us();
		e->now = e->now_us / 1000;
		/*
		 * What goes back to clients leaves once the whole batch is read
		 * and forwarded: each send wakes a client, and a client woken in
		 * the middle of the batch preempts the loop (one CPU) to take one
		 * response and sleep again; at the end it finds them all.
		 */
		e->defer = true;
		for (int i = 0; i < n; i++)
			handle_event(e, &evs[i]);
		if (e->nr_again) {
			struct cconn *c, *next;

			for (c = e->clients; c && e->nr_again; c = next) {
				next = c->next;
				if (!c->again)
					continue;
				c->again = false;
				e->nr_again--;
				client_run(e, c);	/* closes at most c */
			}
		}
		e->defer = false;
		while (e->flush) {
			struct cconn *c = e->flush;

			e->flush = c->flush_next;
			c->flush = false;
			if (!c->dead)
				client_run(e, c);	/* freed only by eng_reap() */
		}
		if (e->now - last_tick >= TICK_MS) {
			last_tick = e->now;
			check_timers(e);
		}
		if (__atomic_load_n(&e->give, __ATOMIC_ACQUIRE))
			eng_handoff_run(e);
		eng_reap(e);
		take_local(e);
	}
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void loop_free(struct engine *e);

/* One loop; group NULL: the first, which is the group. */
static struct engine *loop_new(const struct engine_opts *opts, struct engine *group)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->epfd = e->wakefd = e->acc_fd = -1;
	e->group = group ? group : e;
	if (opts)
		e->o = *opts;
	if (!e->o.upstream_socket)
		e->o.upstream_socket = eng_default_socket;
	if (!e->o.buf_size)
		e->o.buf_size = ENGINE_BUF_SIZE;
	if (e->o.buf_size < 1024)
		e->o.buf_size = 1024;
	if (!e->o.header_timeout_ms)
		e->o.header_timeout_ms = ENGINE_HEADER_TIMEOUT_MS;
	if (!e->o.idle_timeout_ms)
		e->o.idle_timeout_ms = ENGINE_IDLE_TIMEOUT_MS;
	if (!e->o.connect_timeout_ms)
		e->o.connect_timeout_ms = ENGINE_CONNECT_TIMEOUT_MS;
	if (!e->o.pool_idle_ms)
		e->o.pool_idle_ms = ENGINE_POOL_IDLE_MS;
	if (!e->o.max_conns)
		e->o.max_conns = ENGINE_MAX_CONNS;
	if (!e->o.sniff_timeout_ms)
		e->o.sniff_timeout_ms = ENGINE_SNIFF_TIMEOUT_MS;
	if (!e->o.sock_buf)
		e->o.sock_buf = ENGINE_SOCK_BUF;
	/* A head must fit in a buffer with room to spare for what filters add. */
	e->lim.head_max = e->o.buf_size / 2 < ENGINE_HEAD_MAX ? e->o.buf_size / 2 : ENGINE_HEAD_MAX;
	e->lim.target_max = H1_TARGET_MAX_DEFAULT < e->lim.head_max ? H1_TARGET_MAX_DEFAULT :
				e->lim.head_max;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->forgotten, NULL);
	pthread_mutex_init(&e->give_lock, NULL);
	pthread_rwlock_init(&e->acc_lock, NULL);
	e->pending_tail = &e->pending;
	e->local_tail = &e->local;
	e->wake_kind = EOBJ_WAKE;
	e->acc_kind = EOBJ_ACCEPT;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* A head's copies for ev_evaluate(): its bytes, a NUL per name and value, a target. */
	e->arena_cap = e->lim.head_max + 2 * H1_HEADERS_MAX + 64;
	e->arena = malloc(e->arena_cap);
	e->hdrs = calloc(H1_HEADERS_MAX + 1, sizeof(*e->hdrs));
	e->head = malloc(sizeof(*e->head));
	if (!e->arena || !e->hdrs || !e->head) {
		pr_err("engine: %s", strerror(ENOMEM));
		loop_free(e);
		return NULL;
	}
	if (getrandom(&e->rng, sizeof(e->rng), 0) != sizeof(e->rng))
		e->rng = ((uint64_t)time(NULL) + (uintptr_t)e) * 2654435761u;
	e->rng |= 1;
	e->now_us = eng_now_us();
	e->now = e->now_us / 1000;
	/* Series are shared: every loop counts into the group's (relaxed atomics). */
	e->metrics = group ? group->metrics : eng_metrics_new();
	e->mem = eng_mem_new();
	ev.data.ptr = &e->wake_kind;
	if (!e->metrics || !e->mem || e->epfd < 0 || e->wakefd < 0 ||
	    epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev)) {
		pr_err("engine: epoll/eventfd: %s", strerror(errno));
		loop_free(e);
		return NULL;
	}
	return e;
}

/* Loops by default: one per CPU this process may run on (online CPUs unless restricted). */
static unsigned int default_threads(void)
{
	cpu_set_t set;
	long n;

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return (unsigned int)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

struct engine *engine_new(const struct engine_opts *opts)
{
	unsigned int n = opts && opts->threads ? opts->threads : default_threads();
	struct engine *g;

	if (n > ENGINE_THREADS_MAX)
		n = ENGINE_THREADS_MAX;
	g = loop_new(opts, NULL);
	if (!g)
		return NULL;
	g->loops = calloc(n, sizeof(*g->loops));
	if (!g->loops) {
		loop_free(g);
		return NULL;
	}
	g->loops[g->nr_loops++] = g;
	while (g->nr_loops < n) {
		struct engine *l = loop_new(opts, g);

		if (!l) {
			engine_free(g);
			return NULL;
		}
		l->loop_index = g->nr_loops;
		g->loops[g->nr_loops++] = l;
	}
	/* Pool and mirror limits are the engine's: each loop has its share. */
	for (unsigned int i = 0; i < n; i++) {
		g->loops[i]->pool_max = ENGINE_POOL_MAX / n > 16 ? ENGINE_POOL_MAX / n : 16;
		g->loops[i]->mirrors_max = ENGINE_MIRRORS_MAX / n > 16 ? ENGINE_MIRRORS_MAX / n : 16;
	}
	return g;
}

unsigned int engine_threads(const struct engine *e)
{
	return e ? e->group->nr_loops : 0;
}

/* Queue a client for a loop; http: from a previous engine, not sniffed again. */
static int eng_adopt(struct engine *e, int fd, const struct engine_origin *o, bool http)
{
	struct pending *p;
	struct engine *l;
	uint64_t one = 1;

	if (fd < 0)
		return -EBADF;
	if (!e || !o) {
		close(fd);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	p->fd = fd;
	p->http = http;
	p->origin = *o;
	p->origin.client_ns[sizeof(p->origin.client_ns) - 1] = 0;
	p->origin.client_pod[sizeof(p->origin.client_pod) - 1] = 0;
	e = e->group;
	if (tl_loop && tl_loop->group == e) {
		/* The acceptor, in a loop's thread: the connection stays in this loop. */
		*tl_loop->local_tail = p;
		tl_loop->local_tail = &p->next;
		return 0;
	}
	l = e->loops[__atomic_fetch_add(&e->next_loop, 1, __ATOMIC_RELAXED) % e->nr_loops];
	pthread_mutex_lock(&l->lock);
	*l->pending_tail = p;
	l->pending_tail = &p->next;
	pthread_mutex_unlock(&l->lock);
	if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int engine_adopt(struct engine *e, int fd, const struct engine_origin *o)
{
	return eng_adopt(e, fd, o, false);
}

int engine_adopt_http(struct engine *e, int fd, const struct engine_origin *o)
{
	return eng_adopt(e, fd, o, true);
}

int engine_set_acceptor(struct engine *e, int fd, void (*fn)(void *ctx), void *ctx)
{
	struct engine *g;
	int err = 0;

	if (!e || (fn && fd < 0))
		return -EINVAL;
	g = e->group;
	if (!fn) {
		/* No call in progress (nor a pass to the next loop), then out of every epoll. */
		pthread_rwlock_wrlock(&g->acc_lock);
		for (unsigned int i = 0; g->acc_fd >= 0 && i < g->nr_loops; i++)
			epoll_ctl(g->loops[i]->epfd, EPOLL_CTL_DEL, g->acc_fd, NULL);
		g->acc_fn = NULL;
		g->acc_ctx = NULL;
		g->acc_fd = -1;
		pthread_rwlock_unlock(&g->acc_lock);
		return 0;
	}
	pthread_rwlock_wrlock(&g->acc_lock);
	if (g->acc_fn) {
		pthread_rwlock_unlock(&g->acc_lock);
		return -EBUSY;
	}
	/* Loop 0 watches it first (level triggered), then each in turn (accept_run). */
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &g->loops[0]->acc_kind };

		if (epoll_ctl(g->loops[0]->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			err = -errno;
		} else {
			g->acc_fn = fn;
			g->acc_ctx = ctx;
			g->acc_fd = fd;
			__atomic_store_n(&g->acc_loop, 0, __ATOMIC_RELEASE);
		}
	}
	pthread_rwlock_unlock(&g->acc_lock);
	return err;
}

/* A pod went away: this loop forgets it (returns when done). */
static void loop_forget_netns(struct engine *e, void *netns_ctx)
{
	struct pending *p;
	uint64_t one = 1, seq;

	pthread_mutex_lock(&e->lock);
	if (!e->running) {
		/* No loop: nothing runs but this thread (as in engine_stop). */
		pthread_mutex_unlock(&e->lock);
		forget_netns(e, netns_ctx);
		eng_reap(e);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pthread_mutex_unlock(&e->lock);
		pr_err("engine: out of memory forgetting a netns");
		return;
	}
	p->fd = -1;
	p->origin.netns_ctx = netns_ctx;
	*e->pending_tail = p;
	e->pending_tail = &p->next;
	seq = ++e->forget_req;
	pthread_mutex_unlock(&e->lock);
	if (write(e->wakefd, &one, sizeof(one)) < 0)
		pr_warn("engine: eventfd write: %s", strerror(errno));
	pthread_mutex_lock(&e->lock);
	while (e->forget_done < seq && e->running)
		pthread_cond_wait(&e->forgotten, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

static int kernel_post(struct engine *e, int op, uint64_t cookie, int fd, uint32_t slot)
{
	uint64_t one = 1;

	if (!e || !cookie)
		return -EINVAL;
	e = e->group;
	/* every loop looks: the one holding it resets it (each its own dup of fd) */
	for (unsigned int i = 0; i < e->nr_loops; i++) {
		struct engine *l = e->loops[i];
		struct pending *p = calloc(1, sizeof(*p));

		if (!p)
			return -ENOMEM;
		p->fd = op;
		p->origin.kernel_cookie = cookie;
		p->kh_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
		p->kh_slot = slot;
		if (fd >= 0 && p->kh_fd < 0) {
			free(p);
			return -errno;
		}
		pthread_mutex_lock(&l->lock);
		if (!l->running) {
			pthread_mutex_unlock(&l->lock);
			if (p->kh_fd >= 0)
				close(p->kh_fd);
			free(p);
			continue;
		}
		*l->pending_tail = p;
		l->pending_tail = &p->next;
		pthread_mutex_unlock(&l->lock);
		if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			pr_warn("engine: eventfd write: %s", strerror(errno));
	}
	return 0;
}

void engine_kernel_reset(struct engine *e, uint64_t cookie)
{
	kernel_post(e, PENDING_KH_RESET, cookie, -1, 0);
}

void engine_kernel_eof(struct engine *e, uint64_t cookie)
{
	kernel_post(e, PENDING_KH_EOF, cookie, -1, 0);
}

int engine_kernel_relay(struct engine *e, uint64_t cookie, uint32_t slot, int upstream_fd)
{
	if (!e || !e->group->o.kernel_state)
		return -EOPNOTSUPP;
	return kernel_post(e, PENDING_KH_RELAY, cookie, upstream_fd, slot);
}

void engine_forget_netns(struct engine *e, void *netns_ctx)
{
	if (!e)
		return;
	e = e->group;
	for (unsigned int i = 0; i < e->nr_loops; i++)
		loop_forget_netns(e->loops[i], netns_ctx);
}

static int loop_start(struct engine *e)
{
	int ret;

	if (e->running)
		return -EALREADY;
	__atomic_store_n(&e->stop, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&e->lock);
	ret = pthread_create(&e->thread, NULL, engine_loop, e);
	e->running = !ret;
	pthread_mutex_unlock(&e->lock);
	return -ret;
}

int engine_start(struct engine *e)
{
	int ret = 0;

	if (!e)
		return -EINVAL;
	e = e->group;
	if (e->running)
		return -EALREADY;
	for (unsigned int i = 0; i < e->nr_loops && !ret; i++)
		ret = loop_start(e->loops[i]);
	if (ret)
		engine_stop(e);
	return ret;
}

/* Join a loop's thread; its connections stay until loop_close(). */
static void loop_join(struct engine *e)
{
	uint64_t one = 1;

	if (!e->running)
		return;
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
	if (write(e->wakefd, &one, sizeof(one)) < 0)
		pr_warn("engine: eventfd write: %s", strerror(errno));
	pthread_join(e->thread, NULL);
}

static void loop_close(struct engine *e)
{
	struct pending *p;

	pthread_mutex_lock(&e->lock);
	e->running = false;
	p = e->pending;
	e->pending = NULL;
	e->pending_tail = &e->pending;
	e->forget_done = e->forget_req;	/* everything is closed below */
	pthread_cond_broadcast(&e->forgotten);
	pthread_mutex_unlock(&e->lock);
	while (e->clients)
		eng_client_close(e, e->clients, false);
	eng_mirror_close_all(e);
	eng_h2_close_all(e);
	while (e->pool) {
		struct uconn *u = e->pool;

		eng_pool_unlink(e, u);
		eng_upstream_close(e, u);
	}
	eng_reap(e);
	while (p) {
		struct pending *next = p->next;

		if (p->fd >= 0)
			close(p->fd);
		free(p);
		p = next;
	}
	while (e->local) {
		p = e->local;
		e->local = p->next;
		close(p->fd);
		free(p);
	}
	e->local_tail = &e->local;
}

void engine_stop(struct engine *e)
{
	bool any = false;

	if (!e)
		return;
	e = e->group;
	/* Every thread first: a loop's connections may be another's business no more. */
	for (unsigned int i = 0; i < e->nr_loops; i++) {
		any |= e->loops[i]->running;
		loop_join(e->loops[i]);
	}
	if (!any)
		return;
	for (unsigned int i = 0; i < e->nr_loops; i++)
		loop_close(e->loops[i]);
}

/* A loop's own resources (stopped already); the group's shared ones in engine_free. */
static void loop_free(struct engine *e)
{
	struct pending *p;

	/* Connections adopted to an engine never started. */
	for (p = e->pending; p;) {
		struct pending *next = p->next;

		if (p->fd >= 0)
			close(p->fd);
		free(p);
		p = next;
	}
	eng_tables_put(e->tables);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->wakefd >= 0)
		close(e->wakefd);
	while (e->nr_buf_cache)
		free(e->buf_cache[--e->nr_buf_cache]);
	free(e->arena);
	free(e->hdrs);
	free(e->head);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->forgotten);
	pthread_mutex_destroy(&e->give_lock);
	pthread_rwlock_destroy(&e->acc_lock);
	if (e->group == e)
		eng_metrics_free(e->metrics);
	eng_mem_free(e->mem);
	free(e);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	e = e->group;
	engine_stop(e);
	for (unsigned int i = 1; i < e->nr_loops; i++)
		loop_free(e->loops[i]);
	free(e->loops);
	loop_free(e);
}

void engine_get_stats(struct engine *e, struct engine_stats *st)
{
	eng_stats_sum(e, st);
}
