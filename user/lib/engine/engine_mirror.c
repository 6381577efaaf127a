// SPDX-License-Identifier: Apache-2.0
/*
 * RequestMirror: a copy of a request goes to an endpoint of the mirror's
 * Service, from the client's netns like the request itself; its response is
 * read and dropped, and nobody waits for it. A copy lives at most
 * ENGINE_MIRROR_TIMEOUT_MS and at most ENGINE_MIRRORS_MAX are in flight (more
 * are dropped, as a fire-and-forget copy may be). A copy is made once the
 * request's body is whole (engine_req.c keeps up to ENGINE_REPLAY_MAX of
 * it), from its own copy of the bytes: the client's upload never waits for
 * a mirror.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "engine_int.h"
#include "base/log.h"
#include "input/gapi.h"

struct mirror {
	char method[32];
	struct h1_str method_str;
	struct h1_scan scan;
	bool head_done, done;
	enum h1_body body;
	uint64_t left;
	struct h1_chunked ch;
	bool keep_alive;
	uint64_t started;
	char *req;		/* the request to send, and how much of it went */
	size_t req_len, req_off;
};

static void mirror_unlink(struct engine *e, struct uconn *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		e->mirrors = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	e->nr_mirrors--;
}

static void mirror_end(struct engine *e, struct uconn *u, bool reuse)
{
	mirror_unlink(e, u);
	free(u->mirror->req);
	free(u->mirror);
	u->mirror = NULL;
	eng_upstream_release(e, u, reuse);
}

void eng_mirror_start(struct engine *e, struct eng_tables *t, const struct gapi_backend_ref *ref,
		      const char *method, const char *req, size_t len, void *netns_ctx)
{
	const struct tr_port *port;
	const struct tr_endpoint_set *eps;
	const struct tr_endpoint *ep;
	struct ukey k;
	struct uconn *u;
	struct mirror *m;

	if (!t || !ref->name || !ref->port || e->nr_mirrors >= e->mirrors_max)
		return;
	port = tr_find_port(t->res, ref->namespace, ref->name, ref->port);
	eps = port ? port->self.endpoints : NULL;
	if (!eps || !eps->nr)
		return;
	ep = &eps->items[eng_random(e) % eps->nr];
	k = (struct ukey){ .addr = ep->addr, .port = ep->port, .netns_ctx = netns_ctx };
	m = calloc(1, sizeof(*m));
	if (m)
		m->req = malloc(len);
	if (!m || !m->req) {
		free(m);
		return;
	}
	memcpy(m->req, req, len);
	m->req_len = len;
	u = eng_upstream_get(e, &k, NULL, false);
	if (!u) {
		pr_debug("engine: mirror to %s/%s: %s", ref->namespace, ref->name, strerror(errno));
		free(m->req);
		free(m);
		return;
	}
	snprintf(m->method, sizeof(m->method), "%s", method);
	m->method_str = (struct h1_str){ m->method, strlen(m->method) };
	m->started = e->now;
	u->mirror = m;
	u->prev = NULL;
	u->next = e->mirrors;
	if (e->mirrors)
		e->mirrors->prev = u;
	e->mirrors = u;
	e->nr_mirrors++;
	eng_mirror_run(e, u);
}

/* Read what came and drop it; true when the response is over. */
static bool mirror_read(struct engine *e, struct uconn *u, struct mirror *m)
{
	while (u->in.len && !m->done) {
		if (!m->head_done) {
			struct h1_head *h;
			long n = h1_head_end(u->in.p + u->in.off, u->in.len, &e->lim, &m->scan);

			if (n <= 0)
				return n < 0;
			h = malloc(sizeof(*h));
			if (!h || h1_parse_response(u->in.p + u->in.off, n, &m->method_str, h)) {
				free(h);
				return true;
			}
			ebuf_consume(&u->in, n);
			memset(&m->scan, 0, sizeof(m->scan));
			if (h->status >= 100 && h->status < 200) {
				free(h);
				continue;	/* interim */
			}
			m->head_done = true;
			m->body = h->body;
			m->left = h->content_length;
			m->keep_alive = h->keep_alive;
			m->done = h->body == H1_BODY_NONE ||
				  (h->body == H1_BODY_LENGTH && !h->content_length);
			free(h);
			continue;
		}
		if (m->body == H1_BODY_LENGTH) {
			size_t n = u->in.len < m->left ? u->in.len : m->left;

			ebuf_consume(&u->in, n);
			m->left -= n;
			m->done = !m->left;
		} else if (m->body == H1_BODY_CHUNKED) {
			long n = h1_chunked_scan(&m->ch, u->in.p + u->in.off, u->in.len, NULL, NULL);

			if (n < 0)
				return true;
			ebuf_consume(&u->in, n);
			m->done = m->ch.done;
		} else {
			ebuf_consume(&u->in, u->in.len);	/* until the close */
		}
	}
	return m->done;
}

void eng_mirror_run(struct engine *e, struct uconn *u)
{
	struct mirror *m = u->mirror;

	for (;;) {
		bool moved = false;

		if (!u->connected) {
			int err = 0;
			socklen_t l = sizeof(err);

			if (!u->wr_ready && !u->rd_ready)
				return;
			if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
				mirror_end(e, u, false);
				return;
			}
			if (!u->wr_ready)
				return;
			u->connected = true;
		}
		if (m->req_off < m->req_len) {
			/* the copy goes out through the connection's buffer, as it has room */
			size_t n = m->req_len - m->req_off, room = ebuf_room(&u->out);

			if (n > room)
				n = room;
			ebuf_append(&u->out, m->req + m->req_off, n);
			m->req_off += n;
		}
		moved |= ebuf_send(u->fd, &u->out, &u->wr_ready, &u->err);
		moved |= ebuf_recv(u->fd, &u->in, &u->rd_ready, u->rd_hup, &u->eof, &u->err);
		/*
		 * The mirror's own policy: a failed write or read, or a close
		 * before the response was whole, ends the copy (nothing retries
		 * it); a response that ended with its bytes is read below.
		 */
		if (u->err || u->eof) {
			mirror_end(e, u, false);
			return;
		}
		if (mirror_read(e, u, m)) {
			mirror_end(e, u, m->done && m->keep_alive && m->body != H1_BODY_CLOSE &&
					 !u->out.len && m->req_off == m->req_len);
			return;
		}
		if (!moved)
			return;
	}
}

void eng_mirror_timers(struct engine *e)
{
	struct uconn *u, *next;

	for (u = e->mirrors; u; u = next) {
		next = u->next;
		if (e->now - u->mirror->started >= ENGINE_MIRROR_TIMEOUT_MS)
			mirror_end(e, u, false);
	}
}

void eng_mirror_close_all(struct engine *e)
{
	while (e->mirrors)
		mirror_end(e, e->mirrors, false);
}

void eng_mirror_forget(struct engine *e, void *netns_ctx)
{
	struct uconn *u, *next;

	for (u = e->mirrors; u; u = next) {
		next = u->next;
		if (u->key.netns_ctx == netns_ctx)
			mirror_end(e, u, false);
	}
}
