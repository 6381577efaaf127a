// SPDX-License-Identifier: Apache-2.0
/* HTTPRoute, GRPCRoute, TLSRoute, TCPRoute: metadata, parentRefs, rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gapi_int.h"

static const char *const kind_names[ROUTE_KIND_COUNT] = {
	[ROUTE_GRPC] = "GRPCRoute",
	[ROUTE_HTTP] = "HTTPRoute",
	[ROUTE_TLS] = "TLSRoute",
	[ROUTE_TCP] = "TCPRoute",
};

const char *gapi_kind_name(enum gapi_route_kind kind)
{
	return kind < ROUTE_KIND_COUNT ? kind_names[kind] : "Route";
}

static int parse_parent_refs(const struct kf_ctx *c, const yaml_node_t *spec,
			     struct gapi_route *r)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t nr;
	int ret;

	ret = gp_list(c, spec, "parentRefs", "spec", GAPI_MAX_PARENT_REFS, &seq, &nr);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)&r->parents, nr, sizeof(*r->parents));
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		ret = gp_item_map(c, seq, i, "spec", "parentRefs", path, sizeof(path), &item);
		if (!ret)
			ret = gp_parse_parent_ref(c, item, path, r->meta.namespace,
					       &r->parents[r->nr_parents++]);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_hostnames(const struct kf_ctx *c, const yaml_node_t *spec,
			   struct gapi_route *r)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	const char *s;
	size_t nr;
	int ret;

	ret = gp_list(c, spec, "hostnames", "spec", GAPI_MAX_HOSTNAMES, &seq, &nr);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)&r->hostnames, nr, sizeof(*r->hostnames));
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		item = yseq_at(c->d, seq, i);
		s = ynode_str(item);
		kf_join(path, sizeof(path), "spec", "hostnames[%zu]", i);
		if (!s || strlen(s) > K8S_NAME_MAX)
			return kf_error(c, item ? item : seq, path,
					"must be a hostname of at most %d characters",
					K8S_NAME_MAX);
		ret = kf_check_text(c, item, path, s);
		if (!ret)
			ret = kf_strdup(&r->hostnames[r->nr_hostnames++], s);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_backend_refs(const struct kf_ctx *c, const yaml_node_t *rule,
			      const char *rpath, const struct gapi_route *r,
			      struct gapi_rule *out)
{
	bool with_filters = r->kind == ROUTE_HTTP || r->kind == ROUTE_GRPC;
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t nr;
	int ret;

	ret = gp_list(c, rule, "backendRefs", rpath, GAPI_MAX_BACKEND_REFS, &seq, &nr);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gp_alloc((void **)&out->backends, nr, sizeof(*out->backends));
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		struct gapi_backend_ref *b = &out->backends[out->nr_backends++];

		ret = gp_item_map(c, seq, i, rpath, "backendRefs", path, sizeof(path), &item);
		if (!ret)
			ret = gp_parse_backend_ref(c, item, path, r->meta.namespace, true, b);
		if (!ret && with_filters)
			ret = gp_parse_filters(c, item, path, r->meta.namespace, &b->filters,
					       &b->nr_filters);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_timeouts(const struct kf_ctx *c, const yaml_node_t *rule,
			  const char *rpath, struct gapi_rule *out)
{
	char path[KF_PATH_MAX];
	yaml_node_t *t;
	int ret;

	ret = kf_map(c, rule, "timeouts", rpath, false, &t);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	kf_join(path, sizeof(path), rpath, "timeouts");
	ret = gp_str(c, t, "request", path, false, 32, &out->timeout_request);
	if (ret && ret != -ENOENT)
		return ret;
	ret = gp_str(c, t, "backendRequest", path, false, 32, &out->timeout_backend);
	return ret == -ENOENT ? 0 : ret;
}

/* retry: {codes: [500, 502], attempts: 2, backoff: 100ms} (HTTPRoute, experimental) */
static int parse_retry(const struct kf_ctx *c, const yaml_node_t *rule, const char *rpath,
		       struct gapi_rule *out)
{
	char path[KF_PATH_MAX], ipath[KF_PATH_MAX];
	yaml_node_t *t, *seq;
	long long v;
	size_t n;
	int ret;

	out->retry_attempts = -1;
	ret = kf_map(c, rule, "retry", rpath, false, &t);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	out->has_retry = true;
	kf_join(path, sizeof(path), rpath, "retry");
	ret = gp_list(c, t, "codes", path, 64, &seq, &n);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret && n) {
		ret = gp_alloc((void **)&out->retry_codes, n, sizeof(*out->retry_codes));
		if (ret)
			return ret;
		for (size_t i = 0; i < n; i++) {
			const yaml_node_t *item = yseq_at(c->d, seq, i);

			kf_join(ipath, sizeof(ipath), path, "codes[%zu]", i);
			if (!item || item->type != YAML_SCALAR_NODE ||
			    yparse_int((const char *)item->data.scalar.value, 400, 599, &v))
				return kf_error(c, item ? item : seq, ipath,
						"must be an HTTP status code in 400..599");
			out->retry_codes[out->nr_retry_codes++] = v;
		}
	}
	ret = kf_int(c, t, "attempts", path, false, 0, 1000000, &v);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret)
		out->retry_attempts = v;
	ret = gp_str(c, t, "backoff", path, false, 32, &out->retry_backoff);
	return ret == -ENOENT ? 0 : ret;
}

static int parse_rule(const struct kf_ctx *c, const yaml_node_t *rule, const char *rpath,
		      const struct gapi_route *r, struct gapi_rule *out)
{
	bool l7 = r->kind == ROUTE_HTTP || r->kind == ROUTE_GRPC;
	int ret;

	out->line = ynode_line(rule);
	ret = gp_str(c, rule, "name", rpath, false, K8S_NAME_MAX, &out->name);
	if (ret && ret != -ENOENT)
		return ret;
	ret = parse_backend_refs(c, rule, rpath, r, out);
	if (ret || !l7)
		return ret;
	ret = gp_parse_matches(c, rule, rpath, r->kind, out);
	if (!ret)
		ret = gp_parse_filters(c, rule, rpath, r->meta.namespace, &out->filters,
				       &out->nr_filters);
	if (!ret && r->kind == ROUTE_HTTP)
		ret = parse_timeouts(c, rule, rpath, out);
	if (!ret && r->kind == ROUTE_HTTP)
		ret = parse_retry(c, rule, rpath, out);
	return ret;
}

static int parse_rules(const struct kf_ctx *c, const yaml_node_t *spec,
		       struct gapi_route *r)
{
	char path[KF_PATH_MAX];
	yaml_node_t *seq, *item;
	size_t nr;
	int ret;

	ret = gp_list(c, spec, "rules", "spec", GAPI_MAX_RULES, &seq, &nr);
	if (ret == -ENOENT && r->kind == ROUTE_HTTP) {
		/* The CRD's default: one rule matching every path, no backends. */
		r->rules = calloc(1, sizeof(*r->rules));
		if (!r->rules)
			return -ENOMEM;
		r->rules[0].line = ynode_line(spec);
		r->nr_rules = 1;
		return 0;
	}
	if (ret == -ENOENT || (!ret && !nr))
		return kf_error(c, spec, "spec.rules", "at least one rule is required");
	if (ret)
		return ret;
	ret = gp_alloc((void **)&r->rules, nr, sizeof(*r->rules));
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		ret = gp_item_map(c, seq, i, "spec", "rules", path, sizeof(path), &item);
		if (!ret)
			ret = parse_rule(c, item, path, r, &r->rules[r->nr_rules++]);
		if (ret)
			return ret;
	}
	return 0;
}

int gapi_parse_route(const struct ydoc *d, enum gapi_route_kind kind, struct diag *dg,
		     struct gapi_route *out)
{
	struct kf_ctx c = { .d = d, .dg = dg };
	yaml_node_t *spec;
	const char *s;
	int ret;

	memset(out, 0, sizeof(*out));
	out->kind = kind;
	ret = k8s_parse_meta(d, d->root, true, dg, &out->meta);
	if (ret)
		return ret;
	if (!yget_str(d, d->root, "apiVersion", &s)) {
		ret = kf_strdup(&out->api_version, s);
		if (ret)
			goto fail;
	}
	ret = kf_map(&c, d->root, "spec", "", true, &spec);
	if (!ret)
		ret = parse_parent_refs(&c, spec, out);
	if (!ret)
		ret = parse_hostnames(&c, spec, out);
	if (!ret)
		ret = parse_rules(&c, spec, out);
	if (!ret)
		return 0;
fail:
	gapi_route_free(out);
	return ret;
}
