// SPDX-License-Identifier: Apache-2.0
/* The kernel HTTP matcher in userspace, and the check against the engine's code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "khttp_user.h"
#include "http/http1.h"
#include "translate/translate_eval.h"
#include "datapath/alias.h"

/* ---- the shim: what bpf/lib/khttp.h needs of the BPF side ------------------ */

#define GAMMAD_KH_USER 1
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

enum { KHU_gammad_khtab_v1, KHU_gammad_khent_v1, KHU_gammad_khrul_v1, KHU_gammad_khrb_v1,
       KHU_gammad_khal_v1 };

static const struct kh_image *khu_img;

static void *khu_lookup(int map, const void *key)
{
	const struct kh_image *img = khu_img;
	const struct gammad_kh_key *k = key;
	const struct gammad_kh_alias_key *ak = key;

	if (!img)
		return NULL;
	switch (map) {
	case KHU_gammad_khtab_v1:
		return *(const uint32_t *)key == KHU_TAB ? (void *)&img->tab : NULL;
	case KHU_gammad_khent_v1:
		return k->tab == KHU_TAB && k->idx < img->nr_entries ? &img->entries[k->idx] : NULL;
	case KHU_gammad_khrul_v1:
		return k->tab == KHU_TAB && k->idx < img->nr_rules ? &img->rules[k->idx] : NULL;
	case KHU_gammad_khrb_v1:
		return k->tab == KHU_TAB && k->idx < img->nr_rbs ? &img->rbs[k->idx] : NULL;
	case KHU_gammad_khal_v1:
		if (ak->tab != KHU_TAB || ak->rule >= img->nr_rules ||
		    ak->slot >= img->rules[ak->rule].nr_slots)
			return NULL;
		return &img->slots[img->slot_base[ak->rule] + ak->slot];
	}
	return NULL;
}

static long khu_loop(uint32_t n, long (*cb)(__u64, void *), void *ctx, uint64_t flags)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (cb(i, ctx)) {
			i++;
			break;
		}
	return i;
}

#define KH_LOOKUP(map, key) khu_lookup(KHU_##map, key)
#define bpf_loop(n, cb, ctx, flags) khu_loop(n, cb, ctx, flags)

#include "../../bpf/lib/khttp.h"
#include "../../bpf/lib/khttp_answer.h"

void khu_use(const struct kh_image *img)
{
	khu_img = img;
}

int khu_request(struct gammad_kh_scratch *s)
{
	return kh_request(s);
}

_Static_assert(KHU_ANSWER_MAX == KH_ABUF_MAX && sizeof(struct khu_abuf) == sizeof(struct kh_abuf),
	       "struct khu_abuf is struct kh_abuf");

int khu_answer(const struct gammad_kh_scratch *s, char *out, size_t cap)
{
	static struct kh_abuf a;
	int n = kh_answer(&a, s);

	if (n < 0 || (size_t)n > cap)
		return -1;
	memcpy(out, a.b, (size_t)n);
	return n;
}

void khu_scratch(struct gammad_kh_scratch *s, const char *head, size_t len, uint32_t d0,
		 uint32_t d1)
{
	memset(s, 0, sizeof(*s));
	if (len > GAMMAD_KH_HEAD_MAX)
		len = GAMMAD_KH_HEAD_MAX;
	memcpy(s->buf, head, len);
	s->len = (uint32_t)len;
	s->tab = KHU_TAB;
	s->draw[0] = d0;
	s->draw[1] = d1;
}

/* ---- the check --------------------------------------------------------------- */

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -1;
}

static bool span_eq(const struct gammad_kh_scratch *s, unsigned off, unsigned n,
		    const char *p, size_t len)
{
	return n == len && off + n <= s->len && !memcmp(s->buf + off, p, n);
}

static char *dupn(const void *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, p, n);
		d[n] = 0;
	}
	return d;
}

/* The parse of an accepted head is the engine parser's. */
static int check_parse(const struct gammad_kh_scratch *s, const struct h1_head *h, long n,
		       char *why, size_t len)
{
	const struct gammad_kh_req *r = &s->req;

	if (r->head_len != n)
		return fail(why, len, "head length %u, parser %ld", r->head_len, n);
	if (!span_eq(s, 0, r->method_len, h->method.p, h->method.len))
		return fail(why, len, "method");
	if (!span_eq(s, r->target_off, r->target_len, h->path.p, h->path.len))
		return fail(why, len, "target");
	if (r->minor != h->minor)
		return fail(why, len, "version");
	if (r->nr_fields != h->nr_headers)
		return fail(why, len, "%u fields, parser %zu", r->nr_fields, h->nr_headers);
	for (size_t i = 0; i < h->nr_headers; i++) {
		const struct gammad_kh_field *f = &r->fields[i];

		if (!span_eq(s, f->name_off, f->name_len, h->headers[i].name.p,
			     h->headers[i].name.len) ||
		    !span_eq(s, f->value_off, f->value_len, h->headers[i].value.p,
			     h->headers[i].value.len))
			return fail(why, len, "field %zu", i);
	}
	if (r->content_length != h->content_length)
		return fail(why, len, "Content-Length %llu, parser %llu",
			    (unsigned long long)r->content_length,
			    (unsigned long long)h->content_length);
	return 0;
}

/* host_only() of the engine. */
static char *host_only(const struct h1_str *host)
{
	const char *p = host->p, *end, *c;

	if (!host->len)
		return NULL;
	end = p + host->len;
	if (*p == '[') {
		c = memchr(p, ']', host->len);
		return dupn(p, c ? (size_t)(c + 1 - p) : host->len);
	}
	c = memchr(p, ':', host->len);
	return dupn(p, c ? (size_t)(c - p) : (size_t)(end - p));
}

/* The target as the kernel rewrote it. */
static char *kernel_target(const struct gammad_kh_scratch *s, const struct gammad_kh_rewrite *rw)
{
	const struct gammad_kh_req *r = &s->req;
	const char *t = (const char *)s->buf + r->target_off;
	const char *pre = s->v.rw_kind == 1 ? rw->value.s : s->v.rw_kind == 2 ? "/" : "";
	size_t plen = s->v.rw_kind == 1 ? rw->value.len : strlen(pre);
	size_t cut = s->v.rw_kind ? s->v.rw_cut : 0;
	char *out;

	if (cut > r->target_len)
		return NULL;
	out = malloc(plen + r->target_len - cut + 1);
	if (!out)
		return NULL;
	memcpy(out, pre, plen);
	memcpy(out + plen, t + cut, r->target_len - cut);
	out[plen + r->target_len - cut] = 0;
	return out;
}

/* The request fields the kernel forwards against the evaluator's list. */
static int check_fields(const struct gammad_kh_scratch *s, const struct gammad_kh_rb *rb,
			const struct ev_headers *want, char *why, size_t len)
{
	size_t j = 0;
	const char *p = rb->append, *end = rb->append + rb->append_len;

	for (unsigned i = 0; i < s->req.nr_fields; i++) {
		const struct gammad_kh_field *f = &s->req.fields[i];

		if (s->v.remove_mask & (1u << i))
			continue;
		if (j >= want->nr ||
		    !span_eq(s, f->name_off, f->name_len, want->items[j].name,
			     strlen(want->items[j].name)) ||
		    !span_eq(s, f->value_off, f->value_len, want->items[j].value,
			     strlen(want->items[j].value)))
			return fail(why, len, "forwarded field %zu (request field %u)", j, i);
		j++;
	}
	while (p < end) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!colon || !crlf || colon > crlf || colon + 2 > crlf)
			return fail(why, len, "append blob out of shape");
		if (j >= want->nr || strlen(want->items[j].name) != (size_t)(colon - p) ||
		    memcmp(want->items[j].name, p, (size_t)(colon - p)) ||
		    strlen(want->items[j].value) != (size_t)(crlf - colon - 2) ||
		    memcmp(want->items[j].value, colon + 2, (size_t)(crlf - colon - 2)))
			return fail(why, len, "appended field %zu", j);
		j++;
		p = crlf + 2;
	}
	if (j != want->nr)
		return fail(why, len, "%zu fields forwarded, evaluator %zu", j, want->nr);
	return 0;
}

/* ---- response edits (GAMMAD_KH_RB_RESP) ---------------------------------- */

struct rfield {
	char *n, *v;
};

static void rf_remove(struct rfield *f, size_t *nr, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; i < *nr; i++) {
		if (strcasecmp(f[i].n, name))
			f[j++] = f[i];
		else {
			free(f[i].n);
			free(f[i].v);
		}
	}
	*nr = j;
}

static void rf_add(struct rfield *f, size_t *nr, const char *n, size_t nl, const char *v,
		   size_t vl)
{
	f[*nr].n = dupn(n, nl);
	f[*nr].v = dupn(v, vl);
	(*nr)++;
}

/* The engine's apply_response_filters() (engine_req.c): set, add, remove per filter. */
static void engine_resp_filters(const struct gapi_filter *flt, size_t nr, struct rfield *f,
				size_t *n)
{
	for (size_t i = 0; i < nr; i++) {
		const struct gapi_header_mod *m = &flt[i].header_mod;

		if (flt[i].type != FILTER_RESPONSE_HEADER)
			continue;
		for (size_t j = 0; j < m->nr_set; j++) {
			rf_remove(f, n, m->set[j].name);
			rf_add(f, n, m->set[j].name, strlen(m->set[j].name), m->set[j].value,
			       strlen(m->set[j].value));
		}
		for (size_t j = 0; j < m->nr_add; j++)
			rf_add(f, n, m->add[j].name, strlen(m->add[j].name), m->add[j].value,
			       strlen(m->add[j].value));
		for (size_t j = 0; j < m->nr_remove; j++)
			rf_remove(f, n, m->remove[j]);
	}
}

/*
 * A response to this request, its head made of the request's fields and
 * of every name the kernel's record removes (in another case, before and
 * after them), edited by the kernel's code (kh_parse_fields,
 * kh_remove_mask, the append blob) and by the engine's filters over
 * h1_parse_response(): the same fields, values and order.
 */
static int check_resp_edits(const struct h1_head *h, const struct gammad_kh_rb *rec,
			    const struct ev_result *r, char *why, size_t len)
{
	struct gammad_kh_scratch *rs = calloc(1, sizeof(*rs));
	struct h1_head *rh = calloc(1, sizeof(*rh));
	struct rfield want[H1_HEADERS_MAX + 64], got[H1_HEADERS_MAX + 64];
	size_t nw = 0, ng = 0, n = 0;
	char *head = NULL;
	size_t hlen = 0;
	FILE *f = open_memstream(&head, &hlen);
	struct h1_str get = { "GET", 3 };
	int ret = -1;

	if (!rs || !rh || !f) {
		if (f)
			fclose(f);
		fail(why, len, "out of memory");
		goto out;
	}
	fprintf(f, "HTTP/1.1 200 OK\r\n");
	for (unsigned i = 0; i < rec->nr_remove; i++)
		fprintf(f, "%.*s: r%u\r\n", rec->remove[i].len, rec->remove[i].s, i);
	for (size_t i = 0; i < h->nr_headers && i < 16; i++)
		if (!h1_str_ieq(&h->headers[i].name, "Content-Length"))
			fprintf(f, "%.*s: %.*s\r\n", (int)h->headers[i].name.len,
				h->headers[i].name.p, (int)h->headers[i].value.len,
				h->headers[i].value.p);
	for (unsigned i = 0; i < rec->nr_remove; i++) {
		for (unsigned k = 0; k < rec->remove[i].len; k++)
			fputc(rec->remove[i].s[k] ^ (((rec->remove[i].s[k] | 0x20) >= 'a' &&
						      (rec->remove[i].s[k] | 0x20) <= 'z') ? 0x20 : 0), f);
		fprintf(f, ": late\r\n");
	}
	fprintf(f, "Content-Length: 0\r\n\r\n");
	fclose(f);
	/* the kernel */
	if (hlen > GAMMAD_KH_HEAD_MAX) {
		ret = 0;	/* the kernel would cut it; not this check's case */
		goto out;
	}
	memcpy(rs->buf, head, hlen);
	rs->len = (uint32_t)hlen;
	if (kh_parse_fields(rs)) {
		if (rs->req.nr_fields >= GAMMAD_KH_FIELDS_MAX || hlen >= GAMMAD_KH_HEAD_MAX)
			ret = 0;	/* over the kernel's limits: it cuts, never edits wrong */
		else
			fail(why, len, "kernel: response head not parsed");
		goto out;
	}
	rs->v.remove_mask = kh_remove_mask(rs, rec);
	for (unsigned i = 0; i < rs->req.nr_fields; i++) {
		const struct gammad_kh_field *x = &rs->req.fields[i];

		if (!(rs->v.remove_mask & (1u << i)))
			rf_add(got, &ng, (char *)rs->buf + x->name_off, x->name_len,
			       (char *)rs->buf + x->value_off, x->value_len);
	}
	for (const char *p = rec->append, *end = rec->append + rec->append_len; p < end;) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!colon || !crlf || colon > crlf || colon + 2 > crlf) {
			fail(why, len, "response append blob out of shape");
			goto out;
		}
		rf_add(got, &ng, p, (size_t)(colon - p), colon + 2, (size_t)(crlf - colon - 2));
		p = crlf + 2;
	}
	/* the engine */
	if (h1_parse_response(head, hlen, &get, rh)) {
		fail(why, len, "engine: response head not parsed");
		goto out;
	}
	for (size_t i = 0; i < rh->nr_headers; i++)
		rf_add(want, &nw, rh->headers[i].name.p, rh->headers[i].name.len,
		       rh->headers[i].value.p, rh->headers[i].value.len);
	if (r->entry)
		engine_resp_filters(r->entry->rule->rule->filters, r->entry->rule->rule->nr_filters,
				    want, &nw);
	if (r->backend && r->backend->ref)
		engine_resp_filters(r->backend->ref->filters, r->backend->ref->nr_filters, want, &nw);
	for (n = 0; n < nw && n < ng; n++)
		if (strcmp(want[n].n, got[n].n) || strcmp(want[n].v, got[n].v))
			break;
	if (n != nw || n != ng) {
		fail(why, len, "response field %zu: kernel %s: %s, engine %s: %s (%zu/%zu fields)", n,
		     n < ng ? got[n].n : "-", n < ng ? got[n].v : "-", n < nw ? want[n].n : "-",
		     n < nw ? want[n].v : "-", ng, nw);
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < nw; i++) {
		free(want[i].n);
		free(want[i].v);
	}
	for (size_t i = 0; i < ng; i++) {
		free(got[i].n);
		free(got[i].v);
	}
	free(head);
	free(rs);
	free(rh);
	return ret;
}

/* The evaluator's draw that picks the backend the kernel picked. */
static uint64_t draw_for(const struct kh_image *img, const struct gammad_kh_scratch *s)
{
	const struct tr_backend *b;
	const struct tr_rule *r;
	uint64_t d = 0;

	if (s->v.rb >= img->nr_rbs || img->rb_rule[s->v.rb] != s->v.rule)
		return 0;
	b = img->rb_src[s->v.rb];
	r = img->rule_src[s->v.rule];
	for (size_t i = 0; i < r->nr_backends && &r->backends[i] != b; i++)
		d += r->backends[i].weight;
	return d;
}

/*
 * The engine's answer of its own (local_reply() of engine_req.c, with no
 * extra fields: a table with response filters is the engine's), for the
 * evaluator's status and Location: what the kernel's must equal.
 */
static char *engine_answer(int status, const char *location, bool head, unsigned minor,
			   size_t *len)
{
	const char *phrase;
	char body[64], *out = NULL;
	FILE *f;
	int blen;

	switch (status) {
	case 301: phrase = "Moved Permanently"; break;
	case 302: phrase = "Found"; break;
	case 303: phrase = "See Other"; break;
	case 307: phrase = "Temporary Redirect"; break;
	case 308: phrase = "Permanent Redirect"; break;
	case 404: phrase = "Not Found"; break;
	case 500: phrase = "Internal Server Error"; break;
	case 503: phrase = "Service Unavailable"; break;
	default: phrase = "Unknown"; break;
	}
	f = open_memstream(&out, len);
	if (!f)
		return NULL;
	blen = snprintf(body, sizeof(body), "%d %s\n", status, phrase);
	fprintf(f, "HTTP/1.1 %d %s\r\n", status, phrase);
	if (location)
		fprintf(f, "Location: %s\r\n", location);
	fprintf(f, "Content-Type: text/plain\r\nContent-Length: %d\r\n", blen);
	if (!minor)
		fputs("Connection: keep-alive\r\n", f);
	fputs("\r\n", f);
	if (!head)
		fputs(body, f);
	fclose(f);
	return out;
}

/* The kernel's answer bytes (khttp_answer.h) are the engine's. */
static int check_answer(const struct gammad_kh_scratch *s, const struct h1_head *h,
			const struct ev_result *r, char *why, size_t len)
{
	bool head = h->method.len == 4 && !memcmp(h->method.p, "HEAD", 4);
	size_t wlen = 0;
	char got[KH_ABUF_MAX], *want;
	int n = khu_answer(s, got, sizeof(got));
	int ret = 0;

	want = engine_answer(r->status, r->status >= 300 && r->status < 400 ?
			     r->redirect.location : NULL, head, h->minor, &wlen);
	if (!want)
		return fail(why, len, "out of memory");
	/* only one too long for the kernel goes to the engine (counted: redirect) */
	if (n < 0 && wlen <= KH_ABUF_MAX)
		ret = fail(why, len, "no kernel answer for status %d", r->status);
	else if (n >= 0 && ((size_t)n != wlen || memcmp(got, want, wlen)))
		ret = fail(why, len, "answer \"%.*s\", engine \"%s\"", n, got, want);
	free(want);
	return ret;
}

static int check_verdict(const struct tr_class *cls, const struct kh_image *img,
			 const struct gammad_kh_scratch *s, const struct h1_head *h,
			 char *why, size_t len)
{
	struct ev_header *hdrs = calloc(h->nr_headers + 1, sizeof(*hdrs));
	const struct gammad_kh_rule *rule = s->v.rule < img->nr_rules ? &img->rules[s->v.rule] : NULL;
	const struct gammad_kh_rb *rb = NULL;
	struct ev_request req = { 0 };
	struct ev_result r;
	char *target = NULL, *loc = NULL;
	int ret = -1;

	if (!hdrs)
		return fail(why, len, "out of memory");
	for (size_t i = 0; i < h->nr_headers; i++) {
		hdrs[i].name = dupn(h->headers[i].name.p, h->headers[i].name.len);
		hdrs[i].value = dupn(h->headers[i].value.p, h->headers[i].value.len);
	}
	req.method = dupn(h->method.p, h->method.len);
	req.target = dupn(h->path.p, h->path.len);
	req.headers = hdrs;
	req.nr_headers = h->nr_headers;
	req.scheme = "http";
	req.host = host_only(&h->host);
	req.port = img->tab.port;
	if (ev_evaluate(cls, &req, draw_for(img, s), &r)) {
		fail(why, len, "evaluator failed");
		goto out;
	}
	if ((int)s->v.status != r.status) {
		fail(why, len, "status %u, evaluator %d", s->v.status, r.status);
		goto out_r;
	}
	if (s->v.entry < cls->nr_entries ? r.entry != &cls->entries[s->v.entry] : r.entry != NULL) {
		fail(why, len, "entry %u, evaluator %zd", s->v.entry,
		     r.entry ? r.entry - cls->entries : -1);
		goto out_r;
	}
	if (r.backend && (s->v.rb >= img->nr_rbs || img->rb_src[s->v.rb] != r.backend ||
			  !rule || rule->kind != GAMMAD_KH_RULE_BACKENDS)) {
		fail(why, len, "backend %s/%s, kernel rule backend %u", r.backend->namespace,
		     r.backend->name, s->v.rb);
		goto out_r;
	}
	if (s->v.action == GAMMAD_KH_FORWARD) {
		rb = &img->rbs[s->v.rb];
		target = kernel_target(s, &rb->path);
		if (!target || strcmp(target, r.target)) {
			fail(why, len, "target \"%s\", evaluator \"%s\"", target ? target : "?", r.target);
			goto out_r;
		}
		if (check_fields(s, rb, &r.request_headers, why, len))
			goto out_r;
		/* the response edits of that rule backend: the engine's, or none */
		if (kh_rb_edits_response(img, s->v.rb) &&
		    check_resp_edits(h, &img->resp[s->v.rb], &r, why, len))
			goto out_r;
	} else if (r.status >= 300 && r.status < 400) {
		char *path = kernel_target(s, &rule->path);
		size_t n;
		FILE *f = open_memstream(&loc, &n);

		if (!f || !path) {
			free(path);
			if (f)
				fclose(f);
			fail(why, len, "out of memory");
			goto out_r;
		}
		fprintf(f, "%.*s%.*s%.*s%s", rule->loc_prefix.len, rule->loc_prefix.s,
			(rule->flags & GAMMAD_KH_RULE_REQ_HOST) ? s->v.host_len : 0,
			(const char *)s->buf + s->v.host_off, rule->loc_port.len, rule->loc_port.s,
			path);
		fclose(f);
		free(path);
		if (!r.redirect.location || strcmp(loc, r.redirect.location)) {
			fail(why, len, "Location \"%s\", evaluator \"%s\"", loc,
			     r.redirect.location ? r.redirect.location : "-");
			goto out_r;
		}
	}
	if (s->v.action == GAMMAD_KH_LOCAL && check_answer(s, h, &r, why, len))
		goto out_r;
	ret = 0;
out_r:
	ev_result_free(&r);
out:
	free(target);
	free(loc);
	for (size_t i = 0; i < h->nr_headers; i++) {
		free((char *)hdrs[i].name);
		free((char *)hdrs[i].value);
	}
	free(hdrs);
	free((char *)req.method);
	free((char *)req.target);
	free((char *)req.host);
	return ret;
}

int khu_check(const struct tr_class *cls, const struct kh_image *img,
	      const struct gammad_kh_scratch *s, struct khu_stats *st, char *why, size_t len)
{
	struct h1_scan scan = { 0 };
	struct h1_head *h;
	long n;
	int ret = 0, perr = 1;

	h = malloc(sizeof(*h));
	if (!h)
		return fail(why, len, "out of memory");
	n = h1_head_end((const char *)s->buf, s->len, NULL, &scan);
	if (n > 0)
		perr = h1_parse_request((const char *)s->buf, (size_t)n, NULL, h);
	switch (s->v.action) {
	case GAMMAD_KH_MORE:
		st->more++;
		if (n != 0)
			ret = fail(why, len, "kernel waits, parser says %ld", n);
		break;
	case GAMMAD_KH_ENGINE:
		st->engine++;
		st->reasons[s->v.reason % GAMMAD_KH_R_SLOTS]++;
		if (s->v.reason == GAMMAD_KH_R_MALFORMED) {
			st->malformed++;
			if (n > 0 && !perr)
				ret = fail(why, len, "kernel: malformed, parser accepts");
		}
		break;
	case GAMMAD_KH_FORWARD:
	case GAMMAD_KH_LOCAL:
		if (s->v.action == GAMMAD_KH_FORWARD)
			st->served++;
		else
			st->local++;
		if (n <= 0 || perr) {
			ret = fail(why, len, "kernel serves a head the parser refuses (%s)",
				   n < 0 ? h1_error_str((int)n) : perr ? h1_error_str(perr) : "incomplete");
			break;
		}
		ret = check_parse(s, h, n, why, len);
		if (!ret)
			ret = check_verdict(cls, img, s, h, why, len);
		if (!ret && s->v.action == GAMMAD_KH_FORWARD && kh_rb_edits_response(img, s->v.rb))
			st->resp_edits++;
		break;
	default:
		ret = fail(why, len, "action %u", s->v.action);
	}
	free(h);
	return ret;
}
