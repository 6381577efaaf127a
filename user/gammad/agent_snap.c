// SPDX-License-Identifier: Apache-2.0
/* The image snapshot of gammad run --once: see agent_snap.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "image/pipeline.h"
#include "input/manifest.h"
#include "view/status_file.h"
#include "agent.h"
#include "agent_snap.h"

/* What the note keeps: the route status file as written, the input errors. */
struct snap_note {
	uint64_t status_ino, status_size, status_sec, status_nsec;
	uint64_t input_errors;
};

_Static_assert(sizeof(struct snap_note) <= IMG_SNAP_NOTE, "note too large");

int agent_snap_path(const char *state_dir, const char *pin_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/image-%016llx.snap", state_dir,
			 (unsigned long long)hash_str(pin_dir));

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void status_note(const struct agent *a, struct snap_note *n)
{
	char path[4200];
	struct stat st;

	memset(n, 0, sizeof(*n));
	snprintf(path, sizeof(path), "%s/%s", a->dir, STATUS_FILE_NAME);
	if (stat(path, &st))
		return;		/* not written (a read-only directory): nothing to compare */
	n->status_ino = (uint64_t)st.st_ino;
	n->status_size = (uint64_t)st.st_size;
	n->status_sec = (uint64_t)st.st_mtim.tv_sec;
	n->status_nsec = (uint64_t)st.st_mtim.tv_nsec;
}

/*
 * Everything the image depends on besides the manifests: this node, its
 * zone, the endpoint limit, the HTTP engine's marks, and the binary that
 * translates (a new gammad may translate differently).
 */
static uint64_t options_key(const struct agent *a)
{
	const struct tr_opts *tr = &a->tr;
	uint64_t k = hash_str(tr->node_name ? tr->node_name : "\001");
	struct stat st;

	k = hash_bytes(tr->zone ? tr->zone : "\001", tr->zone ? strlen(tr->zone) : 1, k);
	k = hash_bytes(&tr->max_endpoints, sizeof(tr->max_endpoints), k);
	k ^= a->l4_http_why ? 0 : 0x5a5a;	/* the engine's marks (set before the engine starts) */
	if (!stat("/proc/self/exe", &st)) {
		uint64_t id[4] = { (uint64_t)st.st_dev, (uint64_t)st.st_ino,
				   (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_nsec ^
				   ((uint64_t)st.st_mtim.tv_sec << 30) };

		k = hash_bytes(id, sizeof(id), k);
	}
	return k;
}

bool agent_snap_load(struct agent *a, uint64_t *key, struct img *img, size_t *input_errors)
{
	uint8_t raw[IMG_SNAP_NOTE];
	struct snap_note note, now;
	struct diag dg = { 0 };
	uint64_t digest;
	int ret;

	*key = 0;
	ret = manifest_digest(a->dir, &digest, &dg);
	if (ret || dg.nr) {
		pr_debug("snapshot: the manifests walk reported %zu problems: not used", dg.nr);
		diag_free(&dg);
		return false;
	}
	diag_free(&dg);
	*key = (digest ^ options_key(a)) | 1;
	ret = img_snap_load(a->snapshot, *key, img, raw);
	if (ret == -ESTALE) {
		pr_info("snapshot %s: the manifests, options or gammad changed since: translating",
			a->snapshot);
		return false;
	}
	if (ret == -EBADMSG) {
		pr_warn("snapshot %s: corrupt, truncated or not gammad's: ignored, translating",
			a->snapshot);
		unlink(a->snapshot);
		return false;
	}
	if (ret) {
		if (ret != -ENOENT)
			pr_warn("snapshot %s: %s: translating", a->snapshot, strerror(-ret));
		return false;
	}
	memcpy(&note, raw, sizeof(note));
	status_note(a, &now);
	if (memcmp(&note, &now, sizeof(note) - sizeof(note.input_errors))) {
		pr_info("snapshot %s: the route status file changed since: translating", a->snapshot);
		img_free(img);
		return false;
	}
	*input_errors = (size_t)note.input_errors;
	pr_info("snapshot %s: manifests, options and gammad unchanged: parse and translation "
		"skipped, the apply checks every entry against the kernel", a->snapshot);
	return true;
}

void agent_snap_save(struct agent *a, uint64_t key, const struct img *img, size_t input_errors)
{
	uint8_t raw[IMG_SNAP_NOTE] = { 0 };
	struct snap_note note;
	char dir[4200];
	char *slash;
	int ret;

	status_note(a, &note);
	note.input_errors = input_errors;
	memcpy(raw, &note, sizeof(note));
	snprintf(dir, sizeof(dir), "%s", a->snapshot);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			pr_debug("snapshot: mkdir %s: %s", dir, strerror(errno));
	}
	ret = img_snap_save(img, a->snapshot, key, raw);
	if (ret)
		pr_warn("snapshot %s: %s (the next start translates again)", a->snapshot,
			strerror(-ret));
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void agent_snap_keep(struct agent *a, bool (*quiet)(void *ctx), void *ctx)
{
	const struct img *img = a->pl ? pl_image(a->pl) : NULL;
	double t0 = now_ms();
	struct diag dg = { 0 };
	uint64_t digest;
	int ret;

	if (!a->snap_dirty)
		return;
	/*
	 * What a failed commit or status write left is not what the manifests
	 * say: the next commit tries again.
	 */
	if (!a->snapshot || !img || a->dir_failed || a->status_stale || a->kube ||
	    a->kernel_http) {
		a->snap_dirty = false;
		return;
	}
	/*
	 * The key of what the last commit read: its scan of the manifests
	 * hashed every file as it read it (not read again here: 17 MiB more
	 * peak RSS at 10k Services). A commit that loaded the tree whole (an
	 * object in two files) walks it again, between two looks for an event.
	 */
	if (a->snap_scanned && a->mc && !manifest_cache_digest(a->mc, &digest)) {
		pr_debug("snapshot key: the last scan's digest");
	} else {
		if (!quiet(ctx))
			return;
		ret = manifest_digest(a->dir, &digest, &dg);
		if (ret || dg.nr) {
			diag_free(&dg);
			a->snap_dirty = false;	/* a walk with problems is never adopted from */
			return;
		}
		diag_free(&dg);
	}
	if (!quiet(ctx))
		return;		/* a change came: after its commit */
	agent_snap_save(a, (digest ^ options_key(a)) | 1, img, a->last_input_errors);
	a->snap_dirty = false;
	pr_debug("snapshot %s kept in %.1f ms", a->snapshot, now_ms() - t0);
}
