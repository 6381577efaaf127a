/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel-selftest-style test harness (after tools/testing/selftests/bpf).
 *
 * A test is `void test_<name>(void)` in tests/prog_tests/<name>.c; the build
 * discovers it. ASSERT_* macros print the expression and both values on
 * failure and return false, so a test reads:
 *
 *	if (!ASSERT_OK(err, "attach"))
 *		goto cleanup;
 */
#ifndef GAMMAD_TEST_PROGS_H
#define GAMMAD_TEST_PROGS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

struct test_env {
	const char *build_dir;	/* where gammad, lab, echo, ... are built */
	const char *src_dir;	/* the repository checkout */
	const char *shared_dir;	/* ../shared (Gateway API data), may be NULL */
	int verbose;
};
extern struct test_env env;

/* Start a subtest; false means it is filtered out and must be skipped. */
bool test__start_subtest(const char *name);
/* Mark the current (sub)test skipped, with the reason printed in its line. */
void test__skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record a failure in the current (sub)test. */
void test__fail(void);
/* Print only when the test fails or -v is given. */
void test__printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Path of a built binary ("gammad", "lab", "echo") in a static buffer. */
const char *test_bin(const char *name);
/* Path of a file under the shared dir, or NULL when it is not there. */
const char *test_shared_path(const char *rel);
/* A file's whole text (malloc'ed, NUL-terminated), or NULL when it cannot be read. */
char *test_read_file(const char *path);
/* How often s occurs in the file (0 when it cannot be read). */
int test_file_count(const char *path, const char *s);

#define _CHECK(cond, tag, fmt, ...) ({					\
	bool ___ok = !(cond);						\
	if (!___ok) {							\
		test__fail();						\
		test__printf("%s:%d: FAIL %s: " fmt "\n",		\
			     __func__, __LINE__, tag, ##__VA_ARGS__);	\
	}								\
	___ok;								\
})

#define ASSERT_TRUE(a, name)						\
	_CHECK(!(a), name, "unexpected %s: got FALSE", #a)
#define ASSERT_FALSE(a, name)						\
	_CHECK((a), name, "unexpected %s: got TRUE", #a)

#define _ASSERT_CMP(a, b, op, name) ({					\
	long long ___a = (long long)(a), ___b = (long long)(b);	\
	_CHECK(!(___a op ___b), name,					\
	       "unexpected %s: actual %lld %s expected %lld",		\
	       #a " " #op " " #b, ___a, #op, ___b);			\
})
#define ASSERT_EQ(a, b, name) _ASSERT_CMP(a, b, ==, name)
#define ASSERT_NEQ(a, b, name) _ASSERT_CMP(a, b, !=, name)
#define ASSERT_LT(a, b, name) _ASSERT_CMP(a, b, <, name)
#define ASSERT_LE(a, b, name) _ASSERT_CMP(a, b, <=, name)
#define ASSERT_GT(a, b, name) _ASSERT_CMP(a, b, >, name)
#define ASSERT_GE(a, b, name) _ASSERT_CMP(a, b, >=, name)

#define ASSERT_STREQ(a, b, name) ({					\
	const char *___a = (a), *___b = (b);				\
	_CHECK(!___a || !___b || strcmp(___a, ___b), name,		\
	       "unexpected %s: actual '%s' != expected '%s'", #a,	\
	       ___a ? ___a : "(null)", ___b ? ___b : "(null)");	\
})
#define ASSERT_HAS_SUBSTR(str, sub, name) ({				\
	const char *___s = (str), *___sub = (sub);			\
	_CHECK(!___s || !strstr(___s, ___sub), name,			\
	       "'%s' not found in '%s'", ___sub, ___s ? ___s : "(null)"); \
})

#define ASSERT_OK(res, name) ({						\
	long long ___res = (long long)(res);				\
	_CHECK(___res != 0, name, "unexpected error: %lld (errno %d: %s)",\
	       ___res, errno, strerror(errno));				\
})
#define ASSERT_ERR(res, name) ({					\
	long long ___res = (long long)(res);				\
	_CHECK(___res >= 0, name, "unexpected success: %lld", ___res);	\
})
#define ASSERT_OK_PTR(ptr, name) ({					\
	const void *___p = (ptr);					\
	_CHECK(!___p, name, "unexpected NULL pointer (errno %d: %s)",	\
	       errno, strerror(errno));					\
})
#define ASSERT_NULL(ptr, name) ({					\
	const void *___p = (ptr);					\
	_CHECK(___p, name, "unexpected pointer %p, want NULL", ___p);	\
})

#endif
