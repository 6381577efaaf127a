/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keep the TC programs attached where they belong and nowhere else: the
 * host side of every local pod's veth (the ifindex values of gammad_pod_v1,
 * written by the apply from the host routes) and the node's uplinks. Links
 * pinned for interfaces that are neither (a pod that went away) are
 * detached and unpinned.
 */
#ifndef GAMMAD_TC_SYNC_H
#define GAMMAD_TC_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "datapath.h"
#include "tc_attach.h"

struct tc_sync_stats {
	size_t pods, uplinks;		/* interfaces that should have the program */
	size_t attached, detached;	/* changes made */
};

/*
 * refresh: attach (atomically replace the program of) every wanted
 * interface, not only the missing ones: a new agent's programs take over.
 */
int tc_sync(struct tc_dp *t, struct dp *dp, const char *pin_dir, const int *uplinks,
	    size_t nr_uplinks, bool refresh, struct tc_sync_stats *st);

#endif
