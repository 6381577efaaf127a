// SPDX-License-Identifier: Apache-2.0
/*
 * Session affinity (sessionAffinity: ClientIP) in the kernel, on both
 * paths that pick an endpoint (bpf/lib/lb.h, bpf/lib/affinity.h):
 *
 *  - connect time: real sockets from a child in the fixture's cgroup to
 *    real servers in three pod netns (tests/lib/dp_fixture.h); the client
 *    is its network namespace;
 *  - TC: BPF_PROG_TEST_RUN of bpf/tc.bpf.c on the same maps; the client is
 *    the packet's source address, and the endpoint the output's destination.
 *
 * One backend (a Service port) with the three pods as its endpoint set.
 * The remembered endpoint is checked through gammad_aff_v1 itself: entries
 * planted by the test (another endpoint, a wrong index, an old timestamp,
 * an endpoint not in the set) must be honoured exactly as far as they are
 * fresh and valid.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/dp_fixture.h"
#include "lib/hello.h"
#include "lib/netns.h"
#include "lib/pktbuild.h"
#include "test_progs.h"
#include "skel/tc.skel.h"

#define NPODS		3
#define TIMEOUT_LONG	10800
#define TIMEOUT_SHORT	1
#define MARK		0x5a	/* ep.flags of a planted entry: a recall keeps it */
#define SYN		0x02
#define TC_ACT_OK	0

#define TCP(f, s, d, sp, dp, fl)						\
	{ .family = f, .proto = IPPROTO_TCP, .src = s, .dst = d,		\
	  .sport = sp, .dport = dp, .tcp_flags = fl }
#define UDP(f, s, d, sp, dp)							\
	{ .family = f, .proto = IPPROTO_UDP, .src = s, .dst = d, .sport = sp, .dport = dp }

struct aff_env {
	struct dp_fixture fx;
	struct tc_bpf *tc;
	int aff_fd;
	uint32_t set_gen;	/* fresh endpoint set ids */
};

/* ---- publishing: one backend, the pods in mask as its endpoint set ------ */

static void pod_ep(struct aff_env *e, int family, int pod, struct gammad_ep_val *ep)
{
	struct in6_addr a;

	inet_pton(family, family == AF_INET ? e->fx.pods[pod].ip4 : e->fx.pods[pod].ip6, &a);
	dp_ep(ep, family, &a, FX_PORT);
}

/* The backend's endpoints become the pods in mask (sorted, as the translator writes them). */
static int set_endpoints(struct aff_env *e, uint32_t be_id, int family, unsigned int mask,
			 uint32_t timeout)
{
	struct gammad_be_val be = { .ep_set = 1000 + e->set_gen++, .affinity_timeout = timeout };
	struct gammad_ep_val eps[NPODS];
	int err;

	for (int i = 0; i < NPODS; i++)
		if (mask & (1u << i))
			pod_ep(e, family, i, &eps[be.nr_endpoints++]);
	err = dp_endpoints_write(e->fx.dp, be.ep_set, eps, be.nr_endpoints);
	return err ?: dp_backend_write(e->fx.dp, be_id, &be);
}

/* Service vip:FX_PORT/proto -> backend id (one selector of its own). */
static int publish(struct aff_env *e, const char *vip, uint8_t proto, uint32_t id,
		   uint32_t timeout)
{
	struct gammad_fe_val fe = { .svc_port_id = id, .table_gen = id, .default_sel = id };
	struct dp_weighted w = { id, 1 };
	struct gammad_fe_key key;

	fx_key(&key, vip, proto);
	return set_endpoints(e, id, key.family, (1u << NPODS) - 1, timeout) ?:
	       dp_selector_write(e->fx.dp, id, id, &w, 1) ?:
	       dp_frontend_publish(e->fx.dp, &key, &fe);
}

/* ---- the affinity table ---------------------------------------------------- */

/* The one entry of backend be_id (every test client is alone on its backend). */
static int aff_entry(struct aff_env *e, uint32_t be_id, struct gammad_aff_key *k,
		     struct gammad_aff_val *v)
{
	struct gammad_aff_key cur, next;
	void *prev = NULL;
	int found = 0;

	while (!bpf_map_get_next_key(e->aff_fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (cur.be_id != be_id || bpf_map_lookup_elem(e->aff_fd, &cur, v))
			continue;
		*k = cur;
		found++;
	}
	return found == 1 ? 0 : -ENOENT;
}

/* Make the client of k stick to pod's endpoint: idx, last_used as given. */
static int plant(struct aff_env *e, const struct gammad_aff_key *k, int family, int pod,
		 uint32_t idx, uint64_t last_used)
{
	struct gammad_aff_val v = { .idx = idx, .last_used = last_used };

	pod_ep(e, family, pod, &v.ep);
	v.ep.flags = MARK;
	return bpf_map_update_elem(e->aff_fd, k, &v, BPF_ANY) ? -errno : 0;
}

static int pod_of_ep(struct aff_env *e, const struct gammad_ep_val *ep)
{
	struct gammad_ep_val p;

	for (int i = 0; i < NPODS; i++) {
		pod_ep(e, ep->family, i, &p);
		if (!memcmp(p.addr, ep->addr, 16) && p.port == ep->port)
			return i;
	}
	return -1;
}

/* ---- the two paths: n new connections of one client, per pod ------------- */

struct path {
	const char *name;
	/* n connections of client c to vip; count[pod] += each answer; false: broken */
	bool (*connect)(struct aff_env *e, const char *vip, uint8_t proto, int c, int n,
			int count[NPODS]);
};

static bool sock_connect(struct aff_env *e, const char *vip, uint8_t proto, int c, int n,
			 int count[NPODS])
{
	struct hello_job *j = hello_job_new(vip, FX_PORT, proto == IPPROTO_UDP, n);
	bool ok;

	if (!ASSERT_OK_PTR(j, "job"))
		return false;
	j->connected = true;
	ok = ASSERT_OK(child_run(e->fx.cg, NULL, hello_loop, j, 60000), "client") &&
	     ASSERT_EQ(j->ok, n, "all answered") && ASSERT_EQ(j->peer_mismatch, 0, "peer");
	for (int i = 0; i < NPODS; i++)
		count[i] += j->ids['A' + i];
	hello_job_free(j);
	return ok;
}

static int client_addr(int family, int c, char *buf, size_t len)
{
	return snprintf(buf, len, family == AF_INET ? "198.18.5.%d" : "fd00:18:5::%d", 10 + c);
}

static bool tc_connect(struct aff_env *e, const char *vip, uint8_t proto, int c, int n,
		       int count[NPODS])
{
	static uint8_t in[PB_MAX], out[PB_MAX];
	int family = strchr(vip, ':') ? AF_INET6 : AF_INET;
	struct __sk_buff ctx = { .ifindex = 1, .ingress_ifindex = 1 };
	/* destination address in the output: Ethernet 14 + IPv4 16 / IPv6 24 */
	size_t off = family == AF_INET ? 30 : 38, alen = family == AF_INET ? 4 : 16;
	static uint16_t sport = 20000;
	char src[64];

	client_addr(family, c, src, sizeof(src));
	for (int i = 0; i < n; i++) {
		struct pb_spec s = proto == IPPROTO_TCP ?
			(struct pb_spec)TCP(family, src, vip, sport, FX_PORT, SYN) :
			(struct pb_spec)UDP(family, src, vip, sport, FX_PORT);
		size_t len = pb_build(&s, in);
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out),
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
		struct gammad_ep_val ep = {};
		int pod;

		sport = sport >= 60000 ? 20000 : sport + 1;	/* a new flow each time */
		if (!ASSERT_OK(bpf_prog_test_run_opts(bpf_program__fd(e->tc->progs.gammad_tc_pod),
						      &o), "test run") ||
		    !ASSERT_EQ(o.retval, TC_ACT_OK, "translated"))
			return false;
		memcpy(ep.addr, out + off, alen);
		ep.family = family;
		ep.port = htons(FX_PORT);
		pod = pod_of_ep(e, &ep);
		if (!ASSERT_GE(pod, 0, "an endpoint of the set"))
			return false;
		count[pod]++;
	}
	return true;
}

static const struct path paths[] = {
	{ "connect", sock_connect },
	{ "tc", tc_connect },
};

/* The pod that got all n, or -1 (counts printed). */
static int only_pod(const int count[NPODS], int n, const char *what)
{
	test__printf("%s: A=%d B=%d C=%d\n", what, count[0], count[1], count[2]);
	for (int i = 0; i < NPODS; i++)
		if (count[i] == n)
			return i;
	return -1;
}

/* ---- subtests ---------------------------------------------------------------- */

/* 100 connections of one client land on one endpoint; TCP and UDP, IPv4 and IPv6. */
static void test_sticky(struct aff_env *e, const struct path *p, uint32_t base)
{
	static const struct { const char *vip; uint8_t proto; } svcs[] = {
		{ "198.19.0.50", IPPROTO_TCP }, { "198.19.0.50", IPPROTO_UDP },
		{ "fd00:19::50", IPPROTO_TCP }, { "fd00:19::50", IPPROTO_UDP },
	};

	for (size_t s = 0; s < 4; s++) {
		int count[NPODS] = {};
		char what[64];

		snprintf(what, sizeof(what), "%s %s %s", p->name, svcs[s].vip,
			 svcs[s].proto == IPPROTO_TCP ? "tcp" : "udp");
		if (!ASSERT_OK(publish(e, svcs[s].vip, svcs[s].proto, base + s, TIMEOUT_LONG),
			       "publish") ||
		    !p->connect(e, svcs[s].vip, svcs[s].proto, 0, 100, count))
			return;
		ASSERT_GE(only_pod(count, 100, what), 0, "100 connections, one endpoint");
	}
}

/* Without affinity the same client spreads (the control). */
static void test_none(struct aff_env *e, const struct path *p, uint32_t id)
{
	int count[NPODS] = {};

	if (!ASSERT_OK(publish(e, "198.19.0.51", IPPROTO_TCP, id, 0), "publish") ||
	    !p->connect(e, "198.19.0.51", IPPROTO_TCP, 0, 60, count))
		return;
	ASSERT_LT(only_pod(count, 60, "no affinity"), 0, "spread over the endpoints");
}

/* Clients are told apart: over 12 TC clients at least two differ (P(not) = 3^-11). */
static void test_clients_differ(struct aff_env *e, uint32_t id)
{
	int first = -1, differ = 0;

	if (!ASSERT_OK(publish(e, "198.19.0.52", IPPROTO_TCP, id, TIMEOUT_LONG), "publish"))
		return;
	for (int c = 0; c < 12; c++) {
		int count[NPODS] = {}, pod;

		if (!tc_connect(e, "198.19.0.52", IPPROTO_TCP, c, 10, count))
			return;
		pod = only_pod(count, 10, "client");
		if (!ASSERT_GE(pod, 0, "each client sticks"))
			return;
		if (first < 0)
			first = pod;
		differ += pod != first;
	}
	ASSERT_GT(differ, 0, "two clients got different endpoints");
}

/*
 * Planted entries: another endpoint (fresh) is honoured, also at a wrong
 * index (found by search); an expired one is not (its mark is gone: a
 * fresh pick replaced it); an endpoint not in the set is never chosen.
 */
static void test_planted(struct aff_env *e, const struct path *p, uint32_t id, const char *vip)
{
	int family = strchr(vip, ':') ? AF_INET6 : AF_INET;
	struct gammad_aff_key k;
	struct gammad_aff_val v;
	int count[NPODS] = {}, stuck, other, not_other = 0;

	if (!ASSERT_OK(publish(e, vip, IPPROTO_TCP, id, TIMEOUT_SHORT), "publish") ||
	    !p->connect(e, vip, IPPROTO_TCP, 1, 5, count) ||
	    !ASSERT_OK(aff_entry(e, id, &k, &v), "one entry for the client"))
		return;
	stuck = only_pod(count, 5, "first");
	if (!ASSERT_GE(stuck, 0, "sticks") ||
	    !ASSERT_EQ(pod_of_ep(e, &v.ep), stuck, "the entry names it"))
		return;
	other = (stuck + 1) % NPODS;

	/* fresh, right index; then fresh, wrong index */
	for (int wrong = 0; wrong < 2; wrong++) {
		uint32_t idx = wrong ? (uint32_t)(other + 1) % NPODS : (uint32_t)other;

		memset(count, 0, sizeof(count));
		if (!ASSERT_OK(aff_entry(e, id, &k, &v), "entry") ||
		    !ASSERT_OK(plant(e, &k, family, other, idx, v.last_used), "plant") ||
		    !p->connect(e, vip, IPPROTO_TCP, 1, 5, count))
			return;
		ASSERT_EQ(only_pod(count, 5, wrong ? "planted, wrong index" : "planted"), other,
			  "a fresh planted endpoint is honoured");
		if (ASSERT_OK(aff_entry(e, id, &k, &v), "entry")) {
			ASSERT_EQ(v.ep.flags, MARK, "recalled, not replaced");
			ASSERT_EQ(v.idx, (uint32_t)other, "index corrected");
		}
	}

	/* expired by its timestamp (long ago): 30 rounds, a fresh pick each time */
	for (int r = 0; r < 30; r++) {
		memset(count, 0, sizeof(count));
		if (!ASSERT_OK(aff_entry(e, id, &k, &v), "entry") ||
		    !ASSERT_OK(plant(e, &k, family, other, (uint32_t)other, 0), "plant old") ||
		    !p->connect(e, vip, IPPROTO_TCP, 1, 1, count))
			return;
		not_other += !count[other];
		if (!ASSERT_OK(aff_entry(e, id, &k, &v), "entry") ||
		    !ASSERT_NEQ(v.ep.flags, MARK, "expired: replaced by a fresh pick"))
			return;
	}
	test__printf("expired entry naming %c: %d of 30 went elsewhere\n", 'A' + other, not_other);
	ASSERT_GT(not_other, 0, "an expired endpoint is not kept");

	/* expired in real time: timeoutSeconds 1 */
	memset(count, 0, sizeof(count));
	if (!ASSERT_OK(aff_entry(e, id, &k, &v), "entry") ||
	    !ASSERT_OK(plant(e, &k, family, other, (uint32_t)other, v.last_used), "plant"))
		return;
	usleep((TIMEOUT_SHORT * 1000 + 300) * 1000);
	if (!p->connect(e, vip, IPPROTO_TCP, 1, 1, count) ||
	    !ASSERT_OK(aff_entry(e, id, &k, &v), "entry"))
		return;
	ASSERT_NEQ(v.ep.flags, MARK, "1.3 s after its last use a 1 s affinity is over");
}

/* Endpoints that leave the set are never chosen; the client moves and sticks again. */
static void test_removed(struct aff_env *e, const struct path *p, uint32_t id, const char *vip)
{
	int family = strchr(vip, ':') ? AF_INET6 : AF_INET;
	struct gammad_aff_key k;
	struct gammad_aff_val v;
	int count[NPODS] = {}, stuck, next;
	unsigned int mask = (1u << NPODS) - 1;

	if (!ASSERT_OK(publish(e, vip, IPPROTO_TCP, id, TIMEOUT_LONG), "publish") ||
	    !p->connect(e, vip, IPPROTO_TCP, 2, 20, count))
		return;
	stuck = only_pod(count, 20, "before");
	if (!ASSERT_GE(stuck, 0, "sticks"))
		return;
	/* its endpoint leaves the Service (a new set, one backend update) */
	mask &= ~(1u << stuck);
	memset(count, 0, sizeof(count));
	if (!ASSERT_OK(set_endpoints(e, id, family, mask, TIMEOUT_LONG), "remove it") ||
	    !p->connect(e, vip, IPPROTO_TCP, 2, 50, count))
		return;
	next = only_pod(count, 50, "after removal");
	ASSERT_EQ(count[stuck], 0, "the removed endpoint is never chosen");
	ASSERT_GE(next, 0, "sticks to one live endpoint");

	/* a fresh entry naming an endpoint outside the set */
	memset(count, 0, sizeof(count));
	if (!ASSERT_OK(aff_entry(e, id, &k, &v), "entry") ||
	    !ASSERT_OK(plant(e, &k, family, stuck, (uint32_t)stuck, v.last_used), "plant gone") ||
	    !p->connect(e, vip, IPPROTO_TCP, 2, 20, count))
		return;
	only_pod(count, 20, "planted gone endpoint");
	ASSERT_EQ(count[stuck], 0, "a remembered endpoint that is gone is never chosen");

	/* it comes back: the clients stay where they are (no mass move) */
	if (!aff_entry(e, id, &k, &v))
		next = pod_of_ep(e, &v.ep);
	memset(count, 0, sizeof(count));
	if (!ASSERT_OK(set_endpoints(e, id, family, (1u << NPODS) - 1, TIMEOUT_LONG), "back") ||
	    !p->connect(e, vip, IPPROTO_TCP, 2, 20, count))
		return;
	ASSERT_EQ(count[next], 20, "the set grew: the client keeps its endpoint at its new index");
}

/*
 * An agent of the gammad_be_v1 layout (no affinity_timeout) left its
 * backends pinned: a new data path moves them into gammad_be_v2 before it
 * attaches anything, and removes the old pin (the layout registry,
 * user/lib/datapath/layout.c). The pin dir is made to look like that
 * agent's: gammad_be_v1 and no gammad_be_v2.
 */
static void test_upgrade_be_v1(struct aff_env *e)
{
	struct { uint32_t ep_set, nr_endpoints, flags; } old = { 4242, 3, GAMMAD_BE_NO_ENDPOINTS };
	struct gammad_be_val v = {};
	char path[PATH_MAX + 32], path2[PATH_MAX + 32];
	struct dp *dp2 = NULL;
	uint32_t key = 777;
	int fd;

	snprintf(path, sizeof(path), "%s/gammad_be_v1", e->fx.pin_dir);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "gammad_be_v1", 4, sizeof(old), 16, NULL);
	if (!ASSERT_GE(fd, 0, "old map") ||
	    !ASSERT_OK(bpf_map_update_elem(fd, &key, &old, BPF_ANY), "old entry") ||
	    !ASSERT_OK(bpf_obj_pin(fd, path), "pin old map"))
		goto out;
	snprintf(path2, sizeof(path2), "%s/" GAMMAD_MAP_BACKEND, e->fx.pin_dir);
	if (!ASSERT_OK(unlink(path2), "no gammad_be_v2 pinned yet"))
		goto out;
	if (!ASSERT_OK(fx_dp_open(&e->fx, &dp2), "a new data path on the pin dir"))
		goto out;
	if (ASSERT_OK(bpf_map_lookup_elem(dp_map_fd(dp2, GAMMAD_MAP_BACKEND), &key, &v),
		      "moved to gammad_be_v2")) {
		ASSERT_EQ(v.ep_set, 4242, "ep_set");
		ASSERT_EQ(v.nr_endpoints, 3, "nr_endpoints");
		ASSERT_EQ(v.flags, GAMMAD_BE_NO_ENDPOINTS, "flags");
		ASSERT_EQ(v.affinity_timeout, 0, "no affinity until the first apply");
	}
	ASSERT_NEQ(access(path, F_OK), 0, "old pin removed");
	ASSERT_OK(access(path2, F_OK), "new map pinned");
out:
	dp_close(dp2);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

/*
 * A restart after an upgrade that switched the programs but was killed
 * before removing the old pin: both layouts are pinned and no attached
 * program reads gammad_be_v1, so gammad_be_v2 is the truth. The new data
 * path adopts it as it is (nothing of the old map copied over it) and
 * only removes the old pin (rolled forward).
 */
static void test_upgrade_rolled_forward(struct aff_env *e)
{
	struct { uint32_t ep_set, nr_endpoints, flags; } old = { 4243, 1, 0 };
	char path[PATH_MAX + 32];
	struct gammad_be_val v;
	struct dp *dp2 = NULL;
	uint32_t key = 778;
	int fd;

	snprintf(path, sizeof(path), "%s/gammad_be_v1", e->fx.pin_dir);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "gammad_be_v1", 4, sizeof(old), 16, NULL);
	if (!ASSERT_GE(fd, 0, "old map") ||
	    !ASSERT_OK(bpf_map_update_elem(fd, &key, &old, BPF_ANY), "old entry") ||
	    !ASSERT_OK(bpf_obj_pin(fd, path), "pin old map"))
		goto out;
	if (!ASSERT_OK(fx_dp_open(&e->fx, &dp2), "a new data path on the pin dir"))
		goto out;
	ASSERT_ERR(bpf_map_lookup_elem(dp_map_fd(dp2, GAMMAD_MAP_BACKEND), &key, &v),
		   "the switched map is the truth: nothing copied over it");
	ASSERT_NEQ(access(path, F_OK), 0, "old pin removed");
out:
	dp_close(dp2);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

static int env_setup(struct aff_env *e)
{
	int err = fx_setup(&e->fx, NPODS, false);

	if (!ASSERT_OK(err, "fixture"))
		return err;
	e->aff_fd = dp_map_fd(e->fx.dp, GAMMAD_MAP_AFFINITY);
	if (!ASSERT_GE(e->aff_fd, 0, "affinity map"))
		return -1;
	e->tc = tc_bpf__open();
	if (!ASSERT_OK_PTR(e->tc, "open tc"))
		return -1;
	err = dp_adopt_maps(e->fx.dp, e->tc->obj) ?: tc_bpf__load(e->tc);
	return ASSERT_OK(err, "load tc") ? 0 : -1;
}

void test_datapath_affinity(void)
{
	struct aff_env e = {};
	char name[64];

	if (env_setup(&e))
		goto out;
	for (size_t i = 0; i < 2; i++) {
		const struct path *p = &paths[i];
		uint32_t base = 100 + 100 * (uint32_t)i;

		snprintf(name, sizeof(name), "%s_sticky_100", p->name);
		if (test__start_subtest(name))
			test_sticky(&e, p, base);
		snprintf(name, sizeof(name), "%s_no_affinity_spreads", p->name);
		if (test__start_subtest(name))
			test_none(&e, p, base + 10);
		snprintf(name, sizeof(name), "%s_planted_fresh_expired_ipv4", p->name);
		if (test__start_subtest(name))
			test_planted(&e, p, base + 20, i ? "198.19.0.63" : "198.19.0.53");
		snprintf(name, sizeof(name), "%s_planted_fresh_expired_ipv6", p->name);
		if (test__start_subtest(name))
			test_planted(&e, p, base + 30, i ? "fd00:19::63" : "fd00:19::53");
		snprintf(name, sizeof(name), "%s_removed_endpoint_ipv4", p->name);
		if (test__start_subtest(name))
			test_removed(&e, p, base + 40, i ? "198.19.0.64" : "198.19.0.54");
		snprintf(name, sizeof(name), "%s_removed_endpoint_ipv6", p->name);
		if (test__start_subtest(name))
			test_removed(&e, p, base + 50, i ? "fd00:19::64" : "fd00:19::54");
	}
	if (test__start_subtest("tc_clients_differ"))
		test_clients_differ(&e, 300);
	/* last: it opens the data path a second time on the same pins */
	if (test__start_subtest("upgrade_from_be_v1"))
		test_upgrade_be_v1(&e);
	if (test__start_subtest("upgrade_interrupted_after_switch"))
		test_upgrade_rolled_forward(&e);
out:
	tc_bpf__destroy(e.tc);
	fx_teardown(&e.fx);
}
