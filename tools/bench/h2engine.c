// SPDX-License-Identifier: Apache-2.0
/*
 * bench h2engine --listen PORT --backend IP:PORT --backend IP:PORT [--threads N]
 *
 * The HTTP engine (user/lib/engine) in this process, as the agent runs it
 * for a pod, without the kernel steering: it listens on 127.0.0.1:PORT and
 * hands every connection to the engine as a client of namespace bench that
 * dialed the Service g (10.96.0.20:7070). A GRPCRoute on g splits every call
 * 50/50 over two Services with one endpoint each (the --backend addresses,
 * appProtocol grpc); --threads: the engine's event loops (default one per
 * CPU, as gammad run; connections are handed to them in turn). On SIGTERM or SIGINT it prints `calls b0=N b1=M` (the
 * per-call split it made) and exits. tools/bench/grpc.sh drives it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "base/log.h"
#include "engine/engine.h"
#include "input/manifest.h"
#include "translate/translate.h"

static volatile sig_atomic_t stop;
static long calls[2];

static void on_signal(int sig)
{
	stop = 1;
}

static void on_request(void *ctx, const struct engine_request_log *l)
{
	if (l->backend && !strcmp(l->backend->name, "b0"))
		__atomic_add_fetch(&calls[0], 1, __ATOMIC_RELAXED);
	else if (l->backend && !strcmp(l->backend->name, "b1"))
		__atomic_add_fetch(&calls[1], 1, __ATOMIC_RELAXED);
}

#define SVC(n, ip) "---\napiVersion: v1\nkind: Service\nmetadata: {name: " n ", namespace: bench}\n" \
	"spec: {clusterIP: " ip ", ports: [{name: grpc, port: 7070, appProtocol: grpc}]}\n"
#define EPS(n) "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata: {name: " n "-1, namespace: bench, labels: {kubernetes.io/service-name: " n "}}\n" \
	"addressType: IPv4\nendpoints:\n- addresses: [\"%s\"]\n  conditions: {ready: true}\n" \
	"ports:\n- {name: grpc, port: %s}\n"

static const char manifests[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n"
	SVC("g", "10.96.0.20") SVC("b0", "10.96.0.21") SVC("b1", "10.96.0.22") EPS("b0") EPS("b1")
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	"metadata: {name: split, namespace: bench}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: g, port: 7070}]\n"
	"  rules:\n  - backendRefs: [{name: b0, port: 7070}, {name: b1, port: 7070}]\n";

int cmd_h2engine(int argc, char **argv)
{
	struct engine_opts o = { .on_request = on_request };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct engine_origin origin = { .vport = 7070, .client_ns = "bench",
					.client_pod = "bench/client" };
	char ip[2][64], port[2][8], *yaml = NULL;
	struct tr_result *res;
	struct engine *e;
	struct model m;
	struct diag dg = { 0 };
	int lfd, nb = 0, one = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--listen")) {
			sin.sin_port = htons(atoi(argv[i + 1]));
		} else if (!strcmp(argv[i], "--threads")) {
			o.threads = (unsigned int)atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--backend") && nb < 2) {
			const char *colon = strrchr(argv[i + 1], ':');

			if (!colon)
				break;
			snprintf(ip[nb], sizeof(ip[nb]), "%.*s", (int)(colon - argv[i + 1]), argv[i + 1]);
			snprintf(port[nb], sizeof(port[nb]), "%s", colon + 1);
			nb++;
		}
	}
	if (nb != 2 || !sin.sin_port) {
		fprintf(stderr, "usage: bench h2engine --listen PORT --backend IP:PORT --backend IP:PORT\n");
		return 2;
	}
	log_threshold = LOG_WARN;
	model_init(&m);
	res = calloc(1, sizeof(*res));
	if (!res || asprintf(&yaml, manifests, ip[0], port[0], ip[1], port[1]) < 0 ||
	    manifest_load_buf(&m, "bench.yaml", yaml, strlen(yaml), &dg) || dg.nr_errors ||
	    translate(&m, &dg, res)) {
		fprintf(stderr, "bench h2engine: the manifests do not translate\n");
		return 1;
	}
	free(yaml);
	ip_addr_parse("10.96.0.20", &origin.vip);
	e = engine_new(&o);
	if (!e || engine_set_tables(e, res) || engine_start(e)) {
		fprintf(stderr, "bench h2engine: the engine does not start\n");
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1024)) {
		fprintf(stderr, "bench h2engine: listen: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			engine_adopt(e, fd, &origin);
	}
	close(lfd);
	engine_stop(e);
	engine_free(e);
	model_free(&m);
	diag_free(&dg);
	printf("calls b0=%ld b1=%ld\n", calls[0], calls[1]);
	return 0;
}
