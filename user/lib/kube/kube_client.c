// SPDX-License-Identifier: Apache-2.0
/* Requests to the API server: see kube_client.h. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "kube_client.h"

#define KUBE_TOKEN_MAX 16384
#define KUBE_ERROR_BODY_MAX (1u << 20)
#define KUBE_BODY_MAX (512u << 20)	/* one LIST page; the API server sends far less */

struct kube_client {
	const struct kube_config *cfg;
	pthread_mutex_t lock;		/* the token */
	char *token;
	time_t token_read;		/* CLOCK_MONOTONIC seconds; 0: never */
	bool token_logged;		/* a failed read is logged once until one works */
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_ret;

static void curl_init(void)
{
	curl_init_ret = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kube_client_new(const struct kube_config *c, struct kube_client **out)
{
	struct kube_client *k;

	pthread_once(&curl_once, curl_init);
	if (curl_init_ret)
		return -ENOMEM;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->cfg = c;
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return 0;
}

void kube_client_free(struct kube_client *k)
{
	if (!k)
		return;
	free(k->token);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

const char *kube_client_server(const struct kube_client *k)
{
	return k->cfg->server;
}

/* Re-read the token file (force: after a 401); keeps the old token on failure. */
static void token_refresh(struct kube_client *k, bool force)
{
	FILE *f;
	char *buf;
	size_t n;

	if (!k->cfg->token_file)
		return;
	if (!force && k->token_read && mono_s() - k->token_read < KUBE_TOKEN_REREAD_S)
		return;
	k->token_read = mono_s();
	f = fopen(k->cfg->token_file, "re");
	buf = f ? malloc(KUBE_TOKEN_MAX + 1) : NULL;
	if (!buf) {
		if (!k->token_logged)
			pr_err("kube: token %s: %s", k->cfg->token_file, strerror(errno));
		k->token_logged = true;
		if (f)
			fclose(f);
		return;
	}
	n = fread(buf, 1, KUBE_TOKEN_MAX, f);
	fclose(f);
	while (n && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = 0;
	k->token_logged = false;
	free(k->token);
	k->token = buf;
}

/* "Authorization: Bearer ..." for the next request, or NULL without a token. */
static char *auth_header(struct kube_client *k, bool force_reread)
{
	const char *tok;
	char *h = NULL;

	pthread_mutex_lock(&k->lock);
	token_refresh(k, force_reread);
	tok = k->cfg->token_file ? k->token : k->cfg->token;
	if (tok && *tok && asprintf(&h, "Authorization: Bearer %s", tok) < 0)
		h = NULL;
	pthread_mutex_unlock(&k->lock);
	return h;
}

int kube_conn_init(struct kube_conn *c, struct kube_client *k, const volatile int *stop)
{
	c->k = k;
	c->stop = stop;
	c->h = curl_easy_init();
	return c->h ? 0 : -ENOMEM;
}

void kube_conn_fini(struct kube_conn *c)
{
	if (c->h)
		curl_easy_cleanup(c->h);
	c->h = NULL;
}

void kube_resp_free(struct kube_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

const char *kube_query_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (o + 4 > len)
			return NULL;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			buf[o++] = (char)ch;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[ch >> 4];
			buf[o++] = hex[ch & 15];
		}
	}
	if (o >= len)
		return NULL;
	buf[o] = 0;
	return buf;
}

/* ---- one transfer --------------------------------------------------------- */

struct xfer {
	struct kube_conn *c;
	struct kube_resp *r;
	kube_data_fn fn;	/* NULL: collect the body */
	void *ctx;
	int fn_ret;
	size_t cap;
};

static int collect(struct xfer *x, const char *data, size_t n)
{
	struct kube_resp *r = x->r;

	if (r->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 16384;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		b = realloc(r->body, cap);
		if (!b)
			return -ENOMEM;
		r->body = b;
		x->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
	return 0;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->c->h, CURLINFO_RESPONSE_CODE, &status);
	if (x->fn && status == 200) {
		x->fn_ret = x->fn(x->ctx, data, n);
		return x->fn_ret ? 0 : n;	/* 0: curl ends the transfer */
	}
	/* A stream's error body is a Status object: a stray huge one is cut. */
	if (x->r->len + n > (x->fn ? KUBE_ERROR_BODY_MAX : KUBE_BODY_MAX))
		return x->fn ? n : 0;
	return collect(x, data, n) ? 0 : n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nitems;

	if (n > 12 && !strncasecmp(buf, "Retry-After:", 12)) {
		long v = strtol(buf + 12, NULL, 10);

		/* Seconds only: the API server never sends an HTTP date. */
		x->r->retry_after_s = v > 0 && v < 86400 ? (int)v : 1;
	}
	if (n > 5 && !strncmp(buf, "HTTP/", 5))
		x->r->retry_after_s = -1;	/* a new response (after a 100) */
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = arg;

	return x->c->stop && *x->c->stop;
}

static void set_tls(CURL *h, const struct kube_config *cfg)
{
	if (cfg->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->ca.data) {
		struct curl_blob b = { cfg->ca.data, cfg->ca.len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	}
	if (cfg->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->cert_file);
	if (cfg->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->key_file);
	if (cfg->cert.data) {
		struct curl_blob b = { cfg->cert.data, cfg->cert.len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
	}
	if (cfg->key.data) {
		struct curl_blob b = { cfg->key.data, cfg->key.len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
	}
	if (cfg->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static int transfer(struct kube_conn *c, const char *method, const char *path,
		    const char *content_type, const char *body, long timeout_s,
		    kube_data_fn fn, void *ctx, struct kube_resp *r, bool force_reread)
{
	const struct kube_config *cfg = c->k->cfg;
	struct xfer x = { .c = c, .r = r, .fn = fn, .ctx = ctx };
	struct curl_slist *hdrs = NULL, *t;
	char *auth, *url = NULL, ctype[128];
	CURLcode rc;
	CURL *h = c->h;

	*r = (struct kube_resp){ .retry_after_s = -1 };
	if (asprintf(&url, "%s%s", cfg->server, path) < 0)
		return -ENOMEM;
	auth = auth_header(c->k, force_reread);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (auth && hdrs && (t = curl_slist_append(hdrs, auth)))
		hdrs = t;
	if (content_type && hdrs) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
		if ((t = curl_slist_append(hdrs, ctype)))
			hdrs = t;
	}
	free(auth);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "gammad");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)KUBE_CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");	/* gzip when offered */
	if (strcmp(method, "GET"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	set_tls(h, cfg);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	free(url);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (rc == CURLE_WRITE_ERROR && x.fn_ret)
		return x.fn_ret;
	if (rc == CURLE_OPERATION_TIMEDOUT && r->status)
		return -ETIMEDOUT;	/* a stream's end by the clock, after its head */
	if (rc == CURLE_WRITE_ERROR)
		return -ENOMEM;
	if (rc) {
		if (!r->err[0])
			snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(rc));
		r->status = 0;
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	return 0;
}

static int request(struct kube_conn *c, const char *method, const char *path,
		   const char *content_type, const char *body, long timeout_s,
		   kube_data_fn fn, void *ctx, struct kube_resp *r)
{
	int ret = transfer(c, method, path, content_type, body, timeout_s, fn, ctx, r, false);

	/* A rotated token: read it again and retry once. */
	if (!ret && r->status == 401 && c->k->cfg->token_file) {
		pr_info("kube: 401 from %s %s: re-reading the token", method, path);
		kube_resp_free(r);
		ret = transfer(c, method, path, content_type, body, timeout_s, fn, ctx, r, true);
	}
	return ret;
}

int kube_do(struct kube_conn *c, const char *method, const char *path,
	    const char *content_type, const char *body, struct kube_resp *r)
{
	return request(c, method, path, content_type, body, KUBE_REQUEST_TIMEOUT_S, NULL, NULL,
		       r);
}

int kube_stream(struct kube_conn *c, const char *path, long max_s, kube_data_fn fn, void *ctx,
		struct kube_resp *r)
{
	return request(c, "GET", path, NULL, NULL, max_s, fn, ctx, r);
}
