/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-packet data path (bpf/tc.bpf.c): load it beside an open data
 * path (sharing its pinned maps) and attach it to interfaces.
 *
 * Attachment is a TCX ingress link per interface (kernel >= 6.6), pinned as
 * <pin_dir>/link_tc_<ifindex> so it outlives the agent like the cgroup
 * links, and removed by dp_uninstall() with them. A pinned link found for
 * the same interface is adopted: the new program replaces the old one
 * atomically (bpf_link_update), no packet goes unseen during an upgrade.
 * libbpf 1.1 has no TCX wrapper: the link is made with a raw
 * bpf_link_create(prog, ifindex, BPF_TCX_INGRESS). A TCX link goes away by
 * itself when its interface does; its pin then stays until tc_detach().
 *
 * Kernels without TCX (< 6.6, EINVAL) get a clsact ingress filter instead
 * (handle/priority GAMMAD_TC_HANDLE/PRIO, replaced in place on re-attach).
 * It lives with the interface's qdisc, not in the pin dir; the program is
 * pinned as <pin_dir>/clsact_tc_<ifindex> to mark it. tc_detach() removes
 * both; dp_uninstall() only the mark (the filter stays until its interface
 * goes or tc_detach() runs).
 */
#ifndef GAMMAD_TC_ATTACH_H
#define GAMMAD_TC_ATTACH_H

#include <stdbool.h>
#include <netinet/in.h>

#include "datapath.h"

struct tc_dp_opts {
	const char *pin_dir;	/* the data path's pin dir; NULL: DP_PIN_DIR_DEFAULT */
	bool redirect;		/* deliver with redirect_peer/neigh (else the stack routes) */
	bool clsact;		/* attach clsact filters even where TCX works (tests) */
	/*
	 * Source of hairpin flows as the pod's server side sees it
	 * (bpf/lib/hairpin.h); NULL: the default, 169.254.7.1 / 100::7:1.
	 */
	const struct in_addr *hairpin4;
	const struct in6_addr *hairpin6;
};

/* A usable hairpin address: unicast, not loopback, unspecified or v4-mapped. */
bool tc_hairpin_addr_ok(int family, const void *addr);

#define GAMMAD_TC_HANDLE	0x6d67	/* "gm" */
#define GAMMAD_TC_PRIO		1

enum tc_role {
	TC_ROLE_POD,		/* host side of a pod's veth */
	TC_ROLE_UPLINK,		/* the node's interface to other nodes */
};

struct tc_dp;

int tc_dp_open(struct dp *dp, const struct tc_dp_opts *opts, struct tc_dp **out);
/* Release this process's handles; attached (pinned) links stay. */
void tc_dp_close(struct tc_dp *t);

/* Attach (or adopt) the ingress program of `role` on ifindex, in the caller's netns. */
int tc_attach(struct tc_dp *t, int ifindex, enum tc_role role);
/* Detach and unpin the link (or filter) of ifindex; 0 when there was none. */
int tc_detach(struct tc_dp *t, int ifindex);

#endif
