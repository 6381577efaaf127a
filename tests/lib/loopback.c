// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"

int loopback_listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (port)
		*port = ntohs(a.sin_port);
	return fd;
}

int loopback_pair(int l, int *c, bool nodelay)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int one = 1;

	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || getsockname(l, (struct sockaddr *)&a, &len) ||
	    (nodelay && setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) ||
	    connect(*c, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}
