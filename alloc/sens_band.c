/* alloc/sens_band.c — the additivity check's building blocks (alloc/sens.h): bands of a menu,
 * one draw of a band, the held-out split and the statistics of a band (GSL for Pearson and
 * Spearman; the partial correlation and the bootstrap intervals here). Pure. */
#include "sens.h"

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <string.h>

int sens_fmt_width(const qfmt *f, double bpw)
{
    return f->method == QFMT_GGML ? (int)floor(bpw) : f->bits;
}

int sens_bands(const int *width, int F, sens_band *out, int max)
{
    int w[64], n = 0; /* distinct widths, increasing (1..64 bits) */
    for (int f = 0; f < F; f++) {
        int seen = 0;
        for (int k = 0; k < n; k++)
            seen |= w[k] == width[f];
        if (!seen && n < 64)
            w[n++] = width[f];
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && w[j - 1] > w[j]; j--) {
            int t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    if (n == 1 && max > 0) { /* one width: a band that cannot mix, reported as such */
        out[0] = (sens_band){w[0], w[0]};
        return 1;
    }
    int nb = 0;
    for (int k = 0; k + 1 < n && nb < max; k++)
        out[nb++] = (sens_band){w[k], w[k + 1]};
    return nb;
}

/* Uniform among the formats of width wd: the k-th such format. */
static int pick_width(const int *width, int F, int wd, rng *g)
{
    int n = 0;
    for (int f = 0; f < F; f++)
        n += width[f] == wd;
    int k = n > 1 ? (int)rng_uniform_int(g, (uint64_t)n) : 0;
    for (int f = 0; f < F; f++)
        if (width[f] == wd && k-- == 0)
            return f;
    return 0;
}

void sens_band_draw(const sens_band *b, const int *width, int F, int U, rng *g, int *choice)
{
    for (int u = 0; u < U; u++) {
        int up = rng_uniform(g) < 0.5; /* drawn even for lo == hi: one stream layout */
        choice[u] = pick_width(width, F, up ? b->hi : b->lo, g);
    }
}

int sens_holdout(int n_seq, int *first)
{
    int h = n_seq >= 2 ? (n_seq + 3) / 4 : 0;
    *first = n_seq - h;
    return h;
}

double sens_partial_corr(const double *x, const double *y, const double *z, int n)
{
    if (n < 4)
        return NAN;
    double rxy = gsl_stats_correlation(x, 1, y, 1, (size_t)n);
    if (!isfinite(rxy))
        return NAN;
    double vz = gsl_stats_variance(z, 1, (size_t)n);
    if (!(vz > 0)) /* a constant control removes nothing */
        return rxy;
    double rxz = gsl_stats_correlation(x, 1, z, 1, (size_t)n);
    double ryz = gsl_stats_correlation(y, 1, z, 1, (size_t)n);
    double d = (1 - rxz * rxz) * (1 - ryz * ryz);
    return d > 0 ? (rxy - rxz * ryz) / sqrt(d) : NAN;
}

/* Σxy/Σx² and the least-squares slope cov(x,y)/var(x) over the indices ix[0..n). */
static void fit(const double *x, const double *y, const int *ix, int n, double *ratio,
                double *slope)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        double a = x[ix[i]], b = y[ix[i]];
        sx += a;
        sy += b;
        sxx += a * a;
        sxy += a * b;
    }
    *ratio = sxx > 0 ? sxy / sxx : NAN;
    double vx = sxx - sx * sx / n;
    *slope = vx > 1e-300 * (sxx > 0 ? sxx : 1) && vx > 0 ? (sxy - sx * sy / n) / vx : NAN;
}

/* 2.5% and 97.5% percentiles of v[0..n) (sorted in place; NaNs dropped first). */
static void interval(double *v, int n, double *lo, double *hi)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            v[m++] = v[i];
    if (m < 2) {
        *lo = *hi = NAN;
        return;
    }
    gsl_sort(v, 1, (size_t)m);
    *lo = gsl_stats_quantile_from_sorted_data(v, 1, (size_t)m, 0.025);
    *hi = gsl_stats_quantile_from_sorted_data(v, 1, (size_t)m, 0.975);
}

static int distinct_rows(const int *choice, const int *ix, int n, int U)
{
    int d = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !memcmp(choice + (size_t)ix[i] * U, choice + (size_t)ix[j] * U,
                           (size_t)U * sizeof *choice);
        d += !seen;
    }
    return d;
}

int sens_band_stats(double out[SENS_BS_COUNT], const double *pred, const double *meas,
                    const double *bpw, const int *choice, int U, int n, int n_boot,
                    uint64_t seed, const char *label, vl_err *err)
{
    for (int k = 0; k < SENS_BS_COUNT; k++)
        out[k] = NAN;
    int nb = n_boot >= 2 ? n_boot : 0;
    int *ix = vl_malloc(((size_t)n + 1) * sizeof *ix), *bx = vl_malloc(((size_t)n + 1) * sizeof *bx);
    double *w = vl_malloc((5 * (size_t)n + 2 * (size_t)nb + 1) * sizeof *w);
    rng *g = NULL;
    int rc = ix && bx && w ? 0 : vl_errf(err, VL_ENOMEM, "sens: out of memory");
    int m = 0;
    for (int i = 0; !rc && i < n; i++)
        if (isfinite(pred[i]) && isfinite(meas[i]))
            ix[m++] = i;
    out[SENS_BS_N] = m;
    out[SENS_BS_DISTINCT] = rc ? NAN : distinct_rows(choice, ix, m, U);
    if (!rc && m >= 3 && out[SENS_BS_DISTINCT] >= 2) {
        double *x = w, *y = w + n, *z = w + 2 * (size_t)n, *sw = w + 3 * (size_t)n;
        for (int i = 0; i < m; i++) {
            x[i] = pred[ix[i]];
            y[i] = meas[ix[i]];
            z[i] = bpw[ix[i]];
        }
        out[SENS_BS_PEARSON] = gsl_stats_correlation(x, 1, y, 1, (size_t)m);
        out[SENS_BS_SPEARMAN] = gsl_stats_spearman(x, 1, y, 1, (size_t)m, sw);
        out[SENS_BS_PARTIAL] = sens_partial_corr(x, y, z, m);
        for (int i = 0; i < m; i++)
            bx[i] = i;
        fit(x, y, bx, m, &out[SENS_BS_RATIO], &out[SENS_BS_SLOPE]);
        if (nb && !(rc = rng_new_child(&g, seed, label, err))) {
            double *br = w + 5 * (size_t)n, *bs = br + nb;
            for (int b = 0; b < nb; b++) {
                for (int i = 0; i < m; i++)
                    bx[i] = (int)rng_uniform_int(g, (uint64_t)m);
                fit(x, y, bx, m, &br[b], &bs[b]);
            }
            interval(br, nb, &out[SENS_BS_RATIO_LO], &out[SENS_BS_RATIO_HI]);
            interval(bs, nb, &out[SENS_BS_SLOPE_LO], &out[SENS_BS_SLOPE_HI]);
        }
    }
    rng_free(g);
    vl_free(ix);
    vl_free(bx);
    vl_free(w);
    return rc;
}
