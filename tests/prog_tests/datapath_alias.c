// SPDX-License-Identifier: Apache-2.0
/*
 * Alias tables are exact: over all nr_slots * total_weight draws (slot, r)
 * the count selecting backend i is weight_i * nr_slots, so its probability
 * is exactly weight_i / total (user/lib/alias.h). No kernel needed.
 */
#include <stdlib.h>

#include "datapath/alias.h"
#include "test_progs.h"

struct alias_case {
	const char *name;
	size_t n;
	uint32_t weights[16];
};

static const struct alias_case cases[] = {
	{ "single", 1, { 1 } },
	{ "equal", 3, { 1, 1, 1 } },
	{ "70_30", 2, { 70, 30 } },
	{ "with_zero", 4, { 0, 5, 0, 7 } },
	{ "all_zero", 3, { 0, 0, 0 } },
	{ "sum_1e6", 3, { 333333, 333333, 333334 } },
	{ "skewed_1e6", 2, { 999999, 1 } },
	{ "max_each", 5, { 1000000, 1000000, 1000000, 1000000, 1 } },
	{ "primes", 7, { 2, 3, 5, 7, 11, 13, 17 } },
};

/* Check exactness of one weight vector; ids are 100 + index. */
static bool check_exact(const uint32_t *weights, size_t n)
{
	struct gammad_alias_val *slots = calloc(n + 1, sizeof(*slots));
	uint32_t *ids = calloc(n + 1, sizeof(*ids));
	uint32_t nr_slots = 0, total = 0;
	uint64_t sum = 0, positive = 0, seen = 0;
	bool ok = false;

	if (!ASSERT_OK_PTR(slots, "calloc") || !ASSERT_OK_PTR(ids, "calloc"))
		goto out;
	for (size_t i = 0; i < n; i++) {
		ids[i] = 100 + i;
		sum += weights[i];
		positive += weights[i] > 0;
	}
	if (!ASSERT_OK(alias_table_build(ids, weights, n, slots, &nr_slots, &total), "build"))
		goto out;
	if (!ASSERT_EQ(total, sum, "total") || !ASSERT_EQ(nr_slots, positive, "nr_slots"))
		goto out;
	for (uint32_t s = 0; s < nr_slots; s++)
		if (!ASSERT_LE(slots[s].threshold, total, "threshold"))
			goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t share = alias_table_share(slots, nr_slots, total, ids[i]);

		if (!ASSERT_EQ(share, (uint64_t)weights[i] * nr_slots, "exact share"))
			goto out;
		seen += share;
	}
	ok = ASSERT_EQ(seen, (uint64_t)nr_slots * total, "every draw has one backend");
out:
	free(slots);
	free(ids);
	return ok;
}

static void test_random_vectors(void)
{
	uint32_t w[1000];

	srand(1294);
	for (int round = 0; round < 50; round++) {
		size_t n = 1 + rand() % 1000;
		uint64_t left = 1000000;

		/* Weights up to the Gateway API maximum, summing to at most 1,000,000. */
		for (size_t i = 0; i < n; i++) {
			uint32_t v = rand() % 5 ? (uint32_t)(rand() % (left / (n - i) * 2 + 1)) : 0;

			if (v > left)
				v = left;
			w[i] = v;
			left -= v;
		}
		w[n - 1] += left;	/* the sum is exactly 1,000,000 */
		if (!check_exact(w, n))
			return;
	}
}

static void test_errors(void)
{
	uint32_t ids[3] = { 1, 2, 3 }, w[3] = { 0xffffffffu, 1, 0 };
	struct gammad_alias_val slots[3];
	uint32_t nr, total;

	ASSERT_EQ(alias_table_build(ids, w, 3, slots, &nr, &total), -ERANGE, "sum over 2^32");
	ASSERT_EQ(alias_table_build(NULL, w, 3, slots, &nr, &total), -EINVAL, "no ids");
	ASSERT_OK(alias_table_build(NULL, NULL, 0, NULL, &nr, &total), "empty");
	ASSERT_EQ(nr, 0, "empty slots");
}

void test_datapath_alias(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test__start_subtest(cases[i].name))
			check_exact(cases[i].weights, cases[i].n);
	if (test__start_subtest("random_1e6"))
		test_random_vectors();
	if (test__start_subtest("errors"))
		test_errors();
}
