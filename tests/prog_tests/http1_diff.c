// SPDX-License-Identifier: Apache-2.0
/*
 * gammad's HTTP/1.1 head parser against nodejs' http_parser on generated
 * requests (tests/lib/http1_ref.h says what agreeing means): heads built
 * from pieces real clients send and pieces smugglers send, then mutated a
 * byte at a time. Also the fuzz corpus of fuzz_http1, so an input the
 * fuzzer found stays a case here.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http1_ref.h"
#include "test_progs.h"

#define GENERATED 20000

/* What clients send, and (one pick in eight) what they should not. */
static const char *const methods[] = {
	"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PURGE", "PROPFIND",
};
static const char *const bad_methods[] = { "CONNECT", "get", "G(T", "BREW", "" };
static const char *const targets[] = { "/", "/a/b?x=1&y=2", "*", "http://svc.ns:80/p", "/%7e/" };
static const char *const bad_targets[] = { "/a b", "/\x7f", "", "/caf\xc3\xa9" };
static const char *const versions[] = { "HTTP/1.1", "HTTP/1.1", "HTTP/1.0" };
static const char *const bad_versions[] = { "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/11" };
static const char *const fields[] = {
	"Host: svc", "Content-Length: 5", "Content-Length: 0", "content-length:  12 ",
	"Transfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked", "Connection: close",
	"Connection: keep-alive", "Connection: Upgrade", "Upgrade: websocket", "Expect: 100-continue",
	"X-Empty:", "X-Tab:\tv\t", "X-Utf8: caf\xc3\xa9", "end-user: jason", "Accept: */*",
};
static const char *const bad_fields[] = {
	"Host: other", "Content-Length: 5, 5", "Content-Length: -1", "Transfer-Encoding: chunked, gzip",
	"Transfer-Encoding: identity", "Expect: other", "X-Obs: a\r\n b", "Bad Name: v", "X-Ctl: a\x01b",
	":empty", "X-Sp : v",
};
static const char interesting[] = { ' ', '\t', '\r', '\n', ':', ',', '\0', '\x7f', (char)0x80, 'a', '0' };

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

#define NR(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(seed, good, bad) \
	(rnd(seed, 8) ? (good)[rnd(seed, NR(good))] : (bad)[rnd(seed, NR(bad))])

static size_t generate(unsigned int *seed, char *buf, size_t cap)
{
	size_t len = 0, nr = rnd(seed, 6);

	len += (size_t)snprintf(buf + len, cap - len, "%s%s %s %s\r\n", rnd(seed, 8) ? "" : "\r\n",
				PICK(seed, methods, bad_methods), PICK(seed, targets, bad_targets),
				PICK(seed, versions, bad_versions));
	/* HTTP/1.1 needs a Host: most heads have one */
	if (rnd(seed, 8))
		len += (size_t)snprintf(buf + len, cap - len, "Host: svc.ns\r\n");
	for (size_t i = 0; i < nr && len < cap - 128; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s\r\n", PICK(seed, fields, bad_fields));
	len += (size_t)snprintf(buf + len, cap - len, "\r\n%s", rnd(seed, 2) ? "hello" : "");
	/* one in five mutated: a byte replaced or inserted */
	for (unsigned int m = rnd(seed, 5) ? 0 : 1 + rnd(seed, 2); m && len; m--) {
		size_t at = rnd(seed, (unsigned int)len);

		if (rnd(seed, 2) && len < cap - 1) {
			memmove(buf + at + 1, buf + at, len - at);
			len++;
		}
		buf[at] = interesting[rnd(seed, NR(interesting))];
	}
	return len;
}

struct tally {
	unsigned int n[H1_REF_DISAGREE + 1];
	unsigned int shown;
};

static void check_one(struct tally *t, const char *buf, size_t len, const char *origin)
{
	char why[160];
	enum h1_ref_verdict v = h1_ref_compare(buf, len, why, sizeof(why));

	t->n[v]++;
	if (v == H1_REF_DISAGREE && t->shown++ < 40) {
		test__printf("%s: %s on:\n", origin, why);
		for (size_t i = 0; i < len && i < 300; i++)
			test__printf(buf[i] >= 0x20 && buf[i] < 0x7f ? "%c" : "\\x%02x",
				     (unsigned char)buf[i]);
		test__printf("\n");
	}
}

static void report(const struct tally *t)
{
	test__printf("both accept %u, both refuse %u, both incomplete %u, gammad stricter %u, "
		     "extension method %u, http_parser's prefix bug %u, disagree %u\n",
		     t->n[H1_REF_BOTH_ACCEPT], t->n[H1_REF_BOTH_REFUSE], t->n[H1_REF_BOTH_INCOMPLETE],
		     t->n[H1_REF_STRICTER], t->n[H1_REF_EXTENSION_METHOD], t->n[H1_REF_REFERENCE_BUG],
		     t->n[H1_REF_DISAGREE]);
}

static void test_generated(void)
{
	struct tally t = { 0 };
	unsigned int seed = 20261206;
	char buf[2048];

	for (int i = 0; i < GENERATED; i++) {
		size_t len = generate(&seed, buf, sizeof(buf));

		check_one(&t, buf, len, "generated");
	}
	report(&t);
	ASSERT_EQ(t.n[H1_REF_DISAGREE], 0, "no disagreement");
	/* the generator must reach every verdict, or it tests less than it claims */
	ASSERT_GT(t.n[H1_REF_BOTH_ACCEPT], GENERATED / 10, "many heads both accept");
	ASSERT_GT(t.n[H1_REF_BOTH_REFUSE], 0, "some both refuse");
	ASSERT_GT(t.n[H1_REF_STRICTER], 0, "some only gammad refuses");
	ASSERT_GT(t.n[H1_REF_EXTENSION_METHOD], 0, "some use a method only gammad knows");
}

static void test_corpus(void)
{
	char dir[512], path[1024], *buf = malloc(1 << 20);
	struct tally t = { 0 };
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/fuzz_http1", env.src_dir);
	d = opendir(dir);
	if (!ASSERT_OK_PTR(d, "corpus") || !ASSERT_OK_PTR(buf, "buffer"))
		goto out;
	while ((de = readdir(d))) {
		FILE *f;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		n = fread(buf, 1, 1 << 20, f);
		fclose(f);
		check_one(&t, buf, n, de->d_name);
	}
	report(&t);
	ASSERT_EQ(t.n[H1_REF_DISAGREE], 0, "no disagreement");
	ASSERT_GT(t.n[H1_REF_BOTH_ACCEPT], 0, "the corpus has accepted heads");
out:
	if (d)
		closedir(d);
	free(buf);
}

void test_http1_diff(void)
{
	if (test__start_subtest("generated"))
		test_generated();
	if (test__start_subtest("fuzz_corpus"))
		test_corpus();
}
