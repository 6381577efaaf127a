// SPDX-License-Identifier: Apache-2.0
/* The UDP echo server: one JSON reply per datagram, sent back to its sender. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "json_out.h"
#include "server.h"

/* Bound the work per wakeup so TCP connections are not starved. */
#define UDP_BATCH 64

static int build_reply(struct strbuf *out, const struct pod_identity *id,
		       const char *data, size_t len)
{
	int err = strbuf_puts(out, "{\"request\":");

	err = err ?: json_append_string(out, data, len);
	err = err ?: strbuf_puts(out, ",\"namespace\":");
	err = err ?: json_append_cstr(out, id->ns);
	err = err ?: strbuf_puts(out, ",\"ingress\":");
	err = err ?: json_append_cstr(out, id->ingress);
	err = err ?: strbuf_puts(out, ",\"service\":");
	err = err ?: json_append_cstr(out, id->service);
	err = err ?: strbuf_puts(out, ",\"pod\":");
	err = err ?: json_append_cstr(out, id->pod);
	return err ?: strbuf_putc(out, '}');
}

void udp_echo_handle(struct echo_server *srv, struct listener *l)
{
	struct strbuf reply = STRBUF_INIT;

	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		ssize_t n;

		n = recvfrom(l->fd, srv->io_buf, sizeof(srv->io_buf), MSG_DONTWAIT,
			     (struct sockaddr *)&peer, &peer_len);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				vlog(srv, "udp: port %u: recvfrom: %s", l->port, strerror(errno));
			break;
		}
		strbuf_reset(&reply);
		if (build_reply(&reply, &srv->opts->id, srv->io_buf, n)) {
			pr_err("echo serve: udp: out of memory");
			break;
		}
		vlog(srv, "udp: %zd bytes on port %u", n, l->port);
		/* A lost reply is what UDP allows; the client retries or times out. */
		if (sendto(l->fd, strbuf_peek(&reply), strbuf_avail(&reply), MSG_DONTWAIT,
			   (struct sockaddr *)&peer, peer_len) < 0)
			vlog(srv, "udp: port %u: sendto: %s", l->port, strerror(errno));
	}
	strbuf_free(&reply);
}
