// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP engine at issue 12's sizes, through the real lab and `gammad run
 * --http-engine` (agent_http), and the same with the kernel HTTP path on
 * (agent_http_kernel, `--kernel-http`: /metrics and gammactl stats must
 * count the requests served in the kernel; slow_reader waits for the
 * kernel's bytes-in-flight cap): clients are processes in a pod's cgroup
 * and netns whose connect() the kernel steers to the agent (forked bare:
 * a copy of the test server's sockets would hold its connections open
 * past its close), backends are the lab's echo
 * pods and, for what echo cannot do, the test server of tests/lib/http_tsrv
 * listening inside echo-v1's netns (Service bulk). Checked: keep-alive
 * connections switching backends per request (0 misrouted of 10,000), 100
 * concurrent clients x 200 requests each answered to the client that asked,
 * 10 MB bodies both ways in both framings by checksum, pipelining, a slow
 * reader's cost to the agent, an upstream killed mid-response, a client
 * killed mid-request; what is not HTTP (a server-first protocol, a TLS
 * ClientHello) passed through; and the /metrics series count exactly what
 * was sent.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "lib/agent_env.h"
#include "lib/echo_harness.h"
#include "lib/http_reader.h"
#include "lib/http_tsrv.h"
#include "lib/lab_env.h"
#include "lib/netns.h"
#include "lib/ops.h"

#define BULK_PORT 7777		/* the test server in echo-v1's netns */
#define KILL_PORT 7778		/* a server the test kills mid-response */
#define FIRST_PORT 7779		/* a server-first echo server (not HTTP) */
#define BIG (10 * 1024 * 1024)	/* the 10 MB */
#define IO_TIMEOUT_S 10

/* For the lab (its cluster.yaml gives the Service a ClusterIP). */
static const char bulk_service[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: bulk, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  selector: {app: echo, version: v1}\n"
	"  ports:\n"
	"  - {name: http, port: 7777, targetPort: 7777}\n"
	"  - {name: kill, port: 7778, targetPort: 7778}\n"
	"  - {name: first, port: 7779, targetPort: 7779}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: wide, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  selector: {app: echo}\n"
	"  ports:\n"
	"  - {name: w0, port: 8100, targetPort: 8100}\n"
	"  - {name: w1, port: 8101, targetPort: 8101}\n"
	"  - {name: w2, port: 8102, targetPort: 8102}\n"
	"  - {name: w3, port: 8103, targetPort: 8103}\n"
	"  - {name: w4, port: 8104, targetPort: 8104}\n"
	"  - {name: w5, port: 8105, targetPort: 8105}\n"
	"  - {name: w6, port: 8106, targetPort: 8106}\n"
	"  - {name: w7, port: 8107, targetPort: 8107}\n"
	"  - {name: w8, port: 8108, targetPort: 8108}\n"
	"  - {name: w9, port: 8109, targetPort: 8109}\n"
	"  - {name: w10, port: 8110, targetPort: 8110}\n"
	"  - {name: w11, port: 8111, targetPort: 8111}\n";
/*
 * The Service wide's ports, each its own route (routes_wide): 12 ports x
 * the 2 echo pods are 24 endpoints more, times the lab's 3 pod netns more
 * pools than --kernel-http-ahead's default (64): pools on demand.
 */
#define WIDE_PORT0 8100
#define WIDE_PORTS 12

static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: bulk, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: bulk, port: 7777}\n"
	"  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /}}]\n"
	"    backendRefs: [{name: bulk, port: 7777}]\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: bulk-kill, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: bulk, port: 7778}\n"
	"  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /kill}}]\n"
	"    backendRefs: [{name: bulk, port: 7778}]\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: bulk-first, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: bulk, port: 7779}\n"
	"  rules:\n"
	"  - backendRefs: [{name: bulk, port: 7779}]\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-split, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 80}\n"
	"  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
	"    backendRefs: [{name: echo-v1, port: 8080}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /v2}}]\n"
	"    backendRefs: [{name: echo-v2, port: 8080}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /hdr}}]\n"
	"    filters:\n"
	"    - type: ResponseHeaderModifier\n"
	"      responseHeaderModifier:\n"
	"        set: [{name: X-Resp, value: k}]\n"
	"        add: [{name: X-Resp-Add, value: a}]\n"
	"        remove: [X-Gone]\n"
	"    backendRefs: [{name: echo-v1, port: 8080}]\n";

struct http_env {
	bool kernel;			/* gammad run --kernel-http */
	bool sockmap;			/* ... --sockmap: same-node server sockets */
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *v1, *v2;
	char echo[INET6_ADDRSTRLEN], bulk[INET6_ADDRSTRLEN];
	uint16_t metrics_port;
	struct tsrv ts;
};

static long long ms_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static long long us_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* A connection to ip:port from where the caller is (a child placed in a pod). */
static int dial(const char *ip, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	inet_pton(AF_INET, ip, &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		c += w;
		n -= w;
	}
	return 0;
}

/* One value of the agent's /metrics, 0 when absent, -1 when not scraped. */
static double scrape(struct http_env *e, const char *series)
{
	char *body = NULL;
	int status = 0;
	double v;

	if (ops_http_get(e->metrics_port, "/metrics", &status, &body) || status != 200) {
		free(body);
		return -1;
	}
	v = ops_prom_value(body, series);
	free(body);
	return v < 0 ? 0 : v;
}

/* ---- the kernel HTTP path's counters (--kernel-http) ---------------------- */

#define KH_SERIES(r) "gammad_khttp_requests_total{reason=\"" r "\"}"

/* Requests the kernel served, and those it handed to the engine (any reason), from /metrics. */
static void kh_scrape(struct http_env *e, double *served, double *engine)
{
	char *body = NULL;
	int status = 0;

	*served = *engine = 0;
	if (ops_http_get(e->metrics_port, "/metrics", &status, &body) || status != 200) {
		free(body);
		return;
	}
	for (const char *p = body; (p = strstr(p, "\ngammad_khttp_requests_total{reason=\""));) {
		char reason[64];
		double v;

		p += strlen("\ngammad_khttp_requests_total{reason=\"");
		if (sscanf(p, "%63[^\"]\"} %lf", reason, &v) != 2)
			continue;
		if (v && e->kernel)
			test__printf("  kernel HTTP %s: %.0f\n", reason, v);
		if (!strcmp(reason, "served"))
			*served = v;
		else if (strcmp(reason, "head_incomplete"))	/* a wait, not a hand-over */
			*engine += v;
	}
	free(body);
}

/* A row of `gammactl stats`' KERNEL HTTP REQUESTS ("served", a reason), -1 when absent. */
static long gammactl_kh_row(struct http_env *e, const char *row)
{
	char *out = NULL, *p, key[64];
	long v = -1;

	snprintf(key, sizeof(key), "\n%s ", row);
	if (lab_run_capture(&out, "%s --pin-dir %s stats 2>/dev/null", test_bin("gammactl"),
			    e->ag.pin_dir) == 0 && out && (p = strstr(out, "KERNEL HTTP REQUESTS")) &&
	    (p = strstr(p, key)))
		sscanf(p + strlen(key), "%ld", &v);
	free(out);
	return v;
}

static long gammactl_served(struct http_env *e)
{
	return gammactl_kh_row(e, "served");
}

/* The agent's resident memory in KiB. */
static long agent_rss_kb(struct http_env *e)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)e->ag.pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- many clients, each checking every answer is its own ------------------- */

struct load {
	/* in */
	char ip[INET6_ADDRSTRLEN];
	int conns, reqs;
	/* out (shared with the parent) */
	atomic_int ok, misrouted, foreign, errors, sent[2];
	_Atomic long long first_us;	/* CLOCK_MONOTONIC: connection 0's first request sent */
	char first_error[256];
};

struct load_conn {
	struct load *l;
	int id;
};

static void load_fail(struct load *l, const char *fmt, int a, int b)
{
	if (atomic_fetch_add(&l->errors, 1) == 0)
		snprintf(l->first_error, sizeof(l->first_error), fmt, a, b);
}

/*
 * One keep-alive connection making reqs requests, each to /v1 or /v2 at
 * random with a path naming this connection and request: the echo that
 * answers says which pod it is and what path it got.
 */
static void *load_conn(void *arg)
{
	struct load_conn *lc = arg;
	struct load *l = lc->l;
	unsigned int seed = (unsigned int)(lc->id * 2654435761u) ^ (unsigned int)getpid();
	struct reader r = { .fd = dial(l->ip, 80) };

	if (r.fd < 0) {
		load_fail(l, "connection %d: connect: %d", lc->id, r.fd);
		return NULL;
	}
	for (int i = 0; i < l->reqs; i++) {
		int v = rand_r(&seed) & 1;
		char req[256], path[128], want_path[160], pod[128];
		struct resp p;
		int ret;

		snprintf(path, sizeof(path), "/v%d/c%d/r%d/%u", v + 1, lc->id, i, rand_r(&seed));
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: echo\r\n\r\n", path);
		if (!i && !lc->id)
			l->first_us = us_now();
		ret = exchange(&r, req, "GET", &p);
		if (ret || p.status != 200) {
			load_fail(l, "connection %d: request failed: %d", lc->id, ret ? ret : p.status);
			resp_free(&p);
			break;
		}
		atomic_fetch_add(&l->sent[v], 1);
		snprintf(want_path, sizeof(want_path), "\"path\": \"%s\"", path);
		echo_pod(&p, pod, sizeof(pod));
		if (!strstr(p.body, want_path))
			atomic_fetch_add(&l->foreign, 1);	/* someone else's answer */
		else if (strncmp(pod, v ? "echo-v2-" : "echo-v1-", 8))
			atomic_fetch_add(&l->misrouted, 1);
		else
			atomic_fetch_add(&l->ok, 1);
		resp_free(&p);
	}
	close(r.fd);
	free(r.buf);
	return NULL;
}

static int load_run(void *arg)
{
	struct load *l = arg;
	pthread_t *th = calloc(l->conns, sizeof(*th));
	struct load_conn *lc = calloc(l->conns, sizeof(*lc));
	int started = 0;

	if (!th || !lc)
		return 1;
	for (int i = 0; i < l->conns; i++) {
		lc[i] = (struct load_conn){ l, i };
		if (pthread_create(&th[i], NULL, load_conn, &lc[i]))
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return started == l->conns ? 0 : 1;
}

#define SERIES(rule, backend) \
	"gammad_http_requests_total{namespace=\"" MESH_NS "\",route=\"echo-split\",rule=\"" rule \
	"\",backend=\"" MESH_NS "/" backend ":8080\",code_class=\"2xx\"}"

/*
 * conns x reqs requests from echo-v2's pod, every answer checked; with the
 * kernel path on, want_kernel: some served there. Every request is the
 * kernel's to decide: served, or a miss (no pool or no free upstream yet)
 * that the engine answers and gives the connection back after.
 */
static void run_load_kh(struct http_env *e, int conns, int reqs, bool check_metrics,
			bool want_kernel)
{
	struct load *l = shared_alloc(sizeof(*l));
	double m0[2] = { 0 }, m1[2], ks0, ke0, ks1, ke1;
	long long t0 = ms_now();
	int total = conns * reqs;
	pid_t pid;

	if (!ASSERT_OK_PTR(l, "shared memory"))
		return;
	snprintf(l->ip, sizeof(l->ip), "%s", e->echo);
	l->conns = conns;
	l->reqs = reqs;
	if (check_metrics) {
		m0[0] = scrape(e, SERIES("0", "echo-v1"));
		m0[1] = scrape(e, SERIES("1", "echo-v2"));
	}
	kh_scrape(e, &ks0, &ke0);
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, load_run, l);
	if (ASSERT_GT(pid, 0, "client process"))
		ASSERT_EQ(child_wait(pid, 120000), 0, "clients done");
	kh_scrape(e, &ks1, &ke1);
	if (e->kernel) {
		test__printf("kernel HTTP: %.0f of %d requests served in the kernel, %.0f handed "
			     "to the engine\n", ks1 - ks0, total, ke1 - ke0);
		/* none is the engine's for good: a miss's connection comes back */
		ASSERT_EQ(ks1 - ks0 + (ke1 - ke0), total, "every request decided in the kernel");
		if (want_kernel)
			ASSERT_GT(ks1 - ks0, 0, "served in the kernel");
	}
	test__printf("%d x %d requests in %lld ms: ok %d misrouted %d foreign %d errors %d (%s); "
		     "v1 %d v2 %d\n", conns, reqs, ms_now() - t0, l->ok, l->misrouted, l->foreign,
		     l->errors, l->first_error, l->sent[0], l->sent[1]);
	ASSERT_EQ(l->errors, 0, "no request failed");
	ASSERT_EQ(l->misrouted, 0, "misrouted");
	ASSERT_EQ(l->foreign, 0, "answers reaching another client or request");
	ASSERT_EQ(l->ok, total, "every request answered correctly");
	if (check_metrics) {
		m1[0] = scrape(e, SERIES("0", "echo-v1"));
		m1[1] = scrape(e, SERIES("1", "echo-v2"));
		ASSERT_EQ((long)(m1[0] - m0[0]), l->sent[0], "/metrics: rule 0 (echo-v1) requests");
		ASSERT_EQ((long)(m1[1] - m0[1]), l->sent[1], "/metrics: rule 1 (echo-v2) requests");
		ASSERT_GE(scrape(e, "gammad_http_request_duration_seconds_count{namespace=\"" MESH_NS
				 "\",route=\"echo-split\",rule=\"0\",backend=\"" MESH_NS
				 "/echo-v1:8080\"}"), m1[0], "latency histogram counts them");
	}
	shared_free(l, sizeof(*l));
}

static void run_load(struct http_env *e, int conns, int reqs, bool check_metrics)
{
	run_load_kh(e, conns, reqs, check_metrics, true);
}

/* ---- kernel HTTP pools ahead and on demand (--kernel-http-idle, KH_IDLE) --- */

#define KH_IDLE "1"		/* seconds */

/* Wait up to ms for the agent's pinned map's entries to number at least / at most n. */
static long entries_wait(struct http_env *e, const char *map, long n, bool at_least, int ms)
{
	long v = -1;

	for (int i = 0; i <= ms / 20; i++) {
		v = pinned_entries(e->ag.pin_dir, map);
		if (v >= 0 && (at_least ? v >= n : v <= n))
			break;
		usleep(20 * 1000);
	}
	return v;
}

/* ... its pools (gammad_khpool_v1) */
static long pools_wait(struct http_env *e, long n, bool at_least, int ms)
{
	return entries_wait(e, GAMMAD_MAP_KH_POOL, n, at_least, ms);
}

/*
 * Pools of echo-v2's netns to echo-v1 and echo-v2 with their 8 free
 * upstreams each, made or grown again by a few requests (served_in_kernel:
 * the pairing of same-node server sockets after the idle time).
 */
static void pools_warm(struct http_env *e)
{
	long long t0 = ms_now();
	long pools, ups;

	run_load_kh(e, 2, 10, false, false);
	pools = pools_wait(e, 2, true, 3000);
	ups = entries_wait(e, GAMMAD_MAP_KH_UP, 16, true, 3000);
	test__printf("kernel HTTP pools warmed in %lld ms: %ld pools, %ld upstream sockets\n",
		     ms_now() - t0, pools, ups);
}

/*
 * How long the agent takes to make a pool for a miss: one request of a
 * new connection (the engine answers it), the pinned maps polled from
 * before it until its pool has 8 free upstreams; times from the client's
 * send (same clock).
 */
static void pool_made_us(struct http_env *e)
{
	struct load *l = shared_alloc(sizeof(*l));
	long long pool_us = 0, ups_us = 0, t_end;
	pid_t pid;

	if (!ASSERT_OK_PTR(l, "shared memory"))
		return;
	snprintf(l->ip, sizeof(l->ip), "%s", e->echo);
	l->conns = l->reqs = 1;
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, load_run, l);
	for (t_end = ms_now() + 3000; !ups_us && ms_now() < t_end; usleep(50)) {
		if (!pool_us && pinned_entries(e->ag.pin_dir, GAMMAD_MAP_KH_POOL) > 0)
			pool_us = us_now();
		if (pinned_entries(e->ag.pin_dir, GAMMAD_MAP_KH_UP) >= 8)
			ups_us = us_now();
	}
	if (ASSERT_GT(pid, 0, "client process"))
		ASSERT_EQ(child_wait(pid, 120000), 0, "client done");
	test__printf("kernel HTTP: a miss's pool in the map %lld us after the request, its 8 "
		     "upstreams %lld us after\n", pool_us ? pool_us - l->first_us : -1,
		     ups_us ? ups_us - l->first_us : -1);
	ASSERT_EQ(l->ok, 1, "the missing request answered");
	ASSERT_GT(ups_us, 0, "the pool made");
	shared_free(l, sizeof(*l));
}

/* routes and a route per port of the Service wide: more pools than the bound (malloc'd) */
static char *routes_wide(void)
{
	size_t cap = sizeof(routes) + WIDE_PORTS * 320, n;
	char *t = malloc(cap);

	if (!t)
		return NULL;
	n = (size_t)snprintf(t, cap, "%s", routes);
	for (int i = 0; i < WIDE_PORTS; i++)
		n += (size_t)snprintf(t + n, cap - n,
			"---\n"
			"apiVersion: gateway.networking.k8s.io/v1\n"
			"kind: HTTPRoute\n"
			"metadata: {name: wide-%d, namespace: " MESH_NS "}\n"
			"spec:\n"
			"  parentRefs:\n"
			"  - {group: \"\", kind: Service, name: wide, port: %d}\n"
			"  rules:\n"
			"  - backendRefs: [{name: wide, port: %d}]\n",
			i, WIDE_PORT0 + i, WIDE_PORT0 + i);
	return t;
}

/*
 * One keep-alive connection's reqs requests: every one served in the
 * kernel, none missed (its pools were made ahead).
 */
static void first_use_served(struct http_env *e, int reqs, const char *what)
{
	double ks0, ke0, ks1, ke1, miss0, miss1;

	kh_scrape(e, &ks0, &ke0);
	miss0 = scrape(e, KH_SERIES("no_upstream"));
	run_load_kh(e, 1, reqs, false, true);
	kh_scrape(e, &ks1, &ke1);
	miss1 = scrape(e, KH_SERIES("no_upstream"));
	test__printf("kernel HTTP %s: %d requests of one connection, %.0f served in the kernel, "
		     "%.0f misses\n", what, reqs, ks1 - ks0, miss1 - miss0);
	ASSERT_EQ(miss1 - miss0, 0, "no request found no pool");
	ASSERT_EQ(ks1 - ks0, reqs, "every request served in the kernel");
}

/*
 * 0a. Pools ahead: the lab's routes need fewer pools than
 * --kernel-http-ahead's default (64), so the pass made them (3 pod netns x
 * the echo and bulk endpoints) before any request: a connection's first
 * request is the kernel's. After the idle time they keep one free
 * upstream each and stay, and a new connection's first request is still
 * the kernel's.
 */
static void subtest_pools_ahead(struct http_env *e)
{
	long pools0, pools, ups0, ups;
	long long t0;

	pools0 = pools_wait(e, 2, true, 3000);
	ups0 = entries_wait(e, GAMMAD_MAP_KH_UP, 16, true, 3000);
	test__printf("kernel HTTP pools ahead, before any request: %ld pools, %ld upstream "
		     "sockets\n", pools0, ups0);
	ASSERT_GE(agent_env_log_count(&e->ag, "upstream pools made ahead"), 1, "logged");
	/* echo-v2's netns to echo-v1 and echo-v2 at least, 8 upstreams each */
	if (!ASSERT_GE(pools0, 2, "pools made ahead") || !ASSERT_GE(ups0, 16, "upstreams"))
		return;
	first_use_served(e, 40, "first use, pools ahead");
	/* idle: down to one free upstream per pool (8 -> 4 -> 2 -> 1), never out */
	t0 = ms_now();
	ups = entries_wait(e, GAMMAD_MAP_KH_UP, pools0, false, 15000);
	usleep(2500 * 1000);	/* two idle times more: still there */
	pools = pinned_entries(e->ag.pin_dir, GAMMAD_MAP_KH_POOL);
	ups = pinned_entries(e->ag.pin_dir, GAMMAD_MAP_KH_UP);
	test__printf("kernel HTTP pools ahead %lld ms after the last request: %ld pools, %ld "
		     "upstream sockets\n", ms_now() - t0, pools, ups);
	ASSERT_EQ(pools, pools0, "pools made ahead stay after the idle time");
	ASSERT_LE(ups, pools, "idled down to one upstream per pool");
	ASSERT_GE(ups, 2, "the echo pools keep theirs");
	first_use_served(e, 10, "first use after the idle time");
}

/*
 * 0b. Pools on demand: with the Service wide's routes the lab needs more
 * pools than the bound, so none is made ahead: those made ahead before
 * idle out. One keep-alive connection at first use: its
 * first request (no pool) is the engine's, which gives the connection
 * back, so every request is decided in the kernel and most served there.
 * A burst of clients, some arriving while their pools are being made, all
 * answered correctly; after the idle time every upstream is closed and
 * every pool gone, and the next requests make them again (twice).
 */
static void pools_on_demand(struct http_env *e)
{
	double ks0, ke0, ks1, ke1, miss0, miss1, ret0, ret1;
	long pools, ups;
	long long t0;

	ASSERT_GE(agent_env_log_count(&e->ag, "pools on demand ("), 1, "logged");
	/* those made ahead before: idled out as any other (no request since) */
	pools = pools_wait(e, 0, false, 10000);
	ups = entries_wait(e, GAMMAD_MAP_KH_UP, 0, false, 2000);
	test__printf("kernel HTTP pools on demand before any request: %ld pools, %ld upstream "
		     "sockets\n", pools, ups);
	ASSERT_EQ(pools, 0, "no pool before the first request");
	ASSERT_EQ(ups, 0, "no upstream before the first request");
	for (int round = 0; round < 2; round++) {
		/*
		 * first use: one connection, 40 requests to echo-v1 or echo-v2
		 * at random (about 25 ms: how many find their pool made is
		 * timing, printed; that each is decided in the kernel is not)
		 */
		kh_scrape(e, &ks0, &ke0);
		miss0 = scrape(e, KH_SERIES("no_upstream"));
		ret0 = scrape(e, "gammad_http_engine_kernel_returns_total");
		run_load_kh(e, 1, 40, false, false);
		kh_scrape(e, &ks1, &ke1);
		miss1 = scrape(e, KH_SERIES("no_upstream"));
		ret1 = scrape(e, "gammad_http_engine_kernel_returns_total");
		test__printf("kernel HTTP first use (round %d): 40 requests of one connection, %.0f "
			     "served in the kernel, %.0f misses, %.0f given back by the engine\n",
			     round, ks1 - ks0, miss1 - miss0, ret1 - ret0);
		ASSERT_EQ(ke1 - ke0, miss1 - miss0, "only misses went to the engine");
		ASSERT_GE(miss1 - miss0, 1, "the first request missed");
		ASSERT_GE(ret1 - ret0, miss1 - miss0, "the connection given back after each miss");
		/* and 20 clients at once: answered by the engine or a pool being made */
		run_load_kh(e, 20, 20, false, false);
		/* echo-v2's netns x the endpoints of echo-v1 and echo-v2 */
		pools = pools_wait(e, 2, true, 3000);
		ups = pinned_entries(e->ag.pin_dir, GAMMAD_MAP_KH_UP);
		test__printf("kernel HTTP pools after first use (round %d): %ld pools, %ld upstream "
			     "sockets\n", round, pools, ups);
		if (!ASSERT_EQ(pools, 2, "pools made by the first requests") ||
		    !ASSERT_GT(ups, 0, "upstreams connected"))
			return;
		/* made: the kernel serves them */
		run_load_kh(e, 4, 50, false, true);
		if (e->sockmap)
			ASSERT_GT(pinned_kh_paired(e->ag.pin_dir), 0, "same-node server sockets paired");
		/* unused: closed after the idle time (want halves, the rest goes) */
		t0 = ms_now();
		pools = pools_wait(e, 0, false, 10000);
		/* out of the pool's list first, closed at the next sweep */
		ups = entries_wait(e, GAMMAD_MAP_KH_UP, 0, false, 2000);
		test__printf("kernel HTTP pools %lld ms after the last request: %ld pools, %ld "
			     "upstream sockets\n", ms_now() - t0, pools, ups);
		if (!ASSERT_EQ(pools, 0, "pools removed after the idle time") ||
		    !ASSERT_EQ(ups, 0, "every upstream closed"))
			return;
	}
	/* a miss after the idle-out makes the pool again (each time), and how fast */
	for (int i = 0; i < 4; i++) {
		pools = pools_wait(e, 0, false, 10000);
		ups = entries_wait(e, GAMMAD_MAP_KH_UP, 0, false, 2000);
		if (!ASSERT_EQ(pools + ups, 0, "idled out"))
			return;
		pool_made_us(e);
	}
}

/* 0b with the wide routes, then the lab's routes again (pools ahead for the other subtests) */
static void subtest_pools(struct http_env *e)
{
	char *wide = routes_wide();
	int err;

	if (!ASSERT_OK_PTR(wide, "routes"))
		return;
	err = agent_env_update(&e->ag, "routes.yaml", wide);
	free(wide);
	if (ASSERT_OK(err, "the wide routes"))
		pools_on_demand(e);
	/*
	 * the wide tables' endpoints count until they are retired (the next
	 * resync, 10 s): on demand until then
	 */
	if (ASSERT_OK(agent_env_update(&e->ag, "routes.yaml", routes), "the lab's routes"))
		ASSERT_GE(pools_wait(e, 2, true, 15000), 2, "pools made ahead again");
}

/* 1. Keep-alive connections switching backends per request: 0 misrouted of 10,000. */
static void subtest_keepalive(struct http_env *e)
{
	run_load(e, 10, 1000, !e->kernel);
}

/* 2. 100 concurrent clients x 200 random requests, every answer to the client that asked. */
static void subtest_concurrent(struct http_env *e)
{
	run_load(e, 100, 200, false);
}

/* ---- bodies -------------------------------------------------------------- */

struct bulk {
	char ip[INET6_ADDRSTRLEN];
	int step;			/* what failed, 0: nothing */
	int err;
	char got[256], want[256];
};

/* Send a 10 MB body (ts_fill bytes) with Content-Length or chunked; its checksum. */
static int send_body(int fd, bool chunked, uint64_t *sum)
{
	static char chunk[65536];

	*sum = TS_FNV_INIT;
	for (size_t off = 0; off < BIG;) {
		size_t k = BIG - off < 50000 ? BIG - off : 50000;
		char line[32];
		int ret;

		ts_fill(chunk, k, off);
		*sum = ts_fnv1a(*sum, chunk, k);
		if (chunked) {
			snprintf(line, sizeof(line), "%zx\r\n", k);
			ret = send_all(fd, line, strlen(line));
			if (!ret)
				ret = send_all(fd, chunk, k);
			if (!ret)
				ret = send_all(fd, "\r\n", 2);
		} else {
			ret = send_all(fd, chunk, k);
		}
		if (ret)
			return ret;
		off += k;
	}
	return chunked ? send_all(fd, "0\r\n\r\n", 5) : 0;
}

static int bulk_run(void *arg)
{
	struct bulk *b = arg;
	struct reader r = { .fd = dial(b->ip, BULK_PORT) };
	char *want_body = malloc(BIG);
	uint64_t sum, want_sum;
	struct resp p = { 0 };
	int ret;

	if (r.fd < 0 || !want_body) {
		b->step = 1;
		b->err = r.fd;
		return 1;
	}
	ts_fill(want_body, BIG, 0);
	want_sum = ts_fnv1a(TS_FNV_INIT, want_body, BIG);
	/* uploads: the server's checksum of what arrived */
	for (int chunked = 0; chunked < 2; chunked++) {
		char head[160];

		snprintf(head, sizeof(head), "POST /ts/sum HTTP/1.1\r\nHost: bulk\r\n%s\r\n",
			 chunked ? "Transfer-Encoding: chunked\r\n" :
				   "Content-Length: 10485760\r\n");
		ret = send_all(r.fd, head, strlen(head));
		if (!ret)
			ret = send_body(r.fd, chunked, &sum);
		if (!ret)
			ret = read_resp(&r, "POST", &p, NULL);
		b->step = 2 + chunked;
		if (ret) {
			b->err = ret;
			goto out;
		}
		snprintf(b->got, sizeof(b->got), "%d %s", p.status, p.body);
		snprintf(b->want, sizeof(b->want), "200 len=%016zx sum=%016llx", (size_t)BIG,
			 (unsigned long long)sum);
		resp_free(&p);
		if (strcmp(b->got, b->want))
			goto out;
	}
	/* downloads: our checksum of what came, and the server's trailer */
	for (int chunked = 0; chunked < 2; chunked++) {
		char req[128], v[64];

		snprintf(req, sizeof(req), "GET /ts/%s/%d HTTP/1.1\r\nHost: bulk\r\n\r\n",
			 chunked ? "chunked" : "len", BIG);
		ret = exchange(&r, req, "GET", &p);
		b->step = 4 + chunked;
		if (ret) {
			b->err = ret;
			goto out;
		}
		snprintf(b->got, sizeof(b->got), "%d %zu %016llx %s", p.status, p.body_len,
			 (unsigned long long)ts_fnv1a(TS_FNV_INIT, p.body, p.body_len),
			 chunked ? (strstr(p.trailer, "X-Sum: ") ? strstr(p.trailer, "X-Sum: ") + 7 :
				    "no-trailer") : "-");
		if (chunked) {
			char *nl = strpbrk(b->got, "\r\n");

			if (nl)
				*nl = 0;
		}
		snprintf(v, sizeof(v), "%016llx", (unsigned long long)want_sum);
		snprintf(b->want, sizeof(b->want), "200 %d %s %s", BIG, v, chunked ? v : "-");
		resp_free(&p);
		if (strcmp(b->got, b->want))
			goto out;
	}
	b->step = 0;
out:
	resp_free(&p);
	free(want_body);
	free(r.buf);
	close(r.fd);
	return b->step ? 1 : 0;
}

/* 3. 10 MB uploads and downloads, Content-Length and chunked, intact by checksum. */
static void subtest_bodies(struct http_env *e)
{
	struct bulk *b = shared_alloc(sizeof(*b));
	long long t0 = ms_now();
	pid_t pid;

	if (!ASSERT_OK_PTR(b, "shared memory"))
		return;
	snprintf(b->ip, sizeof(b->ip), "%s", e->bulk);
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, bulk_run, b);
	if (ASSERT_GT(pid, 0, "client process"))
		child_wait(pid, 60000);
	test__printf("4 x 10 MB in %lld ms; step %d err %d got \"%s\" want \"%s\"\n",
		     ms_now() - t0, b->step, b->err, b->got, b->want);
	ASSERT_EQ(b->step, 0, "uploads (CL, chunked) then downloads (CL, chunked) intact");
	shared_free(b, sizeof(*b));
}

/* ---- pipelining ---------------------------------------------------------- */

#define PIPELINED 100

struct pipe_res {
	char ip[INET6_ADDRSTRLEN], bulk[INET6_ADDRSTRLEN];
	int answered, in_order, sums_ok, err;
	char first_wrong[512];		/* the first answer out of order, for the log */
};

static int pipe_run(void *arg)
{
	struct pipe_res *pr = arg;
	struct reader r = { .fd = dial(pr->ip, 80) };
	char *all = NULL;
	size_t len = 0;
	FILE *f;

	if (r.fd < 0) {
		pr->err = r.fd;
		return 1;
	}
	/* every request in one write: the engine must answer them in order */
	f = open_memstream(&all, &len);
	for (int i = 0; f && i < PIPELINED; i++)
		fprintf(f, "GET /v%d/pipe/%d HTTP/1.1\r\nHost: echo\r\n\r\n", i % 2 + 1, i);
	if (!f || fclose(f) || send_all(r.fd, all, len)) {
		pr->err = -EIO;
		return 1;
	}
	free(all);
	for (int i = 0; i < PIPELINED; i++) {
		char want[64], pod[128];
		struct resp p;

		if (read_resp(&r, "GET", &p, NULL)) {
			resp_free(&p);
			break;
		}
		pr->answered++;
		snprintf(want, sizeof(want), "\"path\": \"/v%d/pipe/%d\"", i % 2 + 1, i);
		if (strstr(p.body, want) &&
		    !strncmp(echo_pod(&p, pod, sizeof(pod)), i % 2 ? "echo-v2-" : "echo-v1-", 8))
			pr->in_order++;
		else if (!pr->first_wrong[0])
			snprintf(pr->first_wrong, sizeof(pr->first_wrong), "#%d (%s): %d %.400s", i,
				 want, p.status, p.body ? p.body : "");
		resp_free(&p);
	}
	close(r.fd);
	free(r.buf);
	/* with bodies: pipelined uploads to the test server, each checksummed */
	r = (struct reader){ .fd = dial(pr->bulk, BULK_PORT) };
	if (r.fd < 0) {
		pr->err = r.fd;
		return 1;
	}
	all = NULL;
	f = open_memstream(&all, &len);
	for (int i = 0; f && i < 10; i++) {
		char body[3000];

		ts_fill(body, 1000 + i * 100, i);
		fprintf(f, "POST /ts/sum HTTP/1.1\r\nHost: bulk\r\nContent-Length: %d\r\n\r\n",
			1000 + i * 100);
		fwrite(body, 1, 1000 + i * 100, f);
	}
	if (!f || fclose(f) || send_all(r.fd, all, len)) {
		pr->err = -EIO;
		return 1;
	}
	free(all);
	for (int i = 0; i < 10; i++) {
		char body[3000], want[64];
		struct resp p;

		if (read_resp(&r, "POST", &p, NULL)) {
			resp_free(&p);
			break;
		}
		ts_fill(body, 1000 + i * 100, i);
		snprintf(want, sizeof(want), "len=%016x sum=%016llx", 1000 + i * 100,
			 (unsigned long long)ts_fnv1a(TS_FNV_INIT, body, 1000 + i * 100));
		pr->sums_ok += !strcmp(p.body, want);
		resp_free(&p);
	}
	close(r.fd);
	free(r.buf);
	return 0;
}

/* 4. Pipelined requests: answered in order, each by its rule's backend; pipelined bodies. */
static void subtest_pipelined(struct http_env *e)
{
	struct pipe_res *pr = shared_alloc(sizeof(*pr));
	pid_t pid;

	if (!ASSERT_OK_PTR(pr, "shared memory"))
		return;
	snprintf(pr->ip, sizeof(pr->ip), "%s", e->echo);
	snprintf(pr->bulk, sizeof(pr->bulk), "%s", e->bulk);
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, pipe_run, pr);
	if (ASSERT_GT(pid, 0, "client process"))
		child_wait(pid, 30000);
	ASSERT_EQ(pr->err, 0, "client");
	if (pr->first_wrong[0])
		test__printf("first answer out of order: %s\n", pr->first_wrong);
	ASSERT_EQ(pr->answered, PIPELINED, "every pipelined request answered");
	ASSERT_EQ(pr->in_order, PIPELINED, "in order, each from its rule's backend");
	ASSERT_EQ(pr->sums_ok, 10, "pipelined uploads, each body intact");
	shared_free(pr, sizeof(*pr));
}

/* ---- a slow reader ------------------------------------------------------- */

struct hold {
	char ip[INET6_ADDRSTRLEN];
	int port;
	char req[128];
	volatile int sent;		/* the request is out */
	int err;
	/* with read_all: what came, how it ended */
	bool read_all;
	long long bytes, ms;
	int end;			/* 0 EOF, -errno */
	int spurious_eagain;		/* EAGAIN before the receive timeout */
};

/* Send the request, then either never read (until killed) or read until the end. */
static int hold_run(void *arg)
{
	struct hold *h = arg;
	int fd = dial(h->ip, h->port);
	char buf[65536];
	long long t0;

	if (fd < 0) {
		h->err = fd;
		return 1;
	}
	if (send_all(fd, h->req, strlen(h->req))) {
		h->err = -EIO;
		return 1;
	}
	__atomic_store_n(&h->sent, 1, __ATOMIC_RELEASE);
	if (!h->read_all) {
		pause();
		return 0;
	}
	t0 = ms_now();
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			h->bytes += n;
			continue;
		}
		/*
		 * A blocking recv() saying EAGAIN before SO_RCVTIMEO: a socket
		 * in a sockhash (tcp_bpf) woken by an error before its
		 * shutdown is set. Counted; the next recv() tells the end.
		 */
		if (n < 0 && errno == EAGAIN && ms_now() - t0 < IO_TIMEOUT_S * 1000 - 500) {
			h->spurious_eagain++;
			continue;
		}
		h->end = n ? -errno : 0;
		break;
	}
	h->ms = ms_now() - t0;
	close(fd);
	return 0;
}

static bool wait_flag(volatile int *flag, int timeout_ms)
{
	for (long long t0 = ms_now(); ms_now() - t0 < timeout_ms; usleep(10000))
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

static long long stream_bytes(struct http_env *e)
{
	return __atomic_load_n(&e->ts.stream_bytes, __ATOMIC_RELAXED);
}

/* ---- a slow reader of the kernel HTTP path, relayed ------------------------ */

#define SLOW_BODY (16 << 20)	/* past the kernel's 4 MiB cap and every buffer after it */

struct slow {
	char ip[INET6_ADDRSTRLEN];
	volatile int sent, go;
	int err;			/* where it failed: -errno, or a line of slow_run */
	long long body;			/* body bytes read */
	long long bad;			/* of them not ts_fill's */
	int next_ok;			/* the next request on the connection answered whole */
};

/* Read one response head (to the empty line) from fd: its Content-Length, or -1. */
static long long slow_head(int fd)
{
	char head[4096];
	size_t len = 0;

	while (len < sizeof(head) - 1) {
		ssize_t n = recv(fd, head + len, 1, 0);	/* bytewise: no body byte taken */
		char *cl;

		if (n <= 0)
			return -1;
		len += n;
		head[len] = 0;
		if (len >= 4 && !memcmp(head + len - 4, "\r\n\r\n", 4)) {
			cl = strcasestr(head, "\r\ncontent-length:");
			return strncmp(head, "HTTP/1.1 200", 12) || !cl ? -1 : atoll(cl + 17);
		}
	}
	return -1;
}

/*
 * Ask for /ts/len/n on fd and read the answer: its head, then n body bytes
 * checked against ts_fill's (those out of place added to *bad). 0, or the
 * line where it failed.
 */
static int len_exchange(int fd, int n, long long *bad)
{
	char req[96], buf[4096];

	snprintf(req, sizeof(req), "GET /ts/len/%d HTTP/1.1\r\nHost: bulk\r\n\r\n", n);
	if (send_all(fd, req, strlen(req)) || slow_head(fd) != n)
		return __LINE__;
	for (long long got = 0; got < n;) {
		size_t want = n - got < (long long)sizeof(buf) ? (size_t)(n - got) : sizeof(buf);
		ssize_t r = recv(fd, buf, want, 0);

		if (r <= 0)
			return __LINE__;
		for (ssize_t i = 0; i < r; i++)
			*bad += buf[i] != 'a' + (got + i) % 23;
		got += r;
	}
	return 0;
}

/*
 * Ask for SLOW_BODY bytes, read nothing until told, then read them all and
 * check each one, then ask again on the same connection.
 */
static int slow_run(void *arg)
{
	struct slow *h = arg;
	char req[128], buf[65536];
	int fd = dial(h->ip, BULK_PORT);
	long long cl;

	if (fd < 0) {
		h->err = fd;
		return 1;
	}
	snprintf(req, sizeof(req), "GET /ts/stream/%d HTTP/1.1\r\nHost: bulk\r\n\r\n", SLOW_BODY);
	if (send_all(fd, req, strlen(req))) {
		h->err = -EIO;
		return 1;
	}
	__atomic_store_n(&h->sent, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&h->go, __ATOMIC_ACQUIRE))
		usleep(10000);
	cl = slow_head(fd);
	if (cl != SLOW_BODY) {
		h->err = __LINE__;
		return 1;
	}
	while (h->body < cl) {
		size_t want = cl - h->body < (long long)sizeof(buf) ? (size_t)(cl - h->body) : sizeof(buf);
		ssize_t n = recv(fd, buf, want, 0);

		if (n <= 0) {
			h->err = n ? -errno : __LINE__;
			return 1;
		}
		for (ssize_t i = 0; i < n; i++)
			h->bad += buf[i] != 'a' + (h->body + i) % 23;
		h->body += n;
	}
	/* the connection goes on: the engine's now */
	h->err = len_exchange(fd, 1000, &h->bad);
	if (h->err)
		return 1;
	h->next_ok = 1;
	close(fd);
	return 0;
}

/*
 * Whether the stream's bytes (from s0 on) stopped growing within 6 s:
 * under 16 KiB more in 300 ms. *s1: the bytes at the last look.
 */
static bool stream_plateau(struct http_env *e, long long s0, long long *s1)
{
	for (int i = 0; i < 20; i++) {
		long long a = stream_bytes(e);

		usleep(300 * 1000);
		*s1 = stream_bytes(e);
		if (*s1 > s0 && *s1 - a < 16384)
			return true;
	}
	return false;
}

/* One keep-alive connection to bulk making 10 small requests, each answer checked. */
static int bulk_warm_run(void *arg)
{
	struct slow *h = arg;
	int fd = dial(h->ip, BULK_PORT);

	if (fd < 0) {
		h->err = fd;
		return 1;
	}
	for (int i = 0; i < 10 && !h->err; i++)
		h->err = len_exchange(fd, 100, &h->bad);
	close(fd);
	return h->err ? 1 : 0;
}

/*
 * Until the kernel serves bulk's requests from echo-v2's pod (at most 20
 * rounds of bulk_warm_run): with pools on demand the first request of a
 * pod's netns to an endpoint finds no pool (the engine answers it and the
 * agent makes one), and a pool unused for the idle time (KH_IDLE) is gone
 * again. Whether earlier subtests left one, or pools are made ahead, does
 * not matter. True when a request was served in the kernel.
 */
static bool bulk_served_in_kernel(struct http_env *e)
{
	struct slow *h = shared_alloc(sizeof(*h));
	double ks0, ke0, ks1 = 0, ke1;
	bool served = false;
	int round;

	if (!ASSERT_OK_PTR(h, "shared memory"))
		return false;
	snprintf(h->ip, sizeof(h->ip), "%s", e->bulk);
	for (round = 0; round < 20 && !served; round++) {
		pid_t pid;

		kh_scrape(e, &ks0, &ke0);
		pid = child_start(e->v2->container_cgroup, e->v2->netns, bulk_warm_run, h);
		if (!ASSERT_GT(pid, 0, "client process") ||
		    !ASSERT_EQ(child_wait(pid, 30000), 0, "warm-up requests answered") ||
		    !ASSERT_EQ(h->bad, 0, "warm-up bytes out of place"))
			break;
		kh_scrape(e, &ks1, &ke1);
		served = ks1 > ks0;
	}
	test__printf("slow reader (kernel): bulk served in the kernel after %d round(s) of 10 "
		     "requests: %d\n", round, served);
	shared_free(h, sizeof(*h));
	return ASSERT_TRUE(served, "the kernel serves bulk's requests (its pool made)");
}

/*
 * 5 (--kernel-http). A client that stops reading a 16 MiB response the
 * kernel serves: past the kernel's cap its upstream is the engine's to
 * relay, and nothing moves while the client does not read (the server
 * stops, the agent's memory stays where it was, what is in flight stays
 * near the cap). Then it reads: every byte, in order, no reset, and the
 * connection serves its next request.
 */
static void subtest_slow_reader_kernel(struct http_env *e)
{
	struct slow *h = shared_alloc(sizeof(*h));
	double slow0, slow1, relays0, relays1;
	long long s0, s1 = 0;
	long rss0, rss1;
	bool plateau = false;
	pid_t pid = 0;

	if (!ASSERT_OK_PTR(h, "shared memory"))
		return;
	snprintf(h->ip, sizeof(h->ip), "%s", e->bulk);
	/* its pool made and used just before (its idle time is KH_IDLE) */
	if (!bulk_served_in_kernel(e))
		goto out;
	slow0 = scrape(e, KH_SERIES("slow_reader"));
	relays0 = scrape(e, "gammad_http_engine_kernel_relays_total");
	rss0 = agent_rss_kb(e);
	s0 = stream_bytes(e);
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, slow_run, h);
	if (!ASSERT_GT(pid, 0, "client process") || !ASSERT_TRUE(wait_flag(&h->sent, 5000), "sent"))
		goto out;
	plateau = stream_plateau(e, s0, &s1);
	slow1 = scrape(e, KH_SERIES("slow_reader"));
	relays1 = scrape(e, "gammad_http_engine_kernel_relays_total");
	rss1 = agent_rss_kb(e);
	test__printf("slow reader (kernel): server sent %lld of %d bytes then stopped: %d; slow "
		     "readers %.0f -> %.0f; agent RSS %ld -> %ld KiB\n", s1 - s0, SLOW_BODY,
		     plateau, slow0, slow1, rss0, rss1);
	ASSERT_TRUE(plateau, "backpressure stopped the server");
	ASSERT_GT(slow1, slow0, "the kernel found the client slow");
	ASSERT_EQ(relays1 - relays0, 1, "the engine relays its upstream");
	ASSERT_LT(rss1 - rss0, 8 * 1024, "agent memory bounded (< 8 MiB more)");
	/* the kernel's 4 MiB cap at the client, plus the fixed socket buffers after it */
	ASSERT_LT(s1 - s0, 6LL << 20, "in flight bounded (< 6 MiB)");
	__atomic_store_n(&h->go, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(child_wait(pid, 30000), 0, "the client read it all");
	pid = 0;
	ASSERT_EQ(h->err, 0, "no reset, no early end (a line of slow_run, or -errno)");
	ASSERT_EQ(h->body, SLOW_BODY, "body bytes");
	ASSERT_EQ(h->bad, 0, "bytes out of place");
	ASSERT_EQ(h->next_ok, 1, "the next request on the connection");
out:
	if (pid > 0)
		child_kill(pid);
	shared_free(h, sizeof(*h));
}

/*
 * 5. A client that never reads an endless download: backpressure stops the
 * server (its bytes stop growing, at under 4 MiB), the agent's memory stays
 * where it was and the engine's buffers grow by at most one connection's
 * (4 x 64 KiB).
 */
static void subtest_slow_reader(struct http_env *e)
{
	struct hold *h = shared_alloc(sizeof(*h));
	double buf0, buf1;
	long rss0, rss1;
	long long s0, s1 = 0;
	bool plateau = false;
	pid_t pid;

	if (!ASSERT_OK_PTR(h, "shared memory"))
		return;
	if (e->kernel) {
		shared_free(h, sizeof(*h));
		subtest_slow_reader_kernel(e);
		return;
	}
	snprintf(h->ip, sizeof(h->ip), "%s", e->bulk);
	h->port = BULK_PORT;
	snprintf(h->req, sizeof(h->req), "GET /ts/stream HTTP/1.1\r\nHost: bulk\r\n\r\n");
	buf0 = scrape(e, "gammad_http_engine_buffer_bytes");
	rss0 = agent_rss_kb(e);
	s0 = stream_bytes(e);
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, hold_run, h);
	if (!ASSERT_GT(pid, 0, "client process") || !ASSERT_TRUE(wait_flag(&h->sent, 5000), "sent"))
		goto out;
	/* the stream runs until every buffer on the way is full, then stops */
	plateau = stream_plateau(e, s0, &s1);
	buf1 = scrape(e, "gammad_http_engine_buffer_bytes");
	rss1 = agent_rss_kb(e);
	test__printf("slow reader: server sent %lld bytes then stopped: %d; engine buffers %.0f -> "
		     "%.0f bytes; agent RSS %ld -> %ld KiB\n", s1 - s0, plateau, buf0, buf1, rss0,
		     rss1);
	ASSERT_TRUE(plateau, "backpressure stopped the server");
	ASSERT_LE(buf1 - buf0, 4 * 65536, "engine buffers: at most one connection's more");
	ASSERT_LT(rss1 - rss0, 8 * 1024, "agent memory bounded (< 8 MiB more)");
	/*
	 * What the server got into the pipe is what every buffer on the way
	 * holds: the engine's 4 x 64 KiB and the kernel's for its sockets, fixed
	 * (ENGINE_SOCK_BUF; autotuned, the upstream socket alone grew to 32 MiB).
	 */
	ASSERT_LT(s1 - s0, 4LL << 20, "the kernel's share bounded too (< 4 MiB in flight)");
out:
	if (pid > 0)
		child_kill(pid);
	shared_free(h, sizeof(*h));
}

/* ---- upstream killed, client killed -------------------------------------- */

struct killsrv {
	volatile int ready, sent;
	int err;
};

/* In echo-v1's netns: one connection, a 10 MB promise, 200 KB, then wait to be killed. */
static int killsrv_run(void *arg)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(KILL_PORT) };
	struct killsrv *k = arg;
	static char body[200000];
	char head[4096];
	int lfd, fd, zero = 0, one = 1;
	size_t n = 0;

	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin6, sizeof(sin6)) || listen(lfd, 8)) {
		k->err = -errno;
		return 1;
	}
	__atomic_store_n(&k->ready, 1, __ATOMIC_RELEASE);
	/*
	 * The connection that sends a request: the kernel path's pool may
	 * connect upstreams first (made at the client's first request), which
	 * send nothing until a client claims one.
	 */
	fd = -1;
	while (fd < 0) {
		struct pollfd p[33] = { { .fd = lfd, .events = POLLIN } };
		static int conns[32];
		static int nr;

		for (int i = 0; i < nr; i++)
			p[i + 1] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
		if (poll(p, nr + 1, -1) < 0)
			return 1;
		for (int i = 0; i < nr && fd < 0; i++)
			if (p[i + 1].revents) {
				fd = conns[i];
				conns[i] = conns[--nr];
			}
		if (fd < 0 && (p[0].revents & POLLIN)) {
			int c = accept(lfd, NULL, NULL);

			if (c >= 0 && nr < 32)
				conns[nr++] = c;
			else if (c >= 0)
				close(c);
		}
		if (fd < 0)
			continue;
		for (n = 0; n < sizeof(head) - 1;) {
			ssize_t r = recv(fd, head + n, sizeof(head) - 1 - n, 0);

			if (r <= 0) {
				close(fd);	/* an idle upstream closed: wait on */
				fd = -1;
				break;
			}
			n += r;
			head[n] = 0;
			if (strstr(head, "\r\n\r\n"))
				break;
		}
	}
	ts_fill(body, sizeof(body), 0);
	dprintf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
	send_all(fd, body, sizeof(body));
	__atomic_store_n(&k->sent, 1, __ATOMIC_RELEASE);
	pause();
	return 0;
}

/*
 * 6. The upstream process is killed in the middle of a response: the
 * client sees the connection reset (not a clean end that would make a cut
 * body look whole) and does not hang.
 */
static void subtest_upstream_killed(struct http_env *e)
{
	struct killsrv *k = shared_alloc(sizeof(*k));
	struct hold *h = shared_alloc(sizeof(*h));
	pid_t srv = 0, cli = 0;

	if (!ASSERT_OK_PTR(k, "shared memory") || !ASSERT_OK_PTR(h, "shared memory"))
		goto out;
	srv = child_start_bare(NULL, e->v1->netns, killsrv_run, k);
	if (!ASSERT_GT(srv, 0, "server process") || !ASSERT_TRUE(wait_flag(&k->ready, 5000), "listening"))
		goto out;
	snprintf(h->ip, sizeof(h->ip), "%s", e->bulk);
	h->port = KILL_PORT;
	h->read_all = true;
	snprintf(h->req, sizeof(h->req), "GET /kill/me HTTP/1.1\r\nHost: bulk\r\n\r\n");
	cli = child_start_bare(e->v2->container_cgroup, e->v2->netns, hold_run, h);
	if (!ASSERT_GT(cli, 0, "client process") ||
	    !ASSERT_TRUE(wait_flag(&k->sent, 5000), "response under way"))
		goto out;
	usleep(200 * 1000);
	child_kill(srv);
	srv = 0;
	ASSERT_EQ(child_wait(cli, 8000), 0, "the client did not hang");
	cli = 0;
	test__printf("upstream killed: client read %lld bytes, then %d after %lld ms (%d early "
		     "EAGAIN)\n", h->bytes, h->end, h->ms, h->spurious_eagain);
	ASSERT_EQ(h->end, -ECONNRESET, "the client sees a reset");
	ASSERT_LT(h->bytes, (long long)BIG, "not the whole body");
	ASSERT_GT(h->bytes, 100000, "what came before went through");
out:
	if (cli > 0)
		child_kill(cli);
	if (srv > 0)
		child_kill(srv);
	shared_free(k, sizeof(*k));
	shared_free(h, sizeof(*h));
}

/* ---- a close-delimited response ------------------------------------------- */

#define CD_WARM 40		/* keep-alive requests at most until the kernel serves the connection */

struct cdel {
	char ip[INET6_ADDRSTRLEN], pin_dir[128];
	bool kernel;
	int size;			/* /ts/close/size; 0: the keep-alive requests alone */
	int delay_ms;			/* before reading it */
	int err;			/* where it failed: -errno, or a line of cdel_run */
	int warm;			/* keep-alive requests before the close-delimited one */
	long slot;			/* the upstream slot bound to the connection (kernel), -1: none */
	uint64_t cookie, up;		/* the client's socket cookie, its upstream's */
	int end;			/* read_resp() of the close-delimited response: 0 (EOF), -errno */
	long long body, bad, ms;	/* its body bytes, those not ts_fill's, ms from the request to the end */
	bool conn_close;		/* its head says Connection: close */
};

/*
 * A keep-alive connection to the test server whose requests the kernel
 * serves (with --kernel-http: until it is bound to an upstream slot), then
 * /ts/close/size, an answer without framing that the server ends by
 * closing: the client waits delay_ms before reading (the kernel's bytes
 * pile up in its sockmap queue), then reads the head, every body byte and
 * EOF.
 */
static int cdel_run(void *arg)
{
	static const char warm[] = "GET /ts/len/100 HTTP/1.1\r\nHost: bulk\r\n\r\n";
	struct cdel *d = arg;
	struct reader r = { .fd = dial(d->ip, BULK_PORT) };
	socklen_t clen = sizeof(d->cookie);
	char req[128], v[64];
	struct resp p = { 0 };
	long long t0;

	d->slot = -1;
	if (r.fd < 0) {
		d->err = r.fd;
		return 1;
	}
	if (getsockopt(r.fd, SOL_SOCKET, SO_COOKIE, &d->cookie, &clen)) {
		d->err = -errno;
		goto out;
	}
	/* the pool is made at the first miss: the connection comes back to the kernel after it */
	while (d->warm < CD_WARM && (d->slot < 0 || !d->kernel)) {
		if (exchange(&r, warm, "GET", &p) || p.status != 200 || p.body_len != 100) {
			d->err = __LINE__;
			goto out;
		}
		resp_free(&p);
		d->warm++;
		if (!d->kernel)
			break;
		d->slot = pinned_kh_bound(d->pin_dir, d->cookie, &d->up);
		if (d->slot < 0)
			usleep(20 * 1000);
	}
	if (!d->size)
		goto out;
	snprintf(req, sizeof(req), "GET /ts/close/%d HTTP/1.1\r\nHost: bulk\r\n\r\n", d->size);
	t0 = ms_now();
	if (send_all(r.fd, req, strlen(req))) {
		d->err = __LINE__;
		goto out;
	}
	usleep(d->delay_ms * 1000);
	d->end = read_resp(&r, "GET", &p, NULL);
	d->ms = ms_now() - t0;
	if (d->end || p.status != 200) {
		d->err = __LINE__;
		goto out;
	}
	d->conn_close = !strcasecmp(resp_header(&p, "Connection", v, sizeof(v)) ?: "", "close");
	d->body = (long long)p.body_len;
	for (size_t i = 0; i < p.body_len; i++)
		d->bad += p.body[i] != (char)('a' + i % 23);
out:
	resp_free(&p);
	rd_close(&r);
	return d->err ? 1 : 0;
}

/* One connection of cdel_run in echo-v2's pod; false when it did not run. */
static bool cdel_start(struct http_env *e, struct cdel *d, int size, int delay_ms)
{
	pid_t pid;

	memset(d, 0, sizeof(*d));
	snprintf(d->ip, sizeof(d->ip), "%s", e->bulk);
	snprintf(d->pin_dir, sizeof(d->pin_dir), "%s", e->ag.pin_dir);
	d->kernel = e->kernel;
	d->size = size;
	d->delay_ms = delay_ms;
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, cdel_run, d);
	if (!ASSERT_GT(pid, 0, "client process"))
		return false;
	child_wait(pid, 30000);
	return true;
}

/* The close-delimited response of one connection (above), and what the data path did. */
static void cdel_case(struct http_env *e, struct cdel *d, int size, int delay_ms)
{
	double served0 = scrape(e, KH_SERIES("served")), miss0 = scrape(e, KH_SERIES("no_upstream"));
	double ks0, ke0, ks1, ke1, eofs0 = scrape(e, "gammad_http_engine_kernel_eofs_total");
	uint64_t up;

	kh_scrape(e, &ks0, &ke0);
	if (!cdel_start(e, d, size, delay_ms))
		return;
	kh_scrape(e, &ks1, &ke1);
	test__printf("close-delimited %d B: %d requests before it, slot %ld; read %lld body bytes "
		     "(%lld wrong), end %d after %lld ms (line %d)\n", size, d->warm, d->slot,
		     d->body, d->bad, d->end, d->ms, d->err > 0 ? d->err : 0);
	ASSERT_EQ(d->err, 0, "client (-errno, or a line of cdel_run)");
	ASSERT_EQ(d->end, 0, "the client reads EOF, not its timeout");
	ASSERT_EQ(d->body, size, "the whole body");
	ASSERT_EQ(d->bad, 0, "every byte in place");
	if (!e->kernel) {
		ASSERT_TRUE(d->conn_close, "the engine's head says Connection: close");
		return;
	}
	if (!ASSERT_GE(d->slot, 0, "the connection bound to an upstream slot"))
		return;
	/* every request the kernel's: served, or a miss the engine answered */
	ASSERT_EQ(ks1 - ks0 + (ke1 - ke0), d->warm + 1, "every request decided in the kernel");
	ASSERT_EQ(ke1 - ke0, scrape(e, KH_SERIES("no_upstream")) - miss0, "only misses to the engine");
	ASSERT_GE(scrape(e, KH_SERIES("served")) - served0, 2,
		  "the request that bound it and the close-delimited one served in the kernel");
	ASSERT_EQ(scrape(e, "gammad_http_engine_kernel_eofs_total") - eofs0, 1,
		  "the engine ended the client after the kernel's response (kernel_eofs)");
	ASSERT_LT(pinned_kh_upstream(e->ag.pin_dir, d->up), 0,
		  "the closed upstream out of the sockhash (its slot re-armed, never claimed again)");
	ASSERT_LT(pinned_kh_bound(e->ag.pin_dir, d->cookie, &up), 0, "the client holds no slot");
}

/*
 * 7. A close-delimited response on a connection the kernel serves (its
 * requests on an upstream slot of the pool): the client gets the whole
 * body and then EOF (its connection closed, as the engine closes after
 * such a response), not its receive timeout; the upstream that the server
 * closed leaves the sockhash and the client's slot (never claimed again),
 * and a new connection is bound to another upstream of the pool after it.
 * A megabyte read 300 ms late (the kernel's bytes queued at the client
 * when the server's FIN comes) and 100 bytes read at once (the FIN on the
 * last data segment).
 */
static void subtest_close_delimited(struct http_env *e)
{
	struct cdel *d = shared_alloc(sizeof(*d)), *d2 = shared_alloc(sizeof(*d2));

	if (!ASSERT_OK_PTR(d, "shared memory") || !ASSERT_OK_PTR(d2, "shared memory"))
		goto out;
	cdel_case(e, d, 1 << 20, 300);
	cdel_case(e, d, 100, 0);
	if (!e->kernel || !cdel_start(e, d2, 0, 0))
		goto out;
	/* the pool serves on, on another upstream */
	ASSERT_EQ(d2->err, 0, "next client");
	ASSERT_GE(d2->slot, 0, "a new connection bound to an upstream slot");
	ASSERT_NEQ(d2->up, d->up, "not the closed upstream");
out:
	if (d)
		shared_free(d, sizeof(*d));
	if (d2)
		shared_free(d2, sizeof(*d2));
}

/*
 * 8. A client killed while its request waits for the upstream: the engine
 * closes the upstream connection (the server sees its peer close) and its
 * connection counts go back.
 */
static void subtest_client_killed(struct http_env *e)
{
	struct hold *h = shared_alloc(sizeof(*h));
	int hang0 = __atomic_load_n(&e->ts.hang_requests, __ATOMIC_RELAXED);
	int closed0 = __atomic_load_n(&e->ts.closed_after_hang, __ATOMIC_RELAXED);
	double clients0 = scrape(e, "gammad_http_engine_clients"), clients = -1, held;
	double ups0 = scrape(e, "gammad_http_engine_upstreams");
	long long t0;
	pid_t pid;

	if (!ASSERT_OK_PTR(h, "shared memory"))
		return;
	snprintf(h->ip, sizeof(h->ip), "%s", e->bulk);
	h->port = BULK_PORT;
	snprintf(h->req, sizeof(h->req), "GET /ts/hang HTTP/1.1\r\nHost: bulk\r\n\r\n");
	pid = child_start_bare(e->v2->container_cgroup, e->v2->netns, hold_run, h);
	if (!ASSERT_GT(pid, 0, "client process"))
		goto out;
	for (t0 = ms_now(); __atomic_load_n(&e->ts.hang_requests, __ATOMIC_RELAXED) == hang0 &&
			    ms_now() - t0 < 5000;)
		usleep(10000);
	held = scrape(e, "gammad_http_engine_clients");
	ASSERT_EQ(held, clients0 + 1, "the engine holds the client");
	child_kill(pid);
	for (t0 = ms_now(); ms_now() - t0 < 5000; usleep(20000)) {
		clients = scrape(e, "gammad_http_engine_clients");
		if (__atomic_load_n(&e->ts.closed_after_hang, __ATOMIC_RELAXED) > closed0 &&
		    clients == clients0)
			break;
	}
	test__printf("client killed: released after %lld ms\n", ms_now() - t0);
	ASSERT_GT(__atomic_load_n(&e->ts.closed_after_hang, __ATOMIC_RELAXED), closed0,
		  "its upstream connection released");
	ASSERT_EQ(clients, clients0, "the engine's client count back");
	ASSERT_LE(scrape(e, "gammad_http_engine_upstreams"), ups0,
		  "no upstream connection left open for it");
out:
	shared_free(h, sizeof(*h));
}

/* ---- what is not HTTP: server-first, TLS ------------------------------------ */

#define GREETING "220 hello\n"

struct firstsrv {
	volatile int ready;
	int err;
};

/*
 * In echo-v1's netns: per connection a greeting first, then every byte
 * back, each connection in a child of its own (upstreams of a pool made
 * ahead sit idle on it; one at a time, the test's waited behind them).
 */
static int firstsrv_run(void *arg)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(FIRST_PORT) };
	struct firstsrv *f = arg;
	int lfd, zero = 0, one = 1;

	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin6, sizeof(sin6)) || listen(lfd, 8)) {
		f->err = -errno;
		return 1;
	}
	__atomic_store_n(&f->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		char buf[4096];
		ssize_t n;
		int fd = accept(lfd, NULL, NULL);
		pid_t pid;

		if (fd < 0)
			return 1;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		pid = fork();
		if (pid) {
			close(fd);
			continue;
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* gone with the server (child_kill) */
		close(lfd);
		send_all(fd, GREETING, strlen(GREETING));
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			send_all(fd, buf, (size_t)n);
		_exit(0);
	}
}

struct firstcli {
	char ip[INET6_ADDRSTRLEN];
	int step, err;
	char got[256];
};

/* Read exactly n bytes (IO_TIMEOUT_S); 0 or -errno / -EIO. */
static int read_n(int fd, char *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = recv(fd, buf + got, n - got, 0);

		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

static int firstcli_run(void *arg)
{
	static const char tls[] = "\x16\x03\x01\x00\x0c\x01\x00\x00\x08\x03\x03hello!";
	struct firstcli *c = arg;
	char buf[256];
	int fd;

	/* 1. server-first: say nothing, the greeting comes (the engine's sniff time) */
	c->step = 1;
	fd = dial(c->ip, FIRST_PORT);
	if (fd < 0 || read_n(fd, buf, strlen(GREETING)) || memcmp(buf, GREETING, strlen(GREETING)))
		goto fail;
	/* then the client's bytes both ways, through the engine's tunnel */
	c->step = 2;
	if (send_all(fd, "ping\n", 5) || read_n(fd, buf, 5) || memcmp(buf, "ping\n", 5))
		goto fail;
	close(fd);
	/* 3. a TLS ClientHello at once: not HTTP, passed through whole */
	c->step = 3;
	fd = dial(c->ip, FIRST_PORT);
	if (fd < 0 || send_all(fd, tls, sizeof(tls) - 1) ||
	    read_n(fd, buf, strlen(GREETING) + sizeof(tls) - 1) ||
	    memcmp(buf, GREETING, strlen(GREETING)) ||
	    memcmp(buf + strlen(GREETING), tls, sizeof(tls) - 1))
		goto fail;
	close(fd);
	c->step = 0;
	return 0;
fail:
	c->err = fd < 0 ? fd : -errno;
	if (fd >= 0)
		close(fd);
	return 1;
}

/*
 * 9. What is not HTTP on a Service port with HTTP rules: a server-first
 * protocol (the client waits for the greeting) and a TLS ClientHello get
 * the backend through the engine's tunnel, with the kernel path on too
 * (the first: the engine took the silent connection before the client's
 * first message; the second: the kernel's parser handed it over).
 */
static void subtest_not_http(struct http_env *e)
{
	struct firstsrv *f = shared_alloc(sizeof(*f));
	struct firstcli *c = shared_alloc(sizeof(*c));
	double first0 = scrape(e, KH_SERIES("engine_first"));
	double bad0 = scrape(e, KH_SERIES("malformed"));
	pid_t srv = 0, cli;

	if (!ASSERT_OK_PTR(f, "shared memory") || !ASSERT_OK_PTR(c, "shared memory"))
		goto out;
	srv = child_start_bare(NULL, e->v1->netns, firstsrv_run, f);
	if (!ASSERT_GT(srv, 0, "server process") || !ASSERT_TRUE(wait_flag(&f->ready, 5000), "listening"))
		goto out;
	snprintf(c->ip, sizeof(c->ip), "%s", e->bulk);
	cli = child_start_bare(e->v2->container_cgroup, e->v2->netns, firstcli_run, c);
	if (ASSERT_GT(cli, 0, "client process"))
		child_wait(cli, 20000);
	ASSERT_EQ(c->step, 0, "server-first greeting, bytes both ways, a ClientHello passed through");
	ASSERT_EQ(c->err, 0, "client");
	if (e->kernel) {
		ASSERT_EQ(scrape(e, KH_SERIES("engine_first")) - first0, 1,
			  "the engine took the silent one first");
		ASSERT_EQ(scrape(e, KH_SERIES("malformed")) - bad0, 1,
			  "the kernel handed the ClientHello over");
	}
out:
	if (srv > 0)
		child_kill(srv);
	shared_free(f, sizeof(*f));
	shared_free(c, sizeof(*c));
}

/* ---- ResponseHeaderModifier ----------------------------------------------------- */

#define HDR_REQS 200

struct hdr_res {
	char ip[INET6_ADDRSTRLEN];
	int ok, err;
	char first_wrong[512];
};

/* HDR_REQS keep-alive requests on one connection, each response's edits checked. */
static int hdr_run(void *arg)
{
	struct hdr_res *h = arg;
	struct reader r = { .fd = dial(h->ip, 80) };
	char req[256], v1[64], v2[64], v3[64], v4[64];

	if (r.fd < 0) {
		h->err = r.fd;
		return 1;
	}
	for (int i = 0; i < HDR_REQS; i++) {
		struct resp p = { 0 };
		int n = snprintf(req, sizeof(req), "GET /hdr/%d HTTP/1.1\r\nHost: echo\r\n"
				 "X-Echo-Set-Header: X-Gone:g,X-Stay:s,X-Resp:old\r\n\r\n", i);

		if (send_all(r.fd, req, n) || read_resp(&r, "GET", &p, NULL)) {
			h->err = -EIO;
			resp_free(&p);
			break;
		}
		/* set replaced the echo's X-Resp, add added, remove removed, the rest kept */
		if (p.status == 200 && !strcmp(resp_header(&p, "X-Resp", v1, sizeof(v1)) ?: "", "k") &&
		    !strcmp(resp_header(&p, "X-Resp-Add", v2, sizeof(v2)) ?: "", "a") &&
		    !strcmp(resp_header(&p, "X-Stay", v3, sizeof(v3)) ?: "", "s") &&
		    !resp_header(&p, "X-Gone", v4, sizeof(v4)) && p.body &&
		    strstr(p.body, "\"path\": \"/hdr/"))
			h->ok++;
		else if (!h->first_wrong[0])
			snprintf(h->first_wrong, sizeof(h->first_wrong), "#%d: %.480s", i,
				 p.head ? p.head : "");
		resp_free(&p);
	}
	close(r.fd);
	free(r.buf);
	return 0;
}

/*
 * Response heads the kernel cannot edit (33 fields; over 4096 bytes, for a
 * request that fits in 4096), each on a connection of its own and
 * followed by a second request on it: both answered whole, both edited.
 */
static int hdr_big_run(void *arg)
{
	struct hdr_res *h = arg;
	char *req = malloc(8192), *val = malloc(4096), v1[64], v2[64], v3[64], v4[64];
	int n, vn;

	if (!req || !val) {
		h->err = -ENOMEM;
		goto out;
	}
	for (int c = 0; c < 2; c++) {
		struct reader r = { .fd = dial(h->ip, 80) };

		if (r.fd < 0) {
			h->err = r.fd;
			break;
		}
		if (c == 0) {
			vn = 0;
			for (int i = 0; i < 33; i++)
				vn += snprintf(val + vn, 4096 - vn, "X-F%d:%d,", i, i);
			vn--;	/* the last comma */
			val[vn] = 0;
		} else {
			/* the request 4048 bytes (the kernel's), its response's head over 4096 */
			vn = snprintf(val, 4096, "X-Big:");
			memset(val + vn, 'v', 3960 - vn);
			vn = 3960;
			val[vn] = 0;
		}
		for (int i = 0; i < 2; i++) {
			struct resp p = { 0 };
			bool ok;

			n = snprintf(req, 8192, "GET /hdr/%s%d HTTP/1.1\r\nHost: echo\r\n"
				     "X-Echo-Set-Header: %s%s\r\n\r\n", c ? "big" : "fields", i,
				     i ? "X-Gone:g,X-Stay:s,X-Resp:old" : val,
				     i ? "" : ",X-Gone:g,X-Stay:s,X-Resp:old");
			if (send_all(r.fd, req, n) || read_resp(&r, "GET", &p, NULL)) {
				h->err = -EIO;
				resp_free(&p);
				break;
			}
			ok = p.status == 200 &&
			     !strcmp(resp_header(&p, "X-Resp", v1, sizeof(v1)) ?: "", "k") &&
			     !strcmp(resp_header(&p, "X-Resp-Add", v2, sizeof(v2)) ?: "", "a") &&
			     !strcmp(resp_header(&p, "X-Stay", v3, sizeof(v3)) ?: "", "s") &&
			     !resp_header(&p, "X-Gone", v4, sizeof(v4)) && p.body &&
			     strstr(p.body, c ? "\"path\": \"/hdr/big" : "\"path\": \"/hdr/fields");
			/* and the upstream's own fields of the big heads, all of them */
			if (ok && !i && !c)
				ok = p.h.nr_headers >= 36 &&
				     !strcmp(resp_header(&p, "X-F32", v1, sizeof(v1)) ?: "", "32");
			if (ok && !i && c)
				ok = strlen(p.head) > 4096 && strstr(p.head, "\r\nX-Big: vvv");
			if (ok)
				h->ok++;
			else if (!h->first_wrong[0])
				snprintf(h->first_wrong, sizeof(h->first_wrong), "%d/%d: %.480s", c,
					 i, p.head ? p.head : "");
			resp_free(&p);
		}
		close(r.fd);
		free(r.buf);
		if (h->err)
			break;
	}
out:
	free(req);
	free(val);
	return 0;
}

/*
 * 10. ResponseHeaderModifier (echo's /hdr): every response edited exactly
 * as the engine edits it. With --sockmap the echo pod's responses are
 * edited in the kernel (served); over TCP the connection's first such
 * request that finds an upstream hands it to the engine (resp_edit_tcp),
 * which edits them. A request that finds no pool yet (on demand: beyond
 * --kernel-http-ahead, not the lab's routes) is the engine's alone: the
 * connection comes back.
 */
static void subtest_resp_edits(struct http_env *e)
{
	struct hdr_res *h = shared_alloc(sizeof(*h));
	double served0 = scrape(e, KH_SERIES("served")), tcp0 = scrape(e, KH_SERIES("resp_edit_tcp"));
	double cut0 = scrape(e, KH_SERIES("resp_edit_cut"));
	double miss0 = scrape(e, KH_SERIES("no_upstream")), miss;
	double eng0 = scrape(e, KH_SERIES("resp_edit_engine"));
	double redits0 = scrape(e, "gammad_http_engine_kernel_relay_edits_total");
	pid_t cli;

	if (!ASSERT_OK_PTR(h, "shared memory"))
		return;
	snprintf(h->ip, sizeof(h->ip), "%s", e->echo);
	cli = child_start_bare(e->v2->container_cgroup, e->v2->netns, hdr_run, h);
	if (ASSERT_GT(cli, 0, "client process"))
		child_wait(cli, 30000);
	ASSERT_EQ(h->err, 0, "client");
	if (!ASSERT_EQ(h->ok, HDR_REQS, "responses edited as the rule says"))
		test__printf("first wrong: %s\n", h->first_wrong);
	miss = scrape(e, KH_SERIES("no_upstream")) - miss0;
	if (e->kernel && e->sockmap) {
		ASSERT_EQ(scrape(e, KH_SERIES("served")) - served0 + miss, HDR_REQS,
			  "served in the kernel (but the misses while the pool was made)");
		ASSERT_GT(scrape(e, KH_SERIES("served")) - served0, 0, "served in the kernel");
		ASSERT_GE(gammactl_served(e), HDR_REQS - miss, "gammactl stats: served");
		ASSERT_EQ(scrape(e, KH_SERIES("resp_edit_tcp")) - tcp0, 0, "none to the engine");
	} else if (e->kernel) {
		ASSERT_LE(scrape(e, KH_SERIES("resp_edit_tcp")) - tcp0, 1,
			  "the connection to the engine (for good) once");
		ASSERT_GE(scrape(e, KH_SERIES("resp_edit_tcp")) - tcp0 + miss, 1,
			  "the connection to the engine at its first request");
		ASSERT_GE(gammactl_kh_row(e, "resp_edit_tcp"), 1, "gammactl stats: resp_edit_tcp");
	}
	/*
	 * Heads the kernel cannot edit: with --sockmap it stops at the head,
	 * the engine relays the rest edited (resp_edit_engine, one relay each)
	 * and serves the connection's next request; else the engine had them.
	 */
	memset(h, 0, sizeof(*h));
	snprintf(h->ip, sizeof(h->ip), "%s", e->echo);
	cli = child_start_bare(e->v2->container_cgroup, e->v2->netns, hdr_big_run, h);
	if (ASSERT_GT(cli, 0, "client process"))
		child_wait(cli, 30000);
	ASSERT_EQ(h->err, 0, "client (big heads)");
	if (!ASSERT_EQ(h->ok, 4, "big heads and the requests after them edited"))
		test__printf("first wrong: %s\n", h->first_wrong);
	if (e->kernel && e->sockmap) {
		ASSERT_EQ(scrape(e, KH_SERIES("resp_edit_engine")) - eng0, 2,
			  "counted: resp_edit_engine");
		ASSERT_EQ(gammactl_kh_row(e, "resp_edit_engine"), 2, "gammactl stats: resp_edit_engine");
		ASSERT_EQ(scrape(e, "gammad_http_engine_kernel_relay_edits_total") - redits0, 2,
			  "the engine relayed and edited both");
	}
	if (e->kernel)
		ASSERT_EQ(scrape(e, KH_SERIES("resp_edit_cut")) - cut0, 0, "no client cut");
	shared_free(h, sizeof(*h));
}

/* Upstream slots paired with a same-node server socket now (gammad_khsvs_v1 != 0). */
static void run_http(bool kernel, bool sockmap)
{
	char maddr[64];
	const char *args[] = { "--http-engine", "--metrics-addr", maddr,
			       kernel ? "--kernel-http" : NULL, "--kernel-http-idle=" KH_IDLE,
			       sockmap ? "--sockmap" : NULL, NULL };
	struct http_env e = { .ts.lfd = -1, .kernel = kernel, .sockmap = sockmap };
	double served = 0, engine = 0;
	char pin[128];
	long ctl;

	if (lab_env_start_mesh(&e.lab, bulk_service))
		goto cleanup;
	e.v1 = lab_env_find(&e.lab, MESH_NS, "echo-v1");
	e.v2 = lab_env_find(&e.lab, MESH_NS, "echo-v2");
	if (!ASSERT_OK_PTR(e.v1, "echo-v1") || !ASSERT_OK_PTR(e.v2, "echo-v2") ||
	    !lab_env_cluster_ip(&e.lab, MESH_NS, "echo", false, e.echo) ||
	    !lab_env_cluster_ip(&e.lab, MESH_NS, "bulk", false, e.bulk))
		goto cleanup;
	if (!ASSERT_OK(ts_start_at(&e.ts, e.v1->netns, BULK_PORT), "test server in echo-v1"))
		goto cleanup;
	e.metrics_port = echo_free_port(SOCK_STREAM);
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%u", e.metrics_port);
	if (!ASSERT_OK(agent_env_init(&e.ag, &e.lab), "agent dir"))
		goto cleanup;
	e.ag.args = args;
	if (!ASSERT_OK(agent_env_write(&e.ag, "routes.yaml", routes), "routes") ||
	    !ASSERT_OK(agent_env_start(&e.ag), "gammad run --http-engine"))
		goto cleanup;
	usleep(300 * 1000);	/* the pods' listeners (steer.c) follow the first apply */
	if (kernel && test__start_subtest("pools_ahead"))
		subtest_pools_ahead(&e);
	if (kernel && test__start_subtest("pools_on_demand"))
		subtest_pools(&e);
	if (test__start_subtest("keepalive_10k"))
		subtest_keepalive(&e);
	if (test__start_subtest("concurrent_100x200"))
		subtest_concurrent(&e);
	if (test__start_subtest("bodies_10mb"))
		subtest_bodies(&e);
	if (test__start_subtest("pipelined"))
		subtest_pipelined(&e);
	if (test__start_subtest("slow_reader"))
		subtest_slow_reader(&e);
	if (test__start_subtest("upstream_killed"))
		subtest_upstream_killed(&e);
	if (test__start_subtest("close_delimited"))
		subtest_close_delimited(&e);
	if (test__start_subtest("client_killed"))
		subtest_client_killed(&e);
	if (test__start_subtest("not_http"))
		subtest_not_http(&e);
	if (test__start_subtest("resp_edits"))
		subtest_resp_edits(&e);
	if (kernel && test__start_subtest("served_in_kernel")) {
		test__printf("kernel HTTP pools after the subtests: %ld pools, %ld upstream sockets\n",
			     pinned_entries(e.ag.pin_dir, GAMMAD_MAP_KH_POOL),
			     pinned_entries(e.ag.pin_dir, GAMMAD_MAP_KH_UP));
		kh_scrape(&e, &served, &engine);
		ctl = gammactl_served(&e);
		test__printf("kernel HTTP over all subtests: %.0f served in the kernel, %.0f handed "
			     "to the engine (%.1f%%); gammactl stats: served %ld\n", served, engine,
			     served + engine > 0 ? 100 * served / (served + engine) : 0, ctl);
		ASSERT_EQ(agent_env_log_count(&e.ag, "kernel HTTP data path: on"), 1,
			  "the agent runs the kernel path");
		/* part of the pinned data path (gammad uninstall removes the pin dir) */
		snprintf(pin, sizeof(pin), "%s/link_kh_sockops", e.ag.pin_dir);
		ASSERT_OK(access(pin, F_OK), "link_kh_sockops pinned");
		ASSERT_GT(pinned_entries(e.ag.pin_dir, GAMMAD_MAP_KH_SLOT), 0, "upstream slots pinned");
		ASSERT_GE(pinned_entries(e.ag.pin_dir, GAMMAD_MAP_KH_CLI), 0, "client sockhash pinned");
		/* more than half of what the subtests sent (the 10,000 of keepalive_10k alone) */
		ASSERT_GT(served, 5000, "/metrics: served in the kernel");
		ASSERT_GE(ctl, (long)served, "gammactl stats: served in the kernel");
		/* same-node server sockets: with --sockmap, the echo pods' upstreams are paired */
		pools_warm(&e);	/* grown again: one upstream each at rest after the idle time */
		if (sockmap)
			ASSERT_GT(pinned_kh_paired(e.ag.pin_dir), 0, "same-node server sockets paired");
		else
			ASSERT_EQ(pinned_kh_paired(e.ag.pin_dir), 0, "no pairing without --sockmap");
	}
cleanup:
	agent_env_fini(&e.ag);
	ts_stop(&e.ts);
	lab_env_fini(&e.lab);
}

void test_agent_http(void)
{
	run_http(false, false);
}

/* The same scenarios with the kernel HTTP path on (issue 13): served in the kernel. */
void test_agent_http_kernel(void)
{
	run_http(true, false);
}

/*
 * And with --sockmap too: upstreams to the echo pods (this node's) are
 * paired with the pods' accepted sockets, so requests and responses cross
 * no TCP (bpf/khttp.bpf.c, gammad_kh_server).
 */
void test_agent_http_kernel_sk(void)
{
	run_http(true, true);
}
