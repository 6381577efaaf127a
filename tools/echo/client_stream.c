// SPDX-License-Identifier: Apache-2.0
/*
 * --tcp and --udp: one exchange with the TCP line server or the UDP echo
 * server. The printed Peer= is what getpeername() says, which is what a
 * mesh that rewrites destinations at connect time must keep as the
 * Service address.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "net.h"
#include "strbuf.h"
#include "url.h"

#define STREAM_MAX_LINE (64 * 1024)

/* Read one line (without its "\n" or "\r\n") from @fd into @line. */
static int read_line(int fd, struct strbuf *in, struct strbuf *line, int64_t deadline)
{
	for (;;) {
		const char *nl = memchr(strbuf_peek(in), '\n', strbuf_avail(in));
		char buf[4096];
		ssize_t n;
		int err;

		if (nl) {
			size_t len = nl - strbuf_peek(in);
			size_t keep = len && nl[-1] == '\r' ? len - 1 : len;

			strbuf_reset(line);
			err = strbuf_append(line, strbuf_peek(in), keep);
			strbuf_consume(in, len + 1);
			return err;
		}
		if (strbuf_avail(in) > STREAM_MAX_LINE)
			return -E2BIG;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			err = strbuf_append(in, buf, n);
			if (err)
				return err;
			continue;
		}
		if (!n)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		err = net_wait(fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

static const char *describe(int err)
{
	switch (err) {
	case -ETIMEDOUT: return "timed out";
	case -ECONNRESET: return "connection closed by the server";
	case -E2BIG: return "line too long";
	default: return strerror(-err);
	}
}

static int run_tcp(const struct client_opts *o, const struct addrinfo *ai, int64_t deadline)
{
	struct strbuf in = STRBUF_INIT, line = STRBUF_INIT, req = STRBUF_INIT;
	char peer[NET_ADDR_MAX], err_msg[256];
	const char *step;
	int fd, err;

	fd = net_connect(ai, deadline, err_msg, sizeof(err_msg));
	if (fd < 0) {
		fprintf(stderr, "echo client: %s\n", err_msg);
		return 1;
	}
	step = "getpeername";
	err = net_peer(fd, peer, sizeof(peer));
	if (!err) {
		step = "reading the greeting";
		err = read_line(fd, &in, &line, deadline);
	}
	if (!err) {
		step = "sending";
		err = strbuf_printf(&req, "%s\n", o->send);
		err = err ?: net_send_all(fd, strbuf_peek(&req), strbuf_avail(&req), deadline);
	}
	if (!err) {
		step = "reading the reply";
		err = read_line(fd, &in, &line, deadline);
	}
	if (err)
		fprintf(stderr, "echo client: %s: %s: %s\n", o->target, step, describe(err));
	else
		printf("Peer=%s\n%.*s\n", peer, (int)strbuf_avail(&line), strbuf_peek(&line));
	close(fd);
	strbuf_free(&in);
	strbuf_free(&line);
	strbuf_free(&req);
	return err ? 1 : 0;
}

static int run_udp(const struct client_opts *o, const struct addrinfo *ai, int64_t deadline)
{
	static char reply[65536];
	char peer[NET_ADDR_MAX];
	const char *step = "connect";
	ssize_t n = 0;
	int fd, err;

	/* A connected UDP socket: only the peer's replies arrive, and it has a peer name. */
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		err = -errno;
		goto out;
	}
	step = "getpeername";
	err = net_peer(fd, peer, sizeof(peer));
	if (err)
		goto out;
	step = "sending";
	if (send(fd, o->send, strlen(o->send), 0) < 0) {
		err = -errno;
		goto out;
	}
	step = "waiting for the reply";
	do {
		err = net_wait(fd, POLLIN, deadline);
		if (err)
			goto out;
		n = recv(fd, reply, sizeof(reply), MSG_DONTWAIT);
	} while (n < 0 && (errno == EAGAIN || errno == EINTR));
	if (n < 0)
		err = -errno;	/* ECONNREFUSED: ICMP port unreachable came back */
out:
	if (err) {
		fprintf(stderr, "echo client: %s: udp %s: %s\n", o->target, step, describe(err));
	} else {
		while (n && (reply[n - 1] == '\n' || reply[n - 1] == '\r'))
			n--;
		printf("Peer=%s\n%.*s\n", peer, (int)n, reply);
	}
	if (fd >= 0)
		close(fd);
	return err ? 1 : 0;
}

int client_stream_run(const struct client_opts *o)
{
	bool tcp = o->mode == CLIENT_TCP;
	char host[URL_HOST_MAX];
	struct addrinfo *ai;
	unsigned short port;
	int ret;

	if (hostport_parse(tcp ? "--tcp" : "--udp", o->target, 0, host, &port))
		return 2;
	if (net_resolve(host, port, tcp ? SOCK_STREAM : SOCK_DGRAM, 0, &ai))
		return 1;
	ret = tcp ? run_tcp(o, ai, now_ms() + o->timeout_ms)
		  : run_udp(o, ai, now_ms() + o->timeout_ms);
	freeaddrinfo(ai);
	return ret;
}
