/* experiments/stage_alloc.c — the alloc stage: the run store's /sens → one allocation per
 * target bpw of an [alloc.NAME], stored as /alloc/NAME-BPW.
 *
 * The problem and the stored layout are alloc/salloc.h's (the same as `vbrlab alloc --sens`):
 * items are tensors (granularity tensor) or layer × projection groups with all routed experts
 * of a projection in one item (granularity group, one GGUF tensor ffn_*_exps); distortion is
 * the additive prediction α·e per set, with e the output error when the menu has a GPTQ format
 * (the stats stage then keeps every set's XᵀX), else the relative weight error. The allocation records its sets as `calib` (comma-joined): the
 * eval stage quantizes with their merged statistics.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/salloc.h"
#include "../alloc/sens.h"
#include "../alloc/solve.h"

#include <stdio.h>
#include <string.h>

/* The error term follows the menu, never a failure: the output error needs XᵀX, which the
 * stats stage keeps exactly when the menu has a GPTQ format; otherwise the relative weight
 * error. A missing XᵀX under a GPTQ menu is an error, not a switch to the other measure. */
static int build(run_ctx *c, salloc_problem **p, const sens_result *r, const exp_alloc *a,
                 vl_err *err)
{
    sens_gran g = a->granularity == EXP_GRAN_GROUP  ? SENS_GROUP
                  : a->granularity == EXP_GRAN_GGUF ? SENS_GGUF
                                                    : SENS_TENSOR;
    const char *const *sets = (const char *const *)a->sets.v;
    int gptq = run_menu_has_gptq(c->cfg, err);
    if (gptq < 0)
        return gptq;
    return salloc_build(p, r, sets, a->sets.n, g, gptq ? SENS_E_OUT : SENS_E_REL, err);
}

/* The 2×2 design's record (expcfg.h): which set the allocation came from and which set's
 * statistics the eval stage quantizes it with. */
static int write_sets(h5s_store *s, const char *name, const exp_alloc *a, vl_err *err)
{
    char g[300], buf[1024];
    snprintf(g, sizeof g, "/alloc/%s", name);
    run_join_sets(&a->sets, buf, sizeof buf);
    int rc = h5s_attr_set(s, g, "alloc_set", buf, err);
    run_join_sets(exp_alloc_stats(a), buf, sizeof buf);
    return rc ? rc : h5s_attr_set(s, g, "stats_set", buf, err);
}

int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err)
{
    const exp_alloc *a = &c->cfg->alloc[alloc_idx];
    sens_result r;
    memset(&r, 0, sizeof r);
    salloc_problem *p = NULL;
    int rc = sens_read(&r, c->s, err);
    if (!rc)
        rc = build(c, &p, &r, a, err);
    char calib[1024]; /* the statistics that quantize it: stats_set, else its sets */
    run_join_sets(exp_alloc_stats(a), calib, sizeof calib);
    salloc_meta meta = {calib, c->cfg->out, c->cfg->out, a->budget == EXP_BUDGET_MODEL, 0};
    double w1[64];
    solve_params par = solve_params_defaults();
    par.method = (solve_method)a->solver;
    _Static_assert((int)EXP_OBJ_MINIMAX_RAW == (int)SOLVE_OBJ_MINIMAX_RAW, "objective order");
    par.objective = (solve_objective)a->objective;
    if (a->objective == EXP_OBJ_SUM && a->sets.n > 1) {
        /* SUM over several sets: Σ_s Σ_i d_i[s], the weighted objective with weights 1 */
        if (a->sets.n > 64)
            rc = rc ? rc : vl_errf(err, VL_ECONFIG, "alloc %s: more than 64 sets", a->name);
        for (int s = 0; s < a->sets.n && s < 64; s++)
            w1[s] = 1.0;
        par.objective = SOLVE_OBJ_WEIGHTED;
        par.weights = w1;
    } else if (a->objective == EXP_OBJ_WEIGHTED) {
        par.weights = a->weights.v;
    }
    for (int k = 0; !rc && k < a->target_bpw.n; k++) {
        solve_result res;
        memset(&res, 0, sizeof res);
        char name[256];
        par.target_bpw = meta.model_target = a->target_bpw.v[k];
        run_alloc_result_name(a, par.target_bpw, name, sizeof name);
        if (meta.budget_model) /* target_bpw counts the whole model: the items get the rest */
            rc = salloc_model_target(p, meta.model_target, &par.target_bpw, err);
        if (!rc)
            rc = solve_run(p->prob, &par, &res, err);
        if (!rc)
            rc = salloc_write(c->s, name, p, &res, &par, &meta, err);
        if (!rc)
            rc = write_sets(c->s, name, a, err);
        solve_result_free(&res);
        /* the baselines at the same budget, problem and objective ([experiment] baselines) */
        char bn[RUN_MAX_BASELINES][256];
        int bm[RUN_MAX_BASELINES];
        uint64_t bs[RUN_MAX_BASELINES];
        int nb = rc ? 0 : run_baselines(c->cfg, name, bn, bm, bs);
        for (int b = 0; !rc && b < nb; b++) {
            solve_params bp = par;
            bp.method = (solve_method)bm[b];
            bp.seed = bs[b];
            memset(&res, 0, sizeof res);
            rc = solve_run(p->prob, &bp, &res, err);
            if (!rc)
                rc = salloc_write(c->s, bn[b], p, &res, &bp, &meta, err);
            solve_result_free(&res);
            if (rc)
                vl_errctx(err, rc, "baseline %s", bn[b]);
        }
        if (rc)
            vl_errctx(err, rc, "alloc %s: target %g bpw", a->name, par.target_bpw);
    }
    salloc_problem_free(p);
    sens_result_free(&r);
    return rc;
}
