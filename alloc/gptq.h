/* alloc/gptq.h — GPTQ fake-quantization (Frantar et al. 2022, arXiv:2210.17323).
 *
 * Quantizes W [rows × cols] column by column (input dimension), each column's rounding error
 * spread over the not-yet-quantized columns through the inverse Hessian proxy H⁻¹, H = XᵀX of
 * the tensor's calibration inputs (float64, cols × cols, from the statistics). Following the
 * paper and its reference implementation:
 *   - dead inputs (H_jj = 0) get H_jj = 1 and a zero weight column;
 *   - optional act-order: columns are processed by descending H_jj and unpermuted at the end;
 *     groups are then formed on the fly in the permuted order (the reference's static_groups =
 *     False), so a kernel needs the permutation: gptq_perm_bits() more bits per tensor, not
 *     counted by qfmt_bits();
 *   - damping λ = percdamp · mean(diag H) added to the diagonal (default 0.01);
 *   - U = upper Cholesky factor of H⁻¹ (LAPACKE dpotrf, dpotri, dpotrf), H⁻¹ = UᵀU;
 *   - lazy batch updates in blocks of `block` columns (default 128);
 *   - a group's parameters are fitted when the quantizer reaches its first column, from the
 *     current (already error-updated) weights of the whole group. The reference reads stale
 *     weights there when a group starts inside a block (group 64, block 128); here the
 *     up-to-date values are used. A per-row format fits its one group from the row at start.
 *     (A group crossing a block boundary, only when block is not a multiple of the group,
 *     misses the current block's pending updates for its columns past the boundary.)
 * The group grid is alloc/quant.h's, and so is the clip search, run when a group starts with
 * importance diag H (default 20 ratios 1.0 … 0.5; clip_steps = 1 gives the reference's plain
 * min/max). The search is on by default because at 2 bits it matters more than the error
 * feedback: on the embedded model's tensors (synthetic H), b2 g64 asym output error was 0.044
 * with the search and 0.106 without, against 0.096 for RTN with the same search.
 * If the Cholesky fails (H + λI not positive definite numerically), percdamp is multiplied by
 * 10 and the factorization retried, up to max_retries times; then VL_EEXTERN naming the tensor.
 *
 * Working precision is float64; the result is float32 on the format's fp16-scale grid.
 * Reentrant; threads only inside the BLAS/LAPACK calls.
 */
#ifndef VL_GPTQ_H
#define VL_GPTQ_H

#include "../core/err.h"
#include "qfmt.h"
#include "quant.h"

#include <stdint.h>

typedef struct {
    double percdamp;   /* damping relative to mean(diag H), > 0 (default 0.01) */
    int block;         /* lazy-update block size, >= 1 (default 128) */
    int act_order;     /* 1: process columns by descending diag H (default 0) */
    int max_retries;   /* damping ×10 retries on a failed Cholesky (default 3) */
    quant_params clip; /* group fit inside GPTQ (default quant_defaults(): 20 ratios) */
} gptq_params;

gptq_params gptq_defaults(void);

/* What happened (optional output). */
typedef struct {
    double percdamp; /* relative damping finally used */
    double lambda;   /* absolute damping added to the diagonal */
    int retries;     /* failed factorizations before success */
    int dead;        /* inputs with H_jj = 0 */
} gptq_info;

/* GPTQ of W [rows × cols] with Hessian proxy h [cols × cols] (symmetric, float64; only read)
 * into out [rows × cols] (must not alias w). f's group layout, bits and symmetry are used
 * (f->method and f->rot are not looked at: rotation is alloc/fq.h's job). p NULL =
 * gptq_defaults(); info may be NULL; name labels errors. VL_ERANGE for NaN/Inf in W or H or a
 * negative diagonal, VL_EEXTERN if H stays indefinite, VL_ENOMEM, VL_EARG for bad params. */
int gptq_quantize(float *out, const float *w, int rows, int cols, const qfmt *f, const double *h,
                  const gptq_params *p, gptq_info *info, const char *name, vl_err *err);

/* Bits to store an act-order column permutation of `cols` inputs: cols · ceil(log2 cols). */
int64_t gptq_perm_bits(int64_t cols);

#endif
