// SPDX-License-Identifier: Apache-2.0
/* An image to a file and back: see image.h (img_snap_save). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

/* Bump with any change of the layout below or of struct img's meaning. */
#define SNAP_MAGIC "gammad-img-v1\n"

struct snap_hdr {
	char magic[16];
	uint64_t key;		/* the caller's: what the image was made from */
	uint64_t len;		/* of the payload after the header */
	uint64_t hash;		/* hash_large() of the payload */
	uint8_t note[IMG_SNAP_NOTE];
};

/* ---- writing: a growable buffer ------------------------------------------- */

struct wbuf {
	unsigned char *p;
	size_t len, cap;
	int err;
};

static void w_raw(struct wbuf *w, const void *data, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 1 << 20;
		unsigned char *p;

		while (cap < w->len + n)
			cap *= 2;
		p = realloc(w->p, cap);
		if (!p) {
			w->err = -ENOMEM;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

#define W(w, v) w_raw(w, &(v), sizeof(v))

static void w_u64(struct wbuf *w, uint64_t v)
{
	W(w, v);
}

/* Length-prefixed; NULL is its own length. */
static void w_str(struct wbuf *w, const char *s)
{
	uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;

	W(w, n);
	if (s)
		w_raw(w, s, n);
}

static void w_addr(struct wbuf *w, const struct ip_addr *a)
{
	w_raw(w, a, sizeof(*a));
}

static void w_payload(struct wbuf *w, const struct img *img)
{
	w_u64(w, img->nr_namespaces);
	for (size_t i = 0; i < img->nr_namespaces; i++) {
		W(w, img->namespaces[i].id);
		w_str(w, img->namespaces[i].name);
	}
	w_u64(w, img->nr_pods);
	for (size_t i = 0; i < img->nr_pods; i++) {
		const struct img_pod *p = &img->pods[i];

		w_str(w, p->uid);
		W(w, p->id);
		W(w, p->ns_id);
		w_str(w, p->namespace);
		w_str(w, p->name);
	}
	w_u64(w, img->nr_pod_ips);
	for (size_t i = 0; i < img->nr_pod_ips; i++) {
		w_addr(w, &img->pod_ips[i].addr);
		W(w, img->pod_ips[i].ns_id);
		w_str(w, img->pod_ips[i].node_name);
	}
	w_u64(w, img->nr_frontends);
	for (size_t i = 0; i < img->nr_frontends; i++) {
		const struct img_frontend *f = &img->frontends[i];

		W(w, f->id);
		W(w, f->hash);
		W(w, f->generation);
		w_addr(w, &f->addr);
		W(w, f->port);
		W(w, f->protocol);
		w_str(w, f->svc_namespace);
		w_str(w, f->svc_name);
		w_str(w, f->port_name);
		w_u64(w, f->nr_classes);
		for (size_t j = 0; j < f->nr_classes; j++) {
			const struct img_class *c = &f->classes[j];

			W(w, c->ns_id);
			W(w, c->flags);
			W(w, c->l4_selector);
			W(w, c->rule_table);
			w_str(w, c->route_namespace);
			w_str(w, c->route_name);
			W(w, c->first_rule);
			W(w, c->last_rule);
		}
	}
	w_u64(w, img->nr_selectors);
	for (size_t i = 0; i < img->nr_selectors; i++) {
		const struct img_selector *s = &img->selectors[i];

		W(w, s->id);
		W(w, s->total_weight);
		W(w, s->flags);
		w_u64(w, s->nr);
		for (size_t j = 0; j < s->nr; j++) {
			W(w, s->items[j].backend);
			W(w, s->items[j].weight);
		}
	}
	w_u64(w, img->nr_rule_tables);
	for (size_t i = 0; i < img->nr_rule_tables; i++) {
		const struct img_rule_table *t = &img->rule_tables[i];

		W(w, t->id);
		w_u64(w, t->nr);
		for (size_t j = 0; j < t->nr; j++) {
			const struct img_rule *r = &t->items[j];

			w_str(w, r->route_namespace);
			w_str(w, r->route_name);
			W(w, r->rule_index);
			W(w, r->match_index);
			W(w, r->flags);
			w_str(w, r->match);
			W(w, r->match_hash);
			W(w, r->selector);
		}
	}
	w_u64(w, img->nr_backends);
	for (size_t i = 0; i < img->nr_backends; i++) {
		const struct img_backend *b = &img->backends[i];

		W(w, b->id);
		W(w, b->hash);
		w_str(w, b->namespace);
		w_str(w, b->name);
		W(w, b->port);
		W(w, b->family);
		W(w, b->flags);
		W(w, b->policy);
		W(w, b->endpoint_set);
		W(w, b->affinity_timeout);
	}
	w_u64(w, img->nr_endpoint_sets);
	for (size_t i = 0; i < img->nr_endpoint_sets; i++) {
		const struct img_endpoint_set *s = &img->endpoint_sets[i];

		W(w, s->id);
		w_u64(w, s->nr);
		for (size_t j = 0; j < s->nr; j++) {
			w_addr(w, &s->items[j].addr);
			W(w, s->items[j].port);
		}
	}
}

int img_snap_save(const struct img *img, const char *path, uint64_t key,
		  const uint8_t note[IMG_SNAP_NOTE])
{
	struct snap_hdr h = { .key = key };
	struct wbuf w = { 0 };
	char tmp[4200];
	int fd, ret = 0;

	memcpy(h.magic, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1);
	if (note)
		memcpy(h.note, note, IMG_SNAP_NOTE);
	w_raw(&w, &h, sizeof(h));
	w_payload(&w, img);
	if (w.err) {
		free(w.p);
		return w.err;
	}
	h.len = w.len - sizeof(h);
	h.hash = hash_large(w.p + sizeof(h), h.len, key);
	memcpy(w.p, &h, sizeof(h));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		free(w.p);
		return -ENAMETOOLONG;
	}
	/* Written aside and renamed: a reader sees the old file or the new one. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(w.p);
		return -errno;
	}
	for (size_t off = 0; off < w.len && !ret;) {
		ssize_t n = write(fd, w.p + off, w.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		else
			off += (size_t)n;
	}
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	free(w.p);
	return ret;
}

/* ---- reading: every length checked against what is left -------------------- */

struct rbuf {
	const unsigned char *p;
	size_t len, off;
	struct img *img;
	int err;
};

static void r_raw(struct rbuf *r, void *out, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = r->err ?: -EBADMSG;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p + r->off, n);
	r->off += n;
}

#define R(r, v) r_raw(r, &(v), sizeof(v))

/* A count of items of at least min bytes each: more than is left is corrupt. */
static size_t r_count(struct rbuf *r, size_t min)
{
	uint64_t n = 0;

	R(r, n);
	if (!r->err && n > (r->len - r->off) / min)
		r->err = -EBADMSG;
	return r->err ? 0 : (size_t)n;
}

static const char *r_str(struct rbuf *r)
{
	uint32_t n = 0;
	char buf[1024], *s = buf;
	const char *out;

	R(r, n);
	if (r->err || n == UINT32_MAX)
		return NULL;
	if (n > r->len - r->off) {
		r->err = -EBADMSG;
		return NULL;
	}
	if (n >= sizeof(buf) && !(s = malloc((size_t)n + 1))) {
		r->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, r->p + r->off, n);
	s[n] = 0;
	r->off += n;
	/* A NUL inside is no string this image could have had. */
	if (strlen(s) != n)
		r->err = -EBADMSG;
	out = r->err ? NULL : strmap_intern(&r->img->strings, s);
	if (!r->err && !out)
		r->err = -ENOMEM;
	if (s != buf)
		free(s);
	return out;
}

static void r_addr(struct rbuf *r, struct ip_addr *a)
{
	r_raw(r, a, sizeof(*a));
}

static void *r_array(struct rbuf *r, size_t *nr, size_t min, size_t size)
{
	void *p;

	*nr = r_count(r, min);
	if (r->err)
		return NULL;
	p = calloc(*nr + 1, size);
	if (!p) {
		r->err = -ENOMEM;
		*nr = 0;
	}
	return p;
}

static void r_payload(struct rbuf *r, struct img *img)
{
	img->namespaces = r_array(r, &img->nr_namespaces, 8, sizeof(*img->namespaces));
	for (size_t i = 0; i < img->nr_namespaces && !r->err; i++) {
		struct img_namespace *ns = &img->namespaces[i];

		R(r, ns->id);
		ns->name = r_str(r);
		if (!r->err && (!ns->name ||
				strmap_put(&img->ns_by_name, ns->name, (void *)(uintptr_t)ns->id, NULL)))
			r->err = -EBADMSG;
	}
	img->pods = r_array(r, &img->nr_pods, 8, sizeof(*img->pods));
	for (size_t i = 0; i < img->nr_pods && !r->err; i++) {
		struct img_pod *p = &img->pods[i];

		p->uid = r_str(r);
		R(r, p->id);
		R(r, p->ns_id);
		p->namespace = r_str(r);
		p->name = r_str(r);
	}
	img->pod_ips = r_array(r, &img->nr_pod_ips, 8, sizeof(*img->pod_ips));
	for (size_t i = 0; i < img->nr_pod_ips && !r->err; i++) {
		r_addr(r, &img->pod_ips[i].addr);
		R(r, img->pod_ips[i].ns_id);
		img->pod_ips[i].node_name = r_str(r);
	}
	img->frontends = r_array(r, &img->nr_frontends, 8, sizeof(*img->frontends));
	for (size_t i = 0; i < img->nr_frontends && !r->err; i++) {
		struct img_frontend *f = &img->frontends[i];

		R(r, f->id);
		R(r, f->hash);
		R(r, f->generation);
		r_addr(r, &f->addr);
		R(r, f->port);
		R(r, f->protocol);
		f->svc_namespace = r_str(r);
		f->svc_name = r_str(r);
		f->port_name = r_str(r);
		f->classes = r_array(r, &f->nr_classes, 8, sizeof(*f->classes));
		for (size_t j = 0; j < f->nr_classes && !r->err; j++) {
			struct img_class *c = &f->classes[j];

			R(r, c->ns_id);
			R(r, c->flags);
			R(r, c->l4_selector);
			R(r, c->rule_table);
			c->route_namespace = r_str(r);
			c->route_name = r_str(r);
			R(r, c->first_rule);
			R(r, c->last_rule);
		}
	}
	img->selectors = r_array(r, &img->nr_selectors, 8, sizeof(*img->selectors));
	for (size_t i = 0; i < img->nr_selectors && !r->err; i++) {
		struct img_selector *s = &img->selectors[i];

		R(r, s->id);
		R(r, s->total_weight);
		R(r, s->flags);
		s->items = r_array(r, &s->nr, 12, sizeof(*s->items));
		for (size_t j = 0; j < s->nr && !r->err; j++) {
			R(r, s->items[j].backend);
			R(r, s->items[j].weight);
		}
	}
	img->rule_tables = r_array(r, &img->nr_rule_tables, 8, sizeof(*img->rule_tables));
	for (size_t i = 0; i < img->nr_rule_tables && !r->err; i++) {
		struct img_rule_table *t = &img->rule_tables[i];

		R(r, t->id);
		t->items = r_array(r, &t->nr, 8, sizeof(*t->items));
		for (size_t j = 0; j < t->nr && !r->err; j++) {
			struct img_rule *x = &t->items[j];

			x->route_namespace = r_str(r);
			x->route_name = r_str(r);
			R(r, x->rule_index);
			R(r, x->match_index);
			R(r, x->flags);
			x->match = r_str(r);
			R(r, x->match_hash);
			R(r, x->selector);
		}
	}
	img->backends = r_array(r, &img->nr_backends, 8, sizeof(*img->backends));
	for (size_t i = 0; i < img->nr_backends && !r->err; i++) {
		struct img_backend *b = &img->backends[i];

		R(r, b->id);
		R(r, b->hash);
		b->namespace = r_str(r);
		b->name = r_str(r);
		R(r, b->port);
		R(r, b->family);
		R(r, b->flags);
		R(r, b->policy);
		R(r, b->endpoint_set);
		R(r, b->affinity_timeout);
	}
	img->endpoint_sets = r_array(r, &img->nr_endpoint_sets, 8, sizeof(*img->endpoint_sets));
	for (size_t i = 0; i < img->nr_endpoint_sets && !r->err; i++) {
		struct img_endpoint_set *s = &img->endpoint_sets[i];

		R(r, s->id);
		s->items = r_array(r, &s->nr, sizeof(struct ip_addr) + 2, sizeof(*s->items));
		for (size_t j = 0; j < s->nr && !r->err; j++) {
			r_addr(r, &s->items[j].addr);
			R(r, s->items[j].port);
		}
	}
	if (!r->err && r->off != r->len)
		r->err = -EBADMSG;
}

/* The tables are looked up by id (img_find_id): a file out of order is not ours. */
#define SORTED(img, table)							\
	({ bool ok_ = true;							\
	   for (size_t i_ = 1; i_ < (img)->nr_##table && ok_; i_++)		\
		ok_ = (img)->table[i_ - 1].id < (img)->table[i_].id;		\
	   ok_; })

int img_snap_load(const char *path, uint64_t key, struct img *out,
		  uint8_t note[IMG_SNAP_NOTE])
{
	struct snap_hdr h;
	struct rbuf r = { .img = out };
	unsigned char *buf = NULL;
	struct stat st;
	size_t n = 0;
	int fd, ret = 0;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(h) ||
	    st.st_size > (1ll << 30)) {
		close(fd);
		return -EBADMSG;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	memcpy(&h, buf, sizeof(h) <= n ? sizeof(h) : 0);
	if (n != (size_t)st.st_size || memcmp(h.magic, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1) ||
	    h.len != n - sizeof(h) || h.hash != hash_large(buf + sizeof(h), h.len, h.key))
		ret = -EBADMSG;
	else if (h.key != key)
		ret = -ESTALE;
	if (!ret) {
		r.p = buf + sizeof(h);
		r.len = h.len;
		r_payload(&r, out);
		ret = r.err;
	}
	if (!ret && !(SORTED(out, frontends) && SORTED(out, selectors) &&
		      SORTED(out, rule_tables) && SORTED(out, backends) &&
		      SORTED(out, endpoint_sets)))
		ret = -EBADMSG;
	free(buf);
	if (ret) {
		img_free(out);
		return ret;
	}
	if (note)
		memcpy(note, h.note, IMG_SNAP_NOTE);
	return 0;
}
