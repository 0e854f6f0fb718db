/* analysis/model.h — a decoder-only LLM opened for the forward pass: config + stored weights.
 *
 * model_open reads DIR/config.json (io/hfcfg) and maps DIR's safetensors (io/st, one file or
 * sharded), checks that every tensor the architecture needs exists with the right shape and
 * finite values (NaN/Inf rejected, FP8 scales checked), and keeps the files mapped: weights stay
 * in their stored dtype (BF16/F16/F32/FP8) and are converted to float32 only when asked
 * (model_tensor_load; per layer through analysis/mweights.h), so memory is bounded by a layer,
 * not by the model. Architectures: llama, qwen2, qwen3 (dense); qwen2_moe, qwen3_moe, mixtral,
 * deepseek_v3, deepseek_v4 (MoE; V4's tensors: analysis/model_dsv4.c). FP8 e4m3 tensors are
 * dequantized with their "<name>_scale_inv" block scales (quantization_config.weight_block_size;
 * io/st.h st_fp8_dequant): the float32 weights are the dequantized values, the reference every
 * quantizer starts from.
 * Tensors the architecture does not use are ignored (counted in model_info.n_unused).
 *
 * The weights are reached through a *binding* (model_weights): per layer, pointers to each
 * matrix and vector the forward reads. A NULL pointer means "the model's stored tensor": the
 * model's own binding (model_base) is all NULL; the forward converts a layer's NULL slots when
 * it runs that layer and frees them after (analysis/mweights.h). A fake-quant evaluation clones
 * a binding (model_weights_clone) and points some slots at its own float32 arrays
 * (model_weights_slot), so the same forward code runs on other weights. Every non-NULL pointer
 * in a binding refers to a row-major float32 array of the shape listed in model_tensor_at().
 * Code that needs a tensor's values reads them with model_tensor_f32 (binding data or stored).
 *
 * Thread-safety: a model is read-only after model_open and may be shared by threads (stored
 * tensors are read-only mappings; conversions write only caller buffers).
 * Lifetimes: everything returned by the queries is valid until model_close.
 */
#ifndef VL_MODEL_H
#define VL_MODEL_H

#include "../core/err.h"
#include "../io/hfcfg.h"

#include <stddef.h>
#include <stdint.h>

typedef struct model model;

/* A SwiGLU feed-forward: down(silu(x·gateᵀ) ⊙ x·upᵀ). NULLs when absent. */
typedef struct {
    const float *gate; /* [F × D] */
    const float *up;   /* [F × D] */
    const float *down; /* [D × F] */
} model_ffn;

typedef struct {
    const float *attn_norm;        /* input_layernorm [D] */
    const float *wq, *wk, *wv;     /* [Hq·Dh × D], [Hkv·Dh × D], [Hkv·Dh × D] */
    const float *bq, *bk, *bv;     /* biases of the above, NULL without qkv bias */
    const float *wo;               /* [D × Hq·Dh] */
    const float *bo;               /* [D], NULL unless llama/qwen3 with attention_bias */
    const float *q_norm, *k_norm;  /* per-head RMSNorm [Dh], NULL without qk norm */
    const float *mlp_norm;         /* post_attention_layernorm [D] */
    /* MoE layers (cfg.layer_is_moe[l]): */
    const float *router;           /* [E × D], NULL in dense layers */
    model_ffn *experts;            /* [E] routed experts (F wide), NULL in dense layers */
    model_ffn shared;              /* shared expert (Fs wide), NULLs if none */
    const float *shared_gate;      /* shared_expert_gate [1 × D], NULL if none */
    /* dense layers: */
    model_ffn mlp;                 /* dense MLP (I wide), NULLs in MoE layers */
    /* ---- deepseek_v3 (multi-head latent attention, analysis/fwd_mla.c); NULLs otherwise.
     * Rq, Rkv LoRA ranks; Dn, Dr, Dv = qk_nope, qk_rope, v head dims; H heads. wq is the plain
     * q_proj [H·(Dn+Dr) × D] when q_lora_rank is null; wo is o_proj [D × H·Dv]. ---- */
    const float *q_a, *q_a_norm, *q_b;    /* [Rq × D], [Rq], [H·(Dn+Dr) × Rq] */
    const float *kv_a, *kv_a_norm, *kv_b; /* kv_a_proj_with_mqa [(Rkv+Dr) × D], [Rkv],
                                             [H·(Dn+Dv) × Rkv] */
    const float *router_bias;             /* e_score_correction_bias [E]: selection only */
} model_layer;

typedef struct {
    const float *embed;      /* embed_tokens [V × D] */
    const float *final_norm; /* model.norm [D] */
    const float *lm_head;    /* [V × D]; NULL when tied (the head then uses embed) */
    int n_layers;
    model_layer *layers;     /* [L], owned by the binding */
    /* deepseek_v4 (analysis/model_dsv4.h): every tensor by its model_tensor index; the V4
     * forward reads its weights here and nowhere else. NULL for the other families. */
    const float **ext;
} model_weights;

/* Parameter classes (vbrlab info, bit allocation). */
typedef enum {
    MODEL_C_EMBED, MODEL_C_ATTN, MODEL_C_ROUTER, MODEL_C_EXPERT, MODEL_C_SHARED,
    MODEL_C_MLP, MODEL_C_NORM, MODEL_C_LM_HEAD,
    MODEL_C_HC,        /* deepseek_v4 hyper-connection mixers (hc_*_fn/base/scale) */
    MODEL_C_COMPRESS,  /* deepseek_v4 KV compressors and lightning indexers */
    MODEL_C_COUNT
} model_class;

/* One tensor the architecture uses, in file-independent canonical order (embed, layers in
 * order, final norm, lm_head). rows × cols (vectors: rows = 1). */
typedef struct {
    const char *name;  /* Hugging Face tensor name */
    model_class cls;
    int layer;         /* −1 for embed, final norm, lm_head */
    int expert;        /* routed expert index, −1 otherwise */
    int rows, cols;
    int64_t numel;
    int stored_dtype;  /* st_dtype of the file's tensor */
} model_tensor;

typedef struct {
    int64_t params[MODEL_C_COUNT]; /* parameters per class (tied lm_head counts 0) */
    int64_t params_total;
    int64_t stored_bytes;          /* bytes of the used tensors' data on disk */
    double bits_per_weight;        /* 8 · stored_bytes / params_total */
    int64_t file_bytes;            /* bytes of all tensor data in the safetensors files */
    int n_tensors;                 /* used tensors */
    int n_unused;                  /* tensors present in the files but not used (block
                                      scales of FP8 weights count as used) */
    int n_fp8;                     /* used tensors stored as FP8 e4m3 with block scales */
} model_info;

/* Open the model in directory DIR. On success *out owns everything; close with model_close.
 * Errors name the file and the tensor (missing tensor, wrong shape, NaN/Inf, bad config). */
int model_open(model **out, const char *dir, vl_err *err);

/* The tensor plan without weights: CONFIG_PATH (a config.json) parsed and checked as
 * model_open does, and the tensors the architecture needs listed (model_tensor_count/at, names
 * and shapes; stored_dtype 0). Nothing is read but the config; model_base is NULL and
 * model_dir is CONFIG_PATH. For writers of checkpoints (analysis/synth.h). */
int model_plan_open(model **out, const char *config_path, vl_err *err);

const hfc_config *model_config(const model *m);
const char *model_dir(const model *m);
/* The model's own binding: every slot NULL (the stored tensors). */
const model_weights *model_base(const model *m);
void model_get_info(const model *m, model_info *info);
const char *model_class_name(model_class c); /* "embeddings", "attention", ... */

size_t model_tensor_count(const model *m);
const model_tensor *model_tensor_at(const model *m, size_t i);  /* i < count */
/* Index of the tensor with Hugging Face name NAME, or −1. */
long model_tensor_find(const model *m, const char *name);

/* Stored tensor i (i < model_tensor_count) as float32 into dst (numel floats): the dtype
 * converted, FP8 block scales applied, its mapped pages then dropped from the resident set
 * (io/st.h st_tensor_load, st_set_drop). Errors name the file and tensor (VL_ERANGE: a value
 * not finite). */
int model_tensor_load(const model *m, size_t i, float *dst, vl_err *err);

/* model_tensor_load without the drop, for a caller that converts a group of tensors and then
 * drops them with one model_tensor_drop (each drop is a madvise, and each madvise a TLB
 * shootdown on every core the process runs on); a tensor above ST_LOAD_WHOLE_BYTES is still
 * dropped chunk by chunk as it is read. */
int model_tensor_load_kept(const model *m, size_t i, float *dst, vl_err *err);

/* Drop the mapped pages of stored tensors ix[0..n) (and their FP8 scales) from the resident
 * set: one madvise per file and per 64 tensors (io/st.h st_set_drop_many). */
void model_tensor_drop(const model *m, const size_t *ix, size_t n);

/* Tensor i of binding W as float32: *data is W's slot when set (*owned NULL), else a new
 * conversion of the stored tensor (*data = *owned; the caller frees *owned with vl_free). */
int model_tensor_f32(const model *m, const model_weights *w, size_t i, const float **data,
                     float **owned, vl_err *err);

/* Rows [row0, row0 + n) of tensor i of binding W as float32 into dst (n × cols floats): the
 * binding's data when its slot is set, else the stored rows converted (FP8: row0 and n
 * multiples of the block rows, or the range ending at the last row; VL_EARG otherwise), the
 * file's mapped pages then dropped from the resident set. For the LM head in vocabulary tiles
 * (analysis/mweights.h mw_head_logits): no whole-tensor float32 copy. */
int model_tensor_rows(const model *m, const model_weights *w, size_t i, int64_t row0, int64_t n,
                      float *dst, vl_err *err);

/* Index of the LM head's matrix: the lm_head tensor, or the embedding when tied. */
size_t model_head_index(const model *m);

/* Embedding rows ids[0..n) (each in [0, vocab), checked by the caller) from binding W (its
 * embedding slot, or the stored tensor row by row) into out + r·stride, hidden floats each. */
int model_embed_rows(const model *m, const model_weights *w, const int32_t *ids, int n,
                     float *out, size_t stride, vl_err *err);

/* A copy of SRC (same pointers, new layer/expert arrays) the caller may modify; free with
 * model_weights_free. The copy borrows the arrays SRC points to (their owner must outlive it). */
int model_weights_clone(model_weights **out, const model *m, const model_weights *src,
                        vl_err *err);
/* The pointer in binding W that holds tensor i (i < model_tensor_count): assign through it to
 * bind other data of the same shape. A tied model has no lm_head tensor: its head reads the
 * embedding slot, so replacing the embedding replaces both (as llama.cpp's tied output does). */
const float **model_weights_slot(const model *m, model_weights *w, size_t i);
void model_weights_free(model_weights *w); /* NULL is a no-op */

void model_close(model *m); /* NULL is a no-op */

#endif
