// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target over the HTTP/1.1 parser (user/lib/http/http1.h): the
 * input is the first bytes of a connection. It checks, and aborts on a
 * finding:
 *  - the differential rules against nodejs' http_parser (tests/lib/http1_ref.h);
 *  - the end of a head found byte by byte is the end found at once;
 *  - a chunked body scanned byte by byte ends where it ends at once, with
 *    the same verdict;
 * and runs the response parser over the same bytes (sanitizers watch).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"
#include "lib/http1_ref.h"

static void check_head_end(const char *buf, size_t len)
{
	struct h1_scan whole = { 0 }, step = { 0 };
	long once = h1_head_end(buf, len, NULL, &whole), r = 0;
	size_t n;

	for (n = 1; n <= len && !r; n++)
		r = h1_head_end(buf, n, NULL, &step);
	if (r != once) {
		fprintf(stderr, "head end: %ld at once, %ld byte by byte\n", once, r);
		abort();
	}
}

static void check_chunked(const char *body, size_t len)
{
	struct h1_chunked whole = { 0 }, step = { 0 };
	long once = h1_chunked_scan(&whole, body, len, NULL, NULL), used = 0, r = 0;

	for (size_t i = 0; i < len && !step.done && r >= 0; i++) {
		r = h1_chunked_scan(&step, body + i, 1, NULL, NULL);
		used += r > 0 ? r : 0;
	}
	if ((once < 0) != (r < 0) || (once >= 0 && (once != used || whole.done != step.done))) {
		fprintf(stderr, "chunked: %ld (done %d) at once, %ld (done %d) byte by byte\n", once,
			whole.done, r < 0 ? r : used, step.done);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct h1_str get = { "GET", 3 };
	const char *buf = (const char *)data;
	struct h1_head *h = malloc(sizeof(*h));
	struct h1_scan scan = { 0 };
	char why[160];
	long end;

	if (!h)
		return 0;
	if (h1_ref_compare(buf, size, why, sizeof(why)) == H1_REF_DISAGREE) {
		fprintf(stderr, "differs from http_parser: %s\n", why);
		abort();
	}
	check_head_end(buf, size);
	end = h1_head_end(buf, size, NULL, &scan);
	if (end > 0 && !h1_parse_request(buf, (size_t)end, NULL, h) && h->body == H1_BODY_CHUNKED)
		check_chunked(buf + end, size - (size_t)end);
	if (end > 0 && !h1_parse_response(buf, (size_t)end, &get, h) && h->body == H1_BODY_CHUNKED)
		check_chunked(buf + end, size - (size_t)end);
	free(h);
	return 0;
}
