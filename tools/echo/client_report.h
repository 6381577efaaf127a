/* SPDX-License-Identifier: Apache-2.0 */
/* What `echo client` prints: single responses and count-mode tallies. */
#ifndef ECHO_CLIENT_REPORT_H
#define ECHO_CLIENT_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "client_http.h"

/*
 * StatusCode=, ResponseHeader=Name:Value per header line; for an echo body
 * also URL=, Host=, Method=, Proto=, RequestHeader=Name:Value per value and
 * Hostname=<pod> (the lines the Gateway API mesh harness reads); then a
 * blank line and the body.
 */
void report_response(FILE *out, const struct client_response *resp);

struct pod_count {
	char *pod;
	long count;
};

struct tally {
	long total, errors;
	struct pod_count *pods;
	size_t nr_pods;
	long status[1000];
};

/* Count one response: its status and, if the body is an echo body, its pod. */
int tally_add(struct tally *t, const struct client_response *resp);
/* Count one answer of pod. */
int tally_pod(struct tally *t, const char *pod);
void tally_print(FILE *out, struct tally *t, bool json);
void tally_free(struct tally *t);

#endif
