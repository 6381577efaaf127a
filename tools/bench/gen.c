// SPDX-License-Identifier: Apache-2.0
/*
 * Generators for the benchmark, to stdout.
 *
 * bench gen fill --services N [--eps E]
 *     N filler Services (namespace bench-fill, ClusterIPs 10.251.64.0+,
 *     E endpoints each in 10.250.128.0+: addresses no pod has) as YAML,
 *     with their EndpointSlices.
 * bench gen ipt --services N [--eps E] --svc NAME,VIP,PORT,EP:PORT+EP:PORT...
 *     The nat table kube-proxy's iptables mode would write for the same
 *     Services (fillers + every --svc, the real ones in the middle of the
 *     services chain, so a lookup walks half of it as on average), as
 *     iptables-restore input; chains GBENCH-* instead of KUBE-*.
 * bench gen cp --services N --routes R --endpoints E
 *     The control-plane cluster of `gammad translate --bench` as files:
 *     Services over 100 namespaces, one EndpointSlice each, HTTPRoutes with
 *     a path-matched weighted split and an exact match.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/synth_cluster.h"
#include "bench.h"


static void fill_vip(long i, char *out, size_t len)
{
	snprintf(out, len, "10.251.%ld.%ld", 64 + i / 256, i % 256);
}

static void fill_ep(long a, char *out, size_t len)
{
	snprintf(out, len, "10.250.%ld.%ld", 128 + a / 256, a % 256);
}

static void gen_fill(long n, long eps)
{
	char ip[32];

	printf("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bench-fill}\n");
	for (long i = 0; i < n; i++) {
		fill_vip(i, ip, sizeof(ip));
		printf("---\napiVersion: v1\nkind: Service\nmetadata: {name: fill-%ld, namespace: "
		       "bench-fill}\nspec:\n  clusterIP: %s\n  selector: {app: fill-%ld}\n"
		       "  ports: [{name: http, port: 8080, targetPort: 8080}]\n", i, ip, i);
		printf("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: fill-%ld-1, namespace: bench-fill, labels: "
		       "{kubernetes.io/service-name: fill-%ld}}\naddressType: IPv4\n"
		       "ports: [{name: http, port: 8080}]\nendpoints:\n", i, i);
		for (long e = 0; e < eps; e++) {
			fill_ep(i * eps + e, ip, sizeof(ip));
			printf("- {addresses: [%s], conditions: {ready: true}, nodeName: node-b}\n", ip);
		}
	}
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void chain(char *out, size_t len, const char *kind, const char *key)
{
	snprintf(out, len, "GBENCH-%s-%016llX", kind, (unsigned long long)fnv(key));
}

/* One Service the way kube-proxy writes it; eps "ip:port+ip:port". */
static void ipt_service(FILE *rules, FILE *chains, const char *name, const char *vip,
			const char *port, const char *eps)
{
	char svc[64], sep[64], key[256], *copy = strdup(eps), *save = NULL;
	const char *ep[1024];
	int n = 0;

	for (char *p = strtok_r(copy, "+", &save); p && n < 1024; p = strtok_r(NULL, "+", &save))
		ep[n++] = p;
	snprintf(key, sizeof(key), "%s:%s", name, port);
	chain(svc, sizeof(svc), "SVC", key);
	fprintf(chains, ":%s - [0:0]\n", svc);
	fprintf(rules, "-A GBENCH-SERVICES -d %s/32 -p tcp -m comment --comment \"%s:http cluster IP\" "
		"-m tcp --dport %s -j %s\n", vip, name, port, svc);
	fprintf(rules, "-A %s ! -s 10.250.0.0/16 -d %s/32 -p tcp -m comment --comment \"%s:http "
		"cluster IP\" -m tcp --dport %s -j GBENCH-MARK-MASQ\n", svc, vip, name, port);
	for (int i = 0; i < n; i++) {
		char ip[64];

		snprintf(key, sizeof(key), "%s:%s:%s", name, port, ep[i]);
		chain(sep, sizeof(sep), "SEP", key);
		fprintf(chains, ":%s - [0:0]\n", sep);
		if (i < n - 1)
			fprintf(rules, "-A %s -m comment --comment \"%s:http -> %s\" -m statistic "
				"--mode random --probability %.11f -j %s\n", svc, name, ep[i],
				1.0 / (n - i), sep);
		else
			fprintf(rules, "-A %s -m comment --comment \"%s:http -> %s\" -j %s\n", svc,
				name, ep[i], sep);
		snprintf(ip, sizeof(ip), "%s", ep[i]);
		ip[strcspn(ip, ":")] = 0;
		fprintf(rules, "-A %s -s %s/32 -m comment --comment \"%s:http\" -j GBENCH-MARK-MASQ\n",
			sep, ip, name);
		fprintf(rules, "-A %s -p tcp -m comment --comment \"%s:http\" -m tcp -j DNAT "
			"--to-destination %s\n", sep, name, ep[i]);
	}
	free(copy);
}

static int gen_ipt(long n, long eps, char **svcs, int nr_svcs)
{
	char *rbuf = NULL, *cbuf = NULL;
	size_t rlen, clen;
	FILE *rules = open_memstream(&rbuf, &rlen), *chains = open_memstream(&cbuf, &clen);

	for (long i = 0; i <= n; i++) {
		char name[64], vip[32], epl[4096] = "";

		if (i == n / 2) {
			for (int s = 0; s < nr_svcs; s++) {
				char *f[4], *copy = strdup(svcs[s]), *save = NULL;
				int k = 0;

				for (char *p = strtok_r(copy, ",", &save); p && k < 4;
				     p = strtok_r(NULL, ",", &save))
					f[k++] = p;
				if (k != 4) {
					fprintf(stderr, "bench gen ipt: --svc NAME,VIP,PORT,EP:PORT+...\n");
					return 2;
				}
				ipt_service(rules, chains, f[0], f[1], f[2], f[3]);
				free(copy);
			}
		}
		if (i == n)
			break;
		snprintf(name, sizeof(name), "bench-fill/fill-%ld", i);
		fill_vip(i, vip, sizeof(vip));
		for (long e = 0; e < eps; e++) {
			char ip[32];

			fill_ep(i * eps + e, ip, sizeof(ip));
			snprintf(epl + strlen(epl), sizeof(epl) - strlen(epl), "%s%s:8080",
				 e ? "+" : "", ip);
		}
		ipt_service(rules, chains, name, vip, "8080", epl);
	}
	fclose(rules);
	fclose(chains);
	printf("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
	       ":POSTROUTING ACCEPT [0:0]\n:GBENCH-SERVICES - [0:0]\n:GBENCH-NODEPORTS - [0:0]\n"
	       ":GBENCH-MARK-MASQ - [0:0]\n:GBENCH-POSTROUTING - [0:0]\n%s", cbuf);
	printf("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j GBENCH-SERVICES\n"
	       "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j GBENCH-SERVICES\n"
	       "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j GBENCH-POSTROUTING\n"
	       "-A GBENCH-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
	       "-A GBENCH-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
	       "-A GBENCH-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
	       "-A GBENCH-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
	       "-j MASQUERADE --random-fully\n%s", rbuf);
	printf("-A GBENCH-SERVICES -m comment --comment \"kubernetes service nodeports\" "
	       "-m addrtype --dst-type LOCAL -j GBENCH-NODEPORTS\nCOMMIT\n");
	free(rbuf);
	free(cbuf);
	return 0;
}

int cmd_gen(int argc, char **argv)
{
	long services = 0, routes = 0, endpoints = 0, eps = 2;
	char *svcs[64];
	int nr_svcs = 0;

	if (argc < 2)
		goto usage;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--services"))
			services = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--routes"))
			routes = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--endpoints"))
			endpoints = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--eps"))
			eps = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--svc") && nr_svcs < 64)
			svcs[nr_svcs++] = argv[i + 1];
		else
			goto usage;
	}
	if (!strcmp(argv[1], "fill"))
		gen_fill(services, eps);
	else if (!strcmp(argv[1], "ipt"))
		return gen_ipt(services, eps, svcs, nr_svcs);
	else if (!strcmp(argv[1], "cp") && services > 0)
		synth_cluster_write(stdout, &(struct synth_cluster){ .services = services,
				    .routes = routes, .endpoints = endpoints, .namespaces = true });
	else
		goto usage;
	return 0;
usage:
	fprintf(stderr, "usage: bench gen fill --services N [--eps E]\n"
			"       bench gen ipt --services N [--eps E] --svc NAME,VIP,PORT,EP:PORT+...\n"
			"       bench gen cp --services N --routes R --endpoints E\n");
	return 2;
}
