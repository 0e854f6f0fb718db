/* analysis/fwd_dsv4_int.h — state shared by fwd_dsv4.c (layers, mHC, MoE, head) and
 * fwd_dsv4_attn.c (attention, compressors, indexer). Not a public API.
 *
 * Shape legend: S sequences of T tokens, N = S·T rows; D hidden; Hc streams; H heads of Dh,
 * HD = H·Dh; Rq q rank; G groups of Ro; Tc compressed entries per sequence (T / rate);
 * Hi indexer heads of Di; E experts of F, top-K; V vocab; rd rotated trailing dims.
 */
#ifndef VL_FWD_DSV4_INT_H
#define VL_FWD_DSV4_INT_H

#include "fwd_dsv4.h"
#include "model_dsv4.h"

struct fwd_v4 {
    const model *m;
    const hfc_config *c;
    int max_seq, max_len, max_tc;
    long g[V4_G_COUNT];
    long (*ix)[V4_SLOT_COUNT];      /* [L] tensor index of each slot */
    float *cos_m, *sin_m;           /* [max_len × rd_main/2] main rope */
    float *cos_c, *sin_c;           /* [max_len × rd_compress/2] compress rope */
    int32_t *ids;                   /* [max_seq·max_len] ids of the last fwd_run */
    int ids_S, ids_T;               /* its shape, 0 if none yet */
    double flops;
    void *block;                    /* the buffers below live in it */
    float *hs, *hs2;                /* [N × Hc·D] streams in / out of a block */
    float *mix;                     /* [N × (2+Hc)·Hc] mHC logits */
    float *pre, *post, *comb;       /* [N × Hc], [N × Hc], [N × Hc × Hc] */
    float *col;                     /* [N × D] collapsed streams */
    float *x;                       /* [N × D] normed block input */
    float *qr;                      /* [N × Rq] q_norm(wq_a x) */
    float *q, *att;                 /* [N × HD] */
    float *kv;                      /* [N × Dh] shared key = value */
    float *ga;                      /* [N × G·Ro] wo_a output */
    float *out;                     /* [N × D] block output */
    float *ckv, *cg;                /* [N × 2·max(Dh, Di)] compressor kv / gate */
    float *comp, *icomp;            /* [S × Tc × Dh], [S × Tc × Di] compressed entries */
    float *iq, *iw;                 /* [N × Hi·Di], [N × Hi] indexer queries / head weights */
    unsigned char *allow;           /* [N × Tc] compressed entries each query attends */
    float *sc;                      /* [T + Tc + 1] one query's logits */
    float *isc;                     /* [Tc] one query's index scores */
    float *rlog, *score;            /* [N × E] router logits / activated scores */
    float *choice;                  /* [N × 2E] TAP_ROUTER_CHOICE rows */
    int *sel;                       /* [N × K] chosen experts */
    float *selw;                    /* [N × K] their weights */
    int *rows;                      /* [N] rows routed to one expert */
    float *roww;                    /* [N] their weights */
    float *xs, *fo;                 /* [N × D] gathered expert input / output */
    float *fa, *fb;                 /* [N × F] expert gate / up */
    float *fin;                     /* [N × D] final hidden */
    float *logits;                  /* [N × V] */
};

static inline const float *v4w(const fwd_v4 *s, const model_weights *w, int l, v4_slot k)
{
    return w->ext[s->ix[l][k]];
}

/* y[T×N] = x[T×K]·Wᵀ, counted. */
void v4_mm(fwd_v4 *s, float *y, const float *x, const float *w, int T, int K, int N);
/* RMSNorm of rows (float64 sum of squares); w NULL = unweighted. */
void v4_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, double eps);
/* Interleaved RoPE on the trailing rd dims of a head of width dh, position table row cs/sn;
 * sign −1 rotates back (the conjugate, as on the attention output). */
void v4_rope(float *x, int dh, int rd, const float *cs, const float *sn, int sign);

/* Attention of layer L on s->x (N × D); output rows in s->out; taps ATTN_IN and ATTN_O_IN. */
void v4_attention(fwd_v4 *s, const model_weights *w, int l, int S, int T, const tap_set *taps);

#endif
