// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes mode's incremental path without the API server: random watch
 * events (kube_watch.h's struct kube_event, JSON objects as the reflectors
 * deliver them) go through kube_event_model() into the pipeline
 * (image/pipeline.h) one at a time, committed at random points; after
 * every commit the pipeline's image must equal the image of a full load of
 * the final objects, entry by entry (img_diff), as
 * pipeline_incremental_equals_full compares. The events: ADDED/MODIFIED
 * of new versions (cluster_gen's objects as JSON), the same version again
 * (a relist), DELETED, and versions the parsers drop (an apiVersion the API
 * server does not serve, a spec of the wrong type) which must take the old
 * version out as a full load would not have it either.
 * KUBE_PIPELINE_SEEDS=N runs N seeds; KUBE_PIPELINE_TRACE=1 prints the events.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "image/image.h"
#include "image/pipeline.h"
#include "kube/kube_watch.h"
#include "lib/cluster_gen.h"
#include "test_progs.h"

/* A plain YAML scalar as JSON would type it (cluster_gen's texts need no more). */
static json_t *plain_scalar(const char *s)
{
	char *end;
	long long v;

	if (!strcmp(s, "true") || !strcmp(s, "false"))
		return json_boolean(s[0] == 't');
	if (!strcmp(s, "null") || !strcmp(s, "~") || !*s)
		return json_null();
	v = strtoll(s, &end, 10);
	if (*end == 0 && (s[0] != '0' || !s[1]))
		return json_integer(v);
	return json_string(s);
}

static json_t *node_json(yaml_document_t *doc, yaml_node_t *n)
{
	json_t *out;

	switch (n->type) {
	case YAML_SCALAR_NODE:
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return plain_scalar((const char *)n->data.scalar.value);
		return json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     out && i < n->data.sequence.items.top; i++)
			json_array_append_new(out, node_json(doc, yaml_document_get_node(doc, *i)));
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);

			json_object_set_new(out, (const char *)k->data.scalar.value,
					    node_json(doc, yaml_document_get_node(doc, p->value)));
		}
		return out;
	default:
		return json_null();
	}
}

/* One YAML document as the API server's JSON. */
static json_t *yaml_json(const char *text)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	json_t *out = NULL;

	if (!yaml_parser_initialize(&parser))
		return NULL;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	if (yaml_parser_load(&parser, &doc)) {
		yaml_node_t *root = yaml_document_get_root_node(&doc);

		if (root)
			out = node_json(&doc, root);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return out;
}

/* The resource of a cluster_gen slot, as cgen_delete() names its kinds. */
static enum kube_res slot_res(int slot)
{
	if (slot < CGEN_NS)
		return KUBE_NAMESPACES;
	if (slot < CGEN_NS + CGEN_SVC)
		return KUBE_SERVICES;
	if (slot < CGEN_NS + 2 * CGEN_SVC)
		return KUBE_SLICES;
	if (slot < CGEN_NS + 2 * CGEN_SVC + CGEN_ROUTES) {
		int j = slot - CGEN_NS - 2 * CGEN_SVC;

		return j % 3 == 0 ? KUBE_HTTPROUTES : j % 3 == 1 ? KUBE_GRPCROUTES :
								    KUBE_TCPROUTES;
	}
	return KUBE_PODS;
}

/* What a reflector keys the slot's object by. */
static void slot_key(int slot, char *key, size_t len)
{
	struct model_event ev;
	char name[64];

	cgen_delete(slot, &ev, name, sizeof(name));
	if (ev.namespace)
		snprintf(key, len, "%s/%s", ev.namespace, name);
	else
		snprintf(key, len, "%s", name);
}

/* A version the parsers drop (an apiVersion not served), or a spec of the wrong type. */
static void spoil(struct cgen *p, json_t *obj)
{
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));

	if (json_object_get(obj, "spec") && cgen_rnd(p, 2))
		json_object_set_new(obj, "spec", json_string("not an object"));
	else
		json_object_set_new(obj, "apiVersion", json_string(
			api && strchr(api, '/') ? "gateway.networking.k8s.io/v0" : "v0"));
}

/* The event through the agent's conversion into the pipeline, as agent_kube.c feeds it. */
static int feed(struct pl *pl, const struct kube_event *kev)
{
	char buf[KUBE_EVENT_BUF];
	struct model_event ev;
	struct diag dg = { 0 };
	int ret = kube_event_model(kev, &ev, buf, &dg);

	if (!ret)
		ret = pl_event(pl, &ev, &dg);
	diag_free(&dg);
	return ret == -ENOENT ? 0 : ret;
}

static void run_seed(uint64_t seed, int steps)
{
	struct cgen p = { .rng = seed };
	json_t *objs[CGEN_SLOTS] = { 0 };	/* what the API server holds */
	struct pl *pl = NULL;
	struct pl_stats st;
	int incremental = 0, commits = 0, spoiled = 0, deletes = 0;

	if (!ASSERT_OK(pl_new(NULL, NULL, &pl), "pl_new"))
		return;
	for (int step = 0; step < steps; step++) {
		int slot = (int)cgen_rnd(&p, CGEN_SLOTS);
		struct kube_event kev = { .res = slot_res(slot) };
		char key[128];
		json_t *obj = NULL;

		slot_key(slot, key, sizeof(key));
		kev.key = key;
		if (objs[slot] && !cgen_rnd(&p, 4)) {
			kev.type = KUBE_EV_DELETE;
			kev.obj = objs[slot];
			deletes++;
		} else if (objs[slot] && !cgen_rnd(&p, 8)) {
			kev.type = KUBE_EV_PUT;	/* the same version again (a relist) */
			kev.obj = objs[slot];
			obj = json_incref(objs[slot]);
		} else {
			char *text = cgen_object(&p, slot);

			obj = text ? yaml_json(text) : NULL;
			free(text);
			if (!ASSERT_OK_PTR(obj, "object as JSON"))
				break;
			if (!cgen_rnd(&p, 10)) {
				spoil(&p, obj);
				spoiled++;
			}
			kev.type = KUBE_EV_PUT;
			kev.obj = obj;
		}
		if (getenv("KUBE_PIPELINE_TRACE"))
			test__printf("step %d: %s %s %s%s\n", step, kev.type ? "delete" : "put",
				     kube_res_name(kev.res), key,
				     kev.type ? "" : obj == objs[slot] ? " (again)" : "");
		if (!ASSERT_OK(feed(pl, &kev), "event")) {
			test__printf("step %d: %s %s %s\n", step, kev.type ? "delete" : "put",
				     kube_res_name(kev.res), key);
			json_decref(obj);
			break;
		}
		/* The full load reads the objects the API server holds, as JSON. */
		free(p.text[slot]);
		p.text[slot] = NULL;
		json_decref(objs[slot]);
		objs[slot] = obj;
		if (obj) {
			char *text = json_dumps(obj, JSON_COMPACT);

			if (!ASSERT_OK_PTR(text, "dump") ||
			    !ASSERT_GE(asprintf(&p.text[slot], "%s\n", text), 0, "text")) {
				free(text);
				break;
			}
			free(text);
		}
		if (cgen_rnd(&p, 3))
			continue;
		if (!ASSERT_OK(pl_commit(pl, &st), "commit"))
			break;
		commits++;
		incremental += !st.full;
		if (!ASSERT_TRUE(cgen_same_image(&p, pl_image(pl), step, NULL), "incremental == full"))
			break;
	}
	test__printf("%d commits, %d incremental; %d deletes, %d spoiled versions\n", commits,
		     incremental, deletes, spoiled);
	ASSERT_GT(incremental, commits / 3, "incremental commits");
	ASSERT_GT(spoiled, 0, "dropped versions seen");
	pl_free(pl);
	for (int s = 0; s < CGEN_SLOTS; s++) {
		free(p.text[s]);
		json_decref(objs[s]);
	}
}

void test_kube_pipeline(void)
{
	const char *env = getenv("KUBE_PIPELINE_SEEDS");	/* more, for a longer search */
	uint64_t seeds = env ? (uint64_t)atoi(env) : 8;

	for (uint64_t seed = 1; seed <= seeds; seed++) {
		char name[32];

		snprintf(name, sizeof(name), "seed_%llu", (unsigned long long)seed);
		if (!test__start_subtest(name))
			continue;
		run_seed(seed * 0x2545f4914f6cdd1dull, 1500);
	}
}
