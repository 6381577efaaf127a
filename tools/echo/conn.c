// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "conn.h"

/* Buffers above this size are freed when they empty, so idle connections stay small. */
#define CONN_KEEP_BUF 16384

static void format_peer(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, size, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

int conn_init(struct conn *c, struct echo_server *srv, int fd,
	      const struct listener *l, const struct conn_ops *ops)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->ep.kind = EP_CONN;
	c->fd = fd;
	c->srv = srv;
	c->ops = ops;
	c->local_port = l->port;
	c->events = ev.events;
	/* Replies are written whole; waiting for ACKs only adds latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (srv->opts->verbose)
		format_peer(fd, c->peer, sizeof(c->peer));
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	vlog(srv, "%s: connection from %s on port %u", listener_proto_name(l->proto),
	     c->peer, c->local_port);
	return 0;
}

void conn_set_deadline(struct conn *c, int64_t deadline)
{
	struct echo_server *srv = c->srv;

	if (c->deadline && !deadline) {
		if (c->timer_prev)
			c->timer_prev->timer_next = c->timer_next;
		else
			srv->timers = c->timer_next;
		if (c->timer_next)
			c->timer_next->timer_prev = c->timer_prev;
		c->timer_prev = c->timer_next = NULL;
	} else if (!c->deadline && deadline) {
		c->timer_prev = NULL;
		c->timer_next = srv->timers;
		if (srv->timers)
			srv->timers->timer_prev = c;
		srv->timers = c;
	}
	c->deadline = deadline;
}

void conn_destroy(struct conn *c)
{
	struct echo_server *srv = c->srv;

	conn_set_deadline(c, 0);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* close() also removes the fd from the epoll set. */
	close(c->fd);
	strbuf_free(&c->in);
	strbuf_free(&c->out);
	c->ops->destroy(c);
}

/* Read once; returns 0, or negative errno when the connection is broken. */
static int conn_read(struct conn *c)
{
	struct echo_server *srv = c->srv;
	ssize_t n;

	n = recv(c->fd, srv->io_buf, sizeof(srv->io_buf), 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!n) {
		c->peer_eof = true;
		return 0;
	}
	if (c->lingering)
		return 0;	/* draining: the peer's bytes are of no use now */
	return strbuf_append(&c->in, srv->io_buf, n);
}

static int conn_flush(struct conn *c)
{
	while (strbuf_avail(&c->out)) {
		ssize_t n = send(c->fd, strbuf_peek(&c->out), strbuf_avail(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -errno;
		}
		strbuf_consume(&c->out, n);
	}
	if (c->out.cap > CONN_KEEP_BUF)
		strbuf_free(&c->out);
	return 0;
}

static void conn_update_events(struct conn *c)
{
	uint32_t want = 0;
	bool out_full = strbuf_avail(&c->out) >= CONN_OUT_HIGH_WATER;

	if (!c->peer_eof && (c->lingering ||
			     (!out_full && strbuf_avail(&c->in) < CONN_IN_LIMIT)))
		want |= EPOLLIN;
	if (strbuf_avail(&c->out))
		want |= EPOLLOUT;
	if (want != c->events) {
		struct epoll_event ev = { .events = want, .data.ptr = c };

		if (!epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev))
			c->events = want;
	}
}

/*
 * Close after the last reply without losing it: shut down our sending side
 * and read until the peer closes (or CONN_LINGER_MS). Closing a socket with
 * unread input would send a RST that can destroy the reply in flight.
 */
static void conn_start_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->lingering = true;
	strbuf_free(&c->in);
	conn_set_deadline(c, now_ms() + CONN_LINGER_MS);
}

void conn_run(struct conn *c)
{
	int err = 0;

	if (c->lingering) {
		if (c->peer_eof)
			goto destroy;
		conn_update_events(c);
		return;
	}
	for (;;) {
		size_t before = strbuf_avail(&c->in);

		if (!c->paused && !c->close_after_flush)
			err = c->ops->process(c);
		if (err)
			goto destroy;
		err = conn_flush(c);
		if (err)
			goto destroy;
		/* Input may have been left only because output was full: go on. */
		if (strbuf_avail(&c->in) == before ||
		    strbuf_avail(&c->out) >= CONN_OUT_HIGH_WATER)
			break;
	}
	if (!strbuf_avail(&c->out)) {
		if (c->close_after_flush) {
			if (c->peer_eof)
				goto destroy;
			conn_start_linger(c);
		} else if (c->peer_eof && !c->paused) {
			goto destroy;	/* nothing more can arrive or leave */
		}
	}
	if (!strbuf_avail(&c->in) && c->in.cap > CONN_KEEP_BUF)
		strbuf_free(&c->in);
	conn_update_events(c);
	return;
destroy:
	if (err)
		vlog(c->srv, "connection from %s: %s", c->peer, strerror(-err));
	conn_destroy(c);
}

void conn_handle(struct conn *c, uint32_t events)
{
	int err;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		err = conn_read(c);
		if (err) {
			vlog(c->srv, "connection from %s: %s", c->peer, strerror(-err));
			conn_destroy(c);
			return;
		}
	}
	conn_run(c);
}

int conn_run_timers(struct echo_server *srv)
{
	int64_t now = now_ms(), next = -1;
	struct conn *c, *tmp;

	for (c = srv->timers; c; c = tmp) {
		tmp = c->timer_next;
		if (c->deadline > now)
			continue;
		conn_set_deadline(c, 0);
		if (c->lingering || c->ops->timeout(c)) {
			conn_destroy(c);
			continue;
		}
		conn_run(c);
	}
	for (c = srv->timers; c; c = c->timer_next)
		if (next < 0 || c->deadline < next)
			next = c->deadline;
	if (next < 0)
		return -1;
	return next > now ? (int)(next - now) : 0;
}
