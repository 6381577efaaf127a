/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load manifests into the model: any number of files and directories of
 * multi-document YAML or JSON (JSON is YAML). Directories are walked
 * recursively in name order, reading *.yaml, *.yml and *.json. Each document
 * is dispatched by apiVersion/kind; a `kind: List` is unpacked. Unknown kinds
 * are skipped with a debug line; a known kind under an apiVersion that the
 * API server does not serve is skipped with a warning.
 *
 * Problems are reported once through diag and never stop the load: a
 * malformed file is rejected as a whole (libyaml cannot resume after a syntax
 * error), a bad document is dropped, everything else is kept.
 */
#ifndef GAMMAD_MANIFEST_H
#define GAMMAD_MANIFEST_H

#include "model.h"

/* Nesting limit for directories and List items (cycles through symlinks). */
#define MANIFEST_MAX_DEPTH 16

/*
 * Load a file or a directory. Returns 0 when everything was read (even if
 * documents were dropped: see diag), -ENOENT/-EACCES/... when path itself
 * cannot be read, -ENOMEM on allocation failure.
 */
int manifest_load_path(struct model *m, const char *path, struct diag *dg);
/* Load one buffer; name is used as the file name in diagnostics. */
int manifest_load_buf(struct model *m, const char *name, const void *buf, size_t len,
		      struct diag *dg);

#endif
