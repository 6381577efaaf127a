// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "lib/mesh_conf.h"
#include "lib/translate_fixture.h"

size_t mesh_conf_load(struct ydoc_set *set, const struct ydoc **d, yaml_node_t **tests)
{
	const char *path = test_shared_path(MESH_CONF_DIR "/mesh-expectations.yaml");
	struct ydoc_error err;

	if (!path) {
		test__skip("no %s (set GAMMAD_SHARED)", MESH_CONF_DIR);
		return 0;
	}
	if (!ASSERT_OK(ydoc_load_file(path, set, &err), "load expectations"))
		return 0;
	*d = &set->docs[0];
	*tests = ymap_get(*d, (*d)->root, "tests");
	if (!ASSERT_EQ(yseq_len(*tests), MESH_CONF_TESTS, "mesh tests")) {
		ydoc_set_free(set);
		return 0;
	}
	return yseq_len(*tests);
}

const char *mesh_conf_client_ns(const char *client)
{
	if (client && !strcmp(client, "consumer_echo_v1"))
		return "gateway-conformance-mesh-consumer";
	return "gateway-conformance-mesh";
}

const char *mesh_conf_case_client(const struct ydoc *d, const yaml_node_t *test,
				  const yaml_node_t *c)
{
	return mesh_conf_str(d, c, "client") ?: mesh_conf_str(d, test, "client") ?: "mesh_echo_v1";
}

bool mesh_conf_skip_path_check(const char *test, long index)
{
	/* MeshHTTPRouteNamedRule case 1 expects "/named" for "/unnamed" (see its note). */
	return !strcmp(test, "MeshHTTPRouteNamedRule") && index == 1;
}

void mesh_conf_parse_host(const char *host, const char *client_ns, const char *protocol,
			  long port, struct mesh_conf_target *t)
{
	const char *colon, *dot;

	memset(t, 0, sizeof(*t));
	t->port = port > 0 ? (uint16_t)port : protocol && !strcmp(protocol, "https") ? 443 : 80;
	if (host[0] == '<') {
		t->pod = true;
		snprintf(t->svc, sizeof(t->svc), "%.*s", (int)strcspn(host + 1, " "), host + 1);
		return;
	}
	colon = strchr(host, ':');
	snprintf(t->svc, sizeof(t->svc), "%.*s", (int)(colon ? colon - host : (long)strlen(host)),
		 host);
	dot = strchr(t->svc, '.');
	snprintf(t->ns, sizeof(t->ns), "%s", dot ? dot + 1 : client_ns);
	if (dot)
		t->svc[dot - t->svc] = 0;
}

void mesh_conf_case_target(const struct ydoc *d, const yaml_node_t *req, const char *client_ns,
			   struct mesh_conf_target *t)
{
	mesh_conf_parse_host(mesh_conf_str(d, req, "host"), client_ns,
			     mesh_conf_str(d, req, "protocol"), mesh_conf_int(d, req, "port"), t);
}

const char *mesh_conf_str(const struct ydoc *d, const yaml_node_t *map, const char *path)
{
	return ynode_str(ymap_path(d, map, path));
}

long mesh_conf_int(const struct ydoc *d, const yaml_node_t *map, const char *path)
{
	const char *s = mesh_conf_str(d, map, path);

	return s ? strtol(s, NULL, 10) : -1;
}

bool mesh_conf_status_expected(const struct ydoc *d, const yaml_node_t *expect, int status)
{
	yaml_node_t *codes = ymap_get(d, expect, "status_codes");

	for (size_t i = 0; i < yseq_len(codes); i++)
		if (strtol(ynode_str(yseq_at(d, codes, i)), NULL, 10) == status)
			return true;
	return false;
}

bool mesh_conf_has_feature(const struct ydoc *d, const yaml_node_t *test, const char *feature)
{
	yaml_node_t *f = ymap_get(d, test, "features");

	for (size_t i = 0; i < yseq_len(f); i++)
		if (!strcmp(ynode_str(yseq_at(d, f, i)) ?: "", feature))
			return true;
	return false;
}

/*
 * One ready endpoint per Deployment, for every Service selecting it, named
 * like a ReplicaSet pod ("echo-v1-5d8f7c9b6-abcde") with a fake pod IP.
 */
static int synthesize_endpoints(struct tfx *f)
{
	char *yaml = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&yaml, &len);
	int ret;

	if (!out)
		return -ENOMEM;
	for (size_t d = 0; d < f->m.deployments.nr; d++) {
		const struct k8s_deployment *dep = f->m.deployments.items[d];

		for (size_t s = 0; s < f->m.services.nr; s++) {
			const struct k8s_service *svc = f->m.services.items[s];

			if (strcmp(svc->meta.namespace, dep->meta.namespace) ||
			    !svc->selector.nr ||
			    !k8s_labels_match(&svc->selector, &dep->template.labels))
				continue;
			fprintf(out, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				"metadata:\n  name: %s-%s\n  namespace: %s\n  labels:\n"
				"    kubernetes.io/service-name: %s\naddressType: IPv4\n"
				"endpoints:\n- addresses: [\"10.244.%zu.%zu\"]\n"
				"  conditions: {ready: true}\n"
				"  targetRef: {kind: Pod, namespace: %s, name: %s-5d8f7c9b6-abcde}\n"
				"ports:\n", svc->meta.name, dep->meta.name, svc->meta.namespace,
				svc->meta.name, d / 200, d % 200 + 10, dep->meta.namespace,
				dep->meta.name);
			for (size_t p = 0; p < svc->nr_ports; p++) {
				const struct k8s_service_port *sp = &svc->ports[p];

				fprintf(out, "- {name: %s, port: %u, protocol: TCP}\n",
					sp->name ? sp->name : "\"\"",
					sp->target_port ? sp->target_port : sp->port);
			}
		}
	}
	fclose(out);
	ret = tfx_load(f, "synthesized-endpoints.yaml", yaml);
	free(yaml);
	return ret;
}

int mesh_conf_load_test(struct tfx *f, const struct ydoc *d, const yaml_node_t *test)
{
	const char *base = test_shared_path(MESH_CONF_DIR "/mesh/manifests.yaml");
	yaml_node_t *manifests = ymap_get(d, test, "manifests");
	char path[512];
	int ret;

	if (!base)
		return -ENOENT;
	ret = manifest_load_path(&f->m, base, &f->dg);
	if (!ret)
		ret = synthesize_endpoints(f);
	for (size_t i = 0; !ret && i < yseq_len(manifests); i++) {
		snprintf(path, sizeof(path), "%s/%s/tests/mesh/%s", env.shared_dir, MESH_CONF_DIR,
			 ynode_str(yseq_at(d, manifests, i)));
		ret = manifest_load_path(&f->m, path, &f->dg);
	}
	if (!ret)
		ret = tfx_translate(f);
	return ret;
}
