/* alloc/mbits.h — whole-model bit counts: the quantized matrices and everything kept beside
 * them (embeddings, LM head, routers, norms, biases, gates), so "2.5 bpw" can be stated both
 * over the quantized matrices (the body) and over the whole model.
 *
 * A tensor the allocation leaves unquantized is counted at its kept precision, by one of two
 * rules:
 *   MB_STORED  the dtype the checkpoint stores it in (BF16: 16 bits, F32: 32, F8_E4M3: 8, block
 *              scales not counted) — what vbrlab's fake-quantized model keeps;
 *   MB_GGUF    what llama.cpp's file holds for it (alloc/gguf_recipe.h): 1-row tensors (norms,
 *              biases, shared_expert_gate) F32 = 32 bits, everything else left unquantized
 *              (router ffn_gate_inp, a matrix no item covers) BF16 = 16 bits, for an input GGUF
 *              converted with --outtype bf16.
 * A quantized tensor counts its format's exact bits (qfmt_bits: scales, zeros, ggml blocks).
 * Tied embeddings are one tensor in model_tensor_at's list (a tied model has no lm_head
 * tensor), so they are counted once. Metadata, the tokenizer and alignment padding of a file
 * are not counted (llama.cpp's "BPW" counts tensor data only). Pure.
 */
#ifndef VL_MBITS_H
#define VL_MBITS_H

#include "../analysis/model.h"
#include "qfmt.h"

#include <stdint.h>

typedef enum { MB_STORED, MB_GGUF } mb_rule;

/* Bits per weight of model tensor T kept unquantized under RULE. */
double mb_kept_bpw(const model_tensor *t, mb_rule rule);

typedef struct {
    int64_t body_weights, model_weights; /* quantized weights; every weight of the model */
    double body_bits, model_bits;         /* their bits (model: quantized + kept) */
    double bpw_body, bpw_model;           /* bits / weights (bpw_body 0 when nothing is
                                             quantized) */
} mb_count;

/* Count model M where fmt(ctx, i) gives tensor i's format (NULL: kept) under RULE. */
mb_count mb_count_model(const model *m, const qfmt *(*fmt)(const void *ctx, size_t i),
                        const void *ctx, mb_rule rule);

/* Σ over model tensors with skip[i] == 0 of numel·mb_kept_bpw (the bits kept beside the
 * tensors an allocation covers; skip may be NULL). */
double mb_kept_bits(const model *m, const unsigned char *skip, mb_rule rule);

const char *mb_rule_name(mb_rule r); /* "stored" | "gguf" */

#endif
