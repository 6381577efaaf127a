// SPDX-License-Identifier: Apache-2.0
/*
 * lab: a simulated one-node Kubernetes cluster for gammad's tests.
 *
 *   lab up [--state DIR] [--out DIR] [--cgroup-parent PATH] [--systemd-cgroups]
 *          [--node-name NAME] FILE|DIR...
 *   lab down [--state DIR]
 *   lab exec [--state DIR] NS/POD [-c CONTAINER] -- CMD [ARGS...]
 *   lab pods [--state DIR] [--json]
 *
 * The state dir defaults to $GAMMAD_LAB_STATE, else /run/gammad-lab.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "lab.h"

const char *lab_default_state_dir(void)
{
	const char *s = getenv(LAB_STATE_ENV);

	return s && *s ? s : LAB_DEFAULT_STATE;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: lab [-v] COMMAND ...\n"
		"  up [--state DIR] [--out DIR] [--cgroup-parent PATH] [--systemd-cgroups]\n"
		"     [--node-name NAME] FILE|DIR...   build the cluster the manifests describe\n"
		"  down [--state DIR]                   remove everything a lab made\n"
		"  exec [--state DIR] NS/POD [-c CONTAINER] -- CMD [ARGS...]\n"
		"                                       run CMD as a process of the pod\n"
		"  pods [--state DIR] [--json]          list the pods\n"
		"State dir: $%s, else %s.\n", LAB_STATE_ENV, LAB_DEFAULT_STATE);
}

int main(int argc, char **argv)
{
	int ret;

	if (argc > 1 && !strcmp(argv[1], "-v")) {
		log_threshold = LOG_DEBUG;
		argv++;
		argc--;
	}
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "up"))
		ret = lab_cmd_up(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "down"))
		ret = lab_cmd_down(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "exec"))
		ret = lab_cmd_exec(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "pods"))
		ret = lab_cmd_pods(argc - 1, argv + 1);
	else {
		fprintf(stderr, "lab: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	return ret ? 1 : 0;
}
