// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

static int parse_port(const char *what, const char *p, size_t len, unsigned short *port)
{
	unsigned long v = 0;

	if (!len || len > 5)
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		v = v * 10 + (p[i] - '0');
	}
	if (!v || v > 65535)
		goto bad;
	*port = v;
	return 0;
bad:
	fprintf(stderr, "echo client: %s: bad port '%.*s' (want 1-65535)\n", what, (int)len, p);
	return -EINVAL;
}

static int copy_host(const char *what, const char *p, size_t len, char *host)
{
	if (!len || len >= URL_HOST_MAX) {
		fprintf(stderr, "echo client: %s: %s host\n", what, len ? "too long a" : "missing");
		return -EINVAL;
	}
	memcpy(host, p, len);
	host[len] = '\0';
	return 0;
}

/* Split an authority "host[:port]" / "[v6][:port]" at its end @end. */
static int split_authority(const char *what, const char *s, const char *end,
			   unsigned short default_port, char *host, unsigned short *port)
{
	const char *colon;

	if (*s == '[') {
		const char *close = memchr(s, ']', end - s);

		if (!close) {
			fprintf(stderr, "echo client: %s: missing ']' after IPv6 address\n", what);
			return -EINVAL;
		}
		if (copy_host(what, s + 1, close - s - 1, host))
			return -EINVAL;
		if (close + 1 == end) {
			*port = default_port;
			goto check_port;
		}
		if (close[1] != ':') {
			fprintf(stderr, "echo client: %s: unexpected text after ']'\n", what);
			return -EINVAL;
		}
		return parse_port(what, close + 2, end - close - 2, port);
	}
	colon = memchr(s, ':', end - s);
	/* A bare IPv6 address (several colons) has no port. */
	if (colon && memchr(colon + 1, ':', end - colon - 1) && default_port) {
		*port = default_port;
		return copy_host(what, s, end - s, host);
	}
	if (copy_host(what, s, (colon ? colon : end) - s, host))
		return -EINVAL;
	if (colon)
		return parse_port(what, colon + 1, end - colon - 1, port);
	*port = default_port;
check_port:
	if (!*port) {
		fprintf(stderr, "echo client: %s: missing port\n", what);
		return -EINVAL;
	}
	return 0;
}

int url_parse(const char *s, struct url *u)
{
	const char *auth, *end;
	size_t auth_len;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, "grpc://", 7)) {
		u->grpc = true;
	} else if (strncasecmp(s, "http://", 7)) {
		fprintf(stderr, "echo client: URL '%s': only http:// and grpc:// URLs are "
				"supported (this client speaks no TLS)\n", s);
		return -EINVAL;
	}
	auth = s + 7;
	end = auth + strcspn(auth, "/?#");
	auth_len = end - auth;
	if (auth_len >= sizeof(u->authority)) {
		fprintf(stderr, "echo client: URL '%s': host too long\n", s);
		return -EINVAL;
	}
	memcpy(u->authority, auth, auth_len);
	u->authority[auth_len] = '\0';
	if (split_authority("URL", auth, end, 80, u->host, &u->port))
		return -EINVAL;
	u->target = end;
	u->target_len = strcspn(end, "#");
	u->target_needs_slash = *end != '/';	/* no path: "" or "?query" */
	return 0;
}

int hostport_parse(const char *what, const char *s, unsigned short default_port,
		   char *host, unsigned short *port)
{
	return split_authority(what, s, s + strlen(s), default_port, host, port);
}
