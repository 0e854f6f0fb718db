/* io/hfcfg.h — Hugging Face config.json → a validated architecture description.
 *
 * Supported model_type: llama, qwen2, qwen2_moe, qwen3, qwen3_moe, mixtral, deepseek_v3 (its keys:
 * hfcfg_dsv3.c; rope type default or yarn, in the legacy spelling rope_theta + rope_scaling
 * {"type"} or transformers-5's rope_parameters), deepseek_v4 (hfcfg_dsv4.c; YaRN on its compress
 * rope only). Unknown types and
 * missing required fields are errors that list what is supported. Fields with documented HF
 * defaults (e.g. head_dim = hidden/heads, tie_word_embeddings per family) take those defaults.
 * Both `rope_theta` and `rope_parameters.rope_theta` are read (they must agree if both are
 * present). Sizes that decide tensor shapes have no defaults: missing ones are errors
 * ("config.json: missing field \"hidden_size\""). What the forward does not implement is refused
 * rather than misread: a rope_type other than "default", use_sliding_window true, a hidden_act
 * other than "silu". Bad JSON reports jansson's line and column.
 */
#ifndef VL_HFCFG_H
#define VL_HFCFG_H

#include "../core/err.h"

#define HFC_MAX_LAYERS 512

typedef enum {
    HFC_LLAMA, HFC_QWEN2, HFC_QWEN2_MOE, HFC_QWEN3, HFC_QWEN3_MOE, HFC_MIXTRAL,
    HFC_DEEPSEEK_V3,
    HFC_DEEPSEEK_V4, /* io/hfcfg_dsv4.c */
    HFC_ARCH_COUNT
} hfc_arch;


/* ---- deepseek_v3 (read by io/hfcfg_dsv3.c) ---- */

/* YaRN RoPE scaling as transformers' _compute_yarn_parameters computes it. */
typedef struct {
    int on;                 /* rope type "yarn" (0: plain RoPE) */
    double factor;          /* "factor" (absent: max_position_embeddings / original) */
    int orig_max_pos;       /* "original_max_position_embeddings" (default max_position_embeddings) */
    double beta_fast;       /* default 32 */
    double beta_slow;       /* default 1 */
    double mscale;          /* default 0 = absent */
    double mscale_all_dim;  /* default 0 = absent */
    double attn_factor;     /* cos/sin multiplier: "attention_factor", else
                               mscale(factor, mscale) / mscale(factor, mscale_all_dim) when both
                               are set, else mscale(factor, 1); mscale(s, m) = 0.1·m·ln s + 1 */
    int truncate;           /* "truncate" (default true): floor/ceil the correction range */
} hfc_yarn;

typedef struct {
    int q_lora_rank;        /* Rq; 0 = "q_lora_rank": null (a plain q_proj) */
    int kv_lora_rank;       /* Rkv */
    int qk_nope_dim;        /* qk_nope_head_dim */
    int qk_rope_dim;        /* qk_rope_head_dim (the RoPE width; head_dim is set to it) */
    int v_head_dim;         /* v_head_dim */
    int rope_interleave;    /* rope_interleave (default true): q/k rope parts are stored as
                               interleaved pairs (x0,x1),(x2,x3).. and de-interleaved first */
    int max_pos;            /* max_position_embeddings */
    hfc_yarn yarn;
    double softmax_scale;   /* (Dn+Dr)^−½ · mscale(factor, mscale_all_dim)² with YaRN */
    int n_shared;           /* n_shared_experts (shared width = n_shared · moe_intermediate) */
    int first_k_dense;      /* first_k_dense_replace: layers < k are dense */
    int n_group, topk_group;       /* group-limited routing (defaults 8, 4 as transformers) */
    double routed_scaling;  /* routed_scaling_factor (default 2.5) */
    int n_mtp_layers;       /* num_nextn_predict_layers: multi-token prediction layers in the
                               checkpoint, not part of the causal LM forward (ignored) */
} hfc_dsv3;

/* ---- deepseek_v4 (io/hfcfg_dsv4.c; DeepseekV4Config of transformers 5.17) ---- */
typedef enum { HFC_ATT_SLIDING, HFC_ATT_CSA, HFC_ATT_HCA } hfc_att_kind;
typedef enum { HFC_SCORE_SOFTMAX, HFC_SCORE_SIGMOID, HFC_SCORE_SQRTSOFTPLUS } hfc_score;

typedef struct {
    int q_lora_rank;          /* wq_a output width */
    int o_groups, o_lora_rank; /* grouped low-rank output projection */
    int hc_mult;              /* hyper-connection streams */
    int hc_sinkhorn_iters;    /* Sinkhorn-Knopp iterations */
    double hc_eps;
    int rope_dim_main;        /* rotated trailing dims of a head: int(head_dim·partial factor) */
    int rope_dim_compress;
    double theta_main;        /* rope_parameters.main.rope_theta (sliding layers) */
    double theta_compress;    /* rope_parameters.compress.rope_theta (CSA/HCA + compressors) */
    hfc_yarn yarn_compress;   /* YaRN of the compress rope (on = 0: plain); cos/sin × its
                                 attn_factor, which the flat spelling forces to 1 as
                                 DeepseekV4Config does unless attention_factor is given */
    int sliding_window;       /* keys j with i − window < j ≤ i */
    int rate_csa, rate_hca;   /* compress_rates */
    int index_heads, index_head_dim, index_topk; /* lightning indexer */
    hfc_score scoring;        /* router activation */
    double routed_scaling;    /* routed_scaling_factor */
    double swiglu_limit;      /* gate ≤ limit, |up| ≤ limit (routed and shared experts) */
    unsigned char att_kind[HFC_MAX_LAYERS]; /* hfc_att_kind per layer (layer_types) */
    unsigned char hash_moe[HFC_MAX_LAYERS]; /* mlp_layer_types == "hash_moe" */
} hfc_dsv4;

typedef struct {
    hfc_arch arch;
    char model_type[32];      /* as in the file */
    int vocab;                /* vocab_size */
    int hidden;               /* hidden_size D */
    int n_layers;             /* num_hidden_layers */
    int n_heads;              /* num_attention_heads Hq */
    int n_kv_heads;           /* num_key_value_heads Hkv (default Hq) */
    int head_dim;             /* Dh (default D / Hq; required for qwen3/qwen3_moe, whose HF
                                 classes default it to 128 rather than D / Hq) */
    int intermediate;         /* intermediate_size: dense MLP width (0 if none: mixtral, whose
                                 intermediate_size is the expert width moe_intermediate) */
    double rope_theta;        /* RoPE base */
    double rms_eps;           /* rms_norm_eps */
    int tie_embeddings;       /* lm_head shares embed_tokens */
    int qkv_bias;             /* q/k/v projections have biases: qwen2 always, qwen2_moe
                                 "qkv_bias" (default true), llama/qwen3/qwen3_moe
                                 "attention_bias" (default false), mixtral never */
    int qk_norm;              /* per-head RMSNorm on q and k (qwen3 family) */
    int n_experts;            /* routed experts E (0 = dense model) */
    int n_experts_per_tok;    /* top-k K */
    int moe_intermediate;     /* routed expert width F */
    int shared_intermediate;  /* shared expert width (0 = none) */
    int norm_topk_prob;       /* renormalise the top-k probabilities (qwen: field, default
                                 false; mixtral: always) */
    int decoder_sparse_step;  /* qwen MoE: layer l is sparse iff (l+1) % step == 0 and l is
                                 not in mlp_only_layers; 1 for the other types */
    int layer_is_moe[HFC_MAX_LAYERS]; /* resolved per layer: 1 = MoE block, 0 = dense MLP */
    int bos_id, eos_id;       /* -1 if absent; a list of eos ids gives its first */
    /* ---- deepseek_v3 (io/hfcfg_dsv3.c); zero for the other architectures ---- */
    hfc_dsv3 ds;
    /* ---- quantization_config (io/hfcfg_dsv3.c): FP8 e4m3 weights with one scale per
     * fp8_block[0] × fp8_block[1] block (weight_block_size); 0 0 when absent ---- */
    int fp8_block[2];
    /* ---- deepseek_v4 (io/hfcfg_dsv4.c); zero for the other architectures ---- */
    hfc_dsv4 v4;
} hfc_config;

/* Parse PATH (a config.json). On failure *out is unspecified and err names the file and field:
 * VL_ENOTFOUND (no such file), VL_EIO (cannot open, not a regular file), VL_EFORMAT (not
 * JSON / not an object), VL_ECONFIG (anything else).
 * Thread-safe; keeps no reference to PATH. */
int hfc_load(hfc_config *out, const char *path, vl_err *err);

const char *hfc_arch_name(hfc_arch a); /* model_type spelling; static string */

#endif
