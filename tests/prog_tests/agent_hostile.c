// SPDX-License-Identifier: Apache-2.0
/*
 * Issue 17 acceptance, the agent fed hostile input: while a client in the
 * echo-v1 pod opens one connection after another to the echo ClusterIP, one
 * crafted file after another lands in the agent's manifests directory (alias
 * bombs and cycles, an endless-loop apiVersion, 100k nested brackets, invalid
 * UTF-8, duplicate and merge keys, a regex bomb, weights past 2^32, a FIFO, a
 * symlink loop). Each apply must finish within the apply timeout, not one
 * connection may fail or leave its route, and afterwards a route change is
 * still applied and every other Service still served.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_progs.h"
#include "lib/agent_env.h"
#include "lib/lab_env.h"
#include "lib/mesh_client.h"

#define MAX_CONNS 300000

#define ECHO_ROUTE(backend)							\
	"apiVersion: gateway.networking.k8s.io/v1\n"				\
	"kind: HTTPRoute\n"							\
	"metadata: {name: echo-hostile, namespace: " MESH_NS "}\n"		\
	"spec:\n"								\
	"  parentRefs:\n"							\
	"  - {group: \"\", kind: Service, name: echo, port: 80}\n"		\
	"  rules:\n"								\
	"  - backendRefs:\n"							\
	"    - {name: " backend ", port: 80}\n"

/* Hostile files from tests/hostile/, as the attacker would drop them. */
static const char *const fixtures[] = {
	"alias-self-list.yaml", "alias-nested-lists.yaml", "alias-slice.yaml",
	"empty-version.yaml", "dup-keys.yaml", "merge-key.yaml", "nul-name.json",
	"control-chars.yaml", "invalid-utf8.yaml", "regex-nested.yaml",
	"weight-overflow.yaml", "dup-clusterip.yaml",
};

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc(n + 1);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = 0;
			*len = n;
		}
	}
	fclose(f);
	return buf;
}

/* Drop one hostile text into the directory and wait for the agent to apply it. */
static bool feed(struct agent_env *ag, const char *name, const char *text)
{
	int64_t t0 = mono_us();
	int ret = agent_env_update(ag, name, text);

	test__printf("  %s: applied in %lld ms\n", name, (long long)(mono_us() - t0) / 1000);
	return ASSERT_OK(ret, name);
}

static void run(struct lab_env *lab, struct agent_env *ag)
{
	const struct lab_pod_info *v1 = lab_env_find(lab, MESH_NS, "echo-v1");
	const struct lab_pod_info *v2 = lab_env_find(lab, MESH_NS, "echo-v2");
	char ips[2][INET6_ADDRSTRLEN], v2ips[2][INET6_ADDRSTRLEN], path[PATH_MAX + 32], *deep;
	struct mc_place at;
	struct mc_loop l;
	size_t n, errors;

	if (!ASSERT_OK_PTR(v1, "echo-v1") || !ASSERT_OK_PTR(v2, "echo-v2") ||
	    !ASSERT_GE(lab_env_cluster_ips(lab, MESH_NS, "echo", ips, 2), 1, "echo ClusterIP") ||
	    !ASSERT_GE(lab_env_cluster_ips(lab, MESH_NS, "echo-v2", v2ips, 2), 1,
		       "echo-v2 ClusterIP"))
		return;
	at = (struct mc_place){ .cgroup = v1->container_cgroup, .netns = v1->netns };
	if (!ASSERT_OK(mc_loop_start(&l, &at, ips[0], 80, MC_HTTP, MAX_CONNS), "client loop"))
		return;

	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		char name[64], *text;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/tests/hostile/%s", env.src_dir, fixtures[i]);
		text = read_all(path, &len);
		if (!ASSERT_OK_PTR(text, fixtures[i]))
			break;
		snprintf(name, sizeof(name), "zz-%s", fixtures[i]);
		if (!feed(ag, name, text)) {
			free(text);
			break;
		}
		free(text);
	}
	/* 100k nested brackets. */
	deep = malloc(200000);
	if (ASSERT_OK_PTR(deep, "alloc")) {
		int k = snprintf(deep, 200000, "apiVersion: v1\nkind: Service\n"
				 "metadata: {name: deep, namespace: x}\nspec: ");

		memset(deep + k, '[', 100000);
		deep[k + 100000] = '\n';
		deep[k + 100001] = 0;
		feed(ag, "zz-deep.yaml", deep);
		free(deep);
	}
	/* A FIFO (nobody writes it) and a symlink loop, then any change. */
	snprintf(path, sizeof(path), "%s/zz-fifo.yaml", ag->dir);
	ASSERT_OK(mkfifo(path, 0600), "mkfifo");
	snprintf(path, sizeof(path), "%s/zz-loop", ag->dir);
	ASSERT_OK(symlink(".", path), "symlink loop");
	feed(ag, "zz-ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: hostile-extra}\n");

	n = mc_loop_stop(&l);
	errors = mc_count_errors(l.res, n);
	test__printf("  %zu connections during the hostile applies, %zu failed, %zu to echo-v1\n", n,
		     errors, mc_count_pod(l.res, n, v1->name));
	ASSERT_GT(n, 0, "connections made");
	ASSERT_EQ(errors, 0, "no connection failed");
	ASSERT_EQ(mc_count_pod(l.res, n, v1->name), n, "every connection by its route (echo-v1)");
	mc_loop_free(&l);

	/* Still listening: a route change is applied, and another Service is served. */
	if (ASSERT_OK(agent_env_update(ag, "routes.yaml", ECHO_ROUTE("echo-v2")), "route change")) {
		n = mc_run(&l, &at, ips[0], 80, MC_HTTP, 20);
		ASSERT_EQ(mc_count_pod(l.res, n, v2->name), 20, "echo now by echo-v2");
		mc_loop_free(&l);
	}
	n = mc_run(&l, &at, v2ips[0], 80, MC_HTTP, 20);
	ASSERT_EQ(mc_count_errors(l.res, n), 0, "Service echo-v2 served");
	ASSERT_EQ(mc_count_pod(l.res, n, v2->name), 20, "by its own endpoints");
	mc_loop_free(&l);
}

void test_agent_hostile(void)
{
	struct agent_env ag = { 0 };
	struct lab_env lab = { 0 };

	if (lab_env_start_mesh(&lab, NULL))
		goto cleanup;
	if (!ASSERT_OK(agent_env_init(&ag, &lab), "agent manifests dir") ||
	    !ASSERT_OK(agent_env_write(&ag, "routes.yaml", ECHO_ROUTE("echo-v1")), "routes.yaml") ||
	    !ASSERT_OK(agent_env_start(&ag), "gammad run: first apply"))
		goto cleanup;
	run(&lab, &ag);
cleanup:
	agent_env_fini(&ag);
	lab_env_fini(&lab);
}
