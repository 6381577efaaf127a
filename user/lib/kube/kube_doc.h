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

#include "input/model.h"

/*
 * Load obj (with apiVersion and kind) into m. name is the file name in
 * diagnostics (e.g. "api:HTTPRoute/ns/name"). Returns 0 (a dropped object
 * is a diagnostic, not an error) or -ENOMEM.
 */
int kube_doc_load(struct model *m, const json_t *obj, const char *name, struct diag *dg);

#endif
