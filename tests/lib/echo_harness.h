/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for tests that run build/echo: start and stop a server in a
 * temporary directory, talk raw HTTP/TCP/UDP to it over loopback, and run
 * the client binary capturing its output. The HTTP reader here is written
 * independently of the server's parser, so the tests check it from outside.
 */
#ifndef GAMMAD_TEST_ECHO_HARNESS_H
#define GAMMAD_TEST_ECHO_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ECHO_MAX_PORTS 16
#define ECHO_IO_TIMEOUT_MS 5000

struct echo_proc {
	pid_t pid;			/* 0 when not running */
	char dir[64];			/* mkdtemp directory, "" when none */
	char ready[96];
	char log[96];			/* the server's stdout and stderr */
	int nr_ports;
	struct {
		char proto[8];		/* "http", "tcp", "udp" */
		unsigned short port;
	} ports[ECHO_MAX_PORTS];
};

/*
 * Run `echo serve ARGS --ready-file=DIR/ready` and wait until the file
 * appears. The child gets POD_NAME, NAMESPACE, SERVICE_NAME and
 * INGRESS_NAME cleared, then the "K=V" strings of @env (may be NULL).
 * On failure everything is cleaned up and the log is shown.
 */
int echo_proc_start(struct echo_proc *p, const char *const *args, const char *const *env);
/*
 * The same, with the server in a network namespace of its own (unshare),
 * for tests that need fixed, well-known ports without disturbing the host.
 * The server is then unreachable from the test: only its ready file and
 * exit status can be checked. -EPERM without CAP_SYS_ADMIN.
 */
int echo_proc_start_netns(struct echo_proc *p, const char *const *args);
/* Port of the @n-th listener of @proto in the ready file, 0 if none. */
unsigned short echo_proc_port(const struct echo_proc *p, const char *proto, int n);
/* SIGTERM, reap (SIGKILL after 3 s), remove the files. The wait status or -1. */
int echo_proc_stop(struct echo_proc *p);
/* The server's log as a string (caller frees), "" when unreadable. */
char *echo_proc_read_log(const struct echo_proc *p);
/* How many times @needle occurs in the server's log. */
int echo_proc_log_count(const struct echo_proc *p, const char *needle);

/* A loopback port nothing listens on (bound once, then released). */
unsigned short echo_free_port(int type);

/* The loopback address of family with port in *ss; returns its length. */
socklen_t echo_loopback_addr(int family, unsigned short port, struct sockaddr_storage *ss);
/* Connect to 127.0.0.1 (AF_INET) or ::1 (AF_INET6) with I/O timeouts. */
int echo_connect(int family, unsigned short port);
int echo_send_all(int fd, const void *buf, size_t len);
int echo_send_str(int fd, const char *s);
/* 0 if the peer closes the connection (EOF or reset) before the timeout. */
int echo_wait_closed(int fd);

/* Reads HTTP responses from one connection, keeping bytes for the next. */
struct echo_reader {
	int fd;
	char *buf;
	size_t len, cap;
};

struct echo_http_resp {
	int status;
	char *head;		/* status line and headers, NUL-terminated */
	char *body;		/* NUL-terminated, body_len bytes */
	size_t body_len;
};

/* One response: the body is read by Content-Length (none for HEAD/1xx/204/304). */
int echo_read_response(struct echo_reader *r, bool head_request, struct echo_http_resp *resp);
/* Value of the first header @name (case-insensitive) in @buf, or NULL. */
const char *echo_resp_header(const struct echo_http_resp *resp, const char *name,
			     char *buf, size_t size);
void echo_resp_free(struct echo_http_resp *resp);
void echo_reader_free(struct echo_reader *r);
/* Send @raw on a new connection to 127.0.0.1:@port and read one response. */
int echo_http_once(unsigned short port, const char *raw, struct echo_http_resp *resp);

/*
 * Run @argv (argv[0] is the binary) with stdout and stderr captured into
 * NUL-terminated strings (caller frees). The child is killed after
 * @timeout_ms. Returns 0 and the wait status, or -errno.
 */
int echo_run(const char *const *argv, char **out, char **err, int *status, int timeout_ms);

#endif
