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

#include "hashmap.h"
#include "log.h"

struct diag_entry {
	enum log_level level;
	char *file;		/* may be NULL */
	int line;		/* 0 when unknown */
	char *field;		/* dotted path such as "spec.ports[1].port", may be NULL */
	char *msg;		/* full line: "file:line: field: message" */
};

/*
 * At most DIAG_MAX_ENTRIES are kept (and printed); an identical message is
 * kept once. nr_errors counts on past the limit, and one last entry says
 * that more were not shown. Control characters in messages (from file
 * names or values) are written as \xNN: a diagnostic is one line.
 */
#define DIAG_MAX_ENTRIES 1000

struct diag {
	struct diag_entry *entries;
	size_t nr;
	size_t nr_errors;
	size_t nr_dropped;	/* past DIAG_MAX_ENTRIES */
	struct strmap seen;	/* messages kept, for the once-only rule */
	bool print;		/* also log each entry when reported */
};

void diag_report(struct diag *d, enum log_level level, const char *file, int line,
		 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void diag_free(struct diag *d);
/* Every entry of src into dst as it is (once each, at most DIAG_MAX_ENTRIES), errors counted. */
void diag_append(struct diag *dst, const struct diag *src);
/* First entry whose message contains needle, or NULL (used by tests). */
const struct diag_entry *diag_find(const struct diag *d, const char *needle);

#endif
