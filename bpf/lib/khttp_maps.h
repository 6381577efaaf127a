/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel HTTP path's maps (include/gammad/maps.h, "HTTP/1.1 in the
 * kernel"), declared only by the objects that use them, so the other
 * programs load as before. KH_LOOKUP is what bpf/lib/khttp.h reads them with.
 */
#ifndef GAMMAD_BPF_KHTTP_MAPS_H
#define GAMMAD_BPF_KHTTP_MAPS_H

#include "lib/common.h"

/* Values are kilobytes: allocated as written, not preallocated. */
#define GAMMAD_KH_HASH(_name, _key, _val, _max)			\
	struct {						\
		__uint(type, BPF_MAP_TYPE_HASH);		\
		__uint(map_flags, BPF_F_NO_PREALLOC);		\
		__uint(max_entries, _max);			\
		__type(key, _key);				\
		__type(value, _val);				\
	} _name SEC(".maps")

GAMMAD_KH_HASH(gammad_khcls_v1, struct gammad_cons_key, struct gammad_kh_class_val, 16384);
GAMMAD_KH_HASH(gammad_khtab_v1, __u32, struct gammad_kh_table, 16384);
GAMMAD_KH_HASH(gammad_khent_v1, struct gammad_kh_key, struct gammad_kh_entry, 65536);
GAMMAD_KH_HASH(gammad_khrul_v1, struct gammad_kh_key, struct gammad_kh_rule, 65536);
GAMMAD_KH_HASH(gammad_khrb_v1, struct gammad_kh_key, struct gammad_kh_rb, 65536);
GAMMAD_KH_HASH(gammad_khal_v1, struct gammad_kh_alias_key, struct gammad_alias_val, 65536);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GAMMAD_KH_R_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} gammad_khst_v1 SEC(".maps");

#define KH_LOOKUP(map, key) bpf_map_lookup_elem(&map, key)

/* Count a verdict by reason. */
static __always_inline void kh_count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&gammad_khst_v1, &reason);

	if (c)
		*c += 1;
}

#endif
