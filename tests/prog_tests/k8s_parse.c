// SPDX-License-Identifier: Apache-2.0
/*
 * Table-driven tests of the Kubernetes object parsers: each case is one YAML
 * document (file "t.yaml") and either a check of the parsed struct or the
 * diagnostic it must produce, which names file, line and field.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "input/k8s.h"
#include "test_progs.h"

enum obj_kind { K_NAMESPACE, K_SERVICE, K_POD, K_DEPLOYMENT, K_SLICE };

union any_obj {
	struct k8s_namespace ns;
	struct k8s_service svc;
	struct k8s_pod pod;
	struct k8s_deployment dep;
	struct k8s_endpoint_slice eps;
};

struct parse_case {
	const char *name;
	enum obj_kind kind;
	const char *yaml;
	const char *err;			/* expected diagnostic, or NULL */
	void (*check)(const union any_obj *o);	/* run when it must parse */
};

static bool ip_is(const struct ip_addr *a, const char *want)
{
	char buf[64];

	return !strcmp(ip_addr_str(a, buf, sizeof(buf)), want);
}

/* ---- checks --------------------------------------------------------------- */

static void check_namespace(const union any_obj *o)
{
	ASSERT_STREQ(o->ns.meta.name, "team-a", "name");
	ASSERT_NULL(o->ns.meta.namespace, "cluster-scoped");
	ASSERT_STREQ(k8s_label_get(&o->ns.meta.labels, "gateway-conformance"), "mesh", "label");
}

static void check_mesh_service(const union any_obj *o)
{
	const struct k8s_service *s = &o->svc;

	ASSERT_STREQ(s->meta.namespace, "gateway-conformance-mesh", "namespace");
	ASSERT_EQ(s->type, SVC_CLUSTER_IP, "type");
	ASSERT_EQ(s->nr_cluster_ips, 0, "no clusterIP yet");
	ASSERT_STREQ(k8s_label_get(&s->selector, "app"), "echo", "selector");
	if (!ASSERT_EQ(s->nr_ports, 3, "ports"))
		return;
	ASSERT_STREQ(s->ports[0].name, "http", "port0 name");
	ASSERT_EQ(s->ports[0].port, 80, "port0");
	ASSERT_EQ(s->ports[0].target_port, 8080, "port0 targetPort");
	ASSERT_EQ(s->ports[0].protocol, L4_TCP, "port0 protocol");
	ASSERT_STREQ(s->ports[0].app_protocol, "http", "appProtocol");
	ASSERT_EQ(s->ports[1].target_port, 8080, "targetPort defaults to port");
	ASSERT_NULL(s->ports[1].app_protocol, "no appProtocol");
	ASSERT_EQ(s->ports[2].target_port, 0, "named targetPort");
	ASSERT_STREQ(s->ports[2].target_port_name, "dns-udp", "targetPort name");
	ASSERT_EQ(s->ports[2].protocol, L4_UDP, "UDP");
}

static void check_default_namespace(const union any_obj *o)
{
	ASSERT_STREQ(o->svc.meta.namespace, "default", "namespace defaults");
	ASSERT_EQ(o->svc.meta.loc.line, 1, "loc line");
	ASSERT_STREQ(o->svc.meta.loc.file, "t.yaml", "loc file");
}

static void check_headless(const union any_obj *o)
{
	ASSERT_EQ(o->svc.type, SVC_HEADLESS, "clusterIP None is headless");
	ASSERT_EQ(o->svc.nr_cluster_ips, 0, "no cluster IPs");
}

static void check_dual_stack(const union any_obj *o)
{
	const struct k8s_service *s = &o->svc;

	if (!ASSERT_EQ(s->nr_cluster_ips, 2, "two cluster IPs"))
		return;
	ASSERT_TRUE(ip_is(&s->cluster_ips[0], "10.96.0.20"), "v4");
	ASSERT_TRUE(ip_is(&s->cluster_ips[1], "fd00:10:96::20"), "v6");
	ASSERT_EQ(s->nr_ip_families, 2, "families");
	ASSERT_EQ(s->ip_families[1], AF_INET6, "family 1");
	ASSERT_STREQ(s->ip_family_policy, "RequireDualStack", "policy");
}

static void check_deployment(const union any_obj *o)
{
	const struct k8s_deployment *d = &o->dep;
	const struct k8s_container *c;

	ASSERT_EQ(d->replicas, 1, "replicas default 1");
	ASSERT_STREQ(k8s_label_get(&d->match_labels, "version"), "v1", "matchLabels");
	ASSERT_STREQ(k8s_label_get(&d->template.labels, "app"), "echo", "template labels");
	ASSERT_STREQ(k8s_label_get(&d->template.annotations, "lab.gammad.io/ready"), "false",
		     "template annotations");
	if (!ASSERT_EQ(d->template.nr_containers, 1, "containers"))
		return;
	c = &d->template.containers[0];
	ASSERT_STREQ(c->name, "echo", "container name");
	if (ASSERT_EQ(c->nr_args, 2, "args"))
		ASSERT_STREQ(c->args[1], "--port=8080", "arg 1");
	if (ASSERT_EQ(c->nr_ports, 2, "container ports")) {
		ASSERT_STREQ(c->ports[0].name, "http", "port name");
		ASSERT_EQ(c->ports[0].port, 8080, "containerPort");
		ASSERT_EQ(c->ports[1].protocol, L4_UDP, "UDP port");
	}
}

static void check_replicas_zero(const union any_obj *o)
{
	ASSERT_EQ(o->dep.replicas, 0, "replicas 0");
}

static void check_pod(const union any_obj *o)
{
	const struct k8s_pod *p = &o->pod;

	ASSERT_STREQ(p->meta.uid, "0b7d6a3e-8c1f-4b7a-9a55-1f2e3d4c5b6a", "uid");
	ASSERT_EQ(p->meta.generation, 3, "generation");
	ASSERT_EQ(p->meta.creation_time, 1704164645, "creationTimestamp");
	ASSERT_STREQ(p->spec.node_name, "lab-node", "nodeName");
	ASSERT_TRUE(p->ready, "Ready=True");
	if (ASSERT_EQ(p->nr_pod_ips, 2, "podIPs (podIP repeated once)")) {
		ASSERT_TRUE(ip_is(&p->pod_ips[0], "10.244.0.5"), "pod v4");
		ASSERT_TRUE(ip_is(&p->pod_ips[1], "fd00:10:244::5"), "pod v6");
	}
}

static void check_slice(const union any_obj *o)
{
	const struct k8s_endpoint_slice *s = &o->eps;

	ASSERT_STREQ(s->service_name, "echo", "service name label");
	ASSERT_EQ(s->address_family, AF_INET, "IPv4");
	if (!ASSERT_EQ(s->nr_endpoints, 2, "endpoints"))
		return;
	ASSERT_TRUE(s->endpoints[0].ready, "nil ready means ready");
	ASSERT_TRUE(s->endpoints[0].serving, "nil serving means serving");
	ASSERT_FALSE(s->endpoints[0].terminating, "nil terminating means not");
	ASSERT_TRUE(ip_is(&s->endpoints[0].addresses[0], "10.244.0.5"), "address");
	ASSERT_STREQ(s->endpoints[0].target_name, "echo-v1-abc", "targetRef name");
	ASSERT_STREQ(s->endpoints[0].target_uid, "u-1", "targetRef uid");
	ASSERT_STREQ(s->endpoints[0].node_name, "lab-node", "nodeName");
	ASSERT_FALSE(s->endpoints[1].ready, "ready false");
	ASSERT_TRUE(s->endpoints[1].serving, "serving true");
	ASSERT_TRUE(s->endpoints[1].terminating, "terminating true");
	if (ASSERT_EQ(s->nr_ports, 2, "ports")) {
		ASSERT_STREQ(s->ports[0].name, "http", "port name");
		ASSERT_EQ(s->ports[0].port, 8080, "port");
		ASSERT_STREQ(s->ports[0].app_protocol, "http", "appProtocol");
		ASSERT_EQ(s->ports[1].port, 9090, "port 2");
	}
}

/* ---- the table ------------------------------------------------------------ */

#define SVC_HEAD "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: ns\nspec:\n"
#define DEP_HEAD "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: echo-v1\nspec:\n"
#define SLICE_HEAD "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: echo-1\n"

static void check_affinity_default(const union any_obj *o)
{
	ASSERT_EQ(o->svc.affinity_timeout, K8S_AFFINITY_TIMEOUT_DEFAULT, "ClientIP: 10800 s");
}

static void check_affinity_timeout(const union any_obj *o)
{
	ASSERT_EQ(o->svc.affinity_timeout, 30, "timeoutSeconds");
}

static void check_affinity_none(const union any_obj *o)
{
	ASSERT_EQ(o->svc.affinity_timeout, 0, "None: no affinity");
}

static const struct parse_case cases[] = {
	{ "namespace", K_NAMESPACE,
	  "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"
	  "  labels:\n    gateway-conformance: mesh\n",
	  NULL, check_namespace },
	{ "namespace_bad_name", K_NAMESPACE,
	  "kind: Namespace\nmetadata:\n  name: Team_A\n",
	  "t.yaml:3: metadata.name: invalid name \"Team_A\"", NULL },
	{ "service_mesh", K_SERVICE,
	  "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n"
	  "  namespace: gateway-conformance-mesh\nspec:\n  selector:\n    app: echo\n"
	  "  ports:\n  - name: http\n    port: 80\n    appProtocol: http\n    targetPort: 8080\n"
	  "  - name: http-alt\n    port: 8080\n"
	  "  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: dns-udp\n",
	  NULL, check_mesh_service },
	{ "service_default_namespace", K_SERVICE,
	  "kind: Service\nmetadata:\n  name: echo\nspec:\n  ports:\n  - port: 80\n",
	  NULL, check_default_namespace },
	{ "service_headless", K_SERVICE,
	  SVC_HEAD "  clusterIP: None\n",
	  NULL, check_headless },
	{ "service_dual_stack", K_SERVICE,
	  SVC_HEAD "  clusterIP: 10.96.0.20\n  clusterIPs: [10.96.0.20, \"fd00:10:96::20\"]\n"
	  "  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n"
	  "  ports:\n  - port: 80\n",
	  NULL, check_dual_stack },
	{ "service_affinity_default_timeout", K_SERVICE,
	  SVC_HEAD "  sessionAffinity: ClientIP\n  ports:\n  - port: 80\n",
	  NULL, check_affinity_default },
	{ "service_affinity_timeout", K_SERVICE,
	  SVC_HEAD "  sessionAffinity: ClientIP\n"
	  "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 30\n"
	  "  ports:\n  - port: 80\n",
	  NULL, check_affinity_timeout },
	{ "service_affinity_none", K_SERVICE,
	  SVC_HEAD "  sessionAffinity: None\n  ports:\n  - port: 80\n",
	  NULL, check_affinity_none },
	{ "service_affinity_bad", K_SERVICE,
	  SVC_HEAD "  sessionAffinity: Cookie\n  ports:\n  - port: 80\n",
	  "t.yaml:7: spec.sessionAffinity: must be None or ClientIP, got \"Cookie\"", NULL },
	{ "service_affinity_timeout_range", K_SERVICE,
	  SVC_HEAD "  sessionAffinity: ClientIP\n"
	  "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 86401\n"
	  "  ports:\n  - port: 80\n",
	  "t.yaml:10: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be an integer in 1..86400", NULL },
	{ "service_affinity_config_with_none", K_SERVICE,
	  SVC_HEAD "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 30\n"
	  "  ports:\n  - port: 80\n",
	  "t.yaml:8: spec.sessionAffinityConfig: must not be set when spec.sessionAffinity is None", NULL },
	{ "service_port_not_int", K_SERVICE,
	  SVC_HEAD "  ports:\n  - name: a\n    port: 80\n  - name: b\n    port: http\n",
	  "t.yaml:11: spec.ports[1].port: must be an integer in 1..65535, got \"http\"", NULL },
	{ "service_port_quoted", K_SERVICE,
	  SVC_HEAD "  ports:\n  - port: \"80\"\n",
	  "t.yaml:8: spec.ports[0].port: must be an integer", NULL },
	{ "service_port_range", K_SERVICE,
	  SVC_HEAD "  ports:\n  - port: 65536\n",
	  "t.yaml:8: spec.ports[0].port: must be an integer in 1..65535, got \"65536\"", NULL },
	{ "service_protocol", K_SERVICE,
	  SVC_HEAD "  ports:\n  - port: 80\n    protocol: tcp\n",
	  "t.yaml:9: spec.ports[0].protocol: must be TCP, UDP or SCTP, got \"tcp\"", NULL },
	{ "service_no_ports", K_SERVICE,
	  SVC_HEAD "  selector:\n    app: echo\n",
	  "t.yaml:7: spec.ports: required", NULL },
	{ "service_unnamed_ports", K_SERVICE,
	  SVC_HEAD "  ports:\n  - port: 80\n  - port: 81\n",
	  "t.yaml:8: spec.ports[0].name: required when a Service has more than one port", NULL },
	{ "service_dup_port_name", K_SERVICE,
	  SVC_HEAD "  ports:\n  - name: a\n    port: 80\n  - name: a\n    port: 81\n",
	  "t.yaml:10: spec.ports[1].name: duplicate port name \"a\"", NULL },
	{ "service_bad_cluster_ip", K_SERVICE,
	  SVC_HEAD "  clusterIP: 10.96.0.300\n  ports:\n  - port: 80\n",
	  "t.yaml:7: spec.clusterIP: must be an IP address or \"None\", got \"10.96.0.300\"", NULL },
	{ "service_bad_target_port", K_SERVICE,
	  SVC_HEAD "  ports:\n  - port: 80\n    targetPort: Http_Port\n",
	  "t.yaml:9: spec.ports[0].targetPort: must be a port number in 1..65535 or a container port name", NULL },
	{ "service_bad_name", K_SERVICE,
	  "kind: Service\nmetadata:\n  name: 1echo\nspec:\n  ports:\n  - port: 80\n",
	  "t.yaml:3: metadata.name: invalid Service name \"1echo\"", NULL },
	{ "service_bad_namespace", K_SERVICE,
	  "kind: Service\nmetadata:\n  name: echo\n  namespace: a.b\nspec:\n  ports:\n  - port: 80\n",
	  "t.yaml:4: metadata.namespace: invalid namespace \"a.b\"", NULL },
	{ "service_spec_list", K_SERVICE,
	  "kind: Service\nmetadata:\n  name: echo\nspec:\n  - port: 80\n",
	  "t.yaml:5: spec: must be a mapping, got a list", NULL },
	{ "service_bad_label", K_SERVICE,
	  "kind: Service\nmetadata:\n  name: echo\n  labels:\n    app: -x-\nspec:\n  ports:\n  - port: 80\n",
	  "t.yaml:5: metadata.labels.app: invalid label value \"-x-\"", NULL },
	{ "service_wrong_kind", K_SERVICE,
	  "kind: Pod\nmetadata:\n  name: echo\n",
	  "t.yaml:1: kind: expected Service, got \"Pod\"", NULL },
	{ "service_not_a_mapping", K_SERVICE,
	  "- a\n- b\n",
	  "t.yaml:1: document must be a mapping", NULL },
	{ "service_no_name", K_SERVICE,
	  "kind: Service\nmetadata:\n  namespace: x\nspec:\n  ports:\n  - port: 80\n",
	  "t.yaml:3: metadata.name: required", NULL },
	{ "deployment", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      version: v1\n  template:\n    metadata:\n"
	  "      labels:\n        app: echo\n        version: v1\n"
	  "      annotations:\n        lab.gammad.io/ready: \"false\"\n"
	  "    spec:\n      containers:\n      - name: echo\n        args: [--tcp=9090, --port=8080]\n"
	  "        ports:\n        - name: http\n          containerPort: 8080\n"
	  "        - containerPort: 53\n          protocol: UDP\n",
	  NULL, check_deployment },
	{ "deployment_replicas_zero", K_DEPLOYMENT,
	  DEP_HEAD "  replicas: 0\n  selector:\n    matchLabels:\n      app: e\n  template:\n"
	  "    metadata:\n      labels:\n        app: e\n    spec:\n      containers:\n      - name: c\n",
	  NULL, check_replicas_zero },
	{ "deployment_replicas_type", K_DEPLOYMENT,
	  DEP_HEAD "  replicas: two\n",
	  "t.yaml:6: spec.replicas: must be an integer in 0..10000, got \"two\"", NULL },
	{ "deployment_replicas_range", K_DEPLOYMENT,
	  DEP_HEAD "  replicas: 10001\n",
	  "t.yaml:6: spec.replicas: must be an integer in 0..10000", NULL },
	{ "deployment_selector_mismatch", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      app: other\n  template:\n    metadata:\n"
	  "      labels:\n        app: echo\n    spec:\n      containers:\n      - name: c\n",
	  "t.yaml:7: spec.selector: does not match spec.template.metadata.labels", NULL },
	{ "deployment_no_containers", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      app: e\n  template:\n    metadata:\n"
	  "      labels:\n        app: e\n    spec:\n      containers: []\n",
	  "t.yaml:14: spec.template.spec.containers: at least one container is required", NULL },
	{ "deployment_container_port", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      app: e\n  template:\n    metadata:\n"
	  "      labels:\n        app: e\n    spec:\n      containers:\n      - name: c\n"
	  "        ports:\n        - containerPort: 0\n",
	  "t.yaml:17: spec.template.spec.containers[0].ports[0].containerPort: must be an integer in 1..65535, got \"0\"", NULL },
	{ "deployment_dup_container", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      app: e\n  template:\n    metadata:\n"
	  "      labels:\n        app: e\n    spec:\n      containers:\n      - name: c\n      - name: c\n",
	  "t.yaml:16: spec.template.spec.containers[1].name: duplicate container name \"c\"", NULL },
	{ "deployment_args_type", K_DEPLOYMENT,
	  DEP_HEAD "  selector:\n    matchLabels:\n      app: e\n  template:\n    metadata:\n"
	  "      labels:\n        app: e\n    spec:\n      containers:\n      - name: c\n"
	  "        args:\n        - {a: b}\n",
	  "t.yaml:17: spec.template.spec.containers[0].args[0]: must be a string, got a mapping", NULL },
	{ "pod", K_POD,
	  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
	  "  uid: 0b7d6a3e-8c1f-4b7a-9a55-1f2e3d4c5b6a\n  generation: 3\n"
	  "  creationTimestamp: \"2024-01-02T04:04:05.25+01:00\"\n"
	  "spec:\n  nodeName: lab-node\n  containers:\n  - name: c\nstatus:\n"
	  "  podIP: 10.244.0.5\n  podIPs:\n  - ip: 10.244.0.5\n  - ip: fd00:10:244::5\n"
	  "  conditions:\n  - type: Initialized\n    status: \"True\"\n"
	  "  - type: Ready\n    status: \"True\"\n",
	  NULL, check_pod },
	{ "pod_bad_ip", K_POD,
	  "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\nstatus:\n"
	  "  podIPs:\n  - ip: 10.244.0\n",
	  "t.yaml:9: status.podIPs[0].ip: must be an IP address, got \"10.244.0\"", NULL },
	{ "pod_bad_time", K_POD,
	  "kind: Pod\nmetadata:\n  name: p\n  creationTimestamp: yesterday\n",
	  "t.yaml:4: metadata.creationTimestamp: must be an RFC 3339 time", NULL },
	{ "bad_yaml", K_SLICE,
	  "a: [b\n", NULL, NULL },	/* the loader catches it */
	{ "slice", K_SLICE,
	  SLICE_HEAD "  namespace: ns\n  labels:\n    kubernetes.io/service-name: echo\n"
	  "addressType: IPv4\nendpoints:\n- addresses: [10.244.0.5]\n  nodeName: lab-node\n"
	  "  targetRef:\n    kind: Pod\n    name: echo-v1-abc\n    uid: u-1\n"
	  "- addresses: [10.244.0.6]\n  conditions:\n    ready: false\n    terminating: true\n"
	  "ports:\n- name: http\n  port: 8080\n  protocol: TCP\n  appProtocol: http\n"
	  "- name: tcp\n  port: 9090\n",
	  NULL, check_slice },
	{ "slice_family_mismatch", K_SLICE,
	  SLICE_HEAD "addressType: IPv6\nendpoints:\n- addresses:\n  - 10.244.0.5\n",
	  "t.yaml:8: endpoints[0].addresses[0]: must be an IPv6 address, got \"10.244.0.5\"", NULL },
	{ "slice_bad_condition", K_SLICE,
	  SLICE_HEAD "addressType: IPv4\nendpoints:\n- addresses: [10.244.0.5]\n"
	  "  conditions:\n    ready: yes please\n",
	  "t.yaml:9: endpoints[0].conditions.ready: must be true or false, got \"yes please\"", NULL },
	{ "slice_address_type", K_SLICE,
	  SLICE_HEAD "addressType: IPv5\n",
	  "t.yaml:5: addressType: must be IPv4, IPv6 or FQDN, got \"IPv5\"", NULL },
};

static int parse_one(enum obj_kind kind, const struct ydoc *d, struct diag *dg,
		     union any_obj *o)
{
	switch (kind) {
	case K_NAMESPACE:
		return k8s_parse_namespace(d, dg, &o->ns);
	case K_SERVICE:
		return k8s_parse_service(d, dg, &o->svc);
	case K_POD:
		return k8s_parse_pod(d, dg, &o->pod);
	case K_DEPLOYMENT:
		return k8s_parse_deployment(d, dg, &o->dep);
	case K_SLICE:
		return k8s_parse_endpoint_slice(d, dg, &o->eps);
	}
	return -EINVAL;
}

static void free_one(enum obj_kind kind, union any_obj *o)
{
	switch (kind) {
	case K_NAMESPACE:
		k8s_namespace_free(&o->ns);
		break;
	case K_SERVICE:
		k8s_service_free(&o->svc);
		break;
	case K_POD:
		k8s_pod_free(&o->pod);
		break;
	case K_DEPLOYMENT:
		k8s_deployment_free(&o->dep);
		break;
	case K_SLICE:
		k8s_endpoint_slice_free(&o->eps);
		break;
	}
}

static void run_case(const struct parse_case *tc)
{
	struct ydoc_set set;
	struct ydoc_error yerr = { 0 };
	struct diag dg = { 0 };
	union any_obj o;
	int ret;

	ret = ydoc_load_buf("t.yaml", tc->yaml, strlen(tc->yaml), &set, &yerr);
	if (!tc->check && !tc->err) {
		/* A case that only documents that bad YAML is caught by the loader. */
		ASSERT_ERR(ret, "yaml load fails");
		if (ret)
			return;
		ydoc_set_free(&set);
		return;
	}
	if (!ASSERT_OK(ret, yerr.msg) || !ASSERT_EQ(set.nr_docs, 1, "one document"))
		goto out;
	memset(&o, 0, sizeof(o));
	ret = parse_one(tc->kind, &set.docs[0], &dg, &o);
	if (tc->err) {
		ASSERT_EQ(ret, -EINVAL, "parse fails");
		ASSERT_EQ(dg.nr_errors, 1, "exactly one error");
		ASSERT_HAS_SUBSTR(dg.nr ? dg.entries[0].msg : "", tc->err, "diagnostic");
	} else if (ASSERT_OK(ret, "parse") && ASSERT_EQ(dg.nr_errors, 0, "no errors")) {
		tc->check(&o);
		free_one(tc->kind, &o);
	}
	for (size_t i = 0; i < dg.nr; i++)
		test__printf("  diag: %s\n", dg.entries[i].msg);
out:
	diag_free(&dg);
	ydoc_set_free(&set);
}

static void test_helpers(void)
{
	struct ip_addr a;
	int64_t t;
	char buf[64];

	ASSERT_OK(ip_addr_parse("fd00:10:244::1", &a), "v6 parse");
	ASSERT_STREQ(ip_addr_str(&a, buf, sizeof(buf)), "fd00:10:244::1", "v6 print");
	ASSERT_ERR(ip_addr_parse("[fd00::1]", &a), "brackets rejected");
	ASSERT_OK(k8s_parse_time("1970-01-01T00:00:10Z", &t), "time");
	ASSERT_EQ(t, 10, "epoch + 10");
	ASSERT_OK(k8s_parse_time("1970-01-01T01:00:00+01:00", &t), "offset");
	ASSERT_EQ(t, 0, "offset applied");
	ASSERT_ERR(k8s_parse_time("1970-01-01T00:00:00", &t), "offset required");
	ASSERT_TRUE(k8s_is_dns1123_subdomain("a.b-c.d"), "subdomain");
	ASSERT_FALSE(k8s_is_dns1123_label("a.b"), "label has no dot");
	ASSERT_FALSE(k8s_is_dns1123_label("abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij"),
		     "label <= 63");
	ASSERT_TRUE(k8s_is_port_name("http-alt"), "port name");
	ASSERT_FALSE(k8s_is_port_name("8080"), "port name needs a letter");
	ASSERT_TRUE(k8s_is_label_key("kubernetes.io/service-name"), "prefixed key");
	ASSERT_FALSE(k8s_is_label_key("/x"), "empty prefix");
}

void test_k8s_parse(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (test__start_subtest(cases[i].name))
			run_case(&cases[i]);
	}
	if (test__start_subtest("helpers"))
		test_helpers();
}
