// SPDX-License-Identifier: Apache-2.0
/*
 * bench: workload and measuring tools of `make bench` (tools/bench/run.sh).
 *
 *   bench serve --http PORT [--id PORT --name ID]
 *   bench rr  --addr IP:PORT [--count N] [--warmup N] [--cpu-pids P,..]
 *   bench crr --addr IP:PORT [--seconds S] [--cpu-pids P,..]
 *   bench change --addr IP:PORT --expect ID --src F --dst F [--timeout-ms T]
 *   bench gen fill|ipt|cp ...
 *   bench runstat -- CMD [ARGS...]
 *   bench tc --pin-dir P --cgroup C --netns NODE --pod IP,IFNAME...
 *   bench h2engine --listen PORT --backend IP:PORT --backend IP:PORT
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "serve", cmd_serve }, { "rr", cmd_rr },   { "crr", cmd_crr },
		{ "change", cmd_change }, { "gen", cmd_gen }, { "runstat", cmd_runstat },
		{ "tc", cmd_tc }, { "h2engine", cmd_h2engine },
	};

	for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: bench serve|rr|crr|change|gen|runstat|tc|h2engine ... (see tools/bench/README.md)\n");
	return 2;
}
