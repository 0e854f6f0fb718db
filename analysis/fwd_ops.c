/* analysis/fwd_ops.c — the forward's row primitives shared by fwd.c and the family-specific
 * blocks (fwd_mla.c): in a file of their own so that neither block calls back into the other.
 */
#include "fwd_ops.h"

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

/* Row i of the T×T scores keeps columns 0..i (causal), softmax over them, zeros after. */
void fwd_softmax_causal(float *s, int T)
{
    for (int i = 0; i < T; i++) {
        float *r = s + (size_t)i * T, mx = r[0], sum = 0;
        for (int j = 1; j <= i; j++)
            mx = r[j] > mx ? r[j] : mx;
        for (int j = 0; j <= i; j++)
            sum += (r[j] = expf(r[j] - mx));
        float inv = 1.0f / sum;
        for (int j = 0; j <= i; j++)
            r[j] *= inv;
        memset(r + i + 1, 0, (size_t)(T - 1 - i) * sizeof *r);
    }
}
