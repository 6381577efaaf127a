/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The route status file: in file mode the agent writes the conditions the
 * translator computed (status.h) to DIR/.gammad-status.json on every apply,
 * so a user editing the YAML in DIR sees Accepted/ResolvedRefs at once and
 * `gammactl status` can show them. The name starts with a dot: the manifest
 * loader and the agent's change detection both skip dot-files, so writing
 * it never triggers another apply. It is replaced atomically (a dot-named
 * temporary file in DIR, then rename), so readers see a whole file.
 *
 * Format (JSON):
 *   { "apiVersion": "gammad.io/status/v1", "manifests": DIR,
 *     "time": <unix seconds>, "inputErrors": N,
 *     "routes": [ { "kind", "namespace", "name", "generation",
 *                   "parents": [ { "parentRef": {group, kind, namespace, name,
 *                                  port?, sectionName?}, "controllerName",
 *                                  "conditions": [ {type, status, reason,
 *                                  message, observedGeneration} ] } ] } ],
 *     "diagnostics": [ {level, file, line, field, message} ] }
 */
#ifndef GAMMAD_STATUS_FILE_H
#define GAMMAD_STATUS_FILE_H

#include <stdbool.h>
#include <stdio.h>

#include "translate/translate.h"

#define STATUS_FILE_NAME ".gammad-status.json"

/* Path of the status file of a manifest path (a directory or a file's dir). */
int status_file_path(const char *manifests, char *buf, size_t len);
/* Write the statuses as JSON to out. */
int status_write_json(FILE *out, const char *manifests, const struct tr_result *r,
		      const struct diag *dg, bool pretty);
/*
 * Replace the status file of manifests atomically; 0 or negative errno,
 * logged once per distinct error (a read-only DIR does not flood the log).
 */
int status_file_write(const char *manifests, const struct tr_result *r, const struct diag *dg);

#endif
