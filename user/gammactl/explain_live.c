// SPDX-License-Identifier: Apache-2.0
/*
 * explain's live half: ask the running agent (GET /explain on its
 * --metrics-addr) what its HTTP engine does with a request on the tables it
 * serves now, which may differ from the manifests on disk (an apply pending
 * or refused).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "input/yaml_doc.h"
#include "translate/translate_eval.h"
#include "gammactl.h"

#define LIVE_TIMEOUT_MS 3000
#define LIVE_MAX (1 << 20)	/* an answer larger than this is not the agent's */

static void url_put(FILE *f, const char *key, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!v)
		return;
	fprintf(f, "&%s=", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
}

static int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (!colon || colon - text >= (long)sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	if (text[0] == '[')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text - 2), text + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* GET path from the agent (HTTP/1.0: the answer ends with the close). */
static int http_get(const char *agent, const char *path, int *status, char **body)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char *buf = NULL, *sep;
	size_t len = 0, cap = 0;
	int fd, err = 0;

	*body = NULL;
	if (addr_parse(agent, &ss, &sl))
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl) ||
	    dprintf(fd, "GET %s HTTP/1.0\r\nHost: gammad\r\n\r\n", path) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			nb = cap > LIVE_MAX ? NULL : realloc(buf, cap);
			if (!nb) {
				err = -EFBIG;
				goto out;
			}
			buf = nb;
		}
		if (poll(&p, 1, LIVE_TIMEOUT_MS) <= 0) {
			err = -ETIMEDOUT;
			goto out;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		len += n;
	}
	buf[len] = 0;
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
		err = -EPROTO;
		goto out;
	}
	*body = strdup(sep + 4);
	if (!*body)
		err = -ENOMEM;
out:
	close(fd);
	free(buf);
	return err;
}

static void str_of(const struct ydoc *d, const yaml_node_t *map, const char *key, char *buf,
		   size_t len)
{
	const char *v = NULL;

	buf[0] = 0;
	if (!yget_str(d, map, key, &v) && v)
		snprintf(buf, len, "%s", v);
}

static long long int_of(const struct ydoc *d, const yaml_node_t *map, const char *key)
{
	long long v = -1;

	yget_int(d, map, key, -1, 1LL << 62, &v);
	return v;
}

/* "a, b, c" of a sequence of strings. */
static void list_of(const struct ydoc *d, const yaml_node_t *map, const char *key, char *buf,
		    size_t len)
{
	yaml_node_t *seq = NULL;
	size_t n = 0;

	buf[0] = 0;
	if (yget_seq(d, map, key, &seq) || !seq)
		return;
	for (size_t i = 0; i < yseq_len(seq) && n < len; i++) {
		const char *s = ynode_str(yseq_at(d, seq, i));

		n += snprintf(buf + n, len - n, "%s%s", i ? ", " : "", s ? s : "?");
	}
}

static void parse_live(const char *json, struct ctl_live *l)
{
	struct ydoc_error yerr = { 0 };
	struct ydoc_set set = { 0 };
	const struct ydoc *d;
	yaml_node_t *root, *rule = NULL, *bes = NULL, *picked = NULL;
	bool b = false;

	if (ydoc_load_buf("agent /explain", json, strlen(json), &set, &yerr) || set.nr_docs != 1) {
		snprintf(l->note, sizeof(l->note), "the agent's answer is no JSON: %.200s", yerr.msg);
		l->reachable = false;
		ydoc_set_free(&set);
		return;
	}
	d = &set.docs[0];
	root = d->root;
	l->generation = int_of(d, root, "generation");
	l->service_port = !yget_bool(d, root, "service_port", &b) && b;
	l->status = (int)int_of(d, root, "status");
	str_of(d, root, "location", l->location, sizeof(l->location));
	str_of(d, root, "target", l->target, sizeof(l->target));
	if (!yget_map(d, root, "picked", &picked) && picked)
		str_of(d, picked, "backend", l->picked, sizeof(l->picked));
	if (!yget_map(d, root, "rule", &rule) && rule) {
		size_t n = 0;

		l->has_rule = true;
		str_of(d, rule, "kind", l->kind, sizeof(l->kind));
		str_of(d, rule, "namespace", l->ns, sizeof(l->ns));
		str_of(d, rule, "route", l->route, sizeof(l->route));
		str_of(d, rule, "name", l->name, sizeof(l->name));
		str_of(d, rule, "match", l->match, sizeof(l->match));
		l->index = int_of(d, rule, "index");
		list_of(d, rule, "filters", l->filters, sizeof(l->filters));
		if (!yget_seq(d, rule, "backends", &bes) && bes) {
			for (size_t i = 0; i < yseq_len(bes) && n < sizeof(l->backends); i++) {
				yaml_node_t *be = yseq_at(d, bes, i);
				char name[320], state[32];

				str_of(d, be, "backend", name, sizeof(name));
				str_of(d, be, "state", state, sizeof(state));
				n += snprintf(l->backends + n, sizeof(l->backends) - n,
					      "%sweight %lld %s (%s, %lld endpoints)", i ? "; " : "",
					      int_of(d, be, "weight"), name, state,
					      int_of(d, be, "endpoints"));
			}
		}
	}
	ydoc_set_free(&set);
}

void ctl_live_explain(const char *agent, const char *ns, const char *vip, uint16_t port,
		      const struct ev_request *req, struct ctl_live *l)
{
	char *path = NULL, *body = NULL;
	size_t plen = 0;
	int status = 0, err;
	FILE *f;

	memset(l, 0, sizeof(*l));
	l->asked = true;
	f = open_memstream(&path, &plen);
	if (!f) {
		snprintf(l->note, sizeof(l->note), "%s", strerror(errno));
		return;
	}
	fprintf(f, "/explain?port=%u", port);
	url_put(f, "ns", ns);
	url_put(f, "vip", vip);
	url_put(f, "method", req->method);
	url_put(f, "target", req->target);
	url_put(f, "host", req->host);
	for (size_t i = 0; i < req->nr_headers; i++) {
		char *h = NULL;

		if (asprintf(&h, "%s:%s", req->headers[i].name, req->headers[i].value) >= 0)
			url_put(f, "h", h);
		free(h);
	}
	fclose(f);
	err = path ? http_get(agent, path, &status, &body) : -ENOMEM;
	free(path);
	if (err) {
		snprintf(l->note, sizeof(l->note), "agent at %s: %s", agent, strerror(-err));
	} else if (status == 404) {
		snprintf(l->note, sizeof(l->note), "the agent at %s runs without its HTTP engine "
			 "(--no-http-engine)", agent);
	} else if (status != 200) {
		snprintf(l->note, sizeof(l->note), "agent at %s: HTTP %d: %.100s", agent, status,
			 body ? body : "");
	} else {
		l->reachable = true;
		parse_live(body, l);
	}
	free(body);
}
