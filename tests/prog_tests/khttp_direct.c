// SPDX-License-Identifier: Apache-2.0
/*
 * The floor of the remote-node direct design, measured on loopback
 * (tests/progs/khttp_direct.bpf.c says what runs): keep-alive round trips
 * over a plain TCP pair against the same with the client's sk_msg deciding
 * every request (the bench's 64-byte head, its one-rule route) and a
 * verdict on the client socket framing every response and passing it to
 * itself. Not a timing target (those are benchmarks): the numbers are
 * printed for bench/results/khttp/remote-breakdown.md; the test checks that
 * every request was decided and every response framed.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "khttp/khttp.h"
#include "lib/loopback.h"
#include "lib/translate_fixture.h"
#include "skel/test_khttp_direct.skel.h"

#define KD_TAB	7
#define KD_GEN	3
#define KD_SLOT	5

static const char kd_route[] =
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: direct, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /}}]\n"
	"    backendRefs: [{name: b1, port: 80}]\n";

/* tools/bench/client.c's request and a 64-byte response */
static const char kd_req[] = "GET / HTTP/1.1\r\nHost: bench\r\nX-Pad: xxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n";
static const char kd_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz";

static bool kd_read(int fd, char *buf, size_t want)
{
	size_t n = 0;

	while (n < want) {
		ssize_t r = recv(fd, buf + n, want - n, 0);

		if (r <= 0)
			return false;
		n += (size_t)r;
	}
	return true;
}

/* n keep-alive round trips: microseconds each, or -1. */
static double kd_ping_pong(int cli, int be, int n)
{
	struct timespec t0, t1;
	char buf[128];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		if (send(cli, kd_req, sizeof(kd_req) - 1, MSG_NOSIGNAL) != sizeof(kd_req) - 1 ||
		    !kd_read(be, buf, sizeof(kd_req) - 1) ||
		    send(be, kd_resp, sizeof(kd_resp) - 1, MSG_NOSIGNAL) != sizeof(kd_resp) - 1 ||
		    !kd_read(cli, buf, sizeof(kd_resp) - 1))
			return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The route's table, the class entry, the frontend and backend 1 (one endpoint: port). */
static int kd_tables(struct test_khttp_direct_bpf *sk, struct tfx *f, struct kh_image *img,
		     uint16_t port)
{
	struct gammad_fe_key fk = { .port = htons(80), .proto = IPPROTO_TCP, .family = AF_INET };
	struct gammad_fe_val fv = { .table_gen = KD_GEN };
	struct gammad_cons_key ck = { .table_gen = KD_GEN, .ns_id = GAMMAD_NS_ALL };
	struct gammad_kh_class_val cv = { .tab = KD_TAB };
	struct gammad_be_val bv = { .ep_set = 100, .nr_endpoints = 1 };
	struct gammad_ep_key ek = { .ep_set = 100, .idx = 0 };
	struct gammad_ep_val ev = { .port = htons(port), .family = AF_INET };
	struct kh_map_fds fds = {
		.table = bpf_map__fd(sk->maps.gammad_khtab_v1),
		.entry = bpf_map__fd(sk->maps.gammad_khent_v1),
		.rule = bpf_map__fd(sk->maps.gammad_khrul_v1),
		.rb = bpf_map__fd(sk->maps.gammad_khrb_v1),
		.alias = bpf_map__fd(sk->maps.gammad_khal_v1),
	};
	uint32_t be_id = 1;

	if (!ASSERT_OK(tfx_setup(f, kd_route), "route"))
		return -1;
	if (!ASSERT_OK(kh_encode(tfx_class(f, "app", "a", 80, NULL), 80, img), "encode") ||
	    !ASSERT_EQ(img->tab.engine_reason, 0, "the kernel's table"))
		return -1;
	for (size_t r = 0; r < img->nr_rbs; r++)
		img->rbs[r].be_id = be_id;
	fk.addr[0] = 10, fk.addr[1] = 96, fk.addr[3] = 10;
	ev.addr[0] = 127, ev.addr[3] = 1;
	return ASSERT_OK(kh_image_write(img, KD_TAB, &fds), "write table") &&
	       ASSERT_OK(bpf_map_update_elem(bpf_map__fd(sk->maps.gammad_fe_v1), &fk, &fv, 0), "fe") &&
	       ASSERT_OK(bpf_map_update_elem(bpf_map__fd(sk->maps.gammad_khcls_v1), &ck, &cv, 0),
			 "class") &&
	       ASSERT_OK(bpf_map_update_elem(bpf_map__fd(sk->maps.gammad_be_v2), &be_id, &bv, 0),
			 "backend") &&
	       ASSERT_OK(bpf_map_update_elem(bpf_map__fd(sk->maps.gammad_ep_v1), &ek, &ev, 0),
			 "endpoint") ? 0 : -1;
}

/* The client socket fd as the sk_msg sees it (its state, slot), then into sockhash map. */
static int kd_register(struct test_khttp_direct_bpf *sk, int fd, int map, uint32_t slot)
{
	struct gammad_kh_conn c = { .state = GAMMAD_KHC_KERNEL, .flags = GAMMAD_KHC_F_STARTED,
				    .ns_id = GAMMAD_NS_ALL, .slot = slot };
	uint64_t key = 1, sock = (uint64_t)fd;	/* the sockhash's value is a __u64 fd */

	c.fe.addr[0] = 10, c.fe.addr[1] = 96, c.fe.addr[3] = 10;
	c.fe.port = htons(80);
	c.fe.proto = IPPROTO_TCP;
	c.fe.family = AF_INET;
	return ASSERT_OK(bpf_map_update_elem(bpf_map__fd(sk->maps.gammad_khc_v1), &fd, &c, 0),
			 "client state") &&
	       ASSERT_OK(bpf_map_update_elem(map, &key, &sock, 0), "sockhash") ? 0 : -1;
}

/* run_time_ns and run_cnt of prog so far (counted only while stats are on). */
static void kd_stats(const struct bpf_program *prog, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	*ns = *cnt = 0;
	if (!bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
		*ns = info.run_time_ns;
		*cnt = info.run_cnt;
	}
}

/* The configurations measured, each over a connection of its own. */
enum { KD_PLAIN, KD_MSG_PASS, KD_MSG, KD_BOTH_PASS, KD_BOTH, KD_NR };

static const char *const kd_what[KD_NR] = {
	[KD_PLAIN] = "plain TCP",
	[KD_MSG_PASS] = "sk_msg SK_PASS at once",
	[KD_MSG] = "sk_msg deciding (parse, match, draw, edit)",
	[KD_BOTH_PASS] = "sk_msg + verdict SK_PASS at once",
	[KD_BOTH] = "sk_msg deciding + verdict framing (the design)",
};

void test_khttp_direct(void)
{
	enum { ROUNDS = 5, N = 3000, WARM = 300 };
	struct test_khttp_direct_bpf *sk = test_khttp_direct_bpf__open();
	int l = -1, msg = -1, skb = -1, both = -1, msg_only = -1;
	int cli[KD_NR], be[KD_NR];
	double t[KD_NR][ROUNDS];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct gammad_kh_slot sl;
	struct kh_image img = { 0 };
	bool tfx_up = false;
	uint32_t slot = KD_SLOT;
	uint64_t decided;
	struct tfx f = { 0 };

	for (int k = 0; k < KD_NR; k++)
		cli[k] = be[k] = -1;
	if (!ASSERT_OK_PTR(sk, "open"))
		return;
	sk->rodata->kd_slot = KD_SLOT;
	if (!ASSERT_OK(test_khttp_direct_bpf__load(sk), "load"))
		goto out;
	l = loopback_listener(NULL);
	if (!ASSERT_GE(l, 0, "listener") ||
	    !ASSERT_OK(getsockname(l, (struct sockaddr *)&a, &alen), "port"))
		goto out;
	tfx_up = true;
	if (kd_tables(sk, &f, &img, ntohs(a.sin_port)))
		goto out;
	msg = bpf_program__fd(sk->progs.kd_client);
	skb = bpf_program__fd(sk->progs.kd_resp);
	both = bpf_map__fd(sk->maps.kd_sock);
	msg_only = bpf_map__fd(sk->maps.kd_sock_msg);
	if (!ASSERT_OK(bpf_prog_attach(msg, both, BPF_SK_MSG_VERDICT, 0), "attach sk_msg") ||
	    !ASSERT_OK(bpf_prog_attach(skb, both, BPF_SK_SKB_VERDICT, 0), "attach verdict") ||
	    !ASSERT_OK(bpf_prog_attach(msg, msg_only, BPF_SK_MSG_VERDICT, 0), "attach sk_msg alone"))
		goto out;
	for (int k = 0; k < KD_NR; k++) {
		be[k] = loopback_pair(l, &cli[k], true);
		if (!ASSERT_GE(be[k], 0, "pair"))
			goto out;
	}
	/* the verdict's slot is KD_SLOT; the sk_msg alone counts into another one */
	if (kd_register(sk, cli[KD_MSG_PASS], msg_only, KD_SLOT + 1) ||
	    kd_register(sk, cli[KD_MSG], msg_only, KD_SLOT + 1) ||
	    kd_register(sk, cli[KD_BOTH_PASS], both, KD_SLOT) ||
	    kd_register(sk, cli[KD_BOTH], both, KD_SLOT))
		goto out;
	for (int r = -1; r < ROUNDS; r++)
		for (int k = 0; k < KD_NR; k++) {
			double us;

			sk->bss->kd_trivial = k == KD_MSG_PASS || k == KD_BOTH_PASS;
			us = kd_ping_pong(cli[k], be[k], r < 0 ? WARM : N);
			if (!ASSERT_GT(us, 0, kd_what[k]))
				goto out;
			if (r >= 0)
				t[k][r] = us;
		}
	/* every request of the deciding connections decided and passed, every response framed */
	decided = 2 * (WARM + ROUNDS * N);	/* the stats run comes after the checks */
	ASSERT_EQ(sk->bss->kd_other, 0, "requests the floor did not serve");
	ASSERT_EQ(sk->bss->kd_passed, decided, "requests decided and passed");
	if (ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(sk->maps.gammad_khslot_v1), &slot, &sl),
		      "slot")) {
		ASSERT_EQ(sl.req_seq, decided / 2, "requests counted");
		ASSERT_EQ(sl.r.resp_seq, sl.req_seq, "responses framed");
		ASSERT_EQ(sl.flags & GAMMAD_KH_SLOT_UNFRAMED, 0, "framed");
	}
	for (int k = 0; k < KD_NR; k++)
		qsort(t[k], ROUNDS, sizeof(t[k][0]), cmp_double);
	/* what each program costs per run on the deciding connection (BPF_ENABLE_STATS) */
	{
		const struct bpf_program *progs[] = { sk->progs.kd_client, sk->progs.kd_resp };
		uint64_t ns0[2], cnt0[2], ns1[2], cnt1[2];
		int sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);

		if (sfd >= 0) {
			for (int i = 0; i < 2; i++)
				kd_stats(progs[i], &ns0[i], &cnt0[i]);
			kd_ping_pong(cli[KD_BOTH], be[KD_BOTH], N);
			for (int i = 0; i < 2; i++)
				kd_stats(progs[i], &ns1[i], &cnt1[i]);
			close(sfd);
			for (int i = 0; i < 2; i++)
				if (cnt1[i] > cnt0[i])
					test__printf("%s: %.0f ns per run, %.2f runs per round trip\n",
						     bpf_program__name(progs[i]),
						     (double)(ns1[i] - ns0[i]) / (cnt1[i] - cnt0[i]),
						     (double)(cnt1[i] - cnt0[i]) / N);
		}
	}
	for (int k = 0; k < KD_NR; k++)
		test__printf("round trip, %s: %.2f us (%+.2f), median of %d x %d\n", kd_what[k],
			     t[k][ROUNDS / 2], t[k][ROUNDS / 2] - t[KD_PLAIN][ROUNDS / 2], ROUNDS, N);
out:
	if (msg >= 0) {
		bpf_prog_detach2(msg, both, BPF_SK_MSG_VERDICT);
		bpf_prog_detach2(msg, msg_only, BPF_SK_MSG_VERDICT);
	}
	if (skb >= 0)
		bpf_prog_detach2(skb, both, BPF_SK_SKB_VERDICT);
	for (int k = 0; k < KD_NR; k++) {
		if (cli[k] >= 0)
			close(cli[k]);
		if (be[k] >= 0)
			close(be[k]);
	}
	if (l >= 0)
		close(l);
	if (tfx_up) {
		kh_image_free(&img);
		tfx_free(&f);
	}
	test_khttp_direct_bpf__destroy(sk);
}
