/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load manifests into the model: any number of files and directories of
 * multi-document YAML or JSON (JSON is YAML). Directories are walked
 * recursively in name order, reading *.yaml, *.yml and *.json. Each document
 * is dispatched by apiVersion/kind; a `kind: List` is unpacked. Unknown kinds
 * are skipped with a debug line; a known kind under an apiVersion that the
 * API server does not serve is skipped with a warning.
 *
 * Problems are reported once through diag and never stop the load: a syntax
 * error, invalid UTF-8 or too many bytes end a file there (libyaml cannot
 * resume; the documents before stay), a bad document is dropped, everything
 * else is kept. Directories are walked once per real directory; FIFOs,
 * devices and sockets inside them are skipped without being opened.
 */
#ifndef GAMMAD_MANIFEST_H
#define GAMMAD_MANIFEST_H

#include "model.h"

/* Nesting limit for directories and List items. */
#define MANIFEST_MAX_DEPTH 16
/*
 * The budget of one load (one manifest_load_path() or _buf() call): bytes
 * read from all files (each also at most YDOC_MAX_FILE_BYTES), nodes that
 * aliases repeat in all documents (each document also at most
 * YDOC_MAX_NODES), files and directories looked at. Past a limit the rest
 * is skipped with a diagnostic; what was loaded stays.
 */
#define MANIFEST_MAX_LOAD_BYTES (256ull << 20)
#define MANIFEST_MAX_ALIAS_NODES (8ull << 20)
#define MANIFEST_MAX_ENTRIES 100000
/*
 * Files of this size or more are parsed in two halves on two threads (cut
 * at a "---" line), with the same result as one parse: see load_split().
 */
#define MANIFEST_SPLIT_BYTES (1u << 20)

/*
 * Load a file or a directory. Returns 0 when everything was read (even if
 * documents were dropped: see diag), -ENOENT/-EACCES/... when path itself
 * cannot be read, -ENOMEM on allocation failure.
 */
int manifest_load_path(struct model *m, const char *path, struct diag *dg);
/*
 * A digest of what manifest_load_path(path) reads: every file it would
 * read, in walk order, by path, device, inode, size, mtime and content
 * hash; nothing is parsed. Anything the walk reports (an unreadable file,
 * a FIFO, a limit) goes to dg: a digest is only worth trusting without.
 */
int manifest_digest(const char *path, uint64_t *out, struct diag *dg);
/* Load one buffer; name is used as the file name in diagnostics. */
int manifest_load_buf(struct model *m, const char *name, const void *buf, size_t len,
		      struct diag *dg);
/*
 * Load one composed document (an API object another stage built, e.g. from
 * the API server's JSON), dispatched like a file's documents; d->file names
 * it in diagnostics.
 */
int manifest_load_doc(struct model *m, const struct ydoc *d, struct diag *dg);

/*
 * A manifests tree kept as per-file state, so that a change reads only the
 * files that changed. A file is unchanged while its (device, inode, mtime,
 * size) is; a changed one is read, and only when its content hash differs
 * too are its objects parsed. What changed comes out as object events
 * (model.h): DELETE for every object a changed or vanished file no longer
 * has, then PUT for every object of each changed file. The first scan gives
 * PUT for everything.
 *
 * The loader's rule for an object defined twice (the first file in walk
 * order wins) needs the whole tree: while any object is defined in two
 * files, manifest_cache_scan() returns -EAGAIN (after updating its state)
 * and the caller loads the tree whole instead.
 */
struct manifest_cache;

int manifest_cache_new(struct manifest_cache **out);
void manifest_cache_free(struct manifest_cache *c);
/*
 * Walk path as manifest_load_path() does. *evs is malloc'd (NULL when
 * nothing changed); free what is not applied with model_events_free().
 * dg gets what the walk itself found (unreadable files, limits); what a
 * file's content says stays with the file: manifest_cache_diag().
 * Returns 0, -EAGAIN (see above; no events), or what manifest_load_path()
 * returns for path itself.
 */
int manifest_cache_scan(struct manifest_cache *c, const char *path, struct model_event **evs,
			size_t *nr, struct diag *dg);
/*
 * The diagnostics of every file as of its last parse (unchanged files
 * keep theirs), appended to out: what a whole load would report.
 */
void manifest_cache_diag(const struct manifest_cache *c, struct diag *out);
/* Files the last scan read and parsed (changed content). */
size_t manifest_cache_parsed(const struct manifest_cache *c);
/*
 * manifest_digest() of the files as the last scan read them (unchanged
 * files as they were read last), without reading them again: 0, or
 * -ENODATA when that scan failed or its walk reported anything (as
 * manifest_digest()'s caller refuses a walk with problems) or read a pipe.
 */
int manifest_cache_digest(const struct manifest_cache *c, uint64_t *out);

#endif
