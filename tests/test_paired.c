/* tests/test_paired.c — analysis/paired: bootstrap coverage in seeded simulations, exact zero
 * for identical rows, exact shifts, determinism, the t interval against a hand value, the
 * verdict rule, bad input. */
#include "../analysis/paired.h"
#include "../core/rng.h"
#include "check.h"

#include <gsl/gsl_errno.h>

/* Coverage of the true mean MU by the 95 % interval over TRIALS seeded simulations. Each trial
 * draws per-sequence values (n_rep × n_seq) by GEN and asks pr_paired for the interval. */
typedef void (*gen_fn)(rng *g, int n_rep, int n_seq, double *a, double *b);

static double coverage(gen_fn gen, int trials, int n_rep, int n_seq, double mu, uint64_t seed)
{
    double *a = vl_malloc(sizeof *a * (size_t)(n_rep * n_seq));
    double *b = vl_malloc(sizeof *b * (size_t)(n_rep * n_seq));
    rng *g = NULL;
    VL_ASSERT(a && b && rng_new(&g, seed, NULL) == 0);
    int hit = 0;
    for (int t = 0; t < trials; t++) {
        gen(g, n_rep, n_seq, a, b);
        pr_diff d;
        VL_ASSERT(pr_paired(a, b, n_rep, n_seq, 1000, seed + (uint64_t)t, 0.95, &d, NULL) == 0);
        hit += d.lo <= mu && mu <= d.hi;
    }
    rng_free(g);
    vl_free(a);
    vl_free(b);
    return (double)hit / trials;
}

/* One sample of N(1, 1) per sequence; b = NULL semantics through zeros. */
static void gen_normal(rng *g, int n_rep, int n_seq, double *a, double *b)
{
    for (int i = 0; i < n_rep * n_seq; i++) {
        a[i] = 1.0 + rng_gaussian(g, 1.0);
        b[i] = 0.0;
    }
}

/* Paired rows sharing a large per-sequence effect (what makes pairing worth it): a = x + 0.3 +
 * e1, b = x + e2, x ~ N(0, 3²) per sequence, e ~ N(0, 0.5²). True difference 0.3. */
static void gen_paired(rng *g, int n_rep, int n_seq, double *a, double *b)
{
    for (int i = 0; i < n_rep * n_seq; i++) {
        double x = rng_gaussian(g, 3.0);
        a[i] = x + 0.3 + rng_gaussian(g, 0.5);
        b[i] = x + rng_gaussian(g, 0.5);
    }
}

/* Replicates × sequences with a replicate effect u_r ~ N(0, 0.3²), a sequence effect
 * v_s ~ N(0, 1) shared by every replicate (crossed design), noise N(0, 0.5²); mean 0.2. */
static void gen_crossed(rng *g, int n_rep, int n_seq, double *a, double *b)
{
    double v[64];
    VL_ASSERT(n_seq <= 64);
    for (int s = 0; s < n_seq; s++)
        v[s] = rng_gaussian(g, 1.0);
    for (int r = 0; r < n_rep; r++) {
        double u = rng_gaussian(g, 0.3);
        for (int s = 0; s < n_seq; s++) {
            a[r * n_seq + s] = 0.2 + u + v[s] + rng_gaussian(g, 0.5);
            b[r * n_seq + s] = 0.0;
        }
    }
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "paired");

    /* nominal coverage: 400 trials; binomial sd at p = 0.95 is 0.011, the band is ±3 sd. The
     * percentile bootstrap of a mean runs a little under nominal at small n (its spread uses
     * the 1/n variance), which is why n = 50 sequences. */
    double cov = coverage(gen_normal, 400, 1, 50, 1.0, 11);
    CHECK(&c, cov >= 0.95 - 0.033 && cov <= 0.95 + 0.033, "coverage, mean of N(1,1), n=50: %.4f",
          cov);
    cov = coverage(gen_paired, 400, 1, 50, 0.3, 12);
    CHECK(&c, cov >= 0.95 - 0.033 && cov <= 0.95 + 0.033,
          "coverage, paired difference with shared sequence effect: %.4f", cov);
    /* crossed replicates × sequences: resampling both levels must not under-cover */
    cov = coverage(gen_crossed, 400, 5, 30, 0.2, 13);
    CHECK(&c, cov >= 0.95 - 0.033, "coverage, 5 replicates × 30 sequences (crossed): %.4f", cov);

    /* identical rows: exactly zero, zero width, not significant */
    double a[3 * 7], b[3 * 7];
    rng *g = NULL;
    VL_ASSERT(rng_new(&g, 5, NULL) == 0);
    for (int i = 0; i < 21; i++)
        a[i] = b[i] = 0.01 + rng_uniform(g);
    rng_free(g);
    pr_diff d;
    CHECK_INT(&c, pr_paired(a, b, 3, 7, 500, 1, 0.95, &d, NULL), 0, "identical rows run");
    CHECK(&c, d.mean == 0.0 && d.lo == 0.0 && d.hi == 0.0 && d.zero_in,
          "identical rows: mean %g, CI [%g, %g] exactly 0", d.mean, d.lo, d.hi);
    CHECK(&c, d.n_rep == 3 && d.n_seq == 7 && d.n_boot == 500 && d.level == 0.95,
          "identical rows: shape recorded");

    /* an exact constant shift: every resample averages the same value */
    for (int i = 0; i < 21; i++)
        b[i] = a[i] - 0.5;
    CHECK_INT(&c, pr_paired(a, b, 3, 7, 500, 1, 0.95, &d, NULL), 0, "shift run");
    CHECK_NEAR(&c, d.mean, 0.5, 1e-15, 0, "shift: mean");
    CHECK(&c, d.hi - d.lo < 1e-15 && !d.zero_in, "shift: zero width [%g, %g], significant",
          d.lo, d.hi);

    /* two sequences: every resampled mean is d0, (d0+d1)/2 or d1 */
    double two[2] = {1.0, 3.0};
    CHECK_INT(&c, pr_paired(two, NULL, 1, 2, 400, 9, 0.95, &d, NULL), 0, "two sequences run");
    CHECK(&c, d.mean == 2.0 && d.lo == 1.0 && d.hi == 3.0,
          "two sequences: mean 2, CI [1, 3] (got %g [%g, %g])", d.mean, d.lo, d.hi);

    /* determinism: same seed same bits, another seed other bits */
    for (int i = 0; i < 21; i++)
        b[i] = 0.3 * a[(i * 5) % 21];
    pr_diff d1, d2, d3;
    VL_ASSERT(pr_paired(a, b, 3, 7, 300, 42, 0.95, &d1, NULL) == 0);
    VL_ASSERT(pr_paired(a, b, 3, 7, 300, 42, 0.95, &d2, NULL) == 0);
    VL_ASSERT(pr_paired(a, b, 3, 7, 300, 43, 0.95, &d3, NULL) == 0);
    CHECK(&c, d1.lo == d2.lo && d1.hi == d2.hi, "same seed: same interval");
    CHECK(&c, d1.lo != d3.lo || d1.hi != d3.hi, "another seed: another interval");
    CHECK(&c, d1.lo <= d1.mean && d1.mean <= d1.hi, "the estimate lies inside its interval");

    /* per-sequence means */
    double tok[6] = {1, 2, 3, 10, 20, 30}, sm[2];
    pr_seq_means(tok, 2, 3, sm);
    CHECK(&c, sm[0] == 2.0 && sm[1] == 20.0, "sequence means 2, 20");

    /* t interval: x = 1..5, mean 3, sd √2.5, t(0.975, 4) = 2.7764451 → 1.9632432 */
    double x[5] = {1, 2, 3, 4, 5}, m, h;
    pr_t_interval(x, 5, 0.95, &m, &h);
    CHECK_NEAR(&c, m, 3.0, 1e-15, 0, "t interval: mean");
    CHECK_NEAR(&c, h, 2.7764451052 * sqrt(2.5) / sqrt(5.0), 1e-9, 0, "t interval: half width");
    pr_t_interval(x, 1, 0.95, &m, &h);
    CHECK(&c, m == 1.0 && isnan(h), "t interval of one value: NaN half width");

    /* the verdict rule */
    pr_diff pos = {.lo = 0.1, .hi = 0.4}, neg = {.lo = -0.4, .hi = -0.1},
            mid = {.lo = -0.1, .hi = 0.2};
    CHECK(&c, pr_decide(&pos, PR_EXPECT_GREATER, 0) == PR_SUPPORTED, "greater: CI above 0");
    CHECK(&c, pr_decide(&neg, PR_EXPECT_GREATER, 0) == PR_NOT_SUPPORTED, "greater: CI below 0");
    CHECK(&c, pr_decide(&mid, PR_EXPECT_GREATER, 0) == PR_INCONCLUSIVE, "greater: CI on 0");
    CHECK(&c, pr_decide(&neg, PR_EXPECT_LESS, 0) == PR_SUPPORTED, "less: CI below 0");
    CHECK(&c, pr_decide(&pos, PR_EXPECT_LESS, 0) == PR_NOT_SUPPORTED, "less: CI above 0");
    CHECK(&c, pr_decide(&mid, PR_EXPECT_WITHIN, 0.25) == PR_SUPPORTED, "within 0.25");
    CHECK(&c, pr_decide(&mid, PR_EXPECT_WITHIN, 0.15) == PR_INCONCLUSIVE, "within 0.15");
    CHECK(&c, pr_decide(&pos, PR_EXPECT_WITHIN, 0.05) == PR_NOT_SUPPORTED, "within 0.05");
    pr_verdict v1[] = {PR_SUPPORTED, PR_SUPPORTED}, v2[] = {PR_SUPPORTED, PR_INCONCLUSIVE},
               v3[] = {PR_INCONCLUSIVE, PR_NOT_SUPPORTED};
    CHECK(&c, pr_combine(v1, 2) == PR_SUPPORTED && pr_combine(v2, 2) == PR_INCONCLUSIVE &&
                 pr_combine(v3, 2) == PR_NOT_SUPPORTED && pr_combine(v1, 0) == PR_INCONCLUSIVE,
          "combining parts");
    CHECK_STR(&c, pr_verdict_name(PR_NOT_SUPPORTED), "not supported", "verdict name");

    /* bad input */
    vl_err e = {0};
    CHECK_INT(&c, pr_paired(a, b, 3, 7, 1, 1, 0.95, &d, &e), VL_EARG, "one resample refused");
    CHECK_INT(&c, pr_paired(a, b, 0, 7, 100, 1, 0.95, &d, &e), VL_EARG, "no replicate refused");
    CHECK_INT(&c, pr_paired(a, b, 3, 7, 100, 1, 1.0, &d, &e), VL_EARG, "level 1 refused");
    a[4] = NAN;
    CHECK_INT(&c, pr_paired(a, b, 3, 7, 100, 1, 0.95, &d, &e), VL_ERANGE, "NaN refused");
    CHECK_HAS(&c, e.msg, "replicate 0, sequence 4", "NaN message names the cell");
    return chk_done(&c);
}
