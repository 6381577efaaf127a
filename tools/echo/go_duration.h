/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_GO_DURATION_H
#define ECHO_GO_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a Go duration ("300ms", "1.5s", "1h2m", "-2s") like Go's
 * time.ParseDuration, into nanoseconds. The echo handler's ?delay= takes
 * this syntax. Returns 0 or -EINVAL (also for values that overflow int64).
 */
int go_parse_duration(const char *s, size_t len, int64_t *ns);

#endif
