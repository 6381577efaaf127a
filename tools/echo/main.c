// SPDX-License-Identifier: Apache-2.0
/*
 * echo: the test workload of gammad's lab and tests.
 *
 *	echo serve [options]	HTTP/1.1, TCP line and UDP echo server that
 *				answers like Gateway API's echo-basic
 *	echo client URL ...	requests against it, printing what the
 *				conformance harness parses
 *
 * Run either with --help for its options.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "serve_opts.h"
#include "server.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: echo serve [options]      (echo serve --help)\n"
		     "       echo client URL [options] (echo client --help)\n");
}

int main(int argc, char **argv)
{
	struct serve_opts opts;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "serve")) {
		if (serve_opts_parse(argc - 1, argv + 1, &opts))
			return 2;
		return server_run(&opts) ? 1 : 0;
	}
	if (!strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	fprintf(stderr, "echo: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
