/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel id (be_id) of a backend, a Service port of one address family,
 * for readers outside the apply: the HTTP engine shares sessionAffinity
 * entries with the kernel (gammad_aff_v1 is keyed by be_id). Read from the
 * object table (gammad_obj_v1), remembered, and checked against that table
 * on every use, so an id the apply freed and gave to another backend is
 * noticed. Any thread.
 */
#ifndef GAMMAD_BACKEND_IDS_H
#define GAMMAD_BACKEND_IDS_H

#include <stdint.h>

/* A backend not found is looked for again after this long, not sooner. */
#define BACKEND_IDS_RESCAN_MS	100

struct backend_ids;

/* obj_fd: gammad_obj_v1, borrowed. NULL on ENOMEM. */
struct backend_ids *backend_ids_new(int obj_fd);
/* 0 and *id, -ENOENT (no such backend in the kernel), or -errno. */
int backend_ids_find(struct backend_ids *b, const char *ns, const char *name, uint16_t port,
		     uint8_t family, uint32_t *id);
void backend_ids_free(struct backend_ids *b);

#endif
