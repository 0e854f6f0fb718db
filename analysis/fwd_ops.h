/* analysis/fwd_ops.h — row primitives of the forward (fwd_ops.c), shared by fwd.c and the
 * family-specific blocks (fwd_mla.c). Not part of the public API. */
#ifndef VL_FWD_OPS_H
#define VL_FWD_OPS_H

/* y = x · rsqrt(mean(x²) + eps) · w per row (sum of squares in float64); y may be x. */
void fwd_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, float eps);
/* Causal softmax of a T×T score block in place (row i keeps columns 0..i). */
void fwd_softmax_causal(float *s, int T);

#endif
