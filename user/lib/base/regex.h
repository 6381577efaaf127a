/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Regular expressions of route matches (RegularExpression), through PCRE2,
 * with a budget on both ends: a pattern is at most RX_MAX_PATTERN bytes and
 * compiles to at most PCRE2's 64 KiB (nested counted repeats that would
 * expand past it are refused as too large, not as invalid), and one match
 * may take at most RX_MATCH_LIMIT backtracking steps and RX_HEAP_LIMIT KiB.
 *
 * Patterns are compiled once and kept by their text, so a route revision's
 * patterns are compiled when it is first translated and every evaluated
 * request reuses them. The cache holds at most RX_CACHE_MAX patterns and
 * RX_CACHE_BYTES compiled bytes; past that it starts over (an agent whose
 * routes keep changing stays bounded). Thread-safe: a pattern in use by a
 * match is freed only after that match.
 */
#ifndef GAMMAD_REGEX_H
#define GAMMAD_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#define RX_MAX_PATTERN 1024
#define RX_MATCH_LIMIT 100000
#define RX_DEPTH_LIMIT 1000
#define RX_HEAP_LIMIT 1024	/* KiB */
#define RX_CACHE_MAX 4096
#define RX_CACHE_BYTES (16u << 20)

enum rx_status {
	RX_OK,
	RX_INVALID,		/* not a regular expression */
	RX_TOO_LARGE,		/* over the compile budget */
	RX_NO_MEMORY,
};

/*
 * Check a pattern: RX_OK, or why not with a message in why (may be NULL).
 * The pattern is matched whole (as if between ^(?: and )$).
 */
enum rx_status rx_check(const char *pattern, char *why, size_t len);
/*
 * Does subject (len bytes) match pattern whole? 1 yes, 0 no, -E2BIG when the
 * match went over its budget (counts as no match), -EINVAL for a pattern
 * rx_check() refuses.
 */
int rx_match(const char *pattern, const char *subject, size_t len);
/* Drop every compiled pattern (tests, and the end of a process). */
void rx_cache_clear(void);

#endif
