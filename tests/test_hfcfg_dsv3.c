/* tests/test_hfcfg_dsv3.c — deepseek_v3 config keys in both spellings, and their errors.
 *
 * The fixture's config.json (transformers-5 rope_parameters) and config.legacy.json (rope_theta +
 * rope_scaling with "type") must give the same hfc_config field by field; the values are the
 * ones make_fixtures.py passed to transformers, and the YaRN derived numbers are recomputed here
 * from the formulas of transformers' _compute_yarn_parameters / DeepseekV3Attention. Each
 * corrupted variant (one key changed with jansson) must fail with a one-line error naming the
 * key.
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/hfcfg.h"
#include "check.h"

#include <jansson.h>
#include <math.h>
#include <unistd.h>

#define DIR "tests/fixtures/tiny-deepseek-v3"

static void test_values(chk *c, const hfc_config *h, const char *label)
{
    char n[128];
#define V(expr, want)                                                                          \
    do {                                                                                       \
        snprintf(n, sizeof n, "%s: %s", label, #expr);                                         \
        CHECK_NEAR(c, (double)(expr), (double)(want), 0, 1e-15, n);                            \
    } while (0)
    V(h->arch, HFC_DEEPSEEK_V3);
    V(h->n_layers, 3);
    V(h->hidden, 256);
    V(h->n_heads, 4);
    V(h->head_dim, 32);
    V(h->intermediate, 512);
    V(h->ds.q_lora_rank, 128);
    V(h->ds.kv_lora_rank, 128);
    V(h->ds.qk_nope_dim, 64);
    V(h->ds.qk_rope_dim, 32);
    V(h->ds.v_head_dim, 64);
    V(h->ds.rope_interleave, 1);
    V(h->rope_theta, 10000);
    V(h->ds.yarn.on, 1);
    V(h->ds.yarn.factor, 4);
    V(h->ds.yarn.orig_max_pos, 64);
    V(h->ds.yarn.beta_fast, 32);
    V(h->ds.yarn.beta_slow, 1);
    V(h->ds.yarn.mscale, 1);
    V(h->ds.yarn.mscale_all_dim, 1);
    V(h->ds.yarn.truncate, 1);
    V(h->ds.yarn.attn_factor, 1); /* mscale(4, 1) / mscale(4, 1) */
    double m = 0.1 * log(4.0) + 1.0;
    V(h->ds.softmax_scale, m * m / sqrt(96.0));
    V(h->n_experts, 8);
    V(h->n_experts_per_tok, 2);
    V(h->moe_intermediate, 64);
    V(h->shared_intermediate, 64);
    V(h->ds.n_shared, 1);
    V(h->ds.first_k_dense, 1);
    V(h->ds.n_group, 4);
    V(h->ds.topk_group, 2);
    V(h->norm_topk_prob, 1);
    V(h->ds.routed_scaling, 2.5);
    V(h->ds.n_mtp_layers, 1);
    V(h->layer_is_moe[0] * 100 + h->layer_is_moe[1] * 10 + h->layer_is_moe[2], 11);
    V(h->fp8_block[0], 128);
    V(h->fp8_block[1], 128);
#undef V
}

/* The config with one change applied by EDIT, written to PATH. */
typedef void (*edit_fn)(json_t *root);

static const char *write_variant(const char *src, edit_fn edit, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(src, 0, &je);
    if (!root)
        return NULL;
    edit(root);
    int rc = json_dump_file(root, path, JSON_INDENT(1));
    json_decref(root);
    return rc ? NULL : path;
}

static void rope_linear(json_t *r)
{
    json_object_set_new(json_object_get(r, "rope_parameters"), "rope_type", json_string("linear"));
    json_object_del(json_object_get(r, "rope_parameters"), "type");
}
static void rope_legacy_dynamic(json_t *r) { json_object_set_new(json_object_get(r, "rope_scaling"), "type", json_string("dynamic")); }
static void rope_disagree(json_t *r) { json_object_set_new(json_object_get(r, "rope_parameters"), "type", json_string("linear")); }
static void arch_v2(json_t *r) { json_object_set_new(r, "model_type", json_string("deepseek_v2")); }
static void no_q_lora(json_t *r) { json_object_del(r, "q_lora_rank"); }
static void moe_freq(json_t *r) { json_object_set_new(r, "moe_layer_freq", json_integer(2)); }
static void softmax_scoring(json_t *r) { json_object_set_new(r, "scoring_func", json_string("softmax")); }
static void greedy(json_t *r) { json_object_set_new(r, "topk_method", json_string("greedy")); }
static void attn_bias(json_t *r) { json_object_set_new(r, "attention_bias", json_true()); }
static void bad_groups(json_t *r) { json_object_set_new(r, "n_group", json_integer(3)); }
static void int8(json_t *r) { json_object_set_new(json_object_get(r, "quantization_config"), "quant_method", json_string("bitsandbytes")); }
static void no_block(json_t *r) { json_object_del(json_object_get(r, "quantization_config"), "weight_block_size"); }
static void static_act(json_t *r) { json_object_set_new(json_object_get(r, "quantization_config"), "activation_scheme", json_string("static")); }
static void kv_heads(json_t *r) { json_object_set_new(r, "num_key_value_heads", json_integer(2)); }
static void odd_rope(json_t *r) { json_object_set_new(r, "qk_rope_head_dim", json_integer(31)); json_object_del(r, "qk_head_dim"); json_object_del(r, "head_dim"); }
static void per_type_differ(json_t *r)
{
    json_t *rp = json_deep_copy(json_object_get(r, "rope_parameters")), *o = json_object();
    json_object_set(o, "full_attention", rp);
    json_t *rp2 = json_deep_copy(rp);
    json_object_set_new(rp2, "factor", json_real(8.0));
    json_object_set_new(o, "sliding_attention", rp2);
    json_decref(rp);
    json_object_set_new(r, "rope_parameters", o);
}

typedef struct {
    const char *label, *src;
    edit_fn edit;
    int code;
    const char *msg;
} bad_case;

static const bad_case k_bad[] = {
    {"rope type linear", "config.json", rope_linear, VL_ECONFIG,
     "rope_parameters rope type \"linear\" not supported for deepseek_v3 (supported: default, yarn)"},
    {"legacy rope type dynamic", "config.legacy.json", rope_legacy_dynamic, VL_ECONFIG,
     "rope_scaling rope type \"dynamic\" not supported"},
    {"rope_type and type disagree", "config.json", rope_disagree, VL_ECONFIG,
     "rope_parameters.rope_type \"yarn\" and rope_parameters.type \"linear\" disagree"},
    {"per-layer-type rope dicts differ", "config.json", per_type_differ, VL_ECONFIG,
     "rope_parameters.full_attention and rope_parameters.sliding_attention differ"},
    {"deepseek_v2 architecture", "config.json", arch_v2, VL_ECONFIG,
     "model_type \"deepseek_v2\" not supported"},
    {"q_lora_rank absent", "config.json", no_q_lora, VL_ECONFIG, "missing field \"q_lora_rank\""},
    {"moe_layer_freq 2", "config.json", moe_freq, VL_ECONFIG, "moe_layer_freq 2 not supported"},
    {"scoring_func softmax", "config.json", softmax_scoring, VL_ECONFIG,
     "scoring_func \"softmax\" not supported for deepseek_v3 (only sigmoid)"},
    {"topk_method greedy", "config.json", greedy, VL_ECONFIG, "topk_method \"greedy\" not supported"},
    {"attention_bias", "config.json", attn_bias, VL_ECONFIG, "attention_bias true not supported"},
    {"8 experts in 3 groups", "config.json", bad_groups, VL_ECONFIG,
     "n_routed_experts 8 must split into n_group 3 groups"},
    {"quant_method", "config.json", int8, VL_ECONFIG,
     "quantization_config.quant_method \"bitsandbytes\" not supported (only fp8)"},
    {"weight_block_size absent", "config.json", no_block, VL_ECONFIG,
     "missing field \"quantization_config.weight_block_size\""},
    {"static activations", "config.json", static_act, VL_ECONFIG,
     "quantization_config.activation_scheme \"static\" not supported"},
    {"kv heads != heads", "config.json", kv_heads, VL_ECONFIG, "num_key_value_heads 2 must equal"},
    {"odd rope width", "config.json", odd_rope, VL_ECONFIG, "qk_rope_head_dim 31 must be even"},
};

/* Per-layer-type rope_parameters holding the same dict: the same config as the flat one. */
static void per_type_same(json_t *r)
{
    json_t *rp = json_object_get(r, "rope_parameters"), *o = json_object();
    json_object_set(o, "full_attention", rp);
    json_object_set_new(r, "rope_parameters", o);
}

/* No scaling at all (plain RoPE): softmax scale is (Dn + Dr)^-1/2. */
static void rope_plain(json_t *r) { json_object_set_new(r, "rope_parameters", json_pack("{s:s, s:f}", "rope_type", "default", "rope_theta", 5e4)); }

int main(void)
{
    chk c;
    chk_init(&c, "test_hfcfg_dsv3");
    hfc_config a, b;
    vl_err e = {0};
    int rc = hfc_load(&a, DIR "/config.json", &e);
    CHECK(&c, rc == 0, "config.json loads%s%s", rc ? ": " : "", rc ? e.msg : "");
    int rc2 = hfc_load(&b, DIR "/config.legacy.json", &e);
    CHECK(&c, rc2 == 0, "config.legacy.json loads%s%s", rc2 ? ": " : "", rc2 ? e.msg : "");
    if (rc == 0)
        test_values(&c, &a, "transformers-5 spelling");
    if (rc2 == 0)
        test_values(&c, &b, "legacy spelling");
    CHECK(&c, rc == 0 && rc2 == 0 && memcmp(&a, &b, sizeof a) == 0,
          "both spellings give the identical hfc_config");
    CHECK_STR(&c, hfc_arch_name(HFC_DEEPSEEK_V3), "deepseek_v3", "arch name");

    char path[128];
    snprintf(path, sizeof path, "/tmp/vbrlab-test-hfcfg-dsv3-%d.json", (int)getpid());
    hfc_config v;
    rc = hfc_load(&v, write_variant(DIR "/config.json", per_type_same, path), &e);
    CHECK(&c, rc == 0 && memcmp(&v, &a, sizeof v) == 0,
          "per-layer-type rope_parameters {full_attention: {...}} = the flat dict%s%s",
          rc ? ": " : "", rc ? e.msg : "");
    rc = hfc_load(&v, write_variant(DIR "/config.json", rope_plain, path), &e);
    CHECK(&c, rc == 0 && !v.ds.yarn.on && v.rope_theta == 5e4 &&
                  fabs(v.ds.softmax_scale - 1 / sqrt(96.0)) < 1e-15,
          "rope_type default: no YaRN, theta from rope_parameters, scale 96^-1/2%s%s",
          rc ? ": " : "", rc ? e.msg : "");
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        const bad_case *k = &k_bad[i];
        char src[256];
        snprintf(src, sizeof src, "%s/%s", DIR, k->src);
        e = (vl_err){0};
        rc = hfc_load(&v, write_variant(src, k->edit, path), &e);
        CHECK_INT(&c, rc, k->code, k->label);
        CHECK_HAS(&c, e.msg, k->msg, k->label);
        CHECK_HAS(&c, e.msg, path, k->label);
        CHECK(&c, !strchr(e.msg, '\n'), "%s: one line", k->label);
    }
    unlink(path);
    return chk_done(&c);
}
