/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_ECHO_SET_HEADER_H
#define ECHO_ECHO_SET_HEADER_H

#include "http_parse.h"
#include "strbuf.h"

/*
 * Turn the request's X-Echo-Set-Header values into response header lines
 * appended to @headers, with echo-basic's rules: each value is split on ",",
 * each item trimmed and cut at its first ":" into a name (case kept) and a
 * value; a repeated name gets ",<trimmed value>" appended to its value.
 * Names that are not tokens are skipped (Go's server drops them when it
 * writes), and so are the headers this server owns: Content-Length,
 * Transfer-Encoding, Connection and Date (framing), and exact Content-Type
 * and X-Content-Type-Options (echo-basic sets them after the echoed ones).
 */
int echo_set_headers(const struct http_request *req, struct strbuf *headers);

#endif
