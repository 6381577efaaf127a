/* SPDX-License-Identifier: Apache-2.0 */
/* Who this echo server claims to be: the pod fields of every reply. */
#ifndef ECHO_IDENTITY_H
#define ECHO_IDENTITY_H

struct pod_identity {
	const char *pod;	/* POD_NAME */
	const char *ns;		/* NAMESPACE */
	const char *service;	/* SERVICE_NAME */
	const char *ingress;	/* INGRESS_NAME */
};

/* Fill from the environment as echo-basic does; unset variables give "". */
void identity_from_env(struct pod_identity *id);

#endif
