// SPDX-License-Identifier: Apache-2.0
/* Generated HTTPRoutes for the kernel HTTP tests: see khttp_gen.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "khttp_gen.h"

uint32_t khg_rnd(uint64_t *r)
{
	/* xorshift64*: reproducible from the seed */
	*r ^= *r >> 12;
	*r ^= *r << 25;
	*r ^= *r >> 27;
	return (uint32_t)((*r * 2685821657736338717ULL) >> 32);
}

uint32_t khg_pick(uint64_t *r, uint32_t n)
{
	return n ? khg_rnd(r) % n : 0;
}

static void gen_match(uint64_t *r, FILE *y)
{
	static const char *const pv[] = {
		"/", "/a", "/a/", "/ab", "/a/b", "/v2", "/v2/", "/foo", "/exact", "/", "",
	};
	static const char *const hv[][2] = {
		{ "X-A", "1" }, { "x-a", "2" }, { "X-B", "two" }, { "version", "one" },
		{ "Host", "a" }, { "X-Empty", "" },
	};
	static const char *const qv[][2] = { { "q", "1" }, { "r", "" }, { "q", "2" }, { "animal", "whale" } };
	unsigned nh = khg_pick(r, 3), nq = khg_pick(r, 3) ? 0 : 1 + khg_pick(r, 2);

	if (!khg_pick(r, 60)) {
		/* beyond the kernel's limits: the table is the engine's */
		fprintf(y, "    - path: {type: PathPrefix, value: \"/");
		for (int i = 0; i < 30; i++)
			fprintf(y, "long/path/");
		fprintf(y, "\"}\n");
		return;
	}
	if (!khg_pick(r, 60)) {
		fprintf(y, "    - headers:\n");
		for (int i = 0; i < 9; i++)
			fprintf(y, "      - {name: X-H%d, value: \"%d\"}\n", i, i);
		return;
	}
	fprintf(y, "    - path: {type: %s, value: \"%s\"}\n", khg_pick(r, 2) ? "PathPrefix" : "Exact",
		pv[khg_pick(r, sizeof(pv) / sizeof(pv[0]) - 1)]);
	if (!khg_pick(r, 3))
		fprintf(y, "      method: %s\n", khg_pick(r, 2) ? "GET" : "POST");
	if (nh) {
		fprintf(y, "      headers:\n");
		for (unsigned i = 0; i < nh; i++) {
			unsigned k = khg_pick(r, sizeof(hv) / sizeof(hv[0]));

			fprintf(y, "      - {name: \"%s\", value: \"%s\"}\n", hv[k][0], hv[k][1]);
		}
	}
	if (nq) {
		fprintf(y, "      queryParams:\n");
		for (unsigned i = 0; i < nq; i++) {
			unsigned k = khg_pick(r, sizeof(qv) / sizeof(qv[0]));

			fprintf(y, "      - {name: \"%s\", value: \"%s\"}\n", qv[k][0], qv[k][1]);
		}
	}
}

/* A RequestHeaderModifier, or a ResponseHeaderModifier (resp) of the same shape. */
static void gen_header_mod(uint64_t *r, FILE *y, const char *indent, bool resp)
{
	static const char *const names[] = { "X-A", "x-b", "X-New", "Host", "X-Remove", "version" };

	fprintf(y, "%s- type: %sHeaderModifier\n%s  %sHeaderModifier:\n", indent,
		resp ? "Response" : "Request", indent, resp ? "response" : "request");
	if (khg_pick(r, 2))
		fprintf(y, "%s    set: [{name: \"%s\", value: \"s%u\"}]\n", indent,
			names[khg_pick(r, 6)], khg_pick(r, 3));
	if (khg_pick(r, 2))
		fprintf(y, "%s    add: [{name: \"%s\", value: \"a%u\"}, {name: X-Add, value: b}]\n",
			indent, names[khg_pick(r, 6)], khg_pick(r, 3));
	if (khg_pick(r, 2))
		fprintf(y, "%s    remove: [\"%s\"]\n", indent, names[khg_pick(r, 6) == 3 ? 4 : khg_pick(r, 6)]);
	else if (!khg_pick(r, 40))
		fprintf(y, "%s    remove: [R0, R1, R2, R3, R4, R5, R6, R7, R8]\n", indent);
}

static void gen_path_mod(uint64_t *r, FILE *y, const char *value)
{
	if (khg_pick(r, 2))
		fprintf(y, "          path: {type: ReplaceFullPath, replaceFullPath: \"%s\"}\n", value);
	else
		fprintf(y, "          path: {type: ReplacePrefixMatch, replacePrefixMatch: \"%s\"}\n",
			value);
}

static void gen_filters(uint64_t *r, FILE *y, bool *redirect)
{
	static const char *const pvals[] = { "/", "/new", "/new/", "/x/y" };
	unsigned k = khg_pick(r, 6);

	*redirect = false;
	if (k >= 3)
		return;
	fprintf(y, "      filters:\n");
	if (k == 0 || khg_pick(r, 2))
		gen_header_mod(r, y, "      ", false);
	if (!khg_pick(r, 3))
		gen_header_mod(r, y, "      ", true);
	if (k == 1) {
		fprintf(y, "      - type: URLRewrite\n        urlRewrite:\n");
		if (khg_pick(r, 2))
			fprintf(y, "          hostname: rewritten.example\n");
		if (khg_pick(r, 3))
			gen_path_mod(r, y, pvals[khg_pick(r, 4)]);
	} else if (k == 2) {
		*redirect = true;
		fprintf(y, "      - type: RequestRedirect\n        requestRedirect:\n");
		fprintf(y, "          statusCode: %u\n", khg_pick(r, 2) ? 301 : 302);
		if (khg_pick(r, 2))
			fprintf(y, "          scheme: %s\n", khg_pick(r, 2) ? "https" : "http");
		if (khg_pick(r, 2))
			fprintf(y, "          hostname: moved.example\n");
		if (khg_pick(r, 3) == 0)
			fprintf(y, "          port: %u\n", khg_pick(r, 2) ? 8443 : 80);
		if (khg_pick(r, 2))
			gen_path_mod(r, y, pvals[khg_pick(r, 4)]);
	}
}

char *khg_routes(uint64_t *r)
{
	static const char *const backends[] = { "b1", "b2", "b3", "bempty", "missing" };
	char *yaml = NULL;
	size_t len = 0;
	FILE *y = open_memstream(&yaml, &len);
	unsigned nroutes = 1 + khg_pick(r, 2);

	if (!y)
		return NULL;
	for (unsigned ro = 0; ro < nroutes; ro++) {
		unsigned nrules = 1 + khg_pick(r, 3);

		/* now and then a consumer route: a class of its own for namespace client */
		fprintf(y, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
			"metadata: {name: r%u, namespace: %s}\nspec:\n"
			"  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app, port: 80}]\n"
			"  rules:\n", ro, khg_pick(r, 4) ? "app" : "client");
		for (unsigned ru = 0; ru < nrules; ru++) {
			unsigned nm = khg_pick(r, 3), nb = khg_pick(r, 4);
			bool redirect;

			fprintf(y, "  - matches:\n");
			if (!nm)
				fprintf(y, "    - {}\n");
			for (unsigned m = 0; m < nm; m++)
				gen_match(r, y);
			gen_filters(r, y, &redirect);
			if (redirect)
				continue;
			if (nb)
				fprintf(y, "    backendRefs:\n");
			for (unsigned b = 0; b < nb; b++) {
				fprintf(y, "    - name: %s\n      namespace: app\n      port: 80\n"
					"      weight: %u\n",
					backends[khg_pick(r, 5)], khg_pick(r, 4) ? 1 + khg_pick(r, 5) : 0);
				if (!khg_pick(r, 4)) {
					fprintf(y, "      filters:\n");
					gen_header_mod(r, y, "      ", !khg_pick(r, 3));
				}
			}
		}
	}
	fclose(y);
	return yaml;
}

void khg_put(struct khg_text *t, const char *s, size_t n)
{
	if (t->len + n < sizeof(t->buf)) {
		memcpy(t->buf + t->len, s, n);
		t->len += n;
	}
}

void khg_puts(struct khg_text *t, const char *s)
{
	khg_put(t, s, strlen(s));
}
