// SPDX-License-Identifier: Apache-2.0
/*
 * Restarting `gammad run --http-engine` (issue 12, Restarts), through the
 * real lab: pods' clients keep talking to a Service port with HTTP rules
 * while the agent is replaced.
 *
 * The route sends GET / to echo-v1 only, while the port's L4 union has
 * echo-v1 and echo-v2: every answer from echo-v1 tells the engine decided
 * the request (the L4 path would send about half to echo-v2).
 *
 * graceful: twice, a new agent is started while the old one runs
 * (handover.h): a keep-alive connection making requests all along, one
 * whose slow requests (150 ms) are in flight most of the time, and a loop
 * of new connections see no failed request and no refused connect; the
 * keep-alive connections go on in the new agent after the old one exited,
 * and every answer is the engine's. Each new agent adopts the old one's
 * image snapshot first (nothing to change) and takes the listeners after.
 *
 * no_engine_refused: a new agent with --no-http-engine beside the running
 * one exits, the running one carries on.
 *
 * handover_wait: with --handover-wait the old agent stays after handing
 * over, until SIGTERM.
 *
 * kill9: the agent is killed. Its steered connections die with it (the
 * test reports how); new connections meanwhile take the L4 path (the BPF
 * sees no live listener) and succeed; after a restart they are the
 * engine's again.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "test_progs.h"
#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"

#define LOOP_MAX 200000

static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-restart, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 8080}\n"
	"  rules:\n"
	"  - matches: [{path: {type: Exact, value: /}}]\n"
	"    backendRefs:\n"
	"    - {name: echo-v1, port: 8080}\n"
	"  - matches: [{path: {type: PathPrefix, value: /never}}]\n"
	"    backendRefs:\n"
	"    - {name: echo-v2, port: 8080}\n";

struct restart_env {
	struct lab_env lab;
	struct agent_env ag;
	const struct lab_pod_info *v1, *v2;
	struct mc_place at_v1, at_v2;
	char echo4[INET6_ADDRSTRLEN];
};

/* Answers from a pod of the Deployment `name` (pods are "<name>-<hash>-<id>"). */
static size_t count_from(const struct mc_result *res, size_t n, const char *name)
{
	size_t k = 0, len = strlen(name);

	for (size_t i = 0; i < n; i++)
		k += !res[i].err && !strncmp(res[i].pod, name, len) && res[i].pod[len] == '-';
	return k;
}

/* The longest t_start_us -> t_conn_us of res[0..n). */
static int64_t max_us(const struct mc_result *res, size_t n)
{
	int64_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (res[i].t_conn_us - res[i].t_start_us > m)
			m = res[i].t_conn_us - res[i].t_start_us;
	return m;
}

/* Print the distinct failures of res[0..n) (step, errno) with how many of each. */
static void print_errors(const char *what, const struct mc_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t same = 0;
		bool seen = false;

		if (!res[i].err)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = res[j].err == res[i].err && !strcmp(res[j].step, res[i].step);
		if (seen)
			continue;
		for (size_t j = i; j < n; j++)
			same += res[j].err == res[i].err && !strcmp(res[j].step, res[i].step);
		test__printf("%s: %zu x step %s: %s (first at result %zu)\n", what, same,
			     res[i].step, strerror(-res[i].err), i);
	}
}

/* Wait up to timeout_ms for pid to exit; its wait status, or -1. */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int status;

	for (int t = 0; t < timeout_ms; t += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	return -1;
}

static void wait_results(const struct mc_loop *l, size_t more)
{
	size_t want = mc_loop_count(l) + more;

	for (int t = 0; t < 5000 && mc_loop_count(l) < want; t += 5)
		usleep(5000);
}

/* Start a new agent beside the running one; it takes over, the old one exits 0. */
static bool restart_graceful(struct restart_env *e)
{
	pid_t old = e->ag.pid;
	int status;

	e->ag.pid = 0;
	if (!ASSERT_OK(agent_env_start(&e->ag), "new agent started and applied")) {
		kill(old, SIGKILL);
		waitpid(old, NULL, 0);
		return false;
	}
	status = wait_exit(old, 40000);
	if (status)
		kill(old, SIGKILL), waitpid(old, NULL, 0);
	return ASSERT_EQ(status, 0, "the old agent handed over and exited 0");
}

#define RESTARTS 2

/*
 * The three client loops the graceful restarts run under: a fast
 * keep-alive connection, one whose 150 ms responses are in flight most of
 * the time (they finish in the old agent), and new connections.
 */
struct restart_loops {
	struct mc_loop ka, slow, nc;
	size_t nka, nslow, nnc;
};

static bool loops_start(struct restart_env *e, struct restart_loops *l)
{
	struct mc_place at_slow = e->at_v2;

	at_slow.path = "/?delay=150ms";
	if (!ASSERT_OK(mc_loop_start(&l->ka, &e->at_v1, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "keep-alive loop") ||
	    !ASSERT_OK(mc_loop_start(&l->slow, &at_slow, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "slow keep-alive loop") ||
	    !ASSERT_OK(mc_loop_start(&l->nc, &e->at_v2, e->echo4, 8080, MC_HTTP, LOOP_MAX),
		       "new-connection loop"))
		return false;
	wait_results(&l->ka, 50);
	wait_results(&l->slow, 2);
	wait_results(&l->nc, 20);
	return true;
}

/* after a restart: the same connections, served by the new agent alone */
static void loops_run_on(const struct restart_loops *l)
{
	wait_results(&l->ka, 100);
	wait_results(&l->slow, 3);
	wait_results(&l->nc, 30);
}

/*
 * Stop the loops and check what every restart test asks of them: requests
 * after the last old agent left (ka_exit, slow_exit: their counts then), no
 * failed request on any loop, every answer from echo-v1 (the rule's).
 */
static void loops_stop_check(struct restart_loops *l, const char *what, size_t ka_exit,
			     size_t slow_exit)
{
	l->nka = mc_loop_stop(&l->ka);
	l->nslow = mc_loop_stop(&l->slow);
	l->nnc = mc_loop_stop(&l->nc);
	test__printf("%s: keep-alive %zu requests (the last old agent gone at %zu), slow "
		     "keep-alive %zu, new connections %zu\n", what, l->nka, ka_exit, l->nslow,
		     l->nnc);
	/* what a restart costs a client: the slowest request, the slowest connect() */
	test__printf("slowest keep-alive request %.1f ms, slowest connect() %.1f ms\n",
		     max_us(l->ka.res, l->nka) / 1e3, max_us(l->nc.res, l->nnc) / 1e3);
	print_errors("keep-alive", l->ka.res, l->nka);
	print_errors("slow keep-alive", l->slow.res, l->nslow);
	print_errors("new connections", l->nc.res, l->nnc);
	ASSERT_GE(l->nka, ka_exit + 100, "keep-alive requests after the last restart");
	ASSERT_GE(l->nslow, slow_exit + 3, "slow keep-alive requests after the last restart");
	ASSERT_EQ(mc_count_errors(l->ka.res, l->nka), 0,
		  "no failed request, the keep-alive connection kept");
	ASSERT_EQ(mc_count_errors(l->slow.res, l->nslow), 0, "none on the slow one");
	ASSERT_EQ(mc_count_errors(l->nc.res, l->nnc), 0, "no failed request, no refused connect");
	ASSERT_EQ(count_from(l->ka.res, l->nka, "echo-v1"), l->nka,
		  "keep-alive: the rule, every time");
	ASSERT_EQ(count_from(l->slow.res, l->nslow, "echo-v1"), l->nslow,
		  "slow: the rule, every time");
	ASSERT_EQ(count_from(l->nc.res, l->nnc, "echo-v1"), l->nnc,
		  "new connections: the rule, every time");
}

static void loops_free(struct restart_loops *l)
{
	mc_loop_free(&l->ka);
	mc_loop_free(&l->slow);
	mc_loop_free(&l->nc);
}

static void subtest_graceful(struct restart_env *e)
{
	struct restart_loops l = { 0 };
	size_t at_exit[RESTARTS] = { 0 }, slow_exit = 0;
	char *out = NULL;

	if (!loops_start(e, &l))
		goto out;
	for (int i = 0; i < RESTARTS; i++) {
		if (!restart_graceful(e))
			goto out;
		at_exit[i] = mc_loop_count(&l.ka);
		slow_exit = mc_loop_count(&l.slow);
		loops_run_on(&l);
	}
	loops_stop_check(&l, "restarts", at_exit[RESTARTS - 1], slow_exit);
	/* Each new agent served the old one's snapshot first, then took over (agent.h). */
	ASSERT_EQ(agent_env_log_count(&e->ag, "adopted and serving"), RESTARTS,
		  "each new agent adopted the pinned state first");
	ASSERT_EQ(agent_env_log_count(&e->ag, "took the listeners of"), RESTARTS,
		  "listeners handed over");
	ASSERT_EQ(agent_env_log_count(&e->ag, "handover done: "), RESTARTS,
		  "connections handed over");
	ASSERT_EQ(agent_env_log_count(&e->ag, "handover done: 0 "), 0,
		  "the keep-alive ones among them");
	lab_run_capture(&out, "grep -h 'handed over in\\|handover done' %s", e->ag.log);
	test__printf("%s", out ? out : "");
	free(out);
out:
	loops_free(&l);
}

/*
 * A new agent with --no-http-engine beside the running one has nothing to
 * take over and must not write the maps beside it: it exits at once, the
 * running one carries on.
 */
static void subtest_no_engine_refused(struct restart_env *e)
{
	static const char *const l4_args[] = { "--no-http-engine", "--resync", "1", NULL };
	const char *const *args = e->ag.args;
	struct mc_loop l = { 0 };
	pid_t old = e->ag.pid;

	e->ag.args = l4_args;
	e->ag.pid = 0;
	ASSERT_EQ(agent_env_start(&e->ag), -ESRCH, "the new agent exits without applying");
	e->ag.pid = old;
	e->ag.args = args;
	ASSERT_EQ(agent_env_log_count(&e->ag, "stop it first"), 1, "and says why");
	ASSERT_EQ(wait_exit(old, 200), -1, "the running agent carries on");
	mc_run(&l, &e->at_v2, e->echo4, 8080, MC_HTTP, 20);
	ASSERT_EQ(count_from(l.res, 20, "echo-v1"), 20, "its engine decides every request");
	mc_loop_free(&l);
}

static void subtest_kill9(struct restart_env *e)
{
	struct mc_loop ka = { 0 }, l = { 0 };
	int64_t t_restart, t_ok = 0;
	size_t n, before;
	char peer[64];

	if (!ASSERT_OK(mc_loop_start(&ka, &e->at_v1, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "keep-alive loop"))
		return;
	wait_results(&ka, 50);
	before = mc_loop_count(&ka);
	agent_env_kill(&e->ag, SIGKILL);
	wait_results(&ka, 5);
	n = mc_loop_stop(&ka);
	test__printf("the steered keep-alive connection after kill -9 (%zu requests before):\n",
		     before);
	print_errors("  keep-alive", ka.res, n);
	ASSERT_GT(mc_count_errors(ka.res, n), 0, "its connection died with the agent");
	mc_loop_free(&ka);

	/*
	 * No agent: new connections take the L4 path, none is refused. The
	 * killed agent's netns entries are still there: the live-listener
	 * check alone keeps them off the dead port.
	 */
	ASSERT_GT(pinned_entries(e->ag.pin_dir, GAMMAD_MAP_ENGINE_NS), 0,
		  "the killed agent's gammad_engns_v1 entries remain");
	mc_run(&l, &e->at_v2, e->echo4, 8080, MC_HTTP, 20);
	mc_addr_port(peer, sizeof(peer), e->echo4, 8080);
	ASSERT_EQ(mc_count_errors(l.res, 20), 0, "no agent: new connections succeed (L4)");
	ASSERT_EQ(mc_count_peer(l.res, 20, peer), 20, "getpeername() is the ClusterIP");
	test__printf("no agent: %zu of 20 answered by echo-v1 (the L4 union)\n",
		     count_from(l.res, 20, "echo-v1"));
	mc_loop_free(&l);

	/* Restarted: steered again (timing measured, not asserted). */
	t_restart = mono_us();
	if (!ASSERT_OK(agent_env_start(&e->ag), "restarted"))
		return;
	for (int i = 0; i < 100 && !t_ok; i++) {
		mc_run(&l, &e->at_v2, e->echo4, 8080, MC_HTTP, 10);
		if (count_from(l.res, 10, "echo-v1") == 10)
			t_ok = mono_us();
		mc_loop_free(&l);
	}
	if (t_ok)
		test__printf("restart -> first applied: %.0f ms, -> steered: %.0f ms\n",
			     (e->ag.last_applied_us - t_restart) / 1e3,
			     (t_ok - t_restart) / 1e3);
	ASSERT_NEQ(t_ok, 0, "after the restart the engine decides again");
	mc_run(&l, &e->at_v2, e->echo4, 8080, MC_HTTP, 50);
	ASSERT_EQ(count_from(l.res, 50, "echo-v1"), 50, "restarted: every request the engine's");
	mc_loop_free(&l);
}

/* The old agent's metrics port in handover_wait (the others use the default). */
#define READYZ_PORT "19464"

/* Poll up to timeout_ms for a log line containing s. */
static bool wait_log(const struct agent_env *ag, const char *s, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 10) {
		if (agent_env_log_count(ag, s))
			return true;
		usleep(10000);
	}
	return false;
}

/* GET /readyz on 127.0.0.1:port from the host: 200, or (ready false) nobody answers. */
static void expect_readyz(int port, bool ready)
{
	char *out = NULL;
	int ret;

	ret = lab_run_capture(&out, "%s client http://127.0.0.1:%d/readyz --timeout=5",
			      test_bin("echo"), port);
	if (ready) {
		ASSERT_EQ(ret, 0, "/readyz answered");
		ASSERT_HAS_SUBSTR(out, "StatusCode=200", "/readyz: ready");
	} else {
		ASSERT_NEQ(ret, 0, "/readyz not answered");
	}
	free(out);
}

/*
 * --handover-wait: the old agent stays after handing over (a DaemonSet's
 * container must not exit, or it is restarted and takes everything back)
 * and exits at SIGTERM, holding nothing the new one needs, not even its
 * metrics server: in a DaemonSet surge both agents bind the metrics address
 * (SO_REUSEPORT), and the old one must not answer the new pod's readiness
 * probe (here the old one has a port of its own, to see that it is gone).
 */
static void subtest_handover_wait(struct restart_env *e)
{
	static const char *const wait_args[] = { "--http-engine", "--resync", "1",
						 "--handover-wait", "--metrics-addr",
						 "127.0.0.1:" READYZ_PORT, NULL };
	const char *const *args = e->ag.args;
	struct mc_loop ka = { 0 }, l = { 0 };
	size_t n;
	pid_t old;
	int status;

	agent_env_kill(&e->ag, SIGTERM);
	e->ag.args = wait_args;
	if (!ASSERT_OK(agent_env_start(&e->ag), "agent with --handover-wait"))
		goto out;
	e->ag.args = args;
	expect_readyz(atoi(READYZ_PORT), true);
	if (!ASSERT_OK(mc_loop_start(&ka, &e->at_v1, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "keep-alive loop"))
		goto out;
	wait_results(&ka, 20);
	old = e->ag.pid;
	e->ag.pid = 0;
	if (!ASSERT_OK(agent_env_start(&e->ag), "new agent")) {
		kill(old, SIGKILL);
		waitpid(old, NULL, 0);
		goto out;
	}
	ASSERT_TRUE(wait_log(&e->ag, "waiting for SIGTERM", 10000), "handed over, waiting");
	ASSERT_EQ(wait_exit(old, 500), -1, "the old agent stays");
	expect_readyz(atoi(READYZ_PORT), false);
	wait_results(&ka, 50);
	kill(old, SIGTERM);
	status = wait_exit(old, 5000);
	if (status)
		kill(old, SIGKILL), waitpid(old, NULL, 0);
	ASSERT_EQ(status, 0, "SIGTERM: it exits 0");
	wait_results(&ka, 50);
	n = mc_loop_stop(&ka);
	print_errors("keep-alive", ka.res, n);
	ASSERT_EQ(mc_count_errors(ka.res, n), 0, "no failed request on the keep-alive connection");
	ASSERT_EQ(count_from(ka.res, n, "echo-v1"), n, "keep-alive: the engine's rule, every time");
	mc_run(&l, &e->at_v2, e->echo4, 8080, MC_HTTP, 20);
	ASSERT_EQ(count_from(l.res, 20, "echo-v1"), 20, "new connections: the new agent's engine");
out:
	e->ag.args = args;
	mc_loop_free(&ka);
	mc_loop_free(&l);
}

/*
 * The kernel HTTP path (--kernel-http) across a restart, then an upgrade
 * (another gammad binary file, the same map layout): the old agent hands
 * over its pools' upstream sockets and the connections the kernel may
 * serve (handover.h), the new one adopts the pinned slots and pools. The
 * keep-alive connections (one fast, one whose 150 ms responses are in
 * flight most of the time) and new connections see no failed request and
 * no closed connection, every answer is the rule's, and after each old
 * agent exited the kernel still serves: its counter grows by at least the
 * fast loop's requests while nothing goes to the engine for want of an
 * upstream.
 */
static void subtest_kernel(struct restart_env *e, const char *upgrade_bin, bool sockmap)
{
	struct restart_loops l = { 0 };
	size_t at_exit[RESTARTS] = { 0 }, slow_exit = 0;
	uint64_t served[RESTARTS][2] = { 0 }, engine[RESTARTS][2] = { 0 };
	uint64_t by0[GAMMAD_KH_R_MAX], by1[GAMMAD_KH_R_MAX], s_, e_;
	char *out = NULL;

	if (!loops_start(e, &l))
		goto out;
	if (!ASSERT_OK(pinned_kh_counts(e->ag.pin_dir, &s_, &e_, by0), "kernel counters"))
		goto out;
	for (int i = 0; i < RESTARTS; i++) {
		/* the second time another binary: an upgrade */
		e->ag.bin = i ? upgrade_bin : NULL;
		if (!restart_graceful(e))
			goto out;
		at_exit[i] = mc_loop_count(&l.ka);
		slow_exit = mc_loop_count(&l.slow);
		pinned_kh_counts(e->ag.pin_dir, &served[i][0], &engine[i][0], NULL);
		loops_run_on(&l);	/* served by the new agent's pools alone */
		pinned_kh_counts(e->ag.pin_dir, &served[i][1], &engine[i][1], NULL);
		test__printf("after %s %d: %llu served in the kernel, %llu handed to the engine\n",
			     i ? "upgrade" : "restart", i + 1,
			     (unsigned long long)(served[i][1] - served[i][0]),
			     (unsigned long long)(engine[i][1] - engine[i][0]));
		ASSERT_GE(served[i][1] - served[i][0], 100, "served in the kernel after the old "
			  "agent exited");
	}
	e->ag.bin = NULL;
	loops_stop_check(&l, "restart + upgrade", at_exit[RESTARTS - 1], slow_exit);
	pinned_kh_counts(e->ag.pin_dir, &s_, &e_, by1);
	for (int r = 0; r < GAMMAD_KH_R_MAX; r++)
		if (by1[r] != by0[r])
			test__printf("  kernel HTTP reason %d: +%llu\n", r,
				     (unsigned long long)(by1[r] - by0[r]));
	if (sockmap)
		ASSERT_GT(pinned_kh_paired(e->ag.pin_dir), 0, "same-node server sockets still paired");
	ASSERT_EQ(by1[GAMMAD_KH_R_NO_UPSTREAM] - by0[GAMMAD_KH_R_NO_UPSTREAM], 0,
		  "no request went to the engine for want of an upstream");
	ASSERT_EQ(agent_env_log_count(&e->ag, "upstream sockets from the running agent"), RESTARTS,
		  "the pools' sockets handed over");
	ASSERT_EQ(agent_env_log_count(&e->ag, "handover done: "), RESTARTS,
		  "connections handed over");
	ASSERT_EQ(agent_env_log_count(&e->ag, "(0 of the kernel HTTP path)"), 0,
		  "the kernel-served ones among them");
	lab_run_capture(&out, "grep -h 'handed over in\\|handover done\\|upstream sockets\\|"
			"upstream pools of' %s", e->ag.log);
	test__printf("%s", out ? out : "");
	free(out);
out:
	e->ag.bin = NULL;
	loops_free(&l);
}

/*
 * Start a new agent with args beside the running one; the old one must
 * hand everything over and exit 0 within timeout_ms (its drain bound,
 * HANDOVER_DRAIN_MS, is 30 s: a connection it cannot give away keeps it
 * that long). The time it took is printed.
 */
static bool restart_with(struct restart_env *e, const char *const *args, int timeout_ms)
{
	pid_t old = e->ag.pid;
	int64_t t0 = mono_us();
	int status;

	e->ag.args = args;
	e->ag.pid = 0;
	if (!ASSERT_OK(agent_env_start(&e->ag), "new agent started and applied")) {
		kill(old, SIGKILL);
		waitpid(old, NULL, 0);
		return false;
	}
	status = wait_exit(old, timeout_ms);
	test__printf("the old agent exited %.0f ms after the new one started\n",
		     (mono_us() - t0) / 1e3);
	if (status)
		kill(old, SIGKILL), waitpid(old, NULL, 0);
	return ASSERT_EQ(status, 0, "the old agent handed everything over and exited 0");
}

/* What the kernel served between two reads of its counters. */
static uint64_t kh_served_now(const struct restart_env *e)
{
	uint64_t s = 0, en = 0;

	pinned_kh_counts(e->ag.pin_dir, &s, &en, NULL);
	return s;
}

static const char *const args_kh[] = { "--http-engine", "--kernel-http", "--resync", "1", NULL };
static const char *const args_nokh[] = { "--http-engine", "--resync", "1", NULL };

/*
 * The operator turns --kernel-http off: the new agent runs the engine
 * alone. The old agent's kernel-served connections (a fast keep-alive one,
 * one whose 150 ms responses are in flight most of the time) must go on in
 * the new agent's engine, without a reset or a lost request, and the old
 * agent must not keep them for its 30 s drain: its successor's first apply
 * retired the kernel tables, so their next request is the engine's, and
 * they are handed over once no response of the kernel is outstanding.
 */
static void subtest_kernel_off(struct restart_env *e)
{
	struct restart_loops l = { 0 };
	const struct mc_result *slowest = NULL;
	uint64_t s0, s1, s2;
	size_t ka_exit, slow_exit;
	int64_t t0;

	if (!loops_start(e, &l))
		goto out;
	s0 = kh_served_now(e);
	wait_results(&l.ka, 50);
	s1 = kh_served_now(e);
	ASSERT_GE(s1 - s0, 50, "before: the kernel serves the keep-alive connection");
	t0 = mono_us();
	if (!restart_with(e, args_nokh, 10000)) {
		loops_stop_check(&l, "kernel HTTP off (the old agent killed)", 0, 0);
		goto out;
	}
	ka_exit = mc_loop_count(&l.ka);
	slow_exit = mc_loop_count(&l.slow);
	s1 = kh_served_now(e);
	loops_run_on(&l);
	s2 = kh_served_now(e);
	test__printf("after the old agent exited: %llu served in the kernel\n",
		     (unsigned long long)(s2 - s1));
	ASSERT_EQ(s2 - s1, 0, "the kernel serves nothing once its tables are retired");
	loops_stop_check(&l, "kernel HTTP off", ka_exit, slow_exit);
	for (size_t i = 0; i < l.nka; i++)
		if (!slowest || l.ka.res[i].t_conn_us - l.ka.res[i].t_start_us >
				slowest->t_conn_us - slowest->t_start_us)
			slowest = &l.ka.res[i];
	if (slowest)
		test__printf("the slowest keep-alive request started %.1f ms after the restart\n",
			     (slowest->t_start_us - t0) / 1e3);
	ASSERT_EQ(agent_env_log_count(&e->ag, "to a successor without the kernel HTTP path"), 1,
		  "the old agent handed its kernel-served connections to the engine");
out:
	loops_free(&l);
}

/*
 * And on again: the engine's connections (made while the kernel path was
 * off) stay the engine's, new connections are the kernel's. After the old
 * agent left, a new keep-alive connection starts: every request the kernel
 * serves from then on is one of its (one at a time: the counter and its
 * count differ by the request in flight at most), none of the old
 * keep-alive connections' (the new-connection loop's requests say
 * "Connection: close": the kernel registers those connections and hands
 * each request to the engine, reason hop_by_hop).
 */
static void subtest_kernel_on(struct restart_env *e)
{
	struct restart_loops l = { 0 };
	struct mc_loop ka2 = { 0 };
	uint64_t s1, s2, en, by0[GAMMAD_KH_R_MAX], by1[GAMMAD_KH_R_MAX];
	size_t ka_exit, slow_exit, nc1, nc2, n2 = 0;

	/* run alone: turned off first, without loops */
	if (e->ag.args != args_nokh && !restart_with(e, args_nokh, 40000))
		goto out;
	if (!loops_start(e, &l))
		goto out;
	if (!restart_with(e, args_kh, 20000))
		goto out;
	ka_exit = mc_loop_count(&l.ka);
	slow_exit = mc_loop_count(&l.slow);
	/*
	 * The counters before the loop's count: a connection the kernel counted
	 * before by0 and done after nc1 is then the one in flight at most (read
	 * the other way round, every connection done between the two reads
	 * was one more: 3600 counted for 3601 once in CI).
	 */
	pinned_kh_counts(e->ag.pin_dir, &s1, &en, by0);
	nc1 = mc_loop_count(&l.nc);
	if (!ASSERT_OK(mc_loop_start(&ka2, &e->at_v1, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "a new keep-alive connection"))
		goto out;
	loops_run_on(&l);
	wait_results(&ka2, 100);
	n2 = mc_loop_stop(&ka2);
	nc2 = mc_loop_count(&l.nc);
	pinned_kh_counts(e->ag.pin_dir, &s2, &en, by1);
	for (int r = 0; r < GAMMAD_KH_R_MAX; r++)
		if (by1[r] != by0[r])
			test__printf("  kernel HTTP reason %d: +%llu\n", r,
				     (unsigned long long)(by1[r] - by0[r]));
	test__printf("after the old agent exited: %llu served in the kernel; the new keep-alive "
		     "connection %zu requests, new connections %zu\n",
		     (unsigned long long)(s2 - s1), n2, nc2 - nc1);
	print_errors("new keep-alive", ka2.res, n2);
	ASSERT_GE(n2, 100, "the new keep-alive connection");
	ASSERT_EQ(mc_count_errors(ka2.res, n2), 0, "no failed request on it");
	ASSERT_GE(s2 - s1 + 1, n2, "new connections: the kernel's");
	ASSERT_LE(s2 - s1, n2 + 1, "the engine's connections stay the engine's");
	ASSERT_GE(by1[GAMMAD_KH_R_HOP_BY_HOP] - by0[GAMMAD_KH_R_HOP_BY_HOP] + 1, nc2 - nc1,
		  "every new connection registered by the kernel path");
	loops_stop_check(&l, "kernel HTTP on", ka_exit, slow_exit);
out:
	mc_loop_free(&ka2);
	loops_free(&l);
}

/*
 * The mesh lab, the echo Service's ClusterIP, a client place in each echo
 * pod, and an agent started with args over this file's routes.
 */
static bool restart_env_start(struct restart_env *e, const char *const *args)
{
	if (lab_env_start_mesh(&e->lab, NULL))
		return false;
	e->v1 = lab_env_find(&e->lab, MESH_NS, "echo-v1");
	e->v2 = lab_env_find(&e->lab, MESH_NS, "echo-v2");
	if (!ASSERT_OK_PTR(e->v1, "echo-v1") || !ASSERT_OK_PTR(e->v2, "echo-v2"))
		return false;
	if (!lab_env_cluster_ip(&e->lab, MESH_NS, "echo", false, e->echo4))
		return false;
	e->at_v1 = (struct mc_place){ .cgroup = e->v1->container_cgroup, .netns = e->v1->netns };
	e->at_v2 = (struct mc_place){ .cgroup = e->v2->container_cgroup, .netns = e->v2->netns };
	if (!ASSERT_OK(agent_env_init(&e->ag, &e->lab), "agent dir"))
		return false;
	e->ag.args = args;
	return ASSERT_OK(agent_env_write(&e->ag, "routes.yaml", routes), "routes") &&
	       ASSERT_OK(agent_env_start(&e->ag), "gammad run");
}

void test_engine_restart(void)
{
	static const char *const args[] = { "--http-engine", "--resync", "1", NULL };
	struct restart_env e = { 0 };

	if (!restart_env_start(&e, args))
		goto cleanup;
	if (test__start_subtest("graceful"))
		subtest_graceful(&e);
	if (test__start_subtest("no_engine_refused"))
		subtest_no_engine_refused(&e);
	if (test__start_subtest("kill9"))
		subtest_kill9(&e);
	if (test__start_subtest("handover_wait"))
		subtest_handover_wait(&e);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}

/* restart_env_start with --kernel-http, and the kernel path on. */
static bool kernel_env_start(struct restart_env *e, const char *const *args)
{
	return restart_env_start(e, args) &&
	       ASSERT_EQ(agent_env_log_count(&e->ag, "kernel HTTP data path: on"), 1,
			 "the kernel path runs");
}

/* The same graceful restart with the kernel HTTP path on, then an upgrade (subtest_kernel). */
static void run_kernel(bool sockmap)
{
	static const char *const args[] = { "--http-engine", "--kernel-http", "--resync", "1",
					    NULL };
	static const char *const args_sk[] = { "--http-engine", "--kernel-http", "--sockmap",
					       "--resync", "1", NULL };
	struct restart_env e = { 0 };
	char bin[64], src[PATH_MAX], dst[PATH_MAX] = "", *out = NULL;

	/* the upgrade's binary: a copy of this build's, under the build dir */
	snprintf(bin, sizeof(bin), "gammad-upgrade-%d", (int)getpid());
	snprintf(src, sizeof(src), "%s", test_bin("gammad"));
	snprintf(dst, sizeof(dst), "%s", test_bin(bin));
	if (!ASSERT_OK(lab_run_capture(&out, "cp %s %s", src, dst), "the upgrade's binary"))
		goto cleanup;
	if (!kernel_env_start(&e, sockmap ? args_sk : args))
		goto cleanup;
	if (test__start_subtest("graceful_kernel"))
		subtest_kernel(&e, bin, sockmap);
cleanup:
	free(out);
	agent_env_fini(&e.ag);
	if (dst[0])
		unlink(dst);
	lab_env_fini(&e.lab);
}

void test_engine_restart_kernel(void)
{
	run_kernel(false);
}

/*
 * With --sockmap too: the echo pods are on this node, so the pools' slots
 * are paired with their server sockets (gammad_khsvs_v1), which the
 * successor adopts with the slots.
 */
void test_engine_restart_kernel_sk(void)
{
	run_kernel(true);
}

/*
 * --kernel-http turned off by a restart, then on again (subtest_kernel_off,
 * subtest_kernel_on).
 */
void test_engine_restart_kernel_off(void)
{
	struct restart_env e = { 0 };

	if (!kernel_env_start(&e, args_kh))
		goto cleanup;
	if (test__start_subtest("kernel_off"))
		subtest_kernel_off(&e);
	if (test__start_subtest("kernel_on"))
		subtest_kernel_on(&e);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}

/*
 * A layout upgrade (build/next/gammad: gammad_be_v2 -> _v3 among others,
 * datapath/layout.c) beside the running --kernel-http agent, under the
 * three loops. The connections the kernel served keep the old build's
 * sk_msg program (a sockhash keeps a socket's programs), which reads the
 * old backend map: the commit empties it, so each of them hands its next
 * request to the engine (no_endpoint), for good, with no failed request.
 * A keep-alive connection made after the upgrade runs the new programs:
 * every request the kernel serves from then on is one of its.
 */
static void subtest_kernel_layout(struct restart_env *e)
{
	struct restart_loops l = { 0 };
	struct mc_loop ka2 = { 0 };
	uint64_t s1, s2, en, by0[GAMMAD_KH_R_MAX], by1[GAMMAD_KH_R_MAX];
	size_t ka_exit, slow_exit, n2 = 0;

	if (!loops_start(e, &l))
		goto out;
	pinned_kh_counts(e->ag.pin_dir, &s1, &en, by0);
	e->ag.bin = "next/gammad";
	if (!restart_with(e, args_kh, 20000)) {
		loops_stop_check(&l, "layout upgrade (the old agent killed)", 0, 0);
		goto out;
	}
	ka_exit = mc_loop_count(&l.ka);
	slow_exit = mc_loop_count(&l.slow);
	pinned_kh_counts(e->ag.pin_dir, &s1, &en, NULL);
	if (!ASSERT_OK(mc_loop_start(&ka2, &e->at_v1, e->echo4, 8080, MC_HTTP_KEEPALIVE,
				     LOOP_MAX), "a new keep-alive connection"))
		goto out;
	loops_run_on(&l);
	wait_results(&ka2, 100);
	n2 = mc_loop_stop(&ka2);
	pinned_kh_counts(e->ag.pin_dir, &s2, &en, by1);
	for (int r = 0; r < GAMMAD_KH_R_MAX; r++)
		if (by1[r] != by0[r])
			test__printf("  kernel HTTP reason %d: +%llu\n", r,
				     (unsigned long long)(by1[r] - by0[r]));
	test__printf("after the upgrade: %llu served in the kernel; the new keep-alive "
		     "connection %zu requests\n", (unsigned long long)(s2 - s1), n2);
	print_errors("new keep-alive", ka2.res, n2);
	loops_stop_check(&l, "layout upgrade", ka_exit, slow_exit);
	ASSERT_EQ(agent_env_log_count(&e->ag, "gammad_be_v2 emptied"), 1,
		  "the old backend map emptied at the commit");
	ASSERT_GE(by1[GAMMAD_KH_R_NO_ENDPOINT] - by0[GAMMAD_KH_R_NO_ENDPOINT], 2,
		  "both old keep-alive connections went to the engine");
	ASSERT_GE(n2, 100, "the new keep-alive connection");
	ASSERT_EQ(mc_count_errors(ka2.res, n2), 0, "no failed request on it");
	ASSERT_GE(s2 - s1 + 1, n2, "the new connection: the kernel's");
	ASSERT_LE(s2 - s1, n2 + 1, "the old ones: the engine's");
	ASSERT_EQ(agent_env_log_count(&e->ag, "(0 of the kernel HTTP path)"), 0,
		  "the kernel-registered connections handed over as such");
out:
	e->ag.bin = NULL;
	mc_loop_free(&ka2);
	loops_free(&l);
}

/* --kernel-http across a layout upgrade (subtest_kernel_layout). */
void test_engine_restart_kernel_layout(void)
{
	struct restart_env e = { 0 };

	if (!kernel_env_start(&e, args_kh))
		goto cleanup;
	if (test__start_subtest("upgrade"))
		subtest_kernel_layout(&e);
cleanup:
	agent_env_fini(&e.ag);
	lab_env_fini(&e.lab);
}
