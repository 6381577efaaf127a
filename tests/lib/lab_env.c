// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab_env.h"
#include "test_progs.h"

#define LOCK_WAIT_S 300

static int vrun_capture(char **out, const char *fmt, va_list ap)
{
	char *cmd = NULL, *full = NULL, buf[4096];
	size_t len = 0;
	FILE *p, *o;
	int status, ret;

	if (vasprintf(&cmd, fmt, ap) < 0)
		return -ENOMEM;
	ret = asprintf(&full, "( %s ) 2>&1", cmd);
	free(cmd);
	if (ret < 0)
		return -ENOMEM;
	*out = NULL;
	o = open_memstream(out, &len);
	p = o ? popen(full, "re") : NULL;
	if (!p) {
		ret = -errno;
		if (o)
			fclose(o);
		free(full);
		return ret;
	}
	while ((len = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, len, o);
	status = pclose(p);
	fclose(o);
	if (env.verbose)
		test__printf("$ %s\n%s", full, *out ? *out : "");
	free(full);
	if (status < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int lab_run_capture(char **out, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vrun_capture(out, fmt, ap);
	va_end(ap);
	return ret;
}

static int run_quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_quiet(const char *fmt, ...)
{
	char *out = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vrun_capture(&out, fmt, ap);
	va_end(ap);
	free(out);
	return ret;
}

static bool lab_netns_exist(void)
{
	struct dirent *e;
	bool found = false;
	DIR *d = opendir("/run/netns");

	while (d && (e = readdir(d)))
		found |= !strncmp(e->d_name, "glab-", 5);
	if (d)
		closedir(d);
	return found;
}

static int take_lock(void)
{
	struct timespec ts = { 0, 100 * 1000000L };
	int fd = open(LAB_ENV_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB); i++) {
		if (errno != EWOULDBLOCK || i >= LOCK_WAIT_S * 10) {
			close(fd);
			return -EBUSY;
		}
		nanosleep(&ts, NULL);
	}
	return fd;
}

/*
 * Labs of test runs that crashed: with the lock held no test is using them,
 * so their state dirs under /tmp are taken down and removed.
 */
static void down_stale_test_labs(void)
{
	struct dirent *e;
	DIR *d = opendir("/tmp");

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "gammad-lab-test.", 16))
			continue;
		test__printf("taking down the lab of a crashed test run: /tmp/%s\n", e->d_name);
		run_quiet("%s down --state /tmp/%s/state", test_bin("lab"), e->d_name);
		run_quiet("rm -rf /tmp/%s", e->d_name);
	}
	if (d)
		closedir(d);
}

int lab_env_init(struct lab_env *lab)
{
	memset(lab, 0, sizeof(*lab));
	lab->lock_fd = take_lock();
	if (lab->lock_fd < 0)
		return lab->lock_fd;
	down_stale_test_labs();
	/* Holding the lock, any lab netns belongs to someone outside the tests. */
	if (lab_netns_exist()) {
		test__printf("a lab is up on this machine (netns glab-*); run 'build/lab down'\n");
		close(lab->lock_fd);
		lab->lock_fd = -1;
		return -EBUSY;
	}
	snprintf(lab->dir, sizeof(lab->dir), "/tmp/gammad-lab-test.XXXXXX");
	if (!mkdtemp(lab->dir)) {
		close(lab->lock_fd);
		lab->lock_fd = -1;
		return -errno;
	}
	snprintf(lab->state, sizeof(lab->state), "%.*s/state", PATH_MAX - 16, lab->dir);
	snprintf(lab->out, sizeof(lab->out), "%.*s/manifests", PATH_MAX - 16, lab->state);
	return 0;
}

int lab_env_start(struct lab_env *lab, const char *args)
{
	int ret;

	memset(lab, 0, sizeof(*lab));
	lab->lock_fd = -1;
	if (geteuid()) {
		test__skip("needs root");
		return 1;
	}
	if (access(test_bin("echo"), X_OK) || access(test_bin("lab"), X_OK)) {
		test__skip("build/echo or build/lab not built");
		return 1;
	}
	ret = lab_env_init(lab);
	if (ret == -EBUSY) {
		test__skip("another lab is up on this machine");
		return 1;
	}
	if (!ASSERT_OK(ret, "lab_env_init"))
		return ret;
	return args ? lab_env_up_checked(lab, args) : 0;
}

int lab_env_start_mesh(struct lab_env *lab, const char *extra_yaml)
{
	const char *manifests = test_shared_path("gateway-api/conformance/mesh/manifests.yaml");
	char extra[PATH_MAX], up[2 * PATH_MAX + 8];
	int ret;

	memset(lab, 0, sizeof(*lab));
	lab->lock_fd = -1;
	if (!manifests) {
		test__skip("no shared gateway-api/conformance/mesh/manifests.yaml");
		return 1;
	}
	if (access(test_bin("gammad"), X_OK)) {
		test__skip("build/gammad not built");
		return 1;
	}
	ret = lab_env_start(lab, NULL);
	if (ret)
		return ret;
	if (!extra_yaml)
		return lab_env_up_checked(lab, manifests);
	if (lab_env_write(lab, "extra.yaml", extra_yaml, extra))
		return -1;
	snprintf(up, sizeof(up), "%s %s", manifests, extra);
	return lab_env_up_checked(lab, up);
}

bool lab_env_cluster_ip(const struct lab_env *lab, const char *ns, const char *name, bool v6,
			char ip[INET6_ADDRSTRLEN])
{
	char ips[2][INET6_ADDRSTRLEN];
	int n = lab_env_cluster_ips(lab, ns, name, ips, 2);

	ip[0] = 0;
	for (int i = 0; i < n; i++)
		if (!!strchr(ips[i], ':') == v6)
			memcpy(ip, ips[i], INET6_ADDRSTRLEN);
	if (!ip[0])
		test__printf("no %s ClusterIP for Service %s/%s\n", v6 ? "IPv6" : "IPv4", ns, name);
	return ASSERT_NEQ(ip[0], 0, name);
}

int lab_env_up_checked(struct lab_env *lab, const char *args)
{
	char *out = NULL;
	int ret = lab_env_up(lab, args, &out);

	if (!ASSERT_EQ(ret, 0, "lab up"))
		test__printf("%s", out ? out : "");
	free(out);
	return ret;
}

int lab_env_write(const struct lab_env *lab, const char *name, const char *text, char *path)
{
	FILE *f;

	snprintf(path, PATH_MAX, "%.*s/%s", PATH_MAX - 64, lab->dir, name);
	f = fopen(path, "we");
	if (!ASSERT_OK_PTR(f, name))
		return -1;
	fputs(text, f);
	return ASSERT_OK(fclose(f), name) ? 0 : -1;
}

int lab_env_cluster_ips(const struct lab_env *lab, const char *ns, const char *name,
			char ips[][INET6_ADDRSTRLEN], int max)
{
	char path[PATH_MAX + 16], *line = NULL, kind[64] = "", n[256] = "", s[256] = "";
	bool in_list = false;
	size_t cap = 0;
	int nr = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cluster.yaml", lab->out);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* The lab writes one document per object, in block style (tools/lab/emit_yaml.c). */
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, "---", 3)) {
			if (nr)
				break;
			kind[0] = n[0] = s[0] = 0;
			in_list = false;
		} else if (!strncmp(line, "kind: ", 6)) {
			sscanf(line + 6, "%63s", kind);
		} else if (!strncmp(line, "  name: ", 8) && !n[0]) {
			sscanf(line + 8, "%255s", n);
		} else if (!strncmp(line, "  namespace: ", 13)) {
			sscanf(line + 13, "%255s", s);
		} else if (!strncmp(line, "  clusterIPs:", 13)) {
			in_list = !strcmp(kind, "Service") && !strcmp(n, name) && !strcmp(s, ns);
		} else if (in_list && !strncmp(line, "  - ", 4)) {
			if (nr < max)
				sscanf(line + 4, "%45s", ips[nr++]);
		} else {
			in_list = false;
		}
	}
	free(line);
	fclose(f);
	return nr;
}

int lab_env_up(struct lab_env *lab, const char *args, char **out)
{
	int ret;

	/* Marked up before running: even a failed up is followed by a down. */
	lab->up = true;
	ret = lab_run_capture(out, "%s up --state %s %s", test_bin("lab"), lab->state, args);
	if (!ret)
		lab_env_load_pods(lab);
	return ret;
}

int lab_env_down(struct lab_env *lab, char **out)
{
	char *o = NULL;
	int ret = lab_run_capture(&o, "%s down --state %s", test_bin("lab"), lab->state);

	if (!ret)
		lab->up = false;
	if (out)
		*out = o;
	else
		free(o);
	free(lab->pods);
	lab->pods = NULL;
	lab->nr_pods = 0;
	return ret;
}

void lab_env_fini(struct lab_env *lab)
{
	if (lab->up && lab_env_down(lab, NULL))
		test__printf("lab down failed in cleanup; state %s\n", lab->state);
	free(lab->pods);
	lab->pods = NULL;
	lab->nr_pods = 0;
	if (lab->dir[0])
		run_quiet("rm -rf %s", lab->dir);
	lab->dir[0] = 0;
	if (lab->lock_fd > 0)
		close(lab->lock_fd);
	lab->lock_fd = -1;
}

/* The state file's records: see tools/lab/state.c. */
static void parse_pod(struct lab_pod_info *p, char *line)
{
	char ready[4];

	memset(p, 0, sizeof(*p));
	sscanf(line, "pod\t%63[^\t]\t%255[^\t]\t%255[^\t]\t%39[^\t]\t%63[^\t]\t%15[^\t]\t%45[^\t]\t%45[^\t]\t%3[^\t]\t%4095[^\n]",
	       p->ns, p->name, p->owner, p->uid, p->netns, p->veth, p->ip4, p->ip6, ready,
	       p->cgroup);
	p->ready = ready[0] == '1';
}

static void parse_container(struct lab_env *lab, char *line)
{
	char ns[64], pod[256], name[64], cg[PATH_MAX];
	int pid;

	if (sscanf(line, "container\t%63[^\t]\t%255[^\t]\t%63[^\t]\t%4095[^\t]\t%d", ns, pod,
		   name, cg, &pid) != 5)
		return;
	for (size_t i = 0; i < lab->nr_pods; i++) {
		struct lab_pod_info *p = &lab->pods[i];

		if (strcmp(p->ns, ns) || strcmp(p->name, pod) || p->container[0])
			continue;
		snprintf(p->container, sizeof(p->container), "%s", name);
		snprintf(p->container_cgroup, sizeof(p->container_cgroup), "%s", cg);
		p->pid = pid;
	}
}

int lab_env_load_pods(struct lab_env *lab)
{
	char path[PATH_MAX + 16], *line = NULL;
	size_t cap = 0;
	FILE *f;

	free(lab->pods);
	lab->pods = NULL;
	lab->nr_pods = 0;
	snprintf(path, sizeof(path), "%s/lab.state", lab->state);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, "pod\t", 4)) {
			struct lab_pod_info *pods = realloc(lab->pods, (lab->nr_pods + 1) * sizeof(*pods));

			if (!pods)
				break;
			lab->pods = pods;
			parse_pod(&pods[lab->nr_pods++], line);
		} else if (!strncmp(line, "container\t", 10)) {
			parse_container(lab, line);
		}
	}
	free(line);
	fclose(f);
	return 0;
}

const struct lab_pod_info *lab_env_find(const struct lab_env *lab, const char *ns,
					const char *owner)
{
	for (size_t i = 0; i < lab->nr_pods; i++) {
		const struct lab_pod_info *p = &lab->pods[i];

		if (!strcmp(p->ns, ns) && (!strcmp(p->owner, owner) ||
					   (!strcmp(p->owner, "-") && !strcmp(p->name, owner))))
			return p;
	}
	return NULL;
}

int lab_env_exec(struct lab_env *lab, const struct lab_pod_info *pod, char **out,
		 const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	/* The command goes through sh inside the pod; single quotes must not appear in it. */
	ret = lab_run_capture(out, "%s exec --state %s %s/%s -- sh -c '%s'", test_bin("lab"),
			      lab->state, pod->ns, pod->name, cmd);
	free(cmd);
	return ret;
}

void lab_agent_uninstall(const char *pin_dir)
{
	char *out = NULL;

	if (lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"), pin_dir))
		fprintf(stderr, "gammad uninstall --pin-dir %s: %s\n", pin_dir, out ? out : "");
	free(out);
}
