// SPDX-License-Identifier: Apache-2.0
/*
 * gammactl: where does my traffic go, and why. Reads the data-path maps
 * pinned by gammad (no agent needed), the status file the agent writes
 * beside its manifests, and for `explain` the manifests themselves.
 *
 *   gammactl [--pin-dir DIR] [--json] [--manifests DIR] COMMAND [ARGS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "gammactl.h"

struct command {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *args, *help;
};

static const struct command commands[] = {
	{ "services", ctl_services, "",
	  "every ClusterIP:port with its client classes, route table, counters" },
	{ "routes", ctl_routes, "[NS/NAME]",
	  "the rules as the kernel holds them: backends with weights in %, endpoints" },
	{ "endpoints", ctl_endpoints, "SERVICE",
	  "the endpoints behind a Service (ns/name, name or ClusterIP[:port])" },
	{ "stats", ctl_stats, "[--watch [--interval S] [--count N]]",
	  "connections per Service port, route and backend; drops by reason;\n"
	  "              TC path counters (translations, hairpins); map fill" },
	{ "status", ctl_status, "",
	  "route conditions (Accepted, ResolvedRefs) from the agent's status file" },
	{ "explain", ctl_explain, "SRC_POD DST_IP:PORT [REQUEST-LINE [HEADER...]]",
	  "which class, route, rule and backends a connection or request gets, and why" },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gammactl [--pin-dir DIR] [--json] [--manifests DIR] [--status-file PATH]\n"
		"                [--node-name NAME] [--zone ZONE] [--agent IP:PORT] COMMAND [ARGS]\n"
		"\ncommands:\n");
	for (size_t i = 0; i < NR_COMMANDS; i++)
		fprintf(out, "  %-9s %s\n  %-9s   %s\n", commands[i].name, commands[i].args, "",
			commands[i].help);
	fprintf(out,
		"\noptions (before or after COMMAND):\n"
		"  --pin-dir DIR      maps pinned by gammad (default " DP_PIN_DIR_DEFAULT ")\n"
		"  --json             JSON instead of tables\n"
		"  --manifests DIR    the agent's manifest directory (status, explain)\n"
		"  --status-file PATH the status file (default DIR/.gammad-status.json); it\n"
		"                     names DIR, so explain needs only one of the two\n"
		"  --node-name NAME   explain: the node whose agent decides (default: the\n"
		"                     source pod's spec.nodeName), as gammad run --node-name\n"
		"  --zone ZONE        explain: that node's zone, as gammad run --zone\n"
		"  --agent IP:PORT    explain: the running agent's --metrics-addr, asked what\n"
		"                     its HTTP engine does with the request (default "
		CTL_AGENT_DEFAULT ")\n");
}

/* Global options may come anywhere; the rest is left in argv in order. */
static int parse_global(struct ctl *c, int *argc, char **argv)
{
	int n = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;

		if (!strcmp(a, "--json")) {
			c->json = true;
			continue;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			log_threshold = LOG_DEBUG;
			continue;
		}
		if (!strcmp(a, "--pin-dir"))
			dst = &c->pin_dir;
		else if (!strcmp(a, "--manifests"))
			dst = &c->manifests;
		else if (!strcmp(a, "--status-file"))
			dst = &c->status_file;
		else if (!strcmp(a, "--node-name"))
			dst = &c->node_name;
		else if (!strcmp(a, "--zone"))
			dst = &c->zone;
		else if (!strcmp(a, "--agent"))
			dst = &c->agent;
		if (dst) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "gammactl: %s needs a value\n", a);
				return -1;
			}
			*dst = argv[++i];
			continue;
		}
		if (!strncmp(a, "--pin-dir=", 10)) {
			c->pin_dir = a + 10;
			continue;
		}
		if (!strncmp(a, "--manifests=", 12)) {
			c->manifests = a + 12;
			continue;
		}
		if (!strncmp(a, "--status-file=", 14)) {
			c->status_file = a + 14;
			continue;
		}
		argv[n++] = argv[i];
	}
	*argc = n;
	argv[n] = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = { .pin_dir = DP_PIN_DIR_DEFAULT, .out = stdout, .agent = CTL_AGENT_DEFAULT };

	log_threshold = LOG_WARN;
	if (parse_global(&c, &argc, argv))
		return CTL_EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(argv[1], commands[i].name)) {
			int ret = commands[i].run(&c, argc - 1, argv + 1);

			if (fflush(stdout))
				ret = CTL_EXIT_ERROR;
			return ret;
		}
	fprintf(stderr, "gammactl: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return CTL_EXIT_USAGE;
}
