// SPDX-License-Identifier: Apache-2.0
/*
 * The subset and why each rule is there: see yaml_fast.h. The marks are
 * libyaml's: a scalar from its first to past its last character, a
 * collection from its first key, "-", "[" or "{", an empty value right
 * after its ':', and a block collection ends where the next token starts
 * (libyaml's BLOCK-END carries the scanner's mark there; see end_mark() for
 * the end of the stream).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "yaml_doc.h"
#include "yaml_fast.h"

bool yfast_enabled = true;

enum { AT_INIT, AT_CONTENT, AT_DOC, AT_END };

/* Longest key taken (libyaml gives up on a simple key after 1024 characters). */
#define FAST_MAX_KEY 1000

static int refuse(struct yfast *f)
{
	f->failed = true;
	return -EAGAIN;
}

static bool printable(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

static bool blank_at(const struct yfast *f, size_t p)
{
	return p >= f->len || f->buf[p] == ' ' || f->buf[p] == '\n';
}

static bool is_entry(const struct yfast *f, size_t p)
{
	return p < f->len && f->buf[p] == '-' && blank_at(f, p + 1);
}

static yaml_mark_t mark_at(const struct yfast *f, size_t p)
{
	return (yaml_mark_t){ .index = p, .line = f->line_base + f->line, .column = p - f->ls };
}

/* Where the next token starts (libyaml forces a new line at the end). */
static yaml_mark_t next_mark(const struct yfast *f)
{
	if (f->at == AT_END)
		return (yaml_mark_t){ .index = f->len,
				      .line = f->line_base + f->line + (f->len != f->ls),
				      .column = 0 };
	return mark_at(f, f->pos);
}

/*
 * Where a block collection at column col ends: the next token's start. At
 * the end of the stream libyaml first closes the blocks deeper than the last
 * line's column there, then forces a new line for the rest.
 */
static yaml_mark_t end_mark(const struct yfast *f, size_t col)
{
	if (f->at == AT_END && col > f->len - f->ls && f->len != f->ls)
		return (yaml_mark_t){ .index = f->len, .line = f->line_base + f->line,
				      .column = f->len - f->ls };
	return next_mark(f);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t cap2 = *cap ? *cap : 64;
	void *n;

	if (need <= *cap)
		return 0;
	while (cap2 < need)
		cap2 *= 2;
	n = realloc(*p, cap2 * size);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = cap2;
	return 0;
}

static int push_tmp(struct yfast *f, int id)
{
	if (grow((void **)&f->tmp, &f->cap_tmp, f->nr_tmp + 1, sizeof(*f->tmp)))
		return -ENOMEM;
	f->tmp[f->nr_tmp++] = id;
	return 0;
}

/* A node as ydoc_compose() adds it; strings and children are offsets until the document ends. */
static int new_node(struct yfast *f, yaml_node_type_t type, int style, yaml_mark_t start)
{
	static const char *const tags[] = {
		[YAML_SCALAR_NODE] = YAML_DEFAULT_SCALAR_TAG,
		[YAML_SEQUENCE_NODE] = YAML_DEFAULT_SEQUENCE_TAG,
		[YAML_MAPPING_NODE] = YAML_DEFAULT_MAPPING_TAG,
	};
	yaml_node_t *n;

	if (f->nr_nodes >= YDOC_MAX_NODES)
		return refuse(f);
	if (grow((void **)&f->nodes, &f->cap_nodes, f->nr_nodes + 1, sizeof(*f->nodes)))
		return -ENOMEM;
	n = &f->nodes[f->nr_nodes++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->tag = (yaml_char_t *)tags[type];
	if (type == YAML_SCALAR_NODE)
		n->data.scalar.style = style;
	else if (type == YAML_SEQUENCE_NODE)
		n->data.sequence.style = style;
	else
		n->data.mapping.style = style;
	n->start_mark = n->end_mark = start;
	return (int)f->nr_nodes;
}

/* A scalar of buf[from, to); single: '' stands for '. */
static int add_scalar(struct yfast *f, int style, size_t from, size_t to, bool single,
		      yaml_mark_t start, yaml_mark_t end)
{
	int id = new_node(f, YAML_SCALAR_NODE, style, start);
	size_t off = f->nr_str, n = 0;
	yaml_node_t *node;

	if (id < 0)
		return id;
	if (grow((void **)&f->str, &f->cap_str, f->nr_str + (to - from) + 1, 1))
		return -ENOMEM;
	if (!single) {
		memcpy(f->str + off, f->buf + from, to - from);
		n = to - from;
	} else {
		for (size_t p = from; p < to; p++) {
			f->str[off + n++] = f->buf[p];
			if (f->buf[p] == '\'')
				p++;
		}
	}
	f->str[off + n] = 0;
	f->nr_str += n + 1;
	node = &f->nodes[id - 1];
	node->data.scalar.value = (yaml_char_t *)(uintptr_t)off;
	node->data.scalar.length = n;
	node->end_mark = end;
	return id;
}

static int open_collection(struct yfast *f, yaml_node_type_t type, int style, size_t *base)
{
	int id;

	if (f->depth >= YDOC_MAX_DEPTH)
		return refuse(f);
	id = new_node(f, type, style, mark_at(f, f->pos));
	if (id < 0)
		return id;
	f->depth++;
	*base = f->nr_tmp;
	return id;
}

static bool same_key(const struct yfast *f, int a, int b)
{
	const yaml_node_t *x = &f->nodes[a - 1], *y = &f->nodes[b - 1];

	return x->data.scalar.length == y->data.scalar.length &&
	       !memcmp(f->str + (uintptr_t)x->data.scalar.value,
		       f->str + (uintptr_t)y->data.scalar.value, x->data.scalar.length);
}

/* Keys are scalars here; a key twice makes the composer refuse the document: so do we. */
static int check_duplicates(struct yfast *f, const int *kv, size_t nr)
{
	size_t cap = 16;

	if (nr <= 8) {
		for (size_t i = 1; i < nr; i++)
			for (size_t j = 0; j < i; j++)
				if (same_key(f, kv[2 * i], kv[2 * j]))
					return refuse(f);
		return 0;
	}
	while (cap < nr * 2)
		cap *= 2;
	if (grow((void **)&f->slots, &f->cap_slots, cap, sizeof(*f->slots)))
		return -ENOMEM;
	memset(f->slots, 0, cap * sizeof(*f->slots));
	for (size_t i = 0; i < nr; i++) {
		const yaml_node_t *k = &f->nodes[kv[2 * i] - 1];
		size_t h = hash_bytes(f->str + (uintptr_t)k->data.scalar.value,
				      k->data.scalar.length, 0) & (cap - 1);

		for (; f->slots[h]; h = (h + 1) & (cap - 1))
			if (same_key(f, f->slots[h], kv[2 * i]))
				return refuse(f);
		f->slots[h] = kv[2 * i];
	}
	return 0;
}

/* The children pushed since base become id's items or pairs. */
static int close_collection(struct yfast *f, int id, size_t base, yaml_mark_t end)
{
	yaml_node_t *n = &f->nodes[id - 1];
	size_t nr = f->nr_tmp - base;
	int ret;

	if (n->type == YAML_SEQUENCE_NODE) {
		/* One more: an empty collection's items point into an allocated buffer too. */
		if (grow((void **)&f->items, &f->cap_items, f->nr_items + nr + 1, sizeof(*f->items)))
			return -ENOMEM;
		for (size_t i = 0; i < nr; i++)
			f->items[f->nr_items + i] = f->tmp[base + i];
		n->data.sequence.items.start = (yaml_node_item_t *)(uintptr_t)f->nr_items;
		n->data.sequence.items.top = (yaml_node_item_t *)(uintptr_t)nr;
		f->nr_items += nr;
	} else {
		nr /= 2;
		ret = check_duplicates(f, f->tmp + base, nr);
		if (ret)
			return ret;
		if (grow((void **)&f->pairs, &f->cap_pairs, f->nr_pairs + nr + 1, sizeof(*f->pairs)))
			return -ENOMEM;
		for (size_t i = 0; i < nr; i++)
			f->pairs[f->nr_pairs + i] = (yaml_node_pair_t){
				.key = f->tmp[base + 2 * i], .value = f->tmp[base + 2 * i + 1] };
		n->data.mapping.pairs.start = (yaml_node_pair_t *)(uintptr_t)f->nr_pairs;
		n->data.mapping.pairs.top = (yaml_node_pair_t *)(uintptr_t)nr;
		f->nr_pairs += nr;
	}
	n->end_mark = end;
	f->nr_tmp = base;
	f->depth--;
	return 0;
}

/* ---- lines ---------------------------------------------------------------- */

/*
 * From the start of a line: skip empty lines and comment lines, stop at the
 * next content (AT_CONTENT, pos at its first character), a "---" line
 * (AT_DOC) or the end (AT_END). Directives, "...", a "---" with anything
 * after it on its line, tabs, other control characters and non-ASCII bytes
 * are refused.
 */
static int next_content(struct yfast *f)
{
	for (;;) {
		size_t p = f->pos;

		while (p < f->len && f->buf[p] == ' ')
			p++;
		f->pos = p;
		if (p == f->len) {
			f->at = AT_END;
			return 0;
		}
		if (f->buf[p] == '\n') {
			f->pos = f->ls = p + 1;
			f->line++;
			continue;
		}
		if (f->buf[p] == '#') {
			while (p < f->len && f->buf[p] != '\n') {
				if (!printable(f->buf[p]))
					return refuse(f);
				p++;
			}
			f->pos = p;
			continue;
		}
		if (p == f->ls && f->len - p >= 3 &&
		    (!memcmp(f->buf + p, "---", 3) || !memcmp(f->buf + p, "...", 3))) {
			if (f->buf[p] == '.' || !(p + 3 == f->len || f->buf[p + 3] == '\n'))
				return refuse(f);
			f->at = AT_DOC;
			return 0;
		}
		if ((p == f->ls && f->buf[p] == '%') || !printable(f->buf[p]))
			return refuse(f);
		f->at = AT_CONTENT;
		return 0;
	}
}

/* After a node that ends its line: spaces, a comment after a space, the line's end; then the next content. */
static int end_line(struct yfast *f)
{
	size_t p = f->pos;

	while (p < f->len && f->buf[p] == ' ')
		p++;
	if (p < f->len && f->buf[p] == '#') {
		if (p == f->pos)
			return refuse(f);
		while (p < f->len && f->buf[p] != '\n') {
			if (!printable(f->buf[p]))
				return refuse(f);
			p++;
		}
	}
	if (p < f->len) {
		if (f->buf[p] != '\n')
			return refuse(f);
		f->line++;
		f->ls = p + 1;
		p++;
	}
	f->pos = p;
	return next_content(f);
}

/* ---- scalars -------------------------------------------------------------- */

static bool plain_start(const struct yfast *f, size_t p, bool flow)
{
	unsigned char c = f->buf[p], n;

	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	switch (c) {
	case '/': case '.': case '_': case '~': case '$': case '(': case ')':
	case '=': case '+': case '^': case ';': case '\\':
		return true;
	case '-':
		if (p + 1 >= f->len)
			return false;
		n = f->buf[p + 1];
		return printable(n) && n != ' ' && !(flow && strchr(",[]{}", n));
	default:
		return false;
	}
}

/*
 * A plain scalar on this line from pos: its text ends at *end (trailing
 * spaces excluded); *stop is where scanning stopped (the spaces after it, a
 * ':' that makes it a key, a flow indicator, the line's end).
 */
static int scan_plain(struct yfast *f, bool flow, size_t *end, size_t *stop)
{
	size_t p = f->pos, last = f->pos;

	for (;;) {
		unsigned char c;

		if (p >= f->len)
			break;
		c = f->buf[p];
		if (c == '\n')
			break;
		if (c == ' ') {
			size_t q = p;

			while (q < f->len && f->buf[q] == ' ')
				q++;
			if (q >= f->len || f->buf[q] == '\n' || f->buf[q] == '#')
				break;
			/* "a : b": a key libyaml takes, with spaces; not ours. */
			if (f->buf[q] == ':' && blank_at(f, q + 1))
				return refuse(f);
			p = q;
			continue;
		}
		if (c == ':' && blank_at(f, p + 1))
			break;
		if (flow) {
			if (c == ',' || c == '[' || c == ']' || c == '{' || c == '}')
				break;
			/* ':' inside a plain scalar in a flow collection: libyaml versions differ. */
			if (c == ':')
				return refuse(f);
		}
		if (!printable(c))
			return refuse(f);
		last = ++p;
	}
	/* p is past last only after spaces before a flow indicator: the caller skips them. */
	*end = *stop = last;
	return 0;
}

/* A quoted scalar on one line from pos (at the quote): [from, to) is its text, *stop past the quote. */
static int scan_quoted(struct yfast *f, size_t *from, size_t *to, size_t *stop)
{
	char q = f->buf[f->pos];
	size_t p = f->pos + 1;

	for (;;) {
		unsigned char c;

		if (p >= f->len)
			return refuse(f);
		c = f->buf[p];
		if (c == q) {
			if (q == '\'' && p + 1 < f->len && f->buf[p + 1] == '\'') {
				p += 2;
				continue;
			}
			break;
		}
		if (!printable(c) || (q == '"' && c == '\\'))
			return refuse(f);
		p++;
	}
	*from = f->pos + 1;
	*to = p;
	*stop = p + 1;
	return 0;
}

/*
 * A scalar at pos; *key: it is followed by ':' and a blank (block) or a
 * space (flow), pos then past the ':'. Otherwise pos is past the scalar.
 */
static int scalar(struct yfast *f, bool flow, bool *key)
{
	yaml_mark_t start = mark_at(f, f->pos);
	size_t from = f->pos, to, stop;
	int style, ret;
	bool quoted = f->buf[f->pos] == '"' || f->buf[f->pos] == '\'';

	if (quoted) {
		style = f->buf[f->pos] == '"' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
					      : YAML_SINGLE_QUOTED_SCALAR_STYLE;
		ret = scan_quoted(f, &from, &to, &stop);
	} else if (plain_start(f, f->pos, flow)) {
		style = YAML_PLAIN_SCALAR_STYLE;
		ret = scan_plain(f, flow, &to, &stop);
	} else {
		return refuse(f);
	}
	if (ret)
		return ret;
	*key = stop < f->len && f->buf[stop] == ':' &&
	       (flow ? stop + 1 < f->len && f->buf[stop + 1] == ' ' : blank_at(f, stop + 1));
	if (*key && stop - f->pos > FAST_MAX_KEY)
		return refuse(f);
	ret = add_scalar(f, style, from, to, style == YAML_SINGLE_QUOTED_SCALAR_STYLE, start,
			 mark_at(f, quoted ? stop : to));
	f->pos = *key ? stop + 1 : stop;
	return ret;
}

/*
 * The key of a mapping entry, pushed: a plain or quoted scalar that a ':'
 * ends (a collection as key, or a scalar without ':', is libyaml's).
 */
static int mapping_key(struct yfast *f, bool flow)
{
	bool key;
	int k;

	if (f->pos >= f->len || f->buf[f->pos] == '[' || f->buf[f->pos] == '{')
		return refuse(f);
	k = scalar(f, flow, &key);
	if (k < 0)
		return k;
	if (!key)
		return refuse(f);
	return push_tmp(f, k);
}

/* ---- flow collections, on one line ---------------------------------------- */

static void skip_spaces(struct yfast *f)
{
	while (f->pos < f->len && f->buf[f->pos] == ' ')
		f->pos++;
}

static int flow_node(struct yfast *f)
{
	bool map, key;
	size_t base;
	int id, ret;
	char close;

	if (f->pos >= f->len)
		return refuse(f);
	if (f->buf[f->pos] != '[' && f->buf[f->pos] != '{') {
		id = scalar(f, true, &key);
		if (id < 0)
			return id;
		return key ? refuse(f) : id;
	}
	map = f->buf[f->pos] == '{';
	close = map ? '}' : ']';
	id = open_collection(f, map ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE,
			     map ? YAML_FLOW_MAPPING_STYLE : YAML_FLOW_SEQUENCE_STYLE, &base);
	if (id < 0)
		return id;
	f->pos++;
	skip_spaces(f);
	if (f->pos < f->len && f->buf[f->pos] == close)
		goto done;
	for (;;) {
		int child;

		if (map) {
			if ((ret = mapping_key(f, true)))
				return ret;
			skip_spaces(f);
			if (f->pos >= f->len || f->buf[f->pos] == ',' || f->buf[f->pos] == close)
				return refuse(f);
		}
		child = flow_node(f);
		if (child < 0)
			return child;
		if ((ret = push_tmp(f, child)))
			return ret;
		skip_spaces(f);
		if (f->pos >= f->len)
			return refuse(f);
		if (f->buf[f->pos] == close)
			break;
		if (f->buf[f->pos] != ',')
			return refuse(f);
		f->pos++;
		skip_spaces(f);
		if (f->pos >= f->len || f->buf[f->pos] == close || f->buf[f->pos] == ',')
			return refuse(f);
	}
done:
	f->pos++;
	ret = close_collection(f, id, base, mark_at(f, f->pos));
	return ret ? ret : id;
}

/* ---- block collections ---------------------------------------------------- */

static int block_mapping(struct yfast *f);

static int block_seq(struct yfast *f, bool indentless)
{
	size_t s = f->pos - f->ls, base;
	int id = open_collection(f, YAML_SEQUENCE_NODE, YAML_BLOCK_SEQUENCE_STYLE, &base), ret;

	if (id < 0)
		return id;
	for (;;) {
		int child;
		bool key;

		f->pos++;	/* the '-' */
		skip_spaces(f);
		if (f->pos >= f->len || f->buf[f->pos] == '\n' || f->buf[f->pos] == '#' ||
		    is_entry(f, f->pos))
			return refuse(f);
		if (f->buf[f->pos] == '[' || f->buf[f->pos] == '{') {
			child = flow_node(f);
			if (child >= 0 && (ret = end_line(f)))
				return ret;
		} else {
			size_t at = f->pos, line = f->line, nodes = f->nr_nodes, str = f->nr_str;

			child = scalar(f, false, &key);
			if (child >= 0 && key) {
				/* "- key: ...": a mapping at the key's column; compose it again as one. */
				f->pos = at;
				f->line = line;
				f->nr_nodes = nodes;
				f->nr_str = str;
				child = block_mapping(f);
			} else if (child >= 0 && (ret = end_line(f))) {
				return ret;
			}
		}
		if (child < 0)
			return child;
		if ((ret = push_tmp(f, child)))
			return ret;
		if (f->at != AT_CONTENT)
			break;
		if (f->pos - f->ls == s && is_entry(f, f->pos))
			continue;
		if (f->pos - f->ls > s || (f->pos - f->ls == s && !indentless))
			return refuse(f);
		break;
	}
	ret = close_collection(f, id, base, end_mark(f, s));
	return ret ? ret : id;
}

/* The value of a key of the mapping at column m; pos is past the ':'. */
static int block_value(struct yfast *f, size_t m)
{
	yaml_mark_t colon = mark_at(f, f->pos);
	int id, ret;
	bool key;

	skip_spaces(f);
	if (f->pos >= f->len || f->buf[f->pos] == '\n' || f->buf[f->pos] == '#') {
		if (f->pos < f->len && f->buf[f->pos] == '#' && f->buf[f->pos - 1] != ' ')
			return refuse(f);
		if ((ret = end_line(f)))
			return ret;
		if (f->at == AT_CONTENT && f->pos - f->ls > m)
			return is_entry(f, f->pos) ? block_seq(f, false) : block_mapping(f);
		if (f->at == AT_CONTENT && f->pos - f->ls == m && is_entry(f, f->pos))
			return block_seq(f, true);
		/* Nothing: an empty plain scalar, marked right after the ':' (libyaml 0.2.5). */
		return add_scalar(f, YAML_PLAIN_SCALAR_STYLE, 0, 0, false, colon, colon);
	}
	if (f->buf[f->pos] == '[' || f->buf[f->pos] == '{') {
		id = flow_node(f);
	} else {
		id = scalar(f, false, &key);
		if (id >= 0 && key)
			return refuse(f);	/* "a: b: c" */
	}
	if (id < 0)
		return id;
	ret = end_line(f);
	return ret ? ret : id;
}

/* A block mapping whose first key is at pos; its column is the mapping's. */
static int block_mapping(struct yfast *f)
{
	size_t m = f->pos - f->ls, base;
	int id = open_collection(f, YAML_MAPPING_NODE, YAML_BLOCK_MAPPING_STYLE, &base), ret;

	if (id < 0)
		return id;
	for (;;) {
		int v;

		if ((ret = mapping_key(f, false)))
			return ret;
		v = block_value(f, m);
		if (v < 0)
			return v;
		if ((ret = push_tmp(f, v)))
			return ret;
		if (f->at != AT_CONTENT || f->pos - f->ls < m)
			break;
		if (f->pos - f->ls > m || is_entry(f, f->pos))
			return refuse(f);
	}
	ret = close_collection(f, id, base, end_mark(f, m));
	return ret ? ret : id;
}

/* ---- documents ------------------------------------------------------------ */

void yfast_init(struct yfast *f, const char *buf, size_t len, int line_base)
{
	memset(f, 0, sizeof(*f));
	f->line_base = (size_t)line_base;
	f->buf = buf;
	f->len = len;
	f->at = AT_INIT;
}

void yfast_free(struct yfast *f)
{
	free(f->nodes);
	free(f->str);
	free(f->items);
	free(f->pairs);
	free(f->tmp);
	free(f->slots);
	memset(f, 0, sizeof(*f));
}

/* Offsets into pointers, now that the buffers stay where they are. */
static void fix_up(struct yfast *f)
{
	for (size_t i = 0; i < f->nr_nodes; i++) {
		yaml_node_t *n = &f->nodes[i];
		uintptr_t off, nr;

		switch (n->type) {
		case YAML_SCALAR_NODE:
			n->data.scalar.value = (yaml_char_t *)f->str +
					       (uintptr_t)n->data.scalar.value;
			break;
		case YAML_SEQUENCE_NODE:
			off = (uintptr_t)n->data.sequence.items.start;
			nr = (uintptr_t)n->data.sequence.items.top;
			n->data.sequence.items.start = f->items + off;
			n->data.sequence.items.top = n->data.sequence.items.end =
				f->items + off + nr;
			break;
		case YAML_MAPPING_NODE:
			off = (uintptr_t)n->data.mapping.pairs.start;
			nr = (uintptr_t)n->data.mapping.pairs.top;
			n->data.mapping.pairs.start = f->pairs + off;
			n->data.mapping.pairs.top = n->data.mapping.pairs.end =
				f->pairs + off + nr;
			break;
		default:
			break;
		}
	}
}

static int compose(struct yfast *f, yaml_document_t *doc)
{
	bool first = f->at == AT_INIT, implicit;
	yaml_mark_t start;
	int ret, root;

	if (first) {
		f->pos = f->ls = f->line = 0;
		if ((ret = next_content(f)))
			return ret;
	}
	if (f->at == AT_END)
		return 0;
	f->doc_off = first ? 0 : f->pos;
	f->doc_line = first ? 0 : f->line;
	f->nr_nodes = f->nr_str = f->nr_items = f->nr_pairs = f->nr_tmp = 0;
	f->depth = 0;
	implicit = f->at == AT_CONTENT;
	start = mark_at(f, f->pos);
	if (!implicit) {
		f->pos += 3;	/* "---" alone on its line */
		if ((ret = end_line(f)))
			return ret;
	}
	if (f->at != AT_CONTENT) {
		/* An empty document: libyaml's root is an empty plain scalar. */
		root = add_scalar(f, YAML_PLAIN_SCALAR_STYLE, 0, 0, false, next_mark(f),
				  next_mark(f));
	} else {
		if (f->pos != f->ls || is_entry(f, f->pos))
			return refuse(f);
		root = block_mapping(f);
		if (root >= 0 && f->at == AT_CONTENT)
			return refuse(f);
	}
	if (root < 0)
		return root;
	fix_up(f);
	memset(doc, 0, sizeof(*doc));
	doc->nodes.start = f->nodes;
	doc->nodes.top = doc->nodes.end = f->nodes + f->nr_nodes;
	doc->start_implicit = implicit;
	doc->end_implicit = 1;
	doc->start_mark = start;
	doc->end_mark = next_mark(f);
	return 1;
}

int yfast_next(struct yfast *f, yaml_document_t *doc)
{
	int ret;

	if (f->failed)
		return -EAGAIN;
	ret = compose(f, doc);
	if (ret < 0)
		f->failed = true;
	return ret;
}
