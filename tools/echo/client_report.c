// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_report.h"
#include "json_out.h"
#include "json_parse.h"

/* The rest of a line; line breaks would split it, so they become spaces. */
static void print_value(FILE *out, const char *val, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fputc(val[i] == '\n' || val[i] == '\r' ? ' ' : val[i], out);
	fputc('\n', out);
}

static void print_field(FILE *out, const char *key, const char *val, size_t len)
{
	fprintf(out, "%s=", key);
	print_value(out, val, len);
}

/* The body as JSON when it looks like an object; false otherwise. */
static bool parse_echo_body(const struct client_response *resp, struct json_value *v)
{
	const char *p = strbuf_peek(&resp->body);
	size_t len = strbuf_avail(&resp->body), i = 0;

	while (i < len && strchr(" \t\r\n", p[i]) && p[i])
		i++;
	if (i == len || p[i] != '{')
		return false;
	if (json_parse(p, len, v))
		return false;
	if (v->type != JSON_OBJECT) {
		json_free(v);
		return false;
	}
	return true;
}

static void report_echo_fields(FILE *out, const struct json_value *body)
{
	static const char *const fields[][2] = {
		{ "path", "URL" }, { "host", "Host" }, { "method", "Method" }, { "proto", "Proto" },
	};
	const struct json_value *headers = json_get(body, "headers");
	const struct json_value *pod = json_get(body, "pod");

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct json_value *v = json_get(body, fields[i][0]);

		if (v && v->type == JSON_STRING)
			print_field(out, fields[i][1], v->str, v->len);
	}
	for (size_t i = 0; headers && headers->type == JSON_OBJECT && i < headers->count; i++) {
		const struct json_member *m = &headers->members[i];

		for (size_t j = 0; m->value.type == JSON_ARRAY && j < m->value.count; j++) {
			const struct json_value *item = &m->value.items[j];

			if (item->type != JSON_STRING)
				continue;
			fprintf(out, "RequestHeader=%s:", m->key);
			print_value(out, item->str, item->len);
		}
	}
	if (pod && pod->type == JSON_STRING)
		print_field(out, "Hostname", pod->str, pod->len);
}

void report_response(FILE *out, const struct client_response *resp)
{
	const char *body = strbuf_peek(&resp->body);
	size_t body_len = strbuf_avail(&resp->body);
	struct json_value v;

	fprintf(out, "StatusCode=%d\n", resp->status);
	for (int i = 0; i < resp->nr_headers; i++) {
		const struct http_header *h = &resp->headers[i];

		fprintf(out, "ResponseHeader=%.*s:", (int)h->name.len, h->name.p);
		print_value(out, h->value.p, h->value.len);
	}
	if (parse_echo_body(resp, &v)) {
		report_echo_fields(out, &v);
		json_free(&v);
	}
	fputc('\n', out);
	fwrite(body, 1, body_len, out);
	if (body_len && body[body_len - 1] != '\n')
		fputc('\n', out);
}

int tally_pod(struct tally *t, const char *pod)
{
	size_t i;

	for (i = 0; i < t->nr_pods; i++)
		if (!strcmp(t->pods[i].pod, pod))
			break;
	if (i == t->nr_pods) {
		struct pod_count *pods = realloc(t->pods, (i + 1) * sizeof(*pods));

		if (pods) {
			t->pods = pods;
			pods[i].pod = strdup(pod);
			pods[i].count = 0;
		}
		if (!pods || !pods[i].pod)
			return -ENOMEM;
		t->nr_pods++;
	}
	t->pods[i].count++;
	return 0;
}

int tally_add(struct tally *t, const struct client_response *resp)
{
	struct json_value v;
	const char *pod;
	int err = 0;

	if (resp->status >= 100 && resp->status <= 999)
		t->status[resp->status]++;
	if (!parse_echo_body(resp, &v))
		return 0;
	pod = json_get_string(&v, "pod");
	if (pod)
		err = tally_pod(t, pod);
	json_free(&v);
	return err;
}

static int pod_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pod_count *)a)->pod, ((const struct pod_count *)b)->pod);
}

static void tally_print_json(FILE *out, const struct tally *t)
{
	struct strbuf sb = STRBUF_INIT;
	bool first = true;
	int err;

	err = strbuf_printf(&sb, "{\"total\":%ld,\"errors\":%ld,\"pods\":{", t->total, t->errors);
	for (size_t i = 0; !err && i < t->nr_pods; i++) {
		err = i ? strbuf_putc(&sb, ',') : 0;
		err = err ?: json_append_cstr(&sb, t->pods[i].pod);
		err = err ?: strbuf_printf(&sb, ":%ld", t->pods[i].count);
	}
	err = err ?: strbuf_puts(&sb, "},\"status\":{");
	for (int code = 100; !err && code < 1000; code++) {
		if (!t->status[code])
			continue;
		err = strbuf_printf(&sb, "%s\"%d\":%ld", first ? "" : ",", code, t->status[code]);
		first = false;
	}
	err = err ?: strbuf_puts(&sb, "}}\n");
	if (err)
		fprintf(stderr, "echo client: out of memory printing the summary\n");
	else
		fwrite(strbuf_peek(&sb), 1, strbuf_avail(&sb), out);
	strbuf_free(&sb);
}

void tally_print(FILE *out, struct tally *t, bool json)
{
	if (t->nr_pods)	/* qsort's base must not be NULL, even for 0 items */
		qsort(t->pods, t->nr_pods, sizeof(*t->pods), pod_cmp);
	if (json) {
		tally_print_json(out, t);
		return;
	}
	for (size_t i = 0; i < t->nr_pods; i++)
		fprintf(out, "pod=%s count=%ld\n", t->pods[i].pod, t->pods[i].count);
	for (int code = 100; code < 1000; code++)
		if (t->status[code])
			fprintf(out, "status=%d count=%ld\n", code, t->status[code]);
	fprintf(out, "errors=%ld\n", t->errors);
}

void tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->nr_pods; i++)
		free(t->pods[i].pod);
	free(t->pods);
	t->pods = NULL;
	t->nr_pods = 0;
}
