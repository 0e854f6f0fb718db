/* alloc/sens_rd.c — rate–distortion tables over a format menu, the additive prediction and
 * the additivity check (alloc/sens.h). GSL only for the correlations. */
#include "sens.h"

#include "../analysis/fwd.h"
#include "../core/fx.h"
#include "../core/kern.h"
#include "../core/par.h"
#include "../core/prog.h"
#include "../core/rng.h"
#include "rd.h"

#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- statistics of a tensor */

typedef struct {
    double *imp;    /* [C] Σx² per input (E[x²]·rows) */
    double *h;      /* [C × C] XᵀX, NULL when the set has none */
    double tokens;  /* rows routed (the few-token policy's count) */
    double rows;    /* rows behind the sums (normalizes energies) */
} tstats;

/* Float64 statistics of tensor t from acc into ts (buffers caller-sized C and C²). */
static int get_stats(tstats *ts, const stat_acc *acc, const sens_tensor *t, const char *set,
                     vl_err *err)
{
    stat_slot slot;
    int e;
    sens_tensor_slot(t, &slot, &e);
    const stat_input *in = stat_input_get(acc, t->layer, slot, e);
    if (!in || in->cols != t->cols)
        return vl_errf(err, VL_ESHAPE, "set %s: no statistics of width %d for tensor \"%s\"",
                       set, t->cols, t->name);
    double *h = in->xtx ? ts->h : NULL;
    stat_input_f64(in, NULL, ts->imp, NULL, h);
    ts->h = h;
    ts->tokens = (double)in->rows_routed;
    ts->rows = (double)in->rows;
    return 0;
}

/* tr(W H Wᵀ) with W float32 [R × C] (scratch: 2·R·C doubles). */
static double trace_whw(const float *w, const double *h, int R, int C, double *scr)
{
    size_t n = (size_t)R * C;
    for (size_t k = 0; k < n; k++)
        scr[k] = w[k];
    kern_dgemm(scr + n, scr, h, R, C, C, 0, C, C, C, 1.0, 0.0);
    double tr = 0;
    for (size_t k = 0; k < n; k++)
        tr += scr[n + k] * scr[k];
    return tr;
}

static int alloc_rd(sens_result *r, int S, int T, int F, vl_err *err)
{
    size_t tf = (size_t)T * F;
    r->bpw = vl_malloc(tf * sizeof *r->bpw);
    r->rel_w = vl_malloc((size_t)S * tf * sizeof *r->rel_w);
    r->rel_imp = vl_malloc((size_t)S * tf * sizeof *r->rel_imp);
    r->rel_out = vl_malloc((size_t)S * tf * sizeof *r->rel_out);
    r->few = vl_calloc((size_t)S * tf, 1);
    r->w_norm2 = vl_calloc((size_t)T, sizeof *r->w_norm2);
    r->out_energy = vl_malloc((size_t)S * T * sizeof *r->out_energy);
    r->noise_energy = vl_malloc((size_t)S * T * sizeof *r->noise_energy);
    r->route_share = vl_malloc((size_t)S * T * sizeof *r->route_share);
    if (!r->route_share || !r->bpw || !r->rel_w || !r->rel_imp || !r->rel_out || !r->few || !r->w_norm2 ||
        !r->out_energy || !r->noise_energy)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory for the RD tables");
    for (size_t i = 0; i < (size_t)S * tf; i++)
        r->rel_w[i] = r->rel_imp[i] = r->rel_out[i] = NAN;
    for (size_t i = 0; i < (size_t)S * T; i++)
        r->out_energy[i] = r->noise_energy[i] = NAN;
    return 0;
}

/* The token embedding or the LM head: no input statistics (a lookup; the head's input is
 * not tapped), so every set quantizes it the same way, with uniform importance and no XᵀX, as
 * qb_bind applies it, and measures it with an isotropic input, where the output error is the
 * relative weight error: rel_imp = rel_out = rel_w, output energy = noise energy = ‖W‖²/rows
 * (so SENS_E_OUT gives α·rel_w for a unit of its own). ρ = 1. */
static int rd_outer(sens_result *r, int ti, const float *w, float *q, float *keep,
                    const sens_params *p, vl_err *err)
{
    const sens_tensor *t = &r->t[ti];
    int S = r->n_sets, F = r->n_formats, T = r->n_tensors, rc;
    double wn = 0;
    for (int64_t k = 0; k < t->n; k++)
        wn += (double)w[k] * w[k];
    r->w_norm2[ti] = wn;
    for (int s = 0; s < S; s++) {
        r->route_share[(size_t)s * T + ti] = 1.0;
        r->out_energy[(size_t)s * T + ti] = r->noise_energy[(size_t)s * T + ti] = wn / t->rows;
    }
    for (int f = 0; f < F; f++) {
        float *qf = (keep ? keep : q) + (size_t)f * t->n;
        fq_info info;
        rd_point pt;
        if ((rc = fq_tensor(qf, w, t->rows, t->cols, &r->fmt[f], NULL, NULL, &p->fq, &info,
                            t->name, err)))
            return rc;
        if ((rc = rd_measure(&pt, w, qf, t->rows, t->cols, &r->fmt[f], NULL, NULL, err)))
            return rc;
        size_t tf = (size_t)ti * F + f;
        r->bpw[tf] = pt.bpw;
        for (int s = 0; s < S; s++) {
            size_t stf = (size_t)s * T * F + tf;
            r->few[stf] = (unsigned char)info.few_applied;
            r->rel_w[stf] = r->rel_imp[stf] = r->rel_out[stf] = pt.rel_w;
        }
    }
    return 0;
}

/* One tensor: statistics of every set; every format quantized with each set's own statistics
 * and measured under them (the quantizer that set's allocation will be applied with). The
 * add set's quantized copies go to keep (when not NULL), the others through q. */
static int rd_tensor(sens_result *r, int ti, const model *m, stat_acc *const *stats,
                     const sens_params *p, tstats *ts, float *q, float *keep, double *scr,
                     vl_err *err)
{
    const sens_tensor *t = &r->t[ti];
    const float *w = *model_weights_slot(m, (model_weights *)model_base(m), (size_t)t->mi);
    int S = r->n_sets, F = r->n_formats, rc;
    size_t C = (size_t)t->cols;
    if (t->proj == SENS_P_EMBED || t->proj == SENS_P_HEAD)
        return rd_outer(r, ti, w, q, keep, p, err);
    for (int s = 0; s < S; s++) {
        ts[s].h = ts[s].imp + C; /* buffers laid out [imp C | h C²] per set */
        if ((rc = get_stats(&ts[s], stats[s], t, r->set_name[s], err)))
            return rc;
    }
    double wn = 0, trh;
    for (int64_t k = 0; k < t->n; k++)
        wn += (double)w[k] * w[k];
    r->w_norm2[ti] = wn;
    for (int s = 0; s < S; s++)
        r->route_share[(size_t)s * r->n_tensors + ti] = sens_route_share(stats[s], t);
    for (int s = 0; s < S; s++) {
        if (!ts[s].h)
            continue;
        if (ts[s].rows <= 0) { /* an expert the set never reaches: no output, no damage */
            r->out_energy[(size_t)s * r->n_tensors + ti] = 0;
            r->noise_energy[(size_t)s * r->n_tensors + ti] = 0;
            continue;
        }
        trh = 0;
        for (size_t j = 0; j < C; j++)
            trh += ts[s].h[j * C + j];
        r->out_energy[(size_t)s * r->n_tensors + ti] =
            trace_whw(w, ts[s].h, t->rows, t->cols, scr) / ts[s].rows;
        r->noise_energy[(size_t)s * r->n_tensors + ti] = wn * trh / ((double)C * ts[s].rows);
    }
    for (int s = 0; s < S; s++) {
        fq_stats fs = {ts[s].imp, ts[s].h, ts[s].tokens};
        for (int f = 0; f < F; f++) {
            size_t tf = (size_t)ti * F + f, stf = (size_t)s * r->n_tensors * F + tf;
            float *qf = (keep && s == p->add_set ? keep : q) + (size_t)f * t->n;
            fq_info info;
            rd_point pt;
            if ((rc = fq_tensor(qf, w, t->rows, t->cols, &r->fmt[f], &fs, NULL, &p->fq, &info,
                                t->name, err)))
                return vl_errctx(err, rc, "set %s", r->set_name[s]);
            if ((rc = rd_measure(&pt, w, qf, t->rows, t->cols, &r->fmt[f], ts[s].imp, ts[s].h,
                                 err)))
                return rc;
            r->few[stf] = (unsigned char)info.few_applied;
            r->bpw[tf] = pt.bpw; /* the format's layout: the same for every set */
            r->rel_w[stf] = pt.rel_w;
            r->rel_imp[stf] = pt.rel_imp;
            r->rel_out[stf] = pt.rel_out;
        }
    }
    return 0;
}

/* Offset of tensor ti's first format in the keep_q layout [tensor][format][n]. */
static size_t q_offset(const sens_result *r, int ti)
{
    size_t o = 0;
    for (int i = 0; i < ti; i++)
        o += (size_t)r->n_formats * r->t[i].n;
    return o;
}

int sens_rd(sens_result *r, const model *m, const char *spec, stat_acc *const *stats,
            const sens_params *p, float **keep_q, vl_err *err)
{
    qfmt_menu menu = {0, NULL};
    int rc = qfmt_menu_parse(&menu, spec, err);
    if (rc)
        return rc;
    if (keep_q && (p->add_set < 0 || p->add_set >= r->n_sets)) {
        qfmt_menu_free(&menu);
        return vl_errf(err, VL_EARG, "sens: additivity set %d outside [0, %d)", p->add_set,
                       r->n_sets);
    }
    r->n_formats = menu.n;
    r->fmt = menu.v; /* taken over */
    r->min_tokens = p->fq.min_tokens;
    if (!(r->spec = vl_strdup(spec)) ||
        !(r->few_policy = vl_strdup(fq_policy_name(p->fq.few))))
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    int S = r->n_sets, T = r->n_tensors, F = r->n_formats;
    if ((rc = alloc_rd(r, S, T, F, err)))
        return rc;
    size_t nmax = 0, cmax = 0;
    for (int i = 0; i < T; i++) {
        nmax = (size_t)r->t[i].n > nmax ? (size_t)r->t[i].n : nmax;
        cmax = (size_t)r->t[i].cols > cmax ? (size_t)r->t[i].cols : cmax;
    }
    tstats *ts = vl_calloc((size_t)S, sizeof *ts);
    double *sbuf = vl_malloc((size_t)S * (cmax + cmax * cmax) * sizeof *sbuf);
    double *scr = vl_malloc(2 * nmax * sizeof *scr);
    float *keep = keep_q ? vl_malloc(q_offset(r, T) * sizeof *keep) : NULL;
    float *q = vl_malloc((size_t)F * nmax * sizeof *q);
    if (!ts || !sbuf || !scr || !q || (keep_q && !keep))
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory for quantized tensors");
    prog pg;
    prog_init(&pg, "sens RD", "tensors", T);
    pg.enabled &= p->progress;
    for (int i = 0; !rc && i < T; i++) {
        for (int s = 0; s < S; s++)
            ts[s].imp = sbuf + (size_t)s * (cmax + cmax * cmax);
        rc = rd_tensor(r, i, m, stats, p, ts, q, keep ? keep + q_offset(r, i) : NULL, scr, err);
        prog_update(&pg, i + 1);
    }
    prog_finish(&pg);
    vl_free(ts);
    vl_free(sbuf);
    vl_free(scr);
    vl_free(q);
    if (keep_q && !rc)
        *keep_q = keep;
    else
        vl_free(keep);
    return rc;
}

/* ---------------------------------------------------------------- the additive prediction */

double sens_route_share(const stat_acc *acc, const sens_tensor *t)
{
    if (t->expert < 0)
        return 1.0;
    const stat_router *rt = stat_router_get(acc, t->layer);
    if (!rt || t->expert >= rt->n_experts || rt->tokens <= 0)
        return rt && rt->tokens <= 0 ? 0.0 : NAN;
    return fx_to_f64(&rt->sum_weight[t->expert]) / (double)rt->tokens;
}

double sens_tensor_dist(const sens_result *r, int si, int ti, int fi, sens_err_kind kind)
{
    int u = r->t[ti].unit, T = r->n_tensors;
    double a = r->alpha[0][(size_t)si * r->n_units + u];
    size_t tf = (size_t)ti * r->n_formats + fi;
    const double *rho = r->route_share ? r->route_share + (size_t)si * T : NULL;
    if (kind == SENS_E_REL) {
        double tot = 0;
        for (int i = 0; i < T; i++)
            tot += r->t[i].unit == u ? r->w_norm2[i] * (rho ? rho[i] : 1) : 0;
        return tot > 0 ? a * r->rel_w[(size_t)si * T * r->n_formats + tf] * r->w_norm2[ti] *
                             (rho ? rho[ti] : 1) / tot
                       : 0;
    }
    const double *oe = r->out_energy + (size_t)si * T, *ne = r->noise_energy + (size_t)si * T;
    double sum_ne = 0;
    for (int i = 0; i < T; i++)
        if (r->t[i].unit == u)
            sum_ne += ne[i] * (rho ? rho[i] : 1);
    if (!(oe[ti] > 0))
        return isnan(oe[ti]) ? NAN : 0; /* 0: the set sends no token through the tensor */
    if (!(sum_ne > 0))
        return NAN;
    /* α_u = c·Σ ρ N (the unit's noise damage), so c = α_u/Σ ρ N per unit of output error */
    return a * r->rel_out[(size_t)si * T * r->n_formats + tf] * oe[ti] * (rho ? rho[ti] : 1) /
           sum_ne;
}

/* ---------------------------------------------------------------- additivity */

/* Formats within ±1 bpw of target for tensor ti (by its exact bpw); at least the nearest. */
static int pick_format(const sens_result *r, int ti, double target, rng *g)
{
    int F = r->n_formats, n = 0, best = 0;
    for (int f = 0; f < F; f++) {
        double b = r->bpw[(size_t)ti * F + f];
        n += fabs(b - target) <= 1.0;
        if (fabs(b - target) < fabs(r->bpw[(size_t)ti * F + best] - target))
            best = f;
    }
    if (!n)
        return best;
    int k = (int)rng_uniform_int(g, (uint64_t)n);
    for (int f = 0; f < F; f++)
        if (fabs(r->bpw[(size_t)ti * F + f] - target) <= 1.0 && k-- == 0)
            return f;
    return best;
}

static int alloc_add(sens_result *r, int A, vl_err *err)
{
    r->n_add = A;
    r->add_target = vl_calloc((size_t)A, sizeof(double));
    r->add_bpw = vl_calloc((size_t)A, sizeof(double));
    r->add_measured = vl_calloc((size_t)A, sizeof(double));
    r->add_pred[0] = vl_calloc((size_t)A, sizeof(double));
    r->add_pred[1] = vl_calloc((size_t)A, sizeof(double));
    r->add_choice = vl_calloc((size_t)A * r->n_units, sizeof(int));
    r->corr = vl_calloc((size_t)r->n_bands * 4, sizeof(double));
    if (!r->add_target || !r->add_bpw || !r->add_measured || !r->add_pred[0] ||
        !r->add_pred[1] || !r->add_choice || !r->corr)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    return 0;
}

/* Pearson and Spearman of x, y over the draws i with keep[i]; NaN below 3 draws. */
static void correlate(double *out, const double *x, const double *y, const int *keep, int A,
                      double *work)
{
    int n = 0;
    double *a = work, *b = work + A, *w = work + 2 * A;
    for (int i = 0; i < A; i++)
        if (keep[i] && isfinite(x[i]) && isfinite(y[i])) {
            a[n] = x[i];
            b[n] = y[i];
            n++;
        }
    if (n < 3) {
        out[0] = out[1] = NAN;
        return;
    }
    out[0] = gsl_stats_correlation(a, 1, b, 1, (size_t)n);
    out[1] = gsl_stats_spearman(a, 1, b, 1, (size_t)n, w);
}

int sens_assign_eval(const sens_result *r, const model *m, sens_set *s, const float *q,
                     int si, const int *choice, double *bpw, double *measured, double pred[2],
                     vl_err *err)
{
    model_weights *w = NULL;
    int rc = model_weights_clone(&w, m, model_base(m), err);
    double bits = 0, nw = 0;
    pred[0] = pred[1] = 0;
    for (int i = 0; !rc && i < r->n_tensors; i++) {
        int f = choice[r->t[i].unit];
        if (f < 0 || f >= r->n_formats) {
            rc = vl_errf(err, VL_EARG, "sens: format %d of unit %d outside the menu", f,
                         r->t[i].unit);
            break;
        }
        *model_weights_slot(m, w, (size_t)r->t[i].mi) =
            q + q_offset(r, i) + (size_t)f * r->t[i].n;
        bits += r->bpw[(size_t)i * r->n_formats + f] * (double)r->t[i].n;
        nw += (double)r->t[i].n;
        pred[0] += sens_tensor_dist(r, si, i, f, SENS_E_REL);
        pred[1] += sens_tensor_dist(r, si, i, f, SENS_E_OUT);
    }
    *bpw = nw > 0 ? bits / nw : 0;
    if (!rc)
        rc = sens_set_kld(s, w, SENS_FROM_EMBED, measured, err); /* the embedding may be quantized */
    model_weights_free(w);
    return rc;
}

int sens_additivity(sens_result *r, const model *m, sens_set *s, const float *q,
                    const sens_params *p, vl_err *err)
{
    int nt = p->n_add_targets, A = nt * p->add_per_target, U = r->n_units, T = r->n_tensors;
    if (A <= 0)
        return 0;
    r->add_set = p->add_set;
    r->n_bands = nt + 1;
    rng *g = NULL;
    int rc = alloc_add(r, A, err);
    if (!rc)
        rc = rng_new_child(&g, p->seed, "sens.additivity", err);
    prog pg;
    prog_init(&pg, "sens additivity", "runs", A);
    pg.enabled &= p->progress && par_rank() == 0;
    for (int a = 0; !rc && a < A; a++) {
        double tgt = p->add_targets[a / p->add_per_target];
        int *ch = r->add_choice + (size_t)a * U;
        for (int u = 0; u < U; u++) { /* the format of a unit: drawn for its first tensor */
            ch[u] = -1;
            for (int i = 0; i < T && ch[u] < 0; i++)
                if (r->t[i].unit == u)
                    ch[u] = pick_format(r, i, tgt, g);
        }
        r->add_target[a] = tgt;
        if (!par_mine(a)) /* every rank draws every assignment; draw a runs on rank a mod R */
            continue;
        double pr[2];
        rc = sens_assign_eval(r, m, s, q, p->add_set, ch, &r->add_bpw[a], &r->add_measured[a],
                              pr, err);
        r->add_pred[0][a] = pr[0];
        r->add_pred[1][a] = pr[1];
        prog_update(&pg, a + par_size() < A ? a + par_size() : A);
    }
    prog_finish(&pg);
    double *shared[] = {r->add_bpw, r->add_measured, r->add_pred[0], r->add_pred[1]};
    for (int k = 0; k < 4; k++)
        rc = par_share(shared[k], A, sizeof(double), sizeof(double), rc, err);
    double *work = rc ? NULL : vl_malloc(4 * (size_t)A * sizeof *work); /* spearman: 2n */
    int *keep = rc ? NULL : vl_malloc((size_t)A * sizeof *keep);
    if (!rc && (!work || !keep))
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int b = 0; !rc && b < r->n_bands; b++) {
        for (int a = 0; a < A; a++)
            keep[a] = b == nt || a / p->add_per_target == b;
        for (int k = 0; k < 2; k++)
            correlate(r->corr + (size_t)b * 4 + 2 * k, r->add_pred[k], r->add_measured, keep,
                      A, work);
    }
    vl_free(work);
    vl_free(keep);
    rng_free(g);
    return rc;
}
