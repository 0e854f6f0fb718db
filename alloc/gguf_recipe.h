/* alloc/gguf_recipe.h — an allocation of llama.cpp types as a llama-quantize recipe.
 *
 * The plan lists every tensor of the GGUF file llama.cpp's converter makes from the model
 * (io/gguf_names.h: the routed experts of a projection in a layer are one tensor) with the type
 * it gets and its bytes, counted as llama.cpp counts them:
 *   - 1-D tensors and 1-row matrices (norms, biases, shared_expert_gate) stay F32 (the converter
 *     writes norms F32; llama-quantize leaves 1-D tensors alone): 4 bytes per weight;
 *   - the router ffn_gate_inp stays in the input GGUF's type (llama-quantize never quantizes
 *     it): BF16, 2 bytes, for the input made with convert_hf_to_gguf.py --outtype bf16;
 *   - token_embd and output get their type from the assignment when it lists them (an
 *     allocation at granularity gguf, where they are items), else the embedding / output type
 *     given, else BF16; a given type that differs from the assignment's is an error;
 *   - every other matrix gets its allocated type (a canonical ggml-TYPE format in the
 *     assignment; the experts of one GGUF tensor must share it), or BF16 when the allocation
 *     leaves it at full precision.
 * bpw of the file = 8·Σ bytes / Σ weights (what llama.cpp prints as "BPW"); of the body = the
 * same over the blk.* tensors.
 *
 * Pure apart from reading the model's config.json and safetensors headers.
 */
#ifndef VL_GGUF_RECIPE_H
#define VL_GGUF_RECIPE_H

#include "../core/err.h"
#include "../io/gguf_names.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
    char name[GGN_NAME_MAX];
    int type;          /* ggf_type */
    int64_t n;         /* weights */
    int64_t bytes;
    int quantized;     /* 1: llama-quantize writes it in `type` (listed in tensor-types.txt) */
    int body;          /* 1: a blk.* tensor */
} ggr_tensor;

typedef struct {
    int n;
    ggr_tensor *v;     /* in first-appearance (model) order */
    char arch[32];
    int64_t params, bytes, body_params, body_bytes;
    double bpw_file, bpw_body;
    int base;          /* llama-quantize's type argument: the first of q4_0, q4_1, q5_0, q5_1,
                          q8_0, iq4_nl that no tensor uses (gguf_recipe.c says why) */
} ggr_plan;

/* Build the plan for the model in model_dir from an assignment ("HF\tformat\n" lines, as
 * /alloc/NAME's attribute). embd_type / output_type: ggf_type for token_embd / output, −1 for
 * none given (the assignment's, else BF16). Errors:
 * a non-ggml format (VL_ECONFIG), experts of one tensor with different types (VL_ECONFIG), a
 * tensor the model lacks (VL_ENOTFOUND), a type whose block does not divide the tensor's rows,
 * an allocation that uses all six block-32 types (no base type left, VL_ECONFIG). */
int ggr_plan_build(ggr_plan *out, const char *model_dir, const char *assignment, int embd_type,
                   int output_type, vl_err *err);

/* llama-quantize --tensor-type-file lines: "^blk\.3\.ffn_down_exps\.weight$=iq2_xs" for every
 * quantized tensor except token_embd and output (those go on the command line). Only
 * pattern=type lines: llama.cpp's reader has no comment syntax. */
void ggr_write_types(const ggr_plan *p, FILE *f);

/* llama-quantize's ftype argument whose default type is ggf (e.g. "IQ2_XS", "Q4_K_S", "IQ2_M"
 * for iq2_s), and the default type of an ftype name (−1 when unknown). */
const char *ggr_ftype_name(int ggf);
int ggr_ftype_default(const char *ftype);

/* Types llama-quantize refuses without an imatrix entry on a body tensor (io/ggml_type.h
 * needs_imatrix: iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs). */
int ggr_needs_imatrix(int ggf);

void ggr_plan_free(ggr_plan *p);

#endif
