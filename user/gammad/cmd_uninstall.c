// SPDX-License-Identifier: Apache-2.0
/*
 * gammad uninstall [--pin-dir PATH]: detach every hook and remove every map
 * and link gammad pinned. Stopping the agent never does this on its own:
 * the pinned data path keeps routing until it is uninstalled.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "cmd.h"

int cmd_uninstall(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *pin_dir = "/sys/fs/bpf/gammad";
	int opt, err;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pin_dir = optarg;
			break;
		case 'h':
			printf("usage: gammad uninstall [--pin-dir PATH]\n\n"
			       "Detach gammad's hooks and remove everything pinned under\n"
			       "--pin-dir (default /sys/fs/bpf/gammad).\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	err = dp_uninstall(pin_dir);
	if (err) {
		pr_err("uninstall %s: %s", pin_dir, strerror(-err));
		return 1;
	}
	pr_info("uninstalled %s", pin_dir);
	return 0;
}
