/* SPDX-License-Identifier: Apache-2.0 */
/* bench: the benchmark workload, clients and generators (tools/bench/README.md). */
#ifndef GAMMAD_BENCH_H
#define GAMMAD_BENCH_H

double bench_now(void);
int cmd_serve(int argc, char **argv);
int cmd_rr(int argc, char **argv);
int cmd_crr(int argc, char **argv);
int cmd_change(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_runstat(int argc, char **argv);
int cmd_tc(int argc, char **argv);
int cmd_h2engine(int argc, char **argv);

#endif
