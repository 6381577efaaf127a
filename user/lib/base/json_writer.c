// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "json_writer.h"

void jw_init(struct json_writer *w, FILE *out, bool pretty)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->pretty = pretty;
	w->first[0] = true;
}

static void put(struct json_writer *w, const char *s)
{
	if (fputs(s, w->out) < 0)
		w->error = -EIO;
}

static void newline(struct json_writer *w)
{
	if (!w->pretty)
		return;
	put(w, "\n");
	for (int i = 0; i < w->depth; i++)
		put(w, "  ");
}

/* Before any value or key: the comma and line break it needs. */
static void separate(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put(w, ",");
	w->first[w->depth] = false;
	if (w->depth)
		newline(w);
}

static void open_nested(struct json_writer *w, const char *s)
{
	separate(w);
	put(w, s);
	if (w->depth + 1 >= JW_MAX_DEPTH) {
		w->error = -EINVAL;
		return;
	}
	w->first[++w->depth] = true;
}

static void close_nested(struct json_writer *w, const char *s)
{
	bool empty;

	if (w->depth <= 0) {
		w->error = -EINVAL;
		return;
	}
	empty = w->first[w->depth];
	w->depth--;
	if (!empty)
		newline(w);
	put(w, s);
}

void jw_obj_begin(struct json_writer *w)
{
	open_nested(w, "{");
}

void jw_obj_end(struct json_writer *w)
{
	close_nested(w, "}");
}

void jw_arr_begin(struct json_writer *w)
{
	open_nested(w, "[");
}

void jw_arr_end(struct json_writer *w)
{
	close_nested(w, "]");
}

static void put_escaped(struct json_writer *w, const char *s)
{
	char buf[8];

	put(w, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			put(w, "\\\"");
			break;
		case '\\':
			put(w, "\\\\");
			break;
		case '\n':
			put(w, "\\n");
			break;
		case '\r':
			put(w, "\\r");
			break;
		case '\t':
			put(w, "\\t");
			break;
		default:
			if (*p < 0x20) {
				snprintf(buf, sizeof(buf), "\\u%04x", *p);
				put(w, buf);
			} else if (fputc(*p, w->out) == EOF) {
				w->error = -EIO;
			}
		}
	}
	put(w, "\"");
}

void jw_key(struct json_writer *w, const char *key)
{
	separate(w);
	put_escaped(w, key);
	put(w, w->pretty ? ": " : ":");
	w->after_key = true;
}

void jw_str(struct json_writer *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	separate(w);
	put_escaped(w, s);
}

void jw_int(struct json_writer *w, int64_t v)
{
	char buf[32];

	separate(w);
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	put(w, buf);
}

void jw_uint(struct json_writer *w, uint64_t v)
{
	char buf[32];

	separate(w);
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	put(w, buf);
}

void jw_double(struct json_writer *w, double v, int decimals)
{
	char buf[64];

	separate(w);
	if (v != v || v > 1e300 || v < -1e300)
		snprintf(buf, sizeof(buf), "null");	/* JSON has no NaN or infinity */
	else
		snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	put(w, buf);
}

void jw_bool(struct json_writer *w, bool v)
{
	separate(w);
	put(w, v ? "true" : "false");
}

void jw_null(struct json_writer *w)
{
	separate(w);
	put(w, "null");
}

void jw_kstr(struct json_writer *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kint(struct json_writer *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_kbool(struct json_writer *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}

int jw_finish(struct json_writer *w)
{
	if (!w->error && (w->depth || w->after_key))
		w->error = -EINVAL;
	if (w->pretty && !w->error)
		put(w, "\n");
	return w->error;
}
