/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_URL_H
#define ECHO_URL_H

#include <stdbool.h>

/* Sized for names and addresses, not for arbitrary input. */
#define URL_HOST_MAX 256

struct url {
	char host[URL_HOST_MAX];	/* name or address, without IPv6 brackets */
	char authority[URL_HOST_MAX + 8];	/* as written: the Host header */
	unsigned short port;
	/* "/path?query" without any "#fragment", pointing into the URL */
	const char *target;
	size_t target_len;
	bool target_needs_slash;	/* the URL had only "?query": send "/?query" */
	bool grpc;			/* grpc:// (cleartext HTTP/2) */
};

/*
 * Parse "http://host[:port][/path][?query]". host may be a name, an IPv4
 * address or a bracketed IPv6 address. Prints what is wrong and returns
 * -EINVAL on a bad URL.
 */
int url_parse(const char *s, struct url *u);

/*
 * Parse "host:port", "[v6]:port", or with @default_port != 0 also "host",
 * "v6" and "[v6]" (for --connect-to). Prints what is wrong on error.
 */
int hostport_parse(const char *what, const char *s, unsigned short default_port,
		   char *host, unsigned short *port);

#endif
