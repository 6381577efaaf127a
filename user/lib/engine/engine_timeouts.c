// SPDX-License-Identifier: Apache-2.0
/*
 * A rule's timeouts, for HTTP/1.1 requests (engine_req.c) and HTTP/2
 * streams (engine_h2.c) alike.
 */
#include "engine_int.h"

/*
 * A GEP-2257 duration ("1h", "1m30s", "500ms": 1 to 4 number-unit pairs of
 * up to 5 digits) in ms; 0 for "0s" (no timeout) and -1 when it is none.
 */
long long eng_duration_ms(const char *s)
{
	long long total = 0;
	int pairs = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		long long v = 0;
		int digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 6) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits || digits > 5 || ++pairs > 4)
			return -1;
		if (s[0] == 'm' && s[1] == 's') {
			s += 2;
		} else if (*s == 'h' || *s == 'm' || *s == 's') {
			v *= *s == 'h' ? 3600000 : *s == 'm' ? 60000 : 1000;
			s++;
		} else {
			return -1;
		}
		total += v;
	}
	return total;
}

/* When the rule's timeouts end this request (no retries: backendRequest is
 * the same window as request), 0 for never. */
uint64_t eng_rule_deadline(struct engine *e, const struct tr_entry *ent)
{
	long long t, best = 0;

	if (!ent || !ent->rule->rule)
		return 0;
	t = eng_duration_ms(ent->rule->rule->timeout_request);
	if (t > 0)
		best = t;
	t = eng_duration_ms(ent->rule->rule->timeout_backend);
	if (t > 0 && (!best || t < best))
		best = t;
	return best ? e->now + best : 0;
}
