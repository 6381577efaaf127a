/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image snapshot of `gammad run` (image.h, img_snap_*): a
 * restart whose manifests, options and gammad binary are unchanged since
 * the snapshot was written skips parsing and translating; the apply still
 * reconciles every entry with the kernel, so a snapshot can never put
 * anything in the maps that the manifests would not. The file lives in the
 * state directory (`--state-dir`, default /run/gammad), one per pin dir.
 */
#ifndef GAMMAD_AGENT_SNAP_H
#define GAMMAD_AGENT_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

#define AGENT_STATE_DIR "/run/gammad"

struct agent;

/* STATE_DIR/image-<hash of the pin dir>.snap into buf. */
int agent_snap_path(const char *state_dir, const char *pin_dir, char *buf, size_t len);
/*
 * The key of a's input as it is now (0: none can be trusted: the walk
 * reported something), and the image saved under it, if any: true with
 * *img and *input_errors set.
 */
bool agent_snap_load(struct agent *a, uint64_t *key, struct img *img, size_t *input_errors);
/* After an apply of img made from the input of key (not 0). */
void agent_snap_save(struct agent *a, uint64_t key, const struct img *img, size_t input_errors);
/*
 * The running agent's snapshot of its pipeline's image, after commits
 * (a->snap_dirty), so that its restart adopts too (agent_adopt). The key
 * is the manifests' digest as they are now, so call it when they are as
 * the last commit read them (no change pending); quiet(ctx) is asked again
 * after the digest was taken: false (an event came meanwhile) skips the
 * save until the next call.
 */
void agent_snap_keep(struct agent *a, bool (*quiet)(void *ctx), void *ctx);

#endif
