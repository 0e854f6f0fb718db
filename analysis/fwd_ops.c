/* analysis/fwd_ops.c — the forward's row primitives shared by fwd.c and the family-specific
 * blocks (fwd_mla.c): in a file of their own so that neither block calls back into the other.
 */
#include "fwd_ops.h"

#include "../core/kern.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

void fwd_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double ss = 0;
        for (int i = 0; i < cols; i++)
            ss += (double)xr[i] * xr[i];
        float s = (float)(1.0 / sqrt(ss / cols + eps));
        for (int i = 0; i < cols; i++)
            yr[i] = xr[i] * s * w[i];
    }
}

/* Rows of scores [rows × ld], row i being query position first + i: it keeps columns
 * 0..first+i (causal), softmax over them (vectorised exp), zeros after (up to ld). */
void fwd_softmax_causal_rows(float *s, int ld, int rows, int first)
{
    for (int i = 0; i < rows; i++) {
        int n = first + i + 1;
        float *r = s + (size_t)i * ld, mx = r[0];
        for (int j = 1; j < n; j++)
            mx = r[j] > mx ? r[j] : mx;
        float inv = 1.0f / kern_exp_shift(r, n, mx);
        for (int j = 0; j < n; j++)
            r[j] *= inv;
        memset(r + n, 0, (size_t)(ld - n) * sizeof *r);
    }
}

void fwd_softmax_causal(float *s, int T) { fwd_softmax_causal_rows(s, T, T, 0); }
