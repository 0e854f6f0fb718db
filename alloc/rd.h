/* alloc/rd.h — rate–distortion of one tensor under one format.
 *
 * Rate: the exact stored bits of alloc/qfmt.h. Distortion, all relative and float64, with
 * ΔW = Ŵ − W:
 *   rel_w    ‖ΔW‖² / ‖W‖²
 *   rel_imp  Σ_ij imp_j ΔW_ij² / Σ_ij imp_j W_ij²     (= rel_w when imp is NULL)
 *   rel_out  tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)                 (NaN when H is NULL)
 * H = XᵀX makes rel_out the relative output error ‖X ΔWᵀ‖² / ‖X Wᵀ‖² on the calibration set.
 * A zero denominator gives 0 when the numerator is 0 too, +Inf otherwise.
 *
 * Reentrant.
 */
#ifndef VL_RD_H
#define VL_RD_H

#include "../core/err.h"
#include "fq.h"
#include "qfmt.h"

#include <stdint.h>

typedef struct {
    double rel_w;   /* ‖ΔW‖² / ‖W‖² */
    double rel_imp; /* importance-weighted relative error */
    double rel_out; /* relative output error, NaN without H */
    int64_t bits;   /* stored bits of the tensor */
    double bpw;     /* bits / (rows · cols) */
} rd_point;

/* Distortion of wq against w (both [rows × cols]) and the rate of f. imp [cols] and h
 * [cols × cols] may be NULL. VL_ENOMEM if the float64 scratch (2·rows·cols) cannot be had. */
int rd_measure(rd_point *out, const float *w, const float *wq, int rows, int cols,
               const qfmt *f, const double *imp, const double *h, vl_err *err);

/* Quantize (fq_tensor, same arguments) and measure against st's imp and h (the tensor's own
 * statistics, even when the few-token policy quantized with others). wq_out [rows × cols]
 * receives the fake-quantized tensor when not NULL. */
int rd_eval(rd_point *out, float *wq_out, const float *w, int rows, int cols, const qfmt *f,
            const fq_stats *st, const fq_stats *fallback, const fq_params *p, fq_info *info,
            const char *name, vl_err *err);

#endif
