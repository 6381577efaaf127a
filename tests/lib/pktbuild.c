// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "test_progs.h"
#include "pktbuild.h"

#define ETH_LEN 14

static const uint8_t mac_dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t mac_src[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

/* RFC 1071 sum of big-endian 16-bit words, not folded. */
static uint32_t sum_words(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

static int addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

static uint32_t pseudo_sum(const struct pb_spec *s, const uint8_t *src, const uint8_t *dst,
			   uint8_t proto, size_t l4_len)
{
	uint8_t tail[8] = { 0 };
	uint32_t sum = 0;
	int alen = addr_len(s->family);

	sum = sum_words(src, alen, sum);
	sum = sum_words(dst, alen, sum);
	if (s->family == AF_INET) {
		tail[1] = proto;
		put16(tail + 2, l4_len);
		return sum_words(tail, 4, sum);
	}
	put32(tail, l4_len);
	tail[7] = proto;
	return sum_words(tail, 8, sum);
}

static size_t put_payload(uint8_t *p, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	return n;
}

/* The bytes after the L3 header; returns their length. */
static size_t build_l4(const struct pb_spec *s, uint8_t *l4);

static size_t build_icmp(const struct pb_spec *s, uint8_t *p)
{
	uint8_t inner[PB_MAX];
	size_t n, ihl;

	p[0] = s->icmp_type;
	p[1] = s->icmp_code;
	memset(p + 2, 0, 6);
	/* frag needed (v4) / packet too big (v6) carry the next-hop MTU */
	if (s->family == AF_INET && s->icmp_type == 3 && s->icmp_code == 4)
		put16(p + 6, 1400);
	if (s->family == AF_INET6 && s->icmp_type == 2)
		put32(p + 4, 1280);
	if (!s->quote)
		return 8;
	n = pb_build(s->quote, inner);
	if (n <= ETH_LEN)
		return 0;
	n -= ETH_LEN;
	ihl = s->quote->family == AF_INET ? (size_t)(inner[ETH_LEN] & 0xf) * 4 : 40;
	if (s->quote_l4 && ihl + s->quote_l4 < n)
		n = ihl + s->quote_l4;
	memcpy(p + 8, inner + ETH_LEN, n);
	return 8 + n;
}

static size_t build_l4(const struct pb_spec *s, uint8_t *p)
{
	size_t n;

	if (s->no_l4)
		return put_payload(p, s->payload);
	switch (s->proto) {
	case IPPROTO_TCP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put32(p + 4, 0x01020304);
		put32(p + 8, s->tcp_flags & 0x10 ? 0x0a0b0c0d : 0);
		p[12] = 5 << 4;
		p[13] = s->tcp_flags;
		put16(p + 14, 0xffff);
		put16(p + 16, 0);
		put16(p + 18, 0);
		return 20 + put_payload(p + 20, s->payload);
	case IPPROTO_UDP:
		n = 8 + put_payload(p + 8, s->payload);
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put16(p + 4, n);
		put16(p + 6, 0);
		return n;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return build_icmp(s, p);
	}
	return put_payload(p, s->payload);
}

/* L4 checksum over the finished L4 bytes. */
static void l4_csum(const struct pb_spec *s, const uint8_t *src, const uint8_t *dst,
		    uint8_t *p, size_t n)
{
	uint16_t c;

	if (s->no_l4)
		return;
	switch (s->proto) {
	case IPPROTO_TCP:
		put16(p + 16, fold(sum_words(p, n, pseudo_sum(s, src, dst, s->proto, n))));
		break;
	case IPPROTO_UDP:
		if (s->udp_csum0)
			break;
		c = fold(sum_words(p, n, pseudo_sum(s, src, dst, s->proto, n)));
		put16(p + 6, c ? c : 0xffff);
		break;
	case IPPROTO_ICMP:
		put16(p + 2, fold(sum_words(p, n, 0)));
		break;
	case IPPROTO_ICMPV6:
		put16(p + 2, fold(sum_words(p, n, pseudo_sum(s, src, dst, s->proto, n))));
		break;
	}
}

static size_t build_ip4(const struct pb_spec *s, uint8_t *ip, const uint8_t *src,
			const uint8_t *dst)
{
	size_t hl = 20 + s->ip_opts, l4;

	if (s->ip_opts % 4 || s->ip_opts > 40)
		return 0;
	l4 = build_l4(s, ip + hl);
	if (!l4)
		return 0;
	ip[0] = 0x40 | hl / 4;
	ip[1] = 0;
	put16(ip + 2, hl + l4);
	put16(ip + 4, 0x1234);
	put16(ip + 6, s->frag ? s->frag : 0x4000);	/* DF unless a fragment */
	ip[8] = 64;
	ip[9] = s->proto;
	put16(ip + 10, 0);
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	/* options: NOPs, then End of Option List */
	memset(ip + 20, 1, s->ip_opts);
	if (s->ip_opts)
		ip[hl - 1] = 0;
	l4_csum(s, src, dst, ip + hl, l4);
	put16(ip + 10, fold(sum_words(ip, hl, 0)));
	return hl + l4;
}

static size_t build_ip6(const struct pb_spec *s, uint8_t *ip, const uint8_t *src,
			const uint8_t *dst)
{
	size_t hl = 40 + (s->frag ? 8 : 0), l4;

	l4 = build_l4(s, ip + hl);
	if (!l4)
		return 0;
	put32(ip, 0x60000000);
	put16(ip + 4, hl - 40 + l4);
	ip[6] = s->frag ? 44 : s->proto;
	ip[7] = 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	if (s->frag) {
		ip[40] = s->proto;
		ip[41] = 0;
		put16(ip + 42, s->frag);
		put32(ip + 44, 0xabcd);
	}
	l4_csum(s, src, dst, ip + hl, l4);
	return hl + l4;
}

size_t pb_build(const struct pb_spec *s, uint8_t *buf)
{
	uint8_t src[16], dst[16];
	size_t n;

	memset(buf, 0, PB_MAX);
	memcpy(buf, mac_dst, 6);
	memcpy(buf + 6, mac_src, 6);
	if (!s->family) {
		put16(buf + 12, s->ethertype);
		n = ETH_LEN + put_payload(buf + ETH_LEN, s->payload);
		return s->cut && s->cut < n ? s->cut : n;
	}
	if (inet_pton(s->family, s->src, src) != 1 || inet_pton(s->family, s->dst, dst) != 1)
		return 0;
	put16(buf + 12, s->family == AF_INET ? 0x0800 : 0x86dd);
	n = s->family == AF_INET ? build_ip4(s, buf + ETH_LEN, src, dst)
				 : build_ip6(s, buf + ETH_LEN, src, dst);
	if (!n)
		return 0;
	n += ETH_LEN;
	return s->cut && s->cut < n ? s->cut : n;
}

void pb_diff(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	size_t n = got_len > want_len ? got_len : want_len;

	test__printf("  got %zu bytes, want %zu bytes ('*' marks a difference)\n",
		     got_len, want_len);
	for (size_t i = 0; i < n; i += 16) {
		char line[160];
		int o = snprintf(line, sizeof(line), "  %04zx:", i);

		for (size_t j = i; j < i + 16 && j < n; j++) {
			bool g = j < got_len, w = j < want_len;
			bool diff = !g || !w || got[j] != want[j];

			o += snprintf(line + o, sizeof(line) - o, diff ? "*%02x/%02x" : " %02x",
				      g ? got[j] : 0, w ? want[j] : 0);
			if (o >= (int)sizeof(line) - 8)
				break;
		}
		test__printf("%s\n", line);
	}
}
