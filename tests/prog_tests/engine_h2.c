// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/2 and gRPC through the engine (user/lib/engine/engine_h2.c) over
 * loopback, without the kernel steering: the test listens itself and hands
 * every connection it accepts to the engine with the ClusterIP:port a client
 * would have dialed. Backends are build/echo servers (their HTTP listeners
 * speak HTTP/2 with prior knowledge and gRPC); clients are `echo client`
 * runs (grpc://, --h2, --h2c): every call of a run is a stream of ONE
 * connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "test_progs.h"
#include "lib/echo_harness.h"
#include "engine/engine.h"
#include "input/manifest.h"

#define VIP_G "10.96.0.20"	/* GRPCRoute on port 7070 */
#define VIP_H "10.96.0.25"	/* HTTPRoute on port 80 (HTTP/2 clients, gRPC too) */
#define ECHO_SVC "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
#define CLIENT_TIMEOUT_MS 20000

struct fix {
	struct echo_proc echo[3];	/* pods g1, g2, gk (killed by a test) */
	int hang_fd;			/* listens, never accepts: a backend that never answers */
	uint16_t hang_port;
	struct model m;
	struct diag dg;
	struct engine *e;
	int lfd;
	uint16_t lport;
	pthread_t acceptor;
	int stop;			/* atomic */
	int adopted;			/* atomic: connections handed to the engine */
	struct engine_origin origin;	/* what every accepted connection dialed */
	pthread_mutex_t lock;
};

#define SVC(name, ip, port, ap) \
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec:\n  clusterIP: " ip "\n  ports: [{name: p, port: " port ap "}]\n"
#define SLICE(name, port) \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " name "-1, namespace: app, labels: {kubernetes.io/service-name: " name "}}\n" \
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n" \
	"ports:\n- {name: p, port: " port "}\n"
#define GRPC_AP ", appProtocol: grpc"

static const char routes_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
	SVC("g", VIP_G, "7070", GRPC_AP) SVC("g1", "10.96.0.21", "7070", GRPC_AP)
	SVC("g2", "10.96.0.22", "7070", GRPC_AP) SVC("hang", "10.96.0.23", "7070", GRPC_AP)
	SVC("gempty", "10.96.0.24", "7070", GRPC_AP) SVC("h", VIP_H, "80", "")
	SVC("h1only", "10.96.0.26", "80", ", appProtocol: http")
	SVC("gk", "10.96.0.27", "7070", GRPC_AP)
	SLICE("g1", "%u") SLICE("g2", "%u") SLICE("hang", "%u") SLICE("h1only", "%u") SLICE("gk", "%u")
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	"metadata: {name: gr, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: g, port: 7070}]\n  rules:\n"
	"  - matches: [{method: {service: " ECHO_SVC ", method: Echo}}]\n"
	"    backendRefs: [{name: g1, port: 7070, weight: 70}, {name: g2, port: 7070, weight: 30}]\n"
	"  - matches: [{method: {service: " ECHO_SVC ", method: EchoTwo}, "
	"headers: [{name: x-pick, value: g1}]}]\n"
	"    backendRefs: [{name: g1, port: 7070}]\n"
	"  - matches: [{method: {service: " ECHO_SVC ", method: EchoTwo}}]\n"
	"    backendRefs: [{name: g2, port: 7070}]\n"
	"  - matches: [{method: {type: RegularExpression, service: \"gammad\\\\.echo\\\\.S.*\", "
	"method: \"Server|Client|Bidi\"}}]\n"
	"    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: "
	"{add: [{name: X-Stream, value: \"yes\"}]}}]\n"
	"    backendRefs: [{name: g2, port: 7070}]\n"
	"  - matches: [{method: {service: gammad.echo.Empty}}]\n"
	"    backendRefs: [{name: gempty, port: 7070}]\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: hr, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: h, port: 80}]\n  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /h2}}]\n"
	"    filters:\n"
	"    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Set, value: s1}]}}\n"
	"    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Resp, value: r1}]}}\n"
	"    backendRefs: [{name: g2, port: 7070}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /split}}]\n"
	"    backendRefs: [{name: g1, port: 7070}, {name: g2, port: 7070}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /gammad.echo.Hang}}]\n"
	"    timeouts: {request: 300ms}\n"
	"    backendRefs: [{name: hang, port: 7070}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /h1only}}]\n"
	"    backendRefs: [{name: h1only, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /gammad.echo.Stream}}]\n"
	"    backendRefs: [{name: gk, port: 7070}]\n";

static void *acceptor(void *arg)
{
	struct fix *f = arg;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		struct engine_origin o;
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->lock);
		o = f->origin;
		pthread_mutex_unlock(&f->lock);
		if (!engine_adopt(f->e, fd, &o))
			__atomic_add_fetch(&f->adopted, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int listen_loopback(uint16_t *port, int backlog)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static void dial(struct fix *f, const char *vip, uint16_t vport)
{
	pthread_mutex_lock(&f->lock);
	ip_addr_parse(vip, &f->origin.vip);
	f->origin.vport = vport;
	pthread_mutex_unlock(&f->lock);
}

static int fix_start(struct fix *f)
{
	static const char *const pods[] = { "g1", "g2", "gk" };
	/* 3 loops: more than this machine's CPUs; connections spread over them */
	struct engine_opts o = { .buf_size = 16384, .threads = 3 };
	struct tr_result *res;
	char *yaml = NULL;
	int ret;

	memset(f, 0, sizeof(*f));
	f->lfd = f->hang_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	model_init(&f->m);
	snprintf(f->origin.client_ns, sizeof(f->origin.client_ns), "app");
	snprintf(f->origin.client_pod, sizeof(f->origin.client_pod), "app/client");
	for (int i = 0; i < 3; i++) {
		const char *args[] = { "--port=0", "--pod", pods[i], "--namespace", "app", NULL };

		ret = echo_proc_start(&f->echo[i], args, NULL);
		if (!ASSERT_OK(ret, "echo start"))
			return ret;
	}
	f->hang_fd = listen_loopback(&f->hang_port, 64);
	if (!ASSERT_GE(f->hang_fd, 0, "hang listener"))
		return -EIO;
	if (asprintf(&yaml, routes_yaml, echo_proc_port(&f->echo[0], "http", 0),
		     echo_proc_port(&f->echo[1], "http", 0), f->hang_port,
		     echo_proc_port(&f->echo[0], "http", 0), echo_proc_port(&f->echo[2], "http", 0)) < 0)
		return -ENOMEM;
	ret = manifest_load_buf(&f->m, "h2.yaml", yaml, strlen(yaml), &f->dg);
	free(yaml);
	if (!ASSERT_OK(ret, "manifests") || !ASSERT_EQ(f->dg.nr_errors, 0, "manifest errors")) {
		for (size_t i = 0; i < f->dg.nr; i++)
			test__printf("%s\n", f->dg.entries[i].msg);
		return -EINVAL;
	}
	res = calloc(1, sizeof(*res));
	if (!res || !ASSERT_OK(translate(&f->m, &f->dg, res), "translate")) {
		free(res);
		return -EINVAL;
	}
	f->e = engine_new(&o);
	if (!ASSERT_OK_PTR(f->e, "engine_new")) {
		tr_result_free(res);
		free(res);
		return -ENOMEM;
	}
	if (!ASSERT_OK(engine_set_tables(f->e, res), "engine_set_tables") ||
	    !ASSERT_OK(engine_start(f->e), "engine_start"))
		return -EIO;
	f->lfd = listen_loopback(&f->lport, 256);
	if (!ASSERT_GE(f->lfd, 0, "listen"))
		return -EIO;
	if (!ASSERT_OK(pthread_create(&f->acceptor, NULL, acceptor, f), "acceptor")) {
		close(f->lfd);
		f->lfd = -1;
		return -EIO;
	}
	return 0;
}

static void fix_stop(struct fix *f)
{
	if (f->lfd >= 0) {
		__atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
		pthread_join(f->acceptor, NULL);
		close(f->lfd);
	}
	if (f->e) {
		engine_stop(f->e);
		engine_free(f->e);
	}
	for (int i = 0; i < 3; i++)
		if (f->echo[i].pid)
			echo_proc_stop(&f->echo[i]);
	if (f->hang_fd >= 0)
		close(f->hang_fd);
	model_free(&f->m);
	diag_free(&f->dg);
	pthread_mutex_destroy(&f->lock);
}

/* `echo client URL ARGS...` through the engine; its stdout (caller frees), NULL on failure. */
static char *run_client(struct fix *f, const char *url, const char *const *args)
{
	const char *argv[24] = { test_bin("echo"), "client", url };
	char connect[64], timeout[32];
	char *out = NULL, *err = NULL;
	int n = 3, status = 0;

	snprintf(connect, sizeof(connect), "--connect-to=127.0.0.1:%u", f->lport);
	snprintf(timeout, sizeof(timeout), "--timeout=%d", CLIENT_TIMEOUT_MS / 1000);
	argv[n++] = connect;
	argv[n++] = timeout;
	for (int i = 0; args && args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (echo_run(argv, &out, &err, &status, CLIENT_TIMEOUT_MS + 5000)) {
		free(out);
		out = NULL;
	} else if (status) {
		test__printf("client %s: status %d: %s", url, status, err ? err : "");
	}
	free(err);
	return out;
}

/* The value of "Key=" in the client's output, or "" (static buffer). */
static const char *line_val(const char *out, const char *key)
{
	static char buf[512];
	size_t kl = strlen(key);

	buf[0] = 0;
	for (const char *p = out; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			snprintf(buf, sizeof(buf), "%.*s", (int)(l - kl - 1), p + kl + 1);
			return buf;
		}
		if (!e)
			break;
		p = e + 1;
	}
	return buf;
}

/* "pod":N out of a --json tally. */
static long json_count(const char *out, const char *pod)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", pod);
	p = out ? strstr(out, key) : NULL;
	return p ? strtol(p + strlen(key), NULL, 10) : 0;
}


/* ---- a raw HTTP/2 client, for what echo client does not do ------------------ */

struct rcall {
	int32_t id;
	bool closed, consume;	/* consume: give the window back (a reading client) */
	uint32_t err;
	int status;
	long bytes;
};

struct rcl {
	nghttp2_session *s;
	int fd;
	bool eof;
};

static int r_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct rcall *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (c && nl == 7 && !memcmp(n, ":status", 7))
		c->status = atoi((const char *)v);
	return 0;
}

static int r_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
		  void *ud)
{
	struct rcall *c = nghttp2_session_get_stream_user_data(s, id);

	if (c) {
		c->bytes += len;
		if (c->consume)
			nghttp2_session_consume(s, id, len);
		else
			nghttp2_session_consume_connection(s, len);
	}
	return 0;
}

static int r_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct rcall *c = nghttp2_session_get_stream_user_data(s, id);

	if (c) {
		c->closed = true;
		c->err = err;
	}
	return 0;
}

static int rcl_open(struct rcl *r, uint16_t port)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = echo_connect(AF_INET, port);
	if (r->fd < 0)
		return r->fd;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, r_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, r_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, r_close);
	nghttp2_option_new(&opt);
	/* The test decides which stream reads: a stalled one never gives its window back. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	ret = nghttp2_session_client_new2(&r->s, cb, r, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (ret)
		return -ENOMEM;
	return nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0) ? -EIO : 0;
}

static void rcl_close(struct rcl *r)
{
	if (r->s)
		nghttp2_session_del(r->s);
	if (r->fd >= 0)
		close(r->fd);
	r->s = NULL;
	r->fd = -1;
}

/* Exchange frames for up to ms, or until done(arg) (NULL: for ms). */
static void rcl_run(struct rcl *r, int ms, bool (*done)(void *), void *arg)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!r->eof) {
		struct timespec t;
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		const uint8_t *d;
		uint8_t buf[16384];
		ssize_t n;

		while ((n = nghttp2_session_mem_send(r->s, &d)) > 0)
			if (echo_send_all(r->fd, d, n))
				return;
		if (done && done(arg))
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return;
		if (poll(&p, 1, 20) <= 0)
			continue;
		n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			r->eof = true;
			return;
		}
		if (nghttp2_session_mem_recv(r->s, buf, n) < 0)
			return;
	}
}

#define RNV(a, b) { (uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), 0 }

/* A gRPC call without a request message (END_STREAM on its HEADERS): the echo
 * answers Echo and Stream/Server (x-messages replies of x-message-size) all the same. */
static int32_t rcl_call(struct rcl *r, struct rcall *c, const char *path, const char *msgs,
			const char *size)
{
	nghttp2_nv nv[] = { RNV(":method", "POST"), RNV(":scheme", "http"),
			    RNV(":authority", "g:7070"), RNV(":path", path),
			    RNV("content-type", "application/grpc"), RNV("te", "trailers"),
			    RNV("x-messages", msgs), RNV("x-message-size", size) };

	c->id = nghttp2_submit_request(r->s, NULL, nv, 8, NULL, c);
	return c->id;
}

struct calls {
	struct rcall *c;
	int n;
};

static bool calls_closed(void *arg)
{
	struct calls *cs = arg;

	for (int i = 0; i < cs->n; i++)
		if (!cs->c[i].closed)
			return false;
	return true;
}

static bool one_closed(void *arg)
{
	return ((struct rcall *)arg)->closed;
}

/*
 * A client that stops reading one stream (a large server-streaming call)
 * while it goes on with others: the others finish, the engine holds a
 * bounded number of bytes for the stalled one, and a RST_STREAM from the
 * client ends it (the engine resets the upstream's half and frees both).
 * Then a GOAWAY from the client: the engine ends the connection.
 */
static void sub_flow_control(struct fix *f)
{
	struct rcall big = { .consume = false }, small[50];
	struct calls cs = { small, 50 };
	struct engine_stats st;
	struct rcl r;

	dial(f, VIP_G, 7070);
	if (!ASSERT_OK(rcl_open(&r, f->lport), "connect"))
		goto out;
	/* 2000 x 16 KiB = 32 MiB the client never reads */
	ASSERT_GT(rcl_call(&r, &big, "/gammad.echo.Stream/Server", "2000", "16384"), 0, "big call");
	rcl_run(&r, 1000, NULL, NULL);
	ASSERT_FALSE(big.closed, "the stalled call is still open");
	ASSERT_LE(big.bytes, 65535, "no more than its window reached the client");
	memset(small, 0, sizeof(small));
	for (int i = 0; i < 50; i++) {
		small[i].consume = true;
		rcl_call(&r, &small[i], "/" ECHO_SVC "/EchoTwo", "0", "0");
	}
	rcl_run(&r, 10000, calls_closed, &cs);
	for (int i = 0; i < 50; i++)
		if (!ASSERT_TRUE(small[i].closed && !small[i].err && small[i].status == 200,
				 "a call beside the stalled one completes"))
			break;
	engine_get_stats(f->e, &st);
	test__printf("engine buffers with one stalled 32 MiB stream: %llu bytes\n",
		     (unsigned long long)st.buffer_bytes);
	/* its two stream buffers, the connections' own: not the 32 MiB */
	ASSERT_LE(st.buffer_bytes, 512 * 1024, "bounded engine memory");
	ASSERT_FALSE(big.closed, "still stalled, not failed");

	/* RST_STREAM from the client */
	nghttp2_submit_rst_stream(r.s, NGHTTP2_FLAG_NONE, big.id, NGHTTP2_CANCEL);
	rcl_run(&r, 2000, one_closed, &big);
	ASSERT_TRUE(big.closed, "reset");
	for (int i = 0; i < 100; i++) {
		engine_get_stats(f->e, &st);
		if (st.buffer_bytes <= 4 * 16384)	/* what HTTP/1.1 clients may hold */
			break;
		usleep(20000);
	}
	ASSERT_LE(st.buffer_bytes, 4 * 16384, "the reset stream's buffers are freed");

	/* GOAWAY from the client: the engine closes the connection */
	nghttp2_submit_goaway(r.s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	rcl_run(&r, 3000, NULL, NULL);
	ASSERT_TRUE(r.eof, "the engine closed the connection after GOAWAY");
out:
	rcl_close(&r);
}

static void sub_weights(struct fix *f)
{
	static const char *const args[] = { "--count=1000", "--concurrency=8", "--json", NULL };
	int before = __atomic_load_n(&f->adopted, __ATOMIC_RELAXED);
	char *out;
	long g1, g2;

	dial(f, VIP_G, 7070);
	out = run_client(f, "grpc://g:7070", args);
	g1 = json_count(out, "g1");
	g2 = json_count(out, "g2");
	test__printf("1000 calls on one connection: g1 %ld, g2 %ld\n", g1, g2);
	ASSERT_OK_PTR(strstr(out ? out : "", "\"errors\":0"), "no errors");
	ASSERT_EQ(g1 + g2, 1000, "every call answered by g1 or g2");
	/* 70/30 per call, +-5% of the calls */
	ASSERT_GE(g1, 650, "g1 share >= 65%");
	ASSERT_LE(g1, 750, "g1 share <= 75%");
	ASSERT_EQ(__atomic_load_n(&f->adopted, __ATOMIC_RELAXED) - before, 1, "one connection");
	free(out);
}

struct call_case {
	const char *what, *url;
	const char *args[4];
	const char *grpc_status, *host, *message;
};

static void sub_match(struct fix *f)
{
	static const struct call_case cases[] = {
		{ "EchoTwo: the method's rule", "grpc://g:7070/" ECHO_SVC "/EchoTwo", { NULL },
		  "0", "g2", NULL },
		{ "EchoTwo with x-pick: g1: the header's rule", "grpc://g:7070/" ECHO_SVC "/EchoTwo",
		  { "-H", "x-pick:g1", NULL }, "0", "g1", NULL },
		{ "EchoThree: no rule: UNIMPLEMENTED from the mesh",
		  "grpc://g:7070/" ECHO_SVC "/EchoThree", { NULL }, "12", "",
		  "no route matches the call" },
		{ "another service: UNIMPLEMENTED", "grpc://g:7070/other.Svc/Call", { NULL }, "12", "",
		  NULL },
		{ "no endpoints: UNAVAILABLE", "grpc://g:7070/gammad.echo.Empty/Call", { NULL }, "14",
		  "", NULL },
		{ "timeouts.request passes: DEADLINE_EXCEEDED", "grpc://h:80/gammad.echo.Hang/Call",
		  { NULL }, "4", "", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct call_case *c = &cases[i];
		char *out;

		dial(f, strstr(c->url, "//h:") ? VIP_H : VIP_G, strstr(c->url, "//h:") ? 80 : 7070);
		out = run_client(f, c->url, c->args);
		if (!ASSERT_OK_PTR(out, c->what))
			continue;
		ASSERT_STREQ(line_val(out, "GrpcStatus"), c->grpc_status, c->what);
		ASSERT_STREQ(line_val(out, "Hostname"), c->host, c->what);
		if (c->message)
			ASSERT_STREQ(line_val(out, "GrpcMessage"), c->message, c->what);
		free(out);
	}
}

static void sub_streaming(struct fix *f)
{
	static const struct {
		const char *kind, *messages, *want_key, *want;
	} cases[] = {
		{ "server", "--messages=200", "Messages", "200" },
		{ "client", "--messages=50", "Reply", "50" },
		{ "bidi", "--messages=30", "Messages", "30" },
	};

	dial(f, VIP_G, 7070);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char stream[32];
		const char *args[] = { stream, cases[i].messages, NULL };
		char *out;

		snprintf(stream, sizeof(stream), "--stream=%s", cases[i].kind);
		out = run_client(f, "grpc://g:7070", args);
		if (!ASSERT_OK_PTR(out, cases[i].kind))
			continue;
		ASSERT_STREQ(line_val(out, "GrpcStatus"), "0", cases[i].kind);
		ASSERT_STREQ(line_val(out, cases[i].want_key), cases[i].want, cases[i].kind);
		ASSERT_STREQ(line_val(out, "ResponseHeader"), "content-type:application/grpc",
			     "response head passed on");
		ASSERT_OK_PTR(strstr(out, "ResponseHeader=x-stream:yes"), "ResponseHeaderModifier");
		free(out);
	}
}

static void sub_concurrent(struct fix *f)
{
	static const char *const args[] = { "--count=100", "--concurrency=100", "--json", NULL };
	int before = __atomic_load_n(&f->adopted, __ATOMIC_RELAXED);
	struct engine_stats st;
	char *out;

	dial(f, VIP_G, 7070);
	out = run_client(f, "grpc://g:7070/" ECHO_SVC "/EchoTwo", args);
	ASSERT_OK_PTR(strstr(out ? out : "", "{\"total\":100,\"errors\":0,\"pods\":{\"g2\":100}"),
		      "100 concurrent streams answered by g2");
	ASSERT_EQ(__atomic_load_n(&f->adopted, __ATOMIC_RELAXED) - before, 1, "one connection");
	/* multiplexed upstream: g2 is one endpoint, its connections a few, not 100 */
	engine_get_stats(f->e, &st);
	test__printf("upstream connections open: %llu\n", (unsigned long long)st.upstreams);
	ASSERT_LE(st.upstreams, 6, "upstream connections pooled and multiplexed");
	free(out);
}

static void sub_http(struct fix *f)
{
	static const char *const modes[] = { "--h2", "--h2c" };

	dial(f, VIP_H, 80);
	for (int i = 0; i < 2; i++) {
		const char *args[] = { modes[i], NULL };
		char *out = run_client(f, "http://h/h2/x", args);

		if (!ASSERT_OK_PTR(out, modes[i]))
			continue;
		ASSERT_STREQ(line_val(out, "StatusCode"), "200", modes[i]);
		ASSERT_STREQ(line_val(out, "Hostname"), "g2", modes[i]);
		ASSERT_STREQ(line_val(out, "Proto"), "HTTP/2.0", "HTTP/2 upstream (no appProtocol)");
		ASSERT_OK_PTR(strstr(out, "RequestHeader=X-Set:s1"), "RequestHeaderModifier");
		ASSERT_OK_PTR(strstr(out, "ResponseHeader=x-resp:r1"), "ResponseHeaderModifier");
		free(out);
	}
	{
		const char *args[] = { "--h2", NULL };
		char *out = run_client(f, "http://h/nothing", args);

		ASSERT_STREQ(line_val(out ? out : "", "StatusCode"), "404", "no rule: 404 over HTTP/2");
		free(out);
	}
	{
		/* appProtocol http: HTTP/2 streams become HTTP/1.1 requests (pooled) */
		const char *args[] = { "--h2", "-H", "X-Trace:t1", NULL };
		const char *post[] = { "--h2", "--body=0123456789", "--method=POST", NULL };
		const char *many[] = { "--h2", "--count=50", "--concurrency=5", "--json", NULL };
		char *out = run_client(f, "http://h/h1only/x?q=1", args);

		ASSERT_STREQ(line_val(out ? out : "", "StatusCode"), "200", "h2 -> HTTP/1.1 backend");
		ASSERT_STREQ(line_val(out ? out : "", "Hostname"), "g1", "the HTTP/1.1 backend");
		ASSERT_STREQ(line_val(out ? out : "", "URL"), "/h1only/x?q=1", "the path it saw");
		ASSERT_STREQ(line_val(out ? out : "", "Host"), "h", "Host from :authority");
		ASSERT_STREQ(line_val(out ? out : "", "Proto"), "HTTP/1.1", "HTTP/1.1 upstream");
		ASSERT_OK_PTR(strstr(out ? out : "", "RequestHeader=X-Trace:t1"), "fields passed on");
		free(out);
		out = run_client(f, "http://h/h1only/post", post);
		ASSERT_STREQ(line_val(out ? out : "", "Method"), "POST", "a body, chunked upstream");
		ASSERT_STREQ(line_val(out ? out : "", "StatusCode"), "200", "POST answered");
		free(out);
		out = run_client(f, "http://h/h1only/many", many);
		ASSERT_OK_PTR(strstr(out ? out : "", "{\"total\":50,\"errors\":0,\"pods\":{\"g1\":50}"),
			      "50 streams over pooled HTTP/1.1 connections");
		free(out);
	}
	{
		/* an HTTP/1.1 client, the backend port appProtocol grpc: HTTP/2 upstream */
		const char *none[] = { "-H", "X-Trace:t2", NULL };
		const char *post[] = { "--body=0123456789", "--method=POST", NULL };
		const char *many[] = { "--count=50", "--json", NULL };
		char *out = run_client(f, "http://h/h2/one?q=2", none);

		ASSERT_STREQ(line_val(out ? out : "", "StatusCode"), "200", "HTTP/1.1 -> h2 backend");
		ASSERT_STREQ(line_val(out ? out : "", "Hostname"), "g2", "the h2 backend");
		ASSERT_STREQ(line_val(out ? out : "", "Proto"), "HTTP/2.0", "it got HTTP/2");
		ASSERT_STREQ(line_val(out ? out : "", "URL"), "/h2/one?q=2", "the path it saw");
		ASSERT_OK_PTR(strstr(out ? out : "", "RequestHeader=X-Trace:t2"), "fields passed on");
		ASSERT_OK_PTR(strstr(out ? out : "", "RequestHeader=X-Set:s1"), "RequestHeaderModifier");
		ASSERT_OK_PTR(strstr(out ? out : "", "ResponseHeader=x-resp:r1"),
			      "ResponseHeaderModifier");
		free(out);
		out = run_client(f, "http://h/h2/post", post);
		ASSERT_STREQ(line_val(out ? out : "", "Method"), "POST", "a body to the h2 backend");
		ASSERT_STREQ(line_val(out ? out : "", "StatusCode"), "200", "POST answered");
		free(out);
		out = run_client(f, "http://h/h2/many", many);
		ASSERT_OK_PTR(strstr(out ? out : "", "{\"total\":50,\"errors\":0,\"pods\":{\"g2\":50}"),
			      "50 keep-alive requests as streams");
		free(out);
	}
	{
		const char *args[] = { "--h2", "--count=200", "--concurrency=10", "--json", NULL };
		char *out = run_client(f, "http://h/split", args);
		long g1 = json_count(out, "g1"), g2 = json_count(out, "g2");

		test__printf("HTTPRoute 50/50 over one HTTP/2 connection: g1 %ld, g2 %ld\n", g1, g2);
		ASSERT_EQ(g1 + g2, 200, "all answered");
		ASSERT_GE(g1, 50, "both backends per request");
		ASSERT_GE(g2, 50, "both backends per request");
		free(out);
	}
}

/*
 * The backend of a long server-streaming call dies: the client's stream is
 * reset (not REFUSED_STREAM: it was processed), other streams of the same
 * connection go on, and a new call to the dead backend is UNAVAILABLE.
 */
static void sub_upstream_lost(struct fix *f)
{
	struct rcall big = { .consume = true }, after = { .consume = true };
	struct rcl r;
	char *out;

	dial(f, VIP_H, 80);
	if (!ASSERT_OK(rcl_open(&r, f->lport), "connect"))
		goto out;
	rcl_call(&r, &big, "/gammad.echo.Stream/Server", "1000000", "1000");
	rcl_run(&r, 300, NULL, NULL);
	if (!ASSERT_FALSE(big.closed, "streaming from gk"))
		goto out;
	ASSERT_GT(big.bytes, 0, "data came");
	echo_proc_stop(&f->echo[2]);
	rcl_run(&r, 5000, one_closed, &big);
	ASSERT_TRUE(big.closed, "the cut stream ends");
	ASSERT_EQ(big.err, NGHTTP2_INTERNAL_ERROR, "as a reset (INTERNAL_ERROR)");
	ASSERT_FALSE(r.eof, "the client connection stays");
	rcl_call(&r, &after, "/h2/after", "0", "0");
	rcl_run(&r, 5000, one_closed, &after);
	ASSERT_TRUE(after.closed && !after.err && after.status == 200,
		    "another stream on the same connection");
	rcl_close(&r);
	out = run_client(f, "grpc://h:80/gammad.echo.Stream/Server", NULL);
	ASSERT_STREQ(line_val(out ? out : "", "GrpcStatus"), "14", "the dead backend: UNAVAILABLE");
	free(out);
	return;
out:
	rcl_close(&r);
}

static int give_later(void *ctx, int fd, const struct engine_origin *o, bool http)
{
	return -EAGAIN;	/* a successor that never takes one: only GOAWAY matters here */
}

/*
 * A restart (engine_handoff): an HTTP/2 connection is never at a request
 * boundary, so it gets a GOAWAY; the call in flight finishes on it, then
 * the engine closes it (the client reconnects, to the successor). Last:
 * the engine hands over from here on.
 */
static void sub_handoff(struct fix *f)
{
	struct rcall c = { .consume = false };
	struct rcl r;

	dial(f, VIP_G, 7070);
	if (!ASSERT_OK(rcl_open(&r, f->lport), "connect"))
		goto out;
	/* not read at first: the call is surely in flight when the handoff starts */
	rcl_call(&r, &c, "/gammad.echo.Stream/Server", "1000", "1000");
	rcl_run(&r, 300, NULL, NULL);
	ASSERT_FALSE(c.closed, "a call in flight");
	ASSERT_OK(engine_handoff(f->e, give_later, NULL), "engine_handoff");
	rcl_run(&r, 300, NULL, NULL);
	c.consume = true;
	nghttp2_session_consume_stream(r.s, c.id, c.bytes);
	rcl_run(&r, 20000, one_closed, &c);
	ASSERT_TRUE(c.closed && !c.err && c.status == 200, "the call in flight completes");
	ASSERT_GE(c.bytes, 1000 * (1000 + 5), "all its messages");
	rcl_run(&r, 3000, NULL, NULL);
	ASSERT_TRUE(r.eof, "then the engine closes the connection");
out:
	rcl_close(&r);
}

void test_engine_h2(void)
{
	static const struct {
		const char *name;
		void (*fn)(struct fix *f);
	} subs[] = {
		{ "weights_per_call", sub_weights },
		{ "grpcroute_match", sub_match },
		{ "streaming", sub_streaming },
		{ "concurrent_streams", sub_concurrent },
		{ "httproute_h2_and_upgrade", sub_http },
		{ "flow_control_rst_goaway", sub_flow_control },
		{ "upstream_lost", sub_upstream_lost },	/* stops gk */
		{ "handoff_goaway", sub_handoff },	/* last: hands over from then on */
	};
	struct fix f;

	if (fix_start(&f))
		goto out;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (test__start_subtest(subs[i].name))
			subs[i].fn(&f);
out:
	fix_stop(&f);
}
