// SPDX-License-Identifier: Apache-2.0
/* TC attachments follow the pods: see tc_sync.h. */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "map_dump.h"
#include "tc_sync.h"

struct want {
	int ifindex;
	enum tc_role role;
};

static int want_cmp(const void *a, const void *b)
{
	const struct want *x = a, *y = b;

	return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

static int want_add(struct want **w, size_t *nr, size_t *cap, int ifindex, enum tc_role role)
{
	if (*nr == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct want *v = realloc(*w, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		*w = v;
		*cap = n;
	}
	(*w)[(*nr)++] = (struct want){ .ifindex = ifindex, .role = role };
	return 0;
}

/* Uplinks first, then pod veths: a pod veth listed as an uplink stays one. */
static int wanted(struct dp *dp, const int *uplinks, size_t nr_uplinks, struct want **w,
		  size_t *nr, struct tc_sync_stats *st)
{
	int fd = dp_map_fd(dp, GAMMAD_MAP_POD);
	struct map_dump d = { 0 };
	size_t cap = 0;
	int err = 0;

	*w = NULL;
	*nr = 0;
	for (size_t i = 0; i < nr_uplinks && !err; i++)
		err = want_add(w, nr, &cap, uplinks[i], TC_ROLE_UPLINK);
	st->uplinks = nr_uplinks;
	if (!err && fd >= 0)
		err = map_dump_read(fd, &d);
	for (size_t i = 0; i < d.nr && !err; i++) {
		const struct gammad_pod_val *v = map_dump_val(&d, i);
		bool dup = false;

		if (!v->ifindex)
			continue;
		for (size_t j = 0; j < *nr && !dup; j++)
			dup = (*w)[j].ifindex == (int)v->ifindex;
		if (dup)
			continue;	/* dual-stack pods have two IPs, one veth */
		err = want_add(w, nr, &cap, (int)v->ifindex, TC_ROLE_POD);
		st->pods++;
	}
	map_dump_free(&d);
	if (!err)
		qsort(*w, *nr, sizeof(**w), want_cmp);
	return err;
}

/* "link_tc_<n>" and "clsact_tc_<n>" -> n; 0 for other names. */
static int pinned_ifindex(const char *name)
{
	const char *p = !strncmp(name, "link_tc_", 8) ? name + 8 :
			!strncmp(name, "clsact_tc_", 10) ? name + 10 : NULL;
	char *end;
	long v;

	if (!p)
		return 0;
	v = strtol(p, &end, 10);
	return *end || v <= 0 || v > 0x7fffffff ? 0 : (int)v;
}

/* Pinned BPF objects cannot be open()ed: ask for their existence only. */
static bool pinned(const char *pin_dir, int ifindex)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/link_tc_%d", pin_dir, ifindex);
	if (!access(path, F_OK))
		return true;
	snprintf(path, sizeof(path), "%s/clsact_tc_%d", pin_dir, ifindex);
	return !access(path, F_OK);
}

static const char *if_name(int ifindex, char *buf)
{
	return if_indextoname((unsigned int)ifindex, buf) ? buf : "(gone)";
}

static int detach_unwanted(struct tc_dp *t, const char *pin_dir, const struct want *w,
			   size_t nr, struct tc_sync_stats *st)
{
	struct want key = { 0 };
	struct dirent *e;
	char name[IF_NAMESIZE];
	int err = 0;
	DIR *d = opendir(pin_dir);

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		int e2;

		key.ifindex = pinned_ifindex(e->d_name);
		if (!key.ifindex || bsearch(&key, w, nr, sizeof(*w), want_cmp))
			continue;
		e2 = tc_detach(t, key.ifindex);
		if (e2) {
			pr_err("tc: detach ifindex %d: %s", key.ifindex, strerror(-e2));
			err = err ?: e2;
			continue;
		}
		pr_info("tc: detached from %s (ifindex %d): no pod behind it any more",
			if_name(key.ifindex, name), key.ifindex);
		st->detached++;
	}
	closedir(d);
	return err;
}

int tc_sync(struct tc_dp *t, struct dp *dp, const char *pin_dir, const int *uplinks,
	    size_t nr_uplinks, bool refresh, struct tc_sync_stats *st)
{
	struct tc_sync_stats dummy;
	char name[IF_NAMESIZE];
	struct want *w;
	size_t nr;
	int err, e2;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	err = wanted(dp, uplinks, nr_uplinks, &w, &nr, st);
	if (err) {
		free(w);
		return err;
	}
	/* One interface failing (a veth going away meanwhile) stops no other. */
	for (size_t i = 0; i < nr; i++) {
		int e;

		if (!refresh && pinned(pin_dir, w[i].ifindex))
			continue;
		e = tc_attach(t, w[i].ifindex, w[i].role);
		if (e) {
			pr_err("tc: attach to %s (ifindex %d): %s", if_name(w[i].ifindex, name),
			       w[i].ifindex, strerror(-e));
			err = err ?: e;
			continue;
		}
		pr_debug("tc: attached to %s (ifindex %d) as %s", if_name(w[i].ifindex, name),
			 w[i].ifindex, w[i].role == TC_ROLE_UPLINK ? "uplink" : "pod veth");
		st->attached++;
	}
	e2 = detach_unwanted(t, pin_dir, w, nr, st);
	free(w);
	return err ?: e2;
}
