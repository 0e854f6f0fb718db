/* experiments/stage_alloc.c — the alloc stage: the run store's /sens → one allocation per
 * target bpw of an [alloc.NAME], stored as /alloc/NAME-BPW.
 *
 * The problem and the stored layout are alloc/salloc.h's (the same as `vbrlab alloc --sens`):
 * items are tensors (granularity tensor) or layer × projection groups with all routed experts
 * of a projection in one item (granularity group, one GGUF tensor ffn_*_exps); distortion is
 * the additive prediction α·e per set, with e the output error when the menu has a GPTQ format
 * (the stats stage then keeps every set's XᵀX), else the relative weight error. The
 * allocation records its statistics sets as `calib` (comma-joined; the eval stage quantizes
 * with their merged statistics) and the 2×2 pair as alloc_set/stats_set. Everything is
 * salloc_run's (one call, the same as `vbrlab alloc --sens`), baselines included; this file
 * only turns [alloc.NAME] and [experiment] baselines into a salloc_req.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/salloc.h"
#include "../alloc/sens.h"
#include "../alloc/solve.h"

#include <stdio.h>
#include <string.h>

int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    const exp_alloc *a = &cfg->alloc[alloc_idx];
    /* The error term follows the menu, never a failure: the output error needs XᵀX, which the
     * stats stage keeps exactly when the menu has a GPTQ format; otherwise the relative weight
     * error. A missing XᵀX under a GPTQ menu is an error, not a switch to the other measure. */
    int gptq = run_menu_has_gptq(cfg, err);
    if (gptq < 0)
        return gptq;
    char (*names)[256] = vl_calloc((size_t)a->target_bpw.n, sizeof *names), what[300];
    const char **np = vl_calloc((size_t)a->target_bpw.n, sizeof *np);
    char alloc_set[1024], stats_set[1024];
    if (!names || !np) {
        vl_free(names);
        vl_free(np);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    for (int k = 0; k < a->target_bpw.n; k++) {
        run_alloc_result_name(a, a->target_bpw.v[k], names[k], sizeof names[k]);
        np[k] = names[k];
    }
    snprintf(what, sizeof what, "alloc %s", a->name);
    run_join_sets(&a->sets, alloc_set, sizeof alloc_set);
    run_join_sets(exp_alloc_stats(a), stats_set, sizeof stats_set);
    _Static_assert((int)EXP_OBJ_MINIMAX_RAW == (int)SOLVE_OBJ_MINIMAX_RAW, "objective order");
    _Static_assert(SALLOC_BASE_UNIFORM == 1 << EXP_BASE_UNIFORM &&
                       SALLOC_BASE_RULES == 1 << EXP_BASE_RULES &&
                       SALLOC_BASE_RANDOM == 1 << EXP_BASE_RANDOM &&
                       SALLOC_MAX_RANDOM == EXP_MAX_RANDOM_DRAWS,
                   "baseline bits");
    salloc_req q = {
        .sets = (const char *const *)a->sets.v,
        .n_sets = a->sets.n,
        .gran = a->granularity == EXP_GRAN_GROUP  ? SENS_GROUP
                : a->granularity == EXP_GRAN_GGUF ? SENS_GGUF
                                                  : SENS_TENSOR,
        .kind = gptq ? SENS_E_OUT : SENS_E_REL,
        .par = solve_params_defaults(),
        .target_bpw = a->target_bpw.v,
        .n_targets = a->target_bpw.n,
        .names = np,
        /* the statistics that quantize it: stats_set, else its sets */
        .meta = {stats_set, cfg->out, cfg->out, 0, 0},
        .budget_model = a->budget == EXP_BUDGET_MODEL,
        .what = what,
        .baselines = cfg->baselines,
        .random_draws = cfg->random_draws,
        .baseline_seed = cfg->seed,
        .alloc_set = alloc_set,
        .stats_set = stats_set,
    };
    q.par.method = (solve_method)a->solver;
    q.par.objective = (solve_objective)a->objective;
    if (a->objective == EXP_OBJ_WEIGHTED)
        q.par.weights = a->weights.v;
    sens_result r;
    memset(&r, 0, sizeof r);
    int rc = sens_read(&r, c->s, err);
    if (!rc)
        rc = salloc_run(&r, &q, c->s, NULL, NULL, err);
    sens_result_free(&r);
    vl_free(names);
    vl_free(np);
    return rc;
}
