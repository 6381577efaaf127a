// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <time.h>

#include "netns.h"
#include "id_server.h"
#include "hello.h"

struct hello_job *hello_job_new(const char *addr, uint16_t port, bool udp, int count)
{
	struct hello_job *j = shared_alloc(sizeof(*j));

	if (!j)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->dst_len = sockaddr_make(&j->dst, addr, port);
	j->udp = udp;
	j->count = count;
	j->timeout_ms = 2000;
	return j;
}

void hello_job_free(struct hello_job *j)
{
	shared_free(j, sizeof(*j));
}

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

int hello_loop(void *p)
{
	struct hello_job *j = p;

	for (int i = 0; i < j->count && !j->stop; i++) {
		struct sockaddr_storage peer = {};
		long t0 = now_us();
		char id = 0;
		int err;

		if (j->udp && j->connected)
			err = id_udp_connected_hello((struct sockaddr *)&j->dst, j->dst_len, &id,
						     &peer, j->timeout_ms);
		else if (j->udp)
			err = id_udp_hello((struct sockaddr *)&j->dst, j->dst_len, &id, &peer,
					   j->timeout_ms);
		else
			err = id_tcp_hello((struct sockaddr *)&j->dst, j->dst_len, &id, &peer,
					   j->timeout_ms);
		if (err) {
			long dt = now_us() - t0;

			j->fail++;
			j->last_err = -err;
			if (dt > j->max_fail_us)
				j->max_fail_us = dt;
			continue;
		}
		j->ok++;
		j->ids[(unsigned char)id]++;
		if (!sockaddr_eq(&peer, &j->dst))
			j->peer_mismatch++;
	}
	return 0;
}
