/* alloc/sens_add.c — binding an assignment of formats and the additivity check on held-out
 * sequences, per set and band (alloc/sens.h; the pure pieces are in sens_band.c). */
#include "sens.h"

#include "../core/kern.h"
#include "../core/par.h"
#include "../core/prog.h"

#include <math.h>
#include <stdio.h>

/* A copy of set s's reference binding with every tensor pointing at its chosen format in q;
 * *bpw over the quantized tensors. */
static int bind(const sens_result *r, const model *m, const sens_set *s, const float *q,
                const int *choice, model_weights **w, double *bpw, vl_err *err)
{
    int rc = model_weights_clone(w, m, sens_set_base(s), err);
    double bits = 0, nw = 0;
    for (int i = 0; !rc && i < r->n_tensors; i++) {
        int f = choice[r->t[i].unit];
        if (f < 0 || f >= r->n_formats)
            return vl_errf(err, VL_EARG, "sens: format %d of unit %d outside the menu", f,
                           r->t[i].unit);
        *model_weights_slot(m, *w, (size_t)r->t[i].mi) =
            q + sens_q_offset(r, i) + (size_t)f * r->t[i].n;
        bits += r->bpw[(size_t)i * r->n_formats + f] * (double)r->t[i].n;
        nw += (double)r->t[i].n;
    }
    *bpw = nw > 0 ? bits / nw : 0;
    return rc;
}

/* The additive prediction of `choice` on set si with α of unit u = alpha[u]. */
static void predict(const sens_result *r, int si, const int *choice, const double *alpha,
                    double pred[2])
{
    pred[0] = pred[1] = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        int u = r->t[i].unit, f = choice[u];
        pred[0] += sens_tensor_dist_alpha(r, si, i, f, SENS_E_REL, alpha[u]);
        pred[1] += sens_tensor_dist_alpha(r, si, i, f, SENS_E_OUT, alpha[u]);
    }
}

int sens_assign_eval(const sens_result *r, const model *m, sens_set *s, const float *q,
                     int si, const int *choice, double *bpw, double *measured, double pred[2],
                     vl_err *err)
{
    model_weights *w = NULL;
    int rc = bind(r, m, s, q, choice, &w, bpw, err);
    if (!rc) {
        predict(r, si, choice, r->alpha[0] + (size_t)si * r->n_units, pred);
        rc = sens_set_kld(s, w, SENS_FROM_EMBED, measured, err); /* the embedding may be quantized */
    }
    model_weights_free(w);
    return rc;
}

/* The bands and the draws, the same for every set (first call). */
static int make_draws(sens_result *r, const sens_params *p, vl_err *err)
{
    int F = r->n_formats, U = r->n_units, S = r->n_sets, width[256];
    if (F < 1 || F > 256)
        return vl_errf(err, VL_EARG, "sens: additivity needs 1..256 formats (menu has %d)", F);
    for (int f = 0; f < F; f++)
        width[f] = sens_fmt_width(&r->fmt[f], r->bpw[f]); /* tensor 0's bpw (ggml) */
    sens_band bd[SENS_MAX_BANDS];
    int B = sens_bands(width, F, bd, SENS_MAX_BANDS), A = B * p->add_draws;
    r->n_bands = B;
    r->add_draws = p->add_draws;
    r->n_add = A;
    r->band = vl_malloc((size_t)B * sizeof *r->band);
    r->add_band = vl_malloc((size_t)A * sizeof *r->add_band);
    r->add_choice = vl_malloc((size_t)A * U * sizeof *r->add_choice);
    r->add_bpw = vl_malloc((size_t)A * sizeof *r->add_bpw);
    r->add_measured = vl_malloc((size_t)S * A * sizeof *r->add_measured);
    r->add_pred[0] = vl_malloc((size_t)S * A * sizeof(double));
    r->add_pred[1] = vl_malloc((size_t)S * A * sizeof(double));
    r->add_holdout = vl_calloc((size_t)S * 2, sizeof *r->add_holdout);
    size_t ns = (size_t)S * B * 2 * SENS_BS_COUNT;
    r->add_stats = vl_malloc(ns * sizeof *r->add_stats);
    if (!r->band || !r->add_band || !r->add_choice || !r->add_bpw || !r->add_measured ||
        !r->add_pred[0] || !r->add_pred[1] || !r->add_holdout || !r->add_stats)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (size_t i = 0; i < (size_t)S * A; i++)
        r->add_measured[i] = r->add_pred[0][i] = r->add_pred[1][i] = NAN;
    for (size_t i = 0; i < ns; i++)
        r->add_stats[i] = NAN;
    for (int b = 0; b < B; b++)
        r->band[b] = bd[b];
    rng *g = NULL;
    int rc = rng_new_child(&g, p->seed, "sens.additivity", err);
    for (int a = 0; !rc && a < A; a++) {
        int *ch = r->add_choice + (size_t)a * U;
        r->add_band[a] = a / p->add_draws;
        sens_band_draw(&bd[a / p->add_draws], width, F, U, g, ch);
        double bits = 0, nw = 0;
        for (int i = 0; i < r->n_tensors; i++) {
            bits += r->bpw[(size_t)i * F + ch[r->t[i].unit]] * (double)r->t[i].n;
            nw += (double)r->t[i].n;
        }
        r->add_bpw[a] = nw > 0 ? bits / nw : 0;
    }
    rng_free(g);
    return rc;
}

/* α' of every unit on set si from the sequences before `first` (ε0, mean over draws). */
static void fit_alpha(const sens_result *r, int si, int first, double *alpha)
{
    int n = r->set_seqs[si];
    double e2 = r->eps[0] * r->eps[0];
    for (int u = 0; u < r->n_units; u++) {
        const double *sk = r->seq_kld[si] + (size_t)u * n; /* level 0 */
        double t = 0;
        for (int q = 0; q < first; q++)
            t += sk[q];
        alpha[u] = t / first / e2;
    }
}

/* Statistics of every band and form of set si from its measured and predicted rows. */
static int band_stats(sens_result *r, int si, const sens_params *p, vl_err *err)
{
    int A = r->n_add, D = r->add_draws, U = r->n_units, rc = 0;
    static const char *form[2] = {"rel", "out"};
    for (int b = 0; !rc && b < r->n_bands; b++)
        for (int k = 0; !rc && k < 2; k++) {
            char label[SENS_LABEL_MAX];
            snprintf(label, sizeof label, "sens.additivity.boot.%s.%d.%s", r->set_name[si], b,
                     form[k]);
            size_t a0 = (size_t)b * D;
            rc = sens_band_stats(r->add_stats + (((size_t)si * r->n_bands + b) * 2 + k) *
                                     SENS_BS_COUNT,
                                 r->add_pred[k] + (size_t)si * A + a0,
                                 r->add_measured + (size_t)si * A + a0, r->add_bpw + a0,
                                 r->add_choice + a0 * U, U, D, p->boot, p->seed, label, err);
        }
    return rc;
}

/* The draws of one set on threads (sens_par_items): draw a of this rank's draws mine[i]. */
typedef struct {
    const sens_result *r;
    int si, first, h;
    const model *m;
    sens_set *s;
    const float *q;
    const double *alpha;
    const int *mine;
    double *meas, *pr0, *pr1;
    int *rc;          /* [this rank's draws] 0, or the error in err[i] */
    vl_err *err;      /* [this rank's draws] */
} add_pool;

static int add_item(void *ctx, int worker, int i)
{
    add_pool *pl = ctx;
    const sens_result *r = pl->r;
    int a = pl->mine[i];
    const int *ch = r->add_choice + (size_t)a * r->n_units;
    model_weights *w = NULL;
    double bpw, pr[2];
    int rc = bind(r, pl->m, pl->s, pl->q, ch, &w, &bpw, &pl->err[i]);
    if (!rc)
        rc = sens_set_kld_part_on(pl->s, worker, w, SENS_FROM_EMBED, pl->first, pl->h,
                                  &pl->meas[a], &pl->err[i]);
    model_weights_free(w);
    predict(r, pl->si, ch, pl->alpha, pr);
    pl->pr0[a] = pr[0];
    pl->pr1[a] = pr[1];
    pl->rc[i] = rc;
    return rc;
}

int sens_additivity(sens_result *r, int si, const model *m, sens_set *s, const float *q,
                    const sens_params *p, vl_err *err)
{
    if (p->add_draws <= 0)
        return 0;
    if (p->add_draws > SENS_MAX_ADD_DRAWS)
        return vl_errf(err, VL_EARG, "sens: %d additivity draws per band (at most %d)",
                       p->add_draws, SENS_MAX_ADD_DRAWS);
    int rc = 0;
    if (!r->n_add && (rc = make_draws(r, p, err)))
        return rc;
    int n = sens_set_seqs(s), first, h = sens_holdout(n, &first), A = r->n_add, U = r->n_units;
    if (!r->seq_kld || !r->seq_kld[si] || r->set_seqs[si] != n)
        return vl_errf(err, VL_EARG, "sens: additivity on set %s before its α on %d sequences",
                       r->set_name[si], n);
    if (!h) /* one sequence: nothing to hold out; the set stays unchecked (holdout count 0) */
        return 0;
    r->add_holdout[2 * si] = first;
    r->add_holdout[2 * si + 1] = h;
    double *alpha = vl_malloc((size_t)U * sizeof *alpha);
    int *mine = vl_malloc(((size_t)A + 1) * sizeof *mine), nm = 0;
    int *rcs = vl_malloc(((size_t)A + 1) * sizeof *rcs);
    vl_err *errs = vl_calloc((size_t)A + 1, sizeof *errs);
    if (!alpha || !mine || !rcs || !errs) {
        vl_free(alpha);
        vl_free(mine);
        vl_free(rcs);
        vl_free(errs);
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    }
    fit_alpha(r, si, first, alpha);
    double *meas = r->add_measured + (size_t)si * A;
    double *pr0 = r->add_pred[0] + (size_t)si * A, *pr1 = r->add_pred[1] + (size_t)si * A;
    char what[96];
    snprintf(what, sizeof what, "sens additivity %s", r->set_name[si]);
    prog pg;
    prog_init(&pg, what, "runs", A);
    pg.enabled &= p->progress && par_rank() == 0;
    for (int a = 0; a < A; a++)
        if (par_mine(a)) /* draw a runs on rank a mod R */
            mine[nm++] = a;
    /* the draws on threads as the α scan's units (BLAS single-threaded meanwhile); each
       writes only its own entries, so the numbers do not depend on the thread count */
    int nt = p->threads > 0 ? p->threads : kern_threads();
    nt = nt < 1 ? 1 : nt > SENS_MAX_THREADS ? SENS_MAX_THREADS : nt;
    rc = sens_set_workers(s, nt, err);
    add_pool pl = {r, si, first, h, m, s, q, alpha, mine, meas, pr0, pr1, rcs, errs};
    for (int i = 0; i < nm; i++) /* draws never started (after a failure) stay 0 */
        rcs[i] = 0;
    if (!rc) {
        int blas = sens_blas_single(); /* as the reference run (sens_blas_single) */
        sens_par_items(nm, nt, add_item, &pl);
        sens_blas_restore(blas);
        prog_update(&pg, A);
    }
    for (int i = 0; !rc && i < nm; i++) /* the first failed draw's error */
        if (rcs[i]) {
            rc = rcs[i];
            if (err)
                *err = errs[i];
        }
    prog_finish(&pg);
    vl_free(alpha);
    vl_free(mine);
    vl_free(rcs);
    vl_free(errs);
    double *shared[] = {meas, pr0, pr1};
    for (int k = 0; k < 3; k++)
        rc = par_share(shared[k], A, sizeof(double), sizeof(double), rc, err);
    return rc ? rc : band_stats(r, si, p, err);
}
