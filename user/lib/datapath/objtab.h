/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object table gammad_obj_v1 (layout in include/gammad/maps.h): what
 * every kernel id the agent allocated stands for. The agent writes it with
 * objtab_put() after the entries under the id are complete; gammactl and
 * the metrics endpoint read it with objtab_foreach()/objtab_get() to show
 * Gateway API names instead of ids.
 */
#ifndef GAMMAD_OBJTAB_H
#define GAMMAD_OBJTAB_H

#include "datapath.h"

/* Zeroed key of (kind, id). */
void objtab_key(struct gammad_obj_key *k, enum gammad_obj_kind kind, uint32_t id);
/*
 * Copy a name into a fixed field (namespace, name, section), cut to fit and
 * NUL-terminated; returns true when it was cut.
 */
bool objtab_set_str(char *dst, size_t size, const char *src);

int objtab_put(struct dp *dp, const struct gammad_obj_key *k, const struct gammad_obj_val *v);
int objtab_del(struct dp *dp, const struct gammad_obj_key *k);

/* On a map fd (dp_map_fd(dp, GAMMAD_MAP_OBJECTS) or a pinned map). */
int objtab_get(int map_fd, const struct gammad_obj_key *k, struct gammad_obj_val *v);
/*
 * Call fn for every entry; a nonzero return of fn stops the walk and is
 * returned. Entries deleted during the walk are skipped.
 */
int objtab_foreach(int map_fd,
		   int (*fn)(const struct gammad_obj_key *, const struct gammad_obj_val *, void *),
		   void *ctx);

const char *objtab_kind_name(uint32_t kind);

#endif
