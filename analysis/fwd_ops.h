/* analysis/fwd_ops.h — row primitives of the forward (fwd_ops.c), shared by fwd.c and the
 * family-specific blocks (fwd_mla.c, fwd_dsv4*.c). Not part of the public API. */
#ifndef VL_FWD_OPS_H
#define VL_FWD_OPS_H

#include "tap.h"

#include <stddef.h>

/* y = x · rsqrt(mean(x²) + eps) · w per row (sum of squares in float64); y may be x. */
void fwd_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, float eps);
/* Causal softmax of a T×T score block in place (row i keeps columns 0..i). */
void fwd_softmax_causal(float *s, int T);
/* The same over rows first..first+rows-1 of a block whose rows are ld wide. */
void fwd_softmax_causal_rows(float *s, int ld, int rows, int first);

/* The forward's tap events (tap.h): rows × cols dense floats; row_tok / row_w for expert
 * points (NULL otherwise); batch S × T. Nothing is built when the set does not want p. */
void fwd_emit(const tap_set *ts, tap_point p, int layer, int expert, const float *data, int rows,
              int cols, const int *row_tok, const float *row_w, int S, int T);
/* TAP_ROUTER_LOGITS of layer l: logits [N × E] with the forward's selection sel / sel_w
 * [N × K] (emitted after routing, so consumers never redo it). */
void fwd_emit_route(const tap_set *ts, int layer, const float *logits, int N, int E,
                    const int *sel, const float *sel_w, int K, int S, int T);

/* Buffer layout: the next n bytes at *off from base (64-byte steps); base NULL only measures. */
static inline void *fwd_carve(char *base, size_t *off, size_t n)
{
    void *r = base ? base + *off : NULL;
    *off += (n + 63) / 64 * 64;
    return r;
}

#endif
