/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny server that tells who it is, for data path tests: in a netns (and
 * optionally a cgroup) it listens on TCP and UDP, IPv4 and IPv6, one port.
 * TCP: on accept it writes its one-byte id, then echoes until EOF (one
 * connection at a time). UDP: it answers each datagram with its id
 * followed by the datagram. Clients learn which endpoint they reached.
 */
#ifndef GAMMAD_TEST_ID_SERVER_H
#define GAMMAD_TEST_ID_SERVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Start it; returns once it listens, with its pid (or -errno). */
pid_t id_server_start(const char *netns, const char *cgroup, uint16_t port, char id);
void id_server_stop(pid_t pid);

/* Client side, from the caller's netns/cgroup. timeout_ms bounds each wait. */
/* Connect, read the id, optionally report getpeername(); 0 or -errno. */
int id_tcp_hello(const struct sockaddr *dst, socklen_t len, char *id,
		 struct sockaddr_storage *peer, int timeout_ms);
/* sendto + recvfrom on an unconnected socket; *from is the reply's source. */
int id_udp_hello(const struct sockaddr *dst, socklen_t len, char *id,
		 struct sockaddr_storage *from, int timeout_ms);

/* connect + send + recvfrom on a UDP socket; *peer is getpeername(). */
int id_udp_connected_hello(const struct sockaddr *dst, socklen_t len, char *id,
			   struct sockaddr_storage *peer, int timeout_ms);

/* sockaddr of an address string and port ("198.19.0.1", "fd00:19::1"). */
socklen_t sockaddr_make(struct sockaddr_storage *ss, const char *addr, uint16_t port);
/* Same address and port? */
int sockaddr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
