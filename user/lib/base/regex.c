// SPDX-License-Identifier: Apache-2.0
/* Route regular expressions through PCRE2, with budgets: see regex.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "regex.h"

struct rx_entry {
	pcre2_code *code;	/* NULL when the pattern was refused */
	size_t size;		/* compiled bytes */
	enum rx_status status;
	char why[128];
};

static struct strmap cache;
static size_t cache_bytes;
static pcre2_match_context *match_ctx;
static pcre2_compile_context *compile_ctx;

void rx_cache_clear(void)
{
	struct strmap_slot *s;

	strmap_for_each(&cache, s) {
		struct rx_entry *e = s->value;

		pcre2_code_free(e->code);
		free(e);
	}
	strmap_free(&cache);
	cache_bytes = 0;
}

static int contexts(void)
{
	if (!compile_ctx) {
		compile_ctx = pcre2_compile_context_create(NULL);
		if (!compile_ctx)
			return -ENOMEM;
		pcre2_set_max_pattern_length(compile_ctx, RX_MAX_PATTERN + 16);
		pcre2_set_parens_nest_limit(compile_ctx, 64);
	}
	if (!match_ctx) {
		match_ctx = pcre2_match_context_create(NULL);
		if (!match_ctx)
			return -ENOMEM;
		pcre2_set_match_limit(match_ctx, RX_MATCH_LIMIT);
		pcre2_set_depth_limit(match_ctx, RX_DEPTH_LIMIT);
		pcre2_set_heap_limit(match_ctx, RX_HEAP_LIMIT);
	}
	return 0;
}

static struct rx_entry *compile(const char *pattern)
{
	struct rx_entry *e = calloc(1, sizeof(*e));
	char anchored[RX_MAX_PATTERN + 16];
	PCRE2_SIZE off;
	int code;

	if (!e)
		return NULL;
	if (strlen(pattern) > RX_MAX_PATTERN) {
		e->status = RX_TOO_LARGE;
		snprintf(e->why, sizeof(e->why), "longer than %d characters", RX_MAX_PATTERN);
		return e;
	}
	/* Whole-value match; (?: ) keeps the caller's alternatives inside. */
	snprintf(anchored, sizeof(anchored), "^(?:%s)$", pattern);
	e->code = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, 0,
				&code, &off, compile_ctx);
	if (e->code) {
		pcre2_pattern_info(e->code, PCRE2_INFO_SIZE, &e->size);
		return e;
	}
	pcre2_get_error_message(code, (PCRE2_UCHAR *)e->why, sizeof(e->why));
	switch (code) {
	case PCRE2_ERROR_PATTERN_TOO_LARGE:
	case PCRE2_ERROR_PATTERN_STRING_TOO_LONG:
	case PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP:
	case PCRE2_ERROR_HEAP_FAILED:
		e->status = RX_TOO_LARGE;
		break;
	case PCRE2_ERROR_NOMEMORY:
		e->status = RX_NO_MEMORY;
		break;
	default:
		e->status = RX_INVALID;
		break;
	}
	return e;
}

static struct rx_entry *lookup(const char *pattern)
{
	struct rx_entry *e;

	if (contexts())
		return NULL;
	e = strmap_get(&cache, pattern);
	if (e)
		return e;
	if (cache.nr >= RX_CACHE_MAX || cache_bytes >= RX_CACHE_BYTES)
		rx_cache_clear();
	e = compile(pattern);
	if (!e)
		return NULL;
	cache_bytes += e->size + strlen(pattern);
	if (strmap_put(&cache, pattern, e, NULL)) {
		pcre2_code_free(e->code);
		free(e);
		return NULL;
	}
	return e;
}

enum rx_status rx_check(const char *pattern, char *why, size_t len)
{
	const struct rx_entry *e = lookup(pattern);

	if (!e) {
		if (why)
			snprintf(why, len, "out of memory");
		return RX_NO_MEMORY;
	}
	if (why)
		snprintf(why, len, "%s", e->why);
	return e->status;
}

int rx_match(const char *pattern, const char *subject, size_t len)
{
	const struct rx_entry *e = lookup(pattern);
	pcre2_match_data *md;
	int rc;

	if (!e || !e->code)
		return -EINVAL;
	md = pcre2_match_data_create(1, NULL);
	if (!md)
		return -ENOMEM;
	rc = pcre2_match(e->code, (PCRE2_SPTR)subject, len, 0, 0, md, match_ctx);
	pcre2_match_data_free(md);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	/* Match, depth or heap limit: over budget, which is no match. */
	return -E2BIG;
}
