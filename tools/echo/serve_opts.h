/* SPDX-License-Identifier: Apache-2.0 */
/* Command line of `echo serve`. */
#ifndef ECHO_SERVE_OPTS_H
#define ECHO_SERVE_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "identity.h"

#define SERVE_MAX_LISTENERS 64
#define SERVE_DEFAULT_HTTP_PORT 8080

enum listener_proto {
	PROTO_HTTP,	/* --port, --grpc, --tls: HTTP/1.1 */
	PROTO_TCP_LINE,	/* --tcp: the line protocol of the TCP echo server */
	PROTO_UDP,	/* --udp */
};

struct listen_spec {
	enum listener_proto proto;
	unsigned short port;	/* 0: the kernel picks one */
};

struct serve_opts {
	struct listen_spec listeners[SERVE_MAX_LISTENERS];
	int nr_listeners;
	struct pod_identity id;
	const char *ready_file;
	bool verbose;
};

/* Parse argv (argv[0] is "serve"); -EINVAL after printing what is wrong. */
int serve_opts_parse(int argc, char **argv, struct serve_opts *opts);
void serve_usage(FILE *out);

const char *listener_proto_name(enum listener_proto proto);

#endif
