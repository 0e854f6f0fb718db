/* alloc/sens_kld.c — KL(p_ref ‖ p_pert) of one token against the set's reference
 * distribution (alloc/sens.h, sens_token_kl): the inner loop of every noise run and
 * additivity draw, over the whole vocabulary.
 *
 * With δ = z − z0 (perturbed minus reference logits), p̂ = p/Σp and any constant k (the KL
 * does not change when every logit moves by k):
 *   KL = log Σ_v p̂_v e^{δ_v − k} − Σ p̂ (δ − k) = log1p(r + c) − r,
 *   r = Σ p̂ (δ − k),  c = Σ p̂ f(δ − k),  f(x) = e^x − 1 − x ≥ 0.
 * k is the p̂-mean of δ (a first pass), so r is 0 up to rounding and enters the result only
 * at second order (log1p(r + c) − r is flat in r at r = 0); c carries the KL, and its terms
 * are all ≥ 0, so it is summed without cancellation: float32 lanes over blocks of 64 entries,
 * the blocks in float64. The result thus has about the relative precision of c's terms,
 * whether δ is 1e-4 (a noise run) or 10 (a 1-bit draw whose q puts 1e-3 of p's mass where p
 * is), and a common shift of the logits costs nothing. Identical logits give exactly 0.
 * f is computed lane-wise (core/vexp.h vectors): |x| < 1 by its Taylor polynomial
 * x²·Σ_{j=0..10} x^j/(j+2)! (truncation below 2/13! ≈ 3e-10 of f), 1 ≤ |x| < 8 as
 * (e^x − 1) − x with vexp (relative error of f below 6e-7: e^x/f(x) ≤ 3.8 there), |x| ≥ 8
 * (rare) and NaN lanes in float64 with libm. This replaces the libm expm1f per logit of the
 * first version (log1p(Σ p̂ expm1 δ) − Σ p̂ δ, which lost up to 1e-4 of the KL when
 * Σ p̂ e^δ ≪ 1), the scan's largest cost after the GEMMs. */
#include "sens.h"

#include "../core/vexp.h"

#include <math.h>
#include <string.h>

enum { SK_BLOCK = 64 };

/* f(d) = e^d − 1 − d by its Taylor polynomial, for the lanes with |d| < 1 (others: garbage
 * the caller masks). Vectors through pointers, as core/vexp.h's. Always inlined (as the two
 * below): left to GCC's size heuristics such a helper stayed an out-of-line baseline (SSE2)
 * function called from sens_token_kl's AVX2 clone, each 8-lane vector split in two — 20 % of
 * a sensitivity scan's time (perf, session 8). Inlined, it is built for the caller's target;
 * with no FMA contraction (ISO C) the bits are the same. */
static inline __attribute__((always_inline)) void f_small(const vexp_f8_t *v, vexp_f8_t *out)
{
    const vexp_f8_t d = *v;
    vexp_f8_t q = VEXP_SPLAT(1.0f / 479001600.0f);
    q = q * d + VEXP_SPLAT(1.0f / 39916800.0f);
    q = q * d + VEXP_SPLAT(1.0f / 3628800.0f);
    q = q * d + VEXP_SPLAT(1.0f / 362880.0f);
    q = q * d + VEXP_SPLAT(1.0f / 40320.0f);
    q = q * d + VEXP_SPLAT(1.0f / 5040.0f);
    q = q * d + VEXP_SPLAT(1.0f / 720.0f);
    q = q * d + VEXP_SPLAT(1.0f / 120.0f);
    q = q * d + VEXP_SPLAT(1.0f / 24.0f);
    q = q * d + VEXP_SPLAT(1.0f / 6.0f);
    q = q * d + VEXP_SPLAT(0.5f);
    *out = d * d * q;
}

/* Whether every lane of mask m is set. */
static inline __attribute__((always_inline)) int all_lanes(const vexp_i8_t *m)
{
    int all = 1;
    for (int l = 0; l < 8; l++)
        all &= (*m)[l] != 0;
    return all;
}

/* *v = f(*v) for the lanes with |v| < 8 (others: garbage the caller masks): the polynomial
 * below |v| = 1, (e^v − 1) − v above. A vector whose lanes are all below 1 — nearly every one
 * of a noise run, whose δ is ~1e-2 — skips the exponential: the selected lanes are the
 * polynomial's either way, so the bits are the same. */
static inline __attribute__((always_inline)) void expm1_minus(vexp_f8_t *v)
{
    const vexp_f8_t d = *v;
    vexp_f8_t small;
    f_small(&d, &small);
    vexp_i8_t in = (d < VEXP_SPLAT(1.0f)) & (d > VEXP_SPLAT(-1.0f));
    if (all_lanes(&in)) {
        *v = small;
        return;
    }
    vexp_f8_t e = d;
    vexp_f8(&e);
    vexp_f8_t large = (e - VEXP_SPLAT(1.0f)) - d;
    *v = VEXP_SELECT(in, small, large);
}

/* One entry in float64 (lanes outside the vector range, the tail). */
static inline double expm1_minus_f64(float d) { return expm1((double)d) - (double)d; }

/* Σ p·(z − z0) over [0, V) (the unnormalised p-mean of δ). */
VEXP_CLONES static double mean_shift(const float *z0, const float *p, const float *z, int V)
{
    double b = 0;
    int v = 0;
    while (v + 8 <= V) {
        vexp_f8_t bb = VEXP_SPLAT(0.0f);
        int end = v + SK_BLOCK < V ? v + SK_BLOCK : V;
        for (; v + 8 <= end; v += 8) {
            vexp_f8_t a, r, pv;
            memcpy(&a, z + v, sizeof a);
            memcpy(&r, z0 + v, sizeof r);
            memcpy(&pv, p + v, sizeof pv);
            bb += pv * (a - r);
        }
        for (int l = 0; l < 8; l++)
            b += bb[l];
    }
    for (; v < V; v++)
        b += (double)p[v] * (z[v] - z0[v]);
    return b;
}

VEXP_CLONES double sens_token_kl(const float *z0, const float *p, double psum, const float *z,
                                 int V)
{
    double k = mean_shift(z0, p, z, V) / psum;
    float kf = isfinite(k) ? (float)k : 0.0f; /* any constant serves; NaN logits stay NaN */
    double r = 0, c = 0;
    int v = 0;
    const vexp_f8_t big = VEXP_SPLAT(8.0f), nbig = VEXP_SPLAT(-8.0f), zero = VEXP_SPLAT(0.0f);
    const vexp_f8_t vk = VEXP_SPLAT(kf);
    while (v + 8 <= V) {
        vexp_f8_t cb = zero, rb = zero;
        int end = v + SK_BLOCK < V ? v + SK_BLOCK : V;
        for (; v + 8 <= end; v += 8) {
            vexp_f8_t a, z0v, pv;
            memcpy(&a, z + v, sizeof a);
            memcpy(&z0v, z0 + v, sizeof z0v);
            memcpy(&pv, p + v, sizeof pv);
            vexp_f8_t x = (a - z0v) - vk;
            vexp_i8_t in = (x < big) & (x > nbig); /* false for NaN */
            vexp_f8_t f = x;
            expm1_minus(&f);
            cb += VEXP_SELECT(in, pv * f, zero);
            rb += pv * x;
            if (!all_lanes(&in))
                for (int l = 0; l < 8; l++)
                    if (!in[l])
                        c += (double)p[v + l] * expm1_minus_f64(x[l]);
        }
        for (int l = 0; l < 8; l++) {
            c += cb[l];
            r += rb[l];
        }
    }
    for (; v < V; v++) {
        float x = (z[v] - z0[v]) - kf;
        c += (double)p[v] * expm1_minus_f64(x);
        r += (double)p[v] * x;
    }
    r /= psum;
    c /= psum;
    double kl = log1p(r + c) - r;
    return kl > 0 ? kl : 0; /* rounding can leave −1e-17; NaN reads 0 as before */
}
