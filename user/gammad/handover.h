/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restarts of `gammad run` (its HTTP engine) without a refused connect or a
 * lost request: the running agent hands its per-pod engine listeners and
 * its client connections to a successor, over a unix socket with
 * SCM_RIGHTS, as HAProxy's seamless reload and Envoy's hot restart do.
 *
 * To restart or upgrade, start the new agent (same --pin-dir and
 * --engine-port) while the old one runs. The old one listens on the
 * abstract unix socket "@gammad-handover:<pin dir>" (SOCK_SEQPACKET; the
 * peer must have its uid); the new one connects at start, before it loads
 * anything:
 *
 *   new -> old  HELLO (version, engine port)   old stops applying: one writer
 *   old -> new  NS ... NS_END                  every netns it listens in:
 *                                              netns fd, listener fds, pods
 *   new                                        first apply (its tables), then
 *                                              accepts too: the listening
 *                                              sockets are the same, never closed
 *   new -> old  GO                             old stops accepting
 *   old -> new  CONN ...                       each client connection at its
 *                                              next request boundary (fd, origin)
 *   old                                        exits when it holds none, or
 *                                              after HANDOVER_DRAIN_MS
 *
 * A connection is at a boundary when no request is in flight and no byte of
 * the next one was read (engine_handoff): what the client sends meanwhile
 * waits in the socket for the new agent. In-flight requests finish in the
 * old agent first; WebSocket and passthrough tunnels stay there and are
 * closed at HANDOVER_DRAIN_MS. The BPF maps and links are pinned and shared:
 * the new agent adopts them (dp_open) and replaces the programs in place.
 *
 * No predecessor (none running, or killed: the abstract socket died with
 * it): the new agent starts fresh and listens itself (connect4/6 meanwhile
 * take the L4 path where no engine listener is alive: bpf/lib/engine.h).
 * A predecessor that refuses (another engine port, another protocol
 * version, no engine) or fails midway keeps running and the new agent
 * exits: two agents must not both write the maps. So does a new agent
 * without the engine (--no-http-engine) that finds one running (nothing to take over).
 */
#ifndef GAMMAD_HANDOVER_H
#define GAMMAD_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>

#define HANDOVER_DRAIN_MS	30000	/* the old agent's last connections are closed then */
#define HANDOVER_TIMEOUT_MS	60000	/* the new agent's first apply, HELLO to GO */

struct engine;
struct steer;
struct handover;

/*
 * New agent, before it loads anything: take the listeners of an agent
 * running on pin_dir (port: our --engine-port, 0 without the engine).
 * 0 and *out: taken (then handover_adopt, handover_go); -ENOENT: no agent
 * runs (start fresh); -EBUSY: one runs and port is 0; other -errno: one
 * runs but the handover failed (logged). kh: we run the kernel HTTP path
 * and take its upstream sockets and connections (handover_kh_fds). Unless 0 or -ENOENT the running
 * agent carries on and this one must not run beside it (exit).
 */
int handover_take(const char *pin_dir, uint16_t port, bool kh, struct handover **out);
/* Before steer_start(): the taken netns and listeners go to s. */
void handover_adopt(struct handover *h, struct steer *s);
/*
 * New agent, once it accepts: the old one stops accepting and sends its
 * connections, which a thread adopts into e as they come.
 */
int handover_go(struct handover *h, struct engine *e);

/*
 * Every running agent: listen for a successor (one without the engine
 * refuses it); -errno (logged): restarts hand nothing over.
 */
int handover_listen(const char *pin_dir, struct handover **out);
/* The fd to poll for a successor (POLLIN), -1: none. */
int handover_poll_fd(const struct handover *h);
/*
 * POLLIN on handover_poll_fd(): serve the successor up to its GO. 1: handed
 * over (stop applying; handover_drain() next); 0: it went away before GO,
 * or was refused (s NULL: no engine here; another port): carry on.
 */
int handover_serve(struct handover *h, struct steer *s, uint16_t port);
/* After handover_serve() == 1: stop accepting, give every connection away, wait for the last. */
void handover_drain(struct handover *h, struct steer *s, struct engine *e);

/*
 * The kernel HTTP path (agent_khttp.c). Running agent: each(ctx, h) calls
 * handover_kh_send() for every upstream socket of its pools when a
 * successor that runs the path too takes over; after handover_serve() == 1
 * handover_kh_given() tells whether it took them (then the pools are its:
 * kh_pools_release, and the connections the kernel may serve go to it with
 * the others). A successor without the path (its first apply retired the
 * kernel tables, so the kernel serves no new request): once idle(ctx) says
 * no response of the kernel is outstanding any more, those connections go
 * to its engine as plain ones, theirs for good (the kernel's program hands
 * every request over). Until then, and with a successor that runs the path
 * but did not take the upstreams, they stay here (closed at the end).
 * New agent: handover_kh_fds() is the predecessor's sockets by slot
 * (GAMMAD_KH_SLOTS_MAX entries, -1: none; adopt them and set -1), NULL when
 * it handed no pools over (then the pinned pools are stale: flush them, and
 * every plain connection taken over that the kernel registered, under an
 * agent without the path, is registered here: steer_kh_adopt).
 */
typedef int (*handover_kh_each_fn)(void *ctx, struct handover *h);
typedef bool (*handover_kh_idle_fn)(void *ctx);
void handover_set_kh(struct handover *h, handover_kh_each_fn each, handover_kh_idle_fn idle,
		     void *ctx);
int handover_kh_send(struct handover *h, uint32_t slot, int fd);
bool handover_kh_given(const struct handover *h);
int *handover_kh_fds(struct handover *h);

/* Waits for a receiving thread to see its predecessor's end. */
void handover_free(struct handover *h);

#endif
