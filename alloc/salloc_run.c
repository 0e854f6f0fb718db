/* alloc/salloc_run.c — the alloc stage as one library call (salloc.h): problem, one solve per
 * target, the stored allocation. `vbrlab alloc --sens` and the runner's alloc stage both call
 * salloc_run; they only turn their options into a salloc_req. */
#include "salloc.h"

#include "../core/rng.h"

#include <stdio.h>
#include <string.h>

#define MAX_SETS 64

int salloc_baselines(unsigned which, int random_draws, uint64_t seed, const char *vbr,
                     salloc_baseline *out)
{
    int n = 0;
    if (which & SALLOC_BASE_UNIFORM) {
        snprintf(out[n].name, sizeof out[n].name, "%s.uniform", vbr);
        out[n].seed = 0;
        out[n++].method = SOLVE_UNIFORM;
    }
    if (which & SALLOC_BASE_RULES) {
        snprintf(out[n].name, sizeof out[n].name, "%s.rules", vbr);
        out[n].seed = 0;
        out[n++].method = SOLVE_RULES;
    }
    for (int d = 1; which & SALLOC_BASE_RANDOM && d <= random_draws && d <= SALLOC_MAX_RANDOM;
         d++) {
        char label[300];
        snprintf(out[n].name, sizeof out[n].name, "%s.random%d", vbr, d);
        snprintf(label, sizeof label, "baseline.random.%s.%d", vbr, d);
        out[n].seed = rng_child_seed(seed, label);
        out[n++].method = SOLVE_RANDOM;
    }
    return n;
}

/* The baselines of result NAME at the same budget, problem and objective as par. */
static int solve_baselines(const salloc_req *q, const char *name, const salloc_problem *p,
                           const solve_params *par, const salloc_meta *meta, h5s_store *out,
                           salloc_each_fn each, void *ctx, vl_err *err)
{
    salloc_baseline b[SALLOC_MAX_BASELINES];
    int nb = salloc_baselines(q->baselines, q->random_draws, q->baseline_seed, name, b);
    int rc = 0;
    for (int i = 0; !rc && i < nb; i++) {
        solve_params bp = *par;
        bp.method = b[i].method;
        bp.seed = b[i].seed;
        solve_result res;
        memset(&res, 0, sizeof res);
        rc = solve_run(p->prob, &bp, &res, err);
        if (!rc && each)
            rc = each(ctx, b[i].name, p, &res);
        if (!rc && out)
            rc = salloc_write(out, b[i].name, p, &res, &bp, meta, err);
        solve_result_free(&res);
        if (rc)
            vl_errctx(err, rc, "baseline %s", b[i].name);
    }
    return rc;
}

/* The runner's 2×2 record on /alloc/NAME (salloc_req.alloc_set, stats_set). */
static int write_pair(h5s_store *out, const char *name, const salloc_req *q, vl_err *err)
{
    char g[300];
    snprintf(g, sizeof g, "/alloc/%s", name);
    int rc = q->alloc_set ? h5s_attr_set(out, g, "alloc_set", q->alloc_set, err) : 0;
    if (!rc && q->stats_set)
        rc = h5s_attr_set(out, g, "stats_set", q->stats_set, err);
    return rc;
}

int salloc_run(const sens_result *r, const salloc_req *q, h5s_store *out, salloc_each_fn each,
               void *ctx, vl_err *err)
{
    solve_params par = q->par;
    par.set = 0;
    double ones[MAX_SETS];
    if (par.objective == SOLVE_OBJ_SUM && q->n_sets > 1) {
        /* SUM over several sets: Σ_s Σ_i d_i[s], the weighted objective with weights 1 */
        if (q->n_sets > MAX_SETS)
            return vl_errf(err, VL_ECONFIG, "%s%smore than %d sets", q->what ? q->what : "",
                           q->what ? ": " : "", MAX_SETS);
        for (int s = 0; s < q->n_sets; s++)
            ones[s] = 1.0;
        par.objective = SOLVE_OBJ_WEIGHTED;
        par.weights = ones;
    }
    salloc_problem *p = NULL;
    int rc = salloc_build(&p, r, q->sets, q->n_sets, q->gran, q->kind, err);
    salloc_meta meta = q->meta;
    if (!rc && !meta.calib)
        meta.calib = p->set_name[0];
    for (int k = 0; !rc && k < q->n_targets; k++) {
        solve_result res;
        memset(&res, 0, sizeof res);
        par.target_bpw = q->target_bpw[k];
        meta.budget_model = q->budget_model;
        meta.model_target = q->target_bpw[k];
        char name[256];
        if (q->names)
            snprintf(name, sizeof name, "%s", q->names[k]);
        else
            salloc_default_name(name, sizeof name, q->sets, q->n_sets, q->par.objective,
                                q->target_bpw[k]);
        if (q->budget_model) /* target_bpw counts the whole model: the items get the rest */
            rc = salloc_model_target(p, q->target_bpw[k], &par.target_bpw, err);
        if (!rc)
            rc = solve_run(p->prob, &par, &res, err);
        if (!rc && each)
            rc = each(ctx, name, p, &res);
        if (!rc && out)
            rc = salloc_write(out, name, p, &res, &par, &meta, err);
        if (!rc && out)
            rc = write_pair(out, name, q, err);
        solve_result_free(&res);
        if (!rc && q->baselines)
            rc = solve_baselines(q, name, p, &par, &meta, out, each, ctx, err);
        if (rc && q->what)
            vl_errctx(err, rc, "%s: target %g bpw", q->what, q->target_bpw[k]);
    }
    salloc_problem_free(p);
    return rc;
}
