// SPDX-License-Identifier: Apache-2.0
/*
 * The same-node socket redirect (gammad run --sockmap) on the HTTP engine's
 * connections, through the real lab and agent. The agent runs in a cgroup
 * under the one its hooks attach to, as a DaemonSet pod is under the cgroup2
 * root, so its own sockets pass the sockops program too: a steered client
 * connection (loopback in the client pod's netns) and the engine's upstream
 * connection (client pod IP to backend pod IP) go socket to socket, keyed
 * in gammad_esockh_v1 with the netns cookie. Two pods whose steered
 * connections have the very same loopback tuple (both bind one local port)
 * must each get their own answers.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "test_progs.h"
#include "gammad/maps.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"
#include "lib/netns.h"

#define ENGINE_PORT 15006
#define CLIENT_PORT 40123	/* both pods' steered connections: one loopback tuple */
#define CALLS 50
#define IO_TIMEOUT_MS 5000

static const char routes[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: echo-8080-http, namespace: " MESH_NS "}\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: echo, port: 8080}\n"
	"  rules:\n"
	"  - backendRefs:\n"
	"    - {name: echo-v1, port: 8080}\n";

struct result {
	int err;
	char step[32];
	uint16_t lport[2];	/* getsockname() of each steered connection */
	int ok[2];		/* answers with the path their own pod asked for */
	long segs;		/* TCP segments both netns sent during the calls */
	long entries;		/* gammad_esockh_v1 while both connections were open */
};

/* Tcp OutSegs of the caller's netns. */
static long out_segs(void)
{
	char line[1024], head[1024] = "";
	FILE *f = fopen("/proc/net/snmp", "re");
	long v = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tcp:", 4))
			continue;
		if (!head[0]) {
			snprintf(head, sizeof(head), "%s", line);
			continue;
		}
		/* the value under the "OutSegs" column */
		char *h = head, *l = line, *hs, *ls;

		for (char *ht = strtok_r(h, " \n", &hs), *lt = strtok_r(l, " \n", &ls); ht && lt;
		     ht = strtok_r(NULL, " \n", &hs), lt = strtok_r(NULL, " \n", &ls))
			if (!strcmp(ht, "OutSegs"))
				v = atol(lt);
		break;
	}
	if (f)
		fclose(f);
	return v;
}

static long segs_in(const char *ns)
{
	int prev = netns_enter(ns);
	long v;

	if (prev < 0)
		return -1;
	v = out_segs();
	netns_leave(prev);
	return v;
}

/* Placed at `at`, a connection from local port CLIENT_PORT to ip:port. */
static int dial(const struct mc_place *at, const char *ip, int port, uint16_t *lport)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(CLIENT_PORT) };
	socklen_t len = sizeof(a);
	int fd, one = 1;

	if (mc_place_self(at))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*lport = ntohs(a.sin_port);
	return fd;
}

/*
 * GET path on keep-alive connection fd; 1 if the echo answered 200 with
 * that path in its body, 0 if it answered something else, -1 on failure.
 * Non-blocking reads after poll(): a redirected socket's blocking read may
 * return EAGAIN (tcp_bpf), which is not what is tested here.
 */
static int get(int fd, const char *path)
{
	char buf[8192];
	size_t n = 0;
	long clen = -1;
	char *body = NULL;

	if (dprintf(fd, "GET %s HTTP/1.1\r\nHost: echo\r\n\r\n", path) < 0)
		return -1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (body && clen >= 0 && (size_t)(body - buf) + (size_t)clen <= n)
			break;
		if (n + 1 >= sizeof(buf) || poll(&p, 1, IO_TIMEOUT_MS) <= 0)
			return -1;
		r = recv(fd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = 0;
		if (!body && (body = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");

			body += 4;
			if (!cl || cl > body)
				return -1;
			clen = atol(cl + 17);
		}
	}
	body[clen] = 0;
	return !strncmp(buf, "HTTP/1.1 200", 12) && strstr(body, path) ? 1 : 0;
}

static void client(const struct mc_place at[2], const char *ns[2], const char *ip,
		   const char *pin_dir, int res_fd)
{
	struct result r = { 0 };
	char path[64];
	int fd[2];
	long s0;

#define STEP(s) do { r.err = -errno ?: -EIO; snprintf(r.step, sizeof(r.step), "%s", s); \
		     goto out; } while (0)
	for (int i = 0; i < 2; i++) {
		fd[i] = dial(&at[i], ip, 8080, &r.lport[i]);
		if (fd[i] < 0)
			STEP(i ? "dial pod b" : "dial pod a");
		/* the first call also opens the engine's pooled upstream */
		snprintf(path, sizeof(path), "/warm-%d", i);
		if (get(fd[i], path) != 1)
			STEP("first call");
	}
	r.entries = pinned_entries(pin_dir, GAMMAD_MAP_ENGINE_SOCKHASH);
	s0 = segs_in(ns[0]) + segs_in(ns[1]);
	for (int c = 0; c < CALLS; c++)
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "/sockmap-pod%d-call%d", i, c);
			r.ok[i] += get(fd[i], path) == 1;
		}
	r.segs = segs_in(ns[0]) + segs_in(ns[1]) - s0;
out:
	(void)!write(res_fd, &r, sizeof(r));
	_exit(0);
}

void test_agent_sockmap(void)
{
	static const char *const args[] = { "--sockmap", "--resync", "1", NULL };
	const struct lab_pod_info *a, *b;
	struct lab_env lab = { 0 };
	struct agent_env ag = { 0 };
	struct mc_place at[2];
	const char *ns[2];
	char echo4[INET6_ADDRSTRLEN], agent_cg[PATH_MAX + 16] = "", lis[2][600];
	struct result r = { 0 };
	struct pollfd pf;
	int pipefd[2] = { -1, -1 };
	pid_t pid = 0;

	if (lab_env_start_mesh(&lab, NULL))
		goto cleanup;
	a = lab_env_find(&lab, MESH_NS, "echo-v1");
	b = lab_env_find(&lab, MESH_NS, "echo-v2");
	if (!ASSERT_OK_PTR(a, "echo-v1") || !ASSERT_OK_PTR(b, "echo-v2") ||
	    !lab_env_cluster_ip(&lab, MESH_NS, "echo", false, echo4))
		goto cleanup;
	at[0] = (struct mc_place){ .cgroup = a->container_cgroup, .netns = a->netns };
	at[1] = (struct mc_place){ .cgroup = b->container_cgroup, .netns = b->netns };
	ns[0] = a->netns;
	ns[1] = b->netns;
	if (!ASSERT_OK(agent_env_init(&ag, &lab), "agent dir"))
		goto cleanup;
	/* under the hooks' cgroup, as the DaemonSet's pod is under the cgroup2 root */
	snprintf(agent_cg, sizeof(agent_cg), "%s/gammad-agent-%d", ag.cgroup, getpid());
	if (!ASSERT_OK(mkdir(agent_cg, 0755), "agent cgroup"))
		goto cleanup;
	ag.join_cgroup = agent_cg;
	ag.args = args;
	if (!ASSERT_OK(agent_env_write(&ag, "routes.yaml", routes), "routes") ||
	    !ASSERT_OK(agent_env_start(&ag), "gammad run --sockmap"))
		goto cleanup;
	snprintf(lis[0], sizeof(lis[0]), "pod %s/%s: listening", a->ns, a->name);
	snprintf(lis[1], sizeof(lis[1]), "pod %s/%s: listening", b->ns, b->name);
	for (int t = 0; t < 100 && (agent_env_log_count(&ag, lis[0]) < 1 ||
				    agent_env_log_count(&ag, lis[1]) < 1); t++)
		usleep(100 * 1000);
	if (!ASSERT_OK(pipe2(pipefd, O_CLOEXEC), "pipe"))
		goto cleanup;
	pid = fork();
	if (!ASSERT_GE(pid, 0, "fork"))
		goto cleanup;
	if (!pid)
		client(at, ns, echo4, ag.pin_dir, pipefd[1]);
	pf = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	if (!ASSERT_EQ(poll(&pf, 1, 60000), 1, "client done") ||
	    !ASSERT_EQ(read(pipefd[0], &r, sizeof(r)), (ssize_t)sizeof(r), "result"))
		goto cleanup;
	test__printf("err %d (%s) ports %u %u ok %d %d segments %ld entries %ld\n", r.err,
		     r.step, r.lport[0], r.lport[1], r.ok[0], r.ok[1], r.segs, r.entries);
	ASSERT_EQ(r.err, 0, "steered calls from both pods");
	ASSERT_EQ(r.lport[0], CLIENT_PORT, "pod a's connection from the shared port");
	ASSERT_EQ(r.lport[1], CLIENT_PORT, "pod b's connection from the same port");
	ASSERT_EQ(r.ok[0], CALLS, "pod a got its own answers");
	ASSERT_EQ(r.ok[1], CALLS, "pod b got its own answers");
	/* both client ends and both accepted ends (pooled upstreams are in gammad_sockh_v1) */
	ASSERT_GE(r.entries, 4, "steered connections in the engine's sockhash");
	/* over TCP every call is at least 2 segments per hop, 2 hops, 2 pods: >= 400 */
	ASSERT_LT(r.segs, 20, "the calls went socket to socket, not over TCP");
cleanup:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	agent_env_fini(&ag);
	if (agent_cg[0])
		rmdir(agent_cg);
	lab_env_fini(&lab);
}
