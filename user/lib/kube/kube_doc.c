// SPDX-License-Identifier: Apache-2.0
/* API objects into the model through input's parsers: see kube_doc.h. */
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "input/manifest.h"
#include "input/yaml_doc.h"
#include "kube_doc.h"

/* The API server nests far less; deeper is a hostile object. */
#define KUBE_DOC_MAX_DEPTH YDOC_MAX_DEPTH

static int add_scalar(yaml_document_t *doc, const char *s, size_t len, bool quoted)
{
	return yaml_document_add_scalar(doc, NULL, (yaml_char_t *)s, (int)len,
					quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE :
						 YAML_PLAIN_SCALAR_STYLE);
}

/* The node id of v added to doc, 0 on failure (libyaml's ids start at 1). */
static int add_value(yaml_document_t *doc, const json_t *v, int depth, bool *too_deep)
{
	char num[64];
	int id, k, n;

	if (depth > KUBE_DOC_MAX_DEPTH) {
		*too_deep = true;
		return 0;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *val;

		id = yaml_document_add_mapping(doc, NULL, YAML_FLOW_MAPPING_STYLE);
		if (!id)
			return 0;
		json_object_foreach((json_t *)v, key, val) {
			k = add_scalar(doc, key, strlen(key), true);
			n = k ? add_value(doc, val, depth + 1, too_deep) : 0;
			if (!n || !yaml_document_append_mapping_pair(doc, id, k, n))
				return 0;
		}
		return id;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *val;

		id = yaml_document_add_sequence(doc, NULL, YAML_FLOW_SEQUENCE_STYLE);
		if (!id)
			return 0;
		json_array_foreach(v, i, val) {
			n = add_value(doc, val, depth + 1, too_deep);
			if (!n || !yaml_document_append_sequence_item(doc, id, n))
				return 0;
		}
		return id;
	}
	case JSON_STRING:
		return add_scalar(doc, json_string_value(v), json_string_length(v), true);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return add_scalar(doc, num, strlen(num), false);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return add_scalar(doc, num, strlen(num), false);
	case JSON_TRUE:
		return add_scalar(doc, "true", 4, false);
	case JSON_FALSE:
		return add_scalar(doc, "false", 5, false);
	case JSON_NULL:
	default:
		return add_scalar(doc, "null", 4, false);
	}
}

int kube_doc_load(struct model *m, const json_t *obj, const char *name, struct diag *dg)
{
	struct ydoc d = { .file = name, .json = true };
	bool too_deep = false;
	int ret;

	if (!json_is_object(obj)) {
		diag_report(dg, LOG_ERROR, name, 0, NULL, "not an object, ignored");
		return 0;
	}
	if (!yaml_document_initialize(&d.doc, NULL, NULL, NULL, 1, 1))
		return -ENOMEM;
	/* A failed add is libyaml out of memory, or nesting past the limit. */
	if (!add_value(&d.doc, obj, 0, &too_deep)) {
		yaml_document_delete(&d.doc);
		if (!too_deep)
			return -ENOMEM;
		diag_report(dg, LOG_ERROR, name, 0, NULL, "nested deeper than %d, ignored",
			    KUBE_DOC_MAX_DEPTH);
		return 0;
	}
	d.root = yaml_document_get_root_node(&d.doc);
	ret = manifest_load_doc(m, &d, dg);
	yaml_document_delete(&d.doc);
	/* A parser's -EINVAL dropped the object (in dg): not the caller's failure. */
	return ret == -ENOMEM ? ret : 0;
}

int kube_doc_event(enum model_kind kind, enum gapi_route_kind route_kind, bool put,
		   const json_t *obj, const char *ns, const char *name, const char *diag_name,
		   struct model_event *ev, struct diag *dg)
{
	struct model_event *evs = NULL;
	struct model m;
	size_t nr = 0;
	int ret;

	*ev = (struct model_event){ .op = MODEL_DELETE, .kind = kind, .route_kind = route_kind,
				    .namespace = ns, .name = name };
	if (!put)
		return 0;
	model_init(&m);
	ret = kube_doc_load(&m, obj, diag_name, dg);
	if (!ret)
		ret = model_take_events(&m, &evs, &nr);	/* frees m */
	else
		model_free(&m);
	if (ret)
		return ret;
	/* One object of the resource's kind, or none (dropped: a delete). */
	if (nr == 1 && evs[0].kind == kind) {
		*ev = evs[0];
		free(evs);
		return 0;
	}
	model_events_free(evs, nr);
	return 0;
}
