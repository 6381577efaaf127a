/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write a whole map image (image.h) into the data-path maps (datapath.h),
 * allocating dense kernel ids per image entry. Each apply uses fresh ids
 * (two alternating id ranges), flips every frontend, deletes frontends that
 * disappeared, waits with dp_sync() and then retires the previous apply's ids.
 */
#ifndef GAMMAD_IMAGE_APPLY_H
#define GAMMAD_IMAGE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "datapath.h"
#include "image.h"

/* Entries per id range (half of the default map sizes). */
#define IA_RANGE 8192

struct ia_state {
	unsigned int applies;		/* number of successful applies */
	uint32_t base;			/* id base of the last apply */
	uint32_t *ep_set_sizes;		/* per endpoint set of the last apply */
	size_t nr_ep_sets, nr_backends, nr_selectors;
	struct gammad_cons_key *consumers;
	size_t nr_consumers;
	struct gammad_fe_key *frontends;
	size_t nr_frontends;
	uint64_t *cgroups;
	size_t nr_cgroups;
	struct gammad_lep_key *leps;
	size_t nr_leps;
};

struct ia_stats {
	size_t frontends, consumers, selectors, backends, endpoint_sets, cgroups, local_eps;
};

/*
 * Apply img; cgroup_root (may be NULL) is walked for pod cgroups. Returns 0
 * or a negative errno (logged once with the object's name).
 */
int ia_apply(struct dp *dp, struct ia_state *st, const struct img *img,
	     const char *cgroup_root, struct ia_stats *stats);
void ia_state_free(struct ia_state *st);

/* UID of a pod cgroup directory name (pod<UID>, *-pod<UID_>.slice), or -ENOENT. */
int ia_pod_uid_from_dir(const char *name, char *uid, size_t len);

#endif
