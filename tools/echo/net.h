/* SPDX-License-Identifier: Apache-2.0 */
/* Client-side socket helpers: everything takes an absolute deadline. */
#ifndef ECHO_NET_H
#define ECHO_NET_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_ADDR_MAX 64	/* "[v6]:port" */

/* getaddrinfo with a readable error; @numeric: addresses only, no DNS. */
int net_resolve(const char *host, unsigned short port, int socktype, int numeric,
		struct addrinfo **res);
/*
 * Connect to the first address of @ai that accepts before @deadline.
 * Returns the socket (non-blocking), or negative errno with the reason in
 * @err_msg (which names the address).
 */
int net_connect(const struct addrinfo *ai, int64_t deadline, char *err_msg, size_t size);
/* "IP:PORT" or "[IP]:PORT". */
void net_format_addr(const struct sockaddr *sa, char *buf, size_t size);
/* The peer as getpeername() reports it, formatted. */
int net_peer(int fd, char *buf, size_t size);
/* Send everything; -ETIMEDOUT at the deadline. */
int net_send_all(int fd, const char *buf, size_t len, int64_t deadline);
/* Wait until @fd is readable (or writable with POLLOUT); -ETIMEDOUT. */
int net_wait(int fd, short events, int64_t deadline);

#endif
