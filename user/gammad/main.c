// SPDX-License-Identifier: Apache-2.0
/*
 * gammad: the node agent. A subcommand dispatcher; each subcommand lives in
 * its own file (cmd_<name>.c) and is listed in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct subcommand subcommands[] = {
	{ "translate", cmd_translate,
	  "print the effective route tables and statuses of manifests (no kernel)" },
	{ "run", cmd_run,
	  "the agent: write the translated manifests into the kernel data path" },
	{ "uninstall", cmd_uninstall,
	  "detach the hooks and remove everything pinned (also: --uninstall)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: gammad <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\n`gammad <command> --help` describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	/* `gammad --uninstall` is the spelling operators expect from a flag. */
	if (!strcmp(argv[1], "--uninstall"))
		argv[1] = "uninstall";
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	/* `gammad --manifests DIR ...`: options alone mean the agent (DaemonSet). */
	if (argv[1][0] == '-' && argv[1][1] == '-')
		return cmd_run(argc, argv);
	fprintf(stderr, "gammad: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
