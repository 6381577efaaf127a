// SPDX-License-Identifier: Apache-2.0
/*
 * The request-target's form (RFC 9112 3.2): origin ("/p?q"), absolute
 * ("http://svc:80/p?q", which a proxy-minded client sends), authority
 * ("svc:443", CONNECT only) or asterisk ("*"). The bytes of a path and query
 * are taken as sent (clients put '|' and '{' in queries, and nothing of
 * routing depends on them); an authority is held to RFC 3986.
 */
#include <ctype.h>
#include <strings.h>

#include "http1.h"
#include "http1_int.h"

/* unreserved, sub-delims, ':', '@', '[', ']' (IP literals) and '%' */
static bool is_authority_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u < 0x80 && (isalnum(u) || strchr("-._~!$&'()*+,;=:@[]%", u));
}

static bool is_authority(const char *p, const char *end)
{
	if (p == end)
		return false;
	for (; p < end; p++)
		if (!is_authority_char(*p))
			return false;
	return true;
}

/*
 * "http" or "https" "://" authority [ path-abempty [ "?" query ] ]: where
 * the path starts, or NULL. Other schemes mean nothing to a mesh.
 */
static const char *absolute_form_path(const char *p, const char *end)
{
	const char *auth;

	if (end - p >= 7 && !strncasecmp(p, "http://", 7))
		p += 7;
	else if (end - p >= 8 && !strncasecmp(p, "https://", 8))
		p += 8;
	else
		return NULL;
	auth = p;
	while (p < end && *p != '/' && *p != '?')
		p++;
	return is_authority(auth, p) ? p : NULL;
}

int h1_parse_target(struct h1_head *h)
{
	const char *p = h->target.p, *end = p + h->target.len, *path;

	if (*p == '/' || h1_str_eq(&h->target, "*")) {
		h->path = h->target;
		return 0;
	}
	if (h1_str_eq(&h->method, "CONNECT")) {
		h->path = (struct h1_str){ end, 0 };
		return is_authority(p, end) ? 0 : -1;
	}
	path = absolute_form_path(p, end);
	if (!path)
		return -1;
	/* an empty path is "/" (RFC 9112 3.2.2); the engine writes it so */
	h->path = (struct h1_str){ path, (size_t)(end - path) };
	return 0;
}
