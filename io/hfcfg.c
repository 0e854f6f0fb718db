/* io/hfcfg.c — Hugging Face config.json → hfc_config.
 *
 * Defaults follow the transformers configuration classes (LlamaConfig, Qwen2Config,
 * Qwen2MoeConfig, Qwen3Config, Qwen3MoeConfig, MixtralConfig) and the modelling code that uses
 * them (Qwen2Attention's q/k/v bias=True, Qwen3's q_norm/k_norm, Mixtral's top-k renormalisation,
 * Qwen2MoeDecoderLayer's sparse-layer rule). Sizes that decide tensor shapes are never guessed:
 * they are required. Features the forward does not implement (scaled RoPE, sliding-window
 * attention, activations other than SiLU) are rejected here rather than computed wrongly later.
 */
#include "hfcfg.h"
#include "hfcfg_int.h"

#include "../core/vfile.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* Caps far above any released model; they keep products of sizes far from overflow. */
#define HFC_MAX_DIM (1 << 20)
#define HFC_MAX_VOCAB (1 << 24)
#define HFC_MAX_EXPERTS 4096
#define HFC_MAX_FILE ((size_t)16 << 20) /* config.json bytes */

/* ------------------------------------------------------------------ per-architecture facts */

typedef enum {
    BIAS_NONE,      /* never (Mixtral) */
    BIAS_ALWAYS,    /* Qwen2Attention hard-codes bias=True */
    BIAS_ATTN,      /* "attention_bias", default false (Llama, Qwen3) */
    BIAS_QKV        /* "qkv_bias", default true (Qwen2-MoE; newer transformers write it) */
} bias_rule;

typedef enum { MOE_NONE, MOE_QWEN, MOE_MIXTRAL } moe_rule;

typedef struct {
    const char *name;      /* model_type */
    double rope_theta;     /* HF default when the file has none */
    double rms_eps;        /* HF default */
    bias_rule bias;
    int qk_norm;
    moe_rule moe;
    int shared_expert;     /* Qwen2-MoE's gated shared expert */
    int need_head_dim;     /* Qwen3 classes default head_dim to 128, not D/Hq: require it */
} arch_traits;

static const arch_traits k_arch[] = {
    [HFC_LLAMA] = {"llama", 10000.0, 1e-6, BIAS_ATTN, 0, MOE_NONE, 0, 0},
    [HFC_QWEN2] = {"qwen2", 10000.0, 1e-6, BIAS_ALWAYS, 0, MOE_NONE, 0, 0},
    [HFC_QWEN2_MOE] = {"qwen2_moe", 10000.0, 1e-6, BIAS_QKV, 0, MOE_QWEN, 1, 0},
    [HFC_QWEN3] = {"qwen3", 10000.0, 1e-6, BIAS_ATTN, 1, MOE_NONE, 0, 1},
    [HFC_QWEN3_MOE] = {"qwen3_moe", 10000.0, 1e-6, BIAS_ATTN, 1, MOE_QWEN, 0, 1},
    [HFC_MIXTRAL] = {"mixtral", 1e6, 1e-5, BIAS_NONE, 0, MOE_MIXTRAL, 0, 0},
    /* MLA, its MoE and rope scaling are read by hfcfg_dsv3.c (attention_bias refused there) */
    [HFC_DEEPSEEK_V3] = {"deepseek_v3", 10000.0, 1e-6, BIAS_NONE, 0, MOE_NONE, 0, 0},
    /* MoE, rope and the rest of V4: io/hfcfg_dsv4.c */
    [HFC_DEEPSEEK_V4] = {"deepseek_v4", 10000.0, 1e-6, BIAS_ATTN, 0, MOE_NONE, 0, 0},
};
_Static_assert(sizeof k_arch / sizeof k_arch[0] == HFC_ARCH_COUNT, "one row per architecture");

/* ------------------------------------------------------------------ field readers */

typedef hfc_rd rd; /* hfcfg_int.h */

/* A field that is absent or JSON null counts as missing (HF writes null for "use default"). */
static const json_t *field(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static int missing(const rd *r, const char *key)
{
    return vl_errf(r->err, VL_ECONFIG, "%s: missing field \"%s\"", r->path, key);
}

/* Integer field in [lo, hi]; absent: error if required, else *out = def. */
static int get_int(const rd *r, const char *key, int required, int def, long lo, long hi,
                   int *out)
{
    const json_t *v = field(r->root, key);
    if (!v) {
        if (required)
            return missing(r, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" is not an integer", r->path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" = %lld, must be in [%ld, %ld]",
                       r->path, key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_bool(const rd *r, const char *key, int def, int *out)
{
    const json_t *v = field(r->root, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" is not true/false", r->path, key);
    *out = json_is_true(v);
    return 0;
}

/* Finite number from obj.key, > 0 (or ≥ 0 with allow_zero); NAME spells the key in messages;
 * absent: *out = def. */
static int get_num(const rd *r, const json_t *obj, const char *key, const char *name,
                   double def, int allow_zero, double *out)
{
    const json_t *v = field(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    double x = json_number_value(v);
    if (!json_is_number(v) || !isfinite(x) || x < 0 || (x == 0 && !allow_zero))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" must be a %s number", r->path,
                       name, allow_zero ? "non-negative" : "positive");
    *out = x;
    return 0;
}

static int get_pos_num(const rd *r, const json_t *obj, const char *key, const char *name,
                       double def, double *out)
{
    return get_num(r, obj, key, name, def, 0, out);
}

/* Token id: an int, or a list whose first element is used (generation may stop on several). */
static int get_token(const rd *r, const char *key, int vocab, int *out)
{
    const json_t *v = field(r->root, key);
    if (json_is_array(v))
        v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= vocab)
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" must be a token id in [0, %d)",
                       r->path, key, vocab);
    *out = (int)json_integer_value(v);
    return 0;
}

/* ------------------------------------------------------------------ sections */

static int read_arch(const rd *r, hfc_config *c)
{
    const json_t *v = field(r->root, "model_type");
    if (!v)
        return missing(r, "model_type");
    if (!json_is_string(v))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"model_type\" is not a string", r->path);
    const char *mt = json_string_value(v);
    for (int a = 0; a < HFC_ARCH_COUNT; a++)
        if (strcmp(mt, k_arch[a].name) == 0) {
            c->arch = (hfc_arch)a;
            snprintf(c->model_type, sizeof c->model_type, "%s", k_arch[a].name);
            return 0;
        }
    char list[256] = "";
    for (int a = 0; a < HFC_ARCH_COUNT; a++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", a ? ", " : "",
                 k_arch[a].name);
    return vl_errf(r->err, VL_ECONFIG, "%s: model_type \"%.64s\" not supported (supported: %s)",
                   r->path, mt, list);
}

/* RoPE base from rope_theta or rope_parameters.rope_theta (transformers ≥ 5 writes the latter);
 * only plain RoPE is implemented, so any scaling type is refused. */
static int read_rope(const rd *r, const arch_traits *t, hfc_config *c)
{
    const json_t *rp = field(r->root, "rope_parameters");
    const json_t *rs = field(r->root, "rope_scaling");
    double top, nested;
    int rc = get_pos_num(r, r->root, "rope_theta", "rope_theta", 0, &top);
    if (rc == 0)
        rc = get_pos_num(r, rp, "rope_theta", "rope_parameters.rope_theta", 0, &nested);
    if (rc)
        return rc;
    if (top > 0 && nested > 0 && top != nested)
        return vl_errf(r->err, VL_ECONFIG,
                       "%s: rope_theta %g and rope_parameters.rope_theta %g disagree", r->path,
                       top, nested);
    c->rope_theta = nested > 0 ? nested : top > 0 ? top : t->rope_theta;
    if (c->arch == HFC_DEEPSEEK_V3 || c->arch == HFC_DEEPSEEK_V4)
        return 0; /* their rope types (default, yarn) are read by hfcfg_dsv3.c / hfcfg_dsv4.c */
    const json_t *ty = field(rp, "rope_type");
    if (!ty)
        ty = field(rs, "rope_type");
    if (!ty)
        ty = field(rs, "type");
    if (ty && (!json_is_string(ty) || strcmp(json_string_value(ty), "default") != 0))
        return vl_errf(r->err, VL_ECONFIG, "%s: rope_type \"%.32s\" not supported (only default)",
                       r->path, json_is_string(ty) ? json_string_value(ty) : "?");
    return 0;
}

static int read_unsupported(const rd *r)
{
    const json_t *act = field(r->root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return vl_errf(r->err, VL_ECONFIG, "%s: hidden_act \"%.32s\" not supported (only silu)",
                       r->path, json_is_string(act) ? json_string_value(act) : "?");
    int sw;
    int rc = get_bool(r, "use_sliding_window", 0, &sw);
    if (rc == 0 && sw)
        rc = vl_errf(r->err, VL_ECONFIG, "%s: use_sliding_window true not supported", r->path);
    return rc;
}

static int read_attention(const rd *r, const arch_traits *t, hfc_config *c)
{
    int rc = get_int(r, "vocab_size", 1, 0, 1, HFC_MAX_VOCAB, &c->vocab);
    if (rc == 0)
        rc = get_int(r, "hidden_size", 1, 0, 1, HFC_MAX_DIM, &c->hidden);
    if (rc == 0)
        rc = get_int(r, "num_hidden_layers", 1, 0, 1, HFC_MAX_LAYERS, &c->n_layers);
    if (rc == 0)
        rc = get_int(r, "num_attention_heads", 1, 0, 1, HFC_MAX_DIM, &c->n_heads);
    if (rc == 0)
        rc = get_int(r, "num_key_value_heads", 0, c->n_heads, 1, HFC_MAX_DIM, &c->n_kv_heads);
    if (rc == 0)
        rc = get_int(r, "head_dim", t->need_head_dim, c->hidden / c->n_heads, 1, HFC_MAX_DIM,
                     &c->head_dim);
    if (rc)
        return rc;
    if (c->n_heads % c->n_kv_heads != 0)
        return vl_errf(r->err, VL_ECONFIG,
                       "%s: num_attention_heads %d not divisible by num_key_value_heads %d",
                       r->path, c->n_heads, c->n_kv_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 != 0) /* RoPE rotates pairs */
        return vl_errf(r->err, VL_ECONFIG, "%s: head_dim %d must be positive and even", r->path,
                       c->head_dim);
    if ((rc = get_pos_num(r, r->root, "rms_norm_eps", "rms_norm_eps", t->rms_eps, &c->rms_eps)))
        return rc;
    if ((rc = get_bool(r, "tie_word_embeddings", 0, &c->tie_embeddings)))
        return rc;
    c->qk_norm = t->qk_norm;
    switch (t->bias) {
    case BIAS_NONE: c->qkv_bias = 0; break;
    case BIAS_ALWAYS: c->qkv_bias = 1; break;
    case BIAS_ATTN: rc = get_bool(r, "attention_bias", 0, &c->qkv_bias); break;
    case BIAS_QKV: rc = get_bool(r, "qkv_bias", 1, &c->qkv_bias); break;
    }
    return rc;
}

/* mlp_only_layers: the layers that stay dense in a Qwen MoE model. */
static int read_mlp_only(const rd *r, hfc_config *c, int *dense_only)
{
    const json_t *v = field(r->root, "mlp_only_layers");
    if (!v)
        return 0;
    if (!json_is_array(v))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"mlp_only_layers\" is not a list",
                       r->path);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) >= c->n_layers)
            return vl_errf(r->err, VL_ECONFIG,
                           "%s: mlp_only_layers[%zu] must be a layer index in [0, %d)", r->path,
                           i, c->n_layers);
        dense_only[json_integer_value(e)] = 1;
    }
    return 0;
}

static int read_moe(const rd *r, const arch_traits *t, hfc_config *c)
{
    int rc = 0, dense_only[HFC_MAX_LAYERS] = {0};
    c->decoder_sparse_step = 1;
    if (t->moe == MOE_MIXTRAL) {
        /* Every layer is sparse; experts are intermediate_size wide; the top-k weights are
         * renormalised (MixtralSparseMoeBlock divides by their sum). */
        rc = get_int(r, "num_local_experts", 1, 0, 1, HFC_MAX_EXPERTS, &c->n_experts);
        if (rc == 0)
            rc = get_int(r, "num_experts_per_tok", 1, 0, 1, HFC_MAX_EXPERTS, &c->n_experts_per_tok);
        if (rc == 0)
            rc = get_int(r, "intermediate_size", 1, 0, 1, HFC_MAX_DIM, &c->moe_intermediate);
        c->intermediate = 0;
        c->norm_topk_prob = 1;
    } else if (t->moe == MOE_QWEN) {
        /* transformers 5 writes Qwen3-MoE's expert count as num_local_experts; Hub configs
         * written by earlier versions say num_experts. Accept either. */
        const char *ne = field(r->root, "num_experts") || !field(r->root, "num_local_experts")
                             ? "num_experts"
                             : "num_local_experts";
        rc = get_int(r, ne, 1, 0, 0, HFC_MAX_EXPERTS, &c->n_experts);
        if (rc == 0 && c->n_experts > 0) {
            rc = get_int(r, "num_experts_per_tok", 1, 0, 1, HFC_MAX_EXPERTS,
                         &c->n_experts_per_tok);
            if (rc == 0)
                rc = get_int(r, "moe_intermediate_size", 1, 0, 1, HFC_MAX_DIM,
                             &c->moe_intermediate);
            if (rc == 0 && t->shared_expert)
                rc = get_int(r, "shared_expert_intermediate_size", 1, 0, 0, HFC_MAX_DIM,
                             &c->shared_intermediate);
        }
        if (rc == 0)
            rc = get_bool(r, "norm_topk_prob", 0, &c->norm_topk_prob);
        if (rc == 0)
            rc = get_int(r, "decoder_sparse_step", 0, 1, 1, HFC_MAX_LAYERS,
                         &c->decoder_sparse_step);
        if (rc == 0)
            rc = read_mlp_only(r, c, dense_only);
    }
    if (rc)
        return rc;
    if (c->n_experts_per_tok > c->n_experts)
        return vl_errf(r->err, VL_ECONFIG, "%s: num_experts_per_tok %d exceeds the %d experts",
                       r->path, c->n_experts_per_tok, c->n_experts);
    /* Qwen2MoeDecoderLayer: sparse iff l ∉ mlp_only_layers and E > 0 and (l+1) % step == 0. */
    int any_dense = 0;
    for (int l = 0; l < c->n_layers; l++) {
        c->layer_is_moe[l] = t->moe == MOE_MIXTRAL ||
                             (t->moe == MOE_QWEN && !dense_only[l] && c->n_experts > 0 &&
                              (l + 1) % c->decoder_sparse_step == 0);
        any_dense |= !c->layer_is_moe[l];
    }
    /* The dense MLP width decides tensor shapes only when some layer is dense. */
    if (t->moe != MOE_MIXTRAL)
        rc = get_int(r, "intermediate_size", any_dense, 0, 1, HFC_MAX_DIM, &c->intermediate);
    return rc;
}

/* ------------------------------------------------------------------ public */

int hfc_load(hfc_config *out, const char *path, vl_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    char *text;
    size_t len;
    int lrc = vf_slurp(path, HFC_MAX_FILE, &text, &len, err);
    if (lrc)
        return lrc;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    vl_free(text);
    if (!root)
        return vl_errf(err, VL_EFORMAT, "%s: line %d column %d: %s", path, je.line, je.column,
                       je.text);
    rd r = {path, root, err};
    int rc = json_is_object(root) ? 0 : vl_errf(err, VL_EFORMAT, "%s: not a JSON object", path);
    if (rc == 0)
        rc = read_arch(&r, out);
    const arch_traits *t = &k_arch[out->arch];
    if (rc == 0)
        rc = read_unsupported(&r);
    if (rc == 0)
        rc = read_attention(&r, t, out);
    if (rc == 0)
        rc = read_rope(&r, t, out);
    if (rc == 0)
        rc = out->arch == HFC_DEEPSEEK_V4 ? hfc_dsv4_read(&r, out) : read_moe(&r, t, out);
    if (rc == 0 && out->arch == HFC_DEEPSEEK_V3)
        rc = hfc_read_dsv3(&r, out);
    if (rc == 0)
        rc = hfc_read_quant(&r, out);
    if (rc == 0)
        rc = get_token(&r, "bos_token_id", out->vocab, &out->bos_id);
    if (rc == 0)
        rc = get_token(&r, "eos_token_id", out->vocab, &out->eos_id);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ for hfcfg_dsv3.c */

const json_t *hfc_field(const json_t *obj, const char *key) { return field(obj, key); }
int hfc_missing(const hfc_rd *r, const char *key) { return missing(r, key); }

int hfc_get_int(const hfc_rd *r, const char *key, int required, int def, long lo, long hi,
                int *out)
{
    return get_int(r, key, required, def, lo, hi, out);
}

int hfc_get_bool(const hfc_rd *r, const char *key, int def, int *out)
{
    return get_bool(r, key, def, out);
}

int hfc_get_pos_num(const hfc_rd *r, const json_t *obj, const char *key, const char *name,
                    double def, double *out)
{
    return get_num(r, obj, key, name, def, 0, out);
}

int hfc_get_nonneg(const hfc_rd *r, const json_t *obj, const char *key, const char *name,
                   double def, double *out)
{
    return get_num(r, obj, key, name, def, 1, out);
}

const char *hfc_arch_name(hfc_arch a)
{
    return (unsigned)a < HFC_ARCH_COUNT ? k_arch[a].name : "?";
}
