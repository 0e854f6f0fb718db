/* alloc/ggml_int.h — private cross-file helpers of the ggml format module (ggml_*.c):
 * the codebook grids, little-endian field access and the per-type block decoders/quantizers.
 */
#ifndef VL_GGML_INT_H
#define VL_GGML_INT_H

#include "ggml_fmt.h"

#include <stdint.h>
#include <string.h>

#define GGF_QK_K 256

/* Grids reproduced from llama.cpp's ggml-common.h (see ggml_grid.c, ggml_grid_iq1.c). */
extern const uint64_t ggf_grid_iq2xxs[256];
extern const uint64_t ggf_grid_iq2xs[512];
extern const uint64_t ggf_grid_iq2s[1024];
extern const uint32_t ggf_grid_iq3xxs[256];
extern const uint32_t ggf_grid_iq3s[512];
extern const uint64_t ggf_grid_iq1s[2048];

/* iq4_nl / iq4_xs non-linear levels (ggml-common.h kvalues_iq4nl). */
extern const int8_t ggf_kvalues_iq4nl[16];

/* Shared delta of iq1_s / iq1_m (ggml-common.h IQ1S_DELTA, IQ1M_DELTA). */
#define GGF_IQ1_DELTA 0.125f

static inline uint16_t ggf_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ggf_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void ggf_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void ggf_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* Byte j (0..7) of a grid entry: the grids store element j in byte j (little-endian). */
static inline int ggf_gbyte64(uint64_t g, int j) { return (int)((g >> (8 * j)) & 0xff); }
static inline int ggf_gbyte32(uint32_t g, int j) { return (int)((g >> (8 * j)) & 0xff); }

/* Sign byte of a 7-bit iq2/iq3 sign index: bit 7 makes the count of set bits even
 * (llama.cpp's ksigns_iq2xs table, computed rather than stored). */
static inline uint8_t ggf_ksigns(int idx7)
{
    int pc = __builtin_popcount((unsigned)idx7 & 127u);
    return (uint8_t)((idx7 & 127) | ((pc & 1) << 7));
}

/* Block decoder: one block at b into y[0..block). */
typedef void (*ggf_dec_fn)(const uint8_t *b, float *y);
/* Block quantizer: x[0..block), importance w[0..block) (> 0 somewhere) into b. Returns 0 or
 * VL_ENOMEM. */
typedef int (*ggf_quant_fn)(const float *x, const float *w, uint8_t *b);

/* Offsets of the fp16 scales in a block of type t, for the corrupt-block check: count in *n
 * (0..2), offsets in off[]. iq1_m's scale is split over four fields and is checked separately. */
void ggf_scale_offsets(ggf_type t, int *n, int off[2]);

/* iq1_m's fp16 super-scale bits gathered from the top nibbles of its 4 scale words. */
uint16_t ggf_iq1m_scale_bits(const uint8_t *b);

/* Quantizers (ggml_quant.c: simple and k-quants; ggml_quant_iq.c: iq4; ggml_quant_grid.c:
 * codebook types). */
int ggf_q_q4_0(const float *x, const float *w, uint8_t *b);
int ggf_q_q4_1(const float *x, const float *w, uint8_t *b);
int ggf_q_q5_0(const float *x, const float *w, uint8_t *b);
int ggf_q_q5_1(const float *x, const float *w, uint8_t *b);
int ggf_q_q8_0(const float *x, const float *w, uint8_t *b);
int ggf_q_q2_K(const float *x, const float *w, uint8_t *b);
int ggf_q_q3_K(const float *x, const float *w, uint8_t *b);
int ggf_q_q4_K(const float *x, const float *w, uint8_t *b);
int ggf_q_q5_K(const float *x, const float *w, uint8_t *b);
int ggf_q_q6_K(const float *x, const float *w, uint8_t *b);
int ggf_q_iq4_nl(const float *x, const float *w, uint8_t *b);
int ggf_q_iq4_xs(const float *x, const float *w, uint8_t *b);
int ggf_q_iq2_xxs(const float *x, const float *w, uint8_t *b);
int ggf_q_iq2_xs(const float *x, const float *w, uint8_t *b);
int ggf_q_iq2_s(const float *x, const float *w, uint8_t *b);
int ggf_q_iq3_xxs(const float *x, const float *w, uint8_t *b);
int ggf_q_iq3_s(const float *x, const float *w, uint8_t *b);
int ggf_q_iq1_s(const float *x, const float *w, uint8_t *b);
int ggf_q_iq1_m(const float *x, const float *w, uint8_t *b);

/* Decode one block (the decoders of ggml_fmt.c / ggml_dec.c). */
void ggf_decode_block(ggf_type t, const uint8_t *b, float *y);

#endif
