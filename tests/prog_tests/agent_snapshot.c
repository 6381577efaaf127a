// SPDX-License-Identifier: Apache-2.0
/*
 * The image snapshot of `gammad run --once` (user/gammad/agent_snap.h):
 *
 * unchanged: a second --once with nothing changed skips parsing and
 *   translating and writes nothing: every route map holds the same entries
 *   and is the same map (ids) before and after.
 * changed_while_down: a manifest rewritten in place with the same size and
 *   its old mtime (only the content differs) is translated again and the
 *   kernel gets the new endpoint.
 * corrupt / foreign: a damaged snapshot, or one that is not gammad's, is
 *   logged and ignored; the apply translates and the maps are right.
 * uninstall: gammad uninstall removes the snapshot of its pin dir.
 * agent_changed_while_down: the running agent (`gammad run`, which scans
 *   the manifests on a thread while its data path loads) restarted over
 *   its pinned maps after the same in-place edit applies the new endpoint,
 *   and the route status file is there, whole, when "applied" is logged.
 * agent_adopts: the running agent keeps its snapshot too (on SIGTERM); its
 *   restart adopts it ("adopted and serving", nothing written), and the
 *   first full pass after (model, translation, engine tables, pipeline)
 *   finds nothing to write either: same entries, same maps, the status
 *   file left as it was.
 * agent_change_during_build: a manifest changed after the restart adopted,
 *   while it builds the rest (the agent stopped with SIGSTOP meanwhile,
 *   so the change lands before its first full pass is done), is applied.
 * agent_corrupt: a damaged snapshot is logged and ignored by the running
 *   agent too; it translates and the maps are right.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "base/hashmap.h"
#include "gammad/maps.h"
#include "datapath/cgroup.h"

#include "test_progs.h"
#include "lib/lab_env.h"

static const char manifests[] =
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata: {name: snap}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web, namespace: snap}\n"
	"spec:\n"
	"  clusterIP: 10.96.252.10\n"
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: web-1, namespace: snap, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv4\n"
	"endpoints: [{addresses: [10.0.252.1], conditions: {ready: true}}]\n"
	"ports: [{name: http, port: 8080, protocol: TCP}]\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: web-split, namespace: snap}\n"
	"spec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
	"  rules:\n"
	"  - backendRefs: [{name: web, port: 80}]\n";

static const char *const route_maps[] = {
	GAMMAD_MAP_OBJECTS, GAMMAD_MAP_FRONTEND, GAMMAD_MAP_CONSUMER, GAMMAD_MAP_SELECTOR,
	GAMMAD_MAP_ALIAS, GAMMAD_MAP_BACKEND, GAMMAD_MAP_ENDPOINT,
};
#define NR_MAPS (sizeof(route_maps) / sizeof(route_maps[0]))

struct maps_state {
	__u32 ids[NR_MAPS];
	uint64_t digest[NR_MAPS];	/* of every key and value, in any order */
	size_t entries[NR_MAPS];
	bool has_addr;			/* an endpoint value holds want_addr */
};

/* Every entry of the route maps, order-free, and the maps' ids. */
static int read_maps(const char *pin, const unsigned char want_addr[4], struct maps_state *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < NR_MAPS; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		unsigned char key[512], next[512], val[4096];
		char path[256];
		bool first = true;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", pin, route_maps[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			return -1;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.key_size > sizeof(key) ||
		    info.value_size > sizeof(val)) {
			close(fd);
			return -1;
		}
		s->ids[i] = info.id;
		while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
			first = false;
			memcpy(key, next, info.key_size);
			if (bpf_map_lookup_elem(fd, key, val))
				continue;
			s->digest[i] += hash_bytes(val, info.value_size,
						   hash_bytes(key, info.key_size, 0));
			s->entries[i]++;
			if (!strcmp(route_maps[i], GAMMAD_MAP_ENDPOINT) && want_addr &&
			    memmem(val, info.value_size, want_addr, 4))
				s->has_addr = true;
		}
		close(fd);
	}
	return 0;
}

/* Nothing was written: the same maps (ids), entries and contents. */
static void assert_maps_same(const struct maps_state *before, const struct maps_state *after)
{
	for (size_t i = 0; i < NR_MAPS; i++) {
		ASSERT_EQ(after->ids[i], before->ids[i], route_maps[i]);
		ASSERT_EQ(after->entries[i], before->entries[i], route_maps[i]);
		ASSERT_EQ(after->digest[i], before->digest[i], route_maps[i]);
	}
}

struct env {
	char dir[32], state[32], file[64], cg[PATH_MAX + 32], pin[64];
};

static int write_manifest(const char *file, const char *text)
{
	FILE *f = fopen(file, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int env_setup(struct env *e)
{
	char cg2[PATH_MAX];

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/gammad-snap-XXXXXX");
	snprintf(e->state, sizeof(e->state), "/tmp/gammad-snst-XXXXXX");
	snprintf(e->pin, sizeof(e->pin), "/sys/fs/bpf/gammad-snap-%d", (int)getpid());
	if (!mkdtemp(e->dir) || !mkdtemp(e->state))
		return -1;
	snprintf(e->file, sizeof(e->file), "%s/snap.yaml", e->dir);
	if (write_manifest(e->file, manifests) || cgroup2_mount_path(cg2, sizeof(cg2)))
		return -1;
	snprintf(e->cg, sizeof(e->cg), "%s/gammad-snap-%d", cg2, (int)getpid());
	return mkdir(e->cg, 0755);
}

static void env_cleanup(struct env *e)
{
	char *out = NULL, cmd[256];

	lab_run_capture(&out, "%s uninstall --pin-dir %s --state-dir %s", test_bin("gammad"),
			e->pin, e->state);
	free(out);
	rmdir(e->cg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", e->dir, e->state);
	if (e->dir[0] && system(cmd))
		test__printf("cleanup of %s failed\n", e->dir);
}

static int run_once(const struct env *e, char **out)
{
	free(*out);
	*out = NULL;
	return lab_run_capture(out, "%s run --once --no-tc --manifests %s --cgroup %s --pin-dir %s "
			       "--state-dir %s", test_bin("gammad"), e->dir, e->cg, e->pin, e->state);
}

/* The one snapshot file in the state dir, or "" */
static void snap_file(const struct env *e, char *buf, size_t len)
{
	DIR *d = opendir(e->state);
	struct dirent *de;

	buf[0] = '\0';
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "image-", 6) && strstr(de->d_name, ".snap") &&
		    !strstr(de->d_name, ".tmp"))
			snprintf(buf, len, "%s/%s", e->state, de->d_name);
	if (d)
		closedir(d);
}

static const unsigned char addr1[4] = { 10, 0, 252, 1 }, addr2[4] = { 10, 0, 252, 2 };

static void case_unchanged(struct env *e)
{
	struct maps_state before, after;
	char *out = NULL, snap[320];

	if (!ASSERT_EQ(run_once(e, &out), 0, "first --once"))
		goto out;
	snap_file(e, snap, sizeof(snap));
	ASSERT_NEQ(snap[0], '\0', "snapshot written");
	if (!ASSERT_OK(read_maps(e->pin, addr1, &before), "maps before"))
		goto out;
	ASSERT_TRUE(before.has_addr, "endpoint written");
	if (!ASSERT_EQ(run_once(e, &out), 0, "second --once"))
		goto out;
	ASSERT_HAS_SUBSTR(out, "parse and translation skipped", "snapshot used");
	ASSERT_HAS_SUBSTR(out, "(0 flipped, 0 removed), written 0 selectors, 0 backends, "
			  "0 endpoint sets", "nothing written");
	ASSERT_HAS_SUBSTR(out, "0 stale entries retired", "nothing retired");
	if (!ASSERT_OK(read_maps(e->pin, addr1, &after), "maps after"))
		goto out;
	assert_maps_same(&before, &after);
out:
	free(out);
}

static void case_changed_while_down(struct env *e)
{
	struct maps_state s;
	char *out = NULL, *text = strdup(manifests), *at;
	struct stat st;

	if (!ASSERT_OK_PTR(text, "strdup") || !ASSERT_EQ(run_once(e, &out), 0, "first --once"))
		goto out;
	if (!ASSERT_OK(stat(e->file, &st), "stat"))
		goto out;
	/* Same inode, size and mtime: only the content says it changed. */
	at = strstr(text, "10.0.252.1]");
	at[9] = '2';	/* 10.0.252.1 -> 10.0.252.2 */
	{
		int fd = open(e->file, O_WRONLY);
		struct timespec ts[2] = { st.st_atim, st.st_mtim };

		if (!ASSERT_GE(fd, 0, "open") ||
		    !ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text), "rewrite")) {
			if (fd >= 0)
				close(fd);
			goto out;
		}
		ASSERT_OK(futimens(fd, ts), "old mtime");
		close(fd);
	}
	if (!ASSERT_EQ(run_once(e, &out), 0, "--once after the change"))
		goto out;
	ASSERT_HAS_SUBSTR(out, "changed since: translating", "snapshot not used");
	if (!ASSERT_OK(read_maps(e->pin, addr2, &s), "maps"))
		goto out;
	ASSERT_TRUE(s.has_addr, "the new endpoint is in the kernel");
	if (!ASSERT_OK(read_maps(e->pin, addr1, &s), "maps"))
		goto out;
	ASSERT_FALSE(s.has_addr, "the old one is gone");
	/* And the snapshot follows: the next start skips the translation again. */
	if (ASSERT_EQ(run_once(e, &out), 0, "third --once"))
		ASSERT_HAS_SUBSTR(out, "parse and translation skipped", "new snapshot used");
out:
	free(text);
	free(out);
}

/* Lines of the file containing s. */
static int log_count(const char *path, const char *s)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, s) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* The running agent in the background, its output appended to log; 0 on failure. */
static pid_t agent_start(const struct env *e, const char *log)
{
	pid_t pid = fork();

	if (pid)
		return pid < 0 ? 0 : pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0)
		_exit(126);
	dup2(fd, 1);
	dup2(fd, 2);
	/* Not the lab lock's fd (flock(1) passes it as 3), nor anything else of ours. */
	for (int i = 3; i < 1024; i++)
		close(i);
	execl(test_bin("gammad"), "gammad", "run", "--no-tc", "--metrics-addr", "off",
	      "--manifests", e->dir, "--cgroup", e->cg, "--pin-dir", e->pin, "--state-dir",
	      e->state, (char *)NULL);
	_exit(127);
}

/* Until log holds n "applied" lines: 0, or -1 (the agent died, or 20 s). */
static int agent_wait_applied(const char *log, int n, pid_t pid)
{
	for (int i = 0; i < 2000; i++) {
		if (log_count(log, "info  applied") >= n)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static void agent_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* The manifest rewritten in place: same size, same mtime, 10.0.252.1 -> 10.0.252.2. */
static int rewrite_endpoint(const struct env *e)
{
	char *text = strdup(manifests), *at;
	struct stat st;
	int fd, ret = -1;

	if (!text || stat(e->file, &st))
		goto out;
	at = strstr(text, "10.0.252.1]");
	at[9] = '2';
	fd = open(e->file, O_WRONLY);
	if (fd < 0)
		goto out;
	if (write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
	    !futimens(fd, (struct timespec[2]){ st.st_atim, st.st_mtim }))
		ret = 0;
	close(fd);
out:
	free(text);
	return ret;
}

static void case_agent_changed_while_down(struct env *e)
{
	char log[96], status[96];
	struct maps_state s;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/agent.log", e->state);
	snprintf(status, sizeof(status), "%s/.gammad-status.json", e->dir);
	pid = agent_start(e, log);
	if (!ASSERT_GT(pid, 0, "start") || !ASSERT_OK(agent_wait_applied(log, 1, pid), "applied"))
		goto out;
	agent_stop(pid);
	pid = 0;
	if (!ASSERT_OK(read_maps(e->pin, addr1, &s), "maps") ||
	    !ASSERT_TRUE(s.has_addr, "first endpoint") ||
	    !ASSERT_OK(rewrite_endpoint(e), "rewrite while down"))
		goto out;
	unlink(status);
	pid = agent_start(e, log);
	if (!ASSERT_GT(pid, 0, "restart") ||
	    !ASSERT_OK(agent_wait_applied(log, 2, pid), "restarted agent applied"))
		goto out;
	ASSERT_EQ(log_count(log, "adopted the data path"), 1, "restart adopted the pinned maps");
	if (ASSERT_OK(read_maps(e->pin, addr2, &s), "maps"))
		ASSERT_TRUE(s.has_addr, "the new endpoint is in the kernel");
	if (ASSERT_OK(read_maps(e->pin, addr1, &s), "maps"))
		ASSERT_FALSE(s.has_addr, "the old one is gone");
	/* Written before "applied", by rename: whole JSON. */
	{
		FILE *f = fopen(status, "r");
		char buf[8192] = "";
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		ASSERT_GT(n, 0, "status file written");
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			n--;
		ASSERT_TRUE(n && buf[0] == '{' && buf[n - 1] == '}', "status file whole");
	}
out:
	agent_stop(pid);
	{
		char *text = NULL;

		lab_run_capture(&text, "cat %s", log);	/* printed on failure */
		test__printf("agent log:\n%s\n", text ? text : "");
		free(text);
	}
}

/* The last line of the file containing s, into buf ("" when none). */
static void log_last(const char *path, const char *s, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[4096];

	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, s))
			snprintf(buf, len, "%s", line);
	if (f)
		fclose(f);
}

static void print_log(const char *log)
{
	char *text = NULL;

	lab_run_capture(&text, "cat %s", log);	/* printed on failure */
	test__printf("agent log:\n%s\n", text ? text : "");
	free(text);
}

#define NOTHING_WRITTEN "(0 flipped, 0 removed), written 0 selectors, 0 backends, 0 endpoint sets"

/* Started, applied once, stopped with SIGTERM (which keeps the snapshot): 0 or -1. */
static int agent_run_once(const struct env *e, const char *log)
{
	pid_t pid = agent_start(e, log);
	int ret = pid > 0 ? agent_wait_applied(log, log_count(log, "info  applied") + 1, pid) : -1;

	agent_stop(pid);
	return ret;
}

static void case_agent_adopts(struct env *e)
{
	char log[96], status[96], line[4096], snap[320];
	struct maps_state before, after;
	struct stat st0, st1;
	pid_t pid = 0;

	snprintf(log, sizeof(log), "%s/agent.log", e->state);
	snprintf(status, sizeof(status), "%s/.gammad-status.json", e->dir);
	if (!ASSERT_OK(agent_run_once(e, log), "first agent"))
		goto out;
	snap_file(e, snap, sizeof(snap));
	if (!ASSERT_NEQ(snap[0], '\0', "the running agent kept a snapshot") ||
	    !ASSERT_OK(read_maps(e->pin, addr1, &before), "maps before") ||
	    !ASSERT_OK(stat(status, &st0), "status file"))
		goto out;
	pid = agent_start(e, log);
	if (!ASSERT_GT(pid, 0, "restart") ||
	    !ASSERT_OK(agent_wait_applied(log, 2, pid), "restarted agent applied"))
		goto out;
	log_last(log, "adopted and serving", line, sizeof(line));
	ASSERT_HAS_SUBSTR(line, NOTHING_WRITTEN, "adopted: nothing written");
	ASSERT_HAS_SUBSTR(line, "0 stale entries retired", "adopted: nothing retired");
	log_last(log, "info  applied", line, sizeof(line));
	ASSERT_HAS_SUBSTR(line, NOTHING_WRITTEN, "first full pass: nothing written");
	ASSERT_HAS_SUBSTR(line, "0 stale entries retired", "first full pass: nothing retired");
	if (!ASSERT_OK(read_maps(e->pin, addr1, &after), "maps after"))
		goto out;
	assert_maps_same(&before, &after);
	if (ASSERT_OK(stat(status, &st1), "status file after")) {
		ASSERT_EQ(st1.st_ino, st0.st_ino, "status file not rewritten");
		ASSERT_EQ(st1.st_mtim.tv_nsec, st0.st_mtim.tv_nsec, "status file not rewritten");
	}
	/* And once more: the snapshot still stands for the manifests. */
	agent_stop(pid);
	pid = agent_start(e, log);
	if (ASSERT_GT(pid, 0, "second restart") &&
	    ASSERT_OK(agent_wait_applied(log, 3, pid), "second restart applied"))
		ASSERT_EQ(log_count(log, "adopted and serving"), 2, "adopted again");
out:
	agent_stop(pid);
	print_log(log);
}

/* Bulk for the first full pass to chew on: n Services with an endpoint and a route each. */
static int write_bulk(const struct env *e, int n)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "%s/bulk.yaml", e->dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (int i = 0; i < n; i++)
		fprintf(f, "---\napiVersion: v1\nkind: Service\n"
			"metadata: {name: bulk-%d, namespace: snap}\n"
			"spec: {clusterIP: 10.97.%d.%d, ports: [{name: http, port: 80, "
			"targetPort: 8080}]}\n"
			"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: bulk-%d-1, namespace: snap, labels: "
			"{kubernetes.io/service-name: bulk-%d}}\n"
			"addressType: IPv4\n"
			"endpoints: [{addresses: [10.1.%d.%d], conditions: {ready: true}}]\n"
			"ports: [{name: http, port: 8080, protocol: TCP}]\n"
			"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
			"metadata: {name: bulk-%d, namespace: snap}\n"
			"spec:\n  parentRefs: [{group: \"\", kind: Service, name: bulk-%d, port: 80}]\n"
			"  rules:\n  - backendRefs: [{name: bulk-%d, port: 80}]\n",
			i, i / 250, i % 250 + 1, i, i, i / 250, i % 250 + 1, i, i, i);
	return fclose(f);
}

/* The manifest with 10.0.252.2, renamed into place (a new inode: an editor's save). */
static int replace_endpoint(const struct env *e)
{
	char *text = strdup(manifests), tmp[96];
	int ret;

	if (!text)
		return -1;
	strstr(text, "10.0.252.1]")[9] = '2';
	snprintf(tmp, sizeof(tmp), "%s/snap.yaml.tmp", e->state);	/* same filesystem */
	ret = write_manifest(tmp, text) || rename(tmp, e->file) ? -1 : 0;
	free(text);
	return ret;
}

static void case_agent_change_during_build(struct env *e)
{
	char log[96];
	struct maps_state s;
	bool stopped = false;
	pid_t pid = 0;
	int applied;

	snprintf(log, sizeof(log), "%s/agent.log", e->state);
	if (!ASSERT_OK(write_bulk(e, 2000), "bulk manifests") ||
	    !ASSERT_OK(agent_run_once(e, log), "first agent"))
		goto out;
	applied = log_count(log, "info  applied");
	pid = agent_start(e, log);
	if (!ASSERT_GT(pid, 0, "restart"))
		goto out;
	/* Stopped as soon as it says it serves the adopted state: the rest is being built. */
	for (int i = 0; i < 20000 && !stopped; i++) {
		if (log_count(log, "adopted and serving")) {
			stopped = !kill(pid, SIGSTOP);
			break;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		usleep(1000);
	}
	if (!ASSERT_TRUE(stopped, "adopted"))
		goto out;
	/* Whether the first full pass was still under way when the change came. */
	test__printf("change during the build: %s\n", log_count(log, "info  applied") == applied ?
		     "yes (no applied line yet)" : "no (the build was done already)");
	if (!ASSERT_OK(replace_endpoint(e), "change"))
		goto out;
	kill(pid, SIGCONT);
	/* Applied by the first full pass, or by the commit after it. */
	for (int i = 0; i < 2000; i++) {
		if (!read_maps(e->pin, addr2, &s) && s.has_addr)
			break;
		usleep(10000);
	}
	ASSERT_TRUE(s.has_addr, "the new endpoint is in the kernel");
	if (ASSERT_OK(read_maps(e->pin, addr1, &s), "maps"))
		ASSERT_FALSE(s.has_addr, "the old one is gone");
	/* Written once: a new endpoint set, the backend publishing it (logged after the maps). */
	for (int i = 0; i < 500 && !log_count(log, "written 0 selectors, 1 backends, 1 endpoint sets");
	     i++)
		usleep(10000);
	ASSERT_EQ(log_count(log, "written 0 selectors, 1 backends, 1 endpoint sets"), 1,
		  "an apply after the restart wrote the change");
out:
	if (pid > 0)
		kill(pid, SIGCONT);
	agent_stop(pid);
	print_log(log);
}

static void case_agent_corrupt(struct env *e)
{
	char log[96], snap[320];
	struct maps_state s;
	pid_t pid = 0;
	int fd;

	snprintf(log, sizeof(log), "%s/agent.log", e->state);
	if (!ASSERT_OK(agent_run_once(e, log), "first agent"))
		goto out;
	snap_file(e, snap, sizeof(snap));
	fd = open(snap, O_RDWR);
	if (!ASSERT_GE(fd, 0, "open snapshot"))
		goto out;
	{
		struct stat st;
		unsigned char b = 0;

		if (!fstat(fd, &st) && pread(fd, &b, 1, st.st_size / 2) == 1) {
			b ^= 0x40;
			ASSERT_EQ(pwrite(fd, &b, 1, st.st_size / 2), 1, "damaged");
		}
		close(fd);
	}
	pid = agent_start(e, log);
	if (!ASSERT_GT(pid, 0, "restart") ||
	    !ASSERT_OK(agent_wait_applied(log, 2, pid), "restarted agent applied"))
		goto out;
	ASSERT_EQ(log_count(log, "corrupt, truncated or not gammad's: ignored"), 1, "logged");
	ASSERT_EQ(log_count(log, "adopted and serving"), 0, "not adopted");
	if (ASSERT_OK(read_maps(e->pin, addr1, &s), "maps"))
		ASSERT_TRUE(s.has_addr, "the endpoint is in the kernel");
out:
	agent_stop(pid);
	print_log(log);
}

/* how: 0 flips a byte in the middle, 1 cuts the file, 2 replaces it with another file. */
static void case_damaged(struct env *e, int how)
{
	struct maps_state s;
	char *out = NULL, snap[320];

	if (!ASSERT_EQ(run_once(e, &out), 0, "first --once"))
		goto out;
	snap_file(e, snap, sizeof(snap));
	if (!ASSERT_NEQ(snap[0], '\0', "snapshot written"))
		goto out;
	/* A fresh pin dir: the damaged snapshot is all that would say what to write. */
	free(out);
	out = NULL;
	lab_run_capture(&out, "%s uninstall --pin-dir %s --state-dir /nonexistent",
			test_bin("gammad"), e->pin);
	if (how == 0) {
		int fd = open(snap, O_RDWR);
		struct stat st;
		unsigned char b;

		if (!ASSERT_GE(fd, 0, "open snapshot") || !ASSERT_OK(fstat(fd, &st), "fstat")) {
			if (fd >= 0)
				close(fd);
			goto out;
		}
		ASSERT_EQ(pread(fd, &b, 1, st.st_size / 2), 1, "read");
		b ^= 0x40;
		ASSERT_EQ(pwrite(fd, &b, 1, st.st_size / 2), 1, "write");
		close(fd);
	} else if (how == 1) {
		ASSERT_OK(truncate(snap, 100), "truncate");
	} else {
		ASSERT_OK(write_manifest(snap, manifests), "foreign file");
	}
	if (!ASSERT_EQ(run_once(e, &out), 0, "--once over the damaged snapshot"))
		goto out;
	ASSERT_HAS_SUBSTR(out, "corrupt, truncated or not gammad's: ignored", "logged");
	ASSERT_NULL(strstr(out, "parse and translation skipped"), "not used");
	if (ASSERT_OK(read_maps(e->pin, addr1, &s), "maps"))
		ASSERT_TRUE(s.has_addr, "the endpoint is in the kernel");
	if (ASSERT_EQ(run_once(e, &out), 0, "--once again"))
		ASSERT_HAS_SUBSTR(out, "parse and translation skipped", "a good one replaced it");
out:
	free(out);
}

static void case_uninstall(struct env *e)
{
	char *out = NULL, snap[320];

	if (!ASSERT_EQ(run_once(e, &out), 0, "--once"))
		goto out;
	snap_file(e, snap, sizeof(snap));
	ASSERT_NEQ(snap[0], '\0', "snapshot written");
	free(out);
	out = NULL;
	ASSERT_EQ(lab_run_capture(&out, "%s uninstall --pin-dir %s --state-dir %s",
				  test_bin("gammad"), e->pin, e->state), 0, "uninstall");
	snap_file(e, snap, sizeof(snap));
	ASSERT_EQ(snap[0], '\0', "snapshot removed");
out:
	free(out);
}

void test_agent_snapshot(void)
{
	static const struct {
		const char *name;
		void (*fn)(struct env *e, int how);
		int how;
	} cases[] = {
		{ "unchanged", NULL, 0 },
		{ "changed_while_down", NULL, 1 },
		{ "corrupt", case_damaged, 0 },
		{ "truncated", case_damaged, 1 },
		{ "foreign", case_damaged, 2 },
		{ "uninstall", NULL, 3 },
		{ "agent_changed_while_down", NULL, 4 },
		{ "agent_adopts", NULL, 5 },
		{ "agent_change_during_build", NULL, 6 },
		{ "agent_corrupt", NULL, 7 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env e;

		if (!test__start_subtest(cases[i].name))
			continue;
		if (!ASSERT_OK(env_setup(&e), "setup")) {
			env_cleanup(&e);
			continue;
		}
		if (cases[i].fn)
			cases[i].fn(&e, cases[i].how);
		else if (cases[i].how == 0)
			case_unchanged(&e);
		else if (cases[i].how == 1)
			case_changed_while_down(&e);
		else if (cases[i].how == 4)
			case_agent_changed_while_down(&e);
		else if (cases[i].how == 5)
			case_agent_adopts(&e);
		else if (cases[i].how == 6)
			case_agent_change_during_build(&e);
		else if (cases[i].how == 7)
			case_agent_corrupt(&e);
		else
			case_uninstall(&e);
		env_cleanup(&e);
	}
}
