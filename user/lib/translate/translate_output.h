/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Printing a translation: JSON (documented in docs/TRANSLATE.md) for
 * machines and tests, text for people. Both list every Service port with
 * its client classes and their ordered rules, then every route status, then
 * the diagnostics.
 */
#ifndef GAMMAD_TRANSLATE_OUTPUT_H
#define GAMMAD_TRANSLATE_OUTPUT_H

#include <stdio.h>

#include "translate.h"

int tr_write_json(FILE *out, const struct tr_result *r, const struct diag *dg, bool pretty);
int tr_write_text(FILE *out, const struct tr_result *r, const struct diag *dg);

/* Pieces of the JSON output that the status file (status_file.h) shares. */
struct json_writer;
/* "routes": [ every route with its parentRefs' conditions ] */
void tr_json_route_statuses(struct json_writer *w, const struct tr_result *r);
/* "diagnostics": [ every input diagnostic ] */
void tr_json_diagnostics(struct json_writer *w, const struct diag *dg);

const char *tr_backend_state_name(enum tr_backend_state s);
/* One line describing a match: "PathPrefix /v2 method GET headers 1 query 0". */
const char *tr_format_match(const struct gapi_match *m, char *buf, size_t len);

#endif
