/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The world of a data path test, made and always removed by the test:
 *
 *  - a cgroup <cgroup2>/gammad-test-<pid> where the programs attach, and a
 *    child cgroup "nsx" standing for the pods of one Kubernetes namespace;
 *  - a pin dir /sys/fs/bpf/gammad-test-<pid> and the data path loaded there;
 *  - nr_pods "pods": netns gdt<pid><l>-p<i> with eth0 198.18.<i+1>.2/24 and
 *    fd00:18:<i+1>::2/64, its host end gdt<pid><l>h<i> .1, no default route,
 *    and an id_server (id 'A' + i) on FX_PORT;
 *  - blackhole routes on the host for the ClusterIP ranges 198.19.0.0/16
 *    and fd00:19::/64, so a broken translation never leaves the machine.
 *
 * Leftovers of a crashed run (its pid dead) are removed by fx_setup().
 */
#ifndef GAMMAD_TEST_DP_FIXTURE_H
#define GAMMAD_TEST_DP_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "datapath/datapath.h"

#define FX_MAX_PODS	4
#define FX_PORT		8080
#define FX_NETNS_STEM	"gdt"
#define FX_VIP4_NET	"198.19.0.0/16"
#define FX_VIP6_NET	"fd00:19::/64"

struct fx_pod {
	char netns[64];
	char ip4[32];
	char ip6[64];
	pid_t server;
	char id;
};

struct dp_fixture {
	char prefix[32];		/* "gdt<pid><letter>": netns and link names */
	char cg[PATH_MAX];		/* attach cgroup */
	char cg_nsx[PATH_MAX];		/* child cgroup of "namespace X" clients */
	uint64_t cg_nsx_id;
	char pin_dir[PATH_MAX];
	struct dp *dp;
	uint32_t sockmap_cap;		/* dp_opts.sockmap_cap of fx_dp_open() */
	bool sock_redirect;		/* dp_opts.sock_redirect of fx_dp_open() */
	int nr_pods;
	struct fx_pod pods[FX_MAX_PODS];
	bool blackholes;
};

/* servers_in_cgroup: start the pods' servers inside the attach cgroup. */
int fx_setup(struct dp_fixture *fx, int nr_pods, bool servers_in_cgroup);
void fx_teardown(struct dp_fixture *fx);

/* Load/adopt the data path of the fixture's pin dir and cgroup. */
int fx_dp_open(struct dp_fixture *fx, struct dp **dp);
/* Close fx->dp and open it again: new fx->sockmap_cap, fx->sock_redirect. */
int fx_dp_reopen(struct dp_fixture *fx);

/*
 * Publish a Service port whose one rule splits over the fixture's pods
 * with weights[nr_pods]: backend ids_base + i -> endpoint set ids_base + i
 * (pod i, the key's family), selector ids_base, frontend generation gen.
 */
int fx_publish(struct dp_fixture *fx, const struct gammad_fe_key *key, uint32_t gen,
	       const uint32_t *weights, uint32_t ids_base);

/* Frontend key of ClusterIP string vip, FX_PORT, TCP or UDP. */
void fx_key(struct gammad_fe_key *key, const char *vip, uint8_t proto);

/*
 * Applies killed anywhere: per try n a child runs run(arg, i), an apply of
 * image i = n % nr, and is SIGKILLed after a delay spread over 1.2 x dur_us
 * (the longest clean apply; shortened each time a child finished first),
 * until want children died mid-apply or tries ran out. After each,
 * check(arg, n, i, when) looks at what the child left (when: which try,
 * killed or not) and applies image i again. How many were killed.
 */
int fx_kill_applies(double dur_us, int nr, int tries, int want, void (*run)(void *arg, int i),
		    void (*check)(void *arg, int n, int i, const char *when), void *arg);

#endif
