// SPDX-License-Identifier: Apache-2.0
/* In-cluster config and kubeconfig files: see kube_config.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input/yaml_doc.h"
#include "kube_config.h"

static int fail(char *msg, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return err;
}

static char *read_small_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

int kube_config_in_cluster(struct kube_config *c, const char *sa_dir, char *msg, size_t len)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char path[4096];
	char *ns;
	int n;

	*c = (struct kube_config){ 0 };
	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host)
		return fail(msg, len, -ENOENT, "not in a pod: KUBERNETES_SERVICE_HOST is unset");
	if (!port || !*port)
		port = "443";
	/* An IPv6 address is bracketed in a URL. */
	n = asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port);
	if (n < 0) {
		c->server = NULL;
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	c->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	c->ca_file = strdup(path);
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	ns = read_small_file(path, 253);
	if (ns)
		ns[strcspn(ns, " \t\r\n")] = 0;
	c->namespace = ns && *ns ? ns : strdup("default");
	if (ns && !*ns)
		free(ns);
	c->source = strdup("in-cluster");
	if (!c->token_file || !c->ca_file || !c->namespace || !c->source) {
		kube_config_free(c);
		return -ENOMEM;
	}
	if (access(c->token_file, R_OK)) {
		int err = -errno;

		fail(msg, len, err, "service account token %s: %s", c->token_file,
		     strerror(errno));
		kube_config_free(c);
		return err;
	}
	return 0;
}

/* ---- kubeconfig ---------------------------------------------------------- */

static int b64_value(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Standard base64 (padding optional, whitespace skipped) into a new blob. */
static int b64_decode(const char *s, struct kube_blob *out)
{
	size_t n = strlen(s), o = 0;
	unsigned int acc = 0;
	int bits = 0;

	out->data = malloc(n / 4 * 3 + 4);
	if (!out->data)
		return -ENOMEM;
	for (const char *p = s; *p; p++) {
		int v;

		if (*p == '=' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		v = b64_value((unsigned char)*p);
		if (v < 0) {
			free(out->data);
			out->data = NULL;
			return -EINVAL;
		}
		acc = acc << 6 | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[o++] = (unsigned char)(acc >> bits);
		}
	}
	out->len = o;
	return 0;
}

/* The entry of a named list ("clusters", "users", "contexts") called name. */
static yaml_node_t *named_entry(const struct ydoc *d, const char *list, const char *name,
				const char *inner)
{
	yaml_node_t *seq = ymap_get(d, d->root, list);
	const char *n;

	for (size_t i = 0; i < yseq_len(seq); i++) {
		yaml_node_t *e = yseq_at(d, seq, i);

		if (!yget_str(d, e, "name", &n) && !strcmp(n, name))
			return ymap_get(d, e, inner);
	}
	return NULL;
}

/* A path of the kubeconfig, relative to its directory unless absolute. */
static char *config_path(const char *config, const char *p)
{
	const char *slash = strrchr(config, '/');
	char *out;

	if (p[0] == '/' || !slash)
		return strdup(p);
	if (asprintf(&out, "%.*s/%s", (int)(slash - config), config, p) < 0)
		return NULL;
	return out;
}

static int opt_path(const struct ydoc *d, const yaml_node_t *map, const char *key,
		    const char *config, char **out)
{
	const char *s;

	if (yget_str(d, map, key, &s) || !*s)
		return 0;
	*out = config_path(config, s);
	return *out ? 0 : -ENOMEM;
}

static int opt_blob(const struct ydoc *d, const yaml_node_t *map, const char *key,
		    struct kube_blob *out, char *msg, size_t len)
{
	const char *s;
	int ret;

	if (yget_str(d, map, key, &s) || !*s)
		return 0;
	ret = b64_decode(s, out);
	if (ret == -EINVAL)
		return fail(msg, len, ret, "%s: not base64", key);
	return ret;
}

static int opt_str(const struct ydoc *d, const yaml_node_t *map, const char *key, char **out)
{
	const char *s;

	if (yget_str(d, map, key, &s) || !*s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int kube_config_load(struct kube_config *c, const char *path, const char *context,
		     char *msg, size_t len)
{
	yaml_node_t *ctx, *cluster, *user;
	const char *cluster_name, *user_name, *server;
	struct ydoc_error err;
	struct ydoc_set set = { 0 };
	const struct ydoc *d;
	int ret;

	*c = (struct kube_config){ 0 };
	ret = ydoc_load_file(path, &set, &err);
	if (ret)
		return fail(msg, len, ret, "%s", ret == -ENOMEM ? strerror(ENOMEM) : err.msg);
	if (!set.nr_docs || !set.docs[0].root) {
		ret = fail(msg, len, -EINVAL, "%s: empty", path);
		goto out;
	}
	d = &set.docs[0];
	if (!context && yget_str(d, d->root, "current-context", &context)) {
		ret = fail(msg, len, -EINVAL, "%s: no current-context", path);
		goto out;
	}
	ctx = named_entry(d, "contexts", context, "context");
	if (!ctx || yget_str(d, ctx, "cluster", &cluster_name)) {
		ret = fail(msg, len, -EINVAL, "%s: context %s: not found or without a cluster",
			   path, context);
		goto out;
	}
	cluster = named_entry(d, "clusters", cluster_name, "cluster");
	if (!cluster || yget_str(d, cluster, "server", &server) ||
	    (strncmp(server, "http://", 7) && strncmp(server, "https://", 8))) {
		ret = fail(msg, len, -EINVAL, "%s: cluster %s: no http:// or https:// server",
			   path, cluster_name);
		goto out;
	}
	c->server = strdup(server);
	if (!c->server) {
		ret = -ENOMEM;
		goto out;
	}
	c->server[strcspn(c->server, "?#")] = 0;
	while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = 0;
	yget_bool(d, cluster, "insecure-skip-tls-verify", &c->insecure);
	ret = opt_path(d, cluster, "certificate-authority", path, &c->ca_file);
	if (!ret)
		ret = opt_blob(d, cluster, "certificate-authority-data", &c->ca, msg, len);
	if (ret)
		goto out;
	user = !yget_str(d, ctx, "user", &user_name) ?
	       named_entry(d, "users", user_name, "user") : NULL;
	if (user) {
		ret = opt_str(d, user, "token", &c->token);
		if (!ret)
			ret = opt_path(d, user, "tokenFile", path, &c->token_file);
		if (!ret)
			ret = opt_path(d, user, "client-certificate", path, &c->cert_file);
		if (!ret)
			ret = opt_path(d, user, "client-key", path, &c->key_file);
		if (!ret)
			ret = opt_blob(d, user, "client-certificate-data", &c->cert, msg, len);
		if (!ret)
			ret = opt_blob(d, user, "client-key-data", &c->key, msg, len);
		if (ret)
			goto out;
	}
	ret = opt_str(d, ctx, "namespace", &c->namespace);
	if (!ret && !c->namespace)
		c->namespace = strdup("default");
	c->source = strdup(path);
	if (!ret && (!c->namespace || !c->source))
		ret = -ENOMEM;
out:
	ydoc_set_free(&set);
	if (ret)
		kube_config_free(c);
	return ret;
}

void kube_config_free(struct kube_config *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca.data);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert.data);
	free(c->key.data);
	free(c->namespace);
	free(c->source);
	*c = (struct kube_config){ 0 };
}
