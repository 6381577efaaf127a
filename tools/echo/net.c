// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "net.h"

int net_resolve(const char *host, unsigned short port, int socktype, int numeric,
		struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = socktype };
	char port_str[8];
	int ret;

	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST;
	snprintf(port_str, sizeof(port_str), "%u", port);
	ret = getaddrinfo(host, port_str, &hints, res);
	if (ret) {
		fprintf(stderr, "echo client: cannot resolve '%s': %s\n", host,
			ret == EAI_SYSTEM ? strerror(errno) : gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	return 0;
}

void net_format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		snprintf(buf, size, "(family %d)", sa->sa_family);
	}
}

int net_peer(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	net_format_addr((struct sockaddr *)&ss, buf, size);
	return 0;
}

int net_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int n = poll(&pfd, 1, ms_until(deadline));

		if (n > 0)
			return 0;
		if (!n)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd, err, soerr = 0;
	socklen_t len = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
		return fd;
	if (errno != EINPROGRESS) {
		err = -errno;
		goto fail;
	}
	err = net_wait(fd, POLLOUT, deadline);
	if (err)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len)) {
		err = -errno;
		goto fail;
	}
	if (soerr) {
		err = -soerr;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

int net_connect(const struct addrinfo *ai, int64_t deadline, char *err_msg, size_t size)
{
	int fd = -EHOSTUNREACH;
	char addr[NET_ADDR_MAX];

	snprintf(err_msg, size, "no address to connect to");
	for (; ai; ai = ai->ai_next) {
		fd = connect_one(ai, deadline);
		if (fd >= 0)
			return fd;
		net_format_addr(ai->ai_addr, addr, sizeof(addr));
		snprintf(err_msg, size, "connect to %s: %s", addr,
			 fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
		if (fd == -ETIMEDOUT)
			break;	/* the deadline is spent for every address */
	}
	return fd;
}

int net_send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int err;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			err = net_wait(fd, POLLOUT, deadline);
			if (err)
				return err;
			continue;
		}
		buf += n;
		len -= n;
	}
	return 0;
}
