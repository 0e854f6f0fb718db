/* analysis/fwd_ops.c — the forward's row primitives and tap emitters shared by fwd.c and the
 * family-specific blocks (fwd_mla.c, fwd_dsv4*.c): in a file of their own so that neither
 * block calls back into the other.
 */
#include "fwd_ops.h"

#include "../core/kern.h"
#include "../core/vexp.h" /* VEXP_CLONES */

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Σ x² of a row in float64: sixteen lanes (four vectors of four), added in a fixed order, so
 * the sum does not wait on one add at a time (a single chain cost ~4 cycles an entry: 5 % of
 * the DeepSeek-V3 fixture's forward). Each square of a float is exact in float64, so FMA
 * contraction would change nothing; the clones give the same bits. */
typedef double ops_d4 __attribute__((vector_size(32)));
typedef float ops_f4 __attribute__((vector_size(16)));

VEXP_CLONES static double sum_squares(const float *x, int n)
{
    ops_d4 a[4] = {{0}};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            ops_f4 f;
            memcpy(&f, x + i + 4 * k, sizeof f);
            ops_d4 d = __builtin_convertvector(f, ops_d4);
            a[k] += d * d;
        }
    ops_d4 t = (a[0] + a[1]) + (a[2] + a[3]);
    double ss = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    return ss;
}

void fwd_rmsnorm(float *y, const float *x, const float *w, int rows, int cols, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double ss = sum_squares(xr, cols);
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

void fwd_emit(const tap_set *ts, tap_point p, int layer, int expert, const float *data, int rows,
              int cols, const int *row_tok, const float *row_w, int S, int T)
{
    if (!tap_wants(ts, p))
        return;
    tap_event ev = {.point = p, .layer = layer, .expert = expert, .data = data, .rows = rows,
                    .cols = cols, .stride = (size_t)cols, .row_token = row_tok,
                    .row_weight = row_w, .n_seq = S, .seq_len = T};
    tap_emit(ts, &ev);
}

void fwd_emit_route(const tap_set *ts, int layer, const float *logits, int N, int E,
                    const int *sel, const float *sel_w, int K, int S, int T)
{
    if (!tap_wants(ts, TAP_ROUTER_LOGITS))
        return;
    tap_event ev = {.point = TAP_ROUTER_LOGITS, .layer = layer, .expert = -1, .data = logits,
                    .rows = N, .cols = E, .stride = (size_t)E, .n_seq = S, .seq_len = T,
                    .sel = sel, .sel_w = sel_w, .k = K};
    tap_emit(ts, &ev);
}
