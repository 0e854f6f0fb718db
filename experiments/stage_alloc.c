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

#include <stdio.h>
#include <string.h>

/* The config's [alloc.NAME] as a salloc_req (alloc/salloc.h does the rest). The error term
 * follows the menu, never a failure: the output error needs XᵀX, which the stats stage keeps
 * exactly when the menu has a GPTQ format; otherwise the relative weight error. A missing XᵀX
 * under a GPTQ menu is an error, not a switch to the other measure. */
int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err)
{
    const exp_alloc *a = &c->cfg->alloc[alloc_idx];
    int gptq = run_menu_has_gptq(c->cfg, err);
    if (gptq < 0)
        return gptq;
    char calib[1024], what[300];
    run_alloc_calib(a, calib, sizeof calib);
    snprintf(what, sizeof what, "alloc %s", a->name);
    int n = a->target_bpw.n;
    char (*names)[256] = vl_calloc((size_t)(n ? n : 1), sizeof *names);
    const char **name_v = vl_calloc((size_t)(n ? n : 1), sizeof *name_v);
    salloc_req q = {.sets = (const char *const *)a->sets.v,
                    .n_sets = a->sets.n,
                    .gran = a->granularity == EXP_GRAN_GROUP  ? SENS_GROUP
                            : a->granularity == EXP_GRAN_GGUF ? SENS_GGUF
                                                              : SENS_TENSOR,
                    .kind = gptq ? SENS_E_OUT : SENS_E_REL,
                    .par = solve_params_defaults(),
                    .target_bpw = a->target_bpw.v,
                    .n_targets = n,
                    .names = name_v,
                    .meta = {calib, c->cfg->out, c->cfg->out},
                    .what = what,
                    .budget_model = a->budget == EXP_BUDGET_MODEL};
    q.par.method = (solve_method)a->solver;
    q.par.objective = (solve_objective)a->objective;
    if (a->objective == EXP_OBJ_WEIGHTED)
        q.par.weights = a->weights.v;
    sens_result r;
    memset(&r, 0, sizeof r);
    int rc = names && name_v ? 0 : vl_errf(err, VL_ENOMEM, "%s: out of memory", what);
    for (int k = 0; !rc && k < n; k++) {
        run_alloc_result_name(a, a->target_bpw.v[k], names[k], sizeof names[k]);
        name_v[k] = names[k];
    }
    if (!rc)
        rc = sens_read(&r, c->s, err);
    if (!rc)
        rc = salloc_run(&r, &q, c->s, NULL, NULL, err);
    sens_result_free(&r);
    vl_free(names);
    vl_free(name_v);
    return rc;
}
