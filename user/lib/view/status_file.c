// SPDX-License-Identifier: Apache-2.0
/* The route status file: see status_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/json_writer.h"
#include "base/log.h"
#include "translate/status.h"
#include "translate/translate_output.h"
#include "status_file.h"

int status_file_path(const char *manifests, char *buf, size_t len)
{
	char tmp[PATH_MAX];
	struct stat sb;
	int n;

	if (stat(manifests, &sb))
		return -errno;
	if (S_ISDIR(sb.st_mode)) {
		n = snprintf(buf, len, "%s/%s", manifests, STATUS_FILE_NAME);
	} else {
		snprintf(tmp, sizeof(tmp), "%s", manifests);
		n = snprintf(buf, len, "%s/%s", dirname(tmp), STATUS_FILE_NAME);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int status_write_json(FILE *out, const char *manifests, const struct tr_result *r,
		      const struct diag *dg, bool pretty)
{
	struct json_writer w;

	jw_init(&w, out, pretty);
	jw_obj_begin(&w);
	jw_kstr(&w, "apiVersion", "gammad.io/status/v1");
	jw_kstr(&w, "manifests", manifests);
	jw_kint(&w, "time", (int64_t)time(NULL));
	jw_kint(&w, "inputErrors", dg ? (int64_t)dg->nr_errors : 0);
	tr_json_route_statuses(&w, r);
	tr_json_diagnostics(&w, dg);
	jw_obj_end(&w);
	return jw_finish(&w);
}

/*
 * A manifest directory may be read-only (a ConfigMap volume): say so once,
 * not on every apply, until a write succeeds again.
 */
static int last_err;

static int report(const char *path, int err)
{
	if (err == last_err)
		pr_debug("status file %s: %s", path, strerror(-err));
	else
		pr_err("status file %s: %s (route conditions not written)", path, strerror(-err));
	last_err = err;
	return err;
}

int status_file_write(const char *manifests, const struct tr_result *r, const struct diag *dg)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	FILE *f;
	int fd, err;

	err = status_file_path(manifests, path, sizeof(path));
	if (err)
		return report(manifests, err);
	/* Dot-named too, beside the target so rename() stays in one filesystem. */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return report(path, -errno);
	fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto fail;
	}
	/* One writer: no stdio lock per character (9 MB of JSON at 10k routes). */
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	err = status_write_json(f, manifests, r, dg, true);
	if (fflush(f) || fsync(fileno(f)))
		err = err ? err : -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		goto fail;
	if (rename(tmp, path)) {
		err = -errno;
		goto fail;
	}
	last_err = 0;
	return 0;
fail:
	unlink(tmp);
	return report(path, err);
}
