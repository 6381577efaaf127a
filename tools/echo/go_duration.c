// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "go_duration.h"

struct unit {
	const char *name;
	uint64_t ns;
};

/* Longest names first so "ms" is not read as "m". */
static const struct unit units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
	{ "ms", 1000000 }, { "s", 1000000000ULL }, { "m", 60000000000ULL },
	{ "h", 3600000000000ULL },
};

static const struct unit *match_unit(const char *p, size_t len, size_t *n)
{
	const struct unit *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t ul = strlen(units[i].name);

		if (ul <= len && ul > best_len && !memcmp(p, units[i].name, ul)) {
			best = &units[i];
			best_len = ul;
		}
	}
	*n = best_len;
	return best;
}

int go_parse_duration(const char *s, size_t len, int64_t *out)
{
	const uint64_t limit = (uint64_t)INT64_MAX + 1;
	uint64_t total = 0;
	size_t i = 0;
	int neg = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (len - i == 1 && s[i] == '0') {
		*out = 0;	/* the one unit-less value Go accepts */
		return 0;
	}
	if (i == len)
		return -EINVAL;
	while (i < len) {
		uint64_t whole = 0, frac = 0, scale = 1, unit_ns, v;
		size_t start = i, ulen;
		int digits = 0, overflow = 0;
		const struct unit *u;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (whole > (UINT64_MAX - 9) / 10)
				overflow = 1;
			else
				whole = whole * 10 + (s[i] - '0');
			i++, digits++;
		}
		if (i < len && s[i] == '.') {
			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				/* Digits past 1e18 precision only round: drop them. */
				if (scale < 1000000000000000000ULL) {
					frac = frac * 10 + (s[i] - '0');
					scale *= 10;
				}
				i++, digits++;
			}
		}
		if (!digits || overflow || i == start)
			return -EINVAL;
		u = match_unit(s + i, len - i, &ulen);
		if (!u)
			return -EINVAL;	/* a unit is required after every number */
		i += ulen;
		unit_ns = u->ns;
		if (whole > limit / unit_ns)
			return -EINVAL;
		v = whole * unit_ns;
		/* frac/scale of a unit, computed without overflowing */
		v += (uint64_t)((long double)frac * unit_ns / scale);
		if (v > limit || total > limit - v)
			return -EINVAL;
		total += v;
	}
	if (!neg && total > (uint64_t)INT64_MAX)
		return -EINVAL;
	*out = neg ? (int64_t)(0 - total) : (int64_t)total;
	return 0;
}
