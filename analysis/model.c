/* analysis/model.c — config + memory-mapped safetensors, float32 on demand, bindings.
 *
 * Tensor names follow Hugging Face transformers' modeling files: LlamaForCausalLM,
 * Qwen2/Qwen3ForCausalLM (dense), Qwen2MoeForCausalLM (mlp.gate router, mlp.experts.E.*,
 * mlp.shared_expert.*, mlp.shared_expert_gate), Qwen3MoeForCausalLM (no shared expert),
 * MixtralForCausalLM (block_sparse_moe.gate, experts.E.w1 = gate, w3 = up, w2 = down).
 * The expected set is built from the config first (the "plan"), then looked up in the files,
 * so a missing or misshapen tensor is reported by its name before anything is converted.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"
#include "model_int.h"

#include "../io/st.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- constants and types */

enum { NAME_MAX_LEN = 112 };

/* Where a tensor lives in a binding. */
typedef enum {
    K_EMBED, K_FINAL_NORM, K_LM_HEAD,
    K_ATTN_NORM, K_WQ, K_WK, K_WV, K_BQ, K_BK, K_BV, K_WO, K_BO, K_QNORM, K_KNORM,
    K_MLP_NORM, K_ROUTER, K_EXP_GATE, K_EXP_UP, K_EXP_DOWN,
    K_SH_GATE, K_SH_UP, K_SH_DOWN, K_SH_EXPGATE, K_MLP_GATE, K_MLP_UP, K_MLP_DOWN,
    K_QA, K_QA_NORM, K_QB, K_KVA, K_KVA_NORM, K_KVB, K_ROUTER_BIAS, /* deepseek_v3 */
    K_EXT /* binding ext[tensor index] (deepseek_v4) */
} tkind;

struct model {
    hfc_config cfg;
    char *dir;
    st_set *set;            /* the mapped files, open until model_close */
    const st_tensor **src;  /* [n_tensors] stored tensor of each planned one */
    const st_tensor **scale;/* [n_tensors] its FP8 block scales, NULL if not FP8 */
    long embed_ix;          /* the embedding's tensor index */
    model_tensor *tensors;  /* [n_tensors] */
    tkind *kinds;           /* [n_tensors] */
    char (*names)[NAME_MAX_LEN];
    size_t n_tensors, cap;
    model_weights *base;
    model_info info;
};

/* ---------------------------------------------------------------- the plan */

static int plan_vadd(model *m, tkind k, model_class cls, int layer, int expert, int rows,
                     int cols, vl_err *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 9, 0)));

static int plan_vadd(model *m, tkind k, model_class cls, int layer, int expert, int rows,
                     int cols, vl_err *err, const char *fmt, va_list ap)
{
    if (m->n_tensors == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        model_tensor *t = vl_realloc(m->tensors, cap * sizeof *t);
        if (t)
            m->tensors = t;
        tkind *kk = vl_realloc(m->kinds, cap * sizeof *kk);
        if (kk)
            m->kinds = kk;
        char(*nn)[NAME_MAX_LEN] = vl_realloc(m->names, cap * sizeof *nn);
        if (nn)
            m->names = nn;
        if (!t || !kk || !nn)
            return vl_errf(err, VL_ENOMEM, "%s: out of memory planning tensors", m->dir);
        m->cap = cap;
    }
    size_t i = m->n_tensors++;
    vsnprintf(m->names[i], NAME_MAX_LEN, fmt, ap);
    m->kinds[i] = k;
    m->tensors[i] = (model_tensor){NULL, cls, layer, expert, rows, cols,
                                   (int64_t)rows * cols, 0};
    return 0;
}

static int plan_add(model *m, tkind k, model_class cls, int layer, int expert, int rows,
                    int cols, vl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static int plan_add(model *m, tkind k, model_class cls, int layer, int expert, int rows,
                    int cols, vl_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = plan_vadd(m, k, cls, layer, expert, rows, cols, err, fmt, ap);
    va_end(ap);
    return rc;
}

int model_plan_ext(model *m, model_class cls, int layer, int expert, int rows, int cols,
                   vl_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = plan_vadd(m, K_EXT, cls, layer, expert, rows, cols, err, fmt, ap);
    va_end(ap);
    return rc;
}

/* The tensors of one routed or shared SwiGLU block, Hugging Face names. */
static int plan_ffn(model *m, tkind kg, model_class cls, int l, int e, int F, const char *pre,
                    int mixtral, vl_err *err)
{
    int D = m->cfg.hidden, rc;
    const char *g = mixtral ? "w1" : "gate_proj", *u = mixtral ? "w3" : "up_proj",
               *d = mixtral ? "w2" : "down_proj";
    if ((rc = plan_add(m, kg, cls, l, e, F, D, err, "%s.%s.weight", pre, g)) ||
        (rc = plan_add(m, kg + 1, cls, l, e, F, D, err, "%s.%s.weight", pre, u)) ||
        (rc = plan_add(m, kg + 2, cls, l, e, D, F, err, "%s.%s.weight", pre, d)))
        return rc;
    return 0;
}

/* ---- deepseek_v3 (DeepseekV3DecoderLayer: MLA, dense MLP below first_k_dense_replace, else
 * router with e_score_correction_bias, routed experts and mlp.shared_experts) ---- */
static int plan_layer_dsv3(model *m, int l, vl_err *err)
{
    const hfc_config *c = &m->cfg;
    const hfc_dsv3 *ds = &c->ds;
    int D = c->hidden, H = c->n_heads, Dqk = ds->qk_nope_dim + ds->qk_rope_dim, rc;
    int Rq = ds->q_lora_rank, Rkv = ds->kv_lora_rank;
    char p[32], pre[NAME_MAX_LEN];
    snprintf(p, sizeof p, "model.layers.%d", l);
    if ((rc = plan_add(m, K_ATTN_NORM, MODEL_C_NORM, l, -1, 1, D, err,
                       "%s.input_layernorm.weight", p)))
        return rc;
    if (Rq > 0 &&
        ((rc = plan_add(m, K_QA, MODEL_C_ATTN, l, -1, Rq, D, err, "%s.self_attn.q_a_proj.weight", p)) ||
         (rc = plan_add(m, K_QA_NORM, MODEL_C_NORM, l, -1, 1, Rq, err,
                        "%s.self_attn.q_a_layernorm.weight", p)) ||
         (rc = plan_add(m, K_QB, MODEL_C_ATTN, l, -1, H * Dqk, Rq, err,
                        "%s.self_attn.q_b_proj.weight", p))))
        return rc;
    if (Rq == 0 && (rc = plan_add(m, K_WQ, MODEL_C_ATTN, l, -1, H * Dqk, D, err,
                                  "%s.self_attn.q_proj.weight", p)))
        return rc;
    if ((rc = plan_add(m, K_KVA, MODEL_C_ATTN, l, -1, Rkv + ds->qk_rope_dim, D, err,
                       "%s.self_attn.kv_a_proj_with_mqa.weight", p)) ||
        (rc = plan_add(m, K_KVA_NORM, MODEL_C_NORM, l, -1, 1, Rkv, err,
                       "%s.self_attn.kv_a_layernorm.weight", p)) ||
        (rc = plan_add(m, K_KVB, MODEL_C_ATTN, l, -1, H * (ds->qk_nope_dim + ds->v_head_dim), Rkv,
                       err, "%s.self_attn.kv_b_proj.weight", p)) ||
        (rc = plan_add(m, K_WO, MODEL_C_ATTN, l, -1, D, H * ds->v_head_dim, err,
                       "%s.self_attn.o_proj.weight", p)) ||
        (rc = plan_add(m, K_MLP_NORM, MODEL_C_NORM, l, -1, 1, D, err,
                       "%s.post_attention_layernorm.weight", p)))
        return rc;
    snprintf(pre, sizeof pre, "%s.mlp", p);
    if (!c->layer_is_moe[l])
        return plan_ffn(m, K_MLP_GATE, MODEL_C_MLP, l, -1, c->intermediate, pre, 0, err);
    if ((rc = plan_add(m, K_ROUTER, MODEL_C_ROUTER, l, -1, c->n_experts, D, err,
                       "%s.mlp.gate.weight", p)) ||
        (rc = plan_add(m, K_ROUTER_BIAS, MODEL_C_ROUTER, l, -1, 1, c->n_experts, err,
                       "%s.mlp.gate.e_score_correction_bias", p)))
        return rc;
    for (int e = 0; e < c->n_experts; e++) {
        snprintf(pre, sizeof pre, "%s.mlp.experts.%d", p, e);
        if ((rc = plan_ffn(m, K_EXP_GATE, MODEL_C_EXPERT, l, e, c->moe_intermediate, pre, 0, err)))
            return rc;
    }
    snprintf(pre, sizeof pre, "%s.mlp.shared_experts", p);
    return c->shared_intermediate > 0
               ? plan_ffn(m, K_SH_GATE, MODEL_C_SHARED, l, -1, c->shared_intermediate, pre, 0, err)
               : 0;
}

static int plan_layer(model *m, int l, vl_err *err)
{
    if (m->cfg.arch == HFC_DEEPSEEK_V3)
        return plan_layer_dsv3(m, l, err);
    const hfc_config *c = &m->cfg;
    int D = c->hidden, Dq = c->n_heads * c->head_dim, Dkv = c->n_kv_heads * c->head_dim, rc;
    int mixtral = c->arch == HFC_MIXTRAL;
    /* llama and qwen3 put a bias on o_proj too when attention_bias is set; qwen2 never does */
    int o_bias = c->qkv_bias && (c->arch == HFC_LLAMA || c->arch == HFC_QWEN3 ||
                                 c->arch == HFC_QWEN3_MOE);
    char p[32], pre[NAME_MAX_LEN];
    snprintf(p, sizeof p, "model.layers.%d", l);
    if ((rc = plan_add(m, K_ATTN_NORM, MODEL_C_NORM, l, -1, 1, D, err,
                       "%s.input_layernorm.weight", p)) ||
        (rc = plan_add(m, K_WQ, MODEL_C_ATTN, l, -1, Dq, D, err, "%s.self_attn.q_proj.weight", p)) ||
        (rc = plan_add(m, K_WK, MODEL_C_ATTN, l, -1, Dkv, D, err, "%s.self_attn.k_proj.weight", p)) ||
        (rc = plan_add(m, K_WV, MODEL_C_ATTN, l, -1, Dkv, D, err, "%s.self_attn.v_proj.weight", p)) ||
        (rc = plan_add(m, K_WO, MODEL_C_ATTN, l, -1, D, Dq, err, "%s.self_attn.o_proj.weight", p)))
        return rc;
    if (c->qkv_bias &&
        ((rc = plan_add(m, K_BQ, MODEL_C_ATTN, l, -1, 1, Dq, err, "%s.self_attn.q_proj.bias", p)) ||
         (rc = plan_add(m, K_BK, MODEL_C_ATTN, l, -1, 1, Dkv, err, "%s.self_attn.k_proj.bias", p)) ||
         (rc = plan_add(m, K_BV, MODEL_C_ATTN, l, -1, 1, Dkv, err, "%s.self_attn.v_proj.bias", p))))
        return rc;
    if (o_bias && (rc = plan_add(m, K_BO, MODEL_C_ATTN, l, -1, 1, D, err,
                                 "%s.self_attn.o_proj.bias", p)))
        return rc;
    if (c->qk_norm &&
        ((rc = plan_add(m, K_QNORM, MODEL_C_NORM, l, -1, 1, c->head_dim, err,
                        "%s.self_attn.q_norm.weight", p)) ||
         (rc = plan_add(m, K_KNORM, MODEL_C_NORM, l, -1, 1, c->head_dim, err,
                        "%s.self_attn.k_norm.weight", p))))
        return rc;
    if ((rc = plan_add(m, K_MLP_NORM, MODEL_C_NORM, l, -1, 1, D, err,
                       "%s.post_attention_layernorm.weight", p)))
        return rc;
    if (!c->layer_is_moe[l]) {
        snprintf(pre, sizeof pre, "%s.mlp", p);
        return plan_ffn(m, K_MLP_GATE, MODEL_C_MLP, l, -1, c->intermediate, pre, 0, err);
    }
    const char *blk = mixtral ? "block_sparse_moe" : "mlp";
    if ((rc = plan_add(m, K_ROUTER, MODEL_C_ROUTER, l, -1, c->n_experts, D, err,
                       "%s.%s.gate.weight", p, blk)))
        return rc;
    for (int e = 0; e < c->n_experts; e++) {
        snprintf(pre, sizeof pre, "%s.%s.experts.%d", p, blk, e);
        if ((rc = plan_ffn(m, K_EXP_GATE, MODEL_C_EXPERT, l, e, c->moe_intermediate, pre,
                           mixtral, err)))
            return rc;
    }
    if (c->shared_intermediate > 0) {
        snprintf(pre, sizeof pre, "%s.mlp.shared_expert", p);
        if ((rc = plan_ffn(m, K_SH_GATE, MODEL_C_SHARED, l, -1, c->shared_intermediate, pre, 0,
                           err)) ||
            (rc = plan_add(m, K_SH_EXPGATE, MODEL_C_SHARED, l, -1, 1, D, err,
                           "%s.mlp.shared_expert_gate.weight", p)))
            return rc;
    }
    return 0;
}

static int plan_model(model *m, vl_err *err)
{
    const hfc_config *c = &m->cfg;
    int rc;
    if (c->arch == HFC_DEEPSEEK_V4) {
        if ((rc = mdsv4_plan(m, c, err)))
            return rc;
        goto names;
    }
    if ((rc = plan_add(m, K_EMBED, MODEL_C_EMBED, -1, -1, c->vocab, c->hidden, err,
                       "model.embed_tokens.weight")))
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = plan_layer(m, l, err)))
            return rc;
    if ((rc = plan_add(m, K_FINAL_NORM, MODEL_C_NORM, -1, -1, 1, c->hidden, err,
                       "model.norm.weight")))
        return rc;
    if (!c->tie_embeddings &&
        (rc = plan_add(m, K_LM_HEAD, MODEL_C_LM_HEAD, -1, -1, c->vocab, c->hidden, err,
                       "lm_head.weight")))
        return rc;
names:
    for (size_t i = 0; i < m->n_tensors; i++)
        m->tensors[i].name = m->names[i];
    return 0;
}

/* The config's numbers, checked against what the forward assumes (hfcfg validated that they
 * are present and positive; these are the cross-field facts). */
static int check_config(const model *m, const char *cfgpath, vl_err *err)
{
    const hfc_config *c = &m->cfg;
    int moe_layers = 0;
    if (c->n_layers <= 0 || c->n_layers > HFC_MAX_LAYERS || c->hidden <= 0 || c->vocab <= 0 ||
        c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0)
        return vl_errf(err, VL_ECONFIG, "%s: non-positive size in config", cfgpath);
    if (c->n_heads % c->n_kv_heads)
        return vl_errf(err, VL_ECONFIG, "%s: num_attention_heads %d not a multiple of "
                       "num_key_value_heads %d", cfgpath, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return vl_errf(err, VL_ECONFIG, "%s: head_dim %d is odd (RoPE needs pairs)", cfgpath,
                       c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > (1 << 24) || (int64_t)c->vocab * c->hidden >
        ((int64_t)1 << 40) || !(c->rope_theta > 0) || !(c->rms_eps > 0))
        return vl_errf(err, VL_ECONFIG, "%s: sizes, rope theta or rms eps out of range",
                       cfgpath);
    for (int l = 0; l < c->n_layers; l++)
        moe_layers += c->layer_is_moe[l] != 0;
    if (moe_layers && (c->n_experts <= 0 || c->n_experts_per_tok <= 0 ||
                       c->n_experts_per_tok > c->n_experts || c->moe_intermediate <= 0))
        return vl_errf(err, VL_ECONFIG, "%s: MoE layers need 0 < num_experts_per_tok (%d) <= "
                       "num_experts (%d) and moe_intermediate_size > 0", cfgpath,
                       c->n_experts_per_tok, c->n_experts);
    if (moe_layers < c->n_layers && c->intermediate <= 0)
        return vl_errf(err, VL_ECONFIG, "%s: dense layers need intermediate_size > 0", cfgpath);
    return 0;
}

/* ---------------------------------------------------------------- bindings */

/* deepseek_v4 bindings carry one ext pointer per tensor */
static size_t n_ext(const model *m)
{
    return m->cfg.arch == HFC_DEEPSEEK_V4 ? m->n_tensors : 0;
}

static size_t binding_bytes(const model *m)
{
    const hfc_config *c = &m->cfg;
    return sizeof(model_weights) + (size_t)c->n_layers * sizeof(model_layer) +
           (size_t)c->n_layers * (size_t)(c->n_experts > 0 ? c->n_experts : 0) *
               sizeof(model_ffn) + n_ext(m) * sizeof(float *);
}

/* One allocation: the struct, its layers, then L·E expert records, then the ext pointers. */
static model_weights *binding_new(const model *m)
{
    const hfc_config *c = &m->cfg;
    model_weights *w = vl_calloc(1, binding_bytes(m));
    if (!w)
        return NULL;
    w->n_layers = c->n_layers;
    w->layers = (model_layer *)(w + 1);
    model_ffn *ex = (model_ffn *)(w->layers + c->n_layers);
    for (int l = 0; l < c->n_layers; l++)
        if (c->layer_is_moe[l])
            w->layers[l].experts = ex + (size_t)l * c->n_experts;
    if (n_ext(m))
        w->ext = (const float **)(ex + (size_t)c->n_layers *
                                           (size_t)(c->n_experts > 0 ? c->n_experts : 0));
    return w;
}

static const float **slot_of(model_weights *w, tkind k, int l, int e)
{
    model_layer *L = l >= 0 ? &w->layers[l] : NULL;
    switch (k) {
    case K_EMBED: return &w->embed;
    case K_FINAL_NORM: return &w->final_norm;
    case K_LM_HEAD: return &w->lm_head;
    case K_ATTN_NORM: return &L->attn_norm;
    case K_WQ: return &L->wq;
    case K_WK: return &L->wk;
    case K_WV: return &L->wv;
    case K_BQ: return &L->bq;
    case K_BK: return &L->bk;
    case K_BV: return &L->bv;
    case K_WO: return &L->wo;
    case K_BO: return &L->bo;
    case K_QNORM: return &L->q_norm;
    case K_KNORM: return &L->k_norm;
    case K_MLP_NORM: return &L->mlp_norm;
    case K_ROUTER: return &L->router;
    case K_EXP_GATE: return &L->experts[e].gate;
    case K_EXP_UP: return &L->experts[e].up;
    case K_EXP_DOWN: return &L->experts[e].down;
    case K_SH_GATE: return &L->shared.gate;
    case K_SH_UP: return &L->shared.up;
    case K_SH_DOWN: return &L->shared.down;
    case K_SH_EXPGATE: return &L->shared_gate;
    case K_MLP_GATE: return &L->mlp.gate;
    case K_MLP_UP: return &L->mlp.up;
    case K_MLP_DOWN: return &L->mlp.down;
    case K_QA: return &L->q_a;
    case K_QA_NORM: return &L->q_a_norm;
    case K_QB: return &L->q_b;
    case K_KVA: return &L->kv_a;
    case K_KVA_NORM: return &L->kv_a_norm;
    case K_KVB: return &L->kv_b;
    case K_ROUTER_BIAS: return &L->router_bias;
    case K_EXT: break; /* model_weights_slot answers these */
    }
    VL_ASSERT(0);
    return NULL;
}

/* ---------------------------------------------------------------- loading */

static int shape_ok(const st_tensor *t, const model_tensor *mt)
{
    if (mt->rows == 1 && t->ndim == 1)
        return t->shape[0] == mt->cols;
    return t->ndim == 2 && t->shape[0] == mt->rows && t->shape[1] == mt->cols;
}

static void shape_str(char *buf, size_t n, const st_tensor *t)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* An FP8 tensor's block scales: its "<name>_scale_inv" companion and the config's block size;
 * *scale NULL for other dtypes. */
static int fp8_scales(const model *m, const st_set *set, const st_tensor *t,
                      const st_tensor **scale, vl_err *err)
{
    char sn[NAME_MAX_LEN + 16];
    *scale = NULL;
    if (t->dtype != ST_F8_E4M3)
        return 0;
    if (m->cfg.fp8_block[0] <= 0)
        return vl_errf(err, VL_ECONFIG, "%s: tensor \"%s\" is F8_E4M3 but %s/config.json has no "
                       "quantization_config.weight_block_size", t->file, t->name, m->dir);
    st_fp8_scale_name(t->name, sn, sizeof sn);
    if (!(*scale = st_set_find(set, sn)))
        return vl_errf(err, VL_ENOTFOUND, "%s: tensor \"%s\" is F8_E4M3 but its block scales "
                       "\"%s\" are missing", t->file, t->name, sn);
    return 0;
}

/* Look every planned tensor up, check its shape and values (NaN/Inf, FP8 scales) without
 * keeping a float32 copy: the weights are converted when a layer runs (model_tensor_load). */
static int check_tensors(model *m, vl_err *err)
{
    m->src = vl_calloc(m->n_tensors + 1, sizeof *m->src);
    m->scale = vl_calloc(m->n_tensors + 1, sizeof *m->scale);
    if (!m->src || !m->scale)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", m->dir);
    int rc = 0;
    for (size_t i = 0; i < m->n_tensors && !rc; i++) {
        model_tensor *mt = &m->tensors[i];
        const st_tensor *t = st_set_find(m->set, mt->name);
        char got[128];
        if (!t) {
            rc = vl_errf(err, VL_ENOTFOUND, "%s: tensor \"%s\" missing (needed by %s)",
                         m->dir, mt->name, m->cfg.model_type);
        } else if (!shape_ok(t, mt)) {
            shape_str(got, sizeof got, t);
            rc = vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": shape %s, expected [%d,%d]",
                         t->file, mt->name, got, mt->rows, mt->cols);
        } else {
            m->src[i] = t;
            mt->stored_dtype = (int)t->dtype;
        }
    }
    for (size_t i = 0; i < m->n_tensors && !rc; i++) {
        model_tensor *mt = &m->tensors[i];
        const st_tensor *sc;
        if ((rc = fp8_scales(m, m->set, m->src[i], &sc, err)))
            break;
        m->scale[i] = sc;
        rc = sc ? st_fp8_check(m->src[i], sc, m->cfg.fp8_block[0], m->cfg.fp8_block[1], err)
                : st_tensor_check(m->src[i], err); /* drops its pages as it goes */
        st_set_drop(m->set, m->src[i]); /* read once; not kept resident */
        if (sc)
            st_set_drop(m->set, sc);
        if (rc)
            break;
        if (sc) { /* the scales are part of how the weight is stored */
            m->info.n_fp8++;
            m->info.stored_bytes += (int64_t)sc->nbytes;
        }
        if (mt->cls == MODEL_C_EMBED)
            m->embed_ix = (long)i;
        m->info.params[mt->cls] += mt->numel;
        m->info.params_total += mt->numel;
        m->info.stored_bytes += (int64_t)m->src[i]->nbytes;
    }
    return rc;
}

int model_open(model **out, const char *dir, vl_err *err)
{
    *out = NULL;
    model *m = vl_calloc(1, sizeof *m);
    if (!m)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", dir);
    char cfgpath[4096];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dir);
    int rc = 0;
    if (!(m->dir = vl_strdup(dir)))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", dir);
    if (!rc)
        rc = hfc_load(&m->cfg, cfgpath, err);
    if (!rc)
        rc = check_config(m, cfgpath, err);
    if (!rc)
        rc = plan_model(m, err);
    if (!rc && !(m->base = binding_new(m)))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", dir);
    if (!rc)
        rc = st_set_open(&m->set, dir, err);
    if (!rc)
        rc = check_tensors(m, err);
    if (!rc) {
        m->info.n_tensors = (int)m->n_tensors;
        m->info.n_unused = (int)(st_set_count(m->set) - m->n_tensors) - m->info.n_fp8;
        m->info.file_bytes = (int64_t)st_set_nbytes(m->set);
        m->info.bits_per_weight = m->info.params_total
                                      ? 8.0 * (double)m->info.stored_bytes /
                                            (double)m->info.params_total
                                      : 0.0;
    }
    if (rc) {
        model_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* The plan alone (model.h): the same config checks and tensor list as model_open. */
int model_plan_open(model **out, const char *config_path, vl_err *err)
{
    *out = NULL;
    model *m = vl_calloc(1, sizeof *m);
    if (!m)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", config_path);
    int rc = 0;
    if (!(m->dir = vl_strdup(config_path)))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", config_path);
    if (!rc)
        rc = hfc_load(&m->cfg, config_path, err);
    if (!rc)
        rc = check_config(m, config_path, err);
    if (!rc)
        rc = plan_model(m, err);
    if (rc) {
        model_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------- queries */

const hfc_config *model_config(const model *m) { return &m->cfg; }
const char *model_dir(const model *m) { return m->dir; }
const model_weights *model_base(const model *m) { return m->base; }
void model_get_info(const model *m, model_info *info) { *info = m->info; }

const char *model_class_name(model_class c)
{
    static const char *const names[MODEL_C_COUNT] = {
        [MODEL_C_EMBED] = "embeddings",     [MODEL_C_ATTN] = "attention",
        [MODEL_C_ROUTER] = "router",        [MODEL_C_EXPERT] = "routed experts",
        [MODEL_C_SHARED] = "shared experts", [MODEL_C_MLP] = "dense MLP",
        [MODEL_C_NORM] = "norms",           [MODEL_C_LM_HEAD] = "lm_head",
        [MODEL_C_HC] = "hyper-connections", [MODEL_C_COMPRESS] = "compressor/indexer",
    };
    return (unsigned)c < MODEL_C_COUNT ? names[c] : "?";
}

size_t model_tensor_count(const model *m) { return m->n_tensors; }

const model_tensor *model_tensor_at(const model *m, size_t i)
{
    VL_ASSERT(i < m->n_tensors);
    return &m->tensors[i];
}

long model_tensor_find(const model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return (long)i;
    return -1;
}

/* ---------------------------------------------------------------- stored tensors */

int model_tensor_load_kept(const model *m, size_t i, float *dst, vl_err *err)
{
    VL_ASSERT(i < m->n_tensors);
    const st_tensor *t = m->src[i], *sc = m->scale[i];
    return sc ? st_fp8_dequant(t, sc, m->cfg.fp8_block[0], m->cfg.fp8_block[1], dst, err)
              : st_tensor_load(t, dst, err); /* a large one: pages dropped chunk by chunk */
}

void model_tensor_drop(const model *m, const size_t *ix, size_t n)
{
    enum { GROUP = 64 }; /* tensors per st_set_drop_many call (a stack array) */
    const st_tensor *ts[2 * GROUP];
    for (size_t k0 = 0; k0 < n; k0 += GROUP) {
        size_t g = n - k0 < GROUP ? n - k0 : GROUP;
        for (size_t k = 0; k < g; k++) {
            VL_ASSERT(ix[k0 + k] < m->n_tensors);
            ts[2 * k] = m->src[ix[k0 + k]];
            ts[2 * k + 1] = m->scale[ix[k0 + k]]; /* NULL: none */
        }
        st_set_drop_many(m->set, ts, 2 * g);
    }
}

int model_tensor_load(const model *m, size_t i, float *dst, vl_err *err)
{
    int rc = model_tensor_load_kept(m, i, dst, err);
    model_tensor_drop(m, &i, 1); /* the float32 copy is what the caller keeps */
    return rc;
}

int model_tensor_f32(const model *m, const model_weights *w, size_t i, const float **data,
                     float **owned, vl_err *err)
{
    *owned = NULL;
    if ((*data = *model_weights_slot(m, (model_weights *)w, i)))
        return 0;
    const model_tensor *t = &m->tensors[i];
    float *buf = vl_malloc((size_t)t->numel * sizeof *buf + 1);
    if (!buf)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory for \"%s\" as float32", m->dir,
                       t->name);
    int rc = model_tensor_load(m, i, buf, err);
    if (rc) {
        vl_free(buf);
        return rc;
    }
    *data = *owned = buf;
    return 0;
}

/* Row r of stored tensor i into dst. FP8: the block row holding r is dequantized into scratch
 * (block_rows × cols floats) through views of the weight and its scale row. */
static int stored_row(const model *m, size_t i, int64_t r, float *dst, float *scratch,
                      vl_err *err)
{
    const st_tensor *t = m->src[i], *sc = m->scale[i];
    int64_t C = t->shape[t->ndim - 1];
    size_t es = st_dtype_size(t->dtype);
    if (!sc) {
        st_tensor v = *t;
        v.data = (const char *)t->data + (size_t)r * (size_t)C * es;
        v.numel = C;
        v.nbytes = (size_t)C * es;
        return st_tensor_to_f32(&v, dst, err);
    }
    int br = m->cfg.fp8_block[0];
    int64_t r0 = r / br * br, nr = t->shape[0] - r0 < br ? t->shape[0] - r0 : br;
    st_tensor q = *t, s = *sc;
    q.data = (const char *)t->data + (size_t)r0 * (size_t)C * es;
    q.shape[0] = nr;
    q.numel = nr * C;
    q.nbytes = (size_t)q.numel * es;
    s.data = (const char *)sc->data + (size_t)(r / br) * (size_t)sc->shape[1] *
                                          st_dtype_size(sc->dtype);
    s.shape[0] = 1;
    s.numel = sc->shape[1];
    s.nbytes = (size_t)s.numel * st_dtype_size(sc->dtype);
    int rc = st_fp8_dequant(&q, &s, br, m->cfg.fp8_block[1], scratch, err);
    if (!rc)
        memcpy(dst, scratch + (size_t)(r - r0) * (size_t)C, (size_t)C * sizeof *dst);
    return rc;
}

int model_embed_rows(const model *m, const model_weights *w, const int32_t *ids, int n,
                     float *out, size_t stride, vl_err *err)
{
    size_t i = (size_t)m->embed_ix;
    const float *e = *model_weights_slot(m, (model_weights *)w, i);
    size_t D = (size_t)m->tensors[i].cols;
    if (e) {
        for (int r = 0; r < n; r++)
            memcpy(out + (size_t)r * stride, e + (size_t)ids[r] * D, D * sizeof *out);
        return 0;
    }
    float *scratch = NULL;
    if (m->scale[i] && !(scratch = vl_malloc((size_t)m->cfg.fp8_block[0] * D * sizeof *scratch)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", m->dir);
    int rc = 0;
    for (int r = 0; r < n && !rc; r++)
        rc = stored_row(m, i, ids[r], out + (size_t)r * stride, scratch, err);
    vl_free(scratch);
    return rc;
}

int model_tensor_rows(const model *m, const model_weights *w, size_t i, int64_t row0, int64_t n,
                      float *dst, vl_err *err)
{
    VL_ASSERT(i < m->n_tensors);
    const model_tensor *mt = &m->tensors[i];
    VL_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= mt->rows);
    size_t C = (size_t)mt->cols;
    const float *d = *model_weights_slot(m, (model_weights *)w, i);
    if (d) {
        memcpy(dst, d + (size_t)row0 * C, (size_t)n * C * sizeof *dst);
        return 0;
    }
    const st_tensor *t = m->src[i], *sc = m->scale[i];
    size_t es = st_dtype_size(t->dtype);
    st_tensor v = *t;
    v.data = (const char *)t->data + (size_t)row0 * C * es;
    v.shape[0] = n;
    v.numel = n * (int64_t)C;
    v.nbytes = (size_t)v.numel * es;
    int rc;
    if (sc) {
        int br = m->cfg.fp8_block[0];
        if (row0 % br || (n % br && row0 + n != mt->rows))
            return vl_errf(err, VL_EARG, "%s: rows %lld..%lld of \"%s\" cut its FP8 blocks of "
                           "%d rows", m->dir, (long long)row0, (long long)(row0 + n), mt->name,
                           br);
        st_tensor s = *sc;
        size_t srow = (size_t)sc->shape[1] * st_dtype_size(sc->dtype);
        s.data = (const char *)sc->data + (size_t)(row0 / br) * srow;
        s.shape[0] = (n + br - 1) / br;
        s.numel = s.shape[0] * sc->shape[1];
        s.nbytes = (size_t)s.shape[0] * srow;
        rc = st_fp8_dequant(&v, &s, br, m->cfg.fp8_block[1], dst, err);
        st_set_drop(m->set, sc);
    } else {
        rc = st_tensor_load(&v, dst, err);
    }
    st_set_drop(m->set, t);
    return rc;
}

size_t model_head_index(const model *m)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].cls == MODEL_C_LM_HEAD && m->tensors[i].layer < 0)
            return i;
    return (size_t)m->embed_ix;
}

/* ---------------------------------------------------------------- bindings (public) */

int model_weights_clone(model_weights **out, const model *m, const model_weights *src,
                        vl_err *err)
{
    model_weights *w = binding_new(m);
    if (!w)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory cloning weights", m->dir);
    w->embed = src->embed;
    w->final_norm = src->final_norm;
    w->lm_head = src->lm_head;
    if (n_ext(m))
        memcpy(w->ext, src->ext, n_ext(m) * sizeof *w->ext);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        model_ffn *ex = w->layers[l].experts; /* keep the clone's own expert array */
        w->layers[l] = src->layers[l];
        w->layers[l].experts = ex;
        if (ex)
            memcpy(ex, src->layers[l].experts, (size_t)m->cfg.n_experts * sizeof *ex);
    }
    *out = w;
    return 0;
}

const float **model_weights_slot(const model *m, model_weights *w, size_t i)
{
    VL_ASSERT(i < m->n_tensors);
    if (m->kinds[i] == K_EXT)
        return &w->ext[i];
    return slot_of(w, m->kinds[i], m->tensors[i].layer, m->tensors[i].expert);
}

void model_weights_free(model_weights *w) { vl_free(w); }

void model_close(model *m)
{
    if (!m)
        return;
    st_set_close(m->set);
    vl_free(m->src);
    vl_free(m->scale);
    vl_free(m->tensors);
    vl_free(m->kinds);
    vl_free(m->names);
    vl_free(m->base);
    vl_free(m->dir);
    vl_free(m);
}
