// SPDX-License-Identifier: Apache-2.0
/* Per-pod engine listeners and the accept loop: see steer.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <bpf/bpf.h>

#include "backend_ids.h"
#include "base/log.h"
#include "datapath/netns_sock.h"
#include "engine/engine.h"
#include "khttp/khttp.h"
#include "khttp/khttp_backlog.h"
#include "khttp/khttp_return.h"
#include "steer.h"

#define STEER_EVENTS 64

/*
 * One network namespace the agent listens in: a pod's, shared by the pods of
 * one sandbox or by host-network pods, or the agent's own (clients in the
 * attach cgroup without a pod of their own).
 */
struct steer_ns {
	uint64_t id;			/* never reused: the engine's netns_ctx */
	uint64_t prev_id;		/* adopted: the predecessor's id of it, else 0 */
	uint64_t ino;			/* of /proc/PID/ns/net */
	int netns_fd;
	uint64_t cookie;		/* netns cookie, what the programs key by */
	int lfd[2];			/* AF_INET, AF_INET6 listeners (-1: none) */
	bool own;			/* the agent's netns: kept while it runs */
	size_t nr_pods;			/* pods found in it by this pass */
	char pod_ns[64];		/* its pod when it has exactly one */
	char pod[254];			/* "ns/name" of that pod, "" otherwise */
	size_t pass_pods;		/* counting during a pass */
	char pass_ns[64], pass_pod[254];
};

struct steer_nsname {
	uint32_t id;
	char name[64];
};

struct steer {
	struct dp *dp;
	uint16_t port;
	struct engine *engine;
	int epfd, wake_fd, origdst_fd, engns_fd;
	int kh_ck_fd, kh_ag_fd, kh_fm_fd;	/* the kernel HTTP path; -1: off */
	int kh_ho_fd, kh_slot_fd, kh_ret_fd, kh_sre_fd, kh_rb_fd;
	struct kh_backlog *kh_backlog;
	struct backend_ids *be_ids;	/* steer_backend_id() */
	pthread_t thread;
	bool running;			/* the accept thread (an engine without acceptor) */
	bool in_engine;			/* the engine's loops accept (engine_set_acceptor) */
	pthread_mutex_t lock;		/* everything below */
	struct steer_ns **nss;
	size_t nr_nss;
	struct steer_nsname *names;	/* ns_id -> namespace, from the last image */
	size_t nr_names;
	uint64_t next_id;
	bool released;			/* steer_release_listeners(): the successor's now */
	struct steer_stats st;
};

static const int families[2] = { AF_INET, AF_INET6 };

static bool listens_in(struct steer *s, uint64_t cookie)
{
	for (size_t i = 0; i < s->nr_nss; i++)
		if (s->nss[i]->lfd[0] >= 0 && s->nss[i]->cookie == cookie)
			return true;
	return false;
}

/* Netns entries an earlier agent left (its listeners died with it). */
int steer_prune_engns(struct steer *s)
{
	uint64_t key, next;
	void *k = NULL;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	while (!bpf_map_get_next_key(s->engns_fd, k, &next)) {
		key = next;
		k = &key;
		if (listens_in(s, key))
			continue;
		if (bpf_map_delete_elem(s->engns_fd, &key) && errno != ENOENT) {
			err = -errno;
			break;
		}
		k = NULL;	/* restart: the walk position was deleted */
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

int steer_new(struct dp *dp, uint16_t port, struct steer **out)
{
	struct steer *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	int err;

	if (!s)
		return -ENOMEM;
	s->epfd = s->wake_fd = -1;
	s->kh_ck_fd = s->kh_ag_fd = s->kh_fm_fd = s->kh_ho_fd = s->kh_slot_fd = s->kh_ret_fd = -1;
	s->kh_sre_fd = s->kh_rb_fd = -1;
	s->dp = dp;
	s->port = port;
	s->next_id = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->origdst_fd = dp_map_fd(dp, GAMMAD_MAP_ORIGDST);
	s->engns_fd = dp_map_fd(dp, GAMMAD_MAP_ENGINE_NS);
	err = dp_map_fd(dp, GAMMAD_MAP_OBJECTS);
	s->be_ids = err >= 0 ? backend_ids_new(err) : NULL;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = s->origdst_fd < 0 ? s->origdst_fd : s->engns_fd < 0 ? s->engns_fd :
	      s->epfd < 0 || s->wake_fd < 0 ? -errno : !s->be_ids ? -ENOMEM : 0;
	if (!err && epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev))
		err = -errno;
	if (err) {
		pr_err("http engine: steering setup: %s", strerror(-err));
		steer_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void steer_set_engine(struct steer *s, struct engine *e)
{
	s->engine = e;
}

static struct steer_ns *ns_by_id(struct steer *s, uint64_t id)
{
	for (size_t i = 0; i < s->nr_nss; i++)
		if (s->nss[i]->id == id)
			return s->nss[i];
	return NULL;
}

static const char *ns_name(const struct steer *s, uint32_t id)
{
	for (size_t i = 0; id && i < s->nr_names; i++)
		if (s->names[i].id == id)
			return s->names[i].name;
	return NULL;
}

/* The origin of an accepted connection, or -ENOENT: it is closed then. */
/*
 * The client's namespace is the class connect() used (kernel); a class the
 * kernel did not know (a pod's cgroup not mapped yet) is the namespace of the
 * netns's only pod; else none: the producer routes, as at L4.
 */
static int origin_take(struct steer *s, const struct steer_ns *p, int family,
		       const struct sockaddr_storage *peer, struct engine_origin *o)
{
	const char *cls;

	struct gammad_origdst_key k = { .netns_cookie = p->cookie, .family = (uint8_t)family };
	struct gammad_origdst_val v;

	k.port = family == AF_INET ? ((const struct sockaddr_in *)peer)->sin_port :
				     ((const struct sockaddr_in6 *)peer)->sin6_port;
	if (bpf_map_lookup_and_delete_elem(s->origdst_fd, &k, &v))
		return -errno;
	memset(o, 0, sizeof(*o));
	o->vip.family = v.family;
	memcpy(o->vip.addr, v.vip, v.family == AF_INET6 ? 16 : 4);
	o->vport = ntohs(v.vip_port);
	cls = ns_name(s, v.ns_id);
	snprintf(o->client_ns, sizeof(o->client_ns), "%s", cls ? cls : p->pod[0] ? p->pod_ns : "");
	snprintf(o->client_pod, sizeof(o->client_pod), "%s", p->pod);
	o->netns_ctx = (void *)(uintptr_t)p->id;
	o->netns_cookie = p->cookie;
	return 0;
}

void steer_set_khttp(struct steer *s, const struct steer_kh_fds *fds)
{
	s->kh_ck_fd = fds->ck;
	s->kh_ag_fd = fds->ag;
	s->kh_fm_fd = fds->fm;
	s->kh_ho_fd = fds->ho;
	s->kh_ret_fd = fds->ret;
	s->kh_slot_fd = fds->slot;
	s->kh_sre_fd = fds->sre;
	s->kh_rb_fd = fds->rb;
	s->kh_backlog = fds->backlog;
}

/*
 * The filters behind the kernel's response-edit record (tab, idx): those
 * of the rule backend idx of cls encoded again, when that encoding still
 * makes the very record (else -ESTALE: cls is not what the table was made
 * of any more). Pointers into cls.
 */
static int kh_resp_filters(int rb_fd, const struct gammad_kh_key *key, const struct tr_class *cls,
			   uint16_t port, struct engine_kh_resp *out)
{
	struct gammad_kh_rb rec;
	struct kh_image img;
	uint32_t idx = key->idx & ~GAMMAD_KH_RB_RESP;
	int err = -ESTALE;

	if (!cls || bpf_map_lookup_elem(rb_fd, key, &rec))
		return -ESTALE;	/* its table went while the request was out */
	if (kh_encode(cls, port, &img))
		return -ENOMEM;
	if (!img.tab.engine_reason && idx < img.nr_rbs && img.resp &&
	    !memcmp(&img.resp[idx], &rec, sizeof(rec))) {
		const struct tr_rule *tr = img.rule_src[img.rb_rule[idx]];
		const struct tr_backend *be = img.rb_src[idx];

		out->filters[0] = tr->rule->filters;
		out->nr_filters[0] = tr->rule->nr_filters;
		out->filters[1] = be->ref ? be->ref->filters : NULL;
		out->nr_filters[1] = be->ref ? be->ref->nr_filters : 0;
		out->edit = true;
		err = 0;
	}
	kh_image_free(&img);
	return err;
}

int steer_kernel_resp(void *ctx, uint32_t slot, uint32_t seq, const struct tr_class *cls,
		      uint16_t port, struct engine_kh_resp *out)
{
	struct steer *s = ctx;
	struct gammad_kh_slot_edits se;
	struct gammad_kh_slot sv;

	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(s->kh_slot_fd, &slot, &sv))
		return -ENOENT;
	if (seq == UINT32_MAX) {
		if (!(sv.flags & GAMMAD_KH_SLOT_EDIT))
			return -ENOENT;
		out->seq = sv.relay_seq;
		return 0;
	}
	out->seq = seq;
	out->head = sv.head_bits & (1u << (seq & 31));
	if (s->kh_sre_fd < 0 || bpf_map_lookup_elem(s->kh_sre_fd, &slot, &se) ||
	    !(se.bits & (1u << (seq & 31))))
		return 0;	/* no edits: as it is */
	return kh_resp_filters(s->kh_rb_fd, &se.key[seq & 31], cls, port, out);
}

bool steer_kernel_pending(void *ctx, uint64_t cookie)
{
	struct steer *s = ctx;
	struct gammad_kh_slot sv;
	uint32_t slot;

	if (bpf_map_lookup_elem(s->kh_ho_fd, &cookie, &slot))
		return false;	/* handed over with no upstream bound */
	/* still its client's, and a response not whole yet (or not the next one) */
	if (!bpf_map_lookup_elem(s->kh_slot_fd, &slot, &sv) && sv.owner == cookie &&
	    (sv.req_seq != sv.r.resp_seq || sv.r.state != GAMMAD_KH_RS_STATUS || sv.r.k))
		return true;
	bpf_map_delete_elem(s->kh_ho_fd, &cookie);
	return false;
}

bool steer_kernel_returnable(void *ctx, uint64_t cookie)
{
	struct steer *s = ctx;
	struct gammad_kh_ret r;

	return s->kh_ret_fd >= 0 && !bpf_map_lookup_elem(s->kh_ret_fd, &cookie, &r);
}

bool steer_kernel_return(void *ctx, uint64_t cookie, int fd, size_t out_len)
{
	struct steer *s = ctx;

	return s->kh_ret_fd >= 0 && !kh_return_mark(s->kh_ret_fd, cookie, fd, out_len);
}

/* A dup of the netns fd of the engine's netns_ctx, or -errno (-ESRCH: the pod is gone). */
static int ns_dup(struct steer *s, void *netns_ctx)
{
	struct steer_ns *p;
	int nsfd = -ESRCH;

	pthread_mutex_lock(&s->lock);
	p = ns_by_id(s, (uint64_t)(uintptr_t)netns_ctx);
	if (p && p->netns_fd >= 0) {
		nsfd = fcntl(p->netns_fd, F_DUPFD_CLOEXEC, 0);
		if (nsfd < 0)
			nsfd = -errno;
	}
	pthread_mutex_unlock(&s->lock);
	return nsfd;
}

unsigned int steer_kernel_state(void *ctx, uint64_t cookie, void *netns_ctx, uint32_t slot,
				unsigned int want)
{
	struct steer *s = ctx;
	struct gammad_kh_slot sv;
	unsigned int st = 0;

	if (slot != UINT32_MAX && !bpf_map_lookup_elem(s->kh_slot_fd, &slot, &sv) &&
	    sv.owner == cookie) {
		if (sv.req_seq == sv.r.resp_seq && sv.r.state == GAMMAD_KH_RS_STATUS && !sv.r.k &&
		    !(sv.flags & GAMMAD_KH_SLOT_UNFRAMED))
			st |= ENGINE_KH_WHOLE;
		if (sv.flags & GAMMAD_KH_SLOT_CLOSE)
			st |= ENGINE_KH_CLOSE;
	}
	if (want & ENGINE_KH_DRAINED) {
		int nsfd = ns_dup(s, netns_ctx), r = 0;

		if (s->kh_backlog && nsfd >= 0)
			r = kh_backlog_pending(s->kh_backlog, nsfd, cookie);
		if (nsfd >= 0)
			close(nsfd);
		/* gone (pod or client): nothing waits; an error: ask again next tick */
		if (!r)
			st |= ENGINE_KH_DRAINED;
	}
	return st;
}

bool steer_kernel_claim(void *ctx, uint64_t cookie)
{
	struct steer *s = ctx;
	uint8_t v;

	/* the client's first message deletes it too: whoever is first has it */
	return !bpf_map_lookup_and_delete_elem(s->kh_fm_fd, &cookie, &v);
}

/* Is fd an established TCP socket (not closed by its peer yet)? */
static bool sock_established(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state == TCP_ESTABLISHED;
}

/*
 * The kernel HTTP path registered this connection: its accepted socket
 * into gammad_khag_v1 under the client's cookie (the kernel hands requests
 * it does not serve to this socket's ingress); the client's cookie, or 0.
 */
static uint64_t kh_accepted(struct steer *s, const struct steer_ns *p, int family,
			    const struct sockaddr_storage *peer, int fd)
{
	struct gammad_origdst_key k = { .netns_cookie = p->cookie, .family = (uint8_t)family };
	uint64_t cookie, v = (uint64_t)fd;

	if (s->kh_ck_fd < 0)
		return 0;
	k.port = family == AF_INET ? ((const struct sockaddr_in *)peer)->sin_port :
				     ((const struct sockaddr_in6 *)peer)->sin6_port;
	if (bpf_map_lookup_and_delete_elem(s->kh_ck_fd, &k, &cookie))
		return 0;	/* not registered: the engine's alone */
	if (bpf_map_update_elem(s->kh_ag_fd, &cookie, &v, BPF_ANY)) {
		/*
		 * A sockhash takes only established sockets: one whose client
		 * closed before this accept (CLOSE_WAIT) fails with EOPNOTSUPP.
		 * Nothing is lost there (the engine reads its EOF over TCP):
		 * counted, not logged, or a load of short connections floods
		 * the log with a warning that means nothing.
		 */
		if (errno == EOPNOTSUPP && !sock_established(fd)) {
			s->st.kernel_closed++;
			s->st.kernel++;
			return cookie;
		}
		/* the kernel can still pass it over TCP before its first redirect */
		s->st.kernel_lost++;
		if (!(s->st.kernel_lost & (s->st.kernel_lost - 1)))
			pr_warn("http engine: netns %s: accepted socket not into %s: %s (%llu so "
				"far)", p->pod[0] ? p->pod : "(shared)", GAMMAD_MAP_KH_AGENT,
				strerror(errno), (unsigned long long)s->st.kernel_lost);
	}
	s->st.kernel++;
	return cookie;
}

uint64_t steer_kh_adopt(struct steer *s, void *netns_ctx, int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	struct steer_ns *p;
	uint64_t cookie = 0;

	if (s->kh_ck_fd < 0 || getpeername(fd, (struct sockaddr *)&peer, &len))
		return 0;
	pthread_mutex_lock(&s->lock);
	p = ns_by_id(s, (uint64_t)(uintptr_t)netns_ctx);
	if (p && (peer.ss_family == AF_INET || peer.ss_family == AF_INET6))
		cookie = kh_accepted(s, p, peer.ss_family, &peer, fd);
	pthread_mutex_unlock(&s->lock);
	return cookie;
}

void steer_each_netns(struct steer *s, void (*fn)(void *ctx, int netns_fd, uint64_t cookie),
		      void *ctx)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss; i++)
		if (s->nss[i]->lfd[0] >= 0 && s->nss[i]->netns_fd >= 0)
			fn(ctx, s->nss[i]->netns_fd, s->nss[i]->cookie);
	pthread_mutex_unlock(&s->lock);
}

/* For logs: its pod, or what it is. */
static const char *ns_label(const struct steer_ns *p)
{
	return p->own ? "(the agent's own)" : p->pod[0] ? p->pod : "(shared by pods)";
}

static void accept_all(struct steer *s, uint64_t id, int fi)
{
	struct steer_ns *p;
	struct engine_origin o;

	pthread_mutex_lock(&s->lock);
	p = ns_by_id(s, id);
	while (p && p->lfd[fi] >= 0) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd, err;

		fd = accept4(p->lfd[fi], (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_warn("http engine: netns %s: accept: %s", ns_label(p),
					strerror(errno));
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		err = origin_take(s, p, families[fi], &peer, &o);
		if (err) {
			/* Logged at 1, 2, 4, 8...: a flood must not flood the log. */
			s->st.no_origin++;
			if (!(s->st.no_origin & (s->st.no_origin - 1)))
				pr_warn("http engine: netns %s: a connection without its "
					"origin (%s): closed (%llu so far)", ns_label(p), strerror(-err),
					(unsigned long long)s->st.no_origin);
			close(fd);
			continue;
		}
		o.kernel_cookie = kh_accepted(s, p, families[fi], &peer, fd);
		/* The engine owns fd from here on, also when it refuses it. */
		err = s->engine ? engine_adopt(s->engine, fd, &o) : (close(fd), -ENOTCONN);
		if (err) {
			s->st.adopt_failed++;
			continue;
		}
		s->st.accepted++;
	}
	pthread_mutex_unlock(&s->lock);
}

static void *accept_thread(void *arg)
{
	struct steer *s = arg;
	struct epoll_event ev[STEER_EVENTS];

	for (;;) {
		int n = epoll_wait(s->epfd, ev, STEER_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_err("http engine: epoll: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (!ev[i].data.u64)
				return NULL;	/* steer_free() */
			accept_all(s, ev[i].data.u64 >> 1, (int)(ev[i].data.u64 & 1));
		}
	}
}

/*
 * engine_set_acceptor's callback, in an engine loop's thread: the loop that
 * woke accepts what is waiting, and the engine keeps each connection in
 * that loop (no hand-off to another thread per connection).
 */
static void accept_in_loop(void *ctx)
{
	struct steer *s = ctx;
	struct epoll_event ev[STEER_EVENTS];
	int n = epoll_wait(s->epfd, ev, STEER_EVENTS, 0);

	for (int i = 0; i < n; i++)
		if (ev[i].data.u64)	/* 0: the wake fd, only the accept thread's */
			accept_all(s, ev[i].data.u64 >> 1, (int)(ev[i].data.u64 & 1));
}

static int own_netns_open(struct steer *s);

int steer_start(struct steer *s)
{
	int err = own_netns_open(s);

	if (err)
		pr_warn("http engine: the agent's netns: %s (its clients keep the L4 path)",
			strerror(-err));
	if (s->engine) {
		err = engine_set_acceptor(s->engine, s->epfd, accept_in_loop, s);
		if (!err) {
			s->in_engine = true;
			return 0;
		}
		pr_warn("http engine: accepting in the engine's loops: %s (an accept thread "
			"instead)", strerror(-err));
	}
	err = pthread_create(&s->thread, NULL, accept_thread, s);

	if (err) {
		pr_err("http engine: accept thread: %s", strerror(err));
		return -err;
	}
	s->running = true;
	return 0;
}

static void ns_close(struct steer *s, struct steer_ns *p)
{
	/* Not steered here any more: new connections take the L4 path. */
	if (p->lfd[0] >= 0)
		bpf_map_delete_elem(s->engns_fd, &p->cookie);
	for (int fi = 0; fi < 2; fi++) {
		if (p->lfd[fi] < 0)
			continue;
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->lfd[fi], NULL);
		close(p->lfd[fi]);
		p->lfd[fi] = -1;
	}
	if (p->netns_fd >= 0)
		close(p->netns_fd);
	p->netns_fd = -1;
}

/* Listeners in the netns, then the programs may steer into it; lock held. */
static int ns_open(struct steer *s, struct steer_ns *p, const char *what)
{
	struct gammad_engns_val v = { 0 };
	int err = 0;

	for (int fi = 0; fi < 2 && !err; fi++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = p->id << 1 | (unsigned)fi };
		int fd = netns_listen_loopback(p->netns_fd, families[fi], s->port, STEER_BACKLOG);

		if (fd == -EADDRNOTAVAIL && families[fi] == AF_INET6) {
			pr_info("http engine: %s: no IPv6 loopback, IPv4 only", what);
			break;
		}
		if (fd < 0) {
			err = fd;
			pr_err("http engine: %s: listen on loopback port %u (%s): %s", what,
			       s->port, fi ? "IPv6" : "IPv4", strerror(-err));
			break;
		}
		p->lfd[fi] = fd;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
			err = -errno;
	}
	if (!err)
		err = sock_netns_cookie(p->lfd[0], &p->cookie);
	if (!err && bpf_map_update_elem(s->engns_fd, &p->cookie, &v, BPF_ANY))
		err = -errno;
	if (err) {
		ns_close(s, p);
		return err;
	}
	pr_info("http engine: %s: listening on loopback port %u in its netns", what, s->port);
	return 0;
}

static struct steer_ns *ns_add(struct steer *s, int netns_fd, uint64_t ino)
{
	struct steer_ns *p = calloc(1, sizeof(*p)), **v;

	v = p ? realloc(s->nss, (s->nr_nss + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(p);
		return NULL;
	}
	s->nss = v;
	s->nss[s->nr_nss++] = p;
	p->id = s->next_id++;
	p->ino = ino;
	p->netns_fd = netns_fd;
	p->lfd[0] = p->lfd[1] = -1;
	return p;
}

static int own_netns_open(struct steer *s)
{
	struct steer_ns *p;
	struct stat st;
	int fd;

	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss; i++) {
		if (s->nss[i]->ino == st.st_ino) {
			/* adopted from the predecessor, with its listeners */
			s->nss[i]->own = true;
			pthread_mutex_unlock(&s->lock);
			close(fd);
			return 0;
		}
	}
	p = ns_add(s, fd, st.st_ino);
	if (p) {
		p->own = true;
		/* no listener here (port taken): its clients keep the L4 path */
		ns_open(s, p, "the agent's netns (clients without a pod)");
	} else {
		close(fd);
	}
	pthread_mutex_unlock(&s->lock);
	return p ? 0 : -ENOMEM;
}

void steer_set_namespaces(struct steer *s, const struct img *img)
{
	struct steer_nsname *n = calloc(img->nr_namespaces + 1, sizeof(*n));

	if (!n)
		return;		/* keep the old table: ids are stable hashes of names */
	for (size_t i = 0; i < img->nr_namespaces; i++) {
		n[i].id = img->namespaces[i].id;
		snprintf(n[i].name, sizeof(n[i].name), "%s", img->namespaces[i].name);
	}
	pthread_mutex_lock(&s->lock);
	free(s->names);
	s->names = n;
	s->nr_names = img->nr_namespaces;
	pthread_mutex_unlock(&s->lock);
}

void steer_pass_begin(struct steer *s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss; i++)
		s->nss[i]->pass_pods = 0;
	pthread_mutex_unlock(&s->lock);
}

void steer_pod_cgroup(void *ctx, const struct img_pod *pod, const char *path)
{
	struct steer *s = ctx;
	struct steer_ns *p = NULL;
	uint64_t ino = 0;
	char what[300];
	int nsfd;

	if (__atomic_load_n(&s->released, __ATOMIC_RELAXED))
		return;		/* handed over: the successor follows the pods */
	/* The netns now: a pod whose sandbox was recreated has a new one. */
	nsfd = netns_of_cgroup(path, &ino);
	if (nsfd < 0) {
		pr_debug("http engine: pod %s/%s: no process in %s yet", pod->namespace,
			 pod->name, path);
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss && !p; i++)
		if (s->nss[i]->ino == ino)
			p = s->nss[i];
	if (p) {
		close(nsfd);
	} else {
		p = ns_add(s, nsfd, ino);
		if (!p) {
			close(nsfd);
			pr_err("http engine: pod %s/%s: %s", pod->namespace, pod->name,
			       strerror(ENOMEM));
			goto out;
		}
		snprintf(what, sizeof(what), "pod %s/%s", pod->namespace ? pod->namespace : "",
			 pod->name ? pod->name : "");
		ns_open(s, p, what);	/* failed: retried by the next pass */
	}
	if (!p->pass_pods++) {
		snprintf(p->pass_ns, sizeof(p->pass_ns), "%s", pod->namespace ? pod->namespace : "");
		snprintf(p->pass_pod, sizeof(p->pass_pod), "%s/%s", p->pass_ns,
			 pod->name ? pod->name : "");
	}
out:
	pthread_mutex_unlock(&s->lock);
}

void steer_pass_end(struct steer *s, bool ok)
{
	uint64_t *gone = calloc(s->nr_nss + 1, sizeof(*gone));
	size_t n = 0, nr_gone = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss; i++) {
		struct steer_ns *p = s->nss[i];

		if (!ok) {
			s->nss[n++] = p;	/* a failed walk may have missed pods */
			continue;
		}
		if (!p->own && (!p->pass_pods || p->lfd[0] < 0)) {
			if (p->lfd[0] >= 0)
				pr_info("http engine: pod %s gone: listeners closed",
					p->pod[0] ? p->pod : "(shared netns)");
			ns_close(s, p);
			if (gone)
				gone[nr_gone++] = p->id;
			free(p);
			continue;
		}
		p->nr_pods = p->pass_pods;
		if (p->nr_pods == 1) {
			memcpy(p->pod_ns, p->pass_ns, sizeof(p->pod_ns));
			memcpy(p->pod, p->pass_pod, sizeof(p->pod));
		} else {
			p->pod_ns[0] = p->pod[0] = 0;	/* shared: the kernel's class only */
		}
		s->nss[n++] = p;
	}
	s->nr_nss = n;
	s->st.pods = 0;
	for (size_t i = 0; i < n; i++)
		s->st.pods += s->nss[i]->lfd[0] >= 0 && !s->nss[i]->own;
	pthread_mutex_unlock(&s->lock);
	/*
	 * Outside the lock: the engine waits for its thread, which may be in
	 * steer_upstream_socket(). Its connections in that netns go too.
	 */
	for (size_t i = 0; s->engine && i < nr_gone; i++)
		engine_forget_netns(s->engine, (void *)(uintptr_t)gone[i]);
	free(gone);
}

int steer_upstream_socket(void *ctx, int family, void *netns_ctx)
{
	struct steer *s = ctx;
	struct steer_ns *p;
	int nsfd = -ESRCH, fd;

	pthread_mutex_lock(&s->lock);
	p = ns_by_id(s, (uint64_t)(uintptr_t)netns_ctx);
	if (p && p->netns_fd >= 0)
		nsfd = dup(p->netns_fd);
	pthread_mutex_unlock(&s->lock);
	if (nsfd < 0)
		return nsfd == -ESRCH ? -ESRCH : -errno;	/* the pod is gone */
	fd = netns_socket(nsfd, family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	close(nsfd);
	return fd;
}

int steer_backend_id(void *ctx, const char *ns, const char *name, uint16_t port,
		     uint8_t family, uint32_t *be_id)
{
	struct steer *s = ctx;

	return backend_ids_find(s->be_ids, ns, name, port, family, be_id);
}

/* ---- restarts (handover.c) ---------------------------------------------- */

int steer_export(struct steer *s, int (*fn)(void *ctx, const struct steer_ns_export *x),
		 void *ctx)
{
	int err = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss && !err; i++) {
		const struct steer_ns *p = s->nss[i];
		struct steer_ns_export x = {
			.id = p->id, .ino = p->ino, .cookie = p->cookie, .own = p->own,
			.nr_pods = p->nr_pods, .netns_fd = p->netns_fd,
			.lfd = { p->lfd[0], p->lfd[1] },
		};

		if (p->lfd[0] < 0 || p->netns_fd < 0)
			continue;	/* nothing to hand: the successor opens it */
		memcpy(x.pod_ns, p->pod_ns, sizeof(x.pod_ns));
		memcpy(x.pod, p->pod, sizeof(x.pod));
		err = fn(ctx, &x);
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

int steer_adopt_ns(struct steer *s, const struct steer_ns_export *x)
{
	struct steer_ns *p;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	p = ns_add(s, x->netns_fd, x->ino);
	if (!p) {
		pthread_mutex_unlock(&s->lock);
		for (int fi = 0; fi < 2; fi++)
			if (x->lfd[fi] >= 0)
				close(x->lfd[fi]);
		close(x->netns_fd);
		return -ENOMEM;
	}
	p->prev_id = x->id;
	/* The agent's own netns stays while we run (the pod passes do not list it). */
	if (x->own) {
		struct stat st;

		p->own = !stat("/proc/self/ns/net", &st) && st.st_ino == x->ino;
	}
	p->cookie = x->cookie;
	p->nr_pods = x->nr_pods;
	memcpy(p->pod_ns, x->pod_ns, sizeof(p->pod_ns));
	memcpy(p->pod, x->pod, sizeof(p->pod));
	p->pod_ns[sizeof(p->pod_ns) - 1] = p->pod[sizeof(p->pod) - 1] = 0;
	for (int fi = 0; fi < 2; fi++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = p->id << 1 | (unsigned)fi };

		p->lfd[fi] = x->lfd[fi];
		if (p->lfd[fi] >= 0 && !err && epoll_ctl(s->epfd, EPOLL_CTL_ADD, p->lfd[fi], &ev))
			err = -errno;
	}
	if (err) {
		/*
		 * Our copies only (the old agent still accepts on them until GO);
		 * the next pass drops this netns and listens afresh.
		 */
		for (int fi = 0; fi < 2; fi++) {
			if (p->lfd[fi] >= 0) {
				epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->lfd[fi], NULL);
				close(p->lfd[fi]);
			}
			p->lfd[fi] = -1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

void *steer_ns_ctx_of_prev(struct steer *s, uint64_t prev_id, uint64_t *cookie)
{
	void *ctx = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_nss && !ctx && prev_id; i++)
		if (s->nss[i]->prev_id == prev_id && s->nss[i]->lfd[0] >= 0) {
			ctx = (void *)(uintptr_t)s->nss[i]->id;
			*cookie = s->nss[i]->cookie;
		}
	pthread_mutex_unlock(&s->lock);
	return ctx;
}

void steer_release_listeners(struct steer *s)
{
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->released, true, __ATOMIC_RELAXED);
	for (size_t i = 0; i < s->nr_nss; i++) {
		struct steer_ns *p = s->nss[i];

		for (int fi = 0; fi < 2; fi++) {
			if (p->lfd[fi] < 0)
				continue;
			/* Out of the epoll first: the file lives on in the successor. */
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->lfd[fi], NULL);
			close(p->lfd[fi]);
			p->lfd[fi] = -1;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

void steer_get_stats(struct steer *s, struct steer_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}

void steer_free(struct steer *s)
{
	if (!s)
		return;
	if (s->in_engine)
		engine_set_acceptor(s->engine, -1, NULL, NULL);	/* waits for a call in progress */
	if (s->running) {
		uint64_t one = 1;

		(void)!write(s->wake_fd, &one, sizeof(one));
		pthread_join(s->thread, NULL);
	}
	for (size_t i = 0; i < s->nr_nss; i++) {
		ns_close(s, s->nss[i]);
		free(s->nss[i]);
	}
	free(s->nss);
	free(s->names);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	backend_ids_free(s->be_ids);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
