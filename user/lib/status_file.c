// SPDX-License-Identifier: Apache-2.0
/* The route status file: see status_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "json_writer.h"
#include "log.h"
#include "status.h"
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

static const char *level_name(enum log_level l)
{
	return l == LOG_ERROR ? "error" : l == LOG_WARN ? "warn" : l == LOG_INFO ? "info" :
	       "debug";
}

static void write_parent(struct json_writer *w, const struct gapi_route *route,
			 const struct tr_parent_status *ps)
{
	const struct gapi_parent_ref *p = ps->ref;

	jw_obj_begin(w);
	jw_key(w, "parentRef");
	jw_obj_begin(w);
	jw_kstr(w, "group", p->group);
	jw_kstr(w, "kind", p->kind);
	jw_kstr(w, "namespace", p->namespace);
	jw_kstr(w, "name", p->name);
	if (p->port)
		jw_kint(w, "port", p->port);
	if (p->section_name)
		jw_kstr(w, "sectionName", p->section_name);
	jw_obj_end(w);
	jw_kstr(w, "controllerName", TR_CONTROLLER_NAME);
	jw_key(w, "conditions");
	jw_arr_begin(w);
	for (size_t i = 0; i < ps->nr_conditions; i++) {
		const struct tr_condition *c = &ps->conditions[i];

		jw_obj_begin(w);
		jw_kstr(w, "type", c->type);
		jw_kstr(w, "status", c->status ? "True" : "False");
		jw_kstr(w, "reason", c->reason);
		jw_kstr(w, "message", c->message ? c->message : "");
		jw_kint(w, "observedGeneration", route->meta.generation);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
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
	jw_key(&w, "routes");
	jw_arr_begin(&w);
	for (size_t i = 0; i < r->nr_routes; i++) {
		const struct tr_route_status *rs = &r->routes[i];

		jw_obj_begin(&w);
		jw_kstr(&w, "kind", gapi_kind_name(rs->route->kind));
		jw_kstr(&w, "namespace", rs->route->meta.namespace);
		jw_kstr(&w, "name", rs->route->meta.name);
		jw_kint(&w, "generation", rs->route->meta.generation);
		jw_key(&w, "parents");
		jw_arr_begin(&w);
		for (size_t p = 0; p < rs->nr_parents; p++)
			write_parent(&w, rs->route, &rs->parents[p]);
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "diagnostics");
	jw_arr_begin(&w);
	for (size_t i = 0; dg && i < dg->nr; i++) {
		const struct diag_entry *e = &dg->entries[i];

		jw_obj_begin(&w);
		jw_kstr(&w, "level", level_name(e->level));
		jw_kstr(&w, "file", e->file);
		jw_kint(&w, "line", e->line);
		jw_kstr(&w, "field", e->field);
		jw_kstr(&w, "message", e->msg);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
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
