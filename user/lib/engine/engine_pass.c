// SPDX-License-Identifier: Apache-2.0
/*
 * What is not HTTP passes through at L4. An HTTPRoute without a port
 * attaches to every port of its Service, so TLS, binary and server-first
 * protocols reach the engine too: answering them 400 (or waiting for a head
 * that never comes) would break a connection we cannot parse. They get what
 * the kernel would have given them: a backend of the class's L4 union by
 * weight, an endpoint of it, and bytes both ways (the Upgrade tunnel).
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"
#include "base/log.h"

/* RFC 9110 tchar. */
static bool tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool eng_sniff_http(const struct ebuf *in, bool *undecided)
{
	const unsigned char *p = (const unsigned char *)in->p + in->off;
	size_t i = 0, n = in->len, crlf = 0, tok;

	*undecided = false;
	/* Empty lines before a request line, as the head parser allows them. */
	while (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n' && crlf < H1_LEADING_CRLF_MAX) {
		i += 2;
		crlf++;
	}
	if (i < n && p[i] == '\r' && (i + 1 == n || p[i + 1] == '\n')) {
		*undecided = i + 1 == n || crlf < H1_LEADING_CRLF_MAX;
		return *undecided;
	}
	for (tok = 0; i < n && tok <= ENGINE_SNIFF_MAX; i++, tok++) {
		if (p[i] == ' ')
			return tok > 0;
		if (!tchar(p[i]))
			return false;
	}
	if (tok > ENGINE_SNIFF_MAX)
		return false;
	*undecided = true;
	return true;
}

bool eng_passthrough(struct engine *e, struct cconn *c)
{
	const struct tr_backend *b = NULL;
	const struct tr_endpoint *ep;
	const struct tr_port *port;
	const struct tr_class *cls;
	struct eng_tables *t;
	struct ukey k;
	char ip[64];

	t = eng_tables_get(e);
	port = eng_tables_port(t, &c->origin);
	if (port) {
		cls = tr_port_class(port, c->origin.client_ns);
		/* The kernel's pick for a connection: a weighted draw over the union. */
		if (cls)
			b = ev_pick_l4(&cls->l4, eng_random(e));
	}
	if (!b || !b->endpoints || !b->endpoints->nr) {
		pr_debug("engine: %s: no backend to pass %s port %u through to",
			 c->origin.client_pod, ip_addr_str(&c->origin.vip, ip, sizeof(ip)),
			 c->origin.vport);
		eng_tables_put(t);
		eng_client_close(e, c, true);
		return false;
	}
	ep = eng_affinity_pick(e, &c->origin, b);
	k = (struct ukey){ .addr = ep->addr, .port = ep->port, .netns_ctx = c->origin.netns_ctx };
	/* The tunnel keeps the endpoint's address, not the tables. */
	eng_tables_put(t);
	c->up = eng_upstream_get(e, &k, c, true);
	if (!c->up) {
		pr_debug("engine: %s: passthrough upstream %s/%s: %s", c->origin.client_pod,
			 b->namespace, b->name, strerror(errno));
		eng_client_close(e, c, true);
		return false;
	}
	c->state = CS_TUNNEL;
	c->req_done = c->resp_done = true;
	eng_stat_add(e, &e->st.passthroughs, 1);
	return true;
}
