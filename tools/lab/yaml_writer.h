/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A thin layer over libyaml's emitter for writing manifests: block style,
 * strings quoted whenever a plain scalar would read back as something else
 * ("True", "80", "null"), so the output parses to exactly what was meant.
 * Errors are sticky: check yw_finish() once at the end.
 */
#ifndef LAB_YAML_WRITER_H
#define LAB_YAML_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

struct yw {
	yaml_emitter_t emitter;
	char *buf;
	size_t len;
	FILE *out;
	int err;
};

int yw_init(struct yw *w);
/* Ends the stream; on success *text (malloc'd) and *len hold the YAML. */
int yw_finish(struct yw *w, char **text, size_t *len);

void yw_doc_start(struct yw *w);
void yw_doc_end(struct yw *w);
void yw_map_start(struct yw *w);
void yw_map_end(struct yw *w);
void yw_seq_start(struct yw *w, bool flow);
void yw_seq_end(struct yw *w);
void yw_str(struct yw *w, const char *s);
void yw_int(struct yw *w, long long v);
void yw_bool(struct yw *w, bool v);

/* key: value pairs */
void yw_kv_str(struct yw *w, const char *key, const char *value);
void yw_kv_int(struct yw *w, const char *key, long long value);
void yw_kv_bool(struct yw *w, const char *key, bool value);
/* key: followed by a mapping or sequence the caller writes */
void yw_key_map(struct yw *w, const char *key);
void yw_key_seq(struct yw *w, const char *key, bool flow);

#endif
