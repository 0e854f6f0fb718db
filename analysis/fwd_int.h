/* analysis/fwd_int.h — the forward's state and block context, shared by fwd.c (the model
 * math, routing, buffers) and fwd_par.c (the blocks' products in parts on threads). Not part
 * of the public API. */
#ifndef VL_FWD_INT_H
#define VL_FWD_INT_H

#include "fwd.h"
#include "fwd_mla.h"
#include "fwd_dsv4.h"
#include "mweights.h"

enum { FWD_MAX_PARTS = 64 }; /* threads a forward's blocks use at most */

struct fwd_state {
    const model *m;
    int max_seq, max_len;
    double flops;         /* of the last run */
    mw_cache *mw;         /* the float32 weights of the stage running (analysis/mweights.h) */
    void *block;          /* the one allocation the buffers below live in */
    float *h;             /* [N × D] residual stream */
    float *xn;            /* [N × D] normed input of the current block */
    float *q, *att;       /* [N × Dq] queries; attention output (o_proj input) */
    float *k, *v;         /* [N × Dkv] */
    float *scores;        /* [T × T] one (sequence, head) at a time */
    float *scr;           /* [n_scr × T × T] the scores of threads 1.. (fwd_scratch) */
    int n_scr;
    mw_cache *hmw[FWD_MAX_PARTS]; /* threads 1..: their own LM head tiles (head_logits) */
    float *rcos, *rsin;   /* [max_len × Dh/2] RoPE tables */
    float *out;           /* [N × D] output of the current block */
    float *rlog, *prob;   /* [N × E] router logits and probabilities */
    int *sel;             /* [N × K] chosen experts */
    float *selw;          /* [N × K] their routing weights */
    int *off;             /* [E + 1] slot offsets per expert */
    int *fill;            /* [E] next free slot per expert while sorting */
    int *slot_row;        /* [P] batch row of each slot */
    int *row_slot;        /* [N × K] the slots of each row, in the order of sel */
    float *slot_w;        /* [P] routing weight of each slot */
    float *xs;            /* [max(P, N) × D] gathered expert inputs, then expert outputs */
    float *fa, *fb;       /* [max(P·F, N·F, N·Fs, N·I)] FFN hidden (gate, up) */
    float *dense_w;       /* [N] route-all: one expert's weight per row (0 if not routed) */
    int *iota;            /* [N] 0..N−1: row map of route-all expert events */
    const model_ffn **fe; /* [E] the layer's routed experts (experts on threads) */
    float *sg;            /* [N] shared expert gate */
    float *logits;        /* [N × V] */
    fwd_mla *mla;         /* deepseek_v3: multi-head latent attention buffers (else NULL) */
    float *rscr;          /* [2E] deepseek_v3 routing scratch */
    fwd_v4 *v4;           /* deepseek_v4: its own state (analysis/fwd_dsv4.c), no buffers here */
};

/* The batch and layer a block runs on. */
typedef struct {
    const hfc_config *c;
    int S, T, N, l;
    const fwd_opts *opts;
    const tap_set *taps;
} ctx;

/* ---------------------------------------------------------------- fwd_par.c */

/* Rows of the batch (RMSNorm, residual add) on kern_parallel_for's threads. */
void fwd_rmsnorm_rows(float *y, const float *x, const float *w, int rows, int cols, float eps);
void fwd_add_rows(float *y, const float *x, int rows, int cols);

/* The blocks' products by parts (fwd_par.c explains), each adding its flops to st->flops:
 * q, k, v with biases, per-head norms and RoPE; causal attention of every (sequence, head);
 * h += o_proj(att); fa = SwiGLU of f's gate and up (F wide); out = fa·downᵀ (dense MLP);
 * router logits; the routed slots' inputs (xs); out = Σ of the routed outputs; out +=
 * gate·shared down (F wide). */
void fwd_par_qkv(fwd_state *st, const model_layer *L, const ctx *x);
void fwd_par_attend(fwd_state *st, const ctx *x, float scale);
void fwd_par_oproj(fwd_state *st, const model_layer *L, const ctx *x);
void fwd_par_ffn_up(fwd_state *st, const model_layer *L, const ctx *x, const model_ffn *f,
                    int F);
void fwd_par_mlp_down(fwd_state *st, const model_layer *L, const ctx *x);
void fwd_par_router(fwd_state *st, const model_layer *L, const ctx *x);
void fwd_par_gather(fwd_state *st, const ctx *x);
void fwd_par_combine(fwd_state *st, const ctx *x);
void fwd_par_shared_down(fwd_state *st, const model_layer *L, const ctx *x);

/* The routed experts of layer x->l on threads; 0 when that does not apply (one thread, fewer
 * than 2 experts, experts converted one at a time: the serial loop runs), 1 when done or on
 * error (*rc set). */
int fwd_par_experts(fwd_state *st, const model_weights *w, const ctx *x, int *rc, vl_err *err);

/* logits = xn·headᵀ for N rows, in parts of rows on threads (one product on one thread). */
int fwd_par_head(fwd_state *st, const model_weights *w, int N, vl_err *err);

/* ---------------------------------------------------------------- fwd.c */

/* Route-all: expert e's routing weight for every row (0 where not routed). */
void fwd_set_dense_w(fwd_state *st, int e, int N);
/* Route-all's statistics-only pass of expert f (index e) over every row, its tap fired. */
void fwd_expert_dense(fwd_state *st, const model_ffn *f, int e, const ctx *x);

#endif
