/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Link and route changes from rtnetlink: pods come and go as veths and
 * host routes, and the agent follows them (TC attachment, pod table).
 */
#ifndef GAMMAD_NETMON_H
#define GAMMAD_NETMON_H

#define NETMON_QUIET_MS 50
#define NETMON_MAX_SETTLE_MS 250

/* A non-blocking socket subscribed to link and IPv4/IPv6 route events; fd or -errno. */
int netmon_open(void);
/*
 * Read what is queued; after an event about pods (a link, a host route),
 * keep reading until NETMON_QUIET_MS pass without events (at most
 * NETMON_MAX_SETTLE_MS). 1: pods may have changed, 0: nothing relevant,
 * or -errno.
 */
int netmon_settle(int fd);

#endif
