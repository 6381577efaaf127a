// SPDX-License-Identifier: Apache-2.0
/*
 * Vose's alias method, exactly. Every weight is scaled by m (the number of
 * slots), so slot capacity is W and all arithmetic is on integers: a
 * "small" entry (scaled weight < W) fills its own slot up to its weight and
 * lends the rest of the slot to a "large" one, whose remainder shrinks by
 * exactly that much. The invariant sum(remaining) = count(remaining) * W
 * holds at every step, so the last entries are exactly W: no rounding, no
 * leftovers, unlike the floating-point textbook version.
 */
#include <errno.h>
#include <stdlib.h>

#include "alias.h"

struct alias_work {
	uint64_t *scaled;	/* w_i * m, then what is left of it */
	uint32_t *small, *large;	/* stacks of indices into the filtered input */
	uint32_t *ids;
};

static void alias_work_free(struct alias_work *w)
{
	free(w->scaled);
	free(w->small);
	free(w->large);
	free(w->ids);
}

static int alias_work_init(struct alias_work *w, size_t m)
{
	w->scaled = calloc(m, sizeof(*w->scaled));
	w->small = calloc(m, sizeof(*w->small));
	w->large = calloc(m, sizeof(*w->large));
	w->ids = calloc(m, sizeof(*w->ids));
	if (!w->scaled || !w->small || !w->large || !w->ids) {
		alias_work_free(w);
		return -ENOMEM;
	}
	return 0;
}

int alias_table_build(const uint32_t *ids, const uint32_t *weights, size_t n,
		      struct gammad_alias_val *slots, uint32_t *nr_slots,
		      uint32_t *total_weight)
{
	struct alias_work w = {};
	size_t m = 0, ns = 0, nl = 0;
	uint64_t total = 0;
	int err;

	if ((n && (!ids || !weights || !slots)) || !nr_slots || !total_weight)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		total += weights[i];
		m += weights[i] > 0;
	}
	if (total > UINT32_MAX || m > UINT32_MAX)
		return -ERANGE;
	*nr_slots = m;
	*total_weight = total;
	if (!m)
		return 0;

	err = alias_work_init(&w, m);
	if (err)
		return err;
	for (size_t i = 0, j = 0; i < n; i++) {
		if (!weights[i])
			continue;
		w.ids[j] = ids[i];
		w.scaled[j] = (uint64_t)weights[i] * m;
		if (w.scaled[j] < total)
			w.small[ns++] = j;
		else
			w.large[nl++] = j;
		j++;
	}
	while (ns && nl) {
		uint32_t s = w.small[--ns], l = w.large[nl - 1];

		slots[s].threshold = w.scaled[s];
		slots[s].primary = w.ids[s];
		slots[s].alias = w.ids[l];
		w.scaled[l] -= total - w.scaled[s];
		if (w.scaled[l] < total) {
			nl--;
			w.small[ns++] = l;
		}
	}
	/* By the invariant both remainders are exactly W: always the primary. */
	while (nl) {
		uint32_t l = w.large[--nl];

		slots[l] = (struct gammad_alias_val){ total, w.ids[l], w.ids[l] };
	}
	while (ns) {
		uint32_t s = w.small[--ns];

		slots[s] = (struct gammad_alias_val){ total, w.ids[s], w.ids[s] };
	}
	alias_work_free(&w);
	return 0;
}

uint64_t alias_table_share(const struct gammad_alias_val *slots, uint32_t nr_slots,
			   uint32_t total_weight, uint32_t id)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < nr_slots; s++) {
		uint32_t t = slots[s].threshold;

		if (t > total_weight)
			t = total_weight;
		if (slots[s].primary == id)
			n += t;
		if (slots[s].alias == id)
			n += total_weight - t;
	}
	return n;
}
