// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "conn.h"
#include "server.h"

#define EPOLL_BATCH 256
#define ACCEPT_BATCH 64

static int epoll_add(struct echo_server *srv, int fd, struct ep_item *item)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = item };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* SIGTERM and SIGINT arrive as epoll events, so shutdown is just a loop exit. */
static int setup_signals(struct echo_server *srv)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	srv->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->signal_fd < 0)
		return -errno;
	srv->signal_item.kind = EP_SIGNAL;
	return epoll_add(srv, srv->signal_fd, &srv->signal_item);
}

/*
 * Written to a temporary name and renamed, so whoever waits for the file
 * never reads it half-written. One line per listener: "<proto> <port>".
 */
static int write_ready_file(struct echo_server *srv, const char *path)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (int i = 0; i < srv->nr_listeners; i++)
		fprintf(f, "%s %u\n", listener_proto_name(srv->listeners[i].proto),
			srv->listeners[i].port);
	if (fclose(f))
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void accept_connections(struct echo_server *srv, struct listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int err;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/*
				 * Out of descriptors: the pending connection would keep
				 * the listener readable and spin the loop. Free the spare
				 * descriptor to accept and close it.
				 */
				pr_warn("echo serve: out of file descriptors, refusing a connection");
				if (srv->spare_fd >= 0) {
					close(srv->spare_fd);
					fd = accept(l->fd, NULL, NULL);
					if (fd >= 0)
						close(fd);
					srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				}
				return;
			}
			if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO)
				continue;
			if (errno != EAGAIN)
				pr_warn("echo serve: accept on port %u: %s", l->port, strerror(errno));
			return;
		}
		if (l->proto == PROTO_TCP_LINE)
			err = line_conn_accept(srv, fd, l);
		else
			err = http_conn_accept(srv, fd, l);
		if (err)
			pr_warn("echo serve: connection on port %u dropped: %s", l->port,
				strerror(-err));
	}
}

static int open_listeners(struct echo_server *srv)
{
	const struct serve_opts *opts = srv->opts;
	int err;

	for (int i = 0; i < opts->nr_listeners; i++) {
		struct listener *l = &srv->listeners[i];

		l->fd = -1;
		err = listener_open(&opts->listeners[i], l);
		if (err)
			return err;
		srv->nr_listeners++;
		err = epoll_add(srv, l->fd, &l->ep);
		if (err) {
			pr_err("echo serve: epoll_ctl for port %u: %s", l->port, strerror(-err));
			return err;
		}
		vlog(srv, "listening: %s port %u", listener_proto_name(l->proto), l->port);
	}
	return 0;
}

static void dispatch(struct echo_server *srv, struct epoll_event *ev)
{
	struct ep_item *item = ev->data.ptr;
	struct signalfd_siginfo si;

	switch (item->kind) {
	case EP_LISTENER:
		accept_connections(srv, container_of(item, struct listener, ep));
		break;
	case EP_UDP:
		udp_echo_handle(srv, container_of(item, struct listener, ep));
		break;
	case EP_CONN:
		conn_handle(container_of(item, struct conn, ep), ev->events);
		break;
	case EP_SIGNAL:
		if (read(srv->signal_fd, &si, sizeof(si)) == sizeof(si)) {
			vlog(srv, "signal %u: shutting down", si.ssi_signo);
			srv->stop = true;
		}
		break;
	}
}

static void server_cleanup(struct echo_server *srv)
{
	while (srv->conns)
		conn_destroy(srv->conns);
	for (int i = 0; i < srv->nr_listeners; i++)
		close(srv->listeners[i].fd);
	if (srv->signal_fd >= 0)
		close(srv->signal_fd);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	http_handler_ctx_free(&srv->handler);
	free(srv);
}

int server_run(const struct serve_opts *opts)
{
	struct epoll_event events[EPOLL_BATCH];
	struct echo_server *srv;
	int err, timeout = -1;

	srv = calloc(1, sizeof(*srv));	/* large: buffers and the request */
	if (!srv)
		return -ENOMEM;
	srv->opts = opts;
	srv->handler.id = &opts->id;
	srv->signal_fd = srv->spare_fd = -1;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		err = -errno;
		pr_err("echo serve: epoll_create1: %s", strerror(-err));
		goto out;
	}
	err = setup_signals(srv);
	if (err) {
		pr_err("echo serve: cannot set up signal handling: %s", strerror(-err));
		goto out;
	}
	err = open_listeners(srv);
	if (err)
		goto out;
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (opts->ready_file) {
		err = write_ready_file(srv, opts->ready_file);
		if (err) {
			pr_err("echo serve: cannot write ready file %s: %s",
			       opts->ready_file, strerror(-err));
			goto out;
		}
	}

	while (!srv->stop) {
		int n = epoll_wait(srv->epfd, events, EPOLL_BATCH, timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			pr_err("echo serve: epoll_wait: %s", strerror(-err));
			break;
		}
		for (int i = 0; i < n && !srv->stop; i++)
			dispatch(srv, &events[i]);
		timeout = conn_run_timers(srv);
	}
	/* A launcher waiting for this file must not mistake a dead server for a ready one. */
	if (opts->ready_file)
		unlink(opts->ready_file);
out:
	server_cleanup(srv);
	return err;
}
