/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of steering to the HTTP engine (gammad run, unless
 * --no-http-engine).
 *
 * In the netns of every managed pod (a pod whose cgroup the apply mapped to
 * its namespace), and in its own (clients in the attach cgroup without a pod),
 * the agent holds two listening sockets on loopback 127.0.0.1 and ::1 at the
 * engine port, and lists the netns (cookie) in gammad_engns_v1: connect4/6
 * steer connections to Service ports with HTTP rules there
 * (bpf/lib/engine.h), and only there (elsewhere: L4). The pod's netns is
 * found through a process of its cgroup; pods sharing a netns (host-network
 * pods) share its listeners. Listeners are made when a netns first appears
 * (a new sandbox is a new netns) and closed when no pod uses it any more; on
 * exit the netns entries go, so clients fall back to L4. On a restart the
 * listeners go to the successor (handover.h) and the entries stay.
 *
 * The engine's loops accept (engine_set_acceptor: every loop watches the
 * epoll set of all listeners; the one woken accepts and keeps the
 * connection), or an accept thread where that cannot be set up. Each
 * connection's origin is looked up and deleted in gammad_origdst_v1 by (the listener's netns cookie, family, the
 * client's port), and hands the socket to the engine with the origin: the
 * ClusterIP:port, the client's namespace (the class connect() used, recorded
 * by the kernel) and its pod (when the netns has one pod). A connection
 * without an origin entry (the LRU evicted it, or it never was steered) is
 * closed and counted: nothing is guessed.
 *
 * steer_upstream_socket() is the engine's upstream_socket callback: a socket
 * made in the client pod's netns, so the backend sees the pod's own IP.
 * steer_backend_id() is its backend_id callback (backend_ids.h): the origin
 * carries the listener's netns cookie, so the engine keeps sessionAffinity
 * in the kernel's entries of the pod.
 */
#ifndef GAMMAD_STEER_H
#define GAMMAD_STEER_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath/datapath.h"
#include "image/image.h"

#define STEER_BACKLOG 1024

struct engine;
struct steer;

struct steer_stats {
	uint64_t pods;			/* pod netns with listeners now */
	uint64_t accepted;		/* connections handed to the engine */
	uint64_t kernel;		/* of them registered by the kernel HTTP path */
	uint64_t kernel_lost;		/* registered, but not into gammad_khag_v1 */
	uint64_t kernel_closed;		/* registered, closed by the client before the accept */
	uint64_t no_origin;		/* accepted without an origdst entry: closed */
	uint64_t adopt_failed;		/* the engine refused: closed */
};

int steer_new(struct dp *dp, uint16_t port, struct steer **out);
/* The engine that gets accepted connections; set before steer_start(). */
void steer_set_engine(struct steer *s, struct engine *e);
/*
 * The kernel HTTP path runs (gammad run --kernel-http): fds of its maps
 * (GAMMAD_MAP_KH_*: ck, ag, fm, ho, slot). An accepted connection
 * the kernel registered (its cookie under the origdst key in khck) puts its
 * socket into khag, the kernel's way to the engine, and goes to the engine
 * with origin.kernel_cookie. Before steer_start().
 */
struct kh_backlog;

struct steer_kh_fds {
	int ck, ag, fm, ho, slot, ret;
	int sre, rb;		/* response edits: gammad_khsre_v1, gammad_khrb_v1 */
	struct kh_backlog *backlog;	/* khttp/khttp_backlog.h, borrowed; NULL: none */
};
void steer_set_khttp(struct steer *s, const struct steer_kh_fds *fds);
/*
 * A connection taken over from an agent without the kernel path, in the
 * netns of netns_ctx: registered by our kernel path (its cookie under the
 * origdst key in khck, which that agent does not read)? Then as our accept
 * does (khag), and its client's cookie; else 0.
 */
uint64_t steer_kh_adopt(struct steer *s, void *netns_ctx, int fd);
/* engine_opts.kernel_claim and kernel_pending: ctx is the steer. */
bool steer_kernel_claim(void *ctx, uint64_t cookie);
bool steer_kernel_pending(void *ctx, uint64_t cookie);
/* engine_opts.kernel_returnable and kernel_return (gammad_khret_v1). */
bool steer_kernel_returnable(void *ctx, uint64_t cookie);
bool steer_kernel_return(void *ctx, uint64_t cookie, int fd, size_t out_len);
/*
 * engine_opts.kernel_state: the slot's state from gammad_khslot_v1, the
 * client's sockmap backlog from the iterator (read in its netns; without
 * one, drained is assumed: the engine's tick is the only wait then).
 */
unsigned int steer_kernel_state(void *ctx, uint64_t cookie, void *netns_ctx, uint32_t slot,
				unsigned int want);
/*
 * engine_opts.kernel_resp: the slot's relay start and HEAD bits from
 * gammad_khslot_v1, its edits from gammad_khsre_v1, and the filters of
 * the edit record in gammad_khrb_v1 found by encoding cls again
 * (kh_encode) and comparing the record it makes.
 */
int steer_kernel_resp(void *ctx, uint32_t slot, uint32_t seq, const struct tr_class *cls,
		      uint16_t port, struct engine_kh_resp *out);
/*
 * Every netns with listeners (clients the kernel HTTP path may serve):
 * fn(ctx, netns fd (borrowed), its cookie), under the steer's lock.
 */
void steer_each_netns(struct steer *s, void (*fn)(void *ctx, int netns_fd, uint64_t cookie),
		      void *ctx);
/* Start accepting: in the engine's loops, or an accept thread. */
int steer_start(struct steer *s);
/* The namespace names of the image's ns_ids (the class the kernel recorded). */
void steer_set_namespaces(struct steer *s, const struct img *img);
/*
 * A pass over the pods: steer_pass_begin(), then steer_pod_cgroup() for every
 * pod cgroup found (ia_opts.pod_cgroup), then steer_pass_end(ok): listeners of
 * pods not seen are closed, only when ok (a failed walk may have missed pods).
 */
void steer_pass_begin(struct steer *s);
void steer_pod_cgroup(void *ctx, const struct img_pod *pod, const char *path);
void steer_pass_end(struct steer *s, bool ok);
/* engine_opts.upstream_socket: ctx is the steer, netns_ctx from the origin. */
int steer_upstream_socket(void *ctx, int family, void *netns_ctx);
int steer_backend_id(void *ctx, const char *ns, const char *name, uint16_t port,
		     uint8_t family, uint32_t *be_id);
void steer_get_stats(struct steer *s, struct steer_stats *out);

/*
 * Restarts (handover.c): a netns with its listeners, as one agent hands it
 * to the next. The fds are the steer's (borrowed by steer_export's callback,
 * given to steer_adopt_ns).
 */
struct steer_ns_export {
	uint64_t id;			/* the exporting agent's netns_ctx of it */
	uint64_t ino, cookie;
	bool own;			/* the agent's own netns */
	size_t nr_pods;
	char pod_ns[64], pod[254];
	int netns_fd, lfd[2];		/* lfd[1] -1: IPv4 only */
};

/* fn for every netns with listeners, under the steer's lock; stops at fn's -errno. */
int steer_export(struct steer *s, int (*fn)(void *ctx, const struct steer_ns_export *x),
		 void *ctx);
/*
 * Before steer_start(): a predecessor's netns and listeners; the steer owns
 * the fds from this call on (also on failure). Accepting starts with
 * steer_start(). 0 or -errno.
 */
int steer_adopt_ns(struct steer *s, const struct steer_ns_export *x);
/* The netns_ctx this steer gave the predecessor's netns `prev_id`; NULL: not adopted or gone. */
void *steer_ns_ctx_of_prev(struct steer *s, uint64_t prev_id, uint64_t *cookie);
/*
 * gammad_engns_v1 holds only the netns this steer listens in: what an
 * earlier agent left (killed: its listeners died with it) goes.
 */
int steer_prune_engns(struct steer *s);
/*
 * Stop accepting (the successor accepts now): listeners closed here, their
 * sockets live on in the successor; gammad_engns_v1 is left as it is. The
 * netns stay: connections still served here make upstream sockets in them.
 */
void steer_release_listeners(struct steer *s);
/* Stop the accept thread, close every listener. */
void steer_free(struct steer *s);

#endif
