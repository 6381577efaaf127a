// SPDX-License-Identifier: Apache-2.0
/* The test API server and Kubernetes-mode agents: see kube_env.h. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datapath/datapath.h"
#include "lib/kube_env.h"
#include "lib/netns.h"
#include "test_progs.h"

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A port nobody listens on now (the kernel's pick; a race we accept in tests). */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

void kube_server_init(struct kube_server *ks)
{
	memset(ks, 0, sizeof(*ks));
}

int kube_server_start(struct kube_server *ks, const char *args)
{
	char cmd[PATH_MAX * 2];
	FILE *f;

	snprintf(ks->dir, sizeof(ks->dir), "/tmp/gammad-kube-XXXXXX");
	if (!mkdtemp(ks->dir)) {
		ks->dir[0] = 0;
		return -errno;
	}
	snprintf(ks->log, sizeof(ks->log), "%s/server.log", ks->dir);
	snprintf(ks->kubeconfig, sizeof(ks->kubeconfig), "%s/kubeconfig", ks->dir);
	ks->port = free_port();
	ks->control_port = free_port();
	if (!ks->port || !ks->control_port || ks->port == ks->control_port)
		return -EADDRINUSE;
	f = fopen(ks->kubeconfig, "w");
	if (!f)
		return -errno;
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
		"clusters:\n- name: test\n  cluster: {server: \"http://127.0.0.1:%u\"}\n"
		"users:\n- name: agent\n  user: {token: test-token}\n"
		"contexts:\n- name: test\n  context: {cluster: test, user: agent, "
		"namespace: kube-system}\n", ks->port);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "exec python3 %s --port %u --control-port %u %s",
		 test_bin("../tests/lib/kube_apiserver.py"), ks->port, ks->control_port,
		 args ? args : "");
	ks->pid = fork();
	if (ks->pid < 0) {
		ks->pid = 0;
		return -errno;
	}
	if (!ks->pid) {
		int fd = open(ks->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		char *text = test_read_file(ks->log);
		bool ready = text && strstr(text, "ready on");

		free(text);
		if (ready)
			return 0;
		if (waitpid(ks->pid, NULL, WNOHANG) == ks->pid) {
			ks->pid = 0;
			break;
		}
		nap_ms(50);
	}
	{
		char *text = test_read_file(ks->log);

		test__printf("kube_apiserver did not start:\n%s\n", text ? text : "");
		free(text);
	}
	return -ECHILD;
}

void kube_server_stop(struct kube_server *ks)
{
	if (ks->pid) {
		kill(ks->pid, SIGKILL);
		waitpid(ks->pid, NULL, 0);
		ks->pid = 0;
	}
	if (ks->dir[0])
		sys_run("rm -rf '%s'", ks->dir);
	ks->dir[0] = 0;
}

struct sink {
	char *buf;
	size_t len;
};

static size_t sink_write(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	char *b = realloc(s->buf, s->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + s->len, data, size * n);
	s->len += size * n;
	b[s->len] = 0;
	s->buf = b;
	return size * n;
}

int kube_server_req(struct kube_server *ks, const char *method, const char *path,
		    const char *body, char **out)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct sink s = { 0 };
	char url[512];
	long status = 0;
	CURL *h = curl_easy_init();
	CURLcode rc;

	if (!h)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", ks->control_port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (rc) {
		free(s.buf);
		return -EIO;
	}
	if (out)
		*out = s.buf;
	else
		free(s.buf);
	return (int)status;
}

char *kube_json_str(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(6 * n + 3), *p = out;

	if (!out)
		return NULL;
	*p++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p += sprintf(p, "\\u%04x", c);
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	*p = 0;
	return out;
}

int kube_server_load_yaml(struct kube_server *ks, const char *yaml)
{
	char *lit = kube_json_str(yaml), *body = NULL;
	int status;

	if (!lit || asprintf(&body, "{\"yaml\": %s}", lit) < 0) {
		free(lit);
		return -1;
	}
	status = kube_server_post(ks, "/_test/load", body, NULL);
	free(lit);
	free(body);
	return status == 200 ? 0 : -1;
}

int kube_agent_start(struct kube_agent *a, const struct kube_server *ks, const char *cg,
		     const char *pin, const char *log, const char *const *args,
		     bool wait_applied)
{
	int fd;

	memset(a, 0, sizeof(*a));
	snprintf(a->log, sizeof(a->log), "%s", log);
	snprintf(a->pin_dir, sizeof(a->pin_dir), "%s", pin);
	fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	a->pid = fork();
	if (a->pid < 0) {
		a->pid = 0;
		close(fd);
		return -errno;
	}
	if (!a->pid) {
		char *argv[64] = { "gammad", "run", "--kubeconfig", (char *)ks->kubeconfig,
				   "--cgroup", (char *)cg, "--pin-dir", (char *)pin,
				   "--metrics-addr", "off", "--no-tc" };
		int argc = 11;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		for (const char *const *p = args; p && *p && argc < 63; p++)
			argv[argc++] = (char *)*p;
		argv[argc] = NULL;
		execv(test_bin("gammad"), argv);
		_exit(127);
	}
	close(fd);
	if (!wait_applied)
		return 0;
	return kube_agent_wait(a, " applied ", 1, 20000);
}

int kube_agent_count(const struct kube_agent *a, const char *s)
{
	return test_file_count(a->log, s);
}

int kube_agent_wait(struct kube_agent *a, const char *s, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (kube_agent_count(a, s) >= n)
			return 0;
		if (a->pid && waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = 0;
			return kube_agent_count(a, s) >= n ? 0 : -ESRCH;
		}
		nap_ms(20);
	}
	return -ETIMEDOUT;
}

void kube_agent_kill(struct kube_agent *a, int sig)
{
	if (!a->pid)
		return;
	kill(a->pid, sig);
	waitpid(a->pid, NULL, 0);
	a->pid = 0;
}

void kube_agent_fini(struct kube_agent *a)
{
	char *text;

	kube_agent_kill(a, SIGKILL);
	if (a->pin_dir[0])
		dp_uninstall(a->pin_dir);
	text = a->log[0] ? test_read_file(a->log) : NULL;
	if (text)
		test__printf("--- agent log %s\n%s", a->log, text);
	free(text);
	a->pin_dir[0] = 0;
}
