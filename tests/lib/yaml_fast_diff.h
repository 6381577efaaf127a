/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fast YAML reader (input/yaml_fast.h) against libyaml through
 * ydoc_compose(), document by document: every document the fast reader
 * gives must be the one ydoc_compose() gives (same nodes, ids, types,
 * styles, tags, values, marks); where it stops, libyaml goes on.
 */
#ifndef GAMMAD_TESTS_YAML_FAST_DIFF_H
#define GAMMAD_TESTS_YAML_FAST_DIFF_H

#include <stddef.h>

struct yfast_diff {
	size_t docs;		/* documents both composed */
	size_t fast_docs;	/* of them, from the fast reader */
	int refused_at;		/* index of the document the fast reader refused, -1 for none */
	char why[512];		/* the first difference, "" for none */
};

/* 0 when they agree, -1 with d->why otherwise. */
int yfast_diff_buf(const char *buf, size_t len, struct yfast_diff *d);

#endif
