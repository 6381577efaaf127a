// SPDX-License-Identifier: Apache-2.0
/*
 * Same-node socket redirect (dp_opts.sock_redirect, gammad run --sockmap;
 * off by default, see sockmap_blocking): two "pods" (netns A and B joined
 * by a veth pair, both IPs registered as local endpoints), a client in A dialing a
 * ClusterIP that resolves to the server in B, both in the attach cgroup.
 * After the handshake, sockops has put both sockets into the sockhash and
 * sk_msg hands every message to the peer's receive queue: a 10,000-message
 * ping-pong must move (almost) no packets over the veth, also when one end
 * is a dual-stack IPv6 socket talking IPv4 (v4-mapped addresses).
 *
 * The kernel does not bound the peer's ingress queue of a redirect: a
 * reader that stops reading must make its sender leave the redirect for
 * TCP, and then get every byte in order when it reads again.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/sock_diag.h>

#include "test_progs.h"
#include "lib/netns.h"
#include "lib/id_server.h"
#include "lib/dp_fixture.h"
#include "lib/lab_env.h"

struct pingpong {
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int rounds;
	/* results */
	int err;	/* errno of the first failure, 0 when all went well */
	int done;
	long usec;
};

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += n;
	}
	return 0;
}

static int pingpong_client(void *arg)
{
	struct pingpong *p = arg;
	struct timeval tv = { 5, 0 };
	struct timespec a, b;
	char id, msg[64], echo[64];
	int fd, err = 0;

	fd = socket(p->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return p->err = errno, 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&p->dst, p->dst_len) || read_full(fd, &id, 1)) {
		p->err = errno ?: EIO;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < p->rounds; i++) {
		memset(msg, 'a' + i % 26, sizeof(msg));
		if (write(fd, msg, sizeof(msg)) != sizeof(msg)) {
			err = errno ?: EIO;
			break;
		}
		err = -read_full(fd, echo, sizeof(echo));
		if (!err && memcmp(msg, echo, sizeof(msg)))
			err = EBADMSG;
		if (err)
			break;
		p->done++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	p->usec = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
	p->err = err;
out:
	close(fd);
	return 0;
}

struct redir_topo {
	char ns_a[64], ns_b[64];
	pid_t server;
};

static int topo_setup(struct dp_fixture *fx, struct redir_topo *t)
{
	struct veth_end a = { t->ns_a, "eth0", "198.18.100.1/24", "fd00:18:100::1/64" };
	struct veth_end b = { t->ns_b, "eth0", "198.18.100.2/24", "fd00:18:100::2/64" };
	struct in6_addr ip;
	int err;

	xsnprintf(t->ns_a, sizeof(t->ns_a), "%s-ra", fx->prefix);
	xsnprintf(t->ns_b, sizeof(t->ns_b), "%s-rb", fx->prefix);
	err = netns_add(t->ns_a) ?: netns_add(t->ns_b) ?: veth_pair_add(&a, &b);
	if (err)
		return err;
	/* The server's listener is created in the cgroup: accepted sockets inherit it. */
	t->server = id_server_start(t->ns_b, fx->cg, FX_PORT, 'S');
	if (t->server < 0)
		return t->server;
	const char *locals[] = { "198.18.100.1", "198.18.100.2", "fd00:18:100::1",
				 "fd00:18:100::2" };
	for (int i = 0; i < 4; i++) {
		int fam = strchr(locals[i], ':') ? AF_INET6 : AF_INET;

		inet_pton(fam, locals[i], &ip);
		err = dp_local_endpoint_add(fx->dp, fam, &ip);
		if (err)
			return err;
	}
	return 0;
}

/* ClusterIP vip -> the server in B, over the given family. */
static int publish_to_b(struct dp_fixture *fx, const char *vip, const char *ep_ip, uint32_t id)
{
	struct gammad_fe_val fe = { .svc_port_id = 4, .table_gen = id, .default_sel = id };
	struct gammad_be_val be = { .ep_set = id, .nr_endpoints = 1 };
	struct dp_weighted w = { id, 1 };
	struct gammad_fe_key key;
	struct gammad_ep_val ep;
	struct in6_addr ip;
	int fam = strchr(ep_ip, ':') ? AF_INET6 : AF_INET;

	inet_pton(fam, ep_ip, &ip);
	dp_ep(&ep, fam, &ip, FX_PORT);
	fx_key(&key, vip, IPPROTO_TCP);
	return dp_endpoints_write(fx->dp, id, &ep, 1) ?: dp_backend_write(fx->dp, id, &be) ?:
	       dp_selector_write(fx->dp, id, id, &w, 1) ?: dp_frontend_publish(fx->dp, &key, &fe);
}

/* Ping-pong from A; returns the packets A's eth0 moved (rx + tx), or -1. */
static long run_pingpong(struct dp_fixture *fx, struct redir_topo *t, const char *vip,
			 int rounds)
{
	struct pingpong *p = shared_alloc(sizeof(*p));
	uint64_t rx0, tx0, rx1, tx1;
	long moved = -1;

	if (!ASSERT_OK_PTR(p, "shared"))
		return -1;
	memset(p, 0, sizeof(*p));
	p->dst_len = sockaddr_make(&p->dst, vip, FX_PORT);
	p->rounds = rounds;
	if (!ASSERT_OK(link_packets(t->ns_a, "eth0", &rx0, &tx0), "counters") ||
	    !ASSERT_OK(child_run(fx->cg, t->ns_a, pingpong_client, p, 120000), "client"))
		goto out;
	if (!ASSERT_OK(link_packets(t->ns_a, "eth0", &rx1, &tx1), "counters"))
		goto out;
	moved = (rx1 - rx0) + (tx1 - tx0);
	test__printf("%s: %d/%d round trips in %ld us (%.1f us each), %ld packets on the veth\n",
		     vip, p->done, rounds, p->usec, p->usec / (double)(p->done ?: 1), moved);
	if (!ASSERT_EQ(p->err, 0, "ping-pong") || !ASSERT_EQ(p->done, rounds, "rounds"))
		moved = -1;
out:
	shared_free(p, sizeof(*p));
	return moved;
}

/*
 * Slow reader. A pair connected straight to B's pod IP (both ends local
 * endpoints, so both sockets are in the sockhash), one byte each way so
 * both directions redirect, then one end stops reading and the other
 * writes SLOW_TOTAL bytes of a position-dependent pattern without
 * blocking, SLOW_CHUNK per write() (each spans several sk_msg runs, so
 * the move to TCP falls inside one sendmsg call) until EAGAIN. The reader
 * then records what is queued on its socket (SO_MEMINFO: sk_rmem_alloc,
 * which counts the ingress queue of the redirect and the TCP receive
 * queue, `ss -tm` skmem r), reads everything and checks every byte.
 * Without the cap no EAGAIN comes and all 64 MiB pile up at the reader.
 */
#define SLOW_PORT	(FX_PORT + 1)
#define SLOW_TOTAL	(64u << 20)
#define SLOW_CHUNK	(1u << 20)
#define SLOW_WAIT_MS	20000

struct slow_pair {
	struct sockaddr_storage dst;	/* B's pod IP, SLOW_PORT */
	socklen_t dst_len;
	bool client_sends;
	int listening, flooded, measured;	/* progress, __atomic */
	/* results */
	int err_client, err_server;
	uint64_t first_eagain;	/* bytes written before the first EAGAIN, 0: none */
	uint64_t queued;	/* the reader's sk_rmem_alloc then */
	uint64_t rcvbuf;
	uint64_t received;	/* bytes read, each checked */
	uint64_t bad_at;	/* offset + 1 of the first wrong byte, 0: none */
	long drain_usec;	/* from the first read to EOF */
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The byte stream: each 8-byte word names its own position. */
static void pattern_fill(uint8_t *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t at = off + i;

		buf[i] = mix64(at >> 3) >> ((at & 7) * 8);
	}
}

static bool wait_flag(int *flag, int ms)
{
	for (; ms > 0; ms -= 1) {
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return true;
		usleep(1000);
	}
	return false;
}

static void set_flag(int *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

/*
 * A blocking read of a socket in a sockhash (tcp_bpf_recvmsg) returns
 * EAGAIN when a wake-up of the socket finds nothing to read yet, such as
 * the ACK of its own FIN (slow_send's wait for EOF): wait for data and
 * read again (the reason the redirect is opt-in: sockmap_blocking).
 */
static ssize_t read_more(int fd, void *buf, size_t len)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n = read(fd, buf, len);

		if (n >= 0 || errno != EAGAIN)
			return n;
		if (poll(&pfd, 1, SLOW_WAIT_MS) != 1)
			return -1;
	}
}

/* Write the whole stream; the first pass without blocking, until EAGAIN. */
static int slow_send(struct slow_pair *p, int fd)
{
	static uint8_t buf[SLOW_CHUNK];
	uint64_t sent = 0;
	int fl = fcntl(fd, F_GETFL);
	ssize_t n;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return errno;
	while (sent < SLOW_TOTAL) {
		size_t len = SLOW_TOTAL - sent < SLOW_CHUNK ? SLOW_TOTAL - sent : SLOW_CHUNK;

		pattern_fill(buf, sent, len);
		n = write(fd, buf, len);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return errno ?: EIO;
		sent += n;
	}
	p->first_eagain = sent < SLOW_TOTAL ? sent : 0;
	set_flag(&p->flooded);
	if (!wait_flag(&p->measured, SLOW_WAIT_MS) || fcntl(fd, F_SETFL, fl))
		return ETIMEDOUT;
	while (sent < SLOW_TOTAL) {
		size_t len = SLOW_TOTAL - sent < SLOW_CHUNK ? SLOW_TOTAL - sent : SLOW_CHUNK;

		pattern_fill(buf, sent, len);
		n = write(fd, buf, len);
		if (n <= 0)
			return errno ?: EIO;
		sent += n;
	}
	if (shutdown(fd, SHUT_WR))
		return errno;
	/* Until the reader is done: its close is our EOF. */
	n = read_more(fd, buf, 1);
	return n == 0 ? 0 : n < 0 ? errno : EBADMSG;
}

static int slow_recv(struct slow_pair *p, int fd)
{
	static uint8_t buf[1 << 16], want[1 << 16];
	__u32 mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);
	struct timespec a, b;

	if (!wait_flag(&p->flooded, SLOW_WAIT_MS))
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len))
		return errno;
	p->queued = mem[SK_MEMINFO_RMEM_ALLOC];
	p->rcvbuf = mem[SK_MEMINFO_RCVBUF];
	set_flag(&p->measured);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		ssize_t n = read_more(fd, buf, sizeof(buf));

		if (n < 0)
			return errno;
		if (n == 0)
			break;
		pattern_fill(want, p->received, n);
		if (!p->bad_at && memcmp(buf, want, n)) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != want[i]) {
					p->bad_at = p->received + i + 1;
					break;
				}
		}
		p->received += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	p->drain_usec = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
	return 0;
}

/* One byte each way: the first message of each direction decides it. */
static int slow_greet(int fd, char out, char in)
{
	char c;

	if (write(fd, &out, 1) != 1 || read(fd, &c, 1) != 1)
		return errno ?: EIO;
	return c == in ? 0 : EBADMSG;
}

static int slow_server(void *arg)
{
	struct slow_pair *p = arg;
	struct sockaddr_storage any = {};
	struct timeval tv = { SLOW_WAIT_MS / 1000, 0 };
	int one = 1, lfd, fd = -1, err;

	any.ss_family = p->dst.ss_family;
	if (any.ss_family == AF_INET)
		((struct sockaddr_in *)&any)->sin_port = htons(SLOW_PORT);
	else
		((struct sockaddr_in6 *)&any)->sin6_port = htons(SLOW_PORT);
	lfd = socket(any.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&any, p->dst_len) || listen(lfd, 1)) {
		err = errno;
		goto out;
	}
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	set_flag(&p->listening);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	err = slow_greet(fd, 'S', 'C');
	if (!err)
		err = p->client_sends ? slow_recv(p, fd) : slow_send(p, fd);
out:
	p->err_server = err;
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	return 0;
}

static int slow_client(void *arg)
{
	struct slow_pair *p = arg;
	struct timeval tv = { SLOW_WAIT_MS / 1000, 0 };
	int fd, err;

	if (!wait_flag(&p->listening, SLOW_WAIT_MS))
		return p->err_client = ETIMEDOUT, 0;
	fd = socket(p->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return p->err_client = errno, 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&p->dst, p->dst_len))
		err = errno;
	else
		err = slow_greet(fd, 'C', 'S');
	if (!err)
		err = p->client_sends ? slow_send(p, fd) : slow_recv(p, fd);
	p->err_client = err;
	close(fd);
	return 0;
}

static void run_slow_reader(struct dp_fixture *fx, struct redir_topo *t, const char *server_ip,
			    bool client_sends)
{
	struct slow_pair *p = shared_alloc(sizeof(*p));
	const uint64_t cap = fx->sockmap_cap ?: GAMMAD_SOCKMAP_CAP_DEFAULT;
	uint64_t rx0, tx0, rx1, tx1;
	__u64 r0[GAMMAD_R_MAX], r1[GAMMAD_R_MAX];
	pid_t srv = -1, cli = -1;
	char *out = NULL;

	if (!ASSERT_OK_PTR(p, "shared"))
		return;
	memset(p, 0, sizeof(*p));
	p->dst_len = sockaddr_make(&p->dst, server_ip, SLOW_PORT);
	p->client_sends = client_sends;
	if (!ASSERT_OK(dp_reasons(fx->dp, r0), "reasons") ||
	    !ASSERT_OK(link_packets(t->ns_a, "eth0", &rx0, &tx0), "counters"))
		goto out;
	srv = child_start(fx->cg, t->ns_b, slow_server, p);
	cli = child_start(fx->cg, t->ns_a, slow_client, p);
	if (!ASSERT_GT(srv, 0, "server") || !ASSERT_GT(cli, 0, "client"))
		goto out;
	ASSERT_OK(child_wait(cli, 60000), "client exit");
	ASSERT_OK(child_wait(srv, 60000), "server exit");
	srv = cli = -1;
	if (!ASSERT_OK(dp_reasons(fx->dp, r1), "reasons") ||
	    !ASSERT_OK(link_packets(t->ns_a, "eth0", &rx1, &tx1), "counters"))
		goto out;
	test__printf("%s, %s stops reading: EAGAIN after %llu bytes, %llu queued at the "
		     "reader (rcvbuf %llu, cap %llu), %llu/%u bytes read back in %ld us, %llu "
		     "packets on the veth\n", server_ip, client_sends ? "server" : "client",
		     (unsigned long long)p->first_eagain, (unsigned long long)p->queued,
		     (unsigned long long)p->rcvbuf, (unsigned long long)cap,
		     (unsigned long long)p->received, SLOW_TOTAL, p->drain_usec,
		     (unsigned long long)((rx1 - rx0) + (tx1 - tx0)));
	ASSERT_EQ(p->err_client, 0, "client");
	ASSERT_EQ(p->err_server, 0, "server");
	/* Held back by TCP's flow control, not by memory running out. */
	ASSERT_GT(p->first_eagain, 0, "the sender met EAGAIN");
	/* The redirect carried up to the cap, then TCP (one message past it). */
	ASSERT_GE(p->queued, cap - SLOW_CHUNK, "queued: redirected up to the cap");
	/*
	 * At most the cap, the one message that crossed it (a write() is at
	 * most SLOW_CHUNK) and what TCP took before its window closed (the
	 * queue is beyond the 128 KiB receive buffer by then).
	 */
	ASSERT_LE(p->queued, cap + SLOW_CHUNK + (256u << 10), "queued: cap + a message");
	ASSERT_EQ(p->received, SLOW_TOTAL, "every byte read back");
	ASSERT_EQ(p->bad_at, 0, "in order, none lost or doubled");
	ASSERT_EQ(r1[GAMMAD_R_REDIR_SLOW_READER] - r0[GAMMAD_R_REDIR_SLOW_READER], 1,
		  "one direction moved to TCP");
	ASSERT_EQ(r1[GAMMAD_R_REDIR_NO_PEER] - r0[GAMMAD_R_REDIR_NO_PEER], 0, "no missing peer");
	/* The operator sees the move by name (/metrics uses the same table). */
	if (ASSERT_OK(lab_run_capture(&out, "%s --pin-dir %s stats", test_bin("gammactl"),
				      fx->pin_dir), "gammactl stats"))
		ASSERT_TRUE(out && strstr(out, "redirect_slow_reader"),
			    "gammactl stats lists redirect_slow_reader");
	free(out);
	/* The rest went as TCP segments over the veth. */
	ASSERT_GE((rx1 - rx0) + (tx1 - tx0), 100, "TCP carries the rest");
out:
	if (srv > 0)
		child_kill(srv);
	if (cli > 0)
		child_kill(cli);
	shared_free(p, sizeof(*p));
}

void test_datapath_sockmap(void)
{
	struct redir_topo t = {};
	struct dp_fixture fx;
	__u64 r[GAMMAD_R_MAX];
	long moved;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fixture") ||
	    !ASSERT_OK(topo_setup(&fx, &t), "topology") ||
	    !ASSERT_OK(publish_to_b(&fx, "198.19.1.1", "198.18.100.2", 200), "publish v4"))
		goto out;
	if (test__start_subtest("off_by_default")) {
		/* Without --sockmap both ends stay TCP: every message is a packet. */
		moved = run_pingpong(&fx, &t, "198.19.1.1", 1000);
		ASSERT_GE(moved, 2000, "TCP carries the messages");
	}
	fx.sock_redirect = true;
	/* The pinned maps stay: the reopened data path adopts them. */
	if (!ASSERT_OK(fx_dp_reopen(&fx), "reopen with the redirect") ||
	    !ASSERT_OK(publish_to_b(&fx, "fd00:19::101", "fd00:18:100::2", 201), "publish v6"))
		goto out;

	if (test__start_subtest("redirect_v4")) {
		moved = run_pingpong(&fx, &t, "198.19.1.1", 10000);
		ASSERT_TRUE(moved >= 0 && moved < 50, "10,000 round trips, < 50 packets");
	}
	if (test__start_subtest("redirect_v6")) {
		moved = run_pingpong(&fx, &t, "fd00:19::101", 10000);
		ASSERT_TRUE(moved >= 0 && moved < 50, "10,000 round trips, < 50 packets");
	}
	if (test__start_subtest("redirect_v4_from_dual_stack_socket")) {
		/*
		 * An AF_INET6 socket dialing ::ffff:<ClusterIP> talks IPv4 under
		 * v4-mapped addresses; its IPv4 peer must still find it.
		 */
		moved = run_pingpong(&fx, &t, "::ffff:198.19.1.1", 10000);
		ASSERT_TRUE(moved >= 0 && moved < 50, "10,000 round trips, < 50 packets");
	}
	/* Fast readers never lag by the cap: the redirect stays. */
	if (ASSERT_OK(dp_reasons(fx.dp, r), "reasons"))
		ASSERT_EQ(r[GAMMAD_R_REDIR_SLOW_READER], 0, "no slow reader among the ping-pongs");
	if (test__start_subtest("slow_reader_v4_client_stops"))
		run_slow_reader(&fx, &t, "198.18.100.2", false);
	if (test__start_subtest("slow_reader_v4_server_stops"))
		run_slow_reader(&fx, &t, "198.18.100.2", true);
	if (test__start_subtest("slow_reader_v6_client_stops"))
		run_slow_reader(&fx, &t, "fd00:18:100::2", false);
	if (test__start_subtest("slow_reader_v6_server_stops"))
		run_slow_reader(&fx, &t, "fd00:18:100::2", true);
	if (test__start_subtest("slow_reader_cap_option")) {
		/* dp_opts.sockmap_cap (gammad run --sockmap-cap) sets the cap. */
		fx.sockmap_cap = 1u << 20;
		if (ASSERT_OK(fx_dp_reopen(&fx), "reopen with a 1 MiB cap"))
			run_slow_reader(&fx, &t, "198.18.100.2", true);
	}
	if (!fx.dp)
		goto out;
	if (test__start_subtest("control_not_local")) {
		struct in6_addr ip;

		/* Not both ends local: plain TCP, every message is a packet. */
		inet_pton(AF_INET, "198.18.100.1", &ip);
		if (ASSERT_OK(dp_local_endpoint_delete(fx.dp, AF_INET, &ip), "delete")) {
			moved = run_pingpong(&fx, &t, "198.19.1.1", 1000);
			ASSERT_GE(moved, 2000, "TCP carries the messages");
		}
	}
	if (ASSERT_OK(dp_reasons(fx.dp, r), "reasons"))
		test__printf("sockhash update failures %llu, sk_msg without peer %llu, "
			     "slow readers %llu\n", r[GAMMAD_R_SOCKHASH_UPDATE],
			     r[GAMMAD_R_REDIR_NO_PEER], r[GAMMAD_R_REDIR_SLOW_READER]);
out:
	if (t.server > 0)
		id_server_stop(t.server);
	fx_teardown(&fx);
}
