// SPDX-License-Identifier: Apache-2.0
/*
 * Ordinary blocking applications between two same-node pods (netns A and
 * B joined by a veth pair, both IPs local endpoints, both ends in the
 * attach cgroup), connected straight to B's pod IP: the default data path
 * must give them exactly what plain TCP gives. A socket in the sockhash
 * does not (tcp_bpf_recvmsg, kernel 6.18): a blocking read returns EAGAIN
 * after any wake-up that finds its queues empty (a signal, the ACK of its
 * own FIN, a shutdown() from another thread), MSG_WAITALL and SO_RCVLOWAT
 * return short, splice() never sees redirected bytes, and a close with
 * unread bytes sends FIN instead of RST. See "Same-node socket redirect"
 * in docs/ARCHITECTURE.md.
 *
 * Each scenario counts what plain TCP would never do. On the default path
 * every count must be 0. GAMMAD_SKB_ITERS=N sets the connections of each
 * scenario (default 10), GAMMAD_SKB_ROUNDS=N the rounds of the ones on
 * one connection (default 1000), and GAMMAD_SKB_REDIRECT=1 runs them
 * with the redirect on (--sockmap) and only prints the counts: the kernel's behaviour, measured, not asserted.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/netns.h"
#include "lib/id_server.h"
#include "lib/dp_fixture.h"

#define SKB_PORT	(FX_PORT + 7)
#define SKB_WAIT_MS	10000
#define SKB_DELAY_US	20000	/* a peer's pause, long enough for the reader to block */

enum anomaly {
	AN_EAGAIN,		/* a blocking read returned EAGAIN */
	AN_SIGNAL,		/* a blocking read interrupted by an SA_RESTART signal failed */
	AN_SHORT_WAITALL,	/* MSG_WAITALL returned less than asked, no EOF */
	AN_SHORT_LOWAT,		/* a read returned less than SO_RCVLOWAT, no EOF */
	AN_FIONREAD,		/* FIONREAD below what poll() said was readable */
	AN_SPLICE,		/* splice() from the socket missed bytes (EAGAIN or EOF) */
	AN_NO_RESET,		/* close() with unread bytes reached the peer as EOF */
	AN_EARLY_TIMEOUT,	/* SO_RCVTIMEO expired early */
	AN_LOST,		/* bytes missing, doubled or out of order */
	AN_MAX,
};

static const char *const an_name[AN_MAX] = {
	[AN_EAGAIN] = "eagain", [AN_SIGNAL] = "signal", [AN_SHORT_WAITALL] = "short_waitall",
	[AN_SHORT_LOWAT] = "short_lowat", [AN_FIONREAD] = "fionread", [AN_SPLICE] = "splice",
	[AN_NO_RESET] = "no_reset", [AN_EARLY_TIMEOUT] = "early_timeout", [AN_LOST] = "lost",
};

struct skb_run;
typedef int (*skb_fn)(struct skb_run *r, int fd, int i);

struct skb_scenario {
	const char *name;
	skb_fn client, server;
	int conns;		/* 1: one connection of `rounds` rounds; 0: one per iteration */
	size_t size;
	int pause_ms;		/* bulk: the reader starts this late */
};

struct skb_run {
	const struct skb_scenario *sc;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int iters;		/* connections, or rounds on the one connection */
	int listening;		/* __atomic */
	int err_client, err_server;
	long count[AN_MAX];	/* __atomic adds */
	long eagain_at[2];	/* AN_EAGAIN by side: client, server */
	long rounds;
};

/* Which end this process is (0 client, 1 server): set after the fork. */
static int skb_side;

static void an_inc(struct skb_run *r, enum anomaly a)
{
	__atomic_add_fetch(&r->count[a], 1, __ATOMIC_RELAXED);
}

/*
 * read() as blocking code writes it, except that EAGAIN (impossible on a
 * blocking socket without SO_RCVTIMEO) is counted and retried so the
 * scenario can go on.
 */
static ssize_t rd(struct skb_run *r, int fd, void *buf, size_t len, int flags)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, flags);

		if (n >= 0 || errno != EAGAIN)
			return n;
		an_inc(r, AN_EAGAIN);
		r->eagain_at[skb_side]++;
	}
}

static int rd_full(struct skb_run *r, int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = rd(r, fd, buf + got, len - got, 0);

		if (n <= 0)
			return n ? errno : EPIPE;
		got += n;
	}
	return 0;
}

static int wr_full(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return errno ?: EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Read to EOF; returns bytes read or -errno. */
static long rd_eof(struct skb_run *r, int fd)
{
	static uint8_t buf[1 << 16];
	long total = 0;

	for (;;) {
		ssize_t n = rd(r, fd, buf, sizeof(buf), 0);

		if (n < 0)
			return -errno;
		if (n == 0)
			return total;
		total += n;
	}
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static uint8_t big_a[1 << 16], big_b[1 << 16];

/*
 * One round's answer, the scenario's size, read into big_b and compared
 * with big_a (fill()ed by the caller): AN_LOST on a mismatch. A read that
 * returns less than it asked for, short of the end, counts short_an. With
 * retry_an, a read failing with EAGAIN or EINTR counts it and is retried;
 * without (AN_MAX for either), the reads are rd()'s.
 */
static int read_round(struct skb_run *r, int fd, int flags, enum anomaly short_an,
		      enum anomaly retry_an)
{
	size_t sz = r->sc->size, got = 0;

	while (got < sz) {
		ssize_t n = retry_an == AN_MAX ? rd(r, fd, big_b + got, sz - got, flags) :
						 recv(fd, big_b + got, sz - got, flags);

		if (n < 0 && retry_an != AN_MAX && (errno == EAGAIN || errno == EINTR)) {
			an_inc(r, retry_an);
			continue;
		}
		if (n <= 0)
			return n ? errno : EPIPE;
		if (short_an != AN_MAX && (size_t)n < sz - got)
			an_inc(r, short_an);
		got += n;
	}
	if (memcmp(big_a, big_b, sz))
		an_inc(r, AN_LOST);
	r->rounds++;
	return 0;
}

/* ---- scenarios ----------------------------------------------------------- */

/* Request/response of sc->size bytes, iters rounds, then half-close. */
static int pingpong_client(struct skb_run *r, int fd, int i)
{
	size_t sz = r->sc->size;
	long rest;
	int err;

	(void)i;
	for (int k = 0; k < r->iters; k++) {
		fill(big_a, sz, k);
		err = wr_full(fd, big_a, sz) ?: read_round(r, fd, 0, AN_MAX, AN_MAX);
		if (err)
			return err;
	}
	if (shutdown(fd, SHUT_WR))
		return errno;
	rest = rd_eof(r, fd);
	return rest < 0 ? -rest : rest ? EBADMSG : 0;
}

/* A connection per exchange: one request, one response, close. */
static int shortconn_client(struct skb_run *r, int fd, int i)
{
	uint8_t req[64], resp[64];
	int err;

	fill(req, sizeof(req), i);
	err = wr_full(fd, req, sizeof(req)) ?: rd_full(r, fd, resp, sizeof(resp));
	if (err)
		return err;
	if (memcmp(req, resp, sizeof(req)))
		an_inc(r, AN_LOST);
	r->rounds++;
	return 0;
}

static int echo_server(struct skb_run *r, int fd, int i)
{
	static uint8_t buf[1 << 16];

	(void)i;
	for (;;) {
		ssize_t n = rd(r, fd, buf, sizeof(buf), 0);

		if (n < 0)
			return errno;
		if (n == 0)
			return 0;
		if (wr_full(fd, buf, n))
			return errno;
	}
}

/* One way, iters x size bytes, client -> server; then the server answers EOF. */
static int bulk_send(struct skb_run *r, int fd)
{
	long rest;

	for (int k = 0; k < r->iters; k++) {
		fill(big_a, r->sc->size, k);
		if (wr_full(fd, big_a, r->sc->size))
			return errno;
	}
	if (shutdown(fd, SHUT_WR))
		return errno;
	/* The peer closes after reading everything: EOF, nothing else. */
	rest = rd_eof(r, fd);
	return rest < 0 ? -rest : rest ? EBADMSG : 0;
}

static int bulk_recv(struct skb_run *r, int fd)
{
	usleep(r->sc->pause_ms * 1000);
	for (int k = 0; k < r->iters; k++) {
		int err;

		fill(big_a, r->sc->size, k);
		err = read_round(r, fd, 0, AN_MAX, AN_MAX);
		if (err)
			return err;
	}
	return rd_eof(r, fd) == 0 ? 0 : EBADMSG;
}

static int bulk_up_client(struct skb_run *r, int fd, int i) { (void)i; return bulk_send(r, fd); }
static int bulk_up_server(struct skb_run *r, int fd, int i) { (void)i; return bulk_recv(r, fd); }
static int bulk_down_client(struct skb_run *r, int fd, int i) { (void)i; return bulk_recv(r, fd); }
static int bulk_down_server(struct skb_run *r, int fd, int i) { (void)i; return bulk_send(r, fd); }

/*
 * Half-close: request, shutdown(SHUT_WR), then block for the answer the
 * server sends a moment after it saw EOF (the ACK of our FIN comes first).
 */
static int halfclose_client(struct skb_run *r, int fd, int i)
{
	uint8_t req[100], resp[100];
	int err;

	fill(req, sizeof(req), i);
	if (wr_full(fd, req, sizeof(req)) || shutdown(fd, SHUT_WR))
		return errno;
	err = rd_full(r, fd, resp, sizeof(resp));
	if (err)
		return err;
	if (memcmp(req, resp, sizeof(req)))
		an_inc(r, AN_LOST);
	r->rounds++;
	return rd_eof(r, fd) == 0 ? 0 : EBADMSG;
}

static int halfclose_server(struct skb_run *r, int fd, int i)
{
	uint8_t req[100];
	int err;

	(void)i;
	err = rd_full(r, fd, req, sizeof(req));
	if (err)
		return err;
	if (rd_eof(r, fd) != 0)
		return EBADMSG;
	usleep(SKB_DELAY_US);
	return wr_full(fd, req, sizeof(req));
}

/* Two halves with a pause between them: the client waits for both. */
static int halves_server(struct skb_run *r, int fd, int i)
{
	size_t half = r->sc->size / 2;
	uint8_t c;

	fill(big_a, r->sc->size, i);
	/* The client blocks in its read before the first half comes. */
	usleep(SKB_DELAY_US);
	if (wr_full(fd, big_a, half))
		return errno;
	usleep(SKB_DELAY_US);
	if (wr_full(fd, big_a + half, r->sc->size - half))
		return errno;
	/* Until the client is done: its close. */
	return rd(r, fd, &c, 1, 0) == 0 ? 0 : EBADMSG;
}

static int waitall_client(struct skb_run *r, int fd, int i)
{
	fill(big_a, r->sc->size, i);
	return read_round(r, fd, MSG_WAITALL, AN_SHORT_WAITALL, AN_MAX);
}

/* SO_RCVLOWAT of the whole answer: a read waits for min(lowat, asked), never less. */
static int lowat_client(struct skb_run *r, int fd, int i)
{
	int lowat = r->sc->size;

	fill(big_a, r->sc->size, i);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)))
		return errno;
	return read_round(r, fd, 0, AN_SHORT_LOWAT, AN_MAX);
}

/* A signal (SA_RESTART) while blocked in read(): TCP restarts the read. */
static void on_alarm(int sig)
{
	(void)sig;
}

static int signal_client(struct skb_run *r, int fd, int i)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { .it_value = { 0, SKB_DELAY_US / 4 } };

	fill(big_a, r->sc->size, i);
	if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &it, NULL))
		return errno;
	return read_round(r, fd, 0, AN_MAX, AN_SIGNAL);
}

/* The answer after a pause (0: at once), then wait for the client's close. */
static int answer_server(struct skb_run *r, int fd, int i, useconds_t pause_us)
{
	uint8_t c;

	fill(big_a, r->sc->size, i);
	if (pause_us)
		usleep(pause_us);
	if (wr_full(fd, big_a, r->sc->size))
		return errno;
	return rd(r, fd, &c, 1, 0) == 0 ? 0 : EBADMSG;
}

static int late_server(struct skb_run *r, int fd, int i)
{
	return answer_server(r, fd, i, SKB_DELAY_US);
}

/* SO_RCVTIMEO of 4 pauses, the answer after 1: the read waits for it, no early expiry. */
static int rcvtimeo_client(struct skb_run *r, int fd, int i)
{
	struct timeval tv = { 0, 4 * SKB_DELAY_US };

	fill(big_a, r->sc->size, i);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return errno;
	return read_round(r, fd, 0, AN_MAX, AN_EARLY_TIMEOUT);
}

/* What poll() says is readable, FIONREAD must count too. */
static int fionread_client(struct skb_run *r, int fd, int i)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int avail = 0;

	(void)i;
	if (poll(&pfd, 1, SKB_WAIT_MS) != 1)
		return ETIMEDOUT;
	usleep(1000);
	if (ioctl(fd, FIONREAD, &avail))
		return errno;
	if (avail < (int)r->sc->size)
		an_inc(r, AN_FIONREAD);
	if (rd_full(r, fd, big_b, r->sc->size))
		return EIO;
	r->rounds++;
	return 0;
}

static int now_server(struct skb_run *r, int fd, int i)
{
	return answer_server(r, fd, i, 0);
}

/* splice() from the socket into a pipe, as proxies do, until EOF. */
static int splice_client(struct skb_run *r, int fd, int i)
{
	size_t got = 0;
	int p[2], err = 0;

	(void)i;
	if (pipe(p))
		return errno;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, SKB_WAIT_MS) != 1) {
			err = ETIMEDOUT;
			break;
		}
		n = splice(fd, NULL, p[1], NULL, 1 << 16, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EAGAIN) {
			/* readable, yet nothing to splice: wait a little, retry */
			usleep(1000);
			continue;
		}
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		got += n;
		if (read(p[0], big_b, n) != n) {
			err = EIO;
			break;
		}
	}
	close(p[0]);
	close(p[1]);
	if (!err && got != r->sc->size)
		an_inc(r, AN_SPLICE);
	r->rounds++;
	return err;
}

static int write_close_server(struct skb_run *r, int fd, int i)
{
	fill(big_a, r->sc->size, i);
	if (wr_full(fd, big_a, r->sc->size))
		return errno;
	usleep(SKB_DELAY_US);
	return 0;
}

/* close() with unread bytes: TCP resets, the writer's next read fails. */
static int unread_client(struct skb_run *r, int fd, int i)
{
	uint8_t c;
	ssize_t n;

	fill(big_a, r->sc->size, i);
	if (wr_full(fd, big_a, r->sc->size))
		return errno;
	n = rd(r, fd, &c, 1, 0);
	if (n == 0)
		an_inc(r, AN_NO_RESET);
	else if (n > 0 || errno != ECONNRESET)
		return n > 0 ? EBADMSG : errno;
	r->rounds++;
	return 0;
}

static int unread_server(struct skb_run *r, int fd, int i)
{
	(void)r;
	(void)fd;
	(void)i;
	/* Let the bytes arrive, then close without reading them. */
	usleep(SKB_DELAY_US);
	return 0;
}

static const struct skb_scenario scenarios[] = {
	{ "pingpong_64",	pingpong_client,  echo_server,	    1, 64, 0 },
	{ "pingpong_64k",	pingpong_client,  echo_server,	    1, 1 << 16, 0 },
	{ "bulk_up",		bulk_up_client,	  bulk_up_server,   1, 1 << 16, 0 },
	{ "bulk_down",		bulk_down_client, bulk_down_server, 1, 1 << 16, 0 },
	/* The reader starts late: past --sockmap-cap the sender moves to TCP. */
	{ "bulk_slow_up",	bulk_up_client,	  bulk_up_server,   1, 1 << 16, 200 },
	{ "bulk_slow_down",	bulk_down_client, bulk_down_server, 1, 1 << 16, 200 },
	{ "shortconn",		shortconn_client, echo_server,	    0, 64, 0 },
	{ "halfclose",		halfclose_client, halfclose_server, 0, 100, 0 },
	{ "waitall",		waitall_client,	  halves_server,    0, 1 << 16, 0 },
	{ "rcvlowat",		lowat_client,	  halves_server,    0, 1000, 0 },
	{ "signal",		signal_client,	  late_server,	    0, 100, 0 },
	{ "rcvtimeo",		rcvtimeo_client,  late_server,	    0, 100, 0 },
	{ "fionread",		fionread_client,  now_server,	    0, 1000, 0 },
	{ "splice",		splice_client,	  write_close_server, 0, 1000, 0 },
	{ "unread_close",	unread_client,	  unread_server,    0, 1000, 0 },
};

/* ---- the two processes --------------------------------------------------- */

static int skb_conns(const struct skb_run *r)
{
	return r->sc->conns ? r->sc->conns : r->iters;
}

static int skb_server(void *arg)
{
	struct skb_run *r = arg;
	struct sockaddr_storage any = {};
	struct timeval tv = { SKB_WAIT_MS / 1000, 0 };
	int one = 1, lfd, err = 0;

	skb_side = 1;
	any.ss_family = r->dst.ss_family;
	if (any.ss_family == AF_INET)
		((struct sockaddr_in *)&any)->sin_port = htons(SKB_PORT);
	else
		((struct sockaddr_in6 *)&any)->sin6_port = htons(SKB_PORT);
	lfd = socket(any.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&any, r->dst_len) || listen(lfd, 64)) {
		r->err_server = errno;
		return 0;
	}
	/* Only accept() times out: the scenarios' reads block as applications' do. */
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 0;
	__atomic_store_n(&r->listening, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < skb_conns(r) && !err; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			err = errno;
			break;
		}
		/* accept() copied the listener's timeout */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		err = r->sc->server(r, fd, i);
		close(fd);
	}
	r->err_server = err;
	close(lfd);
	return 0;
}

static int skb_client(void *arg)
{
	struct skb_run *r = arg;
	int err = 0;

	for (int ms = 0; !__atomic_load_n(&r->listening, __ATOMIC_ACQUIRE); ms++) {
		if (ms > SKB_WAIT_MS)
			return r->err_client = ETIMEDOUT, 0;
		usleep(1000);
	}
	for (int i = 0; i < skb_conns(r) && !err; i++) {
		int fd = socket(r->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return r->err_client = errno, 0;
		if (connect(fd, (struct sockaddr *)&r->dst, r->dst_len))
			err = errno;
		else
			err = r->sc->client(r, fd, i);
		close(fd);
	}
	r->err_client = err;
	return 0;
}

struct skb_topo {
	char ns_a[64], ns_b[64];
	const char *ip_b4, *ip_b6;
};

static int skb_topo_setup(struct dp_fixture *fx, struct skb_topo *t)
{
	struct veth_end a = { t->ns_a, "eth0", "198.18.110.1/24", "fd00:18:110::1/64" };
	struct veth_end b = { t->ns_b, "eth0", "198.18.110.2/24", "fd00:18:110::2/64" };
	const char *locals[] = { "198.18.110.1", "198.18.110.2", "fd00:18:110::1",
				 "fd00:18:110::2" };
	struct in6_addr ip;
	int err;

	xsnprintf(t->ns_a, sizeof(t->ns_a), "%s-ka", fx->prefix);
	xsnprintf(t->ns_b, sizeof(t->ns_b), "%s-kb", fx->prefix);
	t->ip_b4 = locals[1];
	t->ip_b6 = locals[3];
	err = netns_add(t->ns_a) ?: netns_add(t->ns_b) ?: veth_pair_add(&a, &b);
	for (int i = 0; i < 4 && !err; i++) {
		int fam = strchr(locals[i], ':') ? AF_INET6 : AF_INET;

		inet_pton(fam, locals[i], &ip);
		err = dp_local_endpoint_add(fx->dp, fam, &ip);
	}
	return err;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

/* Run one scenario; returns the sum of its anomaly counts, or -1. */
static long skb_run_one(struct dp_fixture *fx, struct skb_topo *t,
			const struct skb_scenario *sc, const char *ip, int iters,
			const char *mode)
{
	struct skb_run *r = shared_alloc(sizeof(*r));
	pid_t srv = -1, cli = -1;
	__u64 r0[GAMMAD_R_MAX], r1[GAMMAD_R_MAX];
	struct timespec a, b;
	char line[256];
	size_t off = 0;
	long total = -1;

	if (!ASSERT_OK_PTR(r, "shared"))
		return -1;
	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->iters = iters;
	r->dst_len = sockaddr_make(&r->dst, ip, SKB_PORT);
	if (!ASSERT_OK(dp_reasons(fx->dp, r0), "reasons"))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &a);
	srv = child_start(fx->cg, t->ns_b, skb_server, r);
	cli = child_start(fx->cg, t->ns_a, skb_client, r);
	if (!ASSERT_GT(srv, 0, "server") || !ASSERT_GT(cli, 0, "client"))
		goto out;
	ASSERT_OK(child_wait(cli, 120000), "client exit");
	ASSERT_OK(child_wait(srv, 120000), "server exit");
	srv = cli = -1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!ASSERT_OK(dp_reasons(fx->dp, r1), "reasons"))
		goto out;
	total = 0;
	line[0] = 0;
	for (int k = 0; k < AN_MAX; k++) {
		total += r->count[k];
		if (r->count[k])
			off += snprintf(line + off, sizeof(line) - off, " %s=%ld", an_name[k],
					r->count[k]);
	}
	if (r->count[AN_EAGAIN])
		off += snprintf(line + off, sizeof(line) - off, " (client %ld, server %ld)",
				r->eagain_at[0], r->eagain_at[1]);
	test__printf("%s %s %s: %d iterations (%ld rounds) in %ld ms, %llu moved to TCP, "
		     "anomalies %ld%s\n", mode, sc->name, ip, iters, r->rounds,
		     (b.tv_sec - a.tv_sec) * 1000L + (b.tv_nsec - a.tv_nsec) / 1000000,
		     (unsigned long long)(r1[GAMMAD_R_REDIR_SLOW_READER] -
					  r0[GAMMAD_R_REDIR_SLOW_READER]), total, line);
	if (!ASSERT_EQ(r->err_client, 0, "client") || !ASSERT_EQ(r->err_server, 0, "server"))
		total = -1;
out:
	if (srv > 0)
		child_kill(srv);
	if (cli > 0)
		child_kill(cli);
	shared_free(r, sizeof(*r));
	return total;
}

static void skb_run_all(struct dp_fixture *fx, struct skb_topo *t, const char *mode,
			bool assert_none)
{
	const char *ips[] = { t->ip_b4, t->ip_b6 };
	int iters = env_int("GAMMAD_SKB_ITERS", 10), rounds = env_int("GAMMAD_SKB_ROUNDS", 1000);
	char name[64];

	for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++) {
		for (int f = 0; f < 2; f++) {
			const struct skb_scenario *sc = &scenarios[s];
			int n = sc->conns ? rounds : iters;
			long an;

			xsnprintf(name, sizeof(name), "%s_%s%s", mode, sc->name, f ? "_v6" : "_v4");
			if (!test__start_subtest(name))
				continue;
			an = skb_run_one(fx, t, sc, ips[f], n, mode);
			if (assert_none)
				ASSERT_EQ(an, 0, "nothing plain TCP would not do");
		}
	}
}

void test_sockmap_blocking(void)
{
	struct skb_topo t = {};
	struct dp_fixture fx;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fixture") ||
	    !ASSERT_OK(skb_topo_setup(&fx, &t), "topology"))
		goto out;
	/* Both ends are local endpoints: the default data path, as gammad run loads it. */
	skb_run_all(&fx, &t, "default", true);
	if (env_int("GAMMAD_SKB_REDIRECT", 0)) {
		/* Measurement only (the kernel's behaviour): the redirect's counts. */
		fx.sock_redirect = true;
		if (ASSERT_OK(fx_dp_reopen(&fx), "reopen with the redirect"))
			skb_run_all(&fx, &t, "redirect", false);
	}
	if (env_int("GAMMAD_SKB_TCP", 0)) {
		/* Measurement only: not local endpoints, so never in the sockhash. */
		struct in6_addr ip;

		inet_pton(AF_INET, "198.18.110.2", &ip);
		dp_local_endpoint_delete(fx.dp, AF_INET, &ip);
		inet_pton(AF_INET6, "fd00:18:110::2", &ip);
		dp_local_endpoint_delete(fx.dp, AF_INET6, &ip);
		skb_run_all(&fx, &t, "tcp", false);
	}
out:
	fx_teardown(&fx);
}
