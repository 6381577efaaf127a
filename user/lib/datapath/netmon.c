// SPDX-License-Identifier: Apache-2.0
/* rtnetlink link and route events: see netmon.h. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "netmon.h"

int netmon_open(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * Pods show as links added or removed and as host routes (/32, /128) of
 * the main table. Everything else the groups carry (link statistics and
 * flag updates, cached and multicast routes) says nothing about pods.
 */
static bool about_pods(const struct nlmsghdr *nh)
{
	const struct rtmsg *rt;

	switch (nh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		return true;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		rt = NLMSG_DATA(nh);
		return rt->rtm_table == RT_TABLE_MAIN && rt->rtm_type == RTN_UNICAST &&
		       rt->rtm_dst_len == (rt->rtm_family == AF_INET ? 32 : 128);
	default:
		return false;
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int netmon_settle(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double end = now_ms() + NETMON_MAX_SETTLE_MS;
	char buf[16384] __attribute__((aligned(4)));
	int relevant = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int len = (int)n;

		if (n > 0) {
			for (struct nlmsghdr *nh = (void *)buf; NLMSG_OK(nh, len);
			     nh = NLMSG_NEXT(nh, len))
				relevant |= about_pods(nh);
			continue;
		}
		/* Overrun: events were lost; treat it as a change. */
		if (n < 0 && errno == ENOBUFS)
			relevant = 1;
		else if (n < 0 && errno != EAGAIN)
			return -errno;
		/* A steady stream of events must not hold the agent up. */
		if (now_ms() >= end)
			return relevant;
		n = poll(&p, 1, relevant ? NETMON_QUIET_MS : 0);
		if (n < 0)
			return -errno;
		if (!n)
			return relevant;
	}
}
