// SPDX-License-Identifier: Apache-2.0
/*
 * Connect-time Service load balancing on a real kernel: real sockets from a
 * child process in the attach cgroup, real servers in pod netns
 * (tests/lib/dp_fixture.h). ClusterIPs are blackholed on the host.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>

#include "test_progs.h"
#include "lib/netns.h"
#include "lib/id_server.h"
#include "lib/hello.h"
#include "lib/dp_fixture.h"

#define NS_X 7	/* namespace id of the fixture's "nsx" cgroup */

/* Run `count` hellos to vip from the given cgroup; the job holds the results. */
static struct hello_job *hello(const char *cgroup, const char *vip, bool udp, int count)
{
	struct hello_job *j = hello_job_new(vip, FX_PORT, udp, count);

	if (!ASSERT_OK_PTR(j, "job"))
		return NULL;
	if (!ASSERT_OK(child_run(cgroup, NULL, hello_loop, j, 60000), "client")) {
		hello_job_free(j);
		return NULL;
	}
	if (j->fail)
		test__printf("%s: %d of %d failed, last errno %d\n", vip, j->fail, count,
			     j->last_err);
	return j;
}

/* All hellos reach the one expected pod and see the ClusterIP as their peer. */
static void expect_only(struct dp_fixture *fx, const char *vip, bool udp, char want)
{
	struct hello_job *j = hello(fx->cg, vip, udp, 20);

	if (!j)
		return;
	ASSERT_EQ(j->ok, 20, "all answered");
	ASSERT_EQ(j->ids[(unsigned char)want], 20, "right pod");
	ASSERT_EQ(j->peer_mismatch, 0, "peer is the ClusterIP");
	hello_job_free(j);
}

static int publish(struct dp_fixture *fx, const char *vip, uint8_t proto, uint32_t gen,
		   uint32_t w0, uint32_t w1, uint32_t w2, uint32_t base)
{
	uint32_t w[3] = { w0, w1, w2 };
	struct gammad_fe_key key;

	fx_key(&key, vip, proto);
	return fx_publish(fx, &key, gen, w, base);
}

static void test_connect(struct dp_fixture *fx)
{
	if (!ASSERT_OK(publish(fx, "198.19.0.1", IPPROTO_TCP, 1, 1, 0, 0, 10), "publish v4") ||
	    !ASSERT_OK(publish(fx, "fd00:19::1", IPPROTO_TCP, 2, 0, 1, 0, 20), "publish v6"))
		return;
	expect_only(fx, "198.19.0.1", false, 'A');
	expect_only(fx, "fd00:19::1", false, 'B');
	/* A dual-stack socket dialing ::ffff:ClusterIP is an IPv4 client. */
	expect_only(fx, "::ffff:198.19.0.1", false, 'A');
}

static void test_udp(struct dp_fixture *fx)
{
	if (!ASSERT_OK(publish(fx, "198.19.0.2", IPPROTO_UDP, 3, 0, 0, 1, 30), "publish v4") ||
	    !ASSERT_OK(publish(fx, "fd00:19::2", IPPROTO_UDP, 4, 1, 0, 0, 40), "publish v6"))
		return;
	/* The reply's source is the ClusterIP (recvmsg reverse translation). */
	expect_only(fx, "198.19.0.2", true, 'C');
	expect_only(fx, "fd00:19::2", true, 'A');
	/* Connected UDP: connect4/6 translate, getpeername and recvmsg restore. */
	for (int i = 0; i < 2; i++) {
		const char *vip = i ? "fd00:19::2" : "198.19.0.2";
		struct hello_job *j = hello_job_new(vip, FX_PORT, true, 20);

		if (!ASSERT_OK_PTR(j, "job"))
			return;
		j->connected = true;
		if (ASSERT_OK(child_run(fx->cg, NULL, hello_loop, j, 60000), "client")) {
			test__printf("connected UDP %s: ok=%d errno=%d\n", vip, j->ok, j->last_err);
			ASSERT_EQ(j->ok, 20, "connected UDP answered");
			ASSERT_EQ(j->ids[i ? 'A' : 'C'], 20, "right pod");
			ASSERT_EQ(j->peer_mismatch, 0, "peer is the ClusterIP");
		}
		hello_job_free(j);
	}
}

static void test_weighted(struct dp_fixture *fx)
{
	struct hello_job *j;

	if (!ASSERT_OK(publish(fx, "198.19.0.3", IPPROTO_TCP, 5, 70, 30, 0, 50), "publish"))
		return;
	struct gammad_be_stats a, b;
	struct gammad_route_stats r;

	j = hello(fx->cg, "198.19.0.3", false, 1000);
	if (!j)
		return;
	/* Counters: one per connect, on the backend that was picked. */
	if (ASSERT_OK(dp_be_stats(fx->dp, 50, &a), "be A") &&
	    ASSERT_OK(dp_be_stats(fx->dp, 51, &b), "be B") &&
	    ASSERT_OK(dp_route_stats(fx->dp, 50, &r), "route")) {
		ASSERT_EQ(a.connects, j->ids['A'], "backend A counter");
		ASSERT_EQ(b.connects, j->ids['B'], "backend B counter");
		ASSERT_EQ(r.connects, 1000, "route counter");
	}
	test__printf("70/30/0 over 1000: A=%d B=%d C=%d\n", j->ids['A'], j->ids['B'], j->ids['C']);
	ASSERT_EQ(j->ok, 1000, "all answered");
	ASSERT_TRUE(j->ids['A'] >= 650 && j->ids['A'] <= 750, "70% +-5%");
	ASSERT_TRUE(j->ids['B'] >= 250 && j->ids['B'] <= 350, "30% +-5%");
	ASSERT_EQ(j->ids['C'], 0, "weight 0 never chosen");
	hello_job_free(j);
}

/* Producer route -> pod A for everyone; consumer route of namespace X -> pod B. */
static void test_consumer(struct dp_fixture *fx)
{
	struct gammad_fe_val fe = { .svc_port_id = 2, .table_gen = 60,
				    .flags = GAMMAD_FE_HAS_CONSUMERS, .default_sel = 60 };
	struct dp_weighted to_b = { 61, 1 };
	struct gammad_fe_key key;
	struct hello_job *j;

	if (!ASSERT_OK(publish(fx, "198.19.0.4", IPPROTO_TCP, 60, 1, 0, 0, 60), "producer") ||
	    !ASSERT_OK(dp_selector_write(fx->dp, 69, 69, &to_b, 1), "consumer selector") ||
	    !ASSERT_OK(dp_consumer_write(fx->dp, 60, NS_X, 69), "consumer") ||
	    !ASSERT_OK(dp_cgroup_ns_set(fx->dp, fx->cg_nsx_id, NS_X), "cgroup ns"))
		return;
	fx_key(&key, "198.19.0.4", IPPROTO_TCP);
	if (!ASSERT_OK(dp_frontend_publish(fx->dp, &key, &fe), "flip"))
		return;

	j = hello(fx->cg_nsx, "198.19.0.4", false, 20);
	if (j) {
		ASSERT_EQ(j->ids['B'], 20, "namespace X gets its consumer route");
		hello_job_free(j);
	}
	j = hello(fx->cg, "198.19.0.4", false, 20);
	if (j) {
		ASSERT_EQ(j->ids['A'], 20, "other clients get the producer route");
		hello_job_free(j);
	}
}

static void expect_refused(struct dp_fixture *fx, const char *vip, bool udp, const char *what)
{
	struct hello_job *j = hello(fx->cg, vip, udp, 5);

	if (!j)
		return;
	test__printf("%s: fail=%d errno=%d slowest=%ldus\n", what, j->fail, j->last_err,
		     j->max_fail_us);
	ASSERT_EQ(j->fail, 5, what);
	ASSERT_EQ(j->last_err, ECONNREFUSED, what);
	ASSERT_LT(j->max_fail_us, 100000, "refused at once");
	hello_job_free(j);
}

static void test_refused(struct dp_fixture *fx)
{
	struct gammad_be_val unresolved = { .flags = GAMMAD_BE_UNRESOLVED };
	struct gammad_be_val empty = { .ep_set = 999, .flags = GAMMAD_BE_NO_ENDPOINTS };
	struct dp_weighted w1 = { 71, 1 }, w2 = { 72, 1 }, w0 = { 71, 0 };
	struct gammad_fe_val fe = { .svc_port_id = 3 };
	struct gammad_fe_key key;
	__u64 before[GAMMAD_R_MAX], after[GAMMAD_R_MAX];
	struct gammad_svc_stats st;

	if (!ASSERT_OK(dp_reasons(fx->dp, before), "reasons") ||
	    !ASSERT_OK(dp_backend_write(fx->dp, 71, &unresolved), "backend") ||
	    !ASSERT_OK(dp_backend_write(fx->dp, 72, &empty), "backend") ||
	    !ASSERT_OK(dp_selector_write(fx->dp, 71, 71, &w1, 1), "sel") ||
	    !ASSERT_OK(dp_selector_write(fx->dp, 72, 72, &w2, 1), "sel") ||
	    !ASSERT_OK(dp_selector_write(fx->dp, 73, 73, &w0, 1), "sel"))
		return;
	fe.default_sel = 71;
	fx_key(&key, "198.19.0.5", IPPROTO_TCP);
	ASSERT_OK(dp_frontend_publish(fx->dp, &key, &fe), "fe");
	fx_key(&key, "198.19.0.5", IPPROTO_UDP);
	ASSERT_OK(dp_frontend_publish(fx->dp, &key, &fe), "fe");
	fe.default_sel = 72;
	fx_key(&key, "198.19.0.6", IPPROTO_TCP);
	ASSERT_OK(dp_frontend_publish(fx->dp, &key, &fe), "fe");
	fe.default_sel = 73;
	fx_key(&key, "fd00:19::7", IPPROTO_TCP);
	ASSERT_OK(dp_frontend_publish(fx->dp, &key, &fe), "fe");

	expect_refused(fx, "198.19.0.5", false, "unresolved backendRef");
	expect_refused(fx, "198.19.0.5", true, "unresolved backendRef, UDP");
	expect_refused(fx, "198.19.0.6", false, "backend without endpoints");
	expect_refused(fx, "fd00:19::7", false, "only weight 0");

	if (!ASSERT_OK(dp_reasons(fx->dp, after), "reasons"))
		return;
	ASSERT_EQ(after[GAMMAD_R_BE_UNRESOLVED] - before[GAMMAD_R_BE_UNRESOLVED], 10, "unresolved");
	ASSERT_EQ(after[GAMMAD_R_BE_NO_ENDPOINTS] - before[GAMMAD_R_BE_NO_ENDPOINTS], 5, "no eps");
	ASSERT_EQ(after[GAMMAD_R_NO_ROUTE_BACKENDS] - before[GAMMAD_R_NO_ROUTE_BACKENDS], 5,
		  "no route backends");
	if (ASSERT_OK(dp_svc_stats(fx->dp, 3, &st), "svc stats")) {
		ASSERT_EQ(st.refused, 20, "refused");
		ASSERT_EQ(st.no_endpoint, 5, "no endpoint");
		ASSERT_EQ(st.no_backend, 15, "no backend");
		ASSERT_EQ(st.connects, 0, "no connects");
	}
}

/* The test runner itself is outside the attach cgroup: its connect is not translated. */
static void test_outside(struct dp_fixture *fx)
{
	struct gammad_svc_stats a, b;
	struct hello_job *j;

	if (!ASSERT_OK(publish(fx, "198.19.0.9", IPPROTO_TCP, 9, 1, 0, 0, 90), "publish") ||
	    !ASSERT_OK(dp_svc_stats(fx->dp, 1, &a), "stats"))
		return;
	j = hello_job_new("198.19.0.9", FX_PORT, false, 3);
	if (!ASSERT_OK_PTR(j, "job"))
		return;
	j->timeout_ms = 500;
	hello_loop(j);
	ASSERT_EQ(j->ok, 0, "blackholed, not translated");
	test__printf("outside: errno %d\n", j->last_err);
	hello_job_free(j);
	if (ASSERT_OK(dp_svc_stats(fx->dp, 1, &b), "stats"))
		ASSERT_EQ(b.connects, a.connects, "not counted");
}

/*
 * Flip the route table of one Service port between "all to A" and "all to
 * B" while a client connects in a loop. Each generation is written under
 * fresh ids, published by one frontend update, and the previous one is
 * deleted after dp_sync(). No connect may fail or reach C.
 *
 * The client runs until FLIPS flips are done, however long they take on a
 * busy machine: the test counts flips, not time.
 */
#define FLIPS 40

static void test_flip(struct dp_fixture *fx)
{
	struct hello_job *j = hello_job_new("198.19.0.8", FX_PORT, false, 1 << 30);
	struct gammad_fe_key key;
	int flips = 0, st = -1, ok_at_first = -1;
	uint32_t prev = 0;
	pid_t pid;

	__u64 before[GAMMAD_R_MAX], after[GAMMAD_R_MAX];
	struct timespec t0, t1;
	long sync_ns = 0;

	if (!ASSERT_OK_PTR(j, "job") || !ASSERT_OK(dp_reasons(fx->dp, before), "reasons"))
		return;
	fx_key(&key, "198.19.0.8", IPPROTO_TCP);
	if (!ASSERT_OK(publish(fx, "198.19.0.8", IPPROTO_TCP, 100, 1, 0, 0, 100), "gen 0"))
		goto out;
	prev = 100;
	pid = child_start(fx->cg, NULL, hello_loop, j);
	if (!ASSERT_GT(pid, 0, "client"))
		goto out;
	while (flips < FLIPS && waitpid(pid, &st, WNOHANG) == 0) {
		uint32_t base = 100 + ((flips + 1) % 4) * 10;
		bool to_a = (flips + 1) % 2 == 0;

		if (!ASSERT_OK(publish(fx, "198.19.0.8", IPPROTO_TCP, base, to_a, !to_a, 0, base),
			       "flip")) {
			child_kill(pid);
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!ASSERT_OK(dp_sync(fx->dp), "sync")) {
			child_kill(pid);
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		sync_ns += (t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec;
		/* Retire the previous generation: nothing can read it any more. */
		dp_selector_delete(fx->dp, prev);
		for (uint32_t i = 0; i < 3; i++) {
			dp_backend_delete(fx->dp, prev + i);
			dp_endpoints_delete(fx->dp, prev + i, 1);
		}
		prev = base;
		if (!flips++)
			ok_at_first = j->ok;
	}
	j->stop = 1;
	waitpid(pid, &st, 0);
	test__printf("flip: %d flips (sync %ld ns avg), A=%d B=%d C=%d fail=%d (errno %d)\n",
		     flips, sync_ns / (flips ?: 1), j->ids['A'], j->ids['B'], j->ids['C'],
		     j->fail, j->last_err);
	if (ASSERT_OK(dp_reasons(fx->dp, after), "reasons"))
		for (int r = 1; r < GAMMAD_R_MAX; r++)
			if (after[r] != before[r])
				test__printf("  reason %s: +%llu\n", dp_reason_name(r),
					     after[r] - before[r]);
	ASSERT_EQ(j->fail, 0, "no connect failed");
	ASSERT_GT(j->ok, 0, "answered");
	ASSERT_EQ(j->ids['C'], 0, "never a backend of no generation");
	ASSERT_EQ(flips, FLIPS, "every flip made while the client ran");
	ASSERT_GT(j->ok, ok_at_first, "the client connected between the first and the last flip");
	ASSERT_GT(j->ids['A'], 0, "saw A");
	ASSERT_GT(j->ids['B'], 0, "saw B");
out:
	hello_job_free(j);
}

struct reconnect_job {
	struct sockaddr_storage dst;
	socklen_t len;
	int rounds;
	int ok, mismatch, err;
};

/*
 * Non-blocking connect, polled by connecting again until EISCONN (what some
 * event loops do): the hook must translate once per socket (the kernel runs
 * it only from SS_UNCONNECTED) and getpeername must still show the ClusterIP.
 */
static int reconnect_loop(void *arg)
{
	struct reconnect_job *r = arg;

	for (int i = 0; i < r->rounds; i++) {
		struct sockaddr_storage peer = {};
		socklen_t plen = sizeof(peer);
		struct pollfd pfd = { .events = POLLOUT };
		int fd, rc, tries = 0;
		char id;

		fd = socket(r->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return 1;
		pfd.fd = fd;
		rc = connect(fd, (struct sockaddr *)&r->dst, r->len);
		while (rc && (errno == EINPROGRESS || errno == EALREADY) && tries++ < 1000) {
			poll(&pfd, 1, 10);
			rc = connect(fd, (struct sockaddr *)&r->dst, r->len);
		}
		if (rc && errno != EISCONN) {
			r->err = errno;
		} else {
			poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 2000);
			if (read(fd, &id, 1) == 1 &&
			    !getpeername(fd, (struct sockaddr *)&peer, &plen)) {
				r->ok++;
				r->mismatch += !sockaddr_eq(&peer, &r->dst);
			}
		}
		close(fd);
	}
	return 0;
}

static void test_reconnect(struct dp_fixture *fx)
{
	struct reconnect_job *r = shared_alloc(sizeof(*r));
	struct gammad_route_stats a, b;

	if (!ASSERT_OK_PTR(r, "shared"))
		return;
	memset(r, 0, sizeof(*r));
	r->len = sockaddr_make(&r->dst, "198.19.0.10", FX_PORT);
	r->rounds = 50;
	if (ASSERT_OK(publish(fx, "198.19.0.10", IPPROTO_TCP, 200, 1, 1, 1, 200), "publish") &&
	    ASSERT_OK(dp_route_stats(fx->dp, 200, &a), "stats") &&
	    ASSERT_OK(child_run(fx->cg, NULL, reconnect_loop, r, 60000), "client") &&
	    ASSERT_OK(dp_route_stats(fx->dp, 200, &b), "stats")) {
		ASSERT_EQ(r->ok, 50, "connected");
		ASSERT_EQ(r->mismatch, 0, "peer is the ClusterIP");
		ASSERT_EQ(b.connects - a.connects, 50, "one pick per socket");
	}
	shared_free(r, sizeof(*r));
}

void test_datapath_lb(void)
{
	struct dp_fixture fx;

	if (!ASSERT_OK(fx_setup(&fx, 3, false), "fixture"))
		goto out;
	if (test__start_subtest("connect4_connect6_getpeername"))
		test_connect(&fx);
	if (test__start_subtest("udp_sendmsg_recvmsg"))
		test_udp(&fx);
	if (test__start_subtest("weighted_70_30_weight0"))
		test_weighted(&fx);
	if (test__start_subtest("nonblocking_reconnect"))
		test_reconnect(&fx);
	if (test__start_subtest("consumer_class"))
		test_consumer(&fx);
	if (test__start_subtest("refused"))
		test_refused(&fx);
	if (test__start_subtest("outside_cgroup"))
		test_outside(&fx);
	if (test__start_subtest("generation_flip"))
		test_flip(&fx);
out:
	fx_teardown(&fx);
}
