// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_opts.h"

enum {
	OPT_PORT = 256, OPT_TCP, OPT_UDP, OPT_GRPC, OPT_TLS, OPT_CRT, OPT_KEY,
	OPT_POD, OPT_NAMESPACE, OPT_SERVICE, OPT_INGRESS, OPT_READY_FILE,
};

static const struct option serve_long_opts[] = {
	{ "port", required_argument, NULL, OPT_PORT },
	{ "tcp", required_argument, NULL, OPT_TCP },
	{ "udp", required_argument, NULL, OPT_UDP },
	{ "grpc", required_argument, NULL, OPT_GRPC },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "crt", required_argument, NULL, OPT_CRT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "pod", required_argument, NULL, OPT_POD },
	{ "namespace", required_argument, NULL, OPT_NAMESPACE },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "ingress", required_argument, NULL, OPT_INGRESS },
	{ "ready-file", required_argument, NULL, OPT_READY_FILE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: echo serve [--port=N]... [--tcp=N]... [--udp=N]... [--grpc=N]... [--tls=N]...\n"
		"                  [--pod NAME] [--namespace NS] [--service NAME] [--ingress NAME]\n"
		"                  [--ready-file PATH] [-v]\n"
		"  --port, --grpc, --tls  HTTP/1.1 echo listener (no TLS or gRPC: all speak\n"
		"                         plain HTTP/1.1; --crt and --key are accepted and ignored)\n"
		"  --tcp                  TCP line-protocol listener (TEST, PING, IS_TLS)\n"
		"  --udp                  UDP echo listener\n"
		"  Port 0 lets the kernel pick; --ready-file lists the bound ports.\n"
		"  Default: --port=%d. Identity defaults come from POD_NAME, NAMESPACE,\n"
		"  SERVICE_NAME and INGRESS_NAME.\n", SERVE_DEFAULT_HTTP_PORT);
}

const char *listener_proto_name(enum listener_proto proto)
{
	switch (proto) {
	case PROTO_HTTP: return "http";
	case PROTO_TCP_LINE: return "tcp";
	case PROTO_UDP: return "udp";
	}
	return "?";
}

static int parse_port(const char *flag, const char *arg, unsigned short *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 0 || v > 65535) {
		fprintf(stderr, "echo serve: --%s=%s: not a port number (0-65535)\n",
			flag, arg);
		return -EINVAL;
	}
	*port = v;
	return 0;
}

/*
 * Add a listener. The conformance manifests give 8443 as both --port and
 * --tls: all HTTP flavours are the same server here, so one socket serves
 * them. A port that is HTTP and the line protocol at once cannot be served.
 */
static int add_listener(struct serve_opts *opts, enum listener_proto proto,
			const char *flag, const char *arg)
{
	struct listen_spec *spec;
	unsigned short port;
	int err;

	err = parse_port(flag, arg, &port);
	if (err)
		return err;
	for (int i = 0; port && i < opts->nr_listeners; i++) {
		spec = &opts->listeners[i];
		if (spec->port != port)
			continue;
		if (spec->proto == proto)
			return 0;
		if (spec->proto != PROTO_UDP && proto != PROTO_UDP) {
			fprintf(stderr, "echo serve: TCP port %u is given both as %s and as --%s\n",
				port, listener_proto_name(spec->proto), flag);
			return -EINVAL;
		}
	}
	if (opts->nr_listeners == SERVE_MAX_LISTENERS) {
		fprintf(stderr, "echo serve: more than %d listeners\n", SERVE_MAX_LISTENERS);
		return -E2BIG;
	}
	spec = &opts->listeners[opts->nr_listeners++];
	spec->proto = proto;
	spec->port = port;
	return 0;
}

int serve_opts_parse(int argc, char **argv, struct serve_opts *opts)
{
	int opt, err = 0;

	memset(opts, 0, sizeof(*opts));
	identity_from_env(&opts->id);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", serve_long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_PORT:
			err = add_listener(opts, PROTO_HTTP, "port", optarg);
			break;
		case OPT_GRPC:
			err = add_listener(opts, PROTO_HTTP, "grpc", optarg);
			break;
		case OPT_TLS:
			err = add_listener(opts, PROTO_HTTP, "tls", optarg);
			break;
		case OPT_TCP:
			err = add_listener(opts, PROTO_TCP_LINE, "tcp", optarg);
			break;
		case OPT_UDP:
			err = add_listener(opts, PROTO_UDP, "udp", optarg);
			break;
		case OPT_CRT:
		case OPT_KEY:
			break;	/* no TLS support: certificates are not used */
		case OPT_POD:
			opts->id.pod = optarg;
			break;
		case OPT_NAMESPACE:
			opts->id.ns = optarg;
			break;
		case OPT_SERVICE:
			opts->id.service = optarg;
			break;
		case OPT_INGRESS:
			opts->id.ingress = optarg;
			break;
		case OPT_READY_FILE:
			opts->ready_file = optarg;
			break;
		case 'v':
			opts->verbose = true;
			break;
		case 'h':
			serve_usage(stdout);
			exit(0);
		default:
			serve_usage(stderr);
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (optind < argc) {
		fprintf(stderr, "echo serve: unexpected argument '%s'\n", argv[optind]);
		serve_usage(stderr);
		return -EINVAL;
	}
	if (!opts->nr_listeners) {
		opts->listeners[0].proto = PROTO_HTTP;
		opts->listeners[0].port = SERVE_DEFAULT_HTTP_PORT;
		opts->nr_listeners = 1;
	}
	return 0;
}
