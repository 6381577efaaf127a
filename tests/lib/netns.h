/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network namespaces, veth pairs and child processes for tests.
 *
 * Names a test creates start with a prefix carrying its pid (e.g.
 * "gdt1234-"), so leftovers of a crashed run can be found and removed by
 * netns_cleanup_stale() without touching those of a run still alive.
 */
#ifndef GAMMAD_TEST_NETNS_H
#define GAMMAD_TEST_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * snprintf for paths and names built from runtime parts: -ENAMETOOLONG
 * instead of a silently truncated name (and no -Wformat-truncation noise).
 */
int xsnprintf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Run a shell command, output discarded unless -v; returns its exit status. */
int sys_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int netns_add(const char *name);
void netns_del(const char *name);
/*
 * Move the calling thread into netns `name` (sockets it creates then live
 * there). Returns an fd of the previous netns for netns_leave(), or -errno.
 */
int netns_enter(const char *name);
void netns_leave(int prev_fd);
/*
 * Delete every netns named "<stem><pid>..." whose pid is no longer running
 * (leftovers of a crashed run). Returns how many were deleted.
 */
int netns_cleanup_stale(const char *stem);

/* One end of a veth pair: ns NULL for the caller's netns; addresses optional. */
struct veth_end {
	const char *ns;
	const char *ifname;
	const char *addr4;	/* "198.18.1.1/24" */
	const char *addr6;	/* "fd00:18:1::1/64", added without DAD */
};
int veth_pair_add(const struct veth_end *a, const struct veth_end *b);

/* Packet counters of an interface in a netns (NULL: caller's), via getifaddrs(). */
int link_packets(const char *ns, const char *ifname, uint64_t *rx, uint64_t *tx);

/*
 * Fork a child that joins cgroup (a cgroup v2 directory, or NULL), enters
 * netns (or NULL) and exits with fn(arg). Results go through memory from
 * shared_alloc(). child_wait() returns the exit status, or -ETIMEDOUT after
 * killing a child that overran timeout_ms.
 */
pid_t child_start(const char *cgroup, const char *netns, int (*fn)(void *), void *arg);
/*
 * The same, the child keeping none of the caller's file descriptors but
 * 0-2: a process of a pod, not of the test. A fork copies every socket
 * the caller holds (those a test server of the caller accepted, too), and
 * a copy keeps the connection open past the owner's close(): no FIN is
 * sent while the child lives.
 */
pid_t child_start_bare(const char *cgroup, const char *netns, int (*fn)(void *), void *arg);
int child_wait(pid_t pid, int timeout_ms);
int child_run(const char *cgroup, const char *netns, int (*fn)(void *), void *arg,
	      int timeout_ms);
void child_kill(pid_t pid);
void *shared_alloc(size_t size);
void shared_free(void *p, size_t size);

/* Write the caller's pid into <cgroup>/cgroup.procs. */
int cgroup_join(const char *cgroup);

#endif
