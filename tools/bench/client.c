// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark clients. Every result is one line of key=value pairs.
 *
 * bench rr  --addr IP:PORT [--count N] [--warmup N] [--cpu-pids P,P...]
 *     One keep-alive connection, N round trips of a 64-byte HTTP/1.1 request
 *     and the server's 64-byte response (bench serve). Latency p50/p99/mean
 *     per round trip, CPU time per request: this process (getrusage) plus
 *     the utime+stime of --cpu-pids (/proc/PID/stat; servers, proxies).
 * bench crr --addr IP:PORT [--seconds S] [--cpu-pids ...]
 *     New connections per second: connect, one request, read the response,
 *     close; for S seconds, one at a time.
 * bench change --addr IP:PORT --expect ID --src F --dst F [--timeout-ms T]
 *     rename(F, F') (a manifest change) and poll connections to IP:PORT until
 *     the server answering (bench serve --id) says ID; prints the time from
 *     the rename to that answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static char request[65];

static void build_request(void)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: bench\r\nX-Pad: ";
	size_t n = sizeof(head) - 1;

	memcpy(request, head, n);
	while (n < 60)
		request[n++] = 'x';
	memcpy(request + n, "\r\n\r\n", 4);
	request[64] = 0;
}

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (long)sizeof(host))
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

static int dial(const struct sockaddr_in *a, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Send the request, read one response (head + Content-Length body). */
static int round_trip(int fd)
{
	char buf[4096];
	size_t got = 0;
	long need = -1;

	if (send(fd, request, 64, MSG_NOSIGNAL) != 64)
		return -EIO;
	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += n;
		buf[got] = 0;
		if (need < 0) {
			char *end = strstr(buf, "\r\n\r\n");

			if (!end) {
				if (got >= sizeof(buf) - 1)
					return -EPROTO;
				continue;
			}
			need = end + 4 - buf;
			for (char *l = buf; l && l < end; l = strstr(l, "\r\n")) {
				if (l[0] == '\r')
					l += 2;
				if (!strncasecmp(l, "content-length:", 15)) {
					need += atol(l + 15);
					break;
				}
			}
		}
		if ((long)got >= need)
			return 0;
	}
}

/* utime + stime of the pids, in seconds. */
static double pids_cpu(const char *pids)
{
	long hz = sysconf(_SC_CLK_TCK);
	double sum = 0;
	char *copy, *save = NULL;

	if (!pids || !*pids)
		return 0;
	copy = strdup(pids);
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char path[64], line[1024], *rp;
		unsigned long ut = 0, st = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%s/stat", p);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')) &&
		    sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) == 2)
			sum += (double)(ut + st) / hz;
		fclose(f);
	}
	free(copy);
	return sum;
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

struct copts {
	const char *addr, *pids, *expect, *src, *dst;
	long count, warmup, timeout_ms;
	double seconds;
};

static int parse(int argc, char **argv, struct copts *o)
{
	o->count = 20000;
	o->warmup = 1000;
	o->seconds = 2;
	o->timeout_ms = 5000;
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return -1;
		i++;
		if (!strcmp(k, "--addr"))
			o->addr = v;
		else if (!strcmp(k, "--count"))
			o->count = atol(v);
		else if (!strcmp(k, "--warmup"))
			o->warmup = atol(v);
		else if (!strcmp(k, "--seconds"))
			o->seconds = atof(v);
		else if (!strcmp(k, "--cpu-pids"))
			o->pids = v;
		else if (!strcmp(k, "--expect"))
			o->expect = v;
		else if (!strcmp(k, "--src"))
			o->src = v;
		else if (!strcmp(k, "--dst"))
			o->dst = v;
		else if (!strcmp(k, "--timeout-ms"))
			o->timeout_ms = atol(v);
		else
			return -1;
	}
	return o->addr ? 0 : -1;
}

int cmd_rr(int argc, char **argv)
{
	struct sockaddr_in a;
	struct copts o = { 0 };
	double *lat, t0, c0, p0, sum = 0;
	int fd, ret;

	if (parse(argc, argv, &o) || parse_addr(o.addr, &a) || o.count < 1) {
		fprintf(stderr, "usage: bench rr --addr IP:PORT [--count N] [--warmup N] [--cpu-pids P,..]\n");
		return 2;
	}
	build_request();
	lat = calloc(o.count, sizeof(*lat));
	fd = dial(&a, 5000);
	if (fd < 0 || !lat) {
		fprintf(stderr, "bench rr: connect %s: %s\n", o.addr, strerror(-fd));
		return 1;
	}
	for (long i = 0; i < o.warmup; i++) {
		ret = round_trip(fd);
		if (ret) {
			fprintf(stderr, "bench rr: warmup %s: %s\n", o.addr, strerror(-ret));
			return 1;
		}
	}
	c0 = self_cpu();
	p0 = pids_cpu(o.pids);
	t0 = bench_now();
	for (long i = 0; i < o.count; i++) {
		double s = bench_now();

		ret = round_trip(fd);
		if (ret) {
			fprintf(stderr, "bench rr: %s: %s after %ld\n", o.addr, strerror(-ret), i);
			return 1;
		}
		lat[i] = bench_now() - s;
		sum += lat[i];
	}
	t0 = bench_now() - t0;
	c0 = self_cpu() - c0;
	p0 = pids_cpu(o.pids) - p0;
	close(fd);
	qsort(lat, o.count, sizeof(*lat), cmp_double);
	printf("n=%ld p50_us=%.2f p99_us=%.2f mean_us=%.2f rps=%.0f cpu_client_us=%.2f "
	       "cpu_server_us=%.2f cpu_us=%.2f\n",
	       o.count, pct(lat, o.count, 0.5) * 1e6, pct(lat, o.count, 0.99) * 1e6,
	       sum / o.count * 1e6, o.count / t0, c0 / o.count * 1e6, p0 / o.count * 1e6,
	       (c0 + p0) / o.count * 1e6);
	free(lat);
	return 0;
}

int cmd_crr(int argc, char **argv)
{
	struct sockaddr_in a;
	struct copts o = { 0 };
	double t0, c0, p0, end, elapsed;
	size_t cap = 1 << 16, n = 0, errors = 0;
	double *lat;

	if (parse(argc, argv, &o) || parse_addr(o.addr, &a)) {
		fprintf(stderr, "usage: bench crr --addr IP:PORT [--seconds S] [--cpu-pids P,..]\n");
		return 2;
	}
	build_request();
	lat = malloc(cap * sizeof(*lat));
	c0 = self_cpu();
	p0 = pids_cpu(o.pids);
	t0 = bench_now();
	end = t0 + o.seconds;
	for (;;) {
		double s = bench_now();
		int fd, ret;

		if (s >= end)
			break;
		fd = dial(&a, 2000);
		if (fd < 0) {
			if (++errors > 100) {
				fprintf(stderr, "bench crr: %s: %s\n", o.addr, strerror(-fd));
				return 1;
			}
			continue;
		}
		ret = round_trip(fd);
		close(fd);
		if (ret) {
			if (++errors > 100) {
				fprintf(stderr, "bench crr: %s: %s\n", o.addr, strerror(-ret));
				return 1;
			}
			continue;
		}
		if (n == cap) {
			cap *= 2;
			lat = realloc(lat, cap * sizeof(*lat));
		}
		lat[n++] = bench_now() - s;
	}
	elapsed = bench_now() - t0;
	c0 = self_cpu() - c0;
	p0 = pids_cpu(o.pids) - p0;
	if (!n) {
		fprintf(stderr, "bench crr: no connection completed\n");
		return 1;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("n=%zu errors=%zu cps=%.0f p50_us=%.2f p99_us=%.2f cpu_client_us=%.2f "
	       "cpu_server_us=%.2f cpu_us=%.2f\n",
	       n, errors, n / elapsed, pct(lat, n, 0.5) * 1e6, pct(lat, n, 0.99) * 1e6,
	       c0 / n * 1e6, p0 / n * 1e6, (c0 + p0) / n * 1e6);
	free(lat);
	return 0;
}

int cmd_change(int argc, char **argv)
{
	struct sockaddr_in a;
	struct copts o = { 0 };
	size_t polls = 0;
	double t0;

	if (parse(argc, argv, &o) || parse_addr(o.addr, &a) || !o.expect || !o.src || !o.dst) {
		fprintf(stderr, "usage: bench change --addr IP:PORT --expect ID --src F --dst F\n");
		return 2;
	}
	t0 = bench_now();
	if (rename(o.src, o.dst)) {
		perror("bench change: rename");
		return 1;
	}
	while (bench_now() - t0 < o.timeout_ms / 1e3) {
		char line[256];
		ssize_t got = 0, n;
		int fd = dial(&a, 50);

		polls++;
		if (fd < 0)
			continue;
		while (got < (ssize_t)sizeof(line) - 1 &&
		       (n = recv(fd, line + got, sizeof(line) - 1 - got, 0)) > 0)
			got += n;
		close(fd);
		line[got] = 0;
		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, o.expect)) {
			printf("change_ms=%.2f polls=%zu\n", (bench_now() - t0) * 1e3, polls);
			return 0;
		}
	}
	fprintf(stderr, "bench change: %s never answered %s within %ld ms\n", o.addr, o.expect,
		o.timeout_ms);
	return 1;
}
