/* experiments/stage_alloc.c — the alloc stage: /sens table → solve.h problem → one allocation
 * per target bpw of an [alloc.NAME], stored as /alloc/NAME-BPW (layout: the alloc-h5 note,
 * docs/hdf5-schema.md "vbrlab run").
 *
 * Items: granularity tensor = every quantizable tensor; group = the routed experts of one
 * projection of one layer form one item ("model.layers.3.mlp.experts.*.down_proj.weight", one
 * GGUF tensor ffn_down_exps), every other tensor its own item. A group's option has the
 * group's exact bits over its weights and the sum of its members' distortions (the table is
 * additive over tensors: Σ_u α_u e_u, alloc/sens.h). Distortion columns are the allocation's sets, in its order.
 */
#define _POSIX_C_SOURCE 200809L
#include "run_int.h"

#include "../alloc/qfmt.h"
#include "../alloc/sens.h"
#include "../alloc/solve.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n, F, S;
    sens_result r;                    /* as stored (names borrowed below) */
    char **items, **formats, **sets;  /* [n], [F], [S] */
    char (*fbuf)[QFMT_NAME_MAX];      /* [F] format names */
    int64_t *nw;                      /* [n] */
    double *bpw;                      /* [n × F] (borrowed from r) */
    double *dist;                     /* [S × n × F] predicted damage, nats */
    int kind;                         /* sens_err_kind used */
} rd_tab;

static void tab_free(rd_tab *t)
{
    vl_free(t->items);
    vl_free(t->formats);
    vl_free(t->fbuf);
    vl_free(t->nw);
    vl_free(t->dist);
    sens_result_free(&t->r);
}

/* /sens → the per-tensor table: dist = sens_tensor_dist, the output-error prediction
 * (SENS_E_OUT) where every entry has one (XᵀX stored), else the weight-error one. */
static int load_tab(h5s_store *s, rd_tab *t, vl_err *err)
{
    memset(t, 0, sizeof *t);
    int rc = sens_read(&t->r, s, err);
    if (rc)
        return rc;
    const sens_result *r = &t->r;
    t->n = r->n_tensors;
    t->F = r->n_formats;
    t->S = r->n_sets;
    t->sets = r->set_name;
    t->bpw = r->bpw;
    t->items = vl_calloc((size_t)t->n + 1, sizeof *t->items);
    t->formats = vl_calloc((size_t)t->F + 1, sizeof *t->formats);
    t->fbuf = vl_calloc((size_t)t->F + 1, sizeof *t->fbuf);
    t->nw = vl_calloc((size_t)t->n + 1, sizeof *t->nw);
    t->dist = vl_calloc((size_t)t->S * t->n * t->F + 1, sizeof *t->dist);
    if (!t->items || !t->formats || !t->fbuf || !t->nw || !t->dist)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    for (int i = 0; i < t->n; i++) {
        t->items[i] = r->t[i].name;
        t->nw[i] = r->t[i].n;
    }
    for (int f = 0; f < t->F; f++)
        t->formats[f] = qfmt_name(&r->fmt[f], t->fbuf[f]);
    for (int kind = SENS_E_OUT; kind >= SENS_E_REL; kind--) {
        int finite = 1;
        for (int si = 0; si < t->S; si++)
            for (int i = 0; i < t->n; i++)
                for (int f = 0; f < t->F; f++) {
                    double d = sens_tensor_dist(r, si, i, f, (sens_err_kind)kind);
                    finite &= isfinite(d) && d >= 0;
                    t->dist[((size_t)si * t->n + i) * t->F + f] = d;
                }
        t->kind = kind;
        if (finite)
            return 0;
    }
    return vl_errf(err, VL_ERANGE, "%s: /sens: a predicted distortion is not finite",
                   h5s_path(s));
}

/* Item name of tensor NAME under granularity g (group: the expert index becomes '*'). */
static void item_name(const char *name, exp_gran g, char *buf, size_t cap)
{
    const char *e = strstr(name, ".experts.");
    if (g == EXP_GRAN_TENSOR || !e) {
        snprintf(buf, cap, "%s", name);
        return;
    }
    const char *rest = e + 9;
    while (*rest >= '0' && *rest <= '9')
        rest++;
    snprintf(buf, cap, "%.*s.experts.*%s", (int)(e - name), name, rest);
}

static int find_set(const rd_tab *r, const char *name)
{
    for (int s = 0; s < r->S; s++)
        if (!strcmp(r->sets[s], name))
            return s;
    return -1;
}

/* The solve problem of allocation a; item_of[t] gets each tensor's item. */
static int build_problem(const rd_tab *r, const exp_alloc *a, solve_problem **out,
                         int *item_of, vl_err *err)
{
    int S = a->sets.n, F = r->F, rc = 0;
    int col[64];
    if (S > 64)
        return vl_errf(err, VL_ECONFIG, "alloc %s: more than 64 sets", a->name);
    for (int s = 0; s < S; s++)
        if ((col[s] = find_set(r, a->sets.v[s])) < 0)
            return vl_errf(err, VL_ENOTFOUND, "alloc %s: set %s has no sensitivity table",
                           a->name, a->sets.v[s]);
    /* accumulate per item: bits and distortion per option */
    double *bits = vl_calloc((size_t)r->n * F, sizeof *bits);
    double *dist = vl_calloc((size_t)r->n * F * S, sizeof *dist);
    int64_t *nw = vl_calloc((size_t)r->n, sizeof *nw);
    char **names = vl_calloc((size_t)r->n, sizeof *names);
    int n_items = 0;
    if (!bits || !dist || !nw || !names)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    for (int t = 0; !rc && t < r->n; t++) {
        char nm[512];
        item_name(r->items[t], a->granularity, nm, sizeof nm);
        int it = -1;
        for (int q = n_items - 1; q >= 0 && it < 0; q--)
            if (!strcmp(names[q], nm))
                it = q;
        if (it < 0) {
            it = n_items++;
            if (!(names[it] = vl_strdup(nm)))
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
        }
        item_of[t] = it;
        nw[it] += r->nw[t];
        for (int f = 0; f < F; f++) {
            bits[(size_t)it * F + f] += r->bpw[(size_t)t * F + f] * (double)r->nw[t];
            for (int s = 0; s < S; s++)
                dist[((size_t)it * F + f) * S + s] +=
                    r->dist[((size_t)col[s] * r->n + t) * F + f];
        }
    }
    solve_problem *p = NULL;
    if (!rc)
        rc = solve_problem_new(S, &p, err);
    for (int it = 0; !rc && it < n_items; it++) {
        rc = solve_problem_add_item(p, names[it], nw[it], NULL, err);
        for (int f = 0; !rc && f < F; f++)
            rc = solve_problem_add_option(p, it, r->formats[f],
                                          bits[(size_t)it * F + f] / (double)nw[it],
                                          dist + ((size_t)it * F + f) * S, err);
    }
    for (int it = 0; names && it < n_items; it++)
        vl_free(names[it]);
    vl_free(names);
    vl_free(bits);
    vl_free(dist);
    vl_free(nw);
    if (rc) {
        solve_problem_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void run_alloc_result_name(const exp_alloc *a, double target, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%g", a->name, target);
}

static char *join(char *const *v, int n, const char *sep)
{
    size_t cap = 1;
    for (int i = 0; i < n; i++)
        cap += strlen(v[i]) + strlen(sep);
    char *s = vl_malloc(cap);
    if (!s)
        return NULL;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, "%s%s", i ? sep : "", v[i]);
    s[k] = '\0';
    return s;
}

/* /alloc/NAME-BPW from one solve result. */
static int write_result(run_ctx *c, const exp_alloc *a, double target, const rd_tab *r,
                        const solve_problem *p, const solve_result *res, const int *item_of,
                        vl_err *err)
{
    char g[256], d[300];
    run_alloc_result_name(a, target, g + 7, sizeof g - 7);
    memcpy(g, "/alloc/", 7);
    size_t cap = 1;
    for (int t = 0; t < r->n; t++)
        cap += strlen(r->items[t]) + QFMT_NAME_MAX + 2;
    char *asg = vl_malloc(cap), *sets = join(a->sets.v, a->sets.n, ","), *items = NULL;
    double *ib = vl_malloc((size_t)p->n_items * sizeof *ib);
    char **inames = vl_malloc((size_t)p->n_items * sizeof *inames);
    int rc = asg && sets && ib && inames ? 0 : vl_errf(err, VL_ENOMEM, "out of memory");
    if (!rc) {
        size_t k = 0;
        for (int t = 0; t < r->n; t++) {
            const solve_item *it = &p->items[item_of[t]];
            k += (size_t)sprintf(asg + k, "%s\t%s\n", r->items[t],
                                 it->opt[res->choice[item_of[t]]].name);
        }
        asg[k] = '\0';
        for (int i = 0; i < p->n_items; i++) {
            ib[i] = p->items[i].opt[res->choice[i]].bpw;
            inames[i] = p->items[i].name;
        }
        if (!(items = join(inames, p->n_items, "\n")))
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    int64_t ns = a->sets.n, ni = p->n_items;
    snprintf(d, sizeof d, "%s/predicted_kld", g);
    if (!rc)
        rc = h5s_write(c->s, d, H5S_F64, res->dist_set, 1, &ns, "nat",
                       "predicted mean KLD of the allocation on each set of `sets` (Σ over "
                       "tensors of sens_tensor_dist, attribute prediction)", err);
    snprintf(d, sizeof d, "%s/item_bpw", g);
    if (!rc)
        rc = h5s_write(c->s, d, H5S_F64, ib, 1, &ni, "bit/weight",
                       "bits per weight chosen for each item (order: attribute items)", err);
    struct { const char *k, *v; } sa[] = {
        {"assignment", asg}, {"calib", sets}, {"stats_file", c->cfg->out},
        {"objective", exp_objective_names[a->objective]},
        {"solver", exp_solver_names[a->solver]},
        {"granularity", exp_gran_names[a->granularity]}, {"sets", sets}, {"items", items},
        {"prediction", r->kind == SENS_E_OUT ? "output-error (SENS_E_OUT)"
                                             : "weight-error (SENS_E_REL)"}};
    for (size_t i = 0; !rc && i < sizeof sa / sizeof sa[0]; i++)
        rc = h5s_attr_set(c->s, g, sa[i].k, sa[i].v, err);
    struct { const char *k; double v; } na[] = {
        {"target_bpw", target}, {"bits_used", res->bits_used}, {"budget_bits", res->budget},
        {"gap", res->gap}, {"bpw", res->bits_used / (double)res->n_weights}};
    for (size_t i = 0; !rc && i < sizeof na / sizeof na[0]; i++)
        rc = h5s_attr_set_f64(c->s, g, na[i].k, na[i].v, err);
    vl_free(asg);
    vl_free(sets);
    vl_free(items);
    vl_free(ib);
    vl_free(inames);
    return rc;
}

int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err)
{
    const exp_alloc *a = &c->cfg->alloc[alloc_idx];
    rd_tab r;
    solve_problem *p = NULL;
    int rc = load_tab(c->s, &r, err);
    int *item_of = rc ? NULL : vl_calloc((size_t)r.n + 1, sizeof *item_of);
    if (!rc && !item_of)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    if (!rc)
        rc = build_problem(&r, a, &p, item_of, err);
    double *w1 = NULL;
    solve_params par = solve_params_defaults();
    par.method = (solve_method)a->solver;
    par.objective = (solve_objective)a->objective;
    if (!rc && a->objective == EXP_OBJ_SUM && a->sets.n > 1) {
        /* SUM over several sets: Σ_s Σ_i d_i[s], the weighted objective with weights 1 */
        if (!(w1 = vl_malloc((size_t)a->sets.n * sizeof *w1)))
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
        for (int s = 0; !rc && s < a->sets.n; s++)
            w1[s] = 1.0;
        par.objective = SOLVE_OBJ_WEIGHTED;
        par.weights = w1;
    } else if (a->objective == EXP_OBJ_WEIGHTED) {
        par.weights = a->weights.v;
    }
    for (int k = 0; !rc && k < a->target_bpw.n; k++) {
        solve_result res;
        memset(&res, 0, sizeof res);
        par.target_bpw = a->target_bpw.v[k];
        rc = solve_run(p, &par, &res, err);
        if (!rc)
            rc = write_result(c, a, par.target_bpw, &r, p, &res, item_of, err);
        solve_result_free(&res);
        if (rc)
            vl_errctx(err, rc, "target %g bpw", par.target_bpw);
    }
    vl_free(w1);
    vl_free(item_of);
    solve_problem_free(p);
    tab_free(&r);
    return rc;
}
