// SPDX-License-Identifier: Apache-2.0
/* Per-pod engine listeners and the accept loop: see steer.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "datapath/netns_sock.h"
#include "engine_stub.h"
#include "steer.h"

#define STEER_EVENTS 64

struct steer_pod {
	uint64_t id;			/* never reused: the engine's netns_ctx */
	char uid[64];
	char ns[64];
	char name[254];			/* "ns/name" */
	int netns_fd;
	uint64_t netns_ino;
	uint64_t cookie;		/* netns cookie, what sockops keys by */
	int lfd[2];			/* AF_INET, AF_INET6 listeners (-1: none) */
	bool seen;
};

struct steer {
	struct dp *dp;
	uint16_t port;
	struct engine *engine;
	int epfd, wake_fd, origdst_fd;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;		/* pods, stats */
	struct steer_pod **pods;
	size_t nr_pods;
	uint64_t next_id;
	struct steer_stats st;
};

static const int families[2] = { AF_INET, AF_INET6 };

int steer_new(struct dp *dp, uint16_t port, struct steer **out)
{
	struct steer *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	int err;

	if (!s)
		return -ENOMEM;
	s->epfd = s->wake_fd = -1;
	s->dp = dp;
	s->port = port;
	s->next_id = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->origdst_fd = dp_map_fd(dp, GAMMAD_MAP_ORIGDST);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = s->origdst_fd < 0 ? s->origdst_fd : s->epfd < 0 || s->wake_fd < 0 ? -errno : 0;
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

static struct steer_pod *pod_by_id(struct steer *s, uint64_t id)
{
	for (size_t i = 0; i < s->nr_pods; i++)
		if (s->pods[i]->id == id)
			return s->pods[i];
	return NULL;
}

/* The origin of an accepted connection, or -ENOENT: it is closed then. */
static int origin_take(struct steer *s, const struct steer_pod *p, int family,
		       const struct sockaddr_storage *peer, struct engine_origin *o)
{
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
	snprintf(o->client_ns, sizeof(o->client_ns), "%s", p->ns);
	snprintf(o->client_pod, sizeof(o->client_pod), "%s", p->name);
	o->netns_ctx = (void *)(uintptr_t)p->id;
	return 0;
}

static void accept_all(struct steer *s, uint64_t id, int fi)
{
	struct steer_pod *p;
	struct engine_origin o;

	pthread_mutex_lock(&s->lock);
	p = pod_by_id(s, id);
	while (p && p->lfd[fi] >= 0) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd, err;

		fd = accept4(p->lfd[fi], (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_warn("http engine: pod %s: accept: %s", p->name,
					strerror(errno));
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		err = origin_take(s, p, families[fi], &peer, &o);
		if (err) {
			s->st.no_origin++;
			pr_warn("http engine: pod %s: a connection without its origin (%s): "
				"closed", p->name, strerror(-err));
			close(fd);
			continue;
		}
		err = s->engine ? engine_adopt(s->engine, fd, &o) : -ENOTCONN;
		if (err) {
			s->st.adopt_failed++;
			close(fd);
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

int steer_start(struct steer *s)
{
	int err = pthread_create(&s->thread, NULL, accept_thread, s);

	if (err) {
		pr_err("http engine: accept thread: %s", strerror(err));
		return -err;
	}
	s->running = true;
	return 0;
}

static void pod_close(struct steer *s, struct steer_pod *p)
{
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

/* Listeners in the pod's netns; called with the lock held. */
static int pod_open(struct steer *s, struct steer_pod *p, int netns_fd, uint64_t ino)
{
	int err = 0;

	p->netns_fd = netns_fd;
	p->netns_ino = ino;
	p->id = s->next_id++;
	for (int fi = 0; fi < 2 && !err; fi++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = p->id << 1 | (unsigned)fi };
		int fd = netns_listen_loopback(netns_fd, families[fi], s->port, STEER_BACKLOG);

		if (fd == -EADDRNOTAVAIL && families[fi] == AF_INET6) {
			pr_info("http engine: pod %s: no IPv6 loopback, IPv4 only", p->name);
			break;
		}
		if (fd < 0) {
			err = fd;
			pr_err("http engine: pod %s: listen on loopback port %u (%s): %s",
			       p->name, s->port, fi ? "IPv6" : "IPv4", strerror(-err));
			break;
		}
		p->lfd[fi] = fd;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
			err = -errno;
	}
	if (!err)
		err = sock_netns_cookie(p->lfd[0], &p->cookie);
	if (err)
		pod_close(s, p);
	return err;
}

void steer_pass_begin(struct steer *s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_pods; i++)
		s->pods[i]->seen = false;
	pthread_mutex_unlock(&s->lock);
}

void steer_pod_cgroup(void *ctx, const struct img_pod *pod, const char *path)
{
	struct steer *s = ctx;
	struct steer_pod *p = NULL, **v;
	uint64_t ino = 0;
	int nsfd;

	/* The netns now: a pod whose sandbox was recreated has a new one. */
	nsfd = netns_of_cgroup(path, &ino);
	if (nsfd < 0) {
		pr_debug("http engine: pod %s/%s: no process in %s yet", pod->namespace,
			 pod->name, path);
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_pods && !p; i++)
		if (!strcmp(s->pods[i]->uid, pod->uid))
			p = s->pods[i];
	if (p && p->netns_fd >= 0 && p->netns_ino == ino) {
		p->seen = true;
		close(nsfd);
		goto out;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		v = p ? realloc(s->pods, (s->nr_pods + 1) * sizeof(*v)) : NULL;
		if (!v) {
			free(p);
			close(nsfd);
			pr_err("http engine: pod %s/%s: %s", pod->namespace, pod->name,
			       strerror(ENOMEM));
			goto out;
		}
		s->pods = v;
		s->pods[s->nr_pods++] = p;
		p->lfd[0] = p->lfd[1] = p->netns_fd = -1;
		snprintf(p->uid, sizeof(p->uid), "%s", pod->uid);
		snprintf(p->ns, sizeof(p->ns), "%s", pod->namespace ? pod->namespace : "");
		snprintf(p->name, sizeof(p->name), "%s/%s", p->ns, pod->name ? pod->name : "");
	} else {
		pod_close(s, p);	/* the old netns is gone with its sandbox */
	}
	p->seen = true;
	if (!pod_open(s, p, nsfd, ino))
		pr_info("http engine: pod %s: listening on loopback port %u in its netns",
			p->name, s->port);
out:
	pthread_mutex_unlock(&s->lock);
}

void steer_pass_end(struct steer *s, bool ok)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_pods; i++) {
		struct steer_pod *p = s->pods[i];

		if (p->seen || !ok) {
			s->pods[n++] = p;
			continue;
		}
		pr_info("http engine: pod %s gone: listeners closed", p->name);
		pod_close(s, p);
		free(p);
	}
	s->nr_pods = n;
	s->st.pods = 0;
	for (size_t i = 0; i < n; i++)
		s->st.pods += s->pods[i]->lfd[0] >= 0;
	pthread_mutex_unlock(&s->lock);
}

int steer_upstream_socket(void *ctx, int family, void *netns_ctx)
{
	struct steer *s = ctx;
	struct steer_pod *p;
	int nsfd = -ESRCH, fd;

	pthread_mutex_lock(&s->lock);
	p = pod_by_id(s, (uint64_t)(uintptr_t)netns_ctx);
	if (p && p->netns_fd >= 0)
		nsfd = dup(p->netns_fd);
	pthread_mutex_unlock(&s->lock);
	if (nsfd < 0)
		return nsfd == -ESRCH ? -ESRCH : -errno;	/* the pod is gone */
	fd = netns_socket(nsfd, family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	close(nsfd);
	return fd;
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
	if (s->running) {
		uint64_t one = 1;

		(void)!write(s->wake_fd, &one, sizeof(one));
		pthread_join(s->thread, NULL);
	}
	for (size_t i = 0; i < s->nr_pods; i++) {
		pod_close(s, s->pods[i]);
		free(s->pods[i]);
	}
	free(s->pods);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
