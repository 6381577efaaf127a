/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 cleartext (prior knowledge) on any HTTP listener of the echo
 * server, with nghttp2: gRPC calls as the conformance gRPC echo server
 * answers them (GrpcEcho/Echo and EchoTwo: an EchoResponse with the
 * method, the request metadata, the authority and the pod; EchoThree and
 * anything else: UNIMPLEMENTED), streaming methods of gammad.echo.Stream
 * for the engine's tests (Server: x-messages replies of x-message-size
 * bytes; Client: one reply with the number of messages; Bidi: every
 * message echoed as it arrives), and other requests through the HTTP/1.1
 * echo handler.
 */
#ifndef ECHO_H2_ECHO_H
#define ECHO_H2_ECHO_H

#include <stddef.h>

struct conn;
struct h2_echo;

/* 1: the HTTP/2 preface, 0: may still become it, -1: not HTTP/2. */
int h2_echo_sniff(const char *p, size_t n);
struct h2_echo *h2_echo_new(struct conn *c);
/* Take what is in c->in, queue what goes out in c->out; negative errno ends c. */
int h2_echo_process(struct h2_echo *h, struct conn *c);
void h2_echo_free(struct h2_echo *h);

#endif
