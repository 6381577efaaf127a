/* SPDX-License-Identifier: Apache-2.0 */
/* gammactl: the operator CLI. Each command is `int ctl_<name>(struct ctl *, argc, argv)`. */
#ifndef GAMMACTL_H
#define GAMMACTL_H

#include <stdbool.h>
#include <stdio.h>

#include "base/json_writer.h"
#include "view/dpview.h"

#define CTL_EXIT_ERROR 1	/* the command ran into an error (reported) */
#define CTL_EXIT_USAGE 2

struct ctl {
	const char *pin_dir;
	const char *manifests;	/* --manifests DIR: status file, explain */
	const char *status_file;
	const char *node_name;	/* --node-name: explain as the agent of this node */
	const char *zone;	/* --zone: ... in this zone */
	bool json;
	FILE *out;
};

int ctl_services(struct ctl *c, int argc, char **argv);
int ctl_routes(struct ctl *c, int argc, char **argv);
int ctl_endpoints(struct ctl *c, int argc, char **argv);
int ctl_stats(struct ctl *c, int argc, char **argv);
int ctl_status(struct ctl *c, int argc, char **argv);
int ctl_explain(struct ctl *c, int argc, char **argv);

/* Open the pinned maps and build the view; error logged. */
int ctl_view(struct ctl *c, struct dpv_maps *m, struct dpv *v);
void ctl_view_free(struct dpv_maps *m, struct dpv *v);

/* JSON pieces shared by the commands. */
void ctl_json_endpoints(struct json_writer *w, const struct dpv_backend *b);
void ctl_json_be_flags(struct json_writer *w, const struct dpv_backend *b);
/* "policy": [...] of a backend (NULL: empty), see dpv_be_policy(). */
void ctl_json_be_policy(struct json_writer *w, const struct dpv_backend *b);
/* "80.00%" style, exact shares printed with 2 decimals. */
const char *ctl_percent(double share, char *buf, size_t len);

#endif
