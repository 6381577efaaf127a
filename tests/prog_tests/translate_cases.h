/* SPDX-License-Identifier: Apache-2.0 */
/* YAML building blocks shared by the translate_* unit tests. */
#ifndef GAMMAD_TRANSLATE_CASES_H
#define GAMMAD_TRANSLATE_CASES_H

#define ROUTE_HEAD(kind, api, name, ns, extra_meta) \
	"---\napiVersion: gateway.networking.k8s.io/" api "\nkind: " kind "\n" \
	"metadata: {name: " name ", namespace: " ns extra_meta "}\nspec:\n"
#define HR(name, ns) ROUTE_HEAD("HTTPRoute", "v1", name, ns, "")
/* An HTTPRoute created at a given time (precedence tie-breaks). */
#define HR_AT(name, ns, time) \
	ROUTE_HEAD("HTTPRoute", "v1", name, ns, ", creationTimestamp: \"" time "\"")
#define GR(name, ns) ROUTE_HEAD("GRPCRoute", "v1", name, ns, "")
#define TCPR(name, ns) ROUTE_HEAD("TCPRoute", "v1alpha2", name, ns, "")
#define TLSR(name, ns) ROUTE_HEAD("TLSRoute", "v1alpha2", name, ns, "")

/* parentRefs to Service app/a: one port, a named port, or all ports. */
#define PARENT_PORT(port) \
	"  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app, port: " port "}]\n"
#define PARENT_A80 PARENT_PORT("80")
#define PARENT_A "  parentRefs: [{group: \"\", kind: Service, name: a, namespace: app}]\n"

#define BE(name) "{name: " name ", port: 80}"
#define BEW(name, w) "{name: " name ", port: 80, weight: " w "}"
/* A rule: "matches" list (flow YAML, may be "") and backends (flow list items). */
#define RULE(matches, backends) "  - matches: [" matches "]\n    backendRefs: [" backends "]\n"
#define RULE_ANY(backends) "  - backendRefs: [" backends "]\n"
#define PREFIX(v) "{path: {type: PathPrefix, value: \"" v "\"}}"
#define EXACT(v) "{path: {type: Exact, value: \"" v "\"}}"

#endif
