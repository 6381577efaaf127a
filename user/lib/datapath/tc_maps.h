/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writer and counters of the TC data path's own maps (layout in
 * include/gammad/maps.h): pod IPs with their namespace and local veth, and
 * the per-reason packet counters. The route tables are shared with the
 * connect-time path and written with datapath.h.
 */
#ifndef GAMMAD_TC_MAPS_H
#define GAMMAD_TC_MAPS_H

#include <stdint.h>

#include "datapath.h"

/*
 * A pod IP: packets from it are clients of namespace ns_id; a local pod
 * (ifindex of the host side of its veth, 0 for other nodes' pods) gets its
 * translated packets straight into its netns.
 */
int dp_pod_set(struct dp *dp, int family, const void *addr, uint32_t ns_id, uint32_t ifindex);
int dp_pod_delete(struct dp *dp, int family, const void *addr);

/* out[GAMMAD_TC_MAX], indexed by enum gammad_tc_reason, summed over CPUs. */
int dp_tc_counters(struct dp *dp, __u64 *out);
const char *dp_tc_reason_name(unsigned int reason);

#endif
