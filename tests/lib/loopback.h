/* SPDX-License-Identifier: Apache-2.0 */
/* TCP sockets on 127.0.0.1 for tests that attach programs to a socket pair. */
#ifndef GAMMAD_TESTS_LOOPBACK_H
#define GAMMAD_TESTS_LOOPBACK_H

#include <stdbool.h>
#include <stdint.h>

/* A listener on 127.0.0.1, an ephemeral port (*port when not NULL); -1 on failure. */
int loopback_listener(uint16_t *port);

/*
 * A connected pair through listener l: *c the connecting end (TCP_NODELAY
 * when nodelay), returns the accepted one; -1 on failure (*c may be open).
 */
int loopback_pair(int l, int *c, bool nodelay);

#endif
