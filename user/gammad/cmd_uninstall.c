// SPDX-License-Identifier: Apache-2.0
/*
 * gammad uninstall [--pin-dir PATH] [--state-dir DIR]: detach every hook and
 * remove every map and link gammad pinned, and the image snapshot of that
 * pin dir (agent_snap.h). Stopping the agent never does this on its own:
 * the pinned data path keeps routing until it is uninstalled.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "datapath/datapath.h"
#include "agent_snap.h"
#include "cmd.h"

int cmd_uninstall(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *pin_dir = "/sys/fs/bpf/gammad", *state_dir = AGENT_STATE_DIR;
	char snap[4200];
	int opt, err;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pin_dir = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'h':
			printf("usage: gammad uninstall [--pin-dir PATH] [--state-dir DIR]\n\n"
			       "Detach gammad's hooks and remove everything pinned under\n"
			       "--pin-dir (default /sys/fs/bpf/gammad), and the image snapshot\n"
			       "gammad run --once kept for it in --state-dir (default "
			       AGENT_STATE_DIR ").\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	/* First: a snapshot must never outlive the state it was applied to. */
	if (!agent_snap_path(state_dir, pin_dir, snap, sizeof(snap)) && unlink(snap) &&
	    errno != ENOENT)
		pr_warn("snapshot %s: %s", snap, strerror(errno));
	err = dp_uninstall(pin_dir);
	if (err) {
		pr_err("uninstall %s: %s", pin_dir, strerror(-err));
		return 1;
	}
	pr_info("uninstalled %s", pin_dir);
	return 0;
}
