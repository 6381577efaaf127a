/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by http1*.c: character classes and field semantics. */
#ifndef GAMMAD_HTTP1_INT_H
#define GAMMAD_HTTP1_INT_H

#include <stdbool.h>
#include <string.h>

#include "http1.h"

struct h1_cursor {
	const char *p, *end;
};

static inline bool h1_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* tchar of RFC 9110 5.6.2: what a method, a header name or a coding is made of. */
static inline bool h1_is_tchar(char c)
{
	unsigned char u = (unsigned char)c;

	if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || h1_is_digit(c))
		return true;
	return u && strchr("!#$%&'*+-.^_`|~", u);
}

/* What may not appear in a request-target: controls, space, DEL. */
static inline bool h1_is_ctl_or_space(char c)
{
	unsigned char u = (unsigned char)c;

	return u <= 0x20 || u == 0x7f;
}

/* field-vchar, SP or HTAB (obs-text included): a header value or a reason. */
static inline bool h1_is_field_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u == '\t' || (u >= 0x20 && u != 0x7f);
}

/* The target's form (RFC 9112 3.2) and h->path; 0 or -1. */
int h1_parse_target(struct h1_head *h);

/* Content-Length, Transfer-Encoding, Connection, Host, Expect, Upgrade. */
int h1_request_semantics(struct h1_head *h);
int h1_response_semantics(struct h1_head *h, const struct h1_str *req_method);

#endif
