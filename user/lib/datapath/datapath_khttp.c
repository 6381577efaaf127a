// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.1 in the kernel, the data path's programs (bpf/khttp.bpf.c) as
 * part of the pinned data path: every map of the object pinned as
 * <pin_dir>/<name> (the route maps and kernel HTTP tables shared with the
 * other objects, its own sockhashes, slots and ring buffer beside them),
 * gammad_kh_sockops attached to the cgroup through the pinned link
 * link_kh_sockops (beside link_sockops), gammad_kh_client on the client
 * sockhash (BPF_SK_MSG_VERDICT), gammad_kh_upstream on the upstream
 * sockhash (BPF_SK_SKB_VERDICT) and gammad_kh_server on the same-node server
 * sockhash (BPF_SK_MSG_VERDICT), kept alive by the pinned sockhashes as
 * the main sk_msg program is. A restarted agent adopts the maps and swaps
 * the programs in; `gammad uninstall` removes it all with the rest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "datapath.h"
#include "datapath_int.h"
#include "skel/khttp.skel.h"
#include "skel/sockops.skel.h"

struct dp_kh {
	struct khttp_bpf *skel;
};

static int sockhash_attach(struct bpf_program *p, struct bpf_map *m, enum bpf_attach_type t)
{
	/* Replaces the program of an adopted sockhash. */
	if (bpf_prog_attach(bpf_program__fd(p), bpf_map__fd(m), t, 0)) {
		int err = -errno;

		pr_err("datapath: attach %s to %s: %s", bpf_program__name(p), bpf_map__name(m),
		       strerror(-err));
		return err;
	}
	return 0;
}

int dp_kh_open(struct dp *dp, struct dp_kh **out)
{
	struct dp_kh *k = calloc(1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	k->skel = khttp_bpf__open();
	err = k->skel ? 0 : -errno;
	/* the in-flight cap is the L4 redirect's (--sockmap-cap; the same default) */
	if (!err && dp->so)
		k->skel->rodata->kh_cap = dp->so->rodata->sockmap_cap;
	if (!err)
		err = dp_pin_all_maps(dp, k->skel->obj);
	if (!err)
		err = khttp_bpf__load(k->skel);
	/* the verdicts first: a socket sockops registers finds its program there */
	if (!err)
		err = sockhash_attach(k->skel->progs.gammad_kh_upstream, k->skel->maps.gammad_khup_v1,
				      BPF_SK_SKB_VERDICT);
	if (!err)
		err = sockhash_attach(k->skel->progs.gammad_kh_server, k->skel->maps.gammad_khsv_v1,
				      BPF_SK_MSG_VERDICT);
	if (!err)
		err = sockhash_attach(k->skel->progs.gammad_kh_client, k->skel->maps.gammad_khcli_v1,
				      BPF_SK_MSG_VERDICT);
	if (!err)
		err = dp_attach_cgroup_prog(dp, k->skel->progs.gammad_kh_sockops);
	if (err) {
		pr_err("datapath: kernel HTTP programs: %s", strerror(-err));
		dp_kh_close(k);
		return err;
	}
	*out = k;
	return 0;
}

void dp_kh_close(struct dp_kh *k)
{
	if (!k)
		return;
	khttp_bpf__destroy(k->skel);
	free(k);
}

int dp_kh_detach(struct dp *dp)
{
	return dp_detach_pinned_link(dp, "kh_sockops");
}

int dp_kh_map_fd(const struct dp_kh *k, const char *name)
{
	struct bpf_map *m = k ? bpf_object__find_map_by_name(k->skel->obj, name) : NULL;

	return m ? bpf_map__fd(m) : -ENOENT;
}

bool dp_kh_samenode(const struct dp *dp)
{
	return dp->so && dp->so->rodata->sock_redirect;
}
