// SPDX-License-Identifier: Apache-2.0
/*
 * Pod networking, wired the way Calico does it: a veth per pod, /32 (/128)
 * host routes, a link-local gateway answered by the host side, and routes in
 * the pod only to the pod and service ranges and to gammad's hairpin
 * addresses (what a default route would do for them) - no default route,
 * so nothing a pod sends can leave the machine. Host blackhole routes cover
 * the whole pod and service ranges and the hairpin addresses for the same
 * reason.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

static const char host_routes[] =
	"route replace blackhole " LAB_SVC_NET4 "\n"
	"route replace blackhole " LAB_SVC_NET6 "\n"
	"route replace blackhole " LAB_POD_NET4 "\n"
	"route replace blackhole " LAB_POD_NET6 "\n"
	"route replace blackhole " LAB_HAIRPIN4 "/32\n"
	"route replace blackhole " LAB_HAIRPIN6 "/128\n";

static const char host_routes_del[] =
	"route del blackhole " LAB_SVC_NET4 "\n"
	"route del blackhole " LAB_SVC_NET6 "\n"
	"route del blackhole " LAB_POD_NET4 "\n"
	"route del blackhole " LAB_POD_NET6 "\n"
	"route del blackhole " LAB_HAIRPIN4 "/32\n"
	"route del blackhole " LAB_HAIRPIN6 "/128\n";

int lab_host_routes_add(void)
{
	return run_ip_batch(NULL, host_routes, false);
}

void lab_host_routes_del(void)
{
	run_ip_batch(NULL, host_routes_del, true);
}

/* Run fn inside the named netns, then come back. */
static int in_netns(const char *netns, int (*fn)(const void *arg), const void *arg)
{
	char path[PATH_MAX];
	int self, target, ret;

	snprintf(path, sizeof(path), LAB_RUN_NETNS "/%s", netns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0) {
		ret = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET)) {
		ret = -errno;
		goto out;
	}
	ret = fn(arg);
	if (setns(self, CLONE_NEWNET)) {
		/* Stuck in a pod: nothing after this could be trusted. */
		pr_err("cannot return to the host network namespace: %s", strerror(errno));
		abort();
	}
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return ret;
}

/* No duplicate address detection in pods: addresses are usable at once. */
static int pod_sysctls(const void *arg)
{
	int ret;

	(void)arg;
	ret = sysctl_write("net/ipv6/conf/default/accept_dad", "0");
	if (!ret)
		ret = sysctl_write("net/ipv6/conf/all/accept_dad", "0");
	return ret;
}

static int host_veth_sysctls(const char *veth)
{
	char key[128];
	int ret;

	snprintf(key, sizeof(key), "net/ipv4/conf/%s/proxy_arp", veth);
	ret = sysctl_write(key, "1");
	snprintf(key, sizeof(key), "net/ipv6/conf/%s/accept_dad", veth);
	if (!ret)
		ret = sysctl_write(key, "0");
	return ret;
}

static int host_side(const struct lab_pod *p, const char *ip4, const char *ip6)
{
	char cmds[1024];
	int ret;

	snprintf(cmds, sizeof(cmds),
		 "link add %s address " LAB_HOST_MAC " type veth peer name eth0 netns %s\n",
		 p->veth, p->netns);
	ret = run_ip_batch(NULL, cmds, false);
	if (!ret)
		ret = host_veth_sysctls(p->veth);
	if (ret)
		return ret;
	snprintf(cmds, sizeof(cmds),
		 "link set %1$s up\n"
		 "addr add " LAB_GW6 "/64 dev %1$s nodad\n"
		 "route add %2$s/32 dev %1$s\n"
		 "route add %3$s/128 dev %1$s\n",
		 p->veth, ip4, ip6);
	return run_ip_batch(NULL, cmds, false);
}

static int pod_side(const struct lab_pod *p, const char *ip4, const char *ip6)
{
	char cmds[2048];

	snprintf(cmds, sizeof(cmds),
		 "link set lo up\n"
		 "addr add %1$s/32 dev eth0\n"
		 "addr add %2$s/128 dev eth0 nodad\n"
		 "link set eth0 up\n"
		 "route add " LAB_GW4 " dev eth0 scope link\n"
		 "neigh replace " LAB_GW4 " lladdr " LAB_HOST_MAC " dev eth0 nud permanent\n"
		 "route add " LAB_POD_NET4 " via " LAB_GW4 " dev eth0 src %1$s\n"
		 "route add " LAB_SVC_NET4 " via " LAB_GW4 " dev eth0 src %1$s\n"
		 "route add " LAB_POD_NET6 " via " LAB_GW6 " dev eth0 src %2$s\n"
		 "route add " LAB_SVC_NET6 " via " LAB_GW6 " dev eth0 src %2$s\n"
		 "route add " LAB_HAIRPIN4 " via " LAB_GW4 " dev eth0 src %1$s\n"
		 "route add " LAB_HAIRPIN6 " via " LAB_GW6 " dev eth0 src %2$s\n",
		 ip4, ip6);
	return run_ip_batch(p->netns, cmds, false);
}

int lab_pod_net_up(const struct lab_pod *p)
{
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];
	char *add[] = { "ip", "netns", "add", (char *)p->netns, NULL };
	int ret;

	ip_addr_str(&p->ip4, ip4, sizeof(ip4));
	ip_addr_str(&p->ip6, ip6, sizeof(ip6));
	ret = run_argv(add, false);
	if (!ret)
		ret = in_netns(p->netns, pod_sysctls, NULL);
	if (!ret)
		ret = host_side(p, ip4, ip6);
	if (!ret)
		ret = pod_side(p, ip4, ip6);
	if (ret)
		pr_err("pod %s/%s: cannot set up its network (netns %s, veth %s): %s",
		       p->namespace, p->name, p->netns, p->veth, strerror(-ret));
	return ret;
}

/* ---- cleanup by prefix ---------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Inode numbers of /run/netns/glab-*: a process whose ns/net matches is in a pod. */
static size_t lab_netns_inodes(ino_t *out, size_t max)
{
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	DIR *d = opendir(LAB_RUN_NETNS);

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		snprintf(path, sizeof(path), LAB_RUN_NETNS "/%s", e->d_name);
		if (has_prefix(e->d_name, LAB_NETNS_PREFIX) && !stat(path, &st))
			out[n++] = st.st_ino;
	}
	closedir(d);
	return n;
}

/*
 * Processes in a lab netns but outside its cgroups (a `lab exec` shell, or a
 * server whose cgroup write failed) would keep the netns alive: kill them.
 */
int lab_netns_pids_kill(void)
{
	ino_t inodes[LAB_MAX_PODS + 16];
	size_t n = lab_netns_inodes(inodes, sizeof(inodes) / sizeof(inodes[0]));
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int killed = 0;
	DIR *d;

	if (!n || !(d = opendir("/proc")))
		return 0;
	while ((e = readdir(d))) {
		pid_t pid = (pid_t)atoi(e->d_name);

		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		if (stat(path, &st))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (st.st_ino == inodes[i] && !kill(pid, SIGKILL)) {
				killed++;
				break;
			}
		}
	}
	closedir(d);
	return killed;
}

static void del_prefixed_netns(void)
{
	struct dirent *e;
	DIR *d = opendir(LAB_RUN_NETNS);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *argv[] = { "ip", "netns", "del", e->d_name, NULL };

		if (has_prefix(e->d_name, LAB_NETNS_PREFIX))
			run_argv(argv, true);
	}
	closedir(d);
}

static void del_prefixed_links(void)
{
	struct dirent *e;
	DIR *d = opendir("/sys/class/net");

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *argv[] = { "ip", "link", "del", e->d_name, NULL };

		if (has_prefix(e->d_name, LAB_LINK_PREFIX))
			run_argv(argv, true);
	}
	closedir(d);
}

void lab_netns_purge(void)
{
	lab_netns_pids_kill();
	del_prefixed_netns();
	/* Deleting a pod netns destroys its veth pair; this catches half-made ones. */
	del_prefixed_links();
}
