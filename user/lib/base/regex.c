// SPDX-License-Identifier: Apache-2.0
/* Route regular expressions through PCRE2, with budgets: see regex.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
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
	unsigned int users;	/* matches under way (under lock) */
	bool dropped;		/* out of the cache: freed by its last user */
};

/*
 * One cache for the process: the translator checks patterns while request
 * threads (the HTTP engine) may be matching. Entries are counted while a
 * match uses one, so clearing the cache never frees a pattern in use.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap cache;
static size_t cache_bytes;
static pcre2_match_context *match_ctx;
static pcre2_compile_context *compile_ctx;

static void entry_free(struct rx_entry *e)
{
	pcre2_code_free(e->code);
	free(e);
}

static void clear_locked(void)
{
	struct strmap_slot *s;

	strmap_for_each(&cache, s) {
		struct rx_entry *e = s->value;

		if (e->users)
			e->dropped = true;
		else
			entry_free(e);
	}
	strmap_free(&cache);
	cache_bytes = 0;
}

void rx_cache_clear(void)
{
	pthread_mutex_lock(&lock);
	clear_locked();
	pthread_mutex_unlock(&lock);
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

/* The entry of pattern, compiled now if new; with users + 1 when use is set. Under lock. */
static struct rx_entry *lookup_locked(const char *pattern, bool use)
{
	struct rx_entry *e;

	if (contexts())
		return NULL;
	e = strmap_get(&cache, pattern);
	if (!e) {
		if (cache.nr >= RX_CACHE_MAX || cache_bytes >= RX_CACHE_BYTES)
			clear_locked();
		e = compile(pattern);
		if (!e)
			return NULL;
		if (strmap_put(&cache, pattern, e, NULL)) {
			entry_free(e);
			return NULL;
		}
		cache_bytes += e->size + strlen(pattern);
	}
	e->users += use;
	return e;
}

enum rx_status rx_check(const char *pattern, char *why, size_t len)
{
	const struct rx_entry *e;
	enum rx_status st;

	pthread_mutex_lock(&lock);
	e = lookup_locked(pattern, false);
	st = e ? e->status : RX_NO_MEMORY;
	if (why)
		snprintf(why, len, "%s", e ? e->why : "out of memory");
	pthread_mutex_unlock(&lock);
	return st;
}

int rx_match(const char *pattern, const char *subject, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	struct rx_entry *e;
	int rc;

	if (!md)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	e = lookup_locked(pattern, true);
	pthread_mutex_unlock(&lock);
	if (!e || !e->code) {
		rc = -EINVAL;
		goto out;
	}
	/* A compiled pattern is read-only: matches run outside the lock. */
	rc = pcre2_match(e->code, (PCRE2_SPTR)subject, len, 0, 0, md, match_ctx);
	if (rc >= 0)
		rc = 1;
	else if (rc == PCRE2_ERROR_NOMATCH)
		rc = 0;
	else
		rc = -E2BIG;	/* match, depth or heap limit: over budget, no match */
out:
	if (e) {
		pthread_mutex_lock(&lock);
		if (!--e->users && e->dropped)
			entry_free(e);
		pthread_mutex_unlock(&lock);
	}
	pcre2_match_data_free(md);
	return rc;
}
