/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read-only access to YAML (and JSON) manifests through libyaml's document
 * API. Every node keeps its line, so whoever rejects a value can name the
 * file, line and field. Getters return 0, -ENOENT (absent or null) or
 * -EINVAL (present but of the wrong type or out of range); they never print:
 * the caller decides and reports once through ydoc_error().
 */
#ifndef GAMMAD_YAML_DOC_H
#define GAMMAD_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/* Largest manifest file we read; larger ones are rejected as a whole. */
#define YDOC_MAX_FILE_BYTES (64u << 20)
/*
 * Limits of one document, checked while it is composed (before any parser
 * sees it): collections nested deeper than YDOC_MAX_DEPTH end the stream
 * (libyaml's scanner is quadratic in flow depth); more than YDOC_MAX_NODES
 * nodes, counting a node again every time an alias repeats it, drop the
 * document. An alias inside the node it names (a cycle) drops it too.
 */
#define YDOC_MAX_DEPTH 64
#define YDOC_MAX_NODES (1u << 20)

struct ydoc {
	yaml_document_t doc;
	const char *file;	/* owned by the ydoc_set */
	int index;		/* 0-based position of the document in its file */
	yaml_node_t *root;	/* NULL for an empty document */
	/*
	 * The document is JSON: its root is a flow mapping ("{"), which is how
	 * kubectl tells JSON from YAML. Numbers then follow JSON ("010" is an
	 * error there, 8 in YAML 1.1); see ydoc_int().
	 */
	bool json;
};

/* All documents of one file (or buffer), in order. */
struct ydoc_set {
	char *file;
	struct ydoc *docs;
	size_t nr_docs;
};

/* Error of the last failed load or composition. */
struct ydoc_error {
	char msg[1024];		/* "file:line:col: [field: ]problem" (ydoc_load_*) */
	int line, col;		/* 1-based; 0 when unknown */
	char field[256];	/* dotted path of the offending node, "" for none */
	char problem[320];
	bool fatal;		/* the rest of the stream cannot be read */
};

/*
 * Where a stream's bytes come from: a buffer or a file descriptor, read
 * through ydoc_src_attach(). Bytes are checked before libyaml sees them:
 * invalid UTF-8, characters YAML forbids and bytes past limit end the stream
 * exactly there, with the line and column, so every document before that
 * point is still composed (libyaml's own reader decodes ahead and reports
 * such errors at offset 0, losing them).
 */
struct ydoc_src {
	const unsigned char *buf;
	size_t len, off;
	int fd;			/* -1 for a buffer */
	uint64_t limit, total;	/* bytes allowed, bytes delivered */
	unsigned char pend[4];	/* start of a character cut by a read */
	size_t nr_pend;
	int line, col;		/* position of the next byte, 1-based */
	int line_base;		/* lines before the stream (a part of a file): added to every mark */
	const char *bad;	/* why the stream stopped early, or NULL */
	int bad_line, bad_col;
	int read_errno;
};

void ydoc_src_buf(struct ydoc_src *s, const void *buf, size_t len, uint64_t limit);
void ydoc_src_fd(struct ydoc_src *s, int fd, uint64_t limit);
/* The stream is a part of a file that starts after line_base lines: marks name the file's lines. */
void ydoc_src_set_line_base(struct ydoc_src *s, int line_base);
void ydoc_src_attach(yaml_parser_t *parser, struct ydoc_src *s);

/*
 * Compose the next document of the stream into doc (libyaml's document
 * model, with the limits above). *alias_budget is what aliases may still
 * expand to in the whole load; it is decreased (NULL: no load budget).
 * Returns 1 with a document (its root may be NULL for an empty one), 0 at
 * the end of the stream, -EINVAL with err set (err->fatal: stop reading the
 * stream; otherwise the next call reads the next document), -ENOMEM.
 */
int ydoc_compose(yaml_parser_t *parser, struct ydoc_src *src, yaml_document_t *doc,
		 uint64_t *alias_budget, struct ydoc_error *err);

int ydoc_load_file(const char *path, struct ydoc_set *set, struct ydoc_error *err);
int ydoc_load_buf(const char *name, const void *buf, size_t len,
		  struct ydoc_set *set, struct ydoc_error *err);
void ydoc_set_free(struct ydoc_set *set);

/* 1-based line of a node, as editors show it. */
static inline int ynode_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

yaml_node_t *ynode_get(const struct ydoc *d, int id);
bool ynode_is_null(const yaml_node_t *n);
/* Scalar text, or NULL if n is not a scalar. YAML null gives NULL too. */
const char *ynode_str(const yaml_node_t *n);

/* Value of key in mapping map; NULL when map is not a mapping or key is absent. */
yaml_node_t *ymap_get(const struct ydoc *d, const yaml_node_t *map, const char *key);
/* Follow a dotted path of keys: ymap_path(d, root, "metadata.name"). */
yaml_node_t *ymap_path(const struct ydoc *d, const yaml_node_t *map, const char *path);

size_t yseq_len(const yaml_node_t *seq);
yaml_node_t *yseq_at(const struct ydoc *d, const yaml_node_t *seq, size_t i);

int yget_str(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     const char **out);
int yget_int(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     long long min, long long max, long long *out);
int yget_bool(const struct ydoc *d, const yaml_node_t *map, const char *key,
	      bool *out);
/* Mapping or sequence child; -EINVAL if present with another type. */
int yget_map(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     yaml_node_t **out);
int yget_seq(const struct ydoc *d, const yaml_node_t *map, const char *key,
	     yaml_node_t **out);

/*
 * Parse a whole plain scalar as an integer in [min, max] the way Kubernetes'
 * YAML 1.1 reader does: optional sign, decimal, 0x hex, 0b binary, a leading
 * 0 for octal ("010" is 8), '_' separators; -EINVAL otherwise.
 */
int yparse_int(const char *s, long long min, long long max, long long *out);
/* The same for JSON: -?(0|[1-9][0-9]*) only. */
int yparse_json_int(const char *s, long long min, long long max, long long *out);
/* A plain scalar of d as an integer, by the rules of d's syntax (JSON or YAML). */
static inline int ydoc_int(const struct ydoc *d, const char *s, long long min, long long max,
			   long long *out)
{
	return d->json ? yparse_json_int(s, min, max, out) : yparse_int(s, min, max, out);
}
/* Mark d as JSON when its root is a flow mapping. */
void ydoc_detect_json(struct ydoc *d);

/* Iterate the pairs of a mapping node. */
#define ymap_for_each(d, map, kn, vn)						\
	for (yaml_node_pair_t *__p = (map) && (map)->type == YAML_MAPPING_NODE \
		? (map)->data.mapping.pairs.start : NULL;			\
	     __p && __p < (map)->data.mapping.pairs.top &&			\
	     ((kn) = ynode_get(d, __p->key), (vn) = ynode_get(d, __p->value), 1); \
	     __p++)

#endif
