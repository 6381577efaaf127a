// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client.h"
#include "client_http.h"
#include "client_report.h"
#include "clock.h"
#include "net.h"
#include "url.h"

/* Count mode reports this many errors on stderr, then only counts them. */
#define MAX_ERRORS_SHOWN 5

static void conn_close(struct client_conn *cc)
{
	if (cc->fd >= 0)
		close(cc->fd);
	cc->fd = -1;
	cc->reused = false;
	strbuf_reset(&cc->in);
}

/*
 * One request with its own deadline. A keep-alive connection the server
 * closed while idle is reopened once, as HTTP clients do.
 */
static int do_request(struct client_conn *cc, const struct client_opts *o,
		      const struct url *u, const struct addrinfo *ai,
		      struct client_response *resp, char *err_msg, size_t size)
{
	int64_t deadline = now_ms() + o->timeout_ms;
	bool retry;
	int err;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (cc->fd < 0) {
			cc->fd = net_connect(ai, deadline, err_msg, size);
			if (cc->fd < 0)
				return cc->fd;
		}
		err = client_http_exchange(cc, o, u, deadline, resp, &retry, err_msg, size);
		if (!err) {
			if (resp->must_close || o->new_conn)
				conn_close(cc);
			return 0;
		}
		conn_close(cc);
		if (!retry)
			return err;
	}
	return err;
}

static int resolve_target(const struct client_opts *o, const struct url *u,
			  struct addrinfo **ai)
{
	char host[URL_HOST_MAX];
	unsigned short port;

	if (!o->connect_to)
		return net_resolve(u->host, u->port, SOCK_STREAM, 0, ai);
	if (hostport_parse("--connect-to", o->connect_to, u->port, host, &port))
		return -EINVAL;
	return net_resolve(host, port, SOCK_STREAM, 1, ai);
}

static int run_count(const struct client_opts *o, const struct url *u,
		     const struct addrinfo *ai, struct client_conn *cc,
		     struct client_response *resp)
{
	struct tally t = { 0 };
	char err_msg[256];
	int err;

	for (long i = 0; i < o->count; i++) {
		err = do_request(cc, o, u, ai, resp, err_msg, sizeof(err_msg));
		if (err) {
			if (t.errors++ < MAX_ERRORS_SHOWN)
				fprintf(stderr, "echo client: request %ld to %s: %s\n", i + 1,
					o->target, err_msg);
			continue;
		}
		if (tally_add(&t, resp)) {
			fprintf(stderr, "echo client: out of memory\n");
			tally_free(&t);
			return 1;
		}
	}
	t.total = o->count;
	tally_print(stdout, &t, o->json);
	err = t.errors ? 1 : 0;
	tally_free(&t);
	return err;
}

int client_http_run(const struct client_opts *o)
{
	struct client_conn cc = { .fd = -1 };
	struct client_response *resp;
	struct addrinfo *ai = NULL;
	char err_msg[256];
	struct url u;
	int ret;

	if (url_parse(o->target, &u))
		return 2;
	if (resolve_target(o, &u, &ai))
		return 1;
	resp = calloc(1, sizeof(*resp));	/* large: the header table */
	if (!resp) {
		freeaddrinfo(ai);
		return 1;
	}
	if (o->count) {
		ret = run_count(o, &u, ai, &cc, resp);
	} else if (do_request(&cc, o, &u, ai, resp, err_msg, sizeof(err_msg))) {
		fprintf(stderr, "echo client: %s: %s\n", o->target, err_msg);
		ret = 1;
	} else {
		report_response(stdout, resp);
		ret = 0;
	}
	conn_close(&cc);
	strbuf_free(&cc.in);
	client_response_free(resp);
	free(resp);
	freeaddrinfo(ai);
	return ret;
}

int client_main(int argc, char **argv)
{
	struct client_opts o;
	int ret;

	if (client_opts_parse(argc, argv, &o))
		return 2;
	if (o.mode == CLIENT_HTTP && (o.http2 || !strncasecmp(o.target, "grpc://", 7)))
		ret = client_h2_run(&o);
	else if (o.mode == CLIENT_HTTP)
		ret = client_http_run(&o);
	else
		ret = client_stream_run(&o);
	client_opts_free(&o);
	if (fflush(stdout)) {
		fprintf(stderr, "echo client: writing the output: %s\n", strerror(errno));
		return 1;
	}
	return ret;
}
