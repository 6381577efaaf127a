// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target over the kernel's HTTP parser and matcher
 * (bpf/lib/khttp.h, built for userspace by tests/lib/khttp_user.c). Input:
 * one byte choosing a table, eight bytes of draws, then the head. It aborts
 * when the kernel's verdict disagrees with the engine's parser and
 * evaluator (khu_check), or when a cut of a head the kernel serves does not
 * make it wait. The tables cover every feature the kernel encodes, plus one
 * it leaves to the engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/khttp_user.h"
#include "lib/translate_fixture.h"

static const char routes[] =
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: main, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 80}]\n  rules:\n"
	"  - matches: [{path: {type: Exact, value: /exact}}, {path: {type: PathPrefix, value: /v2/}, method: POST}]\n"
	"    backendRefs: [{name: b1, port: 80, weight: 1}, {name: b2, port: 80, weight: 3}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /h}, headers: [{name: X-A, value: \"1\"}, {name: version, value: two}]}]\n"
	"    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
	"        set: [{name: X-Set, value: s}]\n        add: [{name: X-Add, value: a}]\n        remove: [X-Remove]\n"
	"    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
	"        set: [{name: X-A, value: r}]\n        remove: [version, X-Remove]\n"
	"    backendRefs:\n    - name: b3\n      port: 80\n      filters:\n"
	"      - type: RequestHeaderModifier\n        requestHeaderModifier: {add: [{name: X-Backend, value: b3}]}\n"
	"  - matches: [{path: {type: PathPrefix, value: /q}, queryParams: [{name: q, value: \"1\"}]}]\n"
	"    backendRefs: [{name: bempty, port: 80}, {name: missing, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /rw}}]\n"
	"    filters: [{type: URLRewrite, urlRewrite: {hostname: new.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new/}}}]\n"
	"    backendRefs: [{name: b1, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /full}}]\n"
	"    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /}}}]\n"
	"    backendRefs: [{name: b2, port: 80}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /moved}}]\n"
	"    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n"
	"  - matches: [{path: {type: Exact, value: /away}}]\n"
	"    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: x.example, port: 8443}}]\n"
	"  - matches: [{path: {type: PathPrefix, value: /none}}]\n"
	"    backendRefs: [{name: b1, port: 80, weight: 0}]\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: consumer, namespace: client}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app, port: 80}]\n  rules:\n"
	"  - backendRefs: [{name: o, namespace: other, port: 80}]\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: resp, namespace: app}\nspec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: a, port: 81}]\n  rules:\n"
	"  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-R, value: r}]}},\n"
	"              {type: RequestRedirect, requestRedirect: {statusCode: 302}}]\n";

struct table {
	const struct tr_class *cls;
	uint16_t port;
	struct kh_image img;
};

static struct tfx fx;
static struct table tables[3];

static void setup(void)
{
	static const struct { const char *client; uint16_t port; } want[3] = {
		{ NULL, 80 }, { "client", 80 }, { NULL, 81 },
	};

	if (tfx_setup(&fx, routes)) {
		fprintf(stderr, "fuzz_khttp: the fixed routes do not translate\n");
		abort();
	}
	for (int i = 0; i < 3; i++) {
		tables[i].port = want[i].port;
		tables[i].cls = tfx_class(&fx, "app", "a", want[i].port, want[i].client);
		if (!tables[i].cls || kh_encode(tables[i].cls, want[i].port, &tables[i].img)) {
			fprintf(stderr, "fuzz_khttp: table %d missing\n", i);
			abort();
		}
	}
	if (tables[0].img.tab.engine_reason || tables[1].img.tab.engine_reason ||
	    !tables[2].img.tab.engine_reason) {
		fprintf(stderr, "fuzz_khttp: tables 0, 1 are the kernel's, 2 the engine's: %s\n",
			tables[0].img.why);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gammad_kh_scratch s, cut;
	static struct khu_stats st;
	static bool ready;
	struct table *t;
	uint32_t d0, d1;
	char why[256];

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 9)
		return 0;
	t = &tables[data[0] % 3];
	memcpy(&d0, data + 1, 4);
	memcpy(&d1, data + 5, 4);
	khu_use(&t->img);
	khu_scratch(&s, (const char *)data + 9, size - 9, d0, d1);
	khu_request(&s);
	if (khu_check(t->cls, &t->img, &s, &st, why, sizeof(why))) {
		fprintf(stderr, "kernel and engine disagree: %s\n", why);
		abort();
	}
	if ((s.v.action == GAMMAD_KH_FORWARD || s.v.action == GAMMAD_KH_LOCAL) && s.req.head_len) {
		size_t n = d0 % s.req.head_len;

		khu_scratch(&cut, (const char *)data + 9, n, d0, d1);
		khu_request(&cut);
		if (cut.v.action != GAMMAD_KH_MORE) {
			fprintf(stderr, "a head cut at %zu of %u does not wait\n", n, s.req.head_len);
			abort();
		}
	}
	return 0;
}
