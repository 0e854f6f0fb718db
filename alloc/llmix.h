/* alloc/llmix.h — llama.cpp's own IQ2 "ftype mixes" (llama-quantize MODEL IQ2_XS) as an
 * allocation: every GGUF tensor llama-quantize would quantize gets the ggml type llama.cpp's
 * per-tensor rules give it, so such a file can be evaluated like a uniform row.
 *
 * The rules (written from the behaviour of llama.cpp src/llama-quant.cpp,
 * llama_tensor_get_type_impl, for the ftypes IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M):
 *   default type        IQ2_XXS iq2_xxs, IQ2_XS iq2_xs, IQ2_S iq2_xs, IQ2_M iq2_s;
 *   output.weight, and token_embd when the model has no output.weight (tied): q5_K, or q8_0
 *                       when the row length is not a multiple of the default type's block;
 *   token_embd untied   q2_K (IQ2_XXS, IQ2_XS), iq3_s (IQ2_S, IQ2_M);
 *   attn_v, attn_qkv, attn_kv_b   q4_K when n_gqa ≥ 4 or n_expert ≥ 4, else q2_K / iq3_s
 *                       (IQ2_XXS, IQ2_XS / IQ2_S, IQ2_M);
 *   attn_k              q4_K when n_expert == 8, else the default;
 *   ffn_down*           (every tensor whose name holds "ffn_down": ffn_down, ffn_down_exps,
 *                       ffn_down_shexp) the i-th of them in llama-quantize's order gets
 *                       q2_K / iq3_s when i < n_ffn_down / 8 (integer division), else the
 *                       default. NOTE: llama.cpp sets n_ffn_down to the model's LAYER
 *                       count (n_layer), not to the number of ffn_down tensors, while i
 *                       counts tensors — so with a shared expert (2 ffn_down tensors a layer)
 *                       the first n_layer/8 tensors are the exps and shexp of the first
 *                       n_layer/16 layers; a model of fewer than 8 layers (the embedded one:
 *                       6) gets no bump;
 *   attn_output         q5_K when n_expert == 8, else iq3_s for IQ2_S / IQ2_M, the default for
 *                       IQ2_XXS / IQ2_XS;
 *   everything else quantized (attn_q, ffn_gate*, ffn_up*, MLA projections): the default.
 * Norms, routers and biases are no items and stay as they are. n_expert is the config's routed
 * expert count, n_gqa = n_heads / n_kv_heads.
 * The row length is the Hugging Face matrix's column count (as alloc/gguf_recipe.h counts it;
 * for DeepSeek's kv_b_proj, split into attn_k_b + attn_v_b by the converter, both GGUF tensors
 * are given kv_b_proj's and must get one type).
 * Shape fallback: when a tensor's row length (ne[0], the matrix's columns) is not a multiple of
 * the type's block (256 for k-quants and iq types), iq1_*, iq2_*, iq3_*, iq4_xs → iq4_nl,
 * q2_K/q3_K → q4_0, q4_K → q5_0, q5_K → q5_1, q6_K → q8_0; not a multiple of 32 either: an
 * error (llama.cpp writes F16 there; not modelled).
 *
 * Tensor order (the ffn_down counter): llama-quantize walks the model loader's weights map,
 * sorted by layer number and then by name (llama_model_loader's weight_name_comparer), so
 * within a layer ffn_down < ffn_down_exps < ffn_down_shexp, whatever order the GGUF file has.
 *
 * Pure, thread-safe.
 */
#ifndef VL_LLMIX_H
#define VL_LLMIX_H

#include "../analysis/model.h"
#include "../core/err.h"
#include "qbind.h"

/* The model facts the rules read. */
typedef struct {
    int n_expert;     /* routed experts (0: dense) */
    int n_gqa;        /* n_heads / n_kv_heads */
    int tied;         /* 1: no output.weight (token_embd is also the output) */
    int n_ffn_down;   /* llama.cpp's n_ffn_down: the layer count (see above) */
} llmix_model;

/* 1 when ftype is one of the supported names (case-sensitive): IQ2_XXS IQ2_XS IQ2_S IQ2_M. */
int llmix_known(const char *ftype);

/* The supported names, comma-separated ("IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M"), for messages. */
const char *llmix_known_list(void);

/* The ggf_type (io/ggml_type.h) of GGUF tensor GGUF (e.g. "blk.3.attn_v.weight") with row
 * length COLS under FTYPE; I_FFN_DOWN is its index among the ffn_down tensors in
 * llama-quantize's order (ignored for the others). VL_ECONFIG for an unknown ftype,
 * VL_ESHAPE when no type of the fallback chain fits COLS. */
int llmix_type(const char *ftype, const char *gguf, int cols, int i_ffn_down,
               const llmix_model *mm, int *type, vl_err *err);

/* Append to A every tensor of M llama-quantize FTYPE would quantize (the decoder matrices of
 * qb_alloc_uniform plus token_embd, and output when untied), each as one item in its type's
 * canonical ggml format. VL_ECONFIG for an unknown ftype or a model whose GGUF names are
 * unknown (io/gguf_names.h), VL_ESHAPE as llmix_type. */
int llmix_alloc(qb_alloc *a, const model *m, const char *ftype, vl_err *err);

#endif
