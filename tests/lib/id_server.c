// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "netns.h"
#include "id_server.h"

struct srv_arg {
	uint16_t port;
	char id;
	int ready_fd;
};

static int srv_socket(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss = {};
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	len = sockaddr_make(&ss, family == AF_INET ? "0.0.0.0" : "::", port);
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(fd, 128))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void srv_tcp(int lfd, char id)
{
	char buf[4096];
	ssize_t n;
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0)
		return;
	if (write(fd, &id, 1) == 1) {
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write(fd, buf, n) != n)
				break;
	}
	close(fd);
}

static void srv_udp(int fd, char id)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char buf[2048];
	ssize_t n;

	n = recvfrom(fd, buf + 1, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
	if (n < 0)
		return;
	buf[0] = id;
	sendto(fd, buf, n + 1, 0, (struct sockaddr *)&from, flen);
}

static int srv_main(void *p)
{
	struct srv_arg *a = p;
	struct pollfd pfd[4];
	char ok = 1;

	pfd[0].fd = srv_socket(AF_INET, SOCK_STREAM, a->port);
	pfd[1].fd = srv_socket(AF_INET6, SOCK_STREAM, a->port);
	pfd[2].fd = srv_socket(AF_INET, SOCK_DGRAM, a->port);
	pfd[3].fd = srv_socket(AF_INET6, SOCK_DGRAM, a->port);
	for (int i = 0; i < 4; i++) {
		if (pfd[i].fd < 0)
			ok = 0;
		pfd[i].events = POLLIN;
	}
	if (write(a->ready_fd, &ok, 1) != 1 || !ok)
		return 1;
	close(a->ready_fd);
	for (;;) {
		if (poll(pfd, 4, -1) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < 4; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if (i < 2)
				srv_tcp(pfd[i].fd, a->id);
			else
				srv_udp(pfd[i].fd, a->id);
		}
	}
}

pid_t id_server_start(const char *netns, const char *cgroup, uint16_t port, char id)
{
	struct srv_arg a = { .port = port, .id = id };
	int p[2];
	char ok = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	a.ready_fd = p[1];
	pid = child_start(cgroup, netns, srv_main, &a);
	close(p[1]);
	if (pid > 0 && (read(p[0], &ok, 1) != 1 || !ok)) {
		child_kill(pid);
		pid = -EIO;
	}
	close(p[0]);
	return pid;
}

void id_server_stop(pid_t pid)
{
	child_kill(pid);
}

static void set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int id_tcp_hello(const struct sockaddr *dst, socklen_t len, char *id,
		 struct sockaddr_storage *peer, int timeout_ms)
{
	socklen_t plen = sizeof(*peer);
	int fd, err = 0;

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd, timeout_ms);
	if (connect(fd, dst, len))
		err = -errno;
	else if (read(fd, id, 1) != 1)
		err = -EIO;
	else if (peer && getpeername(fd, (struct sockaddr *)peer, &plen))
		err = -errno;
	close(fd);
	return err;
}

int id_udp_hello(const struct sockaddr *dst, socklen_t len, char *id,
		 struct sockaddr_storage *from, int timeout_ms)
{
	socklen_t flen = sizeof(*from);
	char buf[64];
	int fd, err = 0;

	fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd, timeout_ms);
	if (sendto(fd, "hi", 2, 0, dst, len) != 2)
		err = -errno;
	else {
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &flen);

		if (n < 0)
			err = -errno;
		else if (n != 3)
			err = -EIO;
		else
			*id = buf[0];
	}
	close(fd);
	return err;
}

int id_udp_connected_hello(const struct sockaddr *dst, socklen_t len, char *id,
			   struct sockaddr_storage *peer, int timeout_ms)
{
	struct sockaddr_storage from;
	socklen_t plen = sizeof(*peer), flen = sizeof(from);
	char buf[64];
	ssize_t n;
	int fd, err = 0;

	fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd, timeout_ms);
	if (connect(fd, dst, len) || send(fd, "hi", 2, 0) != 2)
		err = -errno;
	else if ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen)) < 0)
		err = -errno;
	else if (n != 3)
		err = -EIO;
	else if (getpeername(fd, (struct sockaddr *)peer, &plen))
		err = -errno;
	else if (!sockaddr_eq(&from, peer))
		err = -EADDRNOTAVAIL;	/* the reply's source must be the peer too */
	else
		*id = buf[0];
	close(fd);
	return err;
}

socklen_t sockaddr_make(struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	return 0;
}

int sockaddr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}
