/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_CLOCK_H
#define ECHO_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for deadlines, never for dates. */
int64_t now_ms(void);

/* Milliseconds left until @deadline, at least 0 (for poll()). */
int ms_until(int64_t deadline);

#endif
