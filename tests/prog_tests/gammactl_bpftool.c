// SPDX-License-Identifier: Apache-2.0
/*
 * Operators read the pinned maps with bpftool: every map gammad pins must
 * carry BTF for its key and value, so `bpftool btf dump map pinned P kv`
 * names every field and `bpftool -j map dump pinned P` prints entries with
 * field names. The maps are the fixture's own (dp_open under its pin dir),
 * with an entry written in each map the agent fills.
 *
 * Kernel limits, checked so a change shows up: a SOCKHASH takes no BTF
 * (its value is the socket), and socket-storage maps cannot be iterated
 * from userspace (their types are still dumped through BTF).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "test_progs.h"
#include "lib/dp_fixture.h"
#include "lib/lab_env.h"

struct map_expect {
	const char *name;
	const char *btf[8];		/* substrings of the BTF dump: type and field names */
	const char *dump;		/* substring of the JSON dump with entries, or NULL */
};

static const struct map_expect maps[] = {
	{ GAMMAD_MAP_FRONTEND, { "'gammad_fe_key'", "'addr'", "'port'", "'proto'", "'family'",
	  "'svc_port_id'", "'table_gen'", "'default_sel'" }, "\"default_sel\"" },
	{ GAMMAD_MAP_CONSUMER, { "'gammad_cons_key'", "'table_gen'", "'ns_id'", "'gammad_cons_val'",
	  "'sel'" }, "\"ns_id\"" },
	{ GAMMAD_MAP_CGROUP_NS, { "'__u64'", "'gammad_cgns_val'", "'ns_id'" }, "\"ns_id\"" },
	{ GAMMAD_MAP_SELECTOR, { "'gammad_sel_val'", "'nr_slots'", "'total_weight'", "'route_id'" },
	  "\"total_weight\"" },
	{ GAMMAD_MAP_ALIAS, { "'gammad_alias_key'", "'sel_id'", "'slot'", "'threshold'",
	  "'primary'", "'alias'" }, "\"threshold\"" },
	{ GAMMAD_MAP_BACKEND, { "'gammad_be_val'", "'ep_set'", "'nr_endpoints'", "'flags'",
	  "'affinity_timeout'" },
	  "\"nr_endpoints\"" },
	{ GAMMAD_MAP_ENDPOINT, { "'gammad_ep_key'", "'idx'", "'gammad_ep_val'", "'addr'", "'port'" },
	  "\"idx\"" },
	{ GAMMAD_MAP_LOCAL_EP, { "'gammad_lep_key'", "'addr'", "'family'", "'gammad_lep_val'" },
	  "\"family\"" },
	{ GAMMAD_MAP_SVC_STATS, { "'gammad_svc_stats'", "'connects'", "'no_backend'", "'refused'" },
	  "\"no_endpoint\"" },
	{ GAMMAD_MAP_BE_STATS, { "'gammad_be_stats'", "'connects'" }, "\"connects\"" },
	{ GAMMAD_MAP_ROUTE_STATS, { "'gammad_route_stats'", "'connects'" }, "\"connects\"" },
	{ GAMMAD_MAP_DROPS, { "'__u32'", "'__u64'" }, "\"cpu\"" },
	{ GAMMAD_MAP_OBJECTS, { "'gammad_obj_key'", "'kind'", "'gammad_obj_val'", "'ident'",
	  "'namespace'", "'name'", "'section'" }, "\"namespace\"" },
	{ GAMMAD_MAP_REVNAT, { "'gammad_revnat_key'", "'cookie'", "'gammad_revnat_val'" }, NULL },
	{ GAMMAD_MAP_SOCK_ORIG, { "'gammad_sock_orig'", "'vip'", "'be_addr'", "'vip_port'" }, NULL },
	{ GAMMAD_MAP_SOCK_REDIR, { "'gammad_sock_redir'", "'state'" }, NULL },
	{ GAMMAD_MAP_ORIGDST, { "'gammad_origdst_key'", "'netns_cookie'", "'gammad_origdst_val'",
	  "'vip'", "'vip_port'", "'ns_id'" }, NULL },
	{ GAMMAD_MAP_ENGINE_NS, { "'__u64'", "'gammad_engns_val'", "'flags'" }, NULL },
	{ GAMMAD_MAP_SOCK_ENGINE, { "'gammad_sock_engine'", "'ns_id'" }, NULL },
	{ GAMMAD_MAP_CT, { "'gammad_ct_key'", "'saddr'", "'dport'", "'dir'", "'gammad_ct_val'",
	  "'nat_addr'", "'last_seen'" }, NULL },
	{ GAMMAD_MAP_POD, { "'gammad_pod_key'", "'addr'", "'gammad_pod_val'", "'ns_id'",
	  "'ifindex'" }, NULL },
	{ GAMMAD_MAP_TC_STATS, { "'__u32'", "'__u64'" }, "\"cpu\"" },
	{ GAMMAD_MAP_AFFINITY, { "'gammad_aff_key'", "'be_id'", "'kind'", "'client'",
	  "'gammad_aff_val'", "'idx'", "'last_used'" }, NULL },
	/* Kernel HTTP tables (--kernel-http; empty here) */
	{ GAMMAD_MAP_KH_CLASS, { "'gammad_cons_key'", "'table_gen'", "'gammad_kh_class_val'",
	  "'tab'" }, NULL },
	{ GAMMAD_MAP_KH_TABLE, { "'gammad_kh_table'", "'nr_entries'", "'engine_reason'" }, NULL },
	{ GAMMAD_MAP_KH_ENTRY, { "'gammad_kh_key'", "'gammad_kh_entry'", "'path_type'", "'method'",
	  "'conds'" }, NULL },
	{ GAMMAD_MAP_KH_RULE, { "'gammad_kh_rule'", "'kind'", "'nr_slots'", "'loc_prefix'" }, NULL },
	{ GAMMAD_MAP_KH_RB, { "'gammad_kh_rb'", "'be_id'", "'remove'", "'append'" }, NULL },
	{ GAMMAD_MAP_KH_ALIAS, { "'gammad_kh_alias_key'", "'rule'", "'slot'", "'gammad_alias_val'" },
	  NULL },
	{ GAMMAD_MAP_KH_STATS, { "'__u32'", "'__u64'" }, "\"cpu\"" },
};

static int populate(struct dp_fixture *fx)
{
	struct gammad_obj_val o = { .ident = 7, .hash = 1 };
	struct gammad_fe_key key;
	struct in_addr a;
	uint32_t w = 1;

	fx_key(&key, "198.19.3.1", IPPROTO_TCP);
	inet_pton(AF_INET, "198.18.1.2", &a);
	snprintf(o.namespace, sizeof(o.namespace), "nsx");
	snprintf(o.name, sizeof(o.name), "nsx");
	return fx_publish(fx, &key, 1, &w, 300) ?:
	       dp_consumer_write(fx->dp, 1, 7, 300) ?:
	       dp_cgroup_ns_set(fx->dp, fx->cg_nsx_id, 7) ?:
	       dp_local_endpoint_add(fx->dp, AF_INET, &a) ?:
	       dp_obj_put(fx->dp, GAMMAD_OBJ_NAMESPACE, 7, &o);
}

void test_gammactl_bpftool(void)
{
	struct dp_fixture fx;
	char *out = NULL;
	int ret;

	if (geteuid()) {
		test__skip("needs root");
		return;
	}
	if (!ASSERT_OK(fx_setup(&fx, 1, false), "fixture"))
		goto cleanup;
	if (!ASSERT_OK(populate(&fx), "an entry in every map the agent fills"))
		goto cleanup;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		const struct map_expect *m = &maps[i];

		if (!test__start_subtest(m->name))
			continue;
		ret = lab_run_capture(&out, "bpftool btf dump map pinned %s/%s kv", fx.pin_dir,
				      m->name);
		test__printf("btf of %s: %d\n%s\n", m->name, ret, out ? out : "");
		if (ASSERT_EQ(ret, 0, "bpftool btf dump map"))
			for (size_t k = 0; k < 8 && m->btf[k]; k++)
				ASSERT_HAS_SUBSTR(out, m->btf[k], m->name);
		free(out);
		out = NULL;
		if (!m->dump)
			continue;
		ret = lab_run_capture(&out, "bpftool -j map dump pinned %s/%s", fx.pin_dir, m->name);
		if (ASSERT_EQ(ret, 0, "bpftool -j map dump"))
			ASSERT_HAS_SUBSTR(out, m->dump, m->name);
		free(out);
		out = NULL;
	}
	if (test__start_subtest("every_pinned_map_listed")) {
		/* A new map must join the table above. */
		ret = lab_run_capture(&out, "ls %s | grep -v '^link_'", fx.pin_dir);
		for (char *l = out, *nl; ret == 0 && l && *l; l = nl ? nl + 1 : NULL) {
			bool known = !strncmp(l, GAMMAD_MAP_SOCKHASH, strlen(GAMMAD_MAP_SOCKHASH)) ||
				     !strncmp(l, GAMMAD_MAP_ENGINE_SOCKHASH,
					      strlen(GAMMAD_MAP_ENGINE_SOCKHASH));

			nl = strchr(l, '\n');
			if (nl)
				*nl = 0;
			for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
				known |= !strcmp(l, maps[i].name);
			if (*l && !ASSERT_TRUE(known, "pinned map checked above"))
				test__printf("unchecked pinned map %s\n", l);
		}
		ASSERT_EQ(ret, 0, "ls pin dir");
		free(out);
		out = NULL;
	}
	if (test__start_subtest("sockhash_has_no_btf")) {
		ret = lab_run_capture(&out, "bpftool btf dump map pinned %s/%s kv", fx.pin_dir,
				      GAMMAD_MAP_SOCKHASH);
		ASSERT_NEQ(ret, 0, "the kernel keeps no BTF for a SOCKHASH");
		free(out);
		out = NULL;
	}
cleanup:
	free(out);
	fx_teardown(&fx);
}
