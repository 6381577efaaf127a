// SPDX-License-Identifier: Apache-2.0
/*
 * Issue 19 (kernel-side state) through the lab and the agent:
 * sessionAffinity ClientIP and removed endpoints releasing their sockets,
 * each on the connect-time path (a client in the pod's container cgroup)
 * and on the TC path (a client in the pod's netns but outside --cgroup,
 * which only the TC programs on the pod veths translate).
 *
 * The lab runs three backend pods (aff-a, aff-b, aff-c: HTTP 8080, TCP line
 * 9090, UDP 5353) and three client pods. The Services are the test's own,
 * with EndpointSlices it writes (aff.yaml), so it can take an endpoint out
 * while its pod keeps running, as a rolling update or a failing readiness
 * probe does. A removed endpoint that still answers is exactly what a
 * client must not reach any more:
 *
 *   aff    10.96.78.10 / fd00:10:96::780a  ClientIP (10800 s): http 80, dns 53/UDP
 *   front  10.96.78.11                      no affinity; HTTPRoute -> aff:80
 *   plain  10.96.78.12 / fd00:10:96::780c  no affinity: dns 53/UDP, line 9000
 *
 * The HTTP engine is on (the default): a client pod's connections to front
 * are steered to it (its HTTPRoute rewrites the path to /routed, which the
 * echo server reports, so a request that went through the engine shows), and
 * it keeps aff's affinity in the kernel's own entries (engine_affinity.c):
 * through the route or not, a pod has one endpoint.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "test_progs.h"

#define NS		"aff"
#define AFF4		"10.96.78.10"
#define AFF6		"fd00:10:96::780a"
#define FRONT4		"10.96.78.11"
#define PLAIN4		"10.96.78.12"
#define PLAIN6		"fd00:10:96::780c"
#define NB		3	/* backend pods */
#define NC		3	/* client pods */

static const char lab_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: " NS "}\n"
#define BACKEND(v)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: aff-" v ", namespace: " NS "}\n"		\
	"spec:\n  replicas: 1\n"					\
	"  selector:\n    matchLabels: {app: aff, version: " v "}\n"	\
	"  template:\n    metadata:\n      labels: {app: aff, version: " v "}\n" \
	"    spec:\n      containers:\n        - name: echo\n"		\
	"          image: example/echo\n"				\
	"          args: [\"--udp=5353\", \"--tcp=9090\"]\n"		\
	"          ports:\n"						\
	"            - {name: http, containerPort: 8080}\n"		\
	"            - {name: line, containerPort: 9090}\n"		\
	"            - {name: dns, containerPort: 5353, protocol: UDP}\n"
	BACKEND("a") BACKEND("b") BACKEND("c")
#define CLIENT(name)							\
	"---\napiVersion: apps/v1\nkind: Deployment\n"			\
	"metadata: {name: " name ", namespace: " NS "}\n"		\
	"spec:\n  selector:\n    matchLabels: {app: " name "}\n"	\
	"  template:\n    metadata:\n      labels: {app: " name "}\n"	\
	"    spec:\n      containers:\n        - name: c\n"		\
	"          image: example/client\n"				\
	"          ports:\n            - {containerPort: 8080}\n"
	CLIENT("client-1") CLIENT("client-2") CLIENT("client-3");

static const char route_yaml[] =
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: to-aff, namespace: " NS "}\n"
	"spec:\n  parentRefs:\n    - {group: \"\", kind: Service, name: front, port: 80}\n"
	"  rules:\n    - filters:\n        - type: URLRewrite\n"
	"          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /routed}}\n"
	"      backendRefs:\n        - {name: aff, port: 80}\n";

struct aff_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *be[NB], *cl[NC];
	const char *args[8];
};

/* ---- manifests: Services and the EndpointSlices of the pods in a mask --- */

static size_t put(char *buf, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t put(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

static size_t slice(struct aff_env *e, char *buf, size_t len, size_t off, const char *svc,
		    bool v6, unsigned int mask, const char *ports)
{
	off = put(buf, len, off,
		  "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		  "metadata:\n  name: %s-%s\n  namespace: " NS "\n"
		  "  labels: {kubernetes.io/service-name: %s}\n"
		  "addressType: %s\nendpoints:\n", svc, v6 ? "v6" : "v4", svc, v6 ? "IPv6" : "IPv4");
	for (int i = 0; i < NB; i++)
		if (mask & (1u << i))
			off = put(buf, len, off,
				  "- addresses: [\"%s\"]\n"
				  "  conditions: {ready: true, serving: true, terminating: false}\n"
				  "  targetRef: {kind: Pod, namespace: " NS ", name: %s}\n",
				  v6 ? e->be[i]->ip6 : e->be[i]->ip4, e->be[i]->name);
	if (!mask)
		off = put(buf, len, off, "  []\n");
	return put(buf, len, off, "ports:\n%s", ports);
}

/* aff.yaml with aff's endpoints in aff_mask and plain's in plain_mask. */
static int write_services(struct aff_env *e, unsigned int aff_mask, unsigned int plain_mask)
{
	static const char aff_ports[] =
		"- {name: http, port: 8080, protocol: TCP}\n- {name: dns, port: 5353, protocol: UDP}\n";
	static const char plain_ports[] =
		"- {name: dns, port: 5353, protocol: UDP}\n- {name: line, port: 9090, protocol: TCP}\n";
	static char buf[16384];
	size_t off;

	off = put(buf, sizeof(buf), 0,
		  "apiVersion: v1\nkind: Service\nmetadata: {name: aff, namespace: " NS "}\n"
		  "spec:\n  ipFamilyPolicy: RequireDualStack\n"
		  "  clusterIP: " AFF4 "\n  clusterIPs: [" AFF4 ", \"" AFF6 "\"]\n"
		  "  sessionAffinity: ClientIP\n"
		  "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}\n"
		  "  ports:\n    - {name: http, port: 80, targetPort: 8080}\n"
		  "    - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n"
		  "---\napiVersion: v1\nkind: Service\nmetadata: {name: front, namespace: " NS "}\n"
		  "spec:\n  clusterIP: " FRONT4 "\n"
		  "  ports:\n    - {name: http, port: 80, targetPort: 8080}\n"
		  "---\napiVersion: v1\nkind: Service\nmetadata: {name: plain, namespace: " NS "}\n"
		  "spec:\n  ipFamilyPolicy: RequireDualStack\n"
		  "  clusterIP: " PLAIN4 "\n  clusterIPs: [" PLAIN4 ", \"" PLAIN6 "\"]\n"
		  "  ports:\n    - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n"
		  "    - {name: line, port: 9000, targetPort: 9090}\n");
	off = slice(e, buf, sizeof(buf), off, "aff", false, aff_mask, aff_ports);
	off = slice(e, buf, sizeof(buf), off, "aff", true, aff_mask, aff_ports);
	off = slice(e, buf, sizeof(buf), off, "plain", false, plain_mask, plain_ports);
	off = slice(e, buf, sizeof(buf), off, "plain", true, plain_mask, plain_ports);
	if (off >= sizeof(buf))
		return -ENOSPC;
	return agent_env_write(&e->ag, "aff.yaml", buf);
}

static int update_services(struct aff_env *e, unsigned int aff_mask, unsigned int plain_mask)
{
	int n = agent_env_applied(&e->ag), err = write_services(e, aff_mask, plain_mask);

	return err ?: agent_env_wait_applied(&e->ag, n + 1, AGENT_APPLY_TIMEOUT_MS);
}

/* ---- clients ---------------------------------------------------------------- */

static struct mc_place at_connect(const struct lab_pod_info *p)
{
	return (struct mc_place){ .cgroup = p->container_cgroup, .netns = p->netns,
				  .timeout_ms = 3000 };
}

/* In the pod's netns, in the test's own cgroup: only the TC path translates it. */
static struct mc_place at_tc(const struct lab_pod_info *p)
{
	return (struct mc_place){ .netns = p->netns, .timeout_ms = 3000 };
}

static int backend_of(struct aff_env *e, const char *pod)
{
	for (int i = 0; i < NB; i++)
		if (!strcmp(pod, e->be[i]->name))
			return i;
	return -1;
}

/*
 * n requests; the one backend that answered them all, or -1 (-2: broken).
 * routed (may be NULL): how many went through the engine (front's route).
 */
static int sticky_via(struct aff_env *e, const struct mc_place *at, const char *vip, int port,
		      enum mc_proto proto, size_t n, unsigned int *seen, size_t *routed)
{
	struct mc_loop l;
	size_t got = mc_run(&l, at, vip, port, proto, n), errors = mc_count_errors(l.res, got);
	int first = -2;

	*seen = 0;
	if (routed)
		*routed = 0;
	for (size_t i = 0; i < got; i++) {
		int b = backend_of(e, l.res[i].pod);

		if (b >= 0)
			*seen |= 1u << b;
		if (i == 0)
			first = b;
		if (routed)
			*routed += !strncmp(l.res[i].path, "/routed", 7);
	}
	mc_loop_free(&l);
	if (!ASSERT_EQ(got, n, "requests made") || !ASSERT_EQ(errors, 0, "all answered"))
		return -2;
	return *seen == (first >= 0 ? 1u << first : 0) ? first : -1;
}

static int sticky(struct aff_env *e, const struct mc_place *at, const char *vip, int port,
		  enum mc_proto proto, size_t n, unsigned int *seen)
{
	return sticky_via(e, at, vip, port, proto, n, seen, NULL);
}

/* ---- the affinity table ----------------------------------------------------- */

/*
 * Entries of gammad_aff_v1 of a kind (with client non-NULL, only that
 * client's); with age_s, each is made that much older (before boot wraps
 * around: past any timeout all the same). How many, or -errno.
 */
static int aff_walk(struct aff_env *e, uint8_t kind, const void *client, size_t clen,
		    uint64_t *clients, int max, uint64_t age_s)
{
	char path[PATH_MAX];
	struct gammad_aff_key cur, next;
	struct gammad_aff_val v;
	void *prev = NULL;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/" GAMMAD_MAP_AFFINITY, e->ag.pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (cur.kind != kind || (client && memcmp(cur.client, client, clen)))
			continue;
		if (age_s && !bpf_map_lookup_elem(fd, &cur, &v)) {
			v.last_used -= age_s * 1000000000ULL;
			if (bpf_map_update_elem(fd, &cur, &v, BPF_EXIST))
				continue;
		}
		if (clients && n < max)
			memcpy(&clients[n], cur.client, sizeof(clients[n]));
		n++;
	}
	close(fd);
	return n;
}

static int aff_entries(struct aff_env *e, uint8_t kind, const void *client, size_t clen,
		       uint64_t *clients, int max)
{
	return aff_walk(e, kind, client, clen, clients, max, 0);
}

/*
 * Make every connect-time entry older than the timeout (10800 s), as if
 * its pod had been quiet that long: each pod's next connection draws.
 */
static int aff_age_all(struct aff_env *e)
{
	return aff_walk(e, GAMMAD_AFF_NETNS, NULL, 0, NULL, 0, 10801);
}

/* ---- subtests ----------------------------------------------------------------- */

/*
 * 100 connections from each client pod land on one endpoint (IPv4 HTTP,
 * IPv6 HTTP, UDP); each pod has an entry of its own in the kernel (clients
 * are told apart: which endpoint each got is printed).
 */
static void subtest_sticky(struct aff_env *e, bool tc)
{
	int pods[NC];
	unsigned int seen;

	for (int c = 0; c < NC; c++) {
		struct mc_place at = tc ? at_tc(e->cl[c]) : at_connect(e->cl[c]);

		pods[c] = sticky(e, &at, AFF4, 80, MC_HTTP, 100, &seen);
		test__printf("%s: ipv4 http x100 -> aff-%c (seen mask %x)\n", e->cl[c]->name,
			     pods[c] >= 0 ? 'a' + pods[c] : '?', seen);
		ASSERT_GE(pods[c], 0, "100 connections of one pod, one endpoint");
		ASSERT_GE(sticky(e, &at, AFF6, 80, MC_HTTP, 50, &seen), 0, "ipv6: one endpoint");
		ASSERT_GE(sticky(e, &at, AFF4, 53, MC_UDP, 50, &seen), 0, "udp: one endpoint");
	}
	if (tc) {
		/* the TC path's client is the source address: one entry per pod IP */
		for (int c = 0; c < NC; c++) {
			struct in_addr a;

			inet_pton(AF_INET, e->cl[c]->ip4, &a);
			ASSERT_GE(aff_entries(e, GAMMAD_AFF_INET, &a, 4, NULL, 0), 2,
				  "entries of the pod's address (http, dns)");
		}
	} else {
		/* connect time: the client is the pod's netns, one cookie per pod */
		uint64_t cookies[64];
		int n = aff_entries(e, GAMMAD_AFF_NETNS, NULL, 0, cookies, 64), distinct = 0;

		for (int i = 0; i < n && i < 64; i++) {
			bool again = false;

			for (int j = 0; j < i; j++)
				again |= cookies[j] == cookies[i];
			distinct += !again;
		}
		ASSERT_EQ(distinct, NC, "one affinity client per pod netns");
	}
	test__printf("clients got aff-%c, aff-%c, aff-%c\n", 'a' + pods[0], 'a' + pods[1],
		     'a' + pods[2]);
}

/*
 * front has no affinity but its route sends everything to aff: the
 * backend keeps its affinity, and it is the same as reaching aff directly
 * (one entry per backend and client).
 */
static void subtest_route_backend(struct aff_env *e, bool tc)
{
	struct mc_place at = tc ? at_tc(e->cl[0]) : at_connect(e->cl[0]);
	unsigned int seen;
	size_t via_engine;
	int direct = sticky(e, &at, AFF4, 80, MC_HTTP, 20, &seen);
	int routed = sticky_via(e, &at, FRONT4, 80, MC_HTTP, 100, &seen, &via_engine);

	test__printf("%s: aff directly -> aff-%c, through front -> aff-%c (%zu of 100 through "
		     "the engine)\n", tc ? "tc" : "connect", 'a' + direct, 'a' + routed, via_engine);
	ASSERT_GE(direct, 0, "aff: one endpoint");
	ASSERT_GE(routed, 0, "front -> aff: one endpoint");
	ASSERT_EQ(routed, direct, "the route's backend keeps the client's affinity");
	/* connect time: front's HTTPRoute is the engine's (TC never steers) */
	if (!tc)
		ASSERT_EQ(via_engine, 100, "through the HTTP engine");
}

/*
 * The engine and connect() share each pod's entry both ways: after the
 * timeout (entries aged past it) a pod draws again, through the route or
 * directly, whichever comes first, and the other path follows that draw.
 * Eight draws that all land on one of three endpoints would mean the
 * timeout was ignored (1 in 2187 by chance).
 */
static void subtest_engine_shares(struct aff_env *e)
{
	struct mc_place at = at_connect(e->cl[2]);
	unsigned int seen, drawn = 0;
	size_t via_engine;

	for (int i = 0; i < 8; i++) {
		int first, second;

		if (!ASSERT_GT(aff_age_all(e), 0, "entries aged past the timeout"))
			return;
		if (i % 2) {
			first = sticky(e, &at, AFF4, 80, MC_HTTP, 1, &seen);
			second = sticky_via(e, &at, FRONT4, 80, MC_HTTP, 5, &seen, &via_engine);
		} else {
			first = sticky_via(e, &at, FRONT4, 80, MC_HTTP, 1, &seen, &via_engine);
			second = sticky(e, &at, AFF4, 80, MC_HTTP, 5, &seen);
		}
		test__printf("draw %d: %s aff-%c, then %s aff-%c\n", i,
			     i % 2 ? "direct" : "routed", 'a' + first,
			     i % 2 ? "routed" : "direct", 'a' + second);
		ASSERT_GE(first, 0, "answered");
		ASSERT_EQ(second, first, "the other path keeps the endpoint");
		ASSERT_GT(via_engine, 0, "through the HTTP engine");
		if (first >= 0)
			drawn |= 1u << first;
	}
	ASSERT_NEQ(drawn & (drawn - 1), 0, "after the timeout a pod draws again");
}

/* The endpoint a pod sticks to leaves aff: the engine never chooses it, and agrees with connect(). */
static void subtest_engine_removed(struct aff_env *e)
{
	struct mc_place at = at_connect(e->cl[1]);
	unsigned int seen, all = (1u << NB) - 1;
	size_t via_engine;
	int before, routed, direct;

	before = sticky_via(e, &at, FRONT4, 80, MC_HTTP, 10, &seen, &via_engine);
	if (!ASSERT_GE(before, 0, "sticks") || !ASSERT_EQ(via_engine, 10, "through the engine") ||
	    !ASSERT_OK(update_services(e, all & ~(1u << before), all), "remove its endpoint"))
		return;
	routed = sticky_via(e, &at, FRONT4, 80, MC_HTTP, 50, &seen, &via_engine);
	test__printf("engine: aff-%c removed, then 50 requests: seen mask %x\n", 'a' + before, seen);
	ASSERT_FALSE(seen & (1u << before), "the removed endpoint is never chosen");
	ASSERT_GE(routed, 0, "sticks to one live endpoint");
	direct = sticky(e, &at, AFF4, 80, MC_HTTP, 10, &seen);
	ASSERT_EQ(direct, routed, "connect() follows the engine's new pick");
	ASSERT_OK(update_services(e, all, all), "all endpoints back");
}


/* The endpoint a client sticks to leaves the Service: never chosen again; the client moves. */
static void subtest_removed(struct aff_env *e, bool tc)
{
	struct mc_place at = tc ? at_tc(e->cl[1]) : at_connect(e->cl[1]);
	unsigned int seen, all = (1u << NB) - 1;
	int before, after;

	before = sticky(e, &at, AFF4, 80, MC_HTTP, 20, &seen);
	if (!ASSERT_GE(before, 0, "sticks") ||
	    !ASSERT_OK(update_services(e, all & ~(1u << before), all), "remove its endpoint"))
		return;
	after = sticky(e, &at, AFF4, 80, MC_HTTP, 100, &seen);
	test__printf("%s: aff-%c removed, then 100 connections: seen mask %x\n", at.cgroup ?
		     "connect" : "tc", 'a' + before, seen);
	ASSERT_FALSE(seen & (1u << before), "the removed endpoint is never chosen");
	ASSERT_GE(after, 0, "sticks to one live endpoint");
	/* UDP on the same Service (its own backend) too */
	sticky(e, &at, AFF4, 53, MC_UDP, 50, &seen);
	ASSERT_FALSE(seen & (1u << before), "udp: the removed endpoint is never chosen");
	ASSERT_OK(update_services(e, all, all), "all endpoints back");
}

/*
 * One connected UDP socket sending every 50 ms to plain:53; the endpoint
 * it talks to is removed (its pod keeps answering). Within 1 s of the
 * apply every datagram reaches a live endpoint, and the application sees
 * at most one error (connect time: ECONNABORTED, then it connects again;
 * TC: its flow is forgotten, the next datagram is a new flow).
 */
static void subtest_udp_released(struct aff_env *e, bool tc, const char *vip)
{
	struct mc_place at = tc ? at_tc(e->cl[2]) : at_connect(e->cl[2]);
	unsigned int all = (1u << NB) - 1;
	size_t n, errors = 0, late = 0, late_bad = 0;
	int64_t t_applied;
	struct mc_loop l;
	int victim;

	at.timeout_ms = 200;
	if (!ASSERT_OK(mc_loop_start(&l, &at, vip, 53, MC_UDP_HOLD, 2000), "udp client"))
		return;
	for (int i = 0; i < 100 && mc_loop_count(&l) < 10; i++)
		usleep(50000);
	n = mc_loop_count(&l);
	if (!ASSERT_GE(n, 10, "datagrams answered before") ||
	    !ASSERT_EQ(l.res[n - 1].err, 0, "answered"))
		goto out;
	victim = backend_of(e, l.res[n - 1].pod);
	if (!ASSERT_GE(victim, 0, "a backend answers") ||
	    !ASSERT_EQ(mc_count_pod(l.res, n, l.res[n - 1].pod), n, "one socket, one endpoint") ||
	    !ASSERT_OK(update_services(e, all, all & ~(1u << victim)), "remove it"))
		goto out;
	t_applied = mono_us();
	usleep(2000 * 1000);
	n = mc_loop_stop(&l);
	for (size_t i = 0; i < n; i++) {
		const struct mc_result *r = &l.res[i];

		if (r->err) {
			errors++;
			test__printf("  datagram %zu: %s: %s (%+lld ms from the apply)\n", i, r->step,
				     strerror(-r->err), (long long)(r->t_start_us - t_applied) / 1000);
		}
		if (r->t_start_us < t_applied + 1000000)
			continue;
		late++;
		late_bad += r->err || backend_of(e, r->pod) == victim;
	}
	test__printf("%s %s: aff-%c removed; %zu datagrams, %zu errors, %zu sent 1 s after the "
		     "apply, %zu of them not answered by a live endpoint\n", tc ? "tc" : "connect",
		     vip, 'a' + victim, n, errors, late, late_bad);
	ASSERT_GE(late, 10, "datagrams after the first second");
	ASSERT_EQ(late_bad, 0, "from 1 s after the apply: live endpoints only");
	ASSERT_LE(errors, 1, "the application sees at most one error");
out:
	mc_loop_free(&l);
	update_services(e, all, all);
}

/*
 * Established TCP to a removed endpoint: left alone by default (as
 * kube-proxy does), reset with --reset-removed-tcp (the agent is restarted
 * with it for this subtest and keeps it).
 */
static void subtest_tcp(struct aff_env *e, bool reset)
{
	struct mc_place at = at_connect(e->cl[0]);
	unsigned int all = (1u << NB) - 1;
	size_t n, errors = 0, first_err = 0;
	int64_t t_applied;
	struct mc_loop l;
	int victim;

	if (reset) {
		agent_env_kill(&e->ag, SIGTERM);
		e->args[0] = "--reset-removed-tcp";
		e->args[1] = "-v";
		e->args[2] = NULL;
		e->ag.args = e->args;
		if (!ASSERT_OK(agent_env_start(&e->ag), "agent with --reset-removed-tcp"))
			return;
	}
	if (!ASSERT_OK(mc_loop_start(&l, &at, PLAIN4, 9000, MC_PINGPONG, 100000), "tcp client"))
		return;
	for (int i = 0; i < 100 && mc_loop_count(&l) < 10; i++)
		usleep(50000);
	n = mc_loop_count(&l);
	if (!ASSERT_GE(n, 10, "pings answered") || !ASSERT_EQ(l.res[0].err, 0, "connected"))
		goto out;
	victim = backend_of(e, l.res[0].pod);
	if (!ASSERT_GE(victim, 0, "a backend answers") ||
	    !ASSERT_OK(update_services(e, all, all & ~(1u << victim)), "remove it"))
		goto out;
	t_applied = mono_us();
	usleep(1500 * 1000);
	n = mc_loop_stop(&l);
	for (size_t i = 0; i < n; i++)
		if (l.res[i].err && !errors++)
			first_err = i;
	test__printf("tcp to removed aff-%c, %s: %zu pings, %zu failed%s\n", 'a' + victim,
		     reset ? "--reset-removed-tcp" : "default", n, errors,
		     errors ? "" : " (connection kept)");
	if (!reset) {
		ASSERT_EQ(errors, 0, "default: the established connection is left alone");
	} else if (ASSERT_GT(errors, 0, "--reset-removed-tcp: the connection is aborted")) {
		test__printf("  first failure %+lld ms from the apply: %s: %s\n",
			     (long long)(l.res[first_err].t_start_us - t_applied) / 1000,
			     l.res[first_err].step, strerror(-l.res[first_err].err));
		ASSERT_LT(l.res[first_err].t_start_us - t_applied, 1000000, "within 1 s");
	}
out:
	mc_loop_free(&l);
	update_services(e, all, all);
}

/*
 * gammactl's POLICY: aff's ports show the affinity, plain's none; front's
 * route backend aff:80 keeps it (gammactl endpoints front).
 */
static void subtest_gammactl(struct aff_env *e)
{
	char *out = NULL, *line;
	int ret;

	ret = lab_run_capture(&out, "%s --pin-dir %s services", test_bin("gammactl"),
			      e->ag.pin_dir);
	if (!ASSERT_EQ(ret, 0, "gammactl services"))
		goto out;
	test__printf("%s", out);
	line = strstr(out, NS "/aff:80 ");
	if (ASSERT_OK_PTR(line, "aff:80 listed")) {
		*strchrnul(line, '\n') = 0;
		ASSERT_HAS_SUBSTR(line, "affinity=ClientIP/10800s", "its affinity in POLICY");
	}
	free(out);
	out = NULL;
	ret = lab_run_capture(&out, "%s --pin-dir %s endpoints " NS "/front", test_bin("gammactl"),
			      e->ag.pin_dir);
	if (ASSERT_EQ(ret, 0, "gammactl endpoints front")) {
		test__printf("%s", out);
		ASSERT_HAS_SUBSTR(out, "affinity=ClientIP/10800s", "front's route backend aff keeps it");
	}
	free(out);
	out = NULL;
	ret = lab_run_capture(&out, "%s --json --pin-dir %s endpoints " NS "/plain",
			      test_bin("gammactl"), e->ag.pin_dir);
	if (ASSERT_EQ(ret, 0, "gammactl --json endpoints plain"))
		ASSERT_NULL(strstr(out, "affinity"), "plain: no affinity");
out:
	free(out);
}

/* ---- setup --------------------------------------------------------------------- */

static int env_setup(struct aff_env *e)
{
	static const char *const be[NB] = { "aff-a", "aff-b", "aff-c" };
	static const char *const cl[NC] = { "client-1", "client-2", "client-3" };
	char path[PATH_MAX];

	if (lab_env_write(&e->lab, "aff-lab.yaml", lab_yaml, path) ||
	    lab_env_up_checked(&e->lab, path))
		return -1;
	for (int i = 0; i < NB; i++)
		if (!ASSERT_OK_PTR(e->be[i] = lab_env_find(&e->lab, NS, be[i]), be[i]))
			return -1;
	for (int i = 0; i < NC; i++)
		if (!ASSERT_OK_PTR(e->cl[i] = lab_env_find(&e->lab, NS, cl[i]), cl[i]))
			return -1;
	if (!ASSERT_OK(agent_env_init(&e->ag, &e->lab), "agent_env_init") ||
	    !ASSERT_OK(write_services(e, 7, 7), "aff.yaml") ||
	    !ASSERT_OK(agent_env_write(&e->ag, "route.yaml", route_yaml), "route.yaml"))
		return -1;
	/* the HTTP engine on (the default): front's HTTPRoute is served there */
	e->args[0] = "-v";
	e->args[1] = NULL;
	e->ag.args = e->args;
	if (!ASSERT_OK(agent_env_start(&e->ag), "gammad run"))
		return -1;
	/* the TC links come a moment after the first apply */
	usleep(500 * 1000);
	return 0;
}

void test_agent_affinity(void)
{
	struct aff_env e = {};

	if (lab_env_start(&e.lab, NULL))
		goto cleanup;
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		goto cleanup;
	}
	if (env_setup(&e))
		goto cleanup;
	if (test__start_subtest("gammactl_policy"))
		subtest_gammactl(&e);
	if (test__start_subtest("connect_sticky_per_pod"))
		subtest_sticky(&e, false);
	if (test__start_subtest("tc_sticky_per_pod"))
		subtest_sticky(&e, true);
	if (test__start_subtest("connect_route_backend_keeps_affinity"))
		subtest_route_backend(&e, false);
	if (test__start_subtest("tc_route_backend_keeps_affinity"))
		subtest_route_backend(&e, true);
	if (test__start_subtest("engine_shares_kernel_entries"))
		subtest_engine_shares(&e);
	if (test__start_subtest("engine_removed_endpoint_never_chosen"))
		subtest_engine_removed(&e);
	if (test__start_subtest("connect_removed_endpoint_never_chosen"))
		subtest_removed(&e, false);
	if (test__start_subtest("tc_removed_endpoint_never_chosen"))
		subtest_removed(&e, true);
	if (test__start_subtest("connect_udp_socket_released_ipv4"))
		subtest_udp_released(&e, false, PLAIN4);
	if (test__start_subtest("connect_udp_socket_released_ipv6"))
		subtest_udp_released(&e, false, PLAIN6);
	if (test__start_subtest("tc_udp_flow_released_ipv4"))
		subtest_udp_released(&e, true, PLAIN4);
	if (test__start_subtest("tc_udp_flow_released_ipv6"))
		subtest_udp_released(&e, true, PLAIN6);
	if (test__start_subtest("tcp_left_alone_by_default"))
		subtest_tcp(&e, false);
	if (test__start_subtest("tcp_reset_removed_tcp"))
		subtest_tcp(&e, true);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}
