/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Route statuses: one RouteParentStatus per parentRef of kind Service, with
 * the conditions the Gateway API defines for routes:
 *
 *   Accepted      True  Accepted
 *                 False NoMatchingParent (Service or port/sectionName missing),
 *                       UnsupportedValue (parent not a Service, headless or
 *                       ExternalName parent, a non-TCP port, a table limit, or
 *                       every rule dropped for an unsupported value),
 *                       Conflicted (a route kind of higher rank owns the port),
 *                       IncompatibleFilters (every rule dropped for filters)
 *   ResolvedRefs  True  ResolvedRefs
 *                 False InvalidKind, BackendNotFound, UnsupportedProtocol
 *                       (RefNotPermitted never: mesh needs no ReferenceGrant)
 *   PartiallyInvalid True UnsupportedValue, message "Dropped Rule ...", only
 *                 when some but not all rules were dropped.
 *
 * A route is Accepted on a parentRef when it is in effect on at least one of
 * the Service ports that parentRef selects.
 */
#ifndef GAMMAD_STATUS_H
#define GAMMAD_STATUS_H

#include "translate.h"

#define STATUS_ACCEPTED "Accepted"
#define STATUS_RESOLVED_REFS "ResolvedRefs"
#define STATUS_PARTIALLY_INVALID "PartiallyInvalid"

void tr_route_status_free(struct tr_route_status *s);

#endif
