/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sockets in other network namespaces (the HTTP engine's per-pod listeners
 * and upstream connections). A socket keeps the netns it was created in, so
 * one process can hold sockets in every pod's netns: each is created by a
 * short-lived helper thread that setns()es into the target netns, makes the
 * socket and exits. The calling thread never changes its netns.
 *
 * A pod's netns is found through a process of its cgroup: the first pid of
 * cgroup.procs in the cgroup or below it (kubelet puts the processes in
 * container cgroups under the pod's), then /proc/PID/ns/net.
 */
#ifndef GAMMAD_NETNS_SOCK_H
#define GAMMAD_NETNS_SOCK_H

#include <stdint.h>

/*
 * Open the netns of a process in cgroup `path` (or a cgroup below it):
 * O_RDONLY|O_CLOEXEC fd, its inode in *ino. -ESRCH: no process there now.
 */
int netns_of_cgroup(const char *path, uint64_t *ino);
/* socket(family, type, proto) created inside netns_fd; fd or -errno. */
int netns_socket(int netns_fd, int family, int type, int proto);
/*
 * n such sockets into fds[] with one helper thread (a thread and its
 * setns() cost about 70 us on an idle machine and often milliseconds on a
 * busy one, where the new thread waits for a CPU): n, or -errno (none
 * left open).
 */
int netns_sockets(int netns_fd, int family, int type, int proto, int *fds, int n);
/* Helper threads run so far (netns_socket and the others), for tests. */
unsigned long netns_hops(void);
/*
 * A listening TCP socket on loopback (127.0.0.1 or ::1, IPV6_V6ONLY)
 * port `port` (host order) inside netns_fd, non-blocking; fd or -errno.
 */
int netns_listen_loopback(int netns_fd, int family, uint16_t port, int backlog);
/*
 * bpf_iter_create(link_fd) inside netns_fd: an iterator over that netns's
 * sockets (iter/tcp binds the netns of whoever creates it); fd or -errno.
 */
int netns_iter_create(int netns_fd, int link_fd);
/* The netns cookie of a socket's namespace (SO_NETNS_COOKIE), what BPF sees. */
int sock_netns_cookie(int fd, uint64_t *cookie);

#endif
