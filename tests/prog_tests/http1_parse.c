// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/1.1 head parser and chunked scanner (user/lib/http/http1.h),
 * case by case: what each head means, and every way a head is refused with
 * the status the engine answers.
 */
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"
#include "test_progs.h"

/* The case tables name only the fields a case is about; the rest are zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct req_case {
	const char *name;
	const char *text;
	int err;			/* 0: accepted */
	enum h1_body body;
	uint64_t length;
	bool keep_alive, expect_continue, upgrade;
};

#define H "Host: svc\r\n"

static const struct req_case req_cases[] = {
	{ "get", "GET /a?b=c HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true },
	{ "leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true },
	{ "post_length", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n", 0, H1_BODY_LENGTH, 5, true },
	{ "length_zero", "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", 0, H1_BODY_NONE, 0, true },
	{ "chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n", 0, H1_BODY_CHUNKED, 0, true },
	{ "gzip_then_chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, Chunked\r\n\r\n", 0,
	  H1_BODY_CHUNKED, 0, true },
	{ "close", "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n", 0, H1_BODY_NONE, 0, false },
	{ "http10", "GET / HTTP/1.0\r\n\r\n", 0, H1_BODY_NONE, 0, false },
	{ "http10_keep_alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, H1_BODY_NONE, 0, true },
	{ "expect_continue", "PUT / HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n", 0,
	  H1_BODY_LENGTH, 3, true, true },
	{ "upgrade", "GET /ws HTTP/1.1\r\n" H "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
	  0, H1_BODY_NONE, 0, true, false, true },
	{ "upgrade_field_alone", "GET / HTTP/1.1\r\n" H "Upgrade: websocket\r\n\r\n", 0, H1_BODY_NONE, 0, true },
	{ "extension_method", "PURGE / HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true },
	{ "value_whitespace_trimmed", "GET / HTTP/1.1\r\nHost: \t svc \t\r\n\r\n", 0, H1_BODY_NONE, 0, true },

	{ "length_and_encoding", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	  -H1_E_LENGTH_AND_ENCODING },
	{ "two_lengths", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
	  -H1_E_CONTENT_LENGTH },
	{ "length_list", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", -H1_E_CONTENT_LENGTH },
	{ "length_sign", "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", -H1_E_CONTENT_LENGTH },
	{ "length_hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", -H1_E_CONTENT_LENGTH },
	{ "length_empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", -H1_E_CONTENT_LENGTH },
	{ "length_huge", "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999\r\n\r\n",
	  -H1_E_CONTENT_LENGTH },
	{ "encoding_not_chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "chunked_not_last", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "chunked_twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "encoding_empty_element", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: , chunked\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "encoding_tab", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\t\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "length_tab", "POST / HTTP/1.1\r\n" H "Content-Length:\t5\r\n\r\n", -H1_E_CONTENT_LENGTH },
	{ "encoding_on_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	  -H1_E_TRANSFER_ENCODING },
	{ "no_host", "GET / HTTP/1.1\r\n\r\n", -H1_E_HOST },
	{ "two_hosts", "GET / HTTP/1.1\r\n" H H "\r\n", -H1_E_HOST },
	{ "expect_other", "GET / HTTP/1.1\r\n" H "Expect: fly\r\n\r\n", -H1_E_EXPECT },
	{ "obs_fold", "GET / HTTP/1.1\r\n" H "X-A: a\r\n b\r\n\r\n", -H1_E_OBS_FOLD },
	{ "space_before_colon", "GET / HTTP/1.1\r\nHost : svc\r\n\r\n", -H1_E_HEADER_NAME },
	{ "empty_name", "GET / HTTP/1.1\r\n" H ": x\r\n\r\n", -H1_E_HEADER_NAME },
	{ "no_colon", "GET / HTTP/1.1\r\n" H "X-A\r\n\r\n", -H1_E_HEADER_NAME },
	{ "control_in_value", "GET / HTTP/1.1\r\n" H "X-A: a\x01z\r\n\r\n", -H1_E_HEADER_VALUE },
	{ "nul_in_value", "GET / HTTP/1.1\r\n" H "X-A: a\0z\r\n\r\n", -H1_E_HEADER_VALUE },
	{ "http2", "GET / HTTP/2.0\r\n" H "\r\n", -H1_E_VERSION },
	{ "http12", "GET / HTTP/1.2\r\n" H "\r\n", -H1_E_VERSION },
	{ "not_http", "GET / FTP/1.1\r\n" H "\r\n", -H1_E_REQUEST_LINE },
	{ "version_trailing", "GET / HTTP/1.1 x\r\n" H "\r\n", -H1_E_REQUEST_LINE },
	{ "two_spaces", "GET  / HTTP/1.1\r\n" H "\r\n", -H1_E_REQUEST_LINE },
	{ "no_target", "GET HTTP/1.1\r\n" H "\r\n", -H1_E_REQUEST_LINE },
	{ "method_not_token", "GE(T / HTTP/1.1\r\n" H "\r\n", -H1_E_METHOD },
	{ "target_del", "GET /a\x7f HTTP/1.1\r\n" H "\r\n", -H1_E_TARGET },
	{ "target_tab", "GET /a\tb HTTP/1.1\r\n" H "\r\n", -H1_E_TARGET },
	{ "absolute_form", "GET http://svc.ns:80/p?q HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true },
	{ "asterisk_form", "OPTIONS * HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true },
	{ "authority_form", "CONNECT svc:443 HTTP/1.1\r\n" H "\r\n", 0, H1_BODY_NONE, 0, true, false, true },
	{ "authority_form_not_connect", "GET svc:443 HTTP/1.1\r\n" H "\r\n", -H1_E_TARGET },
	{ "absolute_form_no_slashes", "GET http:/svc/p HTTP/1.1\r\n" H "\r\n", -H1_E_TARGET },
	{ "absolute_form_bad_authority", "GET http://s\x80" "c/p HTTP/1.1\r\n" H "\r\n", -H1_E_TARGET },
};

static const char *body_name(enum h1_body b)
{
	static const char *const names[] = { "none", "length", "chunked", "close" };

	return b <= H1_BODY_CLOSE ? names[b] : "?";
}

/* h1_head_end over the whole text, then h1_parse_request. */
static int parse_req(const char *text, size_t len, const struct h1_limits *lim, struct h1_head *h)
{
	struct h1_scan scan = { 0 };
	long end = h1_head_end(text, len, lim, &scan);

	if (end <= 0)
		return end ? (int)end : -H1_E_SYNTAX;
	return h1_parse_request(text, (size_t)end, lim, h);
}

static void run_req_case(const struct req_case *c)
{
	struct h1_head *h = calloc(1, sizeof(*h));
	size_t len = strlen(c->text);
	int ret;

	/* the text of nul_in_value goes on past its NUL */
	if (!strcmp(c->name, "nul_in_value"))
		len = strlen(c->text) + 1 + strlen(c->text + strlen(c->text) + 1);
	ret = parse_req(c->text, len, NULL, h);
	if (ret != c->err)
		test__printf("%s: got %s, want %s\n", c->name, ret ? h1_error_str(ret) : "accepted",
			     c->err ? h1_error_str(c->err) : "accepted");
	ASSERT_EQ(ret, c->err, "result");
	if (!ret && !c->err) {
		if (!ASSERT_EQ(h->body, c->body, "body"))
			test__printf("body %s\n", body_name(h->body));
		ASSERT_EQ(h->content_length, c->length, "content length");
		ASSERT_EQ(h->keep_alive, c->keep_alive, "keep-alive");
		ASSERT_EQ(h->expect_continue, c->expect_continue, "expect 100-continue");
		ASSERT_EQ(h->upgrade, c->upgrade, "upgrade");
	}
	free(h);
}

static void test_fields(void)
{
	static const char text[] = "\r\nGET /p?q=1 HTTP/1.1\r\nHost:  svc:80 \r\nX-Empty:\r\n\r\n";
	struct h1_head *h = calloc(1, sizeof(*h));
	const struct h1_header *f;

	if (!ASSERT_OK(parse_req(text, sizeof(text) - 1, NULL, h), "parse"))
		goto out;
	ASSERT_TRUE(h1_str_eq(&h->method, "GET"), "method");
	ASSERT_TRUE(h1_str_eq(&h->target, "/p?q=1"), "target");
	ASSERT_EQ(h->minor, 1, "HTTP/1.1");
	ASSERT_EQ(h->skipped, 1, "one empty line skipped");
	ASSERT_EQ(h->head_len, sizeof(text) - 1, "head length");
	ASSERT_EQ(h->nr_headers, 2, "two fields");
	ASSERT_TRUE(h1_str_eq(&h->host, "svc:80"), "host, trimmed");
	f = h1_header_get(h, "x-empty");
	if (ASSERT_OK_PTR(f, "X-Empty, any case"))
		ASSERT_EQ(f->value.len, 0, "empty value");
	ASSERT_NULL(h1_header_get(h, "x-none"), "absent field");
out:
	free(h);
}

/* Fed one byte at a time, the end is found once, at the same place. */
/* What routes match: the path and query of every form. */
static void test_paths(void)
{
	static const struct {
		const char *line, *path;
	} cases[] = {
		{ "GET /a?b HTTP/1.1", "/a?b" },
		{ "GET http://svc.ns:80/a?b HTTP/1.1", "/a?b" },
		{ "GET http://svc.ns?b HTTP/1.1", "?b" },
		{ "GET http://[fd00::1]:80 HTTP/1.1", "" },
		{ "OPTIONS * HTTP/1.1", "*" },
		{ "CONNECT svc:443 HTTP/1.1", "" },
	};
	struct h1_head *h = calloc(1, sizeof(*h));
	char text[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(text, sizeof(text), "%s\r\nHost: a\r\n\r\n", cases[i].line);

		if (!ASSERT_OK(parse_req(text, (size_t)n, NULL, h), cases[i].line))
			continue;
		if (!ASSERT_TRUE(h1_str_eq(&h->path, cases[i].path), cases[i].line))
			test__printf("path '%.*s'\n", (int)h->path.len, h->path.p);
	}
	free(h);
}

static void test_incremental(void)
{
	static const char text[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
	size_t head = sizeof(text) - 1 - 2;
	struct h1_scan scan = { 0 };
	long end = 0;
	size_t n;

	for (n = 1; n <= sizeof(text) - 1 && !end; n++)
		end = h1_head_end(text, n, NULL, &scan);
	ASSERT_EQ(end, (long)head, "end of head");
	ASSERT_EQ(n - 1, head, "found at the byte that completes it");
}

static void test_line_ends(void)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"\nGET / HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct h1_scan scan = { 0 };

		ASSERT_EQ(h1_head_end(bad[i], strlen(bad[i]), NULL, &scan), -H1_E_LINE_END, bad[i]);
	}
}

static void test_limits(void)
{
	struct h1_limits lim = { .head_max = 64, .target_max = 8 };
	struct h1_head *h = calloc(1, sizeof(*h));
	char many[8192], big[200];
	struct h1_scan scan = { 0 };
	size_t off;

	memset(big, 'a', sizeof(big));
	ASSERT_EQ(h1_head_end(big, sizeof(big), &lim, &scan), -H1_E_HEAD_TOO_LARGE,
		  "no end in head_max bytes");
	ASSERT_EQ(h1_error_status(-H1_E_HEAD_TOO_LARGE), 431, "answered 431");
	ASSERT_EQ(parse_req("GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n", 37, &lim, h),
		  -H1_E_TARGET_TOO_LONG, "target over target_max");
	ASSERT_EQ(h1_error_status(-H1_E_TARGET_TOO_LONG), 414, "answered 414");
	off = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < H1_HEADERS_MAX; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "X-%d: %d\r\n", i, i);
	off += (size_t)snprintf(many + off, sizeof(many) - off, "\r\n");
	ASSERT_EQ(parse_req(many, off, NULL, h), -H1_E_TOO_MANY_HEADERS, "101 fields");
	ASSERT_EQ(h1_error_status(-H1_E_TOO_MANY_HEADERS), 431, "answered 431");
	ASSERT_EQ(h1_error_status(-H1_E_VERSION), 505, "HTTP/2.0 answered 505");
	ASSERT_EQ(h1_error_status(-H1_E_EXPECT), 417, "an unknown expectation answered 417");
	free(h);
}

struct resp_case {
	const char *name, *text, *method;
	int err;
	enum h1_body body;
	uint64_t length;
	bool keep_alive;
	uint16_t status;
};

static const struct resp_case resp_cases[] = {
	{ "length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "GET", 0, H1_BODY_LENGTH, 12, true, 200 },
	{ "head", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEAD", 0, H1_BODY_NONE, 0, true, 200 },
	{ "no_content", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 0, H1_BODY_NONE, 0, true, 204 },
	{ "not_modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "GET", 0,
	  H1_BODY_NONE, 0, true, 304 },
	{ "continue", "HTTP/1.1 100 Continue\r\n\r\n", "PUT", 0, H1_BODY_NONE, 0, true, 100 },
	{ "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 0, H1_BODY_CHUNKED, 0,
	  true, 200 },
	{ "until_close", "HTTP/1.1 200 OK\r\n\r\n", "GET", 0, H1_BODY_CLOSE, 0, false, 200 },
	{ "gzip_until_close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", 0, H1_BODY_CLOSE,
	  0, false, 200 },
	{ "no_reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", 0, H1_BODY_NONE, 0, true, 200 },
	{ "http10_close", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", 0, H1_BODY_LENGTH, 1, false,
	  200 },
	{ "switching", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "GET", 0,
	  H1_BODY_NONE, 0, true, 101 },
	{ "status_600", "HTTP/1.1 600 Odd\r\n\r\n", "GET", -H1_E_STATUS },
	{ "status_short", "HTTP/1.1 20 OK\r\n\r\n", "GET", -H1_E_STATUS },
	{ "length_and_encoding", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	  "GET", -H1_E_LENGTH_AND_ENCODING },
};

static void run_resp_case(const struct resp_case *c)
{
	struct h1_head *h = calloc(1, sizeof(*h));
	struct h1_str method = { c->method, strlen(c->method) };
	int ret = h1_parse_response(c->text, strlen(c->text), &method, h);

	ASSERT_EQ(ret, c->err, "result");
	if (!ret && !c->err) {
		ASSERT_EQ(h->status, c->status, "status");
		ASSERT_EQ(h->body, c->body, "body");
		ASSERT_EQ(h->content_length, c->length, "content length");
		ASSERT_EQ(h->keep_alive, c->keep_alive, "keep-alive");
		ASSERT_EQ(h->upgrade, c->status == 101, "upgrade");
	}
	free(h);
}

struct data_sink {
	char buf[256];
	size_t len;
};

static void collect(void *ctx, const char *p, size_t n)
{
	struct data_sink *s = ctx;

	if (s->len + n <= sizeof(s->buf)) {
		memcpy(s->buf + s->len, p, n);
		s->len += n;
	}
}

struct chunk_case {
	const char *name, *text, *data;	/* data NULL: refused */
	size_t rest;			/* bytes after the body's end */
};

static const struct chunk_case chunk_cases[] = {
	{ "two_chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world" },
	{ "extension", "5;name=val\r\nhello\r\n0\r\n\r\n", "hello" },
	{ "upper_hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789" },
	{ "trailers", "2\r\nok\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n", "ok" },
	{ "next_request_after", "0\r\n\r\nGET / HTTP/1.1\r\n", "", 16 },
	{ "no_digits", "\r\nhello\r\n0\r\n\r\n", NULL },
	{ "not_hex", "g\r\n", NULL },
	{ "data_longer", "5\r\nhelloXX\r\n0\r\n\r\n", NULL },
	{ "bare_lf", "5\nhello\r\n0\r\n\r\n", NULL },
	{ "trailer_no_colon", "0\r\nbad trailer\r\n\r\n", NULL },
	{ "trailer_folded", "0\r\n folded\r\n\r\n", NULL },
	{ "size_overflow", "10000000000000000\r\n", NULL },
};

static void run_chunk_case(const struct chunk_case *c)
{
	size_t len = strlen(c->text);

	/* whole, then one byte at a time: the same answer */
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct h1_chunked ch = { 0 };
		struct data_sink sink = { .len = 0 };
		long used = 0, r = 0;

		if (!bytewise) {
			used = r = h1_chunked_scan(&ch, c->text, len, collect, &sink);
		} else {
			for (size_t i = 0; i < len && !ch.done && r >= 0; i++) {
				r = h1_chunked_scan(&ch, c->text + i, 1, collect, &sink);
				used += r > 0 ? r : 0;
			}
		}
		if (!c->data) {
			ASSERT_EQ(r, -H1_E_CHUNK, bytewise ? "refused, byte by byte" : "refused");
			continue;
		}
		ASSERT_TRUE(ch.done, "ended");
		ASSERT_EQ(used, (long)(len - c->rest), "where it ended");
		ASSERT_EQ(sink.len, strlen(c->data), "data length");
		ASSERT_TRUE(!memcmp(sink.buf, c->data, sink.len), "data");
	}
}

void test_http1_parse(void)
{
	char name[96];

	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		snprintf(name, sizeof(name), "request_%s", req_cases[i].name);
		if (test__start_subtest(name))
			run_req_case(&req_cases[i]);
	}
	if (test__start_subtest("request_fields"))
		test_fields();
	if (test__start_subtest("request_paths"))
		test_paths();
	if (test__start_subtest("incremental_end"))
		test_incremental();
	if (test__start_subtest("bare_cr_lf"))
		test_line_ends();
	if (test__start_subtest("limits"))
		test_limits();
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
		snprintf(name, sizeof(name), "response_%s", resp_cases[i].name);
		if (test__start_subtest(name))
			run_resp_case(&resp_cases[i]);
	}
	for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		snprintf(name, sizeof(name), "chunked_%s", chunk_cases[i].name);
		if (test__start_subtest(name))
			run_chunk_case(&chunk_cases[i]);
	}
}
