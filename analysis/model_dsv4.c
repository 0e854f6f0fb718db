/* analysis/model_dsv4.c — deepseek_v4's tensor plan (model_dsv4.h).
 *
 * Shapes follow DeepseekV4ForCausalLM (transformers 5.17): D hidden, H heads of Dh, Rq
 * q_lora_rank, G o_groups of Ro, Hc hc_mult, E experts of F, K top-k, Di / Hi indexer head
 * dim / heads, m compress rate; CSA compressors project to 2·Dh (two overlapping series),
 * HCA ones to Dh; the indexer's compressor to 2·Di.
 */
#include "model_dsv4.h"
#include "model_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name; /* after "model.layers.L." ("%d" = expert) */
    model_class cls;
    int rows, cols;
} slot_spec;

/* Slot S of layer L: 0 if the layer has none. */
static int spec(const hfc_config *c, int l, v4_slot s, slot_spec *o)
{
    const hfc_dsv4 *v = &c->v4;
    int D = c->hidden, H = c->n_heads, Dh = c->head_dim, HD = H * Dh, Rq = v->q_lora_rank,
        G = v->o_groups, Ro = v->o_lora_rank, Hc = v->hc_mult, Di = v->index_head_dim,
        Hi = v->index_heads, E = c->n_experts, F = c->moe_intermediate, mix = (2 + Hc) * Hc;
    int kind = v->att_kind[l], csa = kind == HFC_ATT_CSA, comp = kind != HFC_ATT_SLIDING;
    int rate = csa ? v->rate_csa : v->rate_hca, cw = (csa ? 2 : 1) * Dh, hash = v->hash_moe[l];
    const model_class A = MODEL_C_ATTN, N = MODEL_C_NORM, C = MODEL_C_COMPRESS,
                      R = MODEL_C_ROUTER, S = MODEL_C_SHARED, X = MODEL_C_HC;
    switch (s) {
    case V4_ATTN_NORM: *o = (slot_spec){"attn_norm.weight", N, 1, D}; return 1;
    case V4_WQ_A: *o = (slot_spec){"attn.wq_a.weight", A, Rq, D}; return 1;
    case V4_Q_NORM: *o = (slot_spec){"attn.q_norm.weight", N, 1, Rq}; return 1;
    case V4_WQ_B: *o = (slot_spec){"attn.wq_b.weight", A, HD, Rq}; return 1;
    case V4_WKV: *o = (slot_spec){"attn.wkv.weight", A, Dh, D}; return 1;
    case V4_KV_NORM: *o = (slot_spec){"attn.norm.weight", N, 1, Dh}; return 1;
    case V4_WO_A: *o = (slot_spec){"attn.wo_a.weight", A, G * Ro, HD / G}; return 1;
    case V4_WO_B: *o = (slot_spec){"attn.wo_b.weight", A, D, G * Ro}; return 1;
    case V4_SINKS: *o = (slot_spec){"attn.attn_sink", A, 1, H}; return 1;
    case V4_C_APE: *o = (slot_spec){"attn.compressor.ape", C, rate, cw}; return comp;
    case V4_C_WKV: *o = (slot_spec){"attn.compressor.wkv.weight", C, cw, D}; return comp;
    case V4_C_WGATE: *o = (slot_spec){"attn.compressor.wgate.weight", C, cw, D}; return comp;
    case V4_C_NORM: *o = (slot_spec){"attn.compressor.norm.weight", N, 1, Dh}; return comp;
    case V4_I_APE:
        *o = (slot_spec){"attn.indexer.compressor.ape", C, v->rate_csa, 2 * Di};
        return csa;
    case V4_I_WKV:
        *o = (slot_spec){"attn.indexer.compressor.wkv.weight", C, 2 * Di, D};
        return csa;
    case V4_I_WGATE:
        *o = (slot_spec){"attn.indexer.compressor.wgate.weight", C, 2 * Di, D};
        return csa;
    case V4_I_NORM:
        *o = (slot_spec){"attn.indexer.compressor.norm.weight", N, 1, Di};
        return csa;
    case V4_I_WQ_B: *o = (slot_spec){"attn.indexer.wq_b.weight", C, Hi * Di, Rq}; return csa;
    case V4_I_WPROJ: *o = (slot_spec){"attn.indexer.weights_proj.weight", C, Hi, D}; return csa;
    case V4_FFN_NORM: *o = (slot_spec){"ffn_norm.weight", N, 1, D}; return 1;
    case V4_GATE: *o = (slot_spec){"ffn.gate.weight", R, E, D}; return 1;
    case V4_GATE_BIAS: *o = (slot_spec){"ffn.gate.bias", R, 1, E}; return !hash;
    case V4_TID2EID:
        *o = (slot_spec){"ffn.gate.tid2eid", R, c->vocab, c->n_experts_per_tok};
        return hash;
    case V4_EXPERTS: *o = (slot_spec){"ffn.experts.%d.w1.weight", MODEL_C_EXPERT, F, D}; return 1;
    case V4_SH_W1: *o = (slot_spec){"ffn.shared_experts.w1.weight", S, F, D}; return 1;
    case V4_SH_W3: *o = (slot_spec){"ffn.shared_experts.w3.weight", S, F, D}; return 1;
    case V4_SH_W2: *o = (slot_spec){"ffn.shared_experts.w2.weight", S, D, F}; return 1;
    case V4_HC_ATTN_FN: *o = (slot_spec){"hc_attn_fn", X, mix, Hc * D}; return 1;
    case V4_HC_ATTN_BASE: *o = (slot_spec){"hc_attn_base", X, 1, mix}; return 1;
    case V4_HC_ATTN_SCALE: *o = (slot_spec){"hc_attn_scale", X, 1, 3}; return 1;
    case V4_HC_FFN_FN: *o = (slot_spec){"hc_ffn_fn", X, mix, Hc * D}; return 1;
    case V4_HC_FFN_BASE: *o = (slot_spec){"hc_ffn_base", X, 1, mix}; return 1;
    case V4_HC_FFN_SCALE: *o = (slot_spec){"hc_ffn_scale", X, 1, 3}; return 1;
    case V4_SLOT_COUNT: break;
    }
    (void)E;
    return 0;
}

static long slot_count(const hfc_config *c, int l, v4_slot s)
{
    slot_spec o;
    if (!spec(c, l, s, &o))
        return 0;
    return s == V4_EXPERTS ? 3L * c->n_experts : 1;
}

long mdsv4_index(const hfc_config *c, int layer, v4_slot slot)
{
    slot_spec o;
    if (layer < 0 || layer >= c->n_layers || !spec(c, layer, slot, &o))
        return -1;
    long i = 1; /* the embedding */
    for (int l = 0; l < layer; l++)
        for (int s = 0; s < V4_SLOT_COUNT; s++)
            i += slot_count(c, l, (v4_slot)s);
    for (int s = 0; s < (int)slot; s++)
        i += slot_count(c, layer, (v4_slot)s);
    return i;
}

long mdsv4_global(const hfc_config *c, v4_global g)
{
    if (g == V4_G_EMBED)
        return 0;
    if (g == V4_G_HEAD && c->tie_embeddings)
        return -1;
    long i = 1;
    for (int l = 0; l < c->n_layers; l++)
        for (int s = 0; s < V4_SLOT_COUNT; s++)
            i += slot_count(c, l, (v4_slot)s);
    return i + (long)g - 1;
}

int mdsv4_plan(model *m, const hfc_config *c, vl_err *err)
{
    int rc = model_plan_ext(m, MODEL_C_EMBED, -1, -1, c->vocab, c->hidden, err,
                            "model.embed_tokens.weight");
    static const char *const ffn[3] = {"w1", "w3", "w2"};
    for (int l = 0; l < c->n_layers && !rc; l++)
        for (int s = 0; s < V4_SLOT_COUNT && !rc; s++) {
            slot_spec o;
            if (!spec(c, l, (v4_slot)s, &o))
                continue;
            if (s != V4_EXPERTS) {
                rc = model_plan_ext(m, o.cls, l, -1, o.rows, o.cols, err, "model.layers.%d.%s",
                                    l, o.name);
                continue;
            }
            for (int e = 0; e < c->n_experts && !rc; e++)
                for (int k = 0; k < 3 && !rc; k++)
                    rc = model_plan_ext(m, MODEL_C_EXPERT, l, e, k == 2 ? c->hidden : o.rows,
                                        k == 2 ? o.rows : o.cols, err,
                                        "model.layers.%d.ffn.experts.%d.%s.weight", l, e, ffn[k]);
        }
    int Hc = c->v4.hc_mult;
    if (!rc)
        rc = model_plan_ext(m, MODEL_C_HC, -1, -1, Hc, Hc * c->hidden, err, "model.hc_head.hc_fn");
    if (!rc)
        rc = model_plan_ext(m, MODEL_C_HC, -1, -1, 1, Hc, err, "model.hc_head.hc_base");
    if (!rc)
        rc = model_plan_ext(m, MODEL_C_HC, -1, -1, 1, 1, err, "model.hc_head.hc_scale");
    if (!rc)
        rc = model_plan_ext(m, MODEL_C_NORM, -1, -1, 1, c->hidden, err, "model.norm.weight");
    if (!rc && !c->tie_embeddings)
        rc = model_plan_ext(m, MODEL_C_LM_HEAD, -1, -1, c->vocab, c->hidden, err, "head.weight");
    return rc;
}
