// SPDX-License-Identifier: Apache-2.0
/*
 * Containers: every container runs the echo server, started the way a
 * runtime would start it - its own session, moved into its cgroup before
 * exec (so the very first connect() is already seen by cgroup BPF), in the
 * pod's network namespace - then `lab up` waits for each ready file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

#define MAX_ARGS 256

struct launch {
	char *argv[MAX_ARGS];
	int argc;
	char env_buf[6][320];
	char *envp[8];
	char ready[PATH_MAX], log[PATH_MAX];
	char netns_path[PATH_MAX];
	char strings[64][24];	/* --port=N flags made here */
	int nr_strings;
};

static void container_files(const char *state_dir, const struct lab_pod *p,
			    const struct lab_container *c, struct launch *l)
{
	snprintf(l->ready, sizeof(l->ready), "%s/pods/%s_%s/%s.ready", state_dir, p->namespace,
		 p->name, c->name);
	snprintf(l->log, sizeof(l->log), "%s/pods/%s_%s/%s.log", state_dir, p->namespace,
		 p->name, c->name);
	snprintf(l->netns_path, sizeof(l->netns_path), LAB_RUN_NETNS "/%s", p->netns);
}

/* Does args already listen on port (as --flag=N or --flag N) for one of flags? */
static bool args_cover(const struct k8s_container *c, const char *const *flags, uint16_t port)
{
	char want[32];

	for (size_t i = 0; i < c->nr_args; i++) {
		for (const char *const *f = flags; *f; f++) {
			snprintf(want, sizeof(want), "%s=%u", *f, port);
			if (!strcmp(c->args[i], want))
				return true;
			snprintf(want, sizeof(want), "%u", port);
			if (!strcmp(c->args[i], *f) && i + 1 < c->nr_args && !strcmp(c->args[i + 1], want))
				return true;
		}
	}
	return false;
}

static const char *const tcp_flags[] = { "--port", "--tcp", "--grpc", "--tls", NULL };
static const char *const udp_flags[] = { "--udp", NULL };

static int push(struct launch *l, const char *arg)
{
	if (l->argc >= MAX_ARGS - 1)
		return -E2BIG;
	l->argv[l->argc++] = (char *)arg;
	l->argv[l->argc] = NULL;
	return 0;
}

/* Container ports that the args do not already serve become --port/--udp flags. */
static int push_port_flags(struct launch *l, const struct k8s_container *c)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < c->nr_ports; i++) {
		const struct k8s_container_port *p = &c->ports[i];
		bool udp = p->protocol == L4_UDP;

		if (p->protocol == L4_SCTP || args_cover(c, udp ? udp_flags : tcp_flags, p->port))
			continue;
		if (l->nr_strings == 64)
			return -E2BIG;
		snprintf(l->strings[l->nr_strings], sizeof(l->strings[0]), "%s=%u",
			 udp ? "--udp" : "--port", p->port);
		ret = push(l, l->strings[l->nr_strings++]);
	}
	return ret;
}

static int build_launch(const struct lab_model *m, const struct lab_pod *p,
			const struct lab_container *c, struct launch *l)
{
	char ip[INET6_ADDRSTRLEN];
	int ret = 0;

	l->argc = 0;
	push(l, m->server);
	push(l, "serve");
	for (size_t i = 0; !ret && i < c->spec->nr_args; i++)
		ret = push(l, c->spec->args[i]);
	if (!ret)
		ret = push_port_flags(l, c->spec);
	if (!ret)
		ret = push(l, "--pod") ?: push(l, p->name) ?: push(l, "--namespace") ?:
		      push(l, p->namespace) ?: push(l, "--ready-file") ?: push(l, l->ready);
	snprintf(l->env_buf[0], sizeof(l->env_buf[0]), "POD_NAME=%s", p->name);
	snprintf(l->env_buf[1], sizeof(l->env_buf[1]), "NAMESPACE=%s", p->namespace);
	snprintf(l->env_buf[2], sizeof(l->env_buf[2]), "SERVICE_NAME=%s", p->owner ? p->owner : p->name);
	snprintf(l->env_buf[3], sizeof(l->env_buf[3]), "POD_IP=%s", ip_addr_str(&p->ip4, ip, sizeof(ip)));
	snprintf(l->env_buf[4], sizeof(l->env_buf[4]), "NODE_NAME=%s", m->node_name);
	snprintf(l->env_buf[5], sizeof(l->env_buf[5]), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	for (int i = 0; i < 6; i++)
		l->envp[i] = l->env_buf[i];
	l->envp[6] = NULL;
	return ret;
}

/* What failed in the child before exec, sent back through a CLOEXEC pipe. */
struct child_err {
	int step;
	int err;
};

static const char *const step_names[] = { "open log", "enter cgroup", "open netns",
					  "enter netns", "exec" };

static void __attribute__((noreturn)) child_fail(int fd, int step, int err)
{
	struct child_err e = { step, err };

	if (write(fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

static void __attribute__((noreturn)) child_exec(const struct launch *l, const char *cgroup,
						  int err_fd)
{
	int fd, null_fd;

	setsid();
	fd = open(l->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		child_fail(err_fd, 0, errno);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd >= 0)
		dup2(null_fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (lab_cgroup_enter(cgroup, getpid()))
		child_fail(err_fd, 1, errno);
	fd = open(l->netns_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		child_fail(err_fd, 2, errno);
	if (setns(fd, CLONE_NEWNET))
		child_fail(err_fd, 3, errno);
	signal(SIGPIPE, SIG_DFL);
	execve(l->argv[0], l->argv, l->envp);
	child_fail(err_fd, 4, errno);
}

static int spawn(const struct lab_pod *p, struct lab_container *c, const struct launch *l)
{
	struct child_err e;
	int pfd[2], ret = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (!pid)
		child_exec(l, c->cgroup, pfd[1]);
	close(pfd[1]);
	c->pid = pid;
	do
		n = read(pfd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(e)) {
		pr_err("pod %s/%s container %s: cannot start %s: %s: %s", p->namespace, p->name,
		       c->name, l->argv[0], step_names[e.step], strerror(e.err));
		waitpid(pid, NULL, 0);
		c->pid = 0;
		return -e.err;
	}
	return 0;
}

static void log_tail(const char *log)
{
	char *text;
	size_t len;

	if (read_file(log, &text, &len))
		return;
	if (len)
		pr_err("last output of the server (%s):\n%s", log, len > 2000 ? text + len - 2000 : text);
	free(text);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* 0 when ready, 1 when still starting, negative when it died. */
static int container_state(const struct lab_pod *p, struct lab_container *c, const char *ready,
			   const char *log)
{
	int status;

	if (path_exists(ready))
		return 0;
	if (waitpid(c->pid, &status, WNOHANG) != c->pid)
		return 1;
	pr_err("pod %s/%s container %s: the echo server exited (status %d) before it was ready",
	       p->namespace, p->name, c->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	log_tail(log);
	c->pid = 0;
	return -ECHILD;
}

static int wait_ready(struct lab_model *m, const char *state_dir)
{
	long deadline = now_ms() + LAB_READY_TIMEOUT_MS;
	struct launch *l = calloc(1, sizeof(*l));
	int pending, ret = 0;

	if (!l)
		return -ENOMEM;
	do {
		pending = 0;
		for (size_t i = 0; !ret && i < m->nr_pods; i++) {
			struct lab_pod *p = &m->pods[i];

			for (size_t j = 0; !ret && j < p->nr_containers; j++) {
				int st;

				container_files(state_dir, p, &p->containers[j], l);
				st = container_state(p, &p->containers[j], l->ready, l->log);
				if (st < 0)
					ret = st;
				if (st <= 0)
					continue;
				pending++;
				if (now_ms() > deadline) {
					pr_err("pod %s/%s container %s: not ready after %d ms (no %s)",
					       p->namespace, p->name, p->containers[j].name,
					       LAB_READY_TIMEOUT_MS, l->ready);
					log_tail(l->log);
					ret = -ETIMEDOUT;
				}
			}
		}
		if (!ret && pending)
			usleep(10000);
	} while (!ret && pending);
	free(l);
	return ret;
}

int lab_start_pods(struct lab_model *m, const char *state_dir)
{
	struct launch *l = calloc(1, sizeof(*l));
	char dir[PATH_MAX];
	int ret = 0;

	if (!l)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < m->nr_pods; i++) {
		struct lab_pod *p = &m->pods[i];

		snprintf(dir, sizeof(dir), "%s/pods/%s_%s", state_dir, p->namespace, p->name);
		ret = mkdir_p(dir, 0755);
		for (size_t j = 0; !ret && j < p->nr_containers; j++) {
			container_files(state_dir, p, &p->containers[j], l);
			unlink(l->ready);
			ret = build_launch(m, p, &p->containers[j], l);
			if (!ret)
				ret = spawn(p, &p->containers[j], l);
		}
	}
	free(l);
	return ret ? ret : wait_ready(m, state_dir);
}
