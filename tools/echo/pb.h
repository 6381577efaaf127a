/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The little protobuf the gRPC echo needs: varints and length-delimited
 * fields (strings, nested messages), written and read, and the gRPC
 * message framing (1 byte compressed flag, 4 bytes big-endian length).
 */
#ifndef ECHO_PB_H
#define ECHO_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define GRPC_FRAME_HDR 5

int pb_put_bytes(struct strbuf *sb, unsigned int field, const void *p, size_t len);
int pb_put_str(struct strbuf *sb, unsigned int field, const char *s);

/* A reader over one message's bytes. */
struct pb_reader {
	const uint8_t *p, *end;
};

/*
 * The next field: its number, and for a length-delimited one its bytes
 * (other wire types are skipped over and give len 0). 1, 0 at the end, -1
 * for bytes that are no protobuf.
 */
int pb_next(struct pb_reader *r, unsigned int *field, const uint8_t **val, size_t *len);

/* gRPC framing: append one uncompressed message of len bytes. */
int grpc_frame_put(struct strbuf *sb, const void *msg, size_t len);
/*
 * A whole message at the front of buf: its bytes and the frame's length;
 * 0 when more bytes are needed, -1 for a compressed one (not supported).
 */
int grpc_frame_get(const uint8_t *buf, size_t n, const uint8_t **msg, size_t *msg_len,
		   size_t *frame_len);

/* The conformance echo service (conformance/echo/grpcecho.proto). */
#define GRPCECHO_SERVICE "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
/* Streaming methods of this echo only, for the engine's tests. */
#define STREAM_SERVICE "gammad.echo.Stream"

#endif
