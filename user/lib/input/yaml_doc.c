// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "yaml_doc.h"

/* ---- bytes: checked before libyaml reads them --------------------------- */

void ydoc_src_buf(struct ydoc_src *s, const void *buf, size_t len, uint64_t limit)
{
	*s = (struct ydoc_src){ .buf = buf, .len = len, .fd = -1, .limit = limit,
				.line = 1, .col = 1 };
}

void ydoc_src_fd(struct ydoc_src *s, int fd, uint64_t limit)
{
	*s = (struct ydoc_src){ .fd = fd, .limit = limit, .line = 1, .col = 1 };
}

void ydoc_src_set_line_base(struct ydoc_src *s, int line_base)
{
	s->line_base = line_base;
	s->line = line_base + 1;
}

/* Length of the valid character at p (n bytes available), 0 if invalid, -1 if cut. */
static int char_len(const unsigned char *p, size_t n)
{
	unsigned int c = p[0], width, v;

	if (c < 0x80)
		return c == 0x09 || c == 0x0a || c == 0x0d || (c >= 0x20 && c != 0x7f) ? 1 : 0;
	width = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
	if (!width)
		return 0;
	v = c & (0x7f >> width);
	for (unsigned int i = 1; i < width; i++) {
		if (i >= n)
			return -1;
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	/* Shortest form only, no surrogates; the characters YAML 1.1 allows. */
	if ((width == 2 && v < 0x80) || (width == 3 && v < 0x800) ||
	    (width == 4 && (v < 0x10000 || v > 0x10ffff)))
		return 0;
	if (!(v == 0x85 || (v >= 0xa0 && v <= 0xd7ff) || (v >= 0xe000 && v <= 0xfffd) ||
	      v >= 0x10000))
		return 0;
	return (int)width;
}

/* Check n bytes at buf (after the pending ones); returns how many are whole and valid. */
static size_t check_bytes(struct ydoc_src *s, const unsigned char *buf, size_t n)
{
	size_t i = 0;

	while (i < n) {
		int w;

		/* ASCII, nearly all of any manifest, without the decoder. */
		if (buf[i] >= 0x20 && buf[i] < 0x7f) {
			s->col++;
			i++;
			continue;
		}
		w = char_len(buf + i, n - i);

		if (w < 0)
			break;
		if (w == 0) {
			s->bad = "invalid UTF-8 or a character YAML does not allow";
			s->bad_line = s->line;
			s->bad_col = s->col;
			break;
		}
		if (buf[i] == '\n') {
			s->line++;
			s->col = 1;
		} else {
			s->col++;
		}
		i += w;
	}
	return i;
}

static void src_stop(struct ydoc_src *s, const char *why)
{
	s->bad = why;
	s->bad_line = s->line;
	s->bad_col = s->col;
}

/*
 * libyaml's read handler. It must never answer 0 bytes before the real end:
 * libyaml takes that for the end of the stream, and a document cut there
 * could be loaded as if whole. So a read that brings only part of a
 * character (a pipe may) reads again, and any early stop is an error.
 */
static int src_read(void *data, unsigned char *out, size_t size, size_t *got)
{
	struct ydoc_src *s = data;
	size_t n, ok;
	bool cut;

	*got = 0;
	if (s->bad || size < sizeof(s->pend))
		return 0;
	do {
		if (s->fd < 0) {
			n = s->len - s->off < size ? s->len - s->off : size;
			memcpy(out, s->buf + s->off, n);
		} else {
			ssize_t r;

			memcpy(out, s->pend, s->nr_pend);
			do
				r = read(s->fd, out + s->nr_pend, size - s->nr_pend);
			while (r < 0 && errno == EINTR);
			if (r < 0) {
				s->read_errno = errno;
				src_stop(s, strerror(errno));
				return 0;
			}
			if (!r && s->nr_pend) {
				src_stop(s, "invalid UTF-8 (cut at the end)");
				return 0;
			}
			n = s->nr_pend + (size_t)r;
			s->nr_pend = 0;
		}
		if (!n)
			return 1;	/* the real end */
		cut = s->total + n > s->limit;
		if (cut)
			n = s->limit - s->total;
		ok = check_bytes(s, out, n);
		if (ok < n && !s->bad) {
			if (cut)
				src_stop(s, "too many bytes");
			else if (s->fd >= 0 && n - ok < sizeof(s->pend)) {
				/* A character cut by the read: keep its start for the next one. */
				s->nr_pend = n - ok;
				memcpy(s->pend, out + ok, s->nr_pend);
			} else if (s->fd >= 0 || s->off + n >= s->len) {
				src_stop(s, "invalid UTF-8 (cut at the end)");
			}
		} else if (!n && cut) {
			src_stop(s, "too many bytes");
		}
		if (s->fd < 0)
			s->off += ok;
		s->total += ok;
	} while (!ok && !s->bad);
	*got = ok;
	return ok || !s->bad;
}

void ydoc_src_attach(yaml_parser_t *parser, struct ydoc_src *s)
{
	yaml_parser_set_input(parser, src_read, s);
}

/* ---- composing: libyaml's document model, with limits -------------------- */

struct cframe {
	int node;		/* the open collection */
	int key;		/* mapping: the key waiting for its value, 0 when none */
	size_t n;		/* items (sequence) or pairs (mapping) so far */
	size_t anchor;		/* index + 1 in anchors, 0 for none */
};

struct canchor {
	int node;
	bool done;		/* the node is complete: aliasing it is no cycle */
};

struct composer {
	yaml_parser_t *p;
	struct ydoc_src *src;
	yaml_document_t *doc;
	struct cframe stack[YDOC_MAX_DEPTH];
	int depth;
	struct canchor *anchors;
	size_t nr_anchors;
	struct strmap anchor_index;	/* name -> size_t * (index of its latest definition) */
	uint64_t *weight;	/* by node id: nodes it stands for, aliases expanded */
	size_t weight_cap;
	uint64_t nodes;		/* the document's nodes, aliases expanded */
	uint64_t *alias_budget;
	struct ydoc_error *err;
};

#define WEIGHT_CAP (1ull << 62)

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b > WEIGHT_CAP || a + b < a ? WEIGHT_CAP : a + b;
}

/* Dotted path of the node being composed: "spec.rules[0].matches". */
static void frame_path(const struct composer *c, int depth, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < depth && n < len; i++) {
		const struct cframe *f = &c->stack[i];
		yaml_node_t *node = yaml_document_get_node(c->doc, f->node);
		int w = 0;

		if (node->type == YAML_SEQUENCE_NODE) {
			w = snprintf(buf + n, len - n, "[%zu]", f->n);
		} else if (f->key) {
			yaml_node_t *k = yaml_document_get_node(c->doc, f->key);

			w = snprintf(buf + n, len - n, "%s%.64s", n ? "." : "",
				     k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "?");
		}
		n += w > 0 ? (size_t)w : 0;
	}
}

static int fail(struct composer *c, const yaml_mark_t *mark, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct composer *c, const yaml_mark_t *mark, bool fatal, const char *fmt, ...)
{
	va_list ap;

	if (c->err) {
		memset(c->err, 0, sizeof(*c->err));
		c->err->line = mark ? (int)mark->line + 1 : 0;
		c->err->col = mark ? (int)mark->column + 1 : 0;
		c->err->fatal = fatal;
		frame_path(c, c->depth, c->err->field, sizeof(c->err->field));
		va_start(ap, fmt);
		vsnprintf(c->err->problem, sizeof(c->err->problem), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A libyaml error: the stream is over. Reader errors are ours (src->bad). */
static int parser_fail(struct composer *c)
{
	yaml_parser_t *p = c->p;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR && c->src && c->src->bad) {
		yaml_mark_t m = { .line = c->src->bad_line - 1, .column = c->src->bad_col - 1 };

		if (!strcmp(c->src->bad, "too many bytes"))
			return fail(c, &m, true, "more than %llu bytes; rest of the file ignored",
				    (unsigned long long)c->src->limit);
		return fail(c, &m, true, "%s; rest of the file ignored", c->src->bad);
	}
	yaml_mark_t m = p->problem_mark;

	m.line += c->src ? (size_t)c->src->line_base : 0;
	return fail(c, &m, true, "%s%s%s; rest of the file ignored",
		    p->problem ? p->problem : "malformed YAML", p->context ? " " : "",
		    p->context ? p->context : "");
}

static int set_weight(struct composer *c, int id, uint64_t w)
{
	if ((size_t)id >= c->weight_cap) {
		size_t cap = c->weight_cap ? c->weight_cap * 2 : 256;
		uint64_t *nw;

		while (cap <= (size_t)id)
			cap *= 2;
		nw = realloc(c->weight, cap * sizeof(*nw));
		if (!nw)
			return -ENOMEM;
		memset(nw + c->weight_cap, 0, (cap - c->weight_cap) * sizeof(*nw));
		c->weight = nw;
		c->weight_cap = cap;
	}
	c->weight[id] = w;
	return 0;
}

static int add_anchor(struct composer *c, const yaml_char_t *name, int node, size_t *idx)
{
	struct canchor *a;

	*idx = 0;
	if (!name)
		return 0;
	size_t *slot = strmap_get(&c->anchor_index, (const char *)name);
	int ret;

	if (!(c->nr_anchors & (c->nr_anchors - 1))) {
		a = realloc(c->anchors, (c->nr_anchors ? c->nr_anchors * 2 : 1) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		c->anchors = a;
	}
	c->anchors[c->nr_anchors] = (struct canchor){ .node = node };
	if (!slot) {
		slot = malloc(sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		ret = strmap_put(&c->anchor_index, (const char *)name, slot, NULL);
		if (ret) {
			free(slot);
			return ret;
		}
	}
	*slot = c->nr_anchors;
	*idx = ++c->nr_anchors;
	return 0;
}

/*
 * The latest anchor of that name (YAML lets an anchor be redefined); hashed,
 * since a document may hold a million anchors and as many aliases.
 */
static struct canchor *find_anchor(struct composer *c, const yaml_char_t *name)
{
	size_t *slot = strmap_get(&c->anchor_index, (const char *)name);

	return slot ? &c->anchors[*slot] : NULL;
}

static bool is_merge_key(const yaml_node_t *k)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       !strcmp((const char *)k->data.scalar.value, "<<");
}

/* Attach node id (standing for w nodes) to the open collection, or make it the root. */
static int attach(struct composer *c, int id, uint64_t w, const yaml_mark_t *mark)
{
	struct cframe *f;
	yaml_node_t *parent;

	if (!c->depth)
		return 0;	/* the root: libyaml's root is the first node added */
	f = &c->stack[c->depth - 1];
	parent = yaml_document_get_node(c->doc, f->node);
	if (parent->type == YAML_SEQUENCE_NODE) {
		if (!yaml_document_append_sequence_item(c->doc, f->node, id))
			return -ENOMEM;
		f->n++;
	} else if (!f->key) {
		if (is_merge_key(yaml_document_get_node(c->doc, id))) {
			f->key = id;
			return fail(c, mark, false,
				    "YAML merge keys (<<) are not supported, document ignored");
		}
		f->key = id;
	} else {
		if (!yaml_document_append_mapping_pair(c->doc, f->node, f->key, id))
			return -ENOMEM;
		f->key = 0;
		f->n++;
	}
	c->weight[f->node] = sat_add(c->weight[f->node], w);
	return 0;
}

static bool same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->data.scalar.length == b->data.scalar.length &&
	       !memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length);
}

/*
 * Kubernetes refuses a mapping with a key twice; keeping one silently would
 * answer for an object nobody wrote. Linear: a small hash table of the keys.
 */
static int check_duplicate_keys(struct composer *c, const yaml_node_t *map)
{
	size_t nr = map->data.mapping.pairs.top - map->data.mapping.pairs.start, cap = 16;
	int *slots, ret = 0;

	if (nr < 2)
		return 0;
	/* Small mappings, nearly all of them: pairwise, no table. */
	if (nr <= 8) {
		for (size_t i = 1; i < nr; i++) {
			int kid = map->data.mapping.pairs.start[i].key;
			yaml_node_t *k = yaml_document_get_node(c->doc, kid);

			if (k->type != YAML_SCALAR_NODE)
				continue;
			for (size_t j = 0; j < i; j++) {
				yaml_node_t *o = yaml_document_get_node(c->doc,
						map->data.mapping.pairs.start[j].key);

				if (o->type != YAML_SCALAR_NODE || !same_scalar(o, k))
					continue;
				c->stack[c->depth - 1].key = kid;
				return fail(c, &k->start_mark, false,
					    "duplicate key (first at line %d), document ignored",
					    (int)o->start_mark.line + 1);
			}
		}
		return 0;
	}
	while (cap < nr * 2)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < nr && !ret; i++) {
		int kid = map->data.mapping.pairs.start[i].key;
		yaml_node_t *k = yaml_document_get_node(c->doc, kid);
		size_t h;

		if (k->type != YAML_SCALAR_NODE)
			continue;
		h = hash_bytes(k->data.scalar.value, k->data.scalar.length, 0) & (cap - 1);
		for (; slots[h]; h = (h + 1) & (cap - 1)) {
			yaml_node_t *o = yaml_document_get_node(c->doc, slots[h]);

			if (!same_scalar(o, k))
				continue;
			c->stack[c->depth - 1].key = kid;
			ret = fail(c, &k->start_mark, false,
				   "duplicate key (first at line %d), document ignored",
				   (int)o->start_mark.line + 1);
			break;
		}
		slots[h] = kid;
	}
	free(slots);
	return ret;
}

static int account(struct composer *c, uint64_t w, bool alias, const yaml_mark_t *mark)
{
	c->nodes = sat_add(c->nodes, w);
	if (c->nodes > YDOC_MAX_NODES)
		return fail(c, mark, false, "%s more than %u nodes, document ignored",
			    alias ? "aliases expand to" : "document has", YDOC_MAX_NODES);
	if (alias && c->alias_budget) {
		if (*c->alias_budget < w) {
			*c->alias_budget = 0;
			return fail(c, mark, false,
				    "aliases expand to more than the load's budget, document ignored");
		}
		*c->alias_budget -= w;
	}
	return 0;
}

static int on_node_start(struct composer *c, const yaml_event_t *e)
{
	const yaml_mark_t *m = &e->start_mark;
	const yaml_char_t *anchor;
	size_t aidx;
	yaml_node_t *node;
	int id, ret;

	switch (e->type) {
	case YAML_SCALAR_EVENT:
		if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
			return fail(c, m, false,
				    "contains a NUL character (\\0), document ignored");
		id = yaml_document_add_scalar(c->doc, e->data.scalar.tag, e->data.scalar.value,
					      (int)e->data.scalar.length, e->data.scalar.style);
		anchor = e->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		id = yaml_document_add_sequence(c->doc, e->data.sequence_start.tag,
						e->data.sequence_start.style);
		anchor = e->data.sequence_start.anchor;
		break;
	default:
		id = yaml_document_add_mapping(c->doc, e->data.mapping_start.tag,
					       e->data.mapping_start.style);
		anchor = e->data.mapping_start.anchor;
		break;
	}
	/*
	 * libyaml refuses a value or tag that is not UTF-8 here (the reader and
	 * scanner checked them already); an allocation failure looks the same.
	 * Either way this document only: a load must not end on it.
	 */
	if (!id)
		return fail(c, m, false, "value or tag cannot be stored, document ignored");
	node = yaml_document_get_node(c->doc, id);
	node->start_mark = e->start_mark;
	node->end_mark = e->end_mark;
	ret = account(c, 1, false, m);
	if (!ret)
		ret = set_weight(c, id, 1);
	if (!ret)
		ret = add_anchor(c, anchor, id, &aidx);
	if (ret)
		return ret;
	if (e->type == YAML_SCALAR_EVENT) {
		if (aidx)
			c->anchors[aidx - 1].done = true;
		return attach(c, id, 1, m);
	}
	if (c->depth >= YDOC_MAX_DEPTH)
		return fail(c, m, true, "nested deeper than %d; rest of the file ignored",
			    YDOC_MAX_DEPTH);
	c->stack[c->depth++] = (struct cframe){ .node = id, .anchor = aidx };
	return 0;
}

static int on_node_end(struct composer *c, const yaml_event_t *e)
{
	struct cframe f;
	yaml_node_t *node;
	int ret;

	if (!c->depth)
		return fail(c, &e->start_mark, true, "unbalanced collection end");
	f = c->stack[c->depth - 1];
	node = yaml_document_get_node(c->doc, f.node);
	if (node->type == YAML_MAPPING_NODE) {
		ret = check_duplicate_keys(c, node);
		if (ret)
			return ret;
	}
	node->end_mark = e->end_mark;
	c->depth--;
	if (f.anchor)
		c->anchors[f.anchor - 1].done = true;
	return attach(c, f.node, c->weight[f.node], &node->start_mark);
}

static int on_alias(struct composer *c, const yaml_event_t *e)
{
	struct canchor *a = find_anchor(c, e->data.alias.anchor);
	int ret;

	if (!a)
		return fail(c, &e->start_mark, false, "alias *%.64s names no anchor, document ignored",
			    (const char *)e->data.alias.anchor);
	if (!a->done)
		return fail(c, &e->start_mark, false,
			    "alias *%.64s refers to a node that contains it (a cycle), document ignored",
			    (const char *)e->data.alias.anchor);
	ret = account(c, c->weight[a->node], true, &e->start_mark);
	return ret ? ret : attach(c, a->node, c->weight[a->node], &e->start_mark);
}

static void composer_free(struct composer *c)
{
	struct strmap_slot *s;

	strmap_for_each(&c->anchor_index, s)
		free(s->value);
	strmap_free(&c->anchor_index);
	free(c->anchors);
	free(c->weight);
}

/* After a refused document: read on to its end, so the next one can be composed. */
static int skip_document(struct composer *c)
{
	yaml_event_t e;

	for (;;) {
		yaml_event_type_t t;

		if (!yaml_parser_parse(c->p, &e))
			return parser_fail(c);
		t = e.type;
		yaml_event_delete(&e);
		if (t == YAML_DOCUMENT_END_EVENT || t == YAML_STREAM_END_EVENT ||
		    t == YAML_NO_EVENT)
			return 0;
	}
}

int ydoc_compose(yaml_parser_t *parser, struct ydoc_src *src, yaml_document_t *doc,
		 uint64_t *alias_budget, struct ydoc_error *err)
{
	struct composer c = { .p = parser, .src = src, .doc = doc, .alias_budget = alias_budget,
			      .err = err };
	bool started = false;
	int ret = 0;

	memset(doc, 0, sizeof(*doc));
	while (!ret) {
		yaml_event_t e;

		if (parser->stream_end_produced || parser->error)
			break;
		if (!yaml_parser_parse(parser, &e)) {
			ret = parser_fail(&c);
			break;
		}
		if (src && src->line_base) {
			/* Every mark below (nodes, errors) comes from an event's. */
			e.start_mark.line += (size_t)src->line_base;
			e.end_mark.line += (size_t)src->line_base;
		}
		switch (e.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (!yaml_document_initialize(doc, NULL, NULL, NULL,
						      e.data.document_start.implicit, 1))
				ret = -ENOMEM;
			else
				started = true;
			doc->start_mark = e.start_mark;
			break;
		case YAML_DOCUMENT_END_EVENT:
			doc->end_mark = e.end_mark;
			ret = 1;
			break;
		case YAML_ALIAS_EVENT:
			ret = on_alias(&c, &e);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			ret = on_node_start(&c, &e);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			ret = on_node_end(&c, &e);
			break;
		default:
			break;
		}
		yaml_event_delete(&e);
	}
	if (ret == -EINVAL && err && !err->fatal) {
		int r = skip_document(&c);

		if (r == -ENOMEM)
			ret = r;
		/* A syntax error while skipping ends the stream; the first reason stays. */
		else if (r && err)
			err->fatal = true;
	}
	composer_free(&c);
	if (ret != 1 && started)
		yaml_document_delete(doc);
	if (ret != 1)
		memset(doc, 0, sizeof(*doc));
	return ret;
}

/* ---- whole files, for small documents (status files, expectations) -------- */

static void set_error(struct ydoc_error *err, const char *file)
{
	if (!err)
		return;
	if (err->field[0])
		snprintf(err->msg, sizeof(err->msg), "%.300s:%d:%d: %s: %s", file, err->line,
			 err->col, err->field, err->problem);
	else
		snprintf(err->msg, sizeof(err->msg), "%.300s:%d:%d: %s", file, err->line, err->col,
			 err->problem);
}

static int append_doc(struct ydoc_set *set, yaml_document_t *doc)
{
	struct ydoc *docs = realloc(set->docs, (set->nr_docs + 1) * sizeof(*docs));

	if (!docs)
		return -ENOMEM;
	set->docs = docs;
	docs[set->nr_docs] = (struct ydoc){
		.doc = *doc,
		.file = set->file,
		.index = (int)set->nr_docs,
	};
	docs[set->nr_docs].root = yaml_document_get_root_node(&docs[set->nr_docs].doc);
	ydoc_detect_json(&docs[set->nr_docs]);
	set->nr_docs++;
	return 0;
}

/* Every document of src; any error fails the whole set (these files are ours). */
static int load_src(const char *name, struct ydoc_src *src, struct ydoc_set *set,
		    struct ydoc_error *err)
{
	uint64_t budget = YDOC_MAX_NODES;
	yaml_parser_t parser;
	int ret = 0;

	memset(set, 0, sizeof(*set));
	set->file = strdup(name);
	if (!set->file)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		ydoc_set_free(set);
		return -ENOMEM;
	}
	ydoc_src_attach(&parser, src);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		ret = ydoc_compose(&parser, src, &doc, &budget, err);
		if (ret <= 0)
			break;
		root = yaml_document_get_root_node(&doc);
		if (!root || ynode_is_null(root)) {
			/* An empty document between two "---" is skipped, as kubectl does. */
			yaml_document_delete(&doc);
			continue;
		}
		ret = append_doc(set, &doc);
		if (ret) {
			yaml_document_delete(&doc);
			break;
		}
	}
	yaml_parser_delete(&parser);
	if (ret == -EINVAL)
		set_error(err, name);
	if (ret)
		ydoc_set_free(set);
	return ret;
}

int ydoc_load_buf(const char *name, const void *buf, size_t len,
		  struct ydoc_set *set, struct ydoc_error *err)
{
	struct ydoc_src src;

	memset(set, 0, sizeof(*set));
	if (len > YDOC_MAX_FILE_BYTES) {
		if (err) {
			memset(err, 0, sizeof(*err));
			err->line = err->col = 1;
			snprintf(err->problem, sizeof(err->problem), "file too large");
			set_error(err, name);
		}
		return -EFBIG;
	}
	ydoc_src_buf(&src, buf, len, YDOC_MAX_FILE_BYTES);
	return load_src(name, &src, set, err);
}

int ydoc_load_file(const char *path, struct ydoc_set *set, struct ydoc_error *err)
{
	struct ydoc_src src;
	struct stat st;
	int fd, ret;

	memset(set, 0, sizeof(*set));
	/* O_NONBLOCK: a FIFO without a writer must not block open(). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st)) {
		ret = -errno;
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->msg, sizeof(err->msg), "%s: %s", path, strerror(errno));
		}
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > YDOC_MAX_FILE_BYTES) {
		close(fd);
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->msg, sizeof(err->msg), "%s: %s", path,
				 S_ISREG(st.st_mode) ? "file too large" : "not a regular file");
		}
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	ydoc_src_fd(&src, fd, YDOC_MAX_FILE_BYTES);
	ret = load_src(path, &src, set, err);
	close(fd);
	return ret;
}

void ydoc_set_free(struct ydoc_set *set)
{
	for (size_t i = 0; i < set->nr_docs; i++)
		yaml_document_delete(&set->docs[i].doc);
	free(set->docs);
	free(set->file);
	memset(set, 0, sizeof(*set));
}

yaml_node_t *ynode_get(const struct ydoc *d, int id)
{
	return yaml_document_get_node((yaml_document_t *)&d->doc, id);
}

bool ynode_is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

const char *ynode_str(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE || ynode_is_null(n))
		return NULL;
	return (const char *)n->data.scalar.value;
}

yaml_node_t *ymap_get(const struct ydoc *d, const yaml_node_t *map, const char *key)
{
	yaml_node_t *k, *v;

	ymap_for_each(d, map, k, v) {
		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return v;
	}
	return NULL;
}

yaml_node_t *ymap_path(const struct ydoc *d, const yaml_node_t *map, const char *path)
{
	char key[128];
	const char *dot;
	yaml_node_t *n = (yaml_node_t *)map;

	while (n && (dot = strchr(path, '.'))) {
		if ((size_t)(dot - path) >= sizeof(key))
			return NULL;
		memcpy(key, path, dot - path);
		key[dot - path] = 0;
		n = ymap_get(d, n, key);
		path = dot + 1;
	}
	return n ? ymap_get(d, n, path) : NULL;
}

size_t yseq_len(const yaml_node_t *seq)
{
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return 0;
	return seq->data.sequence.items.top - seq->data.sequence.items.start;
}

yaml_node_t *yseq_at(const struct ydoc *d, const yaml_node_t *seq, size_t i)
{
	if (i >= yseq_len(seq))
		return NULL;
	return ynode_get(d, seq->data.sequence.items.start[i]);
}

int yget_str(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     const char **out)
{
	yaml_node_t *n = ymap_get(d, map, key);

	if (ynode_is_null(n))
		return -ENOENT;
	if (n->type != YAML_SCALAR_NODE)
		return -EINVAL;
	*out = (const char *)n->data.scalar.value;
	return 0;
}

int yparse_int(const char *s, long long min, long long max, long long *out)
{
	unsigned long long v = 0, limit;
	unsigned int base = 10, digits = 0;
	bool neg = false;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		base = 2;
		s += 2;
	} else if (s[0] == '0' && s[1]) {
		base = 8;	/* YAML 1.1, as Kubernetes reads it: "010" is 8 */
		s++;
	}
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; *s; s++) {
		unsigned int d;

		if (*s == '_')
			continue;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EINVAL;
		if (d >= base || v > (limit - d) / base)
			return -EINVAL;
		v = v * base + d;
		digits++;
	}
	if (!digits)
		return -EINVAL;
	if (neg ? (v == (unsigned long long)LLONG_MAX + 1 ? min > LLONG_MIN : -(long long)v < min)
		: (long long)v > max)
		return -EINVAL;
	*out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v)
		   : (long long)v;
	if (*out < min || *out > max)
		return -EINVAL;
	return 0;
}

int yparse_json_int(const char *s, long long min, long long max, long long *out)
{
	const char *p = s;

	if (!s)
		return -EINVAL;
	if (*p == '-')
		p++;
	if (!(*p >= '0' && *p <= '9') || (p[0] == '0' && p[1]))
		return -EINVAL;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return -EINVAL;
	return yparse_int(s, min, max, out);
}

void ydoc_detect_json(struct ydoc *d)
{
	d->json = d->root && d->root->type == YAML_MAPPING_NODE &&
		  d->root->data.mapping.style == YAML_FLOW_MAPPING_STYLE;
}

int yget_int(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     long long min, long long max, long long *out)
{
	yaml_node_t *n = ymap_get(d, map, key);

	if (ynode_is_null(n))
		return -ENOENT;
	/* A quoted "80" is a string to the API server, not a number. */
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -EINVAL;
	return ydoc_int(d, (const char *)n->data.scalar.value, min, max, out);
}

int yget_bool(const struct ydoc *d, const yaml_node_t *map, const char *key, bool *out)
{
	yaml_node_t *n = ymap_get(d, map, key);
	const char *v;

	if (ynode_is_null(n))
		return -ENOENT;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -EINVAL;
	v = (const char *)n->data.scalar.value;
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int get_typed(const struct ydoc *d, const yaml_node_t *map, const char *key,
		     yaml_node_type_t type, yaml_node_t **out)
{
	yaml_node_t *n = ymap_get(d, map, key);

	if (ynode_is_null(n))
		return -ENOENT;
	if (n->type != type)
		return -EINVAL;
	*out = n;
	return 0;
}

int yget_map(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     yaml_node_t **out)
{
	return get_typed(d, map, key, YAML_MAPPING_NODE, out);
}

int yget_seq(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     yaml_node_t **out)
{
	return get_typed(d, map, key, YAML_SEQUENCE_NODE, out);
}
