/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publish a test Service port through the data path writer (datapath.h),
 * in the documented order: endpoints, backends, selector, frontend flip.
 * Ids derive from one small service id: svc_port_id = id, selector, route
 * and table generation = id * 10, backend and endpoint set i = id * 10 + i.
 */
#ifndef GAMMAD_TEST_SVC_PUBLISH_H
#define GAMMAD_TEST_SVC_PUBLISH_H

#include <stdint.h>

#include "datapath/datapath.h"

struct svc_ep {
	const char *ip;		/* endpoint address as text */
	uint16_t port;		/* host order; 0: a backend without endpoints */
	uint32_t weight;
};

#define SVC_MAX_EPS 4

int svc_publish(struct dp *dp, const char *vip, uint16_t port, uint8_t proto, uint32_t id,
		const struct svc_ep *eps, int nr, uint32_t fe_flags);

#endif
