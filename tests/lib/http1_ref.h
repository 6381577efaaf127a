/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The differential check of gammad's HTTP/1.1 head parser (http/http1.h)
 * against nodejs' http_parser (Debian's libhttp-parser, the parser nginx
 * and Node.js users know): one request in, and whether the two agree.
 *
 * What "agree" means:
 *  - a head gammad accepts, http_parser accepts too, ends at the same byte,
 *    and reads the same method, target, version, header fields, body
 *    framing (chunked, Content-Length), keep-alive and upgrade; where
 *    http_parser departs from RFC 9112 gammad follows the RFC: "close"
 *    wins over "keep-alive" (compared where each Connection field holds
 *    one option: http_parser finds options only in some shapes of list);
 *  - a head http_parser accepts and gammad refuses is refused for one of
 *    the stricter rules gammad keeps on purpose (h1_ref_stricter()): no
 *    Host on HTTP/1.1, an unknown Expect, bare LF, obs-fold, Content-Length
 *    with Transfer-Encoding, a repeated Content-Length or Transfer-Encoding
 *    or one with an HTAB, Transfer-Encoding on HTTP/1.0, not ending in
 *    chunked or with an empty element, a request line with extra spaces or
 *    without a version, space before a colon, a target of no known form,
 *    control characters in values, versions other than 1.0 and 1.1
 *    (answered 505), the size limits, CONNECT;
 *  - gammad never accepts what http_parser refuses, but for a method
 *    http_parser does not know (it has a fixed list; RFC 9110 allows any
 *    token): then the head must agree with the method swapped for a known
 *    one of the same length.
 * Used by tests/prog_tests/http1_diff.c and tests/fuzz/fuzz_http1.c.
 */
#ifndef GAMMAD_TEST_HTTP1_REF_H
#define GAMMAD_TEST_HTTP1_REF_H

#include <stdbool.h>
#include <stddef.h>

enum h1_ref_verdict {
	H1_REF_BOTH_ACCEPT,		/* and every field agrees */
	H1_REF_BOTH_REFUSE,
	H1_REF_BOTH_INCOMPLETE,
	H1_REF_STRICTER,		/* gammad refuses for a rule it keeps on purpose */
	H1_REF_EXTENSION_METHOD,	/* a method only gammad knows (any token, RFC 9110);
					   everything else agrees */
	H1_REF_REFERENCE_BUG,		/* http_parser 2.9.4 takes a field whose name only
					   starts with "Transfer-Encoding" for one */
	H1_REF_DISAGREE,		/* a bug in one of them: why says what */
};

/* Compare both parsers on buf[0..len); why gets a line on H1_REF_DISAGREE. */
enum h1_ref_verdict h1_ref_compare(const char *buf, size_t len, char *why, size_t why_len);

#endif
