// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_parse.h"
#include "strbuf.h"
#include "utf8.h"

#define JSON_MAX_DEPTH 64

struct parser {
	const char *p, *end;
	int depth;
};

static int parse_value(struct parser *ps, struct json_value *v);

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && strchr(" \t\r\n", *ps->p) && *ps->p)
		ps->p++;
}

static int hex4(const char *p, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* \uXXXX, with a following low surrogate when this is a high one. */
static int parse_u_escape(struct parser *ps, struct strbuf *sb)
{
	unsigned int cp, lo;
	char utf8[4];
	size_t n;

	if (ps->end - ps->p < 4 || hex4(ps->p, &cp))
		return -EINVAL;
	ps->p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 6 &&
	    ps->p[0] == '\\' && ps->p[1] == 'u' && !hex4(ps->p + 2, &lo) &&
	    lo >= 0xdc00 && lo <= 0xdfff) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		ps->p += 6;
	}
	n = utf8_encode(cp, utf8);
	if (!n)
		n = utf8_encode(0xfffd, utf8);	/* a lone surrogate */
	return strbuf_append(sb, utf8, n);
}

static int parse_string(struct parser *ps, char **out, size_t *out_len)
{
	struct strbuf sb = STRBUF_INIT;
	int err = 0;

	ps->p++;	/* opening quote */
	while (!err) {
		char c;

		if (ps->p >= ps->end) {
			err = -EINVAL;
			break;
		}
		c = *ps->p++;
		if (c == '"')
			break;
		if ((unsigned char)c < 0x20) {
			err = -EINVAL;
		} else if (c != '\\') {
			err = strbuf_putc(&sb, c);
		} else if (ps->p >= ps->end) {
			err = -EINVAL;
		} else {
			c = *ps->p++;
			switch (c) {
			case '"': case '\\': case '/': err = strbuf_putc(&sb, c); break;
			case 'b': err = strbuf_putc(&sb, '\b'); break;
			case 'f': err = strbuf_putc(&sb, '\f'); break;
			case 'n': err = strbuf_putc(&sb, '\n'); break;
			case 'r': err = strbuf_putc(&sb, '\r'); break;
			case 't': err = strbuf_putc(&sb, '\t'); break;
			case 'u': err = parse_u_escape(ps, &sb); break;
			default: err = -EINVAL;
			}
		}
	}
	err = err ?: strbuf_terminate(&sb);
	if (err) {
		strbuf_free(&sb);
		return err;
	}
	*out_len = strbuf_avail(&sb);
	*out = sb.data ? sb.data : strdup("");
	return *out ? 0 : -ENOMEM;
}

/* After an array element or object member: 1 for ',' (another comes), 0 for close, -EINVAL. */
static int next_or_end(struct parser *ps, char close)
{
	skip_ws(ps);
	if (ps->p < ps->end && (*ps->p == ',' || *ps->p == close))
		return *ps->p++ == ',';
	return -EINVAL;
}

static int parse_array(struct parser *ps, struct json_value *v)
{
	size_t cap = 0;
	int err;

	v->type = JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return 0;
	}
	for (;;) {
		if (v->count == cap) {
			struct json_value *items;

			cap = cap ? cap * 2 : 4;
			items = realloc(v->items, cap * sizeof(*items));
			if (!items)
				return -ENOMEM;
			v->items = items;
		}
		memset(&v->items[v->count], 0, sizeof(v->items[0]));
		err = parse_value(ps, &v->items[v->count]);
		v->count++;
		if (err)
			return err;
		err = next_or_end(ps, ']');
		if (err <= 0)
			return err;
	}
}

static int parse_object(struct parser *ps, struct json_value *v)
{
	size_t cap = 0;
	int err;

	v->type = JSON_OBJECT;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return 0;
	}
	for (;;) {
		struct json_member *m;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return -EINVAL;
		if (v->count == cap) {
			cap = cap ? cap * 2 : 8;
			m = realloc(v->members, cap * sizeof(*m));
			if (!m)
				return -ENOMEM;
			v->members = m;
		}
		m = &v->members[v->count];
		memset(m, 0, sizeof(*m));
		v->count++;
		err = parse_string(ps, &m->key, &m->key_len);
		if (err)
			return err;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p++ != ':')
			return -EINVAL;
		err = parse_value(ps, &m->value);
		if (err)
			return err;
		err = next_or_end(ps, '}');
		if (err <= 0)
			return err;
	}
}

static int parse_literal(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n))
		return -EINVAL;
	ps->p += n;
	return 0;
}

/* Numbers are kept as text: the client never computes with them. */
static int parse_number(struct parser *ps, struct json_value *v)
{
	const char *start = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	while (ps->p < ps->end && *ps->p && strchr("0123456789.eE+-", *ps->p))
		ps->p++;
	if (ps->p == start || (ps->p == start + 1 && *start == '-'))
		return -EINVAL;
	v->type = JSON_NUMBER;
	v->len = ps->p - start;
	v->str = strndup(start, v->len);
	return v->str ? 0 : -ENOMEM;
}

static int parse_value(struct parser *ps, struct json_value *v)
{
	int err;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return -EINVAL;
	if (++ps->depth > JSON_MAX_DEPTH)
		return -EINVAL;
	switch (*ps->p) {
	case '{':
		err = parse_object(ps, v);
		break;
	case '[':
		err = parse_array(ps, v);
		break;
	case '"':
		v->type = JSON_STRING;
		err = parse_string(ps, &v->str, &v->len);
		break;
	case 't':
		v->type = JSON_BOOL;
		v->boolean = true;
		err = parse_literal(ps, "true");
		break;
	case 'f':
		v->type = JSON_BOOL;
		err = parse_literal(ps, "false");
		break;
	case 'n':
		v->type = JSON_NULL;
		err = parse_literal(ps, "null");
		break;
	default:
		err = parse_number(ps, v);
	}
	ps->depth--;
	return err;
}

int json_parse(const char *text, size_t len, struct json_value *out)
{
	struct parser ps = { .p = text, .end = text + len };
	int err;

	memset(out, 0, sizeof(*out));
	err = parse_value(&ps, out);
	if (!err) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			err = -EINVAL;
	}
	if (err)
		json_free(out);
	return err;
}

void json_free(struct json_value *v)
{
	for (size_t i = 0; v->items && i < v->count; i++)
		json_free(&v->items[i]);
	for (size_t i = 0; v->members && i < v->count; i++) {
		free(v->members[i].key);
		json_free(&v->members[i].value);
	}
	free(v->items);
	free(v->members);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	size_t n = strlen(key);

	if (obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (obj->members[i].key_len == n && !memcmp(obj->members[i].key, key, n))
			return &obj->members[i].value;
	return NULL;
}

const char *json_get_string(const struct json_value *obj, const char *key)
{
	const struct json_value *v = json_get(obj, key);

	return v && v->type == JSON_STRING ? v->str : NULL;
}
