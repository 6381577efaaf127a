/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small JSON reader for the client: enough to take pod, host and headers
 * out of an echo body. Strings are decoded to UTF-8 (\uXXXX pairs too).
 */
#ifndef ECHO_JSON_PARSE_H
#define ECHO_JSON_PARSE_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_member;

struct json_value {
	enum json_type type;
	bool boolean;
	char *str;		/* JSON_STRING (decoded) or JSON_NUMBER (as written) */
	size_t len;
	struct json_value *items;	/* JSON_ARRAY */
	struct json_member *members;	/* JSON_OBJECT, in document order */
	size_t count;			/* items or members */
};

struct json_member {
	char *key;
	size_t key_len;
	struct json_value value;
};

/* Parse all of @text; -EINVAL for anything that is not one JSON value, -ENOMEM. */
int json_parse(const char *text, size_t len, struct json_value *out);
void json_free(struct json_value *v);

/* The first member named @key of an object, or NULL. */
const struct json_value *json_get(const struct json_value *obj, const char *key);
/* The member's string value, or NULL when absent or not a string. */
const char *json_get_string(const struct json_value *obj, const char *key);

#endif
