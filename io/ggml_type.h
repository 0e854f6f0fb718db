/* io/ggml_type.h — llama.cpp's (ggml's) tensor types as stored in GGUF files: id, name, block
 * size and bytes per block (ggml/src/ggml-common.h, the static_asserts on sizeof block_*;
 * include/ggml.h enum ggml_type). The decoders and quantizers are in alloc/ggml_fmt.h; this is
 * what a GGUF reader needs to size a tensor.
 *
 * Bits per weight are counted as llama.cpp counts them: 8 · bytes / block (q4_K 4.5, iq2_xxs
 * 2.0625), every stored byte including the fp16 super-block scales. Pure, thread-safe.
 */
#ifndef VL_GGML_TYPE_H
#define VL_GGML_TYPE_H

#include <stdint.h>

/* The block formats, in llama.cpp's own order of ggml_type ids (ggf_ggml_id gives the id). */
typedef enum {
    GGF_Q4_0, GGF_Q4_1, GGF_Q5_0, GGF_Q5_1, GGF_Q8_0,
    GGF_Q2_K, GGF_Q3_K, GGF_Q4_K, GGF_Q5_K, GGF_Q6_K,
    GGF_IQ2_XXS, GGF_IQ2_XS, GGF_IQ3_XXS, GGF_IQ1_S, GGF_IQ4_NL,
    GGF_IQ3_S, GGF_IQ2_S, GGF_IQ4_XS, GGF_IQ1_M,
    GGF_F32, GGF_F16, GGF_BF16,
    GGF_COUNT
} ggf_type;

typedef struct {
    const char *name;  /* llama.cpp's type name: "q4_K", "iq2_xxs", "f16" */
    int ggml_id;       /* enum ggml_type value written in GGUF tensor infos */
    int block;         /* weights per block: 32, 256, or 1 for f32/f16/bf16 */
    int bytes;         /* bytes per block */
    int needs_imatrix; /* llama.cpp refuses to make it without an importance matrix */
} ggf_info;

/* Facts of a type (static table, never NULL for t < GGF_COUNT). */
const ggf_info *ggf_get(ggf_type t);

/* Type by llama.cpp name (case-sensitive: "q4_K", "iq2_xs"), or -1. */
int ggf_from_name(const char *name);

/* Type by ggml id, or -1 when not one of these. */
int ggf_from_id(int ggml_id);

/* Bytes of a row of n weights; -1 when n is not a positive multiple of the block size or the
 * byte count does not fit in int64. */
int64_t ggf_row_bytes(ggf_type t, int64_t n);

/* 8 · bytes / block. */
double ggf_bpw(ggf_type t);

#endif
