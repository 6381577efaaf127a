// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/2 cleartext in the engine (nghttp2): a client connection that opens
 * with the HTTP/2 preface (prior knowledge) or asks for Upgrade: h2c becomes
 * an nghttp2 server session, and every stream on it is one request, decided
 * alone with ev_evaluate() on the same class table as HTTP/1.1: weights per
 * call, GRPCRoute service/method/header matches, header filters. A stream
 * that goes to a backend is sent on an upstream HTTP/2 connection to the
 * chosen endpoint, pooled per (endpoint, client netns) and multiplexed.
 *
 * Flow control is end to end and per stream: both sessions run without
 * automatic WINDOW_UPDATE, a DATA frame's bytes wait in the stream's buffer
 * (at most H2_STREAM_WINDOW each way, the window we advertise) and are
 * acknowledged to their sender only when the other side's session took them
 * for sending. A stream whose reader is slow fills its own window and stops
 * its own sender; the connection window (H2_MAX_STREAMS windows) never runs
 * out first, so no other stream stalls. Memory: two buffers per stream,
 * H2_MAX_STREAMS streams per client connection.
 *
 * Local answers of gRPC calls (content-type application/grpc*) are HTTP 200
 * with grpc-status in a trailers-only response: UNIMPLEMENTED where HTTP
 * says 404, UNAVAILABLE for 502/503 (no endpoint, upstream gone),
 * DEADLINE_EXCEEDED when the rule's timeout passes. RST_STREAM is passed on
 * both ways (CANCEL to the upstream when the client resets); an upstream's
 * GOAWAY takes its connection out of the pool and its refused streams are
 * answered UNAVAILABLE (503) when no response had started.
 *
 * Upstream protocol: the backend port's appProtocol decides. "http" and
 * "kubernetes.io/http" get HTTP/1.1 (one request per pooled connection of
 * the HTTP/1.1 side, see the end of this file); anything else, "grpc",
 * "kubernetes.io/h2c" or none, HTTP/2 with prior knowledge.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "engine_int.h"
#include "base/log.h"
#include "input/gapi.h"
#include "input/k8s.h"

#define H2_STREAM_WINDOW	(64 * 1024)	/* per stream and direction: its buffer */
#define H2_MAX_STREAMS		128		/* concurrent streams per client connection */
#define H2_CONN_WINDOW		(H2_STREAM_WINDOW * H2_MAX_STREAMS)
#define H2_HEADERS_MAX		256		/* fields of one header block */
#define H2_READ_CHUNK		(16 * 1024)

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* gRPC status codes (grpc/status.h). */
enum {
	GRPC_INTERNAL_ = 13, GRPC_UNKNOWN_ = 2, GRPC_DEADLINE_ = 4, GRPC_UNIMPLEMENTED_ = 12,
	GRPC_UNAVAILABLE_ = 14,
};

/*
 * Header fields of one block. Names and values live in blocks of an arena
 * (one allocation for most blocks, not two per field), NUL-terminated.
 */
struct hblk {
	struct hblk *next;
	size_t used, cap;
	char data[];
};

struct hlist {
	nghttp2_nv *nv;
	size_t nr, cap;
	struct hblk *blk;
	struct eng_mem *m;		/* the loop's blocks hold nv and blk */
};

/* Body bytes of one stream and direction, at most H2_STREAM_WINDOW; grows as needed. */
struct sbuf {
	uint8_t *p;
	size_t off, len, cap;
};

#define SBUF_MIN 512

struct h2conn {
	enum eobj_kind kind;		/* EOBJ_H2; first, for epoll data */
	struct engine *e;
	int fd;
	bool upstream;			/* we are its client; else a client's server */
	bool dead, connected, rd_ready, wr_ready, eof, goaway;
	bool rd_hup;			/* epoll said RDHUP/HUP/ERR: read to EOF */
	bool lingering;			/* a client's: written out, shut down, drained to EOF */
	int err;
	nghttp2_session *s;
	struct engine_origin origin;	/* a client connection's */
	struct eng_tables *ctab;	/* the tables its last stream used (a reference) */
	const struct tr_port *cport;	/* and its Service port there */
	struct ukey key;		/* an upstream's */
	size_t nr_streams;		/* open streams of ours on it */
	/*
	 * The stream of the last frame: a header block calls back once per
	 * field, and a stream lookup is a hash probe in nghttp2. Cleared when
	 * that stream leaves this connection (client_closed, upstream_closed).
	 */
	struct h2stream *hst;
	int32_t hst_id;			/* 0: none */
	uint8_t *pend;			/* what mem_send gave and send() did not take */
	size_t pend_off, pend_len, pend_cap;
	bool dirty;
	struct h2conn *dnext;		/* the dirty list */
	struct h2conn *next, *prev;	/* all connections */
	uint64_t since;			/* ms: connect started, or last stream ended */
};

struct h2stream {
	struct h2conn *cc, *uc;		/* client and upstream connection, NULL: closed */
	int32_t cid, uid;
	struct eng_tables *tab;
	struct hlist req, resp, trail;
	struct sbuf up, down;		/* client -> upstream, upstream -> client */
	bool grpc, head;
	bool req_eos, resp_eos;		/* each side's END_STREAM seen */
	bool resp_got;			/* the upstream's final response head */
	bool resp_sent;			/* response HEADERS submitted to the client */
	bool up_deferred, down_deferred;
	bool local;			/* answered here */
	const struct gapi_filter *rf[2];	/* ResponseHeaderModifier: rule's, backendRef's */
	size_t nr_rf[2];
	uint64_t deadline;		/* ms, 0: none */
	const struct tr_entry *entry;
	const struct tr_backend *backend;
	int status;
	uint64_t t_start, t_up_sent, t_up_head;
	struct h2stream *next, *prev;
	/* an HTTP/1.1 upstream (the backend's appProtocol says so) instead of uc */
	struct uconn *h1;
	struct h1_scan h1scan;
	struct h1_chunked h1ch;
	enum h1_body h1body;
	uint64_t h1left;
	bool h1_chunked_req, h1_req_done, h1_close, h1_kicked;
	struct h2stream *knext;		/* the kick list: an exchange to move on */
	/* an HTTP/1.1 client's request (instead of cc) to an HTTP/2 upstream */
	struct cconn *hc;
	bool hc_head_out, hc_chunked, hc_done, hc_cut;
};

struct eng_h2 {
	struct h2conn *conns;
	struct h2conn *dirty;
	struct h2conn *dead;
	struct h2stream *streams;
	struct h2stream *kick;
	nghttp2_session_callbacks *cb_server, *cb_client;
	nghttp2_option *opt;
	nghttp2_mem mem;		/* the loop's small blocks (engine_mem.c) */
};

static void h1_detach(struct engine *e, struct h2stream *st, bool reuse);
static void h1_kick(struct engine *e, struct h2stream *st);
static void hc_kick(struct engine *e, struct h2stream *st);
static int h1_start(struct engine *e, struct h2stream *st, const struct ukey *k,
		    const struct ev_result *r, const char *method, const char *auth);

/* ---- small pieces -------------------------------------------------------- */

/* Under glibc's large-request size: those consolidate the fast bins. */
#define HBLK_SIZE (480 - sizeof(struct hblk))

static char *hlist_mem(struct hlist *h, size_t n)
{
	struct hblk *b = h->blk;

	if (!b || b->cap - b->used < n) {
		size_t cap = n > HBLK_SIZE ? n : HBLK_SIZE;

		b = eng_mem_alloc(h->m, sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = h->blk;
		h->blk = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

/* lower: n may have uppercase letters (not a field nghttp2 received, which has none). */
static int hlist_addl(struct hlist *h, const char *n, size_t nl, const char *v, size_t vl,
		      bool lower)
{
	char *p;

	if (h->nr == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		nghttp2_nv *nv;

		if (h->nr >= H2_HEADERS_MAX)
			return -E2BIG;
		nv = eng_mem_realloc(h->m, h->nv, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->nv = nv;
		h->cap = cap;
	}
	p = hlist_mem(h, nl + vl + 2);
	if (!p)
		return -ENOMEM;
	/* HTTP/2 field names are lowercase; filters may name them otherwise. */
	if (lower) {
		for (size_t i = 0; i < nl; i++)
			p[i] = (n[i] >= 'A' && n[i] <= 'Z') ? n[i] + 32 : n[i];
	} else {
		memcpy(p, n, nl);
	}
	p[nl] = 0;
	memcpy(p + nl + 1, v, vl);
	p[nl + 1 + vl] = 0;
	h->nv[h->nr++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)p + nl + 1, nl, vl,
				       NGHTTP2_NV_FLAG_NONE };
	return 0;
}

static int hlist_add(struct hlist *h, const char *n, size_t nl, const char *v, size_t vl)
{
	return hlist_addl(h, n, nl, v, vl, true);
}

static int hlist_adds(struct hlist *h, const char *n, const char *v)
{
	return hlist_add(h, n, strlen(n), v, strlen(v));
}

static void hlist_free(struct hlist *h)
{
	struct eng_mem *m = h->m;

	while (h->blk) {
		struct hblk *b = h->blk;

		h->blk = b->next;
		eng_mem_release(m, b);
	}
	eng_mem_release(m, h->nv);
	memset(h, 0, sizeof(*h));
	h->m = m;
}

static void nv_put(nghttp2_nv *nv, size_t *nr, const char *n, const char *v)
{
	nv[(*nr)++] = (nghttp2_nv){ (uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v),
				    NGHTTP2_NV_FLAG_NONE };
}

/* name: lowercase, as every name in a list is. */
static const char *hlist_get(const struct hlist *h, const char *name)
{
	for (size_t i = 0; i < h->nr; i++)
		if (!strcmp((const char *)h->nv[i].name, name))
			return (const char *)h->nv[i].value;
	return NULL;
}

static void hlist_remove(struct hlist *h, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; i < h->nr; i++)
		if (strcasecmp((const char *)h->nv[i].name, name))
			h->nv[j++] = h->nv[i];
	h->nr = j;
}

/* Fields HTTP/2 forbids (RFC 9113 8.2.2) or that are this hop's. */
static bool conn_specific(const char *n, const char *v)
{
	switch (n[0] | 0x20) {
	case 'c':
		return !strcasecmp(n, "connection");
	case 'h':
		return !strcasecmp(n, "host") || !strcasecmp(n, "http2-settings");
	case 'k':
		return !strcasecmp(n, "keep-alive");
	case 'p':
		return !strcasecmp(n, "proxy-connection");
	case 't':
		if (!strcasecmp(n, "te"))
			return strcasecmp(v, "trailers");
		return !strcasecmp(n, "transfer-encoding");
	case 'u':
		return !strcasecmp(n, "upgrade");
	default:
		return false;
	}
}

static bool field_clean(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n' || *s == 0)
			return false;
	return true;
}

static int sbuf_put(struct engine *e, struct sbuf *b, const uint8_t *d, size_t n)
{
	if (b->len + n > H2_STREAM_WINDOW)
		return -ENOSPC;
	if (b->off + b->len + n > b->cap && b->off) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : SBUF_MIN;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > H2_STREAM_WINDOW)
			cap = H2_STREAM_WINDOW;
		p = eng_mem_realloc(e->mem, b->p, cap);
		if (!p)
			return -ENOMEM;
		eng_stat_add(e, &e->st.buffer_bytes, cap - b->cap);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->off + b->len, d, n);
	b->len += n;
	return 0;
}

static void sbuf_take(struct sbuf *b, uint8_t *out, size_t n)
{
	memcpy(out, b->p + b->off, n);
	b->off += n;
	b->len -= n;
	if (!b->len)
		b->off = 0;
}

static void sbuf_free(struct engine *e, struct sbuf *b)
{
	if (b->p)
		eng_stat_add(e, &e->st.buffer_bytes, -(int64_t)b->cap);
	eng_mem_release(e->mem, b->p);
	memset(b, 0, sizeof(*b));
}

static void mark_dirty(struct engine *e, struct h2conn *h)
{
	if (!h || h->dead || h->dirty)
		return;
	h->dirty = true;
	h->dnext = e->h2->dirty;
	e->h2->dirty = h;
}

/* The stream of frame id on h's session (see hst). */
static struct h2stream *st_of(struct h2conn *h, int32_t id)
{
	struct h2stream *st;

	if (id && id == h->hst_id)
		return h->hst;
	st = nghttp2_session_get_stream_user_data(h->s, id);
	if (st) {
		h->hst = st;
		h->hst_id = id;
	}
	return st;
}

static void st_forget(struct h2conn *h, const struct h2stream *st)
{
	if (h && h->hst == st)
		h->hst_id = 0;
}

static int grpc_code(int status)
{
	switch (status) {
	case 404: return GRPC_UNIMPLEMENTED_;
	case 400: case 500: return GRPC_INTERNAL_;
	case 429: case 502: case 503: return GRPC_UNAVAILABLE_;
	case 504: return GRPC_DEADLINE_;
	default: return GRPC_UNKNOWN_;
	}
}

static const char *grpc_message(int status)
{
	switch (status) {
	case 404: return "no route matches the call";
	case 500: return "the route's backends are misconfigured";
	case 502: return "upstream reset or unreachable";
	case 503: return "no healthy upstream";
	case 504: return "the route's timeout passed";
	default: return "answered by the mesh";
	}
}

/* ---- streams ------------------------------------------------------------- */

static void st_unlink(struct engine *e, struct h2stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		e->h2->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
}

static void st_log(struct engine *e, struct h2stream *st, bool complete)
{
	struct engine_request_log l = {
		.entry = st->entry,
		.backend = st->backend,
		.status = st->status,
		.complete = complete,
	};

	if (!st->cc)
		return;
	l.origin = &st->cc->origin;
	l.request_us = e->now_us - st->t_start;
	/* at least 1: it had an upstream (one turn may send and see the answer) */
	if (st->t_up_sent && st->t_up_head)
		l.upstream_us = st->t_up_head > st->t_up_sent ? st->t_up_head - st->t_up_sent : 1;
	/* every call is a request in the per-request metrics too */
	eng_metrics_count(e->metrics, st->tab, &l);
	if (e->o.on_request)
		e->o.on_request(e->o.ctx, &l);
}

static void st_maybe_free(struct engine *e, struct h2stream *st)
{
	if (st->cc || st->uc || st->h1 || st->hc)
		return;
	if (st->h1_kicked) {
		struct h2stream **pp = &e->h2->kick;

		while (*pp && *pp != st)
			pp = &(*pp)->knext;
		if (*pp)
			*pp = st->knext;
	}
	st_unlink(e, st);
	hlist_free(&st->req);
	hlist_free(&st->resp);
	hlist_free(&st->trail);
	sbuf_free(e, &st->up);
	sbuf_free(e, &st->down);
	eng_tables_put(st->tab);
	eng_mem_release(e->mem, st);
}

static void down_resume(struct engine *e, struct h2stream *st)
{
	hc_kick(e, st);
	if (st->cc && st->down_deferred) {
		st->down_deferred = false;
		nghttp2_session_resume_data(st->cc->s, st->cid);
		mark_dirty(e, st->cc);
	}
}

static void up_resume(struct engine *e, struct h2stream *st)
{
	if (st->h1)
		h1_kick(e, st);
	if (st->uc && st->uid && st->up_deferred) {
		st->up_deferred = false;
		nghttp2_session_resume_data(st->uc->s, st->uid);
		mark_dirty(e, st->uc);
	}
}

/* Client-bound body: the upstream's bytes, then its trailers or the end. */
static ssize_t down_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2stream *st = src->ptr;
	struct h2conn *h = ud;
	size_t n = st->down.len < len ? st->down.len : len;

	if (n) {
		sbuf_take(&st->down, buf, n);
		if (st->uc) {
			/* Taken for the client: the upstream may send as much again. */
			nghttp2_session_consume(st->uc->s, st->uid, n);
			mark_dirty(h->e, st->uc);
		}
		if (st->h1)
			h1_kick(h->e, st);	/* room for more of its body */
	}
	if (!st->down.len && st->resp_eos) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->trail.nr) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, id, st->trail.nv, st->trail.nr))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return n;
	}
	if (!n) {
		st->down_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

/* Upstream-bound body: the client's bytes, then the end. */
static ssize_t up_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2stream *st = src->ptr;
	struct h2conn *h = ud;
	size_t n = st->up.len < len ? st->up.len : len;

	if (n) {
		sbuf_take(&st->up, buf, n);
		if (st->cc) {
			nghttp2_session_consume(st->cc->s, st->cid, n);
			mark_dirty(h->e, st->cc);
		}
		hc_kick(h->e, st);	/* room for more of an HTTP/1.1 client's body */
	}
	if (!st->up.len && st->req_eos) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return n;
	}
	if (!n) {
		st->up_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

/* What is buffered for a side that will not read it goes back to its sender's window. */
static void drop_up(struct engine *e, struct h2stream *st)
{
	if (st->cc && st->up.len) {
		nghttp2_session_consume(st->cc->s, st->cid, st->up.len);
		mark_dirty(e, st->cc);
	}
	sbuf_free(e, &st->up);
}

/*
 * An answer of our own. gRPC: 200 with grpc-status and grpc-message in one
 * HEADERS frame (trailers-only); else the status with a short text body.
 */
static void st_local(struct engine *e, struct h2stream *st, int status, const char *location,
		     const struct ev_headers *extra)
{
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = down_read };
	struct hlist h = { .m = e->mem };
	char num[16], body[64];
	int blen, ret = 0;

	if (!st->cc && !st->hc)
		return;
	if (st->uc && st->uid) {
		nghttp2_submit_rst_stream(st->uc->s, NGHTTP2_FLAG_NONE, st->uid, NGHTTP2_CANCEL);
		mark_dirty(e, st->uc);
	}
	h1_detach(e, st, false);
	drop_up(e, st);
	if (st->hc) {
		/* written by hc_step(), or a reset when the head is out already */
		if (!st->resp_sent)
			st->status = status;
		st->hc_cut = st->resp_sent;
		st->local = st->resp_sent = st->resp_eos = true;
		hc_kick(e, st);
		return;
	}
	if (st->resp_sent) {
		/* Too late for an answer: the client learns from a reset. */
		nghttp2_submit_rst_stream(st->cc->s, NGHTTP2_FLAG_NONE, st->cid,
					  status == 504 ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
		mark_dirty(e, st->cc);
		return;
	}
	st->status = status;
	st->backend = NULL;
	st->local = st->resp_sent = st->resp_eos = true;
	sbuf_free(e, &st->down);
	hlist_free(&st->trail);
	if (st->grpc) {
		snprintf(num, sizeof(num), "%d", grpc_code(status));
		ret |= hlist_adds(&h, ":status", "200");
		ret |= hlist_adds(&h, "content-type", "application/grpc");
		ret |= hlist_adds(&h, "grpc-status", num);
		ret |= hlist_adds(&h, "grpc-message", grpc_message(status));
	} else {
		snprintf(num, sizeof(num), "%d", status);
		ret |= hlist_adds(&h, ":status", num);
		for (size_t i = 0; extra && i < extra->nr; i++)
			if (field_clean(extra->items[i].value) &&
			    !conn_specific(extra->items[i].name, extra->items[i].value) &&
			    strcasecmp(extra->items[i].name, "content-length"))
				ret |= hlist_adds(&h, extra->items[i].name, extra->items[i].value);
		if (location)
			ret |= hlist_adds(&h, "location", location);
		blen = snprintf(body, sizeof(body), "%d\n", status);
		ret |= hlist_adds(&h, "content-type", "text/plain");
		snprintf(num, sizeof(num), "%d", st->head ? 0 : blen);
		ret |= hlist_adds(&h, "content-length", num);
		if (!st->head)
			ret |= sbuf_put(e, &st->down, (const uint8_t *)body, blen);
	}
	if (!ret)
		ret = nghttp2_submit_response(st->cc->s, st->cid, h.nv, h.nr,
					      st->grpc || st->head ? NULL : &prd);
	/* What the client still sends is read and dropped (c_data). */
	if (ret)
		nghttp2_submit_rst_stream(st->cc->s, NGHTTP2_FLAG_NONE, st->cid,
					  NGHTTP2_INTERNAL_ERROR);
	hlist_free(&h);
	mark_dirty(e, st->cc);
	eng_stat_add(e, &e->st.requests, 1);
}

/* ---- upstream connections ------------------------------------------------ */

static int settings_submit(nghttp2_session *s, bool server)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	int ret = nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, server ? 2 : 3);

	return ret ? ret : nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0,
								 H2_CONN_WINDOW);
}

static void conn_link(struct engine *e, struct h2conn *h)
{
	h->next = e->h2->conns;
	if (h->next)
		h->next->prev = h;
	e->h2->conns = h;
}

static bool ukey_same(const struct ukey *a, const struct ukey *b)
{
	return a->addr.family == b->addr.family && a->port == b->port &&
	       a->netns_ctx == b->netns_ctx &&
	       !memcmp(a->addr.addr, b->addr.addr, a->addr.family == AF_INET ? 4 : 16);
}

/* A connection to k with room for another stream, or a new one. */
static struct h2conn *upstream_get(struct engine *e, const struct ukey *k)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct h2conn *h;
	int fd;

	for (h = e->h2->conns; h; h = h->next) {
		uint32_t max;

		if (!h->upstream || h->dead || h->goaway || !ukey_same(&h->key, k))
			continue;
		max = nghttp2_session_get_remote_settings(h->s,
							  NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		if (max > H2_MAX_STREAMS)
			max = H2_MAX_STREAMS;
		if (h->nr_streams < max && nghttp2_session_check_request_allowed(h->s)) {
			eng_stat_add(e, &e->st.upstream_reused, 1);
			return h;
		}
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->kind = EOBJ_H2;
	h->e = e;
	h->upstream = true;
	h->key = *k;
	h->since = e->now;
	fd = eng_connect(e, k, &h->connected);
	if (fd < 0) {
		free(h);
		errno = -fd;
		return NULL;
	}
	h->fd = fd;
	if (nghttp2_session_client_new3(&h->s, e->h2->cb_client, h, e->h2->opt, &e->h2->mem) ||
	    settings_submit(h->s, false)) {
		if (h->s)
			nghttp2_session_del(h->s);
		close(fd);
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	ev.data.ptr = h;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = errno;

		nghttp2_session_del(h->s);
		close(fd);
		free(h);
		errno = err;
		return NULL;
	}
	conn_link(e, h);
	eng_stat_add(e, &e->st.upstreams, 1);
	return h;
}

static void upstream_closed(struct engine *e, struct h2stream *st, uint32_t err);

static void conn_close(struct engine *e, struct h2conn *h)
{
	struct h2stream *st, *next;

	if (h->dead)
		return;
	/* Streams first: what they hand back still goes through h's session. */
	for (st = e->h2->streams; st; st = next) {
		next = st->next;
		if (h->upstream && st->uc == h) {
			/* never connected: refused (503); lost under it: an error (502, or a reset) */
			upstream_closed(e, st, h->connected ? NGHTTP2_INTERNAL_ERROR :
					       NGHTTP2_REFUSED_STREAM);
		} else if (!h->upstream && st->cc == h) {
			if (st->uc && st->uid) {
				nghttp2_submit_rst_stream(st->uc->s, NGHTTP2_FLAG_NONE, st->uid,
							  NGHTTP2_CANCEL);
				mark_dirty(e, st->uc);
			}
			h1_detach(e, st, false);
			st_log(e, st, false);
			st->cc = NULL;
			st_maybe_free(e, st);
		}
	}
	h->dead = true;
	close(h->fd);
	h->fd = -1;
	eng_tables_put(h->ctab);
	h->ctab = NULL;
	nghttp2_session_del(h->s);
	h->s = NULL;
	free(h->pend);
	h->pend = NULL;
	if (h->prev)
		h->prev->next = h->next;
	else
		e->h2->conns = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next = e->h2->dead;
	e->h2->dead = h;
	eng_stat_add(e, h->upstream ? &e->st.upstreams : &e->st.clients, -1);
}

/* The upstream stream is over (closed, reset, or its connection gone). */
static void upstream_closed(struct engine *e, struct h2stream *st, uint32_t err)
{
	struct h2conn *u = st->uc;

	if (!u)
		return;
	st_forget(u, st);
	/* What still waits for the client no longer holds the upstream's window. */
	if (st->down.len && u->s)
		nghttp2_session_consume_connection(u->s, st->down.len);
	mark_dirty(e, u);
	st->uc = NULL;
	st->uid = 0;
	if (!--u->nr_streams)
		u->since = e->now;
	if (!st->cc && !st->hc) {
		st_maybe_free(e, st);
		return;
	}
	if (st->hc && st->resp_sent && !st->resp_eos) {
		st->hc_cut = true;	/* cut short after its head: the client's connection */
		hc_kick(e, st);
		return;
	}
	if (st->resp_eos) {
		/* The response is whole: what the client still sends goes nowhere. */
		drop_up(e, st);
		return;
	}
	if (!st->resp_sent) {
		st_local(e, st, err == NGHTTP2_REFUSED_STREAM ? 503 : 502, NULL, NULL);
		return;
	}
	/* Cut short after its head: the client sees the upstream's reset. */
	drop_up(e, st);
	nghttp2_submit_rst_stream(st->cc->s, NGHTTP2_FLAG_NONE, st->cid,
				  err ? err : NGHTTP2_INTERNAL_ERROR);
	mark_dirty(e, st->cc);
}

/* The client's stream is over. */
static void client_closed(struct engine *e, struct h2stream *st, uint32_t err)
{
	struct h2conn *c = st->cc;

	st_forget(c, st);
	if (st->uc && st->uid) {
		nghttp2_submit_rst_stream(st->uc->s, NGHTTP2_FLAG_NONE, st->uid,
					  st->resp_eos ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
		mark_dirty(e, st->uc);
	}
	h1_detach(e, st, false);	/* still attached: its exchange is not over */
	drop_up(e, st);
	st_log(e, st, !err && st->resp_eos);
	if (!--c->nr_streams)
		c->since = e->now;
	st->cc = NULL;
	st->cid = 0;
	st_maybe_free(e, st);
}

/* The upstream's final response head goes to the client, filtered. */
static void respond(struct engine *e, struct h2stream *st)
{
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = down_read };
	const char *status = hlist_get(&st->resp, ":status");
	struct hlist *h = &st->resp;
	int ret = 0;

	if (!st->cc && !st->hc)
		return;
	st->status = status ? atoi(status) : 502;
	for (int k = 0; k < 2 && !ret; k++) {
		for (size_t i = 0; i < st->nr_rf[k] && !ret; i++) {
			const struct gapi_filter *f = &st->rf[k][i];
			const struct gapi_header_mod *m = &f->header_mod;

			if (f->type != FILTER_RESPONSE_HEADER)
				continue;
			for (size_t j = 0; j < m->nr_set && !ret; j++) {
				if (!field_clean(m->set[j].value) ||
				    conn_specific(m->set[j].name, m->set[j].value) ||
				    m->set[j].name[0] == ':')
					continue;
				hlist_remove(h, m->set[j].name);
				ret = hlist_adds(h, m->set[j].name, m->set[j].value);
			}
			for (size_t j = 0; j < m->nr_add && !ret; j++)
				if (field_clean(m->add[j].value) &&
				    !conn_specific(m->add[j].name, m->add[j].value) &&
				    m->add[j].name[0] != ':')
					ret = hlist_adds(h, m->add[j].name, m->add[j].value);
			for (size_t j = 0; j < m->nr_remove; j++)
				if (m->remove[j][0] != ':')
					hlist_remove(h, m->remove[j]);
		}
	}
	if (!ret && st->hc) {
		/* hc_step() writes the HTTP/1.1 head when the client's buffer has room */
		st->resp_sent = true;
		hc_kick(e, st);
		eng_stat_add(e, &e->st.requests, 1);
		return;
	}
	if (!ret)
		ret = nghttp2_submit_response(st->cc->s, st->cid, h->nv, h->nr,
					      st->resp_eos && !st->down.len ? NULL : &prd);
	if (ret) {
		st_local(e, st, 502, NULL, NULL);
		return;
	}
	st->resp_sent = true;
	mark_dirty(e, st->cc);
	eng_stat_add(e, &e->st.requests, 1);
}

static bool app_protocol_http1(const struct tr_backend *b)
{
	const char *ap = b->endpoints && b->endpoints->port ? b->endpoints->port->app_protocol : NULL;

	return ap && (!strcasecmp(ap, "http") || !strcasecmp(ap, "kubernetes.io/http"));
}

/* "/pkg.Service/Method" -> its two parts; false when the path is not that. */
static bool grpc_path(const char *path, char *svc, size_t sl, char *meth, size_t ml)
{
	const char *slash;

	if (path[0] != '/')
		return false;
	slash = strchr(path + 1, '/');
	if (!slash || slash == path + 1 || !slash[1] || strchr(slash + 1, '/') ||
	    strchr(slash + 1, '?') || (size_t)(slash - path - 1) >= sl || strlen(slash + 1) >= ml)
		return false;
	memcpy(svc, path + 1, slash - path - 1);
	svc[slash - path - 1] = 0;
	strcpy(meth, slash + 1);
	return true;
}

/* A request head is complete: decide the stream and send it on. */
static void route(struct engine *e, struct h2stream *st)
{
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = up_read };
	const char *method = NULL, *path = NULL, *auth = NULL, *ct = NULL, *authority;
	bool has_host = false;
	const struct tr_endpoint *ep;
	const struct tr_port *port;
	const struct tr_class *cls;
	struct ev_header *hdrs = NULL;
	struct ev_request req = { 0 };
	struct ev_result r = { 0 };
	nghttp2_nv *nv;
	size_t nnv = 0;
	char svc[256], meth[256], host[256];
	struct h2conn *u;
	struct ukey k;
	int32_t id;
	size_t nr = 0;

	/* The fields route() reads, the first of each name, in one pass (as hlist_get finds). */
	for (size_t i = 0; i < st->req.nr; i++) {
		const char *n = (const char *)st->req.nv[i].name, *v = (const char *)st->req.nv[i].value;

		if (n[0] == ':') {
			if (!method && !strcmp(n, ":method"))
				method = v;
			else if (!path && !strcmp(n, ":path"))
				path = v;
			else if (!auth && !strcmp(n, ":authority"))
				auth = v;
		} else if (!ct && !strcmp(n, "content-type")) {
			ct = v;
		} else if (!has_host && !strcmp(n, "host")) {
			has_host = true;
		}
	}
	st->grpc = ct && !strncasecmp(ct, "application/grpc", 16);
	st->head = method && !strcmp(method, "HEAD");
	if (!method || !path || !strcmp(method, "CONNECT")) {
		st_local(e, st, 501, NULL, NULL);
		return;
	}
	st->tab = eng_tables_get(e);
	/* The port of a connection's ClusterIP changes only with the tables. */
	if (st->tab != st->cc->ctab) {
		eng_tables_put(st->cc->ctab);
		st->cc->ctab = st->tab;
		if (st->tab)
			__atomic_add_fetch(&st->tab->refs, 1, __ATOMIC_RELAXED);
		st->cc->cport = eng_tables_port(st->tab, &st->cc->origin);
	}
	port = st->cc->cport;
	if (!port) {
		st_local(e, st, 503, NULL, NULL);
		return;
	}
	cls = tr_port_class(port, st->cc->origin.client_ns);
	hdrs = eng_mem_alloc(e->mem, (st->req.nr + 1) * sizeof(*hdrs));
	if (!hdrs) {
		st_local(e, st, 500, NULL, NULL);
		return;
	}
	for (size_t i = 0; i < st->req.nr; i++)
		if (st->req.nv[i].name[0] != ':')
			hdrs[nr++] = (struct ev_header){ (const char *)st->req.nv[i].name,
							 (const char *)st->req.nv[i].value };
	/* :authority is HTTP/1.1's Host: what Host matches and hostname rewrites see. */
	if (auth && !has_host)
		hdrs[nr++] = (struct ev_header){ "host", auth };
	req.method = method;
	req.target = path;
	req.headers = hdrs;
	req.nr_headers = nr;
	req.scheme = "http";
	if (auth) {
		const char *colon = strrchr(auth, ':');
		size_t hl = colon && !strchr(colon, ']') ? (size_t)(colon - auth) : strlen(auth);

		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, auth, hl);
		host[hl] = 0;
		req.host = host;
	}
	req.port = st->cc->origin.vport;
	if (grpc_path(path, svc, sizeof(svc), meth, sizeof(meth))) {
		req.grpc_service = svc;
		req.grpc_method = meth;
	}
	if (ev_evaluate(cls, &req, eng_random(e), &r)) {
		eng_mem_release(e->mem, hdrs);
		st_local(e, st, 500, NULL, NULL);
		return;
	}
	eng_mem_release(e->mem, hdrs);
	st->entry = r.entry;
	if (r.status >= 300 && r.status < 400) {
		st_local(e, st, r.redirect.location && field_clean(r.redirect.location) ?
			 r.status : 500, r.redirect.location, &r.response_headers);
		goto out;
	}
	if (r.status != 200) {
		st_local(e, st, r.status, NULL, &r.response_headers);
		goto out;
	}
	if (!r.backend->endpoints || !r.backend->endpoints->nr) {
		st_local(e, st, 503, NULL, &r.response_headers);
		goto out;
	}
	ep = eng_affinity_pick(e, &st->cc->origin, r.backend);
	k = (struct ukey){ .addr = ep->addr, .port = ep->port,
			   .netns_ctx = st->cc->origin.netns_ctx };
	if (app_protocol_http1(r.backend)) {
		int status = h1_start(e, st, &k, &r, method, auth);

		if (status) {
			st_local(e, st, status, NULL, &r.response_headers);
			goto out;
		}
		goto sent;
	}
	u = upstream_get(e, &k);
	if (!u) {
		pr_debug("engine: %s: upstream %s/%s: %s", st->cc->origin.client_pod,
			 r.backend->namespace, r.backend->name, strerror(errno));
		st_local(e, st, 503, NULL, &r.response_headers);
		goto out;
	}
	authority = ev_header_get(&r.request_headers, "host");
	/*
	 * The fields point into r and st->req: nghttp2_submit_request copies
	 * them (and lowercases the names, which filters may spell otherwise),
	 * so no copy of our own first.
	 */
	nv = eng_mem_alloc(e->mem, (4 + r.request_headers.nr) * sizeof(*nv));
	if (!nv) {
		st_local(e, st, 503, NULL, &r.response_headers);
		goto out;
	}
	nv_put(nv, &nnv, ":method", method);
	nv_put(nv, &nnv, ":scheme", "http");
	if (authority || auth)
		nv_put(nv, &nnv, ":authority", authority ? authority : auth);
	nv_put(nv, &nnv, ":path", r.target);
	for (size_t i = 0; i < r.request_headers.nr; i++) {
		const struct ev_kv *kv = &r.request_headers.items[i];

		if (kv->name[0] == ':' || conn_specific(kv->name, kv->value) ||
		    !field_clean(kv->value))
			continue;
		nv_put(nv, &nnv, kv->name, kv->value);
	}
	id = nnv > H2_HEADERS_MAX ? -1 : nghttp2_submit_request(u->s, NULL, nv, nnv,
							      st->req_eos ? NULL : &prd, st);
	eng_mem_release(e->mem, nv);
	if (id < 0) {
		st_local(e, st, 503, NULL, &r.response_headers);
		goto out;
	}
	st->uc = u;
	st->uid = id;
	u->nr_streams++;
	mark_dirty(e, u);
sent:
	st->backend = r.backend;
	st->deadline = eng_rule_deadline(e, r.entry);
	st->t_up_sent = e->now_us;
	if (r.entry) {
		st->rf[0] = r.entry->rule->rule->filters;
		st->nr_rf[0] = r.entry->rule->rule->nr_filters;
	}
	if (r.backend->ref) {
		st->rf[1] = r.backend->ref->filters;
		st->nr_rf[1] = r.backend->ref->nr_filters;
	}
out:
	ev_result_free(&r);
}

/* ---- nghttp2 callbacks: the client side (we are the server) --------------- */

static struct h2stream *st_new(struct engine *e, struct h2conn *c, int32_t id)
{
	struct h2stream *st = eng_mem_zalloc(e->mem, sizeof(*st));

	if (!st)
		return NULL;
	st->req.m = st->resp.m = st->trail.m = e->mem;
	st->cc = c;
	st->cid = id;
	st->t_start = e->now_us;
	c->nr_streams++;
	st->next = e->h2->streams;
	if (st->next)
		st->next->prev = st;
	e->h2->streams = st;
	nghttp2_session_set_stream_user_data(c->s, id, st);
	return st;
}

static int c_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	h->hst = st_new(h->e, h, f->hd.stream_id);
	h->hst_id = h->hst ? f->hd.stream_id : 0;
	return h->hst ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct h2stream *st;

	/* A request's trailers are dropped: nothing on the way needs them. */
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    !(st = st_of(ud, f->hd.stream_id)))
		return 0;
	return hlist_addl(&st->req, (const char *)n, nl, (const char *)v, vl, false) ?
	       NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int c_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st;

	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = st_of(h, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		st->req_eos = true;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		route(h->e, st);
	else
		up_resume(h->e, st);
	return 0;
}

static int c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
		  void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st = st_of(h, id);

	if (!st || ((!st->uc || !st->uid) && !st->h1) || st->local) {
		/* Nobody reads it: its window goes back at once. */
		nghttp2_session_consume(s, id, len);
		mark_dirty(h->e, h);
		return 0;
	}
	if (sbuf_put(h->e, &st->up, d, len)) {
		nghttp2_session_consume(s, id, len);
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
		mark_dirty(h->e, h);
		return 0;
	}
	up_resume(h->e, st);
	return 0;
}

static int c_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st = st_of(h, id);

	if (st)
		client_closed(h->e, st, err);
	return 0;
}

/* ---- nghttp2 callbacks: the upstream side (we are the client) ------------- */

static int u_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct h2stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || !(st = st_of(ud, f->hd.stream_id)))
		return 0;
	return hlist_addl(st->resp_got ? &st->trail : &st->resp, (const char *)n, nl,
			  (const char *)v, vl, false) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int u_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st;

	if (f->hd.type == NGHTTP2_GOAWAY) {
		/* No new streams here; the refused ones close with REFUSED_STREAM. */
		h->goaway = true;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = st_of(h, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !st->resp_got) {
		const char *status = hlist_get(&st->resp, ":status");

		if (status && status[0] == '1') {
			hlist_free(&st->resp);	/* interim: not passed on */
			return 0;
		}
		st->resp_got = true;
		st->t_up_head = h->e->now_us;
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			st->resp_eos = true;
		respond(h->e, st);
		return 0;
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		st->resp_eos = true;
	down_resume(h->e, st);
	return 0;
}

static int u_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
		  void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st = st_of(h, id);

	if (!st || (!st->cc && !st->hc) || st->local) {
		nghttp2_session_consume(s, id, len);
		mark_dirty(h->e, h);
		return 0;
	}
	if (sbuf_put(h->e, &st->down, d, len)) {
		nghttp2_session_consume(s, id, len);
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
		mark_dirty(h->e, h);
		return 0;
	}
	down_resume(h->e, st);
	return 0;
}

static int u_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct h2conn *h = ud;
	struct h2stream *st = st_of(h, id);

	if (st && st->uc == h)
		upstream_closed(h->e, st, err);
	return 0;
}

/* ---- connections: I/O ---------------------------------------------------- */

static int pend_put(struct h2conn *h, const uint8_t *d, size_t n)
{
	if (h->pend_off + h->pend_len + n > h->pend_cap) {
		if (h->pend_off) {
			memmove(h->pend, h->pend + h->pend_off, h->pend_len);
			h->pend_off = 0;
		}
		if (h->pend_len + n > h->pend_cap) {
			size_t cap = h->pend_len + n + 16384;
			uint8_t *p = realloc(h->pend, cap);

			if (!p)
				return -ENOMEM;
			h->pend = p;
			h->pend_cap = cap;
		}
	}
	memcpy(h->pend + h->pend_off + h->pend_len, d, n);
	h->pend_len += n;
	return 0;
}

#define H2_SEND_BATCH (64 * 1024)	/* frames gathered for one send() */

static void conn_flush(struct engine *e, struct h2conn *h)
{
	if (h->dead || h->lingering || (h->upstream && !h->connected))
		return;
	for (;;) {
		bool more = true;

		while (h->pend_len < H2_SEND_BATCH) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(h->s, &d);

			if (n < 0) {
				pr_debug("engine: http/2 %s: %s", h->upstream ? "upstream" : "client",
					 nghttp2_strerror(n));
				conn_close(e, h);
				return;
			}
			if (!n) {
				more = false;
				break;
			}
			if (pend_put(h, d, n)) {
				conn_close(e, h);
				return;
			}
		}
		while (h->pend_len) {
			ssize_t n;

			if (!h->wr_ready)
				return;
			n = send(h->fd, h->pend + h->pend_off, h->pend_len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					h->wr_ready = false;
					return;
				}
				if (errno == EINTR)
					continue;
				conn_close(e, h);
				return;
			}
			h->pend_off += n;
			h->pend_len -= n;
			if (!h->pend_len)
				h->pend_off = 0;
		}
		if (!more)
			break;
	}
	/* GOAWAY both ways and every stream done: nothing left to say. */
	if (nghttp2_session_want_read(h->s) || nghttp2_session_want_write(h->s))
		return;
	if (h->upstream) {
		conn_close(e, h);
		return;
	}
	/*
	 * A close with the client's bytes unread (its last WINDOW_UPDATEs)
	 * would send an RST, and an RST can destroy the end of our answer in
	 * the client's receive queue: shut down writing, drain to EOF first.
	 */
	shutdown(h->fd, SHUT_WR);
	h->lingering = true;
	h->since = e->now;
}

static void h1_pump(struct engine *e, struct h2stream *st);

static void flush_dirty(struct engine *e)
{
	while (e->h2->kick) {
		struct h2stream *st = e->h2->kick;

		e->h2->kick = st->knext;
		st->h1_kicked = false;
		h1_pump(e, st);
	}
	while (e->h2->dirty) {
		struct h2conn *h = e->h2->dirty;

		e->h2->dirty = h->dnext;
		h->dirty = false;
		conn_flush(e, h);
	}
}

static void conn_read(struct engine *e, struct h2conn *h)
{
	uint8_t buf[H2_READ_CHUNK];

	while (h->rd_ready && !h->dead && !h->eof && !h->err) {
		ssize_t n = recv(h->fd, buf, sizeof(buf), 0);

		/*
		 * A short read emptied the socket (edge-triggered: new bytes
		 * bring a new event), unless a hang-up was seen, whose EOF a
		 * further read must find. Saves a recv() that says EAGAIN per
		 * event.
		 */
		if (n > 0 && (size_t)n < sizeof(buf) && !h->rd_hup)
			h->rd_ready = false;
		if (n > 0 && h->lingering)
			continue;	/* drained, not read */
		if (n > 0) {
			ssize_t rv = nghttp2_session_mem_recv(h->s, buf, n);

			if (rv < 0) {
				pr_debug("engine: http/2 %s: %s", h->upstream ? "upstream" : "client",
					 nghttp2_strerror(rv));
				h->err = EPROTO;
			}
			continue;
		}
		if (!n) {
			h->eof = true;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			h->rd_ready = false;
		} else if (errno != EINTR) {
			h->err = errno;
		}
	}
}

void eng_h2_event(struct engine *e, void *obj, bool rd, bool wr, bool hup)
{
	struct h2conn *h = obj;

	if (h->dead)
		return;
	h->rd_hup |= hup;
	h->rd_ready |= rd;
	h->wr_ready |= wr;
	if (h->upstream && !h->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &l))
			err = errno;
		if (err) {
			conn_close(e, h);
			flush_dirty(e);
			return;
		}
		if (!h->wr_ready)
			return;
		h->connected = true;
	}
	conn_read(e, h);
	if (h->err == EPROTO)
		conn_flush(e, h);	/* its GOAWAY, if nghttp2 queued one */
	if (!h->dead && (h->eof || h->err))
		conn_close(e, h);
	else
		mark_dirty(e, h);
	/* What it made to send goes at the end of the loop's turn (eng_h2_reap),
	 * so the frames of every event of the batch share the send() calls. */
}

/* ---- taking a client connection ------------------------------------------ */

enum eng_h2_sniff eng_h2_sniff(const struct ebuf *in)
{
	size_t n = in->len < sizeof(h2_preface) - 1 ? in->len : sizeof(h2_preface) - 1;

	if (memcmp(in->p + in->off, h2_preface, n))
		return H2_NOT;
	return n == sizeof(h2_preface) - 1 ? H2_PREFACE : H2_MAYBE;
}

static bool has_token(const struct h1_str *v, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= v->len; i++) {
		if (strncasecmp(v->p + i, tok, tl))
			continue;
		if ((i == 0 || v->p[i - 1] == ',' || v->p[i - 1] == ' ') &&
		    (i + tl == v->len || v->p[i + tl] == ',' || v->p[i + tl] == ' '))
			return true;
	}
	return false;
}

static const struct h1_str *h1_field(const struct h1_head *h, const char *name)
{
	for (size_t i = 0; i < h->nr_headers; i++)
		if (h1_str_ieq(&h->headers[i].name, name))
			return &h->headers[i].value;
	return NULL;
}

bool eng_h2_upgrade_wanted(const struct h1_head *h)
{
	const struct h1_str *up;

	if (!h->upgrade || h->minor != 1 || !h1_field(h, "HTTP2-Settings"))
		return false;
	if (h->body != H1_BODY_NONE && !(h->body == H1_BODY_LENGTH && !h->content_length))
		return false;	/* the body would have to be read first: stay HTTP/1.1 */
	up = h1_field(h, "Upgrade");
	return up && has_token(up, "h2c");
}

/* base64url without padding (RFC 7540 3.2.1); length or -1. */
static ssize_t b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0;

	for (size_t i = 0; i < n; i++) {
		int v;
		char ch = s[i];

		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '-' || ch == '+')
			v = 62;
		else if (ch == '_' || ch == '/')
			v = 63;
		else if (ch == '=')
			break;
		else
			return -1;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = acc >> bits & 0xff;
		}
	}
	return o;
}

static void *h2_malloc(size_t n, void *m) { return eng_mem_alloc(m, n); }
static void h2_free(void *p, void *m) { eng_mem_release(m, p); }
static void *h2_realloc(void *p, size_t n, void *m) { return eng_mem_realloc(m, p, n); }

static void *h2_calloc(size_t nmemb, size_t n, void *m)
{
	if (n && nmemb > SIZE_MAX / n)
		return NULL;
	return eng_mem_zalloc(m, nmemb * n);
}

static int h2_state(struct engine *e)
{
	struct eng_h2 *s;
	nghttp2_session_callbacks *cb;

	if (e->h2)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s || nghttp2_option_new(&s->opt))
		goto fail;
	s->mem = (nghttp2_mem){ e->mem, h2_malloc, h2_free, h2_calloc, h2_realloc };
	/* Windows move only when the other side took the bytes: see the top. */
	nghttp2_option_set_no_auto_window_update(s->opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(s->opt, H2_MAX_STREAMS);
	/*
	 * A server session keeps closed streams for RFC 7540's priority tree
	 * (deprecated by RFC 9113, and the engine schedules nothing by it):
	 * bookkeeping on every call for nothing.
	 */
	nghttp2_option_set_no_closed_streams(s->opt, 1);
	if (nghttp2_session_callbacks_new(&s->cb_server))
		goto fail;
	cb = s->cb_server;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_stream_close);
	if (nghttp2_session_callbacks_new(&s->cb_client))
		goto fail;
	cb = s->cb_client;
	nghttp2_session_callbacks_set_on_header_callback(cb, u_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, u_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, u_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, u_stream_close);
	e->h2 = s;
	return 0;
fail:
	if (s) {
		nghttp2_session_callbacks_del(s->cb_server);
		nghttp2_session_callbacks_del(s->cb_client);
		nghttp2_option_del(s->opt);
	}
	free(s);
	return -ENOMEM;
}

/* Stream 1 of an upgraded connection: the HTTP/1.1 request, in HTTP/2 fields. */
static int upgrade_stream(struct engine *e, struct h2conn *h, const struct h1_head *hd,
			  struct h2stream **out)
{
	const struct h1_str *hs = h1_field(hd, "HTTP2-Settings");
	uint8_t settings[256];
	ssize_t sl = b64url_decode(hs->p, hs->len, settings, sizeof(settings));
	struct h2stream *st;
	int ret = 0;

	if (sl < 0)
		return -EINVAL;
	if (nghttp2_session_upgrade2(h->s, settings, sl, h1_str_eq(&hd->method, "HEAD"), NULL))
		return -EINVAL;
	st = st_new(e, h, 1);
	if (!st)
		return -ENOMEM;
	st->req_eos = true;
	ret |= hlist_add(&st->req, ":method", 7, hd->method.p, hd->method.len);
	ret |= hlist_adds(&st->req, ":scheme", "http");
	if (hd->host.len)
		ret |= hlist_add(&st->req, ":authority", 10, hd->host.p, hd->host.len);
	ret |= hlist_add(&st->req, ":path", 5, hd->path.p, hd->path.len);
	for (size_t i = 0; i < hd->nr_headers && !ret; i++) {
		const struct h1_header *x = &hd->headers[i];
		char n[64], v[16];

		snprintf(n, sizeof(n), "%.*s", (int)x->name.len, x->name.p);
		snprintf(v, sizeof(v), "%.*s", (int)x->value.len, x->value.p);
		if (conn_specific(n, v))
			continue;
		ret = hlist_add(&st->req, x->name.p, x->name.len, x->value.p, x->value.len);
	}
	*out = st;
	return ret ? -ENOMEM : 0;
}

void eng_h2_take(struct engine *e, struct cconn *c, const struct h1_head *hd, size_t head_len)
{
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				 "Upgrade: h2c\r\n\r\n";
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct h2stream *st = NULL;
	struct h2conn *h;

	if (h2_state(e) || !(h = calloc(1, sizeof(*h)))) {
		eng_client_close(e, c, true);
		return;
	}
	h->kind = EOBJ_H2;
	h->e = e;
	h->fd = c->fd;
	h->origin = c->origin;
	h->connected = true;
	h->rd_ready = c->rd_ready;
	h->rd_hup = c->rd_hup;
	h->wr_ready = c->wr_ready;
	h->since = e->now;
	ev.data.ptr = h;
	if (nghttp2_session_server_new3(&h->s, e->h2->cb_server, h, e->h2->opt, &e->h2->mem) ||
	    settings_submit(h->s, true) ||
	    (hd && (pend_put(h, (const uint8_t *)sw, sizeof(sw) - 1) ||
		    upgrade_stream(e, h, hd, &st))) ||
	    epoll_ctl(e->epfd, EPOLL_CTL_MOD, h->fd, &ev)) {
		pr_debug("engine: %s: cannot start HTTP/2", c->origin.client_pod);
		if (st) {
			st->cc = NULL;
			st_maybe_free(e, st);
		}
		if (h->s)
			nghttp2_session_del(h->s);
		free(h->pend);
		free(h);
		eng_client_close(e, c, true);
		return;
	}
	conn_link(e, h);
	eng_stat_add(e, &e->st.clients, 1);
	/* What the client sent after the preface's start (or the upgrade's head). */
	if (c->in.len > head_len &&
	    nghttp2_session_mem_recv(h->s, (const uint8_t *)c->in.p + c->in.off + head_len,
				     c->in.len - head_len) < 0)
		h->err = EPROTO;
	if (st)
		route(e, st);
	/* The socket is h's now: c goes without closing it. */
	c->fd = -1;
	eng_client_close(e, c, false);
	conn_read(e, h);
	if (!h->dead && (h->eof || h->err))
		conn_close(e, h);
	else
		mark_dirty(e, h);
	flush_dirty(e);
}

/* ---- timers and teardown ------------------------------------------------- */

void eng_h2_timers(struct engine *e)
{
	struct h2stream *st;
	struct h2conn *h, *next;

	if (!e->h2)
		return;
	for (st = e->h2->streams; st; st = st->next) {
		if (st->h1 && !st->h1->connected &&
		    e->now - st->h1->since >= e->o.connect_timeout_ms) {
			st_local(e, st, 503, NULL, NULL);
			continue;
		}
		if (!st->deadline || e->now < st->deadline || (!st->cc && !st->hc) || st->resp_eos)
			continue;
		st->deadline = 0;
		st_local(e, st, 504, NULL, NULL);
	}
	for (h = e->h2->conns; h; h = next) {
		next = h->next;
		if (h->lingering) {
			if (e->now - h->since >= ENGINE_LINGER_MS)
				conn_close(e, h);
			continue;
		}
		if (h->upstream && !h->connected) {
			/* A connect that never finishes fails its streams (503). */
			if (e->now - h->since >= e->o.connect_timeout_ms)
				conn_close(e, h);
			continue;
		}
		if (h->nr_streams)
			continue;
		if (h->upstream && e->now - h->since >= e->o.pool_idle_ms) {
			conn_close(e, h);
		} else if (!h->upstream && !h->goaway && e->now - h->since >= e->o.idle_timeout_ms) {
			h->goaway = true;
			nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
			mark_dirty(e, h);
		}
	}
	flush_dirty(e);
}

void eng_h2_forget(struct engine *e, void *netns_ctx)
{
	struct h2conn *h, *next;

	if (!e->h2)
		return;
	for (h = e->h2->conns; h; h = next) {
		next = h->next;
		if (h->upstream ? h->key.netns_ctx == netns_ctx : h->origin.netns_ctx == netns_ctx)
			conn_close(e, h);
	}
	flush_dirty(e);
}

void eng_h2_reap(struct engine *e)
{
	if (!e->h2)
		return;
	flush_dirty(e);
	while (e->h2->dead) {
		struct h2conn *h = e->h2->dead;

		e->h2->dead = h->next;
		free(h);
	}
}

void eng_h2_close_all(struct engine *e)
{
	struct eng_h2 *s = e->h2;

	if (!s)
		return;
	/* Clients first: their streams' upstream halves are reset, then closed. */
	for (int pass = 0; pass < 2; pass++) {
		struct h2conn *h, *next;

		for (h = s->conns; h; h = next) {
			next = h->next;
			if (h->upstream == (pass == 1))
				conn_close(e, h);
		}
	}
	s->dirty = NULL;
	eng_h2_reap(e);
	nghttp2_session_callbacks_del(s->cb_server);
	nghttp2_session_callbacks_del(s->cb_client);
	nghttp2_option_del(s->opt);
	free(s);
	e->h2 = NULL;
}

/* ---- HTTP/2 streams to HTTP/1.1 upstreams (appProtocol http) ------------- */

/*
 * A stream whose backend port says HTTP/1.1 ("http", "kubernetes.io/http")
 * is one request on a pooled HTTP/1.1 connection of the HTTP/1.1 side
 * (eng_upstream_get, uconn.h2 pointing back here): the head re-serialized
 * from the fields (:authority as Host), the body as it comes (chunked unless
 * the client gave a content-length); the response head parsed by http1.h
 * into HTTP/2 fields without the hop-by-hop ones, its body decoded from its
 * framing into DATA. Windows: the client's bytes are acknowledged as they
 * go into the upstream's buffer, the upstream is read only while the
 * stream's buffer has room. Chunked trailers are not passed on; a pooled
 * connection found closed is not retried (the call gets 502).
 */

static void h1_kick(struct engine *e, struct h2stream *st)
{
	if (!st->h1 || st->h1_kicked)
		return;
	st->h1_kicked = true;
	st->knext = e->h2->kick;
	e->h2->kick = st;
}

static void h1_detach(struct engine *e, struct h2stream *st, bool reuse)
{
	struct uconn *u = st->h1;

	if (!u)
		return;
	st->h1 = NULL;
	u->h2 = NULL;
	eng_upstream_release(e, u, reuse);
}

static int h1_line(struct ebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int h1_line(struct ebuf *b, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line))
		return -E2BIG;
	return ebuf_append(b, line, n);
}

static int h1_start(struct engine *e, struct h2stream *st, const struct ukey *k,
		    const struct ev_result *r, const char *method, const char *auth)
{
	const char *host = ev_header_get(&r->request_headers, "host");
	bool has_len = hlist_get(&st->req, "content-length");
	struct uconn *u = eng_upstream_get(e, k, NULL, false);
	int ret;

	if (!u)
		return 503;
	u->h2 = st;
	st->h1 = u;
	ret = h1_line(&u->out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, r->target,
		      host ? host : auth ? auth : "");
	for (size_t i = 0; i < r->request_headers.nr && !ret; i++) {
		const struct ev_kv *kv = &r->request_headers.items[i];

		if (kv->name[0] == ':' || conn_specific(kv->name, kv->value) ||
		    !field_clean(kv->value))
			continue;
		ret = h1_line(&u->out, "%s: %s\r\n", kv->name, kv->value);
	}
	st->h1_chunked_req = !st->req_eos && !has_len;
	if (!ret && st->h1_chunked_req)
		ret = h1_line(&u->out, "Transfer-Encoding: chunked\r\n");
	if (!ret)
		ret = ebuf_append(&u->out, "\r\n", 2);
	if (ret) {
		h1_detach(e, st, false);
		return 502;
	}
	st->h1_req_done = st->req_eos && !st->up.len;
	h1_kick(e, st);
	return 0;
}

static void h1_fail(struct engine *e, struct h2stream *st)
{
	h1_detach(e, st, false);
	if (!st->resp_sent) {
		st_local(e, st, 502, NULL, NULL);
	} else if (!st->resp_eos && st->cc) {
		nghttp2_submit_rst_stream(st->cc->s, NGHTTP2_FLAG_NONE, st->cid,
					  NGHTTP2_INTERNAL_ERROR);
		mark_dirty(e, st->cc);
	}
}

struct h1_chunk_ctx {
	struct engine *e;
	struct h2stream *st;
};

static void h1_on_chunk(void *ctx, const char *p, size_t n)
{
	struct h1_chunk_ctx *c = ctx;

	/* fits: decoded data is shorter than its coding, which fit the room */
	sbuf_put(c->e, &c->st->down, (const uint8_t *)p, n);
}

/* The response head: HTTP/2 fields, then respond(). false: not a response. */
static bool h1_response_head(struct engine *e, struct h2stream *st, struct uconn *u, long n)
{
	const char *m = hlist_get(&st->req, ":method");
	struct h1_str method = { m ? m : "GET", m ? strlen(m) : 3 };
	struct h1_head *hd = malloc(sizeof(*hd));
	char num[8];
	int ret;

	if (!hd || h1_parse_response(u->in.p + u->in.off, n, &method, hd) || hd->status == 101) {
		free(hd);
		return false;
	}
	ebuf_consume(&u->in, n);
	memset(&st->h1scan, 0, sizeof(st->h1scan));
	if (hd->status < 200) {
		free(hd);
		return true;	/* interim: not passed on */
	}
	hlist_free(&st->resp);
	snprintf(num, sizeof(num), "%u", hd->status);
	ret = hlist_adds(&st->resp, ":status", num);
	for (size_t i = 0; i < hd->nr_headers && !ret; i++) {
		const struct h1_header *x = &hd->headers[i];
		char name[64];

		if (x->name.len >= sizeof(name))
			continue;
		memcpy(name, x->name.p, x->name.len);
		name[x->name.len] = 0;
		/* hop-by-hop (and what Connection names, as far as it matters here) */
		if (conn_specific(name, "") || !strcasecmp(name, "te") ||
		    (hd->body != H1_BODY_LENGTH && !strcasecmp(name, "content-length")))
			continue;
		ret = hlist_add(&st->resp, name, x->name.len, x->value.p, x->value.len);
	}
	st->h1body = hd->body;
	st->h1left = hd->content_length;
	st->h1_close = !hd->keep_alive || hd->body == H1_BODY_CLOSE;
	free(hd);
	if (ret)
		return false;
	st->resp_got = true;
	st->t_up_head = e->now_us;
	if (st->h1body == H1_BODY_NONE || (st->h1body == H1_BODY_LENGTH && !st->h1left))
		st->resp_eos = true;
	respond(e, st);
	return true;
}

/* Move what can move between the stream's buffers and its HTTP/1.1 upstream. */
static void h1_pump(struct engine *e, struct h2stream *st)
{
	struct uconn *u = st->h1;
	bool moved = true;

	if (!u)
		return;
	if (!u->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!u->wr_ready && !u->rd_ready)
			return;
		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &l))
			err = errno;
		if (err) {
			h1_fail(e, st);
			return;
		}
		if (!u->wr_ready)
			return;
		u->connected = true;
	}
	while (moved && st->h1 == u) {
		moved = false;
		/* the client's body into the upstream's buffer */
		while (st->up.len && !st->h1_req_done) {
			size_t room = ebuf_room(&u->out), over = st->h1_chunked_req ? 32 : 0, k;
			char hx[24];

			if (room <= over)
				break;
			k = st->up.len < room - over ? st->up.len : room - over;
			if (st->h1_chunked_req) {
				int hl = snprintf(hx, sizeof(hx), "%zx\r\n", k);

				ebuf_append(&u->out, hx, hl);
			}
			sbuf_take(&st->up, (uint8_t *)u->out.p + u->out.off + u->out.len, k);
			u->out.len += k;
			if (st->h1_chunked_req)
				ebuf_append(&u->out, "\r\n", 2);
			if (st->cc) {
				nghttp2_session_consume(st->cc->s, st->cid, k);
				mark_dirty(e, st->cc);
			}
			moved = true;
		}
		if (!st->h1_req_done && st->req_eos && !st->up.len &&
		    (!st->h1_chunked_req || !ebuf_append(&u->out, "0\r\n\r\n", 5))) {
			st->h1_req_done = true;
			moved = true;
		}
		while (ebuf_send(u->fd, &u->out, &u->wr_ready, &u->err))
			moved = true;
		/* hup: no short-read shortcut here, read until EAGAIN */
		moved |= ebuf_recv(u->fd, &u->in, &u->rd_ready, true, &u->eof, &u->err);
		if (!st->resp_got && u->in.len) {
			long hl = h1_head_end(u->in.p + u->in.off, u->in.len, &e->lim, &st->h1scan);

			if (hl < 0 || (hl > 0 && !h1_response_head(e, st, u, hl))) {
				h1_fail(e, st);
				return;
			}
			moved |= hl > 0;
			if (st->h1 != u)
				return;
		}
		if (st->resp_got && !st->resp_eos && u->in.len) {
			size_t room = H2_STREAM_WINDOW - st->down.len, k = u->in.len;
			long used;

			if (k > room)
				k = room;
			if (st->h1body == H1_BODY_LENGTH && k > st->h1left)
				k = st->h1left;
			if (st->h1body == H1_BODY_CHUNKED) {
				struct h1_chunk_ctx cc = { e, st };

				used = h1_chunked_scan(&st->h1ch, u->in.p + u->in.off, k, h1_on_chunk, &cc);
				if (used < 0) {
					h1_fail(e, st);
					return;
				}
				k = used;
				st->resp_eos = st->h1ch.done;
			} else if (k) {
				sbuf_put(e, &st->down, (const uint8_t *)u->in.p + u->in.off, k);
				if (st->h1body == H1_BODY_LENGTH && !(st->h1left -= k))
					st->resp_eos = true;
			}
			ebuf_consume(&u->in, k);
			if (k || st->resp_eos) {
				down_resume(e, st);
				moved = true;
			}
		}
		if (st->resp_got && !st->resp_eos && st->h1body == H1_BODY_CLOSE && u->eof &&
		    !u->in.len) {
			st->resp_eos = true;
			down_resume(e, st);
		}
	}
	if (st->h1 != u)
		return;
	if (st->resp_eos && st->h1_req_done && !u->out.len) {
		h1_detach(e, st, !st->h1_close && !u->in.len && !u->eof);
		return;
	}
	if (u->err || (u->eof && !st->resp_eos))
		h1_fail(e, st);
}

void eng_h2_h1_event(struct engine *e, struct uconn *u)
{
	h1_pump(e, u->h2);
}

void eng_h2_handoff(struct engine *e)
{
	struct h2conn *h;

	if (!e->h2)
		return;
	for (h = e->h2->conns; h; h = h->next) {
		if (h->upstream || h->goaway || h->dead)
			continue;
		h->goaway = true;
		nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(h->s),
				      NGHTTP2_NO_ERROR, NULL, 0);
		mark_dirty(e, h);
	}
}

/* ---- HTTP/1.1 clients to HTTP/2 upstreams (appProtocol h2c, grpc) -------- */

/*
 * The HTTP/1.1 side decided the request (start_request) and found the
 * backend port speaks HTTP/2 only: the request becomes a stream of a pooled
 * upstream HTTP/2 connection, the client connection waits in CS_H2 and
 * hc_step() (its state machine step) moves the body in (decoded from its
 * framing) and the response out (chunked unless it has a length; trailers
 * in the last chunk). A stream's events wake the client through the loop's
 * `again` list.
 */

static void hc_end(struct engine *e, struct cconn *c);

bool eng_h2_h1_wanted(const struct tr_backend *b)
{
	const char *ap = b->endpoints && b->endpoints->port ? b->endpoints->port->app_protocol : NULL;

	return ap && (!strcasecmp(ap, "kubernetes.io/h2c") || !strcasecmp(ap, "grpc"));
}

static void hc_kick(struct engine *e, struct h2stream *st)
{
	struct cconn *c = st->hc;

	if (c && !c->dead && !c->again) {
		c->again = true;
		e->nr_again++;
	}
}

int eng_h2_from_h1(struct engine *e, struct cconn *c, const struct h1_head *h,
		   const struct ev_result *r, const struct ukey *k)
{
	nghttp2_data_provider prd;
	const char *host = ev_header_get(&r->request_headers, "host");
	struct hlist out = { .m = e->mem };
	struct h2stream *st;
	struct h2conn *u;
	char auth[256];
	int ret = 0;

	if (h2_state(e))
		return 500;
	st = eng_mem_zalloc(e->mem, sizeof(*st));
	if (!st)
		return 500;
	st->req.m = st->resp.m = st->trail.m = e->mem;
	prd = (nghttp2_data_provider){ .source.ptr = st, .read_callback = up_read };
	st->t_start = e->now_us;
	st->next = e->h2->streams;
	if (st->next)
		st->next->prev = st;
	e->h2->streams = st;
	snprintf(auth, sizeof(auth), "%.*s", (int)h->host.len, h->host.p);
	ret |= hlist_adds(&out, ":method", c->method);
	ret |= hlist_adds(&out, ":scheme", "http");
	ret |= hlist_adds(&out, ":authority", host ? host : auth);
	ret |= hlist_adds(&out, ":path", r->target);
	for (size_t i = 0; i < r->request_headers.nr && !ret; i++) {
		const struct ev_kv *kv = &r->request_headers.items[i];

		if (kv->name[0] == ':' || conn_specific(kv->name, kv->value) ||
		    !strcasecmp(kv->name, "expect") || !field_clean(kv->value))
			continue;
		ret = hlist_adds(&out, kv->name, kv->value);
	}
	st->req_eos = c->req_done;
	u = ret ? NULL : upstream_get(e, k);
	st->uid = u ? nghttp2_submit_request(u->s, NULL, out.nv, out.nr,
					     st->req_eos ? NULL : &prd, st) : -1;
	hlist_free(&out);
	if (st->uid < 0) {
		st->uid = 0;
		st_maybe_free(e, st);
		return 503;
	}
	st->uc = u;
	u->nr_streams++;
	mark_dirty(e, u);
	st->hc = c;
	c->h2 = st;
	c->h2_end = hc_end;	/* a callback: engine_conn.c does not call into this file */
	c->state = CS_H2;
	/* The HTTP/2 side has no 100 Continue to pass on: the client gets it now. */
	if (c->expect_continue && !c->req_done)
		ebuf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	st->backend = r->backend;
	st->entry = r->entry;
	st->deadline = eng_rule_deadline(e, r->entry);
	st->t_up_sent = e->now_us;
	if (r->entry) {
		st->rf[0] = r->entry->rule->rule->filters;
		st->nr_rf[0] = r->entry->rule->rule->nr_filters;
	}
	if (r->backend->ref) {
		st->rf[1] = r->backend->ref->filters;
		st->nr_rf[1] = r->backend->ref->nr_filters;
	}
	return 0;
}

/* The client's request is over for the HTTP/2 side: detach, reset what is open. */
static void hc_detach(struct engine *e, struct h2stream *st)
{
	struct cconn *c = st->hc;

	if (!c)
		return;
	c->h2 = NULL;
	c->h2_end = NULL;
	st->hc = NULL;
	if (st->uc && st->uid) {
		nghttp2_submit_rst_stream(st->uc->s, NGHTTP2_FLAG_NONE, st->uid,
					  st->resp_eos ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
		mark_dirty(e, st->uc);
	}
	st_maybe_free(e, st);
}

static void hc_end(struct engine *e, struct cconn *c)
{
	if (c->h2)
		hc_detach(e, c->h2);
}

static const char *hc_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* The response head, whole or not at all. */
static bool hc_write_head(struct engine *e, struct h2stream *st, struct cconn *c)
{
	size_t mark = c->out.len;
	bool head = !strcmp(c->method, "HEAD"), has_len = hlist_get(&st->resp, "content-length");
	bool no_body = head || st->status == 204 || st->status == 304;
	int ret = h1_line(&c->out, "HTTP/1.1 %d %s\r\n", st->status, hc_reason(st->status));

	for (size_t i = 0; i < st->resp.nr && !ret; i++) {
		const char *n = (const char *)st->resp.nv[i].name;

		if (n[0] == ':' || (!no_body && !has_len && !strcmp(n, "content-length")))
			continue;
		ret = h1_line(&c->out, "%s: %s\r\n", n, (const char *)st->resp.nv[i].value);
	}
	if (!ret && !no_body && !has_len) {
		if (c->minor >= 1) {
			st->hc_chunked = true;
			ret = h1_line(&c->out, "Transfer-Encoding: chunked\r\n");
		} else {
			c->close_after = true;	/* HTTP/1.0: the close ends the body */
		}
	}
	if (!ret)
		ret = h1_line(&c->out, "%s\r\n", c->close_after ? "Connection: close\r\n" :
				       !c->minor ? "Connection: keep-alive\r\n" : "");
	if (ret) {
		c->out.len = mark;
		return false;
	}
	if (no_body)
		sbuf_free(e, &st->down);	/* nothing of it goes out */
	return true;
}

struct hc_body_ctx {
	struct engine *e;
	struct sbuf *b;
};

static void hc_on_body(void *ctx, const char *p, size_t n)
{
	struct hc_body_ctx *c = ctx;

	sbuf_put(c->e, c->b, (const uint8_t *)p, n);	/* fits: limited to the room */
}

bool eng_h2_h1_step(struct engine *e, struct cconn *c)
{
	struct h2stream *st = c->h2;
	bool moved = false;

	if (!st) {
		eng_client_close(e, c, true);
		return true;
	}
	/* the request body, decoded from its framing, into the stream's buffer */
	if (!c->req_done && c->in.len && !st->local) {
		size_t room = H2_STREAM_WINDOW - st->up.len, k = c->in.len < room ? c->in.len : room;

		if (c->req_body == H1_BODY_CHUNKED) {
			struct hc_body_ctx bc = { e, &st->up };
			long used = h1_chunked_scan(&c->req_ch, c->in.p + c->in.off, k, hc_on_body, &bc);

			if (used < 0) {
				eng_client_close(e, c, true);
				return true;
			}
			k = used;
			c->req_done = c->req_ch.done;
		} else {
			if (k > c->req_left)
				k = c->req_left;
			sbuf_put(e, &st->up, (const uint8_t *)c->in.p + c->in.off, k);
			c->req_left -= k;
			c->req_done = !c->req_left;
		}
		ebuf_consume(&c->in, k);
		st->req_eos = c->req_done;
		if (k || c->req_done) {
			up_resume(e, st);
			moved = true;
		}
	}
	if (st->hc_cut) {
		eng_client_close(e, c, true);
		return true;
	}
	if (st->local && !st->hc_head_out) {
		char body[16];
		int bl = snprintf(body, sizeof(body), "%d\n", st->status);

		/* what is left of the body is not read: the connection ends after this */
		if (!c->req_done)
			c->close_after = c->req_done = true;
		if (h1_line(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			    "Content-Length: %d\r\n%s\r\n%s", st->status, hc_reason(st->status), bl,
			    c->close_after ? "Connection: close\r\n" : "", body))
			return moved;
		st->hc_head_out = st->hc_done = true;
		moved = true;
	} else if (st->resp_sent && !st->hc_head_out) {
		if (!hc_write_head(e, st, c))
			return moved;
		st->hc_head_out = moved = true;
	}
	while (st->hc_head_out && !st->hc_done && st->down.len) {
		size_t room = ebuf_room(&c->out), over = st->hc_chunked ? 32 : 0, k;

		if (room <= over)
			break;
		k = st->down.len < room - over ? st->down.len : room - over;
		if (st->hc_chunked)
			h1_line(&c->out, "%zx\r\n", k);
		sbuf_take(&st->down, (uint8_t *)c->out.p + c->out.off + c->out.len, k);
		c->out.len += k;
		if (st->hc_chunked)
			ebuf_append(&c->out, "\r\n", 2);
		if (st->uc && st->uid) {
			nghttp2_session_consume(st->uc->s, st->uid, k);
			mark_dirty(e, st->uc);
		}
		moved = true;
	}
	if (st->hc_head_out && !st->hc_done && !st->down.len && st->resp_eos) {
		size_t mark = c->out.len;
		int ret = 0;

		if (st->hc_chunked) {
			ret = ebuf_append(&c->out, "0\r\n", 3);
			for (size_t i = 0; i < st->trail.nr && !ret; i++)
				ret = h1_line(&c->out, "%s: %s\r\n", (const char *)st->trail.nv[i].name,
					      (const char *)st->trail.nv[i].value);
			ret = ret ?: ebuf_append(&c->out, "\r\n", 2);
		}
		if (ret) {
			c->out.len = mark;
			return moved;
		}
		st->hc_done = moved = true;
	}
	if (st->hc_done && c->req_done) {
		c->resp_done = true;
		c->log_status = st->status;
		c->log_backend = st->local ? NULL : st->backend;
		c->t_up_sent = st->t_up_sent;
		c->t_up_head = st->t_up_head;
		hc_detach(e, st);
		eng_request_end(e, c, false);
		c->state = c->close_after ? CS_CLOSING : CS_HEAD;
		return true;
	}
	if (c->rd_eof && !c->in.len && !c->req_done) {
		eng_client_close(e, c, false);
		return true;
	}
	return moved;
}
