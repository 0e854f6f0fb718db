/* io/hfcfg_dsv3.c — the deepseek_v3 keys of config.json, and quantization_config.
 *
 * Follows transformers' DeepseekV3Config and the modelling code that reads it
 * (modeling_deepseek_v3.py, modeling_rope_utils._compute_yarn_parameters):
 *   MLA        q_lora_rank (null: a plain q_proj), kv_lora_rank, qk_nope_head_dim,
 *              qk_rope_head_dim, v_head_dim, rope_interleave (default true); head_dim is the
 *              RoPE width qk_rope_head_dim; every head has its own K and V (num_key_value_heads
 *              must equal num_attention_heads).
 *   RoPE       legacy rope_theta + rope_scaling {"type"|"rope_type", ...} or transformers-5
 *              rope_parameters {"rope_type", "rope_theta", ...} (also one dict per layer type,
 *              which must then agree: deepseek_v3 has one attention kind). Types: default, yarn.
 *   MoE        n_routed_experts, num_experts_per_tok, moe_intermediate_size, n_shared_experts,
 *              first_k_dense_replace (layers below it are dense MLPs), n_group / topk_group
 *              (defaults 8 / 4), norm_topk_prob (default true), routed_scaling_factor (default
 *              2.5); scoring_func, topk_method and moe_layer_freq are checked against what
 *              transformers' DeepseekV3 computes (sigmoid, noaux_tc, every layer ≥ k).
 * Sizes that decide tensor shapes are required; anything the forward does not compute is
 * refused with the key's name.
 */
#include "hfcfg_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The caps hfcfg.c uses for sizes. */
#define DS_MAX_DIM (1 << 20)
#define DS_MAX_EXPERTS 4096

/* ------------------------------------------------------------------ small readers */

/* String obj.key must equal one of the allowed values (absent: ok). NAME spells the key. */
static int want_string(const hfc_rd *r, const json_t *obj, const char *key, const char *name,
                       const char *allowed)
{
    const json_t *v = hfc_field(obj, key);
    if (!v)
        return 0;
    if (json_is_string(v) && !strcmp(json_string_value(v), allowed))
        return 0;
    return vl_errf(r->err, VL_ECONFIG, "%s: %s \"%.32s\" not supported for deepseek_v3 (only %s)",
                   r->path, name, json_is_string(v) ? json_string_value(v) : "?", allowed);
}

/* ------------------------------------------------------------------ RoPE */

/* The dict that holds the rope settings and its spelled name: rope_parameters (flat, or the
 * one entry all per-layer-type entries agree on), else rope_scaling, else none (*out NULL). */
static int rope_dict(const hfc_rd *r, const json_t **out, char *name, size_t cap)
{
    const json_t *rp = hfc_field(r->root, "rope_parameters");
    const json_t *rs = hfc_field(r->root, "rope_scaling");
    *out = NULL;
    if ((rp && !json_is_object(rp)) || (rs && !json_is_object(rs)))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s\" is not an object", r->path,
                       rp && !json_is_object(rp) ? "rope_parameters" : "rope_scaling");
    if (!rp) {
        *out = rs;
        snprintf(name, cap, "rope_scaling");
        return 0;
    }
    const char *k, *first_key = NULL;
    json_t *v;
    size_t n_obj = 0;
    json_object_foreach((json_t *)rp, k, v) n_obj += json_is_object(v);
    snprintf(name, cap, "rope_parameters");
    *out = rp;
    if (n_obj == 0 || n_obj != json_object_size(rp))
        return 0;
    json_object_foreach((json_t *)rp, k, v) {
        if (!first_key) {
            first_key = k;
            *out = v;
        } else if (!json_equal(*out, v)) {
            return vl_errf(r->err, VL_ECONFIG, "%s: rope_parameters.%.32s and "
                           "rope_parameters.%.32s differ (deepseek_v3 has one attention type)",
                           r->path, first_key, k);
        }
    }
    snprintf(name, cap, "rope_parameters.%.32s", first_key);
    return 0;
}

/* "rope_type" or the legacy "type" of dict D (both present: they must agree); NULL = none. */
static int rope_type(const hfc_rd *r, const json_t *d, const char *dname, const char **out)
{
    const json_t *a = hfc_field(d, "rope_type"), *b = hfc_field(d, "type");
    *out = NULL;
    if ((a && !json_is_string(a)) || (b && !json_is_string(b)))
        return vl_errf(r->err, VL_ECONFIG, "%s: %s.%s is not a string", r->path, dname,
                       a && !json_is_string(a) ? "rope_type" : "type");
    if (a && b && strcmp(json_string_value(a), json_string_value(b)))
        return vl_errf(r->err, VL_ECONFIG, "%s: %s.rope_type \"%.32s\" and %s.type \"%.32s\" "
                       "disagree", r->path, dname, json_string_value(a), dname,
                       json_string_value(b));
    *out = a ? json_string_value(a) : b ? json_string_value(b) : NULL;
    return 0;
}

static double yarn_mscale(double scale, double m)
{
    return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0;
}

/* The YaRN fields of dict D (named DNAME); max_pos is max_position_embeddings (0: absent). */
static int read_yarn(const hfc_rd *r, const json_t *d, const char *dname, int max_pos,
                     hfc_yarn *y)
{
    char nm[96];
    int rc = 0;
    y->on = 1;
    const json_t *o = hfc_field(d, "original_max_position_embeddings");
    if (o && (!json_is_integer(o) || json_integer_value(o) < 1 ||
              json_integer_value(o) > DS_MAX_DIM))
        return vl_errf(r->err, VL_ECONFIG, "%s: %s.original_max_position_embeddings must be a "
                       "positive integer", r->path, dname);
    y->orig_max_pos = o ? (int)json_integer_value(o) : max_pos;
    if (!y->orig_max_pos || (!hfc_field(d, "factor") && !max_pos))
        return hfc_missing(r, "max_position_embeddings");
    double def_factor = (double)max_pos / y->orig_max_pos, attn = 0;
#define NUM(fn, key, def, dst)                                                                 \
    if (rc == 0) {                                                                             \
        snprintf(nm, sizeof nm, "%.60s.%.30s", dname, key);                                    \
        rc = fn(r, d, key, nm, def, dst);                                                      \
    }
    NUM(hfc_get_pos_num, "factor", def_factor, &y->factor)
    NUM(hfc_get_pos_num, "beta_fast", 32.0, &y->beta_fast)
    NUM(hfc_get_pos_num, "beta_slow", 1.0, &y->beta_slow)
    NUM(hfc_get_nonneg, "mscale", 0.0, &y->mscale)
    NUM(hfc_get_nonneg, "mscale_all_dim", 0.0, &y->mscale_all_dim)
    NUM(hfc_get_pos_num, "attention_factor", 0.0, &attn)
#undef NUM
    if (rc)
        return rc;
    const json_t *tr = hfc_field(d, "truncate");
    if (tr && !json_is_boolean(tr))
        return vl_errf(r->err, VL_ECONFIG, "%s: %s.truncate is not true/false", r->path, dname);
    y->truncate = tr ? json_is_true(tr) : 1;
    if (attn > 0)
        y->attn_factor = attn;
    else if (y->mscale > 0 && y->mscale_all_dim > 0)
        y->attn_factor = yarn_mscale(y->factor, y->mscale) /
                         yarn_mscale(y->factor, y->mscale_all_dim);
    else
        y->attn_factor = yarn_mscale(y->factor, 1.0);
    return 0;
}

int hfc_read_yarn(const hfc_rd *r, const json_t *d, const char *dname, int max_pos,
                  hfc_yarn *y)
{
    return read_yarn(r, d, dname, max_pos, y);
}

static int read_rope(const hfc_rd *r, hfc_config *c)
{
    const json_t *d = NULL;
    const char *ty = NULL;
    char dname[80];
    int rc = rope_dict(r, &d, dname, sizeof dname);
    if (rc == 0)
        rc = rope_type(r, d, dname, &ty);
    if (rc == 0 && d && hfc_field(r->root, "rope_parameters") && hfc_field(r->root, "rope_scaling")) {
        const char *legacy = NULL;
        rc = rope_type(r, hfc_field(r->root, "rope_scaling"), "rope_scaling", &legacy);
        if (rc == 0 && strcmp(ty ? ty : "default", legacy ? legacy : "default"))
            rc = vl_errf(r->err, VL_ECONFIG, "%s: %s type \"%s\" and rope_scaling type \"%s\" "
                         "disagree", r->path, dname, ty ? ty : "default",
                         legacy ? legacy : "default");
    }
    if (rc)
        return rc;
    double theta = 0;
    if (d && d != hfc_field(r->root, "rope_scaling") &&
        (rc = hfc_get_pos_num(r, d, "rope_theta", "rope_parameters.rope_theta", 0, &theta)))
        return rc;
    if (theta > 0)
        c->rope_theta = theta; /* per-layer-type dicts: hfcfg.c read only the flat spelling */
    if (!ty || !strcmp(ty, "default"))
        return 0;
    if (strcmp(ty, "yarn"))
        return vl_errf(r->err, VL_ECONFIG, "%s: %s rope type \"%.32s\" not supported for "
                       "deepseek_v3 (supported: default, yarn)", r->path, dname, ty);
    return read_yarn(r, d, dname, c->ds.max_pos, &c->ds.yarn);
}

/* ------------------------------------------------------------------ MLA */

static int read_mla(const hfc_rd *r, hfc_config *c)
{
    hfc_dsv3 *ds = &c->ds;
    /* q_lora_rank: null means a plain q_proj; absent is an error (transformers' default 1536
     * is a shape we will not guess) */
    const json_t *ql = json_object_get(r->root, "q_lora_rank");
    if (!ql)
        return hfc_missing(r, "q_lora_rank");
    int rc = json_is_null(ql) ? 0
                              : hfc_get_int(r, "q_lora_rank", 1, 0, 1, DS_MAX_DIM, &ds->q_lora_rank);
    if (rc == 0)
        rc = hfc_get_int(r, "kv_lora_rank", 1, 0, 1, DS_MAX_DIM, &ds->kv_lora_rank);
    if (rc == 0)
        rc = hfc_get_int(r, "qk_nope_head_dim", 1, 0, 0, DS_MAX_DIM, &ds->qk_nope_dim);
    if (rc == 0)
        rc = hfc_get_int(r, "qk_rope_head_dim", 1, 0, 2, DS_MAX_DIM, &ds->qk_rope_dim);
    if (rc == 0)
        rc = hfc_get_int(r, "v_head_dim", 1, 0, 1, DS_MAX_DIM, &ds->v_head_dim);
    if (rc == 0)
        rc = hfc_get_bool(r, "rope_interleave", 1, &ds->rope_interleave);
    if (rc == 0)
        rc = hfc_get_int(r, "max_position_embeddings", 0, 0, 1, 1 << 30, &ds->max_pos);
    int qk_head = 0, bias = 0, head_dim = 0;
    if (rc == 0)
        rc = hfc_get_int(r, "qk_head_dim", 0, ds->qk_nope_dim + ds->qk_rope_dim, 1, DS_MAX_DIM,
                         &qk_head);
    if (rc == 0)
        rc = hfc_get_bool(r, "attention_bias", 0, &bias);
    if (rc == 0)
        rc = hfc_get_int(r, "head_dim", 0, ds->qk_rope_dim, 1, DS_MAX_DIM, &head_dim);
    if (rc)
        return rc;
    if (ds->qk_rope_dim % 2)
        return vl_errf(r->err, VL_ECONFIG, "%s: qk_rope_head_dim %d must be even (RoPE pairs)",
                       r->path, ds->qk_rope_dim);
    if (qk_head != ds->qk_nope_dim + ds->qk_rope_dim)
        return vl_errf(r->err, VL_ECONFIG, "%s: qk_head_dim %d is not qk_nope_head_dim + "
                       "qk_rope_head_dim = %d", r->path, qk_head, ds->qk_nope_dim + ds->qk_rope_dim);
    if (head_dim != ds->qk_rope_dim)
        return vl_errf(r->err, VL_ECONFIG, "%s: head_dim %d is not qk_rope_head_dim %d (the "
                       "RoPE width)", r->path, head_dim, ds->qk_rope_dim);
    if (bias)
        return vl_errf(r->err, VL_ECONFIG, "%s: attention_bias true not supported for "
                       "deepseek_v3", r->path);
    if (c->n_kv_heads != c->n_heads)
        return vl_errf(r->err, VL_ECONFIG, "%s: num_key_value_heads %d must equal "
                       "num_attention_heads %d (MLA gives every head its own K and V)", r->path,
                       c->n_kv_heads, c->n_heads);
    c->head_dim = ds->qk_rope_dim;
    return 0;
}

/* ------------------------------------------------------------------ MoE */

static int read_ds_moe(const hfc_rd *r, hfc_config *c)
{
    hfc_dsv3 *ds = &c->ds;
    int freq = 1;
    int rc = hfc_get_int(r, "n_routed_experts", 1, 0, 1, DS_MAX_EXPERTS, &c->n_experts);
    if (rc == 0)
        rc = hfc_get_int(r, "num_experts_per_tok", 1, 0, 1, DS_MAX_EXPERTS, &c->n_experts_per_tok);
    if (rc == 0)
        rc = hfc_get_int(r, "moe_intermediate_size", 1, 0, 1, DS_MAX_DIM, &c->moe_intermediate);
    if (rc == 0)
        rc = hfc_get_int(r, "n_shared_experts", 1, 0, 0, 64, &ds->n_shared);
    if (rc == 0)
        rc = hfc_get_int(r, "first_k_dense_replace", 1, 0, 0, c->n_layers, &ds->first_k_dense);
    if (rc == 0)
        rc = hfc_get_int(r, "moe_layer_freq", 0, 1, 1, HFC_MAX_LAYERS, &freq);
    if (rc == 0)
        rc = hfc_get_int(r, "n_group", 0, 8, 1, DS_MAX_EXPERTS, &ds->n_group);
    if (rc == 0)
        rc = hfc_get_int(r, "topk_group", 0, 4, 1, DS_MAX_EXPERTS, &ds->topk_group);
    if (rc == 0)
        rc = hfc_get_bool(r, "norm_topk_prob", 1, &c->norm_topk_prob);
    if (rc == 0)
        rc = hfc_get_pos_num(r, r->root, "routed_scaling_factor", "routed_scaling_factor", 2.5,
                             &ds->routed_scaling);
    if (rc == 0)
        rc = want_string(r, r->root, "scoring_func", "scoring_func", "sigmoid");
    if (rc == 0)
        rc = want_string(r, r->root, "topk_method", "topk_method", "noaux_tc");
    if (rc == 0)
        rc = hfc_get_int(r, "num_nextn_predict_layers", 0, 0, 0, HFC_MAX_LAYERS,
                         &ds->n_mtp_layers);
    if (rc)
        return rc;
    int E = c->n_experts, G = ds->n_group;
    if (freq != 1) /* transformers' DeepseekV3 makes every layer ≥ k sparse, whatever it says */
        return vl_errf(r->err, VL_ECONFIG, "%s: moe_layer_freq %d not supported (only 1)",
                       r->path, freq);
    if (E % G || E / G < 2)
        return vl_errf(r->err, VL_ECONFIG, "%s: n_routed_experts %d must split into n_group %d "
                       "groups of at least 2 experts", r->path, E, G);
    if (ds->topk_group > G)
        return vl_errf(r->err, VL_ECONFIG, "%s: topk_group %d exceeds n_group %d", r->path,
                       ds->topk_group, G);
    if (c->n_experts_per_tok > ds->topk_group * (E / G))
        return vl_errf(r->err, VL_ECONFIG, "%s: num_experts_per_tok %d exceeds the %d experts of "
                       "topk_group %d groups", r->path, c->n_experts_per_tok,
                       ds->topk_group * (E / G), ds->topk_group);
    c->shared_intermediate = ds->n_shared * c->moe_intermediate;
    c->decoder_sparse_step = 1;
    for (int l = 0; l < c->n_layers; l++)
        c->layer_is_moe[l] = l >= ds->first_k_dense;
    if (ds->first_k_dense > 0 && c->intermediate <= 0)
        return hfc_missing(r, "intermediate_size");
    return 0;
}

/* ------------------------------------------------------------------ public (module) */

int hfc_read_dsv3(const hfc_rd *r, hfc_config *c)
{
    int rc = read_mla(r, c);
    if (rc == 0)
        rc = read_rope(r, c);
    if (rc == 0)
        rc = read_ds_moe(r, c);
    if (rc)
        return rc;
    const hfc_dsv3 *ds = &c->ds;
    double m = ds->yarn.on && ds->yarn.mscale_all_dim > 0
                   ? yarn_mscale(ds->yarn.factor, ds->yarn.mscale_all_dim)
                   : 1.0;
    c->ds.softmax_scale = m * m / sqrt((double)(ds->qk_nope_dim + ds->qk_rope_dim));
    return 0;
}

int hfc_read_quant(const hfc_rd *r, hfc_config *c)
{
    const json_t *q = hfc_field(r->root, "quantization_config");
    if (!q)
        return 0;
    if (!json_is_object(q))
        return vl_errf(r->err, VL_ECONFIG, "%s: field \"quantization_config\" is not an object",
                       r->path);
    const json_t *m = hfc_field(q, "quant_method");
    if (!m || !json_is_string(m) || strcmp(json_string_value(m), "fp8"))
        return vl_errf(r->err, VL_ECONFIG, "%s: quantization_config.quant_method \"%.32s\" not "
                       "supported (only fp8)", r->path,
                       m && json_is_string(m) ? json_string_value(m) : "");
    /* activations stay float32 (what the reference forward computes); only "dynamic", which
     * stores no activation scales, describes such a checkpoint */
    const char *keys[][2] = {{"fmt", "e4m3"}, {"activation_scheme", "dynamic"}};
    for (int k = 0; k < 2; k++) {
        const json_t *v = hfc_field(q, keys[k][0]);
        if (v && (!json_is_string(v) || strcmp(json_string_value(v), keys[k][1])))
            return vl_errf(r->err, VL_ECONFIG, "%s: quantization_config.%s \"%.32s\" not "
                           "supported (only %s)", r->path, keys[k][0],
                           json_is_string(v) ? json_string_value(v) : "?", keys[k][1]);
    }
    const json_t *b = hfc_field(q, "weight_block_size");
    if (!b)
        return hfc_missing(r, "quantization_config.weight_block_size");
    for (size_t i = 0; i < 2; i++) {
        const json_t *e = json_array_get(b, i);
        if (!json_is_array(b) || json_array_size(b) != 2 || !json_is_integer(e) ||
            json_integer_value(e) < 1 || json_integer_value(e) > DS_MAX_DIM)
            return vl_errf(r->err, VL_ECONFIG, "%s: quantization_config.weight_block_size must "
                           "be two positive integers", r->path);
        c->fp8_block[i] = (int)json_integer_value(e);
    }
    return 0;
}
