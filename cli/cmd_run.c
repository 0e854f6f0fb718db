/* cli/cmd_run.c — `vbrlab run CONFIG.ini [--force] [--only STAGE] [--replicates R]
 * [--pipeline P]`: one experiment config, every stage into the store its [experiment] out
 * names (experiments/runner.h); --replicates overrides [experiment] replicates; --pipeline P
 * (MPI build) runs the stats and eval stages on pipelines of P ranks (analysis/pipeline.h).
 *
 * Tables go to stdout, one line per stage ("stats: cached", "sens: done (3.1 s)") to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../experiments/expcfg.h"
#include "../core/num.h"
#include "../core/par.h"
#include "../experiments/runner.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "run"

static const char usage_line[] =
    "usage: vbrlab run CONFIG.ini [--force] [--only stats|sens|alloc|alloc.NAME|eval|report|export] "
    "[--replicates R] [--replicate K] [--pipeline P]";

int cmd_run(int argc, char **argv)
{
    run_opts o = run_opts_defaults();
    const char *path = NULL;
    vl_err err = {0};
    int reps = 0; /* 0: the config's */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) {
            o.force = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            if (run_stage_parse(argv[++i], &o.only, &o.only_alloc, &err))
                return cli_fail(CMD, &err);
        } else if (!strcmp(argv[i], "--replicates") && i + 1 < argc) {
            int rc = num_int(argv[++i], 1, EXP_MAX_REPLICATES, &reps);
            if (rc)
                return cli_failf(CMD, "--replicates \"%s\": %s (1..%d)", argv[i], num_why(rc),
                                 EXP_MAX_REPLICATES);
        } else if (!strcmp(argv[i], "--replicate") && i + 1 < argc) {
            int rc = num_int(argv[++i], 0, EXP_MAX_REPLICATES - 1, &o.replicate);
            if (rc)
                return cli_failf(CMD, "--replicate \"%s\": %s (0..%d)", argv[i], num_why(rc),
                                 EXP_MAX_REPLICATES - 1);
        } else if (!strcmp(argv[i], "--pipeline") && i + 1 < argc) {
            if (num_int(argv[++i], 1, 1 << 20, &o.pipeline))
                return cli_failf(CMD, "--pipeline \"%s\": expected a positive integer",
                                 argv[i]);
        } else if (!strcmp(argv[i], "--stop-after") && i + 1 < argc) {
            /* test hook: behave like a run killed right after that stage's commit */
            const char *dummy;
            if (run_stage_parse(argv[++i], &o.stop_after, &dummy, &err))
                return cli_fail(CMD, &err);
        } else if (cli_is_positional(argv[i]) && !path) {
            path = argv[i];
        } else {
            return cli_failf(CMD, "unexpected argument \"%s\" (%s)", argv[i], usage_line);
        }
    }
    if (!path)
        return cli_failf(CMD, "no config file (%s)", usage_line);
    if (o.force && o.only >= 0)
        return cli_failf(CMD, "--force and --only exclude each other");
    exp_config cfg;
    if (exp_config_parse(path, &cfg, &err))
        return cli_fail(CMD, &err);
    if (reps)
        cfg.replicates = reps;
    o.model_dir = cli_default_model();
    o.out = par_rank() == 0 ? stdout : NULL; /* under MPI rank 0 speaks for the job */
    o.log = par_rank() == 0 ? stderr : NULL;
    o.progress = isatty(2);
    /* test hook for the fault tests: VBRLAB_FAIL_ITEM=RANK:K makes that rank fail its K-th
     * sens/eval work item, as a rank that dies there would (docs/scaling.md) */
    par_fault fault = {-1, 0, 0};
    const char *fi = getenv("VBRLAB_FAIL_ITEM");
    if (fi && *fi) {
        char *colon = strchr(fi, ':');
        long rk;
        int64_t k;
        char rbuf[16];
        snprintf(rbuf, sizeof rbuf, "%.*s", colon ? (int)(colon - fi) : 0, fi);
        if (!colon || num_long(rbuf, 0, 1 << 20, &rk) || num_i64(colon + 1, 0, INT64_MAX, &k))
            return cli_failf(CMD, "VBRLAB_FAIL_ITEM \"%s\": expected RANK:ITEM", fi);
        fault = (par_fault){(int)rk, k, 0};
        o.fault = &fault;
    }
    int rc = run_experiment(&cfg, &o, &err);
    exp_config_free(&cfg);
    return rc ? cli_fail(CMD, &err) : 0;
}
