/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small random cluster for the control plane's property tests: object
 * slots (Namespaces, Services, one EndpointSlice per Service, routes of
 * three kinds, Pods), each absent or holding a YAML text that cgen_object()
 * draws anew (ClusterIPs shared now and then, producer and consumer
 * routes, weights, ready and unready endpoints).
 */
#ifndef GAMMAD_TEST_CLUSTER_GEN_H
#define GAMMAD_TEST_CLUSTER_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "image/image.h"
#include "input/model.h"

#define CGEN_NS 4
#define CGEN_SVC 12
#define CGEN_ROUTES 10
#define CGEN_PODS 6
/* Object slots: namespaces, Services, one slice per Service, routes, pods. */
#define CGEN_SLOTS (CGEN_NS + 2 * CGEN_SVC + CGEN_ROUTES + CGEN_PODS)

struct cgen {
	uint64_t rng;
	char *text[CGEN_SLOTS];	/* the object's YAML, NULL: absent */
};

uint32_t cgen_rnd(struct cgen *p, uint32_t n);
/* Service i's namespace (fixed: a name is one object). */
const char *cgen_svc_ns(int i);
/* A new version of the object of a slot (malloc'd YAML). */
char *cgen_object(struct cgen *p, int slot);
/* The object of one YAML text as a PUT event. */
int cgen_event(const char *yaml, struct model_event *ev);
/* The DELETE event of a slot's object (name in buf). */
void cgen_delete(int slot, struct model_event *ev, char *name, size_t len);
/* The image of every present object loaded from scratch. */
int cgen_full_image(struct cgen *p, struct img *out);
/* Every present object's YAML, as one malloc'd manifests text. */
char *cgen_all_yaml(const struct cgen *p);
/*
 * What the HTTP engine serves from a translation's ports: their JSON
 * (tr_write_json, statuses left out) and the ev_evaluate() answer of every
 * class to a set of requests and weight draws, as one malloc'd text.
 */
struct tr_result;
char *cgen_tables_dump(const struct tr_result *r);
/* cgen_tables_dump() of a full translation of every present object, or NULL. */
char *cgen_full_tables_dump(struct cgen *p);
/*
 * Whether got equals cgen_full_image() entry by entry (img_diff), the
 * differences printed when not (PIPELINE_DUMP=1: the objects too). keep:
 * receives the full image (the caller frees it), or NULL.
 */
bool cgen_same_image(struct cgen *p, const struct img *got, int step, struct img *keep);

#endif
