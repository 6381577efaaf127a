// SPDX-License-Identifier: Apache-2.0
/* Host routes from rtnetlink: see host_routes.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "host_routes.h"

static int route_cmp(const void *a, const void *b)
{
	const struct host_route *x = a, *y = b;

	if (x->addr.family != y->addr.family)
		return x->addr.family < y->addr.family ? -1 : 1;
	return memcmp(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));
}

static int push(struct host_routes *r, size_t *cap, const struct host_route *h)
{
	if (r->nr == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct host_route *v = realloc(r->items, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->items = v;
		*cap = n;
	}
	r->items[r->nr++] = *h;
	return 0;
}

/* One RTM_NEWROUTE of the dump: keep it when it is a host route with an oif. */
static int take_route(struct host_routes *r, size_t *cap, const struct nlmsghdr *nh)
{
	const struct rtmsg *rt = NLMSG_DATA(nh);
	int len = (int)RTM_PAYLOAD(nh);
	struct host_route h = { .addr.family = rt->rtm_family };
	bool have_dst = false;

	if (rt->rtm_table != RT_TABLE_MAIN || rt->rtm_type != RTN_UNICAST ||
	    rt->rtm_dst_len != (rt->rtm_family == AF_INET ? 32 : 128))
		return 0;
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_DST &&
		    RTA_PAYLOAD(a) == (rt->rtm_family == AF_INET ? 4u : 16u)) {
			memcpy(h.addr.addr, RTA_DATA(a), RTA_PAYLOAD(a));
			have_dst = true;
		} else if (a->rta_type == RTA_OIF) {
			h.ifindex = *(const int *)RTA_DATA(a);
		}
	}
	return have_dst && h.ifindex ? push(r, cap, &h) : 0;
}

static int dump_family(int fd, int family, struct host_routes *r, size_t *cap)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETROUTE,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.rt = { .rtm_family = (unsigned char)family, .rtm_table = RT_TABLE_MAIN },
	};
	char buf[32768] __attribute__((aligned(4)));

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int len = (int)n;

		if (n < 0)
			return -errno;
		for (struct nlmsghdr *nh = (void *)buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
			int err;

			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
			if (nh->nlmsg_type != RTM_NEWROUTE)
				continue;
			err = take_route(r, cap, nh);
			if (err)
				return err;
		}
	}
}

int host_routes_read(struct host_routes *out)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	size_t cap = 0;
	int err;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return -errno;
	err = dump_family(fd, AF_INET, out, &cap);
	if (!err)
		err = dump_family(fd, AF_INET6, out, &cap);
	close(fd);
	if (err) {
		host_routes_free(out);
		return err;
	}
	qsort(out->items, out->nr, sizeof(*out->items), route_cmp);
	return 0;
}

void host_routes_free(struct host_routes *r)
{
	free(r->items);
	memset(r, 0, sizeof(*r));
}

int host_routes_ifindex(const struct host_routes *r, const struct ip_addr *a)
{
	struct host_route key = { .addr = *a };
	const struct host_route *h;

	if (!r || !r->nr)
		return 0;
	/* Compare whole 16 bytes: IPv4 addresses carry zeros after the first 4. */
	if (a->family == AF_INET)
		memset(key.addr.addr + 4, 0, 12);
	h = bsearch(&key, r->items, r->nr, sizeof(*r->items), route_cmp);
	return h ? h->ifindex : 0;
}
