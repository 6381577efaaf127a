/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client loop for data path tests, meant to run in a child process placed
 * in a cgroup (child_run): `count` hellos to one address over TCP or UDP,
 * tallying which server id answered, failures, and whether the address the
 * socket reports for its peer (getpeername / recvfrom) is the one dialed.
 * Lives in shared memory (hello_job_new) so the parent reads the results.
 */
#ifndef GAMMAD_TEST_HELLO_H
#define GAMMAD_TEST_HELLO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct hello_job {
	struct sockaddr_storage dst;
	socklen_t dst_len;
	bool udp;
	bool connected;		/* UDP: connect() + send() instead of sendto() */
	int count;		/* at most this many hellos */
	int timeout_ms;
	volatile int stop;	/* set by the parent: finish the current hello and return */
	/* results */
	int ok, fail, last_err;
	int ids[256];
	int peer_mismatch;	/* peer address differs from dst */
	long max_fail_us;	/* slowest failure */
};

/* A job for addr:port (an address string), in shared memory. */
struct hello_job *hello_job_new(const char *addr, uint16_t port, bool udp, int count);
void hello_job_free(struct hello_job *j);
/* child_run() body: returns 0 when it ran (check the results). */
int hello_loop(void *job);

#endif
