// SPDX-License-Identifier: Apache-2.0
/* A kernel-served client's sockmap backlog: see khttp_backlog.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/netns_sock.h"
#include "khttp_backlog.h"
#include "skel/khttp_iter.skel.h"

struct kh_backlog {
	struct khttp_iter_bpf *skel;
	struct bpf_link *link;
};

int kh_backlog_open(struct kh_backlog **out)
{
	struct kh_backlog *b = calloc(1, sizeof(*b));
	int err;

	if (!b)
		return -ENOMEM;
	b->skel = khttp_iter_bpf__open_and_load();
	if (!b->skel) {
		err = -errno;
		goto fail;
	}
	b->link = bpf_program__attach_iter(b->skel->progs.gammad_kh_backlog, NULL);
	if (!b->link) {
		err = -errno;
		goto fail;
	}
	*out = b;
	return 0;
fail:
	kh_backlog_free(b);
	return err ? err : -EOPNOTSUPP;
}

void kh_backlog_free(struct kh_backlog *b)
{
	if (!b)
		return;
	bpf_link__destroy(b->link);
	khttp_iter_bpf__destroy(b->skel);
	free(b);
}

int kh_backlog_pending(struct kh_backlog *b, int netns_fd, uint64_t cookie)
{
	uint64_t ck[64];
	int fd, found = 0;
	ssize_t n;

	fd = netns_iter_create(netns_fd, bpf_link__fd(b->link));
	if (fd < 0)
		return fd;
	/* the cookies of the sockets with a backlog, 8 bytes each (few: rarely more than one) */
	while ((n = read(fd, ck, sizeof(ck))) > 0)
		for (size_t i = 0; i < (size_t)n / sizeof(ck[0]); i++)
			found |= ck[i] == cookie;
	if (n < 0)
		found = -errno;
	close(fd);
	return found;
}
