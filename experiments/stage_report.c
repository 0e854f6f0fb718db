/* experiments/stage_report.c — the report stage: markdown tables from the store → the run's
 * output stream, OUT.md beside the store (atomic) and /report (attribute markdown).
 *
 * Tables ([report] tables):
 *   kld_matrix      per target bpw: allocation × domain, mean KLD and same-top %, mean column;
 *                   every VBR row carries its solver proof (optimal with gap 0, the proven
 *                   relative gap, or a node-limit mark: alloc/salloc.h salloc_status); the
 *                   [experiment] baselines at the same budget follow their VBR row (proof
 *                   "baseline"), the random draws with their mean
 *   vbr_vs_uniform  every row by its real bpw: VBR allocations and uniform baselines
 *   expert_usage    per MoE layer: total-variation distance ½Σ|p_a(e) − p_b(e)| between the
 *                   calibration sets' top-k routing distributions, and per set the expert
 *                   whose routing share most exceeds its mean share in the other sets
 *   additivity      alloc/sens.h's check per set and band: Pearson, Spearman, partial r given
 *                   bpw, ratio and slope with intervals, on held-out sequences
 *   sensitivity     per set: tokens, sequences and noise draws α used; the most sensitive
 *                   units with α ± bootstrap SE, the ε ratio and the spread over draws; the
 *                   units outside the quadratic regime (sens_nonquadratic)
 *   llama_stats     per domain, llama-perplexity's --kl-divergence statistic set, metric ×
 *                   allocation (report_kld.c)
 *   kld_entropy     mean KLD per tercile of the reference's next-token entropy (report_kld.c)
 *   expert_bits     per MoE layer and expert: routing share per calibration set and the bits
 *                   each allocation gave the expert (report_expert.c)
 * Everything is read back from the store, so `--only report` works on a finished run.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/salloc.h"
#include "../alloc/sens.h"
#include "../alloc/xsel.h"
#include "../analysis/eval.h"
#include "../plots/plotfig.h"
#include "repdata.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int R, D;
    char **rows, **cols;     /* [R], [D]: /eval/matrix@rows, @cols */
    double *kld, *same;      /* [R × D]; with replicates the mean over them */
    double *kld_half;        /* [R × D] 95 % t half width over replicates; NULL: one replicate */
    double *bpw, *target;    /* [R] */
    double *bpwm, *bpwf;     /* [R] whole-model bpw: kept at stored dtype / as a GGUF file */
    int *uniform;            /* [R] */
    char (*kind)[24];        /* [R] vbr, uniform, baseline-uniform|rules|random */
    char (*proof)[64];       /* [R] what the solver proved about a VBR row's allocation */
} mx_read;

static void mx_free(mx_read *m)
{
    h5s_names_free(m->rows, m->R);
    h5s_names_free(m->cols, m->D);
    vl_free(m->kld);
    vl_free(m->kld_half);
    vl_free(m->same);
    vl_free(m->bpw);
    vl_free(m->bpwm);
    vl_free(m->bpwf);
    vl_free(m->target);
    vl_free(m->uniform);
    vl_free(m->kind);
    vl_free(m->proof);
}

/* "optimal", "gap 0.12%", "**node limit**, gap 3.1%" or "baseline" from /alloc/ROW. */
static int read_proof(h5s_store *s, const char *row, char out[64], vl_err *err)
{
    salloc_record rec; /* the one validating reader of a stored allocation */
    int rc = salloc_read(s, row, &rec, err);
    if (rc)
        return vl_errctx(err, rc, "allocation %s", row);
    if (!*rec.status) {
        salloc_record_free(&rec);
        return vl_errf(err, VL_EFORMAT, "%s: /alloc/%s: missing attribute status", h5s_path(s),
                       row);
    }
    const char *status = rec.status;
    double gap = rec.gap, obj = rec.objective_value;
    double rel = obj > 0 ? 100 * gap / obj : INFINITY;
    if (!strcmp(status, "optimal"))
        snprintf(out, 64, "optimal (gap 0)");
    else if (!strcmp(status, "node-limit"))
        snprintf(out, 64, "**node limit**, gap %.2g%%", rel);
    else if (!strcmp(status, "gap"))
        snprintf(out, 64, "gap %.2g%%", rel);
    else
        snprintf(out, 64, "%s", status);
    salloc_record_free(&rec);
    return 0;
}

static int read_matrix(h5s_store *s, mx_read *m, vl_err *err)
{
    memset(m, 0, sizeof *m);
    ev_store ev; /* the one validating reader of /eval; the report keeps what it needs */
    int rc = ev_read_store(s, &ev, err);
    if (!rc && !ev.same_top)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: missing dataset /eval/matrix/same_top",
                     h5s_path(s));
    if (!rc) {
        m->R = ev.n_rows;
        m->D = ev.n_cols;
        m->rows = ev.rows;
        m->cols = ev.cols;
        m->kld = ev.mean_kld;
        m->same = ev.same_top;
        ev.rows = ev.cols = NULL;
        ev.n_rows = ev.n_cols = 0;
        ev.mean_kld = ev.same_top = NULL;
    }
    ev_store_free(&ev);
    m->bpw = vl_calloc((size_t)m->R + 1, sizeof *m->bpw);
    m->bpwm = vl_calloc((size_t)m->R + 1, sizeof *m->bpwm);
    m->bpwf = vl_calloc((size_t)m->R + 1, sizeof *m->bpwf);
    m->target = vl_calloc((size_t)m->R + 1, sizeof *m->target);
    m->uniform = vl_calloc((size_t)m->R + 1, sizeof *m->uniform);
    m->proof = vl_calloc((size_t)m->R + 1, sizeof *m->proof);
    m->kind = vl_calloc((size_t)m->R + 1, sizeof *m->kind);
    if (!rc && (!m->bpw || !m->bpwm || !m->bpwf || !m->target || !m->uniform || !m->proof ||
                !m->kind))
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    for (int r = 0; !rc && r < m->R; r++) {
        ev_row_attrs a;
        if (!(rc = ev_read_row(s, m->rows[r], &a, err))) {
            m->bpw[r] = a.bpw;
            m->bpwm[r] = a.bpw_model;
            m->bpwf[r] = a.bpw_file;
            m->target[r] = a.target_bpw;
            m->uniform[r] = !strcmp(a.kind, "uniform");
            snprintf(m->kind[r], sizeof m->kind[r], "%s", a.kind);
        }
        ev_row_attrs_free(&a);
        if (!rc && !m->uniform[r])
            rc = read_proof(s, m->rows[r], m->proof[r], err);
        else if (!rc)
            snprintf(m->proof[r], sizeof m->proof[r], "–");
    }
    return rc;
}

/* Replicates: every cell, bpw and same-top becomes its mean over replicates, with the t half
 * width of the mean KLD (repdata.h). */
static int apply_replicates(mx_read *m, const rep_data *d, vl_err *err)
{
    if (d->R < 2)
        return 0;
    if (d->A != m->R || d->D != m->D)
        return vl_errf(err, VL_ESHAPE, "replicates: %d × %d cells, the matrix has %d × %d",
                       d->A, d->D, m->R, m->D);
    m->kld_half = vl_calloc((size_t)m->R * m->D, sizeof *m->kld_half);
    if (!m->kld_half)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    size_t cells = (size_t)m->R * m->D;
    for (size_t i = 0; i < cells; i++) {
        double h;
        rep_mean_ci(d, d->cell, cells, i, &m->kld[i], &m->kld_half[i]);
        rep_mean_ci(d, d->same, cells, i, &m->same[i], &h);
    }
    for (int r = 0; r < m->R; r++) {
        double h;
        rep_mean_ci(d, d->bpw, (size_t)m->R, (size_t)r, &m->bpw[r], &h);
    }
    return 0;
}

/* " 0.1234" or, with replicates, " 0.1234 ± 0.0056". */
static void put_kld(FILE *f, const mx_read *m, size_t i)
{
    fprintf(f, " %.4f", m->kld[i]);
    if (m->kld_half)
        fprintf(f, " ± %.4f", m->kld_half[i]);
}

/* The three bit counts of row r as table cells: body | model | file ("–" where unknown). */
static void put_bpw(FILE *f, const mx_read *m, int r)
{
    fprintf(f, " %.3f |", m->bpw[r]);
    const double v[2] = {m->bpwm[r], m->bpwf[r]};
    for (int k = 0; k < 2; k++)
        if (isfinite(v[k]))
            fprintf(f, " %.3f |", v[k]);
        else
            fprintf(f, " – |");
}

/* Sort key of a row: whole-model bpw where known, else the body's. */
static double bpw_key(const mx_read *m, int r)
{
    return isfinite(m->bpwm[r]) ? m->bpwm[r] : m->bpw[r];
}

static double row_mean(const mx_read *m, const double *v, int r)
{
    double s = 0;
    for (int d = 0; d < m->D; d++)
        s += v[(size_t)r * m->D + d];
    return m->D ? s / m->D : 0.0;
}

/* ---------------------------------------------------------------- the tables */

/* After the last random baseline row of a group (NAME.random1..R, adjacent), their mean:
 * "NAME.random (mean of R)" with the mean bpw, KLD and same-top. */
static void random_mean(FILE *f, const mx_read *m, int r)
{
    if (strcmp(m->kind[r], "baseline-random") ||
        (r + 1 < m->R && !strcmp(m->kind[r + 1], "baseline-random")))
        return;
    int r0 = r;
    while (r0 > 0 && !strcmp(m->kind[r0 - 1], "baseline-random"))
        r0--;
    int n = r - r0 + 1;
    char base[256];
    snprintf(base, sizeof base, "%s", m->rows[r]);
    char *dot = strrchr(base, '.');
    if (dot)
        *dot = '\0';
    double bpw[3] = {0, 0, 0}, kt = 0, st = 0;
    for (int q = r0; q <= r; q++) {
        bpw[0] += m->bpw[q] / n;
        bpw[1] += m->bpwm[q] / n;
        bpw[2] += m->bpwf[q] / n;
        kt += row_mean(m, m->kld, q) / n;
        st += row_mean(m, m->same, q) / n;
    }
    fprintf(f, "| %s.random (mean of %d) | baseline |", base, n);
    for (int k = 0; k < 3; k++) /* body, model, file as put_bpw */
        if (isfinite(bpw[k]))
            fprintf(f, " %.3f |", bpw[k]);
        else
            fprintf(f, " – |");
    for (int d = 0; d < m->D; d++) {
        double k = 0, sm = 0;
        for (int q = r0; q <= r; q++) {
            k += m->kld[(size_t)q * m->D + d] / n;
            sm += m->same[(size_t)q * m->D + d] / n;
        }
        fprintf(f, " %.4f / %.1f |", k, 100 * sm);
    }
    fprintf(f, " %.4f / %.1f |\n", kt, 100 * st);
}

static void table_kld_matrix(FILE *f, const mx_read *m)
{
    for (int r0 = 0; r0 < m->R; r0++) {
        if (m->uniform[r0])
            continue;
        int first = 1; /* print each target once, at its first row */
        for (int q = 0; q < r0; q++)
            first &= m->uniform[q] || m->target[q] != m->target[r0];
        if (!first)
            continue;
        fprintf(f, "\n### KLD matrix at %g bpw: mean KLD (nats) / same-top %%\n\n| allocation "
                "| solver proof | bpw body | bpw model | bpw file |", m->target[r0]);
        for (int d = 0; d < m->D; d++)
            fprintf(f, " %s |", m->cols[d]);
        fprintf(f, " mean |\n|---|---|---:|---:|---:|");
        for (int d = 0; d <= m->D; d++)
            fprintf(f, "---:|");
        fprintf(f, "\n");
        for (int r = r0; r < m->R; r++) {
            if (m->uniform[r] || m->target[r] != m->target[r0])
                continue;
            fprintf(f, "| %s | %s |", m->rows[r], m->proof[r]);
            put_bpw(f, m, r);
            for (int d = 0; d < m->D; d++) {
                put_kld(f, m, (size_t)r * m->D + d);
                fprintf(f, " / %.1f |", 100 * m->same[(size_t)r * m->D + d]);
            }
            fprintf(f, " %.4f / %.1f |\n", row_mean(m, m->kld, r),
                    100 * row_mean(m, m->same, r));
            random_mean(f, m, r);
        }
    }
}

static void table_vbr_vs_uniform(FILE *f, const mx_read *m)
{
    int *ord = vl_malloc((size_t)m->R * sizeof *ord + 1);
    if (!ord)
        return;
    for (int r = 0; r < m->R; r++)
        ord[r] = r;
    for (int i = 1; i < m->R; i++) /* insertion sort by bpw, stable */
        for (int j = i; j > 0 && bpw_key(m, ord[j - 1]) > bpw_key(m, ord[j]); j--) {
            int t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    fprintf(f, "\n### VBR vs uniform: mean KLD (nats) by real bits per weight\n\nbpw body: over "
            "the quantized matrices; model: over every weight, kept tensors at their stored "
            "dtype; file: as llama.cpp counts a GGUF file (ggml formats only).\n\n| row | kind | "
            "solver proof | bpw body | bpw model | bpw file |");
    for (int d = 0; d < m->D; d++)
        fprintf(f, " %s |", m->cols[d]);
    fprintf(f, " mean |\n|---|---|---|---:|---:|---:|");
    for (int d = 0; d <= m->D; d++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int i = 0; i < m->R; i++) {
        int r = ord[i];
        fprintf(f, "| %s | %s | %s |", m->rows[r],
                m->uniform[r] ? "uniform" : !strcmp(m->kind[r], "vbr") ? "VBR" : m->kind[r],
                m->proof[r]);
        put_bpw(f, m, r);
        for (int d = 0; d < m->D; d++) {
            put_kld(f, m, (size_t)r * m->D + d);
            fprintf(f, " |");
        }
        fprintf(f, " %.4f |\n", row_mean(m, m->kld, r));
    }
    vl_free(ord);
}

static void table_expert_usage(FILE *f, run_ctx *c)
{
    const exp_config *cfg = c->cfg;
    int S = cfg->n_calib;
    if (S > 32)
        S = 32;
    fprintf(f, "\n### Expert usage by calibration set\n\nTotal-variation distance ½Σ|p_a(e) − "
            "p_b(e)| of top-k routing (0 = same experts, 1 = disjoint); per set, the expert "
            "whose routing share most exceeds its mean share in the other sets (share ratio).\n"
            "\n| layer |");
    for (int a = 0; a < S; a++)
        for (int b = a + 1; b < S; b++)
            fprintf(f, " TV %s–%s |", cfg->calib[a].name, cfg->calib[b].name);
    for (int a = 0; a < S; a++)
        fprintf(f, " %s-specific |", cfg->calib[a].name);
    fprintf(f, "\n|---|");
    for (int k = 0; k < S * (S - 1) / 2 + S; k++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int l = 0; l < 4096; l++) {
        double *p[32] = {0};
        int E = 0, ok = S > 0;
        for (int a = 0; a < S && ok; a++) {
            int Ea = 0;
            ok = !xs_shares(c->s, cfg->calib[a].name, l, &p[a], &Ea, NULL) && (!a || Ea == E);
            E = Ea;
        }
        if (ok) {
            fprintf(f, "| L%02d |", l);
            for (int a = 0; a < S; a++)
                for (int b = a + 1; b < S; b++) {
                    double tv = 0;
                    for (int e = 0; e < E; e++)
                        tv += fabs(p[a][e] - p[b][e]);
                    fprintf(f, " %.3f |", 0.5 * tv);
                }
            for (int a = 0; a < S; a++) {
                int best = 0;
                double br = -1;
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int b = 0; b < S; b++)
                        o += b == a ? 0 : p[b][e];
                    o = S > 1 ? o / (S - 1) : p[a][e];
                    double ratio = (p[a][e] + 1e-6) / (o + 1e-6);
                    if (ratio > br) {
                        br = ratio;
                        best = e;
                    }
                }
                fprintf(f, " e%d (%.1f×) |", best, br);
            }
            fprintf(f, "\n");
        }
        int any = 0;
        for (int a = 0; a < S; a++) {
            any |= p[a] != NULL;
            vl_free(p[a]);
        }
        char lp[64];
        snprintf(lp, sizeof lp, "/stats/%s/layers/%02d", S ? cfg->calib[0].name : "", l);
        if (!any && !h5s_exists(c->s, lp))
            break;
    }
}

/* "0.123" or "–" for a value that is not a number. */
static void cell(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fprintf(f, " – |");
}

static void table_additivity(FILE *f, run_ctx *c)
{
    fprintf(f, "\n### Additivity of sensitivities\n\n");
    sens_result r;
    memset(&r, 0, sizeof r);
    vl_err e = {0};
    if (sens_read(&r, c->s, &e) || r.n_add == 0 || !r.add_stats) {
        fprintf(f, "Not measured%s%s.\n", e.msg[0] ? ": " : "", e.msg);
        sens_result_free(&r);
        return;
    }
    static const char *form[2] = {"rel", "out"};
    fprintf(f, "Random assignments per band of two adjacent bit widths (each unit takes the upper "
            "width with probability 1/2; %d draws per band, the same draws on every set): "
            "measured mean KLD on the set's held-out sequences vs the additive prediction "
            "Σ α'·e (α' from the set's other sequences), weight-error (rel) and output-error "
            "(out) forms. partial = correlation given the draw's bpw; ratio = Σxy/Σx² "
            "(measured/predicted) and slope = least-squares slope, with 95%% bootstrap "
            "intervals over draws (– : fewer than 3 draws, or no XᵀX stored).\n\n"
            "| set | held out | band (bits) | form | draws | distinct | Pearson | Spearman | "
            "partial | ratio [95%% CI] | slope [95%% CI] |\n"
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n", r.add_draws);
    for (int s = 0; s < r.n_sets; s++) {
        const int *ho = r.add_holdout + 2 * s;
        if (!ho[1]) {
            fprintf(f, "| %s | – | not checked: fewer than 2 sequences | | | | | | | | |\n",
                    r.set_name[s]);
            continue;
        }
        for (int b = 0; b < r.n_bands; b++)
            for (int k = 0; k < 2; k++) {
                const double *v =
                    r.add_stats + (((size_t)s * r.n_bands + b) * 2 + k) * SENS_BS_COUNT;
                fprintf(f, "| %s | seqs %d–%d of %d | %d/%d | %s | %.0f | %.0f |", r.set_name[s],
                        ho[0], ho[0] + ho[1] - 1, ho[0] + ho[1], r.band[b].lo, r.band[b].hi,
                        form[k], v[SENS_BS_N], v[SENS_BS_DISTINCT]);
                if (v[SENS_BS_DISTINCT] == 1) {
                    fprintf(f, " one distinct assignment: no correlation | | | | |\n");
                    continue;
                }
                cell(f, " %.3f |", v[SENS_BS_PEARSON]);
                cell(f, " %.3f |", v[SENS_BS_SPEARMAN]);
                cell(f, " %.3f |", v[SENS_BS_PARTIAL]);
                if (isfinite(v[SENS_BS_RATIO]))
                    fprintf(f, " %.3g [%.3g, %.3g] |", v[SENS_BS_RATIO], v[SENS_BS_RATIO_LO],
                            v[SENS_BS_RATIO_HI]);
                else
                    fprintf(f, " – |");
                if (isfinite(v[SENS_BS_SLOPE]))
                    fprintf(f, " %.3g [%.3g, %.3g] |\n", v[SENS_BS_SLOPE], v[SENS_BS_SLOPE_LO],
                            v[SENS_BS_SLOPE_HI]);
                else
                    fprintf(f, " – |\n");
            }
    }
    sens_result_free(&r);
}

#define SENS_TOP 10 /* units listed per set */

static void table_sensitivity(FILE *f, run_ctx *c)
{
    fprintf(f, "\n### Sensitivity α\n\n");
    sens_result r;
    memset(&r, 0, sizeof r);
    vl_err e = {0};
    if (sens_read(&r, c->s, &e) || !r.set_seqs) {
        fprintf(f, "Not measured%s%s.\n", e.msg[0] ? ": " : "", e.msg);
        sens_result_free(&r);
        return;
    }
    int quad = sens_quad_checked(&r);
    fprintf(f, "α = mean KLD/ε² at ε = %g (nats/token), mean of %d noise draws; ± = bootstrap SE "
            "over sequences (%d resamples); ", r.eps[0], r.n_draws, r.n_boot);
    if (quad)
        fprintf(f, "ratio = α(%g)/α(%g), outside the quadratic regime (**no**) when "
                "|ratio − 1| > %g; ", r.eps[1], r.eps[0], SENS_QUAD_TOL);
    else
        fprintf(f, "one noise level, so the quadratic regime is not checked (ratio –); ");
    fprintf(f, "draw sd = sd of α over the draws (– for one draw).\n");
    int U = r.n_units;
    int *ord = vl_malloc((size_t)U * sizeof *ord);
    for (int s = 0; ord && s < r.n_sets; s++) {
        const double *a = r.alpha[0] + (size_t)s * U;
        for (int u = 0; u < U; u++)
            ord[u] = u;
        for (int i = 1; i < U; i++) /* insertion sort, α descending (NaN last) */
            for (int j = i; j > 0 && (a[ord[j]] > a[ord[j - 1]] || isnan(a[ord[j - 1]])) &&
                            !isnan(a[ord[j]]); j--) {
                int t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        int nq = 0;
        for (int u = 0; u < U; u++)
            nq += sens_nonquadratic(&r, s, u);
        fprintf(f, "\nSet %s: %lld tokens (%d sequences); ", r.set_name[s],
                (long long)r.set_tokens[s], r.set_seqs[s]);
        if (quad)
            fprintf(f, "%d of %d units outside the quadratic regime.\n", nq, U);
        else
            fprintf(f, "quadratic regime not checked (one noise level).\n");
        fprintf(f, "\n| unit | α ± SE | ratio | draw sd | quadratic |\n|---|---:|---:|---:|---|\n");
        for (int k = 0; k < U && k < SENS_TOP; k++) {
            size_t i = (size_t)s * U + ord[k];
            char ratio[32] = "–", sd[32] = "–";
            if (quad)
                snprintf(ratio, sizeof ratio, "%.3f", r.alpha[1][i] / r.alpha[0][i]);
            if (isfinite(r.alpha_draw_sd[0][i]))
                snprintf(sd, sizeof sd, "%.2g", r.alpha_draw_sd[0][i]);
            fprintf(f, "| %s | %.4g ± %.2g | %s | %s | %s |\n", r.unit_name[ord[k]],
                    r.alpha[0][i], r.alpha_se[0][i], ratio, sd,
                    !quad ? "not checked" : sens_nonquadratic(&r, s, ord[k]) ? "**no**" : "yes");
        }
        if (nq) {
            fprintf(f, "\nOutside the quadratic regime on %s:", r.set_name[s]);
            for (int u = 0, k = 0; u < U; u++)
                if (sens_nonquadratic(&r, s, u))
                    fprintf(f, "%s %s (ratio %.3f)", k++ ? "," : "", r.unit_name[u],
                            r.alpha[1][(size_t)s * U + u] / r.alpha[0][(size_t)s * U + u]);
            fprintf(f, ".\n");
        }
    }
    vl_free(ord);
    sens_result_free(&r);
}

/* ---------------------------------------------------------------- plots */

/* OUT_plots/ from the committed store (it holds every stage but this one). A plotting
 * failure (no gnuplot, an unexpected layout) is noted in the report, not fatal: the tables
 * are the result. */
static void draw_plots(FILE *f, run_ctx *c)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", c->cfg->out);
    char *dot = strrchr(dir, '.'), *slash = strrchr(dir, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    strncat(dir, "_plots", sizeof dir - strlen(dir) - 1);
    const char *out = c->cfg->out;
    pfig_report_in in = {out, out, out, out, NULL};
    gp_opts o = gp_opts_default();
    o.term = (gp_term)c->cfg->term; /* png svg pdf: same order as exp_term */
    char **files = NULL;
    int n = 0;
    vl_err e = {0};
    int rc = pfig_report(dir, &in, &o, &files, &n, &e);
    fprintf(f, "\nPlots: %d figure%s in %s/", n, n == 1 ? "" : "s", dir);
    if (rc)
        fprintf(f, " (stopped: %s)", e.msg);
    fprintf(f, "\n");
    h5s_names_free(files, n);
}

/* ---------------------------------------------------------------- the stage */

static int write_md(const char *h5path, const char *text, vl_err *err)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s", h5path);
    char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    strncat(path, ".md", sizeof path - strlen(path) - 1);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return vl_errf(err, VL_EIO, "%s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return vl_errf(err, VL_EIO, "%s: cannot write", path);
    }
    return 0;
}

int stage_report(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    char *md = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    if (!f)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    mx_read m;
    rep_data rd;
    memset(&rd, 0, sizeof rd);
    int rc = read_matrix(c->s, &m, err);
    if (!rc && h5s_exists(c->s, "/sens") &&
        (cfg->tables & (1u << EXP_TABLE_ADDITIVITY | 1u << EXP_TABLE_SENSITIVITY))) {
        sens_result r; /* a store that contradicts itself fails the report, not one table */
        if (!(rc = sens_read(&r, c->s, err)))
            sens_result_free(&r);
    }
    if (!rc)
        rc = rep_read(c, &rd, err);
    if (!rc)
        rc = apply_replicates(&m, &rd, err);
    if (!rc) {
        fprintf(f, "## Experiment %s (%s)\n", cfg->name, cfg->path);
        if (rd.R > 1)
            fprintf(f, "\n%d replicates (every calibration set drawn %d times; the evaluation "
                    "domains are the same in each): cells are mean ± 95%% CI half width "
                    "(Student t over replicates).\n", rd.R, rd.R);
        rep_table_verdict(f, c, &rd);
        if (cfg->tables & (1u << EXP_TABLE_KLD_MATRIX))
            table_kld_matrix(f, &m);
        if (cfg->tables & (1u << EXP_TABLE_VBR_VS_UNIFORM))
            table_vbr_vs_uniform(f, &m);
        rep_table_paired(f, c, &rd);
        if (cfg->tables & (1u << EXP_TABLE_EXPERT_USAGE))
            table_expert_usage(f, c);
        if (cfg->tables & (1u << EXP_TABLE_ADDITIVITY))
            table_additivity(f, c);
        if (cfg->tables & (1u << EXP_TABLE_SENSITIVITY))
            table_sensitivity(f, c);
        if (cfg->tables & (1u << EXP_TABLE_KLD_ENTROPY | 1u << EXP_TABLE_LLAMA_STATS))
            report_kld_tables(f, c->s, !!(cfg->tables & (1u << EXP_TABLE_LLAMA_STATS)),
                              !!(cfg->tables & (1u << EXP_TABLE_KLD_ENTROPY)));
        if (cfg->tables & (1u << EXP_TABLE_EXPERT_BITS))
            report_expert_bits(f, c);
        if (cfg->plots)
            draw_plots(f, c);
    }
    mx_free(&m);
    rep_free(&rd);
    fclose(f);
    int64_t one = 1;
    int32_t nt = 1;
    if (!rc)
        rc = h5s_write(c->s, "/report/written", H5S_I32, &nt, 1, &one, "flag",
                       "1: the report tables were written (attribute markdown)", err);
    if (!rc)
        rc = h5s_attr_set(c->s, "/report", "markdown", md, err);
    if (!rc)
        rc = write_md(cfg->out, md, err);
    if (!rc && c->out)
        fputs(md, c->out);
    free(md); /* open_memstream's buffer comes from malloc */
    return rc;
}
