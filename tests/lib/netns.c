// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "test_progs.h"
#include "netns.h"

int xsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int sys_run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
	va_end(ap);
	if (env.verbose)
		test__printf("+ %s\n", cmd);
	else
		strcat(cmd, " >/dev/null 2>&1");
	fflush(NULL);
	st = system(cmd);
	if (st < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int netns_add(const char *name)
{
	if (sys_run("ip netns add %s", name))
		return -EEXIST;
	return sys_run("ip -n %s link set lo up", name) ? -EIO : 0;
}

void netns_del(const char *name)
{
	sys_run("ip netns del %s", name);
}

int netns_enter(const char *name)
{
	char path[PATH_MAX];
	int prev, fd;

	prev = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (prev < 0)
		return -errno;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		close(prev);
		return err;
	}
	close(fd);
	return prev;
}

void netns_leave(int prev_fd)
{
	if (prev_fd < 0)
		return;
	if (setns(prev_fd, CLONE_NEWNET))
		test__printf("netns_leave: %s\n", strerror(errno));
	close(prev_fd);
}

int netns_cleanup_stale(const char *stem)
{
	size_t len = strlen(stem);
	struct dirent *e;
	int n = 0;
	DIR *d;

	d = opendir("/run/netns");
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		long pid;

		if (strncmp(e->d_name, stem, len))
			continue;
		pid = strtol(e->d_name + len, NULL, 10);
		if (pid <= 0 || (kill(pid, 0) && errno == ESRCH)) {
			netns_del(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

static int veth_end_setup(const struct veth_end *e)
{
	char ns[128] = "";

	if (e->ns)
		snprintf(ns, sizeof(ns), "-n %s", e->ns);
	if (e->addr4 && sys_run("ip %s addr add %s dev %s", ns, e->addr4, e->ifname))
		return -EIO;
	if (e->addr6 && sys_run("ip %s -6 addr add %s dev %s nodad", ns, e->addr6, e->ifname))
		return -EIO;
	return sys_run("ip %s link set %s up", ns, e->ifname) ? -EIO : 0;
}

int veth_pair_add(const struct veth_end *a, const struct veth_end *b)
{
	char na[128] = "", nb[128] = "";

	if (a->ns)
		snprintf(na, sizeof(na), "netns %s", a->ns);
	if (b->ns)
		snprintf(nb, sizeof(nb), "netns %s", b->ns);
	if (sys_run("ip link add %s %s type veth peer name %s %s",
		    a->ifname, na, b->ifname, nb))
		return -EIO;
	if (veth_end_setup(a) || veth_end_setup(b))
		return -EIO;
	return 0;
}

int link_packets(const char *ns, const char *ifname, uint64_t *rx, uint64_t *tx)
{
	struct ifaddrs *ifa, *i;
	int prev = -1, err = -ENOENT;

	if (ns) {
		prev = netns_enter(ns);
		if (prev < 0)
			return prev;
	}
	if (getifaddrs(&ifa)) {
		err = -errno;
		goto out;
	}
	for (i = ifa; i; i = i->ifa_next) {
		const struct rtnl_link_stats *st = i->ifa_data;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_PACKET || !st ||
		    strcmp(i->ifa_name, ifname))
			continue;
		*rx = st->rx_packets;
		*tx = st->tx_packets;
		err = 0;
		break;
	}
	freeifaddrs(ifa);
out:
	netns_leave(prev);
	return err;
}

int cgroup_join(const char *cgroup)
{
	char path[PATH_MAX];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = dprintf(fd, "%d\n", getpid());
	close(fd);
	return n > 0 ? 0 : -EIO;
}

static pid_t child_fork(const char *cgroup, const char *netns, int (*fn)(void *), void *arg,
			bool bare)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid < 0 ? -errno : pid;
	/* Die with the test runner rather than linger in its netns. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(122);	/* the parent died before prctl */
	signal(SIGPIPE, SIG_IGN);
	if (cgroup && cgroup_join(cgroup))
		_exit(120);
	if (netns && netns_enter(netns) < 0)
		_exit(121);
	if (bare && close_range(3, ~0U, 0))
		_exit(123);
	_exit(fn(arg) & 0xff);
}

pid_t child_start(const char *cgroup, const char *netns, int (*fn)(void *), void *arg)
{
	return child_fork(cgroup, netns, fn, arg, false);
}

pid_t child_start_bare(const char *cgroup, const char *netns, int (*fn)(void *), void *arg)
{
	return child_fork(cgroup, netns, fn, arg, true);
}

int child_wait(pid_t pid, int timeout_ms)
{
	struct timespec ts = { 0, 1000000 };
	int st;

	for (int waited = 0;; waited++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -errno;
		if (waited >= timeout_ms) {
			child_kill(pid);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
	}
}

int child_run(const char *cgroup, const char *netns, int (*fn)(void *), void *arg,
	      int timeout_ms)
{
	pid_t pid = child_start(cgroup, netns, fn, arg);

	return pid < 0 ? pid : child_wait(pid, timeout_ms);
}

void child_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void shared_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}
