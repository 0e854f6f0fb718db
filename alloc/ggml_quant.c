/* alloc/ggml_quant.c — importance-weighted quantizers of ggml's integer formats: q4_0, q4_1,
 * q5_0, q5_1, q8_0 and the k-quants q2_K … q6_K.
 *
 * Each quantizer minimises Σ w_j (x_j − x̂_j)² where x̂ is exactly what the decoder produces
 * (fp16-rounded scales, the decoder's float operations), by search written for this module:
 *  - a block's (scale[, offset]) is tried from many starting points around the range of x, each
 *    refined by alternating nearest-level assignment and a weighted least-squares refit;
 *  - k-quants (a super-block fp16 scale times per-sub-block integer scales) first fit every
 *    sub-block in float, then try a ladder of super-scales and, per sub-block, the integer
 *    scales (and mins) next to the rounded ones, keeping the combination of least error.
 * Packing follows ggml-common.h's block_* layouts (see ggml_dec.c for the inverse).
 */
#include "ggml_int.h"

#include <math.h>

#define NEAR(v) ((int)lrintf(v))

static float f16r(float v) { return ggf_f16_to_f32(ggf_f32_to_f16(v)); }

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---------------------------------------------------------------- symmetric: x ≈ d·q */

/* Nearest level in [lo, hi] of t in float: rintf (round half to even, as lrintf) is one
 * instruction where lrintf is a libm call; a NaN goes to lo. */
static inline float near_clamp(float t, float lo, float hi)
{
    t = rintf(t);
    t = t >= lo ? t : lo;
    return t <= hi ? t : hi;
}

/* Weighted error of x ≈ a·q + b with nearest q ∈ [lo, hi] in the decoder's arithmetic (a float
 * multiply then add: (float)q·a + b for q4_1/q5_1, a·q − m for the k-quants, a·q + 0 = a·q for
 * the symmetric formats); q written when not NULL. Rows come in runs of 16 (every caller's n is
 * a multiple): the float part of a run is branch-free with a fixed trip count, so the compiler
 * vectorizes it; the error is summed in double in index order. */
static double lin_err(const float *x, const float *w, int n, float a, float b, int lo, int hi,
                      int *q)
{
    double e = 0;
    if (a == 0) {
        for (int i = 0; i < n; i++) {
            if (q) q[i] = 0;
            float diff = x[i] - (0.0f * a + b);
            e += (double)w[i] * diff * diff;
        }
        return e;
    }
    float ia = 1.0f / a, flo = (float)lo, fhi = (float)hi;
    for (int i0 = 0; i0 < n; i0 += 16) {
        float df[16], lv[16];
        for (int j = 0; j < 16; j++) {
            float xi = x[i0 + j], l = near_clamp((xi - b) * ia, flo, fhi);
            float diff = xi - (l * a + b);
            /* the level on the other side may be closer in the decoder's arithmetic */
            float l2 = l + (diff * a > 0 ? 1.0f : -1.0f);
            l2 = l2 >= flo ? l2 : flo;
            l2 = l2 <= fhi ? l2 : fhi;
            float diff2 = xi - (l2 * a + b);
            int b2 = fabsf(diff2) < fabsf(diff);
            lv[j] = b2 ? l2 : l;
            df[j] = b2 ? diff2 : diff;
        }
        for (int j = 0; j < 16; j++) e += (double)w[i0 + j] * df[j] * df[j];
        if (q)
            for (int j = 0; j < 16; j++) q[i0 + j] = (int)lv[j];
    }
    return e;
}

/* x ≈ d·q, q ∈ [lo, hi]. */
static double sym_err(const float *x, const float *w, int n, float d, int lo, int hi, int *q)
{
    return lin_err(x, w, n, d, 0.0f, lo, hi, q);
}

/* Weighted LS scale for fixed q: Σ w x q / Σ w q². */
static float sym_ls(const float *x, const float *w, int n, const int *q)
{
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) a += (double)w[i] * x[i] * q[i], b += (double)w[i] * q[i] * q[i];
    return b > 0 ? (float)(a / b) : 0.0f;
}

/* Best d for x ≈ d·q, q ∈ [lo, hi] (d rounded to fp16 when f16). Returns the error; *d and
 * q[] (nearest levels for *d) out. */
static double sym_fit(const float *x, const float *w, int n, int lo, int hi, int f16, float *dout,
                      int *q)
{
    float amax = 0, xm = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), xm = x[i];
    int tq[256];
    double best = sym_err(x, w, n, 0, lo, hi, q);
    *dout = 0;
    if (amax == 0) return best;
    for (int side = 0; side < 2; side++)
        for (int k = 0; k <= 36; k++) {
            float t = (side ? (float)lo : (float)hi) * (0.55f + 0.0145f * k);
            float d = xm / t;
            for (int it = 0; it < 3; it++) {
                if (f16) d = f16r(d);
                double e = sym_err(x, w, n, d, lo, hi, tq);
                if (e < best) {
                    best = e, *dout = d;
                    memcpy(q, tq, (size_t)n * sizeof *q);
                }
                d = sym_ls(x, w, n, tq);
                if (d == 0) break;
            }
        }
    return best;
}

/* ---------------------------------------------------------------- asymmetric: x ≈ a·q + b */

/* x ≈ a·q + b, q ∈ [0, nmax]. */
static double asym_err(const float *x, const float *w, int n, float a, float b, int nmax, int *q)
{
    return lin_err(x, w, n, a, b, 0, nmax, q);
}

/* Weighted LS (a, b) for fixed q; b ≤ 0 enforced when bneg. */
static void asym_ls(const float *x, const float *w, int n, const int *q, int bneg, float *a, float *b)
{
    double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i], sq += (double)w[i] * q[i], sqq += (double)w[i] * q[i] * q[i];
        sx += (double)w[i] * x[i], sxq += (double)w[i] * x[i] * q[i];
    }
    double det = sw * sqq - sq * sq;
    double A = det > 0 ? (sw * sxq - sq * sx) / det : 0, B = det > 0 ? (sqq * sx - sq * sxq) / det : 0;
    if (det <= 0 || (bneg && B > 0)) {
        /* degenerate (all q equal) or a positive offset where only mins ≥ 0 are stored:
         * fall back to b = 0 (k-quants) or the weighted mean (q4_1/q5_1) and refit a */
        B = bneg || sw <= 0 ? 0 : sx / sw;
        A = sqq > 0 ? (sxq - B * sq) / sqq : 0;
    }
    *a = (float)A, *b = (float)B;
}

/* Best (a ≥ 0, b) for x ≈ a·q + b, q ∈ [0, nmax]; bneg: b ≤ 0 (k-quant mins); f16: a and b
 * are rounded to fp16. Returns the error; a, b, q out. */
static double asym_fit(const float *x, const float *w, int n, int nmax, int bneg, int f16,
                       float *aout, float *bout, int *q)
{
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
    if (bneg && mn > 0) mn = 0;
    int tq[256];
    *aout = 0, *bout = bneg ? 0 : (f16 ? f16r(mn) : mn);
    double best = asym_err(x, w, n, 0, *bout, nmax, q);
    if (mx <= mn) return best;
    for (int k = 0; k <= 24; k++) {
        float a = (mx - mn) / ((float)nmax * (0.8f + 0.02f * k)), b = mn;
        for (int it = 0; it < 3; it++) {
            if (f16) a = f16r(a), b = f16r(b);
            double e = asym_err(x, w, n, a, b, nmax, tq);
            if (e < best) {
                best = e, *aout = a, *bout = b;
                memcpy(q, tq, (size_t)n * sizeof *q);
            }
            asym_ls(x, w, n, tq, bneg, &a, &b);
            if (a <= 0) break;
        }
    }
    return best;
}

/* ---------------------------------------------------------------- 32-weight blocks */

static void pack_nibbles(uint8_t *qs, const int *q)
{
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | ((q[j + 16] & 15) << 4));
}

static uint32_t high_bits(const int *q)
{
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
    return h;
}

/* q4_0 / q5_0 (BITS 4 or 5): fp16 d, for 5 bits the plane of 5th bits, the low nibbles. */
static int sym_block(const float *x, const float *w, uint8_t *b, int bits)
{
    int q[32], h = 1 << (bits - 1);
    float d;
    sym_fit(x, w, 32, -h, h - 1, 1, &d, q);
    for (int j = 0; j < 32; j++) q[j] += h;
    ggf_wr16(b, ggf_f32_to_f16(d));
    if (bits == 5)
        ggf_wr32(b + 2, high_bits(q));
    pack_nibbles(b + (bits == 5 ? 6 : 2), q);
    return 0;
}

/* q4_1 / q5_1: fp16 scale and minimum, then as sym_block. */
static int asym_block(const float *x, const float *w, uint8_t *b, int bits)
{
    int q[32];
    float a, m;
    asym_fit(x, w, 32, (1 << bits) - 1, 0, 1, &a, &m, q);
    ggf_wr16(b, ggf_f32_to_f16(a));
    ggf_wr16(b + 2, ggf_f32_to_f16(m));
    if (bits == 5)
        ggf_wr32(b + 4, high_bits(q));
    pack_nibbles(b + (bits == 5 ? 8 : 4), q);
    return 0;
}

int ggf_q_q4_0(const float *x, const float *w, uint8_t *b) { return sym_block(x, w, b, 4); }
int ggf_q_q5_0(const float *x, const float *w, uint8_t *b) { return sym_block(x, w, b, 5); }
int ggf_q_q4_1(const float *x, const float *w, uint8_t *b) { return asym_block(x, w, b, 4); }
int ggf_q_q5_1(const float *x, const float *w, uint8_t *b) { return asym_block(x, w, b, 5); }

int ggf_q_q8_0(const float *x, const float *w, uint8_t *b)
{
    int q[32];
    float d;
    sym_fit(x, w, 32, -128, 127, 1, &d, q);
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)q[j];
    return 0;
}

/* ---------------------------------------------------------------- k-quants */

/* Two-level asymmetric (q2_K, q4_K, q5_K): nsub sub-blocks of len weights, x ≈ (d·sc)·q −
 * dmin·m with sc, m ∈ [0, smax], q ∈ [0, nmax]. Out: fp16 bits of d, dmin; sc[], m[], q[256]. */
static void kq_asym(const float *x, const float *w, int nsub, int len, int nmax, int smax,
                    uint16_t *dh, uint16_t *mh, int *sc, int *mi, int *q)
{
    float sa[16], sm[16], amax = 0, mmax = 0;
    int tq[256];
    for (int j = 0; j < nsub; j++) {
        float a, b;
        asym_fit(x + j * len, w + j * len, len, nmax, 1, 0, &a, &b, tq);
        sa[j] = a, sm[j] = -b;
        amax = fmaxf(amax, a), mmax = fmaxf(mmax, -b);
    }
    double best = INFINITY;
    *dh = 0, *mh = 0;
    memset(q, 0, sizeof(int) * (size_t)(nsub * len));
    for (int j = 0; j < nsub; j++) sc[j] = mi[j] = 0;
    for (int fd = 0; fd < 5; fd++)
        for (int fm = 0; fm < 4; fm++) {
            float d = f16r(amax / smax * (0.88f + 0.04f * fd));
            float dm = f16r(mmax / smax * (0.92f + 0.04f * fm));
            double tot = 0;
            int tsc[16], tmi[16];
            for (int j = 0; j < nsub && tot < best; j++) {
                int s0 = d > 0 ? NEAR(sa[j] / d) : 0, m0 = dm > 0 ? NEAR(sm[j] / dm) : 0;
                double bj = INFINITY;
                for (int ds = -1; ds <= 1; ds++)
                    for (int dmm = -1; dmm <= 1; dmm++) {
                        int s = clampi(s0 + ds, 0, smax), m = clampi(m0 + dmm, 0, smax);
                        float dl = d * (float)s, ml = dm * (float)m;
                        double e = asym_err(x + j * len, w + j * len, len, dl, -ml, nmax, NULL);
                        if (e < bj) bj = e, tsc[j] = s, tmi[j] = m;
                    }
                tot += bj;
            }
            if (tot < best) {
                best = tot;
                *dh = ggf_f32_to_f16(d), *mh = ggf_f32_to_f16(dm);
                memcpy(sc, tsc, sizeof(int) * (size_t)nsub);
                memcpy(mi, tmi, sizeof(int) * (size_t)nsub);
            }
        }
    float d = ggf_f16_to_f32(*dh), dm = ggf_f16_to_f32(*mh);
    for (int j = 0; j < nsub; j++)
        asym_err(x + j * len, w + j * len, len, d * (float)sc[j], -(dm * (float)mi[j]), nmax,
                 q + j * len);
}

/* Two-level symmetric (q3_K, q6_K): 16 sub-blocks of 16, x ≈ (d·sc)·q, sc ∈ [slo, shi],
 * q ∈ [lo, hi]. Out: fp16 bits of d, sc[16], q[256]. */
static void kq_sym(const float *x, const float *w, int slo, int shi, int lo, int hi, uint16_t *dh,
                   int *sc, int *q)
{
    float s[16], smx = 0, sm = 0;
    int tq[256];
    for (int j = 0; j < 16; j++) {
        sym_fit(x + 16 * j, w + 16 * j, 16, lo, hi, 0, &s[j], tq);
        if (fabsf(s[j]) > smx) smx = fabsf(s[j]), sm = s[j];
    }
    double best = INFINITY;
    *dh = 0;
    for (int j = 0; j < 16; j++) sc[j] = 0;
    for (int side = 0; side < 2 && smx > 0; side++)
        for (int f = 0; f < 12; f++) {
            float d = f16r(sm / ((side ? slo : shi) * (0.8f + 0.02f * f)));
            double tot = 0;
            int tsc[16];
            for (int j = 0; j < 16 && tot < best; j++) {
                int s0 = d != 0 ? NEAR(s[j] / d) : 0;
                double bj = INFINITY;
                for (int ds = -2; ds <= 2; ds++) {
                    int c = clampi(s0 + ds, slo, shi);
                    double e = sym_err(x + 16 * j, w + 16 * j, 16, d * (float)c, lo, hi, NULL);
                    if (e < bj) bj = e, tsc[j] = c;
                }
                tot += bj;
            }
            if (tot < best) {
                best = tot, *dh = ggf_f32_to_f16(d);
                memcpy(sc, tsc, sizeof tsc);
            }
        }
    float d = ggf_f16_to_f32(*dh);
    for (int j = 0; j < 16; j++) sym_err(x + 16 * j, w + 16 * j, 16, d * (float)sc[j], lo, hi, q + 16 * j);
}

int ggf_q_q2_K(const float *x, const float *w, uint8_t *b)
{
    int sc[16], mi[16], q[256];
    uint16_t dh, mh;
    kq_asym(x, w, 16, 16, 3, 15, &dh, &mh, sc, mi, q);
    memset(b, 0, 84);
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)(sc[j] | (mi[j] << 4));
    for (int i = 0; i < 256; i++) {
        int r = i % 128;
        b[16 + (i / 128) * 32 + r % 32] |= (uint8_t)(q[i] << (2 * (r / 32)));
    }
    ggf_wr16(b + 80, dh);
    ggf_wr16(b + 82, mh);
    return 0;
}

int ggf_q_q3_K(const float *x, const float *w, uint8_t *b)
{
    int sc[16], q[256];
    uint16_t dh;
    kq_sym(x, w, -32, 31, -4, 3, &dh, sc, q);
    memset(b, 0, 110);
    for (int i = 0; i < 256; i++) {
        int r = i % 128, v = q[i] + 4;
        b[32 + (i / 128) * 32 + r % 32] |= (uint8_t)((v & 3) << (2 * (r / 32)));
        if (v & 4) b[r % 32] |= (uint8_t)(1 << ((i / 128) * 4 + r / 32));
    }
    uint8_t *s = b + 96;
    for (int j = 0; j < 16; j++) {
        int v = sc[j] + 32;
        if (j < 8) s[j] |= (uint8_t)(v & 15);
        else s[j - 8] |= (uint8_t)((v & 15) << 4);
        s[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
    }
    ggf_wr16(b + 108, dh);
    return 0;
}

static void pack_k4_scales(uint8_t *s, const int *sc, const int *mi)
{
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= (uint8_t)(sc[j] & 63);
            s[j + 4] |= (uint8_t)(mi[j] & 63);
        } else {
            s[j + 4] = (uint8_t)((sc[j] & 15) | ((mi[j] & 15) << 4));
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((mi[j] >> 4) << 6);
        }
    }
}

static void q45_K(const float *x, const float *w, uint8_t *b, int five)
{
    int sc[8], mi[8], q[256];
    uint16_t dh, mh;
    kq_asym(x, w, 8, 32, five ? 31 : 15, 63, &dh, &mh, sc, mi, q);
    memset(b, 0, five ? 176 : 144);
    ggf_wr16(b, dh);
    ggf_wr16(b + 2, mh);
    pack_k4_scales(b + 4, sc, mi);
    uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
    for (int i = 0; i < 256; i++) {
        int sub = i / 32, l = i % 32;
        qs[(sub / 2) * 32 + l] |= (uint8_t)((q[i] & 15) << (4 * (sub % 2)));
        if (five && (q[i] & 16)) qh[l] |= (uint8_t)(1 << sub);
    }
}

int ggf_q_q4_K(const float *x, const float *w, uint8_t *b)
{
    q45_K(x, w, b, 0);
    return 0;
}

int ggf_q_q5_K(const float *x, const float *w, uint8_t *b)
{
    q45_K(x, w, b, 1);
    return 0;
}

int ggf_q_q6_K(const float *x, const float *w, uint8_t *b)
{
    int sc[16], q[256];
    uint16_t dh;
    kq_sym(x, w, -128, 127, -32, 31, &dh, sc, q);
    memset(b, 0, 210);
    for (int i = 0; i < 256; i++) {
        int n = i / 128, r = i % 128, k = r / 32, l = r % 32, v = q[i] + 32;
        b[n * 64 + l + (k & 1) * 32] |= (uint8_t)((v & 15) << (4 * (k >> 1)));
        b[128 + n * 32 + l] |= (uint8_t)((v >> 4) << (2 * k));
    }
    for (int j = 0; j < 16; j++) b[192 + j] = (uint8_t)(int8_t)sc[j];
    ggf_wr16(b + 208, dh);
    return 0;
}
