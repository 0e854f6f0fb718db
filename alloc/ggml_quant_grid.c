/* alloc/ggml_quant_grid.c — importance-weighted quantizers of ggml's codebook formats:
 * iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s (grid magnitudes × signs) and iq1_s, iq1_m (grid
 * values in {−1, 0, 1} plus a ±1/8 shift).
 *
 * A super-block of 256 weights has one fp16 scale d and per sub-block (16 or 32 weights) an
 * integer level l giving the sub-block scale dl(d, l) exactly as the decoder computes it.
 * Groups of 8 weights are coded by one grid entry (or two 4-entries for iq3) and signs.
 *
 * Search (written for this module, exhaustive where llama.cpp uses neighbour lists):
 *  - group: every grid entry is scored from per-weight cost tables (cost of each magnitude with
 *    the weight's own sign, and of flipping it); with a parity constraint on the signs
 *    (iq2_xxs, iq2_xs, iq3_xxs store 7 sign bits, the 8th makes the count of minus signs even)
 *    an odd natural sign count pays the cheapest flip;
 *  - sub-block: a float scale from a ladder of starting points plus one least-squares refit;
 *  - super-block: a ladder of d around the largest sub-block scale, and per sub-block the three
 *    levels nearest to its float scale; the combination of least weighted error wins.
 */
#include "ggml_int.h"

#include <math.h>

typedef enum { CB_G8, CB_G44, CB_G1 } cb_kind;

typedef struct {
    ggf_type t;
    cb_kind kind;
    int sub;     /* weights per sub-block scale */
    int nlev;    /* levels of the sub-block scale */
    int nent;    /* grid entries */
    int parity;  /* 7 stored sign bits, even count of minus signs */
    float gmax;  /* largest grid magnitude */
} cb_desc;

static const cb_desc CB_IQ2_XXS = {GGF_IQ2_XXS, CB_G8, 32, 16, 256, 1, 43};
static const cb_desc CB_IQ2_XS = {GGF_IQ2_XS, CB_G8, 16, 16, 512, 1, 43};
static const cb_desc CB_IQ2_S = {GGF_IQ2_S, CB_G8, 16, 16, 1024, 0, 43};
static const cb_desc CB_IQ3_XXS = {GGF_IQ3_XXS, CB_G44, 32, 16, 256, 1, 62};
static const cb_desc CB_IQ3_S = {GGF_IQ3_S, CB_G44, 32, 16, 512, 0, 15};
static const cb_desc CB_IQ1_S = {GGF_IQ1_S, CB_G1, 32, 8, 2048, 0, 1.125f};
static const cb_desc CB_IQ1_M = {GGF_IQ1_M, CB_G1, 16, 8, 2048, 0, 1.125f};

/* Sub-block scale in the decoder's arithmetic. */
static float cb_dl(const cb_desc *c, float d, int l)
{
    switch (c->t) {
    case GGF_IQ3_XXS: return d * (0.5f + (float)l) * 0.5f;
    case GGF_IQ3_S: return d * (float)(1 + 2 * l);
    case GGF_IQ1_S: case GGF_IQ1_M: return d * (float)(2 * l + 1);
    default: return d * (0.5f + (float)l) * 0.25f;
    }
}

static uint64_t g8(const cb_desc *c, int e)
{
    return c->t == GGF_IQ2_XXS ? ggf_grid_iq2xxs[e] : c->t == GGF_IQ2_XS ? ggf_grid_iq2xs[e]
                                                                          : ggf_grid_iq2s[e];
}

static uint32_t g4(const cb_desc *c, int e)
{
    return c->t == GGF_IQ3_XXS ? ggf_grid_iq3xxs[e] : ggf_grid_iq3s[e];
}

/* Per-entry half patterns of the 8-wide grids (G8, G1): each weight's value is one of three
 * levels (iq2: magnitudes 8, 25, 43; iq1: −1, 0, 1), so a half of 4 weights is one of 81
 * patterns and an entry's cost is the sum of two precomputed half costs. Built once per
 * super-block call from the grid (cheap next to the searches it serves). */
typedef struct {
    uint8_t p[2][2048];
} cb_pat;

static int level3(const cb_desc *c, int byte)
{
    if (c->kind == CB_G1) return (int)(int8_t)byte + 1;
    return byte == 8 ? 0 : byte == 25 ? 1 : 2;
}

static int level_byte(const cb_desc *c, int l)
{
    static const int mag[3] = {8, 25, 43};
    return c->kind == CB_G1 ? l - 1 : mag[l];
}

static void cb_pat_build(const cb_desc *c, cb_pat *pt)
{
    for (int e = 0; e < c->nent; e++) {
        uint64_t g = c->kind == CB_G1 ? ggf_grid_iq1s[e] : (c->t == GGF_IQ2_XXS ? ggf_grid_iq2xxs[e]
                                                           : c->t == GGF_IQ2_XS ? ggf_grid_iq2xs[e] : ggf_grid_iq2s[e]);
        for (int h = 0; h < 2; h++) {
            int v = 0;
            for (int j = 3; j >= 0; j--) v = v * 3 + level3(c, (int)((g >> (8 * (4 * h + j))) & 0xff));
            pt->p[h][e] = (uint8_t)v;
        }
    }
}

/* A group's code: grid index (for G44 two indices, e2 the second), sign bits (bit j = minus),
 * or for G1 the shift sign (1 = −1/8). */
typedef struct {
    int e, e2, s;
} cb_code;

/* ---------------------------------------------------------------- group search */

/* Best entry of n-magnitude grid half (n = 8 or 4 weights). c0[j][v]: cost of magnitude v with
 * x_j's sign; fl[j][v]: extra cost of flipping it. Returns the best cost without a flip in
 * b0, e0 and with the cheapest single flip in b1, e1 (flip position in f1). */
static void half_search(const cb_desc *c, int n, int off, float c0[8][64], float fl[8][64],
                        double *b0, int *e0, double *b1, int *e1, int *f1)
{
    *b0 = *b1 = INFINITY;
    *e0 = *e1 = *f1 = 0;
    for (int e = 0; e < c->nent; e++) {
        uint64_t g = n == 8 ? g8(c, e) : g4(c, e);
        double s = 0;
        float mf = INFINITY;
        int fj = 0;
        for (int j = 0; j < n; j++) {
            int v = (int)((g >> (8 * j)) & 63);
            s += c0[off + j][v];
            if (fl[off + j][v] < mf) mf = fl[off + j][v], fj = j;
        }
        if (s < *b0) *b0 = s, *e0 = e;
        if (s + mf < *b1) *b1 = s + mf, *e1 = e, *f1 = off + fj;
    }
}

/* Magnitude grids with signs: best code of 8 weights at scale dl > 0. */
static double grp_mag(const cb_desc *c, const cb_pat *pt, const float *x, const float *w, float dl,
                      cb_code *out)
{
    float c0[8][64], fl[8][64];
    int neg = 0, sg = 0;
    for (int j = 0; j < 8; j++) {
        float ax = fabsf(x[j]);
        for (int v = 0; v < 64; v++) {
            float r = ax - dl * (float)v;
            c0[j][v] = w[j] * r * r;
            fl[j][v] = 4.0f * w[j] * ax * dl * (float)v;
        }
        if (x[j] < 0) neg++, sg |= 1 << j;
    }
    int odd = c->parity && (neg & 1);
    double b0, b1, b0b, b1b;
    int e0, e1, f1, e0b, e1b, f1b;
    if (c->kind == CB_G8) {
        /* half costs of the 81 patterns: sum of the weights' costs, cheapest flip */
        float hc[2][81], hf[2][81];
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 81; p++) {
                float sum = 0, mf = INFINITY;
                for (int j = 0, q = p; j < 4; j++, q /= 3) {
                    int v = level_byte(c, q % 3);
                    sum += c0[4 * h + j][v];
                    mf = fminf(mf, fl[4 * h + j][v]);
                }
                hc[h][p] = sum, hf[h][p] = mf;
            }
        double best = INFINITY;
        int be = 0;
        for (int e = 0; e < c->nent; e++) {
            int p0 = pt->p[0][e], p1 = pt->p[1][e];
            double s = (double)hc[0][p0] + hc[1][p1];
            if (odd) s += fminf(hf[0][p0], hf[1][p1]);
            if (s < best) best = s, be = e;
        }
        out->e = be, out->e2 = 0, out->s = sg;
        if (odd) { /* the flip of the chosen entry: its cheapest weight */
            uint64_t g = g8(c, be);
            float mf = INFINITY;
            int fj = 0;
            for (int j = 0; j < 8; j++) {
                float f = fl[j][(g >> (8 * j)) & 63];
                if (f < mf) mf = f, fj = j;
            }
            out->s = sg ^ (1 << fj);
        }
        return best;
    }
    half_search(c, 4, 0, c0, fl, &b0, &e0, &b1, &e1, &f1);
    half_search(c, 4, 4, c0, fl, &b0b, &e0b, &b1b, &e1b, &f1b);
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

/* iq1 grids: x̂_j = dl·(g_j + δ), g ∈ {−1, 0, 1}, δ = ±1/8 (sneg: δ < 0). */
static double grp_one(const cb_pat *pt, const float *x, const float *w, float dl, int sneg, cb_code *out)
{
    float c[8][3], hc[2][81];
    const float delta = sneg ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA;
    for (int j = 0; j < 8; j++)
        for (int g = 0; g < 3; g++) {
            float r = x[j] - dl * ((float)(g - 1) + delta);
            c[j][g] = w[j] * r * r;
        }
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 81; p++) {
            float sum = 0;
            for (int j = 0, q = p; j < 4; j++, q /= 3) sum += c[4 * h + j][q % 3];
            hc[h][p] = sum;
        }
    double best = INFINITY;
    out->e = 0, out->e2 = 0, out->s = sneg;
    for (int e = 0; e < 2048; e++) {
        double s = (double)hc[0][pt->p[0][e]] + hc[1][pt->p[1][e]];
        if (s < best) best = s, out->e = e;
    }
    return best;
}

/* Unit values (x̂ / dl) of a code. */
static void cb_unit(const cb_desc *c, const cb_code *k, float v[8])
{
    for (int j = 0; j < 8; j++) {
        if (c->kind == CB_G1) {
            v[j] = (float)(int8_t)(ggf_grid_iq1s[k->e] >> (8 * j)) + (k->s ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA);
            continue;
        }
        int m = c->kind == CB_G8 ? ggf_gbyte64(g8(c, k->e), j)
                                 : ggf_gbyte32(g4(c, j < 4 ? k->e : k->e2), j % 4);
        v[j] = (k->s >> j) & 1 ? -(float)m : (float)m;
    }
}

/* Best codes of one sub-block at scale dl; returns the weighted error. */
static double cb_sub(const cb_desc *c, const cb_pat *pt, const float *x, const float *w, float dl, cb_code *k)
{
    int ng = c->sub / 8;
    if (c->kind != CB_G1) {
        double e = 0;
        for (int g = 0; g < ng; g++) e += grp_mag(c, pt, x + 8 * g, w + 8 * g, dl, &k[g]);
        return e;
    }
    if (c->t == GGF_IQ1_M) { /* one shift per group of 8 */
        double e = 0;
        for (int g = 0; g < ng; g++) {
            cb_code a, b;
            double ea = grp_one(pt, x + 8 * g, w + 8 * g, dl, 0, &a);
            double eb = grp_one(pt, x + 8 * g, w + 8 * g, dl, 1, &b);
            k[g] = ea <= eb ? a : b;
            e += ea <= eb ? ea : eb;
        }
        return e;
    }
    double best = INFINITY; /* iq1_s: one shift for the whole sub-block of 32 */
    for (int sn = 0; sn < 2; sn++) {
        cb_code t[4];
        double e = 0;
        for (int g = 0; g < ng; g++) e += grp_one(pt, x + 8 * g, w + 8 * g, dl, sn, &t[g]);
        if (e < best) best = e, memcpy(k, t, sizeof t);
    }
    return best;
}

/* Float scale of a sub-block: ladder around amax/gmax, then a weighted LS refit. */
static float cb_sub_scale(const cb_desc *c, const cb_pat *pt, const float *x, const float *w)
{
    float amax = 0;
    for (int i = 0; i < c->sub; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (amax == 0) return 0;
    cb_code k[4], kb[4];
    double best = INFINITY;
    float sb = 0;
    for (int f = 0; f < 8; f++) {
        float s = amax / c->gmax * (0.55f + 0.1f * f);
        double e = cb_sub(c, pt, x, w, s, k);
        if (e < best) best = e, sb = s, memcpy(kb, k, sizeof k);
    }
    double a = 0, b = 0;
    for (int g = 0; g < c->sub / 8; g++) {
        float v[8];
        cb_unit(c, &kb[g], v);
        for (int j = 0; j < 8; j++) a += (double)w[8 * g + j] * x[8 * g + j] * v[j], b += (double)w[8 * g + j] * v[j] * v[j];
    }
    if (b > 0 && a > 0) {
        float s = (float)(a / b);
        if (cb_sub(c, pt, x, w, s, k) < best) sb = s;
    }
    return sb;
}

/* Super-block search: *d (fp16-exact), levels lev[nsub], codes k[32]. */
static int cb_quant(const cb_desc *c, const float *x, const float *w, float *dout, int *lev, cb_code *k)
{
    cb_pat *pt = NULL;
    if (c->kind != CB_G44 && !(pt = vl_malloc(sizeof *pt))) return VL_ENOMEM;
    if (pt) cb_pat_build(c, pt);
    int nsub = 256 / c->sub, ng = c->sub / 8;
    float s[16], smax = 0;
    for (int j = 0; j < nsub; j++) {
        s[j] = cb_sub_scale(c, pt, x + c->sub * j, w + c->sub * j);
        smax = fmaxf(smax, s[j]);
    }
    *dout = 0;
    memset(lev, 0, sizeof(int) * (size_t)nsub);
    for (int j = 0; j < nsub; j++) cb_sub(c, pt, x + c->sub * j, w + c->sub * j, 0, k + ng * j);
    if (smax == 0) {
        vl_free(pt);
        return 0;
    }
    double best = INFINITY;
    float top = cb_dl(c, 1.0f, c->nlev - 1);
    for (int f = 0; f < 5; f++) {
        float d = ggf_f16_to_f32(ggf_f32_to_f16(smax / top * (0.9f + 0.05f * f)));
        if (d <= 0) continue;
        double tot = 0;
        int tl[16];
        cb_code tk[32];
        for (int j = 0; j < nsub && tot < best; j++) {
            int l0 = 0;
            for (int l = 1; l < c->nlev; l++)
                if (fabsf(cb_dl(c, d, l) - s[j]) < fabsf(cb_dl(c, d, l0) - s[j])) l0 = l;
            double bj = INFINITY;
            for (int l = l0 - 1; l <= l0 + 1; l++) {
                if (l < 0 || l >= c->nlev) continue;
                cb_code t[4];
                double e = cb_sub(c, pt, x + c->sub * j, w + c->sub * j, cb_dl(c, d, l), t);
                if (e < bj) bj = e, tl[j] = l, memcpy(tk + ng * j, t, sizeof(cb_code) * (size_t)ng);
            }
            tot += bj;
        }
        if (tot < best) {
            best = tot, *dout = d;
            memcpy(lev, tl, sizeof(int) * (size_t)nsub);
            memcpy(k, tk, sizeof tk);
        }
    }
    vl_free(pt);
    return 0;
}

/* ---------------------------------------------------------------- packing */

int ggf_q_iq2_xxs(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[8];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ2_XXS, x, w, &d, lev, k);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sg = (uint32_t)lev[ib] << 28;
        for (int l = 0; l < 4; l++) {
            b[2 + 8 * ib + l] = (uint8_t)k[4 * ib + l].e;
            sg |= (uint32_t)(k[4 * ib + l].s & 127) << (7 * l);
        }
        ggf_wr32(b + 2 + 8 * ib + 4, sg);
    }
    return 0;
}

int ggf_q_iq2_xs(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[16];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ2_XS, x, w, &d, lev, k);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int g = 0; g < 32; g++) ggf_wr16(b + 2 + 2 * g, (uint16_t)(k[g].e | ((k[g].s & 127) << 9)));
    for (int ib = 0; ib < 8; ib++) b[66 + ib] = (uint8_t)(lev[2 * ib] | (lev[2 * ib + 1] << 4));
    return 0;
}

int ggf_q_iq2_s(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[16];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ2_S, x, w, &d, lev, k);
    if (rc) return rc;
    memset(b, 0, 82);
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int g = 0; g < 32; g++) {
        b[2 + g] = (uint8_t)(k[g].e & 255);
        b[34 + g] = (uint8_t)k[g].s;
        b[66 + g / 4] |= (uint8_t)((k[g].e >> 8) << (2 * (g % 4)));
    }
    for (int ib = 0; ib < 8; ib++) b[74 + ib] = (uint8_t)(lev[2 * ib] | (lev[2 * ib + 1] << 4));
    return 0;
}

int ggf_q_iq3_xxs(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[8];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ3_XXS, x, w, &d, lev, k);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sg = (uint32_t)lev[ib] << 28;
        for (int l = 0; l < 4; l++) {
            b[2 + 8 * ib + 2 * l] = (uint8_t)k[4 * ib + l].e;
            b[2 + 8 * ib + 2 * l + 1] = (uint8_t)k[4 * ib + l].e2;
            sg |= (uint32_t)(k[4 * ib + l].s & 127) << (7 * l);
        }
        ggf_wr32(b + 66 + 4 * ib, sg);
    }
    return 0;
}

int ggf_q_iq3_s(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[8];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ3_S, x, w, &d, lev, k);
    if (rc) return rc;
    memset(b, 0, 110);
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int g = 0; g < 32; g++) {
        int ib = g / 4, l = g % 4;
        b[2 + 2 * g] = (uint8_t)(k[g].e & 255);
        b[2 + 2 * g + 1] = (uint8_t)(k[g].e2 & 255);
        b[66 + ib] |= (uint8_t)(((k[g].e >> 8) << (2 * l)) | ((k[g].e2 >> 8) << (2 * l + 1)));
        b[74 + g] = (uint8_t)k[g].s;
    }
    for (int ib = 0; ib < 8; ib++) b[106 + ib / 2] |= (uint8_t)(lev[ib] << (4 * (ib % 2)));
    return 0;
}

int ggf_q_iq1_s(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[8];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ1_S, x, w, &d, lev, k);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(d));
    for (int ib = 0; ib < 8; ib++) {
        int qh = (lev[ib] << 12) | (k[4 * ib].s ? 0x8000 : 0);
        for (int l = 0; l < 4; l++) {
            b[2 + 4 * ib + l] = (uint8_t)(k[4 * ib + l].e & 255);
            qh |= (k[4 * ib + l].e >> 8) << (3 * l);
        }
        ggf_wr16(b + 34 + 2 * ib, (uint16_t)qh);
    }
    return 0;
}

int ggf_q_iq1_m(const float *x, const float *w, uint8_t *b)
{
    float d;
    int lev[16];
    cb_code k[32];
    int rc = cb_quant(&CB_IQ1_M, x, w, &d, lev, k);
    if (rc) return rc;
    memset(b, 0, 56);
    for (int g = 0; g < 32; g++) {
        b[g] = (uint8_t)(k[g].e & 255);
        int nib = ((k[g].e >> 8) & 7) | (k[g].s ? 8 : 0);
        b[32 + g / 2] |= (uint8_t)(nib << (4 * (g % 2)));
    }
    uint16_t dh = ggf_f32_to_f16(d);
    for (int i = 0; i < 4; i++) {
        int sc = (lev[4 * i] | (lev[4 * i + 1] << 3) | (lev[4 * i + 2] << 6) | (lev[4 * i + 3] << 9));
        sc |= ((dh >> (4 * i)) & 15) << 12;
        ggf_wr16(b + 48 + 2 * i, (uint16_t)sc);
    }
    return 0;
}
