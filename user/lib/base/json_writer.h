/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small streaming JSON writer: objects and arrays nest, commas and
 * indentation are placed for you, strings are escaped per RFC 8259 (control
 * characters as \u00XX; bytes >= 0x80 pass through, so UTF-8 stays UTF-8).
 *
 *	jw_obj_begin(w);
 *	jw_key(w, "name"); jw_str(w, "echo");
 *	jw_obj_end(w);
 *
 * Errors of the stream are sticky: jw_finish() returns -EIO if any write
 * failed, -EINVAL if objects were left open or misused.
 */
#ifndef GAMMAD_JSON_WRITER_H
#define GAMMAD_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 32

struct json_writer {
	FILE *out;
	bool pretty;
	int depth;
	bool first[JW_MAX_DEPTH];	/* nothing written yet at this level */
	bool after_key;
	int error;
};

void jw_init(struct json_writer *w, FILE *out, bool pretty);
void jw_obj_begin(struct json_writer *w);
void jw_obj_end(struct json_writer *w);
void jw_arr_begin(struct json_writer *w);
void jw_arr_end(struct json_writer *w);
void jw_key(struct json_writer *w, const char *key);
void jw_str(struct json_writer *w, const char *s);	/* NULL writes null */
void jw_int(struct json_writer *w, int64_t v);
void jw_uint(struct json_writer *w, uint64_t v);
/* Fixed-point with that many decimals; NaN and infinities write null. */
void jw_double(struct json_writer *w, double v, int decimals);
void jw_bool(struct json_writer *w, bool v);
void jw_null(struct json_writer *w);
/* Shorthands for a key followed by a value. */
void jw_kstr(struct json_writer *w, const char *key, const char *s);
void jw_kint(struct json_writer *w, const char *key, int64_t v);
void jw_kbool(struct json_writer *w, const char *key, bool v);
int jw_finish(struct json_writer *w);

#endif
