/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test API server (tests/lib/kube_apiserver.py) as a child of a test,
 * and gammad agents in Kubernetes mode talking to it.
 *
 *	struct kube_server ks;
 *
 *	kube_server_init(&ks);			// before any goto cleanup
 *	if (!ASSERT_OK(kube_server_start(&ks, NULL), "api server")) goto cleanup;
 *	kube_server_post(&ks, "/_test/load", "{\"yaml\": ...}", NULL);
 * cleanup:
 *	kube_server_stop(&ks);			// kills it, removes its temp dir
 */
#ifndef GAMMAD_TEST_KUBE_ENV_H
#define GAMMAD_TEST_KUBE_ENV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct kube_server {
	pid_t pid;
	uint16_t port, control_port;
	char dir[64];			/* temp dir: kubeconfig, server.log */
	char kubeconfig[PATH_MAX];	/* http://127.0.0.1:port with a bearer token */
	char log[PATH_MAX];
};

void kube_server_init(struct kube_server *ks);
/* Start it (args: more options, e.g. "--no-watch-list"); 0 once it listens. */
int kube_server_start(struct kube_server *ks, const char *args);
void kube_server_stop(struct kube_server *ks);
/*
 * METHOD path on the control port (always up) with a JSON body (or NULL);
 * the HTTP status, the body in *out (malloc'd) when out is not NULL.
 */
int kube_server_req(struct kube_server *ks, const char *method, const char *path,
		    const char *body, char **out);
static inline int kube_server_post(struct kube_server *ks, const char *path, const char *body,
				   char **out)
{
	return kube_server_req(ks, "POST", path, body, out);
}
/* Load multi-document YAML through /_test/load; 0 or -1. */
int kube_server_load_yaml(struct kube_server *ks, const char *yaml);
/* A JSON string literal of s (quotes and escapes), malloc'd. */
char *kube_json_str(const char *s);

struct kube_agent {
	pid_t pid;
	char log[PATH_MAX];
	char pin_dir[PATH_MAX];
};

/*
 * gammad run --kubeconfig ks->kubeconfig --cgroup cg --pin-dir pin
 * --metrics-addr off --no-tc [args...] in the background, output in log;
 * waits for "applied" unless wait_applied is false. 0 or -errno.
 */
int kube_agent_start(struct kube_agent *a, const struct kube_server *ks, const char *cg,
		     const char *pin, const char *log, const char *const *args,
		     bool wait_applied);
/* Lines of the log holding s. */
int kube_agent_count(const struct kube_agent *a, const char *s);
/* Wait until the log holds s at least n times; 0 or -ETIMEDOUT (-ESRCH: exited). */
int kube_agent_wait(struct kube_agent *a, const char *s, int n, int timeout_ms);
void kube_agent_kill(struct kube_agent *a, int sig);
/* Kill, uninstall its pin dir, print its log. */
void kube_agent_fini(struct kube_agent *a);

#endif
