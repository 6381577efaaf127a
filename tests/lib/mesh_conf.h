/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the Gateway API mesh conformance expectations
 * (shared/gateway-api/conformance/mesh-expectations.yaml), shared by the
 * translator-level run (translate_conformance) and the end-to-end one
 * (conformance_mesh): which pod a case's client is, what Service port its
 * host names, the expected status codes and the known upstream slips.
 *
 *	struct ydoc_set set;
 *	const struct ydoc *d;
 *	yaml_node_t *tests;
 *	size_t n = mesh_conf_load(&set, &d, &tests);	// 0: skipped or failed
 *	...
 *	ydoc_set_free(&set);
 */
#ifndef GAMMAD_TEST_MESH_CONF_H
#define GAMMAD_TEST_MESH_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "input/yaml_doc.h"

#define MESH_CONF_DIR "gateway-api/conformance"
#define MESH_CONF_TESTS 22		/* tests in mesh-expectations.yaml */

/*
 * Load the expectations; how many tests (0: the test was skipped, no shared
 * dir, or failed, a failure asserted). On success free the set.
 */
size_t mesh_conf_load(struct ydoc_set *set, const struct ydoc **d, yaml_node_t **tests);

/* The namespace of a client pod of the suite (setup.clients). */
const char *mesh_conf_client_ns(const char *client);
/* The case's client: its own "client" or the test's. */
const char *mesh_conf_case_client(const struct ydoc *d, const yaml_node_t *test,
				  const yaml_node_t *c);
/* Known upstream slips the mesh harness does not check either. */
bool mesh_conf_skip_path_check(const char *test, long index);

struct mesh_conf_target {
	char svc[128], ns[128];
	uint16_t port;
	bool pod;		/* the "<echo-v2 pod IP>" host: a pod, not a Service */
};

/* "echo", "echo-v1:8080", "echo-v1.gateway-conformance-mesh", "<echo-v2 pod IP>:8080" */
void mesh_conf_parse_host(const char *host, const char *client_ns, const char *protocol,
			  long port, struct mesh_conf_target *t);
/* The target of a case's request (request.host, .protocol, .port). */
void mesh_conf_case_target(const struct ydoc *d, const yaml_node_t *req, const char *client_ns,
			   struct mesh_conf_target *t);

/* The scalar at a dotted path, or NULL; as a number, or -1. */
const char *mesh_conf_str(const struct ydoc *d, const yaml_node_t *map, const char *path);
long mesh_conf_int(const struct ydoc *d, const yaml_node_t *map, const char *path);
/* Is status one of expect.status_codes? */
bool mesh_conf_status_expected(const struct ydoc *d, const yaml_node_t *expect, int status);
/* Does the test's features list hold feature? */
bool mesh_conf_has_feature(const struct ydoc *d, const yaml_node_t *test, const char *feature);

struct tfx;
/*
 * Load a test of the suite into f (initialized): the base manifests, one
 * synthesized ready endpoint per Deployment (the suite's pods), the test's
 * manifests; then translate. 0 or negative errno.
 */
int mesh_conf_load_test(struct tfx *f, const struct ydoc *d, const yaml_node_t *test);

#endif
