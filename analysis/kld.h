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
 * Summary (llama.cpp tools/perplexity, kl_divergence()): mean KLD ± standard error
 * √((E[x²] − E[x]²)/(n−1)); median and percentiles by linear interpolation between order
 * statistics (GSL's gsl_stats_quantile_from_sorted_data, the same rule); max; same-top fraction
 * ± √(f(1−f)/(n−1)); RMS Δp; PPL = exp(mean nll) for both models and
 * ln(PPL_q/PPL_ref) = mean(nll_q − nll_ref) ± its standard error.
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

typedef struct {
    size_t n;                 /* tokens */
    double kld_mean, kld_mean_se;
    double kld_median, kld_p90, kld_p95, kld_p99, kld_p999, kld_max;
    double same_top, same_top_se;   /* fraction in [0,1] */
    double rms_dp;                  /* √(mean Δp²) */
    double ppl_ref, ppl_q;
    double ln_ppl_ratio, ln_ppl_ratio_se;  /* mean(nll_q − nll_ref) */
} kld_summary;

void kld_acc_init(kld_acc *a);
void kld_acc_deinit(kld_acc *a);
int kld_acc_add(kld_acc *a, const kld_token *t, vl_err *err);  /* VL_ENOMEM on failure */
/* Append every token of b to a (merging two runs gives the run over both). */
int kld_acc_merge(kld_acc *a, const kld_acc *b, vl_err *err);

/* Summary of the tokens in a; n = 0 is VL_ERANGE. */
int kld_summarize(const kld_acc *a, kld_summary *out, vl_err *err);

#endif
