/* SPDX-License-Identifier: Apache-2.0 */
/* `echo client`: requests against echo servers, output for harnesses. */
#ifndef ECHO_CLIENT_H
#define ECHO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLIENT_MAX_HEADERS 64
#define CLIENT_DEFAULT_TIMEOUT_MS 5000

enum client_mode { CLIENT_HTTP, CLIENT_TCP, CLIENT_UDP };

struct client_header {
	char *line;		/* "Name: value", owned */
};

struct client_opts {
	enum client_mode mode;
	const char *target;	/* the URL, or HOST:PORT for --tcp/--udp */
	const char *method;
	struct client_header headers[CLIENT_MAX_HEADERS];
	int nr_headers;
	const char *host_header;	/* from -H Host:..., replaces the URL's */
	long count;		/* 0: a single request, printed in full */
	const char *body;
	int timeout_ms;
	const char *connect_to;
	const char *send;	/* --send for --tcp/--udp */
	bool new_conn;
	bool json;
	int http2;		/* HTTP/2: 0 no (HTTP/1.1), CLIENT_H2_PRIOR, CLIENT_H2C_UPGRADE */
	long concurrency;	/* HTTP/2 and gRPC --count: calls in flight at once */
	const char *stream;	/* gRPC: "server", "client", "bidi" (gammad.echo.Stream) */
	long messages;		/* messages of a streaming call */
};

#define CLIENT_H2_PRIOR 1
#define CLIENT_H2C_UPGRADE 2

/* Exit status: 0 success, 1 request failed, 2 bad usage. */
int client_main(int argc, char **argv);

int client_opts_parse(int argc, char **argv, struct client_opts *o);
void client_opts_free(struct client_opts *o);
void client_usage(FILE *out);

int client_http_run(const struct client_opts *o);
int client_stream_run(const struct client_opts *o);
/* HTTP/2 (--h2, --h2c) and gRPC (grpc:// URLs), client_h2.c. */
int client_h2_run(const struct client_opts *o);

#endif
