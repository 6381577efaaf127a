// SPDX-License-Identifier: Apache-2.0
/*
 * The lab (build/lab) on the real kernel: pods as network namespaces wired
 * like Calico, kubelet-style cgroups with the echo server inside, the
 * control-plane YAML it writes, and a teardown that leaves nothing behind.
 * Needs root; brings up the Gateway API mesh conformance manifests, then a
 * small manifest of its own with --systemd-cgroups.
 */
#include <regex.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datapath/cgroup.h"
#include "input/k8s.h"
#include "lib/lab_env.h"
#include "test_progs.h"

#define MESH_NS "gateway-conformance-mesh"
#define CONSUMER_NS "gateway-conformance-mesh-consumer"
/* Kubernetes' rand.String alphabet: what generated pod names are made of. */
#define KUBE_CHARS "[bcdfghjklmnpqrstvwxz2456789]"

/* ---- cluster.yaml, read back with the project's own parsers --------------- */

#define MAX_OBJS 32

struct cluster {
	struct k8s_namespace ns[MAX_OBJS];
	struct k8s_service svc[MAX_OBJS];
	struct k8s_pod pod[MAX_OBJS];
	struct k8s_endpoint_slice eps[MAX_OBJS];
	size_t nr_ns, nr_svc, nr_pod, nr_eps;
	size_t nr_other;
};

static int cluster_add(struct cluster *c, const struct ydoc *d, struct diag *dg)
{
	const char *kind = NULL;

	yget_str(d, d->root, "kind", &kind);
	if (!kind)
		return -EINVAL;
	if (!strcmp(kind, "Namespace") && c->nr_ns < MAX_OBJS)
		return k8s_parse_namespace(d, dg, &c->ns[c->nr_ns++]);
	if (!strcmp(kind, "Service") && c->nr_svc < MAX_OBJS)
		return k8s_parse_service(d, dg, &c->svc[c->nr_svc++]);
	if (!strcmp(kind, "Pod") && c->nr_pod < MAX_OBJS)
		return k8s_parse_pod(d, dg, &c->pod[c->nr_pod++]);
	if (!strcmp(kind, "EndpointSlice") && c->nr_eps < MAX_OBJS)
		return k8s_parse_endpoint_slice(d, dg, &c->eps[c->nr_eps++]);
	c->nr_other++;
	return 0;
}

static void cluster_free(struct cluster *c)
{
	for (size_t i = 0; i < c->nr_ns; i++)
		k8s_namespace_free(&c->ns[i]);
	for (size_t i = 0; i < c->nr_svc; i++)
		k8s_service_free(&c->svc[i]);
	for (size_t i = 0; i < c->nr_pod; i++)
		k8s_pod_free(&c->pod[i]);
	for (size_t i = 0; i < c->nr_eps; i++)
		k8s_endpoint_slice_free(&c->eps[i]);
	memset(c, 0, sizeof(*c));
}

static bool cluster_load(struct cluster *c, const struct lab_env *lab)
{
	char path[PATH_MAX + 16];
	struct ydoc_error yerr = { 0 };
	struct diag dg = { 0 };
	struct ydoc_set set;
	bool ok = true;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "%s/cluster.yaml", lab->out);
	if (!ASSERT_OK(ydoc_load_file(path, &set, &yerr), yerr.msg))
		return false;
	for (size_t i = 0; i < set.nr_docs; i++)
		ok &= ASSERT_OK(cluster_add(c, &set.docs[i], &dg), "parse cluster.yaml document");
	for (size_t i = 0; i < dg.nr; i++)
		test__printf("  %s\n", dg.entries[i].msg);
	ok &= ASSERT_EQ(dg.nr_errors, 0, "cluster.yaml diagnostics");
	diag_free(&dg);
	ydoc_set_free(&set);
	if (!ok)
		cluster_free(c);
	return ok;
}

static const struct k8s_service *find_service(const struct cluster *c, const char *ns,
					      const char *name)
{
	for (size_t i = 0; i < c->nr_svc; i++)
		if (!strcmp(c->svc[i].meta.namespace, ns) && !strcmp(c->svc[i].meta.name, name))
			return &c->svc[i];
	return NULL;
}

static const struct k8s_endpoint_slice *find_slice(const struct cluster *c, const char *ns,
						   const char *svc, int family)
{
	for (size_t i = 0; i < c->nr_eps; i++)
		if (!strcmp(c->eps[i].meta.namespace, ns) && c->eps[i].service_name &&
		    !strcmp(c->eps[i].service_name, svc) && c->eps[i].address_family == family)
			return &c->eps[i];
	return NULL;
}

static const struct k8s_endpoint_port *slice_port(const struct k8s_endpoint_slice *s,
						  const char *name)
{
	for (size_t i = 0; i < s->nr_ports; i++)
		if (s->ports[i].name && !strcmp(s->ports[i].name, name))
			return &s->ports[i];
	return NULL;
}

static const struct k8s_endpoint *slice_endpoint(const struct k8s_endpoint_slice *s,
						 const char *pod)
{
	for (size_t i = 0; i < s->nr_endpoints; i++)
		if (s->endpoints[i].target_name && !strcmp(s->endpoints[i].target_name, pod))
			return &s->endpoints[i];
	return NULL;
}

static const char *ip_str(const struct ip_addr *a)
{
	static char buf[4][INET6_ADDRSTRLEN];
	static int n;

	return ip_addr_str(a, buf[n++ % 4], sizeof(buf[0]));
}

/* ---- what the machine looks like ------------------------------------------ */

static char cg2[PATH_MAX];

/* Everything a lab could leave behind, as one string to compare. */
static char *machine_snapshot(void)
{
	char *out = NULL;

	/*
	 * Only the lab's names and ranges: other tests may run beside this one.
	 * (Forwarding sysctls are left out for the same reason.)
	 */
	lab_run_capture(&out,
			"ip -o netns list | grep '^glab-';"
			"ip -o link show | cut -d: -f2 | grep glab;"
			"ip route show type blackhole | grep -E '^blackhole (10[.](96|244)[.]|169[.]254[.]7[.]1 )';"
			"ip -6 route show type blackhole | grep -E '^blackhole (fd00:10:(96|244):|100::7:1 )';"
			"ls -d %s/gammad-lab* 2>/dev/null; ls /etc/netns 2>/dev/null | grep glab;"
			"true", cg2);
	return out;
}

static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static bool is_generated_pod_name(const char *name, const char *deploy)
{
	char pattern[256];
	regex_t re;
	bool ok;

	snprintf(pattern, sizeof(pattern), "^%s-" KUBE_CHARS "{10}-" KUBE_CHARS "{5}$", deploy);
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB))
		return false;
	ok = !regexec(&re, name, 0, NULL, 0);
	regfree(&re);
	return ok;
}

/* ---- malformed input ------------------------------------------------------ */

static const char bad_manifest[] =
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata:\n"
	"  name: lab-bad\n"
	"---\n"
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: lab-bad\n"
	"spec:\n"
	"  replicas: three\n";	/* line 12 */

static void subtest_malformed(struct lab_env *lab)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 64], *before, *after, *out = NULL;
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/bad.yaml", lab->dir);
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "create bad.yaml"))
		return;
	fputs(bad_manifest, f);
	fclose(f);
	before = machine_snapshot();
	ret = lab_run_capture(&out, "%s up --state %s %s", test_bin("lab"), lab->state, path);
	after = machine_snapshot();
	ASSERT_NEQ(ret, 0, "lab up fails");
	snprintf(want, sizeof(want), "%s:12: spec.replicas: must be an integer", path);
	ASSERT_HAS_SUBSTR(out, want, "error names file, line and field");
	ASSERT_EQ(count_lines_with(out, " error "), 1, "exactly one error");
	ASSERT_STREQ(after, before, "netns, links, routes, cgroups unchanged");
	ASSERT_FALSE(access(lab->state, F_OK) == 0, "no state dir");
	free(before);
	free(after);
	free(out);
}

/* ---- the mesh conformance lab --------------------------------------------- */

static void subtest_pods(struct lab_env *lab)
{
	const struct lab_pod_info *v1 = lab_env_find(lab, MESH_NS, "echo-v1");
	const struct lab_pod_info *v2 = lab_env_find(lab, MESH_NS, "echo-v2");
	const struct lab_pod_info *cv1 = lab_env_find(lab, CONSUMER_NS, "echo-v1");

	ASSERT_EQ(lab->nr_pods, 3, "three pods");
	if (!ASSERT_OK_PTR(v1, "mesh echo-v1") || !ASSERT_OK_PTR(v2, "mesh echo-v2") ||
	    !ASSERT_OK_PTR(cv1, "consumer echo-v1"))
		return;
	ASSERT_TRUE(is_generated_pod_name(v1->name, "echo-v1"), v1->name);
	ASSERT_TRUE(is_generated_pod_name(v2->name, "echo-v2"), v2->name);
	ASSERT_TRUE(is_generated_pod_name(cv1->name, "echo-v1"), cv1->name);
	ASSERT_NEQ(strcmp(v1->name, cv1->name), 0, "names differ across namespaces");
	ASSERT_HAS_SUBSTR(v1->ip4, "10.244.", "pod IPv4 in 10.244.0.0/16");
	ASSERT_HAS_SUBSTR(v1->ip6, "fd00:10:244::", "pod IPv6 in fd00:10:244::/64");
	ASSERT_EQ(strncmp(v1->veth, "glab", 4), 0, "veth prefix");
	ASSERT_LE(strlen(v1->veth), 15, "veth name fits IFNAMSIZ");
	ASSERT_EQ(strncmp(v1->netns, "glab-", 5), 0, "netns prefix");
}

static bool check_pod_cgroup(const struct lab_pod_info *p, bool systemd)
{
	char want[PATH_MAX * 2], uid[64], procs[PATH_MAX + 32], *out = NULL;
	bool ok;

	if (!systemd) {
		snprintf(want, sizeof(want), "/kubepods/besteffort/pod%s/%s", p->uid, p->container);
	} else {
		snprintf(uid, sizeof(uid), "%s", p->uid);
		for (char *c = uid; *c; c++)
			*c = *c == '-' ? '_' : *c;
		snprintf(want, sizeof(want),
			 "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-",
			 uid);
	}
	ok = ASSERT_HAS_SUBSTR(p->container_cgroup, want, "kubelet cgroup layout");
	ok &= ASSERT_EQ(strncmp(p->container_cgroup, cg2, strlen(cg2)), 0, "under the cgroup2 mount");
	if (systemd)
		ok &= ASSERT_HAS_SUBSTR(p->container_cgroup, ".scope", "systemd scope");
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", p->container_cgroup);
	lab_run_capture(&out, "cat %s", procs);
	snprintf(want, sizeof(want), "%d\n", p->pid);
	ok &= ASSERT_GT(p->pid, 0, "server pid") && ASSERT_HAS_SUBSTR(out, want, "server in cgroup.procs");
	free(out);
	/* And the process agrees: its cgroup v2 path is the container's. */
	lab_run_capture(&out, "grep '^0::' /proc/%d/cgroup", p->pid);
	snprintf(want, sizeof(want), "0::%s\n", p->container_cgroup + strlen(cg2));
	ok &= ASSERT_STREQ(out, want, "/proc/PID/cgroup");
	free(out);
	return ok;
}

static void subtest_cgroups(struct lab_env *lab, bool systemd)
{
	for (size_t i = 0; i < lab->nr_pods; i++)
		if (!check_pod_cgroup(&lab->pods[i], systemd))
			test__printf("pod %s/%s\n", lab->pods[i].ns, lab->pods[i].name);
}

static void check_echo_slice(const struct cluster *c, const struct lab_env *lab)
{
	const struct k8s_endpoint_slice *s = find_slice(c, MESH_NS, "echo", AF_INET);
	const struct lab_pod_info *v2 = lab_env_find(lab, MESH_NS, "echo-v2");
	const struct k8s_endpoint *ep;
	const struct k8s_endpoint_port *p;

	if (!ASSERT_OK_PTR(s, "slice of echo") || !ASSERT_OK_PTR(v2, "echo-v2 pod"))
		return;
	ASSERT_EQ(s->nr_endpoints, 2, "echo has two endpoints");
	p = slice_port(s, "http");
	if (ASSERT_OK_PTR(p, "port http"))
		ASSERT_EQ(p->port, 8080, "http: targetPort 8080 for port 80");
	p = slice_port(s, "http-alt");
	if (ASSERT_OK_PTR(p, "port http-alt"))
		ASSERT_EQ(p->port, 8080, "http-alt: targetPort defaults to 8080");
	p = slice_port(s, "https");
	if (ASSERT_OK_PTR(p, "port https"))
		ASSERT_EQ(p->port, 8443, "https: 8443");
	if (p && ASSERT_OK_PTR(slice_port(s, "grpc"), "port grpc"))
		ASSERT_STREQ(slice_port(s, "grpc")->app_protocol, "grpc", "appProtocol");
	ep = slice_endpoint(s, v2->name);
	if (!ASSERT_OK_PTR(ep, "echo-v2 endpoint"))
		return;
	ASSERT_STREQ(ip_str(&ep->addresses[0]), v2->ip4, "endpoint address is the pod IP");
	ASSERT_STREQ(ep->target_uid, v2->uid, "targetRef uid");
	ASSERT_STREQ(ep->target_kind, "Pod", "targetRef kind");
	ASSERT_STREQ(ep->node_name, "lab-node", "nodeName");
	ASSERT_TRUE(ep->ready && ep->serving && !ep->terminating, "conditions");
}

static void subtest_cluster_yaml(struct lab_env *lab)
{
	const char *names[] = { "echo", "echo-v1", "echo-v2" };
	const struct k8s_endpoint_slice *s;
	struct cluster c;

	if (!cluster_load(&c, lab))
		return;
	ASSERT_EQ(c.nr_ns, 2, "namespaces");
	ASSERT_EQ(c.nr_svc, 3, "services");
	ASSERT_EQ(c.nr_pod, 3, "pods");
	ASSERT_EQ(c.nr_eps, 3, "one IPv4 slice per single-stack service");
	for (size_t i = 0; i < 3; i++) {
		const struct k8s_service *svc = find_service(&c, MESH_NS, names[i]);

		if (!ASSERT_OK_PTR(svc, names[i]) || !ASSERT_EQ(svc->nr_cluster_ips, 1, "cluster IPs"))
			continue;
		ASSERT_EQ(svc->cluster_ips[0].family, AF_INET, "IPv4");
		ASSERT_EQ(svc->cluster_ips[0].addr[0] == 10 && svc->cluster_ips[0].addr[1] == 96, 1,
			  "cluster IP in 10.96.0.0/16");
	}
	check_echo_slice(&c, lab);
	s = find_slice(&c, MESH_NS, "echo-v1", AF_INET);
	if (ASSERT_OK_PTR(s, "slice of echo-v1"))
		ASSERT_EQ(s->nr_endpoints, 1, "echo-v1 has one endpoint");
	for (size_t i = 0; i < c.nr_pod; i++) {
		ASSERT_TRUE(c.pod[i].ready, "pods Ready");
		ASSERT_EQ(c.pod[i].nr_pod_ips, 2, "dual-stack pod IPs");
		ASSERT_STREQ(c.pod[i].spec.node_name, "lab-node", "spec.nodeName");
		ASSERT_OK_PTR(c.pod[i].meta.uid, "uid");
	}
	cluster_free(&c);
}

static const char *service_ip(struct lab_env *lab, const char *ns, const char *name,
			      char *buf, size_t len)
{
	const struct k8s_service *svc;
	struct cluster c;

	buf[0] = 0;
	if (!cluster_load(&c, lab))
		return buf;
	svc = find_service(&c, ns, name);
	if (svc && svc->nr_cluster_ips)
		ip_addr_str(&svc->cluster_ips[0], buf, len);
	cluster_free(&c);
	return buf;
}

/* kubectl exec -it <echo-v1> -- echo client http://<echo-v2 pod IP>:8080/ */
static void subtest_pod_to_pod(struct lab_env *lab, bool ipv6)
{
	const struct lab_pod_info *from = lab_env_find(lab, ipv6 ? CONSUMER_NS : MESH_NS, "echo-v1");
	const struct lab_pod_info *to = lab_env_find(lab, MESH_NS, "echo-v2");
	char want[512], lab_bin[PATH_MAX], *out = NULL;
	int ret;

	if (!ASSERT_OK_PTR(from, "client pod") || !ASSERT_OK_PTR(to, "server pod"))
		return;
	/* test_bin() returns a static buffer: one call per statement. */
	snprintf(lab_bin, sizeof(lab_bin), "%s", test_bin("lab"));
	ret = lab_run_capture(&out, "%s exec --state %s %s/%s -- %s client %s%s%s:8080/ --timeout=5",
			      lab_bin, lab->state, from->ns, from->name, test_bin("echo"),
			      ipv6 ? "http://[" : "http://", ipv6 ? to->ip6 : to->ip4,
			      ipv6 ? "]" : "");
	ASSERT_EQ(ret, 0, "echo client exit status");
	ASSERT_HAS_SUBSTR(out, "StatusCode=200", "HTTP 200");
	snprintf(want, sizeof(want), "\"pod\": \"%s\"", to->name);
	ASSERT_HAS_SUBSTR(out, want, "reply from the echo-v2 pod");
	free(out);
}

static void subtest_hosts(struct lab_env *lab)
{
	const struct lab_pod_info *v1 = lab_env_find(lab, MESH_NS, "echo-v1");
	const struct lab_pod_info *cv1 = lab_env_find(lab, CONSUMER_NS, "echo-v1");
	char ip[INET6_ADDRSTRLEN], want[256], *out = NULL;

	if (!ASSERT_OK_PTR(v1, "mesh pod") || !ASSERT_OK_PTR(cv1, "consumer pod"))
		return;
	service_ip(lab, MESH_NS, "echo-v2", ip, sizeof(ip));
	snprintf(want, sizeof(want), "%s ", ip);
	ASSERT_EQ(lab_env_exec(lab, v1, &out, "getent hosts echo-v2"), 0, "echo-v2 resolves");
	ASSERT_HAS_SUBSTR(out, want, "to its ClusterIP");
	free(out);
	ASSERT_EQ(lab_env_exec(lab, cv1, &out, "getent hosts echo-v2." MESH_NS ".svc.cluster.local"),
		  0, "FQDN resolves from the consumer namespace");
	ASSERT_HAS_SUBSTR(out, want, "to the same ClusterIP");
	free(out);
	ASSERT_NEQ(lab_env_exec(lab, cv1, &out, "getent hosts echo-v2"), 0,
		   "short name is for the Service's own namespace only");
	free(out);
}

static void subtest_routes(struct lab_env *lab)
{
	const struct lab_pod_info *v1 = lab_env_find(lab, MESH_NS, "echo-v1");
	char ip[INET6_ADDRSTRLEN], *out = NULL;

	if (!ASSERT_OK_PTR(v1, "mesh pod"))
		return;
	ASSERT_EQ(lab_env_exec(lab, v1, &out, "ip route show default; ip -6 route show default"), 0,
		  "ip route");
	ASSERT_STREQ(out, "", "no default route in the pod");
	free(out);
	lab_run_capture(&out, "ip route show type blackhole; ip -6 route show type blackhole");
	ASSERT_HAS_SUBSTR(out, "blackhole 10.96.0.0/16", "IPv4 service range blackholed");
	ASSERT_HAS_SUBSTR(out, "blackhole fd00:10:96::/112", "IPv6 service range blackholed");
	free(out);
	/* No agent: a ClusterIP goes nowhere, and certainly not off the machine. */
	service_ip(lab, MESH_NS, "echo", ip, sizeof(ip));
	ASSERT_NEQ(lab_env_exec(lab, v1, &out, "%s client http://%s/ --timeout=1", test_bin("echo"), ip),
		   0, "ClusterIP without an agent fails");
	free(out);
}

static void subtest_second_up(struct lab_env *lab, const char *manifests)
{
	char *out = NULL;

	ASSERT_NEQ(lab_run_capture(&out, "%s up --state %s %s", test_bin("lab"), lab->state, manifests),
		   0, "second lab up refused");
	ASSERT_HAS_SUBSTR(out, "already up", "clear message");
	free(out);
}

static void subtest_down(struct lab_env *lab, const char *clean)
{
	char *out = NULL, *now;

	ASSERT_EQ(lab_env_down(lab, &out), 0, "lab down");
	test__printf("%s", out ? out : "");
	free(out);
	now = machine_snapshot();
	ASSERT_STREQ(now, clean, "nothing left: netns, links, routes, cgroups, /etc/netns");
	free(now);
	ASSERT_FALSE(access(lab->state, F_OK) == 0, "state dir removed");
	ASSERT_EQ(lab_env_down(lab, NULL), 0, "lab down again (idempotent)");
}

static void run_mesh_lab(struct lab_env *lab, const char *manifests, const char *clean)
{
	char *out = NULL;
	int ret;

	if (test__start_subtest("up")) {
		ret = lab_env_up(lab, manifests, &out);
		ASSERT_EQ(ret, 0, "lab up");
		test__printf("%s", out ? out : "");
	}
	free(out);
	if (!lab->nr_pods)
		return;	/* nothing to look at; teardown still runs */
	if (test__start_subtest("pods"))
		subtest_pods(lab);
	if (test__start_subtest("cgroups_cgroupfs"))
		subtest_cgroups(lab, false);
	if (test__start_subtest("cluster_yaml"))
		subtest_cluster_yaml(lab);
	if (test__start_subtest("pod_to_pod_ipv4"))
		subtest_pod_to_pod(lab, false);
	if (test__start_subtest("pod_to_pod_ipv6"))
		subtest_pod_to_pod(lab, true);
	if (test__start_subtest("hosts"))
		subtest_hosts(lab);
	if (test__start_subtest("routes"))
		subtest_routes(lab);
	if (test__start_subtest("second_up_refused"))
		subtest_second_up(lab, manifests);
	if (test__start_subtest("down"))
		subtest_down(lab, clean);
}

/* ---- a manifest of our own: systemd cgroups, named ports, dual stack ------ */

static const char own_manifest[] =
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: lab-test\n"
	"spec:\n"
	"  replicas: 2\n"
	"  selector:\n"
	"    matchLabels:\n"
	"      app: web\n"
	"  template:\n"
	"    metadata:\n"
	"      labels:\n"
	"        app: web\n"
	"    spec:\n"
	"      containers:\n"
	"      - name: server\n"
	"        ports:\n"
	"        - name: http-web\n"
	"          containerPort: 8081\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata:\n"
	"  name: lonely\n"
	"  namespace: lab-test\n"
	"  labels:\n"
	"    app: web\n"
	"  annotations:\n"
	"    lab.gammad.io/ready: \"false\"\n"
	"spec:\n"
	"  containers:\n"
	"  - name: server\n"
	"    args: [--port=8082]\n"
	"    ports:\n"
	"    - name: http-web\n"
	"      containerPort: 8082\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: lab-test\n"
	"spec:\n"
	"  ipFamilyPolicy: PreferDualStack\n"
	"  selector:\n"
	"    app: web\n"
	"  ports:\n"
	"  - name: http\n"
	"    port: 80\n"
	"    targetPort: http-web\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata:\n"
	"  name: web-route   # this comment survives\n"
	"  namespace: lab-test\n"
	"spec:\n"
	"  parentRefs:\n"
	"  - {group: \"\", kind: Service, name: web, port: 80}\n";

static void check_own_slices(const struct cluster *c, const struct lab_env *lab)
{
	const struct lab_pod_info *lonely = lab_env_find(lab, "lab-test", "lonely");
	const struct lab_pod_info *web = lab_env_find(lab, "lab-test", "web");

	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		const struct k8s_endpoint_slice *s;
		size_t total = 0, lonely_port = 0;

		/* Pods resolving "http-web" differently get slices of their own. */
		for (size_t i = 0; i < c->nr_eps; i++) {
			s = &c->eps[i];
			if (s->address_family != family || strcmp(s->service_name, "web"))
				continue;
			total += s->nr_endpoints;
			if (lonely && slice_endpoint(s, lonely->name)) {
				ASSERT_FALSE(slice_endpoint(s, lonely->name)->ready, "not-ready pod");
				lonely_port = s->nr_ports ? s->ports[0].port : 0;
			} else if (web && slice_endpoint(s, web->name)) {
				ASSERT_EQ(s->ports[0].port, 8081, "named targetPort of web pods");
				ASSERT_STREQ(s->ports[0].name, "http", "service port name");
				ASSERT_TRUE(slice_endpoint(s, web->name)->ready, "ready pod");
			}
		}
		ASSERT_EQ(total, 3, "three endpoints per family");
		ASSERT_EQ(lonely_port, 8082, "named targetPort of the bare pod");
	}
}

static void subtest_own_yaml(struct lab_env *lab)
{
	const struct k8s_service *svc;
	char path[PATH_MAX + 16], *out = NULL;
	struct cluster c;

	if (!cluster_load(&c, lab))
		return;
	ASSERT_EQ(c.nr_ns, 1, "namespace created for lab-test");
	svc = find_service(&c, "lab-test", "web");
	if (ASSERT_OK_PTR(svc, "service web") && ASSERT_EQ(svc->nr_cluster_ips, 2, "dual stack")) {
		ASSERT_STREQ(ip_str(&svc->cluster_ips[0]), "10.96.0.10", "first IPv4 ClusterIP");
		ASSERT_STREQ(ip_str(&svc->cluster_ips[1]), "fd00:10:96::a", "first IPv6 ClusterIP");
	}
	for (size_t i = 0; i < c.nr_pod; i++)
		ASSERT_STREQ(c.pod[i].spec.node_name, "node-a", "--node-name");
	check_own_slices(&c, lab);
	cluster_free(&c);
	snprintf(path, sizeof(path), "%s/routes.yaml", lab->out);
	lab_run_capture(&out, "cat %s", path);
	ASSERT_HAS_SUBSTR(out, "kind: HTTPRoute\nmetadata:\n  name: web-route   # this comment survives\n",
			  "routes.yaml keeps the document as written");
	free(out);
}

/* Container ports not in args became --port flags: the web pods serve 8081. */
static void subtest_own_ports(struct lab_env *lab)
{
	const struct lab_pod_info *lonely = lab_env_find(lab, "lab-test", "lonely");
	const struct lab_pod_info *web = lab_env_find(lab, "lab-test", "web");
	char *out = NULL;

	if (!ASSERT_OK_PTR(lonely, "lonely") || !ASSERT_OK_PTR(web, "web"))
		return;
	ASSERT_EQ(lab_env_exec(lab, lonely, &out, "%s client http://%s:8081/ --timeout=5",
			       test_bin("echo"), web->ip4), 0, "bare pod to web:8081");
	ASSERT_HAS_SUBSTR(out, web->name, "reply from web");
	free(out);
	ASSERT_EQ(lab_env_exec(lab, web, &out, "%s client http://%s:8082/ --timeout=5",
			       test_bin("echo"), lonely->ip4), 0, "web to the bare pod's own port");
	ASSERT_HAS_SUBSTR(out, "\"pod\": \"lonely\"", "reply from lonely");
	free(out);
}

static void run_own_lab(struct lab_env *lab, const char *clean)
{
	char path[PATH_MAX + 16], args[PATH_MAX * 2], *out = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/own.yaml", lab->dir);
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "write own.yaml"))
		return;
	fputs(own_manifest, f);
	fclose(f);
	snprintf(args, sizeof(args), "--systemd-cgroups --cgroup-parent gammad-lab-test --node-name node-a %s",
		 path);
	if (test__start_subtest("own_up")) {
		ASSERT_EQ(lab_env_up(lab, args, &out), 0, "lab up --systemd-cgroups");
		test__printf("%s", out ? out : "");
		ASSERT_EQ(lab->nr_pods, 3, "three pods");
		free(out);
	}
	if (lab->nr_pods && test__start_subtest("cgroups_systemd")) {
		subtest_cgroups(lab, true);
		for (size_t i = 0; i < lab->nr_pods; i++)
			ASSERT_HAS_SUBSTR(lab->pods[i].cgroup, "/gammad-lab-test/kubepods.slice/",
					  "--cgroup-parent");
	}
	if (lab->nr_pods && test__start_subtest("own_cluster_yaml"))
		subtest_own_yaml(lab);
	if (lab->nr_pods && test__start_subtest("own_ports"))
		subtest_own_ports(lab);
	if (test__start_subtest("own_down")) {
		subtest_down(lab, clean);
		snprintf(path, sizeof(path), "%s/gammad-lab-test", cg2);
		ASSERT_FALSE(access(path, F_OK) == 0, "--cgroup-parent dir removed");
	}
}

/* A server that dies at once: lab up must fail and take everything down. */
static void subtest_failed_start(struct lab_env *lab, const char *manifests, const char *clean)
{
	char args[PATH_MAX * 2], *out = NULL, *now;

	snprintf(args, sizeof(args), "--server /bin/false %s", manifests);
	ASSERT_NEQ(lab_env_up(lab, args, &out), 0, "lab up fails");
	ASSERT_HAS_SUBSTR(out, "exited", "names the dead server");
	free(out);
	now = machine_snapshot();
	ASSERT_STREQ(now, clean, "lab up cleaned up after itself");
	free(now);
	lab_env_down(lab, NULL);
}

/* cgroup2_mount_path() on the layouts it meets: hybrid, unified, none. */
static void subtest_cgroup2_mountinfo(void)
{
	static const struct {
		const char *mountinfo, *want;
	} cases[] = {
		{ "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		  "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
		  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n",
		  "/sys/fs/cgroup/unified" },
		{ "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n",
		  "/sys/fs/cgroup" },
		{ "50 23 0:40 / /mnt/my\\040cg rw - cgroup2 none rw\n", "/mnt/my cg" },
		{ "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", NULL },
	};
	char path[] = "/tmp/gammad-mountinfo.XXXXXX", buf[PATH_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = mkstemp(path), ret;

		if (!ASSERT_GE(fd, 0, "mkstemp"))
			return;
		ASSERT_EQ(write(fd, cases[i].mountinfo, strlen(cases[i].mountinfo)),
			  (long long)strlen(cases[i].mountinfo), "write mountinfo");
		close(fd);
		ret = cgroup2_mount_path_from(path, buf, sizeof(buf));
		if (cases[i].want && ASSERT_OK(ret, "cgroup2 found"))
			ASSERT_STREQ(buf, cases[i].want, "mount point");
		else if (!cases[i].want)
			ASSERT_EQ(ret, -ENOENT, "no cgroup2");
		unlink(path);
		strcpy(path, "/tmp/gammad-mountinfo.XXXXXX");
	}
}

void test_lab(void)
{
	const char *manifests = test_shared_path("gateway-api/conformance/mesh/manifests.yaml");
	struct lab_env lab;
	char *clean;

	if (test__start_subtest("cgroup2_mountinfo"))
		subtest_cgroup2_mountinfo();
	if (!manifests) {
		test__skip("no shared gateway-api/conformance/mesh/manifests.yaml");
		return;
	}
	if (cgroup2_mount_path(cg2, sizeof(cg2))) {
		test__skip("no cgroup v2 mount");
		return;
	}
	/* The mesh lab comes up in a subtest of its own: no args here. */
	if (lab_env_start(&lab, NULL)) {
		lab_env_fini(&lab);
		return;
	}
	clean = machine_snapshot();
	if (test__start_subtest("malformed_manifest"))
		subtest_malformed(&lab);
	run_mesh_lab(&lab, manifests, clean);
	lab_env_fini(&lab);	/* a no-op when "down" ran; a teardown when a subtest failed */
	if (lab_env_init(&lab) == 0) {
		if (test__start_subtest("failed_start_tears_down"))
			subtest_failed_start(&lab, manifests, clean);
		run_own_lab(&lab, clean);
		lab_env_fini(&lab);
	}
	free(clean);
}
