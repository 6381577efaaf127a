/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the operator-view tests (gammactl, metrics, status file): a
 * small mesh on the data path fixture driven by the real agent (with
 * --no-http-engine: the kernel's L4 view is what these tests read), reading
 * JSON back, and a plain HTTP/1.0 GET over a socket.
 *
 * The scenario (ops_scenario_yaml), on dp_fixture pods A (198.18.1.2) and
 * B (198.18.2.2), port 8080:
 *   app/web     198.19.7.1:80  HTTPRoute app/web-split: /v2 -> web-v2,
 *                              else web-v1 3 : web-v2 1 (L4 union 60/40);
 *                              consumer HTTPRoute client/web-client -> web-v2
 *   app/web-v1  198.19.7.2:80  no route: pod A
 *   app/web-v2  198.19.7.3:80  no route: pod B
 *   app/orphan  198.19.7.4:80  HTTPRoute app/orphan-broken -> app/nosuch
 *                              (unresolved: connections refused)
 *   Pods client/cli and app/srv, whose cgroups the test makes under the
 *   fixture cgroup (OPS_CLI_UID, OPS_SRV_UID).
 */
#ifndef GAMMAD_TEST_OPS_H
#define GAMMAD_TEST_OPS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "input/yaml_doc.h"
#include "lib/dp_fixture.h"

#define OPS_CLI_UID "0a0a0a0a-0000-4000-8000-00000000c11e"
#define OPS_SRV_UID "0a0a0a0a-0000-4000-8000-000000005e7f"

extern const char ops_scenario_yaml[];

struct ops_agent {
	pid_t pid;
	char log[PATH_MAX];
	uint16_t metrics_port;
};

/*
 * gammad run --manifests dir --cgroup cg --pin-dir pin --metrics-addr
 * 127.0.0.1:0 in the background, output in dir/../agent.log; waits for its
 * first "applied" line. 0, or -errno after stopping it.
 */
int ops_agent_start(struct ops_agent *a, const char *dir, const char *cg, const char *pin,
		    const char *log_dir);
void ops_agent_stop(struct ops_agent *a);
/* Lines of the agent's log containing s. */
int ops_agent_log_count(const struct ops_agent *a, const char *s);

/*
 * The whole world of a test: fixture with 2 pods, a temp dir holding
 * manifests/ (the scenario) and agent.log, the pod cgroups of client/cli and
 * app/srv under the fixture cgroup, and the agent running on them.
 */
struct ops_env {
	struct dp_fixture fx;
	bool fx_up;
	char dir[64];
	char manifests[PATH_MAX];
	char cg_cli[PATH_MAX], cg_srv[PATH_MAX];
	struct ops_agent agent;
};

int ops_env_setup(struct ops_env *e);
/* Stop the agent, remove the temp dir, tear the fixture down: every path. */
void ops_env_teardown(struct ops_env *e);

/* hellos from cgroup cg to vip:80; ids[] and ok/fail through *job (caller frees). */
struct hello_job;
struct hello_job *ops_hellos(const char *cg, const char *vip, int n);

/* Write a file (mkdir'd dir must exist). */
int ops_write_file(const char *dir, const char *name, const char *text);

/* GET path from 127.0.0.1:port; *status and *body (malloc'd) set on 0. */
int ops_http_get(uint16_t port, const char *path, int *status, char **body);

/* Parse JSON text into set (one document). */
int ops_json(const char *text, struct ydoc_set *set);
/* Scalar at a dotted path from n (NULL: document root), or NULL. */
const char *ops_jstr(const struct ydoc *d, const yaml_node_t *n, const char *path);
/* Same, as a number (strtod); NAN when absent. */
double ops_jnum(const struct ydoc *d, const yaml_node_t *n, const char *path);

/* The value of a Prometheus sample "name{labels}" in a scrape; -1 when absent. */
double ops_prom_value(const char *scrape, const char *series);

#endif
