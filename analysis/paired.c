/* analysis/paired.c — paired differences with a seeded two-level bootstrap (paired.h).
 *
 * Why percentile and not normal-theory intervals: per-sequence KLD differences are skewed (a
 * few sequences carry most of the damage at 2 bits), and the number of sequences is small; the
 * percentile bootstrap needs no variance formula for the crossed replicate × sequence design.
 */
#include "paired.h"

#include "../core/rng.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pr_seq_means(const double *tok, int n_seq, int per_seq, double *out)
{
    for (int s = 0; s < n_seq; s++) {
        double t = 0;
        for (int i = 0; i < per_seq; i++)
            t += tok[(size_t)s * per_seq + i];
        out[s] = per_seq > 0 ? t / per_seq : NAN;
    }
}

void pr_t_interval(const double *x, int n, double level, double *mean, double *half)
{
    double m = 0, ss = 0;
    for (int i = 0; i < n; i++)
        m += x[i];
    m = n > 0 ? m / n : NAN;
    for (int i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *half = NAN;
    if (n >= 2) {
        double t = gsl_cdf_tdist_Pinv(0.5 * (1 + level), (double)(n - 1));
        *half = t * sqrt(ss / (n - 1)) / sqrt((double)n);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile p of sorted v[n], linear between order statistics (type 7). */
static double quantile(const double *v, int n, double p)
{
    double h = (n - 1) * p;
    int i = (int)floor(h);
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (h - i) * (v[i + 1] - v[i]);
}

int pr_paired(const double *a, const double *b, int n_rep, int n_seq, int n_boot, uint64_t seed,
              double level, pr_diff *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    if (n_rep < 1 || n_seq < 1 || n_boot < 2 || !(level > 0 && level < 1))
        return vl_errf(err, VL_EARG, "paired difference: need n_rep ≥ 1, n_seq ≥ 1, n_boot ≥ 2 "
                       "and 0 < level < 1 (got %d, %d, %d, %g)", n_rep, n_seq, n_boot, level);
    size_t n = (size_t)n_rep * (size_t)n_seq;
    double *d = vl_malloc(n * sizeof *d);
    double *bm = vl_malloc((size_t)n_boot * sizeof *bm);
    int *ri = vl_malloc((size_t)n_rep * sizeof *ri), *si = vl_malloc((size_t)n_seq * sizeof *si);
    rng *g = NULL;
    int rc = 0;
    if (!d || !bm || !ri || !si)
        rc = vl_errf(err, VL_ENOMEM, "paired difference: out of memory");
    double tot = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        d[i] = a[i] - (b ? b[i] : 0.0);
        if (!isfinite(d[i]))
            rc = vl_errf(err, VL_ERANGE, "paired difference: non-finite value at replicate %zu, "
                         "sequence %zu", i / (size_t)n_seq, i % (size_t)n_seq);
        tot += d[i];
    }
    if (!rc)
        rc = rng_new_child(&g, seed, "paired.bootstrap", err);
    for (int k = 0; !rc && k < n_boot; k++) {
        for (int r = 0; r < n_rep; r++)
            ri[r] = n_rep > 1 ? (int)rng_uniform_int(g, (uint64_t)n_rep) : r;
        for (int s = 0; s < n_seq; s++)
            si[s] = (int)rng_uniform_int(g, (uint64_t)n_seq);
        double t = 0;
        for (int r = 0; r < n_rep; r++) {
            const double *row = d + (size_t)ri[r] * n_seq;
            for (int s = 0; s < n_seq; s++)
                t += row[si[s]];
        }
        bm[k] = t / (double)n;
    }
    if (!rc) {
        qsort(bm, (size_t)n_boot, sizeof *bm, cmp_double);
        out->mean = tot / (double)n;
        out->lo = quantile(bm, n_boot, 0.5 * (1 - level));
        out->hi = quantile(bm, n_boot, 0.5 * (1 + level));
        out->level = level;
        out->n_rep = n_rep;
        out->n_seq = n_seq;
        out->n_boot = n_boot;
        out->zero_in = out->lo <= 0 && out->hi >= 0;
    }
    rng_free(g);
    vl_free(d);
    vl_free(bm);
    vl_free(ri);
    vl_free(si);
    return rc;
}

/* ---------------------------------------------------------------- verdicts */

pr_verdict pr_decide(const pr_diff *d, pr_expect e, double margin)
{
    switch (e) {
    case PR_EXPECT_GREATER:
        return d->lo > 0 ? PR_SUPPORTED : d->hi < 0 ? PR_NOT_SUPPORTED : PR_INCONCLUSIVE;
    case PR_EXPECT_LESS:
        return d->hi < 0 ? PR_SUPPORTED : d->lo > 0 ? PR_NOT_SUPPORTED : PR_INCONCLUSIVE;
    default:
        if (d->lo >= -margin && d->hi <= margin)
            return PR_SUPPORTED;
        return d->lo > margin || d->hi < -margin ? PR_NOT_SUPPORTED : PR_INCONCLUSIVE;
    }
}

const char *pr_verdict_name(pr_verdict v)
{
    static const char *const names[] = {"supported", "not supported", "inconclusive"};
    return (unsigned)v < 3 ? names[v] : "?";
}

pr_verdict pr_combine(const pr_verdict *v, int n)
{
    int all = n > 0;
    for (int i = 0; i < n; i++) {
        if (v[i] == PR_NOT_SUPPORTED)
            return PR_NOT_SUPPORTED;
        all &= v[i] == PR_SUPPORTED;
    }
    return all ? PR_SUPPORTED : PR_INCONCLUSIVE;
}
