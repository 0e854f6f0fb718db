/* experiments/stage_sens.c — the sens stage: predicted distortion of every quantizable tensor
 * under every format of the menu, per calibration set → /sens.
 *
 * INTERIM: the noise-injection sensitivity module (alloc/sens.h, α per tensor from KLD
 * responses, additivity check) is being written on its own branch. Until it lands this stage
 * writes a rate–distortion proxy with the same role, so the pipeline runs end to end:
 *   d[s][t][f] = rel_imp(t, f; s) · Σ_ij imp_j W_ij² / N_s
 * i.e. the importance-weighted squared weight error of tensor t under format f, with imp the
 * per-input Σx² of set s and N_s the set's tokens: the diagonal part of the output error
 * tr(ΔW H ΔWᵀ) per token (the GPTQ objective), additive over tensors. Quantization uses set
 * s's own statistics (importance, and XᵀX for GPTQ), so the table is per set.
 *
 * Layout (/sens): attrs method, sets / items / formats (names joined by '\n');
 *   n_weights i64 [items], bpw f64 [items, formats], dist f64 [sets, items, formats].
 */
#define _POSIX_C_SOURCE 200809L
#include "run_int.h"

#include "../alloc/fq.h"
#include "../alloc/rd.h"
#include "../analysis/qbind.h"
#include "../core/prog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    qfmt_menu menu;
    qb_alloc list;        /* the quantizable tensors (formats unused) */
    long *tidx;           /* [n] model tensor index of each */
    double *bpw;          /* [n × F] */
    int64_t *nw;          /* [n] */
    double *dist;         /* [S × n × F] */
} sens_tab;

static void tab_free(sens_tab *t)
{
    qfmt_menu_free(&t->menu);
    qb_alloc_deinit(&t->list);
    vl_free(t->tidx);
    vl_free(t->bpw);
    vl_free(t->nw);
    vl_free(t->dist);
}

/* Importance-weighted energy Σ_ij imp_j W_ij² (the denominator of rel_imp). */
static double imp_energy(const float *w, int rows, int cols, const double *imp)
{
    double e = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            double x = w[(size_t)r * cols + j];
            e += (imp ? imp[j] : 1.0) * x * x;
        }
    return e;
}

/* Distortion row d[F] of one tensor under set statistics acc (N tokens). */
static int tensor_row(run_ctx *c, const sens_tab *tb, size_t i, const float *w,
                      const stat_acc *acc, double n_tok, double *imp, double *h, double *d,
                      vl_err *err)
{
    const model_tensor *t = model_tensor_at(c->m, (size_t)tb->tidx[i]);
    int layer, expert;
    stat_slot slot;
    const stat_input *in = NULL;
    if (qb_tensor_input(t, &layer, &slot, &expert) == 0)
        in = stat_input_get(acc, layer, slot, expert);
    fq_stats st = {NULL, NULL, 0};
    if (in && in->rows > 0) {
        stat_input_f64(in, NULL, imp, NULL, in->xtx ? h : NULL);
        st.imp = imp;
        st.h = in->xtx ? h : NULL;
        st.tokens = (double)in->rows_routed;
    }
    int pol;
    fq_params p = fq_defaults();
    run_few_policy(c->cfg, &pol, &p.min_tokens);
    p.few = (fq_policy)pol;
    p.seed = exp_sens_seed(c->cfg);
    p.gptq.percdamp = c->cfg->percdamp;
    p.gptq.act_order = c->cfg->act_order;
    double energy = st.imp ? imp_energy(w, t->rows, t->cols, st.imp) : 0.0;
    for (int f = 0; f < tb->menu.n; f++) {
        rd_point pt;
        int rc = rd_eval(&pt, NULL, w, t->rows, t->cols, &tb->menu.v[f], &st, NULL, &p, NULL,
                         t->name, err);
        if (rc)
            return rc;
        d[f] = st.imp ? pt.rel_imp * energy / n_tok : 0.0;
    }
    return 0;
}

static int write_tab(run_ctx *c, const sens_tab *tb, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    int n = tb->list.n, F = tb->menu.n, S = cfg->n_calib;
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += strlen(tb->list.v[i].item) + 1;
    for (int s = 0; s < S; s++)
        cap += strlen(cfg->calib[s].name) + 1;
    cap += (size_t)F * QFMT_NAME_MAX;
    char *buf = vl_malloc(cap);
    if (!buf)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int64_t sh[3] = {n, F, 0}, s3[3] = {S, n, F};
    int rc = h5s_write(c->s, "/sens/n_weights", H5S_I64, tb->nw, 1, sh, "weights",
                       "weights of each item (order: attribute items)", err);
    if (!rc)
        rc = h5s_write(c->s, "/sens/bpw", H5S_F64, tb->bpw, 2, sh, "bit/weight",
                       "exact stored bits per weight of item i in format f", err);
    if (!rc)
        rc = h5s_write(c->s, "/sens/dist", H5S_F64, tb->dist, 3, s3, "squared activation/token",
                       "predicted distortion of item i in format f on calibration set s: "
                       "importance-weighted squared weight error per token", err);
    if (!rc)
        rc = h5s_attr_set(c->s, "/sens", "method", "rd-proxy", err);
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(buf + k, "%s%s", i ? "\n" : "", tb->list.v[i].item);
    if (!rc)
        rc = h5s_attr_set(c->s, "/sens", "items", buf, err);
    k = 0;
    for (int f = 0; f < F; f++) {
        char nm[QFMT_NAME_MAX];
        k += (size_t)sprintf(buf + k, "%s%s", f ? "\n" : "", qfmt_name(&tb->menu.v[f], nm));
    }
    if (!rc)
        rc = h5s_attr_set(c->s, "/sens", "formats", buf, err);
    k = 0;
    for (int s = 0; s < S; s++)
        k += (size_t)sprintf(buf + k, "%s%s", s ? "\n" : "", cfg->calib[s].name);
    if (!rc)
        rc = h5s_attr_set(c->s, "/sens", "sets", buf, err);
    vl_free(buf);
    return rc;
}

int stage_sens(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    sens_tab tb;
    memset(&tb, 0, sizeof tb);
    qb_alloc_init(&tb.list);
    model_weights *w = NULL;
    int rc = run_need_model(c, err);
    if (!rc)
        rc = qfmt_menu_parse(&tb.menu, cfg->formats, err);
    if (!rc)
        rc = qb_alloc_uniform(&tb.list, c->m, "rtn-b8-row-asym", err);
    if (!rc)
        rc = model_weights_clone(&w, c->m, model_base(c->m), err);
    int n = tb.list.n, F = tb.menu.n, S = cfg->n_calib;
    int maxc = 0;
    if (!rc) {
        tb.tidx = vl_calloc((size_t)n + 1, sizeof *tb.tidx);
        tb.nw = vl_calloc((size_t)n + 1, sizeof *tb.nw);
        tb.bpw = vl_calloc((size_t)n * F + 1, sizeof *tb.bpw);
        tb.dist = vl_calloc((size_t)S * n * F + 1, sizeof *tb.dist);
        if (!tb.tidx || !tb.nw || !tb.bpw || !tb.dist)
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    for (int i = 0; !rc && i < n; i++) {
        tb.tidx[i] = model_tensor_find(c->m, tb.list.v[i].item);
        const model_tensor *t = model_tensor_at(c->m, (size_t)tb.tidx[i]);
        tb.nw[i] = t->numel;
        maxc = t->cols > maxc ? t->cols : maxc;
        for (int f = 0; f < F; f++)
            tb.bpw[(size_t)i * F + f] = qfmt_bpw(&tb.menu.v[f], t->rows, t->cols);
    }
    double *imp = rc ? NULL : vl_malloc((size_t)maxc * sizeof *imp);
    double *h = rc ? NULL : vl_malloc((size_t)maxc * maxc * sizeof *h);
    if (!rc && (!imp || !h))
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    prog pg;
    prog_init(&pg, "sens", "tensors", (int64_t)S * n);
    for (int s = 0; !rc && s < S; s++) {
        stat_acc *acc = NULL;
        const char *nm = cfg->calib[s].name;
        rc = run_read_stats(c, &nm, 1, &acc, err);
        double n_tok = (double)cfg->calib[s].seqs * cfg->calib[s].len;
        const stat_tokens *tk = rc ? NULL : stat_tokens_get(acc);
        if (tk && tk->n > 0)
            n_tok = (double)tk->n; /* entropy buckets: the actual count */
        for (int i = 0; !rc && i < n; i++) {
            const float *wt = *model_weights_slot(c->m, w, (size_t)tb.tidx[i]);
            rc = tensor_row(c, &tb, (size_t)i, wt, acc, n_tok, imp, h,
                            tb.dist + ((size_t)s * n + i) * F, err);
            if (c->opt->progress)
                prog_update(&pg, (int64_t)s * n + i + 1);
        }
        stat_free(acc);
    }
    if (c->opt->progress)
        prog_finish(&pg);
    if (!rc)
        rc = write_tab(c, &tb, err);
    vl_free(imp);
    vl_free(h);
    model_weights_free(w);
    tab_free(&tb);
    return rc;
}
