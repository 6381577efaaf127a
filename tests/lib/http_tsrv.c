// SPDX-License-Identifier: Apache-2.0
/* The HTTP test server: see http_tsrv.h. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http1.h"
#include "http_tsrv.h"
#include "netns.h"


struct tconn {
	struct tsrv *s;
	int fd;
};

static bool ts_stopping(struct tsrv *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

/* recv with a stop check: >0 bytes, 0 EOF, -1 error or stop */
ssize_t ts_recv(struct tsrv *s, int fd, void *buf, size_t n)
{
	while (!ts_stopping(s)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 100);

		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return recv(fd, buf, n, 0);
	}
	return -1;
}

int ts_send(struct tsrv *s, int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n && !ts_stopping(s)) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return n ? -1 : 0;
}

uint64_t ts_fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}


/* The bytes of the test bodies: position-dependent, so a lost or moved byte shows. */
void ts_fill(char *p, size_t n, size_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = 'a' + (off + i) % 23;
}


void ts_on_sum(void *ctx, const char *p, size_t n)
{
	struct ts_sum *s = ctx;

	s->h = ts_fnv1a(s->h, p, n);
	s->n += n;
}

static int ts_reply(struct tsrv *s, int fd, const char *head_fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ts_reply(struct tsrv *s, int fd, const char *head_fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, head_fmt);
	n = vsnprintf(buf, sizeof(buf), head_fmt, ap);
	va_end(ap);
	return ts_send(s, fd, buf, n);
}

static void *ts_conn(void *arg)
{
	struct tconn *tc = arg;
	struct tsrv *s = tc->s;
	int fd = tc->fd;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	struct h1_head *hp = malloc(sizeof(*hp));	/* big: not on a thread's stack */
	struct h1_limits lim = { H1_HEAD_MAX_DEFAULT, H1_TARGET_MAX_DEFAULT };

	bool drop_next = false;

	free(tc);
	while (buf && hp) {
		struct h1_scan scan = { 0 };
		long hl;
		ssize_t n;
		char path[256];
		struct ts_sum sum = { TS_FNV_INIT, 0 };

		while ((hl = h1_head_end(buf, len, &lim, &scan)) == 0) {
			n = ts_recv(s, fd, buf + len, cap - len);
			if (n <= 0)
				goto out;
			len += n;
		}
		if (hl < 0 || h1_parse_request(buf, hl, &lim, hp) || drop_next)
			goto out;	/* drop_next: as a server whose idle timeout just hit */
		snprintf(path, sizeof(path), "%.*s", (int)hp->path.len, hp->path.p);
		if (hp->expect_continue && ts_reply(s, fd, "HTTP/1.1 100 Continue\r\n\r\n"))
			goto out;
		/* the body: checksummed, whatever the path */
		memmove(buf, buf + hl, len - hl);
		len -= hl;
		if (hp->body == H1_BODY_LENGTH) {
			uint64_t left = hp->content_length;

			for (;;) {
				size_t take = len < left ? len : left;

				ts_on_sum(&sum, buf, take);
				left -= take;
				memmove(buf, buf + take, len - take);
				len -= take;
				if (!left)
					break;
				if ((n = ts_recv(s, fd, buf + len, cap - len)) <= 0)
					goto out;
				len += n;
			}
		} else if (hp->body == H1_BODY_CHUNKED) {
			struct h1_chunked ch = { 0 };

			for (;;) {
				long m = h1_chunked_scan(&ch, buf, len, ts_on_sum, &sum);

				if (m < 0)
					goto out;
				memmove(buf, buf + m, len - m);
				len -= m;
				if (ch.done)
					break;
				if ((n = ts_recv(s, fd, buf + len, cap - len)) <= 0)
					goto out;
				len += n;
			}
		}
		if (hp->body != H1_BODY_NONE) {
			__atomic_store_n(&s->last_len, (long long)sum.n, __ATOMIC_RELAXED);
			__atomic_store_n(&s->last_sum, sum.h, __ATOMIC_RELAXED);
			__atomic_add_fetch(&s->bodies, 1, __ATOMIC_RELEASE);
		}
		bool head = h1_str_eq(&hp->method, "HEAD");
		unsigned long arg = 0;
		const char *num = strrchr(path, '/');

		if (num)
			arg = strtoul(num + 1, NULL, 10);
		if (!strncmp(path, "/ts/sum", 7)) {
			if (ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n"
				     "len=%016zx sum=%016llx", sum.n, (unsigned long long)sum.h))
				goto out;
		} else if (!strncmp(path, "/ts/len/", 8) || !strncmp(path, "/ts/close/", 10) ||
			   !strncmp(path, "/ts/chunked/", 12)) {
			bool chunked = path[4] == 'c' && path[5] == 'h';
			bool close_ = path[4] == 'c' && path[5] == 'l';
			char *body = malloc(arg + 1);

			ts_fill(body, arg, 0);
			if (chunked)
				ts_reply(s, fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
					 "Trailer: X-Sum\r\n\r\n");
			else if (close_)
				ts_reply(s, fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
			else
				ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: %lu\r\n\r\n", arg);
			for (size_t off = 0; !head && off < arg;) {
				size_t k = arg - off < 7000 ? arg - off : 7000;

				if (chunked)
					ts_reply(s, fd, "%zx\r\n", k);
				ts_send(s, fd, body + off, k);
				if (chunked)
					ts_send(s, fd, "\r\n", 2);
				off += k;
			}
			if (chunked && !head)
				ts_reply(s, fd, "0\r\nX-Sum: %016llx\r\n\r\n",
					 (unsigned long long)ts_fnv1a(TS_FNV_INIT, body, arg));
			free(body);
			if (close_)
				goto out;
		} else if (!strcmp(path, "/ts/lie")) {
			/* keep-alive promised, and the next request on it never answered */
			ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
			drop_next = true;
		} else if (!strcmp(path, "/ts/flaky/503") || !strcmp(path, "/ts/flaky/reset") ||
			   !strcmp(path, "/ts/once/503")) {
			/* two failures, then an answer, and again */
			int k = path[4] == 'o' ? 2 : path[10] == 'r' ? 1 : 0;
			int n = __atomic_fetch_add(&s->flaky[k], 1, __ATOMIC_RELAXED);

			if (n % 3 == 2) {
				ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n"
					 "len=%016zx sum=%016llx", sum.n, (unsigned long long)sum.h);
			} else if (k == 1) {
				struct linger l = { 1, 0 };

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
				goto out;
			} else {
				ts_reply(s, fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
			}
		} else if (!strcmp(path, "/ts/204")) {
			ts_reply(s, fd, "HTTP/1.1 204 No Content\r\nX-Kind: 204\r\n\r\n");
		} else if (!strcmp(path, "/ts/304")) {
			ts_reply(s, fd, "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n");
		} else if (!strcmp(path, "/ts/die")) {
			/* promise a megabyte, send a little, then an RST */
			struct linger l = { 1, 0 };
			char part[1000];

			ts_fill(part, sizeof(part), 0);
			ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
			ts_send(s, fd, part, sizeof(part));
			usleep(100 * 1000);
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			goto out;
		} else if (!strcmp(path, "/ts/hang")) {
			char c;

			__atomic_add_fetch(&s->hang_requests, 1, __ATOMIC_RELAXED);
			n = ts_recv(s, fd, &c, 1);
			if (n == 0 || (n < 0 && !ts_stopping(s)))
				__atomic_add_fetch(&s->closed_after_hang, 1, __ATOMIC_RELAXED);
			goto out;
		} else if (!strncmp(path, "/ts/stream", 10)) {
			/* a download, endless or /ts/stream/N (ts_fill): what it sends is counted */
			unsigned long long total = arg ? arg : 100000000000ULL, off = 0;
			char chunk[16384];
			int small = 16384;

			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			ts_reply(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", total);
			while (off < total && !ts_stopping(s)) {
				size_t k = total - off < sizeof(chunk) ? total - off : sizeof(chunk);
				ssize_t w;

				ts_fill(chunk, k, off);
				w = send(fd, chunk, k, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w > 0) {
					off += w;
					__atomic_add_fetch(&s->stream_bytes, w, __ATOMIC_RELAXED);
				} else if (w < 0 && errno == EAGAIN) {
					usleep(5000);
				} else {
					break;
				}
			}
			if (off < total)
				goto out;
		} else if (!strcmp(path, "/ts/upgrade")) {
			ts_reply(s, fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\n"
				 "Connection: Upgrade\r\n\r\n");
			/* echo what comes, upper-cased, until EOF */
			for (;;) {
				for (size_t i = 0; i < len; i++)
					buf[i] = buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i];
				if (len && ts_send(s, fd, buf, len))
					goto out;
				len = 0;
				n = ts_recv(s, fd, buf, cap);
				if (n <= 0)
					break;
				len = n;
			}
			shutdown(fd, SHUT_WR);
			goto out;
		} else {
			ts_reply(s, fd, "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n");
		}
	}
out:
	free(buf);
	free(hp);
	close(fd);
	return NULL;
}

static void *ts_accept(void *arg)
{
	struct tsrv *s = arg;

	while (!ts_stopping(s)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		struct tconn *tc;
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (s->nr_conns == TS_CONNS || !(tc = malloc(sizeof(*tc)))) {
			close(fd);
			continue;
		}
		tc->s = s;
		tc->fd = fd;
		if (pthread_create(&s->conns[s->nr_conns], NULL, ts_conn, tc)) {
			close(fd);
			free(tc);
			continue;
		}
		s->nr_conns++;
	}
	for (int i = 0; i < s->nr_conns; i++)
		pthread_join(s->conns[i], NULL);
	return NULL;
}

int ts_listen_loopback(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

int ts_start(struct tsrv *s)
{
	memset(s, 0, sizeof(*s));
	s->lfd = ts_listen_loopback(&s->port);
	if (s->lfd < 0)
		return s->lfd;
	if (pthread_create(&s->thread, NULL, ts_accept, s)) {
		close(s->lfd);
		s->lfd = -1;
		return -EAGAIN;
	}
	return 0;
}

int ts_start_at(struct tsrv *s, const char *netns, uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int prev, zero = 0, one = 1;

	memset(s, 0, sizeof(*s));
	s->lfd = -1;
	prev = netns_enter(netns);
	if (prev < 0)
		return prev;
	s->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 ||
	    setsockopt(s->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&sin6, sizeof(sin6)) || listen(s->lfd, 512)) {
		int ret = -errno;

		if (s->lfd >= 0)
			close(s->lfd);
		s->lfd = -1;
		netns_leave(prev);
		return ret;
	}
	netns_leave(prev);
	s->port = port;
	if (pthread_create(&s->thread, NULL, ts_accept, s)) {
		close(s->lfd);
		s->lfd = -1;
		return -EAGAIN;
	}
	return 0;
}

void ts_stop(struct tsrv *s)
{
	if (s->lfd < 0)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	s->lfd = -1;
}

