/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client class: the Kubernetes namespace of the process calling connect(),
 * known by its cgroup. Kubelet makes a cgroup per pod (pod<UID>) with one
 * child per container, so the pod cgroup is an ancestor of the caller's;
 * the agent maps pod cgroup ids to namespace ids. One bounded loop from the
 * root down, first hit wins: kubepods/qos levels are never in the map.
 * Per-packet hooks have no task: they know the client by its pod IP.
 */
#ifndef GAMMAD_BPF_CLASS_H
#define GAMMAD_BPF_CLASS_H

#include "lib/maps.h"

/* Namespace id of the current task, GAMMAD_NS_ALL when unknown. */
static __always_inline __u32 client_ns_id(void)
{
	struct gammad_cgns_val *v;
	__u64 id;
	int level;

	for (level = 1; level <= GAMMAD_MAX_CGROUP_DEPTH; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;	/* deeper than the caller's own cgroup */
		v = bpf_map_lookup_elem(&gammad_cgns_v1, &id);
		if (v)
			return v->ns_id;
	}
	return GAMMAD_NS_ALL;
}

/*
 * Namespace id of a packet's source: per packet there is no task, so the
 * agent maps pod IPs to namespaces (gammad_pod_v1); anything else (node
 * addresses, unknown pods) is GAMMAD_NS_ALL, the producer routes.
 */
static __always_inline __u32 addr_ns_id(const __u8 addr[16], __u8 family)
{
	struct gammad_pod_key k = { .family = family };
	struct gammad_pod_val *v;

	__builtin_memcpy(k.addr, addr, sizeof(k.addr));
	v = bpf_map_lookup_elem(&gammad_pod_v1, &k);
	return v ? v->ns_id : GAMMAD_NS_ALL;
}

#endif
