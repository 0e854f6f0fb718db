/* experiments/run_int.h — what the runner's stage files share (private to experiments/).
 *
 * A run_ctx lives for one run_experiment call. The model and tokenizer are opened on first use
 * (run_need_model), so a run that is all cache hits never loads them. `s` is the writable copy
 * of the store for the stage being run; stages write only their own groups.
 */
#ifndef VL_RUN_INT_H
#define VL_RUN_INT_H

#include "../analysis/calib.h"
#include "../analysis/model.h"
#include "../analysis/stats.h"
#include "../io/h5s.h"
#include "../io/tok.h"
#include "runner.h"

#include <stdint.h>

typedef struct {
    const exp_config *cfg;
    const run_opts *opt;
    const char *model_dir;
    model *m;           /* NULL until run_need_model */
    tok_tokenizer *tok;
    h5s_store *s;       /* the stage's writable store */
} run_ctx;

/* Open the model and tokenizer if not yet open. */
int run_need_model(run_ctx *c, vl_err *err);

/* Build the sets of one family ([calib.*] is_eval 0, [eval.*] is_eval 1) into a new book, in
 * dependency order (a set after the sets its source names). *out owned by the caller. */
int run_build_sets(run_ctx *c, int is_eval, calib_book **out, vl_err *err);

/* The fq few-token policy and threshold the config asks for (route_all is refused by the
 * config parser: the stats stage gathers no route-all statistics). */
void run_few_policy(const exp_config *cfg, int *policy, double *min_tokens);

/* 1 if the [quant] menu has a GPTQ format (the stats stage then keeps XᵀX and the alloc stage
 * predicts with the output error), 0 if not, a negative VL_E* code on a bad menu. */
int run_menu_has_gptq(const exp_config *cfg, vl_err *err);

/* Statistics of calibration set NAME (stat_read of /stats/NAME), or of several merged
 * (exact stat_merge) when n > 1. *out owned by the caller. */
int run_read_stats(run_ctx *c, const char *const *names, int n, stat_acc **out, vl_err *err);

/* Allocation result name of allocation a at target t: "NAME-%g" ("en-2.5"). */
void run_alloc_result_name(const exp_alloc *a, double target, char *buf, size_t cap);

/* Stages. Each writes its groups into c->s; the runner records and commits. */
int stage_stats(run_ctx *c, vl_err *err);
int stage_sens(run_ctx *c, vl_err *err);
int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err);
int stage_eval(run_ctx *c, vl_err *err);
int stage_report(run_ctx *c, vl_err *err);

#endif
