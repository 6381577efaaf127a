// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tc_maps.h"

static void pod_key(struct gammad_pod_key *k, int family, const void *addr)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, family == AF_INET6 ? 16 : 4);
	k->family = family;
}

int dp_pod_set(struct dp *dp, int family, const void *addr, uint32_t ns_id, uint32_t ifindex)
{
	struct gammad_pod_val v = { .ns_id = ns_id, .ifindex = ifindex };
	struct gammad_pod_key k;
	int fd = dp_map_fd(dp, GAMMAD_MAP_POD);

	if (fd < 0)
		return fd;
	pod_key(&k, family, addr);
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

int dp_pod_delete(struct dp *dp, int family, const void *addr)
{
	struct gammad_pod_key k;
	int fd = dp_map_fd(dp, GAMMAD_MAP_POD);

	if (fd < 0)
		return fd;
	pod_key(&k, family, addr);
	return bpf_map_delete_elem(fd, &k) && errno != ENOENT ? -errno : 0;
}

int dp_tc_counters(struct dp *dp, __u64 *out)
{
	int fd = dp_map_fd(dp, GAMMAD_MAP_TC_STATS), nr_cpus = libbpf_num_possible_cpus();
	__u64 *vals;
	int err = 0;

	if (fd < 0 || nr_cpus < 0)
		return fd < 0 ? fd : nr_cpus;
	vals = calloc((size_t)nr_cpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t r = 0; r < GAMMAD_TC_MAX && !err; r++) {
		out[r] = 0;
		if (bpf_map_lookup_elem(fd, &r, vals)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < nr_cpus; c++)
			out[r] += vals[c];
	}
	free(vals);
	return err;
}

const char *dp_tc_reason_name(unsigned int reason)
{
	static const char *const names[GAMMAD_TC_MAX] = {
		[GAMMAD_TC_PASS] = "pass",
		[GAMMAD_TC_NEW_FLOW] = "new_flow",
		[GAMMAD_TC_XLATE] = "translated",
		[GAMMAD_TC_REV_XLATE] = "reverse_translated",
		[GAMMAD_TC_ICMP_XLATE] = "icmp_translated",
		[GAMMAD_TC_NO_ENDPOINT] = "no_endpoint",
		[GAMMAD_TC_CT_FULL] = "conntrack_full",
		[GAMMAD_TC_CT_MISS] = "conntrack_miss",
		[GAMMAD_TC_FRAGMENT] = "fragment",
		[GAMMAD_TC_MALFORMED] = "malformed",
		[GAMMAD_TC_CLOSED] = "closed",
		[GAMMAD_TC_CLOSING] = "closing",
		[GAMMAD_TC_EXPIRED] = "expired",
		[GAMMAD_TC_REWRITE_ERR] = "rewrite_error",
		[GAMMAD_TC_REDIR_PEER] = "redirect_peer",
		[GAMMAD_TC_REDIR_NEIGH] = "redirect_neigh",
		[GAMMAD_TC_FIB_MISS] = "fib_miss",
		[GAMMAD_TC_FAMILY] = "endpoint_family",
		[GAMMAD_TC_HAIRPIN] = "hairpin",
		[GAMMAD_TC_UPGRADE_WAIT] = "upgrade_wait",
		[GAMMAD_TC_SWITCH_HOLD] = "switch_hold",
	};

	return reason < GAMMAD_TC_MAX && names[reason] ? names[reason] : "unknown";
}
