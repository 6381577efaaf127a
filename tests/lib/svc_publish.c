// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "svc_publish.h"

static int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

static int backend_publish(struct dp *dp, uint32_t be_id, const struct svc_ep *e)
{
	struct gammad_be_val be = { .ep_set = be_id, .nr_endpoints = 1 };
	struct gammad_ep_val ep;
	struct in6_addr a;
	int err;

	if (!e->port) {
		be.nr_endpoints = 0;
		be.flags = GAMMAD_BE_NO_ENDPOINTS;
		return dp_backend_write(dp, be_id, &be);
	}
	if (inet_pton(family_of(e->ip), e->ip, &a) != 1)
		return -EINVAL;
	dp_ep(&ep, family_of(e->ip), &a, e->port);
	err = dp_endpoints_write(dp, be_id, &ep, 1);
	return err ?: dp_backend_write(dp, be_id, &be);
}

int svc_publish(struct dp *dp, const char *vip, uint16_t port, uint8_t proto, uint32_t id,
		const struct svc_ep *eps, int nr, uint32_t fe_flags)
{
	struct gammad_fe_val fe = { .svc_port_id = id, .table_gen = id * 10,
				    .flags = fe_flags, .default_sel = id * 10 };
	struct dp_weighted w[SVC_MAX_EPS];
	struct gammad_fe_key key;
	struct in6_addr a;
	int err = 0;

	if (nr > SVC_MAX_EPS || inet_pton(family_of(vip), vip, &a) != 1)
		return -EINVAL;
	for (int i = 0; i < nr && !err; i++) {
		err = backend_publish(dp, id * 10 + i, &eps[i]);
		w[i] = (struct dp_weighted){ id * 10 + i, eps[i].weight };
	}
	err = err ?: dp_selector_write(dp, id * 10, id * 10, w, nr);
	dp_fe_key(&key, family_of(vip), &a, port, proto);
	return err ?: dp_frontend_publish(dp, &key, &fe);
}
