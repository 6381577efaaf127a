// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "server.h"

#define LISTEN_BACKLOG 4096

static int open_socket(int family, int type, unsigned short port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1, zero = 0, err;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		/* One socket for IPv4 and IPv6 clients (v4 as ::ffff:a.b.c.d). */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
			goto fail;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	}
	if (bind(fd, (struct sockaddr *)&ss, len))
		goto fail;
	if (type == SOCK_STREAM && listen(fd, LISTEN_BACKLOG))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static unsigned short bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int listener_open(const struct listen_spec *spec, struct listener *l)
{
	int type = spec->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd;

	fd = open_socket(AF_INET6, type, spec->port);
	/* IPv6 may be off (no module, or disabled in this netns): use IPv4. */
	if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL || fd == -EPROTONOSUPPORT)
		fd = open_socket(AF_INET, type, spec->port);
	if (fd < 0) {
		pr_err("echo serve: cannot listen on %s port %u: %s",
		       listener_proto_name(spec->proto), spec->port, strerror(-fd));
		return fd;
	}
	l->ep.kind = spec->proto == PROTO_UDP ? EP_UDP : EP_LISTENER;
	l->fd = fd;
	l->proto = spec->proto;
	l->port = bound_port(fd);
	return 0;
}
