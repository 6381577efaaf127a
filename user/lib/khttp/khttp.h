/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel's HTTP rule table of one Service port and client class, as
 * plain arrays indexed like the maps (gammad_khent_v1 etc. in
 * include/gammad/maps.h), with what each index stands for.
 *
 * What the kernel does exactly (else the table is the engine's):
 *  - HTTP tables only; matches: path Exact / PathPrefix, method, header and
 *    query Exact, at most GAMMAD_KH_CONDS_MAX per match and
 *    GAMMAD_KH_ENTRIES_MAX matches, strings up to GAMMAD_KH_STR_MAX;
 *  - filters: RequestHeaderModifier and URLRewrite (rule and backendRef,
 *    at most one path rewrite per request), RequestRedirect;
 *  - ResponseHeaderModifier (rule and backendRef) folded the same way into
 *    a second record per rule backend (resp[], GAMMAD_KH_RB_RESP), except
 *    on redirects and on rules the engine answers itself (500, 503), whose
 *    answers carry the edits;
 *  - no mirror, retry, timeout or other filters;
 *  - header edits fold into one remove-then-append step that fits the
 *    kernel (GAMMAD_KH_REMOVE_MAX names, GAMMAD_KH_APPEND_MAX bytes), never
 *    touching framing or hop-by-hop fields or removing Host.
 */
#ifndef GAMMAD_KHTTP_H
#define GAMMAD_KHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gammad/maps.h"
#include "translate/translate.h"

struct kh_image {
	struct gammad_kh_table tab;
	char why[160];				/* engine_reason in words, with the object */
	struct gammad_kh_entry *entries;	/* key (tab, i) */
	size_t nr_entries;
	struct gammad_kh_rule *rules;		/* key (tab, i) */
	size_t nr_rules;
	struct gammad_kh_rb *rbs;		/* key (tab, i) */
	struct gammad_kh_rb *resp;		/* per rbs[i]: response edits, key (tab, i | RESP) */
	size_t nr_rbs;
	struct gammad_alias_val *slots;		/* rule r's slot s: slots[slot_base[r] + s] */
	size_t *slot_base;
	size_t nr_slots;
	/* what the indices stand for */
	const struct tr_rule **rule_src;	/* per rule */
	const struct tr_backend **rb_src;	/* per rule backend */
	size_t *rb_rule;			/* per rule backend: its rule */
};

/*
 * Encode cls (a class of Service port `port`): 0 with out->tab.engine_reason
 * saying whether the kernel serves it, or -ENOMEM. Free with kh_image_free().
 */
int kh_encode(const struct tr_class *cls, uint16_t port, struct kh_image *out);
void kh_image_free(struct kh_image *img);

/* Does rule backend i edit the response (a GAMMAD_KH_RB_RESP record)? */
static inline bool kh_rb_edits_response(const struct kh_image *img, size_t i)
{
	return img->resp && (img->resp[i].nr_remove || img->resp[i].append_len);
}

/* Does a FORWARD to rule backend rb change the request (fields, path)? */
static inline bool kh_rb_edits_request(const struct gammad_kh_rb *rb)
{
	return rb->nr_remove || rb->append_len || rb->path.type != GAMMAD_KH_RW_NONE;
}

/* The kernel maps of the HTTP path (GAMMAD_MAP_KH_*), by fd. */
struct kh_map_fds {
	int table, entry, rule, rb, alias;
};

/*
 * Hand img's records as table tab to put(ctx, fd, table, key, value), in
 * the order they may be written: everything below the table first, the
 * table entry last (table: true; it publishes the rest). Stops at put's
 * first error: 0 or -errno.
 */
typedef int (*kh_put_fn)(void *ctx, int fd, bool table, const void *key, const void *val);
int kh_image_put(const struct kh_image *img, uint32_t tab, const struct kh_map_fds *fds,
		 kh_put_fn put, void *ctx);
/* kh_image_put() with one map update each, written now. */
int kh_image_write(const struct kh_image *img, uint32_t tab, const struct kh_map_fds *fds);

/*
 * Can this kernel run the kernel HTTP data path (khttp_probe.c)? 0, or
 * -EOPNOTSUPP/-errno; why says what was found, in words, either way.
 */
int kh_path_probe(char *why, size_t len);
/* Is a kernel of this release (uname -r) new enough for the path? */
bool kh_kernel_release_ok(const char *release);

const char *kh_tab_reason_str(unsigned int reason);
const char *kh_reason_str(unsigned int reason);

#endif
