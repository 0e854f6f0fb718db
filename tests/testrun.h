/* tests/testrun.h — run an experiment config through the library as `vbrlab run` does, with
 * the log captured into log[cap]: the one runner call of the run tests. o: the options (its
 * log is replaced; model_dir NULL means the embedded model). */
#ifndef VL_TESTRUN_H
#define VL_TESTRUN_H

#include "../experiments/expcfg.h"
#include "../experiments/runner.h"

#include <stdio.h>

static inline int trun(const char *path, run_opts o, char *log, size_t cap, vl_err *err)
{
    exp_config cfg;
    int rc = exp_config_parse(path, &cfg, err);
    if (rc)
        return rc;
    FILE *lf = fmemopen(log, cap, "w");
    if (!o.model_dir)
        o.model_dir = "models/vbrlab-moe-tiny";
    o.log = lf;
    rc = run_experiment(&cfg, &o, err);
    if (lf)
        fclose(lf);
    exp_config_free(&cfg);
    return rc;
}

#endif
