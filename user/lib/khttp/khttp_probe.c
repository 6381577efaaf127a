// SPDX-License-Identifier: Apache-2.0
/*
 * Can this kernel run the kernel HTTP data path (bpf/khttp.bpf.c)? Two
 * questions. Behaviour: the programs load (BPF atomics, bpf_loop, socket
 * storage from sk_msg, sk_skb verdict) and attach to their sockhashes
 * (BPF_SK_MSG_VERDICT, BPF_SK_SKB_VERDICT). Fixes that no probe shows
 * (the brief's "sockmap / sk_msg: risks": receive-side charging in
 * bpf_tcp_ingress, the tcp_bpf_sendmsg uncharge of CVE-2024-56633, data
 * lost or duplicated on EAGAIN, the psock races): the kernel version, 6.18
 * or newer, where all of them are. A distribution kernel with backports
 * reads as too old: the engine then serves, which is never wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "khttp.h"
#include "skel/khttp.skel.h"

#define KH_KERNEL_MAJOR	6
#define KH_KERNEL_MINOR	18

bool kh_kernel_release_ok(const char *release)
{
	unsigned int major = 0, minor = 0;

	if (!release || sscanf(release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > KH_KERNEL_MAJOR || (major == KH_KERNEL_MAJOR && minor >= KH_KERNEL_MINOR);
}

int kh_path_probe(char *why, size_t len)
{
	struct khttp_bpf *skel;
	struct utsname u;
	int msg, skb, ret = 0;

	if (uname(&u) || !kh_kernel_release_ok(u.release)) {
		snprintf(why, len, "kernel %s is older than %d.%d, which has the sockmap fixes "
			 "the path relies on", uname(&u) ? "?" : u.release, KH_KERNEL_MAJOR,
			 KH_KERNEL_MINOR);
		return -EOPNOTSUPP;
	}
	skel = khttp_bpf__open_and_load();
	if (!skel) {
		ret = -errno;
		snprintf(why, len, "the data-path programs do not load: %s", strerror(-ret));
		return ret ? ret : -EOPNOTSUPP;
	}
	msg = bpf_map__fd(skel->maps.gammad_khcli_v1);
	skb = bpf_map__fd(skel->maps.gammad_khup_v1);
	if (bpf_prog_attach(bpf_program__fd(skel->progs.gammad_kh_client), msg,
			    BPF_SK_MSG_VERDICT, 0)) {
		ret = -errno;
		snprintf(why, len, "sk_msg verdict does not attach: %s", strerror(-ret));
	} else if (bpf_prog_attach(bpf_program__fd(skel->progs.gammad_kh_upstream), skb,
				   BPF_SK_SKB_VERDICT, 0)) {
		ret = -errno;
		snprintf(why, len, "sk_skb verdict does not attach: %s", strerror(-ret));
	} else {
		snprintf(why, len, "kernel %s: the data-path programs load and attach", u.release);
	}
	/* the maps and their attachments go with the skeleton */
	khttp_bpf__destroy(skel);
	return ret;
}
