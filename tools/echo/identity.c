// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>

#include "identity.h"

static const char *env_or_empty(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "";
}

void identity_from_env(struct pod_identity *id)
{
	id->pod = env_or_empty("POD_NAME");
	id->ns = env_or_empty("NAMESPACE");
	id->service = env_or_empty("SERVICE_NAME");
	id->ingress = env_or_empty("INGRESS_NAME");
}
