/* SPDX-License-Identifier: Apache-2.0 */
/* Request-target helpers: the path the router sees, query parameters. */
#ifndef ECHO_HTTP_PATH_H
#define ECHO_HTTP_PATH_H

#include "http_parse.h"
#include "strbuf.h"

/* The path part of a request target (absolute-form included), "/" if none. */
struct http_span http_target_path(struct http_span target);
/* The raw query of a request target (after "?"), empty if none. */
struct http_span http_target_query(struct http_span target);

/*
 * The path echo-basic routes on: every "//" replaced by "/" (once, left to
 * right, like Go's strings.ReplaceAll), written to @out.
 */
int http_route_path(struct http_span path, struct strbuf *out);

/*
 * Go ServeMux's cleanPath: path.Clean (drop "." and empty segments, resolve
 * "..") keeping a trailing slash. Written to @out.
 */
int http_clean_path(const char *path, size_t len, struct strbuf *out);

/*
 * The first value of query parameter @key, decoded like Go's url.ParseQuery
 * ("+" is a space, %XX escapes; pairs with ";" or a bad escape are skipped).
 * Returns 1 and the value in @value, 0 when absent, negative errno.
 */
int http_query_get(struct http_span query, const char *key, struct strbuf *value);

#endif
