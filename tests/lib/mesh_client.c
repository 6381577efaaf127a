// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_env.h"
#include "mesh_client.h"
#include "test_progs.h"

#define MC_TIMEOUT_MS 5000

struct mc_shared {
	int stop;		/* set by the parent */
	size_t n;		/* results written, published after each one */
	struct mc_result res[];
};

void mc_addr_port(char *buf, size_t len, const char *ip, int port)
{
	snprintf(buf, len, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
}

static int fill_addr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, int port)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* A TCP connection to ip:port, sends and receives timing out after timeout_ms; fd or -errno. */
static int connect_timed(const char *ip, int port, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err = fill_addr(&ss, &sl, ip, port);

	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&ss, sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		mc_addr_port(buf, len, ip, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		mc_addr_port(buf, len, ip, ntohs(a->sin6_port));
	}
}

static void peer_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	buf[0] = 0;
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl))
		addr_str(&ss, buf, len);
}

/* "key": "VALUE" or "key":"VALUE" anywhere in buf ("" when absent). */
static void find_str(const char *buf, const char *key, char *val, size_t len)
{
	char quoted[32];
	const char *p;
	size_t n;

	val[0] = 0;
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	p = strstr(buf, quoted);
	if (!p)
		return;
	p += strlen(quoted);
	p += strspn(p, " \t");
	if (*p++ != ':')
		return;
	p += strspn(p, " \t");
	if (*p++ != '"')
		return;
	n = strcspn(p, "\"");
	if (n >= len)
		n = len - 1;
	memcpy(val, p, n);
	val[n] = 0;
}

static void find_pod(const char *buf, char *pod, size_t len)
{
	find_str(buf, "pod", pod, len);
}

/* Read until `until` appears (NULL: until EOF) or the buffer is full. */
static int recv_until(int fd, char *buf, size_t cap, const char *until)
{
	size_t got = 0;

	buf[0] = 0;
	while (got + 1 < cap) {
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return until ? -ECONNRESET : 0;
		got += n;
		buf[got] = 0;
		if (until && strstr(buf, until))
			return 0;
	}
	return 0;
}

static void one_request(const char *ip, int port, enum mc_proto proto, int timeout_ms,
			struct mc_result *r)
{
	static const char http_req[] = "GET / HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n\r\n";
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	struct sockaddr_storage ss;
	char buf[8192];
	const char *step = "address";
	socklen_t sl;
	int fd = -1, err;

	memset(r, 0, sizeof(*r));
	r->t_start_us = mono_us();
	err = fill_addr(&ss, &sl, ip, port);
	if (err)
		goto out;
	step = "socket";
	fd = socket(ss.ss_family, (proto == MC_UDP || proto == MC_UDP_SENDTO ? SOCK_DGRAM : SOCK_STREAM) |
		    SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		goto fail;
	if (proto == MC_UDP_SENDTO) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t got;

		step = "sendto";
		if (sendto(fd, "mesh", 4, 0, (struct sockaddr *)&ss, sl) < 0)
			goto fail;
		r->t_conn_us = mono_us();
		step = "recvfrom";
		do
			got = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			goto fail;
		buf[got] = 0;
		addr_str(&from, r->peer, sizeof(r->peer));
		goto parse;
	}
	step = "connect";
	if (connect(fd, (struct sockaddr *)&ss, sl))
		goto fail;
	r->t_conn_us = mono_us();
	peer_str(fd, r->peer, sizeof(r->peer));
	switch (proto) {
	case MC_HTTP:
		step = "send";
		if (send(fd, http_req, sizeof(http_req) - 1, MSG_NOSIGNAL) < 0)
			goto fail;
		step = "recv";
		err = recv_until(fd, buf, sizeof(buf), NULL);
		if (!err && strncmp(buf, "HTTP/1.1 200 ", 13))
			err = -EPROTO;
		break;
	case MC_LINE:
		step = "greeting";
		err = recv_until(fd, buf, sizeof(buf), "\n");
		if (err)
			break;
		step = "send";
		if (send(fd, "TEST\n", 5, MSG_NOSIGNAL) < 0)
			goto fail;
		step = "recv";
		err = recv_until(fd, buf, sizeof(buf), "}");
		break;
	case MC_UDP:
		step = "send";
		if (send(fd, "mesh", 4, 0) < 0)
			goto fail;
		step = "recv";
		err = recv_until(fd, buf, sizeof(buf), "}");
		break;
	case MC_UDP_SENDTO:
	case MC_PINGPONG:
	case MC_UDP_HOLD:
	case MC_HTTP_KEEPALIVE:
		break;
	}
parse:
	if (!err) {
		find_pod(buf, r->pod, sizeof(r->pod));
		find_str(buf, proto == MC_LINE ? "tcpport" : "httpPort", r->port, sizeof(r->port));
		if (proto == MC_HTTP)
			find_str(buf, "path", r->path, sizeof(r->path));
		if (!r->pod[0])
			err = -EBADMSG;
	}
	goto out;
fail:
	err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (!r->t_conn_us)
		r->t_conn_us = mono_us();
	r->err = err;
	if (err)
		snprintf(r->step, sizeof(r->step), "%s", step);
}

/*
 * MC_PINGPONG: one connection for the whole loop, made with MC_LINE's TEST
 * exchange (result 0 names the pod); then one PING/PONG per result, all on
 * that connection. It must survive whatever happens to the agent.
 */
static void pingpong_loop(struct mc_shared *sh, const char *ip, int port, int timeout_ms,
			  size_t max)
{
	struct mc_result *r;
	char buf[256], pod[128] = "", peer[64] = "";
	int fd = -1;

	for (size_t i = 0; i < max && !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); i++) {
		const char *step = "";
		int err = 0;

		r = &sh->res[i];
		memset(r, 0, sizeof(*r));
		r->t_start_us = mono_us();
		if (fd == -2) {
			step = "broken";
			err = -ENOTCONN;
		} else if (fd < 0) {
			step = "connect";
			fd = connect_timed(ip, port, timeout_ms);
			if (fd < 0) {
				err = fd;
				fd = -1;
				goto done;
			}
			peer_str(fd, peer, sizeof(peer));
			step = "greeting";
			err = recv_until(fd, buf, sizeof(buf), "\n");
			if (!err) {
				step = "TEST";
				if (send(fd, "TEST\n", 5, MSG_NOSIGNAL) < 0)
					err = -errno;
				else
					err = recv_until(fd, buf, sizeof(buf), "\n");
			}
			if (!err)
				find_pod(buf, pod, sizeof(pod));
		} else {
			step = "PING";
			if (send(fd, "PING\n", 5, MSG_NOSIGNAL) < 0)
				err = -errno;
			else
				err = recv_until(fd, buf, sizeof(buf), "\n");
			if (!err && strncmp(buf, "PONG", 4))
				err = -EBADMSG;
		}
done:
		r->t_conn_us = mono_us();
		r->err = err;
		if (err) {
			snprintf(r->step, sizeof(r->step), "%s", step);
			/* A broken connection is not made again: every later PING fails too. */
			if (fd >= 0)
				close(fd);
			fd = -2;
		} else {
			snprintf(r->pod, sizeof(r->pod), "%s", pod);
			snprintf(r->peer, sizeof(r->peer), "%s", peer);
		}
		__atomic_store_n(&sh->n, i + 1, __ATOMIC_RELEASE);
		usleep(2000);
	}
	if (fd >= 0)
		close(fd);
}

/* One keep-alive response (head and Content-Length body) into buf; 0 or -errno. */
static int recv_http_response(int fd, char *buf, size_t cap)
{
	size_t got = 0, want = 0;
	char *end = NULL, *cl;

	buf[0] = 0;
	while (got + 1 < cap && (!end || got < want)) {
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ECONNRESET;
		got += (size_t)n;
		buf[got] = 0;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "\r\ncontent-length:");
			if (!cl || cl > end)
				return -EPROTO;
			want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
		}
	}
	if (!end || got != want)
		return -EMSGSIZE;
	return strncmp(buf, "HTTP/1.1 200 ", 13) ? -EPROTO : 0;
}

/* MC_HTTP_KEEPALIVE: one connection, a GET per result (see mesh_client.h). */
static void keepalive_loop(struct mc_shared *sh, const char *ip, int port, int timeout_ms,
			   const char *path, size_t max)
{
	char buf[8192], peer[64] = "", req[512];
	int fd = -1, rl;

	rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: mesh\r\n\r\n",
		      path ? path : "/");
	if (rl < 0 || (size_t)rl >= sizeof(req))
		return;

	for (size_t i = 0; i < max && !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); i++) {
		struct mc_result *r = &sh->res[i];
		const char *step = "request";
		int err = 0;

		memset(r, 0, sizeof(*r));
		r->t_start_us = mono_us();
		if (fd == -2) {
			step = "broken";
			err = -ENOTCONN;
			goto done;
		}
		if (fd < 0) {
			step = "connect";
			fd = connect_timed(ip, port, timeout_ms);
			if (fd < 0) {
				err = fd;
				fd = -1;
				goto done;
			}
			peer_str(fd, peer, sizeof(peer));
		}
		step = "send";
		if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) < 0) {
			err = -errno;
			goto done;
		}
		step = "recv";
		err = recv_http_response(fd, buf, sizeof(buf));
		if (!err) {
			find_pod(buf, r->pod, sizeof(r->pod));
			find_str(buf, "httpPort", r->port, sizeof(r->port));
			if (!r->pod[0])
				err = -EBADMSG;
		}
done:
		r->t_conn_us = mono_us();
		r->err = err;
		snprintf(r->peer, sizeof(r->peer), "%s", peer);
		if (err) {
			snprintf(r->step, sizeof(r->step), "%s", step);
			if (fd >= 0)
				close(fd);
			fd = -2;
		}
		__atomic_store_n(&sh->n, i + 1, __ATOMIC_RELEASE);
		usleep(2000);
	}
	if (fd >= 0)
		close(fd);
}

/* MC_UDP_HOLD: one connected UDP socket for the whole loop (see mesh_client.h). */
static void udp_hold_loop(struct mc_shared *sh, const char *ip, int port, int timeout_ms,
			  size_t max)
{
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	struct sockaddr_storage ss;
	bool connected = false;
	char buf[2048];
	socklen_t sl;
	int fd = -1;

	if (fill_addr(&ss, &sl, ip, port) ||
	    (fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return;
	for (size_t i = 0; i < max && !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); i++) {
		struct mc_result *r = &sh->res[i];
		const char *step = "connect";
		int err = 0;

		memset(r, 0, sizeof(*r));
		r->t_start_us = mono_us();
		if (!connected) {
			if (connect(fd, (struct sockaddr *)&ss, sl)) {
				err = -errno;
				goto done;
			}
			connected = true;
		}
		r->t_conn_us = mono_us();
		peer_str(fd, r->peer, sizeof(r->peer));
		step = "send";
		if (send(fd, "mesh", 4, 0) < 0) {
			err = -errno;
			goto done;
		}
		step = "recv";
		err = recv_until(fd, buf, sizeof(buf), "}");
		if (!err) {
			find_pod(buf, r->pod, sizeof(r->pod));
			if (!r->pod[0])
				err = -EBADMSG;
		}
done:
		r->err = err;
		if (err) {
			int soerr;
			socklen_t el = sizeof(soerr);

			snprintf(r->step, sizeof(r->step), "%s", step);
			/* take the socket's pending error with this one, then re-resolve */
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
			connected = false;
		}
		__atomic_store_n(&sh->n, i + 1, __ATOMIC_RELEASE);
		usleep(50000);
	}
	close(fd);
}

int mc_place_self(const struct mc_place *at)
{
	char path[4096];
	int fd, ret = 0;

	if (at->cgroup) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", at->cgroup);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0\n", 2) != 2)
			ret = -errno;
		if (fd >= 0)
			close(fd);
		if (ret)
			return ret;
	}
	if (at->netns) {
		snprintf(path, sizeof(path), "/run/netns/%s", at->netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET))
			ret = -errno;
		if (fd >= 0)
			close(fd);
	}
	return ret;
}

int mc_loop_start(struct mc_loop *l, const struct mc_place *at, const char *ip, int port,
		  enum mc_proto proto, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
	l->map_len = sizeof(struct mc_shared) + max * sizeof(struct mc_result);
	l->sh = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (l->sh == MAP_FAILED) {
		l->sh = NULL;
		return -errno;
	}
	l->res = l->sh->res;
	fflush(NULL);
	l->pid = fork();
	if (l->pid < 0) {
		l->pid = 0;
		return -errno;
	}
	if (!l->pid) {
		int ret;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ret = mc_place_self(at);
		if (ret)
			_exit(100 + (-ret & 0x7f) % 100);
		if (proto == MC_PINGPONG) {
			pingpong_loop(l->sh, ip, port, at->timeout_ms ?: MC_TIMEOUT_MS, max);
			_exit(0);
		}
		if (proto == MC_HTTP_KEEPALIVE) {
			keepalive_loop(l->sh, ip, port, at->timeout_ms ?: MC_TIMEOUT_MS, at->path,
				       max);
			_exit(0);
		}
		if (proto == MC_UDP_HOLD) {
			udp_hold_loop(l->sh, ip, port, at->timeout_ms ?: MC_TIMEOUT_MS, max);
			_exit(0);
		}
		for (size_t i = 0; i < max && !__atomic_load_n(&l->sh->stop, __ATOMIC_ACQUIRE); i++) {
			one_request(ip, port, proto, at->timeout_ms ?: MC_TIMEOUT_MS,
				    &l->sh->res[i]);
			__atomic_store_n(&l->sh->n, i + 1, __ATOMIC_RELEASE);
		}
		_exit(0);
	}
	return 0;
}

size_t mc_loop_count(const struct mc_loop *l)
{
	return l->sh ? __atomic_load_n(&l->sh->n, __ATOMIC_ACQUIRE) : 0;
}

size_t mc_loop_wait(struct mc_loop *l)
{
	int status;

	if (l->pid) {
		waitpid(l->pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			test__printf("client process: status 0x%x (>= 100: could not join its cgroup/netns)\n",
				     status);
		l->pid = 0;
	}
	return mc_loop_count(l);
}

size_t mc_loop_stop(struct mc_loop *l)
{
	if (l->sh)
		__atomic_store_n(&l->sh->stop, 1, __ATOMIC_RELEASE);
	return mc_loop_wait(l);
}

void mc_loop_free(struct mc_loop *l)
{
	if (l->pid) {
		kill(l->pid, SIGKILL);
		waitpid(l->pid, NULL, 0);
		l->pid = 0;
	}
	if (l->sh)
		munmap(l->sh, l->map_len);
	l->sh = NULL;
	l->res = NULL;
}

size_t mc_run(struct mc_loop *l, const struct mc_place *at, const char *ip, int port,
	      enum mc_proto proto, size_t n)
{
	size_t got;

	if (mc_loop_start(l, at, ip, port, proto, n))
		return 0;
	got = mc_loop_wait(l);
	/* Each distinct outcome once, with how many. */
	for (size_t i = 0; i < got; i++) {
		const struct mc_result *r = &l->res[i], *q;
		size_t same = 0, j;

		for (j = 0; j < i; j++) {
			q = &l->res[j];
			if (q->err == r->err && !strcmp(q->pod, r->pod) && !strcmp(q->peer, r->peer))
				break;
		}
		if (j < i)
			continue;
		for (j = i; j < got; j++) {
			q = &l->res[j];
			same += q->err == r->err && !strcmp(q->pod, r->pod) && !strcmp(q->peer, r->peer);
		}
		if (r->err)
			test__printf("  %s %s:%d: %zu x %s: %s\n", proto >= MC_UDP ? "udp" : "tcp",
				     ip, port, same, r->step, strerror(-r->err));
		else
			test__printf("  %s %s:%d: %zu x peer=%s pod=%s\n", proto >= MC_UDP ? "udp" : "tcp",
				     ip, port, same, r->peer, r->pod);
	}
	return got;
}

size_t mc_count_errors(const struct mc_result *res, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += res[i].err != 0;
	return c;
}

/* Answered results whose string field at offset off is s. */
static size_t count_field(const struct mc_result *res, size_t n, size_t off, const char *s)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += !res[i].err && !strcmp((const char *)&res[i] + off, s);
	return c;
}

size_t mc_count_pod(const struct mc_result *res, size_t n, const char *pod)
{
	return count_field(res, n, offsetof(struct mc_result, pod), pod);
}

size_t mc_count_port(const struct mc_result *res, size_t n, const char *port)
{
	return count_field(res, n, offsetof(struct mc_result, port), port);
}

size_t mc_count_peer(const struct mc_result *res, size_t n, const char *peer)
{
	return count_field(res, n, offsetof(struct mc_result, peer), peer);
}
