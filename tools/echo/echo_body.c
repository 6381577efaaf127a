// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <string.h>

#include "echo_body.h"
#include "json_out.h"

static int span_cmp(struct http_span a, struct http_span b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = memcmp(a.p, b.p, n);

	if (c)
		return c;
	return (a.len > b.len) - (a.len < b.len);
}

/* Insertion sort: stable (values keep their order) and n is small. */
static int sort_visible_headers(const struct http_request *req, int *order)
{
	int n = 0;

	for (int i = 0; i < req->nr_headers; i++) {
		int j;

		if (req->headers[i].hidden)
			continue;
		for (j = n; j > 0; j--) {
			if (span_cmp(req->headers[order[j - 1]].name, req->headers[i].name) <= 0)
				break;
			order[j] = order[j - 1];
		}
		order[j] = i;
		n++;
	}
	return n;
}

static int write_field(struct strbuf *b, const char *key, const char *val,
		       size_t len, bool last)
{
	int err = strbuf_printf(b, " \"%s\": ", key);

	if (!err)
		err = json_append_string(b, val, len);
	return err ?: strbuf_puts(b, last ? "\n" : ",\n");
}

static int write_headers(struct strbuf *b, const struct http_request *req)
{
	int order[HTTP_MAX_HEADERS];
	int n = sort_visible_headers(req, order);
	int err;

	if (!n)
		return strbuf_puts(b, " \"headers\": {},\n");	/* as Go prints an empty map */
	err = strbuf_puts(b, " \"headers\": {\n");
	for (int i = 0; !err && i < n; i++) {
		const struct http_header *h = &req->headers[order[i]];
		bool first = !i || span_cmp(req->headers[order[i - 1]].name, h->name);
		bool last = i + 1 == n || span_cmp(req->headers[order[i + 1]].name, h->name);

		if (first) {
			err = strbuf_puts(b, "  ");
			err = err ?: json_append_string(b, h->name.p, h->name.len);
			err = err ?: strbuf_puts(b, ": [\n");
		}
		err = err ?: strbuf_puts(b, "   ");
		err = err ?: json_append_string(b, h->value.p, h->value.len);
		err = err ?: strbuf_puts(b, last ? "\n" : ",\n");
		if (last && !err)
			err = strbuf_puts(b, i + 1 == n ? "  ]\n" : "  ],\n");
	}
	return err ?: strbuf_puts(b, " },\n");
}

int echo_body_write(struct strbuf *b, const struct http_request *req,
		    const struct pod_identity *id, unsigned short local_port)
{
	char port[8];
	int err;

	snprintf(port, sizeof(port), "%u", local_port);
	err = strbuf_puts(b, "{\n");
	err = err ?: write_field(b, "path", req->target.p, req->target.len, false);
	err = err ?: write_field(b, "host", req->host.p, req->host.len, false);
	err = err ?: write_field(b, "method", req->method.p, req->method.len, false);
	err = err ?: write_field(b, "proto", req->proto.p, req->proto.len, false);
	err = err ?: write_headers(b, req);
	err = err ?: write_field(b, "httpPort", port, strlen(port), false);
	err = err ?: write_field(b, "namespace", id->ns, strlen(id->ns), false);
	err = err ?: write_field(b, "ingress", id->ingress, strlen(id->ingress), false);
	err = err ?: write_field(b, "service", id->service, strlen(id->service), false);
	err = err ?: write_field(b, "pod", id->pod, strlen(id->pod), true);
	return err ?: strbuf_puts(b, "}");
}
