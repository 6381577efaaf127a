/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fast reader for the YAML that generators and kubectl write: documents
 * whose root is a block mapping, block mappings and sequences, one-line
 * flow collections ([a, b], {k: v}), one-line plain and quoted scalars,
 * comments. It composes the same document libyaml's event API and
 * ydoc_compose() compose (node ids, types, styles, tags, values, marks),
 * without an allocation per node: a document's nodes and strings live in
 * buffers reused for the next one.
 *
 * Anything outside that subset (tabs, bytes other than printable ASCII and
 * newlines, directives, anchors, aliases, tags, block scalars, multi-line
 * scalars or flow collections, "...", a duplicate key, the composer's
 * limits, ...) is refused: yfast_next() answers -EAGAIN with the offset
 * and line of the refused document's start, and the caller hands the rest
 * of the stream from there to libyaml. That is the same parse: the
 * documents before ended cleanly right before a "---" line (or there were
 * none), and a stream cut at a "---" line reads on exactly like the whole
 * one (see load_split() in manifest.c). Refusing is always correct, so the
 * subset stays small and simple; tests/prog_tests/yaml_fast.c and
 * tests/fuzz/fuzz_yaml_fast.c compare it with libyaml.
 */
#ifndef GAMMAD_YAML_FAST_H
#define GAMMAD_YAML_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Cleared by tests to compare with libyaml alone (not thread-safe to change). */
extern bool yfast_enabled;

struct yfast {
	const char *buf;
	size_t len, pos;
	size_t line_base;	/* lines before buf (a part of a file): added to every mark */
	size_t line;		/* of pos, 0-based in buf */
	size_t ls;		/* offset of that line's start */
	int at;			/* what pos is at (FAST_AT_*) */
	size_t doc_off, doc_line;	/* start of the last document begun */
	int depth;
	bool failed;
	/* the document being composed; reused for the next one */
	yaml_node_t *nodes;
	size_t nr_nodes, cap_nodes;
	char *str;
	size_t nr_str, cap_str;
	yaml_node_item_t *items;
	size_t nr_items, cap_items;
	yaml_node_pair_t *pairs;
	size_t nr_pairs, cap_pairs;
	int *tmp;		/* children of the open collections */
	size_t nr_tmp, cap_tmp;
	int *slots;		/* duplicate keys of large mappings */
	size_t cap_slots;
};

void yfast_init(struct yfast *f, const char *buf, size_t len, int line_base);
/*
 * The next document into doc, valid until the next call or yfast_free();
 * never yaml_document_delete() it. Returns 1 with a document, 0 at the end
 * of the stream, -EAGAIN when the document starting at f->doc_off (line
 * f->doc_line, 0-based in buf) is not in the subset (libyaml must read from
 * there; every later call answers -EAGAIN too), -ENOMEM.
 */
int yfast_next(struct yfast *f, yaml_document_t *doc);
void yfast_free(struct yfast *f);

#endif
