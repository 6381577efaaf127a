/* SPDX-License-Identifier: Apache-2.0 */
/* gammad subcommands: each is `int cmd_<name>(int argc, char **argv)`, argv[0] its name. */
#ifndef GAMMAD_CMD_H
#define GAMMAD_CMD_H

/* Exit codes shared by the subcommands. */
#define EXIT_INPUT_ERRORS 1	/* ran, but the input had errors (reported) */
#define EXIT_USAGE 2
#define EXIT_FATAL 3

int cmd_translate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
/* The translate benchmark (translate_bench.c), reached via `translate --bench`. */
int translate_bench(int argc, char **argv);

#endif
