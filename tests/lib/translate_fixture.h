/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture for the translator: load manifests (inline YAML or files),
 * translate, look up a class and evaluate requests against it.
 */
#ifndef GAMMAD_TRANSLATE_FIXTURE_H
#define GAMMAD_TRANSLATE_FIXTURE_H

#include "input/manifest.h"
#include "translate/translate.h"
#include "translate/translate_eval.h"

struct tfx {
	struct model m;
	struct diag dg;
	struct tr_result res;
	bool translated;
	struct tr_opts opts;	/* the node tfx_translate translates for */
};

void tfx_init(struct tfx *f);
void tfx_free(struct tfx *f);
int tfx_load(struct tfx *f, const char *name, const char *yaml);
int tfx_translate(struct tfx *f);
/* Class of Service ns/svc port for a client in client_ns (NULL: default). */
const struct tr_class *tfx_class(struct tfx *f, const char *ns, const char *svc,
				 uint16_t port, const char *client_ns);
/* First status of route kind ns/name for its parentRef #parent, or NULL. */
const struct tr_parent_status *tfx_parent(struct tfx *f, enum gapi_route_kind kind,
					  const char *ns, const char *name, size_t parent);
/* "True:Reason" of a condition, or "absent", in a static buffer. */
const char *tfx_cond(const struct tr_parent_status *p, const char *type);
/*
 * Evaluate "METHOD /target" (method optional: "/x" means GET /x) with
 * headers given as "Name: value" strings; draw picks the backend.
 */
int tfx_eval(const struct tr_class *c, const char *request, const char *const *headers,
	     uint64_t draw, struct ev_result *out);
/* "<status> <backend ns/name:port or ->" in a static buffer: "200 default/b:80". */
const char *tfx_outcome(const struct tr_class *c, const char *request, uint64_t draw);

/*
 * The base cluster of the unit tests. Namespaces app, client, other; in app:
 * Service a (80 http, 81 admin, 9000 grpc, 53/UDP dns), b1, b2, b3 (80 http
 * each, one ready endpoint 10.0.N.1:8080), bempty (no endpoints), headless,
 * ext (ExternalName); in other: Service o (80 http, endpoint 10.0.9.1).
 */
extern const char tfx_base_yaml[];
/* tfx_init + base + yaml + translate; 0 or negative errno. */
int tfx_setup(struct tfx *f, const char *yaml);

#endif
