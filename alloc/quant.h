/* alloc/quant.h — the group quantizer shared by every method, and RTN fake-quantization.
 *
 * Fake-quantization turns a float32 weight W [rows × cols] (HF (out, in) layout; groups run
 * along a row, i.e. along the input dimension) into a dequantized float32 copy: exactly the
 * values a kernel storing the integers and the fp16 group parameters would produce.
 *
 * Group grid (see alloc/qfmt.h for the stored layout), b bits, maxq = 2^b − 1:
 *   asymmetric  lo = r·min(x, 0), hi = r·max(x, 0) (0 is always in range, as in GPTQ's
 *               reference quantizer); s = fp16((hi − lo) / maxq); z = clamp(round(−lo / s),
 *               0, maxq); q = clamp(round(x / s) + z, 0, maxq); x̂ = s·(q − z).
 *   symmetric   m = the entry of largest magnitude, with its sign; d = fp16(−r·m / 2^(b−1))
 *               (signed); q = clamp(round(x / d), −2^(b−1), 2^(b−1) − 1); x̂ = d·q. The extreme
 *               entry lands on the extra negative level, so all 2^b levels are usable (the
 *               llama.cpp Q4_0 convention); for b = 1 the levels are {0, m}.
 *   round(v) = floor(v + 1/2). The scale is rounded to fp16 (round to nearest even) before z
 *   and q are computed, so x̂ = (float)s16 · (q − z) is what an fp16-scale kernel computes.
 *   A scale below the smallest fp16 subnormal becomes ±2^−24, one above 65504 becomes ±65504.
 *   A group of zeros gets s = 1, z = 0 (x̂ = 0).
 *
 * Clip search (RTN): for each group, r runs over clip_steps ratios evenly spaced from 1 down to
 * clip_min (default 20 steps, 1.0 … 0.5; r = 1 is plain min/max and always a candidate), and the
 * r minimizing Σ_j imp_j·(x_j − x̂_j)² wins (first one on ties). imp is the per-input-channel
 * E[x²] from the statistics (llama.cpp's imatrix idea), NULL = uniform. The search can therefore
 * never be worse than plain min/max in the weighted metric.
 *
 * All functions are pure and reentrant.
 */
#ifndef VL_QUANT_H
#define VL_QUANT_H

#include "../core/err.h"
#include "qfmt.h"

typedef struct {
    int clip_steps;  /* ratios tried per group; 1 = plain min/max only (default 20) */
    double clip_min; /* smallest ratio, in (0, 1] (default 0.5) */
} quant_params;

quant_params quant_defaults(void);

/* One group's stored parameters. */
typedef struct {
    float scale; /* fp16-representable; signed for symmetric formats, > 0 for asymmetric */
    int zero;    /* asymmetric: integer zero point in [0, 2^b − 1]; symmetric: 0 */
} quant_grp;

/* x rounded to the nearest fp16 value (round to nearest even; overflow gives ±Inf, as a cast
 * would). Exposed so that tests can build fp16-representable grids. */
float quant_f16_round(float x);

/* Parameters of one group at clip ratio r (no search): the grid formulas above. */
quant_grp quant_grp_at(const float *x, int n, int bits, int sym, double r);

/* Search the clip ratio (params p) for the group x[0..n) with importance imp[0..n) (NULL =
 * uniform) and return the best parameters. */
quant_grp quant_grp_fit(const float *x, const double *imp, int n, int bits, int sym,
                        const quant_params *p);

/* Dequantized value of x under group g: s·(q − z) or d·q. */
float quant_grp_fake(const quant_grp *g, float x, int bits, int sym);

/* RTN fake-quantization of W [rows × cols] into out [rows × cols] (may not alias w) in the
 * group layout of f (f->method and f->rot are not looked at: rotation is alloc/fq.h's job).
 * imp: cols importances (>= 0, finite) or NULL; p NULL = quant_defaults(). name labels errors
 * (the tensor name). VL_ERANGE for NaN/Inf weights or bad importances, VL_ECONFIG for a bad
 * format, VL_EARG for bad sizes. */
int quant_rtn(float *out, const float *w, int rows, int cols, const qfmt *f, const double *imp,
              const quant_params *p, const char *name, vl_err *err);

/* Shared input checks (used by every quantizer): format valid, sizes >= 1, W finite,
 * importances finite and >= 0 (imp may be NULL). */
int quant_check_input(const float *w, int rows, int cols, const qfmt *f, const double *imp,
                      const char *name, vl_err *err);

#endif
