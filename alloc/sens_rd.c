/* alloc/sens_rd.c — rate–distortion tables over a format menu, each set's quantized tensors
 * and the additive prediction (alloc/sens.h). The additivity check is in sens_add.c. */
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
static int rd_outer(sens_result *r, int ti, const float *w, int s0, int s1, float *q, float *keep,
                    const sens_params *p, vl_err *err)
{
    const sens_tensor *t = &r->t[ti];
    int F = r->n_formats, T = r->n_tensors, rc;
    double wn = 0;
    for (int64_t k = 0; k < t->n; k++)
        wn += (double)w[k] * w[k];
    r->w_norm2[ti] = wn;
    for (int s = s0; s < s1; s++) {
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
        for (int s = s0; s < s1; s++) {
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
/* Sets [s0, s1) only: stats[s] for s in that range (ts likewise; keep: the copies of set
 * p->add_set when it is in the range). */
static int rd_tensor_w(sens_result *r, int ti, const float *w, stat_acc *const *stats, int s0,
                       int s1, const sens_params *p, tstats *ts, float *q, float *keep,
                       double *scr, vl_err *err);

static int rd_tensor(sens_result *r, int ti, const model *m, stat_acc *const *stats, int s0,
                     int s1, const sens_params *p, tstats *ts, float *q, float *keep,
                     double *scr, vl_err *err)
{
    const sens_tensor *t = &r->t[ti];
    const float *w;
    float *own;
    int rc = model_tensor_f32(m, model_base(m), (size_t)t->mi, &w, &own, err);
    if (rc)
        return rc;
    rc = rd_tensor_w(r, ti, w, stats, s0, s1, p, ts, q, keep, scr, err);
    vl_free(own);
    return rc;
}

/* rd_tensor on the reference weights w. */
static int rd_tensor_w(sens_result *r, int ti, const float *w, stat_acc *const *stats, int s0,
                       int s1, const sens_params *p, tstats *ts, float *q, float *keep,
                       double *scr, vl_err *err)
{
    const sens_tensor *t = &r->t[ti];
    int F = r->n_formats, rc;
    size_t C = (size_t)t->cols;
    if (t->proj == SENS_P_EMBED || t->proj == SENS_P_HEAD)
        return rd_outer(r, ti, w, s0, s1, q, keep, p, err);
    for (int s = s0; s < s1; s++) {
        ts[s].h = ts[s].imp + C; /* buffers laid out [imp C | h C²] per set */
        if ((rc = get_stats(&ts[s], stats[s], t, r->set_name[s], err)))
            return rc;
    }
    double wn = 0, trh;
    for (int64_t k = 0; k < t->n; k++)
        wn += (double)w[k] * w[k];
    r->w_norm2[ti] = wn;
    for (int s = s0; s < s1; s++)
        r->route_share[(size_t)s * r->n_tensors + ti] = sens_route_share(stats[s], t);
    for (int s = s0; s < s1; s++) {
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
    for (int s = s0; s < s1; s++) {
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

size_t sens_q_offset(const sens_result *r, int ti)
{
    size_t o = 0;
    for (int i = 0; i < ti; i++)
        o += (size_t)r->n_formats * r->t[i].n;
    return o;
}

int sens_rd_begin(sens_result *r, const char *spec, const sens_params *p, vl_err *err)
{
    qfmt_menu menu = {0, NULL};
    int rc = qfmt_menu_parse(&menu, spec, err);
    if (rc)
        return rc;
    r->n_formats = menu.n;
    r->fmt = menu.v; /* taken over */
    r->min_tokens = p->fq.min_tokens;
    if (!(r->spec = vl_strdup(spec)) ||
        !(r->few_policy = vl_strdup(fq_policy_name(p->fq.few))))
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    return alloc_rd(r, r->n_sets, r->n_tensors, r->n_formats, err);
}

/* Largest tensor in weights and in input columns. */
static void tensor_max(const sens_result *r, size_t *nmax, size_t *cmax)
{
    *nmax = *cmax = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        *nmax = (size_t)r->t[i].n > *nmax ? (size_t)r->t[i].n : *nmax;
        *cmax = (size_t)r->t[i].cols > *cmax ? (size_t)r->t[i].cols : *cmax;
    }
}

int sens_rd_set(sens_result *r, const model *m, stat_acc *acc, int si, const sens_params *p,
                float **q, vl_err *err)
{
    if (si < 0 || si >= r->n_sets || !r->bpw)
        return vl_errf(err, VL_EARG, "sens: RD of set %d of %d before sens_rd_begin", si,
                       r->n_sets);
    int T = r->n_tensors, F = r->n_formats, rc = 0;
    size_t nmax, cmax;
    tensor_max(r, &nmax, &cmax);
    tstats *ts = vl_calloc((size_t)r->n_sets, sizeof *ts); /* only [si] used */
    stat_acc **stats = vl_calloc((size_t)r->n_sets, sizeof *stats);
    double *sbuf = vl_malloc((cmax + cmax * cmax) * sizeof *sbuf);
    double *scr = vl_malloc(2 * nmax * sizeof *scr);
    float *out = q ? vl_malloc(sens_q_offset(r, T) * sizeof *out + 1)
                   : vl_malloc((size_t)F * nmax * sizeof *out);
    if (!ts || !stats || !sbuf || !scr || !out)
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory for quantized tensors");
    sens_params pk = *p;
    pk.add_set = si; /* rd_tensor_w's keep is the add set's: here set si's */
    char what[96];
    snprintf(what, sizeof what, "sens RD %s", rc ? "" : r->set_name[si]);
    prog pg;
    prog_init(&pg, what, "tensors", T);
    pg.enabled &= p->progress;
    for (int i = 0; !rc && i < T; i++) {
        stats[si] = acc;
        ts[si].imp = sbuf;
        rc = rd_tensor(r, i, m, stats, si, si + 1, &pk, ts, out, q ? out + sens_q_offset(r, i)
                                                                 : NULL, scr, err);
        prog_update(&pg, i + 1);
    }
    prog_finish(&pg);
    vl_free(ts);
    vl_free(stats);
    vl_free(sbuf);
    vl_free(scr);
    if (q && !rc)
        *q = out;
    else
        vl_free(out);
    return rc;
}

int sens_rd(sens_result *r, const model *m, const char *spec, stat_acc *const *stats,
            const sens_params *p, float **keep_q, vl_err *err)
{
    if (keep_q && (p->add_set < 0 || p->add_set >= r->n_sets))
        return vl_errf(err, VL_EARG, "sens: additivity set %d outside [0, %d)", p->add_set,
                       r->n_sets);
    int rc = sens_rd_begin(r, spec, p, err);
    if (rc)
        return rc;
    int S = r->n_sets, T = r->n_tensors, F = r->n_formats;
    size_t nmax, cmax;
    tensor_max(r, &nmax, &cmax);
    tstats *ts = vl_calloc((size_t)S, sizeof *ts);
    double *sbuf = vl_malloc((size_t)S * (cmax + cmax * cmax) * sizeof *sbuf);
    double *scr = vl_malloc(2 * nmax * sizeof *scr);
    float *keep = keep_q ? vl_malloc(sens_q_offset(r, T) * sizeof *keep) : NULL;
    float *q = vl_malloc((size_t)F * nmax * sizeof *q);
    if (!ts || !sbuf || !scr || !q || (keep_q && !keep))
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory for quantized tensors");
    prog pg;
    prog_init(&pg, "sens RD", "tensors", T);
    pg.enabled &= p->progress;
    for (int i = 0; !rc && i < T; i++) {
        for (int s = 0; s < S; s++)
            ts[s].imp = sbuf + (size_t)s * (cmax + cmax * cmax);
        rc = rd_tensor(r, i, m, stats, 0, S, p, ts, q, keep ? keep + sens_q_offset(r, i) : NULL,
                       scr, err);
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

int sens_quantize_set(const sens_result *r, const model *m, const stat_acc *acc, int si,
                      const sens_params *p, float **q, vl_err *err)
{
    int T = r->n_tensors, F = r->n_formats, rc = 0;
    size_t cmax = 0;
    for (int i = 0; i < T; i++)
        cmax = (size_t)r->t[i].cols > cmax ? (size_t)r->t[i].cols : cmax;
    float *out = vl_malloc(sens_q_offset(r, T) * sizeof *out + 1);
    double *sbuf = vl_malloc((cmax + cmax * cmax) * sizeof *sbuf);
    if (!out || !sbuf)
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory for quantized tensors");
    for (int i = 0; !rc && i < T; i++) {
        const sens_tensor *t = &r->t[i];
        const float *w;
        float *own; /* the stored tensor as float32 while it is quantized (mweights.h) */
        if ((rc = model_tensor_f32(m, model_base(m), (size_t)t->mi, &w, &own, err)))
            break;
        tstats ts = {sbuf, sbuf + t->cols, 0, 0};
        int outer = t->proj == SENS_P_EMBED || t->proj == SENS_P_HEAD; /* as rd_outer */
        if (!outer)
            rc = get_stats(&ts, acc, t, r->set_name[si], err);
        fq_stats fs = {ts.imp, ts.h, ts.tokens}, *fsp = outer ? NULL : &fs;
        for (int f = 0; !rc && f < F; f++) {
            fq_info info;
            rc = fq_tensor(out + sens_q_offset(r, i) + (size_t)f * t->n, w, t->rows, t->cols,
                           &r->fmt[f], fsp, NULL, &p->fq, &info, t->name, err);
        }
        vl_free(own);
    }
    vl_free(sbuf);
    if (rc)
        vl_free(out);
    else
        *q = out;
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
    return sens_tensor_dist_alpha(r, si, ti, fi, kind,
                                  r->alpha[0][(size_t)si * r->n_units + r->t[ti].unit]);
}

double sens_tensor_dist_alpha(const sens_result *r, int si, int ti, int fi, sens_err_kind kind,
                              double a)
{
    int u = r->t[ti].unit, T = r->n_tensors;
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

