// SPDX-License-Identifier: Apache-2.0
/* gammactl status: the route conditions the agent wrote beside its manifests. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "input/yaml_doc.h"
#include "view/status_file.h"
#include "gammactl.h"

/*
 * A string of the status file, fit for a terminal: the file may be crafted
 * (or hold values from crafted manifests), so control characters are shown
 * as \xNN and long values are cut. Rotating buffers: a few per printf.
 */
static const char *str(const struct ydoc *d, const yaml_node_t *map, const char *key)
{
	static char bufs[8][1024];
	static unsigned int next;
	char *out = bufs[next++ % 8];
	const char *s = NULL;
	size_t n = 0;

	if (yget_str(d, map, key, &s))
		return "";
	for (; *s && n + 8 < sizeof(bufs[0]); s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			n += snprintf(out + n, sizeof(bufs[0]) - n, "\\x%02x", ch);
		else
			out[n++] = (char)ch;
	}
	if (*s)
		n += snprintf(out + n, sizeof(bufs[0]) - n, "...");
	out[n] = 0;
	return out;
}

static void parent_label(const struct ydoc *d, const yaml_node_t *ref, char *buf, size_t len)
{
	const char *port = str(d, ref, "port"), *section = str(d, ref, "sectionName");

	snprintf(buf, len, "%s %s/%s%s%s", str(d, ref, "kind"), str(d, ref, "namespace"),
		 str(d, ref, "name"), port[0] ? ":" : section[0] ? "/" : "",
		 port[0] ? port : section);
}

static int print_text(struct ctl *c, const struct ydoc *d)
{
	yaml_node_t *routes = NULL, *diags = NULL;
	char route[512], parent[512], cond[2][128];
	long long errors = 0;

	if (yget_seq(d, d->root, "routes", &routes) || !routes)
		return -EINVAL;
	yget_int(d, d->root, "inputErrors", 0, 1LL << 40, &errors);
	fprintf(c->out, "%-44s %-36s %-28s %s\n", "ROUTE", "PARENT", "ACCEPTED", "RESOLVEDREFS");
	for (size_t i = 0; i < yseq_len(routes); i++) {
		yaml_node_t *r = yseq_at(d, routes, i), *parents = NULL;

		snprintf(route, sizeof(route), "%s %s/%s", str(d, r, "kind"), str(d, r, "namespace"),
			 str(d, r, "name"));
		yget_seq(d, r, "parents", &parents);
		if (!parents || !yseq_len(parents))
			fprintf(c->out, "%-44s %-36s\n", route, "(no Service parentRef)");
		for (size_t p = 0; parents && p < yseq_len(parents); p++) {
			yaml_node_t *ps = yseq_at(d, parents, p), *ref = NULL, *conds = NULL;

			yget_map(d, ps, "parentRef", &ref);
			parent_label(d, ref, parent, sizeof(parent));
			yget_seq(d, ps, "conditions", &conds);
			snprintf(cond[0], sizeof(cond[0]), "-");
			snprintf(cond[1], sizeof(cond[1]), "-");
			for (size_t k = 0; conds && k < yseq_len(conds); k++) {
				yaml_node_t *cn = yseq_at(d, conds, k);
				const char *type = str(d, cn, "type");
				int slot = !strcmp(type, "Accepted") ? 0 :
					   !strcmp(type, "ResolvedRefs") ? 1 : -1;

				if (slot >= 0)
					snprintf(cond[slot], sizeof(cond[slot]), "%s %s",
						 str(d, cn, "status"), str(d, cn, "reason"));
			}
			fprintf(c->out, "%-44s %-36s %-28s %s\n", p ? "" : route, parent, cond[0],
				cond[1]);
			for (size_t k = 0; conds && k < yseq_len(conds); k++) {
				yaml_node_t *cn = yseq_at(d, conds, k);

				if (strcmp(str(d, cn, "status"), "True") ||
				    !strcmp(str(d, cn, "type"), "PartiallyInvalid"))
					if (str(d, cn, "message")[0])
						fprintf(c->out, "    %s: %s\n", str(d, cn, "type"),
							str(d, cn, "message"));
			}
		}
	}
	if (!yget_seq(d, d->root, "diagnostics", &diags) && diags && yseq_len(diags)) {
		fprintf(c->out, "\n%lld input error(s); diagnostics:\n", errors);
		for (size_t i = 0; i < yseq_len(diags); i++)
			fprintf(c->out, "  %s %s\n", str(d, yseq_at(d, diags, i), "level"),
				str(d, yseq_at(d, diags, i), "message"));
	}
	return 0;
}

int ctl_status(struct ctl *c, int argc, char **argv)
{
	struct ydoc_error yerr = { 0 };
	struct ydoc_set set = { 0 };
	char path[PATH_MAX];
	int err;

	if (argc != 1) {
		fprintf(stderr, "usage: gammactl [--manifests DIR | --status-file PATH] status\n");
		return CTL_EXIT_USAGE;
	}
	if (c->status_file) {
		snprintf(path, sizeof(path), "%s", c->status_file);
	} else if (c->manifests) {
		err = status_file_path(c->manifests, path, sizeof(path));
		if (err) {
			fprintf(stderr, "gammactl: manifests %s: %s\n", c->manifests, strerror(-err));
			return CTL_EXIT_ERROR;
		}
	} else {
		fprintf(stderr, "gammactl status: say where the agent's manifests are: --manifests DIR "
			"(the agent writes DIR/%s) or --status-file PATH\n", STATUS_FILE_NAME);
		return CTL_EXIT_USAGE;
	}
	err = ydoc_load_file(path, &set, &yerr);
	if (err) {
		if (err == -ENOENT)
			fprintf(stderr, "gammactl: status file %s: not there (is `gammad run "
				"--manifests` running on that directory?)\n", path);
		else
			fprintf(stderr, "gammactl: status file %s: %s\n", path,
				yerr.msg[0] ? yerr.msg : strerror(-err));
		return CTL_EXIT_ERROR;
	}
	if (set.nr_docs != 1 || !set.docs[0].root) {
		fprintf(stderr, "gammactl: status file %s: not one JSON document\n", path);
		ydoc_set_free(&set);
		return CTL_EXIT_ERROR;
	}
	if (c->json) {
		FILE *f = fopen(path, "r");
		char buf[8192];
		size_t n;

		/* The file is already the JSON document: pass it through. */
		while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, c->out);
		if (f)
			fclose(f);
		err = f ? 0 : -errno;
	} else {
		err = print_text(c, &set.docs[0]);
	}
	ydoc_set_free(&set);
	if (err) {
		fprintf(stderr, "gammactl: status file %s: %s\n", path,
			err == -EINVAL ? "no routes array" : strerror(-err));
		return CTL_EXIT_ERROR;
	}
	return 0;
}
