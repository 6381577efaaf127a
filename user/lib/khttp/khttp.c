// SPDX-License-Identifier: Apache-2.0
/*
 * Encoding an effective HTTP table for the kernel (semantics in khttp.h and
 * translate_eval.h). Every decision the evaluator makes from the table
 * alone is made here once (precedence is the entry order, prefix lengths,
 * redirect scheme/host/port, the folded header edits); what depends on the
 * request is left to the kernel in a form it evaluates with bounded loops.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bpf/bpf.h>

#include "khttp.h"
#include "datapath/alias.h"
#include "input/gapi.h"

static const char *const tab_reasons[GAMMAD_KH_TAB_MAX] = {
	[GAMMAD_KH_TAB_OK] = "ok",
	[GAMMAD_KH_TAB_NOT_HTTP] = "not an HTTPRoute table",
	[GAMMAD_KH_TAB_REGEX] = "regular expression match",
	[GAMMAD_KH_TAB_TOO_MANY_ENTRIES] = "too many matches or backends",
	[GAMMAD_KH_TAB_TOO_MANY_CONDS] = "too many header/query conditions in a match",
	[GAMMAD_KH_TAB_STRING] = "string too long for the kernel",
	[GAMMAD_KH_TAB_RESPONSE_FILTER] = "ResponseHeaderModifier",
	[GAMMAD_KH_TAB_MIRROR] = "RequestMirror",
	[GAMMAD_KH_TAB_OTHER_FILTER] = "filter the kernel does not implement",
	[GAMMAD_KH_TAB_RETRY] = "retry",
	[GAMMAD_KH_TAB_TIMEOUT] = "timeouts",
	[GAMMAD_KH_TAB_REWRITES] = "more than one path rewrite",
	[GAMMAD_KH_TAB_HEADER_EDITS] = "header edits too large for the kernel",
	[GAMMAD_KH_TAB_FIELD_VALUE] = "a filter edits framing, hop-by-hop or Host fields, "
				      "or its value is no field value",
};

static const char *const reasons[GAMMAD_KH_R_MAX] = {
	[GAMMAD_KH_R_SERVED] = "served",
	[GAMMAD_KH_R_MORE] = "head incomplete",
	[GAMMAD_KH_R_NO_TABLE] = "no kernel table",
	[GAMMAD_KH_R_TABLE] = "table is the engine's",
	[GAMMAD_KH_R_MALFORMED] = "malformed head",
	[GAMMAD_KH_R_HEAD_TOO_LARGE] = "head too large",
	[GAMMAD_KH_R_FIELDS] = "too many header fields",
	[GAMMAD_KH_R_QUERY] = "too many query parameters",
	[GAMMAD_KH_R_TARGET_FORM] = "request-target not in origin form",
	[GAMMAD_KH_R_LEADING_CRLF] = "empty lines before the request line",
	[GAMMAD_KH_R_METHOD] = "CONNECT or long method",
	[GAMMAD_KH_R_CHUNKED] = "Transfer-Encoding",
	[GAMMAD_KH_R_EXPECT] = "Expect",
	[GAMMAD_KH_R_UPGRADE] = "Upgrade",
	[GAMMAD_KH_R_LENGTH] = "Content-Length too long",
	[GAMMAD_KH_R_MAP] = "table entry missing",
	[GAMMAD_KH_R_PIPELINE] = "would overtake an outstanding response",
	[GAMMAD_KH_R_NO_UPSTREAM] = "no free upstream",
	[GAMMAD_KH_R_NO_ENDPOINT] = "no endpoint",
	[GAMMAD_KH_R_AFFINITY] = "session affinity",
	[GAMMAD_KH_R_REDIRECT] = "redirect too long for the kernel",
	[GAMMAD_KH_R_LOCAL_BODY] = "local answer to a split body",
	[GAMMAD_KH_R_UNFRAMED] = "upstream framing unknown",
	[GAMMAD_KH_R_EDIT] = "message edit failed",
	[GAMMAD_KH_R_ENGINE_LOST] = "engine socket gone",
	[GAMMAD_KH_R_HOP_BY_HOP] = "hop-by-hop field",
	[GAMMAD_KH_R_HTTP10] = "HTTP/1.0",
	[GAMMAD_KH_R_SLOW_READER] = "slow reader",
	[GAMMAD_KH_R_CLOSE_DELIMITED] = "close-delimited response",
	[GAMMAD_KH_R_ENGINE_FIRST] = "silent client taken by the engine",
	[GAMMAD_KH_R_RESP_TCP] = "response edits on a TCP upstream",
	[GAMMAD_KH_R_RESP_CUT] = "response head not editable: client reset",
	[GAMMAD_KH_R_RESP_ENGINE] = "response head not editable here: the engine edits it",
	[GAMMAD_KH_R_H2_PRIOR] = "HTTP/2 prior knowledge",
};

const char *kh_tab_reason_str(unsigned int reason)
{
	return reason < GAMMAD_KH_TAB_MAX && tab_reasons[reason] ? tab_reasons[reason] : "?";
}

const char *kh_reason_str(unsigned int reason)
{
	return reason < GAMMAD_KH_R_MAX && reasons[reason] ? reasons[reason] : "?";
}

struct enc {
	struct kh_image *img;
	const struct tr_class *cls;
	uint16_t port;
};

/* Give the table to the engine (the first reason found stays). */
static int refuse(struct enc *e, unsigned int reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(struct enc *e, unsigned int reason, const char *fmt, ...)
{
	struct kh_image *img = e->img;
	va_list ap;
	int n;

	if (img->tab.engine_reason)
		return 1;
	img->tab.engine_reason = reason;
	n = snprintf(img->why, sizeof(img->why), "%s", kh_tab_reason_str(reason));
	if (fmt && n > 0 && (size_t)n < sizeof(img->why)) {
		img->why[n++] = ':';
		img->why[n++] = ' ';
		img->why[n] = 0;
		va_start(ap, fmt);
		vsnprintf(img->why + n, sizeof(img->why) - n, fmt, ap);
		va_end(ap);
	}
	return 1;
}

/* A string for the kernel; false when it does not fit. */
static bool put_str(struct gammad_kh_str *s, const char *v, size_t len)
{
	uint32_t h = GAMMAD_KH_HASH_INIT;

	if (len > GAMMAD_KH_STR_MAX)
		return false;
	memset(s, 0, sizeof(*s));
	memcpy(s->s, v, len);
	s->len = (uint16_t)len;
	for (size_t i = 0; i < len; i++)
		h = gammad_kh_hash_byte(h, (uint8_t)v[i]);
	s->hash = h;
	return true;
}

static bool put_cstr(struct gammad_kh_str *s, const char *v)
{
	return put_str(s, v, strlen(v));
}

/* ---- matches ------------------------------------------------------------- */

/* ReplacePrefixMatch: how much of the path the match replaces (rewrite_path()). */
static uint32_t rewrite_plen(const struct gapi_match *m)
{
	size_t plen = m && m->path && m->path_type == MATCH_PREFIX ? strlen(m->path) : 1;

	if (plen > 1 && m->path[plen - 1] == '/')
		plen--;
	return plen == 1 ? 0 : (uint32_t)plen;
}

static int put_cond(struct enc *e, struct gammad_kh_cond *c, uint32_t kind,
		    const struct gapi_kv_match *kv)
{
	if (kv->type != MATCH_EXACT)
		return refuse(e, GAMMAD_KH_TAB_REGEX, "%s %s", kind == GAMMAD_KH_COND_HEADER ?
			      "header" : "query parameter", kv->name);
	c->kind = kind;
	if (!put_cstr(&c->name, kv->name) || !put_cstr(&c->value, kv->value))
		return refuse(e, GAMMAD_KH_TAB_STRING, "match on %s", kv->name);
	return 0;
}

static int put_entry(struct enc *e, const struct tr_entry *te, uint32_t rule,
		     struct gammad_kh_entry *out)
{
	const struct gapi_match *m = te->match;
	size_t n, nc = 0;

	memset(out, 0, sizeof(*out));
	out->rule = rule;
	out->rewrite_plen = rewrite_plen(m);
	if (!m)
		return 0;
	if (!m->path)
		return refuse(e, GAMMAD_KH_TAB_NOT_HTTP, "match without a path");
	switch (m->path_type) {
	case MATCH_EXACT:
		out->path_type = GAMMAD_KH_PATH_EXACT;
		if (!put_cstr(&out->path, m->path))
			return refuse(e, GAMMAD_KH_TAB_STRING, "path %.64s", m->path);
		break;
	case MATCH_PREFIX:
		/* the trailing '/' is ignored; "/" alone matches every path */
		n = strlen(m->path);
		if (n > 1 && m->path[n - 1] == '/')
			n--;
		out->path_type = n == 1 ? GAMMAD_KH_PATH_ANY : GAMMAD_KH_PATH_PREFIX;
		if (!put_str(&out->path, m->path, n))
			return refuse(e, GAMMAD_KH_TAB_STRING, "path %.64s", m->path);
		break;
	default:
		return refuse(e, GAMMAD_KH_TAB_REGEX, "path %.64s", m->path);
	}
	if (m->method) {
		n = strlen(m->method);
		if (!n || n >= GAMMAD_KH_METHOD_MAX)
			return refuse(e, GAMMAD_KH_TAB_STRING, "method");
		memcpy(out->method, m->method, n);
		out->method_len = (uint8_t)n;
	}
	if (m->nr_headers + m->nr_query > GAMMAD_KH_CONDS_MAX)
		return refuse(e, GAMMAD_KH_TAB_TOO_MANY_CONDS, "%zu", m->nr_headers + m->nr_query);
	for (size_t i = 0; i < m->nr_headers; i++)
		if (put_cond(e, &out->conds[nc++], GAMMAD_KH_COND_HEADER, &m->headers[i]))
			return 1;
	for (size_t i = 0; i < m->nr_query; i++)
		if (put_cond(e, &out->conds[nc++], GAMMAD_KH_COND_QUERY, &m->query[i]))
			return 1;
	out->nr_conds = (uint8_t)nc;
	return 0;
}

/* ---- filters ------------------------------------------------------------- */

/* A header edit in the order the evaluator applies them. */
struct hop {
	bool remove;
	const char *name, *value;
};

struct hops {
	struct hop items[128];
	size_t nr;
	const struct gapi_path_mod *path;	/* the one path rewrite, or NULL */
};

static bool tchars(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = *s;

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr(extra, c)))
			return false;
	}
	return true;
}

/* What the engine writes as sent (field_ok() there): no CTL but HTAB. */
static bool field_value(const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * Fields the kernel never edits: the engine writes framing and hop-by-hop
 * fields itself (and adds a Host when none is left), so a filter on them
 * means something else there than bytes edited in place.
 */
static bool reserved_field(const char *n)
{
	static const char *const names[] = {
		"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "TE", "Upgrade",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(n, names[i]))
			return true;
	return false;
}

static int add_hop(struct enc *e, struct hops *h, bool remove, const char *name,
		   const char *value)
{
	if (h->nr == sizeof(h->items) / sizeof(h->items[0]))
		return refuse(e, GAMMAD_KH_TAB_HEADER_EDITS, "%zu edits", h->nr);
	if (!tchars(name) || reserved_field(name) || (value && !field_value(value)))
		return refuse(e, GAMMAD_KH_TAB_FIELD_VALUE, "%.64s", name);
	h->items[h->nr++] = (struct hop){ remove, name, value };
	return 0;
}

/* A ResponseHeaderModifier as the engine applies it: set, then add, then remove. */
static int collect_mod(struct enc *e, const struct gapi_header_mod *hm, struct hops *h)
{
	for (size_t j = 0; j < hm->nr_set; j++)
		if (add_hop(e, h, true, hm->set[j].name, NULL) ||
		    add_hop(e, h, false, hm->set[j].name, hm->set[j].value))
			return 1;
	for (size_t j = 0; j < hm->nr_add; j++)
		if (add_hop(e, h, false, hm->add[j].name, hm->add[j].value))
			return 1;
	for (size_t j = 0; j < hm->nr_remove; j++)
		if (add_hop(e, h, true, hm->remove[j], NULL))
			return 1;
	return 0;
}

/*
 * The filters of a rule or a backendRef, as the evaluator applies them;
 * ResponseHeaderModifier edits into rh (NULL: the table is the engine's,
 * as for a redirect, whose answer the engine writes with them).
 */
static int collect(struct enc *e, const struct gapi_filter *f, size_t nr, struct hops *h,
		   struct hops *rh, bool redirect_rule)
{
	for (size_t i = 0; i < nr; i++) {
		const struct gapi_header_mod *hm = &f[i].header_mod;

		switch (f[i].type) {
		case FILTER_REQUEST_HEADER:
			if (collect_mod(e, hm, h))
				return 1;
			break;
		case FILTER_URL_REWRITE:
			if (redirect_rule)
				break;	/* the Location is built from the request as sent */
			if (f[i].rewrite.path.type != PATH_MOD_NONE) {
				if (h->path)
					return refuse(e, GAMMAD_KH_TAB_REWRITES, NULL);
				h->path = &f[i].rewrite.path;
			}
			if (f[i].rewrite.hostname &&
			    (add_hop(e, h, true, "Host", NULL) ||
			     add_hop(e, h, false, "Host", f[i].rewrite.hostname)))
				return 1;
			break;
		case FILTER_REQUEST_REDIRECT:
			break;	/* the rule's own is its outcome; a backendRef's is ignored */
		case FILTER_RESPONSE_HEADER:
			if (!rh)
				return refuse(e, GAMMAD_KH_TAB_RESPONSE_FILTER, NULL);
			if (collect_mod(e, hm, rh))
				return 1;
			break;
		case FILTER_REQUEST_MIRROR:
			return refuse(e, GAMMAD_KH_TAB_MIRROR, NULL);
		default:
			return refuse(e, GAMMAD_KH_TAB_OTHER_FILTER, "%s",
				      f[i].type_name ? f[i].type_name : "?");
		}
	}
	return 0;
}

/* The Host removal that set/URLRewrite do before appending is no removal of Host. */
static bool host_set(const struct hops *h, size_t i)
{
	return i + 1 < h->nr && !h->items[i + 1].remove &&
	       !strcasecmp(h->items[i].name, h->items[i + 1].name);
}

static int put_rewrite(struct enc *e, struct gammad_kh_rewrite *rw, const struct gapi_path_mod *m)
{
	memset(rw, 0, sizeof(*rw));
	if (!m || m->type == PATH_MOD_NONE)
		return 0;
	rw->type = m->type == PATH_MOD_FULL ? GAMMAD_KH_RW_FULL : GAMMAD_KH_RW_PREFIX;
	if (!m->value || !field_value(m->value))
		return refuse(e, GAMMAD_KH_TAB_FIELD_VALUE, "path rewrite");
	if (!put_cstr(&rw->value, m->value))
		return refuse(e, GAMMAD_KH_TAB_STRING, "path rewrite %.64s", m->value);
	return 0;
}

/*
 * Fold the edits: a field of the request goes when any edit removes its
 * name; an appended field stays unless a later edit removes its name. The
 * evaluator's list is then the request's remaining fields in order, then
 * the remaining appended ones in order.
 */
static int put_edits(struct enc *e, const struct hops *h, struct gammad_kh_rb *rb, bool request)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nr; i++) {
		const struct hop *o = &h->items[i];
		bool dup = false;

		if (!o->remove)
			continue;
		if (request && !strcasecmp(o->name, "Host") && !host_set(h, i))
			return refuse(e, GAMMAD_KH_TAB_FIELD_VALUE, "removes Host");
		for (size_t j = 0; j < rb->nr_remove; j++)
			dup |= rb->remove[j].len == strlen(o->name) &&
			       !strncasecmp(rb->remove[j].s, o->name, rb->remove[j].len);
		if (dup)
			continue;
		if (rb->nr_remove == GAMMAD_KH_REMOVE_MAX || !put_cstr(&rb->remove[rb->nr_remove], o->name))
			return refuse(e, GAMMAD_KH_TAB_HEADER_EDITS, "removes %u names", rb->nr_remove);
		rb->nr_remove++;
	}
	for (size_t i = 0; i < h->nr; i++) {
		const struct hop *o = &h->items[i];
		bool later = false;
		int len;

		if (o->remove)
			continue;
		for (size_t j = i + 1; j < h->nr; j++)
			later |= h->items[j].remove && !strcasecmp(h->items[j].name, o->name);
		if (later)
			continue;
		len = snprintf(rb->append + n, sizeof(rb->append) - n, "%s: %s\r\n", o->name, o->value);
		if (len < 0 || (size_t)len >= sizeof(rb->append) - n)
			return refuse(e, GAMMAD_KH_TAB_HEADER_EDITS, "appends more than %d bytes",
				      GAMMAD_KH_APPEND_MAX);
		n += (size_t)len;
	}
	rb->append_len = (uint32_t)n;
	return 0;
}

static uint32_t backend_status(const struct tr_backend *b)
{
	if (b->state == TR_BACKEND_UNRESOLVED)
		return 500;
	return b->state == TR_BACKEND_NO_ENDPOINTS ? 503 : 200;
}

/* ---- rules --------------------------------------------------------------- */

static uint16_t scheme_port(const char *scheme)
{
	return !strcmp(scheme, "https") ? 443 : 80;
}

/* build_redirect() of the evaluator, for everything but the request's host and path. */
static int put_redirect(struct enc *e, const struct gapi_redirect *rd, struct gammad_kh_rule *r)
{
	const char *scheme = rd->scheme ? rd->scheme : "http";
	char buf[GAMMAD_KH_STR_MAX + 1];
	uint16_t port;
	int n;

	r->kind = GAMMAD_KH_RULE_REDIRECT;
	r->status = rd->status_code;
	port = rd->port ? rd->port : rd->scheme ? scheme_port(rd->scheme) :
	       e->port ? e->port : scheme_port(scheme);
	if (port == scheme_port(scheme))
		port = 0;
	if (!rd->hostname)
		r->flags |= GAMMAD_KH_RULE_REQ_HOST;
	n = snprintf(buf, sizeof(buf), "%s://%s", scheme, rd->hostname ? rd->hostname : "");
	if (!field_value(buf))
		return refuse(e, GAMMAD_KH_TAB_FIELD_VALUE, "redirect");
	if (n < 0 || !put_str(&r->loc_prefix, buf, (size_t)n))
		return refuse(e, GAMMAD_KH_TAB_STRING, "redirect");
	n = port ? snprintf(buf, sizeof(buf), ":%u", port) : 0;
	put_str(&r->loc_port, buf, (size_t)n);
	return put_rewrite(e, &r->path, rd->path.type == PATH_MOD_NONE ? NULL : &rd->path);
}

static int grow(void **p, size_t nr, size_t size)
{
	void *n = realloc(*p, (nr + 1) * size);

	if (!n)
		return -ENOMEM;
	*p = n;
	memset((char *)n + nr * size, 0, size);
	return 0;
}

static bool rule_edits_response(const struct gapi_rule *gr)
{
	for (size_t i = 0; i < gr->nr_filters; i++)
		if (gr->filters[i].type == FILTER_RESPONSE_HEADER)
			return true;
	return false;
}

/*
 * Does every draw of rule r's alias table (slots) pick the same rule
 * backend? The kernel's pick (kh_decide): slot draw0 % nr_slots, its
 * primary when draw1 % total_weight < threshold, else its alias. Then
 * GAMMAD_KH_RULE_ONE_RB names it and the kernel skips the slot's lookup.
 */
static void rule_one_rb(struct gammad_kh_rule *r, const struct gammad_alias_val *slots)
{
	uint32_t one = UINT32_MAX, pick[2];

	for (uint32_t i = 0; i < r->nr_slots; i++) {
		size_t n = 0;

		if (slots[i].threshold > 0)
			pick[n++] = slots[i].primary;
		if (slots[i].threshold < r->total_weight)
			pick[n++] = slots[i].alias;
		for (size_t j = 0; j < n; j++) {
			if (one != UINT32_MAX && one != pick[j])
				return;
			one = pick[j];
		}
	}
	if (one == UINT32_MAX)
		return;
	r->flags |= GAMMAD_KH_RULE_ONE_RB;
	r->one_rb = one;
}

static int put_rule(struct enc *e, const struct tr_rule *tr, size_t ri)
{
	struct kh_image *img = e->img;
	struct gammad_kh_rule *r = &img->rules[ri];
	const struct gapi_rule *gr = tr->rule;
	uint32_t ids[tr->nr_backends + 1], w[tr->nr_backends + 1];
	size_t n = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	if (tr->userspace_only)
		return refuse(e, GAMMAD_KH_TAB_REGEX, "rule %zu", tr->index);
	if (gr->has_retry)
		return refuse(e, GAMMAD_KH_TAB_RETRY, "rule %zu", tr->index);
	if (gr->timeout_request || gr->timeout_backend)
		return refuse(e, GAMMAD_KH_TAB_TIMEOUT, "rule %zu", tr->index);
	if (tr->redirect) {
		struct hops h = { .nr = 0 };

		/* The rule's other filters still count (a response filter would) */
		if (collect(e, gr->filters, gr->nr_filters, &h, NULL, true))
			return 1;
		return put_redirect(e, &tr->redirect->redirect, r);
	}
	for (size_t b = 0; b < tr->nr_backends; b++) {
		const struct tr_backend *be = &tr->backends[b];
		struct gammad_kh_rb *rb;
		struct hops h = { .nr = 0 }, rh = { .nr = 0 };

		if (!be->weight)
			continue;	/* never picked; its filters never run */
		if (collect(e, gr->filters, gr->nr_filters, &h, &rh, false) ||
		    (be->ref && collect(e, be->ref->filters, be->ref->nr_filters, &h, &rh, false)))
			return 1;
		ret = grow((void **)&img->rbs, img->nr_rbs, sizeof(*img->rbs));
		if (!ret)
			ret = grow((void **)&img->resp, img->nr_rbs, sizeof(*img->resp));
		if (!ret)
			ret = grow((void **)&img->rb_src, img->nr_rbs, sizeof(*img->rb_src));
		if (!ret)
			ret = grow((void **)&img->rb_rule, img->nr_rbs, sizeof(*img->rb_rule));
		if (ret)
			return ret;
		rb = &img->rbs[img->nr_rbs];
		img->rb_src[img->nr_rbs] = be;
		img->rb_rule[img->nr_rbs] = ri;
		rb->status = backend_status(be);
		if (put_rewrite(e, &rb->path, h.path) || put_edits(e, &h, rb, true) ||
		    put_edits(e, &rh, &img->resp[img->nr_rbs], false))
			return 1;
		/* the engine's local 500/503 carry the response edits: its answer */
		if (rh.nr && rb->status != 200)
			return refuse(e, GAMMAD_KH_TAB_RESPONSE_FILTER, "rule %zu: backend %s",
				      tr->index, rb->status == 500 ? "unresolved" : "without endpoints");
		ids[n] = (uint32_t)img->nr_rbs++;
		w[n++] = be->weight;
	}
	r->kind = GAMMAD_KH_RULE_BACKENDS;
	if (!n && rule_edits_response(gr)) {
		/* the engine's 500 carries the rule's response edits */
		return refuse(e, GAMMAD_KH_TAB_RESPONSE_FILTER, "rule %zu without backends", tr->index);
	}
	if (!n) {
		r->kind = GAMMAD_KH_RULE_FAIL;
		r->status = 500;
		return 0;
	}
	img->slot_base[ri] = img->nr_slots;
	img->slots = realloc(img->slots, (img->nr_slots + n) * sizeof(*img->slots));
	if (!img->slots)
		return -ENOMEM;
	ret = alias_table_build(ids, w, n, img->slots + img->nr_slots, &r->nr_slots,
				&r->total_weight);
	if (ret == -ERANGE)
		return refuse(e, GAMMAD_KH_TAB_TOO_MANY_ENTRIES, "weights sum over 2^32");
	if (ret)
		return ret;
	rule_one_rb(r, img->slots + img->nr_slots);
	img->nr_slots += r->nr_slots;
	return 0;
}

/* ---- tables -------------------------------------------------------------- */

static int encode(struct enc *e)
{
	const struct tr_class *cls = e->cls;
	struct kh_image *img = e->img;
	int ret;

	if (cls->kind != ROUTE_HTTP)
		return refuse(e, GAMMAD_KH_TAB_NOT_HTTP, "%s", cls->kind == ROUTE_KIND_COUNT ?
			      "no route" : gapi_kind_name(cls->kind));
	if (cls->nr_entries > GAMMAD_KH_ENTRIES_MAX)
		return refuse(e, GAMMAD_KH_TAB_TOO_MANY_ENTRIES, "%zu matches", cls->nr_entries);
	img->entries = calloc(cls->nr_entries + 1, sizeof(*img->entries));
	img->rules = calloc(cls->nr_entries + 1, sizeof(*img->rules));
	img->rule_src = calloc(cls->nr_entries + 1, sizeof(*img->rule_src));
	img->slot_base = calloc(cls->nr_entries + 1, sizeof(*img->slot_base));
	if (!img->entries || !img->rules || !img->rule_src || !img->slot_base)
		return -ENOMEM;
	for (size_t i = 0; i < cls->nr_entries; i++) {
		const struct tr_entry *te = &cls->entries[i];
		size_t ri;

		for (ri = 0; ri < img->nr_rules && img->rule_src[ri] != te->rule; ri++)
			;
		if (ri == img->nr_rules) {
			img->rule_src[img->nr_rules++] = te->rule;
			ret = put_rule(e, te->rule, ri);
			if (ret)
				return ret;
		}
		ret = put_entry(e, te, (uint32_t)ri, &img->entries[i]);
		if (ret)
			return ret;
		img->nr_entries++;
	}
	img->tab.nr_entries = (uint32_t)img->nr_entries;
	return 0;
}

int kh_encode(const struct tr_class *cls, uint16_t port, struct kh_image *out)
{
	struct enc e = { .img = out, .cls = cls, .port = port };
	int ret;

	memset(out, 0, sizeof(*out));
	out->tab.port = port;
	ret = encode(&e);
	if (ret < 0) {
		kh_image_free(out);
		return ret;
	}
	if (out->tab.engine_reason) {
		out->tab.nr_entries = 0;
		return 0;
	}
	out->tab.flags |= GAMMAD_KH_TAB_F_NO_RESP | GAMMAD_KH_TAB_F_NO_EDIT;
	for (size_t i = 0; i < out->nr_rbs; i++) {
		if (kh_rb_edits_response(out, i))
			out->tab.flags &= ~GAMMAD_KH_TAB_F_NO_RESP;
		if (kh_rb_edits_request(&out->rbs[i]))
			out->tab.flags &= ~GAMMAD_KH_TAB_F_NO_EDIT;
	}
	return 0;
}

void kh_image_free(struct kh_image *img)
{
	free(img->entries);
	free(img->rules);
	free(img->rbs);
	free(img->resp);
	free(img->slots);
	free(img->slot_base);
	free(img->rule_src);
	free(img->rb_src);
	free(img->rb_rule);
	memset(img, 0, sizeof(*img));
}

/* ---- writing ------------------------------------------------------------- */

int kh_image_put(const struct kh_image *img, uint32_t tab, const struct kh_map_fds *fds,
		 kh_put_fn put, void *ctx)
{
	struct gammad_kh_key k = { .tab = tab };
	struct gammad_kh_alias_key ak = { .tab = tab };
	int ret = 0;

	for (size_t i = 0; !ret && i < img->nr_entries; i++) {
		k.idx = (uint32_t)i;
		ret = put(ctx, fds->entry, false, &k, &img->entries[i]);
	}
	for (size_t i = 0; !ret && i < img->nr_rules; i++) {
		k.idx = (uint32_t)i;
		ret = put(ctx, fds->rule, false, &k, &img->rules[i]);
		ak.rule = (uint32_t)i;
		for (uint32_t s = 0; !ret && s < img->rules[i].nr_slots; s++) {
			ak.slot = s;
			ret = put(ctx, fds->alias, false, &ak, &img->slots[img->slot_base[i] + s]);
		}
	}
	for (size_t i = 0; !ret && i < img->nr_rbs; i++) {
		k.idx = (uint32_t)i;
		ret = put(ctx, fds->rb, false, &k, &img->rbs[i]);
		if (!ret && kh_rb_edits_response(img, i)) {
			k.idx = (uint32_t)i | GAMMAD_KH_RB_RESP;
			ret = put(ctx, fds->rb, false, &k, &img->resp[i]);
		}
	}
	/* Last: the table entry publishes what is below it. */
	return ret ? ret : put(ctx, fds->table, true, &tab, &img->tab);
}

static int update(void *ctx, int fd, bool table, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

int kh_image_write(const struct kh_image *img, uint32_t tab, const struct kh_map_fds *fds)
{
	return kh_image_put(img, tab, fds, update, NULL);
}
