/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gateway API objects as gammad reads them: HTTPRoute (v1, v1beta1),
 * GRPCRoute (v1), TCPRoute and TLSRoute (v1alpha2, v1) and ReferenceGrant.
 *
 * The four route kinds share one struct: a rule holds matches, filters and
 * backendRefs, and a match holds the HTTP fields (path, method, query) and the
 * gRPC fields (service, method) side by side, so precedence, validation and
 * evaluation are written once. Fields a kind does not have stay empty.
 *
 * Parsing follows the CRDs: defaults are applied (parentRef group/kind,
 * weight 1, path PathPrefix "/", header match Exact), and what the API server
 * would reject through the schema (wrong types, out-of-range numbers, lists
 * longer than maxItems, names over 253 characters) drops the object with one
 * diagnostic naming file:line:field. Cross-field rules the schema checks with
 * CEL are left to the translator, which marks the rule invalid in the route's
 * status instead.
 */
#ifndef GAMMAD_GAPI_H
#define GAMMAD_GAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s.h"

#define GAPI_GROUP "gateway.networking.k8s.io"

/* Schema limits (maxItems in the CRDs of Gateway API v1.6). */
#define GAPI_MAX_PARENT_REFS 32
#define GAPI_MAX_HOSTNAMES 16
#define GAPI_MAX_RULES 16
#define GAPI_MAX_MATCHES 64
#define GAPI_MAX_FILTERS 16
#define GAPI_MAX_BACKEND_REFS 16
#define GAPI_MAX_HEADER_MATCHES 16
#define GAPI_MAX_QUERY_MATCHES 16
#define GAPI_MAX_HEADER_MODS 16
#define GAPI_MAX_WEIGHT 1000000
#define GAPI_MAX_PATH_LEN 1024
#define GAPI_MAX_HEADER_VALUE_LEN 4096
#define GAPI_MAX_GRANT_ENTRIES 16

/* Route kinds in precedence order on one Service port: lower wins. */
enum gapi_route_kind {
	ROUTE_GRPC,
	ROUTE_HTTP,
	ROUTE_TLS,
	ROUTE_TCP,
	ROUTE_KIND_COUNT,
};

enum gapi_match_type {
	MATCH_EXACT,
	MATCH_PREFIX,		/* path only: PathPrefix */
	MATCH_REGEX,		/* RegularExpression: PCRE2 (base/regex.h), userspace only */
};

struct gapi_kv_match {
	enum gapi_match_type type;
	char *name;
	char *value;
};

/*
 * One match (HTTPRouteMatch or GRPCRouteMatch). All conditions are ANDed;
 * the matches of a rule are ORed.
 */
struct gapi_match {
	int line;
	/* HTTP */
	enum gapi_match_type path_type;
	char *path;			/* NULL: gRPC match */
	char *method;			/* NULL: any method */
	struct gapi_kv_match *query;
	size_t nr_query;
	/* gRPC: NULL service/method match any */
	enum gapi_match_type grpc_type;
	char *grpc_service;
	char *grpc_method;
	/* both */
	struct gapi_kv_match *headers;
	size_t nr_headers;
};

enum gapi_filter_type {
	FILTER_REQUEST_HEADER,
	FILTER_RESPONSE_HEADER,
	FILTER_REQUEST_REDIRECT,
	FILTER_URL_REWRITE,
	FILTER_REQUEST_MIRROR,
	FILTER_EXTENSION_REF,
	FILTER_CORS,
	FILTER_EXTERNAL_AUTH,
	FILTER_UNKNOWN,
};

struct gapi_header {
	char *name;
	char *value;
};

struct gapi_header_mod {
	struct gapi_header *set;
	size_t nr_set;
	struct gapi_header *add;
	size_t nr_add;
	char **remove;
	size_t nr_remove;
};

enum gapi_path_mod_type { PATH_MOD_NONE, PATH_MOD_FULL, PATH_MOD_PREFIX };

struct gapi_path_mod {
	enum gapi_path_mod_type type;
	char *value;		/* replaceFullPath or replacePrefixMatch */
};

struct gapi_redirect {
	char *scheme;		/* NULL: keep */
	char *hostname;		/* NULL: keep */
	struct gapi_path_mod path;
	uint16_t port;		/* 0: derived from scheme or request */
	uint16_t status_code;	/* 301, 302 (default), 303, 307, 308 */
};

struct gapi_rewrite {
	char *hostname;
	struct gapi_path_mod path;
};

struct gapi_backend_ref;

struct gapi_mirror {
	struct gapi_backend_ref *backend;
	uint32_t percent;	/* 0..100; 100 when neither percent nor fraction */
};

struct gapi_filter {
	enum gapi_filter_type type;
	int line;
	char *type_name;	/* the "type" as written */
	union {
		struct gapi_header_mod header_mod;	/* request or response */
		struct gapi_redirect redirect;
		struct gapi_rewrite rewrite;
		struct gapi_mirror mirror;
	};
};

struct gapi_backend_ref {
	int line;
	char *group;		/* "" core */
	char *kind;		/* "Service" */
	char *namespace;	/* the route's namespace when omitted */
	char *name;
	uint16_t port;		/* 0 when omitted */
	uint32_t weight;	/* default 1 */
	struct gapi_filter *filters;
	size_t nr_filters;
};

struct gapi_parent_ref {
	int line;
	char *group;		/* default gateway.networking.k8s.io */
	char *kind;		/* default Gateway */
	char *namespace;	/* the route's namespace when omitted */
	char *name;
	char *section_name;	/* NULL when omitted */
	uint16_t port;		/* 0 when omitted */
};

struct gapi_rule {
	int line;
	char *name;			/* NULL when omitted */
	struct gapi_match *matches;	/* none: matches everything */
	size_t nr_matches;
	struct gapi_filter *filters;
	size_t nr_filters;
	struct gapi_backend_ref *backends;
	size_t nr_backends;
	char *timeout_request;		/* GEP-2257 durations, kept as written */
	char *timeout_backend;
	/* retry (GEP-1731, experimental): HTTP status codes, attempts, backoff */
	bool has_retry;
	uint16_t *retry_codes;		/* 400..599 */
	size_t nr_retry_codes;
	int retry_attempts;		/* -1 when omitted */
	char *retry_backoff;		/* GEP-2257 duration as written, NULL when omitted */
};

struct gapi_route {
	struct k8s_meta meta;
	enum gapi_route_kind kind;
	char *api_version;
	struct gapi_parent_ref *parents;
	size_t nr_parents;
	char **hostnames;	/* kept, never used for mesh routing (SNI for TLS) */
	size_t nr_hostnames;
	struct gapi_rule *rules;
	size_t nr_rules;
};

struct gapi_grant_from {
	char *group, *kind, *namespace;
};

struct gapi_grant_to {
	char *group, *kind, *name;	/* name NULL: any */
};

struct gapi_reference_grant {
	struct k8s_meta meta;
	struct gapi_grant_from *from;
	size_t nr_from;
	struct gapi_grant_to *to;
	size_t nr_to;
};

/* "HTTPRoute", "GRPCRoute", ... */
const char *gapi_kind_name(enum gapi_route_kind kind);
const char *gapi_filter_type_name(enum gapi_filter_type type);
const char *gapi_match_type_name(enum gapi_match_type type);

/*
 * Parse a route document of the given kind. Returns 0, or a negative errno
 * after reporting why through diag; on error *out is left freed.
 */
int gapi_parse_route(const struct ydoc *d, enum gapi_route_kind kind, struct diag *dg,
		     struct gapi_route *out);
int gapi_parse_reference_grant(const struct ydoc *d, struct diag *dg,
			       struct gapi_reference_grant *out);

void gapi_route_free(struct gapi_route *r);
void gapi_reference_grant_free(struct gapi_reference_grant *g);

#endif
