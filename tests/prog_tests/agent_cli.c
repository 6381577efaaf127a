// SPDX-License-Identifier: Apache-2.0
/*
 * `gammad run` refuses bad input before it loads or attaches anything: the
 * message names what is wrong, the exit status is 2 (usage), and no pin
 * dir is left behind. `gammad --manifests DIR` (no subcommand, as the
 * DaemonSet runs it) is the agent.
 *
 * once_http_l4: `gammad run --once` runs no HTTP engine (it is on by
 * default, but lives in the running agent): it applies, exits 0, names the
 * Service ports whose HTTP rules get the L4 union, and marks no selector
 * for the engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "gammad/maps.h"
#include "datapath/cgroup.h"

#include "test_progs.h"
#include "lib/lab_env.h"

static const struct {
	const char *name;
	const char *args;	/* after "gammad", before --pin-dir */
	const char *says;	/* substring of the output */
} cases[] = {
	{ "missing_manifests", "run --manifests /nonexistent/gammad", "--manifests /nonexistent/gammad" },
	{ "no_subcommand_is_run", "--manifests /nonexistent/gammad", "--manifests /nonexistent/gammad" },
	{ "unknown_uplink", "run --manifests /tmp --uplink gammad-no-such0", "--uplink gammad-no-such0" },
	{ "bad_map_size", "run --manifests /tmp --map-size endpoints=0", "--map-size endpoints=0" },
	{ "unknown_map", "run --manifests /tmp --map-size nosuch=5", "NAME one of" },
	{ "bad_resync", "run --manifests /tmp --resync 0", "--resync 0" },
	{ "uplink_without_tc", "run --manifests /tmp --uplink lo --no-tc", "--uplink needs the TC path" },
	{ "missing_cgroup", "run --manifests /tmp", "--cgroup /nonexistent/cg" },
	{ "bad_hairpin_addr", "run --manifests /tmp --hairpin-addr 169.254.7", "--hairpin-addr 169.254.7" },
	{ "loopback_hairpin_addr", "run --manifests /tmp --hairpin-addr ::1", "--hairpin-addr ::1" },
	{ "linklocal_hairpin_addr", "run --manifests /tmp --hairpin-addr fe80::7", "IPv6 link-local" },
	{ "two_hairpin_addr4", "run --manifests /tmp --hairpin-addr 169.254.7.2 --hairpin-addr 10.1.1.1",
	  "one address per family" },
	{ "hairpin_without_tc", "run --manifests /tmp --hairpin-addr 169.254.7.2 --no-tc",
	  "--hairpin-addr needs the TC path" },
	{ "engine_port_without_engine", "run --manifests /tmp --no-http-engine --engine-port 15007",
	  "--engine-port needs the HTTP engine (drop --no-http-engine)" },
	{ "handover_wait_without_engine", "run --manifests /tmp --no-http-engine --handover-wait",
	  "--handover-wait needs the HTTP engine (drop --no-http-engine)" },
	{ "engine_port_once", "run --manifests /tmp --once --engine-port 15007",
	  "--engine-port needs the HTTP engine (drop --once)" },
	{ "handover_wait_no_sockmap", "run --manifests /tmp --no-sockmap --handover-wait",
	  "--handover-wait needs the HTTP engine (drop --no-sockmap)" },
	{ "engine_on_and_off", "run --manifests /tmp --http-engine --no-http-engine",
	  "pick one" },
	{ "bad_engine_port", "run --manifests /tmp --http-engine --engine-port 70000",
	  "--engine-port 70000" },
	{ "http_engine_once", "run --manifests /tmp --http-engine --once",
	  "--http-engine needs a running agent" },
	{ "http_engine_no_sockmap", "run --manifests /tmp --http-engine --no-sockmap",
	  "drop --no-sockmap" },
	{ "bad_sockmap_cap", "run --manifests /tmp --sockmap-cap 4G", "--sockmap-cap 4G" },
	{ "small_sockmap_cap", "run --manifests /tmp --sockmap-cap 1000", "--sockmap-cap 1000" },
	{ "sockmap_cap_no_sockmap", "run --manifests /tmp --sockmap-cap 8M --no-sockmap",
	  "--sockmap-cap needs the socket redirect (--sockmap)" },
	/* The redirect is opt-in: its cap means nothing without it. */
	{ "sockmap_cap_without_sockmap", "run --manifests /tmp --sockmap-cap 8M",
	  "--sockmap-cap needs the socket redirect (--sockmap)" },
	{ "sockmap_and_no_sockmap", "run --manifests /tmp --sockmap --no-sockmap",
	  "--sockmap and --no-sockmap: pick one" },
};

/* Service cli/web:80 with an HTTPRoute rule, cli/db:5432 without a route. */
static const char once_manifests[] =
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata: {name: cli}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web, namespace: cli}\n"
	"spec:\n"
	"  clusterIP: 10.96.251.10\n"
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: db, namespace: cli}\n"
	"spec:\n"
	"  clusterIP: 10.96.251.11\n"
	"  ports: [{name: pg, port: 5432, targetPort: 5432}]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: web-1, namespace: cli, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv4\n"
	"endpoints: [{addresses: [10.0.251.1], conditions: {ready: true}}]\n"
	"ports: [{name: http, port: 8080, protocol: TCP}]\n"
	"---\n"
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: HTTPRoute\n"
	"metadata: {name: web-jason, namespace: cli}\n"
	"spec:\n"
	"  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
	"  rules:\n"
	"  - matches: [{headers: [{name: end-user, value: jason}]}]\n"
	"    backendRefs: [{name: web, port: 80}]\n";

/* Selectors pinned in pin, and how many carry GAMMAD_SEL_HTTP_ENGINE; -1: none read. */
static int count_selectors(const char *pin, int *engine)
{
	char path[128];
	struct gammad_sel_val v;
	__u32 key, *prev = NULL;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/%s", pin, GAMMAD_MAP_SELECTOR);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	*engine = 0;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		if (!bpf_map_lookup_elem(fd, &key, &v)) {
			n++;
			*engine += !!(v.flags & GAMMAD_SEL_HTTP_ENGINE);
		}
		prev = &key;
	}
	close(fd);
	return n;
}

static void once_http_l4(const char *pin)
{
	char dir[] = "/tmp/gammad-cli-XXXXXX", file[64], cg2[PATH_MAX], cg[PATH_MAX + 32];
	char *out = NULL;
	int ret, engine = -1, sels;
	FILE *f;

	if (!ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp"))
		return;
	snprintf(file, sizeof(file), "%s/cli.yaml", dir);
	cg[0] = '\0';
	f = fopen(file, "w");
	if (!ASSERT_OK_PTR(f, "manifest"))
		goto out;
	fputs(once_manifests, f);
	fclose(f);
	if (!ASSERT_OK(cgroup2_mount_path(cg2, sizeof(cg2)), "cgroup2 mount"))
		goto out;
	snprintf(cg, sizeof(cg), "%s/gammad-cli-%d", cg2, (int)getpid());
	if (!ASSERT_OK(mkdir(cg, 0755), "attach cgroup")) {
		cg[0] = '\0';
		goto out;
	}
	ret = lab_run_capture(&out, "%s run --once --no-tc --manifests %s --cgroup %s --pin-dir %s",
			      test_bin("gammad"), dir, cg, pin);
	if (!ASSERT_EQ(ret, 0, "gammad run --once"))
		goto out;
	ASSERT_HAS_SUBSTR(out, "HTTP engine off (--once)", "says the engine is off");
	ASSERT_HAS_SUBSTR(out, "1 Service ports take the L4 union", "counts the HTTP ports");
	ASSERT_HAS_SUBSTR(out, "cli/web:80", "names the HTTP port");
	ASSERT_NULL(strstr(out, "cli/db:5432"), "not the route-less port");
	sels = count_selectors(pin, &engine);
	ASSERT_GT(sels, 0, "selectors pinned");
	ASSERT_EQ(engine, 0, "no selector steers to the engine");
out:
	free(out);
	lab_agent_uninstall(pin);
	if (cg[0])
		rmdir(cg);
	unlink(file);
	rmdir(dir);
}

void test_agent_cli(void)
{
	char pin[64], *out = NULL;
	struct stat sb;

	snprintf(pin, sizeof(pin), "/sys/fs/bpf/gammad-cli-%d", (int)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;

		if (!test__start_subtest(cases[i].name))
			continue;
		/* A cgroup that does not exist: should validation ever miss, nothing attaches. */
		ret = lab_run_capture(&out, "%s %s --cgroup /nonexistent/cg --pin-dir %s",
				      test_bin("gammad"), cases[i].args,
				      pin);
		ASSERT_EQ(ret, 2, "usage error");
		ASSERT_HAS_SUBSTR(out, cases[i].says, "names what is wrong");
		ASSERT_ERR(stat(pin, &sb), "no pin dir left behind");
		free(out);
		out = NULL;
		if (!stat(pin, &sb))
			lab_run_capture(&out, "%s uninstall --pin-dir %s", test_bin("gammad"), pin);
		free(out);
		out = NULL;
	}
	if (test__start_subtest("cgroup_not_v2")) {
		/* /tmp is no cgroup v2 directory (nor is a hybrid host's tmpfs /sys/fs/cgroup). */
		int ret = lab_run_capture(&out, "%s run --manifests /tmp --cgroup /tmp --pin-dir %s",
					  test_bin("gammad"), pin);

		ASSERT_EQ(ret, 2, "usage error");
		ASSERT_HAS_SUBSTR(out, "--cgroup /tmp: not a directory of the cgroup v2 mount",
				  "names what is wrong");
		ASSERT_ERR(stat(pin, &sb), "no pin dir left behind");
		free(out);
		out = NULL;
	}
	if (test__start_subtest("once_http_l4"))
		once_http_l4(pin);
}
