// SPDX-License-Identifier: Apache-2.0
/*
 * Same-node socket redirect: two "pods" (netns A and B joined by a veth
 * pair, both IPs registered as local endpoints), a client in A dialing a
 * ClusterIP that resolves to the server in B, both in the attach cgroup.
 * After the handshake, sockops has put both sockets into the sockhash and
 * sk_msg hands every message to the peer's receive queue: a 10,000-message
 * ping-pong must move (almost) no packets over the veth, also when one end
 * is a dual-stack IPv6 socket talking IPv4 (v4-mapped addresses).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/netns.h"
#include "lib/id_server.h"
#include "lib/dp_fixture.h"

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

void test_datapath_sockmap(void)
{
	struct redir_topo t = {};
	struct dp_fixture fx;
	__u64 r[GAMMAD_R_MAX];
	long moved;

	if (!ASSERT_OK(fx_setup(&fx, 0, false), "fixture") ||
	    !ASSERT_OK(topo_setup(&fx, &t), "topology") ||
	    !ASSERT_OK(publish_to_b(&fx, "198.19.1.1", "198.18.100.2", 200), "publish v4") ||
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
		test__printf("sockhash update failures %llu, sk_msg without peer %llu\n",
			     r[GAMMAD_R_SOCKHASH_UPDATE], r[GAMMAD_R_REDIR_NO_PEER]);
out:
	if (t.server > 0)
		id_server_stop(t.server);
	fx_teardown(&fx);
}
