// SPDX-License-Identifier: Apache-2.0
/*
 * The Gateway API mesh conformance suite END TO END: every test of
 * conformance/mesh-expectations.yaml replayed in the lab through the real
 * agent (`gammad run --http-engine`), one lab and one agent for all of them.
 * Per test its route manifests replace the previous test's in the agent's
 * manifests dir (one file, so one apply), then each case's request is sent
 * by `echo client` run inside the case's client pod (lab exec), so the
 * pod's connect() goes through the agent's hooks and the HTTP engine. The
 * lab has no DNS: the URL keeps the case's host (the Host header) and
 * --connect-to dials the Service's ClusterIP.
 *
 * Checked as the upstream mesh harness does (status code, backend pod
 * prefix by Hostname, request headers the backend saw, response headers,
 * weighted distributions with their tolerance and attempts, each case
 * repeated until 3 consecutive successes within the convergence time)
 * plus what it leaves out: the redirect Location (scheme, host, port,
 * path) and the rewritten path the backend saw.
 *
 * With GAMMAD_CONFORMANCE_OUT=DIR (`make conformance`) it writes
 * DIR/report.yaml, a Gateway API ConformanceReport for the MESH-HTTP and
 * MESH-GRPC profiles, and DIR/summary.txt, and every failure fails the test.
 * Without it (`make test`) the tests in known_failures[] only print theirs.
 * GAMMAD_CONFORMANCE_KERNEL_HTTP=1 (`make conformance KERNEL_HTTP=1`) runs
 * the agent with --kernel-http and reports how many requests the kernel
 * served (gammad_khst_v1) in the summary; KERNEL_HTTP=sk adds --sockmap
 * (same-node server sockets).
 */
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "test_progs.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_conf.h"
#include "khttp/khttp.h"

#define ROUTES_FILE "conformance-routes.yaml"
#define CONSECUTIVE_OK 3		/* harness RequiredConsecutiveSuccesses */
#define CONVERGE_MS_DEFAULT 30000	/* harness MaxTimeToConsistency */
#define RETRY_DELAY_US 1000000		/* harness: 1 s after a failed attempt */
#define CLIENT_TIMEOUT_S 5
#define MAX_HEADERS 64
#define WHY_LEN 768

/* The features gammad claims (a test needing another one is skipped). */
static const char *const supported_features[] = {
	"Mesh", "HTTPRoute", "GRPCRoute",
	"MeshClusterIPMatching", "MeshConsumerRoute", "MeshHTTPRouteRewritePath",
	"MeshHTTPRouteSchemeRedirect", "MeshHTTPRouteRedirectPort", "MeshHTTPRouteRedirectPath",
	"MeshHTTPRouteBackendRequestHeaderModification", "MeshHTTPRouteQueryParamMatching",
	"MeshHTTPRouteNamedRouteRule",
	"HTTPRouteResponseHeaderModification", "HTTPRouteParentRefPort",
	"HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode",
	"HTTPRoute308RedirectStatusCode",
	NULL
};

/* Mesh extended features (both profiles), then HTTPRoute's the mesh tests use. */
static const char *const mesh_extended[] = {
	"MeshClusterIPMatching", "MeshConsumerRoute", "MeshHTTPRouteRewritePath",
	"MeshHTTPRouteSchemeRedirect", "MeshHTTPRouteRedirectPort", "MeshHTTPRouteRedirectPath",
	"MeshHTTPRouteBackendRequestHeaderModification", "MeshHTTPRouteQueryParamMatching",
	"MeshHTTPRouteNamedRouteRule", NULL
};
static const char *const http_extended[] = {
	"HTTPRouteResponseHeaderModification", "HTTPRouteParentRefPort",
	"HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode",
	"HTTPRoute308RedirectStatusCode", NULL
};

/*
 * Tests that fail for a known reason in `make test` (the reason is printed,
 * nothing asserted); `make conformance` asserts them like any other.
 */
static const struct known_failure {
	const char *test, *reason;
} known_failures[] = {
	{ NULL, NULL }
};

enum outcome { OUT_PASS, OUT_FAIL, OUT_SKIP };

struct test_result {
	const char *name;
	const yaml_node_t *node;
	enum outcome out;
	char why[WHY_LEN];
};

struct conf {
	struct lab_env lab;
	struct agent_env ag;
	const struct ydoc *d;
	const struct lab_pod_info *v1, *v2, *consumer;
	int converge_ms;
	const char *out_dir;		/* GAMMAD_CONFORMANCE_OUT, NULL: make test */
	bool kernel_http;		/* GAMMAD_CONFORMANCE_KERNEL_HTTP=1: gammad run --kernel-http */
	bool sockmap;			/* ...=sk: and --sockmap (same-node server sockets) */
	uint64_t kh_served, kh_engine;	/* its decisions over the run */
	uint64_t kh_by[GAMMAD_KH_R_MAX];
	struct test_result res[MESH_CONF_TESTS];
	size_t nr_res;
};

/* What `echo client` printed for one request (the lines before the body). */
struct echo_resp {
	int status;
	char hostname[256], url[1024];
	struct echo_hdr { char name[128], value[512]; } req[MAX_HEADERS], resp[MAX_HEADERS];
	size_t nr_req, nr_resp;
};

static bool feature_supported(const char *f)
{
	for (size_t i = 0; supported_features[i]; i++)
		if (!strcmp(supported_features[i], f))
			return true;
	return false;
}

static const char *known_failure(const char *test)
{
	for (size_t i = 0; known_failures[i].test; i++)
		if (!strcmp(known_failures[i].test, test))
			return known_failures[i].reason;
	return NULL;
}

/* snprintf, cut silently: these strings are for messages and comparisons. */
static void __attribute__((format(printf, 3, 4))) sfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Say why in why (WHY_LEN bytes, cut if longer); false. */
static bool __attribute__((format(printf, 2, 3))) failf(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_LEN, fmt, ap);
	va_end(ap);
	return false;
}

static void add_hdr(struct echo_hdr *h, size_t *nr, const char *line)
{
	const char *colon = strchr(line, ':');

	if (!colon || *nr >= MAX_HEADERS)
		return;
	sfmt(h[*nr].name, sizeof(h[*nr].name), "%.*s", (int)(colon - line), line);
	sfmt(h[*nr].value, sizeof(h[*nr].value), "%s", colon + 1);
	(*nr)++;
}

/* The Key=Value lines up to the first blank line (then the echoed body). */
static void parse_echo(const char *out, struct echo_resp *r)
{
	char line[2048];

	memset(r, 0, sizeof(*r));
	r->status = -1;
	while (out && *out) {
		size_t n = strcspn(out, "\n");

		if (!n)
			break;
		snprintf(line, sizeof(line), "%.*s", (int)n, out);
		out += n + (out[n] == '\n');
		if (!strncmp(line, "StatusCode=", 11))
			r->status = atoi(line + 11);
		else if (!strncmp(line, "Hostname=", 9))
			sfmt(r->hostname, sizeof(r->hostname), "%s", line + 9);
		else if (!strncmp(line, "URL=", 4))
			sfmt(r->url, sizeof(r->url), "%s", line + 4);
		else if (!strncmp(line, "RequestHeader=", 14))
			add_hdr(r->req, &r->nr_req, line + 14);
		else if (!strncmp(line, "ResponseHeader=", 15))
			add_hdr(r->resp, &r->nr_resp, line + 15);
	}
}

/* Request headers: all values joined with ","; response headers: the last one wins. */
static bool hdr_value(const struct echo_hdr *h, size_t nr, const char *name, bool join,
		      char *buf, size_t len)
{
	size_t n = 0;
	bool found = false;

	buf[0] = 0;
	for (size_t i = 0; i < nr; i++) {
		if (strcasecmp(h[i].name, name))
			continue;
		if (join && found)
			n += snprintf(buf + n, n < len ? len - n : 0, ",%s", h[i].value);
		else
			n = snprintf(buf, len, "%s", h[i].value);
		found = true;
	}
	return found;
}

static bool check_headers(const struct ydoc *d, const yaml_node_t *expect, const char *key,
			  const char *absent_key, const struct echo_hdr *h, size_t nr, bool req,
			  char *why)
{
	yaml_node_t *map = ymap_get(d, expect, key), *absent = ymap_get(d, expect, absent_key);
	yaml_node_t *k, *v;
	char buf[1024];

	/* The harness: expected request headers need a non-empty capture. */
	if (req && map && !nr)
		return failf(why, "the backend saw no request headers");
	ymap_for_each(d, map, k, v) {
		if (!hdr_value(h, nr, ynode_str(k), req, buf, sizeof(buf)) ||
		    strcmp(buf, ynode_str(v)))
			return failf(why, "%s header %s: want \"%s\", got \"%s\"",
				     req ? "request" : "response", ynode_str(k), ynode_str(v), buf);
	}
	for (size_t i = 0; i < yseq_len(absent); i++) {
		const char *name = ynode_str(yseq_at(d, absent, i));

		if (hdr_value(h, nr, name, req, buf, sizeof(buf)))
			return failf(why, "%s header %s must be absent, got \"%s\"",
				     req ? "request" : "response", name, buf);
	}
	return true;
}

/* Location "scheme://host[:port]/path" against expect.redirect's parts. */
static bool check_redirect(const struct ydoc *d, const yaml_node_t *expect,
			   const struct echo_resp *r, char *why)
{
	yaml_node_t *rd = ymap_get(d, expect, "redirect");
	char loc[1024], scheme[16], host[256], port[8], path[1024];
	const char *s, *p, *hp;
	size_t hlen;

	if (!rd)
		return true;
	if (!hdr_value(r->resp, r->nr_resp, "Location", false, loc, sizeof(loc)))
		return failf(why, "redirect %d without a Location", r->status);
	p = strstr(loc, "://");
	if (!p)
		return failf(why, "Location \"%s\" is not absolute", loc);
	snprintf(scheme, sizeof(scheme), "%.*s", (int)(p - loc), loc);
	hp = p + 3;
	hlen = strcspn(hp, "/?");
	snprintf(path, sizeof(path), "%s", hp[hlen] ? hp + hlen : "/");
	snprintf(host, sizeof(host), "%.*s", (int)hlen, hp);
	/* An IPv6 literal keeps its brackets; the port follows the last ':'. */
	{
		char *colon = strrchr(host, ':');

		if (colon && !strchr(colon, ']')) {
			snprintf(port, sizeof(port), "%s", colon + 1);
			*colon = 0;
		} else {
			snprintf(port, sizeof(port), "%s", !strcmp(scheme, "https") ? "443" : "80");
		}
	}
	if ((s = mesh_conf_str(d, rd, "scheme")) && strcmp(scheme, s))
		return failf(why, "Location %s: scheme want %s", loc, s);
	if ((s = mesh_conf_str(d, rd, "host")) && strcmp(host, s))
		return failf(why, "Location %s: host want %s", loc, s);
	if ((s = mesh_conf_str(d, rd, "port")) && strcmp(port, s))
		return failf(why, "Location %s: port want %s", loc, s);
	if ((s = mesh_conf_str(d, rd, "path")) && strcmp(path, s))
		return failf(why, "Location %s: path want %s", loc, s);
	return true;
}

static bool check_resp(const struct ydoc *d, const char *test, const yaml_node_t *c,
		       const struct echo_resp *r, char *why)
{
	yaml_node_t *expect = ymap_get(d, c, "expect");
	const char *backend = mesh_conf_str(d, expect, "backend");
	const char *path = mesh_conf_str(d, expect, "backend_request.path");

	if (!mesh_conf_status_expected(d, expect, r->status))
		return failf(why, "status %d", r->status);
	if (!check_headers(d, ymap_get(d, expect, "backend_request") ?: expect, "headers",
			   "absent_headers", r->req, r->nr_req, true, why) ||
	    !check_headers(d, expect, "response_headers", "absent_response_headers",
			   r->resp, r->nr_resp, false, why))
		return false;
	if (backend && strncmp(r->hostname, backend, strlen(backend)))
		return failf(why, "backend: want %s*, got \"%s\"", backend, r->hostname);
	/* Beyond the mesh harness: the rewritten path and the redirect's Location. */
	if (path && r->status == 200 &&
	    !mesh_conf_skip_path_check(test, mesh_conf_int(d, c, "index")) && strcmp(r->url, path))
		return failf(why, "backend saw path \"%s\", want \"%s\"", r->url, path);
	if (r->status >= 300 && r->status <= 399)
		return check_redirect(d, expect, r, why);
	return true;
}

static const struct lab_pod_info *client_pod(struct conf *cf, const char *client)
{
	if (!strcmp(client, "consumer_echo_v1"))
		return cf->consumer;
	if (!strcmp(client, "mesh_echo_v2"))
		return cf->v2;
	return cf->v1;
}

/* Characters that could leave the double quotes of the in-pod shell line. */
static bool shell_safe(const char *s)
{
	return !strpbrk(s, "\"'`$\\\n");
}

/*
 * The `echo client` command line for a case (without --count): its URL (a
 * pod IP host substituted), method, headers, and --connect-to the ClusterIP.
 */
static bool case_command(struct conf *cf, const yaml_node_t *req, const char *client_ns,
			 char *cmd, size_t len, char *why)
{
	const struct ydoc *d = cf->d;
	const char *url = mesh_conf_str(d, req, "client_url"), *method = mesh_conf_str(d, req, "method");
	struct mesh_conf_target t;
	char ips[4][INET6_ADDRSTRLEN], real_url[1024], connect[INET6_ADDRSTRLEN + 32] = "";
	yaml_node_t *k, *v;
	size_t n;
	int nr;

	mesh_conf_case_target(d, req, client_ns, &t);
	if (t.pod) {
		const struct lab_pod_info *pod = lab_env_find(&cf->lab, MESH_NS, t.svc);
		const char *lt = strchr(url, '<'), *gt = strchr(url, '>');

		if (!pod || !lt || !gt)
			return failf(why, "no pod for host %s", url);
		snprintf(real_url, sizeof(real_url), "%.*s%s%s", (int)(lt - url), url, pod->ip4,
			 gt + 1);
	} else {
		nr = lab_env_cluster_ips(&cf->lab, t.ns, t.svc, ips, 4);
		for (int i = 0; i < nr && !connect[0]; i++)
			if (!strchr(ips[i], ':'))
				sfmt(connect, sizeof(connect), " --connect-to=%s:%u", ips[i],
					 t.port);
		if (!connect[0])
			return failf(why, "no IPv4 ClusterIP for Service %s/%s", t.ns, t.svc);
		snprintf(real_url, sizeof(real_url), "%s", url);
	}
	if (!shell_safe(real_url))
		return failf(why, "URL %s not quotable", real_url);
	n = (size_t)snprintf(cmd, len, "%s client \"%s\" --timeout=%d%s", test_bin("echo"),
			     real_url, CLIENT_TIMEOUT_S, connect);
	if (method && n < len)
		n += (size_t)snprintf(cmd + n, len - n, " --method=%s", method);
	ymap_for_each(d, ymap_get(d, req, "headers"), k, v) {
		if (!shell_safe(ynode_str(k)) || !shell_safe(ynode_str(v)))
			return failf(why, "header %s not quotable", ynode_str(k));
		if (n < len)
			n += (size_t)snprintf(cmd + n, len - n, " -H \"%s:%s\"", ynode_str(k),
					      ynode_str(v));
	}
	return n < len ? true : failf(why, "command too long");
}

/* One attempt of a case; seen: what came back, for the log. */
static bool attempt(struct conf *cf, const char *test, const yaml_node_t *c,
		    const struct lab_pod_info *pod, const char *cmd, char *why, char *seen)
{
	struct echo_resp r;
	char *out = NULL, loc[512] = "";
	int ret = lab_env_exec(&cf->lab, pod, &out, "%s", cmd);
	bool ok;

	parse_echo(out, &r);
	hdr_value(r.resp, r.nr_resp, "Location", false, loc, sizeof(loc));
	sfmt(seen, WHY_LEN, "%d %s%s%s%s%s", r.status, r.hostname[0] ? r.hostname : "-",
	     r.url[0] ? " path " : "", r.url, loc[0] ? " Location " : "", loc);
	if (ret && r.status < 0) {
		ok = failf(why, "client exit %d: %.300s", ret, out ? out : "");
	} else {
		ok = check_resp(cf->d, test, c, &r, why);
	}
	free(out);
	return ok;
}

/* The harness's eventual consistency: CONSECUTIVE_OK passes in a row in time. */
static bool run_case(struct conf *cf, const yaml_node_t *test, const yaml_node_t *c, char *why)
{
	const struct ydoc *d = cf->d;
	const char *name = mesh_conf_str(d, test, "shortName");
	const char *client = mesh_conf_case_client(d, test, c);
	const struct lab_pod_info *pod = client_pod(cf, client);
	int64_t deadline = mono_us() + (int64_t)cf->converge_ms * 1000;
	char cmd[4096], seen[WHY_LEN];
	int ok = 0;

	if (!case_command(cf, ymap_get(d, c, "request"), mesh_conf_client_ns(client), cmd,
			  sizeof(cmd), why))
		return false;
	for (;;) {
		if (attempt(cf, name, c, pod, cmd, why, seen)) {
			if (++ok < CONSECUTIVE_OK)
				continue;
			test__printf("  %s: %s\n    -> %s\n", client, cmd, seen);
			return true;
		}
		ok = 0;
		if (mono_us() + RETRY_DELAY_US > deadline)
			return false;
		usleep(RETRY_DELAY_US);
	}
}

/* "echo-v1-5d8f7c9b6-abcde" -> "echo-v1" (the harness drops the last two parts). */
static void backend_of_pod(const char *pod, char *buf, size_t len)
{
	const char *last = strrchr(pod, '-'), *prev = NULL;

	for (const char *p = pod; last && p < last; p++)
		if (*p == '-')
			prev = p;
	if (prev)
		snprintf(buf, len, "%.*s", (int)(prev - pod), pod);
	else
		snprintf(buf, len, "%.*s", (int)len - 1, pod);
}

/* One batch: the harness's rules on {"pods":{name:count}} of `echo client --json`. */
static bool weight_batch(struct conf *cf, const yaml_node_t *wc, const char *out, long total,
			 char *why)
{
	const struct ydoc *d = cf->d;
	yaml_node_t *dist = ymap_get(d, wc, "expected_distribution"), *k, *v;
	double tol = strtod(mesh_conf_str(d, wc, "tolerance") ?: "0.05", NULL);
	const char *p = out ? strstr(out, "\"pods\":{") : NULL;
	struct { char name[128]; long n; } seen[16];
	size_t nr_seen = 0, want_backends = 0;
	long sum = 0;

	if (!p)
		return failf(why, "no pods in %.200s", out ? out : "");
	for (p += 8; *p == '"' && nr_seen < 16;) {
		const char *end = strchr(p + 1, '"');
		char pod[256], be[128];
		size_t i;

		if (!end || end[1] != ':')
			return failf(why, "bad pods in %.200s", out);
		snprintf(pod, sizeof(pod), "%.*s", (int)(end - p - 1), p + 1);
		backend_of_pod(pod, be, sizeof(be));
		if (!ymap_get(d, dist, be))
			return failf(why, "unexpected pod %s", pod);
		for (i = 0; i < nr_seen && strcmp(seen[i].name, be); i++)
			;
		if (i == nr_seen) {
			snprintf(seen[i].name, sizeof(seen[i].name), "%s", be);
			seen[nr_seen++].n = 0;
		}
		seen[i].n += strtol(end + 2, (char **)&p, 10);
		sum += strtol(end + 2, NULL, 10);
		if (*p == ',')
			p++;
	}
	if (sum != total)
		return failf(why, "%ld responses of %ld", sum, total);
	ymap_for_each(d, dist, k, v) {
		double want = strtod(ynode_str(v), NULL), got = 0;

		for (size_t i = 0; i < nr_seen; i++)
			if (!strcmp(seen[i].name, ynode_str(k)))
				got = (double)seen[i].n / (double)total;
		if (want > 0)
			want_backends++;
		if (want > 0 && got == 0)
			return failf(why, "%s got no request", ynode_str(k));
		if (fabs(got - want) > tol)
			return failf(why, "%s: %.3f of the requests, want %.3f +- %.2f",
				     ynode_str(k), got, want, tol);
	}
	if (nr_seen != want_backends)
		return failf(why, "%zu backends answered, want %zu", nr_seen, want_backends);
	return true;
}

static bool run_weight_check(struct conf *cf, const yaml_node_t *test, char *why)
{
	const struct ydoc *d = cf->d;
	yaml_node_t *wc = ymap_get(d, test, "weight_check");
	yaml_node_t *c0 = yseq_at(d, ymap_get(d, test, "cases"), 0);
	const char *client = mesh_conf_case_client(d, test, c0);
	long total = mesh_conf_int(d, wc, "requests"), attempts = mesh_conf_int(d, wc, "max_attempts");
	char cmd[4096];

	if (!wc)
		return true;
	if (!case_command(cf, ymap_get(d, c0, "request"), mesh_conf_client_ns(client), cmd,
			  sizeof(cmd), why))
		return false;
	for (long a = 0; a < attempts; a++) {
		char *out = NULL;

		lab_env_exec(&cf->lab, client_pod(cf, client), &out, "%s --count=%ld --json",
			     cmd, total);
		if (weight_batch(cf, wc, out, total, why)) {
			free(out);
			return true;
		}
		free(out);
	}
	return false;
}

/* The test's route manifests as one file, so swapping them is one apply. */
static char *test_routes(const struct ydoc *d, const yaml_node_t *test)
{
	yaml_node_t *manifests = ymap_get(d, test, "manifests");
	char *text = NULL, path[PATH_MAX];
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return NULL;
	/* The test's name keeps two tests with the same manifests two changes. */
	fprintf(out, "# %s\n", mesh_conf_str(d, test, "shortName"));
	for (size_t i = 0; i < yseq_len(manifests); i++) {
		FILE *f;
		char buf[4096];
		size_t n;

		snprintf(path, sizeof(path), "%s/%s/tests/mesh/%s", env.shared_dir, MESH_CONF_DIR,
			 ynode_str(yseq_at(d, manifests, i)));
		f = fopen(path, "re");
		if (!f) {
			fclose(out);
			free(text);
			return NULL;
		}
		fputs("\n---\n", out);
		while ((n = fread(buf, 1, sizeof(buf), f)))
			fwrite(buf, 1, n, out);
		fclose(f);
	}
	fclose(out);
	return text;
}

static void run_test(struct conf *cf, const yaml_node_t *test, struct test_result *tr)
{
	const struct ydoc *d = cf->d;
	yaml_node_t *features = ymap_get(d, test, "features"), *cases = ymap_get(d, test, "cases");
	const char *known = known_failure(tr->name);
	char why[WHY_LEN] = "";
	char *routes;
	bool ok = true;

	for (size_t i = 0; i < yseq_len(features); i++) {
		const char *f = ynode_str(yseq_at(d, features, i));

		if (!feature_supported(f)) {
			tr->out = OUT_SKIP;
			snprintf(tr->why, sizeof(tr->why), "feature %s not supported%s", f,
				 !strcmp(f, "GRPCRoute") ? " (gRPC needs HTTP/2)" : "");
			test__skip("%s", tr->why);
			return;
		}
	}
	routes = test_routes(d, test);
	if (!ASSERT_OK_PTR(routes, "read the test's manifests")) {
		tr->out = OUT_FAIL;
		snprintf(tr->why, sizeof(tr->why), "manifests unreadable");
		return;
	}
	if (!ASSERT_OK(agent_env_update(&cf->ag, ROUTES_FILE, routes), "agent applied the routes")) {
		free(routes);
		tr->out = OUT_FAIL;
		snprintf(tr->why, sizeof(tr->why), "the agent did not apply the routes");
		return;
	}
	free(routes);
	for (size_t i = 0; i < yseq_len(cases); i++) {
		const yaml_node_t *c = yseq_at(d, cases, i);
		char cwhy[WHY_LEN];

		if (run_case(cf, test, c, cwhy))
			continue;
		test__printf("  case %zu \"%s\": %s\n", i, mesh_conf_str(d, c, "name"), cwhy);
		if (ok)
			sfmt(why, sizeof(why), "case %zu: %s", i, cwhy);
		ok = false;
	}
	if (ok && !run_weight_check(cf, test, why)) {
		test__printf("  weight check: %s\n", why);
		ok = false;
	}
	tr->out = ok ? OUT_PASS : OUT_FAIL;
	sfmt(tr->why, sizeof(tr->why), "%s", why);
	if (ok)
		return;
	if (known && !cf->out_dir)
		test__printf("  KNOWN FAILURE (%s), not asserted in make test\n", known);
	else
		ASSERT_TRUE(ok, tr->name);
}

/* Lab up with the base manifests, the agent with the HTTP engine on. */
static bool conf_up(struct conf *cf)
{
	static const char *const args[] = { "--http-engine", NULL };
	static const char *const kargs[] = { "--http-engine", "--kernel-http", NULL };
	static const char *const skargs[] = { "--http-engine", "--kernel-http", "--sockmap", NULL };
	const char *base = test_shared_path(MESH_CONF_DIR "/mesh/manifests.yaml");

	if (!base) {
		test__skip("no %s/mesh/manifests.yaml", MESH_CONF_DIR);
		return false;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return false;
	}
	if (lab_env_start(&cf->lab, base))
		return false;
	cf->v1 = lab_env_find(&cf->lab, MESH_NS, "echo-v1");
	cf->v2 = lab_env_find(&cf->lab, MESH_NS, "echo-v2");
	cf->consumer = lab_env_find(&cf->lab, CONSUMER_NS, "echo-v1");
	if (!ASSERT_OK_PTR(cf->v1, "echo-v1 pod") || !ASSERT_OK_PTR(cf->v2, "echo-v2 pod") ||
	    !ASSERT_OK_PTR(cf->consumer, "consumer pod"))
		return false;
	if (!ASSERT_OK(agent_env_init(&cf->ag, &cf->lab), "agent manifests dir"))
		return false;
	cf->ag.args = cf->sockmap ? skargs : cf->kernel_http ? kargs : args;
	return ASSERT_OK(agent_env_start(&cf->ag), "gammad run --http-engine");
}

/* ---- the report ------------------------------------------------------------ */

struct profile {
	const char *name, *route;	/* "MESH-HTTP", "HTTPRoute" */
	const char *other_route;	/* a test with it is not in this profile */
};

static const struct profile profiles[] = {
	{ "MESH-HTTP", "HTTPRoute", "GRPCRoute" },
	{ "MESH-GRPC", "GRPCRoute", "HTTPRoute" },
};

struct stats {
	int passed, failed, skipped;
	const char *failed_names[MESH_CONF_TESTS], *skipped_names[MESH_CONF_TESTS];
};

static void count(struct stats *s, const struct test_result *r)
{
	if (r->out == OUT_PASS)
		s->passed++;
	else if (r->out == OUT_FAIL)
		s->failed_names[s->failed++] = r->name;
	else
		s->skipped_names[s->skipped++] = r->name;
}

static const char *result_of(const struct stats *s)
{
	if (s->failed)
		return "failure";
	if (s->skipped && !s->passed)
		return "skipped";
	return s->skipped ? "partial" : "success";
}

static void summary_part(FILE *f, const char *what, const struct stats *s)
{
	if (s->failed)
		fprintf(f, "%s tests failed with %d test failures.", what, s->failed);
	else if (s->skipped)
		fprintf(f, "%s tests partially succeeded with %d test skips.", what, s->skipped);
	else
		fprintf(f, "%s tests succeeded.", what);
}

static void stats_yaml(FILE *f, const struct stats *s)
{
	fprintf(f, "    result: %s\n    statistics:\n      Failed: %d\n      Passed: %d\n"
		"      Skipped: %d\n", result_of(s), s->failed, s->passed, s->skipped);
	if (s->failed) {
		fprintf(f, "    failedTests:\n");
		for (int i = 0; i < s->failed; i++)
			fprintf(f, "    - %s\n", s->failed_names[i]);
	}
	if (s->skipped) {
		fprintf(f, "    skippedTests:\n");
		for (int i = 0; i < s->skipped; i++)
			fprintf(f, "    - %s\n", s->skipped_names[i]);
	}
}

static void write_profile(FILE *f, const struct conf *cf, const struct profile *p)
{
	struct stats core = { 0 }, ext = { 0 };
	const char *const *lists[] = { mesh_extended, http_extended };

	for (size_t i = 0; i < cf->nr_res; i++) {
		const struct test_result *r = &cf->res[i];
		yaml_node_t *features = ymap_get(cf->d, r->node, "features");
		bool is_core = true;

		if (mesh_conf_has_feature(cf->d, r->node, p->other_route))
			continue;
		for (size_t j = 0; j < yseq_len(features); j++) {
			const char *ft = ynode_str(yseq_at(cf->d, features, j));

			if (strcmp(ft, "Mesh") && strcmp(ft, p->route))
				is_core = false;
		}
		count(is_core ? &core : &ext, r);
	}
	fprintf(f, "- name: %s\n  core:\n", p->name);
	stats_yaml(f, &core);
	fprintf(f, "  extended:\n");
	stats_yaml(f, &ext);
	fprintf(f, "    supportedFeatures:\n");
	for (size_t l = 0; l < 2; l++) {
		/* HTTPRoute's own extended features belong to the HTTP profile only. */
		if (l == 1 && strcmp(p->route, "HTTPRoute"))
			continue;
		for (size_t i = 0; lists[l][i]; i++)
			if (feature_supported(lists[l][i]))
				fprintf(f, "    - %s\n", lists[l][i]);
	}
	fprintf(f, "    unsupportedFeatures:");
	{
		bool any = false;

		for (size_t i = 0; mesh_extended[i]; i++)
			if (!feature_supported(mesh_extended[i])) {
				fprintf(f, "%s    - %s\n", any ? "" : "\n", mesh_extended[i]);
				any = true;
			}
		if (!any)
			fprintf(f, " []\n");
	}
	fprintf(f, "  summary: \"");
	if (!feature_supported(p->route))
		fprintf(f, "%s is not supported yet (gRPC needs HTTP/2); ", p->route);
	summary_part(f, "Core", &core);
	fputc(' ', f);
	summary_part(f, "Extended", &ext);
	fprintf(f, "\"\n");
}

static int write_report(const struct conf *cf)
{
	char path[PATH_MAX], date[64];
	const char *version = getenv("GAMMAD_CONFORMANCE_VERSION");
	const char *url = getenv("GAMMAD_CONFORMANCE_URL");
	const char *contact = getenv("GAMMAD_CONFORMANCE_CONTACT");
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;

	snprintf(path, sizeof(path), "%s/report.yaml", cf->out_dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "apiVersion: gateway.networking.k8s.io/v1\nkind: ConformanceReport\n"
		"date: \"%s\"\ngatewayAPIVersion: v1.6.1\ngatewayAPIChannel: experimental\n"
		"implementation:\n  organization: gammad\n  project: gammad\n"
		"  url: \"%s\"\n  version: \"%s\"\n  contact:%s%s%s\n"
		"mode: default\nprofiles:\n", date, url ? url : "",
		version && *version ? version : "dev",
		contact && *contact ? "\n  - \"" : " []", contact && *contact ? contact : "",
		contact && *contact ? "\"" : "");
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		write_profile(f, cf, &profiles[i]);
	return fclose(f) ? -errno : 0;
}

static const char *outcome_name(enum outcome o)
{
	return o == OUT_PASS ? "PASS" : o == OUT_FAIL ? "FAIL" : "SKIP";
}

static int write_summary(const struct conf *cf)
{
	char path[PATH_MAX];
	int passed = 0, failed = 0, skipped = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/summary.txt", cf->out_dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "Gateway API v1.6.1 mesh conformance, end to end (gammad run --http-engine%s)\n",
		cf->sockmap ? " --kernel-http --sockmap" : cf->kernel_http ? " --kernel-http" : "");
	for (size_t i = 0; i < cf->nr_res; i++) {
		const struct test_result *r = &cf->res[i];

		passed += r->out == OUT_PASS;
		failed += r->out == OUT_FAIL;
		skipped += r->out == OUT_SKIP;
		fprintf(f, "%s %s%s%s\n", outcome_name(r->out), r->name, r->why[0] ? ": " : "",
			r->why);
	}
	if (cf->kernel_http)
		fprintf(f, "kernel HTTP: %llu requests served in the kernel, %llu handed to the "
			"engine (%.1f%% in the kernel)\n", (unsigned long long)cf->kh_served,
			(unsigned long long)cf->kh_engine, cf->kh_served + cf->kh_engine ?
			100.0 * cf->kh_served / (cf->kh_served + cf->kh_engine) : 0.0);
	for (unsigned int r = 1; cf->kernel_http && r < GAMMAD_KH_R_MAX; r++)
		if (cf->kh_by[r] && r != GAMMAD_KH_R_MORE)
			fprintf(f, "  to the engine: %s: %llu\n", kh_reason_str(r),
				(unsigned long long)cf->kh_by[r]);
	fprintf(f, "report: %s/report.yaml\n%d passed, %d failed, %d skipped\n", cf->out_dir,
		passed, failed, skipped);
	return fclose(f) ? -errno : 0;
}

void test_conformance_mesh(void)
{
	const char *conv = getenv("GAMMAD_CONFORMANCE_CONVERGE_MS");
	struct conf cf = { .converge_ms = conv ? atoi(conv) : CONVERGE_MS_DEFAULT };
	struct ydoc_set set;
	yaml_node_t *tests;
	size_t nr_tests;

	cf.out_dir = getenv("GAMMAD_CONFORMANCE_OUT");
	if (cf.out_dir && !*cf.out_dir)
		cf.out_dir = NULL;
	cf.sockmap = getenv("GAMMAD_CONFORMANCE_KERNEL_HTTP") &&
		     !strcmp(getenv("GAMMAD_CONFORMANCE_KERNEL_HTTP"), "sk");
	cf.kernel_http = cf.sockmap || (getenv("GAMMAD_CONFORMANCE_KERNEL_HTTP") &&
					!strcmp(getenv("GAMMAD_CONFORMANCE_KERNEL_HTTP"), "1"));
	nr_tests = mesh_conf_load(&set, &cf.d, &tests);
	if (!nr_tests)
		return;
	if (!conf_up(&cf))
		goto cleanup;
	for (size_t i = 0; i < nr_tests; i++) {
		const yaml_node_t *test = yseq_at(cf.d, tests, i);
		struct test_result *tr = &cf.res[cf.nr_res++];

		tr->node = test;
		tr->name = mesh_conf_str(cf.d, test, "shortName");
		if (!test__start_subtest(tr->name)) {
			tr->out = OUT_SKIP;
			snprintf(tr->why, sizeof(tr->why), "not selected");
			continue;
		}
		run_test(&cf, test, tr);
	}
	if (cf.kernel_http) {
		ASSERT_OK(pinned_kh_counts(cf.ag.pin_dir, &cf.kh_served, &cf.kh_engine, cf.kh_by),
			  "kernel HTTP counters");
		test__printf("kernel HTTP: %llu served in the kernel, %llu handed to the engine\n",
			     (unsigned long long)cf.kh_served, (unsigned long long)cf.kh_engine);
		ASSERT_GT(cf.kh_served, 0, "requests served in the kernel");
	}
	if (cf.out_dir) {
		ASSERT_OK(write_report(&cf), "write report.yaml");
		ASSERT_OK(write_summary(&cf), "write summary.txt");
	}
cleanup:
	agent_env_fini(&cf.ag);
	lab_env_fini(&cf.lab);
	ydoc_set_free(&set);
}
