/* alloc/ggml_cb.h — private to the codebook quantizers (ggml_quant_grid.c, ggml_cb_search.c):
 * the grid descriptions, a group's code, and the exact group search over a grid index.
 */
#ifndef VL_GGML_CB_H
#define VL_GGML_CB_H

#include "ggml_int.h"

/* G8: 8 magnitudes per entry plus signs (iq2_*); G44: two 4-magnitude entries plus signs
 * (iq3_*); G1: 8 values in {−1, 0, 1} plus a ±1/8 shift (iq1_*). */
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

/* A group's code: grid index (for G44 two indices, e2 the second), sign bits (bit j = minus),
 * or for G1 the shift sign (1 = −1/8). */
typedef struct {
    int e, e2, s;
} cb_code;

/* The grid as an index for the group search (ggml_cb_search.c): every weight of an entry takes
 * one of 3 levels (G8, G1) or 8 (G44); an entry is split into a head and a tail pattern (G8/G1:
 * its two halves of 4 weights, 3⁴ = 81 patterns each; G44: weights 0–1 and 2–3 of one
 * 4-magnitude entry, 8² = 64 patterns) and the entries are bucketed by head, each bucket in
 * increasing entry order with the entry's tail. */
typedef struct {
    int nh;             /* head patterns: 81 or 64 */
    uint16_t start[82]; /* bucket h is tail/ent[start[h] .. start[h+1]) */
    uint8_t tail[2048];
    uint16_t ent[2048];
} cb_idx;

static inline uint64_t cb_g8(const cb_desc *c, int e)
{
    return c->t == GGF_IQ2_XXS ? ggf_grid_iq2xxs[e] : c->t == GGF_IQ2_XS ? ggf_grid_iq2xs[e]
                                                                          : ggf_grid_iq2s[e];
}

static inline uint32_t cb_g4(const cb_desc *c, int e)
{
    return c->t == GGF_IQ3_XXS ? ggf_grid_iq3xxs[e] : ggf_grid_iq3s[e];
}

void cb_idx_build(const cb_desc *c, cb_idx *ix);

/* Best code of 8 weights x (importance w) at sub-block scale dl ≥ 0 for a magnitude grid (G8,
 * G44), the signs from x's and, with parity, the cheapest flip when x has an odd number of
 * negative weights. Returns the weighted error. Exact: the same code as scoring every entry in
 * entry order and keeping the first of least error. */
double cb_grp_mag(const cb_desc *c, const cb_idx *ix, const float *x, const float *w, float dl,
                  cb_code *out);

/* The same for an iq1 grid: x̂_j = dl·(g_j + δ), δ = −1/8 when sneg, else +1/8. */
double cb_grp_one(const cb_idx *ix, const float *x, const float *w, float dl, int sneg,
                  cb_code *out);

#endif
