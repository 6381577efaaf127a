// SPDX-License-Identifier: Apache-2.0
/* The YAML access layer every manifest reader stands on. */
#include "base/diag.h"
#include "input/yaml_doc.h"
#include <limits.h>

#include "test_progs.h"

static const char multi_doc[] =
	"---\n"
	"kind: Service\n"
	"metadata:\n"
	"  name: echo\n"
	"spec:\n"
	"  ports:\n"
	"    - port: 80\n"
	"      name: http\n"
	"    - port: \"90\"\n"
	"  flag: true\n"
	"  nothing: null\n"
	"---\n"
	"---\n"
	"{\"kind\": \"Namespace\", \"metadata\": {\"name\": \"json\"}}\n";

static void subtest_multi_doc(void)
{
	struct ydoc_error err = {};
	struct ydoc_set set;
	yaml_node_t *ports, *spec;
	const char *s = NULL;
	long long port = 0;
	bool flag = false;

	if (!ASSERT_OK(ydoc_load_buf("t.yaml", multi_doc, sizeof(multi_doc) - 1, &set, &err),
		       "load"))
		return;
	/* The empty middle document is skipped; JSON is read as YAML. */
	ASSERT_EQ(set.nr_docs, 2, "nr_docs");
	ASSERT_OK(yget_str(&set.docs[0], set.docs[0].root, "kind", &s), "kind");
	ASSERT_STREQ(s, "Service", "kind value");
	ASSERT_STREQ(ynode_str(ymap_path(&set.docs[0], set.docs[0].root, "metadata.name")),
		     "echo", "dotted path");
	ASSERT_OK(yget_map(&set.docs[0], set.docs[0].root, "spec", &spec), "spec");
	ASSERT_OK(yget_seq(&set.docs[0], spec, "ports", &ports), "ports");
	ASSERT_EQ(yseq_len(ports), 2, "ports len");
	ASSERT_OK(yget_int(&set.docs[0], yseq_at(&set.docs[0], ports, 0), "port", 1, 65535,
			   &port), "port");
	ASSERT_EQ(port, 80, "port value");
	ASSERT_EQ(ynode_line(yseq_at(&set.docs[0], ports, 1)), 9, "line of second port");
	/* A quoted number is a string, as the API server sees it. */
	ASSERT_EQ(yget_int(&set.docs[0], yseq_at(&set.docs[0], ports, 1), "port", 1, 65535,
			   &port), -EINVAL, "quoted port");
	ASSERT_OK(yget_bool(&set.docs[0], spec, "flag", &flag), "flag");
	ASSERT_TRUE(flag, "flag value");
	ASSERT_EQ(yget_str(&set.docs[0], spec, "nothing", &s), -ENOENT, "null is absent");
	ASSERT_EQ(yget_str(&set.docs[0], spec, "missing", &s), -ENOENT, "missing");
	ASSERT_EQ(yget_str(&set.docs[0], spec, "ports", &s), -EINVAL, "seq is not a string");
	ASSERT_STREQ(ynode_str(ymap_path(&set.docs[1], set.docs[1].root, "metadata.name")),
		     "json", "json doc");
	ydoc_set_free(&set);
}

static void subtest_int_range(void)
{
	long long v;

	ASSERT_OK(yparse_int("65535", 1, 65535, &v), "max");
	ASSERT_EQ(yparse_int("65536", 1, 65535, &v), -EINVAL, "over max");
	ASSERT_EQ(yparse_int("0", 1, 65535, &v), -EINVAL, "under min");
	ASSERT_EQ(yparse_int("12ab", 0, 100, &v), -EINVAL, "trailing junk");
	ASSERT_EQ(yparse_int("", 0, 100, &v), -EINVAL, "empty");
	ASSERT_EQ(yparse_int("99999999999999999999", 0, 100, &v), -EINVAL, "overflow");
	/* YAML 1.1, as Kubernetes reads YAML; JSON has only decimals. */
	ASSERT_OK(yparse_int("010", 0, 100, &v), "octal");
	ASSERT_EQ(v, 8, "010 is 8");
	ASSERT_OK(yparse_int("0x1F", 0, 100, &v), "hex");
	ASSERT_EQ(v, 31, "0x1F");
	ASSERT_OK(yparse_int("0b101", 0, 100, &v), "binary");
	ASSERT_EQ(v, 5, "0b101");
	ASSERT_OK(yparse_int("1_0", 0, 100, &v), "underscore");
	ASSERT_EQ(v, 10, "1_0");
	ASSERT_OK(yparse_int("-9223372036854775808", LLONG_MIN, 0, &v), "min");
	ASSERT_EQ(yparse_int("08", 0, 100, &v), -EINVAL, "8 is no octal digit");
	ASSERT_EQ(yparse_int("0x", 0, 100, &v), -EINVAL, "no digits");
	ASSERT_EQ(yparse_json_int("010", 0, 100, &v), -EINVAL, "JSON: no leading zero");
	ASSERT_EQ(yparse_json_int("0x10", 0, 100, &v), -EINVAL, "JSON: no hex");
	ASSERT_OK(yparse_json_int("0", 0, 100, &v), "JSON 0");
	ASSERT_OK(yparse_json_int("-5", -10, 100, &v), "JSON negative");
}

static void subtest_malformed(void)
{
	static const char bad[] = "a: 1\nb: [1, 2\nc: 3\n";
	struct ydoc_error err = {};
	struct ydoc_set set;

	ASSERT_EQ(ydoc_load_buf("bad.yaml", bad, sizeof(bad) - 1, &set, &err), -EINVAL,
		  "malformed rejected");
	ASSERT_HAS_SUBSTR(err.msg, "bad.yaml:", "error names the file");
	ASSERT_GE(err.line, 2, "error line");
	ASSERT_EQ(set.nr_docs, 0, "nothing kept");
}

static void subtest_missing_file(void)
{
	struct ydoc_error err = {};
	struct ydoc_set set;

	ASSERT_EQ(ydoc_load_file("/nonexistent/x.yaml", &set, &err), -ENOENT, "enoent");
	ASSERT_HAS_SUBSTR(err.msg, "/nonexistent/x.yaml", "error names the file");
}

static void subtest_diag(void)
{
	struct diag d = {};

	diag_report(&d, LOG_ERROR, "f.yaml", 12, "spec.ports[0].port", "must be %s", "1..65535");
	diag_report(&d, LOG_WARN, NULL, 0, NULL, "plain");
	ASSERT_EQ(d.nr, 2, "entries");
	ASSERT_EQ(d.nr_errors, 1, "errors counted");
	ASSERT_STREQ(d.entries[0].msg, "f.yaml:12: spec.ports[0].port: must be 1..65535", "format");
	ASSERT_STREQ(d.entries[1].msg, "plain", "no location");
	ASSERT_OK_PTR(diag_find(&d, "ports[0]"), "find");
	ASSERT_NULL(diag_find(&d, "nope"), "find none");
	diag_free(&d);
}

void test_yaml_doc(void)
{
	if (test__start_subtest("multi_doc"))
		subtest_multi_doc();
	if (test__start_subtest("int_range"))
		subtest_int_range();
	if (test__start_subtest("malformed"))
		subtest_malformed();
	if (test__start_subtest("missing_file"))
		subtest_missing_file();
	if (test__start_subtest("diag"))
		subtest_diag();
}
