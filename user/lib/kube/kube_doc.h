/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An API object as the API server sends it (a jansson value) loaded into the
 * model through the same parsers as manifest files (input/manifest.h): the
 * value is rebuilt as a libyaml document of JSON syntax (strings quoted,
 * numbers, booleans and null plain), so a field means the same whichever
 * way it arrived and is checked by the same code.
 */
#ifndef GAMMAD_KUBE_DOC_H
#define GAMMAD_KUBE_DOC_H

#include <jansson.h>
#include <stdbool.h>

#include "input/model.h"

/*
 * Load obj (with apiVersion and kind) into m. name is the file name in
 * diagnostics (e.g. "api:HTTPRoute/ns/name"). Returns 0 (a dropped object
 * is a diagnostic, not an error) or -ENOMEM.
 */
int kube_doc_load(struct model *m, const json_t *obj, const char *name, struct diag *dg);

/*
 * One object change of the API server as a model event (model.h), for the
 * incremental pipeline: a PUT is parsed as kube_doc_load() parses it and
 * becomes a MODEL_PUT owning the new object; a PUT the parsers drop (see
 * dg) becomes a MODEL_DELETE of that kind and name, because a load of
 * every object would not hold it either. kind is the model kind of the
 * resource (route_kind for MODEL_ROUTE); ns is NULL for Namespaces.
 * ev's strings point into ns and name. Returns 0 or -ENOMEM.
 */
int kube_doc_event(enum model_kind kind, enum gapi_route_kind route_kind, bool put,
		   const json_t *obj, const char *ns, const char *name, const char *diag_name,
		   struct model_event *ev, struct diag *dg);

#endif
