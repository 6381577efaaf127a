// SPDX-License-Identifier: Apache-2.0
/* Handing the HTTP engine's sockets to a restarted agent: see handover.h. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "engine/engine.h"
#include "gammad/maps.h"
#include "handover.h"
#include "steer.h"

#define HO_MAGIC	0x68616d67u	/* "gmah" */
#define HO_VERSION	1
#define HO_MAX_FDS	3		/* NS: netns, IPv4 listener, IPv6 listener */
#define HO_HELLO_MS	5000		/* a successor's HELLO after it connected */
#define HO_NS_MS	30000		/* the old agent's NS records (it may be mid-apply) */

enum ho_type {
	HO_HELLO = 1,	/* new -> old: engine_port */
	HO_NS,		/* old -> new: a netns, fds netns + listeners */
	HO_NS_END,	/* old -> new: that was all */
	HO_GO,		/* new -> old: stop accepting, send the connections */
	HO_CONN,	/* old -> new: a client connection at a request boundary, fd */
	/*
	 * The kernel HTTP path (both agents run it, HELLO's kh): between the NS
	 * records an upstream socket per slot (fd), NS_END's kh then says the
	 * pinned pools are the successor's to adopt; a connection the kernel
	 * may serve is HO_KCONN, HO_CONN with its client's cookie after it.
	 * An agent that predates these never sends them, nor gets them.
	 */
	HO_KH_UP,	/* old -> new: the upstream socket of a slot, fd */
	HO_KCONN,	/* old -> new: HO_CONN + uint64_t kernel cookie */
};

/* Its layout is the protocol between two builds: change it, bump HO_VERSION. */
struct ho_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	union {
		struct {
			uint16_t engine_port;
			uint8_t kh;		/* the successor takes the kernel path's sockets */
		} hello;
		struct {
			uint8_t kh;		/* the pools were handed over (HO_KH_UP) */
		} ns_end;
		struct {
			uint32_t slot;
		} kh_up;
		struct {
			uint64_t id, ino, cookie;
			uint32_t nr_pods;
			uint8_t own;
			uint8_t v6;		/* an IPv6 listener follows the IPv4 one */
			char pod_ns[64];
			char pod[254];
		} ns;
		struct {
			uint64_t ns_id;		/* the old agent's netns_ctx */
			uint8_t http;
			struct ip_addr vip;
			uint16_t vport;
			char client_ns[64];
			char client_pod[254];
		} conn;
	};
};

struct handover {
	int lfd;		/* listening for a successor, -1: not */
	int cfd;		/* the connection to the other agent, -1: none */
	char name[108];		/* abstract address, without its leading NUL */
	char pin_dir[4096];	/* to listen again after a successor went away */
	/* new agent: the old one's netns until handover_adopt(), its connections */
	struct steer_ns_export *nss;
	size_t nr_nss;
	pthread_t thread;
	bool thread_on;
	struct steer *steer;
	struct engine *engine;
	uint64_t adopted, dropped, kernel;
	/* new agent: the predecessor's upstream sockets by slot, NULL: none handed over */
	int *kh_fds;
	size_t nr_kh;
	/* running agent: the kernel path's part (handover_set_kh) */
	handover_kh_each_fn kh_each;
	handover_kh_idle_fn kh_idle;
	void *kh_ctx;
	bool succ_kh;		/* the successor takes them */
	bool kh_given;		/* and it took them: the kernel path's connections go too */
	bool succ_nokh;		/* the successor runs no kernel path (HELLO's kh 0) */
	bool kh_quiet;		/* and the kernel owes none of ours a response: they go as plain */
	uint64_t kh_plain;	/* kernel-registered connections given as plain ones */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "@gammad-handover:<pin dir>"; a pin dir too long for sun_path by its hash. */
static socklen_t ho_addr(const char *pin_dir, struct sockaddr_un *a, char *name, size_t len)
{
	size_t pl = strlen(pin_dir);

	while (pl > 1 && pin_dir[pl - 1] == '/')
		pl--;		/* "/sys/fs/bpf/gammad/" is "/sys/fs/bpf/gammad" */
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (pl + 18 < sizeof(a->sun_path) - 1)
		snprintf(name, len, "gammad-handover:%.*s", (int)pl, pin_dir);
	else
		snprintf(name, len, "gammad-handover:#%016llx",
			 (unsigned long long)hash_bytes(pin_dir, pl, 0));
	memcpy(a->sun_path + 1, name, strlen(name));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

/* The other agent must be ours: same uid (or root). */
static int peer_ok(int fd)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l))
		return -errno;
	return cr.uid == geteuid() || cr.uid == 0 ? 0 : -EPERM;
}

/* extra: HO_KCONN's cookie after the message (NULL: none). */
static int ho_send_x(int fd, struct ho_msg *m, const uint64_t *extra, const int *fds, int nr_fds,
		     int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_MAX_FDS)] = { 0 };
	struct iovec iov[2] = { { .iov_base = m, .iov_len = sizeof(*m) },
				{ .iov_base = (void *)extra, .iov_len = sizeof(*extra) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = extra ? 2 : 1 };
	ssize_t n;

	m->magic = HO_MAGIC;
	m->version = HO_VERSION;
	if (nr_fds) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nr_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nr_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nr_fds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)(sizeof(*m) + (extra ? sizeof(*extra) : 0)) ? 0 : -EPROTO;
}

static int ho_send(int fd, struct ho_msg *m, const int *fds, int nr_fds, int flags)
{
	return ho_send_x(fd, m, NULL, fds, nr_fds, flags);
}

/*
 * One message with up to HO_MAX_FDS fds (-1 where none came), waiting up to
 * timeout_ms (-1: for ever). 0, -ECONNRESET at the peer's end, -errno.
 */
static int ho_recv_x(int fd, struct ho_msg *m, uint64_t *extra, int *fds, int *nr_fds,
		     int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_MAX_FDS)];
	uint64_t x = 0;
	struct iovec iov[2] = { { .iov_base = m, .iov_len = sizeof(*m) },
				{ .iov_base = &x, .iov_len = sizeof(x) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t n;
	int r;

	*nr_fds = 0;
	for (int i = 0; i < HO_MAX_FDS; i++)
		fds[i] = -1;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (!r)
		return -ETIMEDOUT;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nr_fds < HO_MAX_FDS)
				fds[(*nr_fds)++] = f;
			else
				close(f);
		}
	}
	if (!n)
		return -ECONNRESET;
	if (n == (ssize_t)(sizeof(*m) + sizeof(x)) && m->type == HO_KCONN && extra)
		*extra = x;	/* the one message that carries more */
	else if (n != (ssize_t)sizeof(*m) || m->type == HO_KCONN)
		n = -1;
	if (n < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    m->magic != HO_MAGIC || m->version != HO_VERSION) {
		for (int i = 0; i < *nr_fds; i++)
			close(fds[i]);
		*nr_fds = 0;
		return -EPROTO;
	}
	return 0;
}

static int ho_recv(int fd, struct ho_msg *m, int *fds, int *nr_fds, int timeout_ms)
{
	return ho_recv_x(fd, m, NULL, fds, nr_fds, timeout_ms);
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void exports_close(struct handover *h)
{
	for (size_t i = 0; i < h->nr_nss; i++) {
		const struct steer_ns_export *x = &h->nss[i];

		close(x->netns_fd);
		close(x->lfd[0]);
		if (x->lfd[1] >= 0)
			close(x->lfd[1]);
	}
	free(h->nss);
	h->nss = NULL;
	h->nr_nss = 0;
	for (size_t i = 0; h->kh_fds && i < GAMMAD_KH_SLOTS_MAX; i++)
		if (h->kh_fds[i] >= 0)
			close(h->kh_fds[i]);	/* not adopted */
	free(h->kh_fds);
	h->kh_fds = NULL;
}

void handover_free(struct handover *h)
{
	if (!h)
		return;
	exports_close(h);
	if (h->thread_on) {
		/* our receiving thread sees its end (the sender just closes: what it
		 * queued is still read) */
		shutdown(h->cfd, SHUT_RDWR);
		pthread_join(h->thread, NULL);
	}
	if (h->cfd >= 0)
		close(h->cfd);
	if (h->lfd >= 0)
		close(h->lfd);
	free(h);
}

static struct handover *ho_new(void)
{
	struct handover *h = calloc(1, sizeof(*h));

	if (h)
		h->lfd = h->cfd = -1;
	return h;
}

/* ---- the new agent -------------------------------------------------------- */

/* The predecessor's upstream sockets by slot, none yet. */
static int kh_fds_alloc(struct handover *h)
{
	if (h->kh_fds)
		return 0;
	h->kh_fds = malloc(GAMMAD_KH_SLOTS_MAX * sizeof(*h->kh_fds));
	if (!h->kh_fds)
		return -ENOMEM;
	for (size_t i = 0; i < GAMMAD_KH_SLOTS_MAX; i++)
		h->kh_fds[i] = -1;
	return 0;
}

/* An upstream socket of the predecessor's kernel HTTP pools (HO_KH_UP). */
static int take_kh_up(struct handover *h, const struct ho_msg *m, int fd)
{
	uint32_t s = m->kh_up.slot;
	int err = kh_fds_alloc(h);

	if (err)
		return err;
	if (s >= GAMMAD_KH_SLOTS_MAX)
		return -EPROTO;
	if (h->kh_fds[s] >= 0)
		close(h->kh_fds[s]);
	else
		h->nr_kh++;
	h->kh_fds[s] = fd;
	return 0;
}

int handover_take(const char *pin_dir, uint16_t port, bool kh, struct handover **out)
{
	struct handover *h = ho_new();
	struct sockaddr_un a;
	struct ho_msg m = { .type = HO_HELLO };
	socklen_t al;
	int err, fds[HO_MAX_FDS], nr;

	if (!h)
		return -ENOMEM;
	al = ho_addr(pin_dir, &a, h->name, sizeof(h->name));
	h->cfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h->cfd < 0) {
		err = -errno;
		goto fail;
	}
	if (connect(h->cfd, (struct sockaddr *)&a, al)) {
		/* nobody listens: no agent runs (or it was killed) */
		err = errno == ECONNREFUSED || errno == ENOENT ? -ENOENT : -errno;
		goto fail;
	}
	if (!port) {
		err = -EBUSY;	/* an agent runs, and we have nothing to take over */
		goto fail;
	}
	err = peer_ok(h->cfd);
	if (err) {
		pr_err("http engine: handover: @%s belongs to another user", h->name);
		goto fail;
	}
	m.hello.engine_port = port;
	m.hello.kh = kh;
	err = ho_send(h->cfd, &m, NULL, 0, 0);
	for (;;) {
		struct steer_ns_export *v;

		if (!err)
			err = ho_recv(h->cfd, &m, fds, &nr, HO_NS_MS);
		if (err)
			break;
		if (m.type == HO_NS_END) {
			close_fds(fds, nr);
			if (!m.ns_end.kh && h->kh_fds)
				err = -EPROTO;	/* sockets, but not told to adopt them */
			if (m.ns_end.kh && !err)
				err = kh_fds_alloc(h);	/* no upstream yet: the pools are ours */
			break;
		}
		if (m.type == HO_KH_UP && kh && nr == 1) {
			err = take_kh_up(h, &m, fds[0]);
			if (err)
				close(fds[0]);
			continue;
		}
		if (m.type != HO_NS || nr != 2 + !!m.ns.v6) {
			close_fds(fds, nr);
			err = -EPROTO;
			break;
		}
		v = realloc(h->nss, (h->nr_nss + 1) * sizeof(*v));
		if (!v) {
			close_fds(fds, nr);
			err = -ENOMEM;
			break;
		}
		h->nss = v;
		v = &h->nss[h->nr_nss++];
		*v = (struct steer_ns_export){
			.id = m.ns.id, .ino = m.ns.ino, .cookie = m.ns.cookie, .own = m.ns.own,
			.nr_pods = m.ns.nr_pods, .netns_fd = fds[0], .lfd = { fds[1], fds[2] },
		};
		memcpy(v->pod_ns, m.ns.pod_ns, sizeof(v->pod_ns));
		memcpy(v->pod, m.ns.pod, sizeof(v->pod));
		v->pod_ns[sizeof(v->pod_ns) - 1] = v->pod[sizeof(v->pod) - 1] = 0;
	}
	if (err) {
		/*
		 * The running agent carries on (it refused: another engine
		 * port, no engine; or it failed): two agents must not both write
		 * the maps, so this one gives up (the caller exits).
		 */
		pr_err("http engine: taking over from the agent running on %s failed after %zu "
		       "netns: %s", pin_dir, h->nr_nss, strerror(-err));
		if (err == -ENOENT || err == -ECONNRESET)
			err = -EPROTO;
		goto fail;
	}
	pr_info("http engine: took the listeners of %zu netns from the running agent",
		h->nr_nss);
	if (h->kh_fds)
		pr_info("kernel HTTP data path: took %zu upstream sockets from the running agent",
			h->nr_kh);
	*out = h;
	return 0;
fail:
	handover_free(h);
	return err;
}

void handover_adopt(struct handover *h, struct steer *s)
{
	h->steer = s;
	for (size_t i = 0; i < h->nr_nss; i++) {
		const struct steer_ns_export *x = &h->nss[i];

		if (steer_adopt_ns(s, x))	/* owns the fds now */
			pr_warn("http engine: handover: netns of %s not taken",
				x->pod[0] ? x->pod : "(shared or the agent's)");
	}
	free(h->nss);
	h->nss = NULL;
	h->nr_nss = 0;
}

/* The new agent's thread: the old one's connections, until it exits. */
static void *take_conns(void *arg)
{
	struct handover *h = arg;
	int fds[HO_MAX_FDS], nr, err;
	struct ho_msg m;

	for (;;) {
		struct engine_origin o = { 0 };
		uint64_t cookie = 0;

		err = ho_recv_x(h->cfd, &m, &cookie, fds, &nr, -1);
		if (err)
			break;
		if ((m.type != HO_CONN && m.type != HO_KCONN) || nr != 1 ||
		    (m.type == HO_KCONN && !cookie)) {
			close_fds(fds, nr);
			err = -EPROTO;
			break;
		}
		o.vip = m.conn.vip;
		o.vport = m.conn.vport;
		memcpy(o.client_ns, m.conn.client_ns, sizeof(o.client_ns));
		memcpy(o.client_pod, m.conn.client_pod, sizeof(o.client_pod));
		o.client_ns[sizeof(o.client_ns) - 1] = o.client_pod[sizeof(o.client_pod) - 1] = 0;
		/* one the kernel may serve: it carries on there, its upstreams are ours now */
		o.kernel_cookie = cookie;
		h->kernel += !!cookie;
		o.netns_ctx = steer_ns_ctx_of_prev(h->steer, m.conn.ns_id, &o.netns_cookie);
		if (!o.netns_ctx) {
			close(fds[0]);	/* its pod is gone here */
			h->dropped++;
			continue;
		}
		/*
		 * A predecessor without the kernel path accepted it, but our
		 * sockops registered it (it came between our start and its last
		 * accept): ours as the kernel's, as our own accept would have.
		 */
		if (!cookie && !h->kh_fds) {
			o.kernel_cookie = steer_kh_adopt(h->steer, o.netns_ctx, fds[0]);
			h->kernel += !!o.kernel_cookie;
		}
		/* the engine owns the fd from here on, also when it refuses it */
		if (m.conn.http ? engine_adopt_http(h->engine, fds[0], &o) :
				  engine_adopt(h->engine, fds[0], &o))
			h->dropped++;
		else
			h->adopted++;
	}
	if (err != -ECONNRESET)
		pr_warn("http engine: handover: receiving connections: %s", strerror(-err));
	pr_info("http engine: handover done: %llu connections taken over (%llu of the kernel "
		"HTTP path), %llu dropped (their pod gone)", (unsigned long long)h->adopted,
		(unsigned long long)h->kernel, (unsigned long long)h->dropped);
	return NULL;
}

int handover_go(struct handover *h, struct engine *e)
{
	struct ho_msg m = { .type = HO_GO };
	int err;

	h->engine = e;
	err = pthread_create(&h->thread, NULL, take_conns, h);
	if (err) {
		pr_err("http engine: handover thread: %s", strerror(err));
		return -err;
	}
	h->thread_on = true;
	err = ho_send(h->cfd, &m, NULL, 0, 0);
	if (err)
		pr_err("http engine: handover: GO: %s (the old agent keeps its connections)",
		       strerror(-err));
	return err;
}

/* ---- the running agent ---------------------------------------------------- */

static int ho_bind(struct handover *h, const char *pin_dir)
{
	struct sockaddr_un a;
	socklen_t al = ho_addr(pin_dir, &a, h->name, sizeof(h->name));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, al) || listen(fd, 1)) {
		int err = -errno;

		close(fd);
		return err;
	}
	h->lfd = fd;
	return 0;
}

int handover_listen(const char *pin_dir, struct handover **out)
{
	struct handover *h = ho_new();
	int err;

	if (!h)
		return -ENOMEM;
	snprintf(h->pin_dir, sizeof(h->pin_dir), "%s", pin_dir);
	err = ho_bind(h, pin_dir);
	if (err) {
		pr_warn("http engine: handover socket @%s: %s (a restart will not take over "
			"this agent's connections)", h->name, strerror(-err));
		handover_free(h);
		return err;
	}
	*out = h;
	return 0;
}

int handover_poll_fd(const struct handover *h)
{
	return h ? h->lfd : -1;
}

static int send_ns(void *ctx, const struct steer_ns_export *x)
{
	struct handover *h = ctx;
	struct ho_msg m = { .type = HO_NS };
	int fds[HO_MAX_FDS] = { x->netns_fd, x->lfd[0], x->lfd[1] };

	m.ns.id = x->id;
	m.ns.ino = x->ino;
	m.ns.cookie = x->cookie;
	m.ns.nr_pods = (uint32_t)x->nr_pods;
	m.ns.own = x->own;
	m.ns.v6 = x->lfd[1] >= 0;
	memcpy(m.ns.pod_ns, x->pod_ns, sizeof(m.ns.pod_ns));
	memcpy(m.ns.pod, x->pod, sizeof(m.ns.pod));
	return ho_send(h->cfd, &m, fds, 2 + m.ns.v6, 0);
}

int handover_serve(struct handover *h, struct steer *s, uint16_t port)
{
	struct ho_msg m = { 0 };
	int fds[HO_MAX_FDS], nr, err;

	h->cfd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (h->cfd < 0)
		return 0;	/* it went away already */
	err = peer_ok(h->cfd);
	if (!err)
		err = ho_recv(h->cfd, &m, fds, &nr, HO_HELLO_MS);
	if (!err) {
		close_fds(fds, nr);
		if (m.type != HO_HELLO)
			err = -EPROTO;
		else if (!s)
			err = -EOPNOTSUPP;	/* no engine here: nothing to hand over */
		else if (m.hello.engine_port != port)
			err = -EADDRNOTAVAIL;
	}
	if (err) {
		pr_warn("http engine: a successor on @%s: %s: not handing over", h->name,
			strerror(-err));
		goto abort;
	}
	/* One successor: the address is its to listen on once it took over. */
	close(h->lfd);
	h->lfd = -1;
	h->succ_kh = m.hello.kh && h->kh_each;
	h->succ_nokh = !m.hello.kh;
	pr_info("http engine: a successor: handing over the listeners%s (no more applies here)",
		h->succ_kh ? " and the kernel HTTP path's upstreams" : "");
	err = steer_export(s, send_ns, h);
	/* our pools stay as they are until GO: this thread serves nothing else meanwhile */
	if (!err && h->succ_kh)
		err = h->kh_each(h->kh_ctx, h);
	if (!err) {
		m = (struct ho_msg){ .type = HO_NS_END, .ns_end.kh = h->succ_kh };
		err = ho_send(h->cfd, &m, NULL, 0, 0);
	}
	/* Its first apply runs now; we keep accepting until its GO. */
	if (!err)
		err = ho_recv(h->cfd, &m, fds, &nr, HANDOVER_TIMEOUT_MS);
	if (!err) {
		close_fds(fds, nr);
		if (m.type != HO_GO)
			err = -EPROTO;
	}
	if (!err) {
		h->kh_given = h->succ_kh;
		return 1;
	}
	pr_warn("http engine: the successor went away before taking over (%s): carrying on",
		strerror(-err));
abort:
	close(h->cfd);
	h->cfd = -1;
	if (h->lfd < 0 && ho_bind(h, h->pin_dir))
		pr_warn("http engine: handover socket @%s: cannot listen again", h->name);
	return 0;
}

/* engine_give_fn: one connection to the successor, from the engine's thread. */
static int give_conn(void *ctx, int fd, const struct engine_origin *o, bool http)
{
	struct handover *h = ctx;
	bool kconn = o->kernel_cookie && h->kh_given;
	struct ho_msg m = { .type = kconn ? HO_KCONN : HO_CONN };
	int err;

	/*
	 * One the kernel may serve, to a successor without our upstreams: it
	 * stays, unless the successor runs no kernel path and the kernel owes
	 * our clients nothing any more (handover_drain): then it is plain
	 * HTTP to the successor's engine (the kernel hands it every request).
	 */
	if (o->kernel_cookie && !kconn &&
	    !(h->succ_nokh && __atomic_load_n(&h->kh_quiet, __ATOMIC_ACQUIRE)))
		return -EXDEV;
	m.conn.ns_id = (uint64_t)(uintptr_t)o->netns_ctx;
	m.conn.http = http;
	m.conn.vip = o->vip;
	m.conn.vport = o->vport;
	memcpy(m.conn.client_ns, o->client_ns, sizeof(m.conn.client_ns));
	memcpy(m.conn.client_pod, o->client_pod, sizeof(m.conn.client_pod));
	/* never block the engine: a full socket is tried again next turn */
	err = ho_send_x(h->cfd, &m, kconn ? &o->kernel_cookie : NULL, &fd, 1, MSG_DONTWAIT);
	if (!err && o->kernel_cookie && !kconn)
		__atomic_add_fetch(&h->kh_plain, 1, __ATOMIC_RELAXED);
	return err;
}

void handover_set_kh(struct handover *h, handover_kh_each_fn each, handover_kh_idle_fn idle,
		     void *ctx)
{
	if (!h)
		return;
	h->kh_each = each;
	h->kh_idle = idle;
	h->kh_ctx = ctx;
}

int handover_kh_send(struct handover *h, uint32_t slot, int fd)
{
	struct ho_msg m = { .type = HO_KH_UP, .kh_up.slot = slot };

	return ho_send(h->cfd, &m, &fd, 1, 0);
}

bool handover_kh_given(const struct handover *h)
{
	return h && h->kh_given;
}

int *handover_kh_fds(struct handover *h)
{
	return h ? h->kh_fds : NULL;
}

void handover_drain(struct handover *h, struct steer *s, struct engine *e)
{
	uint64_t t0 = now_ms();
	struct engine_stats st;
	struct timespec tick = { 0, 10 * 1000000L };

	steer_release_listeners(s);
	if (engine_handoff(e, give_conn, h)) {
		pr_err("http engine: handover: cannot start handing connections over");
		return;
	}
	for (;;) {
		/*
		 * A successor without the kernel path: its first apply retired
		 * the tables, so the kernel forwards no new request; once the
		 * responses it still owes are in, the connections it served go
		 * to the successor's engine (give_conn), a turn of every loop now.
		 */
		if (h->succ_nokh && h->kh_idle && !h->kh_quiet && h->kh_idle(h->kh_ctx)) {
			__atomic_store_n(&h->kh_quiet, true, __ATOMIC_RELEASE);
			engine_handoff(e, give_conn, h);
		}
		engine_get_stats(e, &st);
		if (!st.clients)
			break;
		if (now_ms() - t0 >= HANDOVER_DRAIN_MS) {
			pr_warn("http engine: handover: %llu connections not at a request "
				"boundary after %d ms (tunnels, long requests): closed",
				(unsigned long long)st.clients, HANDOVER_DRAIN_MS);
			break;
		}
		nanosleep(&tick, NULL);
	}
	if (h->kh_plain)
		pr_info("http engine: handed %llu connections of the kernel HTTP path to a successor "
			"without the kernel HTTP path (its engine serves them)",
			(unsigned long long)h->kh_plain);
	pr_info("http engine: handed over in %llu ms", (unsigned long long)(now_ms() - t0));
}
