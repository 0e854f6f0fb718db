/* alloc/solve.c — solve_run (dispatch to the solvers), the result, the table and the export. */
#include "solve_int.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- parameters and names */

solve_params solve_params_defaults(void)
{
    solve_params p = {
        .method = SOLVE_EXACT,
        .objective = SOLVE_OBJ_SUM,
        .target_bpw = 2.0,
        .set = 0,
        .weights = NULL,
        .node_limit = 2000000,
        .rel_gap = 0,
        .mw_iters = 200,
        .seed = 1,
    };
    return p;
}

static const char *const method_names[] = {
    [SOLVE_EXACT] = "exact", [SOLVE_LAGRANGE] = "lagrange", [SOLVE_UNIFORM] = "uniform",
    [SOLVE_RULES] = "rules", [SOLVE_RANDOM] = "random"};
static const char *const objective_names[] = {
    [SOLVE_OBJ_SUM] = "sum", [SOLVE_OBJ_WEIGHTED] = "weighted", [SOLVE_OBJ_MINIMAX] = "minimax",
    [SOLVE_OBJ_MINIMAX_RAW] = "minimax-raw"};
_Static_assert(sizeof method_names / sizeof *method_names == SOLVE_RANDOM + 1, "method names");
_Static_assert(sizeof objective_names / sizeof *objective_names == SOLVE_OBJ_MINIMAX_RAW + 1,
               "objective names");

const char *solve_method_name(solve_method m) { return method_names[m]; }
const char *solve_objective_name(solve_objective o) { return objective_names[o]; }

int solve_method_parse(const char *s, solve_method *out, vl_err *err)
{
    for (int k = 0; k <= SOLVE_RANDOM; k++)
        if (!strcmp(s, method_names[k])) {
            *out = (solve_method)k;
            return 0;
        }
    return vl_errf(err, VL_EARG, "unknown solver \"%s\" (exact, lagrange, uniform, rules, "
                   "random)", s);
}

int solve_objective_parse(const char *s, solve_objective *out, vl_err *err)
{
    for (int k = 0; k <= SOLVE_OBJ_MINIMAX_RAW; k++)
        if (!strcmp(s, objective_names[k])) {
            *out = (solve_objective)k;
            return 0;
        }
    return vl_errf(err, VL_EARG, "unknown objective \"%s\" (sum, weighted, minimax, "
                   "minimax-raw)", s);
}

/* ---------------------------------------------------------------- solving */

/* Totals from the original problem (every set, whatever the objective was). */
static void fill_result(const solve_problem *p, const solve_params *par, const solve_inst *in,
                        const solve_sol *s, solve_result *r)
{
    r->bits_used = 0;
    for (int k = 0; k < p->n_sets; k++)
        r->dist_set[k] = 0;
    for (int i = 0; i < p->n_items; i++) {
        const solve_item *it = &p->items[i];
        r->choice[i] = in->orig[s->choice[i]];
        const solve_option *o = &it->opt[r->choice[i]];
        r->bits_used += (double)it->n * o->bpw;
        for (int k = 0; k < p->n_sets; k++)
            r->dist_set[k] += o->dist[k];
    }
    switch (par->objective) {
    case SOLVE_OBJ_SUM:
        r->objective = r->dist_set[par->set];
        break;
    case SOLVE_OBJ_WEIGHTED:
        r->objective = 0;
        for (int k = 0; k < p->n_sets; k++)
            r->objective += par->weights[k] * r->dist_set[k];
        break;
    case SOLVE_OBJ_MINIMAX: /* relative to each set's own optimum */
        r->objective = -INFINITY;
        for (int k = 0; k < p->n_sets; k++)
            r->objective = fmax(r->objective, r->dist_set[k] / r->set_opt[k]);
        break;
    case SOLVE_OBJ_MINIMAX_RAW:
        r->objective = solve_vmax(r->dist_set, p->n_sets);
        break;
    }
    r->budget = in->budget;
    r->lower_bound = s->lb;
    r->gap = isfinite(s->lb) ? fmax(0, r->objective - s->lb) : INFINITY;
    if (r->gap <= 1e-12 * fabs(r->objective))
        r->gap = 0; /* the two sums were taken in different orders */
    r->nodes = s->nodes;
    r->node_limited = s->node_limited;
}

/* D_s* of every set: the SUM optimum of column s at the same budget, always by the exact
 * solver with at least the default node limit and no gap tolerance, whatever solves the
 * minimax (a Lagrangian or node-limited D_s* would be too large and understate every ratio).
 * A set whose optimum is 0 (or not positive) has no relative damage: VL_ERANGE. */
static int set_optima(const solve_problem *p, const solve_params *par, double *opt,
                      vl_err *err)
{
    for (int k = 0; k < p->n_sets; k++) {
        solve_params q = *par;
        q.objective = SOLVE_OBJ_SUM;
        q.set = k;
        q.method = SOLVE_EXACT;
        q.rel_gap = 0;
        if (q.node_limit < solve_params_defaults().node_limit)
            q.node_limit = solve_params_defaults().node_limit;
        solve_result rs;
        int rc = solve_run(p, &q, &rs, err);
        if (rc)
            return vl_errctx(err, rc, "minimax: set %d's own optimum", k);
        opt[k] = rs.objective;
        solve_result_free(&rs);
        if (!(opt[k] > 0 && isfinite(opt[k])))
            return vl_errf(err, VL_ERANGE, "solve: minimax: set %d's own optimum at %g bpw is "
                           "%g, so its relative damage is undefined (use minimax-raw)", k,
                           par->target_bpw, opt[k]);
    }
    return 0;
}

int solve_run(const solve_problem *p, const solve_params *par, solve_result *r, vl_err *err)
{
    memset(r, 0, sizeof *r);
    solve_inst in;
    solve_sol s;
    double *opt = NULL, *scale = NULL;
    int rc = 0;
    if (par->objective == SOLVE_OBJ_MINIMAX) {
        opt = vl_malloc((size_t)p->n_sets * sizeof *opt + 1);
        scale = vl_malloc((size_t)p->n_sets * sizeof *scale + 1);
        rc = opt && scale ? set_optima(p, par, opt, err)
                          : vl_errf(err, VL_ENOMEM, "solve: out of memory");
        for (int k = 0; !rc && k < p->n_sets; k++)
            scale[k] = 1 / opt[k];
    }
    if (!rc)
        rc = solve_inst_build(p, par, scale, &in, err);
    vl_free(scale);
    if (rc) {
        vl_free(opt);
        return rc;
    }
    if ((rc = solve_sol_init(&s, &in, err))) {
        vl_free(opt);
        solve_inst_deinit(&in);
        return rc;
    }
    r->set_opt = opt;
    switch (par->method) {
    case SOLVE_EXACT: rc = solve_exact(&in, par, &s, err); break;
    case SOLVE_LAGRANGE: rc = solve_lagrange(&in, par, &s, NULL, err); break;
    case SOLVE_UNIFORM: rc = solve_uniform(&in, &s, err); break;
    case SOLVE_RULES: rc = solve_rules(&in, &s, err); break;
    case SOLVE_RANDOM: rc = solve_random(&in, par->seed, &s, err); break;
    default: rc = vl_errf(err, VL_EARG, "solve: unknown method %d", (int)par->method);
    }
    if (!rc) {
        r->n_items = p->n_items;
        r->n_sets = p->n_sets;
        r->n_weights = solve_problem_weights(p);
        r->method = par->method;
        r->objective_kind = par->objective;
        r->choice = vl_malloc((size_t)p->n_items * sizeof *r->choice);
        r->dist_set = vl_malloc((size_t)p->n_sets * sizeof *r->dist_set);
        if (!r->choice || !r->dist_set) {
            solve_result_free(r);
            opt = NULL;
            rc = vl_errf(err, VL_ENOMEM, "solve: out of memory");
        } else {
            fill_result(p, par, &in, &s, r);
        }
    }
    if (rc && r->set_opt) { /* a failed solve leaves r empty */
        vl_free(r->set_opt);
        r->set_opt = NULL;
    }
    solve_sol_deinit(&s);
    solve_inst_deinit(&in);
    return rc;
}

void solve_result_free(solve_result *r)
{
    if (!r)
        return;
    vl_free(r->choice);
    vl_free(r->dist_set);
    vl_free(r->set_opt);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- output */

void solve_result_print(FILE *f, const solve_problem *p, const solve_result *r)
{
    int wi = 4, wo = 6;
    for (int i = 0; i < p->n_items; i++) {
        int a = (int)strlen(p->items[i].name);
        int b = (int)strlen(p->items[i].opt[r->choice[i]].name);
        wi = a > wi ? a : wi;
        wo = b > wo ? b : wo;
    }
    fprintf(f, "%-*s  %-*s  %8s", wi, "item", wo, "option", "bpw");
    for (int k = 0; k < p->n_sets; k++)
        if (p->n_sets == 1)
            fprintf(f, "  %12s", "distortion");
        else
            fprintf(f, "  %9s[%d]", "dist", k);
    fputc('\n', f);
    for (int i = 0; i < p->n_items; i++) {
        const solve_option *o = &p->items[i].opt[r->choice[i]];
        fprintf(f, "%-*s  %-*s  %8.4f", wi, p->items[i].name, wo, o->name, o->bpw);
        for (int k = 0; k < p->n_sets; k++)
            fprintf(f, "  %12.6g", o->dist[k]);
        fputc('\n', f);
    }
    double nw = (double)r->n_weights;
    fprintf(f, "solver       %s, objective %s\n", solve_method_name(r->method),
            solve_objective_name(r->objective_kind));
    fprintf(f, "bits used    %.2f (%.6f bpw)\n", r->bits_used, r->bits_used / nw);
    fprintf(f, "budget       %.2f (%.6f bpw)\n", r->budget, r->budget / nw);
    fprintf(f, "objective    %.9g\n", r->objective);
    fprintf(f, "distortion  ");
    for (int k = 0; k < p->n_sets; k++)
        fprintf(f, " %.9g", r->dist_set[k]);
    fputc('\n', f);
    if (r->set_opt) { /* MINIMAX: the objective is relative to these */
        fprintf(f, "set optimum ");
        for (int k = 0; k < p->n_sets; k++)
            fprintf(f, " %.9g", r->set_opt[k]);
        fprintf(f, "\nrelative    ");
        for (int k = 0; k < p->n_sets; k++)
            fprintf(f, " %.6f", r->dist_set[k] / r->set_opt[k]);
        fputc('\n', f);
    }
    if (isfinite(r->lower_bound)) {
        fprintf(f, "lower bound  %.9g\n", r->lower_bound);
        if (r->gap == 0)
            fprintf(f, "gap          0 (proven optimal)\n");
        else
            fprintf(f, "gap          %.3g (%.3g relative)\n", r->gap,
                    r->objective > 0 ? r->gap / r->objective : INFINITY);
    } else {
        fprintf(f, "gap          none (a baseline proves nothing)\n");
    }
    if (r->method == SOLVE_EXACT)
        fprintf(f, "nodes        %ld%s\n", r->nodes,
                r->node_limited ? " (stopped at the node limit: not proven optimal)" : "");
}

void solve_result_export_regex(FILE *f, const solve_problem *p, const solve_result *r)
{
    for (int i = 0; i < p->n_items; i++) {
        for (const char *c = p->items[i].name; *c; c++) {
            if (strchr("\\.^$|?*+()[]{}", *c))
                fputc('\\', f);
            fputc(*c, f);
        }
        fprintf(f, "=%s\n", p->items[i].opt[r->choice[i]].name);
    }
}
