// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel HTTP data path (bpf/khttp.bpf.c) at socket level, on
 * loopback, with the test in the agent's place: it puts the client socket
 * into gammad_khcli_v1 (its state in gammad_khc_v1), the agent's accepted
 * end of it into gammad_khag_v1, and pre-connected upstreams into pools of
 * slots, one pool per backend endpoint (a loopback listener each); the
 * rule tables come from kh_encode() of real routes and the frontend,
 * backend and endpoint entries name those listeners. The test then plays
 * client and backends on the same thread: every byte between them crosses
 * the BPF programs only.
 *
 * Checked: forwards reach the right backend with the head edited as the
 * rule says; responses reach the client whole and in order (Content-Length,
 * chunked across writes, HEAD, 204, 1xx); 404/503 are answered with the
 * engine's bytes; 1,000 requests alternating between two routes on one
 * keep-alive connection are never misrouted; a 64 KiB POST body arrives
 * intact; what the kernel does not serve (non-HTTP bytes, a pipelined
 * request that would switch upstream, an unframed upstream) reaches the
 * engine's socket unchanged and the connection stays the engine's; the
 * upstream's FIN is not passed on; the counters say who served what.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "khttp/khttp.h"
#include "khttp/khttp_pool.h"
#include "khttp/khttp_backlog.h"
#include "khttp/khttp_return.h"
#include "datapath/cgroup.h"
#include "datapath/netns_sock.h"
#include "lib/loopback.h"
#include "lib/netns.h"
#include "lib/translate_fixture.h"
#include "skel/khttp.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define TAB	9
#define GEN	5
#define NR_BE	2
#define PER_POOL 2

static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: path, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /one}}]\n"
	"    backendRefs: [{name: b1, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /two}}]\n"
	"    backendRefs: [{name: b2, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /edit}}]\n"
	"    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
	"        add: [{name: X-Add, value: a}]\n        remove: [X-Remove]\n"
	"    backendRefs: [{name: b1, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /empty}}]\n"
	"    backendRefs: [{name: bempty, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /old}}]\n"
	"    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
	"        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}\n"
	"        statusCode: 301\n"
	"  - matches: [{path: {type: Exact, value: /moved}}]\n"
	"    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
	"        scheme: https\n        hostname: example.com\n        port: 8443\n"
	"  - matches: [{path: {type: PathPrefix, value: /resp}}]\n"
	"    filters:\n    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
	"        set: [{name: X-Set, value: s}]\n        add: [{name: X-Add, value: a}]\n"
	"        remove: [X-Remove]\n"
	"    backendRefs:\n    - name: b1\n      port: 80\n      filters:\n"
	"      - type: ResponseHeaderModifier\n        responseHeaderModifier:\n"
	"          add: [{name: X-Be, value: b}]\n";

static const char not_found[] =
	"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\n"
	"404 Not Found\n";
static const char unavailable[] =
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n"
	"\r\n503 Service Unavailable\n";

#define MAX_BENDS 64

/* A backend's end of an upstream connection: its peer is the upstream's port. */
struct bend {
	int fd;
	uint16_t peer_port;
};

struct env {
	struct khttp_bpf *skel;
	int lc;				/* the engine's listener */
	int lb[NR_BE];			/* backend listeners */
	uint16_t port[NR_BE];
	struct kh_pools *pools;		/* the agent's upstream pools (khttp_pool.h) */
	struct bend bends[MAX_BENDS];
	int nr_bends;
	uint64_t cut;			/* the last client the pools said was cut */
	uint64_t eof;			/* ... whose close-delimited response ended */
	uint64_t slow;			/* ... that lags, and its upstream to relay */
	int slow_fd;
	uint64_t netns;
	char cg[PATH_MAX], cg_orig[PATH_MAX];	/* the clients' cgroup, ours */
	int cg_fd;
	bool msg_attached, skb_attached, ops_attached, srv_attached;
	/*
	 * Same-node server sockets (gammad run --kernel-http --sockmap): the
	 * backends listen in the clients' cgroup (their accepted sockets meet
	 * gammad_kh_sockops at PASSIVE_ESTABLISHED) and the pools pair each
	 * upstream with its backend's socket: the bytes skip TCP.
	 */
	bool samenode;
};

struct client {
	int cli, peer;			/* the application's socket, the agent's end */
	uint64_t cookie;
};

static uint64_t sock_u64(int fd, int opt)
{
	uint64_t v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len))
		return 0;
	return v;
}

/* Read exactly want bytes, waiting up to ms between two reads (TCP retransmits under pressure). */
static ssize_t read_exact_ms(int fd, char *buf, size_t want, int ms)
{
	size_t n = 0;

	while (n < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, ms) != 1)
			break;
		r = recv(fd, buf + n, want - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* Read exactly want bytes, waiting up to 2 s between two reads; what came. */
static ssize_t read_exact(int fd, char *buf, size_t want)
{
	return read_exact_ms(fd, buf, want, 2000);
}

/* Nothing (more) to read on fd within ms. */
static bool quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 0;
}

static bool send_all(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* The bytes fd must receive, exactly, and nothing after them. */
static bool expect_bytes(int fd, const char *want, size_t len, const char *what)
{
	char *got = calloc(1, len + 1);
	ssize_t n;
	bool ok;

	if (!got)
		return false;
	n = read_exact(fd, got, len);
	ok = ASSERT_EQ(n, (ssize_t)len, what) && ASSERT_OK(memcmp(got, want, len), what);
	if (!ok)
		test__printf("  %s: got %zd bytes: %.*s\n  expected: %.*s\n", what, n,
			     (int)(n > 0 ? n : 0), got, (int)len, want);
	free(got);
	return ok && ASSERT_TRUE(quiet(fd, 20), "nothing more");
}

static bool expect_str(int fd, const char *want, const char *what)
{
	return expect_bytes(fd, want, strlen(want), what);
}

static uint64_t khst(const struct env *e, uint32_t reason)
{
	int nr = libbpf_num_possible_cpus();
	uint64_t v[nr > 0 ? nr : 1], sum = 0;

	if (nr <= 0 || bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khst_v1), &reason, v))
		return 0;
	for (int i = 0; i < nr; i++)
		sum += v[i];
	return sum;
}

static bool slot_owner(const struct env *e, uint32_t slot, uint64_t *owner)
{
	struct gammad_kh_slot s;

	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &slot, &s))
		return false;
	*owner = s.owner;
	return true;
}

/*
 * A new client connection the kernel serves. As connect() steering leaves
 * it: the socket's origin (the ClusterIP dialed, steered to the engine) in
 * its storage, created in the cgroup where gammad_kh_sockops is attached,
 * which registers it at ACTIVE_ESTABLISHED. Then what the agent does on
 * accept: the client's cookie taken from gammad_khck_v1, its accepted
 * socket into gammad_khag_v1 under it.
 */
static int client_open(struct env *e, struct client *c)
{
	struct gammad_sock_orig o = { .vip = { 10, 96, 0, 10 }, .be_addr = { 127, 0, 0, 1 },
				      .vip_port = htons(80), .family = AF_INET,
				      .flags = GAMMAD_SKO_ENGINE };
	struct gammad_origdst_key k = { .netns_cookie = e->netns, .family = AF_INET };
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	uint64_t v;
	int fd;

	c->cli = c->peer = -1;
	if (cgroup_join(e->cg))
		return -1;
	c->cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cgroup_join(e->cg_orig) || c->cli < 0)
		return -1;
	fd = c->cli;
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.gammad_sko_v1), &fd, &o, BPF_ANY) ||
	    getsockname(e->lc, (struct sockaddr *)&a, &len) ||
	    connect(c->cli, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	c->peer = accept4(e->lc, NULL, NULL, SOCK_CLOEXEC);
	len = sizeof(a);
	if (c->peer < 0 || getsockname(c->cli, (struct sockaddr *)&a, &len))
		return -1;
	c->cookie = sock_u64(c->cli, SO_COOKIE);
	k.port = a.sin_port;
	/* taken, as the agent's accept does (the kernel then knows it accepted) */
	if (!ASSERT_OK(bpf_map_lookup_and_delete_elem(bpf_map__fd(e->skel->maps.gammad_khck_v1),
						      &k, &v),
		       "sockops registered the client") ||
	    !ASSERT_EQ(v, c->cookie, "its cookie"))
		return -1;
	v = (uint64_t)c->peer;
	return bpf_map_update_elem(bpf_map__fd(e->skel->maps.gammad_khag_v1), &c->cookie, &v,
				   BPF_ANY);
}

static void client_close(struct client *c)
{
	if (c->cli >= 0)
		close(c->cli);
	if (c->peer >= 0)
		close(c->peer);
	c->cli = c->peer = -1;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	return getsockname(fd, (struct sockaddr *)&a, &len) ? 0 : ntohs(a.sin_port);
}

/* Accept what the pools connected to the backends since the last call. */
static void accept_backends(struct env *e)
{
	for (int b = 0; b < NR_BE; b++) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		int fd;

		struct pollfd pf = { .fd = e->lb[b], .events = POLLIN };

		/* the listener blocks: accept only what is queued */
		while (e->nr_bends < MAX_BENDS && poll(&pf, 1, 0) == 1 &&
		       (fd = accept4(e->lb[b], (struct sockaddr *)&a, &len, SOCK_CLOEXEC)) >= 0) {
			e->bends[e->nr_bends++] = (struct bend){ fd, ntohs(a.sin_port) };
			len = sizeof(a);
		}
	}
}

/* The backend's end of upstream slot s now. */
static int slot_be(struct env *e, uint32_t s)
{
	int up = kh_pools_slot_fd(e->pools, s);
	uint16_t port = up >= 0 ? local_port(up) : 0;

	if (!port)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < e->nr_bends; i++)
			if (e->bends[i].peer_port == port)
				return e->bends[i].fd;
		accept_backends(e);
	}
	return -1;
}

/* The slot of pool b the client is bound to now, or -1. */
static int bound_slot(const struct env *e, const struct client *c, int b)
{
	struct gammad_kh_slot sv;

	for (uint32_t s = 0; s < MAX_BENDS; s++)
		if (!bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &s, &sv) &&
		    sv.owner == c->cookie && sv.pool.port == htons(e->port[b]))
			return (int)s;
	return -1;
}

/* The backend end of the upstream of pool b the client is bound to now. */
static int bound_be(struct env *e, const struct client *c, int b)
{
	int s = bound_slot(e, c, b);

	return s < 0 ? -1 : slot_be(e, (uint32_t)s);
}

/* One request to backend b and its response back: the round trip, checked. */
static bool round_trip(struct env *e, struct client *c, int b, const char *req,
		       const char *want_req, const char *resp)
{
	int be;

	if (!ASSERT_TRUE(send_all(c->cli, req, strlen(req)), "client send"))
		return false;
	be = bound_be(e, c, b);
	if (!ASSERT_GE(be, 0, "an upstream of the right endpoint bound"))
		return false;
	if (!expect_str(be, want_req ? want_req : req, "request at the backend"))
		return false;
	if (!ASSERT_TRUE(send_all(be, resp, strlen(resp)), "backend send"))
		return false;
	return expect_str(c->cli, resp, "response at the client");
}

static int env_tables(struct env *e, struct tfx *f, struct kh_image *img)
{
	struct khttp_bpf *s = e->skel;
	struct gammad_fe_key fk = { .port = htons(80), .proto = IPPROTO_TCP, .family = AF_INET };
	struct gammad_fe_val fv = { .table_gen = GEN };
	struct gammad_cons_key ck = { .table_gen = GEN, .ns_id = GAMMAD_NS_ALL };
	struct gammad_kh_class_val cv = { .tab = TAB };
	const struct tr_class *cls;
	struct kh_map_fds fds;

	if (!ASSERT_OK(tfx_setup(f, routes), "routes"))
		return -1;
	cls = tfx_class(f, "app", "a", 80, NULL);
	if (!ASSERT_OK_PTR(cls, "class") || !ASSERT_OK(kh_encode(cls, 80, img), "encode") ||
	    !ASSERT_EQ(img->tab.engine_reason, 0, "the kernel's table"))
		return -1;
	/* rule backends name kernel backends 1 (b1) and 2 (b2), as image_khttp does */
	for (size_t r = 0; r < img->nr_rbs; r++) {
		const char *n = img->rb_src[r] ? img->rb_src[r]->name : "";

		img->rbs[r].be_id = !strcmp(n, "b1") ? 1 : !strcmp(n, "b2") ? 2 : 0;
	}
	fds = (struct kh_map_fds){
		.table = bpf_map__fd(s->maps.gammad_khtab_v1),
		.entry = bpf_map__fd(s->maps.gammad_khent_v1),
		.rule = bpf_map__fd(s->maps.gammad_khrul_v1),
		.rb = bpf_map__fd(s->maps.gammad_khrb_v1),
		.alias = bpf_map__fd(s->maps.gammad_khal_v1),
	};
	if (!ASSERT_OK(kh_image_write(img, TAB, &fds), "write table"))
		return -1;
	fk.addr[0] = 10, fk.addr[1] = 96, fk.addr[3] = 10;
	if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.gammad_fe_v1), &fk, &fv, 0), "fe") ||
	    !ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.gammad_khcls_v1), &ck, &cv, 0),
		       "class"))
		return -1;
	for (int b = 0; b < NR_BE; b++) {
		uint32_t be_id = b + 1;
		struct gammad_be_val bv = { .ep_set = 100 + b, .nr_endpoints = 1 };
		struct gammad_ep_key ek = { .ep_set = 100 + b, .idx = 0 };
		struct gammad_ep_val ev = { .port = htons(e->port[b]), .family = AF_INET };

		ev.addr[0] = 127, ev.addr[3] = 1;
		if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.gammad_be_v2), &be_id, &bv, 0),
			       "backend") ||
		    !ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.gammad_ep_v1), &ek, &ev, 0),
			       "endpoint"))
			return -1;
	}
	return 0;
}

static void on_cut(void *ctx, uint64_t cookie)
{
	((struct env *)ctx)->cut = cookie;
}

static void on_eof(void *ctx, uint64_t cookie)
{
	((struct env *)ctx)->eof = cookie;
}

static void on_slow(void *ctx, uint64_t cookie, uint32_t slot, int fd)
{
	struct env *e = ctx;

	e->slow = cookie;
	e->slow_fd = fd;
}

/*
 * ResponseHeaderModifier (rule: set X-Set, add X-Add, remove X-Remove;
 * backendRef: add X-Be) on responses of a same-node server, edited in its
 * message. Each expected head is what the engine's write_response_head()
 * writes for these heads (none has a hop-by-hop field, each is HTTP/1.1:
 * the engine's status line and no Connection line of its own), field by
 * field: the upstream's fields the edits keep, in order, then X-Set,
 * X-Add, X-Be. Over TCP (sk_skb cannot edit a head exactly) such a
 * request is the engine's, before anything was sent.
 */
struct resp_case {
	const char *req, *resp, *want;
	int split;	/* the backend sends resp in two writes, the first split bytes long */
};

static const struct resp_case resp_cases[] = {
	{ "GET /resp/1 HTTP/1.1\r\nHost: a\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nX-Remove: 1\r\nx-set: old\r\nContent-Length: 2\r\nx-remove: 2\r\n"
	  "Server: t\r\n\r\nok",
	  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: t\r\n"
	  "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\nok", 0 },
	/* the head split over two writes: corked until whole */
	{ "GET /resp/2 HTTP/1.1\r\nHost: a\r\n\r\n",
	  "HTTP/1.1 201 Created\r\nX-Rem" "ove: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nok\r\n0\r\n\r\n",
	  "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
	  "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\n2\r\nok\r\n0\r\n\r\n", 26 },
	/* a 1xx goes as it is (the engine writes interim heads without the edits) */
	{ "GET /resp/3 HTTP/1.1\r\nHost: a\r\n\r\n",
	  "HTTP/1.1 103 Early Hints\r\nX-Remove: 1\r\n\r\n"
	  "HTTP/1.1 200 OK\r\nX-Add: up\r\nContent-Length: 0\r\n\r\n",
	  "HTTP/1.1 103 Early Hints\r\nX-Remove: 1\r\n\r\n"
	  "HTTP/1.1 200 OK\r\nX-Add: up\r\nContent-Length: 0\r\n"
	  "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\n", 0 },
	/* HEAD: no body after the edited head */
	{ "HEAD /resp/4 HTTP/1.1\r\nHost: a\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
	  "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\n", 0 },
};

static uint64_t slot_cookie(const struct env *e, uint32_t s);
static bool wait_rearmed(struct env *e, uint32_t s, uint64_t old_cookie);

/*
 * The bound backend be of client c answers its request (resp_cases[0],
 * sent) with resp, whose head the kernel cannot edit: nothing reaches the
 * client, the slot turns SLOW and EDIT at that response, the pools hand
 * its upstream over with resp on it byte for byte, the count of
 * resp_edit_engine reaches engine_count, and c's next request goes to the
 * engine (c.peer). What the engine then writes is agent_http_kernel_sk's.
 */
static bool resp_to_engine(struct env *e, struct client *c, int be, const char *resp, int n,
			   uint64_t engine_count)
{
	int s = bound_slot(e, c, 0);
	struct gammad_kh_slot sv;

	e->slow = 0;
	e->slow_fd = -1;
	if (!ASSERT_GE(s, 0, "slot") || !ASSERT_TRUE(send_all(be, resp, n), "backend send"))
		return false;
	for (int i = 0; i < 100 && e->slow_fd < 0; i++) {
		kh_pools_run(e->pools);
		if (e->slow_fd < 0)
			usleep(10000);
	}
	if (!ASSERT_EQ(e->slow, c->cookie, "the pools hand its upstream over") ||
	    !ASSERT_GE(e->slow_fd, 0, "upstream fd") ||
	    !ASSERT_EQ(khst(e, GAMMAD_KH_R_RESP_ENGINE), engine_count,
		       "counted: resp_edit_engine") ||
	    !ASSERT_TRUE(quiet(c->cli, 20), "nothing of it reached the client") ||
	    !expect_bytes(e->slow_fd, resp, n, "the response, whole, on the upstream") ||
	    !ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &s, &sv),
		       "slot"))
		return false;
	if (!ASSERT_EQ(sv.flags & (GAMMAD_KH_SLOT_SLOW | GAMMAD_KH_SLOT_EDIT | GAMMAD_KH_SLOT_CUT),
		       GAMMAD_KH_SLOT_SLOW | GAMMAD_KH_SLOT_EDIT, "slot: SLOW and EDIT") ||
	    !ASSERT_EQ(sv.relay_seq, sv.req_seq - 1, "relayed from the last request's response") ||
	    !ASSERT_EQ(sv.req_seq, sv.r.resp_seq, "framed as it was kept"))
		return false;
	return ASSERT_TRUE(send_str(c->cli, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"), "send") &&
	       expect_str(c->peer, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n",
			  "next request at the engine");
}

static void test_resp_edits(struct env *e)
{
	/* pipelined: edited, as it is, edited; all three responses in one write */
	static const char three[] = "GET /resp/a HTTP/1.1\r\nHost: a\r\n\r\n"
				    "GET /one/b HTTP/1.1\r\nHost: a\r\n\r\n"
				    "GET /resp/c HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char resp3[] = "HTTP/1.1 200 OK\r\nX-Remove: a\r\nContent-Length: 1\r\n\r\na"
				    "HTTP/1.1 200 OK\r\nX-Remove: b\r\nContent-Length: 1\r\n\r\nb"
				    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Remove: c\r\n\r\nc";
	static const char want3[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
				    "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\na"
				    "HTTP/1.1 200 OK\r\nX-Remove: b\r\nContent-Length: 1\r\n\r\nb"
				    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
				    "X-Set: s\r\nX-Add: a\r\nX-Be: b\r\n\r\nc";
	uint64_t served = khst(e, GAMMAD_KH_R_SERVED), tcp = khst(e, GAMMAD_KH_R_RESP_TCP);
	uint64_t cutn = khst(e, GAMMAD_KH_R_RESP_CUT), enginen = khst(e, GAMMAD_KH_R_RESP_ENGINE);
	struct client c;
	char big[8192];
	int be, n, s;
	uint64_t up;

	if (!ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	if (!e->samenode) {
		/* the engine's, unchanged, and the connection with it */
		if (ASSERT_TRUE(send_str(c.cli, resp_cases[0].req), "send") &&
		    expect_str(c.peer, resp_cases[0].req, "at the engine"))
			ASSERT_EQ(khst(e, GAMMAD_KH_R_RESP_TCP) - tcp, 1, "counted: resp_edit_tcp");
		ASSERT_EQ(bound_slot(e, &c, 0), -1, "no upstream kept");
		goto out;
	}
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
		const struct resp_case *rc = &resp_cases[i];
		size_t len = strlen(rc->resp), first = rc->split ? (size_t)rc->split : len;

		if (!ASSERT_TRUE(send_str(c.cli, rc->req), "send"))
			goto out;
		be = bound_be(e, &c, 0);
		if (!ASSERT_GE(be, 0, "bound") || !expect_str(be, rc->req, "request at the backend") ||
		    !ASSERT_TRUE(send_all(be, rc->resp, first), "backend send"))
			goto out;
		if (first < len) {
			if (!ASSERT_TRUE(quiet(c.cli, 20), "nothing of a split head yet") ||
			    !ASSERT_TRUE(send_all(be, rc->resp + first, len - first), "the rest"))
				goto out;
		}
		if (!expect_str(c.cli, rc->want, "the edited response"))
			goto out;
	}
	if (!ASSERT_TRUE(send_all(c.cli, three, sizeof(three) - 1), "send") ||
	    !expect_str(be, three, "three requests") ||
	    !ASSERT_TRUE(send_all(be, resp3, sizeof(resp3) - 1), "responses") ||
	    !expect_str(c.cli, want3, "three responses, two edited, in order"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 7, "served in the kernel");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
	/*
	 * Heads the kernel cannot edit (33 fields, over GAMMAD_KH_FIELDS_MAX;
	 * 5000 bytes, over GAMMAD_KH_HEAD_MAX): never delivered unedited, and
	 * no reset either: the kernel stops at the head's start, every byte
	 * of it stays on the upstream, and the pools hand that upstream over
	 * (on_slow) for the engine to relay and edit; the connection is the
	 * engine's from then on.
	 */
	n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 33; i++)
		n += snprintf(big + n, sizeof(big) - n, "X-F%d: %d\r\n", i, i);
	n += snprintf(big + n, sizeof(big) - n, "Content-Length: 2\r\n\r\nok");
	if (!ASSERT_TRUE(send_str(c.cli, resp_cases[0].req), "send") ||
	    !expect_str(be, resp_cases[0].req, "request at the backend") ||
	    !resp_to_engine(e, &c, be, big, n, enginen + 1))
		goto out;
	client_close(&c);
	n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Remove: 1\r\nX-Long: ");
	memset(big + n, 'v', 5000);
	n += 5000;
	n += snprintf(big + n, sizeof(big) - n, "\r\nContent-Length: 2\r\n\r\nok");
	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_str(c.cli, resp_cases[0].req), "send") ||
	    !ASSERT_GE(be = bound_be(e, &c, 0), 0, "bound") ||
	    !expect_str(be, resp_cases[0].req, "request at the backend") ||
	    !resp_to_engine(e, &c, be, big, n, enginen + 2))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_RESP_CUT) - cutn, 0, "no cut");
	/*
	 * A response the kernel cannot frame (a coding other than chunked)
	 * ahead of a head to edit: where that head starts is unknown, so the
	 * client is cut, and nothing of the message goes.
	 */
	client_close(&c);
	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_str(c.cli, "GET /one/u HTTP/1.1\r\nHost: a\r\n\r\n"
				  "GET /resp/u HTTP/1.1\r\nHost: a\r\n\r\n"), "send"))
		goto out;
	be = bound_be(e, &c, 0);
	s = bound_slot(e, &c, 0);
	up = slot_cookie(e, s);
	e->cut = 0;
	if (!ASSERT_GE(be, 0, "bound") ||
	    !expect_str(be, "GET /one/u HTTP/1.1\r\nHost: a\r\n\r\n"
			"GET /resp/u HTTP/1.1\r\nHost: a\r\n\r\n", "both at the backend"))
		goto out;
	send_str(be, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz"
		 "HTTP/1.1 200 OK\r\nX-Remove: 1\r\nContent-Length: 0\r\n\r\n");
	if (ASSERT_TRUE(wait_rearmed(e, s, up), "re-armed after the cut"))
		ASSERT_EQ(e->cut, c.cookie, "its client is named cut");
	ASSERT_EQ(khst(e, GAMMAD_KH_R_RESP_CUT) - cutn, 1, "counted: resp_edit_cut");
	ASSERT_TRUE(quiet(c.cli, 20), "nothing of it reached the client");
out:
	client_close(&c);
}

/* Pre-connected upstreams, PER_POOL per endpoint, kept by the agent's pools. */
static int env_pools(struct env *e)
{
	struct khttp_bpf *s = e->skel;
	struct kh_pool_opts o = {
		.map_up = bpf_map__fd(s->maps.gammad_khup_v1),
		.map_upc = bpf_map__fd(s->maps.gammad_khupc_v1),
		.map_slot = bpf_map__fd(s->maps.gammad_khslot_v1),
		.map_pool = bpf_map__fd(s->maps.gammad_khpool_v1),
		.map_events = bpf_map__fd(s->maps.gammad_khev_v1),
		.map_svs = bpf_map__fd(s->maps.gammad_khsvs_v1),
		.map_svk = e->samenode ? bpf_map__fd(s->maps.gammad_khsvk_v1) : 0,
		.per_pool = PER_POOL, .cut = on_cut, .eof = on_eof, .slow = on_slow, .ctx = e,
	};

	e->pools = kh_pools_new(&o);
	if (!ASSERT_OK_PTR(e->pools, "pools"))
		return -1;
	for (int b = 0; b < NR_BE; b++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(e->port[b]),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		if (!ASSERT_OK(kh_pools_add(e->pools, -1, (struct sockaddr *)&a, sizeof(a)),
			       "pool"))
			return -1;
	}
	accept_backends(e);
	if (!ASSERT_EQ(e->nr_bends, NR_BE * PER_POOL, "upstreams connected"))
		return -1;
	/* paired with their backends' sockets exactly when same-node */
	for (uint32_t sl = 0; sl < NR_BE * PER_POOL; sl++)
		if (!ASSERT_EQ(kh_pools_slot_srv(e->pools, sl) != 0, e->samenode, "paired"))
			return -1;
	return 0;
}

/* The pool of backend b in the map (its key as the kernel builds it). */
static bool pool_of(const struct env *e, int b, struct gammad_kh_pool_key *k,
		    struct gammad_kh_pool *v)
{
	int fd = bpf_map__fd(e->skel->maps.gammad_khpool_v1);
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, k)) {
		if (k->port == htons(e->port[b]) && !bpf_map_lookup_elem(fd, k, v))
			return true;
		prev = k;
	}
	return false;
}

/*
 * A request that finds no pool (made on demand) is the engine's alone:
 * over TCP, counted no_upstream. The engine marks what its socket holds
 * (kh_return_mark, as the agent's engine does before the last bytes of
 * its answer) and the client's next request, sent after it read that
 * answer, is the kernel's again. A client that sends before it read the
 * engine's answer stays the engine's (the kernel's answer would be read
 * first), and so does one whose bytes the engine has not marked.
 */
static void test_miss_return(struct env *e)
{
	static const char req[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char req2[] = "GET /one/2 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	int pool_fd = bpf_map__fd(e->skel->maps.gammad_khpool_v1);
	int ret_fd = bpf_map__fd(e->skel->maps.gammad_khret_v1);
	struct client c = { -1, -1, 0 }, d = { -1, -1, 0 };
	struct gammad_kh_pool_key pk;
	struct gammad_kh_pool pv;
	struct pollfd pf;
	uint64_t served = khst(e, GAMMAD_KH_R_SERVED), miss = khst(e, GAMMAD_KH_R_NO_UPSTREAM);

	if (!ASSERT_TRUE(pool_of(e, 0, &pk, &pv), "the pool of backend 0"))
		return;
	/* no pool yet: the request at the engine's socket, over TCP */
	if (!ASSERT_OK(bpf_map_delete_elem(pool_fd, &pk), "pool gone") ||
	    !ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_all(c.cli, req, strlen(req)), "send") ||
	    !expect_str(c.peer, req, "the missing request at the engine"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_NO_UPSTREAM) - miss, 1, "counted no_upstream");
	/* the agent made the pool; the engine marks, then sends its answer */
	if (!ASSERT_OK(bpf_map_update_elem(pool_fd, &pk, &pv, BPF_ANY), "pool made") ||
	    !ASSERT_OK(kh_return_mark(ret_fd, c.cookie, c.peer, strlen(resp)), "marked") ||
	    !ASSERT_TRUE(send_all(c.peer, resp, strlen(resp)), "engine send") ||
	    !expect_str(c.cli, resp, "the engine's answer"))
		goto out;
	/* back in the kernel: at the backend, nothing more at the engine */
	if (!round_trip(e, &c, 0, req2, NULL, resp))
		goto out;
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing more");
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 1, "served in the kernel");
	/* a client that sends before reading the engine's answer */
	if (!ASSERT_OK(bpf_map_delete_elem(pool_fd, &pk), "pool gone") ||
	    !ASSERT_OK(client_open(e, &d), "client") ||
	    !ASSERT_TRUE(send_all(d.cli, req, strlen(req)), "send") ||
	    !expect_str(d.peer, req, "the missing request at the engine") ||
	    !ASSERT_OK(bpf_map_update_elem(pool_fd, &pk, &pv, BPF_ANY), "pool made") ||
	    !ASSERT_OK(kh_return_mark(ret_fd, d.cookie, d.peer, strlen(resp)), "marked") ||
	    !ASSERT_TRUE(send_all(d.peer, resp, strlen(resp)), "engine send"))
		goto out;
	pf = (struct pollfd){ .fd = d.cli, .events = POLLIN };
	if (!ASSERT_EQ(poll(&pf, 1, 2000), 1, "the answer at the client, not read"))
		goto out;
	if (!ASSERT_TRUE(send_all(d.cli, req2, strlen(req2)), "send") ||
	    !expect_str(d.peer, req2, "still the engine's: the next request at the engine") ||
	    !expect_str(d.cli, resp, "the engine's answer"))
		goto out;
	/* the engine has not marked what it read since: still the engine's */
	if (!ASSERT_TRUE(send_all(d.peer, resp, strlen(resp)), "engine send") ||
	    !expect_str(d.cli, resp, "the engine's second answer") ||
	    !ASSERT_TRUE(send_all(d.cli, req, strlen(req)), "send") ||
	    !expect_str(d.peer, req, "unmarked: at the engine"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 1, "nothing more served in the kernel");
out:
	bpf_map_update_elem(pool_fd, &pk, &pv, BPF_ANY);
	client_close(&c);
	client_close(&d);
}

static void test_forward(struct env *e)
{
	struct client c;
	uint64_t served = khst(e, GAMMAD_KH_R_SERVED);

	if (!ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	if (!round_trip(e, &c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
		goto out;
	/* edited as the rule says, on the same upstream (same endpoint) */
	if (!round_trip(e, &c, 0, "GET /edit/x HTTP/1.1\r\nX-Remove: 1\r\nHost: a\r\n\r\n",
			"GET /edit/x HTTP/1.1\r\nHost: a\r\nX-Add: a\r\n\r\n",
			"HTTP/1.1 204 No Content\r\n\r\n"))
		goto out;
	/* 404 and 503: the engine's bytes, from the kernel */
	if (!ASSERT_TRUE(send_all(c.cli, "GET /none HTTP/1.1\r\nHost: a\r\n\r\n", 31), "send") ||
	    !expect_str(c.cli, not_found, "404"))
		goto out;
	if (!ASSERT_TRUE(send_all(c.cli, "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", 32), "send") ||
	    !expect_str(c.cli, unavailable, "503"))
		goto out;
	/* a 1xx before the final answer, then a switch of endpoint */
	if (!round_trip(e, &c, 0, "GET /one/early HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
			"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok") ||
	    !round_trip(e, &c, 1, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n") ||
	    !round_trip(e, &c, 0, "HEAD /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n") ||
	    !round_trip(e, &c, 1, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 8, "served in the kernel");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
}

/*
 * RequestRedirect answered by the kernel: the engine's bytes (local_reply()
 * of engine_req.c with build_redirect()'s Location; the differential test
 * compares them on generated tables), and a keep-alive connection that
 * goes on in the kernel after them.
 */
static void test_redirect(struct env *e)
{
	static const char moved[] =
		"HTTP/1.1 301 Moved Permanently\r\nLocation: http://a.b/new/x?q=1&r\r\n"
		"Content-Type: text/plain\r\nContent-Length: 22\r\n\r\n301 Moved Permanently\n";
	static const char found[] =
		"HTTP/1.1 302 Found\r\nLocation: https://example.com:8443/moved\r\n"
		"Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n";
	static const char v6[] =
		"HTTP/1.1 301 Moved Permanently\r\nLocation: http://[fd00::1]/new\r\n"
		"Content-Type: text/plain\r\nContent-Length: 22\r\n\r\n301 Moved Permanently\n";
	uint64_t served = khst(e, GAMMAD_KH_R_SERVED), redir = khst(e, GAMMAD_KH_R_REDIRECT);
	char post[256];
	struct client c;
	int n;

	if (!ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	if (!ASSERT_TRUE(send_str(c.cli, "GET /old/x?q=1&r HTTP/1.1\r\nHost: a.b:80\r\n\r\n"),
			 "send") ||
	    !expect_str(c.cli, moved, "301 with the request's host, the prefix replaced"))
		goto out;
	if (!ASSERT_TRUE(send_str(c.cli, "HEAD /moved HTTP/1.1\r\nHost: a\r\n\r\n"), "send") ||
	    !expect_str(c.cli, found, "302 to another scheme, host and port; HEAD: no body"))
		goto out;
	/* a body the redirect drops with the request, in the same message */
	n = snprintf(post, sizeof(post), "POST /old HTTP/1.1\r\nHost: [fd00::1]:8080\r\n"
		     "Content-Length: 5\r\n\r\nhello");
	if (!ASSERT_TRUE(send_all(c.cli, post, n), "send") ||
	    !expect_str(c.cli, v6, "an IPv6 host keeps its brackets"))
		goto out;
	if (!round_trip(e, &c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 4, "served in the kernel");
	ASSERT_EQ(khst(e, GAMMAD_KH_R_REDIRECT) - redir, 0, "none to the engine");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
}

/* 1,000 requests alternating between two routes on one connection: 0 misrouted. */
static void test_alternate(struct env *e)
{
	struct client c;
	char req[96], resp[96];
	int misrouted = 0, i;

	if (!ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	for (i = 0; i < 1000; i++) {
		int b = i & 1;

		snprintf(req, sizeof(req), "GET /%s/%d HTTP/1.1\r\nHost: a\r\n\r\n",
			 b ? "two" : "one", i);
		snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d",
			 (int)snprintf(NULL, 0, "%d", i), i);
		if (!round_trip(e, &c, b, req, NULL, resp)) {
			misrouted++;
			break;
		}
	}
	ASSERT_EQ(misrouted, 0, "misrouted");
	ASSERT_EQ(i, 1000, "requests");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* n keep-alive round trips from cli through to be: microseconds each, or -1. */
static double ping_pong(int cli, int be, int n)
{
	static const char req[] = "GET /one/t HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	char buf[128];
	double t0 = now_us();

	for (int i = 0; i < n; i++) {
		if (!send_all(cli, req, sizeof(req) - 1) ||
		    read_exact(be, buf, sizeof(req) - 1) != sizeof(req) - 1 ||
		    !send_all(be, resp, sizeof(resp) - 1) ||
		    read_exact(cli, buf, sizeof(resp) - 1) != sizeof(resp) - 1)
			return -1;
	}
	return (now_us() - t0) / n;
}

/* run_time_ns and run_cnt of prog so far (counted only while stats are on). */
static void prog_stats(const struct bpf_program *prog, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	*ns = *cnt = 0;
	if (!bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
		*ns = info.run_time_ns;
		*cnt = info.run_cnt;
	}
}

/*
 * What the client and upstream programs cost per run on this path
 * (BPF_ENABLE_STATS, as `sysctl kernel.bpf_stats_enabled=1` but only while
 * the fd is held): printed, for bench/results/khttp/remote-breakdown.md.
 */
static void prog_cost(struct env *e, struct client *c, int be)
{
	const struct bpf_program *progs[] = { e->skel->progs.gammad_kh_client,
					      e->skel->progs.gammad_kh_upstream };
	uint64_t ns0[2], cnt0[2], ns1[2], cnt1[2];
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	if (fd < 0) {
		test__printf("program cost: no BPF_ENABLE_STATS (%d)\n", fd);
		return;
	}
	for (int i = 0; i < 2; i++)
		prog_stats(progs[i], &ns0[i], &cnt0[i]);
	ping_pong(c->cli, be, 5000);
	for (int i = 0; i < 2; i++)
		prog_stats(progs[i], &ns1[i], &cnt1[i]);
	close(fd);
	for (int i = 0; i < 2; i++)
		if (cnt1[i] > cnt0[i])
			test__printf("%s: %.0f ns per run, %.2f runs per round trip\n",
				     bpf_program__name(progs[i]),
				     (double)(ns1[i] - ns0[i]) / (cnt1[i] - cnt0[i]),
				     (cnt1[i] - cnt0[i]) / 5000.0);
}

/*
 * Not a timing target (those are benchmarks): the cost of a kernel-served
 * round trip printed beside plain loopback TCP between the same two ends,
 * so a run shows what the path costs on this machine.
 */
static void test_cost(struct env *e)
{
	struct client c;
	int be, d_be = -1, d_cli = -1;
	double k, d;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !round_trip(e, &c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		goto out;
	be = bound_be(e, &c, 0);
	accept_backends(e);	/* the pools' connections first: loopback_pair() accepts the next */
	d_be = loopback_pair(e->lb[0], &d_cli, false);
	if (!ASSERT_GE(be, 0, "bound") || !ASSERT_GE(d_be, 0, "direct pair"))
		goto out;
	ping_pong(d_cli, d_be, 200);	/* warm up */
	ping_pong(c.cli, be, 200);
	d = ping_pong(d_cli, d_be, 2000);
	k = ping_pong(c.cli, be, 2000);
	if (ASSERT_GT(k, 0, "kernel path") && ASSERT_GT(d, 0, "direct"))
		test__printf("round trip: kernel path %.1f us, direct loopback TCP %.1f us "
			     "(%.2fx)\n", k, d, k / d);
	prog_cost(e, &c, be);
out:
	if (d_cli >= 0)
		close(d_cli);
	if (d_be >= 0)
		close(d_be);
	client_close(&c);
}

/* A 64 KiB POST body in pieces, a chunked response across writes, then a switch. */
static void test_bodies(struct env *e)
{
	static const char chunked[][64] = {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		"lo\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r",
		"\n0\r\nX-Trailer: t\r\n",
		"\r\n",
	};
	size_t blen = 64 * 1024, sent = 0;
	char *body = malloc(blen), *got = malloc(blen + 256), head[128], all[512] = "";
	struct client c = { -1, -1, 0 };
	int be, n;

	if (!ASSERT_OK_PTR(body, "malloc") || !ASSERT_OK_PTR(got, "malloc") ||
	    !ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	for (size_t i = 0; i < blen; i++)
		body[i] = 'a' + (i * 7 + i / 251) % 26;
	n = snprintf(head, sizeof(head), "POST /one/up HTTP/1.1\r\nHost: a\r\n"
		     "Content-Length: %zu\r\n\r\n", blen);
	if (!ASSERT_TRUE(send_all(c.cli, head, n), "head"))
		goto out;
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(be, 0, "bound"))
		goto out;
	/* the body in pieces the program never sees (apply_bytes covers them) */
	while (sent < blen) {
		size_t k = blen - sent < 10000 ? blen - sent : 10000;

		if (!ASSERT_TRUE(send_all(c.cli, body + sent, k), "body"))
			goto out;
		sent += k;
	}
	if (!ASSERT_EQ(read_exact(be, got, n + blen), (ssize_t)(n + blen), "bytes at the backend") ||
	    !ASSERT_OK(memcmp(got, head, n), "head") ||
	    !ASSERT_OK(memcmp(got + n, body, blen), "body intact"))
		goto out;
	for (size_t i = 0; i < sizeof(chunked) / sizeof(chunked[0]); i++) {
		strcat(all, chunked[i]);
		if (!ASSERT_TRUE(send_all(be, chunked[i], strlen(chunked[i])), "chunk"))
			goto out;
		usleep(2000);	/* separate skbs */
	}
	if (!expect_str(c.cli, all, "chunked response"))
		goto out;
	/* the chunked response is complete: the switch is the kernel's */
	if (!round_trip(e, &c, 1, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"))
		goto out;
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
	free(body);
	free(got);
}

/*
 * Pipelined requests to one upstream stay in the kernel and their responses
 * come in order; one that would switch upstream while a response is
 * outstanding goes to the engine, and so does everything after it.
 */
static void test_pipeline(struct env *e)
{
	static const char three[] = "GET /one/1 HTTP/1.1\r\nHost: a\r\n\r\n"
				    "GET /one/2 HTTP/1.1\r\nHost: a\r\n\r\n"
				    "GET /one/3 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char resp3[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"
				    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"
				    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3";
	static const char two[] = "GET /one/4 HTTP/1.1\r\nHost: a\r\n\r\n"
				  "GET /two/5 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char later[] = "GET /two/6 HTTP/1.1\r\nHost: a\r\n\r\n";
	uint64_t pipe = khst(e, GAMMAD_KH_R_PIPELINE);
	struct client c;
	int be;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_all(c.cli, three, sizeof(three) - 1), "send"))
		goto out;
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(be, 0, "bound") || !expect_str(be, three, "three requests") ||
	    !ASSERT_TRUE(send_all(be, resp3, sizeof(resp3) - 1), "responses") ||
	    !expect_str(c.cli, resp3, "three responses in order"))
		goto out;
	if (!ASSERT_TRUE(send_all(c.cli, two, sizeof(two) - 1), "send"))
		goto out;
	if (!expect_bytes(be, two, 32, "the first at the backend") ||
	    !expect_bytes(c.peer, two + 32, sizeof(two) - 1 - 32, "the second at the engine"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_PIPELINE) - pipe, 1, "counted: pipeline");
	/* the kernel's response still comes; the engine has the connection now */
	if (!ASSERT_TRUE(send_all(be, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n4", 39), "resp") ||
	    !expect_bytes(c.cli, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n4", 39, "response 4") ||
	    !ASSERT_TRUE(send_all(c.cli, later, sizeof(later) - 1), "send") ||
	    !expect_str(c.peer, later, "later requests at the engine"))
		goto out;
	/* the engine answers over TCP */
	if (ASSERT_TRUE(send_all(c.peer, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38), "eng"))
		expect_bytes(c.cli, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38, "engine's");
out:
	client_close(&c);
}

/* Not HTTP (a TLS ClientHello): the engine's, over TCP, unchanged. */
static void test_not_http(struct env *e)
{
	static const char hello[] = "\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03"
				    "0123456789abcdef0123456789abcdef\x00\x00\x02\x13\x01\x01\x00";
	struct client c;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_all(c.cli, hello, sizeof(hello) - 1), "send") ||
	    !expect_bytes(c.peer, hello, sizeof(hello) - 1, "at the engine"))
		goto out;
	if (ASSERT_TRUE(send_all(c.peer, "\x16\x03\x03", 3), "reply"))
		expect_bytes(c.cli, "\x16\x03\x03", 3, "the engine's reply");
out:
	client_close(&c);
}

/*
 * An upstream whose response has no framing (a coding other than chunked) stays
 * bound: the next request for another endpoint is the engine's. And the
 * upstream's FIN (a zero-length skb) never reaches the client.
 */
static void test_unframed(struct env *e)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil the end";
	static const char next[] = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
	uint64_t unf = khst(e, GAMMAD_KH_R_UNFRAMED);
	struct client c;
	int be;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_all(c.cli, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30), "send"))
		goto out;
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(be, 0, "bound") ||
	    !expect_bytes(be, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30, "request") ||
	    !ASSERT_TRUE(send_all(be, resp, sizeof(resp) - 1), "response") ||
	    !expect_str(c.cli, resp, "response") ||
	    !ASSERT_TRUE(send_all(c.cli, next, sizeof(next) - 1), "send") ||
	    !expect_str(c.peer, next, "at the engine"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_UNFRAMED) - unf, 1, "counted: unframed");
	/* the backend closes: nothing (no error, no EOF) reaches the client */
	shutdown(be, SHUT_WR);
	ASSERT_TRUE(quiet(c.cli, 50), "the FIN is not passed on");
out:
	client_close(&c);
}

/* The cookie of slot s's upstream socket now (0: none). */
static uint64_t slot_cookie(const struct env *e, uint32_t s)
{
	int fd = kh_pools_slot_fd(e->pools, s);

	return fd < 0 ? 0 : sock_u64(fd, SO_COOKIE);
}

/* Run the pools until slot s is free with another upstream than the one of old_cookie. */
static bool wait_rearmed(struct env *e, uint32_t s, uint64_t old_cookie)
{
	uint64_t owner = 1, ck;

	for (int i = 0; i < 100; i++) {
		kh_pools_run(e->pools);
		ck = slot_cookie(e, s);
		if (slot_owner(e, s, &owner) && owner == GAMMAD_KH_OWNER_FREE && ck &&
		    ck != old_cookie)
			return true;
		usleep(10000);
	}
	test__printf("  slot %u owner %#llx\n", s, (unsigned long long)owner);
	return false;
}

static bool wait_owner(struct env *e, uint32_t slot, uint64_t want)
{
	uint64_t owner = 1;

	for (int i = 0; i < 100; i++) {
		if (slot_owner(e, slot, &owner) && owner == want)
			return true;
		usleep(10000);
	}
	test__printf("  slot %u owner %#llx, want %#llx\n", slot, (unsigned long long)owner,
		     (unsigned long long)want);
	return false;
}

/*
 * A client that closes gives its upstream back at TCP_CLOSE (sockops): free
 * when it was between responses, dead (for the agent) when it left in the
 * middle of one.
 */
static void test_release(struct env *e)
{
	struct client c;
	int s, be;
	uint64_t up;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !round_trip(e, &c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		goto out;
	s = bound_slot(e, &c, 0);
	if (!ASSERT_GE(s, 0, "slot"))
		goto out;
	client_close(&c);
	ASSERT_TRUE(wait_owner(e, s, GAMMAD_KH_OWNER_FREE), "released clean");

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_all(c.cli, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30), "send"))
		goto out;
	s = bound_slot(e, &c, 0);
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(s, 0, "slot") || !ASSERT_GE(be, 0, "backend") ||
	    !expect_bytes(be, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30, "request") ||
	    !ASSERT_TRUE(send_all(be, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 44),
			 "half a response") ||
	    !expect_bytes(c.cli, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 44, "half"))
		goto out;
	up = slot_cookie(e, s);
	client_close(&c);
	/* dead for the pools (ring buffer), which close it and arm a new upstream */
	ASSERT_TRUE(wait_rearmed(e, s, up), "dead mid-response, re-armed");
out:
	client_close(&c);
}

/*
 * The backend closes an upstream: between responses its client detaches
 * quietly (the next request claims another upstream), in the middle of a
 * response the pools name the client as cut; both slots are re-armed.
 */
static void test_upstream_fin(struct env *e)
{
	struct client c;
	int s, be;
	uint64_t up;

	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !round_trip(e, &c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		goto out;
	s = bound_slot(e, &c, 0);
	be = bound_be(e, &c, 0);
	up = slot_cookie(e, s);
	e->cut = 0;
	shutdown(be, SHUT_RDWR);
	if (!ASSERT_TRUE(wait_rearmed(e, s, up), "re-armed after the backend's FIN") ||
	    !ASSERT_EQ(e->cut, 0, "a quiet detach"))
		goto out;
	ASSERT_TRUE(quiet(c.cli, 20), "nothing reached the client");
	if (!round_trip(e, &c, 0, "GET /one/again HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		goto out;
	/* now mid-response */
	if (!ASSERT_TRUE(send_all(c.cli, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30), "send"))
		goto out;
	s = bound_slot(e, &c, 0);
	be = bound_be(e, &c, 0);
	up = slot_cookie(e, s);
	if (!ASSERT_GE(be, 0, "backend") ||
	    !expect_bytes(be, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", 30, "request") ||
	    !ASSERT_TRUE(send_all(be, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", 40), "half"))
		goto out;
	shutdown(be, SHUT_RDWR);
	if (ASSERT_TRUE(wait_rearmed(e, s, up), "re-armed after dying mid-response"))
		ASSERT_EQ(e->cut, c.cookie, "its client is named cut");
	/* the FIN overtook nothing: what the backend sent before it is at the client */
	expect_bytes(c.cli, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", 40,
		     "what came before the FIN");
out:
	client_close(&c);
}

/* The in-flight cap of this test (kh_cap): small, so a reader that stops crosses it fast. */
#define CAP (256 * 1024)
/* An sk_msg's most: MAX_SKB_FRAGS page fragments of up to 32 KiB (sockops.bpf.c's bound). */
#define KH_MSG_MAX (17 * 32768)

static bool set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static uint64_t slot_bytes_down(const struct env *e, uint32_t slot)
{
	struct gammad_kh_slot s;

	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &slot, &s))
		return 0;
	return s.bytes_down;
}

static char pattern(size_t i)
{
	return 'a' + (i * 7 + i / 251) % 26;
}

/*
 * A slow client's response as the engine relays it (the tests stand in
 * for the engine): the client reads, the backend writes what it has left,
 * and once the upstream is handed over (up >= 0) its bytes are copied to
 * the client's peer, the engine's end. Non-blocking sockets.
 */
struct relay {
	int cli, be, up, peer;
	const char *resp;		/* what the backend sends: total bytes */
	char *in;			/* what the client read: got bytes */
	size_t total, sent, got, relayed, len, off;
	char buf[65536];		/* read from up: len bytes, off of them written */
};

/* One step of each; true when a byte moved, else after waiting up to 10 ms. */
static bool relay_step(struct relay *r)
{
	struct pollfd p[3] = { { .fd = r->cli, .events = POLLIN },
			       { .fd = r->up, .events = POLLIN },
			       { .fd = r->be, .events = POLLOUT } };
	bool moved = false;
	ssize_t n;

	n = recv(r->cli, r->in + r->got, r->total - r->got, 0);
	if (n > 0) {
		r->got += (size_t)n;
		moved = true;
	}
	if (r->sent < r->total) {
		n = send(r->be, r->resp + r->sent, r->total - r->sent, MSG_NOSIGNAL);
		if (n > 0) {
			r->sent += (size_t)n;
			moved = true;
		}
	}
	if (r->up >= 0 && r->off == r->len) {
		n = recv(r->up, r->buf, sizeof(r->buf), 0);
		if (n > 0) {
			r->len = (size_t)n;
			r->off = 0;
		}
	}
	if (r->off < r->len) {
		n = send(r->peer, r->buf + r->off, r->len - r->off, MSG_NOSIGNAL);
		if (n > 0) {
			r->off += (size_t)n;
			r->relayed += (size_t)n;
			moved = true;
		}
	}
	if (!moved)
		poll(p, r->sent < r->total ? 3 : 2, 10);
	return moved;
}

/*
 * A client that stops reading a large response: the kernel stops feeding
 * it at the cap (the bytes redirected to it stay under cap + one skb),
 * the rest stays on the upstream where TCP's window holds the backend (it
 * cannot write the whole response), the pools hand the upstream over
 * (slow callback) and the connection is the engine's. When the client
 * reads again it gets every byte, in order: the kernel's part from its
 * ingress queue, then the rest the test relays as the engine does (from
 * the upstream socket to the client over TCP, once the backlog iterator,
 * khttp_backlog.h, says the client's ingress_skb is empty; it says not
 * empty while the client has not read).
 */
static void test_slow_reader(struct env *e)
{
	static const char req[] = "GET /one/big HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t blen = 32u << 20, total, sent = 0, got = 0, relayed = 0;
	uint64_t slow = khst(e, GAMMAD_KH_R_SLOW_READER), down;
	char head[96], *resp = NULL, *in = NULL;
	struct relay *r = malloc(sizeof(*r));
	struct client c = { -1, -1, 0 };
	int be, s, idle, hn, bad = -1, nsfd = -1;
	struct kh_backlog *bl = NULL;
	size_t got_at_drain = 0;

	e->slow = 0;
	e->slow_fd = -1;
	nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!ASSERT_OK_PTR(r, "malloc") || !ASSERT_GE(nsfd, 0, "netns") ||
	    !ASSERT_OK(kh_backlog_open(&bl), "backlog iterator"))
		goto out;
	hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", blen);
	total = hn + blen;
	resp = malloc(total);
	in = malloc(total);
	if (!ASSERT_OK_PTR(resp, "malloc") || !ASSERT_OK_PTR(in, "malloc") ||
	    !ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_str(c.cli, req), "send"))
		goto out;
	memcpy(resp, head, hn);
	for (size_t i = 0; i < blen; i++)
		resp[hn + i] = pattern(i);
	s = bound_slot(e, &c, 0);
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(s, 0, "slot") || !ASSERT_GE(be, 0, "backend") ||
	    !expect_str(be, req, "request") || !ASSERT_TRUE(set_nonblock(be), "nonblock") ||
	    !ASSERT_TRUE(set_nonblock(c.cli), "nonblock") ||
	    !ASSERT_TRUE(set_nonblock(c.peer), "nonblock"))
		goto out;
	/* the backend writes until TCP stops it, the client reads nothing */
	for (idle = 0; idle < 5 && sent < total;) {
		ssize_t n = send(be, resp + sent, total - sent, MSG_NOSIGNAL);
		struct pollfd p = { .fd = be, .events = POLLOUT };

		if (n > 0) {
			sent += (size_t)n;
			idle = 0;
			continue;
		}
		if (!ASSERT_TRUE(n < 0 && errno == EAGAIN, "backend send"))
			goto out;
		if (poll(&p, 1, 100) == 0)
			idle++;
	}
	down = slot_bytes_down(e, (uint32_t)s);
	test__printf("  the backend wrote %zu of %zu bytes; the kernel redirected %llu to the "
		     "client (cap %u)\n", sent, total, (unsigned long long)down, CAP);
	if (!ASSERT_LT(sent, total, "TCP held the backend") ||
	    !ASSERT_EQ(khst(e, GAMMAD_KH_R_SLOW_READER) - slow, 1, "counted: slow reader") ||
	    !ASSERT_LE(down, CAP + (e->samenode ? KH_MSG_MAX : 65536),
		       "queued at the client: the cap and one skb or message"))
		goto out;
	for (int i = 0; i < 100 && e->slow_fd < 0; i++) {
		kh_pools_run(e->pools);
		if (e->slow_fd < 0)
			usleep(10000);
	}
	if (!ASSERT_EQ(e->slow, c.cookie, "the pools hand its upstream over") ||
	    !ASSERT_GE(e->slow_fd, 0, "upstream fd") ||
	    !ASSERT_TRUE(set_nonblock(e->slow_fd), "nonblock"))
		goto out;
	/*
	 * Over TCP the upstream's verdict queued them on the client's
	 * ingress_skb; a same-node server's sk_msg redirect puts them straight
	 * into its ingress_msg (bpf_tcp_ingress), which the client reads first.
	 */
	if (!ASSERT_EQ(kh_backlog_pending(bl, nsfd, c.cookie), e->samenode ? 0 : 1,
		       "the kernel's bytes wait in the client's ingress_skb (TCP only)"))
		goto out;
	/* the reader resumes; the test relays as the engine, the backend writes the rest */
	*r = (struct relay){ .cli = c.cli, .be = be, .up = -1, .peer = c.peer, .resp = resp,
			     .in = in, .total = total, .sent = sent };
	for (idle = 0; r->got < total && idle < 200;) {
		/* after SLOW nothing is added to the client's ingress_skb: empty is final */
		if (r->up < 0 && kh_backlog_pending(bl, nsfd, c.cookie) == 0) {
			r->up = e->slow_fd;
			got_at_drain = r->got;
		}
		idle = relay_step(r) ? 0 : idle + 1;
	}
	got = r->got;
	relayed = r->relayed;
	for (size_t i = 0; i < got && i < total; i++)
		if (in[i] != resp[i]) {
			bad = (int)(i < INT32_MAX ? i : INT32_MAX);
			break;
		}
	test__printf("  then %zu bytes at the client, %zu of them relayed (the backlog drained "
		     "after the client read %zu)\n", got, relayed, got_at_drain);
	if (!ASSERT_EQ(got, total, "every byte at the client") ||
	    !ASSERT_EQ(bad, -1, "in order, none lost") ||
	    !ASSERT_EQ(got - relayed, (size_t)down, "the kernel's part, then the relayed rest"))
		goto out;
	/* the connection is the engine's now */
	if (ASSERT_TRUE(send_str(c.cli, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"), "send"))
		expect_str(c.peer, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", "next request at the engine");
out:
	client_close(&c);
	kh_backlog_free(bl);
	if (nsfd >= 0)
		close(nsfd);
	free(r);
	free(resp);
	free(in);
}

/*
 * The other direction: a backend that stops reading a large request body.
 * The body goes to the upstream socket's egress, so TCP bounds it: the
 * client's blocking send waits (a child sends, the test watches) with no
 * more queued than the upstream's send queue and the backend's receive
 * queue hold; when the backend reads again every byte arrives, in order.
 */
static void test_slow_backend(struct env *e)
{
	size_t blen = 32u << 20, got = 0;
	char head[128], *body = malloc(blen), *in = malloc(blen);
	struct client c = { -1, -1, 0 };
	int be, up, s, hn, outq = 0, inq = 0, st = -1;
	pid_t pid = -1;

	if (!ASSERT_OK_PTR(body, "malloc") || !ASSERT_OK_PTR(in, "malloc") ||
	    !ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	for (size_t i = 0; i < blen; i++)
		body[i] = pattern(i);
	hn = snprintf(head, sizeof(head), "POST /one/up HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: %zu\r\n\r\n", blen);
	if (!ASSERT_TRUE(send_all(c.cli, head, hn), "head"))
		goto out;
	s = bound_slot(e, &c, 0);
	be = bound_be(e, &c, 0);
	up = s >= 0 ? kh_pools_slot_fd(e->pools, (uint32_t)s) : -1;
	if (!ASSERT_GE(be, 0, "backend") || !ASSERT_GE(up, 0, "upstream") ||
	    !ASSERT_EQ(read_exact(be, in, hn), hn, "head at the backend"))
		goto out;
	pid = fork();
	if (!ASSERT_GE(pid, 0, "fork"))
		goto out;
	if (!pid) {
		/* the client's sender: nothing of the test's but its socket */
		int fd = dup2(c.cli, 3);

		close_range(4, ~0U, 0);
		_exit(fd == 3 && send_all(3, body, blen) ? 0 : 1);
	}
	usleep(300000);
	ioctl(up, SIOCOUTQ, &outq);
	ioctl(be, SIOCINQ, &inq);
	test__printf("  the backend stopped: %d bytes in the upstream's send queue, %d in the "
		     "backend's receive queue, of %zu\n", outq, inq, blen);
	if (!ASSERT_EQ(waitpid(pid, &st, WNOHANG), 0, "the client's send waits") ||
	    !ASSERT_LT((size_t)outq + inq, blen / 2, "queued: what TCP's buffers hold"))
		goto out;
	while (got < blen) {
		ssize_t n = read_exact(be, in + got, blen - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (ASSERT_EQ(got, blen, "every byte at the backend"))
		ASSERT_OK(memcmp(in, body, blen), "in order");
	ASSERT_EQ(waitpid(pid, &st, 0), pid, "sender");
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st), "the send completed");
	pid = -1;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	client_close(&c);
	free(body);
	free(in);
}

/*
 * A client that sends requests and never reads the kernel's answers: they
 * queue at its own ingress up to the cap, then the engine has the
 * connection. Every answer the kernel wrote is read afterwards, whole,
 * and every later request reached the engine, in order.
 */
static void test_slow_reader_local(struct env *e)
{
	static const char req[] = "GET /none HTTP/1.1\r\nHost: a\r\n\r\n";
	const size_t rl = sizeof(req) - 1, al = sizeof(not_found) - 1, nr = 6000;
	uint64_t slow = khst(e, GAMMAD_KH_R_SLOW_READER);
	char *all = malloc(nr * rl), *ans = malloc(nr * al), *eng = malloc(nr * rl);
	struct client c = { -1, -1, 0 };
	size_t got = 0, k, bad = 0;
	ssize_t n;

	if (!ASSERT_OK_PTR(all, "malloc") || !ASSERT_OK_PTR(ans, "malloc") ||
	    !ASSERT_OK_PTR(eng, "malloc") || !ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	for (size_t i = 0; i < nr; i++)
		memcpy(all + i * rl, req, rl);
	/* in pieces of 100 requests: each message is decided request by request */
	for (size_t i = 0; i < nr; i += 100)
		if (!ASSERT_TRUE(send_all(c.cli, all + i * rl, 100 * rl), "send"))
			goto out;
	if (!ASSERT_EQ(khst(e, GAMMAD_KH_R_SLOW_READER) - slow, 1, "counted: slow reader") ||
	    !ASSERT_TRUE(set_nonblock(c.cli), "nonblock"))
		goto out;
	while ((n = recv(c.cli, ans + got, nr * al - got, 0)) > 0)
		got += (size_t)n;
	k = got / al;
	for (size_t i = 0; i < k; i++)
		bad += memcmp(ans + i * al, not_found, al) != 0;
	test__printf("  %zu answers queued at the client (cap %u), %zu requests to the engine\n",
		     k, CAP, nr - k);
	if (!ASSERT_EQ(got % al, 0, "whole answers") || !ASSERT_EQ(bad, 0, "each the 404") ||
	    !ASSERT_LE(got, (size_t)CAP + al, "queued: the cap and one answer") ||
	    !ASSERT_GT(k, 0, "answered in the kernel first"))
		goto out;
	if (ASSERT_EQ(read_exact(c.peer, eng, (nr - k) * rl), (ssize_t)((nr - k) * rl),
		      "the rest at the engine") &&
	    ASSERT_OK(memcmp(eng, all, (nr - k) * rl), "unchanged, in order"))
		ASSERT_TRUE(quiet(c.peer, 20), "nothing more");
out:
	client_close(&c);
	free(all);
	free(ans);
	free(eng);
}

/*
 * A response without framing that ends with the upstream's close
 * (close-delimited): delivered whole, then the pools name the client
 * (eof) and the agent's side of it shuts down: the client reads the body
 * and then EOF, as from the engine. A request sent behind it is the
 * engine's (counted: close-delimited). fin_in_data: the backend's last
 * bytes and its FIN in one segment (corked, then shut down), as a server
 * that writes its answer and closes at once sends them.
 */
static void close_delimited(struct env *e, bool fin_in_data)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the close";
	uint64_t cd = khst(e, GAMMAD_KH_R_CLOSE_DELIMITED);
	struct client c = { -1, -1, 0 };
	char buf[8];
	int be, one = 1;

	e->eof = 0;
	if (!ASSERT_OK(client_open(e, &c), "client") ||
	    !ASSERT_TRUE(send_str(c.cli, "GET /one/cd HTTP/1.1\r\nHost: a\r\n\r\n"), "send"))
		goto out;
	be = bound_be(e, &c, 0);
	if (!ASSERT_GE(be, 0, "backend") ||
	    !expect_str(be, "GET /one/cd HTTP/1.1\r\nHost: a\r\n\r\n", "request"))
		goto out;
	if (fin_in_data) {
		if (!ASSERT_OK(setsockopt(be, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)), "cork") ||
		    !ASSERT_TRUE(send_str(be, resp), "response") ||
		    !ASSERT_OK(shutdown(be, SHUT_WR), "its FIN on the last segment") ||
		    !expect_str(c.cli, resp, "the body as it comes"))
			goto out;
	} else {
		if (!ASSERT_TRUE(send_str(be, resp), "response") ||
		    !expect_str(c.cli, resp, "the body as it comes"))
			goto out;
		if (!ASSERT_TRUE(send_str(c.cli, "GET /one/2 HTTP/1.1\r\nHost: a\r\n\r\n"), "send") ||
		    !expect_str(c.peer, "GET /one/2 HTTP/1.1\r\nHost: a\r\n\r\n",
				"behind it: the engine"))
			goto out;
		ASSERT_EQ(khst(e, GAMMAD_KH_R_CLOSE_DELIMITED) - cd, 1, "counted: close-delimited");
		shutdown(be, SHUT_RDWR);
	}
	for (int i = 0; i < 100 && !e->eof; i++) {
		kh_pools_run(e->pools);
		if (!e->eof)
			usleep(10000);
	}
	if (!ASSERT_EQ(e->eof, c.cookie, "the pools name the client"))
		goto out;
	/* the agent ends the client's side, as the engine closes after such a response */
	shutdown(c.peer, SHUT_WR);
	ASSERT_EQ(read_exact(c.cli, buf, sizeof(buf)), 0, "then EOF");
out:
	client_close(&c);
}

static void test_close_delimited(struct env *e)
{
	close_delimited(e, false);
	close_delimited(e, true);
}

/* The start-up probe: this kernel can run the path; releases are read right. */
struct claims {
	uint16_t port;			/* the pool's, network order */
	int n;				/* GAMMAD_KH_EV_CLAIMED events of it */
};

static int on_claim_event(void *ctx, void *data, size_t len)
{
	struct claims *cl = ctx;
	const struct gammad_kh_event *ev = data;

	if (len >= sizeof(*ev) && ev->kind == GAMMAD_KH_EV_CLAIMED && ev->pool.port == cl->port)
		cl->n++;
	return 0;
}

/* Pool b's slots now (nr) and how many of them are free, or -1. */
static int pool_now(const struct env *e, int b, uint32_t *nr)
{
	struct gammad_kh_pool_key k;
	struct gammad_kh_pool pv;
	struct gammad_kh_slot sv;
	uint32_t lo = htonl(INADDR_LOOPBACK);
	int n = 0;

	memset(&k, 0, sizeof(k));
	k.netns_cookie = e->netns;
	k.family = AF_INET;
	k.port = htons(e->port[b]);
	memcpy(k.addr, &lo, 4);
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khpool_v1), &k, &pv))
		return -1;
	*nr = pv.nr;
	for (uint32_t i = 0; i < pv.nr && i < GAMMAD_KH_POOL_MAX; i++)
		if (!bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &pv.slots[i],
					 &sv) && sv.owner == GAMMAD_KH_OWNER_FREE)
			n++;
	return n;
}

/*
 * A pool's upstream sockets are made inside its netns with one thread hop
 * (netns_sockets), two with same-node pairing (the source address, asked
 * once per batch): a hop per socket (9 for a pool of 8, 17 paired) made a
 * pool slow on a busy node, where each new thread waits for a CPU
 * (agent_http_kernel's first pool after an idle-out, now and then).
 */
static void test_one_hop(struct env *e)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), lb;
	uint16_t port = 0;
	unsigned long hops;
	size_t ups0;

	lb = loopback_listener(&port);
	if (!ASSERT_GE(lb, 0, "listener") || !ASSERT_GE(ns, 0, "our netns"))
		goto out;
	a.sin_port = htons(port);
	ups0 = kh_pools_upstreams(e->pools);
	hops = netns_hops();
	if (!ASSERT_OK(kh_pools_add(e->pools, ns, (struct sockaddr *)&a, sizeof(a)), "pool"))
		goto out;
	hops = netns_hops() - hops;
	test__printf("a pool of %d upstreams made with %lu thread hops into its netns\n",
		     PER_POOL, hops);
	ASSERT_EQ(kh_pools_upstreams(e->pools) - ups0, PER_POOL, "its upstreams connected");
	ASSERT_LE(hops, e->samenode ? 2 : 1, "one hop (two when paired)");
	ASSERT_OK(kh_pools_del(e->pools, e->netns, (struct sockaddr *)&a, sizeof(a)), "pool gone");
	ASSERT_EQ(kh_pools_upstreams(e->pools), ups0, "its upstreams closed");
out:
	if (lb >= 0)
		close(lb);
	if (ns >= 0)
		close(ns);
}

/*
 * A claim tells the agent (ring buffer) only when it leaves fewer than
 * GAMMAD_KH_POOL_LOW free upstreams in its pool, not on every new
 * connection. The pool grows past the mark first (the pools refill to
 * PER_POOL free on each event while clients hold upstreams); then, with
 * the ring buffer read here instead of by the pools, each claim must send
 * an event exactly when the free count it leaves is under the mark.
 */
#define CLAIM_CLIENTS (GAMMAD_KH_POOL_LOW + 3)
static void test_claim_events(struct env *e)
{
	struct client c[CLAIM_CLIENTS];
	struct claims cl = { .port = htons(e->port[0]) };
	struct ring_buffer *rb;
	int held = 0, quiet_claims = 0, told = 0, nfree;
	uint32_t nr = 0;

	for (int i = 0; i < CLAIM_CLIENTS; i++)
		c[i].cli = c[i].peer = -1;
	rb = ring_buffer__new(bpf_map__fd(e->skel->maps.gammad_khev_v1), on_claim_event, &cl,
			      NULL);
	if (!ASSERT_OK_PTR(rb, "a second reader of the ring buffer"))
		return;
	/* grow: hold upstreams, the pools refilling after each claim */
	while (held < CLAIM_CLIENTS && pool_now(e, 0, &nr) >= 0 && nr < GAMMAD_KH_POOL_LOW + 2) {
		if (!ASSERT_OK(client_open(e, &c[held]), "client") ||
		    !round_trip(e, &c[held], 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
				"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			goto out;
		held++;
		kh_pools_run(e->pools);
		accept_backends(e);
	}
	for (int i = 0; i < held; i++)
		client_close(&c[i]);
	/* given back at their TCP_CLOSE (sockops), after the FIN exchange */
	for (int i = 0; i < 100 && pool_now(e, 0, &nr) < GAMMAD_KH_POOL_LOW + 1; i++)
		usleep(10000);
	kh_pools_run(e->pools);
	accept_backends(e);
	nfree = pool_now(e, 0, &nr);
	if (!ASSERT_GE(nfree, GAMMAD_KH_POOL_LOW + 1, "free upstreams above the mark"))
		goto out;
	/* claim one at a time down to one free; the pools do not run meanwhile */
	for (held = 0; held < CLAIM_CLIENTS && (nfree = pool_now(e, 0, &nr)) > 1; held++) {
		ring_buffer__consume(rb);
		cl.n = 0;
		if (!ASSERT_OK(client_open(e, &c[held]), "client") ||
		    !round_trip(e, &c[held], 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
				"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			goto out;
		ring_buffer__consume(rb);
		if (nfree - 1 < GAMMAD_KH_POOL_LOW) {
			if (!ASSERT_EQ(cl.n, 1, "a claim under the mark tells the agent"))
				goto out;
			told++;
		} else {
			if (!ASSERT_EQ(cl.n, 0, "a claim above the mark is quiet"))
				goto out;
			quiet_claims++;
		}
	}
	ASSERT_GE(quiet_claims, 1, "quiet claims seen");
	ASSERT_GE(told, 1, "claims under the mark seen");
out:
	for (int i = 0; i < CLAIM_CLIENTS; i++)
		client_close(&c[i]);
	ring_buffer__free(rb);
	/* what the pools missed: refilled as the agent would on the next event */
	kh_pools_run(e->pools);
	accept_backends(e);
}

static void test_probe(void)
{
	static const struct {
		const char *release;
		bool ok;
	} cases[] = {
		{ "6.18.0-1-amd64", true }, { "6.19.2", true }, { "7.0.0", true },
		{ "6.17.9", false }, { "6.1.0-18-amd64", false }, { "5.10.0", false },
		{ "", false }, { "six", false },
	};
	char why[256] = "";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ASSERT_EQ(kh_kernel_release_ok(cases[i].release), cases[i].ok, cases[i].release);
	if (!ASSERT_OK(kh_path_probe(why, sizeof(why)), "probe"))
		test__printf("  %s\n", why);
}

static int env_cgroup(struct env *e, int ops_prog)
{
	char cg2[PATH_MAX], line[PATH_MAX] = "";
	FILE *f;

	if (!ASSERT_OK(cgroup2_mount_path(cg2, sizeof(cg2)), "cgroup2"))
		return -1;
	f = fopen("/proc/self/cgroup", "r");
	if (!ASSERT_OK_PTR(f, "own cgroup"))
		return -1;
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		;
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	if (!ASSERT_OK(strncmp(line, "0::", 3), "cgroup v2 path"))
		return -1;
	if (snprintf(e->cg_orig, sizeof(e->cg_orig), "%s%s", cg2, line + 3) >=
		    (int)sizeof(e->cg_orig) ||
	    snprintf(e->cg, sizeof(e->cg), "%s/gammad-khpath-%d", cg2, (int)getpid()) >=
		    (int)sizeof(e->cg))
		return -1;
	if (mkdir(e->cg, 0755) && errno != EEXIST)
		return -1;
	e->cg_fd = open(e->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!ASSERT_GE(e->cg_fd, 0, "open cgroup"))
		return -1;
	if (!ASSERT_OK(bpf_prog_attach(ops_prog, e->cg_fd, BPF_CGROUP_SOCK_OPS, BPF_F_ALLOW_MULTI),
		       "attach sockops"))
		return -1;
	e->ops_attached = true;
	return 0;
}

/* Bytes the socket sent and received over TCP (TCP_INFO), -1 on error. */
static long long tcp_bytes(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return (long long)(ti.tcpi_bytes_sent + ti.tcpi_bytes_received);
}

/*
 * A same-node client's first request, served by backend 1: its slot,
 * backend and upstream found, the slot paired with the backend's socket.
 */
static bool samenode_first(struct env *e, struct client *c, int *s, int *be, int *up)
{
	if (!round_trip(e, c, 0, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		return false;
	*s = bound_slot(e, c, 0);
	*be = bound_be(e, c, 0);
	*up = *s >= 0 ? kh_pools_slot_fd(e->pools, (uint32_t)*s) : -1;
	return ASSERT_GE(*up, 0, "upstream") && ASSERT_GE(*be, 0, "backend") &&
	       ASSERT_NEQ(kh_pools_slot_srv(e->pools, (uint32_t)*s), 0, "paired");
}

/*
 * Same-node server sockets only: a request and its response cross no TCP
 * (the pool's upstream, the connection's anchor, carries not one byte); a
 * 1 MiB response read as it comes and a 200 KiB POST body arrive intact;
 * a body over the cap goes over the upstream's TCP (the server's ingress
 * is bounded) and so does every later request of that upstream, in order.
 */
static void test_samenode(struct env *e)
{
	size_t rlen = 1u << 20, blen = 200 * 1024, big = 2 * CAP, got = 0, sent = 0;
	char *resp = malloc(rlen), *in = malloc(rlen + big), *body = malloc(big), head[160];
	struct client c = { -1, -1, 0 };
	int s, be, up, hn, rn;

	if (!ASSERT_OK_PTR(resp, "malloc") || !ASSERT_OK_PTR(in, "malloc") ||
	    !ASSERT_OK_PTR(body, "malloc") || !ASSERT_OK(client_open(e, &c), "client") ||
	    !samenode_first(e, &c, &s, &be, &up) ||
	    !ASSERT_EQ(tcp_bytes(up), 0, "no byte over the upstream's TCP"))
		goto out;
	/* a large response, read as it comes */
	rn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
		      rlen - 64);
	memcpy(resp, head, rn);
	for (size_t i = rn; i < rlen; i++)
		resp[i] = pattern(i);
	rlen = rn + (rlen - 64);
	if (!ASSERT_TRUE(send_str(c.cli, "GET /one/big HTTP/1.1\r\nHost: a\r\n\r\n"), "send") ||
	    !expect_str(be, "GET /one/big HTTP/1.1\r\nHost: a\r\n\r\n", "request"))
		goto out;
	while (sent < rlen) {
		size_t k = rlen - sent < 32768 ? rlen - sent : 32768;
		ssize_t n;

		if (!ASSERT_TRUE(send_all(be, resp + sent, k), "response piece"))
			goto out;
		sent += k;
		n = read_exact(c.cli, in + got, sent - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (!ASSERT_EQ(got, rlen, "the whole response") ||
	    !ASSERT_OK(memcmp(in, resp, rlen), "intact") ||
	    !ASSERT_TRUE(quiet(c.cli, 20), "nothing more"))
		goto out;
	/* a POST body under the cap: into the server's ingress */
	for (size_t i = 0; i < big; i++)
		body[i] = pattern(i * 3);
	hn = snprintf(head, sizeof(head), "POST /one/up HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: %zu\r\n\r\n", blen);
	if (!ASSERT_TRUE(send_all(c.cli, head, hn), "head") ||
	    !ASSERT_TRUE(send_all(c.cli, body, blen), "body") ||
	    !ASSERT_EQ(read_exact(be, in, hn + blen), (ssize_t)(hn + blen), "at the backend") ||
	    !ASSERT_OK(memcmp(in, head, hn), "head") || !ASSERT_OK(memcmp(in + hn, body, blen), "body") ||
	    !ASSERT_TRUE(send_str(be, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), "resp") ||
	    !expect_str(c.cli, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "201") ||
	    !ASSERT_EQ(tcp_bytes(up), 0, "still no byte over TCP"))
		goto out;
	/* a body over the cap: TCP from here on, for this upstream */
	hn = snprintf(head, sizeof(head), "POST /one/up HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: %zu\r\n\r\n", big);
	if (!ASSERT_TRUE(send_all(c.cli, head, hn), "head") ||
	    !ASSERT_TRUE(send_all(c.cli, body, big), "body") ||
	    !ASSERT_EQ(read_exact(be, in, hn + big), (ssize_t)(hn + big), "at the backend") ||
	    !ASSERT_OK(memcmp(in, head, hn), "head") || !ASSERT_OK(memcmp(in + hn, body, big), "body") ||
	    !ASSERT_GT(tcp_bytes(up), (long long)big, "over the upstream's TCP"))
		goto out;
	if (!ASSERT_TRUE(send_str(be, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), "resp") ||
	    !expect_str(c.cli, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "201"))
		goto out;
	round_trip(e, &c, 0, "GET /one/after HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
		   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
	free(resp);
	free(in);
	free(body);
}

/* ---- a same-node server's ingress under memory pressure (memory cgroup v1) ---- */

/* The memory cgroup (v1 hierarchy) this process is in: its directory, or -1. */
static int memcg_self(char *dir, size_t len)
{
	char line[PATH_MAX];
	FILE *f = fopen("/proc/self/cgroup", "r");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, ":memory:");

		if (!p)
			continue;
		p[strcspn(p, "\n")] = 0;
		if (snprintf(dir, len, "/sys/fs/cgroup/memory%s", p + 8) < (int)len)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static int cg_write(const char *dir, const char *file, long long v)
{
	char path[PATH_MAX];
	int fd, n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = dprintf(fd, "%lld\n", v);
	close(fd);
	return n > 0 ? 0 : -EIO;
}

static long long cg_read(const char *dir, const char *file)
{
	char path[PATH_MAX], buf[64] = "";
	int fd;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 10) : -1;
}


/*
 * A memory cgroup (v1) under ours whose sockets' TCP memory is accounted
 * (any limit written turns it on, for sockets made or accepted after):
 * its directory in mc, ours in orig. 0, or -1 with nothing left behind.
 */
static int memcg_make(char *orig, size_t olen, char *mc, size_t len, const char *name)
{
	if (!ASSERT_OK(memcg_self(orig, olen), "memory cgroup v1") ||
	    snprintf(mc, len, "%s/%s-%d", orig, name, (int)getpid()) >= (int)len ||
	    !ASSERT_OK(mkdir(mc, 0755), "mkdir memory cgroup"))
		return -1;
	if (!ASSERT_OK(cg_write(mc, "memory.kmem.tcp.limit_in_bytes", -1), "tcp accounting on")) {
		rmdir(mc);
		return -1;
	}
	return 0;
}

/* Room for room more bytes of TCP memory in the memory cgroup mc. */
static bool memcg_room(const char *mc, long long room)
{
	long long usage = cg_read(mc, "memory.kmem.tcp.usage_in_bytes");

	return ASSERT_GE(usage, 0, "tcp usage") &&
	       ASSERT_OK(cg_write(mc, "memory.kmem.tcp.limit_in_bytes", usage + room), "limit");
}

/*
 * A server socket whose memory cgroup has no room (memory.kmem.tcp of
 * cgroup v1; __sk_rmem_schedule fails in bpf_tcp_ingress) takes a
 * redirected request only in part; the kernel runs the client program
 * again on the rest, still carrying the first run's target. That rest is
 * the same request's (not a head): it goes after its first part, over the
 * upstream's TCP (REQ_TCP, for good), and the backend gets the request
 * whole and in order, the engine nothing. A third backend's pool is made
 * with its server sockets accepted inside the cgroup, and backend 1's
 * endpoint points there meanwhile.
 */
static void test_partial(struct env *e)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct gammad_ep_key ek = { .ep_set = 100, .idx = 0 };
	struct gammad_ep_val ev_orig, ev;
	size_t blen = 200 * 1024, want;
	char mc_orig[PATH_MAX - 64], mc[PATH_MAX], head[160], *req = NULL, *in = NULL;
	uint64_t malformed = khst(e, GAMMAD_KH_R_MALFORMED), served = khst(e, GAMMAD_KH_R_SERVED);
	uint64_t more = khst(e, GAMMAD_KH_R_MORE), large = khst(e, GAMMAD_KH_R_HEAD_TOO_LARGE);
	uint16_t port0 = e->port[0], port3 = 0;
	struct client c = { -1, -1, 0 };
	struct gammad_kh_slot sv;
	bool pool = false, ep_set = false, in_mc = false, have_mc = false;
	int lb = -1, s, be, up, hn;
	ssize_t got;

	if (memcg_make(mc_orig, sizeof(mc_orig), mc, sizeof(mc), "gammad-khpart"))
		return;
	have_mc = true;
	req = malloc(blen + sizeof(head));
	in = malloc(blen + sizeof(head));
	if (!ASSERT_OK_PTR(req, "malloc") || !ASSERT_OK_PTR(in, "malloc"))
		goto out;
	/* a listener in the clients' cgroup (v2): its accepted sockets meet gammad_kh_sockops */
	if (!ASSERT_OK(cgroup_join(e->cg), "join"))
		goto out;
	lb = loopback_listener(&port3);
	if (!ASSERT_OK(cgroup_join(e->cg_orig), "leave") || !ASSERT_GE(lb, 0, "listener"))
		goto out;
	a.sin_port = htons(port3);
	if (!ASSERT_OK(kh_pools_add(e->pools, -1, (struct sockaddr *)&a, sizeof(a)), "pool"))
		goto out;
	pool = true;
	/* its server sockets accepted by this thread inside the memory cgroup: charged to it */
	if (!ASSERT_OK(cg_write(mc, "tasks", gettid()), "join memory cgroup"))
		goto out;
	in_mc = true;
	for (int i = 0; i < PER_POOL && e->nr_bends < MAX_BENDS; i++) {
		struct sockaddr_in pa;
		socklen_t len = sizeof(pa);
		struct pollfd pf = { .fd = lb, .events = POLLIN };
		int fd;

		if (!ASSERT_EQ(poll(&pf, 1, 2000), 1, "upstream connected"))
			goto out;
		fd = accept4(lb, (struct sockaddr *)&pa, &len, SOCK_CLOEXEC);
		if (!ASSERT_GE(fd, 0, "accept"))
			goto out;
		e->bends[e->nr_bends++] = (struct bend){ fd, ntohs(pa.sin_port) };
	}
	in_mc = false;
	if (!ASSERT_OK(cg_write(mc_orig, "tasks", gettid()), "leave memory cgroup"))
		goto out;
	/* backend 1's endpoint is the new one's for now (bound_be() looks for port[0]) */
	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_ep_v1), &ek, &ev_orig),
		       "endpoint"))
		goto out;
	ev = ev_orig;
	ev.port = htons(port3);
	if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(e->skel->maps.gammad_ep_v1), &ek, &ev, 0),
		       "endpoint to the new backend"))
		goto out;
	ep_set = true;
	e->port[0] = port3;
	if (!ASSERT_OK(client_open(e, &c), "client") || !samenode_first(e, &c, &s, &be, &up))
		goto out;
	/* room for a first part of the request, not for all of it */
	if (!memcg_room(mc, 48 * 1024))
		goto out;
	hn = snprintf(head, sizeof(head), "POST /one/up HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: %zu\r\n\r\n", blen);
	memcpy(req, head, hn);
	for (size_t i = 0; i < blen; i++)
		req[hn + i] = pattern(i * 5);
	want = hn + blen;
	/* one write: the request whole in one message, the first part to the server's ingress */
	if (!ASSERT_TRUE(send_all(c.cli, req, want), "client send"))
		goto out;
	got = read_exact_ms(be, in, want, 5000);
	if (got != (ssize_t)want) {
		char *eng = malloc(want);

		test__printf("  backend got %zd of %zu; malformed +%llu, more +%llu,"
			     " head too large +%llu; engine got %zd\n", got, want,
			     (unsigned long long)(khst(e, GAMMAD_KH_R_MALFORMED) - malformed),
			     (unsigned long long)(khst(e, GAMMAD_KH_R_MORE) - more),
			     (unsigned long long)(khst(e, GAMMAD_KH_R_HEAD_TOO_LARGE) - large),
			     eng ? read_exact_ms(c.peer, eng, want, 200) : -1);
		free(eng);
	}
	if (!ASSERT_EQ(got, (ssize_t)want, "the request at the backend") ||
	    !ASSERT_OK(memcmp(in, req, want), "whole and in order"))
		goto out;
	ASSERT_EQ(khst(e, GAMMAD_KH_R_MALFORMED) - malformed, 0, "no rest read as a head");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &s, &sv),
		       "slot"))
		goto out;
	ASSERT_TRUE(sv.flags & GAMMAD_KH_SLOT_REQ_TCP, "the rest went over TCP, so does what follows");
	ASSERT_GT(tcp_bytes(up), 0, "bytes over the upstream's TCP");
	cg_write(mc, "memory.kmem.tcp.limit_in_bytes", -1);
	if (!ASSERT_TRUE(send_str(be, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), "resp") ||
	    !expect_str(c.cli, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "201"))
		goto out;
	round_trip(e, &c, 0, "GET /one/after HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
		   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SERVED) - served, 3, "served in the kernel");
	ASSERT_TRUE(quiet(c.peer, 20), "the engine saw nothing");
out:
	client_close(&c);
	if (in_mc)
		cg_write(mc_orig, "tasks", gettid());
	if (have_mc)
		cg_write(mc, "memory.kmem.tcp.limit_in_bytes", -1);
	if (ep_set)
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.gammad_ep_v1), &ek, &ev_orig, 0);
	e->port[0] = port0;
	if (pool)
		kh_pools_del(e->pools, e->netns, (struct sockaddr *)&a, sizeof(a));
	/* its server sockets: closed, out of the list */
	for (int i = 0; i < e->nr_bends; i++) {
		struct sockaddr_in pa;
		socklen_t len = sizeof(pa);

		if (!getsockname(e->bends[i].fd, (struct sockaddr *)&pa, &len) &&
		    pa.sin_port == htons(port3) && port3) {
			close(e->bends[i].fd);
			e->bends[i--] = e->bends[--e->nr_bends];
		}
	}
	if (lb >= 0)
		close(lb);
	if (have_mc)
		rmdir(mc);
	free(req);
	free(in);
}

/*
 * The response direction: a client socket whose memory cgroup has no room
 * takes a same-node server's response message only in part, and the
 * kernel runs gammad_kh_server again on the rest (6.18 has cleared the
 * message's target by then). That rest was framed with its first part:
 * it goes over the connection's TCP (SLOW: the pools hand the upstream
 * over, the test relays as the engine does) and the upstream's verdict
 * does not frame it again (gammad_khfa_v1, the slot armed for it by
 * GAMMAD_KH_SLOT_AHEAD). Exact accounting: the client
 * gets the response whole and in order, bytes_down is what its ingress
 * took (the rest the relay carried), and the slot framed one response,
 * once (before: the rest framed again as a new response, counted down
 * twice, the slot unframed).
 */
static void test_partial_resp(struct env *e)
{
	size_t blen = 200 * 1024, total, got, relayed;
	char mc_orig[PATH_MAX - 64], mc[PATH_MAX], head[96], *resp = NULL, *in = NULL;
	uint64_t slow = khst(e, GAMMAD_KH_R_SLOW_READER), down0;
	bool in_mc = false, have_mc = false, limited = false;
	struct relay *r = malloc(sizeof(*r));
	struct client c = { -1, -1, 0 };
	struct gammad_kh_slot sv;
	int s, be, up, hn, idle;
	uint64_t ahead = 1, stale;
	ssize_t n;
	uint32_t seq0;

	e->slow = 0;
	e->slow_fd = -1;
	if (!ASSERT_OK_PTR(r, "malloc") ||
	    memcg_make(mc_orig, sizeof(mc_orig), mc, sizeof(mc), "gammad-khresp")) {
		free(r);
		return;
	}
	have_mc = true;
	/* the client's socket made inside the memory cgroup: charged to it */
	if (!ASSERT_OK(cg_write(mc, "tasks", gettid()), "join memory cgroup"))
		goto out;
	in_mc = true;
	if (!ASSERT_OK(client_open(e, &c), "client"))
		goto out;
	in_mc = false;
	if (!ASSERT_OK(cg_write(mc_orig, "tasks", gettid()), "leave memory cgroup") ||
	    !samenode_first(e, &c, &s, &be, &up) ||
	    !ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &s, &sv),
		       "slot"))
		goto out;
	seq0 = sv.r.resp_seq;
	down0 = sv.bytes_down;
	/* a count an earlier arming of the slot left: the server side's store overwrites it */
	stale = 4096;
	if (!ASSERT_FALSE(sv.flags & GAMMAD_KH_SLOT_AHEAD, "a fresh arming") ||
	    !ASSERT_OK(bpf_map_update_elem(bpf_map__fd(e->skel->maps.gammad_khfa_v1), &s, &stale,
					   BPF_ANY), "stale count"))
		goto out;
	hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", blen);
	total = hn + blen;
	resp = malloc(total);
	in = malloc(total);
	if (!ASSERT_OK_PTR(resp, "malloc") || !ASSERT_OK_PTR(in, "malloc"))
		goto out;
	memcpy(resp, head, hn);
	for (size_t i = 0; i < blen; i++)
		resp[hn + i] = pattern(i * 3);
	if (!ASSERT_TRUE(send_str(c.cli, "GET /one/big HTTP/1.1\r\nHost: a\r\n\r\n"), "request") ||
	    !expect_str(be, "GET /one/big HTTP/1.1\r\nHost: a\r\n\r\n", "request") ||
	    !ASSERT_TRUE(set_nonblock(be), "nonblock") ||
	    !ASSERT_TRUE(set_nonblock(c.cli), "nonblock") ||
	    !ASSERT_TRUE(set_nonblock(c.peer), "nonblock"))
		goto out;
	/* room for a first part of the response, not for all of it; one write */
	if (!memcg_room(mc, 48 * 1024))
		goto out;
	limited = true;
	n = send(be, resp, total, MSG_NOSIGNAL);
	if (!ASSERT_GT(n, 0, "backend send"))
		goto out;
	cg_write(mc, "memory.kmem.tcp.limit_in_bytes", -1);
	limited = false;
	/* the client reads (its ingress first), the test relays the rest as the engine */
	*r = (struct relay){ .cli = c.cli, .be = be, .up = -1, .peer = c.peer, .resp = resp,
			     .in = in, .total = total, .sent = (size_t)n };
	for (idle = 0; r->got < total && idle < 300;) {
		if (r->up < 0) {
			kh_pools_run(e->pools);
			if (e->slow_fd >= 0 && set_nonblock(e->slow_fd))
				r->up = e->slow_fd;
		}
		idle = relay_step(r) ? 0 : idle + 1;
	}
	got = r->got;
	relayed = r->relayed;
	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khslot_v1), &s, &sv),
		       "slot") ||
	    !ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.gammad_khfa_v1), &s, &ahead),
		       "framed ahead"))
		goto out;
	test__printf("  %zu bytes at the client, %zu of them relayed; bytes_down +%llu, "
		     "framed ahead %llu, responses framed +%u, flags %#x\n", got, relayed,
		     (unsigned long long)(sv.bytes_down - down0), (unsigned long long)ahead,
		     sv.r.resp_seq - seq0, sv.flags);
	ASSERT_EQ(got, total, "every byte at the client");
	ASSERT_OK(memcmp(in, resp, got < total ? got : total), "in order, none lost");
	ASSERT_GT(sv.bytes_down - down0, 0, "a first part through the client's ingress");
	ASSERT_GT(relayed, 0, "the rest over the upstream's TCP, relayed");
	ASSERT_EQ(got - relayed, sv.bytes_down - down0, "bytes_down: what the ingress took");
	ASSERT_EQ(e->slow, c.cookie, "the pools hand its upstream over");
	ASSERT_EQ(khst(e, GAMMAD_KH_R_SLOW_READER) - slow, 1, "counted: slow reader");
	ASSERT_FALSE(sv.flags & GAMMAD_KH_SLOT_UNFRAMED, "still framed");
	ASSERT_EQ(sv.r.resp_seq - seq0, 1, "one response framed");
	ASSERT_EQ(sv.r.state, GAMMAD_KH_RS_STATUS, "at the next head");
	ASSERT_EQ(sv.r.k, 0, "nothing of a next head");
	ASSERT_TRUE(sv.flags & GAMMAD_KH_SLOT_AHEAD, "armed: a rest framed ahead");
	ASSERT_EQ(ahead, 0, "every byte framed ahead came over TCP");
out:
	client_close(&c);
	if (in_mc)
		cg_write(mc_orig, "tasks", gettid());
	if (limited)
		cg_write(mc, "memory.kmem.tcp.limit_in_bytes", -1);
	if (have_mc)
		rmdir(mc);
	free(r);
	free(resp);
	free(in);
}

/* Listeners for the backends: in the clients' cgroup when same-node (see struct env). */
static int env_backends(struct env *e)
{
	if (e->samenode && cgroup_join(e->cg))
		return -1;
	for (int b = 0; b < NR_BE; b++)
		e->lb[b] = loopback_listener(&e->port[b]);
	if (e->samenode && cgroup_join(e->cg_orig))
		return -1;
	return ASSERT_GE(e->lb[0], 0, "listener") && ASSERT_GE(e->lb[1], 0, "listener") ? 0 : -1;
}

static void run(bool samenode)
{
	struct env e = { .lc = -1, .lb = { -1, -1 }, .cg_fd = -1, .slow_fd = -1,
			 .samenode = samenode };
	struct kh_image img = { 0 };
	bool have_img = false;
	int msg_prog = -1, skb_prog = -1, srv_prog = -1, cli_map = -1, up_map = -1, srv_map = -1;
	const char *pfx = samenode ? "samenode_" : "";
	char name[64];
	struct tfx f;

#define SUBTEST(n) (snprintf(name, sizeof(name), "%s%s", pfx, n), test__start_subtest(name))
	e.skel = khttp_bpf__open();
	if (!ASSERT_OK_PTR(e.skel, "open the data path"))
		return;
	e.skel->rodata->kh_cap = CAP;
	if (!ASSERT_OK(khttp_bpf__load(e.skel), "load the data path")) {
		khttp_bpf__destroy(e.skel);
		return;
	}
	e.lc = loopback_listener(NULL);
	if (!ASSERT_GE(e.lc, 0, "listener") ||
	    env_cgroup(&e, bpf_program__fd(e.skel->progs.gammad_kh_sockops)) || env_backends(&e))
		goto out;
	e.netns = sock_u64(e.lc, SO_NETNS_COOKIE);
	if (!ASSERT_NEQ(e.netns, 0, "netns cookie"))
		goto out;
	have_img = true;
	if (env_tables(&e, &f, &img))
		goto out_tfx;
	msg_prog = bpf_program__fd(e.skel->progs.gammad_kh_client);
	skb_prog = bpf_program__fd(e.skel->progs.gammad_kh_upstream);
	srv_prog = bpf_program__fd(e.skel->progs.gammad_kh_server);
	cli_map = bpf_map__fd(e.skel->maps.gammad_khcli_v1);
	up_map = bpf_map__fd(e.skel->maps.gammad_khup_v1);
	srv_map = bpf_map__fd(e.skel->maps.gammad_khsv_v1);
	/* attached first: a socket takes the map's programs when it enters */
	if (!ASSERT_OK(bpf_prog_attach(msg_prog, cli_map, BPF_SK_MSG_VERDICT, 0), "attach sk_msg"))
		goto out_tfx;
	e.msg_attached = true;
	if (!ASSERT_OK(bpf_prog_attach(skb_prog, up_map, BPF_SK_SKB_VERDICT, 0), "attach sk_skb"))
		goto out_tfx;
	e.skb_attached = true;
	if (!ASSERT_OK(bpf_prog_attach(srv_prog, srv_map, BPF_SK_MSG_VERDICT, 0), "attach server"))
		goto out_tfx;
	e.srv_attached = true;
	if (env_pools(&e))
		goto out_tfx;
	if (SUBTEST("forward"))
		test_forward(&e);
	if (SUBTEST("miss_return"))
		test_miss_return(&e);
	if (SUBTEST("redirect"))
		test_redirect(&e);
	if (SUBTEST("alternate"))
		test_alternate(&e);
	if (SUBTEST("bodies"))
		test_bodies(&e);
	if (samenode && SUBTEST("no_tcp"))
		test_samenode(&e);
	if (samenode && SUBTEST("partial_ingress"))
		test_partial(&e);
	if (samenode && SUBTEST("partial_response"))
		test_partial_resp(&e);
	if (SUBTEST("pipeline"))
		test_pipeline(&e);
	if (SUBTEST("resp_edits"))
		test_resp_edits(&e);
	if (SUBTEST("not_http"))
		test_not_http(&e);
	if (SUBTEST("unframed"))
		test_unframed(&e);
	if (SUBTEST("release"))
		test_release(&e);
	if (SUBTEST("upstream_fin"))
		test_upstream_fin(&e);
	if (SUBTEST("slow_reader"))
		test_slow_reader(&e);
	if (SUBTEST("slow_backend"))
		test_slow_backend(&e);
	if (SUBTEST("slow_reader_local"))
		test_slow_reader_local(&e);
	if (SUBTEST("close_delimited"))
		test_close_delimited(&e);
	if (SUBTEST("claim_events"))
		test_claim_events(&e);
	if (SUBTEST("one_hop"))
		test_one_hop(&e);
	if (!samenode && SUBTEST("probe"))
		test_probe();
	if (SUBTEST("cost"))
		test_cost(&e);
#undef SUBTEST
	test__printf("%sserved in the kernel: %llu, to the engine: pipeline %llu, unframed %llu\n",
		     pfx, (unsigned long long)khst(&e, GAMMAD_KH_R_SERVED),
		     (unsigned long long)khst(&e, GAMMAD_KH_R_PIPELINE),
		     (unsigned long long)khst(&e, GAMMAD_KH_R_UNFRAMED));
out_tfx:
	if (have_img) {
		kh_image_free(&img);
		tfx_free(&f);
	}
out:
	kh_pools_free(e.pools);
	for (int i = 0; i < e.nr_bends; i++)
		close(e.bends[i].fd);
	if (e.msg_attached)
		bpf_prog_detach2(msg_prog, cli_map, BPF_SK_MSG_VERDICT);
	if (e.skb_attached)
		bpf_prog_detach2(skb_prog, up_map, BPF_SK_SKB_VERDICT);
	if (e.srv_attached)
		bpf_prog_detach2(srv_prog, srv_map, BPF_SK_MSG_VERDICT);
	if (e.ops_attached)
		bpf_prog_detach2(bpf_program__fd(e.skel->progs.gammad_kh_sockops), e.cg_fd,
				 BPF_CGROUP_SOCK_OPS);
	if (e.cg_fd >= 0) {
		close(e.cg_fd);
		rmdir(e.cg);
	}
	for (int b = 0; b < NR_BE; b++)
		if (e.lb[b] >= 0)
			close(e.lb[b]);
	if (e.lc >= 0)
		close(e.lc);
	khttp_bpf__destroy(e.skel);
}

void test_khttp_path(void)
{
	run(false);
	run(true);
}
