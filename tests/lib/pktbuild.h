/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small, independent packet builder for BPF_PROG_TEST_RUN fixtures:
 * Ethernet + IPv4 (with options, fragments) / IPv6 (with a fragment header)
 * + TCP / UDP / ICMP / ICMPv6 errors quoting another built packet. Every
 * checksum is computed from scratch here (RFC 1071), never incrementally,
 * so the expected packets share no code with the BPF rewriters.
 */
#ifndef GAMMAD_TEST_PKTBUILD_H
#define GAMMAD_TEST_PKTBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_MAX 1600

struct pb_spec {
	int family;		/* AF_INET, AF_INET6; 0 with ethertype: a non-IP frame */
	uint8_t proto;		/* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6 */
	const char *src, *dst;	/* addresses as text */
	uint16_t sport, dport;	/* host order */
	uint8_t tcp_flags;
	uint16_t payload;	/* payload bytes (a fixed pattern) */
	uint8_t ip_opts;	/* IPv4 option bytes, a multiple of 4 (<= 40) */
	uint16_t frag;		/* IPv4 frag_off field / IPv6 fragment offset+M field */
	bool no_l4;		/* a non-first fragment: payload only, no L4 header */
	bool udp_csum0;		/* IPv4 UDP without checksum */
	uint8_t icmp_type, icmp_code;
	const struct pb_spec *quote;	/* ICMP error: the packet quoted */
	uint16_t quote_l4;	/* L4 bytes of the quote; 0: the whole packet */
	uint16_t ethertype;	/* non-IP frame (e.g. ARP) when family is 0 */
	uint16_t cut;		/* truncate the frame to this length (malformed) */
};

/* Build the frame into buf (PB_MAX bytes); its length, 0 on a bad spec. */
size_t pb_build(const struct pb_spec *s, uint8_t *buf);

/* Print both frames as hex, marking differing bytes (for failing tests). */
void pb_diff(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len);

#endif
