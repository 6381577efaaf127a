/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab: a one-node Kubernetes cluster simulated with network namespaces,
 * veths and kubelet-style cgroups, running build/echo as every container.
 *
 * `lab up` works in two phases: everything is read, validated and planned
 * (manifest_load.c, model.c, endpoints.c) before anything on the machine is
 * touched; then the plan is recorded in the state dir (state.c) and built
 * (netns.c, cgroup.c, pods.c, hosts.c). `lab down` undoes it from the state
 * and, for what a crash left unrecorded, by name prefix.
 */
#ifndef LAB_H
#define LAB_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/diag.h"
#include "input/k8s.h"

/* Every object the lab creates on the host carries one of these prefixes. */
#define LAB_NETNS_PREFIX	"glab-"
#define LAB_LINK_PREFIX		"glab"
#define LAB_ETC_NETNS		"/etc/netns"
#define LAB_RUN_NETNS		"/run/netns"

/* Address plan; nothing outside these ranges is ever configured. */
#define LAB_POD_NET4		"10.244.0.0/16"
#define LAB_POD_NET6		"fd00:10:244::/64"
#define LAB_SVC_NET4		"10.96.0.0/16"
#define LAB_SVC_NET6		"fd00:10:96::/112"
#define LAB_GW4			"169.254.1.1"
#define LAB_GW6			"fe80::1"
/*
 * gammad's default hairpin addresses (bpf/lib/hairpin.h): a pod reaching
 * itself through its Service sees them as its peer and must route them to
 * its interface, which a cluster's default route does; lab pods have none.
 */
#define LAB_HAIRPIN4		"169.254.7.1"
#define LAB_HAIRPIN6		"100::7:1"
/* Calico gives every host-side veth this MAC; pods have a static ARP entry for it. */
#define LAB_HOST_MAC		"ee:ee:ee:ee:ee:ee"
#define LAB_FIRST_SVC_HOST	10	/* 10.96.0.10, fd00:10:96::a */
#define LAB_FIRST_POD_HOST	2	/* 10.244.0.2, fd00:10:244::2 */
#define LAB_MAX_PODS		1000

#define LAB_DEFAULT_STATE	"/run/gammad-lab"
#define LAB_STATE_ENV		"GAMMAD_LAB_STATE"
#define LAB_DEFAULT_NODE	"lab-node"
#define LAB_CGROUP_DEFAULT	"gammad-lab"	/* under the cgroup2 mount */
/* Serializes lab up/down between processes: they share host-wide names. */
#define LAB_LOCK_FILE		"/run/gammad-lab.lock"
#define LAB_READY_ANNOTATION	"lab.gammad.io/ready"
#define LAB_READY_TIMEOUT_MS	5000

struct lab_opts {
	const char *state_dir;
	const char *out_dir;		/* NULL: <state>/manifests */
	const char *cgroup_parent;	/* NULL: <cgroup2>/gammad-lab */
	bool systemd_cgroups;
	const char *node_name;
	const char *server;		/* NULL: echo next to the lab binary */
};

struct lab_container {
	char *name;
	const struct k8s_container *spec;	/* NULL when read back from the state */
	char cgroup[PATH_MAX];
	pid_t pid;
};

struct lab_pod {
	char *namespace, *name, *uid;
	char *owner;			/* Deployment name, NULL for a bare Pod */
	struct k8s_labels labels;
	struct k8s_labels annotations;
	const struct k8s_pod_spec *spec;	/* NULL when read back from the state */
	struct src_loc loc;		/* the Deployment or Pod document */
	bool ready;
	struct ip_addr ip4, ip6;
	char netns[64];
	char veth[IF_NAMESIZE];
	char cgroup[PATH_MAX];		/* pod-level directory */
	struct lab_container *containers;
	size_t nr_containers;
};

/* A document the lab does not model, kept as its source text. */
struct lab_passthrough {
	char *file;
	int line;
	char *text;
};

struct lab_model {
	struct k8s_namespace *namespaces;
	size_t nr_namespaces;
	struct k8s_service *services;
	size_t nr_services;
	struct k8s_deployment *deployments;
	size_t nr_deployments;
	struct k8s_pod *bare_pods;
	size_t nr_bare_pods;
	struct lab_passthrough *passthrough;
	size_t nr_passthrough;

	struct lab_pod *pods;
	size_t nr_pods;
	struct k8s_endpoint_slice *slices;
	size_t nr_slices;

	char cgroup_root[PATH_MAX];
	bool cgroup_root_created;
	bool systemd_cgroups;
	char node_name[254];
	char out_dir[PATH_MAX];
	char server[PATH_MAX];
	struct diag diag;
};

/* manifest_load.c: read files and directories into the model's object lists. */
int lab_load_manifests(struct lab_model *m, char *const *paths, int nr_paths);

/* model.c */
int lab_plan(struct lab_model *m, const struct lab_opts *opts);
void lab_model_free(struct lab_model *m);
struct lab_pod *lab_find_pod(struct lab_model *m, const char *ns, const char *name);

/* names.c: deterministic names, like a control plane would pick them */
uint64_t lab_hash(const char *s, uint64_t seed);
void lab_kube_suffix(uint64_t h, char *out, size_t len);
void lab_pod_name(const char *ns, const char *deploy, int index, char *out, size_t len);
void lab_uuid(const char *seed, char out[37]);
void lab_pod_netns(const char *ns, const char *pod, char *out, size_t len);
void lab_pod_veth(const char *ns, const char *pod, char out[IF_NAMESIZE]);
void lab_container_id(const char *uid, const char *container, char out[65]);

/* endpoints.c */
int lab_build_endpoint_slices(struct lab_model *m);

/* emit_yaml.c */
int lab_write_cluster_yaml(const struct lab_model *m, const char *path);
int lab_write_routes_yaml(const struct lab_model *m, const char *path);

/* files.c */
int write_file_atomic(const char *path, const char *data, size_t len);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path);
int read_file(const char *path, char **out, size_t *len);
bool path_exists(const char *path);

/* run.c: run a program and wait; the exit status folded into an errno. */
int run_argv(char *const argv[], bool quiet);
int run_ip_batch(const char *netns, const char *commands, bool quiet);

/* sysctl.c */
int sysctl_write(const char *key, const char *value);
int sysctl_read(const char *key, char *buf, size_t len);
int lab_enable_forwarding(const char *state_dir);
void lab_restore_forwarding(const char *state_dir);

/* netns.c */
int lab_host_routes_add(void);
void lab_host_routes_del(void);
int lab_pod_net_up(const struct lab_pod *p);
void lab_netns_purge(void);
int lab_netns_pids_kill(void);

/* cgroup.c (the lab's cgroup tree) */
int lab_cgroup_root(const struct lab_opts *opts, char *out, size_t len);
int lab_cgroup_plan(struct lab_model *m);
int lab_cgroup_create(struct lab_model *m);
int lab_cgroup_enter(const char *cgroup, pid_t pid);
void lab_cgroup_purge(const char *root, bool remove_root);

/* hosts.c */
int lab_write_hosts(const struct lab_model *m);
void lab_hosts_purge(void);

/* pods.c */
int lab_start_pods(struct lab_model *m, const char *state_dir);

/* state.c */
int lab_state_write(const struct lab_model *m, const char *state_dir);
int lab_state_read(struct lab_model *m, const char *state_dir);
const char *lab_state_file(const char *state_dir, char *buf, size_t len);
int lab_lock(int *fd);
void lab_unlock(int fd);

/* commands */
int lab_cmd_up(int argc, char **argv);
/* Remove everything; 0 when nothing is left. */
int lab_teardown(const char *state_dir);
int lab_cmd_down(int argc, char **argv);
int lab_cmd_exec(int argc, char **argv);
int lab_cmd_pods(int argc, char **argv);
const char *lab_default_state_dir(void);

#endif
