// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/hashmap.h"
#include "datapath/datapath.h"
#include "agent_env.h"
#include "test_progs.h"

int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int agent_env_init(struct agent_env *ag, const struct lab_env *lab)
{
	char *out = NULL, *k;
	int ret;

	memset(ag, 0, sizeof(*ag));
	snprintf(ag->pin_dir, sizeof(ag->pin_dir), "/sys/fs/bpf/gammad-test-%d", (int)getpid());
	if (!lab->dir[0] || !lab->nr_pods)
		return -EINVAL;
	snprintf(ag->dir, sizeof(ag->dir), "%.*s/agent", PATH_MAX - 16, lab->dir);
	snprintf(ag->tmp, sizeof(ag->tmp), "%s", lab->dir);
	snprintf(ag->log, sizeof(ag->log), "%.*s/agent.log", PATH_MAX - 16, lab->dir);
	/* The hooks go on the lab's cgroup root: a pod cgroup up to its kubepods tree. */
	snprintf(ag->cgroup, sizeof(ag->cgroup), "%s", lab->pods[0].cgroup);
	k = strstr(ag->cgroup, "/kubepods");
	if (!k)
		return -ENOENT;
	*k = 0;
	if (mkdir(ag->dir, 0755) && errno != EEXIST)
		return -errno;
	ret = lab_run_capture(&out, "cp %s/cluster.yaml %s/", lab->out, ag->dir);
	free(out);
	return ret ? -EIO : 0;
}

int agent_env_write(struct agent_env *ag, const char *name, const char *text)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ag->dir, name);
	if (!text)
		return unlink(path) && errno != ENOENT ? -errno : 0;
	/*
	 * Made outside the watched directory and renamed into it: the agent
	 * sees one change, with the whole content (no event for a temp file).
	 */
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", ag->tmp, name);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	len = strlen(text);
	if (fwrite(text, 1, len, f) != len || fclose(f)) {
		unlink(tmp);
		return -EIO;
	}
	return rename(tmp, path) ? -errno : 0;
}

int agent_env_lab_routes(struct agent_env *ag, const struct lab_env *lab, char **text)
{
	char *out = NULL;
	int ret = lab_run_capture(&out, "cat %s/routes.yaml", lab->out) ? -EIO : 0;

	ret = ret ?: agent_env_write(ag, "routes.yaml", out);
	if (!ret && text)
		*text = out;
	else
		free(out);
	return ret;
}

int agent_env_log_count(const struct agent_env *ag, const char *s)
{
	char *line = NULL;
	size_t cap = 0;
	int n = 0;
	FILE *f = fopen(ag->log, "re");

	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0)
		n += strstr(line, s) != NULL;
	free(line);
	fclose(f);
	return n;
}

int agent_env_applied(const struct agent_env *ag)
{
	/* "<time> info  applied DIR in X ms: ..." (user/gammad/cmd_run.c) */
	return agent_env_log_count(ag, " applied ");
}

static bool agent_alive(struct agent_env *ag)
{
	int status;

	if (!ag->pid)
		return false;
	if (waitpid(ag->pid, &status, WNOHANG) == ag->pid) {
		test__printf("agent %d exited: status 0x%x\n", (int)ag->pid, status);
		ag->pid = 0;
		return false;
	}
	return true;
}

int agent_env_wait_applied(struct agent_env *ag, int n, int timeout_ms)
{
	struct timespec ts = { 0, 5 * 1000000L };
	int64_t deadline = mono_us() + timeout_ms * 1000LL;

	for (;;) {
		if (agent_env_applied(ag) >= n) {
			ag->last_applied_us = mono_us();
			return 0;
		}
		if (!agent_alive(ag))
			return agent_env_applied(ag) >= n ? 0 : -ESRCH;
		if (mono_us() > deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

int agent_env_start(struct agent_env *ag)
{
	const char *bin = test_bin(ag->bin ? ag->bin : "gammad");
	int before = agent_env_applied(ag), fd;
	pid_t pid;

	if (access(bin, X_OK))
		return -ENOENT;
	fd = open(ag->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fd);
		return -errno;
	}
	if (!pid) {
		/* The agent must not outlive a test that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		if (ag->join_cgroup) {
			char procs[PATH_MAX + 16];
			int cg;

			snprintf(procs, sizeof(procs), "%s/cgroup.procs", ag->join_cgroup);
			cg = open(procs, O_WRONLY | O_CLOEXEC);
			if (cg < 0 || write(cg, "0\n", 2) != 2)
				_exit(126);
			close(cg);
		}
		char *argv[64] = { "gammad", "run", "--manifests", ag->dir, "--cgroup",
				   ag->cgroup, "--pin-dir", ag->pin_dir };
		int argc = 8;

		for (const char *const *a = ag->args; a && *a && argc < 63; a++)
			argv[argc++] = (char *)*a;
		argv[argc] = NULL;
		execv(bin, argv);
		_exit(127);
	}
	close(fd);
	ag->pid = pid;
	return agent_env_wait_applied(ag, before + 1, AGENT_APPLY_TIMEOUT_MS);
}

int agent_env_update(struct agent_env *ag, const char *name, const char *text)
{
	int before = agent_env_applied(ag), ret;

	ret = agent_env_write(ag, name, text);
	if (ret)
		return ret;
	return agent_env_wait_applied(ag, before + 1, AGENT_APPLY_TIMEOUT_MS);
}

void agent_env_kill(struct agent_env *ag, int sig)
{
	if (!ag->pid)
		return;
	kill(ag->pid, sig);
	if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) {
		waitpid(ag->pid, NULL, 0);
		ag->pid = 0;
	}
}

void agent_env_fini(struct agent_env *ag)
{
	char *out = NULL;

	agent_env_kill(ag, SIGKILL);
	if (ag->pin_dir[0]) {
		char snap[128];

		dp_uninstall(ag->pin_dir);
		/* The agent's image snapshot in the default --state-dir (user/gammad/agent_snap.h). */
		snprintf(snap, sizeof(snap), "/run/gammad/image-%016llx.snap",
			 (unsigned long long)hash_str(ag->pin_dir));
		unlink(snap);
	}
	if (ag->log[0] && !access(ag->log, F_OK)) {
		lab_run_capture(&out, "cat %s", ag->log);
		test__printf("--- agent log\n%s", out ? out : "");
		free(out);
	}
	ag->pin_dir[0] = 0;
	ag->log[0] = 0;
}

/* a map the agent pinned under pin_dir, or a negative value */
static int pinned_map(const char *pin_dir, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

int pinned_kh_counts(const char *pin_dir, uint64_t *served, uint64_t *engine, uint64_t *by)
{
	int nr = libbpf_num_possible_cpus(), fd;

	*served = *engine = 0;
	fd = nr > 0 ? pinned_map(pin_dir, GAMMAD_MAP_KH_STATS) : -1;
	if (fd < 0)
		return -ENOENT;
	for (uint32_t r = 0; r < GAMMAD_KH_R_MAX; r++) {
		uint64_t v[nr], sum = 0;

		if (bpf_map_lookup_elem(fd, &r, v))
			continue;
		for (int c = 0; c < nr; c++)
			sum += v[c];
		if (by)
			by[r] = sum;
		if (r == GAMMAD_KH_R_SERVED)
			*served = sum;
		else if (r != GAMMAD_KH_R_MORE)
			*engine += sum;
	}
	close(fd);
	return 0;
}

long pinned_kh_paired(const char *pin_dir)
{
	int fd = pinned_map(pin_dir, GAMMAD_MAP_KH_SRV_SLOT);
	long n = 0;

	if (fd < 0)
		return -1;
	for (uint32_t s = 0; s < GAMMAD_KH_SLOTS_MAX; s++) {
		uint64_t v = 0;

		if (!bpf_map_lookup_elem(fd, &s, &v) && v)
			n++;
	}
	close(fd);
	return n;
}

long pinned_kh_upstream(const char *pin_dir, uint64_t up)
{
	int fd = pinned_map(pin_dir, GAMMAD_MAP_KH_UPC);
	__u32 slot;
	long ret;

	if (fd < 0)
		return -1;
	ret = bpf_map_lookup_elem(fd, &up, &slot) ? -1 : (long)slot;
	close(fd);
	return ret;
}

long pinned_kh_bound(const char *pin_dir, uint64_t owner, uint64_t *up)
{
	int upc = pinned_map(pin_dir, GAMMAD_MAP_KH_UPC), slots = pinned_map(pin_dir, GAMMAD_MAP_KH_SLOT);
	uint64_t key, next;
	long ret = -1;

	for (void *k = NULL; upc >= 0 && slots >= 0 && ret < 0 && !bpf_map_get_next_key(upc, k, &next);
	     k = &key) {
		struct gammad_kh_slot sv;
		__u32 s;

		key = next;
		if (!bpf_map_lookup_elem(upc, &key, &s) && !bpf_map_lookup_elem(slots, &s, &sv) &&
		    sv.owner == owner) {
			*up = key;
			ret = s;
		}
	}
	if (upc >= 0)
		close(upc);
	if (slots >= 0)
		close(slots);
	return ret;
}

long pinned_entries(const char *pin_dir, const char *name)
{
	int fd = pinned_map(pin_dir, name);
	__u8 key[64], next[64];
	long n = 0;

	if (fd < 0)
		return -1;
	for (void *k = NULL; !bpf_map_get_next_key(fd, k, next); k = key, n++)
		memcpy(key, next, sizeof(key));
	close(fd);
	return n;
}
