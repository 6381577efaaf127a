// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void diag_report(struct diag *d, enum log_level level, const char *file, int line,
		 const char *field, const char *fmt, ...)
{
	char text[1024], full[1536];
	struct diag_entry *e;
	va_list ap;
	int n = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	if (file && line)
		n = snprintf(full, sizeof(full), "%s:%d: ", file, line);
	else if (file)
		n = snprintf(full, sizeof(full), "%s: ", file);
	if (field)
		n += snprintf(full + n, sizeof(full) - n, "%s: ", field);
	snprintf(full + n, sizeof(full) - n, "%s", text);

	if (!d) {
		log_msg(level, "%s", full);
		return;
	}
	if (d->print)
		log_msg(level, "%s", full);
	if (level == LOG_ERROR)
		d->nr_errors++;
	e = realloc(d->entries, (d->nr + 1) * sizeof(*e));
	if (!e)
		return;
	d->entries = e;
	e = &d->entries[d->nr++];
	e->level = level;
	e->file = file ? strdup(file) : NULL;
	e->line = line;
	e->field = field ? strdup(field) : NULL;
	e->msg = strdup(full);
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->nr; i++) {
		free(d->entries[i].file);
		free(d->entries[i].field);
		free(d->entries[i].msg);
	}
	free(d->entries);
	memset(d, 0, sizeof(*d));
}

const struct diag_entry *diag_find(const struct diag *d, const char *needle)
{
	for (size_t i = 0; i < d->nr; i++)
		if (d->entries[i].msg && strstr(d->entries[i].msg, needle))
			return &d->entries[i];
	return NULL;
}
