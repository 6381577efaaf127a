// SPDX-License-Identifier: Apache-2.0
/* Sockets in other network namespaces: see netns_sock.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "netns_sock.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define CGROUP_SEARCH_DEPTH 4	/* pod -> container (-> a nested level or two) */

/* First pid listed in path/cgroup.procs, else in a child cgroup; 0: none. */
static int cgroup_first_pid(const char *path, int depth)
{
	char file[4096];
	struct dirent *de;
	int pid = 0;
	FILE *f;
	DIR *d;

	if (snprintf(file, sizeof(file), "%s/cgroup.procs", path) >= (int)sizeof(file))
		return 0;
	f = fopen(file, "re");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0 || depth >= CGROUP_SEARCH_DEPTH)
		return pid > 0 ? pid : 0;
	d = opendir(path);
	if (!d)
		return 0;
	while (!pid && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(file, sizeof(file), "%s/%s", path, de->d_name) >= (int)sizeof(file))
			continue;
		pid = cgroup_first_pid(file, depth + 1);
	}
	closedir(d);
	return pid;
}

int netns_of_cgroup(const char *path, uint64_t *ino)
{
	char ns[64];
	struct stat st;
	int pid, fd;

	/* A process may exit between reading its pid and opening its netns. */
	for (int tries = 0; tries < 3; tries++) {
		pid = cgroup_first_pid(path, 0);
		if (!pid)
			return -ESRCH;
		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", pid);
		fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st)) {
			close(fd);
			return -errno;
		}
		*ino = st.st_ino;
		return fd;
	}
	return -ESRCH;
}

struct ns_job {
	int netns_fd;
	int (*fn)(struct ns_job *);
	int family, type, proto;
	uint16_t port;
	int backlog;
	int *fds, n;		/* netns_sockets */
	int ret;
};

static unsigned long hops;

unsigned long netns_hops(void)
{
	return __atomic_load_n(&hops, __ATOMIC_RELAXED);
}

static void *ns_thread(void *arg)
{
	struct ns_job *j = arg;

	/* Only this thread moves; it exits right after. */
	if (setns(j->netns_fd, CLONE_NEWNET))
		j->ret = -errno;
	else
		j->ret = j->fn(j);
	return NULL;
}

static int ns_run(struct ns_job *j)
{
	pthread_t t;
	int err;

	__atomic_fetch_add(&hops, 1, __ATOMIC_RELAXED);
	err = pthread_create(&t, NULL, ns_thread, j);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return j->ret;
}

static int do_socket(struct ns_job *j)
{
	int fd = socket(j->family, j->type, j->proto);

	return fd < 0 ? -errno : fd;
}

int netns_socket(int netns_fd, int family, int type, int proto)
{
	struct ns_job j = { .netns_fd = netns_fd, .fn = do_socket, .family = family,
			    .type = type, .proto = proto };

	return ns_run(&j);
}

static int do_sockets(struct ns_job *j)
{
	for (int i = 0; i < j->n; i++) {
		j->fds[i] = socket(j->family, j->type, j->proto);
		if (j->fds[i] < 0) {
			int err = -errno;

			while (i-- > 0)
				close(j->fds[i]);
			return err;
		}
	}
	return j->n;
}

int netns_sockets(int netns_fd, int family, int type, int proto, int *fds, int n)
{
	struct ns_job j = { .netns_fd = netns_fd, .fn = do_sockets, .family = family,
			    .type = type, .proto = proto, .fds = fds, .n = n };

	return n > 0 ? ns_run(&j) : 0;
}

static int do_iter(struct ns_job *j)
{
	int fd = bpf_iter_create(j->family);

	return fd < 0 ? -errno : fd;
}

int netns_iter_create(int netns_fd, int link_fd)
{
	struct ns_job j = { .netns_fd = netns_fd, .fn = do_iter, .family = link_fd };

	return ns_run(&j);
}

static int do_listen(struct ns_job *j)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1, err;

	fd = socket(j->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (j->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(j->port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(j->port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
		/* IPv4 clients land on the IPv4 listener, whatever their socket. */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
			goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, j->backlog))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int netns_listen_loopback(int netns_fd, int family, uint16_t port, int backlog)
{
	struct ns_job j = { .netns_fd = netns_fd, .fn = do_listen, .family = family,
			    .port = port, .backlog = backlog };

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	return ns_run(&j);
}

int sock_netns_cookie(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) ? -errno : 0;
}
