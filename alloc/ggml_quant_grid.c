/* alloc/ggml_quant_grid.c — importance-weighted quantizers of ggml's codebook formats:
 * iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s (grid magnitudes × signs) and iq1_s, iq1_m (grid
 * values in {−1, 0, 1} plus a ±1/8 shift).
 *
 * A super-block of 256 weights has one fp16 scale d and per sub-block (16 or 32 weights) an
 * integer level l giving the sub-block scale dl(d, l) exactly as the decoder computes it.
 * Groups of 8 weights are coded by one grid entry (or two 4-entries for iq3) and signs.
 *
 * Search (written for this module, exact where llama.cpp uses neighbour lists):
 *  - group: the entry of least weighted error over the whole grid (ggml_cb_search.c: per-weight
 *    cost tables — each level with the weight's own sign, and the cost of flipping it — and a
 *    pruned scan of the grid bucketed by half patterns); with a parity constraint on the signs
 *    (iq2_xxs, iq2_xs, iq3_xxs store 7 sign bits, the 8th makes the count of minus signs even)
 *    an odd natural sign count pays the cheapest flip;
 *  - sub-block: a float scale from a ladder of starting points plus one least-squares refit;
 *  - super-block: a ladder of d around the largest sub-block scale, and per sub-block the three
 *    levels nearest to its float scale; the combination of least weighted error wins.
 */
#include "ggml_cb.h"

#include <math.h>

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

/* Unit values (x̂ / dl) of a code. */
static void cb_unit(const cb_desc *c, const cb_code *k, float v[8])
{
    for (int j = 0; j < 8; j++) {
        if (c->kind == CB_G1) {
            v[j] = (float)(int8_t)(ggf_grid_iq1s[k->e] >> (8 * j)) + (k->s ? -GGF_IQ1_DELTA : GGF_IQ1_DELTA);
            continue;
        }
        int m = c->kind == CB_G8 ? ggf_gbyte64(cb_g8(c, k->e), j)
                                 : ggf_gbyte32(cb_g4(c, j < 4 ? k->e : k->e2), j % 4);
        v[j] = (k->s >> j) & 1 ? -(float)m : (float)m;
    }
}

/* Best codes of one sub-block at scale dl; returns the weighted error. */
static double cb_sub(const cb_desc *c, const cb_idx *ix, const float *x, const float *w, float dl, cb_code *k)
{
    int ng = c->sub / 8;
    if (c->kind != CB_G1) {
        double e = 0;
        for (int g = 0; g < ng; g++) e += cb_grp_mag(c, ix, x + 8 * g, w + 8 * g, dl, &k[g]);
        return e;
    }
    if (c->t == GGF_IQ1_M) { /* one shift per group of 8 */
        double e = 0;
        for (int g = 0; g < ng; g++) {
            cb_code a, b;
            double ea = cb_grp_one(ix, x + 8 * g, w + 8 * g, dl, 0, &a);
            double eb = cb_grp_one(ix, x + 8 * g, w + 8 * g, dl, 1, &b);
            k[g] = ea <= eb ? a : b;
            e += ea <= eb ? ea : eb;
        }
        return e;
    }
    double best = INFINITY; /* iq1_s: one shift for the whole sub-block of 32 */
    for (int sn = 0; sn < 2; sn++) {
        cb_code t[4];
        double e = 0;
        for (int g = 0; g < ng; g++) e += cb_grp_one(ix, x + 8 * g, w + 8 * g, dl, sn, &t[g]);
        if (e < best) best = e, memcpy(k, t, sizeof t);
    }
    return best;
}

/* Float scale of a sub-block: ladder around amax/gmax, then a weighted LS refit. */
static float cb_sub_scale(const cb_desc *c, const cb_idx *ix, const float *x, const float *w)
{
    float amax = 0;
    for (int i = 0; i < c->sub; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (amax == 0) return 0;
    cb_code k[4], kb[4];
    double best = INFINITY;
    float sb = 0;
    for (int f = 0; f < 8; f++) {
        float s = amax / c->gmax * (0.55f + 0.1f * f);
        double e = cb_sub(c, ix, x, w, s, k);
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
        if (cb_sub(c, ix, x, w, s, k) < best) sb = s;
    }
    return sb;
}

/* One super-block as the packers lay it out: fp16-exact scale d, the level of each sub-block
 * (lev[0 .. 256/sub)), the code of each group of 8. */
typedef struct {
    float d;
    int lev[16];
    cb_code k[32];
} cb_block;

/* Super-block search into *q. */
static int cb_quant(const cb_desc *c, const float *x, const float *w, cb_block *q)
{
    float *dout = &q->d;
    int *lev = q->lev;
    cb_code *k = q->k;
    cb_idx ix;
    cb_idx_build(c, &ix);
    int nsub = 256 / c->sub, ng = c->sub / 8;
    float s[16], smax = 0;
    for (int j = 0; j < nsub; j++) {
        s[j] = cb_sub_scale(c, &ix, x + c->sub * j, w + c->sub * j);
        smax = fmaxf(smax, s[j]);
    }
    *dout = 0;
    memset(lev, 0, sizeof(int) * (size_t)nsub);
    double best = INFINITY;
    float top = cb_dl(c, 1.0f, c->nlev - 1);
    for (int f = 0; f < 5 && smax > 0; f++) {
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
                double e = cb_sub(c, &ix, x + c->sub * j, w + c->sub * j, cb_dl(c, d, l), t);
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
    if (best == INFINITY) /* all zero, or a scale below fp16's range: d = 0, the codes of 0 */
        for (int j = 0; j < nsub; j++) cb_sub(c, &ix, x + c->sub * j, w + c->sub * j, 0, k + ng * j);
    return 0;
}

/* ---------------------------------------------------------------- packing */

int ggf_q_iq2_xxs(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ2_XXS, x, w, &q);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sg = (uint32_t)q.lev[ib] << 28;
        for (int l = 0; l < 4; l++) {
            b[2 + 8 * ib + l] = (uint8_t)q.k[4 * ib + l].e;
            sg |= (uint32_t)(q.k[4 * ib + l].s & 127) << (7 * l);
        }
        ggf_wr32(b + 2 + 8 * ib + 4, sg);
    }
    return 0;
}

int ggf_q_iq2_xs(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ2_XS, x, w, &q);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int g = 0; g < 32; g++) ggf_wr16(b + 2 + 2 * g, (uint16_t)(q.k[g].e | ((q.k[g].s & 127) << 9)));
    for (int ib = 0; ib < 8; ib++) b[66 + ib] = (uint8_t)(q.lev[2 * ib] | (q.lev[2 * ib + 1] << 4));
    return 0;
}

int ggf_q_iq2_s(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ2_S, x, w, &q);
    if (rc) return rc;
    memset(b, 0, 82);
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int g = 0; g < 32; g++) {
        b[2 + g] = (uint8_t)(q.k[g].e & 255);
        b[34 + g] = (uint8_t)q.k[g].s;
        b[66 + g / 4] |= (uint8_t)((q.k[g].e >> 8) << (2 * (g % 4)));
    }
    for (int ib = 0; ib < 8; ib++) b[74 + ib] = (uint8_t)(q.lev[2 * ib] | (q.lev[2 * ib + 1] << 4));
    return 0;
}

int ggf_q_iq3_xxs(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ3_XXS, x, w, &q);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sg = (uint32_t)q.lev[ib] << 28;
        for (int l = 0; l < 4; l++) {
            b[2 + 8 * ib + 2 * l] = (uint8_t)q.k[4 * ib + l].e;
            b[2 + 8 * ib + 2 * l + 1] = (uint8_t)q.k[4 * ib + l].e2;
            sg |= (uint32_t)(q.k[4 * ib + l].s & 127) << (7 * l);
        }
        ggf_wr32(b + 66 + 4 * ib, sg);
    }
    return 0;
}

int ggf_q_iq3_s(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ3_S, x, w, &q);
    if (rc) return rc;
    memset(b, 0, 110);
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int g = 0; g < 32; g++) {
        int ib = g / 4, l = g % 4;
        b[2 + 2 * g] = (uint8_t)(q.k[g].e & 255);
        b[2 + 2 * g + 1] = (uint8_t)(q.k[g].e2 & 255);
        b[66 + ib] |= (uint8_t)(((q.k[g].e >> 8) << (2 * l)) | ((q.k[g].e2 >> 8) << (2 * l + 1)));
        b[74 + g] = (uint8_t)q.k[g].s;
    }
    for (int ib = 0; ib < 8; ib++) b[106 + ib / 2] |= (uint8_t)(q.lev[ib] << (4 * (ib % 2)));
    return 0;
}

int ggf_q_iq1_s(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ1_S, x, w, &q);
    if (rc) return rc;
    ggf_wr16(b, ggf_f32_to_f16(q.d));
    for (int ib = 0; ib < 8; ib++) {
        int qh = (q.lev[ib] << 12) | (q.k[4 * ib].s ? 0x8000 : 0);
        for (int l = 0; l < 4; l++) {
            b[2 + 4 * ib + l] = (uint8_t)(q.k[4 * ib + l].e & 255);
            qh |= (q.k[4 * ib + l].e >> 8) << (3 * l);
        }
        ggf_wr16(b + 34 + 2 * ib, (uint16_t)qh);
    }
    return 0;
}

int ggf_q_iq1_m(const float *x, const float *w, uint8_t *b)
{
    cb_block q;
    int rc = cb_quant(&CB_IQ1_M, x, w, &q);
    if (rc) return rc;
    memset(b, 0, 56);
    for (int g = 0; g < 32; g++) {
        b[g] = (uint8_t)(q.k[g].e & 255);
        int nib = ((q.k[g].e >> 8) & 7) | (q.k[g].s ? 8 : 0);
        b[32 + g / 2] |= (uint8_t)(nib << (4 * (g % 2)));
    }
    uint16_t dh = ggf_f32_to_f16(q.d);
    for (int i = 0; i < 4; i++) {
        int sc = (q.lev[4 * i] | (q.lev[4 * i + 1] << 3) | (q.lev[4 * i + 2] << 6) | (q.lev[4 * i + 3] << 9));
        sc |= ((dh >> (4 * i)) & 15) << 12;
        ggf_wr16(b + 48 + 2 * i, (uint16_t)sc);
    }
    return 0;
}
