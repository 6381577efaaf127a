/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bringing the lab (build/lab) up and down from tests, and running commands
 * in its pods. Labs share host-wide names (glab-* netns and links, the
 * blackhole routes), so test processes take turns through a lock file;
 * lab_env_init() waits for it.
 *
 *	struct lab_env lab;
 *
 *	if (lab_env_start(&lab, manifests))	// skips or fails the test itself
 *		goto cleanup;
 *	pod = lab_env_find(&lab, "ns", "deploy");
 *	lab_env_exec(&lab, pod, &out, "%s client http://%s:8080/", test_bin("echo"), ip);
 * cleanup:
 *	lab_env_fini(&lab);	// always: lab down, unlock, remove the temp dir
 */
#ifndef GAMMAD_TEST_LAB_ENV_H
#define GAMMAD_TEST_LAB_ENV_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#define LAB_ENV_LOCK "/run/gammad-lab.tests.lock"

struct lab_pod_info {
	char ns[64], name[256], owner[256], uid[40];
	char netns[64], veth[16];
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];
	bool ready;
	char cgroup[PATH_MAX];		/* the pod's cgroup */
	char container[64];		/* first container */
	char container_cgroup[PATH_MAX];
	int pid;			/* its echo server */
};

struct lab_env {
	char dir[PATH_MAX];		/* temp dir holding the state dir */
	char state[PATH_MAX];
	char out[PATH_MAX];		/* cluster.yaml, routes.yaml */
	int lock_fd;
	bool up;
	struct lab_pod_info *pods;
	size_t nr_pods;
};

/*
 * Take the test lock and make a temp state dir. -EBUSY: a lab not started
 * by a test is up on this machine (the caller skips); other errors: fail.
 */
int lab_env_init(struct lab_env *lab);
/*
 * The setup every lab test repeats: skip the test (test__skip, returns 1)
 * when not root, when build/echo or build/lab is missing, or when a lab not
 * started by a test is up; lab_env_init (a failure is asserted, returns it);
 * then, unless args is NULL, lab up ARGS, its output printed when it fails.
 * 0: the lab is ready. Whatever it returns, lab_env_fini() is safe to call.
 */
int lab_env_start(struct lab_env *lab, const char *args);
/*
 * The lab most agent tests share: lab_env_start(), then lab up with the
 * mesh conformance manifests (shared/gateway-api/conformance/mesh) and
 * extra_yaml (NULL: none; written as extra.yaml). The test is skipped
 * (returns 1) when the shared manifests or build/gammad are missing; 0: up.
 * Whatever it returns, lab_env_fini() is safe to call.
 */
int lab_env_start_mesh(struct lab_env *lab, const char *extra_yaml);
/* Service ns/name's IPv4 (v6: IPv6) ClusterIP into ip; false (asserted) when it has none. */
bool lab_env_cluster_ip(const struct lab_env *lab, const char *ns, const char *name, bool v6,
			char ip[INET6_ADDRSTRLEN]);
/* ClusterIPs of Service ns/name from cluster.yaml, in order; how many (0: none). */
int lab_env_cluster_ips(const struct lab_env *lab, const char *ns, const char *name,
			char ips[][INET6_ADDRSTRLEN], int max);
/* lab up --state <state> ARGS (a shell-quoted string); exit status, output in *out. */
int lab_env_up(struct lab_env *lab, const char *args, char **out);
/* lab_env_up, asserting it worked (its output shown when not): 0 or the exit status. */
int lab_env_up_checked(struct lab_env *lab, const char *args);
/* Write text as a file of the lab's temp dir; its path in path[PATH_MAX]. 0, or -1 (asserted). */
int lab_env_write(const struct lab_env *lab, const char *name, const char *text, char *path);
/* lab down; exit status, output in *out (may be NULL). */
int lab_env_down(struct lab_env *lab, char **out);
/* Down if up, release the lock, remove the temp dir. Safe to call twice. */
void lab_env_fini(struct lab_env *lab);

/* Re-read the pods from the state file (lab_env_up does it). */
int lab_env_load_pods(struct lab_env *lab);
/* First pod of Deployment `owner` (or the bare Pod named so) in ns, or NULL. */
const struct lab_pod_info *lab_env_find(const struct lab_env *lab, const char *ns,
					const char *owner);
/* Run a shell command line in the pod through `lab exec`; exit status, output in *out. */
int lab_env_exec(struct lab_env *lab, const struct lab_pod_info *pod, char **out,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* sh -c CMD with stdout and stderr captured in *out (malloc'd); exit status or -errno. */
int lab_run_capture(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Remove what `gammad run` pinned under pin_dir and the image snapshot a
 * `--once` keeps for it in the default --state-dir (gammad uninstall does
 * both; dp_uninstall() alone leaves the snapshot behind).
 */
void lab_agent_uninstall(const char *pin_dir);

#endif
