/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_UTF8_H
#define ECHO_UTF8_H

#include <stddef.h>

/*
 * Decode one UTF-8 sequence at @p. Returns its length (1-4) and stores the
 * code point, or 0 when the bytes are not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid, as in Go).
 */
size_t utf8_decode(const unsigned char *p, size_t len, unsigned int *cp);
/* Encode @cp into @out (at least 4 bytes); returns the length, 0 if invalid. */
size_t utf8_encode(unsigned int cp, char *out);

#endif
