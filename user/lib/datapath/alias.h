/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alias tables (Vose's alias method) in exact integer arithmetic, the
 * structure BPF uses to pick a weighted backend in O(1) (bpf/lib/lb.h).
 *
 * With m backends of positive weight w_i and W = sum w_i, the table has m
 * slots; BPF draws slot s uniformly in [0, m) and r uniformly in [0, W) and
 * takes slots[s].primary when r < slots[s].threshold, slots[s].alias
 * otherwise. Over all m * W pairs (s, r), backend i is chosen exactly
 * w_i * m times: its probability is exactly w_i / W, for any W < 2^32
 * (Gateway API weights go to 1,000,000 each). Weight 0 is never chosen.
 */
#ifndef GAMMAD_ALIAS_H
#define GAMMAD_ALIAS_H

#include <stddef.h>
#include <stdint.h>

#include "gammad/maps.h"

/*
 * Build the table of n (id, weight) pairs into slots[] (room for n).
 * Entries of weight 0 get no slot. On success *nr_slots is the number of
 * positive weights (0: nothing to route to) and *total_weight their sum.
 * Returns 0, -EINVAL for bad arguments, -ERANGE when the sum exceeds
 * UINT32_MAX, -ENOMEM.
 */
int alias_table_build(const uint32_t *ids, const uint32_t *weights, size_t n,
		      struct gammad_alias_val *slots, uint32_t *nr_slots,
		      uint32_t *total_weight);

/*
 * How many of the nr_slots * total_weight draws select id: the exact
 * numerator of its probability (denominator nr_slots * total_weight).
 * For tests and for `gammactl` to show effective shares.
 */
uint64_t alias_table_share(const struct gammad_alias_val *slots, uint32_t nr_slots,
			   uint32_t total_weight, uint32_t id);

#endif
