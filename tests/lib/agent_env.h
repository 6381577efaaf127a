/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent (build/gammad run) as a long-running child of a lab test: a
 * manifests directory of the test's own (the lab's cluster.yaml plus route
 * files the test writes), a per-test pin dir, the hooks on the lab's cgroup
 * root, and its log in a file the test counts "applied" lines in.
 *
 *	struct agent_env ag;
 *
 *	agent_env_init(&ag, &lab);		// before any goto cleanup
 *	agent_env_write(&ag, "routes.yaml", text);
 *	if (!ASSERT_OK(agent_env_start(&ag), "agent")) goto cleanup;
 *	... agent_env_update(&ag, "routes.yaml", other) ...
 * cleanup:
 *	agent_env_fini(&ag);			// kill -9, gammad uninstall, log shown on failure
 */
#ifndef GAMMAD_TEST_AGENT_ENV_H
#define GAMMAD_TEST_AGENT_ENV_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "lab_env.h"

#define AGENT_APPLY_TIMEOUT_MS 15000

struct agent_env {
	pid_t pid;			/* running agent, 0: none */
	char pin_dir[64];		/* /sys/fs/bpf/gammad-test-<pid> */
	char dir[PATH_MAX];		/* the --manifests directory */
	char tmp[PATH_MAX];		/* beside it, same filesystem: files are made here */
	char cgroup[PATH_MAX];		/* --cgroup: the lab's cgroup root */
	char log[PATH_MAX];		/* stdout and stderr of every agent started */
	int64_t last_applied_us;	/* when the last awaited "applied" line was seen */
	const char *const *args;	/* more gammad run arguments, NULL-terminated (or NULL) */
	const char *bin;		/* the gammad to run, under the build dir; NULL: "gammad" */
	const char *join_cgroup;	/* cgroup directory the agent runs in; NULL: the test's own */
};

/* Paths, pin dir and manifests dir with the lab's cluster.yaml; never fails a test. */
int agent_env_init(struct agent_env *ag, const struct lab_env *lab);
/* Write (or, text NULL, remove) a file of the manifests dir, atomically (rename). */
int agent_env_write(struct agent_env *ag, const char *name, const char *text);
/*
 * The lab's routes.yaml (the HTTPRoutes it wrote beside cluster.yaml) into
 * the manifests dir; text (or NULL): its content, malloc'd.
 */
int agent_env_lab_routes(struct agent_env *ag, const struct lab_env *lab, char **text);
/* Start gammad run and wait for its first "applied" line. */
int agent_env_start(struct agent_env *ag);
/* "applied" lines in the log so far (every agent started counts). */
int agent_env_applied(const struct agent_env *ag);
/* Lines of the agent's log (all its runs) containing s. */
int agent_env_log_count(const struct agent_env *ag, const char *s);
/* Wait until the log holds at least n "applied" lines; -ETIMEDOUT, or -ESRCH if the agent died. */
int agent_env_wait_applied(struct agent_env *ag, int n, int timeout_ms);
/* agent_env_write, then wait for the next "applied" line. */
int agent_env_update(struct agent_env *ag, const char *name, const char *text);
/* Send sig to the agent and reap it. */
void agent_env_kill(struct agent_env *ag, int sig);
/* Kill the agent, uninstall the pin dir, print the log (shown when the test failed). */
void agent_env_fini(struct agent_env *ag);

/* Slots of the kernel HTTP pools paired with a same-node server socket (gammad_khsvs_v1), or -1. */
long pinned_kh_paired(const char *pin_dir);
/*
 * The kernel HTTP upstream slot bound to the client socket with cookie
 * owner (gammad_khslot_v1), through the upstreams in the sockhash
 * (gammad_khupc_v1): the slot, its upstream's cookie in *up; -1: none.
 */
long pinned_kh_bound(const char *pin_dir, uint64_t owner, uint64_t *up);
/* The slot of the upstream with cookie up while it is in the sockhash (gammad_khupc_v1), or -1. */
long pinned_kh_upstream(const char *pin_dir, uint64_t up);
/* Entries of the map pinned as pin_dir/name (keys up to 64 bytes), or -1. */
long pinned_entries(const char *pin_dir, const char *name);

/*
 * The kernel HTTP path's decisions so far (gammad_khst_v1 pinned in
 * pin_dir): requests served in the kernel, and handed to the engine for
 * any reason (a head waited for is no decision); by (NULL or
 * GAMMAD_KH_R_MAX of them): each reason's count. -ENOENT when not pinned.
 */
int pinned_kh_counts(const char *pin_dir, uint64_t *served, uint64_t *engine, uint64_t *by);

/* CLOCK_MONOTONIC in microseconds. */
int64_t mono_us(void);

/* Namespaces of the mesh conformance manifests (shared/gateway-api/conformance/mesh). */
#define MESH_NS "gateway-conformance-mesh"
#define CONSUMER_NS "gateway-conformance-mesh-consumer"

/* The consumer namespace's own route for echo:80 (to echo-v2), with its ReferenceGrant. */
#define CONSUMER_ROUTE_YAML							\
	"apiVersion: gateway.networking.k8s.io/v1\n"				\
	"kind: HTTPRoute\n"							\
	"metadata: {name: echo-consumer, namespace: " CONSUMER_NS "}\n"	\
	"spec:\n"								\
	"  parentRefs:\n"							\
	"  - {group: \"\", kind: Service, name: echo, namespace: " MESH_NS ", port: 80}\n" \
	"  rules:\n"								\
	"  - backendRefs:\n"							\
	"    - {name: echo-v2, namespace: " MESH_NS ", port: 80}\n"		\
	"---\n"								\
	"apiVersion: gateway.networking.k8s.io/v1beta1\n"			\
	"kind: ReferenceGrant\n"						\
	"metadata: {name: consumer-to-echo, namespace: " MESH_NS "}\n"		\
	"spec:\n"								\
	"  from:\n"								\
	"  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: " CONSUMER_NS "}\n" \
	"  to:\n"								\
	"  - {group: \"\", kind: Service}\n"

#endif
