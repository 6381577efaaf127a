/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel HTTP tables of an image (issue 13, `gammad run --kernel-http`):
 * every class with routes of every TCP frontend, encoded by kh_encode()
 * (user/lib/khttp/) from the translation the image was built from, with
 * each rule backend named by its image backend. ia_apply() writes them
 * (ia_opts.khttp): content-addressed tables under ids of the object table
 * (GAMMAD_OBJ_KH_TABLE), published per class in gammad_khcls_v1 under the
 * frontend's new table_gen, so the one frontend update that flips the L4
 * classes flips these too; the retire walk deletes what no live generation
 * reaches. Without a set every kernel HTTP entry is retired.
 */
#ifndef GAMMAD_IMAGE_KHTTP_H
#define GAMMAD_IMAGE_KHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "khttp/khttp.h"

struct ia_kh_class {
	uint64_t frontend;	/* img_frontend.id */
	uint32_t ns_id;		/* the class (GAMMAD_NS_ALL: default) */
	struct kh_image img;	/* rule_src/rb_src cleared: the translation may go */
	uint64_t *rb_backend;	/* per rule backend: img_backend.id, 0 unknown */
};

struct ia_kh_set {
	struct ia_kh_class *items;	/* sorted by (frontend, ns_id) */
	size_t nr;
	size_t kernel;			/* items the kernel serves (engine_reason 0) */
};

/* Encode the classes of img's frontends from r, the translation of img. */
int ia_kh_build(const struct img *img, const struct tr_result *r, struct ia_kh_set *out);

/*
 * *set built again for img from r, reusing the items of the ports that
 * same(ctx, index of the port in r->ports) says are unchanged since *set
 * was built (same NULL: none): their content-addressed kernel tables stay.
 * The caller knows which ports changed: the incremental pipeline does
 * (pl_kh_update). On an error *set is empty.
 */
typedef bool (*ia_kh_port_same_fn)(const void *ctx, size_t port_index);
int ia_kh_rebuild(struct ia_kh_set *set, const struct img *img, const struct tr_result *r,
		  ia_kh_port_same_fn same, const void *ctx);
void ia_kh_set_free(struct ia_kh_set *s);

#endif
