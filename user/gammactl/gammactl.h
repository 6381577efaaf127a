/* SPDX-License-Identifier: Apache-2.0 */
/* gammactl: the operator CLI. Each command is `int ctl_<name>(struct ctl *, argc, argv)`. */
#ifndef GAMMACTL_H
#define GAMMACTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/json_writer.h"
#include "view/dpview.h"

#define CTL_EXIT_ERROR 1	/* the command ran into an error (reported) */
#define CTL_EXIT_USAGE 2
#define CTL_AGENT_DEFAULT "127.0.0.1:9464"	/* gammad run's --metrics-addr default */

struct ctl {
	const char *pin_dir;
	const char *manifests;	/* --manifests DIR: status file, explain */
	const char *status_file;
	const char *node_name;	/* --node-name: explain as the agent of this node */
	const char *zone;	/* --zone: ... in this zone */
	const char *agent;	/* --agent IP:PORT: the agent's --metrics-addr (explain) */
	bool json;
	FILE *out;
};

int ctl_services(struct ctl *c, int argc, char **argv);
int ctl_routes(struct ctl *c, int argc, char **argv);
int ctl_endpoints(struct ctl *c, int argc, char **argv);
int ctl_stats(struct ctl *c, int argc, char **argv);
int ctl_status(struct ctl *c, int argc, char **argv);
int ctl_explain(struct ctl *c, int argc, char **argv);

/* What the running agent's HTTP engine does with a request (explain_live.c). */
struct ctl_live {
	bool asked, reachable;
	char note[256];			/* why not reachable */
	long long generation;		/* the engine's tables generation */
	bool service_port;		/* the engine knows the Service port */
	int status;
	bool has_rule;
	char kind[16], ns[64], route[254], name[254], match[512];
	long long index;
	char filters[256], backends[1536], picked[320], location[1024], target[1024];
};
struct ev_request;
void ctl_live_explain(const char *agent, const char *ns, const char *vip, uint16_t port,
		      const struct ev_request *req, struct ctl_live *l);

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
