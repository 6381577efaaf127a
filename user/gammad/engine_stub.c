// SPDX-License-Identifier: Apache-2.0
/* STAND-IN for the HTTP engine core: see engine_stub.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "base/log.h"
#include "translate/translate.h"
#include "engine_stub.h"

#define STUB_IO_TIMEOUT_MS 10000

struct engine {
	struct engine_opts opts;
	atomic_bool stopping;
	atomic_int live;
};

struct stub_conn {
	struct engine *e;
	int fd;
	struct engine_origin o;
};

struct engine *engine_new(const struct engine_opts *opts)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (e)
		e->opts = *opts;
	return e;
}

int engine_set_tables(struct engine *e, struct tr_result *res)
{
	if (e->opts.release_tables) {
		e->opts.release_tables(e->opts.ctx, res);
	} else {
		tr_result_free(res);
		free(res);
	}
	return 0;
}

void engine_forget_netns(struct engine *e, void *netns_ctx)
{
	(void)e;
	(void)netns_ctx;	/* the stand-in pools nothing */
}

int engine_start(struct engine *e)
{
	(void)e;
	return 0;
}

void engine_stop(struct engine *e)
{
	atomic_store(&e->stopping, true);
	for (int i = 0; i < 500 && atomic_load(&e->live); i++)
		usleep(10000);
}

void engine_free(struct engine *e)
{
	free(e);
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) ? -errno : 0;
}

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, STUB_IO_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return r ? -errno : -ECONNRESET;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return (int)n;
}

static void relay(int a, int b)
{
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
	char buf[16384];

	for (;;) {
		if (poll(p, 2, STUB_IO_TIMEOUT_MS) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			ssize_t r;

			if (!p[i].revents)
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r <= 0 || write(p[!i].fd, buf, (size_t)r) != r)
				return;
		}
	}
}

static void upstream(struct stub_conn *c, const char *line)
{
	struct sockaddr_storage ss = { 0 };
	char ip[64], msg[64];
	socklen_t len;
	int port, fd, family;

	if (sscanf(line, "CONNECT %63s %d", ip, &port) != 2)
		return;
	family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		len = sizeof(*a);
	}
	fd = c->e->opts.upstream_socket(c->e->opts.ctx, family, c->o.netns_ctx);
	if (fd >= 0 && (set_blocking(fd) || connect(fd, (struct sockaddr *)&ss, len))) {
		int err = errno;

		close(fd);
		fd = -err;
	}
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "FAILED %d\n", -fd);
		(void)!write(c->fd, msg, strlen(msg));
		return;
	}
	if (write(c->fd, "CONNECTED\n", 10) == 10)
		relay(c->fd, fd);
	close(fd);
}

static void *conn_thread(void *arg)
{
	struct stub_conn *c = arg;
	char vip[INET6_ADDRSTRLEN], line[512];
	int n;

	ip_addr_str(&c->o.vip, vip, sizeof(vip));
	n = snprintf(line, sizeof(line), "ORIGIN %s %u %s %s\n", vip, c->o.vport,
		     c->o.client_ns, c->o.client_pod);
	if (!set_blocking(c->fd) && write(c->fd, line, (size_t)n) == n &&
	    read_line(c->fd, line, sizeof(line)) > 0)
		upstream(c, line);
	close(c->fd);
	atomic_fetch_sub(&c->e->live, 1);
	free(c);
	return NULL;
}

int engine_adopt(struct engine *e, int fd, const struct engine_origin *o)
{
	struct stub_conn *c;
	pthread_attr_t at;
	pthread_t t;
	int err;

	if (atomic_load(&e->stopping)) {
		close(fd);
		return -ESHUTDOWN;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	*c = (struct stub_conn){ .e = e, .fd = fd, .o = *o };
	atomic_fetch_add(&e->live, 1);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &at, conn_thread, c);
	pthread_attr_destroy(&at);
	if (err) {
		atomic_fetch_sub(&e->live, 1);
		free(c);
		close(fd);
		return -err;
	}
	return 0;
}
