// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "manifest.h"
#include "yaml_fast.h"

typedef int (*load_fn)(struct model *m, const struct ydoc *d, struct diag *dg);

struct kind_handler {
	const char *group;	/* "" for the core group */
	const char *versions;	/* served versions, space separated */
	const char *kind;
	load_fn load;
};

/*
 * One loader per kind: allocate, parse, hand over to the model. A parse
 * error has been reported by the parser; the model reports duplicates.
 */
#define DEFINE_LOADER(fn, type, parse, free_fn, add)			\
static int fn(struct model *m, const struct ydoc *d, struct diag *dg)	\
{									\
	type *o = calloc(1, sizeof(*o));				\
	int ret;							\
									\
	if (!o)								\
		return -ENOMEM;						\
	ret = parse(d, dg, o);						\
	if (ret) {							\
		free(o);						\
		return ret;						\
	}								\
	return add(m, o, dg);						\
}

DEFINE_LOADER(load_namespace, struct k8s_namespace, k8s_parse_namespace,
	      k8s_namespace_free, model_add_namespace)
DEFINE_LOADER(load_service, struct k8s_service, k8s_parse_service, k8s_service_free,
	      model_add_service)
DEFINE_LOADER(load_pod, struct k8s_pod, k8s_parse_pod, k8s_pod_free, model_add_pod)
DEFINE_LOADER(load_deployment, struct k8s_deployment, k8s_parse_deployment,
	      k8s_deployment_free, model_add_deployment)
DEFINE_LOADER(load_slice, struct k8s_endpoint_slice, k8s_parse_endpoint_slice,
	      k8s_endpoint_slice_free, model_add_endpoint_slice)
DEFINE_LOADER(load_grant, struct gapi_reference_grant, gapi_parse_reference_grant,
	      gapi_reference_grant_free, model_add_grant)

static int load_route(struct model *m, const struct ydoc *d, struct diag *dg,
		      enum gapi_route_kind kind)
{
	struct gapi_route *o = calloc(1, sizeof(*o));
	int ret;

	if (!o)
		return -ENOMEM;
	ret = gapi_parse_route(d, kind, dg, o);
	if (ret) {
		free(o);
		return ret;
	}
	return model_add_route(m, o, dg);
}

#define DEFINE_ROUTE_LOADER(fn, kind)					\
static int fn(struct model *m, const struct ydoc *d, struct diag *dg)	\
{									\
	return load_route(m, d, dg, kind);				\
}

DEFINE_ROUTE_LOADER(load_http_route, ROUTE_HTTP)
DEFINE_ROUTE_LOADER(load_grpc_route, ROUTE_GRPC)
DEFINE_ROUTE_LOADER(load_tls_route, ROUTE_TLS)
DEFINE_ROUTE_LOADER(load_tcp_route, ROUTE_TCP)

/* The versions the Gateway API v1.6 CRDs serve (standard and experimental). */
static const struct kind_handler handlers[] = {
	{ "", "v1", "Namespace", load_namespace },
	{ "", "v1", "Service", load_service },
	{ "", "v1", "Pod", load_pod },
	{ "apps", "v1", "Deployment", load_deployment },
	{ "discovery.k8s.io", "v1", "EndpointSlice", load_slice },
	{ GAPI_GROUP, "v1 v1beta1", "HTTPRoute", load_http_route },
	{ GAPI_GROUP, "v1", "GRPCRoute", load_grpc_route },
	{ GAPI_GROUP, "v1 v1alpha2 v1alpha3", "TLSRoute", load_tls_route },
	{ GAPI_GROUP, "v1 v1alpha2", "TCPRoute", load_tcp_route },
	{ GAPI_GROUP, "v1 v1beta1", "ReferenceGrant", load_grant },
};

static bool version_served(const char *versions, const char *version)
{
	size_t n = strlen(version);

	/* "group/" has an empty version: strstr() would find it everywhere, forever. */
	if (!n)
		return false;
	for (const char *p = versions; (p = strstr(p, version)); p += n)
		if ((p == versions || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
	return false;
}

/* Split "group/version" (or "version" for the core group). */
static void split_api_version(const char *api, char *group, size_t len, const char **version)
{
	const char *slash = strrchr(api, '/');

	if (!slash) {
		group[0] = 0;
		*version = api;
		return;
	}
	snprintf(group, len, "%.*s", (int)(slash - api), api);
	*version = slash + 1;
}

static int load_doc(struct model *m, const struct ydoc *d, struct diag *dg, int depth);

/* kind: List (kubectl get -o yaml): each item is a document of its own. */
static int load_list(struct model *m, const struct ydoc *d, struct diag *dg, int depth)
{
	yaml_node_t *items = ymap_get(d, d->root, "items");
	int ret = 0;

	if (depth >= MANIFEST_MAX_DEPTH) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), "items",
			    "Lists nested deeper than %d, ignored", MANIFEST_MAX_DEPTH);
		return 0;
	}
	for (size_t i = 0; i < yseq_len(items) && ret != -ENOMEM; i++) {
		struct ydoc item = *d;

		item.root = yseq_at(d, items, i);
		ret = load_doc(m, &item, dg, depth + 1);
	}
	return ret == -ENOMEM ? ret : 0;
}

static int dispatch(struct model *m, const struct ydoc *d, struct diag *dg,
		    const char *api, const char *kind)
{
	char group[256];
	const char *version;

	split_api_version(api, group, sizeof(group), &version);
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		const struct kind_handler *h = &handlers[i];

		if (strcmp(h->kind, kind) || strcmp(h->group, group))
			continue;
		if (!version_served(h->versions, version)) {
			diag_report(dg, LOG_WARN, d->file, ynode_line(d->root), "apiVersion",
				    "%s %s is not served (served: %s), ignored", api, kind,
				    h->versions);
			return 0;
		}
		return h->load(m, d, dg);
	}
	pr_debug("%s:%d: %s %s: unknown kind, ignored", d->file, ynode_line(d->root), api,
		 kind);
	return 0;
}

static int load_doc(struct model *m, const struct ydoc *d, struct diag *dg, int depth)
{
	const char *api, *kind;

	if (!d->root || ynode_is_null(d->root))
		return 0;
	if (d->root->type != YAML_MAPPING_NODE) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), NULL,
			    "document must be a mapping, ignored");
		return 0;
	}
	if (yget_str(d, d->root, "apiVersion", &api) || yget_str(d, d->root, "kind", &kind)) {
		diag_report(dg, LOG_ERROR, d->file, ynode_line(d->root), "apiVersion",
			    "apiVersion and kind must be strings, document ignored");
		return 0;
	}
	if (!strcmp(kind, "List") && !strcmp(api, "v1"))
		return load_list(m, d, dg, depth);
	return dispatch(m, d, dg, api, kind);
}

int manifest_load_doc(struct model *m, const struct ydoc *d, struct diag *dg)
{
	return load_doc(m, d, dg, 0);
}

/*
 * What one load may take, whatever its files hold: bytes from any source
 * (pipes included), nodes repeated by aliases, files and directories. Each
 * real directory and file is visited once (device and inode), so symlinks
 * can neither loop nor multiply the walk.
 */
struct manifest_cache;

struct load {
	struct model *m;
	struct diag *dg;
	struct manifest_cache *cache;	/* scanning: files go to cache_file() */
	uint64_t *digest;	/* manifest_digest(): files are hashed, not parsed */
	uint64_t bytes_left;
	uint64_t alias_budget;
	size_t entries_left;
	struct strmap seen;	/* "dev:ino" of every directory and file read */
	/* what load_split() checks of a first half */
	size_t refused;		/* documents whose composition failed */
	bool tail_block_map;	/* the last document's root is a block mapping */
};

static void load_init(struct load *l, struct model *m, struct diag *dg)
{
	*l = (struct load){ .m = m, .dg = dg, .bytes_left = MANIFEST_MAX_LOAD_BYTES,
			    .alias_budget = MANIFEST_MAX_ALIAS_NODES,
			    .entries_left = MANIFEST_MAX_ENTRIES };
}

/*
 * Documents are composed and dispatched one at a time, so memory holds one
 * document tree, never a whole file's. A document over a limit is dropped
 * with its line; a syntax error, invalid UTF-8 or too many bytes end the
 * file there, and the documents before it stay loaded.
 */
static void loaded_doc(struct load *l, struct ydoc *d)
{
	d->root = yaml_document_get_root_node(&d->doc);
	l->tail_block_map = d->root && d->root->type == YAML_MAPPING_NODE &&
			    d->root->data.mapping.style == YAML_BLOCK_MAPPING_STYLE;
	ydoc_detect_json(d);
}

/*
 * A buffer's documents through the fast reader (yaml_fast.h) while they are
 * in its subset. Returns 0 when it read them all, -EAGAIN with *off and
 * *line where libyaml must go on, -ENOMEM.
 */
static int load_fast(struct load *l, struct ydoc *d, const struct ydoc_src *src, size_t *off,
		     int *line)
{
	struct yfast f;
	int ret;

	yfast_init(&f, (const char *)src->buf, src->len, src->line_base);
	while ((ret = yfast_next(&f, &d->doc)) == 1) {
		loaded_doc(l, d);
		ret = d->root ? load_doc(l->m, d, l->dg, 0) : 0;
		memset(&d->doc, 0, sizeof(d->doc));	/* f's, not libyaml's */
		d->index++;
		if (ret == -ENOMEM)
			break;
	}
	*off = f.doc_off;
	*line = (int)f.doc_line;
	yfast_free(&f);
	return ret;
}

static int load_stream(struct load *l, const char *name, struct ydoc_src *src)
{
	struct ydoc d = { .file = name };
	struct ydoc_src rest, *whole = src;
	yaml_parser_t parser;
	size_t off = 0;
	int ret = 0, line;

	/* A buffer within its limit: the fast reader first, libyaml from where it stops. */
	if (yfast_enabled && src->fd < 0 && !src->off && src->len <= src->limit) {
		ret = load_fast(l, &d, src, &off, &line);
		if (ret != -EAGAIN) {
			src->off = src->total = src->len;
			l->bytes_left -= src->total < l->bytes_left ? src->total : l->bytes_left;
			return ret;
		}
		ydoc_src_buf(&rest, src->buf + off, src->len - off, src->limit - off);
		ydoc_src_set_line_base(&rest, src->line_base + line);
		src = &rest;
		ret = 0;
	}
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	ydoc_src_attach(&parser, src);
	while (ret != -ENOMEM) {
		struct ydoc_error err;

		ret = ydoc_compose(&parser, src, &d.doc, &l->alias_budget, &err);
		if (ret == -EINVAL) {
			l->refused++;
			/* The stream's end names its column; a dropped document its field. */
			if (err.fatal || !err.field[0])
				diag_report(l->dg, LOG_ERROR, name, err.line, NULL,
					    "column %d: %s", err.col, err.problem);
			else
				diag_report(l->dg, LOG_ERROR, name, err.line, err.field, "%s",
					    err.problem);
			if (err.fatal)
				break;
			d.index++;
			continue;
		}
		if (ret <= 0)
			break;
		loaded_doc(l, &d);
		if (d.root)
			ret = load_doc(l->m, &d, l->dg, 0);
		yaml_document_delete(&d.doc);
		d.index++;
	}
	yaml_parser_delete(&parser);
	if (src != whole)
		whole->total = off + src->total;
	l->bytes_left -= whole->total < l->bytes_left ? whole->total : l->bytes_left;
	return ret == -ENOMEM ? ret : 0;
}

static bool too_large(const char *name, uint64_t len, uint64_t limit, struct diag *dg)
{
	if (len <= limit)
		return false;
	if (limit < YDOC_MAX_FILE_BYTES)
		diag_report(dg, LOG_ERROR, name, 1, NULL,
			    "file of %llu bytes ignored: the load's %llu bytes are used up",
			    (unsigned long long)len, (unsigned long long)MANIFEST_MAX_LOAD_BYTES);
	else
		diag_report(dg, LOG_ERROR, name, 1, NULL,
			    "file too large (%llu bytes, limit %llu), ignored",
			    (unsigned long long)len, (unsigned long long)limit);
	return true;
}

static uint64_t file_limit(const struct load *l)
{
	return l->bytes_left < YDOC_MAX_FILE_BYTES ? l->bytes_left : YDOC_MAX_FILE_BYTES;
}

/* ---- large files: two halves on two threads ------------------------------ */

/*
 * Where a large file's second half starts: at a line "---" (a document
 * start) past the middle, or 0 to read it whole. YAML forbids "---" at the
 * start of a line inside any scalar or collection, so it ends whatever came
 * before; what load_split() cannot be sure of from the first half alone, it
 * checks after. Never with directives (%YAML, %TAG): they belong to the
 * document after them.
 */
static size_t split_at(const char *buf, size_t len)
{
	if (len < MANIFEST_SPLIT_BYTES || buf[0] == '%' || memmem(buf, len, "\n%", 2))
		return 0;
	for (const char *p = buf + len / 2; (p = memmem(p, len - (size_t)(p - buf), "\n---", 4));
	     p += 4) {
		size_t at = (size_t)(p + 1 - buf), next = at + 3;

		if (next == len || buf[next] == ' ' || buf[next] == '\t' || buf[next] == '\r' ||
		    buf[next] == '\n')
			return at;
	}
	return 0;
}

struct half {
	struct load l;		/* a copy of the caller's, into m and dg */
	struct model m;
	struct diag dg;
	const char *name, *buf;
	size_t len;
	int line_base;
	int ret;
};

static void *half_load(void *arg)
{
	struct half *h = arg;
	struct ydoc_src src;

	ydoc_src_buf(&src, h->buf, h->len, h->len);
	ydoc_src_set_line_base(&src, h->line_base);
	h->ret = load_stream(&h->l, h->name, &src);
	return NULL;
}

/* An object a parse made, added as the loader adds it (the first one wins). */
static int model_apply_loaded(struct model *m, const struct model_event *ev, struct diag *dg)
{
	switch (ev->kind) {
	case MODEL_NAMESPACE:
		return model_add_namespace(m, ev->obj, dg);
	case MODEL_SERVICE:
		return model_add_service(m, ev->obj, dg);
	case MODEL_POD:
		return model_add_pod(m, ev->obj, dg);
	case MODEL_DEPLOYMENT:
		return model_add_deployment(m, ev->obj, dg);
	case MODEL_ENDPOINT_SLICE:
		return model_add_endpoint_slice(m, ev->obj, dg);
	case MODEL_ROUTE:
		return model_add_route(m, ev->obj, dg);
	case MODEL_GRANT:
		return model_add_grant(m, ev->obj, dg);
	default:
		model_object_free(ev->kind, ev->obj);
		return -EINVAL;
	}
}

/* Move src's objects behind dst's, in src's load order; dst reports duplicates. */
static int model_merge(struct model *dst, struct model *src, struct diag *dg)
{
	struct model_event *evs;
	size_t nr;
	int ret = 0;

	if (!dst->namespaces.nr && !dst->services.nr && !dst->pods.nr && !dst->deployments.nr &&
	    !dst->slices.nr && !dst->grants.nr) {
		bool empty = true;

		for (int k = 0; k < ROUTE_KIND_COUNT; k++)
			empty = empty && !dst->routes[k].nr;
		if (empty) {
			model_free(dst);
			*dst = *src;
			model_init(src);
			return 0;
		}
	}
	ret = model_take_events(src, &evs, &nr);
	for (size_t i = 0; i < nr; i++) {
		int err = ret ? 0 : model_apply_loaded(dst, &evs[i], dg);

		evs[i].obj = NULL;	/* dst's now, or freed by it */
		if (err == -ENOMEM)
			ret = err;
	}
	model_events_free(evs, nr);
	return ret;
}

/*
 * A file of MANIFEST_SPLIT_BYTES or more (15 MB of YAML is 0.6 s of one
 * core): both halves are parsed at once into models of their own, then
 * moved into l's model in file order, so the objects, their order and the
 * first-wins rule are a whole parse's (a duplicate across the halves is
 * reported after the second half's other diagnostics). Used only when the
 * whole parse would have been the same: the first half ends cleanly (no
 * refused document, its last root a block mapping, which a "---" line
 * cannot have continued) and the aliases of both fit the load's budget
 * together; otherwise the file is parsed again, whole.
 */
static int load_split(struct load *l, const char *name, const char *buf, size_t len)
{
	size_t at = split_at(buf, len);
	struct ydoc_src src;
	struct half h[2];
	pthread_t t;
	bool ok;
	int ret;

	if (at) {
		int lines = 0;

		for (const char *p = buf; (p = memchr(p, '\n', at - (size_t)(p - buf))); p++)
			lines++;
		for (int i = 0; i < 2; i++) {
			h[i] = (struct half){ .l = *l, .name = name };
			h[i].l.m = &h[i].m;
			h[i].l.dg = &h[i].dg;
			h[i].l.cache = NULL;
			h[i].l.refused = 0;
			h[i].l.tail_block_map = false;
			h[i].dg.print = l->dg->print;
			model_init(&h[i].m);
		}
		h[0].buf = buf;
		h[0].len = at;
		h[1].buf = buf + at;
		h[1].len = len - at;
		h[1].line_base = lines;
		if (pthread_create(&t, NULL, half_load, &h[1])) {
			model_free(&h[0].m);
			model_free(&h[1].m);
			at = 0;
		}
	}
	if (!at) {
		ydoc_src_buf(&src, buf, len, file_limit(l));
		return load_stream(l, name, &src);
	}
	half_load(&h[0]);
	pthread_join(t, NULL);
	{
		uint64_t b = l->alias_budget, u0 = b - h[0].l.alias_budget,
			 u1 = b - h[1].l.alias_budget;

		ok = !h[0].ret && !h[1].ret && !h[0].l.refused && h[0].l.tail_block_map &&
		     h[0].l.alias_budget && h[1].l.alias_budget && u0 + u1 < b;
		if (ok)
			l->alias_budget = b - u0 - u1;
	}
	ret = 0;
	if (ok) {
		diag_append(l->dg, &h[0].dg);
		ret = model_merge(l->m, &h[0].m, l->dg);
		diag_append(l->dg, &h[1].dg);
		ret = ret ?: model_merge(l->m, &h[1].m, l->dg);
		l->refused += h[1].l.refused;
		l->tail_block_map = h[1].l.tail_block_map;
		l->bytes_left -= len < l->bytes_left ? len : l->bytes_left;
	}
	for (int i = 0; i < 2; i++) {
		model_free(&h[i].m);
		diag_free(&h[i].dg);
	}
	if (ok || ret == -ENOMEM)
		return ret;
	ydoc_src_buf(&src, buf, len, file_limit(l));
	return load_stream(l, name, &src);
}

int manifest_load_buf(struct model *m, const char *name, const void *buf, size_t len,
		      struct diag *dg)
{
	struct load l;

	load_init(&l, m, dg);
	if (too_large(name, len, file_limit(&l), dg))
		return 0;
	return load_split(&l, name, buf, len);
}

/* Mark a file or directory as read; false when it was already. */
static bool first_visit(struct load *l, const struct stat *st, int *err)
{
	char key[48];
	int ret;

	*err = 0;
	snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino);
	ret = strmap_put(&l->seen, key, NULL, NULL);
	if (ret == -EEXIST)
		return false;
	*err = ret;
	return !ret;
}

static int cache_file(struct load *l, const char *path, int fd, const struct stat *st);
static void cache_no_digest(struct manifest_cache *c);
static int read_all(int fd, size_t size, char **out, size_t *len);

/*
 * One file's record in a digest: its name, identity, length read, times and
 * content hash (hash_large()). manifest_digest() and the cache's scan add
 * the same records in the same walk order, so they give the same digest
 * for the same files.
 */
static uint64_t digest_add(uint64_t d, const char *path, dev_t dev, ino_t ino, size_t len,
			   const struct timespec *mtime, uint64_t content)
{
	uint64_t rec[6] = { (uint64_t)dev, (uint64_t)ino, (uint64_t)len,
			    (uint64_t)mtime->tv_sec, (uint64_t)mtime->tv_nsec, content };

	return hash_bytes(rec, sizeof(rec), hash_bytes(path, strlen(path), d));
}

#define DIGEST_SEED 0x67616d6d6164ull

/* manifest_digest(): the file's name, identity, times and content into the digest. */
static int digest_file(struct load *l, const char *path, int fd, const struct stat *st)
{
	size_t len;
	char *buf;
	int ret;

	if (!S_ISREG(st->st_mode)) {
		diag_report(l->dg, LOG_WARN, path, 0, NULL, "not a regular file: no digest");
		return 0;
	}
	ret = read_all(fd, (size_t)st->st_size, &buf, &len);
	if (ret) {
		diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(-ret));
		return ret == -ENOMEM ? ret : 0;
	}
	*l->digest = digest_add(*l->digest, path, st->st_dev, st->st_ino, len, &st->st_mtim,
				hash_large(buf, len, 0));
	free(buf);
	return 0;
}

/*
 * Read one file. Opened with O_NONBLOCK so that a FIFO swapped in after the
 * caller's stat() cannot block open(); what was opened is checked again.
 * A pipe is read only when given as the path itself (top), as /dev/stdin is.
 */
static int load_file(struct load *l, const char *path, bool top)
{
	struct ydoc_src src;
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st)) {
		diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode) && !(top && S_ISFIFO(st.st_mode))) {
		diag_report(l->dg, top ? LOG_ERROR : LOG_WARN, path, 0, NULL,
			    top ? "not a regular file or directory, ignored"
				: "not a regular file, skipped");
		goto out;
	}
	if (S_ISREG(st.st_mode) && too_large(path, st.st_size, file_limit(l), l->dg))
		goto out;
	if (!first_visit(l, &st, &ret))
		goto out;
	if (l->cache && S_ISREG(st.st_mode)) {
		ret = cache_file(l, path, fd, &st);
		goto out;
	}
	if (l->cache)
		cache_no_digest(l->cache);	/* a pipe: manifest_digest() has none either */
	if (l->digest) {
		ret = digest_file(l, path, fd, &st);
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		char *buf;
		size_t len;

		/*
		 * Whole, for load_split() and the fast reader, which read buffers;
		 * st_size is within the limit (above).
		 */
		ret = read_all(fd, (size_t)st.st_size, &buf, &len);
		if (ret) {
			diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(-ret));
			ret = ret == -ENOMEM ? ret : 0;
			goto out;
		}
		ret = load_split(l, path, buf, len);
		free(buf);
		goto out;
	}
	/* A pipe's writer may be slow: wait for it like any reader of a pipe. */
	if (S_ISFIFO(st.st_mode))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	ydoc_src_fd(&src, fd, file_limit(l));
	ret = load_stream(l, path, &src);
out:
	close(fd);
	return ret;
}

static bool is_manifest_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return name[0] != '.' && dot &&
	       (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int load_any(struct load *l, const char *path, int depth);

static int load_dir(struct load *l, const char *path, int depth)
{
	struct dirent **names;
	int n, ret = 0;

	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		ret = -errno;
		diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char child[4096];
		struct stat st;

		if (name[0] == '.' || ret == -ENOMEM)
			goto next;
		if (!l->entries_left) {
			diag_report(l->dg, LOG_ERROR, path, 0, NULL,
				    "more than %d files and directories in one load, rest skipped",
				    MANIFEST_MAX_ENTRIES);
			ret = -E2BIG;
			goto next;
		}
		l->entries_left--;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, name) >= sizeof(child))
			goto next;
		/* stat(), never open(), decides: FIFOs and devices are not read. */
		if (stat(child, &st))
			goto next;
		if (S_ISDIR(st.st_mode))
			ret = load_any(l, child, depth + 1);
		else if (is_manifest_name(name))
			ret = load_file(l, child, false);
next:
		free(names[i]);
	}
	free(names);
	return ret == -ENOMEM ? ret : 0;
}

static int load_any(struct load *l, const char *path, int depth)
{
	struct stat st;
	int ret;

	if (stat(path, &st)) {
		ret = -errno;
		diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(l, path, depth == 0);
	if (!first_visit(l, &st, &ret)) {
		pr_debug("%s: directory already read (a symlink), skipped", path);
		return ret;
	}
	if (depth >= MANIFEST_MAX_DEPTH) {
		diag_report(l->dg, LOG_ERROR, path, 0, NULL,
			    "directories nested deeper than %d, skipped", MANIFEST_MAX_DEPTH);
		return 0;
	}
	return load_dir(l, path, depth);
}

int manifest_load_path(struct model *m, const char *path, struct diag *dg)
{
	struct load l;
	int ret;

	load_init(&l, m, dg);
	ret = load_any(&l, path, 0);
	strmap_free(&l.seen);
	return ret;
}

int manifest_digest(const char *path, uint64_t *out, struct diag *dg)
{
	uint64_t h = DIGEST_SEED;
	struct load l;
	int ret;

	load_init(&l, NULL, dg);
	l.digest = &h;
	ret = load_any(&l, path, 0);
	strmap_free(&l.seen);
	*out = h;
	return ret;
}

/* ---- the per-file cache ---------------------------------------------------- */

struct mc_key {
	enum model_kind kind;
	enum gapi_route_kind route_kind;
	char *namespace, *name;
};

struct mc_file {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	size_t len;		/* bytes read (the digest's length) */
	uint64_t hash;		/* of the content (hash_large(), as the digest's) */
	struct mc_key *keys;	/* the objects it defines */
	size_t nr_keys;
	struct diag dg;		/* of its last parse */
	bool seen;		/* by this scan */
};

struct ev_list {
	struct model_event *items;
	size_t nr, cap;
};

struct manifest_cache {
	struct strmap files;	/* path -> struct mc_file */
	struct strmap owners;	/* object key -> files defining it (uintptr_t) */
	struct ev_list dels, puts;	/* this scan's */
	char **names;		/* strings the last scan's DELETE events point to */
	size_t nr_names, cap_names;
	size_t parsed;
	/* manifest_digest() of the files as the last scan read them */
	uint64_t digest;
	bool digest_ok;		/* the walk reported nothing, read regular files only */
};

static void cache_no_digest(struct manifest_cache *c)
{
	c->digest_ok = false;
}

int manifest_cache_digest(const struct manifest_cache *c, uint64_t *out)
{
	if (!c->digest_ok)
		return -ENODATA;
	*out = c->digest;
	return 0;
}

static void names_free(struct manifest_cache *c)
{
	for (size_t i = 0; i < c->nr_names; i++)
		free(c->names[i]);
	c->nr_names = 0;
}

/* A copy of s the cache keeps until the next scan; NULL stays NULL. */
static int keep_name(struct manifest_cache *c, const char *s, const char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	if (c->nr_names == c->cap_names) {
		size_t cap = c->cap_names ? c->cap_names * 2 : 64;
		char **n = realloc(c->names, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->names = n;
		c->cap_names = cap;
	}
	c->names[c->nr_names] = strdup(s);
	if (!c->names[c->nr_names])
		return -ENOMEM;
	*out = c->names[c->nr_names++];
	return 0;
}

int manifest_cache_new(struct manifest_cache **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void keys_free(struct mc_key *keys, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		free(keys[i].namespace);
		free(keys[i].name);
	}
	free(keys);
}

/* Forget every file and who owns which object. */
static void files_free(struct manifest_cache *c)
{
	struct strmap_slot *slot;

	strmap_for_each(&c->files, slot) {
		struct mc_file *f = slot->value;

		keys_free(f->keys, f->nr_keys);
		diag_free(&f->dg);
		free(f);
	}
	strmap_free(&c->files);
	strmap_free(&c->owners);
}

void manifest_cache_free(struct manifest_cache *c)
{
	if (!c)
		return;
	files_free(c);
	model_events_free(c->dels.items, c->dels.nr);
	model_events_free(c->puts.items, c->puts.nr);
	names_free(c);
	free(c->names);
	free(c);
}

void manifest_cache_diag(const struct manifest_cache *c, struct diag *out)
{
	const struct strmap_slot *slot;

	strmap_for_each(&c->files, slot)
		diag_append(out, &((const struct mc_file *)slot->value)->dg);
}

size_t manifest_cache_parsed(const struct manifest_cache *c)
{
	return c->parsed;
}

static void owner_key(char *buf, size_t len, const struct mc_key *k)
{
	snprintf(buf, len, "%d/%d/%s/%s", (int)k->kind,
		 k->kind == MODEL_ROUTE ? (int)k->route_kind : 0,
		 k->namespace ? k->namespace : "", k->name ? k->name : "");
}

static int owners_add(struct manifest_cache *c, const struct mc_key *k, int delta)
{
	char key[MODEL_KEY_MAX + 32];
	uintptr_t n;

	owner_key(key, sizeof(key), k);
	n = (uintptr_t)strmap_get(&c->owners, key);
	if (delta < 0) {
		if (n <= 1)
			strmap_del(&c->owners, key);
		else
			strmap_set(&c->owners, key, (void *)(n - 1));
		return 0;
	}
	if (n)
		return strmap_set(&c->owners, key, (void *)(n + 1)), 0;
	return strmap_put(&c->owners, key, (void *)(uintptr_t)1, NULL);
}

static bool conflicted(const struct manifest_cache *c)
{
	struct strmap_slot *slot;

	strmap_for_each(&c->owners, slot)
		if ((uintptr_t)slot->value > 1)
			return true;
	return false;
}

static int ev_push(struct ev_list *l, const struct model_event *ev)
{
	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct model_event *n = realloc(l->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->items = n;
		l->cap = cap;
	}
	l->items[l->nr++] = *ev;
	return 0;
}

static int key_of(const struct model_event *ev, struct mc_key *k)
{
	const struct k8s_meta *meta = ev->obj;

	k->kind = ev->kind;
	k->route_kind = ev->route_kind;
	k->namespace = ev->kind != MODEL_NAMESPACE && meta->namespace ? strdup(meta->namespace) : NULL;
	k->name = strdup(meta->name);
	return k->name && (k->namespace || ev->kind == MODEL_NAMESPACE || !meta->namespace) ?
	       0 : -ENOMEM;
}

static bool same_key(const struct mc_key *a, const struct mc_key *b)
{
	return a->kind == b->kind && (a->kind != MODEL_ROUTE || a->route_kind == b->route_kind) &&
	       !strcmp(a->name, b->name) &&
	       !strcmp(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "");
}

/* DELETE events for old keys that keys does not have; owner counts of old dropped. */
static int drop_keys(struct manifest_cache *c, const struct mc_key *old, size_t nr_old,
		     const struct mc_key *keys, size_t nr)
{
	int ret = 0;

	for (size_t i = 0; i < nr_old && !ret; i++) {
		bool kept = false;

		for (size_t j = 0; j < nr && !kept; j++)
			kept = same_key(&old[i], &keys[j]);
		ret = owners_add(c, &old[i], -1);
		if (kept || ret)
			continue;
		struct model_event ev = { .op = MODEL_DELETE, .kind = old[i].kind,
					  .route_kind = old[i].route_kind };

		ret = keep_name(c, old[i].namespace, &ev.namespace) ?:
		      keep_name(c, old[i].name, &ev.name) ?: ev_push(&c->dels, &ev);
	}
	return ret;
}

/* Read fd whole (st_size bytes at most, as the loader's limit allows). */
static int read_all(int fd, size_t size, char **out, size_t *len)
{
	char *buf = malloc(size + 1);
	size_t n = 0;

	if (!buf)
		return -ENOMEM;
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -errno;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int cache_file(struct load *l, const char *path, int fd, const struct stat *st)
{
	struct manifest_cache *c = l->cache;
	struct mc_file *f = strmap_get(&c->files, path);
	struct model_event *evs = NULL;
	struct mc_key *keys = NULL;
	size_t len = 0, nr = 0;
	struct load sub;
	struct model m;
	uint64_t hash;
	char *buf = NULL;
	int ret;

	if (f && f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	    f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec) {
		f->seen = true;
		c->digest = digest_add(c->digest, path, f->dev, f->ino, f->len, &f->mtime, f->hash);
		return 0;	/* not even read */
	}
	ret = read_all(fd, (size_t)st->st_size, &buf, &len);
	if (ret) {
		diag_report(l->dg, LOG_ERROR, path, 0, NULL, "%s", strerror(-ret));
		if (f)
			f->seen = true;	/* keep its objects: a failed read is no deletion */
		return ret == -ENOMEM ? ret : 0;
	}
	hash = hash_large(buf, len, 0);
	/* What this scan read, parsed or not (a read that fails has none: reported). */
	c->digest = digest_add(c->digest, path, st->st_dev, st->st_ino, len, &st->st_mtim, hash);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f || strmap_put(&c->files, path, f, NULL)) {
			free(f);
			free(buf);
			return -ENOMEM;
		}
	} else if (f->hash == hash) {
		f->dev = st->st_dev;
		f->ino = st->st_ino;
		f->size = st->st_size;
		f->len = len;
		f->mtime = st->st_mtim;
		f->seen = true;
		free(buf);
		return 0;
	}
	/* Parse alone, with the walk's budgets; the file keeps its diagnostics. */
	model_init(&m);
	sub = *l;
	sub.m = &m;
	sub.cache = NULL;
	diag_free(&f->dg);
	sub.dg = &f->dg;
	ret = load_split(&sub, path, buf, len);
	l->bytes_left = sub.bytes_left;
	l->alias_budget = sub.alias_budget;
	free(buf);
	c->parsed++;
	if (!ret)
		ret = model_take_events(&m, &evs, &nr);
	model_free(&m);
	keys = nr ? calloc(nr, sizeof(*keys)) : NULL;
	if (!ret && nr && !keys)
		ret = -ENOMEM;
	for (size_t i = 0; i < nr && !ret; i++)
		ret = key_of(&evs[i], &keys[i]) ?: owners_add(c, &keys[i], 1);
	if (!ret)
		ret = drop_keys(c, f->keys, f->nr_keys, keys, nr);
	for (size_t i = 0; i < nr && !ret; i++) {
		ret = ev_push(&c->puts, &evs[i]);
		if (!ret)
			evs[i].obj = NULL;
	}
	if (ret) {
		model_events_free(evs, nr);
		keys_free(keys, nr);
		return ret;
	}
	free(evs);
	keys_free(f->keys, f->nr_keys);
	f->keys = keys;
	f->nr_keys = nr;
	f->hash = hash;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->len = len;
	f->mtime = st->st_mtim;
	f->seen = true;
	return 0;
}

/* Files the walk did not see are gone: their objects with them. */
static int drop_unseen(struct manifest_cache *c)
{
	struct strmap_slot *slot;
	char **gone = calloc(c->files.nr + 1, sizeof(*gone));
	size_t n = 0;
	int ret = gone ? 0 : -ENOMEM;

	strmap_for_each(&c->files, slot) {
		struct mc_file *f = slot->value;

		if (ret)
			break;
		if (f->seen) {
			f->seen = false;
			continue;
		}
		ret = drop_keys(c, f->keys, f->nr_keys, NULL, 0);
		gone[n++] = slot->key;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		struct mc_file *f = strmap_del(&c->files, gone[i]);

		keys_free(f->keys, f->nr_keys);
		diag_free(&f->dg);
		free(f);
	}
	free(gone);
	return ret;
}

int manifest_cache_scan(struct manifest_cache *c, const char *path, struct model_event **evs,
			size_t *nr, struct diag *dg)
{
	size_t reported = dg ? dg->nr : 0;
	struct load l;
	int ret;

	*evs = NULL;
	*nr = 0;
	c->parsed = 0;
	names_free(c);
	load_init(&l, NULL, dg);
	l.cache = c;
	c->digest = DIGEST_SEED;
	c->digest_ok = dg != NULL;	/* a walk that reports problems has no digest */
	ret = load_any(&l, path, 0);
	strmap_free(&l.seen);
	if (ret || !dg || dg->nr != reported)
		c->digest_ok = false;
	if (!ret || ret == -E2BIG)
		ret = drop_unseen(c);
	if (!ret && c->dels.nr + c->puts.nr) {
		struct model_event *all = realloc(c->dels.items, (c->dels.nr + c->puts.nr) *
						  sizeof(*all));

		if (!all) {
			ret = -ENOMEM;
		} else {
			memcpy(all + c->dels.nr, c->puts.items, c->puts.nr * sizeof(*all));
			*evs = all;
			*nr = c->dels.nr + c->puts.nr;
			free(c->puts.items);
			c->dels = c->puts = (struct ev_list){ 0 };
		}
	}
	if (!ret && conflicted(c)) {
		model_events_free(*evs, *nr);
		*evs = NULL;
		*nr = 0;
		ret = -EAGAIN;
	}
	if (ret && ret != -EAGAIN) {
		/* State and events disagree now: start over at the next scan. */
		model_events_free(c->dels.items, c->dels.nr);
		model_events_free(c->puts.items, c->puts.nr);
		c->dels = c->puts = (struct ev_list){ 0 };
		files_free(c);
	}
	return ret;
}
