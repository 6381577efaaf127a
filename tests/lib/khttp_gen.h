/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generated HTTPRoutes over the translate fixture's base cluster (Service
 * app/a port 80, backends b1..b3, bempty, missing): every feature the
 * kernel tables encode (Exact/PathPrefix, methods, header and query
 * matches, header modifiers, rewrites, redirects, weights, consumer
 * routes) and now and then beyond its limits. Shared by khttp_diff (the
 * matcher) and apply_khttp (the agent's tables); khg_text holds the
 * messages khttp_diff and khttp_resp generate.
 */
#ifndef GAMMAD_TEST_KHTTP_GEN_H
#define GAMMAD_TEST_KHTTP_GEN_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64* over *rng (nonzero): the next draw, and one below n (0: 0). */
uint32_t khg_rnd(uint64_t *rng);
uint32_t khg_pick(uint64_t *rng, uint32_t n);
/* The YAML of one to two HTTPRoutes, malloc'd (NULL: no memory). */
char *khg_routes(uint64_t *rng);

/* A generated message (request head or response stream); what overflows buf is dropped. */
struct khg_text {
	char buf[16384];
	size_t len;
};

void khg_put(struct khg_text *t, const char *s, size_t n);
void khg_puts(struct khg_text *t, const char *s);

#endif
