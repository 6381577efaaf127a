/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 in the kernel, run by the agent (`gammad run --kernel-http`,
 * issue 13): the data path's programs (datapath.h, dp_kh_open), the
 * steering's part (steer.h: accepted sockets into gammad_khag_v1, the
 * engine told which connections the kernel may serve), and the upstream
 * pools (khttp/khttp_pool.h) in the agent's event loop.
 *
 * Pools: per (netns with engine listeners, endpoint of a backend that a
 * kernel rule table names). While they number at most --kernel-http-ahead
 * (default 64), each pass makes them all ahead of the first request
 * (kh_pools_ahead: they idle down to one free upstream and stay). Beyond
 * that, on demand: a client's first request to an endpoint finds no pool
 * (that request is the engine's) and the miss makes one in that pod's
 * netns; it grows with use and shrinks back after --kernel-http-idle
 * (khttp_pool.h). After every pass, pools of an endpoint or netns that
 * went are closed (kh_pools_prune). A client whose
 * upstream died in the middle of a response is reset through the engine,
 * which holds its accepted socket.
 */
#ifndef GAMMAD_AGENT_KHTTP_H
#define GAMMAD_AGENT_KHTTP_H

#include <stdbool.h>

struct agent;

/*
 * At start, before agent_engine_start(): with --kernel-http and the
 * engine on, probe the kernel and load the programs. Off (probe refused, load failed): one log line, a->kh_dp NULL,
 * the engine serves every request. Also unpins the sockops link of an
 * earlier run when the flag is off. 0, never fatal.
 */
void agent_kh_open(struct agent *a, bool engine);
/* After agent_engine_start(): the steering's part and the pools. 0 or -errno. */
int agent_kh_start(struct agent *a);
/*
 * After a pass: pools made ahead (while few), the endpoints misses may make
 * pools of; pools of what went closed.
 */
void agent_kh_sync(struct agent *a);
/* The pools' pollable fd (-1: none) and their work, in the agent's loop. */
int agent_kh_fd(const struct agent *a);
void agent_kh_run(struct agent *a);
/*
 * Once a->ho_next listens: a successor that runs the path too takes the
 * pools' upstream sockets and the connections the kernel may serve
 * (handover.h); agent_kh_start adopts them on its side.
 */
void agent_kh_handover(struct agent *a);
void agent_kh_free(struct agent *a);

#endif
