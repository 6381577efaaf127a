// SPDX-License-Identifier: Apache-2.0
/*
 * `gammad run` refuses bad input before it loads or attaches anything: the
 * message names what is wrong, the exit status is 2 (usage), and no pin
 * dir is left behind. `gammad --manifests DIR` (no subcommand, as the
 * DaemonSet runs it) is the agent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/lab_env.h"

static const struct {
	const char *name;
	const char *args;	/* after "gammad", before --pin-dir */
	const char *says;	/* substring of the output */
} cases[] = {
	{ "missing_manifests", "run --manifests /nonexistent/gammad", "--manifests /nonexistent/gammad" },
	{ "no_subcommand_is_run", "--manifests /nonexistent/gammad", "--manifests /nonexistent/gammad" },
	{ "unknown_uplink", "run --manifests /tmp --uplink gammad-no-such0", "--uplink gammad-no-such0" },
	{ "bad_map_size", "run --manifests /tmp --map-size endpoints=0", "--map-size endpoints=0" },
	{ "unknown_map", "run --manifests /tmp --map-size nosuch=5", "NAME one of" },
	{ "bad_resync", "run --manifests /tmp --resync 0", "--resync 0" },
	{ "uplink_without_tc", "run --manifests /tmp --uplink lo --no-tc", "--uplink needs the TC path" },
	{ "missing_cgroup", "run --manifests /tmp", "--cgroup /nonexistent/cg" },
	{ "bad_hairpin_addr", "run --manifests /tmp --hairpin-addr 169.254.7", "--hairpin-addr 169.254.7" },
	{ "loopback_hairpin_addr", "run --manifests /tmp --hairpin-addr ::1", "--hairpin-addr ::1" },
	{ "linklocal_hairpin_addr", "run --manifests /tmp --hairpin-addr fe80::7", "IPv6 link-local" },
	{ "two_hairpin_addr4", "run --manifests /tmp --hairpin-addr 169.254.7.2 --hairpin-addr 10.1.1.1",
	  "one address per family" },
	{ "hairpin_without_tc", "run --manifests /tmp --hairpin-addr 169.254.7.2 --no-tc",
	  "--hairpin-addr needs the TC path" },
	{ "engine_port_without_engine", "run --manifests /tmp --engine-port 15007",
	  "--engine-port needs --http-engine" },
	{ "handover_wait_without_engine", "run --manifests /tmp --handover-wait",
	  "--handover-wait needs --http-engine" },
	{ "bad_engine_port", "run --manifests /tmp --http-engine --engine-port 70000",
	  "--engine-port 70000" },
	{ "http_engine_once", "run --manifests /tmp --http-engine --once",
	  "--http-engine needs a running agent" },
	{ "http_engine_no_sockmap", "run --manifests /tmp --http-engine --no-sockmap",
	  "drop --no-sockmap" },
};

void test_agent_cli(void)
{
	char pin[64], *out = NULL;
	struct stat sb;

	snprintf(pin, sizeof(pin), "/sys/fs/bpf/gammad-cli-%d", (int)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;

		if (!test__start_subtest(cases[i].name))
			continue;
		/* A cgroup that does not exist: should validation ever miss, nothing attaches. */
		ret = lab_run_capture(&out, "%s %s --cgroup /nonexistent/cg --pin-dir %s",
				      test_bin("gammad"), cases[i].args,
				      pin);
		ASSERT_EQ(ret, 2, "usage error");
		ASSERT_HAS_SUBSTR(out, cases[i].says, "names what is wrong");
		ASSERT_ERR(stat(pin, &sb), "no pin dir left behind");
		free(out);
		out = NULL;
		if (!stat(pin, &sb))
			lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"), pin);
		free(out);
		out = NULL;
	}
}
