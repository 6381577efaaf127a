// SPDX-License-Identifier: Apache-2.0
/* The kernel HTTP matcher in userspace, and the check against the engine's code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		break;
	default:
		ret = fail(why, len, "action %u", s->v.action);
	}
	free(h);
	return ret;
}
