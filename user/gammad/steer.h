/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of steering to the HTTP engine (gammad run --http-engine).
 *
 * Per managed pod (a pod whose cgroup the apply mapped to its namespace) the
 * agent holds two listening sockets INSIDE the pod's netns, on loopback
 * 127.0.0.1 and ::1 at the engine port: connect4/6 send the pod's connections
 * to Service ports with HTTP rules there (bpf/lib/engine.h). The pod's netns
 * is found through a process of its cgroup; listeners are made when a pod
 * appears (or its netns changes: a new sandbox) and closed when it goes.
 *
 * An accept thread (epoll) takes each connection, looks up and deletes its
 * origin in gammad_origdst_v1 by (the listener's netns cookie, family, the
 * client's port), and hands the socket to the engine with the origin: the
 * ClusterIP:port, the pod's namespace and name. A connection without an
 * origin entry (the LRU evicted it, or it never was steered) is closed and
 * counted: nothing is guessed.
 *
 * steer_upstream_socket() is the engine's upstream_socket callback: a socket
 * made in the client pod's netns, so the backend sees the pod's own IP.
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
	uint64_t pods;			/* pods with listeners now */
	uint64_t accepted;		/* connections handed to the engine */
	uint64_t no_origin;		/* accepted without an origdst entry: closed */
	uint64_t adopt_failed;		/* the engine refused: closed */
};

int steer_new(struct dp *dp, uint16_t port, struct steer **out);
/* The engine that gets accepted connections; set before steer_start(). */
void steer_set_engine(struct steer *s, struct engine *e);
/* Start the accept thread. */
int steer_start(struct steer *s);
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
void steer_get_stats(struct steer *s, struct steer_stats *out);
/* Stop the accept thread, close every listener. */
void steer_free(struct steer *s);

#endif
