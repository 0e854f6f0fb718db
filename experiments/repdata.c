/* experiments/repdata.c — every replicate's evaluation data and the paired-difference and
 * verdict tables of the report (repdata.h).
 *
 * Why per-sequence values and not the stored means: the comparisons resample sequences (tokens
 * within a sequence are correlated) and pair them across rows (every row is evaluated on the
 * same sequences), which the per-domain means cannot do.
 */
#define _POSIX_C_SOURCE 200809L
#include "repdata.h"

#include "../analysis/eval.h"
#include "../core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

void rep_free(rep_data *d)
{
    for (int i = 0; d->seq && i < d->A * d->D; i++)
        vl_free(d->seq[i]);
    vl_free(d->seq);
    h5s_names_free(d->rows, d->A);
    h5s_names_free(d->cols, d->D);
    vl_free(d->n_seq);
    vl_free(d->cell);
    vl_free(d->same);
    vl_free(d->bpw);
    memset(d, 0, sizeof *d);
}

/* The shape and names from replicate 0 (s), and the arrays. */
static int read_shape(h5s_store *s, int R, rep_data *d, vl_err *err)
{
    int rc = ev_read_names(s, &d->rows, &d->A, &d->cols, &d->D, err);
    if (rc)
        return rc;
    d->R = R;
    size_t cells = (size_t)R * d->A * d->D;
    d->n_seq = vl_calloc((size_t)d->D, sizeof *d->n_seq);
    d->cell = vl_calloc(cells, sizeof *d->cell);
    d->same = vl_calloc(cells, sizeof *d->same);
    d->bpw = vl_calloc((size_t)R * d->A, sizeof *d->bpw);
    d->seq = vl_calloc((size_t)d->A * d->D, sizeof *d->seq);
    if (!d->n_seq || !d->cell || !d->same || !d->bpw || !d->seq)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    return 0;
}

/* A [A, D] matrix dataset of replicate r into dst[r·A·D ...]. */
static int read_mx(h5s_store *s, const char *name, const rep_data *d, int r, double *dst,
                   vl_err *err)
{
    char p[128];
    snprintf(p, sizeof p, "/eval/matrix/%s", name);
    double *v = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(s, p, H5S_F64, (void **)&v, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] != d->A || sh[1] != d->D))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: shape [%d, %d] expected (the replicates must "
                     "evaluate the same rows and domains)", h5s_path(s), p, d->A, d->D);
    if (!rc)
        memcpy(dst + (size_t)r * d->A * d->D, v, (size_t)d->A * d->D * sizeof *v);
    vl_free(v);
    return rc;
}

/* Per-sequence mean KLD of row a, domain j, replicate r. */
static int read_seq(h5s_store *s, rep_data *d, int r, int a, int j, vl_err *err)
{
    char p[2 * EV_NAME_MAX + 32];
    snprintf(p, sizeof p, "/eval/%s/%s/kld", d->rows[a], d->cols[j]);
    double *v = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(s, p, H5S_F64, (void **)&v, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] < 1 || sh[1] < 1 || (d->n_seq[j] && sh[0] != d->n_seq[j])))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: %d sequences expected (the evaluation domains "
                     "must be the same in every replicate)", h5s_path(s), p, d->n_seq[j]);
    double **dst = &d->seq[(size_t)a * d->D + j];
    if (!rc && !d->n_seq[j])
        d->n_seq[j] = (int)sh[0];
    if (!rc && !*dst && !(*dst = vl_calloc((size_t)d->R * d->n_seq[j], sizeof **dst)))
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    if (!rc)
        pr_seq_means(v, d->n_seq[j], (int)sh[1], *dst + (size_t)r * d->n_seq[j]);
    vl_free(v);
    return rc;
}

static int read_replicate(h5s_store *s, rep_data *d, int r, vl_err *err)
{
    char **rows = NULL, **cols = NULL;
    int A = 0, D = 0;
    int rc = ev_read_names(s, &rows, &A, &cols, &D, err);
    if (!rc) { /* the names of replicate 0, in its order */
        int same = A == d->A && D == d->D;
        for (int a = 0; same && a < A; a++)
            same = !strcmp(rows[a], d->rows[a]);
        for (int j = 0; same && j < D; j++)
            same = !strcmp(cols[j], d->cols[j]);
        if (!same)
            rc = vl_errf(err, VL_ESHAPE, "%s: /eval/matrix rows or cols differ from replicate "
                         "0's", h5s_path(s));
    }
    h5s_names_free(rows, A);
    h5s_names_free(cols, D);
    if (!rc)
        rc = read_mx(s, "mean_kld", d, r, d->cell, err);
    if (!rc)
        rc = read_mx(s, "same_top", d, r, d->same, err);
    for (int a = 0; !rc && a < d->A; a++) {
        ev_row_attrs at;
        if (!(rc = ev_read_row(s, d->rows[a], &at, err)))
            d->bpw[(size_t)r * d->A + a] = at.bpw;
        ev_row_attrs_free(&at);
        for (int j = 0; !rc && j < d->D; j++)
            rc = read_seq(s, d, r, a, j, err);
    }
    return rc;
}

int rep_read(run_ctx *c, rep_data *d, vl_err *err)
{
    memset(d, 0, sizeof *d);
    int R = c->cfg->replicates > 1 ? c->cfg->replicates : 1;
    int rc = read_shape(c->s, R, d, err);
    for (int r = 0; !rc && r < R; r++) {
        h5s_store *s = c->s;
        char path[4096];
        if (r > 0 && !(rc = exp_replicate_out(c->cfg, r, path, sizeof path, err)))
            rc = h5s_open(&s, path, err);
        if (!rc)
            rc = read_replicate(s, d, r, err);
        if (r > 0 && s != c->s)
            h5s_close(s);
    }
    if (rc)
        rep_free(d);
    return rc;
}

int rep_row(const rep_data *d, const char *name)
{
    for (int a = 0; a < d->A; a++)
        if (!strcmp(d->rows[a], name))
            return a;
    return -1;
}

int rep_col(const rep_data *d, const char *name)
{
    for (int j = 0; j < d->D; j++)
        if (!strcmp(d->cols[j], name))
            return j;
    return -1;
}

void rep_mean_ci(const rep_data *d, const double *v, size_t stride, size_t off, double *mean,
                 double *half)
{
    double x[EXP_MAX_REPLICATES];
    for (int r = 0; r < d->R; r++)
        x[r] = v[(size_t)r * stride + off];
    pr_t_interval(x, d->R, PR_LEVEL, mean, half);
}

int rep_paired(const run_ctx *c, const rep_data *d, int a, int b, int dom, pr_diff *out,
               vl_err *err)
{
    char label[3 * EV_NAME_MAX + 32];
    snprintf(label, sizeof label, "report.paired:%s:%s:%s", d->rows[a], d->rows[b],
             d->cols[dom]);
    return pr_paired(d->seq[(size_t)a * d->D + dom], d->seq[(size_t)b * d->D + dom], d->R,
                     d->n_seq[dom], PR_DEFAULT_BOOT, rng_child_seed(c->cfg->seed, label),
                     PR_LEVEL, out, err);
}

/* ---------------------------------------------------------------- rows of the config */

typedef struct {
    int alloc;      /* index into cfg->alloc for VBR rows; −1 for uniform rows */
    double target;
} row_info;

static row_info info_of(const exp_config *cfg, const char *row)
{
    row_info ri = {-1, 0};
    char buf[256];
    for (int a = 0; a < cfg->n_alloc; a++)
        for (int t = 0; t < cfg->alloc[a].target_bpw.n; t++) {
            run_alloc_result_name(&cfg->alloc[a], cfg->alloc[a].target_bpw.v[t], buf,
                                  sizeof buf);
            if (!strcmp(buf, row)) {
                ri.alloc = a;
                ri.target = cfg->alloc[a].target_bpw.v[t];
                return ri;
            }
        }
    return ri;
}

static int same_list(const exp_slist *x, const exp_slist *y)
{
    if (x->n != y->n)
        return 0;
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->v[i], y->v[i]))
            return 0;
    return 1;
}

/* What a comparison of two VBR allocations varies. */
static const char *kind_of(const exp_alloc *x, const exp_alloc *y)
{
    if (!same_list(&x->sets, &y->sets) || !same_list(exp_alloc_stats(x), exp_alloc_stats(y)))
        return "calibration";
    if (x->granularity != y->granularity)
        return "granularity";
    return "allocation";
}

/* " +0.0123 [+0.0100, +0.0150]" (n.s. when the interval includes 0). */
static void put_diff(FILE *f, const pr_diff *p)
{
    fprintf(f, " %+.4f [%+.4f, %+.4f]%s |", p->mean, p->lo, p->hi, p->zero_in ? " n.s." : "");
}

/* Mean stored bpw of row a over the replicates. */
static double row_bpw(const rep_data *d, int a)
{
    double m, h;
    rep_mean_ci(d, d->bpw, (size_t)d->A, (size_t)a, &m, &h);
    return m;
}

static void paired_line(FILE *f, const run_ctx *c, const rep_data *d, const char *what, int a,
                        int b)
{
    fprintf(f, "| %s | %s (%.3f) | %s (%.3f) |", what, d->rows[a], row_bpw(d, a), d->rows[b],
            row_bpw(d, b));
    for (int j = 0; j < d->D; j++) {
        pr_diff p;
        vl_err e = {0};
        if (rep_paired(c, d, a, b, j, &p, &e))
            fprintf(f, " – (%s) |", e.msg);
        else
            put_diff(f, &p);
    }
    fprintf(f, "\n");
}

void rep_table_paired(FILE *f, const run_ctx *c, const rep_data *d)
{
    const exp_config *cfg = c->cfg;
    fprintf(f, "\n### Paired differences: mean KLD of A − B (nats), 95%% CI\n\nBootstrap over "
            "the evaluation sequences%s (%d resamples, percentile interval); both rows are "
            "evaluated on the same sequences; (bpw) the row's stored bits per weight. n.s.: the "
            "interval includes 0.\n\n"
            "| comparison | A | B |", d->R > 1 ? " and the replicates" : "", PR_DEFAULT_BOOT);
    for (int j = 0; j < d->D; j++)
        fprintf(f, " %s |", d->cols[j]);
    fprintf(f, "\n|---|---|---|");
    for (int j = 0; j < d->D; j++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    row_info *ri = vl_calloc((size_t)d->A, sizeof *ri);
    if (!ri)
        return;
    for (int a = 0; a < d->A; a++)
        ri[a] = info_of(cfg, d->rows[a]);
    for (int a = 0; a < d->A; a++) /* VBR vs each uniform row */
        for (int b = 0; ri[a].alloc >= 0 && b < d->A; b++)
            if (ri[b].alloc < 0)
                paired_line(f, c, d, "VBR vs uniform", a, b);
    for (int a = 0; a < d->A; a++) /* two allocations at one target */
        for (int b = a + 1; ri[a].alloc >= 0 && b < d->A; b++)
            if (ri[b].alloc >= 0 && ri[b].alloc != ri[a].alloc && ri[b].target == ri[a].target)
                paired_line(f, c, d, kind_of(&cfg->alloc[ri[a].alloc], &cfg->alloc[ri[b].alloc]),
                            a, b);
    vl_free(ri);
}

/* ---------------------------------------------------------------- verdicts */

/* Mean over replicates and sequences of row b on domain j (the WITHIN margin's scale). */
static double row_mean(const rep_data *d, int b, int j)
{
    const double *v = d->seq[(size_t)b * d->D + j];
    double t = 0;
    int n = d->R * d->n_seq[j];
    for (int i = 0; i < n; i++)
        t += v[i];
    return t / n;
}

void rep_table_verdict(FILE *f, const run_ctx *c, const rep_data *d)
{
    const exp_config *cfg = c->cfg;
    if (!cfg->n_claim)
        return;
    fprintf(f, "\n### Verdict\n\nEach test is a paired difference of mean KLD (nats) with its "
            "95%% bootstrap CI over %s; A > B is supported when the whole CI lies above 0, not "
            "supported when it lies below 0; A ~M B (no more than M × B apart) is supported "
            "when the CI lies inside ±M·B, not supported when it lies outside; otherwise "
            "inconclusive. A claim is supported when all its tests are, not supported when "
            "any is not.\n\n| claim | test | A − B [95%% CI] | relative to B | test | claim "
            "verdict |\n|---|---|---:|---:|---|---|\n",
            d->R > 1 ? "replicates and sequences" : "sequences");
    for (int i = 0; i < cfg->n_claim; i++) {
        const exp_claim *cl = &cfg->claim[i];
        pr_verdict v[64];
        int n = cl->n_tests < 64 ? cl->n_tests : 64;
        char (*line)[2048] = vl_calloc((size_t)n + 1, sizeof *line);
        if (!line)
            return;
        for (int t = 0; t < n; t++) {
            const exp_test *te = &cl->tests[t];
            char tt[512];
            exp_test_text(te, tt, sizeof tt);
            int a = rep_row(d, te->a), b = rep_row(d, te->b), j = rep_col(d, te->domain);
            pr_diff p;
            vl_err e = {0};
            v[t] = PR_INCONCLUSIVE;
            if (a < 0 || b < 0 || j < 0 || rep_paired(c, d, a, b, j, &p, &e)) {
                snprintf(line[t], sizeof line[t], "| `%s` | not measured%s%.300s | – | %s |", tt,
                         e.msg[0] ? ": " : "", e.msg, pr_verdict_name(v[t]));
                continue;
            }
            double mb = row_mean(d, b, j);
            pr_expect ex = te->op == EXP_CMP_GREATER ? PR_EXPECT_GREATER
                           : te->op == EXP_CMP_LESS  ? PR_EXPECT_LESS
                                                     : PR_EXPECT_WITHIN;
            v[t] = pr_decide(&p, ex, te->margin * mb);
            snprintf(line[t], sizeof line[t], "| `%s` | %+.4f [%+.4f, %+.4f] | %+.1f%% | %s |",
                     tt, p.mean, p.lo, p.hi, mb > 0 ? 100 * p.mean / mb : NAN,
                     pr_verdict_name(v[t]));
        }
        pr_verdict all = pr_combine(v, n);
        for (int t = 0; t < n; t++)
            fprintf(f, "| %s %s %s |\n", t ? "" : cl->text, line[t],
                    t ? "" : pr_verdict_name(all));
        vl_free(line);
    }
}
