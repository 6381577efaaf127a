// SPDX-License-Identifier: Apache-2.0
/*
 * The TCP echo server's line protocol: a greeting on connect, then one
 * reply line per request line ("TEST", "PING", "IS_TLS", anything else is
 * echoed). Like Go's bufio.Scanner, a final line without "\n" still counts
 * when the peer closes, and "\r\n" endings are accepted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "conn.h"
#include "json_out.h"

#define LINE_GREETING	"Gateway API Test TCP Server\n"
#define LINE_MAX_LEN	(64 * 1024)	/* bufio.Scanner's default limit */

struct line_conn {
	struct conn c;
};

static int write_json_field(struct strbuf *out, const char *key, const char *val, bool last)
{
	int err = strbuf_printf(out, "\"%s\":", key);

	err = err ?: json_append_cstr(out, val);
	return err ?: strbuf_puts(out, last ? "}\n" : ",");
}

static int reply_test(struct conn *c)
{
	const struct pod_identity *id = &c->srv->opts->id;
	char port[8];
	int err;

	snprintf(port, sizeof(port), "%u", c->local_port);
	err = strbuf_putc(&c->out, '{');
	err = err ?: write_json_field(&c->out, "namespace", id->ns, false);
	err = err ?: write_json_field(&c->out, "ingress", id->ingress, false);
	err = err ?: write_json_field(&c->out, "service", id->service, false);
	err = err ?: write_json_field(&c->out, "pod", id->pod, false);
	return err ?: write_json_field(&c->out, "tcpport", port, true);
}

static int reply_line(struct conn *c, const char *line, size_t len)
{
	int err;

	if (len == 4 && !memcmp(line, "TEST", 4))
		return reply_test(c);
	if (len == 4 && !memcmp(line, "PING", 4))
		return strbuf_puts(&c->out, "PONG\n");
	if (len == 6 && !memcmp(line, "IS_TLS", 6))
		return strbuf_puts(&c->out, "false\n");	/* no TLS listener here */
	err = strbuf_append(&c->out, line, len);
	return err ?: strbuf_putc(&c->out, '\n');
}

static int line_process(struct conn *c)
{
	int err = 0;

	while (!err && strbuf_avail(&c->out) < CONN_OUT_HIGH_WATER) {
		const char *buf = strbuf_peek(&c->in);
		size_t avail = strbuf_avail(&c->in), len, used;
		const char *nl = memchr(buf, '\n', avail);

		if (nl) {
			len = nl - buf;
			used = len + 1;
		} else if (avail && c->peer_eof) {
			len = used = avail;	/* the last line, unterminated */
		} else {
			if (avail > LINE_MAX_LEN) {
				vlog(c->srv, "tcp: %s: line longer than %d bytes, closing",
				     c->peer, LINE_MAX_LEN);
				c->close_after_flush = true;
			}
			break;
		}
		if (len && buf[len - 1] == '\r')
			len--;
		vlog(c->srv, "tcp: %s on port %u: %.*s", c->peer, c->local_port,
		     (int)(len < 80 ? len : 80), buf);
		err = reply_line(c, buf, len);
		strbuf_consume(&c->in, used);
	}
	return err;
}

static int line_timeout(struct conn *c)
{
	return 0;
}

static void line_destroy(struct conn *c)
{
	free(container_of(c, struct line_conn, c));
}

static const struct conn_ops line_conn_ops = {
	.process = line_process,
	.timeout = line_timeout,
	.destroy = line_destroy,
};

int line_conn_accept(struct echo_server *srv, int fd, const struct listener *l)
{
	struct line_conn *lc = calloc(1, sizeof(*lc));
	int err;

	if (!lc) {
		close(fd);
		return -ENOMEM;
	}
	err = conn_init(&lc->c, srv, fd, l, &line_conn_ops);
	if (err) {
		close(fd);
		free(lc);
		return err;
	}
	err = strbuf_puts(&lc->c.out, LINE_GREETING);
	if (err) {
		conn_destroy(&lc->c);
		return err;
	}
	conn_run(&lc->c);
	return 0;
}
