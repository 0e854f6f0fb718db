/* analysis/fwd.c — the model math and nothing else (STYLE §1.6).
 *
 * Follows transformers' modeling_llama / modeling_qwen2 / modeling_qwen3 / modeling_qwen2_moe /
 * modeling_qwen3_moe / modeling_mixtral (eager attention, eager experts):
 *   RMSNorm   y = x · rsqrt(mean(x²) + eps) · w            (float32, sum of squares in float64)
 *   RoPE      rotate_half: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin) over the two halves
 *             of each head, inv_freq_i = θ^(−2i/Dh), angle = position · inv_freq_i
 *   attention softmax(q·kᵀ/√Dh + causal mask) · v, query head h reads KV head h / (Hq/Hkv)
 *   qwen3     q_norm / k_norm: RMSNorm per head on q and k after projection, before RoPE
 *   MoE       p = softmax(x·Wrᵀ) (float32), top-k, renormalised if norm_topk_prob (always in
 *             Mixtral), y = Σ_k p_k · down(silu(x·gateᵀ) ⊙ x·upᵀ), experts added in increasing
 *             index (HF's index_add_ order), then + sigmoid(x·w_sgᵀ) · shared(x)
 *
 * Shape legend:
 *   S sequences, T tokens each, N = S·T rows (row s·T + t); V vocab; D hidden
 *   Hq, Hkv heads, Dh head dim, Dq = Hq·Dh, Dkv = Hkv·Dh
 *   E experts, K top-k, F expert width, Fs shared expert width, I dense MLP width
 *   P = N·K routed slots, ordered by expert, then by row
 *
 * Speed: every product is one sgemm: the rows routed to an expert are gathered into one
 * contiguous block (one product per expert projection), attention runs per (sequence, head)
 * on strided views. With more than one thread (kern_threads()), rows, (sequence, head) pairs
 * and experts are cut into parts that run on threads with one BLAS thread each ("row parts"
 * below); with one thread the products run in the serial order. Taps fire from this thread
 * in tap.h's order, between the parallel parts.
 */
#include "fwd_int.h"

#include "../core/kern.h"
#include "fwd_ops.h"
#include "moe_route.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- state */

fwd_opts fwd_opts_defaults(void) { return (fwd_opts){0}; }

/* ---------------------------------------------------------------- primitives (pure) */

static void softmax(float *p, const float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    memcpy(p, x, (size_t)n * sizeof *p);
    float sum = kern_exp_shift(p, n, mx);
    for (int i = 0; i < n; i++)
        p[i] /= sum;
}

/* a = silu(a) ⊙ b, silu(x) = x·σ(x). */
static void silu_mul(float *a, const float *b, size_t n) { kern_silu_mul(a, b, n); }

/* The k largest of p[0..n) in decreasing order; ties go to the lower index. */
static void topk(int *idx, float *val, const float *p, int n, int k)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int q = 0; q < j; q++)
                taken |= idx[q] == i;
            if (!taken && (best < 0 || p[i] > p[best]))
                best = i;
        }
        idx[j] = best;
        val[j] = p[best];
    }
}

/* ---------------------------------------------------------------- products and taps */

static void mm(fwd_state *st, float *y, const float *x, const float *w, int T, int K, int N)
{
    kern_matmul(y, x, w, T, K, N, 0);
    st->flops += 2.0 * T * K * N;
}

/* ---------------------------------------------------------------- blocks */

/* h += o_proj(attention(input_layernorm(h))) */
static void attn_block(fwd_state *st, const model_layer *L, const ctx *x)
{
    const hfc_config *c = x->c;
    int D = c->hidden, Dh = c->head_dim, N = x->N, T = x->T, Dq = c->n_heads * Dh;
    float eps = (float)c->rms_eps, scale = (float)(1.0 / sqrt((double)Dh));
    fwd_rmsnorm_rows(st->xn, st->h, L->attn_norm, N, D, eps);            /* [N × D] */
    fwd_emit(x->taps, TAP_ATTN_IN, x->l, -1, st->xn, N, D, NULL, NULL, x->S, T);
    if (st->mla) { /* deepseek_v3: analysis/fwd_mla.c */
        st->flops += fwd_mla_attend(st->mla, c, L, st->xn, x->S, T, x->l, x->taps, st->out);
        fwd_add_rows(st->h, st->out, N, D);
        return;
    }
    fwd_par_qkv(st, L, x);                                            /* q, k, v, RoPE */
    fwd_par_attend(st, x, scale);                                     /* [N × Dq] */
    fwd_emit(x->taps, TAP_ATTN_O_IN, x->l, -1, st->att, N, Dq, NULL, NULL, x->S, T);
    fwd_par_oproj(st, L, x);                                          /* h += o_proj(att) */
}

/* out = down(silu(xn·gateᵀ) ⊙ xn·upᵀ) for the dense MLP. */
static void mlp_block(fwd_state *st, const model_layer *L, const ctx *x)
{
    int I = x->c->intermediate, N = x->N;
    fwd_par_ffn_up(st, L, x, &L->mlp, I);                             /* [N × I] */
    fwd_emit(x->taps, TAP_MLP_DOWN_IN, x->l, -1, st->fa, N, I, NULL, NULL, x->S, x->T);
    fwd_par_mlp_down(st, L, x);                                       /* [N × D] */
}

/* Router: probabilities, top-k, optional renormalisation, then the slots grouped by expert
 * (counting sort, rows in increasing order within an expert). */
static void route(fwd_state *st, const model_layer *L, const ctx *x)
{
    const hfc_config *c = x->c;
    int E = c->n_experts, K = c->n_experts_per_tok, N = x->N;
    int renorm = c->norm_topk_prob || c->arch == HFC_MIXTRAL;
    memset(st->off, 0, (size_t)(E + 1) * sizeof *st->off);
    for (int r = 0; r < N; r++) {
        float *p = st->prob + (size_t)r * E, *w = st->selw + (size_t)r * K;
        int *id = st->sel + (size_t)r * K;
        if (c->arch == HFC_DEEPSEEK_V3) { /* sigmoid, group-limited: analysis/moe_route.c */
            moe_route_dsv3(c, st->rlog + (size_t)r * E, L->router_bias, st->rscr, id, w);
            for (int j = 0; j < K; j++)
                st->off[id[j] + 1]++;
            continue;
        }
        softmax(p, st->rlog + (size_t)r * E, E);
        topk(id, w, p, E, K);
        float sum = 0;
        for (int j = 0; j < K; j++)
            sum += w[j];
        for (int j = 0; j < K; j++) {
            w[j] = renorm ? w[j] / sum : w[j];
            st->off[id[j] + 1]++;
        }
    }
    for (int e = 0; e < E; e++) {
        st->off[e + 1] += st->off[e];
        st->fill[e] = st->off[e];
    }
    for (int r = 0; r < N; r++)
        for (int j = 0; j < K; j++) {
            int e = st->sel[(size_t)r * K + j], sl = st->fill[e]++;
            st->slot_row[sl] = r;
            st->row_slot[(size_t)r * K + j] = sl;
            st->slot_w[sl] = st->selw[(size_t)r * K + j];
        }
}

/* One routed expert e on its slots [o, o+n): gate/up, tap, down into xs (its input rows are
 * consumed by then). With route-all, the statistics-only pass over every row follows. */
static void expert_ffn(fwd_state *st, const model_ffn *f, int e, const ctx *x)
{
    int D = x->c->hidden, F = x->c->moe_intermediate, o = st->off[e],
        n = st->off[e + 1] - o;
    float *xe = st->xs + (size_t)o * D, *ga = st->fa + (size_t)o * F, *ub = st->fb + (size_t)o * F;
    if (n) {
        mm(st, ga, xe, f->gate, n, D, F);                             /* [n × F] */
        mm(st, ub, xe, f->up, n, D, F);
        silu_mul(ga, ub, (size_t)n * F);
    }
    if (!x->opts->route_all_experts)
        fwd_emit(x->taps, TAP_EXPERT_DOWN_IN, x->l, e, ga, n, F, st->slot_row + o,
                 st->slot_w + o, x->S, x->T);
    if (n)
        mm(st, xe, ga, f->down, n, F, D);                             /* [n × D] */
    if (x->opts->route_all_experts && tap_wants(x->taps, TAP_EXPERT_DOWN_IN))
        fwd_expert_dense(st, f, e, x); /* fa/fb before o consumed, after o+n not yet written */
}

void fwd_expert_dense(fwd_state *st, const model_ffn *f, int e, const ctx *x)
{
    int D = x->c->hidden, F = x->c->moe_intermediate, N = x->N;
    mm(st, st->fa, st->xn, f->gate, N, D, F);                         /* [N × F] */
    mm(st, st->fb, st->xn, f->up, N, D, F);
    silu_mul(st->fa, st->fb, (size_t)N * F);
    fwd_emit(x->taps, TAP_EXPERT_DOWN_IN, x->l, e, st->fa, N, F, st->iota, st->dense_w, x->S,
             x->T);
}

void fwd_set_dense_w(fwd_state *st, int e, int N)
{
    memset(st->dense_w, 0, (size_t)N * sizeof *st->dense_w);
    for (int i = st->off[e]; i < st->off[e + 1]; i++)
        st->dense_w[st->slot_row[i]] = st->slot_w[i];
}

/* Expert e's input as a tap event (all of them fire before any expert runs: tap.h's order). */
static void emit_expert_in(fwd_state *st, const ctx *x, int e)
{
    int D = x->c->hidden, o = st->off[e], n = st->off[e + 1] - o;
    if (!x->opts->route_all_experts) {
        fwd_emit(x->taps, TAP_EXPERT_IN, x->l, e, st->xs + (size_t)o * D, n, D,
                 st->slot_row + o, st->slot_w + o, x->S, x->T);
        return;
    }
    fwd_set_dense_w(st, e, x->N);
    fwd_emit(x->taps, TAP_EXPERT_IN, x->l, e, st->xn, x->N, D, st->iota, st->dense_w, x->S,
             x->T);
}

/* out = Σ_k p_k·expert_k(xn) + σ(xn·w_sgᵀ)·shared(xn). The experts' weights come one at a
 * time from the stage cache (mw_expert: converted with the layer, or alone for a large one). */
static int moe_block(fwd_state *st, const model_weights *w, const model_layer *L, const ctx *x,
                     vl_err *err)
{
    const hfc_config *c = x->c;
    int E = c->n_experts, Fs = c->shared_intermediate, N = x->N;
    fwd_par_router(st, L, x);                                         /* [N × E] */
    route(st, L, x);
    fwd_emit_route(x->taps, x->l, st->rlog, N, E, st->sel, st->selw, c->n_experts_per_tok, x->S,
                   x->T);
    fwd_par_gather(st, x);                                            /* [P × D] */
    for (int e = 0; e < E; e++)
        if (tap_wants(x->taps, TAP_EXPERT_IN))
            emit_expert_in(st, x, e);
    int rc = 0, done = fwd_par_experts(st, w, x, &rc, err);
    for (int e = 0; e < E && !done; e++) {
        if (x->opts->route_all_experts && tap_wants(x->taps, TAP_EXPERT_DOWN_IN))
            fwd_set_dense_w(st, e, N);
        const model_ffn *f;
        if ((rc = mw_expert(st->mw, w, x->l, e, &f, err)))
            return rc;
        expert_ffn(st, f, e, x);
    }
    if (rc)
        return rc;
    fwd_par_combine(st, x);                                           /* [N × D] */
    if (!L->shared.gate)
        return 0;
    fwd_par_ffn_up(st, L, x, &L->shared, Fs);                         /* [N × Fs] */
    fwd_emit(x->taps, TAP_SHARED_DOWN_IN, x->l, -1, st->fa, N, Fs, NULL, NULL, x->S, x->T);
    fwd_par_shared_down(st, L, x);                                    /* out += g·shared */
    return 0;
}

/* Layer x->l of binding W: its float32 weights from the stage cache, the whole layer at once
 * or, for a layer over the cache's budget, the attention, then the MLP, then each routed
 * expert (analysis/mweights.h). */
static int fwd_layer(fwd_state *st, const model_weights *w, const ctx *x, vl_err *err)
{
    int D = x->c->hidden, N = x->N, rc;
    const model_weights *v;
    if ((rc = mw_part(st->mw, w, x->l, MW_PART_ATTN, &v, err)))
        return rc;
    attn_block(st, &v->layers[x->l], x);
    if ((rc = mw_part(st->mw, w, x->l, MW_PART_MLP, &v, err)))
        return rc;
    const model_layer *L = &v->layers[x->l];
    fwd_rmsnorm_rows(st->xn, st->h, L->mlp_norm, N, D, (float)x->c->rms_eps); /* [N × D] */
    fwd_emit(x->taps, TAP_MLP_IN, x->l, -1, st->xn, N, D, NULL, NULL, x->S, x->T);
    if (x->c->layer_is_moe[x->l])
        rc = moe_block(st, w, L, x, err);
    else
        mlp_block(st, L, x);
    if (rc)
        return rc;
    fwd_add_rows(st->h, st->out, N, D);
    fwd_emit(x->taps, TAP_RESIDUAL, x->l, -1, st->h, N, D, NULL, NULL, x->S, x->T);
    return 0;
}

/* ---------------------------------------------------------------- public */

/* Carve n bytes, 64-byte aligned, at offset *off of base (NULL base: only count). */
static void *carve(char *base, size_t *off, size_t n) { return fwd_carve(base, off, n); }

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Lays the buffers out from base (or from NULL to measure); returns the bytes used. */
static size_t layout(fwd_state *st, char *base)
{
    const hfc_config *c = model_config(st->m);
    size_t N = (size_t)st->max_seq * st->max_len, T = (size_t)st->max_len, D = c->hidden;
    size_t Dq = (size_t)c->n_heads * c->head_dim, Dkv = (size_t)c->n_kv_heads * c->head_dim;
    size_t E = c->n_experts > 0 ? c->n_experts : 0, K = E ? c->n_experts_per_tok : 0;
    size_t P = N * K, F = c->moe_intermediate > 0 ? c->moe_intermediate : 0;
    size_t Fs = c->shared_intermediate > 0 ? c->shared_intermediate : 0;
    size_t I = c->intermediate > 0 ? c->intermediate : 0;
    size_t ffn = max_sz(max_sz(P * F, N * F), max_sz(N * Fs, N * I));
    size_t o = 0;
    st->h = carve(base, &o, N * D * 4);
    st->xn = carve(base, &o, N * D * 4);
    st->q = carve(base, &o, N * Dq * 4);
    st->att = carve(base, &o, N * Dq * 4);
    st->k = carve(base, &o, N * Dkv * 4);
    st->v = carve(base, &o, N * Dkv * 4);
    st->scores = carve(base, &o, T * T * 4);
    st->rcos = carve(base, &o, T * (size_t)c->head_dim / 2 * 4);
    st->rsin = carve(base, &o, T * (size_t)c->head_dim / 2 * 4);
    st->out = carve(base, &o, N * D * 4);
    st->rlog = carve(base, &o, N * E * 4);
    st->prob = carve(base, &o, N * E * 4);
    st->sel = carve(base, &o, P * sizeof(int));
    st->selw = carve(base, &o, P * 4);
    st->off = carve(base, &o, (E + 1) * sizeof(int));
    st->fill = carve(base, &o, (E + 1) * sizeof(int));
    st->slot_row = carve(base, &o, P * sizeof(int));
    st->row_slot = carve(base, &o, P * sizeof(int));
    st->slot_w = carve(base, &o, P * 4);
    st->xs = carve(base, &o, max_sz(P, N) * D * 4);
    st->fa = carve(base, &o, ffn * 4);
    st->fb = carve(base, &o, ffn * 4);
    st->dense_w = carve(base, &o, N * 4);
    st->iota = carve(base, &o, N * sizeof(int));
    st->fe = carve(base, &o, E * sizeof *st->fe);
    st->sg = carve(base, &o, N * 4);
    st->logits = carve(base, &o, N * (size_t)c->vocab * 4);
    st->rscr = carve(base, &o, 2 * E * 4);
    return o;
}

int fwd_state_new(fwd_state **out, const model *m, int max_seq, int max_len, vl_err *err)
{
    *out = NULL;
    if (max_seq <= 0 || max_len <= 0 || (int64_t)max_seq * max_len > (1 << 24))
        return vl_errf(err, VL_EARG, "forward: batch of %d × %d tokens out of range", max_seq,
                       max_len);
    fwd_state *st = vl_calloc(1, sizeof *st);
    if (!st)
        return vl_errf(err, VL_ENOMEM, "forward: out of memory");
    st->m = m;
    st->max_seq = max_seq;
    st->max_len = max_len;
    int rc0 = mw_new(&st->mw, m, err);
    if (!rc0 && model_config(m)->arch == HFC_DEEPSEEK_V4)
        rc0 = fwd_v4_new(&st->v4, m, max_seq, max_len, err);
    if (rc0 || st->v4) {
        if (rc0)
            fwd_state_free(st);
        else
            *out = st;
        return rc0;
    }
    size_t bytes = layout(st, NULL);
    if (!(st->block = vl_malloc(bytes + 64))) {
        fwd_state_free(st);
        return vl_errf(err, VL_ENOMEM, "forward: out of memory for %zu MiB of buffers",
                       bytes >> 20);
    }
    layout(st, (char *)(((uintptr_t)st->block + 63) & ~(uintptr_t)63));
    const hfc_config *c = model_config(m);
    int half = c->head_dim / 2;
    for (int t = 0; t < max_len; t++) /* float64 angles, rounded once */
        for (int i = 0; i < half; i++) {
            double a = t * pow(c->rope_theta, -2.0 * i / c->head_dim);
            st->rcos[(size_t)t * half + i] = (float)cos(a);
            st->rsin[(size_t)t * half + i] = (float)sin(a);
        }
    for (int r = 0; r < max_seq * max_len; r++)
        st->iota[r] = r;
    int rc = c->arch == HFC_DEEPSEEK_V3 ? fwd_mla_new(&st->mla, c, max_seq, max_len, err) : 0;
    if (rc) {
        fwd_state_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int check_batch(const model *m, const fwd_state *st, int n_seq, int seq_len,
                       vl_err *err)
{
    if (st->m != m)
        return vl_errf(err, VL_EARG, "forward: state was made for another model");
    if (n_seq <= 0 || seq_len <= 0 || n_seq > st->max_seq || seq_len > st->max_len)
        return vl_errf(err, VL_EARG, "forward: batch %d × %d exceeds the state's %d × %d",
                       n_seq, seq_len, st->max_seq, st->max_len);
    return 0;
}

/* Layers from..to-1 on st->h (already holding layer `from`'s input), then with head set the
 * final norm and LM head. Each layer's weights are float32 only while it runs (mw_stage; a
 * stage asked for again, as a layer-major pass does batch after batch, is kept). */
static int run_layers(const model *m, const model_weights *w, fwd_state *st, int from, int to,
                      int head, int n_seq, int seq_len, const fwd_opts *opts,
                      const tap_set *taps, const float **logits, vl_err *err)
{
    const hfc_config *c = model_config(m);
    fwd_opts defaults = fwd_opts_defaults();
    int D = c->hidden, N = n_seq * seq_len; /* N checked at fwd_state_new */
    ctx x = {c, n_seq, seq_len, N, 0, opts ? opts : &defaults, taps};
    const model_weights *v;
    int rc = 0;
    for (x.l = from; x.l < to && !rc; x.l++)
        rc = fwd_layer(st, w, &x, err);
    if (rc || !head || (rc = mw_stage(st->mw, w, MW_HEAD, &v, err)))
        return rc;
    fwd_rmsnorm_rows(st->xn, st->h, v->final_norm, N, D, (float)c->rms_eps);
    if ((rc = fwd_par_head(st, w, N, err)))                            /* [N × V] */
        return rc;
    fwd_emit(taps, TAP_LOGITS, c->n_layers, -1, st->logits, N, c->vocab, NULL, NULL, n_seq,
             seq_len);
    *logits = st->logits;
    return 0;
}

int fwd_embed(const model *m, const model_weights *w, const int32_t *ids, int n, float *out,
              vl_err *err)
{
    int D = model_config(m)->hidden, V = model_config(m)->vocab;
    for (int r = 0; r < n; r++)
        if (ids[r] < 0 || ids[r] >= V)
            return vl_errf(err, VL_ERANGE, "forward: token id %d (row %d) outside the "
                           "vocabulary [0, %d)", (int)ids[r], r, V);
    if (model_config(m)->arch == HFC_DEEPSEEK_V4)
        return fwd_v4_embed(m, w, ids, n, out, err);
    return model_embed_rows(m, w, ids, n, out, (size_t)D, err);      /* [n × D] */
}

int fwd_run(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
            int n_seq, int seq_len, const fwd_opts *opts, const tap_set *taps,
            const float **logits, vl_err *err)
{
    int V = model_config(m)->vocab;
    int rc = check_batch(m, st, n_seq, seq_len, err);
    if (rc)
        return rc;
    int N = n_seq * seq_len;
    for (int r = 0; r < N; r++)
        if (ids[r] < 0 || ids[r] >= V)
            return vl_errf(err, VL_ERANGE, "forward: token id %d (sequence %d, position %d) "
                           "outside the vocabulary [0, %d)", (int)ids[r], r / seq_len,
                           r % seq_len, V);
    if (st->v4)
        return fwd_v4_run(st->v4, st->mw, w, ids, 0, NULL, n_seq, seq_len,
                          opts ? opts->route_all_experts : 0, taps, logits, err);
    st->flops = 0;
    if ((rc = fwd_embed(m, w, ids, N, st->h, err)))                   /* [N × D] */
        return rc;
    return run_layers(m, w, st, 0, model_config(m)->n_layers, 1, n_seq, seq_len, opts, taps,
                      logits, err);
}

int fwd_run_from(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                 int layer,
                 const float *hidden_in, int n_seq, int seq_len, const fwd_opts *opts,
                 const tap_set *taps, const float **logits, vl_err *err)
{
    const hfc_config *c = model_config(m);
    int rc = check_batch(m, st, n_seq, seq_len, err);
    if (rc)
        return rc;
    if (layer < 0 || layer > c->n_layers)
        return vl_errf(err, VL_EARG, "forward: start layer %d outside [0, %d]", layer,
                       c->n_layers);
    if (st->v4)
        return fwd_v4_run(st->v4, st->mw, w, ids, layer, hidden_in, n_seq, seq_len,
                          opts ? opts->route_all_experts : 0, taps, logits, err);
    st->flops = 0;
    memcpy(st->h, hidden_in, (size_t)n_seq * seq_len * c->hidden * sizeof *st->h);
    return run_layers(m, w, st, layer, c->n_layers, 1, n_seq, seq_len, opts, taps, logits,
                      err);
}

int fwd_run_layers(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                   int from, int to, float *hidden, int n_seq, int seq_len,
                   const fwd_opts *opts, const tap_set *taps, vl_err *err)
{
    const hfc_config *c = model_config(m);
    int rc = check_batch(m, st, n_seq, seq_len, err);
    if (rc)
        return rc;
    if (from < 0 || from > to || to > c->n_layers)
        return vl_errf(err, VL_EARG, "forward: layers [%d, %d) outside [0, %d]", from, to,
                       c->n_layers);
    size_t n = (size_t)n_seq * seq_len * (size_t)fwd_residual_width(m);
    if (st->v4) {
        if ((rc = fwd_v4_layers(st->v4, st->mw, w, ids, from, to, hidden, n_seq, seq_len,
                                opts ? opts->route_all_experts : 0, taps, err)))
            return rc;
    } else {
        st->flops = 0;
        memcpy(st->h, hidden, n * sizeof *st->h);
        rc = run_layers(m, w, st, from, to, 0, n_seq, seq_len, opts, taps, NULL, err);
        if (!rc)
            memcpy(hidden, st->h, n * sizeof *hidden);
    }
    return rc;
}

const float *fwd_final_hidden(const fwd_state *st)
{
    return st->v4 ? fwd_v4_final_hidden(st->v4) : st->xn;
}

double fwd_last_flops(const fwd_state *st) { return st->v4 ? fwd_v4_flops(st->v4) : st->flops; }

int fwd_residual_width(const model *m)
{
    const hfc_config *c = model_config(m);
    return c->arch == HFC_DEEPSEEK_V4 ? c->v4.hc_mult * c->hidden : c->hidden;
}

void fwd_set_layer_budget(fwd_state *st, size_t bytes) { mw_set_budget(st->mw, bytes); }

void fwd_set_provider(fwd_state *st, int (*fn)(void *user, size_t i, const float **data,
                                               float **owned, vl_err *err), void *user)
{
    mw_set_provider(st->mw, fn, user);
}

void fwd_state_free(fwd_state *st)
{
    if (!st)
        return;
    fwd_v4_free(st->v4);
    fwd_mla_free(st->mla);
    mw_free(st->mw);
    for (int p = 0; p < FWD_MAX_PARTS; p++)
        mw_free(st->hmw[p]);
    vl_free(st->scr);
    vl_free(st->block);
    vl_free(st);
}
