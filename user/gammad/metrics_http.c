// SPDX-License-Identifier: Apache-2.0
/* /metrics, /healthz, /readyz over libmicrohttpd: see metrics_http.h. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/log.h"
#include "view/metrics.h"
#include "metrics_http.h"

struct metrics_server {
	struct MHD_Daemon *d;
	char pin_dir[4096];
	pthread_mutex_t lock;
	struct metrics_agent agent;
	/* more /metrics text (the HTTP engine's); set before serving it, or under lock */
	int (*extra)(void *ctx, FILE *out);
	void *extra_ctx;
	int (*explain)(void *ctx, const struct explain_query *q, FILE *out);
	void *explain_ctx;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, const char *body, size_t len);

static enum MHD_Result take_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct explain_query *q = cls;

	(void)kind;
	if (!strcmp(key, "h") && value && q->nr_headers < EXPLAIN_HEADERS_MAX)
		q->headers[q->nr_headers++] = value;
	return MHD_YES;
}

/* GET /explain?ns=&vip=&port=&method=&target=&host=&h=Name:value...: the engine's decision. */
static enum MHD_Result handle_explain(struct metrics_server *s, struct MHD_Connection *conn)
{
	int (*fn)(void *, const struct explain_query *, FILE *);
	struct explain_query q = { 0 };
	const char *port;
	char *buf = NULL;
	size_t len = 0;
	enum MHD_Result ret;
	void *ctx;
	FILE *f;
	int err;

	pthread_mutex_lock(&s->lock);
	fn = s->explain;
	ctx = s->explain_ctx;
	pthread_mutex_unlock(&s->lock);
	if (!fn)
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
			     "no HTTP engine: gammad run with --no-http-engine\n", 49);
	q.ns = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ns");
	q.vip = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "vip");
	port = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "port");
	q.method = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "method");
	q.target = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "target");
	q.host = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "host");
	q.port = port ? (unsigned int)strtoul(port, NULL, 10) : 0;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, take_header, &q);
	if (!q.ns || !q.vip || !q.port || q.port > 65535)
		return reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain",
			     "want ns, vip and port (and method, target, host, h)\n", 51);
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	err = fn(ctx, &q, f);
	if (fclose(f) && !err)
		err = -EIO;
	if (err == -EINVAL)
		ret = reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain", "bad query\n", 10);
	else if (err)
		ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			    "explain failed\n", 15);
	else
		ret = reply(conn, MHD_HTTP_OK, "application/json", buf, len);
	free(buf);
	return ret;
}

/* buf (len bytes, malloc'd) with the extra text after it. */
static int append_extra(struct metrics_server *s, char **buf, size_t *len)
{
	int (*extra)(void *, FILE *);
	char *more = NULL;
	size_t more_len = 0;
	void *ctx;
	FILE *f;
	int err;

	pthread_mutex_lock(&s->lock);
	extra = s->extra;
	ctx = s->extra_ctx;
	pthread_mutex_unlock(&s->lock);
	if (!extra)
		return 0;
	f = open_memstream(&more, &more_len);
	if (!f)
		return -errno;
	err = extra(ctx, f);
	if (fclose(f) && !err)
		err = -EIO;
	if (!err) {
		char *all = realloc(*buf, *len + more_len + 1);

		if (all) {
			memcpy(all + *len, more, more_len + 1);
			*buf = all;
			*len += more_len;
		} else {
			err = -ENOMEM;
		}
	}
	free(more);
	return err;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct metrics_server *s = cls;
	struct metrics_agent a;
	enum MHD_Result ret;
	char *buf;
	size_t len;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
	pthread_mutex_lock(&s->lock);
	a = s->agent;
	pthread_mutex_unlock(&s->lock);
	if (!strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3);
	if (!strcmp(url, "/readyz"))
		return a.ready ? reply(conn, MHD_HTTP_OK, "text/plain", "ready\n", 6)
			       : reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
				       "not ready: first apply not done\n", 32);
	if (!strcmp(url, "/explain"))
		return handle_explain(s, conn);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
			     "not found: /metrics, /healthz, /readyz, /explain\n", 49);
	if (metrics_render_buf(s->pin_dir, &a, &buf, &len))
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     "metrics: render failed\n", 23);
	if (append_extra(s, &buf, &len)) {
		free(buf);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     "metrics: render failed\n", 23);
	}
	ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len);
	free(buf);
	return ret;
}

static int parse_addr(const char *text, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon;
	long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		colon = strstr(text, "]:");
		if (!colon || colon - text - 1 >= (long)sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text - 1), text + 1);
		colon++;
	} else {
		colon = strrchr(text, ':');
		if (!colon || colon - text >= (long)sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	} else {
		return -EINVAL;
	}
	return 0;
}

int metrics_addr_check(const char *addr)
{
	struct sockaddr_storage ss;

	if (parse_addr(addr, &ss)) {
		pr_err("metrics address %s: want IP:PORT or [IPv6]:PORT", addr);
		return -EINVAL;
	}
	return 0;
}

int metrics_server_start(const char *addr, const char *pin_dir, struct metrics_server **out)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct metrics_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int err;

	err = parse_addr(addr, &ss);
	if (err) {
		pr_err("metrics address %s: want IP:PORT or [IPv6]:PORT", addr);
		return err;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->pin_dir, sizeof(s->pin_dir), "%s", pin_dir);
	pthread_mutex_init(&s->lock, NULL);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				/* SO_REUSEPORT: a restarted agent serves beside the old
				 * one until it has handed over (handover.h) */
				MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
				MHD_OPTION_END);
	if (!s->d) {
		err = errno ? -errno : -EADDRINUSE;
		pr_err("metrics on %s: cannot listen: %s", addr, strerror(-err));
		pthread_mutex_destroy(&s->lock);
		free(s);
		return err;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	pr_info("metrics on %s (port %u): /metrics /healthz /readyz", addr,
		info ? info->port : 0);
	*out = s;
	return 0;
}

void metrics_server_note_apply(struct metrics_server *s, int err, double ms,
			       size_t input_errors)
{
	struct timespec ts;

	if (!s)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&s->lock);
	if (err) {
		s->agent.apply_errors++;
	} else {
		s->agent.generation++;
		s->agent.ready = true;
	}
	s->agent.last_apply_seconds = ms / 1e3;
	s->agent.input_errors = input_errors;
	s->agent.last_apply_time = ts.tv_sec + ts.tv_nsec / 1e9;
	pthread_mutex_unlock(&s->lock);
}

void metrics_server_set_extra(struct metrics_server *s, int (*render)(void *ctx, FILE *out),
			      void *ctx)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->extra = render;
	s->extra_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

void metrics_server_set_explain(struct metrics_server *s,
				int (*fn)(void *ctx, const struct explain_query *q, FILE *out),
				void *ctx)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->explain = fn;
	s->explain_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
