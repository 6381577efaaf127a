// SPDX-License-Identifier: Apache-2.0
/*
 * The TC data path end to end through the agent, on the lab. The lab is up
 * with a mesh of its own (below): Service tce/svc, dual-stack, with an HTTP
 * port split 70/30 between the pods of tce-a and tce-b by an HTTPRoute, a
 * TCP line port and a UDP port on both; namespace tce-fe has a consumer
 * route sending its clients to tce-b only. `gammad run --uplink` runs as a
 * daemon with the hooks on the lab's cgroup root and the TC programs on
 * every pod veth and on the uplink.
 *
 * Clients that connect() never sees:
 *  - processes in a pod's netns but in the test's own cgroup (outside
 *    --cgroup), started with `ip netns exec` or forked into the netns;
 *  - a "remote node": netns gtce<pid>-r behind a veth pair whose host end
 *    (gtce<pid>u) is the --uplink, with 10.244.200.2 and fd00:10:244::c8:2
 *    (pod-range subnets of their own, routed by the host to the uplink).
 *
 *   pods (glab-*) ─ host veths ─┐ host: TC on every pod veth + gtce<pid>u
 *   remote 10.244.200.2 ─ gtce<pid>u ┘   ClusterIPs blackholed by the lab
 *
 * Only the TC path can take them to a ClusterIP (the lab blackholes the
 * Service ranges on the host), so every answer is the TC path's work; the
 * per-CPU counters gammad_tcst_v1 say how many packets it translated.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "tc_maps.h"
#include "lib/lab_env.h"
#include "lib/netns.h"

#define NS		"tce"
#define FE_NS		"tce-fe"
#define VIP4		"10.96.77.10"
#define VIP6		"fd00:10:96::770a"
#define HTTP_PORT	80
#define LINE_PORT	9000
#define UDP_PORT	53
/* the remote node's subnets: inside the pod ranges, so pods' routes reach them */
#define REMOTE4		"10.244.200.2"
#define REMOTE4_GW	"10.244.200.1"
#define REMOTE4_NET	"10.244.200.0/24"
#define REMOTE6		"fd00:10:244::c8:2"
#define REMOTE6_GW	"fd00:10:244::c8:1"
#define REMOTE6_NET	"fd00:10:244::c8:0/112"

static const char manifests_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: " NS "}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " FE_NS "}\n"
#define BACKEND(v)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: tce-" v ", namespace: " NS "}\n"		\
	"spec:\n  replicas: 1\n"					\
	"  selector:\n    matchLabels: {app: tce, version: " v "}\n"	\
	"  template:\n    metadata:\n      labels: {app: tce, version: " v "}\n" \
	"    spec:\n      containers:\n        - name: echo\n"		\
	"          image: example/echo\n"				\
	"          args: [\"--tcp=9090\"]\n"				\
	"          ports:\n"						\
	"            - {name: http, containerPort: 8080}\n"		\
	"            - {name: line, containerPort: 9090}\n"		\
	"            - {name: dns, containerPort: 5353, protocol: UDP}\n"
	BACKEND("a")
	BACKEND("b")
#define CLIENT(name, ns)						\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: " name ", namespace: " ns "}\n"		\
	"spec:\n  selector:\n    matchLabels: {app: " name "}\n"	\
	"  template:\n    metadata:\n      labels: {app: " name "}\n"	\
	"    spec:\n      containers:\n        - name: c\n"		\
	"          image: example/client\n"				\
	"          ports:\n            - {containerPort: 8080}\n"
	CLIENT("client", NS)
	CLIENT("fe-client", FE_NS)
#define SERVICE(name, sel, ip4, ip6, extra)				\
	"---\napiVersion: v1\nkind: Service\n"				\
	"metadata: {name: " name ", namespace: " NS "}\n"		\
	"spec:\n  selector: " sel "\n"					\
	"  ipFamilyPolicy: RequireDualStack\n"				\
	"  clusterIP: " ip4 "\n  clusterIPs: [" ip4 ", \"" ip6 "\"]\n"	\
	"  ports:\n    - {name: http, port: 80, targetPort: http}\n" extra
	SERVICE("svc", "{app: tce}", VIP4, VIP6,
		"    - {name: line, port: 9000, targetPort: 9090}\n"
		"    - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n")
	SERVICE("svc-a", "{app: tce, version: a}", "10.96.77.11", "fd00:10:96::770b", "")
	SERVICE("svc-b", "{app: tce, version: b}", "10.96.77.12", "fd00:10:96::770c", "")
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: split, namespace: " NS "}\n"
	"spec:\n  parentRefs:\n    - {group: \"\", kind: Service, name: svc, port: 80}\n"
	"  rules:\n    - backendRefs:\n"
	"        - {name: svc-a, port: 80, weight: 70}\n"
	"        - {name: svc-b, port: 80, weight: 30}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: canary, namespace: " FE_NS "}\n"
	"spec:\n  parentRefs:\n"
	"    - {group: \"\", kind: Service, name: svc, namespace: " NS ", port: 80}\n"
	"  rules:\n    - backendRefs:\n"
	"        - {name: svc-b, namespace: " NS ", port: 80}\n";

struct tce_env {
	struct lab_env lab;
	bool lab_ok;
	const struct lab_pod_info *a, *b, *client, *fe;
	char pin_dir[64];
	char cg_root[PATH_MAX];
	char log[PATH_MAX];
	pid_t agent;
	char remote[32];	/* netns of the remote node */
	char uplink[IFNAMSIZ];	/* its veth's host end, the --uplink */
	bool remote_up;
};

/* ---- counters ---------------------------------------------------------- */

/* gammad_tcst_v1 summed over CPUs, read from the pin (the agent may be dead). */
static int tc_counters(const char *pin_dir, __u64 out[GAMMAD_TC_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	char path[128];
	__u64 *v;

	memset(out, 0, sizeof(__u64) * GAMMAD_TC_MAX);
	if (ncpu <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, GAMMAD_MAP_TC_STATS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	v = calloc(ncpu, sizeof(*v));
	for (__u32 r = 0; v && r < GAMMAD_TC_MAX && !err; r++) {
		if (bpf_map_lookup_elem(fd, &r, v)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[r] += v[c];
	}
	if (!v)
		err = -ENOMEM;
	free(v);
	close(fd);
	return err;
}

static void print_delta(const __u64 *before, const __u64 *after)
{
	for (int r = 0; r < GAMMAD_TC_MAX; r++)
		if (after[r] != before[r])
			test__printf("  %-14s +%llu\n", dp_tc_reason_name(r),
				     (unsigned long long)(after[r] - before[r]));
}

#define DELTA(r) ((long long)(after[r] - before[r]))

static long pinned_entries(const char *pin_dir, const char *name)
{
	char path[128];
	__u8 key[64], next[64];
	long n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	for (void *k = NULL; !bpf_map_get_next_key(fd, k, next); k = key, n++)
		memcpy(key, next, sizeof(key));
	close(fd);
	return n;
}

/* ---- the agent --------------------------------------------------------- */

static bool alive(pid_t pid)
{
	int st;

	return pid > 0 && waitpid(pid, &st, WNOHANG) == 0;
}

static void agent_log(struct tce_env *e)
{
	char *out = NULL;

	lab_run_capture(&out, "tail -n 60 %s", e->log);
	test__printf("--- gammad log (tail) ---\n%s---\n", out ? out : "");
	free(out);
}

static bool link_pinned(const char *pin_dir, const char *ifname)
{
	char path[PATH_MAX];
	unsigned int idx = if_nametoindex(ifname);
	struct stat st;

	if (!idx)
		return false;
	snprintf(path, sizeof(path), "%s/link_tc_%u", pin_dir, idx);
	return !stat(path, &st);
}

/* Every lab pod's veth and the uplink have their link, every pod IP is in the pod map. */
static bool agent_ready(struct tce_env *e)
{
	for (size_t i = 0; i < e->lab.nr_pods; i++)
		if (!link_pinned(e->pin_dir, e->lab.pods[i].veth))
			return false;
	return link_pinned(e->pin_dir, e->uplink) &&
	       pinned_entries(e->pin_dir, GAMMAD_MAP_POD) >= (long)(2 * e->lab.nr_pods);
}

static int agent_start(struct tce_env *e)
{
	struct timespec ts = { 0, 100 * 1000000L };
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(test_bin("gammad"), "gammad", "run", "--manifests", e->lab.out,
		      "--cgroup", e->cg_root, "--pin-dir", e->pin_dir, "--uplink", e->uplink,
		      "--metrics-addr", "off", "--resync", "2", "-v", (char *)NULL);
		_exit(127);
	}
	e->agent = pid;
	for (int i = 0; i < 300; i++) {	/* 30 s */
		if (!alive(pid)) {
			e->agent = 0;
			test__printf("gammad run exited early\n");
			agent_log(e);
			return -ECHILD;
		}
		if (agent_ready(e))
			return 0;
		nanosleep(&ts, NULL);
	}
	test__printf("gammad run: TC links or pod map not complete after 30 s\n");
	agent_log(e);
	return -ETIMEDOUT;
}

static void agent_kill(struct tce_env *e)
{
	if (e->agent > 0) {
		kill(e->agent, SIGKILL);
		waitpid(e->agent, NULL, 0);
	}
	e->agent = 0;
}

/* ---- the remote node --------------------------------------------------- */

static int remote_up(struct tce_env *e)
{
	int pid = (int)getpid();

	netns_cleanup_stale("gtce");
	xsnprintf(e->remote, sizeof(e->remote), "gtce%d-r", pid);
	xsnprintf(e->uplink, sizeof(e->uplink), "gtce%du", pid);
	if (netns_add(e->remote))
		return -EIO;
	e->remote_up = true;
	if (sys_run("ip netns exec %s sysctl -qw net.ipv6.conf.all.accept_dad=0 "
		    "net.ipv6.conf.default.accept_dad=0", e->remote) ||
	    sys_run("ip link add %s type veth peer name eth0 netns %s", e->uplink, e->remote) ||
	    sys_run("sysctl -qw net.ipv6.conf.%s.accept_dad=0", e->uplink) ||
	    /* host end: one address, no prefix route; the subnet's route is added by hand */
	    sys_run("ip addr add " REMOTE4_GW "/32 dev %s", e->uplink) ||
	    sys_run("ip addr add " REMOTE6_GW "/128 dev %s nodad", e->uplink) ||
	    sys_run("ip link set %s up", e->uplink) ||
	    sys_run("ip route add " REMOTE4_NET " dev %s", e->uplink) ||
	    sys_run("ip -6 route add " REMOTE6_NET " dev %s", e->uplink) ||
	    sys_run("ip -n %s addr add " REMOTE4 "/24 dev eth0", e->remote) ||
	    sys_run("ip -n %s addr add " REMOTE6 "/112 dev eth0 nodad", e->remote) ||
	    sys_run("ip -n %s link set eth0 up", e->remote) ||
	    sys_run("ip -n %s route add 10.96.0.0/16 via " REMOTE4_GW, e->remote) ||
	    sys_run("ip -n %s -6 route add fd00:10:96::/112 via " REMOTE6_GW, e->remote) ||
	    /* another node routes this node's pod CIDR to it */
	    sys_run("ip -n %s route add 10.244.0.0/16 via " REMOTE4_GW, e->remote) ||
	    sys_run("ip -n %s -6 route add fd00:10:244::/64 via " REMOTE6_GW, e->remote))
		return -EIO;
	return 0;
}

static void remote_down(struct tce_env *e)
{
	if (!e->remote_up)
		return;
	/* the routes go with the link, the link with its peer's netns; by hand anyway */
	sys_run("ip route del " REMOTE4_NET " dev %s 2>/dev/null", e->uplink);
	sys_run("ip -6 route del " REMOTE6_NET " dev %s 2>/dev/null", e->uplink);
	sys_run("ip link del %s 2>/dev/null", e->uplink);
	netns_del(e->remote);
	e->remote_up = false;
}

/* ---- clients ----------------------------------------------------------- */

/* Run CMD in netns (test's own cgroup: outside --cgroup); exit status, output in *out. */
static int ns_exec(const char *netns, char **out, const char *cmd)
{
	return lab_run_capture(out, "ip netns exec %s %s", netns, cmd);
}

/*
 * `echo client --count=N --new-conn` to vip:80 from netns (or, pod_exec, in
 * the pod's cgroup through lab exec): answers of tce-a, tce-b, errors.
 */
struct split { int a, b, other, errors, status; };

static struct split http_split(struct tce_env *e, const char *netns,
			       const struct lab_pod_info *pod_exec, const char *vip, int n)
{
	char cmd[512], *out = NULL, *line, *save = NULL;
	bool v6 = strchr(vip, ':');
	struct split s = { .errors = -1 };
	int c;

	snprintf(cmd, sizeof(cmd), "%s client http://%s%s%s:%d/ --count=%d --new-conn --timeout=5",
		 test_bin("echo"), v6 ? "[" : "", vip, v6 ? "]" : "", HTTP_PORT, n);
	s.status = pod_exec ? lab_env_exec(&e->lab, pod_exec, &out, "%s", cmd)
			    : ns_exec(netns, &out, cmd);
	test__printf("%s from %s: %d\n%s\n", cmd, pod_exec ? pod_exec->name : netns, s.status,
		     out ? out : "");
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *cnt = strstr(line, " count=");

		if (!strncmp(line, "pod=", 4) && cnt && sscanf(cnt, " count=%d", &c) == 1) {
			if (!strncmp(line, "pod=tce-a-", 10))
				s.a += c;
			else if (!strncmp(line, "pod=tce-b-", 10))
				s.b += c;
			else
				s.other += c;
		} else if (sscanf(line, "errors=%d", &c) == 1) {
			s.errors = c;
		}
	}
	free(out);
	return s;
}

/* n new connections, 70/30 between tce-a and tce-b within +-tol percent. */
static void expect_split(struct tce_env *e, const char *netns, const char *vip, int n, int tol)
{
	struct split s = http_split(e, netns, NULL, vip, n);

	ASSERT_EQ(s.status, 0, "echo client exit status");
	ASSERT_EQ(s.errors, 0, "every connection answered");
	ASSERT_EQ(s.a + s.b, n, "all answers from tce-a or tce-b");
	ASSERT_EQ(s.other, 0, "no other pod answers");
	ASSERT_GE(s.a, n * (70 - tol) / 100, "tce-a share >= 70% - tol");
	ASSERT_LE(s.a, n * (70 + tol) / 100, "tce-a share <= 70% + tol");
}

/* `echo client --tcp|--udp`: the Peer= line and the answering pod. */
static void expect_stream(const char *netns, const char *vip, bool udp)
{
	char cmd[512], want[96], *out = NULL, *p;
	bool v6 = strchr(vip, ':');
	int ret, port = udp ? UDP_PORT : LINE_PORT;

	snprintf(cmd, sizeof(cmd), "%s client --%s %s%s%s:%d --send TEST --timeout=5",
		 test_bin("echo"), udp ? "udp" : "tcp", v6 ? "[" : "", vip, v6 ? "]" : "", port);
	ret = ns_exec(netns, &out, cmd);
	test__printf("%s from %s: %d\n%s\n", cmd, netns, ret, out ? out : "");
	snprintf(want, sizeof(want), "Peer=%s%s%s:%d", v6 ? "[" : "", vip, v6 ? "]" : "", port);
	ASSERT_EQ(ret, 0, "echo client --tcp/--udp exit status");
	ASSERT_HAS_SUBSTR(out, want, "Peer= is the ClusterIP");
	p = out ? strstr(out, "\"pod\":") : NULL;
	ASSERT_TRUE(p && (strstr(p, "\"tce-a-") || strstr(p, "\"tce-b-")),
		    "answered by a tce pod");
	free(out);
}

/*
 * Unconnected UDP from a forked child in the netns: sendto the ClusterIP,
 * recvfrom tells the reply's real source address. In shared memory.
 */
struct udp_probe {
	char vip[64];
	int count;
	int ok, from_vip, a, b;
	char last_from[64];
};

static int udp_probe_loop(void *arg)
{
	struct udp_probe *u = arg;
	struct sockaddr_storage dst = {}, from;
	bool v6 = strchr(u->vip, ':');
	socklen_t dlen, flen;
	char buf[2048];

	if (v6) {
		struct sockaddr_in6 *s6 = (void *)&dst;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(UDP_PORT);
		inet_pton(AF_INET6, u->vip, &s6->sin6_addr);
		dlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&dst;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(UDP_PORT);
		inet_pton(AF_INET, u->vip, &s4->sin_addr);
		dlen = sizeof(*s4);
	}
	for (int i = 0; i < u->count; i++) {
		/* a new socket, a new source port: a new flow each time */
		int fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (fd < 0)
			return 1;
		if (sendto(fd, "TEST", 4, 0, (struct sockaddr *)&dst, dlen) != 4 ||
		    poll(&pfd, 1, 3000) != 1) {
			close(fd);
			continue;
		}
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		u->ok++;
		if (from.ss_family == AF_INET6) {
			struct sockaddr_in6 *f6 = (void *)&from;

			inet_ntop(AF_INET6, &f6->sin6_addr, u->last_from, sizeof(u->last_from));
			if (ntohs(f6->sin6_port) != UDP_PORT)
				continue;
		} else {
			struct sockaddr_in *f4 = (void *)&from;

			inet_ntop(AF_INET, &f4->sin_addr, u->last_from, sizeof(u->last_from));
			if (ntohs(f4->sin_port) != UDP_PORT)
				continue;
		}
		struct in6_addr want, got;

		inet_pton(v6 ? AF_INET6 : AF_INET, u->vip, &want);
		inet_pton(v6 ? AF_INET6 : AF_INET, u->last_from, &got);
		if (!memcmp(&want, &got, v6 ? 16 : 4))
			u->from_vip++;
		if (strstr(buf, "\"pod\":\"tce-a-"))
			u->a++;
		else if (strstr(buf, "\"pod\":\"tce-b-"))
			u->b++;
	}
	return 0;
}

static void expect_udp(const char *netns, const char *vip, int count)
{
	struct udp_probe *u = shared_alloc(sizeof(*u));

	if (!ASSERT_OK_PTR(u, "shared"))
		return;
	memset(u, 0, sizeof(*u));
	snprintf(u->vip, sizeof(u->vip), "%s", vip);
	u->count = count;
	if (ASSERT_OK(child_run(NULL, netns, udp_probe_loop, u, 60000), "udp probe")) {
		test__printf("udp %s x%d from %s: ok=%d from_vip=%d (last from %s) a=%d b=%d\n",
			     vip, count, netns, u->ok, u->from_vip, u->last_from, u->a, u->b);
		ASSERT_EQ(u->ok, count, "every datagram answered");
		ASSERT_EQ(u->from_vip, count, "reply source is the ClusterIP:53 (recvfrom)");
		ASSERT_EQ(u->a + u->b, count, "answered by the tce pods");
		if (count >= 50) {
			ASSERT_GT(u->a, 0, "tce-a answers");
			ASSERT_GT(u->b, 0, "tce-b answers");
		}
	}
	shared_free(u, sizeof(*u));
}

/* ---- subtests ---------------------------------------------------------- */

/*
 * The test process and its children are outside the lab's cgroup tree
 * (--cgroup): connect() translation never sees them.
 */
static bool outside_attach_cgroup(struct tce_env *e)
{
	char line[PATH_MAX], *rel = strstr(e->cg_root, "/gammad-lab");
	bool outside = true;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && rel && fgets(line, sizeof(line), f))
		if (strstr(line, "/gammad-lab"))
			outside = false;
	if (f)
		fclose(f);
	return f && outside;
}

static void subtest_unmanaged(struct tce_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];

	if (!ASSERT_TRUE(outside_attach_cgroup(e), "test process outside --cgroup"))
		return;
	if (!ASSERT_OK(tc_counters(e->pin_dir, before), "counters"))
		return;
	expect_split(e, e->client->netns, VIP4, 1000, 5);
	expect_stream(e->client->netns, VIP4, false);
	expect_stream(e->client->netns, VIP4, true);
	expect_udp(e->client->netns, VIP4, 100);
	if (!ASSERT_OK(tc_counters(e->pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_NEW_FLOW), 1102, "a conntrack flow per connection");
	/* SYN, ACK, request, FIN, ... : several packets each way per connection */
	ASSERT_GE(DELTA(GAMMAD_TC_XLATE), 3 * 1000, "ClusterIP -> endpoint");
	ASSERT_GE(DELTA(GAMMAD_TC_REV_XLATE), 3 * 1000, "endpoint -> ClusterIP");
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_PEER), 1000, "delivered into the pods' netns");
	ASSERT_EQ(DELTA(GAMMAD_TC_NO_ENDPOINT), 0, "no miss");
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_FULL), 0, "conntrack not full");
}

/* The consumer route of tce-fe applies on the TC path: pod IP -> namespace, from gammad_pod_v1. */
static void subtest_consumer(struct tce_env *e)
{
	struct split s = http_split(e, e->fe->netns, NULL, VIP4, 100);

	ASSERT_EQ(s.errors, 0, "every connection answered");
	ASSERT_EQ(s.b, 100, "tce-fe clients all to tce-b (consumer route)");
}

static void subtest_remote(struct tce_env *e, bool v6)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	const char *vip = v6 ? VIP6 : VIP4;

	if (!ASSERT_OK(tc_counters(e->pin_dir, before), "counters"))
		return;
	expect_split(e, e->remote, vip, 1000, 5);
	expect_stream(e->remote, vip, false);
	expect_stream(e->remote, vip, true);
	expect_udp(e->remote, vip, 100);
	if (!ASSERT_OK(tc_counters(e->pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_NEW_FLOW), 1102, "a flow per connection");
	ASSERT_GE(DELTA(GAMMAD_TC_XLATE), 3 * 1000, "ClusterIP -> endpoint");
	ASSERT_GE(DELTA(GAMMAD_TC_REV_XLATE), 3 * 1000, "endpoint -> ClusterIP");
	/* requests into the pods, replies out through the uplink (not a local pod) */
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_PEER), 3 * 1000, "requests into the pods' netns");
	ASSERT_GE(DELTA(GAMMAD_TC_REDIR_NEIGH), 3 * 1000, "replies through the uplink");
	ASSERT_EQ(DELTA(GAMMAD_TC_NO_ENDPOINT), 0, "no miss");
	ASSERT_EQ(DELTA(GAMMAD_TC_REWRITE_ERR), 0, "no rewrite error");
}

/* A client inside --cgroup is rewritten at connect(): TC sees only pod IPs. */
static void subtest_connect_time(struct tce_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	struct split s;

	if (!ASSERT_OK(tc_counters(e->pin_dir, before), "counters"))
		return;
	s = http_split(e, NULL, e->client, VIP4, 200);
	ASSERT_EQ(s.errors, 0, "every connection answered");
	ASSERT_EQ(s.a + s.b, 200, "answered by tce-a or tce-b");
	s = http_split(e, NULL, e->client, VIP6, 100);
	ASSERT_EQ(s.errors, 0, "every IPv6 connection answered");
	ASSERT_EQ(s.a + s.b, 100, "answered by tce-a or tce-b (IPv6)");
	if (!ASSERT_OK(tc_counters(e->pin_dir, after), "counters"))
		return;
	print_delta(before, after);
	/* the TC programs saw these packets (pod to pod) and passed them */
	ASSERT_GE(DELTA(GAMMAD_TC_PASS), 300, "packets seen and passed");
	ASSERT_EQ(DELTA(GAMMAD_TC_NEW_FLOW), 0, "no TC flow");
	ASSERT_EQ(DELTA(GAMMAD_TC_XLATE), 0, "no TC translation");
	ASSERT_EQ(DELTA(GAMMAD_TC_REV_XLATE), 0, "no TC reverse translation");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "no mid-flow ClusterIP packet");
}

/*
 * A long-lived TCP connection through the TC path: PING/PONG on the line
 * port every 50 ms until told to stop, counting exchanges. Shared memory.
 */
struct pinger {
	char vip[64];
	volatile int stop;
	volatile int connected, pongs, errors;
	char pod[64];
};

static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, timeout_ms) != 1)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return r ? -errno : -ECONNRESET;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return 0;
}

static int pinger_loop(void *arg)
{
	struct pinger *p = arg;
	struct sockaddr_storage dst = {};
	struct timespec ts = { 0, 50 * 1000000L };
	bool v6 = strchr(p->vip, ':');
	socklen_t dlen;
	char buf[512];
	int fd;

	if (v6) {
		struct sockaddr_in6 *s6 = (void *)&dst;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(LINE_PORT);
		inet_pton(AF_INET6, p->vip, &s6->sin6_addr);
		dlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&dst;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(LINE_PORT);
		inet_pton(AF_INET, p->vip, &s4->sin_addr);
		dlen = sizeof(*s4);
	}
	fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&dst, dlen))
		return 1;
	if (read_line(fd, buf, sizeof(buf), 3000) || write(fd, "TEST\n", 5) != 5 ||
	    read_line(fd, buf, sizeof(buf), 3000))
		return 2;
	if (strstr(buf, "\"pod\":\""))
		sscanf(strstr(buf, "\"pod\":\"") + 7, "%63[^\"]", p->pod);
	p->connected = 1;
	while (!p->stop) {
		if (write(fd, "PING\n", 5) != 5 || read_line(fd, buf, sizeof(buf), 3000) ||
		    strcmp(buf, "PONG")) {
			p->errors++;
			if (p->errors > 20)
				return 3;
		} else {
			p->pongs++;
		}
		nanosleep(&ts, NULL);
	}
	close(fd);
	return 0;
}

static bool wait_pongs(struct pinger *p, int more, int timeout_ms)
{
	struct timespec ts = { 0, 10 * 1000000L };
	int target = p->pongs + more;

	for (int t = 0; t < timeout_ms / 10; t++) {
		if (p->pongs >= target)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static void subtest_kill9(struct tce_env *e)
{
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	struct pinger *p4 = shared_alloc(sizeof(*p4)), *p6 = shared_alloc(sizeof(*p6));
	pid_t c4 = -1, c6 = -1;
	int errs;

	if (!ASSERT_OK_PTR(p4, "shared") || !ASSERT_OK_PTR(p6, "shared"))
		goto out;
	memset(p4, 0, sizeof(*p4));
	memset(p6, 0, sizeof(*p6));
	snprintf(p4->vip, sizeof(p4->vip), "%s", VIP4);
	snprintf(p6->vip, sizeof(p6->vip), "%s", VIP6);
	c4 = child_start(NULL, e->client->netns, pinger_loop, p4);
	c6 = child_start(NULL, e->remote, pinger_loop, p6);
	if (!ASSERT_GT(c4, 0, "pinger") || !ASSERT_GT(c6, 0, "pinger"))
		goto out;
	if (!ASSERT_TRUE(wait_pongs(p4, 10, 10000), "IPv4 long-lived connection exchanges") ||
	    !ASSERT_TRUE(wait_pongs(p6, 10, 10000), "IPv6 long-lived connection (remote) exchanges"))
		goto out;
	test__printf("long-lived: %s (%d pongs), %s from remote (%d pongs)\n", p4->pod, p4->pongs,
		     p6->pod, p6->pongs);
	if (!ASSERT_OK(tc_counters(e->pin_dir, before), "counters"))
		goto out;

	agent_kill(e);
	errs = p4->errors + p6->errors;
	/* the connections go on: 40 more exchanges each (2 s), no errors */
	ASSERT_TRUE(wait_pongs(p4, 40, 10000), "IPv4 connection goes on after kill -9");
	ASSERT_TRUE(wait_pongs(p6, 40, 10000), "IPv6 connection goes on after kill -9");
	ASSERT_EQ(p4->errors + p6->errors, errs, "no exchange lost");
	/* and new flows, from pods and from the remote node */
	expect_split(e, e->client->netns, VIP4, 200, 10);
	expect_split(e, e->client->netns, VIP6, 200, 10);
	expect_split(e, e->remote, VIP4, 200, 10);
	expect_udp(e->client->netns, VIP4, 20);
	expect_udp(e->remote, VIP6, 20);
	ASSERT_TRUE(link_pinned(e->pin_dir, e->client->veth), "pod veth link still pinned");
	ASSERT_TRUE(link_pinned(e->pin_dir, e->uplink), "uplink link still pinned");
	ASSERT_TRUE(wait_pongs(p4, 5, 5000), "IPv4 connection still alive at the end");
	ASSERT_TRUE(wait_pongs(p6, 5, 5000), "IPv6 connection still alive at the end");
	if (!ASSERT_OK(tc_counters(e->pin_dir, after), "counters"))
		goto out;
	print_delta(before, after);
	ASSERT_GE(DELTA(GAMMAD_TC_NEW_FLOW), 600 + 40, "new flows after the kill");
	ASSERT_GE(DELTA(GAMMAD_TC_XLATE), 80, "translation after the kill");
	ASSERT_GE(DELTA(GAMMAD_TC_REV_XLATE), 80, "reverse translation after the kill");
	ASSERT_EQ(DELTA(GAMMAD_TC_CT_MISS), 0, "established flows kept their entries");
out:
	if (p4)
		p4->stop = 1;
	if (p6)
		p6->stop = 1;
	if (c4 > 0)
		ASSERT_EQ(child_wait(c4, 5000), 0, "IPv4 pinger exit");
	if (c6 > 0)
		ASSERT_EQ(child_wait(c6, 5000), 0, "IPv6 pinger exit");
	if (p4)
		shared_free(p4, sizeof(*p4));
	if (p6)
		shared_free(p6, sizeof(*p6));
}

/* ---- setup ------------------------------------------------------------- */

static int env_setup(struct tce_env *e)
{
	char path[PATH_MAX], *out = NULL, *k;
	FILE *f;
	int ret;

	snprintf(e->pin_dir, sizeof(e->pin_dir), "/sys/fs/bpf/gammad-tce-%d", (int)getpid());
	snprintf(path, sizeof(path), "%.*s/tce.yaml", PATH_MAX - 16, e->lab.dir);
	snprintf(e->log, sizeof(e->log), "%.*s/gammad.log", PATH_MAX - 16, e->lab.dir);
	f = fopen(path, "we");
	if (!ASSERT_OK_PTR(f, "manifest file"))
		return -1;
	fputs(manifests_yaml, f);
	fclose(f);
	ret = lab_env_up(&e->lab, path, &out);
	if (!ASSERT_EQ(ret, 0, "lab up")) {
		test__printf("%s", out ? out : "");
		free(out);
		return -1;
	}
	free(out);
	e->a = lab_env_find(&e->lab, NS, "tce-a");
	e->b = lab_env_find(&e->lab, NS, "tce-b");
	e->client = lab_env_find(&e->lab, NS, "client");
	e->fe = lab_env_find(&e->lab, FE_NS, "fe-client");
	if (!ASSERT_OK_PTR(e->a, "tce-a pod") || !ASSERT_OK_PTR(e->b, "tce-b pod") ||
	    !ASSERT_OK_PTR(e->client, "client pod") || !ASSERT_OK_PTR(e->fe, "fe-client pod"))
		return -1;
	snprintf(e->cg_root, sizeof(e->cg_root), "%s", e->client->cgroup);
	k = strstr(e->cg_root, "/kubepods");
	if (!ASSERT_OK_PTR(k, "kubepods in the pod cgroup"))
		return -1;
	*k = 0;
	if (!ASSERT_OK(remote_up(e), "remote node"))
		return -1;
	/* before the agent: the ClusterIP leads nowhere, from a pod or the remote node */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "%s client --tcp " VIP4 ":9000 --timeout=1",
			 test_bin("echo"));
		ASSERT_NEQ(ns_exec(e->client->netns, &out, cmd), 0, "no Service before the agent");
		free(out);
		out = NULL;
		ASSERT_NEQ(ns_exec(e->remote, &out, cmd), 0,
			   "no Service from the remote node before the agent");
		free(out);
		out = NULL;
		/* the remote node and the pods reach each other (host routes) */
		snprintf(cmd, sizeof(cmd), "%s client --tcp %s:9090 --timeout=2", test_bin("echo"),
			 e->a->ip4);
		ASSERT_EQ(ns_exec(e->remote, &out, cmd), 0, "remote node reaches a pod IP");
		free(out);
		out = NULL;
	}
	if (!ASSERT_OK(agent_start(e), "gammad run --uplink (TC links and pod map)"))
		return -1;
	out = NULL;
	lab_run_capture(&out, "grep -c '^tc:\\|[] ]tc:' %s", e->log);
	test__printf("agent log lines with tc: %s", out ? out : "");
	free(out);
	return 0;
}

static void env_teardown(struct tce_env *e)
{
	char *out = NULL;

	if (e->agent > 0 && env.verbose)
		agent_log(e);
	agent_kill(e);
	if (e->pin_dir[0]) {
		int ret = lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"),
					  e->pin_dir);

		if (ret)
			test__printf("gammad uninstall: %d\n%s", ret, out ? out : "");
		free(out);
		out = NULL;
		/* nothing of ours left pinned */
		lab_run_capture(&out, "rm -rf %s", e->pin_dir);
		free(out);
	}
	remote_down(e);
	lab_env_fini(&e->lab);
}

void test_agent_tc(void)
{
	struct tce_env e = {};
	int ret;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (access(test_bin("echo"), X_OK) || access(test_bin("lab"), X_OK) ||
	    access(test_bin("gammad"), X_OK)) {
		test__skip("build/echo, build/lab or build/gammad not built");
		return;
	}
	ret = lab_env_init(&e.lab);
	if (ret == -EBUSY) {
		test__skip("another lab is up on this machine");
		return;
	}
	if (!ASSERT_OK(ret, "lab_env_init"))
		return;
	if (env_setup(&e))
		goto cleanup;

	if (test__start_subtest("unmanaged_client_split_70_30"))
		subtest_unmanaged(&e);
	if (test__start_subtest("unmanaged_consumer_route"))
		subtest_consumer(&e);
	if (test__start_subtest("remote_node_ipv4"))
		subtest_remote(&e, false);
	if (test__start_subtest("remote_node_ipv6"))
		subtest_remote(&e, true);
	if (test__start_subtest("unmanaged_client_ipv6")) {
		expect_split(&e, e.client->netns, VIP6, 1000, 5);
		expect_stream(e.client->netns, VIP6, false);
		expect_stream(e.client->netns, VIP6, true);
		expect_udp(e.client->netns, VIP6, 100);
	}
	if (test__start_subtest("connect_time_not_translated_twice"))
		subtest_connect_time(&e);
	/* last: kills the agent */
	if (test__start_subtest("kill9_existing_and_new_flows"))
		subtest_kill9(&e);
cleanup:
	env_teardown(&e);
}
