// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel HTTP path's client side at socket level, on loopback
 * (tests/progs/khttp_msg.bpf.c): a client socket and an "upstream" socket
 * in a sockhash with the sk_msg program attached. Each request the client
 * writes is parsed and matched in the kernel; a FORWARD is edited in the
 * message (target rewrite, field lines removed and appended: bpf/lib/
 * khttp_msg.h) and redirected to the upstream's egress, so the upstream's
 * peer (the "backend") receives the request as the rule backend gets it.
 * Checked: the verdict the program recorded agrees with the engine's
 * evaluator, and the bytes the backend receives are the original head with
 * exactly those edits, followed by the body; what the kernel does not
 * forward reaches the client's peer unchanged.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "lib/loopback.h"
#include "lib/khttp_user.h"
#include "lib/translate_fixture.h"
#include "skel/test_khttp_msg.skel.h"

static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: msg, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /edit}}]\n"
	"    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
	"        set: [{name: X-Set, value: set-value}]\n        add: [{name: X-Add, value: a}]\n"
	"        remove: [X-Remove, x-also]\n"
	"    backendRefs: [{name: b1, port: 80, weight: 1}, {name: b2, port: 80, weight: 1}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /old}}]\n"
	"    filters: [{type: URLRewrite, urlRewrite: {hostname: new.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new/v2}}}]\n"
	"    backendRefs: [{name: b1, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /full}}]\n"
	"    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /}}}]\n"
	"    backendRefs: [{name: b2, port: 80}]\n"
	"  - matches: [{path: {type: Exact, value: /plain}}]\n"
	"    backendRefs: [{name: b3, port: 80}]\n";

static const char *const requests[] = {
	"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /edit/x?y=1 HTTP/1.1\r\nHost: a\r\nX-Remove: 1\r\nAccept: */*\r\nx-also: 2\r\n"
	"X-Set: old\r\n\r\n",
	"POST /edit HTTP/1.1\r\nX-Remove: first\r\nHost: a:80\r\nContent-Length: 5\r\n\r\nhello",
	"GET /old/a/b?q=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n",
	"GET /old HTTP/1.0\r\n\r\n",
	"GET /full/one/two?x=y HTTP/1.1\r\nhost: a\r\n\r\n",
	"DELETE /edit/z HTTP/1.1\r\nx-remove: a\r\nX-REMOVE: b\r\nHost: a\r\nX-Keep: k\r\n\r\n",
	/* not forwarded by the kernel: 404, malformed, chunked */
	"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /plain HTTP/1.1\r\nHost : a\r\n\r\n",
	"POST /plain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
};

struct sockets {
	int lb, lc;		/* listeners: backend, client's peer */
	int up, be;		/* upstream socket and the backend's end of it */
	int cli, peer;		/* client socket and its peer */
};

static void sockets_close(struct sockets *s)
{
	int *fds[] = { &s->lb, &s->lc, &s->up, &s->be, &s->cli, &s->peer };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
}

/* Read exactly want bytes from fd within 2 s, then check nothing more is queued. */
static ssize_t read_exact(int fd, char *buf, size_t want, size_t cap)
{
	size_t n = 0;

	while (n < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 2000) != 1)
			return (ssize_t)n;
		r = recv(fd, buf + n, cap - n, 0);
		if (r <= 0)
			return (ssize_t)n;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* What the backend must receive: the head with the verdict's edits, then the body. */
static size_t expected(const struct gammad_kh_scratch *u, const struct gammad_kh_rb *rb,
		       const char *req, size_t len, char *out)
{
	const struct gammad_kh_req *r = &u->req;
	const struct gammad_kh_verdict *v = &u->v;
	size_t n = 0, cut = v->rw_kind ? v->rw_cut : 0;

	memcpy(out, req, r->target_off);
	n = r->target_off;
	if (v->rw_kind == 1) {
		memcpy(out + n, rb->path.value.s, rb->path.value.len);
		n += rb->path.value.len;
	} else if (v->rw_kind == 2) {
		out[n++] = '/';
	}
	/* the rest of the request line, then the fields kept */
	{
		size_t from = r->target_off + cut;
		size_t to = r->nr_fields ? r->fields[0].name_off : (size_t)r->head_len - 2;

		memcpy(out + n, req + from, to - from);
		n += to - from;
	}
	for (unsigned i = 0; i < r->nr_fields; i++) {
		size_t start = r->fields[i].name_off;
		size_t stop = i + 1 < r->nr_fields ? r->fields[i + 1].name_off : r->head_len - 2u;

		if (v->remove_mask & (1u << i))
			continue;
		memcpy(out + n, req + start, stop - start);
		n += stop - start;
	}
	memcpy(out + n, rb->append, rb->append_len);
	n += rb->append_len;
	memcpy(out + n, "\r\n", 2);
	n += 2;
	memcpy(out + n, req + r->head_len, len - r->head_len);
	return n + len - r->head_len;
}

static void run_request(struct test_khttp_msg_bpf *skel, const struct sockets *sk,
			const struct tr_class *cls, const struct kh_image *img, const char *req,
			struct khu_stats *st)
{
	struct gammad_kh_scratch *u = malloc(sizeof(*u));
	size_t len = strlen(req), want;
	char got[8192], exp[8192], why[256];
	uint32_t zero = 0;
	ssize_t n;

	if (!ASSERT_OK_PTR(u, "malloc"))
		return;
	memset(got, 0, sizeof(got));
	if (!ASSERT_EQ(send(sk->cli, req, len, 0), (ssize_t)len, "client send"))
		goto out;
	/* the parse is the userspace build's (khttp_diff: the same bytes as BPF's) */
	khu_scratch(u, req, len, 0, 0);
	khu_use(img);
	khu_request(u);
	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(skel->maps.kh_last), &zero, &u->v),
		       "verdict"))
		goto out;
	if (khu_check(cls, img, u, st, why, sizeof(why))) {
		test__fail();
		test__printf("kernel and engine disagree: %s\n  %s", why, req);
		goto out;
	}
	if (u->v.action != GAMMAD_KH_FORWARD) {
		/* passed unchanged to the client's peer */
		n = read_exact(sk->peer, got, len, sizeof(got));
		if (!ASSERT_EQ(n, (ssize_t)len, "bytes at the client's peer") ||
		    !ASSERT_OK(memcmp(got, req, len), "unchanged"))
			test__printf("  %s", req);
		goto out;
	}
	want = expected(u, &img->rbs[u->v.rb], req, len, exp);
	n = read_exact(sk->be, got, want, sizeof(got) - 1);
	if (!ASSERT_EQ(n, (ssize_t)want, "bytes at the backend") ||
	    !ASSERT_OK(memcmp(got, exp, want), "edited request")) {
		test__printf("  sent:     %s\n  got:      %.*s\n  expected: %.*s\n", req,
			     (int)(n > 0 ? n : 0), got, (int)want, exp);
	}
out:
	khu_use(NULL);
	free(u);
}

/*
 * Two requests in one send: apply_bytes ends the first verdict after the
 * first request (its edited head and body), the second gets its own.
 * Their rewrites differ in length, so a wrong count shows.
 */
static void run_pipelined(const struct sockets *sk)
{
	static const char two[] =
		"POST /old/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
		"GET /full/y?z HTTP/1.1\r\nHost: a\r\nX-Remove: 1\r\n\r\n";
	static const char want[] =
		"POST /new/v2/x HTTP/1.1\r\nContent-Length: 3\r\nHost: new.example\r\n\r\nabc"
		"GET /?z HTTP/1.1\r\nHost: a\r\nX-Remove: 1\r\n\r\n";
	char got[512] = { 0 };
	ssize_t n;

	if (!ASSERT_EQ(send(sk->cli, two, sizeof(two) - 1, 0), (ssize_t)sizeof(two) - 1, "send"))
		return;
	n = read_exact(sk->be, got, sizeof(want) - 1, sizeof(got) - 1);
	if (!ASSERT_EQ(n, (ssize_t)sizeof(want) - 1, "bytes at the backend") ||
	    !ASSERT_OK(memcmp(got, want, sizeof(want) - 1), "both requests, each edited"))
		test__printf("  got:      %.*s\n  expected: %s\n", (int)(n > 0 ? n : 0), got, want);
}

void test_khttp_msg(void)
{
	struct sockets sk = { -1, -1, -1, -1, -1, -1 };
	struct test_khttp_msg_bpf *skel;
	struct khu_stats st = { 0 };
	struct kh_map_fds fds;
	struct kh_image img;
	bool have_img = false, attached = false;
	int hash_fd, prog_fd;
	uint32_t key;
	uint64_t val;
	struct tfx f;
	const struct tr_class *cls;

	skel = test_khttp_msg_bpf__open();
	if (!ASSERT_OK_PTR(skel, "open"))
		return;
	skel->rodata->kh_tab = KHU_TAB;
	if (!ASSERT_OK(test_khttp_msg_bpf__load(skel), "load sk_msg program"))
		goto out_skel;
	if (!ASSERT_OK(tfx_setup(&f, routes), "routes"))
		goto out_tfx;
	cls = tfx_class(&f, "app", "a", 80, NULL);
	if (!ASSERT_OK_PTR(cls, "class") || !ASSERT_OK(kh_encode(cls, 80, &img), "encode"))
		goto out_tfx;
	have_img = true;
	if (!ASSERT_EQ(img.tab.engine_reason, 0, "the kernel's table"))
		goto out_tfx;
	fds = (struct kh_map_fds){
		.table = bpf_map__fd(skel->maps.gammad_khtab_v1),
		.entry = bpf_map__fd(skel->maps.gammad_khent_v1),
		.rule = bpf_map__fd(skel->maps.gammad_khrul_v1),
		.rb = bpf_map__fd(skel->maps.gammad_khrb_v1),
		.alias = bpf_map__fd(skel->maps.gammad_khal_v1),
	};
	if (!ASSERT_OK(kh_image_write(&img, KHU_TAB, &fds), "write table"))
		goto out_tfx;

	hash_fd = bpf_map__fd(skel->maps.kh_socks);
	prog_fd = bpf_program__fd(skel->progs.kh_client);
	/* attached first: a socket takes the map's programs when it enters */
	if (!ASSERT_OK(bpf_prog_attach(prog_fd, hash_fd, BPF_SK_MSG_VERDICT, 0), "attach"))
		goto out_tfx;
	attached = true;
	sk.lb = loopback_listener(NULL);
	sk.lc = loopback_listener(NULL);
	if (!ASSERT_GE(sk.lb, 0, "listener") || !ASSERT_GE(sk.lc, 0, "listener"))
		goto out;
	sk.be = loopback_pair(sk.lb, &sk.up, false);
	sk.peer = loopback_pair(sk.lc, &sk.cli, false);
	if (!ASSERT_GE(sk.be, 0, "upstream") || !ASSERT_GE(sk.peer, 0, "client"))
		goto out;
	key = 0;
	val = (uint64_t)sk.cli;
	if (!ASSERT_OK(bpf_map_update_elem(hash_fd, &key, &val, BPF_ANY), "client in sockhash"))
		goto out;
	key = 1;
	val = (uint64_t)sk.up;
	if (!ASSERT_OK(bpf_map_update_elem(hash_fd, &key, &val, BPF_ANY), "upstream in sockhash"))
		goto out;
	for (int round = 0; round < 4; round++)
		for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
			run_request(skel, &sk, cls, &img, requests[i], &st);
	if (test__start_subtest("pipelined"))
		run_pipelined(&sk);
	test__printf("%lu forwarded and edited in the kernel, %lu answered, %lu to the engine\n",
		     st.served, st.local, st.engine);
	ASSERT_GT(st.served, 0, "forwarded");
out:
	sockets_close(&sk);
	if (attached)
		bpf_prog_detach2(prog_fd, hash_fd, BPF_SK_MSG_VERDICT);
out_tfx:
	if (have_img)
		kh_image_free(&img);
	tfx_free(&f);
out_skel:
	test_khttp_msg_bpf__destroy(skel);
}
