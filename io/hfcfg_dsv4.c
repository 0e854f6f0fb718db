/* io/hfcfg_dsv4.c — the deepseek_v4 part of config.json (DeepseekV4Config, transformers 5.17).
 *
 * Defaults and legacy spellings follow DeepseekV4Config.__post_init__: compress_rates defaults
 * to {CSA: 4, HCA: 128} with top-level compress_rate_csa / compress_rate_hca overriding it;
 * layer_types comes from the list, else from legacy per-layer compress_ratios (0 / 4 / 128),
 * else two HCA layers then CSA/HCA alternating; mlp_layer_types from the list, else the first
 * num_hash_layers (default 3) layers hash-routed; partial_rotary_factor from the field, else
 * qk_rope_head_dim / head_dim, else 64 / 512. rope_parameters is either nested
 * ({"main": {...}, "compress": {...}}) or flat (main = rope_theta, compress =
 * compress_rope_theta, both with partial_rotary_factor).
 *
 * Rope types: "default"; "yarn" for the compress rope (transformers' _compute_yarn_parameters,
 * cos/sin × its attention factor, which DeepseekV4Config forces to 1 in the flat spelling).
 * What the forward does not compute is refused with the key named: another rope type (or yarn
 * on the main rope), more than one KV head, n_shared_experts ≠ 1 (the 5.17
 * shared MLP is moe_intermediate_size wide whatever that count says), norm_topk_prob false (the
 * 5.17 routers always renormalise), attention/mlp biases, a scoring_func other than
 * sqrtsoftplus / sigmoid / softmax. quantization_config is read by hfcfg_dsv3.c's
 * hfc_read_quant (FP8 block size).
 */
#include "hfcfg_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIM (1 << 20)

static int bad(vl_err *err, const char *path, const char *key, const char *what)
{
    return vl_errf(err, VL_ECONFIG, "%s: field \"%s\" %s", path, key, what);
}

/* A rope dict's type: "default" when absent; "yarn" allowed only where YARN is non-NULL
 * (the compress rope), read with its fields into *yarn. */
static int read_rope_type(const hfc_rd *r, const json_t *d, const char *label, int max_pos,
                          hfc_yarn *yarn)
{
    const json_t *ty = hfc_field(d, "rope_type");
    if (!ty)
        ty = hfc_field(d, "type");
    const char *t = ty && json_is_string(ty) ? json_string_value(ty) : ty ? "?" : "default";
    if (!strcmp(t, "default"))
        return 0;
    if (yarn && !strcmp(t, "yarn"))
        return hfc_read_yarn(r, d, label, max_pos, yarn);
    return vl_errf(r->err, VL_ECONFIG, "%s: field \"%s.rope_type\" = \"%.32s\" not supported "
                   "(%s)", r->path, label, t, yarn ? "default, yarn" : "only default");
}

/* Theta and rotated dims of one rope (SUB: its dict, or NULL for the flat spelling). */
static int read_rope_part(const hfc_rd *r, const json_t *sub, const char *label,
                          double def_theta, double def_factor, int head_dim, double *theta,
                          int *dim)
{
    char key[64];
    snprintf(key, sizeof key, "%s.rope_theta", label);
    int rc = hfc_get_pos_num(r, sub, "rope_theta", key, def_theta, theta);
    double f = def_factor;
    snprintf(key, sizeof key, "%s.partial_rotary_factor", label);
    if (!rc)
        rc = hfc_get_pos_num(r, sub, "partial_rotary_factor", key, def_factor, &f);
    if (rc)
        return rc;
    *dim = (int)(head_dim * f); /* int() truncates, as the config class does */
    if (f > 1 || *dim < 2 || *dim % 2)
        return bad(r->err, r->path, key, "gives an odd, empty or too wide rotary slice");
    return 0;
}

static int read_rope(const hfc_rd *r, hfc_config *c)
{
    const json_t *root = r->root;
    hfc_dsv4 *v = &c->v4;
    double factor = 0, top_theta, ctheta;
    int max_pos = 0, rc = hfc_get_pos_num(r, root, "partial_rotary_factor",
                                          "partial_rotary_factor", 0, &factor);
    if (!rc && factor == 0) {
        int qr = 0;
        rc = hfc_get_int(r, "qk_rope_head_dim", 0, 0, 1, MAX_DIM, &qr);
        factor = qr ? (double)qr / c->head_dim : 64.0 / 512.0;
    }
    if (!rc)
        rc = hfc_get_pos_num(r, root, "rope_theta", "rope_theta", 10000.0, &top_theta);
    if (!rc)
        rc = hfc_get_pos_num(r, root, "compress_rope_theta", "compress_rope_theta", 160000.0,
                             &ctheta);
    if (!rc)
        rc = hfc_get_int(r, "max_position_embeddings", 0, 0, 1, 1 << 30, &max_pos);
    if (rc)
        return rc;
    const json_t *rp = hfc_field(root, "rope_parameters");
    const json_t *mn = hfc_field(rp, "main"), *cp = hfc_field(rp, "compress");
    if (json_is_object(mn) && json_is_object(cp)) {
        if (hfc_field(root, "rope_scaling"))
            return bad(r->err, r->path, "rope_scaling", "given beside per-rope rope_parameters "
                       "(main / compress): one spelling only");
        /* compute_default_rope_parameters: .get("partial_rotary_factor", 1.0); a yarn compress
         * dict keeps its own attention_factor (else _compute_yarn_parameters' mscale) */
        rc = read_rope_type(r, mn, "rope_parameters.main", max_pos, NULL);
        if (!rc)
            rc = read_rope_type(r, cp, "rope_parameters.compress", max_pos, &v->yarn_compress);
        if (!rc)
            rc = read_rope_part(r, mn, "rope_parameters.main", top_theta, 1.0, c->head_dim,
                                &v->theta_main, &v->rope_dim_main);
        if (!rc)
            rc = read_rope_part(r, cp, "rope_parameters.compress", ctheta, 1.0, c->head_dim,
                                &v->theta_compress, &v->rope_dim_compress);
        return rc;
    }
    /* flat (rope_parameters, or legacy rope_scaling): main is plain at rope_theta; compress is
     * the dict's type at compress_rope_theta, YaRN with attention_factor 1 unless given */
    const json_t *d = json_is_object(rp) ? rp : hfc_field(root, "rope_scaling");
    const char *label = d == rp ? "rope_parameters" : "rope_scaling";
    rc = read_rope_type(r, d, label, max_pos, &v->yarn_compress);
    if (!rc && v->yarn_compress.on && !hfc_field(d, "attention_factor"))
        v->yarn_compress.attn_factor = 1.0;
    if (!rc)
        rc = read_rope_part(r, NULL, "rope_parameters.main", top_theta, factor, c->head_dim,
                            &v->theta_main, &v->rope_dim_main);
    if (!rc)
        rc = read_rope_part(r, NULL, "rope_parameters.compress", ctheta, factor, c->head_dim,
                            &v->theta_compress, &v->rope_dim_compress);
    return rc;
}

static int layer_kind_of(const char *s)
{
    if (!strcmp(s, "sliding_attention"))
        return HFC_ATT_SLIDING;
    if (!strcmp(s, "compressed_sparse_attention"))
        return HFC_ATT_CSA;
    if (!strcmp(s, "heavily_compressed_attention"))
        return HFC_ATT_HCA;
    return -1;
}

static int read_layers(const hfc_rd *r, hfc_config *c)
{
    const json_t *root = r->root;
    const char *path = r->path;
    vl_err *err = r->err;
    hfc_dsv4 *v = &c->v4;
    int n = c->n_layers, rc = 0;
    v->rate_csa = 4;
    v->rate_hca = 128;
    const json_t *cr = hfc_field(root, "compress_rates");
    if (cr && !json_is_object(cr))
        return bad(err, path, "compress_rates", "is not an object");
    if (cr) {
        hfc_rd sub = {path, cr, err};
        rc = hfc_get_int(&sub, "compressed_sparse_attention", 0, 4, 1, 1 << 16, &v->rate_csa);
        if (!rc)
            rc = hfc_get_int(&sub, "heavily_compressed_attention", 0, 128, 1, 1 << 16,
                             &v->rate_hca);
    }
    if (!rc)
        rc = hfc_get_int(r, "compress_rate_csa", 0, v->rate_csa, 1, 1 << 16, &v->rate_csa);
    if (!rc)
        rc = hfc_get_int(r, "compress_rate_hca", 0, v->rate_hca, 1, 1 << 16, &v->rate_hca);
    if (rc)
        return rc;
    const json_t *lt = hfc_field(root, "layer_types"), *ratios = hfc_field(root, "compress_ratios");
    for (int l = 0; l < n; l++) /* default: 2× HCA, then CSA on odd i, HCA on even i */
        v->att_kind[l] = l < 2 ? HFC_ATT_HCA : ((l - 2) % 2 ? HFC_ATT_CSA : HFC_ATT_HCA);
    if (lt || ratios) {
        const json_t *a = lt ? lt : ratios;
        const char *key = lt ? "layer_types" : "compress_ratios";
        if (!json_is_array(a) || (int)json_array_size(a) < n)
            return bad(err, path, key, "must be a list of one entry per layer");
        for (int l = 0; l < n; l++) {
            const json_t *e = json_array_get(a, (size_t)l);
            int k = -1;
            if (lt && json_is_string(e))
                k = layer_kind_of(json_string_value(e));
            else if (!lt && json_is_integer(e))
                k = json_integer_value(e) == 0 ? HFC_ATT_SLIDING
                    : json_integer_value(e) == 4 ? HFC_ATT_CSA
                    : json_integer_value(e) == 128 ? HFC_ATT_HCA : -1;
            if (k < 0)
                return vl_errf(err, VL_ECONFIG, "%s: %s[%d] is not sliding_attention, "
                               "compressed_sparse_attention or heavily_compressed_attention "
                               "(0/4/128)", path, key, l);
            v->att_kind[l] = (unsigned char)k;
        }
    }
    int n_hash = 3;
    if ((rc = hfc_get_int(r, "num_hash_layers", 0, 3, 0, HFC_MAX_LAYERS, &n_hash)))
        return rc;
    const json_t *mt = hfc_field(root, "mlp_layer_types");
    for (int l = 0; l < n; l++)
        v->hash_moe[l] = l < n_hash;
    if (mt) {
        if (!json_is_array(mt) || (int)json_array_size(mt) < n)
            return bad(err, path, "mlp_layer_types", "must be a list of one entry per layer");
        for (int l = 0; l < n; l++) {
            const json_t *e = json_array_get(mt, (size_t)l);
            const char *s = json_is_string(e) ? json_string_value(e) : "";
            if (strcmp(s, "hash_moe") && strcmp(s, "moe"))
                return vl_errf(err, VL_ECONFIG, "%s: mlp_layer_types[%d] is not hash_moe or moe",
                               path, l);
            v->hash_moe[l] = !strcmp(s, "hash_moe");
        }
    }
    return 0;
}

static int read_moe(const hfc_rd *r, hfc_config *c)
{
    const json_t *root = r->root;
    const char *path = r->path;
    vl_err *err = r->err;
    hfc_dsv4 *v = &c->v4;
    int shared = 1, rc = hfc_get_int(r, "n_routed_experts", 1, 0, 1, 4096, &c->n_experts);
    if (!rc)
        rc = hfc_get_int(r, "num_experts_per_tok", 1, 0, 1, 4096, &c->n_experts_per_tok);
    if (!rc)
        rc = hfc_get_int(r, "moe_intermediate_size", 1, 0, 1, MAX_DIM, &c->moe_intermediate);
    if (!rc)
        rc = hfc_get_int(r, "n_shared_experts", 0, 1, 0, 64, &shared);
    if (!rc)
        rc = hfc_get_bool(r, "norm_topk_prob", 1, &c->norm_topk_prob);
    if (!rc)
        rc = hfc_get_pos_num(r, root, "routed_scaling_factor", "routed_scaling_factor", 1.5,
                             &v->routed_scaling);
    if (!rc)
        rc = hfc_get_pos_num(r, root, "swiglu_limit", "swiglu_limit", 10.0, &v->swiglu_limit);
    if (rc)
        return rc;
    if (c->n_experts_per_tok > c->n_experts)
        return bad(err, path, "num_experts_per_tok", "exceeds n_routed_experts");
    if (shared != 1)
        return bad(err, path, "n_shared_experts", "must be 1 (transformers 5.17's shared MLP is "
                   "one moe_intermediate_size block)");
    if (!c->norm_topk_prob)
        return bad(err, path, "norm_topk_prob", "false not supported (the deepseek_v4 routers "
                   "always renormalise)");
    const json_t *sf = hfc_field(root, "scoring_func");
    const char *s = sf ? (json_is_string(sf) ? json_string_value(sf) : "?") : "sqrtsoftplus";
    if (!strcmp(s, "sqrtsoftplus"))
        v->scoring = HFC_SCORE_SQRTSOFTPLUS;
    else if (!strcmp(s, "sigmoid"))
        v->scoring = HFC_SCORE_SIGMOID;
    else if (!strcmp(s, "softmax"))
        v->scoring = HFC_SCORE_SOFTMAX;
    else
        return vl_errf(err, VL_ECONFIG, "%s: field \"scoring_func\" = \"%.32s\" not supported "
                       "(sqrtsoftplus, sigmoid, softmax)", path, s);
    c->shared_intermediate = c->moe_intermediate;
    c->intermediate = 0;
    c->decoder_sparse_step = 1;
    for (int l = 0; l < c->n_layers; l++)
        c->layer_is_moe[l] = 1;
    return 0;
}

int hfc_dsv4_read(const hfc_rd *r, hfc_config *c)
{
    const char *path = r->path;
    vl_err *err = r->err;
    hfc_dsv4 *v = &c->v4;
    int mlp_bias = 0;
    if (c->n_kv_heads != 1)
        return bad(err, path, "num_key_value_heads", "must be 1 (shared-KV attention)");
    if (c->qkv_bias)
        return bad(err, path, "attention_bias", "true not supported for deepseek_v4");
    int rc = hfc_get_bool(r, "mlp_bias", 0, &mlp_bias);
    if (!rc && mlp_bias)
        rc = bad(err, path, "mlp_bias", "true not supported for deepseek_v4");
    if (!rc)
        rc = hfc_get_int(r, "q_lora_rank", 1, 0, 1, MAX_DIM, &v->q_lora_rank);
    if (!rc)
        rc = hfc_get_int(r, "o_groups", 1, 0, 1, MAX_DIM, &v->o_groups);
    if (!rc)
        rc = hfc_get_int(r, "o_lora_rank", 1, 0, 1, MAX_DIM, &v->o_lora_rank);
    if (!rc)
        rc = hfc_get_int(r, "hc_mult", 0, 4, 1, 64, &v->hc_mult);
    if (!rc)
        rc = hfc_get_int(r, "hc_sinkhorn_iters", 0, 20, 1, 1000,
                         &v->hc_sinkhorn_iters);
    if (!rc)
        rc = hfc_get_pos_num(r, r->root, "hc_eps", "hc_eps", 1e-6, &v->hc_eps);
    if (!rc)
        rc = hfc_get_int(r, "sliding_window", 0, 128, 1, 1 << 24, &v->sliding_window);
    if (!rc)
        rc = hfc_get_int(r, "index_n_heads", 0, 64, 1, 4096, &v->index_heads);
    if (!rc)
        rc = hfc_get_int(r, "index_head_dim", 0, 128, 2, MAX_DIM, &v->index_head_dim);
    if (!rc)
        rc = hfc_get_int(r, "index_topk", 0, 512, 1, 1 << 24, &v->index_topk);
    if (!rc && ((long)c->n_heads * c->head_dim) % v->o_groups)
        rc = bad(err, path, "o_groups", "does not divide num_attention_heads · head_dim");
    if (!rc)
        rc = read_rope(r, c);
    if (!rc && v->rope_dim_compress > v->index_head_dim)
        rc = bad(err, path, "index_head_dim", "is narrower than the compress rotary slice");
    if (!rc)
        rc = read_layers(r, c);
    if (!rc)
        rc = read_moe(r, c);
    c->rope_theta = v->theta_main;
    return rc;
}
