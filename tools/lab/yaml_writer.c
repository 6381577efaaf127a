// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_writer.h"

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	struct yw *w = data;

	return fwrite(buffer, 1, size, w->out) == size;
}

static void emit(struct yw *w, yaml_event_t *ev, int ok)
{
	if (w->err)
		return;
	if (!ok || !yaml_emitter_emit(&w->emitter, ev))
		w->err = -EIO;
}

int yw_init(struct yw *w)
{
	yaml_event_t ev;

	memset(w, 0, sizeof(*w));
	w->out = open_memstream(&w->buf, &w->len);
	if (!w->out)
		return -ENOMEM;
	if (!yaml_emitter_initialize(&w->emitter)) {
		fclose(w->out);
		free(w->buf);
		return -ENOMEM;
	}
	yaml_emitter_set_output(&w->emitter, write_handler, w);
	yaml_emitter_set_unicode(&w->emitter, 1);
	yaml_emitter_set_width(&w->emitter, 4096);
	emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	return 0;
}

int yw_finish(struct yw *w, char **text, size_t *len)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_stream_end_event_initialize(&ev));
	if (!w->err && !yaml_emitter_flush(&w->emitter))
		w->err = -EIO;
	yaml_emitter_delete(&w->emitter);
	if (fclose(w->out) && !w->err)
		w->err = -ENOMEM;
	if (w->err) {
		free(w->buf);
		return w->err;
	}
	*text = w->buf;
	*len = w->len;
	return 0;
}

void yw_doc_start(struct yw *w)
{
	yaml_event_t ev;

	/* Explicit "---" between documents, as kubectl prints them. */
	emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0));
}

void yw_doc_end(struct yw *w)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
}

void yw_map_start(struct yw *w)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
							  YAML_BLOCK_MAPPING_STYLE));
}

void yw_map_end(struct yw *w)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

void yw_seq_start(struct yw *w, bool flow)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

void yw_seq_end(struct yw *w)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* Would this string, written plain, be read back as a number, bool or null? */
static bool looks_typed(const char *s)
{
	static const char *const words[] = {
		"", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
		"FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off",
		"Off", "OFF", "y", "Y", "n", "N",
	};
	char *end;

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(s, words[i]))
			return true;
	strtod(s, &end);
	return end != s && !*end;
}

static void scalar(struct yw *w, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	emit(w, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
						  (int)strlen(s), 1, 1, style));
}

void yw_str(struct yw *w, const char *s)
{
	scalar(w, s, looks_typed(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

void yw_int(struct yw *w, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	scalar(w, buf, YAML_PLAIN_SCALAR_STYLE);
}

void yw_bool(struct yw *w, bool v)
{
	scalar(w, v ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
}

void yw_kv_str(struct yw *w, const char *key, const char *value)
{
	yw_str(w, key);
	yw_str(w, value);
}

void yw_kv_int(struct yw *w, const char *key, long long value)
{
	yw_str(w, key);
	yw_int(w, value);
}

void yw_kv_bool(struct yw *w, const char *key, bool value)
{
	yw_str(w, key);
	yw_bool(w, value);
}

void yw_key_map(struct yw *w, const char *key)
{
	yw_str(w, key);
	yw_map_start(w);
}

void yw_key_seq(struct yw *w, const char *key, bool flow)
{
	yw_str(w, key);
	yw_seq_start(w, flow);
}
