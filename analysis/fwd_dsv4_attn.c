/* analysis/fwd_dsv4_attn.c — DeepseekV4Attention (transformers 5.17), one prefill, no cache.
 *
 *   qr   = q_norm(x·wq_aᵀ)                      q = per-head unweighted RMSNorm(qr·wq_bᵀ)
 *   kv   = norm(x·wkvᵀ)                         one head, read as key and as value
 *   rope interleaved pairs (x₂ᵢ, x₂ᵢ₊₁) on each head's trailing rd dims, position t; sliding
 *        layers use the "main" theta, CSA/HCA layers the "compress" one
 *   keys of query t: local t−W < j ≤ t, plus compressed entries (HCA: every entry w with
 *        w < (t+1)/m; CSA: the lightning indexer's top-k among those)
 *   p    = softmax over [q·k/√Dh ..., sink_h] (the sink's share is dropped), o = Σ p·kv,
 *        then the conjugate rope at t on o's trailing rd dims
 *   out  = wo_b · concat_g(wo_a[g] · o[group g])  (grouped low-rank output projection)
 *
 * Compressor of rate m over a sequence (complete windows only, T/m entries):
 *   HCA  entry w, channel d: Σ_i softmax_i(gate[wm+i][d] + ape[i][d]) · kvc[wm+i][d]
 *   CSA  2m slots: window w−1's first half of the channels (Ca) and window w's second (Cb);
 *        window 0's Ca slots are empty (weight 0)
 *   then norm (RMSNorm) and rope at position w·m (compress theta).
 * Indexer (CSA): its own CSA-style compressor at Di; queries qr·wq_bᵀ per head with rope at t;
 *   score(t, w) = Σ_h relu(q_h·K_w)/√Di · (x·weights_projᵀ)_h/√Hi; the top index_topk entries
 *   with w < (t+1)/m (ties: lower index; fewer candidates: all of them).
 */
#include "fwd_dsv4_int.h"

#include "../core/kern.h"
#include "fwd_ops.h"

#include <math.h>
#include <string.h>

/* One sequence's compressor: X [T × D] rows at stride D; writes Tc = T/m entries [Tc × dh]
 * to out. overlap: CSA layout (projections 2·dh wide), else HCA (dh wide). */
static void compress(fwd_v4 *s, const float *X, int T, int D, const float *wkv,
                     const float *wgate, const float *ape, const float *norm, int m, int dh,
                     int overlap, float *out)
{
    const hfc_config *c = s->c;
    int cw = (overlap ? 2 : 1) * dh, Tc = T / m, rd = c->v4.rope_dim_compress;
    if (Tc == 0)
        return;
    v4_mm(s, s->ckv, X, wkv, Tc * m, D, cw);
    v4_mm(s, s->cg, X, wgate, Tc * m, D, cw);
    float g[512], v[512]; /* 2m slots; rates above 256 are refused by fwd_v4_new */
    for (int w = 0; w < Tc; w++) {
        for (int d = 0; d < dh; d++) {
            int n = 0;
            if (overlap && w > 0)
                for (int i = 0; i < m; i++) {
                    size_t r = (size_t)((w - 1) * m + i) * cw;
                    v[n] = s->ckv[r + d];
                    g[n++] = s->cg[r + d] + ape[(size_t)i * cw + d];
                }
            int off = overlap ? dh : 0;
            for (int i = 0; i < m; i++) {
                size_t r = (size_t)(w * m + i) * cw;
                v[n] = s->ckv[r + off + d];
                g[n++] = s->cg[r + off + d] + ape[(size_t)i * cw + off + d];
            }
            float mx = g[0];
            for (int i = 1; i < n; i++)
                mx = g[i] > mx ? g[i] : mx;
            double se = 0, acc = 0;
            for (int i = 0; i < n; i++) {
                double e = exp((double)g[i] - mx);
                se += e;
                acc += e * v[i];
            }
            out[(size_t)w * dh + d] = (float)(acc / se);
        }
    }
    v4_rmsnorm(out, out, norm, Tc, dh, c->rms_eps);
    int half = rd / 2;
    for (int w = 0; w < Tc; w++)
        v4_rope(out + (size_t)w * dh, dh, rd, s->cos_c + (size_t)w * m * half,
                s->sin_c + (size_t)w * m * half, 1);
}

/* CSA: the indexer's picks for every query of sequence sq into s->allow rows. */
static void indexer(fwd_v4 *s, const model_weights *w, int l, int sq, int T)
{
    const hfc_config *c = s->c;
    const hfc_dsv4 *v = &c->v4;
    int D = c->hidden, m = v->rate_csa, Di = v->index_head_dim, Hi = v->index_heads,
        Rq = v->q_lora_rank, Tc = T / m, rd = v->rope_dim_compress, half = rd / 2;
    size_t r0 = (size_t)sq * T;
    float *K = s->icomp + (size_t)sq * s->max_tc * Di;
    compress(s, s->x + r0 * D, T, D, v4w(s, w, l, V4_I_WKV), v4w(s, w, l, V4_I_WGATE),
             v4w(s, w, l, V4_I_APE), v4w(s, w, l, V4_I_NORM), m, Di, 1, K);
    float *q = s->iq + r0 * Hi * Di, *hw = s->iw + r0 * Hi;
    v4_mm(s, q, s->qr + r0 * Rq, v4w(s, w, l, V4_I_WQ_B), T, Rq, Hi * Di);
    v4_mm(s, hw, s->x + r0 * D, v4w(s, w, l, V4_I_WPROJ), T, D, Hi);
    double qs = 1.0 / sqrt((double)Di), ws = 1.0 / sqrt((double)Hi);
    for (int t = 0; t < T; t++) {
        unsigned char *al = s->allow + (r0 + t) * s->max_tc;
        memset(al, 0, (size_t)s->max_tc);
        int lim = (t + 1) / m; /* entries 0..lim-1 are complete before t */
        lim = lim < Tc ? lim : Tc;
        for (int h = 0; h < Hi; h++)
            v4_rope(q + ((size_t)t * Hi + h) * Di, Di, rd, s->cos_c + (size_t)t * half,
                    s->sin_c + (size_t)t * half, 1);
        for (int e = 0; e < lim; e++) {
            double acc = 0;
            for (int h = 0; h < Hi; h++) {
                const float *qh = q + ((size_t)t * Hi + h) * Di, *k = K + (size_t)e * Di;
                double dot = 0;
                for (int d = 0; d < Di; d++)
                    dot += (double)qh[d] * k[d];
                acc += (dot > 0 ? dot : 0) * qs * (hw[(size_t)t * Hi + h] * ws);
            }
            s->isc[e] = (float)acc;
        }
        int k = v->index_topk < lim ? v->index_topk : lim;
        for (int j = 0; j < k; j++) { /* k largest, lower index first among equals */
            int best = -1;
            for (int e = 0; e < lim; e++)
                if (!al[e] && (best < 0 || s->isc[e] > s->isc[best]))
                    best = e;
            al[best] = 1;
        }
    }
}

/* Attention of one sequence, all heads: q, kv rows r0.., compressed entries C [Tc × Dh]. */
static void attend(fwd_v4 *s, const float *sinks, int l, size_t r0, int T, const float *C,
                   int Tc)
{
    const hfc_config *c = s->c;
    int H = c->n_heads, Dh = c->head_dim, W = c->v4.sliding_window, kind = c->v4.att_kind[l];
    int m = kind == HFC_ATT_HCA ? c->v4.rate_hca : c->v4.rate_csa;
    double scale = 1.0 / sqrt((double)Dh);
    for (int t = 0; t < T; t++) {
        int j0 = t - W + 1 > 0 ? t - W + 1 : 0;
        const unsigned char *al = s->allow + (r0 + t) * s->max_tc;
        int lim = kind == HFC_ATT_HCA ? (t + 1) / m : Tc;
        lim = lim < Tc ? lim : Tc;
        for (int h = 0; h < H; h++) {
            const float *qh = s->q + (r0 + t) * H * Dh + (size_t)h * Dh;
            float *o = s->att + (r0 + t) * H * Dh + (size_t)h * Dh;
            double mx = sinks[h];
            int n = 0;
            for (int j = j0; j <= t; j++, n++) {
                const float *k = s->kv + (r0 + j) * Dh;
                double dot = 0;
                for (int d = 0; d < Dh; d++)
                    dot += (double)qh[d] * k[d];
                s->sc[n] = (float)(dot * scale);
                mx = s->sc[n] > mx ? s->sc[n] : mx;
            }
            for (int e = 0; e < lim; e++) {
                if (kind == HFC_ATT_CSA && !al[e])
                    continue;
                const float *k = C + (size_t)e * Dh;
                double dot = 0;
                for (int d = 0; d < Dh; d++)
                    dot += (double)qh[d] * k[d];
                s->sc[n] = (float)(dot * scale);
                mx = s->sc[n] > mx ? s->sc[n] : mx;
                n++;
            }
            double se = exp(sinks[h] - mx);
            for (int i = 0; i < n; i++)
                se += exp(s->sc[i] - mx);
            double acc[1024];
            for (int d = 0; d < Dh; d++)
                acc[d] = 0;
            n = 0;
            for (int j = j0; j <= t; j++, n++) {
                double p = exp(s->sc[n] - mx) / se;
                const float *k = s->kv + (r0 + j) * Dh;
                for (int d = 0; d < Dh; d++)
                    acc[d] += p * k[d];
            }
            for (int e = 0; e < lim; e++) {
                if (kind == HFC_ATT_CSA && !al[e])
                    continue;
                double p = exp(s->sc[n++] - mx) / se;
                const float *k = C + (size_t)e * Dh;
                for (int d = 0; d < Dh; d++)
                    acc[d] += p * k[d];
            }
            for (int d = 0; d < Dh; d++)
                o[d] = (float)acc[d];
        }
    }
}

void v4_attention(fwd_v4 *s, const model_weights *w, int l, int S, int T, const tap_set *taps)
{
    const hfc_config *c = s->c;
    const hfc_dsv4 *v = &c->v4;
    int N = S * T, D = c->hidden, H = c->n_heads, Dh = c->head_dim, HD = H * Dh,
        Rq = v->q_lora_rank, G = v->o_groups, Ro = v->o_lora_rank, kind = v->att_kind[l];
    int main_rope = kind == HFC_ATT_SLIDING;
    int rd = main_rope ? v->rope_dim_main : v->rope_dim_compress, half = rd / 2;
    const float *cs = main_rope ? s->cos_m : s->cos_c, *sn = main_rope ? s->sin_m : s->sin_c;
    fwd_emit(taps, TAP_ATTN_IN, l, -1, s->x, N, D, NULL, NULL, S, T);
    v4_mm(s, s->qr, s->x, v4w(s, w, l, V4_WQ_A), N, D, Rq);
    v4_rmsnorm(s->qr, s->qr, v4w(s, w, l, V4_Q_NORM), N, Rq, c->rms_eps);
    fwd_emit(taps, TAP_Q_B_IN, l, -1, s->qr, N, Rq, NULL, NULL, S, T);
    v4_mm(s, s->q, s->qr, v4w(s, w, l, V4_WQ_B), N, Rq, HD);
    v4_rmsnorm(s->q, s->q, NULL, N * H, Dh, c->rms_eps);
    v4_mm(s, s->kv, s->x, v4w(s, w, l, V4_WKV), N, D, Dh);
    v4_rmsnorm(s->kv, s->kv, v4w(s, w, l, V4_KV_NORM), N, Dh, c->rms_eps);
    for (int r = 0; r < N; r++) {
        const float *cr = cs + (size_t)(r % T) * half, *sr = sn + (size_t)(r % T) * half;
        for (int h = 0; h < H; h++)
            v4_rope(s->q + ((size_t)r * H + h) * Dh, Dh, rd, cr, sr, 1);
        v4_rope(s->kv + (size_t)r * Dh, Dh, rd, cr, sr, 1);
    }
    int m = kind == HFC_ATT_HCA ? v->rate_hca : v->rate_csa, Tc = kind == HFC_ATT_SLIDING ? 0 : T / m;
    for (int sq = 0; sq < S; sq++) {
        size_t r0 = (size_t)sq * T;
        float *C = s->comp + (size_t)sq * s->max_tc * Dh;
        if (kind != HFC_ATT_SLIDING)
            compress(s, s->x + r0 * D, T, D, v4w(s, w, l, V4_C_WKV), v4w(s, w, l, V4_C_WGATE),
                     v4w(s, w, l, V4_C_APE), v4w(s, w, l, V4_C_NORM), m, Dh,
                     kind == HFC_ATT_CSA, C);
        if (kind == HFC_ATT_CSA)
            indexer(s, w, l, sq, T);
        attend(s, v4w(s, w, l, V4_SINKS), l, r0, T, C, Tc);
    }
    for (int r = 0; r < N; r++)
        for (int h = 0; h < H; h++)
            v4_rope(s->att + ((size_t)r * H + h) * Dh, Dh, rd, cs + (size_t)(r % T) * half,
                    sn + (size_t)(r % T) * half, -1);
    const float *wo_a = v4w(s, w, l, V4_WO_A);
    int gin = HD / G;
    for (int g = 0; g < G && tap_wants(taps, TAP_ATTN_O_IN); g++) { /* wo_a's G inputs */
        tap_event ev = {.point = TAP_ATTN_O_IN, .layer = l, .expert = -1,
                        .data = s->att + (size_t)g * gin, .rows = N, .cols = gin,
                        .stride = (size_t)HD, .n_seq = S, .seq_len = T};
        tap_emit(taps, &ev);
    }
    for (int g = 0; g < G; g++) /* group g: its slice of att through its Ro rows of wo_a */
        kern_matmul_st(s->ga + (size_t)g * Ro, G * Ro, s->att + (size_t)g * gin, HD,
                       wo_a + (size_t)g * Ro * gin, gin, N, gin, Ro, 1.0f, 0);
    s->flops += 2.0 * N * HD * Ro;
    fwd_emit(taps, TAP_O_LORA_IN, l, -1, s->ga, N, G * Ro, NULL, NULL, S, T);
    v4_mm(s, s->out, s->ga, v4w(s, w, l, V4_WO_B), N, G * Ro, D);
}
