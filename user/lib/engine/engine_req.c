// SPDX-License-Identifier: Apache-2.0
/*
 * One client connection's state machine: read a request head, decide it
 * with ev_evaluate() on the class table of the Service port the client
 * dialed, answer it here or send it to an endpoint of the chosen backend,
 * then stream the body up and the response down. One request at a time per
 * connection: a pipelined request waits in the buffer until the response
 * before it is out, so responses leave in order.
 *
 * Every head that leaves is re-serialized from what the parser understood,
 * without the hop-by-hop fields (Connection and what it names, Keep-Alive,
 * Proxy-Connection, TE, Upgrade unless upgrading); bodies are forwarded as
 * they came (chunked stays chunked, with its trailers), only scanned for
 * their end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "engine_int.h"
#include "base/log.h"
#include "input/gapi.h"

/* ---- writing heads ------------------------------------------------------- */

struct wr {
	struct ebuf *b;
	bool fail;
};

static void put(struct wr *w, const char *p, size_t n)
{
	if (!w->fail && ebuf_append(w->b, p, n))
		w->fail = true;
}

static void puts_(struct wr *w, const char *s)
{
	put(w, s, strlen(s));
}

static void putf(struct wr *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct wr *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		w->fail = true;
	else
		put(w, tmp, n);
}

static void put_field(struct wr *w, const char *n, size_t nl, const char *v, size_t vl)
{
	put(w, n, nl);
	put(w, ": ", 2);
	put(w, v, vl);
	put(w, "\r\n", 2);
}

static bool name_ieq(const char *a, size_t al, const char *lit)
{
	return al == strlen(lit) && !strncasecmp(a, lit, al);
}

/* Does a Connection field of h name this field (it is then hop-by-hop)? */
static bool connection_names(const struct h1_head *h, const char *n, size_t nl)
{
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct h1_header *f = &h->headers[i];
		const char *p = f->value.p, *end = p + f->value.len;

		if (!h1_str_ieq(&f->name, "Connection"))
			continue;
		while (p < end) {
			const char *t;

			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			t = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p > t && (size_t)(p - t) == nl && !strncasecmp(t, n, nl))
				return true;
		}
	}
	return false;
}

/* Fields a proxy never forwards (RFC 9110 7.6.1), on both sides. */
static bool hop_by_hop(const char *n, size_t nl)
{
	return name_ieq(n, nl, "Connection") || name_ieq(n, nl, "Keep-Alive") ||
	       name_ieq(n, nl, "Proxy-Connection") || name_ieq(n, nl, "TE") ||
	       name_ieq(n, nl, "Upgrade");
}

/*
 * Fields that come from route filters (and the Location built from them)
 * are checked before they go out: the API only limits their length, and a
 * CR or LF in a value would let a route author inject fields or split a
 * message.
 */
static bool field_ok(const char *n, size_t nl, const char *v, size_t vl)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (!nl)
		return false;
	for (size_t i = 0; i < nl; i++) {
		unsigned char ch = n[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || (ch && strchr(tchar, ch))))
			return false;
	}
	for (size_t i = 0; i < vl; i++) {
		unsigned char ch = v[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

/* What a response filter may not touch: the message's framing and the hop's. */
static bool framing_field(const char *n)
{
	size_t nl = strlen(n);

	return hop_by_hop(n, nl) || name_ieq(n, nl, "Content-Length") ||
	       name_ieq(n, nl, "Transfer-Encoding");
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* ---- the replay: what went upstream, to send again or to mirror ---------- */

static void replay_drop(struct cconn *c)
{
	free(c->retry_head);
	c->retry_head = NULL;
	c->retry_len = c->retry_cap = c->retry_sent = 0;
	if (c->nr_mirror_refs)
		pr_debug("engine: %s: request not mirrored (body over %d bytes, or cut short)",
			 c->origin.client_pod, ENGINE_REPLAY_MAX);
	c->nr_mirror_refs = 0;
}

/* Bytes that just went into the upstream's buffer: keep them, within the limit. */
static void replay_add(struct cconn *c, const char *p, size_t n)
{
	if (!c->retry_head || !n)
		return;
	if (c->retry_len - c->retry_head_len + n > ENGINE_REPLAY_MAX) {
		/* Streamed only from here on: no retry, no mirror (engine.h). */
		replay_drop(c);
		return;
	}
	if (c->retry_len + n > c->retry_cap) {
		size_t cap = c->retry_cap * 2 > c->retry_len + n ? c->retry_cap * 2 : c->retry_len + n;
		char *np = realloc(c->retry_head, cap);

		if (!np) {
			replay_drop(c);
			return;
		}
		c->retry_head = np;
		c->retry_cap = cap;
	}
	memcpy(c->retry_head + c->retry_len, p, n);
	c->retry_len += n;
	c->retry_sent += n;	/* they are in the buffer already */
}

/* Move what is left of the replay into u's buffer; whether anything moved. */
static bool replay_push(struct cconn *c, struct uconn *u)
{
	size_t n = c->retry_len - c->retry_sent, room = ebuf_room(&u->out);

	if (n > room)
		n = room;
	if (!n)
		return false;
	ebuf_append(&u->out, c->retry_head + c->retry_sent, n);
	c->retry_sent += n;
	return true;
}

/* Still resending the replay on a new connection: the body waits behind it. */
static bool replay_pending(const struct cconn *c)
{
	return c->retry_head && c->retry_sent < c->retry_len;
}

/* ---- the request's end --------------------------------------------------- */

/*
 * An answer of our own, with a small text body. What is left of the request
 * body is read and dropped (c->up is NULL), unless the client waits for a
 * 100 Continue that will not come: then the connection closes after this.
 */
static void local_reply(struct engine *e, struct cconn *c, int status, const char *location,
			const struct ev_headers *extra)
{
	struct wr w = { .b = &c->out };
	char body[64];
	int blen;

	/* The upstream goes now; the tables stay until the request ends (its log). */
	if (c->up) {
		eng_upstream_release(e, c->up, false);
		c->up = NULL;
	}
	replay_drop(c);
	c->log_status = status;
	c->log_backend = NULL;
	if (!c->req_done && c->expect_continue) {
		c->close_after = true;
		c->req_done = true;
	}
	blen = snprintf(body, sizeof(body), "%d %s\n", status, reason_phrase(status));
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t mark = c->out.len;

		w.fail = false;
		putf(&w, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
		for (size_t i = 0; extra && attempt == 0 && i < extra->nr; i++) {
			const struct ev_kv *kv = &extra->items[i];

			if (!framing_field(kv->name) &&
			    field_ok(kv->name, strlen(kv->name), kv->value, strlen(kv->value)))
				put_field(&w, kv->name, strlen(kv->name), kv->value, strlen(kv->value));
		}
		if (location)
			put_field(&w, "Location", 8, location, strlen(location));
		putf(&w, "Content-Type: text/plain\r\nContent-Length: %d\r\n", blen);
		if (c->close_after)
			puts_(&w, "Connection: close\r\n");
		else if (!c->minor)
			puts_(&w, "Connection: keep-alive\r\n");
		puts_(&w, "\r\n");
		if (!h1_str_eq(&c->method_str, "HEAD"))
			put(&w, body, blen);
		if (!w.fail)
			break;
		c->out.len = mark;	/* too long with the extra fields: without */
	}
	c->resp_head_done = c->resp_started = c->resp_done = true;
	eng_stat_add(e, &e->st.requests, 1);
}

/* A request the parser refused: answer and close. */
static void reply_error(struct engine *e, struct cconn *c, int status)
{
	c->close_after = true;
	c->req_done = true;
	c->method_str = (struct h1_str){ "GET", 3 };
	if (!c->log_pending) {
		c->log_pending = true;
		c->log_entry = NULL;
		c->t_start = e->now_us;
		c->t_up_sent = c->t_up_head = 0;
	}
	local_reply(e, c, status, NULL, NULL);
	eng_request_end(e, c, false);
	ebuf_consume(&c->in, c->in.len);
	c->state = CS_CLOSING;
}

/* ---- body forwarding ----------------------------------------------------- */

/*
 * Move body bytes from src to dst (NULL: drop them) as far as the framing
 * and dst's room allow. Returns whether anything moved, -1 for a chunked
 * body out of shape; *done once the body's end went through.
 */
static void append_data(void *ctx, const char *p, size_t n)
{
	ebuf_append(ctx, p, n);	/* fits: decoded data is shorter than its coding */
}

int eng_fwd_body(struct ebuf *src, struct ebuf *dst, enum h1_body kind, uint64_t *left,
		 struct h1_chunked *ch, bool decode, bool *done)
{
	size_t n = src->len;

	*done = false;
	if (kind == H1_BODY_NONE || (kind == H1_BODY_LENGTH && !*left)) {
		*done = true;
		return 0;
	}
	if (dst) {
		size_t room = ebuf_room(dst);

		if (n > room)
			n = room;
	}
	if (!n)
		return 0;
	if (kind == H1_BODY_LENGTH) {
		if (n > *left)
			n = *left;
		*left -= n;
		*done = !*left;
	} else if (kind == H1_BODY_CHUNKED) {
		long m = h1_chunked_scan(ch, src->p + src->off, n, decode && dst ? append_data : NULL,
					 dst);

		if (m < 0)
			return -1;
		n = m;
		*done = ch->done;
		if (decode) {
			ebuf_consume(src, n);
			return n || *done;
		}
	}
	if (dst && n)
		ebuf_append(dst, src->p + src->off, n);
	ebuf_consume(src, n);
	return n || *done;
}

/* ---- starting a request -------------------------------------------------- */

struct arena {
	char *p;
	size_t len, cap;
};

static const char *arena_dup(struct arena *a, const char *p, size_t n)
{
	char *s = a->p + a->len;

	if (a->len + n + 1 > a->cap)
		return "";
	memcpy(s, p, n);
	s[n] = 0;
	a->len += n + 1;
	return s;
}

/* The request head for the upstream: origin form, HTTP/1.1, the fields as filtered. */
static int write_request_head(struct cconn *c, const struct h1_head *h, const struct ev_result *r,
			      struct ebuf *out)
{
	struct wr w = { .b = out };
	bool host = false;

	put(&w, c->method, strlen(c->method));
	put(&w, " ", 1);
	/* OPTIONS * is evaluated as "/" but stays "*" unless rewritten. */
	if (h1_str_eq(&h->target, "*") && !strcmp(r->target, "/"))
		puts_(&w, "*");
	else
		puts_(&w, r->target);
	puts_(&w, " HTTP/1.1\r\n");
	for (size_t i = 0; i < r->request_headers.nr; i++) {
		const struct ev_kv *kv = &r->request_headers.items[i];
		size_t nl = strlen(kv->name);

		if (hop_by_hop(kv->name, nl) || connection_names(h, kv->name, nl) ||
		    name_ieq(kv->name, nl, "Content-Length") ||
		    name_ieq(kv->name, nl, "Transfer-Encoding") ||
		    !field_ok(kv->name, nl, kv->value, strlen(kv->value)))
			continue;
		host |= name_ieq(kv->name, nl, "Host");
		put_field(&w, kv->name, nl, kv->value, strlen(kv->value));
	}
	if (!host) {
		/* HTTP/1.0 without Host: the authority the client dialed. */
		char ip[64];

		ip_addr_str(&c->origin.vip, ip, sizeof(ip));
		if (c->origin.vip.family == AF_INET6)
			putf(&w, "Host: [%s]:%u\r\n", ip, c->origin.vport);
		else
			putf(&w, "Host: %s:%u\r\n", ip, c->origin.vport);
	}
	/* The framing the parser validated, as it was. */
	if (h->body == H1_BODY_LENGTH) {
		putf(&w, "Content-Length: %llu\r\n", (unsigned long long)h->content_length);
	} else if (h->body == H1_BODY_CHUNKED) {
		const struct h1_header *te = h1_header_get(h, "Transfer-Encoding");

		put_field(&w, "Transfer-Encoding", 17, te->value.p, te->value.len);
	}
	if (c->upgrade) {
		const struct h1_header *up = h1_header_get(h, "Upgrade");

		puts_(&w, "Connection: upgrade\r\n");
		if (up)
			put_field(&w, "Upgrade", 7, up->value.p, up->value.len);
	}
	puts_(&w, "\r\n");
	return w.fail ? -ENOSPC : 0;
}

/* The host of the Host field, without its port, for redirects. */
static const char *host_only(struct arena *a, const struct h1_str *host)
{
	const char *p = host->p, *end = host->p + host->len;

	if (!host->len)
		return NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', host->len);

		return arena_dup(a, p, rb ? (size_t)(rb + 1 - p) : host->len);
	}
	const char *colon = memchr(p, ':', host->len);

	return arena_dup(a, p, colon ? (size_t)(colon - p) : (size_t)(end - p));
}

/* RequestMirror filters: which mirrors get a copy of this request, by percent. */
static void pick_mirrors(struct engine *e, struct cconn *c, const struct gapi_filter *f,
			 size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		if (f[i].type != FILTER_REQUEST_MIRROR || !f[i].mirror.backend)
			continue;
		if (eng_random(e) % 100 >= f[i].mirror.percent)
			continue;
		if (c->nr_mirror_refs < ENGINE_MIRROR_REFS)
			c->mirror_refs[c->nr_mirror_refs++] = f[i].mirror.backend;
	}
}

/* The request is whole (its body too): the copies go, from the replay. */
static void start_mirrors(struct engine *e, struct cconn *c)
{
	for (size_t i = 0; c->retry_head && i < c->nr_mirror_refs; i++)
		eng_mirror_start(e, c->tab, c->mirror_refs[i], c->method, c->retry_head,
				 c->retry_len, c->origin.netns_ctx);
	c->nr_mirror_refs = 0;
}

/* RFC 9110 9.2.2: what may be sent twice. */
static bool idempotent(const struct h1_str *m)
{
	return h1_str_eq(m, "GET") || h1_str_eq(m, "HEAD") || h1_str_eq(m, "OPTIONS") ||
	       h1_str_eq(m, "TRACE") || h1_str_eq(m, "PUT") || h1_str_eq(m, "DELETE");
}

static void start_request(struct engine *e, struct cconn *c, const struct h1_head *h)
{
	struct ev_header *hdrs = e->hdrs;
	struct arena a = { .p = e->arena, .cap = e->arena_cap };
	struct ev_request req = { 0 };
	struct ev_result r = { 0 };
	const struct tr_port *port;
	const struct tr_class *cls;
	const struct tr_endpoint_set *eps;
	struct ukey k;
	bool evaluated = false;

	c->state = CS_REQ;
	c->minor = h->minor;
	c->close_after = !h->keep_alive;
	c->upgrade = h->upgrade;
	c->expect_continue = h->expect_continue;
	c->req_body = h->body;
	c->req_left = h->content_length;
	memset(&c->req_ch, 0, sizeof(c->req_ch));
	c->req_done = h->body == H1_BODY_NONE || (h->body == H1_BODY_LENGTH && !h->content_length);
	c->resp_head_done = c->resp_started = c->resp_done = false;
	c->up_reusable = c->dechunk = false;
	c->req_deadline = 0;
	c->retry = NULL;
	c->retries_left = 0;
	c->retry_at = 0;
	c->log_pending = true;
	c->log_status = 0;
	c->log_entry = NULL;
	c->log_backend = NULL;
	c->t_start = e->now_us;
	c->t_up_sent = c->t_up_head = 0;
	memset(&c->rscan, 0, sizeof(c->rscan));
	c->rf.nr[0] = c->rf.nr[1] = 0;
	if (h->method.len >= sizeof(c->method)) {
		c->method_str = (struct h1_str){ "GET", 3 };
		c->close_after = true;
		local_reply(e, c, 501, NULL, NULL);
		return;
	}
	memcpy(c->method, h->method.p, h->method.len);
	c->method[h->method.len] = 0;
	c->method_str = (struct h1_str){ c->method, h->method.len };
	if (h1_str_eq(&h->method, "CONNECT")) {
		/* A tunnel to an authority of the client's choice: not a route's to give. */
		c->close_after = true;
		local_reply(e, c, 501, NULL, NULL);
		return;
	}

	c->tab = eng_tables_get(e);
	/* The port and class of the connection's last request, unless new tables came. */
	if (c->tab && c->port && c->port_gen == c->tab->generation) {
		port = c->port;
		cls = c->cls;
	} else {
		port = eng_tables_port(c->tab, &c->origin);
		cls = port ? tr_port_class(port, c->origin.client_ns) : NULL;
		c->port = port;
		c->cls = cls;
		c->port_gen = c->tab ? c->tab->generation : 0;
	}
	if (!port) {
		char ip[64];

		pr_debug("engine: %s: no Service has %s port %u", c->origin.client_pod,
			 ip_addr_str(&c->origin.vip, ip, sizeof(ip)), c->origin.vport);
		local_reply(e, c, 503, NULL, NULL);
		return;
	}

	/* ev_evaluate() wants NUL-terminated strings: copy the head's pieces
	 * (into the engine's scratch, sized for the largest head). */
	for (size_t i = 0; i < h->nr_headers; i++) {
		hdrs[i].name = arena_dup(&a, h->headers[i].name.p, h->headers[i].name.len);
		hdrs[i].value = arena_dup(&a, h->headers[i].value.p, h->headers[i].value.len);
	}
	hdrs[h->nr_headers] = (struct ev_header){ 0 };
	req.method = c->method;
	req.target = arena_dup(&a, h->path.p, h->path.len);
	req.headers = hdrs;
	req.nr_headers = h->nr_headers;
	req.scheme = "http";
	req.host = host_only(&a, &h->host);
	req.port = c->origin.vport;
	if (ev_evaluate(cls, &req, eng_random(e), &r))
		goto fail;
	evaluated = true;
	c->log_entry = r.entry;

	if (r.status >= 300 && r.status < 400) {
		if (!r.redirect.location ||
		    !field_ok("Location", 8, r.redirect.location, strlen(r.redirect.location))) {
			pr_debug("engine: %s: a redirect's Location is no field value",
				 c->origin.client_pod);
			local_reply(e, c, 500, NULL, NULL);
			goto out;
		}
		local_reply(e, c, r.status, r.redirect.location, &r.response_headers);
		goto out;
	}
	if (r.status != 200) {
		local_reply(e, c, r.status, NULL, &r.response_headers);
		goto out;
	}
	eps = r.backend ? r.backend->endpoints : NULL;
	if (!eps || !eps->nr) {
		local_reply(e, c, 503, NULL, &r.response_headers);
		goto out;
	}
	/* Uniform over the ready endpoints, as the kernel's L4 pick, unless the
	 * Service keeps a client on one (sessionAffinity ClientIP). */
	const struct tr_endpoint *ep = eng_affinity_pick(e, &c->origin, r.backend);

	k = (struct ukey){ .addr = ep->addr, .port = ep->port, .netns_ctx = c->origin.netns_ctx };
	if (eng_h2_h1_wanted(r.backend)) {
		/* appProtocol h2c or grpc: the backend speaks HTTP/2 only */
		int status = eng_h2_from_h1(e, c, h, &r, &k);

		if (status)
			local_reply(e, c, status, NULL, &r.response_headers);
		else
			c->log_backend = r.backend;
		goto out;
	}
	c->up = eng_upstream_get(e, &k, c, false);
	if (!c->up) {
		pr_debug("engine: %s: upstream %s/%s: %s", c->origin.client_pod, r.backend->namespace,
			 r.backend->name, strerror(errno));
		local_reply(e, c, 503, NULL, &r.response_headers);
		goto out;
	}
	if (write_request_head(c, h, &r, &c->up->out)) {
		local_reply(e, c, 431, NULL, NULL);
		goto out;
	}
	/*
	 * A pooled connection may have been closed by the upstream just now
	 * (its idle timeout): an idempotent request is then sent again on a
	 * new connection, as every proxy does. The rule's retry sends a request
	 * again, and mirrors get copies of it: for all three the bytes sent are
	 * kept, the body up to ENGINE_REPLAY_MAX (engine.h).
	 */
	c->retry = r.entry && r.entry->rule->rule && r.entry->rule->rule->has_retry ?
		   r.entry->rule->rule : NULL;
	c->retries_left = !c->retry ? 0 : c->retry->retry_attempts < 0 ? 1 :
			  c->retry->retry_attempts;
	c->retry_at = 0;
	c->nr_mirror_refs = 0;
	if (r.entry)
		pick_mirrors(e, c, r.entry->rule->rule->filters, r.entry->rule->rule->nr_filters);
	if (r.backend->ref)
		pick_mirrors(e, c, r.backend->ref->filters, r.backend->ref->nr_filters);
	if ((c->up->reused && idempotent(&h->method)) || c->retries_left || c->nr_mirror_refs) {
		size_t hl = c->up->out.len;
		bool fits = h->body != H1_BODY_LENGTH || h->content_length <= ENGINE_REPLAY_MAX;
		size_t cap = hl + (h->body == H1_BODY_LENGTH ? h->content_length : 1024);

		c->retry_head = fits ? malloc(cap) : NULL;
		if (c->retry_head) {
			memcpy(c->retry_head, c->up->out.p + c->up->out.off, hl);
			c->retry_len = c->retry_head_len = c->retry_sent = hl;
			c->retry_cap = cap;
		}
	}
	c->req_deadline = eng_rule_deadline(e, r.entry);
	c->log_backend = r.backend;
	c->t_up_sent = e->now_us;
	if (!c->retry_head)
		replay_drop(c);		/* too large a body for mirrors */
	else if (c->req_done)
		start_mirrors(e, c);
	/* ResponseHeaderModifier: the rule's, then the backendRef's. */
	if (r.entry) {
		c->rf.f[0] = r.entry->rule->rule->filters;
		c->rf.nr[0] = r.entry->rule->rule->nr_filters;
	}
	if (r.backend->ref) {
		c->rf.f[1] = r.backend->ref->filters;
		c->rf.nr[1] = r.backend->ref->nr_filters;
	}
	goto out;
fail:
	pr_warn("engine: %s: evaluating a request failed: out of memory", c->origin.client_pod);
	local_reply(e, c, 500, NULL, NULL);
out:
	if (evaluated)
		ev_result_free(&r);
}

static bool step_head(struct engine *e, struct cconn *c)
{
	struct h1_head *h;
	long n;
	int ret;

	/* The previous response leaves first: bounded memory, and order. */
	if (c->out.len)
		return false;
	if (!c->in.len) {
		c->head_start = 0;
		if (c->rd_eof) {
			eng_client_close(e, c, false);
			return true;
		}
		return false;
	}
	if (!c->head_start)
		c->head_start = e->now;
	n = h1_head_end(c->in.p + c->in.off, c->in.len, &e->lim, &c->scan);
	if (n < 0) {
		reply_error(e, c, h1_error_status(n));
		return true;
	}
	if (!n) {
		if (c->rd_eof) {
			eng_client_close(e, c, false);
			return true;
		}
		return false;
	}
	h = e->head;
	ret = h1_parse_request(c->in.p + c->in.off, n, &e->lim, h);
	if (ret) {
		reply_error(e, c, h1_error_status(ret));
		return true;
	}
	if (eng_h2_upgrade_wanted(h)) {
		eng_h2_take(e, c, h, n);
		return true;
	}
	start_request(e, c, h);
	/* The head was used in place; now it goes. */
	ebuf_consume(&c->in, n);
	memset(&c->scan, 0, sizeof(c->scan));
	c->head_start = 0;
	return true;
}

/* ---- the response -------------------------------------------------------- */

struct field {
	const char *n, *v;
	size_t nl, vl;
};

static void fields_remove(struct field *f, size_t *nr, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; i < *nr; i++)
		if (!name_ieq(f[i].n, f[i].nl, name))
			f[j++] = f[i];
	*nr = j;
}

static void fields_add(struct field *f, size_t *nr, const char *n, const char *v)
{
	f[(*nr)++] = (struct field){ n, v, strlen(n), strlen(v) };
}

static bool filter_field_ok(const struct gapi_header *x)
{
	return !framing_field(x->name) &&
	       field_ok(x->name, strlen(x->name), x->value, strlen(x->value));
}

/* Apply ResponseHeaderModifier filters: set, then add, then remove, per filter. */
static size_t apply_response_filters(const struct resp_filters *rf, struct field *f, size_t nr)
{
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < rf->nr[k]; i++) {
			const struct gapi_filter *flt = &rf->f[k][i];
			const struct gapi_header_mod *m = &flt->header_mod;

			if (flt->type != FILTER_RESPONSE_HEADER)
				continue;
			for (size_t j = 0; j < m->nr_set; j++) {
				if (!filter_field_ok(&m->set[j]))
					continue;
				fields_remove(f, &nr, m->set[j].name);
				fields_add(f, &nr, m->set[j].name, m->set[j].value);
			}
			for (size_t j = 0; j < m->nr_add; j++)
				if (filter_field_ok(&m->add[j]))
					fields_add(f, &nr, m->add[j].name, m->add[j].value);
			for (size_t j = 0; j < m->nr_remove; j++)
				if (!framing_field(m->remove[j]))
					fields_remove(f, &nr, m->remove[j]);
		}
	}
	return nr;
}

static size_t response_filter_fields(const struct resp_filters *rf)
{
	size_t n = 0;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < rf->nr[k]; i++)
			if (rf->f[k][i].type == FILTER_RESPONSE_HEADER)
				n += rf->f[k][i].header_mod.nr_set + rf->f[k][i].header_mod.nr_add;
	return n;
}

int eng_write_response_head(const struct resp_filters *rf, const struct h1_head *h, bool dechunk,
			    bool close_after, uint8_t minor, struct ebuf *out)
{
	struct wr w = { .b = out };
	bool upgrade = h->status == 101;
	struct field stack_f[H1_HEADERS_MAX + 16], *f = stack_f;
	size_t nr = 0, need = h->nr_headers + response_filter_fields(rf) + 1;

	if (need > sizeof(stack_f) / sizeof(stack_f[0])) {
		f = calloc(need, sizeof(*f));
		if (!f)
			return -ENOMEM;
	}
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct h1_header *x = &h->headers[i];

		if (upgrade && h1_str_ieq(&x->name, "Upgrade"))
			;
		else if (dechunk && h1_str_ieq(&x->name, "Transfer-Encoding"))
			continue;
		else if (hop_by_hop(x->name.p, x->name.len) ||
			 connection_names(h, x->name.p, x->name.len))
			continue;
		f[nr++] = (struct field){ x->name.p, x->value.p, x->name.len, x->value.len };
	}
	if (h->status >= 200)
		nr = apply_response_filters(rf, f, nr);
	putf(&w, "HTTP/1.1 %u ", h->status);
	put(&w, h->reason.p, h->reason.len);
	puts_(&w, "\r\n");
	for (size_t i = 0; i < nr; i++)
		put_field(&w, f[i].n, f[i].nl, f[i].v, f[i].vl);
	if (upgrade)
		puts_(&w, "Connection: upgrade\r\n");
	else if (h->status >= 200 && close_after)
		puts_(&w, "Connection: close\r\n");
	else if (h->status >= 200 && !minor)
		puts_(&w, "Connection: keep-alive\r\n");
	puts_(&w, "\r\n");
	if (f != stack_f)
		free(f);
	return w.fail ? -ENOSPC : 0;
}

static int write_response_head(struct cconn *c, const struct h1_head *h, struct ebuf *out)
{
	return eng_write_response_head(&c->rf, h, c->dechunk, c->close_after, c->minor, out);
}

/* Send the kept head again, to an endpoint of the same backend. */
static bool retry_send(struct engine *e, struct cconn *c)
{
	const struct tr_backend *b = c->log_backend;
	const struct tr_endpoint *ep;
	struct ukey k;

	c->retry_at = 0;
	if (!b || !b->endpoints || !b->endpoints->nr || !c->retry_head)
		return false;
	ep = eng_affinity_pick(e, &c->origin, b);
	k = (struct ukey){ .addr = ep->addr, .port = ep->port, .netns_ctx = c->origin.netns_ctx };
	c->up = eng_upstream_get(e, &k, c, false);
	if (!c->up)
		return false;
	c->retry_sent = 0;
	replay_push(c, c->up);
	memset(&c->rscan, 0, sizeof(c->rscan));
	c->t_up_sent = e->now_us;
	return true;
}

/* The rule's retry: drop this attempt, send again after the backoff. */
static bool retry_later(struct engine *e, struct cconn *c)
{
	long long backoff = c->retry->retry_backoff ? eng_duration_ms(c->retry->retry_backoff) : 0;

	if (!c->retry_head || c->retries_left <= 0)
		return false;
	c->retries_left--;
	if (c->up) {
		eng_upstream_release(e, c->up, false);
		c->up = NULL;
	}
	if (backoff > 0) {
		c->retry_at = e->now + backoff;
		return true;
	}
	return retry_send(e, c);
}

static bool retry_code(const struct cconn *c, int status)
{
	for (size_t i = 0; c->retry && i < c->retry->nr_retry_codes; i++)
		if (c->retry->retry_codes[i] == status)
			return true;
	return false;
}

/*
 * The upstream failed. Before any byte of the response went to the client,
 * the client gets an answer of ours (502, 503, 504) and keeps its
 * connection; after, it gets a reset: a response cut short must not look
 * complete.
 */
static bool upstream_failed(struct engine *e, struct cconn *c, int status)
{
	if (c->resp_started) {
		eng_client_close(e, c, true);
		return true;
	}
	/* A pooled connection the upstream closed before answering: sent again, if
	 * the method allows (or the rule retries); kept for a mirror is not enough. */
	if (c->retry_head && c->up && c->up->reused && !c->up->in.len && (c->up->eof || c->up->err) &&
	    (c->retry || idempotent(&c->method_str))) {
		struct ukey k = c->up->key;

		eng_upstream_release(e, c->up, false);
		c->up = eng_upstream_get(e, &k, c, true);
		if (c->up) {
			c->retry_sent = 0;
			replay_push(c, c->up);
			memset(&c->rscan, 0, sizeof(c->rscan));
			return true;	/* not one of the rule's retries */
		}
	}
	/* A connection refused, reset or closed before an answer: the rule may retry. */
	if (c->retry && status != 504 && retry_later(e, c))
		return true;
	local_reply(e, c, status, NULL, NULL);
	return true;
}

static bool step_response_head(struct engine *e, struct cconn *c, struct uconn *u)
{
	struct h1_head *h;
	long n;
	int ret;

	if (c->out.len)
		return false;	/* an interim response still leaving */
	if (!u->in.len) {
		if (u->eof || u->err)
			return upstream_failed(e, c, 502);
		return false;
	}
	n = h1_head_end(u->in.p + u->in.off, u->in.len, &e->lim, &c->rscan);
	if (n < 0)
		return upstream_failed(e, c, 502);
	if (!n) {
		if (u->eof || u->err)
			return upstream_failed(e, c, 502);
		return false;
	}
	h = e->head;
	if (!c->retry && !c->nr_mirror_refs)
		replay_drop(c);	/* the upstream answers: no sending again */
	ret = h1_parse_response(u->in.p + u->in.off, n, &c->method_str, h);
	if (ret || (h->status == 101 && !c->upgrade)) {
		pr_debug("engine: %s: upstream response refused: %s", c->origin.client_pod,
			 ret ? h1_error_str(ret) : "101 without Upgrade");
		return upstream_failed(e, c, 502);
	}
	if (h->status < 200 && h->status != 101) {
		/* 100 Continue and other interim responses go through as they are,
		 * except to HTTP/1.0 clients, which know none. */
		ret = c->minor ? write_response_head(c, h, &c->out) : 0;
		ebuf_consume(&u->in, n);
		memset(&c->rscan, 0, sizeof(c->rscan));
		return ret ? upstream_failed(e, c, 502) : true;
	}
	/* Without the request kept (a body over ENGINE_REPLAY_MAX) the answer goes through. */
	if (h->status != 101 && retry_code(c, h->status) && c->retries_left > 0 && c->retry_head) {
		if (retry_later(e, c))
			return true;
		return upstream_failed(e, c, 502);
	}
	c->resp_body = h->body;
	c->resp_left = h->content_length;
	memset(&c->resp_ch, 0, sizeof(c->resp_ch));
	c->up_reusable = h->keep_alive && h->body != H1_BODY_CLOSE;
	c->dechunk = h->body == H1_BODY_CHUNKED && !c->minor;
	if (h->body == H1_BODY_CLOSE || c->dechunk)
		c->close_after = true;	/* the client learns the end by the close */
	ret = write_response_head(c, h, &c->out);
	if (ret) {
		c->out.len = 0;
		return upstream_failed(e, c, 502);
	}
	ebuf_consume(&u->in, n);
	c->resp_head_done = c->resp_started = true;
	c->log_status = h->status;
	c->t_up_head = e->now_us;
	eng_stat_add(e, &e->st.requests, 1);
	if (h->status == 101) {
		c->state = CS_TUNNEL;
		c->req_done = c->resp_done = true;
	} else {
		c->resp_done = h->body == H1_BODY_NONE ||
			       (h->body == H1_BODY_LENGTH && !h->content_length);
	}
	return true;
}

static bool step_response_body(struct engine *e, struct cconn *c, struct uconn *u)
{
	bool done;
	int r = eng_fwd_body(&u->in, &c->out, c->resp_body, &c->resp_left, &c->resp_ch, c->dechunk,
			 &done);

	if (r < 0) {
		pr_debug("engine: %s: upstream sent a bad chunked body", c->origin.client_pod);
		eng_client_close(e, c, true);
		return true;
	}
	if (done) {
		c->resp_done = true;
		return true;
	}
	if ((u->eof || u->err) && !u->in.len) {
		if (c->resp_body == H1_BODY_CLOSE && !u->err) {
			c->resp_done = true;
			c->up_reusable = false;
			return true;
		}
		/* The upstream died inside the response: the client sees a reset. */
		eng_client_close(e, c, true);
		return true;
	}
	return r > 0;
}

/*
 * Right at the end of the request, before the last bytes of the answer go
 * out: the client cannot send its next request before it has read them,
 * so the kernel's entry is there in time for that request (after the
 * send, a quick client raced it). Nothing of a request may be here, and
 * no answer may wait for the kernel's (kh_hold) or a relay.
 */
static void eng_kernel_give_back(struct engine *e, struct cconn *c)
{
	if (c->in.len || c->rd_eof || c->wr_shut || c->up || c->tab || c->retry_at ||
	    c->log_pending || c->kh_hold || c->kh_eof || c->rl.fd >= 0 || !e->o.kernel_return)
		return;
	if (!e->o.kernel_return(e->o.ctx, c->origin.kernel_cookie, c->fd, c->out.len))
		return;
	/* as at adoption: the kernel's (no timers) until it hands it over again */
	c->kh_ret = false;
	c->kh_quiet = false;
	c->kernel = true;
	c->state = CS_SNIFF;
	c->head_start = 0;
	eng_stat_add(e, &e->st.kernel_returns, 1);
}

static bool step_req(struct engine *e, struct cconn *c)
{
	struct uconn *u = c->up;
	bool moved = false, done;

	if (u && replay_pending(c))
		moved |= replay_push(c, u);	/* sending again: the kept bytes first */
	/* The body waits while a retry's backoff runs or the replay is going out. */
	if (!c->req_done && !c->retry_at && !(u && replay_pending(c))) {
		size_t before = u ? u->out.len : 0;
		int r = eng_fwd_body(&c->in, u ? &u->out : NULL, c->req_body, &c->req_left,
				 &c->req_ch, false, &done);

		if (r < 0) {
			c->close_after = true;
			c->req_done = true;
			ebuf_consume(&c->in, c->in.len);
			return upstream_failed(e, c, 400);
		}
		if (u)
			replay_add(c, u->out.p + u->out.off + before, u->out.len - before);
		moved |= r > 0;
		if (done) {
			c->req_done = moved = true;
			if (u && c->nr_mirror_refs)
				start_mirrors(e, c);
		}
	}
	if (u && !u->connected) {
		if (u->err)
			return upstream_failed(e, c, 503);
	} else if (u && !c->resp_head_done) {
		moved |= step_response_head(e, c, u);
		/* The body that came with the head goes out with it: one send. */
		if (!c->dead && c->state == CS_REQ && c->up == u && c->resp_head_done &&
		    !c->resp_done)
			moved |= step_response_body(e, c, u);
	} else if (u && !c->resp_done) {
		moved |= step_response_body(e, c, u);
	}
	if (c->dead || c->state != CS_REQ)
		return true;
	if (c->rd_eof && !c->in.len && !(c->req_done && c->resp_done)) {
		/* The client went away: so does its upstream connection. */
		eng_client_close(e, c, false);
		return true;
	}
	if (c->req_done && c->resp_done) {
		u = c->up;
		eng_request_end(e, c, u && c->up_reusable && !u->in.len);
		c->state = c->close_after ? CS_CLOSING : CS_HEAD;
		if (c->kh_ret && c->state == CS_HEAD)
			eng_kernel_give_back(e, c);
		return true;
	}
	if (c->resp_done && c->up) {
		/* Answered before the body ended: drop the rest, not the upstream's turn. */
		eng_upstream_release(e, c->up, false);
		c->up = NULL;
		replay_drop(c);		/* and no mirror of a body not read */
		moved = true;
	}
	return moved;
}

/* ---- after a 101: a tunnel ----------------------------------------------- */

static bool pipe_bytes(struct ebuf *src, struct ebuf *dst)
{
	size_t n = src->len, room = ebuf_room(dst);

	if (n > room)
		n = room;
	if (!n)
		return false;
	ebuf_append(dst, src->p + src->off, n);
	ebuf_consume(src, n);
	return true;
}

static bool step_tunnel(struct engine *e, struct cconn *c)
{
	struct uconn *u = c->up;
	bool moved = false;

	if (u->err) {
		eng_client_close(e, c, true);
		return true;
	}
	moved |= pipe_bytes(&c->in, &u->out);
	moved |= pipe_bytes(&u->in, &c->out);
	/* A half close goes through once what came before it is out. */
	if (c->rd_eof && !c->in.len && !u->out.len && !u->wr_shut && u->connected) {
		shutdown(u->fd, SHUT_WR);
		u->wr_shut = moved = true;
	}
	if (u->eof && !u->in.len && !c->out.len && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = moved = true;
	}
	if (c->wr_shut && u->wr_shut) {
		eng_client_close(e, c, false);
		return true;
	}
	return moved;
}

/* ---- the first bytes: HTTP or not ---------------------------------------- */

static bool step_sniff(struct engine *e, struct cconn *c)
{
	bool undecided;

	if (!c->in.len) {
		if (c->rd_eof) {
			eng_client_close(e, c, false);
			return true;
		}
		return false;
	}
	if (c->origin.kernel_cookie && !c->kh_quiet && !c->kh_hold) {
		/* the kernel handed it over (for good): sniffed from here, with timers */
		c->kernel = false;
		eng_client_sock_setup(e, c);
		c->head_start = e->now;
		c->kh_hold = e->o.kernel_pending && e->o.kernel_pending(e->o.ctx,
									 c->origin.kernel_cookie);
		c->kh_quiet = !c->kh_hold;	/* asked once */
		c->kh_ret = e->o.kernel_returnable &&
			    e->o.kernel_returnable(e->o.ctx, c->origin.kernel_cookie);
	}
	switch (eng_h2_sniff(&c->in)) {
	case H2_PREFACE:
		eng_h2_take(e, c, NULL, 0);
		return true;
	case H2_MAYBE:
		if (!c->rd_eof)
			return false;
		break;
	case H2_NOT:
		break;
	}
	if (!eng_sniff_http(&c->in, &undecided)) {
		eng_passthrough(e, c);
		return true;
	}
	if (undecided && !c->rd_eof)
		return false;
	/* HTTP from here on: keep-alive requests are not looked at again. */
	c->state = CS_HEAD;
	c->head_start = 0;
	return true;
}

/* ---- entry points -------------------------------------------------------- */

bool eng_client_step(struct engine *e, struct cconn *c)
{
	bool moved;

	switch (c->state) {
	case CS_SNIFF:
		return step_sniff(e, c);
	case CS_HEAD:
		return step_head(e, c);
	case CS_REQ:
		return step_req(e, c);
	case CS_H2:
		return eng_h2_h1_step(e, c);
	case CS_TUNNEL:
		return step_tunnel(e, c);
	case CS_CLOSING:
		moved = c->in.len > 0;
		ebuf_consume(&c->in, c->in.len);
		if (c->out.len)
			return moved;
		/* Shut down writing, then drain: a close with unread bytes would
		 * send an RST that can destroy the response in flight. */
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
		c->state = CS_LINGER;
		c->linger_until = e->now + ENGINE_LINGER_MS;
		return true;
	case CS_LINGER:
		moved = c->in.len > 0;
		ebuf_consume(&c->in, c->in.len);
		if (c->rd_eof) {
			eng_client_close(e, c, false);
			return true;
		}
		return moved;
	}
	return false;
}

uint64_t eng_client_deadline(struct engine *e, struct cconn *c)
{
	switch (c->state) {
	case CS_SNIFF:
		if (c->kernel)
			return UINT64_MAX;	/* the kernel serves it; its close ends it */
		return c->head_start + e->o.sniff_timeout_ms;
	case CS_HEAD:
		if (c->head_start)
			return c->head_start + e->o.header_timeout_ms;
		return c->last_io + e->o.idle_timeout_ms;
	case CS_REQ: {
		uint64_t d = c->up && !c->up->connected ? c->up->since + e->o.connect_timeout_ms :
			     c->last_io + e->o.idle_timeout_ms;

		if (c->retry_at && c->retry_at < d)
			d = c->retry_at;

		return c->req_deadline && !c->resp_done && c->req_deadline < d ? c->req_deadline : d;
	}
	case CS_TUNNEL:
		if (c->up && !c->up->connected)
			return c->up->since + e->o.connect_timeout_ms;
		return c->last_io + ENGINE_TUNNEL_IDLE_MS;
	case CS_CLOSING:
		return c->last_io + e->o.idle_timeout_ms;
	case CS_LINGER:
		return c->linger_until;
	case CS_H2:
		return c->last_io + e->o.idle_timeout_ms;	/* its deadline: engine_h2.c */
	}
	return 0;
}

void eng_client_timeout(struct engine *e, struct cconn *c)
{
	switch (c->state) {
	case CS_SNIFF:
		if (!c->in.len && c->origin.kernel_cookie && e->o.kernel_claim &&
		    !e->o.kernel_claim(e->o.ctx, c->origin.kernel_cookie)) {
			c->kernel = true;	/* the kernel took it at its first message */
			return;
		}
		if (!c->in.len) {
			/* Silent: a server-first protocol (its server speaks first). */
			eng_client_sock_setup(e, c);
			eng_passthrough(e, c);
			return;
		}
		/* The start of a method, then nothing: HTTP's header timeout decides. */
		c->state = CS_HEAD;
		return;
	case CS_HEAD:
		if (c->in.len && c->head_start) {
			reply_error(e, c, 408);
			return;
		}
		eng_client_close(e, c, false);
		return;
	case CS_REQ:
		if (c->retry_at && e->now >= c->retry_at && !c->resp_started &&
		    !(c->req_deadline && e->now >= c->req_deadline)) {
			if (!retry_send(e, c))
				local_reply(e, c, 503, NULL, NULL);
		} else if (c->req_deadline && !c->resp_done && e->now >= c->req_deadline) {
			/* timeouts.request / backendRequest: 504, or a reset once answering */
			if (c->resp_started)
				eng_client_close(e, c, true);
			else
				local_reply(e, c, 504, NULL, NULL);
		} else if (c->up && !c->up->connected) {
			upstream_failed(e, c, 503);
		} else if (!c->resp_started) {
			c->close_after = true;
			c->req_done = true;
			upstream_failed(e, c, 504);
		} else {
			eng_client_close(e, c, true);
		}
		return;
	default:
		eng_client_close(e, c, false);
		return;
	}
}
