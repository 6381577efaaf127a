/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the API server is and how to prove who we are.
 *
 * In a pod (the DaemonSet): KUBERNETES_SERVICE_HOST and _PORT (an IPv6
 * host is bracketed), the service account's ca.crt and token under
 * /var/run/secrets/kubernetes.io/serviceaccount. The token is a file
 * because the kubelet rotates it: kube_client.h re-reads it every minute
 * and after a 401.
 *
 * Elsewhere: a kubeconfig file, its current-context (or the one named):
 * the cluster's server (http:// or https://), certificate-authority(-data)
 * and insecure-skip-tls-verify, the user's token or tokenFile and
 * client-certificate(-data) with client-key(-data). Relative paths are
 * relative to the kubeconfig's directory, as kubectl reads them.
 */
#ifndef GAMMAD_KUBE_CONFIG_H
#define GAMMAD_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_blob {
	unsigned char *data;	/* NULL: none */
	size_t len;
};

struct kube_config {
	char *server;		/* "https://host:port", no trailing slash */
	char *ca_file;
	struct kube_blob ca;	/* PEM, from certificate-authority-data */
	bool insecure;		/* insecure-skip-tls-verify */
	char *token;		/* a fixed bearer token */
	char *token_file;	/* a bearer token re-read (wins over token) */
	char *cert_file, *key_file;
	struct kube_blob cert, key;
	char *namespace;	/* the context's, or the pod's; "default" when none */
	char *source;		/* the kubeconfig's path or "in-cluster", for logs */
};

/*
 * In-cluster config from the environment and sa_dir (NULL: KUBE_SA_DIR).
 * Returns 0, -ENOENT when not in a pod (no KUBERNETES_SERVICE_HOST), or
 * another negative errno; msg says why.
 */
int kube_config_in_cluster(struct kube_config *c, const char *sa_dir, char *msg, size_t len);
/* A kubeconfig file; context NULL: its current-context. */
int kube_config_load(struct kube_config *c, const char *path, const char *context,
		     char *msg, size_t len);
void kube_config_free(struct kube_config *c);

#endif
