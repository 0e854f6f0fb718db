/* core/vexp.h — exp of float32 lanes, for loops that run over a whole vocabulary.
 *
 * libm's exp costs ~6 ns a call and does not vectorise; the KL divergence needs two per logit
 * (16k logits a token). vexp_f8 works on 8 lanes with GCC/Clang vector extensions (two
 * SSE registers on the x86-64 baseline, one AVX register in callers built for AVX2),
 * branch-free:
 *   n = round(x·log₂e), r = x − n·ln2 (two-constant Cody–Waite split, exact for |n| ≤ 128),
 *   exp(r) by its Taylor polynomial to degree 7 on |r| ≤ ln2/2 (truncation < 6e-9 relative),
 *   times 2ⁿ put straight into the exponent field.
 * Domain: x in [VEXP_LO, VEXP_HI]. Below VEXP_LO the result is 0 (the true value is under
 * 1.7e-38, i.e. below FLT_MIN·1.5: an absolute error no sum of probabilities can see); above
 * VEXP_HI the result is exp(VEXP_HI). NaN in gives NaN out.
 * Accuracy: relative error ≤ VEXP_MAX_REL against the exact value over the whole domain,
 * asserted by tests/test_kern.c against libm's double exp on a dense sweep of float inputs.
 * vexp_f1 is the same computation on one value (bit-identical to a lane of vexp_f8), for tails.
 * Pure functions; header-only so that callers' loops inline them.
 */
#ifndef VL_VEXP_H
#define VL_VEXP_H

#include <stdint.h>

#define VEXP_LO (-87.0f)
#define VEXP_HI 88.0f
#define VEXP_MAX_REL 1.5e-7 /* ≈ 1.3 float ulps (measured 1.0e-7); the test asserts it */

/* VEXP_CLONES on a hot loop's function: GCC builds it for the baseline and for x86-64-v3
 * (AVX2) and picks one at load time by the CPU. No FMA contraction happens in either (ISO C
 * mode keeps -ffp-contract=off), so both clones give the same bits.
 * VEXP_CLONES_FMA (the exp loops: KLD, softmax, SwiGLU): the same, but the AVX2 clone
 * contracts a·b + c to FMA (fp-contract=fast): the polynomial's 7 multiply-adds and the
 * reduction's become one instruction each, −25 % time in the KLD step. Those clones then
 * differ by float rounding (a fused multiply-add rounds once): on one CPU the results are
 * fixed, across CPUs they agree to float32 rounding. tests/test_kern.c asserts VEXP_MAX_REL
 * on the clone the CPU picks (through kern_exp_shift) as well as on the plain build. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__)
#define VEXP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define VEXP_CLONES_FMA                                                                         \
    __attribute__((target_clones("arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#else
#define VEXP_CLONES
#define VEXP_CLONES_FMA
#endif

/* Functions take and give vectors through pointers: passing 32-byte vectors by value would
 * depend on whether the caller is built with AVX (GCC's psABI note). */
typedef float vexp_f8_t __attribute__((vector_size(32)));
typedef int32_t vexp_i8_t __attribute__((vector_size(32)));
typedef uint32_t vexp_u8_t __attribute__((vector_size(32)));

#define VEXP_SPLAT(v) ((vexp_f8_t){(v), (v), (v), (v), (v), (v), (v), (v)})
/* Lane-wise a where the mask m is true (all ones), else b (vector casts reinterpret bits). */
#define VEXP_SELECT(m, a, b)                                                                    \
    ((vexp_f8_t)(((vexp_i8_t)(a) & (m)) | ((vexp_i8_t)(b) & ~(m))))

/* *v = exp(*v) for lanes already clamped to [VEXP_LO, VEXP_HI] (the body of the two below). */
static inline void vexp_f8_clamped(vexp_f8_t *v)
{
    const vexp_f8_t xc = *v;
    /* round to nearest by the 1.5·2²³ trick: n sits in the low mantissa bits of t */
    const vexp_f8_t magic = VEXP_SPLAT(12582912.0f);
    vexp_f8_t t = xc * VEXP_SPLAT(1.44269504088896341f) + magic;
    vexp_f8_t n = t - magic;
    vexp_f8_t r = xc - n * VEXP_SPLAT(0.693359375f); /* ln2 high part: 9 bits, n·hi exact */
    r = r - n * VEXP_SPLAT(-2.12194440e-4f);          /* ln2 − high part */
    vexp_f8_t p = VEXP_SPLAT(1.0f / 5040);
    p = p * r + VEXP_SPLAT(1.0f / 720);
    p = p * r + VEXP_SPLAT(1.0f / 120);
    p = p * r + VEXP_SPLAT(1.0f / 24);
    p = p * r + VEXP_SPLAT(1.0f / 6);
    p = p * r + VEXP_SPLAT(0.5f);
    p = p * r + VEXP_SPLAT(1.0f);
    p = p * r + VEXP_SPLAT(1.0f);
    /* p·2ⁿ: n added to the exponent field in unsigned lanes (wrap-around is defined; NaN
     * lanes compute garbage here that vexp_f8's select discards) */
    const vexp_u8_t bias = (vexp_u8_t)magic;
    *v = (vexp_f8_t)((vexp_u8_t)p + (((vexp_u8_t)t - bias) << 23));
}

/* *v = exp(*v) lane-wise. */
static inline void vexp_f8(vexp_f8_t *v)
{
    const vexp_f8_t x = *v;
    vexp_i8_t under = x < VEXP_SPLAT(VEXP_LO);
    /* clamp; NaN lanes fail both compares and stay NaN */
    vexp_f8_t xc = VEXP_SELECT(x > VEXP_SPLAT(VEXP_HI), VEXP_SPLAT(VEXP_HI),
                               VEXP_SELECT(under, VEXP_SPLAT(VEXP_LO), x));
    vexp_f8_t e = xc;
    vexp_f8_clamped(&e);
    *v = VEXP_SELECT(x != x, x, VEXP_SELECT(under, VEXP_SPLAT(0.0f), e));
}

/* *v = exp(*v) for lanes known to be ≤ 0 and not NaN (x − max of a finite row): the same
 * bits as vexp_f8 on those inputs (tests/test_kern.c checks it) without the upper clamp and
 * the NaN select, fewer operations in the KLD's inner loop. */
static inline void vexp_f8_nonpos(vexp_f8_t *v)
{
    vexp_i8_t under = *v < VEXP_SPLAT(VEXP_LO);
    vexp_f8_t e = VEXP_SELECT(under, VEXP_SPLAT(VEXP_LO), *v);
    vexp_f8_clamped(&e);
    *v = (vexp_f8_t)((vexp_i8_t)e & ~under); /* 0 below the domain */
}

/* One value through the same lanes (tails of loops). */
static inline float vexp_f1(float x)
{
    vexp_f8_t v = VEXP_SPLAT(x);
    vexp_f8(&v);
    return v[0];
}

#endif
