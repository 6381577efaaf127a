// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

/* Control characters become \xNN, so that a message stays one line and inert. */
static void escape_controls(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 5 < len; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch >= 0x20 && ch != 0x7f)
			out[n++] = (char)ch;
		else
			n += snprintf(out + n, len - n, "\\x%02x", ch);
	}
	out[n] = 0;
}

static struct diag_entry *new_entry(struct diag *d)
{
	struct diag_entry *e;

	if (d->nr % 64 == 0) {
		e = realloc(d->entries, (d->nr + 64) * sizeof(*e));
		if (!e)
			return NULL;
		d->entries = e;
	}
	return &d->entries[d->nr];
}

static void add_entry(struct diag *d, enum log_level level, const char *file, int line,
		      const char *field, const char *msg)
{
	struct diag_entry *e = new_entry(d);

	if (!e)
		return;
	if (d->print)
		log_msg(level, "%s", msg);
	d->nr++;
	e->level = level;
	e->file = file ? strdup(file) : NULL;
	e->line = line;
	e->field = field ? strdup(field) : NULL;
	e->msg = strdup(msg);
}

#define DROPPED_NOTE "more diagnostics not shown"

/* n entries past DIAG_MAX_ENTRIES: said once, by one entry past the limit. */
static void dropped(struct diag *d, size_t n)
{
	char text[128];

	if (!d->nr_dropped) {
		snprintf(text, sizeof(text), DROPPED_NOTE " (at most %d are kept)",
			 DIAG_MAX_ENTRIES);
		add_entry(d, LOG_ERROR, NULL, 0, NULL, text);
	}
	d->nr_dropped += n;
}

void diag_report(struct diag *d, enum log_level level, const char *file, int line,
		 const char *field, const char *fmt, ...)
{
	char text[1024], full[2048], safe[2048];
	va_list ap;
	int n = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	if (file && line)
		n = snprintf(full, sizeof(full), "%.512s:%d: ", file, line);
	else if (file)
		n = snprintf(full, sizeof(full), "%.512s: ", file);
	if (field)
		n += snprintf(full + n, sizeof(full) - n, "%.256s: ", field);
	snprintf(full + n, sizeof(full) - n, "%s", text);
	escape_controls(full, safe, sizeof(safe));

	if (!d) {
		log_msg(level, "%s", safe);
		return;
	}
	if (level == LOG_ERROR)
		d->nr_errors++;
	/* Once each: a cycle or a loop must not repeat one line forever. */
	if (strmap_get(&d->seen, safe))
		return;
	if (d->nr >= DIAG_MAX_ENTRIES) {
		dropped(d, 1);
		return;
	}
	if (strmap_put(&d->seen, safe, (void *)1, NULL))
		return;
	add_entry(d, level, file, line, field, safe);
}

void diag_append(struct diag *dst, const struct diag *src)
{
	/* src's count: repeats and entries past its limit were errors too. */
	dst->nr_errors += src->nr_errors;
	for (size_t i = 0; i < src->nr; i++) {
		const struct diag_entry *e = &src->entries[i];

		if (src->nr_dropped && !e->file && !strncmp(e->msg, DROPPED_NOTE, strlen(DROPPED_NOTE)))
			continue;	/* src's note: counted below */
		if (strmap_get(&dst->seen, e->msg))
			continue;
		if (dst->nr >= DIAG_MAX_ENTRIES) {
			dropped(dst, 1);
			continue;
		}
		if (strmap_put(&dst->seen, e->msg, (void *)1, NULL))
			continue;
		add_entry(dst, e->level, e->file, e->line, e->field, e->msg);
	}
	if (src->nr_dropped)
		dropped(dst, src->nr_dropped);
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->nr; i++) {
		free(d->entries[i].file);
		free(d->entries[i].field);
		free(d->entries[i].msg);
	}
	free(d->entries);
	strmap_free(&d->seen);
	memset(d, 0, sizeof(*d));
}

const struct diag_entry *diag_find(const struct diag *d, const char *needle)
{
	for (size_t i = 0; i < d->nr; i++)
		if (d->entries[i].msg && strstr(d->entries[i].msg, needle))
			return &d->entries[i];
	return NULL;
}
