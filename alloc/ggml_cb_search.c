/* alloc/ggml_cb_search.c — exact group search of the codebook quantizers (ggml_cb.h).
 *
 * A group's weighted error under an entry is a sum of per-weight costs, so it splits into the
 * cost of the entry's head pattern plus that of its tail (ggml_cb.h, cb_idx). Every head's
 * cost is computed once per group (81 or 64 values from a small table of per-weight, per-level
 * costs); a bucket is scanned only when its head cost plus the cheapest tail cost could still
 * reach the best error found so far, starting with the cheapest head. The pruning bound never
 * exceeds an entry's true cost (float rounding is monotone), and ties go to the lowest entry
 * index, so the result is the one an exhaustive scan in entry order gives, for a fraction of
 * the work: the searched entries are the few near the unconstrained per-weight optimum.
 * Written for this module; llama.cpp's quantizers search neighbour lists instead.
 */
#include "ggml_cb.h"

#include <math.h>

/* min of two non-NaN floats (fminf is a libm call at -O2) */
static inline float fmin2(float a, float b) { return b < a ? b : a; }

/* Level of a grid byte: G8 magnitudes 8, 25, 43 → 0..2; G1 values −1, 0, 1 → 0..2; G44
 * magnitudes (iq3_xxs 4, 12, …, 52, 62; iq3_s 1, 3, …, 15) → 0..7. */
static int cb_level(const cb_desc *c, int byte)
{
    switch (c->kind) {
    case CB_G1: return (int)(int8_t)byte + 1;
    case CB_G8: return byte == 8 ? 0 : byte == 25 ? 1 : 2;
    default: return c->t == GGF_IQ3_S ? (byte - 1) / 2 : byte == 62 ? 7 : (byte - 4) / 8;
    }
}

/* Grid byte of level l (the inverse of cb_level). */
static int cb_byte(const cb_desc *c, int l)
{
    static const int mag2[3] = {8, 25, 43};
    switch (c->kind) {
    case CB_G1: return l - 1;
    case CB_G8: return mag2[l];
    default: return c->t == GGF_IQ3_S ? 2 * l + 1 : l == 7 ? 62 : 8 * l + 4;
    }
}

void cb_idx_build(const cb_desc *c, cb_idx *ix)
{
    uint8_t head[2048], tail[2048];
    int cnt[82] = {0};
    ix->nh = c->kind == CB_G44 ? 64 : 81;
    for (int e = 0; e < c->nent; e++) {
        int l[8];
        if (c->kind == CB_G44) {
            for (int j = 0; j < 4; j++) l[j] = cb_level(c, ggf_gbyte32(cb_g4(c, e), j));
            head[e] = (uint8_t)(l[0] + 8 * l[1]), tail[e] = (uint8_t)(l[2] + 8 * l[3]);
        } else {
            uint64_t g = c->kind == CB_G1 ? ggf_grid_iq1s[e] : cb_g8(c, e);
            for (int j = 0; j < 8; j++) l[j] = cb_level(c, ggf_gbyte64(g, j));
            head[e] = (uint8_t)(l[0] + 3 * l[1] + 9 * l[2] + 27 * l[3]);
            tail[e] = (uint8_t)(l[4] + 3 * l[5] + 9 * l[6] + 27 * l[7]);
        }
        cnt[head[e] + 1]++;
    }
    ix->start[0] = 0;
    for (int h = 0; h < ix->nh; h++) ix->start[h + 1] = (uint16_t)(ix->start[h] + cnt[h + 1]);
    uint16_t pos[82];
    memcpy(pos, ix->start, sizeof pos);
    for (int e = 0; e < c->nent; e++) { /* stable: entry order within a bucket */
        int k = pos[head[e]]++;
        ix->tail[k] = tail[e];
        ix->ent[k] = (uint16_t)e;
    }
}

/* Costs of the 81 patterns of 4 weights over 3 levels: p = l0 + 3 l1 + 9 l2 + 27 l3 costs
 * c[0][l0] + c[1][l1] + c[2][l2] + c[3][l3], added in that order in float. */
static void pat81(float c[][3], float out[81])
{
    float t9[9], t27[27];
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 3; a++) t9[a + 3 * b] = c[0][a] + c[1][b];
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 9; a++) t27[a + 9 * b] = t9[a] + c[2][b];
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 27; a++) out[a + 27 * b] = t27[a] + c[3][b];
}

/* The cheapest of the 4 weights' values of each pattern. */
static void pat81_min(float f[][3], float out[81])
{
    float t9[9], t27[27];
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 3; a++) t9[a + 3 * b] = fmin2(f[0][a], f[1][b]);
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 9; a++) t27[a + 9 * b] = fmin2(t9[a], f[2][b]);
    for (int b = 0; b < 3; b++)
        for (int a = 0; a < 27; a++) out[a + 27 * b] = fmin2(t27[a], f[3][b]);
}

/* Best entry of a G8/G1 grid at cost (double)hc[0][head] + hc[1][tail], plus, when hf is
 * given, the cheaper of the two halves' cheapest flips; *be the entry. */
static double search81(const cb_idx *ix, float hc[2][81], float (*hf)[81], int *be)
{
    float m1 = INFINITY;
    int h0 = 0;
    for (int p = 0; p < 81; p++) {
        m1 = fmin2(m1, hc[1][p]);
        if (hc[0][p] < hc[0][h0]) h0 = p;
    }
    double best = INFINITY;
    *be = 0;
    for (int it = -1; it < 81; it++) { /* the cheapest head first, then the others */
        int h = it < 0 ? h0 : it;
        if (it == h0 || (double)hc[0][h] + m1 > best) continue;
        for (int k = ix->start[h]; k < ix->start[h + 1]; k++) {
            int t = ix->tail[k], e = ix->ent[k];
            double s = (double)hc[0][h] + hc[1][t];
            if (hf) s += fmin2(hf[0][h], hf[1][t]);
            if (s < best || (s == best && e < *be)) best = s, *be = e;
        }
    }
    return best;
}

/* One 4-magnitude entry of a G44 group (weights off..off+3): the best entry without a flip
 * (b0, e0) and, when need1, with its cheapest single flip (b1, e1, flip position f1). c[j][l]:
 * cost of level l with weight j's own sign, f[j][l]: the extra cost of flipping it. Costs are
 * added in weight order in double. */
static void half44(const cb_idx *ix, float c[8][8], float f[8][8], int off, int need1,
                   double *b0, int *e0, double *b1, int *e1, int *f1)
{
    double A[64];
    float fa[64], m2 = INFINITY, m3 = INFINITY;
    int pa[64], h0 = 0;
    for (int l = 0; l < 8; l++) m2 = fmin2(m2, c[off + 2][l]), m3 = fmin2(m3, c[off + 3][l]);
    for (int l1 = 0; l1 < 8; l1++)
        for (int l0 = 0; l0 < 8; l0++) {
            int h = l0 + 8 * l1;
            A[h] = (double)c[off][l0] + c[off + 1][l1];
            fa[h] = f[off][l0], pa[h] = 0;
            if (f[off + 1][l1] < fa[h]) fa[h] = f[off + 1][l1], pa[h] = 1;
            if (A[h] < A[h0]) h0 = h;
        }
    *b0 = *b1 = INFINITY;
    *e0 = *e1 = *f1 = 0;
    for (int it = -1; it < 64; it++) {
        int h = it < 0 ? h0 : it;
        if (it == h0 || (A[h] + m2) + m3 > (need1 ? *b1 : *b0)) continue;
        for (int k = ix->start[h]; k < ix->start[h + 1]; k++) {
            int t = ix->tail[k], e = ix->ent[k], l2 = t & 7, l3 = t >> 3;
            double s = A[h] + c[off + 2][l2];
            s += c[off + 3][l3];
            if (s < *b0 || (s == *b0 && e < *e0)) *b0 = s, *e0 = e;
            if (!need1) continue;
            float mf = fa[h];
            int fj = pa[h];
            if (f[off + 2][l2] < mf) mf = f[off + 2][l2], fj = 2;
            if (f[off + 3][l3] < mf) mf = f[off + 3][l3], fj = 3;
            if (s + mf < *b1 || (s + mf == *b1 && e < *e1)) *b1 = s + mf, *e1 = e, *f1 = off + fj;
        }
    }
}

double cb_grp_mag(const cb_desc *c, const cb_idx *ix, const float *x, const float *w, float dl,
                  cb_code *out)
{
    int nl = c->kind == CB_G44 ? 8 : 3, neg = 0, sg = 0;
    float c0[8][8], fl[8][8];
    for (int j = 0; j < 8; j++) {
        float ax = fabsf(x[j]);
        for (int l = 0; l < nl; l++) {
            float v = (float)cb_byte(c, l), r = ax - dl * v;
            c0[j][l] = w[j] * r * r;
            fl[j][l] = 4.0f * w[j] * ax * dl * v;
        }
        if (x[j] < 0) neg++, sg |= 1 << j;
    }
    int odd = c->parity && (neg & 1);
    if (c->kind == CB_G44) {
        double b0, b1, b0b, b1b;
        int e0, e1, f1, e0b, e1b, f1b;
        half44(ix, c0, fl, 0, odd, &b0, &e0, &b1, &e1, &f1);
        half44(ix, c0, fl, 4, odd, &b0b, &e0b, &b1b, &e1b, &f1b);
        if (!odd) {
            out->e = e0, out->e2 = e0b, out->s = sg;
            return b0 + b0b;
        }
        if (b1 + b0b <= b0 + b1b) {
            out->e = e1, out->e2 = e0b, out->s = sg ^ (1 << f1);
            return b1 + b0b;
        }
        out->e = e0, out->e2 = e1b, out->s = sg ^ (1 << f1b);
        return b0 + b1b;
    }
    float c3[8][3], f3[8][3], hc[2][81], hf[2][81];
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 3; l++) c3[j][l] = c0[j][l], f3[j][l] = fl[j][l];
    pat81(c3, hc[0]);
    pat81(c3 + 4, hc[1]);
    if (odd) pat81_min(f3, hf[0]), pat81_min(f3 + 4, hf[1]);
    int be;
    double best = search81(ix, hc, odd ? hf : NULL, &be);
    out->e = be, out->e2 = 0, out->s = sg;
    if (odd) { /* the flip of the chosen entry: its cheapest weight */
        uint64_t g = cb_g8(c, be);
        float mf = INFINITY;
        int fj = 0;
        for (int j = 0; j < 8; j++) {
            float fv = f3[j][cb_level(c, ggf_gbyte64(g, j))];
            if (fv < mf) mf = fv, fj = j;
        }
        out->s = sg ^ (1 << fj);
    }
    return best;
}

double cb_grp_one(const cb_idx *ix, const float *x, const float *w, float dl, int sneg,
                  cb_code *out)
{
    float c[8][3], hc[2][81];
    const float delta = sneg ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA;
    for (int j = 0; j < 8; j++)
        for (int g = 0; g < 3; g++) {
            float r = x[j] - dl * ((float)(g - 1) + delta);
            c[j][g] = w[j] * r * r;
        }
    pat81(c, hc[0]);
    pat81(c + 4, hc[1]);
    int be;
    double best = search81(ix, hc, NULL, &be);
    out->e = be, out->e2 = 0, out->s = sneg;
    return best;
}
