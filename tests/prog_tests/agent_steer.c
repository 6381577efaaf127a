// SPDX-License-Identifier: Apache-2.0
/*
 * Steering to the HTTP engine (issue 12), through the real lab and
 * `gammad run` (the engine is on by default, no flag): a pod's connect()
 * to a Service port whose
 * routes for the pod's namespace have HTTP rules lands on the agent's
 * listener on loopback in the pod's own netns; the agent finds the origin
 * (ClusterIP:port) in gammad_origdst_v1 and hands the connection to the
 * engine with the client's class. What only the engine can do tells a
 * steered connection from an L4 one: every HTTPRoute here adds a response
 * header X-Class naming the class whose rules answered.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "test_progs.h"
#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "lib/netns.h"

#define ENGINE_PORT 15006
#define PROBE_TIMEOUT_MS 5000
/* The churn pod: not in the lab, made by the test (uid, netns, cgroup). */
#define CHURN_UID "5eed0000-0000-4000-8000-00000000c0de"
#define CHURN_NAME "churn-pod"

/*
 * echo-v6: echo-v2 behind an IPv6-only ClusterIP. The churn pod: a Pod the
 * agent knows from the manifests whose cgroup the test makes and removes.
 */
static const char extra_manifest[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: echo-v6, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  ipFamilyPolicy: SingleStack\n"
	"  ipFamilies: [IPv6]\n"
	"  selector: {app: echo, version: v2}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080}\n";

static const char churn_pod_yaml[] =
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: " CHURN_NAME ", namespace: " MESH_NS ", uid: " CHURN_UID "}\n"
	"spec:\n"
	"  containers: [{name: c, image: none}]\n"
	"status: {phase: Running}\n";

/*
 * echo:8080: producer HTTPRoute (steered for the default class); the
 * consumer namespace's TCPRoute on it (L4 for that class). echo:80: only the
 * consumer namespace's HTTPRoute (steered for it, L4 for everyone else).
 * echo:9090: no route (L4). echo-v6:80: producer HTTPRoute.
 */
static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-8080-http, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 8080}\n"
	"  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /old}}]\n"
	"    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 301}}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /}}]\n"
	"    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Class, value: producer}]}}]\n"
	"    backendRefs:\n"
	"    - {name: echo-v1, port: 8080}\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1alpha2\n"
	"kind: TCPRoute\n"
	"metadata: {name: echo-8080-tcp, namespace: " CONSUMER_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, namespace: " MESH_NS ", port: 8080}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-v2, namespace: " MESH_NS ", port: 8080}\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1beta1\n"
	"kind: ReferenceGrant\n"
	"metadata: {name: consumer-tcp-to-echo, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  from:\n"
	"  - {group: gateway.networking.k8s.io, kind: TCPRoute, namespace: " CONSUMER_NS "}\n"
	"  to:\n"
	"  - {group: \"\", kind: Service}\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-v6-http, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo-v6, port: 80}\n"
	"  rules:\n"
	"  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Class, value: v6}]}}]\n"
	"    backendRefs:\n"
	"    - {name: echo-v2, port: 80}\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-consumer, namespace: " CONSUMER_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, namespace: " MESH_NS ", port: 80}\n"
	"  rules:\n"
	"  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Class, value: consumer}]}}]\n"
	"    backendRefs:\n"
	"    - {name: echo-v2, namespace: " MESH_NS ", port: 80}\n";

struct steer_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *v1, *v2, *consumer;
	struct mc_place at_v1, at_consumer;
	char echo4[INET6_ADDRSTRLEN], echo6[INET6_ADDRSTRLEN];
};

/* What a client saw on one steered (or not) connection. */
struct probe {
	int err;		/* 0 or -errno of `step` */
	char step[16];
	char peer[64];		/* getpeername(), "ip:port" / "[ip]:port" */
	char line[512];		/* first line the server side wrote */
	char up[1024];		/* http: the response head's lines, '|' after each */
};

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	}
}

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, PROBE_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return r ? -errno : -ECONNRESET;
		if (buf[n] == '\n')
			break;
		if (buf[n] != '\r')
			n++;
	}
	buf[n] = 0;
	return 0;
}

/* The request target of `http` probes without one of their own. */
static const char *probe_target = "/";

#define FAIL(s) do { p->err = -errno; snprintf(p->step, sizeof(p->step), "%s", s); \
		     goto out; } while (0)

/*
 * In a child placed at `at`: connect to ip:port, getpeername, read a line
 * (line protocol: the greeting; `http`: send a GET first, read the status
 * line and the head). With `upstream` (a request target), GET it, write a
 * first probe to res_fd and wait for go_fd before reading the answer.
 */
static void probe_child(const struct mc_place *at, const char *ip, int port, bool http,
			const char *upstream, int res_fd, int go_fd)
{
	struct probe pr = { 0 }, *p = &pr;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct timeval tv = { .tv_sec = PROBE_TIMEOUT_MS / 1000 };
	int fd = -1, r;
	char c;

	if (mc_place_self(at))
		FAIL("place");
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		FAIL("socket");
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len))
		FAIL("connect");
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		FAIL("getpeername");
	fmt_addr(&ss, p->peer, sizeof(p->peer));
	if (http && dprintf(fd, "GET %s HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n",
			    upstream ? upstream : probe_target) < 0)
		FAIL("send");
	if (upstream) {
		/* the request is under way (a slow one): the parent looks at the backend */
		(void)!write(res_fd, p, sizeof(*p));
		(void)!read(go_fd, &c, 1);
	}
	r = read_line(fd, p->line, sizeof(p->line));
	if (r) {
		errno = -r;
		FAIL("read");
	}
	for (size_t n = 0; http && n + 2 < sizeof(p->up);) {
		char l[256];

		r = read_line(fd, l, sizeof(l));
		if (r || !l[0])
			break;
		n += (size_t)snprintf(p->up + n, sizeof(p->up) - n, "%s|", l);
	}
out:
	(void)!write(res_fd, p, sizeof(*p));
	if (fd >= 0)
		close(fd);
	_exit(0);
}

struct probe_run {
	pid_t pid;
	int res_fd, go_fd;
};

static int probe_start(struct probe_run *run, const struct mc_place *at, const char *ip,
		       int port, bool http, const char *upstream)
{
	int res[2], go[2];

	if (pipe2(res, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -errno;
	run->pid = fork();
	if (run->pid < 0)
		return -errno;
	if (!run->pid) {
		close(res[0]);
		close(go[1]);
		probe_child(at, ip, port, http, upstream, res[1], go[0]);
	}
	close(res[1]);
	close(go[0]);
	run->res_fd = res[0];
	run->go_fd = go[1];
	return 0;
}

static int probe_result(struct probe_run *run, struct probe *p)
{
	struct pollfd pf = { .fd = run->res_fd, .events = POLLIN };

	memset(p, 0, sizeof(*p));
	if (poll(&pf, 1, 3 * PROBE_TIMEOUT_MS) <= 0 ||
	    read(run->res_fd, p, sizeof(*p)) != sizeof(*p)) {
		snprintf(p->step, sizeof(p->step), "no result");
		p->err = -ETIMEDOUT;
		return -ETIMEDOUT;
	}
	return 0;
}

static void probe_finish(struct probe_run *run)
{
	close(run->go_fd);
	close(run->res_fd);
	if (run->pid > 0) {
		kill(run->pid, SIGKILL);
		waitpid(run->pid, NULL, 0);
	}
	run->pid = 0;
}

/* One connection; the probe printed for the log (unless quiet and fine). */
static struct probe probe_q(const struct mc_place *at, const char *ip, int port, bool http,
			    bool quiet)
{
	struct probe_run run;
	struct probe p = { 0 };

	if (probe_start(&run, at, ip, port, http, NULL)) {
		p.err = -errno;
		snprintf(p.step, sizeof(p.step), "fork");
		return p;
	}
	probe_result(&run, &p);
	probe_finish(&run);
	if (!quiet || p.err)
		test__printf("%s:%d -> err %d (%s) peer %s line \"%s\"\n", ip, port, p.err,
			     p.step, p.peer, p.line);
	return p;
}

static struct probe probe(const struct mc_place *at, const char *ip, int port, bool http)
{
	return probe_q(at, ip, port, http, false);
}

/* Listening sockets on the engine port in netns `ns` ("ss -Hltn"). */
static int engine_listeners(const char *ns)
{
	char *out = NULL;
	int n = 0;

	if (lab_run_capture(&out, "ip netns exec %s ss -Hltn 'sport = :%d'", ns, ENGINE_PORT))
		n = -1;
	for (char *s = out; n >= 0 && s && (s = strstr(s, "LISTEN")); s++)
		n++;
	free(out);
	return n;
}

/*
 * dial: the address the client dials (a v4-mapped one for ip's IPv4 Service).
 * Steered: the engine answered with the X-Class of the class's rules.
 */
static void expect_steered_as(const struct mc_place *at, const char *dial, int port,
			      const char *cls)
{
	char want[64], peer[64];
	struct probe p = probe(at, dial, port, true);

	mc_addr_port(peer, sizeof(peer), dial, port);
	snprintf(want, sizeof(want), "|X-Class: %s|", cls);
	test__printf("  head: %s\n", p.up);
	ASSERT_EQ(p.err, 0, "steered connection made");
	ASSERT_STREQ(p.peer, peer, "getpeername() is the ClusterIP:port");
	ASSERT_STREQ(p.line, "HTTP/1.1 200 OK", "answered");
	ASSERT_HAS_SUBSTR(p.up, want, "the engine used the client's class");
}

static void expect_steered(const struct mc_place *at, const char *ip, int port, const char *cls)
{
	expect_steered_as(at, ip, port, cls);
}

static void expect_l4_http(const struct mc_place *at, const char *ip, int port)
{
	char peer[64];
	struct probe p = probe(at, ip, port, true);

	mc_addr_port(peer, sizeof(peer), ip, port);
	ASSERT_EQ(p.err, 0, "L4 connection made");
	ASSERT_STREQ(p.peer, peer, "getpeername() is the ClusterIP:port");
	ASSERT_STREQ(p.line, "HTTP/1.1 200 OK", "a backend answered");
	ASSERT_FALSE(strstr(p.up, "X-Class"), "not through the engine");
}

/* 1. Every managed pod has the listeners; HTTP ports steered, others L4. */
static void subtest_steered(struct steer_env *e)
{
	struct probe p;

	for (size_t i = 0; i < e->lab.nr_pods; i++)
		ASSERT_EQ(engine_listeners(e->lab.pods[i].netns), 2,
			  "IPv4 and IPv6 listeners in the pod's netns");
	/* default class, producer HTTPRoute */
	expect_steered(&e->at_v1, e->echo4, 8080, "producer");
	/* no route for the default class on echo:80: L4 */
	expect_l4_http(&e->at_v1, e->echo4, 80);
	/* the line protocol port has no route at all: L4, the server's greeting */
	p = probe(&e->at_v1, e->echo4, 9090, false);
	ASSERT_EQ(p.err, 0, "echo:9090 connection");
	ASSERT_STREQ(p.line, "Gateway API Test TCP Server", "echo:9090 answered by a backend");
	ASSERT_EQ(pinned_entries(e->ag.pin_dir, GAMMAD_MAP_ORIGDST), 0,
		  "origdst entries taken on accept");
}

/* 2. Consumer classes: with HTTP rules steered (its own namespace), with a TCPRoute L4. */
static void subtest_consumer(struct steer_env *e)
{
	expect_steered(&e->at_consumer, e->echo4, 80, "consumer");
	expect_l4_http(&e->at_consumer, e->echo4, 8080);
}

/*
 * 3. IPv6 ClusterIP: steered to [::1], origin and getpeername in IPv6. An
 * IPv6 socket dialing the IPv4 ClusterIP v4-mapped lands on the IPv4
 * listener; its origin is the IPv4 ClusterIP, getpeername() the mapped one.
 */
static void subtest_ipv6(struct steer_env *e)
{
	char mapped[INET6_ADDRSTRLEN + 8];

	expect_steered(&e->at_v1, e->echo6, 80, "v6");
	snprintf(mapped, sizeof(mapped), "::ffff:%s", e->echo4);
	expect_steered_as(&e->at_v1, mapped, 8080, "producer");
}

/* 4. Many connections: every one gets its own origin; the origin map stays empty. */
static void subtest_no_leak(struct steer_env *e)
{
	int ok = 0;

	for (int i = 0; i < 50; i++) {
		struct probe p = probe_q(i & 1 ? &e->at_consumer : &e->at_v1, e->echo4,
					 i & 1 ? 80 : 8080, true, true);

		ok += !p.err && strstr(p.up, i & 1 ? "X-Class: consumer|" : "X-Class: producer|");
	}
	ASSERT_EQ(ok, 50, "50 steered connections, each with its class");
	ASSERT_EQ(pinned_entries(e->ag.pin_dir, GAMMAD_MAP_ORIGDST), 0,
		  "no origdst entry left behind");
}

/*
 * 5. upstream_socket: made in the client pod's netns, the backend sees the
 * pod's IP. A slow request (echo's ?delay) keeps the upstream connection
 * open while ss looks at the backend.
 */
static void subtest_upstream_source(struct steer_env *e)
{
	struct mc_place at_v2 = { .cgroup = e->v2->container_cgroup, .netns = e->v2->netns };
	struct probe_run run;
	struct probe p;
	char *out = NULL;

	/* echo-v2 asks, the route sends it to echo-v1 */
	if (!ASSERT_OK(probe_start(&run, &at_v2, e->echo4, 8080, true, "/?delay=2s"),
		       "probe"))
		return;
	probe_result(&run, &p);
	ASSERT_EQ(p.err, 0, "steered, request sent");
	lab_run_capture(&out, "ip netns exec %s ss -Htn state established 'sport = :8080'",
			e->v1->netns);
	test__printf("ss in %s: %s", e->v1->netns, out ? out : "");
	ASSERT_HAS_SUBSTR(out ? out : "", e->v2->ip4, "backend sees the client pod's IP");
	ASSERT_FALSE(out && strstr(out, "127.0.0.1"), "not the engine's loopback");
	free(out);
	(void)!write(run.go_fd, "g", 1);
	probe_result(&run, &p);
	ASSERT_STREQ(p.line, "HTTP/1.1 200 OK", "slow request answered");
	probe_finish(&run);
}

/* The netns cookie of a named netns, as the programs see it. */
static int netns_cookie(const char *ns, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);
	int prev, fd, err = 0;

	prev = netns_enter(ns);
	if (prev < 0)
		return prev;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, cookie, &len))
		err = -errno;
	if (fd >= 0)
		close(fd);
	netns_leave(prev);
	return err;
}

/*
 * 6. Only a netns the agent listens in is steered: with echo-v1's netns taken
 * out of gammad_engns_v1 its connections keep the L4 path (a client the agent
 * has no listener for must not meet a closed port); put back, steered again.
 */
static void subtest_unlisted_netns_l4(struct steer_env *e)
{
	struct gammad_engns_val v = { 0 };
	char path[128];
	uint64_t cookie;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", e->ag.pin_dir, GAMMAD_MAP_ENGINE_NS);
	fd = bpf_obj_get(path);
	if (!ASSERT_GE(fd, 0, "pinned engine netns map") ||
	    !ASSERT_OK(netns_cookie(e->v1->netns, &cookie), "echo-v1's netns cookie"))
		goto out;
	if (!ASSERT_OK(bpf_map_delete_elem(fd, &cookie), "echo-v1's netns was listed"))
		goto out;
	expect_l4_http(&e->at_v1, e->echo4, 8080);
	ASSERT_OK(bpf_map_update_elem(fd, &cookie, &v, BPF_ANY), "listed again");
	expect_steered(&e->at_v1, e->echo4, 8080, "producer");
out:
	if (fd >= 0)
		close(fd);
}

/*
 * 7. A host process in the attach cgroup, in the agent's own netns: the
 * agent's own listener takes it: the producer routes (it has no namespace).
 */
static void subtest_host_process(struct steer_env *e)
{
	char cg[PATH_MAX + 32];
	struct mc_place at;
	struct probe p;

	snprintf(cg, sizeof(cg), "%s/gdt%d-host", e->ag.cgroup, getpid());
	if (!ASSERT_OK(mkdir(cg, 0755), "host client cgroup"))
		return;
	at = (struct mc_place){ .cgroup = cg };
	/*
	 * The lab's pods have no route back to the host (no default route),
	 * so no upstream from the host: a rule the engine answers itself.
	 */
	probe_target = "/old/x";
	p = probe(&at, e->echo4, 8080, true);
	probe_target = "/";
	test__printf("  head: %s\n", p.up);
	ASSERT_EQ(p.err, 0, "steered connection made");
	ASSERT_STREQ(p.line, "HTTP/1.1 301 Moved Permanently", "the engine redirected");
	ASSERT_HAS_SUBSTR(p.up, "/new/x|", "with the producer rule's Location");
	if (rmdir(cg))
		test__printf("rmdir %s: %s\n", cg, strerror(errno));
}

/* A process of the churn pod: in its cgroup c0 and its netns, until killed. */
static pid_t churn_process(const char *cg, const char *ns)
{
	struct mc_place at = { .cgroup = cg, .netns = ns };
	pid_t pid = fork();

	if (!pid) {
		if (mc_place_self(&at))
			_exit(1);
		sys_run("ip link set lo up");
		pause();
		_exit(0);
	}
	return pid;
}

static bool wait_listeners(const char *ns, int want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (engine_listeners(ns) == want)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* 8. Pod churn: a pod's cgroup with a process appears, then goes. */
static void subtest_pod_churn(struct steer_env *e)
{
	char ns[64], pod_cg[PATH_MAX], cg[PATH_MAX + 8], *slash;
	pid_t pid = 0;

	snprintf(ns, sizeof(ns), "gdt%d-churn", getpid());
	snprintf(pod_cg, sizeof(pod_cg), "%s", e->v1->cgroup);
	slash = strrchr(pod_cg, '/');
	if (!ASSERT_OK_PTR(slash, "pod cgroup parent"))
		return;
	snprintf(slash + 1, sizeof(pod_cg) - (size_t)(slash + 1 - pod_cg), "pod%s", CHURN_UID);
	snprintf(cg, sizeof(cg), "%s/c0", pod_cg);
	if (!ASSERT_OK(netns_add(ns), "churn netns"))
		return;
	if (!ASSERT_OK(mkdir(pod_cg, 0755), "pod cgroup") || !ASSERT_OK(mkdir(cg, 0755), "c0"))
		goto out;
	pid = churn_process(cg, ns);
	if (!ASSERT_GT(pid, 0, "churn process"))
		goto out;
	if (!ASSERT_OK(agent_env_update(&e->ag, "churn.yaml", churn_pod_yaml), "pod added"))
		goto out;
	ASSERT_TRUE(wait_listeners(ns, 2, 15000), "listeners made when the pod appeared");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	pid = 0;
	rmdir(cg);
	ASSERT_OK(rmdir(pod_cg), "pod cgroup removed");
	ASSERT_TRUE(wait_listeners(ns, 0, 15000), "listeners closed when the pod went");
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	rmdir(cg);
	rmdir(pod_cg);
	netns_del(ns);
	agent_env_write(&e->ag, "churn.yaml", NULL);
}

/* Lines of the agent's log holding `what` (every agent started counts). */
static int log_count(struct steer_env *e, const char *what)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(e->ag.log, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	if (f)
		fclose(f);
	return n;
}

/*
 * 9. A route change goes through the incremental pipeline (the engine is on:
 * the default agent), and the engine decides the next request by the new
 * rule: echo:8080's catch-all names another class header and backend, then
 * the old route comes back. Only the changed Service is translated again.
 */
static void subtest_route_change(struct steer_env *e)
{
	char *changed = strdup(routes), *at;
	int incr = log_count(e, "incremental translation");
	struct probe p;
	bool seen = false;

	if (!ASSERT_OK_PTR(changed, "copy"))
		return;
	/* "X-Class, value: producer}" -> "...: changed}", echo-v1 -> echo-v2 in that rule */
	at = strstr(changed, "value: producer}");
	if (!ASSERT_OK_PTR(at, "the catch-all's header"))
		goto out;
	memcpy(at, "value: changed} ", 16);
	at = strstr(at, "echo-v1, port: 8080");
	if (!ASSERT_OK_PTR(at, "the catch-all's backend"))
		goto out;
	at[6] = '2';
	if (!ASSERT_OK(agent_env_update(&e->ag, "routes.yaml", changed), "route changed"))
		goto out;
	for (int i = 0; i < 50 && !seen; i++) {
		p = probe_q(&e->at_v1, e->echo4, 8080, true, true);
		seen = !p.err && strstr(p.up, "|X-Class: changed|");
		if (!seen)
			usleep(100 * 1000);
	}
	ASSERT_TRUE(seen, "the engine decides by the changed route");
	/* and on the next connection too */
	p = probe(&e->at_v1, e->echo4, 8080, true);
	ASSERT_HAS_SUBSTR(p.up, "X-Class: changed|", "still the changed route");
	ASSERT_GT(log_count(e, "incremental translation"), incr, "through the incremental path");
	ASSERT_OK(agent_env_update(&e->ag, "routes.yaml", routes), "route back");
	seen = false;
	for (int i = 0; i < 50 && !seen; i++) {
		p = probe_q(&e->at_v1, e->echo4, 8080, true, true);
		seen = !p.err && strstr(p.up, "|X-Class: producer|");
		if (!seen)
			usleep(100 * 1000);
	}
	ASSERT_TRUE(seen, "the engine decides by the route as it was");
	expect_steered(&e->at_consumer, e->echo4, 80, "consumer");
out:
	free(changed);
}

/* `gammactl explain` of a request from pod at (ns/name) to ip:port, its text output. */
static char *explain(struct steer_env *e, const char *pod, const char *ip, int port,
		     const char *request)
{
	char *out = NULL;

	if (lab_run_capture(&out, "%s --pin-dir %s --manifests %s explain %s %s:%d '%s' "
			    "'x-test: 1' 2>&1", test_bin("gammactl"), e->ag.pin_dir, e->ag.dir, pod,
			    ip, port, request) && !out)
		return strdup("");
	test__printf("%s", out ? out : "");
	return out ? out : strdup("");
}

/*
 * 10. gammactl explain asks the running agent: the rule the engine's live
 * tables give a request, the redirect it answers, the backends and their
 * weights; a class the kernel keeps on L4 is said to be off the engine.
 */
static void subtest_explain_live(struct steer_env *e)
{
	char *out, pod[340];

	snprintf(pod, sizeof(pod), "%s/%s", e->v1->ns, e->v1->name);
	out = explain(e, pod, e->echo4, 8080, "GET /old/x?q=1");
	ASSERT_HAS_SUBSTR(out, "engine       on: the kernel steers", "steered");
	ASSERT_HAS_SUBSTR(out, "the HTTP engine applies them per request", "the note: per request");
	ASSERT_HAS_SUBSTR(out, "live rule    HTTPRoute " MESH_NS "/echo-8080-http rule 0,",
			  "the live rule");
	ASSERT_HAS_SUBSTR(out, "live filters RequestRedirect", "its filter");
	ASSERT_HAS_SUBSTR(out, "live outcome 301 Location: http://echo:8080/new/x?q=1",
			  "the engine's redirect");
	ASSERT_NULL(strstr(out, "decide differently"), "live tables as the manifests");
	free(out);
	out = explain(e, pod, e->echo4, 8080, "GET /other");
	ASSERT_HAS_SUBSTR(out, "live rule    HTTPRoute " MESH_NS "/echo-8080-http rule 1,",
			  "the catch-all rule");
	ASSERT_HAS_SUBSTR(out, "live filters ResponseHeaderModifier", "its filter");
	ASSERT_HAS_SUBSTR(out, "live weights weight 1 " MESH_NS "/echo-v1:8080 (OK, 1 endpoints)",
			  "its backend");
	ASSERT_HAS_SUBSTR(out, "live outcome 200, e.g. to " MESH_NS "/echo-v1:8080, target /other",
			  "proxied");
	free(out);
	/* the consumer class has a TCPRoute on echo:8080: L4, not the engine */
	snprintf(pod, sizeof(pod), "%s/%s", e->consumer->ns, e->consumer->name);
	out = explain(e, pod, e->echo4, 8080, "GET /old/x");
	ASSERT_HAS_SUBSTR(out, "engine       off for this port and class", "not steered");
	ASSERT_NULL(strstr(out, "live rule"), "no live decision for an L4 class");
	free(out);
}

/*
 * 11. The engine off: a new agent on the same pins with --no-http-engine.
 * The selectors lose the engine bit: the HTTPRoute port is plain L4 again.
 */
static void subtest_flag_off(struct steer_env *e)
{
	static const char *const off[] = { "--no-http-engine", NULL };

	e->ag.args = off;
	agent_env_kill(&e->ag, SIGKILL);
	if (!ASSERT_OK(agent_env_start(&e->ag), "agent with --no-http-engine"))
		return;
	expect_l4_http(&e->at_v1, e->echo4, 8080);
	expect_l4_http(&e->at_consumer, e->echo4, 80);
	ASSERT_EQ(engine_listeners(e->v1->netns), 0, "no listener with the engine off");
	{
		char pod[340], *out;

		snprintf(pod, sizeof(pod), "%s/%s", e->v1->ns, e->v1->name);
		out = explain(e, pod, e->echo4, 8080, "GET /old/x");
		ASSERT_HAS_SUBSTR(out, "engine       off for this port and class: the kernel's "
				  "selector does not steer", "explain: the engine is off");
		ASSERT_HAS_SUBSTR(out, "the kernel enforces only their L4 union below",
				  "explain: L7 rules at L4");
		free(out);
	}
}

void test_agent_steer(void)
{
	/* no flag: the engine is on by default */
	static const char *const args[] = { "--resync", "1", NULL };
	struct steer_env e = { 0 };

	if (lab_env_start_mesh(&e.lab, extra_manifest))
		goto cleanup;
	e.v1 = lab_env_find(&e.lab, MESH_NS, "echo-v1");
	e.v2 = lab_env_find(&e.lab, MESH_NS, "echo-v2");
	e.consumer = lab_env_find(&e.lab, CONSUMER_NS, "echo-v1");
	if (!ASSERT_OK_PTR(e.v1, "echo-v1") || !ASSERT_OK_PTR(e.v2, "echo-v2") ||
	    !ASSERT_OK_PTR(e.consumer, "consumer pod") ||
	    !lab_env_cluster_ip(&e.lab, MESH_NS, "echo", false, e.echo4) ||
	    !lab_env_cluster_ip(&e.lab, MESH_NS, "echo-v6", true, e.echo6))
		goto cleanup;
	e.at_v1 = (struct mc_place){ .cgroup = e.v1->container_cgroup, .netns = e.v1->netns };
	e.at_consumer = (struct mc_place){ .cgroup = e.consumer->container_cgroup,
					   .netns = e.consumer->netns };
	if (!ASSERT_OK(agent_env_init(&e.ag, &e.lab), "agent dir"))
		goto cleanup;
	e.ag.args = args;
	if (!ASSERT_OK(agent_env_write(&e.ag, "routes.yaml", routes), "routes") ||
	    !ASSERT_OK(agent_env_start(&e.ag), "gammad run (engine on by default)"))
		goto cleanup;
	if (!ASSERT_TRUE(wait_listeners(e.v1->netns, 2, 10000), "echo-v1's listeners"))
		goto cleanup;
	if (test__start_subtest("steered_and_l4"))
		subtest_steered(&e);
	if (test__start_subtest("consumer_classes"))
		subtest_consumer(&e);
	if (test__start_subtest("ipv6"))
		subtest_ipv6(&e);
	if (test__start_subtest("origdst_no_leak"))
		subtest_no_leak(&e);
	if (test__start_subtest("upstream_from_client_netns"))
		subtest_upstream_source(&e);
	if (test__start_subtest("unlisted_netns_l4"))
		subtest_unlisted_netns_l4(&e);
	if (test__start_subtest("host_process_agent_netns"))
		subtest_host_process(&e);
	if (test__start_subtest("pod_churn"))
		subtest_pod_churn(&e);
	if (test__start_subtest("route_change_incremental"))
		subtest_route_change(&e);
	if (test__start_subtest("explain_live"))
		subtest_explain_live(&e);
	if (test__start_subtest("flag_off"))
		subtest_flag_off(&e);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}
