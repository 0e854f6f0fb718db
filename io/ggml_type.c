/* io/ggml_type.c — the ggml type table (io/ggml_type.h). */
#include "ggml_type.h"

#include <string.h>

/* ggml_id, block and bytes per block from ggml-common.h's static_asserts (sizeof block_*).
 * needs_imatrix: the types llama-quantize refuses to make without an importance matrix —
 * iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s and iq3_xxs (llama.cpp src/llama-quant.cpp,
 * tensor_requires_imatrix; it exempts token_embd and output, and asks for one for q2_K only
 * inside a Q2_K_S file, an ftype vbrlab never emits). */
static const ggf_info INFO[GGF_COUNT] = {
    [GGF_Q4_0] = {"q4_0", 2, 32, 18, 0},           [GGF_Q4_1] = {"q4_1", 3, 32, 20, 0},
    [GGF_Q5_0] = {"q5_0", 6, 32, 22, 0},           [GGF_Q5_1] = {"q5_1", 7, 32, 24, 0},
    [GGF_Q8_0] = {"q8_0", 8, 32, 34, 0},           [GGF_Q2_K] = {"q2_K", 10, 256, 84, 0},
    [GGF_Q3_K] = {"q3_K", 11, 256, 110, 0},        [GGF_Q4_K] = {"q4_K", 12, 256, 144, 0},
    [GGF_Q5_K] = {"q5_K", 13, 256, 176, 0},        [GGF_Q6_K] = {"q6_K", 14, 256, 210, 0},
    [GGF_IQ2_XXS] = {"iq2_xxs", 16, 256, 66, 1},   [GGF_IQ2_XS] = {"iq2_xs", 17, 256, 74, 1},
    [GGF_IQ3_XXS] = {"iq3_xxs", 18, 256, 98, 1},   [GGF_IQ1_S] = {"iq1_s", 19, 256, 50, 1},
    [GGF_IQ4_NL] = {"iq4_nl", 20, 32, 18, 0},      [GGF_IQ3_S] = {"iq3_s", 21, 256, 110, 0},
    [GGF_IQ2_S] = {"iq2_s", 22, 256, 82, 1},       [GGF_IQ4_XS] = {"iq4_xs", 23, 256, 136, 0},
    [GGF_IQ1_M] = {"iq1_m", 29, 256, 56, 1},       [GGF_F32] = {"f32", 0, 1, 4, 0},
    [GGF_F16] = {"f16", 1, 1, 2, 0},               [GGF_BF16] = {"bf16", 30, 1, 2, 0},
};

const ggf_info *ggf_get(ggf_type t) { return &INFO[t]; }

int ggf_from_name(const char *name)
{
    for (int t = 0; t < GGF_COUNT; t++)
        if (!strcmp(INFO[t].name, name)) return t;
    return -1;
}

int ggf_from_id(int ggml_id)
{
    for (int t = 0; t < GGF_COUNT; t++)
        if (INFO[t].ggml_id == ggml_id) return t;
    return -1;
}

int64_t ggf_row_bytes(ggf_type t, int64_t n)
{
    if (n <= 0 || n % INFO[t].block || n / INFO[t].block > INT64_MAX / INFO[t].bytes) return -1;
    return n / INFO[t].block * INFO[t].bytes;
}

double ggf_bpw(ggf_type t) { return 8.0 * INFO[t].bytes / INFO[t].block; }

