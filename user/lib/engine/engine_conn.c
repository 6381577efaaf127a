// SPDX-License-Identifier: Apache-2.0
/*
 * What the HTTP engine's loop and its request state machine share: buffers,
 * the published tables, upstream connections and their pool, and closing a
 * client. Nothing here calls into the loop (engine.c) or a request
 * (engine_req.c): both build on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine_int.h"
#include "base/log.h"

uint64_t eng_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t eng_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: weights and endpoints are picked per request, uniformly. */
uint64_t eng_random(struct engine *e)
{
	uint64_t x = e->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	e->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void eng_stat_add(struct engine *e, uint64_t *field, int64_t d)
{
	__atomic_add_fetch(field, (uint64_t)d, __ATOMIC_RELAXED);
}

/*
 * Every socket of the engine: no Nagle (heads and bodies go as they come),
 * and kernel buffers of a fixed size. Autotuning would let the socket of a
 * fast upstream grow to tcp_rmem's maximum (32 MiB here) and hold that much
 * for a client that stopped reading; fixed, a stalled connection costs the
 * kernel at most about 2 x 2 x sock_buf (the kernel doubles what it is
 * given), and within a node the round trip is short enough for that window.
 */
void eng_sock_setup(struct engine *e, int fd)
{
	int one = 1, sz = (int)e->o.sock_buf;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

void eng_client_sock_setup(struct engine *e, struct cconn *c)
{
	if (!c->sock_later)
		return;
	c->sock_later = false;
	eng_sock_setup(e, c->fd);
}

/* ---- buffers ------------------------------------------------------------- */

int ebuf_alloc(struct engine *e, struct ebuf *b)
{
	b->p = e->nr_buf_cache ? e->buf_cache[--e->nr_buf_cache] : malloc(e->o.buf_size);
	if (!b->p)
		return -ENOMEM;
	b->cap = e->o.buf_size;
	b->off = b->len = 0;
	eng_stat_add(e, &e->st.buffer_bytes, b->cap);
	return 0;
}

void ebuf_release(struct engine *e, struct ebuf *b)
{
	if (b->p)
		eng_stat_add(e, &e->st.buffer_bytes, -(int64_t)b->cap);
	/* Kept for the next ebuf_alloc(): no malloc/free of buf_size per request. */
	if (b->p && e->nr_buf_cache < ENGINE_BUF_CACHE)
		e->buf_cache[e->nr_buf_cache++] = b->p;
	else
		free(b->p);
	memset(b, 0, sizeof(*b));
}

size_t ebuf_room(struct ebuf *b)
{
	if (!b->len)
		b->off = 0;
	/* Move the data to the front only when the tail has little room left. */
	if (b->off && b->cap - b->off - b->len < b->cap / 4) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}

void ebuf_consume(struct ebuf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (!b->len)
		b->off = 0;
}

int ebuf_append(struct ebuf *b, const void *p, size_t n)
{
	if (ebuf_room(b) < n)
		return -ENOSPC;
	memcpy(b->p + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

/*
 * A read that fills less than the room drained the socket: edge-triggered
 * epoll reports the next byte with a new event, so not reading again until
 * then saves a recv() that would say EAGAIN (one per request). Not when
 * epoll already reported a hang-up: the FIN behind the data would not make
 * another event.
 */
bool ebuf_recv(int fd, struct ebuf *b, bool *ready, bool hup, bool *eof, int *err)
{
	size_t room;
	ssize_t n;

	if (!*ready || *eof || *err || !b->p)
		return false;
	room = ebuf_room(b);
	if (!room)
		return false;
	n = recv(fd, b->p + b->off + b->len, room, 0);
	if (n > 0) {
		b->len += n;
		if ((size_t)n < room && !hup)
			*ready = false;
		return true;
	}
	if (!n) {
		*eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*ready = false;
		return false;
	}
	if (errno == EINTR)
		return true;
	*err = errno;
	return true;
}

bool ebuf_send(int fd, struct ebuf *b, bool *ready, int *err)
{
	ssize_t n;

	if (!*ready || *err || !b->len)
		return false;
	n = send(fd, b->p + b->off, b->len, MSG_NOSIGNAL);
	if (n > 0) {
		ebuf_consume(b, n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		*ready = false;
		return false;
	}
	if (n < 0 && errno == EINTR)
		return true;
	*err = n < 0 ? errno : EIO;
	return true;
}

/* ---- tables -------------------------------------------------------------- */

struct eng_vip *eng_tables_slot(const struct eng_tables *t, const struct ip_addr *a,
				uint16_t port)
{
	struct eng_vip k;
	size_t i;

	memset(&k, 0, sizeof(k));	/* the hash reads the padding too */
	k.family = a->family;
	k.port = port;
	memcpy(k.addr, a->addr, a->family == AF_INET ? 4 : sizeof(k.addr));
	i = (size_t)hash_bytes(&k, offsetof(struct eng_vip, p), 0) & (t->vips_cap - 1);
	for (;; i = (i + 1) & (t->vips_cap - 1)) {
		struct eng_vip *v = &t->vips[i];

		if (!v->p || (v->family == k.family && v->port == port &&
			      !memcmp(v->addr, k.addr, sizeof(k.addr))))
			return v;
	}
}

struct eng_tables *eng_tables_get(struct engine *e)
{
	struct eng_tables *t;

	pthread_mutex_lock(&e->lock);
	t = e->tables;
	if (t)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->lock);
	return t;
}

void eng_release_res(struct engine *e, struct tr_result *res)
{
	if (!res)
		return;
	if (e->o.release_tables) {
		e->o.release_tables(e->o.ctx, res);
		return;
	}
	tr_result_free(res);
	free(res);
}

void eng_tables_put(struct eng_tables *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL))
		return;
	eng_release_res(t->e, t->res);
	free(t->vips);
	eng_metrics_index_free(t->mix);
	free(t);
}

const struct tr_port *eng_tables_port(struct eng_tables *t, const struct engine_origin *o)
{
	if (!t || !t->vips_cap)
		return NULL;
	return eng_tables_slot(t, &o->vip, o->vport)->p;
}

/* ---- upstream connections ------------------------------------------------ */

static bool ukey_eq(const struct ukey *a, const struct ukey *b)
{
	return a->addr.family == b->addr.family && a->port == b->port &&
	       a->netns_ctx == b->netns_ctx &&
	       !memcmp(a->addr.addr, b->addr.addr, a->addr.family == AF_INET ? 4 : 16);
}

void eng_pool_unlink(struct engine *e, struct uconn *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		e->pool = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	u->pooled = false;
	e->nr_pool--;
	eng_stat_add(e, &e->st.upstreams_idle, -1);
}

/* c's last upstream is u (either NULL: unlink); each side points at the other or at nothing. */
static void link_last(struct cconn *c, struct uconn *u)
{
	if (c && c->last_up && c->last_up != u)
		c->last_up->last_owner = NULL;
	if (u && u->last_owner && u->last_owner != c)
		u->last_owner->last_up = NULL;
	if (c)
		c->last_up = u;
	if (u)
		u->last_owner = c;
}

void eng_upstream_close(struct engine *e, struct uconn *u)
{
	if (u->dead)
		return;
	link_last(NULL, u);
	u->dead = true;
	close(u->fd);
	u->fd = -1;
	ebuf_release(e, &u->in);
	ebuf_release(e, &u->out);
	u->next = e->dead_u;
	e->dead_u = u;
	eng_stat_add(e, &e->st.upstreams, -1);
}

int eng_default_socket(void *ctx, int family, void *netns_ctx)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int eng_connect(struct engine *e, const struct ukey *k, bool *connected)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd, ret;

	fd = e->o.upstream_socket(e->o.ctx, k->addr.family, k->netns_ctx);
	if (fd < 0)
		return fd;
	/* The callback is asked for a non-blocking socket; a blocking one would stall the loop. */
	ret = fcntl(fd, F_GETFL);
	if (ret < 0 || (!(ret & O_NONBLOCK) && fcntl(fd, F_SETFL, ret | O_NONBLOCK))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	eng_sock_setup(e, fd);
	if (k->addr.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(k->port);
		memcpy(&sin->sin_addr, k->addr.addr, 4);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(k->port);
		memcpy(&sin6->sin6_addr, k->addr.addr, 16);
		sl = sizeof(*sin6);
	}
	ret = connect(fd, (struct sockaddr *)&ss, sl);
	if (ret && errno != EINPROGRESS) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*connected = !ret;
	return fd;
}

static struct uconn *upstream_new(struct engine *e, const struct ukey *k)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct uconn *u;
	bool connected;
	int fd, ret;

	fd = eng_connect(e, k, &connected);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	u->kind = EOBJ_UPSTREAM;
	u->fd = fd;
	u->key = *k;
	u->connected = connected;
	u->since = e->now;
	ev.data.ptr = u;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		ret = errno;
		close(fd);
		free(u);
		errno = ret;
		return NULL;
	}
	eng_stat_add(e, &e->st.upstreams, 1);
	return u;
}

struct uconn *eng_upstream_get(struct engine *e, const struct ukey *k, struct cconn *owner,
			       bool fresh)
{
	struct uconn *u = NULL, *last = owner ? owner->last_up : NULL;

	/*
	 * The connection this client used last, when it is pooled and goes
	 * where this request goes: each client's requests then stay on one
	 * upstream connection, as through a TCP proxy, instead of the most
	 * recently pooled connection taking everyone's (its congestion
	 * control and pacing then carry all of them).
	 */
	if (!fresh && last && last->pooled && ukey_eq(&last->key, k))
		u = last;
	else if (!fresh)
		for (u = e->pool; u; u = u->next)
			if (ukey_eq(&u->key, k))
				break;
	if (u) {
		eng_pool_unlink(e, u);
		eng_stat_add(e, &e->st.upstream_reused, 1);
		/* rd_ready and wr_ready stay as the loop left them: its events
		 * keep them while the connection is idle, and forcing a read
		 * would cost a recv() saying EAGAIN per request. */
		u->reused = true;
	} else {
		u = upstream_new(e, k);
		if (!u)
			return NULL;
	}
	/* Idle connections hold no buffers. */
	if (ebuf_alloc(e, &u->in) || ebuf_alloc(e, &u->out)) {
		eng_upstream_close(e, u);
		errno = ENOMEM;
		return NULL;
	}
	u->owner = owner;
	if (owner)
		link_last(owner, u);
	return u;
}

/* Pooled only after a complete response with nothing left over. */
void eng_upstream_release(struct engine *e, struct uconn *u, bool reuse)
{
	if (!u || u->dead)
		return;
	u->owner = NULL;
	if (!reuse || !u->connected || u->eof || u->err || u->in.len || u->out.len ||
	    e->nr_pool >= e->pool_max) {
		eng_upstream_close(e, u);
		return;
	}
	ebuf_release(e, &u->in);
	ebuf_release(e, &u->out);
	u->since = e->now;
	u->prev = NULL;
	u->next = e->pool;
	if (e->pool)
		e->pool->prev = u;
	e->pool = u;
	u->pooled = true;
	e->nr_pool++;
	eng_stat_add(e, &e->st.upstreams_idle, 1);
}

/* ---- client connections -------------------------------------------------- */

/*
 * The slow reader's relay (engine_relay.c) ends with its client: freed
 * here, beside the client's other resources, so that closing a client
 * needs nothing of the relay's file.
 */
void eng_relay_free(struct engine *e, struct cconn *c)
{
	struct krelay *r = &c->rl;

	if (r->fd < 0)
		return;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, r->fd, NULL);
	close(r->fd);
	r->fd = -1;
	ebuf_release(e, &r->buf);
	ebuf_release(e, &r->out);
	if (r->tab)
		eng_tables_put(r->tab);
	r->tab = NULL;
	r->cls = NULL;
	r->edit = false;
}

void eng_client_close(struct engine *e, struct cconn *c, bool reset)
{
	if (c->dead)
		return;
	eng_request_end(e, c, false);
	eng_relay_free(e, c);
	if (reset) {
		/* An RST, so the client knows the response is cut short. */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	if (c->again) {
		c->again = false;
		e->nr_again--;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		e->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = e->dead_c;
	c->prev = NULL;
	e->dead_c = c;
	e->nr_clients--;
	__atomic_sub_fetch(&e->group->conns, 1, __ATOMIC_RELAXED);
	link_last(c, NULL);
	ebuf_release(e, &c->in);
	ebuf_release(e, &c->out);
	eng_stat_add(e, &e->st.clients, -1);
}

/* The request in flight is over: its upstream and tables go. */
void eng_request_end(struct engine *e, struct cconn *c, bool reuse_upstream)
{
	if (c->h2_end)
		c->h2_end(e, c);	/* a request on an HTTP/2 upstream (engine_h2.c) */
	if (c->log_pending) {
		struct engine_request_log l = {
			.origin = &c->origin,
			.entry = c->log_entry,
			.backend = c->log_backend,
			.status = c->log_status,
			.complete = c->req_done && c->resp_done,
		};
		c->log_pending = false;
		l.request_us = e->now_us - c->t_start;
		/* at least 1: it had an upstream (one turn may send and see the answer) */
		if (c->t_up_sent && c->t_up_head)
			l.upstream_us = c->t_up_head > c->t_up_sent ? c->t_up_head - c->t_up_sent : 1;
		eng_metrics_count(e->metrics, c->tab, &l);
		if (e->o.on_request)
			e->o.on_request(e->o.ctx, &l);
	}
	if (c->up) {
		eng_upstream_release(e, c->up, reuse_upstream);
		c->up = NULL;
	}
	if (c->tab) {
		eng_tables_put(c->tab);
		c->tab = NULL;
	}
	free(c->retry_head);
	c->retry_head = NULL;
}

