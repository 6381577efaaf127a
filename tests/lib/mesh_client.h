/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Clients of lab Services with real sockets, run in a child process placed
 * where a client of the mesh lives: a cgroup (a pod's container cgroup, or
 * one of the test's own) and a network namespace (a pod's, or the test's).
 * One connection per request; each result carries when it started and when
 * connect() returned, what getpeername() said and which pod answered, so a
 * test can check every single connection, also while the routes change.
 *
 *	struct mc_place at = { .cgroup = pod->container_cgroup, .netns = pod->netns };
 *	struct mc_loop l;
 *
 *	mc_loop_start(&l, &at, ip, 80, MC_HTTP, 100000);
 *	... change routes ...
 *	n = mc_loop_stop(&l);		// l.res[0..n)
 *	mc_loop_free(&l);
 */
#ifndef GAMMAD_TEST_MESH_CLIENT_H
#define GAMMAD_TEST_MESH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum mc_proto {
	MC_HTTP,	/* GET / on a new connection; the echo body names the pod */
	MC_LINE,	/* TCP line protocol: greeting, TEST, JSON with the pod */
	MC_UDP,		/* one datagram on a connected UDP socket, the JSON reply */
	MC_UDP_SENDTO,	/* unconnected: sendto(), recvfrom() (its source is the peer) */
	MC_PINGPONG,	/* ONE TCP line connection (TEST once), then PING/PONG per result */
	/*
	 * ONE connected UDP socket, a datagram every 50 ms, the JSON reply per
	 * result, as a long-lived UDP client (metrics agent, QUIC, game) does.
	 * After an error (step "send"/"recv") the same socket, its pending
	 * error taken (SO_ERROR), is connected to the address again before the
	 * next datagram, as such a client re-resolves; a lost reply costs a
	 * timeout (timeout_ms).
	 */
	MC_UDP_HOLD,
	/*
	 * ONE TCP connection, GET / with keep-alive per result (Content-Length
	 * responses), as an HTTP client with a connection pool does. Like
	 * MC_PINGPONG, a broken connection is not made again.
	 */
	MC_HTTP_KEEPALIVE,
};

struct mc_place {
	const char *cgroup;	/* cgroup directory to join; NULL: the test's own */
	const char *netns;	/* name under /run/netns; NULL: the test's own */
	int timeout_ms;		/* per socket operation; 0: 5 s */
	const char *path;	/* MC_HTTP_KEEPALIVE's request target; NULL: "/" */
};

struct mc_result {
	int64_t t_start_us;	/* CLOCK_MONOTONIC before socket() */
	int64_t t_conn_us;	/* after connect() (MC_UDP_SENDTO: sendto()) returned */
	int err;		/* 0, or -errno of the failing step */
	char step[16];		/* which step failed */
	char peer[64];		/* getpeername() (MC_UDP_SENDTO: recvfrom() source), "ip:port" or "[ip]:port" */
	char pod[128];		/* the pod that answered */
	char port[8];		/* the port it answered on ("httpPort"/"tcpport"), "" for UDP */
	char path[64];		/* MC_HTTP: the path it was asked for (a route may rewrite it) */
};

struct mc_loop {
	pid_t pid;
	struct mc_shared *sh;
	size_t max, map_len;
	const struct mc_result *res;	/* valid after mc_loop_stop() */
};

/*
 * Move the calling process (a forked child) to `at`: its cgroup (NULL: the
 * test's own), then its netns (NULL: the host's). 0 or -errno.
 */
int mc_place_self(const struct mc_place *at);
/* Fork a client placed at `at` making up to max requests, one after the other. */
int mc_loop_start(struct mc_loop *l, const struct mc_place *at, const char *ip, int port,
		  enum mc_proto proto, size_t max);
/* Results so far (the loop keeps running). */
size_t mc_loop_count(const struct mc_loop *l);
/* Stop the loop (the request under way completes) and reap it; how many results. */
size_t mc_loop_stop(struct mc_loop *l);
/* Wait for the loop to make its max requests; how many results. */
size_t mc_loop_wait(struct mc_loop *l);
void mc_loop_free(struct mc_loop *l);

/*
 * n requests from `at` (mc_loop_start + mc_loop_wait); results in l->res.
 * Prints each distinct outcome.
 */
size_t mc_run(struct mc_loop *l, const struct mc_place *at, const char *ip, int port,
	      enum mc_proto proto, size_t n);

/* How many of res[0..n) failed / were answered by `pod` / had peer `peer`. */
size_t mc_count_errors(const struct mc_result *res, size_t n);
size_t mc_count_pod(const struct mc_result *res, size_t n, const char *pod);
size_t mc_count_peer(const struct mc_result *res, size_t n, const char *peer);
size_t mc_count_port(const struct mc_result *res, size_t n, const char *port);

/* "ip:port", "[ip]:port" for IPv6: how getpeername() results are printed. */
void mc_addr_port(char *buf, size_t len, const char *ip, int port);

#endif
