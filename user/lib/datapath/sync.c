// SPDX-License-Identifier: Apache-2.0
/*
 * Waiting for the programs that may still run on what was just replaced
 * (dp_sync, datapath.h): the publication order's retire step and the
 * layout upgrade's commit (layout.c) both need it.
 */
#include <errno.h>
#include <stdint.h>

#include <bpf/bpf.h>

#include "datapath_int.h"

/* The map-in-map whose updates make the kernel wait for running programs. */
int dp_sync_init(struct dp *dp)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);

	dp->sync_inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "gammad_sync_in", 4, 4, 1, NULL);
	if (dp->sync_inner_fd < 0)
		return -errno;
	o.inner_map_fd = dp->sync_inner_fd;
	dp->sync_outer_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "gammad_sync", 4, 4, 1, &o);
	return dp->sync_outer_fd < 0 ? -errno : 0;
}

/*
 * The kernel waits for an RCU grace period after every successful update
 * of a map-in-map (maybe_wait_bpf_programs(), "so that userspace knows all
 * non-sleepable programs that could be running use the new map value").
 * cgroup sock_addr, sockops, sk_msg and TC programs are all non-sleepable.
 */
int dp_sync(struct dp *dp)
{
	uint32_t k = 0;

	return bpf_map_update_elem(dp->sync_outer_fd, &k, &dp->sync_inner_fd, BPF_ANY) ? -errno : 0;
}
