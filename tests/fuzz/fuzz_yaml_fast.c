// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the fast YAML reader (input/yaml_fast.h) against
 * libyaml (tests/lib/yaml_fast_diff.c). Every document the fast reader
 * composes must be ydoc_compose()'s; any difference aborts. Then the input
 * is loaded as a manifest (fast reader, libyaml for the rest), for the
 * sanitizers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "input/manifest.h"
#include "lib/yaml_fast_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yfast_diff d;
	struct diag dg = { 0 };
	struct model m;

	log_threshold = LOG_ERROR;
	if (yfast_diff_buf((const char *)data, size, &d)) {
		fprintf(stderr, "fast reader differs from libyaml: %s\n", d.why);
		abort();
	}
	model_init(&m);
	manifest_load_buf(&m, "fuzz.yaml", data, size, &dg);
	model_free(&m);
	diag_free(&dg);
	return 0;
}
