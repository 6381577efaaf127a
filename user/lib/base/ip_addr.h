/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An IPv4 or IPv6 address as the whole library keeps it: Service and Pod
 * addresses from the input, host routes from the node.
 */
#ifndef GAMMAD_IP_ADDR_H
#define GAMMAD_IP_ADDR_H

#include <stddef.h>
#include <stdint.h>

struct ip_addr {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* IPv4 in the first 4 bytes */
};

/* "10.0.0.1" or "fd00::1"; -EINVAL for anything else. */
int ip_addr_parse(const char *s, struct ip_addr *out);
/* "10.0.0.1" or "fd00::1" (no brackets); buf of INET6_ADDRSTRLEN. */
const char *ip_addr_str(const struct ip_addr *a, char *buf, size_t len);

#endif
