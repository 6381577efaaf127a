// SPDX-License-Identifier: Apache-2.0
/*
 * gammad translate [--json [--compact]] [--node-name NAME] [--zone ZONE]
 *                  [--map-size endpoints-per-service=N] [-v] PATH...
 * gammad translate --bench [--services N] [--routes N] [--endpoints N]
 *
 * Loads manifests (files and directories), translates them and prints the
 * effective tables and route statuses. Touches no kernel state.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "datapath/datapath.h"
#include "input/manifest.h"
#include "translate/translate.h"
#include "translate/translate_output.h"
#include "cmd.h"

struct translate_opts {
	bool json, compact, bench;
	struct tr_opts tr;	/* as gammad run on that node would translate */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gammad translate [--json [--compact]] [--node-name NAME] [--zone ZONE]\n"
		"                        [--map-size endpoints-per-service=N] [-v] PATH...\n"
		"       gammad translate --bench [--services N] [--routes N] [--endpoints N]\n"
		"\n"
		"Print the effective route table of every Service port for every client\n"
		"class, and the status of every route, for the manifests in PATH (files or\n"
		"directories of YAML/JSON). Exit 0, or 1 when the input had errors (they are\n"
		"printed and the rest is translated), 2 on usage errors.\n"
		"--node-name, --zone, --map-size endpoints-per-service: as gammad run takes\n"
		"them; the endpoints a Service port uses depend on them\n"
		"(internalTrafficPolicy, trafficDistribution).\n");
}

static int parse_opts(int argc, char **argv, struct translate_opts *o)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "compact", no_argument, NULL, 'c' },
		{ "bench", no_argument, NULL, 'b' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "zone", required_argument, NULL, 'z' },
		{ "map-size", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+jcbn:z:s:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			o->json = true;
			break;
		case 'c':
			o->compact = true;
			break;
		case 'b':
			o->bench = true;
			return 0;	/* the benchmark parses the rest */
		case 'n':
			o->tr.node_name = optarg;
			break;
		case 'z':
			o->tr.zone = optarg;
			break;
		case 's': {
			struct dp_sizes sz = { 0 };
			char msg[512];

			if (strncmp(optarg, "endpoints-per-service=", 22) ||
			    dp_sizes_parse(&sz, optarg, msg, sizeof(msg))) {
				fprintf(stderr, "gammad translate: --map-size %s: only "
					"endpoints-per-service=N (1 to %u) applies to a translation\n",
					optarg, DP_SIZE_MAX);
				return -1;
			}
			o->tr.max_endpoints = sz.endpoints_per_service;
			break;
		}
		case 'v':
			log_threshold = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

static int translate_paths(char **paths, int nr, const struct translate_opts *o)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	int ret = 0, rc;

	model_init(&m);
	for (int i = 0; i < nr && ret != -ENOMEM; i++)
		ret = manifest_load_path(&m, paths[i], &dg);
	if (ret == -ENOMEM || (ret = translate_opts(&m, &o->tr, &dg, &res))) {
		fprintf(stderr, "gammad translate: %s\n", strerror(-ret));
		model_free(&m);
		diag_free(&dg);
		return EXIT_FATAL;
	}
	if (o->json)
		ret = tr_write_json(stdout, &res, &dg, !o->compact);
	else
		ret = tr_write_text(stdout, &res, &dg);
	rc = ret ? EXIT_FATAL : dg.nr_errors ? EXIT_INPUT_ERRORS : 0;
	tr_result_free(&res);
	model_free(&m);
	diag_free(&dg);
	return rc;
}

int cmd_translate(int argc, char **argv)
{
	struct translate_opts o = { 0 };
	int ret;

	optind = 1;
	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : EXIT_USAGE;
	if (o.bench)
		return translate_bench(argc - optind + 1, argv + optind - 1);
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return translate_paths(argv + optind, argc - optind, &o);
}
