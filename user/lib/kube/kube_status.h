/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Route statuses in the cluster, written by one agent: every agent
 * translates the same routes to the same conditions, so one writer is
 * enough and many would only fight over resourceVersions.
 *
 * The writer is elected with a coordination.k8s.io/v1 Lease as client-go's
 * leaderelection does: a candidate takes the Lease when it does not exist,
 * is held by nobody, or its record has not changed for leaseDurationSeconds
 * by the candidate's own clock (renewTime is not compared across clocks);
 * the holder renews every retry period and stops writing when it could not
 * renew within the renew deadline; a stopping holder releases it (empty
 * holderIdentity), so the next one need not wait. Every write carries the
 * resourceVersion read: a 409 means someone else won.
 *
 * The leader makes each route's status.parents[] hold, for every parentRef
 * of kind Service, one entry with controllerName gammad.io/mesh and the
 * translation's conditions (Accepted, ResolvedRefs, PartiallyInvalid with
 * their reasons; observedGeneration the route's generation;
 * lastTransitionTime kept while a condition's status stays), and keeps
 * every entry of another controller as it is. The parentRef is written as
 * the route spells it (group "" or "core"). A route whose status already
 * says so is not written. Writes are read-modify-write of the status
 * subresource with the object's resourceVersion (the body: apiVersion,
 * kind, name, namespace, uid, resourceVersion and the status; the server
 * keeps the rest of the route as it is); a 409 reads the route again and
 * retries.
 */
#ifndef GAMMAD_KUBE_STATUS_H
#define GAMMAD_KUBE_STATUS_H

#include <stdbool.h>

#include "translate/translate.h"
#include "kube_client.h"
#include "kube_watch.h"

struct kube_status_opts {
	const char *identity;		/* holderIdentity, unique per agent */
	const char *lease_namespace;	/* where the Lease lives */
	const char *lease_name;		/* default "gammad-status-writer" */
	int lease_duration_s;		/* 0: 15 */
	int renew_deadline_s;		/* 0: 10 */
	int retry_period_s;		/* 0: 2 */
};

struct kube_status;

int kube_status_start(struct kube_client *k, struct kube_watch *w,
		      const struct kube_status_opts *o, struct kube_status **out);
/* Stop; a leader releases the Lease first. */
void kube_status_stop(struct kube_status *s);
bool kube_status_leading(struct kube_status *s);
/*
 * The statuses of a new translation (copied): the leader brings the routes
 * in line, now and after every change of leadership.
 */
int kube_status_publish(struct kube_status *s, const struct tr_result *r);

#endif
