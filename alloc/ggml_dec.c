/* alloc/ggml_dec.c — bit-exact block decoders of ggml's formats.
 *
 * Layouts: ggml/src/ggml-common.h (struct block_*), arithmetic: dequantize_row_* in
 * ggml/src/ggml-quants.c of ggml-org/llama.cpp. Bit-exactness needs the same float operations
 * in the same order (e.g. q6_K is (d·sc)·q, iq2_xxs is ((d·(0.5+s))·0.25)·g·±1) and no FMA
 * contraction (the build is -std=c11, which keeps -ffp-contract=off).
 */
#include "ggml_int.h"

const int8_t ggf_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

static float h2f(const uint8_t *p) { return ggf_f16_to_f32(ggf_rd16(p)); }

/* ---------------------------------------------------------------- 32-weight blocks */

static void dec_q4_0(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void dec_q4_1(const uint8_t *b, float *y)
{
    const float d = h2f(b), m = h2f(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 0x0f) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

static void dec_q5_0(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const uint32_t qh = ggf_rd32(b + 2);
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
        y[j] = (float)(((b[6 + j] & 0x0f) | h0) - 16) * d;
        y[j + 16] = (float)(((b[6 + j] >> 4) | h1) - 16) * d;
    }
}

static void dec_q5_1(const uint8_t *b, float *y)
{
    const float d = h2f(b), m = h2f(b + 2);
    const uint32_t qh = ggf_rd32(b + 4);
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
        y[j] = (float)((b[8 + j] & 0x0f) | h0) * d + m;
        y[j + 16] = (float)((b[8 + j] >> 4) | h1) * d + m;
    }
}

static void dec_q8_0(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dec_iq4_nl(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)ggf_kvalues_iq4nl[b[2 + j] & 0x0f];
        y[j + 16] = d * (float)ggf_kvalues_iq4nl[b[2 + j] >> 4];
    }
}

/* ---------------------------------------------------------------- k-quants (256) */

static void dec_q2_K(const uint8_t *b, float *y)
{
    const uint8_t *sc = b, *q = b + 16;
    const float d = h2f(b + 80), dmin = h2f(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; half++) {
                const uint8_t s = sc[is++];
                const float dl = d * (float)(s & 0x0f), ml = dmin * (float)(s >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
}

/* q3_K's 16 six-bit scales: low nibbles in bytes 0..7, high pairs in bytes 8..11. */
static int q3k_scale(const uint8_t *s, int j)
{
    int lo = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
    int hi = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

static void dec_q3_K(const uint8_t *b, float *y)
{
    const uint8_t *hm = b, *q = b + 32, *sc = b + 96;
    const float d = h2f(b + 108);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1))
            for (int half = 0; half < 2; half++) {
                const float dl = d * (float)q3k_scale(sc, is++);
                for (int l = 0; l < 16; l++) {
                    int v = ((q[l + 16 * half] >> shift) & 3) - ((hm[l + 16 * half] & m) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
}

void ggf_k4_scale_min(int j, const uint8_t *q, int *d, int *m);
void ggf_k4_scale_min(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void dec_q45_K(const uint8_t *b, float *y, int five)
{
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *q = five ? b + 48 : b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        int s, m;
        ggf_k4_scale_min(is, sc, &s, &m);
        const float d1 = d * (float)s, m1 = dmin * (float)m;
        ggf_k4_scale_min(is + 1, sc, &s, &m);
        const float d2 = d * (float)s, m2 = dmin * (float)m;
        const int u1 = 1 << is, u2 = 2 << is;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((q[l] & 0x0f) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
    }
}

static void dec_q4_K(const uint8_t *b, float *y) { dec_q45_K(b, y, 0); }
static void dec_q5_K(const uint8_t *b, float *y) { dec_q45_K(b, y, 1); }

static void dec_q6_K(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = h2f(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

static void dec_iq4_xs(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const int sh = ggf_rd16(b + 2);
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int ib = 0; ib < 8; ib++, y += 32, qs += 16) {
        int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((sh >> (2 * ib)) & 3) << 4);
        const float dl = d * (float)(ls - 32);
        for (int j = 0; j < 16; j++) {
            y[j] = dl * (float)ggf_kvalues_iq4nl[qs[j] & 0x0f];
            y[j + 16] = dl * (float)ggf_kvalues_iq4nl[qs[j] >> 4];
        }
    }
}

/* ---------------------------------------------------------------- codebook types */

/* y[j] = (dl · g_j) · (±1) with the sign from bit j of s: llama.cpp's operation order. */
static void put8(float *y, float dl, uint64_t g, int s)
{
    for (int j = 0; j < 8; j++)
        y[j] = dl * (float)ggf_gbyte64(g, j) * ((s >> j) & 1 ? -1.f : 1.f);
}

static void dec_iq2_xxs(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *a = b + 2 + 8 * ib;
        const uint32_t s32 = ggf_rd32(a + 4);
        const float db = d * (0.5f + (float)(s32 >> 28)) * 0.25f;
        for (int l = 0; l < 4; l++, y += 8)
            put8(y, db, ggf_grid_iq2xxs[a[l]], ggf_ksigns((int)(s32 >> (7 * l)) & 127));
    }
}

static void dec_iq2_xs(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    for (int ib = 0; ib < 8; ib++) {
        const int s = b[66 + ib];
        const float db0 = d * (0.5f + (float)(s & 0x0f)) * 0.25f;
        const float db1 = d * (0.5f + (float)(s >> 4)) * 0.25f;
        for (int l = 0; l < 4; l++, y += 8) {
            int q = ggf_rd16(b + 2 + 2 * (4 * ib + l));
            put8(y, l < 2 ? db0 : db1, ggf_grid_iq2xs[q & 511], ggf_ksigns(q >> 9));
        }
    }
}

static void dec_iq2_s(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *sc = b + 74;
    for (int ib = 0; ib < 8; ib++) {
        const float db0 = d * (0.5f + (float)(sc[ib] & 0x0f)) * 0.25f;
        const float db1 = d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f;
        for (int l = 0; l < 4; l++, y += 8) {
            int idx = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
            put8(y, l < 2 ? db0 : db1, ggf_grid_iq2s[idx], signs[4 * ib + l]);
        }
    }
}

/* Two 4-magnitude iq3 grid entries g1, g2 make 8 weights. */
static void put44(float *y, float dl, uint32_t g1, uint32_t g2, int s)
{
    for (int j = 0; j < 4; j++) {
        y[j] = dl * (float)ggf_gbyte32(g1, j) * ((s >> j) & 1 ? -1.f : 1.f);
        y[j + 4] = dl * (float)ggf_gbyte32(g2, j) * ((s >> (j + 4)) & 1 ? -1.f : 1.f);
    }
}

static void dec_iq3_xxs(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const uint8_t *qs = b + 2, *ss = b + 66;
    for (int ib = 0; ib < 8; ib++, qs += 8) {
        const uint32_t a = ggf_rd32(ss + 4 * ib);
        const float db = d * (0.5f + (float)(a >> 28)) * 0.5f;
        for (int l = 0; l < 4; l++, y += 8)
            put44(y, db, ggf_grid_iq3xxs[qs[2 * l]], ggf_grid_iq3xxs[qs[2 * l + 1]],
                  ggf_ksigns((int)(a >> (7 * l)) & 127));
    }
}

static void dec_iq3_s(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *sc = b + 106;
    for (int ib = 0; ib < 8; ib++, qs += 8, signs += 4) {
        const int s = (sc[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        const float db = d * (float)(1 + 2 * s);
        for (int l = 0; l < 4; l++, y += 8) {
            int i1 = qs[2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
            int i2 = qs[2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
            put44(y, db, ggf_grid_iq3s[i1], ggf_grid_iq3s[i2], signs[l]);
        }
    }
}

/* y[j] = dl · (g_j + delta), g_j ∈ {−1, 0, 1} (int8 bytes of an iq1s grid entry). */
static void put1(float *y, float dl, uint64_t g, float delta)
{
    for (int j = 0; j < 8; j++) y[j] = dl * ((float)(int8_t)ggf_gbyte64(g, j) + delta);
}

static void dec_iq1_s(const uint8_t *b, float *y)
{
    const float d = h2f(b);
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++, qs += 4) {
        const int qh = ggf_rd16(b + 34 + 2 * ib);
        const float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
        const float delta = qh & 0x8000 ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA;
        for (int l = 0; l < 4; l++, y += 8)
            put1(y, dl, ggf_grid_iq1s[qs[l] | (((qh >> (3 * l)) & 7) << 8)], delta);
    }
}

uint16_t ggf_iq1m_scale_bits(const uint8_t *b)
{
    const uint8_t *s = b + 48;
    int s0 = ggf_rd16(s), s1 = ggf_rd16(s + 2), s2 = ggf_rd16(s + 4), s3 = ggf_rd16(s + 6);
    return (uint16_t)((s0 >> 12) | ((s1 >> 8) & 0x00f0) | ((s2 >> 4) & 0x0f00) | (s3 & 0xf000));
}

static void dec_iq1_m(const uint8_t *b, float *y)
{
    const float d = ggf_f16_to_f32(ggf_iq1m_scale_bits(b));
    const uint8_t *qs = b, *qh = b + 32;
    for (int ib = 0; ib < 8; ib++, qs += 4, qh += 2) {
        const int sc = ggf_rd16(b + 48 + 2 * (ib / 2));
        const float dl1 = d * (float)(2 * ((sc >> (6 * (ib % 2))) & 7) + 1);
        const float dl2 = d * (float)(2 * ((sc >> (6 * (ib % 2) + 3)) & 7) + 1);
        int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                      qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
        float dt[4] = {qh[0] & 0x08 ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA,
                       qh[0] & 0x80 ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA,
                       qh[1] & 0x08 ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA,
                       qh[1] & 0x80 ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA};
        for (int l = 0; l < 4; l++, y += 8) put1(y, l < 2 ? dl1 : dl2, ggf_grid_iq1s[idx[l]], dt[l]);
    }
}

/* ---------------------------------------------------------------- plain floats */

static void dec_f32(const uint8_t *b, float *y)
{
    uint32_t u = ggf_rd32(b);
    memcpy(y, &u, 4);
}
static void dec_f16(const uint8_t *b, float *y) { *y = h2f(b); }
static void dec_bf16(const uint8_t *b, float *y)
{
    uint32_t u = (uint32_t)ggf_rd16(b) << 16;
    memcpy(y, &u, 4);
}

static const ggf_dec_fn DEC[GGF_COUNT] = {
    [GGF_Q4_0] = dec_q4_0,       [GGF_Q4_1] = dec_q4_1,       [GGF_Q5_0] = dec_q5_0,
    [GGF_Q5_1] = dec_q5_1,       [GGF_Q8_0] = dec_q8_0,       [GGF_Q2_K] = dec_q2_K,
    [GGF_Q3_K] = dec_q3_K,       [GGF_Q4_K] = dec_q4_K,       [GGF_Q5_K] = dec_q5_K,
    [GGF_Q6_K] = dec_q6_K,       [GGF_IQ2_XXS] = dec_iq2_xxs, [GGF_IQ2_XS] = dec_iq2_xs,
    [GGF_IQ3_XXS] = dec_iq3_xxs, [GGF_IQ1_S] = dec_iq1_s,     [GGF_IQ4_NL] = dec_iq4_nl,
    [GGF_IQ3_S] = dec_iq3_s,     [GGF_IQ2_S] = dec_iq2_s,     [GGF_IQ4_XS] = dec_iq4_xs,
    [GGF_IQ1_M] = dec_iq1_m,     [GGF_F32] = dec_f32,         [GGF_F16] = dec_f16,
    [GGF_BF16] = dec_bf16,
};

void ggf_decode_block(ggf_type t, const uint8_t *b, float *y) { DEC[t](b, y); }
