/* alloc/ggml_fmt.h — llama.cpp's (ggml's) block quantization formats: layouts, bits per weight,
 * bit-exact decoding and importance-weighted quantizers.
 *
 * A ggml tensor row of n weights is stored as n / block consecutive blocks of fixed byte size;
 * a block holds fp16 scale(s) and packed integers or codebook indices. The layouts and the
 * decode arithmetic follow ggml/src/ggml-common.h (struct block_*) and the dequantize_row_*
 * reference functions of ggml-quants.c in ggml-org/llama.cpp, written here from those
 * definitions: decoding reproduces llama.cpp's floats bit for bit (same float operations in
 * the same order, no FMA contraction). The codebook grids live in ggml_grid*.c.
 *
 * Bits per weight are counted as llama.cpp counts them: 8 · block_bytes / block_size (q4_K is
 * 4.5, iq2_xxs 2.0625), i.e. every stored byte including the fp16 super-block scales.
 *
 * Quantizers minimise the importance-weighted squared error Σ_j imp[j]·(x_j − x̂_j)² of one row
 * (imp = the per-input-column mean x² of llama.cpp's imatrix; NULL = all ones), with searches
 * over scales written for this module (not llama.cpp's heuristics); their output is a valid
 * ggml row that llama.cpp decodes to the same floats as ggf_decode_row.
 *
 * Everything is pure and thread-safe (the grids are const data).
 */
#ifndef VL_GGML_FMT_H
#define VL_GGML_FMT_H

#include "../core/err.h"
#include "../io/ggml_type.h"
#include "qcache.h"

#include <stddef.h>
#include <stdint.h>

/* Decode one row of n weights from nbytes bytes at src into dst[0..n).
 * VL_ESHAPE when n is not a multiple of the block, VL_ETRUNC when nbytes < the row's bytes,
 * VL_EFORMAT when nbytes exceeds it or a stored scale is an fp16 Inf or NaN (a corrupt block;
 * err names the block). dst is unspecified on error. */
int ggf_decode_row(ggf_type t, const uint8_t *src, size_t nbytes, float *dst, int64_t n,
                   vl_err *err);

/* Quantize one row x[0..n) with importance imp[0..n) (NULL = uniform, entries ≥ 0 and finite)
 * into dst, which must hold ggf_row_bytes(t, n) bytes. VL_ESHAPE for a bad n, VL_ERANGE for a
 * non-finite weight or importance, VL_ENOMEM. */
int ggf_quantize_row(ggf_type t, const float *x, const float *imp, int64_t n, uint8_t *dst,
                     vl_err *err);

/* Fake-quantize W [rows × cols] (row-major, rows = output channels) to type t and back into
 * out, each row quantized with importance imp[cols] (float64, NULL = uniform; only its ratios
 * matter: it reaches the quantizer as float imp[j] / max imp, and one that is all zero counts as
 * uniform). Rows are quantized on kern_parallel_for's threads (the bits do not depend on their
 * number). cache (NULL = none, alloc/qcache.h): the packed rows are looked up there first and
 * stored after quantizing. VL_ESHAPE when cols is not a multiple of t's block (llama.cpp would
 * substitute another type there; vbrlab does not), others as ggf_quantize_row. name labels
 * errors. */
int ggf_fake_quant(float *out, const float *w, int rows, int cols, ggf_type t, const double *imp,
                   qcache *cache, const char *name, vl_err *err);

/* fp16 / bf16 helpers (IEEE binary16, round to nearest even). */
float ggf_f16_to_f32(uint16_t h);
uint16_t ggf_f32_to_f16(float f);

#endif
