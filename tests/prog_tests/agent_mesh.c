// SPDX-License-Identifier: Apache-2.0
/*
 * Issue 4 acceptance through the real lab and the real agent: the Gateway
 * API mesh conformance base (plus a UDP echo Deployment and an IPv6-only
 * Service) in the lab, `gammad run` kept running on a manifests directory of
 * the test's own, and clients making one real connection per request from
 * pods, from a host process inside the attach cgroup and from one outside
 * it. Every connection is checked: no failure, the answering pod, and
 * getpeername() == the ClusterIP:port the client asked for.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"

/* An address of the pod range the lab never hands out (it counts up from .0.2). */
#define HOST_CLIENT_IP "10.244.255.250"

/*
 * udp-echo: UDP echo on 5353 behind a dual-stack Service (53/UDP), its TCP
 * line server, and a port nothing listens on. echo-v6: echo-v2 behind an
 * IPv6-only ClusterIP.
 */
static const char extra_manifest[] =
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata: {name: udp-echo, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  selector: {matchLabels: {app: udp-echo}}\n"
	"  template:\n"
	"    metadata: {labels: {app: udp-echo}}\n"
	"    spec:\n"
	"      containers:\n"
	"      - name: echo\n"
	"        args: [--udp=5353, --tcp=9090]\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: udp-echo, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  ipFamilyPolicy: RequireDualStack\n"
	"  selector: {app: udp-echo}\n"
	"  ports:\n"
	"  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}\n"
	"  - {name: tcp, port: 9090}\n"
	"  - {name: nolistener, port: 8080}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: echo-v6, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  ipFamilyPolicy: SingleStack\n"
	"  ipFamilies: [IPv6]\n"
	"  selector: {app: echo, version: v2}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n"
	"  - {name: tcp, port: 9090}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: echo-dual, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  ipFamilyPolicy: RequireDualStack\n"
	"  selector: {app: echo}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: echo-v2-dual, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  ipFamilyPolicy: RequireDualStack\n"
	"  selector: {app: echo, version: v2}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: echo-empty, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  selector: {app: nobody}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n";

/* echo:7070 to a Service that does not exist, echo:443 to one without endpoints. */
static const char dead_routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-7070-nowhere, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 7070}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: no-such-service, port: 7070}\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-443-empty, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 443}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-empty, port: 80}\n";

/* The dual-stack Service echo-dual (echo-v1 and echo-v2) to echo-v2 only. */
static const char dual_route[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-dual-to-v2, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo-dual, port: 80}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-v2-dual, port: 80}\n";

/* Service echo port 8080 only goes to echo-v2. */
static const char port_route[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-8080-to-v2, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 8080}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-v2, port: 8080}\n";

/* Producer route echo:80 -> echo-v1; the consumer namespace's own -> echo-v2. */
static const char class_routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-producer, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 80}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-v1, port: 80}\n"
	"---\n"
	CONSUMER_ROUTE_YAML;

/* The conformance Services' ports and what their target ports speak. */
static const struct {
	int port;
	enum mc_proto proto;
	const char *target;	/* the targetPort, as the server reports it */
} mesh_ports[] = {
	{ 80, MC_HTTP, "8080" },	/* --port */
	{ 8080, MC_HTTP, "8080" },	/* --port */
	{ 443, MC_HTTP, "8443" },	/* --port/--tls: plain HTTP here */
	{ 9090, MC_LINE, "9090" },	/* --tcp */
	{ 7070, MC_HTTP, "7070" },	/* --grpc: plain HTTP here */
};

struct mesh {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *v1, *v2, *consumer, *udp;
	struct mc_place at_v1, at_consumer;
	const char *routes;		/* what routes.yaml holds now (NULL: no file) */
};

static bool set_routes(struct mesh *m, const char *routes)
{
	if (m->routes == routes)
		return true;
	if (!ASSERT_OK(agent_env_update(&m->ag, "routes.yaml", routes), "agent applied the routes"))
		return false;
	m->routes = routes;
	return true;
}

/*
 * n connections from `at` to ip:port: every one answered, by one of pods[],
 * with getpeername() == ip:port. counts[i]: how many pods[i] answered.
 */
static void expect_served_on(const struct mc_place *at, const char *ip, int port,
			     enum mc_proto proto, size_t n, const char *const *pods, int nr_pods,
			     size_t *counts, const char *target)
{
	char peer[64];
	struct mc_loop l;
	size_t got, in_set = 0;

	mc_addr_port(peer, sizeof(peer), ip, port);
	test__printf("%s %s, %zu connections:\n", proto >= MC_UDP ? "udp" : "tcp", peer, n);
	got = mc_run(&l, at, ip, port, proto, n);
	ASSERT_EQ(got, n, "every connection made");
	ASSERT_EQ(mc_count_errors(l.res, got), 0, "no connection failed");
	ASSERT_EQ(mc_count_peer(l.res, got, peer), got, "getpeername() is the ClusterIP:port");
	for (int i = 0; i < nr_pods; i++) {
		size_t c = mc_count_pod(l.res, got, pods[i]);

		if (counts)
			counts[i] += c;
		in_set += c;
	}
	ASSERT_EQ(in_set, got, "answered by the expected pods only");
	if (target)
		ASSERT_EQ(mc_count_port(l.res, got, target), got, "answered on the targetPort");
	mc_loop_free(&l);
}

static void expect_served(const struct mc_place *at, const char *ip, int port,
			  enum mc_proto proto, size_t n, const char *const *pods, int nr_pods,
			  size_t *counts)
{
	expect_served_on(at, ip, port, proto, n, pods, nr_pods, counts, NULL);
}

/* 1. No routes: every port of echo, echo-v1 and echo-v2 by ClusterIP. */
static void subtest_every_port(struct mesh *m)
{
	static const char *const names[] = { "echo", "echo-v1", "echo-v2" };
	const char *both[] = { m->v1->name, m->v2->name };
	char ip[INET6_ADDRSTRLEN], peer[64];
	struct mc_loop l;
	size_t got;

	if (!set_routes(m, NULL))
		return;
	for (int s = 0; s < 3; s++) {
		size_t counts[2] = { 0 };

		if (!lab_env_cluster_ip(&m->lab, MESH_NS, names[s], false, ip))
			continue;
		for (size_t p = 0; p < sizeof(mesh_ports) / sizeof(mesh_ports[0]); p++) {
			/* echo: either pod; echo-v1 / echo-v2: their own only. */
			const char *const *pods = s == 2 ? &both[1] : both;

			expect_served_on(&m->at_v1, ip, mesh_ports[p].port, mesh_ports[p].proto, 8,
					 pods, s ? 1 : 2, s ? NULL : counts, mesh_ports[p].target);
		}
		if (!s) {
			/* 40 connections of plain Kubernetes over two pods: both answer. */
			ASSERT_GT(counts[0], 0, "echo: echo-v1 answered some");
			ASSERT_GT(counts[1], 0, "echo: echo-v2 answered some");
		}
	}
	/* A port whose target nobody listens on: the pod refuses, nothing hangs. */
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "udp-echo", false, ip)) {
		mc_addr_port(peer, sizeof(peer), ip, 8080);
		got = mc_run(&l, &m->at_v1, ip, 8080, MC_HTTP, 3);
		ASSERT_EQ(got, 3, "connections tried");
		for (size_t i = 0; i < got; i++)
			ASSERT_EQ(l.res[i].err, -ECONNREFUSED, "no listener: ECONNREFUSED");
		mc_loop_free(&l);
	}
}

/* 2. A parentRef with port: applies to that port only. */
static void subtest_port_scoped(struct mesh *m)
{
	const char *both[] = { m->v1->name, m->v2->name };
	char ip[INET6_ADDRSTRLEN];
	size_t counts[2] = { 0 };

	if (!set_routes(m, port_route) || !lab_env_cluster_ip(&m->lab, MESH_NS, "echo", false, ip))
		return;
	expect_served(&m->at_v1, ip, 8080, MC_HTTP, 30, &both[1], 1, NULL);
	/* The other ports of echo keep plain Kubernetes: both pods. */
	expect_served(&m->at_v1, ip, 80, MC_HTTP, 30, both, 2, counts);
	ASSERT_GT(counts[0], 0, "echo:80 still reaches echo-v1");
	ASSERT_GT(counts[1], 0, "echo:80 still reaches echo-v2");
	memset(counts, 0, sizeof(counts));
	expect_served(&m->at_v1, ip, 9090, MC_LINE, 30, both, 2, counts);
	ASSERT_GT(counts[0], 0, "echo:9090 still reaches echo-v1");
	ASSERT_GT(counts[1], 0, "echo:9090 still reaches echo-v2");
	memset(counts, 0, sizeof(counts));
	expect_served(&m->at_v1, ip, 443, MC_HTTP, 30, both, 2, counts);
	ASSERT_GT(counts[0], 0, "echo:443 still reaches echo-v1");
	ASSERT_GT(counts[1], 0, "echo:443 still reaches echo-v2");
}

/* n connections from `at` to ip:port, each refused by connect() (not left hanging). */
static void expect_refused(const struct mc_place *at, const char *ip, int port, size_t n)
{
	struct mc_loop l;
	size_t got = mc_run(&l, at, ip, port, MC_HTTP, n), refused = 0;

	for (size_t i = 0; i < got; i++)
		refused += l.res[i].err == -ECONNREFUSED && !strcmp(l.res[i].step, "connect");
	ASSERT_EQ(got, n, "connections tried");
	ASSERT_EQ(refused, n, "connect() fails with ECONNREFUSED");
	mc_loop_free(&l);
}

/* n HTTP requests from echo-v1, one connection each, all answered with `status`. */
static void expect_status(struct mesh *m, const char *ip, int port, int n, int status)
{
	char want[64], *out = NULL;
	int ret;

	ret = lab_env_exec(&m->lab, m->v1, &out, "%s client http://%s:%d/ --count=%d --new-conn "
			   "--timeout=5", test_bin("echo"), ip, port, n);
	test__printf("echo client http://%s:%d/ --count=%d -> %d\n%s", ip, port, n, ret,
		     out ? out : "");
	ASSERT_EQ(ret, 0, "every request answered");
	snprintf(want, sizeof(want), "status=%d count=%d\n", status, n);
	ASSERT_HAS_SUBSTR(out, want, "the status the spec requires");
	free(out);
}

/*
 * Issue 4: a route to a backendRef that does not resolve, or a Service with
 * no ready endpoint, fails connect() with ECONNREFUSED; the other ports of
 * the Service are not affected. That is the L4 path (--no-http-engine);
 * with the HTTP engine (the default) the routes' requests are answered as
 * Gateway API requires instead: 500 for a backendRef that does not resolve,
 * 503 for a backend without a ready endpoint. A Service without routes
 * and without endpoints is refused on both.
 */
static void subtest_refused(struct mesh *m)
{
	static const char *const l4_args[] = { "--no-http-engine", NULL };
	const char *both[] = { m->v1->name, m->v2->name };
	char ip[INET6_ADDRSTRLEN], empty[INET6_ADDRSTRLEN];

	if (!set_routes(m, dead_routes) || !lab_env_cluster_ip(&m->lab, MESH_NS, "echo", false, ip) ||
	    !lab_env_cluster_ip(&m->lab, MESH_NS, "echo-empty", false, empty))
		return;
	expect_status(m, ip, 7070, 3, 500);
	expect_status(m, ip, 443, 3, 503);
	expect_served(&m->at_v1, ip, 80, MC_HTTP, 10, both, 2, NULL);
	expect_refused(&m->at_v1, empty, 80, 3);

	agent_env_kill(&m->ag, SIGTERM);
	m->ag.args = l4_args;
	if (!ASSERT_OK(agent_env_start(&m->ag), "gammad run --no-http-engine"))
		return;
	expect_refused(&m->at_v1, ip, 7070, 3);
	expect_refused(&m->at_v1, ip, 443, 3);
	expect_served(&m->at_v1, ip, 80, MC_HTTP, 10, both, 2, NULL);
	expect_refused(&m->at_v1, empty, 80, 3);
}

/* The echo client's own view: exit 0 and a Peer= line with the ClusterIP:port. */
static void echo_client_peer(struct mesh *m, const char *mode, const char *ip, int port,
			     const char *pod)
{
	char peer[64], want[80], *out = NULL;
	int ret;

	mc_addr_port(peer, sizeof(peer), ip, port);
	ret = lab_env_exec(&m->lab, m->v1, &out, "%s client --%s %s --timeout=5", test_bin("echo"),
			   mode, peer);
	test__printf("echo client --%s %s -> %d\n%s", mode, peer, ret, out ? out : "");
	ASSERT_EQ(ret, 0, "echo client exit status");
	snprintf(want, sizeof(want), "Peer=%s\n", peer);
	ASSERT_HAS_SUBSTR(out, want, "Peer= is the ClusterIP:port");
	ASSERT_HAS_SUBSTR(out, pod, "answered by the backend pod");
	free(out);
}

/* 3a. IPv6 ClusterIPs: IPv6-only and dual-stack Services, with and without a route. */
static void subtest_ipv6(struct mesh *m)
{
	const char *v2[] = { m->v2->name }, *udp[] = { m->udp->name };
	const char *both[] = { m->v1->name, m->v2->name };
	char ip[INET6_ADDRSTRLEN];

	if (!set_routes(m, NULL))
		return;
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "echo-v6", true, ip)) {
		expect_served(&m->at_v1, ip, 80, MC_HTTP, 10, v2, 1, NULL);
		expect_served(&m->at_v1, ip, 9090, MC_LINE, 10, v2, 1, NULL);
		echo_client_peer(m, "tcp", ip, 9090, m->v2->name);
	}
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "udp-echo", true, ip))
		expect_served(&m->at_v1, ip, 9090, MC_LINE, 10, udp, 1, NULL);
	/* An IPv6 socket to a v4-mapped IPv4 ClusterIP (what Java clients do). */
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "echo-v2", false, ip)) {
		char mapped[INET6_ADDRSTRLEN + 8];

		snprintf(mapped, sizeof(mapped), "::ffff:%s", ip);
		expect_served(&m->at_v1, mapped, 80, MC_HTTP, 10, v2, 1, NULL);
		expect_served(&m->at_v1, mapped, 9090, MC_LINE, 10, v2, 1, NULL);
	}
	/* Dual stack: no route, both pods by the IPv6 ClusterIP... */
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "echo-dual", true, ip)) {
		size_t counts[2] = { 0 };

		expect_served(&m->at_v1, ip, 80, MC_HTTP, 30, both, 2, counts);
		ASSERT_GT(counts[0], 0, "echo-dual over IPv6 reaches echo-v1");
		ASSERT_GT(counts[1], 0, "echo-dual over IPv6 reaches echo-v2");
	}
	/* ...and a route on the Service applies to both of its ClusterIPs. */
	if (!set_routes(m, dual_route))
		return;
	for (int v6 = 0; v6 < 2; v6++)
		if (lab_env_cluster_ip(&m->lab, MESH_NS, "echo-dual", v6, ip))
			expect_served(&m->at_v1, ip, 80, MC_HTTP, 20, v2, 1, NULL);
}

/* 3b. UDP through a ClusterIP, both families: replies come from the ClusterIP. */
static void subtest_udp(struct mesh *m)
{
	const char *udp[] = { m->udp->name };
	char ip[INET6_ADDRSTRLEN];

	if (!set_routes(m, NULL))
		return;
	for (int v6 = 0; v6 < 2; v6++) {
		if (!lab_env_cluster_ip(&m->lab, MESH_NS, "udp-echo", v6, ip))
			continue;
		expect_served(&m->at_v1, ip, 53, MC_UDP, 10, udp, 1, NULL);
		/* DNS style: sendto() the ClusterIP, the reply's source is the ClusterIP. */
		expect_served(&m->at_v1, ip, 53, MC_UDP_SENDTO, 10, udp, 1, NULL);
		echo_client_peer(m, "udp", ip, 53, m->udp->name);
	}
	/* An IPv6 socket to the v4-mapped IPv4 ClusterIP. */
	if (lab_env_cluster_ip(&m->lab, MESH_NS, "udp-echo", false, ip)) {
		char mapped[INET6_ADDRSTRLEN + 8];

		snprintf(mapped, sizeof(mapped), "::ffff:%s", ip);
		expect_served(&m->at_v1, mapped, 53, MC_UDP, 10, udp, 1, NULL);
		expect_served(&m->at_v1, mapped, 53, MC_UDP_SENDTO, 10, udp, 1, NULL);
	}
}

/* A netns of the test's own, wired to the host like a pod (outside the lab's names). */
struct host_net {
	char netns[32], veth[16];
	bool up;
};

static int host_net_up(struct host_net *h)
{
	char *out = NULL;
	int ret;

	snprintf(h->netns, sizeof(h->netns), "gtest-%d", (int)getpid());
	snprintf(h->veth, sizeof(h->veth), "gtst%d", (int)getpid());
	h->up = true;
	ret = lab_run_capture(&out,
		"set -e; ip netns add %1$s;"
		"ip link add %2$s address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns %1$s;"
		"echo 1 > /proc/sys/net/ipv4/conf/%2$s/proxy_arp;"
		"ip link set %2$s up; ip route add " HOST_CLIENT_IP "/32 dev %2$s;"
		"ip -n %1$s link set lo up; ip -n %1$s addr add " HOST_CLIENT_IP "/32 dev eth0;"
		"ip -n %1$s link set eth0 up;"
		"ip -n %1$s route add 169.254.1.1 dev eth0 scope link;"
		"ip -n %1$s neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent;"
		"ip -n %1$s route add 10.244.0.0/16 via 169.254.1.1 dev eth0 src " HOST_CLIENT_IP ";"
		"ip -n %1$s route add 10.96.0.0/16 via 169.254.1.1 dev eth0 src " HOST_CLIENT_IP,
		h->netns, h->veth);
	if (ret)
		test__printf("host netns setup: %s", out ? out : "");
	free(out);
	return ret;
}

static void host_net_down(struct host_net *h)
{
	char *out = NULL;

	if (!h->up)
		return;
	lab_run_capture(&out, "ip netns del %s; ip link del %s 2>/dev/null; true", h->netns,
			h->veth);
	free(out);
	h->up = false;
}

/* Is the test process itself under the attach cgroup? (It must not be.) */
static bool self_under(const char *cgroup)
{
	char *out = NULL, mine[PATH_MAX] = "", path[PATH_MAX + 32];
	const char *rel;
	bool under;

	lab_run_capture(&out, "awk -F: '$1 == \"0\" { print $3 }' /proc/%d/cgroup", (int)getpid());
	if (out)
		sscanf(out, "%4095s", mine);
	free(out);
	/* The attach cgroup relative to the cgroup2 mount: the lab's root dir name. */
	rel = strrchr(cgroup, '/');
	snprintf(path, sizeof(path), "%s/", rel ? rel : cgroup);
	under = !strncmp(mine, path, strlen(path)) || !strcmp(mine, rel ? rel : cgroup);
	test__printf("test process cgroup %s, attach cgroup %s\n", mine, cgroup);
	return under;
}

/*
 * 6. The attach cgroup decides who is routed. A host process in a non-pod
 * cgroup under it (in a netns of the test's own) is an "all clients" client:
 * the producer route, never the consumer route. The same process outside
 * the attach cgroup is never touched: the ClusterIP stays a blackholed
 * address and a pod IP is reached as itself.
 */
static void subtest_host_processes(struct mesh *m)
{
	const char *v1[] = { m->v1->name }, *v2[] = { m->v2->name };
	char ip[INET6_ADDRSTRLEN], cg[PATH_MAX + 32], peer[64];
	struct host_net h = { 0 };
	struct mc_place inside, outside, outside_short;
	struct mc_loop l;
	size_t got;

	if (!set_routes(m, class_routes) || !lab_env_cluster_ip(&m->lab, MESH_NS, "echo", false, ip))
		return;
	/* The routes are live: each namespace gets its own. */
	expect_served(&m->at_v1, ip, 80, MC_HTTP, 20, v1, 1, NULL);
	expect_served(&m->at_consumer, ip, 80, MC_HTTP, 20, v2, 1, NULL);

	if (!ASSERT_FALSE(self_under(m->ag.cgroup), "test process outside the attach cgroup"))
		return;
	snprintf(cg, sizeof(cg), "%s/gtest-host-%d", m->ag.cgroup, (int)getpid());
	if (!ASSERT_OK(mkdir(cg, 0755), "mkdir a non-pod cgroup under the attach cgroup"))
		return;
	if (!ASSERT_OK(host_net_up(&h), "host client netns"))
		goto out;
	inside = (struct mc_place){ .cgroup = cg, .netns = h.netns };
	outside = (struct mc_place){ .cgroup = NULL, .netns = h.netns };
	/* Where a ClusterIP is not rewritten the host blackholes it: short waits. */
	outside_short = outside;
	outside_short.timeout_ms = 1000;

	test__printf("host process inside the attach cgroup:\n");
	expect_served(&inside, ip, 80, MC_HTTP, 40, v1, 1, NULL);
	/* Not a route's port: plain Kubernetes, still through the ClusterIP. */
	expect_served(&inside, ip, 9090, MC_LINE, 10, (const char *[]){ m->v1->name, m->v2->name },
		      2, NULL);

	/* A pod IP is not a Service: left as it is, also inside. */
	expect_served(&inside, m->v2->ip4, 8080, MC_HTTP, 5, v2, 1, NULL);

	test__printf("host process outside the attach cgroup:\n");
	got = mc_run(&l, &outside_short, ip, 80, MC_HTTP, 3);
	ASSERT_EQ(got, 3, "connections tried");
	for (size_t i = 0; i < got; i++) {
		ASSERT_NEQ(l.res[i].err, 0, "ClusterIP not rewritten (blackholed)");
		ASSERT_STREQ(l.res[i].pod, "", "no pod answered");
	}
	mc_loop_free(&l);
	/* A pod IP is reached as itself, getpeername() untouched. */
	expect_served(&outside, m->v2->ip4, 8080, MC_HTTP, 5, v2, 1, NULL);
	mc_addr_port(peer, sizeof(peer), m->v2->ip4, 8080);
	test__printf("(pod IP %s reached directly)\n", peer);
out:
	host_net_down(&h);
	if (rmdir(cg))
		test__printf("rmdir %s: %s\n", cg, strerror(errno));
}

/* Lab up (lab flags + the conformance base + extra.yaml), agent started; false: cleanup. */
static bool mesh_up(struct mesh *m, const char *flags)
{
	const char *manifests = test_shared_path("gateway-api/conformance/mesh/manifests.yaml");
	char extra[PATH_MAX + 32], args[2 * PATH_MAX + 128], *out = NULL;
	FILE *f;
	int ret;

	if (!manifests) {
		test__skip("no shared gateway-api/conformance/mesh/manifests.yaml");
		return false;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return false;
	}
	if (lab_env_start(&m->lab, NULL))
		return false;
	snprintf(extra, sizeof(extra), "%s/extra.yaml", m->lab.dir);
	f = fopen(extra, "we");
	if (!ASSERT_OK_PTR(f, "write extra.yaml"))
		return false;
	fputs(extra_manifest, f);
	fclose(f);
	snprintf(args, sizeof(args), "%s %s %s", flags, manifests, extra);
	ret = lab_env_up(&m->lab, args, &out);
	if (!ASSERT_EQ(ret, 0, "lab up"))
		test__printf("%s", out ? out : "");
	free(out);
	if (ret)
		return false;
	m->v1 = lab_env_find(&m->lab, MESH_NS, "echo-v1");
	m->v2 = lab_env_find(&m->lab, MESH_NS, "echo-v2");
	m->udp = lab_env_find(&m->lab, MESH_NS, "udp-echo");
	m->consumer = lab_env_find(&m->lab, CONSUMER_NS, "echo-v1");
	if (!ASSERT_OK_PTR(m->v1, "echo-v1 pod") || !ASSERT_OK_PTR(m->v2, "echo-v2 pod") ||
	    !ASSERT_OK_PTR(m->udp, "udp-echo pod") || !ASSERT_OK_PTR(m->consumer, "consumer pod"))
		return false;
	m->at_v1 = (struct mc_place){ .cgroup = m->v1->container_cgroup, .netns = m->v1->netns };
	m->at_consumer = (struct mc_place){ .cgroup = m->consumer->container_cgroup,
					    .netns = m->consumer->netns };
	return ASSERT_OK(agent_env_init(&m->ag, &m->lab), "agent manifests dir") &&
	       ASSERT_OK(agent_env_start(&m->ag), "gammad run: first apply");
}

void test_agent_mesh(void)
{
	struct mesh m = { 0 };

	if (!mesh_up(&m, ""))
		goto cleanup;
	if (test__start_subtest("no_routes_every_port"))
		subtest_every_port(&m);
	if (test__start_subtest("port_scoped_parent_ref"))
		subtest_port_scoped(&m);
	if (test__start_subtest("ipv6_cluster_ip"))
		subtest_ipv6(&m);
	if (test__start_subtest("udp_cluster_ip"))
		subtest_udp(&m);
	if (test__start_subtest("host_processes_by_attach_cgroup"))
		subtest_host_processes(&m);
	if (test__start_subtest("unresolvable_backends_refused"))
		subtest_refused(&m);
cleanup:
	agent_env_fini(&m.ag);
	lab_env_fini(&m.lab);
}

/*
 * The same client classes with kubelet's systemd cgroup driver
 * (kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<UID>.slice):
 * pods get their namespace's routes, host processes the producer route.
 */
void test_agent_mesh_systemd(void)
{
	struct mesh m = { 0 };

	if (!mesh_up(&m, "--systemd-cgroups"))
		goto cleanup;
	ASSERT_HAS_SUBSTR(m.v1->cgroup, ".slice/", "systemd cgroup layout");
	if (test__start_subtest("no_routes_every_port"))
		subtest_every_port(&m);
	if (test__start_subtest("host_processes_by_attach_cgroup"))
		subtest_host_processes(&m);
cleanup:
	agent_env_fini(&m.ag);
	lab_env_fini(&m.lab);
}
