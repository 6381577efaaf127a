// SPDX-License-Identifier: Apache-2.0
/*
 * bench tc --pin-dir P --cgroup C --netns NODE --pod IP,IFNAME...
 *
 * The TC data path for the benchmark's "TC path" mode, until `gammad run`
 * drives it: adopt the data path `gammad run --once` pinned in P (its
 * Service tables), load bpf/tc.bpf.c beside it, attach it (pinned TCX
 * links, redirect_peer/neigh delivery) to the node side IFNAME of every
 * pod veth inside netns NODE, and register every pod IP with its veth
 * (class: no consumer namespace). `gammad uninstall --pin-dir P` removes
 * it all. The clients must be in no cgroup under the agent's, so that only
 * the TC path sees their connections to ClusterIPs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datapath/datapath.h"
#include "datapath/tc_attach.h"
#include "datapath/tc_maps.h"
#include "bench.h"
#include "gammad/maps.h"

int cmd_tc(int argc, char **argv)
{
	struct dp_opts o = { .no_sockmap = true };
	const char *netns = NULL, *pods[64];
	int nr_pods = 0, prev = -1, fd, err;
	struct tc_dp *t = NULL;
	struct dp *dp = NULL;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--pin-dir"))
			o.pin_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--cgroup"))
			o.cgroup = argv[i + 1];
		else if (!strcmp(argv[i], "--netns"))
			netns = argv[i + 1];
		else if (!strcmp(argv[i], "--pod") && nr_pods < 64)
			pods[nr_pods++] = argv[i + 1];
		else
			goto usage;
	}
	if (!o.pin_dir || !o.cgroup || !netns || !nr_pods)
		goto usage;
	err = dp_open(&o, &dp);
	if (err) {
		fprintf(stderr, "bench tc: data path %s: %s\n", o.pin_dir, strerror(-err));
		return 1;
	}
	struct tc_dp_opts to = { .pin_dir = o.pin_dir, .redirect = true };

	err = tc_dp_open(dp, &to, &t);
	if (err) {
		fprintf(stderr, "bench tc: load: %s\n", strerror(-err));
		goto out;
	}
	prev = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	{
		char path[256];

		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			err = -errno;
			fprintf(stderr, "bench tc: netns %s: %s\n", netns, strerror(errno));
			goto out;
		}
		close(fd);
	}
	for (int i = 0; i < nr_pods && !err; i++) {
		char ip[64], *ifname;
		struct in6_addr a;
		unsigned int ifindex;

		snprintf(ip, sizeof(ip), "%s", pods[i]);
		ifname = strchr(ip, ',');
		if (!ifname)
			goto usage;
		*ifname++ = 0;
		ifindex = if_nametoindex(ifname);
		if (!ifindex || inet_pton(AF_INET, ip, &a) != 1) {
			fprintf(stderr, "bench tc: %s: no such interface or bad address\n", pods[i]);
			err = -ENODEV;
			break;
		}
		err = tc_attach(t, ifindex, TC_ROLE_POD);
		if (!err)
			err = dp_pod_set(dp, AF_INET, &a, GAMMAD_NS_ALL, ifindex);
		if (err)
			fprintf(stderr, "bench tc: %s: %s\n", pods[i], strerror(-err));
	}
out:
	if (prev >= 0) {
		if (setns(prev, CLONE_NEWNET))
			perror("bench tc: setns back");
		close(prev);
	}
	if (t)
		tc_dp_close(t);
	dp_close(dp);
	return err ? 1 : 0;
usage:
	fprintf(stderr, "usage: bench tc --pin-dir P --cgroup C --netns NODE --pod IP,IFNAME...\n");
	return 2;
}
