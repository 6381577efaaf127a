/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests to the API server over libcurl (HTTP/1.1, TLS through OpenSSL).
 *
 * One kube_client holds the config and the bearer token, shared by every
 * thread; each thread talks through its own kube_conn (one curl handle, so
 * its connection is kept alive between requests). A token from a file is
 * re-read every KUBE_TOKEN_REREAD_S and after any 401, and the request that
 * got the 401 is sent once more with it: the kubelet rotates projected
 * service account tokens under a running pod.
 *
 * Every call returns 0 once an HTTP response arrived, whatever its status
 * (the caller decides what a 404 or a 429 means), -ECANCELED when *stop was
 * set while it waited, or -EIO/-ETIMEDOUT/-ENOMEM with resp->err saying why.
 */
#ifndef GAMMAD_KUBE_CLIENT_H
#define GAMMAD_KUBE_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "kube_config.h"

#define KUBE_TOKEN_REREAD_S 60
#define KUBE_CONNECT_TIMEOUT_S 10
#define KUBE_REQUEST_TIMEOUT_S 60

struct kube_client;

/* c must outlive the client. Call from one thread, before any other starts. */
int kube_client_new(const struct kube_config *c, struct kube_client **out);
void kube_client_free(struct kube_client *k);
const char *kube_client_server(const struct kube_client *k);

struct kube_conn {
	struct kube_client *k;
	CURL *h;
	const volatile int *stop;	/* set: calls return -ECANCELED soon */
};

int kube_conn_init(struct kube_conn *c, struct kube_client *k, const volatile int *stop);
void kube_conn_fini(struct kube_conn *c);

struct kube_resp {
	long status;		/* HTTP status, 0 when none arrived */
	char *body;		/* NUL-terminated (not for a 200 stream) */
	size_t len;
	int retry_after_s;	/* Retry-After in seconds, -1 when absent */
	char err[CURL_ERROR_SIZE];
};

void kube_resp_free(struct kube_resp *r);

/*
 * METHOD path[?query] with an optional body of content_type (NULL for GET
 * and DELETE). The whole response body is returned in r.
 */
int kube_do(struct kube_conn *c, const char *method, const char *path,
	    const char *content_type, const char *body, struct kube_resp *r);

/*
 * GET path as a stream (a watch): every piece of a 200 response's body goes
 * to fn as it arrives, in whatever pieces the network gives; fn returning
 * non-zero ends the stream and is returned. Any other status's body is
 * collected in r. The stream ends when the server closes it or after max_s
 * seconds (-ETIMEDOUT: the client side of a watch timeout).
 */
typedef int (*kube_data_fn)(void *ctx, const char *data, size_t len);
int kube_stream(struct kube_conn *c, const char *path, long max_s, kube_data_fn fn, void *ctx,
		struct kube_resp *r);

/* Percent-encode s for a query value into buf; NULL when it does not fit. */
const char *kube_query_escape(const char *s, char *buf, size_t len);

#endif
