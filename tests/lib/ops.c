// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_progs.h"
#include "lib/hello.h"
#include "lib/netns.h"
#include "lib/ops.h"

#define SVC(name, ip)								\
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec:\n  clusterIP: " ip "\n  selector: {app: " name "}\n"		\
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
#define SLICE(svc, eps)								\
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"		\
	"metadata: {name: " svc "-1, namespace: app, "				\
	"labels: {kubernetes.io/service-name: " svc "}}\n"			\
	"addressType: IPv4\nendpoints:\n" eps					\
	"ports: [{name: http, port: 8080, protocol: TCP}]\n"
#define EP(ip) "- addresses: [" ip "]\n  conditions: {ready: true}\n"
#define POD(ns, name, uid)							\
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns \
	", uid: " uid "}\nspec:\n  containers: [{name: c, image: echo}]\n"

const char ops_scenario_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: client}\n"
	SVC("web", "198.19.7.1") SVC("web-v1", "198.19.7.2") SVC("web-v2", "198.19.7.3")
	SVC("orphan", "198.19.7.4")
	SLICE("web", EP("198.18.1.2") EP("198.18.2.2"))
	SLICE("web-v1", EP("198.18.1.2"))
	SLICE("web-v2", EP("198.18.2.2"))
	SLICE("orphan", EP("198.18.1.2"))
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: web-split, namespace: app}\n"
	"spec:\n  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
	"  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /v2}}]\n"
	"    backendRefs: [{name: web-v2, port: 80}]\n"
	"  - backendRefs:\n"
	"    - {name: web-v1, port: 80, weight: 3}\n"
	"    - {name: web-v2, port: 80, weight: 1}\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: web-client, namespace: client}\n"
	"spec:\n  parentRefs: [{group: \"\", kind: Service, namespace: app, name: web, port: 80}]\n"
	"  rules:\n  - backendRefs: [{name: web-v2, namespace: app, port: 80}]\n"
	"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	"metadata: {name: orphan-broken, namespace: app}\n"
	"spec:\n  parentRefs: [{group: \"\", kind: Service, name: orphan, port: 80}]\n"
	"  rules:\n  - backendRefs: [{name: nosuch, port: 80}]\n"
	POD("client", "cli", OPS_CLI_UID)
	POD("app", "srv", OPS_SRV_UID);

int ops_write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

int ops_agent_log_count(const struct ops_agent *a, const char *s)
{
	return test_file_count(a->log, s);
}

int ops_agent_start(struct ops_agent *a, const char *dir, const char *cg, const char *pin,
		    const char *log_dir)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	const char *bin = test_bin("gammad");
	char gammad[PATH_MAX];
	int fd;

	memset(a, 0, sizeof(*a));
	snprintf(gammad, sizeof(gammad), "%s", bin);
	snprintf(a->log, sizeof(a->log), "%s/agent.log", log_dir);
	a->pid = fork();
	if (a->pid < 0)
		return -errno;
	if (!a->pid) {
		fd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		/*
		 * The kernel's own counters on purpose (connections per backend
		 * of the L4 union, refusals): no HTTP engine, which would take
		 * the HTTPRoute ports' connections (agent_steer, agent_http).
		 */
		/* Its image snapshot beside the log, removed with the test's directory. */
		execl(gammad, gammad, "run", "--manifests", dir, "--cgroup", cg, "--pin-dir", pin,
		      "--metrics-addr", "127.0.0.1:0", "--no-http-engine", "--state-dir", log_dir,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		char *text;
		int status;

		if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
			a->pid = 0;
			text = test_read_file(a->log);
			test__printf("gammad run exited early:\n%s\n", text ? text : "");
			free(text);
			return -ECHILD;
		}
		text = test_read_file(a->log);
		if (text && strstr(text, " applied ")) {
			char *p = strstr(text, "(port ");

			if (p)
				a->metrics_port = (uint16_t)atoi(p + 6);
			free(text);
			return 0;
		}
		free(text);
		nanosleep(&ts, NULL);
	}
	ops_agent_stop(a);
	return -ETIMEDOUT;
}

void ops_agent_stop(struct ops_agent *a)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int status;

	if (a->pid <= 0)
		return;
	kill(a->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
			a->pid = 0;
			return;
		}
		nanosleep(&ts, NULL);
	}
	kill(a->pid, SIGKILL);
	waitpid(a->pid, &status, 0);
	a->pid = 0;
}

int ops_http_get(uint16_t port, const char *path, int *status, char **body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { 5, 0 };
	char req[512], buf[4096], *all = NULL, *p;
	size_t len = 0;
	ssize_t n;
	FILE *m;
	int fd, err = 0;

	*body = NULL;
	*status = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -EIO;
	}
	m = open_memstream(&all, &len);
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, m);
	if (n < 0)
		err = -errno;
	fclose(m);
	close(fd);
	if (!err && (!all || sscanf(all, "HTTP/1.%*d %d", status) != 1))
		err = -EPROTO;
	p = all ? strstr(all, "\r\n\r\n") : NULL;
	if (!err && p)
		*body = strdup(p + 4);
	free(all);
	return err ? err : (*body ? 0 : -EPROTO);
}

int ops_json(const char *text, struct ydoc_set *set)
{
	struct ydoc_error e = { 0 };
	int err;

	if (!text)
		return -EINVAL;
	err = ydoc_load_buf("json", text, strlen(text), set, &e);
	if (err) {
		test__printf("JSON: %s\n", e.msg);
		return err;
	}
	if (set->nr_docs != 1 || !set->docs[0].root) {
		ydoc_set_free(set);
		return -EINVAL;
	}
	return 0;
}

const char *ops_jstr(const struct ydoc *d, const yaml_node_t *n, const char *path)
{
	const yaml_node_t *v = ymap_path(d, n ? n : d->root, path);

	return v ? ynode_str(v) : NULL;
}

double ops_jnum(const struct ydoc *d, const yaml_node_t *n, const char *path)
{
	const char *s = ops_jstr(d, n, path);

	return s ? strtod(s, NULL) : NAN;
}

double ops_prom_value(const char *scrape, const char *series)
{
	const char *p = scrape;
	size_t len = strlen(series);

	while (p && (p = strstr(p, series))) {
		if ((p == scrape || p[-1] == '\n') && p[len] == ' ')
			return strtod(p + len + 1, NULL);
		p += len;
	}
	return -1;
}

int ops_env_setup(struct ops_env *e)
{
	int err;

	memset(e, 0, sizeof(*e));
	err = fx_setup(&e->fx, 2, false);
	e->fx_up = true;	/* fx_teardown() also undoes a partial setup */
	if (err) {
		test__printf("fixture: %s\n", strerror(-err));
		return err;
	}
	snprintf(e->dir, sizeof(e->dir), "/tmp/gammad-ops-XXXXXX");
	if (!mkdtemp(e->dir)) {
		e->dir[0] = 0;
		return -errno;
	}
	snprintf(e->manifests, sizeof(e->manifests), "%s/manifests", e->dir);
	if (xsnprintf(e->cg_cli, sizeof(e->cg_cli), "%s/pod%s", e->fx.cg, OPS_CLI_UID) ||
	    xsnprintf(e->cg_srv, sizeof(e->cg_srv), "%s/pod%s", e->fx.cg, OPS_SRV_UID))
		return -ENAMETOOLONG;
	if (mkdir(e->manifests, 0755) || mkdir(e->cg_cli, 0755) || mkdir(e->cg_srv, 0755))
		return -errno;
	err = ops_write_file(e->manifests, "scenario.yaml", ops_scenario_yaml);
	if (err)
		return err;
	return ops_agent_start(&e->agent, e->manifests, e->fx.cg, e->fx.pin_dir, e->dir);
}

void ops_env_teardown(struct ops_env *e)
{
	ops_agent_stop(&e->agent);
	if (e->dir[0])
		sys_run("rm -rf '%s'", e->dir);
	if (e->fx_up)
		fx_teardown(&e->fx);	/* also the pod cgroups below its cgroup */
	memset(e, 0, sizeof(*e));
}

struct hello_job *ops_hellos(const char *cg, const char *vip, int n)
{
	struct hello_job *j = hello_job_new(vip, 80, false, n);

	if (!j)
		return NULL;
	j->timeout_ms = 1000;
	if (child_run(cg, NULL, hello_loop, j, 60000)) {
		hello_job_free(j);
		return NULL;
	}
	return j;
}
