/* analysis/kld.h — per-token KL divergence of a quantized model against the reference, and the
 * summary metrics llama.cpp's perplexity tool prints (so numbers can be compared).
 *
 * Per token t with next token y: p = softmax(reference logits), q = softmax(quantized logits),
 *   KLD_t   = Σ_v p_v (log p_v − log q_v)           (nats, ≥ 0)
 *   same_t  = [argmax p == argmax q]
 *   Δp_t    = q_y − p_y                              (probability of the actual next token)
 *   nll_t   = −log p_y, −log q_y                     (nats)
 *   H_t     = −Σ_v p_v log p_v                       (nats, the reference's entropy)
 * all in float64 from float32 logits (log-sum-exp with the max subtracted).
 *
 * Summary: the statistic set llama.cpp's perplexity tool prints with --kl-divergence
 * (tools/perplexity/perplexity.cpp, kl_divergence()), so numbers can be compared line by line:
 *   mean ± SE, SE = √((E[x²] − E[x]²)/(n−1)) (llama.cpp also gives 0 for n ≤ 10; here only
 *     for n = 1 or a zero variance);
 *   percentiles by linear interpolation between order statistics at f·(n−1) (GSL's
 *     gsl_stats_quantile_from_sorted_data, the same rule), the median as the mean of the two
 *     middle values for even n;
 *   KLD: mean ± SE, max, 99.9/99/95/90 %, median, 10/5/1/0.1 %, min;
 *   Δp: mean ± SE, max, 99.9/99/95/90/75 %, median, 25/10/5/1/0.1 %, min; RMS Δp ± SE with
 *     SE(RMS) = SE(mean Δp²) / (2·RMS);
 *   same-top fraction ± √(f(1−f)/(n−1));
 *   PPL = exp(mean nll) ± PPL·SE(nll) for both models; ln(PPL_q/PPL_ref) = mean(nll_q −
 *     nll_ref) ± its SE (equal to llama.cpp's √(SE_q² + SE_ref² − 2 cov));
 *     Cor(ln PPL_q, ln PPL_ref) = Pearson correlation of the per-token nll_q and nll_ref
 *     (llama.cpp's cov / (SE_q·SE_ref): the (n−1) factors cancel); NaN when either nll
 *     is constant.
 * Not reproduced: llama.cpp stores the base log-probabilities as 16-bit integers over a 16-nat
 * range and drops base probabilities below e^−16 from the KLD sum; vbrlab keeps float64.
 *
 * Entropy slice (kld_slice_entropy): tokens split into terciles of the reference's
 * next-token entropy H: low H ≤ t₁, mid t₁ < H ≤ t₂, high H > t₂, with t₁, t₂ the 1/3 and 2/3
 * quantiles of H (same interpolation rule) over the tokens sliced.
 *
 * The accumulator keeps every per-token value (so results can be sliced later); it is a plain
 * growable record owned by the caller (kld_acc_init / kld_acc_deinit). Not thread-safe.
 */
#ifndef VL_KLD_H
#define VL_KLD_H

#include "../core/err.h"

#include <stddef.h>

typedef struct {
    double kld;       /* KL(p‖q), nats */
    double dp;        /* q_y − p_y */
    double nll_ref;   /* −log p_y */
    double nll_q;     /* −log q_y */
    double entropy_ref; /* H(p), nats (the reference's next-token entropy) */
    int same_top;     /* 1 if argmax agree */
    int top_ref;      /* argmax p (lowest index on ties) */
    int top_q;        /* argmax q */
} kld_token;

/* One token from two logit rows of length V; next_id in [0, V). Pure function. */
kld_token kld_token_eval(const float *logits_ref, const float *logits_q, int V, int next_id);

typedef struct {
    size_t n, cap;       /* tokens stored / allocated */
    double *kld;         /* [n] per-token KLD */
    double *dp;          /* [n] per-token Δp */
    double *nll_ref;     /* [n] */
    double *nll_q;       /* [n] */
    unsigned char *same; /* [n] same top */
} kld_acc;

enum { KLD_SLICES = 3 }; /* entropy terciles: low, mid, high */

typedef struct {
    size_t n;                 /* tokens */
    double kld_mean, kld_mean_se;
    double kld_median, kld_p90, kld_p95, kld_p99, kld_p999, kld_max;
    double kld_p10, kld_p05, kld_p01, kld_p001, kld_min;
    double same_top, same_top_se;   /* fraction in [0,1] */
    double rms_dp, rms_dp_se;       /* √(mean Δp²) */
    double dp_mean, dp_mean_se;     /* probability */
    double dp_max, dp_p999, dp_p99, dp_p95, dp_p90, dp_p75, dp_median;
    double dp_p25, dp_p10, dp_p05, dp_p01, dp_p001, dp_min;
    double ppl_ref, ppl_q, ppl_ref_se, ppl_q_se;
    double ln_ppl_ratio, ln_ppl_ratio_se;  /* mean(nll_q − nll_ref) */
    double ln_ppl_cor;              /* Pearson correlation of nll_q and nll_ref, in [−1, 1] */
    /* kld_slice_entropy: tercile thresholds of the reference entropy (nats) and, per slice
     * (low, mid, high), its tokens and mean KLD ± SE (NaN for an empty slice). Zero and NaN
     * until sliced. */
    double ent_thr[2];
    size_t ent_n[KLD_SLICES];
    double ent_kld[KLD_SLICES], ent_kld_se[KLD_SLICES];
} kld_summary;

void kld_acc_init(kld_acc *a);
void kld_acc_deinit(kld_acc *a);
int kld_acc_add(kld_acc *a, const kld_token *t, vl_err *err);  /* VL_ENOMEM on failure */
/* Append every token of b to a (merging two runs gives the run over both). */
int kld_acc_merge(kld_acc *a, const kld_acc *b, vl_err *err);

/* Summary of the tokens in a; n = 0 is VL_ERANGE. The entropy slice fields are set to NaN
 * thresholds and empty slices (kld_slice_entropy fills them). */
int kld_summarize(const kld_acc *a, kld_summary *out, vl_err *err);

/* Fill out's entropy slice from a and the reference entropy H[a->n] of its tokens (nats).
 * VL_ERANGE for n = 0, VL_ENOMEM. */
int kld_slice_entropy(const kld_acc *a, const double *entropy, kld_summary *out, vl_err *err);

#endif
