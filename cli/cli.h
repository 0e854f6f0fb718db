/* cli/cli.h — what the subcommand files of the vbrlab binary share.
 *
 * Each subcommand lives in cli/cmd_<name>.c and has the signature of cli_cmd_fn: it gets the
 * arguments after its name (argv[0] is the subcommand name) and returns the process exit
 * status. On failure it prints exactly one line "vbrlab <cmd>: <message>" on stderr (cli_fail).
 * Only cli/ calls exit(), and only from main.
 */
#ifndef VL_CLI_H
#define VL_CLI_H

#include "../core/err.h"
#include "../io/h5s.h"

typedef int (*cli_cmd_fn)(int argc, char **argv);

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_sens(int argc, char **argv);
int cmd_alloc(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_xeval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_ggml_check(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_stats_compare(int argc, char **argv); /* `stats compare`, argv[0] = "compare" */

/* The model directory to use when none is given: $VBRLAB_MODEL, else models/vbrlab-moe-tiny
 * relative to the working directory, else relative to the binary's location (build/ or
 * build/<variant>/ inside the source tree). Returns a static string. */
const char *cli_default_model(void);

/* Print "vbrlab CMD: MSG" (one line) on stderr and return 1 (the exit status to use). */
int cli_fail(const char *cmd, const vl_err *err);
/* Same with a printf-style message (argument errors). */
int cli_failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The store an eval command writes: PATH, else a temporary /tmp/vbrlab-CMD-<pid>.h5 that
 * cli_store_end discards; created on rank 0 only (*out NULL on the other ranks, which share
 * the work but do not write). cli_store_end commits STORE when RC is 0 and PATH was given,
 * else discards it; NULL ok. Returns RC, or the commit's error. */
int cli_store_begin(h5s_store **out, const char *path, const char *cmd, vl_err *err);
int cli_store_end(h5s_store *store, const char *path, int rc, vl_err *err);

/* Is argv[i] a positional argument (not an option)? Used to spot an optional MODEL_DIR. */
int cli_is_positional(const char *arg);

#endif
