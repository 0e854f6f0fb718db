/* analysis/paired.h — paired comparisons of two evaluated rows: mean difference, seeded
 * bootstrap confidence interval, and the rule that turns an interval into a verdict.
 *
 * Data: two rows A and B evaluated on the same sequences, as per-sequence values (the mean KLD
 * of each sequence: tokens within a sequence are correlated, so sequences, not tokens, are the
 * unit of resampling), laid out [n_rep × n_seq] replicate-major. Replicates are independent
 * draws of the calibration data (experiments/: `replicates = R`); the evaluation sequences are
 * the same in every replicate, so the design is crossed (sequence s of replicate r and of
 * replicate r' is the same text).
 *
 * Estimate: d̄ = mean over every (r, s) of a[r,s] − b[r,s].
 * Interval: percentile bootstrap with n_boot resamples from the stream rng_child_seed(seed,
 * "paired.bootstrap"). Each resample draws n_rep replicate indices with replacement (only when
 * n_rep > 1), then n_seq sequence indices with replacement, shared by the drawn replicates
 * (the sequences are the same texts in every replicate), and takes the mean difference over
 * the drawn cells. The interval is the [(1 − level)/2, (1 + level)/2] quantiles of the
 * resampled means (linear interpolation between order statistics, R's type 7).
 * Identical rows give d̄ = 0 and lo = hi = 0 exactly (every resample averages zeros).
 *
 * Verdicts (pr_decide): an expectation about the sign of a − b, or that it lies within a
 * margin, is supported when the whole interval agrees, not supported when the whole interval
 * contradicts it, and inconclusive otherwise (the interval straddles the boundary).
 *
 * Pure functions of their inputs (every random choice from the given seed); thread-safe.
 */
#ifndef VL_PAIRED_H
#define VL_PAIRED_H

#include "../core/err.h"

#include <stdint.h>

#define PR_DEFAULT_BOOT 2000 /* resamples: the 2.5 % quantile then rests on 50 values */
#define PR_LEVEL 0.95

typedef struct {
    double mean;      /* d̄, mean of a − b over every cell */
    double lo, hi;    /* the bootstrap interval at `level` */
    double level;
    int n_rep, n_seq, n_boot;
    int zero_in;      /* 1 when lo ≤ 0 ≤ hi: the difference is not significant */
} pr_diff;

/* The paired difference of A and B ([n_rep × n_seq] each; B NULL means all zeros, i.e. the
 * mean of A and its interval). n_rep ≥ 1, n_seq ≥ 1, n_boot ≥ 2, 0 < level < 1; VL_EARG
 * otherwise, VL_ERANGE for a non-finite value, VL_ENOMEM. */
int pr_paired(const double *a, const double *b, int n_rep, int n_seq, int n_boot, uint64_t seed,
              double level, pr_diff *out, vl_err *err);

/* Per-sequence means of a [n_seq × per_seq] per-token array: out[s] = mean of row s. */
void pr_seq_means(const double *tok, int n_seq, int per_seq, double *out);

/* Student-t interval over n independent values (replicates): *mean and *half with the
 * interval mean ± half, half = t_{(1+level)/2, n−1} · sd / √n; half = NaN when n < 2. */
void pr_t_interval(const double *x, int n, double level, double *mean, double *half);

/* ---------------------------------------------------------------- verdicts */

typedef enum { PR_EXPECT_GREATER, PR_EXPECT_LESS, PR_EXPECT_WITHIN } pr_expect;
typedef enum { PR_SUPPORTED, PR_NOT_SUPPORTED, PR_INCONCLUSIVE } pr_verdict;

/* GREATER (a − b > 0): supported when lo > 0, not supported when hi < 0.
 * LESS (a − b < 0): supported when hi < 0, not supported when lo > 0.
 * WITHIN margin m ≥ 0 (|a − b| ≤ m): supported when −m ≤ lo and hi ≤ m, not supported when
 * lo > m or hi < −m. Inconclusive otherwise. */
pr_verdict pr_decide(const pr_diff *d, pr_expect e, double margin);

/* "supported", "not supported", "inconclusive"; static. */
const char *pr_verdict_name(pr_verdict v);

/* The verdict of several parts that must all hold: not supported when any part is, supported
 * when every part is, else inconclusive. n = 0: inconclusive. */
pr_verdict pr_combine(const pr_verdict *v, int n);

#endif
