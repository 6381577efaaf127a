// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml_doc.h"

static void set_error(struct ydoc_error *err, const char *file, int line, int col,
		      const char *problem, const char *context)
{
	if (!err)
		return;
	err->line = line;
	if (context)
		snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: %s %s", file, line, col,
			 problem, context);
	else
		snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: %s", file, line, col,
			 problem);
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
	set->nr_docs++;
	return 0;
}

int ydoc_load_buf(const char *name, const void *buf, size_t len,
		  struct ydoc_set *set, struct ydoc_error *err)
{
	yaml_parser_t parser;
	int ret = 0;

	memset(set, 0, sizeof(*set));
	set->file = strdup(name);
	if (!set->file)
		return -ENOMEM;
	if (len > YDOC_MAX_FILE_BYTES) {
		set_error(err, name, 1, 1, "file too large", NULL);
		return -EFBIG;
	}
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, buf, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		if (!yaml_parser_load(&parser, &doc)) {
			set_error(err, name, (int)parser.problem_mark.line + 1,
				  (int)parser.problem_mark.column + 1,
				  parser.problem ? parser.problem : "malformed YAML",
				  parser.context);
			ret = -EINVAL;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root || ynode_is_null(root)) {
			/*
			 * No root is how libyaml signals the end; an empty
			 * document between two "---" is skipped, as kubectl does.
			 */
			yaml_document_delete(&doc);
			if (!root && parser.stream_end_produced)
				break;
			continue;
		}
		ret = append_doc(set, &doc);
		if (ret) {
			yaml_document_delete(&doc);
			break;
		}
	}
	yaml_parser_delete(&parser);
	if (ret)
		ydoc_set_free(set);
	return ret;
}

int ydoc_load_file(const char *path, struct ydoc_set *set, struct ydoc_error *err)
{
	struct stat st;
	char *buf;
	size_t off = 0;
	int fd, ret;

	memset(set, 0, sizeof(*set));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_error(err, path, 0, 0, strerror(errno), NULL);
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if ((size_t)st.st_size > YDOC_MAX_FILE_BYTES) {
		close(fd);
		set_error(err, path, 1, 1, "file too large", NULL);
		return -EFBIG;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	close(fd);
	ret = ydoc_load_buf(path, buf, off, set, err);
	free(buf);
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
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
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
	return yparse_int((const char *)n->data.scalar.value, min, max, out);
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
