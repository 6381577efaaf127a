/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diagnostics about input: every problem found in a manifest is reported
 * once, here, as "file:line: field: message", by the code that decides to
 * reject or drop something. The sink keeps them (for tests and statuses) and
 * optionally prints them as log lines.
 */
#ifndef GAMMAD_DIAG_H
#define GAMMAD_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct diag_entry {
	enum log_level level;
	char *file;		/* may be NULL */
	int line;		/* 0 when unknown */
	char *field;		/* dotted path such as "spec.ports[1].port", may be NULL */
	char *msg;		/* full line: "file:line: field: message" */
};

struct diag {
	struct diag_entry *entries;
	size_t nr;
	size_t nr_errors;
	bool print;		/* also log each entry when reported */
};

void diag_report(struct diag *d, enum log_level level, const char *file, int line,
		 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void diag_free(struct diag *d);
/* First entry whose message contains needle, or NULL (used by tests). */
const struct diag_entry *diag_find(const struct diag *d, const char *needle);

#endif
