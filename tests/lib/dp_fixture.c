// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "datapath/cgroup.h"
#include "test_progs.h"
#include "netns.h"
#include "id_server.h"
#include "dp_fixture.h"

#define CG_STEM "gammad-test-"
#define PIN_STEM "/sys/fs/bpf/gammad-test-"

static bool pid_dead(const char *digits)
{
	long pid = strtol(digits, NULL, 10);

	return pid <= 0 || (kill(pid, 0) && errno == ESRCH);
}

/* Remove a test cgroup and its children (they hold no process any more). */
static void cgroup_remove(const char *path)
{
	char sub[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		xsnprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		cgroup_remove(sub);
	}
	closedir(d);
	if (rmdir(path) && errno != ENOENT)
		test__printf("rmdir %s: %s\n", path, strerror(errno));
}

static void cleanup_stale(const char *cg2)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	netns_cleanup_stale(FX_NETNS_STEM);
	d = opendir(cg2);
	while (d && (e = readdir(d))) {
		if (!strncmp(e->d_name, CG_STEM, strlen(CG_STEM)) &&
		    pid_dead(e->d_name + strlen(CG_STEM))) {
			xsnprintf(path, sizeof(path), "%s/%s", cg2, e->d_name);
			cgroup_remove(path);
		}
	}
	if (d)
		closedir(d);
	d = opendir("/sys/fs/bpf");
	while (d && (e = readdir(d))) {
		const char *stem = PIN_STEM + strlen("/sys/fs/bpf/");

		if (!strncmp(e->d_name, stem, strlen(stem)) &&
		    pid_dead(e->d_name + strlen(stem))) {
			xsnprintf(path, sizeof(path), "/sys/fs/bpf/%s", e->d_name);
			dp_uninstall(path);
		}
	}
	if (d)
		closedir(d);
}

static int pod_setup(struct dp_fixture *fx, int i, bool servers_in_cgroup)
{
	struct fx_pod *p = &fx->pods[i];
	char host_if[16], a4[40], a6[64], h4[40], h6[64];
	struct veth_end host, pod;
	int err;

	xsnprintf(p->netns, sizeof(p->netns), "%s-p%d", fx->prefix, i);
	xsnprintf(host_if, sizeof(host_if), "%sh%d", fx->prefix, i);
	xsnprintf(p->ip4, sizeof(p->ip4), "198.18.%d.2", i + 1);
	xsnprintf(p->ip6, sizeof(p->ip6), "fd00:18:%d::2", i + 1);
	xsnprintf(a4, sizeof(a4), "%s/24", p->ip4);
	xsnprintf(a6, sizeof(a6), "%s/64", p->ip6);
	xsnprintf(h4, sizeof(h4), "198.18.%d.1/24", i + 1);
	xsnprintf(h6, sizeof(h6), "fd00:18:%d::1/64", i + 1);
	host = (struct veth_end){ NULL, host_if, h4, h6 };
	pod = (struct veth_end){ p->netns, "eth0", a4, a6 };
	err = netns_add(p->netns);
	if (!err)
		err = veth_pair_add(&host, &pod);
	if (err)
		return err;
	p->id = 'A' + i;
	p->server = id_server_start(p->netns, servers_in_cgroup ? fx->cg : NULL, FX_PORT, p->id);
	return p->server < 0 ? (int)p->server : 0;
}

int fx_dp_open(struct dp_fixture *fx, struct dp **dp)
{
	struct dp_opts o = {
		.pin_dir = fx->pin_dir,
		.cgroup = fx->cg,
		.sizes = { .frontends = 256, .selectors = 1024, .backends = 1024,
			   .svc_ports = 64, .routes = 1024 },
		.sockmap_cap = fx->sockmap_cap,
		.sock_redirect = fx->sock_redirect,
	};

	return dp_open(&o, dp);
}

int fx_dp_reopen(struct dp_fixture *fx)
{
	dp_close(fx->dp);
	fx->dp = NULL;
	return fx_dp_open(fx, &fx->dp);
}

int fx_setup(struct dp_fixture *fx, int nr_pods, bool servers_in_cgroup)
{
	char cg2[PATH_MAX];
	int err;

	memset(fx, 0, sizeof(*fx));
	err = cgroup2_mount_path(cg2, sizeof(cg2));
	if (err)
		return err;
	cleanup_stale(cg2);
	/*
	 * A letter per fixture of this process: a deleted netns takes its
	 * veths down asynchronously, so the next fixture must not need the
	 * same link names at once.
	 */
	static int seq;

	xsnprintf(fx->prefix, sizeof(fx->prefix), FX_NETNS_STEM "%d%c", getpid(),
		  'a' + seq++ % 26);
	xsnprintf(fx->cg, sizeof(fx->cg), "%s/" CG_STEM "%d", cg2, getpid());
	xsnprintf(fx->cg_nsx, sizeof(fx->cg_nsx), "%s/nsx", fx->cg);
	xsnprintf(fx->pin_dir, sizeof(fx->pin_dir), PIN_STEM "%d", getpid());
	if (mkdir(fx->cg, 0755) || mkdir(fx->cg_nsx, 0755))
		return -errno;
	err = dp_cgroup_id(fx->cg_nsx, &fx->cg_nsx_id);
	if (err)
		return err;
	fx->blackholes = true;
	if (sys_run("ip route replace blackhole " FX_VIP4_NET) ||
	    sys_run("ip -6 route replace blackhole " FX_VIP6_NET))
		return -EIO;
	fx->nr_pods = nr_pods;
	for (int i = 0; i < nr_pods; i++) {
		err = pod_setup(fx, i, servers_in_cgroup);
		if (err)
			return err;
	}
	return fx_dp_open(fx, &fx->dp);
}

/* Every netns of this fixture, also those a test made itself. */
static void netns_del_prefixed(const char *prefix)
{
	char stem[64];
	struct dirent *e;
	DIR *d;

	xsnprintf(stem, sizeof(stem), "%s-", prefix);
	d = opendir("/run/netns");
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, stem, strlen(stem)))
			netns_del(e->d_name);
	if (d)
		closedir(d);
}

void fx_teardown(struct dp_fixture *fx)
{
	for (int i = 0; i < fx->nr_pods; i++) {
		if (fx->pods[i].server > 0)
			id_server_stop(fx->pods[i].server);
		/* Synchronous, unlike the veth teardown of a deleted netns. */
		sys_run("ip link del %sh%d", fx->prefix, i);
	}
	dp_close(fx->dp);
	fx->dp = NULL;
	if (fx->pin_dir[0])
		dp_uninstall(fx->pin_dir);
	if (fx->cg[0])
		cgroup_remove(fx->cg);
	if (fx->prefix[0])
		netns_del_prefixed(fx->prefix);
	if (fx->blackholes) {
		sys_run("ip route del blackhole " FX_VIP4_NET);
		sys_run("ip -6 route del blackhole " FX_VIP6_NET);
	}
	memset(fx, 0, sizeof(*fx));
}

void fx_key(struct gammad_fe_key *key, const char *vip, uint8_t proto)
{
	struct in6_addr a;

	if (inet_pton(AF_INET, vip, &a) == 1)
		dp_fe_key(key, AF_INET, &a, FX_PORT, proto);
	else if (inet_pton(AF_INET6, vip, &a) == 1)
		dp_fe_key(key, AF_INET6, &a, FX_PORT, proto);
	else
		memset(key, 0, sizeof(*key));
}

int fx_publish(struct dp_fixture *fx, const struct gammad_fe_key *key, uint32_t gen,
	       const uint32_t *weights, uint32_t ids_base)
{
	struct gammad_fe_val fe = { .svc_port_id = 1, .table_gen = gen,
				    .default_sel = ids_base };
	struct dp_weighted w[FX_MAX_PODS];
	int err;

	for (int i = 0; i < fx->nr_pods; i++) {
		struct fx_pod *p = &fx->pods[i];
		struct gammad_be_val be = { .ep_set = ids_base + i, .nr_endpoints = 1 };
		struct gammad_ep_val ep;
		struct in6_addr a;

		inet_pton(key->family, key->family == AF_INET ? p->ip4 : p->ip6, &a);
		dp_ep(&ep, key->family, &a, FX_PORT);
		err = dp_endpoints_write(fx->dp, ids_base + i, &ep, 1);
		if (!err)
			err = dp_backend_write(fx->dp, ids_base + i, &be);
		if (err)
			return err;
		w[i] = (struct dp_weighted){ ids_base + i, weights[i] };
	}
	err = dp_selector_write(fx->dp, ids_base, ids_base, w, fx->nr_pods);
	return err ?: dp_frontend_publish(fx->dp, key, &fe);
}

int fx_kill_applies(double dur_us, int nr, int tries, int want, void (*run)(void *arg, int i),
		    void (*check)(void *arg, int n, int i, const char *when), void *arg)
{
	double dur = dur_us * 1.2;
	int killed = 0;
	char when[96];

	for (int n = 0; n < tries && killed < want; n++) {
		int i = n % nr, status;
		useconds_t delay = (useconds_t)(dur * ((n * 7) % 48) / 48);
		pid_t pid = fork();

		if (pid == 0) {
			run(arg, i);
			_exit(0);
		}
		if (!ASSERT_GT(pid, 0, "fork"))
			break;
		usleep(delay);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		killed += WIFSIGNALED(status);
		if (!WIFSIGNALED(status))
			dur *= 0.9;
		snprintf(when, sizeof(when), "kill %d (image %d, after %u us, %s)", n, i,
			 (unsigned)delay, WIFSIGNALED(status) ? "killed" : "finished");
		check(arg, n, i, when);
	}
	return killed;
}
