/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON body of the echo handler. */
#ifndef ECHO_ECHO_BODY_H
#define ECHO_ECHO_BODY_H

#include "http_parse.h"
#include "identity.h"
#include "strbuf.h"

/*
 * Append what echo-basic's json.MarshalIndent(..., "", " ") prints for
 * @req: keys path, host, method, proto, headers, httpPort, namespace,
 * ingress, service, pod, one-space indentation, header names sorted and
 * each header line its own array element.
 *
 * httpPort deviates on purpose: echo-basic prints its HTTP_PORT variable,
 * the same on every listener; we print @local_port, the port the request
 * arrived on, which tells which Service port the mesh delivered to.
 */
int echo_body_write(struct strbuf *body, const struct http_request *req,
		    const struct pod_identity *id, unsigned short local_port);

#endif
