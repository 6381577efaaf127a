// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "http_parse.h"

enum {
	OPT_METHOD = 256, OPT_COUNT, OPT_BODY, OPT_TIMEOUT, OPT_CONNECT_TO,
	OPT_NEW_CONN, OPT_JSON, OPT_TCP, OPT_UDP, OPT_SEND, OPT_H2, OPT_H2C, OPT_CONCURRENCY,
	OPT_STREAM, OPT_MESSAGES,
};

static const struct option client_long_opts[] = {
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "header", required_argument, NULL, 'H' },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "body", required_argument, NULL, OPT_BODY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "connect-to", required_argument, NULL, OPT_CONNECT_TO },
	{ "new-conn", no_argument, NULL, OPT_NEW_CONN },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "tcp", required_argument, NULL, OPT_TCP },
	{ "udp", required_argument, NULL, OPT_UDP },
	{ "send", required_argument, NULL, OPT_SEND },
	{ "h2", no_argument, NULL, OPT_H2 },
	{ "h2c", no_argument, NULL, OPT_H2C },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "stream", required_argument, NULL, OPT_STREAM },
	{ "messages", required_argument, NULL, OPT_MESSAGES },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

void client_usage(FILE *out)
{
	fprintf(out,
		"usage: echo client http://HOST[:PORT][/PATH][?QUERY] [--method=M] [-H Name:Value]...\n"
		"                   [--body=STR] [--count=N [--new-conn] [--json]]\n"
		"                   [--timeout=SECONDS] [--connect-to=IP[:PORT]]\n"
		"       echo client http://... --h2|--h2c [--count=N [--concurrency=C]] ...\n"
		"       echo client grpc://HOST[:PORT][/pkg.Service/Method] [-H Name:Value]...\n"
		"                   [--count=N [--concurrency=C] [--json]]\n"
		"                   [--stream=server|client|bidi [--messages=N]]\n"
		"       echo client --tcp HOST:PORT [--send LINE] [--timeout=SECONDS]\n"
		"       echo client --udp HOST:PORT [--send TEXT] [--timeout=SECONDS]\n"
		"One request prints StatusCode=, ResponseHeader=Name:Value lines, and for an\n"
		"echo body URL=, Host=, Method=, Proto=, RequestHeader=Name:Value and Hostname=\n"
		"(the pod), then a blank line and the body. --count=N sends N requests (one\n"
		"keep-alive connection unless --new-conn) and prints pod=<name> count=<n>,\n"
		"status=<code> count=<n> and errors=<n> lines, or JSON with --json.\n"
		"-H Host:NAME sets the Host header; --connect-to connects elsewhere but keeps it.\n"
		"--tcp and --udp print Peer=IP:PORT (getpeername) and the reply line.\n"
		"--h2: HTTP/2 with prior knowledge, --h2c: HTTP/1.1 Upgrade to h2c; --count\n"
		"calls are streams of one connection, --concurrency at once. grpc:// calls\n"
		"GrpcEcho/Echo (or the path given) and prints StatusCode= (200, or the HTTP\n"
		"status of a gRPC error), GrpcStatus=, Hostname=, RequestHeader=key:value;\n"
		"--stream calls gammad.echo.Stream/<Server|Client|Bidi> and prints Messages=.\n"
		"Exit status: 0 when every request got a response, 1 otherwise, 2 bad usage.\n");
}

static int parse_timeout(const char *arg, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v > 0) || v > 86400) {
		fprintf(stderr, "echo client: --timeout=%s: want seconds, > 0 and <= 86400\n", arg);
		return -EINVAL;
	}
	*ms = (int)ceil(v * 1000);
	return 0;
}

static int parse_count(const char *arg, long *count)
{
	char *end;

	errno = 0;
	*count = strtol(arg, &end, 10);
	if (errno || end == arg || *end || *count < 1 || *count > 100000000) {
		fprintf(stderr, "echo client: --count=%s: want a number from 1 to 100000000\n", arg);
		return -EINVAL;
	}
	return 0;
}

static int add_header(struct client_opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');
	struct http_span name, value;
	char *line;

	if (!colon) {
		fprintf(stderr, "echo client: -H '%s': want Name:Value\n", arg);
		return -EINVAL;
	}
	name = (struct http_span){ arg, colon - arg };
	value = (struct http_span){ colon + 1, strlen(colon + 1) };
	while (value.len && (value.p[0] == ' ' || value.p[0] == '\t'))
		value.p++, value.len--;
	for (size_t i = 0; i < name.len; i++) {
		if (!http_is_tchar(name.p[i])) {
			fprintf(stderr, "echo client: -H '%s': invalid header name\n", arg);
			return -EINVAL;
		}
	}
	if (!name.len || strpbrk(value.p, "\r\n")) {
		fprintf(stderr, "echo client: -H '%s': %s\n", arg,
			name.len ? "line breaks are not allowed in a value" : "empty header name");
		return -EINVAL;
	}
	/* Host is the request's authority, not one more header line. */
	if (http_span_eq_nocase(name, "Host")) {
		o->host_header = value.p;
		return 0;
	}
	if (o->nr_headers == CLIENT_MAX_HEADERS) {
		fprintf(stderr, "echo client: more than %d -H options\n", CLIENT_MAX_HEADERS);
		return -E2BIG;
	}
	if (asprintf(&line, "%.*s: %s", (int)name.len, name.p, value.p) < 0)
		return -ENOMEM;
	o->headers[o->nr_headers++].line = line;
	return 0;
}

static int check_method(const char *method)
{
	for (const char *p = method; *p; p++) {
		if (!http_is_tchar(*p))
			goto bad;
	}
	if (*method)
		return 0;
bad:
	fprintf(stderr, "echo client: --method=%s: not a method name (an HTTP token)\n", method);
	return -EINVAL;
}

static int set_stream_mode(struct client_opts *o, enum client_mode mode, const char *arg)
{
	if (o->mode != CLIENT_HTTP) {
		fprintf(stderr, "echo client: give only one of --tcp and --udp\n");
		return -EINVAL;
	}
	o->mode = mode;
	o->target = arg;
	return 0;
}

static int check_combination(struct client_opts *o, int nr_args, char **args)
{
	if (o->mode == CLIENT_HTTP) {
		if (nr_args != 1) {
			fprintf(stderr, "echo client: %s\n", nr_args ? "give exactly one URL" :
				"missing URL (or --tcp/--udp HOST:PORT)");
			return -EINVAL;
		}
		o->target = args[0];
		if (o->send) {
			fprintf(stderr, "echo client: --send is for --tcp and --udp\n");
			return -EINVAL;
		}
		if ((o->new_conn || o->json) && !o->count) {
			fprintf(stderr, "echo client: --new-conn and --json need --count\n");
			return -EINVAL;
		}
		return 0;
	}
	if (nr_args) {
		fprintf(stderr, "echo client: unexpected argument '%s' with --tcp/--udp\n", args[0]);
		return -EINVAL;
	}
	if (o->count || o->nr_headers || o->host_header || o->body || o->method ||
	    o->connect_to || o->json || o->new_conn) {
		fprintf(stderr, "echo client: HTTP options do not apply to --tcp/--udp\n");
		return -EINVAL;
	}
	if (!o->send)
		o->send = "TEST";
	return 0;
}

int client_opts_parse(int argc, char **argv, struct client_opts *o)
{
	int opt, err = 0;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	optind = 1;
	while (!err && (opt = getopt_long(argc, argv, "H:h", client_long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_METHOD:
			o->method = optarg;
			err = check_method(optarg);
			break;
		case 'H':
			err = add_header(o, optarg);
			break;
		case OPT_COUNT:
			err = parse_count(optarg, &o->count);
			break;
		case OPT_BODY:
			o->body = optarg;
			break;
		case OPT_TIMEOUT:
			err = parse_timeout(optarg, &o->timeout_ms);
			break;
		case OPT_CONNECT_TO:
			o->connect_to = optarg;
			break;
		case OPT_NEW_CONN:
			o->new_conn = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TCP:
			err = set_stream_mode(o, CLIENT_TCP, optarg);
			break;
		case OPT_UDP:
			err = set_stream_mode(o, CLIENT_UDP, optarg);
			break;
		case OPT_SEND:
			o->send = optarg;
			break;
		case OPT_H2:
			o->http2 = CLIENT_H2_PRIOR;
			break;
		case OPT_H2C:
			o->http2 = CLIENT_H2C_UPGRADE;
			break;
		case OPT_CONCURRENCY:
			err = parse_count(optarg, &o->concurrency);
			break;
		case OPT_STREAM:
			o->stream = optarg;
			if (strcmp(optarg, "server") && strcmp(optarg, "client") &&
			    strcmp(optarg, "bidi")) {
				fprintf(stderr, "echo client: --stream=%s: server, client or bidi\n",
					optarg);
				err = -EINVAL;
			}
			break;
		case OPT_MESSAGES:
			err = parse_count(optarg, &o->messages);
			break;
		case 'h':
			client_usage(stdout);
			exit(0);
		default:
			client_usage(stderr);
			err = -EINVAL;
		}
	}
	err = err ?: check_combination(o, argc - optind, argv + optind);
	if (err)
		client_opts_free(o);
	return err;
}

void client_opts_free(struct client_opts *o)
{
	for (int i = 0; i < o->nr_headers; i++)
		free(o->headers[i].line);
	o->nr_headers = 0;
}
