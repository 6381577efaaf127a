// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP engine (user/lib/engine) over real loopback sockets, without the
 * kernel steering: the test listens itself, accepts, and hands each
 * connection to the engine with the ClusterIP:port a client would have
 * dialed. Backends are build/echo servers (they say which pod answered and
 * what arrived) and the test server of tests/lib/http_tsrv.h for what echo cannot do
 * (checksummed bodies, chunked and close-delimited responses, a backend that
 * dies mid-response, one that never answers, an endless download, 101).
 * Responses are read with the library's own parser (http/http1.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "test_progs.h"
#include "gammad/maps.h"
#include "lib/echo_harness.h"
#include "lib/http_reader.h"
#include "lib/http_tsrv.h"
#include "lib/ops.h"
#include "engine/engine.h"
#include "http/http1.h"
#include "input/manifest.h"
#include "translate/translate_eval.h"

#define VIP "10.96.0.10"
#define VIP6 "fd00::10"
#define BUF_SIZE (16 * 1024)		/* the engine's buffers in this test */
#define HEADER_TIMEOUT_MS 400
#define IO_TIMEOUT_MS 5000
#define SNIFF_TIMEOUT_MS 200	/* a silent client is server-first after this */
#define LOOPS 3			/* the engine's event loops here: more than CPUs, connections spread */

static long long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000LL + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- the fixture ------------------------------------------------------------ */

struct fix {
	struct echo_proc echo[3];	/* pods b1, b2, b3 */
	struct tsrv ts;
	uint16_t dead_port;
	struct model m[2];		/* the first translation's, a second one's */
	struct diag dg;
	struct engine *e;
	int lfd;
	uint16_t lport;
	pthread_mutex_t log_lock;	/* what on_request saw */
	int nr_logs;
	struct {
		int status;
		bool complete, entry;
		char backend[64];
	} logs[64];			/* the last ones, a ring */
	int sockets;			/* upstream_socket() calls */
	void *last_netns;		/* and the netns_ctx of the last */
	int aff_fd;			/* a gammad_aff_v1 of the test's own */
};

#define STICKY_BE_ID	17		/* the kernel id the test gives sticky:80 */

#define SVC(name, ip) \
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec:\n  clusterIP: " ip "\n  ports: [{name: http, port: 80}]\n"
#define SLICE(name, port) \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " name "-1, namespace: app, labels: {kubernetes.io/service-name: " name "}}\n" \
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n" \
	"ports:\n- {name: http, port: " port "}\n"
#define SLICE6(name, port) \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " name "-6, namespace: app, labels: {kubernetes.io/service-name: " name "}}\n" \
	"addressType: IPv6\nendpoints:\n- addresses: [\"::1\"]\n  conditions: {ready: true}\n" \
	"ports:\n- {name: http, port: " port "}\n"
#define RULE(match, filters, backends) \
	"  - matches: [" match "]\n" filters "    backendRefs: [" backends "]\n"
#define PREFIX(v) "{path: {type: PathPrefix, value: \"" v "\"}}"

/*
 * Service a (VIP:80) has the route; b1, b2, b3 are the echo pods, ts the test
 * server, dead a port nothing listens on, six (IPv6, no route) echo b2 over
 * ::1, sticky (sessionAffinity ClientIP, no route) echo b1 and b3. A consumer
 * route of namespace other sends its clients to o3 (echo b3). The printf
 * arguments: the ports of b1, b2, b3, ts, dead, six, sticky's two, o3, then
 * the backend of /b1 (b1, or b3 in the second translation).
 */
static const char routes_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n"
	SVC("a", VIP) SVC("b1", "10.96.0.11") SVC("b2", "10.96.0.12") SVC("b3", "10.96.0.13")
	SVC("ts", "10.96.0.14") SVC("bempty", "10.96.0.15") SVC("dead", "10.96.0.16")
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: six, namespace: app}\n"
	"spec:\n  clusterIPs: [\"" VIP6 "\"]\n  ipFamilies: [IPv6]\n  ports: [{name: http, port: 80}]\n"
	SLICE("b1", "%u") SLICE("b2", "%u") SLICE("b3", "%u") SLICE("ts", "%u") SLICE("dead", "%u")
	SLICE6("six", "%u")
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: sticky, namespace: app}\n"
	"spec:\n  clusterIP: 10.96.0.17\n  ports: [{name: http, port: 80}]\n"
	"  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"
	SLICE("sticky", "%u")
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: sticky-2, namespace: app, labels: {kubernetes.io/service-name: sticky}}\n"
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n"
	"ports:\n- {name: http, port: %u}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: o3, namespace: other}\n"
	"spec:\n  clusterIP: 10.96.1.3\n  ports: [{name: http, port: 80}]\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: o3-1, namespace: other, labels: {kubernetes.io/service-name: o3}}\n"
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n"
	"ports:\n- {name: http, port: %u}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: consumer, namespace: other}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app, port: 80}]\n"
	"  rules:\n  - backendRefs: [{name: o3, port: 80}]\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: r, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	RULE("{path: {type: PathPrefix, value: /v}, headers: [{name: x-version, value: v2}]}", "",
	     "{name: b2, port: 80}")
	RULE(PREFIX("/v"), "", "{name: b1, port: 80}")
	RULE(PREFIX("/b1"), "", "{name: %s, port: 80}")
	RULE(PREFIX("/dead"), "", "{name: dead, port: 80}")
	RULE(PREFIX("/mirror/full"),
	     "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: b3, port: 80}}}]\n",
	     "{name: b1, port: 80}")
	RULE(PREFIX("/mirror/half"),
	     "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: b3, port: 80}, "
	     "fraction: {numerator: 1, denominator: 2}}}]\n",
	     "{name: b1, port: 80}")
	RULE(PREFIX("/slow"), "    timeouts: {request: 300ms, backendRequest: 10s}\n", "{name: b1, port: 80}")
	RULE(PREFIX("/b2"), "", "{name: b2, port: 80}")
	RULE(PREFIX("/split"), "", "{name: b1, port: 80, weight: 80}, {name: b3, port: 80, weight: 20}")
	RULE("{path: {type: Exact, value: /old}}",
	     "    filters: [{type: RequestRedirect, requestRedirect: {hostname: new.example.com, "
	     "path: {type: ReplaceFullPath, replaceFullPath: /new/place}, statusCode: 301}}]\n", "")
	RULE(PREFIX("/rewrite"),
	     "    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example, "
	     "path: {type: ReplacePrefixMatch, replacePrefixMatch: /prefix}}}]\n",
	     "{name: b1, port: 80}")
	RULE(PREFIX("/hdr"),
	     "    filters:\n"
	     "    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Set, value: s1}], "
	     "add: [{name: X-Add, value: a1}], "
	     "remove: [X-Drop]}}\n"
	     "    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Resp, value: r1}, "
	     "{name: Content-Length, value: \"3\"}], remove: [X-Gone, Content-Length]}}\n",
	     "{name: b1, port: 80}")
	RULE(PREFIX("/invalid"), "", "{name: nosuch, port: 80}")
	RULE(PREFIX("/empty"), "", "{name: bempty, port: 80}")
	RULE(PREFIX("/ts"), "", "{name: ts, port: 80}")
	/* a route has at most 16 rules: a second one on the same port */
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: r2, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	RULE(PREFIX("/ts/flaky"), "    retry: {codes: [503], attempts: 2, backoff: 10ms}\n",
	     "{name: ts, port: 80}")
	RULE(PREFIX("/ts/once"), "    retry: {codes: [503], attempts: 1}\n", "{name: ts, port: 80}")
	"  - name: named\n    matches: [" PREFIX("/named") "]\n    backendRefs: [{name: b2, port: 80}]\n"
	RULE(PREFIX("/mbody"),
	     "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: ts, port: 80}}}]\n",
	     "{name: b1, port: 80}")
	/* tcpf: a route whose backend speaks the echo's TCP line protocol (b1's --tcp port) */
	SVC("tcpf", "10.96.0.18") SVC("lineb", "10.96.0.19") SLICE("lineb", "%u")
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: rt, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: tcpf}]\n  rules:\n"
	"  - backendRefs: [{name: lineb, port: 80}]\n";

static int released;	/* translations the engine gave back */

static void release_tables(void *ctx, struct tr_result *res)
{
	__atomic_add_fetch(&released, 1, __ATOMIC_RELAXED);
	tr_result_free(res);
	free(res);
}

/* Load the manifests into m with /b1 going to b1_backend; a translation on the heap. */
static struct tr_result *load(struct fix *f, struct model *m, const char *b1_backend)
{
	uint16_t b2 = echo_proc_port(&f->echo[1], "http", 0);
	struct tr_result *res;
	char *yaml = NULL;
	int ret;

	if (asprintf(&yaml, routes_yaml, echo_proc_port(&f->echo[0], "http", 0), b2,
		     echo_proc_port(&f->echo[2], "http", 0), f->ts.port, f->dead_port, b2,
		     echo_proc_port(&f->echo[0], "http", 0), echo_proc_port(&f->echo[2], "http", 0),
		     echo_proc_port(&f->echo[2], "http", 0), b1_backend,
		     echo_proc_port(&f->echo[0], "tcp", 0)) < 0)
		return NULL;
	ret = manifest_load_buf(m, "engine.yaml", yaml, strlen(yaml), &f->dg);
	free(yaml);
	/* a rejected route would quietly turn the tests into 503s */
	if (!ASSERT_OK(ret, "manifests") || !ASSERT_EQ(f->dg.nr_errors, 0, "manifest errors")) {
		for (size_t i = 0; i < f->dg.nr; i++)
			test__printf("%s\n", f->dg.entries[i].msg);
		return NULL;
	}
	res = calloc(1, sizeof(*res));
	if (!res)
		return NULL;
	ret = translate(m, &f->dg, res);
	if (!ASSERT_OK(ret, "translate")) {
		free(res);
		return NULL;
	}
	return res;
}

/* What the steering side gives: here a plain socket, counted. */
static int test_socket(void *ctx, int family, void *netns_ctx)
{
	struct fix *f = ctx;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	__atomic_add_fetch(&f->sockets, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&f->last_netns, netns_ctx, __ATOMIC_RELAXED);
	return fd < 0 ? -errno : fd;
}

/* The agent reads be_ids from the object table; here only sticky:80 has one. */
static int test_backend_id(void *ctx, const char *ns, const char *name, uint16_t port,
			   uint8_t family, uint32_t *be_id)
{
	if (strcmp(ns, "app") || strcmp(name, "sticky") || port != 80 || family != AF_INET)
		return -ENOENT;
	*be_id = STICKY_BE_ID;
	return 0;
}

static void log_request(void *ctx, const struct engine_request_log *l)
{
	struct fix *f = ctx;
	int i;

	pthread_mutex_lock(&f->log_lock);
	i = f->nr_logs++ % 64;
	f->logs[i].status = l->status;
	f->logs[i].complete = l->complete;
	f->logs[i].entry = l->entry;
	snprintf(f->logs[i].backend, sizeof(f->logs[i].backend), "%s",
		 l->backend ? l->backend->name : "-");
	pthread_mutex_unlock(&f->log_lock);
}

static int fix_start(struct fix *f)
{
	static const char *const pods[] = { "b1", "b2", "b3" };
	struct engine_opts o = {
		.upstream_socket = test_socket,
		.ctx = f,
		.release_tables = release_tables,
		.on_request = log_request,
		.buf_size = BUF_SIZE,
		.header_timeout_ms = HEADER_TIMEOUT_MS,
		.sniff_timeout_ms = SNIFF_TIMEOUT_MS,
		.backend_id = test_backend_id,
		.threads = LOOPS,
	};
	struct tr_result *res;
	int ret;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->log_lock, NULL);
	f->lfd = f->ts.lfd = -1;
	/* sessionAffinity lives in the kernel's table: a real one, as the agent's */
	f->aff_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "test_aff", sizeof(struct gammad_aff_key),
				   sizeof(struct gammad_aff_val), 1024, NULL);
	if (!ASSERT_GE(f->aff_fd, 0, "affinity map"))
		return -errno;
	o.affinity_fd = f->aff_fd;
	model_init(&f->m[0]);
	model_init(&f->m[1]);
	for (int i = 0; i < 3; i++) {
		/* -v: b3 logs every request, the mirror test counts them */
		const char *args[] = { "--port=0", "--tcp=0", "--pod", pods[i], "--namespace", "app",
				       i == 2 ? "-v" : NULL, NULL };

		ret = echo_proc_start(&f->echo[i], args, NULL);
		if (!ASSERT_OK(ret, "echo start"))
			return ret;
	}
	ret = ts_start(&f->ts);
	if (!ASSERT_OK(ret, "test server"))
		return ret;
	f->dead_port = echo_free_port(SOCK_STREAM);
	res = load(f, &f->m[0], "b1");
	if (!res)
		return -EINVAL;
	f->e = engine_new(&o);
	if (!ASSERT_OK_PTR(f->e, "engine_new")) {
		tr_result_free(res);
		free(res);
		return -ENOMEM;
	}
	ret = engine_set_tables(f->e, res);
	if (!ASSERT_OK(ret, "engine_set_tables"))
		return ret;
	ret = engine_start(f->e);
	if (!ASSERT_OK(ret, "engine_start"))
		return ret;
	f->lfd = ts_listen_loopback(&f->lport);
	return ASSERT_GE(f->lfd, 0, "listen") ? 0 : f->lfd;
}

static void fix_stop(struct fix *f)
{
	if (f->e) {
		engine_stop(f->e);
		engine_free(f->e);
	}
	ts_stop(&f->ts);
	for (int i = 0; i < 3; i++)
		if (f->echo[i].pid)
			echo_proc_stop(&f->echo[i]);
	if (f->lfd >= 0)
		close(f->lfd);
	model_free(&f->m[0]);
	model_free(&f->m[1]);
	diag_free(&f->dg);
	pthread_mutex_destroy(&f->log_lock);
	if (f->aff_fd >= 0)
		close(f->aff_fd);
}

/* "status:backend:entry" of the log k requests back (0: the last), waiting for it a little. */
static const char *log_back(struct fix *f, int since, int k, char *buf, size_t len)
{
	struct timespec t0;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		pthread_mutex_lock(&f->log_lock);
		n = f->nr_logs;
		if (n - since > k) {
			int i = (n - 1 - k) % 64;

			snprintf(buf, len, "%d:%s:%s%s", f->logs[i].status, f->logs[i].backend,
				 f->logs[i].entry ? "rule" : "-", f->logs[i].complete ? "" : ":cut");
		}
		pthread_mutex_unlock(&f->log_lock);
		if (n - since > k)
			return buf;
		usleep(5000);
	} while (ms_since(&t0) < 2000);
	return "none";
}

/* A client connection through the engine, as if a pod in ns had dialed vip:80. */
static int client_netns(struct fix *f, const char *vip, const char *ns, void *netns_ctx)
{
	/* each fake pod its own netns cookie, as the agent's listeners give */
	struct engine_origin o = { .vport = 80, .client_pod = "test/client", .netns_ctx = netns_ctx,
				   .netns_cookie = (uintptr_t)netns_ctx };
	struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
	int cfd, afd;

	ip_addr_parse(vip, &o.vip);
	snprintf(o.client_ns, sizeof(o.client_ns), "%s", ns);
	cfd = echo_connect(AF_INET, f->lport);
	if (cfd < 0)
		return cfd;
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	afd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (afd < 0 || engine_adopt(f->e, afd, &o)) {
		close(cfd);
		return -EIO;
	}
	return cfd;
}

static int client_to(struct fix *f, const char *vip, const char *ns)
{
	return client_netns(f, vip, ns, NULL);
}

static int client(struct fix *f)
{
	return client_to(f, VIP, "app");
}

/* ---- the subtests ----------------------------------------------------------- */

#define GET(path, extra) "GET " path " HTTP/1.1\r\nHost: a.app\r\n" extra "\r\n"

/* A request with n body bytes (ts_fill from off), Content-Length or chunked; its checksum. */
static char *body_req(const char *path, size_t n, size_t off, bool chunked, size_t *len,
		      uint64_t *sum)
{
	char *body = malloc(n + 1), *out = NULL;
	FILE *f = open_memstream(&out, len);

	ts_fill(body, n, off);
	*sum = ts_fnv1a(TS_FNV_INIT, body, n);
	fprintf(f, "POST %s HTTP/1.1\r\nHost: a.app\r\n", path);
	if (!chunked) {
		fprintf(f, "Content-Length: %zu\r\n\r\n", n);
		fwrite(body, 1, n, f);
	} else {
		fprintf(f, "Transfer-Encoding: chunked\r\n\r\n");
		for (size_t o = 0; o < n; o += 7000) {
			size_t k = n - o < 7000 ? n - o : 7000;

			fprintf(f, "%zx\r\n", k);
			fwrite(body + o, 1, k, f);
			fprintf(f, "\r\n");
		}
		fprintf(f, "0\r\n\r\n");
	}
	fclose(f);
	free(body);
	return out;
}

static void t_routing(struct fix *f, struct reader *r)
{
	struct resp p;
	char pod[32];

	if (ASSERT_OK(exchange(r, GET("/v", "x-version: v2\r\n"), "GET", &p), "v2")) {
		ASSERT_EQ(p.status, 200, "v2 status");
		ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), "b2", "header match to b2");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(r, GET("/v", "x-version: v3\r\n"), "GET", &p), "v3")) {
		ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), "b1", "no header match to b1");
	}
	resp_free(&p);
}

static void t_split(struct fix *f, struct reader *r)
{
	int b1 = 0, b3 = 0, other = 0;
	struct engine_stats st;
	struct resp p;
	char pod[32];

	for (int i = 0; i < 1000; i++) {
		if (!ASSERT_OK(exchange(r, GET("/split", ""), "GET", &p), "request"))
			break;
		echo_pod(&p, pod, sizeof(pod));
		b1 += !strcmp(pod, "b1");
		b3 += !strcmp(pod, "b3");
		other += strcmp(pod, "b1") && strcmp(pod, "b3");
		resp_free(&p);
	}
	resp_free(&p);
	test__printf("split: b1 %d b3 %d other %d\n", b1, b3, other);
	/* 80/20 per request on one connection: within +-5 points of 1,000. */
	ASSERT_GE(b1, 750, "b1 share");
	ASSERT_LE(b1, 850, "b1 share");
	ASSERT_EQ(b1 + b3, 1000, "all answered by b1 or b3");
	engine_get_stats(f->e, &st);
	ASSERT_GE(st.upstream_reused, 990, "upstream connections reused");
}

static void t_alternate(struct fix *f, struct reader *r)
{
	int wrong = 0, done = 0;
	struct resp p;
	char pod[32];

	for (int i = 0; i < 1000; i++) {
		static const char *const reqs[] = { GET("/b1/x", ""), GET("/b2/y", ""),
						    GET("/v", "x-version: v2\r\n"), GET("/v", "") };
		static const char *const want[] = { "b1", "b2", "b2", "b1" };

		if (!ASSERT_OK(exchange(r, reqs[i % 4], "GET", &p), "request"))
			break;
		wrong += strcmp(echo_pod(&p, pod, sizeof(pod)), want[i % 4]) != 0;
		done++;
		resp_free(&p);
	}
	resp_free(&p);
	ASSERT_EQ(done, 1000, "answered");
	ASSERT_EQ(wrong, 0, "misrouted");
}

static void t_filters(struct fix *f, struct reader *r)
{
	struct resp p;
	char v[256];

	/* redirect: the exact Location, answered by the engine */
	if (ASSERT_OK(exchange(r, GET("/old?q=1", ""), "GET", &p), "redirect")) {
		ASSERT_EQ(p.status, 301, "redirect status");
		ASSERT_STREQ(resp_header(&p, "Location", v, sizeof(v)),
			     "http://new.example.com/new/place?q=1", "Location");
	}
	resp_free(&p);
	/* URLRewrite: path prefix and hostname */
	if (ASSERT_OK(exchange(r, GET("/rewrite/x?y=2", ""), "GET", &p), "rewrite")) {
		ASSERT_EQ(p.status, 200, "rewrite status");
		ASSERT_HAS_SUBSTR(p.body, "\"path\": \"/prefix/x?y=2\"", "rewritten path");
		ASSERT_HAS_SUBSTR(p.body, "\"host\": \"rewritten.example\"", "rewritten host");
	}
	resp_free(&p);
	/* Host kept without a rewrite */
	if (ASSERT_OK(exchange(r, GET("/b1", ""), "GET", &p), "host")) {
		ASSERT_HAS_SUBSTR(p.body, "\"host\": \"a.app\"", "host kept");
		ASSERT_HAS_SUBSTR(p.body, "\"path\": \"/b1\"", "path kept");
	}
	resp_free(&p);
	/* header modifiers both ways; hop-by-hop fields do not reach the backend */
	if (ASSERT_OK(exchange(r, GET("/hdr", "X-Set: old\r\nX-Drop: d\r\nX-Keep: k\r\n"
				       "Connection: keep-alive, X-Hop\r\nX-Hop: h\r\n"
				       "X-Echo-Set-Header: X-Gone:g,X-Stay:s\r\n"),
			  "GET", &p), "modifiers")) {
		ASSERT_EQ(p.status, 200, "modifiers status");
		ASSERT_HAS_SUBSTR(p.body, "\"X-Set\": [\n   \"s1\"\n  ]", "set");
		ASSERT_HAS_SUBSTR(p.body, "\"X-Add\"", "add");
		ASSERT_HAS_SUBSTR(p.body, "\"X-Keep\"", "untouched");
		ASSERT_NULL(strstr(p.body, "X-Drop"), "removed");
		ASSERT_NULL(strstr(p.body, "X-Hop"), "named by Connection");
		ASSERT_NULL(strstr(p.body, "\"Connection\""), "Connection");
		ASSERT_STREQ(resp_header(&p, "X-Resp", v, sizeof(v)), "r1", "response add");
		ASSERT_STREQ(resp_header(&p, "X-Stay", v, sizeof(v)), "s", "response kept");
		ASSERT_NULL(resp_header(&p, "X-Gone", v, sizeof(v)), "response remove");
		/* filters may not touch a message's framing (values with control
		 * characters are refused by the input now; the engine checks too) */
		ASSERT_HAS_SUBSTR(p.body, "\"pod\": \"b1\"", "whole body");
		test__printf("%s\n%s\n", p.head, p.body);
	}
	resp_free(&p);
}

static void t_local(struct fix *f, struct reader *r)
{
	static const struct { const char *req, *method; int status; } cases[] = {
		{ GET("/nomatch", ""), "GET", 404 },
		{ GET("/invalid", ""), "GET", 500 },
		{ GET("/empty", ""), "GET", 503 },
		{ "HEAD /nomatch HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD", 404 },
		{ "POST /nomatch HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "POST", 404 },
		{ GET("/b1", ""), "GET", 200 },	/* the connection is still good */
	};
	static const char *const logged[] = {
		"404:-:-", "500:-:rule", "503:-:rule", "404:-:-", "404:-:-", "200:b1:rule",
	};
	int since = f->nr_logs;
	struct resp p;
	char lb[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!ASSERT_OK(exchange(r, cases[i].req, cases[i].method, &p), cases[i].req))
			break;
		/* each request ends in on_request with its rule, backend and status */
		ASSERT_STREQ(log_back(f, since + i, 0, lb, sizeof(lb)), logged[i], cases[i].req);
		ASSERT_EQ(p.status, cases[i].status, cases[i].req);
		if (!strcmp(cases[i].method, "HEAD"))
			ASSERT_EQ(p.body_len, 0, "HEAD body");
		resp_free(&p);
	}
	resp_free(&p);
	/* a malformed request: 400, then the connection closes */
	if (ASSERT_OK(exchange(r, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", "GET", &p), "bad")) {
		ASSERT_EQ(p.status, 400, "bad request");
		ASSERT_OK(echo_wait_closed(r->fd), "closed after 400");
		ASSERT_STREQ(log_back(f, since + 6, 0, lb, sizeof(lb)), "400:-:-", "400 logged");
	}
	resp_free(&p);
}

static void send_chunked(int fd, size_t total, uint64_t *sum)
{
	char chunk[10000], line[32];

	*sum = TS_FNV_INIT;
	for (size_t off = 0; off < total;) {
		size_t k = total - off < sizeof(chunk) ? total - off : sizeof(chunk) - off % 7;

		ts_fill(chunk, k, off);
		*sum = ts_fnv1a(*sum, chunk, k);
		snprintf(line, sizeof(line), "%zx;ext=1\r\n", k);
		echo_send_str(fd, line);
		echo_send_all(fd, chunk, k);
		echo_send_str(fd, "\r\n");
		off += k;
	}
	echo_send_str(fd, "0\r\nX-Trailer: t\r\n\r\n");
}

static void t_bodies(struct fix *f)
{
	const size_t total = 3 * 1024 * 1024 + 17;
	struct reader r = { .fd = client(f) };
	char want[64], *body = malloc(total);
	uint64_t sum;
	struct resp p;
	int interim = 0;

	if (!ASSERT_GE(r.fd, 0, "client") || !body)
		goto out;
	ts_fill(body, total, 0);
	snprintf(want, sizeof(want), "len=%016zx sum=%016llx", total,
		 (unsigned long long)ts_fnv1a(TS_FNV_INIT, body, total));
	/* Content-Length upload */
	{
		char head[128];

		snprintf(head, sizeof(head), "POST /ts/sum HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
			 total);
		echo_send_str(r.fd, head);
		echo_send_all(r.fd, body, total);
		if (ASSERT_OK(read_resp(&r, "POST", &p, NULL), "length upload"))
			ASSERT_STREQ(p.body, want, "length upload checksum");
		resp_free(&p);
	}
	/* chunked upload with extensions and a trailer */
	echo_send_str(r.fd, "POST /ts/sum HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	send_chunked(r.fd, total, &sum);
	if (ASSERT_OK(read_resp(&r, "POST", &p, NULL), "chunked upload")) {
		char w2[64];

		snprintf(w2, sizeof(w2), "len=%016zx sum=%016llx", total, (unsigned long long)sum);
		ASSERT_STREQ(p.body, w2, "chunked upload checksum");
	}
	resp_free(&p);
	/* Expect: 100-continue: the 100 comes through before the body is sent */
	{
		char head[160];
		struct pollfd pf = { .fd = r.fd, .events = POLLIN };

		snprintf(head, sizeof(head), "POST /ts/sum HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n"
			 "Expect: 100-continue\r\n\r\n", total);
		echo_send_str(r.fd, head);
		ASSERT_EQ(poll(&pf, 1, IO_TIMEOUT_MS), 1, "100 Continue arrives");
		ASSERT_GT(rd_more(&r), 0, "read 100");
		ASSERT_EQ(strncmp(r.buf, "HTTP/1.1 100 Continue\r\n", 23), 0, "100 Continue");
		echo_send_all(r.fd, body, total);
		if (ASSERT_OK(read_resp(&r, "POST", &p, &interim), "expect upload"))
			ASSERT_STREQ(p.body, want, "expect upload checksum");
		ASSERT_EQ(interim, 1, "one interim response");
		resp_free(&p);
	}
	/* downloads: length, chunked with a trailer, and a keep-alive request after each */
	if (ASSERT_OK(exchange(&r, GET("/ts/len/3000017", ""), "GET", &p), "length download")) {
		ASSERT_EQ(p.body_len, 3000017, "length download size");
		ASSERT_EQ(ts_fnv1a(TS_FNV_INIT, p.body, p.body_len), ts_fnv1a(TS_FNV_INIT, body, 3000017),
			  "length download checksum");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(&r, GET("/ts/chunked/2000003", ""), "GET", &p), "chunked download")) {
		char v[64];

		ASSERT_EQ(p.body_len, 2000003, "chunked download size");
		ASSERT_EQ(ts_fnv1a(TS_FNV_INIT, p.body, p.body_len), ts_fnv1a(TS_FNV_INIT, body, 2000003),
			  "chunked download checksum");
		snprintf(v, sizeof(v), "X-Sum: %016llx",
			 (unsigned long long)ts_fnv1a(TS_FNV_INIT, body, 2000003));
		ASSERT_HAS_SUBSTR(p.trailer, v, "trailer");
	}
	resp_free(&p);
	/* close-delimited: the client is told, and the connection ends with the body */
	if (ASSERT_OK(exchange(&r, GET("/ts/close/100000", ""), "GET", &p), "close download")) {
		char v[32];

		ASSERT_EQ(p.body_len, 100000, "close download size");
		ASSERT_STREQ(resp_header(&p, "Connection", v, sizeof(v)), "close", "Connection: close");
	}
	resp_free(&p);
out:
	free(body);
	rd_close(&r);
}

static void t_pipelined(struct fix *f, struct reader *r)
{
	static const char reqs[] = GET("/b2/1", "") GET("/nomatch", "") GET("/b1/2", "")
		"HEAD /ts/len/777 HTTP/1.1\r\nHost: a\r\n\r\n" GET("/v", "x-version: v2\r\n")
		GET("/ts/chunked/10000", "") GET("/b1/last", "");
	static const struct { const char *method; int status; const char *pod; size_t len; } want[] = {
		{ "GET", 200, "b2", 0 }, { "GET", 404, NULL, 14 }, { "GET", 200, "b1", 0 },
		{ "HEAD", 200, NULL, 0 }, { "GET", 200, "b2", 0 }, { "GET", 200, NULL, 10000 },
		{ "GET", 200, "b1", 0 },
	};
	struct resp p;
	char pod[32];

	ASSERT_OK(echo_send_str(r->fd, reqs), "send all at once");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!ASSERT_OK(read_resp(r, want[i].method, &p, NULL), "response"))
			break;
		ASSERT_EQ(p.status, want[i].status, "status in order");
		if (want[i].pod)
			ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), want[i].pod, "pod in order");
		else
			ASSERT_EQ(p.body_len, want[i].len, "body in order");
		resp_free(&p);
	}
	resp_free(&p);
}

static void t_framing(struct fix *f, struct reader *r)
{
	struct resp p;
	char v[32];

	/* HEAD: the length of the GET, no body; then the connection still works */
	if (ASSERT_OK(exchange(r, "HEAD /ts/len/5000 HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD", &p), "HEAD")) {
		ASSERT_STREQ(resp_header(&p, "Content-Length", v, sizeof(v)), "5000", "HEAD length");
		ASSERT_EQ(p.body_len, 0, "HEAD body");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(r, GET("/ts/204", ""), "GET", &p), "204")) {
		ASSERT_EQ(p.status, 204, "204");
		ASSERT_STREQ(resp_header(&p, "X-Kind", v, sizeof(v)), "204", "204 head");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(r, GET("/ts/304", ""), "GET", &p), "304")) {
		ASSERT_EQ(p.status, 304, "304");
		ASSERT_EQ(p.body_len, 0, "304 body");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(r, GET("/ts/len/10", ""), "GET", &p), "after")) {
		ASSERT_EQ(p.status, 200, "after no-body responses");
		ASSERT_EQ(p.body_len, 10, "after no-body responses");
		ASSERT_EQ(r->len, 0, "no stray bytes");
	}
	resp_free(&p);
	/* Connection: close is honoured */
	if (ASSERT_OK(exchange(r, GET("/b1", "Connection: close\r\n"), "GET", &p), "close")) {
		ASSERT_STREQ(resp_header(&p, "Connection", v, sizeof(v)), "close", "close answered");
		ASSERT_OK(echo_wait_closed(r->fd), "closed");
	}
	resp_free(&p);
}

static void t_upgrade(struct fix *f, struct reader *r)
{
	struct resp p;
	char v[32];

	if (!ASSERT_OK(exchange(r, GET("/ts/upgrade", "Connection: Upgrade\r\nUpgrade: test\r\n"),
				"GET", &p), "upgrade"))
		goto out;
	ASSERT_EQ(p.status, 101, "101");
	ASSERT_STREQ(resp_header(&p, "Upgrade", v, sizeof(v)), "test", "Upgrade");
	echo_send_str(r->fd, "hello tunnel");
	while (r->len < 12 && rd_more(r) > 0)
		;
	ASSERT_EQ(r->len, 12, "tunnel bytes");
	ASSERT_EQ(memcmp(r->buf, "HELLO TUNNEL", 12), 0, "tunnel both ways");
	shutdown(r->fd, SHUT_WR);
	ASSERT_OK(echo_wait_closed(r->fd), "half close goes through");
out:
	resp_free(&p);
}

static void t_slow_reader(struct fix *f, struct reader *r)
{
	struct engine_stats st;
	long long a, b;
	int small = 4096;

	setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	__atomic_store_n(&f->ts.stream_bytes, 0, __ATOMIC_RELAXED);
	echo_send_str(r->fd, GET("/ts/stream", ""));
	/* the client reads nothing: the upstream must be held back, soon */
	a = -1;
	b = 0;
	for (int i = 0; i < 40 && (a != b || !b); i++) {
		a = b;
		usleep(250 * 1000);
		b = __atomic_load_n(&f->ts.stream_bytes, __ATOMIC_RELAXED);
	}
	engine_get_stats(f->e, &st);
	test__printf("slow reader: upstream sent %lld then %lld bytes; engine buffers %llu\n", a, b,
		     (unsigned long long)st.buffer_bytes);
	ASSERT_GT(a, 0, "stream started");
	ASSERT_EQ(b, a, "upstream stopped by backpressure");
	/* kernel buffers (autotuned, a few MB at most on loopback) plus 4 of ours */
	ASSERT_LT(b, 32LL << 20, "bounded");
	ASSERT_LE(st.buffer_bytes, (uint64_t)4 * BUF_SIZE * st.clients, "engine memory per client");
}

static void t_upstream_dies(struct fix *f, struct reader *r)
{
	struct timespec t0;
	struct resp p;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = exchange(r, GET("/ts/die", ""), "GET", &p);
	ASSERT_EQ(ret, -ECONNRESET, "client sees a reset");
	{
		char lb[96];

		ASSERT_STREQ(log_back(f, f->nr_logs - 1, 0, lb, sizeof(lb)), "200:ts:rule:cut",
			     "logged as cut short");
	}
	ASSERT_LT(ms_since(&t0), IO_TIMEOUT_MS - 500, "no hang");
	resp_free(&p);
}

static void t_client_dies(struct fix *f)
{
	struct reader r = { .fd = client(f) };
	struct engine_stats st;
	struct timespec t0;
	int before = __atomic_load_n(&f->ts.closed_after_hang, __ATOMIC_RELAXED);

	if (!ASSERT_GE(r.fd, 0, "client"))
		return;
	echo_send_str(r.fd, GET("/ts/hang", ""));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&f->ts.hang_requests, __ATOMIC_RELAXED) < 1 && ms_since(&t0) < 3000)
		usleep(10 * 1000);
	ASSERT_EQ(__atomic_load_n(&f->ts.hang_requests, __ATOMIC_RELAXED), 1, "request arrived");
	rd_close(&r);
	while (__atomic_load_n(&f->ts.closed_after_hang, __ATOMIC_RELAXED) == before &&
	       ms_since(&t0) < 3000)
		usleep(10 * 1000);
	ASSERT_EQ(__atomic_load_n(&f->ts.closed_after_hang, __ATOMIC_RELAXED), before + 1,
		  "upstream released");
	engine_get_stats(f->e, &st);
	ASSERT_EQ(st.upstreams, st.upstreams_idle, "no upstream left in use");
}

static void t_header_timeout(struct fix *f, struct reader *r)
{
	struct timespec t0;
	struct resp p;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ASSERT_OK(exchange(r, "GET /b1 HTTP/1.1\r\nHost: a\r\nX-Slow:", "GET", &p), "408")) {
		ASSERT_EQ(p.status, 408, "header timeout");
		ASSERT_GE(ms_since(&t0), HEADER_TIMEOUT_MS - 50, "not before the timeout");
		ASSERT_OK(echo_wait_closed(r->fd), "closed");
	}
	resp_free(&p);
}

static void t_origins(struct fix *f)
{
	static const struct { const char *vip, *ns, *req, *pod; int status; } cases[] = {
		{ "10.96.0.11", "app", GET("/any", ""), "b1", 200 },	/* no route: its endpoints */
		{ VIP6, "app", GET("/any", ""), "b2", 200 },		/* IPv6 both sides */
		{ VIP, "other", GET("/b1", ""), "b3", 200 },		/* the consumer route */
		{ VIP, "app", GET("/dead", ""), NULL, 503 },		/* connect refused */
		{ "10.96.9.9", "app", GET("/", ""), NULL, 503 },	/* no such Service */
		{ VIP, "app", "CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n", NULL, 501 },
	};
	struct resp p;
	char pod[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reader r = { .fd = client_to(f, cases[i].vip, cases[i].ns) };

		if (!ASSERT_GE(r.fd, 0, "client"))
			return;
		if (ASSERT_OK(exchange(&r, cases[i].req, "GET", &p), cases[i].vip)) {
			ASSERT_EQ(p.status, cases[i].status, cases[i].vip);
			if (cases[i].pod)
				ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), cases[i].pod, cases[i].vip);
		}
		resp_free(&p);
		rd_close(&r);
	}
}

static void t_http10(struct fix *f, struct reader *r)
{
	struct resp p;
	char v[32];

	if (ASSERT_OK(exchange(r, "GET /b2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", &p),
		      "1.0 keep-alive")) {
		ASSERT_EQ(p.status, 200, "1.0 status");
		ASSERT_STREQ(resp_header(&p, "Connection", v, sizeof(v)), "keep-alive", "1.0 keep-alive");
		ASSERT_HAS_SUBSTR(p.body, "\"proto\": \"HTTP/1.1\"", "HTTP/1.1 upstream");
	}
	resp_free(&p);
	/* a chunked response to an HTTP/1.0 client: decoded, ended by the close */
	if (ASSERT_OK(exchange(r, "GET /ts/chunked/50000 HTTP/1.0\r\n\r\n", "GET", &p), "1.0 chunked")) {
		ASSERT_NULL(resp_header(&p, "Transfer-Encoding", v, sizeof(v)), "no chunked to 1.0");
		ASSERT_EQ(p.h.body, H1_BODY_CLOSE, "close-delimited");
		ASSERT_EQ(p.body_len, 50000, "decoded length");
	}
	resp_free(&p);
}

static void t_stale_pool(struct fix *f, struct reader *r)
{
	struct engine_stats st0, st1;
	struct resp p;

	if (ASSERT_OK(exchange(r, GET("/ts/lie", ""), "GET", &p), "lie"))
		ASSERT_EQ(p.status, 200, "lie");
	resp_free(&p);
	usleep(50 * 1000);
	engine_get_stats(f->e, &st0);
	/* the pooled connection is closed by the server when this arrives: sent again */
	if (ASSERT_OK(exchange(r, GET("/ts/len/10", ""), "GET", &p), "after")) {
		ASSERT_EQ(p.status, 200, "answered on a new connection");
		ASSERT_EQ(p.body_len, 10, "body");
	}
	resp_free(&p);
	engine_get_stats(f->e, &st1);
	ASSERT_EQ(st1.upstream_reused, st0.upstream_reused + 1, "the pooled one was tried");
	/* with a body (larger than the engine's buffers): the kept body goes again */
	for (int put = 1; put >= 0; put--) {
		uint64_t sum;
		size_t len;
		char *req = body_req("/ts/sum", 30000, 7, false, &len, &sum), want[64];

		if (put)
			memcpy(req, "PUT ", 4), memmove(req + 3, req + 4, len - 4), len--;
		if (ASSERT_OK(exchange(r, GET("/ts/lie", ""), "GET", &p), "lie"))
			ASSERT_EQ(p.status, 200, "lie");
		resp_free(&p);
		usleep(50 * 1000);
		if (ASSERT_OK(echo_send_all(r->fd, req, len), "send") &&
		    ASSERT_OK(read_resp(r, put ? "PUT" : "POST", &p, NULL), "after")) {
			snprintf(want, sizeof(want), "len=%016x sum=%016llx", 30000,
				 (unsigned long long)sum);
			/* PUT is idempotent: sent again; POST is not: the client learns */
			ASSERT_EQ(p.status, put ? 200 : 502, put ? "PUT sent again" : "POST not");
			if (put)
				ASSERT_STREQ(p.body, want, "with its whole body");
		}
		resp_free(&p);
		free(req);
	}
}

static void t_request_timeout(struct fix *f, struct reader *r)
{
	struct timespec t0;
	struct resp p;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ASSERT_OK(exchange(r, GET("/slow?delay=3s", ""), "GET", &p), "slow")) {
		ASSERT_EQ(p.status, 504, "timeouts.request");
		ASSERT_GE(ms_since(&t0), 300, "not before");
		ASSERT_LT(ms_since(&t0), 2000, "not after the backend");
	}
	resp_free(&p);
	if (ASSERT_OK(exchange(r, GET("/slow", ""), "GET", &p), "fast"))
		ASSERT_EQ(p.status, 200, "in time, same connection");
	resp_free(&p);
}

#define CONC_CLIENTS 50
#define CONC_REQUESTS 100

struct conc {
	int fd;
	unsigned int seed;
	int ok, wrong;
};

static void *conc_client(void *arg)
{
	static const char *const reqs[] = { GET("/b1/c", ""), GET("/b2/c", ""),
					    GET("/v", "x-version: v2\r\n"), GET("/v", "") };
	static const char *const want[] = { "b1", "b2", "b2", "b1" };
	struct conc *c = arg;
	struct reader r = { .fd = c->fd };
	struct resp p;
	char pod[32];

	for (int i = 0; i < CONC_REQUESTS; i++) {
		int k = rand_r(&c->seed) % 4;

		if (exchange(&r, reqs[k], "GET", &p)) {
			resp_free(&p);
			break;
		}
		if (p.status == 200 && !strcmp(echo_pod(&p, pod, sizeof(pod)), want[k]))
			c->ok++;
		else
			c->wrong++;
		resp_free(&p);
	}
	free(r.buf);
	return NULL;
}

/* Many clients at once, each response reaching the client that asked. */
static void t_concurrent(struct fix *f)
{
	struct conc cs[CONC_CLIENTS] = { 0 };
	pthread_t th[CONC_CLIENTS];
	int started = 0, ok = 0, wrong = 0;

	for (int i = 0; i < CONC_CLIENTS; i++) {
		cs[i].fd = client(f);
		cs[i].seed = i + 1;
		if (!ASSERT_GE(cs[i].fd, 0, "client"))
			goto out;
	}
	for (; started < CONC_CLIENTS; started++)
		if (pthread_create(&th[started], NULL, conc_client, &cs[started]))
			break;
out:
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < CONC_CLIENTS; i++) {
		ok += cs[i].ok;
		wrong += cs[i].wrong;
		if (cs[i].fd > 0)
			close(cs[i].fd);
	}
	ASSERT_EQ(started, CONC_CLIENTS, "threads");
	ASSERT_EQ(ok, CONC_CLIENTS * CONC_REQUESTS, "answered right");
	ASSERT_EQ(wrong, 0, "misrouted");
}

/* Upstream sockets are made by the callback with the client's netns_ctx, pooled per netns. */
static void t_netns(struct fix *f)
{
	static int pod_a, pod_b;	/* two pods' netns_ctx */
	struct reader ra = { .fd = client_netns(f, VIP, "app", &pod_a) };
	struct reader rb = { .fd = client_netns(f, VIP, "app", &pod_b) };
	struct engine_stats st0, st1;
	struct resp p;
	int sockets;
	char c;

	if (!ASSERT_GE(ra.fd, 0, "client a") || !ASSERT_GE(rb.fd, 0, "client b"))
		goto out;
	sockets = __atomic_load_n(&f->sockets, __ATOMIC_RELAXED);
	if (ASSERT_OK(exchange(&ra, GET("/ts/len/1", ""), "GET", &p), "a"))
		ASSERT_EQ(p.status, 200, "a");
	resp_free(&p);
	ASSERT_EQ(__atomic_load_n(&f->sockets, __ATOMIC_RELAXED), sockets + 1, "a new socket for a");
	ASSERT_TRUE(__atomic_load_n(&f->last_netns, __ATOMIC_RELAXED) == &pod_a, "in a's netns");
	/* b's request may not use a's pooled connection: another source */
	if (ASSERT_OK(exchange(&rb, GET("/ts/len/2", ""), "GET", &p), "b"))
		ASSERT_EQ(p.status, 200, "b");
	resp_free(&p);
	ASSERT_TRUE(__atomic_load_n(&f->last_netns, __ATOMIC_RELAXED) == &pod_b, "in b's netns");
	engine_get_stats(f->e, &st0);
	/* pod a goes away: its client is reset, its pooled upstream closed */
	engine_forget_netns(f->e, &pod_a);
	engine_get_stats(f->e, &st1);
	ASSERT_EQ(st1.upstreams_idle, st0.upstreams_idle - 1, "a's pooled upstream closed");
	ASSERT_EQ(recv(ra.fd, &c, 1, 0), -1, "a's client reset");
	ASSERT_EQ(errno, ECONNRESET, "a's client reset");
	if (ASSERT_OK(exchange(&rb, GET("/b1", ""), "GET", &p), "b still served"))
		ASSERT_EQ(p.status, 200, "b still served");
	resp_free(&p);
out:
	if (ra.fd >= 0)
		close(ra.fd);
	if (rb.fd >= 0)
		close(rb.fd);
	free(ra.buf);
	free(rb.buf);
}

/*
 * Clients that misbehave in every way we could think of, then vanish: the
 * engine neither crashes nor keeps anything of theirs, and still serves.
 */
static void t_chaos(struct fix *f)
{
	static const char *const heads[] = {
		GET("/b1", ""), GET("/ts/stream", ""), GET("/ts/die", ""), GET("/ts/hang", ""),
		"POST /ts/sum HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc",
		"POST /ts/sum HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST /nomatch HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"GET /b1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		GET("/ts/upgrade", "Connection: Upgrade\r\nUpgrade: test\r\n") "raw bytes",
		GET("/v", "x-version: v2\r\n") GET("/b2", "") GET("/ts/len/300000", ""),
	};
	unsigned int seed = 12345;
	struct engine_stats st;
	struct timespec t0;
	struct resp p;

	for (int i = 0; i < 300; i++) {
		int fd = client(f), what = rand_r(&seed) % 4;
		const char *h = heads[rand_r(&seed) % (sizeof(heads) / sizeof(heads[0]))];
		char junk[2048];

		if (!ASSERT_GE(fd, 0, "client"))
			return;
		if (what == 0) {
			/* a head cut anywhere */
			echo_send_all(fd, h, rand_r(&seed) % (strlen(h) + 1));
		} else if (what == 1) {
			/* bytes of no protocol */
			size_t n = rand_r(&seed) % sizeof(junk);

			for (size_t j = 0; j < n; j++)
				junk[j] = rand_r(&seed);
			echo_send_all(fd, junk, n);
		} else {
			echo_send_str(fd, h);
		}
		if (what == 3)
			usleep(rand_r(&seed) % 20000);	/* let it get going, then leave */
		if (rand_r(&seed) % 2) {
			struct linger l = { 1, 0 };	/* and sometimes with a reset */

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(20 * 1000);
		engine_get_stats(f->e, &st);
	} while ((st.clients || st.upstreams != st.upstreams_idle) && ms_since(&t0) < 4000);
	ASSERT_EQ(st.clients, 0, "no client left");
	ASSERT_EQ(st.upstreams, st.upstreams_idle, "no upstream left in use");
	ASSERT_EQ(st.buffer_bytes, 0, "no buffer left");
	{
		struct reader r = { .fd = client(f) };

		if (ASSERT_OK(exchange(&r, GET("/b2", ""), "GET", &p), "still serving"))
			ASSERT_EQ(p.status, 200, "still serving");
		resp_free(&p);
		rd_close(&r);
	}
}

static void t_mirror(struct fix *f, struct reader *r)
{
	struct timespec t0;
	int full = 0, half = 0, ok = 0;
	struct resp p;
	char pod[32];

	for (int i = 0; i < 200; i++) {
		if (!ASSERT_OK(exchange(r, i < 20 ? GET("/mirror/full", "") : GET("/mirror/half", ""),
					"GET", &p), "request"))
			break;
		ok += p.status == 200 && !strcmp(echo_pod(&p, pod, sizeof(pod)), "b1");
		resp_free(&p);
	}
	resp_free(&p);
	ASSERT_EQ(ok, 200, "answered by the backend, not the mirror");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(50 * 1000);
		full = echo_proc_log_count(&f->echo[2], "GET /mirror/full ->");
		half = echo_proc_log_count(&f->echo[2], "GET /mirror/half ->");
	} while ((full < 20 || half < 60) && ms_since(&t0) < 3000);
	test__printf("mirror: full %d of 20, half %d of 180\n", full, half);
	ASSERT_EQ(full, 20, "every request mirrored");
	ASSERT_GE(half, 60, "about half mirrored");
	ASSERT_LE(half, 120, "about half mirrored");
}

/* One GET to sticky from fake pod `pod`; the echo pod that answered into buf ("" none). */
static void ask_sticky(struct fix *f, void *pod, char *buf, size_t len)
{
	struct reader r = { .fd = client_netns(f, "10.96.0.17", "app", pod) };
	struct resp p;

	buf[0] = 0;
	if (!ASSERT_GE(r.fd, 0, "client"))
		return;
	if (ASSERT_OK(exchange(&r, GET("/", ""), "GET", &p), "sticky"))
		echo_pod(&p, buf, len);
	resp_free(&p);
	rd_close(&r);
}

static struct gammad_aff_key aff_key(void *pod)
{
	struct gammad_aff_key k = { .be_id = STICKY_BE_ID, .kind = GAMMAD_AFF_NETNS };
	uint64_t cookie = (uintptr_t)pod;

	memcpy(k.client, &cookie, sizeof(cookie));
	return k;
}

/* What the kernel would have written for pod: 127.0.0.1:port, last used age_s ago. */
static void aff_put(struct fix *f, void *pod, uint16_t port, uint32_t age_s)
{
	struct gammad_aff_key k = aff_key(pod);
	struct gammad_aff_val v = { .ep = { .addr = { 127, 0, 0, 1 }, .port = htons(port),
					    .family = AF_INET } };
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	v.last_used = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec -
		      (uint64_t)age_s * 1000000000ULL;
	ASSERT_OK(bpf_map_update_elem(f->aff_fd, &k, &v, BPF_ANY), "affinity entry");
}

/*
 * sessionAffinity ClientIP: each client pod stays on one endpoint, in the
 * kernel's table (gammad_aff_v1 here the test's own), keyed as connect()
 * keys it (be_id, netns cookie), so either path keeps what the other chose.
 * Its rules hold: an entry past the timeout (60 s) is drawn afresh, an
 * endpoint not in the set is never chosen.
 */
static void t_affinity(struct fix *f)
{
	static int pods[8], gone[8], fresh[8], old[8];
	uint16_t b1 = echo_proc_port(&f->echo[0], "http", 0);
	int b1_pods = 0, b3_pods = 0, entries = 0, on_b1 = 0, moved = 0, bad = 0;
	struct gammad_aff_key k, next;
	struct gammad_aff_val v;
	char pod[32];

	for (int i = 0; i < 8; i++) {
		char first[32] = "";
		int same = 0;

		for (int j = 0; j < 10; j++) {
			ask_sticky(f, &pods[i], pod, sizeof(pod));
			if (!j)
				snprintf(first, sizeof(first), "%s", pod);
			same += !strcmp(pod, first);
		}
		ASSERT_EQ(same, 10, "one endpoint per client pod");
		b1_pods += !strcmp(first, "b1");
		b3_pods += !strcmp(first, "b3");
	}
	test__printf("affinity: %d pods on b1, %d on b3\n", b1_pods, b3_pods);
	ASSERT_EQ(b1_pods + b3_pods, 8, "every pod answered");
	for (void *prev = NULL; !bpf_map_get_next_key(f->aff_fd, prev, &next); prev = &k) {
		k = next;
		entries += k.kind == GAMMAD_AFF_NETNS && k.be_id == STICKY_BE_ID;
	}
	ASSERT_EQ(entries, 8, "one kernel entry per pod (be_id, netns cookie)");

	for (int i = 0; i < 8; i++) {
		/* fresh entries another path wrote are kept */
		aff_put(f, &fresh[i], b1, 0);
		ask_sticky(f, &fresh[i], pod, sizeof(pod));
		on_b1 += !strcmp(pod, "b1");
		/* older than the timeout: a new draw (all eight on b1 by chance: 1 in 256) */
		aff_put(f, &old[i], b1, 61);
		ask_sticky(f, &old[i], pod, sizeof(pod));
		moved += !strcmp(pod, "b3");
		/* an endpoint that is not in the set (any more) is never chosen */
		aff_put(f, &gone[i], f->dead_port, 0);
		ask_sticky(f, &gone[i], pod, sizeof(pod));
		bad += strcmp(pod, "b1") && strcmp(pod, "b3");
		k = aff_key(&gone[i]);
		if (ASSERT_OK(bpf_map_lookup_elem(f->aff_fd, &k, &v), "entry"))
			bad += ntohs(v.ep.port) == f->dead_port;
	}
	test__printf("affinity: kept %d of 8 fresh entries, %d of 8 expired ones moved\n", on_b1,
		     moved);
	ASSERT_EQ(on_b1, 8, "a fresh entry is kept");
	ASSERT_GT(moved, 0, "an expired entry is drawn afresh");
	ASSERT_EQ(bad, 0, "a gone endpoint is never chosen, its entry replaced");
	for (int i = 0; i < 8; i++) {
		engine_forget_netns(f->e, &pods[i]);
		engine_forget_netns(f->e, &fresh[i]);
		engine_forget_netns(f->e, &old[i]);
		engine_forget_netns(f->e, &gone[i]);
	}
}

/* The rule's retry: on its codes and on connections that fail before an answer. */
static void t_retry(struct fix *f, struct reader *r)
{
	static const struct { const char *req; int status, tries; } cases[] = {
		{ GET("/ts/flaky/503", ""), 200, 3 },	/* 503, 503, then 200 */
		{ GET("/ts/flaky/reset", ""), 200, 3 },	/* reset, reset, then 200 */
		{ GET("/ts/once/503", ""), 503, 2 },	/* one retry is not enough */
	};
	struct resp p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = __atomic_load_n(&f->ts.flaky[i], __ATOMIC_RELAXED);

		if (ASSERT_OK(exchange(r, cases[i].req, "GET", &p), cases[i].req)) {
			ASSERT_EQ(p.status, cases[i].status, cases[i].req);
			ASSERT_EQ(__atomic_load_n(&f->ts.flaky[i], __ATOMIC_RELAXED) - before,
				  cases[i].tries, "attempts");
		}
		resp_free(&p);
	}
}

/*
 * Retry with a request body (up to ENGINE_REPLAY_MAX): sent again whole,
 * Content-Length and chunked, larger than the engine's own buffers; a body
 * over the limit is not retried and the upstream's answer goes through.
 */
static void t_retry_body(struct fix *f, struct reader *r)
{
	static const struct { const char *path; size_t n; bool chunked; int k, status, tries; }
	cases[] = {
		{ "/ts/flaky/503", 40000, false, 0, 200, 3 },
		{ "/ts/flaky/503", 50000, true, 0, 200, 3 },
		{ "/ts/flaky/reset", 40000, false, 1, 200, 3 },
		{ "/ts/flaky/503", ENGINE_REPLAY_MAX, false, 0, 200, 3 },	/* the limit: kept */
		{ "/ts/flaky/503", ENGINE_REPLAY_MAX + 1, false, 0, 503, 1 },	/* over: not retried */
		{ "/ts/flaky/503", 200000, true, 0, 503, 1 },
	};
	struct resp p = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int k = cases[i].k, before;
		char want[64], name[96];
		uint64_t sum;
		size_t len;
		char *req;

		/* each case starts on a fresh cycle of two failures */
		while (__atomic_load_n(&f->ts.flaky[k], __ATOMIC_RELAXED) % 3)
			__atomic_add_fetch(&f->ts.flaky[k], 1, __ATOMIC_RELAXED);
		before = __atomic_load_n(&f->ts.flaky[k], __ATOMIC_RELAXED);
		req = body_req(cases[i].path, cases[i].n, i, cases[i].chunked, &len, &sum);
		snprintf(name, sizeof(name), "%s %zu bytes%s", cases[i].path, cases[i].n,
			 cases[i].chunked ? " chunked" : "");
		if (ASSERT_OK(echo_send_all(r->fd, req, len), "send") &&
		    ASSERT_OK(read_resp(r, "POST", &p, NULL), name)) {
			ASSERT_EQ(p.status, cases[i].status, name);
			ASSERT_EQ(__atomic_load_n(&f->ts.flaky[k], __ATOMIC_RELAXED) - before,
				  cases[i].tries, "attempts");
			snprintf(want, sizeof(want), "len=%016zx sum=%016llx", cases[i].n,
				 (unsigned long long)sum);
			if (cases[i].status == 200)
				ASSERT_STREQ(p.body, want, "the last attempt got the whole body");
		}
		resp_free(&p);
		free(req);
	}
}

/*
 * RequestMirror with a body: the mirror (the test server) gets the whole
 * request, Content-Length or chunked; over ENGINE_REPLAY_MAX not at all.
 */
static void t_mirror_body(struct fix *f, struct reader *r)
{
	static const struct { size_t n; bool chunked, mirrored; } cases[] = {
		{ 30000, false, true }, { 45000, true, true }, { 3, false, true },
		{ ENGINE_REPLAY_MAX + 1000, false, false }, { 100000, true, false },
	};
	struct resp p = { 0 };
	char pod[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = __atomic_load_n(&f->ts.bodies, __ATOMIC_ACQUIRE);
		struct timespec t0;
		uint64_t sum;
		size_t len;
		char *req = body_req("/mbody/x", cases[i].n, i, cases[i].chunked, &len, &sum);
		char name[64];

		snprintf(name, sizeof(name), "%zu bytes%s", cases[i].n,
			 cases[i].chunked ? " chunked" : "");
		if (ASSERT_OK(echo_send_all(r->fd, req, len), "send") &&
		    ASSERT_OK(read_resp(r, "POST", &p, NULL), name)) {
			ASSERT_EQ(p.status, 200, name);
			ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), "b1", "answered by the backend");
		}
		resp_free(&p);
		free(req);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (__atomic_load_n(&f->ts.bodies, __ATOMIC_ACQUIRE) == before &&
		       ms_since(&t0) < (cases[i].mirrored ? 3000 : 300))
			usleep(10 * 1000);
		if (cases[i].mirrored) {
			ASSERT_EQ(__atomic_load_n(&f->ts.bodies, __ATOMIC_ACQUIRE), before + 1, name);
			ASSERT_EQ(__atomic_load_n(&f->ts.last_len, __ATOMIC_RELAXED),
				  (long long)cases[i].n, "the mirror got the whole body");
			ASSERT_EQ(__atomic_load_n(&f->ts.last_sum, __ATOMIC_RELAXED), sum,
				  "intact");
		} else {
			ASSERT_EQ(__atomic_load_n(&f->ts.bodies, __ATOMIC_ACQUIRE), before,
				  "over the limit: not mirrored");
		}
	}
}

/* Last: it changes where /b1 goes. */
static void t_new_tables(struct fix *f, struct reader *r)
{
	struct tr_result *res;
	struct resp p;
	char pod[32];
	int before;

	if (ASSERT_OK(exchange(r, GET("/b1", ""), "GET", &p), "before"))
		ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), "b1", "old tables");
	resp_free(&p);
	res = load(f, &f->m[1], "b3");
	if (!ASSERT_OK_PTR(res, "second translation"))
		goto out;
	before = __atomic_load_n(&released, __ATOMIC_RELAXED);
	ASSERT_OK(engine_set_tables(f->e, res), "engine_set_tables");
	/* no request holds the old tables: they go at once */
	ASSERT_EQ(__atomic_load_n(&released, __ATOMIC_RELAXED), before + 1, "old tables released");
	if (ASSERT_OK(exchange(r, GET("/b1", ""), "GET", &p), "after"))
		ASSERT_STREQ(echo_pod(&p, pod, sizeof(pod)), "b3", "new tables, same connection");
	resp_free(&p);
out:
}

#define LOOP_CLIENTS 24		/* 8 per loop: engine_adopt from this thread takes turns */
#define LOOP_REQUESTS 150
#define LOOP_SWAPS 40

struct loopc {
	int fd, id;
	int ok, wrong, failed;
};

/* Requests naming their client and number; the echo must say that path back. */
static void *loop_client(void *arg)
{
	struct loopc *c = arg;
	struct reader r = { .fd = c->fd };

	for (int i = 0; i < LOOP_REQUESTS; i++) {
		char req[128], want[64], pod[32];
		struct resp p;

		snprintf(req, sizeof(req), "GET /b1/c%d-%d HTTP/1.1\r\nHost: a.app\r\n\r\n", c->id, i);
		snprintf(want, sizeof(want), "\"path\": \"/b1/c%d-%d\"", c->id, i);
		if (exchange(&r, req, "GET", &p)) {
			c->failed++;
			resp_free(&p);
			break;
		}
		echo_pod(&p, pod, sizeof(pod));
		/* /b1 is b1 in one translation, b3 in the other: either, never another's answer */
		if (p.status == 200 && p.body && strstr(p.body, want) &&
		    (!strcmp(pod, "b1") || !strcmp(pod, "b3")))
			c->ok++;
		else
			c->wrong++;
		resp_free(&p);
	}
	free(r.buf);
	return NULL;
}

/*
 * Connections spread over the loops while the tables are swapped under them
 * LOOP_SWAPS times: every answer is its own client's request, every loop
 * moves to the last tables, and every replaced translation is released
 * exactly once (each loop's reference and each request's dropped).
 */
static void t_loops_swap(struct fix *f)
{
	struct loopc cs[LOOP_CLIENTS] = { 0 };
	pthread_t th[LOOP_CLIENTS];
	int started = 0, ok = 0, wrong = 0, failed = 0, swaps = 0, before = 0, last = 0;
	struct timespec t0;

	ASSERT_EQ(engine_threads(f->e), LOOPS, "loops");
	for (int i = 0; i < LOOP_CLIENTS; i++) {
		cs[i].fd = client(f);
		cs[i].id = i;
		if (!ASSERT_GE(cs[i].fd, 0, "client"))
			goto out;
	}
	before = __atomic_load_n(&released, __ATOMIC_RELAXED);
	for (; started < LOOP_CLIENTS; started++)
		if (pthread_create(&th[started], NULL, loop_client, &cs[started]))
			break;
	for (swaps = 0; swaps < LOOP_SWAPS; swaps++) {
		struct tr_result *res = calloc(1, sizeof(*res));

		/* even: m[0] (/b1 to b1), odd: m[1] (/b1 to b3); the last is odd, as new_tables left it */
		if (!ASSERT_OK_PTR(res, "calloc") ||
		    !ASSERT_OK(translate(&f->m[swaps % 2], &f->dg, res), "translate")) {
			free(res);
			break;
		}
		if (!ASSERT_OK(engine_set_tables(f->e, res), "engine_set_tables"))
			break;
		usleep(3000);
	}
out:
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < LOOP_CLIENTS; i++) {
		struct reader r = { .fd = cs[i].fd };
		struct resp p = { 0 };
		char pod[32];

		ok += cs[i].ok;
		wrong += cs[i].wrong;
		failed += cs[i].failed;
		if (cs[i].fd <= 0)
			continue;
		/* whichever loop holds it, it serves the last tables now */
		if (started == LOOP_CLIENTS && !exchange(&r, GET("/b1/last", ""), "GET", &p))
			last += !strcmp(echo_pod(&p, pod, sizeof(pod)), "b3");
		resp_free(&p);
		free(r.buf);
		close(cs[i].fd);
	}
	ASSERT_EQ(started, LOOP_CLIENTS, "threads");
	ASSERT_EQ(ok, LOOP_CLIENTS * LOOP_REQUESTS, "each answer its own client's request");
	ASSERT_EQ(wrong, 0, "misrouted or another's answer");
	ASSERT_EQ(failed, 0, "failed");
	ASSERT_EQ(last, LOOP_CLIENTS, "every connection on the last tables");
	ASSERT_EQ(swaps, LOOP_SWAPS, "swaps");
	/* the last translation stays published; the ones before it all went, once */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&released, __ATOMIC_RELAXED) - before < swaps && ms_since(&t0) < 2000)
		usleep(5000);
	ASSERT_EQ(__atomic_load_n(&released, __ATOMIC_RELAXED) - before, swaps,
		  "replaced translations released once each");
}

struct acc {
	struct engine *e;
	int lfd;
	int calls;			/* callbacks run */
	pthread_t threads[LOOPS + 1];
	int nr_threads;			/* distinct loop threads that accepted */
};

/* engine_set_acceptor's callback, in a loop's thread: accept all, keep them in this loop. */
static void acc_cb(void *ctx)
{
	struct acc *a = ctx;
	struct engine_origin o = { .vport = 80, .client_ns = "app", .client_pod = "test/acc" };
	pthread_t self = pthread_self();
	bool seen = false;
	int fd;

	ip_addr_parse(VIP, &o.vip);
	__atomic_add_fetch(&a->calls, 1, __ATOMIC_RELAXED);
	/* callbacks never run at once with a detach; two loops may run it together */
	for (int i = 0; i < __atomic_load_n(&a->nr_threads, __ATOMIC_ACQUIRE); i++)
		seen |= pthread_equal(a->threads[i], self);
	if (!seen) {
		int i = __atomic_fetch_add(&a->nr_threads, 1, __ATOMIC_ACQ_REL);

		if (i < LOOPS + 1)
			a->threads[i] = self;
	}
	while ((fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		engine_adopt(a->e, fd, &o);
}

#define ACC_CLIENTS 60

/*
 * The loops accept themselves (engine_set_acceptor, as the agent's steering
 * does with its listeners): connections in bursts all answered to their own
 * client; after the acceptor is taken away no loop accepts any more.
 */
static void t_acceptor(struct fix *f)
{
	struct acc a = { .e = f->e };
	struct epoll_event lev = { .events = EPOLLIN };
	int fds[ACC_CLIENTS], ok = 0, calls, epfd = -1;
	uint16_t port;
	struct reader r;
	struct resp p = { 0 };

	a.lfd = ts_listen_loopback(&port);
	if (!ASSERT_GE(a.lfd, 0, "listen"))
		return;
	/* a loop must never block in the callback: accept until EAGAIN */
	fcntl(a.lfd, F_SETFL, fcntl(a.lfd, F_GETFL) | O_NONBLOCK);
	/* watched through an epoll set of listeners, as the agent's steering does */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!ASSERT_GE(epfd, 0, "epoll_create1") ||
	    !ASSERT_OK(epoll_ctl(epfd, EPOLL_CTL_ADD, a.lfd, &lev), "epoll_ctl"))
		goto out;
	if (!ASSERT_OK(engine_set_acceptor(f->e, epfd, acc_cb, &a), "engine_set_acceptor"))
		goto out;
	ASSERT_EQ(engine_set_acceptor(f->e, epfd, acc_cb, &a), -EBUSY, "one acceptor");
	for (int burst = 0; burst < ACC_CLIENTS; burst += 20) {
		for (int i = burst; i < burst + 20; i++) {
			struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };

			fds[i] = echo_connect(AF_INET, port);
			if (fds[i] >= 0)
				setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		for (int i = burst; i < burst + 20; i++) {
			char req[96], want[48];

			r = (struct reader){ .fd = fds[i] };
			snprintf(req, sizeof(req), "GET /b2/a%d HTTP/1.1\r\nHost: a.app\r\n\r\n", i);
			snprintf(want, sizeof(want), "\"path\": \"/b2/a%d\"", i);
			if (fds[i] >= 0 && !exchange(&r, req, "GET", &p))
				ok += p.status == 200 && p.body && strstr(p.body, want) != NULL;
			resp_free(&p);
			free(r.buf);
		}
	}
	test__printf("acceptor: %d callbacks in %d loop threads\n", a.calls, a.nr_threads);
	ASSERT_EQ(ok, ACC_CLIENTS, "answered, each its own request");
	ASSERT_GT(a.nr_threads, 0, "accepted in the loops");
	ASSERT_LE(a.nr_threads, LOOPS, "only loop threads");
	for (int i = 0; i < ACC_CLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ASSERT_OK(engine_set_acceptor(f->e, -1, NULL, NULL), "detach");
	calls = __atomic_load_n(&a.calls, __ATOMIC_RELAXED);
	/* queued in the backlog now, never accepted, never answered */
	r = (struct reader){ .fd = echo_connect(AF_INET, port) };
	if (ASSERT_GE(r.fd, 0, "connect")) {
		struct timeval tv = { 0, 300000 };

		setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ASSERT_EQ(exchange(&r, GET("/b2/late", ""), "GET", &p), -EAGAIN, "no answer");
		resp_free(&p);
		free(r.buf);
		close(r.fd);
	}
	ASSERT_EQ(__atomic_load_n(&a.calls, __ATOMIC_RELAXED), calls, "no callback after detach");
out:
	engine_set_acceptor(f->e, -1, NULL, NULL);
	if (epfd >= 0)
		close(epfd);
	close(a.lfd);
}

static size_t read_until(int fd, char *buf, size_t cap, const void *want, size_t wl)
{
	size_t len = 0;

	while (len < cap && !(len >= wl && memmem(buf, len, want, wl))) {
		ssize_t n = recv(fd, buf + len, cap - len, 0);

		if (n <= 0)
			break;
		len += n;
	}
	return len;
}

static const char greeting[] = "Gateway API Test TCP Server\n";

/* A TLS ClientHello-like prefix is no HTTP: it reaches tcpf's route backend unchanged. */
static void t_passthrough_binary(struct fix *f)
{
	/* a TLS 1.0 record header of a handshake, then bytes of no protocol, one line */
	static const char hello[] = "\x16\x03\x01\x00\x2a\x01\x00\x00\x26\x03\x03\x00\xff"
				    "binary passthrough data\n";
	size_t hl = sizeof(hello) - 1, len;
	struct engine_stats st0, st;
	ssize_t n;
	char buf[256];
	int fd = client_to(f, "10.96.0.18", "app");

	if (!ASSERT_GE(fd, 0, "client"))
		return;
	engine_get_stats(f->e, &st0);
	ASSERT_OK(echo_send_all(fd, hello, hl), "send");
	/* the line server greets, then echoes the line as it came */
	len = read_until(fd, buf, sizeof(buf), hello, hl);
	ASSERT_EQ(len, strlen(greeting) + hl, "greeting and echo");
	ASSERT_EQ(memcmp(buf, greeting, strlen(greeting)), 0, "greeting");
	ASSERT_OK_PTR(memmem(buf, len, hello, hl), "bytes unchanged both ways");
	/* and on the same connection afterwards, even what looks like HTTP */
	echo_send_str(fd, "GET / HTTP/1.1\n");
	len = read_until(fd, buf, sizeof(buf), "GET / HTTP/1.1\n", 15);
	ASSERT_EQ(len, 15, "still a tunnel");
	engine_get_stats(f->e, &st);
	ASSERT_EQ(st.passthroughs - st0.passthroughs, 1, "counted");
	shutdown(fd, SHUT_WR);
	ASSERT_OK(echo_wait_closed(fd), "half close goes through");
	close(fd);
	/* junk to the HTTP route's Service is no 400 either: the route's backends get it */
	fd = client(f);
	if (!ASSERT_GE(fd, 0, "client"))
		return;
	echo_send_all(fd, "\x00\x01\x02\x03", 4);
	n = recv(fd, buf, sizeof(buf), 0);
	ASSERT_FALSE(n >= 5 && !memcmp(buf, "HTTP/", 5), "no HTTP answer to binary");
	close(fd);
}

/* A client that says nothing: the backend speaks first, and its greeting arrives. */
static void t_passthrough_server_first(struct fix *f)
{
	struct engine_stats st0, st;
	struct timespec t0;
	char buf[256];
	size_t len;
	int fd;

	engine_get_stats(f->e, &st0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = client_to(f, "10.96.0.18", "app");
	if (!ASSERT_GE(fd, 0, "client"))
		return;
	len = read_until(fd, buf, sizeof(buf), greeting, strlen(greeting));
	ASSERT_EQ(len, strlen(greeting), "greeting");
	ASSERT_EQ(memcmp(buf, greeting, len), 0, "greeting bytes");
	ASSERT_GE(ms_since(&t0), SNIFF_TIMEOUT_MS - 50, "not before the sniff timeout");
	echo_send_str(fd, "PING\n");
	len = read_until(fd, buf, sizeof(buf), "PONG\n", 5);
	ASSERT_EQ(len, 5, "then both ways");
	engine_get_stats(f->e, &st);
	ASSERT_EQ(st.passthroughs - st0.passthroughs, 1, "counted");
	close(fd);
}

/* HTTP on a fresh connection to the same Service still goes through HTTP routing. */
static void t_passthrough_http(struct fix *f)
{
	struct reader r = { .fd = client_to(f, "10.96.0.18", "app") };
	struct engine_stats st0, st;
	struct resp p;

	if (!ASSERT_GE(r.fd, 0, "client"))
		return;
	engine_get_stats(f->e, &st0);
	/* leading empty lines are HTTP's too; the line server would answer no HTTP */
	if (ASSERT_OK(exchange(&r, "\r\n" GET("/x", ""), "GET", &p), "http"))
		ASSERT_EQ(p.status, 502, "HTTP routing to a backend that speaks no HTTP");
	resp_free(&p);
	engine_get_stats(f->e, &st);
	ASSERT_EQ(st.passthroughs, st0.passthroughs, "not passed through");
	rd_close(&r);
}

/* The value of one series of the engine's /metrics text, 0 when absent. */
static double metric(struct fix *f, const char *series)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	double v;

	if (!out)
		return -1;
	ASSERT_OK(engine_metrics_render(f->e, out), "render");
	fclose(out);
	v = ops_prom_value(text, series);
	free(text);
	return v < 0 ? 0 : v;
}

#define RQ "gammad_http_requests_total"
#define RD "gammad_http_request_duration_seconds_count"
#define UD "gammad_http_upstream_duration_seconds_count"
#define S(route, rule, backend) \
	"{namespace=\"app\",route=\"" route "\",rule=\"" rule "\",backend=\"" backend "\""
static const char *const m_series[] = {
	RQ S("r", "8", "app/b1:80") ",code_class=\"2xx\"}",	/* /split: 80 */
	RQ S("r", "8", "app/b3:80") ",code_class=\"2xx\"}",	/*         20 */
	RQ S("r", "9", "") ",code_class=\"3xx\"}",		/* /old: the engine's 301 */
	RQ "{namespace=\"\",route=\"\",rule=\"\",backend=\"\",code_class=\"4xx\"}",		/* no rule matched */
	RQ S("r", "13", "") ",code_class=\"5xx\"}",		/* /empty: 503 */
	RQ S("r2", "named", "app/b2:80") ",code_class=\"2xx\"}", /* a rule's name */
	RD S("r2", "named", "app/b2:80") "}",
	UD S("r2", "named", "app/b2:80") "}",
	UD S("r", "9", "") "}",				/* no upstream, none counted */
	RQ S("r", "0", "app/b2:80") ",code_class=\"none\"}",	/* nothing cut short */
};

/*
 * Per-request metrics: the series of each rule and backend count exactly
 * the requests sent to them (as a delta: earlier subtests count too).
 */
static void t_metrics(struct fix *f, struct reader *r)
{
	static const struct { const char *req; int n; } sent[] = {
		{ GET("/split", ""), 40 }, { GET("/old", ""), 5 }, { GET("/nomatch", ""), 3 },
		{ GET("/empty", ""), 4 }, { GET("/named/x", ""), 7 },
	};
	const size_t nr = sizeof(m_series) / sizeof(m_series[0]);
	double before[16], after[16];
	int since = f->nr_logs, total = 0;
	struct resp p;
	char lb[96];

	for (size_t i = 0; i < nr; i++)
		before[i] = metric(f, m_series[i]);
	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++)
		for (int k = 0; k < sent[i].n; k++, total++) {
			if (!ASSERT_OK(exchange(r, sent[i].req, "GET", &p), sent[i].req))
				goto out;
			resp_free(&p);
		}
	/* counted before on_request: once the last log is there, so are the counts */
	log_back(f, since + total - 1, 0, lb, sizeof(lb));
	for (size_t i = 0; i < nr; i++)
		after[i] = metric(f, m_series[i]);
	ASSERT_EQ((long)(after[0] - before[0] + after[1] - before[1]), 40, "/split by backend");
	ASSERT_GT((long)(after[0] - before[0]), 20, "/split mostly b1");
	ASSERT_EQ((long)(after[2] - before[2]), 5, "/old redirects, no backend");
	ASSERT_EQ((long)(after[3] - before[3]), 3, "404s without a rule");
	ASSERT_EQ((long)(after[4] - before[4]), 4, "/empty 503s");
	ASSERT_EQ((long)(after[5] - before[5]), 7, "a rule by its name");
	ASSERT_EQ((long)(after[6] - before[6]), 7, "request latency observed");
	ASSERT_EQ((long)(after[7] - before[7]), 7, "upstream latency observed");
	ASSERT_EQ((long)(after[8] - before[8]), 0, "no upstream latency for a redirect");
	ASSERT_EQ((long)(after[9] - before[9]), 0, "nothing cut short");
out:
	resp_free(&p);
}

/* engine_explain() as JSON text for a request from namespace ns to vip:80. */
static char *explain_json(struct fix *f, const char *vip, const char *ns, const char *method,
			  const char *target, const struct ev_header *h, size_t nr)
{
	struct engine_origin o = { .vport = 80 };
	struct ev_request req = { .method = method, .target = target, .headers = h,
				  .nr_headers = nr, .host = "a.app", .port = 80 };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	ip_addr_parse(vip, &o.vip);
	snprintf(o.client_ns, sizeof(o.client_ns), "%s", ns);
	ASSERT_OK(engine_explain(f->e, &o, &req, out), "engine_explain");
	fclose(out);
	return text;
}

/* What a request would get on the live tables, as the agent's /explain shows it. */
static void t_explain(struct fix *f)
{
	static const struct ev_header v2[] = { { "x-version", "v2" } };
	char *j;

	j = explain_json(f, VIP, "app", "GET", "/old?q=1", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"status\": 301", "redirect");
	ASSERT_HAS_SUBSTR(j, "\"location\": \"http://new.example.com/new/place?q=1\"", "Location");
	ASSERT_HAS_SUBSTR(j, "\"route\": \"r\"", "its route");
	ASSERT_HAS_SUBSTR(j, "\"index\": 9", "its rule");
	ASSERT_HAS_SUBSTR(j, "\"RequestRedirect\"", "its filter");
	free(j);
	j = explain_json(f, VIP, "app", "GET", "/v/x", v2, 1);
	ASSERT_HAS_SUBSTR(j, "\"index\": 0", "header match");
	ASSERT_HAS_SUBSTR(j, "\"backend\": \"app/b2:80\"", "its backend");
	ASSERT_HAS_SUBSTR(j, "\"status\": 200", "proxied");
	free(j);
	j = explain_json(f, VIP, "app", "GET", "/split", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"weight\": 80", "weights");
	ASSERT_HAS_SUBSTR(j, "\"weight\": 20", "weights");
	free(j);
	j = explain_json(f, VIP, "app", "GET", "/empty", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"status\": 503", "no endpoint: 503, as a request gets");
	free(j);
	j = explain_json(f, VIP, "other", "GET", "/old", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"route\": \"consumer\"", "the consumer class");
	free(j);
	j = explain_json(f, VIP, "app", "GET", "/nomatch", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"status\": 404", "no rule");
	ASSERT_NULL(strstr(j, "\"rule\""), "none named");
	free(j);
	j = explain_json(f, "10.96.9.9", "app", "GET", "/", NULL, 0);
	ASSERT_HAS_SUBSTR(j, "\"service_port\": false", "no such Service");
	free(j);
}

void test_engine_http(void)
{
	/* rd: the subtest gets a client of VIP in namespace app, closed after it */
	static const struct {
		const char *name;
		void (*fn)(struct fix *);
		void (*rd)(struct fix *, struct reader *);
	} subs[] = {
		{ "routing", .rd = t_routing },
		{ "weighted_split", .rd = t_split },
		{ "keepalive_alternating", .rd = t_alternate },
		{ "filters", .rd = t_filters },
		{ "local_answers", .rd = t_local },
		{ "bodies", .fn = t_bodies },
		{ "pipelined", .rd = t_pipelined },
		{ "framing", .rd = t_framing },
		{ "upgrade", .rd = t_upgrade },
		{ "slow_reader", .rd = t_slow_reader },
		{ "upstream_dies", .rd = t_upstream_dies },
		{ "client_dies", .fn = t_client_dies },
		{ "header_timeout", .rd = t_header_timeout },
		{ "origins", .fn = t_origins },
		{ "http10", .rd = t_http10 },
		{ "stale_pool", .rd = t_stale_pool },
		{ "request_timeout", .rd = t_request_timeout },
		{ "concurrent", .fn = t_concurrent },
		{ "netns", .fn = t_netns },
		{ "chaos", .fn = t_chaos },
		{ "mirror", .rd = t_mirror },
		{ "affinity", .fn = t_affinity },
		{ "retry", .rd = t_retry },
		{ "new_tables", .rd = t_new_tables },
		{ "loops_swap", .fn = t_loops_swap },
		{ "acceptor", .fn = t_acceptor },
		{ "passthrough_binary", .fn = t_passthrough_binary },
		{ "passthrough_server_first", .fn = t_passthrough_server_first },
		{ "passthrough_http", .fn = t_passthrough_http },
		{ "metrics", .rd = t_metrics },
		{ "retry_body", .rd = t_retry_body },
		{ "mirror_body", .rd = t_mirror_body },
		{ "explain", .fn = t_explain },
	};
	struct fix f;

	if (fix_start(&f))
		goto out;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		struct reader r = { .fd = -1 };

		if (!test__start_subtest(subs[i].name))
			continue;
		if (!subs[i].rd)
			subs[i].fn(&f);
		else if (ASSERT_GE(r.fd = client(&f), 0, "client"))
			subs[i].rd(&f, &r);
		rd_close(&r);
	}
out:
	fix_stop(&f);
}
