/* io/gguf_names.h — Hugging Face tensor names → llama.cpp GGUF tensor names.
 *
 * From llama.cpp's conversion (convert_hf_to_gguf.py and gguf-py/gguf/tensor_mapping.py /
 * constants.py): model.embed_tokens → token_embd, lm_head → output, model.norm → output_norm,
 * model.layers.N.X → blk.N.Y with Y e.g. attn_q/attn_k/attn_v/attn_output (+ .bias),
 * attn_q_norm/attn_k_norm (qwen3), attn_norm, ffn_norm, ffn_gate/ffn_up/ffn_down (dense MLP),
 * ffn_gate_inp (router), ffn_{gate,up,down}_exps (routed experts, all experts of a layer stacked
 * into one 3-D tensor), ffn_{gate,up,down}_shexp and ffn_gate_inp_shexp (shared expert), and
 * the DeepSeek MLA names attn_q_a, attn_q_a_norm, attn_q_b, attn_kv_a_mqa, attn_kv_a_norm, and
 * attn_k_b + attn_v_b (the converter splits kv_b_proj in two), exp_probs_b.bias.
 *
 * Supported architectures (config.json model_type): llama, qwen2, qwen2_moe, qwen3, qwen3_moe,
 * mixtral, deepseek_v2, deepseek_v3. Pure, thread-safe.
 */
#ifndef VL_GGUF_NAMES_H
#define VL_GGUF_NAMES_H

#include "../core/err.h"

#define GGN_NAME_MAX 96

typedef struct {
    int n;                      /* GGUF tensors fed by this HF tensor: 1, or 2 for kv_b_proj */
    char name[2][GGN_NAME_MAX]; /* GGUF names */
    int expert;                 /* routed expert index for a slice of a merged _exps tensor, else -1 */
    int layer;                  /* N of blk.N, or -1 for token_embd/output/output_norm */
} ggn_target;

/* Map hf for architecture arch. VL_ECONFIG for an unknown arch, VL_ENOTFOUND when the name has no
 * GGUF counterpart in that architecture (the message names both). */
int ggn_map(const char *arch, const char *hf, ggn_target *out, vl_err *err);

/* 1 if arch is supported. */
int ggn_arch_supported(const char *arch);

#endif
