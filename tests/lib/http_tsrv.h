/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small HTTP/1.1 test server for what build/echo cannot do, one thread
 * per connection (at most TS_CONNS in its life), requests parsed with the
 * library's http/http1.h. Every request body is read and checksummed
 * (FNV-1a 64); the path says what to answer:
 *
 *   /ts/sum             "len=%016zx sum=%016llx" of the request body
 *   /ts/len/N           N bytes (ts_fill) with Content-Length
 *   /ts/chunked/N       N bytes chunked, trailer X-Sum: their FNV-1a
 *   /ts/close/N         N bytes, the end told by the close
 *   /ts/lie             keep-alive promised, the next request dropped
 *   /ts/flaky/503, /ts/flaky/reset, /ts/once/503: two failures, then the
 *                       answer of /ts/sum
 *   /ts/204, /ts/304    bodiless answers
 *   /ts/die             1 MB promised, 1000 bytes sent, then a reset
 *   /ts/hang            never answered (counted; and whether the peer closed)
 *   /ts/stream          an endless download (bytes sent counted)
 *   /ts/stream/N        N bytes (ts_fill) the same way, then keep-alive
 *   /ts/upgrade         101, then what comes back upper-cased
 *   anything else       418
 */
#ifndef GAMMAD_TEST_HTTP_TSRV_H
#define GAMMAD_TEST_HTTP_TSRV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TS_CONNS 512

struct tsrv {
	int lfd;
	uint16_t port;
	pthread_t thread;
	int stop;				/* atomic */
	pthread_t conns[TS_CONNS];
	int nr_conns;
	/* what it saw */
	int hang_requests, closed_after_hang;	/* atomic */
	long long stream_bytes;			/* atomic */
	int flaky[3];				/* atomic: /ts/flaky/503, /ts/flaky/reset, /ts/once/503 */
	/* atomic: requests with a body, and the last one's length and checksum */
	int bodies;
	long long last_len;
	uint64_t last_sum;
};

#define TS_FNV_INIT 0xcbf29ce484222325ULL

struct ts_sum {
	uint64_t h;
	size_t n;
};

/* Listen on 127.0.0.1, a port of the kernel's choice (s->port). */
int ts_start(struct tsrv *s);
/* Listen on [::]:port (IPv4 too) in network namespace netns (a /run/netns name). */
int ts_start_at(struct tsrv *s, const char *netns, uint16_t port);
void ts_stop(struct tsrv *s);

ssize_t ts_recv(struct tsrv *s, int fd, void *buf, size_t n);
int ts_send(struct tsrv *s, int fd, const void *buf, size_t n);
uint64_t ts_fnv1a(uint64_t h, const char *p, size_t n);
/* The bytes of the test bodies: position-dependent, so a lost or moved byte shows. */
void ts_fill(char *p, size_t n, size_t off);
/* h1_chunked_scan() data callback: ctx is a struct ts_sum. */
void ts_on_sum(void *ctx, const char *p, size_t n);
/* A listening socket on 127.0.0.1, its port in *port; fd or -errno. */
int ts_listen_loopback(uint16_t *port);

#endif
