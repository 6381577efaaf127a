// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's response framing (bpf/lib/khttp_resp.h, the sk_skb side of
 * the data path) against the engine's response parser (h1_head_end,
 * h1_parse_response, h1_chunked_scan). Generated streams of responses to
 * pipelined requests (HEAD among them): Content-Length, chunked with
 * extensions and trailers, 204/304, 1xx before the final answer,
 * close-delimited and other codings last, malformed framing fields, in
 * random case; each stream cut into random skbs and run through the
 * verified program with BPF_PROG_TEST_RUN, the state carried from skb to
 * skb as the upstream's slot carries it.
 *
 * Must hold on every stream, after every skb: the kernel counts a
 * response complete exactly when the engine does; it says close-delimited
 * only for a response the engine reads to the close, and says it for every
 * such response it reaches (a coding other than chunked excepted: unframed,
 * never framed); it never frames past a response the engine cannot frame.
 * Unframed where the engine frames is allowed (the slot is then never
 * reused) and counted. In half the streams some responses need edits
 * (same-node servers): the walk must stop exactly at each of their heads
 * that does not start an skb, and nowhere else; the rest is the next skb.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "gammad/maps.h"
#include "http/http1.h"
#include "lib/khttp_gen.h"
#include "skel/test_khttp_resp.skel.h"

/* struct kh_rscratch of bpf/lib/khttp_resp.h */
struct rscratch {
	struct gammad_kh_resp r;
	uint32_t req_seq, head_bits;
	uint32_t pos, n;
	uint32_t unframed;
	uint32_t close;
	uint32_t edit_bits, base, stop;
	uint8_t buf[256];
};

#define STREAMS		20000
#define MAX_RESP	6

/* The stream (one to MAX_RESP responses) and the draws it is made from. */
struct gen {
	struct khg_text t;
	uint64_t rng;
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
	return n ? khg_rnd(&g->rng) % n : 0;
}

/* A field name in random case. */
static void put_name(struct gen *g, const char *s)
{
	for (; *s; s++) {
		char c = *s;

		if (c >= 'a' && c <= 'z' && !rnd(g, 3))
			c ^= 0x20;
		khg_put(&g->t, &c, 1);
	}
}

static void put_field(struct gen *g, const char *name, const char *value)
{
	put_name(g, name);
	khg_puts(&g->t, ":");
	if (rnd(g, 4))
		khg_puts(&g->t, " ");
	khg_puts(&g->t, value);
	if (!rnd(g, 8))
		khg_puts(&g->t, " ");
	khg_puts(&g->t, "\r\n");
}

static void put_body(struct gen *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = 'a' + rnd(g, 26);

		khg_put(&g->t, &c, 1);
	}
}

/* One response (1xx ones before it sometimes); last: a close-delimited one may end the stream. */
static void gen_response(struct gen *g, bool head, bool last)
{
	static const int statuses[] = { 200, 200, 200, 201, 204, 304, 404, 500, 302 };
	char line[64], v[32];
	int st = statuses[rnd(g, sizeof(statuses) / sizeof(statuses[0]))];
	uint32_t framing = rnd(g, last ? 12 : 9), n;

	while (!rnd(g, 6)) {
		khg_puts(&g->t, rnd(g, 2) ? "HTTP/1.1 100 Continue\r\n" : "HTTP/1.1 103 Early Hints\r\n");
		if (rnd(g, 2))
			put_field(g, "link", "</a.css>");
		khg_puts(&g->t, "\r\n");
	}
	snprintf(line, sizeof(line), "HTTP/1.%d %d X\r\n", rnd(g, 10) ? 1 : 0, st);
	if (!rnd(g, 40))
		snprintf(line, sizeof(line), "HTTP/1.1 %d0 X\r\n", st);	/* 4 digits */
	khg_puts(&g->t, line);
	if (rnd(g, 2))
		put_field(g, "server", "gen");
	n = rnd(g, 4) ? rnd(g, 300) : rnd(g, 5000);
	switch (framing) {
	case 0: case 1: case 2: case 3:
		snprintf(v, sizeof(v), "%u", n);
		put_field(g, "content-length", v);
		khg_puts(&g->t, "\r\n");
		if (!head && st != 204 && st != 304)
			put_body(g, n);
		return;
	case 4:
		/* framing faults: two lengths, length and coding, a tab, not a number */
		snprintf(v, sizeof(v), "%u", n);
		switch (rnd(g, 5)) {
		case 0:
			put_field(g, "content-length", v);
			put_field(g, "content-length", v);
			break;
		case 1:
			put_field(g, "content-length", v);
			put_field(g, "transfer-encoding", "chunked");
			break;
		case 2:
			put_name(g, "content-length");
			khg_puts(&g->t, ":\t");
			khg_puts(&g->t, v);
			khg_puts(&g->t, "\r\n");
			break;
		case 3:
			put_field(g, "content-length", "1x");
			break;
		default:
			put_field(g, "content-length", "");
			break;
		}
		khg_puts(&g->t, "\r\n");
		if (!head && st != 204 && st != 304)
			put_body(g, n);
		return;
	case 5: case 6: case 7: case 8:
		put_field(g, "transfer-encoding", rnd(g, 8) ? "chunked" : "gzip, chunked");
		if (rnd(g, 3))
			put_field(g, "x-after", "1");
		khg_puts(&g->t, "\r\n");
		if (head || st == 204 || st == 304)
			return;
		for (int c = rnd(g, 5); c > 0; c--) {
			uint32_t cn = 1 + (rnd(g, 3) ? rnd(g, 40) : rnd(g, 3000));

			snprintf(v, sizeof(v), rnd(g, 2) ? "%x" : "%X", cn);
			khg_puts(&g->t, v);
			if (!rnd(g, 5))
				khg_puts(&g->t, ";ext=1");
			khg_puts(&g->t, "\r\n");
			put_body(g, cn);
			khg_puts(&g->t, "\r\n");
		}
		khg_puts(&g->t, "0\r\n");
		if (!rnd(g, 3))
			put_field(g, "x-trailer", "t");
		khg_puts(&g->t, "\r\n");
		return;
	case 9: case 10:
		/* read to the close (last only) */
		khg_puts(&g->t, "\r\n");
		if (!head)
			put_body(g, n);
		return;
	default:
		put_field(g, "transfer-encoding", "gzip");
		khg_puts(&g->t, "\r\n");
		if (!head)
			put_body(g, n);
		return;
	}
}

/* What the engine makes of the stream. */
#define MAX_HEADS 64

struct ref {
	size_t ends[MAX_RESP];	/* offset after each final response */
	size_t hstart[MAX_HEADS];	/* where each head starts (1xx ones too) */
	size_t hresp[MAX_HEADS];	/* ... the response it belongs to */
	size_t nr_heads;
	size_t nr;		/* final responses it framed */
	int stop;		/* 0: all framed; 1: close-delimited; 2: refused; 3: other
				   coding; 4: the stream ends inside a response */
};

static void engine_frames(const char *buf, size_t len, const bool *head, size_t nr_req,
			  struct ref *out)
{
	static struct h1_head h;
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	while (out->nr < nr_req && off < len) {
		struct h1_scan scan = { 0 };
		struct h1_str m = { head[out->nr] ? "HEAD" : "GET", head[out->nr] ? 4 : 3 };
		long n = h1_head_end(buf + off, len - off, NULL, &scan);

		if (out->nr_heads < MAX_HEADS) {
			out->hstart[out->nr_heads] = off;
			out->hresp[out->nr_heads++] = out->nr;
		}
		if (!n) {
			out->stop = 4;
			return;
		}
		if (n < 0 || h1_parse_response(buf + off, (size_t)n, &m, &h)) {
			out->stop = 2;
			return;
		}
		off += (size_t)n;
		if (h.status == 101) {
			out->stop = 2;
			return;
		}
		if (h.status < 200)
			continue;
		if (h.body == H1_BODY_LENGTH) {
			if (h.content_length > len - off) {
				out->stop = 4;
				return;
			}
			off += h.content_length;
		} else if (h.body == H1_BODY_CHUNKED) {
			struct h1_chunked c = { 0 };
			long k = h1_chunked_scan(&c, buf + off, len - off, NULL, NULL);

			if (k < 0 || !c.done) {
				out->stop = k < 0 ? 2 : 4;
				return;
			}
			off += (size_t)k;
		} else if (h.body == H1_BODY_CLOSE) {
			const struct h1_header *te = h1_header_get(&h, "transfer-encoding");

			out->stop = te ? 3 : 1;
			return;
		}
		out->ends[out->nr++] = off;
	}
}

struct run {
	struct test_khttp_resp_bpf *skel;
	int state_fd, prog_fd;
	unsigned long streams, pieces, responses, conservative, refused_framed, closes, failures;
	unsigned long stops;
};

static bool kernel_piece(struct run *r, const char *p, size_t n, struct rscratch *st)
{
	char pkt[14 + 2048] = { 0 };
	uint32_t zero = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = 14 + n);

	int err;

	memcpy(pkt + 14, p, n);
	err = bpf_map_update_elem(r->state_fd, &zero, st, BPF_ANY);
	if (!err)
		err = bpf_prog_test_run_opts(r->prog_fd, &o);
	if (!err)
		err = bpf_map_lookup_elem(r->state_fd, &zero, st);
	if (err)
		test__printf("  a %zu-byte skb: %s (retval %u, state %u unframed %u seq %u)\n", n,
			     strerror(errno), o.retval, st->r.state, st->unframed, st->r.resp_seq);
	return !err;
}

static void show(const char *buf, size_t len)
{
	test__printf("  stream (%zu bytes): %.*s\n", len, (int)(len < 600 ? len : 600), buf);
}

static void one_stream(struct run *r, uint64_t seed)
{
	struct gen g = { .t.len = 0, .rng = seed };
	struct rscratch st;
	struct ref ref;
	bool head[MAX_RESP];
	size_t nr_req = 1 + rnd(&g, MAX_RESP), off = 0;
	bool ok = true, beyond = false;

	for (size_t i = 0; i < nr_req; i++) {
		head[i] = !rnd(&g, 8);
		gen_response(&g, head[i], i == nr_req - 1);
	}
	engine_frames(g.t.buf, g.t.len, head, nr_req, &ref);
	memset(&st, 0, sizeof(st));
	st.req_seq = (uint32_t)nr_req;
	for (size_t i = 0; i < nr_req; i++)
		if (head[i])
			st.head_bits |= 1u << i;
	/*
	 * Half the streams with response edits (same-node servers): the walk
	 * must stop exactly at every head of an edited response that does not
	 * start the piece, the rest then comes as a piece of its own.
	 */
	if (rnd(&g, 2))
		st.edit_bits = (uint32_t)rnd(&g, 1u << nr_req);
	r->streams++;
	while (off < g.t.len && ok) {
		size_t n = 1 + rnd(&g, rnd(&g, 4) ? 1400 : 40), done = 0, start = off;

		if (n > g.t.len - off)
			n = g.t.len - off;
		if (!ASSERT_TRUE(kernel_piece(r, g.t.buf + off, n, &st), "test run")) {
			ok = false;
			break;
		}
		r->pieces++;
		if (st.stop) {
			r->stops++;
			if (st.stop >= n) {
				test__printf("kernel: stop at %u of a %zu-byte piece\n", st.stop, n);
				ok = false;
			}
			n = st.stop;
		}
		/* a stop is at a head of an edited response (where the engine frames too) */
		if (st.stop && !(ref.stop == 2 && st.r.resp_seq >= ref.nr)) {
			bool at_head = false;

			for (size_t i = 0; i < ref.nr_heads; i++)
				at_head |= ref.hstart[i] == start + n &&
					   (st.edit_bits & (1u << ref.hresp[i]));
			if (!at_head) {
				test__printf("kernel: stop at %zu (seq %u of %u, bits %x), no head to edit there; "
					     "engine stop %d nr %zu heads %zu:", start + n, st.r.resp_seq,
					     st.req_seq, st.edit_bits, ref.stop, ref.nr, ref.nr_heads);
				for (size_t i = 0; i < ref.nr_heads; i++)
					test__printf(" %zu@%zu", ref.hresp[i], ref.hstart[i]);
				test__printf("\n");
				ok = false;
			}
		}
		/* every head of an edited response inside the piece, not at its start: the stop */
		for (size_t i = 0; ok && i < ref.nr_heads; i++) {
			size_t hs = ref.hstart[i];

			if (hs <= start || hs > start + n || !(st.edit_bits & (1u << ref.hresp[i])) ||
			    st.unframed || (ref.stop == 2 && ref.hresp[i] >= ref.nr))
				continue;
			if (hs < start + n || !st.stop) {
				if (hs == start + n && !st.stop)
					continue;	/* the piece ends where the head starts */
				test__printf("kernel: head of response %zu at %zu not stopped at "
					     "(piece %zu+%zu, stop %u)\n", ref.hresp[i], hs, start,
					     n, st.stop);
				ok = false;
			} else if (st.r.resp_seq != ref.hresp[i]) {
				test__printf("kernel: stopped at response %u's head, engine %zu\n",
					     st.r.resp_seq, ref.hresp[i]);
				ok = false;
			}
		}
		off = start + n;
		/* past a head the engine refuses (a 502 there): counted, not compared */
		if (ref.stop == 2 && st.r.resp_seq > ref.nr) {
			beyond = true;
			break;
		}
		if (st.unframed)
			break;
		for (size_t i = 0; i < ref.nr; i++)
			done += ref.ends[i] <= off;
		if (st.r.resp_seq != done) {
			test__printf("kernel: %u responses complete after %zu bytes, engine %zu\n",
				     st.r.resp_seq, off, done);
			ok = false;
		}
	}
	if (ok && beyond) {
		r->refused_framed++;
	} else if (ok && st.unframed) {
		/* where the kernel stopped framing: response st.r.resp_seq */
		bool engine_close = st.r.resp_seq == ref.nr && ref.stop == 1;

		if (st.close && !engine_close) {
			test__printf("kernel: close-delimited at response %u, engine stop %d (%zu framed)\n",
				     st.r.resp_seq, ref.stop, ref.nr);
			ok = false;
		} else if (!st.close && engine_close) {
			test__printf("kernel: unframed, not close-delimited, at response %u\n",
				     st.r.resp_seq);
			ok = false;
		} else if (st.close) {
			r->closes++;
		} else {
			r->conservative++;
		}
	} else if (ok) {
		/* framed to the end: the engine framed just as far, and refused nothing in it */
		if (st.r.resp_seq != ref.nr) {
			test__printf("kernel framed %u responses, engine %zu (stop %d)\n",
				     st.r.resp_seq, ref.nr, ref.stop);
			ok = false;
		} else if (ref.stop == 1 || ref.stop == 3) {
			test__printf("kernel framed what the engine reads to the close\n");
			ok = false;
		}
	}
	r->responses += st.r.resp_seq;
	if (!ok) {
		r->failures++;
		test__fail();
		show(g.t.buf, g.t.len);
	}
}

void test_khttp_resp(void)
{
	struct run r = { 0 };

	r.skel = test_khttp_resp_bpf__open_and_load();
	if (!ASSERT_OK_PTR(r.skel, "load"))
		return;
	if (!ASSERT_EQ(bpf_map__value_size(r.skel->maps.kh_resp_state), sizeof(struct rscratch),
		       "struct kh_rscratch"))
		goto out;
	r.state_fd = bpf_map__fd(r.skel->maps.kh_resp_state);
	r.prog_fd = bpf_program__fd(r.skel->progs.kh_resp_run);
	for (uint64_t s = 1; s <= STREAMS && r.failures < 5; s++)
		one_stream(&r, s * 0x9e3779b97f4a7c15ULL);
	test__printf("%lu streams in %lu skbs: %lu responses framed as the engine frames them, "
		     "%lu close-delimited as the engine's, %lu left unframed (never reused), "
		     "%lu framed past a head the engine refuses; %lu stops before a head to edit\n",
		     r.streams, r.pieces, r.responses, r.closes, r.conservative, r.refused_framed,
		     r.stops);
	ASSERT_EQ(r.failures, 0, "disagreements");
out:
	test_khttp_resp_bpf__destroy(r.skel);
}
