// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "json_out.h"
#include "utf8.h"

static int append_u_escape(struct strbuf *sb, unsigned int cp)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = { '\\', 'u', hex[(cp >> 12) & 0xf], hex[(cp >> 8) & 0xf],
			hex[(cp >> 4) & 0xf], hex[cp & 0xf] };

	return strbuf_append(sb, esc, sizeof(esc));
}

/* The short escape for @c, or 0 when it has none. */
static char short_escape(unsigned char c)
{
	switch (c) {
	case '"': return '"';
	case '\\': return '\\';
	case '\b': return 'b';
	case '\f': return 'f';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\t': return 't';
	default: return 0;
	}
}

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' ||
	       c == '&' || c >= 0x80;
}

int json_append_string(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;
	int err;

	err = strbuf_putc(sb, '"');
	while (!err && i < len) {
		/* Copy the longest run of bytes that need no escaping at once. */
		for (run = i; run < len && !needs_escape(p[run]); run++)
			;
		if (run > i) {
			err = strbuf_append(sb, p + i, run - i);
			i = run;
			continue;
		}
		if (p[i] < 0x80) {
			char e = short_escape(p[i]);

			if (e) {
				char esc[2] = { '\\', e };

				err = strbuf_append(sb, esc, 2);
			} else {
				err = append_u_escape(sb, p[i]);
			}
			i++;
			continue;
		}
		unsigned int cp;
		size_t n = utf8_decode(p + i, len - i, &cp);

		if (!n) {
			err = append_u_escape(sb, 0xfffd);
			i++;
		} else if (cp == 0x2028 || cp == 0x2029) {
			err = append_u_escape(sb, cp);
			i += n;
		} else {
			err = strbuf_append(sb, p + i, n);
			i += n;
		}
	}
	return err ?: strbuf_putc(sb, '"');
}

int json_append_cstr(struct strbuf *sb, const char *s)
{
	return json_append_string(sb, s, strlen(s));
}
