/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The echo server: one thread, one epoll set, non-blocking sockets.
 * Every epoll entry starts with a struct ep_item telling what it is.
 */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "http_handler.h"
#include "http_parse.h"
#include "serve_opts.h"

enum ep_kind { EP_LISTENER, EP_UDP, EP_CONN, EP_SIGNAL };

struct ep_item {
	enum ep_kind kind;
};

struct listener {
	struct ep_item ep;
	int fd;
	enum listener_proto proto;
	unsigned short port;	/* the bound port (the kernel's pick for 0) */
};

struct conn;

struct echo_server {
	const struct serve_opts *opts;
	int epfd;
	struct ep_item signal_item;
	int signal_fd;
	int spare_fd;		/* given up to accept-and-close when out of fds */
	struct listener listeners[SERVE_MAX_LISTENERS];
	int nr_listeners;
	struct conn *conns;	/* every open connection */
	struct conn *timers;	/* connections with a deadline */
	/* One request is parsed and answered at a time, so these are shared. */
	struct http_request request;
	struct http_handler_ctx handler;
	char io_buf[64 * 1024];	/* socket reads land here first */
	bool stop;
};

#define vlog(srv, ...) do {					\
	if ((srv)->opts->verbose)				\
		pr_info(__VA_ARGS__);				\
} while (0)

int server_run(const struct serve_opts *opts);

/* listen.c: bind and listen (TCP) or bind (UDP) on [::] or 0.0.0.0. */
int listener_open(const struct listen_spec *spec, struct listener *l);

/* Protocol entry points, called for each accepted socket or datagram. */
int http_conn_accept(struct echo_server *srv, int fd, const struct listener *l);
int line_conn_accept(struct echo_server *srv, int fd, const struct listener *l);
void udp_echo_handle(struct echo_server *srv, struct listener *l);

#endif
