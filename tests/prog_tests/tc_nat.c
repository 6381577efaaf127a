// SPDX-License-Identifier: Apache-2.0
/*
 * Per-packet Service translation (bpf/tc.bpf.c) under BPF_PROG_TEST_RUN.
 *
 * Route tables are written with the data path writer (datapath.h) into a
 * test pin dir; the TC object shares those maps (dp_adopt_maps). Each
 * fixture is {description, hook, input packet, expected verdict, expected
 * output packet, expected counter deltas}. Packets come from an independent
 * builder (tests/lib/pktbuild.c: full RFC 1071 checksums), and the output
 * must equal the expected packet byte for byte. Rows run in order on one
 * conntrack table: a SYN row creates the flow later rows use.
 *
 * Redirects are off in this object (GAMMAD_TC_CFG_REDIRECT unset): a
 * translated packet comes back with TC_ACT_OK.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/tc_maps.h"
#include "lib/dp_fixture.h"
#include "lib/pktbuild.h"
#include "lib/svc_publish.h"
#include "test_progs.h"
#include "skel/tc.skel.h"

/* Services (ClusterIPs in the fixture's blackholed 198.19/16, fd00:19::/64). */
#define VIP4	"198.19.0.10"
#define VIP6	"fd00:19::10"
#define NOEP4	"198.19.0.20"
#define NOEP6	"fd00:19::20"
#define CONS4	"198.19.0.30"
#define WVIP4	"198.19.0.40"
#define X64VIP4	"198.19.0.60"	/* an IPv4 Service whose endpoint is IPv6 */
#define HPVIP4	"198.19.0.70"	/* Services whose only endpoint is the client HP4/HP6 */
#define HPVIP6	"fd00:19::70"
#define VPORT	8080

/* Endpoints. */
#define EP4	"198.18.1.2"	/* VIP4 tcp */
#define EP4U	"198.18.1.3"	/* VIP4 udp */
#define EP6	"fd00:18:1::2"
#define EP6U	"fd00:18:1::3"
#define EPCA	"198.18.2.2"	/* CONS4, producer route */
#define EPCB	"198.18.3.2"	/* CONS4, consumer route of namespace 7 */
#define EPW70	"198.18.4.2"
#define EPW30	"198.18.4.3"
#define EPORT	9090
#define EPORTU	9091

/* Clients. */
#define C4	"198.18.5.2"
#define C6	"fd00:18:5::2"
#define P7	"198.18.7.2"	/* a pod of namespace 7 */
#define R4	"198.18.9.1"	/* a router on the path */
#define R6	"fd00:18:9::1"
#define HP4	"198.18.6.2"	/* a pod calling its own Service (hairpin) */
#define HP6	"fd00:18:6::2"
#define HAIR4	"169.254.7.1"	/* the default hairpin addresses (bpf/lib/hairpin.h) */
#define HAIR6	"100::7:1"
#define REMOTE4	"10.1.0.5"	/* a client on another node */
#define REMOTE6	"fd00:10:1::5"
#define NS7	7

#define SYN	0x02
#define FIN	0x01
#define RST	0x04
#define PSH	0x08
#define ACK	0x10

#define TCP(f, s, d, sp, dp, fl, ...)						\
	{ .family = f, .proto = IPPROTO_TCP, .src = s, .dst = d,		\
	  .sport = sp, .dport = dp, .tcp_flags = fl, ##__VA_ARGS__ }
#define UDP(f, s, d, sp, dp, ...)						\
	{ .family = f, .proto = IPPROTO_UDP, .src = s, .dst = d,		\
	  .sport = sp, .dport = dp, ##__VA_ARGS__ }
#define ICMP4(s, d, type, code, q, ...)						\
	{ .family = AF_INET, .proto = IPPROTO_ICMP, .src = s, .dst = d,		\
	  .icmp_type = type, .icmp_code = code, .quote = q, ##__VA_ARGS__ }
#define ICMP6(s, d, type, code, q, ...)						\
	{ .family = AF_INET6, .proto = IPPROTO_ICMPV6, .src = s, .dst = d,	\
	  .icmp_type = type, .icmp_code = code, .quote = q, ##__VA_ARGS__ }

enum { HOOK_POD, HOOK_UPLINK };

struct tc_case {
	const char *name;
	int hook;
	struct pb_spec in;
	bool same;		/* the output is the input, unchanged */
	struct pb_spec out;
	int ret;		/* TC_ACT_OK (0) unless set */
	__u8 d[GAMMAD_TC_MAX];	/* expected growth of every TC counter */
};

#define TC_ACT_SHOT 2
#define D(...) .d = { __VA_ARGS__ }
#define XL [GAMMAD_TC_XLATE] = 1
#define RX [GAMMAD_TC_REV_XLATE] = 1
#define NF [GAMMAD_TC_NEW_FLOW] = 1
#define HP [GAMMAD_TC_HAIRPIN] = 1
#define IX [GAMMAD_TC_ICMP_XLATE] = 1

/* Packets quoted by ICMP errors, as they were on the wire. */
static const struct pb_spec q_udp4_fwd = UDP(AF_INET, C4, EP4U, 50000, EPORTU);
static const struct pb_spec q_udp4_fwd_x = UDP(AF_INET, C4, VIP4, 50000, VPORT);
static const struct pb_spec q_tcp4_fwd = TCP(AF_INET, C4, EP4, 40000, EPORT, ACK, .payload = 1400);
static const struct pb_spec q_tcp4_fwd_x = TCP(AF_INET, C4, VIP4, 40000, VPORT, ACK, .payload = 1400);
static const struct pb_spec q_udp4_rev = UDP(AF_INET, VIP4, C4, VPORT, 50000);
static const struct pb_spec q_udp4_rev_x = UDP(AF_INET, EP4U, C4, EPORTU, 50000);
static const struct pb_spec q_tcp4_other = TCP(AF_INET, C4, EP4, 40009, 80, ACK);
static const struct pb_spec q_udp6_fwd = UDP(AF_INET6, C6, EP6U, 50000, EPORTU);
static const struct pb_spec q_udp6_fwd_x = UDP(AF_INET6, C6, VIP6, 50000, VPORT);
static const struct pb_spec q_tcp6_fwd = TCP(AF_INET6, C6, EP6, 40001, EPORT, ACK, .payload = 1400);
static const struct pb_spec q_udp6_rev = UDP(AF_INET6, VIP6, C6, VPORT, 50000, .payload = 5);
static const struct pb_spec q_udp6_rev_x = UDP(AF_INET6, EP6U, C6, EPORTU, 50000, .payload = 5);
static const struct pb_spec q_tcp6_fwd_x = TCP(AF_INET6, C6, VIP6, 40001, VPORT, ACK, .payload = 1400);

/* Hairpin: the pod's own packets as sent and as its other side sees them. */
static const struct pb_spec q_hp_udp4_fwd = UDP(AF_INET, HAIR4, HP4, 51000, EPORTU, .payload = 3);
static const struct pb_spec q_hp_udp4_fwd_x = UDP(AF_INET, HP4, HPVIP4, 51000, VPORT, .payload = 3);
static const struct pb_spec q_hp_udp4_rev = UDP(AF_INET, HPVIP4, HP4, VPORT, 51000);
static const struct pb_spec q_hp_udp4_rev_x = UDP(AF_INET, HP4, HAIR4, EPORTU, 51000);
static const struct pb_spec q_hp_udp6_fwd = UDP(AF_INET6, HAIR6, HP6, 51000, EPORTU);
static const struct pb_spec q_hp_udp6_fwd_x = UDP(AF_INET6, HP6, HPVIP6, 51000, VPORT);
static const struct pb_spec q_hp_udp6_rev = UDP(AF_INET6, HPVIP6, HP6, VPORT, 51000, .payload = 9);
static const struct pb_spec q_hp_udp6_rev_x = UDP(AF_INET6, HP6, HAIR6, EPORTU, 51000, .payload = 9);

static const struct tc_case cases[] = {
	/* ---- IPv4 TCP: one connection from SYN to FIN ---- */
	{ "v4 tcp syn: new flow, DNAT to the endpoint", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, SYN), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 tcp syn retransmit: same flow", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, SYN), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, SYN), 0, D(XL) },
	{ "v4 tcp syn-ack: reply from the ClusterIP", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40000, SYN | ACK), false,
	  TCP(AF_INET, VIP4, C4, VPORT, 40000, SYN | ACK), 0, D(RX) },
	{ "v4 tcp established data", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, ACK | PSH, .payload = 100), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, ACK | PSH, .payload = 100), 0, D(XL) },
	{ "v4 tcp reply data (odd length)", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40000, ACK | PSH, .payload = 301), false,
	  TCP(AF_INET, VIP4, C4, VPORT, 40000, ACK | PSH, .payload = 301), 0, D(RX) },
	{ "v4 tcp fin: translated, flow closing", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, FIN | ACK), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, FIN | ACK), 0,
	  D(XL, [GAMMAD_TC_CLOSING] = 1) },
	{ "v4 tcp fin reply: already closing", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40000, FIN | ACK), false,
	  TCP(AF_INET, VIP4, C4, VPORT, 40000, FIN | ACK), 0, D(RX) },
	{ "v4 tcp last ack of a closing flow", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, ACK), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, ACK), 0, D(XL) },
	{ "v4 tcp syn reusing a closing tuple: new flow", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40000, VPORT, SYN), false,
	  TCP(AF_INET, C4, EP4, 40000, EPORT, SYN), 0, D(NF, XL) },

	/* ---- a direct connection on the tuple of a closing flow ---- */
	{ "v4 tcp syn of a flow", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40010, VPORT, SYN), false,
	  TCP(AF_INET, C4, EP4, 40010, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 tcp fin of that flow", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40010, VPORT, FIN | ACK), false,
	  TCP(AF_INET, C4, EP4, 40010, EPORT, FIN | ACK), 0,
	  D(XL, [GAMMAD_TC_CLOSING] = 1) },
	{ "v4 direct syn to the endpoint on its tuple: flow ends", HOOK_POD,
	  TCP(AF_INET, C4, EP4, 40010, EPORT, SYN), true, {}, 0,
	  D([GAMMAD_TC_PASS] = 1, [GAMMAD_TC_CLOSED] = 1) },
	{ "v4 its syn-ack: not reverse translated", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40010, SYN | ACK), true, {}, 0,
	  D([GAMMAD_TC_PASS] = 1) },

	/* ---- IPv4 options, RST ---- */
	{ "v4 tcp syn with ip options (ihl 6)", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40001, VPORT, SYN, .ip_opts = 4), false,
	  TCP(AF_INET, C4, EP4, 40001, EPORT, SYN, .ip_opts = 4), 0, D(NF, XL) },
	{ "v4 tcp reply with 40 bytes of ip options (ihl 15)", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40001, SYN | ACK, .ip_opts = 40, .payload = 8), false,
	  TCP(AF_INET, VIP4, C4, VPORT, 40001, SYN | ACK, .ip_opts = 40, .payload = 8), 0, D(RX) },
	{ "v4 tcp rst: translated, flow removed", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40001, VPORT, RST | ACK), false,
	  TCP(AF_INET, C4, EP4, 40001, EPORT, RST | ACK), 0,
	  D(XL, [GAMMAD_TC_CLOSED] = 1) },
	{ "v4 tcp after rst: no flow, untouched", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40001, VPORT, ACK), true, {}, 0,
	  D([GAMMAD_TC_CT_MISS] = 1) },
	{ "v4 reply after rst: no flow, untouched", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40001, ACK), true, {}, 0,
	  D([GAMMAD_TC_PASS] = 1) },
	{ "v4 tcp mid-flow without conntrack: untouched", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40002, VPORT, ACK | PSH, .payload = 10), true, {}, 0,
	  D([GAMMAD_TC_CT_MISS] = 1) },

	/* ---- IPv4 UDP ---- */
	{ "v4 udp first datagram: new flow", HOOK_POD,
	  UDP(AF_INET, C4, VIP4, 50000, VPORT), false,
	  UDP(AF_INET, C4, EP4U, 50000, EPORTU), 0, D(NF, XL) },
	{ "v4 udp next datagram", HOOK_POD,
	  UDP(AF_INET, C4, VIP4, 50000, VPORT, .payload = 999), false,
	  UDP(AF_INET, C4, EP4U, 50000, EPORTU, .payload = 999), 0, D(XL) },
	{ "v4 udp reply", HOOK_POD,
	  UDP(AF_INET, EP4U, C4, EPORTU, 50000), false,
	  UDP(AF_INET, VIP4, C4, VPORT, 50000), 0, D(RX) },
	{ "v4 udp zero checksum stays zero", HOOK_POD,
	  UDP(AF_INET, C4, VIP4, 50001, VPORT, .udp_csum0 = true), false,
	  UDP(AF_INET, C4, EP4U, 50001, EPORTU, .udp_csum0 = true), 0, D(NF, XL) },

	/* ---- ICMP errors about translated flows ---- */
	{ "v4 icmp port unreachable from the endpoint", HOOK_POD,
	  ICMP4(EP4U, C4, 3, 3, &q_udp4_fwd), false,
	  ICMP4(VIP4, C4, 3, 3, &q_udp4_fwd_x), 0, D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v4 icmp frag needed from a router, tcp quote", HOOK_UPLINK,
	  ICMP4(R4, C4, 3, 4, &q_tcp4_fwd, .quote_l4 = 64), false,
	  ICMP4(R4, C4, 3, 4, &q_tcp4_fwd_x, .quote_l4 = 64), 0,
	  D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v4 icmp time exceeded quoting 8 bytes of tcp", HOOK_UPLINK,
	  ICMP4(R4, C4, 11, 0, &q_tcp4_fwd, .quote_l4 = 8), false,
	  ICMP4(R4, C4, 11, 0, &q_tcp4_fwd_x, .quote_l4 = 8), 0,
	  D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v4 icmp to the ClusterIP about a reply", HOOK_POD,
	  ICMP4(C4, VIP4, 3, 3, &q_udp4_rev), false,
	  ICMP4(C4, EP4U, 3, 3, &q_udp4_rev_x), 0, D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v4 icmp about an unknown flow: untouched", HOOK_POD,
	  ICMP4(R4, C4, 3, 1, &q_tcp4_other), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },

	/* ---- IPv4: what is not translated ---- */
	{ "v4 first fragment to a ClusterIP: passed", HOOK_POD,
	  UDP(AF_INET, C4, VIP4, 50002, VPORT, .frag = 0x2000, .payload = 64), true, {}, 0,
	  D([GAMMAD_TC_FRAGMENT] = 1) },
	{ "v4 non-first fragment: passed", HOOK_POD,
	  UDP(AF_INET, C4, VIP4, 0, 0, .frag = 185, .no_l4 = true, .payload = 64), true, {}, 0,
	  D([GAMMAD_TC_FRAGMENT] = 1) },
	{ "v4 not a Service: untouched", HOOK_POD,
	  TCP(AF_INET, C4, EP4, 40003, 80, SYN), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v4 connect-time translated flow: untouched", HOOK_POD,
	  TCP(AF_INET, C4, EP4, 40100, EPORT, SYN), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v4 its reply: untouched", HOOK_POD,
	  TCP(AF_INET, EP4, C4, EPORT, 40100, SYN | ACK), true, {}, 0,
	  D([GAMMAD_TC_PASS] = 1) },
	{ "arp: untouched", HOOK_POD,
	  { .ethertype = 0x0806, .payload = 28 }, true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v4 icmp echo to a ClusterIP: untouched", HOOK_POD,
	  ICMP4(C4, VIP4, 8, 0, NULL), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v4 truncated tcp header: passed", HOOK_POD,
	  TCP(AF_INET, C4, VIP4, 40004, VPORT, SYN, .cut = 14 + 20 + 12), true, {}, 0,
	  D([GAMMAD_TC_MALFORMED] = 1) },
	{ "v4 no endpoint: dropped", HOOK_POD,
	  TCP(AF_INET, C4, NOEP4, 40005, VPORT, SYN), true, {}, TC_ACT_SHOT,
	  D([GAMMAD_TC_NO_ENDPOINT] = 1) },
	{ "v4 Service with an IPv6 endpoint: dropped", HOOK_POD,
	  TCP(AF_INET, C4, X64VIP4, 40007, VPORT, SYN), true, {}, TC_ACT_SHOT,
	  D([GAMMAD_TC_FAMILY] = 1) },

	/* ---- client class, uplink ---- */
	{ "v4 consumer route for a pod of namespace 7", HOOK_POD,
	  TCP(AF_INET, P7, CONS4, 40000, VPORT, SYN), false,
	  TCP(AF_INET, P7, EPCB, 40000, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 producer route for an unknown client", HOOK_POD,
	  TCP(AF_INET, C4, CONS4, 40006, VPORT, SYN), false,
	  TCP(AF_INET, C4, EPCA, 40006, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 uplink: a client on another node", HOOK_UPLINK,
	  TCP(AF_INET, REMOTE4, VIP4, 33000, VPORT, SYN), false,
	  TCP(AF_INET, REMOTE4, EP4, 33000, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 uplink: the reply to it", HOOK_POD,
	  TCP(AF_INET, EP4, REMOTE4, EPORT, 33000, SYN | ACK), false,
	  TCP(AF_INET, VIP4, REMOTE4, VPORT, 33000, SYN | ACK), 0, D(RX) },

	/* ---- IPv6 ---- */
	{ "v6 tcp syn: new flow", HOOK_POD,
	  TCP(AF_INET6, C6, VIP6, 40000, VPORT, SYN), false,
	  TCP(AF_INET6, C6, EP6, 40000, EPORT, SYN), 0, D(NF, XL) },
	{ "v6 tcp syn-ack reply", HOOK_POD,
	  TCP(AF_INET6, EP6, C6, EPORT, 40000, SYN | ACK), false,
	  TCP(AF_INET6, VIP6, C6, VPORT, 40000, SYN | ACK), 0, D(RX) },
	{ "v6 tcp established data", HOOK_POD,
	  TCP(AF_INET6, C6, VIP6, 40000, VPORT, ACK | PSH, .payload = 77), false,
	  TCP(AF_INET6, C6, EP6, 40000, EPORT, ACK | PSH, .payload = 77), 0, D(XL) },
	{ "v6 tcp fin", HOOK_POD,
	  TCP(AF_INET6, C6, VIP6, 40000, VPORT, FIN | ACK), false,
	  TCP(AF_INET6, C6, EP6, 40000, EPORT, FIN | ACK), 0,
	  D(XL, [GAMMAD_TC_CLOSING] = 1) },
	{ "v6 tcp rst from the endpoint: flow removed", HOOK_POD,
	  TCP(AF_INET6, EP6, C6, EPORT, 40000, RST), false,
	  TCP(AF_INET6, VIP6, C6, VPORT, 40000, RST), 0,
	  D(RX, [GAMMAD_TC_CLOSED] = 1) },
	{ "v6 tcp after rst: untouched", HOOK_POD,
	  TCP(AF_INET6, C6, VIP6, 40000, VPORT, ACK), true, {}, 0,
	  D([GAMMAD_TC_CT_MISS] = 1) },
	{ "v6 tcp syn, second flow", HOOK_POD,
	  TCP(AF_INET6, C6, VIP6, 40001, VPORT, SYN), false,
	  TCP(AF_INET6, C6, EP6, 40001, EPORT, SYN), 0, D(NF, XL) },
	{ "v6 udp first datagram", HOOK_POD,
	  UDP(AF_INET6, C6, VIP6, 50000, VPORT), false,
	  UDP(AF_INET6, C6, EP6U, 50000, EPORTU), 0, D(NF, XL) },
	{ "v6 udp reply", HOOK_POD,
	  UDP(AF_INET6, EP6U, C6, EPORTU, 50000, .payload = 5), false,
	  UDP(AF_INET6, VIP6, C6, VPORT, 50000, .payload = 5), 0, D(RX) },
	{ "v6 icmpv6 port unreachable from the endpoint", HOOK_POD,
	  ICMP6(EP6U, C6, 1, 4, &q_udp6_fwd), false,
	  ICMP6(VIP6, C6, 1, 4, &q_udp6_fwd_x), 0, D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v6 icmpv6 packet too big from a router, tcp quote", HOOK_UPLINK,
	  ICMP6(R6, C6, 2, 0, &q_tcp6_fwd, .quote_l4 = 100), false,
	  ICMP6(R6, C6, 2, 0, &q_tcp6_fwd_x, .quote_l4 = 100), 0,
	  D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v6 icmpv6 to the ClusterIP about a reply", HOOK_POD,
	  ICMP6(C6, VIP6, 1, 4, &q_udp6_rev), false,
	  ICMP6(C6, EP6U, 1, 4, &q_udp6_rev_x), 0, D([GAMMAD_TC_ICMP_XLATE] = 1) },
	{ "v6 fragment header: passed", HOOK_POD,
	  UDP(AF_INET6, C6, VIP6, 50001, VPORT, .frag = 1), true, {}, 0,
	  D([GAMMAD_TC_FRAGMENT] = 1) },
	{ "v6 not a Service: untouched", HOOK_POD,
	  UDP(AF_INET6, C6, EP6U, 50002, 53), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v6 no endpoint: dropped", HOOK_POD,
	  TCP(AF_INET6, C6, NOEP6, 40002, VPORT, SYN), true, {}, TC_ACT_SHOT,
	  D([GAMMAD_TC_NO_ENDPOINT] = 1) },
	{ "v6 uplink: udp from another node", HOOK_UPLINK,
	  UDP(AF_INET6, REMOTE6, VIP6, 33000, VPORT), false,
	  UDP(AF_INET6, REMOTE6, EP6U, 33000, EPORTU), 0, D(NF, XL) },

	/* ---- hairpin: a pod whose own Service picks the pod itself ---- */
	{ "v4 hairpin syn: from the hairpin address to the pod itself", HOOK_POD,
	  TCP(AF_INET, HP4, HPVIP4, 41000, VPORT, SYN), false,
	  TCP(AF_INET, HAIR4, HP4, 41000, EPORT, SYN), 0, D(NF, XL, HP) },
	{ "v4 hairpin syn-ack: from the ClusterIP to the pod", HOOK_POD,
	  TCP(AF_INET, HP4, HAIR4, EPORT, 41000, SYN | ACK), false,
	  TCP(AF_INET, HPVIP4, HP4, VPORT, 41000, SYN | ACK), 0, D(RX, HP) },
	{ "v4 hairpin data", HOOK_POD,
	  TCP(AF_INET, HP4, HPVIP4, 41000, VPORT, ACK | PSH, .payload = 333), false,
	  TCP(AF_INET, HAIR4, HP4, 41000, EPORT, ACK | PSH, .payload = 333), 0, D(XL, HP) },
	{ "v4 hairpin reply data", HOOK_POD,
	  TCP(AF_INET, HP4, HAIR4, EPORT, 41000, ACK | PSH, .payload = 1001), false,
	  TCP(AF_INET, HPVIP4, HP4, VPORT, 41000, ACK | PSH, .payload = 1001), 0, D(RX, HP) },
	{ "v4 hairpin rst from the pod's server side: flow removed", HOOK_POD,
	  TCP(AF_INET, HP4, HAIR4, EPORT, 41000, RST | ACK), false,
	  TCP(AF_INET, HPVIP4, HP4, VPORT, 41000, RST | ACK), 0,
	  D(RX, HP, [GAMMAD_TC_CLOSED] = 1) },
	{ "v4 hairpin after rst: both entries gone", HOOK_POD,
	  TCP(AF_INET, HP4, HAIR4, EPORT, 41000, ACK), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
	{ "v4 hairpin udp", HOOK_POD,
	  UDP(AF_INET, HP4, HPVIP4, 51000, VPORT, .payload = 3), false,
	  UDP(AF_INET, HAIR4, HP4, 51000, EPORTU, .payload = 3), 0, D(NF, XL, HP) },
	{ "v4 hairpin udp reply", HOOK_POD,
	  UDP(AF_INET, HP4, HAIR4, EPORTU, 51000), false,
	  UDP(AF_INET, HPVIP4, HP4, VPORT, 51000), 0, D(RX, HP) },
	{ "v4 hairpin udp zero checksum stays zero", HOOK_POD,
	  UDP(AF_INET, HP4, HPVIP4, 51000, VPORT, .udp_csum0 = true), false,
	  UDP(AF_INET, HAIR4, HP4, 51000, EPORTU, .udp_csum0 = true), 0, D(XL, HP) },
	{ "v4 hairpin icmp port unreachable from the pod's server side", HOOK_POD,
	  ICMP4(HP4, HAIR4, 3, 3, &q_hp_udp4_fwd), false,
	  ICMP4(HPVIP4, HP4, 3, 3, &q_hp_udp4_fwd_x), 0, D(IX, HP) },
	{ "v4 hairpin icmp from the pod's client side about a reply", HOOK_POD,
	  ICMP4(HP4, HPVIP4, 3, 3, &q_hp_udp4_rev), false,
	  ICMP4(HAIR4, HP4, 3, 3, &q_hp_udp4_rev_x), 0, D(IX, HP) },
	{ "v6 hairpin syn", HOOK_POD,
	  TCP(AF_INET6, HP6, HPVIP6, 41000, VPORT, SYN), false,
	  TCP(AF_INET6, HAIR6, HP6, 41000, EPORT, SYN), 0, D(NF, XL, HP) },
	{ "v6 hairpin syn-ack", HOOK_POD,
	  TCP(AF_INET6, HP6, HAIR6, EPORT, 41000, SYN | ACK), false,
	  TCP(AF_INET6, HPVIP6, HP6, VPORT, 41000, SYN | ACK), 0, D(RX, HP) },
	{ "v6 hairpin data", HOOK_POD,
	  TCP(AF_INET6, HP6, HPVIP6, 41000, VPORT, ACK | PSH, .payload = 77), false,
	  TCP(AF_INET6, HAIR6, HP6, 41000, EPORT, ACK | PSH, .payload = 77), 0, D(XL, HP) },
	{ "v6 hairpin fin from the client side: closing", HOOK_POD,
	  TCP(AF_INET6, HP6, HPVIP6, 41000, VPORT, FIN | ACK), false,
	  TCP(AF_INET6, HAIR6, HP6, 41000, EPORT, FIN | ACK), 0,
	  D(XL, HP, [GAMMAD_TC_CLOSING] = 1) },
	{ "v6 hairpin fin reply", HOOK_POD,
	  TCP(AF_INET6, HP6, HAIR6, EPORT, 41000, FIN | ACK), false,
	  TCP(AF_INET6, HPVIP6, HP6, VPORT, 41000, FIN | ACK), 0, D(RX, HP) },
	{ "v6 hairpin udp", HOOK_POD,
	  UDP(AF_INET6, HP6, HPVIP6, 51000, VPORT), false,
	  UDP(AF_INET6, HAIR6, HP6, 51000, EPORTU), 0, D(NF, XL, HP) },
	{ "v6 hairpin udp reply", HOOK_POD,
	  UDP(AF_INET6, HP6, HAIR6, EPORTU, 51000, .payload = 9), false,
	  UDP(AF_INET6, HPVIP6, HP6, VPORT, 51000, .payload = 9), 0, D(RX, HP) },
	{ "v6 hairpin icmpv6 port unreachable from the pod's server side", HOOK_POD,
	  ICMP6(HP6, HAIR6, 1, 4, &q_hp_udp6_fwd), false,
	  ICMP6(HPVIP6, HP6, 1, 4, &q_hp_udp6_fwd_x), 0, D(IX, HP) },
	{ "v6 hairpin icmpv6 from the pod's client side about a reply", HOOK_POD,
	  ICMP6(HP6, HPVIP6, 1, 4, &q_hp_udp6_rev), false,
	  ICMP6(HAIR6, HP6, 1, 4, &q_hp_udp6_rev_x), 0, D(IX, HP) },
	{ "v4 a client that is not the endpoint: no hairpin", HOOK_POD,
	  TCP(AF_INET, C4, HPVIP4, 41001, VPORT, SYN), false,
	  TCP(AF_INET, C4, HP4, 41001, EPORT, SYN), 0, D(NF, XL) },
	{ "v4 the pod's reply to it: no hairpin", HOOK_POD,
	  TCP(AF_INET, HP4, C4, EPORT, 41001, SYN | ACK), false,
	  TCP(AF_INET, HPVIP4, C4, VPORT, 41001, SYN | ACK), 0, D(RX) },
};

struct tc_env {
	struct dp_fixture fx;
	struct tc_bpf *skel;
};

/* ---- route tables, through the data path writer ------------------------ */

static int publish(struct dp *dp, const char *vip, uint8_t proto, uint32_t id,
		   const struct svc_ep *eps, int nr, uint32_t fe_flags)
{
	return svc_publish(dp, vip, VPORT, proto, id, eps, nr, fe_flags);
}

static int publish_all(struct dp *dp)
{
	const struct svc_ep tcp4[] = { { EP4, EPORT, 1 } }, udp4[] = { { EP4U, EPORTU, 1 } };
	const struct svc_ep tcp6[] = { { EP6, EPORT, 1 } }, udp6[] = { { EP6U, EPORTU, 1 } };
	const struct svc_ep none4[] = { { "198.18.1.9", 0, 1 } }, none6[] = { { "fd00:18::9", 0, 1 } };
	const struct svc_ep cons[] = { { EPCA, EPORT, 1 } }, cons7[] = { { EPCB, EPORT, 1 } };
	const struct svc_ep wt[] = { { EPW70, EPORT, 70 }, { EPW30, EPORT, 30 } };
	const struct svc_ep x64[] = { { EP6, EPORT, 1 } };
	const struct svc_ep hp4[] = { { HP4, EPORT, 1 } }, hp4u[] = { { HP4, EPORTU, 1 } };
	const struct svc_ep hp6[] = { { HP6, EPORT, 1 } }, hp6u[] = { { HP6, EPORTU, 1 } };
	struct in_addr p7;
	int err;

	inet_pton(AF_INET, P7, &p7);
	err = publish(dp, VIP4, IPPROTO_TCP, 1, tcp4, 1, 0) ?:
	      publish(dp, VIP4, IPPROTO_UDP, 2, udp4, 1, 0) ?:
	      publish(dp, VIP6, IPPROTO_TCP, 3, tcp6, 1, 0) ?:
	      publish(dp, VIP6, IPPROTO_UDP, 4, udp6, 1, 0) ?:
	      publish(dp, NOEP4, IPPROTO_TCP, 5, none4, 1, 0) ?:
	      publish(dp, NOEP6, IPPROTO_TCP, 6, none6, 1, 0) ?:
	      /* the consumer table of namespace 7 first, then the frontend using it */
	      publish(dp, "198.19.0.31", IPPROTO_TCP, 8, cons7, 1, 0) ?:
	      dp_consumer_write(dp, 70, NS7, 80) ?:
	      publish(dp, CONS4, IPPROTO_TCP, 7, cons, 1, GAMMAD_FE_HAS_CONSUMERS) ?:
	      publish(dp, WVIP4, IPPROTO_TCP, 9, wt, 2, 0) ?:
	      publish(dp, X64VIP4, IPPROTO_TCP, 10, x64, 1, 0) ?:
	      publish(dp, HPVIP4, IPPROTO_TCP, 11, hp4, 1, 0) ?:
	      publish(dp, HPVIP4, IPPROTO_UDP, 12, hp4u, 1, 0) ?:
	      publish(dp, HPVIP6, IPPROTO_TCP, 13, hp6, 1, 0) ?:
	      publish(dp, HPVIP6, IPPROTO_UDP, 14, hp6u, 1, 0) ?:
	      dp_pod_set(dp, AF_INET, &p7, NS7, 0);
	return err;
}

/* ---- running packets ----------------------------------------------------- */

static int run(struct tc_env *e, int hook, const uint8_t *in, size_t in_len,
	       uint8_t *out, uint32_t *out_len, int *ret)
{
	struct bpf_program *p = hook == HOOK_UPLINK ? e->skel->progs.gammad_tc_uplink
						    : e->skel->progs.gammad_tc_pod;
	/* ifindex 1 (lo): the FIB helpers need a device; unused without redirects */
	struct __sk_buff ctx = { .ifindex = 1, .ingress_ifindex = 1 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		    .data_in = in, .data_size_in = in_len,
		    .data_out = out, .data_size_out = *out_len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(p), &o);

	*out_len = o.data_size_out;
	*ret = o.retval;
	return err;
}

static void check_counters(const __u64 *before, const __u64 *after, const __u8 *want)
{
	for (int r = 0; r < GAMMAD_TC_MAX; r++) {
		long long d = after[r] - before[r];

		if (d != want[r])
			test__printf("  counter %s: grew by %lld, want %d\n",
				     dp_tc_reason_name(r), d, want[r]);
		ASSERT_EQ(d, want[r], "counter delta");
	}
}

static void run_case(struct tc_env *e, const struct tc_case *c)
{
	static uint8_t in[PB_MAX], want[PB_MAX], got[PB_MAX];
	__u64 before[GAMMAD_TC_MAX], after[GAMMAD_TC_MAX];
	size_t in_len, want_len;
	uint32_t got_len = sizeof(got);
	int ret;

	in_len = pb_build(&c->in, in);
	want_len = c->same ? in_len : pb_build(&c->out, want);
	if (c->same)
		memcpy(want, in, in_len);
	if (!ASSERT_GT(in_len, 0, "build input") || !ASSERT_GT(want_len, 0, "build expected"))
		return;
	if (!ASSERT_OK(dp_tc_counters(e->fx.dp, before), "counters"))
		return;
	if (!ASSERT_OK(run(e, c->hook, in, in_len, got, &got_len, &ret), "test run"))
		return;
	ASSERT_EQ(ret, c->ret, "verdict");
	if (!ASSERT_EQ(got_len, want_len, "length") ||
	    !ASSERT_OK(memcmp(got, want, want_len), "bytes"))
		pb_diff(got, got_len, want, want_len);
	if (ASSERT_OK(dp_tc_counters(e->fx.dp, after), "counters"))
		check_counters(before, after, c->d);
}

/* 1000 new flows over a 70/30 split land within +-5%, counted per backend. */
static void test_weighted(struct tc_env *e)
{
	static uint8_t in[PB_MAX], got[PB_MAX];
	struct gammad_be_stats b70, b30;
	struct in_addr a70, a30;
	int n70 = 0, n30 = 0, other = 0;

	inet_pton(AF_INET, EPW70, &a70);
	inet_pton(AF_INET, EPW30, &a30);
	for (int i = 0; i < 1000; i++) {
		struct pb_spec s = TCP(AF_INET, C4, WVIP4, 20000 + i, VPORT, SYN);
		uint32_t got_len = sizeof(got);
		size_t len = pb_build(&s, in);
		int ret;

		if (!ASSERT_OK(run(e, HOOK_POD, in, len, got, &got_len, &ret), "test run"))
			return;
		/* destination address: Ethernet 14 + IPv4 offset 16 */
		if (!memcmp(got + 30, &a70, 4))
			n70++;
		else if (!memcmp(got + 30, &a30, 4))
			n30++;
		else
			other++;
	}
	test__printf("70/30 over 1000 flows: %d/%d, other %d\n", n70, n30, other);
	ASSERT_EQ(other, 0, "only the route's endpoints");
	ASSERT_TRUE(n70 >= 650 && n70 <= 750, "70% +-5%");
	ASSERT_TRUE(n30 >= 250 && n30 <= 350, "30% +-5%");
	if (ASSERT_OK(dp_be_stats(e->fx.dp, 90, &b70), "be 70") &&
	    ASSERT_OK(dp_be_stats(e->fx.dp, 91, &b30), "be 30")) {
		ASSERT_EQ(b70.connects, n70, "backend counter 70");
		ASSERT_EQ(b30.connects, n30, "backend counter 30");
	}
}

/*
 * Per-packet cost under BPF_PROG_TEST_RUN (the program alone, no stack):
 * printed for comparison; the bound only catches a runaway (a loop, a
 * lookup storm), not a regression of a few ns on a shared machine.
 */
static void test_cost(struct tc_env *e)
{
	static const struct pb_spec specs[] = {
		TCP(AF_INET, C4, EP4, 40200, 80, ACK, .payload = 100),		/* not for the mesh */
		TCP(AF_INET, C4, VIP4, 40000, VPORT, ACK, .payload = 100),	/* translated */
	};
	static const char *const names[] = { "non-mesh", "translated" };
	static uint8_t in[PB_MAX], out[PB_MAX];
	struct __sk_buff ctx = { .ifindex = 1, .ingress_ifindex = 1 };

	for (int i = 0; i < 2; i++) {
		size_t len = pb_build(&specs[i], in);
		LIBBPF_OPTS(bpf_test_run_opts, o,
			    .data_in = in, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out),
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
			    .repeat = 100000);

		if (!ASSERT_OK(bpf_prog_test_run_opts(
				bpf_program__fd(e->skel->progs.gammad_tc_pod), &o), "test run"))
			return;
		test__printf("%-10s %u ns per packet\n", names[i], o.duration);
		ASSERT_LT(o.duration, 20000, "per-packet cost");
	}
}

/* Idle UDP flows and closing TCP flows end by timeout (1 s in this object). */
static void test_idle(struct tc_env *e)
{
	const struct tc_case first[] = {
		{ "udp flow", HOOK_POD, UDP(AF_INET, C4, VIP4, 51000, VPORT), false,
		  UDP(AF_INET, C4, EP4U, 51000, EPORTU), 0, D(NF, XL) },
		{ "tcp flow", HOOK_POD, TCP(AF_INET, C4, VIP4, 41000, VPORT, SYN), false,
		  TCP(AF_INET, C4, EP4, 41000, EPORT, SYN), 0, D(NF, XL) },
		{ "tcp fin", HOOK_POD, TCP(AF_INET, C4, VIP4, 41000, VPORT, FIN | ACK), false,
		  TCP(AF_INET, C4, EP4, 41000, EPORT, FIN | ACK), 0,
		  D(XL, [GAMMAD_TC_CLOSING] = 1) },
	};
	const struct tc_case later[] = {
		{ "udp after idle: expired, new flow", HOOK_POD,
		  UDP(AF_INET, C4, VIP4, 51000, VPORT), false,
		  UDP(AF_INET, C4, EP4U, 51000, EPORTU), 0,
		  D(NF, XL, [GAMMAD_TC_EXPIRED] = 1) },
		{ "tcp ack after closing timeout: expired, untouched", HOOK_POD,
		  TCP(AF_INET, C4, VIP4, 41000, VPORT, ACK), true, {}, 0,
		  D([GAMMAD_TC_EXPIRED] = 1, [GAMMAD_TC_CT_MISS] = 1) },
		{ "reply of the expired tcp flow: untouched", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 41000, ACK), true, {}, 0,
		  D([GAMMAD_TC_PASS] = 1) },
	};

	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		run_case(e, &first[i]);
	usleep(1300 * 1000);
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		test__printf("  %s\n", later[i].name);
		run_case(e, &later[i]);
	}
}

/*
 * The hairpin address is a load-time constant: an object loaded with other
 * addresses (as gammad run --hairpin-addr sets them) uses them both ways.
 */
static void test_hairpin_addr(struct tc_env *e)
{
	const struct tc_case rows[] = {
		{ "v4 syn", HOOK_POD, TCP(AF_INET, HP4, HPVIP4, 42000, VPORT, SYN), false,
		  TCP(AF_INET, "10.96.255.254", HP4, 42000, EPORT, SYN), 0, D(NF, XL, HP) },
		{ "v4 syn-ack", HOOK_POD, TCP(AF_INET, HP4, "10.96.255.254", EPORT, 42000, SYN | ACK),
		  false, TCP(AF_INET, HPVIP4, HP4, VPORT, 42000, SYN | ACK), 0, D(RX, HP) },
		{ "v6 udp", HOOK_POD, UDP(AF_INET6, HP6, HPVIP6, 52000, VPORT), false,
		  UDP(AF_INET6, "fd00:10:96::fffe", HP6, 52000, EPORTU), 0, D(NF, XL, HP) },
		{ "v6 udp reply", HOOK_POD, UDP(AF_INET6, HP6, "fd00:10:96::fffe", EPORTU, 52000),
		  false, UDP(AF_INET6, HPVIP6, HP6, VPORT, 52000), 0, D(RX, HP) },
	};
	struct tc_bpf *def = e->skel, *skel = tc_bpf__open();
	struct in6_addr a6;
	struct in_addr a4;

	if (!ASSERT_OK_PTR(skel, "open tc"))
		return;
	inet_pton(AF_INET, "10.96.255.254", &a4);
	inet_pton(AF_INET6, "fd00:10:96::fffe", &a6);
	skel->rodata->tc_hairpin4 = a4.s_addr;
	memcpy((void *)skel->rodata->tc_hairpin6, &a6, sizeof(a6));
	if (ASSERT_OK(dp_adopt_maps(e->fx.dp, skel->obj), "share maps") &&
	    ASSERT_OK(tc_bpf__load(skel), "load tc")) {
		e->skel = skel;
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			test__printf("  %s\n", rows[i].name);
			run_case(e, &rows[i]);
		}
		e->skel = def;
	}
	tc_bpf__destroy(skel);
}

/* An IPv4 TCP conntrack key as the programs store it. */
static struct gammad_ct_key ct_key4(const char *src, int sport, const char *dst, int dport,
				    __u8 dir)
{
	struct gammad_ct_key k = { .sport = htons(sport), .dport = htons(dport),
				   .proto = IPPROTO_TCP, .family = AF_INET, .dir = dir };

	inet_pton(AF_INET, src, k.saddr);
	inet_pton(AF_INET, dst, k.daddr);
	return k;
}

/*
 * A conntrack layout upgrade's switch (bpf/lib/ct.h gammad_ctold_v1): while
 * the slot holds the old map, a flow only the old map has is dropped (not
 * passed untranslated, which makes the client reset the connection), a copy
 * whose flow the old programs ended (or ended and made again on its tuple,
 * to another endpoint) is dropped as stale, and what the new
 * programs end goes from the old map too. The agent_upgrade test runs the
 * two layouts; this one fixes the packets.
 */
static void test_upgrade_old_ct(struct tc_env *e)
{
	const struct tc_case rows[] = {
		{ "reply of a flow only the old map has: dropped", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 43000, ACK, .payload = 100), true, {}, TC_ACT_SHOT,
		  D([GAMMAD_TC_UPGRADE_WAIT] = 1) },
		{ "mid-flow packet of a flow only the old map has: dropped", HOOK_POD,
		  TCP(AF_INET, C4, VIP4, 43000, VPORT, ACK, .payload = 100), true, {}, TC_ACT_SHOT,
		  D([GAMMAD_TC_UPGRADE_WAIT] = 1) },
		{ "reply on a stale copy: untouched", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 43001, ACK), true, {}, 0, D([GAMMAD_TC_PASS] = 1) },
		{ "reply on a copy the old map still has: translated", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 43002, ACK), false,
		  TCP(AF_INET, VIP4, C4, VPORT, 43002, ACK), 0, D(RX) },
		{ "mid-flow packet on a copy of a flow the old map replaced: dropped", HOOK_POD,
		  TCP(AF_INET, C4, VIP4, 43005, VPORT, ACK, .payload = 100), true, {}, TC_ACT_SHOT,
		  D([GAMMAD_TC_UPGRADE_WAIT] = 1) },
		{ "syn of a new flow", HOOK_POD, TCP(AF_INET, C4, VIP4, 43003, VPORT, SYN), false,
		  TCP(AF_INET, C4, EP4, 43003, EPORT, SYN), 0, D(NF, XL) },
		{ "its rst", HOOK_POD, TCP(AF_INET, C4, VIP4, 43003, VPORT, RST | ACK), false,
		  TCP(AF_INET, C4, EP4, 43003, EPORT, RST | ACK), 0,
		  D(XL, [GAMMAD_TC_CLOSED] = 1) },
	};
	const struct tc_case after[] = {
		{ "slot emptied: an old-only flow is a miss again", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 43000, ACK, .payload = 100), true, {}, 0,
		  D([GAMMAD_TC_PASS] = 1) },
		{ "slot emptied: copies serve as they are", HOOK_POD,
		  TCP(AF_INET, EP4, C4, EPORT, 43004, ACK), false,
		  TCP(AF_INET, VIP4, C4, VPORT, 43004, ACK), 0, D(RX) },
	};
	int ct = dp_map_fd(e->fx.dp, GAMMAD_MAP_CT);
	int slot = bpf_map__fd(e->skel->maps.gammad_ctold_v1);
	struct gammad_ct_key k, old_keys[] = {
		ct_key4(EP4, EPORT, C4, 43000, GAMMAD_CT_REV),
		ct_key4(C4, 43000, VIP4, VPORT, GAMMAD_CT_FWD),
		ct_key4(EP4, EPORT, C4, 43002, GAMMAD_CT_REV),
		ct_key4(C4, 43003, VIP4, VPORT, GAMMAD_CT_FWD),
		ct_key4(EP4, EPORT, C4, 43003, GAMMAD_CT_REV),
		ct_key4(C4, 43002, VIP4, VPORT, GAMMAD_CT_FWD),
		/* 43005: the client reused its port, the old programs chose EP4 this time */
		ct_key4(C4, 43005, VIP4, VPORT, GAMMAD_CT_FWD),
		ct_key4(EP4, EPORT, C4, 43005, GAMMAD_CT_REV),
	};
	struct gammad_ct_key reused = ct_key4(C4, 43005, VIP4, VPORT, GAMMAD_CT_FWD);
	struct gammad_ct_val former = { .nat_port = htons(EPORT), .flags = GAMMAD_CT_F_MIGRATED };
	struct gammad_ct_val v = { .nat_port = htons(VPORT), .flags = GAMMAD_CT_F_MIGRATED };
	__u32 zero = 0;
	int old;

	inet_pton(AF_INET, VIP4, v.nat_addr);
	inet_pton(AF_INET, EPW70, former.nat_addr);
	old = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ctold_test", sizeof(struct gammad_ct_key),
			     sizeof(struct gammad_ct_val), 64, NULL);
	if (!ASSERT_GE(ct, 0, "ct map") || !ASSERT_GE(old, 0, "old map"))
		goto out;
	for (size_t i = 0; i < sizeof(old_keys) / sizeof(old_keys[0]); i++)
		if (!ASSERT_OK(bpf_map_update_elem(old, &old_keys[i], &v, BPF_ANY), "old entry"))
			goto out;
	/*
	 * the agent's copies: 43001's flow ended in the old map since, 43002's
	 * lives, 43005's (to the endpoint EPW70) was replaced on its tuple
	 */
	k = ct_key4(EP4, EPORT, C4, 43001, GAMMAD_CT_REV);
	if (!ASSERT_OK(bpf_map_update_elem(ct, &k, &v, BPF_ANY), "stale copy") ||
	    !ASSERT_OK(bpf_map_update_elem(ct, &old_keys[2], &v, BPF_ANY), "live copy") ||
	    !ASSERT_OK(bpf_map_update_elem(ct, &reused, &former, BPF_ANY), "replaced copy") ||
	    !ASSERT_OK(bpf_map_update_elem(slot, &zero, &old, BPF_ANY), "slot"))
		goto out;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		test__printf("  %s\n", rows[i].name);
		run_case(e, &rows[i]);
	}
	ASSERT_ERR(bpf_map_lookup_elem(ct, &k, &v), "the stale copy is gone");
	ASSERT_ERR(bpf_map_lookup_elem(ct, &reused, &v), "the replaced flow's copy is gone");
	ASSERT_ERR(bpf_map_lookup_elem(old, &old_keys[3], &v), "rst: old fwd entry gone");
	ASSERT_ERR(bpf_map_lookup_elem(old, &old_keys[4], &v), "rst: old rev entry gone");
	ASSERT_OK(bpf_map_lookup_elem(old, &old_keys[0], &v), "untouched old entry");
	if (!ASSERT_OK(bpf_map_delete_elem(slot, &zero), "empty the slot"))
		goto out;
	/* a copy the old map never had: outside an upgrade the flag means nothing */
	k = ct_key4(EP4, EPORT, C4, 43004, GAMMAD_CT_REV);
	v.flags = GAMMAD_CT_F_MIGRATED;
	if (!ASSERT_OK(bpf_map_update_elem(ct, &k, &v, BPF_ANY), "copy"))
		goto out;
	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
		test__printf("  %s\n", after[i].name);
		run_case(e, &after[i]);
	}
out:
	bpf_map_delete_elem(slot, &zero);
	if (old >= 0)
		close(old);
}

static int env_setup(struct tc_env *e)
{
	int err = fx_setup(&e->fx, 0, false);

	if (!ASSERT_OK(err, "fixture"))
		return err;
	e->skel = tc_bpf__open();
	if (!ASSERT_OK_PTR(e->skel, "open tc"))
		return -1;
	e->skel->rodata->tc_ct_udp_timeout = 1000000000ULL;
	e->skel->rodata->tc_ct_closing_timeout = 1000000000ULL;
	err = dp_adopt_maps(e->fx.dp, e->skel->obj);
	if (!ASSERT_OK(err, "share maps"))
		return err;
	err = tc_bpf__load(e->skel);
	if (!ASSERT_OK(err, "load tc"))
		return err;
	return ASSERT_OK(publish_all(e->fx.dp), "publish") ? 0 : -1;
}

void test_tc_nat(void)
{
	struct tc_env e = {};
	char name[128];

	if (env_setup(&e))
		goto cleanup;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "%02zu %s", i + 1, cases[i].name);
		if (test__start_subtest(name))
			run_case(&e, &cases[i]);
	}
	if (test__start_subtest("weighted_split"))
		test_weighted(&e);
	if (test__start_subtest("cost"))
		test_cost(&e);
	if (test__start_subtest("idle_timeout"))
		test_idle(&e);
	if (test__start_subtest("hairpin_address_set_at_load"))
		test_hairpin_addr(&e);
	if (test__start_subtest("upgrade_old_conntrack"))
		test_upgrade_old_ct(&e);
cleanup:
	tc_bpf__destroy(e.skel);
	fx_teardown(&e.fx);
}
