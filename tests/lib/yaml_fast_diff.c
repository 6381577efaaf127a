// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "input/yaml_doc.h"
#include "input/yaml_fast.h"
#include "yaml_fast_diff.h"

static int differ(struct yfast_diff *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int differ(struct yfast_diff *d, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(d->why, sizeof(d->why), "document %zu: ", d->docs);

	va_start(ap, fmt);
	vsnprintf(d->why + n, sizeof(d->why) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool same_mark(const yaml_mark_t *a, const yaml_mark_t *b)
{
	return a->index == b->index && a->line == b->line && a->column == b->column;
}

static int compare(struct yfast_diff *d, const yaml_document_t *want, const yaml_document_t *got)
{
	size_t nr = want->nodes.top - want->nodes.start;

	if ((size_t)(got->nodes.top - got->nodes.start) != nr)
		return differ(d, "%zu nodes, libyaml %zu", (size_t)(got->nodes.top - got->nodes.start),
			      nr);
	for (size_t i = 0; i < nr; i++) {
		const yaml_node_t *w = &want->nodes.start[i], *g = &got->nodes.start[i];

		if (w->type != g->type || strcmp((const char *)w->tag, (const char *)g->tag))
			return differ(d, "node %zu: type %d %s, libyaml %d %s", i + 1, g->type,
				      g->tag, w->type, w->tag);
		if (!same_mark(&w->start_mark, &g->start_mark) ||
		    !same_mark(&w->end_mark, &g->end_mark))
			return differ(d, "node %zu: marks %zu:%zu-%zu:%zu (%zu-%zu), libyaml "
				      "%zu:%zu-%zu:%zu (%zu-%zu)", i + 1,
				      g->start_mark.line, g->start_mark.column, g->end_mark.line,
				      g->end_mark.column, g->start_mark.index, g->end_mark.index,
				      w->start_mark.line, w->start_mark.column, w->end_mark.line,
				      w->end_mark.column, w->start_mark.index, w->end_mark.index);
		switch (w->type) {
		case YAML_SCALAR_NODE:
			if (w->data.scalar.style != g->data.scalar.style ||
			    w->data.scalar.length != g->data.scalar.length ||
			    memcmp(w->data.scalar.value, g->data.scalar.value, w->data.scalar.length) ||
			    g->data.scalar.value[g->data.scalar.length])
				return differ(d, "node %zu: scalar '%.64s' style %d, libyaml '%.64s' style %d",
					      i + 1, g->data.scalar.value, g->data.scalar.style,
					      w->data.scalar.value, w->data.scalar.style);
			break;
		case YAML_SEQUENCE_NODE: {
			size_t n = w->data.sequence.items.top - w->data.sequence.items.start;

			if (w->data.sequence.style != g->data.sequence.style ||
			    (size_t)(g->data.sequence.items.top - g->data.sequence.items.start) != n ||
			    memcmp(w->data.sequence.items.start, g->data.sequence.items.start,
				   n * sizeof(yaml_node_item_t)))
				return differ(d, "node %zu: sequence differs", i + 1);
			break;
		}
		case YAML_MAPPING_NODE: {
			size_t n = w->data.mapping.pairs.top - w->data.mapping.pairs.start;

			if (w->data.mapping.style != g->data.mapping.style ||
			    (size_t)(g->data.mapping.pairs.top - g->data.mapping.pairs.start) != n)
				return differ(d, "node %zu: mapping differs", i + 1);
			for (size_t j = 0; j < n; j++)
				if (w->data.mapping.pairs.start[j].key != g->data.mapping.pairs.start[j].key ||
				    w->data.mapping.pairs.start[j].value !=
					    g->data.mapping.pairs.start[j].value)
					return differ(d, "node %zu: pair %zu differs", i + 1, j);
			break;
		}
		default:
			return differ(d, "node %zu: no node", i + 1);
		}
	}
	if (want->start_implicit != got->start_implicit)
		return differ(d, "start_implicit %d, libyaml %d", got->start_implicit,
			      want->start_implicit);
	return 0;
}

int yfast_diff_buf(const char *buf, size_t len, struct yfast_diff *d)
{
	uint64_t budget = UINT64_MAX;
	yaml_parser_t parser;
	struct ydoc_src src;
	struct yfast f;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	d->refused_at = -1;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	ydoc_src_buf(&src, buf, len, YDOC_MAX_FILE_BYTES);
	ydoc_src_attach(&parser, &src);
	yfast_init(&f, buf, len, 0);
	for (;;) {
		struct ydoc_error err;
		yaml_document_t want, got;
		int w = ydoc_compose(&parser, &src, &want, &budget, &err), g;

		g = d->refused_at < 0 ? yfast_next(&f, &got) : -EAGAIN;
		if (g == -EAGAIN && d->refused_at < 0) {
			d->refused_at = (int)d->docs;
			/* It stopped at the start of this document: the line must be libyaml's. */
			if (w == 1 && f.doc_off && f.doc_line != want.start_mark.line) {
				ret = differ(d, "refused at line %zu, libyaml's document starts at %zu",
					     f.doc_line, want.start_mark.line);
				yaml_document_delete(&want);
				break;
			}
		}
		if (g == -ENOMEM) {
			ret = differ(d, "no memory");
			if (w == 1)
				yaml_document_delete(&want);
			break;
		}
		if (g != -EAGAIN) {
			if (g != w) {
				ret = differ(d, "fast reader %d, libyaml %d (%s)", g, w,
					     w == -EINVAL ? err.problem : "");
				if (w == 1)
					yaml_document_delete(&want);
				break;
			}
			if (g == 1) {
				ret = compare(d, &want, &got);
				d->fast_docs++;
			}
		}
		if (w == 1)
			yaml_document_delete(&want);
		if (ret || w == 0 || w == -ENOMEM || (w == -EINVAL && err.fatal))
			break;
		d->docs++;
	}
	yfast_free(&f);
	yaml_parser_delete(&parser);
	return ret;
}
