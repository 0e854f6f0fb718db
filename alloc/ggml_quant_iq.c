/* alloc/ggml_quant_iq.c — importance-weighted quantizers of the non-linear 4-bit formats
 * iq4_nl (32 weights, fp16 d, x̂ = d·k[q]) and iq4_xs (256 weights, fp16 d and 6-bit sub-block
 * scales, x̂ = (d·(ls − 32))·k[q]); k = the 16 levels of kvalues_iq4nl (ggml-common.h).
 *
 * The level table is asymmetric (−127 … 113), so both signs of the scale are searched. A scale
 * is tried from a ladder of starting points mapping the largest |x| onto either end of the
 * table, refined by nearest-level assignment and weighted least squares; iq4_xs then tries a
 * ladder of super-scales with the integer sub-scales next to the rounded ones.
 */
#include "ggml_int.h"

#include <math.h>

static float f16r(float v) { return ggf_f16_to_f32(ggf_f32_to_f16(v)); }

/* Nearest level index of v / d (d ≠ 0) in decoder arithmetic d·k[i]. */
static int nl_nearest(float v, float d)
{
    int bi = 0;
    float be = INFINITY;
    for (int i = 0; i < 16; i++) {
        float e = fabsf(v - d * (float)ggf_kvalues_iq4nl[i]);
        if (e < be) be = e, bi = i;
    }
    return bi;
}

static double nl_err(const float *x, const float *w, int n, float d, int *q)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        int l = d != 0 ? nl_nearest(x[i], d) : 8;
        float diff = x[i] - d * (float)ggf_kvalues_iq4nl[l];
        if (q) q[i] = l;
        e += (double)w[i] * diff * diff;
    }
    return e;
}

/* Best d for x ≈ d·k[q] (fp16-rounded when f16); error returned, *d and q[] out. */
static double nl_fit(const float *x, const float *w, int n, int f16, float *dout, int *q)
{
    float amax = 0, xm = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), xm = x[i];
    *dout = 0;
    double best = nl_err(x, w, n, 0, q);
    if (amax == 0) return best;
    int tq[32];
    for (int side = 0; side < 2; side++)
        for (int k = 0; k <= 30; k++) {
            float d = xm / ((side ? -127.0f : 113.0f) * (0.7f + 0.015f * k));
            for (int it = 0; it < 3; it++) {
                if (f16) d = f16r(d);
                double e = nl_err(x, w, n, d, tq);
                if (e < best) {
                    best = e, *dout = d;
                    memcpy(q, tq, (size_t)n * sizeof *q);
                }
                double a = 0, b = 0;
                for (int i = 0; i < n; i++) {
                    float v = (float)ggf_kvalues_iq4nl[tq[i]];
                    a += (double)w[i] * x[i] * v, b += (double)w[i] * v * v;
                }
                if (b <= 0) break;
                d = (float)(a / b);
            }
        }
    return best;
}

int ggf_q_iq4_nl(const float *x, const float *w, uint8_t *b)
{
    int q[32];
    float d;
    nl_fit(x, w, 32, 1, &d, q);
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(q[j] | (q[j + 16] << 4));
    return 0;
}

int ggf_q_iq4_xs(const float *x, const float *w, uint8_t *b)
{
    float s[8], smx = 0, sm = 0;
    int q[256], sc[8] = {0};
    for (int j = 0; j < 8; j++) {
        nl_fit(x + 32 * j, w + 32 * j, 32, 0, &s[j], q);
        if (fabsf(s[j]) > smx) smx = fabsf(s[j]), sm = s[j];
    }
    double best = INFINITY;
    float dbest = 0;
    for (int side = 0; side < 2 && smx > 0; side++)
        for (int f = 0; f < 12; f++) {
            float d = f16r(sm / ((side ? -32.0f : 31.0f) * (0.8f + 0.02f * f)));
            double tot = 0;
            int tsc[8];
            for (int j = 0; j < 8 && tot < best; j++) {
                int c0 = d != 0 ? (int)lrintf(s[j] / d) : 0;
                double bj = INFINITY;
                for (int dc = -2; dc <= 2; dc++) {
                    int c = c0 + dc < -32 ? -32 : c0 + dc > 31 ? 31 : c0 + dc;
                    double e = nl_err(x + 32 * j, w + 32 * j, 32, d * (float)c, NULL);
                    if (e < bj) bj = e, tsc[j] = c;
                }
                tot += bj;
            }
            if (tot < best) best = tot, dbest = d, memcpy(sc, tsc, sizeof tsc);
        }
    memset(b, 0, 136);
    ggf_wr16(b, ggf_f32_to_f16(dbest));
    uint16_t sh = 0;
    for (int j = 0; j < 8; j++) {
        int ls = sc[j] + 32;
        b[4 + j / 2] |= (uint8_t)((ls & 15) << (4 * (j % 2)));
        sh |= (uint16_t)((ls >> 4) << (2 * j));
        nl_err(x + 32 * j, w + 32 * j, 32, dbest * (float)sc[j], q + 32 * j);
        for (int k = 0; k < 16; k++)
            b[8 + 16 * j + k] = (uint8_t)(q[32 * j + k] | (q[32 * j + k + 16] << 4));
    }
    ggf_wr16(b + 2, sh);
    return 0;
}
