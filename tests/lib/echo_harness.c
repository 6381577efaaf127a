// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/echo_harness.h"

#define READY_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 3000
#define MAX_ARGS 64

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

char *echo_proc_read_log(const struct echo_proc *p)
{
	char *log = test_read_file(p->log);

	return log ? log : strdup("");
}

int echo_proc_log_count(const struct echo_proc *p, const char *needle)
{
	char *log = echo_proc_read_log(p);
	int n = 0;

	for (const char *s = log; s && (s = strstr(s, needle)); s += strlen(needle))
		n++;
	free(log);
	return n;
}

static void show_log(const struct echo_proc *p)
{
	char *log = echo_proc_read_log(p);

	test__printf("--- echo server log (%s) ---\n%s--- end of log ---\n", p->log, log);
	free(log);
}

static int parse_ready(struct echo_proc *p)
{
	FILE *f = fopen(p->ready, "re");
	char proto[8];
	unsigned int port;

	if (!f)
		return -errno;
	p->nr_ports = 0;
	while (p->nr_ports < ECHO_MAX_PORTS && fscanf(f, "%7s %u", proto, &port) == 2) {
		snprintf(p->ports[p->nr_ports].proto, sizeof(p->ports[0].proto), "%s", proto);
		p->ports[p->nr_ports].port = port;
		p->nr_ports++;
	}
	fclose(f);
	return p->nr_ports ? 0 : -ENODATA;
}

static void exec_server(const struct echo_proc *p, const char *const *args,
			const char *const *env, bool own_netns)
{
	const char *argv[MAX_ARGS + 4];
	char ready_arg[sizeof(p->ready) + 16];
	int n = 0, fd;

	fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	if (own_netns && unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		_exit(126);
	}
	unsetenv("POD_NAME");
	unsetenv("NAMESPACE");
	unsetenv("SERVICE_NAME");
	unsetenv("INGRESS_NAME");
	for (int i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	argv[n++] = "echo";
	argv[n++] = "serve";
	for (int i = 0; args && args[i] && n < MAX_ARGS; i++)
		argv[n++] = args[i];
	snprintf(ready_arg, sizeof(ready_arg), "--ready-file=%s", p->ready);
	argv[n++] = ready_arg;
	argv[n] = NULL;
	execv(test_bin("echo"), (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", test_bin("echo"), strerror(errno));
	_exit(127);
}

static int start(struct echo_proc *p, const char *const *args, const char *const *env,
		 bool own_netns)
{
	long long deadline = mono_ms() + READY_TIMEOUT_MS;
	int status, err;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/gammad-echo-test.XXXXXX");
	if (!mkdtemp(p->dir)) {
		err = -errno;
		p->dir[0] = '\0';
		test__printf("mkdtemp: %s\n", strerror(-err));
		return err;
	}
	snprintf(p->ready, sizeof(p->ready), "%s/ready", p->dir);
	snprintf(p->log, sizeof(p->log), "%s/server.log", p->dir);

	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		err = -errno;
		p->pid = 0;
		echo_proc_stop(p);
		return err;
	}
	if (!p->pid)
		exec_server(p, args, env, own_netns);

	while (access(p->ready, F_OK)) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 126) {
				echo_proc_stop(p);
				return -EPERM;	/* no new network namespace for us */
			}
			test__printf("echo serve exited before it was ready (status 0x%x)\n", status);
			err = -ECHILD;
			goto fail;
		}
		if (mono_ms() > deadline) {
			test__printf("echo serve not ready after %d ms\n", READY_TIMEOUT_MS);
			err = -ETIMEDOUT;
			goto fail;
		}
		sleep_ms(5);
	}
	err = parse_ready(p);
	if (!err)
		return 0;
	test__printf("cannot read ready file %s: %s\n", p->ready, strerror(-err));
fail:
	show_log(p);
	echo_proc_stop(p);
	return err;
}

int echo_proc_start(struct echo_proc *p, const char *const *args, const char *const *env)
{
	return start(p, args, env, false);
}

int echo_proc_start_netns(struct echo_proc *p, const char *const *args)
{
	return start(p, args, NULL, true);
}

unsigned short echo_proc_port(const struct echo_proc *p, const char *proto, int n)
{
	for (int i = 0; i < p->nr_ports; i++)
		if (!strcmp(p->ports[i].proto, proto) && !n--)
			return p->ports[i].port;
	return 0;
}

int echo_proc_stop(struct echo_proc *p)
{
	long long deadline = mono_ms() + STOP_TIMEOUT_MS;
	int status = -1;

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		while (waitpid(p->pid, &status, WNOHANG) != p->pid) {
			if (mono_ms() > deadline) {
				test__printf("echo serve ignored SIGTERM for %d ms: killing it\n",
					     STOP_TIMEOUT_MS);
				kill(p->pid, SIGKILL);
				waitpid(p->pid, &status, 0);
				break;
			}
			sleep_ms(5);
		}
		p->pid = 0;
	}
	if (p->dir[0]) {
		char tmp[sizeof(p->ready) + 8];

		snprintf(tmp, sizeof(tmp), "%s.tmp", p->ready);
		unlink(tmp);
		unlink(p->ready);
		unlink(p->log);
		rmdir(p->dir);
		p->dir[0] = '\0';
	}
	return status;
}

/*
 * Probe the wildcard address, dual-stack, as the server binds it: a port
 * that is free on 127.0.0.1 can still be held on another address (say a
 * TIME_WAIT socket of other traffic on this host), which the server's
 * [::] bind would then collide with.
 */
unsigned short echo_free_port(int type)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned short port = 0;
	int fd, zero = 0;

	fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
			bind(fd, (struct sockaddr *)&s6, sizeof(s6)))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return 0;
		if (bind(fd, (struct sockaddr *)&s4, sizeof(s4))) {
			close(fd);
			return 0;
		}
	}
	if (!getsockname(fd, (struct sockaddr *)&ss, &len))
		port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	close(fd);
	return port;
}

socklen_t echo_loopback_addr(int family, unsigned short port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s4->sin_port = htons(port);
	return sizeof(*s4);
}

int echo_connect(int family, unsigned short port)
{
	struct timeval tv = { ECHO_IO_TIMEOUT_MS / 1000, 0 };
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd;

	len = echo_loopback_addr(family, port, &ss);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A hung server must fail the test, not hang the runner. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int echo_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int echo_send_str(int fd, const char *s)
{
	return echo_send_all(fd, s, strlen(s));
}

int echo_wait_closed(int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (!n || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;	/* EAGAIN: the receive timeout passed */
		test__printf("unexpected %zd bytes while waiting for close: %.*s\n", n, (int)n, buf);
	}
}

/* Read more into @r; bytes read, 0 at EOF, -errno (-EAGAIN on timeout). */
static ssize_t reader_fill(struct echo_reader *r)
{
	ssize_t n;

	if (r->cap - r->len < 65536) {
		size_t cap = r->cap ? r->cap * 2 : 131072;
		char *buf = realloc(r->buf, cap + 1);

		if (!buf)
			return -ENOMEM;
		r->buf = buf;
		r->cap = cap;
	}
	do {
		n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->len += n;
	return n;
}

static void reader_take(struct echo_reader *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

const char *echo_resp_header(const struct echo_http_resp *resp, const char *name,
			     char *buf, size_t size)
{
	size_t n = strlen(name);

	for (const char *line = strstr(resp->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		const char *v, *end;

		line += 2;
		if (strncasecmp(line, name, n) || line[n] != ':')
			continue;
		v = line + n + 1;
		while (*v == ' ')
			v++;
		end = strstr(v, "\r\n");
		if (!end)
			end = v + strlen(v);
		snprintf(buf, size, "%.*s", (int)(end - v), v);
		return buf;
	}
	return NULL;
}

int echo_read_response(struct echo_reader *r, bool head_request, struct echo_http_resp *resp)
{
	char cl[32];
	char *end = NULL;
	size_t head_len, body_len = 0;
	ssize_t n;

	memset(resp, 0, sizeof(*resp));
	for (;;) {
		if (r->buf) {
			r->buf[r->len] = '\0';
			end = memmem(r->buf, r->len, "\r\n\r\n", 4);
		}
		if (end)
			break;
		n = reader_fill(r);
		if (n <= 0) {
			test__printf("reading a response head: %s (%zu bytes so far)\n",
				     n ? strerror(-n) : "connection closed", r->len);
			return n ? (int)n : -ECONNRESET;
		}
	}
	head_len = end + 4 - r->buf;
	resp->head = strndup(r->buf, head_len);
	if (!resp->head)
		return -ENOMEM;
	if (sscanf(resp->head, "HTTP/1.%*d %d", &resp->status) != 1) {
		test__printf("bad status line in: %s\n", resp->head);
		return -EPROTO;
	}
	reader_take(r, head_len);
	if (!head_request && echo_resp_header(resp, "Content-Length", cl, sizeof(cl)))
		body_len = strtoul(cl, NULL, 10);
	while (r->len < body_len) {
		n = reader_fill(r);
		if (n <= 0) {
			test__printf("reading a %zu byte body: %s\n", body_len,
				     n ? strerror(-n) : "connection closed");
			return n ? (int)n : -ECONNRESET;
		}
	}
	resp->body = malloc(body_len + 1);
	if (!resp->body)
		return -ENOMEM;
	memcpy(resp->body, r->buf, body_len);
	resp->body[body_len] = '\0';
	resp->body_len = body_len;
	reader_take(r, body_len);
	return 0;
}

void echo_resp_free(struct echo_http_resp *resp)
{
	free(resp->head);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

void echo_reader_free(struct echo_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

int echo_http_once(unsigned short port, const char *raw, struct echo_http_resp *resp)
{
	struct echo_reader r = { 0 };
	int err;

	r.fd = echo_connect(AF_INET, port);
	if (r.fd < 0)
		return r.fd;
	err = echo_send_str(r.fd, raw);
	if (!err)
		err = echo_read_response(&r, !strncmp(raw, "HEAD ", 5), resp);
	close(r.fd);
	echo_reader_free(&r);
	return err;
}

/* Drain @fd into @mem; false at EOF. */
static bool drain(int fd, FILE *mem)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0) {
		fwrite(buf, 1, n, mem);
		return true;
	}
	return n < 0 && errno == EINTR;
}

int echo_run(const char *const *argv, char **out, char **err, int *status, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	int out_pipe[2], err_pipe[2];
	size_t out_len, err_len;
	FILE *out_mem, *err_mem;
	struct pollfd pfd[2];
	bool killed = false;
	pid_t pid;

	*out = *err = NULL;
	if (pipe2(out_pipe, O_CLOEXEC))
		return -errno;
	if (pipe2(err_pipe, O_CLOEXEC)) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (!pid) {
		dup2(out_pipe[1], 1);
		dup2(err_pipe[1], 2);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (pid < 0) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		return -errno;
	}
	out_mem = open_memstream(out, &out_len);
	err_mem = open_memstream(err, &err_len);
	pfd[0] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		long long left = deadline - mono_ms();

		if (left <= 0 && !killed) {
			test__printf("%s still running after %d ms: killing it\n", argv[0], timeout_ms);
			kill(pid, SIGKILL);
			killed = true;
		}
		if (poll(pfd, 2, left > 0 ? (int)left : 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			if (!drain(pfd[i].fd, i ? err_mem : out_mem)) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	fclose(out_mem);
	fclose(err_mem);
	waitpid(pid, status, 0);
	return killed ? -ETIMEDOUT : 0;
}
