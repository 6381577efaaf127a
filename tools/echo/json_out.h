/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text output that matches Go's encoding/json byte for byte. */
#ifndef ECHO_JSON_OUT_H
#define ECHO_JSON_OUT_H

#include <stddef.h>

#include "strbuf.h"

/*
 * Append @s as a quoted JSON string, escaped the way Go's json.Marshal does
 * it: \" \\ \b \f \n \r \t, other control bytes as \u00xx, the HTML-sensitive
 * < > & as \u003c \u003e \u0026, U+2028/U+2029 as \u2028/\u2029, and each
 * byte of invalid UTF-8 as \ufffd. The echo-basic server is a Go program, so
 * clients comparing bodies see exactly what they would see from it.
 */
int json_append_string(struct strbuf *sb, const char *s, size_t len);
int json_append_cstr(struct strbuf *sb, const char *s);

#endif
