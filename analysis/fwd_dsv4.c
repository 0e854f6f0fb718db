/* analysis/fwd_dsv4.c — DeepseekV4ForCausalLM (transformers 5.17): streams, mHC, MoE, head.
 *
 * The residual is Hc streams h[j] (the embedding repeated). Each block (attention, then MoE):
 *   mix   = rms(flatten(h)) · fnᵀ                 (unweighted RMSNorm over Hc·D)
 *   pre   = σ(mix[0:Hc]·scale₀ + base) + hc_eps   post = 2σ(mix[Hc:2Hc]·scale₁ + base)
 *   comb  = softmax_k(mix[2Hc:]·scale₂ + base)[j][k] + hc_eps, then Sinkhorn: divide by the
 *           column sums (+eps), then hc_sinkhorn_iters−1 times rows then columns
 *   y     = block(norm(Σ_j pre_j h[j]))
 *   h'[k] = post_k · y + Σ_j comb[j][k] · h[j]
 * MoE: logits = x·gateᵀ; s = act(logits) (sqrtsoftplus √softplus, sigmoid or softmax);
 *   experts = top-k of s + bias, or tid2eid[token] in hash layers; weights s_e / Σ s_e ·
 *   routed_scaling_factor; expert(x) = w2(silu(min(w1 x, L)) ⊙ clamp(w3 x, −L, L)), added in
 *   increasing expert index, plus the shared expert (same clamps).
 * RoPE: sliding layers rotate with the main theta; CSA/HCA layers, their compressors and the
 *   indexer with the compress theta, YaRN-scaled when the config says so (fwd_yarn_inv_freq,
 *   cos/sin × the attention factor).
 * Head: hc_head collapses the streams with pre = σ(mix·scale + base) + eps (no Sinkhorn), then
 *   model.norm and the LM head.
 *
 * Taps (tap.h), per layer: TAP_ATTN_IN [N × D]; TAP_Q_B_IN [N × q_lora_rank] (wq_b's and the
 * indexer's wq_b's input); TAP_ATTN_O_IN once per output group g, [N × H·Dh/G] at column
 * g·H·Dh/G (wo_a's input); TAP_O_LORA_IN [N × G·o_lora_rank] (wo_b's input); TAP_MLP_IN;
 * TAP_ROUTER_LOGITS (x·gateᵀ, hash layers too; with sel / selw); TAP_ROUTER_CHOICE [N × 2E];
 * TAP_EXPERT_IN / TAP_EXPERT_DOWN_IN per expert; TAP_SHARED_DOWN_IN; TAP_RESIDUAL [N × Hc·D];
 * then TAP_LOGITS.
 */
#include "fwd_dsv4_int.h"

#include "../core/kern.h"
#include "fwd_mla.h"
#include "fwd_ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- primitives */

void v4_mm(fwd_v4 *s, float *y, const float *x, const float *w, int T, int K, int N)
{
    kern_matmul(y, x, w, T, K, N, 0);
    s->flops += 2.0 * T * K * N;
}

void v4_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, double eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double ss = 0;
        for (int i = 0; i < cols; i++)
            ss += (double)xr[i] * xr[i];
        double k = 1.0 / sqrt(ss / cols + eps);
        for (int i = 0; i < cols; i++)
            yr[i] = (float)(xr[i] * k * (w ? w[i] : 1.0f));
    }
}

void v4_rope(float *x, int dh, int rd, const float *cs, const float *sn, int sign)
{
    float *a = x + dh - rd;
    for (int i = 0; i < rd / 2; i++) {
        double c = cs[i], sv = sign * (double)sn[i], x0 = a[2 * i], x1 = a[2 * i + 1];
        a[2 * i] = (float)(x0 * c - x1 * sv);
        a[2 * i + 1] = (float)(x1 * c + x0 * sv);
    }
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---------------------------------------------------------------- mHC */

/* pre/post/comb of every row from the streams s->hs, and the collapsed rows s->col. */
static void hc_mix(fwd_v4 *s, const float *fn, const float *base, const float *scale, int N)
{
    const hfc_config *c = s->c;
    int Hc = c->v4.hc_mult, D = c->hidden, W = Hc * D, nm = (2 + Hc) * Hc;
    double eps = c->v4.hc_eps;
    v4_rmsnorm(s->hs2, s->hs, NULL, N, W, c->rms_eps); /* hs2 as scratch: normed streams */
    v4_mm(s, s->mix, s->hs2, fn, N, W, nm);
    for (int r = 0; r < N; r++) {
        const float *mx = s->mix + (size_t)r * nm;
        float *pre = s->pre + (size_t)r * Hc, *post = s->post + (size_t)r * Hc;
        float *cb = s->comb + (size_t)r * Hc * Hc;
        double m[64 * 64];
        for (int j = 0; j < Hc; j++) {
            pre[j] = (float)(sigm(mx[j] * (double)scale[0] + base[j]) + eps);
            post[j] = (float)(2.0 * sigm(mx[Hc + j] * (double)scale[1] + base[Hc + j]));
        }
        for (int j = 0; j < Hc; j++) { /* softmax over k within row j */
            double *row = m + j * Hc, top = -INFINITY, se = 0;
            for (int k = 0; k < Hc; k++) {
                row[k] = mx[2 * Hc + j * Hc + k] * (double)scale[2] + base[2 * Hc + j * Hc + k];
                top = row[k] > top ? row[k] : top;
            }
            for (int k = 0; k < Hc; k++)
                se += (row[k] = exp(row[k] - top));
            for (int k = 0; k < Hc; k++)
                row[k] = row[k] / se + eps;
        }
        for (int it = 0; it < c->v4.hc_sinkhorn_iters; it++) {
            if (it > 0)
                for (int j = 0; j < Hc; j++) { /* rows */
                    double sum = 0;
                    for (int k = 0; k < Hc; k++)
                        sum += m[j * Hc + k];
                    for (int k = 0; k < Hc; k++)
                        m[j * Hc + k] /= sum + eps;
                }
            for (int k = 0; k < Hc; k++) { /* columns */
                double sum = 0;
                for (int j = 0; j < Hc; j++)
                    sum += m[j * Hc + k];
                for (int j = 0; j < Hc; j++)
                    m[j * Hc + k] /= sum + eps;
            }
        }
        for (int i = 0; i < Hc * Hc; i++)
            cb[i] = (float)m[i];
        const float *h = s->hs + (size_t)r * W;
        float *o = s->col + (size_t)r * D;
        for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int j = 0; j < Hc; j++)
                acc += (double)pre[j] * h[(size_t)j * D + d];
            o[d] = (float)acc;
        }
    }
}

/* h'[k] = post_k·y + Σ_j comb[j][k]·h[j] into s->hs2, then swapped into s->hs. */
static void hc_merge(fwd_v4 *s, int N)
{
    int Hc = s->c->v4.hc_mult, D = s->c->hidden, W = Hc * D;
    for (int r = 0; r < N; r++) {
        const float *h = s->hs + (size_t)r * W, *y = s->out + (size_t)r * D;
        const float *post = s->post + (size_t)r * Hc, *cb = s->comb + (size_t)r * Hc * Hc;
        float *o = s->hs2 + (size_t)r * W;
        for (int k = 0; k < Hc; k++)
            for (int d = 0; d < D; d++) {
                double acc = (double)post[k] * y[d];
                for (int j = 0; j < Hc; j++)
                    acc += (double)cb[j * Hc + k] * h[(size_t)j * D + d];
                o[(size_t)k * D + d] = (float)acc;
            }
    }
    float *t = s->hs;
    s->hs = s->hs2;
    s->hs2 = t;
}

/* ---------------------------------------------------------------- MoE */

static double activate(hfc_score f, double x)
{
    switch (f) {
    case HFC_SCORE_SQRTSOFTPLUS: return sqrt(x > 20 ? x : log1p(exp(x)));
    case HFC_SCORE_SIGMOID: return sigm(x);
    case HFC_SCORE_SOFTMAX: break;
    }
    return x; /* softmax: normalised over the row by the caller */
}

/* y = w2(silu(min(w1 x, L)) ⊙ clamp(w3 x, ±L)) for n rows of s->xs into s->fo; down-input
 * rows stay in s->fa. */
static void swiglu(fwd_v4 *s, const float *w1, const float *w3, const float *w2, int n)
{
    const hfc_config *c = s->c;
    int D = c->hidden, F = c->moe_intermediate;
    float L = (float)c->v4.swiglu_limit;
    v4_mm(s, s->fa, s->xs, w1, n, D, F);
    v4_mm(s, s->fb, s->xs, w3, n, D, F);
    for (size_t i = 0; i < (size_t)n * F; i++) {
        double g = s->fa[i] < L ? s->fa[i] : L, u = s->fb[i];
        u = u < -L ? -L : u > L ? L : u;
        s->fa[i] = (float)(g / (1.0 + exp(-g)) * u);
    }
    v4_mm(s, s->fo, s->fa, w2, n, F, D);
}

static int moe(fwd_v4 *s, const model_weights *w, int l, int S, int T, int route_all,
               const tap_set *taps, vl_err *err)
{
    const hfc_config *c = s->c;
    int N = S * T, D = c->hidden, E = c->n_experts, K = c->n_experts_per_tok,
        F = c->moe_intermediate, hash = c->v4.hash_moe[l];
    fwd_emit(taps, TAP_MLP_IN, l, -1, s->x, N, D, NULL, NULL, S, T);
    v4_mm(s, s->rlog, s->x, v4w(s, w, l, V4_GATE), N, D, E);
    const float *bias = hash ? NULL : v4w(s, w, l, V4_GATE_BIAS);
    const float *tid = hash ? v4w(s, w, l, V4_TID2EID) : NULL;
    for (int r = 0; r < N; r++) {
        const float *lg = s->rlog + (size_t)r * E;
        float *sc = s->score + (size_t)r * E;
        double se = 0, top = lg[0];
        for (int e = 0; e < E; e++) {
            sc[e] = (float)activate(c->v4.scoring, lg[e]);
            top = lg[e] > top ? lg[e] : top;
        }
        if (c->v4.scoring == HFC_SCORE_SOFTMAX) {
            for (int e = 0; e < E; e++)
                se += exp(lg[e] - top);
            for (int e = 0; e < E; e++)
                sc[e] = (float)(exp(lg[e] - top) / se);
        }
        int *sel = s->sel + (size_t)r * K;
        for (int k = 0; k < K; k++) {
            if (hash) {
                float f = tid[(size_t)s->ids[r] * K + k];
                if (!(f >= 0 && f < E && f == floorf(f)))
                    return vl_errf(err, VL_ERANGE, "forward: layer %d tid2eid[%d][%d] = %g is "
                                   "not an expert index", l, (int)s->ids[r], k, (double)f);
                sel[k] = (int)f;
                continue;
            }
            int best = -1; /* top-k of score + bias; ties to the lower index */
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int q = 0; q < k; q++)
                    taken |= sel[q] == e;
                if (!taken && (best < 0 || sc[e] + bias[e] > sc[best] + bias[best]))
                    best = e;
            }
            sel[k] = best;
        }
        double sum = 0, all = 0;
        for (int k = 0; k < K; k++)
            sum += sc[sel[k]];
        float *ch = s->choice + (size_t)r * 2 * E;
        for (int e = 0; e < E; e++)
            all += sc[e];
        for (int e = 0; e < E; e++) {
            ch[e] = (float)(sc[e] / all);
            ch[E + e] = 0.0f;
        }
        for (int k = 0; k < K; k++) {
            s->selw[(size_t)r * K + k] =
                (float)(sc[sel[k]] / (sum + 1e-20) * c->v4.routed_scaling);
            ch[E + sel[k]] += (float)(sc[sel[k]] / (sum + 1e-20));
        }
    }
    fwd_emit_route(taps, l, s->rlog, N, E, s->sel, s->selw, K, S, T);
    fwd_emit(taps, TAP_ROUTER_CHOICE, l, -1, s->choice, N, 2 * E, NULL, NULL, S, T);
    float *acc = s->hs2; /* scratch [N × D]: the routed sum (hs2 is free until hc_merge) */
    memset(acc, 0, (size_t)N * D * sizeof *acc);
    for (int e = 0; e < E; e++) {
        int n = 0;
        for (int r = 0; r < N; r++) {
            float wt = 0;
            int hit = 0;
            for (int k = 0; k < K; k++)
                if (s->sel[(size_t)r * K + k] == e) {
                    wt += s->selw[(size_t)r * K + k];
                    hit = 1;
                }
            if (hit || route_all) {
                s->rows[n] = r;
                s->roww[n++] = hit ? wt : 0.0f;
            }
        }
        for (int i = 0; i < n; i++)
            memcpy(s->xs + (size_t)i * D, s->x + (size_t)s->rows[i] * D, (size_t)D * 4);
        fwd_emit(taps, TAP_EXPERT_IN, l, e, s->xs, n, D, s->rows, s->roww, S, T);
        long b = s->ix[l][V4_EXPERTS] + 3L * e;
        if (n)
            swiglu(s, w->ext[b], w->ext[b + 1], w->ext[b + 2], n);
        fwd_emit(taps, TAP_EXPERT_DOWN_IN, l, e, s->fa, n, F, s->rows, s->roww, S, T);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < D; d++)
                acc[(size_t)s->rows[i] * D + d] += s->roww[i] * s->fo[(size_t)i * D + d];
    }
    memcpy(s->xs, s->x, (size_t)N * D * 4);
    swiglu(s, v4w(s, w, l, V4_SH_W1), v4w(s, w, l, V4_SH_W3), v4w(s, w, l, V4_SH_W2), N);
    fwd_emit(taps, TAP_SHARED_DOWN_IN, l, -1, s->fa, N, F, NULL, NULL, S, T);
    for (size_t i = 0; i < (size_t)N * D; i++)
        s->out[i] = acc[i] + s->fo[i];
    return 0;
}

/* ---------------------------------------------------------------- layers and head */

static int layers(fwd_v4 *s, mw_cache *mw, const model_weights *wb, int from, int to, int head,
                  int S, int T, int route_all, const tap_set *taps, vl_err *err)
{
    const hfc_config *c = s->c;
    int N = S * T, D = c->hidden, W = c->v4.hc_mult * D, rc;
    const model_weights *w;
    for (int l = from; l < to; l++) {
        if ((rc = mw_stage(mw, wb, l, &w, err)))
            return rc;
        hc_mix(s, v4w(s, w, l, V4_HC_ATTN_FN), v4w(s, w, l, V4_HC_ATTN_BASE),
               v4w(s, w, l, V4_HC_ATTN_SCALE), N);
        v4_rmsnorm(s->x, s->col, v4w(s, w, l, V4_ATTN_NORM), N, D, c->rms_eps);
        v4_attention(s, w, l, S, T, taps);
        hc_merge(s, N);
        hc_mix(s, v4w(s, w, l, V4_HC_FFN_FN), v4w(s, w, l, V4_HC_FFN_BASE),
               v4w(s, w, l, V4_HC_FFN_SCALE), N);
        v4_rmsnorm(s->x, s->col, v4w(s, w, l, V4_FFN_NORM), N, D, c->rms_eps);
        if ((rc = moe(s, w, l, S, T, route_all, taps, err)))
            return rc;
        hc_merge(s, N);
        fwd_emit(taps, TAP_RESIDUAL, l, -1, s->hs, N, W, NULL, NULL, S, T);
    }
    /* hc_head: pre only */
    if (!head)
        return 0;
    if ((rc = mw_stage(mw, wb, MW_HEAD, &w, err)))
        return rc;
    int Hc = c->v4.hc_mult;
    const float *fn = w->ext[s->g[V4_G_HC_FN]], *base = w->ext[s->g[V4_G_HC_BASE]];
    double scale = w->ext[s->g[V4_G_HC_SCALE]][0];
    v4_rmsnorm(s->hs2, s->hs, NULL, N, W, c->rms_eps);
    v4_mm(s, s->mix, s->hs2, fn, N, W, Hc);
    for (int r = 0; r < N; r++) {
        const float *h = s->hs + (size_t)r * W;
        double pre[64];
        for (int j = 0; j < Hc; j++)
            pre[j] = sigm(s->mix[(size_t)r * Hc + j] * scale + base[j]) + c->v4.hc_eps;
        for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int j = 0; j < Hc; j++)
                acc += pre[j] * h[(size_t)j * D + d];
            s->col[(size_t)r * D + d] = (float)acc;
        }
    }
    v4_rmsnorm(s->fin, s->col, w->ext[s->g[V4_G_NORM]], N, D, c->rms_eps);
    if ((rc = mw_head_logits(mw, wb, s->fin, N, s->logits, &s->flops, err)))
        return rc;
    fwd_emit(taps, TAP_LOGITS, c->n_layers, -1, s->logits, N, c->vocab, NULL, NULL, S, T);
    return 0;
}

int fwd_v4_embed(const model *m, const model_weights *w, const int32_t *ids, int n,
                 float *out, vl_err *err)
{
    const hfc_config *c = model_config(m);
    size_t D = (size_t)c->hidden, Hc = (size_t)c->v4.hc_mult;
    int rc = model_embed_rows(m, w, ids, n, out, Hc * D, err); /* stream 0 of each row */
    for (int r = 0; r < n && !rc; r++)
        for (size_t j = 1; j < Hc; j++)
            memcpy(out + ((size_t)r * Hc + j) * D, out + (size_t)r * Hc * D, D * sizeof *out);
    return rc;
}

int fwd_v4_run(fwd_v4 *s, mw_cache *mw, const model_weights *w, const int32_t *ids, int from,
               const float *hs_in, int n_seq, int seq_len, int route_all,
               const tap_set *taps, const float **logits, vl_err *err)
{
    const hfc_config *c = s->c;
    size_t N = (size_t)n_seq * seq_len, W = (size_t)c->v4.hc_mult * c->hidden;
    if (ids) {
        memcpy(s->ids, ids, N * sizeof *ids);
        s->ids_S = n_seq;
        s->ids_T = seq_len;
    } else if (s->ids_S != n_seq || s->ids_T != seq_len) {
        return vl_errf(err, VL_EARG, "forward: deepseek_v4 resumes only the batch of the "
                       "state's last run (its hash-routed layers need the token ids)");
    }
    s->flops = 0;
    int rc = 0;
    if (hs_in)
        memcpy(s->hs, hs_in, N * W * sizeof *s->hs);
    else
        rc = fwd_v4_embed(s->m, w, s->ids, (int)N, s->hs, err);
    if (!rc)
        rc = layers(s, mw, w, from, c->n_layers, 1, n_seq, seq_len, route_all, taps, err);
    *logits = rc ? NULL : s->logits;
    return rc;
}

int fwd_v4_layers(fwd_v4 *s, mw_cache *mw, const model_weights *w, const int32_t *ids,
                  int from, int to, float *hs, int n_seq, int seq_len, int route_all,
                  const tap_set *taps, vl_err *err)
{
    size_t N = (size_t)n_seq * seq_len, W = (size_t)s->c->v4.hc_mult * s->c->hidden;
    if (!ids)
        return vl_errf(err, VL_EARG, "forward: deepseek_v4 layers need the batch's token ids");
    memcpy(s->ids, ids, N * sizeof *ids); /* the hash-routed layers' and fwd_run_from's */
    s->ids_S = n_seq;
    s->ids_T = seq_len;
    s->flops = 0;
    memcpy(s->hs, hs, N * W * sizeof *s->hs);
    int rc = layers(s, mw, w, from, to, 0, n_seq, seq_len, route_all, taps, err);
    if (!rc)
        memcpy(hs, s->hs, N * W * sizeof *hs);
    return rc;
}

const float *fwd_v4_final_hidden(const fwd_v4 *s) { return s->fin; }
double fwd_v4_flops(const fwd_v4 *s) { return s->flops; }

/* ---------------------------------------------------------------- state */


static size_t layout(fwd_v4 *s, char *b)
{
    const hfc_config *c = s->c;
    const hfc_dsv4 *v = &c->v4;
    size_t N = (size_t)s->max_seq * s->max_len, T = (size_t)s->max_len, D = c->hidden,
           Hc = v->hc_mult, HD = (size_t)c->n_heads * c->head_dim, Dh = c->head_dim,
           Di = v->index_head_dim, Hi = v->index_heads, E = c->n_experts,
           K = c->n_experts_per_tok, F = c->moe_intermediate, Tc = s->max_tc, o = 0,
           cw = 2 * (Dh > Di ? Dh : Di), S = s->max_seq;
    s->hs = fwd_carve(b, &o, N * Hc * D * 4);
    s->hs2 = fwd_carve(b, &o, N * Hc * D * 4);
    s->mix = fwd_carve(b, &o, N * (2 + Hc) * Hc * 4);
    s->pre = fwd_carve(b, &o, N * Hc * 4);
    s->post = fwd_carve(b, &o, N * Hc * 4);
    s->comb = fwd_carve(b, &o, N * Hc * Hc * 4);
    s->col = fwd_carve(b, &o, N * D * 4);
    s->x = fwd_carve(b, &o, N * D * 4);
    s->qr = fwd_carve(b, &o, N * (size_t)v->q_lora_rank * 4);
    s->q = fwd_carve(b, &o, N * HD * 4);
    s->att = fwd_carve(b, &o, N * HD * 4);
    s->kv = fwd_carve(b, &o, N * Dh * 4);
    s->ga = fwd_carve(b, &o, N * (size_t)v->o_groups * v->o_lora_rank * 4);
    s->out = fwd_carve(b, &o, N * D * 4);
    s->ckv = fwd_carve(b, &o, T * cw * 4);
    s->cg = fwd_carve(b, &o, T * cw * 4);
    s->comp = fwd_carve(b, &o, S * (Tc + 1) * Dh * 4);
    s->icomp = fwd_carve(b, &o, S * (Tc + 1) * Di * 4);
    s->iq = fwd_carve(b, &o, N * Hi * Di * 4);
    s->iw = fwd_carve(b, &o, N * Hi * 4);
    s->allow = fwd_carve(b, &o, N * (Tc + 1));
    s->sc = fwd_carve(b, &o, (T + Tc + 1) * 4);
    s->isc = fwd_carve(b, &o, (Tc + 1) * 4);
    s->rlog = fwd_carve(b, &o, N * E * 4);
    s->score = fwd_carve(b, &o, N * E * 4);
    s->choice = fwd_carve(b, &o, N * 2 * E * 4);
    s->sel = fwd_carve(b, &o, N * K * sizeof(int));
    s->selw = fwd_carve(b, &o, N * K * 4);
    s->rows = fwd_carve(b, &o, N * sizeof(int));
    s->roww = fwd_carve(b, &o, N * 4);
    s->xs = fwd_carve(b, &o, N * D * 4);
    s->fo = fwd_carve(b, &o, N * D * 4);
    s->fa = fwd_carve(b, &o, N * F * 4);
    s->fb = fwd_carve(b, &o, N * F * 4);
    s->fin = fwd_carve(b, &o, N * D * 4);
    s->logits = fwd_carve(b, &o, N * (size_t)c->vocab * 4);
    s->ids = fwd_carve(b, &o, N * sizeof(int32_t));
    s->cos_m = fwd_carve(b, &o, T * (size_t)v->rope_dim_main / 2 * 4);
    s->sin_m = fwd_carve(b, &o, T * (size_t)v->rope_dim_main / 2 * 4);
    s->cos_c = fwd_carve(b, &o, T * (size_t)v->rope_dim_compress / 2 * 4);
    s->sin_c = fwd_carve(b, &o, T * (size_t)v->rope_dim_compress / 2 * 4);
    return o;
}

/* transformers' tables: inv_freq = 1/θ^(2i/rd) in float32 (YaRN: fwd_yarn_inv_freq's blend),
 * angle = t·inv_freq in float32, cos/sin × the YaRN attention factor. */
static void rope_table(float *cs, float *sn, int T, int rd, double theta, const hfc_yarn *y)
{
    double f[2048];
    if (y && y->on)
        fwd_yarn_inv_freq(y, theta, rd, f);
    double af = y && y->on ? y->attn_factor : 1.0;
    for (int i = 0; i < rd / 2; i++) {
        float inv = y && y->on ? (float)f[i]
                               : 1.0f / powf((float)theta, (float)(2 * i) / (float)rd);
        for (int t = 0; t < T; t++) {
            float a = (float)t * inv;
            cs[(size_t)t * (rd / 2) + i] = (float)(cosf(a) * af);
            sn[(size_t)t * (rd / 2) + i] = (float)(sinf(a) * af);
        }
    }
}

int fwd_v4_new(fwd_v4 **out, const model *m, int max_seq, int max_len, vl_err *err)
{
    const hfc_config *c = model_config(m);
    const hfc_dsv4 *v = &c->v4;
    *out = NULL;
    /* fixed-size scratch in the kernels: head_dim ≤ 1024, 2·rate ≤ 512, hc_mult ≤ 64 */
    if (c->head_dim > 1024 || v->rope_dim_compress > 4096 || v->rate_csa > 256 || v->rate_hca > 256 || v->hc_mult > 64)
        return vl_errf(err, VL_ECONFIG, "%s: deepseek_v4 forward supports head_dim ≤ 1024, "
                       "compress rates ≤ 256 and hc_mult ≤ 64", model_dir(m));
    fwd_v4 *s = vl_calloc(1, sizeof *s);
    if (!s || !(s->ix = vl_calloc((size_t)c->n_layers, sizeof *s->ix))) {
        vl_free(s);
        return vl_errf(err, VL_ENOMEM, "forward: out of memory");
    }
    s->m = m;
    s->c = c;
    s->max_seq = max_seq;
    s->max_len = max_len;
    int rmin = v->rate_csa < v->rate_hca ? v->rate_csa : v->rate_hca;
    s->max_tc = max_len / rmin + 1;
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < V4_SLOT_COUNT; k++)
            s->ix[l][k] = mdsv4_index(c, l, (v4_slot)k);
    for (int g = 0; g < V4_G_COUNT; g++)
        s->g[g] = mdsv4_global(c, (v4_global)g);
    size_t bytes = layout(s, NULL);
    if (!(s->block = vl_malloc(bytes + 64))) {
        fwd_v4_free(s);
        return vl_errf(err, VL_ENOMEM, "forward: out of memory for %zu MiB of buffers",
                       bytes >> 20);
    }
    layout(s, (char *)(((uintptr_t)s->block + 63) & ~(uintptr_t)63));
    rope_table(s->cos_m, s->sin_m, max_len, v->rope_dim_main, v->theta_main, NULL);
    rope_table(s->cos_c, s->sin_c, max_len, v->rope_dim_compress, v->theta_compress,
               &v->yarn_compress);
    *out = s;
    return 0;
}

void fwd_v4_free(fwd_v4 *s)
{
    if (!s)
        return;
    vl_free(s->block);
    vl_free(s->ix);
    vl_free(s);
}
