// SPDX-License-Identifier: Apache-2.0
/*
 * bench serve --http PORT [--id PORT --name ID] [--sink PORT]
 *
 * The server of a benchmark pod: one thread, epoll, non-blocking.
 *  --http: HTTP/1.1 keep-alive; every request head (up to "\r\n\r\n", no
 *          body) gets a fixed 64-byte response; pipelining is answered in
 *          order. The ping-pong client sends 64-byte requests, so one round
 *          trip is 64 bytes each way, and wrk and haproxy (mode http) speak
 *          the same protocol.
 *  --id:   write "ID\n" and close (which backend answered a connection).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* 64 bytes exactly: 38 of head + 26 of body. */
static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n"
			   "abcdefghijklmnopqrstuvwxyz";

enum kind { K_HTTP_LISTEN = 1, K_ID_LISTEN, K_HTTP_CONN };

struct conn {
	int fd;
	enum kind kind;
	int match;		/* bytes of "\r\n\r\n" seen */
	size_t pending;		/* response bytes not yet written */
	size_t off;
	char *out;
	size_t cap;
};

static const char *server_id = "unnamed";

/*
 * IPv4 only, on purpose: an IPv4 connection accepted by a dual-stack [::]
 * listener is an AF_INET6 socket with v4-mapped addresses, which gammad's
 * sockops does not recognise as a local endpoint (no socket redirect).
 */
static int listen_on(int port)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) || listen(fd, 4096)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Write what is pending; 0 all written, 1 would block, <0 error. */
static int conn_flush(int ep, struct conn *c)
{
	while (c->off < c->pending) {
		ssize_t n = send(c->fd, c->out + c->off, c->pending - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				return 1;
			}
			return -errno;
		}
		c->off += n;
	}
	c->off = c->pending = 0;
	return 0;
}

static int queue_response(struct conn *c)
{
	if (c->pending + sizeof(RESP) - 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4096;
		char *p = realloc(c->out, cap);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->cap = cap;
	}
	memcpy(c->out + c->pending, RESP, sizeof(RESP) - 1);
	c->pending += sizeof(RESP) - 1;
	return 0;
}

static void on_http(int ep, struct conn *c, uint32_t events)
{
	static const char term[] = "\r\n\r\n";
	char buf[65536];

	if (events & EPOLLOUT) {
		int r = conn_flush(ep, c);

		if (r < 0)
			goto close;
		if (r == 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n == 0)
			goto close;
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			goto close;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == term[c->match])
				c->match++;
			else
				c->match = buf[i] == '\r';
			if (c->match == 4) {
				c->match = 0;
				if (queue_response(c))
					goto close;
			}
		}
		if (n < (ssize_t)sizeof(buf))
			break;
	}
	if (c->pending && c->off == 0 && conn_flush(ep, c) < 0)
		goto close;
	return;
close:
	conn_close(ep, c);
}

static void on_accept(int ep, struct conn *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0)
			return;
		if (l->kind == K_ID_LISTEN) {
			char line[256];
			int len = snprintf(line, sizeof(line), "%s\n", server_id);

			if (send(fd, line, len, MSG_NOSIGNAL) < 0) {
				/* the poller gave up on this one */
			}
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->kind = K_HTTP_CONN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
		}
	}
}

static int add_listener(int ep, int port, enum kind kind)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *l = calloc(1, sizeof(*l));
	int fd = listen_on(port);

	if (fd < 0 || !l) {
		fprintf(stderr, "bench serve: port %d: %s\n", port, strerror(fd < 0 ? -fd : ENOMEM));
		return -1;
	}
	l->fd = fd;
	l->kind = kind;
	ev.data.ptr = l;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int cmd_serve(int argc, char **argv)
{
	int http_port = 0, id_port = 0, ep;
	struct epoll_event evs[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--http") && i + 1 < argc)
			http_port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--id") && i + 1 < argc)
			id_port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			server_id = argv[++i];
		else {
			fprintf(stderr, "usage: bench serve --http PORT [--id PORT --name ID]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	if ((http_port && add_listener(ep, http_port, K_HTTP_LISTEN)) ||
	    (id_port && add_listener(ep, id_port, K_ID_LISTEN)))
		return 1;
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->kind == K_HTTP_CONN)
				on_http(ep, c, evs[i].events);
			else
				on_accept(ep, c);
		}
	}
}
