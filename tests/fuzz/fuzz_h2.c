// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target over the engine's HTTP/2 side (user/lib/engine/
 * engine_h2.c): the input is what a client sends after the connection
 * preface, frames or not. One engine runs for the whole process with a
 * GRPCRoute whose backends refuse connections (so routed streams meet the
 * upstream failure path, over HTTP/2 and, appProtocol http, HTTP/1.1) and
 * one without endpoints; every
 * input is a new client connection (a socketpair) that is written, half
 * closed and read until the engine closes it. A connection the engine does
 * not close within HANG_MS is a finding (abort), as is anything the
 * sanitizers see.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "engine/engine.h"
#include "input/manifest.h"
#include "translate/translate.h"

#define HANG_MS 5000

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static const char manifests[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: g, namespace: app}\n"
	"spec: {clusterIP: 10.96.0.20, ports: [{name: p, port: 7070, appProtocol: grpc}]}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: app}\n"
	"spec: {clusterIP: 10.96.0.21, ports: [{name: p, port: 7070, appProtocol: grpc}]}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: hb, namespace: app}\n"
	"spec: {clusterIP: 10.96.0.23, ports: [{name: p, port: 7070, appProtocol: http}]}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: hb-1, namespace: app, labels: {kubernetes.io/service-name: hb}}\n"
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n"
	"ports:\n- {name: p, port: 1}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: none, namespace: app}\n"
	"spec: {clusterIP: 10.96.0.22, ports: [{name: p, port: 7070}]}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: b-1, namespace: app, labels: {kubernetes.io/service-name: b}}\n"
	"addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n  conditions: {ready: true}\n"
	"ports:\n- {name: p, port: 1}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	"metadata: {name: gr, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: g, port: 7070}]\n  rules:\n"
	"  - matches: [{method: {service: a.B, method: C}}]\n"
	"    backendRefs: [{name: b, port: 7070}]\n"
	"  - matches: [{method: {type: RegularExpression, service: \"x.*\"}, "
	"headers: [{name: k, value: v}]}]\n"
	"    backendRefs: [{name: none, port: 7070}]\n"
	"  - matches: [{method: {service: h.H}}]\n"
	"    backendRefs: [{name: hb, port: 7070}]\n";

static struct engine *eng;
static struct model model;
static struct diag dg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct engine_opts o = { .idle_timeout_ms = HANG_MS };
	struct tr_result *res = calloc(1, sizeof(*res));

	log_threshold = LOG_ERROR;
	model_init(&model);
	if (!res || manifest_load_buf(&model, "fuzz.yaml", manifests, strlen(manifests), &dg) ||
	    dg.nr_errors || translate(&model, &dg, res))
		abort();
	eng = engine_new(&o);
	if (!eng || engine_set_tables(eng, res) || engine_start(eng))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct engine_origin o = { .vport = 7070, .client_ns = "app", .client_pod = "app/fuzz" };
	char buf[16384];
	size_t off = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	ip_addr_parse("10.96.0.20", &o.vip);
	if (engine_adopt(eng, sv[0], &o))
		abort();
	/* The preface, then the input; what comes back is read as it comes. */
	for (int phase = 0; phase < 2; phase++) {
		const char *p = phase ? (const char *)data : preface;
		size_t n = phase ? len : sizeof(preface) - 1;

		for (off = 0; off < n;) {
			struct pollfd pf[2] = { { .fd = sv[1], .events = POLLOUT | POLLIN } };
			ssize_t w;

			if (poll(pf, 1, HANG_MS) <= 0)
				abort();
			if (pf[0].revents & POLLIN && read(sv[1], buf, sizeof(buf)) <= 0)
				goto closed;	/* closed early: a connection error, fine */
			if (!(pf[0].revents & POLLOUT))
				continue;
			w = send(sv[1], p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno != EAGAIN)
				goto closed;
			if (w > 0)
				off += w;
		}
	}
	shutdown(sv[1], SHUT_WR);
	for (;;) {
		struct pollfd pf = { .fd = sv[1], .events = POLLIN };

		if (poll(&pf, 1, HANG_MS) <= 0) {
			fprintf(stderr, "the engine kept a half-closed HTTP/2 connection\n");
			abort();
		}
		if (read(sv[1], buf, sizeof(buf)) <= 0)
			break;
	}
closed:
	close(sv[1]);
	return 0;
}
