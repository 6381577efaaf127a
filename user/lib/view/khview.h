/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel HTTP path (issue 13) as the pinned maps show it: the per-reason
 * request counters (gammad_khst_v1) and, for every class of every Service
 * port, the kernel table its current generation names (gammad_khcls_v1 ->
 * gammad_khtab_v1): served by the kernel, or the engine's and why. For
 * `gammactl stats` and /metrics:
 *
 *   gammad_khttp_requests_total{reason}: kernel decisions by reason
 *     (served; else why the request went to the engine)
 *   gammad_khttp_class_info{<Service port labels>,class,served_by,reason} 1
 *   gammad_khttp_classes{served_by,reason}: classes per outcome
 */
#ifndef GAMMAD_KHVIEW_H
#define GAMMAD_KHVIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dpview.h"

struct khv_class {
	const struct dpv_frontend *fe;	/* in the dpv it was read with */
	const struct dpv_class *cls;
	uint32_t tab;
	bool present;			/* its table entry is there */
	struct gammad_kh_table t;
};

struct khv {
	bool pinned;			/* the kernel HTTP maps are pinned */
	uint64_t reasons[GAMMAD_KH_R_MAX];
	struct khv_class *classes;	/* in v's frontend and class order */
	size_t nr;
};

/* Read the kernel HTTP view of v (read from the maps m). 0 or -errno. */
int khv_read(const struct dpv_maps *m, const struct dpv *v, struct khv *out);
void khv_free(struct khv *k);

/* Short names: enum gammad_kh_reason, enum gammad_kh_tab_reason. */
const char *khv_reason_name(unsigned int reason);
const char *khv_tab_reason_name(unsigned int reason);

/* gammactl stats: the counters and the classes (nothing when not pinned). */
void khv_text(FILE *out, const struct khv *k);
/* /metrics: the gammad_khttp_* series. */
void khv_prom(FILE *out, const struct khv *k);

#endif
