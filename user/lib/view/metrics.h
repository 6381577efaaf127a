/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition (format 0.0.4) of the data path and the agent:
 *
 *   gammad_up 1, gammad_ready 0|1, gammad_datapath_up 0|1
 *   gammad_service_connects_total{namespace,service,port,port_name,protocol,address}
 *     (and _no_backend_total, _no_endpoint_total, _refused_total,
 *      _l7_unenforced_total): per Service port (frontend)
 *   gammad_route_connects_total{namespace,route,rule,service,port,selector}:
 *     per route selector (route="" for a port without routes; service
 *     "ns/name" and port of the Service port using it, empty when shared)
 *   gammad_backend_connects_total{namespace,service,port,backend}: per backend
 *     (a Service port routes point to; backend="ns/name:port")
 *   gammad_backend_endpoints{...}: ready endpoints behind it
 *   gammad_drops_total{reason}: connections not translated, by reason
 *   gammad_map_entries{map}, gammad_map_max_entries{map}: fill levels
 *   gammad_apply_generation, gammad_apply_errors_total, gammad_input_errors,
 *   gammad_last_apply_duration_seconds, gammad_last_apply_timestamp_seconds
 *
 *   gammad_khttp_*: the kernel HTTP path (khview.h), from metrics_render_buf
 * Ids the object table does not name are shown as "id:<n>".
 */
#ifndef GAMMAD_METRICS_H
#define GAMMAD_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dpview.h"

struct metrics_agent {
	bool ready;			/* the first full apply is done */
	uint64_t generation;		/* successful applies */
	uint64_t apply_errors;		/* failed applies */
	double last_apply_seconds;	/* duration of the last apply */
	double last_apply_time;		/* unix time of its end, 0: none yet */
	uint64_t input_errors;		/* errors in the manifests at the last apply */
};

/* v may be NULL (data path not readable): only the agent's metrics. */
int metrics_render(FILE *out, const struct dpv *v, const struct metrics_agent *a);
/* Render into a malloc'd buffer (for a response body). */
int metrics_render_buf(const char *pin_dir, const struct metrics_agent *a,
		       char **buf, size_t *len);

#endif
