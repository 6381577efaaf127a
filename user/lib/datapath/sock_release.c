// SPDX-License-Identifier: Apache-2.0
/* Sockets and TC flows of removed endpoints (see sock_release.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/log.h"
#include "sock_release.h"
#include "skel/sock_iter.skel.h"

struct dp_release {
	struct sock_iter_bpf *skel;
	struct bpf_link *udp, *tcp;
	int rel_fd;
	uint32_t rel_max;
};

int dp_release_open(struct dp *dp, struct dp_release **out)
{
	struct dp_release *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->skel = sock_iter_bpf__open();
	if (!r->skel) {
		err = -errno;
		goto fail;
	}
	err = dp_adopt_maps(dp, r->skel->obj);
	if (!err)
		err = sock_iter_bpf__load(r->skel);
	if (err) {
		/* no bpf_sock_destroy or socket iterators: kernel < 6.5 */
		err = -EOPNOTSUPP;
		goto fail;
	}
	r->udp = bpf_program__attach_iter(r->skel->progs.gammad_release_udp, NULL);
	r->tcp = bpf_program__attach_iter(r->skel->progs.gammad_release_tcp, NULL);
	if (!r->udp || !r->tcp) {
		err = -errno ?: -EOPNOTSUPP;
		goto fail;
	}
	r->rel_fd = bpf_map__fd(r->skel->maps.gammad_rel_v1);
	r->rel_max = bpf_map__max_entries(r->skel->maps.gammad_rel_v1);
	*out = r;
	return 0;
fail:
	dp_release_close(r);
	return err;
}

void dp_release_close(struct dp_release *r)
{
	if (!r)
		return;
	bpf_link__destroy(r->udp);
	bpf_link__destroy(r->tcp);
	sock_iter_bpf__destroy(r->skel);
	free(r);
}

/* Read an iterator to its end in the current netns; how many sockets it destroyed. */
static long iter_run(struct bpf_link *link)
{
	char buf[256];
	long n = 0, got;
	int fd = bpf_iter_create(bpf_link__fd(link));

	if (fd < 0)
		return -errno;
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		n += got;
	if (got < 0)
		n = -errno;
	close(fd);
	return n;
}

/* Network namespace inodes seen so far (small: one per pod). */
struct ns_seen {
	ino_t *ino;
	size_t nr, cap;
};

static bool ns_first(struct ns_seen *s, ino_t ino)
{
	for (size_t i = 0; i < s->nr; i++)
		if (s->ino[i] == ino)
			return false;
	if (s->nr == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		ino_t *p = realloc(s->ino, cap * sizeof(*p));

		if (!p)
			return false;
		s->ino = p;
		s->cap = cap;
	}
	s->ino[s->nr++] = ino;
	return true;
}

/*
 * Run the iterators in every network namespace a process of the node is
 * in (pods' namespaces are found through their processes), then come back.
 */
static int release_sockets(struct dp_release *r, bool tcp, struct dp_release_stats *st)
{
	struct ns_seen seen = {};
	struct dirent *de;
	char path[64];
	struct stat sb;
	int self, err = 0;
	DIR *d;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	d = opendir("/proc");
	if (self < 0 || !d) {
		err = -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		long n;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.16s/ns/net", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;	/* gone meanwhile, or a kernel thread */
		if (fstat(fd, &sb) || !ns_first(&seen, sb.st_ino) || setns(fd, CLONE_NEWNET)) {
			close(fd);
			continue;
		}
		close(fd);
		st->netns++;
		n = iter_run(r->udp);
		if (n > 0)
			st->udp += (size_t)n;
		if (n < 0 && !err)
			err = (int)n;
		if (tcp) {
			n = iter_run(r->tcp);
			if (n > 0)
				st->tcp += (size_t)n;
			if (n < 0 && !err)
				err = (int)n;
		}
		if (setns(self, CLONE_NEWNET)) {
			err = -errno;
			pr_err("release: cannot return to the agent's network namespace: %s",
			       strerror(errno));
			break;
		}
	}
out:
	if (d)
		closedir(d);
	if (self >= 0)
		close(self);
	free(seen.ino);
	return err;
}

void dp_rel_key(struct gammad_rel_key *k, int family, const void *vip, uint16_t vip_port,
		uint8_t proto, const void *ep, uint16_t ep_port)
{
	size_t len = family == AF_INET ? 4 : 16;

	memset(k, 0, sizeof(*k));
	memcpy(k->vip, vip, len);
	memcpy(k->ep, ep, len);
	k->vip_port = htons(vip_port);
	k->ep_port = htons(ep_port);
	k->family = (uint8_t)family;
	k->proto = proto;
}

static int rel_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct gammad_rel_key));
}

/* Delete the TC path's UDP flows of a removed pair (both entries of each). */
static int release_ct(struct dp *dp, const struct gammad_rel_key *rel, size_t n,
		      struct dp_release_stats *st)
{
	int fd = dp_map_fd(dp, GAMMAD_MAP_CT), err = 0;
	struct gammad_ct_key k, next, *del = NULL;
	struct gammad_rel_key *sorted, rk;
	struct gammad_ct_val v;
	size_t nr = 0, cap = 0;
	void *prev = NULL;

	if (fd < 0)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, rel, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), rel_cmp);
	/* collect first: deleting while walking restarts the walk */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (k.dir != GAMMAD_CT_FWD || k.proto != IPPROTO_UDP ||
		    bpf_map_lookup_elem(fd, &k, &v))
			continue;
		memset(&rk, 0, sizeof(rk));
		memcpy(rk.vip, k.daddr, 16);
		memcpy(rk.ep, v.nat_addr, 16);
		rk.vip_port = k.dport;
		rk.ep_port = v.nat_port;
		rk.family = k.family;
		rk.proto = k.proto;
		if (!bsearch(&rk, sorted, n, sizeof(*sorted), rel_cmp))
			continue;
		if (nr + 2 > cap) {
			size_t c = cap ? 2 * cap : 64;
			struct gammad_ct_key *p = realloc(del, c * sizeof(*p));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			del = p;
			cap = c;
		}
		del[nr++] = k;
		/* the reply tuple: endpoint -> client */
		memset(&del[nr], 0, sizeof(del[nr]));
		memcpy(del[nr].saddr, v.nat_addr, 16);
		memcpy(del[nr].daddr, k.saddr, 16);
		del[nr].sport = v.nat_port;
		del[nr].dport = k.sport;
		del[nr].proto = k.proto;
		del[nr].family = k.family;
		del[nr].dir = GAMMAD_CT_REV;
		nr++;
	}
	for (size_t i = 0; i < nr; i++)
		if (!bpf_map_delete_elem(fd, &del[i]) && del[i].dir == GAMMAD_CT_FWD)
			st->ct_flows++;
	free(del);
	free(sorted);
	return err;
}

int dp_release(struct dp_release *r, struct dp *dp, const struct gammad_rel_key *rel, size_t n,
	       bool tcp, struct dp_release_stats *st)
{
	int err = 0, e;
	__u8 one = 1;

	memset(st, 0, sizeof(*st));
	if (!n)
		return 0;
	err = release_ct(dp, rel, n, st);
	if (!r)
		return err;
	/* the iterators look pairs up in gammad_rel_v1: fill it in rounds */
	for (size_t i = 0; i < n; i += r->rel_max) {
		size_t end = i + r->rel_max < n ? i + r->rel_max : n;

		for (size_t j = i; j < end; j++)
			if (bpf_map_update_elem(r->rel_fd, &rel[j], &one, BPF_ANY) && !err)
				err = -errno;
		e = release_sockets(r, tcp, st);
		err = err ?: e;
		for (size_t j = i; j < end; j++)
			bpf_map_delete_elem(r->rel_fd, &rel[j]);
	}
	return err;
}
