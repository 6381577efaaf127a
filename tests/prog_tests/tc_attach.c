// SPDX-License-Identifier: Apache-2.0
/*
 * The TC path on real traffic. A "node" netns stands for the host: pods are
 * netns wired to it by veths (node side h<i>, Calico-like /24s), the TC
 * programs are attached with pinned TCX links to the node side of every
 * pod veth, and the client pod's process is in no managed cgroup, so only
 * the TC path can take it to the ClusterIP (blackholed in the node). The
 * node forwards (its own netns sysctl), so bpf_fib_lookup answers; the
 * programs deliver with bpf_redirect_peer/neigh.
 *
 *   pod0 (A, 198.18.1.2) ─ h0 ┐
 *   pod1 (B, 198.18.2.2) ─ h1 ┤ node netns: TCX ingress on h0..h2 (pod)
 *   pod2 (client)        ─ h2 ┤             and up0 (uplink)
 *   remote (198.18.100.2)─ up0┘ another node's client, routed by the node
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "datapath/tc_attach.h"
#include "datapath/tc_maps.h"
#include "lib/dp_fixture.h"
#include "lib/hello.h"
#include "lib/id_server.h"
#include "lib/netns.h"
#include "lib/svc_publish.h"
#include "test_progs.h"

#define NR_PODS		3
#define CLIENT		2
#define VIP4		"198.19.0.50"
#define VIP6		"fd00:19::50"

struct tca_env {
	struct dp_fixture fx;	/* pin dir, attach cgroup, data path; no pods of its own */
	char node[64];
	char pod[NR_PODS][64];
	char ip4[NR_PODS][32], ip6[NR_PODS][64];
	int ifindex[NR_PODS];	/* node side, in the node netns */
	char remote[64];	/* a client on "another node", behind the uplink */
	int uplink;		/* ifindex of up0 in the node netns */
	pid_t srv[NR_PODS];
	struct tc_dp *tc;
};

/*
 * Link-local addresses skip DAD in the test's netns: while tentative the
 * node cannot send neighbour solicitations for the pods, and the first
 * IPv6 packets of the test would wait for a retransmission.
 */
static int no_dad(const char *ns)
{
	return sys_run("ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0", ns);
}

static int pod_wire(struct tca_env *e, int i)
{
	char n4[40], n6[64], p4[40], p6[64], hif[8];
	struct veth_end node, pod;

	xsnprintf(e->pod[i], sizeof(e->pod[i]), "%s-p%d", e->fx.prefix, i);
	xsnprintf(e->ip4[i], sizeof(e->ip4[i]), "198.18.%d.2", i + 1);
	xsnprintf(e->ip6[i], sizeof(e->ip6[i]), "fd00:18:%d::2", i + 1);
	xsnprintf(n4, sizeof(n4), "198.18.%d.1/24", i + 1);
	xsnprintf(n6, sizeof(n6), "fd00:18:%d::1/64", i + 1);
	xsnprintf(p4, sizeof(p4), "%s/24", e->ip4[i]);
	xsnprintf(p6, sizeof(p6), "%s/64", e->ip6[i]);
	xsnprintf(hif, sizeof(hif), "h%d", i);
	node = (struct veth_end){ e->node, hif, n4, n6 };
	pod = (struct veth_end){ e->pod[i], "eth0", p4, p6 };
	if (netns_add(e->pod[i]) || no_dad(e->pod[i]) || veth_pair_add(&node, &pod))
		return -EIO;
	/* pods reach pods and Services through the node, nothing else */
	if (sys_run("ip -n %s route add 198.18.0.0/16 via 198.18.%d.1", e->pod[i], i + 1) ||
	    sys_run("ip -n %s route add 198.19.0.0/16 via 198.18.%d.1", e->pod[i], i + 1) ||
	    sys_run("ip -n %s -6 route add fd00:18::/32 via fd00:18:%d::1", e->pod[i], i + 1) ||
	    sys_run("ip -n %s -6 route add fd00:19::/64 via fd00:18:%d::1", e->pod[i], i + 1))
		return -EIO;
	return 0;
}

/* The uplink: a netns standing for another node, routed to Services via the node. */
static int remote_wire(struct tca_env *e)
{
	struct veth_end node = { e->node, "up0", "198.18.100.1/24", "fd00:18:100::1/64" };
	struct veth_end remote;

	xsnprintf(e->remote, sizeof(e->remote), "%s-remote", e->fx.prefix);
	remote = (struct veth_end){ e->remote, "eth0", "198.18.100.2/24", "fd00:18:100::2/64" };
	if (netns_add(e->remote) || no_dad(e->remote) || veth_pair_add(&node, &remote))
		return -EIO;
	return sys_run("ip -n %s route add 198.19.0.0/16 via 198.18.100.1", e->remote) ? -EIO : 0;
}

static int node_setup(struct tca_env *e)
{
	xsnprintf(e->node, sizeof(e->node), "%s-node", e->fx.prefix);
	if (netns_add(e->node) || no_dad(e->node))
		return -EIO;
	if (sys_run("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 "
		    "net.ipv6.conf.all.forwarding=1", e->node) ||
	    sys_run("ip -n %s route add blackhole " FX_VIP4_NET, e->node) ||
	    sys_run("ip -n %s -6 route add blackhole " FX_VIP6_NET, e->node))
		return -EIO;
	for (int i = 0; i < NR_PODS; i++)
		if (pod_wire(e, i))
			return -EIO;
	return remote_wire(e);
}

/* Attach to the node side of every pod veth and register the pods. */
static int attach_all(struct tca_env *e)
{
	struct tc_dp_opts o = { .pin_dir = e->fx.pin_dir, .redirect = true };
	int prev, err;

	err = tc_dp_open(e->fx.dp, &o, &e->tc);
	if (err)
		return err;
	prev = netns_enter(e->node);
	if (prev < 0)
		return prev;
	for (int i = 0; i < NR_PODS && !err; i++) {
		char hif[8];

		xsnprintf(hif, sizeof(hif), "h%d", i);
		e->ifindex[i] = if_nametoindex(hif);
		err = e->ifindex[i] ? tc_attach(e->tc, e->ifindex[i], TC_ROLE_POD) : -ENODEV;
	}
	e->uplink = if_nametoindex("up0");
	if (!err)
		err = e->uplink ? tc_attach(e->tc, e->uplink, TC_ROLE_UPLINK) : -ENODEV;
	netns_leave(prev);
	for (int i = 0; i < NR_PODS && !err; i++) {
		struct in6_addr a4, a6;

		inet_pton(AF_INET, e->ip4[i], &a4);
		inet_pton(AF_INET6, e->ip6[i], &a6);
		err = dp_pod_set(e->fx.dp, AF_INET, &a4, GAMMAD_NS_ALL, e->ifindex[i]) ?:
		      dp_pod_set(e->fx.dp, AF_INET6, &a6, GAMMAD_NS_ALL, e->ifindex[i]);
	}
	return err;
}

static int env_setup(struct tca_env *e)
{
	int err = fx_setup(&e->fx, 0, false);

	if (!ASSERT_OK(err, "fixture") || !ASSERT_OK(node_setup(e), "topology"))
		return -1;
	for (int i = 0; i < CLIENT; i++) {
		e->srv[i] = id_server_start(e->pod[i], NULL, FX_PORT, 'A' + i);
		if (!ASSERT_GT(e->srv[i], 0, "server"))
			return -1;
	}
	if (!ASSERT_OK(attach_all(e), "attach"))
		return -1;
	const struct svc_ep w4[] = { { e->ip4[0], FX_PORT, 70 }, { e->ip4[1], FX_PORT, 30 } };
	const struct svc_ep w6[] = { { e->ip6[0], FX_PORT, 70 }, { e->ip6[1], FX_PORT, 30 } };

	err = svc_publish(e->fx.dp, VIP4, FX_PORT, IPPROTO_TCP, 1, w4, 2, 0) ?:
	      svc_publish(e->fx.dp, VIP4, FX_PORT, IPPROTO_UDP, 2, w4, 2, 0) ?:
	      svc_publish(e->fx.dp, VIP6, FX_PORT, IPPROTO_TCP, 3, w6, 2, 0) ?:
	      svc_publish(e->fx.dp, VIP6, FX_PORT, IPPROTO_UDP, 4, w6, 2, 0);
	return ASSERT_OK(err, "publish") ? 0 : -1;
}

/* tc_attach/tc_detach name interfaces by ifindex: in the node's netns. */
static int in_node(struct tca_env *e, struct tc_dp *t, int ifindex, bool attach)
{
	int prev = netns_enter(e->node), err;

	if (prev < 0)
		return prev;
	err = attach ? tc_attach(t, ifindex, TC_ROLE_POD) : tc_detach(t, ifindex);
	netns_leave(prev);
	return err;
}

static void env_teardown(struct tca_env *e)
{
	for (int i = 0; i < NR_PODS; i++) {
		if (e->srv[i] > 0)
			id_server_stop(e->srv[i]);
		if (e->tc && e->ifindex[i] && e->node[0])
			in_node(e, e->tc, e->ifindex[i], false);
	}
	if (e->tc && e->uplink)
		in_node(e, e->tc, e->uplink, false);
	tc_dp_close(e->tc);
	/* removes the pin dir (and any link pin left), the netns of the prefix */
	fx_teardown(&e->fx);
}

/* count hellos from the client pod, outside every managed cgroup unless cg. */
static struct hello_job *hello_from(const char *netns, const char *cg, const char *vip,
				    bool udp, int count)
{
	struct hello_job *j = hello_job_new(vip, FX_PORT, udp, count);

	if (!ASSERT_OK_PTR(j, "job"))
		return NULL;
	/*
	 * Correctness, not latency: room for one SYN retransmission (1 s),
	 * seen now and then on IPv6 in the first seconds of fresh veths.
	 */
	j->timeout_ms = 3000;
	if (!ASSERT_OK(child_run(cg, netns, hello_loop, j, 120000), "client")) {
		hello_job_free(j);
		return NULL;
	}
	test__printf("%s %s x%d: ok=%d fail=%d (errno %d) A=%d B=%d peer_mismatch=%d\n",
		     vip, udp ? "udp" : "tcp", count, j->ok, j->fail, j->last_err,
		     j->ids['A'], j->ids['B'], j->peer_mismatch);
	return j;
}

static struct hello_job *hello(struct tca_env *e, const char *cg, const char *vip, bool udp,
			       int count)
{
	return hello_from(e->pod[CLIENT], cg, vip, udp, count);
}

/* 70/30 within +-tol percent (5 for 1000 hellos: > 3 sigma; 10 for 200). */
static void expect_split_from(const char *netns, const char *vip, bool udp, int count,
			      int tol)
{
	struct hello_job *j = hello_from(netns, NULL, vip, udp, count);
	int lo70 = count * (70 - tol) / 100, hi70 = count * (70 + tol) / 100;

	if (!j)
		return;
	ASSERT_EQ(j->ok, count, "all answered");
	ASSERT_TRUE(j->ids['A'] >= lo70 && j->ids['A'] <= hi70, "70% within tolerance");
	ASSERT_EQ(j->ids['A'] + j->ids['B'], j->ok, "only the two endpoints");
	/* UDP: recvfrom's source; TCP: the handshake itself needs the ClusterIP */
	ASSERT_EQ(j->peer_mismatch, 0, "replies come from the ClusterIP");
	hello_job_free(j);
}

static void expect_split(struct tca_env *e, const char *vip, bool udp, int count, int tol)
{
	expect_split_from(e->pod[CLIENT], vip, udp, count, tol);
}

static void test_traffic(struct tca_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, before), "counters"))
		return;
	expect_split(e, VIP4, false, 1000, 5);
	expect_split(e, VIP4, true, 1000, 5);
	expect_split(e, VIP6, false, 200, 10);
	expect_split(e, VIP6, true, 200, 10);
	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, after), "counters"))
		return;
	for (int r = 0; r < GAMMAD_TC_MAX; r++)
		test__printf("  %-20s %llu\n", dp_tc_reason_name(r),
			     (unsigned long long)(after[r] - before[r]));
	/*
	 * One flow per hello, but an unconnected UDP socket may get the
	 * source port of an earlier one: that datagram rightly joins its flow.
	 */
	ASSERT_LE(after[GAMMAD_TC_NEW_FLOW] - before[GAMMAD_TC_NEW_FLOW], 2400, "flows");
	ASSERT_GE(after[GAMMAD_TC_NEW_FLOW] - before[GAMMAD_TC_NEW_FLOW], 2300, "flows");
	ASSERT_GT(after[GAMMAD_TC_REV_XLATE] - before[GAMMAD_TC_REV_XLATE], 2400, "replies");
	ASSERT_GT(after[GAMMAD_TC_REDIR_PEER] - before[GAMMAD_TC_REDIR_PEER], 2400,
		  "delivered into the pods' netns");
	ASSERT_EQ(after[GAMMAD_TC_REWRITE_ERR] - before[GAMMAD_TC_REWRITE_ERR], 0, "no rewrite error");
	ASSERT_EQ(after[GAMMAD_TC_NO_ENDPOINT] - before[GAMMAD_TC_NO_ENDPOINT], 0, "no miss");
}

/*
 * A client on another node reaches the ClusterIP through the uplink
 * program and gets its answers from the local pods, from the ClusterIP.
 */
static void test_remote(struct tca_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, before), "counters"))
		return;
	expect_split_from(e->remote, VIP4, false, 1000, 5);
	expect_split_from(e->remote, VIP4, true, 200, 10);
	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, after), "counters"))
		return;
	ASSERT_GE(after[GAMMAD_TC_NEW_FLOW] - before[GAMMAD_TC_NEW_FLOW], 1150, "flows");
	/* replies leave by the uplink: not a local pod, redirect_neigh */
	ASSERT_GE(after[GAMMAD_TC_REDIR_NEIGH] - before[GAMMAD_TC_REDIR_NEIGH], 1200,
		  "replies through the uplink");
	ASSERT_GE(after[GAMMAD_TC_REDIR_PEER] - before[GAMMAD_TC_REDIR_PEER], 1200,
		  "requests into the pods");
}

/* A client in the managed cgroup is translated at connect time: the TC path only sees pod IPs. */
static void test_connect_time(struct tca_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	struct hello_job *j;

	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, before), "counters"))
		return;
	j = hello(e, e->fx.cg, VIP4, false, 50);
	if (!j)
		return;
	ASSERT_EQ(j->ok, 50, "all answered");
	hello_job_free(j);
	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, after), "counters"))
		return;
	ASSERT_EQ(after[GAMMAD_TC_NEW_FLOW] - before[GAMMAD_TC_NEW_FLOW], 0, "no TC flow");
	ASSERT_EQ(after[GAMMAD_TC_XLATE] - before[GAMMAD_TC_XLATE], 0, "no TC translation");
	ASSERT_EQ(after[GAMMAD_TC_REV_XLATE] - before[GAMMAD_TC_REV_XLATE], 0, "no TC reverse");
}

/* Pinned links survive the loader; re-attaching adopts them; detaching ends the path. */
static void test_pins(struct tca_env *e)
{
	char path[PATH_MAX];
	struct stat st;
	struct hello_job *j;

	xsnprintf(path, sizeof(path), "%s/link_tc_%d", e->fx.pin_dir, e->ifindex[CLIENT]);
	if (!ASSERT_OK(stat(path, &st), "link pinned"))
		return;
	/* a new loader (an agent restart) takes the links over in place */
	tc_dp_close(e->tc);
	e->tc = NULL;
	j = hello(e, NULL, VIP4, false, 20);
	if (j) {
		ASSERT_EQ(j->ok, 20, "works without the loader");
		hello_job_free(j);
	}
	struct tc_dp_opts o = { .pin_dir = e->fx.pin_dir, .redirect = true };

	if (!ASSERT_OK(tc_dp_open(e->fx.dp, &o, &e->tc), "reopen"))
		return;
	ASSERT_OK(in_node(e, e->tc, e->ifindex[CLIENT], true), "adopt");
	j = hello(e, NULL, VIP4, false, 20);
	if (j) {
		ASSERT_EQ(j->ok, 20, "works after adoption");
		hello_job_free(j);
	}
	/* no link on the client's veth: its packets to the ClusterIP hit the blackhole */
	if (!ASSERT_OK(in_node(e, e->tc, e->ifindex[CLIENT], false), "detach"))
		return;
	ASSERT_ERR(stat(path, &st), "pin removed");
	j = hello(e, NULL, VIP4, false, 1);
	if (j) {
		ASSERT_EQ(j->ok, 0, "no TC path, no Service");
		hello_job_free(j);
	}
}

/* Without TCX: a clsact filter does the same job, and tc_detach removes it. */
static void test_clsact(struct tca_env *e)
{
	struct tc_dp_opts o = { .pin_dir = e->fx.pin_dir, .redirect = true, .clsact = true };
	int ifindex = e->ifindex[CLIENT];
	struct tc_dp *t = NULL;
	struct hello_job *j;
	char path[PATH_MAX];
	struct stat st;

	xsnprintf(path, sizeof(path), "%s/link_tc_%d", e->fx.pin_dir, ifindex);
	if (!ASSERT_OK(tc_dp_open(e->fx.dp, &o, &t), "open") ||
	    !ASSERT_OK(in_node(e, e->tc, ifindex, false), "detach TCX") ||
	    !ASSERT_OK(in_node(e, t, ifindex, true), "attach clsact"))
		goto out;
	ASSERT_ERR(stat(path, &st), "no TCX pin");
	xsnprintf(path, sizeof(path), "%s/clsact_tc_%d", e->fx.pin_dir, ifindex);
	ASSERT_OK(stat(path, &st), "clsact mark pinned");
	j = hello(e, NULL, VIP4, false, 20);
	if (j) {
		ASSERT_EQ(j->ok, 20, "works through clsact");
		hello_job_free(j);
	}
	if (!ASSERT_OK(in_node(e, t, ifindex, false), "detach clsact"))
		goto out;
	ASSERT_ERR(stat(path, &st), "clsact mark removed");
	j = hello(e, NULL, VIP4, false, 1);
	if (j) {
		ASSERT_EQ(j->ok, 0, "filter gone");
		hello_job_free(j);
	}
out:
	tc_dp_close(t);
	/* back to the TCX link for what follows */
	ASSERT_OK(in_node(e, e->tc, ifindex, true), "re-attach TCX");
}

void test_tc_attach(void)
{
	struct tca_env e = {};

	if (env_setup(&e))
		goto cleanup;
	if (test__start_subtest("weighted_traffic"))
		test_traffic(&e);
	if (test__start_subtest("remote_node"))
		test_remote(&e);
	if (test__start_subtest("connect_time_untouched"))
		test_connect_time(&e);
	if (test__start_subtest("clsact_fallback"))
		test_clsact(&e);
	if (test__start_subtest("pinned_links"))
		test_pins(&e);
cleanup:
	env_teardown(&e);
}
