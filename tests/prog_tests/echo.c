// SPDX-License-Identifier: Apache-2.0
/*
 * build/echo: the HTTP/TCP/UDP echo server that stands in for the
 * conformance echo image, and its client. Everything runs over loopback
 * against a real server process; the expected bytes come from Gateway
 * API's echo-basic (a Go program) and from the client's documented output.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/echo_harness.h"

#define POD "echo-v1-5d8f7c9b6-abcde"
#define NS "gateway-conformance-mesh"

static const char *const server_args[] = {
	"--port=0", "--tcp=0", "--udp=0", "--pod", POD, "--namespace", NS, "-v", NULL,
};
/* POD_NAME must lose against --pod; SERVICE_NAME and INGRESS_NAME come from here. */
static const char *const server_env[] = {
	"POD_NAME=overridden-by-flag", "SERVICE_NAME=echo-v1", "INGRESS_NAME=ing-1", NULL,
};

static long long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* ---- JSON body shape ------------------------------------------------------ */

/*
 * Check the pretty-printing: every line is indented by exactly one space
 * per open object or array, as json.MarshalIndent(v, "", " ") does.
 */
static bool check_indent(const char *body)
{
	int depth = 0, lineno = 0;

	for (const char *line = body; *line; lineno++) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		size_t spaces = strspn(line, " ");
		char last = len ? line[len - 1] : 0;

		if (line[spaces] == '}' || line[spaces] == ']')
			depth--;
		if (!ASSERT_EQ(spaces, depth, "indent of line")) {
			test__printf("line %d: '%.*s'\n", lineno + 1, (int)len, line);
			return false;
		}
		if (last == '{' || last == '[')
			depth++;
		line += len + (nl ? 1 : 0);
	}
	return ASSERT_EQ(depth, 0, "balanced braces");
}

/* The keys of lines indented by @indent spaces, in order, joined by ",". */
static void keys_at(const char *body, int indent, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (const char *line = body; line && *line; line = strchr(line, '\n')) {
		const char *end;

		if (*line == '\n')
			line++;
		if ((int)strspn(line, " ") != indent || line[indent] != '"')
			continue;
		end = strchr(line + indent + 1, '"');
		if (!end)
			continue;
		used += snprintf(out + used, size - used, "%s%.*s", used ? "," : "",
				 (int)(end - line - indent - 1), line + indent + 1);
		if (used >= size)
			return;
	}
}

static void subtest_exact_body(unsigned short port)
{
	static const char request[] =
		"GET /v2/example?x=1&y=%22 HTTP/1.1\r\n"
		"Host: example.com\r\n"
		"user-agent: test/1\r\n"
		"X-HEADER-set: one\r\n"
		"Accept: */*\r\n"
		"x-header-set: two, three\r\n"
		"X-Quote:   say \"hi\" \\ <b>&  \r\n"
		"X-Tab: a\tb\r\n"
		"X-Utf8: caf\xc3\xa9 \xff\r\n"
		"\r\n";
	struct echo_http_resp resp;
	char *expected = NULL, hdr[64];

	if (!ASSERT_OK(echo_http_once(port, request, &resp), "exchange"))
		return;
	ASSERT_EQ(resp.status, 200, "status");
	ASSERT_STREQ(echo_resp_header(&resp, "Content-Type", hdr, sizeof(hdr)),
		     "application/json", "Content-Type");
	ASSERT_STREQ(echo_resp_header(&resp, "X-Content-Type-Options", hdr, sizeof(hdr)),
		     "nosniff", "X-Content-Type-Options");
	if (ASSERT_OK_PTR(echo_resp_header(&resp, "Content-Length", hdr, sizeof(hdr)),
			  "Content-Length"))
		ASSERT_EQ(strtoul(hdr, NULL, 10), resp.body_len, "Content-Length value");
	/* Go escapes <, > and & in JSON strings and replaces invalid UTF-8. */
	if (asprintf(&expected,
		     "{\n"
		     " \"path\": \"/v2/example?x=1\\u0026y=%%22\",\n"
		     " \"host\": \"example.com\",\n"
		     " \"method\": \"GET\",\n"
		     " \"proto\": \"HTTP/1.1\",\n"
		     " \"headers\": {\n"
		     "  \"Accept\": [\n   \"*/*\"\n  ],\n"
		     "  \"User-Agent\": [\n   \"test/1\"\n  ],\n"
		     "  \"X-Header-Set\": [\n   \"one\",\n   \"two, three\"\n  ],\n"
		     "  \"X-Quote\": [\n   \"say \\\"hi\\\" \\\\ \\u003cb\\u003e\\u0026\"\n  ],\n"
		     "  \"X-Tab\": [\n   \"a\\tb\"\n  ],\n"
		     "  \"X-Utf8\": [\n   \"caf\xc3\xa9 \\ufffd\"\n  ]\n"
		     " },\n"
		     " \"httpPort\": \"%u\",\n"
		     " \"namespace\": \"" NS "\",\n"
		     " \"ingress\": \"ing-1\",\n"
		     " \"service\": \"echo-v1\",\n"
		     " \"pod\": \"" POD "\"\n"
		     "}", port) < 0)
		expected = NULL;
	ASSERT_STREQ(resp.body, expected, "body");
	free(expected);
	echo_resp_free(&resp);
}

static void subtest_structure(unsigned short port)
{
	struct echo_http_resp resp;
	char keys[512];

	if (!ASSERT_OK(echo_http_once(port, "POST /s HTTP/1.1\r\nHost: h:1\r\nzeta: 1\r\n"
				       "content-length: 0\r\nALPHA-beta-GAMMA: 2\r\n\r\n", &resp),
		       "exchange"))
		return;
	check_indent(resp.body);
	keys_at(resp.body, 1, keys, sizeof(keys));
	ASSERT_STREQ(keys, "path,host,method,proto,headers,httpPort,namespace,ingress,service,pod",
		     "top-level keys in order");
	keys_at(resp.body, 2, keys, sizeof(keys));
	/* Canonical names, sorted, Host left out (Go moves it to r.Host). */
	ASSERT_STREQ(keys, "Alpha-Beta-Gamma,Content-Length,Zeta", "header names");
	ASSERT_HAS_SUBSTR(resp.body, "\n \"host\": \"h:1\",\n", "host field");
	echo_resp_free(&resp);
}

static void subtest_empty_headers(unsigned short port)
{
	struct echo_http_resp resp;

	if (!ASSERT_OK(echo_http_once(port, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &resp), "exchange"))
		return;
	ASSERT_HAS_SUBSTR(resp.body, "\n \"headers\": {},\n \"httpPort\"", "empty headers object");
	echo_resp_free(&resp);
}

static void subtest_framing_headers(unsigned short port)
{
	struct echo_http_resp resp;
	char keys[256];

	/* Go drops Transfer-Encoding, and Content-Length when the body is chunked. */
	if (!ASSERT_OK(echo_http_once(port, "POST /c HTTP/1.1\r\nHost: h\r\n"
				       "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"
				       "X-A: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n", &resp), "exchange"))
		return;
	ASSERT_EQ(resp.status, 200, "status");
	keys_at(resp.body, 2, keys, sizeof(keys));
	ASSERT_STREQ(keys, "X-A", "chunked: header names");
	echo_resp_free(&resp);
}

static void subtest_absolute_form(unsigned short port)
{
	struct echo_http_resp resp;

	if (!ASSERT_OK(echo_http_once(port, "GET http://other.example:81/p?q HTTP/1.1\r\n"
				       "Host: ignored\r\n\r\n", &resp), "exchange"))
		return;
	ASSERT_HAS_SUBSTR(resp.body, "\"path\": \"http://other.example:81/p?q\"", "path");
	ASSERT_HAS_SUBSTR(resp.body, "\"host\": \"other.example:81\"", "host from the URL");
	echo_resp_free(&resp);
}

void test_echo_http_body(void)
{
	struct echo_proc srv;
	unsigned short port;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	port = echo_proc_port(&srv, "http", 0);
	if (!ASSERT_NEQ(port, 0, "http port in ready file"))
		goto out;
	if (test__start_subtest("exact_body"))
		subtest_exact_body(port);
	if (test__start_subtest("structure"))
		subtest_structure(port);
	if (test__start_subtest("empty_headers"))
		subtest_empty_headers(port);
	if (test__start_subtest("framing_headers"))
		subtest_framing_headers(port);
	if (test__start_subtest("absolute_form"))
		subtest_absolute_form(port);
out:
	echo_proc_stop(&srv);
}

/* ---- routes ------------------------------------------------------------- */

static void expect_status(unsigned short port, const char *raw, int status, const char *body)
{
	struct echo_http_resp resp;

	if (!ASSERT_OK(echo_http_once(port, raw, &resp), raw))
		return;
	if (!ASSERT_EQ(resp.status, status, raw))
		test__printf("response head:\n%s", resp.head);
	if (body)
		ASSERT_STREQ(resp.body, body, raw);
	echo_resp_free(&resp);
}

static void subtest_status_codes(unsigned short port)
{
	struct echo_http_resp resp;
	char hdr[64];

	expect_status(port, "GET /health HTTP/1.1\r\nHost: h\r\n\r\n", 200, "OK");
	expect_status(port, "GET /status/418 HTTP/1.1\r\nHost: h\r\n\r\n", 418, "");
	expect_status(port, "GET /status/503 HTTP/1.1\r\nHost: h\r\n\r\n", 503, "");
	/* The whole request URI must be /status/NNN. */
	expect_status(port, "GET /status/abc HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL);
	expect_status(port, "GET /status/2000 HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL);
	expect_status(port, "GET /status/200?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL);
	expect_status(port, "GET /status/099 HTTP/1.1\r\nHost: h\r\n\r\n", 400, NULL);
	/* Not the health route: the echo handler. */
	expect_status(port, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200, NULL);

	if (ASSERT_OK(echo_http_once(port, "GET /status/204 HTTP/1.1\r\nHost: h\r\n\r\n", &resp),
		      "204")) {
		ASSERT_EQ(resp.status, 204, "204 status");
		ASSERT_NULL(echo_resp_header(&resp, "Content-Length", hdr, sizeof(hdr)),
			    "no Content-Length on 204");
		echo_resp_free(&resp);
	}
	if (ASSERT_OK(echo_http_once(port, "GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\n", &resp),
		      "404")) {
		ASSERT_HAS_SUBSTR(resp.head, "HTTP/1.1 404 Not Found\r\n", "status line");
		ASSERT_STREQ(echo_resp_header(&resp, "Content-Length", hdr, sizeof(hdr)), "0",
			     "Content-Length: 0");
		echo_resp_free(&resp);
	}
}

static void subtest_echo_set_header(unsigned short port)
{
	struct echo_http_resp resp;
	char hdr[64];

	if (!ASSERT_OK(echo_http_once(port, "GET /s HTTP/1.1\r\nHost: h\r\n"
				       "X-Echo-Set-Header: X-Foo:bar,X-Foo: baz , x-lower:v\r\n"
				       "x-echo-set-header: Second:2\r\n\r\n", &resp), "exchange"))
		return;
	ASSERT_EQ(resp.status, 200, "status");
	ASSERT_HAS_SUBSTR(resp.head, "\r\nX-Foo: bar,baz\r\n", "repeated name joined with ','");
	ASSERT_HAS_SUBSTR(resp.head, "\r\nx-lower: v\r\n", "name case kept");
	ASSERT_HAS_SUBSTR(resp.head, "\r\nSecond: 2\r\n", "second header line");
	ASSERT_STREQ(echo_resp_header(&resp, "Content-Type", hdr, sizeof(hdr)),
		     "application/json", "Content-Type still set");
	echo_resp_free(&resp);
}

static void subtest_head(unsigned short port)
{
	struct echo_http_resp get, head, after;
	struct echo_reader r = { 0 };
	char get_len[32], head_len[32];

	/* "/h1" makes up for "HEAD" being one byte longer than "GET" in the body. */
	if (!ASSERT_OK(echo_http_once(port, "GET /h1 HTTP/1.1\r\nHost: h\r\n\r\n", &get), "GET"))
		return;
	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		goto out;
	/* HEAD then GET on one connection: a body after HEAD would corrupt the GET. */
	ASSERT_OK(echo_send_str(r.fd, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n"
				      "GET /after HTTP/1.1\r\nHost: h\r\n\r\n"), "send");
	if (ASSERT_OK(echo_read_response(&r, true, &head), "read HEAD")) {
		ASSERT_EQ(head.status, 200, "HEAD status");
		ASSERT_STREQ(echo_resp_header(&head, "Content-Length", head_len, sizeof(head_len)),
			     echo_resp_header(&get, "Content-Length", get_len, sizeof(get_len)),
			     "HEAD Content-Length equals GET's");
		echo_resp_free(&head);
	}
	if (ASSERT_OK(echo_read_response(&r, false, &after), "read GET after HEAD")) {
		ASSERT_EQ(after.status, 200, "GET status");
		ASSERT_HAS_SUBSTR(after.body, "\"path\": \"/after\"", "GET answered");
		echo_resp_free(&after);
	}
	close(r.fd);
out:
	echo_reader_free(&r);
	echo_resp_free(&get);
}

static void subtest_delay(unsigned short port)
{
	struct timespec start;
	struct echo_http_resp resp;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (ASSERT_OK(echo_http_once(port, "GET /d?delay=300ms HTTP/1.1\r\nHost: h\r\n\r\n", &resp),
		      "delayed request")) {
		ASSERT_EQ(resp.status, 200, "status");
		ASSERT_GE(elapsed_ms(&start), 290, "waited for ?delay=300ms");
		echo_resp_free(&resp);
	}
	expect_status(port, "GET /d?delay=soon HTTP/1.1\r\nHost: h\r\n\r\n", 500,
		      "{\n \"message\": \"time: invalid duration \\\"soon\\\"\"\n}");
}

static void subtest_redirects(unsigned short port)
{
	struct echo_http_resp resp;
	char loc[64];

	/* ServeMux cleans paths with a 301; echo-basic first folds "//" itself. */
	if (ASSERT_OK(echo_http_once(port, "GET /a/../b/./c?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", &resp),
		      "unclean path")) {
		ASSERT_EQ(resp.status, 301, "status");
		ASSERT_STREQ(echo_resp_header(&resp, "Location", loc, sizeof(loc)), "/b/c?q=1",
			     "Location");
		echo_resp_free(&resp);
	}
	if (ASSERT_OK(echo_http_once(port, "GET /status HTTP/1.1\r\nHost: h\r\n\r\n", &resp),
		      "subtree root")) {
		ASSERT_EQ(resp.status, 301, "status");
		ASSERT_STREQ(echo_resp_header(&resp, "Location", loc, sizeof(loc)), "/status/",
			     "Location");
		echo_resp_free(&resp);
	}
	expect_status(port, "GET //health HTTP/1.1\r\nHost: h\r\n\r\n", 200, "OK");
}

void test_echo_http_routes(void)
{
	struct echo_proc srv;
	unsigned short port;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	port = echo_proc_port(&srv, "http", 0);
	if (test__start_subtest("status_codes"))
		subtest_status_codes(port);
	if (test__start_subtest("echo_set_header"))
		subtest_echo_set_header(port);
	if (test__start_subtest("head"))
		subtest_head(port);
	if (test__start_subtest("delay"))
		subtest_delay(port);
	if (test__start_subtest("redirects"))
		subtest_redirects(port);
	echo_proc_stop(&srv);
}

/* ---- one connection: keep-alive, pipelining, bodies, errors ---------------- */

#define PIPELINED 40

static void subtest_pipelined(unsigned short port)
{
	struct echo_reader r = { 0 };
	char *batch = NULL, want[64];
	size_t len = 0;
	FILE *mem = open_memstream(&batch, &len);

	for (int i = 0; i < PIPELINED; i++)
		fprintf(mem, "GET /p%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
	fclose(mem);
	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		goto out;
	/* All requests in one write: the server must answer them in order. */
	if (!ASSERT_OK(echo_send_all(r.fd, batch, len), "send batch"))
		goto out_close;
	for (int i = 0; i < PIPELINED; i++) {
		struct echo_http_resp resp;

		if (!ASSERT_OK(echo_read_response(&r, false, &resp), "read response"))
			break;
		snprintf(want, sizeof(want), "\"path\": \"/p%d\",", i);
		ASSERT_HAS_SUBSTR(resp.body, want, "response order");
		echo_resp_free(&resp);
	}
out_close:
	close(r.fd);
out:
	echo_reader_free(&r);
	free(batch);
}

static void subtest_post_bodies(unsigned short port)
{
	static const size_t big = 1024 * 1024 + 17;
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;
	char head[128], *body = malloc(big);

	if (!ASSERT_OK_PTR(body, "malloc"))
		return;
	memset(body, 'x', big);
	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		goto out;
	snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", big);
	ASSERT_OK(echo_send_str(r.fd, head), "send head");
	ASSERT_OK(echo_send_all(r.fd, body, big), "send 1 MiB body");
	/* Chunked, with an extension and a trailer, then a plain GET. */
	ASSERT_OK(echo_send_str(r.fd, "POST /chunked HTTP/1.1\r\nHost: h\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n"
				      "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
				      "0\r\nX-Trailer: t\r\n\r\n"
				      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), "send chunked + GET");
	if (ASSERT_OK(echo_read_response(&r, false, &resp), "big response")) {
		ASSERT_EQ(resp.status, 200, "big status");
		ASSERT_HAS_SUBSTR(resp.body, "\"Content-Length\": [\n   \"1048593\"\n  ]", "length echoed");
		echo_resp_free(&resp);
	}
	if (ASSERT_OK(echo_read_response(&r, false, &resp), "chunked response")) {
		ASSERT_HAS_SUBSTR(resp.body, "\"path\": \"/chunked\"", "chunked answered");
		echo_resp_free(&resp);
	}
	if (ASSERT_OK(echo_read_response(&r, false, &resp), "next response")) {
		ASSERT_HAS_SUBSTR(resp.body, "\"path\": \"/next\"", "request after bodies");
		echo_resp_free(&resp);
	}
	close(r.fd);
out:
	echo_reader_free(&r);
	free(body);
}

static void subtest_expect_continue(unsigned short port)
{
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;

	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		return;
	ASSERT_OK(echo_send_str(r.fd, "PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
				      "Expect: 100-continue\r\n\r\n"), "send head");
	if (ASSERT_OK(echo_read_response(&r, true, &resp), "interim response")) {
		ASSERT_EQ(resp.status, 100, "100 Continue before the body");
		echo_resp_free(&resp);
	}
	ASSERT_OK(echo_send_str(r.fd, "hello"), "send body");
	if (ASSERT_OK(echo_read_response(&r, false, &resp), "final response")) {
		ASSERT_EQ(resp.status, 200, "final status");
		echo_resp_free(&resp);
	}
	close(r.fd);
	echo_reader_free(&r);
}

/* Send @raw, expect one response with @status, then the server closing. */
static void expect_status_and_close(unsigned short port, const char *what, const char *raw,
				    int status)
{
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;

	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		return;
	ASSERT_OK(echo_send_str(r.fd, raw), what);
	if (ASSERT_OK(echo_read_response(&r, false, &resp), what)) {
		if (!ASSERT_EQ(resp.status, status, what))
			test__printf("%s: response head:\n%s", what, resp.head);
		echo_resp_free(&resp);
		ASSERT_EQ(r.len, 0, "nothing after the response");
		ASSERT_OK(echo_wait_closed(r.fd), what);
	}
	close(r.fd);
	echo_reader_free(&r);
}

static void subtest_malformed(unsigned short port)
{
	char big[70 * 1024];

	expect_status_and_close(port, "garbage", "hello there\r\n\r\n", 400);
	expect_status_and_close(port, "bad version", "GET / HTTP/x\r\nHost: h\r\n\r\n", 400);
	expect_status_and_close(port, "HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	expect_status_and_close(port, "missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400);
	expect_status_and_close(port, "two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	expect_status_and_close(port, "no colon", "GET / HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\n", 400);
	expect_status_and_close(port, "space in name", "GET / HTTP/1.1\r\nHost: h\r\nA b: c\r\n\r\n", 400);
	expect_status_and_close(port, "folding", "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n", 400);
	expect_status_and_close(port, "bad length",
				"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400);
	expect_status_and_close(port, "two lengths",
				"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
				"Content-Length: 2\r\n\r\nab", 400);
	expect_status_and_close(port, "gzip coding",
				"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
	expect_status_and_close(port, "bad chunk size",
				"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
				"zz\r\n", 400);
	expect_status_and_close(port, "bad percent escape",
				"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status_and_close(port, "unknown Expect",
				"GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417);
	/* A head that never ends within 64 KiB. */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
	memset(big + strlen(big), 'a', sizeof(big) - strlen(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_status_and_close(port, "head too large", big, 431);
}

static void subtest_connection_close(unsigned short port)
{
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;
	char hdr[32];

	expect_status_and_close(port, "Connection: close",
				"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200);
	expect_status_and_close(port, "HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 200);

	/* HTTP/1.0 with keep-alive stays open for a second request. */
	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		return;
	ASSERT_OK(echo_send_str(r.fd, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
				      "GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), "send");
	for (int i = 0; i < 2; i++) {
		if (!ASSERT_OK(echo_read_response(&r, false, &resp), "HTTP/1.0 keep-alive"))
			break;
		ASSERT_STREQ(echo_resp_header(&resp, "Connection", hdr, sizeof(hdr)), "keep-alive",
			     "Connection: keep-alive");
		ASSERT_HAS_SUBSTR(resp.body, "\"proto\": \"HTTP/1.0\"", "proto");
		ASSERT_HAS_SUBSTR(resp.body, "\"host\": \"\"", "no Host in HTTP/1.0");
		echo_resp_free(&resp);
	}
	close(r.fd);
	echo_reader_free(&r);
}

/* The client half-closes after its requests: all of them are still answered. */
static void subtest_half_close(unsigned short port)
{
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;

	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		return;
	ASSERT_OK(echo_send_str(r.fd, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
				      "GET /y HTTP/1.1\r\nHost: h\r\n\r\n"), "send");
	shutdown(r.fd, SHUT_WR);
	for (int i = 0; i < 2; i++) {
		if (!ASSERT_OK(echo_read_response(&r, false, &resp), "response after half-close"))
			break;
		ASSERT_HAS_SUBSTR(resp.body, i ? "\"/y\"" : "\"/x\"", "order");
		echo_resp_free(&resp);
	}
	ASSERT_OK(echo_wait_closed(r.fd), "closed after the answers");
	close(r.fd);
	echo_reader_free(&r);
}

void test_echo_http_connection(void)
{
	struct echo_proc srv;
	unsigned short port;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	port = echo_proc_port(&srv, "http", 0);
	if (test__start_subtest("pipelined"))
		subtest_pipelined(port);
	if (test__start_subtest("post_bodies"))
		subtest_post_bodies(port);
	if (test__start_subtest("expect_continue"))
		subtest_expect_continue(port);
	if (test__start_subtest("malformed"))
		subtest_malformed(port);
	if (test__start_subtest("connection_close"))
		subtest_connection_close(port);
	if (test__start_subtest("half_close"))
		subtest_half_close(port);
	echo_proc_stop(&srv);
}

/* ---- sockets, options, lifecycle ------------------------------------------ */

static void subtest_ipv6(unsigned short port)
{
	struct echo_reader r = { 0 };
	struct echo_http_resp resp;

	r.fd = echo_connect(AF_INET6, port);
	if (r.fd == -EADDRNOTAVAIL || r.fd == -EAFNOSUPPORT || r.fd == -ENETUNREACH) {
		test__skip("no IPv6 loopback");
		return;
	}
	if (!ASSERT_GE(r.fd, 0, "connect [::1]"))
		return;
	ASSERT_OK(echo_send_str(r.fd, "GET /v6 HTTP/1.1\r\nHost: [::1]\r\n\r\n"), "send");
	if (ASSERT_OK(echo_read_response(&r, false, &resp), "read")) {
		ASSERT_EQ(resp.status, 200, "status");
		ASSERT_HAS_SUBSTR(resp.body, "\"host\": \"[::1]\"", "host");
		echo_resp_free(&resp);
	}
	close(r.fd);
	echo_reader_free(&r);
}

#define CONNECTIONS 200

/* Many connections open at once, served by the one thread in turn. */
static void subtest_many_connections(unsigned short port)
{
	static struct echo_reader readers[CONNECTIONS];
	char req[64], want[32];
	int opened = 0;

	for (; opened < CONNECTIONS; opened++) {
		readers[opened] = (struct echo_reader){ .fd = echo_connect(AF_INET, port) };
		if (!ASSERT_GE(readers[opened].fd, 0, "connect"))
			break;
	}
	for (int i = 0; i < opened; i++) {
		snprintf(req, sizeof(req), "GET /c%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
		ASSERT_OK(echo_send_str(readers[i].fd, req), "send");
	}
	for (int i = opened - 1; i >= 0; i--) {
		struct echo_http_resp resp;

		if (ASSERT_OK(echo_read_response(&readers[i], false, &resp), "read")) {
			snprintf(want, sizeof(want), "\"/c%d\"", i);
			ASSERT_HAS_SUBSTR(resp.body, want, "own response");
			echo_resp_free(&resp);
		}
		close(readers[i].fd);
		echo_reader_free(&readers[i]);
	}
}

/*
 * Start a server on two fixed ports (picked free, so another process may
 * take them first: then try new ones).
 */
static int start_fixed_ports(struct echo_proc *srv, unsigned short *p1, unsigned short *p2)
{
	char port1[32], tls1[32], grpc2[32], udp1[32];
	const char *args[] = { port1, tls1, grpc2, udp1, "--crt=/cert.crt", "--key=/cert.key", NULL };
	int err = -EADDRINUSE;

	for (int attempt = 0; attempt < 3 && err; attempt++) {
		*p1 = echo_free_port(SOCK_STREAM);
		*p2 = echo_free_port(SOCK_STREAM);
		if (!*p1 || !*p2 || *p1 == *p2)
			continue;
		/* As in the conformance manifests: one port as both --port and --tls. */
		snprintf(port1, sizeof(port1), "--port=%u", *p1);
		snprintf(tls1, sizeof(tls1), "--tls=%u", *p1);
		snprintf(grpc2, sizeof(grpc2), "--grpc=%u", *p2);
		snprintf(udp1, sizeof(udp1), "--udp=%u", *p1);
		err = echo_proc_start(srv, args, NULL);
	}
	return err;
}

static void subtest_listener_options(void)
{
	struct echo_http_resp resp;
	struct echo_proc srv;
	unsigned short p1, p2;

	if (!ASSERT_OK(start_fixed_ports(&srv, &p1, &p2), "start with --port/--tls/--grpc/--udp"))
		return;
	ASSERT_EQ(srv.nr_ports, 3, "listeners (duplicate port listened on once)");
	ASSERT_EQ(echo_proc_port(&srv, "http", 0), p1, "http port");
	ASSERT_EQ(echo_proc_port(&srv, "http", 1), p2, "grpc port served as http");
	ASSERT_EQ(echo_proc_port(&srv, "udp", 0), p1, "udp port");
	/* Identity comes from the (cleared) environment: empty strings. */
	if (ASSERT_OK(echo_http_once(p2, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &resp), "grpc port")) {
		ASSERT_HAS_SUBSTR(resp.body, "\"pod\": \"\"", "empty pod without POD_NAME");
		echo_resp_free(&resp);
	}
	echo_proc_stop(&srv);
}

static void subtest_bad_options(void)
{
	char bin[PATH_MAX], *out, *err;
	int status;
	const char *conflict[] = { bin, "serve", "--port=9", "--tcp=9", NULL };
	const char *bad_port[] = { bin, "serve", "--port=70000", NULL };
	const char *unknown[] = { bin, "serve", "--bogus", NULL };

	snprintf(bin, sizeof(bin), "%s", test_bin("echo"));
	if (ASSERT_OK(echo_run(conflict, &out, &err, &status, 5000), "run")) {
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit 2 on port clash");
		ASSERT_HAS_SUBSTR(err, "port 9", "error names the port");
	}
	free(out);
	free(err);
	if (ASSERT_OK(echo_run(bad_port, &out, &err, &status, 5000), "run")) {
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit 2 on bad port");
		ASSERT_HAS_SUBSTR(err, "--port=70000", "error names the option");
	}
	free(out);
	free(err);
	if (ASSERT_OK(echo_run(unknown, &out, &err, &status, 5000), "run"))
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit 2 on unknown option");
	free(out);
	free(err);
}

/* SIGTERM and SIGINT both end the server cleanly, ready file removed. */
static void subtest_signals(void)
{
	static const int signals[] = { SIGTERM, SIGINT };
	const char *args[] = { "--port=0", NULL };

	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		struct echo_proc srv;
		char ready[sizeof(srv.ready)];
		int status;

		if (!ASSERT_OK(echo_proc_start(&srv, args, NULL), "start"))
			return;
		snprintf(ready, sizeof(ready), "%s", srv.ready);
		/* Stop by hand (not echo_proc_stop) to see how it exits. */
		kill(srv.pid, signals[i]);
		ASSERT_EQ(waitpid(srv.pid, &status, 0), srv.pid, "reaped");
		srv.pid = 0;
		if (!ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, strsignal(signals[i])))
			test__printf("wait status 0x%x\n", status);
		ASSERT_NEQ(access(ready, F_OK), 0, "ready file removed on exit");
		echo_proc_stop(&srv);
	}
}

/* No listener flag: HTTP on 8080 (checked in a private netns, 8080 may be taken here). */
static void subtest_default_port(void)
{
	const char *args[] = { "--pod", "p", NULL };
	struct echo_proc srv;
	int err = echo_proc_start_netns(&srv, args);

	if (err == -EPERM) {
		test__skip("no permission to create a network namespace");
		return;
	}
	if (!ASSERT_OK(err, "start in a new netns"))
		return;
	ASSERT_EQ(srv.nr_ports, 1, "one listener");
	ASSERT_EQ(echo_proc_port(&srv, "http", 0), 8080, "default --port=8080");
	echo_proc_stop(&srv);
}

void test_echo_transport(void)
{
	struct echo_proc srv;
	unsigned short port;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	port = echo_proc_port(&srv, "http", 0);
	if (test__start_subtest("ipv6"))
		subtest_ipv6(port);
	if (test__start_subtest("many_connections"))
		subtest_many_connections(port);
	echo_proc_stop(&srv);
	if (test__start_subtest("listener_options"))
		subtest_listener_options();
	if (test__start_subtest("bad_options"))
		subtest_bad_options();
	if (test__start_subtest("signals"))
		subtest_signals();
	if (test__start_subtest("default_port"))
		subtest_default_port();
}

/* ---- TCP line protocol and UDP -------------------------------------------- */

static int read_line(struct echo_reader *r, char *line, size_t size)
{
	for (;;) {
		char *nl = r->buf ? memchr(r->buf, '\n', r->len) : NULL;
		char tmp[4096];
		ssize_t n;

		if (nl) {
			size_t len = nl - r->buf;

			snprintf(line, size, "%.*s", (int)len, r->buf);
			memmove(r->buf, nl + 1, r->len - len - 1);
			r->len -= len + 1;
			return 0;
		}
		n = recv(r->fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		r->buf = realloc(r->buf, r->len + n + 1);
		if (!r->buf)
			return -ENOMEM;
		memcpy(r->buf + r->len, tmp, n);
		r->len += n;
	}
}

static void expect_line(struct echo_reader *r, const char *want, const char *what)
{
	char line[1024];

	if (ASSERT_OK(read_line(r, line, sizeof(line)), what))
		ASSERT_STREQ(line, want, what);
}

static void subtest_tcp_lines(unsigned short port)
{
	struct echo_reader r = { 0 };
	char want[512];

	r.fd = echo_connect(AF_INET, port);
	if (!ASSERT_GE(r.fd, 0, "connect"))
		return;
	expect_line(&r, "Gateway API Test TCP Server", "greeting");
	ASSERT_OK(echo_send_str(r.fd, "TEST\nPING\r\nIS_TLS\nhello \"world\"\n"), "send");
	snprintf(want, sizeof(want), "{\"namespace\":\"" NS "\",\"ingress\":\"ing-1\","
		 "\"service\":\"echo-v1\",\"pod\":\"" POD "\",\"tcpport\":\"%u\"}", port);
	expect_line(&r, want, "TEST");
	expect_line(&r, "PONG", "PING (CRLF)");
	expect_line(&r, "false", "IS_TLS");
	expect_line(&r, "hello \"world\"", "echo");
	/* A last line without "\n" still counts when the client stops sending. */
	ASSERT_OK(echo_send_str(r.fd, "PING"), "send unterminated");
	shutdown(r.fd, SHUT_WR);
	expect_line(&r, "PONG", "unterminated PING");
	ASSERT_OK(echo_wait_closed(r.fd), "closed");
	close(r.fd);
	echo_reader_free(&r);
}

static void subtest_udp(unsigned short port, int family)
{
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { 5, 0 };
	char reply[1024], want[512];
	socklen_t len;
	ssize_t n;
	int fd;

	len = echo_loopback_addr(family, port, &ss);
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_GE(fd, 0, "socket"))
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		if (family == AF_INET6)
			test__skip("no IPv6 loopback");
		else
			ASSERT_OK(-errno, "connect");
		close(fd);
		return;
	}
	ASSERT_EQ(send(fd, "hi \"you\"\n", 9, 0), 9, "send datagram");
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	if (ASSERT_GT(n, 0, "reply datagram")) {
		reply[n] = '\0';
		snprintf(want, sizeof(want), "{\"request\":\"hi \\\"you\\\"\\n\",\"namespace\":\"" NS
			 "\",\"ingress\":\"ing-1\",\"service\":\"echo-v1\",\"pod\":\"" POD "\"}");
		ASSERT_STREQ(reply, want, "reply");
	}
	close(fd);
}

void test_echo_tcp_udp(void)
{
	struct echo_proc srv;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	if (test__start_subtest("tcp_lines"))
		subtest_tcp_lines(echo_proc_port(&srv, "tcp", 0));
	if (test__start_subtest("udp"))
		subtest_udp(echo_proc_port(&srv, "udp", 0), AF_INET);
	if (test__start_subtest("udp_ipv6"))
		subtest_udp(echo_proc_port(&srv, "udp", 0), AF_INET6);
	echo_proc_stop(&srv);
}

/* ---- the client ------------------------------------------------------------ */

struct run_result {
	char *out, *err;
	int status;
	bool ran;
};

/* Run `echo client ARGS...` (NULL-terminated) with a 10 s limit. */
static struct run_result run_client(const char *first, ...)
{
	const char *argv[32];
	char bin[PATH_MAX];
	struct run_result res = { 0 };
	va_list ap;
	int n = 0;

	snprintf(bin, sizeof(bin), "%s", test_bin("echo"));
	argv[n++] = bin;
	argv[n++] = "client";
	va_start(ap, first);
	for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	res.ran = ASSERT_OK(echo_run(argv, &res.out, &res.err, &res.status, 10000), "run client");
	if (res.ran)
		test__printf("client stdout:\n%s\nclient stderr:\n%s\n", res.out, res.err);
	return res;
}

static bool exited_with(const struct run_result *res, int code)
{
	return res->ran && WIFEXITED(res->status) && WEXITSTATUS(res->status) == code;
}

static void free_result(struct run_result *res)
{
	free(res->out);
	free(res->err);
}

static void subtest_client_single(unsigned short port)
{
	char url[128], *body;
	struct run_result res;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/single?x=1", port);
	res = run_client(url, "-H", "X-Test:yes", "-H", "x-multi: a", "--method=PUT", NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	if (!res.out)
		goto out;
	ASSERT_TRUE(!strncmp(res.out, "StatusCode=200\n", 15), "StatusCode first");
	ASSERT_HAS_SUBSTR(res.out, "\nResponseHeader=Content-Type:application/json\n", "ResponseHeader");
	ASSERT_HAS_SUBSTR(res.out, "\nResponseHeader=X-Content-Type-Options:nosniff\n", "ResponseHeader");
	ASSERT_HAS_SUBSTR(res.out, "\nMethod=PUT\n", "Method");
	ASSERT_HAS_SUBSTR(res.out, "\nURL=/single?x=1\n", "URL");
	ASSERT_HAS_SUBSTR(res.out, "\nRequestHeader=X-Test:yes\n", "RequestHeader");
	ASSERT_HAS_SUBSTR(res.out, "\nRequestHeader=X-Multi:a\n", "RequestHeader, canonical name");
	ASSERT_HAS_SUBSTR(res.out, "\nHostname=" POD "\n\n{\n", "Hostname, blank line, body");
	body = strstr(res.out, "\n\n{");
	if (ASSERT_OK_PTR(body, "body"))
		ASSERT_HAS_SUBSTR(body, "\"path\": \"/single?x=1\"", "body printed");
out:
	free_result(&res);
}

static void subtest_client_status(unsigned short port)
{
	char url[128];
	struct run_result res;

	/* Any response is a success for the client; the status is for the caller. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/status/503", port);
	res = run_client(url, NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0 on 503");
	if (res.out) {
		ASSERT_TRUE(!strncmp(res.out, "StatusCode=503\n", 15), "StatusCode=503");
		ASSERT_FALSE(strstr(res.out, "Hostname="), "no Hostname without an echo body");
	}
	free_result(&res);
}

static void subtest_client_host(unsigned short port)
{
	char connect_to[64];
	struct run_result res;

	/* The URL host does not resolve: --connect-to decides where to go. */
	snprintf(connect_to, sizeof(connect_to), "--connect-to=127.0.0.1:%u", port);
	res = run_client("http://echo-v1.invalid:8080/h", connect_to, NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	ASSERT_HAS_SUBSTR(res.out, "\nHost=echo-v1.invalid:8080\n", "Host from the URL");
	free_result(&res);

	res = run_client("http://echo-v1.invalid/h", connect_to, "-H", "Host:svc.example", NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	ASSERT_HAS_SUBSTR(res.out, "\nHost=svc.example\n", "-H Host overrides");
	ASSERT_FALSE(res.out && strstr(res.out, "RequestHeader=Host"), "Host is not an extra header");
	free_result(&res);
}

static void subtest_client_count(const struct echo_proc *srv, unsigned short port)
{
	int before = echo_proc_log_count(srv, "http: connection from");
	char url[128];
	struct run_result res;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/count", port);
	res = run_client(url, "--count=20", NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	ASSERT_STREQ(res.out, "pod=" POD " count=20\nstatus=200 count=20\nerrors=0\n", "distribution");
	/* Keep-alive: the twenty requests shared one connection. */
	ASSERT_EQ(echo_proc_log_count(srv, "http: connection from") - before, 1, "connections");
	free_result(&res);

	before = echo_proc_log_count(srv, "http: connection from");
	res = run_client(url, "--count=5", "--new-conn", "--json", NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	ASSERT_STREQ(res.out, "{\"total\":5,\"errors\":0,\"pods\":{\"" POD "\":5},"
			      "\"status\":{\"200\":5}}\n", "JSON distribution");
	ASSERT_EQ(echo_proc_log_count(srv, "http: connection from") - before, 5,
		  "--new-conn: one connection per request");
	free_result(&res);

	/* A server closing after every response: the client reconnects. */
	res = run_client(url, "--count=3", "-H", "Connection:close", NULL);
	ASSERT_TRUE(exited_with(&res, 0), "exit 0");
	ASSERT_HAS_SUBSTR(res.out, " count=3\nstatus=200 count=3\nerrors=0\n", "all answered");
	free_result(&res);
}

static void subtest_client_errors(void)
{
	unsigned short closed = echo_free_port(SOCK_STREAM);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	char url[128], arg[64];
	struct run_result res;
	int silent;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", closed);
	res = run_client(url, NULL);
	ASSERT_TRUE(exited_with(&res, 1), "exit 1 when refused");
	ASSERT_HAS_SUBSTR(res.err, "Connection refused", "says why");
	ASSERT_STREQ(res.out, "", "nothing on stdout");
	free_result(&res);

	res = run_client(url, "--count=3", NULL);
	ASSERT_TRUE(exited_with(&res, 1), "count mode: exit 1 on errors");
	ASSERT_STREQ(res.out, "errors=3\n", "count mode: errors counted");
	free_result(&res);

	/* A listener that never answers: the client gives up at --timeout. */
	silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_GE(silent, 0, "socket"))
		return;
	if (ASSERT_OK(bind(silent, (struct sockaddr *)&sin, sizeof(sin)), "bind") &&
	    ASSERT_OK(listen(silent, 8), "listen") &&
	    ASSERT_OK(getsockname(silent, (struct sockaddr *)&sin, &len), "getsockname")) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(sin.sin_port));
		res = run_client(url, "--timeout=0.3", NULL);
		ASSERT_TRUE(exited_with(&res, 1), "exit 1 on timeout");
		ASSERT_HAS_SUBSTR(res.err, "timed out", "says it timed out");
		free_result(&res);
	}
	close(silent);

	res = run_client("https://127.0.0.1/", NULL);
	ASSERT_TRUE(exited_with(&res, 2), "exit 2 for an https URL");
	ASSERT_HAS_SUBSTR(res.err, "only http://", "says what is supported");
	free_result(&res);

	snprintf(arg, sizeof(arg), "127.0.0.1:%u", echo_free_port(SOCK_DGRAM));
	res = run_client("--udp", arg, "--timeout=2", NULL);
	ASSERT_TRUE(exited_with(&res, 1), "exit 1: no UDP listener");
	ASSERT_HAS_SUBSTR(res.err, "refused", "ICMP port unreachable reported");
	free_result(&res);
}

static void subtest_client_streams(unsigned short tcp_port, unsigned short udp_port)
{
	char arg[64], want[512];
	struct run_result res;

	snprintf(arg, sizeof(arg), "127.0.0.1:%u", tcp_port);
	res = run_client("--tcp", arg, NULL);
	ASSERT_TRUE(exited_with(&res, 0), "tcp: exit 0");
	snprintf(want, sizeof(want), "Peer=127.0.0.1:%u\n{\"namespace\":\"" NS "\",\"ingress\":"
		 "\"ing-1\",\"service\":\"echo-v1\",\"pod\":\"" POD "\",\"tcpport\":\"%u\"}\n",
		 tcp_port, tcp_port);
	ASSERT_STREQ(res.out, want, "tcp: Peer and TEST reply");
	free_result(&res);

	res = run_client("--tcp", arg, "--send", "PING", NULL);
	snprintf(want, sizeof(want), "Peer=127.0.0.1:%u\nPONG\n", tcp_port);
	ASSERT_STREQ(res.out, want, "tcp: PING");
	free_result(&res);

	snprintf(arg, sizeof(arg), "[::1]:%u", udp_port);
	res = run_client("--udp", arg, "--send", "ping", NULL);
	if (exited_with(&res, 0)) {
		snprintf(want, sizeof(want), "Peer=[::1]:%u\n{\"request\":\"ping\",\"namespace\":\""
			 NS "\",\"ingress\":\"ing-1\",\"service\":\"echo-v1\",\"pod\":\"" POD "\"}\n",
			 udp_port);
		ASSERT_STREQ(res.out, want, "udp over IPv6: Peer and reply");
	} else {
		ASSERT_HAS_SUBSTR(res.err, "Cannot assign requested address", "udp: only IPv6 may be missing");
	}
	free_result(&res);
}

void test_echo_client(void)
{
	struct echo_proc srv;
	unsigned short port;

	if (!ASSERT_OK(echo_proc_start(&srv, server_args, server_env), "start echo serve"))
		return;
	port = echo_proc_port(&srv, "http", 0);
	if (test__start_subtest("single"))
		subtest_client_single(port);
	if (test__start_subtest("status"))
		subtest_client_status(port);
	if (test__start_subtest("host_and_connect_to"))
		subtest_client_host(port);
	if (test__start_subtest("count"))
		subtest_client_count(&srv, port);
	if (test__start_subtest("errors"))
		subtest_client_errors();
	if (test__start_subtest("tcp_udp"))
		subtest_client_streams(echo_proc_port(&srv, "tcp", 0), echo_proc_port(&srv, "udp", 0));
	echo_proc_stop(&srv);
}
